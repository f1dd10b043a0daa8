//! The runner over a real store, with test handlers: waits, panics, and an attempt whose lease is
//! lost while it runs (on SQLite, and on PostgreSQL when `OPENSCM_TEST_PG_URL` names a server).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use scm_store::{
    DatabaseUrl, JobEffect, JobId, JobLease, JobOutcome, JobRecord, JobState, Jobs, NewJob,
    SqlStore, StoreError,
};
use time::macros::datetime;
use tokio_util::sync::CancellationToken;

use super::{Attempt, AttemptReport, JobHandler, JobRunner, JobSettings};
use crate::{Clock, FixedClock};

type Result<T> = std::result::Result<T, StoreError>;

async fn sqlite_store() -> (Arc<SqlStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::sqlite_file(&dir.path().join("t.db"));
    (Arc::new(SqlStore::connect(&url).await.unwrap()), dir)
}

fn fixed_clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::new(datetime!(2026-11-23 12:00 UTC)))
}

/// A job of a kind the runner knows (the test handlers do not look at it).
fn job(due_ms: i64, max_attempts: u32) -> NewJob {
    NewJob {
        kind: "notify".into(),
        payload: "{}".into(),
        dedupe_key: None,
        due_ms,
        max_attempts,
        created_ms: due_ms,
    }
}

/// The job an attempt queues as its effect: counting them counts the effects recorded. Due far
/// ahead, so that no runner claims it.
fn marker() -> NewJob {
    NewJob {
        kind: "marker".into(),
        payload: "{}".into(),
        dedupe_key: None,
        due_ms: i64::MAX / 2,
        max_attempts: 1,
        created_ms: 0,
    }
}

async fn markers(store: &dyn Jobs) -> usize {
    store
        .jobs(None, 1000)
        .await
        .unwrap()
        .iter()
        .filter(|j| j.kind == "marker")
        .count()
}

/// What a scripted attempt does.
enum Step {
    Done(Vec<JobEffect>),
    Wait(Duration, Vec<JobEffect>),
    Fail(&'static str),
    Panic,
}

/// A handler that plays a script, one step per attempt.
struct Scripted {
    clock: Arc<FixedClock>,
    script: Mutex<VecDeque<Step>>,
}

impl Scripted {
    fn new(clock: &Arc<FixedClock>, steps: Vec<Step>) -> Arc<Self> {
        Arc::new(Self {
            clock: clock.clone(),
            script: Mutex::new(steps.into()),
        })
    }

    fn left(&self) -> usize {
        self.script.lock().unwrap().len()
    }
}

#[async_trait]
impl JobHandler for Scripted {
    async fn attempt(&self, _: &JobRecord, _: &CancellationToken) -> Attempt {
        let step = self.script.lock().unwrap().pop_front();
        match step.expect("an attempt past the end of the script") {
            Step::Done(effects) => Attempt::Done { effects },
            Step::Wait(d, effects) => Attempt::Wait {
                until_ms: self.clock.now_ms() + i64::try_from(d.as_millis()).unwrap(),
                effects,
            },
            Step::Fail(message) => Attempt::Failed {
                message: message.into(),
                transient: true,
                effects: Vec::new(),
            },
            Step::Panic => panic!("a handler bug"),
        }
    }
}

/// "Not ready yet": a job that waits is due again at the time it names, its effects recorded,
/// its attempt not counted (here, four claims of a job allowed two attempts) and its last error
/// kept.
#[tokio::test]
async fn a_job_that_waits_runs_again_at_its_time_uncounted() {
    let (store, _dir) = sqlite_store().await;
    let clock = fixed_clock();
    let runner = JobRunner::new(store.clone(), clock.clone(), JobSettings::default());
    let handler = Scripted::new(
        &clock,
        vec![
            Step::Fail("the CA is busy"),
            Step::Wait(Duration::from_secs(60), vec![JobEffect::Enqueue(marker())]),
            Step::Wait(Duration::from_secs(60), Vec::new()),
            Step::Done(Vec::new()),
        ],
    );
    let dyn_handler: Arc<dyn JobHandler> = handler.clone();
    let id = store.enqueue(&job(clock.now_ms(), 2)).await.unwrap();
    let first = runner.run_due(&dyn_handler).await.unwrap();
    assert!(
        matches!(
            first.as_slice(),
            [AttemptReport::Failed {
                retry_at_ms: Some(_),
                ..
            }]
        ),
        "{first:?}"
    );
    clock.advance(time::Duration::seconds(10));
    let until_ms = clock.now_ms() + 60_000;
    assert_eq!(
        runner.run_due(&dyn_handler).await.unwrap(),
        vec![AttemptReport::Waiting { until_ms }]
    );
    let waiting = store.job(id).await.unwrap().unwrap();
    assert_eq!(
        (
            waiting.state,
            waiting.attempts,
            waiting.due_ms,
            waiting.last_error.as_deref()
        ),
        (JobState::Pending, 1, until_ms, Some("the CA is busy"))
    );
    assert_eq!(markers(store.as_ref()).await, 1, "the wait's effect");
    clock.advance(time::Duration::seconds(59));
    assert!(
        runner.run_due(&dyn_handler).await.unwrap().is_empty(),
        "not before its time"
    );
    clock.advance(time::Duration::seconds(1));
    let until_ms = clock.now_ms() + 60_000;
    assert_eq!(
        runner.run_due(&dyn_handler).await.unwrap(),
        vec![AttemptReport::Waiting { until_ms }]
    );
    clock.advance(time::Duration::seconds(60));
    assert_eq!(
        runner.run_due(&dyn_handler).await.unwrap(),
        vec![AttemptReport::Done]
    );
    let done = store.job(id).await.unwrap().unwrap();
    assert_eq!((done.state, done.attempts), (JobState::Done, 2));
    assert_eq!(handler.left(), 0);
    assert_eq!(markers(store.as_ref()).await, 1);
}

/// A panic is a failure that may pass (retried) unless the attempt before it panicked too: a
/// panic that repeats fails the job for good, whatever attempts it had left.
#[tokio::test]
async fn a_second_panic_in_a_row_fails_the_job_for_good() {
    let (store, _dir) = sqlite_store().await;
    let clock = fixed_clock();
    let runner = JobRunner::new(store.clone(), clock.clone(), JobSettings::default());
    let handler = Scripted::new(
        &clock,
        vec![
            Step::Panic,
            Step::Fail("timed out"),
            Step::Panic,
            Step::Panic,
        ],
    );
    let dyn_handler: Arc<dyn JobHandler> = handler.clone();
    let id = store.enqueue(&job(clock.now_ms(), 10)).await.unwrap();
    let mut reports = Vec::new();
    for _ in 0..4 {
        reports.extend(runner.run_due(&dyn_handler).await.unwrap());
        clock.advance(time::Duration::hours(1));
    }
    let retried: Vec<Option<bool>> = reports
        .iter()
        .map(|r| match r {
            AttemptReport::Failed { retry_at_ms, .. } => Some(retry_at_ms.is_some()),
            _ => None,
        })
        .collect();
    assert_eq!(
        retried,
        vec![Some(true), Some(true), Some(true), Some(false)],
        "panic (retried), failure, panic (retried: the one before did not panic), panic \
         (given up): {reports:?}"
    );
    let failed = store.job(id).await.unwrap().unwrap();
    assert_eq!((failed.state, failed.attempts), (JobState::Failed, 4));
    assert_eq!(failed.last_error.as_deref(), Some(super::runner::PANICKED));
    assert!(runner.run_due(&dyn_handler).await.unwrap().is_empty());
}

/// The store of a worker whose lease renewals stall (a paused process, a network partition to
/// the database) until the test lets them through.
struct StallingRenewals {
    inner: Arc<dyn Jobs>,
    stalled: tokio::sync::watch::Sender<bool>,
}

#[async_trait]
impl Jobs for StallingRenewals {
    async fn enqueue(&self, job: &NewJob) -> Result<JobId> {
        self.inner.enqueue(job).await
    }
    async fn claim(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<JobRecord>> {
        self.inner.claim(owner, now_ms, lease_ms, limit).await
    }
    async fn claim_one(
        &self,
        id: JobId,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<JobRecord>> {
        self.inner.claim_one(id, owner, now_ms, lease_ms).await
    }
    async fn renew_lease(&self, lease: &JobLease, lease_ms: i64) -> Result<bool> {
        let mut stalled = self.stalled.subscribe();
        let _ = stalled.wait_for(|s| !*s).await;
        self.inner.renew_lease(lease, lease_ms).await
    }
    async fn finish(
        &self,
        lease: &JobLease,
        outcome: &JobOutcome,
        effects: &[JobEffect],
        now_ms: i64,
    ) -> Result<bool> {
        self.inner.finish(lease, outcome, effects, now_ms).await
    }
    async fn release(&self, lease: &JobLease, now_ms: i64) -> Result<bool> {
        self.inner.release(lease, now_ms).await
    }
    async fn hasten(&self, id: JobId, now_ms: i64) -> Result<bool> {
        self.inner.hasten(id, now_ms).await
    }
    async fn job(&self, id: JobId) -> Result<Option<JobRecord>> {
        self.inner.job(id).await
    }
    async fn jobs(&self, state: Option<JobState>, limit: u32) -> Result<Vec<JobRecord>> {
        self.inner.jobs(state, limit).await
    }
    async fn purge_finished(&self, before_ms: i64) -> Result<u64> {
        self.inner.purge_finished(before_ms).await
    }
    async fn watch_enqueued(&self, wake: &(dyn Fn() + Send + Sync)) -> Result<()> {
        self.inner.watch_enqueued(wake).await
    }
}

/// Sets its flag when dropped: tells that a handler's future was dropped.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A handler whose first attempt hangs past its lease and never returns on its own: it either
/// ignores its token (and is dropped) or, told to stop, answers "done" with an effect anyway (a
/// handler that finished its work too late). Later attempts are done with that effect.
struct Hanging {
    ignores_cancel: bool,
    first: Mutex<Option<CancellationToken>>,
    first_dropped: Arc<AtomicBool>,
    calls: AtomicU32,
}

#[async_trait]
impl JobHandler for Hanging {
    async fn attempt(&self, job: &JobRecord, cancel: &CancellationToken) -> Attempt {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let done = || Attempt::Done {
            effects: vec![JobEffect::Enqueue(marker())],
        };
        if job.attempts > 1 {
            return done();
        }
        let _dropped = SetOnDrop(self.first_dropped.clone());
        *self.first.lock().unwrap() = Some(cancel.clone());
        if self.ignores_cancel {
            std::future::pending::<()>().await;
        } else {
            cancel.cancelled().await;
        }
        done()
    }
}

/// Waits for `what` on a deadline, polling (the leases run on real time).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The lease of a running attempt is lost (its renewals stalled past it, and another worker
/// claimed the job): the first attempt's token fires, its runner stops waiting for it and reports
/// it lost, and the job's effects are recorded once, by the second worker.
async fn a_lost_lease_stops_the_attempt(store: Arc<dyn Jobs>, ignores_cancel: bool) {
    let clock = fixed_clock();
    let (stalled, _) = tokio::sync::watch::channel(false);
    let paused: Arc<dyn Jobs> = Arc::new(StallingRenewals {
        inner: store.clone(),
        stalled: stalled.clone(),
    });
    let short = JobSettings {
        lease: Duration::from_millis(300),
        ..JobSettings::default()
    };
    let first = JobRunner::new(paused, clock.clone(), short);
    let second = JobRunner::new(store.clone(), clock.clone(), JobSettings::default());
    assert_ne!(first.owner(), second.owner());
    let handler = Arc::new(Hanging {
        ignores_cancel,
        first: Mutex::new(None),
        first_dropped: Arc::new(AtomicBool::new(false)),
        calls: AtomicU32::new(0),
    });
    let dyn_handler: Arc<dyn JobHandler> = handler.clone();
    let id = store.enqueue(&job(clock.now_ms(), 5)).await.unwrap();
    let markers_before = markers(store.as_ref()).await;

    stalled.send_replace(true);
    let first_report = first
        .run_now(dyn_handler.clone(), id)
        .await
        .unwrap()
        .expect("claimed");
    eventually("the first attempt starts", || async {
        handler.first.lock().unwrap().is_some()
    })
    .await;
    let token = handler.first.lock().unwrap().clone().unwrap();
    // No renewal gets through: once the lease runs out (300 ms of the database's clock), the
    // second worker claims the job and does it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let second_reports = loop {
        let reports = second.run_due(&dyn_handler).await.unwrap();
        if !reports.is_empty() {
            break reports;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second worker never took the job over: {:?}",
            store.job(id).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(second_reports, vec![AttemptReport::Done]);
    assert!(
        !token.is_cancelled(),
        "the first worker does not know yet: its renewals stall"
    );
    // Its next renewal gets through, and finds the lease lost.
    stalled.send_replace(false);
    let report = tokio::time::timeout(Duration::from_secs(10), first_report)
        .await
        .expect("the first runner stops waiting for its attempt")
        .unwrap();
    assert!(matches!(report, AttemptReport::Lost { .. }), "{report:?}");
    assert!(token.is_cancelled(), "the first attempt was told");
    assert!(
        handler.first_dropped.load(Ordering::SeqCst),
        "the first attempt was stopped"
    );
    let job = store.job(id).await.unwrap().unwrap();
    assert_eq!(
        (job.state, job.attempts, job.lease_token),
        (JobState::Done, 2, 2)
    );
    assert_eq!(handler.calls.load(Ordering::SeqCst), 2);
    assert_eq!(
        markers(store.as_ref()).await - markers_before,
        1,
        "the effects, once"
    );
    assert!(second.run_due(&dyn_handler).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_lost_lease_stops_a_hanging_attempt_on_sqlite() {
    let (store, _dir) = sqlite_store().await;
    a_lost_lease_stops_the_attempt(store, true).await;
}

#[tokio::test]
async fn a_lost_lease_discards_a_late_answer_on_sqlite() {
    let (store, _dir) = sqlite_store().await;
    a_lost_lease_stops_the_attempt(store, false).await;
}

#[tokio::test]
async fn a_lost_lease_stops_a_hanging_attempt_on_postgres() {
    let Some(db) = PgDb::create().await else {
        return;
    };
    a_lost_lease_stops_the_attempt(db.store.clone(), true).await;
    a_lost_lease_stops_the_attempt(db.store.clone(), false).await;
    db.drop().await;
}

/// A throwaway database on the PostgreSQL server named by `OPENSCM_TEST_PG_URL` (as the storage
/// suite makes them): `None` on a developer machine that did not set it, a failure under
/// `CI=true`.
struct PgDb {
    name: String,
    admin: sqlx::PgConnection,
    store: Arc<SqlStore>,
}

impl PgDb {
    async fn create() -> Option<Self> {
        use sqlx::Connection;
        let base = match std::env::var("OPENSCM_TEST_PG_URL") {
            Ok(url) if !url.trim().is_empty() => url,
            _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("OPENSCM_TEST_PG_URL is not set under CI=true")
            }
            _ => {
                eprintln!("PostgreSQL runner test not run: set OPENSCM_TEST_PG_URL");
                return None;
            }
        };
        let (head, tail) = base.split_once("://").unwrap();
        let (host, rest) = tail.split_once('/').unwrap_or((tail, ""));
        let query = rest
            .split_once('?')
            .map(|(_, q)| format!("?{q}"))
            .unwrap_or_default();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("scm_core_t_{}_{nanos}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(&format!("{head}://{host}/postgres{query}"))
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let url = DatabaseUrl::parse(&format!("{head}://{host}/{name}{query}")).unwrap();
        let store = Arc::new(SqlStore::connect(&url).await.unwrap());
        Some(Self { name, admin, store })
    }

    async fn drop(mut self) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut self.admin)
        .await
        .unwrap();
    }
}
