//! The OpenSCM domain: accounts and credentials, orders, applications, issuance by the built-in
//! CA, export, pushes to the user's servers, and their history.
//!
//! This crate knows nothing of HTTP or SQL: it takes parsed wire bodies from `scm-proto`, checks
//! them (naming the offending field), and works through the [`scm_store::Store`] trait, an injected
//! [`Clock`] and the `scm-pki` CA. The HTTP layer maps [`DomainError`] to status codes.
#![deny(missing_docs)]

pub mod application;
pub mod auth;
pub mod bootstrap;
mod cache;
pub mod clock;
pub mod deploy;
pub mod domain_name;
pub mod error;
pub mod files;
pub mod issuance;
pub mod purchase;
pub mod random;
pub mod service;

pub use auth::{AuthFailure, AuthMethod, Principal};
pub use clock::{Clock, FixedClock, SystemClock};
pub use domain_name::DomainName;
pub use error::DomainError;
pub use service::{CoreConfig, Scm};

#[cfg(test)]
mod tests;
