//! Read caches for the hot paths (credentials, accounts, certificates, push history), kept
//! coherent with the store:
//!
//! - a write made by this process drops the entries it touches at once;
//! - a write made by another process (the admin CLI, another server on the same PostgreSQL) moves
//!   the store's revision counter in the same transaction; a background task
//!   ([`poll_revisions`]) polls the counter every [`POLL`] and drops every cache when it moves. Such a change is therefore seen within
//!   one poll interval.
//!
//! A reader records the cache generation before it reads the store and inserts what it read only if
//! no drop happened meanwhile, so a value read just before a write can never be cached after it.
//! Writes themselves never trust the cache: status changes are conditional updates in the store.
//!
//! Certificates are cached under their account and id, and only what a lookup by both found is
//! put there: a certificate is in the cache only for its own account, so another account asking
//! for it misses, goes to the store like anyone asking for an id that was never issued, and gets
//! the same answer after the same work.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use scm_proto::{AccessKeyId, CertificateId, DomainId};
use scm_store::{AccountRecord, CertificateRecord, PushRecord, Store};
use tokio_util::sync::CancellationToken;

use crate::auth::CachedCredential;

/// How often the store's revision is polled.
pub const POLL: Duration = Duration::from_millis(100);

/// Entries per map before it is simply emptied (keeps memory bounded under odd loads).
const MAX_ENTRIES: usize = 100_000;

/// How long an access key the store does not know is remembered as unknown (a credential created
/// meanwhile moves the revision and clears this at once in every process).
pub const UNKNOWN_KEY_TTL_MS: i64 = 10_000;

/// One read cache's figures, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheStat {
    /// The cache's name (a fixed set: the label stays bounded).
    pub name: &'static str,
    /// Entries held now.
    pub entries: usize,
    /// Lookups answered from the cache since start.
    pub hits: u64,
    /// Lookups that went on to the store since start.
    pub misses: u64,
}

/// One map guarded by the shared generation.
pub(crate) struct Map<K, V> {
    name: &'static str,
    inner: RwLock<HashMap<K, V>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<K: Eq + Hash + Clone, V: Clone> Map<K, V> {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            inner: RwLock::new(HashMap::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The cached value, counted as a hit or a miss.
    pub fn get(&self, k: &K) -> Option<V> {
        let found = self.inner.read().ok().and_then(|m| m.get(k).cloned());
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn stat(&self) -> CacheStat {
        CacheStat {
            name: self.name,
            entries: self.len(),
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    fn put_if(&self, generation: &AtomicU64, seen: u64, k: K, v: V) {
        if let Ok(mut m) = self.inner.write() {
            // Checked under the lock: a drop that bumped the generation has emptied the map
            // before or after us, never between this check and the insert.
            if generation.load(Ordering::Acquire) != seen {
                return;
            }
            if m.len() >= MAX_ENTRIES {
                m.clear();
            }
            m.insert(k, v);
        }
    }

    fn len(&self) -> usize {
        self.inner.read().map(|m| m.len()).unwrap_or(0)
    }

    fn remove(&self, k: &K) {
        if let Ok(mut m) = self.inner.write() {
            m.remove(k);
        }
    }

    fn clear(&self) {
        if let Ok(mut m) = self.inner.write() {
            m.clear();
        }
    }
}

/// The caches.
pub(crate) struct ReadCache {
    generation: AtomicU64,
    pub credentials: Map<AccessKeyId, Arc<CachedCredential>>,
    /// Access keys the store does not know, until when (Unix ms).
    pub unknown_keys: Map<AccessKeyId, i64>,
    pub accounts: Map<DomainId, Arc<AccountRecord>>,
    /// Under (owning account, id): see the module documentation.
    pub certificates: Map<(DomainId, CertificateId), Arc<CertificateRecord>>,
    pub history: Map<CertificateId, Arc<Vec<PushRecord>>>,
}

impl ReadCache {
    pub fn new() -> Self {
        Self {
            generation: AtomicU64::new(0),
            credentials: Map::new("credentials"),
            unknown_keys: Map::new("unknown_keys"),
            accounts: Map::new("accounts"),
            certificates: Map::new("certificates"),
            history: Map::new("push_history"),
        }
    }

    /// The generation to pass to the `put_*` calls after reading the store.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Entries, hits and misses of each map (for metrics).
    pub fn stats(&self) -> Vec<CacheStat> {
        vec![
            self.credentials.stat(),
            self.unknown_keys.stat(),
            self.accounts.stat(),
            self.certificates.stat(),
            self.history.stat(),
        ]
    }

    /// Drops everything.
    pub fn clear(&self) {
        self.bump();
        self.credentials.clear();
        self.unknown_keys.clear();
        self.accounts.clear();
        self.certificates.clear();
        self.history.clear();
    }

    /// Drops what a write to one certificate (of `account`) may have changed.
    pub fn forget_certificate(&self, account: &DomainId, id: &CertificateId) {
        self.bump();
        self.certificates.remove(&(account.clone(), id.clone()));
        self.history.remove(id);
    }

    /// Drops one credential (and any memory of it being unknown).
    pub fn forget_credential(&self, ak: &AccessKeyId) {
        self.bump();
        self.credentials.remove(ak);
        self.unknown_keys.remove(ak);
    }

    /// Drops one account.
    pub fn forget_account(&self, id: &DomainId) {
        self.bump();
        self.accounts.remove(id);
    }

    pub fn put_credential(&self, seen: u64, k: AccessKeyId, v: Arc<CachedCredential>) {
        self.credentials.put_if(&self.generation, seen, k, v);
    }

    pub fn put_unknown_key(&self, seen: u64, k: AccessKeyId, until_ms: i64) {
        self.unknown_keys
            .put_if(&self.generation, seen, k, until_ms);
    }

    pub fn put_account(&self, seen: u64, v: Arc<AccountRecord>) {
        self.accounts
            .put_if(&self.generation, seen, v.domain_id.clone(), v);
    }

    /// Caches a certificate under its own account (the one that owns it, never the one asking).
    pub fn put_certificate(&self, seen: u64, v: Arc<CertificateRecord>) {
        self.certificates.put_if(
            &self.generation,
            seen,
            (v.domain_id.clone(), v.id.clone()),
            v,
        );
    }

    pub fn put_history(&self, seen: u64, k: CertificateId, v: Arc<Vec<PushRecord>>) {
        self.history.put_if(&self.generation, seen, k, v);
    }
}

/// Polls the store's revision and drops the caches when it moves (or when it cannot be read),
/// until `cancel` fires or the cache is dropped.
pub(crate) async fn poll_revisions(
    cache: Weak<ReadCache>,
    store: Arc<dyn Store>,
    mut last: i64,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(cache) = cache.upgrade() else { return };
        match store.revision().await {
            Ok(r) if r == last => {}
            Ok(r) => {
                last = r;
                cache.clear();
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the store revision; dropping read caches");
                cache.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_are_counted_as_hits_and_misses_and_a_stale_put_is_dropped() {
        let cache = ReadCache::new();
        let ak = AccessKeyId::try_from("AKCACHECOUNTER000001").unwrap();
        assert!(cache.unknown_keys.get(&ak).is_none());
        let seen = cache.generation();
        cache.put_unknown_key(seen, ak.clone(), 42);
        assert_eq!(cache.unknown_keys.get(&ak), Some(42));
        assert_eq!(cache.unknown_keys.get(&ak), Some(42));
        // Read before a drop, put after it: not cached.
        let before = cache.generation();
        cache.forget_credential(&ak);
        cache.put_unknown_key(before, ak.clone(), 43);
        assert!(cache.unknown_keys.get(&ak).is_none());
        let stat = cache
            .stats()
            .into_iter()
            .find(|s| s.name == "unknown_keys")
            .unwrap();
        assert_eq!((stat.entries, stat.hits, stat.misses), (0, 2, 2));
    }
}
