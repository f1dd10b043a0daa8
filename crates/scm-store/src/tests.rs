//! The storage suite: every test runs against SQLite (a temp file) and PostgreSQL (a throwaway
//! database on the server named by `OPENSCM_TEST_PG_URL`, default the local one on 127.0.0.1:5432).
//! A PostgreSQL test fails, never skips, when the server is unreachable.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use scm_proto::{AccessKeyId, CertificateStatus, DomainId, OrderId, ProjectId};
use sqlx::Connection;

use crate::*;

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn pg_base_url() -> String {
    std::env::var("OPENSCM_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `url` with its database name replaced.
fn with_database(url: &str, db: &str) -> String {
    let (head, tail) = url.split_once("://").unwrap();
    let (hostpart, rest) = tail.split_once('/').unwrap_or((tail, ""));
    let query = rest
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{head}://{hostpart}/{db}{query}")
}

async fn with_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Arc<SqlStore>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = std::env::temp_dir().join(format!("openscm-store-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("t.db").display());
    let store = Arc::new(SqlStore::connect(&url).await.unwrap());
    test(store.clone()).await;
    store.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

async fn with_postgres<F, Fut>(test: F)
where
    F: FnOnce(Arc<SqlStore>) -> Fut,
    Fut: Future<Output = ()>,
{
    sqlx::any::install_default_drivers();
    let base = pg_base_url();
    let db = format!("scm_t_{}", unique());
    let admin_url = with_database(&base, "postgres");
    let mut admin = sqlx::AnyConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL at {admin_url} is required for the storage suite: {e}")
        });
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let store = Arc::new(SqlStore::connect(&with_database(&base, &db)).await.unwrap());
    test(store.clone()).await;
    store.close().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {db} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::with_sqlite(super::$name).await })*
        }
        mod postgres {
            $(#[tokio::test] async fn $name() { super::with_postgres(super::$name).await })*
        }
    };
}

suite!(
    bootstrap_happens_once,
    accounts_projects_credentials,
    tokens_follow_credential_status,
    order_ids_are_unique_in_one_millisecond,
    concurrent_orders_never_share_ids,
    application_and_issuance_are_conditional,
    listing_filters_sorts_and_pages,
    push_history_is_newest_first,
    migrations_are_idempotent,
    revision_moves_with_every_cached_write,
    concurrent_issuance_records_exactly_one,
);

fn ids(n: u8) -> (DomainId, ProjectId) {
    (
        DomainId::from_random([n; 16]),
        ProjectId::from_random([n.wrapping_add(100); 16]),
    )
}

fn account(n: u8) -> (AccountRecord, ProjectRecord) {
    let (d, p) = ids(n);
    (
        AccountRecord {
            domain_id: d.clone(),
            name: format!("acct-{n}"),
            policy: ".test".into(),
            created_ms: 1,
        },
        ProjectRecord {
            project_id: p,
            domain_id: d,
            name: "cn-north-4".into(),
            created_ms: 1,
        },
    )
}

fn credential(n: u8, a: &AccountRecord, p: &ProjectRecord) -> CredentialRecord {
    CredentialRecord {
        access_key: AccessKeyId::from_random([n; 20]),
        domain_id: a.domain_id.clone(),
        project_id: p.project_id.clone(),
        secret_sealed: vec![1, 2, 3, n],
        status: CredentialStatus::Active,
        description: "t".into(),
        created_ms: 5,
        revoked_ms: None,
    }
}

fn bootstrap_records(n: u8) -> Bootstrap {
    let (account, project) = account(n);
    let credential = credential(n, &account, &project);
    Bootstrap {
        account,
        project,
        credential,
        ca: CaRecord {
            root_cert_pem: "root".into(),
            root_key_sealed: vec![9; 40],
            intermediate_cert_pem: "int".into(),
            intermediate_key_sealed: vec![8; 40],
            created_ms: 3,
        },
    }
}

fn product() -> Product {
    Product {
        brand: "GLOBALSIGN".into(),
        cert_type: "OV_SSL_CERT".into(),
        domain_type: "MULTI_DOMAIN".into(),
        effective_time: 1,
        domain_numbers: 5,
        primary_domain_type: Some("SINGLE_DOMAIN".into()),
        single_domain_number: None,
        wildcard_domain_number: Some(2),
        enterprise_project_id: "0".into(),
    }
}

async fn order(
    store: &SqlStore,
    a: &AccountRecord,
    p: &ProjectRecord,
    n: u32,
    now_ms: i64,
) -> Vec<scm_proto::CertificateId> {
    let random: [u8; 5] = {
        let u = unique();
        let b = u.as_bytes();
        [
            b[b.len() - 1],
            b[b.len() - 2],
            b[b.len() - 3],
            b[b.len() - 4],
            b[b.len() - 5],
        ]
    };
    let rec = OrderRecord {
        order_id: OrderId::new("2611231530", random).unwrap(),
        domain_id: a.domain_id.clone(),
        project_id: p.project_id.clone(),
        product: product(),
        order_number: i64::from(n),
        tags_json: "[]".into(),
        created_ms: now_ms,
    };
    let template = NewCertificate {
        name: "scm".into(),
        status: CertificateStatus::Paid,
        description: String::new(),
    };
    match store.create_order(&rec, &template, n, now_ms).await {
        Ok(ids) => ids,
        // The random part above is weak; retry like the domain does on an order id collision.
        Err(StoreError::Conflict(_)) => Box::pin(order(store, a, p, n, now_ms)).await,
        Err(e) => panic!("{e}"),
    }
}

async fn bootstrap_happens_once(store: Arc<SqlStore>) {
    assert!(store.bootstrap(&bootstrap_records(1)).await.unwrap());
    assert!(!store.bootstrap(&bootstrap_records(2)).await.unwrap());
    let accounts = store.accounts().await.unwrap();
    assert_eq!(accounts.len(), 1, "the loser wrote nothing");
    assert_eq!(store.ca().await.unwrap().unwrap().root_cert_pem, "root");
    assert_eq!(
        store.meta("bootstrapped").await.unwrap().unwrap(),
        accounts[0].domain_id.as_str()
    );
    assert_eq!(store.init_meta("k", "v1").await.unwrap(), "v1");
    assert_eq!(store.init_meta("k", "v2").await.unwrap(), "v1");
}

async fn accounts_projects_credentials(store: Arc<SqlStore>) {
    let (a, p) = account(1);
    store.create_account(&a, &p).await.unwrap();
    assert!(matches!(
        store.create_account(&a, &p).await,
        Err(StoreError::Conflict(_))
    ));
    let extra = ProjectRecord {
        project_id: ProjectId::from_random([77; 16]),
        domain_id: a.domain_id.clone(),
        name: "cn-east-3".into(),
        created_ms: 2,
    };
    store.create_project(&extra).await.unwrap();
    assert_eq!(store.projects(&a.domain_id).await.unwrap().len(), 2);
    assert_eq!(
        store.project(&extra.project_id).await.unwrap().unwrap(),
        extra
    );
    assert_eq!(store.account(&a.domain_id).await.unwrap().unwrap(), a);
    assert!(store.set_policy(&a.domain_id, ".internal").await.unwrap());
    assert_eq!(
        store.account(&a.domain_id).await.unwrap().unwrap().policy,
        ".internal"
    );
    assert!(
        !store
            .set_policy(&DomainId::from_random([3; 16]), "x")
            .await
            .unwrap()
    );

    let c = credential(1, &a, &p);
    store.insert_credential(&c).await.unwrap();
    assert_eq!(store.credential(&c.access_key).await.unwrap().unwrap(), c);
    assert_eq!(
        store.credentials(Some(&a.domain_id)).await.unwrap().len(),
        1
    );
    assert_eq!(
        store
            .credentials(Some(&DomainId::from_random([3; 16])))
            .await
            .unwrap()
            .len(),
        0
    );
    assert!(store.revoke_credential(&c.access_key, 99).await.unwrap());
    assert!(!store.revoke_credential(&c.access_key, 100).await.unwrap());
    let revoked = store.credential(&c.access_key).await.unwrap().unwrap();
    assert_eq!(revoked.status, CredentialStatus::Revoked);
    assert_eq!(revoked.revoked_ms, Some(99));
}

async fn tokens_follow_credential_status(store: Arc<SqlStore>) {
    let (a, p) = account(1);
    store.create_account(&a, &p).await.unwrap();
    let c = credential(1, &a, &p);
    store.insert_credential(&c).await.unwrap();
    let t = TokenRecord {
        token_hash: "ab".repeat(32),
        access_key: c.access_key.clone(),
        domain_id: a.domain_id.clone(),
        project_id: p.project_id.clone(),
        issued_ms: 10,
        expires_ms: 20,
    };
    store.insert_token(&t).await.unwrap();
    assert_eq!(
        store.token(&t.token_hash).await.unwrap().unwrap(),
        (t.clone(), CredentialStatus::Active)
    );
    store.revoke_credential(&c.access_key, 11).await.unwrap();
    assert_eq!(
        store.token(&t.token_hash).await.unwrap().unwrap().1,
        CredentialStatus::Revoked
    );
    assert!(store.token("cd").await.unwrap().is_none());
}

async fn order_ids_are_unique_in_one_millisecond(store: Arc<SqlStore>) {
    let (a, p) = account(1);
    store.create_account(&a, &p).await.unwrap();
    let now = 1_700_000_000_000;
    let first = order(&store, &a, &p, 100, now).await;
    let second = order(&store, &a, &p, 3, now).await;
    assert_eq!(first.len(), 100);
    assert_eq!(first[0].millis(), 1_700_000_000_000);
    let all: HashSet<_> = first.iter().chain(second.iter()).collect();
    assert_eq!(all.len(), 103);
    assert_eq!(second[0].millis(), first[99].millis() + 1);
    // A clock that went backwards still gets fresh ids.
    let third = order(&store, &a, &p, 1, now - 5_000).await;
    assert!(third[0].millis() > second[2].millis());
    let c = store.certificate(&first[42]).await.unwrap().unwrap();
    assert_eq!(c.status, CertificateStatus::Paid);
    assert_eq!(c.product, product());
    assert_eq!(c.domain_id, a.domain_id);
    assert!(c.application.is_none() && c.issued.is_none());
}

async fn concurrent_orders_never_share_ids(store: Arc<SqlStore>) {
    let (a, p) = account(1);
    store.create_account(&a, &p).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, a, p) = (store.clone(), a.clone(), p.clone());
        tasks.push(tokio::spawn(async move {
            order(&store, &a, &p, 10, 1_700_000_000_000).await
        }));
    }
    let mut all = HashSet::new();
    for t in tasks {
        for id in t.await.unwrap() {
            assert!(all.insert(id));
        }
    }
    assert_eq!(all.len(), 80);
}

fn application(domain: &str) -> ApplicationRecord {
    ApplicationRecord {
        domain: domain.into(),
        sans: "a.test;b.test".into(),
        form_json: r#"{"applicant_name":"Tom"}"#.into(),
        csr_pem: None,
        validation_method: Some("DNS".into()),
        key_algorithm: Some("EC_P256".into()),
    }
}

fn issued(not_after_ms: i64) -> IssuedRecord {
    IssuedRecord {
        certificate_pem: "leaf".into(),
        chain_pem: "chain".into(),
        private_key_sealed: Some(vec![4; 50]),
        serial_hex: "0a".into(),
        fingerprint: "f".repeat(40),
        signature_algorithm: "SHA256WITHECDSA".into(),
        issued_ms: 100,
        not_before_ms: 100,
        not_after_ms,
    }
}

async fn application_and_issuance_are_conditional(store: Arc<SqlStore>) {
    let (a, p) = account(1);
    store.create_account(&a, &p).await.unwrap();
    let id = order(&store, &a, &p, 1, 1_700_000_000_000).await.remove(0);
    assert!(
        store
            .save_application(&id, CertificateStatus::Paid, &application("x.test"), 200)
            .await
            .unwrap()
    );
    assert!(
        store
            .save_application(&id, CertificateStatus::Paid, &application("y.test"), 201)
            .await
            .unwrap()
    );
    let c = store.certificate(&id).await.unwrap().unwrap();
    assert_eq!(c.application.unwrap(), application("y.test"));
    assert_eq!(c.updated_ms, 201);
    assert!(
        !store
            .mark_issued(
                &id,
                CertificateStatus::Checking,
                &application("y.test"),
                &issued(500),
                300
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .mark_issued(
                &id,
                CertificateStatus::Paid,
                &application("y.test"),
                &issued(500),
                300
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .mark_issued(
                &id,
                CertificateStatus::Paid,
                &application("y.test"),
                &issued(500),
                301
            )
            .await
            .unwrap(),
        "issued once"
    );
    assert!(
        !store
            .save_application(&id, CertificateStatus::Paid, &application("z.test"), 302)
            .await
            .unwrap()
    );
    let c = store.certificate(&id).await.unwrap().unwrap();
    assert_eq!(c.status, CertificateStatus::Issued);
    assert_eq!(c.issued.unwrap(), issued(500));
    assert_eq!(c.application.unwrap().domain, "y.test");
}

async fn listing_filters_sorts_and_pages(store: Arc<SqlStore>) {
    let (a, p) = account(1);
    let (b, q) = account(2);
    store.create_account(&a, &p).await.unwrap();
    store.create_account(&b, &q).await.unwrap();
    let ids = order(&store, &a, &p, 25, 1_700_000_000_000).await;
    order(&store, &b, &q, 4, 1_700_000_000_000).await;
    for (i, id) in ids.iter().take(5).enumerate() {
        let domain = format!("site{i}.test");
        store
            .mark_issued(
                id,
                CertificateStatus::Paid,
                &application(&domain),
                &issued(1000 - i as i64),
                400 + i as i64,
            )
            .await
            .unwrap();
    }
    let base = ListQuery::default();
    let (page, total) = store.list_certificates(&a.domain_id, &base).await.unwrap();
    assert_eq!((page.len(), total), (10, 25));
    assert!(page.iter().all(|c| c.domain_id == a.domain_id));
    let (page, total) = store
        .list_certificates(
            &a.domain_id,
            &ListQuery {
                offset: 20,
                ..base.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!((page.len(), total), (5, 25));
    let (page, _) = store
        .list_certificates(
            &a.domain_id,
            &ListQuery {
                offset: 30,
                ..base.clone()
            },
        )
        .await
        .unwrap();
    assert!(page.is_empty());
    let issued_q = ListQuery {
        status: Some(CertificateStatus::Issued),
        sort_key: SortKey::ExpiredTime,
        ascending: true,
        ..base.clone()
    };
    let (page, total) = store
        .list_certificates(&a.domain_id, &issued_q)
        .await
        .unwrap();
    assert_eq!(total, 5);
    let expiries: Vec<i64> = page
        .iter()
        .map(|c| c.issued.as_ref().unwrap().not_after_ms)
        .collect();
    assert_eq!(expiries, vec![996, 997, 998, 999, 1000]);
    let (page, total) = store
        .list_certificates(
            &a.domain_id,
            &ListQuery {
                content: Some("site3".into()),
                ..base.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!((page.len(), total), (1, 1));
    let (_, total) = store
        .list_certificates(
            &a.domain_id,
            &ListQuery {
                content: Some("%".into()),
                ..base.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(total, 0, "LIKE wildcards in the keyword are literal");
    let (_, total) = store
        .list_certificates(
            &a.domain_id,
            &ListQuery {
                deploy_support: true,
                ..base.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(total, 5);
    let (_, total) = store.list_certificates(&b.domain_id, &base).await.unwrap();
    assert_eq!(total, 4);
    let (_, total) = store
        .list_certificates(
            &a.domain_id,
            &ListQuery {
                expired_after_ms: Some(998),
                ..base.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        total, 23,
        "two expired before 998 are left out, unissued ones stay"
    );
    let (_, total) = store
        .list_certificates(
            &a.domain_id,
            &ListQuery {
                enterprise_project_id: Some("0".into()),
                ..base.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(total, 25);
    let other_ep = "0123abcd-0000-0000-0000-000000000000".to_string();
    let (_, total) = store
        .list_certificates(
            &a.domain_id,
            &ListQuery {
                enterprise_project_id: Some(other_ep),
                ..base.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(total, 0);
}

async fn push_history_is_newest_first(store: Arc<SqlStore>) {
    let (a, p) = account(1);
    store.create_account(&a, &p).await.unwrap();
    let id = order(&store, &a, &p, 1, 1_700_000_000_000).await.remove(0);
    for i in 0..15 {
        let rec = PushRecord {
            cert_id: id.clone(),
            domain_id: a.domain_id.clone(),
            pushed_ms: 1000 + i,
            service: "ELB".into(),
            region: if i == 14 {
                None
            } else {
                Some("cn-north-4".into())
            },
            outcome: if i % 5 == 0 {
                PushOutcome::Failure
            } else {
                PushOutcome::Success
            },
            detail: format!("attempt {i}"),
            targets: "t1".into(),
        };
        store.record_push(&rec).await.unwrap();
    }
    let all = store.push_history(&id, 100, false).await.unwrap();
    assert_eq!(all.len(), 15, "every attempt is kept");
    let last10 = store.push_history(&id, 10, true).await.unwrap();
    assert_eq!(last10.len(), 10);
    assert!(last10.iter().all(|r| r.outcome == PushOutcome::Success));
    assert_eq!(last10[0].pushed_ms, 1014);
    assert_eq!(last10[0].region, None);
    assert!(last10.windows(2).all(|w| w[0].pushed_ms > w[1].pushed_ms));
}

async fn migrations_are_idempotent(store: Arc<SqlStore>) {
    crate::migrate::run(&store.pool_for_tests(), store.backend())
        .await
        .unwrap();
    crate::migrate::run(&store.pool_for_tests(), store.backend())
        .await
        .unwrap();
    let (a, p) = account(9);
    store.create_account(&a, &p).await.unwrap();
}

async fn revision_moves_with_every_cached_write(store: Arc<SqlStore>) {
    let (a, p) = account(1);
    store.create_account(&a, &p).await.unwrap();
    let c = credential(1, &a, &p);
    store.insert_credential(&c).await.unwrap();
    let id = order(&store, &a, &p, 1, 1_700_000_000_000).await.remove(0);
    let mut last = store.revision().await.unwrap();
    let mut moved = |r: i64, what: &str| {
        assert!(r > last, "{what} must move the revision");
        last = r;
    };
    store.set_policy(&a.domain_id, ".x").await.unwrap();
    moved(store.revision().await.unwrap(), "set_policy");
    store
        .save_application(&id, CertificateStatus::Paid, &application("a.test"), 1)
        .await
        .unwrap();
    moved(store.revision().await.unwrap(), "save_application");
    store
        .mark_issued(
            &id,
            CertificateStatus::Paid,
            &application("a.test"),
            &issued(9),
            2,
        )
        .await
        .unwrap();
    moved(store.revision().await.unwrap(), "mark_issued");
    let rec = PushRecord {
        cert_id: id.clone(),
        domain_id: a.domain_id.clone(),
        pushed_ms: 3,
        service: "ELB".into(),
        region: None,
        outcome: PushOutcome::Success,
        detail: String::new(),
        targets: "t".into(),
    };
    store.record_push(&rec).await.unwrap();
    moved(store.revision().await.unwrap(), "record_push");
    store.revoke_credential(&c.access_key, 4).await.unwrap();
    moved(store.revision().await.unwrap(), "revoke_credential");
}

async fn concurrent_issuance_records_exactly_one(store: Arc<SqlStore>) {
    let (a, p) = account(1);
    store.create_account(&a, &p).await.unwrap();
    let ids = order(&store, &a, &p, 20, 1_700_000_000_000).await;
    let mut tasks = Vec::new();
    // Eight racing issuances per certificate, all in flight together (and, on SQLite, grouped
    // into shared transactions): exactly one per certificate may win.
    for id in &ids {
        for attempt in 0..8 {
            let (store, id) = (store.clone(), id.clone());
            tasks.push(tokio::spawn(async move {
                let ok = store
                    .mark_issued(
                        &id,
                        CertificateStatus::Paid,
                        &application("a.test"),
                        &issued(1000 + attempt),
                        5,
                    )
                    .await
                    .unwrap();
                (id, ok)
            }));
        }
    }
    let mut wins = std::collections::HashMap::new();
    for t in tasks {
        let (id, ok) = t.await.unwrap();
        *wins.entry(id).or_insert(0) += i32::from(ok);
    }
    assert_eq!(wins.len(), 20);
    assert!(wins.values().all(|w| *w == 1), "{wins:?}");
    for id in &ids {
        assert_eq!(
            store.certificate(id).await.unwrap().unwrap().status,
            CertificateStatus::Issued
        );
    }
}
