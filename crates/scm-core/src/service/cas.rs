//! The CAs: each account has its own (made with the account; for an account made before
//! migration 0015, on first use), which issues that account's certificates and nothing else; the
//! serving CA issues the HTTPS listener's certificate and nothing else; the shared CA of a store
//! made before 0015 is retired (its CRL is still signed until its last certificate expires).
//!
//! Several servers may share one database, so the CAs are cached here but found in the store on
//! a miss, and a missing one is made by inserting it: the store's unique indexes let one of two
//! racing servers in, and the other loads the winner's.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use scm_pki::TrustAnchors;
use scm_proto::DomainId;
use scm_store::{CaRole, StoredCa};

use super::Scm;
use super::import::BUILTIN_CA_SOURCE;
use super::revocation::crl_job;
use crate::DomainError;
use crate::issuance::{BuiltinCa, new_ca, tenant_ca_name};

/// The CAs loaded so far, by id, and the live one of each account.
#[derive(Default)]
pub(crate) struct CaCache {
    by_id: RwLock<HashMap<String, Arc<BuiltinCa>>>,
    live: RwLock<HashMap<DomainId, Arc<BuiltinCa>>>,
    serving: RwLock<Option<Arc<BuiltinCa>>>,
}

impl CaCache {
    fn by_id(&self, id: &str) -> Option<Arc<BuiltinCa>> {
        self.by_id.read().ok().and_then(|m| m.get(id).cloned())
    }

    fn live(&self, account: &DomainId) -> Option<Arc<BuiltinCa>> {
        self.live.read().ok().and_then(|m| m.get(account).cloned())
    }

    fn serving(&self) -> Option<Arc<BuiltinCa>> {
        self.serving.read().ok().and_then(|s| s.clone())
    }

    fn put(&self, ca: &Arc<BuiltinCa>) {
        if let Ok(mut m) = self.by_id.write() {
            m.insert(ca.ca_id(), ca.clone());
        }
        if ca.is_retired() {
            return;
        }
        match (ca.role(), ca.account()) {
            (CaRole::Tenant, Some(account)) => {
                if let Ok(mut m) = self.live.write() {
                    m.insert(account.clone(), ca.clone());
                }
            }
            (CaRole::Serving, _) => {
                if let Ok(mut s) = self.serving.write() {
                    *s = Some(ca.clone());
                }
            }
            _ => {}
        }
    }
}

/// The roots an account's clients trust.
#[derive(Debug, Clone)]
pub struct AccountRoots {
    /// The id of the account's live CA (its CRL is `/crl/<id>.crl`).
    pub ca_id: String,
    /// The root of the account's live CA, PEM: every certificate issued to the account from now
    /// on chains to it.
    pub root_pem: String,
    /// The roots of the retired CAs that issued certificates of the account (the shared CA of a
    /// store made before migration 0015), PEM: its older certificates chain to one of them.
    pub retired_root_pems: Vec<String>,
}

impl AccountRoots {
    /// Every root, the live one first, as one PEM bundle.
    pub fn bundle(&self) -> String {
        let mut out = self.root_pem.clone();
        for pem in &self.retired_root_pems {
            if !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(pem);
        }
        out
    }
}

impl Scm {
    fn load_ca(&self, stored: &StoredCa) -> Result<Arc<BuiltinCa>, DomainError> {
        // Serving certificates carry no CRL distribution point: nothing they issue is revoked.
        let endpoint = match stored.role {
            CaRole::Serving => None,
            CaRole::Tenant | CaRole::Shared => self.config.public_endpoint.as_deref(),
        };
        let ca = Arc::new(BuiltinCa::open(stored, self.master.clone(), endpoint)?);
        self.cas.put(&ca);
        Ok(ca)
    }

    /// A CA by id, live or retired; `None` when the store has none of that id.
    pub async fn ca_by_id(&self, id: &str) -> Result<Option<Arc<BuiltinCa>>, DomainError> {
        if let Some(ca) = self.cas.by_id(id) {
            return Ok(Some(ca));
        }
        match self.store.ca_by_id(id).await? {
            Some(stored) => Ok(Some(self.load_ca(&stored)?)),
            None => Ok(None),
        }
    }

    /// The live CA of `account`, made now if it has none (an account made before migration
    /// 0015).
    pub async fn tenant_ca(&self, account: &DomainId) -> Result<Arc<BuiltinCa>, DomainError> {
        if let Some(ca) = self.cas.live(account) {
            return Ok(ca);
        }
        if let Some(stored) = self.store.live_ca(CaRole::Tenant, Some(account)).await? {
            return self.load_ca(&stored);
        }
        let record = self
            .account(account)
            .await?
            .ok_or(DomainError::OtherTenant)?;
        let made = new_ca(
            &self.master,
            CaRole::Tenant,
            Some(account),
            &tenant_ca_name(account, &record.name),
            self.clock.now(),
        )
        .await?;
        if self.store.insert_ca(&made).await? {
            tracing::info!(account = %account, ca = %made.id, "made the account's CA");
            self.store
                .enqueue(&crl_job(&made.id, self.clock.now_ms())?)
                .await?;
            return self.load_ca(&made);
        }
        // Another server made it first.
        let stored = self
            .store
            .live_ca(CaRole::Tenant, Some(account))
            .await?
            .ok_or_else(|| DomainError::internal("the account's CA was neither made nor found"))?;
        self.load_ca(&stored)
    }

    /// The CA of the HTTPS listener's certificate, made now if the store has none.
    pub async fn serving_ca(&self) -> Result<Arc<BuiltinCa>, DomainError> {
        if let Some(ca) = self.cas.serving() {
            return Ok(ca);
        }
        if let Some(stored) = self.store.live_ca(CaRole::Serving, None).await? {
            return self.load_ca(&stored);
        }
        let made = new_ca(
            &self.master,
            CaRole::Serving,
            None,
            "OpenSCM HTTPS",
            self.clock.now(),
        )
        .await?;
        if self.store.insert_ca(&made).await? {
            tracing::info!(ca = %made.id, "made the serving CA");
            return self.load_ca(&made);
        }
        let stored = self
            .store
            .live_ca(CaRole::Serving, None)
            .await?
            .ok_or_else(|| DomainError::internal("the serving CA was neither made nor found"))?;
        self.load_ca(&stored)
    }

    /// The roots `account`'s clients trust: its live CA's (made now if it has none) and those of
    /// the retired CAs that issued its certificates.
    pub async fn account_roots(&self, account: &DomainId) -> Result<AccountRoots, DomainError> {
        let live = self.tenant_ca(account).await?;
        let mut retired_root_pems: Vec<String> = self
            .store
            .cas_of_account(account)
            .await?
            .into_iter()
            .filter(|c| c.retired_ms.is_some())
            .map(|c| c.ca.root_cert_pem)
            .collect();
        if let Some(shared) = self.shared_ca_id.as_deref()
            && let Some(ca) = self.ca_by_id(shared).await?
        {
            retired_root_pems.push(ca.root_pem().to_owned());
        }
        Ok(AccountRoots {
            ca_id: live.ca_id(),
            root_pem: live.root_pem().to_owned(),
            retired_root_pems,
        })
    }

    /// The roots of the bootstrap account (the account of `credentials.json`), for
    /// `DATA_DIR/ca-root.pem`.
    pub async fn bootstrap_account_roots(&self) -> Result<AccountRoots, DomainError> {
        let id = self
            .store
            .meta("bootstrapped")
            .await?
            .ok_or_else(|| DomainError::internal("the store is not bootstrapped"))?;
        let account = DomainId::try_from(id)
            .map_err(|_| DomainError::internal("the bootstrap account id does not parse"))?;
        self.account_roots(&account).await
    }

    /// What an import of `account` is trusted for reaching: the machine's trust store
    /// ([`crate::CoreConfig::import_trust`]) and the roots of the account's own CAs, not
    /// another account's.
    pub(super) async fn import_anchors(
        &self,
        account: &DomainId,
    ) -> Result<Arc<TrustAnchors>, DomainError> {
        let own = self.store.cas_of_account(account).await?;
        if own.is_empty() {
            return Ok(self.config.import_trust.clone());
        }
        let mut anchors = (*self.config.import_trust).clone();
        for ca in &own {
            let (_, unreadable) = anchors.add_pem(&ca.ca.root_cert_pem, BUILTIN_CA_SOURCE);
            if unreadable > 0 {
                return Err(DomainError::internal(format!(
                    "the root certificate of CA {} does not parse",
                    ca.id
                )));
            }
        }
        Ok(Arc::new(anchors))
    }

    /// Records the shared CA of a store made before migration 0015 as retired (once, whichever
    /// server starts first) and returns its id; `None` for a store made since.
    pub(super) async fn retire_shared_ca(&self) -> Result<Option<String>, DomainError> {
        let Some(rec) = self.store.ca().await? else {
            return Ok(None);
        };
        let ca = BuiltinCa::load(&rec, self.master.clone(), None)?;
        let stored = StoredCa {
            id: ca.ca_id(),
            role: CaRole::Shared,
            domain_id: None,
            ca: rec,
            retired_ms: Some(self.clock.now_ms()),
        };
        self.store.retire_shared_ca(&stored).await?;
        Ok(Some(stored.id))
    }
}
