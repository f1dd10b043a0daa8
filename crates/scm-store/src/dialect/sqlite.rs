//! SQLite statements. SQLite has one writer at a time, so a single `UPDATE ... RETURNING` that
//! picks and leases jobs is atomic without row locks.

use super::Statements;

pub(super) const SQL: Statements = Statements {
    alloc_certificate_ids: "UPDATE id_alloc SET last_ms = MAX(last_ms + $1, $2) \
        WHERE name = 'certificate' RETURNING last_ms",
    claim_jobs: concat!(
        "UPDATE jobs SET ",
        lease!(),
        " WHERE id IN (SELECT id FROM jobs WHERE ",
        claimable!(),
        " ORDER BY due_ms, id LIMIT $4) RETURNING ",
        job_cols!()
    ),
    legacy_migrations_exist: "SELECT COUNT(*) FROM sqlite_master \
        WHERE type = 'table' AND name = 'openscm_migrations'",
    notify_enqueued: None,
};
