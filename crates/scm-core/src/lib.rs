//! The OpenSCM domain: accounts and credentials, orders, applications, issuance, export, pushes
//! to the user's servers and their history, notifications, and the durable jobs that carry the
//! work that must happen outside a request.
//!
//! This crate knows nothing of HTTP, SQL or the network: it takes parsed wire bodies from
//! `scm-proto`, checks them (naming the offending field), and works through ports: the
//! [`scm_store::Store`] traits, an injected [`Clock`], an [`issuance::Issuer`], the
//! [`deploy::Deployer`]s of push targets, [`notify::Notifier`]s and a [`resolve::DnsResolver`].
//! Their network and process implementations live in `scm-outbound`. The HTTP layer maps
//! [`DomainError`] to status codes.
#![deny(missing_docs)]

pub mod application;
pub mod auth;
pub mod bootstrap;
mod cache;
pub mod clock;
pub mod delivery;
pub mod deploy;
pub mod error;
pub mod issuance;
pub mod issuers;
pub mod jobs;
pub mod lifecycle;
pub mod notify;
pub mod purchase;
pub mod random;
pub mod resolve;
pub mod service;
pub mod tasks;

pub use auth::{AuthFailure, AuthMethod, Principal};
pub use clock::{Clock, FixedClock, SystemClock};
pub use error::{DomainError, ImportRefusal, InternalKind};
pub use scm_pki::DnsName;
pub use service::{CoreConfig, ListRequest, Scm};

#[cfg(test)]
mod tests;
