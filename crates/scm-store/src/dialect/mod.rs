//! The statements whose SQL differs between the backends, one [`Statements`] per backend
//! ([`sqlite`], [`postgres`]). Everything else is written once (see [`crate::pool::db_run`]).

/// Columns of a job row, in [`crate::records::JobRow`] order.
macro_rules! job_cols {
    () => {
        "id, kind, payload, dedupe_key, state, due_ms, attempts, max_attempts, last_error, \
         lease_owner, lease_token, lease_expires_ms, created_ms, updated_ms, finished_ms"
    };
}

/// What makes a job claimable: due and pending at time `$2` (the caller's clock, which tests
/// drive), or leased by a worker whose lease expired (it died or hung) on the database's clock
/// (`$now`, the backend's expression for it), so that replicas whose clocks differ agree on it.
macro_rules! claimable {
    ($($now:tt)+) => {
        concat!(
            "((state = 'pending' AND due_ms <= $2) OR (state = 'running' AND lease_expires_ms < ",
            $($now)+,
            "))"
        )
    };
}

/// The lease taken by a claim: owner `$1`, a new token, until `$3` ms after the database's
/// clock (`$now`), one more attempt; `$2` is the caller's time, for `updated_ms`.
macro_rules! lease {
    ($($now:tt)+) => {
        concat!(
            "state = 'running', lease_owner = $1, lease_token = lease_token + 1, \
             lease_expires_ms = ",
            $($now)+,
            " + $3, attempts = attempts + 1, updated_ms = $2"
        )
    };
}

/// Claims job `$4` if it is claimable (one row, by primary key); `$now` is the backend's clock.
macro_rules! claim_job {
    ($($now:tt)+) => {
        concat!(
            "UPDATE jobs SET ",
            lease!($($now)+),
            " WHERE id = $4 AND ",
            claimable!($($now)+),
            " RETURNING ",
            job_cols!()
        )
    };
}

/// Extends lease (`$2` owner, `$3` token) of job `$1` to `$4` ms after the database's clock.
macro_rules! renew_lease {
    ($($now:tt)+) => {
        concat!(
            "UPDATE jobs SET lease_expires_ms = ",
            $($now)+,
            " + $4 WHERE id = $1 AND lease_owner = $2 AND lease_token = $3 AND state = 'running'"
        )
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
    /// Claims job `$4` for owner `$1` at time `$2` with a lease of `$3` ms if it is claimable,
    /// returning it (see [`crate::Jobs::claim_one`]).
    pub claim_job: &'static str,
    /// Extends the lease of job `$1` held by owner `$2` with token `$3` to `$4` ms from now (see
    /// [`crate::Jobs::renew_lease`]).
    pub renew_lease: &'static str,
    /// Reads the database's clock, in Unix milliseconds, the clock leases are set and compared on
    /// (the storage suite checks leases against it).
    #[cfg_attr(not(test), allow(dead_code))]
    pub now_ms: &'static str,
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
