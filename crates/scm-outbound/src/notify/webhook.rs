//! The `webhook` notifier: POSTs each notification as JSON to the operator's URL, through the one
//! outbound HTTP client (so the egress policy holds), optionally signed.
//!
//! The body is the notification (`{"account", "at_ms", "event": "push_failed", ...}`). Headers:
//! `X-OpenSCM-Event` (the event name) and, when a secret is configured, `X-OpenSCM-Signature:
//! sha256=<hex HMAC-SHA256 of the body under the secret>`, for the receiver to check. A 2xx answer
//! is success; 408, 429 and 5xx, timeouts and connection failures are retried; any other answer
//! and a refusal by the egress policy are not. (Signing and the meaning of answers are shared
//! with the `webhook` push target: [`crate::webhook`].)

use std::path::PathBuf;

use async_trait::async_trait;
use aws_lc_rs::hmac;
use scm_core::deploy::DeliveryErrorKind;
use scm_core::notify::{Notification, Notifier, NotifyError, NotifyErrorKind};
use serde::Deserialize;

use crate::http::{Bytes, Method, OutboundHttp, OutboundRequest};
use crate::webhook;

/// A webhook notifier as written in the config file (`kind = "webhook"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Unique name.
    pub name: String,
    /// The account (32-hex domain id) whose events it receives.
    pub account: String,
    /// `http://` or `https://` URL to POST to.
    pub url: String,
    /// A file holding the signing secret (mode 0600); without it the body is not signed.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
}

/// Sends notifications to one URL.
pub struct WebhookNotifier {
    url: String,
    key: Option<hmac::Key>,
    http: OutboundHttp,
}

impl std::fmt::Debug for WebhookNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookNotifier")
            .field("url", &self.url)
            .field("signed", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

impl WebhookNotifier {
    /// Checks the config (URL scheme, secret file) and builds the notifier.
    pub fn new(c: &WebhookConfig, http: OutboundHttp) -> Result<Self, String> {
        if !(c.url.starts_with("http://") || c.url.starts_with("https://")) {
            return Err("url must be an http:// or https:// URL".into());
        }
        let key = match &c.secret_file {
            Some(path) => {
                Some(webhook::signing_key(path).map_err(|e| format!("secret_file: {e}"))?)
            }
            None => None,
        };
        Ok(Self {
            url: c.url.clone(),
            key,
            http,
        })
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    async fn notify(&self, n: &Notification) -> Result<(), NotifyError> {
        let body = serde_json::to_vec(n)
            .map_err(|e| NotifyError::permanent(format!("cannot encode the notification: {e}")))?;
        let mut req = OutboundRequest::new(Method::POST, self.url.clone());
        req.headers = webhook::headers(n.event.name(), self.key.as_ref(), &body);
        req.body = Some(Bytes::from(body));
        webhook::outcome(self.http.send(req).await).map_err(|e| NotifyError {
            kind: match e.kind {
                DeliveryErrorKind::Transient => NotifyErrorKind::Transient,
                DeliveryErrorKind::Permanent => NotifyErrorKind::Permanent,
                DeliveryErrorKind::Misconfigured => NotifyErrorKind::Misconfigured,
            },
            message: e.message,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use scm_core::notify::{Event, NotifyErrorKind};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::http::EgressPolicy;
    use crate::webhook::signature;

    /// A one-shot HTTP receiver on loopback: answers `status` and hands back the raw request.
    async fn receiver(status: u16) -> (String, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            // Read the head, then as much body as Content-Length says.
            loop {
                let n = conn.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        break;
                    }
                }
            }
            let answer =
                format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            conn.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&got).to_string()
        });
        (url, task)
    }

    fn note() -> Notification {
        Notification {
            account: "0123456789abcdef0123456789abcdef".into(),
            at_ms: 1,
            event: Event::PushFailed {
                certificate_id: "scs1700000000000".into(),
                name: "www.shop.test".into(),
                service: "ELB".into(),
                region: Some("r1".into()),
                targets: vec!["web".into()],
                error: "reload failed".into(),
                attempts: 30,
            },
        }
    }

    fn loopback() -> OutboundHttp {
        OutboundHttp::new(EgressPolicy {
            allow_loopback: true,
            ..EgressPolicy::default()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn posts_the_notification_signed_with_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (url, got) = receiver(204).await;
        let hook = WebhookNotifier::new(
            &WebhookConfig {
                name: "ops".into(),
                account: String::new(),
                url,
                secret_file: Some(secret),
            },
            loopback(),
        )
        .unwrap();
        hook.notify(&note()).await.unwrap();
        let request = got.await.unwrap();
        let (head, body) = request.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("POST /hook HTTP/1.1"), "{head}");
        let head = head.to_ascii_lowercase();
        assert!(head.contains("x-openscm-event: push_failed"), "{head}");
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["event"], "push_failed");
        assert_eq!(json["certificate_id"], "scs1700000000000");
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"s3cret");
        let expected = signature(&key, body.as_bytes());
        assert!(
            head.contains(&format!("x-openscm-signature: {expected}")),
            "{head}"
        );
    }

    #[tokio::test]
    async fn answers_decide_whether_to_retry() {
        for (status, kind) in [
            (500, NotifyErrorKind::Transient),
            (429, NotifyErrorKind::Transient),
            (404, NotifyErrorKind::Permanent),
        ] {
            let (url, got) = receiver(status).await;
            let c = WebhookConfig {
                name: "ops".into(),
                account: String::new(),
                url,
                secret_file: None,
            };
            let e = WebhookNotifier::new(&c, loopback())
                .unwrap()
                .notify(&note())
                .await
                .unwrap_err();
            assert_eq!(e.kind, kind, "{status}: {e}");
            got.await.unwrap();
        }
        // The egress policy holds: without allow_loopback the receiver is never reached.
        let (url, _got) = receiver(204).await;
        let c = WebhookConfig {
            name: "ops".into(),
            account: String::new(),
            url,
            secret_file: None,
        };
        let strict = OutboundHttp::new(EgressPolicy::default()).unwrap();
        let e = WebhookNotifier::new(&c, strict)
            .unwrap()
            .notify(&note())
            .await
            .unwrap_err();
        assert_eq!(e.kind, NotifyErrorKind::Misconfigured, "{e}");
        assert!(e.message.contains("refused"), "{e}");
        let bad = WebhookConfig {
            url: "ftp://x".into(),
            ..c
        };
        assert!(WebhookNotifier::new(&bad, loopback()).is_err());
    }
}
