//! [`Meta`]: the one-shot bootstrap, settings, the shared CA of stores made before migration 0015
//! and the change counters.

use async_trait::async_trait;

use crate::accounts::{insert_account, insert_credential, insert_project};
use crate::cas::insert_ca;
use crate::pool::{corrupt, db_run};
use crate::records::{Bootstrap, CaRecord};
use crate::{Meta, Result, SqlStore};

/// The store's change counters (table `revision`), one per side of the servers' read caches.
/// Each only grows; a reader compares it with the value it saw last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Revisions {
    /// Row 1: moves with every write to a credential or an account (its policy, its settings).
    pub access: i64,
    /// Row 2 (migration 0018): moves with every write to a certificate (application, material,
    /// status, versions, renewal and validation state, tags) or to its successful pushes.
    pub certificates: i64,
}

struct CaRow {
    root_cert_pem: String,
    root_key_sealed: Vec<u8>,
    intermediate_cert_pem: String,
    intermediate_key_sealed: Vec<u8>,
    created_ms: i64,
}

crate::row::from_row!(CaRow {
    root_cert_pem,
    root_key_sealed,
    intermediate_cert_pem,
    intermediate_key_sealed,
    created_ms
});

#[async_trait]
impl Meta for SqlStore {
    async fn bootstrap(&self, b: &Bootstrap) -> Result<bool> {
        db_run!(&self.pool, |p| {
            let mut tx = p.begin().await?;
            // The marker row is the lock: a second process racing us fails on the primary key and
            // leaves everything to the first.
            let claimed = sqlx::query("INSERT INTO meta (key, value) VALUES ('bootstrapped', $1)")
                .bind(b.account.domain_id.as_str())
                .execute(&mut *tx)
                .await;
            match claimed {
                Ok(_) => {}
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => return Ok(false),
                Err(e) => return Err(e.into()),
            }
            insert_account!(&mut *tx, &b.account)?;
            insert_project!(&mut *tx, &b.project)?;
            insert_credential!(&mut *tx, &b.credential)?;
            for ca in &b.cas {
                if !insert_ca!(&mut *tx, ca)? {
                    return Err(crate::StoreError::Conflict(format!("CA {}", ca.id)));
                }
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    async fn is_bootstrapped(&self) -> Result<bool> {
        Ok(self.meta("bootstrapped").await?.is_some())
    }

    async fn revisions(&self) -> Result<Revisions> {
        // One statement: both rows from one snapshot.
        let (access, certificates): (Option<i64>, Option<i64>) = db_run!(&self.pool, |p| {
            sqlx::query_as(
                "SELECT MAX(CASE WHEN id = 1 THEN n END), MAX(CASE WHEN id = 2 THEN n END) \
                 FROM revision",
            )
            .fetch_one(p)
            .await?
        });
        match (access, certificates) {
            (Some(access), Some(certificates)) => Ok(Revisions {
                access,
                certificates,
            }),
            _ => Err(corrupt("revision")),
        }
    }

    async fn meta(&self, key: &str) -> Result<Option<String>> {
        db_run!(&self.pool, |p| {
            Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
                .bind(key)
                .fetch_optional(p)
                .await?)
        })
    }

    async fn init_meta(&self, key: &str, value: &str) -> Result<String> {
        db_run!(&self.pool, |p| {
            sqlx::query(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(value)
            .execute(p)
            .await?;
        });
        self.meta(key).await?.ok_or_else(|| corrupt("meta"))
    }

    async fn ca(&self) -> Result<Option<CaRecord>> {
        let row: Option<CaRow> = db_run!(&self.pool, |p| {
            sqlx::query_as(
                "SELECT root_cert_pem, root_key_sealed, intermediate_cert_pem, intermediate_key_sealed, \
                 created_ms FROM ca WHERE id = 'builtin'",
            )
            .fetch_optional(p)
            .await?
        });
        Ok(row.map(|r| CaRecord {
            root_cert_pem: r.root_cert_pem,
            root_key_sealed: r.root_key_sealed,
            intermediate_cert_pem: r.intermediate_cert_pem,
            intermediate_key_sealed: r.intermediate_key_sealed,
            created_ms: r.created_ms,
        }))
    }
}
