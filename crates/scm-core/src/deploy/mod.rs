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

pub mod probe;

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

/// What gets delivered: one version of a certificate, its key, and which delivery this is.
pub struct Material {
    /// The leaf certificate.
    pub leaf_pem: String,
    /// The intermediates (may be empty).
    pub chain_pem: String,
    /// Leaf followed by the intermediates.
    pub fullchain_pem: String,
    /// PKCS#8 private key.
    pub key_pem: Zeroizing<String>,
    /// What the certificate is, parsed once (for adapters that tell the target, e.g. in a
    /// command's environment or a webhook's body).
    pub facts: CertificateFacts,
    /// Which delivery this is.
    pub context: DeliveryContext,
}

impl fmt::Debug for Material {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Material")
            .field("facts", &self.facts)
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

/// The material of one version of `id`, its facts parsed from the leaf (an error says why the
/// stored certificate cannot be read).
pub fn material(
    id: &scm_proto::CertificateId,
    version: u32,
    issued: &scm_store::IssuedRecord,
    key_pem: Zeroizing<String>,
    context: DeliveryContext,
) -> Result<Material, String> {
    let info = scm_pki::cert::parse_certificate_pem(&issued.certificate_pem)
        .map_err(|e| format!("the stored certificate cannot be read: {e}"))?;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &info.der);
    let not_after_ms =
        i64::try_from(info.not_after.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    Ok(Material {
        leaf_pem: issued.certificate_pem.clone(),
        chain_pem: issued.chain_pem.clone(),
        fullchain_pem: crate::issuance::full_chain(&issued.certificate_pem, &issued.chain_pem),
        key_pem,
        facts: CertificateFacts {
            certificate_id: id.to_string(),
            version,
            names: info.dns_names,
            serial_hex: info.serial_hex,
            sha256_fingerprint: hex::encode(digest.as_ref()),
            not_after_ms,
        },
        context,
    })
}

/// The facts of a delivered certificate version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFacts {
    /// The certificate's id (stable across versions).
    pub certificate_id: String,
    /// Its version (1 for the first issuance, +1 per renewal).
    pub version: u32,
    /// The names it covers (subject alternative names, first the main one).
    pub names: Vec<String>,
    /// Serial number, lowercase hex.
    pub serial_hex: String,
    /// SHA-256 of the leaf's DER, lowercase hex: what a TLS check compares.
    pub sha256_fingerprint: String,
    /// Expiry (Unix ms).
    pub not_after_ms: i64,
}

/// Which delivery an attempt belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryContext {
    /// The target's name.
    pub target: String,
    /// The delivery job's id.
    pub job_id: i64,
    /// Its attempt number (1-based).
    pub attempt: u32,
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
    /// The id `deploy` and ListDeployedResources name it by (the name unless configured).
    pub resource_id: String,
    /// Where it serves, checked by a TLS handshake after each delivery (none: the delivery
    /// itself is the last word).
    pub verify: Option<VerifyAt>,
    /// Whether a drift (the target no longer serves what was delivered) is re-delivered.
    pub redeliver_on_drift: bool,
    /// The kind, as configured (`nginx`, `files`, `haproxy`, `webhook`, `exec`).
    pub kind: &'static str,
    /// How to deliver.
    pub deployer: Arc<dyn Deployer>,
}

/// Where a target serves, as configured: the address, and the server name unless it is the
/// delivered certificate's first name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyAt {
    /// `host:port`.
    pub address: String,
    /// The SNI to send; `None`: the certificate's first name.
    pub server_name: Option<String>,
}

impl VerifyAt {
    /// The endpoint to check for a certificate whose first name is `first_name` (a wildcard's
    /// `*` becomes `openscm-verify`, a name the certificate covers; configure `server_name` when
    /// the server routes by name).
    pub fn endpoint(&self, first_name: &str) -> probe::Endpoint {
        let default = match first_name.strip_prefix("*.") {
            Some(base) => format!("openscm-verify.{base}"),
            None => first_name.to_owned(),
        };
        probe::Endpoint {
            address: self.address.clone(),
            server_name: self.server_name.clone().unwrap_or(default),
        }
    }
}

impl PushTarget {
    /// Whether a push of `account`'s certificate to `service` in `region` goes to this target.
    pub fn matches(&self, account: &DomainId, service: PushService, region: Option<&str>) -> bool {
        &self.account == account
            && self.service == service
            && (service.is_global() || self.region.as_deref() == region)
    }
}
