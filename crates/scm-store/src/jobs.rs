//! [`Jobs`]: the durable job queue, with leases.

use async_trait::async_trait;

use crate::deployments::apply_deployment;
use crate::dialect::{self, JOBS_CHANNEL, job_cols};
use crate::notices::record_reminder;
use crate::pool::{BUMP_CERTIFICATES, Pool, corrupt, db_run};
use crate::pushes::insert_push;
use crate::records::{
    JobEffect, JobId, JobLease, JobOutcome, JobRecord, JobState, NewJob, PushOutcome,
};
use crate::revocations::store_crl;
use crate::{Jobs, Result, SqlStore, StoreError};

struct JobRow {
    id: i64,
    kind: String,
    payload: String,
    dedupe_key: Option<String>,
    state: String,
    due_ms: i64,
    attempts: i64,
    max_attempts: i64,
    last_error: Option<String>,
    lease_owner: Option<String>,
    lease_token: i64,
    lease_expires_ms: Option<i64>,
    created_ms: i64,
    updated_ms: i64,
    finished_ms: Option<i64>,
}

crate::row::from_row!(JobRow {
    id,
    kind,
    payload,
    dedupe_key,
    state,
    due_ms,
    attempts,
    max_attempts,
    last_error,
    lease_owner,
    lease_token,
    lease_expires_ms,
    created_ms,
    updated_ms,
    finished_ms
});

impl TryFrom<JobRow> for JobRecord {
    type Error = StoreError;
    fn try_from(r: JobRow) -> Result<Self> {
        Ok(Self {
            id: JobId(r.id),
            kind: r.kind,
            payload: r.payload,
            dedupe_key: r.dedupe_key,
            state: JobState::parse(&r.state).ok_or_else(|| corrupt("jobs.state"))?,
            due_ms: r.due_ms,
            attempts: u32::try_from(r.attempts).map_err(|_| corrupt("jobs.attempts"))?,
            max_attempts: u32::try_from(r.max_attempts)
                .map_err(|_| corrupt("jobs.max_attempts"))?,
            last_error: r.last_error,
            lease_owner: r.lease_owner,
            lease_token: r.lease_token,
            lease_expires_ms: r.lease_expires_ms,
            created_ms: r.created_ms,
            updated_ms: r.updated_ms,
            finished_ms: r.finished_ms,
        })
    }
}

fn records(rows: Vec<JobRow>) -> Result<Vec<JobRecord>> {
    rows.into_iter().map(TryInto::try_into).collect()
}

/// Errors are stored for operators; keep them to a sane size.
fn clip(error: &str) -> String {
    error.chars().take(2000).collect()
}

/// Inserts `$job` with executor `$e` unless a live job has its dedupe key; evaluates to
/// `Result<Option<i64>, sqlx::Error>` (the new id, or `None` when the key was taken).
macro_rules! insert_job {
    ($e:expr, $job:expr) => {{
        let job: &NewJob = $job;
        sqlx::query_scalar(
            "INSERT INTO jobs (kind, payload, dedupe_key, state, due_ms, attempts, max_attempts, \
             created_ms, updated_ms) VALUES ($1, $2, $3, 'pending', $4, 0, $5, $6, $6) \
             ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND state IN ('pending', 'running') \
             DO NOTHING RETURNING id",
        )
        .bind(job.kind.as_str())
        .bind(job.payload.as_str())
        .bind(job.dedupe_key.as_deref())
        .bind(job.due_ms)
        .bind(i64::from(job.max_attempts))
        .bind(job.created_ms)
        .fetch_optional($e)
        .await
    }};
}
pub(crate) use insert_job;

/// Queues `$job` in transaction `$tx` of pool `$p` (the effect [`JobEffect::Enqueue`]), unless a
/// live job has its dedupe key: then nothing is queued, which is what the key is for (logged at
/// debug level, for diagnosis). Returns from the enclosing function on a database error.
macro_rules! enqueue_effect {
    ($tx:ident, $p:ident, $job:expr) => {{
        let job: &NewJob = $job;
        let inserted: Option<i64> = insert_job!(&mut *$tx, job)?;
        match inserted {
            Some(_) => {
                if let Some(notify) = dialect::of($p).notify_enqueued {
                    sqlx::query(notify).execute(&mut *$tx).await?;
                }
            }
            None => tracing::debug!(
                kind = %job.kind,
                dedupe_key = job.dedupe_key.as_deref().unwrap_or_default(),
                "job not queued: a live job has its dedupe key"
            ),
        }
    }};
}

/// Applies `$effect` in transaction `$tx` of pool `$p` at `$now`: each kind of effect is written
/// by the aggregate it belongs to. Returns from the enclosing function on a database error;
/// evaluates to whether the certificates revision must move (a cached read changed).
macro_rules! apply_effect {
    ($tx:ident, $p:ident, $effect:expr, $now:expr) => {{
        match $effect {
            JobEffect::RecordPush(rec) => {
                insert_push!(&mut *$tx, rec)?;
                // The cached history holds only successful pushes.
                rec.outcome == PushOutcome::Success
            }
            JobEffect::Enqueue(job) => {
                enqueue_effect!($tx, $p, job);
                false
            }
            JobEffect::Deployment(change) => {
                apply_deployment!(&mut *$tx, change)?;
                false
            }
            JobEffect::StoreCrl { crl, covers, next } => {
                store_crl!($tx, crl, *covers, next, $now);
                if let Some(notify) = dialect::of($p).notify_enqueued {
                    sqlx::query(notify).execute(&mut *$tx).await?;
                }
                false
            }
            JobEffect::RecordReminder(step) => record_reminder!($tx, step),
        }
    }};
}

#[async_trait]
impl Jobs for SqlStore {
    async fn enqueue(&self, job: &NewJob) -> Result<JobId> {
        db_run!(&self.pool, |p| {
            // With a key, a live job of the same key wins: the insert does nothing and we return
            // that job. The loop covers the gap where it ends between our insert and our select.
            for _ in 0..3 {
                let inserted: Option<i64> = insert_job!(p, job)?;
                if let Some(id) = inserted {
                    if let Some(notify) = dialect::of(p).notify_enqueued {
                        sqlx::query(notify).execute(p).await?;
                    }
                    return Ok(JobId(id));
                }
                let live: Option<i64> = sqlx::query_scalar(
                    "SELECT id FROM jobs WHERE dedupe_key = $1 AND state IN ('pending', 'running')",
                )
                .bind(job.dedupe_key.as_deref())
                .fetch_optional(p)
                .await?;
                if let Some(id) = live {
                    return Ok(JobId(id));
                }
            }
            Err(StoreError::Conflict(
                "job idempotency key keeps changing hands".into(),
            ))
        })
    }

    async fn claim(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<JobRecord>> {
        let rows: Vec<JobRow> = db_run!(&self.pool, |p| {
            sqlx::query_as(dialect::of(p).claim_jobs)
                .bind(owner)
                .bind(now_ms)
                .bind(lease_ms)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await?
        });
        // RETURNING does not keep the subquery's order: hand them out oldest due first.
        let mut jobs = records(rows)?;
        jobs.sort_by_key(|j| (j.due_ms, j.id));
        Ok(jobs)
    }

    async fn claim_one(
        &self,
        id: JobId,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<JobRecord>> {
        let row: Option<JobRow> = db_run!(&self.pool, |p| {
            sqlx::query_as(dialect::of(p).claim_job)
                .bind(owner)
                .bind(now_ms)
                .bind(lease_ms)
                .bind(id.0)
                .fetch_optional(p)
                .await?
        });
        row.map(TryInto::try_into).transpose()
    }

    async fn renew_lease(&self, lease: &JobLease, lease_ms: i64) -> Result<bool> {
        db_run!(&self.pool, |p| {
            let done = sqlx::query(dialect::of(p).renew_lease)
                .bind(lease.id.0)
                .bind(lease.owner.as_str())
                .bind(lease.token)
                .bind(lease_ms)
                .execute(p)
                .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    async fn finish(
        &self,
        lease: &JobLease,
        outcome: &JobOutcome,
        effects: &[JobEffect],
        now_ms: i64,
    ) -> Result<bool> {
        // (state, next due, error, end, attempts given back)
        let (state, due_ms, error, finished_ms, uncounted) = match outcome {
            // A job done has no error to show: the failures of its earlier attempts are in the
            // history of what it did (a push's attempts), not on the job.
            JobOutcome::Done => (JobState::Done, None, None, Some(now_ms), 0_i64),
            JobOutcome::Wait { due_ms } => (JobState::Pending, Some(*due_ms), None, None, 1),
            JobOutcome::Retry { due_ms, error } => {
                (JobState::Pending, Some(*due_ms), Some(clip(error)), None, 0)
            }
            JobOutcome::Failed { error } => {
                (JobState::Failed, None, Some(clip(error)), Some(now_ms), 0)
            }
        };
        db_run!(&self.pool, |p| {
            let mut tx = p.begin().await?;
            let done = sqlx::query(
                "UPDATE jobs SET state = $1, due_ms = COALESCE($2, due_ms), \
                 last_error = CASE WHEN $1 = 'done' THEN NULL ELSE COALESCE($3, last_error) END, \
                 finished_ms = $4, \
                 attempts = attempts - $5, lease_owner = NULL, lease_expires_ms = NULL, \
                 updated_ms = $6 \
                 WHERE id = $7 AND lease_owner = $8 AND lease_token = $9 AND state = 'running'",
            )
            .bind(state.as_str())
            .bind(due_ms)
            .bind(error.as_deref())
            .bind(finished_ms)
            .bind(uncounted)
            .bind(now_ms)
            .bind(lease.id.0)
            .bind(lease.owner.as_str())
            .bind(lease.token)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                // The lease was lost (expired and claimed again): nothing of this attempt is
                // recorded; the new holder will do the work.
                tx.rollback().await?;
                return Ok(false);
            }
            let mut bump = false;
            for effect in effects {
                bump |= apply_effect!(tx, p, effect, now_ms);
            }
            if bump {
                sqlx::query(BUMP_CERTIFICATES).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    async fn hasten(&self, id: JobId, now_ms: i64) -> Result<bool> {
        db_run!(&self.pool, |p| {
            let done = sqlx::query(
                "UPDATE jobs SET due_ms = $2 WHERE id = $1 AND state = 'pending' AND due_ms > $2",
            )
            .bind(id.0)
            .bind(now_ms)
            .execute(p)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    async fn release(&self, lease: &JobLease, now_ms: i64) -> Result<bool> {
        db_run!(&self.pool, |p| {
            let done = sqlx::query(
                "UPDATE jobs SET state = 'pending', attempts = attempts - 1, due_ms = $1, \
                 lease_owner = NULL, lease_expires_ms = NULL, updated_ms = $1 \
                 WHERE id = $2 AND lease_owner = $3 AND lease_token = $4 AND state = 'running'",
            )
            .bind(now_ms)
            .bind(lease.id.0)
            .bind(lease.owner.as_str())
            .bind(lease.token)
            .execute(p)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    async fn job(&self, id: JobId) -> Result<Option<JobRecord>> {
        let row: Option<JobRow> = db_run!(&self.pool, |p| {
            sqlx::query_as(concat!("SELECT ", job_cols!(), " FROM jobs WHERE id = $1"))
                .bind(id.0)
                .fetch_optional(p)
                .await?
        });
        row.map(TryInto::try_into).transpose()
    }

    async fn jobs(&self, state: Option<JobState>, limit: u32) -> Result<Vec<JobRecord>> {
        let rows: Vec<JobRow> = db_run!(&self.pool, |p| {
            sqlx::query_as(concat!(
                "SELECT ",
                job_cols!(),
                " FROM jobs WHERE ($1 IS NULL OR state = $1) ORDER BY id DESC LIMIT $2"
            ))
            .bind(state.map(JobState::as_str))
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?
        });
        records(rows)
    }

    async fn purge_finished(&self, before_ms: i64) -> Result<u64> {
        db_run!(&self.pool, |p| {
            let done = sqlx::query(
                "DELETE FROM jobs WHERE state IN ('done', 'failed') AND finished_ms < $1",
            )
            .bind(before_ms)
            .execute(p)
            .await?;
            Ok(done.rows_affected())
        })
    }

    async fn watch_enqueued(&self, wake: &(dyn Fn() + Send + Sync)) -> Result<()> {
        match &self.pool {
            Pool::Sqlite(_) => std::future::pending().await,
            Pool::Postgres(pool) => {
                let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
                listener.listen(JOBS_CHANNEL).await?;
                loop {
                    listener.recv().await?;
                    wake();
                }
            }
        }
    }
}
