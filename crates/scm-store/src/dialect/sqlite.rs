//! SQLite statements. SQLite has one writer at a time, so a single `UPDATE ... RETURNING` that
//! picks and leases jobs is atomic without row locks.

use super::Statements;

/// The database's clock, in Unix milliseconds: that of the machine that holds the file (every
/// process using it runs there), `julianday('now')`.
macro_rules! now_ms {
    () => {
        "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
    };
}

pub(super) const SQL: Statements = Statements {
    alloc_certificate_ids: "UPDATE id_alloc SET last_ms = MAX(last_ms + $1, $2) \
        WHERE name = 'certificate' RETURNING last_ms",
    claim_jobs: concat!(
        "UPDATE jobs SET ",
        lease!(now_ms!()),
        " WHERE id IN (SELECT id FROM jobs WHERE ",
        claimable!(now_ms!()),
        " ORDER BY due_ms, id LIMIT $4) RETURNING ",
        job_cols!()
    ),
    claim_job: claim_job!(now_ms!()),
    renew_lease: renew_lease!(now_ms!()),
    now_ms: concat!("SELECT ", now_ms!()),
    legacy_migrations_exist: "SELECT COUNT(*) FROM sqlite_master \
        WHERE type = 'table' AND name = 'openscm_migrations'",
    notify_enqueued: None,
};
