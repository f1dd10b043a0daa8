//! Read caches for the hot paths (credentials, accounts, certificates, push history), kept
//! coherent with the store. They come in two sides, each with its own generation and its own
//! revision counter in the store:
//!
//! - **access**: credentials, access keys known to be unknown, accounts (every request's
//!   authentication reads these);
//! - **certificates**: certificates and their push histories (these change all the time with
//!   issuance, renewal, delivery and expiry running in the background).
//!
//! A write made by this process drops the entries it touches at once and bumps its side's
//! generation. A write made by another process (the admin CLI, another server on the same
//! PostgreSQL) moves its side's revision counter in the store in the same transaction; a
//! background task ([`poll_revisions`]) polls both counters every [`POLL`] and empties the side
//! whose counter moved (both when they cannot be read). Such a change is therefore seen within one
//! poll interval, and the certificate work never empties the credential cache.
//!
//! A reader records its side's generation before it reads the store and inserts what it read only
//! if no drop happened on that side meanwhile, so a value read just before a write can never be
//! cached after it. The generation tokens are typed per side, so a reader cannot check one side's
//! generation and fill the other's map. Writes themselves never trust the cache: status changes
//! are conditional updates in the store.
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
use scm_store::{AccountRecord, CertificateRecord, PushRecord, Revisions, Store};
use tokio_util::sync::CancellationToken;

use crate::auth::CachedCredential;

/// How often the store's revisions are polled.
pub const POLL: Duration = Duration::from_millis(100);

/// Entries per map before it is simply emptied (keeps memory bounded under odd loads).
const MAX_ENTRIES: usize = 100_000;

/// How long an access key the store does not know is remembered as unknown (a credential created
/// meanwhile moves the access revision and clears this at once in every process).
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

/// The access side's generation, read before a store read whose result goes to an access map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AccessSeen(u64);

/// The certificates side's generation, read before a store read whose result goes to a
/// certificates map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CertificatesSeen(u64);

/// One map guarded by its side's generation.
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
    /// Bumped by every drop on the access side (credentials, unknown keys, accounts).
    access_gen: AtomicU64,
    /// Bumped by every drop on the certificates side (certificates, push histories).
    certificates_gen: AtomicU64,
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
            access_gen: AtomicU64::new(0),
            certificates_gen: AtomicU64::new(0),
            credentials: Map::new("credentials"),
            unknown_keys: Map::new("unknown_keys"),
            accounts: Map::new("accounts"),
            certificates: Map::new("certificates"),
            history: Map::new("push_history"),
        }
    }

    /// The access generation, to pass to `put_credential`, `put_unknown_key` and `put_account`
    /// after reading the store.
    pub fn access_generation(&self) -> AccessSeen {
        AccessSeen(self.access_gen.load(Ordering::Acquire))
    }

    /// The certificates generation, to pass to `put_certificate` and `put_history` after reading
    /// the store.
    pub fn certificates_generation(&self) -> CertificatesSeen {
        CertificatesSeen(self.certificates_gen.load(Ordering::Acquire))
    }

    /// How many times each side was dropped since start: `(access, certificates)`.
    pub fn drops(&self) -> (u64, u64) {
        (
            self.access_gen.load(Ordering::Acquire),
            self.certificates_gen.load(Ordering::Acquire),
        )
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

    /// Drops the access side.
    pub fn clear_access(&self) {
        self.access_gen.fetch_add(1, Ordering::AcqRel);
        self.credentials.clear();
        self.unknown_keys.clear();
        self.accounts.clear();
    }

    /// Drops the certificates side.
    pub fn clear_certificates(&self) {
        self.certificates_gen.fetch_add(1, Ordering::AcqRel);
        self.certificates.clear();
        self.history.clear();
    }

    /// Drops the sides whose revision moved from `last` to `now`, and remembers `now`.
    fn follow(&self, last: &mut Revisions, now: Revisions) {
        if now.access != last.access {
            self.clear_access();
        }
        if now.certificates != last.certificates {
            self.clear_certificates();
        }
        *last = now;
    }

    /// Drops what a write to one certificate (of `account`) may have changed.
    pub fn forget_certificate(&self, account: &DomainId, id: &CertificateId) {
        self.certificates_gen.fetch_add(1, Ordering::AcqRel);
        self.certificates.remove(&(account.clone(), id.clone()));
        self.history.remove(id);
    }

    /// Drops one credential (and any memory of it being unknown).
    pub fn forget_credential(&self, ak: &AccessKeyId) {
        self.access_gen.fetch_add(1, Ordering::AcqRel);
        self.credentials.remove(ak);
        self.unknown_keys.remove(ak);
    }

    /// Drops one account.
    pub fn forget_account(&self, id: &DomainId) {
        self.access_gen.fetch_add(1, Ordering::AcqRel);
        self.accounts.remove(id);
    }

    pub fn put_credential(&self, seen: AccessSeen, k: AccessKeyId, v: Arc<CachedCredential>) {
        self.credentials.put_if(&self.access_gen, seen.0, k, v);
    }

    pub fn put_unknown_key(&self, seen: AccessSeen, k: AccessKeyId, until_ms: i64) {
        self.unknown_keys
            .put_if(&self.access_gen, seen.0, k, until_ms);
    }

    pub fn put_account(&self, seen: AccessSeen, v: Arc<AccountRecord>) {
        self.accounts
            .put_if(&self.access_gen, seen.0, v.domain_id.clone(), v);
    }

    /// Caches a certificate under its own account (the one that owns it, never the one asking).
    pub fn put_certificate(&self, seen: CertificatesSeen, v: Arc<CertificateRecord>) {
        self.certificates.put_if(
            &self.certificates_gen,
            seen.0,
            (v.domain_id.clone(), v.id.clone()),
            v,
        );
    }

    pub fn put_history(&self, seen: CertificatesSeen, k: CertificateId, v: Arc<Vec<PushRecord>>) {
        self.history.put_if(&self.certificates_gen, seen.0, k, v);
    }
}

/// Polls the store's revisions and drops the side of the caches whose revision moved (both when
/// they cannot be read), until `cancel` fires or the cache is dropped.
pub(crate) async fn poll_revisions(
    cache: Weak<ReadCache>,
    store: Arc<dyn Store>,
    mut last: Revisions,
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
        match store.revisions().await {
            Ok(now) => cache.follow(&mut last, now),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the store revisions; dropping read caches");
                cache.clear_access();
                cache.clear_certificates();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use scm_proto::{Brand, CertType, CertificateStatus, DomainType, OrderId, ProjectId};
    use scm_sign::SecretKey;
    use scm_store::{CredentialStatus, LifecycleRecord, Product};

    use super::*;

    fn ak(n: u32) -> AccessKeyId {
        AccessKeyId::try_from(format!("AKCACHECOUNTER{n:06}").as_str()).unwrap()
    }

    fn account() -> DomainId {
        DomainId::try_from("0123456789abcdef0123456789abcdef").unwrap()
    }

    fn credential() -> Arc<CachedCredential> {
        Arc::new(CachedCredential {
            account: account(),
            project: ProjectId::try_from("fedcba9876543210fedcba9876543210").unwrap(),
            secret: SecretKey::new("secret".into()),
            status: CredentialStatus::Active,
        })
    }

    fn certificate() -> Arc<CertificateRecord> {
        Arc::new(CertificateRecord {
            id: CertificateId::try_from("scs1700000000001").unwrap(),
            domain_id: account(),
            project_id: ProjectId::try_from("fedcba9876543210fedcba9876543210").unwrap(),
            order_id: OrderId::new("2612031500", [1, 2, 3, 4, 5]).unwrap(),
            name: "c".into(),
            status: CertificateStatus::Paid,
            product: Product {
                brand: Brand::GlobalSign,
                cert_type: CertType::DvSsl,
                domain_type: DomainType::Single,
                effective_time: 1,
                domain_numbers: 1,
                primary_domain_type: None,
                single_domain_number: None,
                wildcard_domain_number: None,
                enterprise_project_id: "0".into(),
            },
            description: String::new(),
            tags_json: "[]".into(),
            application: None,
            issued: None,
            created_ms: 0,
            updated_ms: 0,
            issuer: None,
            chain_trust: None,
            revocation: None,
            lifecycle: LifecycleRecord::default(),
        })
    }

    fn key(c: &CertificateRecord) -> (DomainId, CertificateId) {
        (c.domain_id.clone(), c.id.clone())
    }

    #[test]
    fn lookups_are_counted_as_hits_and_misses_and_a_stale_put_is_dropped() {
        let cache = ReadCache::new();
        let ak = ak(1);
        assert!(cache.unknown_keys.get(&ak).is_none());
        let seen = cache.access_generation();
        cache.put_unknown_key(seen, ak.clone(), 42);
        assert_eq!(cache.unknown_keys.get(&ak), Some(42));
        assert_eq!(cache.unknown_keys.get(&ak), Some(42));
        // Read before a drop, put after it: not cached.
        let before = cache.access_generation();
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

    #[test]
    fn a_certificate_write_keeps_the_credentials_and_a_credential_write_the_certificates() {
        let cache = ReadCache::new();
        let cert = certificate();
        cache.put_credential(cache.access_generation(), ak(1), credential());
        cache.put_account(
            cache.access_generation(),
            Arc::new(AccountRecord {
                domain_id: account(),
                name: "a".into(),
                policy: String::new(),
                created_ms: 0,
                renew_remaining_permille: None,
            }),
        );
        cache.put_certificate(cache.certificates_generation(), cert.clone());
        cache.put_history(
            cache.certificates_generation(),
            cert.id.clone(),
            Arc::default(),
        );

        // A certificate write, here and seen from another process: credentials stay.
        let access_before = cache.access_generation();
        let certs_before = cache.certificates_generation();
        cache.forget_certificate(&cert.domain_id, &cert.id);
        assert!(cache.certificates.get(&key(&cert)).is_none());
        assert!(cache.history.get(&cert.id).is_none());
        let mut last = Revisions::default();
        cache.follow(
            &mut last,
            Revisions {
                access: 0,
                certificates: 7,
            },
        );
        assert!(cache.credentials.get(&ak(1)).is_some());
        assert!(cache.accounts.get(&account()).is_some());
        assert_eq!(cache.access_generation(), access_before);
        // A read of the access side that began before it still fills the cache...
        cache.put_credential(access_before, ak(2), credential());
        assert!(cache.credentials.get(&ak(2)).is_some());
        // ...but a certificate read that began before it does not (a stale put is refused).
        cache.put_certificate(certs_before, cert.clone());
        cache.put_history(certs_before, cert.id.clone(), Arc::default());
        assert!(cache.certificates.get(&key(&cert)).is_none());
        assert!(cache.history.get(&cert.id).is_none());
        assert_eq!(cache.drops(), (0, 2));

        // The reverse: a credential write keeps the certificates.
        cache.put_certificate(cache.certificates_generation(), cert.clone());
        let certs_before = cache.certificates_generation();
        let access_before = cache.access_generation();
        cache.forget_credential(&ak(1));
        assert!(cache.credentials.get(&ak(1)).is_none());
        assert!(cache.credentials.get(&ak(2)).is_some());
        cache.forget_account(&account());
        assert!(cache.accounts.get(&account()).is_none());
        cache.follow(
            &mut last,
            Revisions {
                access: 1,
                certificates: 7,
            },
        );
        assert!(
            cache.credentials.get(&ak(2)).is_none(),
            "another process's credential write"
        );
        assert!(cache.certificates.get(&key(&cert)).is_some());
        assert_eq!(cache.certificates_generation(), certs_before);
        cache.put_credential(access_before, ak(3), credential());
        assert!(
            cache.credentials.get(&ak(3)).is_none(),
            "stale access put refused"
        );
        cache.put_history(certs_before, cert.id.clone(), Arc::default());
        assert!(cache.history.get(&cert.id).is_some());
        assert_eq!(cache.drops(), (3, 2));

        // Nothing moved: nothing dropped.
        let same = last;
        cache.follow(&mut last, same);
        assert_eq!(cache.drops(), (3, 2));
    }
}
