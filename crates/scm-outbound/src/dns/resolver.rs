//! [`TxtResolver`]: hickory's stub resolver, set up so that what domain validation sees is what
//! the DNS says now (no cache), and optionally asking the zone's authoritative servers.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use async_trait::async_trait;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData};
use hickory_resolver::{Resolver, TokioResolver};
use scm_core::lifecycle::probes::{ProbeError, TxtLookup};
use scm_core::resolve::{DnsResolver, LookupError};
use tokio::task::JoinSet;

use crate::http::{EgressPolicy, is_allowed};

/// Authoritative servers that can be asked (host name, address), and why the others cannot.
type Servers = (Vec<(String, IpAddr)>, Vec<String>);

/// The port authoritative name servers are asked on, unless
/// [`TxtResolver::with_authoritative_port`] says otherwise.
const DNS_PORT: u16 = 53;

/// How a [`TxtResolver`] asks. The binary builds it from the `[validation]` section of its
/// configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxtResolverConfig {
    /// The name servers asked, each as `address:port` (a recursive resolver, or in tests a test
    /// DNS server such as `pebble-challtestsrv`). Empty (the default): those of the system's
    /// `/etc/resolv.conf`.
    pub nameservers: Vec<SocketAddr>,
    /// Ask the authoritative name servers of the name's zone for the TXT records, instead of the
    /// name servers above, so that a record just added is seen before the resolvers' caches have
    /// expired. The zone and its servers are found through the name servers above (SOA, then NS,
    /// then the servers' addresses); the servers are asked on port 53, all at once, and the first
    /// answer wins. Addresses the egress policy refuses are not asked. Default `false`.
    pub authoritative: bool,
    /// How long one query to one server may take before it counts as unanswered (hickory asks
    /// twice before giving up on a server). Default 5 s.
    pub timeout: Duration,
}

impl Default for TxtResolverConfig {
    fn default() -> Self {
        Self {
            nameservers: Vec::new(),
            authoritative: false,
            timeout: Duration::from_secs(5),
        }
    }
}

/// Why a [`TxtResolver`] could not be set up (no usable `/etc/resolv.conf`, a zero timeout).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DNS resolver for validation: {0}")]
pub struct DnsSetupError(String);

/// The TXT lookups of DNS validation ([`TxtLookup`]) and the address lookups of the validation
/// file fetch ([`DnsResolver`]), on hickory.
///
/// - **No cache.** Nothing is cached, positive or negative: a record added a second ago is seen,
///   one removed is gone. Validation asks rarely and must not be fooled by its own memory.
/// - **Answers, not errors, for absence.** A name that does not exist (NXDOMAIN) or has no TXT
///   record is `Ok(vec![])`; timeouts, SERVFAIL and broken connections are transient
///   [`ProbeError`]s; REFUSED, NOTIMP, FORMERR and malformed answers are not.
/// - **Names are absolute.** No search domain of `/etc/resolv.conf` is ever appended, and
///   `/etc/hosts` is not read.
/// - **CNAMEs** are followed as the resolver follows them. In authoritative mode a CNAME into
///   another zone is not followed there (the zone's servers do not answer for the other zone):
///   the lookup fails with the server's refusal.
///
/// Cheap to clone; build one at start-up (inside the Tokio runtime it will be used in).
#[derive(Debug, Clone)]
pub struct TxtResolver {
    resolver: TokioResolver,
    /// The configured name servers, as error messages name them.
    asked: String,
    authoritative: bool,
    authoritative_port: u16,
    timeout: Duration,
    egress: EgressPolicy,
}

impl TxtResolver {
    /// A resolver for `config`. `egress` decides which authoritative servers (addresses learnt
    /// from DNS, so from whoever controls the zone) may be asked in authoritative mode; the
    /// configured name servers are the operator's and are always asked.
    pub fn new(config: &TxtResolverConfig, egress: &EgressPolicy) -> Result<Self, DnsSetupError> {
        if config.timeout.is_zero() {
            return Err(DnsSetupError("the timeout must be more than zero".into()));
        }
        let (resolver_config, opts, asked) = if config.nameservers.is_empty() {
            let (resolver_config, opts) = hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| DnsSetupError(format!("/etc/resolv.conf: {e}")))?;
            let asked = "the system's name servers (/etc/resolv.conf)".to_owned();
            (resolver_config, opts, asked)
        } else {
            let servers = config.nameservers.iter().copied().map(name_server);
            let asked = config
                .nameservers
                .iter()
                .map(SocketAddr::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let resolver_config = ResolverConfig::from_name_servers(servers.collect());
            (resolver_config, ResolverOpts::default(), asked)
        };
        let resolver = build(resolver_config, uncached(opts, config.timeout))
            .map_err(|e| DnsSetupError(e.to_string()))?;
        Ok(Self {
            resolver,
            asked,
            authoritative: config.authoritative,
            authoritative_port: DNS_PORT,
            timeout: config.timeout,
            egress: egress.clone(),
        })
    }

    /// Asks authoritative servers on `port` instead of 53: for tests, whose authoritative server
    /// cannot take port 53, and for nothing else.
    pub fn with_authoritative_port(mut self, port: u16) -> Self {
        self.authoritative_port = port;
        self
    }

    /// TXT at `name` from the zone's authoritative servers: find the zone, its servers and their
    /// addresses through the configured resolver, then ask every server at once; the first
    /// answer (records, or none) wins.
    async fn authoritative_txt(&self, name: &Name, shown: &str) -> Result<Vec<String>, ProbeError> {
        let zone = self.zone_of(name, shown).await?;
        // Servers that cannot be asked go into the error if no other server answers.
        let (servers, mut failures) = self.servers_of(&zone).await?;
        let mut asking = JoinSet::new();
        for (host, ip) in servers {
            let addr = SocketAddr::new(ip, self.authoritative_port);
            let direct = self.direct(addr).map_err(|e| ProbeError {
                reason: format!("asking {host} ({addr}) for TXT {shown}: {e}"),
                transient: false,
            })?;
            let name = name.clone();
            asking.spawn(async move {
                let result = direct.txt_lookup(name).await;
                (host, addr, result)
            });
        }
        let mut transient = false;
        while let Some(done) = asking.join_next().await {
            let Ok((host, addr, result)) = done else {
                // Only a panic inside hickory ends a task otherwise; the other servers may answer.
                continue;
            };
            match txt_records(result) {
                // Returning drops `asking`, which aborts the slower queries.
                Ok(values) => return Ok(values),
                Err(e) => {
                    let (is_transient, why) = classify(&e);
                    transient |= is_transient;
                    failures.push(format!("{host} ({addr}): {why}"));
                }
            }
        }
        Err(ProbeError {
            reason: format!(
                "no authoritative name server of {} answered TXT {shown}: {}",
                shown_name(&zone),
                failures.join("; ")
            ),
            transient,
        })
    }

    /// The zone `name` lies in: the closest name at or above it with an SOA record. A negative
    /// answer carries its zone's SOA, which usually saves walking up label by label.
    async fn zone_of(&self, name: &Name, shown: &str) -> Result<Name, ProbeError> {
        let mut candidate = name.clone();
        while !candidate.is_root() {
            match self.resolver.soa_lookup(candidate.clone()).await {
                Ok(found) => {
                    let apex = found
                        .answers()
                        .iter()
                        .any(|r| matches!(r.data, RData::SOA(_)) && r.name == candidate);
                    if apex {
                        return Ok(candidate);
                    }
                }
                Err(NetError::Dns(DnsError::NoRecordsFound(none))) => {
                    if let Some(soa) = &none.soa
                        && !soa.name.is_root()
                        && soa.name.zone_of(&candidate)
                    {
                        return Ok(soa.name.clone());
                    }
                }
                Err(e) => {
                    let (transient, why) = classify(&e);
                    return Err(ProbeError {
                        reason: format!(
                            "finding the zone of {shown}: SOA {} at {}: {why}",
                            shown_name(&candidate),
                            self.asked
                        ),
                        transient,
                    });
                }
            }
            candidate = candidate.base_name();
        }
        Err(ProbeError {
            reason: format!("{shown} is in no zone: no SOA record at it or above it"),
            transient: false,
        })
    }

    /// The authoritative servers of `zone`, as (host name, address), with the addresses the
    /// egress policy refuses left out; and why the servers left out could not be asked.
    async fn servers_of(&self, zone: &Name) -> Result<Servers, ProbeError> {
        let zone_shown = shown_name(zone);
        let hosts: Vec<Name> = match self.resolver.ns_lookup(zone.clone()).await {
            Ok(found) => found
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::NS(ns) => Some(ns.0.clone()),
                    _ => None,
                })
                .collect(),
            Err(e) if is_negative(&e) => Vec::new(),
            Err(e) => {
                let (transient, why) = classify(&e);
                return Err(ProbeError {
                    reason: format!("NS {zone_shown} at {}: {why}", self.asked),
                    transient,
                });
            }
        };
        if hosts.is_empty() {
            return Err(ProbeError {
                reason: format!("the zone {zone_shown} has no NS records"),
                transient: false,
            });
        }
        let mut servers: Vec<(String, IpAddr)> = Vec::new();
        let mut problems = Vec::new();
        let mut transient = false;
        for host in hosts {
            let host_shown = shown_name(&host);
            match self.resolver.lookup_ip(host).await {
                Ok(found) => {
                    for ip in found.iter() {
                        match is_allowed(ip, &self.egress) {
                            Ok(()) if servers.iter().any(|(_, seen)| *seen == ip) => {}
                            Ok(()) => servers.push((host_shown.clone(), ip)),
                            Err(refusal) => problems
                                .push(format!("{host_shown}: refused by egress policy: {refusal}")),
                        }
                    }
                }
                Err(e) => {
                    let (is_transient, why) = classify(&e);
                    transient |= is_transient;
                    problems.push(format!("{host_shown}: {why}"));
                }
            }
        }
        if servers.is_empty() {
            return Err(ProbeError {
                reason: format!(
                    "no authoritative name server of {zone_shown} can be asked: {}",
                    problems.join("; ")
                ),
                transient,
            });
        }
        Ok((servers, problems))
    }

    /// A resolver that asks the one server at `addr`, without recursion.
    fn direct(&self, addr: SocketAddr) -> Result<TokioResolver, NetError> {
        let config = ResolverConfig::from_name_servers(vec![name_server(addr)]);
        let mut opts = uncached(ResolverOpts::default(), self.timeout);
        opts.recursion_desired = false;
        build(config, opts)
    }
}

#[async_trait]
impl TxtLookup for TxtResolver {
    async fn txt(&self, name: &str) -> Result<Vec<String>, ProbeError> {
        let shown = name.trim_end_matches('.');
        let fqdn = absolute(shown).map_err(|why| ProbeError {
            reason: format!("{shown} is not a DNS name: {why}"),
            transient: false,
        })?;
        if self.authoritative {
            return self.authoritative_txt(&fqdn, shown).await;
        }
        txt_records(self.resolver.txt_lookup(fqdn).await).map_err(|e| {
            let (transient, why) = classify(&e);
            ProbeError {
                reason: format!("TXT {shown} at {}: {why}", self.asked),
                transient,
            }
        })
    }
}

#[async_trait]
impl DnsResolver for TxtResolver {
    /// The A and AAAA records of `host` from the configured name servers (never the
    /// authoritative ones, never `/etc/hosts`). A name with no address records is `Ok(vec![])`.
    async fn lookup_ip(&self, host: &str) -> Result<Vec<IpAddr>, LookupError> {
        if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse() {
            return Ok(vec![ip]);
        }
        let failed = |reason: String| LookupError {
            host: host.to_owned(),
            reason,
        };
        let name = absolute(host).map_err(failed)?;
        match self.resolver.lookup_ip(name).await {
            Ok(found) => Ok(found.iter().collect()),
            Err(NetError::Dns(DnsError::NoRecordsFound(none)))
                if none.response_code == ResponseCode::NXDomain =>
            {
                Err(failed("no such name (NXDOMAIN)".into()))
            }
            Err(e) if is_negative(&e) => Ok(Vec::new()),
            Err(e) => Err(failed(format!("at {}: {}", self.asked, classify(&e).1))),
        }
    }
}

/// The values of the TXT records of a lookup, each record's strings joined; none for a name
/// that does not exist or has no TXT record.
fn txt_records(result: Result<Lookup, NetError>) -> Result<Vec<String>, NetError> {
    match result {
        Ok(found) => Ok(found
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(txt) => {
                    Some(String::from_utf8_lossy(&txt.txt_data.concat()).into_owned())
                }
                _ => None,
            })
            .collect()),
        Err(e) if is_negative(&e) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Whether `err` is an answer that there is nothing: NXDOMAIN, or no records of the type.
fn is_negative(err: &NetError) -> bool {
    matches!(err, NetError::Dns(DnsError::NoRecordsFound(_)))
}

/// Whether a failure may go away by itself, and what to say about it.
fn classify(err: &NetError) -> (bool, String) {
    match err {
        NetError::Timeout => (true, "no answer in time".into()),
        NetError::Dns(DnsError::ResponseCode(code)) => {
            // A server that refuses, does not implement or does not understand the question
            // will do so again; SERVFAIL and the rest are the server's trouble of the moment.
            let lasting = matches!(
                code,
                ResponseCode::Refused | ResponseCode::NotImp | ResponseCode::FormErr
            );
            (!lasting, format!("answered {} ({code})", mnemonic(*code)))
        }
        NetError::Proto(e) => (false, format!("malformed answer: {e}")),
        other => (true, other.to_string()),
    }
}

/// The name DNS tools give a response code (`dig` prints these).
fn mnemonic(code: ResponseCode) -> String {
    match code {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        other => format!("RCODE {}", u16::from(other)),
    }
}

/// `name` as an absolute DNS name, so that no search domain is appended.
fn absolute(name: &str) -> Result<Name, String> {
    let trimmed = name.trim().trim_end_matches('.');
    if trimmed.is_empty() {
        return Err("empty name".into());
    }
    let mut parsed = Name::from_ascii(trimmed).map_err(|e| e.to_string())?;
    parsed.set_fqdn(true);
    Ok(parsed)
}

/// A name as messages show it: no trailing dot.
fn shown_name(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_owned()
}

/// A name server at `addr`, over UDP with TCP for truncated answers.
fn name_server(addr: SocketAddr) -> NameServerConfig {
    let mut server = NameServerConfig::udp_and_tcp(addr.ip());
    for connection in &mut server.connections {
        connection.port = addr.port();
    }
    server
}

/// `opts` without any caching and without `/etc/hosts`, with one query's `timeout`.
fn uncached(mut opts: ResolverOpts, timeout: Duration) -> ResolverOpts {
    // Size 0 and TTLs clamped to 0: hickory's cache admits nothing, and anything it held would
    // be stale at once.
    opts.cache_size = 0;
    opts.positive_min_ttl = None;
    opts.negative_min_ttl = None;
    opts.positive_max_ttl = Some(Duration::ZERO);
    opts.negative_max_ttl = Some(Duration::ZERO);
    opts.use_hosts_file = ResolveHosts::Never;
    opts.timeout = timeout;
    opts
}

fn build(config: ResolverConfig, opts: ResolverOpts) -> Result<TokioResolver, NetError> {
    Resolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(opts)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_absolute() {
        let name = absolute("_dnsauth.www.Example.com.").unwrap();
        assert!(name.is_fqdn());
        assert_eq!(shown_name(&name), "_dnsauth.www.Example.com");
        assert!(absolute("").is_err());
        assert!(absolute(".").is_err());
    }

    #[test]
    fn failures_are_transient_unless_the_server_will_say_the_same_again() {
        assert!(classify(&NetError::Timeout).0);
        for (code, transient) in [
            (ResponseCode::ServFail, true),
            (ResponseCode::Refused, false),
            (ResponseCode::NotImp, false),
            (ResponseCode::FormErr, false),
        ] {
            let (is_transient, why) = classify(&NetError::Dns(DnsError::ResponseCode(code)));
            assert_eq!(is_transient, transient, "{code}");
            assert!(why.contains(&code.to_string()), "{why}");
        }
    }

    #[tokio::test]
    async fn a_zero_timeout_is_refused_at_setup() {
        let config = TxtResolverConfig {
            nameservers: vec!["127.0.0.1:53".parse().unwrap()],
            timeout: Duration::ZERO,
            ..TxtResolverConfig::default()
        };
        let err = TxtResolver::new(&config, &EgressPolicy::default()).unwrap_err();
        assert!(err.to_string().contains("timeout"), "{err}");
    }
}
