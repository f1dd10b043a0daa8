//! The `webhook` target: POST the delivered certificate as JSON to the operator's URL, through the
//! one outbound HTTP client (so the egress policy holds), signed; the receiver installs it.
//!
//! The body:
//!
//! ```json
//! {"event": "certificate_delivered", "at_ms": 1767225600000,
//!  "certificate_id": "scs...", "version": 3, "names": ["www.shop.test"],
//!  "serial": "0a...", "sha256_fingerprint": "ab...", "not_after": "2027-01-15T08:00:00Z",
//!  "certificate": "<leaf PEM>", "chain": "<intermediates PEM>", "fullchain": "<both>",
//!  "private_key": "<PKCS#8 PEM, only with include_private_key = true>",
//!  "target": "hook", "delivery": {"job_id": 7, "attempt": 1}}
//! ```
//!
//! Headers: `X-OpenSCM-Event: certificate_delivered` and `X-OpenSCM-Signature: sha256=<hex
//! HMAC-SHA256 of the body under the secret in secret_file>`, the same scheme as the notifier
//! webhook ([`crate::webhook`]). The receiver should check the signature, and may refuse a stale
//! `at_ms` (a replayed request). It must be idempotent: a delivery interrupted by a crash, or
//! retried, POSTs the same certificate again (same `certificate_id`, `version` and `delivery.job_id`).
//!
//! `secret_file` is required (a receiver that installs certificates must be able to tell who sent
//! them) and must be readable only by its owner. `include_private_key = true` requires an
//! `https://` URL unless the URL's host is a loopback address. A URL whose host is an address the
//! egress policy refuses is refused at start; a name is checked at each request as it resolves.
//!
//! How failures are classified for the job runner: 2xx is delivered; 408, 429 and 5xx, timeouts
//! (the policy's, or `timeout_seconds`, whichever is shorter) and connection failures are
//! **transient**; any other status is **permanent**; a refusal by the egress policy is
//! **misconfigured**.

use std::time::Duration;

use async_trait::async_trait;
use aws_lc_rs::hmac;
use scm_core::deploy::{DeliveryError, Deployer, Material};
use serde::Serialize;
use zeroize::Zeroizing;

use super::command;
use crate::http::{Bytes, Method, OutboundHttp, OutboundRequest};
use crate::webhook;

crate::target_config! {
    /// A webhook target as written in the config file (`kind = "webhook"`).
    pub struct WebhookTargetConfig {
        /// `https://` (or `http://`) URL to POST to.
        pub url: String,
        /// A file holding the signing secret (mode 0600).
        pub secret_file: std::path::PathBuf,
        /// Whether the body carries the private key (default false).
        #[serde(default)]
        pub include_private_key: bool,
        /// Seconds the request may take (default 30; the egress policy's limit also holds).
        #[serde(default)]
        pub timeout_seconds: Option<u64>,
    }
}

/// The event name, in the body and the `X-OpenSCM-Event` header.
pub const EVENT: &str = "certificate_delivered";

/// Delivers to one URL.
pub struct WebhookDeployer {
    name: String,
    url: String,
    key: hmac::Key,
    include_private_key: bool,
    timeout: Duration,
    http: OutboundHttp,
}

impl std::fmt::Debug for WebhookDeployer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Neither the URL (it may carry a token) nor the key.
        f.debug_struct("WebhookDeployer")
            .field("name", &self.name)
            .field("include_private_key", &self.include_private_key)
            .finish_non_exhaustive()
    }
}

impl WebhookDeployer {
    /// Checks a configured target against the egress policy of `http`; the error names the key
    /// at fault.
    pub fn new(c: &WebhookTargetConfig, http: &OutboundHttp) -> Result<Self, String> {
        let facts = webhook::check_url(&c.url, http.policy()).map_err(|e| format!("url {e}"))?;
        if c.include_private_key && !facts.https && !facts.loopback {
            return Err(
                "url must be an https:// URL when include_private_key = true (the key would \
                 cross the network in clear)"
                    .into(),
            );
        }
        let key = webhook::signing_key(&c.secret_file).map_err(|e| format!("secret_file: {e}"))?;
        Ok(Self {
            name: c.name.clone(),
            url: c.url.clone(),
            key,
            include_private_key: c.include_private_key,
            timeout: command::timeout(c.timeout_seconds)?,
            http: http.clone(),
        })
    }
}

#[derive(Serialize)]
struct Body<'a> {
    event: &'static str,
    at_ms: i64,
    certificate_id: &'a str,
    version: u32,
    names: &'a [String],
    serial: &'a str,
    sha256_fingerprint: &'a str,
    not_after: String,
    certificate: &'a str,
    chain: &'a str,
    fullchain: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    private_key: Option<&'a str>,
    target: &'a str,
    delivery: Delivery,
}

#[derive(Serialize)]
struct Delivery {
    job_id: i64,
    attempt: u32,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[async_trait]
impl Deployer for WebhookDeployer {
    async fn deliver(&self, m: &Material) -> Result<(), DeliveryError> {
        let f = &m.facts;
        let body = Body {
            event: EVENT,
            at_ms: now_ms(),
            certificate_id: &f.certificate_id,
            version: f.version,
            names: &f.names,
            serial: &f.serial_hex,
            sha256_fingerprint: &f.sha256_fingerprint,
            not_after: command::rfc3339_ms(f.not_after_ms),
            certificate: &m.leaf_pem,
            chain: &m.chain_pem,
            fullchain: &m.fullchain_pem,
            private_key: self.include_private_key.then_some(m.key_pem.as_str()),
            target: &self.name,
            delivery: Delivery {
                job_id: m.context.job_id,
                attempt: m.context.attempt,
            },
        };
        let mut json = Zeroizing::new(Vec::with_capacity(8192));
        serde_json::to_writer(&mut *json, &body)
            .map_err(|e| DeliveryError::permanent(format!("cannot encode the delivery: {e}")))?;
        let mut req = OutboundRequest::new(Method::POST, self.url.clone());
        req.headers = webhook::headers(EVENT, Some(&self.key), &json);
        // The client needs the body as its own bytes; that copy (with the key, when included) is
        // not wiped, which is why the key is sent only when the operator asks.
        req.body = Some(Bytes::copy_from_slice(&json));
        let answer = tokio::time::timeout(self.timeout, self.http.send(req))
            .await
            .map_err(|_| {
                DeliveryError::transient(format!(
                    "the webhook did not answer within {} s",
                    self.timeout.as_secs()
                ))
            })?;
        webhook::outcome(answer)?;
        tracing::debug!(target = %self.name, "delivered to a webhook");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use scm_core::deploy::DeliveryErrorKind;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::http::EgressPolicy;

    /// A real HTTP receiver on loopback: answers `status` to one request and hands back its head
    /// and body.
    async fn receiver(status: u16) -> (String, tokio::task::JoinHandle<(String, Vec<u8>)>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook?token=t", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 8192];
            let (head, body) = loop {
                let n = conn.read(&mut buf).await.unwrap();
                assert!(
                    n > 0,
                    "the connection closed early: {:?}",
                    String::from_utf8_lossy(&got)
                );
                got.extend_from_slice(&buf[..n]);
                let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&got[..end]).to_string();
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if got.len() >= end + 4 + len {
                    break (head, got[end + 4..end + 4 + len].to_vec());
                }
            };
            let answer =
                format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            conn.write_all(answer.as_bytes()).await.unwrap();
            (head, body)
        });
        (url, task)
    }

    fn loopback() -> OutboundHttp {
        OutboundHttp::new(EgressPolicy {
            allow_loopback: true,
            ..EgressPolicy::default()
        })
        .unwrap()
    }

    fn config(
        dir: &std::path::Path,
        url: String,
        include_private_key: bool,
    ) -> WebhookTargetConfig {
        let secret = dir.join("secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        WebhookTargetConfig {
            name: "hook".into(),
            account: String::new(),
            service: "ELB".into(),
            region: None,
            resource_id: None,
            verify: None,
            redeliver_on_drift: false,
            url,
            secret_file: secret,
            include_private_key,
            timeout_seconds: Some(10),
        }
    }

    fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    #[tokio::test]
    async fn posts_the_certificate_signed_without_the_key_by_default() {
        let d = tempfile::tempdir().unwrap();
        let (url, got) = receiver(204).await;
        let t = WebhookDeployer::new(&config(d.path(), url, false), &loopback()).unwrap();
        let m = super::super::files::tests::real_material();
        t.deliver(&m).await.unwrap();
        let (head, body) = got.await.unwrap();
        assert!(head.starts_with("POST /hook?token=t HTTP/1.1"), "{head}");
        assert_eq!(
            header(&head, "x-openscm-event"),
            Some("certificate_delivered")
        );
        assert_eq!(header(&head, "content-type"), Some("application/json"));
        // The receiver's check: HMAC-SHA256 of the exact body bytes under the shared secret.
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"s3cret");
        let sig = header(&head, "x-openscm-signature").expect("signed");
        let hex = sig.strip_prefix("sha256=").expect("sha256=");
        let tag: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        hmac::verify(&key, &body, &tag).expect("the signature verifies");
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["event"], "certificate_delivered");
        assert_eq!(json["certificate_id"], "scs1700000000000");
        assert_eq!(json["version"], 3);
        assert_eq!(json["names"], serde_json::json!(["www.shop.test"]));
        assert_eq!(json["serial"], m.facts.serial_hex.as_str());
        assert_eq!(
            json["sha256_fingerprint"],
            m.facts.sha256_fingerprint.as_str()
        );
        assert_eq!(
            json["not_after"],
            command::rfc3339_ms(m.facts.not_after_ms).as_str()
        );
        assert_eq!(json["certificate"], m.leaf_pem.as_str());
        assert_eq!(json["chain"], m.chain_pem.as_str());
        assert_eq!(json["fullchain"], m.fullchain_pem.as_str());
        assert_eq!(json["target"], "hook");
        assert_eq!(
            json["delivery"],
            serde_json::json!({"job_id": 7, "attempt": 1})
        );
        assert!(json["at_ms"].as_i64().unwrap() > 1_700_000_000_000);
        assert!(json.get("private_key").is_none(), "{json}");
        assert!(!String::from_utf8_lossy(&body).contains("PRIVATE KEY"));
    }

    #[tokio::test]
    async fn the_key_is_sent_only_when_configured() {
        let d = tempfile::tempdir().unwrap();
        let (url, got) = receiver(200).await;
        let t = WebhookDeployer::new(&config(d.path(), url, true), &loopback()).unwrap();
        let m = super::super::files::tests::real_material();
        t.deliver(&m).await.unwrap();
        let (_, body) = got.await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["private_key"], m.key_pem.as_str());
        // Not over plain HTTP to another host.
        let c = config(d.path(), "http://hooks.example.com/x".into(), true);
        let e = WebhookDeployer::new(&c, &loopback()).unwrap_err();
        assert!(e.starts_with("url must be an https:// URL"), "{e}");
    }

    #[tokio::test]
    async fn answers_decide_whether_to_retry() {
        let d = tempfile::tempdir().unwrap();
        for (status, kind) in [
            (500, DeliveryErrorKind::Transient),
            (503, DeliveryErrorKind::Transient),
            (429, DeliveryErrorKind::Transient),
            (403, DeliveryErrorKind::Permanent),
        ] {
            let (url, got) = receiver(status).await;
            let e = WebhookDeployer::new(&config(d.path(), url, false), &loopback())
                .unwrap()
                .deliver(&crate::deploy::testing::material("v1"))
                .await
                .unwrap_err();
            assert_eq!(e.kind, kind, "{status}: {e}");
            assert!(e.message.contains(&status.to_string()), "{e}");
            got.await.unwrap();
        }
        // Nobody listening: transient.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", closed.local_addr().unwrap());
        drop(closed);
        let e = WebhookDeployer::new(&config(d.path(), url, false), &loopback())
            .unwrap()
            .deliver(&crate::deploy::testing::material("v1"))
            .await
            .unwrap_err();
        assert_eq!(e.kind, DeliveryErrorKind::Transient, "{e}");
    }

    #[tokio::test]
    async fn bad_configs_are_refused_at_start() {
        let d = tempfile::tempdir().unwrap();
        let strict = OutboundHttp::new(EgressPolicy::default()).unwrap();
        let c = config(d.path(), "http://127.0.0.1:9/hook".into(), false);
        let e = WebhookDeployer::new(&c, &strict).unwrap_err();
        assert!(e.starts_with("url is refused by the egress policy"), "{e}");
        let mut c = config(d.path(), "https://hooks.example.com/x".into(), false);
        std::fs::set_permissions(&c.secret_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = WebhookDeployer::new(&c, &strict).unwrap_err();
        assert!(
            e.starts_with("secret_file") && e.contains("chmod 600"),
            "{e}"
        );
        c.secret_file = d.path().join("missing");
        assert!(
            WebhookDeployer::new(&c, &strict)
                .unwrap_err()
                .starts_with("secret_file")
        );
        let mut c = config(d.path(), "https://hooks.example.com/x".into(), false);
        c.timeout_seconds = Some(0);
        assert!(
            WebhookDeployer::new(&c, &strict)
                .unwrap_err()
                .contains("timeout_seconds")
        );
    }
}
