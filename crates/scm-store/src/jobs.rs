//! [`Jobs`]: the durable job queue, with leases.

use async_trait::async_trait;

use crate::dialect::{self, CLAIM_ONE, JOBS_CHANNEL, job_cols};
use crate::pool::{BUMP, Pool, corrupt, db_run};
use crate::pushes::insert_push;
use crate::records::{JobEffect, JobId, JobOutcome, JobRecord, JobState, NewJob};
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
            sqlx::query_as(CLAIM_ONE)
                .bind(owner)
                .bind(now_ms)
                .bind(lease_ms)
                .bind(id.0)
                .fetch_optional(p)
                .await?
        });
        row.map(TryInto::try_into).transpose()
    }

    async fn renew_lease(
        &self,
        id: JobId,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<bool> {
        db_run!(&self.pool, |p| {
            let done = sqlx::query(
                "UPDATE jobs SET lease_expires_ms = $1 + $2, updated_ms = $1 \
                 WHERE id = $3 AND lease_owner = $4 AND state = 'running'",
            )
            .bind(now_ms)
            .bind(lease_ms)
            .bind(id.0)
            .bind(owner)
            .execute(p)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    async fn finish(
        &self,
        id: JobId,
        owner: &str,
        outcome: &JobOutcome,
        effects: &[JobEffect],
        now_ms: i64,
    ) -> Result<bool> {
        let (state, due_ms, error, finished_ms) = match outcome {
            JobOutcome::Done => (JobState::Done, None, None, Some(now_ms)),
            JobOutcome::Retry { due_ms, error } => {
                (JobState::Pending, Some(*due_ms), Some(clip(error)), None)
            }
            JobOutcome::Failed { error } => {
                (JobState::Failed, None, Some(clip(error)), Some(now_ms))
            }
        };
        db_run!(&self.pool, |p| {
            let mut tx = p.begin().await?;
            let done = sqlx::query(
                "UPDATE jobs SET state = $1, due_ms = COALESCE($2, due_ms), \
                 last_error = COALESCE($3, last_error), finished_ms = $4, lease_owner = NULL, \
                 lease_expires_ms = NULL, updated_ms = $5 \
                 WHERE id = $6 AND lease_owner = $7 AND state = 'running'",
            )
            .bind(state.as_str())
            .bind(due_ms)
            .bind(error.as_deref())
            .bind(finished_ms)
            .bind(now_ms)
            .bind(id.0)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                // The lease was lost (expired and taken by another worker): nothing of this
                // attempt is recorded; the new holder will do the work.
                tx.rollback().await?;
                return Ok(false);
            }
            let mut bump = false;
            for effect in effects {
                match effect {
                    JobEffect::RecordPush(rec) => {
                        insert_push!(&mut *tx, rec)?;
                        bump = true;
                    }
                    JobEffect::Enqueue(job) => {
                        let _: Option<i64> = insert_job!(&mut *tx, job)?;
                        if let Some(notify) = dialect::of(p).notify_enqueued {
                            sqlx::query(notify).execute(&mut *tx).await?;
                        }
                    }
                    JobEffect::StoreCrl { crl, covers, next } => {
                        crate::revocations::store_crl!(tx, crl, *covers, next, now_ms);
                        if let Some(notify) = dialect::of(p).notify_enqueued {
                            sqlx::query(notify).execute(&mut *tx).await?;
                        }
                    }
                    JobEffect::RecordReminder {
                        cert_id,
                        notice_type,
                        not_after_ms,
                        sent_ms,
                    } => {
                        sqlx::query(
                            "INSERT INTO certificate_reminders (cert_id, notice_type, \
                             not_after_ms, sent_ms) SELECT id, $2, $3, $4 FROM certificates \
                             WHERE id = $1 ON CONFLICT DO NOTHING",
                        )
                        .bind(cert_id.as_str())
                        .bind(notice_type.as_str())
                        .bind(*not_after_ms)
                        .bind(*sent_ms)
                        .execute(&mut *tx)
                        .await?;
                        if notice_type == "CERT_EXPIRED" {
                            // Conditional: only what still reads as expired at this expiry.
                            let done = sqlx::query(
                                "UPDATE certificates SET status = 'EXPIRED', updated_ms = $1 \
                                 WHERE id = $2 AND status IN ('ISSUED', 'UPLOAD') \
                                 AND not_after_ms = $3 AND not_after_ms <= $1",
                            )
                            .bind(*sent_ms)
                            .bind(cert_id.as_str())
                            .bind(*not_after_ms)
                            .execute(&mut *tx)
                            .await?;
                            bump |= done.rows_affected() > 0;
                        }
                    }
                }
            }
            if bump {
                sqlx::query(BUMP).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    async fn release(&self, id: JobId, owner: &str, now_ms: i64) -> Result<bool> {
        db_run!(&self.pool, |p| {
            let done = sqlx::query(
                "UPDATE jobs SET state = 'pending', attempts = attempts - 1, due_ms = $1, \
                 lease_owner = NULL, lease_expires_ms = NULL, updated_ms = $1 \
                 WHERE id = $2 AND lease_owner = $3 AND state = 'running'",
            )
            .bind(now_ms)
            .bind(id.0)
            .bind(owner)
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
