//! The v3 certificate routes: subscribe (buy), show, apply, export, push and list, with their
//! ranges, names, statuses, tenancy and refusals.

use std::collections::BTreeSet;
use std::sync::Arc;

use scm_client::{Client, ListQuery};
use scm_core::{Clock, FixedClock};
use scm_pki::{KeyAlgorithm, parse_certificate_pem, pem_blocks};
use scm_proto::v3::{ApplicationBody, ListCertificatesResponse, PurchaseBody, ResourceTag};
use scm_proto::{DomainId, Operation};
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

use crate::harness::TestServer;
use crate::routes::{
    apply_body, buy_body, count, csr, invalid, issued, listed, paid, refused, request_id, shown,
    v3_push,
};

fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// `YYYY-MM-DD HH:MM:SS.0` (UTC) as a time.
fn api_time(s: &str) -> OffsetDateTime {
    PrimitiveDateTime::parse(
        s,
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second].0"),
    )
    .unwrap_or_else(|e| panic!("{s:?} is not YYYY-MM-DD HH:MM:SS.0: {e}"))
    .assume_utc()
}

fn multi(domains: i64) -> PurchaseBody {
    PurchaseBody {
        domain_type: Some("MULTI_DOMAIN".into()),
        domain_numbers: Some(domains),
        ..buy_body()
    }
}

async fn bought(client: &Client, body: &PurchaseBody) -> Vec<String> {
    client
        .subscribe(body)
        .await
        .unwrap()
        .cert
        .into_iter()
        .map(|c| c.cert_id)
        .collect()
}

#[tokio::test]
async fn routes_subscribe_checks_the_v3_ranges() {
    let s = TestServer::start().await;
    // Accepted: 100 certificates, 3 years, each v3 type, the multi-domain breakdown, tags.
    assert_eq!(
        bought(
            &s.admin,
            &PurchaseBody {
                order_number: Some(100),
                ..buy_body()
            }
        )
        .await
        .len(),
        100
    );
    let three_years = bought(
        &s.admin,
        &PurchaseBody {
            effective_time: Some(3),
            cert_type: Some("DV_SSL_CERT_BASIC".into()),
            ..buy_body()
        },
    )
    .await;
    let c = s.admin.show(&three_years[0]).await.unwrap();
    assert_eq!(
        // Three years bought, delivered as yearly certificates: one certificate's 12 months.
        (c.validity_period, c.cert_type.as_deref()),
        (12, Some("DV_SSL_CERT_BASIC"))
    );
    let split = bought(
        &s.admin,
        &PurchaseBody {
            primary_domain_type: Some("WILDCARD_DOMAIN".into()),
            single_domain_number: Some(1),
            wildcard_domain_number: Some(1),
            enterprise_project_id: Some("all".into()),
            tags: Some(vec![ResourceTag {
                key: Some("team".into()),
                value: Some("web".into()),
            }]),
            is_auto_pay: Some(true),
            ..multi(3)
        },
    )
    .await;
    let c = s.admin.show(&split[0]).await.unwrap();
    assert_eq!(c.status, "PAID", "paid at once");
    assert_eq!(c.multi_domain_type.as_deref(), Some("primary_wildcard"));
    // `wildcard_count` counts the additional wildcard domains: not the wildcard primary.
    assert_eq!((c.domain_count, c.wildcard_count), (3, 1));
    // The tags given at buy are the certificate's tags.
    let tags = s.admin.certificate_tags(&split[0]).await.unwrap().tags;
    assert_eq!(
        tags.iter()
            .map(|t| (t.key.as_deref(), t.value.as_deref()))
            .collect::<Vec<_>>(),
        [(Some("team"), Some("web"))]
    );
    // The v3 page's `domain_numbers` starts at 1, for MULTI_DOMAIN too.
    let one = bought(&s.admin, &multi(1)).await;
    assert_eq!(s.admin.show(&one[0]).await.unwrap().domain_count, 1);
    let total = count(&s.admin).await;
    assert_eq!(total, 103);

    let with = |f: fn(&mut PurchaseBody)| {
        let mut b = buy_body();
        f(&mut b);
        json(&b)
    };
    let tag = |k: &str| ResourceTag {
        key: Some(k.into()),
        value: Some("v".into()),
    };
    let eleven: Vec<ResourceTag> = (0..11).map(|i| tag(&format!("k{i}"))).collect();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (with(|b| b.order_number = Some(0)), "order_number"),
        (with(|b| b.order_number = Some(101)), "order_number"),
        (with(|b| b.effective_time = Some(0)), "effective_time"),
        (with(|b| b.effective_time = Some(4)), "effective_time"),
        (with(|b| b.domain_numbers = Some(2)), "domain_numbers"),
        (json(&multi(0)), "domain_numbers"),
        (json(&multi(101)), "domain_numbers"),
        (
            with(|b| b.cert_type = Some("CHEAP_SSL_CERT".into())),
            "cert_type",
        ),
        (
            with(|b| b.domain_type = Some("ANY_DOMAIN".into())),
            "domain_type",
        ),
        (with(|b| b.cert_brand = None), "cert_brand"),
        (with(|b| b.cert_brand = Some("ACME".into())), "cert_brand"),
        (
            with(|b| b.agree_privacy_protection = Some(false)),
            "agree_privacy_protection",
        ),
        (
            json(&PurchaseBody {
                tags: Some(eleven),
                ..buy_body()
            }),
            "tags",
        ),
        (
            json(&PurchaseBody {
                tags: Some(vec![tag("ok"), tag("")]),
                ..buy_body()
            }),
            "tags[1].key",
        ),
        (
            json(&PurchaseBody {
                tags: Some(vec![tag("same"), tag("same")]),
                ..buy_body()
            }),
            "tags[1].key",
        ),
        (
            with(|b| b.enterprise_project_id = Some("prod".into())),
            "enterprise_project_id",
        ),
        (
            with(|b| b.single_domain_number = Some(1)),
            "single_domain_number",
        ),
        (
            json(&PurchaseBody {
                single_domain_number: Some(2),
                wildcard_domain_number: Some(1),
                ..multi(3)
            }),
            "domain_numbers",
        ),
        (
            json(&PurchaseBody {
                primary_domain_type: Some("ANY".into()),
                ..multi(2)
            }),
            "primary_domain_type",
        ),
        (
            br#"{"cert_brand": "GLOBALSIGN", "cert_type": "DV_SSL_CERT", "domain_type": "SINGLE_DOMAIN",
                "effective_time": 1, "domain_numbers": 1, "order_number": "x",
                "agree_privacy_protection": true}"#
                .to_vec(),
            "order_number",
        ),
        (
            br#"{"cert_brand": "GLOBALSIGN", "cert_type": "DV_SSL_CERT", "domain_type": "SINGLE_DOMAIN",
                "effective_time": 1, "domain_numbers": 1, "order_number": 1,
                "agree_privacy_protection": "true"}"#
                .to_vec(),
            "agree_privacy_protection",
        ),
        (
            br#"{"cert_brand": "GLOBALSIGN", "tags": [{"key": 1}]}"#.to_vec(),
            "tags[0].key",
        ),
    ];
    for (body, field) in cases {
        let resp = s
            .admin
            .call(Operation::SubscribeCertificate, &[], &[], Some(&body))
            .await
            .unwrap();
        invalid(&resp, field);
        assert_eq!(count(&s.admin).await, total, "refused ({field}) but bought");
    }
    s.stop().await;
}

#[tokio::test]
async fn routes_show_describes_paid_and_issued_certificates() {
    let s = TestServer::start().await;
    let order = s.admin.subscribe(&buy_body()).await.unwrap();
    let id = order.cert[0].cert_id.clone();
    let c = s.admin.show(&id).await.unwrap();
    assert_eq!(c.id, id);
    assert_eq!(c.status, "PAID");
    assert_eq!(c.order_id.as_deref(), Some(order.order_id.as_str()));
    assert_eq!(c.push_support, "OFF");
    assert_eq!(c.brand.as_deref(), Some("GLOBALSIGN"));
    assert_eq!(c.cert_type.as_deref(), Some("DV_SSL_CERT"));
    assert_eq!(c.domain_type.as_deref(), Some("SINGLE_DOMAIN"));
    assert_eq!(
        (c.validity_period, c.domain_count, c.wildcard_count),
        (12, 1, 0)
    );
    assert_eq!(c.enterprise_project_id, "0");
    assert!(c.fingerprint.is_none() && c.signature_algorithm.is_none());
    assert!(c.issue_time.is_none() && c.not_before.is_none() && c.not_after.is_none());
    assert!(c.domain.is_none() && c.application_info.is_none());
    // Every documented key is present, unset ones as null.
    let raw = shown(&s.admin, &id).await;
    for key in [
        "id",
        "status",
        "order_id",
        "name",
        "type",
        "brand",
        "push_support",
        "revoke_reason",
        "signature_algorithm",
        "issue_time",
        "not_before",
        "not_after",
        "validity_period",
        "validation_method",
        "domain_type",
        "multi_domain_type",
        "domain",
        "sans",
        "domain_count",
        "wildcard_count",
        "fingerprint",
        "shared",
        "application_info",
        "description",
        "enterprise_project_id",
        "authentification",
    ] {
        assert!(raw.get(key).is_some(), "{key} missing: {raw}");
    }

    let before = OffsetDateTime::now_utc();
    s.admin
        .apply(&id, &apply_body("www.show.test"))
        .await
        .unwrap();
    let after = OffsetDateTime::now_utc();
    let c = s.admin.show(&id).await.unwrap();
    assert_eq!(c.status, "ISSUED");
    assert_eq!(c.push_support, "ON");
    assert_eq!(c.domain.as_deref(), Some("www.show.test"));
    assert_eq!(c.sans.as_deref(), Some(""));
    assert_eq!(c.validation_method.as_deref(), Some("DNS"));
    let info = c.application_info.clone().unwrap();
    assert_eq!(info.applicant_name.as_deref(), Some("Tom Smith"));
    assert_eq!(info.applicant_phone.as_deref(), Some("13212345678"));

    let export = s.admin.export(&id).await.unwrap();
    let leaf = parse_certificate_pem(&export.certificate).unwrap();
    let fingerprint = c.fingerprint.clone().unwrap();
    assert_eq!(fingerprint.len(), 40);
    assert!(
        fingerprint
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert_eq!(fingerprint, leaf.sha1_fingerprint_hex, "SHA-1 of the leaf");
    assert_eq!(
        c.signature_algorithm.as_deref(),
        Some(leaf.signature_algorithm.as_str())
    );
    assert!(
        leaf.signature_algorithm.contains("ECDSA"),
        "leaves are ECDSA-signed: {}",
        leaf.signature_algorithm
    );
    let not_before = api_time(c.not_before.as_deref().unwrap());
    let not_after = api_time(c.not_after.as_deref().unwrap());
    let issue_time = api_time(c.issue_time.as_deref().unwrap());
    assert_eq!(not_before, leaf.not_before.replace_nanosecond(0).unwrap());
    assert_eq!(not_after, leaf.not_after.replace_nanosecond(0).unwrap());
    assert!(
        issue_time >= before.replace_nanosecond(0).unwrap() && issue_time <= after,
        "{issue_time} not in {before}..{after}"
    );
    // Valid from 5 minutes before issue, for 365 days.
    assert!((issue_time - not_before - Duration::minutes(5)).abs() <= Duration::seconds(1));
    assert!((not_after - issue_time - Duration::days(365)).abs() <= Duration::seconds(1));

    // Ids: malformed, unknown, another account's (answered as unknown).
    let other = s.other_account("other").await;
    for (who, id, status, code) in [
        (&s.admin, "not-a-cert", 400, "SCM.0008"),
        (&s.admin, "scs0000000000001", 404, "SCM.0020"),
        (&other, id.as_str(), 404, "SCM.0020"),
    ] {
        let resp = who
            .call(Operation::ShowCertificate, &[id], &[], None)
            .await
            .unwrap();
        let msg = refused(&resp, status, code);
        assert!(!msg.contains("show.test") && !resp.text().contains(&fingerprint));
    }
    s.stop().await;
}

/// Names outside the product or the issuance policy are 400 `SCM.0015`, and the certificate
/// stays as it was; a policy that allows the name lets it through.
#[tokio::test]
async fn routes_apply_checks_names_against_the_product_and_the_policy() {
    let s = TestServer::start().await;
    let single = paid(&s.admin).await;
    let two = bought(&s.admin, &multi(2)).await.remove(0);
    let wildcard = bought(
        &s.admin,
        &PurchaseBody {
            domain_type: Some("WILDCARD".into()),
            ..buy_body()
        },
    )
    .await
    .remove(0);
    let before = (
        shown(&s.admin, &single).await,
        shown(&s.admin, &two).await,
        shown(&s.admin, &wildcard).await,
    );
    let with_sans = |domain: &str, sans: &str| ApplicationBody {
        sans: Some(sans.into()),
        ..apply_body(domain)
    };
    for (id, body) in [
        // a wildcard directly under a public suffix, and one proven by FILE
        (&wildcard, apply_body("*.co.uk")),
        (&wildcard, {
            let mut b = apply_body("*.files.test");
            b.domain_method = Some("FILE".into());
            b
        }),
        // a wildcard, or a second name, on SINGLE_DOMAIN
        (&single, apply_body("*.single.test")),
        (&single, with_sans("www.single.test", "api.single.test")),
        // three names on a two-domain certificate; a SAN outside the policy
        (&two, with_sans("a.two.test", "b.two.test;c.two.test")),
        // WILDCARD needs one wildcard name
        (&wildcard, apply_body("www.wild.test")),
        (&wildcard, with_sans("*.wild.test", "*.other.test")),
    ] {
        let resp = s
            .admin
            .call(Operation::ApplyCertificate, &[id], &[], Some(&json(&body)))
            .await
            .unwrap();
        refused(&resp, 400, "SCM.0015");
    }
    assert_eq!(
        (
            shown(&s.admin, &single).await,
            shown(&s.admin, &two).await,
            shown(&s.admin, &wildcard).await,
        ),
        before,
        "a refused application changed nothing"
    );
    // Names outside the policy are not refused: they wait for proof of control.
    let resp = s
        .admin
        .call(
            Operation::ApplyCertificate,
            &[&two],
            &[],
            Some(&json(&with_sans("a.two.test", "evil.example.org"))),
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let waiting = shown(&s.admin, &two).await;
    assert_eq!(waiting["status"], "CHECKING_DOMAIN");
    let proofs = waiting["authentification"].as_array().unwrap();
    assert_eq!(
        proofs.len(),
        1,
        "only the name outside the policy: {proofs:?}"
    );
    assert_eq!(proofs[0]["record_name"], "_dnsauth.evil.example.org");
    assert_eq!(proofs[0]["record_type"], "TXT");
    // Withdrawn: PAID again, nothing pending.
    let resp = s
        .admin
        .call(Operation::CancelCertificateRequest, &[&two], &[], None)
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let back = shown(&s.admin, &two).await;
    assert_eq!(back["status"], "PAID");
    assert_eq!(back["authentification"], serde_json::json!([]));

    // The policy decides: allow example.com and the same application passes.
    let account = DomainId::try_from(s.domain_id.as_str()).unwrap();
    assert!(
        s.scm
            .set_policy(&account, ".test;example.com")
            .await
            .unwrap()
    );
    s.admin
        .apply(&single, &apply_body("www.example.com"))
        .await
        .unwrap();
    s.admin
        .apply(&wildcard, &apply_body("*.example.com"))
        .await
        .unwrap();
    s.admin
        .apply(&two, &with_sans("a.two.test", "b.two.test"))
        .await
        .unwrap();
    for id in [&single, &wildcard, &two] {
        assert_eq!(s.admin.show(id).await.unwrap().status, "ISSUED");
    }
    let leaf =
        parse_certificate_pem(&s.admin.export(&wildcard).await.unwrap().certificate).unwrap();
    assert_eq!(leaf.dns_names, ["*.example.com"]);

    // A multi-domain purchase that split its extra names holds the application to the split.
    let split = bought(
        &s.admin,
        &PurchaseBody {
            primary_domain_type: Some("WILDCARD_DOMAIN".into()),
            single_domain_number: Some(1),
            wildcard_domain_number: Some(1),
            ..multi(3)
        },
    )
    .await
    .remove(0);
    let before = shown(&s.admin, &split).await;
    for body in [
        with_sans("a.split.test", "b.split.test;*.c.split.test"),
        with_sans("*.a.split.test", "*.b.split.test;*.c.split.test"),
        with_sans("*.a.split.test", "b.split.test;c.split.test"),
        with_sans("*.a.split.test", "b.split.test;*.c.split.test;d.split.test"),
    ] {
        let resp = s
            .admin
            .call(
                Operation::ApplyCertificate,
                &[&split],
                &[],
                Some(&json(&body)),
            )
            .await
            .unwrap();
        refused(&resp, 400, "SCM.0015");
        assert_eq!(shown(&s.admin, &split).await, before);
    }
    s.admin
        .apply(
            &split,
            &with_sans("*.a.split.test", "b.split.test;*.c.split.test"),
        )
        .await
        .unwrap();
    let c = s.admin.show(&split).await.unwrap();
    assert_eq!(c.status, "ISSUED");
    assert_eq!(c.sans.as_deref(), Some("b.split.test;*.c.split.test"));
    s.stop().await;
}

#[tokio::test]
async fn routes_apply_refusals_name_the_field_and_change_nothing() {
    let s = TestServer::start().await;
    let id = paid(&s.admin).await;
    let before = shown(&s.admin, &id).await;
    let with = |f: fn(&mut ApplicationBody)| {
        let mut b = apply_body("www.apply.test");
        f(&mut b);
        json(&b)
    };
    let (other_names, _) = csr(&["other.apply.test"]);
    let (extra_names, _) = csr(&["www.apply.test", "extra.apply.test"]);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            with(|b| b.key_algorithm = Some("RSA_1024".into())),
            "key_algorithm",
        ),
        (with(|b| b.domain_method = None), "domain_method"),
        (
            with(|b| b.domain_method = Some("PHONE".into())),
            "domain_method",
        ),
        (
            with(|b| b.applicant_name = Some("Tom".into())),
            "applicant_name",
        ),
        (
            with(|b| b.applicant_name = Some("Tom Smith 3rd".into())),
            "applicant_name",
        ),
        (with(|b| b.applicant_name = None), "applicant_name"),
        (
            with(|b| b.applicant_phone = Some("x".into())),
            "applicant_phone",
        ),
        (
            with(|b| b.applicant_email = Some("tom@".into())),
            "applicant_email",
        ),
        (
            with(|b| b.agree_privacy_protection = Some(false)),
            "agree_privacy_protection",
        ),
        (
            with(|b| b.agree_privacy_protection = None),
            "agree_privacy_protection",
        ),
        (with(|b| b.domain = None), "domain"),
        (with(|b| b.domain = Some(String::new())), "domain"),
        (
            with(|b| b.domain = Some("-bad-.apply.test".into())),
            "domain",
        ),
        (with(|b| b.sans = Some("bad name.test".into())), "sans"),
        (with(|b| b.country = Some("China".into())), "country"),
        (
            with(|b| b.ca_hash_algorithm = Some("MD5".into())),
            "ca_hash_algorithm",
        ),
        (with(|b| b.csr = Some("not a csr".into())), "csr"),
        (
            json(&ApplicationBody {
                csr: Some(other_names),
                ..apply_body("www.apply.test")
            }),
            "csr",
        ),
        // the CSR names a name the application does not
        (
            json(&ApplicationBody {
                csr: Some(extra_names),
                ..apply_body("www.apply.test")
            }),
            "csr",
        ),
        (br#"{"domain": ["www.apply.test"]}"#.to_vec(), "domain"),
        (br#"{"domain": "www.apply.test""#.to_vec(), "body"),
        (b"null".to_vec(), "body"),
        (Vec::new(), "body"),
    ];
    for (body, field) in cases {
        let resp = s
            .admin
            .call(Operation::ApplyCertificate, &[&id], &[], Some(&body))
            .await
            .unwrap();
        invalid(&resp, field);
        assert_eq!(shown(&s.admin, &id).await, before, "refused ({field})");
    }
    s.stop().await;
}

/// A certificate is issued once (a second apply is 400 `SCM.0010`); from a CSR, the leaf
/// certifies the CSR's key and export has no private key.
#[tokio::test]
async fn routes_apply_issues_once_and_from_a_csr() {
    let s = TestServer::start().await;
    let id = issued(&s.admin, "www.once.test").await;
    let before = shown(&s.admin, &id).await;
    for domain in ["www.once.test", "www.twice.test"] {
        let resp = s
            .admin
            .call(
                Operation::ApplyCertificate,
                &[&id],
                &[],
                Some(&json(&apply_body(domain))),
            )
            .await
            .unwrap();
        refused(&resp, 400, "SCM.0010");
        assert_eq!(shown(&s.admin, &id).await, before);
    }

    // Two applications at once: one certificate is recorded, the other is told its status.
    let raced = paid(&s.admin).await;
    let (one, two) = (
        apply_body("first.race.test"),
        apply_body("second.race.test"),
    );
    let (first, second) = tokio::join!(s.admin.apply(&raced, &one), s.admin.apply(&raced, &two));
    let winner = match (first, second) {
        (Ok(_), Err(e)) => {
            assert_eq!(crate::routes::code(e), (400, "SCM.0010".into()));
            "first.race.test"
        }
        (Err(e), Ok(_)) => {
            assert_eq!(crate::routes::code(e), (400, "SCM.0010".into()));
            "second.race.test"
        }
        other => panic!("exactly one application wins: {other:?}"),
    };
    let c = s.admin.show(&raced).await.unwrap();
    assert_eq!(
        (c.status.as_str(), c.domain.as_deref()),
        ("ISSUED", Some(winner))
    );
    let leaf = parse_certificate_pem(&s.admin.export(&raced).await.unwrap().certificate).unwrap();
    assert_eq!(leaf.dns_names, [winner]);
    assert_eq!(
        c.fingerprint.as_deref(),
        Some(leaf.sha1_fingerprint_hex.as_str())
    );

    let two = bought(&s.admin, &multi(2)).await.remove(0);
    let (pem, key) = csr(&["csr.apply.test", "alt.csr.apply.test"]);
    let body = ApplicationBody {
        sans: Some("alt.csr.apply.test".into()),
        csr: Some(pem),
        // ignored: the CSR's key is certified
        key_algorithm: Some("RSA_4096".into()),
        ..apply_body("csr.apply.test")
    };
    assert_eq!(
        s.admin.apply(&two, &body).await.unwrap().request_info,
        "success"
    );
    let c = s.admin.show(&two).await.unwrap();
    assert_eq!(c.status, "ISSUED");
    let export = s.admin.export(&two).await.unwrap();
    assert_eq!(export.private_key, None);
    let leaf = parse_certificate_pem(&export.certificate).unwrap();
    assert!(
        leaf.public_key_matches(&key),
        "the leaf certifies the CSR's key"
    );
    assert_eq!(leaf.key_algorithm, Some(KeyAlgorithm::EcP256));
    assert_eq!(
        leaf.dns_names.iter().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from(["csr.apply.test".to_owned(), "alt.csr.apply.test".to_owned()])
    );
    // The raw answer says `"private_key": null`, not a missing key.
    let raw = s
        .admin
        .call(Operation::ExportCertificate, &[&two], &[], None)
        .await
        .unwrap();
    let raw: serde_json::Value = raw.json().unwrap();
    assert_eq!(raw.get("private_key"), Some(&serde_json::Value::Null));
    s.stop().await;
}

#[tokio::test]
async fn routes_export_answers_the_chain_and_the_key() {
    let s = TestServer::start().await;
    let id = issued(&s.admin, "www.export.test").await;
    let e = s.admin.export(&id).await.unwrap();
    let leaf_blocks = pem_blocks(&e.certificate, "CERTIFICATE");
    let chain_blocks = pem_blocks(&e.certificate_chain, "CERTIFICATE");
    assert_eq!(leaf_blocks.len(), 1, "certificate is the leaf only");
    assert_eq!(chain_blocks.len(), 1, "the chain is the intermediate");
    assert_eq!(
        pem_blocks(&e.entire_certificate, "CERTIFICATE"),
        [leaf_blocks.clone(), chain_blocks.clone()].concat(),
        "entire = leaf + intermediate"
    );
    let leaf = parse_certificate_pem(&e.certificate).unwrap();
    let intermediate = parse_certificate_pem(&e.certificate_chain).unwrap();
    let root = parse_certificate_pem(&s.admin_roots().await.root_pem).unwrap();
    assert_eq!(leaf.issuer, intermediate.subject);
    assert_eq!(intermediate.issuer, root.subject);
    assert_ne!(intermediate.der, root.der, "not the root");
    assert!(intermediate.is_ca && !leaf.is_ca);
    assert_eq!(leaf.dns_names, ["www.export.test"]);
    let pem = e.private_key.unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8");
    let key = scm_pki::PrivateKey::from_pem(&pem).unwrap();
    assert_eq!(key.algorithm(), KeyAlgorithm::EcP256);
    assert!(leaf.public_key_matches(&key));
    assert!(e.enc_certificate.is_none() && e.enc_private_key.is_none());
    // Export is a read: asking again answers the same.
    let again = s.admin.export(&id).await.unwrap();
    assert_eq!(again.certificate, e.certificate);
    assert_eq!(again.private_key.as_deref(), Some(pem.as_str()));

    // PAID: nothing to export. Malformed, unknown, another account's (answered as unknown):
    // refused, nothing leaks.
    let unissued = paid(&s.admin).await;
    let other = s.other_account("other").await;
    for (who, id, status, code) in [
        (&s.admin, unissued.as_str(), 400, "SCM.0010"),
        (&s.admin, "not-a-cert", 400, "SCM.0008"),
        (&s.admin, "scs0000000000001", 404, "SCM.0020"),
        (&other, id.as_str(), 404, "SCM.0020"),
    ] {
        let resp = who
            .call(Operation::ExportCertificate, &[id], &[], None)
            .await
            .unwrap();
        refused(&resp, status, code);
        let text = resp.text();
        assert!(
            !text.contains("PRIVATE KEY") && !text.contains("CERTIFICATE-----"),
            "{text}"
        );
    }
    assert_eq!(s.admin.show(&unissued).await.unwrap().status, "PAID");
    s.stop().await;
}

/// v3 push answers 204 without a body; services match without regard to case; refusals name
/// the field or say why it cannot go; only successes reach the history.
#[tokio::test]
async fn routes_v3_push_answers_204_and_refusals_name_the_field() {
    let s = TestServer::with_web_target().await;
    let id = issued(&s.admin, "www.v3push.test").await;
    let push = |id: &str, body: Vec<u8>| {
        let (admin, id) = (s.admin.clone(), id.to_owned());
        async move {
            admin
                .call(Operation::PushCertificate, &[&id], &[], Some(&body))
                .await
                .unwrap()
        }
    };
    for service in ["ELB", "elb"] {
        let resp = push(&id, json(&v3_push(service, Some("cn-north-4")))).await;
        assert_eq!(resp.status, 204, "{service}: {}", resp.text());
        assert!(resp.body.is_empty());
        request_id(&resp);
    }
    assert!(
        std::fs::read_to_string(s.out.join("web.crt"))
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    let history = |s: &TestServer, id: &str| {
        let (admin, p, id) = (s.admin.clone(), s.project_id.clone(), id.to_owned());
        async move {
            admin
                .v2_push_history(&p, &id)
                .await
                .unwrap()
                .push_history_list
                .len()
        }
    };
    assert_eq!(history(&s, &id).await, 2);

    for (service, region) in [
        ("waf", Some("cn-north-4")),
        ("ELB", Some("cn-east-3")),
        ("CDN", None),
    ] {
        refused(
            &push(&id, json(&v3_push(service, region))).await,
            400,
            "SCM.0030",
        );
    }
    for (body, field) in [
        (json(&v3_push("FTP", Some("cn-north-4"))), "target_service"),
        (json(&v3_push("", Some("cn-north-4"))), "target_service"),
        (
            br#"{"target_project": "cn-north-4"}"#.to_vec(),
            "target_service",
        ),
        (json(&v3_push("ELB", None)), "target_project"),
        (json(&v3_push("ELB", Some("../etc"))), "target_project"),
        (br#"{"target_service": 1}"#.to_vec(), "target_service"),
        (b"{".to_vec(), "body"),
        (Vec::new(), "body"),
    ] {
        invalid(&push(&id, body).await, field);
    }
    let unissued = paid(&s.admin).await;
    let other = s.other_account("other").await;
    let good = json(&v3_push("ELB", Some("cn-north-4")));
    refused(&push(&unissued, good.clone()).await, 400, "SCM.0010");
    refused(&push("not-a-cert", good.clone()).await, 400, "SCM.0008");
    refused(
        &push("scs0000000000001", good.clone()).await,
        404,
        "SCM.0020",
    );
    let resp = other
        .call(Operation::PushCertificate, &[&id], &[], Some(&good))
        .await
        .unwrap();
    refused(&resp, 404, "SCM.0020");
    assert_eq!(
        history(&s, &id).await,
        2,
        "no refused push is in the history"
    );
    assert_eq!(history(&s, &unissued).await, 0);
    s.stop().await;
}

/// Query pairs of a list request.
type Query<'a> = Vec<(&'a str, &'a str)>;

fn ids(page: &ListCertificatesResponse) -> Vec<String> {
    page.certificates.iter().map(|c| c.id.clone()).collect()
}

fn set(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).clone()).collect()
}

async fn list_raw(client: &Client, query: &[(&str, &str)]) -> ListCertificatesResponse {
    let resp = client
        .call(Operation::ListCertificates, &[], query, None)
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{query:?}: {}", resp.text());
    resp.json().unwrap()
}

#[tokio::test]
async fn routes_list_filters() {
    let s = TestServer::start().await;
    let alpha = issued(&s.admin, "www.alpha.test").await;
    let beta = issued(&s.admin, "api.beta.test").await;
    let c = paid(&s.admin).await;
    let d = paid(&s.admin).await;
    let project = "0123abcd-4567-89ef-0123-456789abcdef";
    let e = bought(
        &s.admin,
        &PurchaseBody {
            enterprise_project_id: Some(project.into()),
            ..buy_body()
        },
    )
    .await
    .remove(0);
    let all = set(&[&alpha, &beta, &c, &d, &e]);
    let other = s.other_account("other").await;
    let theirs = issued(&other, "www.alpha-theirs.test").await;

    let cases: Vec<(Query<'_>, BTreeSet<String>)> = vec![
        (vec![], all.clone()),
        (vec![("status", "ALL")], all.clone()),
        (vec![("status", "")], all.clone()),
        (vec![("status", "ISSUED")], set(&[&alpha, &beta])),
        (vec![("status", "PAID")], set(&[&c, &d, &e])),
        (vec![("status", "REVOKED")], set(&[])),
        (vec![("content", "ALPHA")], set(&[&alpha])),
        (vec![("content", "WWW.ALPHA.TEST")], set(&[&alpha])),
        (vec![("content", "Beta")], set(&[&beta])),
        (vec![("content", ".TEST")], set(&[&alpha, &beta])),
        (vec![("content", "nothing-like-it")], set(&[])),
        (vec![("content", "%")], set(&[])),
        (vec![("deploy_support", "true")], set(&[&alpha, &beta])),
        (vec![("deploy_support", "false")], all.clone()),
        (vec![("enterprise_project_id", project)], set(&[&e])),
        (
            vec![("enterprise_project_id", "0")],
            set(&[&alpha, &beta, &c, &d]),
        ),
        (vec![("enterprise_project_id", "all")], all.clone()),
        (vec![("owned_by_self", "true")], all.clone()),
        (vec![("expired_days_since", "0")], all.clone()),
        (
            vec![("status", "ISSUED"), ("content", "alpha")],
            set(&[&alpha]),
        ),
        (
            vec![("status", "PAID"), ("enterprise_project_id", project)],
            set(&[&e]),
        ),
        (
            vec![("deploy_support", "true"), ("content", "zzz")],
            set(&[]),
        ),
    ];
    for (query, want) in cases {
        let page = list_raw(&s.admin, &query).await;
        let got: BTreeSet<String> = ids(&page).into_iter().collect();
        assert_eq!(got, want, "{query:?}");
        assert_eq!(page.total_count, want.len() as u64, "{query:?}");
        assert!(
            !got.contains(&theirs),
            "another account's certificate listed"
        );
    }

    // The items: every key, issued and not.
    let page = list_raw(&s.admin, &[("limit", "50")]).await;
    let by_id = |id: &str| {
        page.certificates
            .iter()
            .find(|c| c.id == id)
            .unwrap()
            .clone()
    };
    let a = by_id(&alpha);
    assert_eq!(
        (a.status.as_str(), a.domain.as_deref()),
        ("ISSUED", Some("www.alpha.test"))
    );
    assert!(a.deploy_support);
    assert!(
        a.signature_algorithm
            .as_ref()
            .is_some_and(|s| !s.is_empty())
    );
    let expire_time = a.expire_time.clone().unwrap();
    let expires = api_time(&expire_time);
    assert_eq!(
        expire_time,
        s.admin.show(&alpha).await.unwrap().not_after.unwrap()
    );
    assert!(expires > OffsetDateTime::now_utc() + Duration::days(364));
    assert_eq!(a.domain_id, s.domain_id);
    assert_eq!(
        (a.cert_type.as_deref(), a.brand.as_deref()),
        (Some("DV_SSL_CERT"), Some("GLOBALSIGN"))
    );
    let paid_item = by_id(&c);
    assert_eq!(paid_item.status, "PAID");
    assert!(!paid_item.deploy_support);
    // Unset values are null, as in show.
    assert_eq!(
        (
            paid_item.domain,
            paid_item.sans,
            paid_item.signature_algorithm,
            paid_item.expire_time
        ),
        (None, None, None, None)
    );
    assert_eq!(by_id(&e).enterprise_project_id, project);

    // The other account sees its own only.
    let theirs_page = other
        .list_certificates(&ListQuery::default())
        .await
        .unwrap();
    assert_eq!(ids(&theirs_page), std::slice::from_ref(&theirs));
    s.stop().await;
}

#[tokio::test]
async fn routes_list_sorts_and_pages() {
    let s = TestServer::start().await;
    let mut all = bought(
        &s.admin,
        &PurchaseBody {
            order_number: Some(15),
            ..buy_body()
        },
    )
    .await;
    all.sort();
    // Issue the last three, in id order: then (update time, id) order is id order.
    for (i, id) in all[12..].iter().enumerate() {
        s.admin
            .apply(id, &apply_body(&format!("www{i}.sort.test")))
            .await
            .unwrap();
    }
    let issued: Vec<String> = all[12..].to_vec();
    let unissued: Vec<String> = all[..12].to_vec();
    let rev = |v: &[String]| v.iter().rev().cloned().collect::<Vec<_>>();
    let q = |key: &'static str, dir: &'static str| {
        vec![("limit", "50"), ("sort_key", key), ("sort_dir", dir)]
    };
    let with_status = |mut v: Vec<(&'static str, &'static str)>| {
        v.push(("status", "ISSUED"));
        v
    };
    let cases: Vec<(Query<'_>, Vec<String>)> = vec![
        (q("certUpdateTime", "ASC"), all.clone()),
        (q("certUpdateTime", "DESC"), rev(&all)),
        // The defaults: certUpdateTime, DESC, 10 items.
        (vec![], rev(&all)[..10].to_vec()),
        (vec![("limit", "50")], rev(&all)),
        (vec![("limit", "50"), ("sort_dir", "ASC")], all.clone()),
        (
            vec![("limit", "50"), ("sort_key", "certUpdateTime")],
            rev(&all),
        ),
        (
            q("certStatus", "ASC"),
            [issued.clone(), unissued.clone()].concat(),
        ),
        (
            q("certStatus", "DESC"),
            [rev(&unissued), rev(&issued)].concat(),
        ),
        (with_status(q("certExpiredTime", "ASC")), issued.clone()),
        (with_status(q("certExpiredTime", "DESC")), rev(&issued)),
    ];
    for (query, want) in cases {
        let page = list_raw(&s.admin, &query).await;
        assert_eq!(ids(&page), want, "{query:?}");
    }

    // Pages of 10 over 15 items: disjoint, together everything, `[]` past the end; the total
    // is always the number of matches.
    let page = |offset: &str| {
        let admin = s.admin.clone();
        let offset = offset.to_owned();
        async move {
            list_raw(
                &admin,
                &[
                    ("limit", "10"),
                    ("offset", &offset),
                    ("sort_key", "certUpdateTime"),
                    ("sort_dir", "ASC"),
                ],
            )
            .await
        }
    };
    let first = page("0").await;
    let second = page("10").await;
    assert_eq!(ids(&first), all[..10]);
    assert_eq!(ids(&second), all[10..]);
    assert_eq!(ids(&page("5").await), all[5..15]);
    assert_eq!(ids(&page("14").await), all[14..]);
    for offset in ["15", "1000", "1000000"] {
        let past = page(offset).await;
        assert!(past.certificates.is_empty(), "offset {offset}");
        assert_eq!(past.total_count, 15, "offset {offset}");
    }
    assert_eq!((first.total_count, second.total_count), (15, 15));
    let typed = s
        .admin
        .list_certificates(&ListQuery {
            limit: Some(10),
            offset: Some(10),
            status: Some("PAID".into()),
            sort_key: Some("certUpdateTime".into()),
            sort_dir: Some("ASC".into()),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&typed), unissued[10..]);
    assert_eq!(typed.total_count, 12);
    s.stop().await;
}

#[tokio::test]
async fn routes_list_refusals_name_the_parameter() {
    let s = TestServer::start().await;
    let _ = paid(&s.admin).await;
    let long = "a".repeat(256);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("limit", "9")], "limit"),
        (vec![("limit", "51")], "limit"),
        (vec![("limit", "0")], "limit"),
        (vec![("limit", "x")], "limit"),
        (vec![("limit", "")], "limit"),
        (vec![("offset", "-1")], "offset"),
        (vec![("offset", "ten")], "offset"),
        (vec![("sort_key", "name")], "sort_key"),
        (vec![("sort_dir", "up")], "sort_dir"),
        (vec![("status", "NOPE")], "status"),
        (vec![("deploy_support", "1")], "deploy_support"),
        (vec![("owned_by_self", "yes")], "owned_by_self"),
        (vec![("expired_days_since", "-1")], "expired_days_since"),
        (vec![("expired_days_since", "1096")], "expired_days_since"),
        (vec![("expired_days_since", "x")], "expired_days_since"),
        (
            vec![("enterprise_project_id", "prod")],
            "enterprise_project_id",
        ),
        (vec![("content", &long)], "content"),
        // the first bad parameter is named, whatever the good ones around it
        (vec![("limit", "10"), ("sort_dir", "sideways")], "sort_dir"),
    ];
    for (query, field) in cases {
        let resp = s
            .admin
            .call(Operation::ListCertificates, &[], &query, None)
            .await
            .unwrap();
        invalid(&resp, field);
    }
    // A query that is not UTF-8 is named as such (with a token: a signature over it cannot
    // even be checked, and is refused as malformed first).
    let raw = scm_client::RawRequest::new("GET", "/v3/scm/certificates?content=%ff")
        .header("Content-Type", "application/json");
    refused(&s.admin.send(raw.clone()).await.unwrap(), 401, "APIGW.0301");
    let token = s.admin.create_token().await.unwrap().token;
    let resp = s
        .admin
        .send(raw.auth(scm_client::RequestAuth::Token(token)))
        .await
        .unwrap();
    invalid(&resp, "query");
    // Within the limits, the same parameters pass.
    for query in [
        vec![("limit", "10")],
        vec![("limit", "50")],
        // Documented from length 0: empty is absent.
        vec![
            ("sort_key", ""),
            ("sort_dir", ""),
            ("enterprise_project_id", ""),
        ],
        vec![("expired_days_since", "1095")],
        vec![("content", &long[..255])],
    ] {
        let resp = s
            .admin
            .call(Operation::ListCertificates, &[], &query, None)
            .await
            .unwrap();
        assert_eq!(resp.status, 200, "{query:?}: {}", resp.text());
    }
    assert_eq!(listed(&s.admin).await["total_count"], 1);
    s.stop().await;
}

/// `expired_days_since=N` leaves out certificates expired more than N days ago; absent, it is
/// its documented default, 0, except with `status=EXPIRED`. The server's clock is moved: a
/// certificate issued 400 days ago expired 35 days ago.
#[tokio::test]
async fn routes_list_expired_days_since_leaves_out_long_expired_certificates() {
    let now = OffsetDateTime::now_utc();
    let clock = Arc::new(FixedClock::new(now - Duration::days(400)));
    let s = TestServer::start_custom(clock.clone(), |_, _, _| {}).await;
    let signing = clock.clone();
    let admin = s.admin.with_clock(move || signing.now());
    let old = issued(&admin, "old.expired.test").await;
    // Not renewed when the clock moves on: this one is to have expired.
    admin.set_auto_renew(&old, false).await.unwrap();
    clock.set(now);
    let fresh = issued(&admin, "fresh.expired.test").await;
    let unissued = paid(&admin).await;
    let old_not_after = api_time(&admin.show(&old).await.unwrap().not_after.unwrap());
    assert!(
        (now - old_not_after - Duration::days(35)).abs() < Duration::minutes(1),
        "expired 35 days ago: {old_not_after}"
    );
    let all = set(&[&old, &fresh, &unissued]);
    for (query, want) in [
        // The documented default, 0: the expired certificate is left out.
        (vec![], set(&[&fresh, &unissued])),
        (vec![("status", "ALL")], set(&[&fresh, &unissued])),
        // Asked for by status, expired certificates are listed without a window.
        (vec![("status", "EXPIRED")], set(&[&old])),
        (
            vec![("status", "EXPIRED"), ("expired_days_since", "30")],
            set(&[]),
        ),
        (vec![("expired_days_since", "40")], all.clone()),
        (vec![("expired_days_since", "1095")], all.clone()),
        (
            vec![("expired_days_since", "30")],
            set(&[&fresh, &unissued]),
        ),
        (vec![("expired_days_since", "0")], set(&[&fresh, &unissued])),
        (
            vec![("expired_days_since", "30"), ("status", "ISSUED")],
            set(&[&fresh]),
        ),
    ] {
        let page = list_raw(&admin, &query).await;
        let got: BTreeSet<String> = ids(&page).into_iter().collect();
        assert_eq!(got, want, "{query:?}");
        assert_eq!(page.total_count, want.len() as u64, "{query:?}");
    }
    let by_expiry = list_raw(
        &admin,
        &[
            ("status", "ISSUED"),
            ("sort_key", "certExpiredTime"),
            ("sort_dir", "ASC"),
        ],
    )
    .await;
    // The old one reads EXPIRED (its not_after has passed): not ISSUED any more.
    assert_eq!(ids(&by_expiry), std::slice::from_ref(&fresh));
    let expired = list_raw(&admin, &[("status", "EXPIRED")]).await;
    assert_eq!(ids(&expired), std::slice::from_ref(&old));
    assert_eq!(expired.certificates[0].status, "EXPIRED");
    s.stop().await;
}

/// OpenSCM does not hold the key of a certificate issued from the applicant's CSR, so it
/// cannot push it: the push is refused (400 `SCM.0028`, saying why), nothing is written and
/// nothing reaches the history.
#[tokio::test]
async fn routes_a_certificate_issued_from_a_csr_is_not_pushed() {
    let s = TestServer::with_web_target().await;
    let id = paid(&s.admin).await;
    let (pem, _) = csr(&["www.csr-push.test"]);
    let body = ApplicationBody {
        csr: Some(pem),
        ..apply_body("www.csr-push.test")
    };
    s.admin.apply(&id, &body).await.unwrap();
    let before = shown(&s.admin, &id).await;
    let resp = s
        .admin
        .call(
            Operation::PushCertificate,
            &[&id],
            &[],
            Some(&json(&v3_push("ELB", Some("cn-north-4")))),
        )
        .await
        .unwrap();
    let msg = refused(&resp, 400, "SCM.0028");
    assert!(msg.contains("private key"), "{msg}");
    assert!(!s.out.join("web.crt").exists() && !s.out.join("web.key").exists());
    assert!(
        s.admin
            .v2_push_history(&s.project_id, &id)
            .await
            .unwrap()
            .push_history_list
            .is_empty()
    );
    assert_eq!(shown(&s.admin, &id).await, before);
    s.stop().await;
}

/// `push_support` (show) and `deploy_support` (list) say whether the certificate can be
/// pushed; one issued from a CSR cannot (OpenSCM holds no key for it).
#[tokio::test]
async fn routes_a_certificate_issued_from_a_csr_does_not_claim_push_support() {
    let s = TestServer::start().await;
    let id = paid(&s.admin).await;
    let (pem, _) = csr(&["www.csr-support.test"]);
    let body = ApplicationBody {
        csr: Some(pem),
        ..apply_body("www.csr-support.test")
    };
    s.admin.apply(&id, &body).await.unwrap();
    let held = issued(&s.admin, "www.held.test").await;
    let c = s.admin.show(&id).await.unwrap();
    assert_eq!(c.status, "ISSUED");
    assert_eq!(c.push_support, "OFF");
    assert_eq!(s.admin.show(&held).await.unwrap().push_support, "ON");
    let page = list_raw(&s.admin, &[("limit", "50")]).await;
    let item = page.certificates.iter().find(|c| c.id == id).unwrap();
    assert!(!item.deploy_support);
    let deployable = list_raw(&s.admin, &[("deploy_support", "true")]).await;
    assert_eq!(ids(&deployable), [held]);
    s.stop().await;
}
