//! [`TxtResolver`] against real DNS servers.

use std::net::SocketAddr;
use std::time::Duration;

use scm_core::lifecycle::probes::TxtLookup;
use scm_core::resolve::DnsResolver;
use scm_outbound::dns::{TxtResolver, TxtResolverConfig};
use scm_outbound::http::EgressPolicy;

use crate::support::challtestsrv::ChallTestSrv;
use crate::support::named::Named;

/// The test servers are on loopback; authoritative servers there must be allowed.
fn loopback() -> EgressPolicy {
    EgressPolicy {
        allow_loopback: true,
        ..EgressPolicy::default()
    }
}

fn resolver(config: TxtResolverConfig) -> TxtResolver {
    TxtResolver::new(&config, &loopback()).unwrap()
}

fn asking(dns: SocketAddr) -> TxtResolver {
    resolver(TxtResolverConfig {
        nameservers: vec![dns],
        ..TxtResolverConfig::default()
    })
}

async fn sorted_txt(r: &TxtResolver, name: &str) -> Vec<String> {
    let mut values = r.txt(name).await.unwrap();
    values.sort();
    values
}

const NONE: Vec<String> = Vec::new();

#[tokio::test]
async fn a_txt_record_is_seen_as_soon_as_it_is_set_and_gone_as_soon_as_it_is_cleared() {
    let srv = ChallTestSrv::start().await;
    let r = asking(srv.dns);
    let name = "_dnsauth.a.example.com";
    assert_eq!(r.txt(name).await.unwrap(), NONE);
    srv.set_txt(name, "v1").await;
    assert_eq!(r.txt(name).await.unwrap(), ["v1"]);
    // A trailing dot names the same record.
    assert_eq!(r.txt("_dnsauth.a.example.com.").await.unwrap(), ["v1"]);
    srv.clear_txt(name).await;
    assert_eq!(r.txt(name).await.unwrap(), NONE);
}

#[tokio::test]
async fn two_values_at_one_name_are_both_returned() {
    let srv = ChallTestSrv::start().await;
    let r = asking(srv.dns);
    let name = "_dnsauth.two.example.com";
    srv.set_txt(name, "first").await;
    srv.set_txt(name, "second").await;
    assert_eq!(sorted_txt(&r, name).await, ["first", "second"]);
    // Another name under the same parent has none of them.
    assert_eq!(r.txt("_dnsauth.other.example.com").await.unwrap(), NONE);
}

#[tokio::test]
async fn servfail_is_a_transient_failure_naming_the_name_and_the_server() {
    let srv = ChallTestSrv::start().await;
    let r = asking(srv.dns);
    let name = "_dnsauth.broken.example.com";
    srv.set_servfail(name).await;
    let err = r.txt(name).await.unwrap_err();
    assert!(err.transient, "{err:?}");
    assert!(err.reason.contains(name), "{err}");
    assert!(err.reason.contains(&srv.dns.to_string()), "{err}");
    assert!(err.reason.contains("SERVFAIL"), "{err}");
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_transient_timeout() {
    // A real socket that reads nothing and says nothing.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let r = resolver(TxtResolverConfig {
        nameservers: vec![silent.local_addr().unwrap()],
        timeout: Duration::from_millis(300),
        ..TxtResolverConfig::default()
    });
    let err = r.txt("_dnsauth.a.example.com").await.unwrap_err();
    assert!(err.transient, "{err:?}");
    assert!(err.reason.contains("_dnsauth.a.example.com"), "{err}");
    assert!(
        err.reason
            .contains(&silent.local_addr().unwrap().to_string()),
        "{err}"
    );
}

#[tokio::test]
async fn addresses_come_from_the_configured_server() {
    let srv = ChallTestSrv::start().await;
    let r = asking(srv.dns);
    let ips = r.lookup_ip("anything.example.com").await.unwrap();
    assert_eq!(ips, ["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]);
    // Literals are not looked up.
    let ips = r.lookup_ip("[::1]").await.unwrap();
    assert_eq!(ips, ["::1".parse::<std::net::IpAddr>().unwrap()]);
}

/// challtestsrv answers with TTL 0, which no cache keeps; BIND answers with 60 s (and 60 s for
/// negative answers), so a cache would show here.
#[tokio::test]
async fn nothing_is_cached_even_when_the_ttl_would_allow_it() {
    let zone = "$TTL 60\n\
        @   IN SOA ns.shop.test. admin.shop.test. 1 60 60 600 60\n\
        @   IN NS  ns.shop.test.\n\
        ns  IN A   127.0.0.1\n";
    let named = Named::start(&[("shop.test", zone)]).await;
    let r = asking(named.addr);
    let name = "_dnsauth.www.shop.test";
    assert_eq!(r.txt(name).await.unwrap(), NONE);
    named
        .update(&format!("update add {name}. 60 TXT \"v1\""))
        .await;
    assert_eq!(r.txt(name).await.unwrap(), ["v1"]);
    named
        .update(&format!(
            "update delete {name}. TXT\nupdate add {name}. 60 TXT \"v2\""
        ))
        .await;
    assert_eq!(r.txt(name).await.unwrap(), ["v2"]);
    named.update(&format!("update delete {name}. TXT")).await;
    assert_eq!(r.txt(name).await.unwrap(), NONE);
}

/// `shop.test` as the resolver serves it and as its authoritative server does: the two differ,
/// as when a resolver still holds an old answer. NS `ns-dead` has no server behind it.
fn shop_zone(txt: &str) -> String {
    format!(
        "$TTL 60\n\
         @            IN SOA ns.shop.test. admin.shop.test. 1 60 60 600 60\n\
         @            IN NS  ns.shop.test.\n\
         @            IN NS  ns-dead.shop.test.\n\
         ns           IN A   127.0.0.1\n\
         ns-dead      IN A   127.0.0.2\n\
         _dnsauth.www IN TXT \"{txt}\"\n\
         _dnsauth.split IN TXT \"part1\" \"part2\"\n\
         _dnsauth.multi IN TXT \"one\"\n\
         _dnsauth.multi IN TXT \"two\"\n"
    )
}

/// A zone none of whose servers can be asked: one address with no server, one private address
/// the egress policy refuses.
const BROKEN_ZONE: &str = "$TTL 60\n\
    @            IN SOA ns1.broken.test. admin.broken.test. 1 60 60 600 60\n\
    @            IN NS  ns1.broken.test.\n\
    @            IN NS  ns2.broken.test.\n\
    ns1          IN A   127.0.0.2\n\
    ns2          IN A   10.9.8.7\n\
    _dnsauth.www IN TXT \"unreachable\"\n";

/// A resolver (BIND holding the "resolver's" view) and the authoritative server (another BIND,
/// on the port authoritative servers are asked on), and a TxtResolver in each mode.
async fn two_views() -> (Named, Named, TxtResolver, TxtResolver) {
    let resolver_view = shop_zone("from-resolver");
    let upstream =
        Named::start(&[("shop.test", &resolver_view), ("broken.test", BROKEN_ZONE)]).await;
    let authoritative_view = shop_zone("from-authoritative");
    let authoritative = Named::start(&[("shop.test", &authoritative_view)]).await;
    let config = TxtResolverConfig {
        nameservers: vec![upstream.addr],
        authoritative: false,
        timeout: Duration::from_millis(500),
    };
    let recursive = resolver(config.clone());
    let direct = resolver(TxtResolverConfig {
        authoritative: true,
        ..config
    })
    .with_authoritative_port(authoritative.addr.port());
    (upstream, authoritative, recursive, direct)
}

#[tokio::test]
async fn authoritative_mode_asks_the_zones_own_servers() {
    let (_upstream, _authoritative, recursive, direct) = two_views().await;
    let name = "_dnsauth.www.shop.test";
    assert_eq!(recursive.txt(name).await.unwrap(), ["from-resolver"]);
    // Found through the resolver: zone shop.test, servers ns and ns-dead; ns answers (ns-dead,
    // with nothing behind it, does not stop it).
    assert_eq!(direct.txt(name).await.unwrap(), ["from-authoritative"]);
    assert_eq!(
        direct.txt("_dnsauth.split.shop.test").await.unwrap(),
        ["part1part2"]
    );
    assert_eq!(
        sorted_txt(&direct, "_dnsauth.multi.shop.test").await,
        ["one", "two"]
    );
    // A name that does not exist: an answer, with nothing in it.
    assert_eq!(
        direct.txt("_dnsauth.nothing.shop.test").await.unwrap(),
        NONE
    );
    assert_eq!(
        direct.txt("_dnsauth.a.b.nothing.shop.test").await.unwrap(),
        NONE
    );
}

#[tokio::test]
async fn when_no_authoritative_server_can_answer_the_error_names_them() {
    let (_upstream, _authoritative, recursive, direct) = two_views().await;
    let name = "_dnsauth.www.broken.test";
    assert_eq!(recursive.txt(name).await.unwrap(), ["unreachable"]);
    let err = direct.txt(name).await.unwrap_err();
    assert!(err.reason.contains(name), "{err}");
    assert!(err.reason.contains("broken.test"), "{err}");
    // The one asked, and did not answer.
    assert!(err.reason.contains("ns1.broken.test"), "{err}");
    assert!(err.transient, "{err:?}");
    // The one not asked: refused by the egress policy, without its address.
    assert!(err.reason.contains("ns2.broken.test"), "{err}");
    assert!(err.reason.contains("refused by egress policy"), "{err}");
    assert!(!err.reason.contains("10.9.8.7"), "{err}");
}

#[tokio::test]
async fn a_name_in_no_zone_the_resolver_knows_is_an_error_in_authoritative_mode() {
    let (_upstream, _authoritative, recursive, direct) = two_views().await;
    // The test server has no root zone and refuses what it does not serve.
    let name = "_dnsauth.www.elsewhere.test";
    let err = recursive.txt(name).await.unwrap_err();
    assert!(err.reason.contains("REFUSED"), "{err}");
    assert!(!err.transient, "{err:?}");
    let err = direct.txt(name).await.unwrap_err();
    assert!(err.reason.contains("finding the zone"), "{err}");
    assert!(err.reason.contains("REFUSED"), "{err}");
}
