//! Each issuance of a certificate is a version under its stable id: the first (from the
//! application) and every renewal. This module issues a version through the account's CA and
//! records it, with its renewal time.

use scm_proto::CertificateStatus;
use scm_store::{CertificateRecord, IssuedRecord, NewEvent, NewVersion, VersionExpect};

use crate::application::ApplicationForm;
use crate::clock::unix_ms;
use crate::issuance::{IssueRequest, Issuer};
use crate::service::Scm;
use crate::{DomainError, random};

use super::RenewalSettings;

/// When a version valid from `not_before_ms` to `not_after_ms` is due for renewal: when
/// `remaining_fraction` of its lifetime is left (at least one half for lifetimes under 10 days),
/// moved later by `jitter` (0..1) times a tenth of that window, so that certificates issued
/// together do not renew together.
pub fn renew_at(
    settings: &RenewalSettings,
    not_before_ms: i64,
    not_after_ms: i64,
    jitter: f64,
) -> i64 {
    let lifetime = not_after_ms.saturating_sub(not_before_ms).max(0);
    let mut fraction = settings.remaining_fraction.clamp(0.01, 0.99);
    if lifetime < 10 * 86_400_000 {
        fraction = fraction.max(0.5);
    }
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let window = (lifetime as f64 * fraction) as i64;
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let spread = (window as f64 / 10.0 * jitter.clamp(0.0, 1.0)) as i64;
    not_after_ms.saturating_sub(window).saturating_add(spread)
}

/// A number in 0..1 from the system generator (0.5 if it fails).
pub(crate) fn unit_random() -> f64 {
    random::bytes::<8>()
        .map(|b| u64::from_le_bytes(b) as f64 / u64::MAX as f64)
        .unwrap_or(0.5)
}

/// Why a version is made, as recorded with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionReason {
    /// The first issuance, from the application.
    Issued,
    /// An automatic renewal.
    Renewal,
    /// A renewal a person asked for.
    ManualRenewal,
}

impl VersionReason {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Issued => "issued",
            Self::Renewal => "renewal",
            Self::ManualRenewal => "renewal-manual",
        }
    }
}

impl Scm {
    /// Issues the next version of `cert` for `form` with the account's own CA and records it,
    /// conditional on `expect` (the first issuance: the status; a renewal: the current version).
    /// Returns the material, or `None` when the condition no longer held (another process got
    /// there first: nothing was recorded).
    pub(crate) async fn issue_version(
        &self,
        cert: &CertificateRecord,
        form: &ApplicationForm,
        expect: VersionExpect,
        reason: VersionReason,
        actor: &str,
    ) -> Result<Option<IssuedRecord>, DomainError> {
        let seq = match expect {
            VersionExpect::Status(_) => 1,
            VersionExpect::Current(n) => n.saturating_add(1),
        };
        // With a CSR, the key is the applicant's, unless it is the key of a CSR OpenSCM made
        // (CreateCsr) or was given with its key (UploadCsr): then OpenSCM holds it, and the
        // certificate gets it (export, push) as one issued with a key made here. A renewal of a
        // CSR application certifies the CSR's key again (the user chose that key by giving
        // the CSR); every other renewal gets a new key of the same algorithm.
        let key = match &form.csr {
            Some((_, csr)) => self.held_csr_key(&cert.domain_id, csr).await?,
            None => Some(
                self.keygen
                    .generate(&cert.domain_id, form.key_algorithm)
                    .await?,
            ),
        };
        let now = self.clock.now();
        // The account's own CA: its clients trust its root, and no other account's.
        let ca = self.tenant_ca(&cert.domain_id).await?;
        let issued = ca
            .issue(IssueRequest {
                id: &cert.id,
                form,
                key: key.as_ref(),
                version: seq,
                now,
                validity: self.config.leaf_validity,
            })
            .await?;
        self.record_version(cert, form, expect, issued, reason, actor)
            .await
    }

    /// Records `issued` as the next version of `cert` (conditional on `expect`, as
    /// [`Scm::issue_version`]), with its renewal time in the account's window. `None` when the
    /// condition no longer held.
    pub(crate) async fn record_version(
        &self,
        cert: &CertificateRecord,
        form: &ApplicationForm,
        expect: VersionExpect,
        issued: IssuedRecord,
        reason: VersionReason,
        actor: &str,
    ) -> Result<Option<IssuedRecord>, DomainError> {
        let seq = match expect {
            VersionExpect::Status(_) => 1,
            VersionExpect::Current(n) => n.saturating_add(1),
        };
        let now = self.clock.now();
        // The account's own window, when it has one.
        let mut settings = self.config.renewal;
        if let Some(permille) = self
            .account(&cert.domain_id)
            .await?
            .and_then(|a| a.renew_remaining_permille)
        {
            settings.remaining_fraction = f64::from(permille) / 1000.0;
        }
        let renew_at_ms = Some(renew_at(
            &settings,
            issued.not_before_ms,
            issued.not_after_ms,
            unit_random(),
        ));
        let application = match expect {
            VersionExpect::Status(_) => Some(form.to_record()?),
            VersionExpect::Current(_) => None,
        };
        let event = NewEvent {
            event: match reason {
                VersionReason::Issued => "issued",
                VersionReason::Renewal | VersionReason::ManualRenewal => "renewed",
            }
            .into(),
            detail: format!(
                "version {seq}, serial {}, valid until {}",
                issued.serial_hex,
                crate::clock::from_unix_ms(issued.not_after_ms)
            ),
            actor: actor.into(),
        };
        let recorded = self
            .store
            .add_version(NewVersion {
                id: cert.id.clone(),
                expect,
                application,
                issued: issued.clone(),
                reason: reason.as_str().into(),
                renew_at_ms,
                event,
                now_ms: unix_ms(now),
            })
            .await
            .inspect(|_| self.cache.forget_certificate(&cert.domain_id, &cert.id))?;
        if recorded {
            tracing::info!(cert = %cert.id, version = seq, serial = %issued.serial_hex, reason = reason.as_str(), "certificate version issued");
            Ok(Some(issued))
        } else {
            Ok(None)
        }
    }

    /// A certificate's versions (newest first) and history (oldest first, the last 500), for
    /// operators.
    pub async fn certificate_history(
        &self,
        id: &scm_proto::CertificateId,
    ) -> Result<(Vec<scm_store::VersionRecord>, Vec<scm_store::EventRecord>), DomainError> {
        if self.store.certificate(id).await?.is_none() {
            return Err(DomainError::CertificateNotFound);
        }
        Ok((
            self.store.versions(id).await?,
            self.store.events(id, 500).await?,
        ))
    }

    /// The caller's certificate with its versions (newest first) and history (oldest first, the
    /// last 500).
    pub async fn versions_of(
        &self,
        p: &crate::auth::Principal,
        id: &scm_proto::CertificateId,
    ) -> Result<
        (
            std::sync::Arc<CertificateRecord>,
            Vec<scm_store::VersionRecord>,
            Vec<scm_store::EventRecord>,
        ),
        DomainError,
    > {
        let cert = self.certificate(p, id).await?;
        let versions = self.store.versions(&cert.id).await?;
        let events = self.store.events(&cert.id, 500).await?;
        Ok((cert, versions, events))
    }

    /// Certificate, chain and (when held) key of version `seq` of the caller's certificate: the
    /// current one or an earlier one, for as long as the certificate may be exported at all.
    pub async fn export_version(
        &self,
        p: &crate::auth::Principal,
        id: &scm_proto::CertificateId,
        seq: u32,
    ) -> Result<crate::service::Export, DomainError> {
        let cert = self.certificate(p, id).await?;
        if !cert.status.is_deployable() {
            return Err(DomainError::WrongStatus(cert.status));
        }
        let version = self.store.version(&cert.id, seq).await?.ok_or_else(|| {
            DomainError::invalid(
                "version",
                format!(
                    "certificate {} has no version {seq} (its current version is {})",
                    cert.id,
                    cert.lifecycle
                        .current_version
                        .map_or_else(|| "none".to_owned(), |v| v.to_string())
                ),
            )
        })?;
        let issued = version.issued;
        let private_key = match &issued.private_key_sealed {
            Some(sealed) => Some(self.open_key(&cert.id, seq, sealed)?),
            None => None,
        };
        Ok(crate::service::Export {
            entire: crate::issuance::full_chain(&issued.certificate_pem, &issued.chain_pem),
            certificate: issued.certificate_pem,
            chain: issued.chain_pem,
            private_key,
        })
    }

    /// Sets `account`'s renewal window (renew when `remaining_fraction` of a version's lifetime
    /// is left, 0.05..=0.9; `None`: the server's `[renewal] remaining_fraction`). It applies to
    /// versions issued from now on. `false` when there is no such account.
    pub async fn set_renewal_policy(
        &self,
        account: &scm_proto::DomainId,
        remaining_fraction: Option<f64>,
    ) -> Result<bool, DomainError> {
        let permille = match remaining_fraction {
            Some(f) if (0.05..=0.9).contains(&f) => {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let p = (f * 1000.0).round() as u32;
                Some(p)
            }
            Some(_) => {
                return Err(DomainError::invalid(
                    "remaining_fraction",
                    "must be between 0.05 and 0.9",
                ));
            }
            None => None,
        };
        let done = self.store.set_renewal_policy(account, permille).await?;
        self.cache.forget_account(account);
        Ok(done)
    }

    /// Whether `status` is one a certificate's current version is renewed in.
    pub(crate) fn renewable_status(status: CertificateStatus) -> bool {
        matches!(
            status,
            CertificateStatus::Issued | CertificateStatus::Expired
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn renewal_falls_due_with_a_third_left_spread_over_a_tenth_of_the_window() {
        let s = RenewalSettings::default();
        let (nb, na) = (0, 90 * DAY);
        let early = renew_at(&s, nb, na, 0.0);
        let late = renew_at(&s, nb, na, 1.0);
        // 0.33 of 90 days is 29.7 days before expiry; the spread is a tenth of it.
        assert_eq!(na - early, (90.0 * 0.33 * DAY as f64) as i64);
        assert_eq!(late - early, (90.0 * 0.33 * DAY as f64 / 10.0) as i64);
        let mid = renew_at(&s, nb, na, 0.5);
        assert!(early < mid && mid < late);
    }

    #[test]
    fn short_lifetimes_renew_with_half_left() {
        let s = RenewalSettings::default();
        let six_days = 6 * DAY;
        assert_eq!(renew_at(&s, 0, six_days, 0.0), 3 * DAY);
        // A larger configured fraction wins.
        let s = RenewalSettings {
            remaining_fraction: 0.7,
            ..RenewalSettings::default()
        };
        assert_eq!(renew_at(&s, 0, 10 * DAY, 0.0), 3 * DAY);
    }
}
