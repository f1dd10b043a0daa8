//! [`Lifecycle`]: removing certificates (delete, unsubscribe) and withdrawing applications.

use async_trait::async_trait;
use scm_proto::{CertificateId, CertificateStatus, DomainId};

use crate::pool::{BUMP_CERTIFICATES, db_run};
use crate::{Lifecycle, Result, SqlStore};

#[async_trait]
impl Lifecycle for SqlStore {
    async fn delete_certificate(
        &self,
        account: &DomainId,
        id: &CertificateId,
        expect: CertificateStatus,
    ) -> Result<bool> {
        db_run!(&self.pool, |p| {
            let mut tx = p.begin().await?;
            // Its push records must go before it (foreign key), and only when it is about to go.
            sqlx::query(
                "DELETE FROM push_records WHERE cert_id = $1 AND EXISTS \
                 (SELECT 1 FROM certificates WHERE id = $1 AND domain_id = $2 AND status = $3)",
            )
            .bind(id.as_str())
            .bind(account.as_str())
            .bind(expect.as_str())
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "DELETE FROM deployments WHERE cert_id = $1 AND EXISTS \
                 (SELECT 1 FROM certificates WHERE id = $1 AND domain_id = $2 AND status = $3)",
            )
            .bind(id.as_str())
            .bind(account.as_str())
            .bind(expect.as_str())
            .execute(&mut *tx)
            .await?;
            let done = sqlx::query(
                "DELETE FROM certificates WHERE id = $1 AND domain_id = $2 AND status = $3",
            )
            .bind(id.as_str())
            .bind(account.as_str())
            .bind(expect.as_str())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            // The certificate's place in the account's quota is free again.
            sqlx::query(
                "UPDATE accounts SET certificate_count = certificate_count - 1 \
                 WHERE domain_id = $1 AND certificate_count > 0",
            )
            .bind(account.as_str())
            .execute(&mut *tx)
            .await?;
            sqlx::query(BUMP_CERTIFICATES).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use scm_proto::CertificateStatus;

    use crate::tests::{TestDb, account, order, raw_connection, with_postgres, with_sqlite};
    use crate::{Accounts, Certificates, Lifecycle, PushOutcome, PushRecord, Pushes, Versions};

    #[tokio::test]
    async fn delete_is_conditional_and_takes_push_records_and_quota_sqlite() {
        with_sqlite(delete_is_conditional_and_takes_push_records_and_quota).await;
    }

    #[tokio::test]
    async fn delete_is_conditional_and_takes_push_records_and_quota_postgres() {
        with_postgres(delete_is_conditional_and_takes_push_records_and_quota).await;
    }

    #[tokio::test]
    async fn status_moves_are_conditional_sqlite() {
        with_sqlite(status_moves_are_conditional).await;
    }

    #[tokio::test]
    async fn status_moves_are_conditional_postgres() {
        with_postgres(status_moves_are_conditional).await;
    }

    async fn delete_is_conditional_and_takes_push_records_and_quota(db: TestDb) {
        let store = db.store().await;
        let (a, p) = account(1);
        store.create_account(&a, &p).await.unwrap();
        let (b, q) = account(2);
        store.create_account(&b, &q).await.unwrap();
        let ids = order(&store, &a, &p, 2, 1_700_000_000_000).await;
        store
            .record_push(&PushRecord {
                cert_id: ids[0].clone(),
                domain_id: a.domain_id.clone(),
                pushed_ms: 5,
                service: "ELB".into(),
                region: None,
                outcome: PushOutcome::Success,
                detail: "ok".into(),
                targets: "t".into(),
                version: None,
                verified: false,
                served_serial: None,
                attempt: 0,
            })
            .await
            .unwrap();
        let mut raw = raw_connection(&db.url).await;
        let held = format!(
            "SELECT certificate_count FROM accounts WHERE domain_id = '{}'",
            a.domain_id.as_str()
        );
        assert_eq!(raw.count(&held).await, 2);
        // Another account, or another status than the stored one: nothing changes.
        assert!(
            !store
                .delete_certificate(&b.domain_id, &ids[0], CertificateStatus::Paid)
                .await
                .unwrap()
        );
        assert!(
            !store
                .delete_certificate(&a.domain_id, &ids[0], CertificateStatus::Issued)
                .await
                .unwrap()
        );
        assert_eq!(
            store.push_history(&ids[0], 10, false).await.unwrap().len(),
            1
        );
        assert_eq!(raw.count(&held).await, 2);
        assert!(
            store
                .delete_certificate(&a.domain_id, &ids[0], CertificateStatus::Paid)
                .await
                .unwrap()
        );
        assert!(store.certificate(&ids[0]).await.unwrap().is_none());
        assert!(
            store
                .push_history(&ids[0], 10, false)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(raw.count(&held).await, 1);
        assert!(store.certificate(&ids[1]).await.unwrap().is_some());
        assert!(
            !store
                .delete_certificate(&a.domain_id, &ids[0], CertificateStatus::Paid)
                .await
                .unwrap()
        );
    }

    async fn status_moves_are_conditional(db: TestDb) {
        let store = db.store().await;
        let event = crate::NewEvent {
            event: "cancelled".into(),
            detail: String::new(),
            actor: "test".into(),
        };
        let (a, p) = account(1);
        store.create_account(&a, &p).await.unwrap();
        let id = order(&store, &a, &p, 1, 1_700_000_000_000).await.remove(0);
        let mut raw = raw_connection(&db.url).await;
        raw.execute_raw(&format!(
            "UPDATE certificates SET status = 'CHECKING' WHERE id = '{}'",
            id.as_str()
        ))
        .await;
        assert!(
            !store
                .transition(
                    &id,
                    CertificateStatus::Paid,
                    CertificateStatus::Issued,
                    &event,
                    7
                )
                .await
                .unwrap()
        );
        assert!(
            store
                .transition(
                    &id,
                    CertificateStatus::Checking,
                    CertificateStatus::Paid,
                    &event,
                    7
                )
                .await
                .unwrap()
        );
        let c = store.certificate(&id).await.unwrap().unwrap();
        assert_eq!((c.status, c.updated_ms), (CertificateStatus::Paid, 7));
    }
}
