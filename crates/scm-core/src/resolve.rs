//! The DNS port: how the domain (and the outbound adapters) turn names into addresses. Domain
//! validation will add record lookups (TXT, CAA) here.

use std::net::IpAddr;

use async_trait::async_trait;

/// A failed lookup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot resolve {host}: {reason}")]
pub struct LookupError {
    /// The name looked up.
    pub host: String,
    /// Why it failed (no such name, no answer in time, ...).
    pub reason: String,
}

/// Resolves names.
#[async_trait]
pub trait DnsResolver: Send + Sync + 'static {
    /// The addresses of `host` (A and AAAA).
    async fn lookup_ip(&self, host: &str) -> Result<Vec<IpAddr>, LookupError>;
}
