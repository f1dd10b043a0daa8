//! Every route over HTTP, against an in-process server: happy paths and refusals.

use scm_client::{Client, ClientError, RawResponse, RequestAuth};
use scm_proto::v3::{ApplicationBody, PurchaseBody, PushBody};
use scm_proto::{Operation, Scope};
use serde_json::Value;

use crate::harness::TestServer;

pub(crate) fn buy_body() -> PurchaseBody {
    PurchaseBody {
        cert_brand: Some("GLOBALSIGN".into()),
        cert_type: Some("DV_SSL_CERT".into()),
        domain_type: Some("SINGLE_DOMAIN".into()),
        effective_time: Some(1),
        domain_numbers: Some(1),
        order_number: Some(1),
        agree_privacy_protection: Some(true),
        ..PurchaseBody::default()
    }
}

pub(crate) fn apply_body(domain: &str) -> ApplicationBody {
    ApplicationBody {
        domain: Some(domain.into()),
        applicant_name: Some("Tom Smith".into()),
        applicant_phone: Some("13212345678".into()),
        applicant_email: Some("tom@example.com".into()),
        agree_privacy_protection: Some(true),
        domain_method: Some("DNS".into()),
        key_algorithm: Some("EC_P256".into()),
        ..ApplicationBody::default()
    }
}

pub(crate) fn code(e: ClientError) -> (u16, String) {
    (e.status().unwrap_or(0), e.code().unwrap_or("").to_owned())
}

/// The v2 application form: company, country and applicant fields as the v2 page lists them
/// (an EC key, to keep issuance fast).
pub(crate) fn v2_application(domain: &str) -> ApplicationBody {
    ApplicationBody {
        domain: Some(domain.into()),
        sans: Some(String::new()),
        company_name: Some("OpenSCM IT Org".into()),
        company_unit: Some("Test Dept".into()),
        company_province: Some("Sichuan".into()),
        company_city: Some("Chengdu".into()),
        country: Some("CN".into()),
        applicant_name: Some("Tom Smith".into()),
        applicant_phone: Some("13212345678".into()),
        applicant_email: Some("tom@example.com".into()),
        contact_name: Some("Test Contact".into()),
        contact_phone: Some("13512345678".into()),
        contact_email: Some("contact@example.com".into()),
        agree_privacy_protection: Some(true),
        key_algorithm: Some("EC_P256".into()),
        ..ApplicationBody::default()
    }
}

/// A v2 purchase: one OV single-domain certificate (v2 sells OV and EV only).
pub(crate) fn v2_buy_body() -> PurchaseBody {
    PurchaseBody {
        cert_type: Some("OV_SSL_CERT".into()),
        ..buy_body()
    }
}

/// A v3 push body.
pub(crate) fn v3_push(service: &str, region: Option<&str>) -> PushBody {
    PushBody {
        target_service: Some(service.into()),
        target_project: region.map(Into::into),
    }
}

/// A v2 push body.
pub(crate) fn v2_push(service: &str, region: Option<&str>) -> scm_proto::v2::PushBody {
    scm_proto::v2::PushBody {
        service_type: Some(service.into()),
        remote_project: region.map(Into::into),
    }
}

/// Whether `s` is 32 lower-case hex characters (a request, domain or project id).
pub(crate) fn is_hex32(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Asserts the answer carries a 32-hex `X-Request-Id`, and returns it.
#[track_caller]
pub(crate) fn request_id(resp: &RawResponse) -> String {
    let id = resp.header("x-request-id").unwrap_or_default().to_owned();
    assert!(is_hex32(&id), "X-Request-Id {id:?} is not 32 hex");
    assert_eq!(resp.request_id.as_deref(), Some(id.as_str()));
    id
}

/// Asserts an error answer: exactly this status and `error_code`, and a request id. Returns
/// the message.
#[track_caller]
pub(crate) fn refused(resp: &RawResponse, status: u16, code: &str) -> String {
    let error = resp.error();
    assert_eq!(
        (resp.status, error.as_ref().map(|e| e.error_code.as_str())),
        (status, Some(code)),
        "{}",
        resp.text()
    );
    request_id(resp);
    error.map(|e| e.error_msg).unwrap_or_default()
}

/// Asserts a 400 `SCM.0005` whose message names exactly `field` (the message is
/// `Incorrect request parameter: <field> <reason>.`).
#[track_caller]
pub(crate) fn invalid(resp: &RawResponse, field: &str) {
    let msg = refused(resp, 400, "SCM.0005");
    assert!(
        msg.starts_with(&format!("Incorrect request parameter: {field} ")),
        "the message names {field}: {msg}"
    );
}

/// Like [`invalid`], for a typed call's error.
#[track_caller]
pub(crate) fn invalid_err(e: &ClientError, field: &str) {
    match e {
        ClientError::Api {
            status: 400,
            code,
            message,
            ..
        } if code == "SCM.0005" => assert!(
            message.starts_with(&format!("Incorrect request parameter: {field} ")),
            "the message names {field}: {message}"
        ),
        other => panic!("expected 400 SCM.0005 naming {field}, got {other}"),
    }
}

/// Buys one DV single-domain certificate (v3); it is `PAID`.
pub(crate) async fn paid(client: &Client) -> String {
    client.subscribe(&buy_body()).await.unwrap().cert[0]
        .cert_id
        .clone()
}

/// Buys and applies (EC key, built-in CA) a single-domain certificate for `domain`.
pub(crate) async fn issued(client: &Client, domain: &str) -> String {
    let id = paid(client).await;
    client.apply(&id, &apply_body(domain)).await.unwrap();
    id
}

/// The whole `ShowCertificate` answer as JSON, to compare before and after a refusal.
pub(crate) async fn shown(client: &Client, id: &str) -> Value {
    let resp = client
        .call(Operation::ShowCertificate, &[id], &[], None)
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json().unwrap()
}

/// The first page of 50 certificates (oldest change first) as JSON, with its total.
pub(crate) async fn listed(client: &Client) -> Value {
    let resp = client
        .call(
            Operation::ListCertificates,
            &[],
            &[
                ("limit", "50"),
                ("sort_key", "certUpdateTime"),
                ("sort_dir", "ASC"),
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json().unwrap()
}

/// How many certificates the caller's account has.
pub(crate) async fn count(client: &Client) -> u64 {
    client
        .list_certificates(&scm_client::ListQuery::default())
        .await
        .unwrap()
        .total_count
}

/// A CSR (EC P-256) naming `names` (the first also as common name), and its key.
pub(crate) fn csr(names: &[&str]) -> (String, scm_pki::PrivateKey) {
    let key = scm_pki::PrivateKey::generate(scm_pki::KeyAlgorithm::EcP256).unwrap();
    let pair = rcgen::KeyPair::from_pem(&key.to_pem()).unwrap();
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, names[0]);
    let pem = params.serialize_request(&pair).unwrap().pem().unwrap();
    (pem, key)
}

/// No route of the operation table answers an unauthenticated request with anything but 401,
/// except the public ones: a route cannot be mounted without its guard.
#[tokio::test]
async fn every_route_is_guarded_by_its_scope() {
    let s = TestServer::start().await;
    let crl = s.crl_file().await;
    for &op in Operation::ALL {
        let params = match op {
            // The one public route with a parameter: the CRL of the server's CA.
            Operation::CertificateRevocationList => [crl.as_str(), ""],
            _ => ["0123456789abcdef0123456789abcdef", "scs1700000000000"],
        };
        let n = op.path().matches('{').count();
        let req = s
            .admin
            .request(op, params.get(..n).unwrap_or(&params), &[], Some(b"{}"))
            .auth(RequestAuth::None);
        let resp = s.admin.send(req).await.unwrap();
        match op.scope() {
            Scope::Public => assert_eq!(resp.status, 200, "{op}"),
            Scope::Account | Scope::Project => {
                assert_eq!(resp.status, 401, "{op}: {}", resp.text());
                assert_eq!(resp.error().unwrap().error_code, "APIGW.0301", "{op}");
            }
        }
        assert!(resp.request_id.is_some(), "{op} answers with a request id");
    }
    s.stop().await;
}

#[tokio::test]
async fn buy_apply_show_export_push_and_history() {
    let s = TestServer::with_web_target().await;
    let order = s.admin.subscribe(&buy_body()).await.unwrap();
    let id = order.cert[0].cert_id.clone();
    assert_eq!(s.admin.show(&id).await.unwrap().status, "PAID");
    s.admin
        .apply(&id, &apply_body("www.it.test"))
        .await
        .unwrap();
    let shown = s.admin.show(&id).await.unwrap();
    assert_eq!(shown.status, "ISSUED");
    let export = s.admin.export(&id).await.unwrap();
    assert!(export.private_key.unwrap().contains("PRIVATE KEY"));
    s.admin
        .push(
            &id,
            &PushBody {
                target_service: Some("ELB".into()),
                target_project: Some("cn-north-4".into()),
            },
        )
        .await
        .unwrap();
    assert!(
        std::fs::read_to_string(s.out.join("web.crt"))
            .unwrap()
            .contains("CERTIFICATE")
    );
    let history = s.admin.v2_push_history(&s.project_id, &id).await.unwrap();
    assert_eq!(history.push_history_list.len(), 1);
    let refused = s
        .admin
        .push(
            &id,
            &PushBody {
                target_service: Some("CDN".into()),
                target_project: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(code(refused), (400, "SCM.0030".into()));
    s.stop().await;
}
