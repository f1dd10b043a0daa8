//! Automatic renewal: every issued version of a purchased certificate has a renewal time
//! ([`super::versions::renew_at`]); a sweep (a job, at start and every
//! [`RenewalSettings::sweep_every`]) finds the due ones through an index on that time and queues
//! one `renew` job per certificate and version; the job re-validates the names whose proof is too
//! old, issues the next version through the same CA, and queues a push of it to every target the
//! previous version was delivered to.
//!
//! Exactly once: the job's dedupe key is `renew:<id>:<version>`, and the new version is recorded
//! only if the current one is still the version the job renews, so two servers (or a retried
//! job) never make two versions from one.
//!
//! While a renewal waits on validation the certificate stays `ISSUED` (its current version is
//! still good) and its pending records show in `authentification`. A renewal that keeps failing
//! is retried; when a tenth of the version's lifetime is left and it still fails, the account's
//! notifiers hear `renewal_failed` (once per version).
//!
//! [`RenewalSettings::sweep_every`]: super::RenewalSettings::sweep_every

use scm_proto::{CertificateId, CertificateStatus};
use scm_store::{CertificateRecord, JobEffect, JobRecord, NewEvent, NewJob, VersionExpect};
use serde::{Deserialize, Serialize};

use crate::DomainError;
use crate::application::ApplicationForm;
use crate::auth::Principal;
use crate::jobs::{Attempt, JobKind, millis};
use crate::notify::{Event, Notification};
use crate::service::Scm;

use super::validation::{Round, method_of};
use super::versions::VersionReason;

/// The dedupe key of the one live sweep job.
const SWEEP_KEY: &str = "renewal-sweep";

/// The input of a `renew` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RenewJob {
    /// The certificate.
    pub cert: String,
    /// The version it renews.
    pub seq: u32,
    /// Asked for by a person (renews even with auto-renew off, and before it is due).
    #[serde(default)]
    pub manual: bool,
}

/// The dedupe key of the renewal of version `seq` of `id`.
fn job_key(id: &CertificateId, seq: u32) -> String {
    format!("renew:{id}:{seq}")
}

fn renew_job(id: &CertificateId, seq: u32, manual: bool, now_ms: i64) -> NewJob {
    let payload = serde_json::to_string(&RenewJob {
        cert: id.to_string(),
        seq,
        manual,
    })
    .unwrap_or_default();
    JobKind::Renew.job(payload, Some(job_key(id, seq)), now_ms)
}

fn sweep_job(due_ms: i64) -> NewJob {
    JobKind::RenewalSweep.job("{}".into(), Some(SWEEP_KEY.into()), due_ms)
}

impl Scm {
    /// Queues the renewal sweep to run now (at server start: a certificate that fell due while
    /// the server was down is renewed as soon as it runs). A sweep already queued stays as it is.
    pub async fn schedule_renewal_sweep(&self) -> Result<(), DomainError> {
        self.store.enqueue(&sweep_job(self.clock.now_ms())).await?;
        Ok(())
    }

    /// The `renewal-sweep` job: queues a renewal of every due certificate (up to a batch), then
    /// its own next run.
    pub(crate) async fn attempt_renewal_sweep(&self) -> Attempt {
        let now = self.clock.now_ms();
        let settings = self.config.renewal;
        let next_check = now.saturating_add(millis(settings.retry_after));
        let make = |id: &CertificateId, seq: u32| renew_job(id, seq, false, now);
        let queued = match self
            .store
            .queue_due_renewals(now, settings.sweep_batch, next_check, &make)
            .await
        {
            Ok(q) => q,
            Err(e) => return crate::jobs::store_unavailable("renewal sweep", &e),
        };
        if !queued.is_empty() {
            tracing::info!(renewals = queued.len(), "renewals queued");
            self.jobs.wake();
        }
        let full = u32::try_from(queued.len()).unwrap_or(u32::MAX) >= settings.sweep_batch;
        let next = if full {
            now
        } else {
            now.saturating_add(millis(settings.sweep_every))
        };
        Attempt::Done {
            effects: vec![JobEffect::Enqueue(sweep_job(next))],
        }
    }

    /// Renews the caller's certificate now (CLI, console): queues the renewal of its current
    /// version, whatever its renewal time and auto-renew switch. Returns the version renewed.
    pub async fn renew_now(&self, p: &Principal, id: &CertificateId) -> Result<u32, DomainError> {
        let cert = self.stored_certificate(p, id).await?;
        let seq = match cert.lifecycle.current_version {
            Some(seq) if Self::renewable_status(cert.status) && !cert.is_imported() => seq,
            _ => {
                return Err(DomainError::WrongStatus(
                    cert.status_at(self.clock.now_ms()),
                ));
            }
        };
        let now = self.clock.now_ms();
        self.store
            .enqueue(&renew_job(&cert.id, seq, true, now))
            .await?;
        // A renewal order already under way (perhaps waiting on a name that kept failing): a
        // person asking lifts the stop and makes it due now.
        self.hasten_order(&cert, seq.saturating_add(1)).await?;
        self.store
            .record_event(
                &cert.id,
                now,
                &NewEvent {
                    event: "renewal_scheduled".into(),
                    detail: format!("renewal of version {seq} asked for"),
                    actor: crate::lifecycle::actor(p),
                },
            )
            .await?;
        self.jobs.wake();
        Ok(seq)
    }

    /// Turns the caller's certificate's auto-renew switch on or off.
    pub async fn set_auto_renew(
        &self,
        p: &Principal,
        id: &CertificateId,
        on: bool,
    ) -> Result<(), DomainError> {
        let cert = self.stored_certificate(p, id).await?;
        if cert.is_imported() {
            return Err(DomainError::invalid(
                "auto_renew",
                "an imported certificate is not renewed by OpenSCM",
            ));
        }
        let event = NewEvent {
            event: "auto_renew".into(),
            detail: if on { "on" } else { "off" }.into(),
            actor: crate::lifecycle::actor(p),
        };
        let now = self.clock.now_ms();
        if !self
            .store
            .set_auto_renew(&cert.id, on, &event, now)
            .await
            .inspect(|_| self.cache.forget_certificate(&cert.domain_id, &cert.id))?
        {
            return Err(DomainError::CertificateNotFound);
        }
        Ok(())
    }

    /// A `renew` job: one step of the renewal of version `r.seq`.
    pub(crate) async fn attempt_renewal(&self, job: &JobRecord, r: &RenewJob) -> Attempt {
        let actor = format!("job {}", job.id);
        match self.renewal_step(r, &actor).await {
            Ok(RenewStep::Done(effects)) => Attempt::Done { effects },
            Ok(RenewStep::Again(until_ms)) => crate::jobs::not_yet(until_ms),
            Err(e) => {
                let last = crate::jobs::is_last_attempt(job, true);
                tracing::warn!(job = %job.id, cert = %r.cert, error = %e, last, "renewal attempt failed");
                // Still failing with a tenth of the lifetime left: tell the account (once per
                // version: the notification jobs' dedupe keys).
                let mut effects = Vec::new();
                if let Ok(id) = CertificateId::try_from(r.cert.as_str())
                    && let Ok(Some(cert)) = self.store.certificate(&id).await
                {
                    match self.renewal_failing(&cert, &e.to_string(), &actor).await {
                        Ok(notices) => effects = notices,
                        Err(e) => {
                            tracing::warn!(cert = %cert.id, error = %e, "cannot tell that a renewal fails")
                        }
                    }
                }
                Attempt::Failed {
                    message: e.to_string(),
                    transient: true,
                    effects,
                }
            }
        }
    }

    async fn renewal_step(&self, r: &RenewJob, actor: &str) -> Result<RenewStep, DomainError> {
        let Ok(id) = CertificateId::try_from(r.cert.as_str()) else {
            return Ok(RenewStep::Done(Vec::new()));
        };
        let Some(cert) = self.store.certificate(&id).await? else {
            return Ok(RenewStep::Done(Vec::new()));
        };
        // Re-read: another server may have renewed it, or it was revoked, or switched off.
        let current = cert.lifecycle.current_version;
        if current != Some(r.seq)
            || !Self::renewable_status(cert.status)
            || cert.is_imported()
            || (!r.manual && !cert.lifecycle.auto_renew)
        {
            return Ok(RenewStep::Done(Vec::new()));
        }
        let Some(saved) = cert.application.as_ref() else {
            return Ok(RenewStep::Done(Vec::new()));
        };
        let form = ApplicationForm::from_record(saved)?;
        // Through an ACME CA (the brand's first issuer, or the one that issued the current
        // version): an order of the next version, carried by its own job.
        if self.issued_by_acme(&cert) {
            let order = self.renewal_order(&cert, &form, r.seq, r.manual).await?;
            return Ok(RenewStep::Done(vec![order]));
        }
        let unproven = self.unproven(&cert.domain_id, &form).await?;
        if !unproven.is_empty() {
            let now = self.clock.now_ms();
            if cert.lifecycle.validation_started_ms.is_none() {
                let names: Vec<&str> = unproven.iter().map(|v| v.name.as_str()).collect();
                let event = NewEvent {
                    event: "renewal_validation".into(),
                    detail: format!("proof of control too old for {}", names.join(", ")),
                    actor: actor.into(),
                };
                self.store
                    .start_validation(&cert.id, cert.status, cert.status, None, &event, None, now)
                    .await?;
                self.cache.forget_certificate(&cert.domain_id, &cert.id);
            }
            let started = cert.lifecycle.validation_started_ms.unwrap_or(now);
            if let Round::Pending(failing) = self
                .check_round(&cert, &unproven, method_of(&form), actor)
                .await?
            {
                let why = failing
                    .iter()
                    .map(|(n, why)| format!("{n}: {why}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                let next = now
                    + super::validation::next_check_in_ms(
                        &self.config.validation,
                        now.saturating_sub(started),
                    );
                let notices = self
                    .renewal_failing(&cert, &format!("domain validation pending: {why}"), actor)
                    .await?;
                self.enqueue_now(notices).await?;
                return Ok(RenewStep::Again(next));
            }
        }
        let reason = if r.manual {
            VersionReason::ManualRenewal
        } else {
            VersionReason::Renewal
        };
        let Some(issued) = self
            .issue_version(&cert, &form, VersionExpect::Current(r.seq), reason, actor)
            .await?
        else {
            // Another server renewed it first.
            return Ok(RenewStep::Done(Vec::new()));
        };
        let mut effects = self.repush_after_renewal(&cert).await;
        // The account hears of the new version with this job's end (once: a retry finds the
        // version moved on and ends without effects).
        let now = self.clock.now_ms();
        let n = Notification {
            account: cert.domain_id.to_string(),
            at_ms: now,
            event: Event::Renewed {
                certificate_id: cert.id.to_string(),
                name: cert.name.clone(),
                version: r.seq.saturating_add(1),
                not_after_ms: issued.not_after_ms,
            },
        };
        effects.extend(self.notify_jobs(&cert.domain_id, &n, now));
        Ok(RenewStep::Done(effects))
    }

    /// The `renewal_failed` notifications of `cert`'s current version when a tenth of its
    /// lifetime is left and it is still not renewed: one per notifier of the account, once per
    /// version (the certificate's history records that it was told, and is read first).
    pub(crate) async fn renewal_failing(
        &self,
        cert: &CertificateRecord,
        why: &str,
        actor: &str,
    ) -> Result<Vec<JobEffect>, DomainError> {
        let Some(issued) = cert.issued.as_ref() else {
            return Ok(Vec::new());
        };
        let now = self.clock.now_ms();
        let lifetime = issued.not_after_ms.saturating_sub(issued.not_before_ms);
        if issued.not_after_ms.saturating_sub(now) > lifetime / 10 {
            return Ok(Vec::new());
        }
        let seq = cert.lifecycle.current_version.unwrap_or(0);
        let marker = format!("version {seq}: ");
        let told = self
            .store
            .events(&cert.id, 500)
            .await?
            .iter()
            .any(|e| e.event == "renewal_failed" && e.detail.starts_with(&marker));
        if told {
            return Ok(Vec::new());
        }
        let why: String = why.chars().take(500).collect();
        self.store
            .record_event(
                &cert.id,
                now,
                &NewEvent {
                    event: "renewal_failed".into(),
                    detail: format!("{marker}{why}"),
                    actor: actor.into(),
                },
            )
            .await?;
        let n = Notification {
            account: cert.domain_id.to_string(),
            at_ms: now,
            event: Event::RenewalFailed {
                certificate_id: cert.id.to_string(),
                name: cert.name.clone(),
                not_after_ms: issued.not_after_ms,
                error: why,
            },
        };
        Ok(self.notify_jobs(&cert.domain_id, &n, now))
    }

    /// Queues, as effects of the renewal job, a delivery of the new version to every target
    /// the certificate is deployed to (or being deployed to), among those still configured for
    /// the account.
    pub(crate) async fn repush_after_renewal(
        &self,
        previous: &CertificateRecord,
    ) -> Vec<JobEffect> {
        let deployments = match self.store.deployments(&previous.id).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(cert = %previous.id, error = %e, "cannot read where a renewed certificate is deployed: no push queued");
                return Vec::new();
            }
        };
        let mut effects = Vec::new();
        for d in deployments {
            let Some(t) = self
                .config
                .push_targets
                .iter()
                .find(|t| t.name == d.target && t.account == previous.domain_id)
            else {
                continue;
            };
            match self.delivery_jobs(previous, t.service, t.region.clone(), &[t], false) {
                Ok(jobs) => effects.extend(jobs.into_iter().map(|(_, j)| JobEffect::Enqueue(j))),
                Err(e) => {
                    tracing::warn!(cert = %previous.id, error = %e, "cannot queue the push of a renewed certificate")
                }
            }
        }
        effects
    }
}

/// What a renewal step leaves.
enum RenewStep {
    /// Finished, with these effects (pushes of the new version, the account's notifications).
    Done(Vec<JobEffect>),
    /// Waiting on validation: look again at this time.
    Again(i64),
}

/// Whether `status` may be renewed (re-exported for the API's views).
pub fn renewable(status: CertificateStatus) -> bool {
    Scm::renewable_status(status)
}
