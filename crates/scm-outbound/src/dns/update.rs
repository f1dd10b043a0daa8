//! Automatic `dns-01`: TXT records published and withdrawn by RFC 2136 dynamic updates signed
//! with TSIG (RFC 8945), the domain's [`scm_core::lifecycle::probes::TxtUpdate`].

use serde::Deserialize;

/// An issuer's `dns01` table, e.g.
/// `dns01 = { kind = "rfc2136", server = "127.0.0.1:53", zone = "shop.test.",
/// tsig_key_name = "openscm.", tsig_algorithm = "hmac-sha256", tsig_secret_file = "/etc/openscm/tsig.key" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dns01Config {
    /// Only `rfc2136`.
    pub kind: String,
    /// The primary server that accepts updates, `address:port`.
    pub server: String,
    /// The zone updated (with or without the trailing dot).
    pub zone: String,
    /// The TSIG key's name.
    pub tsig_key_name: String,
    /// `hmac-sha256` (default) or `hmac-sha512`.
    #[serde(default = "default_algorithm")]
    pub tsig_algorithm: String,
    /// A file holding the TSIG secret (base64, or a BIND `key { ... secret "..."; };` block),
    /// readable by its owner only.
    pub tsig_secret_file: String,
}

fn default_algorithm() -> String {
    "hmac-sha256".into()
}
