//! [`Notices`]: which expiry reminders a certificate gets, and which were sent. A certificate's
//! reminders are on unless a row of `certificate_notices` turns one kind off; a reminder is sent
//! once per kind, expiry and threshold (`certificate_reminders`, written with the end of the
//! sweep job that queued it, see [`crate::JobEffect::RecordReminder`]).
//!
//! Each certificate carries the time the sweep must look at it next (`remind_at_ms`, migration
//! 0021): a new expiry sets it (by trigger) to a year before, the sweep moves it from threshold to
//! threshold ([`ReminderStep::next_ms`]), so [`Notices::due_reminders`] reads only what is due,
//! through an index on that time.

use async_trait::async_trait;
use scm_proto::{CertificateId, DomainId};

use crate::pool::db_run;
use crate::{Result, SqlStore};

/// The reminder sent when a certificate comes within a reminder threshold of its expiry.
pub const CERT_EXPIRING: &str = "CERT_EXPIRING";
/// The reminder sent when a certificate has expired; recording it also stores the certificate
/// as `EXPIRED` ([`crate::JobEffect::RecordReminder`]).
pub const CERT_EXPIRED: &str = "CERT_EXPIRED";

/// A reminder dealt with: sent, or not wanted (a reminder turned off is recorded all the same,
/// so that it is not looked at again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentReminder {
    /// [`CERT_EXPIRING`] or [`CERT_EXPIRED`].
    pub notice_type: String,
    /// The threshold, in days before the expiry (0 for [`CERT_EXPIRED`]).
    pub days_before: i64,
}

/// What one look of the sweep at one certificate leaves (the effect
/// [`crate::JobEffect::RecordReminder`]). Conditional on the expiry it looked at: if the
/// certificate's `not_after` moved meanwhile (renewed), the new expiry's schedule is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderStep {
    /// The certificate.
    pub cert_id: CertificateId,
    /// The expiry looked at.
    pub not_after_ms: i64,
    /// The reminder dealt with, if one fell due.
    pub sent: Option<SentReminder>,
    /// When (Unix ms).
    pub at_ms: i64,
    /// When the sweep must look at the certificate next; `None`: not before a new expiry.
    pub next_ms: Option<i64>,
}

/// Applies, in transaction `$tx`, a [`ReminderStep`] `$step`: records the reminder dealt with
/// (once per kind, expiry and threshold), for [`CERT_EXPIRED`] also stores the certificate's
/// status as `EXPIRED` if it still reads so at this expiry, and moves the certificate's next look
/// if its expiry is still the one looked at. Returns from the enclosing function on a database
/// error; evaluates to whether a certificate changed (the change counter must move).
macro_rules! record_reminder {
    ($tx:ident, $step:expr) => {{
        let step: &$crate::notices::ReminderStep = $step;
        let mut changed = false;
        if let Some(sent) = &step.sent {
            sqlx::query(
                "INSERT INTO certificate_reminders \
                 (cert_id, notice_type, not_after_ms, days_before, sent_ms) \
                 SELECT id, $2, $3, $4, $5 FROM certificates WHERE id = $1 ON CONFLICT DO NOTHING",
            )
            .bind(step.cert_id.as_str())
            .bind(sent.notice_type.as_str())
            .bind(step.not_after_ms)
            .bind(sent.days_before)
            .bind(step.at_ms)
            .execute(&mut *$tx)
            .await?;
            if sent.notice_type == $crate::notices::CERT_EXPIRED {
                // Conditional: only what still reads as expired at this expiry.
                let done = sqlx::query(
                    "UPDATE certificates SET status = 'EXPIRED', updated_ms = $1 \
                     WHERE id = $2 AND status IN ('ISSUED', 'UPLOAD') \
                     AND not_after_ms = $3 AND not_after_ms <= $1",
                )
                .bind(step.at_ms)
                .bind(step.cert_id.as_str())
                .bind(step.not_after_ms)
                .execute(&mut *$tx)
                .await?;
                changed = done.rows_affected() > 0;
            }
        }
        // The schedule is no cached read: it does not move the change counter.
        sqlx::query(
            "UPDATE certificates SET remind_at_ms = $1 WHERE id = $2 AND not_after_ms = $3",
        )
        .bind(step.next_ms)
        .bind(step.cert_id.as_str())
        .bind(step.not_after_ms)
        .execute(&mut *$tx)
        .await?;
        changed
    }};
}
pub(crate) use record_reminder;

/// A certificate the sweep must look at: its next look (`remind_at_ms`) has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueReminder {
    /// The certificate.
    pub cert_id: CertificateId,
    /// Its account.
    pub account: DomainId,
    /// Its name.
    pub name: String,
    /// Its domain.
    pub domain: Option<String>,
    /// Its status as stored (reminders go to `ISSUED`, `UPLOAD` and `EXPIRED` ones).
    pub status: String,
    /// Its expiry.
    pub not_after_ms: i64,
    /// The look that fell due.
    pub remind_at_ms: i64,
    /// Whether the account wants [`CERT_EXPIRING`] for this certificate.
    pub expiring_enabled: bool,
    /// Whether the account wants [`CERT_EXPIRED`] for this certificate.
    pub expired_enabled: bool,
    /// The smallest threshold (days before) of the [`CERT_EXPIRING`] reminders recorded for
    /// this expiry, if any.
    pub expiring_sent_days: Option<i64>,
    /// Whether [`CERT_EXPIRED`] is recorded for this expiry.
    pub expired_sent: bool,
}

crate::row::from_row!(DueReminder { cert_id [via String], account [via String], name, domain, status, not_after_ms, remind_at_ms, expiring_enabled, expired_enabled, expiring_sent_days, expired_sent });

/// Expiry reminder settings and the reminders sent.
#[async_trait]
pub trait Notices: Send + Sync {
    /// Turns each (certificate, reminder kind) of `entries` on or off, in one transaction. The certificates must be `account`'s: if one is not, nothing is written and
    /// the answer is `false`.
    async fn set_notices(
        &self,
        account: &DomainId,
        entries: &[(CertificateId, String)],
        enabled: bool,
        now_ms: i64,
    ) -> Result<bool>;
    /// The kinds a certificate has turned off.
    async fn disabled_notices(&self, cert: &CertificateId) -> Result<Vec<String>>;
    /// Up to `limit` certificates whose next look (`remind_at_ms`) has come at `now_ms`, soonest
    /// first, read through the index on that time.
    async fn due_reminders(&self, now_ms: i64, limit: u32) -> Result<Vec<DueReminder>>;
}

#[async_trait]
impl Notices for SqlStore {
    async fn set_notices(
        &self,
        account: &DomainId,
        entries: &[(CertificateId, String)],
        enabled: bool,
        now_ms: i64,
    ) -> Result<bool> {
        db_run!(&self.pool, |p| {
            let mut tx = p.begin().await?;
            // Each statement writes (SQLite takes the write lock with the first one: a read
            // first would have to upgrade, and fail as busy beside a concurrent writer); a
            // certificate that is not the account's inserts nothing.
            for (cert, kind) in entries {
                let done = sqlx::query(
                    "INSERT INTO certificate_notices (cert_id, notice_type, enabled, updated_ms) \
                     SELECT id, $3, $4, $5 FROM certificates WHERE id = $1 AND domain_id = $2 \
                     ON CONFLICT (cert_id, notice_type) \
                     DO UPDATE SET enabled = excluded.enabled, updated_ms = excluded.updated_ms",
                )
                .bind(cert.as_str())
                .bind(account.as_str())
                .bind(kind.as_str())
                .bind(enabled)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    async fn disabled_notices(&self, cert: &CertificateId) -> Result<Vec<String>> {
        Ok(db_run!(&self.pool, |p| {
            sqlx::query_scalar(
                "SELECT notice_type FROM certificate_notices WHERE cert_id = $1 AND NOT enabled \
                 ORDER BY notice_type",
            )
            .bind(cert.as_str())
            .fetch_all(p)
            .await?
        }))
    }

    async fn due_reminders(&self, now_ms: i64, limit: u32) -> Result<Vec<DueReminder>> {
        Ok(db_run!(&self.pool, |p| {
            sqlx::query_as(
                "SELECT c.id AS cert_id, c.domain_id AS account, c.name, c.domain, c.status, \
                 c.not_after_ms, c.remind_at_ms, \
                 NOT EXISTS (SELECT 1 FROM certificate_notices n WHERE n.cert_id = c.id \
                 AND n.notice_type = 'CERT_EXPIRING' AND NOT n.enabled) AS expiring_enabled, \
                 NOT EXISTS (SELECT 1 FROM certificate_notices n WHERE n.cert_id = c.id \
                 AND n.notice_type = 'CERT_EXPIRED' AND NOT n.enabled) AS expired_enabled, \
                 (SELECT MIN(r.days_before) FROM certificate_reminders r WHERE r.cert_id = c.id \
                 AND r.notice_type = 'CERT_EXPIRING' AND r.not_after_ms = c.not_after_ms) \
                 AS expiring_sent_days, \
                 EXISTS (SELECT 1 FROM certificate_reminders r WHERE r.cert_id = c.id \
                 AND r.notice_type = 'CERT_EXPIRED' AND r.not_after_ms = c.not_after_ms) \
                 AS expired_sent \
                 FROM certificates c \
                 WHERE c.remind_at_ms IS NOT NULL AND c.remind_at_ms <= $1 \
                 AND c.not_after_ms IS NOT NULL \
                 ORDER BY c.remind_at_ms, c.id LIMIT $2",
            )
            .bind(now_ms)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?
        }))
    }
}
