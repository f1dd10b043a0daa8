//! Domain errors. Each variant is one public outcome; the HTTP layer maps every variant, with no
//! catch-all, to a status and an `SCM.xxxx` code. Only [`DomainError::Internal`] carries a cause
//! that must not reach the client.

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
    /// No certificate with that id.
    #[error("certificate not found")]
    CertificateNotFound,
    /// The resource belongs to another account (or the project is not the caller's).
    #[error("resource of another tenant")]
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
    /// Delivering the certificate to a target failed; the text is safe to show.
    #[error("{0}")]
    PushFailed(String),
    /// Authentication failed.
    #[error("authentication failed: {0:?}")]
    Unauthenticated(AuthFailure),
    /// Something broke inside; the cause is logged, never returned.
    #[error("internal: {0}")]
    Internal(String),
}

impl DomainError {
    /// An [`DomainError::InvalidParameter`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidParameter {
            field: field.into(),
            reason: reason.into(),
        }
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
        Self::Internal(format!("store: {e}"))
    }
}

impl From<tokio::task::JoinError> for DomainError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::Internal(format!("blocking task: {e}"))
    }
}
