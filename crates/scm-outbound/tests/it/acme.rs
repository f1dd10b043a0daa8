//! The ACME adapter ([`scm_outbound::acme`]) against the real Pebble: accounts (with and
//! without External Account Binding), http-01 validated by Pebble's VA against a responder of
//! the test, dns-01 through challtestsrv's TXT records, an order resumed from its URL by a new
//! adapter (a restart), certificates that verify to Pebble's root, revocation, and how
//! failures are classified (Gone, Unavailable, Misconfigured, Refused).

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{CertificateParams, DistinguishedName, KeyPair};
use scm_core::issuers::acme::{
    AccountSecret, AcmeCa, AcmeError, ChallengeKind, ItemStatus, NewOrderSpec, OrderStatus,
    OrderView,
};
use scm_outbound::acme::{AcmeIssuerConfig, acme_ca};
use zeroize::Zeroizing;

use crate::support::challtestsrv::ChallTestSrv;
use crate::support::free_tcp_port;
use crate::support::http::{Responder, ok, response};
use crate::support::pebble::{self, EAB_KEYS, Listener, Options, Pebble};

/// How long an order may take to become ready or valid (measured: about a second).
const ORDER_WITHIN: Duration = Duration::from_secs(30);

fn config(directory_url: &str, listener: Option<&Listener>) -> AcmeIssuerConfig {
    AcmeIssuerConfig {
        name: "pebble".into(),
        kind: "acme".into(),
        directory_url: directory_url.into(),
        contact: Some("mailto:ops@shop.test".into()),
        trust_roots_file: listener.map(|l| l.root.clone()),
        eab_kid: None,
        eab_hmac_key_file: None,
        profile: None,
        challenges: vec!["http-01".into(), "dns-01".into()],
        dns01: None,
        max_orders: 100,
        max_orders_window_minutes: 180,
        max_names: 100,
        timeout_seconds: 10,
    }
}

fn spec(names: &[&str]) -> NewOrderSpec {
    NewOrderSpec {
        names: names.iter().map(|n| n.to_string()).collect(),
        replaces: None,
        profile: None,
    }
}

/// Answers http-01 requests with the key authorizations put in it.
struct Http01 {
    responder: Responder,
    tokens: Arc<Mutex<HashMap<String, String>>>,
}

impl Http01 {
    async fn start() -> Self {
        let tokens: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let map = Arc::clone(&tokens);
        let responder = Responder::start(move |seen| {
            let token = seen.target.strip_prefix("/.well-known/acme-challenge/");
            match token.and_then(|t| map.lock().unwrap().get(t).cloned()) {
                Some(key_authorization) => ok(&key_authorization),
                None => response("404 Not Found", "", b"no such token"),
            }
        })
        .await;
        Self { responder, tokens }
    }

    fn put(&self, token: &str, key_authorization: &str) {
        self.tokens
            .lock()
            .unwrap()
            .insert(token.to_owned(), key_authorization.to_owned());
    }
}

/// Polls the order until it has `status` (or fails, saying what it saw last).
async fn wait_for(
    ca: &dyn AcmeCa,
    account: &AccountSecret,
    url: &str,
    status: OrderStatus,
    pebble: &Pebble,
) -> OrderView {
    let deadline = Instant::now() + ORDER_WITHIN;
    loop {
        let view = ca.order(account, url).await.unwrap();
        if view.status == status {
            return view;
        }
        assert!(
            view.status != OrderStatus::Invalid && Instant::now() < deadline,
            "order never became {status:?}; last seen: {view:#?}\n{}",
            pebble.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Finalizes a ready order with a CSR for `names` and waits for its chain (PEM).
async fn finalize_and_download(
    ca: &dyn AcmeCa,
    account: &AccountSecret,
    url: &str,
    names: &[&str],
) -> String {
    let csr = csr(names);
    let view = ca.finalize(account, url, &csr).await.unwrap();
    assert!(
        matches!(view.status, OrderStatus::Processing | OrderStatus::Valid),
        "{view:#?}"
    );
    let deadline = Instant::now() + ORDER_WITHIN;
    loop {
        if let Some(chain) = ca.certificate(account, url).await.unwrap() {
            return chain;
        }
        assert!(Instant::now() < deadline, "no certificate for {url}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn csr(names: &[&str]) -> Vec<u8> {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.serialize_request(&key).unwrap().der().to_vec()
}

/// Checks with `openssl verify` that `chain` (leaf first) leads to Pebble's issuing root, and
/// returns the leaf's facts.
async fn verify_chain(chain: &str, pebble: &Pebble, names: &[&str]) -> scm_pki::CertificateInfo {
    let dir = tempfile::tempdir().unwrap();
    let blocks = scm_pki::pem_blocks(chain, "CERTIFICATE");
    assert!(blocks.len() >= 2, "leaf and intermediate expected: {chain}");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let leaf = write("leaf.pem", &blocks[0]);
    let rest = write("untrusted.pem", &blocks[1..].concat());
    let root = write("root.pem", &pebble.issuing_root_pem().await);
    let out = std::process::Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(&root)
        .arg("-untrusted")
        .arg(&rest)
        .arg(&leaf)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with(": OK"),
        "openssl verify: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info = scm_pki::parse_certificate_pem(chain).unwrap();
    let mut expected: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    expected.sort();
    let mut got = info.dns_names.clone();
    got.sort();
    assert_eq!(got, expected);
    info
}

fn copy_of(secret: &AccountSecret) -> AccountSecret {
    // What the store hands back after a restart: the same text, read anew.
    AccountSecret(Zeroizing::new(secret.0.as_str().to_owned()))
}

#[tokio::test]
async fn http01_from_a_new_account_to_a_chain_that_verifies_resumed_by_a_restarted_adapter() {
    if !pebble::installed() {
        return;
    }
    let dns = ChallTestSrv::start().await;
    let http01 = Http01::start().await;
    let listener = Listener::new();
    let pebble = Pebble::start(
        &listener,
        Options {
            dns: Some(dns.dns),
            http_port: Some(http01.responder.port()),
            ..Options::default()
        },
    )
    .await;
    let config = config(&pebble.directory_url(), Some(&listener));
    let names = ["www.shop.test", "shop.test"];

    let ca = acme_ca(&config).unwrap();
    let account = ca.create_account().await.unwrap();
    assert!(!format!("{account:?}").contains("key_pkcs8"));
    // Pebble 2.4 has no renewalInfo: no ARI, and `replaces` is left out rather than refused.
    assert!(!ca.offers_ari().await.unwrap());
    let view = ca
        .new_order(
            &account,
            &NewOrderSpec {
                replaces: Some(csr(&["old.shop.test"])),
                ..spec(&names)
            },
        )
        .await
        .unwrap();
    assert_eq!(view.status, OrderStatus::Pending, "{view:#?}");
    assert_eq!(view.error, None);
    let mut authorized: Vec<&str> = view
        .authorizations
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    authorized.sort();
    assert_eq!(authorized, ["shop.test", "www.shop.test"]);
    let thumbprints: Vec<&str> = view
        .authorizations
        .iter()
        .flat_map(|a| &a.challenges)
        .map(|c| {
            let (token, thumbprint) = c.key_authorization.split_once('.').unwrap();
            assert_eq!(token, c.token);
            assert_eq!(c.dns_value.len(), 43, "{c:?}");
            thumbprint
        })
        .collect();
    assert!(thumbprints.windows(2).all(|w| w[0] == w[1]));
    for a in &view.authorizations {
        assert_eq!(a.status, ItemStatus::Pending);
        assert!(!a.wildcard);
        // Pebble also offers tls-alpn-01, which OpenSCM does not solve; the order is stable.
        let kinds: Vec<&str> = a.challenges.iter().map(|c| c.kind.as_str()).collect();
        assert_eq!(kinds, ["http-01", "dns-01"], "{a:#?}");
    }

    // A restart: a new adapter, the credentials read back from the store.
    drop(ca);
    let ca = acme_ca(&config).unwrap();
    let account = copy_of(&account);
    let resumed = ca.order(&account, &view.url).await.unwrap();
    assert_eq!(
        resumed,
        OrderView {
            retry_after: None,
            ..view.clone()
        }
    );

    for a in &resumed.authorizations {
        let c = a
            .challenges
            .iter()
            .find(|c| c.kind == ChallengeKind::Http01)
            .unwrap();
        http01.put(&c.token, &c.key_authorization);
        ca.answer(&account, &resumed.url, &c.url).await.unwrap();
    }
    let ready = wait_for(&*ca, &account, &view.url, OrderStatus::Ready, &pebble).await;
    for a in &ready.authorizations {
        assert_eq!(a.status, ItemStatus::Valid, "{a:#?}");
    }
    // Pebble's VA fetched every token over http-01, at the names ordered.
    let seen = http01.responder.seen();
    for a in &resumed.authorizations {
        let token = &a
            .challenges
            .iter()
            .find(|c| c.kind == ChallengeKind::Http01)
            .unwrap()
            .token;
        assert!(
            seen.iter()
                .any(|s| s.target.ends_with(token.as_str()) && s.host.starts_with(a.name.as_str())),
            "{seen:?}"
        );
    }
    let chain = finalize_and_download(&*ca, &account, &view.url, &names).await;
    let leaf = verify_chain(&chain, &pebble, &names).await;
    // No renewalInfo: no window to suggest.
    assert_eq!(ca.renewal_info(&leaf.der).await.unwrap(), None);
    let valid = ca.order(&account, &view.url).await.unwrap();
    assert_eq!(valid.status, OrderStatus::Valid);
    // A chain downloaded again is the same chain.
    assert_eq!(
        ca.certificate(&account, &view.url).await.unwrap(),
        Some(chain)
    );
}

#[tokio::test]
async fn dns01_for_a_wildcard_and_its_apex() {
    if !pebble::installed() {
        return;
    }
    let dns = ChallTestSrv::start().await;
    let listener = Listener::new();
    let pebble = Pebble::start(
        &listener,
        Options {
            dns: Some(dns.dns),
            ..Options::default()
        },
    )
    .await;
    let ca = acme_ca(&config(&pebble.directory_url(), Some(&listener))).unwrap();
    let account = ca.create_account().await.unwrap();
    let names = ["*.wild.shop.test", "wild.shop.test"];
    let view = ca.new_order(&account, &spec(&names)).await.unwrap();
    let wildcard = view.authorizations.iter().find(|a| a.wildcard).unwrap();
    assert_eq!(wildcard.name, "wild.shop.test");
    // A wildcard is proven by dns-01 alone.
    assert_eq!(
        wildcard
            .challenges
            .iter()
            .map(|c| c.kind)
            .collect::<Vec<_>>(),
        [ChallengeKind::Dns01]
    );
    for a in &view.authorizations {
        let c = a
            .challenges
            .iter()
            .find(|c| c.kind == ChallengeKind::Dns01)
            .unwrap();
        // Both values at the one name: the apex's and the wildcard's.
        dns.set_txt(&format!("_acme-challenge.{}", a.name), &c.dns_value)
            .await;
        ca.answer(&account, &view.url, &c.url).await.unwrap();
    }
    wait_for(&*ca, &account, &view.url, OrderStatus::Ready, &pebble).await;
    let chain = finalize_and_download(&*ca, &account, &view.url, &names).await;
    verify_chain(&chain, &pebble, &names).await;
    dns.clear_txt("_acme-challenge.wild.shop.test").await;
}

#[tokio::test]
async fn a_failed_validation_makes_the_order_invalid_with_the_cas_problem() {
    if !pebble::installed() {
        return;
    }
    let dns = ChallTestSrv::start().await;
    let listener = Listener::new();
    let pebble = Pebble::start(
        &listener,
        Options {
            dns: Some(dns.dns),
            ..Options::default()
        },
    )
    .await;
    let ca = acme_ca(&config(&pebble.directory_url(), Some(&listener))).unwrap();
    let account = ca.create_account().await.unwrap();
    let view = ca
        .new_order(&account, &spec(&["nope.shop.test"]))
        .await
        .unwrap();
    let c = view.authorizations[0]
        .challenges
        .iter()
        .find(|c| c.kind == ChallengeKind::Dns01)
        .unwrap();
    // No TXT record was published.
    ca.answer(&account, &view.url, &c.url).await.unwrap();
    let invalid = wait_for(&*ca, &account, &view.url, OrderStatus::Invalid, &pebble).await;
    let a = &invalid.authorizations[0];
    assert_eq!(a.status, ItemStatus::Invalid);
    let failed = a.challenges.iter().find(|x| x.url == c.url).unwrap();
    assert_eq!(failed.status, ItemStatus::Invalid);
    let problem = failed.error.as_ref().expect("the challenge's problem");
    assert!(!problem.detail.is_empty(), "{problem:?}");
    // There is nothing to download from an invalid order.
    let e = ca.certificate(&account, &view.url).await.unwrap_err();
    assert!(matches!(e, AcmeError::Refused { .. }), "{e:?}");
}

#[tokio::test]
async fn external_account_binding_and_its_absence() {
    if !pebble::installed() {
        return;
    }
    let listener = Listener::new();
    let pebble = Pebble::start(
        &listener,
        Options {
            eab: true,
            always_valid: true,
            ..Options::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = |name: &str, key: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, format!("{key}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    };
    let (kid, key) = EAB_KEYS[0];
    let bound = AcmeIssuerConfig {
        eab_kid: Some(kid.into()),
        eab_hmac_key_file: Some(key_file("kid-1.key", key)),
        ..config(&pebble.directory_url(), Some(&listener))
    };
    let ca = acme_ca(&bound).unwrap();
    let account = ca.create_account().await.unwrap();
    let view = ca
        .new_order(&account, &spec(&["eab.shop.test"]))
        .await
        .unwrap();
    let c = &view.authorizations[0].challenges[0];
    ca.answer(&account, &view.url, &c.url).await.unwrap();
    wait_for(&*ca, &account, &view.url, OrderStatus::Ready, &pebble).await;

    // Without EAB the CA refuses: no use asking it again.
    let unbound = acme_ca(&config(&pebble.directory_url(), Some(&listener))).unwrap();
    let e = unbound.create_account().await.unwrap_err();
    assert!(
        matches!(&e, AcmeError::Refused { problem } if problem.short() == "externalAccountRequired"),
        "{e:?}"
    );
    // kid-1 with kid-2's key: the MAC does not verify.
    let wrong = AcmeIssuerConfig {
        eab_kid: Some(kid.into()),
        eab_hmac_key_file: Some(key_file("wrong.key", EAB_KEYS[1].1)),
        ..config(&pebble.directory_url(), Some(&listener))
    };
    let e = acme_ca(&wrong).unwrap().create_account().await.unwrap_err();
    assert!(matches!(e, AcmeError::Refused { .. }), "{e:?}");
}

#[tokio::test]
async fn orders_the_ca_does_not_know_are_gone() {
    if !pebble::installed() {
        return;
    }
    let listener = Listener::new();
    let pebble = Pebble::start(
        &listener,
        Options {
            always_valid: true,
            ..Options::default()
        },
    )
    .await;
    let ca = acme_ca(&config(&pebble.directory_url(), Some(&listener))).unwrap();
    let account = ca.create_account().await.unwrap();
    let view = ca
        .new_order(&account, &spec(&["gone.shop.test"]))
        .await
        .unwrap();
    let unknown = format!("{}/doesnotexist", view.url.rsplit_once('/').unwrap().0);
    let gone = AcmeError::Gone {
        url: unknown.clone(),
    };
    assert_eq!(ca.order(&account, &unknown).await.unwrap_err(), gone);
    assert_eq!(ca.certificate(&account, &unknown).await.unwrap_err(), gone);
    assert_eq!(
        ca.finalize(&account, &unknown, &csr(&["gone.shop.test"]))
            .await
            .unwrap_err(),
        gone
    );
    // A challenge URL that is not the order's: that order is not the one to go on with.
    let e = ca
        .answer(&account, &view.url, &pebble.url("chalZ/nothing"))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        AcmeError::Gone {
            url: view.url.clone()
        }
    );

    // Credentials made at another directory: this CA cannot know the account.
    let mut moved: serde_json::Value = serde_json::from_str(&account.0).unwrap();
    let account_url = moved["id"].as_str().unwrap().to_owned();
    moved["directory"] = "https://elsewhere.test/dir".into();
    let moved = AccountSecret(Zeroizing::new(moved.to_string()));
    assert_eq!(
        ca.order(&moved, &view.url).await.unwrap_err(),
        AcmeError::Gone { url: account_url }
    );
    // Credentials that are not credentials.
    let junk = AccountSecret(Zeroizing::new("{\"id\":1}".into()));
    let e = ca.order(&junk, &view.url).await.unwrap_err();
    assert!(matches!(e, AcmeError::Misconfigured { .. }), "{e:?}");
}

#[tokio::test]
async fn a_ca_that_is_down_is_unavailable_then_used_when_back_and_a_restarted_ca_forgets_accounts()
{
    if !pebble::installed() {
        return;
    }
    let listener = Listener::new();
    let listen = free_tcp_port();
    let ca = acme_ca(&config(&format!("https://{listen}/dir"), Some(&listener))).unwrap();
    // Nothing listens yet: built anyway, unavailable when used.
    let e = ca.create_account().await.unwrap_err();
    assert!(
        matches!(&e, AcmeError::Unavailable { reason, .. } if reason.contains("connect")),
        "{e:?}"
    );
    assert!(matches!(
        ca.offers_ari().await.unwrap_err(),
        AcmeError::Unavailable { .. }
    ));

    // The CA comes up on that address: the same adapter fetches the directory now.
    let options = Options {
        always_valid: true,
        listen: Some(listen),
        ..Options::default()
    };
    let pebble = Pebble::start(&listener, options.clone()).await;
    assert!(!ca.offers_ari().await.unwrap());
    let account = ca.create_account().await.unwrap();
    let view = ca
        .new_order(&account, &spec(&["down.shop.test"]))
        .await
        .unwrap();

    // Down again, in the middle of the order.
    pebble.stop();
    let e = ca.order(&account, &view.url).await.unwrap_err();
    assert!(matches!(e, AcmeError::Unavailable { .. }), "{e:?}");
    assert!(e.try_next_issuer());

    // Back, but with its memory lost (Pebble keeps state in memory): the account is gone.
    let _pebble = Pebble::start(&listener, options).await;
    let account_url = serde_json::from_str::<serde_json::Value>(&account.0).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let e = ca.order(&account, &view.url).await.unwrap_err();
    assert_eq!(e, AcmeError::Gone { url: account_url });
    // A new account works at once.
    let account = ca.create_account().await.unwrap();
    ca.new_order(&account, &spec(&["down.shop.test"]))
        .await
        .unwrap();
}

#[tokio::test]
async fn wrong_trust_and_wrong_directories_are_misconfigurations() {
    if !pebble::installed() {
        return;
    }
    let listener = Listener::new();
    let pebble = Pebble::start(
        &listener,
        Options {
            always_valid: true,
            ..Options::default()
        },
    )
    .await;
    // The listener's CA is in no store the adapter trusts.
    let untrusted = acme_ca(&config(&pebble.directory_url(), None)).unwrap();
    let e = untrusted.create_account().await.unwrap_err();
    assert!(
        matches!(&e, AcmeError::Misconfigured { reason } if reason.contains("trust_roots_file")),
        "{e:?}"
    );
    // A profile the CA does not offer (Pebble 2.4 offers none).
    let profiled = acme_ca(&AcmeIssuerConfig {
        profile: Some("shortlived".into()),
        ..config(&pebble.directory_url(), Some(&listener))
    })
    .unwrap();
    let account = profiled.create_account().await.unwrap();
    let e = profiled
        .new_order(&account, &spec(&["profile.shop.test"]))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, AcmeError::Misconfigured { reason } if reason.contains("offers no profiles")),
        "{e:?}"
    );
    // A URL of the CA that is no directory: 404, or something else than a directory.
    for url in [pebble.url("not-a-directory"), pebble.url("nonce-plz")] {
        let ca = acme_ca(&config(&url, Some(&listener))).unwrap();
        let e = ca.create_account().await.unwrap_err();
        assert!(
            matches!(&e, AcmeError::Misconfigured { reason } if reason.contains("directory_url")),
            "{url}: {e:?}"
        );
        assert!(matches!(
            ca.offers_ari().await.unwrap_err(),
            AcmeError::Misconfigured { .. }
        ));
    }
}

#[tokio::test]
async fn refusals_of_names_and_of_csrs() {
    if !pebble::installed() {
        return;
    }
    let listener = Listener::new();
    let pebble = Pebble::start(
        &listener,
        Options {
            always_valid: true,
            ..Options::default()
        },
    )
    .await;
    let ca = acme_ca(&config(&pebble.directory_url(), Some(&listener))).unwrap();
    let account = ca.create_account().await.unwrap();
    let e = ca
        .new_order(&account, &spec(&["bad_name!.shop.test"]))
        .await
        .unwrap_err();
    assert!(matches!(e, AcmeError::Refused { .. }), "{e:?}");
    assert!(e.try_next_issuer());

    let view = ca
        .new_order(&account, &spec(&["csr.shop.test"]))
        .await
        .unwrap();
    // Finalizing before the order is ready.
    let e = ca
        .finalize(&account, &view.url, &csr(&["csr.shop.test"]))
        .await
        .unwrap_err();
    assert!(matches!(e, AcmeError::Refused { .. }), "{e:?}");
    let c = &view.authorizations[0].challenges[0];
    ca.answer(&account, &view.url, &c.url).await.unwrap();
    wait_for(&*ca, &account, &view.url, OrderStatus::Ready, &pebble).await;
    // A CSR for other names.
    let e = ca
        .finalize(&account, &view.url, &csr(&["other.shop.test"]))
        .await
        .unwrap_err();
    assert!(matches!(e, AcmeError::Refused { .. }), "{e:?}");
}

#[tokio::test]
async fn revocation_reaches_the_ca() {
    if !pebble::installed() {
        return;
    }
    let listener = Listener::new();
    let pebble = Pebble::start(
        &listener,
        Options {
            always_valid: true,
            ..Options::default()
        },
    )
    .await;
    let ca = acme_ca(&config(&pebble.directory_url(), Some(&listener))).unwrap();
    let account = ca.create_account().await.unwrap();
    let names = ["revoked.shop.test"];
    let view = ca.new_order(&account, &spec(&names)).await.unwrap();
    let c = &view.authorizations[0].challenges[0];
    ca.answer(&account, &view.url, &c.url).await.unwrap();
    wait_for(&*ca, &account, &view.url, OrderStatus::Ready, &pebble).await;
    let chain = finalize_and_download(&*ca, &account, &view.url, &names).await;
    let leaf = verify_chain(&chain, &pebble, &names).await;
    assert_eq!(pebble.cert_status(&leaf.serial_hex).await, "Valid");

    // 7 is no reason code: refused before asking the CA.
    let e = ca.revoke(&account, &leaf.der, Some(7)).await.unwrap_err();
    assert!(
        matches!(&e, AcmeError::Refused { problem } if problem.short() == "badRevocationReason"),
        "{e:?}"
    );
    ca.revoke(&account, &leaf.der, Some(1)).await.unwrap();
    assert_eq!(pebble.cert_status(&leaf.serial_hex).await, "Revoked");
    // Again (an attempt whose answer was lost): already done, not an error.
    ca.revoke(&account, &leaf.der, Some(1)).await.unwrap();
}

#[tokio::test]
async fn secret_files_others_may_read_are_refused() {
    // No CA needed: the check is at build time.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("eab.key");
    std::fs::write(&p, EAB_KEYS[0].1).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
    let c = AcmeIssuerConfig {
        eab_kid: Some("kid-1".into()),
        eab_hmac_key_file: Some(p.clone()),
        ..config("https://127.0.0.1:1/dir", None)
    };
    let e = acme_ca(&c).map(|_| ()).unwrap_err();
    assert!(
        e.starts_with("issuers \"pebble\": eab_hmac_key_file: "),
        "{e}"
    );
    assert!(e.contains("chmod 600") && !e.contains(EAB_KEYS[0].1), "{e}");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    acme_ca(&c).unwrap();
    assert!(Path::new(&p).exists());
}

/// An HTTPS responder on loopback (a certificate of a test CA), one request per connection,
/// answering what `handler` returns for the request target; what it was asked is recorded.
async fn https_responder(
    ca: &crate::support::tls::TestCa,
    handler: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static,
) -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let leaf = ca.leaf(&["127.0.0.1"]);
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(leaf.chain_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = Arc::clone(&seen);
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, log, handler) =
                (acceptor.clone(), Arc::clone(&log), Arc::clone(&handler));
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut chunk = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&chunk[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head);
                let target = text.split(' ').nth(1).unwrap_or_default().to_owned();
                log.lock().unwrap().push(target.clone());
                let _ = tls.write_all(&handler(&target)).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (addr, seen)
}

/// A certificate whose ARI CertID is RFC 9773's example (`aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE`).
fn rfc9773_certificate() -> Vec<u8> {
    let mut ca_params = CertificateParams::default();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(vec![
        0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3, 0x7B, 0x84, 0x7B, 0xA0, 0xAE,
        0x2C, 0xDE, 0x01, 0xC8, 0xD4,
    ]);
    let issuer = rcgen::Issuer::new(ca_params, KeyPair::generate().unwrap());
    let mut params = CertificateParams::new(vec!["www.shop.test".to_owned()]).unwrap();
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x87, 0x65, 0x43, 0x21]));
    params.use_authority_key_identifier_extension = true;
    params
        .signed_by(&KeyPair::generate().unwrap(), &issuer)
        .unwrap()
        .der()
        .to_vec()
}

/// Pebble 2.4 has no ARI: a stand-in directory with `renewalInfo` checks the request the
/// adapter makes and how it reads the answers (the e2e suite has a fuller stand-in).
#[tokio::test]
async fn renewal_information_is_asked_for_by_certid() {
    let ca = crate::support::tls::TestCa::new("ari stand-in");
    let root = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(root.path(), ca.root_pem()).unwrap();
    let base: Arc<Mutex<String>> = Arc::default();
    let served = Arc::clone(&base);
    let (addr, seen) = https_responder(&ca, move |target| {
        let base = served.lock().unwrap().clone();
        let json = |status: &str, extra: &str, body: String| {
            response(
                status,
                &format!("Content-Type: application/json\r\n{extra}"),
                body.as_bytes(),
            )
        };
        match target {
            "/dir" => json(
                "200 OK",
                "",
                serde_json::json!({
                    "newNonce": format!("{base}/nonce"),
                    "newAccount": format!("{base}/account"),
                    "newOrder": format!("{base}/order"),
                    "renewalInfo": format!("{base}/ari/"),
                })
                .to_string(),
            ),
            "/ari/aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE" => json(
                "200 OK",
                "Retry-After: 21600\r\n",
                r#"{"suggestedWindow":{"start":"2025-01-02T04:00:00Z","end":"2025-01-03T04:00:00Z"},
                    "explanationURL":"https://acme.example.com/docs/ari"}"#
                    .into(),
            ),
            _ => json(
                "404 Not Found",
                "",
                r#"{"type":"urn:ietf:params:acme:error:malformed","detail":"unknown certificate","status":404}"#.into(),
            ),
        }
    })
    .await;
    *base.lock().unwrap() = format!("https://{addr}");
    let adapter = acme_ca(&AcmeIssuerConfig {
        trust_roots_file: Some(root.path().to_owned()),
        ..config(&format!("https://{addr}/dir"), None)
    })
    .unwrap();
    assert!(adapter.offers_ari().await.unwrap());
    let window = adapter
        .renewal_info(&rfc9773_certificate())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (window.start_ms, window.end_ms),
        (1_735_790_400_000, 1_735_876_800_000)
    );
    assert_eq!(window.retry_after, Some(Duration::from_secs(21600)));
    assert_eq!(
        window.explanation_url.as_deref(),
        Some("https://acme.example.com/docs/ari")
    );
    // The trailing slash of renewalInfo is not doubled.
    assert!(
        seen.lock()
            .unwrap()
            .contains(&"/ari/aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE".to_owned()),
        "{seen:?}"
    );
    // A certificate the CA does not know.
    let other = ca.leaf(&["www.shop.test"]);
    let e = adapter.renewal_info(&other.der).await.unwrap_err();
    assert!(
        matches!(&e, AcmeError::Refused { problem } if problem.detail == "unknown certificate"),
        "{e:?}"
    );
}
