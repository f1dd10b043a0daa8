//! [`Accounts`]: accounts, projects, credentials and tokens.

use async_trait::async_trait;
use scm_proto::{AccessKeyId, DomainId, ProjectId};

use crate::pool::{BUMP_ACCESS, conflict_or, corrupt, db_run};
use crate::records::{
    AccountRecord, CredentialRecord, CredentialStatus, ProjectRecord, TokenKind, TokenRecord,
};
use crate::{Accounts, Result, SqlStore};

/// Inserts an account with executor `$e` (a pool or a transaction of either backend).
macro_rules! insert_account {
    ($e:expr, $a:expr) => {{
        let a: &$crate::records::AccountRecord = $a;
        sqlx::query(
            "INSERT INTO accounts (domain_id, name, policy, created_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(a.domain_id.as_str())
        .bind(a.name.as_str())
        .bind(a.policy.as_str())
        .bind(a.created_ms)
        .execute($e)
        .await
        .map(|_| ())
        .map_err($crate::pool::conflict_or)
    }};
}

/// Inserts a project with executor `$e`.
macro_rules! insert_project {
    ($e:expr, $p:expr) => {{
        let p: &$crate::records::ProjectRecord = $p;
        sqlx::query(
            "INSERT INTO projects (project_id, domain_id, name, created_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(p.project_id.as_str())
        .bind(p.domain_id.as_str())
        .bind(p.name.as_str())
        .bind(p.created_ms)
        .execute($e)
        .await
        .map(|_| ())
        .map_err($crate::pool::conflict_or)
    }};
}

/// Inserts a credential with executor `$e`.
macro_rules! insert_credential {
    ($e:expr, $c:expr) => {{
        let c: &$crate::records::CredentialRecord = $c;
        sqlx::query(
            "INSERT INTO credentials (access_key, domain_id, project_id, secret_sealed, status, \
             description, created_ms, revoked_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(c.access_key.as_str())
        .bind(c.domain_id.as_str())
        .bind(c.project_id.as_str())
        .bind(c.secret_sealed.as_slice())
        .bind(c.status.as_str())
        .bind(c.description.as_str())
        .bind(c.created_ms)
        .bind(c.revoked_ms)
        .execute($e)
        .await
        .map(|_| ())
        .map_err($crate::pool::conflict_or)
    }};
}

pub(crate) use {insert_account, insert_credential, insert_project};

struct AccountRow {
    domain_id: DomainId,
    name: String,
    policy: String,
    created_ms: i64,
    renew_remaining_permille: Option<i64>,
}

crate::row::from_row!(AccountRow { domain_id [via String], name, policy, created_ms, renew_remaining_permille });

impl From<AccountRow> for AccountRecord {
    fn from(r: AccountRow) -> Self {
        Self {
            domain_id: r.domain_id,
            name: r.name,
            policy: r.policy,
            created_ms: r.created_ms,
            renew_remaining_permille: r
                .renew_remaining_permille
                .and_then(|v| u32::try_from(v).ok()),
        }
    }
}

struct ProjectRow {
    project_id: ProjectId,
    domain_id: DomainId,
    name: String,
    created_ms: i64,
}

crate::row::from_row!(ProjectRow { project_id [via String], domain_id [via String], name, created_ms });

impl From<ProjectRow> for ProjectRecord {
    fn from(r: ProjectRow) -> Self {
        Self {
            project_id: r.project_id,
            domain_id: r.domain_id,
            name: r.name,
            created_ms: r.created_ms,
        }
    }
}

macro_rules! select_credentials {
    ($tail:literal) => {
        concat!(
            "SELECT access_key, domain_id, project_id, secret_sealed, status, description, \
             created_ms, revoked_ms FROM credentials ",
            $tail
        )
    };
}

struct CredentialRow {
    access_key: AccessKeyId,
    domain_id: DomainId,
    project_id: ProjectId,
    secret_sealed: Vec<u8>,
    status: String,
    description: String,
    created_ms: i64,
    revoked_ms: Option<i64>,
}

crate::row::from_row!(CredentialRow { access_key [via String], domain_id [via String], project_id [via String], secret_sealed, status, description, created_ms, revoked_ms });

impl TryFrom<CredentialRow> for CredentialRecord {
    type Error = crate::StoreError;
    fn try_from(r: CredentialRow) -> Result<Self> {
        Ok(Self {
            access_key: r.access_key,
            domain_id: r.domain_id,
            project_id: r.project_id,
            secret_sealed: r.secret_sealed,
            status: CredentialStatus::parse(&r.status)
                .ok_or_else(|| corrupt("credentials.status"))?,
            description: r.description,
            created_ms: r.created_ms,
            revoked_ms: r.revoked_ms,
        })
    }
}

struct TokenRow {
    token_hash: String,
    kind: String,
    access_key: AccessKeyId,
    domain_id: DomainId,
    project_id: ProjectId,
    issued_ms: i64,
    expires_ms: i64,
    status: String,
}

crate::row::from_row!(TokenRow { token_hash, kind, access_key [via String], domain_id [via String], project_id [via String], issued_ms, expires_ms, status });

#[async_trait]
impl Accounts for SqlStore {
    async fn create_account(&self, account: &AccountRecord, project: &ProjectRecord) -> Result<()> {
        db_run!(&self.pool, |p| {
            let mut tx = p.begin().await?;
            insert_account!(&mut *tx, account)?;
            insert_project!(&mut *tx, project)?;
            tx.commit().await?;
            Ok(())
        })
    }

    async fn create_project(&self, project: &ProjectRecord) -> Result<()> {
        db_run!(&self.pool, |p| insert_project!(p, project))
    }

    async fn account(&self, id: &DomainId) -> Result<Option<AccountRecord>> {
        let row: Option<AccountRow> = db_run!(&self.pool, |p| {
            sqlx::query_as(
                "SELECT domain_id, name, policy, created_ms, renew_remaining_permille FROM accounts \
                 WHERE domain_id = $1",
            )
            .bind(id.as_str())
            .fetch_optional(p)
            .await?
        });
        Ok(row.map(Into::into))
    }

    async fn accounts(&self) -> Result<Vec<AccountRecord>> {
        let rows: Vec<AccountRow> = db_run!(&self.pool, |p| {
            sqlx::query_as(
                "SELECT domain_id, name, policy, created_ms, renew_remaining_permille FROM accounts \
                 ORDER BY created_ms, domain_id",
            )
            .fetch_all(p)
            .await?
        });
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn project(&self, id: &ProjectId) -> Result<Option<ProjectRecord>> {
        let row: Option<ProjectRow> = db_run!(&self.pool, |p| {
            sqlx::query_as(
                "SELECT project_id, domain_id, name, created_ms FROM projects WHERE project_id = $1",
            )
            .bind(id.as_str())
            .fetch_optional(p)
            .await?
        });
        Ok(row.map(Into::into))
    }

    async fn projects(&self, account: &DomainId) -> Result<Vec<ProjectRecord>> {
        let rows: Vec<ProjectRow> = db_run!(&self.pool, |p| {
            sqlx::query_as(
                "SELECT project_id, domain_id, name, created_ms FROM projects WHERE domain_id = $1 \
                 ORDER BY created_ms, project_id",
            )
            .bind(account.as_str())
            .fetch_all(p)
            .await?
        });
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn set_policy(&self, account: &DomainId, policy: &str) -> Result<bool> {
        db_run!(&self.pool, |p| {
            let mut tx = p.begin().await?;
            let done = sqlx::query("UPDATE accounts SET policy = $1 WHERE domain_id = $2")
                .bind(policy)
                .bind(account.as_str())
                .execute(&mut *tx)
                .await?;
            sqlx::query(BUMP_ACCESS).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(done.rows_affected() == 1)
        })
    }

    async fn set_renewal_policy(&self, account: &DomainId, permille: Option<u32>) -> Result<bool> {
        db_run!(&self.pool, |p| {
            let mut tx = p.begin().await?;
            let done = sqlx::query(
                "UPDATE accounts SET renew_remaining_permille = $1 WHERE domain_id = $2",
            )
            .bind(permille.map(i64::from))
            .bind(account.as_str())
            .execute(&mut *tx)
            .await?;
            sqlx::query(BUMP_ACCESS).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(done.rows_affected() == 1)
        })
    }

    async fn insert_credential(&self, c: &CredentialRecord) -> Result<()> {
        // The revision moves too: other processes may remember this access key as unknown.
        db_run!(&self.pool, |p| {
            let mut tx = p.begin().await?;
            insert_credential!(&mut *tx, c)?;
            sqlx::query(BUMP_ACCESS).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    async fn credential(&self, ak: &AccessKeyId) -> Result<Option<CredentialRecord>> {
        let row: Option<CredentialRow> = db_run!(&self.pool, |p| {
            sqlx::query_as(select_credentials!("WHERE access_key = $1"))
                .bind(ak.as_str())
                .fetch_optional(p)
                .await?
        });
        row.map(TryInto::try_into).transpose()
    }

    async fn credentials(&self, account: Option<&DomainId>) -> Result<Vec<CredentialRecord>> {
        let rows: Vec<CredentialRow> = db_run!(&self.pool, |p| {
            sqlx::query_as(select_credentials!(
                "WHERE ($1 IS NULL OR domain_id = $1) ORDER BY created_ms, access_key"
            ))
            .bind(account.map(DomainId::as_str))
            .fetch_all(p)
            .await?
        });
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn revoke_credential(&self, ak: &AccessKeyId, now_ms: i64) -> Result<bool> {
        db_run!(&self.pool, |p| {
            let mut tx = p.begin().await?;
            let done = sqlx::query(
                "UPDATE credentials SET status = 'revoked', revoked_ms = $1 \
                 WHERE access_key = $2 AND status = 'active'",
            )
            .bind(now_ms)
            .bind(ak.as_str())
            .execute(&mut *tx)
            .await?;
            sqlx::query(BUMP_ACCESS).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(done.rows_affected() == 1)
        })
    }

    async fn insert_token(&self, t: &TokenRecord, max_live: u32) -> Result<()> {
        db_run!(&self.pool, |p| {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO tokens (token_hash, access_key, domain_id, project_id, issued_ms, expires_ms, kind) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(t.token_hash.as_str())
            .bind(t.access_key.as_str())
            .bind(t.domain_id.as_str())
            .bind(t.project_id.as_str())
            .bind(t.issued_ms)
            .bind(t.expires_ms)
            .bind(t.kind.as_str())
            .execute(&mut *tx)
            .await
            .map_err(conflict_or)?;
            sqlx::query("DELETE FROM tokens WHERE access_key = $1 AND expires_ms <= $2")
                .bind(t.access_key.as_str())
                .bind(t.issued_ms)
                .execute(&mut *tx)
                .await?;
            // Past the limit, the oldest of the kind go: a captured token request replayed a
            // thousand times leaves `max_live` tokens, not a thousand, and console sign-ins
            // never push out API tokens.
            sqlx::query(
                "DELETE FROM tokens WHERE access_key = $1 AND kind = $3 AND seq NOT IN \
                 (SELECT seq FROM tokens WHERE access_key = $1 AND kind = $3 ORDER BY seq DESC LIMIT $2)",
            )
            .bind(t.access_key.as_str())
            .bind(i64::from(max_live.max(1)))
            .bind(t.kind.as_str())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    async fn purge_expired_tokens(&self, now_ms: i64) -> Result<u64> {
        db_run!(&self.pool, |p| {
            let done = sqlx::query("DELETE FROM tokens WHERE expires_ms <= $1")
                .bind(now_ms)
                .execute(p)
                .await?;
            Ok(done.rows_affected())
        })
    }

    async fn delete_token(&self, token_hash: &str) -> Result<bool> {
        let deleted = db_run!(&self.pool, |p| {
            sqlx::query("DELETE FROM tokens WHERE token_hash = $1")
                .bind(token_hash)
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(deleted > 0)
    }

    async fn token(&self, token_hash: &str) -> Result<Option<(TokenRecord, CredentialStatus)>> {
        let row: Option<TokenRow> = db_run!(&self.pool, |p| {
            sqlx::query_as(
                "SELECT t.token_hash, t.kind, t.access_key, t.domain_id, t.project_id, t.issued_ms, \
                 t.expires_ms, c.status FROM tokens t JOIN credentials c ON c.access_key = t.access_key \
                 WHERE t.token_hash = $1",
            )
            .bind(token_hash)
            .fetch_optional(p)
            .await?
        });
        let Some(r) = row else { return Ok(None) };
        let status =
            CredentialStatus::parse(&r.status).ok_or_else(|| corrupt("credentials.status"))?;
        let kind = TokenKind::parse(&r.kind).ok_or_else(|| corrupt("tokens.kind"))?;
        Ok(Some((
            TokenRecord {
                kind,
                token_hash: r.token_hash,
                access_key: r.access_key,
                domain_id: r.domain_id,
                project_id: r.project_id,
                issued_ms: r.issued_ms,
                expires_ms: r.expires_ms,
            },
            status,
        )))
    }
}
