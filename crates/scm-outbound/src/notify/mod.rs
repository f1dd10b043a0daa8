//! Notifiers: the [`scm_core::notify::Notifier`] of each way of telling people, and its
//! configuration. Kinds: `webhook` ([`webhook`]) and `smtp` ([`smtp`], one mail per notification,
//! its text written by [`text`]).

pub mod smtp;
pub mod text;
pub mod webhook;

use std::sync::Arc;

use scm_core::notify::{Notifier, NotifierTarget};
use scm_proto::DomainId;
use serde::Deserialize;

use crate::http::OutboundHttp;

/// A notifier as written in the config file (`[[notifiers]]`), by `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum NotifierConfig {
    /// POST a JSON document to a URL.
    Webhook(webhook::WebhookConfig),
    /// Send a plain-text mail through an SMTP server.
    Smtp(smtp::SmtpConfig),
}

impl NotifierConfig {
    /// The notifier's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Webhook(c) => &c.name,
            Self::Smtp(c) => &c.name,
        }
    }
}

/// Checks a configured notifier and builds it (a webhook over the one outbound HTTP client); the
/// error names the notifier and the key at fault.
pub fn notifier(c: &NotifierConfig, http: &OutboundHttp) -> Result<NotifierTarget, String> {
    let (name, account) = match c {
        NotifierConfig::Webhook(w) => (&w.name, &w.account),
        NotifierConfig::Smtp(m) => (&m.name, &m.account),
    };
    let at = |e: String| format!("notifiers \"{name}\": {e}");
    if name.trim().is_empty() {
        return Err("notifiers: name must not be empty".into());
    }
    let account = DomainId::try_from(account.as_str())
        .map_err(|_| at("account must be a 32-hex account (domain) id".into()))?;
    let notifier: Arc<dyn Notifier> = match c {
        NotifierConfig::Webhook(w) => {
            Arc::new(webhook::WebhookNotifier::new(w, http.clone()).map_err(at)?)
        }
        NotifierConfig::Smtp(m) => Arc::new(smtp::SmtpNotifier::new(m).map_err(at)?),
    };
    Ok(NotifierTarget {
        name: name.clone(),
        account,
        notifier,
    })
}
