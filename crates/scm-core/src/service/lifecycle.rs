//! Lifecycle: deleting and unsubscribing certificates, and withdrawing applications.
//!
//! Which statuses allow what (reference §4.8.3, which leaves most of it open; the choices are
//! written in docs/api-choices.md, "Lifecycle"):
//! - delete: certificates nothing is pending on: `ISSUED`, `EXPIRED` and `UPLOAD` (what the
//!   Huawei console lets one delete), and the end states `REVOKED` and `UNPASSED`;
//! - unsubscribe: every purchased certificate, i.e. any status but `UPLOAD`, and never an
//!   imported certificate, whatever its status (it has no order to refund);
//! - cancel-cert: an application under review (`CHECKING`, `CHECKING_DOMAIN`, `CHECKING_ORG`).
//!
//! Anything else is [`DomainError::WrongStatus`] (`SCM.0010`); another account's certificate is
//! [`DomainError::CertificateNotFound`], as an unknown id.

use scm_proto::{CertificateId, CertificateStatus};

use crate::DomainError;
use crate::auth::Principal;

use super::Scm;

/// Statuses a certificate may be deleted in (`DeleteCertificate`; the others are unsubscribed).
pub const fn deletable(s: CertificateStatus) -> bool {
    matches!(
        s,
        CertificateStatus::Issued
            | CertificateStatus::Expired
            | CertificateStatus::Upload
            | CertificateStatus::Revoked
            | CertificateStatus::Unpassed
    )
}

/// Statuses a certificate may be unsubscribed in: every purchased one.
pub const fn unsubscribable(s: CertificateStatus) -> bool {
    !matches!(s, CertificateStatus::Upload)
}

/// Statuses whose application may be withdrawn: under review.
pub const fn cancellable(s: CertificateStatus) -> bool {
    matches!(
        s,
        CertificateStatus::Checking
            | CertificateStatus::CheckingDomain
            | CertificateStatus::CheckingOrg
    )
}

impl Scm {
    /// `DeleteCertificate`: the certificate, its key and its push records are gone, and the
    /// account may hold one more certificate. Pending delivery jobs find it gone and fail.
    pub async fn delete_certificate(
        &self,
        p: &Principal,
        id: &CertificateId,
    ) -> Result<(), DomainError> {
        self.remove(p, id, deletable).await
    }

    /// `UnsubscribeCertificate`: the order of a purchased certificate is refunded (OpenSCM has no
    /// billing: nothing to refund) and the certificate is gone, as after a delete.
    pub async fn unsubscribe_certificate(
        &self,
        p: &Principal,
        id: &CertificateId,
    ) -> Result<(), DomainError> {
        // --- import ---
        // An imported certificate has no order to refund, whatever its status (it may read
        // `EXPIRED`).
        let cert = self.certificate(p, id).await?;
        if cert.is_imported() {
            return Err(DomainError::WrongStatus(cert.status));
        }
        self.remove(p, id, unsubscribable).await
    }

    /// `CancelCertificateRequest`: withdraws an application under review. The certificate moves
    /// back to `PAID` (the API's `CANCELCHECKING` is the review of the withdrawal, which OpenSCM
    /// decides at once), keeping the application as a saved draft, so it can be applied again.
    pub async fn cancel_application(
        &self,
        p: &Principal,
        id: &CertificateId,
    ) -> Result<(), DomainError> {
        let cert = self.certificate(p, id).await?;
        if !cancellable(cert.status) {
            return Err(DomainError::WrongStatus(cert.status));
        }
        // The validation's job stops (a pending one at once; a running one finds the status
        // moved), and the history says who withdrew it.
        let end = scm_store::EndValidation {
            expect: cert.status,
            to: CertificateStatus::Paid,
            job_key: crate::lifecycle::validation::job_key(&cert.id),
            event: scm_store::NewEvent {
                event: "cancelled".into(),
                detail: "application withdrawn".into(),
                actor: crate::lifecycle::actor(p),
            },
            now_ms: self.clock.now_ms(),
        };
        if self
            .store
            .end_validation(&cert.id, &end)
            .await
            .inspect(|_| self.cache.forget_certificate(&cert.domain_id, &cert.id))?
        {
            tracing::info!(cert = %cert.id, "application withdrawn");
            return Ok(());
        }
        Err(self.status_changed(p, &cert.id).await)
    }

    /// Deletes the caller's certificate if `allowed` its status as shown now (so an issued
    /// certificate past `not_after` counts as `EXPIRED`), conditional on the stored status.
    async fn remove(
        &self,
        p: &Principal,
        id: &CertificateId,
        allowed: fn(CertificateStatus) -> bool,
    ) -> Result<(), DomainError> {
        let cert = self.stored_certificate(p, id).await?;
        let shown = cert.status_at(self.clock.now_ms());
        if !allowed(shown) {
            return Err(DomainError::WrongStatus(shown));
        }
        if self
            .store
            .delete_certificate(&p.account, &cert.id, cert.status)
            .await
            .inspect(|_| self.cache.forget_certificate(&cert.domain_id, &cert.id))?
        {
            tracing::info!(cert = %cert.id, "certificate deleted");
            return Ok(());
        }
        Err(self.status_changed(p, &cert.id).await)
    }
}
