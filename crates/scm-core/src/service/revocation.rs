//! Revocation: the v2 `revoke` operation, and the CRL of each CA (every account's own, and the
//! retired shared CA of a store made before migration 0015, until its last certificate expires).
//!
//! Choices where the reference is silent (written in docs/api-choices.md, "Revocation"):
//! - only an `ISSUED` certificate can be revoked (reference §4.8.3); `EXPIRED` (past `not_after`,
//!   stored or not), `UPLOAD` (imported: OpenSCM did not issue it) and every other status are
//!   [`DomainError::WrongStatus`] (`SCM.0010`); another account's certificate is
//!   [`DomainError::CertificateNotFound`], as an unknown id;
//! - the revocation is decided at once: the certificate goes from `ISSUED` straight to `REVOKED`
//!   (the API's `REVOKING` is a CA's review, which the built-in CA does not need);
//! - `reason` is required, a string of at most [`MAX_REASON_CHARS`] characters (the v2 page's
//!   0..63) with no control characters; it is shown as `revoke_reason`. When it names an RFC 5280
//!   reason (`keyCompromise`, `KEY_COMPROMISE`, `superseded`, ...), the CRL entry carries that
//!   reason code, otherwise none;
//! - the CRL: one per CA, served unauthenticated at `GET /crl/<ca id>.crl` (DER,
//!   `application/pkix-crl`), `<ca id>` being the lower-case hex of the CA's key identifier. It
//!   is valid for [`CRL_VALIDITY`] (`nextUpdate`) and re-signed when [`CRL_REFRESH`] of that has
//!   passed, and at once after a revocation, by the durable `crl` job (one live job per CA). The
//!   signed bytes and the CRL number are stored, so every server on one database serves the same
//!   CRL and the number only grows. A revoked certificate stays on the CRL until its `not_after`.

use scm_pki::{CrlReason, CrlRequest, RevokedEntry};
use scm_proto::{CertificateId, CertificateStatus};
use scm_store::{CaRole, CrlRecord, JobEffect, NewJob, NewRevocation};
use serde::{Deserialize, Serialize};
use time::Duration;

use super::Scm;
use crate::clock::unix_ms;
use crate::jobs::{Attempt, JobKind};
use crate::{DomainError, Principal};

/// Longest revocation reason, in characters (the v2 page's `reason`: 0..63).
pub const MAX_REASON_CHARS: usize = 63;
/// How long a CRL is valid: its `nextUpdate` is this long after it is signed.
pub const CRL_VALIDITY: Duration = Duration::days(7);
/// When a CRL is re-signed: once two thirds of its validity have passed (4 days 16 hours), which
/// leaves a third (56 hours) for retries if the store is down.
pub const CRL_REFRESH: Duration = Duration::hours(112);
/// `thisUpdate` is this far before the signing, so clients with a slightly slow clock accept a
/// CRL at once (as leaves are backdated).
const CRL_BACKDATE: Duration = Duration::minutes(5);

/// The path a CA's CRL is served at.
pub fn crl_path(ca_id: &str) -> String {
    format!("/crl/{ca_id}.crl")
}

/// The URL of a CA's CRL under the server's public endpoint (a trailing `/` of the endpoint is
/// not doubled).
pub fn crl_url(public_endpoint: &str, ca_id: &str) -> String {
    format!(
        "{}{}",
        public_endpoint.trim_end_matches('/'),
        crl_path(ca_id)
    )
}

/// The CA id of the last path segment of a CRL URL (`<hex>.crl`), if it is one: 2 to 128
/// lower-case hex characters.
pub fn ca_id_of_crl_file(file: &str) -> Option<&str> {
    file.strip_suffix(".crl").filter(|id| {
        (2..=128).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Checks the `reason` of a revocation.
pub fn parse_reason(reason: Option<&str>) -> Result<String, DomainError> {
    let reason = reason.ok_or_else(|| DomainError::invalid("reason", "is required"))?;
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(DomainError::invalid(
            "reason",
            format!("must be at most {MAX_REASON_CHARS} characters"),
        ));
    }
    if reason.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            "reason",
            "must not contain control characters",
        ));
    }
    Ok(reason.to_owned())
}

/// The input of a `crl` job: the CA whose CRL to sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CrlJob {
    /// The CA's id.
    pub ca_id: String,
}

/// The `crl` job of `ca_id`, due at `due_ms` (one live job per CA, by its dedupe key).
pub(super) fn crl_job(ca_id: &str, due_ms: i64) -> Result<NewJob, DomainError> {
    let payload = serde_json::to_string(&CrlJob {
        ca_id: ca_id.to_owned(),
    })
    .map_err(|e| DomainError::internal_from("job payload", e))?;
    Ok(JobKind::Crl.job(payload, Some(format!("crl:{ca_id}")), due_ms))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.whole_milliseconds()).unwrap_or(i64::MAX)
}

impl Scm {
    /// v2 `revoke`: revokes an `ISSUED` certificate of the caller's, issued by one of OpenSCM's
    /// CAs (the account's own, or the retired shared CA).
    /// It is `REVOKED` (with `revoke_reason`) when this returns; the CA's CRL is re-signed at
    /// once by its `crl` job.
    pub async fn revoke(
        &self,
        p: &Principal,
        id: &CertificateId,
        reason: Option<&str>,
    ) -> Result<(), DomainError> {
        let reason = parse_reason(reason)?;
        let cert = self.certificate(p, id).await?;
        let issued = match &cert.issued {
            Some(i) if cert.status == CertificateStatus::Issued && !cert.is_imported() => i,
            _ => return Err(DomainError::WrongStatus(cert.status)),
        };
        // The CA that issued it: recorded at issuance; a certificate the shared CA issued before
        // migration 0015 may not be marked yet if an older server issued it during an upgrade.
        let ca_id = issued
            .ca_id
            .clone()
            .or_else(|| self.shared_ca_id.clone())
            .ok_or_else(|| DomainError::internal(format!("no CA is recorded for {}", cert.id)))?;
        // An ACME CA's certificate is revoked at that CA first (`revokeCert`); only then is it
        // recorded here. Its CA publishes its status; no CRL of ours lists it.
        if let Some(issuer) = crate::issuers::acme_issuer_of(Some(ca_id.as_str())) {
            let code = CrlReason::from_text(&reason).map(|r| match r {
                CrlReason::Unspecified => 0,
                CrlReason::KeyCompromise => 1,
                CrlReason::CaCompromise => 2,
                CrlReason::AffiliationChanged => 3,
                CrlReason::Superseded => 4,
                CrlReason::CessationOfOperation => 5,
                CrlReason::CertificateHold => 6,
                CrlReason::PrivilegeWithdrawn => 9,
                CrlReason::AaCompromise => 10,
            });
            self.acme_revoke(issuer, &issued.certificate_pem, code)
                .await?;
            tracing::info!(cert = %cert.id, serial = %issued.serial_hex, issuer, "certificate revoked at its ACME CA");
        }
        let now = self.clock.now_ms();
        let revocation = NewRevocation {
            ca_id: ca_id.clone(),
            cert_id: cert.id.clone(),
            account: p.account.clone(),
            serial_hex: issued.serial_hex.clone(),
            reason,
            revoked_ms: now,
            not_after_ms: issued.not_after_ms,
        };
        if self
            .store
            .revoke_certificate(&revocation, &crl_job(&ca_id, now)?)
            .await
            .inspect(|_| self.cache.forget_certificate(&cert.domain_id, &cert.id))?
        {
            tracing::info!(cert = %cert.id, serial = %issued.serial_hex, ca = %ca_id, "certificate revoked");
            // This process's worker signs the new CRL now rather than at its next poll.
            self.jobs.wake();
            return Ok(());
        }
        Err(self.status_changed(p, &cert.id).await)
    }

    /// The CRL a CA has stored, by the last segment of its URL (`<ca id>.crl`); `None` for
    /// anything else, and for a CA whose first CRL is not signed yet.
    pub async fn crl(&self, file: &str) -> Result<Option<CrlRecord>, DomainError> {
        let Some(ca_id) = ca_id_of_crl_file(file) else {
            return Ok(None);
        };
        Ok(self.store.crl(ca_id).await?)
    }

    /// Queues the `crl` job of every CA whose CRL is still needed (every live account CA, and a
    /// retired CA until its last certificate expires), due now, unless one is queued already
    /// (then it keeps its time): at start, so that a CRL exists, and one that lapsed while no
    /// server ran (or whose job gave up) is signed again.
    pub async fn schedule_crl(&self) -> Result<(), DomainError> {
        let now = self.clock.now_ms();
        for ca_id in self.store.crl_ca_ids(now).await? {
            self.store.enqueue(&crl_job(&ca_id, now)?).await?;
        }
        Ok(())
    }

    /// One run of a `crl` job: sign the CA's CRL from the revocations stored, store it with its
    /// next number, and queue its refresh.
    pub(super) async fn attempt_crl(&self, job: &CrlJob) -> Attempt {
        let now = self.clock.now();
        let now_ms = unix_ms(now);
        let failed = |message: &str| Attempt::Failed {
            message: message.to_owned(),
            transient: true,
            effects: Vec::new(),
        };
        if crate::issuers::acme_issuer_of(Some(job.ca_id.as_str())).is_some() {
            // An ACME CA publishes the status of its own certificates.
            return Attempt::Done {
                effects: Vec::new(),
            };
        }
        let ca = match self.ca_by_id(&job.ca_id).await {
            Ok(Some(ca)) if ca.role() != CaRole::Serving => ca,
            Ok(_) => {
                return Attempt::Failed {
                    message: format!("CA {} is not a CA that signs CRLs", job.ca_id),
                    transient: false,
                    effects: Vec::new(),
                };
            }
            Err(e) => {
                tracing::warn!(error = %e, ca = %job.ca_id, "CRL: the CA cannot be loaded");
                return failed("the CA cannot be loaded");
            }
        };
        if ca.is_retired() {
            // A retired CA's CRL is signed until its last certificate expires, then left to lapse.
            match self.store.crl_ca_ids(now_ms).await {
                Ok(ids) if !ids.contains(&job.ca_id) => {
                    tracing::info!(ca = %job.ca_id, "CRL: the retired CA has no certificate left; not signed again");
                    return Attempt::Done {
                        effects: Vec::new(),
                    };
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, ca = %job.ca_id, "CRL: the store is unavailable");
                    return failed("the store is unavailable");
                }
            }
        }
        let inputs = match self.store.crl_inputs(&job.ca_id, now_ms).await {
            Ok(inputs) => inputs,
            Err(e) => {
                tracing::warn!(error = %e, ca = %job.ca_id, "CRL: the store is unavailable");
                return failed("the store is unavailable");
            }
        };
        let Some(number) = u64::try_from(inputs.number)
            .ok()
            .and_then(|n| n.checked_add(1))
        else {
            return failed("the stored CRL number is out of range");
        };
        let revoked: Vec<RevokedEntry> = inputs
            .revoked
            .iter()
            .map(|r| RevokedEntry {
                serial_hex: r.serial_hex.clone(),
                revoked_at: crate::clock::from_unix_ms(r.revoked_ms),
                reason: CrlReason::from_text(&r.reason),
            })
            .collect();
        let (this_update, next_update) = (now - CRL_BACKDATE, now + CRL_VALIDITY);
        let der = match ca.sign_crl(&CrlRequest {
            number,
            this_update,
            next_update,
            revoked: &revoked,
        }) {
            Ok(der) => der,
            Err(e) => {
                tracing::error!(error = %e, ca = %job.ca_id, "CRL: signing failed");
                return failed("the CRL could not be signed");
            }
        };
        let next = match crl_job(&job.ca_id, now_ms.saturating_add(millis(CRL_REFRESH))) {
            Ok(next) => next,
            Err(_) => return failed("the next CRL job could not be written"),
        };
        tracing::info!(ca = %job.ca_id, number, revoked = revoked.len(), "CRL signed");
        Attempt::Done {
            effects: vec![JobEffect::StoreCrl {
                crl: CrlRecord {
                    ca_id: job.ca_id.clone(),
                    number: i64::try_from(number).unwrap_or(i64::MAX),
                    der,
                    this_update_ms: unix_ms(this_update),
                    next_update_ms: unix_ms(next_update),
                },
                covers: inputs.changes,
                next,
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_required_short_and_printable() {
        assert_eq!(
            parse_reason(Some("keyCompromise")).unwrap(),
            "keyCompromise"
        );
        assert_eq!(
            parse_reason(Some("")).unwrap(),
            "",
            "0..63: empty is allowed"
        );
        let max = "é".repeat(MAX_REASON_CHARS);
        assert_eq!(
            parse_reason(Some(&max)).unwrap(),
            max,
            "characters, not bytes"
        );
        let field = |r| crate::error::invalid_field(parse_reason(r));
        assert_eq!(field(None), "reason");
        let long = "x".repeat(MAX_REASON_CHARS + 1);
        assert_eq!(field(Some(&long)), "reason");
        assert_eq!(field(Some("line\nbreak")), "reason");
    }

    #[test]
    fn crl_urls_name_the_ca_and_parse_back() {
        let id = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            crl_url("https://scm.example.test:8443/", id),
            format!("https://scm.example.test:8443/crl/{id}.crl")
        );
        assert_eq!(crl_url("http://h", "ab"), "http://h/crl/ab.crl");
        assert_eq!(ca_id_of_crl_file(&format!("{id}.crl")), Some(id));
        for bad in [
            id,
            "ABCD.crl",
            ".crl",
            "a.crl",
            "xyz.crl",
            "ab.crl.crl",
            "ab.pem",
        ] {
            assert_eq!(ca_id_of_crl_file(bad), None, "{bad}");
        }
        assert!(ca_id_of_crl_file(&format!("{}.crl", "a".repeat(130))).is_none());
    }

    #[test]
    fn the_refresh_comes_at_two_thirds_of_the_validity() {
        assert_eq!(CRL_REFRESH * 3, CRL_VALIDITY * 2);
    }
}
