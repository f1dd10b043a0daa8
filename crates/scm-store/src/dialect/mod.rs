//! The statements whose SQL differs between the backends, one [`Statements`] per backend
//! ([`sqlite`], [`postgres`]). Everything else is written once (see [`crate::pool::db_run`]).

/// Columns of a job row, in [`crate::records::JobRow`] order.
macro_rules! job_cols {
    () => {
        "id, kind, payload, dedupe_key, state, due_ms, attempts, max_attempts, last_error, \
         lease_owner, lease_expires_ms, created_ms, updated_ms, finished_ms"
    };
}

/// What makes a job claimable at time `$2`: due and pending, or leased by a worker whose lease
/// expired (it died or hung).
macro_rules! claimable {
    () => {
        "((state = 'pending' AND due_ms <= $2) OR (state = 'running' AND lease_expires_ms < $2))"
    };
}

/// The lease taken by a claim: owner `$1`, until `$2 + $3`, one more attempt.
macro_rules! lease {
    () => {
        "state = 'running', lease_owner = $1, lease_expires_ms = $2 + $3, attempts = attempts + 1, \
         updated_ms = $2"
    };
}

pub(crate) use job_cols;

mod postgres;
mod sqlite;

/// Backend-specific statements.
pub(crate) struct Statements {
    /// Moves the certificate id allocator to `max(last + $1, $2)` and returns the new value.
    pub alloc_certificate_ids: &'static str,
    /// Claims up to `$4` claimable jobs for owner `$1` at time `$2` with a lease of `$3` ms,
    /// returning them (see [`crate::Jobs::claim`]).
    pub claim_jobs: &'static str,
    /// Whether the legacy migration table of OpenSCM 0.1 exists.
    pub legacy_migrations_exist: &'static str,
    /// Tells the other processes that a job was queued (run in the queuing transaction, so the
    /// signal goes out when it commits); `None` where the backend has no notifications.
    pub notify_enqueued: Option<&'static str>,
}

/// The PostgreSQL notification channel for queued jobs.
pub(crate) const JOBS_CHANNEL: &str = "openscm_jobs";

/// The statements of a backend, named by its sqlx database type.
pub(crate) trait Dialect: sqlx::Database {
    /// This backend's statements.
    const SQL: Statements;
}

impl Dialect for sqlx::Sqlite {
    const SQL: Statements = sqlite::SQL;
}

impl Dialect for sqlx::Postgres {
    const SQL: Statements = postgres::SQL;
}

/// The statements for the backend of `pool` (lets a [`crate::pool::db_run`] body pick them).
pub(crate) fn of<DB: Dialect>(_pool: &sqlx::Pool<DB>) -> &'static Statements {
    &DB::SQL
}

/// Claims job `$4` if it is claimable (same on both backends: one row, by primary key).
pub(crate) const CLAIM_ONE: &str = concat!(
    "UPDATE jobs SET ",
    lease!(),
    " WHERE id = $4 AND ",
    claimable!(),
    " RETURNING ",
    job_cols!()
);
