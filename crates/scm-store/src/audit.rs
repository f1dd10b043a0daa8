//! [`Audit`]: the append-only audit log of state-changing calls and key exports; and [`Stats`]:
//! the aggregates the metrics endpoint shows (certificates by status and expiry, push attempts,
//! jobs), each one cheap query over the whole store, and a ping.

use async_trait::async_trait;
use scm_proto::{AccessKeyId, DomainId};

use crate::pool::db_run;
use crate::{Result, SqlStore, StoreError};

/// One audited call: of the API or the console, or a change made with the admin CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// When it was answered (Unix ms).
    pub at_ms: i64,
    /// The caller's account; for the admin CLI, the account changed. `None` when there is none
    /// (a refused console sign-in with an access key that names no credential).
    pub account: Option<DomainId>,
    /// The credential it authenticated with (for a token, the credential the token was issued
    /// to; for a refused console sign-in, the access key tried, when it is one). `None` for the
    /// admin CLI, which needs none (the operator at the machine).
    pub credential: Option<AccessKeyId>,
    /// The operation's name (the operation table's).
    pub operation: String,
    /// The ids the call named in its path and, where known, those it created.
    pub targets: Vec<String>,
    /// `ok`, or the error code it was answered with.
    pub outcome: String,
    /// The HTTP status it was answered with; 0 for the admin CLI.
    pub status: u16,
    /// The request id (`X-Request-Id`).
    pub request_id: String,
    /// The client's address; for the admin CLI, `admin-cli` and the user who ran it.
    pub source: String,
}

/// A filter over the audit log; every field that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this account.
    pub account: Option<DomainId>,
    /// Only this operation (by name).
    pub operation: Option<String>,
    /// Only events at or after this time (Unix ms).
    pub since_ms: Option<i64>,
    /// Only events before this time (Unix ms).
    pub until_ms: Option<i64>,
    /// Only events that name this id.
    pub target: Option<String>,
    /// At most this many (newest first).
    pub limit: u32,
}

/// The audit log. There is no update: the log is append-only. The only delete is the operator's
/// retention ([`Audit::prune_audit`], from the servers' housekeeping; the API cannot reach it).
#[async_trait]
pub trait Audit: Send + Sync {
    /// Appends `events` in one transaction.
    async fn append_audit(&self, events: &[AuditEvent]) -> Result<()>;
    /// The events matching `q`, newest first.
    async fn audit_events(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>>;
    /// Deletes the events older than `before_ms` (past the configured retention); returns how
    /// many.
    async fn prune_audit(&self, before_ms: i64) -> Result<u64>;
}

/// Whole-store aggregates for the metrics endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Certificates by status (issued or imported ones past their `not_after` count as
    /// `EXPIRED`, as the list filter reads them).
    pub certificates_by_status: Vec<(String, i64)>,
    /// Issued or imported certificates that expire within 7 days (not yet expired).
    pub expiring_7d: i64,
    /// ... within 30 days.
    pub expiring_30d: i64,
    /// Push attempts recorded in the history, by outcome.
    pub pushes_by_outcome: Vec<(String, i64)>,
    /// Push attempts recorded in the history, by target and outcome (`(target, outcome, n)`;
    /// the target as recorded: one name since deliveries are per target).
    pub deliveries: Vec<(String, String, i64)>,
    /// Deployments (certificate × target) in trouble, by target.
    pub deployment_health: Vec<DeploymentHealth>,
    /// Jobs by kind and state.
    pub jobs: Vec<(String, String, i64)>,
    /// Audit events kept, from the range of their ids (events are appended in id order and
    /// pruned oldest first, so this is the count without scanning the table).
    pub audit_events: i64,
    /// CSRs kept, all accounts.
    pub csrs: i64,
    /// Certificates waiting for domain validation: applications (`CHECKING_DOMAIN`) and
    /// renewals whose proof is pending.
    pub validations_pending: i64,
    /// Certificates whose renewal is due and not yet queued by the sweep.
    pub renewals_due: i64,
    /// The soonest expiry (Unix ms) of a certificate OpenSCM renews (purchased, issued,
    /// auto-renew on): when it passes, a renewal did not happen in time. `None` when there is
    /// none.
    pub next_renewable_expiry_ms: Option<i64>,
    /// ACME orders under way, by issuer and step (`(issuer, state, n)`).
    pub acme_orders: Vec<(String, String, i64)>,
    /// Names left alone after failing validation 5 times in a row within a day.
    pub acme_names_stopped: i64,
    /// ACME accounts paused after `rateLimited` (issuer names).
    pub acme_paused: Vec<String>,
}

/// The deployments of one target that are in trouble (migration 0020's `deployments`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploymentHealth {
    /// The push target.
    pub target: String,
    /// Deployments whose delivery is failing now (`failing_version` set).
    pub failing: i64,
    /// ... of which the target does not serve the delivered version (`not_served`).
    pub not_serving: i64,
    /// Deployments whose target no longer serves what was delivered (`drift_ms` set).
    pub drifted: i64,
}

crate::row::from_row!(DeploymentHealth {
    target,
    failing,
    not_serving,
    drifted
});

/// Aggregates and a liveness check.
#[async_trait]
pub trait Stats: Send + Sync {
    /// The aggregates at `now_ms`.
    async fn stats(&self, now_ms: i64) -> Result<StoreStats>;
    /// One round trip to the database.
    async fn ping(&self) -> Result<()>;
}

const DAY_MS: i64 = 86_400_000;

struct AuditRow {
    at_ms: i64,
    // Empty for `None` (the columns are NOT NULL; an empty id is no id).
    account: String,
    credential: String,
    operation: String,
    targets: String,
    outcome: String,
    status: i32,
    request_id: String,
    source: String,
}

crate::row::from_row!(AuditRow {
    at_ms,
    account,
    credential,
    operation,
    targets,
    outcome,
    status,
    request_id,
    source
});

impl TryFrom<AuditRow> for AuditEvent {
    type Error = StoreError;
    fn try_from(r: AuditRow) -> Result<Self> {
        let account = match r.account.as_str() {
            "" => None,
            a => Some(
                DomainId::try_from(a).map_err(|_| crate::pool::corrupt("audit_events.account"))?,
            ),
        };
        let credential = match r.credential.as_str() {
            "" => None,
            c => Some(
                AccessKeyId::try_from(c)
                    .map_err(|_| crate::pool::corrupt("audit_events.credential"))?,
            ),
        };
        Ok(Self {
            at_ms: r.at_ms,
            account,
            credential,
            operation: r.operation,
            targets: r
                .targets
                .split(',')
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
            outcome: r.outcome,
            status: u16::try_from(r.status)
                .map_err(|_| crate::pool::corrupt("audit_events.status"))?,
            request_id: r.request_id,
            source: r.source,
        })
    }
}

/// `,a,b,`: every id between commas (ids never hold a comma; one that did is dropped rather than
/// split into two).
fn joined_targets(targets: &[String]) -> String {
    let mut out = String::from(",");
    for t in targets.iter().filter(|t| !t.is_empty() && !t.contains(',')) {
        out.push_str(t);
        out.push(',');
    }
    out
}

/// A LIKE pattern matching `,id,` literally (`\` escapes the wildcards).
fn target_pattern(id: &str) -> String {
    let mut out = String::from("%,");
    for c in id.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push_str(",%");
    out
}

#[async_trait]
impl Audit for SqlStore {
    async fn append_audit(&self, events: &[AuditEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        db_run!(&self.pool, |p| {
            let mut tx = p.begin().await?;
            for e in events {
                sqlx::query(
                    "INSERT INTO audit_events (at_ms, account, credential, operation, targets, \
                     outcome, status, request_id, source) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(e.at_ms)
                .bind(e.account.as_ref().map_or("", DomainId::as_str))
                .bind(e.credential.as_ref().map_or("", AccessKeyId::as_str))
                .bind(e.operation.as_str())
                .bind(joined_targets(&e.targets))
                .bind(e.outcome.as_str())
                .bind(i32::from(e.status))
                .bind(e.request_id.as_str())
                .bind(e.source.as_str())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    async fn audit_events(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>> {
        let target = q.target.as_deref().map(target_pattern);
        let rows: Vec<AuditRow> = db_run!(&self.pool, |p| {
            sqlx::query_as(
                "SELECT at_ms, account, credential, operation, targets, outcome, status, \
                 request_id, source FROM audit_events \
                 WHERE ($1 IS NULL OR account = $1) AND ($2 IS NULL OR operation = $2) \
                 AND ($3 IS NULL OR at_ms >= $3) AND ($4 IS NULL OR at_ms < $4) \
                 AND ($5 IS NULL OR targets LIKE $5 ESCAPE '\\') \
                 ORDER BY at_ms DESC, id DESC LIMIT $6",
            )
            .bind(q.account.as_ref().map(DomainId::as_str))
            .bind(q.operation.as_deref())
            .bind(q.since_ms)
            .bind(q.until_ms)
            .bind(target.as_deref())
            .bind(i64::from(q.limit))
            .fetch_all(p)
            .await?
        });
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn prune_audit(&self, before_ms: i64) -> Result<u64> {
        // The delete trigger lets through only rows older than the gate, which is open to the
        // cut-off within this transaction alone (migration 0013).
        db_run!(&self.pool, |p| {
            let mut tx = p.begin().await?;
            sqlx::query("UPDATE audit_prune_gate SET before_ms = $1 WHERE id = 1")
                .bind(before_ms)
                .execute(&mut *tx)
                .await?;
            let done = sqlx::query("DELETE FROM audit_events WHERE at_ms < $1")
                .bind(before_ms)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE audit_prune_gate SET before_ms = 0 WHERE id = 1")
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(done.rows_affected())
        })
    }
}

#[async_trait]
impl Stats for SqlStore {
    async fn stats(&self, now_ms: i64) -> Result<StoreStats> {
        let week = now_ms.saturating_add(7 * DAY_MS);
        let month = now_ms.saturating_add(30 * DAY_MS);
        db_run!(&self.pool, |p| {
            let certificates_by_status: Vec<(String, i64)> = sqlx::query_as(
                "SELECT CASE WHEN status IN ('ISSUED', 'UPLOAD') AND not_after_ms IS NOT NULL \
                 AND not_after_ms <= $1 THEN 'EXPIRED' ELSE status END AS s, COUNT(*) \
                 FROM certificates GROUP BY s ORDER BY s",
            )
            .bind(now_ms)
            .fetch_all(p)
            .await?;
            let (expiring_7d, expiring_30d): (i64, i64) = sqlx::query_as(
                "SELECT COALESCE(SUM(CASE WHEN not_after_ms <= $2 THEN 1 ELSE 0 END), 0), \
                 COUNT(*) FROM certificates WHERE status IN ('ISSUED', 'UPLOAD') \
                 AND not_after_ms > $1 AND not_after_ms <= $3",
            )
            .bind(now_ms)
            .bind(week)
            .bind(month)
            .fetch_one(p)
            .await?;
            // One scan of the history for both views.
            let deliveries: Vec<(String, String, i64)> = sqlx::query_as(
                "SELECT targets, outcome, COUNT(*) FROM push_records GROUP BY targets, outcome \
                 ORDER BY targets, outcome",
            )
            .fetch_all(p)
            .await?;
            let mut pushes_by_outcome: Vec<(String, i64)> = Vec::new();
            for (_, outcome, n) in &deliveries {
                match pushes_by_outcome.iter_mut().find(|(o, _)| o == outcome) {
                    Some((_, total)) => *total += n,
                    None => pushes_by_outcome.push((outcome.clone(), *n)),
                }
            }
            pushes_by_outcome.sort();
            let deployment_health: Vec<DeploymentHealth> = sqlx::query_as(
                "SELECT target, \
                 COALESCE(SUM(CASE WHEN failing_version IS NOT NULL THEN 1 ELSE 0 END), 0) \
                 AS failing, \
                 COALESCE(SUM(CASE WHEN failing_version IS NOT NULL AND not_served = 1 \
                 THEN 1 ELSE 0 END), 0) AS not_serving, \
                 COALESCE(SUM(CASE WHEN drift_ms IS NOT NULL THEN 1 ELSE 0 END), 0) AS drifted \
                 FROM deployments \
                 WHERE failing_version IS NOT NULL OR drift_ms IS NOT NULL \
                 GROUP BY target ORDER BY target",
            )
            .fetch_all(p)
            .await?;
            let jobs: Vec<(String, String, i64)> = sqlx::query_as(
                "SELECT kind, state, COUNT(*) FROM jobs GROUP BY kind, state ORDER BY kind, state",
            )
            .fetch_all(p)
            .await?;
            let (audit_events,): (i64,) =
                sqlx::query_as("SELECT COALESCE(MAX(id) - MIN(id) + 1, 0) FROM audit_events")
                    .fetch_one(p)
                    .await?;
            let (csrs,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM csrs")
                .fetch_one(p)
                .await?;
            let (validations_pending,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM certificates WHERE status = 'CHECKING_DOMAIN' \
                 OR validation_started_ms IS NOT NULL",
            )
            .fetch_one(p)
            .await?;
            let (renewals_due,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM certificates WHERE renew_at_ms <= $1 \
                 AND status IN ('ISSUED', 'EXPIRED')",
            )
            .bind(now_ms)
            .fetch_one(p)
            .await?;
            let (next_renewable_expiry_ms,): (Option<i64>,) = sqlx::query_as(
                "SELECT MIN(not_after_ms) FROM certificates WHERE renew_at_ms IS NOT NULL \
                 AND status IN ('ISSUED', 'EXPIRED')",
            )
            .fetch_one(p)
            .await?;
            let acme_orders: Vec<(String, String, i64)> = sqlx::query_as(
                "SELECT issuer, state, COUNT(*) FROM acme_orders \
                 WHERE state NOT IN ('done', 'failed', 'withdrawn') \
                 GROUP BY issuer, state ORDER BY issuer, state",
            )
            .fetch_all(p)
            .await?;
            let (acme_names_stopped,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM acme_name_failures WHERE failures >= 5 AND last_ms > $1",
            )
            .bind(now_ms.saturating_sub(86_400_000))
            .fetch_one(p)
            .await?;
            let acme_paused: Vec<String> = sqlx::query_scalar(
                "SELECT issuer FROM acme_accounts WHERE paused_until_ms > $1 ORDER BY issuer",
            )
            .bind(now_ms)
            .fetch_all(p)
            .await?;
            Ok(StoreStats {
                certificates_by_status,
                expiring_7d,
                expiring_30d,
                pushes_by_outcome,
                deliveries,
                deployment_health,
                jobs,
                audit_events,
                csrs,
                validations_pending,
                renewals_due,
                next_renewable_expiry_ms,
                acme_orders,
                acme_names_stopped,
                acme_paused,
            })
        })
    }

    async fn ping(&self) -> Result<()> {
        db_run!(&self.pool, |p| {
            let (_,): (i32,) = sqlx::query_as("SELECT 1").fetch_one(p).await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn targets_round_trip_through_their_column_and_patterns_are_literal() {
        assert_eq!(joined_targets(&["a".into(), "b".into()]), ",a,b,");
        assert_eq!(joined_targets(&[]), ",");
        assert_eq!(joined_targets(&["x,y".into(), "z".into()]), ",z,");
        assert_eq!(target_pattern("scs_1%"), "%,scs\\_1\\%,%");
    }
}
