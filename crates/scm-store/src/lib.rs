//! Persistence for OpenSCM: the [`Store`] traits, their record types, and [`SqlStore`], which
//! implements them on typed sqlx pools for SQLite and PostgreSQL, each with its own migration set.
//!
//! The store is split by aggregate, one trait and one file each: [`Meta`] (bootstrap, settings,
//! the change counters), [`Cas`] (the CAs: one per account, the serving CA), [`Accounts`] (accounts, projects, credentials, tokens),
//! [`Certificates`] (orders, certificates, applications, issuance), [`Pushes`] (push history),
//! [`Tags`] (certificate tags), [`Csrs`] (certificate signing requests and their keys), [`Imports`]
//! (imported certificates), [`Revocations`] (revoked serials and each CA's CRL), [`Audit`] (the audit log), [`Stats`] (aggregates for metrics) and
//! [`Jobs`] (the durable job queue). SQL that is the same on both backends is written once and run
//! on either pool ([`pool`]); what differs (id allocation, job claiming) lives in [`dialect`].
//!
//! The store holds no business rules. It does offer the few atomic operations the domain needs to
//! stay correct with several server processes on one database: conditional status transitions
//! (`... WHERE status = expected`), a shared id allocator, a one-shot bootstrap, and job leases.
//!
//! Secrets never reach this crate in clear: credential secret keys and private keys arrive sealed
//! by the caller (`*_sealed` fields) and are stored as opaque bytes. The database URL, which may
//! carry a password, is a [`DatabaseUrl`] whose `Debug` and `Display` hide it.
#![deny(missing_docs)]

mod accounts;
mod acme;
mod audit;
mod cas;
mod certificates;
mod console;
mod csrs;
mod deployments;
mod dialect;
mod imports;
mod jobs;
mod lifecycle;
mod meta;
mod migrate;
mod notices;
mod pool;
mod pushes;
mod records;
mod revocations;
mod row;
mod tags;
mod url;
mod validations;
mod versions;

use std::time::Duration;

use async_trait::async_trait;
use scm_proto::{AccessKeyId, CertificateId, CertificateStatus, DomainId, ProjectId};

pub use acme::{Acme, AcmeAccountRecord, AcmeOrderRecord, NameFailures, OrderSlot};
pub use audit::{Audit, AuditEvent, AuditQuery, DeploymentHealth, Stats, StoreStats};
pub use cas::Cas;
pub use console::Console;
pub use csrs::{CsrQuery, CsrRecord, Csrs, MAX_KEYED_CSRS};
pub use imports::{ImportOutcome, Imports};
pub use meta::Revisions;
pub use notices::{CERT_EXPIRED, CERT_EXPIRING, DueReminder, Notices, ReminderStep, SentReminder};
pub use pool::Backend;
pub use records::*;
pub use revocations::{CrlInputs, CrlRecord, NewRevocation, Revocations, RevokedSerial};
pub use tags::{CertificateTag, TagRecord, Tags};
pub use url::DatabaseUrl;
pub use validations::{CheckResult, Validations};
pub use versions::{EndValidation, QueuedRenewal, Versions};

use crate::certificates::IssueWriter;
use crate::pool::Pool;

/// Storage failure. The domain maps [`StoreError::Conflict`] to a business outcome, and every other
/// variant to an internal error; [`StoreError::is_unavailable`] tells a passing outage (retry
/// later: HTTP 503) from a fault.
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
    /// The group-commit writer could not take or finish the write.
    #[error("grouped write: {0}")]
    Batch(String),
    /// A migration failed, the schema is newer than this binary, or an applied migration changed.
    #[error("migration: {0}")]
    Migration(String),
    /// The database URL or its options are unusable.
    #[error("database URL: {0}")]
    Config(String),
    /// A quota of the account would be exceeded; nothing was written. The text says which.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    /// The certificate ids of an order would run further ahead of the clock than allowed;
    /// nothing was written. Retry after this many milliseconds.
    #[error("certificate ids would run {0} ms too far ahead of the clock")]
    IdsAhead(i64),
}

impl StoreError {
    /// Whether the failure is an outage of the database (connection refused or lost, pool
    /// exhausted, the database shutting down or busy) rather than a fault: the same request may
    /// succeed later.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Database(e) => sql_error_is_unavailable(e),
            Self::Batch(_) => true,
            Self::Conflict(_)
            | Self::Corrupt(_)
            | Self::Migration(_)
            | Self::Config(_)
            | Self::QuotaExceeded(_)
            | Self::IdsAhead(_) => false,
        }
    }
}

fn sql_error_is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code();
            let code = code.as_deref().unwrap_or("");
            // PostgreSQL: class 08 (connection exception), 57P01..57P03 (shutting down, cannot
            // connect now), 53300 (too many connections). SQLite: 5 (SQLITE_BUSY), 6 (LOCKED).
            code.starts_with("08")
                || matches!(code, "57P01" | "57P02" | "57P03" | "53300" | "5" | "6")
        }
        _ => false,
    }
}

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Bootstrap, settings, the built-in CA and the change counters.
#[async_trait]
pub trait Meta: Send + Sync {
    /// Creates the first account, its project, its credential and the CAs of `b.cas` in one
    /// transaction, unless the store was bootstrapped already (then returns `false`, writes nothing).
    async fn bootstrap(&self, b: &Bootstrap) -> Result<bool>;
    /// Whether [`Meta::bootstrap`] has run on this store.
    async fn is_bootstrapped(&self) -> Result<bool>;
    /// The change counters, read together: each moves (in the same transaction) with every
    /// write that alters what one side of the read caches holds (see [`Revisions`]). A server
    /// drops the caches of a side when its counter moves.
    async fn revisions(&self) -> Result<Revisions>;
    /// A meta value (e.g. the master-key check value).
    async fn meta(&self, key: &str) -> Result<Option<String>>;
    /// Sets a meta value unless present; returns the value now stored.
    async fn init_meta(&self, key: &str, value: &str) -> Result<String>;
    /// The one CA every account shared in a store made before migration 0015 (table `ca`);
    /// `None` in a store made since. The server records it as retired in [`Cas`].
    async fn ca(&self) -> Result<Option<CaRecord>>;
}

/// Accounts, their projects, credentials and tokens.
#[async_trait]
pub trait Accounts: Send + Sync {
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
    /// Sets an account's renewal window in thousandths of a lifetime (`None`: the server's);
    /// `false` when there is no such account.
    async fn set_renewal_policy(&self, account: &DomainId, permille: Option<u32>) -> Result<bool>;
    /// Stores a new credential.
    async fn insert_credential(&self, c: &CredentialRecord) -> Result<()>;
    /// One credential by access key.
    async fn credential(&self, ak: &AccessKeyId) -> Result<Option<CredentialRecord>>;
    /// Credentials, of one account or of all.
    async fn credentials(&self, account: Option<&DomainId>) -> Result<Vec<CredentialRecord>>;
    /// Revokes a credential (and so its tokens); `false` if unknown or already revoked.
    async fn revoke_credential(&self, ak: &AccessKeyId, now_ms: i64) -> Result<bool>;
    /// Stores an issued token (by hash), and in the same transaction deletes the credential's
    /// expired tokens and, past `max_live` live ones of the same kind, its oldest of that kind: a
    /// credential never has more than `max_live` tokens of a kind, and one kind never evicts
    /// the other.
    async fn insert_token(&self, t: &TokenRecord, max_live: u32) -> Result<()>;
    /// Deletes every token expired at `now_ms`; returns how many.
    async fn purge_expired_tokens(&self, now_ms: i64) -> Result<u64>;
    /// Deletes one token by the hash it is stored under (signing out of the console); `false`
    /// if there was none.
    async fn delete_token(&self, token_hash: &str) -> Result<bool>;
    /// A token by the hex SHA-256 of its value, with its credential's status.
    async fn token(&self, token_hash: &str) -> Result<Option<(TokenRecord, CredentialStatus)>>;
}

/// Orders, certificates, applications and issuance.
#[async_trait]
pub trait Certificates: Send + Sync {
    /// Creates an order and `count` certificates from `template` (with its tags) in one
    /// transaction, within the account's `quotas` (checked and counted in the same transaction:
    /// an order past them writes nothing and is [`StoreError::QuotaExceeded`]).
    ///
    /// Certificate ids are allocated here from one counter shared by all processes: `count`
    /// consecutive milliseconds, all above every id handed out before (so ids are never reused,
    /// deleted ones included) and ending at `now_ms` when the milliseconds since the last
    /// allocation leave room, else just above the last one. With `max_lead_ms`, an order whose
    /// ids would end more than that many milliseconds after `now_ms` writes nothing and is
    /// [`StoreError::IdsAhead`] (how long to wait); with `None` it is allocated whatever the lead.
    async fn create_order(
        &self,
        order: &OrderRecord,
        template: &NewCertificate,
        count: u32,
        now_ms: i64,
        max_lead_ms: Option<i64>,
        quotas: &Quotas,
    ) -> Result<Vec<CertificateId>>;
    /// One certificate, whichever account owns it (operators and job workers only).
    async fn certificate(&self, id: &CertificateId) -> Result<Option<CertificateRecord>>;
    /// One certificate of `account`: `None` both when there is no such certificate and when
    /// another account owns it, from one query by id and account, so that the two cases cannot be
    /// told apart (not even by how long the answer takes).
    async fn certificate_of(
        &self,
        account: &DomainId,
        id: &CertificateId,
    ) -> Result<Option<CertificateRecord>>;
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
    /// Concurrent calls are grouped into shared transactions (group commit); each is still its
    /// own conditional update with its own answer.
    async fn mark_issued(
        &self,
        id: &CertificateId,
        expect: CertificateStatus,
        app: &ApplicationRecord,
        issued: &IssuedRecord,
        now_ms: i64,
    ) -> Result<bool>;
    /// Records a new version of a certificate (its first issuance, or a renewal) if what it
    /// replaces is still there ([`crate::VersionExpect`]): the version row, the certificate's
    /// copy of the current material, its pointer and renewal time, and the history entry, in
    /// one transaction, grouped with concurrent issuances like [`Certificates::mark_issued`].
    async fn add_version(&self, version: NewVersion) -> Result<bool>;
}

/// The history of pushes.
#[async_trait]
pub trait Pushes: Send + Sync {
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

/// Where certificates are deployed (per certificate and target); written by the delivery and
/// drift jobs' effects ([`JobEffect::Deployment`]).
#[async_trait]
pub trait Deployments: Send + Sync {
    /// The targets a certificate was delivered to or is being delivered to, by target name.
    async fn deployments(&self, cert: &CertificateId) -> Result<Vec<DeploymentRecord>>;
    /// Up to `limit` deployments holding a version that were not checked since
    /// `checked_before_ms` (never-checked first), for the drift sweep.
    async fn deployments_to_check(
        &self,
        checked_before_ms: i64,
        limit: u32,
    ) -> Result<Vec<DeploymentRecord>>;
}

/// The durable job queue: work that must happen outside a request. A job is claimed with a lease
/// by one worker at a time; a job whose lease expired (its worker died) is claimed again. Every
/// transition is conditional on the caller still holding the lease, and takes the job's effects
/// on the store ([`JobEffect`]) into the same transaction.
#[async_trait]
pub trait Jobs: Send + Sync {
    /// Adds a job. With a `dedupe_key`, a second job with the same key is not added while the
    /// first is pending or running: the first one's id is returned instead.
    async fn enqueue(&self, job: &NewJob) -> Result<JobId>;
    /// Claims up to `limit` jobs that are due (`due_ms <= now_ms`) and not leased (or whose lease
    /// expired), for `owner`, with a lease of `lease_ms`; counts an attempt for each. Leases are
    /// set and compared on the database's clock (one clock for every process on the database);
    /// `now_ms` is only compared with `due_ms` and stored as `updated_ms`.
    async fn claim(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<JobRecord>>;
    /// Claims one job by id if it is claimable now (see [`Jobs::claim`]).
    async fn claim_one(
        &self,
        id: JobId,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<JobRecord>>;
    /// Extends `lease` to `lease_ms` from now (on the database's clock); `false` if the job is
    /// no longer held by that claim.
    async fn renew_lease(&self, lease: &JobLease, lease_ms: i64) -> Result<bool>;
    /// Ends a job held by `lease` (done, wait, retry later, or failed) and applies `effects` in
    /// the same transaction; `false` (and nothing written) if the job is no longer held by that
    /// claim.
    async fn finish(
        &self,
        lease: &JobLease,
        outcome: &JobOutcome,
        effects: &[JobEffect],
        now_ms: i64,
    ) -> Result<bool>;
    /// Gives up `lease` without counting the attempt (shutdown): the job is due again at once.
    async fn release(&self, lease: &JobLease, now_ms: i64) -> Result<bool>;
    /// Makes a pending job due at `now_ms` if it was due later (a person asked for it now);
    /// whether it moved.
    async fn hasten(&self, id: JobId, now_ms: i64) -> Result<bool>;
    /// One job.
    async fn job(&self, id: JobId) -> Result<Option<JobRecord>>;
    /// Jobs, newest first, optionally only those in `state`.
    async fn jobs(&self, state: Option<JobState>, limit: u32) -> Result<Vec<JobRecord>>;
    /// Deletes the jobs that ended (done or failed) before `before_ms`; returns how many.
    async fn purge_finished(&self, before_ms: i64) -> Result<u64>;
    /// Calls `wake` whenever a job is queued, by any process, for as long as it runs. On
    /// PostgreSQL this is `LISTEN`/`NOTIFY` (a queued job wakes every server at once); SQLite has
    /// no notifications across processes, so there it never calls `wake` and never returns:
    /// workers find jobs by polling. It returns only on a lost connection (an error).
    async fn watch_enqueued(&self, wake: &(dyn Fn() + Send + Sync)) -> Result<()>;
}

/// Removing certificates and withdrawing applications.
#[async_trait]
pub trait Lifecycle: Send + Sync {
    /// Deletes a certificate of `account` if its stored status is still `expect`, with its push
    /// records, and gives its place in the account's certificate quota back, in one transaction.
    /// `false` (nothing changed) when there is no such certificate of `account` in `expect`.
    /// Jobs naming it stay: a delivery job finds it gone and fails for good.
    async fn delete_certificate(
        &self,
        account: &DomainId,
        id: &CertificateId,
        expect: CertificateStatus,
    ) -> Result<bool>;
}

/// Everything OpenSCM persists. Implementations must be safe to share between tasks and, for
/// PostgreSQL, between server processes.
pub trait Store:
    Meta
    + Accounts
    + Cas
    + Certificates
    + Pushes
    + Deployments
    + Jobs
    + Tags
    + Lifecycle
    + Versions
    + Validations
    + Notices
    + Console
    + Csrs
    + Imports
    + Revocations
    + Acme
    + Audit
    + Stats
    + Send
    + Sync
    + 'static
{
    /// Which database this is.
    fn backend(&self) -> Backend;
}

/// The SQL implementation of [`Store`], on SQLite or PostgreSQL.
#[derive(Clone)]
pub struct SqlStore {
    pool: Pool,
    /// The group-commit writer for issuance (see [`certificates`]).
    issue_writer: IssueWriter,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.pool.backend())
            .finish_non_exhaustive()
    }
}

impl SqlStore {
    /// Connects to `url` (`sqlite://path?mode=rwc` or `postgres://...`, TLS per its `sslmode`)
    /// and applies pending migrations.
    pub async fn connect(url: &DatabaseUrl) -> Result<Self> {
        let pool = Pool::connect(url, Duration::from_secs(30)).await?;
        migrate::run(&pool).await?;
        // Both backends pay one durable flush per commit, and every issuance bumps the shared
        // revision row, so concurrent issuances are grouped into shared transactions on both.
        let issue_writer = IssueWriter::spawn(pool.clone());
        Ok(Self { pool, issue_writer })
    }

    /// Stops taking grouped writes, finishes those queued, and closes the pool (waits for
    /// connections to be returned).
    pub async fn close(&self) {
        self.issue_writer.close().await;
        self.pool.close().await;
    }
}

impl Store for SqlStore {
    fn backend(&self) -> Backend {
        self.pool.backend()
    }
}

#[cfg(test)]
mod tests;
