//! [`JobRunner`]: claims due jobs with a lease, runs them, renews the lease while they run (and
//! stops an attempt whose lease is lost), and records how each attempt ended.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use scm_store::{JobEffect, JobId, JobLease, JobOutcome, JobRecord, Jobs, StoreError};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::task::{AbortHandle, JoinHandle};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Attempt, JobKind, millis};
use crate::{Clock, random};

/// How the runner works; the defaults suit a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobSettings {
    /// How long a claim holds a job without renewal, on the database's clock. A worker that dies
    /// (or stalls) loses its jobs to another worker this long after its last renewal (renewals
    /// happen every third of it).
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
    ///
    /// `cancel` fires when this attempt's lease is lost (another worker may be running the job
    /// already): the handler should stop at once, and must not start anything that cannot be
    /// repeated after it fired. The runner stops waiting then, and drops the handler's future
    /// if it has not returned within [`LOST_LEASE_GRACE`]; nothing it returns is recorded.
    async fn attempt(&self, job: &JobRecord, cancel: &CancellationToken) -> Attempt;
}

/// How long an attempt whose lease was lost may take to return (to stop cleanly) after its
/// token fired, before it is dropped.
pub const LOST_LEASE_GRACE: Duration = Duration::from_secs(1);

/// The message of a failure that was a panic of the handler: a second one in a row (the last
/// error is this one) fails the job for good.
pub(super) const PANICKED: &str = "the attempt failed unexpectedly (an internal error)";

/// What became of one attempt, for whoever waits on it (the request that asked for a push).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptReport {
    /// The job is done.
    Done,
    /// The job is not ready yet: it runs again at `until_ms` (this attempt not counted).
    Waiting {
        /// Next attempt.
        until_ms: i64,
    },
    /// The attempt failed; `retry_at_ms` is when the job runs again, `None` if it never will.
    Failed {
        /// Why, safe to show.
        message: String,
        /// Next attempt, if any.
        retry_at_ms: Option<i64>,
    },
    /// The outcome could not be recorded (this worker lost its lease, before or while the
    /// handler ran, or the store failed): the job stays with the store, and runs again.
    Lost {
        /// Why.
        reason: String,
    },
}

/// Claims and runs jobs for one process. Several runners (in several processes on one
/// PostgreSQL) share the queue; the store's leases keep them from running a job twice at once.
pub struct JobRunner {
    store: Arc<dyn Jobs>,
    clock: Arc<dyn Clock>,
    owner: String,
    settings: JobSettings,
    tracker: TaskTracker,
    stopping: CancellationToken,
    slots: Arc<Semaphore>,
    running: Mutex<HashMap<JobId, (AbortHandle, JobLease)>>,
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

/// A number in 0..1 for backoff jitter (0.5 if the system generator fails).
fn jitter() -> f64 {
    random::bytes::<8>()
        .map(|b| u64::from_le_bytes(b) as f64 / u64::MAX as f64)
        .unwrap_or(0.5)
}

impl JobRunner {
    /// A runner for this process, with a fresh worker id.
    pub fn new(store: Arc<dyn Jobs>, clock: Arc<dyn Clock>, settings: JobSettings) -> Arc<Self> {
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

    /// This worker's id, as stored in the leases it holds (each claim adds its own token).
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
                    if let Some(lease) = job.lease() {
                        let _ = self.store.release(&lease, now).await;
                    }
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
        let unfinished: Vec<(AbortHandle, JobLease)> = match self.running.lock() {
            Ok(mut running) => running.drain().map(|(_, entry)| entry).collect(),
            Err(_) => Vec::new(),
        };
        let mut released = 0;
        for (handle, lease) in unfinished {
            handle.abort();
            let id = lease.id;
            match self.store.release(&lease, self.clock.now_ms()).await {
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
        let lease = job.lease();
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
        if let (Ok(mut running), Some(lease)) = (self.running.lock(), lease) {
            // The attempt may already have ended (and removed nothing): keep no stale entry.
            if !handle.is_finished() {
                running.insert(id, (handle.abort_handle(), lease));
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
        let Some(lease) = job.lease() else {
            // Cannot happen: the store hands out claimed jobs, running and leased.
            tracing::error!(job = %id, "a claimed job holds no lease");
            return AttemptReport::Lost {
                reason: "the job was not claimed".into(),
            };
        };
        let Some(kind) = JobKind::parse(&job.kind) else {
            let error = format!("unknown job kind {:?}", job.kind);
            return self
                .record(&lease, JobOutcome::Failed { error }, Vec::new())
                .await;
        };
        if job.attempts > job.max_attempts {
            let error = format!(
                "gave up after {} attempts (the last ones did not finish: their worker stopped)",
                job.max_attempts
            );
            return self
                .record(&lease, JobOutcome::Failed { error }, Vec::new())
                .await;
        }
        // Fired by the renewer when the lease is lost: the handler is told, and we stop waiting.
        let lost = CancellationToken::new();
        let renewer = AbortOnDrop(tokio::spawn(renew_lease(
            self.store.clone(),
            lease.clone(),
            self.settings.lease,
            lost.clone(),
        )));
        let attempts = job.attempts;
        let shared = Arc::new(job);
        let for_handler = shared.clone();
        let cancel = lost.clone();
        let mut running = AbortOnDrop(tokio::spawn(async move {
            handler.attempt(&for_handler, &cancel).await
        }));
        let joined = tokio::select! {
            joined = &mut running.0 => joined,
            () = lost.cancelled() => {
                // Another worker may be running the job now. Whatever this attempt returns
                // cannot be recorded (the store refuses a lost claim); give it a moment to stop
                // cleanly, then drop it.
                let stopped = tokio::time::timeout(LOST_LEASE_GRACE, &mut running.0).await.is_ok();
                drop(running);
                tracing::warn!(job = %id, kind = kind.as_str(), attempts, stopped, "job lease lost while running: the attempt was stopped and nothing of it recorded");
                return AttemptReport::Lost {
                    reason: "the job's lease was lost while it ran; another worker took it over"
                        .into(),
                };
            }
        };
        drop(renewer);
        let attempt = match joined {
            Ok(a) => a,
            Err(e) => {
                // A deterministic panic would panic again: retried once, then given up.
                let again = shared.last_error.as_deref() == Some(PANICKED);
                tracing::error!(job = %id, kind = kind.as_str(), attempts, again, error = %e, "job attempt panicked");
                Attempt::Failed {
                    message: PANICKED.into(),
                    transient: !again,
                    effects: Vec::new(),
                }
            }
        };
        let (outcome, effects) = match attempt {
            Attempt::Done { effects } => {
                tracing::info!(job = %id, kind = kind.as_str(), attempts, "job done");
                (JobOutcome::Done, effects)
            }
            Attempt::Wait { until_ms, effects } => {
                tracing::debug!(job = %id, kind = kind.as_str(), attempts, until_ms, "job not ready yet; it waits");
                (JobOutcome::Wait { due_ms: until_ms }, effects)
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
        self.record(&lease, outcome, effects).await
    }

    /// Ends the attempt in the store (with its effects) and says how it ended.
    async fn record(
        &self,
        lease: &JobLease,
        outcome: JobOutcome,
        effects: Vec<JobEffect>,
    ) -> AttemptReport {
        let id = lease.id;
        let now = self.clock.now_ms();
        match self.store.finish(lease, &outcome, &effects, now).await {
            Ok(true) => match outcome {
                JobOutcome::Done => AttemptReport::Done,
                JobOutcome::Wait { due_ms } => AttemptReport::Waiting { until_ms: due_ms },
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

/// Renews a lease every third of its length until aborted; when the store says the lease is
/// lost (expired and claimed again), fires `lost` and returns.
async fn renew_lease(
    store: Arc<dyn Jobs>,
    lease: JobLease,
    length: Duration,
    lost: CancellationToken,
) {
    let every = (length / 3).max(Duration::from_millis(50));
    loop {
        tokio::time::sleep(every).await;
        match store.renew_lease(&lease, millis(length)).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(job = %lease.id, "job lease lost while running; stopping the attempt");
                lost.cancel();
                return;
            }
            Err(e) => tracing::warn!(job = %lease.id, error = %e, "cannot renew a job lease"),
        }
    }
}
