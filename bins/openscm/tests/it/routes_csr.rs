//! The CSR routes: create (server-side key), upload (with and without key), list, show, rename,
//! delete, the private key; their limits, tenancy and refusals.

use scm_client::RequestAuth;
use scm_pki::{KeyAlgorithm, ParsedCsr, PrivateKey};
use scm_proto::Operation;
use scm_proto::csr::{CreateCsrBody, CsrResponse, UpdateCsrBody, UploadCsrBody};
use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::routes::{csr, invalid, invalid_err, is_hex32, refused};

fn body(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn create_body(name: &str, algo: &str) -> CreateCsrBody {
    CreateCsrBody {
        name: Some(name.into()),
        domain_name: Some("www.csr.test".into()),
        sans: Some("a.csr.test;*.b.csr.test".into()),
        private_key_algo: Some(algo.into()),
        usage: Some("PERSONAL".into()),
        ..CreateCsrBody::default()
    }
}

#[tokio::test]
async fn routes_csr_create_show_key_rename_list_delete() {
    let s = TestServer::start().await;
    let c = &s.admin;

    // Create: 201, every field but the PEM.
    let resp = c
        .call(
            Operation::CreateCsr,
            &[],
            &[],
            Some(&body(&json!({
                "name": "ent-1", "domain_name": "WWW.Csr.test", "sans": "a.csr.test, b.csr.test",
                "private_key_algo": "EC_P384", "usage": "ENTERPRISE", "company_country": "cn",
                "company_province": "Sichuan", "company_city": "Chengdu", "company_name": "OpenSCM"
            }))),
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 201, "{}", resp.text());
    let created: Value = resp.json().unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(is_hex32(&id), "{id}");
    assert_eq!(created["name"], "ent-1");
    assert_eq!(created["domain_name"], "www.csr.test");
    assert_eq!(created["sans"], "a.csr.test;b.csr.test");
    assert_eq!(created["private_key_algo"], "EC_P384");
    assert_eq!(created["usage"], "ENTERPRISE");
    assert_eq!(created["company_country"], "CN");
    assert_eq!(created["company_province"], "Sichuan");
    assert_eq!(created["company_city"], "Chengdu");
    assert_eq!(created["company_name"], "OpenSCM");
    assert!(created["create_time"].as_i64().unwrap() > 0);
    assert_eq!(created["create_time"], created["update_time"]);
    assert!(created.get("csr").is_none(), "no PEM in the create answer");

    // Show: every key, the PEM a CSR for the names, signed by the key ShowCsrPrivateKey gives.
    let resp = c.call(Operation::ShowCsr, &[&id], &[], None).await.unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let shown: Value = resp.json().unwrap();
    for key in [
        "id",
        "name",
        "csr",
        "domain_name",
        "sans",
        "private_key_algo",
        "usage",
        "company_country",
        "company_province",
        "company_city",
        "company_name",
        "create_time",
        "update_time",
    ] {
        assert!(shown.get(key).is_some(), "{key} is present");
    }
    let shown: CsrResponse = resp.json().unwrap();
    let parsed = ParsedCsr::from_pem(&shown.csr).unwrap();
    assert_eq!(
        parsed.dns_names(),
        vec!["www.csr.test", "a.csr.test", "b.csr.test"]
    );
    assert_eq!(parsed.key_algorithm(), Some(KeyAlgorithm::EcP384));
    let key = c.show_csr_private_key(&id).await.unwrap().private_key;
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8");
    assert!(parsed.matches_key(&PrivateKey::from_pem(&key).unwrap()));

    // Rename: the answer is the whole CSR, renamed, created_time kept.
    let renamed = c
        .update_csr(
            &id,
            &UpdateCsrBody {
                name: Some("ent-renamed".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.name, "ent-renamed");
    assert_eq!(renamed.create_time, shown.create_time);
    assert!(renamed.update_time >= shown.update_time);
    assert_eq!(renamed.csr, shown.csr);
    assert_eq!(c.show_csr(&id).await.unwrap(), renamed);

    // An RSA one (fast enough at 2048), a personal one: the company fields are null.
    let rsa = c
        .create_csr(&create_body("rsa-1", "RSA_2048"))
        .await
        .unwrap();
    assert_eq!(rsa.private_key_algo, "RSA_2048");
    assert_eq!(rsa.company_name, None);
    let rsa_shown = c.show_csr(&rsa.id).await.unwrap();
    assert!(ParsedCsr::from_pem(&rsa_shown.csr).unwrap().is_rsa());
    let raw = c
        .call(Operation::ShowCsr, &[&rsa.id], &[], None)
        .await
        .unwrap();
    let raw: Value = raw.json().unwrap();
    assert!(raw["company_name"].is_null() && raw.get("company_name").is_some());

    // List: newest first, filters, total.
    let list = c.list_csr(&[]).await.unwrap();
    assert_eq!(list.total, 2);
    assert_eq!(
        list.csr_list
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["rsa-1", "ent-renamed"]
    );
    assert_eq!(list.csr_list[1], renamed);
    let list = c
        .list_csr(&[("name", "RENAMED"), ("limit", "10"), ("offset", "0")])
        .await
        .unwrap();
    assert_eq!((list.total, list.csr_list.len()), (1, 1));
    let list = c
        .list_csr(&[("private_key_algo", "RSA_2048")])
        .await
        .unwrap();
    assert_eq!(list.csr_list[0].id, rsa.id);
    let resp = c
        .call(Operation::ListCsr, &[], &[("offset", "5")], None)
        .await
        .unwrap();
    assert_eq!(resp.text(), r#"{"csr_list":[],"total":2}"#);

    // Delete: 204; then it is gone everywhere.
    let resp = c
        .call(Operation::DeleteCsr, &[&id], &[], None)
        .await
        .unwrap();
    assert_eq!(resp.status, 204, "{}", resp.text());
    assert!(resp.text().is_empty());
    for op in [
        Operation::ShowCsr,
        Operation::ShowCsrPrivateKey,
        Operation::DeleteCsr,
    ] {
        refused(
            &c.call(op, &[&id], &[], None).await.unwrap(),
            404,
            "SCM.0020",
        );
    }
    assert_eq!(c.list_csr(&[]).await.unwrap().total, 1);
    s.stop().await;
}

#[tokio::test]
async fn routes_csr_upload_with_and_without_key() {
    let s = TestServer::start().await;
    let c = &s.admin;
    let (pem, key) = csr(&["up.csr.test", "www.up.csr.test"]);

    let up = c
        .upload_csr(&UploadCsrBody {
            name: Some("up-1".into()),
            csr: Some(pem.clone()),
            private_key: Some(key.to_pem().to_string()),
        })
        .await
        .unwrap();
    assert!(is_hex32(&up.id));
    assert_eq!(up.name, "up-1");
    let shown = c.show_csr(&up.id).await.unwrap();
    assert_eq!(shown.csr, pem);
    assert_eq!(shown.domain_name, "up.csr.test");
    assert_eq!(shown.sans, "www.up.csr.test");
    assert_eq!(shown.private_key_algo.as_deref(), Some("EC_P256"));
    assert_eq!((shown.usage, shown.company_country), (None, None));
    assert_eq!(shown.create_time, up.create_time);
    let back = c.show_csr_private_key(&up.id).await.unwrap().private_key;
    assert_eq!(
        PrivateKey::from_pem(&back).unwrap().public_key_raw(),
        key.public_key_raw()
    );

    // Without a key: stored, but there is no key to show.
    let bare = c
        .upload_csr(&UploadCsrBody {
            name: Some("up-bare".into()),
            csr: Some(pem.clone()),
            private_key: None,
        })
        .await
        .unwrap();
    refused(
        &c.call(Operation::ShowCsrPrivateKey, &[&bare.id], &[], None)
            .await
            .unwrap(),
        400,
        "SCM.0010",
    );

    // Another key than the CSR's: SCM.0014, nothing stored.
    let other = PrivateKey::generate(KeyAlgorithm::EcP256).unwrap();
    let resp = c
        .call(
            Operation::UploadCsr,
            &[],
            &[],
            Some(&body(&json!({
                "name": "mismatch", "csr": pem, "private_key": other.to_pem().to_string()
            }))),
        )
        .await
        .unwrap();
    refused(&resp, 400, "SCM.0014");
    assert_eq!(c.list_csr(&[]).await.unwrap().total, 2);
    s.stop().await;
}

#[tokio::test]
async fn routes_csr_refusals() {
    let s = TestServer::start().await;
    let c = &s.admin;
    let post = |op, v: Value| {
        let c = c.clone();
        async move { c.call(op, &[], &[], Some(&body(&v))).await.unwrap() }
    };
    let ok = json!({"name": "n", "domain_name": "www.csr.test", "private_key_algo": "EC_P256",
                    "usage": "PERSONAL"});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = ok.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    let enterprise = json!({"name": "n", "domain_name": "www.csr.test",
        "private_key_algo": "EC_P256", "usage": "ENTERPRISE", "company_country": "CN",
        "company_province": "Sichuan", "company_city": "Chengdu", "company_name": "OpenSCM"});
    let mut cases = vec![
        (without("name"), "name"),
        (with("name", json!("")), "name"),
        (with("name", json!("n".repeat(64))), "name"),
        (with("name", json!("a b")), "name"),
        (with("name", json!(1)), "name"),
        (without("domain_name"), "domain_name"),
        (with("domain_name", json!("not a domain")), "domain_name"),
        (
            with("domain_name", json!(format!("{}.test", "a".repeat(59)))),
            "domain_name",
        ),
        (with("sans", json!("a.test;bad name")), "sans"),
        (
            with("sans", json!(vec!["abcdefghi.test"; 18].join(";"))),
            "sans",
        ),
        (with("sans", json!("www.csr.test")), "sans"),
        (without("private_key_algo"), "private_key_algo"),
        (with("private_key_algo", json!("SM2")), "private_key_algo"),
        (
            with("private_key_algo", json!("RSA_1024")),
            "private_key_algo",
        ),
        (without("usage"), "usage"),
        (with("usage", json!("COMPANY")), "usage"),
    ];
    for f in [
        "company_country",
        "company_province",
        "company_city",
        "company_name",
    ] {
        let mut b = enterprise.clone();
        b.as_object_mut().unwrap().remove(f);
        cases.push((b, f));
        let mut b = enterprise.clone();
        b[f] = json!("c".repeat(256));
        cases.push((b, f));
    }
    for (v, field) in cases {
        invalid(&post(Operation::CreateCsr, v).await, field);
    }
    let resp = post(Operation::CreateCsr, enterprise.clone()).await;
    assert_eq!(resp.status, 201, "{}", resp.text());

    // Upload limits.
    let (pem, key) = csr(&["up.csr.test"]);
    let up = |name: Value, csr: Value, k: Option<Value>| {
        let mut b = json!({"name": name, "csr": csr});
        if let Some(k) = k {
            b["private_key"] = k;
        }
        b
    };
    for (v, field) in [
        (up(json!(""), json!(pem), None), "name"),
        (up(json!("n".repeat(64)), json!(pem), None), "name"),
        (json!({"name": "n"}), "csr"),
        (up(json!("n"), json!("x".repeat(2556)), None), "csr"),
        (up(json!("n"), json!("not a csr"), None), "csr"),
        (
            up(json!("n"), json!(pem), Some(json!("k".repeat(4097)))),
            "private_key",
        ),
        (
            up(json!("n"), json!(pem), Some(json!("not a key"))),
            "private_key",
        ),
    ] {
        invalid(&post(Operation::UploadCsr, v).await, field);
    }

    // List parameters.
    for (k, v) in [
        ("limit", "5"),
        ("limit", "51"),
        ("offset", "-1"),
        ("private_key_algo", "RSA_1024"),
    ] {
        invalid(
            &c.call(Operation::ListCsr, &[], &[(k, v)], None)
                .await
                .unwrap(),
            k,
        );
    }

    // Rename limits.
    let id = c
        .upload_csr(&UploadCsrBody {
            name: Some("mine".into()),
            csr: Some(pem.clone()),
            private_key: Some(key.to_pem().to_string()),
        })
        .await
        .unwrap()
        .id;
    for name in [None, Some(""), Some("a b"), Some(&*"n".repeat(64))] {
        let e = c
            .update_csr(
                &id,
                &UpdateCsrBody {
                    name: name.map(Into::into),
                },
            )
            .await
            .unwrap_err();
        invalid_err(&e, "name");
    }
    assert_eq!(c.show_csr(&id).await.unwrap().name, "mine", "unchanged");

    // Ids: malformed (SCM.0008), unknown and another account's (404 SCM.0020, alike).
    let other = s.other_account("other").await;
    let rename = body(&json!({"name": "stolen"}));
    for (who, id, status, code) in [
        (c, "not-a-csr-id", 400, "SCM.0008"),
        (c, "0123456789ABCDEF0123456789ABCDEF", 400, "SCM.0008"),
        (c, "scs1700000000000", 400, "SCM.0008"),
        (c, "0123456789abcdef0123456789abcdef", 404, "SCM.0020"),
        (&other, id.as_str(), 404, "SCM.0020"),
    ] {
        for (op, b) in [
            (Operation::ShowCsr, None),
            (Operation::UpdateCsr, Some(rename.as_slice())),
            (Operation::ShowCsrPrivateKey, None),
            (Operation::DeleteCsr, None),
        ] {
            let resp = who.call(op, &[id], &[], b).await.unwrap();
            refused(&resp, status, code);
        }
    }
    // The other account lists none of them; the CSR is untouched.
    assert_eq!(other.list_csr(&[]).await.unwrap().total, 0);
    assert_eq!(c.show_csr(&id).await.unwrap().name, "mine");

    // No authentication: 401 on every CSR route.
    for (op, params) in [
        (Operation::CreateCsr, vec![]),
        (Operation::ListCsr, vec![]),
        (Operation::ShowCsr, vec![id.as_str()]),
        (Operation::UpdateCsr, vec![id.as_str()]),
        (Operation::DeleteCsr, vec![id.as_str()]),
        (Operation::ShowCsrPrivateKey, vec![id.as_str()]),
        (Operation::UploadCsr, vec![]),
    ] {
        let req = c
            .request(op, &params, &[], Some(&rename))
            .auth(RequestAuth::None);
        refused(&c.send(req).await.unwrap(), 401, "APIGW.0301");
    }
    assert_eq!(c.show_csr(&id).await.unwrap().name, "mine");
    s.stop().await;
}

/// A certificate applied for with a CSR made by CreateCsr gets the key the server holds for
/// it: export answers it (the key ShowCsrPrivateKey answers, not `null`), and the certificate
/// says it can be pushed. A CSR made elsewhere still exports no key.
#[tokio::test]
async fn routes_csr_a_certificate_from_a_created_csr_exports_its_key() {
    let s = TestServer::start().await;
    let c = &s.admin;
    let made = c
        .create_csr(&create_body("for-apply", "EC_P256"))
        .await
        .unwrap();
    let pem = c.show_csr(&made.id).await.unwrap().csr;
    let key = c.show_csr_private_key(&made.id).await.unwrap().private_key;
    let id = c
        .subscribe(&scm_proto::v3::PurchaseBody {
            domain_type: Some("MULTI_DOMAIN".into()),
            domain_numbers: Some(3),
            ..crate::routes::buy_body()
        })
        .await
        .unwrap()
        .cert[0]
        .cert_id
        .clone();
    let apply = scm_proto::v3::ApplicationBody {
        sans: Some("a.csr.test;*.b.csr.test".into()),
        csr: Some(pem),
        ..crate::routes::apply_body("www.csr.test")
    };
    c.apply(&id, &apply).await.unwrap();
    let export = c.export(&id).await.unwrap();
    assert_eq!(export.private_key.as_deref(), Some(key.as_str()));
    let leaf = scm_pki::parse_certificate_pem(&export.certificate).unwrap();
    assert!(leaf.public_key_matches(&PrivateKey::from_pem(&key).unwrap()));
    assert_eq!(c.show(&id).await.unwrap().push_support, "ON");

    // A CSR whose key the server never had: no key to export.
    let (foreign, _) = csr(&["www.foreign-csr.test"]);
    let id = crate::routes::paid(c).await;
    let apply = scm_proto::v3::ApplicationBody {
        csr: Some(foreign),
        ..crate::routes::apply_body("www.foreign-csr.test")
    };
    c.apply(&id, &apply).await.unwrap();
    assert_eq!(c.export(&id).await.unwrap().private_key, None);
    assert_eq!(c.show(&id).await.unwrap().push_support, "OFF");
    s.stop().await;
}
