//! [`JobRunner`]: claims due jobs with a lease, runs them, renews the lease while they run, and
//! records how each attempt ended.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use scm_store::{JobId, JobOutcome, JobRecord, Store, StoreError};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::task::{AbortHandle, JoinHandle};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Attempt, JobKind};
use crate::{Clock, random};

/// How the runner works; the defaults suit a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobSettings {
    /// How long a claim holds a job without renewal. A worker that dies loses its jobs to
    /// another worker this long after its last renewal (renewals happen every third of it).
    pub lease: Duration,
    /// How often the store is asked for due jobs.
    pub poll: Duration,
    /// Attempts run at once by one process.
    pub concurrency: usize,
    /// How long ended jobs (done or failed) are kept, for `openscm admin job list`.
    pub retention: Duration,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            poll: Duration::from_secs(1),
            concurrency: 8,
            retention: Duration::from_secs(30 * 86_400),
        }
    }
}

/// Runs one attempt of a job. [`crate::Scm`] is the handler of every [`JobKind`].
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// Does the job's work once. It may run again after a crash, so it must be idempotent.
    async fn attempt(&self, job: &JobRecord) -> Attempt;
}

/// What became of one attempt, for whoever waits on it (the request that asked for a push).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptReport {
    /// The job is done.
    Done,
    /// The attempt failed; `retry_at_ms` is when the job runs again, `None` if it never will.
    Failed {
        /// Why, safe to show.
        message: String,
        /// Next attempt, if any.
        retry_at_ms: Option<i64>,
    },
    /// The outcome could not be recorded (this worker lost its lease, or the store failed): the
    /// job stays with the store, and runs again.
    Lost {
        /// Why.
        reason: String,
    },
}

/// Claims and runs jobs for one process. Several runners (in several processes on one
/// PostgreSQL) share the queue; the store's leases keep them from running a job twice at once.
pub struct JobRunner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    owner: String,
    settings: JobSettings,
    tracker: TaskTracker,
    stopping: CancellationToken,
    slots: Arc<Semaphore>,
    running: Mutex<HashMap<JobId, AbortHandle>>,
    wake: Notify,
}

impl std::fmt::Debug for JobRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobRunner")
            .field("owner", &self.owner)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Aborts the task when dropped: an attempt aborted at shutdown stops its handler too.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A number in 0..1 for backoff jitter (0.5 if the system generator fails).
fn jitter() -> f64 {
    random::bytes::<8>()
        .map(|b| u64::from_le_bytes(b) as f64 / u64::MAX as f64)
        .unwrap_or(0.5)
}

impl JobRunner {
    /// A runner for this process, with a fresh worker id.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, settings: JobSettings) -> Arc<Self> {
        let suffix = random::bytes::<6>()
            .map(hex::encode)
            .unwrap_or_else(|_| "000000000000".into());
        Arc::new(Self {
            store,
            clock,
            owner: format!("{}-{suffix}", std::process::id()),
            settings,
            tracker: TaskTracker::new(),
            stopping: CancellationToken::new(),
            slots: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            running: Mutex::new(HashMap::new()),
            wake: Notify::new(),
        })
    }

    /// This worker's id, as stored in the leases it holds.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The settings.
    pub fn settings(&self) -> JobSettings {
        self.settings
    }

    /// Whether [`JobRunner::drain`] has begun: no attempt starts any more.
    pub fn is_stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    /// Makes [`JobRunner::run`] look for due jobs now rather than at its next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Claims as many due jobs as there are free slots and starts them; returns how many.
    pub async fn tick(
        self: &Arc<Self>,
        handler: &Arc<dyn JobHandler>,
    ) -> Result<usize, StoreError> {
        Ok(self.start_due(handler).await?.len())
    }

    /// Claims the due jobs (as many as there are free slots), runs them and waits for their
    /// attempts: with a fixed clock, this is how a test moves the queue forward.
    pub async fn run_due(
        self: &Arc<Self>,
        handler: &Arc<dyn JobHandler>,
    ) -> Result<Vec<AttemptReport>, StoreError> {
        let mut reports = Vec::new();
        for attempt in self.start_due(handler).await? {
            reports.push(attempt.await.unwrap_or(AttemptReport::Lost {
                reason: "the attempt was stopped".into(),
            }));
        }
        Ok(reports)
    }

    async fn start_due(
        self: &Arc<Self>,
        handler: &Arc<dyn JobHandler>,
    ) -> Result<Vec<oneshot::Receiver<AttemptReport>>, StoreError> {
        if self.stopping.is_cancelled() {
            return Ok(Vec::new());
        }
        let free = self.slots.available_permits();
        if free == 0 {
            return Ok(Vec::new());
        }
        let now = self.clock.now_ms();
        let limit = u32::try_from(free).unwrap_or(u32::MAX);
        let jobs = self
            .store
            .claim(&self.owner, now, millis(self.settings.lease), limit)
            .await?;
        let mut started = Vec::with_capacity(jobs.len());
        for job in jobs {
            match self.slots.clone().try_acquire_owned() {
                Ok(permit) => {
                    started.push(self.spawn_attempt(handler.clone(), job, permit));
                }
                // Cannot happen (we claimed no more than the free slots, and only ticks and
                // run_now take slots); give the job back rather than overrun.
                Err(_) => {
                    let _ = self.store.release(job.id, &self.owner, now).await;
                }
            }
        }
        Ok(started)
    }

    /// Claims job `id` and starts its attempt at once, returning a receiver for how it ends;
    /// `None` if the job is not claimable now (another worker has it, or it is not due) or the
    /// runner is stopping.
    pub async fn run_now(
        self: &Arc<Self>,
        handler: Arc<dyn JobHandler>,
        id: JobId,
    ) -> Result<Option<oneshot::Receiver<AttemptReport>>, StoreError> {
        if self.stopping.is_cancelled() {
            return Ok(None);
        }
        let Ok(permit) = self.slots.clone().acquire_owned().await else {
            return Ok(None);
        };
        let now = self.clock.now_ms();
        let Some(job) = self
            .store
            .claim_one(id, &self.owner, now, millis(self.settings.lease))
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(self.spawn_attempt(handler, job, permit)))
    }

    /// Polls for due jobs until `cancel` fires (then claims no more; see [`JobRunner::drain`]).
    pub async fn run(self: Arc<Self>, handler: Arc<dyn JobHandler>, cancel: CancellationToken) {
        loop {
            if let Err(e) = self.tick(&handler).await {
                tracing::warn!(error = %e, "cannot claim jobs");
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(self.settings.poll) => {}
                () = self.wake.notified() => {}
            }
        }
    }

    /// Stops claiming, lets running attempts finish for up to `grace`, then aborts the rest and
    /// gives their jobs back (released at once, the attempt not counted), so another worker
    /// or the next start runs them. Returns how many were given back.
    pub async fn drain(&self, grace: Duration) -> usize {
        self.stopping.cancel();
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
        {
            return 0;
        }
        let unfinished: Vec<(JobId, AbortHandle)> = match self.running.lock() {
            Ok(mut running) => running.drain().collect(),
            Err(_) => Vec::new(),
        };
        let mut released = 0;
        for (id, handle) in unfinished {
            handle.abort();
            match self
                .store
                .release(id, &self.owner, self.clock.now_ms())
                .await
            {
                Ok(true) => released += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(job = %id, error = %e, "cannot release a job; its lease will expire")
                }
            }
        }
        if released > 0 {
            tracing::warn!(
                released,
                "grace period over: running jobs were stopped and given back"
            );
        }
        released
    }

    fn spawn_attempt(
        self: &Arc<Self>,
        handler: Arc<dyn JobHandler>,
        job: JobRecord,
        permit: OwnedSemaphorePermit,
    ) -> oneshot::Receiver<AttemptReport> {
        let (tx, rx) = oneshot::channel();
        let id = job.id;
        let this = self.clone();
        let handle = self.tracker.spawn(async move {
            let report = this.attempt(handler, job).await;
            drop(permit);
            if let Ok(mut running) = this.running.lock() {
                running.remove(&id);
            }
            // A slot is free: look for more due work now rather than at the next poll.
            this.wake.notify_one();
            let _ = tx.send(report);
        });
        if let Ok(mut running) = self.running.lock() {
            // The attempt may already have ended (and removed nothing): keep no stale entry.
            if !handle.is_finished() {
                running.insert(id, handle.abort_handle());
            }
        }
        rx
    }

    async fn attempt(
        self: &Arc<Self>,
        handler: Arc<dyn JobHandler>,
        job: JobRecord,
    ) -> AttemptReport {
        let id = job.id;
        let Some(kind) = JobKind::parse(&job.kind) else {
            let error = format!("unknown job kind {:?}", job.kind);
            return self
                .record(id, JobOutcome::Failed { error }, Vec::new())
                .await;
        };
        if job.attempts > job.max_attempts {
            let error = format!(
                "gave up after {} attempts (the last ones did not finish: their worker stopped)",
                job.max_attempts
            );
            return self
                .record(id, JobOutcome::Failed { error }, Vec::new())
                .await;
        }
        let renewer = AbortOnDrop(tokio::spawn(renew_lease(
            self.store.clone(),
            self.clock.clone(),
            id,
            self.owner.clone(),
            self.settings.lease,
        )));
        let attempts = job.attempts;
        let shared = Arc::new(job);
        let for_handler = shared.clone();
        let mut running = AbortOnDrop(tokio::spawn(
            async move { handler.attempt(&for_handler).await },
        ));
        let attempt = match (&mut running.0).await {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(job = %id, kind = kind.as_str(), error = %e, "job attempt panicked");
                Attempt::Failed {
                    message: "the attempt failed unexpectedly".into(),
                    transient: true,
                    effects: Vec::new(),
                }
            }
        };
        drop(renewer);
        let (outcome, effects) = match attempt {
            Attempt::Done { effects } => {
                tracing::info!(job = %id, kind = kind.as_str(), attempts, "job done");
                (JobOutcome::Done, effects)
            }
            Attempt::Failed {
                message,
                transient,
                effects,
            } if !super::is_last_attempt(&shared, transient) => {
                let delay = kind.retry_policy().delay(attempts, jitter());
                let due_ms = self.clock.now_ms().saturating_add(millis(delay));
                tracing::warn!(job = %id, kind = kind.as_str(), attempts, error = %message, retry_in_ms = millis(delay), "job attempt failed; will retry");
                let outcome = JobOutcome::Retry {
                    due_ms,
                    error: message,
                };
                (outcome, effects)
            }
            Attempt::Failed {
                message, effects, ..
            } => {
                tracing::warn!(job = %id, kind = kind.as_str(), attempts, error = %message, "job failed");
                (JobOutcome::Failed { error: message }, effects)
            }
        };
        self.record(id, outcome, effects).await
    }

    /// Ends the attempt in the store (with its effects) and says how it ended.
    async fn record(
        &self,
        id: JobId,
        outcome: JobOutcome,
        effects: Vec<scm_store::JobEffect>,
    ) -> AttemptReport {
        let now = self.clock.now_ms();
        match self
            .store
            .finish(id, &self.owner, &outcome, &effects, now)
            .await
        {
            Ok(true) => match outcome {
                JobOutcome::Done => AttemptReport::Done,
                JobOutcome::Retry { due_ms, error } => AttemptReport::Failed {
                    message: error,
                    retry_at_ms: Some(due_ms),
                },
                JobOutcome::Failed { error } => AttemptReport::Failed {
                    message: error,
                    retry_at_ms: None,
                },
            },
            Ok(false) => {
                tracing::warn!(job = %id, "lost the lease of a job before recording its attempt; another worker has it");
                AttemptReport::Lost {
                    reason: "another worker took the job over".into(),
                }
            }
            Err(e) => {
                tracing::error!(job = %id, error = %e, "cannot record a job attempt; its lease will expire and it will run again");
                AttemptReport::Lost {
                    reason: "the outcome could not be stored".into(),
                }
            }
        }
    }
}

/// Renews a lease every third of its length until aborted, or until the lease is lost.
async fn renew_lease(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    id: JobId,
    owner: String,
    lease: Duration,
) {
    let every = (lease / 3).max(Duration::from_millis(50));
    loop {
        tokio::time::sleep(every).await;
        match store
            .renew_lease(id, &owner, clock.now_ms(), millis(lease))
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(job = %id, "job lease lost while running");
                return;
            }
            Err(e) => tracing::warn!(job = %id, error = %e, "cannot renew a job lease"),
        }
    }
}
