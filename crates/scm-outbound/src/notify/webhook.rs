//! The `webhook` notifier: POSTs each notification as JSON to the operator's URL, through the one
//! outbound HTTP client (so the egress policy holds), optionally signed.
//!
//! The body is the notification (`{"account", "at_ms", "event": "push_failed", ...}`). Headers:
//! `X-OpenSCM-Event` (the event name) and, when a secret is configured, `X-OpenSCM-Signature:
//! sha256=<hex HMAC-SHA256 of the body under the secret>`, for the receiver to check. A 2xx answer
//! is success; 408, 429 and 5xx, timeouts and connection failures are retried; any other answer
//! and a refusal by the egress policy are not.

use std::path::PathBuf;

use async_trait::async_trait;
use aws_lc_rs::hmac;
use scm_core::deploy::DeliveryError;
use scm_core::notify::{Notification, Notifier};
use serde::Deserialize;

use crate::fsutil;
use crate::http::{Bytes, Method, OutboundHttp, OutboundRequest};

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
                let secret =
                    fsutil::read_secret_file(path).map_err(|e| format!("secret_file: {e}"))?;
                if secret.is_empty() {
                    return Err("secret_file: is empty".into());
                }
                Some(hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()))
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

/// `sha256=<hex>` of the body under `key`.
pub fn signature(key: &hmac::Key, body: &[u8]) -> String {
    let tag = hmac::sign(key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

#[async_trait]
impl Notifier for WebhookNotifier {
    async fn notify(&self, n: &Notification) -> Result<(), DeliveryError> {
        let body = serde_json::to_vec(n).map_err(|e| {
            DeliveryError::permanent(format!("cannot encode the notification: {e}"))
        })?;
        let mut headers = vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("X-OpenSCM-Event".to_owned(), n.event.name().to_owned()),
        ];
        if let Some(key) = &self.key {
            headers.push(("X-OpenSCM-Signature".to_owned(), signature(key, &body)));
        }
        let mut req = OutboundRequest::new(Method::POST, self.url.clone());
        req.headers = headers;
        req.body = Some(Bytes::from(body));
        match self.http.send(req).await {
            Ok(resp) if resp.is_success() => Ok(()),
            Ok(resp) if resp.status == 408 || resp.status == 429 || resp.status >= 500 => Err(
                DeliveryError::transient(format!("the webhook answered {}", resp.status)),
            ),
            Ok(resp) => Err(DeliveryError::permanent(format!(
                "the webhook answered {}",
                resp.status
            ))),
            Err(e) if e.is_transient() => Err(DeliveryError::transient(e.to_string())),
            Err(e) => Err(DeliveryError::misconfigured(e.to_string())),
        }
    }
}
