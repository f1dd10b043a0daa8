//! HAProxy (Debian `haproxy`) serving TLS on a free loopback port from a crt-list in a temp dir
//! (every request answered by HAProxy itself with a 200), with its runtime API on a UNIX socket
//! at `level admin`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{START_WITHIN, free_tcp_port, log_tail, require_binary};

/// A running HAProxy, killed when dropped.
pub struct Haproxy {
    child: Child,
    /// Where it serves TLS.
    pub addr: SocketAddr,
    /// Its runtime API (`stats socket ... level admin`).
    pub socket: PathBuf,
    /// The crt-list its frontend serves, as haproxy.cfg names it.
    pub crt_list: PathBuf,
    /// The directory of its certificates and crt-list.
    pub certs: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    /// Starts one serving `certs` (a file name in [`Haproxy::certs`] and its PEM, chain and
    /// key), listed in that order in its crt-list (the first is the default certificate), and
    /// waits until its runtime API answers `show info` and its port accepts connections. Tried
    /// three times, on other ports, if the port was taken in between.
    pub async fn start(certs: &[(&str, &str)]) -> Self {
        let binary = require_binary("haproxy", "haproxy");
        let mut failures = Vec::new();
        for _ in 0..3 {
            let mut server = Self::spawn(&binary, certs);
            match server.ready().await {
                Ok(()) => return server,
                Err(seen) => failures.push(seen),
            }
        }
        panic!("haproxy did not start:\n{}", failures.join("\n---\n"));
    }

    fn spawn(binary: &Path, certs: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cert_dir = dir.path().join("certs");
        std::fs::create_dir(&cert_dir).unwrap();
        let mut list = String::new();
        for (file, pem) in certs {
            let path = cert_dir.join(file);
            std::fs::write(&path, pem).unwrap();
            list.push_str(&format!("{}\n", path.display()));
        }
        let crt_list = cert_dir.join("list.crtlist");
        std::fs::write(&crt_list, list).unwrap();
        let socket = dir.path().join("admin.sock");
        let addr = free_tcp_port();
        let config = format!(
            "global\n\
             \x20 stats socket {socket} mode 600 level admin\n\
             defaults\n\
             \x20 mode http\n\
             \x20 timeout connect 5s\n\
             \x20 timeout client 30s\n\
             \x20 timeout server 30s\n\
             frontend fe\n\
             \x20 bind {addr} ssl crt-list {list}\n\
             \x20 http-request return status 200 content-type text/plain string ok\n",
            socket = socket.display(),
            list = crt_list.display(),
        );
        let config_path = dir.path().join("haproxy.cfg");
        std::fs::write(&config_path, config).unwrap();
        let log = dir.path().join("haproxy.log");
        let out = std::fs::File::create(&log).unwrap();
        // -db: foreground, no daemon, no master process: the child is HAProxy itself.
        let child = Command::new(binary)
            .arg("-db")
            .arg("-f")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        Self {
            child,
            addr,
            socket,
            crt_list,
            certs: cert_dir,
            log,
            _dir: dir,
        }
    }

    async fn ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_WITHIN;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status}:\n{}", log_tail(&self.log)));
            }
            let info = self.try_command("show info").await;
            let answers = info.as_deref().is_ok_and(|i| i.contains("Name: HAProxy"));
            let port = tokio::net::TcpStream::connect(self.addr).await;
            if answers && port.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "not ready after {START_WITHIN:?}: show info -> {info:?}, \
                     port {} -> {port:?}\n{}",
                    self.addr,
                    log_tail(&self.log)
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The path of a file in its certificate directory.
    pub fn cert_path(&self, file: &str) -> PathBuf {
        self.certs.join(file)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The answer of one runtime API command (fails the test when the socket does not answer).
    pub async fn command(&self, command: &str) -> String {
        self.try_command(command)
            .await
            .unwrap_or_else(|e| panic!("`{command}`: {e}\n{}", log_tail(&self.log)))
    }

    async fn try_command(&self, command: &str) -> Result<String, String> {
        let exchange = async {
            let mut s = tokio::net::UnixStream::connect(&self.socket).await?;
            s.write_all(format!("{command}\n").as_bytes()).await?;
            let mut answer = String::new();
            s.read_to_string(&mut answer).await?;
            Ok::<_, std::io::Error>(answer)
        };
        match tokio::time::timeout(Duration::from_secs(10), exchange).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer within 10 s".into()),
        }
    }

    /// Kills it at once (SIGKILL): the socket file stays behind with nobody listening.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The end of its log, for failure messages.
    pub fn log(&self) -> String {
        log_tail(&self.log)
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        self.kill();
    }
}
