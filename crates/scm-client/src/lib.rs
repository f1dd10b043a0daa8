//! A typed async client for the OpenSCM server, which speaks the Huawei Cloud SCM HTTP API.
//!
//! Two levels:
//!
//! * **Typed**: one method per [`scm_proto::Operation`] ([`Client::subscribe`], [`Client::apply`],
//!   [`Client::show`], [`Client::v2_push_history`], …), taking and answering the `scm-proto` wire
//!   types; any non-2xx answer is a [`ClientError::Api`] with its `error_code`.
//! * **Low level**, for tests of refusals: [`Client::call`] sends one operation with any path
//!   parameters, query and body and answers the [`RawResponse`] whatever its status;
//!   [`Client::request`] gives the [`RawRequest`] it would send, to change (unsigned, a stale
//!   `X-Sdk-Date`, a header changed after signing, a duplicate header, another body) before
//!   [`Client::send`]; [`Client::prepare`] shows exactly what goes out.
//!
//! Requests are signed with `SDK-HMAC-SHA256` as the official Python SDK signs them
//! (`Content-Type: application/json`, `X-Sdk-Date`, `Host`, plus `X-Domain-Id` on v3/IAM routes
//! when the domain is known and `X-Project-Id` on v2 routes), or carry an `X-Auth-Token` from
//! [`Client::create_token`]. Paths come from the operation table, never from strings here.
//!
//! ```no_run
//! # async fn run() -> Result<(), scm_client::ClientError> {
//! use scm_client::{Client, ListQuery};
//! use scm_proto::v3::PurchaseBody;
//!
//! let client = Client::from_credentials_file("openscm-data/credentials.json")?;
//! let order = client
//!     .subscribe(&PurchaseBody {
//!         cert_brand: Some("GLOBALSIGN".into()),
//!         cert_type: Some("DV_SSL_CERT".into()),
//!         domain_type: Some("SINGLE_DOMAIN".into()),
//!         effective_time: Some(1),
//!         domain_numbers: Some(1),
//!         order_number: Some(1),
//!         agree_privacy_protection: Some(true),
//!         ..PurchaseBody::default()
//!     })
//!     .await?;
//! let listed = client.list_certificates(&ListQuery::default()).await?;
//! # let _ = (order, listed);
//! # Ok(()) }
//! ```
//!
//! `examples/smoke.rs` drives a whole flow against a running server.
#![deny(missing_docs)]

mod client;
mod credentials;
mod error;
mod query;
mod raw;

pub use bytes::Bytes;
pub use client::{
    Auth, AuthDomains, Client, ClientBuilder, Clock, Health, IssuedToken, SUBJECT_TOKEN_HEADER,
    SystemClock, TOKEN_HEADER,
};
pub use credentials::{Credentials, CredentialsFile};
pub use error::ClientError;
pub use query::ListQuery;
pub use raw::{PreparedRequest, RawRequest, RawResponse, RequestAuth, Tamper};
pub use reqwest::header::HeaderMap;
pub use scm_proto;
pub use scm_sign::SecretKey;
