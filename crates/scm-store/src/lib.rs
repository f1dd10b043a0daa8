//! Persistence for OpenSCM: the [`Store`] trait, its record types, and one implementation over
//! SQLite and PostgreSQL ([`SqlStore`]) with a migration set for each.
//!
//! The store holds no business rules. It does offer the few atomic operations the domain needs to
//! stay correct with several server processes on one database: conditional status transitions
//! (`... WHERE status = expected`), a shared id allocator, and a one-shot bootstrap.
//!
//! Secrets never reach this crate in clear: credential secret keys and private keys arrive sealed
//! by the caller (`*_sealed` fields) and are stored as opaque bytes.
#![deny(missing_docs)]

mod migrate;
mod records;
mod sql;

use async_trait::async_trait;
use scm_proto::{AccessKeyId, CertificateId, CertificateStatus, DomainId, ProjectId};

pub use records::*;
pub use sql::{Backend, SqlStore};

/// Storage failure. The domain maps every variant to an internal error except [`StoreError::Conflict`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A unique key already exists (e.g. an order id collision).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A stored value does not parse (corrupt row or a newer schema).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A grouped write failed (the text is the database error).
    #[error("grouped write: {0}")]
    Batch(String),
    /// A migration failed or the schema is newer than this binary.
    #[error("migration: {0}")]
    Migration(String),
}

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything OpenSCM persists. Implementations must be safe to share between tasks and, for
/// PostgreSQL, between server processes.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which database this is.
    fn backend(&self) -> Backend;

    /// `sqlite` or `postgres`, for messages.
    fn backend_name(&self) -> &'static str {
        match self.backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// Creates the first account, its project, its credential and the built-in CA in one
    /// transaction, unless the store was bootstrapped already (then returns `false`, writes nothing).
    async fn bootstrap(&self, b: &Bootstrap) -> Result<bool>;
    /// The change counter: it moves (in the same transaction) with every write that alters a
    /// credential, a policy, a certificate or its pushes. Read caches are dropped when it moves.
    async fn revision(&self) -> Result<i64>;
    /// A meta value (e.g. the master-key check value).
    async fn meta(&self, key: &str) -> Result<Option<String>>;
    /// Sets a meta value unless present; returns the value now stored.
    async fn init_meta(&self, key: &str, value: &str) -> Result<String>;

    /// Creates an account and its first project.
    async fn create_account(&self, account: &AccountRecord, project: &ProjectRecord) -> Result<()>;
    /// Creates another project of an existing account.
    async fn create_project(&self, project: &ProjectRecord) -> Result<()>;
    /// One account.
    async fn account(&self, id: &DomainId) -> Result<Option<AccountRecord>>;
    /// All accounts, oldest first.
    async fn accounts(&self) -> Result<Vec<AccountRecord>>;
    /// One project.
    async fn project(&self, id: &ProjectId) -> Result<Option<ProjectRecord>>;
    /// Projects of an account, oldest first.
    async fn projects(&self, account: &DomainId) -> Result<Vec<ProjectRecord>>;
    /// Replaces an account's issuance policy; `false` if there is no such account.
    async fn set_policy(&self, account: &DomainId, policy: &str) -> Result<bool>;

    /// Stores a new credential.
    async fn insert_credential(&self, c: &CredentialRecord) -> Result<()>;
    /// One credential by access key.
    async fn credential(&self, ak: &AccessKeyId) -> Result<Option<CredentialRecord>>;
    /// Credentials, of one account or of all.
    async fn credentials(&self, account: Option<&DomainId>) -> Result<Vec<CredentialRecord>>;
    /// Revokes a credential (and so its tokens); `false` if unknown or already revoked.
    async fn revoke_credential(&self, ak: &AccessKeyId, now_ms: i64) -> Result<bool>;

    /// Stores an issued token (by hash).
    async fn insert_token(&self, t: &TokenRecord) -> Result<()>;
    /// A token by the hex SHA-256 of its value, with its credential's status.
    async fn token(&self, token_hash: &str) -> Result<Option<(TokenRecord, CredentialStatus)>>;

    /// The built-in CA.
    async fn ca(&self) -> Result<Option<CaRecord>>;

    /// Creates an order and `count` certificates from `template` in one transaction. Certificate
    /// ids are allocated here, strictly increasing across all processes and never below `now_ms`.
    async fn create_order(
        &self,
        order: &OrderRecord,
        template: &NewCertificate,
        count: u32,
        now_ms: i64,
    ) -> Result<Vec<CertificateId>>;
    /// One certificate.
    async fn certificate(&self, id: &CertificateId) -> Result<Option<CertificateRecord>>;
    /// A page of an account's certificates and the total number matching.
    async fn list_certificates(
        &self,
        account: &DomainId,
        q: &ListQuery,
    ) -> Result<(Vec<CertificateRecord>, u64)>;
    /// Stores the application of a certificate if its status is still `expect`.
    async fn save_application(
        &self,
        id: &CertificateId,
        expect: CertificateStatus,
        app: &ApplicationRecord,
        now_ms: i64,
    ) -> Result<bool>;
    /// Moves a certificate from `expect` to `ISSUED` with its material, if still in `expect`.
    async fn mark_issued(
        &self,
        id: &CertificateId,
        expect: CertificateStatus,
        app: &ApplicationRecord,
        issued: &IssuedRecord,
        now_ms: i64,
    ) -> Result<bool>;

    /// Records one push attempt.
    async fn record_push(&self, rec: &PushRecord) -> Result<()>;
    /// The newest push records of a certificate, newest first.
    async fn push_history(
        &self,
        cert: &CertificateId,
        limit: u32,
        successful_only: bool,
    ) -> Result<Vec<PushRecord>>;
}

#[cfg(test)]
mod tests;
