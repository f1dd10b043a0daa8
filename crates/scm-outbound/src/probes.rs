//! The adapters domain control validation checks through, built from the server's
//! `[validation]` section.

use std::net::SocketAddr;
use std::sync::Arc;

use scm_core::lifecycle::Probes;

use crate::dcv::{FileFetchConfig, ValidationFileFetcher};
use crate::dns::{TxtResolver, TxtResolverConfig};
use crate::http::EgressPolicy;

/// The probes of a server: DNS TXT lookups through `nameservers` (the system's resolvers when
/// empty; the zone's authoritative servers when `authoritative`), and validation files fetched
/// on `http_port`, bound by the operator's `egress` policy, from the addresses the same
/// resolver gives (both checks see the same DNS).
pub fn probes(
    nameservers: &[SocketAddr],
    authoritative: bool,
    http_port: u16,
    egress: &EgressPolicy,
) -> Result<Probes, String> {
    let config = TxtResolverConfig {
        nameservers: nameservers.to_vec(),
        authoritative,
        ..TxtResolverConfig::default()
    };
    let resolver = Arc::new(TxtResolver::new(&config, egress).map_err(|e| e.to_string())?);
    let files =
        ValidationFileFetcher::new(egress, &FileFetchConfig { http_port }, resolver.clone())
            .map_err(|e| e.to_string())?;
    Ok(Probes {
        txt: Some(resolver),
        files: Some(Arc::new(files)),
        http_port,
    })
}
