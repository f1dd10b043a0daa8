//! Domain errors. Each variant is one public outcome; the HTTP layer maps every variant, with no
//! catch-all, to a status and an `SCM.xxxx` code. Only [`DomainError::Internal`] carries a cause
//! that must not reach the client: it keeps that cause (as an error source, for the log) and its
//! [`InternalKind`], so an outage answers 503 and a fault 500.

use std::borrow::Cow;
use std::fmt;

use scm_proto::CertificateStatus;

use crate::auth::AuthFailure;

/// Why a domain operation was refused or failed.
// Not `non_exhaustive`: the HTTP layer must match every variant, with no catch-all arm.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// A request field is missing, of the wrong type or out of range. `field` is the JSON path.
    #[error("{field}: {reason}")]
    InvalidParameter {
        /// JSON path of the field, e.g. `order_number` or `tags[2].key`.
        field: String,
        /// What is wrong, for the client.
        reason: String,
    },
    /// A certificate id that is not `scs` + 13 digits.
    #[error("malformed certificate id")]
    MalformedCertificateId,
    /// No certificate with that id in the caller's account: never issued, or another account's
    /// (the two are one answer, so that ids cannot be probed across tenants).
    #[error("certificate not found")]
    CertificateNotFound,
    /// A tenancy refusal that reveals nothing: the project of a v2 path or an `X-Project-Id`, or
    /// the account of an `X-Domain-Id`, is not the caller's (another account's, one that does not
    /// exist and a malformed one alike). Never used for a certificate: see
    /// [`DomainError::CertificateNotFound`].
    #[error("project or account of another tenant")]
    OtherTenant,
    /// The certificate's status does not allow the operation.
    #[error("not allowed in status {0}")]
    WrongStatus(CertificateStatus),
    /// The names do not fit the product bought or the account's issuance policy.
    #[error("{0}")]
    DomainMismatch(String),
    /// No push target is configured for this account, service and region.
    #[error("no push target for service {service} in {region}")]
    NoPushTarget {
        /// Service asked for.
        service: String,
        /// Region asked for.
        region: String,
    },
    /// The account has no push target of this name.
    #[error("no push target named {0}")]
    UnknownTarget(String),
    /// The account's quota (of certificates, of orders a day) would be exceeded.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    /// Delivering the certificate to a target failed; the text is safe to show.
    #[error("{0}")]
    PushFailed(String),
    /// A certificate authority (an ACME CA) refused or could not be reached; the text is safe
    /// to show.
    #[error("{0}")]
    IssuerFailed(String),
    /// Authentication failed.
    #[error("authentication failed: {0:?}")]
    Unauthenticated(AuthFailure),
    /// Something broke inside; the cause is logged, never returned.
    #[error(transparent)]
    Internal(Internal),
    // --- csr ---
    /// A CSR id that is not 32 lower-case hex characters.
    #[error("malformed CSR id")]
    MalformedCsrId,
    /// No CSR with that id in the caller's account (never made, deleted, or another account's:
    /// one answer).
    #[error("CSR not found")]
    CsrNotFound,
    /// The private key given does not belong to the CSR's public key.
    #[error("the private key does not match the CSR")]
    KeyMismatch,
    /// The CSR was uploaded without its private key, so there is none to show.
    #[error("the CSR has no private key")]
    CsrWithoutKey,
    // --- import ---
    /// ImportCertificate refused what its name or its PEM texts hold; the refusal decides the
    /// code, `reason` says what is wrong (never the key).
    #[error("{reason}")]
    ImportRefused {
        /// What was refused.
        refusal: ImportRefusal,
        /// For the client.
        reason: String,
    },
}

// --- import ---
/// Why ImportCertificate refused a body, one documented code each (reference §2.6, §4.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportRefusal {
    /// The name is missing or not 3..63 of `A-Z a-z 0-9 _ - .` (`SCM.0032`).
    Name,
    /// The certificate lacks its BEGIN/END markers (`SCM.0053`).
    CertificateMarkers,
    /// The certificate is empty between its markers (`SCM.0054`).
    CertificateEmpty,
    /// The certificate does not parse (`SCM.0006`).
    CertificateUnparsable,
    /// The chain does not parse (`SCM.0013`).
    ChainUnparsable,
    /// The chain is out of order (`SCM.0079`).
    ChainOrder,
    /// The chain does not verify: a signature that does not verify with the next certificate's
    /// key, a loop, a certificate that may not issue the one below it (`SCM.0079`, the
    /// reference's chain-check code).
    ChainUnverified,
    /// The certificate parses but cannot be used: a CA certificate, a critical extension OpenSCM
    /// does not process, not valid yet (`SCM.0006`, the "failed to be resolved … ensure that it
    /// has been issued" code).
    CertificateRefused,
    /// The leaf names no domain (`SCM.0009`).
    NoDomain,
    /// The key lacks its BEGIN/END markers (`SCM.0114`).
    KeyMarkers,
    /// The key does not parse, is passphrase-protected or unsupported (`SCM.0012`).
    KeyUnparsable,
    /// The key is not the certificate's (`SCM.0014`).
    KeyMismatch,
}

impl DomainError {
    /// An [`DomainError::ImportRefused`].
    pub fn import_refused(refusal: ImportRefusal, reason: impl Into<String>) -> Self {
        Self::ImportRefused {
            refusal,
            reason: reason.into(),
        }
    }
}

/// What kind of internal failure: it decides between HTTP 500 and 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InternalKind {
    /// A fault: a bug, corrupt data, a broken invariant. Retrying will not help.
    Fault,
    /// A dependency (the database) is unavailable for now; the same request may succeed later.
    Unavailable,
}

/// An internal failure with its context and cause, for the log only.
#[derive(Debug)]
pub struct Internal {
    /// Fault or outage.
    pub kind: InternalKind,
    context: Cow<'static, str>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl fmt::Display for Internal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(s) => write!(f, "{}: {s}", self.context),
            None => f.write_str(&self.context),
        }
    }
}

impl std::error::Error for Internal {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl DomainError {
    /// An [`DomainError::InvalidParameter`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidParameter {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// An internal fault described by `context` alone.
    pub fn internal(context: impl Into<Cow<'static, str>>) -> Self {
        Self::Internal(Internal {
            kind: InternalKind::Fault,
            context: context.into(),
            source: None,
        })
    }

    /// An internal fault: `context` says what we were doing, `source` what went wrong.
    pub fn internal_from(
        context: impl Into<Cow<'static, str>>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Internal(Internal {
            kind: InternalKind::Fault,
            context: context.into(),
            source: Some(Box::new(source)),
        })
    }
}

/// The field an `InvalidParameter` refusal names (tests).
#[cfg(test)]
pub(crate) fn invalid_field<T: std::fmt::Debug>(r: Result<T, DomainError>) -> String {
    match r {
        Err(DomainError::InvalidParameter { field, .. }) => field,
        other => panic!("expected InvalidParameter, got {other:?}"),
    }
}

impl From<scm_store::StoreError> for DomainError {
    fn from(e: scm_store::StoreError) -> Self {
        if let scm_store::StoreError::QuotaExceeded(what) = e {
            return Self::QuotaExceeded(what);
        }
        let kind = if e.is_unavailable() {
            InternalKind::Unavailable
        } else {
            InternalKind::Fault
        };
        Self::Internal(Internal {
            kind,
            context: Cow::Borrowed("store"),
            source: Some(Box::new(e)),
        })
    }
}

impl From<tokio::task::JoinError> for DomainError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::internal_from("blocking task", e)
    }
}
