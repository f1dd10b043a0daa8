//! Private keys of certificates: [`KeyGenerator`] makes the keys OpenSCM holds (applications
//! without a CSR, `CreateCsr`), fairly between accounts.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use scm_pki::{KeyAlgorithm, PrivateKey};
use scm_proto::DomainId;

use crate::DomainError;

/// Generates the private keys of certificates, fairly: RSA generation (tens of milliseconds to
/// seconds of a core per key) runs off the async workers, at most `per_account` at once for one
/// account and at most one per core in all, waiting in turn; so one account's burst of RSA_4096
/// keys takes its own share, and another account's application does not wait behind it. EC keys
/// take microseconds and are made at once.
pub struct KeyGenerator {
    cores: Arc<tokio::sync::Semaphore>,
    per_account: u32,
    accounts: std::sync::Mutex<HashMap<DomainId, Arc<tokio::sync::Semaphore>>>,
    running: AtomicUsize,
    waiting: AtomicUsize,
}

/// RSA key generations under way and waiting for their turn ([`KeyGenerator::counts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyGenerations {
    /// Running now, at most one per core.
    pub running: usize,
    /// Waiting for their account's turn or for a core.
    pub waiting: usize,
}

/// One unit of a gauge, given back however the generation ends (a client that goes away drops
/// the future while it waits).
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(gauge: &'a AtomicUsize) -> Self {
        gauge.fetch_add(1, Ordering::Relaxed);
        Self(gauge)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for KeyGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyGenerator")
            .field("per_account", &self.per_account)
            .finish_non_exhaustive()
    }
}

impl KeyGenerator {
    /// A generator letting each account run `per_account` RSA generations at once.
    pub fn new(per_account: u32) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            cores: Arc::new(tokio::sync::Semaphore::new(cores)),
            per_account: per_account.max(1),
            accounts: std::sync::Mutex::new(HashMap::new()),
            running: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
        }
    }

    /// RSA generations running and waiting now (for `/metrics`).
    pub fn counts(&self) -> KeyGenerations {
        KeyGenerations {
            running: self.running.load(Ordering::Relaxed),
            waiting: self.waiting.load(Ordering::Relaxed),
        }
    }

    /// A new key of `algorithm` for `account`.
    pub async fn generate(
        &self,
        account: &DomainId,
        algorithm: KeyAlgorithm,
    ) -> Result<PrivateKey, DomainError> {
        if !algorithm.is_rsa() {
            return PrivateKey::generate(algorithm)
                .map_err(|e| DomainError::internal_from("key generation", e));
        }
        let mine = match self.accounts.lock() {
            Ok(mut accounts) => accounts
                .entry(account.clone())
                .or_insert_with(|| {
                    Arc::new(tokio::sync::Semaphore::new(
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
}
