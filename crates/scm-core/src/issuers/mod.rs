//! Issuers: the built-in CA and ACME certificate authorities, and which of them each product
//! (brand) is issued by, in order of preference.

pub mod acme;

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
