//! BIND's `named` as the authoritative server of zones a test writes (no recursion, no DNSSEC),
//! which accepts unsigned dynamic updates (`nsupdate`) from 127.0.0.1, or, through
//! [`Named::start_with`], the updates its own configuration allows (TSIG keys and an
//! `update-policy`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{START_WITHIN, free_dns_port, log_tail, require_binary};

/// A running `named`, killed when dropped.
pub struct Named {
    child: Child,
    /// Where it answers (UDP and TCP).
    pub addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Named {
    /// Starts one on a free loopback port serving `zones` (zone name, zone file text), and
    /// waits until it says it is running and its port accepts connections. Tried three times,
    /// on other ports, if the port was taken in between.
    pub async fn start(zones: &[(&str, &str)]) -> Self {
        Self::start_with(zones, "", "allow-update { 127.0.0.1; };").await
    }

    /// As [`Named::start`], with `extra` added to `named.conf` (e.g. `key` blocks) and `updates`
    /// as each zone's update clause (e.g. `update-policy { grant k. zonesub TXT; };`).
    pub async fn start_with(zones: &[(&str, &str)], extra: &str, updates: &str) -> Self {
        let binary = require_binary("named", "bind9");
        let mut failures = Vec::new();
        for _ in 0..3 {
            let mut server = Self::spawn(&binary, zones, extra, updates);
            match server.ready().await {
                Ok(()) => return server,
                Err(seen) => failures.push(seen),
            }
        }
        panic!("named did not start:\n{}", failures.join("\n---\n"));
    }

    fn spawn(binary: &PathBuf, zones: &[(&str, &str)], extra: &str, updates: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let addr = free_dns_port();
        let mut conf = format!(
            "options {{ directory \"{d}\"; listen-on port {port} {{ 127.0.0.1; }}; \
             listen-on-v6 {{ none; }}; pid-file \"{d}/named.pid\"; \
             session-keyfile \"{d}/session.key\"; recursion no; dnssec-validation no; }};\n\
             controls {{ }};\n",
            port = addr.port()
        );
        conf.push_str(extra);
        for (zone, text) in zones {
            let file = dir.path().join(format!("{zone}.db"));
            std::fs::write(&file, text).unwrap();
            conf.push_str(&format!(
                "zone \"{zone}\" {{ type primary; file \"{}\"; {updates} }};\n",
                file.display()
            ));
        }
        let conf_path = dir.path().join("named.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let log = dir.path().join("named.log");
        let out = std::fs::File::create(&log).unwrap();
        // -g: foreground, log to stderr; the process runs as whoever runs the tests.
        let child = Command::new(binary)
            .arg("-g")
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        Self {
            child,
            addr,
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
            // Not just "running": named's first lines say "running as: named -g ...", before
            // its zones are loaded (and a query then is SERVFAIL).
            let running = std::fs::read_to_string(&self.log)
                .unwrap_or_default()
                .lines()
                .any(|l| l.ends_with("all zones loaded"));
            let port = tokio::net::TcpStream::connect(self.addr).await;
            if running && port.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "not ready after {START_WITHIN:?}: said running: {running}, \
                     port {} -> {port:?}\n{}",
                    self.addr,
                    log_tail(&self.log)
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Named {
    /// The server's own directory (its configuration, zones and log), removed with it.
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends one dynamic update (`commands` in nsupdate's language, e.g.
    /// `update add x.shop.test. 60 TXT "v"`) and fails the test unless it is applied.
    pub async fn update(&self, commands: &str) {
        let nsupdate = require_binary("nsupdate", "dnsutils");
        let script = format!(
            "server {} {}\n{commands}\nsend\n",
            self.addr.ip(),
            self.addr.port()
        );
        let mut child = tokio::process::Command::new(nsupdate)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut stdin, script.as_bytes())
            .await
            .unwrap();
        drop(stdin);
        let out = child.wait_with_output().await.unwrap();
        assert!(
            out.status.success(),
            "nsupdate {script:?} failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            log_tail(&self.log)
        );
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
