//! Issuance benchmark: certificates issued by the built-in CA and durably stored per second,
//! through the same domain operation the API calls (`Scm::apply`: load, check, sign, seal,
//! conditional update), beside the ceiling of raw aws-lc-rs P-256 signatures per second measured in
//! the same run.
//!
//! `cargo run --release -p openscm-bench --bin issuance -- [--seconds N] [--database-url URL]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::Instant;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use scm_core::purchase::ApiVersion;
use scm_core::{CoreConfig, Principal, Scm, SystemClock};
use scm_pki::MasterKey;
use scm_proto::CertificateId;
use scm_proto::v3::{ApplicationBody, PurchaseBody};
use scm_store::{DatabaseUrl, SqlStore, Store};

/// Same allocator as the server binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Concurrent applications (like concurrent API requests).
const TASKS: usize = 16;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Raw ECDSA P-256 signatures per second on all cores: the ceiling of issuance.
fn raw_signatures(seconds: f64) -> f64 {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || {
                let rng = SystemRandom::new();
                let pkcs8 =
                    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
                let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
                    .unwrap();
                let msg = [7u8; 600]; // about the size of a TBSCertificate
                let start = Instant::now();
                let mut n = 0u64;
                while start.elapsed().as_secs_f64() < seconds {
                    key.sign(&rng, &msg).unwrap();
                    n += 1;
                }
                n as f64 / start.elapsed().as_secs_f64()
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).sum()
}

struct Setup {
    scm: Arc<Scm>,
    admin: Principal,
}

async fn setup(url: &str) -> Setup {
    let url = DatabaseUrl::parse(url).unwrap();
    let store: Arc<dyn Store> = Arc::new(SqlStore::connect(&url).await.unwrap());
    let master = Arc::new(MasterKey::generate().unwrap());
    let clock = Arc::new(SystemClock);
    let created = scm_core::bootstrap::run(store.as_ref(), clock.as_ref(), &master)
        .await
        .unwrap()
        .unwrap();
    let scm = Arc::new(
        // The benchmark buys as many certificates as the time asked for needs: no quota.
        Scm::open(
            store,
            clock,
            master,
            CoreConfig {
                quotas: scm_store::Quotas::UNLIMITED,
                ..CoreConfig::default()
            },
        )
        .await
        .unwrap(),
    );
    let admin = Principal {
        account: created.domain_id,
        project: created.project_id,
        access_key: created.access_key,
        method: scm_core::AuthMethod::Signature,
    };
    Setup { scm, admin }
}

async fn buy(s: &Setup, n: usize) -> Vec<CertificateId> {
    let body: PurchaseBody = serde_json::from_value(serde_json::json!({
        "cert_brand": "GLOBALSIGN", "cert_type": "DV_SSL_CERT", "domain_type": "SINGLE_DOMAIN",
        "effective_time": 1, "domain_numbers": 1, "order_number": 100, "agree_privacy_protection": true
    }))
    .unwrap();
    let mut ids = Vec::new();
    while ids.len() < n {
        let (_, got) = s
            .scm
            .purchase(&s.admin, &s.admin.project, &body, ApiVersion::V3)
            .await
            .unwrap();
        ids.extend(got);
    }
    ids.truncate(n);
    ids
}

fn body(csr: Option<&str>, key_algorithm: &str) -> ApplicationBody {
    serde_json::from_value(serde_json::json!({
        "domain": "bench.test", "applicant_name": "Bench Mark", "applicant_phone": "13212345678",
        "applicant_email": "bench@example.com", "agree_privacy_protection": true, "domain_method": "DNS",
        "key_algorithm": key_algorithm, "csr": csr.unwrap_or(""), "company_name": "OpenSCM", "country": "CN"
    }))
    .unwrap()
}

/// Applies to `ids` with TASKS concurrent tasks; returns certificates per second.
async fn issue_all(s: &Setup, ids: Vec<CertificateId>, body: ApplicationBody) -> f64 {
    let ids = Arc::new(ids);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (scm, admin, ids, next, body) = (
            s.scm.clone(),
            s.admin.clone(),
            ids.clone(),
            next.clone(),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(id) = ids.get(i) else { break };
                scm.apply(&admin, id, Some(&body), ApiVersion::V3)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    ids.len() as f64 / start.elapsed().as_secs_f64()
}

fn csr_pem() -> String {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["bench.test".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "bench.test");
    params.serialize_request(&key).unwrap().pem().unwrap()
}

#[tokio::main]
async fn main() {
    let seconds: f64 = arg("--seconds").and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let dir = std::env::temp_dir().join(format!("openscm-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = arg("--database-url")
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()));
    let backend = if url.starts_with("sqlite") {
        "SQLite (WAL, synchronous=FULL)"
    } else {
        "PostgreSQL"
    };
    println!(
        "OpenSCM issuance benchmark: certificates issued by the built-in CA and stored per second \
         ({TASKS} concurrent applications, store {backend}), beside raw signatures; machine: {}",
        openscm_bench::machine()
    );

    let s = setup(&url).await;
    let ceiling = raw_signatures(seconds);
    println!("  ceiling: raw aws-lc-rs ECDSA P-256 signatures          {ceiling:>10.0} /s");

    // Size the runs to take about `seconds` each, from a short warm-up.
    let csr = csr_pem();
    let warm = buy(&s, 200).await;
    let warm_rate = issue_all(&s, warm, body(Some(&csr), "EC_P256")).await;
    // Certificate ids encode a millisecond (scs + 13 digits), so one store hands out about
    // 1,000 a second: buying more than that per second asked for would outlast the run.
    let n = ((warm_rate.min(1000.0) * seconds) as usize).max(200);
    let ids = buy(&s, n).await;
    let ec = issue_all(&s, ids, body(Some(&csr), "EC_P256")).await;
    println!(
        "  EC_P256 from a CSR, issued + stored ({n:>5})          {ec:>10.0} /s   {:>5.1}% of ceiling   target >= 2000/s: {}",
        100.0 * ec / ceiling,
        if ec >= 2000.0 { "met" } else { "NOT MET" }
    );

    let n_rsa = 40;
    let ids = buy(&s, n_rsa).await;
    let rsa = issue_all(&s, ids, body(None, "RSA_2048")).await;
    println!(
        "  RSA_2048 server-generated key, issued + stored ({n_rsa:>3})  {rsa:>10.1} /s   (key generation dominates)"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
