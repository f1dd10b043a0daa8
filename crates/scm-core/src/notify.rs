//! Telling people when something fails: the port notifications go through.
//!
//! The domain decides what is worth telling (today: a push that failed for good) and hands a
//! [`Notification`] to every [`Notifier`] configured for the account; how it travels (a webhook
//! today; mail next) is implemented in `scm-outbound`. Notifications are jobs too, so a webhook
//! that is down is retried like a push.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use scm_proto::DomainId;
use serde::{Deserialize, Serialize};

use crate::deploy::DeliveryError;

/// Something that happened to an account's certificates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A push was given up: every retry failed, or the failure could not pass.
    PushFailed {
        /// The certificate.
        certificate_id: String,
        /// Service pushed to.
        service: String,
        /// Region, if any.
        region: Option<String>,
        /// The targets of the push.
        targets: Vec<String>,
        /// Why the last attempt failed.
        error: String,
        /// Attempts made.
        attempts: u32,
    },
    /// A certificate comes within the reminder window of its expiry (`CERT_EXPIRING`).
    CertificateExpiring {
        /// The certificate.
        certificate_id: String,
        /// Its name.
        name: String,
        /// Its domain.
        domain: Option<String>,
        /// Its expiry (Unix ms).
        not_after_ms: i64,
    },
    /// A certificate has expired (`CERT_EXPIRED`).
    CertificateExpired {
        /// The certificate.
        certificate_id: String,
        /// Its name.
        name: String,
        /// Its domain.
        domain: Option<String>,
        /// Its expiry (Unix ms).
        not_after_ms: i64,
    },
    /// A target took a delivery but does not serve it (seen by the TLS check): told when first
    /// seen, while retries go on.
    NotServed {
        /// The certificate.
        certificate_id: String,
        /// Its name.
        name: String,
        /// The target.
        target: String,
        /// The version delivered.
        version: u32,
        /// SHA-256 of the delivered leaf.
        expected_sha256: String,
        /// SHA-256 of the leaf served, if a handshake completed.
        served_sha256: Option<String>,
        /// What the check saw.
        error: String,
    },
    /// A target no longer serves the version delivered to it (replaced out of band, or a
    /// restart lost a runtime swap).
    Drift {
        /// The certificate.
        certificate_id: String,
        /// Its name.
        name: String,
        /// The target.
        target: String,
        /// The version delivered.
        version: u32,
        /// SHA-256 of the delivered leaf.
        expected_sha256: String,
        /// SHA-256 of the leaf served, if a handshake completed.
        served_sha256: Option<String>,
    },
    /// A renewal is still failing with a tenth of the current version's lifetime left.
    RenewalFailed {
        /// The certificate.
        certificate_id: String,
        /// Its name.
        name: String,
        /// When its current version expires (Unix ms).
        not_after_ms: i64,
        /// Why the renewal fails.
        error: String,
    },
}

impl Event {
    /// A short name of the event, for logs and headers.
    pub fn name(&self) -> &'static str {
        match self {
            Self::PushFailed { .. } => "push_failed",
            Self::CertificateExpiring { .. } => "certificate_expiring",
            Self::CertificateExpired { .. } => "certificate_expired",
            Self::RenewalFailed { .. } => "renewal_failed",
            Self::NotServed { .. } => "not_served",
            Self::Drift { .. } => "drift",
        }
    }
}

/// An event for one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The account the event concerns.
    pub account: String,
    /// When it happened (Unix ms).
    pub at_ms: i64,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// A way of telling an account's people.
#[async_trait]
pub trait Notifier: Send + Sync + fmt::Debug {
    /// Sends one notification. May be called again for the same one after a failure.
    async fn notify(&self, n: &Notification) -> Result<(), DeliveryError>;
}

/// A configured notifier: who it serves and how it sends.
#[derive(Debug, Clone)]
pub struct NotifierTarget {
    /// Unique name.
    pub name: String,
    /// The account whose events it receives.
    pub account: DomainId,
    /// How it sends.
    pub notifier: Arc<dyn Notifier>,
}
