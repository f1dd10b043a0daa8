//! The egress policy: where OpenSCM may connect, and how long and how much it may wait for.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use serde::Deserialize;

/// The operator's rules for outbound connections, read from the configuration file.
///
/// Every field is optional in the file; a missing field takes the default documented on it. The
/// defaults are the safe choice for a server on the public internet: only global unicast
/// addresses, bounded waits, bounded bodies. Unknown fields are refused, so a misspelt
/// `allow_loopbak = true` is an error instead of a silently ignored wish.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EgressPolicy {
    /// Allow loopback addresses (127.0.0.0/8, ::1). Default `false`: a service on the loopback
    /// interface trusts the local host, and a user-supplied URL must not borrow that trust.
    pub allow_loopback: bool,
    /// Allow private addresses (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, the shared/CGNAT range
    /// 100.64.0.0/10, IPv6 unique local fc00::/7 and the deprecated site-local fec0::/10, and the
    /// local-use NAT64 prefix 64:ff9b:1::/48). Default `false`. Turn it on when the push targets
    /// live on the operator's own network.
    pub allow_private: bool,
    /// Seconds allowed for the connection phase: DNS, TCP and the TLS handshake. Default 10.
    pub connect_timeout_seconds: u64,
    /// Seconds allowed for the whole request, from connecting to the last byte of the response
    /// body, redirects included. Default 30.
    pub request_timeout_seconds: u64,
    /// The largest response body read, in bytes; a longer one is an error. Default 1 MiB
    /// (1 048 576): OpenSCM's peers answer with small JSON documents, never with downloads.
    pub max_response_bytes: u64,
    /// How many redirects one request may follow, and only to the same scheme, host and port as
    /// the request. Default 5. `0` follows none.
    pub max_redirects: u32,
}

impl Default for EgressPolicy {
    fn default() -> Self {
        Self {
            allow_loopback: false,
            allow_private: false,
            connect_timeout_seconds: 10,
            request_timeout_seconds: 30,
            max_response_bytes: 1024 * 1024,
            max_redirects: 5,
        }
    }
}

impl EgressPolicy {
    /// The connect timeout as a [`Duration`].
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_seconds)
    }

    /// The total request timeout as a [`Duration`].
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds)
    }
}

/// Why [`is_allowed`] refused an address. The text names the kind of address, never the address
/// itself, so that it can go into an error shown to whoever configured the URL. (The order is the
/// declaration order; it only keeps lists of reasons stable.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, thiserror::Error)]
pub enum Refusal {
    /// 0.0.0.0 or `::`: on Linux, connecting there reaches the local host.
    #[error("the unspecified address")]
    Unspecified,
    /// 0.0.0.0/8, "this network".
    #[error("a \"this network\" address (0.0.0.0/8)")]
    ThisNetwork,
    /// 169.254.0.0/16 or fe80::/10; 169.254.169.254 is the cloud metadata service.
    #[error("a link-local address (the range of the cloud metadata service)")]
    LinkLocal,
    /// 224.0.0.0/4 or ff00::/8.
    #[error("a multicast address")]
    Multicast,
    /// 255.255.255.255.
    #[error("the broadcast address")]
    Broadcast,
    /// 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32, 3fff::/20.
    #[error("a documentation address")]
    Documentation,
    /// 198.18.0.0/15 or 2001:2::/48.
    #[error("a benchmarking address")]
    Benchmarking,
    /// 240.0.0.0/4, the IETF protocol assignments 192.0.0.0/24, the IPv6 discard prefix 100::/64,
    /// Teredo 2001::/32, and every IPv6 address outside global unicast 2000::/3 that no other rule
    /// names.
    #[error("a reserved address")]
    Reserved,
    /// 127.0.0.0/8 or ::1, refused unless [`EgressPolicy::allow_loopback`].
    #[error("a loopback address (allowed only with allow_loopback)")]
    Loopback,
    /// A private range (see [`EgressPolicy::allow_private`]), refused unless allowed.
    #[error("a private address (allowed only with allow_private)")]
    Private,
}

/// Decides whether the policy lets OpenSCM connect to `ip`.
///
/// Global unicast addresses are allowed; loopback and private addresses only when the policy
/// allows them; every other special-purpose range always refused. IPv6 forms that carry an IPv4
/// address (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4
/// `2002::/16`) are decided by the IPv4 address they carry, since that is where the packets end up.
pub fn is_allowed(ip: IpAddr, policy: &EgressPolicy) -> Result<(), Refusal> {
    let class = match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    };
    match class {
        None => Ok(()),
        Some(Refusal::Loopback) if policy.allow_loopback => Ok(()),
        Some(Refusal::Private) if policy.allow_private => Ok(()),
        Some(refusal) => Err(refusal),
    }
}

/// The IPv4 special-purpose ranges, first match wins (the single addresses come before the ranges
/// that contain them).
const V4_RANGES: &[(Ipv4Addr, u32, Refusal)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 32, Refusal::Unspecified),
    (Ipv4Addr::new(255, 255, 255, 255), 32, Refusal::Broadcast),
    (Ipv4Addr::new(0, 0, 0, 0), 8, Refusal::ThisNetwork),
    (Ipv4Addr::new(127, 0, 0, 0), 8, Refusal::Loopback),
    (Ipv4Addr::new(169, 254, 0, 0), 16, Refusal::LinkLocal),
    (Ipv4Addr::new(224, 0, 0, 0), 4, Refusal::Multicast),
    (Ipv4Addr::new(240, 0, 0, 0), 4, Refusal::Reserved),
    (Ipv4Addr::new(192, 0, 2, 0), 24, Refusal::Documentation),
    (Ipv4Addr::new(198, 51, 100, 0), 24, Refusal::Documentation),
    (Ipv4Addr::new(203, 0, 113, 0), 24, Refusal::Documentation),
    (Ipv4Addr::new(198, 18, 0, 0), 15, Refusal::Benchmarking),
    (Ipv4Addr::new(192, 0, 0, 0), 24, Refusal::Reserved),
    (Ipv4Addr::new(10, 0, 0, 0), 8, Refusal::Private),
    (Ipv4Addr::new(172, 16, 0, 0), 12, Refusal::Private),
    (Ipv4Addr::new(192, 168, 0, 0), 16, Refusal::Private),
    (Ipv4Addr::new(100, 64, 0, 0), 10, Refusal::Private),
];

/// The IPv6 special-purpose ranges, first match wins. The forms carrying IPv4 are handled before
/// this table by [`embedded_v4`].
const V6_RANGES: &[(Ipv6Addr, u32, Refusal)] = &[
    (Ipv6Addr::UNSPECIFIED, 128, Refusal::Unspecified),
    (Ipv6Addr::LOCALHOST, 128, Refusal::Loopback),
    (
        Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
        48,
        Refusal::Private,
    ),
    (
        Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
        64,
        Refusal::Reserved,
    ),
    // Teredo tunnels to an IPv4 address we cannot judge.
    (
        Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),
        32,
        Refusal::Reserved,
    ),
    (
        Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0),
        48,
        Refusal::Benchmarking,
    ),
    (
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
        32,
        Refusal::Documentation,
    ),
    (
        Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),
        20,
        Refusal::Documentation,
    ),
    (
        Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
        7,
        Refusal::Private,
    ),
    (
        Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0),
        10,
        Refusal::Private,
    ),
    (
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),
        10,
        Refusal::LinkLocal,
    ),
    (
        Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0),
        8,
        Refusal::Multicast,
    ),
];

fn classify_v4(ip: Ipv4Addr) -> Option<Refusal> {
    let bits = u32::from(ip);
    V4_RANGES
        .iter()
        .find(|(net, len, _)| in_prefix(u128::from(bits), u128::from(u32::from(*net)), 32, *len))
        .map(|(_, _, refusal)| *refusal)
}

fn classify_v6(ip: Ipv6Addr) -> Option<Refusal> {
    let bits = u128::from(ip);
    let named = V6_RANGES
        .iter()
        .find(|(net, len, _)| in_prefix(bits, u128::from(*net), 128, *len))
        .map(|(_, _, refusal)| *refusal);
    // Outside 2000::/3 the IANA registry has nothing globally routable that the table does not
    // already name, so anything else there is reserved space.
    named.or_else(|| (!in_prefix(bits, 0x2000 << 112, 128, 3)).then_some(Refusal::Reserved))
}

/// The IPv4 address an IPv6 address delivers to, for the forms that embed one.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    let low32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    // `::` and `::1` sit inside the IPv4-compatible prefix but are IPv6's own unspecified and
    // loopback addresses; the IPv6 table decides them.
    if bits <= 1 {
        return None;
    }
    if in_prefix(bits, 0xffff << 32, 128, 96) // IPv4-mapped ::ffff:0:0/96
        || in_prefix(bits, 0, 128, 96) // IPv4-compatible ::/96 (deprecated, still routed by some stacks)
        || in_prefix(bits, 0x0064_ff9b << 96, 128, 96)
    // NAT64 well-known prefix 64:ff9b::/96
    {
        return Some(low32);
    }
    // 6to4 2002:AABB:CCDD::/48 carries AA.BB.CC.DD in bits 16..48.
    if in_prefix(bits, 0x2002 << 112, 128, 16) {
        return Some(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    None
}

/// Whether `bits` lies in `net/len`, for addresses `width` bits wide (32 or 128).
fn in_prefix(bits: u128, net: u128, width: u32, len: u32) -> bool {
    // `checked_shr` because a shift by the full width (len 0) overflows: then every address matches.
    (bits ^ net)
        .checked_shr(width.saturating_sub(len))
        .unwrap_or(0)
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// One row per rule: the address, and the verdict under (default, loopback allowed, private
    /// allowed, both allowed).
    #[test]
    fn every_rule() {
        use Refusal::*;
        type Verdict = Result<(), Refusal>;
        let ok: Verdict = Ok(());
        let table: &[(&str, Verdict, Verdict, Verdict)] = &[
            // (address, default, allow_loopback, allow_private) ; both-allowed is derived below.
            (
                "0.0.0.0",
                Err(Unspecified),
                Err(Unspecified),
                Err(Unspecified),
            ),
            ("::", Err(Unspecified), Err(Unspecified), Err(Unspecified)),
            (
                "0.1.2.3",
                Err(ThisNetwork),
                Err(ThisNetwork),
                Err(ThisNetwork),
            ),
            (
                "169.254.169.254",
                Err(LinkLocal),
                Err(LinkLocal),
                Err(LinkLocal),
            ),
            (
                "169.254.0.1",
                Err(LinkLocal),
                Err(LinkLocal),
                Err(LinkLocal),
            ),
            ("fe80::1", Err(LinkLocal), Err(LinkLocal), Err(LinkLocal)),
            (
                "febf:ffff::1",
                Err(LinkLocal),
                Err(LinkLocal),
                Err(LinkLocal),
            ),
            ("224.0.0.1", Err(Multicast), Err(Multicast), Err(Multicast)),
            (
                "239.255.255.250",
                Err(Multicast),
                Err(Multicast),
                Err(Multicast),
            ),
            ("ff02::1", Err(Multicast), Err(Multicast), Err(Multicast)),
            (
                "255.255.255.255",
                Err(Broadcast),
                Err(Broadcast),
                Err(Broadcast),
            ),
            ("240.0.0.1", Err(Reserved), Err(Reserved), Err(Reserved)),
            (
                "255.255.255.254",
                Err(Reserved),
                Err(Reserved),
                Err(Reserved),
            ),
            ("192.0.0.8", Err(Reserved), Err(Reserved), Err(Reserved)),
            ("100::1", Err(Reserved), Err(Reserved), Err(Reserved)),
            ("2001::1", Err(Reserved), Err(Reserved), Err(Reserved)),
            ("4000::1", Err(Reserved), Err(Reserved), Err(Reserved)),
            ("::1:0:0:1", Err(Reserved), Err(Reserved), Err(Reserved)),
            (
                "192.0.2.1",
                Err(Documentation),
                Err(Documentation),
                Err(Documentation),
            ),
            (
                "198.51.100.7",
                Err(Documentation),
                Err(Documentation),
                Err(Documentation),
            ),
            (
                "203.0.113.255",
                Err(Documentation),
                Err(Documentation),
                Err(Documentation),
            ),
            (
                "2001:db8::1",
                Err(Documentation),
                Err(Documentation),
                Err(Documentation),
            ),
            (
                "3fff:fff::1",
                Err(Documentation),
                Err(Documentation),
                Err(Documentation),
            ),
            (
                "198.18.0.1",
                Err(Benchmarking),
                Err(Benchmarking),
                Err(Benchmarking),
            ),
            (
                "198.19.255.255",
                Err(Benchmarking),
                Err(Benchmarking),
                Err(Benchmarking),
            ),
            (
                "2001:2::1",
                Err(Benchmarking),
                Err(Benchmarking),
                Err(Benchmarking),
            ),
            // Loopback: only with allow_loopback.
            ("127.0.0.1", Err(Loopback), ok, Err(Loopback)),
            ("127.255.255.254", Err(Loopback), ok, Err(Loopback)),
            ("::1", Err(Loopback), ok, Err(Loopback)),
            // Private: only with allow_private.
            ("10.0.0.1", Err(Private), Err(Private), ok),
            ("172.16.0.1", Err(Private), Err(Private), ok),
            ("172.31.255.255", Err(Private), Err(Private), ok),
            ("192.168.1.1", Err(Private), Err(Private), ok),
            ("100.64.0.1", Err(Private), Err(Private), ok),
            ("100.127.255.255", Err(Private), Err(Private), ok),
            ("fd00::1", Err(Private), Err(Private), ok),
            ("fc00::1", Err(Private), Err(Private), ok),
            ("fec0::1", Err(Private), Err(Private), ok),
            ("64:ff9b:1::a00:1", Err(Private), Err(Private), ok),
            // IPv6 forms carrying IPv4: decided by the IPv4 address.
            ("::ffff:127.0.0.1", Err(Loopback), ok, Err(Loopback)),
            (
                "::ffff:169.254.169.254",
                Err(LinkLocal),
                Err(LinkLocal),
                Err(LinkLocal),
            ),
            ("::ffff:10.1.2.3", Err(Private), Err(Private), ok),
            (
                "::ffff:0.0.0.0",
                Err(Unspecified),
                Err(Unspecified),
                Err(Unspecified),
            ),
            ("::ffff:8.8.8.8", ok, ok, ok),
            ("::127.0.0.1", Err(Loopback), ok, Err(Loopback)),
            (
                "::169.254.169.254",
                Err(LinkLocal),
                Err(LinkLocal),
                Err(LinkLocal),
            ),
            (
                "::0.0.0.2",
                Err(ThisNetwork),
                Err(ThisNetwork),
                Err(ThisNetwork),
            ),
            ("::8.8.8.8", ok, ok, ok),
            (
                "64:ff9b::a9fe:a9fe",
                Err(LinkLocal),
                Err(LinkLocal),
                Err(LinkLocal),
            ),
            ("64:ff9b::7f00:1", Err(Loopback), ok, Err(Loopback)),
            ("64:ff9b::808:808", ok, ok, ok),
            (
                "2002:a9fe:a9fe::1",
                Err(LinkLocal),
                Err(LinkLocal),
                Err(LinkLocal),
            ),
            ("2002:7f00:1::", Err(Loopback), ok, Err(Loopback)),
            ("2002:808:808::1", ok, ok, ok),
            // Global unicast: allowed, including the neighbours of refused ranges.
            ("8.8.8.8", ok, ok, ok),
            ("1.1.1.1", ok, ok, ok),
            ("172.15.255.255", ok, ok, ok),
            ("172.32.0.1", ok, ok, ok),
            ("100.63.255.255", ok, ok, ok),
            ("100.128.0.1", ok, ok, ok),
            ("169.253.255.255", ok, ok, ok),
            ("198.17.255.255", ok, ok, ok),
            ("198.20.0.1", ok, ok, ok),
            ("223.255.255.255", ok, ok, ok),
            ("11.0.0.1", ok, ok, ok),
            ("2001:4860::8888", ok, ok, ok),
            ("2001:4860:4860::8888", ok, ok, ok),
            ("2606:4700:4700::1111", ok, ok, ok),
            ("2001:db9::1", ok, ok, ok),
            ("3fff:1000::1", ok, ok, ok),
        ];
        let default = EgressPolicy::default();
        let loopback = EgressPolicy {
            allow_loopback: true,
            ..EgressPolicy::default()
        };
        let private = EgressPolicy {
            allow_private: true,
            ..EgressPolicy::default()
        };
        let both = EgressPolicy {
            allow_loopback: true,
            allow_private: true,
            ..EgressPolicy::default()
        };
        for (addr, by_default, with_loopback, with_private) in table {
            let a = ip(addr);
            assert_eq!(
                is_allowed(a, &default),
                *by_default,
                "{addr}, default policy"
            );
            assert_eq!(
                is_allowed(a, &loopback),
                *with_loopback,
                "{addr}, allow_loopback"
            );
            assert_eq!(
                is_allowed(a, &private),
                *with_private,
                "{addr}, allow_private"
            );
            // With both flags, exactly the two configurable refusals disappear.
            let with_both = match by_default {
                Err(Loopback | Private) => Ok(()),
                other => *other,
            };
            assert_eq!(is_allowed(a, &both), with_both, "{addr}, both allowed");
        }
    }

    #[test]
    fn defaults_and_unknown_fields() {
        let policy: EgressPolicy = serde_json::from_str("{}").unwrap();
        assert_eq!(policy, EgressPolicy::default());
        assert!(!policy.allow_loopback);
        assert!(!policy.allow_private);
        assert_eq!(policy.connect_timeout_seconds, 10);
        assert_eq!(policy.request_timeout_seconds, 30);
        assert_eq!(policy.max_response_bytes, 1_048_576);
        assert_eq!(policy.max_redirects, 5);

        let partial: EgressPolicy = serde_json::from_str(r#"{"allow_private": true}"#).unwrap();
        assert!(partial.allow_private);
        assert_eq!(partial.max_redirects, 5);

        let err = serde_json::from_str::<EgressPolicy>(r#"{"allow_loopbak": true}"#).unwrap_err();
        assert!(err.to_string().contains("allow_loopbak"), "{err}");
    }

    #[test]
    fn refusals_name_no_address() {
        let err = is_allowed(ip("::ffff:169.254.169.254"), &EgressPolicy::default()).unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("169.254.169.254"), "{text}");
        assert!(text.contains("link-local"), "{text}");
    }
}
