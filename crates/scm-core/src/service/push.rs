//! Pushes: a push request becomes a durable `deliver` job; the request waits for its first
//! attempt and answers with its outcome, while retries (and a delivery interrupted by a crash)
//! go on in the background, in whichever process claims the job.

use std::sync::Arc;

use scm_proto::CertificateId;
use scm_store::{CertificateRecord, JobId, JobRecord, JobState, NewJob, PushRecord};
use serde::{Deserialize, Serialize};

use crate::DomainError;
use crate::auth::Principal;
use crate::deploy::{PushService, PushTarget};
use crate::jobs::{AttemptReport, JobHandler, JobKind};

use super::Scm;

/// The input of a `deliver` job: one push request.
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
    /// Names of the targets matched when the push was asked for.
    pub targets: Vec<String>,
}

impl Scm {
    /// Pushes an issued certificate to every configured target of the caller's account for this
    /// service and region: records a `deliver` job, runs its first attempt and answers with it.
    /// Every attempt is recorded in the history, successful or not; a failed attempt that may pass
    /// is retried in the background.
    pub async fn push(
        self: &Arc<Self>,
        p: &Principal,
        id: &CertificateId,
        service: PushService,
        region: Option<String>,
    ) -> Result<(), DomainError> {
        let cert = self.certificate(p, id).await?;
        let job_id = self.enqueue_push(&cert, service, region).await?;
        self.first_attempt(job_id).await
    }

    /// Runs the first attempt of a queued `deliver` job (here, or waits for the process that
    /// claimed it first) and answers with its outcome.
    pub(super) async fn first_attempt(self: &Arc<Self>, job_id: JobId) -> Result<(), DomainError> {
        let handler: Arc<dyn JobHandler> = self.clone();
        let report = match self.jobs.run_now(handler, job_id).await? {
            // The attempt runs in the job runner, not in this request: if the client goes away,
            // the delivery still completes (or is retried).
            Some(attempt) => attempt.await.unwrap_or(AttemptReport::Lost {
                reason: "the server is shutting down; the push will be retried".into(),
            }),
            // Shutting down: the job stays queued for another server or the next start.
            None if self.jobs.is_stopping() => AttemptReport::Lost {
                reason: "the server is shutting down; the push will be retried".into(),
            },
            None => self.first_attempt_elsewhere(job_id).await?,
        };
        match report {
            AttemptReport::Done => Ok(()),
            AttemptReport::Failed { message, .. } => Err(DomainError::PushFailed(message)),
            AttemptReport::Lost { reason } => Err(DomainError::PushFailed(reason)),
            // A delivery never waits; were one to, the push is not done yet.
            AttemptReport::Waiting { .. } => Err(DomainError::PushFailed(
                "the push is not done yet; it will be tried again".into(),
            )),
        }
    }

    /// Queues a push of a certificate (of any account) for the job workers, without waiting for
    /// it: the admin CLI's `push`, for operators who re-deliver from a script.
    pub async fn queue_push(
        &self,
        id: &CertificateId,
        service: PushService,
        region: Option<String>,
    ) -> Result<JobId, DomainError> {
        let cert = self
            .store
            .certificate(id)
            .await?
            .ok_or(DomainError::CertificateNotFound)?;
        self.enqueue_push(&cert, service, region).await
    }

    /// Checks that `cert` can be pushed to `service` in `region` and records the `deliver` job.
    pub(super) async fn enqueue_push(
        &self,
        cert: &CertificateRecord,
        service: PushService,
        region: Option<String>,
    ) -> Result<JobId, DomainError> {
        let targets: Vec<&PushTarget> = self
            .config
            .push_targets
            .iter()
            .filter(|t| t.matches(&cert.domain_id, service, region.as_deref()))
            .collect();
        self.enqueue_delivery(cert, service, region, &targets).await
    }

    /// Checks that `cert` can be pushed and records a `deliver` job to `targets` (refused when
    /// there is none).
    pub(super) async fn enqueue_delivery(
        &self,
        cert: &CertificateRecord,
        service: PushService,
        region: Option<String>,
        targets: &[&PushTarget],
    ) -> Result<JobId, DomainError> {
        let job = self.delivery_job(cert, service, region, targets)?;
        let job_id = self.store.enqueue(&job).await?;
        tracing::debug!(job = %job_id, cert = %cert.id, "push queued");
        Ok(job_id)
    }

    /// The `deliver` job of a push of `cert` to `targets` (refused when `cert` cannot be pushed,
    /// or there is no target).
    pub(crate) fn delivery_job(
        &self,
        cert: &CertificateRecord,
        service: PushService,
        region: Option<String>,
        targets: &[&PushTarget],
    ) -> Result<NewJob, DomainError> {
        ensure_pushable(cert)?;
        if targets.is_empty() {
            return Err(DomainError::NoPushTarget {
                service: service.as_str().into(),
                region: region.clone().unwrap_or_else(|| "global".into()),
            });
        }
        let job = DeliverJob {
            certificate_id: cert.id.to_string(),
            account: cert.domain_id.to_string(),
            service: service.as_str().into(),
            region: if service.is_global() { None } else { region },
            targets: targets.iter().map(|t| t.name.clone()).collect(),
        };
        let kind = JobKind::Deliver;
        let now = self.clock.now_ms();
        Ok(NewJob {
            kind: kind.as_str().into(),
            payload: serde_json::to_string(&job)
                .map_err(|e| DomainError::internal_from("job payload", e))?,
            dedupe_key: None,
            due_ms: now,
            max_attempts: kind.retry_policy().max_attempts,
            created_ms: now,
        })
    }

    /// Waits for the first attempt of a job another process claimed first.
    async fn first_attempt_elsewhere(&self, id: JobId) -> Result<AttemptReport, DomainError> {
        let deadline = tokio::time::Instant::now() + self.config.push_wait;
        loop {
            let job = self
                .store
                .job(id)
                .await?
                .ok_or_else(|| DomainError::internal("a queued push job vanished"))?;
            if let Some(report) = first_attempt_report(&job) {
                return Ok(report);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(AttemptReport::Lost {
                    reason:
                        "the push is still being delivered; its outcome will be in the push history"
                            .into(),
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The last 10 successful pushes, newest first.
    pub async fn push_history(
        &self,
        p: &Principal,
        id: &CertificateId,
    ) -> Result<Arc<Vec<PushRecord>>, DomainError> {
        let cert = self.certificate(p, id).await?;
        if let Some(h) = self.cache.history.get(&cert.id) {
            return Ok(h);
        }
        let seen = self.cache.certificates_generation();
        let h = Arc::new(self.store.push_history(&cert.id, 10, true).await?);
        self.cache.put_history(seen, cert.id.clone(), h.clone());
        Ok(h)
    }
}

/// Refuses a certificate whose status does not allow a push (or that holds no certificate yet).
pub(super) fn ensure_pushable(cert: &CertificateRecord) -> Result<(), DomainError> {
    if cert.status.is_deployable() && cert.issued.is_some() {
        Ok(())
    } else {
        Err(DomainError::WrongStatus(cert.status))
    }
}

/// How the first attempt of `job` ended, once it has.
fn first_attempt_report(job: &JobRecord) -> Option<AttemptReport> {
    let message = || job.last_error.clone().unwrap_or_default();
    match job.state {
        JobState::Done => Some(AttemptReport::Done),
        JobState::Failed => Some(AttemptReport::Failed {
            message: message(),
            retry_at_ms: None,
        }),
        JobState::Pending if job.attempts >= 1 => Some(AttemptReport::Failed {
            message: message(),
            retry_at_ms: Some(job.due_ms),
        }),
        JobState::Pending | JobState::Running => None,
    }
}
