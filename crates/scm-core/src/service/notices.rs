//! Expiry reminders: `EnableNotification` / `DisableNotification` turn them on or off per
//! certificate and kind, and the `reminders` job sends them.
//!
//! Choices where the reference is silent (open question 7, written in docs/api-choices.md,
//! "Expiry reminders"):
//! - reminders are on for every certificate until turned off;
//! - `CERT_EXPIRING` is sent once at each threshold of [`ReminderSettings`] (`[notifications]
//!   expiring_days`, default 30, 14, 7, 3 and 1 days before `not_after`), `CERT_EXPIRED` once
//!   when it passes, per expiry (a renewed certificate is reminded of its new expiry only),
//!   through the account's notifiers (`[[notifiers]]`), as notification jobs;
//! - a sweep that finds several thresholds passed (the servers were down) sends only the latest
//!   one, and past `not_after` only `CERT_EXPIRED`: no burst of stale reminders;
//! - a certificate that is not `ISSUED`, `UPLOAD` or `EXPIRED` when a reminder falls due (revoked,
//!   being revoked) does not get it;
//! - a change of the thresholds applies from each certificate's next scheduled look (at the
//!   latest, its next expiry);
//! - a body is a list of 1 to [`MAX_ITEMS`] items; each names a certificate of the caller's
//!   (malformed: `SCM.0008`, unknown or another account's: `SCM.0020`) and the kinds to change
//!   (absent: both kinds); all items are applied in one transaction, or none.
//!
//! The `reminders` job is one recurring job (one per store, by its dedupe key). Each certificate
//! carries the time of its next look (set a year before a new expiry by the store, then moved
//! from threshold to threshold by the sweep), indexed, so the sweep reads only the certificates
//! whose look has come, however many the inventory holds. For each it queues the reminder due (if
//! any, and wanted), records it and moves the next look with its own end (so each is sent once, by
//! whichever server ran the sweep), stores `EXPIRED` for certificates past `not_after`, and queues
//! its next run.

use scm_proto::notices::NoticeBody;
use scm_proto::{CertificateId, CertificateStatus};
use scm_store::{DueReminder, JobEffect, NewJob, ReminderStep, SentReminder};

use super::Scm;
use crate::jobs::{Attempt, JobKind};
use crate::notify::{Event, Notification};
use crate::{DomainError, Principal};

/// Most items per call.
pub const MAX_ITEMS: usize = 100;
/// Reminders one sweep handles; more are left to the next run, queued at once.
const SWEEP_BATCH: u32 = 500;
/// Time between sweeps.
const SWEEP_EVERY_MS: i64 = 3_600_000;
/// The dedupe key of the one recurring sweep.
const SWEEP_KEY: &str = "reminders";
const DAY_MS: i64 = 86_400_000;

/// When `CERT_EXPIRING` is sent: at each threshold, a number of days before a version's
/// `not_after` (`[notifications] expiring_days`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderSettings {
    /// Distinct, 1..=[`Self::MAX_DAYS`], largest first.
    expiring_days: Vec<u32>,
}

impl ReminderSettings {
    /// The thresholds unless configured.
    pub const DEFAULT_EXPIRING_DAYS: [u32; 5] = [30, 14, 7, 3, 1];
    /// The largest threshold (the store first looks at an expiry this long before it).
    pub const MAX_DAYS: u32 = 365;

    /// Thresholds from the configuration: each 1..=[`Self::MAX_DAYS`], none twice (in any order;
    /// none at all: `CERT_EXPIRING` is never sent). `Err` says what is wrong.
    pub fn new(days: &[u64]) -> Result<Self, String> {
        let mut out: Vec<u32> = Vec::with_capacity(days.len());
        for d in days {
            let day = u32::try_from(*d)
                .ok()
                .filter(|d| (1..=Self::MAX_DAYS).contains(d))
                .ok_or_else(|| format!("{d} is out of range (1..={})", Self::MAX_DAYS))?;
            if out.contains(&day) {
                return Err(format!("{day} is given twice"));
            }
            out.push(day);
        }
        out.sort_unstable_by(|a, b| b.cmp(a));
        Ok(Self { expiring_days: out })
    }

    /// The thresholds, largest first.
    pub fn expiring_days(&self) -> &[u32] {
        &self.expiring_days
    }
}

impl Default for ReminderSettings {
    fn default() -> Self {
        Self {
            expiring_days: Self::DEFAULT_EXPIRING_DAYS.to_vec(),
        }
    }
}

/// What one look at a certificate leaves: the reminder due, if any (kind and threshold in days,
/// 0 for `CERT_EXPIRED`), and when to look next (`None`: not before a new expiry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Look {
    send: Option<(NoticeType, i64)>,
    next_ms: Option<i64>,
}

/// The look at an expiry `not_after` at `now`, with the thresholds `days` (largest first) and
/// what was recorded for this expiry: the smallest `CERT_EXPIRING` threshold told, and whether
/// `CERT_EXPIRED` was. Only the latest threshold passed is due, and only if no threshold as late
/// or later was told; the next look is the next threshold to come (always after `now`).
fn look(
    days: &[u32],
    not_after: i64,
    now: i64,
    expiring_told: Option<i64>,
    expired_told: bool,
) -> Look {
    if not_after <= now {
        return Look {
            send: (!expired_told).then_some((NoticeType::Expired, 0)),
            next_ms: None,
        };
    }
    let at = |d: u32| not_after.saturating_sub(i64::from(d).saturating_mul(DAY_MS));
    // The latest threshold passed: the smallest whose time has come.
    let passed = days.iter().copied().filter(|d| at(*d) <= now).min();
    let send = passed
        .map(i64::from)
        .filter(|d| expiring_told.is_none_or(|told| told > *d))
        .map(|d| (NoticeType::Expiring, d));
    // The next threshold to come: the largest whose time has not.
    let next = days
        .iter()
        .copied()
        .filter(|d| at(*d) > now)
        .max()
        .map_or(not_after, at);
    Look {
        send,
        next_ms: Some(next),
    }
}

/// Whether a certificate stored in `status` gets reminders.
fn reminded(status: &str) -> bool {
    [
        CertificateStatus::Issued,
        CertificateStatus::Upload,
        CertificateStatus::Expired,
    ]
    .iter()
    .any(|s| s.as_str() == status)
}

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

    /// One run of the sweep: queue the reminders due, record them, move each certificate's next
    /// look, and queue the next run.
    pub(super) async fn attempt_reminders(&self) -> Attempt {
        let now = self.clock.now_ms();
        let due = match self.store.due_reminders(now, SWEEP_BATCH).await {
            Ok(due) => due,
            Err(e) => return crate::jobs::store_unavailable("reminder sweep", &e),
        };
        let full = u32::try_from(due.len()).unwrap_or(u32::MAX) >= SWEEP_BATCH;
        let days = self.config.reminders.expiring_days();
        let mut effects = Vec::new();
        let mut queued = 0usize;
        for d in &due {
            let l = look(
                days,
                d.not_after_ms,
                now,
                d.expiring_sent_days,
                d.expired_sent,
            );
            let sent = match l.send {
                Some((kind, days_before)) if reminded(&d.status) => {
                    let wanted = match kind {
                        NoticeType::Expiring => d.expiring_enabled,
                        NoticeType::Expired => d.expired_enabled,
                    };
                    if wanted {
                        effects.extend(self.notify_jobs(&d.account, &reminder(d, kind, now), now));
                        queued += 1;
                    }
                    Some(SentReminder {
                        notice_type: kind.as_str().to_owned(),
                        days_before,
                    })
                }
                _ => None,
            };
            effects.push(JobEffect::RecordReminder(ReminderStep {
                cert_id: d.cert_id.clone(),
                not_after_ms: d.not_after_ms,
                sent,
                at_ms: now,
                next_ms: l.next_ms,
            }));
        }
        if queued > 0 {
            tracing::info!(reminders = queued, "expiry reminders queued");
        }
        // A full batch leaves more for a run right away; otherwise the next hour's.
        let next = if full { now } else { now + SWEEP_EVERY_MS };
        effects.push(JobEffect::Enqueue(sweep_job(next)));
        Attempt::Done { effects }
    }
}

fn sweep_job(due_ms: i64) -> NewJob {
    JobKind::Reminders.job("{}".into(), Some(SWEEP_KEY.into()), due_ms)
}

fn reminder(d: &DueReminder, kind: NoticeType, now: i64) -> Notification {
    let certificate_id = d.cert_id.to_string();
    let (name, domain, not_after_ms) = (d.name.clone(), d.domain.clone(), d.not_after_ms);
    Notification {
        account: d.account.to_string(),
        at_ms: now,
        event: match kind {
            NoticeType::Expired => Event::CertificateExpired {
                certificate_id,
                name,
                domain,
                not_after_ms,
            },
            NoticeType::Expiring => Event::CertificateExpiring {
                certificate_id,
                name,
                domain,
                not_after_ms,
            },
        },
    }
}

#[cfg(test)]
#[path = "notices_tests.rs"]
mod world_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: Option<&str>, kinds: Option<&[&str]>) -> NoticeBody {
        NoticeBody {
            resource_id: id.map(Into::into),
            notice_type: kinds.map(|k| k.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    const DAY: i64 = DAY_MS;

    fn send(kind: NoticeType, days: i64) -> Option<(NoticeType, i64)> {
        Some((kind, days))
    }

    #[test]
    fn thresholds_are_distinct_in_range_and_kept_largest_first() {
        let s = ReminderSettings::new(&[1, 30, 7]).unwrap();
        assert_eq!(s.expiring_days(), [30, 7, 1]);
        assert_eq!(
            ReminderSettings::default().expiring_days(),
            [30, 14, 7, 3, 1]
        );
        assert!(
            ReminderSettings::new(&[])
                .unwrap()
                .expiring_days()
                .is_empty()
        );
        assert_eq!(
            ReminderSettings::new(&[7, 0]).unwrap_err(),
            "0 is out of range (1..=365)"
        );
        assert_eq!(
            ReminderSettings::new(&[366]).unwrap_err(),
            "366 is out of range (1..=365)"
        );
        assert_eq!(
            ReminderSettings::new(&[u64::MAX]).unwrap_err(),
            format!("{} is out of range (1..=365)", u64::MAX)
        );
        assert_eq!(
            ReminderSettings::new(&[14, 7, 14]).unwrap_err(),
            "14 is given twice"
        );
    }

    #[test]
    fn a_look_sends_the_latest_threshold_passed_once_and_waits_for_the_next() {
        let days = ReminderSettings::default().expiring_days().to_vec();
        let end = 1_000 * DAY;
        // Before the first threshold: nothing; look again at it.
        assert_eq!(
            look(&days, end, end - 200 * DAY, None, false),
            Look {
                send: None,
                next_ms: Some(end - 30 * DAY)
            }
        );
        // At each threshold: that one, then the next.
        assert_eq!(
            look(&days, end, end - 30 * DAY, None, false),
            Look {
                send: send(NoticeType::Expiring, 30),
                next_ms: Some(end - 14 * DAY)
            }
        );
        assert_eq!(
            look(&days, end, end - 14 * DAY + 5, Some(30), false),
            Look {
                send: send(NoticeType::Expiring, 14),
                next_ms: Some(end - 7 * DAY)
            }
        );
        // Already told at this threshold (or a later one): nothing more, same next look.
        assert_eq!(
            look(&days, end, end - 14 * DAY + 5, Some(14), false),
            Look {
                send: None,
                next_ms: Some(end - 7 * DAY)
            }
        );
        assert_eq!(
            look(&days, end, end - 14 * DAY + 5, Some(7), false).send,
            None
        );
        // Down over several thresholds: only the latest one passed.
        assert_eq!(
            look(&days, end, end - 2 * DAY, Some(30), false),
            Look {
                send: send(NoticeType::Expiring, 3),
                next_ms: Some(end - DAY)
            }
        );
        // After the last threshold, the next look is the expiry itself.
        assert_eq!(
            look(&days, end, end - DAY, Some(3), false),
            Look {
                send: send(NoticeType::Expiring, 1),
                next_ms: Some(end)
            }
        );
        // Past the end: only CERT_EXPIRED, once, and no more looks.
        assert_eq!(
            look(&days, end, end, None, false),
            Look {
                send: send(NoticeType::Expired, 0),
                next_ms: None
            }
        );
        assert_eq!(
            look(&days, end, end + DAY, Some(1), true),
            Look {
                send: None,
                next_ms: None
            }
        );
        // No thresholds: only the expiry.
        assert_eq!(
            look(&[], end, end - 10 * DAY, None, false),
            Look {
                send: None,
                next_ms: Some(end)
            }
        );
        // Every next look is after now: the sweep never spins on one certificate.
        for now in (0..40).map(|d| end - d * DAY + 7) {
            if let Some(next) = look(&days, end, now, None, false).next_ms {
                assert!(next > now, "{now}: {next}");
            }
        }
    }

    #[test]
    fn reminders_go_to_issued_imported_and_expired_certificates() {
        assert!(reminded("ISSUED") && reminded("UPLOAD") && reminded("EXPIRED"));
        assert!(!reminded("REVOKED") && !reminded("REVOKING") && !reminded("PAID"));
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
