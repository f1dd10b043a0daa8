//! Domain flows over a real SQLite store with a fixed clock.
//!
//! Push targets and notifiers here are test doubles of the domain's ports (they record what they
//! get and fail as scripted), so that retries, backoff and give-up are tested on the fixed clock;
//! the real nginx and webhook adapters are tested in `scm-outbound` and end to end.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use scm_pki::MasterKey;
use scm_proto::v3::{ApplicationBody, PurchaseBody};
use scm_proto::{CertificateId, CertificateStatus, DomainId};
use scm_sign::SecretKey;
use scm_store::{DatabaseUrl, JobState, SqlStore, Store};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::deploy::{DeliveryError, Deployer, Material, PushService, PushTarget};
use crate::jobs::{AttemptReport, JobHandler, JobSettings};
use crate::notify::{Event, Notification, Notifier, NotifierTarget, NotifyError};
use crate::purchase::ApiVersion;
use crate::{
    AuthFailure, CoreConfig, DomainError, FixedClock, ListRequest, Principal, Scm, bootstrap,
};

/// A push target that records what it is given and answers as scripted (then `Ok`).
#[derive(Debug, Default)]
struct ScriptedDeployer {
    script: Mutex<VecDeque<Result<(), DeliveryError>>>,
    delivered: Mutex<Vec<String>>,
}

#[async_trait]
impl Deployer for ScriptedDeployer {
    async fn deliver(&self, m: &Material) -> Result<(), DeliveryError> {
        assert!(m.key_pem.contains("PRIVATE KEY") && m.fullchain_pem.contains("CERTIFICATE"));
        self.delivered.lock().unwrap().push(m.fullchain_pem.clone());
        self.script.lock().unwrap().pop_front().unwrap_or(Ok(()))
    }
}

impl ScriptedDeployer {
    fn failing(outcomes: Vec<Result<(), DeliveryError>>) -> Arc<Self> {
        Arc::new(Self {
            script: Mutex::new(outcomes.into()),
            delivered: Mutex::default(),
        })
    }

    fn deliveries(&self) -> usize {
        self.delivered.lock().unwrap().len()
    }
}

/// A notifier that records what it is told.
#[derive(Debug, Default)]
struct RecordingNotifier {
    got: Mutex<Vec<Notification>>,
}

#[async_trait]
impl Notifier for RecordingNotifier {
    async fn notify(&self, n: &Notification) -> Result<(), NotifyError> {
        self.got.lock().unwrap().push(n.clone());
        Ok(())
    }
}

/// The `public_endpoint` of the test worlds (leaves carry their CRL's URL under it).
const PUBLIC_ENDPOINT: &str = "https://scm.example.test:8443/";

struct World {
    scm: Arc<Scm>,
    store: Arc<dyn Store>,
    clock: Arc<FixedClock>,
    master: Arc<MasterKey>,
    admin: Principal,
    admin_secret: SecretKey,
    dir: tempfile::TempDir,
}

impl World {
    fn handler(&self) -> Arc<dyn JobHandler> {
        self.scm.clone()
    }
}

/// A push target for the admin account: name, service, region, deployer.
type TargetSpec<'a> = (&'a str, PushService, Option<&'a str>, Arc<dyn Deployer>);

/// A world whose push targets (for the admin account) and notifiers are given as
/// `(name, service, region, deployer)` and `(name, notifier)`.
async fn world_with(
    targets: Vec<TargetSpec<'_>>,
    notifiers: Vec<(&str, Arc<dyn Notifier>)>,
) -> World {
    world_configured(targets, notifiers, |_| {}).await
}

/// [`world_with`], with `tweak` applied to the configuration before the service opens.
async fn world_configured(
    targets: Vec<TargetSpec<'_>>,
    notifiers: Vec<(&str, Arc<dyn Notifier>)>,
    tweak: impl FnOnce(&mut CoreConfig),
) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqlStore::connect(&DatabaseUrl::sqlite_file(&dir.path().join("t.db")))
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
    let mut config = CoreConfig {
        jobs: JobSettings {
            lease: std::time::Duration::from_secs(60),
            ..JobSettings::default()
        },
        public_endpoint: Some(PUBLIC_ENDPOINT.into()),
        ..CoreConfig::default()
    };
    for (name, service, region, deployer) in targets {
        config.push_targets.push(PushTarget {
            name: name.into(),
            account: created.domain_id.clone(),
            service,
            region: region.map(Into::into),
            resource_id: name.into(),
            verify: None,
            redeliver_on_drift: false,
            kind: "test",
            deployer,
        });
    }
    for (name, notifier) in notifiers {
        config.notifiers.push(NotifierTarget {
            name: name.into(),
            account: created.domain_id.clone(),
            notifier,
        });
    }
    tweak(&mut config);
    let scm = Arc::new(
        Scm::open(store.clone(), clock.clone(), master.clone(), config)
            .await
            .unwrap(),
    );
    let admin = Principal {
        account: created.domain_id,
        project: created.project_id,
        access_key: created.access_key,
        method: crate::AuthMethod::Signature,
    };
    World {
        scm,
        store,
        clock,
        master,
        admin,
        admin_secret: created.secret_key,
        dir,
    }
}

async fn world() -> World {
    world_with(Vec::new(), Vec::new()).await
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

async fn buy(w: &World, domain_type: &str, n: i64) -> CertificateId {
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
    ids[0].clone()
}

async fn issued(w: &World, domain: &str) -> CertificateId {
    let id = buy(w, "SINGLE_DOMAIN", 1).await;
    w.scm
        .apply(&w.admin, &id, Some(&apply_body(domain, "")), ApiVersion::V3)
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn buy_apply_export_and_refusals() {
    let w = world().await;
    let id = buy(&w, "MULTI_DOMAIN", 3).await;
    let cert = w.scm.certificate(&w.admin, &id).await.unwrap();
    assert_eq!(cert.status, CertificateStatus::Paid);
    w.scm
        .apply(
            &w.admin,
            &id,
            Some(&apply_body("www.a.test", "api.a.test")),
            ApiVersion::V3,
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
            ApiVersion::V3,
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
}

#[tokio::test]
async fn pushes_are_recorded_and_listed_newest_first() {
    let ok = ScriptedDeployer::failing(Vec::new());
    let refusing =
        ScriptedDeployer::failing(vec![Err(DeliveryError::permanent("test command failed"))]);
    let w = world_with(
        vec![
            ("t-ok", PushService::Elb, Some("cn-north-4"), ok.clone()),
            (
                "t-refusing",
                PushService::Elb,
                Some("cn-east-3"),
                refusing.clone(),
            ),
        ],
        Vec::new(),
    )
    .await;
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
            ApiVersion::V3,
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
    assert_eq!(ok.deliveries(), 12);
    let failed = w
        .scm
        .push(&w.admin, &id, PushService::Elb, Some("cn-east-3".into()))
        .await;
    assert!(
        matches!(failed, Err(DomainError::PushFailed(ref m)) if m.contains("t-refusing") && m.contains("test command failed")),
        "{failed:?}"
    );
    let history = w.scm.push_history(&w.admin, &id).await.unwrap();
    assert_eq!(history.len(), 10);
    assert!(history.windows(2).all(|p| p[0].pushed_ms > p[1].pushed_ms));
    assert_eq!(history[0].region.as_deref(), Some("cn-north-4"));
    let all = w.store.push_history(&id, 100, false).await.unwrap();
    assert_eq!(all.len(), 13, "every attempt is kept");
    // A permanent refusal is not retried: its job failed at once.
    let failed_jobs = w.scm.jobs(Some(JobState::Failed), 10).await.unwrap();
    assert_eq!(failed_jobs.len(), 1);
    assert_eq!(failed_jobs[0].attempts, 1);
    w.clock.advance(time::Duration::hours(2));
    assert!(
        w.scm
            .job_runner()
            .run_due(&w.handler())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(refusing.deliveries(), 1);
}

/// A delivery that fails for a reason that may pass is retried in the background, with
/// exponential backoff and jitter on the injected clock, until it works.
#[tokio::test]
async fn transient_failures_are_retried_with_backoff_on_the_fixed_clock() {
    let flaky = ScriptedDeployer::failing(vec![
        Err(DeliveryError::transient("reload timed out")),
        Err(DeliveryError::transient("reload timed out")),
    ]);
    let w = world_with(
        vec![("flaky", PushService::Waf, Some("cn-north-4"), flaky.clone())],
        Vec::new(),
    )
    .await;
    let id = issued(&w, "flaky.test").await;
    let first = w
        .scm
        .push(&w.admin, &id, PushService::Waf, Some("cn-north-4".into()))
        .await;
    assert!(
        matches!(first, Err(DomainError::PushFailed(ref m)) if m.contains("reload timed out")),
        "{first:?}"
    );
    let runner = w.scm.job_runner().clone();
    let t0 = crate::Clock::now_ms(w.clock.as_ref());
    let job = &w.scm.jobs(None, 10).await.unwrap()[0];
    assert_eq!((job.state, job.attempts), (JobState::Pending, 1));
    // Deliver's backoff starts at 30 s: the retry is due 15..30 s later (equal jitter).
    assert!(
        (t0 + 15_000..=t0 + 30_000).contains(&job.due_ms),
        "{}",
        job.due_ms - t0
    );
    assert!(
        runner.run_due(&w.handler()).await.unwrap().is_empty(),
        "not due yet"
    );
    w.clock.advance(time::Duration::seconds(30));
    let second = runner.run_due(&w.handler()).await.unwrap();
    assert!(
        matches!(
            second.as_slice(),
            [AttemptReport::Failed {
                retry_at_ms: Some(_),
                ..
            }]
        ),
        "{second:?}"
    );
    let t1 = crate::Clock::now_ms(w.clock.as_ref());
    let job = &w.scm.jobs(None, 10).await.unwrap()[0];
    assert!(
        (t1 + 30_000..=t1 + 60_000).contains(&job.due_ms),
        "doubled: {}",
        job.due_ms - t1
    );
    w.clock.advance(time::Duration::seconds(60));
    assert_eq!(
        runner.run_due(&w.handler()).await.unwrap(),
        vec![AttemptReport::Done]
    );
    let job = &w.scm.jobs(None, 10).await.unwrap()[0];
    assert_eq!((job.state, job.attempts), (JobState::Done, 3));
    assert_eq!(flaky.deliveries(), 3);
    let history = w.scm.push_history(&w.admin, &id).await.unwrap();
    assert_eq!(history.len(), 1, "one successful push");
    assert_eq!(
        w.store.push_history(&id, 10, false).await.unwrap().len(),
        3,
        "three attempts"
    );
    w.clock.advance(time::Duration::hours(5));
    assert!(
        runner.run_due(&w.handler()).await.unwrap().is_empty(),
        "done exactly once"
    );
}

/// A worker that dies holding a job (here: one that claimed it and never came back) loses it
/// when its lease expires on the database's clock (not on a worker's), and another worker does
/// it.
#[tokio::test]
async fn a_job_of_a_dead_worker_is_done_by_another_after_its_lease() {
    let target = ScriptedDeployer::failing(Vec::new());
    let w = world_with(
        vec![("t", PushService::Elb, Some("r1"), target.clone())],
        Vec::new(),
    )
    .await;
    let id = issued(&w, "lease.test").await;
    // Queue a push without running it: the API's run-now path is the one that died.
    let job = scm_store::NewJob {
        kind: "deliver".into(),
        payload: serde_json::json!({"certificate_id": id.to_string(), "account": w.admin.account.to_string(),
            "service": "ELB", "region": "r1", "target": "t"}).to_string(),
        dedupe_key: None,
        due_ms: crate::Clock::now_ms(w.clock.as_ref()),
        max_attempts: 5,
        created_ms: 0,
    };
    let job_id = w.store.enqueue(&job).await.unwrap();
    let dead = w
        .store
        .claim(
            "dead-worker",
            crate::Clock::now_ms(w.clock.as_ref()),
            60_000,
            10,
        )
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    let runner = w.scm.job_runner().clone();
    assert!(
        runner.run_due(&w.handler()).await.unwrap().is_empty(),
        "leased by the dead worker"
    );
    w.clock.advance(time::Duration::hours(1));
    assert!(
        runner.run_due(&w.handler()).await.unwrap().is_empty(),
        "a worker whose clock runs ahead does not end another's lease"
    );
    // Its last renewal was a short one (250 ms of real time), and none follows.
    let lease = dead[0].lease().unwrap();
    assert!(w.store.renew_lease(&lease, 250).await.unwrap());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let reports = loop {
        let reports = runner.run_due(&w.handler()).await.unwrap();
        if !reports.is_empty() {
            break reports;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the dead worker's lease never expired: {:?}",
            w.store.job(job_id).await
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(reports, vec![AttemptReport::Done]);
    let done = w.store.job(job_id).await.unwrap().unwrap();
    assert_eq!((done.state, done.attempts), (JobState::Done, 2));
    assert_eq!(target.deliveries(), 1);
    assert_eq!(w.scm.push_history(&w.admin, &id).await.unwrap().len(), 1);
}

/// A push given up tells the account: a notify job is queued with the failure, and sent.
#[tokio::test]
async fn a_push_given_up_is_notified() {
    let notifier = Arc::new(RecordingNotifier::default());
    let refusing = ScriptedDeployer::failing(vec![Err(DeliveryError::misconfigured(
        "\"/usr/sbin/nginx\" could not start (not found)",
    ))]);
    let w = world_with(
        vec![("web", PushService::Elb, Some("r1"), refusing)],
        vec![("ops-hook", notifier.clone())],
    )
    .await;
    let id = issued(&w, "notify.test").await;
    let failed = w
        .scm
        .push(&w.admin, &id, PushService::Elb, Some("r1".into()))
        .await;
    assert!(matches!(failed, Err(DomainError::PushFailed(_))));
    let reports = w.scm.job_runner().run_due(&w.handler()).await.unwrap();
    assert_eq!(
        reports,
        vec![AttemptReport::Done],
        "the notification went out"
    );
    let got = notifier.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].account, w.admin.account.to_string());
    let cert = w.scm.certificate(&w.admin, &id).await.unwrap();
    match &got[0].event {
        Event::PushFailed {
            certificate_id,
            name,
            targets,
            error,
            attempts,
            ..
        } => {
            assert_eq!(certificate_id, id.as_str());
            assert_eq!(name, &cert.name);
            assert_eq!(targets, &vec!["web".to_string()]);
            assert!(error.contains("could not start"), "{error}");
            assert_eq!(*attempts, 1);
        }
        other => panic!("not a push failure: {other:?}"),
    }
}

#[tokio::test]
async fn accounts_are_isolated_and_policy_is_enforced() {
    let w = world().await;
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
    // Another account's certificate is not found, exactly as an id never issued: also while
    // it is in the owner's cache.
    w.scm.certificate(&w.admin, &id).await.unwrap();
    assert!(matches!(
        w.scm.certificate(&intruder, &id).await,
        Err(DomainError::CertificateNotFound)
    ));
    assert!(matches!(
        w.scm
            .apply(
                &intruder,
                &id,
                Some(&apply_body("a.test", "")),
                ApiVersion::V3
            )
            .await,
        Err(DomainError::CertificateNotFound)
    ));
    assert!(matches!(
        w.scm.export(&intruder, &id).await,
        Err(DomainError::CertificateNotFound)
    ));
    assert!(matches!(
        w.scm.push_history(&intruder, &id).await,
        Err(DomainError::CertificateNotFound)
    ));
    assert!(matches!(
        w.scm
            .project_scope(&intruder, w.admin.project.as_str())
            .await,
        Err(DomainError::OtherTenant)
    ));
    assert!(matches!(
        w.scm
            .certificate(
                &w.admin,
                &CertificateId::try_from("scs0000000000000").unwrap()
            )
            .await,
        Err(DomainError::CertificateNotFound)
    ));
    let outside = w
        .scm
        .apply(
            &w.admin,
            &id,
            Some(&apply_body("www.example.com", "")),
            ApiVersion::V3,
        )
        .await;
    // A name outside the policy is not refused: it waits for proof of control.
    outside.unwrap();
    let waiting = w.scm.certificate(&w.admin, &id).await.unwrap();
    assert_eq!(waiting.status, CertificateStatus::CheckingDomain);
    let proofs = w.scm.proofs(&waiting).await.unwrap();
    assert_eq!(proofs.len(), 1, "{proofs:?}");
    assert_eq!(proofs[0].record_name, "_dnsauth.www.example.com");
    assert_eq!(proofs[0].record_type, "TXT");
    // Another application while one is pending is refused and changes nothing.
    assert!(matches!(
        w.scm
            .apply(
                &w.admin,
                &id,
                Some(&apply_body("www.example.com", "")),
                ApiVersion::V3
            )
            .await,
        Err(DomainError::WrongStatus(CertificateStatus::CheckingDomain))
    ));
    w.scm.cancel_application(&w.admin, &id).await.unwrap();
    let back = w.scm.certificate(&w.admin, &id).await.unwrap();
    assert_eq!(back.status, CertificateStatus::Paid, "withdrawn");
    // The value is stable for the account and name: a record left in place proves it later.
    assert!(
        w.scm.proofs(&back).await.unwrap().is_empty(),
        "nothing pending"
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
            ApiVersion::V3,
        )
        .await
        .unwrap();
    assert!(
        w.scm
            .set_policy(&DomainId::from_random([1; 16]), "x.test")
            .await
            .map(|b| !b)
            .unwrap()
    );
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
    let w = world().await;
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
}

#[tokio::test]
async fn raw_database_holds_no_private_key_text() {
    let w = world().await;
    for alg in ["EC_P256", "RSA_2048"] {
        let id = buy(&w, "SINGLE_DOMAIN", 1).await;
        let mut body = apply_body(
            &format!("{}.test", alg.to_lowercase().replace('_', "-")),
            "",
        );
        body.key_algorithm = Some(alg.into());
        w.scm
            .apply(&w.admin, &id, Some(&body), ApiVersion::V3)
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
    for entry in std::fs::read_dir(w.dir.path()).unwrap() {
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
}

#[tokio::test]
async fn a_second_process_sees_revocations_and_new_pushes_within_a_poll() {
    let w = world().await;
    // A second service over the same database plays the admin CLI (or another server).
    let sup = crate::tasks::Supervisor::new();
    w.scm.start_background(&sup).await.unwrap();
    let url = DatabaseUrl::sqlite_file(&w.dir.path().join("t.db"));
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
    let cert_id = id.clone();
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
    assert!(sup.stop(std::time::Duration::from_secs(2)).await);
}

/// A push target that takes its time.
#[derive(Debug)]
struct SlowDeployer(std::time::Duration);

#[async_trait]
impl Deployer for SlowDeployer {
    async fn deliver(&self, _: &Material) -> Result<(), DeliveryError> {
        tokio::time::sleep(self.0).await;
        Ok(())
    }
}

/// Shutdown: an attempt that outlives the grace period is stopped and its job given back at
/// once, its attempt not counted, for another worker or the next start; the runner then takes
/// no new job.
#[tokio::test]
async fn drain_gives_back_jobs_that_outlive_the_grace_period() {
    let slow = Arc::new(SlowDeployer(std::time::Duration::from_secs(30)));
    let w = world_with(
        vec![("slow", PushService::Elb, Some("r1"), slow)],
        Vec::new(),
    )
    .await;
    let id = issued(&w, "drain.test").await;
    let scm = w.scm.clone();
    let admin = w.admin.clone();
    let push = tokio::spawn(async move {
        scm.push(&admin, &id, PushService::Elb, Some("r1".into()))
            .await
    });
    let runner = w.scm.job_runner().clone();
    // The push's job running (a busy machine may take seconds to get there: wait on that, not
    // for a number of polls, and say what there was if it never does).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while w.scm.jobs(Some(JobState::Running), 10).await.unwrap().len() != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the push's job never ran within 30 s: {:?}",
            w.scm.jobs(None, 10).await
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let released = runner.drain(std::time::Duration::from_millis(100)).await;
    assert_eq!(released, 1);
    let job = &w.scm.jobs(None, 10).await.unwrap()[0];
    assert_eq!(
        (job.state, job.attempts, job.lease_owner.as_deref()),
        (JobState::Pending, 0, None)
    );
    let answer = push.await.unwrap();
    assert!(
        matches!(answer, Err(DomainError::PushFailed(ref m)) if m.contains("retried")),
        "{answer:?}"
    );
    assert!(
        runner.run_due(&w.handler()).await.unwrap().is_empty(),
        "a drained runner claims nothing"
    );
}

/// Expiry: a certificate reads `EXPIRED` from `not_after` on (show, export, push refuse it as
/// current), before any background work; the reminder sweep sends `CERT_EXPIRING` once inside
/// the window and `CERT_EXPIRED` once after, only for the kinds not turned off, and stores the
/// status.
#[tokio::test]
async fn expiry_is_read_at_once_and_reminded_once_per_kind() {
    use scm_proto::notices::NoticeBody;

    let notifier = Arc::new(RecordingNotifier::default());
    let w = world_with(Vec::new(), vec![("ops-hook", notifier.clone())]).await;
    let a = issued(&w, "remind-a.test").await;
    let b = issued(&w, "remind-b.test").await;
    // b wants no CERT_EXPIRING; another account's certificate cannot be named.
    w.scm
        .set_notices(
            &w.admin,
            Some(&[NoticeBody {
                resource_id: Some(b.to_string()),
                notice_type: Some(vec!["CERT_EXPIRING".into()]),
            }]),
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        w.scm.disabled_notices(&w.admin, &b).await.unwrap(),
        vec!["CERT_EXPIRING".to_string()]
    );
    let (other, _) = w.scm.create_account("other").await.unwrap();
    let other = Principal {
        account: other.domain_id.clone(),
        ..w.admin.clone()
    };
    let refused = w
        .scm
        .set_notices(
            &other,
            Some(&[NoticeBody {
                resource_id: Some(a.to_string()),
                notice_type: None,
            }]),
            true,
        )
        .await;
    assert!(matches!(refused, Err(DomainError::CertificateNotFound)));

    let not_after = w
        .scm
        .certificate(&w.admin, &a)
        .await
        .unwrap()
        .issued
        .as_ref()
        .unwrap()
        .not_after_ms;
    // A sweep two hours on (the next run of the recurring job is due an hour after the last).
    let sweep = || async {
        w.clock.advance(time::Duration::hours(2));
        w.scm.schedule_reminders().await.unwrap();
        w.scm.job_runner().run_due(&w.handler()).await.unwrap();
        // The notify jobs the sweep queued.
        w.scm.job_runner().run_due(&w.handler()).await.unwrap();
    };
    sweep().await;
    assert!(
        notifier.got.lock().unwrap().is_empty(),
        "nothing is due a year ahead"
    );

    // 10 days before the end: CERT_EXPIRING for a only, once.
    w.clock
        .set(OffsetDateTime::from_unix_timestamp(not_after / 1000 - 10 * 86_400).unwrap());
    sweep().await;
    sweep().await;
    let names: Vec<&str> = notifier
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|n| n.event.name())
        .collect();
    assert_eq!(names, vec!["certificate_expiring"]);

    // Past the end: both read EXPIRED at once (no sweep yet), and are not exported or pushed.
    w.clock
        .set(OffsetDateTime::from_unix_timestamp(not_after / 1000 + 1).unwrap());
    let shown = w.scm.certificate(&w.admin, &a).await.unwrap();
    assert_eq!(shown.status, CertificateStatus::Expired);
    assert!(matches!(
        w.scm.export(&w.admin, &a).await,
        Err(DomainError::WrongStatus(CertificateStatus::Expired))
    ));
    let (page, total) = w
        .scm
        .list(
            &w.admin,
            &ListRequest {
                query: scm_store::ListQuery {
                    status: Some(CertificateStatus::Expired),
                    ..Default::default()
                },
                expired_days_since: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(total, 2);
    assert!(page.iter().all(|c| c.status == CertificateStatus::Expired));
    // The sweep: CERT_EXPIRED for both, once; the status is stored.
    sweep().await;
    sweep().await;
    let got = notifier.got.lock().unwrap().clone();
    let expired: Vec<&Notification> = got
        .iter()
        .filter(|n| n.event.name() == "certificate_expired")
        .collect();
    assert_eq!(expired.len(), 2, "{got:?}");
    for id in [&a, &b] {
        let stored = w.store.certificate(id).await.unwrap().unwrap();
        assert_eq!(stored.status, CertificateStatus::Expired);
    }
}

// --- import ---
/// An issued certificate exported and imported back: refused while the account holds it with
/// `duplicate_check`, then stored in `UPLOAD` with its key sealed (no key text in the database),
/// exported as it came, `EXPIRED` on read once `not_after` passes (no longer exported), never
/// unsubscribed; a refused import writes nothing.
#[tokio::test]
async fn imports_are_sealed_read_expired_after_not_after_and_refusals_write_nothing() {
    use scm_proto::import::ImportCertificateBody;

    let w = world().await;
    let source = issued(&w, "import-source.test").await;
    let e = w.scm.export(&w.admin, &source).await.unwrap();
    let key = e.private_key.clone().unwrap().to_string();
    let body = ImportCertificateBody {
        name: Some("re-imported".into()),
        certificate: Some(e.certificate.clone()),
        certificate_chain: Some(e.chain.clone()),
        private_key: Some(key.clone()),
        duplicate_check: Some(true),
        ..ImportCertificateBody::default()
    };
    let count = |w: &World| {
        let (scm, admin) = (w.scm.clone(), w.admin.clone());
        async move { scm.list(&admin, &ListRequest::default()).await.unwrap().1 }
    };
    assert!(matches!(
        w.scm.import_certificate(&w.admin, &body).await,
        Err(DomainError::InvalidParameter { field, reason })
            if field == "certificate" && reason.contains(source.as_str())
    ));
    let mut mismatched = body.clone();
    mismatched.duplicate_check = None;
    mismatched.private_key = Some(
        scm_pki::PrivateKey::generate(scm_pki::KeyAlgorithm::EcP256)
            .unwrap()
            .to_pem()
            .to_string(),
    );
    assert!(matches!(
        w.scm.import_certificate(&w.admin, &mismatched).await,
        Err(DomainError::ImportRefused {
            refusal: crate::ImportRefusal::KeyMismatch,
            ..
        })
    ));
    assert_eq!(count(&w).await, 1, "refusals wrote nothing");

    let mut copy = body.clone();
    copy.duplicate_check = Some(false);
    let id = w.scm.import_certificate(&w.admin, &copy).await.unwrap();
    assert_ne!(id, source);
    let c = w.scm.certificate(&w.admin, &id).await.unwrap();
    assert_eq!(c.status, CertificateStatus::Upload);
    assert!(c.is_imported() && c.is_pushable());
    let app = c.application.as_ref().unwrap();
    assert_eq!(app.domain, "import-source.test");
    let exported = w.scm.export(&w.admin, &id).await.unwrap();
    assert_eq!(
        (exported.certificate, exported.chain),
        (e.certificate.clone(), e.chain.clone())
    );
    assert_eq!(exported.private_key.unwrap().as_str(), key);
    let mut raw = Vec::new();
    for entry in std::fs::read_dir(w.dir.path()).unwrap() {
        raw.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(!String::from_utf8_lossy(&raw).contains("PRIVATE KEY"));

    let not_after = c.issued.as_ref().unwrap().not_after_ms;
    w.clock
        .set(OffsetDateTime::from_unix_timestamp(not_after / 1000 + 1).unwrap());
    let c = w.scm.certificate(&w.admin, &id).await.unwrap();
    assert_eq!(c.status, CertificateStatus::Expired);
    assert!(matches!(
        w.scm.export(&w.admin, &id).await,
        Err(DomainError::WrongStatus(CertificateStatus::Expired))
    ));
    assert!(matches!(
        w.scm.unsubscribe_certificate(&w.admin, &id).await,
        Err(DomainError::WrongStatus(CertificateStatus::Expired))
    ));
    w.scm.delete_certificate(&w.admin, &id).await.unwrap();
}

/// A CA made with rcgen for the import tests: its certificate and the key it signs with.
struct TestCa {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    pem: String,
}

impl TestCa {
    fn params(cn: &str) -> rcgen::CertificateParams {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p
    }

    fn root(cn: &str) -> Self {
        let params = Self::params(cn);
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Self { params, key, pem }
    }

    fn sub(cn: &str, parent: &TestCa) -> Self {
        let params = Self::params(cn);
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let pem = params.signed_by(&key, &parent.issuer()).unwrap().pem();
        Self { params, key, pem }
    }

    fn issuer(&self) -> rcgen::Issuer<'_, &rcgen::KeyPair> {
        rcgen::Issuer::from_params(&self.params, &self.key)
    }

    /// A leaf for `name` valid from `from` for 90 days, changed by `change`; with its key.
    fn leaf(
        &self,
        name: &str,
        from: OffsetDateTime,
        change: impl FnOnce(&mut rcgen::CertificateParams),
    ) -> (String, String) {
        let mut p = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(rcgen::DnType::CommonName, name);
        p.not_before = from;
        p.not_after = from + time::Duration::days(90);
        change(&mut p);
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        (
            p.signed_by(&key, &self.issuer()).unwrap().pem(),
            key.serialize_pem(),
        )
    }
}

/// ImportCertificate verifies the chain by its signatures at the domain's clock, records whether
/// it reaches a trusted root, and shows a brand only for a trusted chain: a chain that reaches a
/// root of the configured trust store is trusted and shows its issuer's brand; an impostor
/// intermediate named like a brand's, under a root nobody trusts, is imported untrusted with no
/// brand; a chain whose intermediate has the right name and another key, a loop, a CA leaf, an
/// unknown critical extension and a leaf not valid yet are refused (the kind that becomes
/// `SCM.0079` / `SCM.0006` at the API), naming the certificate at fault, and write nothing.
#[tokio::test]
async fn imported_chains_are_verified_by_signature_and_their_trust_recorded() {
    use scm_proto::import::ImportCertificateBody;

    use crate::service::import::{BUILTIN_CA_SOURCE, imported_brand};
    use crate::{Clock as _, ImportRefusal};

    let w = world().await;
    let root = TestCa::root("GlobalSign Test Root");
    let inter = TestCa::sub("GlobalSign Test Intermediate", &root);
    let mut trust = scm_pki::TrustAnchors::new();
    assert_eq!(trust.add_pem(&root.pem, "test trust store"), (1, 0));
    let config = CoreConfig {
        import_trust: Arc::new(trust),
        ..CoreConfig::default()
    };
    let scm = Scm::open(w.store.clone(), w.clock.clone(), w.master.clone(), config)
        .await
        .unwrap();
    let now = w.clock.now();
    let yesterday = now - time::Duration::days(1);
    let body = |name: &str, (cert, key): &(String, String), chain: &str| ImportCertificateBody {
        name: Some(name.into()),
        certificate: Some(cert.clone()),
        certificate_chain: Some(chain.into()),
        private_key: Some(key.clone()),
        ..ImportCertificateBody::default()
    };
    let imported = |id: CertificateId| {
        let (store, account) = (w.store.clone(), w.admin.account.clone());
        async move { store.certificate_of(&account, &id).await.unwrap().unwrap() }
    };

    // Up to a root of the trust store: trusted, the brand read from the verified issuer.
    let good = inter.leaf("good.import.test", yesterday, |_| {});
    let id = scm
        .import_certificate(&w.admin, &body("trusted", &good, &inter.pem))
        .await
        .unwrap();
    let c = imported(id).await;
    let t = c.chain_trust.clone().unwrap();
    assert!(t.trusted, "{}", t.note);
    assert_eq!(
        t.note,
        "the chain reaches \"CN=GlobalSign Test Root\", which the server trusts (test trust store)"
    );
    assert_eq!(imported_brand(&c), Some(scm_proto::Brand::GlobalSign));

    // An impostor: an intermediate named like the brand's, under a root nobody trusts. It
    // imports (a private CA is no refusal), untrusted, and its issuer's name makes no brand.
    let evil_root = TestCa::root("Evil Root");
    let impostor = TestCa::sub("GlobalSign Test Intermediate", &evil_root);
    let fake = impostor.leaf("fake.import.test", yesterday, |_| {});
    let chain = format!("{}{}", impostor.pem, evil_root.pem);
    let id = scm
        .import_certificate(&w.admin, &body("impostor", &fake, &chain))
        .await
        .unwrap();
    let c = imported(id).await;
    assert_eq!(c.issuer.as_deref(), Some("CN=GlobalSign Test Intermediate"));
    let t = c.chain_trust.clone().unwrap();
    assert!(!t.trusted);
    assert!(
        t.note.contains("self-signed root \"CN=Evil Root\""),
        "{}",
        t.note
    );
    assert_eq!(
        imported_brand(&c),
        None,
        "no brand from an unverified issuer name"
    );

    // Refusals: each names the certificate at fault; nothing is written.
    let before = scm.list(&w.admin, &ListRequest::default()).await.unwrap().1;
    let refused = |b: ImportCertificateBody| {
        let (scm, admin) = (&scm, w.admin.clone());
        async move {
            match scm.import_certificate(&admin, &b).await {
                Err(DomainError::ImportRefused { refusal, reason }) => (refusal, reason),
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
    };
    // The real intermediate's leaf, given with the impostor (the right name, another key).
    let (kind, why) = refused(body("wrong-key", &good, &chain)).await;
    assert_eq!(kind, ImportRefusal::ChainUnverified);
    assert!(
        why.contains("the leaf \"CN=good.import.test\"")
            && why.contains("chain certificate 1 \"CN=GlobalSign Test Intermediate\""),
        "{why}"
    );
    // A → B → A.
    let (a_key, b_key) = (
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
    );
    let (a, b) = (TestCa::params("Loop A"), TestCa::params("Loop B"));
    let a_by_b = a
        .signed_by(&a_key, &rcgen::Issuer::from_params(&b, &b_key))
        .unwrap()
        .pem();
    let b_by_a = b
        .signed_by(&b_key, &rcgen::Issuer::from_params(&a, &a_key))
        .unwrap()
        .pem();
    let a_ca = TestCa {
        params: a,
        key: a_key,
        pem: a_by_b.clone(),
    };
    let looped = a_ca.leaf("loop.import.test", yesterday, |_| {});
    let (kind, why) = refused(body(
        "loop",
        &looped,
        &format!("{a_by_b}{b_by_a}{}", a_ca.pem),
    ))
    .await;
    assert_eq!(kind, ImportRefusal::ChainUnverified);
    assert!(why.contains("loops"), "{why}");
    // A CA leaf, an unknown critical extension, a leaf valid from tomorrow.
    let ca_leaf = inter.leaf("ca.import.test", yesterday, |p| {
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    });
    let ext_leaf = inter.leaf("ext.import.test", yesterday, |p| {
        let mut ext =
            rcgen::CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 55555, 1], vec![5, 0]);
        ext.set_criticality(true);
        p.custom_extensions.push(ext);
    });
    let later = inter.leaf("later.import.test", now + time::Duration::days(1), |_| {});
    for (leaf, says) in [
        (&ca_leaf, "CA:TRUE"),
        (&ext_leaf, "1.3.6.1.4.1.55555.1"),
        (&later, "is not valid before 2026-11-24 12:00:00"),
    ] {
        let (kind, why) = refused(body("refused", leaf, &inter.pem)).await;
        assert_eq!(kind, ImportRefusal::CertificateRefused, "{why}");
        assert!(
            why.contains("the leaf \"CN=") && why.contains(says),
            "{why}"
        );
    }
    assert_eq!(
        scm.list(&w.admin, &ListRequest::default()).await.unwrap().1,
        before,
        "refusals wrote nothing"
    );
    // "Now" is the domain's clock: the same leaf imports once it is valid.
    w.clock.advance(time::Duration::days(2));
    scm.import_certificate(&w.admin, &body("later", &later, &inter.pem))
        .await
        .unwrap();

    // A certificate of the built-in CA, imported back with its chain: trusted through the CA's
    // own root, which every server trusts.
    let source = issued(&w, "builtin.import.test").await;
    let e = w.scm.export(&w.admin, &source).await.unwrap();
    let own = (e.certificate, e.private_key.unwrap().to_string());
    let id = scm
        .import_certificate(&w.admin, &body("builtin", &own, &e.chain))
        .await
        .unwrap();
    let t = imported(id).await.chain_trust.unwrap();
    assert!(
        t.trusted && t.note.contains(BUILTIN_CA_SOURCE),
        "{}",
        t.note
    );
}

// --- console ---
#[tokio::test]
async fn console_sessions_sign_in_out_and_are_no_api_tokens() {
    use crate::service::console::{MAX_FAILURES, SignInError, SignInLimiter};
    let w = world().await;
    let limiter = SignInLimiter::new();
    let ak = w.admin.access_key.as_str().to_owned();
    let wrong = SecretKey::new("not-the-secret".into());
    let refused = w
        .scm
        .console_sign_in(&limiter, &ak, &wrong, "10.0.0.1")
        .await;
    assert!(matches!(refused, Err(SignInError::Refused)));
    let unknown = w
        .scm
        .console_sign_in(&limiter, "NOSUCHKEY", &w.admin_secret, "10.0.0.1")
        .await;
    assert!(matches!(unknown, Err(SignInError::Refused)));

    let s = w
        .scm
        .console_sign_in(&limiter, &ak, &w.admin_secret, "10.0.0.1")
        .await
        .unwrap();
    assert_eq!(s.principal.account, w.admin.account);
    assert_eq!(
        s.expires_ms,
        crate::Clock::now_ms(w.clock.as_ref())
            + crate::service::console::SESSION_TTL.whole_milliseconds() as i64
    );
    assert_eq!(
        w.scm.console_session(&s.token).await.unwrap().account,
        w.admin.account
    );
    // The cookie is no API token.
    let headers = [("x-auth-token", s.token.as_str())];
    let req = scm_sign::Request {
        method: "GET",
        raw_path: "/v3/scm/certificates",
        raw_query: None,
        headers: &headers,
        body: &[],
    };
    assert!(matches!(
        w.scm.authenticate(&req).await,
        Err(DomainError::Unauthenticated(AuthFailure::BadToken))
    ));
    // It ends at its expiry, and at sign-out.
    w.clock.advance(time::Duration::hours(8));
    assert!(w.scm.console_session(&s.token).await.is_err());
    let s = w
        .scm
        .console_sign_in(&limiter, &ak, &w.admin_secret, "10.0.0.1")
        .await
        .unwrap();
    w.scm.console_sign_out(&s.token).await.unwrap();
    assert!(matches!(
        w.scm.console_session(&s.token).await,
        Err(DomainError::Unauthenticated(AuthFailure::BadToken))
    ));

    // Past the failures of a key from one address even its right secret is refused there...
    for _ in 0..MAX_FAILURES {
        let _ = w
            .scm
            .console_sign_in(&limiter, &ak, &wrong, "10.0.0.2")
            .await;
    }
    assert!(matches!(
        w.scm
            .console_sign_in(&limiter, &ak, &w.admin_secret, "10.0.0.2")
            .await,
        Err(SignInError::Refused)
    ));
    // ...but the owner elsewhere is not locked out by them.
    assert!(
        w.scm
            .console_sign_in(&limiter, &ak, &w.admin_secret, "10.0.0.3")
            .await
            .is_ok()
    );
    w.clock.advance(time::Duration::minutes(15));
    assert!(
        w.scm
            .console_sign_in(&limiter, &ak, &w.admin_secret, "10.0.0.2")
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn console_timeline_buckets_expiries_by_week_from_today() {
    use crate::service::console::WEEK_MS;
    let w = world().await;
    let a = issued(&w, "a.test").await;
    let b = issued(&w, "b.test").await;
    // Issued 2026-11-23 12:00 for 365 days: they expire 2027-11-23 12:00. Seen from
    // 2027-10-01 09:30 the weeks start 2027-10-01 00:00, and 53 days 12 hours later is week 7.
    w.clock.set(datetime!(2027-10-01 09:30 UTC));
    let timeline = w.scm.expiry_timeline(&w.admin).await.unwrap();
    // 13 months at least, one week per bar (the latest expiry is 8 weeks away).
    assert_eq!(timeline.weeks_per_bar, 1);
    let weeks = timeline.bars;
    assert_eq!(weeks.len(), 57);
    let start = crate::clock::unix_ms(datetime!(2027-10-01 00:00 UTC));
    assert_eq!(weeks[0].from_ms, start);
    assert!(weeks.iter().all(|wk| wk.before_ms - wk.from_ms == WEEK_MS));
    let counts: Vec<u64> = weeks.iter().map(|wk| wk.count).collect();
    let mut want = vec![0; 57];
    want[7] = 2;
    assert_eq!(counts, want);
    // The list op filtered by that week's window holds exactly those two.
    let (page, total) = w
        .scm
        .list(
            &w.admin,
            &ListRequest {
                query: scm_store::ListQuery {
                    expires_within: Some((weeks[7].from_ms, weeks[7].before_ms)),
                    ..Default::default()
                },
                expired_days_since: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(total, 2);
    let mut ids: Vec<_> = page.into_iter().map(|c| c.id).collect();
    ids.sort();
    let mut want_ids = vec![a, b];
    want_ids.sort();
    assert_eq!(ids, want_ids);
    // A year on, they are past: not in the timeline.
    w.clock.set(datetime!(2028-01-01 00:00 UTC));
    let weeks = w.scm.expiry_timeline(&w.admin).await.unwrap().bars;
    assert!(weeks.iter().all(|wk| wk.count == 0));
}

#[tokio::test]
async fn housekeeping_deletes_audit_events_only_past_a_set_retention() {
    use scm_store::{AuditEvent, AuditQuery};

    // The world's service keeps audit events for ever (the default).
    let w = world().await;
    let event = |op: &str| AuditEvent {
        at_ms: 0,
        account: Some(w.admin.account.clone()),
        credential: Some(w.admin.access_key.clone()),
        operation: op.into(),
        targets: Vec::new(),
        outcome: "ok".into(),
        status: 200,
        request_id: "0".repeat(32),
        source: "127.0.0.1".into(),
    };
    let kept = &w.scm;
    kept.audit(event("DeleteCsr")).await.unwrap();
    w.clock.advance(time::Duration::days(40));
    kept.audit(event("ExportCertificate")).await.unwrap();
    let ops = |events: Vec<AuditEvent>| -> Vec<String> {
        events.into_iter().map(|e| e.operation).collect()
    };
    let all = AuditQuery {
        limit: 10,
        ..AuditQuery::default()
    };
    // No retention set: nothing goes, however old.
    kept.housekeeping().await;
    assert_eq!(ops(kept.audit_events(&all).await.unwrap()).len(), 2);
    // 30 days: the 40-day-old event goes, the new one stays.
    let config = CoreConfig {
        audit_retention: Some(std::time::Duration::from_secs(30 * 86_400)),
        ..CoreConfig::default()
    };
    let pruning = Scm::open(w.store.clone(), w.clock.clone(), w.master.clone(), config)
        .await
        .unwrap();
    pruning.housekeeping().await;
    assert_eq!(
        ops(pruning.audit_events(&all).await.unwrap()),
        ["ExportCertificate"]
    );
}

// --- the API's last divergences (trust round 3) ---

/// Tags given at buy are the certificates' tags: every tag operation sees them
/// (ListTagsByCertificate, ListAllTags, ListCertificatesByTag), as tags added later are.
#[tokio::test]
async fn tags_given_at_buy_are_seen_by_every_tag_operation() {
    use scm_proto::tags::{KeyValues, ListByTagBody};

    let w = world().await;
    let body: PurchaseBody = serde_json::from_value(serde_json::json!({
        "cert_brand": "GLOBALSIGN", "cert_type": "DV_SSL_CERT", "domain_type": "SINGLE_DOMAIN",
        "effective_time": 1, "domain_numbers": 1, "order_number": 2, "agree_privacy_protection": true,
        "tags": [{"key": "env", "value": "prod"}, {"key": "团队", "value": "a/b"}]
    }))
    .unwrap();
    let (_, ids) = w
        .scm
        .purchase(&w.admin, &w.admin.project, &body, ApiVersion::V3)
        .await
        .unwrap();
    let untagged = buy(&w, "SINGLE_DOMAIN", 1).await;
    for id in &ids {
        let tags: Vec<(String, String)> = w
            .scm
            .certificate_tags(&w.admin, id)
            .await
            .unwrap()
            .into_iter()
            .map(|t| (t.key, t.value))
            .collect();
        assert_eq!(
            tags,
            [
                ("env".to_owned(), "prod".to_owned()),
                ("团队".to_owned(), "a/b".to_owned())
            ]
        );
    }
    let all = w.scm.all_tags(&w.admin).await.unwrap();
    assert_eq!(
        all,
        [
            KeyValues {
                key: Some("env".into()),
                values: Some(vec!["prod".into()]),
            },
            KeyValues {
                key: Some("团队".into()),
                values: Some(vec!["a/b".into()]),
            },
        ]
    );
    let query = |body: serde_json::Value| {
        let body: ListByTagBody = serde_json::from_value(body).unwrap();
        crate::service::tag_query::TagQuery::parse(&body).unwrap()
    };
    let found = w
        .scm
        .certificates_by_tag(
            &w.admin,
            &query(serde_json::json!({"action": "filter", "tags": [{"key": "env", "values": ["prod"]}]})),
        )
        .await
        .unwrap();
    let mut got: Vec<CertificateId> = found
        .items
        .iter()
        .map(|i| i.certificate.id.clone())
        .collect();
    got.sort();
    assert_eq!((found.total, got), (2, ids.clone()));
    let bare = w
        .scm
        .certificates_by_tag(
            &w.admin,
            &query(serde_json::json!({"action": "filter", "without_any_tag": true})),
        )
        .await
        .unwrap();
    assert_eq!(bare.total, 1);
    assert_eq!(bare.items[0].certificate.id, untagged);
    // They are the certificates' own: a batch delete removes them like any tag.
    w.scm
        .batch_tags(
            &w.admin,
            &ids[0],
            &serde_json::from_value(
                serde_json::json!({"action": "delete", "tags": [{"key": "env"}]}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        w.scm
            .certificate_tags(&w.admin, &ids[0])
            .await
            .unwrap()
            .len(),
        1
    );
}

/// A certificate applied for with a CSR whose key OpenSCM holds (CreateCsr, or UploadCsr with
/// its key) gets that key: export answers it (the key ShowCsrPrivateKey answers), and the
/// certificate can be pushed. A CSR whose key only the applicant has still gets none.
#[tokio::test]
async fn a_certificate_from_a_csr_whose_key_is_held_has_that_key() {
    use scm_proto::csr::{CreateCsrBody, UploadCsrBody};

    use crate::DnsName;

    let ok = ScriptedDeployer::failing(Vec::new());
    let w = world_with(
        vec![("lb", PushService::Elb, Some("cn-north-4"), ok.clone())],
        Vec::new(),
    )
    .await;
    let csr = w
        .scm
        .create_csr(
            &w.admin,
            &CreateCsrBody {
                name: Some("held".into()),
                domain_name: Some("www.held.test".into()),
                sans: Some("api.held.test".into()),
                private_key_algo: Some("EC_P256".into()),
                usage: Some("PERSONAL".into()),
                ..CreateCsrBody::default()
            },
        )
        .await
        .unwrap();
    let held_key = w.scm.csr_private_key(&w.admin, &csr.id).await.unwrap();
    let id = buy(&w, "MULTI_DOMAIN", 2).await;
    let body = ApplicationBody {
        csr: Some(csr.csr_pem.clone()),
        ..apply_body("www.held.test", "api.held.test")
    };
    w.scm
        .apply(&w.admin, &id, Some(&body), ApiVersion::V3)
        .await
        .unwrap();
    let export = w.scm.export(&w.admin, &id).await.unwrap();
    assert_eq!(
        export.private_key.as_deref().map(String::as_str),
        Some(held_key.as_str()),
        "the key of the CSR OpenSCM made is the certificate's"
    );
    let info = scm_pki::parse_certificate_pem(&export.certificate).unwrap();
    let key = scm_pki::PrivateKey::from_pem(&held_key).unwrap();
    assert!(info.public_key_matches(&key));
    w.scm
        .push(&w.admin, &id, PushService::Elb, Some("cn-north-4".into()))
        .await
        .unwrap();
    assert_eq!(ok.deliveries(), 1);

    // Uploaded with its key: held too.
    let own = scm_pki::PrivateKey::generate(scm_pki::KeyAlgorithm::EcP256).unwrap();
    let names = [DnsName::parse("up.held.test").unwrap()];
    let pem = scm_pki::generate_csr(&own, &names, &scm_pki::SubjectFields::default()).unwrap();
    w.scm
        .upload_csr(
            &w.admin,
            &UploadCsrBody {
                name: Some("uploaded".into()),
                csr: Some(pem.clone()),
                private_key: Some(own.to_pem().as_str().to_owned()),
            },
        )
        .await
        .unwrap();
    let id = buy(&w, "SINGLE_DOMAIN", 1).await;
    let body = ApplicationBody {
        csr: Some(pem),
        ..apply_body("up.held.test", "")
    };
    w.scm
        .apply(&w.admin, &id, Some(&body), ApiVersion::V3)
        .await
        .unwrap();
    let export = w.scm.export(&w.admin, &id).await.unwrap();
    assert_eq!(
        export.private_key.as_deref().map(String::as_str),
        Some(own.to_pem().as_str())
    );

    // A CSR OpenSCM was never given the key of: no key, as before.
    let theirs = scm_pki::PrivateKey::generate(scm_pki::KeyAlgorithm::EcP256).unwrap();
    let names = [DnsName::parse("www.held.test").unwrap()];
    let pem = scm_pki::generate_csr(&theirs, &names, &scm_pki::SubjectFields::default()).unwrap();
    let id = buy(&w, "SINGLE_DOMAIN", 1).await;
    let body = ApplicationBody {
        csr: Some(pem),
        ..apply_body("www.held.test", "")
    };
    w.scm
        .apply(&w.admin, &id, Some(&body), ApiVersion::V3)
        .await
        .unwrap();
    assert!(
        w.scm
            .export(&w.admin, &id)
            .await
            .unwrap()
            .private_key
            .is_none()
    );
    // Another account's CSR of the same key is not this account's to use.
    let (account, project) = w.scm.create_account("other").await.unwrap();
    let other = Principal {
        account: account.domain_id,
        project: project.project_id,
        ..w.admin.clone()
    };
    let id = {
        let (_, ids) = w
            .scm
            .purchase(
                &other,
                &other.project,
                &buy_body("MULTI_DOMAIN", 2),
                ApiVersion::V3,
            )
            .await
            .unwrap();
        ids[0].clone()
    };
    let body = ApplicationBody {
        csr: Some(csr.csr_pem.clone()),
        ..apply_body("www.held.test", "api.held.test")
    };
    w.scm
        .apply(&other, &id, Some(&body), ApiVersion::V3)
        .await
        .unwrap();
    assert!(
        w.scm
            .export(&other, &id)
            .await
            .unwrap()
            .private_key
            .is_none()
    );
}

/// ListDeployedResources answers only for certificates that were issued or imported (a `PAID`
/// one is refused as a push of it is, `SCM.0010`, and the whole call with it), and a region is
/// in error while the last delivery of the certificate to one of its targets failed.
#[tokio::test]
async fn deployed_resources_refuse_unissued_certificates_and_flag_failed_deliveries() {
    use scm_proto::deploy::ListDeployedBody;

    let north = ScriptedDeployer::failing(Vec::new());
    // Takes the first push, refuses the second, takes the third.
    let east = ScriptedDeployer::failing(vec![
        Ok(()),
        Err(DeliveryError::permanent("test command failed")),
    ]);
    let never = ScriptedDeployer::failing(vec![Err(DeliveryError::permanent("refused"))]);
    let w = world_with(
        vec![
            ("lb-north", PushService::Elb, Some("cn-north-4"), north),
            ("lb-east", PushService::Elb, Some("cn-east-3"), east),
            ("waf-south", PushService::Waf, Some("cn-south-1"), never),
        ],
        Vec::new(),
    )
    .await;
    let id = issued(&w, "www.deployed.test").await;
    let paid = buy(&w, "SINGLE_DOMAIN", 1).await;
    let ask = |ids: &[&CertificateId]| ListDeployedBody {
        certificate_ids: Some(ids.iter().map(|i| i.to_string()).collect()),
        service_names: Some(vec!["ALL".into()]),
    };
    // A certificate never issued is deployed nowhere and cannot be: refused, with the call.
    for ids in [vec![&paid], vec![&id, &paid]] {
        let refused = w.scm.deployed_resources(&w.admin, &ask(&ids)).await;
        assert!(
            matches!(
                refused,
                Err(DomainError::WrongStatus(CertificateStatus::Paid))
            ),
            "{refused:?}"
        );
    }
    let push = |region: &'static str, service: PushService| {
        let (scm, admin, id) = (w.scm.clone(), w.admin.clone(), id.clone());
        async move { scm.push(&admin, &id, service, Some(region.into())).await }
    };
    push("cn-north-4", PushService::Elb).await.unwrap();
    push("cn-east-3", PushService::Elb).await.unwrap();
    assert!(push("cn-east-3", PushService::Elb).await.is_err());
    assert!(push("cn-south-1", PushService::Waf).await.is_err());
    // (region, is_error, resources) per service.
    let regions = |w: &World| {
        let (scm, admin, body) = (w.scm.clone(), w.admin.clone(), ask(&[&id]));
        async move {
            let placed = scm.deployed_resources(&admin, &body).await.unwrap();
            assert_eq!(placed.len(), 1);
            placed[0]
                .1
                .iter()
                .map(|(service, regions)| {
                    let rows: Vec<(String, bool, Vec<String>)> = regions
                        .iter()
                        .map(|(r, p)| {
                            (r.clone(), p.is_error, p.resources.iter().cloned().collect())
                        })
                        .collect();
                    ((*service).to_owned(), rows)
                })
                .collect::<Vec<_>>()
        }
    };
    let row = |r: &str, e: bool, names: &[&str]| {
        (
            r.to_owned(),
            e,
            names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        regions(&w).await,
        vec![
            ("CDN".to_owned(), vec![]),
            (
                "ELB".to_owned(),
                // lb-east took the certificate once, then refused it: still listed, in error.
                vec![
                    row("cn-east-3", true, &["lb-east"]),
                    row("cn-north-4", false, &["lb-north"]),
                ]
            ),
            // Never delivered, last delivery failed: the region is there, in error, empty.
            ("WAF".to_owned(), vec![row("cn-south-1", true, &[])]),
        ]
    );
    // A later delivery that works clears the error.
    push("cn-east-3", PushService::Elb).await.unwrap();
    let now = regions(&w).await;
    assert_eq!(now[1].1[0], row("cn-east-3", false, &["lb-east"]));
}

/// The v3 seed page's `domain_numbers` range is 1..100: a MULTI_DOMAIN certificate of one
/// domain is bought and issued for its primary domain alone. `wildcard_count` counts the
/// additional wildcard domains only, not a wildcard primary domain.
#[tokio::test]
async fn multi_domain_of_one_domain_and_wildcard_count_of_additional_names() {
    let w = world().await;
    let id = buy(&w, "MULTI_DOMAIN", 1).await;
    let refused = w
        .scm
        .apply(
            &w.admin,
            &id,
            Some(&apply_body("www.one.test", "api.one.test")),
            ApiVersion::V3,
        )
        .await;
    assert!(
        matches!(refused, Err(DomainError::DomainMismatch(_))),
        "{refused:?}"
    );
    w.scm
        .apply(
            &w.admin,
            &id,
            Some(&apply_body("www.one.test", "")),
            ApiVersion::V3,
        )
        .await
        .unwrap();
    let cert = w.scm.certificate(&w.admin, &id).await.unwrap();
    assert_eq!(cert.status, CertificateStatus::Issued);
    assert_eq!(crate::issuance::wildcard_count(&cert.product), 0);
    // v2 keeps its own page's MULTI_DOMAIN minimum, 2.
    let mut v2 = buy_body("MULTI_DOMAIN", 1);
    v2.cert_type = Some("OV_SSL_CERT".into());
    let refused = w
        .scm
        .purchase(&w.admin, &w.admin.project, &v2, ApiVersion::V2)
        .await;
    assert_eq!(crate::error::invalid_field(refused), "domain_numbers");

    let wild = buy(&w, "WILDCARD", 1).await;
    let cert = w.scm.certificate(&w.admin, &wild).await.unwrap();
    assert_eq!(
        crate::issuance::wildcard_count(&cert.product),
        0,
        "the one wildcard name is the primary domain"
    );
    let body: PurchaseBody = serde_json::from_value(serde_json::json!({
        "cert_brand": "GLOBALSIGN", "cert_type": "DV_SSL_CERT", "domain_type": "MULTI_DOMAIN",
        "effective_time": 1, "domain_numbers": 4, "order_number": 1, "agree_privacy_protection": true,
        "primary_domain_type": "WILDCARD_DOMAIN", "single_domain_number": 1, "wildcard_domain_number": 2
    }))
    .unwrap();
    let (_, ids) = w
        .scm
        .purchase(&w.admin, &w.admin.project, &body, ApiVersion::V3)
        .await
        .unwrap();
    let cert = w.scm.certificate(&w.admin, &ids[0]).await.unwrap();
    assert_eq!(crate::issuance::wildcard_count(&cert.product), 2);
}

/// v2 `save` takes what its page allows: the page's own example e-mail value
/// (`example.huawei.com`), an empty `applicant_name` (0..63 characters), and, for a DV
/// certificate, no company fields; what was saved is then issued by `complete`.
#[tokio::test]
async fn v2_save_takes_what_its_page_allows() {
    let w = world().await;
    let id = buy(&w, "SINGLE_DOMAIN", 1).await;
    let form: ApplicationBody = serde_json::from_value(serde_json::json!({
        "domain": "www.saved-dv.test", "country": "CN", "applicant_name": "",
        "applicant_phone": "13212345678", "applicant_email": "example.huawei.com",
        "contact_email": "example.huawei.com", "csr": "", "sans": "",
        "agree_privacy_protection": true
    }))
    .unwrap();
    w.scm.save_application(&w.admin, &id, &form).await.unwrap();
    let saved = w.scm.certificate(&w.admin, &id).await.unwrap();
    assert_eq!(saved.status, CertificateStatus::Paid);
    assert_eq!(
        saved.application.as_ref().map(|a| a.domain.as_str()),
        Some("www.saved-dv.test")
    );
    w.scm
        .apply(&w.admin, &id, None, ApiVersion::V2)
        .await
        .unwrap();
    let issued = w.scm.certificate(&w.admin, &id).await.unwrap();
    assert_eq!(issued.status, CertificateStatus::Issued);
    let info =
        scm_pki::parse_certificate_pem(&issued.issued.as_ref().unwrap().certificate_pem).unwrap();
    assert_eq!(info.dns_names, ["www.saved-dv.test"]);
    // An OV certificate still needs the company.
    let mut ov = buy_body("SINGLE_DOMAIN", 1);
    ov.cert_type = Some("OV_SSL_CERT".into());
    let (_, ids) = w
        .scm
        .purchase(&w.admin, &w.admin.project, &ov, ApiVersion::V2)
        .await
        .unwrap();
    let refused = w.scm.save_application(&w.admin, &ids[0], &form).await;
    assert_eq!(crate::error::invalid_field(refused), "company_name");
}

/// Certificate ids (`scs` + a millisecond time) do not run ahead of the clock: on a fixed
/// clock, a 1,000-certificate purchase takes the 1,000 milliseconds up to now. A second one
/// in the same instant would run 1,000 ms ahead: it waits for the clock instead (the fixed
/// clock moves on when waited for) until its ids are at most `MAX_ID_LEAD_MS` ahead. Two
/// processes on one database buying at once never share an id.
#[tokio::test]
async fn certificate_ids_stay_unique_without_running_ahead_of_the_clock() {
    use crate::Clock;
    use crate::service::MAX_ID_LEAD_MS;

    let w = world().await;
    let v2: PurchaseBody = serde_json::from_value(serde_json::json!({
        "cert_brand": "GLOBALSIGN", "cert_type": "OV_SSL_CERT", "domain_type": "SINGLE_DOMAIN",
        "effective_time": 1, "domain_numbers": 1, "order_number": 1000, "agree_privacy_protection": true
    }))
    .unwrap();
    let start = w.clock.now_ms();
    let millis = |ids: &[CertificateId]| -> Vec<i64> {
        ids.iter()
            .map(|i| i64::try_from(i.millis()).unwrap())
            .collect()
    };
    let (_, first) = w
        .scm
        .purchase(&w.admin, &w.admin.project, &v2, ApiVersion::V2)
        .await
        .unwrap();
    let first = millis(&first);
    assert_eq!(first.len(), 1000);
    assert_eq!(
        w.clock.now_ms(),
        start,
        "no wait: the milliseconds before now were free"
    );
    assert!(
        first.iter().all(|&ms| ms <= start),
        "ids ahead of the clock by up to {} ms",
        first.iter().max().unwrap() - start
    );
    assert_eq!(*first.last().unwrap(), start);
    assert!(first.windows(2).all(|p| p[1] == p[0] + 1));

    let (_, second) = w
        .scm
        .purchase(&w.admin, &w.admin.project, &v2, ApiVersion::V2)
        .await
        .unwrap();
    let second = millis(&second);
    let now = w.clock.now_ms();
    assert!(second[0] > *first.last().unwrap(), "ids are never reused");
    assert!(
        *second.last().unwrap() <= now + MAX_ID_LEAD_MS,
        "at most {MAX_ID_LEAD_MS} ms ahead: {} ms",
        second.last().unwrap() - now
    );
    assert!(
        now - start <= 1000,
        "waited {} ms for 1,000 ids",
        now - start
    );

    // Another process on the same database, with its own clock, buying at the same time.
    let url = DatabaseUrl::sqlite_file(&w.dir.path().join("t.db"));
    let other_store: Arc<dyn Store> = Arc::new(SqlStore::connect(&url).await.unwrap());
    let other_clock = Arc::new(FixedClock::new(w.clock.now()));
    let other = Arc::new(
        Scm::open(
            other_store,
            other_clock.clone(),
            w.master.clone(),
            CoreConfig::default(),
        )
        .await
        .unwrap(),
    );
    let mut v3 = buy_body("SINGLE_DOMAIN", 1);
    v3.order_number = Some(100);
    let mut tasks = Vec::new();
    for i in 0..6 {
        let scm = if i % 2 == 0 {
            w.scm.clone()
        } else {
            other.clone()
        };
        let (admin, body) = (w.admin.clone(), v3.clone());
        tasks.push(tokio::spawn(async move {
            scm.purchase(&admin, &admin.project, &body, ApiVersion::V3)
                .await
                .unwrap()
                .1
        }));
    }
    let mut all: std::collections::BTreeSet<i64> = first.iter().chain(&second).copied().collect();
    for t in tasks {
        for ms in millis(&t.await.unwrap()) {
            assert!(all.insert(ms), "id {ms} handed out twice");
        }
    }
    assert_eq!(all.len(), 2600);
    let latest = w.clock.now_ms().max(other_clock.now_ms());
    assert!(*all.last().unwrap() <= latest + MAX_ID_LEAD_MS);
}

/// The CRL stored for the admin account's CA, parsed.
async fn stored_crl(w: &World) -> Option<(scm_store::CrlRecord, scm_pki::CrlInfo)> {
    let file = format!(
        "{}.crl",
        w.scm.tenant_ca(&w.admin.account).await.unwrap().ca_id()
    );
    let crl = w.scm.crl(&file).await.unwrap()?;
    let info = scm_pki::parse_crl_der(&crl.der).unwrap();
    Some((crl, info))
}

/// Revocation on a fixed clock: the CRL exists from the start (number 1, empty), is re-signed
/// at once after a revocation (it then lists the serial) and when two thirds of its validity
/// have passed, its number always growing; what may not be revoked is refused with nothing
/// changed; a revoked certificate is not pushed.
#[tokio::test]
async fn revocation_refusals_and_the_crl_on_a_fixed_clock() {
    use crate::Clock;
    use crate::service::revocation::{CRL_REFRESH, CRL_VALIDITY};
    let ok = ScriptedDeployer::failing(Vec::new());
    let w = world_with(
        vec![("t-ok", PushService::Elb, Some("cn-north-4"), ok.clone())],
        Vec::new(),
    )
    .await;
    let start = w.clock.now_ms();
    assert!(stored_crl(&w).await.is_none(), "no CRL before its job ran");
    w.scm.schedule_crl().await.unwrap();
    let reports = w.scm.job_runner().run_due(&w.handler()).await.unwrap();
    assert_eq!(reports, vec![AttemptReport::Done]);
    let (crl, info) = stored_crl(&w).await.unwrap();
    assert_eq!((crl.number, info.number), (1, Some(1)));
    assert!(info.revoked_serials.is_empty());
    assert_eq!(
        crl.next_update_ms,
        start + CRL_VALIDITY.whole_milliseconds() as i64
    );
    assert_eq!(
        info.next_update.map(crate::clock::unix_ms),
        Some(crl.next_update_ms)
    );
    assert!(crl.this_update_ms < start, "backdated");
    // Scheduling again (another start) keeps the pending refresh.
    w.scm.schedule_crl().await.unwrap();
    assert!(
        w.scm
            .job_runner()
            .run_due(&w.handler())
            .await
            .unwrap()
            .is_empty()
    );

    let id = issued(&w, "revoke.test").await;
    let keep = issued(&w, "keep.test").await;
    let serial = w
        .scm
        .certificate(&w.admin, &id)
        .await
        .unwrap()
        .issued
        .clone()
        .unwrap()
        .serial_hex;
    // The leaf carries its CRL's URL under the public endpoint.
    let pem = w.scm.export(&w.admin, &id).await.unwrap().certificate;
    let der = scm_pki::parse_certificate_pem(&pem).unwrap().der;
    let url = format!(
        "https://scm.example.test:8443/crl/{}.crl",
        w.scm.tenant_ca(&w.admin.account).await.unwrap().ca_id()
    );
    assert!(
        der.windows(url.len()).any(|win| win == url.as_bytes()),
        "the leaf does not carry {url}"
    );

    // Refusals change nothing: a bad reason, another account, a status other than ISSUED.
    let bad = w.scm.revoke(&w.admin, &id, None).await;
    assert_eq!(crate::error::invalid_field(bad), "reason");
    let long = "x".repeat(64);
    let bad = w.scm.revoke(&w.admin, &id, Some(&long)).await;
    assert_eq!(crate::error::invalid_field(bad), "reason");
    // An account made in the store directly (as before each account had a CA): no CA, so no
    // CRL job of its own joins this test's.
    let other = scm_store::AccountRecord {
        domain_id: crate::random::domain_id().unwrap(),
        name: "other".into(),
        policy: String::new(),
        renew_remaining_permille: None,
        created_ms: 0,
    };
    let other_project = scm_store::ProjectRecord {
        project_id: crate::random::project_id().unwrap(),
        domain_id: other.domain_id.clone(),
        name: "default".into(),
        created_ms: 0,
    };
    w.store
        .create_account(&other, &other_project)
        .await
        .unwrap();
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
        w.scm.revoke(&intruder, &id, Some("mine")).await,
        Err(DomainError::CertificateNotFound)
    ));
    let paid = buy(&w, "SINGLE_DOMAIN", 1).await;
    assert!(matches!(
        w.scm.revoke(&w.admin, &paid, Some("x")).await,
        Err(DomainError::WrongStatus(CertificateStatus::Paid))
    ));
    let cert = w.scm.certificate(&w.admin, &id).await.unwrap();
    assert_eq!(cert.status, CertificateStatus::Issued);
    assert!(
        w.scm
            .job_runner()
            .run_due(&w.handler())
            .await
            .unwrap()
            .is_empty()
    );

    // The revocation: REVOKED at once, with its reason; the CRL is signed again at once.
    w.clock.advance(time::Duration::minutes(10));
    w.scm
        .revoke(&w.admin, &id, Some("keyCompromise"))
        .await
        .unwrap();
    let cert = w.scm.certificate(&w.admin, &id).await.unwrap();
    assert_eq!(cert.status, CertificateStatus::Revoked);
    assert_eq!(
        cert.revocation
            .as_ref()
            .map(|r| (r.revoked_ms, r.reason.as_str())),
        Some((w.clock.now_ms(), "keyCompromise"))
    );
    assert!(matches!(
        w.scm.revoke(&w.admin, &id, Some("again")).await,
        Err(DomainError::WrongStatus(CertificateStatus::Revoked))
    ));
    assert_eq!(
        w.scm.job_runner().run_due(&w.handler()).await.unwrap(),
        vec![AttemptReport::Done]
    );
    let (crl, info) = stored_crl(&w).await.unwrap();
    assert_eq!(crl.number, 2);
    assert_eq!(info.revoked_serials, vec![serial.clone()]);
    // A revoked certificate is not pushed, nor exported; the other one still is.
    assert!(matches!(
        w.scm
            .push(&w.admin, &id, PushService::Elb, Some("cn-north-4".into()))
            .await,
        Err(DomainError::WrongStatus(CertificateStatus::Revoked))
    ));
    assert!(matches!(
        w.scm.export(&w.admin, &id).await,
        Err(DomainError::WrongStatus(CertificateStatus::Revoked))
    ));
    w.scm
        .push(&w.admin, &keep, PushService::Elb, Some("cn-north-4".into()))
        .await
        .unwrap();
    assert_eq!(ok.deliveries(), 1);

    // Nothing is due until two thirds of the validity have passed; then the CRL is re-signed
    // (a new number, the serial still on it), before its nextUpdate.
    w.clock.advance(CRL_REFRESH - time::Duration::seconds(1));
    assert!(
        w.scm
            .job_runner()
            .run_due(&w.handler())
            .await
            .unwrap()
            .is_empty()
    );
    w.clock.advance(time::Duration::seconds(1));
    assert_eq!(
        w.scm.job_runner().run_due(&w.handler()).await.unwrap(),
        vec![AttemptReport::Done]
    );
    let (refreshed, info) = stored_crl(&w).await.unwrap();
    assert_eq!(refreshed.number, 3);
    assert!(refreshed.this_update_ms < crl.next_update_ms);
    assert_eq!(
        refreshed.next_update_ms,
        w.clock.now_ms() + CRL_VALIDITY.whole_milliseconds() as i64
    );
    assert_eq!(info.revoked_serials, vec![serial]);
    // Once the revoked certificate has expired, its serial leaves the CRL.
    let not_after = cert.issued.as_ref().unwrap().not_after_ms;
    w.clock.set(crate::clock::from_unix_ms(not_after + 1));
    assert_eq!(
        w.scm.job_runner().run_due(&w.handler()).await.unwrap(),
        vec![AttemptReport::Done]
    );
    let (last, info) = stored_crl(&w).await.unwrap();
    assert_eq!(last.number, 4);
    assert!(info.revoked_serials.is_empty());
}

// --- tenant ca ---

/// A new account and a principal of it.
async fn second_account(w: &World, name: &str) -> Principal {
    let (account, _) = w.scm.create_account(name).await.unwrap();
    let cred = w
        .scm
        .create_credential(&account.domain_id, None, "t")
        .await
        .unwrap();
    Principal {
        account: cred.domain_id,
        project: cred.project_id,
        access_key: cred.access_key,
        method: crate::AuthMethod::Signature,
    }
}

/// Buys and issues (key made by the server) a single-domain certificate for `domain` as `p`.
async fn issued_as(w: &World, p: &Principal, domain: &str) -> CertificateId {
    let (_, ids) = w
        .scm
        .purchase(p, &p.project, &buy_body("SINGLE_DOMAIN", 1), ApiVersion::V3)
        .await
        .unwrap();
    w.scm
        .apply(p, &ids[0], Some(&apply_body(domain, "")), ApiVersion::V3)
        .await
        .unwrap();
    ids[0].clone()
}

/// Whether the exported certificate `id` of `p` verifies (by signature, at the domain's clock)
/// up to one of `roots` (PEM): what a client trusting only those roots decides.
async fn verifies_against<R: AsRef<str>>(
    w: &World,
    p: &Principal,
    id: &CertificateId,
    roots: &[R],
) -> bool {
    use crate::Clock as _;
    let e = w.scm.export(p, id).await.unwrap();
    let mut anchors = scm_pki::TrustAnchors::new();
    for root in roots {
        assert_eq!(anchors.add_pem(root.as_ref(), "test").1, 0);
    }
    let key = e.private_key.unwrap();
    scm_pki::parse_import(
        &e.certificate,
        Some(&e.chain),
        &key,
        w.clock.now(),
        &anchors,
    )
    .unwrap()
    .trust
    .is_trusted()
}

/// Issue 19, point 15: two accounts get CAs of their own; both may be issued `www.shop.test`,
/// but A's trust store (A's root) refuses B's certificate, and B's refuses A's. Each revokes
/// onto its own CA's CRL; an import is trusted through the importer's own root only; the
/// serving CA is another CA again, and signs no CRL.
#[tokio::test]
async fn each_account_has_its_own_root_and_refuses_the_others_certificates() {
    let w = world().await;
    let a = w.admin.clone();
    let b = second_account(&w, "shop-b").await;
    let (ra, rb) = (
        w.scm.account_roots(&a.account).await.unwrap(),
        w.scm.account_roots(&b.account).await.unwrap(),
    );
    assert_ne!(ra.root_pem, rb.root_pem);
    assert_ne!(ra.ca_id, rb.ca_id);
    assert!(ra.retired_root_pems.is_empty() && rb.retired_root_pems.is_empty());
    let serving = w.scm.serving_ca().await.unwrap();
    assert!(serving.root_pem() != ra.root_pem && serving.root_pem() != rb.root_pem);

    let cert_a = issued_as(&w, &a, "www.shop.test").await;
    let cert_b = issued_as(&w, &b, "www.shop.test").await;
    assert!(verifies_against(&w, &a, &cert_a, &[&ra.root_pem]).await);
    assert!(verifies_against(&w, &b, &cert_b, &[&rb.root_pem]).await);
    assert!(
        !verifies_against(&w, &b, &cert_b, &[&ra.root_pem]).await,
        "A's trust store accepts B's www.shop.test"
    );
    assert!(!verifies_against(&w, &a, &cert_a, &[&rb.root_pem]).await);
    assert!(!verifies_against(&w, &a, &cert_a, &[serving.root_pem()]).await);
    let ca_of = |p: Principal, id: CertificateId| {
        let scm = w.scm.clone();
        async move {
            scm.certificate(&p, &id)
                .await
                .unwrap()
                .issued
                .clone()
                .unwrap()
                .ca_id
                .unwrap()
        }
    };
    assert_eq!(ca_of(a.clone(), cert_a.clone()).await, ra.ca_id);
    assert_eq!(ca_of(b.clone(), cert_b.clone()).await, rb.ca_id);

    // Revocation goes onto the issuing CA's CRL: B's serial is on B's, not on A's.
    w.scm.schedule_crl().await.unwrap();
    w.scm.job_runner().run_due(&w.handler()).await.unwrap();
    w.scm.revoke(&b, &cert_b, Some("superseded")).await.unwrap();
    w.scm.job_runner().run_due(&w.handler()).await.unwrap();
    let serial_b = w
        .scm
        .certificate(&b, &cert_b)
        .await
        .unwrap()
        .issued
        .clone()
        .unwrap()
        .serial_hex;
    let crl = |ca_id: String| {
        let scm = w.scm.clone();
        async move {
            let crl = scm.crl(&format!("{ca_id}.crl")).await.unwrap().unwrap();
            scm_pki::parse_crl_der(&crl.der).unwrap().revoked_serials
        }
    };
    assert_eq!(crl(rb.ca_id.clone()).await, vec![serial_b]);
    assert!(crl(ra.ca_id.clone()).await.is_empty());
    assert!(
        w.scm
            .crl(&format!("{}.crl", serving.ca_id()))
            .await
            .unwrap()
            .is_none(),
        "the serving CA revokes nothing and signs no CRL"
    );

    // A's certificate imported by B is not trusted (A's root is not B's); by A it is.
    use scm_proto::import::ImportCertificateBody;
    let e = w.scm.export(&a, &cert_a).await.unwrap();
    let body = |name: &str| -> ImportCertificateBody {
        serde_json::from_value(serde_json::json!({
            "name": name, "certificate": e.certificate, "certificate_chain": e.chain,
            "private_key": e.private_key.as_deref().map(|k| k.to_string()),
        }))
        .unwrap()
    };
    let by_b = w.scm.import_certificate(&b, &body("from-a")).await.unwrap();
    let by_a = w.scm.import_certificate(&a, &body("mine")).await.unwrap();
    let trust = |p: Principal, id: CertificateId| {
        let scm = w.scm.clone();
        async move {
            scm.certificate(&p, &id)
                .await
                .unwrap()
                .chain_trust
                .clone()
                .unwrap()
                .trusted
        }
    };
    assert!(!trust(b.clone(), by_b).await, "B trusts A's root");
    assert!(trust(a.clone(), by_a).await);
}

/// A store made before each account had a CA: the certificates of its one shared CA, revoked
/// or not, keep verifying against its root after the upgrade; new certificates chain to the
/// account's own new root (made on first use), never to the shared one, which issues nothing
/// new; its CRL is still signed (and lists revocations of its certificates) until its last
/// certificate expires; `ca-root.pem` (the bootstrap account's roots) holds both roots.
#[tokio::test]
async fn a_store_with_the_shared_ca_is_migrated_without_breaking_its_certificates() {
    use sqlx::Connection as _;

    use crate::Clock as _;
    use crate::application::ApplicationForm;
    use crate::issuance::{IssueRequest, Issuer as _};
    use crate::service::revocation::CRL_REFRESH;

    let w = world().await;
    // The shared CA, sealed as before 0015, and a certificate it issued (as the old server did).
    let now = w.clock.now();
    let generated = scm_pki::generate_ca("OpenSCM", now).unwrap();
    let shared = scm_store::CaRecord {
        root_cert_pem: generated.root_cert_pem.clone(),
        root_key_sealed: w
            .master
            .seal(generated.root_key.pkcs8_der(), b"ca:root")
            .unwrap(),
        intermediate_cert_pem: generated.intermediate_cert_pem.clone(),
        intermediate_key_sealed: w
            .master
            .seal(generated.intermediate_key.pkcs8_der(), b"ca:intermediate")
            .unwrap(),
        created_ms: w.clock.now_ms(),
    };
    let shared_id = scm_pki::Issuer::from_pem(
        &generated.intermediate_cert_pem,
        &generated.intermediate_key,
    )
    .unwrap()
    .key_id_hex();
    let (_, ids) = w
        .scm
        .purchase(
            &w.admin,
            &w.admin.project,
            &buy_body("SINGLE_DOMAIN", 1),
            ApiVersion::V3,
        )
        .await
        .unwrap();
    let old = ids[0].clone();
    let form =
        ApplicationForm::parse(&apply_body("old.shop.test", ""), ApiVersion::V3, false).unwrap();
    let key = scm_pki::PrivateKey::generate(scm_pki::KeyAlgorithm::EcP256).unwrap();
    let leaf = scm_pki::Issuer::from_pem(
        &generated.intermediate_cert_pem,
        &generated.intermediate_key,
    )
    .unwrap()
    .issue(&scm_pki::LeafRequest {
        dns_names: &form.names(),
        subject: scm_pki::SubjectFields::default(),
        not_before: now,
        not_after: now + time::Duration::days(30),
        public_key: scm_pki::LeafKey::Generated(&key),
    })
    .unwrap();
    let record = scm_store::IssuedRecord {
        certificate_pem: leaf.certificate_pem,
        chain_pem: generated.intermediate_cert_pem.clone(),
        private_key_sealed: Some(
            w.master
                .seal(key.pkcs8_der(), crate::issuance::key_aad(&old).as_bytes())
                .unwrap(),
        ),
        serial_hex: leaf.serial_hex.clone(),
        fingerprint: leaf.sha1_fingerprint_hex,
        signature_algorithm: leaf.signature_algorithm.into(),
        issued_ms: w.clock.now_ms(),
        not_before_ms: crate::clock::unix_ms(leaf.not_before),
        not_after_ms: crate::clock::unix_ms(leaf.not_after),
        ca_id: None,
    };
    assert!(
        w.store
            .mark_issued(
                &old,
                CertificateStatus::Paid,
                &form.to_record().unwrap(),
                &record,
                w.clock.now_ms()
            )
            .await
            .unwrap()
    );
    // The database as the previous release left it: the shared CA in `ca`, no `cas` rows.
    let db = w.dir.path().join("t.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("DELETE FROM cas")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO ca (id, root_cert_pem, root_key_sealed, intermediate_cert_pem, \
         intermediate_key_sealed, created_ms) VALUES ('builtin', $1, $2, $3, $4, $5)",
    )
    .bind(shared.root_cert_pem.as_str())
    .bind(shared.root_key_sealed.as_slice())
    .bind(shared.intermediate_cert_pem.as_str())
    .bind(shared.intermediate_key_sealed.as_slice())
    .bind(shared.created_ms)
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();

    // The upgraded server.
    let up = Arc::new(
        Scm::open(
            w.store.clone(),
            w.clock.clone(),
            w.master.clone(),
            CoreConfig {
                public_endpoint: Some(PUBLIC_ENDPOINT.into()),
                ..CoreConfig::default()
            },
        )
        .await
        .unwrap(),
    );
    let w = World { scm: up, ..w };
    let admin = w.admin.clone();
    let cert = w.scm.certificate(&admin, &old).await.unwrap();
    assert_eq!(
        cert.issued.as_ref().unwrap().ca_id.as_deref(),
        Some(shared_id.as_str())
    );
    assert!(verifies_against(&w, &admin, &old, &[&shared.root_cert_pem]).await);

    // New certificates: the account's own new root, not the shared one.
    let roots = w.scm.account_roots(&admin.account).await.unwrap();
    assert_ne!(roots.ca_id, shared_id);
    assert_eq!(roots.retired_root_pems, vec![shared.root_cert_pem.clone()]);
    let new = issued_as(&w, &admin, "new.shop.test").await;
    assert!(verifies_against(&w, &admin, &new, &[&roots.root_pem]).await);
    assert!(!verifies_against(&w, &admin, &new, &[&shared.root_cert_pem]).await);
    assert!(!verifies_against(&w, &admin, &old, &[&roots.root_pem]).await);
    // ca-root.pem: both roots, so the bootstrap account's old and new certificates verify.
    let bundle = w.scm.bootstrap_account_roots().await.unwrap().bundle();
    assert!(verifies_against(&w, &admin, &old, &[&bundle]).await);
    assert!(verifies_against(&w, &admin, &new, &[&bundle]).await);
    // The shared CA issues nothing new.
    let retired = w.scm.ca_by_id(&shared_id).await.unwrap().unwrap();
    assert!(retired.is_retired());
    let refused = retired
        .issue(IssueRequest {
            id: &new,
            form: &form,
            key: Some(&key),
            version: 1,
            now: w.clock.now(),
            validity: time::Duration::days(1),
        })
        .await;
    assert!(refused.is_err());

    // Its CRL is still signed, and lists a revocation of one of its certificates.
    w.scm.schedule_crl().await.unwrap();
    w.scm.job_runner().run_due(&w.handler()).await.unwrap();
    let shared_crl = format!("{shared_id}.crl");
    assert_eq!(w.scm.crl(&shared_crl).await.unwrap().unwrap().number, 1);
    w.scm
        .revoke(&admin, &old, Some("superseded"))
        .await
        .unwrap();
    w.scm.job_runner().run_due(&w.handler()).await.unwrap();
    let crl = w.scm.crl(&shared_crl).await.unwrap().unwrap();
    assert_eq!(crl.number, 2);
    assert_eq!(
        scm_pki::parse_crl_der(&crl.der).unwrap().revoked_serials,
        vec![leaf.serial_hex]
    );
    // Refreshed while its certificate is valid; once it has expired, left to lapse.
    w.clock.advance(CRL_REFRESH);
    w.scm.job_runner().run_due(&w.handler()).await.unwrap();
    assert_eq!(w.scm.crl(&shared_crl).await.unwrap().unwrap().number, 3);
    w.clock.advance(CRL_REFRESH * 6);
    w.scm.job_runner().run_due(&w.handler()).await.unwrap();
    w.clock.advance(CRL_REFRESH);
    w.scm.job_runner().run_due(&w.handler()).await.unwrap();
    let last = w.scm.crl(&shared_crl).await.unwrap().unwrap().number;
    w.clock.advance(CRL_REFRESH * 2);
    w.scm.job_runner().run_due(&w.handler()).await.unwrap();
    assert_eq!(
        w.scm.crl(&shared_crl).await.unwrap().unwrap().number,
        last,
        "not signed again after its last certificate expired"
    );
    // The account's own CA goes on.
    assert!(
        w.scm
            .crl(&format!("{}.crl", roots.ca_id))
            .await
            .unwrap()
            .unwrap()
            .number
            >= 2
    );
}

/// An account without a CA (made before each account had one) gets one on first use, and two
/// servers on one database asking at once get the same one: the store lets one CA in.
#[tokio::test]
async fn two_servers_make_one_ca_for_an_account_that_has_none() {
    let w = world().await;
    let account = scm_store::AccountRecord {
        domain_id: crate::random::domain_id().unwrap(),
        name: "older".into(),
        policy: crate::issuance::DEFAULT_POLICY.into(),
        renew_remaining_permille: None,
        created_ms: 0,
    };
    let project = scm_store::ProjectRecord {
        project_id: crate::random::project_id().unwrap(),
        domain_id: account.domain_id.clone(),
        name: "default".into(),
        created_ms: 0,
    };
    w.store.create_account(&account, &project).await.unwrap();
    let url = DatabaseUrl::sqlite_file(&w.dir.path().join("t.db"));
    let other_store: Arc<dyn Store> = Arc::new(SqlStore::connect(&url).await.unwrap());
    let other = Scm::open(
        other_store,
        w.clock.clone(),
        w.master.clone(),
        CoreConfig::default(),
    )
    .await
    .unwrap();
    let (mine, theirs) = tokio::join!(
        w.scm.tenant_ca(&account.domain_id),
        other.tenant_ca(&account.domain_id)
    );
    let (mine, theirs) = (mine.unwrap(), theirs.unwrap());
    assert_eq!(mine.ca_id(), theirs.ca_id());
    assert_eq!(mine.root_pem(), theirs.root_pem());
    let admin_root = w
        .scm
        .account_roots(&w.admin.account)
        .await
        .unwrap()
        .root_pem;
    assert_ne!(mine.root_pem(), admin_root);
    assert_eq!(
        w.store
            .cas_of_account(&account.domain_id)
            .await
            .unwrap()
            .len(),
        1
    );
}

// --- lifecycle: validation, versions, renewal ---

/// TXT records an in-process "DNS" holds (the domain's test adapter of the port; the real
/// resolver is tested against a real DNS server in scm-outbound and end to end).
#[derive(Default)]
struct TxtRecords(std::sync::Mutex<std::collections::HashMap<String, Vec<String>>>);

impl TxtRecords {
    fn set(&self, name: &str, value: &str) {
        self.0
            .lock()
            .unwrap()
            .entry(name.to_owned())
            .or_default()
            .push(value.to_owned());
    }
}

#[async_trait::async_trait]
impl crate::lifecycle::probes::TxtLookup for TxtRecords {
    async fn txt(&self, name: &str) -> Result<Vec<String>, crate::lifecycle::probes::ProbeError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .get(name)
            .cloned()
            .unwrap_or_default())
    }
}

async fn dcv_world() -> (World, Arc<TxtRecords>) {
    let txt = Arc::new(TxtRecords::default());
    let probe: Arc<dyn crate::lifecycle::probes::TxtLookup> = txt.clone();
    let w = world_configured(Vec::new(), Vec::new(), move |c| {
        c.probes.txt = Some(probe);
        c.leaf_validity = time::Duration::days(90);
    })
    .await;
    (w, txt)
}

async fn run_jobs(w: &World) -> usize {
    let mut n = 0;
    loop {
        let ran = w.scm.job_runner().run_due(&w.handler()).await.unwrap();
        if ran.is_empty() {
            return n;
        }
        n += ran.len();
    }
}

#[tokio::test]
async fn a_name_outside_the_policy_is_issued_once_its_txt_record_is_seen() {
    let (w, txt) = dcv_world().await;
    let id = buy(&w, "SINGLE_DOMAIN", 1).await;
    w.scm
        .apply(
            &w.admin,
            &id,
            Some(&apply_body("www.example.com", "")),
            ApiVersion::V3,
        )
        .await
        .unwrap();
    let c = w.scm.certificate(&w.admin, &id).await.unwrap();
    assert_eq!(c.status, CertificateStatus::CheckingDomain);
    let proof = w.scm.proofs(&c).await.unwrap().remove(0);
    // First check: no record yet; the certificate keeps waiting.
    run_jobs(&w).await;
    let c = w.scm.certificate(&w.admin, &id).await.unwrap();
    assert_eq!(c.status, CertificateStatus::CheckingDomain);
    // The record appears late; the next check (spaced out, on the fixed clock) sees it.
    txt.set(&proof.record_name, &proof.record_value);
    w.clock.advance(time::Duration::minutes(10));
    run_jobs(&w).await;
    let c = w.scm.certificate(&w.admin, &id).await.unwrap();
    assert_eq!(
        c.status,
        CertificateStatus::Issued,
        "issued after validation"
    );
    assert_eq!(c.lifecycle.current_version, Some(1));
    assert!(c.lifecycle.renew_at_ms.is_some());
    let events: Vec<String> = w
        .store
        .events(&id, 50)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    for e in [
        "applied",
        "validation_failed",
        "validation_passed",
        "validated",
        "issued",
    ] {
        assert!(events.iter().any(|x| x == e), "{e} missing from {events:?}");
    }
    // The same name is reused for this account within the reuse period: issued at once.
    let again = buy(&w, "SINGLE_DOMAIN", 1).await;
    w.scm
        .apply(
            &w.admin,
            &again,
            Some(&apply_body("www.example.com", "")),
            ApiVersion::V3,
        )
        .await
        .unwrap();
    assert_eq!(
        w.scm.certificate(&w.admin, &again).await.unwrap().status,
        CertificateStatus::Issued
    );
    // And the value is the same one: a record left in place proves control again.
    assert_eq!(w.scm.proofs(&c).await.unwrap().len(), 0);
}

#[tokio::test]
async fn a_validation_not_passed_by_its_deadline_ends_unpassed_with_the_reason() {
    let (w, _txt) = dcv_world().await;
    let id = buy(&w, "SINGLE_DOMAIN", 1).await;
    w.scm
        .apply(
            &w.admin,
            &id,
            Some(&apply_body("nowhere.example.com", "")),
            ApiVersion::V3,
        )
        .await
        .unwrap();
    run_jobs(&w).await;
    w.clock
        .advance(time::Duration::days(7) + time::Duration::minutes(1));
    run_jobs(&w).await;
    let c = w.scm.certificate(&w.admin, &id).await.unwrap();
    assert_eq!(c.status, CertificateStatus::Unpassed);
    let events = w.store.events(&id, 50).await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.event, "unpassed");
    assert!(
        last.detail.contains("nowhere.example.com: no TXT record"),
        "{}",
        last.detail
    );
}

#[tokio::test]
async fn a_due_certificate_is_renewed_once_with_a_new_key_and_the_same_names() {
    let (w, _txt) = dcv_world().await;
    let id = issued(&w, "renew.e2e.test").await;
    let first = w.scm.certificate(&w.admin, &id).await.unwrap();
    let v1 = first.issued.clone().unwrap();
    let key1 = w
        .scm
        .export(&w.admin, &id)
        .await
        .unwrap()
        .private_key
        .unwrap();
    let renew_at = first.lifecycle.renew_at_ms.unwrap();
    // 90 days, a third left: due about day 60, spread over a tenth of the window.
    let day = 86_400_000;
    assert!(
        renew_at >= v1.not_after_ms - 30 * day && renew_at <= v1.not_after_ms - 26 * day,
        "{renew_at}"
    );
    // Not due yet: the sweep queues nothing.
    w.scm.schedule_renewal_sweep().await.unwrap();
    run_jobs(&w).await;
    assert_eq!(
        w.scm
            .certificate(&w.admin, &id)
            .await
            .unwrap()
            .lifecycle
            .current_version,
        Some(1)
    );
    // Past the renewal time: the next sweep queues one renewal, which makes version 2.
    w.clock.set(crate::clock::from_unix_ms(renew_at + 61_000));
    run_jobs(&w).await;
    let renewed = w.scm.certificate(&w.admin, &id).await.unwrap();
    assert_eq!(renewed.status, CertificateStatus::Issued);
    assert_eq!(renewed.lifecycle.current_version, Some(2));
    let v2 = renewed.issued.clone().unwrap();
    assert_ne!(v2.serial_hex, v1.serial_hex);
    assert!(v2.not_after_ms > v1.not_after_ms);
    assert_eq!(renewed.application, first.application, "same names");
    let key2 = w
        .scm
        .export(&w.admin, &id)
        .await
        .unwrap()
        .private_key
        .unwrap();
    assert_ne!(*key1, *key2, "a new key");
    let versions = w.store.versions(&id).await.unwrap();
    assert_eq!(versions.iter().map(|v| v.seq).collect::<Vec<_>>(), [2, 1]);
    assert_eq!(versions[0].reason, "renewal");
    // Sweeping again finds nothing due: exactly one renewal.
    w.clock.advance(time::Duration::minutes(2));
    w.scm.schedule_renewal_sweep().await.unwrap();
    run_jobs(&w).await;
    assert_eq!(w.store.versions(&id).await.unwrap().len(), 2);
    // A person can renew now, and switch auto-renew off: then the sweep leaves it alone.
    assert_eq!(w.scm.renew_now(&w.admin, &id).await.unwrap(), 2);
    run_jobs(&w).await;
    let manual = w.store.versions(&id).await.unwrap();
    assert_eq!(manual[0].reason, "renewal-manual");
    w.scm.set_auto_renew(&w.admin, &id, false).await.unwrap();
    let off = w.scm.certificate(&w.admin, &id).await.unwrap();
    assert!(!off.lifecycle.auto_renew && off.lifecycle.renew_at_ms.is_none());
    w.clock.advance(time::Duration::days(400));
    w.scm.schedule_renewal_sweep().await.unwrap();
    run_jobs(&w).await;
    assert_eq!(
        w.store.versions(&id).await.unwrap().len(),
        3,
        "off: not renewed"
    );
}

#[tokio::test]
async fn a_renewal_waiting_on_an_old_proof_keeps_the_version_and_tells_once_near_expiry() {
    let txt = Arc::new(TxtRecords::default());
    let probe: Arc<dyn crate::lifecycle::probes::TxtLookup> = txt.clone();
    let heard = Arc::new(RecordingNotifier {
        got: Mutex::new(Vec::new()),
    });
    let w = world_configured(
        Vec::new(),
        vec![("ops", heard.clone() as Arc<dyn Notifier>)],
        move |c| {
            c.probes.txt = Some(probe);
            c.leaf_validity = time::Duration::days(90);
        },
    )
    .await;
    // Issued after proof of control through DNS.
    let id = buy(&w, "SINGLE_DOMAIN", 1).await;
    w.scm
        .apply(
            &w.admin,
            &id,
            Some(&apply_body("shop.example.com", "")),
            ApiVersion::V3,
        )
        .await
        .unwrap();
    let c = w.scm.certificate(&w.admin, &id).await.unwrap();
    let proof = w.scm.proofs(&c).await.unwrap().remove(0);
    txt.set(&proof.record_name, &proof.record_value);
    run_jobs(&w).await;
    let issued = w.scm.certificate(&w.admin, &id).await.unwrap();
    assert_eq!(issued.status, CertificateStatus::Issued);
    let v1 = issued.issued.clone().unwrap();
    // The record is gone by the time the renewal is due (60 days on: the 30-day proof is too
    // old): the renewal waits, the certificate stays ISSUED with its version, the record shows.
    txt.0.lock().unwrap().clear();
    w.clock.set(crate::clock::from_unix_ms(
        issued.lifecycle.renew_at_ms.unwrap() + 61_000,
    ));
    w.scm.schedule_renewal_sweep().await.unwrap();
    run_jobs(&w).await;
    let waiting = w.scm.certificate(&w.admin, &id).await.unwrap();
    assert_eq!(waiting.status, CertificateStatus::Issued);
    assert_eq!(waiting.lifecycle.current_version, Some(1));
    assert!(waiting.lifecycle.validation_started_ms.is_some());
    let shown = w.scm.proofs(&waiting).await.unwrap();
    assert_eq!(shown.len(), 1, "the pending record shows");
    assert_eq!(shown[0].record_value, proof.record_value, "stable value");
    assert!(heard.got.lock().unwrap().is_empty(), "not yet near expiry");
    // A tenth of the lifetime left and still failing: the account hears it, once.
    for _ in 0..3 {
        w.clock
            .set(crate::clock::from_unix_ms(v1.not_after_ms - 8 * 86_400_000));
        run_jobs(&w).await;
        w.clock.advance(time::Duration::hours(1));
        run_jobs(&w).await;
    }
    let got = heard.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].event.name(), "renewal_failed");
    // The record is published again: the waiting renewal passes and version 2 comes.
    txt.set(&proof.record_name, &proof.record_value);
    w.clock.advance(time::Duration::hours(1));
    run_jobs(&w).await;
    let renewed = w.scm.certificate(&w.admin, &id).await.unwrap();
    assert_eq!(renewed.lifecycle.current_version, Some(2));
    assert!(renewed.lifecycle.validation_started_ms.is_none());
    assert!(w.scm.proofs(&renewed).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_account_may_renew_with_more_of_the_lifetime_left() {
    let (w, _txt) = dcv_world().await;
    assert!(matches!(
        w.scm.set_renewal_policy(&w.admin.account, Some(0.95)).await,
        Err(DomainError::InvalidParameter { .. })
    ));
    assert!(
        w.scm
            .set_renewal_policy(&w.admin.account, Some(0.5))
            .await
            .unwrap()
    );
    let day = 86_400_000;
    let id = issued(&w, "half.e2e.test").await;
    let c = w.scm.certificate(&w.admin, &id).await.unwrap();
    let v = c.issued.clone().unwrap();
    let left = v.not_after_ms - c.lifecycle.renew_at_ms.unwrap();
    // Half of 90 days, moved later by at most a tenth of that.
    assert!(
        left <= 45 * day && left >= 45 * day - 45 * day / 10,
        "{left}"
    );
    // Back to the server's third.
    assert!(
        w.scm
            .set_renewal_policy(&w.admin.account, None)
            .await
            .unwrap()
    );
    let id = issued(&w, "third.e2e.test").await;
    let c = w.scm.certificate(&w.admin, &id).await.unwrap();
    let left = c.issued.as_ref().unwrap().not_after_ms - c.lifecycle.renew_at_ms.unwrap();
    assert!(left <= 30 * day && left >= 26 * day, "{left}");
}
