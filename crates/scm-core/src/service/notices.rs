//! Expiry reminders: `EnableNotification` / `DisableNotification` turn them on or off per
//! certificate and kind, and the `reminders` job sends them.
//!
//! Choices where the reference is silent (open question 7, written in README.md):
//! - reminders are on for every certificate until turned off;
//! - `CERT_EXPIRING` is sent once when a certificate comes within [`EXPIRING_WINDOW_DAYS`] days
//!   of its `not_after`, `CERT_EXPIRED` once when it passes it (again for a new expiry), through
//!   the account's notifiers (`[[notifiers]]`), as notification jobs;
//! - a body is a list of 1 to [`MAX_ITEMS`] items; each names a certificate of the caller's
//!   (malformed: `SCM.0008`, unknown or another account's: `SCM.0020`) and the kinds to change
//!   (absent: both kinds); all items are applied in one transaction, or none.
//!
//! The `reminders` job is one recurring job (one per store, by its dedupe key) that looks for
//! reminders due, queues them, records them with its own end (so each is sent once, by whichever
//! server ran the sweep), stores `EXPIRED` for certificates past `not_after`, and queues its next
//! run.

use scm_proto::CertificateId;
use scm_proto::notices::NoticeBody;
use scm_store::{DueReminder, JobEffect, NewJob};

use super::Scm;
use crate::jobs::{Attempt, JobKind};
use crate::notify::{Event, Notification};
use crate::{DomainError, Principal};

/// Days before `not_after` at which `CERT_EXPIRING` is sent.
pub const EXPIRING_WINDOW_DAYS: i64 = 30;
/// Most items per call.
pub const MAX_ITEMS: usize = 100;
/// Reminders one sweep handles; more are left to the next run, queued at once.
const SWEEP_BATCH: u32 = 500;
/// Time between sweeps.
const SWEEP_EVERY_MS: i64 = 3_600_000;
/// The dedupe key of the one recurring sweep.
const SWEEP_KEY: &str = "reminders";

/// A kind of expiry reminder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoticeType {
    /// The certificate is about to expire.
    Expiring,
    /// The certificate has expired.
    Expired,
}

impl NoticeType {
    /// Both kinds.
    pub const ALL: [Self; 2] = [Self::Expiring, Self::Expired];

    /// The wire and stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expiring => "CERT_EXPIRING",
            Self::Expired => "CERT_EXPIRED",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// Parses a body into (certificate, kind) pairs; refusals name their field.
fn parse(items: Option<&[NoticeBody]>) -> Result<Vec<(CertificateId, NoticeType)>, DomainError> {
    let items = items.unwrap_or_default();
    if items.is_empty() || items.len() > MAX_ITEMS {
        return Err(DomainError::invalid(
            "body",
            format!("must be a list of 1 to {MAX_ITEMS} items"),
        ));
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let raw = item
            .resource_id
            .as_deref()
            .ok_or_else(|| DomainError::invalid(format!("[{i}].resource_id"), "is required"))?;
        let id = CertificateId::try_from(raw).map_err(|_| DomainError::MalformedCertificateId)?;
        let kinds = match item.notice_type.as_deref() {
            None => NoticeType::ALL.to_vec(),
            Some([]) => {
                return Err(DomainError::invalid(
                    format!("[{i}].notice_type"),
                    "must name CERT_EXPIRING or CERT_EXPIRED",
                ));
            }
            Some(kinds) => {
                let mut seen = Vec::new();
                for (j, k) in kinds.iter().enumerate() {
                    let field = format!("[{i}].notice_type[{j}]");
                    let kind = NoticeType::parse(k).ok_or_else(|| {
                        DomainError::invalid(&field, "must be CERT_EXPIRING or CERT_EXPIRED")
                    })?;
                    if seen.contains(&kind) {
                        return Err(DomainError::invalid(field, "repeats a kind of this item"));
                    }
                    seen.push(kind);
                }
                seen
            }
        };
        out.extend(kinds.into_iter().map(|k| (id.clone(), k)));
    }
    Ok(out)
}

impl Scm {
    /// `EnableNotification` (`enabled`) / `DisableNotification`.
    pub async fn set_notices(
        &self,
        p: &Principal,
        items: Option<&[NoticeBody]>,
        enabled: bool,
    ) -> Result<(), DomainError> {
        let pairs = parse(items)?;
        let entries: Vec<(CertificateId, String)> = pairs
            .into_iter()
            .map(|(id, k)| (id, k.as_str().to_owned()))
            .collect();
        let done = self
            .store
            .set_notices(&p.account, &entries, enabled, self.clock.now_ms())
            .await?;
        if done {
            Ok(())
        } else {
            Err(DomainError::CertificateNotFound)
        }
    }

    /// The reminder kinds a certificate of the caller's has turned off.
    pub async fn disabled_notices(
        &self,
        p: &Principal,
        id: &CertificateId,
    ) -> Result<Vec<String>, DomainError> {
        let cert = self.certificate(p, id).await?;
        Ok(self.store.disabled_notices(&cert.id).await?)
    }

    /// Queues the recurring reminder sweep, due now, unless it is queued already.
    pub async fn schedule_reminders(&self) -> Result<(), DomainError> {
        self.store.enqueue(&sweep_job(self.clock.now_ms())).await?;
        Ok(())
    }

    /// One run of the sweep: queue the reminders due, record them, and queue the next run.
    pub(super) async fn attempt_reminders(&self) -> Attempt {
        let now = self.clock.now_ms();
        let due = match self
            .store
            .due_reminders(now, EXPIRING_WINDOW_DAYS * 86_400_000, SWEEP_BATCH)
            .await
        {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "reminder sweep: the store is unavailable");
                return Attempt::Failed {
                    message: "the store is unavailable".into(),
                    transient: true,
                    effects: Vec::new(),
                };
            }
        };
        let full = u32::try_from(due.len()).unwrap_or(u32::MAX) >= SWEEP_BATCH;
        let mut effects = Vec::new();
        for d in &due {
            if d.enabled {
                effects.extend(self.notify_jobs(&d.account, &reminder(d, now), now));
            }
            effects.push(JobEffect::RecordReminder {
                cert_id: d.cert_id.clone(),
                notice_type: d.notice_type.clone(),
                not_after_ms: d.not_after_ms,
                sent_ms: now,
            });
        }
        if !due.is_empty() {
            tracing::info!(reminders = due.len(), "expiry reminders queued");
        }
        // A full batch leaves more for a run right away; otherwise the next hour's.
        let next = if full { now } else { now + SWEEP_EVERY_MS };
        effects.push(JobEffect::Enqueue(sweep_job(next)));
        Attempt::Done { effects }
    }
}

fn sweep_job(due_ms: i64) -> NewJob {
    let kind = JobKind::Reminders;
    NewJob {
        kind: kind.as_str().into(),
        payload: "{}".into(),
        dedupe_key: Some(SWEEP_KEY.into()),
        due_ms,
        max_attempts: kind.retry_policy().max_attempts,
        created_ms: due_ms,
    }
}

fn reminder(d: &DueReminder, now: i64) -> Notification {
    let certificate_id = d.cert_id.to_string();
    let (name, domain, not_after_ms) = (d.name.clone(), d.domain.clone(), d.not_after_ms);
    Notification {
        account: d.account.to_string(),
        at_ms: now,
        event: if d.notice_type == NoticeType::Expired.as_str() {
            Event::CertificateExpired {
                certificate_id,
                name,
                domain,
                not_after_ms,
            }
        } else {
            Event::CertificateExpiring {
                certificate_id,
                name,
                domain,
                not_after_ms,
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: Option<&str>, kinds: Option<&[&str]>) -> NoticeBody {
        NoticeBody {
            resource_id: id.map(Into::into),
            notice_type: kinds.map(|k| k.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    #[test]
    fn bodies_parse_and_refusals_name_the_field() {
        let id = "scs1700000000001";
        let pairs = parse(Some(&[item(Some(id), None)])).unwrap();
        assert_eq!(pairs.len(), 2, "no kinds: both");
        let pairs = parse(Some(&[item(Some(id), Some(&["CERT_EXPIRED"]))])).unwrap();
        assert_eq!(pairs.first().map(|p| p.1), Some(NoticeType::Expired));

        let f = |items: Vec<NoticeBody>| crate::error::invalid_field(parse(Some(&items)));
        assert_eq!(crate::error::invalid_field(parse(None)), "body");
        assert_eq!(f(vec![]), "body");
        assert_eq!(f(vec![item(Some(id), None); 101]), "body");
        assert_eq!(f(vec![item(None, None)]), "[0].resource_id");
        assert_eq!(
            f(vec![item(Some(id), None), item(Some(id), Some(&[]))]),
            "[1].notice_type"
        );
        assert_eq!(
            f(vec![item(Some(id), Some(&["CERT_EXPIRED", "SOON"]))]),
            "[0].notice_type[1]"
        );
        assert_eq!(
            f(vec![item(
                Some(id),
                Some(&["CERT_EXPIRED", "CERT_EXPIRED"])
            )]),
            "[0].notice_type[1]"
        );
        assert!(matches!(
            parse(Some(&[item(Some("nope"), None)])),
            Err(DomainError::MalformedCertificateId)
        ));
    }
}
