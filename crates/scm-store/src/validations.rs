//! [`Validations`]: proof of control of names, per account. Each (account, name) has one value,
//! made once and kept (the TXT record and the file content), so that a record left in place
//! proves control again at every renewal; and the time and method of its last successful check,
//! which the domain reuses for a while.

use async_trait::async_trait;
use scm_proto::DomainId;

use crate::pool::db_run;
use crate::records::ValidationRecord;
use crate::{Result, SqlStore};

crate::row::from_row!(ValidationRecord {
    name,
    value,
    validated_ms,
    method,
    checked_ms,
    last_error
});

/// How one check of one name ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckResult {
    /// The record or file was found, by this method (`DNS`, `FILE`).
    Passed(String),
    /// It was not; what the check saw.
    Failed(String),
}

/// Proof of control of names.
#[async_trait]
pub trait Validations: Send + Sync {
    /// The validation records of `names` for `account`, making those that do not exist yet with
    /// the value `make_value` gives (a record that exists keeps its value), in the order of
    /// `names`.
    async fn validation_records(
        &self,
        account: &DomainId,
        names: &[String],
        make_value: &(dyn Fn() -> String + Send + Sync),
        now_ms: i64,
    ) -> Result<Vec<ValidationRecord>>;
    /// The value of a validation of `name` (any account) whose first 16 characters are
    /// `prefix`: the content of a FILE validation OpenSCM serves itself.
    async fn validation_file(&self, name: &str, prefix: &str) -> Result<Option<String>>;
    /// Records how a check of `name` ended.
    async fn record_check(
        &self,
        account: &DomainId,
        name: &str,
        result: &CheckResult,
        now_ms: i64,
    ) -> Result<()>;
}

#[async_trait]
impl Validations for SqlStore {
    async fn validation_records(
        &self,
        account: &DomainId,
        names: &[String],
        make_value: &(dyn Fn() -> String + Send + Sync),
        now_ms: i64,
    ) -> Result<Vec<ValidationRecord>> {
        db_run!(&self.pool, |p| {
            let mut out = Vec::with_capacity(names.len());
            for name in names {
                // Insert-if-absent then read: two servers making the same record keep one value.
                sqlx::query(
                    "INSERT INTO domain_validations (domain_id, name, value, created_ms) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (domain_id, name) DO NOTHING",
                )
                .bind(account.as_str())
                .bind(name.as_str())
                .bind(make_value())
                .bind(now_ms)
                .execute(p)
                .await?;
                let rec: ValidationRecord = sqlx::query_as(
                    "SELECT name, value, validated_ms, method, checked_ms, last_error \
                     FROM domain_validations WHERE domain_id = $1 AND name = $2",
                )
                .bind(account.as_str())
                .bind(name.as_str())
                .fetch_one(p)
                .await?;
                out.push(rec);
            }
            Ok(out)
        })
    }

    async fn validation_file(&self, name: &str, prefix: &str) -> Result<Option<String>> {
        Ok(db_run!(&self.pool, |p| {
            sqlx::query_scalar(
                "SELECT value FROM domain_validations WHERE name = $1 \
                 AND substr(value, 1, 16) = $2 LIMIT 1",
            )
            .bind(name)
            .bind(prefix)
            .fetch_optional(p)
            .await?
        }))
    }

    async fn record_check(
        &self,
        account: &DomainId,
        name: &str,
        result: &CheckResult,
        now_ms: i64,
    ) -> Result<()> {
        db_run!(&self.pool, |p| {
            match result {
                CheckResult::Passed(method) => {
                    sqlx::query(
                        "UPDATE domain_validations SET validated_ms = $1, checked_ms = $1, \
                         method = $2, last_error = NULL WHERE domain_id = $3 AND name = $4",
                    )
                    .bind(now_ms)
                    .bind(method.as_str())
                    .bind(account.as_str())
                    .bind(name)
                    .execute(p)
                    .await?;
                }
                CheckResult::Failed(error) => {
                    sqlx::query(
                        "UPDATE domain_validations SET checked_ms = $1, last_error = $2 \
                         WHERE domain_id = $3 AND name = $4",
                    )
                    .bind(now_ms)
                    .bind(error.chars().take(1000).collect::<String>())
                    .bind(account.as_str())
                    .bind(name)
                    .execute(p)
                    .await?;
                }
            }
            Ok(())
        })
    }
}
