//! Typed connection pools, one per backend, and [`db_run!`]: one query body run on whichever pool
//! the store has, for the (many) statements whose SQL is the same on both.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::{DatabaseUrl, Result, StoreError};

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file (the default).
    Sqlite,
    /// PostgreSQL server (several OpenSCM processes may share it).
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// The pool of the configured backend.
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$p` bound to the typed pool (`&SqlitePool` or `&PgPool`). The body is
/// compiled once per backend, so binds and row decoding are checked against each driver.
macro_rules! db_run {
    ($pool:expr, |$p:ident| $body:expr) => {
        match $pool {
            $crate::pool::Pool::Sqlite($p) => $body,
            $crate::pool::Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use db_run;

impl Pool {
    pub(crate) async fn connect(url: &DatabaseUrl, acquire_timeout: Duration) -> Result<Self> {
        match url.backend() {
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(url.expose())
                    .map_err(|e| StoreError::Config(e.to_string()))?
                    // WAL: readers don't block the writer. synchronous=FULL: a commit is on disk
                    // before we answer, so an acknowledged order or issuance survives power loss.
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_secs(30))
                    .foreign_keys(true)
                    // `sqlite://PATH` creates a new database, as `?mode=rwc` does.
                    .create_if_missing(true);
                // One writer at a time is SQLite's model; a few connections let reads run beside it.
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(acquire_timeout)
                    .connect_with(options)
                    .await?;
                Ok(Self::Sqlite(pool))
            }
            Backend::Postgres => {
                // TLS follows the URL's `sslmode` (libpq's default `prefer`: TLS when the server
                // offers it; `require`, `verify-ca`, `verify-full` with `sslrootcert=`).
                let options = PgConnectOptions::from_str(url.expose())
                    .map_err(|e| StoreError::Config(redact_error(&e, url)))?;
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(acquire_timeout)
                    .connect_with(options)
                    .await?;
                Ok(Self::Postgres(pool))
            }
        }
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    pub(crate) async fn close(&self) {
        db_run!(self, |p| p.close().await)
    }
}

/// A driver error about the URL, with the URL's secret (if the driver echoed it) removed.
fn redact_error(e: &sqlx::Error, url: &DatabaseUrl) -> String {
    e.to_string().replace(url.expose(), &url.redacted())
}

/// Maps a unique-key violation to [`StoreError::Conflict`].
pub(crate) fn conflict_or(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_owned())
        }
        _ => StoreError::Database(e),
    }
}

/// A row that does not parse.
pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

/// Bumps the access revision (inside the caller's transaction): run by every write to what the
/// access caches hold, credentials (their status, and any access key created: it may be
/// remembered as unknown) and accounts (their policy and settings). Tokens, projects and
/// quotas are read from the store every time and move nothing. A write that changes both sides
/// runs this one first, then [`BUMP_CERTIFICATES`] (one lock order on PostgreSQL's rows).
pub(crate) const BUMP_ACCESS: &str = "UPDATE revision SET n = n + 1 WHERE id = 1";

/// Bumps the certificates revision (inside the caller's transaction): run by every write to
/// what the certificate caches hold, a certificate row (application, material, status,
/// versions, renewal and validation state, CA) with its tags, and its successful pushes (the
/// cached history holds no failed one). Jobs, events, reminders, notices, CRLs and validation
/// records are not cached and move nothing.
pub(crate) const BUMP_CERTIFICATES: &str = "UPDATE revision SET n = n + 1 WHERE id = 2";
