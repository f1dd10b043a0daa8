//! Issuers: the built-in CA and ACME certificate authorities, and which of them each product
//! (brand) is issued by, in order of preference.

pub mod acme;
pub mod ari;
pub mod orders;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use crate::lifecycle::probes::TxtUpdate;

use self::acme::{AcmeCa, ChallengeKind};

/// The name of the built-in CA in `[brands]` lists; it always exists.
pub const BUILTIN: &str = "builtin";

/// One configured ACME issuer (`[[issuers]]` with `kind = "acme"`), built by the binary from
/// the adapter's configuration.
#[derive(Debug, Clone)]
pub struct AcmeIssuer {
    /// Its name in the config (`[brands]` lists name it).
    pub name: String,
    /// The CA.
    pub ca: Arc<dyn AcmeCa>,
    /// The challenge types it may use (`challenges`), in order of preference.
    pub challenges: Vec<ChallengeKind>,
    /// Automatic dns-01: where TXT records are published (`dns01`); `None`: the records are
    /// shown to the user, who publishes them.
    pub dns01: Option<Arc<dyn TxtUpdate>>,
    /// At most this many new orders per `order_window` to this CA account, counted over every
    /// server sharing the store (`max_orders`, default 100; Let's Encrypt allows 300 per 3 h).
    pub max_orders: u32,
    /// The window `max_orders` counts over (`max_orders_window_minutes`, default 180).
    pub order_window: Duration,
    /// The most names one certificate may carry at this CA (`max_names`, default 100, Let's
    /// Encrypt's limit).
    pub max_names: usize,
}

/// Which CA issues a product: one step of a brand's list.
#[derive(Debug, Clone)]
pub enum IssuerChoice {
    /// The account's own CA.
    Builtin,
    /// An ACME CA.
    Acme(Arc<AcmeIssuer>),
}

impl IssuerChoice {
    /// The issuer's name (`builtin` for the built-in CA).
    pub fn name(&self) -> &str {
        match self {
            Self::Builtin => BUILTIN,
            Self::Acme(a) => &a.name,
        }
    }
}

/// The configured issuers and which of them issue each brand, in order (`[[issuers]]` and
/// `[brands]`). A brand not listed is issued by the built-in CA, as is everything by default.
#[derive(Debug, Clone)]
pub struct IssuerSettings {
    /// The ACME issuers.
    pub acme: Vec<Arc<AcmeIssuer>>,
    /// Brand (upper case) → issuer names, tried in order. Names were checked against
    /// `acme` (and `builtin`) when the configuration was read.
    pub brands: std::collections::BTreeMap<String, Vec<String>>,
    /// ARI: the renewal window is asked for again after the CA's `Retry-After`, clamped to at
    /// least this (1 h)...
    pub ari_min_interval: Duration,
    /// ...and at most this (24 h).
    pub ari_max_interval: Duration,
}

impl Default for IssuerSettings {
    fn default() -> Self {
        Self {
            acme: Vec::new(),
            brands: std::collections::BTreeMap::new(),
            ari_min_interval: Duration::from_secs(3600),
            ari_max_interval: Duration::from_secs(86_400),
        }
    }
}

impl IssuerSettings {
    /// The ACME issuer named `name`.
    pub fn acme(&self, name: &str) -> Option<&Arc<AcmeIssuer>> {
        self.acme.iter().find(|a| a.name == name)
    }

    /// The names of the issuers of `brand`, in order (`["builtin"]` when not configured).
    pub fn names_for(&self, brand: &str) -> Vec<String> {
        self.brands
            .get(&brand.to_ascii_uppercase())
            .filter(|l| !l.is_empty())
            .cloned()
            .unwrap_or_else(|| vec![BUILTIN.to_owned()])
    }

    /// The issuer named `name` (`None`: no longer configured).
    pub fn choice(&self, name: &str) -> Option<IssuerChoice> {
        if name == BUILTIN {
            Some(IssuerChoice::Builtin)
        } else {
            self.acme(name).cloned().map(IssuerChoice::Acme)
        }
    }

    /// The first issuer of `brand`.
    pub fn first_for(&self, brand: &str) -> IssuerChoice {
        self.names_for(brand)
            .first()
            .and_then(|n| self.choice(n))
            .unwrap_or(IssuerChoice::Builtin)
    }
}

/// The `ca_id` recorded with a version an ACME issuer issued (`acme:<issuer>`).
pub fn acme_ca_id(issuer: &str) -> String {
    format!("acme:{issuer}")
}

/// The ACME issuer named by a version's `ca_id`, if an ACME issuer issued it.
pub fn acme_issuer_of(ca_id: Option<&str>) -> Option<&str> {
    ca_id.and_then(|c| c.strip_prefix("acme:"))
}
