//! [`Scm`]: the domain operations the API calls, one method per operation, grouped by concern:
//! [`authentication`] (signatures, tokens, scopes), [`certificates`] (purchase, application,
//! issuance, listing, export), [`push`] (delivery to targets and history) and [`admin`] (accounts,
//! projects, credentials, policies for the CLI).

mod admin;
mod authentication;
mod certificates;
mod listing;
mod push;

use std::collections::HashMap;
use std::sync::Arc;

use scm_pki::MasterKey;
use scm_proto::{AccessKeyId, DomainId, ProjectId};
use scm_sign::SecretKey;
use scm_store::{Store, TokenRecord};
use zeroize::Zeroizing;

use crate::cache::{self, ReadCache};
use crate::deploy::PushTarget;
use crate::issuance::BuiltinCa;
use crate::{Clock, DomainError};

pub use listing::parse_list_query;

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
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            max_skew: time::Duration::minutes(15),
            token_ttl: time::Duration::hours(24),
            leaf_validity: time::Duration::days(365),
            push_targets: Vec::new(),
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
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    master: Arc<MasterKey>,
    ca: Arc<BuiltinCa>,
    config: CoreConfig,
    cache: Arc<ReadCache>,
    target_locks: HashMap<String, Arc<tokio::sync::Mutex<()>>>,
}

impl std::fmt::Debug for Scm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scm").finish_non_exhaustive()
    }
}

/// Whether a certificate type needs the organisation validated (the OV and EV products).
fn is_organisation_validated(cert_type: &str) -> bool {
    cert_type.starts_with("OV_") || cert_type.starts_with("EV_")
}

impl Scm {
    /// Builds the service over a store that [`crate::bootstrap::run`] has prepared (which also
    /// checks the master key against it).
    pub async fn open(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        master: Arc<MasterKey>,
        config: CoreConfig,
    ) -> Result<Self, DomainError> {
        let rec = store
            .ca()
            .await?
            .ok_or_else(|| DomainError::Internal("the store has no CA: bootstrap first".into()))?;
        let ca = Arc::new(BuiltinCa::load(&rec, &master)?);
        let cache = Arc::new(ReadCache::new());
        let revision = store.revision().await?;
        cache::spawn_poller(Arc::downgrade(&cache), store.clone(), revision);
        let target_locks = config
            .push_targets
            .iter()
            .map(|t| (t.name.clone(), Arc::new(tokio::sync::Mutex::new(()))))
            .collect();
        Ok(Self {
            store,
            clock,
            master,
            ca,
            config,
            cache,
            target_locks,
        })
    }

    /// The root certificate of the built-in CA.
    pub fn ca_root_pem(&self) -> &str {
        self.ca.root_pem()
    }

    /// The store (for the admin CLI).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}
