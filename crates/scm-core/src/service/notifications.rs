//! Notifications: an event worth telling becomes one `notify` job per notifier of the account,
//! queued in the same transaction as the outcome that caused it.

use scm_proto::{CertificateId, DomainId};
use scm_store::JobEffect;
use serde::{Deserialize, Serialize};

use crate::jobs::JobKind;
use crate::notify::{Event, Notification};

use super::Scm;
use crate::delivery::DeliverJob;

/// The input of a `notify` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NotifyJob {
    /// Name of the notifier to send through.
    pub notifier: String,
    /// What to send.
    pub notification: Notification,
}

impl Scm {
    /// The jobs that tell `account` that a push was given up.
    pub(crate) fn push_failed_notifications(
        &self,
        account: &DomainId,
        cert: &CertificateId,
        name: &str,
        d: &DeliverJob,
        error: &str,
        attempts: u32,
    ) -> Vec<JobEffect> {
        let now = self.clock.now_ms();
        let notification = Notification {
            account: account.to_string(),
            at_ms: now,
            event: Event::PushFailed {
                certificate_id: cert.to_string(),
                name: name.to_owned(),
                service: d.service.clone(),
                region: d.region.clone(),
                targets: d.target.iter().cloned().collect(),
                error: error.to_owned(),
                attempts,
            },
        };
        self.notify_jobs(account, &notification, now)
    }

    pub(crate) fn notify_jobs(
        &self,
        account: &DomainId,
        n: &Notification,
        now: i64,
    ) -> Vec<JobEffect> {
        let kind = JobKind::Notify;
        self.config
            .notifiers
            .iter()
            .filter(|t| &t.account == account)
            .filter_map(|t| {
                let payload = NotifyJob {
                    notifier: t.name.clone(),
                    notification: n.clone(),
                };
                match serde_json::to_string(&payload) {
                    Ok(payload) => Some(JobEffect::Enqueue(kind.job(payload, None, now))),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot encode a notification");
                        None
                    }
                }
            })
            .collect()
    }
}
