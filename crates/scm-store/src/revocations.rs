//! [`Revocations`]: revoked certificates, the serials each issuing CA has revoked, and each CA's
//! current CRL with its number.
//!
//! Everything is keyed by the CA's id (the hex of its key identifier), so each CA (one built-in
//! CA today, one per account later) signs and serves its own CRL. The CRL bytes and number live
//! here, not in a server's memory: every server on one database serves the same CRL, and the
//! number only grows whichever server signs.

use async_trait::async_trait;
use scm_proto::{CertificateId, DomainId};

use crate::jobs::insert_job;
use crate::pool::{BUMP_CERTIFICATES, db_run};
use crate::records::NewJob;
use crate::{Result, SqlStore, dialect};

/// A revocation to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRevocation {
    /// The issuing CA's id.
    pub ca_id: String,
    /// The certificate.
    pub cert_id: CertificateId,
    /// Its account (the revocation is conditional on it).
    pub account: DomainId,
    /// Its serial, hex (the revocation is conditional on it: the certificate revoked is the one
    /// that was read).
    pub serial_hex: String,
    /// Why (free text, as given).
    pub reason: String,
    /// When.
    pub revoked_ms: i64,
    /// The certificate's expiry: its serial leaves the CRL after it.
    pub not_after_ms: i64,
}

/// A serial on a CA's CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedSerial {
    /// Serial, hex.
    pub serial_hex: String,
    /// When it was revoked.
    pub revoked_ms: i64,
    /// Why (free text).
    pub reason: String,
}

/// What a CA's next CRL is signed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlInputs {
    /// The CA's change count, read before the revocations (see [`crate::JobEffect::StoreCrl`]).
    pub changes: i64,
    /// The number of the CRL stored; 0 when none is.
    pub number: i64,
    /// The revoked serials still to list, oldest revocation first.
    pub revoked: Vec<RevokedSerial>,
}

/// A signed CRL as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlRecord {
    /// The CA that signed it.
    pub ca_id: String,
    /// Its CRL number.
    pub number: i64,
    /// The CRL, DER.
    pub der: Vec<u8>,
    /// thisUpdate.
    pub this_update_ms: i64,
    /// nextUpdate.
    pub next_update_ms: i64,
}

/// Revocations and CRLs.
#[async_trait]
pub trait Revocations: Send + Sync {
    /// Revokes the certificate `r.cert_id` of `r.account` if it is stored `ISSUED` with serial
    /// `r.serial_hex`, in one transaction: status `REVOKED` with when and why, the serial recorded
    /// under its CA, the CA's change count raised, and `crl_job` queued, or, when a signing job
    /// of that CA (the same dedupe key) is pending already, that job made due by
    /// `crl_job.due_ms`. `false` (nothing written) when the certificate is not so stored.
    async fn revoke_certificate(&self, r: &NewRevocation, crl_job: &NewJob) -> Result<bool>;
    /// What the next CRL of `ca_id` is signed from at `now_ms`: the change count (read first),
    /// the number of the stored CRL, and the serials revoked whose certificates have not expired
    /// at `now_ms`.
    async fn crl_inputs(&self, ca_id: &str, now_ms: i64) -> Result<CrlInputs>;
    /// The CRL stored for `ca_id`, once one has been signed.
    async fn crl(&self, ca_id: &str) -> Result<Option<CrlRecord>>;
}

struct CrlRow {
    ca_id: String,
    crl_number: i64,
    der: Option<Vec<u8>>,
    this_update_ms: Option<i64>,
    next_update_ms: Option<i64>,
}

crate::row::from_row!(CrlRow {
    ca_id,
    crl_number,
    der,
    this_update_ms,
    next_update_ms
});

struct RevokedRow {
    serial_hex: String,
    revoked_ms: i64,
    reason: String,
}

crate::row::from_row!(RevokedRow {
    serial_hex,
    revoked_ms,
    reason
});

/// Applies a [`crate::JobEffect::StoreCrl`] in the job's transaction `$tx` (an identifier);
/// `$now` is the job's end. Uses `?`: for the body of a function that returns a store result.
macro_rules! store_crl {
    ($tx:ident, $crl:expr, $covers:expr, $next:expr, $now:expr) => {{
        let crl: &$crate::revocations::CrlRecord = $crl;
        let covers: i64 = $covers;
        sqlx::query(
            "INSERT INTO crls (ca_id, crl_number, der, this_update_ms, next_update_ms, \
             changes, covers) VALUES ($1, $2, $3, $4, $5, $6, $6) \
             ON CONFLICT (ca_id) DO UPDATE SET crl_number = excluded.crl_number, \
             der = excluded.der, this_update_ms = excluded.this_update_ms, \
             next_update_ms = excluded.next_update_ms, covers = excluded.covers \
             WHERE crls.crl_number < excluded.crl_number",
        )
        .bind(crl.ca_id.as_str())
        .bind(crl.number)
        .bind(crl.der.as_slice())
        .bind(crl.this_update_ms)
        .bind(crl.next_update_ms)
        .bind(covers)
        .execute(&mut *$tx)
        .await?;
        // A revocation committed after the inputs were read is not on this CRL: sign again at
        // once rather than at the next refresh.
        let changes: Option<i64> = sqlx::query_scalar("SELECT changes FROM crls WHERE ca_id = $1")
            .bind(crl.ca_id.as_str())
            .fetch_optional(&mut *$tx)
            .await?;
        let mut next: $crate::records::NewJob = $next.clone();
        if changes.unwrap_or(0) > covers {
            next.due_ms = next.due_ms.min($now);
        }
        let _: Option<i64> = $crate::jobs::insert_job!(&mut *$tx, &next)?;
    }};
}
pub(crate) use store_crl;

#[async_trait]
impl Revocations for SqlStore {
    async fn revoke_certificate(&self, r: &NewRevocation, crl_job: &NewJob) -> Result<bool> {
        db_run!(&self.pool, |p| {
            let mut tx = p.begin().await?;
            let done = sqlx::query(
                "UPDATE certificates SET status = 'REVOKED', revoked_ms = $1, revoke_reason = $2, \
                 updated_ms = $1, renew_at_ms = NULL WHERE id = $3 AND domain_id = $4 AND status = 'ISSUED' \
                 AND serial_hex = $5",
            )
            .bind(r.revoked_ms)
            .bind(r.reason.as_str())
            .bind(r.cert_id.as_str())
            .bind(r.account.as_str())
            .bind(r.serial_hex.as_str())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO revocations (ca_id, serial_hex, cert_id, revoked_ms, reason, \
                 not_after_ms) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (ca_id, serial_hex) DO NOTHING",
            )
            .bind(r.ca_id.as_str())
            .bind(r.serial_hex.as_str())
            .bind(r.cert_id.as_str())
            .bind(r.revoked_ms)
            .bind(r.reason.as_str())
            .bind(r.not_after_ms)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO crls (ca_id, crl_number, changes, covers) VALUES ($1, 0, 1, 0) \
                 ON CONFLICT (ca_id) DO UPDATE SET changes = crls.changes + 1",
            )
            .bind(r.ca_id.as_str())
            .execute(&mut *tx)
            .await?;
            // The CA's signing job, if pending (its next refresh, days away), runs now instead;
            // if none is live, this one is queued; if one is running, its end sees the change
            // count moved and queues the next signing at once (`store_crl`).
            sqlx::query(
                "UPDATE jobs SET due_ms = $2, updated_ms = $3 \
                 WHERE dedupe_key = $1 AND state = 'pending' AND due_ms > $2",
            )
            .bind(crl_job.dedupe_key.as_deref())
            .bind(crl_job.due_ms)
            .bind(r.revoked_ms)
            .execute(&mut *tx)
            .await?;
            let _: Option<i64> = insert_job!(&mut *tx, crl_job)?;
            if let Some(notify) = dialect::of(p).notify_enqueued {
                sqlx::query(notify).execute(&mut *tx).await?;
            }
            sqlx::query(BUMP_CERTIFICATES).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    async fn crl_inputs(&self, ca_id: &str, now_ms: i64) -> Result<CrlInputs> {
        db_run!(&self.pool, |p| {
            // The count first: a revocation between the two reads is on this CRL and counted
            // after it, so it is signed once more (harmless), never missed.
            let state: Option<(i64, i64)> =
                sqlx::query_as("SELECT changes, crl_number FROM crls WHERE ca_id = $1")
                    .bind(ca_id)
                    .fetch_optional(p)
                    .await?;
            let rows: Vec<RevokedRow> = sqlx::query_as(
                "SELECT serial_hex, revoked_ms, reason FROM revocations \
                 WHERE ca_id = $1 AND not_after_ms > $2 ORDER BY revoked_ms, serial_hex",
            )
            .bind(ca_id)
            .bind(now_ms)
            .fetch_all(p)
            .await?;
            let (changes, number) = state.unwrap_or((0, 0));
            Ok(CrlInputs {
                changes,
                number,
                revoked: rows
                    .into_iter()
                    .map(|r| RevokedSerial {
                        serial_hex: r.serial_hex,
                        revoked_ms: r.revoked_ms,
                        reason: r.reason,
                    })
                    .collect(),
            })
        })
    }

    async fn crl(&self, ca_id: &str) -> Result<Option<CrlRecord>> {
        let row: Option<CrlRow> = db_run!(&self.pool, |p| {
            sqlx::query_as(
                "SELECT ca_id, crl_number, der, this_update_ms, next_update_ms FROM crls \
                 WHERE ca_id = $1",
            )
            .bind(ca_id)
            .fetch_optional(p)
            .await?
        });
        Ok(
            row.and_then(|r| match (r.der, r.this_update_ms, r.next_update_ms) {
                (Some(der), Some(this_update_ms), Some(next_update_ms)) => Some(CrlRecord {
                    ca_id: r.ca_id,
                    number: r.crl_number,
                    der,
                    this_update_ms,
                    next_update_ms,
                }),
                // A CA that has revoked before its first CRL was signed.
                _ => None,
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use scm_proto::{CertificateId, CertificateStatus};

    use super::*;
    use crate::tests::{TestDb, account, order, raw_connection, with_postgres, with_sqlite};
    use crate::{
        Accounts, ApplicationRecord, Certificates, IssuedRecord, JobEffect, JobOutcome, JobState,
        Jobs,
    };

    const CA: &str = "0123456789abcdef0123456789abcdef01234567";
    const KEY: &str = "crl:0123456789abcdef0123456789abcdef01234567";

    #[tokio::test]
    async fn revocation_is_conditional_and_queues_the_crl_sqlite() {
        with_sqlite(revocation_is_conditional_and_queues_the_crl).await;
    }

    #[tokio::test]
    async fn revocation_is_conditional_and_queues_the_crl_postgres() {
        with_postgres(revocation_is_conditional_and_queues_the_crl).await;
    }

    #[tokio::test]
    async fn crl_numbers_only_grow_and_late_revocations_are_signed_at_once_sqlite() {
        with_sqlite(crl_numbers_only_grow_and_late_revocations_are_signed_at_once).await;
    }

    #[tokio::test]
    async fn crl_numbers_only_grow_and_late_revocations_are_signed_at_once_postgres() {
        with_postgres(crl_numbers_only_grow_and_late_revocations_are_signed_at_once).await;
    }

    fn crl_job(due_ms: i64) -> NewJob {
        NewJob {
            kind: "crl".into(),
            payload: format!(r#"{{"ca_id":"{CA}"}}"#),
            dedupe_key: Some(KEY.into()),
            due_ms,
            max_attempts: 5,
            created_ms: due_ms,
        }
    }

    async fn issue(store: &SqlStore, id: &CertificateId, serial: &str) {
        let app = ApplicationRecord {
            domain: "r.test".into(),
            sans: String::new(),
            form_json: "{}".into(),
            csr_pem: None,
            validation_method: None,
            key_algorithm: Some("EC_P256".into()),
        };
        let issued = IssuedRecord {
            certificate_pem: "leaf".into(),
            chain_pem: "chain".into(),
            private_key_sealed: Some(vec![4; 50]),
            serial_hex: serial.into(),
            fingerprint: "f".repeat(40),
            signature_algorithm: "SHA256WITHECDSA".into(),
            issued_ms: 100,
            not_before_ms: 100,
            not_after_ms: 10_000,
            ca_id: None,
        };
        assert!(
            store
                .mark_issued(id, CertificateStatus::Paid, &app, &issued, 100)
                .await
                .unwrap()
        );
    }

    fn revocation(a: &DomainId, id: &CertificateId, serial: &str, at: i64) -> NewRevocation {
        NewRevocation {
            ca_id: CA.into(),
            cert_id: id.clone(),
            account: a.clone(),
            serial_hex: serial.into(),
            reason: "keyCompromise".into(),
            revoked_ms: at,
            not_after_ms: 10_000,
        }
    }

    async fn crl_jobs(store: &SqlStore) -> Vec<crate::JobRecord> {
        store
            .jobs(None, 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|j| j.dedupe_key.as_deref() == Some(KEY))
            .collect()
    }

    async fn revocation_is_conditional_and_queues_the_crl(db: TestDb) {
        let store = db.store().await;
        let (a, p) = account(1);
        store.create_account(&a, &p).await.unwrap();
        let (b, q) = account(2);
        store.create_account(&b, &q).await.unwrap();
        let ids = order(&store, &a, &p, 3, 1_700_000_000_000).await;
        issue(&store, &ids[0], "4a01").await;
        issue(&store, &ids[1], "4a02").await;

        // Another account, another serial, a certificate not ISSUED: nothing is written.
        for r in [
            revocation(&b.domain_id, &ids[0], "4a01", 200),
            revocation(&a.domain_id, &ids[0], "4a99", 200),
            revocation(&a.domain_id, &ids[2], "4a01", 200),
        ] {
            assert!(!store.revoke_certificate(&r, &crl_job(200)).await.unwrap());
        }
        assert_eq!(
            store.crl_inputs(CA, 300).await.unwrap(),
            CrlInputs {
                changes: 0,
                number: 0,
                revoked: vec![]
            }
        );
        assert!(crl_jobs(&store).await.is_empty());

        let r = revocation(&a.domain_id, &ids[0], "4a01", 200);
        assert!(store.revoke_certificate(&r, &crl_job(200)).await.unwrap());
        let c = store.certificate(&ids[0]).await.unwrap().unwrap();
        assert_eq!(c.status, CertificateStatus::Revoked);
        assert_eq!(
            c.revocation,
            Some(crate::RevocationRecord {
                revoked_ms: 200,
                reason: "keyCompromise".into()
            })
        );
        assert_eq!(c.updated_ms, 200);
        assert!(
            store
                .certificate(&ids[1])
                .await
                .unwrap()
                .unwrap()
                .revocation
                .is_none()
        );
        // Once only.
        assert!(!store.revoke_certificate(&r, &crl_job(201)).await.unwrap());
        let inputs = store.crl_inputs(CA, 300).await.unwrap();
        assert_eq!((inputs.changes, inputs.number), (1, 0));
        assert_eq!(
            inputs.revoked,
            vec![RevokedSerial {
                serial_hex: "4a01".into(),
                revoked_ms: 200,
                reason: "keyCompromise".into()
            }]
        );
        // Past the certificate's expiry its serial leaves the CRL; another CA has none.
        assert!(
            store
                .crl_inputs(CA, 10_000)
                .await
                .unwrap()
                .revoked
                .is_empty()
        );
        assert!(
            store
                .crl_inputs("ff", 300)
                .await
                .unwrap()
                .revoked
                .is_empty()
        );
        // No CRL is served before one is signed.
        assert!(store.crl(CA).await.unwrap().is_none());
        let jobs = crl_jobs(&store).await;
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        assert_eq!((jobs[0].state, jobs[0].due_ms), (JobState::Pending, 200));

        // A signing job pending for later (the next refresh) is made due by the revocation.
        raw_connection(&db.url)
            .await
            .execute_raw(&format!(
                "UPDATE jobs SET due_ms = 999999 WHERE dedupe_key = '{KEY}'"
            ))
            .await;
        let r = revocation(&a.domain_id, &ids[1], "4a02", 400);
        assert!(store.revoke_certificate(&r, &crl_job(400)).await.unwrap());
        let jobs = crl_jobs(&store).await;
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        assert_eq!(jobs[0].due_ms, 400);
        assert_eq!(store.crl_inputs(CA, 500).await.unwrap().changes, 2);
        // A revoked certificate can be deleted; its serial stays on the CRL until it expires.
        assert!(
            crate::Lifecycle::delete_certificate(
                store.as_ref(),
                &a.domain_id,
                &ids[0],
                CertificateStatus::Revoked
            )
            .await
            .unwrap()
        );
        assert_eq!(store.crl_inputs(CA, 500).await.unwrap().revoked.len(), 2);
    }

    fn crl(number: i64, at: i64) -> CrlRecord {
        CrlRecord {
            ca_id: CA.into(),
            number,
            der: vec![0x30, u8::try_from(number).unwrap()],
            this_update_ms: at,
            next_update_ms: at + 1000,
        }
    }

    async fn crl_numbers_only_grow_and_late_revocations_are_signed_at_once(db: TestDb) {
        let store = db.store().await;
        let (a, p) = account(1);
        store.create_account(&a, &p).await.unwrap();
        let ids = order(&store, &a, &p, 1, 1_700_000_000_000).await;
        issue(&store, &ids[0], "4a01").await;

        // The first CRL: stored, and the next signing queued for its refresh time.
        store.enqueue(&crl_job(100)).await.unwrap();
        let job = store.claim("w", 100, 60_000, 10).await.unwrap().remove(0);
        let effect = JobEffect::StoreCrl {
            crl: crl(1, 100),
            covers: 0,
            next: crl_job(800),
        };
        assert!(
            store
                .finish(&job.lease().unwrap(), &JobOutcome::Done, &[effect], 110)
                .await
                .unwrap()
        );
        assert_eq!(store.crl(CA).await.unwrap(), Some(crl(1, 100)));
        let pending = |jobs: Vec<crate::JobRecord>| {
            jobs.into_iter()
                .filter(|j| j.state == JobState::Pending)
                .map(|j| j.due_ms)
                .collect::<Vec<_>>()
        };
        assert_eq!(pending(crl_jobs(&store).await), vec![800]);

        // The refresh runs; a revocation commits while it signs (after it read its inputs):
        // the CRL it stores lacks that serial, so the next signing is due at once.
        let job = store.claim("w", 800, 60_000, 10).await.unwrap().remove(0);
        let inputs = store.crl_inputs(CA, 800).await.unwrap();
        assert_eq!((inputs.changes, inputs.number), (0, 1));
        let r = revocation(&a.domain_id, &ids[0], "4a01", 805);
        assert!(store.revoke_certificate(&r, &crl_job(805)).await.unwrap());
        assert_eq!(
            pending(crl_jobs(&store).await),
            Vec::<i64>::new(),
            "the running job holds the key"
        );
        let effect = JobEffect::StoreCrl {
            crl: crl(2, 800),
            covers: inputs.changes,
            next: crl_job(1500),
        };
        assert!(
            store
                .finish(&job.lease().unwrap(), &JobOutcome::Done, &[effect], 810)
                .await
                .unwrap()
        );
        assert_eq!(store.crl(CA).await.unwrap().map(|c| c.number), Some(2));
        assert_eq!(pending(crl_jobs(&store).await), vec![810]);

        // That signing covers the revocation: its next one is at its refresh time again. A
        // CRL with a lower or equal number (a late worker) never replaces a newer one.
        let job = store.claim("w", 810, 60_000, 10).await.unwrap().remove(0);
        let inputs = store.crl_inputs(CA, 810).await.unwrap();
        assert_eq!((inputs.changes, inputs.revoked.len()), (1, 1));
        let effects = [
            JobEffect::StoreCrl {
                crl: crl(3, 810),
                covers: inputs.changes,
                next: crl_job(1600),
            },
            JobEffect::StoreCrl {
                crl: crl(2, 790),
                covers: inputs.changes,
                next: crl_job(1600),
            },
        ];
        assert!(
            store
                .finish(&job.lease().unwrap(), &JobOutcome::Done, &effects, 820)
                .await
                .unwrap()
        );
        assert_eq!(store.crl(CA).await.unwrap(), Some(crl(3, 810)));
        assert_eq!(pending(crl_jobs(&store).await), vec![1600]);
    }
}
