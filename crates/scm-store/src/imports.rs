//! [`Imports`]: certificates the user imports (ImportCertificate). An imported certificate is a
//! certificate row like a purchased one, in `UPLOAD`, with its material in the issued columns
//! and its issuer in `issuer` (which marks it imported). `certificates.order_id` must name an
//! order, so each import writes an order row of its own (one certificate, the product derived
//! from the leaf); the domain never shows that order.

use async_trait::async_trait;
use scm_proto::{CertificateId, PrimaryDomainType};

use crate::certificates::{INSERT_ORDER, bind_material, bind_product};
use crate::pool::{conflict_or, corrupt, db_run};
use crate::records::{
    ApplicationRecord, CertificateRecord, IssuedRecord, OrderRecord, Product, Quotas,
};
use crate::{Result, SqlStore, StoreError, dialect};

/// How an import ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Stored.
    Imported,
    /// Refused, nothing written: the account holds a certificate with the same fingerprint
    /// (this one), and the import asked for a duplicate check.
    Duplicate(CertificateId),
}

/// Importing certificates.
#[async_trait]
pub trait Imports: Send + Sync {
    /// A certificate id from the shared allocator (unique across processes), for a certificate
    /// about to be imported: its key is sealed bound to its id before the row is written.
    async fn allocate_certificate_id(&self, now_ms: i64) -> Result<CertificateId>;

    /// Writes `order` and `cert` (whose `id` came from [`Self::allocate_certificate_id`]) in one
    /// transaction, counting one certificate against `quotas` ([`StoreError::QuotaExceeded`]
    /// when the account holds as many as it may). With `duplicate_check`, an account certificate
    /// with `cert`'s fingerprint refuses it ([`ImportOutcome::Duplicate`]); the check and the
    /// write are atomic (the account row is locked first). An order id already taken is
    /// [`StoreError::Conflict`]. Nothing is written unless the answer is
    /// [`ImportOutcome::Imported`].
    async fn import_certificate(
        &self,
        order: &OrderRecord,
        cert: &CertificateRecord,
        quotas: &Quotas,
        duplicate_check: bool,
    ) -> Result<ImportOutcome>;
}

#[async_trait]
impl Imports for SqlStore {
    async fn allocate_certificate_id(&self, now_ms: i64) -> Result<CertificateId> {
        let last: i64 = db_run!(&self.pool, |p| {
            sqlx::query_scalar(dialect::of(p).alloc_certificate_ids)
                .bind(1_i64)
                .bind(now_ms)
                .fetch_one(p)
                .await?
        });
        u64::try_from(last)
            .ok()
            .and_then(CertificateId::from_millis)
            .ok_or_else(|| corrupt("id_alloc.last_ms"))
    }

    async fn import_certificate(
        &self,
        order: &OrderRecord,
        cert: &CertificateRecord,
        quotas: &Quotas,
        duplicate_check: bool,
    ) -> Result<ImportOutcome> {
        let issued = cert
            .issued
            .as_ref()
            .ok_or_else(|| corrupt("an imported certificate without its material"))?;
        let app = cert
            .application
            .as_ref()
            .ok_or_else(|| corrupt("an imported certificate without its names"))?;
        let p = &cert.product;
        let max_certs = i64::try_from(quotas.certificates_per_account).unwrap_or(i64::MAX);
        db_run!(&self.pool, |pool| {
            let mut tx = pool.begin().await?;
            // First write: the quota, which also locks the account row (PostgreSQL) or takes the
            // write lock (SQLite), so two imports of one account check duplicates in turn.
            let counted = sqlx::query(
                "UPDATE accounts SET certificate_count = certificate_count + 1 \
                 WHERE domain_id = $1 AND certificate_count + 1 <= $2",
            )
            .bind(cert.domain_id.as_str())
            .bind(max_certs)
            .execute(&mut *tx)
            .await?;
            if counted.rows_affected() != 1 {
                let held: Option<i64> = sqlx::query_scalar(
                    "SELECT certificate_count FROM accounts WHERE domain_id = $1",
                )
                .bind(cert.domain_id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
                tx.rollback().await?;
                let Some(held) = held else {
                    return Err(corrupt("accounts: no account for the import"));
                };
                return Err(StoreError::QuotaExceeded(format!(
                    "1 more certificate would make {} of the {max_certs} an account may hold",
                    held + 1
                )));
            }
            if duplicate_check {
                let existing: Option<String> = sqlx::query_scalar(
                    "SELECT id FROM certificates WHERE domain_id = $1 AND fingerprint = $2 \
                     ORDER BY id LIMIT 1",
                )
                .bind(cert.domain_id.as_str())
                .bind(issued.fingerprint.as_str())
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(existing) = existing {
                    tx.rollback().await?;
                    let id = CertificateId::try_from(existing.as_str())
                        .map_err(|_| corrupt("certificates.id"))?;
                    return Ok(ImportOutcome::Duplicate(id));
                }
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
            let insert_certificate = sqlx::query(
                "INSERT INTO certificates (id, domain_id, project_id, order_id, name, status, brand, \
                 cert_type, domain_type, effective_time, domain_numbers, primary_domain_type, \
                 single_domain_number, wildcard_domain_number, enterprise_project_id, description, \
                 tags, domain, sans, application, csr_pem, validation_method, key_algorithm, \
                 certificate_pem, chain_pem, private_key_sealed, serial_hex, fingerprint, \
                 signature_algorithm, issued_ms, not_before_ms, not_after_ms, created_ms, \
                 updated_ms, issuer, chain_trusted, chain_trust_note) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
                 $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, \
                 $34, $35, $36, $37)",
            )
            .bind(cert.id.as_str())
            .bind(cert.domain_id.as_str())
            .bind(cert.project_id.as_str())
            .bind(cert.order_id.as_str())
            .bind(cert.name.as_str())
            .bind(cert.status.as_str());
            let insert_certificate = bind_product!(insert_certificate, p)
                .bind(cert.description.as_str())
                .bind(cert.tags_json.as_str());
            bind_material!(insert_certificate, app, issued)
                .bind(cert.created_ms)
                .bind(cert.updated_ms)
                .bind(cert.issuer.as_deref())
                .bind(cert.chain_trust.as_ref().map(|t| t.trusted))
                .bind(cert.chain_trust.as_ref().map(|t| t.note.as_str()))
                .execute(&mut *tx)
                .await
                .map_err(conflict_or)?;
            tx.commit().await?;
            Ok(ImportOutcome::Imported)
        })
    }
}

#[cfg(test)]
mod tests {
    use scm_proto::{Brand, CertType, CertificateStatus, DomainType, OrderId};

    use super::*;
    use crate::records::{ApplicationRecord, ChainTrustRecord, IssuedRecord, ListQuery, Product};
    use crate::tests::{TestDb, account};
    use crate::{Accounts, Certificates, Lifecycle};

    macro_rules! suite {
        ($($name:ident),* $(,)?) => {
            mod sqlite {
                $(#[tokio::test] async fn $name() { crate::tests::with_sqlite(super::$name).await })*
            }
            mod postgres {
                $(#[tokio::test] async fn $name() { crate::tests::with_postgres(super::$name).await })*
            }
        };
    }
    /// A time whose milliseconds make a certificate id (13 digits).
    const NOW: i64 = 1_764_770_000_000;

    suite!(
        imports_are_stored_checked_for_duplicates_and_counted,
        imports_respect_the_quota,
        migration_0005_applies_to_a_database_migrated_without_it
    );

    /// A database of the previous release (0006–0009 applied, 0005 not yet written) gets 0005
    /// when this binary starts on it: the migrations are applied by version, whatever was first.
    async fn migration_0005_applies_to_a_database_migrated_without_it(db: TestDb) {
        db.store().await.close().await;
        let mut conn = crate::tests::raw_connection(&db.url).await;
        conn.execute_raw(
            "DROP INDEX certificates_by_fingerprint; ALTER TABLE certificates DROP COLUMN issuer; \
             DELETE FROM _sqlx_migrations WHERE version = 5",
        )
        .await;
        assert_eq!(
            conn.count("SELECT COUNT(*) FROM _sqlx_migrations WHERE version BETWEEN 6 AND 9")
                .await,
            4,
            "0006 to 0009"
        );
        let store = db.store().await;
        assert_eq!(
            conn.count("SELECT COUNT(*) FROM _sqlx_migrations WHERE version = 5")
                .await,
            1
        );
        let (a, p) = account(1);
        store.create_account(&a, &p).await.unwrap();
        let id = store.allocate_certificate_id(NOW).await.unwrap();
        let (order, cert) = import(&a, &p, id.clone(), 1, &"0a".repeat(20));
        store
            .import_certificate(&order, &cert, &Quotas::UNLIMITED, true)
            .await
            .unwrap();
        assert!(store.certificate(&id).await.unwrap().unwrap().is_imported());
    }

    fn import(
        a: &crate::AccountRecord,
        p: &crate::ProjectRecord,
        id: CertificateId,
        tag: u8,
        fingerprint: &str,
    ) -> (OrderRecord, CertificateRecord) {
        let product = Product {
            brand: Brand::GeoTrust,
            cert_type: CertType::DvSsl,
            domain_type: DomainType::Single,
            effective_time: 1,
            domain_numbers: 1,
            primary_domain_type: None,
            single_domain_number: None,
            wildcard_domain_number: None,
            enterprise_project_id: "0".into(),
        };
        let order = OrderRecord {
            order_id: OrderId::new("2612031500", [tag, 7, 7, 7, tag]).unwrap(),
            domain_id: a.domain_id.clone(),
            project_id: p.project_id.clone(),
            product: product.clone(),
            order_number: 1,
            tags_json: "[]".into(),
            created_ms: 10,
        };
        let cert = CertificateRecord {
            id,
            domain_id: a.domain_id.clone(),
            project_id: p.project_id.clone(),
            order_id: order.order_id.clone(),
            name: format!("imported-{tag}"),
            status: CertificateStatus::Upload,
            product,
            description: String::new(),
            tags_json: "[]".into(),
            application: Some(ApplicationRecord {
                domain: "www.import.test".into(),
                sans: String::new(),
                form_json: String::new(),
                csr_pem: None,
                validation_method: None,
                key_algorithm: Some("EC_P256".into()),
            }),
            issued: Some(IssuedRecord {
                certificate_pem: "leaf".into(),
                chain_pem: String::new(),
                private_key_sealed: Some(vec![3; 40]),
                serial_hex: "01".into(),
                fingerprint: fingerprint.into(),
                signature_algorithm: "SHA256WITHECDSA".into(),
                issued_ms: 5,
                not_before_ms: 5,
                not_after_ms: i64::MAX / 2,
                ca_id: None,
            }),
            created_ms: 10,
            updated_ms: 10,
            issuer: Some("CN=Import Test CA".into()),
            chain_trust: Some(ChainTrustRecord {
                trusted: tag % 2 == 1,
                note: format!("verdict {tag}"),
            }),
            revocation: None,
            lifecycle: crate::records::LifecycleRecord::default(),
        };
        (order, cert)
    }

    async fn imports_are_stored_checked_for_duplicates_and_counted(db: TestDb) {
        let store = db.store().await;
        let (a, p) = account(1);
        store.create_account(&a, &p).await.unwrap();
        let id = store.allocate_certificate_id(NOW).await.unwrap();
        let next = store.allocate_certificate_id(NOW).await.unwrap();
        assert!(next > id, "ids are never handed out twice");
        let fp = "ab".repeat(20);
        let (order, cert) = import(&a, &p, id.clone(), 1, &fp);
        assert_eq!(
            store
                .import_certificate(&order, &cert, &Quotas::UNLIMITED, true)
                .await
                .unwrap(),
            ImportOutcome::Imported
        );
        let stored = store
            .certificate_of(&a.domain_id, &id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored, cert, "every field reads back");
        assert!(stored.is_imported() && stored.is_pushable());

        // The same fingerprint: refused with a duplicate check, nothing written.
        let (order2, cert2) = import(&a, &p, next.clone(), 2, &fp);
        assert_eq!(
            store
                .import_certificate(&order2, &cert2, &Quotas::UNLIMITED, true)
                .await
                .unwrap(),
            ImportOutcome::Duplicate(id.clone())
        );
        assert!(store.certificate(&next).await.unwrap().is_none());
        let q = ListQuery {
            deploy_support: true,
            now_ms: NOW,
            ..ListQuery::default()
        };
        assert_eq!(
            store.list_certificates(&a.domain_id, &q).await.unwrap().1,
            1
        );
        // Without it: a second copy.
        assert_eq!(
            store
                .import_certificate(&order2, &cert2, &Quotas::UNLIMITED, false)
                .await
                .unwrap(),
            ImportOutcome::Imported
        );
        assert_eq!(
            store.list_certificates(&a.domain_id, &q).await.unwrap().1,
            2
        );
        // Another account's fingerprint is no duplicate.
        let (b, bp) = account(2);
        store.create_account(&b, &bp).await.unwrap();
        let bid = store.allocate_certificate_id(NOW).await.unwrap();
        let (order3, cert3) = import(&b, &bp, bid, 3, &fp);
        assert_eq!(
            store
                .import_certificate(&order3, &cert3, &Quotas::UNLIMITED, true)
                .await
                .unwrap(),
            ImportOutcome::Imported
        );
        // An order id taken is a conflict, and nothing is written.
        let fresh = store.allocate_certificate_id(NOW).await.unwrap();
        let (_, cert4) = import(&a, &p, fresh.clone(), 4, &"cd".repeat(20));
        assert!(matches!(
            store
                .import_certificate(&order, &cert4, &Quotas::UNLIMITED, false)
                .await,
            Err(StoreError::Conflict(_))
        ));
        assert!(store.certificate(&fresh).await.unwrap().is_none());
        // Deleted like any certificate in UPLOAD.
        assert!(
            store
                .delete_certificate(&a.domain_id, &id, CertificateStatus::Upload)
                .await
                .unwrap()
        );
    }

    async fn imports_respect_the_quota(db: TestDb) {
        let store = db.store().await;
        let (a, p) = account(1);
        store.create_account(&a, &p).await.unwrap();
        let quotas = Quotas {
            certificates_per_account: 1,
            orders_per_day: 1,
            csrs_per_account: 1,
        };
        let id = store.allocate_certificate_id(NOW).await.unwrap();
        let (order, cert) = import(&a, &p, id, 1, &"01".repeat(20));
        assert_eq!(
            store
                .import_certificate(&order, &cert, &quotas, false)
                .await
                .unwrap(),
            ImportOutcome::Imported
        );
        let id = store.allocate_certificate_id(NOW).await.unwrap();
        let (order, cert) = import(&a, &p, id.clone(), 2, &"02".repeat(20));
        assert!(matches!(
            store
                .import_certificate(&order, &cert, &quotas, false)
                .await,
            Err(StoreError::QuotaExceeded(_))
        ));
        assert!(store.certificate(&id).await.unwrap().is_none());
    }
}
