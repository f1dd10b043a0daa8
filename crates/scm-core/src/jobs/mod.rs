//! Durable jobs: work that must happen outside a request, and must happen even if the process
//! that asked for it dies (pushes and their retries, notifications, the expiry sweep, CRL
//! signing; validation checks, renewals and ACME orders next). A job is a row in the store
//! ([`scm_store::Jobs`]); a [`JobRunner`] claims due jobs with a lease, runs them through a
//! [`JobHandler`], and records each attempt's outcome together with its effects on the store, in
//! one transaction.
//!
//! An attempt ends ([`Attempt`]) in one of three ways:
//! - **done**: the job will not run again;
//! - **wait** ([`Attempt::Wait`]): not ready yet (an order the CA is still processing, a DNS
//!   record not visible yet), look again at `until_ms`. The job goes back to `pending`, due
//!   then; the attempt is not counted against the kind's limit and the last error is kept. It is
//!   logged at debug level: waiting is normal. Nothing bounds a series of waits: a handler that
//!   waits must give up by itself (on its own deadline, e.g. from `created_ms`);
//! - **failed**: retried with exponential backoff and jitter, up to an attempt limit per
//!   [`JobKind`]; then (or at once, for a permanent failure) the job is `failed` with the
//!   reason. A handler that panics fails transiently; a second panic in a row fails the job for
//!   good (a panic that repeats is a bug, not an outage).
//!
//! Every outcome is recorded with its effects ([`scm_store::JobEffect`]) in one transaction.
//!
//! **Leases and fencing.** A claim leases the job to one worker, and the runner renews the lease
//! every third of its length while the handler runs. Lease times are the database's clock
//! (SQLite's or the PostgreSQL server's), so that servers whose clocks differ agree on when a
//! lease has expired; a worker that dies or stalls loses the job to another one a lease length
//! after its last renewal. Each claim gets its own token ([`scm_store::JobLease`]): renewing,
//! recording the outcome (and its effects) and releasing are conditional on that claim, so an
//! attempt whose lease expired is never recorded, even if the same worker claimed the job again.
//! When a renewal finds the lease lost, the runner fires the attempt's [`CancellationToken`]
//! (given to [`JobHandler::attempt`]), stops waiting for it (dropping it after
//! [`LOST_LEASE_GRACE`]) and reports [`AttemptReport::Lost`]. Effects outside the store (a
//! delivery, a call to a CA) may still happen twice around a lost lease: handlers stay
//! idempotent, and check the token before a step that must not be repeated.
//!
//! Due times (`due_ms`, backoff, waits) come from the [`crate::Clock`], so tests drive them with
//! a fixed clock and [`JobRunner::run_due`] instead of sleeping; lease expiry is real time.
//!
//! [`CancellationToken`]: tokio_util::sync::CancellationToken

mod runner;

use std::time::Duration;

use scm_store::{JobEffect, NewJob};

pub use runner::{AttemptReport, JobHandler, JobRunner, JobSettings, LOST_LEASE_GRACE};

/// What a job does. The stored `kind` is [`JobKind::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Deliver a certificate to the push targets of one push request.
    Deliver,
    /// Send one notification through one notifier.
    Notify,
    /// The recurring sweep that queues expiry reminders (one live job per store).
    Reminders,
    /// Sign and store the CRL of one CA (one live job per CA): at once after a revocation, and
    /// again before the last one lapses.
    Crl,
    /// Check the domain validation of one application, and issue when it passes (one live job
    /// per certificate).
    Validate,
    /// Renew one version of one certificate (one job per certificate and version).
    Renew,
    /// The recurring sweep that queues renewals of due certificates (one live job per store).
    RenewalSweep,
    /// The recurring check that targets still serve what was delivered to them (one live job
    /// per store).
    DriftSweep,
    /// One step of the issuance of one version through the brand's issuers (an ACME order;
    /// one live job per certificate and version).
    AcmeOrder,
    /// Ask an ACME CA for the renewal window of one version (ARI; one live job per version).
    AriCheck,
}

impl JobKind {
    /// Every kind.
    pub const ALL: [Self; 10] = [
        Self::Deliver,
        Self::Notify,
        Self::Reminders,
        Self::Crl,
        Self::Validate,
        Self::Renew,
        Self::RenewalSweep,
        Self::DriftSweep,
        Self::AcmeOrder,
        Self::AriCheck,
    ];

    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deliver => "deliver",
            Self::Notify => "notify",
            Self::Reminders => "reminders",
            Self::Crl => "crl",
            Self::Validate => "validate",
            Self::Renew => "renew",
            Self::RenewalSweep => "renewal-sweep",
            Self::DriftSweep => "drift-sweep",
            Self::AcmeOrder => "acme-order",
            Self::AriCheck => "ari-check",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// A job of this kind with its (encoded) `payload`, made and due at `due_ms`, with the
    /// kind's attempt limit.
    pub fn job(self, payload: String, dedupe_key: Option<String>, due_ms: i64) -> NewJob {
        NewJob {
            kind: self.as_str().into(),
            payload,
            dedupe_key,
            due_ms,
            max_attempts: self.retry_policy().max_attempts,
            created_ms: due_ms,
        }
    }

    /// How often and how patiently a job of this kind is retried.
    pub fn retry_policy(self) -> RetryPolicy {
        match self {
            // A target that is down for a while (a reload failing, a server restarting) is
            // retried for about a day: 30 s, 1 min, 2 min, ... capped at 1 h between attempts.
            Self::Deliver => RetryPolicy {
                max_attempts: 30,
                base: Duration::from_secs(30),
                cap: Duration::from_secs(3600),
            },
            // A receiver that is down is retried for a few hours: 10 s, 20 s, ... capped at 30 min.
            Self::Notify => RetryPolicy {
                max_attempts: 12,
                base: Duration::from_secs(10),
                cap: Duration::from_secs(1800),
            },
            // The sweep queues its own next run when it ends; a store outage is waited out
            // (1 min, 2 min, ... capped at 1 h, for about a week) before the sweep is given up
            // (and queued again by the next server start).
            Self::Reminders => RetryPolicy {
                max_attempts: 200,
                base: Duration::from_secs(60),
                cap: Duration::from_secs(3600),
            },
            // A CRL must be re-signed before it lapses: a store outage is retried soon and
            // often (30 s, 1 min, ... capped at 15 min, for about two days, well within the
            // third of its validity left when its refresh is due); then the next server start
            // queues it again.
            Self::Crl => RetryPolicy {
                max_attempts: 200,
                base: Duration::from_secs(30),
                cap: Duration::from_secs(900),
            },
            // Checks wait on the outside world without counting an attempt ([`not_yet`]);
            // what counts is a failure of the store or the CA: retried often (5 s ... 5 min),
            // for about a day.
            Self::Validate => RetryPolicy {
                max_attempts: 300,
                base: Duration::from_secs(5),
                cap: Duration::from_secs(300),
            },
            // A renewal that fails (CA or store) is retried for about two days (30 s ... 1 h);
            // then the sweep queues it again after `[renewal] retry_minutes`, while the version
            // is still good.
            Self::Renew => RetryPolicy {
                max_attempts: 60,
                base: Duration::from_secs(30),
                cap: Duration::from_secs(3600),
            },
            // Waiting on the CA or the user does not count ([`not_yet`]); what counts is a
            // failure of the store or of this server: retried often (5 s ... 10 min), for about
            // a day.
            Self::AcmeOrder => RetryPolicy {
                max_attempts: 200,
                base: Duration::from_secs(5),
                cap: Duration::from_secs(600),
            },
            // A CA that does not answer its ARI endpoint: asked again (1 min ... 1 h) for a few
            // days; the version keeps its own schedule meanwhile.
            Self::AriCheck => RetryPolicy {
                max_attempts: 100,
                base: Duration::from_secs(60),
                cap: Duration::from_secs(3600),
            },
            Self::RenewalSweep | Self::DriftSweep => RetryPolicy {
                max_attempts: 200,
                base: Duration::from_secs(30),
                cap: Duration::from_secs(900),
            },
        }
    }
}

/// "Not ready yet, look again at `until_ms`": an attempt that waits on the outside world (a DNS
/// record not there yet).
pub fn not_yet(until_ms: i64) -> Attempt {
    Attempt::Wait {
        until_ms,
        effects: Vec::new(),
    }
}

/// An attempt that failed for good: retrying it will not help.
pub(crate) fn give_up(message: String) -> Attempt {
    Attempt::Failed {
        message,
        transient: false,
        effects: Vec::new(),
    }
}

/// An attempt that could not read the store: retried; the cause is logged (with `what`, the
/// work that needed it), not recorded on the job.
pub(crate) fn store_unavailable(what: &str, cause: &dyn std::fmt::Display) -> Attempt {
    tracing::warn!(error = %cause, "{what}: the store is unavailable");
    Attempt::Failed {
        message: "the store is unavailable".into(),
        transient: true,
        effects: Vec::new(),
    }
}

/// A duration in milliseconds, the unit job times are kept in (saturating).
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Whether an attempt of `job` that failed (`transient` or not) is its last: the one rule the
/// runner retries by, and handlers use to act when a job is given up.
pub fn is_last_attempt(job: &scm_store::JobRecord, transient: bool) -> bool {
    !transient || job.attempts >= job.max_attempts
}

/// Exponential backoff with jitter and an attempt limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts (claims) before the job fails for good.
    pub max_attempts: u32,
    /// Delay after the first failed attempt.
    pub base: Duration,
    /// Longest delay between attempts.
    pub cap: Duration,
}

impl RetryPolicy {
    /// The delay before the attempt after attempt number `attempt` (1-based) failed:
    /// `min(cap, base * 2^(attempt-1))`, of which the upper half is jittered by `jitter` (0..1),
    /// so that many jobs failing together do not retry together ("equal jitter").
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let full = self
            .base
            .saturating_mul(1u32 << exp)
            .min(self.cap)
            .max(Duration::from_millis(1));
        let half = full / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

/// How one attempt of a job ended, as its handler decides.
#[derive(Debug)]
pub enum Attempt {
    /// It worked; the job is done.
    Done {
        /// Changes to the store that are part of the work, recorded with the job's end.
        effects: Vec<JobEffect>,
    },
    /// Not ready yet: look again at `until_ms` (e.g. a CA's `Retry-After`). The job is due
    /// then; this attempt is not counted and the last error is kept.
    Wait {
        /// When to look again ([`crate::Clock`] time, Unix ms).
        until_ms: i64,
        /// Changes to the store that are part of this attempt (e.g. progress to keep).
        effects: Vec<JobEffect>,
    },
    /// It did not work.
    Failed {
        /// Why, safe to show to the account.
        message: String,
        /// Whether a later attempt may succeed (then the job is retried, within its policy).
        transient: bool,
        /// Changes to the store that are part of this attempt (e.g. the failed push record).
        effects: Vec<JobEffect>,
    },
}

#[cfg(test)]
mod runner_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let p = RetryPolicy {
            max_attempts: 10,
            base: Duration::from_secs(30),
            cap: Duration::from_secs(3600),
        };
        assert_eq!(p.delay(1, 1.0), Duration::from_secs(30));
        assert_eq!(p.delay(1, 0.0), Duration::from_secs(15));
        assert_eq!(p.delay(2, 1.0), Duration::from_secs(60));
        assert_eq!(p.delay(3, 0.5), Duration::from_secs(90));
        assert_eq!(p.delay(8, 1.0), Duration::from_secs(3600), "capped");
        assert_eq!(p.delay(60, 1.0), Duration::from_secs(3600), "no overflow");
        for attempt in 1..20 {
            let d = p.delay(attempt, 0.37);
            assert!(d >= p.delay(attempt, 0.0) && d <= p.delay(attempt, 1.0));
        }
    }

    #[test]
    fn kinds_round_trip() {
        for k in JobKind::ALL {
            assert_eq!(JobKind::parse(k.as_str()), Some(k));
            assert!(k.retry_policy().max_attempts >= 1);
        }
    }
}
