//! Checking on the wire that a target serves what was delivered: the [`TlsProber`] port.
//!
//! Verification is the same for every kind of target (a TLS handshake with the target's address
//! and server name), so it is one port beside [`super::Deployer`], not a method of each kind.
//! The adapter (a rustls client in `scm-outbound`) only reports what it was served; the domain
//! compares it with the delivered version.

use std::fmt;

use async_trait::async_trait;

/// Where a target serves TLS: an address to connect to and the server name (SNI) to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host:port` (a literal IP address or a host name the server resolves).
    pub address: String,
    /// The SNI sent, and the name the served chain is checked for.
    pub server_name: String,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (SNI {})", self.address, self.server_name)
    }
}

/// What an endpoint served in one handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// SHA-256 of the served leaf's DER, lowercase hex.
    pub sha256_fingerprint: String,
    /// The served leaf's serial, lowercase hex.
    pub serial_hex: String,
    /// Whether the chain it sent verifies, for the server name, to one of the trust anchors the
    /// probe was given (the issuer's root).
    pub chain_verified: bool,
}

/// A handshake that did not complete (refused, timed out, not TLS). Always worth retrying: a
/// server reloading refuses connections for a moment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProbeError {
    /// What happened, safe to show to the account.
    pub message: String,
}

/// Opens a TLS connection to a target and reports the certificate it serves.
#[async_trait]
pub trait TlsProber: Send + Sync + fmt::Debug {
    /// One handshake with `endpoint`, checking the served chain against `anchors_pem` (one or
    /// more PEM certificates trusted as roots for this check only).
    async fn probe(&self, endpoint: &Endpoint, anchors_pem: &str) -> Result<Served, ProbeError>;
}
