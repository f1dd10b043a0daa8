//! `pebble-challtestsrv` as a DNS server: every A query is answered with 127.0.0.1 (AAAA with
//! nothing), and TXT records are set and cleared through its management API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{START_WITHIN, free_dns_port, free_tcp_port, log_tail, require_binary};

/// A running `pebble-challtestsrv`, killed when dropped.
pub struct ChallTestSrv {
    child: Child,
    /// Its DNS server (UDP and TCP).
    pub dns: SocketAddr,
    management: SocketAddr,
    log: PathBuf,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl ChallTestSrv {
    /// Starts one on free loopback ports and waits until both its management API and its DNS
    /// port answer. Another process may take a port between choosing and binding it, so a start
    /// that fails is tried again on other ports (three times in all).
    pub async fn start() -> Self {
        let binary = require_binary("pebble-challtestsrv", "pebble");
        let mut failures = Vec::new();
        for _ in 0..3 {
            let mut server = Self::spawn(&binary);
            match server.ready().await {
                Ok(()) => return server,
                Err(seen) => failures.push(seen),
            }
        }
        panic!(
            "pebble-challtestsrv did not start:\n{}",
            failures.join("\n---\n")
        );
    }

    fn spawn(binary: &PathBuf) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("challtestsrv.log");
        let out = std::fs::File::create(&log).unwrap();
        let dns = free_dns_port();
        let management = free_tcp_port();
        let child = Command::new(binary)
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-dns01", &dns.to_string()])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &management.to_string()])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        Self {
            child,
            dns,
            management,
            log,
            http,
            _dir: dir,
        }
    }

    /// Waits until the management API answers and the DNS port accepts connections, or says
    /// what it saw.
    async fn ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_WITHIN;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status}:\n{}", log_tail(&self.log)));
            }
            let management = self
                .post("/clear-txt", r#"{"host":"ready.invalid."}"#)
                .await;
            let dns = tokio::net::TcpStream::connect(self.dns).await;
            if management.is_ok() && dns.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "not ready after {START_WITHIN:?}: management {} -> {management:?}, \
                     DNS {} -> {dns:?}\n{}",
                    self.management,
                    self.dns,
                    log_tail(&self.log)
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn post(&self, path: &str, body: &str) -> Result<(), String> {
        let url = format!("http://{}{path}", self.management);
        let response = self
            .http
            .post(&url)
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| format!("POST {url}: {e}"))?;
        if response.status().as_u16() != 200 {
            return Err(format!("POST {url} {body}: {}", response.status()));
        }
        Ok(())
    }

    /// Adds a TXT record `value` at `host` (absolute, with or without the final dot); a second
    /// value at the same host adds a second record.
    pub async fn set_txt(&self, host: &str, value: &str) {
        let body = serde_json::json!({"host": absolute(host), "value": value}).to_string();
        self.post("/set-txt", &body).await.unwrap();
    }

    /// Removes every TXT record at `host`.
    pub async fn clear_txt(&self, host: &str) {
        let body = serde_json::json!({"host": absolute(host)}).to_string();
        self.post("/clear-txt", &body).await.unwrap();
    }

    /// Makes every query for `host` answer SERVFAIL.
    pub async fn set_servfail(&self, host: &str) {
        let body = serde_json::json!({"host": absolute(host)}).to_string();
        self.post("/set-servfail", &body).await.unwrap();
    }
}

impl Drop for ChallTestSrv {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn absolute(host: &str) -> String {
    format!("{}.", host.trim_end_matches('.'))
}
