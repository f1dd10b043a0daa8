//! The job kinds' work: [`Scm`] is the [`JobHandler`] of every [`JobKind`].

use async_trait::async_trait;
use scm_proto::{CertificateId, DomainId};
use scm_store::{JobEffect, JobRecord, PushOutcome, PushRecord};
use tokio_util::sync::CancellationToken;

use crate::deploy::{DeliveryErrorKind, PushTarget};
use crate::jobs::{Attempt, JobHandler, JobKind};
use crate::lifecycle::renewal::RenewJob;
use crate::lifecycle::validation::ValidateJob;
use crate::notify::Notification;

use super::Scm;
use super::notifications::NotifyJob;
use super::push::DeliverJob;
use super::revocation::CrlJob;

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
            None => permanent(format!("unknown job kind {:?}", job.kind)),
        }
    }
}

/// The entry of a push record's `detail` for a target that took the certificate; the entries
/// of a record are joined with `"; "`, and those of targets that failed start with `target`.
fn delivered_entry(name: &str) -> String {
    format!("{name}: ok")
}

/// Whether the attempt recorded with `detail` delivered to the target `name` (an attempt with
/// several targets can fail for some and deliver to others).
pub(crate) fn delivered_to(detail: &str, name: &str) -> bool {
    let entry = delivered_entry(name);
    detail.split("; ").any(|e| e == entry)
}

fn permanent(message: String) -> Attempt {
    Attempt::Failed {
        message,
        transient: false,
        effects: Vec::new(),
    }
}

impl Scm {
    /// One attempt of a push: deliver to every target of the request, record the attempt in the
    /// history (with the job's new state, in one transaction), and, when the push is given up,
    /// queue a notification in the same transaction.
    async fn attempt_delivery(&self, job: &JobRecord, d: &DeliverJob) -> Attempt {
        let (Ok(cert_id), Ok(account)) = (
            CertificateId::try_from(d.certificate_id.as_str()),
            DomainId::try_from(d.account.as_str()),
        ) else {
            return permanent("deliver job names a malformed certificate or account".into());
        };
        // The certificate as it is now (it may have changed since the push was asked for).
        let cert = match self.store.certificate(&cert_id).await {
            Ok(Some(c)) if c.domain_id == account => c.as_of(self.clock.now_ms()),
            Ok(_) => return permanent(format!("certificate {cert_id} no longer exists")),
            Err(e) => {
                return Attempt::Failed {
                    message: "the store is unavailable".into(),
                    transient: true,
                    effects: Vec::new(),
                }
                .logged(&e);
            }
        };
        let material = match &cert.issued {
            Some(issued) if cert.status.is_deployable() => match &issued.private_key_sealed {
                Some(sealed) => match self.open_key(
                    &cert.id,
                    cert.lifecycle.current_version.unwrap_or(1),
                    sealed,
                ) {
                    Ok(key_pem) => crate::deploy::material(
                        &cert.id,
                        cert.lifecycle.current_version.unwrap_or(1),
                        issued,
                        key_pem,
                        crate::deploy::DeliveryContext {
                            target: String::new(),
                            job_id: job.id.0,
                            attempt: job.attempts,
                        },
                    ),
                    Err(e) => {
                        tracing::error!(cert = %cert.id, error = %e, "cannot open a certificate key for a push");
                        Err("the certificate's private key cannot be opened".to_owned())
                    }
                },
                None => Err("OpenSCM does not hold the private key of this certificate (it was issued from your CSR)".to_owned()),
            },
            _ => Err(format!("the certificate is {} and cannot be pushed", cert.status)),
        };
        let mut failures: Vec<(String, DeliveryErrorKind)> = Vec::new();
        let mut details = Vec::new();
        for name in &d.targets {
            let target: Option<&PushTarget> =
                self.config.push_targets.iter().find(|t| &t.name == name);
            let outcome = match (&material, target) {
                (_, None) => Err((
                    format!("target {name}: no longer configured"),
                    DeliveryErrorKind::Misconfigured,
                )),
                (Err(why), Some(_)) => Err((
                    format!("target {name}: {why}"),
                    DeliveryErrorKind::Permanent,
                )),
                (Ok(m), Some(t)) => t
                    .deployer
                    .deliver(m)
                    .await
                    .map_err(|e| (format!("target {name}: {}", e.message), e.kind)),
            };
            match outcome {
                Ok(()) => details.push(delivered_entry(name)),
                Err((message, kind)) => {
                    details.push(message.clone());
                    failures.push((message, kind));
                }
            }
        }
        let record = PushRecord {
            cert_id: cert.id.clone(),
            domain_id: account.clone(),
            pushed_ms: self.clock.now_ms(),
            service: d.service.clone(),
            region: d.region.clone(),
            outcome: if failures.is_empty() {
                PushOutcome::Success
            } else {
                PushOutcome::Failure
            },
            detail: details.join("; "),
            targets: d.targets.join(";"),
        };
        self.cache.forget_certificate(&cert.domain_id, &cert.id);
        if failures.is_empty() {
            tracing::info!(cert = %cert.id, service = %d.service, targets = %record.targets, "certificate pushed");
            return Attempt::Done {
                effects: vec![JobEffect::RecordPush(record)],
            };
        }
        // Worth another attempt only if every failure may pass.
        let transient = failures.iter().all(|(_, k)| k.is_transient());
        let message = failures
            .into_iter()
            .map(|(m, _)| m)
            .collect::<Vec<_>>()
            .join("; ");
        let mut effects = vec![JobEffect::RecordPush(record)];
        if crate::jobs::is_last_attempt(job, transient) {
            effects.extend(self.push_failed_notifications(
                &account,
                &cert.id,
                &cert.name,
                d,
                &message,
                job.attempts,
            ));
        }
        Attempt::Failed {
            message,
            transient,
            effects,
        }
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

impl Attempt {
    /// Logs the internal cause of a failure whose message hides it.
    fn logged(self, cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "job attempt failed");
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detail_says_which_targets_took_the_certificate() {
        let detail = [
            delivered_entry("lb-a"),
            "target lb-b: reload failed: exit status 1".to_owned(),
            delivered_entry("lb-c"),
        ]
        .join("; ");
        assert!(delivered_to(&detail, "lb-a"));
        assert!(!delivered_to(&detail, "lb-b"));
        assert!(delivered_to(&detail, "lb-c"));
        assert!(!delivered_to(&detail, "lb"));
        assert!(!delivered_to("", "lb-a"));
    }
}
