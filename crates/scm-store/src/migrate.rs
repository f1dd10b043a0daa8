//! A small migration runner: numbered SQL files per backend, applied in order inside a transaction,
//! recorded in `openscm_migrations`. (sqlx's `migrate!` needs the macros feature, which we keep off.)

use sqlx::{AnyPool, Executor};

use crate::sql::Backend;
use crate::{Result, StoreError};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sqlite: include_str!("../migrations/sqlite/0001_initial.sql"),
        postgres: include_str!("../migrations/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "revision",
        sqlite: include_str!("../migrations/sqlite/0002_revision.sql"),
        postgres: include_str!("../migrations/postgres/0002_revision.sql"),
    },
];

/// Applies pending migrations. On PostgreSQL an advisory lock keeps two starting servers from
/// migrating at once; on SQLite the write lock of the transaction does the same.
pub(crate) async fn run(pool: &AnyPool, backend: Backend) -> Result<()> {
    let mut conn = pool.acquire().await?;
    if backend == Backend::Postgres {
        conn.execute("SELECT pg_advisory_lock(7151254931)").await?;
    }
    let outcome = apply_pending(&mut conn, backend).await;
    if backend == Backend::Postgres {
        conn.execute("SELECT pg_advisory_unlock(7151254931)")
            .await?;
    }
    outcome
}

async fn apply_pending(conn: &mut sqlx::AnyConnection, backend: Backend) -> Result<()> {
    conn.execute(
        "CREATE TABLE IF NOT EXISTS openscm_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL)",
    )
    .await?;
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM openscm_migrations ORDER BY version")
            .fetch_all(&mut *conn)
            .await?;
    let newest_known = MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0);
    if let Some(newest) = applied.iter().max()
        && *newest > newest_known
    {
        return Err(StoreError::Migration(format!(
            "database schema version {newest} is newer than this binary supports ({newest_known})"
        )));
    }
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        let sql = match backend {
            Backend::Sqlite => m.sqlite,
            Backend::Postgres => m.postgres,
        };
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::Migration(format!("{} ({}): {e}", m.version, m.name)))?;
        sqlx::query("INSERT INTO openscm_migrations (version, name) VALUES ($1, $2)")
            .bind(m.version)
            .bind(m.name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
    }
    Ok(())
}
