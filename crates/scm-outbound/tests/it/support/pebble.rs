//! Pebble (Debian `pebble`), the ACME test CA, on free loopback ports with a listener
//! certificate of a throwaway CA, validating for real (no sleep before validation, no nonce
//! rejections, no authorization reuse) unless told to take every challenge as valid.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::tls::TestCa;
use super::{START_WITHIN, free_tcp_port, log_tail};

/// Pebble's example External Account Binding keys (`kid-1`, `kid-2`).
pub const EAB_KEYS: [(&str, &str); 2] = [
    (
        "kid-1",
        "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W",
    ),
    (
        "kid-2",
        "b10lLJs8l1GPIzsLP0s6pMt8O0XVGnfTaCeROxQM0BIt2XrJMDHJZBM5NuQmQJQH",
    ),
];

/// Whether Pebble and challtestsrv are installed. When they are not, the test fails under
/// `CI=true` and is skipped, loudly, elsewhere.
pub fn installed() -> bool {
    let missing: Vec<&str> = ["/usr/bin/pebble", "/usr/bin/pebble-challtestsrv"]
        .into_iter()
        .filter(|p| !Path::new(p).is_file())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "{} not installed: the ACME tests need the real Pebble (apt-get install -y pebble)",
        missing.join(" and ")
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{message}");
    }
    eprintln!("SKIPPED: {message}");
    false
}

/// The HTTPS listener certificate of Pebble's ACME and management APIs (for `localhost` and
/// 127.0.0.1), issued by a throwaway CA whose root is `root`. One may serve several Pebbles
/// one after the other (a restart keeps the trust).
pub struct Listener {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The root to trust (`trust_roots_file`).
    pub root: PathBuf,
    _dir: tempfile::TempDir,
}

impl Listener {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("pebble listener");
        let leaf = ca.leaf(&["localhost", "127.0.0.1"]);
        let (cert, key) = leaf.write_to(dir.path());
        let root = dir.path().join("listener-root.pem");
        std::fs::write(&root, ca.root_pem()).unwrap();
        Self {
            cert,
            key,
            root,
            _dir: dir,
        }
    }
}

/// How to run a Pebble.
#[derive(Clone, Default)]
pub struct Options {
    /// The DNS server its validation authority asks (challtestsrv); none: the system's.
    pub dns: Option<SocketAddr>,
    /// The port its validation authority connects to for http-01 (default: a free port
    /// nobody listens on).
    pub http_port: Option<u16>,
    /// Take every challenge answered as valid, without looking.
    pub always_valid: bool,
    /// Require External Account Binding (with [`EAB_KEYS`]).
    pub eab: bool,
    /// The ACME API's address (default: a free port); given, the start is not retried
    /// elsewhere.
    pub listen: Option<SocketAddr>,
}

/// A running Pebble, killed when dropped.
pub struct Pebble {
    child: Child,
    /// The ACME API's address.
    pub listen: SocketAddr,
    management: SocketAddr,
    log: PathBuf,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Pebble {
    /// Starts one and waits until its directory answers; a start that fails on ports another
    /// process took in the meantime is tried again elsewhere (three times in all).
    pub async fn start(listener: &Listener, options: Options) -> Self {
        let mut failures = Vec::new();
        let attempts = if options.listen.is_some() { 1 } else { 3 };
        for _ in 0..attempts {
            let mut pebble = Self::spawn(listener, &options);
            match pebble.ready().await {
                Ok(()) => return pebble,
                Err(seen) => failures.push(seen),
            }
        }
        panic!("pebble did not start:\n{}", failures.join("\n---\n"));
    }

    fn spawn(listener: &Listener, options: &Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listen = options.listen.unwrap_or_else(free_tcp_port);
        let management = free_tcp_port();
        let http_port = options.http_port.unwrap_or_else(|| free_tcp_port().port());
        let mut pebble = serde_json::json!({
            "listenAddress": listen.to_string(),
            "managementListenAddress": management.to_string(),
            "certificate": listener.cert,
            "privateKey": listener.key,
            "httpPort": http_port,
            "tlsPort": free_tcp_port().port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": options.eab,
        });
        if options.eab {
            pebble["externalAccountMACKeys"] = EAB_KEYS
                .iter()
                .map(|(kid, key)| (kid.to_string(), serde_json::json!(key)))
                .collect::<serde_json::Map<_, _>>()
                .into();
        }
        let config = dir.path().join("pebble.json");
        std::fs::write(&config, serde_json::json!({ "pebble": pebble }).to_string()).unwrap();
        let log = dir.path().join("pebble.log");
        let out = std::fs::File::create(&log).unwrap();
        let mut command = Command::new("/usr/bin/pebble");
        command
            .arg("-config")
            .arg(&config)
            .arg("-strict=false")
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        if let Some(dns) = options.dns {
            command.arg("-dnsserver").arg(dns.to_string());
        }
        if options.always_valid {
            command.env("PEBBLE_VA_ALWAYS_VALID", "1");
        }
        let child = command.spawn().unwrap();
        let root = reqwest::Certificate::from_pem(&std::fs::read(&listener.root).unwrap()).unwrap();
        let http = reqwest::Client::builder()
            .no_proxy()
            .tls_certs_only([root])
            .build()
            .unwrap();
        Self {
            child,
            listen,
            management,
            log,
            http,
            _dir: dir,
        }
    }

    /// Waits until the directory and the management API answer, or says what it saw.
    async fn ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_WITHIN;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status}:\n{}", log_tail(&self.log)));
            }
            let dir = self.http.get(self.directory_url()).send().await;
            let management = self.get_management("roots/0").await;
            match (&dir, &management) {
                (Ok(d), Ok(_)) if d.status() == 200 => return Ok(()),
                _ if Instant::now() > deadline => {
                    return Err(format!(
                        "not ready after {START_WITHIN:?}: directory -> {dir:?}, management -> \
                         {management:?}\n{}",
                        log_tail(&self.log)
                    ));
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// The ACME directory URL.
    pub fn directory_url(&self) -> String {
        format!("https://{}/dir", self.listen)
    }

    /// Another URL of the ACME API.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}/{path}", self.listen)
    }

    async fn get_management(&self, path: &str) -> Result<String, String> {
        let url = format!("https://{}/{path}", self.management);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if status != 200 {
            return Err(format!("GET {url}: {status}: {body}"));
        }
        Ok(body)
    }

    /// The root Pebble issues under (new at every start), PEM.
    pub async fn issuing_root_pem(&self) -> String {
        self.get_management("roots/0").await.unwrap()
    }

    /// The status Pebble keeps of the certificate with this serial (`Valid`, `Revoked`).
    pub async fn cert_status(&self, serial_hex: &str) -> String {
        let body = self
            .get_management(&format!("cert-status-by-serial/{serial_hex}"))
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["Status"].as_str().unwrap_or_default().to_owned()
    }

    /// Pebble's log so far (for failure messages).
    pub fn log(&self) -> String {
        log_tail(&self.log)
    }

    /// Stops it and waits until it has exited (its ports are free then).
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
