//! The order machinery over a real SQLite store with a fixed clock, against an in-process CA
//! that speaks the domain's port with the semantics of RFC 8555 (orders, authorizations,
//! challenges, finalize with a CSR signed by a real CA key) and can be told to be down, rate
//! limited or to fail a name's validation: what the domain decides (fallback, pauses, caps,
//! stops, resumption, ARI) is checked here; the adapter is tested against Pebble in
//! `scm-outbound`, and the whole against Pebble and BIND end to end.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use scm_pki::{DnsName, LeafKey, LeafRequest, MasterKey, ParsedCsr, SubjectFields};
use scm_proto::v3::{ApplicationBody, PurchaseBody};
use scm_proto::{CertificateId, CertificateStatus};
use scm_store::{DatabaseUrl, SqlStore, Store};
use time::macros::datetime;

use super::acme::*;
use super::{AcmeIssuer, IssuerSettings};
use crate::jobs::{JobHandler, JobSettings};
use crate::lifecycle::Probes;
use crate::lifecycle::probes::{ProbeError, TxtLookup, TxtUpdate};
use crate::notify::{Notification, Notifier, NotifierTarget, NotifyError};
use crate::purchase::ApiVersion;
use crate::{Clock, CoreConfig, FixedClock, Principal, Scm, bootstrap};

/// DNS as the tests see it: what the updater wrote is what the resolver finds.
#[derive(Debug, Default)]
struct Zone(Mutex<HashMap<String, Vec<String>>>);

#[async_trait]
impl TxtUpdate for Zone {
    async fn add_txt(&self, fqdn: &str, value: &str) -> Result<(), ProbeError> {
        self.0
            .lock()
            .unwrap()
            .entry(fqdn.to_owned())
            .or_default()
            .push(value.to_owned());
        Ok(())
    }
    async fn remove_txt(&self, fqdn: &str, value: &str) -> Result<(), ProbeError> {
        if let Some(v) = self.0.lock().unwrap().get_mut(fqdn) {
            v.retain(|x| x != value);
        }
        Ok(())
    }
}

#[async_trait]
impl TxtLookup for Zone {
    async fn txt(&self, name: &str) -> Result<Vec<String>, ProbeError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .get(name)
            .cloned()
            .unwrap_or_default())
    }
}

#[derive(Debug, Default)]
struct Heard(Mutex<Vec<Notification>>);

#[async_trait]
impl Notifier for Heard {
    async fn notify(&self, n: &Notification) -> Result<(), NotifyError> {
        self.0.lock().unwrap().push(n.clone());
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct Authz {
    name: String,
    wildcard: bool,
    status: ItemStatus,
    error: Option<Problem>,
}

#[derive(Debug, Clone)]
struct CaOrder {
    status: OrderStatus,
    authz: Vec<Authz>,
    chain: Option<String>,
    replaces: bool,
}

#[derive(Debug, Default)]
struct CaState {
    orders: HashMap<String, CaOrder>,
    placed: u32,
    down: bool,
    rate_limited: Option<Duration>,
    fail: HashSet<String>,
    accounts: u32,
    window: Option<(i64, i64)>,
    revoked: Vec<Vec<u8>>,
}

/// An RFC 8555 CA in memory, signing with a real CA key.
#[derive(Debug)]
struct TestCa {
    name: String,
    state: Mutex<CaState>,
    signer: scm_pki::Issuer,
    chain: String,
    ari: bool,
}

impl TestCa {
    fn new(name: &str, ari: bool) -> Arc<Self> {
        let ca = scm_pki::generate_ca(name, datetime!(2026-01-01 0:00 UTC)).unwrap();
        Arc::new(Self {
            name: name.into(),
            state: Mutex::new(CaState::default()),
            signer: scm_pki::Issuer::from_pem(&ca.intermediate_cert_pem, &ca.intermediate_key)
                .unwrap(),
            chain: format!("{}{}", ca.intermediate_cert_pem, ca.root_cert_pem),
            ari,
        })
    }

    fn placed(&self) -> u32 {
        self.state.lock().unwrap().placed
    }

    fn check_up(&self) -> Result<(), AcmeError> {
        if self.state.lock().unwrap().down {
            return Err(AcmeError::Unavailable {
                reason: format!("{}: connection refused", self.name),
                retry_after: None,
            });
        }
        Ok(())
    }

    fn view(&self, url: &str, o: &CaOrder) -> OrderView {
        OrderView {
            url: url.into(),
            status: o.status,
            authorizations: o
                .authz
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    let token = format!("tok-{}-{i}", url.rsplit('/').next().unwrap());
                    let mk = |kind: ChallengeKind| ChallengeView {
                        kind,
                        url: format!("{url}/chall/{i}/{}", kind.as_str()),
                        token: token.clone(),
                        status: a.status,
                        key_authorization: format!("{token}.thumb"),
                        dns_value: format!("dns-{token}"),
                        error: a.error.clone(),
                    };
                    AuthorizationView {
                        url: format!("{url}/authz/{i}"),
                        name: a.name.clone(),
                        wildcard: a.wildcard,
                        status: a.status,
                        challenges: vec![mk(ChallengeKind::Http01), mk(ChallengeKind::Dns01)],
                    }
                })
                .collect(),
            error: None,
            retry_after: None,
        }
    }
}

#[async_trait]
impl AcmeCa for TestCa {
    async fn create_account(&self) -> Result<AccountSecret, AcmeError> {
        self.check_up()?;
        let mut s = self.state.lock().unwrap();
        s.accounts += 1;
        Ok(AccountSecret(zeroize::Zeroizing::new(format!(
            "{{\"account\":{}}}",
            s.accounts
        ))))
    }

    async fn new_order(
        &self,
        _account: &AccountSecret,
        order: &NewOrderSpec,
    ) -> Result<OrderView, AcmeError> {
        self.check_up()?;
        let mut s = self.state.lock().unwrap();
        if let Some(wait) = s.rate_limited {
            return Err(AcmeError::RateLimited {
                problem: Problem {
                    kind: "urn:ietf:params:acme:error:rateLimited".into(),
                    detail: "too many new orders".into(),
                    subproblems: Vec::new(),
                },
                retry_after: Some(wait),
            });
        }
        s.placed += 1;
        let url = format!("https://{}/order/{}", self.name, s.placed);
        let o = CaOrder {
            status: OrderStatus::Pending,
            authz: order
                .names
                .iter()
                .map(|n| Authz {
                    name: n.trim_start_matches("*.").into(),
                    wildcard: n.starts_with("*."),
                    status: ItemStatus::Pending,
                    error: None,
                })
                .collect(),
            chain: None,
            replaces: order.replaces.is_some(),
        };
        let v = self.view(&url, &o);
        s.orders.insert(url, o);
        Ok(v)
    }

    async fn order(&self, _account: &AccountSecret, url: &str) -> Result<OrderView, AcmeError> {
        self.check_up()?;
        let s = self.state.lock().unwrap();
        match s.orders.get(url) {
            Some(o) => Ok(self.view(url, o)),
            None => Err(AcmeError::Gone { url: url.into() }),
        }
    }

    async fn answer(
        &self,
        _account: &AccountSecret,
        order_url: &str,
        challenge_url: &str,
    ) -> Result<(), AcmeError> {
        self.check_up()?;
        let mut s = self.state.lock().unwrap();
        let fail = s.fail.clone();
        let o = s.orders.get_mut(order_url).ok_or(AcmeError::Gone {
            url: order_url.into(),
        })?;
        let i: usize = challenge_url
            .split('/')
            .rev()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let a = &mut o.authz[i];
        let full = if a.wildcard {
            format!("*.{}", a.name)
        } else {
            a.name.clone()
        };
        if fail.contains(&full) {
            a.status = ItemStatus::Invalid;
            a.error = Some(Problem {
                kind: "urn:ietf:params:acme:error:dns".into(),
                detail: format!("NXDOMAIN looking up TXT for {full}"),
                subproblems: Vec::new(),
            });
            o.status = OrderStatus::Invalid;
        } else {
            a.status = ItemStatus::Valid;
            if o.authz.iter().all(|a| a.status == ItemStatus::Valid) {
                o.status = OrderStatus::Ready;
            }
        }
        Ok(())
    }

    async fn finalize(
        &self,
        _account: &AccountSecret,
        order_url: &str,
        csr_der: &[u8],
    ) -> Result<OrderView, AcmeError> {
        self.check_up()?;
        let csr = ParsedCsr::from_der(csr_der).unwrap();
        let mut s = self.state.lock().unwrap();
        let o = s.orders.get_mut(order_url).unwrap();
        assert_eq!(o.status, OrderStatus::Ready, "finalized before ready");
        let names: Vec<DnsName> = csr
            .dns_names()
            .iter()
            .map(|n| DnsName::parse(n).unwrap())
            .collect();
        let leaf = self
            .signer
            .issue(&LeafRequest {
                dns_names: &names,
                subject: SubjectFields::default(),
                not_before: datetime!(2026-11-23 0:00 UTC),
                not_after: datetime!(2027-02-21 0:00 UTC),
                public_key: LeafKey::Csr(&csr),
            })
            .unwrap();
        o.chain = Some(format!("{}{}", leaf.certificate_pem, self.chain));
        o.status = OrderStatus::Valid;
        Ok(self.view(order_url, o))
    }

    async fn certificate(
        &self,
        _account: &AccountSecret,
        order_url: &str,
    ) -> Result<Option<String>, AcmeError> {
        self.check_up()?;
        Ok(self
            .state
            .lock()
            .unwrap()
            .orders
            .get(order_url)
            .and_then(|o| o.chain.clone()))
    }

    async fn offers_ari(&self) -> Result<bool, AcmeError> {
        Ok(self.ari)
    }

    async fn renewal_info(&self, _cert_der: &[u8]) -> Result<Option<RenewalWindow>, AcmeError> {
        Ok(self
            .state
            .lock()
            .unwrap()
            .window
            .map(|(start_ms, end_ms)| RenewalWindow {
                start_ms,
                end_ms,
                retry_after: Some(Duration::from_secs(60)),
                explanation_url: None,
            }))
    }

    async fn revoke(
        &self,
        _account: &AccountSecret,
        cert_der: &[u8],
        _reason: Option<u8>,
    ) -> Result<(), AcmeError> {
        self.check_up()?;
        self.state.lock().unwrap().revoked.push(cert_der.to_vec());
        Ok(())
    }
}

struct World {
    scm: Arc<Scm>,
    store: Arc<dyn Store>,
    clock: Arc<FixedClock>,
    admin: Principal,
    zone: Arc<Zone>,
    heard: Arc<Heard>,
    _dir: tempfile::TempDir,
}

fn issuer(ca: &Arc<TestCa>, automatic_dns: Option<Arc<Zone>>, max_orders: u32) -> Arc<AcmeIssuer> {
    Arc::new(AcmeIssuer {
        name: ca.name.clone(),
        ca: ca.clone(),
        challenges: vec![ChallengeKind::Http01, ChallengeKind::Dns01],
        dns01: automatic_dns.map(|z| z as Arc<dyn TxtUpdate>),
        max_orders,
        order_window: Duration::from_secs(3 * 3600),
        max_names: 100,
    })
}

/// A world whose `GLOBALSIGN` brand is issued by `brand` (issuer names) among `cas`.
async fn world(cas: &[Arc<TestCa>], brand: &[&str], automatic_dns: bool, max_orders: u32) -> World {
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
    let zone = Arc::new(Zone::default());
    let heard = Arc::new(Heard::default());
    let mut issuers = IssuerSettings::default();
    for ca in cas {
        issuers
            .acme
            .push(issuer(ca, automatic_dns.then(|| zone.clone()), max_orders));
    }
    issuers.brands.insert(
        "GLOBALSIGN".into(),
        brand.iter().map(|s| (*s).to_owned()).collect(),
    );
    let config = CoreConfig {
        jobs: JobSettings {
            lease: Duration::from_secs(60),
            ..JobSettings::default()
        },
        probes: Probes {
            txt: Some(zone.clone()),
            ..Probes::default()
        },
        notifiers: vec![NotifierTarget {
            name: "ops".into(),
            account: created.domain_id.clone(),
            notifier: heard.clone(),
        }],
        issuers,
        ..CoreConfig::default()
    };
    let scm = Arc::new(
        Scm::open(store.clone(), clock.clone(), master, config)
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
        admin,
        zone,
        heard,
        _dir: dir,
    }
}

impl World {
    async fn buy(&self, brand: &str) -> CertificateId {
        let body: PurchaseBody = serde_json::from_value(serde_json::json!({
            "cert_brand": brand, "cert_type": "DV_SSL_CERT", "domain_type": "MULTI_DOMAIN",
            "effective_time": 1, "domain_numbers": 5, "order_number": 1, "agree_privacy_protection": true
        }))
        .unwrap();
        let (_, ids) = self
            .scm
            .purchase(&self.admin, &self.admin.project, &body, ApiVersion::V3)
            .await
            .unwrap();
        ids[0].clone()
    }

    async fn apply(&self, id: &CertificateId, domain: &str, sans: &str, method: &str) {
        let body: ApplicationBody = serde_json::from_value(serde_json::json!({
            "domain": domain, "sans": sans, "applicant_name": "Tom Smith", "applicant_phone": "13212345678",
            "applicant_email": "tom@example.com", "agree_privacy_protection": true, "domain_method": method,
            "key_algorithm": "EC_P256"
        }))
        .unwrap();
        self.scm
            .apply(&self.admin, id, Some(&body), ApiVersion::V3)
            .await
            .unwrap();
    }

    async fn current_version(&self, id: &CertificateId) -> Option<u32> {
        let cert = self.store.certificate(id).await.unwrap().unwrap();
        cert.lifecycle.current_version
    }

    async fn status(&self, id: &CertificateId) -> CertificateStatus {
        self.store.certificate(id).await.unwrap().unwrap().status
    }

    /// Runs due jobs, moving the clock `step` at a time, until `done` or `rounds` pass.
    async fn run_until<F, Fut>(&self, step: time::Duration, rounds: u32, mut done: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let handler: Arc<dyn JobHandler> = self.scm.clone();
        for _ in 0..rounds {
            let reports = self.scm.job_runner().run_due(&handler).await.unwrap();
            if std::env::var("DEBUG_ORDERS").is_ok() {
                eprintln!("{reports:?}");
            }
            if done().await {
                return true;
            }
            self.clock.advance(step);
        }
        false
    }

    async fn issued_after(&self, id: &CertificateId, rounds: u32) -> bool {
        self.run_until(time::Duration::seconds(2), rounds, || async {
            self.status(id).await == CertificateStatus::Issued
        })
        .await
    }

    fn events_of(&self, kind: &str) -> usize {
        self.heard
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|n| n.event.name() == kind)
            .count()
    }
}

#[tokio::test]
async fn an_acme_issuer_issues_through_a_resumable_order() {
    let ca = TestCa::new("ca1", false);
    let w = world(std::slice::from_ref(&ca), &["ca1"], true, 100).await;
    let id = w.buy("GLOBALSIGN").await;
    w.apply(&id, "shop.example.com", "*.shop.example.com", "DNS")
        .await;
    assert_eq!(w.status(&id).await, CertificateStatus::CheckingDomain);
    assert!(w.issued_after(&id, 30).await, "issued");
    let cert = w.store.certificate(&id).await.unwrap().unwrap();
    let issued = cert.issued.unwrap();
    assert_eq!(issued.ca_id.as_deref(), Some("acme:ca1"));
    assert!(issued.chain_pem.contains("BEGIN CERTIFICATE"));
    // The key OpenSCM made is the certified one, and it can be exported.
    let export = w.scm.export(&w.admin, &id).await.unwrap();
    let key = scm_pki::PrivateKey::from_pem(export.private_key.as_deref().unwrap()).unwrap();
    assert!(
        scm_pki::parse_certificate_pem(&export.certificate)
            .unwrap()
            .public_key_matches(&key)
    );
    assert_eq!(ca.placed(), 1, "one order");
    // The dns-01 records were withdrawn.
    assert!(w.zone.0.lock().unwrap().values().all(Vec::is_empty));
    let row = w.store.acme_order(&id, 1).await.unwrap().unwrap();
    assert_eq!(row.state, "done");
}

#[tokio::test]
async fn manual_dns_01_shows_the_record_and_answers_once_it_is_seen() {
    let ca = TestCa::new("ca1", false);
    let w = world(std::slice::from_ref(&ca), &["ca1"], false, 100).await;
    let id = w.buy("GLOBALSIGN").await;
    w.apply(&id, "shop.example.com", "", "DNS").await;
    let handler: Arc<dyn JobHandler> = w.scm.clone();
    w.scm.job_runner().run_due(&handler).await.unwrap();
    // Manual dns-01: the record is shown, not published; the order waits.
    let cert = w.store.certificate(&id).await.unwrap().unwrap();
    let proofs = w.scm.proofs(&cert).await.unwrap();
    assert_eq!(proofs.len(), 1);
    assert_eq!(proofs[0].record_name, "_acme-challenge.shop.example.com");
    assert_eq!(proofs[0].record_type, "TXT");
    // The user publishes; OpenSCM sees it and answers the same order.
    w.zone
        .add_txt(&proofs[0].record_name, &proofs[0].record_value)
        .await
        .unwrap();
    assert!(w.issued_after(&id, 200).await, "issued once published");
    assert_eq!(ca.placed(), 1, "the same order was carried on");
}

#[tokio::test]
async fn a_ca_that_is_down_falls_back_to_the_next_issuer() {
    let down = TestCa::new("down", false);
    down.state.lock().unwrap().down = true;
    let up = TestCa::new("up", false);
    let w = world(&[down.clone(), up.clone()], &["down", "up"], true, 100).await;
    let id = w.buy("GLOBALSIGN").await;
    w.apply(&id, "shop.example.com", "", "DNS").await;
    let start = w.clock.now_ms();
    assert!(w.issued_after(&id, 30).await);
    assert!(w.clock.now_ms() - start <= 60_000, "within a minute");
    let cert = w.store.certificate(&id).await.unwrap().unwrap();
    assert_eq!(cert.issued.unwrap().ca_id.as_deref(), Some("acme:up"));
    let events = w.store.events(&id, 100).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.event == "issuer_fallback" && e.detail.contains("down failed")),
        "{events:?}"
    );
}

#[tokio::test]
async fn the_built_in_ca_can_follow_an_acme_ca() {
    let down = TestCa::new("down", false);
    down.state.lock().unwrap().down = true;
    let w = world(std::slice::from_ref(&down), &["down", "builtin"], true, 100).await;
    let id = w.buy("GLOBALSIGN").await;
    // Names under the default policy (.test): the built-in CA issues them without proof.
    w.apply(&id, "shop.example.test", "", "DNS").await;
    assert!(w.issued_after(&id, 30).await);
    let cert = w.store.certificate(&id).await.unwrap().unwrap();
    assert!(!cert.issued.unwrap().ca_id.unwrap().starts_with("acme:"));
}

#[tokio::test]
async fn rate_limited_pauses_the_ca_account_until_the_time_it_names() {
    let ca = TestCa::new("ca1", false);
    ca.state.lock().unwrap().rate_limited = Some(Duration::from_secs(2 * 3600));
    let w = world(std::slice::from_ref(&ca), &["ca1"], true, 100).await;
    let id = w.buy("GLOBALSIGN").await;
    w.apply(&id, "shop.example.com", "", "DNS").await;
    // An hour in, nothing was ordered and nothing asked again.
    assert!(
        !w.run_until(time::Duration::minutes(10), 6, || async { false })
            .await
    );
    assert_eq!(ca.placed(), 0);
    let paused = w.store.acme_account("ca1").await.unwrap().unwrap();
    assert!(paused.paused_until_ms.is_some());
    ca.state.lock().unwrap().rate_limited = None;
    assert!(
        w.run_until(time::Duration::minutes(10), 20, || async {
            w.status(&id).await == CertificateStatus::Issued
        })
        .await
    );
    assert_eq!(ca.placed(), 1);
}

#[tokio::test]
async fn a_name_failing_five_times_is_left_alone_and_the_account_told_once() {
    let ca = TestCa::new("ca1", false);
    ca.state
        .lock()
        .unwrap()
        .fail
        .insert("bad.example.com".into());
    let w = world(std::slice::from_ref(&ca), &["ca1"], true, 100).await;
    let id = w.buy("GLOBALSIGN").await;
    w.apply(&id, "bad.example.com", "", "DNS").await;
    // Twelve hours of trying.
    w.run_until(time::Duration::minutes(5), 144, || async { false })
        .await;
    assert_eq!(ca.placed(), super::orders::STOP_AFTER, "stopped after five");
    // The notification job ran.
    w.run_until(time::Duration::minutes(1), 3, || async { false })
        .await;
    assert_eq!(w.events_of("validation_stopped"), 1);
    // A person fixes it and applies again (through renew/apply): here, a day passes.
    ca.state.lock().unwrap().fail.clear();
    assert!(
        w.run_until(time::Duration::minutes(30), 60, || async {
            w.status(&id).await == CertificateStatus::Issued
        })
        .await
    );
    assert_eq!(w.events_of("validation_stopped"), 1, "told once");
}

#[tokio::test]
async fn orders_per_ca_account_are_capped() {
    let ca = TestCa::new("ca1", false);
    let w = world(std::slice::from_ref(&ca), &["ca1"], false, 2).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let id = w.buy("GLOBALSIGN").await;
        w.apply(&id, &format!("s{i}.example.com"), "", "DNS").await;
        ids.push(id);
    }
    w.run_until(time::Duration::minutes(1), 10, || async { false })
        .await;
    assert_eq!(ca.placed(), 2, "the third waits for a slot");
    // Three hours later a slot is free.
    w.run_until(time::Duration::minutes(20), 12, || async { false })
        .await;
    assert_eq!(ca.placed(), 3);
}

#[tokio::test]
async fn renewal_orders_again_with_replaces_and_follows_the_ari_window() {
    let ca = TestCa::new("ca1", true);
    let w = world(std::slice::from_ref(&ca), &["ca1"], true, 100).await;
    let id = w.buy("GLOBALSIGN").await;
    w.apply(&id, "shop.example.com", "", "DNS").await;
    assert!(w.issued_after(&id, 30).await);
    // The CA's window moves into the past: the renewal time follows at once.
    let now = w.clock.now_ms();
    ca.state.lock().unwrap().window = Some((now - 3_600_000, now - 60_000));
    w.run_until(time::Duration::hours(25), 2, || async { false })
        .await;
    let cert = w.store.certificate(&id).await.unwrap().unwrap();
    assert!(
        cert.lifecycle.renew_at_ms.unwrap() <= w.clock.now_ms(),
        "due now"
    );
    w.scm.schedule_renewal_sweep().await.unwrap();
    assert!(
        w.run_until(time::Duration::minutes(1), 60, || async {
            w.current_version(&id).await == Some(2)
        })
        .await,
        "renewed"
    );
    let s = ca.state.lock().unwrap();
    assert_eq!(s.placed, 2);
    assert!(s.orders.values().any(|o| o.replaces), "replaces sent");
}

#[tokio::test]
async fn revocation_goes_to_the_issuing_ca() {
    let ca = TestCa::new("ca1", false);
    let w = world(std::slice::from_ref(&ca), &["ca1"], true, 100).await;
    let id = w.buy("GLOBALSIGN").await;
    w.apply(&id, "shop.example.com", "", "DNS").await;
    assert!(w.issued_after(&id, 30).await);
    w.scm
        .revoke(&w.admin, &id, Some("keyCompromise"))
        .await
        .unwrap();
    assert_eq!(w.status(&id).await, CertificateStatus::Revoked);
    assert_eq!(ca.state.lock().unwrap().revoked.len(), 1);
}

#[tokio::test]
async fn products_an_acme_ca_cannot_issue_are_refused_naming_the_issuer() {
    let ca = TestCa::new("ca1", false);
    let w = world(std::slice::from_ref(&ca), &["ca1"], true, 100).await;
    let body: PurchaseBody = serde_json::from_value(serde_json::json!({
        "cert_brand": "GLOBALSIGN", "cert_type": "OV_SSL_CERT", "domain_type": "SINGLE_DOMAIN",
        "effective_time": 1, "domain_numbers": 1, "order_number": 1, "agree_privacy_protection": true
    }))
    .unwrap();
    let (_, ids) = w
        .scm
        .purchase(&w.admin, &w.admin.project, &body, ApiVersion::V3)
        .await
        .unwrap();
    let app: ApplicationBody = serde_json::from_value(serde_json::json!({
        "domain": "shop.example.com", "applicant_name": "Tom Smith", "applicant_phone": "13212345678",
        "applicant_email": "tom@example.com", "agree_privacy_protection": true, "domain_method": "DNS",
        "company_name": "Example Org", "country": "cn", "company_province": "x", "company_city": "y",
        "contact_name": "Tom", "contact_phone": "13212345678", "contact_email": "tom@example.com"
    }))
    .unwrap();
    let err = w
        .scm
        .apply(&w.admin, &ids[0], Some(&app), ApiVersion::V3)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ca1"), "{err}");
    assert_eq!(w.status(&ids[0]).await, CertificateStatus::Paid);
}

#[tokio::test]
async fn a_person_renewing_lifts_the_stop_of_a_failing_name() {
    let ca = TestCa::new("ca1", false);
    let w = world(std::slice::from_ref(&ca), &["ca1"], true, 100).await;
    let id = w.buy("GLOBALSIGN").await;
    w.apply(&id, "shop.example.com", "", "DNS").await;
    assert!(w.issued_after(&id, 30).await);
    ca.state
        .lock()
        .unwrap()
        .fail
        .insert("shop.example.com".into());
    w.scm.renew_now(&w.admin, &id).await.unwrap();
    // Failing until stopped (five orders), then left alone.
    w.run_until(time::Duration::minutes(5), 144, || async { false })
        .await;
    assert_eq!(ca.placed(), 1 + super::orders::STOP_AFTER);
    // Fixed, and a person asks again: renewed at once, not a day later.
    ca.state.lock().unwrap().fail.clear();
    w.scm.renew_now(&w.admin, &id).await.unwrap();
    assert!(
        w.run_until(time::Duration::seconds(2), 30, || async {
            w.current_version(&id).await == Some(2)
        })
        .await,
        "renewed at once"
    );
}
