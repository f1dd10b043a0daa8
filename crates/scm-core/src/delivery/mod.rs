//! The deployment engine: a push of a certificate is one `deliver` job per target, each with its
//! own attempts, backoff and history, so that one failing target never holds up the others and a
//! retry never re-delivers to a target that already took the certificate.
//!
//! A delivery counts when the target serves it: after the kind's adapter ([`Deployer`]) has
//! installed the version, a TLS handshake with the target's `verify` endpoint ([`TlsProber`])
//! must present the delivered leaf (and a chain that verifies to its issuer). "Delivered but not
//! served" is a failure like any other (retried, and told to the account's notifiers when first
//! seen). Where each certificate is deployed is kept per (certificate, target) in the store's
//! `deployments`, written in the same transaction as the attempt; a periodic drift sweep
//! ([`drift`]) checks that the targets still serve what they were given.
//!
//! Commands of a target (test, reload, programs) may run again after a crash: an attempt
//! interrupted by a SIGKILL is run again by whichever server claims its job once the lease runs
//! out, and its record is written only by the attempt that completes (the lease token fences
//! the others).
//!
//! [`Deployer`]: crate::deploy::Deployer
//! [`TlsProber`]: crate::deploy::probe::TlsProber

pub(crate) mod deliver;
pub(crate) mod drift;

use std::sync::Arc;
use std::time::Duration;

use scm_store::{CertificateRecord, JobId, JobRecord, JobState, NewJob};
use serde::{Deserialize, Serialize};

use crate::DomainError;
use crate::deploy::probe::TlsProber;
use crate::deploy::{PushService, PushTarget};
use crate::jobs::{AttemptReport, JobHandler, JobKind};
use crate::service::Scm;

/// How deliveries are checked.
#[derive(Clone)]
pub struct DeliverySettings {
    /// How long after a delivery the TLS check keeps looking for the new certificate (reloads
    /// take milliseconds to seconds).
    pub verify_window: Duration,
    /// How often each deployment with a `verify` endpoint is checked for drift.
    pub drift_every: Duration,
    /// Deployments checked per run of the drift sweep.
    pub drift_batch: u32,
    /// The TLS handshake of the checks (`None`: nothing is verified, e.g. in unit tests of
    /// the domain that do not configure `verify`).
    pub prober: Option<Arc<dyn TlsProber>>,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            verify_window: Duration::from_secs(10),
            drift_every: Duration::from_secs(3600),
            drift_batch: 500,
            prober: None,
        }
    }
}

impl std::fmt::Debug for DeliverySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliverySettings")
            .field("verify_window", &self.verify_window)
            .field("drift_every", &self.drift_every)
            .field("drift_batch", &self.drift_batch)
            .field("prober", &self.prober.is_some())
            .finish()
    }
}

/// The input of a `deliver` job: the certificate's current version to one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeliverJob {
    /// The certificate.
    pub certificate_id: String,
    /// The account that asked.
    pub account: String,
    /// Service, API spelling.
    pub service: String,
    /// Region, `None` for CDN.
    pub region: Option<String>,
    /// The target. Absent in jobs queued before deliveries were per target (they name
    /// `targets`, and are split into one job per target when they run).
    #[serde(default)]
    pub target: Option<String>,
    /// The targets of a job queued by an earlier release.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// Deliver even when the target is seen serving the version already (a drift re-delivery:
    /// the check that found the drift is the reason).
    #[serde(default)]
    pub force: bool,
}

/// The dedupe key of deliveries of `cert` to `target`: while one is queued or running, a new
/// push to that target joins it (it delivers the version current when it runs).
fn deliver_key(cert: &str, target: &str) -> String {
    format!("deliver:{cert}:{target}")
}

/// One target's answer to a push.
#[derive(Debug)]
pub struct TargetOutcome {
    /// The target.
    pub target: String,
    /// How its first attempt ended.
    pub report: AttemptReport,
}

impl Scm {
    /// The `deliver` jobs of a push of `cert` to `targets`, one per target (refused when `cert`
    /// cannot be pushed, or there is no target).
    pub(crate) fn delivery_jobs(
        &self,
        cert: &CertificateRecord,
        service: PushService,
        region: Option<String>,
        targets: &[&PushTarget],
        force: bool,
    ) -> Result<Vec<(String, NewJob)>, DomainError> {
        crate::service::ensure_pushable(cert)?;
        if targets.is_empty() {
            return Err(DomainError::NoPushTarget {
                service: service.as_str().into(),
                region: region.clone().unwrap_or_else(|| "global".into()),
            });
        }
        let region = if service.is_global() { None } else { region };
        let kind = JobKind::Deliver;
        let now = self.clock.now_ms();
        targets
            .iter()
            .map(|t| {
                let job = DeliverJob {
                    certificate_id: cert.id.to_string(),
                    account: cert.domain_id.to_string(),
                    service: service.as_str().into(),
                    region: region.clone(),
                    target: Some(t.name.clone()),
                    targets: Vec::new(),
                    force,
                };
                let payload = serde_json::to_string(&job)
                    .map_err(|e| DomainError::internal_from("job payload", e))?;
                Ok((
                    t.name.clone(),
                    kind.job(payload, Some(deliver_key(cert.id.as_str(), &t.name)), now),
                ))
            })
            .collect()
    }

    /// Records the deliveries of a push. A target with a delivery already queued (waiting for
    /// its next attempt) keeps that job, made due now: the person pushing wants it now.
    pub(crate) async fn enqueue_deliveries(
        &self,
        cert: &CertificateRecord,
        service: PushService,
        region: Option<String>,
        targets: &[&PushTarget],
    ) -> Result<Vec<(String, JobId)>, DomainError> {
        let jobs = self.delivery_jobs(cert, service, region, targets, false)?;
        let now = self.clock.now_ms();
        let mut ids = Vec::with_capacity(jobs.len());
        for (target, job) in jobs {
            let id = self.store.enqueue(&job).await?;
            self.store.hasten(id, now).await?;
            tracing::debug!(job = %id, cert = %cert.id, target = %target, "delivery queued");
            ids.push((target, id));
        }
        Ok(ids)
    }

    /// Runs the first attempt of each delivery at once (here, or waits for the process that
    /// claimed it first) and answers with every target's outcome, in the order given.
    pub(crate) async fn first_attempts(
        self: &Arc<Self>,
        jobs: Vec<(String, JobId)>,
    ) -> Result<Vec<TargetOutcome>, DomainError> {
        let mut set = tokio::task::JoinSet::new();
        for (i, (target, id)) in jobs.into_iter().enumerate() {
            let scm = self.clone();
            set.spawn(async move {
                let report = scm.first_attempt(id).await;
                (i, target, report)
            });
        }
        let mut done = Vec::new();
        while let Some(joined) = set.join_next().await {
            let (i, target, report) = joined
                .map_err(|e| DomainError::internal_from("a delivery wait ended abnormally", e))?;
            done.push((
                i,
                TargetOutcome {
                    target,
                    report: report?,
                },
            ));
        }
        done.sort_by_key(|(i, _)| *i);
        Ok(done.into_iter().map(|(_, o)| o).collect())
    }

    /// Runs the next attempt of a queued `deliver` job (here, or waits for the process that
    /// claimed it first) and reports how it ended.
    async fn first_attempt(self: &Arc<Self>, job_id: JobId) -> Result<AttemptReport, DomainError> {
        // Attempts ended before this push (a delivery in backoff that this push joined); a
        // running attempt (counted when it was claimed) is the one this push waits for.
        let before = self.store.job(job_id).await?.map_or(0, |j| match j.state {
            JobState::Running => j.attempts.saturating_sub(1),
            _ => j.attempts,
        });
        let handler: Arc<dyn JobHandler> = self.clone();
        Ok(match self.jobs.run_now(handler, job_id).await? {
            // The attempt runs in the job runner, not in this request: if the client goes away,
            // the delivery still completes (or is retried).
            Some(attempt) => attempt.await.unwrap_or(AttemptReport::Lost {
                reason: "the server is shutting down; the push will be retried".into(),
            }),
            None if self.jobs.is_stopping() => AttemptReport::Lost {
                reason: "the server is shutting down; the push will be retried".into(),
            },
            None => self.attempt_elsewhere(job_id, before).await?,
        })
    }

    /// Waits for an attempt of a job another process claimed first (one made after `before`
    /// attempts), polling with a backoff up to the push wait.
    async fn attempt_elsewhere(
        &self,
        id: JobId,
        before: u32,
    ) -> Result<AttemptReport, DomainError> {
        let deadline = tokio::time::Instant::now() + self.config.push_wait;
        let mut pause = Duration::from_millis(20);
        loop {
            let job = self
                .store
                .job(id)
                .await?
                .ok_or_else(|| DomainError::internal("a queued delivery job vanished"))?;
            if let Some(report) = attempt_report(&job, before) {
                return Ok(report);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(AttemptReport::Lost {
                    reason: "the delivery is still in progress; its outcome will be in the push \
                             history"
                        .into(),
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }
}

/// How the attempt after `before` attempts of `job` ended, once it has.
fn attempt_report(job: &JobRecord, before: u32) -> Option<AttemptReport> {
    let message = || job.last_error.clone().unwrap_or_default();
    match job.state {
        JobState::Done => Some(AttemptReport::Done),
        JobState::Failed => Some(AttemptReport::Failed {
            message: message(),
            retry_at_ms: None,
        }),
        JobState::Pending if job.attempts > before => Some(AttemptReport::Failed {
            message: message(),
            retry_at_ms: Some(job.due_ms),
        }),
        JobState::Pending | JobState::Running => None,
    }
}

/// The answer to a push from its targets' first attempts: `Ok` when every target serves it;
/// otherwise one message naming each target that failed, and for each whether and when it is
/// tried again (an "in progress" push says so first).
pub fn push_answer(outcomes: &[TargetOutcome]) -> Result<(), DomainError> {
    let mut failures = Vec::new();
    let mut pending = false;
    for o in outcomes {
        match &o.report {
            AttemptReport::Done => {}
            AttemptReport::Failed {
                message,
                retry_at_ms: Some(at),
            } => {
                pending = true;
                failures.push(format!(
                    "{message} (pending retry, next attempt at {})",
                    crate::clock::rfc3339(*at)
                ));
            }
            AttemptReport::Failed {
                message,
                retry_at_ms: None,
            } => failures.push(format!("{message} (given up)")),
            AttemptReport::Waiting { until_ms } => {
                pending = true;
                failures.push(format!(
                    "target {}: not done yet (next attempt at {})",
                    o.target,
                    crate::clock::rfc3339(*until_ms)
                ));
            }
            AttemptReport::Lost { reason } => {
                pending = true;
                failures.push(format!("target {}: {reason}", o.target));
            }
        }
    }
    if failures.is_empty() {
        return Ok(());
    }
    let text = failures.join("; ");
    Err(DomainError::PushFailed(if pending {
        format!("in progress: {text}")
    } else {
        text
    }))
}
