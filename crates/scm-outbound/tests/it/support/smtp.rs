//! A real SMTP server: aiosmtpd (Debian `python3-aiosmtpd`) run by a small Python script that
//! saves each received mail as a JSON file (envelope, decoded headers and body, whether the
//! session was encrypted and authenticated). It can offer STARTTLS (required), implicit TLS,
//! require a login, and answer every RCPT with a given reply.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{START_WITHIN, free_tcp_port, log_tail};

/// The server script: argv options, one JSON file per mail in `--dir`.
const SCRIPT: &str = r#"
import argparse, email, email.policy, json, os, ssl, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--dir", required=True)
p.add_argument("--cert")
p.add_argument("--key")
p.add_argument("--mode", choices=["plain", "starttls", "smtps"], default="plain")
p.add_argument("--login")
p.add_argument("--password")
p.add_argument("--rcpt-reply")
a = p.parse_args()

class Save:
    def __init__(self):
        self.n = 0
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if a.rcpt_reply:
            return a.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"
    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        m = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        saved = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(m["From"]),
            "to": str(m["To"]),
            "subject": str(m["Subject"]),
            "content_type": m.get_content_type(),
            "body": m.get_content(),
            # session.ssl is set by STARTTLS only; implicit TLS shows on the transport.
            "encrypted": session.ssl is not None
                or server.transport.get_extra_info("ssl_object") is not None,
            "authenticated": bool(session.authenticated),
        }
        path = os.path.join(a.dir, "%04d.json" % self.n)
        with open(path + ".tmp", "w") as f:
            json.dump(saved, f)
        os.rename(path + ".tmp", path)
        return "250 OK saved"

def check_login(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login.decode() == a.login and auth_data.password.decode() == a.password
    # handled=False: aiosmtpd answers 535 itself.
    return AuthResult(success=ok, handled=False)

kwargs = {}
if a.mode != "plain":
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(a.cert, a.key)
    if a.mode == "starttls":
        kwargs.update(tls_context=ctx, require_starttls=True)
    else:
        kwargs.update(ssl_context=ctx)
if a.login:
    kwargs.update(authenticator=check_login, auth_required=True, auth_require_tls=True)
c = Controller(Save(), hostname="127.0.0.1", port=a.port, **kwargs)
c.start()
print("ready", flush=True)
while True:
    time.sleep(3600)
"#;

/// How a test server protects its connections.
pub enum SmtpTls<'a> {
    /// Plain SMTP.
    Plain,
    /// STARTTLS offered and required, with this chain and key (PEM files).
    StartTls(&'a Path, &'a Path),
    /// Implicit TLS from the first byte.
    Implicit(&'a Path, &'a Path),
}

/// What the server is told to do.
pub struct SmtpOptions<'a> {
    /// TLS.
    pub tls: SmtpTls<'a>,
    /// A login and password it requires (over TLS only).
    pub login: Option<(&'a str, &'a str)>,
    /// A reply given to every RCPT instead of accepting it (`"550 5.1.1 no such user"`).
    pub rcpt_reply: Option<&'a str>,
}

impl Default for SmtpOptions<'_> {
    fn default() -> Self {
        Self {
            tls: SmtpTls::Plain,
            login: None,
            rcpt_reply: None,
        }
    }
}

/// One mail as the server received it.
#[derive(Debug, serde::Deserialize)]
pub struct Received {
    /// The envelope sender.
    pub mail_from: String,
    /// The envelope recipients.
    pub rcpt_tos: Vec<String>,
    /// The `From` header, decoded.
    pub from: String,
    /// The `To` header, decoded.
    pub to: String,
    /// The `Subject` header, decoded (unfolded).
    pub subject: String,
    /// The body's MIME type.
    pub content_type: String,
    /// The body, decoded.
    pub body: String,
    /// Whether the session was encrypted (STARTTLS or implicit TLS).
    pub encrypted: bool,
    /// Whether the client logged in.
    pub authenticated: bool,
}

/// A running aiosmtpd, killed when dropped.
pub struct SmtpServer {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    mails: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Python interpreter that has aiosmtpd: Debian's (the package installs for it), else the one
/// on `PATH`. Fails the test, naming the package, when neither has it.
fn python() -> PathBuf {
    for candidate in ["/usr/bin/python3", "python3"] {
        let ok = Command::new(candidate)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return PathBuf::from(candidate);
        }
    }
    panic!(
        "the Python module aiosmtpd is not installed: these tests need a real SMTP server \
         (apt-get install -y python3-aiosmtpd; scripts/test-all installs it)"
    );
}

impl SmtpServer {
    /// Starts one on a free loopback port and waits until it accepts connections. Another
    /// process may take the port between choosing and binding it, so a start that fails is
    /// tried again on another port (three times in all).
    pub async fn start(options: &SmtpOptions<'_>) -> Self {
        let python = python();
        let mut failures = Vec::new();
        for _ in 0..3 {
            let mut server = Self::spawn(&python, options);
            match server.ready().await {
                Ok(()) => return server,
                Err(seen) => failures.push(seen),
            }
        }
        panic!("aiosmtpd did not start:\n{}", failures.join("\n---\n"));
    }

    fn spawn(python: &Path, options: &SmtpOptions<'_>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("smtpd.py");
        std::fs::write(&script, SCRIPT).unwrap();
        let mails = dir.path().join("mails");
        std::fs::create_dir(&mails).unwrap();
        let log = dir.path().join("smtpd.log");
        let out = std::fs::File::create(&log).unwrap();
        let addr = free_tcp_port();
        let mut command = Command::new(python);
        command
            .arg(&script)
            .args(["--port", &addr.port().to_string()])
            .arg("--dir")
            .arg(&mails);
        let tls = match options.tls {
            SmtpTls::Plain => None,
            SmtpTls::StartTls(cert, key) => Some(("starttls", cert, key)),
            SmtpTls::Implicit(cert, key) => Some(("smtps", cert, key)),
        };
        if let Some((mode, cert, key)) = tls {
            command
                .args(["--mode", mode, "--cert"])
                .arg(cert)
                .arg("--key")
                .arg(key);
        }
        if let Some((login, password)) = options.login {
            command.args(["--login", login, "--password", password]);
        }
        if let Some(reply) = options.rcpt_reply {
            command.args(["--rcpt-reply", reply]);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        Self {
            child,
            addr,
            mails,
            log,
            _dir: dir,
        }
    }

    /// Waits until the port accepts connections, or says what it saw.
    async fn ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_WITHIN;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status}:\n{}", log_tail(&self.log)));
            }
            let connected = tokio::net::TcpStream::connect(self.addr).await;
            if connected.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "not accepting on {} after {START_WITHIN:?}: {connected:?}\n{}",
                    self.addr,
                    log_tail(&self.log)
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The mails received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.mails)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }

    /// Waits (10 s at most) until `count` mails have arrived, and returns them.
    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.received();
            if got.len() >= count || Instant::now() > deadline {
                assert_eq!(
                    got.len(),
                    count,
                    "mails received: {got:?}\nserver log:\n{}",
                    log_tail(&self.log)
                );
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The end of the server's log, for failure messages.
    pub fn log(&self) -> String {
        log_tail(&self.log)
    }
}
