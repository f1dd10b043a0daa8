//! Private keys of certificates: [`KeyGenerator`] makes the keys OpenSCM holds (applications
//! without a CSR, `CreateCsr`), fairly between accounts, and keeps a pool of ready RSA keys per
//! algorithm ([`KeyPoolSettings`]) so that an RSA application seldom waits for its key.
//!
//! The pool is in memory only: its keys are never stored or logged, are wiped when dropped
//! ([`PrivateKey`] holds its DER in `Zeroizing`), and a restart starts from an empty pool. It is
//! refilled by [`KeyGenerator::refill`], a background task, one key at a time and only while no
//! request is waiting for a key: requests always come first, and when the pool is empty they
//! take the fair path they always took.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use scm_pki::{KeyAlgorithm, PrivateKey};
use scm_proto::DomainId;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::DomainError;

/// The pooled algorithms, in the order of [`KeyGenerations::pool_ready`].
const POOLED: [KeyAlgorithm; 3] = [
    KeyAlgorithm::Rsa2048,
    KeyAlgorithm::Rsa3072,
    KeyAlgorithm::Rsa4096,
];

/// How many ready keys the pool keeps per RSA algorithm (`0`: no pool for it). The RSA_2048
/// pool (the API's default algorithm) is filled from the start; the RSA_3072 and RSA_4096
/// pools only once a key of theirs has been asked for, so a server whose clients never use them
/// spends nothing on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPoolSettings {
    /// Ready RSA_2048 keys.
    pub rsa_2048: usize,
    /// Ready RSA_3072 keys.
    pub rsa_3072: usize,
    /// Ready RSA_4096 keys.
    pub rsa_4096: usize,
}

impl KeyPoolSettings {
    /// The default `[keys] rsa_pool_size`.
    pub const DEFAULT_RSA_POOL_SIZE: usize = 8;

    /// No pool: every RSA key is generated on the request path.
    pub const NONE: Self = Self {
        rsa_2048: 0,
        rsa_3072: 0,
        rsa_4096: 0,
    };

    /// The pools of the server's `[keys] rsa_pool_size`: `size` RSA_2048 keys, and a quarter of
    /// it (rounded up) of each larger size, which costs 3 to 10 times the CPU a key and is asked
    /// for less. `0` turns the pool off.
    pub fn from_rsa_pool_size(size: usize) -> Self {
        let larger = size.div_ceil(4);
        Self {
            rsa_2048: size,
            rsa_3072: larger,
            rsa_4096: larger,
        }
    }

    /// The number of ready keys kept for `algorithm` (0 for the EC ones: they take microseconds).
    pub fn target(&self, algorithm: KeyAlgorithm) -> usize {
        match algorithm {
            KeyAlgorithm::Rsa2048 => self.rsa_2048,
            KeyAlgorithm::Rsa3072 => self.rsa_3072,
            KeyAlgorithm::Rsa4096 => self.rsa_4096,
            KeyAlgorithm::EcP256 | KeyAlgorithm::EcP384 => 0,
        }
    }

    /// Whether no algorithm has a pool.
    pub fn is_none(&self) -> bool {
        POOLED.iter().all(|a| self.target(*a) == 0)
    }
}

impl Default for KeyPoolSettings {
    /// 8 RSA_2048 keys, 2 RSA_3072 and 2 RSA_4096 (once asked for): about 20 KiB of memory,
    /// and a second or two of one core to fill, at low priority.
    fn default() -> Self {
        Self::from_rsa_pool_size(Self::DEFAULT_RSA_POOL_SIZE)
    }
}

/// Generates the private keys of certificates, fairly: RSA generation (tens of milliseconds to
/// seconds of a core per key) runs off the async workers, at most `per_account` at once for one
/// account and at most one per core in all, waiting in turn; so one account's burst of RSA_4096
/// keys takes its own share, and another account's application does not wait behind it. EC keys
/// take microseconds and are made at once. An RSA key is taken from the pool when one is ready;
/// only when the pool of its algorithm is empty does the request generate it, on that fair path.
pub struct KeyGenerator {
    cores: Arc<Semaphore>,
    per_account: u32,
    accounts: Mutex<HashMap<DomainId, Arc<Semaphore>>>,
    running: AtomicUsize,
    waiting: AtomicUsize,
    pool: KeyPool,
    /// Whether the refill's threads run at nice 19 (always, but in the tests of the pool's
    /// logic: on a machine busy with other tests a nice-19 thread may wait a minute for a core).
    low_priority: bool,
}

/// RSA key generations under way and waiting for their turn, and the key pool
/// ([`KeyGenerator::counts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyGenerations {
    /// Running now, at most one per core (a refill of the pool counts: it holds a core).
    pub running: usize,
    /// Requests waiting for their account's turn or for a core.
    pub waiting: usize,
    /// Keys ready in the pool of each RSA algorithm (RSA_2048, RSA_3072, RSA_4096).
    pub pool_ready: [(KeyAlgorithm, usize); 3],
    /// RSA keys requests took from the pool since the start.
    pub from_pool: u64,
    /// RSA keys requests generated themselves (the pool empty, or off) since the start.
    pub on_request: u64,
}

/// One unit of a gauge, given back however the generation ends (a client that goes away drops
/// the future while it waits).
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(gauge: &'a AtomicUsize) -> Self {
        gauge.fetch_add(1, Ordering::SeqCst);
        Self(gauge)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Wakes the refill when a request's generation ends, however it ends: the refill waits while
/// requests wait, and must look again once they are gone.
struct WakeOnDrop<'a>(&'a Notify);

impl Drop for WakeOnDrop<'_> {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

/// The ready keys of every pooled algorithm, and what wakes their refill.
struct KeyPool {
    slots: [Slot; 3],
    /// Rung when a key is taken or a request's generation ends.
    wake: Notify,
    from_pool: AtomicU64,
    on_request: AtomicU64,
}

/// The pool of one algorithm.
struct Slot {
    algorithm: KeyAlgorithm,
    target: usize,
    /// Whether it is filled: from the start for RSA_2048, after the first request for the others.
    active: AtomicBool,
    keys: Mutex<Vec<PrivateKey>>,
}

impl Slot {
    /// The keys; a poisoned lock (a panic elsewhere while holding it) still holds whole keys.
    fn keys(&self) -> MutexGuard<'_, Vec<PrivateKey>> {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn ready(&self) -> usize {
        self.keys().len()
    }

    fn wants_key(&self) -> bool {
        self.active.load(Ordering::SeqCst) && self.ready() < self.target
    }
}

impl KeyPool {
    fn new(settings: KeyPoolSettings) -> Self {
        let slot = |algorithm| {
            let target = settings.target(algorithm);
            Slot {
                algorithm,
                target,
                active: AtomicBool::new(target > 0 && algorithm == KeyAlgorithm::Rsa2048),
                keys: Mutex::new(Vec::with_capacity(target)),
            }
        };
        Self {
            slots: POOLED.map(slot),
            wake: Notify::new(),
            from_pool: AtomicU64::new(0),
            on_request: AtomicU64::new(0),
        }
    }

    fn slot(&self, algorithm: KeyAlgorithm) -> Option<&Slot> {
        self.slots.iter().find(|s| s.algorithm == algorithm)
    }

    /// A ready key of `algorithm`, if any; a key taken wakes the refill. The first request for
    /// an algorithm switches its pool on (its refill starts once that request has its key: the
    /// request's generation wakes it as it ends).
    fn take(&self, algorithm: KeyAlgorithm) -> Option<PrivateKey> {
        let slot = self.slot(algorithm).filter(|s| s.target > 0)?;
        slot.active.store(true, Ordering::SeqCst);
        let key = slot.keys().pop()?;
        self.from_pool.fetch_add(1, Ordering::Relaxed);
        self.wake.notify_one();
        Some(key)
    }

    /// The first pool below its target, if any.
    fn wanting(&self) -> Option<&Slot> {
        self.slots.iter().find(|s| s.wants_key())
    }
}

/// What one look of the refill did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refill {
    /// Made a key of this algorithm and put it in its pool.
    Made(KeyAlgorithm),
    /// Every pool in use is at its target.
    Full,
    /// A request is waiting for its turn or a core: it comes first.
    Yielded,
    /// Every core is taken (by requests).
    Busy,
    /// The generation failed (logged).
    Failed,
}

impl std::fmt::Debug for KeyGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyGenerator")
            .field("per_account", &self.per_account)
            .finish_non_exhaustive()
    }
}

impl KeyGenerator {
    /// A generator letting each account run `per_account` RSA generations at once, one per core
    /// in all, with a pool of `pool` ready RSA keys (filled by [`KeyGenerator::refill`]).
    pub fn new(per_account: u32, pool: KeyPoolSettings) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::with_cores(per_account, pool, cores)
    }

    /// As [`KeyGenerator::new`] with `cores` generations at once in all.
    pub(crate) fn with_cores(per_account: u32, pool: KeyPoolSettings, cores: usize) -> Self {
        Self {
            cores: Arc::new(Semaphore::new(cores.max(1))),
            per_account: per_account.max(1),
            accounts: Mutex::new(HashMap::new()),
            running: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            pool: KeyPool::new(pool),
            low_priority: true,
        }
    }

    /// Whether any algorithm has a pool (else [`KeyGenerator::refill`] has nothing to do).
    pub fn has_pool(&self) -> bool {
        self.pool.slots.iter().any(|s| s.target > 0)
    }

    /// RSA generations running and waiting now, and the pool (for `/metrics`).
    pub fn counts(&self) -> KeyGenerations {
        KeyGenerations {
            running: self.running.load(Ordering::Relaxed),
            waiting: self.waiting.load(Ordering::Relaxed),
            pool_ready: self.pool.slots.each_ref().map(|s| (s.algorithm, s.ready())),
            from_pool: self.pool.from_pool.load(Ordering::Relaxed),
            on_request: self.pool.on_request.load(Ordering::Relaxed),
        }
    }

    /// A new key of `algorithm` for `account`: an RSA key from its pool when one is ready, else
    /// generated in the account's turn on a core of its own.
    pub async fn generate(
        &self,
        account: &DomainId,
        algorithm: KeyAlgorithm,
    ) -> Result<PrivateKey, DomainError> {
        if !algorithm.is_rsa() {
            return PrivateKey::generate(algorithm)
                .map_err(|e| DomainError::internal_from("key generation", e));
        }
        if let Some(key) = self.pool.take(algorithm) {
            return Ok(key);
        }
        let key = self.generate_in_turn(account, algorithm).await?;
        self.pool.on_request.fetch_add(1, Ordering::Relaxed);
        Ok(key)
    }

    /// The fair path: the account's own turn first, then a core.
    async fn generate_in_turn(
        &self,
        account: &DomainId,
        algorithm: KeyAlgorithm,
    ) -> Result<PrivateKey, DomainError> {
        // Declared first, so dropped last: after the core is given back.
        let _wake = WakeOnDrop(&self.pool.wake);
        let mine = match self.accounts.lock() {
            Ok(mut accounts) => accounts
                .entry(account.clone())
                .or_insert_with(|| {
                    Arc::new(Semaphore::new(
                        usize::try_from(self.per_account).unwrap_or(1),
                    ))
                })
                .clone(),
            Err(_) => return Err(DomainError::internal("key generator lock poisoned")),
        };
        // The account's own turn first, then a core: a burst queues behind itself.
        let waiting = Counted::new(&self.waiting);
        let _turn = mine
            .acquire_owned()
            .await
            .map_err(|e| DomainError::internal_from("key generator", e))?;
        let _core = self
            .cores
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| DomainError::internal_from("key generator", e))?;
        drop(waiting);
        let _running = Counted::new(&self.running);
        tokio::task::spawn_blocking(move || PrivateKey::generate(algorithm))
            .await?
            .map_err(|e| DomainError::internal_from("key generation", e))
    }

    /// Keeps the pools at their targets until `cancel` (a background task of the server, under
    /// the [`crate::tasks::Supervisor`]): one key at a time, each on a core no request is waiting
    /// for, on a thread of the lowest CPU priority. It sleeps while the pools are full or
    /// requests are waiting, and wakes when a key is taken or a request's generation ends: no
    /// timer.
    pub async fn refill(&self, cancel: CancellationToken) {
        loop {
            let step = tokio::select! {
                () = cancel.cancelled() => return,
                step = self.refill_once() => step,
            };
            // Look again at once after a key (requests may have come meanwhile); else sleep.
            if !matches!(step, Refill::Made(_)) {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = self.pool.wake.notified() => {}
                }
            }
        }
    }

    /// One look of the refill: makes one key for the first pool below its target, if no request
    /// is waiting and a core is free.
    async fn refill_once(&self) -> Refill {
        let Some(slot) = self.pool.wanting() else {
            return Refill::Full;
        };
        // Requests first: none may be waiting, and the core is taken only if free now. Never
        // queue for one: a refill in the queue would be served before the requests behind it.
        if self.waiting.load(Ordering::SeqCst) > 0 {
            return Refill::Yielded;
        }
        let Ok(core) = self.cores.clone().try_acquire_owned() else {
            return Refill::Busy;
        };
        let made = {
            let _running = Counted::new(&self.running);
            generate_on_own_thread(slot.algorithm, self.low_priority).await
        };
        drop(core);
        match made {
            Ok(key) => {
                slot.keys().push(key);
                Refill::Made(slot.algorithm)
            }
            Err(e) => {
                tracing::warn!(error = %e, algorithm = slot.algorithm.as_str(), "cannot refill the key pool");
                Refill::Failed
            }
        }
    }
}

/// Generates a key on a thread of its own, at the lowest CPU priority if `low_priority`. Not on
/// tokio's blocking pool: its threads are reused for requests' work, and a priority lowered
/// cannot be raised back without privilege.
async fn generate_on_own_thread(
    algorithm: KeyAlgorithm,
    low_priority: bool,
) -> Result<PrivateKey, DomainError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("openscm-keypool".into())
        .spawn(move || {
            if low_priority {
                lower_priority();
            }
            // A refill stopped meanwhile drops the key here, wiped.
            let _ = tx.send(PrivateKey::generate(algorithm));
        })
        .map_err(|e| DomainError::internal_from("key pool thread", e))?;
    rx.await
        .map_err(|e| DomainError::internal_from("key pool thread", e))?
        .map_err(|e| DomainError::internal_from("key generation", e))
}

/// Sets the calling thread's nice value to 19, the lowest priority: the refill takes only CPU
/// time requests leave. On Linux the nice value is per thread (`PRIO_PROCESS` with `who` 0 is
/// the calling thread); elsewhere it is the whole process's, so it is left alone.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(None, 19) {
        tracing::debug!(error = %e, "cannot lower the key pool thread's priority");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn account(n: &str) -> DomainId {
        DomainId::from_random([n.as_bytes()[0]; 16])
    }

    /// Waits (polling, up to 60 s: RSA keys under a loaded machine) until `done` holds.
    async fn until(what: &str, gen_: &KeyGenerator, done: impl Fn(&KeyGenerations) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let seen = gen_.counts();
            if done(&seen) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not within 60 s; last seen {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    fn ready(k: &KeyGenerations, algorithm: KeyAlgorithm) -> usize {
        k.pool_ready
            .iter()
            .find(|(a, _)| *a == algorithm)
            .map_or(usize::MAX, |(_, n)| *n)
    }

    /// A generator of `cores`, one generation at once per account, whose refill runs at normal
    /// priority (this is about the pool's logic; the priority has its own test).
    fn generator(pool: KeyPoolSettings, cores: usize) -> KeyGenerator {
        let mut g = KeyGenerator::with_cores(1, pool, cores);
        g.low_priority = false;
        g
    }

    fn pool(rsa_2048: usize, rsa_3072: usize) -> KeyPoolSettings {
        KeyPoolSettings {
            rsa_2048,
            rsa_3072,
            rsa_4096: 0,
        }
    }

    #[test]
    fn the_pool_size_of_the_config_file_gives_the_larger_sizes_a_quarter() {
        assert_eq!(
            KeyPoolSettings::default(),
            KeyPoolSettings {
                rsa_2048: 8,
                rsa_3072: 2,
                rsa_4096: 2
            }
        );
        assert_eq!(KeyPoolSettings::from_rsa_pool_size(1).rsa_4096, 1);
        assert!(KeyPoolSettings::from_rsa_pool_size(0).is_none());
        assert_eq!(
            KeyPoolSettings::NONE,
            KeyPoolSettings::from_rsa_pool_size(0)
        );
        assert_eq!(KeyPoolSettings::default().target(KeyAlgorithm::EcP256), 0);
    }

    /// A ready key is handed out as it is: no generation, no core, no turn.
    #[tokio::test]
    async fn a_ready_key_is_served_without_generating() {
        let gen_ = generator(pool(2, 0), 1);
        let pooled = PrivateKey::generate(KeyAlgorithm::Rsa2048).unwrap();
        gen_.pool
            .slot(KeyAlgorithm::Rsa2048)
            .unwrap()
            .keys()
            .push(pooled.clone());
        // Every core is taken: a key that had to be generated would wait for ever.
        let core = gen_.cores.clone().acquire_owned().await.unwrap();
        let key = tokio::time::timeout(
            Duration::from_secs(30),
            gen_.generate(&account("a"), KeyAlgorithm::Rsa2048),
        )
        .await
        .expect("the ready key was not handed out")
        .unwrap();
        assert_eq!(key.public_key_raw(), pooled.public_key_raw());
        let k = gen_.counts();
        assert_eq!((k.from_pool, k.on_request), (1, 0), "{k:?}");
        assert_eq!(ready(&k, KeyAlgorithm::Rsa2048), 0);
        // EC keys never come from a pool.
        drop(core);
        let ec = gen_
            .generate(&account("a"), KeyAlgorithm::EcP256)
            .await
            .unwrap();
        assert_eq!(ec.algorithm(), KeyAlgorithm::EcP256);
        assert_eq!(gen_.counts().from_pool, 1);
    }

    /// With the pool empty, an account's burst still queues behind itself: another account's
    /// key is made before the burst's second one.
    #[tokio::test]
    async fn an_empty_pool_falls_back_to_the_fair_path() {
        let gen_ = Arc::new(generator(pool(2, 0), 1));
        let done = Arc::new(Mutex::new(Vec::new()));
        let apply = |who: &'static str, n: usize| {
            let (gen_, done) = (gen_.clone(), done.clone());
            tokio::spawn(async move {
                let key = gen_
                    .generate(&account(who), KeyAlgorithm::Rsa2048)
                    .await
                    .unwrap();
                assert_eq!(key.algorithm(), KeyAlgorithm::Rsa2048);
                done.lock().unwrap().push(format!("{who}{n}"));
            })
        };
        // Everyone queued before the core is free, so the order is the queues' alone.
        let core = gen_.cores.clone().acquire_owned().await.unwrap();
        let burst: Vec<_> = (1..=3).map(|n| apply("a", n)).collect();
        until("the burst queued", &gen_, |k| k.waiting == 3).await;
        let calm = apply("b", 1);
        until("the other account queued", &gen_, |k| k.waiting == 4).await;
        drop(core);
        calm.await.unwrap();
        for t in burst {
            t.await.unwrap();
        }
        let order = done.lock().unwrap().clone();
        assert_eq!(order, ["a1", "b1", "a2", "a3"]);
        let k = gen_.counts();
        assert_eq!((k.from_pool, k.on_request), (0, 4), "{k:?}");
    }

    /// The refill fills the pool in the background up to its target and stops there; a key
    /// taken is replaced; a larger size is filled only once asked for.
    #[tokio::test]
    async fn the_refill_tops_the_pools_up_to_their_targets() {
        let gen_ = Arc::new(generator(pool(2, 1), 2));
        let cancel = CancellationToken::new();
        let refill = tokio::spawn({
            let (gen_, cancel) = (gen_.clone(), cancel.clone());
            async move { gen_.refill(cancel).await }
        });
        until("two RSA_2048 keys ready", &gen_, |k| {
            ready(k, KeyAlgorithm::Rsa2048) == 2
        })
        .await;
        // Full: the same look the task takes finds nothing to do, and RSA_3072, never asked
        // for, stays empty.
        assert_eq!(gen_.refill_once().await, Refill::Full);
        let k = gen_.counts();
        assert_eq!(ready(&k, KeyAlgorithm::Rsa3072), 0, "{k:?}");
        assert_eq!(k.running, 0, "{k:?}");

        gen_.generate(&account("a"), KeyAlgorithm::Rsa2048)
            .await
            .unwrap();
        until("the taken key replaced", &gen_, |k| {
            ready(k, KeyAlgorithm::Rsa2048) == 2
        })
        .await;
        // The first RSA_3072 request is made on its path, and switches its pool on.
        gen_.generate(&account("a"), KeyAlgorithm::Rsa3072)
            .await
            .unwrap();
        until("one RSA_3072 key ready", &gen_, |k| {
            ready(k, KeyAlgorithm::Rsa3072) == 1
        })
        .await;
        assert_eq!(gen_.refill_once().await, Refill::Full);
        let k = gen_.counts();
        assert_eq!((k.from_pool, k.on_request), (1, 1), "{k:?}");
        cancel.cancel();
        refill.await.unwrap();
    }

    /// With one core: the refill never queues for it; while a request waits for its account's
    /// turn (the core free), the refill does not take the core, nor while it waits for the core;
    /// once the request has its key, the refill goes on.
    #[tokio::test]
    async fn the_refill_yields_to_waiting_requests() {
        let gen_ = Arc::new(generator(pool(1, 0), 1));
        // No request waiting, the core taken (by a request running): the refill does not queue
        // for it, where it would be served before the requests that come after it.
        let running = gen_.cores.clone().acquire_owned().await.unwrap();
        let look = tokio::time::timeout(Duration::from_secs(30), gen_.refill_once())
            .await
            .expect("the refill queued for the core");
        assert_eq!(look, Refill::Busy);
        drop(running);
        let a = account("a");
        let turn = gen_
            .accounts
            .lock()
            .unwrap()
            .entry(a.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(1)))
            .clone();
        let held_turn = turn.clone().acquire_owned().await.unwrap();
        let request = tokio::spawn({
            let (gen_, a) = (gen_.clone(), a.clone());
            async move {
                let key = gen_.generate(&a, KeyAlgorithm::Rsa2048).await.unwrap();
                // Read in the same poll as the key came back: nothing else ran in between.
                (key, gen_.counts())
            }
        });
        until("the request waiting for its turn", &gen_, |k| {
            k.waiting == 1
        })
        .await;
        assert_eq!(gen_.cores.available_permits(), 1, "the core is free");
        assert_eq!(gen_.refill_once().await, Refill::Yielded);
        assert_eq!(
            gen_.cores.available_permits(),
            1,
            "the refill took the core"
        );

        // Now the request waits for the core, held here.
        let held_core = gen_.cores.clone().acquire_owned().await.unwrap();
        drop(held_turn);
        // The turn is the request's now; let it run up to the core's queue.
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        assert_eq!(turn.available_permits(), 0);
        assert_eq!(gen_.counts().waiting, 1);
        let look = tokio::time::timeout(Duration::from_secs(30), gen_.refill_once())
            .await
            .expect("the refill queued for the core");
        assert_eq!(look, Refill::Yielded);

        // The background refill, started now, must leave the core to the request too.
        let cancel = CancellationToken::new();
        let refill = tokio::spawn({
            let (gen_, cancel) = (gen_.clone(), cancel.clone());
            async move { gen_.refill(cancel).await }
        });
        drop(held_core);
        let (key, at_return) = request.await.unwrap();
        assert_eq!(key.algorithm(), KeyAlgorithm::Rsa2048);
        assert_eq!(
            (
                ready(&at_return, KeyAlgorithm::Rsa2048),
                at_return.on_request
            ),
            (0, 1),
            "the refill made a key before the waiting request: {at_return:?}"
        );
        until("the refill after the request", &gen_, |k| {
            ready(k, KeyAlgorithm::Rsa2048) == 1
        })
        .await;
        cancel.cancel();
        refill.await.unwrap();
    }

    /// The refill's thread, and only it, runs at the lowest priority.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_refill_thread_runs_at_the_lowest_priority() {
        assert!(KeyGenerator::new(1, KeyPoolSettings::NONE).low_priority);
        let mine = rustix::process::getpriority_process(None).unwrap();
        let theirs = std::thread::spawn(|| {
            lower_priority();
            rustix::process::getpriority_process(None).unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(theirs, 19);
        assert_eq!(
            rustix::process::getpriority_process(None).unwrap(),
            mine,
            "the caller's priority is its own"
        );
    }
}
