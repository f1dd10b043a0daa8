//! ACME Renewal Information (RFC 9773): for a version an ACME CA that offers ARI issued, the
//! `ari-check` job asks the CA for its suggested renewal window, sets the version's renewal
//! time to a random point inside it (at once when the window has moved into the past, so the
//! renewal sweep acts on it within a minute), and asks again after the CA's `Retry-After`,
//! clamped between [`super::IssuerSettings::ari_min_interval`] (1 h) and `ari_max_interval`
//! (24 h). A CA without ARI leaves the version on the schedule of [`crate::lifecycle::renewal`].

use scm_proto::CertificateId;
use scm_store::{JobRecord, NewEvent, NewJob};
use serde::{Deserialize, Serialize};

use crate::DomainError;
use crate::jobs::{Attempt, JobKind, millis, not_yet};
use crate::lifecycle::versions::unit_random;
use crate::service::Scm;

/// The input of an `ari-check` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AriJob {
    /// The certificate.
    pub cert: String,
    /// The version whose window is asked for.
    pub seq: u32,
}

/// The ARI job of version `seq` of `cert`, due at `due_ms`.
pub(crate) fn ari_job(cert: &CertificateId, seq: u32, due_ms: i64) -> Result<NewJob, DomainError> {
    let payload = serde_json::to_string(&AriJob {
        cert: cert.to_string(),
        seq,
    })
    .map_err(|e| DomainError::internal_from("job payload", e))?;
    Ok(JobKind::AriCheck.job(payload, Some(format!("ari:{cert}:{seq}")), due_ms))
}

/// Where in a window `[start, end)` to renew, at `now_ms`: a random point of what is left of
/// it; at once when it has passed or is about to.
pub fn point_in_window(start_ms: i64, end_ms: i64, now_ms: i64, jitter: f64) -> i64 {
    let from = start_ms.max(now_ms);
    if end_ms <= from {
        return now_ms;
    }
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let offset = ((end_ms - from) as f64 * jitter.clamp(0.0, 1.0)) as i64;
    from.saturating_add(offset).min(end_ms)
}

impl Scm {
    /// An `ari-check` job: one look at the CA's window for a version.
    pub(crate) async fn attempt_ari(&self, job: &JobRecord, a: &AriJob) -> Attempt {
        match self.ari_step(a).await {
            Ok(Some(until)) => not_yet(until),
            Ok(None) => Attempt::Done {
                effects: Vec::new(),
            },
            Err(e) => {
                tracing::info!(job = %job.id, cert = %a.cert, error = %e, "ARI check failed");
                Attempt::Failed {
                    message: e.to_string(),
                    transient: true,
                    effects: Vec::new(),
                }
            }
        }
    }

    async fn ari_step(&self, a: &AriJob) -> Result<Option<i64>, DomainError> {
        let Ok(id) = CertificateId::try_from(a.cert.as_str()) else {
            return Ok(None);
        };
        let Some(cert) = self.store.certificate(&id).await? else {
            return Ok(None);
        };
        if cert.lifecycle.current_version != Some(a.seq) || !Self::renewable_status(cert.status) {
            return Ok(None);
        }
        let Some(version) = self.store.version(&id, a.seq).await? else {
            return Ok(None);
        };
        let Some(name) = super::acme_issuer_of(version.issued.ca_id.as_deref()) else {
            return Ok(None);
        };
        let Some(issuer) = self.config.issuers.acme(name).cloned() else {
            return Ok(None);
        };
        let info = scm_pki::parse_certificate_pem(&version.issued.certificate_pem)
            .map_err(|e| DomainError::internal_from("a stored certificate", e))?;
        let window = issuer
            .ca
            .renewal_info(&info.der)
            .await
            .map_err(|e| DomainError::IssuerFailed(e.to_string()))?;
        let Some(window) = window else {
            return Ok(None);
        };
        let now = self.clock.now_ms();
        let current = cert.lifecycle.renew_at_ms;
        // Keep the point already chosen while it is still inside the window (and not past).
        let keep = current.is_some_and(|at| at >= window.start_ms && at < window.end_ms);
        if !keep {
            let at = point_in_window(window.start_ms, window.end_ms, now, unit_random());
            if self.store.postpone_renewal(&id, a.seq, at).await? {
                self.store
                    .record_event(
                        &id,
                        now,
                        &NewEvent {
                            event: "renewal_scheduled".into(),
                            detail: format!(
                                "{name} suggests renewing between {} and {} (ARI); renewal at {}",
                                crate::clock::from_unix_ms(window.start_ms),
                                crate::clock::from_unix_ms(window.end_ms),
                                crate::clock::from_unix_ms(at)
                            ),
                            actor: "ari".into(),
                        },
                    )
                    .await?;
                // The renewal sweep (every minute) finds it when it falls due.
                self.cache.forget_certificate(&cert.domain_id, &id);
            }
        }
        let settings = &self.config.issuers;
        let again = window
            .retry_after
            .unwrap_or(settings.ari_max_interval)
            .clamp(settings.ari_min_interval, settings.ari_max_interval);
        Ok(Some(now.saturating_add(millis(again))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_point_falls_in_what_is_left_of_the_window() {
        assert_eq!(point_in_window(100, 200, 0, 0.0), 100);
        assert_eq!(point_in_window(100, 200, 0, 1.0), 200);
        assert_eq!(point_in_window(100, 200, 150, 0.5), 175);
        // A window in the past: at once.
        assert_eq!(point_in_window(10, 20, 50, 0.7), 50);
    }
}
