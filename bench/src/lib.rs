//! Benchmarks for OpenSCM; see the binaries in `src/bin` and the scripts beside this crate.
//! This library holds what they share: a release server on loopback, a database of a run's own
//! and small statistics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

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
