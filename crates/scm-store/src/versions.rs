//! [`Versions`]: a certificate's versions (each issuance under its stable id), its history of
//! state changes, the pending domain validation, and the renewal schedule.
//!
//! New versions are written by the group-commit writer ([`crate::Certificates::add_version`]);
//! this file reads them, and holds the conditional transitions around validation and renewal.

use async_trait::async_trait;
use scm_proto::{CertificateId, CertificateStatus};

use crate::dialect;
use crate::jobs::insert_job;
use crate::pool::{BUMP_CERTIFICATES, corrupt, db_run};
use crate::records::{
    ApplicationRecord, EventRecord, IssuedRecord, NewEvent, NewJob, VersionRecord,
};
use crate::{Result, SqlStore};

/// Inserts history entry `$ev` ([`NewEvent`]) of certificate `$id` at `$at` with executor `$e`;
/// evaluates to `Result<(), sqlx::Error>`.
macro_rules! insert_event {
    ($e:expr, $id:expr, $at:expr, $ev:expr) => {{
        let (id, at, ev): (&scm_proto::CertificateId, i64, &$crate::records::NewEvent) =
            ($id, $at, $ev);
        sqlx::query(
            "INSERT INTO certificate_events (cert_id, at_ms, event, detail, actor) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id.as_str())
        .bind(at)
        .bind(ev.event.as_str())
        .bind(ev.detail.chars().take(2000).collect::<String>())
        .bind(ev.actor.as_str())
        .execute($e)
        .await
        .map(|_| ())
    }};
}
pub(crate) use insert_event;

/// A renewal the sweep queued: the certificate and the version it renews.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRenewal {
    /// The certificate.
    pub cert_id: CertificateId,
    /// Its current version when the renewal was queued.
    pub seq: u32,
}

/// How a pending validation ends ([`Versions::end_validation`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndValidation {
    /// The status it must still have.
    pub expect: CertificateStatus,
    /// The status it gets.
    pub to: CertificateStatus,
    /// The dedupe key of the validation job to stop if it is still pending.
    pub job_key: String,
    /// The history entry.
    pub event: NewEvent,
    /// When.
    pub now_ms: i64,
}

struct VersionRow {
    seq: i64,
    reason: String,
    certificate_pem: String,
    chain_pem: String,
    private_key_sealed: Option<Vec<u8>>,
    serial_hex: String,
    fingerprint: String,
    signature_algorithm: String,
    issued_ms: i64,
    not_before_ms: i64,
    not_after_ms: i64,
    ca_id: Option<String>,
    renew_at_ms: Option<i64>,
}

crate::row::from_row!(VersionRow {
    seq,
    reason,
    certificate_pem,
    chain_pem,
    private_key_sealed,
    serial_hex,
    fingerprint,
    signature_algorithm,
    issued_ms,
    not_before_ms,
    not_after_ms,
    ca_id,
    renew_at_ms
});

impl TryFrom<VersionRow> for VersionRecord {
    type Error = crate::StoreError;
    fn try_from(r: VersionRow) -> Result<Self> {
        Ok(Self {
            seq: u32::try_from(r.seq).map_err(|_| corrupt("certificate_versions.seq"))?,
            reason: r.reason,
            issued: IssuedRecord {
                certificate_pem: r.certificate_pem,
                chain_pem: r.chain_pem,
                private_key_sealed: r.private_key_sealed,
                serial_hex: r.serial_hex,
                fingerprint: r.fingerprint,
                signature_algorithm: r.signature_algorithm,
                issued_ms: r.issued_ms,
                not_before_ms: r.not_before_ms,
                not_after_ms: r.not_after_ms,
                ca_id: r.ca_id,
            },
            renew_at_ms: r.renew_at_ms,
        })
    }
}

struct EventRow {
    at_ms: i64,
    event: String,
    detail: String,
    actor: String,
}

crate::row::from_row!(EventRow {
    at_ms,
    event,
    detail,
    actor
});

struct DueRow {
    id: String,
    current_version: i64,
}

crate::row::from_row!(DueRow {
    id,
    current_version
});

macro_rules! version_cols {
    () => {
        "seq, reason, certificate_pem, chain_pem, private_key_sealed, serial_hex, fingerprint, \
         signature_algorithm, issued_ms, not_before_ms, not_after_ms, ca_id, renew_at_ms"
    };
}

/// Versions, history, validation and renewal state of certificates.
#[async_trait]
pub trait Versions: Send + Sync {
    /// Every version of a certificate, newest first.
    async fn versions(&self, id: &CertificateId) -> Result<Vec<VersionRecord>>;
    /// One version of a certificate.
    async fn version(&self, id: &CertificateId, seq: u32) -> Result<Option<VersionRecord>>;
    /// The newest `limit` history entries of a certificate, oldest first.
    async fn events(&self, id: &CertificateId, limit: u32) -> Result<Vec<EventRecord>>;
    /// Records a history entry.
    async fn record_event(&self, id: &CertificateId, now_ms: i64, event: &NewEvent) -> Result<()>;
    /// Starts a domain validation: moves the certificate from `expect` to `to` (for a renewal
    /// both are `ISSUED`), stores `application` when given, sets the validation's start (kept
    /// when one is already pending), records `event` and queues `job`, in one transaction.
    /// `false` (nothing written) when the status is no longer `expect`.
    #[allow(clippy::too_many_arguments)]
    async fn start_validation(
        &self,
        id: &CertificateId,
        expect: CertificateStatus,
        to: CertificateStatus,
        application: Option<&ApplicationRecord>,
        event: &NewEvent,
        job: Option<&NewJob>,
        now_ms: i64,
    ) -> Result<bool>;
    /// Ends a pending validation without issuance (withdrawn, or failed at its deadline): the
    /// status moves from `expect` to `to`, the start is cleared, the validation job is stopped if
    /// it has not started, and the history entry is recorded. `false` when the status moved.
    async fn end_validation(&self, id: &CertificateId, end: &EndValidation) -> Result<bool>;
    /// Moves a certificate from `expect` to `to` (e.g. `CHECKING_DOMAIN` → `ISSUING`) with a
    /// history entry; `false` when the status moved.
    async fn transition(
        &self,
        id: &CertificateId,
        expect: CertificateStatus,
        to: CertificateStatus,
        event: &NewEvent,
        now_ms: i64,
    ) -> Result<bool>;
    /// The renewal sweep: finds up to `limit` certificates whose renewal is due at `now_ms`
    /// (through the index on `renew_at_ms`), moves each one's renewal time to `next_check_ms`
    /// (when it is looked at again should this renewal not happen), and queues one job per
    /// certificate and version from `job` (its payload and dedupe key are made by `make`), in
    /// one transaction. Returns what it queued.
    async fn queue_due_renewals(
        &self,
        now_ms: i64,
        limit: u32,
        next_check_ms: i64,
        make: &(dyn for<'c> Fn(&'c CertificateId, u32) -> NewJob + Send + Sync),
    ) -> Result<Vec<QueuedRenewal>>;
    /// Moves the renewal time of a certificate whose current version is `seq` (a renewal that
    /// failed is looked at again then). `false` when the version moved on.
    async fn postpone_renewal(&self, id: &CertificateId, seq: u32, at_ms: i64) -> Result<bool>;
    /// Turns a certificate's auto-renew switch on or off (on: its current version's renewal
    /// time is restored), with a history entry. `false` when there is no such certificate.
    async fn set_auto_renew(
        &self,
        id: &CertificateId,
        on: bool,
        event: &NewEvent,
        now_ms: i64,
    ) -> Result<bool>;
    /// Certificates whose renewal is due at `now_ms` and not yet queued (for metrics).
    async fn renewals_due(&self, now_ms: i64) -> Result<u64>;
}

#[async_trait]
impl Versions for SqlStore {
    async fn versions(&self, id: &CertificateId) -> Result<Vec<VersionRecord>> {
        let rows: Vec<VersionRow> = db_run!(&self.pool, |p| {
            sqlx::query_as(concat!(
                "SELECT ",
                version_cols!(),
                " FROM certificate_versions WHERE cert_id = $1 ORDER BY seq DESC"
            ))
            .bind(id.as_str())
            .fetch_all(p)
            .await?
        });
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn version(&self, id: &CertificateId, seq: u32) -> Result<Option<VersionRecord>> {
        let row: Option<VersionRow> = db_run!(&self.pool, |p| {
            sqlx::query_as(concat!(
                "SELECT ",
                version_cols!(),
                " FROM certificate_versions WHERE cert_id = $1 AND seq = $2"
            ))
            .bind(id.as_str())
            .bind(i64::from(seq))
            .fetch_optional(p)
            .await?
        });
        row.map(TryInto::try_into).transpose()
    }

    async fn events(&self, id: &CertificateId, limit: u32) -> Result<Vec<EventRecord>> {
        let rows: Vec<EventRow> = db_run!(&self.pool, |p| {
            sqlx::query_as(
                "SELECT at_ms, event, detail, actor FROM certificate_events WHERE cert_id = $1 \
                 ORDER BY id DESC LIMIT $2",
            )
            .bind(id.as_str())
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .rev()
            .map(|r| EventRecord {
                at_ms: r.at_ms,
                event: r.event,
                detail: r.detail,
                actor: r.actor,
            })
            .collect())
    }

    async fn record_event(&self, id: &CertificateId, now_ms: i64, event: &NewEvent) -> Result<()> {
        db_run!(&self.pool, |p| {
            insert_event!(p, id, now_ms, event)?;
            Ok(())
        })
    }

    async fn start_validation(
        &self,
        id: &CertificateId,
        expect: CertificateStatus,
        to: CertificateStatus,
        application: Option<&ApplicationRecord>,
        event: &NewEvent,
        job: Option<&NewJob>,
        now_ms: i64,
    ) -> Result<bool> {
        db_run!(&self.pool, |p| {
            let mut tx = p.begin().await?;
            let done = sqlx::query(
                "UPDATE certificates SET status = $1, updated_ms = $2, \
                 validation_started_ms = COALESCE(validation_started_ms, $2) \
                 WHERE id = $3 AND status = $4",
            )
            .bind(to.as_str())
            .bind(now_ms)
            .bind(id.as_str())
            .bind(expect.as_str())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            if let Some(app) = application {
                sqlx::query(
                    "UPDATE certificates SET domain = $1, sans = $2, application = $3, \
                     csr_pem = $4, validation_method = $5, key_algorithm = $6 WHERE id = $7",
                )
                .bind(app.domain.as_str())
                .bind(app.sans.as_str())
                .bind(app.form_json.as_str())
                .bind(app.csr_pem.as_deref())
                .bind(app.validation_method.as_deref())
                .bind(app.key_algorithm.as_deref())
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
            }
            insert_event!(&mut *tx, id, now_ms, event)?;
            if let Some(job) = job {
                let _: Option<i64> = insert_job!(&mut *tx, job)?;
                if let Some(notify) = dialect::of(p).notify_enqueued {
                    sqlx::query(notify).execute(&mut *tx).await?;
                }
            }
            sqlx::query(BUMP_CERTIFICATES).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    async fn end_validation(&self, id: &CertificateId, end: &EndValidation) -> Result<bool> {
        db_run!(&self.pool, |p| {
            let mut tx = p.begin().await?;
            let done = sqlx::query(
                "UPDATE certificates SET status = $1, updated_ms = $2, validation_started_ms = NULL \
                 WHERE id = $3 AND status = $4",
            )
            .bind(end.to.as_str())
            .bind(end.now_ms)
            .bind(id.as_str())
            .bind(end.expect.as_str())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            // A job already running finds the status moved and stops by itself.
            sqlx::query(
                "UPDATE jobs SET state = 'failed', last_error = 'cancelled: the validation ended', \
                 finished_ms = $1, updated_ms = $1 WHERE dedupe_key = $2 AND state = 'pending'",
            )
            .bind(end.now_ms)
            .bind(end.job_key.as_str())
            .execute(&mut *tx)
            .await?;
            insert_event!(&mut *tx, id, end.now_ms, &end.event)?;
            sqlx::query(BUMP_CERTIFICATES).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    async fn transition(
        &self,
        id: &CertificateId,
        expect: CertificateStatus,
        to: CertificateStatus,
        event: &NewEvent,
        now_ms: i64,
    ) -> Result<bool> {
        db_run!(&self.pool, |p| {
            let mut tx = p.begin().await?;
            let done = sqlx::query(
                "UPDATE certificates SET status = $1, updated_ms = $2 WHERE id = $3 AND status = $4",
            )
            .bind(to.as_str())
            .bind(now_ms)
            .bind(id.as_str())
            .bind(expect.as_str())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            insert_event!(&mut *tx, id, now_ms, event)?;
            sqlx::query(BUMP_CERTIFICATES).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    async fn queue_due_renewals(
        &self,
        now_ms: i64,
        limit: u32,
        next_check_ms: i64,
        make: &(dyn for<'c> Fn(&'c CertificateId, u32) -> NewJob + Send + Sync),
    ) -> Result<Vec<QueuedRenewal>> {
        db_run!(&self.pool, |p| {
            let mut tx = p.begin().await?;
            // The partial index on renew_at_ms holds only certificates to renew; the status
            // filter drops the few that a revocation or an import left behind. The outer
            // condition is checked again on the row as it is when locked (PostgreSQL), so two
            // servers sweeping at once do not both take a certificate.
            let rows: Vec<DueRow> = sqlx::query_as(
                "UPDATE certificates SET renew_at_ms = $1 WHERE id IN ( \
                 SELECT id FROM certificates WHERE renew_at_ms <= $2 \
                 AND status IN ('ISSUED', 'EXPIRED') AND current_version IS NOT NULL \
                 ORDER BY renew_at_ms LIMIT $3) AND renew_at_ms <= $2 \
                 RETURNING id, current_version",
            )
            .bind(next_check_ms)
            .bind(now_ms)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
            let mut queued = Vec::with_capacity(rows.len());
            for row in rows {
                let seq = u32::try_from(row.current_version)
                    .map_err(|_| corrupt("certificates.current_version"))?;
                let cert_id =
                    CertificateId::try_from(row.id).map_err(|_| corrupt("certificates.id"))?;
                let job = make(&cert_id, seq);
                let _: Option<i64> = insert_job!(&mut *tx, &job)?;
                queued.push(QueuedRenewal { cert_id, seq });
            }
            if !queued.is_empty() {
                if let Some(notify) = dialect::of(p).notify_enqueued {
                    sqlx::query(notify).execute(&mut *tx).await?;
                }
                // Their renew_at moved (shown with the cached certificate).
                sqlx::query(BUMP_CERTIFICATES).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(queued)
        })
    }

    async fn postpone_renewal(&self, id: &CertificateId, seq: u32, at_ms: i64) -> Result<bool> {
        db_run!(&self.pool, |p| {
            let mut tx = p.begin().await?;
            let done = sqlx::query(
                "UPDATE certificates SET renew_at_ms = $1 WHERE id = $2 AND current_version = $3 \
                 AND renew_at_ms IS NOT NULL",
            )
            .bind(at_ms)
            .bind(id.as_str())
            .bind(i64::from(seq))
            .execute(&mut *tx)
            .await?;
            let postponed = done.rows_affected() == 1;
            if postponed {
                sqlx::query(BUMP_CERTIFICATES).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(postponed)
        })
    }

    async fn set_auto_renew(
        &self,
        id: &CertificateId,
        on: bool,
        event: &NewEvent,
        now_ms: i64,
    ) -> Result<bool> {
        db_run!(&self.pool, |p| {
            let mut tx = p.begin().await?;
            let done = sqlx::query(
                "UPDATE certificates SET auto_renew = $1, updated_ms = $2, renew_at_ms = CASE \
                 WHEN $1 AND issuer IS NULL AND status IN ('ISSUED', 'EXPIRED') THEN \
                 (SELECT v.renew_at_ms FROM certificate_versions v \
                  WHERE v.cert_id = certificates.id AND v.seq = certificates.current_version) \
                 END WHERE id = $3",
            )
            .bind(on)
            .bind(now_ms)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            insert_event!(&mut *tx, id, now_ms, event)?;
            sqlx::query(BUMP_CERTIFICATES).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    async fn renewals_due(&self, now_ms: i64) -> Result<u64> {
        let n: i64 = db_run!(&self.pool, |p| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM certificates WHERE renew_at_ms <= $1 \
                 AND status IN ('ISSUED', 'EXPIRED')",
            )
            .bind(now_ms)
            .fetch_one(p)
            .await?
        });
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use scm_proto::{CertificateId, CertificateStatus};

    use crate::records::{NewEvent, NewJob, NewVersion, VersionExpect};
    use crate::tests::{TestDb, account, application, issued, order, with_postgres, with_sqlite};
    use crate::{Accounts, Certificates, Jobs, Meta, Versions};

    #[tokio::test]
    async fn versions_renewals_and_validation_sqlite() {
        with_sqlite(versions_renewals_and_validation).await;
    }

    #[tokio::test]
    async fn versions_renewals_and_validation_postgres() {
        with_postgres(versions_renewals_and_validation).await;
    }

    fn event(what: &str) -> NewEvent {
        NewEvent {
            event: what.into(),
            detail: "d".into(),
            actor: "test".into(),
        }
    }

    fn version(
        id: &CertificateId,
        expect: VersionExpect,
        serial: &str,
        renew_at: i64,
    ) -> NewVersion {
        let mut material = issued(10_000);
        material.serial_hex = serial.into();
        NewVersion {
            id: id.clone(),
            expect,
            application: matches!(expect, VersionExpect::Status(_))
                .then(|| application("www.v.test")),
            issued: material,
            reason: "test".into(),
            renew_at_ms: Some(renew_at),
            event: event("issued"),
            now_ms: 500,
        }
    }

    fn renew_job(id: &CertificateId, seq: u32) -> NewJob {
        NewJob {
            kind: "renew".into(),
            payload: format!("{{\"cert\":\"{id}\",\"seq\":{seq}}}"),
            dedupe_key: Some(format!("renew:{id}:{seq}")),
            due_ms: 0,
            max_attempts: 3,
            created_ms: 0,
        }
    }

    async fn versions_renewals_and_validation(db: TestDb) {
        let store = db.store().await;
        let (a, p) = account(1);
        store.create_account(&a, &p).await.unwrap();
        let ids = order(&store, &a, &p, 3, 1_700_000_000_000).await;
        let (x, y, z) = (&ids[0], &ids[1], &ids[2]);

        // The first issuance: only from the expected status, version 1.
        assert!(
            !store
                .add_version(version(
                    x,
                    VersionExpect::Status(CertificateStatus::Issuing),
                    "01",
                    7_000
                ))
                .await
                .unwrap()
        );
        assert!(
            store
                .add_version(version(
                    x,
                    VersionExpect::Status(CertificateStatus::Paid),
                    "01",
                    7_000
                ))
                .await
                .unwrap()
        );
        assert!(
            store
                .add_version(version(
                    y,
                    VersionExpect::Status(CertificateStatus::Paid),
                    "11",
                    9_000
                ))
                .await
                .unwrap()
        );
        let c = store.certificate(x).await.unwrap().unwrap();
        assert_eq!(c.status, CertificateStatus::Issued);
        assert_eq!(c.lifecycle.current_version, Some(1));
        assert_eq!(c.lifecycle.renew_at_ms, Some(7_000));

        // Two renewals of version 1: one version 2.
        assert!(
            store
                .add_version(version(x, VersionExpect::Current(1), "02", 17_000))
                .await
                .unwrap()
        );
        assert!(
            !store
                .add_version(version(x, VersionExpect::Current(1), "03", 17_000))
                .await
                .unwrap()
        );
        let vs = store.versions(x).await.unwrap();
        assert_eq!(
            vs.iter()
                .map(|v| (v.seq, v.issued.serial_hex.as_str()))
                .collect::<Vec<_>>(),
            [(2, "02"), (1, "01")]
        );
        assert_eq!(
            store
                .version(x, 1)
                .await
                .unwrap()
                .unwrap()
                .issued
                .serial_hex,
            "01"
        );
        let c = store.certificate(x).await.unwrap().unwrap();
        assert_eq!(
            (
                c.lifecycle.current_version,
                c.issued.unwrap().serial_hex.as_str()
            ),
            (Some(2), "02")
        );

        // The sweep takes only what is due, once, and moves it on.
        let make = |id: &CertificateId, seq: u32| renew_job(id, seq);
        let before = store.revisions().await.unwrap();
        let q = store
            .queue_due_renewals(10_000, 100, 50_000, &make)
            .await
            .unwrap();
        assert_eq!(
            q.iter()
                .map(|r| (r.cert_id.clone(), r.seq))
                .collect::<Vec<_>>(),
            [(y.clone(), 1)]
        );
        assert!(
            store
                .queue_due_renewals(10_000, 100, 50_000, &make)
                .await
                .unwrap()
                .is_empty(),
            "moved on"
        );
        // Their renewal time is shown with the cached certificate: one move for the sweep that
        // queued, none for the one that found nothing.
        let after = store.revisions().await.unwrap();
        assert_eq!(
            (after.access, after.certificates),
            (before.access, before.certificates + 1)
        );
        assert_eq!(store.renewals_due(10_000).await.unwrap(), 0);
        let jobs = store.jobs(None, 100).await.unwrap();
        assert_eq!(jobs.iter().filter(|j| j.kind == "renew").count(), 1);
        // A version that moved on is not postponed.
        assert!(!store.postpone_renewal(y, 2, 1).await.unwrap());
        assert_eq!(store.revisions().await.unwrap(), after, "nothing postponed");
        assert!(store.postpone_renewal(y, 1, 1).await.unwrap());
        assert_eq!(
            store.revisions().await.unwrap().certificates,
            after.certificates + 1
        );
        assert_eq!(store.renewals_due(10_000).await.unwrap(), 1);

        // Auto-renew off takes it out of the sweep; on restores its version's time.
        assert!(
            store
                .set_auto_renew(x, false, &event("auto_renew"), 600)
                .await
                .unwrap()
        );
        assert_eq!(
            store
                .certificate(x)
                .await
                .unwrap()
                .unwrap()
                .lifecycle
                .renew_at_ms,
            None
        );
        assert!(
            store
                .set_auto_renew(x, true, &event("auto_renew"), 601)
                .await
                .unwrap()
        );
        assert_eq!(
            store
                .certificate(x)
                .await
                .unwrap()
                .unwrap()
                .lifecycle
                .renew_at_ms,
            Some(17_000)
        );

        // A validation: started once (the start is kept), ended with its pending job stopped.
        let check = NewJob {
            kind: "validate".into(),
            payload: "{}".into(),
            dedupe_key: Some(format!("validate:{z}")),
            due_ms: 0,
            max_attempts: 3,
            created_ms: 0,
        };
        assert!(
            store
                .start_validation(
                    z,
                    CertificateStatus::Paid,
                    CertificateStatus::CheckingDomain,
                    Some(&application("www.z.test")),
                    &event("applied"),
                    Some(&check),
                    700
                )
                .await
                .unwrap()
        );
        assert!(
            !store
                .start_validation(
                    z,
                    CertificateStatus::Paid,
                    CertificateStatus::CheckingDomain,
                    None,
                    &event("applied"),
                    None,
                    701
                )
                .await
                .unwrap(),
            "not PAID any more"
        );
        let c = store.certificate(z).await.unwrap().unwrap();
        assert_eq!(
            (c.status, c.lifecycle.validation_started_ms),
            (CertificateStatus::CheckingDomain, Some(700))
        );
        assert_eq!(c.application.unwrap().domain, "www.z.test");
        let end = crate::EndValidation {
            expect: CertificateStatus::CheckingDomain,
            to: CertificateStatus::Paid,
            job_key: format!("validate:{z}"),
            event: event("cancelled"),
            now_ms: 800,
        };
        assert!(store.end_validation(z, &end).await.unwrap());
        assert!(
            !store.end_validation(z, &end).await.unwrap(),
            "already ended"
        );
        let c = store.certificate(z).await.unwrap().unwrap();
        assert_eq!(
            (c.status, c.lifecycle.validation_started_ms),
            (CertificateStatus::Paid, None)
        );
        let stopped = store.jobs(None, 100).await.unwrap();
        let v = stopped.iter().find(|j| j.kind == "validate").unwrap();
        assert_eq!(v.state, crate::JobState::Failed);
        let events: Vec<String> = store
            .events(z, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event)
            .collect();
        assert_eq!(events, ["applied", "cancelled"]);
    }
}
