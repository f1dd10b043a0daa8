//! ImportCertificate: a certificate made elsewhere is imported with its chain and key, then
//! shown, listed, exported, pushed, tagged and deleted like an issued one; every refusal has its
//! documented code and changes nothing. On SQLite, and on PostgreSQL when
//! `OPENSCM_TEST_PG_URL` is set.

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa, Issuer,
    KeyPair, SignatureAlgorithm,
};
use scm_client::Client;
use scm_proto::Operation;
use scm_proto::import::ImportCertificateBody;
use scm_proto::v3::PushBody;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::harness::TestServer;
use crate::processes::{PgDb, pg_base_url};
use crate::routes::{invalid, listed, refused};

/// A CA with its key, to sign with.
struct Ca {
    pem: String,
    params: CertificateParams,
    key: KeyPair,
}

fn ca(cn: &str, parent: Option<&Ca>) -> Ca {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = match parent {
        None => params.self_signed(&key).unwrap(),
        Some(p) => params
            .signed_by(&key, &Issuer::from_params(&p.params, &p.key))
            .unwrap(),
    };
    Ca {
        pem: cert.pem(),
        params,
        key,
    }
}

/// A leaf and its PKCS#8 key.
struct Leaf {
    pem: String,
    key: String,
}

fn leaf(
    alg: &'static SignatureAlgorithm,
    cn: Option<&str>,
    sans: &[&str],
    issuer: &Ca,
    days: (i64, i64),
) -> Leaf {
    let key = if alg == &rcgen::PKCS_RSA_SHA256 {
        KeyPair::generate_rsa_for(alg, rcgen::RsaKeySize::_2048).unwrap()
    } else {
        KeyPair::generate_for(alg).unwrap()
    };
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    if let Some(cn) = cn {
        params.distinguished_name.push(DnType::CommonName, cn);
    }
    let now = OffsetDateTime::now_utc();
    params.not_before = now + Duration::days(days.0);
    params.not_after = now + Duration::days(days.1);
    let cert = params
        .signed_by(&key, &Issuer::from_params(&issuer.params, &issuer.key))
        .unwrap();
    Leaf {
        pem: cert.pem(),
        key: key.serialize_pem(),
    }
}

/// Root, intermediate, and a 90-day EC leaf for `www.import.test` + `api.import.test`.
struct Pki {
    root: Ca,
    inter: Ca,
    leaf: Leaf,
}

fn pki() -> Pki {
    let root = ca("Import IT Root", None);
    let inter = ca("Import IT Intermediate", Some(&root));
    let leaf = leaf(
        &rcgen::PKCS_ECDSA_P256_SHA256,
        Some("www.import.test"),
        &["www.import.test", "api.import.test"],
        &inter,
        (-1, 89),
    );
    Pki { root, inter, leaf }
}

fn body(name: &str, certificate: &str, chain: Option<&str>, key: &str) -> ImportCertificateBody {
    ImportCertificateBody {
        name: Some(name.into()),
        certificate: Some(certificate.into()),
        certificate_chain: chain.map(Into::into),
        private_key: Some(key.into()),
        ..ImportCertificateBody::default()
    }
}

async fn import_raw(c: &Client, v: &Value) -> scm_client::RawResponse {
    c.call(
        Operation::ImportCertificate,
        &[],
        &[],
        Some(&serde_json::to_vec(v).unwrap()),
    )
    .await
    .unwrap()
}

/// Runs `test` on a SQLite server, then on a PostgreSQL one when the suite has a server.
async fn on_both_backends<F, Fut>(test: F)
where
    F: Fn(TestServer) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    test(TestServer::with_web_target().await).await;
    if let Some(base) = pg_base_url() {
        let db = PgDb::create(&base);
        let url = scm_store::DatabaseUrl::parse(&db.url).unwrap();
        test(TestServer::with_web_target_on(&url).await).await;
        drop(db);
    }
}

#[tokio::test]
async fn routes_import_show_list_export_push_tag_delete() {
    on_both_backends(import_lifecycle).await;
}

async fn import_lifecycle(s: TestServer) {
    let c = &s.admin;
    let Pki {
        root,
        inter,
        leaf: main,
    } = pki();
    let chain = format!("{}{}", inter.pem, root.pem);
    // The whole bundle in `certificate`, CRLF line endings, no chain: the rest is the chain.
    let bundle = format!("{}{chain}", main.pem).replace('\n', "\r\n");
    let resp = import_raw(
        c,
        &json!({"name": "imported-1", "certificate": bundle, "private_key": main.key.replace('\n', "\r\n")}),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let answer: Value = resp.json().unwrap();
    let id = answer["certificate_id"].as_str().unwrap().to_owned();
    assert_eq!(answer.as_object().unwrap().len(), 1, "{answer}");
    assert!(id.len() == 16 && id.starts_with("scs"), "{id}");

    // Show: UPLOAD, every field derived from the leaf.
    let info = scm_pki::parse_certificate_pem(&main.pem).unwrap();
    let shown = c.show(&id).await.unwrap();
    assert_eq!(shown.status, "UPLOAD");
    assert_eq!(shown.name, "imported-1");
    assert_eq!(shown.domain.as_deref(), Some("www.import.test"));
    assert_eq!(shown.sans.as_deref(), Some("api.import.test"));
    assert_eq!(
        shown.signature_algorithm.as_deref(),
        Some("SHA256WITHECDSA")
    );
    assert_eq!(
        shown.fingerprint.as_deref(),
        Some(info.sha1_fingerprint_hex.as_str())
    );
    assert_eq!(shown.push_support, "ON");
    assert_eq!(shown.order_id, None, "an import has no order");
    assert_eq!(shown.cert_type, None);
    assert_eq!(shown.brand, None, "the test CA is none of the brands");
    assert_eq!(shown.domain_type.as_deref(), Some("MULTI_DOMAIN"));
    assert_eq!((shown.domain_count, shown.wildcard_count), (2, 0));
    assert_eq!(shown.validity_period, 3, "90 days");
    assert_eq!(shown.enterprise_project_id, "0");
    let day =
        |t: OffsetDateTime| format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day());
    assert!(
        shown
            .not_after
            .as_deref()
            .unwrap()
            .starts_with(&day(info.not_after))
    );
    assert_eq!(shown.not_before, shown.issue_time);

    // List: the same, deployable.
    let page = listed(c).await;
    let item = page["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(item["status"], "UPLOAD");
    assert_eq!(item["deploy_support"], true);
    assert_eq!(item["domain"], "www.import.test");
    assert_eq!(item["type"], Value::Null);
    assert_eq!(item["brand"], Value::Null);
    assert_eq!(item["expire_time"], json!(shown.not_after));

    // Export: the leaf, the chain as given (canonical PEM), the key.
    let e = c.export(&id).await.unwrap();
    assert_eq!(e.certificate, main.pem);
    assert_eq!(e.certificate_chain, chain);
    assert_eq!(e.entire_certificate, format!("{}{chain}", main.pem));
    let key = scm_pki::PrivateKey::from_pem(e.private_key.as_deref().unwrap()).unwrap();
    assert!(info.public_key_matches(&key));

    // Push: delivered as an issued certificate is.
    c.push(
        &id,
        &PushBody {
            target_service: Some("ELB".into()),
            target_project: Some("cn-north-4".into()),
        },
    )
    .await
    .unwrap();
    let pushed = std::fs::read_to_string(s.out.join("web.crt")).unwrap();
    assert_eq!(pushed, e.entire_certificate);
    assert!(
        std::fs::read_to_string(s.out.join("web.key"))
            .unwrap()
            .contains("PRIVATE KEY")
    );

    // Tags.
    let resp = c
        .call(
            Operation::CreateCertificateTag,
            &[&id],
            &[],
            Some(br#"{"tag": {"key": "env", "value": "prod"}}"#),
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = c
        .call(Operation::ListTagsByCertificate, &[&id], &[], None)
        .await
        .unwrap();
    assert!(resp.text().contains("\"env\""), "{}", resp.text());

    // Not unsubscribable (no order), deletable.
    let resp = c
        .call(Operation::UnsubscribeCertificate, &[&id], &[], None)
        .await
        .unwrap();
    refused(&resp, 400, "SCM.0010");
    let resp = c
        .call(Operation::DeleteCertificate, &[&id], &[], None)
        .await
        .unwrap();
    assert_eq!(resp.status, 204, "{}", resp.text());
    let resp = c
        .call(Operation::ShowCertificate, &[&id], &[], None)
        .await
        .unwrap();
    refused(&resp, 404, "SCM.0020");

    // A separate chain: only the leaf of `certificate` is taken. RSA, CN only.
    let rsa = leaf(
        &rcgen::PKCS_RSA_SHA256,
        Some("rsa.import.test"),
        &[],
        &inter,
        (-1, 364),
    );
    let bundle = format!("{}{}", rsa.pem, root.pem);
    let id = c
        .import_certificate(&body("rsa-import", &bundle, Some(&inter.pem), &rsa.key))
        .await
        .unwrap()
        .certificate_id;
    let shown = c.show(&id).await.unwrap();
    // The signature is the (EC) intermediate's.
    assert_eq!(
        shown.signature_algorithm.as_deref(),
        Some("SHA256WITHECDSA")
    );
    assert_eq!(shown.domain_type.as_deref(), Some("SINGLE_DOMAIN"));
    assert_eq!(shown.sans.as_deref(), Some(""));
    assert_eq!(shown.validity_period, 12);
    assert_eq!(c.export(&id).await.unwrap().certificate_chain, inter.pem);

    // Already expired: imported, reads EXPIRED, not exported.
    let old = leaf(
        &rcgen::PKCS_ECDSA_P384_SHA384,
        None,
        &["*.old.import.test"],
        &inter,
        (-30, -1),
    );
    let id = c
        .import_certificate(&body("expired", &old.pem, Some(&inter.pem), &old.key))
        .await
        .unwrap()
        .certificate_id;
    let shown = c.show(&id).await.unwrap();
    assert_eq!(shown.status, "EXPIRED");
    assert_eq!(shown.domain_type.as_deref(), Some("WILDCARD"));
    assert_eq!(
        shown.signature_algorithm.as_deref(),
        Some("SHA256WITHECDSA")
    );
    let resp = c
        .call(Operation::ExportCertificate, &[&id], &[], None)
        .await
        .unwrap();
    refused(&resp, 400, "SCM.0010");
    s.stop().await;
}

#[tokio::test]
async fn routes_import_refusals_change_nothing() {
    on_both_backends(import_refusals).await;
}

async fn import_refusals(s: TestServer) {
    let c = &s.admin;
    let Pki {
        root,
        inter,
        leaf: good,
    } = pki();
    let chain = format!("{}{}", inter.pem, root.pem);
    let begin = "-----BEGIN CERTIFICATE-----";
    let end = "-----END CERTIFICATE-----";
    let cert_body = good
        .pem
        .trim()
        .trim_start_matches(begin)
        .trim_end_matches(end)
        .to_owned();
    let key_body = good
        .key
        .trim()
        .trim_start_matches("-----BEGIN PRIVATE KEY-----")
        .trim_end_matches("-----END PRIVATE KEY-----")
        .to_owned();
    let nameless = leaf(
        &rcgen::PKCS_ECDSA_P256_SHA256,
        Some("My Server"),
        &["10.1.2.3"],
        &inter,
        (-1, 30),
    );
    let other = leaf(
        &rcgen::PKCS_ECDSA_P256_SHA256,
        None,
        &["other.import.test"],
        &inter,
        (-1, 30),
    );
    // The chain by its signatures. An intermediate with the right name and another key:
    let impostor = ca("Import IT Intermediate", Some(&root));
    // A and B sign each other; a leaf of A's.
    let (a, b) = (ca("Import IT Loop A", None), ca("Import IT Loop B", None));
    let a_by_b = a
        .params
        .signed_by(&a.key, &Issuer::from_params(&b.params, &b.key))
        .unwrap()
        .pem();
    let b_by_a = b
        .params
        .signed_by(&b.key, &Issuer::from_params(&a.params, &a.key))
        .unwrap()
        .pem();
    let looped = leaf(
        &rcgen::PKCS_ECDSA_P256_SHA256,
        None,
        &["loop.import.test"],
        &a,
        (-1, 30),
    );
    let later = leaf(
        &rcgen::PKCS_ECDSA_P256_SHA256,
        None,
        &["later.import.test"],
        &inter,
        (2, 30),
    );
    let signed = |params: CertificateParams, issuer: &Ca| {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let pem = params
            .signed_by(&key, &Issuer::from_params(&issuer.params, &issuer.key))
            .unwrap()
            .pem();
        Leaf {
            pem,
            key: key.serialize_pem(),
        }
    };
    let critical = || {
        let mut ext = CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 55555, 1], vec![5, 0]);
        ext.set_criticality(true);
        ext
    };
    let mut p = CertificateParams::new(vec!["ca.import.test".to_owned()]).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_leaf = signed(p, &inter);
    let mut p = CertificateParams::new(vec!["ext.import.test".to_owned()]).unwrap();
    p.custom_extensions.push(critical());
    let ext_leaf = signed(p, &inter);
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name
        .push(DnType::CommonName, "Import IT Odd Intermediate");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.custom_extensions.push(critical());
    let odd_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let odd = Ca {
        pem: p
            .signed_by(&odd_key, &Issuer::from_params(&root.params, &root.key))
            .unwrap()
            .pem(),
        params: p,
        key: odd_key,
    };
    let under_odd = leaf(
        &rcgen::PKCS_ECDSA_P256_SHA256,
        None,
        &["odd.import.test"],
        &odd,
        (-1, 30),
    );
    let base = json!({
        "name": "good-name", "certificate": good.pem, "certificate_chain": chain,
        "private_key": good.key,
    });
    let with = |changes: Value| {
        let mut v = base.clone();
        for (k, val) in changes.as_object().unwrap() {
            if val.is_null() {
                v.as_object_mut().unwrap().remove(k);
            } else {
                v[k] = val.clone();
            }
        }
        v
    };
    let before = listed(c).await;
    let cases: Vec<(Value, &str, Option<&str>)> = vec![
        // Name: SCM.0032 (the reference's code for it).
        (json!({"name": null}), "SCM.0032", None),
        (json!({"name": "ab"}), "SCM.0032", None),
        (json!({"name": "x".repeat(64)}), "SCM.0032", None),
        (json!({"name": "no spaces"}), "SCM.0032", None),
        // Sizes and required fields: SCM.0005 naming the field.
        (
            json!({"certificate": null}),
            "SCM.0005",
            Some("certificate"),
        ),
        (
            json!({"certificate": "c".repeat(4097)}),
            "SCM.0005",
            Some("certificate"),
        ),
        (
            json!({"certificate_chain": "c".repeat(8193)}),
            "SCM.0005",
            Some("certificate_chain"),
        ),
        (
            json!({"private_key": null}),
            "SCM.0005",
            Some("private_key"),
        ),
        (
            json!({"private_key": "k".repeat(4097)}),
            "SCM.0005",
            Some("private_key"),
        ),
        (
            json!({"enc_certificate": "e".repeat(4097)}),
            "SCM.0005",
            Some("enc_certificate"),
        ),
        (
            json!({"enc_private_key": "e".repeat(4097)}),
            "SCM.0005",
            Some("enc_private_key"),
        ),
        (
            json!({"enterprise_project_id": "prod"}),
            "SCM.0005",
            Some("enterprise_project_id"),
        ),
        (
            json!({"duplicate_check": "yes"}),
            "SCM.0005",
            Some("duplicate_check"),
        ),
        // SM2 dual certificates: not supported.
        (
            json!({"enc_certificate": good.pem}),
            "SCM.0005",
            Some("enc_certificate"),
        ),
        (
            json!({"enc_private_key": good.key}),
            "SCM.0005",
            Some("enc_private_key"),
        ),
        // The certificate.
        (json!({"certificate": cert_body}), "SCM.0053", None),
        (json!({"certificate": ""}), "SCM.0053", None),
        (
            json!({"certificate": format!("{begin}\n\n{end}\n")}),
            "SCM.0054",
            None,
        ),
        (
            json!({"certificate": format!("{begin}\nAAAA\n{end}\n")}),
            "SCM.0006",
            None,
        ),
        // The chain.
        (json!({"certificate_chain": "garbage"}), "SCM.0013", None),
        (
            json!({"certificate_chain": format!("{begin}\nAAAA\n{end}\n")}),
            "SCM.0013",
            None,
        ),
        (
            json!({"certificate_chain": format!("{}{}", root.pem, inter.pem)}),
            "SCM.0079",
            None,
        ),
        (
            json!({"certificate_chain": null, "certificate": format!("{}{}", good.pem, root.pem)}),
            "SCM.0079",
            None,
        ),
        // The chain by its signatures: the right name and another key, a loop (SCM.0079).
        (
            json!({"certificate_chain": format!("{}{}", impostor.pem, root.pem)}),
            "SCM.0079",
            None,
        ),
        (
            json!({"certificate": looped.pem, "private_key": looped.key,
                   "certificate_chain": format!("{a_by_b}{b_by_a}{a_by_b}")}),
            "SCM.0079",
            None,
        ),
        // A leaf that cannot be used: a CA, an unknown critical extension, not valid yet
        // (SCM.0006).
        (
            json!({"certificate": ca_leaf.pem, "private_key": ca_leaf.key}),
            "SCM.0006",
            None,
        ),
        (
            json!({"certificate": ext_leaf.pem, "private_key": ext_leaf.key}),
            "SCM.0006",
            None,
        ),
        (
            json!({"certificate": later.pem, "private_key": later.key}),
            "SCM.0006",
            None,
        ),
        // A chain certificate with an unknown critical extension (SCM.0013).
        (
            json!({"certificate": under_odd.pem, "private_key": under_odd.key,
                   "certificate_chain": format!("{}{}", odd.pem, root.pem)}),
            "SCM.0013",
            None,
        ),
        // No domain.
        (
            json!({"certificate": nameless.pem, "private_key": nameless.key}),
            "SCM.0009",
            None,
        ),
        // The key.
        (json!({"private_key": key_body}), "SCM.0114", None),
        (json!({"private_key": ""}), "SCM.0114", None),
        (
            json!({"private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}),
            "SCM.0012",
            None,
        ),
        (
            json!({"private_key": "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n"}),
            "SCM.0012",
            None,
        ),
        (json!({"private_key": other.key}), "SCM.0014", None),
    ];
    for (changes, code, field) in cases {
        let v = with(changes.clone());
        let resp = import_raw(c, &v).await;
        match field {
            Some(f) => invalid(&resp, f),
            None => {
                let msg = refused(&resp, 400, code);
                let secret = key_body.trim().lines().nth(1).unwrap();
                assert!(!msg.contains(secret), "no key in {msg}");
            }
        }
        assert_eq!(resp.error().unwrap().error_code, code, "{changes}");
    }
    assert_eq!(listed(c).await, before, "no refusal changed anything");

    // duplicate_check: true refuses a second copy (SCM.0005 naming certificate); absent or
    // false allows it.
    let first = import_raw(c, &base).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let first: Value = first.json().unwrap();
    let after_first = listed(c).await;
    let resp = import_raw(c, &with(json!({"duplicate_check": true}))).await;
    invalid(&resp, "certificate");
    assert!(
        resp.text()
            .contains(first["certificate_id"].as_str().unwrap())
    );
    assert_eq!(listed(c).await, after_first);
    for dup in [json!({"duplicate_check": false}), json!({})] {
        let resp = import_raw(c, &with(dup)).await;
        assert_eq!(resp.status, 200, "{}", resp.text());
    }
    assert_eq!(listed(c).await["total_count"], 3);
    // Another account's copy is no duplicate for this one.
    let b = s.other_account("import-other").await;
    let resp = import_raw(&b, &with(json!({"duplicate_check": true}))).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    s.stop().await;
}
