//! The one outbound HTTP client of OpenSCM, and the egress policy that bounds it.
//!
//! Every adapter that sends HTTP to URLs users give (webhook push targets, webhook notifiers,
//! HTTP-01 self-checks) sends through [`OutboundHttp`], never through a client of its own, so
//! that the operator's [`EgressPolicy`] holds for all of them. (ACME CAs are the operator's own
//! configuration, like the mail server, and have a client of their own: see `crate::acme`.)
//!
//! ```no_run
//! # async fn demo() -> Result<(), scm_outbound::http::OutboundError> {
//! use scm_outbound::http::{EgressPolicy, OutboundHttp};
//!
//! let http = OutboundHttp::new(EgressPolicy::default())?;
//! let response = http
//!     .post_json("https://hooks.example.com/certs", Vec::new(), &serde_json::json!({"id": 1}))
//!     .await?;
//! if !response.is_success() {
//!     // a status is the caller's to judge
//! }
//! # Ok(())
//! # }
//! ```

mod client;
mod error;
mod policy;
mod resolve;
#[cfg(test)]
mod tests;

/// Re-exported: the type of [`OutboundRequest::body`] and [`OutboundResponse::body`].
pub use bytes::Bytes;
pub use client::{OutboundHttp, OutboundRequest, OutboundResponse};
pub use error::{OutboundError, OutboundErrorKind};
pub use policy::{EgressPolicy, Refusal, is_allowed};
/// Re-exported so that callers name methods and headers without depending on reqwest themselves.
pub use reqwest::Method;
/// Re-exported: the type of [`OutboundResponse::headers`].
pub use reqwest::header::HeaderMap;
pub use resolve::SystemResolver;
