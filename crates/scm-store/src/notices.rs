//! [`Notices`]: which expiry reminders a certificate gets, and which were sent. A certificate's
//! reminders are on unless a row of `certificate_notices` turns one kind off; a reminder is sent
//! once per kind and expiry (`certificate_reminders`, written with the end of the sweep job that
//! queued it, see [`crate::JobEffect::RecordReminder`]).

use async_trait::async_trait;
use scm_proto::{CertificateId, DomainId};

use crate::pool::db_run;
use crate::{Result, SqlStore};

/// The reminder sent when a certificate comes within the reminder window of its expiry.
pub const CERT_EXPIRING: &str = "CERT_EXPIRING";
/// The reminder sent when a certificate has expired; recording it also stores the certificate
/// as `EXPIRED` ([`crate::JobEffect::RecordReminder`]).
pub const CERT_EXPIRED: &str = "CERT_EXPIRED";

/// Records, in transaction `$tx`, that the reminder of `$notice_type` for the expiry
/// `$not_after_ms` of certificate `$cert_id` was dealt with at `$sent_ms`; for [`CERT_EXPIRED`],
/// also stores the certificate's status as `EXPIRED` if it still reads so at this expiry (the
/// effect [`crate::JobEffect::RecordReminder`]). Returns from the enclosing function on a
/// database error; evaluates to whether a certificate changed (the change counter must move).
macro_rules! record_reminder {
    ($tx:ident, $cert_id:expr, $notice_type:expr, $not_after_ms:expr, $sent_ms:expr) => {{
        let cert_id: &scm_proto::CertificateId = $cert_id;
        let notice_type: &str = $notice_type;
        let not_after_ms: i64 = $not_after_ms;
        let sent_ms: i64 = $sent_ms;
        sqlx::query(
            "INSERT INTO certificate_reminders (cert_id, notice_type, not_after_ms, sent_ms) \
             SELECT id, $2, $3, $4 FROM certificates WHERE id = $1 ON CONFLICT DO NOTHING",
        )
        .bind(cert_id.as_str())
        .bind(notice_type)
        .bind(not_after_ms)
        .bind(sent_ms)
        .execute(&mut *$tx)
        .await?;
        if notice_type == $crate::notices::CERT_EXPIRED {
            // Conditional: only what still reads as expired at this expiry.
            let done = sqlx::query(
                "UPDATE certificates SET status = 'EXPIRED', updated_ms = $1 \
                 WHERE id = $2 AND status IN ('ISSUED', 'UPLOAD') \
                 AND not_after_ms = $3 AND not_after_ms <= $1",
            )
            .bind(sent_ms)
            .bind(cert_id.as_str())
            .bind(not_after_ms)
            .execute(&mut *$tx)
            .await?;
            done.rows_affected() > 0
        } else {
            false
        }
    }};
}
pub(crate) use record_reminder;

/// A reminder the sweep owes: a certificate in its reminder window whose reminder of this kind
/// for this expiry was not sent yet.
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
    /// Its expiry.
    pub not_after_ms: i64,
    /// `CERT_EXPIRING` (within the window) or `CERT_EXPIRED` (past `not_after`).
    pub notice_type: String,
    /// Whether the account wants this kind for this certificate (a reminder it does not want is
    /// still recorded, so that it is not looked at again).
    pub enabled: bool,
}

crate::row::from_row!(DueReminder { cert_id [via String], account [via String], name, domain, not_after_ms, notice_type, enabled });

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
    /// Up to `limit` reminders owed at `now_ms`: `CERT_EXPIRING` for certificates (issued,
    /// imported or expired) whose `not_after` is within `window_ms` after now, `CERT_EXPIRED`
    /// for those past it; soonest expiry first.
    async fn due_reminders(
        &self,
        now_ms: i64,
        window_ms: i64,
        limit: u32,
    ) -> Result<Vec<DueReminder>>;
}

/// One branch of the due query; `$1` now, `$2` window, the kind spliced in as fixed text.
macro_rules! due_branch {
    ($kind:literal, $window:literal) => {
        concat!(
            "SELECT c.id AS cert_id, c.domain_id AS account, c.name, c.domain, c.not_after_ms, '",
            $kind,
            "' AS notice_type, NOT EXISTS (SELECT 1 FROM certificate_notices n WHERE \
             n.cert_id = c.id AND n.notice_type = '",
            $kind,
            "' AND NOT n.enabled) AS enabled FROM certificates c WHERE \
             c.status IN ('ISSUED', 'UPLOAD', 'EXPIRED') AND c.not_after_ms IS NOT NULL AND ",
            $window,
            " AND NOT EXISTS (SELECT 1 FROM certificate_reminders r WHERE r.cert_id = c.id \
             AND r.notice_type = '",
            $kind,
            "' AND r.not_after_ms = c.not_after_ms)"
        )
    };
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

    async fn due_reminders(
        &self,
        now_ms: i64,
        window_ms: i64,
        limit: u32,
    ) -> Result<Vec<DueReminder>> {
        Ok(db_run!(&self.pool, |p| {
            sqlx::query_as(concat!(
                "SELECT * FROM (",
                due_branch!(
                    "CERT_EXPIRING",
                    "c.not_after_ms > $1 AND c.not_after_ms <= $1 + $2"
                ),
                " UNION ALL ",
                due_branch!("CERT_EXPIRED", "c.not_after_ms <= $1"),
                ") due ORDER BY not_after_ms, cert_id, notice_type LIMIT $3"
            ))
            .bind(now_ms)
            .bind(window_ms)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?
        }))
    }
}
