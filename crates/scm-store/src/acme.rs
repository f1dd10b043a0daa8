//! [`Acme`]: what ACME issuance keeps. One account per configured issuer (credentials sealed by
//! the domain), one order per (certificate, version) with its state as it is learned (the
//! domain owns the meaning of `state` and `data`; every update is conditional on the row's
//! revision, so two servers never both advance one order), the http-01 tokens every server
//! answers, and per-name validation failures.

use async_trait::async_trait;
use scm_proto::{CertificateId, DomainId};

use crate::pool::{corrupt, db_run};
use crate::{Result, SqlStore, StoreError};

/// An issuer's ACME account.
#[derive(Clone, PartialEq, Eq)]
pub struct AcmeAccountRecord {
    /// The issuer's name in the config.
    pub issuer: String,
    /// The adapter's credentials, sealed under the master key.
    pub credentials_sealed: Vec<u8>,
    /// No new order goes to this CA account before this time (after `rateLimited`).
    pub paused_until_ms: Option<i64>,
    /// Why it is paused.
    pub pause_reason: Option<String>,
}

impl std::fmt::Debug for AcmeAccountRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmeAccountRecord")
            .field("issuer", &self.issuer)
            .field("paused_until_ms", &self.paused_until_ms)
            .finish_non_exhaustive()
    }
}

crate::row::from_row!(AcmeAccountRecord {
    issuer,
    credentials_sealed,
    paused_until_ms,
    pause_reason
});

/// The issuance of one version of a certificate through the issuers of its brand.
#[derive(Clone, PartialEq, Eq)]
pub struct AcmeOrderRecord {
    /// The certificate.
    pub cert_id: CertificateId,
    /// The version this order makes.
    pub seq: u32,
    /// The certificate's account.
    pub domain_id: DomainId,
    /// The issuer being tried now.
    pub issuer: String,
    /// Its place in the brand's list of issuers.
    pub issuer_index: u32,
    /// The domain's step (`new`, `placing`, `placed`, ..., `done`).
    pub state: String,
    /// The order's URL at the CA, once placed.
    pub order_url: Option<String>,
    /// The certificate's new private key (sealed), once made.
    pub key_sealed: Option<Vec<u8>>,
    /// The domain's JSON: challenges, published records, backoff.
    pub data: String,
    /// When the current order was placed (counts towards the CA account's cap).
    pub placed_ms: Option<i64>,
    /// The last error, safe to show.
    pub error: Option<String>,
    /// The row's revision: every update is conditional on it and increments it.
    pub rev: i64,
    /// Made.
    pub created_ms: i64,
    /// Last changed.
    pub updated_ms: i64,
}

impl std::fmt::Debug for AcmeOrderRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmeOrderRecord")
            .field("cert_id", &self.cert_id)
            .field("seq", &self.seq)
            .field("issuer", &self.issuer)
            .field("state", &self.state)
            .field("order_url", &self.order_url)
            .field("rev", &self.rev)
            .finish_non_exhaustive()
    }
}

struct OrderRow {
    cert_id: CertificateId,
    seq: i64,
    domain_id: DomainId,
    issuer: String,
    issuer_index: i64,
    state: String,
    order_url: Option<String>,
    key_sealed: Option<Vec<u8>>,
    data: String,
    placed_ms: Option<i64>,
    error: Option<String>,
    rev: i64,
    created_ms: i64,
    updated_ms: i64,
}

crate::row::from_row!(OrderRow { cert_id [via String], seq, domain_id [via String], issuer, issuer_index, state, order_url, key_sealed, data, placed_ms, error, rev, created_ms, updated_ms });

macro_rules! order_columns {
    () => {
        "cert_id, seq, domain_id, issuer, issuer_index, state, order_url, key_sealed, data, \
         placed_ms, error, rev, created_ms, updated_ms"
    };
}

impl TryFrom<OrderRow> for AcmeOrderRecord {
    type Error = StoreError;
    fn try_from(r: OrderRow) -> Result<Self> {
        Ok(Self {
            cert_id: r.cert_id,
            seq: u32::try_from(r.seq).map_err(|_| corrupt("acme_orders.seq"))?,
            domain_id: r.domain_id,
            issuer: r.issuer,
            issuer_index: u32::try_from(r.issuer_index)
                .map_err(|_| corrupt("acme_orders.issuer_index"))?,
            state: r.state,
            order_url: r.order_url,
            key_sealed: r.key_sealed,
            data: r.data,
            placed_ms: r.placed_ms,
            error: r.error,
            rev: r.rev,
            created_ms: r.created_ms,
            updated_ms: r.updated_ms,
        })
    }
}

/// How a request for an order slot ended ([`Acme::take_order_slot`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderSlot {
    /// The order row is now `placing`, counted towards the cap.
    Taken,
    /// The CA account has placed its cap of orders in the window; the oldest of them was
    /// placed at this time (a slot frees a window after it).
    Full {
        /// When the oldest order of the window was placed.
        oldest_ms: i64,
    },
    /// The row changed since it was read (another server advanced it).
    Stale,
}

/// A name's run of failed validations at ACME CAs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameFailures {
    /// The name.
    pub name: String,
    /// Failures in a row.
    pub failures: u32,
    /// The first failure of the run.
    pub first_ms: i64,
    /// The last.
    pub last_ms: i64,
}

struct FailureRow {
    name: String,
    failures: i64,
    first_ms: i64,
    last_ms: i64,
}

crate::row::from_row!(FailureRow {
    name,
    failures,
    first_ms,
    last_ms
});

/// What ACME issuance keeps.
#[async_trait]
pub trait Acme: Send + Sync {
    /// The account of `issuer`, if one was made.
    async fn acme_account(&self, issuer: &str) -> Result<Option<AcmeAccountRecord>>;
    /// Stores the account of `issuer` unless one exists (two servers making one at once keep
    /// the first); `false` when one existed.
    async fn insert_acme_account(
        &self,
        issuer: &str,
        credentials_sealed: &[u8],
        now_ms: i64,
    ) -> Result<bool>;
    /// Forgets `issuer`'s account (the CA no longer knows it): the next order makes a new one.
    async fn delete_acme_account(&self, issuer: &str) -> Result<()>;
    /// No new order to `issuer`'s account before `until_ms` (`None`: lifts the pause).
    async fn pause_acme_account(
        &self,
        issuer: &str,
        until_ms: Option<i64>,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<()>;
    /// The order of version `seq` of `cert`.
    async fn acme_order(&self, cert: &CertificateId, seq: u32) -> Result<Option<AcmeOrderRecord>>;
    /// The order of `cert` with the highest version.
    async fn latest_acme_order(&self, cert: &CertificateId) -> Result<Option<AcmeOrderRecord>>;
    /// Stores a new order row unless one exists for (certificate, version); `false` then.
    async fn insert_acme_order(&self, rec: &AcmeOrderRecord) -> Result<bool>;
    /// Writes `rec` if the stored row is still at `rec.rev` (the stored revision becomes
    /// `rec.rev + 1`); `false` when it moved on.
    async fn update_acme_order(&self, rec: &AcmeOrderRecord) -> Result<bool>;
    /// Takes one of `issuer`'s `max` order slots of the window since `since_ms` for `rec`
    /// (written as given, with `placed_ms`), in one transaction serialised per CA account
    /// across servers.
    async fn take_order_slot(
        &self,
        rec: &AcmeOrderRecord,
        max: u32,
        since_ms: i64,
    ) -> Result<OrderSlot>;
    /// Stores an http-01 token and its key authorization, until `expires_ms`.
    async fn put_acme_token(
        &self,
        token: &str,
        key_authorization: &str,
        cert: &CertificateId,
        expires_ms: i64,
    ) -> Result<()>;
    /// The key authorization of an unexpired token.
    async fn acme_token(&self, token: &str, now_ms: i64) -> Result<Option<String>>;
    /// Removes the tokens of `cert` (and every expired token).
    async fn delete_acme_tokens(&self, cert: &CertificateId, now_ms: i64) -> Result<()>;
    /// Records a failed validation of `name`: a run older than `window_ms` starts again at 1.
    /// Returns the run.
    async fn record_name_failure(
        &self,
        account: &DomainId,
        name: &str,
        now_ms: i64,
        window_ms: i64,
    ) -> Result<NameFailures>;
    /// Ends the runs of failures of `names` (a validation passed, or a person asked again).
    async fn clear_name_failures(&self, account: &DomainId, names: &[String]) -> Result<()>;
    /// The runs of failures of `names`.
    async fn name_failures(
        &self,
        account: &DomainId,
        names: &[String],
    ) -> Result<Vec<NameFailures>>;
}

fn failures(r: FailureRow) -> Result<NameFailures> {
    Ok(NameFailures {
        name: r.name,
        failures: u32::try_from(r.failures).map_err(|_| corrupt("acme_name_failures.failures"))?,
        first_ms: r.first_ms,
        last_ms: r.last_ms,
    })
}

#[async_trait]
impl Acme for SqlStore {
    async fn acme_account(&self, issuer: &str) -> Result<Option<AcmeAccountRecord>> {
        Ok(db_run!(&self.pool, |p| {
            sqlx::query_as(
                "SELECT issuer, credentials_sealed, paused_until_ms, pause_reason \
                 FROM acme_accounts WHERE issuer = $1",
            )
            .bind(issuer)
            .fetch_optional(p)
            .await?
        }))
    }

    async fn insert_acme_account(
        &self,
        issuer: &str,
        credentials_sealed: &[u8],
        now_ms: i64,
    ) -> Result<bool> {
        db_run!(&self.pool, |p| {
            let done = sqlx::query(
                "INSERT INTO acme_accounts (issuer, credentials_sealed, created_ms, updated_ms) \
                 VALUES ($1, $2, $3, $3) ON CONFLICT (issuer) DO NOTHING",
            )
            .bind(issuer)
            .bind(credentials_sealed)
            .bind(now_ms)
            .execute(p)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    async fn delete_acme_account(&self, issuer: &str) -> Result<()> {
        db_run!(&self.pool, |p| {
            sqlx::query("DELETE FROM acme_accounts WHERE issuer = $1")
                .bind(issuer)
                .execute(p)
                .await?;
            Ok(())
        })
    }

    async fn pause_acme_account(
        &self,
        issuer: &str,
        until_ms: Option<i64>,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<()> {
        db_run!(&self.pool, |p| {
            sqlx::query(
                "UPDATE acme_accounts SET paused_until_ms = $1, pause_reason = $2, updated_ms = $3 \
                 WHERE issuer = $4",
            )
            .bind(until_ms)
            .bind(reason)
            .bind(now_ms)
            .bind(issuer)
            .execute(p)
            .await?;
            Ok(())
        })
    }

    async fn acme_order(&self, cert: &CertificateId, seq: u32) -> Result<Option<AcmeOrderRecord>> {
        let row: Option<OrderRow> = db_run!(&self.pool, |p| {
            sqlx::query_as(concat!(
                "SELECT ",
                order_columns!(),
                " FROM acme_orders WHERE cert_id = $1 AND seq = $2"
            ))
            .bind(cert.as_str())
            .bind(i64::from(seq))
            .fetch_optional(p)
            .await?
        });
        row.map(TryInto::try_into).transpose()
    }

    async fn latest_acme_order(&self, cert: &CertificateId) -> Result<Option<AcmeOrderRecord>> {
        let row: Option<OrderRow> = db_run!(&self.pool, |p| {
            sqlx::query_as(concat!(
                "SELECT ",
                order_columns!(),
                " FROM acme_orders WHERE cert_id = $1 ORDER BY seq DESC LIMIT 1"
            ))
            .bind(cert.as_str())
            .fetch_optional(p)
            .await?
        });
        row.map(TryInto::try_into).transpose()
    }

    async fn insert_acme_order(&self, r: &AcmeOrderRecord) -> Result<bool> {
        db_run!(&self.pool, |p| {
            let done = sqlx::query(concat!(
                "INSERT INTO acme_orders (",
                order_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                 ON CONFLICT (cert_id, seq) DO NOTHING"
            ))
            .bind(r.cert_id.as_str())
            .bind(i64::from(r.seq))
            .bind(r.domain_id.as_str())
            .bind(r.issuer.as_str())
            .bind(i64::from(r.issuer_index))
            .bind(r.state.as_str())
            .bind(r.order_url.as_deref())
            .bind(r.key_sealed.as_deref())
            .bind(r.data.as_str())
            .bind(r.placed_ms)
            .bind(r.error.as_deref())
            .bind(r.rev)
            .bind(r.created_ms)
            .bind(r.updated_ms)
            .execute(p)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    async fn update_acme_order(&self, r: &AcmeOrderRecord) -> Result<bool> {
        db_run!(&self.pool, |p| {
            let done = sqlx::query(
                "UPDATE acme_orders SET issuer = $1, issuer_index = $2, state = $3, \
                 order_url = $4, key_sealed = $5, data = $6, placed_ms = $7, error = $8, \
                 rev = rev + 1, updated_ms = $9 WHERE cert_id = $10 AND seq = $11 AND rev = $12",
            )
            .bind(r.issuer.as_str())
            .bind(i64::from(r.issuer_index))
            .bind(r.state.as_str())
            .bind(r.order_url.as_deref())
            .bind(r.key_sealed.as_deref())
            .bind(r.data.as_str())
            .bind(r.placed_ms)
            .bind(r.error.as_deref())
            .bind(r.updated_ms)
            .bind(r.cert_id.as_str())
            .bind(i64::from(r.seq))
            .bind(r.rev)
            .execute(p)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    async fn take_order_slot(
        &self,
        r: &AcmeOrderRecord,
        max: u32,
        since_ms: i64,
    ) -> Result<OrderSlot> {
        db_run!(&self.pool, |p| {
            let mut tx = p.begin().await?;
            // Writing the account row first serialises the count-and-take of every server on
            // PostgreSQL (a row lock) as SQLite's single writer does.
            sqlx::query("UPDATE acme_accounts SET updated_ms = updated_ms WHERE issuer = $1")
                .bind(r.issuer.as_str())
                .execute(&mut *tx)
                .await?;
            let (count, oldest): (i64, Option<i64>) = sqlx::query_as(
                "SELECT COUNT(*), MIN(placed_ms) FROM acme_orders \
                 WHERE issuer = $1 AND placed_ms >= $2",
            )
            .bind(r.issuer.as_str())
            .bind(since_ms)
            .fetch_one(&mut *tx)
            .await?;
            if count >= i64::from(max) {
                return Ok(OrderSlot::Full {
                    oldest_ms: oldest.unwrap_or(since_ms),
                });
            }
            let done = sqlx::query(
                "UPDATE acme_orders SET state = $1, order_url = $2, data = $3, placed_ms = $4, \
                 error = $5, rev = rev + 1, updated_ms = $6 \
                 WHERE cert_id = $7 AND seq = $8 AND rev = $9",
            )
            .bind(r.state.as_str())
            .bind(r.order_url.as_deref())
            .bind(r.data.as_str())
            .bind(r.placed_ms)
            .bind(r.error.as_deref())
            .bind(r.updated_ms)
            .bind(r.cert_id.as_str())
            .bind(i64::from(r.seq))
            .bind(r.rev)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Ok(OrderSlot::Stale);
            }
            tx.commit().await?;
            Ok(OrderSlot::Taken)
        })
    }

    async fn put_acme_token(
        &self,
        token: &str,
        key_authorization: &str,
        cert: &CertificateId,
        expires_ms: i64,
    ) -> Result<()> {
        db_run!(&self.pool, |p| {
            sqlx::query(
                "INSERT INTO acme_tokens (token, key_authorization, cert_id, expires_ms) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (token) DO UPDATE SET \
                 key_authorization = excluded.key_authorization, expires_ms = excluded.expires_ms",
            )
            .bind(token)
            .bind(key_authorization)
            .bind(cert.as_str())
            .bind(expires_ms)
            .execute(p)
            .await?;
            Ok(())
        })
    }

    async fn acme_token(&self, token: &str, now_ms: i64) -> Result<Option<String>> {
        Ok(db_run!(&self.pool, |p| {
            sqlx::query_scalar(
                "SELECT key_authorization FROM acme_tokens WHERE token = $1 AND expires_ms > $2",
            )
            .bind(token)
            .bind(now_ms)
            .fetch_optional(p)
            .await?
        }))
    }

    async fn delete_acme_tokens(&self, cert: &CertificateId, now_ms: i64) -> Result<()> {
        db_run!(&self.pool, |p| {
            sqlx::query("DELETE FROM acme_tokens WHERE cert_id = $1 OR expires_ms <= $2")
                .bind(cert.as_str())
                .bind(now_ms)
                .execute(p)
                .await?;
            Ok(())
        })
    }

    async fn record_name_failure(
        &self,
        account: &DomainId,
        name: &str,
        now_ms: i64,
        window_ms: i64,
    ) -> Result<NameFailures> {
        let row: FailureRow = db_run!(&self.pool, |p| {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO acme_name_failures (domain_id, name, failures, first_ms, last_ms) \
                 VALUES ($1, $2, 1, $3, $3) ON CONFLICT (domain_id, name) DO UPDATE SET \
                 failures = CASE WHEN acme_name_failures.first_ms <= $4 THEN 1 \
                                 ELSE acme_name_failures.failures + 1 END, \
                 first_ms = CASE WHEN acme_name_failures.first_ms <= $4 THEN $3 \
                                 ELSE acme_name_failures.first_ms END, \
                 last_ms = $3",
            )
            .bind(account.as_str())
            .bind(name)
            .bind(now_ms)
            .bind(now_ms.saturating_sub(window_ms))
            .execute(&mut *tx)
            .await?;
            let row = sqlx::query_as(
                "SELECT name, failures, first_ms, last_ms FROM acme_name_failures \
                 WHERE domain_id = $1 AND name = $2",
            )
            .bind(account.as_str())
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            row
        });
        failures(row)
    }

    async fn clear_name_failures(&self, account: &DomainId, names: &[String]) -> Result<()> {
        db_run!(&self.pool, |p| {
            for name in names {
                sqlx::query("DELETE FROM acme_name_failures WHERE domain_id = $1 AND name = $2")
                    .bind(account.as_str())
                    .bind(name.as_str())
                    .execute(p)
                    .await?;
            }
            Ok(())
        })
    }

    async fn name_failures(
        &self,
        account: &DomainId,
        names: &[String],
    ) -> Result<Vec<NameFailures>> {
        let mut out = Vec::new();
        for name in names {
            let row: Option<FailureRow> = db_run!(&self.pool, |p| {
                sqlx::query_as(
                    "SELECT name, failures, first_ms, last_ms FROM acme_name_failures \
                     WHERE domain_id = $1 AND name = $2",
                )
                .bind(account.as_str())
                .bind(name.as_str())
                .fetch_optional(p)
                .await?
            });
            if let Some(r) = row {
                out.push(failures(r)?);
            }
        }
        Ok(out)
    }
}
