//! [`Lifecycle`]: removing certificates (delete, unsubscribe) and withdrawing applications.

use async_trait::async_trait;
use scm_proto::{CertificateId, CertificateStatus, DomainId};

use crate::pool::{BUMP, db_run};
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
            sqlx::query(BUMP).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    async fn move_status(
        &self,
        id: &CertificateId,
        expect: CertificateStatus,
        to: CertificateStatus,
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
            sqlx::query(BUMP).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(done.rows_affected() == 1)
        })
    }
}
