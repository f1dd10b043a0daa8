//! [`Csrs`]: the certificate signing requests of accounts (CreateCsr, UploadCsr), each with its
//! private key sealed by the caller, or without a key when it was uploaded alone. Every call
//! names the account: another account's CSR is not found, from the same one query.

use async_trait::async_trait;
use scm_proto::{CsrId, DomainId};

use crate::certificates::escape_like;
use crate::pool::{conflict_or, db_run};
use crate::{Result, SqlStore};

/// One stored CSR.
#[derive(Clone, PartialEq, Eq)]
pub struct CsrRecord {
    /// Id.
    pub id: CsrId,
    /// Owning account.
    pub domain_id: DomainId,
    /// Name.
    pub name: String,
    /// The CSR, PEM.
    pub csr_pem: String,
    /// Primary domain.
    pub domain_name: String,
    /// Additional domains, `;`-separated.
    pub sans: String,
    /// Key algorithm API name, when it has one.
    pub private_key_algo: Option<String>,
    /// `PERSONAL` / `ENTERPRISE` (created CSRs only).
    pub usage: Option<String>,
    /// Subject C.
    pub company_country: Option<String>,
    /// Subject ST.
    pub company_province: Option<String>,
    /// Subject L.
    pub company_city: Option<String>,
    /// Subject O.
    pub company_name: Option<String>,
    /// The private key (PKCS#8 DER) sealed under the master key; `None` if not held.
    pub private_key_sealed: Option<Vec<u8>>,
    /// Created, ms.
    pub created_ms: i64,
    /// Last changed, ms.
    pub updated_ms: i64,
}

crate::row::from_row!(CsrRecord { id [via String], domain_id [via String], name, csr_pem, domain_name, sans, private_key_algo, usage, company_country, company_province, company_city, company_name, private_key_sealed, created_ms, updated_ms });

impl std::fmt::Debug for CsrRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsrRecord")
            .field("id", &self.id)
            .field("domain_id", &self.domain_id)
            .field("name", &self.name)
            .field("domain_name", &self.domain_name)
            .field("private_key_algo", &self.private_key_algo)
            .field("has_key", &self.private_key_sealed.is_some())
            .finish_non_exhaustive()
    }
}

/// Filters and page of a CSR listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrQuery {
    /// Case-insensitive substring of the name.
    pub name: Option<String>,
    /// Exact key algorithm.
    pub private_key_algo: Option<String>,
    /// Page size.
    pub limit: u32,
    /// Items to skip.
    pub offset: u32,
}

impl Default for CsrQuery {
    fn default() -> Self {
        Self {
            name: None,
            private_key_algo: None,
            limit: 10,
            offset: 0,
        }
    }
}

/// The CSRs of accounts.
#[async_trait]
pub trait Csrs: Send + Sync {
    /// Stores a new CSR ([`crate::StoreError::Conflict`] if the id exists), unless its account
    /// holds `max_per_account` CSRs already ([`crate::StoreError::QuotaExceeded`], nothing
    /// written). The count and the insert are one transaction, serialised per account.
    async fn insert_csr(&self, rec: &CsrRecord, max_per_account: u64) -> Result<()>;
    /// One CSR of `account`: `None` when there is none with that id in `account`.
    async fn csr_of(&self, account: &DomainId, id: &CsrId) -> Result<Option<CsrRecord>>;
    /// A page of the account's CSRs, newest first, and how many match.
    async fn list_csrs(&self, account: &DomainId, q: &CsrQuery) -> Result<(Vec<CsrRecord>, u64)>;
    /// Renames a CSR of `account`; `false` if there is none with that id in `account`.
    async fn rename_csr(
        &self,
        account: &DomainId,
        id: &CsrId,
        name: &str,
        now_ms: i64,
    ) -> Result<bool>;
    /// Deletes a CSR of `account` and its key; `false` if there is none with that id in it.
    async fn delete_csr(&self, account: &DomainId, id: &CsrId) -> Result<bool>;
    /// The CSRs of `account` whose `domain_name` is `domain_name` and whose key is held, newest
    /// first, at most [`MAX_KEYED_CSRS`]: the candidates for the key of a CSR given to apply.
    async fn keyed_csrs_for(&self, account: &DomainId, domain_name: &str)
    -> Result<Vec<CsrRecord>>;
}

/// The most CSRs [`Csrs::keyed_csrs_for`] answers.
pub const MAX_KEYED_CSRS: u32 = 1000;

macro_rules! select_csrs {
    ($rest:literal) => {
        concat!(
            "SELECT id, domain_id, name, csr_pem, domain_name, sans, private_key_algo, usage, \
             company_country, company_province, company_city, company_name, \
             private_key_sealed, created_ms, updated_ms FROM csrs ",
            $rest
        )
    };
}

macro_rules! csr_filter {
    () => {
        "domain_id = $1 AND ($2 IS NULL OR lower(name) LIKE $2 ESCAPE '\\') \
         AND ($3 IS NULL OR private_key_algo = $3)"
    };
}

#[async_trait]
impl Csrs for SqlStore {
    async fn insert_csr(&self, r: &CsrRecord, max_per_account: u64) -> Result<()> {
        let max = i64::try_from(max_per_account).unwrap_or(i64::MAX);
        db_run!(&self.pool, |p| {
            let mut tx = p.begin().await?;
            // A write to the account's row first: it serialises this account's CSR inserts (a
            // row lock on PostgreSQL, the write lock on SQLite) so that two cannot both count
            // one below the quota.
            sqlx::query("UPDATE accounts SET domain_id = domain_id WHERE domain_id = $1")
                .bind(r.domain_id.as_str())
                .execute(&mut *tx)
                .await?;
            let (held,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM csrs WHERE domain_id = $1")
                .bind(r.domain_id.as_str())
                .fetch_one(&mut *tx)
                .await?;
            if held >= max {
                tx.rollback().await?;
                return Err(crate::StoreError::QuotaExceeded(format!(
                    "the account holds {held} CSRs of the {max} it may hold; delete some first"
                )));
            }
            sqlx::query(
                "INSERT INTO csrs (id, domain_id, name, csr_pem, domain_name, sans, \
                 private_key_algo, usage, company_country, company_province, company_city, \
                 company_name, private_key_sealed, created_ms, updated_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            )
            .bind(r.id.as_str())
            .bind(r.domain_id.as_str())
            .bind(r.name.as_str())
            .bind(r.csr_pem.as_str())
            .bind(r.domain_name.as_str())
            .bind(r.sans.as_str())
            .bind(r.private_key_algo.as_deref())
            .bind(r.usage.as_deref())
            .bind(r.company_country.as_deref())
            .bind(r.company_province.as_deref())
            .bind(r.company_city.as_deref())
            .bind(r.company_name.as_deref())
            .bind(r.private_key_sealed.as_deref())
            .bind(r.created_ms)
            .bind(r.updated_ms)
            .execute(&mut *tx)
            .await
            .map_err(conflict_or)?;
            tx.commit().await?;
        });
        Ok(())
    }

    async fn csr_of(&self, account: &DomainId, id: &CsrId) -> Result<Option<CsrRecord>> {
        Ok(db_run!(&self.pool, |p| {
            sqlx::query_as(select_csrs!("WHERE id = $1 AND domain_id = $2"))
                .bind(id.as_str())
                .bind(account.as_str())
                .fetch_optional(p)
                .await?
        }))
    }

    async fn list_csrs(&self, account: &DomainId, q: &CsrQuery) -> Result<(Vec<CsrRecord>, u64)> {
        let name = q
            .name
            .as_ref()
            .map(|n| format!("%{}%", escape_like(&n.to_lowercase())));
        let (total, rows): (i64, Vec<CsrRecord>) = db_run!(&self.pool, |p| {
            let total: i64 =
                sqlx::query_scalar(concat!("SELECT COUNT(*) FROM csrs WHERE ", csr_filter!()))
                    .bind(account.as_str())
                    .bind(name.as_deref())
                    .bind(q.private_key_algo.as_deref())
                    .fetch_one(p)
                    .await?;
            let rows = sqlx::query_as(concat!(
                select_csrs!("WHERE "),
                csr_filter!(),
                " ORDER BY created_ms DESC, id DESC LIMIT $4 OFFSET $5"
            ))
            .bind(account.as_str())
            .bind(name.as_deref())
            .bind(q.private_key_algo.as_deref())
            .bind(i64::from(q.limit))
            .bind(i64::from(q.offset))
            .fetch_all(p)
            .await?;
            (total, rows)
        });
        Ok((rows, u64::try_from(total).unwrap_or(0)))
    }

    async fn rename_csr(
        &self,
        account: &DomainId,
        id: &CsrId,
        name: &str,
        now_ms: i64,
    ) -> Result<bool> {
        let done = db_run!(&self.pool, |p| {
            sqlx::query(
                "UPDATE csrs SET name = $1, updated_ms = $2 WHERE id = $3 AND domain_id = $4",
            )
            .bind(name)
            .bind(now_ms)
            .bind(id.as_str())
            .bind(account.as_str())
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(done > 0)
    }

    async fn delete_csr(&self, account: &DomainId, id: &CsrId) -> Result<bool> {
        let done = db_run!(&self.pool, |p| {
            sqlx::query("DELETE FROM csrs WHERE id = $1 AND domain_id = $2")
                .bind(id.as_str())
                .bind(account.as_str())
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(done > 0)
    }

    async fn keyed_csrs_for(
        &self,
        account: &DomainId,
        domain_name: &str,
    ) -> Result<Vec<CsrRecord>> {
        Ok(db_run!(&self.pool, |p| {
            sqlx::query_as(select_csrs!(
                "WHERE domain_id = $1 AND domain_name = $2 AND private_key_sealed IS NOT NULL \
                 ORDER BY created_ms DESC, id DESC LIMIT $3"
            ))
            .bind(account.as_str())
            .bind(domain_name)
            .bind(i64::from(MAX_KEYED_CSRS))
            .fetch_all(p)
            .await?
        }))
    }
}
