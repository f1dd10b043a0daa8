//! Name resolution that only ever hands reqwest addresses the egress policy allows.
//!
//! Checking a URL's host before the request and letting the HTTP client resolve it again later is
//! the classic DNS-rebinding hole: the second answer can differ from the first. Here the check
//! sits inside the resolver that the connector itself calls, so the addresses checked are the
//! addresses connected to.

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use scm_core::resolve::{DnsResolver, LookupError};

use super::policy::{EgressPolicy, Refusal, is_allowed};

/// The operating system's resolver (`getaddrinfo`, through [`tokio::net::lookup_host`]), which
/// honours `/etc/hosts` and `/etc/resolv.conf` the way every other program on the host does.
/// Tests give [`super::OutboundHttp::with_resolver`] a resolver of their own instead, to make a
/// name resolve to an address they choose without touching DNS.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

#[async_trait]
impl DnsResolver for SystemResolver {
    async fn lookup_ip(&self, host: &str) -> Result<Vec<IpAddr>, LookupError> {
        // Port 0: reqwest puts the URL's port on the addresses afterwards.
        match tokio::net::lookup_host((host, 0)).await {
            Ok(found) => Ok(found.map(|addr| addr.ip()).collect()),
            Err(e) => Err(LookupError {
                host: host.to_owned(),
                reason: e.to_string(),
            }),
        }
    }
}

/// The error the resolver returns when a name resolves, but only to refused addresses. It names
/// the host and the kinds of address (loopback, private, ...), not the addresses: they are DNS
/// data the caller did not write and may not be entitled to learn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostRefused {
    pub(crate) host: String,
    pub(crate) reasons: BTreeSet<Refusal>,
}

impl fmt::Display for HostRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refused by egress policy: {} resolves only to refused addresses: ",
            self.host
        )?;
        for (n, reason) in self.reasons.iter().enumerate() {
            if n > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{reason}")?;
        }
        Ok(())
    }
}

impl std::error::Error for HostRefused {}

/// The [`Resolve`] given to reqwest: looks the name up, then drops every address the policy
/// refuses.
pub(crate) struct GuardedResolver {
    lookup: Arc<dyn DnsResolver>,
    policy: Arc<EgressPolicy>,
}

impl GuardedResolver {
    pub(crate) fn new(lookup: Arc<dyn DnsResolver>, policy: Arc<EgressPolicy>) -> Self {
        Self { lookup, policy }
    }

    /// The allowed addresses of `host`, or why there are none.
    async fn allowed(
        &self,
        host: &str,
    ) -> Result<Vec<IpAddr>, Box<dyn std::error::Error + Send + Sync>> {
        let found = self.lookup.lookup_ip(host).await?;
        if found.is_empty() {
            return Err(Box::new(io::Error::new(
                io::ErrorKind::NotFound,
                "the name has no addresses",
            )));
        }
        let mut allowed = Vec::with_capacity(found.len());
        let mut reasons = BTreeSet::new();
        for ip in found {
            match is_allowed(ip, &self.policy) {
                Ok(()) => allowed.push(ip),
                Err(reason) => {
                    reasons.insert(reason);
                }
            }
        }
        if allowed.is_empty() {
            tracing::debug!(
                host,
                ?reasons,
                "every address of the host refused by the egress policy"
            );
            return Err(Box::new(HostRefused {
                host: host.to_owned(),
                reasons,
            }));
        }
        if !reasons.is_empty() {
            tracing::debug!(
                host,
                ?reasons,
                kept = allowed.len(),
                "some addresses of the host refused by the egress policy"
            );
        }
        Ok(allowed)
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = Self {
            lookup: Arc::clone(&self.lookup),
            policy: Arc::clone(&self.policy),
        };
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let allowed = this.allowed(&host).await?;
            let addrs: Addrs = Box::new(allowed.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers every name with the same addresses.
    struct Fixed(Vec<IpAddr>);

    #[async_trait]
    impl DnsResolver for Fixed {
        async fn lookup_ip(&self, _host: &str) -> Result<Vec<IpAddr>, LookupError> {
            Ok(self.0.clone())
        }
    }

    fn resolver(answer: &[&str], policy: EgressPolicy) -> GuardedResolver {
        let ips = answer.iter().map(|a| a.parse().unwrap()).collect();
        GuardedResolver::new(Arc::new(Fixed(ips)), Arc::new(policy))
    }

    async fn resolve(r: &GuardedResolver, host: &str) -> Result<Vec<SocketAddr>, String> {
        match r.resolve(host.parse().unwrap()).await {
            Ok(addrs) => Ok(addrs.collect()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[tokio::test]
    async fn drops_refused_addresses_and_keeps_the_rest() {
        // No socket is opened: this only looks at what reqwest would be allowed to connect to.
        let policy = EgressPolicy {
            allow_loopback: true,
            ..EgressPolicy::default()
        };
        let r = resolver(&["10.0.0.1", "169.254.169.254", "127.0.0.1", "::1"], policy);
        let addrs = resolve(&r, "mixed.example").await.unwrap();
        let ips: Vec<IpAddr> = addrs.iter().map(|a| a.ip()).collect();
        assert_eq!(ips, vec![ip("127.0.0.1"), ip("::1")]);
    }

    #[tokio::test]
    async fn all_refused_names_the_host_and_the_kinds_not_the_addresses() {
        let r = resolver(&["10.0.0.1", "169.254.169.254"], EgressPolicy::default());
        let err = resolve(&r, "internal.example").await.unwrap_err();
        assert!(err.contains("refused by egress policy"), "{err}");
        assert!(err.contains("internal.example"), "{err}");
        assert!(err.contains("private"), "{err}");
        assert!(err.contains("link-local"), "{err}");
        assert!(!err.contains("10.0.0.1"), "{err}");
        assert!(!err.contains("169.254.169.254"), "{err}");
    }

    #[tokio::test]
    async fn no_addresses_is_not_a_refusal() {
        let r = resolver(&[], EgressPolicy::default());
        let err = resolve(&r, "empty.example").await.unwrap_err();
        assert!(!err.contains("refused"), "{err}");
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
}
