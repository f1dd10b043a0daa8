//! Real peers for the integration tests, each started by the test that uses it on free loopback
//! ports and stopped when dropped: `pebble-challtestsrv` (Debian `pebble`) as a DNS server whose
//! TXT records a test sets and clears, BIND's `named` (Debian `bind9`) as an authoritative
//! server of zones a test writes, a tiny HTTP/1.1 responder, aiosmtpd (Debian
//! `python3-aiosmtpd`) as a mail server, a TLS server with certificates of a test CA, and Pebble
//! (Debian `pebble`) as an ACME CA.
//!
//! A missing binary fails the test that needs it, with the package to install: these tests are
//! the only proof that the DNS and file checks work against real servers, so they never skip.
//! The ACME tests are the exception asked of them: without Pebble they fail under `CI=true`
//! and are skipped with a `SKIPPED:` line elsewhere ([`pebble::installed`]).

pub mod challtestsrv;
pub mod haproxy;
pub mod http;
pub mod named;
pub mod pebble;
pub mod smtp;
pub mod tls;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a peer may take to start (measured: well under a second).
pub const START_WITHIN: Duration = Duration::from_secs(15);

/// The path of `binary`, from `PATH` or the sbin directories; fails the test, naming the Debian
/// package, when it is not installed.
pub fn require_binary(binary: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(binary);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "{binary} is not installed: these tests need the real server \
         (apt-get install -y {package}; scripts/test-all installs it)"
    );
}

/// A loopback port free for both UDP and TCP right now (a DNS server takes both).
pub fn free_dns_port() -> SocketAddr {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = udp.local_addr().unwrap();
        if TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no loopback port free for both UDP and TCP in 50 tries");
}

/// A loopback TCP port free right now.
pub fn free_tcp_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The end of a log file, for failure messages.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(30);
    lines[start..].join("\n")
}
