//! Notifiers: the [`scm_core::notify::Notifier`] of each way of telling people, and its
//! configuration. Kinds: `webhook` ([`webhook`]). Mail comes next.

pub mod webhook;

use std::sync::Arc;

use scm_core::notify::NotifierTarget;
use scm_proto::DomainId;
use serde::Deserialize;

use crate::http::OutboundHttp;

/// A notifier as written in the config file (`[[notifiers]]`), by `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum NotifierConfig {
    /// POST a JSON document to a URL.
    Webhook(webhook::WebhookConfig),
}

impl NotifierConfig {
    /// The notifier's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Webhook(c) => &c.name,
        }
    }
}

/// Checks a configured notifier and builds it over the one outbound HTTP client; the error
/// names the notifier and the key at fault.
pub fn notifier(c: &NotifierConfig, http: &OutboundHttp) -> Result<NotifierTarget, String> {
    match c {
        NotifierConfig::Webhook(w) => {
            let at = |e: String| format!("notifiers \"{}\": {e}", w.name);
            if w.name.trim().is_empty() {
                return Err("notifiers: name must not be empty".into());
            }
            let account = DomainId::try_from(w.account.as_str())
                .map_err(|_| at("account must be a 32-hex account (domain) id".into()))?;
            let hook = webhook::WebhookNotifier::new(w, http.clone()).map_err(at)?;
            Ok(NotifierTarget {
                name: w.name.clone(),
                account,
                notifier: Arc::new(hook),
            })
        }
    }
}
