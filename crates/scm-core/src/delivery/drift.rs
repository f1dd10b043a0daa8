//! The drift sweep: a recurring job that handshakes with every deployment whose target has a
//! `verify` endpoint and was not checked for `drift_every`, and records what it sees. A target
//! that no longer serves the version delivered to it (replaced out of band, or a restart lost a
//! runtime swap) is a drift: recorded, told to the account once (when first seen), and
//! re-delivered when the target says `redeliver_on_drift = true`.

use scm_store::{DeploymentChange, DeploymentRecord, JobEffect, NewJob};

use crate::deploy::{DeliveryContext, PushTarget};
use crate::jobs::{Attempt, JobKind, millis};
use crate::notify::{Event, Notification};
use crate::service::Scm;

/// One live drift sweep per store.
const DRIFT_KEY: &str = "drift-sweep";

fn drift_job(due_ms: i64) -> NewJob {
    JobKind::DriftSweep.job("{}".into(), Some(DRIFT_KEY.into()), due_ms)
}

impl Scm {
    /// Queues the drift sweep (at server start); a sweep already queued stays as it is.
    pub async fn schedule_drift_sweep(&self) -> Result<(), crate::DomainError> {
        let first = self
            .clock
            .now_ms()
            .saturating_add(millis(self.config.delivery.drift_every).min(60_000));
        self.store.enqueue(&drift_job(first)).await?;
        Ok(())
    }

    /// The `drift-sweep` job: checks up to a batch of deployments not checked for
    /// `drift_every`, then queues its next run (at once when the batch was full).
    pub(crate) async fn attempt_drift_sweep(&self) -> Attempt {
        let settings = &self.config.delivery;
        let now = self.clock.now_ms();
        let cutoff = now.saturating_sub(millis(settings.drift_every));
        let due = match self
            .store
            .deployments_to_check(cutoff, settings.drift_batch)
            .await
        {
            Ok(d) => d,
            Err(e) => return crate::jobs::store_unavailable("drift sweep", &e),
        };
        let full = u32::try_from(due.len()).unwrap_or(u32::MAX) >= settings.drift_batch;
        let mut effects = Vec::new();
        for row in &due {
            effects.extend(self.check_drift(row).await);
        }
        let next = if full {
            now
        } else {
            now.saturating_add(millis(settings.drift_every).min(300_000))
        };
        effects.push(JobEffect::Enqueue(drift_job(next)));
        Attempt::Done { effects }
    }

    /// Checks one deployment: the effects that record it (and tell and re-deliver on a drift).
    async fn check_drift(&self, row: &DeploymentRecord) -> Vec<JobEffect> {
        let now = self.clock.now_ms();
        let checked = |drift: Option<String>, served_serial: Option<String>| {
            JobEffect::Deployment(DeploymentChange::Checked {
                cert_id: row.cert_id.clone(),
                target: row.target.clone(),
                drift,
                served_serial,
                at_ms: now,
            })
        };
        let target: Option<&PushTarget> = self
            .config
            .push_targets
            .iter()
            .find(|t| t.name == row.target && t.account == row.domain_id);
        let Some(target) = target else {
            return vec![checked(None, None)];
        };
        let cert = match self.store.certificate(&row.cert_id).await {
            Ok(Some(c)) => c,
            _ => return vec![checked(None, None)],
        };
        let (Some(verify), Some(issued)) = (&target.verify, &cert.issued) else {
            return vec![checked(None, None)];
        };
        // The version delivered last: compare with what it was (not with a newer current one,
        // whose delivery is the delivery job's business).
        if cert.lifecycle.current_version.unwrap_or(1) != row.version {
            return vec![checked(None, None)];
        }
        let context = DeliveryContext {
            target: row.target.clone(),
            job_id: 0,
            attempt: 0,
        };
        let Ok(material) = crate::deploy::material(
            &cert.id,
            row.version,
            issued,
            zeroize::Zeroizing::new(String::new()),
            context,
        ) else {
            return vec![checked(None, None)];
        };
        let endpoint = verify.endpoint(material.facts.names.first().map_or("", String::as_str));
        let (drift, served) = match self.check_once(&endpoint, &material).await {
            Ok(super::deliver::Check::Served(s)) => (None, Some(s)),
            Ok(super::deliver::Check::Other(s, why)) => (Some(why), s),
            // Not answering is not a drift: the next sweep looks again.
            Err(e) => {
                tracing::info!(cert = %row.cert_id, target = %row.target, error = %e.message, "drift check: no answer");
                return vec![checked(None, None)];
            }
        };
        let serial = served.as_ref().map(|s| s.serial_hex.clone());
        let mut effects = vec![checked(drift.clone(), serial)];
        let Some(why) = drift else {
            return effects;
        };
        tracing::warn!(cert = %row.cert_id, target = %row.target, drift = %why, "a target no longer serves what it was given");
        if row.drift_ms.is_none() {
            let n = Notification {
                account: row.domain_id.to_string(),
                at_ms: now,
                event: Event::Drift {
                    certificate_id: cert.id.to_string(),
                    name: cert.name.clone(),
                    target: row.target.clone(),
                    version: row.version,
                    expected_sha256: material.facts.sha256_fingerprint.clone(),
                    served_sha256: served.map(|s| s.sha256_fingerprint),
                },
            };
            effects.extend(self.notify_jobs(&row.domain_id, &n, now));
        }
        if target.redeliver_on_drift {
            match self.delivery_jobs(
                &cert,
                target.service,
                target.region.clone(),
                &[target],
                true,
            ) {
                Ok(jobs) => effects.extend(jobs.into_iter().map(|(_, j)| JobEffect::Enqueue(j))),
                Err(e) => {
                    tracing::warn!(cert = %row.cert_id, error = %e, "cannot queue a re-delivery after a drift")
                }
            }
        }
        effects
    }
}
