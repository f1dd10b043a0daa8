//! The job kinds' work: [`Scm`] is the [`JobHandler`] of every [`JobKind`].

use async_trait::async_trait;
use scm_store::JobRecord;
use tokio_util::sync::CancellationToken;

use crate::issuers::ari::AriJob;
use crate::issuers::orders::OrderJob;
use crate::jobs::{Attempt, JobHandler, JobKind, give_up as permanent};
use crate::lifecycle::renewal::RenewJob;
use crate::lifecycle::validation::ValidateJob;
use crate::notify::Notification;

use super::Scm;
use super::notifications::NotifyJob;
use super::revocation::CrlJob;
use crate::delivery::DeliverJob;

#[async_trait]
impl JobHandler for Scm {
    // No kind stops early on a lost lease yet: each attempt is short, idempotent, and dropped
    // by the runner soon after the token fires.
    async fn attempt(&self, job: &JobRecord, _cancel: &CancellationToken) -> Attempt {
        match JobKind::parse(&job.kind) {
            Some(JobKind::Deliver) => match serde_json::from_str::<DeliverJob>(&job.payload) {
                Ok(d) => self.attempt_delivery(job, &d).await,
                Err(e) => permanent(format!("unreadable deliver job: {e}")),
            },
            Some(JobKind::Notify) => match serde_json::from_str::<NotifyJob>(&job.payload) {
                Ok(n) => self.attempt_notification(&n).await,
                Err(e) => permanent(format!("unreadable notify job: {e}")),
            },
            Some(JobKind::Reminders) => self.attempt_reminders().await,
            Some(JobKind::Crl) => match serde_json::from_str::<CrlJob>(&job.payload) {
                Ok(c) => self.attempt_crl(&c).await,
                Err(e) => permanent(format!("unreadable crl job: {e}")),
            },
            Some(JobKind::Validate) => match serde_json::from_str::<ValidateJob>(&job.payload) {
                Ok(v) => self.attempt_validation(job, &v).await,
                Err(e) => permanent(format!("unreadable validate job: {e}")),
            },
            Some(JobKind::Renew) => match serde_json::from_str::<RenewJob>(&job.payload) {
                Ok(r) => self.attempt_renewal(job, &r).await,
                Err(e) => permanent(format!("unreadable renew job: {e}")),
            },
            Some(JobKind::RenewalSweep) => self.attempt_renewal_sweep().await,
            Some(JobKind::DriftSweep) => self.attempt_drift_sweep().await,
            Some(JobKind::AcmeOrder) => match serde_json::from_str::<OrderJob>(&job.payload) {
                Ok(o) => self.attempt_order(job, &o).await,
                Err(e) => permanent(format!("unreadable acme-order job: {e}")),
            },
            Some(JobKind::AriCheck) => match serde_json::from_str::<AriJob>(&job.payload) {
                Ok(a) => self.attempt_ari(job, &a).await,
                Err(e) => permanent(format!("unreadable ari-check job: {e}")),
            },
            None => permanent(format!("unknown job kind {:?}", job.kind)),
        }
    }
}

impl Scm {
    /// Queues at once the jobs among `effects` (the account's notifications a handler makes
    /// while its job goes on waiting, so they cannot wait for the job's end).
    pub(crate) async fn enqueue_now(
        &self,
        effects: Vec<scm_store::JobEffect>,
    ) -> Result<(), crate::DomainError> {
        for effect in effects {
            if let scm_store::JobEffect::Enqueue(job) = effect {
                self.store.enqueue(&job).await?;
            }
        }
        Ok(())
    }

    /// Sends one notification through every notifier of its account.
    async fn attempt_notification(&self, n: &NotifyJob) -> Attempt {
        let Some(target) = self.config.notifiers.iter().find(|t| t.name == n.notifier) else {
            return permanent(format!("notifier {}: no longer configured", n.notifier));
        };
        let note: &Notification = &n.notification;
        match target.notifier.notify(note).await {
            Ok(()) => {
                tracing::info!(notifier = %target.name, event = note.event.name(), "notification sent");
                Attempt::Done {
                    effects: Vec::new(),
                }
            }
            Err(e) => Attempt::Failed {
                message: format!("notifier {}: {}", target.name, e.message),
                transient: e.kind.is_transient(),
                effects: Vec::new(),
            },
        }
    }
}
