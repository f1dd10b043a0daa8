//! The certificate lifecycle after the order: proof of control of the names ([`validation`]),
//! the names a certificate may carry ([`names`]), the keys it is issued for ([`keys`]), each
//! issuance as a version under the certificate's stable id ([`versions`]), renewal before expiry
//! ([`renewal`]), and the ports through which the domain checks the outside world ([`probes`]).
//! Each job handler of the lifecycle lives in the module that owns its state; all of them run
//! on the one durable job mechanism ([`crate::jobs`]).

pub mod keys;
pub mod names;
pub mod probes;
pub mod renewal;
pub mod validation;
pub mod versions;

use std::sync::Arc;
use std::time::Duration;

use crate::auth::Principal;

/// How a person who asked for a state change is named in a certificate's history: by the
/// credential (access key) they used.
pub(crate) fn actor(p: &Principal) -> String {
    format!("user {}", p.access_key.as_str())
}

/// How domain validation works ([`validation`]); the server's `[validation]` section.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValidationSettings {
    /// An application whose names have not all passed by this long after it began ends
    /// `UNPASSED` (`deadline_days`, default 7).
    pub deadline: Duration,
    /// A name proven once needs no new check by the same account for this long (`reuse_days`,
    /// default 30; the CA/Browser Forum allows 200 days in 2026 and 10 days from 2029).
    pub reuse: Duration,
    /// The longest wait between two checks of a pending validation (checks start at once and
    /// are spaced out by half the time since the validation began, from 5 s up to this).
    pub max_interval: Duration,
}

impl Default for ValidationSettings {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(7 * 86_400),
            reuse: Duration::from_secs(30 * 86_400),
            max_interval: Duration::from_secs(300),
        }
    }
}

/// When and how certificates are renewed ([`renewal`]); the server's `[renewal]` section.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RenewalSettings {
    /// A version is renewed when this fraction of its lifetime is left (`remaining_fraction`,
    /// default 0.33); lifetimes under 10 days use at least one half.
    pub remaining_fraction: f64,
    /// How often the renewal sweep looks for due certificates (`sweep_seconds`, default 60).
    pub sweep_every: Duration,
    /// Certificates queued for renewal by one sweep at most (the next sweep runs at once when
    /// the batch was full).
    pub sweep_batch: u32,
    /// When a queued renewal has not produced a new version, the sweep looks at the
    /// certificate again after this long (`retry_minutes`, default 60).
    pub retry_after: Duration,
}

impl Default for RenewalSettings {
    fn default() -> Self {
        Self {
            remaining_fraction: 0.33,
            sweep_every: Duration::from_secs(60),
            sweep_batch: 5_000,
            retry_after: Duration::from_secs(3600),
        }
    }
}

/// The adapters domain validation checks through; `None`: this server cannot check that kind
/// of proof (every check of it fails, saying so).
#[derive(Clone)]
pub struct Probes {
    /// DNS TXT lookups (`DNS` method).
    pub txt: Option<Arc<dyn probes::TxtLookup>>,
    /// HTTP fetches of validation files (`FILE` method).
    pub files: Option<Arc<dyn probes::FileFetch>>,
    /// The port FILE validation asks the name's web server on (80 unless the operator says
    /// otherwise: a CA asks on 80).
    pub http_port: u16,
}

impl std::fmt::Debug for Probes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probes")
            .field("txt", &self.txt.is_some())
            .field("files", &self.files.is_some())
            .field("http_port", &self.http_port)
            .finish()
    }
}

impl Default for Probes {
    fn default() -> Self {
        Self {
            txt: None,
            files: None,
            http_port: 80,
        }
    }
}
