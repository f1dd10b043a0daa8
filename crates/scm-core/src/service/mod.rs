//! [`Scm`]: the domain operations the API calls, one method per operation, grouped by concern:
//! [`authentication`] (signatures, tokens, scopes), [`certificates`] (purchase, application,
//! issuance, listing, export), [`push`] (delivery to targets through jobs, and history),
//! [`notifications`] (telling accounts what failed), [`jobs`] (running the job kinds) and
//! [`admin`] (accounts, projects, credentials, policies, jobs for the CLI); [`observe`] (the
//! audit log and the store's gauges for metrics); [`lifecycle`]
//! (delete, unsubscribe, cancel-cert); [`tags`] and [`tag_query`] (tags, and certificates found
//! by them); [`csr`] (certificate signing requests and their keys); [`import`] (certificates
//! imported with their chain and key); [`console`] (the web console's sessions and timeline);
//! [`revocation`] (revoking certificates, and each CA's CRL); [`cas`] (each account's own CA, the
//! serving CA of the HTTPS listener, and the retired shared CA of an older store).

mod admin;
mod authentication;
pub mod cas;
mod certificates;
pub mod console;
pub mod deployments;
mod jobs;
pub mod lifecycle;
mod notices;
mod notifications;
pub mod observe;
mod push;
// --- revocation ---
pub mod revocation;
pub mod tag_query;
pub mod tags;
// --- csr ---
pub mod csr;
// --- import ---
pub mod import;

use std::sync::Arc;

use scm_pki::MasterKey;
use scm_proto::{AccessKeyId, DomainId, ProjectId};
use scm_sign::SecretKey;
use scm_store::{Store, TokenRecord};
use zeroize::Zeroizing;

use crate::cache::{self, ReadCache};
use crate::deploy::PushTarget;
use crate::jobs::{JobHandler, JobRunner, JobSettings};
use crate::lifecycle::keys::{KeyGenerations, KeyGenerator, KeyPoolSettings};
use crate::notify::NotifierTarget;
use crate::tasks::Supervisor;
use crate::{Clock, DomainError};

pub use crate::cache::CacheStat;
pub use authentication::HeadCheck;
pub use certificates::{ListRequest, MAX_ID_LEAD_MS, MAX_ID_WAIT};
pub use notices::ReminderSettings;
pub use observe::{CacheFigures, Snapshot};
pub(crate) use push::ensure_pushable;

/// Settings of the domain layer.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Allowed `X-Sdk-Date` skew (default 15 minutes).
    pub max_skew: time::Duration,
    /// Lifetime of `X-Auth-Token`s (default 24 hours).
    pub token_ttl: time::Duration,
    /// Validity of issued leaves (default 365 days).
    pub leaf_validity: time::Duration,
    /// Where pushes go.
    pub push_targets: Vec<PushTarget>,
    /// Who hears about failures.
    pub notifiers: Vec<NotifierTarget>,
    /// How the job runner works.
    pub jobs: JobSettings,
    /// How long a push request waits for its first delivery attempt when another process
    /// runs it (a local attempt is always awaited: it is bounded by the targets' timeouts).
    pub push_wait: std::time::Duration,
    /// Live `X-Auth-Token`s a credential may have; a new one past it ends the oldest.
    pub max_tokens_per_credential: u32,
    /// What each account may buy.
    pub quotas: scm_store::Quotas,
    /// Server-side key generations an account may run at once (RSA keys take up to seconds of
    /// a core each): one account's burst waits for itself, not for others.
    pub keygen_per_account: u32,
    /// Ready RSA keys kept per algorithm, in memory only, so that applications seldom wait for
    /// one (default [`KeyPoolSettings::default`]; [`KeyPoolSettings::NONE`]: none). Filled by
    /// [`Scm::start_key_pool`].
    pub key_pool: KeyPoolSettings,
    /// How long audit events are kept; `None` (the default): for ever.
    pub audit_retention: Option<std::time::Duration>,
    // --- import ---
    /// The certificates an imported chain is trusted for reaching, besides the roots of the
    /// importing account's own CAs: the server gives the machine's trust store; empty by
    /// default.
    pub import_trust: Arc<scm_pki::TrustAnchors>,
    // --- revocation ---
    /// The URL clients reach the server at (the server's `public_endpoint`): leaves the accounts'
    /// CAs issue carry `<public_endpoint>/crl/<ca id>.crl` as their CRL distribution point.
    /// `None` (the default): no distribution point.
    pub public_endpoint: Option<String>,
    /// How domain validation works.
    pub validation: crate::lifecycle::ValidationSettings,
    /// When certificates are renewed.
    pub renewal: crate::lifecycle::RenewalSettings,
    /// The adapters domain validation checks through.
    pub probes: crate::lifecycle::Probes,
    /// How deliveries are verified, and how often deployments are checked for drift.
    pub delivery: crate::delivery::DeliverySettings,
    /// When expiry reminders are sent (`[notifications]`).
    pub reminders: ReminderSettings,
    /// The ACME issuers and which issuers issue each brand (`[[issuers]]`, `[brands]`).
    pub issuers: crate::issuers::IssuerSettings,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            max_skew: time::Duration::minutes(15),
            token_ttl: time::Duration::hours(24),
            leaf_validity: time::Duration::days(365),
            push_targets: Vec::new(),
            notifiers: Vec::new(),
            jobs: JobSettings::default(),
            push_wait: std::time::Duration::from_secs(120),
            max_tokens_per_credential: 20,
            quotas: scm_store::Quotas {
                certificates_per_account: 10_000,
                orders_per_day: 1_000,
                csrs_per_account: 1_000,
            },
            keygen_per_account: 1,
            key_pool: KeyPoolSettings::default(),
            audit_retention: None,
            import_trust: Arc::new(scm_pki::TrustAnchors::new()),
            public_endpoint: None,
            validation: crate::lifecycle::ValidationSettings::default(),
            renewal: crate::lifecycle::RenewalSettings::default(),
            probes: crate::lifecycle::Probes::default(),
            delivery: crate::delivery::DeliverySettings::default(),
            reminders: ReminderSettings::default(),
            issuers: crate::issuers::IssuerSettings::default(),
        }
    }
}

/// A token just issued.
pub struct IssuedToken {
    /// The bearer value (shown once).
    pub token: Zeroizing<String>,
    /// Its record.
    pub record: TokenRecord,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"<redacted>")
            .field("record", &self.record)
            .finish()
    }
}

/// What export returns.
pub struct Export {
    /// Leaf PEM.
    pub certificate: String,
    /// Chain PEM.
    pub chain: String,
    /// Leaf followed by the chain.
    pub entire: String,
    /// Key PEM, when held.
    pub private_key: Option<Zeroizing<String>>,
}

/// A new credential.
#[derive(Debug)]
pub struct NewCredential {
    /// Access key.
    pub access_key: AccessKeyId,
    /// Secret key (shown once).
    pub secret_key: SecretKey,
    /// Account.
    pub domain_id: DomainId,
    /// Project.
    pub project_id: ProjectId,
}

/// The OpenSCM domain service.
pub struct Scm {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) master: Arc<MasterKey>,
    /// The CAs loaded so far ([`cas`]).
    pub(crate) cas: cas::CaCache,
    /// The id of the retired shared CA of a store made before migration 0015.
    pub(crate) shared_ca_id: Option<String>,
    pub(crate) config: CoreConfig,
    pub(crate) cache: Arc<ReadCache>,
    pub(crate) jobs: Arc<JobRunner>,
    pub(crate) keygen: KeyGenerator,
    pub(crate) audit: observe::AuditWriter,
    pub(crate) snapshot: observe::SnapshotCache,
}

impl std::fmt::Debug for Scm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scm").finish_non_exhaustive()
    }
}

impl Scm {
    /// Builds the service over a store that [`crate::bootstrap::run`] has prepared (which also
    /// checks the master key against it). Nothing runs in the background until
    /// [`Scm::start_background`].
    pub async fn open(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        master: Arc<MasterKey>,
        config: CoreConfig,
    ) -> Result<Self, DomainError> {
        // Checked here rather than when the first CA is loaded: a bad endpoint stops the start.
        if let Some(endpoint) = &config.public_endpoint {
            let url = revocation::crl_url(endpoint, "00");
            if !url.bytes().all(|b| b.is_ascii_graphic())
                || !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err(DomainError::invalid(
                    "public_endpoint",
                    "must be an http(s) URL of printable ASCII: leaves carry it as their CRL \
                     distribution point",
                ));
            }
        }
        let jobs = JobRunner::new(store.clone(), clock.clone(), config.jobs);
        let audit = observe::AuditWriter::spawn(store.clone());
        let mut scm = Self {
            cas: cas::CaCache::default(),
            shared_ca_id: None,
            store,
            clock,
            master,
            cache: Arc::new(ReadCache::new()),
            keygen: KeyGenerator::new(config.keygen_per_account, config.key_pool),
            jobs,
            audit,
            snapshot: tokio::sync::Mutex::new(None),
            config,
        };
        scm.shared_ca_id = scm.retire_shared_ca().await?;
        Ok(scm)
    }

    /// Starts the background work of a server under `supervisor`: the cache poller (changes made
    /// by other processes reach this one's caches), the job worker (due jobs: retries, and
    /// jobs other processes left behind) and the key pool's refill ([`Scm::start_key_pool`]).
    pub async fn start_background(
        self: &Arc<Self>,
        supervisor: &Supervisor,
    ) -> Result<(), DomainError> {
        self.start_key_pool(supervisor);
        self.schedule_reminders().await?;
        self.schedule_crl().await?;
        self.schedule_renewal_sweep().await?;
        self.schedule_drift_sweep().await?;
        let revisions = self.store.revisions().await?;
        let (cache, store) = (Arc::downgrade(&self.cache), self.store.clone());
        supervisor.spawn("cache-poller", move |cancel| {
            cache::poll_revisions(cache.clone(), store.clone(), revisions, cancel)
        });
        let scm = self.clone();
        supervisor.spawn("job-worker", move |cancel| {
            let handler: Arc<dyn JobHandler> = scm.clone();
            scm.jobs.clone().run(handler, cancel)
        });
        // Housekeeping: expired tokens and ended jobs past their retention go, once an hour.
        let scm = self.clone();
        supervisor.spawn("housekeeping", move |cancel| {
            let scm = scm.clone();
            async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
                loop {
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        _ = tick.tick() => scm.housekeeping().await,
                    }
                }
            }
        });
        // Jobs queued by other processes wake this worker at once where the store can tell.
        let (store, jobs) = (self.store.clone(), self.jobs.clone());
        supervisor.spawn("job-listener", move |cancel| {
            let (store, jobs) = (store.clone(), jobs.clone());
            async move {
                let wake = move || jobs.wake();
                tokio::select! {
                    () = cancel.cancelled() => {}
                    watched = store.watch_enqueued(&wake) => {
                        if let Err(e) = watched {
                            tracing::warn!(error = %e, "job notifications lost; polling until they are back");
                            // Pause before the supervisor reconnects.
                            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        }
                    }
                }
            }
        });
        Ok(())
    }

    /// Starts the refill of the RSA key pool under `supervisor` (part of
    /// [`Scm::start_background`]; alone, for a benchmark): it keeps the pools of
    /// [`CoreConfig::key_pool`] full at low priority, yielding to requests. Nothing with no pool.
    pub fn start_key_pool(self: &Arc<Self>, supervisor: &Supervisor) {
        if !self.keygen.has_pool() {
            return;
        }
        let scm = self.clone();
        supervisor.spawn("key-pool", move |cancel| {
            let scm = scm.clone();
            async move { scm.keygen.refill(cancel).await }
        });
    }

    /// Deletes expired tokens, ended jobs older than their retention and, when a retention is
    /// set, audit events older than it.
    pub async fn housekeeping(&self) {
        let now = self.clock.now_ms();
        match self.store.purge_expired_tokens(now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(tokens = n, "deleted expired tokens"),
            Err(e) => tracing::warn!(error = %e, "cannot delete expired tokens"),
        }
        let retention = i64::try_from(self.config.jobs.retention.as_millis()).unwrap_or(i64::MAX);
        match self
            .store
            .purge_finished(now.saturating_sub(retention))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(jobs = n, "deleted ended jobs past their retention"),
            Err(e) => tracing::warn!(error = %e, "cannot delete old jobs"),
        }
        if let Some(keep) = self.config.audit_retention {
            let keep = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
            match self.store.prune_audit(now.saturating_sub(keep)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(events = n, "deleted audit events past their retention"),
                Err(e) => tracing::warn!(error = %e, "cannot delete old audit events"),
            }
        }
    }

    /// The job runner (for draining at shutdown, and for tests that drive it by hand).
    pub fn job_runner(&self) -> &Arc<JobRunner> {
        &self.jobs
    }

    /// The configured push targets, as `(name, kind)` (the metrics label deliveries with them).
    pub fn push_target_kinds(&self) -> Vec<(String, &'static str)> {
        self.config
            .push_targets
            .iter()
            .map(|t| (t.name.clone(), t.kind))
            .collect()
    }

    /// RSA key generations running and waiting now, and the key pool.
    pub fn key_generations(&self) -> KeyGenerations {
        self.keygen.counts()
    }

    /// Which database the store runs on.
    pub fn backend(&self) -> scm_store::Backend {
        self.store.backend()
    }
}
