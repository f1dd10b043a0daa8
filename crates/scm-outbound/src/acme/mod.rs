//! ACME issuers (RFC 8555, with ARI, RFC 9773): the domain's
//! [`AcmeCa`](scm_core::issuers::acme::AcmeCa) on instant-acme, and the configuration of an
//! `[[issuers]]` entry with `kind = "acme"`.
//!
//! - [`config`]: [`AcmeIssuerConfig`] (the TOML keys) and [`acme_ca`], which checks it, reads
//!   its files and builds the CA without contacting it;
//! - `client`: the calls, each stateless: the account is rebuilt from the stored credentials
//!   and the issuer's cached directory, and failures are classified for the order job
//!   ([`AcmeError`](scm_core::issuers::acme::AcmeError));
//! - `http`: instant-acme's `HttpClient` over our reqwest (rustls on aws-lc-rs, the machine's
//!   roots plus `trust_roots_file`);
//! - `ari`: the ARI certificate id and renewal window.
//!
//! How failures are classified:
//! - `Unavailable`: no answer (refused, timed out, broken off), a 5xx or `serverInternal`, a
//!   `badNonce` still refused after instant-acme's own immediate retries (three attempts), an
//!   answer that cannot be read; with the CA's `Retry-After` when it sent one;
//! - `RateLimited`: `rateLimited`, with the answer's `Retry-After` (else `None`);
//! - `Refused`: every other problem document (`unauthorized`, `rejectedIdentifier`, `caa`,
//!   `badCSR`, `externalAccountRequired`, `malformed`, `orderNotReady`, ...), a 4xx on an
//!   endpoint, an invalid order asked for its certificate, an unknown reason code;
//! - `Gone { url }`: `url` is the order asked about when the CA answers 404 for it or its
//!   parts, or when the challenge answered is not the order's; it is the account's URL (the
//!   `id` of the stored credentials) on `accountDoesNotExist`, or when the credentials were
//!   made at another `directory_url`: then a new account is needed, not just a new order;
//! - `Misconfigured`: the directory URL answers 4xx or something else than a directory, the
//!   CA's certificate is not trusted (TLS), a profile the CA does not offer, unreadable stored
//!   credentials.
//!
//! `alreadyRevoked` counts as a revocation done; `alreadyReplaced` (ARI) places the order again
//! without `replaces`. The directory is fetched on first use, kept for six hours, and fetched
//! again after a call that ended `Unavailable` or `Misconfigured`.
//!
//! The CA is reached with a reqwest client of the issuer's own rather than
//! [`OutboundHttp`](crate::http::OutboundHttp): its directory URL is the operator's
//! configuration, not a user's URL (so the egress policy, which guards users' URLs, does not
//! apply; a private or loopback CA is allowed), and it may need trust roots of its own.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use scm_outbound::acme::{AcmeIssuerConfig, acme_ca};
//!
//! let config: AcmeIssuerConfig = toml::from_str(
//!     r#"
//!     name = "pebble"
//!     kind = "acme"
//!     directory_url = "https://127.0.0.1:14000/dir"
//!     contact = "mailto:ops@shop.test"
//!     trust_roots_file = "/etc/openscm/pebble-listener-ca.pem"
//!     "#,
//! )?;
//! let ca = acme_ca(&config)?;
//! let account = ca.create_account().await?;
//! # Ok(())
//! # }
//! ```

mod ari;
mod client;
pub mod config;
mod http;

pub use config::{AcmeIssuerConfig, acme_ca};
