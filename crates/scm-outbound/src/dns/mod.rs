//! DNS lookups of domain control validation: the TXT records at `_dnsauth.<name>`
//! ([`TxtResolver`], the domain's [`scm_core::lifecycle::probes::TxtLookup`]), and the addresses
//! the validation file fetch connects to ([`scm_core::resolve::DnsResolver`] on the same
//! resolver, so that both checks see the same DNS).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use scm_core::lifecycle::probes::TxtLookup;
//! use scm_outbound::dns::{TxtResolver, TxtResolverConfig};
//! use scm_outbound::http::EgressPolicy;
//!
//! let config = TxtResolverConfig {
//!     nameservers: vec!["127.0.0.1:8053".parse()?],
//!     ..TxtResolverConfig::default()
//! };
//! let resolver = TxtResolver::new(&config, &EgressPolicy::default())?;
//! let values = resolver.txt("_dnsauth.www.example.com").await?;
//! # Ok(())
//! # }
//! ```

mod resolver;
pub mod update;

pub use resolver::{DnsSetupError, TxtResolver, TxtResolverConfig};
