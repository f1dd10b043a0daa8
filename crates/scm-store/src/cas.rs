//! [`Cas`]: the CAs OpenSCM holds (one per account, the serving CA, and the retired shared CA of
//! stores made before migration 0015).
//!
//! Several servers may share one database: a CA is made by inserting it, and the partial unique
//! indexes of `cas` (one live CA per account, one live serving CA) let only the first of two
//! racing inserts in; the other reads the winner.

use async_trait::async_trait;
use scm_proto::DomainId;

use crate::accounts::{insert_account, insert_project};
use crate::pool::{BUMP_CERTIFICATES, corrupt, db_run};
use crate::records::{AccountRecord, CaRecord, CaRole, ProjectRecord, StoredCa};
use crate::{Result, SqlStore};

/// The CAs.
#[async_trait]
pub trait Cas: Send + Sync {
    /// Inserts a CA unless its id is taken or it would be a second live CA of its account (or a
    /// second live serving CA); `false` when nothing was written.
    async fn insert_ca(&self, ca: &StoredCa) -> Result<bool>;
    /// Creates an account, its first project and its CA in one transaction.
    async fn create_account_with_ca(
        &self,
        account: &AccountRecord,
        project: &ProjectRecord,
        ca: &StoredCa,
    ) -> Result<()>;
    /// The live CA of `account` (`role` [`CaRole::Tenant`]) or the live serving CA (`account`
    /// `None`, `role` [`CaRole::Serving`]).
    async fn live_ca(&self, role: CaRole, account: Option<&DomainId>) -> Result<Option<StoredCa>>;
    /// One CA by id, live or retired.
    async fn ca_by_id(&self, id: &str) -> Result<Option<StoredCa>>;
    /// Every CA of `account`, live and retired, oldest first.
    async fn cas_of_account(&self, account: &DomainId) -> Result<Vec<StoredCa>>;
    /// Every CA of `role`, oldest first.
    async fn cas_of_role(&self, role: CaRole) -> Result<Vec<StoredCa>>;
    /// The ids of the CAs whose CRL is still needed at `now_ms`: every CA but the serving ones
    /// that is live, or that issued a certificate not expired at `now_ms`.
    async fn crl_ca_ids(&self, now_ms: i64) -> Result<Vec<String>>;
    /// Records the shared CA of a store made before migration 0015 (`ca.role` is
    /// [`CaRole::Shared`], `ca.retired_ms` set) and marks the purchased certificates that have no
    /// CA yet as its own, in one transaction. Idempotent: a second call (or a second server)
    /// changes nothing.
    async fn retire_shared_ca(&self, ca: &StoredCa) -> Result<()>;
}

struct CasRow {
    id: String,
    domain_id: Option<String>,
    role: String,
    root_cert_pem: String,
    root_key_sealed: Vec<u8>,
    intermediate_cert_pem: String,
    intermediate_key_sealed: Vec<u8>,
    created_ms: i64,
    retired_ms: Option<i64>,
}

crate::row::from_row!(CasRow {
    id,
    domain_id,
    role,
    root_cert_pem,
    root_key_sealed,
    intermediate_cert_pem,
    intermediate_key_sealed,
    created_ms,
    retired_ms
});

macro_rules! select_cas {
    ($tail:literal) => {
        concat!(
            "SELECT id, domain_id, role, root_cert_pem, root_key_sealed, intermediate_cert_pem, \
             intermediate_key_sealed, created_ms, retired_ms FROM cas ",
            $tail
        )
    };
}

impl TryFrom<CasRow> for StoredCa {
    type Error = crate::StoreError;

    fn try_from(r: CasRow) -> Result<Self> {
        let role = CaRole::parse(&r.role).ok_or_else(|| corrupt("cas.role"))?;
        let domain_id = match r.domain_id {
            Some(d) => Some(DomainId::try_from(d).map_err(|_| corrupt("cas.domain_id"))?),
            None => None,
        };
        Ok(Self {
            id: r.id,
            role,
            domain_id,
            ca: CaRecord {
                root_cert_pem: r.root_cert_pem,
                root_key_sealed: r.root_key_sealed,
                intermediate_cert_pem: r.intermediate_cert_pem,
                intermediate_key_sealed: r.intermediate_key_sealed,
                created_ms: r.created_ms,
            },
            retired_ms: r.retired_ms,
        })
    }
}

fn to_cas(rows: Vec<CasRow>) -> Result<Vec<StoredCa>> {
    rows.into_iter().map(StoredCa::try_from).collect()
}

/// Inserts a CA with executor `$e`, `ON CONFLICT DO NOTHING` (the primary key and the live
/// indexes); evaluates to `Result<bool, sqlx::Error>`: whether it was inserted.
macro_rules! insert_ca {
    ($e:expr, $ca:expr) => {{
        let ca: &$crate::records::StoredCa = $ca;
        sqlx::query(
            "INSERT INTO cas (id, domain_id, role, root_cert_pem, root_key_sealed, \
             intermediate_cert_pem, intermediate_key_sealed, created_ms, retired_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        )
        .bind(ca.id.as_str())
        .bind(ca.domain_id.as_ref().map(|d| d.as_str()))
        .bind(ca.role.as_str())
        .bind(ca.ca.root_cert_pem.as_str())
        .bind(ca.ca.root_key_sealed.as_slice())
        .bind(ca.ca.intermediate_cert_pem.as_str())
        .bind(ca.ca.intermediate_key_sealed.as_slice())
        .bind(ca.ca.created_ms)
        .bind(ca.retired_ms)
        .execute($e)
        .await
        .map(|done| done.rows_affected() == 1)
    }};
}
pub(crate) use insert_ca;

#[async_trait]
impl Cas for SqlStore {
    async fn insert_ca(&self, ca: &StoredCa) -> Result<bool> {
        db_run!(&self.pool, |p| Ok(insert_ca!(p, ca)?))
    }

    async fn create_account_with_ca(
        &self,
        account: &AccountRecord,
        project: &ProjectRecord,
        ca: &StoredCa,
    ) -> Result<()> {
        db_run!(&self.pool, |p| {
            let mut tx = p.begin().await?;
            insert_account!(&mut *tx, account)?;
            insert_project!(&mut *tx, project)?;
            if !insert_ca!(&mut *tx, ca)? {
                return Err(crate::StoreError::Conflict(format!("CA {}", ca.id)));
            }
            tx.commit().await?;
            Ok(())
        })
    }

    async fn live_ca(&self, role: CaRole, account: Option<&DomainId>) -> Result<Option<StoredCa>> {
        let row: Option<CasRow> = db_run!(&self.pool, |p| {
            match account {
                Some(a) => {
                    sqlx::query_as(select_cas!(
                        "WHERE role = $1 AND retired_ms IS NULL AND domain_id = $2"
                    ))
                    .bind(role.as_str())
                    .bind(a.as_str())
                    .fetch_optional(p)
                    .await?
                }
                None => {
                    sqlx::query_as(select_cas!(
                        "WHERE role = $1 AND retired_ms IS NULL AND domain_id IS NULL"
                    ))
                    .bind(role.as_str())
                    .fetch_optional(p)
                    .await?
                }
            }
        });
        row.map(StoredCa::try_from).transpose()
    }

    async fn ca_by_id(&self, id: &str) -> Result<Option<StoredCa>> {
        let row: Option<CasRow> = db_run!(&self.pool, |p| {
            sqlx::query_as(select_cas!("WHERE id = $1"))
                .bind(id)
                .fetch_optional(p)
                .await?
        });
        row.map(StoredCa::try_from).transpose()
    }

    async fn cas_of_account(&self, account: &DomainId) -> Result<Vec<StoredCa>> {
        let rows: Vec<CasRow> = db_run!(&self.pool, |p| {
            sqlx::query_as(select_cas!("WHERE domain_id = $1 ORDER BY created_ms, id"))
                .bind(account.as_str())
                .fetch_all(p)
                .await?
        });
        to_cas(rows)
    }

    async fn cas_of_role(&self, role: CaRole) -> Result<Vec<StoredCa>> {
        let rows: Vec<CasRow> = db_run!(&self.pool, |p| {
            sqlx::query_as(select_cas!("WHERE role = $1 ORDER BY created_ms, id"))
                .bind(role.as_str())
                .fetch_all(p)
                .await?
        });
        to_cas(rows)
    }

    async fn crl_ca_ids(&self, now_ms: i64) -> Result<Vec<String>> {
        db_run!(&self.pool, |p| {
            Ok(sqlx::query_scalar(
                "SELECT id FROM cas WHERE role <> 'serving' AND (retired_ms IS NULL OR EXISTS \
                 (SELECT 1 FROM certificates c WHERE c.ca_id = cas.id AND c.not_after_ms > $1)) \
                 ORDER BY created_ms, id",
            )
            .bind(now_ms)
            .fetch_all(p)
            .await?)
        })
    }

    async fn retire_shared_ca(&self, ca: &StoredCa) -> Result<()> {
        db_run!(&self.pool, |p| {
            let mut tx = p.begin().await?;
            insert_ca!(&mut *tx, ca)?;
            // Purchased (not imported: issuer NULL) and issued: only the shared CA issued before.
            let adopted = sqlx::query(
                "UPDATE certificates SET ca_id = $1 WHERE ca_id IS NULL AND issuer IS NULL \
                 AND certificate_pem IS NOT NULL",
            )
            .bind(ca.id.as_str())
            .execute(&mut *tx)
            .await?;
            // Their CA is part of the cached certificates (another server may hold them).
            if adopted.rows_affected() > 0 {
                sqlx::query(BUMP_CERTIFICATES).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use scm_proto::{CertificateStatus, DomainId};

    use super::*;
    use crate::tests::{TestDb, account, application, issued, order, raw_connection};
    use crate::{Accounts, Certificates, Meta};

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

    suite!(
        one_live_ca_per_account_and_one_serving_ca,
        crls_are_needed_while_a_ca_is_live_or_has_certificates,
        migration_0015_keeps_the_shared_ca_and_its_certificates
    );

    /// A CA record with placeholder material.
    pub(crate) fn ca(
        id: &str,
        role: CaRole,
        account: Option<&DomainId>,
        retired_ms: Option<i64>,
    ) -> StoredCa {
        StoredCa {
            id: id.into(),
            role,
            domain_id: account.cloned(),
            ca: CaRecord {
                root_cert_pem: format!("root {id}"),
                root_key_sealed: vec![9; 40],
                intermediate_cert_pem: format!("int {id}"),
                intermediate_key_sealed: vec![8; 40],
                created_ms: 3,
            },
            retired_ms,
        }
    }

    /// Two servers making an account's CA (or the serving CA) at once store one: the second
    /// insert writes nothing, and both then read the first.
    async fn one_live_ca_per_account_and_one_serving_ca(db: TestDb) {
        let store = db.store().await;
        let (a, pa) = account(1);
        let (b, pb) = account(2);
        store
            .create_account_with_ca(&a, &pa, &ca("aa", CaRole::Tenant, Some(&a.domain_id), None))
            .await
            .unwrap();
        store
            .create_account_with_ca(&b, &pb, &ca("bb", CaRole::Tenant, Some(&b.domain_id), None))
            .await
            .unwrap();
        assert!(
            !store
                .insert_ca(&ca("a2", CaRole::Tenant, Some(&a.domain_id), None))
                .await
                .unwrap(),
            "a second live CA of the account"
        );
        assert!(
            !store
                .insert_ca(&ca("bb", CaRole::Tenant, Some(&a.domain_id), Some(5)))
                .await
                .unwrap(),
            "an id taken"
        );
        // A retired CA beside the live one is allowed.
        assert!(
            store
                .insert_ca(&ca("a0", CaRole::Tenant, Some(&a.domain_id), Some(5)))
                .await
                .unwrap()
        );
        let live = store
            .live_ca(CaRole::Tenant, Some(&a.domain_id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(live, ca("aa", CaRole::Tenant, Some(&a.domain_id), None));
        assert_eq!(
            store
                .live_ca(CaRole::Tenant, Some(&b.domain_id))
                .await
                .unwrap()
                .unwrap()
                .id,
            "bb"
        );
        let ids: Vec<String> = store
            .cas_of_account(&a.domain_id)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(ids.len(), 2);
        assert!(ids.contains(&"aa".to_owned()) && ids.contains(&"a0".to_owned()));
        assert!(
            store
                .live_ca(CaRole::Serving, None)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .insert_ca(&ca("s1", CaRole::Serving, None, None))
                .await
                .unwrap()
        );
        assert!(
            !store
                .insert_ca(&ca("s2", CaRole::Serving, None, None))
                .await
                .unwrap()
        );
        assert_eq!(
            store
                .live_ca(CaRole::Serving, None)
                .await
                .unwrap()
                .unwrap()
                .id,
            "s1"
        );
        assert_eq!(store.cas_of_role(CaRole::Serving).await.unwrap().len(), 1);
        assert_eq!(
            store.ca_by_id("a0").await.unwrap().unwrap().retired_ms,
            Some(5)
        );
        assert!(store.ca_by_id("zz").await.unwrap().is_none());
        // An account whose CA cannot be stored is not created either (one transaction).
        let (c, pc) = account(3);
        assert!(
            store
                .create_account_with_ca(
                    &c,
                    &pc,
                    &ca("aa", CaRole::Tenant, Some(&c.domain_id), None)
                )
                .await
                .is_err()
        );
        assert!(store.account(&c.domain_id).await.unwrap().is_none());
    }

    /// Live CAs need their CRL; a retired one while a certificate it issued has not expired;
    /// the serving CA never (it revokes nothing).
    async fn crls_are_needed_while_a_ca_is_live_or_has_certificates(db: TestDb) {
        let store = db.store().await;
        let (a, p) = account(1);
        store
            .create_account_with_ca(&a, &p, &ca("aa", CaRole::Tenant, Some(&a.domain_id), None))
            .await
            .unwrap();
        store
            .insert_ca(&ca("old", CaRole::Tenant, Some(&a.domain_id), Some(2)))
            .await
            .unwrap();
        store
            .insert_ca(&ca("s1", CaRole::Serving, None, None))
            .await
            .unwrap();
        assert_eq!(
            store.crl_ca_ids(1_000).await.unwrap(),
            vec!["aa".to_owned()]
        );
        let id = order(&store, &a, &p, 1, 1_700_000_000_000).await.remove(0);
        let mut old = issued(5_000);
        old.ca_id = Some("old".into());
        assert!(
            store
                .mark_issued(
                    &id,
                    CertificateStatus::Paid,
                    &application("a.test"),
                    &old,
                    100
                )
                .await
                .unwrap()
        );
        let stored = store.certificate(&id).await.unwrap().unwrap();
        assert_eq!(stored.issued.unwrap().ca_id.as_deref(), Some("old"));
        let mut ids = store.crl_ca_ids(1_000).await.unwrap();
        ids.sort();
        assert_eq!(ids, vec!["aa".to_owned(), "old".to_owned()]);
        assert_eq!(
            store.crl_ca_ids(5_000).await.unwrap(),
            vec!["aa".to_owned()],
            "its last certificate expired"
        );
    }

    /// A store of the previous schema (one shared CA in `ca`, certificates without `ca_id`) gets
    /// 0015 when this binary starts on it; the shared CA is then recorded as retired and its
    /// certificates marked as its own, once however often it is done.
    async fn migration_0015_keeps_the_shared_ca_and_its_certificates(db: TestDb) {
        let (a, p) = account(1);
        let id = {
            let store = db.store().await;
            store.create_account(&a, &p).await.unwrap();
            let id = order(&store, &a, &p, 1, 1_700_000_000_000).await.remove(0);
            assert!(
                store
                    .mark_issued(
                        &id,
                        CertificateStatus::Paid,
                        &application("a.test"),
                        &issued(9_000),
                        100
                    )
                    .await
                    .unwrap()
            );
            store.close().await;
            id
        };
        let mut conn = raw_connection(&db.url).await;
        let blob = match db.url.backend() {
            crate::Backend::Sqlite => "X'09'",
            crate::Backend::Postgres => "decode('09', 'hex')",
        };
        conn.execute_raw(&format!(
            "DROP INDEX certificates_by_ca; ALTER TABLE certificates DROP COLUMN ca_id; \
             DROP TABLE cas; DELETE FROM _sqlx_migrations WHERE version = 15; \
             INSERT INTO ca (id, root_cert_pem, root_key_sealed, intermediate_cert_pem, \
             intermediate_key_sealed, created_ms) VALUES ('builtin', 'old root', {blob}, \
             'old int', {blob}, 1)"
        ))
        .await;
        let store = db.store().await;
        assert_eq!(
            conn.count("SELECT COUNT(*) FROM _sqlx_migrations WHERE version = 15")
                .await,
            1
        );
        let shared = store.ca().await.unwrap().unwrap();
        assert_eq!(shared.root_cert_pem, "old root");
        let cert = store.certificate(&id).await.unwrap().unwrap();
        assert_eq!(cert.issued.as_ref().unwrap().ca_id, None);
        let retired = StoredCa {
            id: "0ld".into(),
            role: CaRole::Shared,
            domain_id: None,
            ca: shared,
            retired_ms: Some(50),
        };
        store.retire_shared_ca(&retired).await.unwrap();
        let mut again = retired.clone();
        again.retired_ms = Some(60);
        store.retire_shared_ca(&again).await.unwrap();
        assert_eq!(store.ca_by_id("0ld").await.unwrap().unwrap(), retired);
        let cert = store.certificate(&id).await.unwrap().unwrap();
        assert_eq!(cert.issued.unwrap().ca_id.as_deref(), Some("0ld"));
        assert_eq!(
            store.crl_ca_ids(1_000).await.unwrap(),
            vec!["0ld".to_owned()]
        );
        assert!(store.crl_ca_ids(9_000).await.unwrap().is_empty());
        // The account has no CA of its own yet: the domain makes it on first use.
        assert!(
            store
                .live_ca(CaRole::Tenant, Some(&a.domain_id))
                .await
                .unwrap()
                .is_none()
        );
    }
}
