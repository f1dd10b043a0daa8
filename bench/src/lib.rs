//! Benchmarks for OpenSCM; see the binaries in `src/bin` and the scripts beside this crate.
//! This library holds what they share: a release server on loopback, a database of a run's own
//! and small statistics.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use scm_client::Client;

/// The value after `name` on the command line.
pub fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// The server binary a benchmark starts: `--server PATH`, else `$OPENSCM_BIN`, else the `openscm`
/// beside this benchmark's own executable (the same build profile: `target/release` when run with
/// `cargo run --release`, `target/ci` under `scripts/test-all`).
pub fn server_bin() -> std::path::PathBuf {
    arg("--server")
        .or_else(|| std::env::var("OPENSCM_BIN").ok())
        .map(std::path::PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.join("openscm"))
        })
        .unwrap_or_else(|| "target/release/openscm".into())
}

/// The machine a figure was measured on: cores, processor model and memory, from `/proc`.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_else(|| "unknown processor".to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|kib| kib.parse::<f64>().ok())
        .map(|kib| kib / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    format!("{cores} cores ({model}), {gib:.0} GiB")
}

/// A port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server process on loopback, stopped (SIGTERM) when dropped.
pub struct Server {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    data: PathBuf,
}

impl Server {
    /// Starts `bin` with `toml` as its config file, waiting until it listens.
    pub fn start(bin: &Path, data: &Path, db: Option<&str>, toml: &str) -> Self {
        std::fs::create_dir_all(data.parent().unwrap()).unwrap();
        let config = data.parent().unwrap().join("bench.toml");
        std::fs::write(&config, toml).unwrap();
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.args(["server", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data)
            .arg("--config")
            .arg(&config)
            .env("OPENSCM_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(db) = db {
            cmd.arg("--database-url").arg(db);
        }
        let child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() || !data.join("ca-root.pem").exists()
        {
            assert!(Instant::now() < deadline, "the server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            port,
            data: data.to_owned(),
        }
    }

    /// Resident memory, MiB.
    pub fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kib / 1024.0
    }

    /// A client with the bootstrap credentials.
    pub fn client(&self) -> Client {
        Client::new(
            &format!("http://127.0.0.1:{}", self.port),
            scm_client::CredentialsFile::load(self.data.join("credentials.json"))
                .unwrap()
                .credentials,
        )
        .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// The 99th percentile of sorted durations.
pub fn p99(sorted: &[Duration]) -> Duration {
    sorted[(sorted.len() * 99 / 100).min(sorted.len() - 1)]
}

/// Latencies of `n` sequential `GET /health` on one open connection.
pub fn health_latencies(s: &mut TcpStream, n: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    let mut buf = [0u8; 1024];
    for _ in 0..n {
        let started = Instant::now();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let n = s.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        out.push(started.elapsed());
    }
    out.sort();
    out
}

/// A database of one benchmark run's own: a SQLite file in a temporary directory, or a throwaway
/// database on the PostgreSQL server of `--database-url` (the URL names a database on it where the
/// user may create databases). [`BenchDb::remove`] deletes it.
pub struct BenchDb {
    /// The URL the store connects to.
    pub url: String,
    /// What the figures were measured on, for the first line.
    pub label: &'static str,
    place: Place,
}

enum Place {
    Sqlite(PathBuf),
    Postgres { server: String, name: String },
}

/// `base` with its database (the URL's path) replaced by `db`; the query string is kept.
pub fn with_database(base: &str, db: &str) -> String {
    let (scheme, rest) = base.split_once("://").unwrap_or(("postgres", base));
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let query = tail.find('?').map_or("", |i| &tail[i..]);
    format!("{scheme}://{authority}/{db}{query}")
}

impl BenchDb {
    /// A new empty database named after `tag` and this process.
    pub async fn create(postgres: Option<&str>, tag: &str) -> Self {
        use sqlx::Connection;
        let name = format!("openscm_bench_{tag}_{}", std::process::id());
        match postgres {
            None => {
                let dir = std::env::temp_dir().join(&name);
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).unwrap();
                Self {
                    url: format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()),
                    label: "SQLite (WAL, synchronous=FULL)",
                    place: Place::Sqlite(dir),
                }
            }
            Some(server) => {
                let mut conn = sqlx::PgConnection::connect(server).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                Self {
                    url: with_database(server, &name),
                    label: "PostgreSQL",
                    place: Place::Postgres {
                        server: server.to_owned(),
                        name,
                    },
                }
            }
        }
    }

    /// Deletes the database (every connection to it must be closed, or is ended).
    pub async fn remove(self) {
        use sqlx::Connection;
        match self.place {
            Place::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Place::Postgres { server, name } => {
                let mut conn = sqlx::PgConnection::connect(&server).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await
                .unwrap();
            }
        }
    }
}

/// The median of durations (sorts them).
pub fn median(d: &mut [Duration]) -> Duration {
    d.sort();
    d[d.len() / 2]
}

/// A connection of a benchmark's own to the store's database, beside the store's pool: for
/// seeding in bulk, resetting between timed runs and checking results with plain SQL.
pub enum Sql {
    /// SQLite.
    Sqlite(sqlx::SqliteConnection),
    /// PostgreSQL.
    Postgres(sqlx::PgConnection),
}

impl Sql {
    /// Connects to `url` (`sqlite:` or `postgres:`).
    pub async fn connect(url: &str) -> Self {
        use sqlx::Connection;
        if url.starts_with("sqlite:") {
            Self::Sqlite(sqlx::SqliteConnection::connect(url).await.unwrap())
        } else {
            Self::Postgres(sqlx::PgConnection::connect(url).await.unwrap())
        }
    }

    /// Whether it is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }

    /// Runs `sql` (one or more statements, no parameters); returns the rows it changed.
    pub async fn execute(&mut self, sql: String) -> u64 {
        let sql = sqlx::AssertSqlSafe(sql);
        match self {
            Self::Sqlite(c) => sqlx::raw_sql(sql).execute(c).await.unwrap().rows_affected(),
            Self::Postgres(c) => sqlx::raw_sql(sql).execute(c).await.unwrap().rows_affected(),
        }
    }

    /// The one integer `sql` selects (`None`: NULL).
    pub async fn scalar(&mut self, sql: String) -> Option<i64> {
        let sql = sqlx::AssertSqlSafe(sql);
        match self {
            Self::Sqlite(c) => sqlx::query_scalar(sql).fetch_one(c).await.unwrap(),
            Self::Postgres(c) => sqlx::query_scalar(sql).fetch_one(c).await.unwrap(),
        }
    }
}

/// The `p`-th percentile (0 to 100, nearest rank) of sorted durations.
pub fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// The path of `binary` (from `PATH`, then the sbin directories); stops the benchmark, naming the
/// Debian package to install, when it is missing.
pub fn require_binary(binary: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join(binary))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{binary} is not installed: this benchmark needs it (apt-get install -y {package})"
            )
        })
}

/// A self-signed EC P-256 certificate for `name` and its key, PEM: what a server serves before
/// the first delivery.
pub fn self_signed(name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// The end of a log file, for failure messages.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Sends `signal` (`TERM`, `INT`, ...) to a child.
fn signal(child: &Child, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status();
}

/// HAProxy (Debian `haproxy`) serving TLS on a free loopback port from a crt-list, answering every
/// request itself with a 200, with its runtime API on a UNIX socket at `level admin`. Killed
/// when dropped.
pub struct Haproxy {
    child: Child,
    /// Its TLS port on 127.0.0.1.
    pub port: u16,
    /// The runtime API socket.
    pub socket: PathBuf,
    /// The crt-list of its frontend, as haproxy.cfg names it.
    pub crt_list: PathBuf,
    log: PathBuf,
}

impl Haproxy {
    /// Starts one in `dir` whose crt-list lists `first_cert` (a PEM file holding a certificate
    /// and its key: the default certificate, served to a client whose SNI matches nothing else),
    /// and waits until its runtime API answers and its port accepts connections.
    pub fn start(dir: &Path, first_cert: &Path) -> Self {
        let binary = require_binary("haproxy", "haproxy");
        std::fs::create_dir_all(dir).unwrap();
        let crt_list = dir.join("list.crtlist");
        std::fs::write(&crt_list, format!("{}\n", first_cert.display())).unwrap();
        let socket = dir.join("admin.sock");
        let log = dir.join("haproxy.log");
        let mut seen = Vec::new();
        // Three tries, on other ports, in case a port was taken between asking and binding.
        for _ in 0..3 {
            let port = free_port();
            let config = format!(
                "global\n  stats socket {socket} mode 600 level admin\n\
                 defaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\
                 frontend fe\n  bind 127.0.0.1:{port} ssl crt-list {list}\n\
                 \x20 http-request return status 200 content-type text/plain string ok\n",
                socket = socket.display(),
                list = crt_list.display(),
            );
            let config_path = dir.join("haproxy.cfg");
            std::fs::write(&config_path, config).unwrap();
            let out = std::fs::File::create(&log).unwrap();
            // -db: foreground, no master process: the child is HAProxy itself.
            let child = Command::new(&binary)
                .arg("-db")
                .arg("-f")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .unwrap();
            let mut h = Self {
                child,
                port,
                socket: socket.clone(),
                crt_list: crt_list.clone(),
                log: log.clone(),
            };
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if let Ok(Some(status)) = h.child.try_wait() {
                    seen.push(format!("exited with {status}:\n{}", log_tail(&log)));
                    break;
                }
                let info = h.command("show info");
                let up = TcpStream::connect(("127.0.0.1", port)).is_ok();
                if info.contains("Name: HAProxy") && up {
                    return h;
                }
                if Instant::now() > deadline {
                    seen.push(format!(
                        "not ready after 15 s (show info: {info:?}, port {port} open: {up}):\n{}",
                        log_tail(&log)
                    ));
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("haproxy did not start:\n{}", seen.join("\n---\n"));
    }

    /// The answer of one runtime API command (empty when the socket does not answer).
    pub fn command(&self, command: &str) -> String {
        let Ok(mut s) = std::os::unix::net::UnixStream::connect(&self.socket) else {
            return String::new();
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = s.write_all(format!("{command}\n").as_bytes());
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The end of its log.
    pub fn log(&self) -> String {
        log_tail(&self.log)
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// nginx (Debian `nginx`) in the foreground, serving TLS on a free loopback port from a
/// certificate and key file, every request answered with a 200. Stopped (SIGTERM) when dropped.
pub struct Nginx {
    child: Child,
    /// Its TLS port on 127.0.0.1.
    pub port: u16,
    /// `nginx -p <dir> -e <log> -c <conf>`: the command line that names this instance (add
    /// `-s reload` to reload it).
    pub command: Vec<String>,
    log: PathBuf,
}

impl Nginx {
    /// Starts one in `dir` serving `cert` (full chain) and `key`, and waits until its port
    /// accepts connections.
    pub fn start(dir: &Path, cert: &Path, key: &Path) -> Self {
        let binary = require_binary("nginx", "nginx");
        for sub in ["logs", "temp"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let log = dir.join("logs/error.log");
        let conf = dir.join("nginx.conf");
        let command: Vec<String> = vec![
            binary.display().to_string(),
            "-p".into(),
            dir.display().to_string(),
            "-e".into(),
            log.display().to_string(),
            "-c".into(),
            conf.display().to_string(),
        ];
        let mut seen = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let d = dir.display();
            let config = format!(
                "worker_processes 1;\npid {d}/logs/nginx.pid;\nerror_log {d}/logs/error.log warn;\n\
                 events {{ worker_connections 256; }}\n\
                 http {{\n  access_log off;\n\
                 \x20 client_body_temp_path {d}/temp/client_body; proxy_temp_path {d}/temp/proxy;\n\
                 \x20 fastcgi_temp_path {d}/temp/fastcgi; uwsgi_temp_path {d}/temp/uwsgi; scgi_temp_path {d}/temp/scgi;\n\
                 \x20 server {{\n    listen 127.0.0.1:{port} ssl;\n\
                 \x20   ssl_certificate {cert};\n    ssl_certificate_key {key};\n\
                 \x20   location / {{ return 200 \"ok\\n\"; }}\n  }}\n}}\n",
                cert = cert.display(),
                key = key.display(),
            );
            std::fs::write(&conf, config).unwrap();
            let child = Command::new(&binary)
                .args(&command[1..])
                .args(["-g", "daemon off;"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut n = Self {
                child,
                port,
                command: command.clone(),
                log: log.clone(),
            };
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if let Ok(Some(status)) = n.child.try_wait() {
                    seen.push(format!("exited with {status}:\n{}", log_tail(&log)));
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return n;
                }
                if Instant::now() > deadline {
                    seen.push(format!(
                        "port {port} not open after 15 s:\n{}",
                        log_tail(&log)
                    ));
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("nginx did not start:\n{}", seen.join("\n---\n"));
    }

    /// Its master's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The end of its error log.
    pub fn log(&self) -> String {
        log_tail(&self.log)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM to the master stops its workers too (a SIGKILL would leave them behind).
        signal(&self.child, "TERM");
        let _ = self.child.wait();
    }
}

/// A `wrk` load (Debian `wrk`) running until [`Wrk::stop`].
pub struct Wrk {
    child: Child,
}

/// What `wrk` printed at the end.
#[derive(Debug, Clone, Default)]
pub struct WrkSummary {
    /// Requests completed.
    pub requests: u64,
    /// Socket errors: connect, read, write and timeout together.
    pub socket_errors: u64,
    /// Responses other than 2xx or 3xx.
    pub non_2xx: u64,
    /// Its whole output.
    pub text: String,
}

impl WrkSummary {
    /// Reads wrk's summary: `N requests in ...`, `Socket errors: connect A, read B, write C,
    /// timeout D` and `Non-2xx or 3xx responses: E` (the last two only printed when not zero).
    pub fn parse(text: &str) -> Self {
        let number_before = |line: &str, word: &str| {
            line.split_once(word)
                .and_then(|(before, _)| before.split_whitespace().last())
                .and_then(|n| n.parse::<u64>().ok())
        };
        let mut s = Self {
            text: text.to_owned(),
            ..Self::default()
        };
        for line in text.lines() {
            let line = line.trim();
            if let Some(n) = number_before(line, " requests in ") {
                s.requests = n;
            } else if let Some(rest) = line.strip_prefix("Socket errors:") {
                s.socket_errors = rest
                    .split(',')
                    .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                    .sum();
            } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
                s.non_2xx = rest.trim().parse().unwrap_or(0);
            }
        }
        s
    }

    /// Failed requests: socket errors and non-2xx/3xx answers.
    pub fn failed(&self) -> u64 {
        self.socket_errors + self.non_2xx
    }
}

impl Wrk {
    /// Starts `wrk <args> <url>` for up to an hour.
    pub fn start(args: &[&str], url: &str) -> Self {
        let binary = require_binary("wrk", "wrk");
        let child = Command::new(binary)
            .args(args)
            .args(["-d", "3600s", url])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Self { child }
    }

    /// Stops it (SIGINT: it prints its summary) and reads the summary.
    pub fn stop(self) -> WrkSummary {
        signal(&self.child, "INT");
        let out = self.child.wait_with_output().unwrap();
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        WrkSummary::parse(&text)
    }
}
