//! Domain flows over a real SQLite store with a fixed clock.

use std::sync::Arc;

use scm_pki::MasterKey;
use scm_proto::v3::{ApplicationBody, PurchaseBody};
use scm_proto::{CertificateStatus, DomainId};
use scm_sign::SecretKey;
use scm_store::{SqlStore, Store};
use time::macros::datetime;

use crate::application::FormKind;
use crate::deploy::{PushService, PushTarget, PushTargetConfig};
use crate::purchase::ApiVersion;
use crate::{AuthFailure, CoreConfig, DomainError, FixedClock, Principal, Scm, bootstrap};

struct World {
    scm: Scm,
    clock: Arc<FixedClock>,
    admin: Principal,
    admin_secret: SecretKey,
    dir: std::path::PathBuf,
}

async fn world(targets: Vec<PushTargetConfig>) -> World {
    let dir = std::env::temp_dir().join(format!(
        "openscm-core-{}",
        hex::encode(crate::random::bytes::<8>().unwrap())
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqlStore::connect(&format!("sqlite://{}?mode=rwc", dir.join("t.db").display()))
            .await
            .unwrap(),
    );
    let clock = Arc::new(FixedClock::new(datetime!(2026-11-23 12:00 UTC)));
    let master = Arc::new(MasterKey::generate().unwrap());
    let created = bootstrap::run(store.as_ref(), clock.as_ref(), &master)
        .await
        .unwrap()
        .unwrap();
    assert!(
        bootstrap::run(store.as_ref(), clock.as_ref(), &master)
            .await
            .unwrap()
            .is_none(),
        "second start reuses"
    );
    let mut config = CoreConfig::default();
    for t in &mut targets.into_iter() {
        let mut t = t;
        if t.account == "ADMIN" {
            t.account = created.domain_id.to_string();
        }
        config
            .push_targets
            .push(PushTarget::from_config(&t).unwrap());
    }
    let scm = Scm::open(store, clock.clone(), master, config)
        .await
        .unwrap();
    let admin = Principal {
        account: created.domain_id,
        project: created.project_id,
        access_key: created.access_key,
        method: crate::AuthMethod::Signature,
    };
    World {
        scm,
        clock,
        admin,
        admin_secret: created.secret_key,
        dir,
    }
}

fn buy_body(domain_type: &str, n: i64) -> PurchaseBody {
    serde_json::from_value(serde_json::json!({
        "cert_brand": "GLOBALSIGN", "cert_type": "DV_SSL_CERT", "domain_type": domain_type,
        "effective_time": 1, "domain_numbers": n, "order_number": 1, "agree_privacy_protection": true
    }))
    .unwrap()
}

fn apply_body(domain: &str, sans: &str) -> ApplicationBody {
    serde_json::from_value(serde_json::json!({
        "domain": domain, "sans": sans, "applicant_name": "Tom Smith", "applicant_phone": "13212345678",
        "applicant_email": "tom@example.com", "agree_privacy_protection": true, "domain_method": "DNS",
        "key_algorithm": "EC_P256", "company_name": "Example Org", "country": "cn"
    }))
    .unwrap()
}

async fn buy(w: &World, domain_type: &str, n: i64) -> String {
    let (_, ids) = w
        .scm
        .purchase(
            &w.admin,
            &w.admin.project,
            &buy_body(domain_type, n),
            ApiVersion::V3,
        )
        .await
        .unwrap();
    ids[0].to_string()
}

#[tokio::test]
async fn buy_apply_export_and_refusals() {
    let w = world(vec![]).await;
    let id = buy(&w, "MULTI_DOMAIN", 3).await;
    let cert = w.scm.certificate(&w.admin, &id).await.unwrap();
    assert_eq!(cert.status, CertificateStatus::Paid);
    w.scm
        .apply(
            &w.admin,
            &id,
            Some(&apply_body("www.a.test", "api.a.test")),
            FormKind::V3,
        )
        .await
        .unwrap();
    let cert = w.scm.certificate(&w.admin, &id).await.unwrap();
    assert_eq!(cert.status, CertificateStatus::Issued);
    let issued = cert.issued.clone().unwrap();
    assert_eq!(
        issued.issued_ms,
        crate::clock::unix_ms(datetime!(2026-11-23 12:00 UTC))
    );
    assert!(issued.not_after_ms > issued.issued_ms + 364 * 86_400_000);
    let export = w.scm.export(&w.admin, &id).await.unwrap();
    let info = scm_pki::parse_certificate_pem(&export.certificate).unwrap();
    assert_eq!(info.dns_names, vec!["www.a.test", "api.a.test"]);
    assert!(
        info.subject.contains("O=Example Org") && info.subject.contains("C=CN"),
        "{}",
        info.subject
    );
    let key = scm_pki::PrivateKey::from_pem(&export.private_key.unwrap()).unwrap();
    assert!(info.public_key_matches(&key));
    // Applying again is refused and changes nothing.
    let again = w
        .scm
        .apply(
            &w.admin,
            &id,
            Some(&apply_body("www.a.test", "")),
            FormKind::V3,
        )
        .await;
    assert!(matches!(
        again,
        Err(DomainError::WrongStatus(CertificateStatus::Issued))
    ));
    // No target configured in this world → SCM.0030.
    let push = w
        .scm
        .push(&w.admin, &id, PushService::Elb, Some("cn-north-4".into()))
        .await;
    assert!(matches!(push, Err(DomainError::NoPushTarget { .. })));
    std::fs::remove_dir_all(&w.dir).ok();
}

#[tokio::test]
async fn pushes_are_recorded_and_listed_newest_first() {
    let dir = std::env::temp_dir().join(format!(
        "openscm-core-push-{}",
        hex::encode(crate::random::bytes::<8>().unwrap())
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let target = |reload: &str| PushTargetConfig {
        name: format!("t-{reload}"),
        kind: "nginx".into(),
        account: "ADMIN".into(),
        service: "ELB".into(),
        region: Some(if reload == "true" {
            "cn-north-4".into()
        } else {
            "cn-east-3".into()
        }),
        cert_path: Some(dir.join(format!("{reload}.crt"))),
        key_path: Some(dir.join(format!("{reload}.key"))),
        test_command: None,
        reload_command: Some(vec![reload.into()]),
        timeout_seconds: None,
    };
    let w = world(vec![target("true"), target("false")]).await;
    let id = buy(&w, "SINGLE_DOMAIN", 1).await;
    let pending = w
        .scm
        .push(&w.admin, &id, PushService::Elb, Some("cn-north-4".into()))
        .await;
    assert!(matches!(
        pending,
        Err(DomainError::WrongStatus(CertificateStatus::Paid))
    ));
    w.scm
        .apply(
            &w.admin,
            &id,
            Some(&apply_body("one.test", "")),
            FormKind::V3,
        )
        .await
        .unwrap();
    for _ in 0..12 {
        w.clock.advance(time::Duration::seconds(1));
        w.scm
            .push(&w.admin, &id, PushService::Elb, Some("cn-north-4".into()))
            .await
            .unwrap();
    }
    let failed = w
        .scm
        .push(&w.admin, &id, PushService::Elb, Some("cn-east-3".into()))
        .await;
    assert!(
        matches!(failed, Err(DomainError::PushFailed(ref m)) if m.contains("t-false")),
        "{failed:?}"
    );
    assert!(
        !dir.join("false.crt").exists(),
        "a failed first delivery leaves nothing behind"
    );
    let key = std::fs::read_to_string(dir.join("true.key")).unwrap();
    assert!(key.contains("PRIVATE KEY"));
    let history = w.scm.push_history(&w.admin, &id).await.unwrap();
    assert_eq!(history.len(), 10);
    assert!(history.windows(2).all(|p| p[0].pushed_ms > p[1].pushed_ms));
    assert_eq!(history[0].region.as_deref(), Some("cn-north-4"));
    let all = w
        .scm
        .store()
        .push_history(&history[0].cert_id, 100, false)
        .await
        .unwrap();
    assert_eq!(all.len(), 13, "every attempt is kept");
    std::fs::remove_dir_all(&w.dir).ok();
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn accounts_are_isolated_and_policy_is_enforced() {
    let w = world(vec![]).await;
    let id = buy(&w, "SINGLE_DOMAIN", 1).await;
    let (other, _) = w.scm.create_account("other").await.unwrap();
    let cred = w
        .scm
        .create_credential(&other.domain_id, None, "t")
        .await
        .unwrap();
    let intruder = Principal {
        account: cred.domain_id.clone(),
        project: cred.project_id.clone(),
        access_key: cred.access_key.clone(),
        method: crate::AuthMethod::Signature,
    };
    assert!(matches!(
        w.scm.certificate(&intruder, &id).await,
        Err(DomainError::OtherTenant)
    ));
    assert!(matches!(
        w.scm
            .apply(
                &intruder,
                &id,
                Some(&apply_body("a.test", "")),
                FormKind::V3
            )
            .await,
        Err(DomainError::OtherTenant)
    ));
    assert!(matches!(
        w.scm
            .project_scope(&intruder, w.admin.project.as_str())
            .await,
        Err(DomainError::OtherTenant)
    ));
    assert!(matches!(
        w.scm.certificate(&w.admin, "scs0000000000000").await,
        Err(DomainError::CertificateNotFound)
    ));
    assert!(matches!(
        w.scm.certificate(&w.admin, "scs123").await,
        Err(DomainError::MalformedCertificateId)
    ));
    let outside = w
        .scm
        .apply(
            &w.admin,
            &id,
            Some(&apply_body("www.example.com", "")),
            FormKind::V3,
        )
        .await;
    assert!(
        matches!(outside, Err(DomainError::DomainMismatch(ref m)) if m.contains("not authorised")),
        "{outside:?}"
    );
    assert_eq!(
        w.scm.certificate(&w.admin, &id).await.unwrap().status,
        CertificateStatus::Paid,
        "refusal changed nothing"
    );
    assert!(
        w.scm
            .set_policy(&w.admin.account, "example.com")
            .await
            .unwrap()
    );
    w.scm
        .apply(
            &w.admin,
            &id,
            Some(&apply_body("www.example.com", "")),
            FormKind::V3,
        )
        .await
        .unwrap();
    assert!(
        w.scm
            .set_policy(&DomainId::from_random([1; 16]), "x")
            .await
            .map(|b| !b)
            .unwrap()
    );
    std::fs::remove_dir_all(&w.dir).ok();
}

fn signed(
    w: &World,
    ak: &str,
    secret: &SecretKey,
    date: time::OffsetDateTime,
    body: &[u8],
) -> Vec<(String, String)> {
    let s = scm_sign::sign(
        "POST",
        "127.0.0.1:8080",
        "/v3/scm/certificates/buy",
        &[],
        &[
            ("Content-Type", "application/json"),
            ("X-Domain-Id", w.admin.account.as_str()),
        ],
        body,
        ak,
        secret,
        date,
    );
    s.headers
}

async fn auth_with(
    w: &World,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Principal, DomainError> {
    let h: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let req = scm_sign::Request {
        method: "POST",
        raw_path: "/v3/scm/certificates/buy",
        raw_query: None,
        headers: &h,
        body,
    };
    w.scm.authenticate(&req).await
}

#[tokio::test]
async fn signatures_skew_tokens_and_revocation_on_a_fixed_clock() {
    let w = world(vec![]).await;
    let ak = w.admin.access_key.to_string();
    let body = br#"{"a": 1}"#;
    let now = crate::Clock::now(w.clock.as_ref());
    let ok = auth_with(&w, &signed(&w, &ak, &w.admin_secret, now, body), body)
        .await
        .unwrap();
    assert_eq!(ok.account, w.admin.account);
    let skewed = signed(
        &w,
        &ak,
        &w.admin_secret,
        now - time::Duration::minutes(16),
        body,
    );
    assert!(matches!(
        auth_with(&w, &skewed, body).await,
        Err(DomainError::Unauthenticated(AuthFailure::Skew))
    ));
    let early = signed(
        &w,
        &ak,
        &w.admin_secret,
        now - time::Duration::minutes(14),
        body,
    );
    assert!(auth_with(&w, &early, body).await.is_ok());
    let tampered = auth_with(
        &w,
        &signed(&w, &ak, &w.admin_secret, now, body),
        b"{\"a\": 2}",
    )
    .await;
    assert!(matches!(
        tampered,
        Err(DomainError::Unauthenticated(AuthFailure::BadSignature))
    ));
    let wrong = SecretKey::new("x".repeat(40));
    assert!(matches!(
        auth_with(&w, &signed(&w, &ak, &wrong, now, body), body).await,
        Err(DomainError::Unauthenticated(AuthFailure::BadSignature))
    ));
    assert!(matches!(
        auth_with(&w, &[], body).await,
        Err(DomainError::Unauthenticated(AuthFailure::Missing))
    ));

    // Tokens expire after 24 h on the injected clock.
    let token = w.scm.create_token(&ok).await.unwrap();
    let bearer = vec![("X-Auth-Token".to_string(), token.token.to_string())];
    assert!(auth_with(&w, &bearer, b"").await.is_ok());
    w.clock.advance(time::Duration::hours(24));
    assert!(matches!(
        auth_with(&w, &bearer, b"").await,
        Err(DomainError::Unauthenticated(AuthFailure::ExpiredToken))
    ));
    w.clock.advance(-time::Duration::hours(1));
    assert!(auth_with(&w, &bearer, b"").await.is_ok());

    // Revocation ends both the signature and the token.
    assert!(w.scm.revoke_credential(&w.admin.access_key).await.unwrap());
    let now = crate::Clock::now(w.clock.as_ref());
    assert!(matches!(
        auth_with(&w, &signed(&w, &ak, &w.admin_secret, now, body), body).await,
        Err(DomainError::Unauthenticated(AuthFailure::Revoked))
    ));
    assert!(matches!(
        auth_with(&w, &bearer, b"").await,
        Err(DomainError::Unauthenticated(AuthFailure::Revoked))
    ));
    std::fs::remove_dir_all(&w.dir).ok();
}

#[tokio::test]
async fn raw_database_holds_no_private_key_text() {
    let w = world(vec![]).await;
    for alg in ["EC_P256", "RSA_2048"] {
        let id = buy(&w, "SINGLE_DOMAIN", 1).await;
        let mut body = apply_body(
            &format!("{}.test", alg.to_lowercase().replace('_', "-")),
            "",
        );
        body.key_algorithm = Some(alg.into());
        w.scm
            .apply(&w.admin, &id, Some(&body), FormKind::V3)
            .await
            .unwrap();
        assert!(
            w.scm
                .export(&w.admin, &id)
                .await
                .unwrap()
                .private_key
                .unwrap()
                .contains("PRIVATE KEY")
        );
    }
    let mut raw = Vec::new();
    for entry in std::fs::read_dir(&w.dir).unwrap() {
        raw.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.contains("BEGIN CERTIFICATE"),
        "the certificates are there"
    );
    assert!(!text.contains("PRIVATE KEY"), "no private key in clear");
    assert!(
        !text.contains(w.admin_secret.expose()),
        "no secret key in clear"
    );
    std::fs::remove_dir_all(&w.dir).ok();
}

#[tokio::test]
async fn a_second_process_sees_revocations_and_new_pushes_within_a_poll() {
    let w = world(vec![]).await;
    // A second service over the same database plays the admin CLI (or another server).
    let url = format!("sqlite://{}?mode=rwc", w.dir.join("t.db").display());
    let other_store: Arc<dyn Store> = Arc::new(SqlStore::connect(&url).await.unwrap());
    let id = buy(&w, "SINGLE_DOMAIN", 1).await;
    let body = br#"{"a": 1}"#;
    let ak = w.admin.access_key.to_string();
    let now = crate::Clock::now(w.clock.as_ref());
    let headers = signed(&w, &ak, &w.admin_secret, now, body);
    assert!(
        auth_with(&w, &headers, body).await.is_ok(),
        "credential now cached"
    );
    assert_eq!(
        w.scm.certificate(&w.admin, &id).await.unwrap().status,
        CertificateStatus::Paid,
        "certificate cached"
    );
    assert!(
        other_store
            .revoke_credential(&w.admin.access_key, 1)
            .await
            .unwrap()
    );
    let cert_id = scm_proto::CertificateId::try_from(id.as_str()).unwrap();
    let app = scm_store::ApplicationRecord {
        domain: "x.test".into(),
        sans: String::new(),
        form_json: "{}".into(),
        csr_pem: None,
        validation_method: None,
        key_algorithm: None,
    };
    assert!(
        other_store
            .save_application(&cert_id, CertificateStatus::Paid, &app, 2)
            .await
            .unwrap()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let revoked = matches!(
            auth_with(&w, &headers, body).await,
            Err(DomainError::Unauthenticated(AuthFailure::Revoked))
        );
        let saved = w
            .scm
            .certificate(&w.admin, &id)
            .await
            .unwrap()
            .application
            .is_some();
        if revoked && saved {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "caches never caught up with the other process"
        );
        tokio::time::sleep(crate::cache::POLL / 4).await;
    }
    std::fs::remove_dir_all(&w.dir).ok();
}
