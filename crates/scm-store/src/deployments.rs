//! [`Deployments`]: where each certificate is deployed, per (certificate, target), written by
//! the delivery and drift jobs as effects ([`DeploymentChange`]) and read by
//! ListDeployedResources, the CLI, the console and the drift sweep.

use async_trait::async_trait;
use scm_proto::{CertificateId, DomainId};

use crate::pool::{corrupt, db_run};
use crate::records::DeploymentRecord;
use crate::{Deployments, Result, SqlStore, StoreError};

struct DeploymentRow {
    cert_id: CertificateId,
    target: String,
    domain_id: DomainId,
    version: i64,
    sha256: Option<String>,
    verified: i64,
    served_serial: Option<String>,
    delivered_ms: Option<i64>,
    verified_ms: Option<i64>,
    failing_version: Option<i64>,
    not_served: i64,
    last_error: Option<String>,
    drift_ms: Option<i64>,
    checked_ms: Option<i64>,
    updated_ms: i64,
}

crate::row::from_row!(DeploymentRow { cert_id [via String], target, domain_id [via String], version, sha256, verified, served_serial, delivered_ms, verified_ms, failing_version, not_served, last_error, drift_ms, checked_ms, updated_ms });

/// The columns of a [`DeploymentRow`], in a macro so that queries stay literals.
macro_rules! columns {
    () => {
        "cert_id, target, domain_id, version, sha256, verified, served_serial, delivered_ms, \
         verified_ms, failing_version, not_served, last_error, drift_ms, checked_ms, updated_ms"
    };
}

impl TryFrom<DeploymentRow> for DeploymentRecord {
    type Error = StoreError;
    fn try_from(r: DeploymentRow) -> Result<Self> {
        let version = |v: i64| u32::try_from(v).map_err(|_| corrupt("deployments.version"));
        Ok(Self {
            cert_id: r.cert_id,
            target: r.target,
            domain_id: r.domain_id,
            version: version(r.version)?,
            sha256: r.sha256,
            verified: r.verified != 0,
            served_serial: r.served_serial,
            delivered_ms: r.delivered_ms,
            verified_ms: r.verified_ms,
            failing_version: r.failing_version.map(version).transpose()?,
            not_served: r.not_served != 0,
            last_error: r.last_error,
            drift_ms: r.drift_ms,
            checked_ms: r.checked_ms,
            updated_ms: r.updated_ms,
        })
    }
}

/// Applies a [`DeploymentChange`] with executor `$e`; evaluates to `Result<()>`. A delivery of an
/// older version than the one recorded (a slow retry finishing after a newer push) does not move
/// the row back.
macro_rules! apply_deployment {
    ($e:expr, $change:expr) => {{
        let change: &$crate::records::DeploymentChange = $change;
        match change {
            $crate::records::DeploymentChange::Delivered {
                cert_id,
                target,
                domain_id,
                version,
                sha256,
                verified,
                served_serial,
                at_ms,
            } => sqlx::query(
                "INSERT INTO deployments (cert_id, target, domain_id, version, sha256, verified, \
                 served_serial, delivered_ms, verified_ms, failing_version, not_served, last_error, \
                 drift_ms, checked_ms, updated_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $6 = 1 THEN $8 END, NULL, 0, \
                 NULL, NULL, $8, $8) \
                 ON CONFLICT (cert_id, target) DO UPDATE SET version = excluded.version, \
                 sha256 = excluded.sha256, verified = excluded.verified, \
                 served_serial = excluded.served_serial, delivered_ms = excluded.delivered_ms, \
                 verified_ms = excluded.verified_ms, \
                 failing_version = CASE WHEN deployments.failing_version > excluded.version \
                   THEN deployments.failing_version END, \
                 not_served = CASE WHEN deployments.failing_version > excluded.version \
                   THEN deployments.not_served ELSE 0 END, \
                 last_error = CASE WHEN deployments.failing_version > excluded.version \
                   THEN deployments.last_error END, \
                 drift_ms = NULL, checked_ms = excluded.checked_ms, \
                 updated_ms = excluded.updated_ms \
                 WHERE deployments.version <= excluded.version",
            )
            .bind(cert_id.as_str())
            .bind(target.as_str())
            .bind(domain_id.as_str())
            .bind(i64::from(*version))
            .bind(sha256.as_str())
            .bind(i64::from(*verified))
            .bind(served_serial.as_deref())
            .bind(*at_ms)
            .execute($e)
            .await
            .map(|_| ()),
            $crate::records::DeploymentChange::Failed {
                cert_id,
                target,
                domain_id,
                version,
                not_served,
                error,
                at_ms,
            } => sqlx::query(
                "INSERT INTO deployments (cert_id, target, domain_id, version, verified, \
                 failing_version, not_served, last_error, updated_ms) \
                 VALUES ($1, $2, $3, 0, 0, $4, $5, $6, $7) \
                 ON CONFLICT (cert_id, target) DO UPDATE SET \
                 failing_version = excluded.failing_version, \
                 not_served = CASE WHEN deployments.failing_version = excluded.failing_version \
                   THEN (CASE WHEN excluded.not_served = 1 THEN 1 ELSE deployments.not_served END) \
                   ELSE excluded.not_served END, \
                 last_error = excluded.last_error, updated_ms = excluded.updated_ms \
                 WHERE deployments.version <= excluded.failing_version",
            )
            .bind(cert_id.as_str())
            .bind(target.as_str())
            .bind(domain_id.as_str())
            .bind(i64::from(*version))
            .bind(i64::from(*not_served))
            .bind(error.as_str())
            .bind(*at_ms)
            .execute($e)
            .await
            .map(|_| ()),
            $crate::records::DeploymentChange::Checked {
                cert_id,
                target,
                drift,
                served_serial,
                at_ms,
            } => sqlx::query(
                "UPDATE deployments SET checked_ms = $3, \
                 served_serial = COALESCE($5, served_serial), \
                 drift_ms = CASE WHEN $4 IS NULL THEN NULL ELSE COALESCE(drift_ms, $3) END, \
                 last_error = CASE WHEN $4 IS NULL THEN \
                   (CASE WHEN failing_version IS NULL THEN NULL ELSE last_error END) ELSE $4 END, \
                 updated_ms = $3 WHERE cert_id = $1 AND target = $2",
            )
            .bind(cert_id.as_str())
            .bind(target.as_str())
            .bind(*at_ms)
            .bind(drift.as_deref())
            .bind(served_serial.as_deref())
            .execute($e)
            .await
            .map(|_| ()),
        }
    }};
}
pub(crate) use apply_deployment;

#[async_trait]
impl Deployments for SqlStore {
    async fn deployments(&self, cert: &CertificateId) -> Result<Vec<DeploymentRecord>> {
        let rows: Vec<DeploymentRow> = db_run!(&self.pool, |p| {
            sqlx::query_as(concat!(
                "SELECT ",
                columns!(),
                " FROM deployments WHERE cert_id = $1 ORDER BY target"
            ))
            .bind(cert.as_str())
            .fetch_all(p)
            .await?
        });
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn deployments_to_check(
        &self,
        checked_before_ms: i64,
        limit: u32,
    ) -> Result<Vec<DeploymentRecord>> {
        let rows: Vec<DeploymentRow> = db_run!(&self.pool, |p| {
            sqlx::query_as(concat!(
                "SELECT ",
                columns!(),
                " FROM deployments WHERE version > 0 AND \
                 (checked_ms IS NULL OR checked_ms < $1) ORDER BY checked_ms LIMIT $2"
            ))
            .bind(checked_before_ms)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?
        });
        rows.into_iter().map(TryInto::try_into).collect()
    }
}
