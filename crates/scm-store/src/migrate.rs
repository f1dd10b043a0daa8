//! Migrations: sqlx's [`Migrator`] over numbered SQL files per backend, compiled in. sqlx keeps a
//! checksum of every applied migration (`_sqlx_migrations`), so a migration edited after it was
//! applied, or a database migrated by a newer binary, stops the start with a clear error; on
//! PostgreSQL it takes an advisory lock so two starting servers never migrate at once.

use std::borrow::Cow;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use crate::dialect;
use crate::pool::{Pool, db_run};
use crate::{Result, StoreError};

/// `(version, description, SQLite, PostgreSQL)`.
pub(crate) const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../migrations/sqlite/0001_initial.sql"),
        include_str!("../migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        "revision",
        include_str!("../migrations/sqlite/0002_revision.sql"),
        include_str!("../migrations/postgres/0002_revision.sql"),
    ),
    (
        3,
        "jobs",
        include_str!("../migrations/sqlite/0003_jobs.sql"),
        include_str!("../migrations/postgres/0003_jobs.sql"),
    ),
    // --- job lease ---
    (
        16,
        "job lease",
        include_str!("../migrations/sqlite/0016_job_lease.sql"),
        include_str!("../migrations/postgres/0016_job_lease.sql"),
    ),
    (
        4,
        "limits",
        include_str!("../migrations/sqlite/0004_limits.sql"),
        include_str!("../migrations/postgres/0004_limits.sql"),
    ),
    (
        7,
        "tags",
        include_str!("../migrations/sqlite/0007_tags.sql"),
        include_str!("../migrations/postgres/0007_tags.sql"),
    ),
    (
        8,
        "notices",
        include_str!("../migrations/sqlite/0008_notices.sql"),
        include_str!("../migrations/postgres/0008_notices.sql"),
    ),
    (
        9,
        "list",
        include_str!("../migrations/sqlite/0009_list.sql"),
        include_str!("../migrations/postgres/0009_list.sql"),
    ),
    (
        10,
        "audit",
        include_str!("../migrations/sqlite/0010_audit.sql"),
        include_str!("../migrations/postgres/0010_audit.sql"),
    ),
    (
        11,
        "token kind",
        include_str!("../migrations/sqlite/0011_token_kind.sql"),
        include_str!("../migrations/postgres/0011_token_kind.sql"),
    ),
    (
        13,
        "audit no delete",
        include_str!("../migrations/sqlite/0013_audit_no_delete.sql"),
        include_str!("../migrations/postgres/0013_audit_no_delete.sql"),
    ),
    // --- import ---
    (
        5,
        "import",
        include_str!("../migrations/sqlite/0005_import.sql"),
        include_str!("../migrations/postgres/0005_import.sql"),
    ),
    // --- csr ---
    (
        6,
        "csrs",
        include_str!("../migrations/sqlite/0006_csrs.sql"),
        include_str!("../migrations/postgres/0006_csrs.sql"),
    ),
    // --- import ---
    (
        12,
        "chain trust",
        include_str!("../migrations/sqlite/0012_chain_trust.sql"),
        include_str!("../migrations/postgres/0012_chain_trust.sql"),
    ),
    // --- revocation ---
    (
        14,
        "revocation",
        include_str!("../migrations/sqlite/0014_revocation.sql"),
        include_str!("../migrations/postgres/0014_revocation.sql"),
    ),
    (
        15,
        "tenant ca",
        include_str!("../migrations/sqlite/0015_tenant_ca.sql"),
        include_str!("../migrations/postgres/0015_tenant_ca.sql"),
    ),
    (
        17,
        "lifecycle",
        include_str!("../migrations/sqlite/0017_lifecycle.sql"),
        include_str!("../migrations/postgres/0017_lifecycle.sql"),
    ),
    (
        18,
        "revisions",
        include_str!("../migrations/sqlite/0018_revisions.sql"),
        include_str!("../migrations/postgres/0018_revisions.sql"),
    ),
    (
        19,
        "account_renewal",
        include_str!("../migrations/sqlite/0019_account_renewal.sql"),
        include_str!("../migrations/postgres/0019_account_renewal.sql"),
    ),
    (
        20,
        "deployments",
        include_str!("../migrations/sqlite/0020_deployments.sql"),
        include_str!("../migrations/postgres/0020_deployments.sql"),
    ),
    (
        21,
        "reminder schedule",
        include_str!("../migrations/sqlite/0021_reminder_schedule.sql"),
        include_str!("../migrations/postgres/0021_reminder_schedule.sql"),
    ),
    (
        22,
        "acme",
        include_str!("../migrations/sqlite/0022_acme.sql"),
        include_str!("../migrations/postgres/0022_acme.sql"),
    ),
];

fn migrator(postgres: bool) -> Migrator {
    // Applied in version order, whatever the order of the list.
    let mut ordered: Vec<_> = MIGRATIONS.iter().collect();
    ordered.sort_by_key(|m| m.0);
    Migrator::with_migrations(
        ordered
            .into_iter()
            .map(|(version, description, sqlite, pg)| {
                let sql = if postgres { *pg } else { *sqlite };
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

fn failed(e: sqlx::migrate::MigrateError) -> StoreError {
    StoreError::Migration(e.to_string())
}

/// Applies pending migrations.
///
/// OpenSCM 0.1 recorded its migrations in `openscm_migrations` (no checksums). A database it
/// created has exactly the schema of our first migrations: those are marked applied in sqlx's
/// table without being run, and the old table is dropped.
pub(crate) async fn run(pool: &Pool) -> Result<()> {
    let migrator = migrator(matches!(pool, Pool::Postgres(_)));
    db_run!(pool, |p| {
        let (legacy,): (i64,) = sqlx::query_as(dialect::of(p).legacy_migrations_exist)
            .fetch_one(p)
            .await?;
        if legacy > 0 {
            let (newest,): (i64,) =
                sqlx::query_as("SELECT COALESCE(MAX(version), 0) FROM openscm_migrations")
                    .fetch_one(p)
                    .await?;
            migrator.skip(p, Some(newest)).await.map_err(failed)?;
            sqlx::raw_sql("DROP TABLE IF EXISTS openscm_migrations")
                .execute(p)
                .await?;
            tracing::info!(version = newest, "adopted the migrations of OpenSCM 0.1");
        }
        migrator.run(p).await.map_err(failed)
    })
}
