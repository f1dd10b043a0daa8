//! [`SqlStore`]: the [`Store`] over sqlx's `Any` driver, so one set of queries (with `$n`
//! placeholders, which both backends accept) serves SQLite and PostgreSQL. Only the migrations
//! differ per backend.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use scm_proto::{AccessKeyId, CertificateId, CertificateStatus, DomainId, ProjectId};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

use crate::records::*;
use crate::{Result, Store, StoreError, migrate};

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file (the default).
    Sqlite,
    /// PostgreSQL server (several OpenSCM processes may share it).
    Postgres,
}

impl Backend {
    /// The backend a database URL names.
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

/// The SQL implementation of [`Store`].
#[derive(Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    /// The group-commit writer for issuance (see [`IssueWriter`]).
    issue_writer: IssueWriter,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl SqlStore {
    /// Connects to `url` (`sqlite://path?mode=rwc` or `postgres://...`) and applies migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        let backend = Backend::of_url(url).ok_or_else(|| {
            StoreError::Migration("database URL must start with sqlite: or postgres:".into())
        })?;
        sqlx::any::install_default_drivers();
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(30));
        let options = match backend {
            // One writer at a time is SQLite's model; a few connections let reads run beside it.
            Backend::Sqlite => options.max_connections(4).after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL: readers don't block the writer. synchronous=FULL: a commit is on disk
                    // before we answer, so an acknowledged order or issuance survives power loss.
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                         PRAGMA busy_timeout = 30000; PRAGMA foreign_keys = ON;",
                    )
                    .await?;
                    Ok(())
                })
            }),
            Backend::Postgres => options.max_connections(16),
        };
        let pool = options.connect(url).await?;
        migrate::run(&pool, backend).await?;
        // Both backends pay one durable flush per commit, and every issuance bumps the shared
        // revision row, so concurrent issuances are grouped into shared transactions on both.
        let issue_writer = IssueWriter::spawn(pool.clone());
        Ok(Self {
            pool,
            backend,
            issue_writer,
        })
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn conflict_or(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_owned())
        }
        _ => StoreError::Database(e),
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn parse_id<T: FromStr>(row: &AnyRow, col: &str) -> Result<T> {
    let s: String = row.try_get(col)?;
    T::from_str(&s).map_err(|_| corrupt(col))
}

fn account_from(row: &AnyRow) -> Result<AccountRecord> {
    Ok(AccountRecord {
        domain_id: parse_id(row, "domain_id")?,
        name: row.try_get("name")?,
        policy: row.try_get("policy")?,
        created_ms: row.try_get("created_ms")?,
    })
}

fn project_from(row: &AnyRow) -> Result<ProjectRecord> {
    Ok(ProjectRecord {
        project_id: parse_id(row, "project_id")?,
        domain_id: parse_id(row, "domain_id")?,
        name: row.try_get("name")?,
        created_ms: row.try_get("created_ms")?,
    })
}

fn credential_from(row: &AnyRow) -> Result<CredentialRecord> {
    let status: String = row.try_get("status")?;
    Ok(CredentialRecord {
        access_key: parse_id(row, "access_key")?,
        domain_id: parse_id(row, "domain_id")?,
        project_id: parse_id(row, "project_id")?,
        secret_sealed: row.try_get("secret_sealed")?,
        status: CredentialStatus::parse(&status).ok_or_else(|| corrupt("credentials.status"))?,
        description: row.try_get("description")?,
        created_ms: row.try_get("created_ms")?,
        revoked_ms: row.try_get("revoked_ms")?,
    })
}

const CERT_COLS: &str = "id, domain_id, project_id, order_id, name, status, brand, cert_type, domain_type, \
    effective_time, domain_numbers, primary_domain_type, single_domain_number, wildcard_domain_number, \
    enterprise_project_id, description, tags, domain, sans, application, csr_pem, validation_method, \
    key_algorithm, certificate_pem, chain_pem, private_key_sealed, serial_hex, fingerprint, \
    signature_algorithm, issued_ms, not_before_ms, not_after_ms, created_ms, updated_ms";

fn product_from(row: &AnyRow) -> Result<Product> {
    Ok(Product {
        brand: row.try_get("brand")?,
        cert_type: row.try_get("cert_type")?,
        domain_type: row.try_get("domain_type")?,
        effective_time: row.try_get("effective_time")?,
        domain_numbers: row.try_get("domain_numbers")?,
        primary_domain_type: row.try_get("primary_domain_type")?,
        single_domain_number: row.try_get("single_domain_number")?,
        wildcard_domain_number: row.try_get("wildcard_domain_number")?,
        enterprise_project_id: row.try_get("enterprise_project_id")?,
    })
}

fn certificate_from(row: &AnyRow) -> Result<CertificateRecord> {
    let status: String = row.try_get("status")?;
    let domain: Option<String> = row.try_get("domain")?;
    let application = match domain {
        Some(domain) => Some(ApplicationRecord {
            domain,
            sans: row
                .try_get::<Option<String>, _>("sans")?
                .unwrap_or_default(),
            form_json: row
                .try_get::<Option<String>, _>("application")?
                .unwrap_or_default(),
            csr_pem: row.try_get("csr_pem")?,
            validation_method: row.try_get("validation_method")?,
            key_algorithm: row.try_get("key_algorithm")?,
        }),
        None => None,
    };
    let certificate_pem: Option<String> = row.try_get("certificate_pem")?;
    let issued = match certificate_pem {
        Some(certificate_pem) => Some(IssuedRecord {
            certificate_pem,
            chain_pem: row
                .try_get::<Option<String>, _>("chain_pem")?
                .unwrap_or_default(),
            private_key_sealed: row.try_get("private_key_sealed")?,
            serial_hex: row
                .try_get::<Option<String>, _>("serial_hex")?
                .unwrap_or_default(),
            fingerprint: row
                .try_get::<Option<String>, _>("fingerprint")?
                .unwrap_or_default(),
            signature_algorithm: row
                .try_get::<Option<String>, _>("signature_algorithm")?
                .unwrap_or_default(),
            issued_ms: row
                .try_get::<Option<i64>, _>("issued_ms")?
                .unwrap_or_default(),
            not_before_ms: row
                .try_get::<Option<i64>, _>("not_before_ms")?
                .unwrap_or_default(),
            not_after_ms: row
                .try_get::<Option<i64>, _>("not_after_ms")?
                .unwrap_or_default(),
        }),
        None => None,
    };
    Ok(CertificateRecord {
        id: parse_id(row, "id")?,
        domain_id: parse_id(row, "domain_id")?,
        project_id: parse_id(row, "project_id")?,
        order_id: parse_id(row, "order_id")?,
        name: row.try_get("name")?,
        status: CertificateStatus::from_str(&status)
            .map_err(|()| corrupt("certificates.status"))?,
        product: product_from(row)?,
        description: row.try_get("description")?,
        tags_json: row.try_get("tags")?,
        application,
        issued,
        created_ms: row.try_get("created_ms")?,
        updated_ms: row.try_get("updated_ms")?,
    })
}

fn push_from(row: &AnyRow) -> Result<PushRecord> {
    let outcome: String = row.try_get("outcome")?;
    Ok(PushRecord {
        cert_id: parse_id(row, "cert_id")?,
        domain_id: parse_id(row, "domain_id")?,
        pushed_ms: row.try_get("pushed_ms")?,
        service: row.try_get("service")?,
        region: row.try_get("region")?,
        outcome: PushOutcome::parse(&outcome).ok_or_else(|| corrupt("push_records.outcome"))?,
        detail: row.try_get("detail")?,
        targets: row.try_get("targets")?,
    })
}

async fn insert_account<'c, E>(e: E, a: &AccountRecord) -> Result<()>
where
    E: Executor<'c, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO accounts (domain_id, name, policy, created_ms) VALUES ($1, $2, $3, $4)",
    )
    .bind(a.domain_id.as_str())
    .bind(a.name.as_str())
    .bind(a.policy.as_str())
    .bind(a.created_ms)
    .execute(e)
    .await
    .map_err(conflict_or)?;
    Ok(())
}

async fn insert_project<'c, E>(e: E, p: &ProjectRecord) -> Result<()>
where
    E: Executor<'c, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO projects (project_id, domain_id, name, created_ms) VALUES ($1, $2, $3, $4)",
    )
    .bind(p.project_id.as_str())
    .bind(p.domain_id.as_str())
    .bind(p.name.as_str())
    .bind(p.created_ms)
    .execute(e)
    .await
    .map_err(conflict_or)?;
    Ok(())
}

async fn insert_credential<'c, E>(e: E, c: &CredentialRecord) -> Result<()>
where
    E: Executor<'c, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO credentials (access_key, domain_id, project_id, secret_sealed, status, description, \
         created_ms, revoked_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(c.access_key.as_str())
    .bind(c.domain_id.as_str())
    .bind(c.project_id.as_str())
    .bind(c.secret_sealed.clone())
    .bind(c.status.as_str())
    .bind(c.description.as_str())
    .bind(c.created_ms)
    .bind(c.revoked_ms)
    .execute(e)
    .await
    .map_err(conflict_or)?;
    Ok(())
}

const BUMP: &str = "UPDATE revision SET n = n + 1 WHERE id = 1";

/// The application columns written by save and by issuance.
fn bind_application<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    app: &ApplicationRecord,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    q.bind(app.domain.clone())
        .bind(app.sans.clone())
        .bind(app.form_json.clone())
        .bind(app.csr_pem.clone())
        .bind(app.validation_method.clone())
        .bind(app.key_algorithm.clone())
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> Backend {
        self.backend
    }

    async fn bootstrap(&self, b: &Bootstrap) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
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
        insert_account(&mut *tx, &b.account).await?;
        insert_project(&mut *tx, &b.project).await?;
        insert_credential(&mut *tx, &b.credential).await?;
        sqlx::query(
            "INSERT INTO ca (id, root_cert_pem, root_key_sealed, intermediate_cert_pem, intermediate_key_sealed, \
             created_ms) VALUES ('builtin', $1, $2, $3, $4, $5)",
        )
        .bind(b.ca.root_cert_pem.as_str())
        .bind(b.ca.root_key_sealed.clone())
        .bind(b.ca.intermediate_cert_pem.as_str())
        .bind(b.ca.intermediate_key_sealed.clone())
        .bind(b.ca.created_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn revision(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT n FROM revision WHERE id = 1")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn init_meta(&self, key: &str, value: &str) -> Result<String> {
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        self.meta(key).await?.ok_or_else(|| corrupt("meta"))
    }

    async fn create_account(&self, account: &AccountRecord, project: &ProjectRecord) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        insert_account(&mut *tx, account).await?;
        insert_project(&mut *tx, project).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_project(&self, project: &ProjectRecord) -> Result<()> {
        insert_project(&self.pool, project).await
    }

    async fn account(&self, id: &DomainId) -> Result<Option<AccountRecord>> {
        let row = sqlx::query(
            "SELECT domain_id, name, policy, created_ms FROM accounts WHERE domain_id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(account_from).transpose()
    }

    async fn accounts(&self) -> Result<Vec<AccountRecord>> {
        let rows = sqlx::query("SELECT domain_id, name, policy, created_ms FROM accounts ORDER BY created_ms, domain_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(account_from).collect()
    }

    async fn project(&self, id: &ProjectId) -> Result<Option<ProjectRecord>> {
        let row = sqlx::query(
            "SELECT project_id, domain_id, name, created_ms FROM projects WHERE project_id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(project_from).transpose()
    }

    async fn projects(&self, account: &DomainId) -> Result<Vec<ProjectRecord>> {
        let rows = sqlx::query(
            "SELECT project_id, domain_id, name, created_ms FROM projects WHERE domain_id = $1 \
             ORDER BY created_ms, project_id",
        )
        .bind(account.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(project_from).collect()
    }

    async fn set_policy(&self, account: &DomainId, policy: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE accounts SET policy = $1 WHERE domain_id = $2")
            .bind(policy)
            .bind(account.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query(BUMP).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_credential(&self, c: &CredentialRecord) -> Result<()> {
        insert_credential(&self.pool, c).await
    }

    async fn credential(&self, ak: &AccessKeyId) -> Result<Option<CredentialRecord>> {
        let row = sqlx::query(
            "SELECT access_key, domain_id, project_id, secret_sealed, status, description, created_ms, revoked_ms \
             FROM credentials WHERE access_key = $1",
        )
        .bind(ak.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(credential_from).transpose()
    }

    async fn credentials(&self, account: Option<&DomainId>) -> Result<Vec<CredentialRecord>> {
        let rows = match account {
            Some(a) => {
                sqlx::query(
                    "SELECT access_key, domain_id, project_id, secret_sealed, status, description, created_ms, \
                     revoked_ms FROM credentials WHERE domain_id = $1 ORDER BY created_ms, access_key",
                )
                .bind(a.as_str())
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT access_key, domain_id, project_id, secret_sealed, status, description, created_ms, \
                     revoked_ms FROM credentials ORDER BY created_ms, access_key",
                )
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(credential_from).collect()
    }

    async fn revoke_credential(&self, ak: &AccessKeyId, now_ms: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE credentials SET status = 'revoked', revoked_ms = $1 WHERE access_key = $2 AND status = 'active'",
        )
        .bind(now_ms)
        .bind(ak.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query(BUMP).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_token(&self, t: &TokenRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO tokens (token_hash, access_key, domain_id, project_id, issued_ms, expires_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(t.token_hash.as_str())
        .bind(t.access_key.as_str())
        .bind(t.domain_id.as_str())
        .bind(t.project_id.as_str())
        .bind(t.issued_ms)
        .bind(t.expires_ms)
        .execute(&self.pool)
        .await
        .map_err(conflict_or)?;
        Ok(())
    }

    async fn token(&self, token_hash: &str) -> Result<Option<(TokenRecord, CredentialStatus)>> {
        let row = sqlx::query(
            "SELECT t.token_hash, t.access_key, t.domain_id, t.project_id, t.issued_ms, t.expires_ms, c.status \
             FROM tokens t JOIN credentials c ON c.access_key = t.access_key WHERE t.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let status: String = row.try_get("status")?;
        let token = TokenRecord {
            token_hash: row.try_get("token_hash")?,
            access_key: parse_id(&row, "access_key")?,
            domain_id: parse_id(&row, "domain_id")?,
            project_id: parse_id(&row, "project_id")?,
            issued_ms: row.try_get("issued_ms")?,
            expires_ms: row.try_get("expires_ms")?,
        };
        let status =
            CredentialStatus::parse(&status).ok_or_else(|| corrupt("credentials.status"))?;
        Ok(Some((token, status)))
    }

    async fn ca(&self) -> Result<Option<CaRecord>> {
        let row = sqlx::query(
            "SELECT root_cert_pem, root_key_sealed, intermediate_cert_pem, intermediate_key_sealed, created_ms \
             FROM ca WHERE id = 'builtin'",
        )
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(CaRecord {
            root_cert_pem: row.try_get("root_cert_pem")?,
            root_key_sealed: row.try_get("root_key_sealed")?,
            intermediate_cert_pem: row.try_get("intermediate_cert_pem")?,
            intermediate_key_sealed: row.try_get("intermediate_key_sealed")?,
            created_ms: row.try_get("created_ms")?,
        }))
    }

    async fn create_order(
        &self,
        order: &OrderRecord,
        template: &NewCertificate,
        count: u32,
        now_ms: i64,
    ) -> Result<Vec<CertificateId>> {
        let n = i64::from(count);
        let mut tx = self.pool.begin().await?;
        // Write first, so that SQLite takes its write lock at once (a read-then-write transaction
        // can fail to upgrade under contention). The allocator hands out `n` consecutive
        // milliseconds above both the last id and now, so ids stay unique across processes even
        // when 100 certificates are bought in one millisecond.
        let max_fn = match self.backend {
            Backend::Sqlite => {
                "UPDATE id_alloc SET last_ms = MAX(last_ms + $1, $2) WHERE name = 'certificate' RETURNING last_ms"
            }
            Backend::Postgres => {
                "UPDATE id_alloc SET last_ms = GREATEST(last_ms + $1, $2) WHERE name = 'certificate' RETURNING last_ms"
            }
        };
        let last: i64 = sqlx::query_scalar(max_fn)
            .bind(n)
            .bind(now_ms + n - 1)
            .fetch_one(&mut *tx)
            .await?;
        let p = &order.product;
        sqlx::query(
            "INSERT INTO orders (order_id, domain_id, project_id, brand, cert_type, domain_type, effective_time, \
             domain_numbers, order_number, primary_domain_type, single_domain_number, wildcard_domain_number, \
             enterprise_project_id, tags, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(order.order_id.as_str())
        .bind(order.domain_id.as_str())
        .bind(order.project_id.as_str())
        .bind(p.brand.as_str())
        .bind(p.cert_type.as_str())
        .bind(p.domain_type.as_str())
        .bind(p.effective_time)
        .bind(p.domain_numbers)
        .bind(order.order_number)
        .bind(p.primary_domain_type.clone())
        .bind(p.single_domain_number)
        .bind(p.wildcard_domain_number)
        .bind(p.enterprise_project_id.as_str())
        .bind(order.tags_json.as_str())
        .bind(order.created_ms)
        .execute(&mut *tx)
        .await
        .map_err(conflict_or)?;
        let mut ids = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        for ms in (last - n + 1)..=last {
            let id = u64::try_from(ms)
                .ok()
                .and_then(CertificateId::from_millis)
                .ok_or_else(|| corrupt("id_alloc.last_ms"))?;
            sqlx::query(
                "INSERT INTO certificates (id, domain_id, project_id, order_id, name, status, brand, cert_type, \
                 domain_type, effective_time, domain_numbers, primary_domain_type, single_domain_number, \
                 wildcard_domain_number, enterprise_project_id, description, tags, created_ms, updated_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $18)",
            )
            .bind(id.as_str())
            .bind(order.domain_id.as_str())
            .bind(order.project_id.as_str())
            .bind(order.order_id.as_str())
            .bind(format!("{}-{}", template.name, id.as_str()))
            .bind(template.status.as_str())
            .bind(p.brand.as_str())
            .bind(p.cert_type.as_str())
            .bind(p.domain_type.as_str())
            .bind(p.effective_time)
            .bind(p.domain_numbers)
            .bind(p.primary_domain_type.clone())
            .bind(p.single_domain_number)
            .bind(p.wildcard_domain_number)
            .bind(p.enterprise_project_id.as_str())
            .bind(template.description.as_str())
            .bind(order.tags_json.as_str())
            .bind(order.created_ms)
            .execute(&mut *tx)
            .await
            .map_err(conflict_or)?;
            ids.push(id);
        }
        tx.commit().await?;
        Ok(ids)
    }

    async fn certificate(&self, id: &CertificateId) -> Result<Option<CertificateRecord>> {
        let sql = format!("SELECT {CERT_COLS} FROM certificates WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(certificate_from).transpose()
    }

    async fn list_certificates(
        &self,
        account: &DomainId,
        q: &ListQuery,
    ) -> Result<(Vec<CertificateRecord>, u64)> {
        // Only fixed fragments are spliced into the SQL; every value is a bind parameter.
        let mut filter = String::from("domain_id = $1");
        let status = q.status.map(|s| s.as_str());
        filter.push_str(" AND ($2 IS NULL OR status = $2)");
        let content = q.content.as_ref().map(|c| format!("%{}%", escape_like(c)));
        filter.push_str(
            " AND ($3 IS NULL OR name LIKE $3 ESCAPE '\\' OR domain LIKE $3 ESCAPE '\\')",
        );
        filter.push_str(" AND ($4 IS NULL OR enterprise_project_id = $4)");
        filter.push_str(" AND ($5 IS NULL OR not_after_ms IS NULL OR not_after_ms >= $5)");
        if q.deploy_support {
            filter.push_str(" AND status IN ('ISSUED', 'UPLOAD')");
        }
        let order_col = match q.sort_key {
            SortKey::ExpiredTime => "not_after_ms",
            SortKey::Status => "status",
            SortKey::UpdateTime => "updated_ms",
        };
        let dir = if q.ascending { "ASC" } else { "DESC" };
        let count_sql = format!("SELECT COUNT(*) FROM certificates WHERE {filter}");
        let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql))
            .bind(account.as_str())
            .bind(status)
            .bind(content.clone())
            .bind(q.enterprise_project_id.clone())
            .bind(q.expired_after_ms)
            .fetch_one(&self.pool)
            .await?;
        let page_sql = format!(
            "SELECT {CERT_COLS} FROM certificates WHERE {filter} ORDER BY {order_col} {dir}, id {dir} LIMIT $6 OFFSET $7"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(page_sql))
            .bind(account.as_str())
            .bind(status)
            .bind(content)
            .bind(q.enterprise_project_id.clone())
            .bind(q.expired_after_ms)
            .bind(i64::from(q.limit))
            .bind(i64::from(q.offset))
            .fetch_all(&self.pool)
            .await?;
        let certs = rows
            .iter()
            .map(certificate_from)
            .collect::<Result<Vec<_>>>()?;
        Ok((certs, u64::try_from(total).unwrap_or(0)))
    }

    async fn save_application(
        &self,
        id: &CertificateId,
        expect: CertificateStatus,
        app: &ApplicationRecord,
        now_ms: i64,
    ) -> Result<bool> {
        let q = sqlx::query(
            "UPDATE certificates SET domain = $1, sans = $2, application = $3, csr_pem = $4, validation_method = $5, \
             key_algorithm = $6, updated_ms = $7 WHERE id = $8 AND status = $9",
        );
        let mut tx = self.pool.begin().await?;
        let done = bind_application(q, app)
            .bind(now_ms)
            .bind(id.as_str())
            .bind(expect.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query(BUMP).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn mark_issued(
        &self,
        id: &CertificateId,
        expect: CertificateStatus,
        app: &ApplicationRecord,
        issued: &IssuedRecord,
        now_ms: i64,
    ) -> Result<bool> {
        let job = IssueJob {
            id: id.clone(),
            expect,
            app: app.clone(),
            issued: issued.clone(),
            now_ms,
        };
        self.issue_writer.submit(job).await
    }

    async fn record_push(&self, rec: &PushRecord) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO push_records (cert_id, domain_id, pushed_ms, service, region, outcome, detail, targets) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(rec.cert_id.as_str())
        .bind(rec.domain_id.as_str())
        .bind(rec.pushed_ms)
        .bind(rec.service.as_str())
        .bind(rec.region.clone())
        .bind(rec.outcome.as_str())
        .bind(rec.detail.as_str())
        .bind(rec.targets.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query(BUMP).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn push_history(
        &self,
        cert: &CertificateId,
        limit: u32,
        successful_only: bool,
    ) -> Result<Vec<PushRecord>> {
        let sql = if successful_only {
            "SELECT cert_id, domain_id, pushed_ms, service, region, outcome, detail, targets FROM push_records \
             WHERE cert_id = $1 AND outcome = 'success' ORDER BY pushed_ms DESC, id DESC LIMIT $2"
        } else {
            "SELECT cert_id, domain_id, pushed_ms, service, region, outcome, detail, targets FROM push_records \
             WHERE cert_id = $1 ORDER BY pushed_ms DESC, id DESC LIMIT $2"
        };
        let rows = sqlx::query(sql)
            .bind(cert.as_str())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(push_from).collect()
    }
}

/// One issuance to record: the conditional `PAID -> ISSUED` update.
struct IssueJob {
    id: CertificateId,
    expect: CertificateStatus,
    app: ApplicationRecord,
    issued: IssuedRecord,
    now_ms: i64,
}

impl IssueJob {
    async fn execute(&self, tx: &mut sqlx::Transaction<'static, sqlx::Any>) -> Result<bool> {
        let q = sqlx::query(
            "UPDATE certificates SET domain = $1, sans = $2, application = $3, csr_pem = $4, validation_method = $5, \
             key_algorithm = $6, certificate_pem = $7, chain_pem = $8, private_key_sealed = $9, serial_hex = $10, \
             fingerprint = $11, signature_algorithm = $12, issued_ms = $13, not_before_ms = $14, \
             not_after_ms = $15, status = 'ISSUED', updated_ms = $16 WHERE id = $17 AND status = $18",
        );
        let i = &self.issued;
        let done = bind_application(q, &self.app)
            .bind(i.certificate_pem.clone())
            .bind(i.chain_pem.clone())
            .bind(i.private_key_sealed.clone())
            .bind(i.serial_hex.clone())
            .bind(i.fingerprint.clone())
            .bind(i.signature_algorithm.clone())
            .bind(i.issued_ms)
            .bind(i.not_before_ms)
            .bind(i.not_after_ms)
            .bind(self.now_ms)
            .bind(self.id.as_str())
            .bind(self.expect.as_str())
            .execute(&mut **tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

type IssueReply = tokio::sync::oneshot::Sender<Result<bool>>;

/// Group commit: every commit is a durable flush, and writers queue for one lock anyway (SQLite's
/// write lock, PostgreSQL's revision row), so issuances that arrive while a commit is being flushed
/// are recorded together in the next transaction.
/// Each is still its own conditional update with its own answer, and no caller hears "done" before
/// the transaction holding its row is durable.
#[derive(Clone)]
struct IssueWriter {
    queue: tokio::sync::mpsc::Sender<(IssueJob, IssueReply)>,
}

/// Most issuances per transaction.
const MAX_BATCH: usize = 256;

impl IssueWriter {
    fn spawn(pool: AnyPool) -> Self {
        let (queue, mut rx) = tokio::sync::mpsc::channel::<(IssueJob, IssueReply)>(4 * MAX_BATCH);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                match Self::commit(&pool, &batch).await {
                    Ok(results) => {
                        for ((_, reply), done) in batch.into_iter().zip(results) {
                            let _ = reply.send(Ok(done));
                        }
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        for (_, reply) in batch {
                            let _ = reply.send(Err(StoreError::Batch(msg.clone())));
                        }
                    }
                }
            }
        });
        Self { queue }
    }

    async fn commit(pool: &AnyPool, batch: &[(IssueJob, IssueReply)]) -> Result<Vec<bool>> {
        let mut tx = pool.begin().await?;
        let mut results = Vec::with_capacity(batch.len());
        for (job, _) in batch {
            results.push(job.execute(&mut tx).await?);
        }
        sqlx::query(BUMP).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(results)
    }

    async fn submit(&self, job: IssueJob) -> Result<bool> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.queue
            .send((job, reply))
            .await
            .map_err(|_| StoreError::Batch("issue writer stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Batch("issue writer stopped".into()))?
    }
}

fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
impl SqlStore {
    pub(crate) fn pool_for_tests(&self) -> AnyPool {
        self.pool.clone()
    }
}
