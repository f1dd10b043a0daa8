//! Pushing certificates to the user's own servers: the port the domain delivers through.
//!
//! The operator declares push targets in the config file; a v2/v3 push for service S in region R
//! delivers the certificate to every target of the caller's account with that service and region
//! (region is ignored for the global service CDN). Outbound actions go only to these targets.
//!
//! The domain knows a target by its name, account, service and region, and delivers through the
//! [`Deployer`] trait. How a kind of target is reached (nginx files and reloads today; HAProxy,
//! webhooks and programs next) is implemented in `scm-outbound`, which also owns each kind's
//! configuration. A delivery fails with a typed [`DeliveryError`], so the job runner can tell a
//! failure worth retrying from one that is not.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use scm_proto::DomainId;
use zeroize::Zeroizing;

/// Target service of a push, as named by the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PushService {
    /// Content delivery network (global).
    Cdn,
    /// Web application firewall.
    Waf,
    /// Classic load balancer.
    Elb,
    /// Dedicated/shared load balancer.
    EnhanceElb,
}

impl PushService {
    /// Every service.
    pub const ALL: [Self; 4] = [Self::Cdn, Self::Waf, Self::Elb, Self::EnhanceElb];

    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cdn => "CDN",
            Self::Waf => "WAF",
            Self::Elb => "ELB",
            Self::EnhanceElb => "Enhance_ELB",
        }
    }

    /// Parses a service name, ignoring case (the v3 doc example sends `"waf"`).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// Whether the service is global (no region).
    pub fn is_global(self) -> bool {
        self == Self::Cdn
    }
}

/// What gets delivered: the full chain and the private key, and which delivery this is.
pub struct Material {
    /// Leaf followed by the intermediates.
    pub fullchain_pem: String,
    /// PKCS#8 private key.
    pub key_pem: Zeroizing<String>,
    /// The certificate delivered (for adapters that tell the target, e.g. in a command's
    /// environment).
    pub certificate_id: String,
    /// The job of this delivery and its attempt number (1-based).
    pub job: (i64, u32),
}

impl fmt::Debug for Material {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Material").finish_non_exhaustive()
    }
}

/// How a delivery failed, which decides what the job runner does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryErrorKind {
    /// Might work later (a timeout, a lock held, a server restarting): retry with backoff.
    Transient,
    /// The target refused this material (its test command failed, it rejected the key):
    /// retrying the same material will not help.
    Permanent,
    /// The target itself is misconfigured (a program that cannot start, a path that cannot be
    /// written): an operator must act; retrying will not help until then.
    Misconfigured,
}

impl DeliveryErrorKind {
    /// Whether a retry may succeed.
    pub fn is_transient(self) -> bool {
        self == Self::Transient
    }
}

/// A failed delivery. `message` is safe to show to the account (no command output, no
/// response bodies; those are logged by the adapter).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    /// What kind of failure.
    pub kind: DeliveryErrorKind,
    /// What happened, for the account and the operator.
    pub message: String,
}

impl DeliveryError {
    /// A failure that may pass.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            kind: DeliveryErrorKind::Transient,
            message: message.into(),
        }
    }

    /// A refusal of this material.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            kind: DeliveryErrorKind::Permanent,
            message: message.into(),
        }
    }

    /// A target an operator must fix.
    pub fn misconfigured(message: impl Into<String>) -> Self {
        Self {
            kind: DeliveryErrorKind::Misconfigured,
            message: message.into(),
        }
    }
}

/// A kind of push target: it installs certificates on one server or service.
#[async_trait]
pub trait Deployer: Send + Sync + fmt::Debug {
    /// Installs `material` so that the target serves it. It must be safe to call again with the
    /// same material (a retry after a crash re-delivers), and it must leave the target serving
    /// what it served before when it fails.
    async fn deliver(&self, material: &Material) -> Result<(), DeliveryError>;
}

/// A configured push target: where a push for an account, service and region goes.
#[derive(Debug, Clone)]
pub struct PushTarget {
    /// Unique name (shown in errors, logs and the history).
    pub name: String,
    /// Account allowed to push here.
    pub account: DomainId,
    /// Service.
    pub service: PushService,
    /// Region, `None` for CDN.
    pub region: Option<String>,
    /// How to deliver.
    pub deployer: Arc<dyn Deployer>,
}

impl PushTarget {
    /// Whether a push of `account`'s certificate to `service` in `region` goes to this target.
    pub fn matches(&self, account: &DomainId, service: PushService, region: Option<&str>) -> bool {
        &self.account == account
            && self.service == service
            && (service.is_global() || self.region.as_deref() == region)
    }
}
