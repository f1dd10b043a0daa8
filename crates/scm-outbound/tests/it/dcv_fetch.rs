//! [`ValidationFileFetcher`] against an HTTP responder on loopback, the names resolved by a real
//! DNS server (challtestsrv answers every A query with 127.0.0.1).

use std::sync::Arc;

use scm_core::lifecycle::probes::{FileFetch, ProbeError};
use scm_outbound::dcv::{FileFetchConfig, MAX_BODY_BYTES, ValidationFileFetcher};
use scm_outbound::dns::{TxtResolver, TxtResolverConfig};
use scm_outbound::http::EgressPolicy;

use crate::support::challtestsrv::ChallTestSrv;
use crate::support::http::{Responder, Seen, ok, redirect, response};

const FILE: &str = "/.well-known/pki-validation/fileauth.txt";

fn loopback() -> EgressPolicy {
    EgressPolicy {
        allow_loopback: true,
        ..EgressPolicy::default()
    }
}

/// A web server answering with `handler`, the DNS that points every name at it, and a fetcher
/// whose http port is the web server's, under `policy`.
struct Setup {
    web: Responder,
    fetcher: ValidationFileFetcher,
    _dns: ChallTestSrv,
}

impl Setup {
    async fn start(
        policy: EgressPolicy,
        handler: impl Fn(&Seen) -> Vec<u8> + Send + Sync + 'static,
    ) -> Self {
        let dns = ChallTestSrv::start().await;
        let web = Responder::start(handler).await;
        let resolver = TxtResolver::new(
            &TxtResolverConfig {
                nameservers: vec![dns.dns],
                ..TxtResolverConfig::default()
            },
            &policy,
        )
        .unwrap();
        let config = FileFetchConfig {
            http_port: web.port(),
        };
        let fetcher = ValidationFileFetcher::new(&policy, &config, Arc::new(resolver)).unwrap();
        Self {
            web,
            fetcher,
            _dns: dns,
        }
    }

    /// The URL as the fetcher reports it: with the web server's port.
    fn fetched(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.web.port())
    }

    fn requests(&self) -> usize {
        self.web.seen().len()
    }
}

fn refusal(result: Result<scm_core::lifecycle::probes::FetchedFile, ProbeError>) -> ProbeError {
    match result {
        Err(e) => e,
        Ok(found) => panic!("expected a failure, fetched {found:?}"),
    }
}

#[tokio::test]
async fn a_200_gives_the_body_as_sent_and_the_url_fetched() {
    let s = Setup::start(loopback(), |_| ok("token-123\n")).await;
    let found = s
        .fetcher
        .fetch(&format!("http://a.example.com{FILE}"))
        .await
        .unwrap();
    assert_eq!(found.body, "token-123\n");
    assert_eq!(found.url, s.fetched("a.example.com", FILE));
    let seen = s.web.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].target, FILE);
    assert_eq!(seen[0].host, format!("a.example.com:{}", s.web.port()));
    // The http port written out is the same URL.
    let again = s
        .fetcher
        .fetch(&s.fetched("a.example.com", FILE))
        .await
        .unwrap();
    assert_eq!(again, found);
}

#[tokio::test]
async fn a_missing_file_is_a_lasting_failure_naming_url_and_status() {
    let s = Setup::start(loopback(), |_| response("404 Not Found", "", b"no")).await;
    let err = refusal(
        s.fetcher
            .fetch(&format!("http://a.example.com{FILE}"))
            .await,
    );
    assert!(!err.transient, "{err:?}");
    assert!(
        err.reason.contains(&s.fetched("a.example.com", FILE)),
        "{err}"
    );
    assert!(err.reason.contains("404"), "{err}");
}

#[tokio::test]
async fn a_server_error_is_transient() {
    let s = Setup::start(loopback(), |_| response("503 Service Unavailable", "", b"")).await;
    let err = refusal(
        s.fetcher
            .fetch(&format!("http://a.example.com{FILE}"))
            .await,
    );
    assert!(err.transient, "{err:?}");
    assert!(err.reason.contains("503"), "{err}");
}

#[tokio::test]
async fn the_four_allowed_redirects_are_followed_to_another_host() {
    for status in [
        "301 Moved Permanently",
        "302 Found",
        "307 Temporary Redirect",
        "308 Permanent Redirect",
    ] {
        let s = Setup::start(loopback(), move |seen| {
            if seen.host.starts_with("a.example.com") {
                // No port: http on the http port.
                redirect(
                    status,
                    "http://b.example.com/.well-known/pki-validation/moved.txt",
                )
            } else {
                ok("moved-token")
            }
        })
        .await;
        let found = s
            .fetcher
            .fetch(&format!("http://a.example.com{FILE}"))
            .await
            .unwrap();
        assert_eq!(found.body, "moved-token", "{status}");
        let moved = "/.well-known/pki-validation/moved.txt";
        assert_eq!(found.url, s.fetched("b.example.com", moved), "{status}");
        let seen = s.web.seen();
        assert_eq!(seen.len(), 2, "{status}");
        assert!(seen.iter().all(|r| r.method == "GET"), "{status}: {seen:?}");
    }
}

#[tokio::test]
async fn a_relative_location_is_followed_on_the_same_host() {
    let s = Setup::start(loopback(), |seen| {
        if seen.target == FILE {
            redirect("302 Found", "other.txt")
        } else {
            ok("other")
        }
    })
    .await;
    let found = s
        .fetcher
        .fetch(&format!("http://a.example.com{FILE}"))
        .await
        .unwrap();
    let other = "/.well-known/pki-validation/other.txt";
    assert_eq!(found.url, s.fetched("a.example.com", other));
    assert_eq!(found.body, "other");
}

#[tokio::test]
async fn redirects_to_other_schemes_ports_or_with_credentials_are_not_sent() {
    // A second server on another port, which must never be asked.
    let elsewhere = Responder::start(|_| ok("wrong place")).await;
    let other = elsewhere.port();
    let targets = [
        format!("ftp://b.example.com{FILE}"),
        format!("http://b.example.com:{other}{FILE}"),
        format!("https://b.example.com:{other}{FILE}"),
        format!("http://user:secret@b.example.com{FILE}"),
    ];
    for target in targets {
        let location = target.clone();
        let s = Setup::start(loopback(), move |_| redirect("302 Found", &location)).await;
        let err = refusal(
            s.fetcher
                .fetch(&format!("http://a.example.com{FILE}"))
                .await,
        );
        assert!(!err.transient, "{target}: {err:?}");
        assert!(err.reason.contains("not followed"), "{target}: {err}");
        assert!(!err.reason.contains("secret"), "{target}: {err}");
        assert_eq!(s.requests(), 1, "{target}");
    }
    assert_eq!(elsewhere.seen().len(), 0);
}

#[tokio::test]
async fn other_redirect_statuses_are_failures() {
    for status in ["300 Multiple Choices", "303 See Other", "304 Not Modified"] {
        let s = Setup::start(loopback(), move |_| redirect(status, FILE)).await;
        let err = refusal(
            s.fetcher
                .fetch(&format!("http://a.example.com{FILE}"))
                .await,
        );
        assert!(!err.transient, "{status}: {err:?}");
        assert!(err.reason.contains(&status[..3]), "{status}: {err}");
        assert_eq!(s.requests(), 1, "{status}");
    }
}

/// `/.well-known/pki-validation/<n>` redirects to `<n + 1>` while `n < last`.
fn chain(last: Option<u32>) -> impl Fn(&Seen) -> Vec<u8> + Send + Sync + 'static {
    move |seen| {
        let n: u32 = seen
            .target
            .rsplit('/')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        match last {
            Some(last) if n >= last => ok("end of the chain"),
            _ => redirect(
                "302 Found",
                &format!("/.well-known/pki-validation/{}", n + 1),
            ),
        }
    }
}

#[tokio::test]
async fn ten_redirects_are_followed_and_an_eleventh_is_not() {
    let start = "http://a.example.com/.well-known/pki-validation/0";
    let s = Setup::start(loopback(), chain(Some(10))).await;
    let found = s.fetcher.fetch(start).await.unwrap();
    assert_eq!(found.body, "end of the chain");
    assert_eq!(s.requests(), 11);

    let s = Setup::start(loopback(), chain(None)).await;
    let err = refusal(s.fetcher.fetch(start).await);
    assert!(!err.transient, "{err:?}");
    assert!(err.reason.contains("more than 10 redirects"), "{err}");
    assert_eq!(s.requests(), 11);
}

#[tokio::test]
async fn a_body_over_16_kib_is_refused() {
    let cap = usize::try_from(MAX_BODY_BYTES).unwrap();
    let s = Setup::start(loopback(), move |seen| {
        let size = if seen.target.ends_with("big") {
            cap + 1
        } else {
            cap
        };
        ok(&"x".repeat(size))
    })
    .await;
    let found = s
        .fetcher
        .fetch("http://a.example.com/.well-known/pki-validation/fits")
        .await
        .unwrap();
    assert_eq!(found.body.len(), cap);
    let err = refusal(
        s.fetcher
            .fetch("http://a.example.com/.well-known/pki-validation/big")
            .await,
    );
    assert!(!err.transient, "{err:?}");
    assert!(err.reason.contains(&cap.to_string()), "{err}");
}

#[tokio::test]
async fn only_validation_file_urls_are_fetched() {
    let s = Setup::start(loopback(), |_| ok("token")).await;
    let port = s.web.port();
    let other = port.wrapping_add(1);
    let bad = [
        format!("https://a.example.com{FILE}"),
        format!("http://a.example.com:{other}{FILE}"),
        format!("http://127.0.0.1:{port}{FILE}"),
        "http://a.example.com/index.html".to_owned(),
        "http://a.example.com/.well-known/pki-validation/".to_owned(),
        "http://a.example.com/.well-known/pki-validation/a/b.txt".to_owned(),
        format!("http://a.example.com{FILE}?x=1"),
        format!("http://user@a.example.com{FILE}"),
        "not a url".to_owned(),
    ];
    for url in bad {
        let err = refusal(s.fetcher.fetch(&url).await);
        assert!(!err.transient, "{url}: {err:?}");
        assert!(
            err.reason.contains("not a validation file URL"),
            "{url}: {err}"
        );
    }
    assert_eq!(s.requests(), 0);
}

#[tokio::test]
async fn every_hop_is_held_to_the_egress_policy() {
    // The default policy refuses loopback: the name resolves only there.
    let s = Setup::start(EgressPolicy::default(), |_| ok("token")).await;
    let err = refusal(
        s.fetcher
            .fetch(&format!("http://a.example.com{FILE}"))
            .await,
    );
    assert!(!err.transient, "{err:?}");
    assert!(err.reason.contains("refused by egress policy"), "{err}");
    assert_eq!(s.requests(), 0);

    // Loopback allowed, but a redirect to a private address is not.
    let s = Setup::start(loopback(), |_| {
        redirect("302 Found", &format!("http://10.1.2.3{FILE}"))
    })
    .await;
    let err = refusal(
        s.fetcher
            .fetch(&format!("http://a.example.com{FILE}"))
            .await,
    );
    assert!(!err.transient, "{err:?}");
    assert!(err.reason.contains("refused by egress policy"), "{err}");
    assert!(err.reason.contains("http://10.1.2.3"), "{err}");
}
