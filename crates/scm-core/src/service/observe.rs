//! What an operator watches: the audit log ([`Scm::audit`], [`Scm::audit_events`]) and the
//! store-derived gauges of the metrics endpoint ([`Scm::observe`]).
//!
//! Audit records are written by a group-commit writer: every audited call hands its event over
//! and waits until the transaction holding it has committed (so an answered call is on record),
//! and events arriving meanwhile share one transaction, so a burst of writes costs one commit,
//! not one each.

use std::sync::Arc;
use std::time::{Duration, Instant};

use scm_store::{AuditEvent, AuditQuery, Store, StoreStats};
use tokio::sync::{mpsc, oneshot};

use super::Scm;
use crate::DomainError;
use crate::cache::CacheStat;

/// Events queued for the writer at most (past it, callers wait for room).
const QUEUE: usize = 4096;
/// Events per transaction at most.
const BATCH: usize = 512;
/// How long a store snapshot is served before it is read again: a scrape storm reads the store
/// once per this.
pub const SNAPSHOT_TTL_MS: i64 = 15_000;

type Ack = oneshot::Sender<Result<(), String>>;

/// The handle of the audit writer task.
pub(crate) struct AuditWriter {
    tx: mpsc::Sender<(AuditEvent, Ack)>,
}

impl AuditWriter {
    /// Starts the writer on the current runtime; it ends when the handle is dropped and what it
    /// holds is written.
    pub(crate) fn spawn(store: Arc<dyn Store>) -> Self {
        let (tx, mut rx) = mpsc::channel::<(AuditEvent, Ack)>(QUEUE);
        tokio::spawn(async move {
            let mut events = Vec::with_capacity(BATCH);
            let mut acks = Vec::with_capacity(BATCH);
            while let Some((event, ack)) = rx.recv().await {
                events.push(event);
                acks.push(ack);
                while events.len() < BATCH {
                    match rx.try_recv() {
                        Ok((event, ack)) => {
                            events.push(event);
                            acks.push(ack);
                        }
                        Err(_) => break,
                    }
                }
                let result = store.append_audit(&events).await.map_err(|e| e.to_string());
                for ack in acks.drain(..) {
                    // A caller that gave up waiting does not need the answer.
                    let _ = ack.send(result.clone());
                }
                events.clear();
            }
        });
        Self { tx }
    }
}

/// A store snapshot for the metrics endpoint.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The aggregates, or `None` when the store could not be read.
    pub stats: Option<StoreStats>,
    /// Whether the store answered a ping.
    pub store_up: bool,
    /// How long the ping took.
    pub ping: Duration,
    /// When this was taken (the clock's Unix ms).
    pub taken_ms: i64,
}

/// The read caches' figures for the metrics endpoint: counters in memory, read at every scrape.
#[derive(Debug, Clone)]
pub struct CacheFigures {
    /// Entries, hits and misses of each read cache.
    pub caches: Vec<CacheStat>,
    /// How many times the access caches (credentials, unknown keys, accounts) were dropped:
    /// writes here and changes seen from other processes.
    pub access_drops: u64,
    /// How many times the certificate caches (certificates, push histories) were dropped.
    pub certificates_drops: u64,
}

/// The snapshot cache: one refresh at a time, so concurrent scrapes wait for it instead of each
/// reading the store.
pub(crate) type SnapshotCache = tokio::sync::Mutex<Option<Arc<Snapshot>>>;

impl Scm {
    /// Records `event` in the audit log, stamped with the service's clock (its `at_ms` is
    /// replaced); returns once it is committed.
    pub async fn audit(&self, mut event: AuditEvent) -> Result<(), DomainError> {
        event.at_ms = self.clock.now_ms();
        let (ack, done) = oneshot::channel();
        self.audit
            .tx
            .send((event, ack))
            .await
            .map_err(|_| DomainError::internal("the audit writer stopped"))?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(DomainError::internal(format!(
                "cannot write the audit log: {e}"
            ))),
            Err(_) => Err(DomainError::internal("the audit writer stopped")),
        }
    }

    /// The audit events matching `q`, newest first (for the admin CLI).
    pub async fn audit_events(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>, DomainError> {
        Ok(self.store.audit_events(q).await?)
    }

    /// The read caches' figures, as they are now.
    pub fn cache_figures(&self) -> CacheFigures {
        let (access_drops, certificates_drops) = self.cache.drops();
        CacheFigures {
            caches: self.cache.stats(),
            access_drops,
            certificates_drops,
        }
    }

    /// The store's aggregates and its health, read at most once per
    /// [`SNAPSHOT_TTL_MS`] of the injected clock.
    pub async fn observe(&self) -> Arc<Snapshot> {
        let mut cached = self.snapshot.lock().await;
        let now = self.clock.now_ms();
        if let Some(s) = cached.as_ref()
            && now >= s.taken_ms
            && now - s.taken_ms < SNAPSHOT_TTL_MS
        {
            return s.clone();
        }
        let started = Instant::now();
        let store_up = match self.store.ping().await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "metrics: the store does not answer");
                false
            }
        };
        let ping = started.elapsed();
        let stats = if store_up {
            match self.store.stats(now).await {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: cannot read the store's aggregates");
                    None
                }
            }
        } else {
            None
        };
        let snapshot = Arc::new(Snapshot {
            stats,
            store_up,
            ping,
            taken_ms: now,
        });
        *cached = Some(snapshot.clone());
        snapshot
    }
}
