//! Renewal sweep benchmark: the time of one renewal sweep with 1,000,000 certificates stored
//! and 1,000 of them due, beside the same sweep with 1,000 stored and 1,000 due, measured in the
//! same run on the same kind of store. The sweep should cost what is due, not what is stored
//! (it reads the partial index `certificates_renew_due`): the ratio must stay within 2x.
//!
//! One sweep is timed two ways: the `renewal-sweep` job as a server runs it (claimed by the job
//! runner, `Versions::queue_due_renewals` moving the due certificates' renewal time on and
//! queueing one `renew` job each, the attempt recorded with the next sweep), and the store call
//! alone with the arguments the sweep passes. Each figure is the median of `--sweeps` runs; before
//! each run (not timed) the due certificates are made due again and the queued jobs deleted.
//!
//! The certificates are inserted with plain SQL in bulk (100,000 rows a statement) into one
//! account: `ISSUED`, current version 1, renewal times spread over the next 100 days but for the
//! last 1,000, due a second ago. Their rows carry no PEM material (the sweep reads the index and
//! three columns of the due rows only). On PostgreSQL the table is then `VACUUM ANALYZE`d, as
//! autovacuum does soon after a bulk load.
//!
//! `cargo run --release -p openscm-bench --bin renewal_sweep -- [--stored N] [--due N]
//!  [--sweeps N] [--database-url postgres://USER@HOST/DB (throwaway databases are made there)]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use openscm_bench::{BenchDb, Sql, arg, median};
use scm_core::jobs::{JobHandler, JobKind};
use scm_core::{Clock, CoreConfig, FixedClock, Scm};
use scm_pki::MasterKey;
use scm_proto::CertificateId;
use scm_store::{DatabaseUrl, NewJob, SqlStore, Store};

/// Same allocator as the server binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The first certificate id's millisecond (ids are `scs` and 13 digits).
const FIRST_ID_MS: i64 = 1_700_000_000_000;
/// Rows a bulk INSERT writes (one statement, one transaction).
const CHUNK: usize = 100_000;

/// The renewal job the sweep queues for version `seq` of `id`, made as the sweep makes it
/// (`scm_core::lifecycle::renewal`): for timing the store call alone.
fn renew_job(id: &CertificateId, seq: u32, now_ms: i64) -> NewJob {
    let kind = JobKind::Renew;
    NewJob {
        kind: kind.as_str().into(),
        payload: serde_json::json!({"cert": id.as_str(), "seq": seq, "manual": false}).to_string(),
        dedupe_key: Some(format!("renew:{id}:{seq}")),
        due_ms: now_ms,
        max_attempts: kind.retry_policy().max_attempts,
        created_ms: now_ms,
    }
}

/// Median times of one sweep job and of one store call, with `stored` certificates of which
/// `due` are due; and how long the seeding took.
struct Figures {
    job: Duration,
    call: Duration,
    seeded: Duration,
}

async fn measure(postgres: Option<&str>, stored: usize, due: usize, sweeps: usize) -> Figures {
    let db = BenchDb::create(postgres, &format!("sweep_{stored}")).await;
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let now = clock.now_ms();
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
    let config = CoreConfig::default();
    let renewal = config.renewal;
    let scm = Arc::new(
        Scm::open(store.clone(), clock.clone(), master, config)
            .await
            .unwrap(),
    );
    let handler: Arc<dyn JobHandler> = scm.clone();
    let mut sql = Sql::connect(&db.url).await;

    // Seed: one order, `stored` certificates in bulk, the last `due` of them due.
    let started = Instant::now();
    let (account, project) = (created.domain_id.as_str(), created.project_id.as_str());
    sql.execute(format!(
        "INSERT INTO orders (order_id, domain_id, project_id, brand, cert_type, domain_type, \
         effective_time, domain_numbers, order_number, enterprise_project_id, tags, created_ms) \
         VALUES ('bench-order', '{account}', '{project}', 'GLOBALSIGN', 'DV_SSL_CERT', \
         'SINGLE_DOMAIN', 1, 1, {stored}, '0', '[]', {now})"
    ))
    .await;
    let first_due = stored - due;
    let day = 86_400_000i64;
    let (year, lead) = (365 * day, 245 * day);
    for lo in (0..stored).step_by(CHUNK) {
        let hi = (lo + CHUNK).min(stored) - 1;
        // Certificates n < first_due are due some day in the next 100; the rest a second ago.
        let select = format!(
            "SELECT 'scs' || CAST({FIRST_ID_MS} + n AS TEXT), '{account}', '{project}', 'bench-order', \
             'cert-' || CAST(n AS TEXT), 'ISSUED', 'GLOBALSIGN', 'DV_SSL_CERT', 'SINGLE_DOMAIN', 1, 1, \
             '0', '', '[]', 'host-' || CAST(n AS TEXT) || '.sweep.test', '', 'EC_P256', \
             'ecdsa-with-SHA256', {now} - {lead}, {now} - {lead}, {now} - {lead} + {year}, \
             {now} - {lead}, {now} - {lead}, 1, \
             CASE WHEN n >= {first_due} THEN {now} - 1000 ELSE {now} + {day} * (1 + n % 100) END"
        );
        let from = if sql.is_postgres() {
            format!("{select} FROM generate_series(CAST({lo} AS BIGINT), {hi}) AS s(n)")
        } else {
            format!(
                "WITH RECURSIVE s(n) AS (SELECT {lo} UNION ALL SELECT n + 1 FROM s WHERE n < {hi}) \
                 {select} FROM s"
            )
        };
        sql.execute(format!(
            "INSERT INTO certificates (id, domain_id, project_id, order_id, name, status, brand, \
             cert_type, domain_type, effective_time, domain_numbers, enterprise_project_id, \
             description, tags, domain, sans, key_algorithm, signature_algorithm, issued_ms, \
             not_before_ms, not_after_ms, created_ms, updated_ms, current_version, renew_at_ms) \
             {from}"
        ))
        .await;
    }
    sql.execute(format!(
        "UPDATE accounts SET certificate_count = {stored} WHERE domain_id = '{account}'"
    ))
    .await;
    if sql.is_postgres() {
        sql.execute("VACUUM ANALYZE certificates".into()).await;
    }
    let seeded = started.elapsed();
    assert_eq!(
        store.renewals_due(now).await.unwrap(),
        due as u64,
        "due after seeding"
    );

    // Before each run: the due ones due again, no queued renewal or sweep left.
    let first_due_id = format!("scs{}", FIRST_ID_MS + first_due as i64);
    let reset = format!(
        "DELETE FROM jobs WHERE kind IN ('renew', 'renewal-sweep'); \
         UPDATE certificates SET renew_at_ms = {now} - 1000 WHERE id >= '{first_due_id}'"
    );
    let queued = "SELECT COUNT(*) FROM jobs WHERE kind = 'renew' AND state = 'pending'";
    let mut jobs = Vec::with_capacity(sweeps);
    let mut calls = Vec::with_capacity(sweeps);
    for _ in 0..sweeps {
        sql.execute(reset.clone()).await;
        scm.schedule_renewal_sweep().await.unwrap();
        let started = Instant::now();
        let reports = scm.job_runner().run_due(&handler).await.unwrap();
        jobs.push(started.elapsed());
        assert_eq!(
            reports,
            [scm_core::jobs::AttemptReport::Done],
            "one sweep ran"
        );
        assert_eq!(sql.scalar(queued.into()).await, Some(due as i64));

        sql.execute(reset.clone()).await;
        let next_check = now + i64::try_from(renewal.retry_after.as_millis()).unwrap();
        let make = |id: &CertificateId, seq: u32| renew_job(id, seq, now);
        let started = Instant::now();
        let got = store
            .queue_due_renewals(now, renewal.sweep_batch, next_check, &make)
            .await
            .unwrap();
        calls.push(started.elapsed());
        assert_eq!(got.len(), due);
        assert_eq!(sql.scalar(queued.into()).await, Some(due as i64));
    }
    drop(sql);
    drop((scm, handler, store));
    sql_store.close().await;
    db.remove().await;
    Figures {
        job: median(&mut jobs),
        call: median(&mut calls),
        seeded,
    }
}

#[tokio::main]
async fn main() {
    let stored: usize = arg("--stored")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let due: usize = arg("--due")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000)
        .min(stored);
    let sweeps: usize = arg("--sweeps")
        .and_then(|s| s.parse().ok())
        .unwrap_or(15)
        .max(1);
    let postgres = arg("--database-url");
    let label = if postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite (WAL, synchronous=FULL)"
    };
    println!(
        "OpenSCM renewal sweep benchmark: time of one renewal sweep (median of {sweeps}) with \
         {stored} certificates stored and {due} due, beside {due} stored and {due} due, store \
         {label}; machine: {}",
        openscm_bench::machine()
    );
    let small = measure(postgres.as_deref(), due, due, sweeps).await;
    let large = measure(postgres.as_deref(), stored, due, sweeps).await;
    println!(
        "  seeding {stored} certificates by bulk SQL: {:.1} s",
        large.seeded.as_secs_f64()
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut met = true;
    for (what, s, l) in [
        (
            "renewal-sweep job (claim, sweep, record)",
            small.job,
            large.job,
        ),
        (
            "store call queue_due_renewals alone",
            small.call,
            large.call,
        ),
    ] {
        let ratio = l.as_secs_f64() / s.as_secs_f64();
        met &= ratio <= 2.0;
        println!(
            "  {what:<42} {due:>7} stored {:>8.2} ms   {stored:>7} stored {:>8.2} ms   ratio {ratio:>5.2}   ceiling 2x: {}",
            ms(s),
            ms(l),
            if ratio <= 2.0 { "met" } else { "NOT MET" }
        );
    }
    println!(
        "  the sweep's cost follows what is due, not what is stored: {}",
        if met { "yes" } else { "NO" }
    );
}
