//! Renewal benchmark: certificates renewed per second through the domain's real job path, with
//! N certificates (default 100,000) of one account all due at once: the `renewal-sweep` job
//! queues one `renew` job per certificate (5,000 a sweep, the next sweep at once while batches
//! are full), and the job worker (`JobRunner::run`, as the server starts it, with the server's
//! job slots) runs them; each makes a new EC P-256 key, signs the next version with the account's
//! CA and stores it through the group-commit writer. Beside it, the ceiling: the same number of
//! first issuances through `Scm::apply` (the same work without the job machinery), as many at
//! once as there are job slots, measured in the same run on the same store. The clock is a
//! `FixedClock` moved past every renewal time, so nothing waits for real time. The end checks
//! that every certificate has exactly two versions.
//!
//! `cargo run --release -p openscm-bench --bin renewal -- [--certificates N] [--concurrency C]
//!  [--database-url postgres://USER@HOST/DB (a throwaway database is made there and dropped)]`
//!
//! C defaults to the server's default `[jobs] concurrency` (8).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use openscm_bench::{BenchDb, Sql, arg};
use scm_core::jobs::{JobHandler, JobSettings};
use scm_core::purchase::ApiVersion;
use scm_core::tasks::Supervisor;
use scm_core::{Clock, CoreConfig, FixedClock, Principal, Scm};
use scm_pki::MasterKey;
use scm_proto::CertificateId;
use scm_proto::v3::{ApplicationBody, PurchaseBody};
use scm_store::{DatabaseUrl, SqlStore, Store};

/// Same allocator as the server binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Certificates per order: the v3 API's most.
const PER_ORDER: usize = 100;

fn purchase_body() -> PurchaseBody {
    serde_json::from_value(serde_json::json!({
        "cert_brand": "GLOBALSIGN", "cert_type": "DV_SSL_CERT", "domain_type": "SINGLE_DOMAIN",
        "effective_time": 1, "domain_numbers": 1, "order_number": PER_ORDER,
        "agree_privacy_protection": true
    }))
    .unwrap()
}

/// An application for a name under `.test` (pre-authorized by the default policy: issued at
/// once, no validation), with a key made by the server (so each renewal makes a new one).
fn application(i: usize) -> ApplicationBody {
    serde_json::from_value(serde_json::json!({
        "domain": format!("host-{i}.renewal.test"), "applicant_name": "Bench Mark",
        "applicant_phone": "13212345678", "applicant_email": "bench@example.com",
        "agree_privacy_protection": true, "domain_method": "DNS", "key_algorithm": "EC_P256"
    }))
    .unwrap()
}

/// Applies for every one of `ids` with `tasks` concurrent applications; returns the time taken.
async fn issue_all(scm: &Arc<Scm>, admin: &Principal, ids: &[CertificateId], tasks: usize) -> f64 {
    let ids = Arc::new(ids.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut running = Vec::new();
    for _ in 0..tasks {
        let (scm, admin, ids, next) = (scm.clone(), admin.clone(), ids.clone(), next.clone());
        running.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(id) = ids.get(i) else { break };
                scm.apply(&admin, id, Some(&application(i)), ApiVersion::V3)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in running {
        t.await.unwrap();
    }
    started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let n: usize = arg("--certificates")
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let slots: usize = arg("--concurrency")
        .and_then(|s| s.parse().ok())
        .unwrap_or(JobSettings::default().concurrency);
    let db = BenchDb::create(arg("--database-url").as_deref(), "renewal").await;
    println!(
        "OpenSCM renewal benchmark: certificates renewed per second through the renewal sweep and \
         one `renew` job each (new EC P-256 key, signature, version stored), {n} certificates in \
         one account all due at once, {slots} job slots, store {}, beside first issuances per \
         second through Scm::apply ({slots} at once) in the same run; machine: {}",
        db.label,
        openscm_bench::machine()
    );

    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let sql_store = Arc::new(
        SqlStore::connect(&DatabaseUrl::parse(&db.url).unwrap())
            .await
            .unwrap(),
    );
    let store: Arc<dyn Store> = sql_store.clone();
    let master = Arc::new(MasterKey::generate().unwrap());
    let created = scm_core::bootstrap::run(store.as_ref(), clock.as_ref(), &master)
        .await
        .unwrap()
        .unwrap();
    let config = CoreConfig {
        quotas: scm_store::Quotas {
            certificates_per_account: (n + 1_000) as u64,
            orders_per_day: (n / PER_ORDER + 100) as u64,
            csrs_per_account: 1_000,
        },
        jobs: JobSettings {
            concurrency: slots,
            ..JobSettings::default()
        },
        ..CoreConfig::default()
    };
    let renewal_settings = config.renewal;
    let scm = Arc::new(
        Scm::open(store.clone(), clock.clone(), master, config)
            .await
            .unwrap(),
    );
    let admin = Principal {
        account: created.domain_id,
        project: created.project_id,
        access_key: created.access_key,
        method: scm_core::AuthMethod::Signature,
    };
    let mut sql = Sql::connect(&db.url).await;

    // Setup (not timed): n + 1 certificates bought, 100 an order. (Their ids run ahead of the
    // fixed clock, which the purchase moves on, as a real clock would catch up.)
    let started = Instant::now();
    let mut ids = Vec::with_capacity(n + 1);
    while ids.len() < n + 1 {
        let (_, got) = scm
            .purchase(&admin, &admin.project, &purchase_body(), ApiVersion::V3)
            .await
            .unwrap();
        ids.extend(got);
    }
    ids.truncate(n + 1);
    // The first issuance of the account loads its CA: done once before the timing, on a
    // certificate left out of the renewal (auto-renew off).
    let warm = ids.pop().unwrap();
    scm.apply(&admin, &warm, Some(&application(n)), ApiVersion::V3)
        .await
        .unwrap();
    scm.set_auto_renew(&admin, &warm, false).await.unwrap();
    println!(
        "  setup: {} certificates bought ({} orders of {PER_ORDER}, the v3 maximum) in {:.1} s",
        n + 1,
        (n + 1).div_ceil(PER_ORDER),
        started.elapsed().as_secs_f64()
    );

    // The ceiling: n first issuances.
    let issue_secs = issue_all(&scm, &admin, &ids, slots).await;
    let issue_rate = n as f64 / issue_secs;
    println!(
        "  ceiling: first issuances through Scm::apply ({slots} at once)   {n:>7} in {issue_secs:>7.1} s   {issue_rate:>7.0} /s"
    );

    // All due at once: the clock moves just past the latest renewal time (0.33 of the 365 days
    // left, spread over a tenth of that window).
    let latest = sql
        .scalar("SELECT MAX(renew_at_ms) FROM certificates".into())
        .await
        .unwrap();
    clock.set(scm_core::clock::from_unix_ms(latest + 1));
    let now = clock.now_ms();
    let due = store.renewals_due(now).await.unwrap();
    assert_eq!(due, n as u64, "every certificate due");

    // Timed: from queueing the sweep (what a server does at start and every minute) until no
    // job is due any more; the job worker runs as the server runs it.
    let supervisor = Supervisor::new();
    let started = Instant::now();
    scm.schedule_renewal_sweep().await.unwrap();
    let worker = scm.clone();
    supervisor.spawn("job-worker", move |cancel| {
        let handler: Arc<dyn JobHandler> = worker.clone();
        worker.job_runner().clone().run(handler, cancel)
    });
    let (mut last, mut moved) = (i64::MAX, Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Due jobs left: renewals, and the next sweep while the batches are full. The sweep
        // after the last batch is due a minute later (never, on this clock).
        let left = sql
            .scalar(format!(
                "SELECT COUNT(*) FROM jobs WHERE state IN ('pending', 'running') AND due_ms <= {now}"
            ))
            .await
            .unwrap();
        if left == 0 {
            break;
        }
        if left != last {
            (last, moved) = (left, Instant::now());
        }
        assert!(
            moved.elapsed() < Duration::from_secs(120),
            "no progress for 2 minutes: {left} jobs due"
        );
    }
    let renew_secs = started.elapsed().as_secs_f64();
    let renew_rate = n as f64 / renew_secs;
    supervisor.stop(Duration::from_secs(10)).await;
    scm.job_runner().drain(Duration::from_secs(10)).await;
    let sweeps = sql
        .scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'renewal-sweep' AND state = 'done'".into())
        .await
        .unwrap();
    println!(
        "  renewals: sweep + renew jobs ({slots} job slots, {sweeps} sweeps of up to {})  {n:>7} in {renew_secs:>7.1} s   {renew_rate:>7.0} /s   {:>5.1}% of first issuance",
        renewal_settings.sweep_batch,
        100.0 * renew_rate / issue_rate
    );

    // Checks: exactly two versions each, counted over the whole table and read on a sample
    // through the store; every renewal job done at its first attempt.
    let versions = sql
        .scalar(format!(
            "SELECT COUNT(*) FROM certificate_versions WHERE cert_id <> '{warm}'"
        ))
        .await
        .unwrap();
    let with_two = sql
        .scalar(format!(
            "SELECT COUNT(*) FROM (SELECT cert_id FROM certificate_versions WHERE cert_id <> '{warm}' \
             GROUP BY cert_id HAVING COUNT(*) = 2 AND MAX(seq) = 2) t"
        ))
        .await
        .unwrap();
    let done = sql
        .scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'renew' AND state = 'done'".into())
        .await
        .unwrap();
    let retried = sql
        .scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'renew' AND attempts > 1".into())
        .await
        .unwrap();
    let step = (n / 100).max(1);
    let mut sampled = 0;
    let mut sample_ok = true;
    for id in ids.iter().step_by(step) {
        let v = store.versions(id).await.unwrap();
        let cert = store.certificate(id).await.unwrap().unwrap();
        sample_ok &= v.len() == 2
            && (v[0].seq, v[1].seq) == (2, 1)
            && (v[0].reason.as_str(), v[1].reason.as_str()) == ("renewal", "issued")
            && v[0].issued.serial_hex != v[1].issued.serial_hex
            && v[0].issued.private_key_sealed.is_some()
            && v[0].issued.private_key_sealed != v[1].issued.private_key_sealed
            && cert.lifecycle.current_version == Some(2)
            && cert.issued.as_ref().map(|i| &i.serial_hex) == Some(&v[0].issued.serial_hex);
        sampled += 1;
    }
    let ok = versions == 2 * n as i64 && with_two == n as i64 && done == n as i64 && sample_ok;
    println!(
        "  check: {versions} versions of {n} certificates, {with_two} with exactly 2; {done} renew \
         jobs done, {retried} retried; sample of {sampled} read through Versions::versions: {} \
         => {}",
        if sample_ok {
            "seq 2 'renewal' over seq 1 'issued', new serial, new key, current version 2"
        } else {
            "WRONG"
        },
        if ok { "ok" } else { "FAILED" }
    );
    drop(sql);
    drop(scm);
    drop(store);
    sql_store.close().await;
    db.remove().await;
    assert!(ok, "renewal check failed");
}
