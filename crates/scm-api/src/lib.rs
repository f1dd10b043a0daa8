//! The HTTP face of OpenSCM: the Huawei Cloud SCM v2/v3 routes, built from the operation table of
//! `scm-proto` ([`routes`]); the guard that authenticates every request and checks its scope
//! ([`auth`]); extractors that hand handlers parsed, checked input ([`extract`]); request ids,
//! the access log and the audit records ([`request_log`]); `/metrics` ([`metrics`]); and the one mapping from domain errors to HTTP status +
//! `SCM.xxxx` code ([`error`]).
//!
//! Handlers are thin: take the typed request from the extractors, call one `scm-core` operation,
//! map the result to the wire type.
#![deny(missing_docs)]

mod address;
mod auth;
mod body;
mod challenge;
// --- console ---
mod console;
mod error;
mod extract;
pub mod fuzzing;
mod handlers;
pub mod metrics;
pub mod openapi;
mod parse;
mod request_log;
mod routes;
mod serve;
#[cfg(test)]
mod test_records;
mod throttle;
pub mod tls;
mod views;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use scm_core::Scm;

pub use error::ApiError;
pub use metrics::{Cidr, Metrics, MetricsConfig, MetricsToken};
pub use serve::{ConnectionStats, Peer, ServeLimits, serve, serve_with};
pub use throttle::RateLimit;

/// The web console's calls that the audit log records, by the names it records them under (the
/// API's are the operation table's, see `Operation::audited`).
pub const CONSOLE_AUDITED: &[&str] = &[
    console::SIGN_IN,
    console::SIGN_OUT,
    console::EXPORT,
    console::REVOKE,
    console::RENEW,
    console::AUTO_RENEW,
    console::PUSH_TARGET,
    console::PUSH_ALL,
    console::REMINDERS,
    console::DELETE,
];

/// Largest request body accepted (bytes). Certificates and CSRs are a few KiB.
pub const MAX_BODY: usize = 1024 * 1024;

/// Largest body of a console form (sign-in, sign-out, export): a few hundred bytes in practice.
pub const MAX_FORM_BODY: usize = 4 * 1024;

/// Limits of request handling (those of connections are [`ServeLimits`]).
#[derive(Debug, Clone)]
pub struct ApiLimits {
    /// Time the body of an authenticated request has to arrive.
    pub body_timeout: Duration,
    /// Time a whole request may take, from its head to its answer.
    pub request_timeout: Duration,
    /// Requests per account; `None`: unlimited.
    pub rate: Option<RateLimit>,
    /// Proxies whose `X-Forwarded-For` names the client (for the console's sign-in throttle);
    /// empty (the default): the TCP peer is the client.
    pub trusted_proxies: Arc<[Cidr]>,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self {
            body_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
            rate: Some(RateLimit {
                per_second: 100.0,
                burst: 200.0,
            }),
            trusted_proxies: Arc::from(Vec::new()),
        }
    }
}

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    /// The domain service.
    pub scm: Arc<Scm>,
    limits: ApiLimits,
    throttle: Option<Arc<throttle::Throttle>>,
}

pub use challenge::challenge_router;

/// The full router: every operation of the table behind its guard, `/metrics` readable from
/// loopback only, and 404/405 for everything else.
pub fn router(scm: Arc<Scm>, limits: ApiLimits) -> Router {
    router_with(
        scm,
        limits,
        Arc::new(Metrics::new(MetricsConfig::default())),
    )
}

/// [`router`] counting into `metrics` (whose config says who may read `/metrics`); keep the
/// handle to set what the server knows beside the API, e.g.
/// [`Metrics::with_serving`].
pub fn router_with(scm: Arc<Scm>, limits: ApiLimits, metrics: Arc<Metrics>) -> Router {
    let throttle = limits.rate.map(|r| Arc::new(throttle::Throttle::new(r)));
    routes::router(
        AppState {
            scm,
            limits,
            throttle,
        },
        metrics,
    )
}
