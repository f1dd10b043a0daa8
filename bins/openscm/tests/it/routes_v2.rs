//! The v2 routes under `/v2/{project_id}/scm/cert/...`: purchase, save, complete, push and
//! push history; their project scope, certificate ids, statuses and field checks.

use scm_client::Client;
use scm_pki::{KeyAlgorithm, parse_certificate_pem};
use scm_proto::v3::{ApplicationBody, PurchaseBody};
use scm_proto::{DomainId, Operation};

use crate::harness::{TestServer, file_target};
use crate::routes::{
    count, csr, invalid, invalid_err, issued, listed, paid, refused, request_id, shown,
    v2_application, v2_buy_body, v2_push,
};

fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn is_cert_id(s: &str) -> bool {
    s.len() == 16 && s.starts_with("scs") && s[3..].bytes().all(|b| b.is_ascii_digit())
}

fn is_order_id(s: &str) -> bool {
    s.len() == 17
        && s.starts_with("CS")
        && s[2..12].bytes().all(|b| b.is_ascii_digit())
        && s[12..]
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

/// A PAID OV certificate bought through v2.
async fn v2_paid(client: &Client, project: &str, body: &PurchaseBody) -> String {
    client.v2_purchase(project, body).await.unwrap().cert[0]
        .cert_id
        .clone()
}

/// The DNS names of the leaf of an export.
async fn leaf(client: &Client, id: &str) -> scm_pki::CertificateInfo {
    parse_certificate_pem(&client.export(id).await.unwrap().certificate).unwrap()
}

#[tokio::test]
async fn routes_v2_purchase_buys_paid_certificates() {
    let s = TestServer::start().await;
    let body = PurchaseBody {
        domain_type: Some("MULTI_DOMAIN".into()),
        domain_numbers: Some(2),
        order_number: Some(3),
        ..v2_buy_body()
    };
    let order = s.admin.v2_purchase(&s.project_id, &body).await.unwrap();
    assert!(is_order_id(&order.order_id), "{}", order.order_id);
    let ids: Vec<String> = order.cert.iter().map(|c| c.cert_id.clone()).collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|i| is_cert_id(i)), "{ids:?}");
    assert_eq!(
        ids.iter().collect::<std::collections::HashSet<_>>().len(),
        3
    );
    for id in &ids {
        let c = s.admin.show(id).await.unwrap();
        assert_eq!(c.status, "PAID");
        assert_eq!(c.order_id.as_deref(), Some(order.order_id.as_str()));
        assert_eq!(c.cert_type.as_deref(), Some("OV_SSL_CERT"));
        assert_eq!(c.domain_type.as_deref(), Some("MULTI_DOMAIN"));
        assert_eq!(c.domain_count, 2);
        assert_eq!(c.validity_period, 12);
        assert_eq!(c.push_support, "OFF");
    }
    // The v2 page's own example sends a trailing space; v2 allows 2 years and 1000 certificates.
    let spaced = PurchaseBody {
        cert_type: Some("EV_SSL_CERT ".into()),
        effective_time: Some(2),
        order_number: Some(101),
        ..v2_buy_body()
    };
    let many = s.admin.v2_purchase(&s.project_id, &spaced).await.unwrap();
    assert_eq!(many.cert.len(), 101);
    let shown = s.admin.show(&many.cert[100].cert_id).await.unwrap();
    assert_eq!(shown.cert_type.as_deref(), Some("EV_SSL_CERT"));
    // Two years bought, delivered as successive certificates of at most a year each.
    assert_eq!(shown.validity_period, 12);
    assert_eq!(count(&s.admin).await, 104);

    // Another project of the same account is the caller's too.
    let account = DomainId::try_from(s.domain_id.as_str()).unwrap();
    let second = s.scm.create_project(&account, "cn-south-1").await.unwrap();
    let order = s
        .admin
        .v2_purchase(second.project_id.as_str(), &v2_buy_body())
        .await
        .unwrap();
    assert_eq!(order.cert.len(), 1);
    assert_eq!(count(&s.admin).await, 105, "visible to every project");
    s.stop().await;
}

#[tokio::test]
async fn routes_v2_purchase_refusals_name_the_field_and_buy_nothing() {
    let s = TestServer::start().await;
    let with = |f: fn(&mut PurchaseBody)| {
        let mut b = v2_buy_body();
        f(&mut b);
        json(&b)
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (with(|b| b.order_number = Some(1001)), "order_number"),
        (with(|b| b.order_number = Some(0)), "order_number"),
        (with(|b| b.order_number = None), "order_number"),
        (with(|b| b.effective_time = Some(3)), "effective_time"),
        (with(|b| b.effective_time = Some(0)), "effective_time"),
        // DV exists on v3 only.
        (with(|b| b.cert_type = Some("DV_SSL_CERT".into())), "cert_type"),
        (with(|b| b.cert_type = Some("BOGUS_SSL_CERT".into())), "cert_type"),
        (with(|b| b.cert_brand = None), "cert_brand"),
        (with(|b| b.cert_brand = Some("ACME".into())), "cert_brand"),
        (with(|b| b.domain_type = Some("ANY_DOMAIN".into())), "domain_type"),
        (
            with(|b| {
                b.domain_type = Some("MULTI_DOMAIN".into());
                b.domain_numbers = Some(1);
            }),
            "domain_numbers",
        ),
        (with(|b| b.domain_numbers = Some(2)), "domain_numbers"),
        (
            with(|b| b.agree_privacy_protection = Some(false)),
            "agree_privacy_protection",
        ),
        (
            with(|b| b.agree_privacy_protection = None),
            "agree_privacy_protection",
        ),
        (
            br#"{"cert_brand": "GLOBALSIGN", "cert_type": "OV_SSL_CERT", "domain_type": "SINGLE_DOMAIN",
                "effective_time": 1, "domain_numbers": 1, "order_number": "x",
                "agree_privacy_protection": true}"#
                .to_vec(),
            "order_number",
        ),
        (br#"{"cert_brand": "GLOBALSIGN", "order_number": 1,"#.to_vec(), "body"),
        (b"\"a string\"".to_vec(), "body"),
        (b"null".to_vec(), "body"),
        (Vec::new(), "body"),
    ];
    for (body, field) in cases {
        let resp = s
            .admin
            .call(
                Operation::V2PurchaseCertificate,
                &[&s.project_id],
                &[],
                Some(&body),
            )
            .await
            .unwrap();
        invalid(&resp, field);
        assert_eq!(count(&s.admin).await, 0, "refused ({field}) but bought");
    }
    s.stop().await;
}

/// An operation, its path parameters and its body.
type ScopedCall<'a> = (Operation, Vec<&'a str>, Option<&'a [u8]>);

/// Every v2 route with another account's project, an unknown or a malformed one in its path
/// is 403 `SCM.0003`, and says nothing about the certificate; the other account's credential,
/// through its own project, does not find this account's certificate (404 `SCM.0020`, as an id
/// never issued).
#[tokio::test]
async fn routes_v2_routes_refuse_projects_that_are_not_the_callers() {
    let s = TestServer::start().await;
    let other = s.other_account("other").await;
    let other_project = other.credentials().project_id.clone().unwrap();
    let id = issued(&s.admin, "www.v2-scope.test").await;
    let theirs = paid(&other).await;
    let before = (listed(&s.admin).await, listed(&other).await);
    let app = json(&v2_application("hijack.v2-scope.test"));
    let push = json(&v2_push("ELB", Some("cn-north-4")));
    let buy = json(&v2_buy_body());
    for project in [
        other_project.as_str(),
        "0123456789abcdef0123456789abcdef",
        "not-a-project",
        "0123456789ABCDEF0123456789ABCDEF",
    ] {
        let calls: [ScopedCall<'_>; 6] = [
            (Operation::V2PurchaseCertificate, vec![project], Some(&buy)),
            (Operation::V2SaveApplication, vec![project, &id], Some(&app)),
            (
                Operation::V2CompleteApplication,
                vec![project, &id],
                Some(&app),
            ),
            (Operation::V2CompleteApplication, vec![project, &id], None),
            (
                Operation::V2PushCertificate,
                vec![project, &id],
                Some(&push),
            ),
            (Operation::V2ListPushHistory, vec![project, &id], None),
        ];
        for (op, params, body) in calls {
            let resp = s.admin.call(op, &params, &[], body).await.unwrap();
            let msg = refused(&resp, 403, "SCM.0003");
            assert!(
                !msg.contains("v2-scope") && !msg.contains(&other_project),
                "{op}: {msg}"
            );
        }
        // The other account's own credential is not let into this account's certificate
        // through its own project either: to it, the certificate does not exist.
        let resp = other
            .call(
                Operation::V2ListPushHistory,
                &[&other_project, &id],
                &[],
                None,
            )
            .await
            .unwrap();
        let msg = refused(&resp, 404, "SCM.0020");
        assert!(!msg.contains("v2-scope"), "{msg}");
    }
    // X-Project-Id naming the other project while the path names the caller's.
    let req = s
        .admin
        .request(
            Operation::V2PurchaseCertificate,
            &[&s.project_id],
            &[],
            Some(&buy),
        )
        .without_header("X-Project-Id")
        .header("X-Project-Id", other_project.as_str());
    refused(&s.admin.send(req).await.unwrap(), 403, "SCM.0003");
    assert_eq!(
        (listed(&s.admin).await, listed(&other).await),
        before,
        "a refusal changed nothing"
    );
    assert_eq!(other.show(&theirs).await.unwrap().status, "PAID");
    s.stop().await;
}

#[tokio::test]
async fn routes_v2_save_then_complete_with_an_empty_body_issues_the_saved_application() {
    let s = TestServer::start().await;
    let id = v2_paid(&s.admin, &s.project_id, &v2_buy_body()).await;
    let saved = s
        .admin
        .v2_save(&s.project_id, &id, &v2_application("first.v2.test"))
        .await
        .unwrap();
    assert_eq!(saved.request_info, "success");
    let c = s.admin.show(&id).await.unwrap();
    assert_eq!(c.status, "PAID", "save does not issue");
    assert_eq!(c.domain.as_deref(), Some("first.v2.test"));
    let info = c.application_info.unwrap();
    assert_eq!(info.company_name.as_deref(), Some("OpenSCM IT Org"));
    assert_eq!(info.applicant_email.as_deref(), Some("tom@example.com"));
    assert_eq!(info.country.as_deref(), Some("CN"));

    // Saving again overwrites.
    let second = ApplicationBody {
        company_name: Some("Second Org".into()),
        ..v2_application("saved.v2.test")
    };
    s.admin.v2_save(&s.project_id, &id, &second).await.unwrap();
    let c = s.admin.show(&id).await.unwrap();
    assert_eq!(c.domain.as_deref(), Some("saved.v2.test"));
    assert_eq!(
        c.application_info.unwrap().company_name.as_deref(),
        Some("Second Org")
    );

    // An empty body submits what was saved.
    let done = s.admin.v2_complete(&s.project_id, &id, None).await.unwrap();
    assert_eq!(done.request_info, "success");
    let c = s.admin.show(&id).await.unwrap();
    assert_eq!(c.status, "ISSUED");
    assert_eq!(c.domain.as_deref(), Some("saved.v2.test"));
    let leaf = leaf(&s.admin, &id).await;
    assert_eq!(leaf.dns_names, ["saved.v2.test"]);
    assert!(leaf.subject.contains("O=Second Org"), "{}", leaf.subject);
    assert!(leaf.subject.contains("C=CN"), "{}", leaf.subject);
    assert_eq!(leaf.key_algorithm, Some(KeyAlgorithm::EcP256));
    s.stop().await;
}

/// `{}` is an empty body too; a saved application without `key_algorithm` gets the default
/// RSA_2048 key (the one RSA key of this suite).
#[tokio::test]
async fn routes_v2_complete_with_an_empty_object_issues_the_saved_application() {
    let s = TestServer::start().await;
    let id = v2_paid(&s.admin, &s.project_id, &v2_buy_body()).await;
    let form = ApplicationBody {
        key_algorithm: None,
        ..v2_application("object.v2.test")
    };
    s.admin.v2_save(&s.project_id, &id, &form).await.unwrap();
    let resp = s
        .admin
        .call(
            Operation::V2CompleteApplication,
            &[&s.project_id, &id],
            &[],
            Some(b" { } "),
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.json::<serde_json::Value>().unwrap(),
        serde_json::json!({"request_info": "success"})
    );
    let c = s.admin.show(&id).await.unwrap();
    assert_eq!(
        (c.status.as_str(), c.domain.as_deref()),
        ("ISSUED", Some("object.v2.test"))
    );
    let export = s.admin.export(&id).await.unwrap();
    let leaf = parse_certificate_pem(&export.certificate).unwrap();
    assert_eq!(leaf.key_algorithm, Some(KeyAlgorithm::Rsa2048));
    let key = scm_pki::PrivateKey::from_pem(&export.private_key.unwrap()).unwrap();
    assert_eq!(key.algorithm(), KeyAlgorithm::Rsa2048);
    assert!(leaf.public_key_matches(&key));
    s.stop().await;
}

/// A body given to complete is what is issued, over anything saved; with a CSR the key stays
/// the applicant's.
#[tokio::test]
async fn routes_v2_complete_with_a_body_issues_the_body() {
    let s = TestServer::start().await;
    let multi = PurchaseBody {
        domain_type: Some("MULTI_DOMAIN".into()),
        domain_numbers: Some(2),
        ..v2_buy_body()
    };
    let id = v2_paid(&s.admin, &s.project_id, &multi).await;
    s.admin
        .v2_save(&s.project_id, &id, &v2_application("saved.v2.test"))
        .await
        .unwrap();
    let (csr_pem, key) = csr(&["csr.v2.test", "alt.csr.v2.test"]);
    let body = ApplicationBody {
        sans: Some("alt.csr.v2.test".into()),
        csr: Some(csr_pem),
        ..v2_application("csr.v2.test")
    };
    let done = s
        .admin
        .v2_complete(&s.project_id, &id, Some(&body))
        .await
        .unwrap();
    assert_eq!(done.request_info, "success");
    let c = s.admin.show(&id).await.unwrap();
    assert_eq!(c.status, "ISSUED");
    assert_eq!(c.domain.as_deref(), Some("csr.v2.test"));
    assert_eq!(c.sans.as_deref(), Some("alt.csr.v2.test"));
    let export = s.admin.export(&id).await.unwrap();
    assert_eq!(export.private_key, None, "the key is the applicant's");
    let leaf = parse_certificate_pem(&export.certificate).unwrap();
    assert!(leaf.public_key_matches(&key));
    let mut names = leaf.dns_names.clone();
    names.sort();
    assert_eq!(names, ["alt.csr.v2.test", "csr.v2.test"]);

    // Complete with a body and nothing saved.
    let id = v2_paid(&s.admin, &s.project_id, &v2_buy_body()).await;
    s.admin
        .v2_complete(&s.project_id, &id, Some(&v2_application("direct.v2.test")))
        .await
        .unwrap();
    assert_eq!(leaf_names(&s.admin, &id).await, ["direct.v2.test"]);
    s.stop().await;
}

async fn leaf_names(client: &Client, id: &str) -> Vec<String> {
    leaf(client, id).await.dns_names
}

#[tokio::test]
async fn routes_v2_complete_without_a_saved_application_names_domain() {
    let s = TestServer::start().await;
    let id = v2_paid(&s.admin, &s.project_id, &v2_buy_body()).await;
    let before = shown(&s.admin, &id).await;
    for body in [None, Some(&b"{}"[..]), Some(&b"  "[..])] {
        let resp = s
            .admin
            .call(
                Operation::V2CompleteApplication,
                &[&s.project_id, &id],
                &[],
                body,
            )
            .await
            .unwrap();
        invalid(&resp, "domain");
        assert_eq!(shown(&s.admin, &id).await, before);
    }
    // A complete whose body is refused issues nothing either.
    let bad = ApplicationBody {
        company_name: None,
        ..v2_application("bad.v2.test")
    };
    let err = s
        .admin
        .v2_complete(&s.project_id, &id, Some(&bad))
        .await
        .unwrap_err();
    invalid_err(&err, "company_name");
    assert_eq!(shown(&s.admin, &id).await, before);
    s.stop().await;
}

/// Certificate ids are `scs` + a millisecond time: a 1,000-certificate purchase takes the
/// milliseconds up to the purchase, so when it is answered no id is ahead of the clock; a
/// second one at once runs at most 100 ms ahead (it waits for the clock beyond that).
#[tokio::test]
async fn routes_v2_a_1000_certificate_purchase_does_not_run_ahead_of_the_clock() {
    let s = TestServer::start().await;
    let body = PurchaseBody {
        order_number: Some(1000),
        ..v2_buy_body()
    };
    let now_ms = || {
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap()
    };
    let millis = |ids: &[scm_proto::v3::CertRef]| -> Vec<i64> {
        ids.iter()
            .map(|c| c.cert_id[3..].parse().unwrap())
            .collect()
    };
    let first = millis(
        &s.admin
            .v2_purchase(&s.project_id, &body)
            .await
            .unwrap()
            .cert,
    );
    let answered = now_ms();
    assert_eq!(first.len(), 1000);
    let ahead = first.iter().max().unwrap() - answered;
    assert!(ahead <= 0, "ids {ahead} ms ahead of the clock");
    let second = millis(
        &s.admin
            .v2_purchase(&s.project_id, &body)
            .await
            .unwrap()
            .cert,
    );
    let answered = now_ms();
    assert!(
        second.iter().min() > first.iter().max(),
        "ids are never reused"
    );
    let ahead = second.iter().max().unwrap() - answered;
    assert!(ahead <= 100, "ids {ahead} ms ahead of the clock");
    s.stop().await;
}

/// v2 `save` takes what its page allows (the page's own example e-mail value
/// `example.huawei.com`, an empty `applicant_name` — "0 to 63 characters" — and, for a DV
/// certificate, no company fields: "mandatory for certificates of the OV and EV types"), and
/// `complete` issues what was saved.
#[tokio::test]
async fn routes_v2_save_takes_what_its_page_allows() {
    let s = TestServer::start().await;
    let dv = paid(&s.admin).await;
    let form = serde_json::json!({
        "domain": "www.dv-save.v2.test", "country": "CN", "applicant_name": "",
        "applicant_phone": "13212345678", "applicant_email": "example.huawei.com",
        "contact_email": "example.huawei.com", "csr": "", "sans": "",
        "agree_privacy_protection": true
    });
    let resp = s
        .admin
        .call(
            Operation::V2SaveApplication,
            &[&s.project_id, &dv],
            &[],
            Some(&json(&form)),
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let c = s.admin.show(&dv).await.unwrap();
    assert_eq!(
        (c.status.as_str(), c.domain.as_deref()),
        ("PAID", Some("www.dv-save.v2.test"))
    );
    let info = c.application_info.unwrap();
    assert_eq!(info.applicant_email.as_deref(), Some("example.huawei.com"));
    assert_eq!(info.company_name, None);
    s.admin.v2_complete(&s.project_id, &dv, None).await.unwrap();
    assert_eq!(leaf_names(&s.admin, &dv).await, ["www.dv-save.v2.test"]);
    // The same form for an OV certificate: the company is required.
    let ov = v2_paid(&s.admin, &s.project_id, &v2_buy_body()).await;
    let resp = s
        .admin
        .call(
            Operation::V2SaveApplication,
            &[&s.project_id, &ov],
            &[],
            Some(&json(&form)),
        )
        .await
        .unwrap();
    invalid(&resp, "company_name");
    s.stop().await;
}

/// Each refused save names its field and leaves the saved application as it was.
#[tokio::test]
async fn routes_v2_save_refusals_name_the_field_and_keep_the_saved_application() {
    let s = TestServer::start().await;
    let id = v2_paid(&s.admin, &s.project_id, &v2_buy_body()).await;
    s.admin
        .v2_save(&s.project_id, &id, &v2_application("kept.v2.test"))
        .await
        .unwrap();
    let before = shown(&s.admin, &id).await;
    let with = |f: fn(&mut ApplicationBody)| {
        let mut b = v2_application("refused.v2.test");
        f(&mut b);
        json(&b)
    };
    let (other_csr, _) = csr(&["other.v2.test"]);
    let mut cases: Vec<(Vec<u8>, &str)> = vec![
        (with(|b| b.company_name = None), "company_name"),
        // OV needs the company: present but empty is refused too.
        (
            with(|b| b.company_name = Some(String::new())),
            "company_name",
        ),
        (with(|b| b.company_province = None), "company_province"),
        (with(|b| b.company_city = None), "company_city"),
        (with(|b| b.country = None), "country"),
        (with(|b| b.country = Some("CHN".into())), "country"),
        (with(|b| b.applicant_name = None), "applicant_name"),
        (
            with(|b| b.applicant_phone = Some("phone".into())),
            "applicant_phone",
        ),
        // The v2 page checks no e-mail form (its own example is `example.huawei.com`), only
        // the length an address can have.
        (
            with(|b| b.applicant_email = Some(format!("{}@example.test", "x".repeat(250)))),
            "applicant_email",
        ),
        (with(|b| b.applicant_email = None), "applicant_email"),
        (
            with(|b| b.contact_email = Some("x".repeat(255))),
            "contact_email",
        ),
        (
            with(|b| b.agree_privacy_protection = Some(false)),
            "agree_privacy_protection",
        ),
        (with(|b| b.domain = None), "domain"),
        (with(|b| b.domain = Some("bad..name.test".into())), "domain"),
        (
            with(|b| b.sans = Some("a.v2.test;a.v2.test".into())),
            "sans",
        ),
        (
            with(|b| b.key_algorithm = Some("RSA_1024".into())),
            "key_algorithm",
        ),
        (with(|b| b.csr = Some("not a csr".into())), "csr"),
        (br#"{"domain": 5}"#.to_vec(), "domain"),
        (b"{\"domain\": ".to_vec(), "body"),
        (Vec::new(), "body"),
    ];
    let mut mismatched = v2_application("refused.v2.test");
    mismatched.csr = Some(other_csr);
    cases.push((json(&mismatched), "csr"));
    for (body, field) in cases {
        let resp = s
            .admin
            .call(
                Operation::V2SaveApplication,
                &[&s.project_id, &id],
                &[],
                Some(&body),
            )
            .await
            .unwrap();
        invalid(&resp, field);
        assert_eq!(shown(&s.admin, &id).await, before, "refused ({field})");
    }
    // What was kept is what complete issues.
    s.admin.v2_complete(&s.project_id, &id, None).await.unwrap();
    assert_eq!(leaf_names(&s.admin, &id).await, ["kept.v2.test"]);
    s.stop().await;
}

/// Malformed ids are 400 `SCM.0008`; unknown ones and another account's certificates 404
/// `SCM.0020` alike (and the latter left alone), on every v2 route that names one.
#[tokio::test]
async fn routes_v2_certificate_ids_are_checked() {
    let s = TestServer::start().await;
    let other = s.other_account("other").await;
    let theirs = paid(&other).await;
    let theirs_issued = issued(&other, "www.theirs.test").await;
    let before = (
        shown(&other, &theirs).await,
        shown(&other, &theirs_issued).await,
    );
    let app = json(&v2_application("hijack.v2.test"));
    let push = json(&v2_push("ELB", Some("cn-north-4")));
    let p = s.project_id.as_str();
    type Call<'a> = (Operation, Option<&'a [u8]>);
    let calls: [Call<'_>; 5] = [
        (Operation::V2SaveApplication, Some(&app)),
        (Operation::V2CompleteApplication, Some(&app)),
        (Operation::V2CompleteApplication, None),
        (Operation::V2PushCertificate, Some(&push)),
        (Operation::V2ListPushHistory, None),
    ];
    for (op, body) in calls {
        for (id, status, code) in [
            ("not-a-cert", 400, "SCM.0008"),
            ("scs123", 400, "SCM.0008"),
            ("SCS0000000000001", 400, "SCM.0008"),
            ("scs0000000000001", 404, "SCM.0020"),
            (theirs.as_str(), 404, "SCM.0020"),
            (theirs_issued.as_str(), 404, "SCM.0020"),
        ] {
            let resp = s.admin.call(op, &[p, id], &[], body).await.unwrap();
            let msg = refused(&resp, status, code);
            assert!(!msg.contains("theirs") && !msg.contains("hijack"), "{msg}");
        }
    }
    assert_eq!(
        (
            shown(&other, &theirs).await,
            shown(&other, &theirs_issued).await
        ),
        before
    );
    assert!(
        other
            .v2_push_history(
                other.credentials().project_id.as_deref().unwrap(),
                &theirs_issued
            )
            .await
            .unwrap()
            .push_history_list
            .is_empty()
    );
    s.stop().await;
}

#[tokio::test]
async fn routes_v2_save_and_complete_refuse_an_issued_certificate() {
    let s = TestServer::start().await;
    let id = v2_paid(&s.admin, &s.project_id, &v2_buy_body()).await;
    s.admin
        .v2_complete(&s.project_id, &id, Some(&v2_application("done.v2.test")))
        .await
        .unwrap();
    let before = shown(&s.admin, &id).await;
    let app = json(&v2_application("again.v2.test"));
    for (op, body) in [
        (Operation::V2SaveApplication, Some(&app[..])),
        (Operation::V2CompleteApplication, Some(&app[..])),
        (Operation::V2CompleteApplication, None),
        (Operation::V2CompleteApplication, Some(&b"{}"[..])),
    ] {
        let resp = s
            .admin
            .call(op, &[&s.project_id, &id], &[], body)
            .await
            .unwrap();
        refused(&resp, 400, "SCM.0010");
        assert_eq!(shown(&s.admin, &id).await, before, "{op}");
    }
    assert_eq!(leaf_names(&s.admin, &id).await, ["done.v2.test"]);
    s.stop().await;
}

/// Push writes the full chain and the key (0600) and answers `{"message": "success"}`; a push
/// whose reload fails is 400 `SCM.0028` without the command's output, restores the previous
/// files and is not in the history; the history lists the last 10 successes, newest first.
#[tokio::test]
async fn routes_v2_push_delivers_and_the_history_lists_only_successes_newest_first() {
    let s = TestServer::start_with(|account, out| {
        vec![
            file_target("a", account, "ELB", "r-a", out, &["true"]),
            file_target("b", account, "ELB", "r-b", out, &["true"]),
            file_target(
                "fail",
                account,
                "ELB",
                "r-fail",
                out,
                &[
                    "sh",
                    "-c",
                    "echo LEAKED-OUTPUT; echo LEAKED-ERROR >&2; exit 1",
                ],
            ),
        ]
    })
    .await;
    let id = issued(&s.admin, "www.push.test").await;
    let p = s.project_id.clone();
    // Read (and cache) the empty history first: a push must show through.
    assert!(
        s.admin
            .v2_push_history(&p, &id)
            .await
            .unwrap()
            .push_history_list
            .is_empty()
    );
    let before_ms = now_ms();
    let pushed = s
        .admin
        .v2_push(&p, &id, &v2_push("ELB", Some("r-a")))
        .await
        .unwrap();
    assert_eq!(pushed.message, "success");
    let after_ms = now_ms();
    let export = s.admin.export(&id).await.unwrap();
    let crt = std::fs::read_to_string(s.out.join("a.crt")).unwrap();
    assert_eq!(
        scm_pki::pem_blocks(&crt, "CERTIFICATE"),
        scm_pki::pem_blocks(&export.entire_certificate, "CERTIFICATE"),
        "the full chain: leaf, then intermediate"
    );
    assert_eq!(scm_pki::pem_blocks(&crt, "CERTIFICATE").len(), 2);
    let key_file = s.out.join("a.key");
    let key = scm_pki::PrivateKey::from_pem(&std::fs::read_to_string(&key_file).unwrap()).unwrap();
    assert!(
        parse_certificate_pem(&export.certificate)
            .unwrap()
            .public_key_matches(&key)
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let history = s.admin.v2_push_history(&p, &id).await.unwrap();
    assert_eq!(history.push_history_list.len(), 1);
    let entry = &history.push_history_list[0];
    assert_eq!(entry.push_service, "ELB");
    assert_eq!(entry.push_remote_project.as_deref(), Some("r-a"));
    let t: i64 = entry.push_time.parse().unwrap();
    assert!(
        (before_ms - 1000..=after_ms + 1000).contains(&t),
        "{t} not in {before_ms}..{after_ms}"
    );

    // A failing reload: refused, the previous files are put back, nothing in the history.
    std::fs::write(s.out.join("fail.crt"), "previous certificate\n").unwrap();
    std::fs::write(s.out.join("fail.key"), "previous key\n").unwrap();
    let fail_body = v2_push("ELB", Some("r-fail"));
    let fail = || s.admin.v2_push(&p, &id, &fail_body);
    let err = fail().await.unwrap_err();
    match &err {
        scm_client::ClientError::Api {
            status: 400,
            code,
            message,
            request_id,
        } if code == "SCM.0028" => {
            assert!(
                !message.contains("LEAKED"),
                "the command's output is logged, not returned: {message}"
            );
            assert!(request_id.as_deref().is_some_and(crate::routes::is_hex32));
        }
        other => panic!("expected 400 SCM.0028, got {other}"),
    }
    assert_eq!(
        std::fs::read_to_string(s.out.join("fail.crt")).unwrap(),
        "previous certificate\n"
    );
    assert_eq!(
        std::fs::read_to_string(s.out.join("fail.key")).unwrap(),
        "previous key\n"
    );
    assert_eq!(
        s.admin
            .v2_push_history(&p, &id)
            .await
            .unwrap()
            .push_history_list
            .len(),
        1
    );

    // 11 more successes, alternating targets, with failures in between: the history holds the
    // last 10 successes, newest first.
    let mut regions = vec!["r-a".to_owned()];
    for i in 0..11 {
        let region = if i % 2 == 0 { "r-b" } else { "r-a" };
        s.admin
            .v2_push(&p, &id, &v2_push("ELB", Some(region)))
            .await
            .unwrap();
        regions.push(region.to_owned());
        if i % 4 == 0 {
            let e = fail().await.unwrap_err();
            assert_eq!(crate::routes::code(e), (400, "SCM.0028".into()));
        }
    }
    let history = s.admin.v2_push_history(&p, &id).await.unwrap();
    let got: Vec<String> = history
        .push_history_list
        .iter()
        .map(|h| h.push_remote_project.clone().unwrap_or_default())
        .collect();
    let want: Vec<String> = regions.iter().rev().take(10).cloned().collect();
    assert_eq!(got, want, "the last 10 successes, newest first");
    let times: Vec<i64> = history
        .push_history_list
        .iter()
        .map(|h| h.push_time.parse().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    assert!(
        history
            .push_history_list
            .iter()
            .all(|h| h.push_service == "ELB")
    );
    s.stop().await;
}

/// Pushes that cannot go: no target (`SCM.0030`), bad fields (`SCM.0005` naming them), a
/// certificate not issued (`SCM.0010`); none is in the history.
#[tokio::test]
async fn routes_v2_push_refusals() {
    let s = TestServer::start_with(|account, out| {
        vec![file_target(
            "a",
            account,
            "ELB",
            "cn-north-4",
            out,
            &["true"],
        )]
    })
    .await;
    let id = issued(&s.admin, "www.refused-push.test").await;
    let unpaid = crate::routes::paid(&s.admin).await;
    let p = s.project_id.clone();
    let push = |id: &str, body: Vec<u8>| {
        let id = id.to_owned();
        let p = p.clone();
        let admin = s.admin.clone();
        async move {
            admin
                .call(Operation::V2PushCertificate, &[&p, &id], &[], Some(&body))
                .await
                .unwrap()
        }
    };
    for (service, region) in [
        ("ELB", Some("ap-southeast-1")),
        ("WAF", Some("cn-north-4")),
        ("Enhance_ELB", Some("cn-north-4")),
        ("CDN", Some("cn-north-4")),
        // Services are matched without regard to case, as on v3.
        ("elb", Some("ap-southeast-1")),
    ] {
        let resp = push(&id, json(&v2_push(service, region))).await;
        refused(&resp, 400, "SCM.0030");
    }
    for (body, field) in [
        (json(&v2_push("FTP", Some("cn-north-4"))), "service_type"),
        // The v2 page marks remote_project mandatory, for the global CDN too.
        (json(&v2_push("CDN", None)), "remote_project"),
        (json(&v2_push("CDN", Some(""))), "remote_project"),
        (
            br#"{"remote_project": "cn-north-4"}"#.to_vec(),
            "service_type",
        ),
        (json(&v2_push("ELB", None)), "remote_project"),
        (json(&v2_push("ELB", Some("cn north 4!"))), "remote_project"),
        (b"{".to_vec(), "body"),
        (Vec::new(), "body"),
    ] {
        invalid(&push(&id, body).await, field);
    }
    let resp = push(&unpaid, json(&v2_push("ELB", Some("cn-north-4")))).await;
    refused(&resp, 400, "SCM.0010");
    assert!(
        s.admin
            .v2_push_history(&p, &id)
            .await
            .unwrap()
            .push_history_list
            .is_empty()
    );
    assert!(!s.out.join("a.crt").exists(), "nothing was delivered");
    // The control: the configured target takes it.
    let resp = push(&id, json(&v2_push("ELB", Some("cn-north-4")))).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    request_id(&resp);
    assert_eq!(
        resp.json::<serde_json::Value>().unwrap(),
        serde_json::json!({"message": "success"})
    );
    s.stop().await;
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Pushes to one target at once are not refused: each joins the delivery in flight (or starts
/// the next one), all succeed, and every delivery made is recorded.
#[tokio::test]
async fn routes_v2_concurrent_pushes_to_one_target_all_succeed() {
    let s = TestServer::start_with(|account, out| {
        vec![file_target(
            "one",
            account,
            "ELB",
            "cn-north-4",
            out,
            &["true"],
        )]
    })
    .await;
    let id = issued(&s.admin, "www.concurrent.test").await;
    let body = v2_push("ELB", Some("cn-north-4"));
    let push = || s.admin.v2_push(&s.project_id, &id, &body);
    let (a, b, c, d) = tokio::join!(push(), push(), push(), push());
    for r in [a, b, c, d] {
        assert_eq!(r.unwrap().message, "success");
    }
    let history = s.admin.v2_push_history(&s.project_id, &id).await.unwrap();
    let n = history.push_history_list.len();
    assert!((1..=4).contains(&n), "{n} pushes recorded");
    let export = s.admin.export(&id).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(s.out.join("one.crt")).unwrap(),
        export.entire_certificate
    );
    s.stop().await;
}

/// A push goes to the targets of the caller's account only; CDN is global, so its region is
/// ignored (and recorded as `null`).
#[tokio::test]
async fn routes_v2_push_goes_only_to_the_accounts_targets_and_cdn_ignores_the_region() {
    let s = TestServer::start_with(|account, out| {
        vec![
            file_target("cdn", account, "CDN", "anywhere", out, &["true"]),
            file_target("elb", account, "ELB", "cn-north-4", out, &["true"]),
        ]
    })
    .await;
    let id = issued(&s.admin, "www.cdn.test").await;
    let p = s.project_id.clone();
    for (service, region) in [("CDN", "cn-north-4"), ("cdn", "ap-southeast-1")] {
        let pushed = s
            .admin
            .v2_push(&p, &id, &v2_push(service, Some(region)))
            .await
            .unwrap();
        assert_eq!(pushed.message, "success");
    }
    s.admin
        .push(&id, &crate::routes::v3_push("cdn", None))
        .await
        .unwrap();
    let history = s.admin.v2_push_history(&p, &id).await.unwrap();
    assert_eq!(history.push_history_list.len(), 3);
    for h in &history.push_history_list {
        assert_eq!(h.push_service, "CDN");
        assert_eq!(h.push_remote_project, None);
    }
    assert!(s.out.join("cdn.crt").exists());
    assert!(!s.out.join("elb.crt").exists());

    // Another account's certificate, pushed by its owner: these targets are not its own.
    let other = s.other_account("other").await;
    let other_project = other.credentials().project_id.clone().unwrap();
    let theirs = issued(&other, "www.theirs-cdn.test").await;
    for (service, region) in [("ELB", Some("cn-north-4")), ("CDN", Some("cn-north-4"))] {
        let resp = other
            .call(
                Operation::V2PushCertificate,
                &[&other_project, &theirs],
                &[],
                Some(&json(&v2_push(service, region))),
            )
            .await
            .unwrap();
        refused(&resp, 400, "SCM.0030");
    }
    assert!(!s.out.join("elb.crt").exists());
    let export = s.admin.export(&id).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(s.out.join("cdn.crt")).unwrap(),
        export.entire_certificate,
        "still the admin's certificate"
    );
    s.stop().await;
}
