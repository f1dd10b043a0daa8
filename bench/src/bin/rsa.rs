//! RSA key pool benchmark: RSA_2048 applications with a server-generated key (`Scm::apply`:
//! key, signature, sealing, storing) per second and their p99 latency, with the key pool and
//! without it, in one run, side by side:
//!
//! 1. 16 concurrent applications of one account (`--tasks`), for `--seconds`: sustained load,
//!    where the refill competes with requests for the cores (it makes keys only while none
//!    waits);
//! 2. one application at a time, for `--seconds`: no request ever waits for a key, so the
//!    refill makes keys on the core the request leaves free.
//!
//! With the pool: the default size ([`KeyPoolSettings::default`], 8 RSA_2048 keys; `--pool-size`),
//! its refill running as in the server, the pool full before each timed run. Without: size 0.
//! The refill runs at nice 19: on a machine busy with other work it fills slowly, and the
//! warm-up waits for it.
//!
//! `cargo run --release -p openscm-bench --bin rsa -- [--seconds N] [--tasks N] [--pool-size N]
//!  [--database-url URL]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use openscm_bench::{arg, p99};
use scm_core::lifecycle::keys::KeyPoolSettings;
use scm_core::purchase::ApiVersion;
use scm_core::tasks::Supervisor;
use scm_core::{CoreConfig, Principal, Scm, SystemClock};
use scm_pki::{KeyAlgorithm, MasterKey};
use scm_proto::CertificateId;
use scm_proto::v3::{ApplicationBody, PurchaseBody};
use scm_store::{DatabaseUrl, SqlStore};

/// Same allocator as the server binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Concurrent applications of the sustained run (like the issuance benchmark's); `--tasks`.
const TASKS: usize = 16;

struct Setup {
    scm: Arc<Scm>,
    admin: Principal,
    supervisor: Supervisor,
}

/// One store, bootstrapped; an `Scm` over it per pool size (two servers on one database).
struct Db {
    store: Arc<dyn scm_store::Store>,
    master: Arc<MasterKey>,
    admin: Principal,
}

async fn database(url: &str) -> Db {
    let url = DatabaseUrl::parse(url).unwrap();
    let store: Arc<dyn scm_store::Store> = Arc::new(SqlStore::connect(&url).await.unwrap());
    let master = Arc::new(MasterKey::generate().unwrap());
    let created = scm_core::bootstrap::run(store.as_ref(), &SystemClock, &master)
        .await
        .unwrap()
        .expect("a new database (the benchmark bootstraps its own account)");
    let admin = Principal {
        account: created.domain_id,
        project: created.project_id,
        access_key: created.access_key,
        method: scm_core::AuthMethod::Signature,
    };
    Db {
        store,
        master,
        admin,
    }
}

async fn setup(db: &Db, pool: KeyPoolSettings) -> Setup {
    let scm = Arc::new(
        Scm::open(
            db.store.clone(),
            Arc::new(SystemClock),
            db.master.clone(),
            CoreConfig {
                quotas: scm_store::Quotas::UNLIMITED,
                key_pool: pool,
                ..CoreConfig::default()
            },
        )
        .await
        .unwrap(),
    );
    // Only the refill of the server's background work: the rest would only add noise here.
    let supervisor = Supervisor::new();
    scm.start_key_pool(&supervisor);
    Setup {
        scm,
        admin: db.admin.clone(),
        supervisor,
    }
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

fn body() -> ApplicationBody {
    serde_json::from_value(serde_json::json!({
        "domain": "bench.test", "applicant_name": "Bench Mark", "applicant_phone": "13212345678",
        "applicant_email": "bench@example.com", "agree_privacy_protection": true, "domain_method": "DNS",
        "key_algorithm": "RSA_2048", "company_name": "OpenSCM", "country": "CN"
    }))
    .unwrap()
}

fn ready_2048(s: &Setup) -> usize {
    s.scm
        .key_generations()
        .pool_ready
        .iter()
        .find(|(a, _)| *a == KeyAlgorithm::Rsa2048)
        .map_or(0, |(_, n)| *n)
}

/// Waits until the RSA_2048 pool holds `target` keys (120 s at most: at nice 19, on a machine
/// busy with other work, a key can take many times its CPU time).
async fn warm(s: &Setup, target: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while ready_2048(s) < target {
        assert!(
            Instant::now() < deadline,
            "the pool did not fill in 120 s: {:?}",
            s.scm.key_generations()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// What one timed run measured.
struct Run {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    from_pool: u64,
    applications: usize,
}

impl Run {
    /// `  12.3 /s  p50   80.1 ms  p99  900.2 ms  (9 of 34 pooled)`, 56 characters wide.
    fn figures(&self, pooled: bool) -> String {
        let text = format!(
            "{:>6.1} /s  p50 {:>6.0} ms  p99 {:>6.0} ms",
            self.per_second,
            ms(self.p50),
            ms(self.p99),
        );
        if pooled {
            format!(
                "{text}  ({:>3} of {:>4} pooled)",
                self.from_pool, self.applications
            )
        } else {
            text
        }
    }
}

/// `tasks` applications at once, each task starting its next as the last ends, for `seconds`;
/// the applications under way then are finished and counted (time included).
async fn run(s: &Setup, tasks: usize, seconds: f64) -> Run {
    // More than any machine makes in the time (a key is tens of ms of a core).
    let ids = Arc::new(buy(s, (seconds * 150.0) as usize + 50).await);
    let before = s.scm.key_generations().from_pool;
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(seconds);
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (scm, admin, ids, next, body) = (
            s.scm.clone(),
            s.admin.clone(),
            ids.clone(),
            next.clone(),
            body(),
        );
        handles.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < until {
                let Some(id) = ids.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    break;
                };
                let t = Instant::now();
                scm.apply(&admin, id, Some(&body), ApiVersion::V3)
                    .await
                    .unwrap();
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for h in handles {
        latencies.extend(h.await.unwrap());
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort();
    Run {
        per_second: latencies.len() as f64 / elapsed,
        p50: latencies[latencies.len() / 2],
        p99: p99(&latencies),
        from_pool: s.scm.key_generations().from_pool - before,
        applications: latencies.len(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn line(what: &str, with: &Run, without: &Run) {
    println!(
        "  {what:<16} {:<60} {:<40} {:>5.2}x /s  {:>5.2}x p99",
        with.figures(true),
        without.figures(false),
        with.per_second / without.per_second,
        ms(with.p99) / ms(without.p99),
    );
}

#[tokio::main]
async fn main() {
    let seconds: f64 = arg("--seconds").and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let dir = std::env::temp_dir().join(format!("openscm-bench-rsa-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let given = arg("--database-url");
    let backend = if given.as_deref().is_none_or(|u| u.starts_with("sqlite")) {
        "SQLite (WAL, synchronous=FULL)"
    } else {
        "PostgreSQL"
    };
    let url =
        given.unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()));
    let tasks: usize = arg("--tasks").and_then(|s| s.parse().ok()).unwrap_or(TASKS);
    let pool = arg("--pool-size").and_then(|s| s.parse().ok()).map_or_else(
        KeyPoolSettings::default,
        KeyPoolSettings::from_rsa_pool_size,
    );
    println!(
        "OpenSCM RSA key pool benchmark: RSA_2048 applications with a server-generated key per \
         second and their p99 latency, with the key pool (RSA_2048 pool of {}, full at the start, \
         refilled while it runs) and without it, {seconds} s each, store {backend}; machine: {}",
        pool.rsa_2048,
        openscm_bench::machine()
    );
    println!(
        "  {:<16} {:<60} {:<40} with / without",
        "applications", "with the pool", "without"
    );

    let db = database(&url).await;
    let with = setup(&db, pool).await;
    let without = setup(&db, KeyPoolSettings::NONE).await;
    for (what, tasks) in [
        (format!("{tasks} at once"), tasks),
        ("1 at a time".to_owned(), 1),
    ] {
        // The pool full before either run, so that its refill is idle during the run without.
        warm(&with, pool.rsa_2048).await;
        let b = run(&without, tasks, seconds).await;
        let a = run(&with, tasks, seconds).await;
        line(&what, &a, &b);
    }
    for s in [with, without] {
        s.supervisor.stop(Duration::from_secs(10)).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
