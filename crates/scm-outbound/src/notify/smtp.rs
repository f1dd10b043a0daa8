//! The `smtp` notifier: one plain-text mail per notification ([`super::text::render`]), through
//! the operator's mail server, with lettre (rustls on aws-lc-rs for TLS).
//!
//! `tls` says how the connection is protected: `none` (a local relay), `starttls` (required: the
//! mail is not sent if the server does not offer it) or `tls` (implicit TLS, usually port 465).
//! The server's certificate is checked against the machine's trust store, or only against
//! `ca_file` when one is given. Credentials (`username` and `password_file`) are only sent over
//! TLS.
//!
//! Failures: no connection, a timeout or a 4xx reply may pass and are retried; a 5xx reply is a
//! refusal of this mail; refused credentials, a TLS failure (an untrusted certificate, a server
//! that does not speak TLS) or a server without STARTTLS need an operator.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use scm_core::notify::{Notification, Notifier, NotifyError};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::text;
use crate::fsutil;

/// How long a delivery may take when `timeout_seconds` is not set.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// An SMTP notifier as written in the config file (`kind = "smtp"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Unique name.
    pub name: String,
    /// The account (32-hex domain id) whose events it receives.
    pub account: String,
    /// The mail server, `host:port` (`[v6]:port` for an IPv6 address); without a port, 25, 587
    /// or 465 by `tls`.
    pub server: String,
    /// `none`, `starttls` or `tls`.
    pub tls: String,
    /// The sender, `addr@example.com` or `Name <addr@example.com>`.
    pub from: String,
    /// The recipients (at least one), in the same forms.
    pub to: Vec<String>,
    /// The user to log in as; needs `password_file` and TLS.
    #[serde(default)]
    pub username: Option<String>,
    /// A file holding the password (mode 0600); needs `username`.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// PEM file of the CA certificates trusted for the server's certificate, instead of the
    /// machine's trust store (an internal mail server).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// How long one delivery may take, in seconds (default 30).
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

/// Sends notifications as mail through one server.
pub struct SmtpNotifier {
    server: String,
    host: String,
    port: u16,
    tls: Tls,
    from: Mailbox,
    to: Vec<Mailbox>,
    credentials: Option<(String, Zeroizing<String>)>,
    timeout: Duration,
}

impl std::fmt::Debug for SmtpNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("SmtpNotifier")
            .field("server", &self.server)
            .field("tls", &self.tls)
            .field("from", &self.from.to_string())
            .field("to", &self.to.len())
            .field("username", &self.credentials.as_ref().map(|(u, _)| u))
            .finish_non_exhaustive()
    }
}

impl SmtpNotifier {
    /// Checks the config (server, TLS mode, addresses, credentials, CA file) and builds the
    /// notifier; the error names the key at fault.
    pub fn new(c: &SmtpConfig) -> Result<Self, String> {
        let default_port = match c.tls.as_str() {
            "none" => 25,
            "starttls" => 587,
            "tls" => 465,
            other => {
                return Err(format!(
                    "tls: must be \"none\", \"starttls\" or \"tls\", not {other:?}"
                ));
            }
        };
        let (host, port) =
            split_server(&c.server, default_port).map_err(|e| format!("server: {e}"))?;
        let tls = if c.tls == "none" {
            if c.ca_file.is_some() {
                return Err("ca_file: needs tls = \"starttls\" or \"tls\"".into());
            }
            Tls::None
        } else {
            let params = tls_parameters(&host, c.ca_file.as_ref())?;
            if c.tls == "tls" {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            }
        };
        let from: Mailbox = c
            .from
            .parse()
            .map_err(|e| format!("from: {:?} is not a mail address: {e}", c.from))?;
        if c.to.is_empty() {
            return Err("to: needs at least one address".into());
        }
        let to =
            c.to.iter()
                .map(|t| {
                    t.parse::<Mailbox>()
                        .map_err(|e| format!("to: {t:?} is not a mail address: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
        let credentials = match (&c.username, &c.password_file) {
            (Some(user), Some(path)) => {
                if user.is_empty() {
                    return Err("username: must not be empty".into());
                }
                if c.tls == "none" {
                    return Err(
                        "username: credentials are only sent over TLS (tls = \"starttls\" or \"tls\")"
                            .into(),
                    );
                }
                let password =
                    fsutil::read_secret_file(path).map_err(|e| format!("password_file: {e}"))?;
                if password.is_empty() {
                    return Err("password_file: is empty".into());
                }
                Some((user.clone(), password))
            }
            (Some(_), None) => return Err("username: needs password_file".into()),
            (None, Some(_)) => return Err("password_file: needs username".into()),
            (None, None) => None,
        };
        let timeout = match c.timeout_seconds {
            Some(0) => return Err("timeout_seconds: must be at least 1".into()),
            Some(s) => Duration::from_secs(s),
            None => DEFAULT_TIMEOUT,
        };
        Ok(Self {
            server: c.server.clone(),
            host,
            port,
            tls,
            from,
            to,
            credentials,
            timeout,
        })
    }

    /// A transport for one delivery. Built per mail (it is cheap: the TLS configuration is
    /// shared) so that lettre's own copy of the password, a plain `String`, lives only as long
    /// as the delivery.
    fn transport(&self) -> AsyncSmtpTransport<Tokio1Executor> {
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host)
            .port(self.port)
            .tls(self.tls.clone())
            .timeout(Some(self.timeout));
        if let Some((user, password)) = &self.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.to_string()));
        }
        builder.build()
    }
}

#[async_trait]
impl Notifier for SmtpNotifier {
    async fn notify(&self, n: &Notification) -> Result<(), NotifyError> {
        let (subject, body) = text::render(n);
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            message = message.to(to.clone());
        }
        let message = message
            .body(body)
            .map_err(|e| NotifyError::permanent(format!("cannot compose the mail: {e}")))?;
        let sent = tokio::time::timeout(self.timeout, self.transport().send(message)).await;
        match sent {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(classify(&e, &self.server)),
            Err(_) => Err(NotifyError::transient(format!(
                "mail server {}: no delivery within {} s",
                self.server,
                self.timeout.as_secs()
            ))),
        }
    }
}

/// The TLS parameters for `host`: the machine's roots, or only those of `ca_file`.
fn tls_parameters(host: &str, ca_file: Option<&PathBuf>) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(host.to_owned());
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| format!("ca_file: cannot read {}: {e}", path.display()))?;
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(format!("ca_file: {} holds no certificate", path.display()));
        }
        let certs = Certificate::from_pem(&pem).map_err(|e| {
            format!(
                "ca_file: {} holds no usable certificate: {e}",
                path.display()
            )
        })?;
        builder = builder
            .certificate_store(CertificateStore::None)
            .add_root_certificate(certs);
    }
    builder
        .build_rustls()
        .map_err(|e| format!("tls: cannot set up TLS: {e}"))
}

/// `host:port`, `[v6]:port`, or a host alone (`default_port`).
fn split_server(server: &str, default_port: u16) -> Result<(String, u16), String> {
    let port_of = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{p:?} is not a port"))
    };
    let (host, port) = if let Some(rest) = server.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{server:?}: no closing ]"))?;
        match after {
            "" => (host, default_port),
            _ => match after.strip_prefix(':') {
                Some(p) => (host, port_of(p)?),
                None => return Err(format!("{server:?} is not host:port")),
            },
        }
    } else {
        match server.split(':').count() {
            1 => (server, default_port),
            2 => match server.split_once(':') {
                Some((h, p)) => (h, port_of(p)?),
                None => (server, default_port),
            },
            _ => return Err(format!("{server:?}: write an IPv6 address in brackets")),
        }
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("{server:?} has no host"));
    }
    Ok((host.to_owned(), port))
}

/// Whether the reply code is an authentication one (530 required, 534 mechanism too weak, 535
/// credentials invalid, 538 encryption required).
fn auth_code(code: &str) -> bool {
    matches!(code, "530" | "534" | "535" | "538")
}

/// Whether a rustls error is in `e`'s causes (a certificate not trusted, a name mismatch, a peer
/// that does not speak TLS). tokio-rustls wraps it in an `io::Error`, whose `source()` skips it.
fn tls_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(err) = cause {
        if err.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
        {
            return true;
        }
        cause = err.source();
    }
    false
}

/// Sorts a lettre failure: retried, refused, or for an operator.
fn classify(e: &lettre::transport::smtp::Error, server: &str) -> NotifyError {
    let message = format!("mail server {server}: {e}");
    if e.is_transient() || e.is_timeout() {
        return NotifyError::transient(message);
    }
    if e.is_permanent() {
        return match e.status() {
            Some(code) if auth_code(&code.to_string()) => NotifyError::misconfigured(format!(
                "{message} (check username, password_file and tls)"
            )),
            _ => NotifyError::permanent(message),
        };
    }
    if e.is_tls() || tls_failure(e) {
        return NotifyError::misconfigured(format!("{message} (check tls and ca_file)"));
    }
    if e.is_client() {
        // No STARTTLS offered, no common login mechanism: the configuration does not fit the
        // server.
        return NotifyError::misconfigured(message);
    }
    // Connection refused or reset, an unreadable reply, a transport shut down: may pass.
    NotifyError::transient(message)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn config() -> SmtpConfig {
        SmtpConfig {
            name: "mail".into(),
            account: "0123456789abcdef0123456789abcdef".into(),
            server: "127.0.0.1:2525".into(),
            tls: "none".into(),
            from: "openscm@shop.test".into(),
            to: vec!["ops@shop.test".into()],
            username: None,
            password_file: None,
            ca_file: None,
            timeout_seconds: None,
        }
    }

    fn refused(c: &SmtpConfig) -> String {
        match SmtpNotifier::new(c) {
            Ok(n) => panic!("accepted: {n:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn the_contract_parses() {
        let text = r#"
            name = "mail"
            account = "0123456789abcdef0123456789abcdef"
            server = "127.0.0.1:2525"
            tls = "none"
            from = "openscm@shop.test"
            to = ["ops@shop.test"]
            timeout_seconds = 30
        "#;
        let c: SmtpConfig = toml::from_str(text).unwrap();
        assert_eq!(
            c,
            SmtpConfig {
                timeout_seconds: Some(30),
                ..config()
            }
        );
        let n = SmtpNotifier::new(&c).unwrap();
        assert_eq!((n.host.as_str(), n.port), ("127.0.0.1", 2525));
        assert!(toml::from_str::<SmtpConfig>(&format!("{text}\nsmtp_port = 1")).is_err());
    }

    #[test]
    fn servers_are_host_and_port() {
        assert_eq!(
            split_server("mail.test:25", 1).unwrap(),
            ("mail.test".into(), 25)
        );
        assert_eq!(
            split_server("mail.test", 465).unwrap(),
            ("mail.test".into(), 465)
        );
        assert_eq!(split_server("[::1]:2525", 1).unwrap(), ("::1".into(), 2525));
        assert_eq!(split_server("[::1]", 587).unwrap(), ("::1".into(), 587));
        for bad in [
            "",
            ":25",
            "mail.test:",
            "mail.test:x",
            "mail.test:0",
            "::1",
            "[::1",
            "[::1]x",
        ] {
            assert!(split_server(bad, 25).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_settings_are_refused_naming_the_key() {
        let e = refused(&SmtpConfig {
            tls: "ssl".into(),
            ..config()
        });
        assert!(e.starts_with("tls: "), "{e}");
        let e = refused(&SmtpConfig {
            server: "mail.test:x".into(),
            ..config()
        });
        assert!(e.starts_with("server: "), "{e}");
        let e = refused(&SmtpConfig {
            from: "not an address".into(),
            ..config()
        });
        assert!(e.starts_with("from: "), "{e}");
        let e = refused(&SmtpConfig {
            to: vec![],
            ..config()
        });
        assert!(e.starts_with("to: "), "{e}");
        let e = refused(&SmtpConfig {
            to: vec!["ops@shop.test".into(), "ops at shop".into()],
            ..config()
        });
        assert!(e.starts_with("to: ") && e.contains("ops at shop"), "{e}");
        let e = refused(&SmtpConfig {
            timeout_seconds: Some(0),
            ..config()
        });
        assert!(e.starts_with("timeout_seconds: "), "{e}");
        let e = refused(&SmtpConfig {
            ca_file: Some("/nonexistent".into()),
            ..config()
        });
        assert!(e.starts_with("ca_file: "), "{e}");
        let e = refused(&SmtpConfig {
            tls: "starttls".into(),
            ca_file: Some("/nonexistent".into()),
            ..config()
        });
        assert!(e.starts_with("ca_file: "), "{e}");
        // Named addresses are fine.
        SmtpNotifier::new(&SmtpConfig {
            from: "OpenSCM <openscm@shop.test>".into(),
            ..config()
        })
        .unwrap();
    }

    #[test]
    fn credentials_need_each_other_a_private_file_and_tls() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("smtp.password");
        std::fs::write(&file, "s3cret\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let tls = SmtpConfig {
            tls: "tls".into(),
            ..config()
        };

        let e = refused(&SmtpConfig {
            username: Some("openscm".into()),
            ..tls.clone()
        });
        assert!(e.starts_with("username: "), "{e}");
        let e = refused(&SmtpConfig {
            password_file: Some(file.clone()),
            ..tls.clone()
        });
        assert!(e.starts_with("password_file: "), "{e}");
        let with = SmtpConfig {
            username: Some("openscm".into()),
            password_file: Some(file.clone()),
            ..tls.clone()
        };
        let e = refused(&with);
        assert!(
            e.starts_with("password_file: ") && e.contains("chmod 600"),
            "{e}"
        );
        let e = refused(&SmtpConfig {
            password_file: Some(dir.path().join("missing")),
            ..with.clone()
        });
        assert!(e.starts_with("password_file: "), "{e}");

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = refused(&SmtpConfig {
            tls: "none".into(),
            ..with.clone()
        });
        assert!(e.starts_with("username: ") && e.contains("TLS"), "{e}");
        let n = SmtpNotifier::new(&with).unwrap();
        let debug = format!("{n:?}");
        assert!(
            debug.contains("openscm") && !debug.contains("s3cret"),
            "{debug}"
        );
        assert_eq!(
            n.credentials.as_ref().map(|(_, p)| p.as_str()),
            Some("s3cret")
        );
    }
}
