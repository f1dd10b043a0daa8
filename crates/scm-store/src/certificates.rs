//! [`Certificates`]: orders, certificates, applications, and issuance with group commit.

use async_trait::async_trait;
use scm_proto::{
    Brand, CertType, CertificateId, CertificateStatus, DomainId, DomainType, OrderId,
    PrimaryDomainType, ProjectId,
};

use crate::pool::{BUMP_CERTIFICATES, Pool, conflict_or, corrupt, db_run};
use crate::records::{
    ApplicationRecord, CertificateRecord, ChainTrustRecord, IssuedRecord, LifecycleRecord,
    ListQuery, NewCertificate, NewVersion, OrderRecord, Product, Quotas, RevocationRecord, SortKey,
    VersionExpect,
};
use crate::{Certificates, Result, SqlStore, StoreError, dialect};

macro_rules! select_certificates {
    ($tail:literal) => {
        concat!(
            "SELECT id, domain_id, project_id, order_id, name, status, brand, cert_type, domain_type, \
             effective_time, domain_numbers, primary_domain_type, single_domain_number, \
             wildcard_domain_number, enterprise_project_id, description, tags, domain, sans, \
             application, csr_pem, validation_method, key_algorithm, certificate_pem, chain_pem, \
             private_key_sealed, serial_hex, fingerprint, signature_algorithm, issued_ms, \
             not_before_ms, not_after_ms, created_ms, updated_ms, issuer, chain_trusted, \
             chain_trust_note, revoked_ms, revoke_reason, ca_id, current_version, renew_at_ms, \
             auto_renew, validation_started_ms FROM certificates ",
            $tail
        )
    };
}

struct CertificateRow {
    id: CertificateId,
    domain_id: DomainId,
    project_id: ProjectId,
    order_id: OrderId,
    name: String,
    status: String,
    brand: String,
    cert_type: String,
    domain_type: String,
    effective_time: i64,
    domain_numbers: i64,
    primary_domain_type: Option<String>,
    single_domain_number: Option<i64>,
    wildcard_domain_number: Option<i64>,
    enterprise_project_id: String,
    description: String,
    tags: String,
    domain: Option<String>,
    sans: Option<String>,
    application: Option<String>,
    csr_pem: Option<String>,
    validation_method: Option<String>,
    key_algorithm: Option<String>,
    certificate_pem: Option<String>,
    chain_pem: Option<String>,
    private_key_sealed: Option<Vec<u8>>,
    serial_hex: Option<String>,
    fingerprint: Option<String>,
    signature_algorithm: Option<String>,
    issued_ms: Option<i64>,
    not_before_ms: Option<i64>,
    not_after_ms: Option<i64>,
    created_ms: i64,
    updated_ms: i64,
    issuer: Option<String>,
    chain_trusted: Option<bool>,
    chain_trust_note: Option<String>,
    revoked_ms: Option<i64>,
    revoke_reason: Option<String>,
    ca_id: Option<String>,
    current_version: Option<i64>,
    renew_at_ms: Option<i64>,
    auto_renew: bool,
    validation_started_ms: Option<i64>,
}

crate::row::from_row!(CertificateRow { id [via String], domain_id [via String], project_id [via String], order_id [via String], name, status, brand, cert_type, domain_type, effective_time, domain_numbers, primary_domain_type, single_domain_number, wildcard_domain_number, enterprise_project_id, description, tags, domain, sans, application, csr_pem, validation_method, key_algorithm, certificate_pem, chain_pem, private_key_sealed, serial_hex, fingerprint, signature_algorithm, issued_ms, not_before_ms, not_after_ms, created_ms, updated_ms, issuer, chain_trusted, chain_trust_note, revoked_ms, revoke_reason, ca_id, current_version, renew_at_ms, auto_renew, validation_started_ms });

fn parsed<T>(v: Option<T>, what: &str) -> Result<T> {
    v.ok_or_else(|| corrupt(what))
}

impl TryFrom<CertificateRow> for CertificateRecord {
    type Error = StoreError;

    fn try_from(r: CertificateRow) -> Result<Self> {
        let application = match r.domain {
            Some(domain) => Some(ApplicationRecord {
                domain,
                sans: r.sans.unwrap_or_default(),
                form_json: r.application.unwrap_or_default(),
                csr_pem: r.csr_pem,
                validation_method: r.validation_method,
                key_algorithm: r.key_algorithm,
            }),
            None => None,
        };
        // An issued row has every issued column; a missing one is corruption, not a default.
        let issued = match r.certificate_pem {
            Some(certificate_pem) => Some(IssuedRecord {
                certificate_pem,
                chain_pem: parsed(r.chain_pem, "certificates.chain_pem")?,
                private_key_sealed: r.private_key_sealed,
                serial_hex: parsed(r.serial_hex, "certificates.serial_hex")?,
                fingerprint: parsed(r.fingerprint, "certificates.fingerprint")?,
                signature_algorithm: parsed(
                    r.signature_algorithm,
                    "certificates.signature_algorithm",
                )?,
                issued_ms: parsed(r.issued_ms, "certificates.issued_ms")?,
                not_before_ms: parsed(r.not_before_ms, "certificates.not_before_ms")?,
                not_after_ms: parsed(r.not_after_ms, "certificates.not_after_ms")?,
                ca_id: r.ca_id,
            }),
            None => None,
        };
        let primary_domain_type = match r.primary_domain_type.as_deref() {
            Some(t) => Some(parsed(
                PrimaryDomainType::parse(t),
                "certificates.primary_domain_type",
            )?),
            None => None,
        };
        Ok(Self {
            id: r.id,
            domain_id: r.domain_id,
            project_id: r.project_id,
            order_id: r.order_id,
            name: r.name,
            status: r
                .status
                .parse::<CertificateStatus>()
                .map_err(|()| corrupt("certificates.status"))?,
            product: Product {
                brand: parsed(Brand::parse(&r.brand), "certificates.brand")?,
                cert_type: parsed(CertType::parse(&r.cert_type), "certificates.cert_type")?,
                domain_type: parsed(
                    DomainType::parse(&r.domain_type),
                    "certificates.domain_type",
                )?,
                effective_time: r.effective_time,
                domain_numbers: r.domain_numbers,
                primary_domain_type,
                single_domain_number: r.single_domain_number,
                wildcard_domain_number: r.wildcard_domain_number,
                enterprise_project_id: r.enterprise_project_id,
            },
            description: r.description,
            tags_json: r.tags,
            application,
            issued,
            created_ms: r.created_ms,
            updated_ms: r.updated_ms,
            issuer: r.issuer,
            chain_trust: match r.chain_trusted {
                Some(trusted) => Some(ChainTrustRecord {
                    trusted,
                    note: r.chain_trust_note.unwrap_or_default(),
                }),
                None => None,
            },
            revocation: r.revoked_ms.map(|revoked_ms| RevocationRecord {
                revoked_ms,
                reason: r.revoke_reason.unwrap_or_default(),
            }),
            lifecycle: LifecycleRecord {
                current_version: r
                    .current_version
                    .map(|v| u32::try_from(v).map_err(|_| corrupt("certificates.current_version")))
                    .transpose()?,
                renew_at_ms: r.renew_at_ms,
                auto_renew: r.auto_renew,
                validation_started_ms: r.validation_started_ms,
            },
        })
    }
}

/// Escapes `LIKE` wildcards so the keyword matches literally (with `ESCAPE '\'`).
pub(crate) fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Certificates that can be pushed: the SQL form of [`CertificateRecord::is_pushable`]
/// (deployable statuses of [`CertificateStatus::is_deployable`], key held; a test pins the two).
macro_rules! deployable_sql {
    () => {
        "status IN ('ISSUED', 'UPLOAD') AND private_key_sealed IS NOT NULL \
         AND (not_after_ms IS NULL OR not_after_ms > $7)"
    };
}

#[cfg(test)]
pub(crate) const DEPLOYABLE_SQL: &str = deployable_sql!();

/// The WHERE clause of a list query, from fixed fragments only: `$1` account, `$2` status (as
/// shown at `$7`), `$3` the lower-cased `%keyword%` (of the name, the domain or one of the SANs),
/// `$4` enterprise project, `$5` expired-after, `$6` deployable only, `$7` now, `$8`/`$9` the
/// expiry window (from, before). A filter that is
/// absent becomes a constant test of its (NULL) parameter rather than `$n IS NULL OR …`, so that
/// the query names no column it does not filter on and the planner can answer from an index.
fn list_filter(q: &ListQuery) -> String {
    let mut w = String::from("domain_id = $1");
    // The status shown at `$7`: the SQL form of `CertificateStatus::at` (the store tests pin the
    // two): an issued or imported certificate past its `not_after` shows EXPIRED.
    w.push_str(match q.status {
        None => " AND CAST($2 AS TEXT) IS NULL",
        Some(CertificateStatus::Issued | CertificateStatus::Upload) => {
            " AND status = $2 AND (not_after_ms IS NULL OR not_after_ms > $7)"
        }
        Some(CertificateStatus::Expired) => {
            " AND (status = $2 OR (status IN ('ISSUED', 'UPLOAD') AND not_after_ms <= $7))"
        }
        Some(_) => " AND status = $2",
    });
    // The keyword is matched case-insensitively on both backends: the search column is
    // lower-cased by the database, the keyword here (SQLite's `lower` folds ASCII only, which
    // covers DNS names and the names OpenSCM gives certificates).
    // (PostgreSQL answers it from a trigram index where pg_trgm is available: migration 0009.)
    w.push_str(if q.content.is_some() {
        " AND search_text LIKE $3 ESCAPE '\\'"
    } else {
        " AND CAST($3 AS TEXT) IS NULL"
    });
    w.push_str(if q.enterprise_project_id.is_some() {
        " AND enterprise_project_id = $4"
    } else {
        " AND CAST($4 AS TEXT) IS NULL"
    });
    w.push_str(if q.expired_after_ms.is_some() {
        " AND (not_after_ms IS NULL OR not_after_ms >= $5)"
    } else {
        " AND CAST($5 AS BIGINT) IS NULL"
    });
    w.push_str(if q.deploy_support {
        concat!(" AND CAST($6 AS BIGINT) = 1 AND ", deployable_sql!())
    } else {
        " AND CAST($6 AS BIGINT) = 0"
    });
    w.push_str(" AND CAST($7 AS BIGINT) IS NOT NULL");
    // Spelled as the expiry sort index's expression, so that the window is a range of it.
    w.push_str(if q.expires_within.is_some() {
        " AND coalesce(not_after_ms, 9223372036854775807) >= $8 \
         AND coalesce(not_after_ms, 9223372036854775807) < $9"
    } else {
        " AND CAST($8 AS BIGINT) IS NULL AND CAST($9 AS BIGINT) IS NULL"
    });
    w
}

/// The ORDER BY of a sort key and direction. Each has its index (migration 0009), ending in the
/// id tiebreak. Certificates not issued yet have no expiry: they come last either way, on both
/// backends (which would otherwise disagree: SQLite sorts NULL first, PostgreSQL last).
fn list_order(key: SortKey, ascending: bool) -> &'static str {
    match (key, ascending) {
        (SortKey::ExpiredTime, true) => "coalesce(not_after_ms, 9223372036854775807) ASC, id ASC",
        (SortKey::ExpiredTime, false) => "coalesce(not_after_ms, -1) DESC, id DESC",
        (SortKey::Status, true) => "status ASC, id ASC",
        (SortKey::Status, false) => "status DESC, id DESC",
        (SortKey::UpdateTime, true) => "updated_ms ASC, id ASC",
        (SortKey::UpdateTime, false) => "updated_ms DESC, id DESC",
    }
}

/// The columns [`list_order`] sorts by, for a query that sorts a subquery's rows.
fn sort_columns(key: SortKey) -> &'static str {
    match key {
        SortKey::ExpiredTime => "id, not_after_ms",
        SortKey::Status => "id, status",
        SortKey::UpdateTime => "id, updated_ms",
    }
}

/// `$first, $first+1, …` for `n` parameters.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Binds the nine filter parameters of [`list_filter`] to `$q`.
macro_rules! bind_filter {
    ($query:expr, $account:expr, $q:expr, $status:expr, $content:expr) => {{
        let q: &ListQuery = $q;
        $query
            .bind($account)
            .bind($status)
            .bind($content)
            .bind(q.enterprise_project_id.as_deref())
            .bind(q.expired_after_ms)
            .bind(i64::from(q.deploy_support))
            .bind(q.now_ms)
            .bind(q.expires_within.map(|(from, _)| from))
            .bind(q.expires_within.map(|(_, before)| before))
    }};
}

/// Binds the nine product columns (brand .. enterprise_project_id, in table order) of `$p`.
macro_rules! bind_product {
    ($q:expr, $p:expr) => {{
        let p: &Product = $p;
        $q.bind(p.brand.as_str())
            .bind(p.cert_type.as_str())
            .bind(p.domain_type.as_str())
            .bind(p.effective_time)
            .bind(p.domain_numbers)
            .bind(p.primary_domain_type.map(PrimaryDomainType::as_str))
            .bind(p.single_domain_number)
            .bind(p.wildcard_domain_number)
            .bind(p.enterprise_project_id.as_str())
    }};
}
pub(crate) use bind_product;

/// Binds the fifteen material columns (domain .. not_after_ms, in table order) of an
/// application `$app` and its issued certificate `$issued`.
macro_rules! bind_material {
    ($q:expr, $app:expr, $issued:expr) => {{
        let (app, i): (&ApplicationRecord, &IssuedRecord) = ($app, $issued);
        $q.bind(app.domain.as_str())
            .bind(app.sans.as_str())
            .bind(app.form_json.as_str())
            .bind(app.csr_pem.as_deref())
            .bind(app.validation_method.as_deref())
            .bind(app.key_algorithm.as_deref())
            .bind(i.certificate_pem.as_str())
            .bind(i.chain_pem.as_str())
            .bind(i.private_key_sealed.as_deref())
            .bind(i.serial_hex.as_str())
            .bind(i.fingerprint.as_str())
            .bind(i.signature_algorithm.as_str())
            .bind(i.issued_ms)
            .bind(i.not_before_ms)
            .bind(i.not_after_ms)
    }};
}
pub(crate) use bind_material;

/// Inserts an order: `$1` id, `$2` account, `$3` project, the product (`bind_product!`), then
/// `$13` order number, `$14` tags, `$15` time.
pub(crate) const INSERT_ORDER: &str = "INSERT INTO orders (order_id, domain_id, project_id, brand, cert_type, domain_type, \
     effective_time, domain_numbers, primary_domain_type, single_domain_number, \
     wildcard_domain_number, enterprise_project_id, order_number, tags, created_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";

#[async_trait]
impl Certificates for SqlStore {
    async fn create_order(
        &self,
        order: &OrderRecord,
        template: &NewCertificate,
        count: u32,
        now_ms: i64,
        max_lead_ms: Option<i64>,
        quotas: &Quotas,
    ) -> Result<Vec<CertificateId>> {
        let n = i64::from(count);
        let p = &order.product;
        let day = now_ms.div_euclid(86_400_000);
        let max_certs = i64::try_from(quotas.certificates_per_account).unwrap_or(i64::MAX);
        let max_orders = i64::try_from(quotas.orders_per_day).unwrap_or(i64::MAX);
        db_run!(&self.pool, |pool| {
            let mut tx = pool.begin().await?;
            // The quotas are checked and counted by one conditional update of the account row:
            // it is also this transaction's first write (SQLite takes its write lock at once) and,
            // on PostgreSQL, locks the row, so concurrent orders of one account cannot both pass.
            let counted = sqlx::query(
                "UPDATE accounts SET certificate_count = certificate_count + $2, \
                 orders_today = CASE WHEN order_day = $3 THEN orders_today + 1 ELSE 1 END, \
                 order_day = $3 \
                 WHERE domain_id = $1 AND certificate_count + $2 <= $4 \
                 AND (order_day <> $3 OR orders_today + 1 <= $5)",
            )
            .bind(order.domain_id.as_str())
            .bind(n)
            .bind(day)
            .bind(max_certs)
            .bind(max_orders)
            .execute(&mut *tx)
            .await?;
            if counted.rows_affected() != 1 {
                let row: Option<(i64, i64, i64)> = sqlx::query_as(
                    "SELECT certificate_count, order_day, orders_today FROM accounts WHERE domain_id = $1",
                )
                .bind(order.domain_id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
                tx.rollback().await?;
                let Some((held, last_day, orders)) = row else {
                    return Err(corrupt("accounts: no account for the order"));
                };
                return Err(StoreError::QuotaExceeded(if held + n > max_certs {
                    format!(
                        "{n} more certificates would make {} of the {max_certs} an account may hold",
                        held + n
                    )
                } else {
                    let placed = if last_day == day { orders } else { 0 };
                    format!("{placed} orders today of the {max_orders} an account may place a day")
                }));
            }
            // Write first, so that SQLite takes its write lock at once (a read-then-write
            // transaction can fail to upgrade under contention). The allocator hands out `n`
            // consecutive milliseconds above the last id handed out (by any process), ending at
            // `now_ms` when the milliseconds since then leave room: a burst takes the unused
            // milliseconds just before now instead of running ahead of the clock, and only runs
            // ahead when the ids asked for outnumber the milliseconds elapsed (or another
            // process's clock is ahead of this one's).
            let last: i64 = sqlx::query_scalar(dialect::of(pool).alloc_certificate_ids)
                .bind(n)
                .bind(now_ms)
                .fetch_one(&mut *tx)
                .await?;
            if let Some(lead) = max_lead_ms
                && last > now_ms.saturating_add(lead)
            {
                tx.rollback().await?;
                return Err(StoreError::IdsAhead(last - now_ms - lead));
            }
            let insert_order = sqlx::query(INSERT_ORDER)
                .bind(order.order_id.as_str())
                .bind(order.domain_id.as_str())
                .bind(order.project_id.as_str());
            bind_product!(insert_order, p)
                .bind(order.order_number)
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
                let insert_certificate = sqlx::query(
                    "INSERT INTO certificates (id, domain_id, project_id, order_id, name, status, brand, \
                     cert_type, domain_type, effective_time, domain_numbers, primary_domain_type, \
                     single_domain_number, wildcard_domain_number, enterprise_project_id, description, \
                     tags, created_ms, updated_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
                     $18, $18)",
                )
                .bind(id.as_str())
                .bind(order.domain_id.as_str())
                .bind(order.project_id.as_str())
                .bind(order.order_id.as_str())
                .bind(format!("{}-{}", template.name, id.as_str()))
                .bind(template.status.as_str());
                bind_product!(insert_certificate, p)
                    .bind(template.description.as_str())
                    .bind(order.tags_json.as_str())
                    .bind(order.created_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(conflict_or)?;
                // The purchase's tags, where the tag operations read them.
                for t in &template.tags {
                    sqlx::query(
                        "INSERT INTO certificate_tags (cert_id, domain_id, tag_key, tag_value, \
                         created_ms) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(id.as_str())
                    .bind(order.domain_id.as_str())
                    .bind(t.key.as_str())
                    .bind(t.value.as_str())
                    .bind(order.created_ms)
                    .execute(&mut *tx)
                    .await?;
                }
                ids.push(id);
            }
            tx.commit().await?;
            Ok(ids)
        })
    }

    async fn certificate(&self, id: &CertificateId) -> Result<Option<CertificateRecord>> {
        let row: Option<CertificateRow> = db_run!(&self.pool, |p| {
            sqlx::query_as(select_certificates!("WHERE id = $1"))
                .bind(id.as_str())
                .fetch_optional(p)
                .await?
        });
        row.map(TryInto::try_into).transpose()
    }

    async fn certificate_of(
        &self,
        account: &DomainId,
        id: &CertificateId,
    ) -> Result<Option<CertificateRecord>> {
        let row: Option<CertificateRow> = db_run!(&self.pool, |p| {
            sqlx::query_as(select_certificates!("WHERE id = $1 AND domain_id = $2"))
                .bind(id.as_str())
                .bind(account.as_str())
                .fetch_optional(p)
                .await?
        });
        row.map(TryInto::try_into).transpose()
    }

    async fn list_certificates(
        &self,
        account: &DomainId,
        q: &ListQuery,
    ) -> Result<(Vec<CertificateRecord>, u64)> {
        let status = q.status.map(CertificateStatus::as_str);
        let content = q
            .content
            .as_ref()
            .map(|c| format!("%{}%", escape_like(&c.to_lowercase())));
        // Without a filter the total is the account's certificate count, which the quota keeps
        // (no count of 100,000 rows per page).
        let unfiltered = q.status.is_none()
            && q.content.is_none()
            && q.enterprise_project_id.is_none()
            && q.expired_after_ms.is_none()
            && q.expires_within.is_none()
            && !q.deploy_support;
        let order = list_order(q.sort_key, q.ascending);
        // The page's ids from an index walk; with a keyword (a scan of the account's rows either
        // way), the total comes with them, in the same scan.
        let (ids_sql, count_sql) = {
            let filter = list_filter(q);
            // With a keyword every match is counted anyway, so the matches are found first
            // (PostgreSQL from its trigram index) and then sorted; walking a sort index instead
            // would read every row of the account.
            let ids = if content.is_some() {
                format!(
                    "WITH m AS MATERIALIZED (SELECT {} FROM certificates WHERE {filter}) \
                     SELECT id, COUNT(*) OVER () FROM m ORDER BY {order} LIMIT $10 OFFSET $11",
                    sort_columns(q.sort_key)
                )
            } else {
                format!(
                    "SELECT id, CAST(-1 AS BIGINT) FROM certificates WHERE {filter} \
                     ORDER BY {order} LIMIT $10 OFFSET $11"
                )
            };
            (
                ids,
                format!("SELECT COUNT(*) FROM certificates WHERE {filter}"),
            )
        };
        let account = account.as_str();
        let (total, rows): (i64, Vec<CertificateRow>) = db_run!(&self.pool, |p| {
            // Built from the fixed fragments above; every value is a bound parameter.
            let page: Vec<(String, i64)> = bind_filter!(
                sqlx::query_as(sqlx::AssertSqlSafe(ids_sql.as_str())),
                account,
                q,
                status,
                content.as_deref()
            )
            .bind(i64::from(q.limit))
            .bind(i64::from(q.offset))
            .fetch_all(p)
            .await?;
            let total = match page.first() {
                Some((_, n)) if *n >= 0 => *n,
                // Nothing from the start: nothing at all.
                None if q.offset == 0 => 0,
                _ if unfiltered => sqlx::query_scalar(
                    "SELECT certificate_count FROM accounts WHERE domain_id = $1",
                )
                .bind(account)
                .fetch_optional(p)
                .await?
                .unwrap_or(0),
                _ => {
                    bind_filter!(
                        sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql.as_str())),
                        account,
                        q,
                        status,
                        content.as_deref()
                    )
                    .fetch_one(p)
                    .await?
                }
            };
            let rows: Vec<CertificateRow> = if page.is_empty() {
                Vec::new()
            } else {
                let sql = format!(
                    concat!(select_certificates!("WHERE id IN ({})"), " ORDER BY {}"),
                    placeholders(1, page.len()),
                    order
                );
                let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
                for (id, _) in &page {
                    query = query.bind(id.as_str());
                }
                query.fetch_all(p).await?
            };
            (total, rows)
        });
        let certs = rows
            .into_iter()
            .map(TryInto::try_into)
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
        db_run!(&self.pool, |p| {
            let mut tx = p.begin().await?;
            let done = sqlx::query(
                "UPDATE certificates SET domain = $1, sans = $2, application = $3, csr_pem = $4, \
                 validation_method = $5, key_algorithm = $6, updated_ms = $7 WHERE id = $8 AND status = $9",
            )
            .bind(app.domain.as_str())
            .bind(app.sans.as_str())
            .bind(app.form_json.as_str())
            .bind(app.csr_pem.as_deref())
            .bind(app.validation_method.as_deref())
            .bind(app.key_algorithm.as_deref())
            .bind(now_ms)
            .bind(id.as_str())
            .bind(expect.as_str())
            .execute(&mut *tx)
            .await?;
            let saved = done.rows_affected() == 1;
            if saved {
                sqlx::query(BUMP_CERTIFICATES).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(saved)
        })
    }

    async fn mark_issued(
        &self,
        id: &CertificateId,
        expect: CertificateStatus,
        app: &ApplicationRecord,
        issued: &IssuedRecord,
        now_ms: i64,
    ) -> Result<bool> {
        self.issue_writer
            .submit(NewVersion {
                id: id.clone(),
                expect: VersionExpect::Status(expect),
                application: Some(app.clone()),
                issued: issued.clone(),
                reason: "issued".into(),
                renew_at_ms: None,
                event: crate::records::NewEvent {
                    event: "issued".into(),
                    detail: format!("serial {}", issued.serial_hex),
                    actor: "store".into(),
                },
                now_ms,
            })
            .await
    }

    async fn add_version(&self, version: NewVersion) -> Result<bool> {
        self.issue_writer.submit(version).await
    }
}

/// Binds the nine columns of issued material (certificate_pem .. not_after_ms, in table order).
macro_rules! bind_issued {
    ($q:expr, $issued:expr) => {{
        let i: &IssuedRecord = $issued;
        $q.bind(i.certificate_pem.as_str())
            .bind(i.chain_pem.as_str())
            .bind(i.private_key_sealed.as_deref())
            .bind(i.serial_hex.as_str())
            .bind(i.fingerprint.as_str())
            .bind(i.signature_algorithm.as_str())
            .bind(i.issued_ms)
            .bind(i.not_before_ms)
            .bind(i.not_after_ms)
    }};
}

/// Records version `$job` ([`NewVersion`]) in transaction `$tx`: the conditional update of the
/// certificate row (its material, status `ISSUED`, the pointer moved one on, the renewal time,
/// no validation pending), then the version row and the history entry. Evaluates to
/// `Result<bool, sqlx::Error>`: `false` when the condition no longer held (nothing written).
macro_rules! execute_issue {
    ($tx:expr, $job:expr) => {{
        let job: &NewVersion = $job;
        let seq: Option<i64> = match (&job.expect, &job.application) {
            (VersionExpect::Status(expect), Some(app)) => {
                let update = sqlx::query_scalar(
                    "UPDATE certificates SET domain = $1, sans = $2, application = $3, csr_pem = $4, \
                     validation_method = $5, key_algorithm = $6, certificate_pem = $7, chain_pem = $8, \
                     private_key_sealed = $9, serial_hex = $10, fingerprint = $11, signature_algorithm = $12, \
                     issued_ms = $13, not_before_ms = $14, not_after_ms = $15, status = 'ISSUED', \
                     updated_ms = $16, ca_id = $19, current_version = 1, \
                     renew_at_ms = CASE WHEN auto_renew THEN $20 END, \
                     validation_started_ms = NULL \
                     WHERE id = $17 AND status = $18 AND current_version IS NULL RETURNING current_version",
                );
                bind_material!(update, app, &job.issued)
                    .bind(job.now_ms)
                    .bind(job.id.as_str())
                    .bind(expect.as_str())
                    .bind(job.issued.ca_id.as_deref())
                    .bind(job.renew_at_ms)
                    .fetch_optional(&mut *$tx)
                    .await?
            }
            (VersionExpect::Status(expect), None) => {
                let update = sqlx::query_scalar(
                    "UPDATE certificates SET certificate_pem = $1, chain_pem = $2, \
                     private_key_sealed = $3, serial_hex = $4, fingerprint = $5, signature_algorithm = $6, \
                     issued_ms = $7, not_before_ms = $8, not_after_ms = $9, status = 'ISSUED', \
                     updated_ms = $10, ca_id = $13, current_version = 1, \
                     renew_at_ms = CASE WHEN auto_renew THEN $14 END, \
                     validation_started_ms = NULL \
                     WHERE id = $11 AND status = $12 AND current_version IS NULL RETURNING current_version",
                );
                bind_issued!(update, &job.issued)
                    .bind(job.now_ms)
                    .bind(job.id.as_str())
                    .bind(expect.as_str())
                    .bind(job.issued.ca_id.as_deref())
                    .bind(job.renew_at_ms)
                    .fetch_optional(&mut *$tx)
                    .await?
            }
            (VersionExpect::Current(current), _) => {
                let update = sqlx::query_scalar(
                    "UPDATE certificates SET certificate_pem = $1, chain_pem = $2, \
                     private_key_sealed = $3, serial_hex = $4, fingerprint = $5, signature_algorithm = $6, \
                     issued_ms = $7, not_before_ms = $8, not_after_ms = $9, status = 'ISSUED', \
                     updated_ms = $10, ca_id = $13, current_version = current_version + 1, \
                     renew_at_ms = CASE WHEN auto_renew THEN $14 END, \
                     validation_started_ms = NULL \
                     WHERE id = $11 AND current_version = $12 AND status IN ('ISSUED', 'EXPIRED') \
                     RETURNING current_version",
                );
                bind_issued!(update, &job.issued)
                    .bind(job.now_ms)
                    .bind(job.id.as_str())
                    .bind(i64::from(*current))
                    .bind(job.issued.ca_id.as_deref())
                    .bind(job.renew_at_ms)
                    .fetch_optional(&mut *$tx)
                    .await?
            }
        };
        match seq {
            Some(seq) => {
                let insert = sqlx::query(
                    "INSERT INTO certificate_versions (cert_id, seq, reason, certificate_pem, \
                     chain_pem, private_key_sealed, serial_hex, fingerprint, signature_algorithm, \
                     issued_ms, not_before_ms, not_after_ms, ca_id, renew_at_ms, created_ms) \
                     VALUES ($10, $11, $12, $1, $2, $3, $4, $5, $6, $7, $8, $9, $13, $14, $15)",
                );
                bind_issued!(insert, &job.issued)
                    .bind(job.id.as_str())
                    .bind(seq)
                    .bind(job.reason.as_str())
                    .bind(job.issued.ca_id.as_deref())
                    .bind(job.renew_at_ms)
                    .bind(job.now_ms)
                    .execute(&mut *$tx)
                    .await?;
                crate::versions::insert_event!(&mut *$tx, &job.id, job.now_ms, &job.event)?;
                Ok::<bool, sqlx::Error>(true)
            }
            None => Ok(false),
        }
    }};
}

type IssueReply = tokio::sync::oneshot::Sender<Result<bool>>;

enum Message {
    Issue(Box<NewVersion>, IssueReply),
    /// Finish what was queued before, then stop.
    Close(tokio::sync::oneshot::Sender<()>),
}

/// Group commit: every commit is a durable flush, and writers queue for one lock anyway (SQLite's
/// write lock, PostgreSQL's certificates revision row), so issuances that arrive while a commit is being
/// flushed are recorded together in the next transaction. Each is still its own conditional
/// update with its own answer, and no caller hears "done" before the transaction holding its row
/// is durable.
///
/// The writer cannot be killed by one bad batch: each batch is committed in its own task, so a
/// panic fails that batch only; and a batch whose transaction fails is retried one issuance per
/// transaction, so one failing issuance never fails the others.
#[derive(Clone)]
pub(crate) struct IssueWriter {
    queue: tokio::sync::mpsc::Sender<Message>,
}

/// Most issuances per transaction.
const MAX_BATCH: usize = 256;

fn stopped() -> StoreError {
    StoreError::Batch("the issuance writer has stopped (the store is closing)".into())
}

impl IssueWriter {
    /// Starts the writer, supervised: should its loop ever die (a panic), it is logged and
    /// started again on the same queue, so issuance never stops working until the store closes.
    pub(crate) fn spawn(pool: Pool) -> Self {
        let (queue, rx) = tokio::sync::mpsc::channel::<Message>(4 * MAX_BATCH);
        let rx = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
        tokio::spawn(async move {
            loop {
                let run = tokio::spawn(write_batches(pool.clone(), rx.clone()));
                match run.await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::error!(error = %e, "the issuance writer died; restarting it");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
            }
        });
        Self { queue }
    }

    async fn submit(&self, job: NewVersion) -> Result<bool> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.queue
            .send(Message::Issue(Box::new(job), reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Waits until everything submitted before is committed, then stops the writer.
    pub(crate) async fn close(&self) {
        let (ack, done) = tokio::sync::oneshot::channel();
        if self.queue.send(Message::Close(ack)).await.is_ok() {
            let _ = done.await;
        }
    }
}

/// The writer's loop: takes what is queued (up to [`MAX_BATCH`]) and commits it together, until
/// the queue closes or a `Close` message has been answered.
async fn write_batches(
    pool: Pool,
    rx: std::sync::Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Message>>>,
) {
    let mut rx = rx.lock().await;
    while let Some(first) = rx.recv().await {
        let mut batch = Vec::new();
        let mut close = None;
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Issue(job, reply) => batch.push((*job, reply)),
                Message::Close(ack) => {
                    close = Some(ack);
                    break;
                }
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            let pool = pool.clone();
            let (jobs, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            // Its own task: a panic while committing fails this batch only.
            let committed = tokio::spawn(async move { commit_all(&pool, jobs).await });
            match committed.await {
                Ok(results) => {
                    for (reply, result) in replies.into_iter().zip(results) {
                        let _ = reply.send(result);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "issuance batch task failed; the writer goes on");
                    for reply in replies {
                        let _ =
                            reply.send(Err(StoreError::Batch("the issuance batch failed".into())));
                    }
                }
            }
        }
        if let Some(ack) = close {
            let _ = ack.send(());
            return;
        }
    }
}

/// Commits `jobs` in one transaction; if that fails, each in its own, so that one failing
/// issuance fails only itself.
async fn commit_all(pool: &Pool, jobs: Vec<NewVersion>) -> Vec<Result<bool>> {
    match commit_batch(pool, &jobs).await {
        Ok(results) => results.into_iter().map(Ok).collect(),
        Err(e) if jobs.len() == 1 => vec![Err(e)],
        Err(e) => {
            tracing::warn!(error = %e, n = jobs.len(), "grouped issuance failed; retrying one by one");
            let mut out = Vec::with_capacity(jobs.len());
            for job in &jobs {
                out.push(
                    commit_batch(pool, std::slice::from_ref(job))
                        .await
                        .map(|r| r.first().copied().unwrap_or(false)),
                );
            }
            out
        }
    }
}

async fn commit_batch(pool: &Pool, jobs: &[NewVersion]) -> Result<Vec<bool>> {
    db_run!(pool, |p| {
        let mut tx = p.begin().await?;
        let mut results = Vec::with_capacity(jobs.len());
        for job in jobs {
            results.push(execute_issue!(&mut *tx, job)?);
        }
        // A batch whose conditions all failed changed nothing.
        if results.contains(&true) {
            sqlx::query(BUMP_CERTIFICATES).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(results)
    })
}
