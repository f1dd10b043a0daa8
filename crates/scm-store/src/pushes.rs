//! [`Pushes`]: the history of push attempts.

use async_trait::async_trait;
use scm_proto::{CertificateId, DomainId};

use crate::pool::{BUMP_CERTIFICATES, corrupt, db_run};
use crate::records::{PushOutcome, PushRecord};
use crate::{Pushes, Result, SqlStore, StoreError};

struct PushRow {
    cert_id: CertificateId,
    domain_id: DomainId,
    pushed_ms: i64,
    service: String,
    region: Option<String>,
    outcome: String,
    detail: String,
    targets: String,
    version: Option<i64>,
    verified: i64,
    served_serial: Option<String>,
    attempt: i64,
}

crate::row::from_row!(PushRow { cert_id [via String], domain_id [via String], pushed_ms, service, region, outcome, detail, targets, version, verified, served_serial, attempt });

impl TryFrom<PushRow> for PushRecord {
    type Error = StoreError;
    fn try_from(r: PushRow) -> Result<Self> {
        Ok(Self {
            cert_id: r.cert_id,
            domain_id: r.domain_id,
            pushed_ms: r.pushed_ms,
            service: r.service,
            region: r.region,
            outcome: PushOutcome::parse(&r.outcome)
                .ok_or_else(|| corrupt("push_records.outcome"))?,
            detail: r.detail,
            targets: r.targets,
            version: r
                .version
                .map(u32::try_from)
                .transpose()
                .map_err(|_| corrupt("push_records.version"))?,
            verified: r.verified != 0,
            served_serial: r.served_serial,
            attempt: u32::try_from(r.attempt).map_err(|_| corrupt("push_records.attempt"))?,
        })
    }
}

/// Inserts a push record with executor `$e`; evaluates to `Result<()>`. The caller bumps the
/// certificates revision for a successful one (the cached history holds only those).
macro_rules! insert_push {
    ($e:expr, $rec:expr) => {{
        let rec: &$crate::records::PushRecord = $rec;
        sqlx::query(
            "INSERT INTO push_records (cert_id, domain_id, pushed_ms, service, region, outcome, detail, \
             targets, version, verified, served_serial, attempt) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(rec.cert_id.as_str())
        .bind(rec.domain_id.as_str())
        .bind(rec.pushed_ms)
        .bind(rec.service.as_str())
        .bind(rec.region.as_deref())
        .bind(rec.outcome.as_str())
        .bind(rec.detail.as_str())
        .bind(rec.targets.as_str())
        .bind(rec.version.map(i64::from))
        .bind(i64::from(rec.verified))
        .bind(rec.served_serial.as_deref())
        .bind(i64::from(rec.attempt))
        .execute($e)
        .await
        .map(|_| ())
    }};
}
pub(crate) use insert_push;

#[async_trait]
impl Pushes for SqlStore {
    async fn record_push(&self, rec: &PushRecord) -> Result<()> {
        db_run!(&self.pool, |p| {
            let mut tx = p.begin().await?;
            insert_push!(&mut *tx, rec)?;
            if rec.outcome == PushOutcome::Success {
                sqlx::query(BUMP_CERTIFICATES).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    async fn push_history(
        &self,
        cert: &CertificateId,
        limit: u32,
        successful_only: bool,
    ) -> Result<Vec<PushRecord>> {
        let rows: Vec<PushRow> = db_run!(&self.pool, |p| {
            sqlx::query_as(
                "SELECT cert_id, domain_id, pushed_ms, service, region, outcome, detail, targets, \
                 version, verified, served_serial, attempt FROM push_records WHERE cert_id = $1 AND ($2 = 0 OR outcome = 'success') \
                 ORDER BY pushed_ms DESC, id DESC LIMIT $3",
            )
            .bind(cert.as_str())
            .bind(i64::from(successful_only))
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?
        });
        rows.into_iter().map(TryInto::try_into).collect()
    }
}
