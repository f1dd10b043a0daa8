//! Telling people when something fails: the port notifications go through.
//!
//! The domain decides what is worth telling (a push that failed for good, a certificate about to
//! expire, a target that does not serve what was delivered, ...) and hands a [`Notification`] to
//! every [`Notifier`] configured for the account; how it travels (a webhook, a mail) is
//! implemented in `scm-outbound`. Notifications are jobs too, so a webhook or a mail server that
//! is down is retried like a push.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use scm_proto::DomainId;
use serde::{Deserialize, Serialize};

/// Something that happened to an account's certificates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A push was given up: every retry failed, or the failure could not pass.
    PushFailed {
        /// The certificate.
        certificate_id: String,
        /// Its name (empty in a notify job queued before this field existed).
        #[serde(default)]
        name: String,
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
    /// A target does not serve the version delivered to it, and checking again did not help.
    NotServed {
        /// The certificate.
        certificate_id: String,
        /// Its name.
        name: String,
        /// The push target.
        target: String,
        /// The version delivered.
        version: u32,
        /// SHA-256 of the delivered leaf, lowercase hex.
        expected_sha256: String,
        /// SHA-256 of the leaf the target served, when a handshake completed.
        served_sha256: Option<String>,
        /// What the check found.
        error: String,
    },
    /// A target that served the delivered version no longer does (someone replaced it).
    Drift {
        /// The certificate.
        certificate_id: String,
        /// Its name.
        name: String,
        /// The push target.
        target: String,
        /// The version delivered.
        version: u32,
        /// SHA-256 of the delivered leaf, lowercase hex.
        expected_sha256: String,
        /// SHA-256 of the leaf the target serves now, when a handshake completed.
        served_sha256: Option<String>,
    },
    /// A certificate was renewed: a new version was issued.
    Renewed {
        /// The certificate.
        certificate_id: String,
        /// Its name.
        name: String,
        /// The new version.
        version: u32,
        /// When the new version expires (Unix ms).
        not_after_ms: i64,
    },
    /// A domain of a certificate could not be validated.
    ValidationFailed {
        /// The certificate.
        certificate_id: String,
        /// Its name.
        name: String,
        /// The domain whose validation failed.
        domain: String,
        /// Why.
        error: String,
    },
    /// A person must publish a DNS record for a validation to go on (a renewal through an
    /// ACME CA with dns-01 that OpenSCM does not publish itself).
    ValidationNeeded {
        /// The certificate.
        certificate_id: String,
        /// Its name.
        name: String,
        /// The domain to validate.
        domain: String,
        /// The record's name (`_acme-challenge.<domain>`).
        record_name: String,
        /// Its type (`TXT`).
        record_type: String,
        /// Its value.
        record_value: String,
    },
    /// A name failed validation too often in a row; it is left alone until a person acts or a
    /// day has passed.
    ValidationStopped {
        /// The certificate.
        certificate_id: String,
        /// Its name.
        name: String,
        /// The domain.
        domain: String,
        /// Failures in a row.
        failures: u32,
        /// Not tried again before (Unix ms).
        until_ms: i64,
        /// What happened.
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
            Self::Renewed { .. } => "renewed",
            Self::ValidationFailed { .. } => "validation_failed",
            Self::ValidationNeeded { .. } => "validation_needed",
            Self::ValidationStopped { .. } => "validation_stopped",
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

/// How sending a notification failed, which decides whether its job is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyErrorKind {
    /// Might work later (a server down or busy, a timeout, a 4xx SMTP reply): retry with backoff.
    Transient,
    /// The receiver refused this notification (a 5xx SMTP reply, a 4xx HTTP answer): sending it
    /// again will not help.
    Permanent,
    /// The notifier itself is misconfigured (credentials or TLS refused, an address the egress
    /// policy forbids): an operator must act.
    Misconfigured,
}

impl NotifyErrorKind {
    /// Whether a retry may succeed.
    pub fn is_transient(self) -> bool {
        self == Self::Transient
    }
}

/// A notification that could not be sent. `message` is safe to log and to show to the account
/// (no secrets).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NotifyError {
    /// What kind of failure.
    pub kind: NotifyErrorKind,
    /// What happened.
    pub message: String,
}

impl NotifyError {
    /// A failure that may pass.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            kind: NotifyErrorKind::Transient,
            message: message.into(),
        }
    }

    /// A refusal of this notification.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            kind: NotifyErrorKind::Permanent,
            message: message.into(),
        }
    }

    /// A notifier an operator must fix.
    pub fn misconfigured(message: impl Into<String>) -> Self {
        Self {
            kind: NotifyErrorKind::Misconfigured,
            message: message.into(),
        }
    }
}

/// A way of telling an account's people.
#[async_trait]
pub trait Notifier: Send + Sync + fmt::Debug {
    /// Sends one notification. May be called again for the same one after a failure.
    async fn notify(&self, n: &Notification) -> Result<(), NotifyError>;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_failure_queued_without_the_name_still_reads() {
        let json = r#"{"account":"a","at_ms":1,"event":"push_failed","certificate_id":"scs1",
            "service":"ELB","region":null,"targets":["web"],"error":"x","attempts":3}"#;
        let n: Notification = serde_json::from_str(json).unwrap();
        assert!(matches!(n.event, Event::PushFailed { ref name, .. } if name.is_empty()));
        assert_eq!(n.event.name(), "push_failed");
    }
}
