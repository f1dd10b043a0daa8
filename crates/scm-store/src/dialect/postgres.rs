//! PostgreSQL statements. Several servers share one database: job claims lock the rows they take
//! and skip rows another worker has locked (`FOR UPDATE SKIP LOCKED`), so two workers never lease
//! the same job and never wait on each other; a queued job is announced with `NOTIFY`, so the
//! other servers' workers claim it at once instead of at their next poll.

use super::Statements;

/// The database's clock, in Unix milliseconds: the server's `clock_timestamp()` (the time of the
/// statement, not of its transaction's start), one clock for every OpenSCM process on it.
macro_rules! now_ms {
    () => {
        "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT"
    };
}

pub(super) const SQL: Statements = Statements {
    alloc_certificate_ids: "UPDATE id_alloc SET last_ms = GREATEST(last_ms + $1, $2) \
        WHERE name = 'certificate' RETURNING last_ms",
    claim_jobs: concat!(
        "UPDATE jobs SET ",
        lease!(now_ms!()),
        " WHERE id IN (SELECT id FROM jobs WHERE ",
        claimable!(now_ms!()),
        " ORDER BY due_ms, id LIMIT $4 FOR UPDATE SKIP LOCKED) RETURNING ",
        job_cols!()
    ),
    claim_job: claim_job!(now_ms!()),
    renew_lease: renew_lease!(now_ms!()),
    now_ms: concat!("SELECT ", now_ms!()),
    legacy_migrations_exist: "SELECT COUNT(*) FROM pg_catalog.pg_tables \
        WHERE schemaname = current_schema() AND tablename = 'openscm_migrations'",
    notify_enqueued: Some("SELECT pg_notify('openscm_jobs', '')"),
};
