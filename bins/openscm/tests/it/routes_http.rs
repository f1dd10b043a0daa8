//! What the router answers around the operations: unknown routes (404 `APIGW.0101`), wrong
//! methods (405 `APIGW.0105`), bodies over 1 MiB (413 `APIGW.0201`), malformed JSON (400
//! `SCM.0005` naming `body`), and an `X-Request-Id` on every answer.

use std::collections::HashSet;

use scm_client::{RawRequest, RawResponse, RequestAuth};
use scm_proto::{Method, Operation};

use crate::harness::TestServer;
use crate::routes::{
    apply_body, buy_body, count, issued, listed, paid, refused, request_id, shown, v2_application,
    v2_buy_body, v2_push, v3_push,
};

const CERT: &str = "scs1700000000000";

/// The path of `op` with its parameters filled in with `project` and `cert`.
fn path_of(op: Operation, project: &str, cert: &str) -> String {
    let params = [project, cert];
    let n = op.path().matches('{').count();
    match op.path().starts_with("/v2/") {
        true => op.path_with(&params[..n]),
        // A v3 path names the certificate first, then a version number.
        false => op.path_with(&[cert, "1"][..n]),
    }
}

#[tokio::test]
async fn routes_unknown_routes_are_404() {
    let s = TestServer::start().await;
    let p = &s.project_id;
    for (method, target) in [
        ("GET", "/".to_owned()),
        ("GET", "/v3/scm/no-such-thing".to_owned()),
        ("GET", format!("/v2/{p}/scm/no-such-thing")),
        ("GET", "/crl".to_owned()),
        ("GET", "/crl/0123abcd.pem".to_owned()),
        ("GET", "/crl/0123abcd.crl/extra".to_owned()),
        ("POST", format!("/v3/scm/certificates/{CERT}/revoke")),
        ("GET", format!("/v3/scm/certificates/{CERT}/export/extra")),
        ("GET", "/v4/scm/certificates".to_owned()),
        ("GET", "/health/extra".to_owned()),
        ("GET", format!("/v2/{p}/scm/cert")),
    ] {
        for auth in [RequestAuth::None, RequestAuth::Signature] {
            let req = RawRequest::new(method, target.as_str())
                .header("Content-Type", "application/json")
                .auth(auth.clone());
            let resp = s.admin.send(req).await.unwrap();
            refused(&resp, 404, "APIGW.0101");
        }
    }
    s.stop().await;
}

/// Every route of the table with a method it does not have: 405, before any authentication,
/// and nothing happens.
#[tokio::test]
async fn routes_a_wrong_method_is_405() {
    let s = TestServer::start().await;
    let id = paid(&s.admin).await;
    let before = listed(&s.admin).await;
    for &op in Operation::ALL {
        let target = path_of(op, &s.project_id, &id);
        let other = match op.method() {
            Method::Get => "POST",
            _ => "GET",
        };
        // A path served with several methods (the tags of a certificate: GET and POST) is
        // tried only with those it does not have.
        let served: Vec<&str> = Operation::ALL
            .iter()
            .filter(|o| o.path() == op.path())
            .map(|o| o.method().as_str())
            .collect();
        for method in [other, "PUT", "DELETE", "PATCH"] {
            if served.contains(&method) {
                continue;
            }
            for auth in [RequestAuth::None, RequestAuth::Signature] {
                let req = RawRequest::new(method, target.as_str())
                    .header("Content-Type", "application/json")
                    .body(serde_json::to_vec(&buy_body()).unwrap())
                    .auth(auth);
                let resp = s.admin.send(req).await.unwrap();
                assert_eq!(resp.status, 405, "{method} {target}: {}", resp.text());
                refused(&resp, 405, "APIGW.0105");
            }
        }
    }
    assert_eq!(listed(&s.admin).await, before, "a 405 changed nothing");
    s.stop().await;
}

/// A JSON body of exactly `len` bytes: `buy_body()` padded with spaces.
fn padded_buy(len: usize) -> Vec<u8> {
    let mut body = serde_json::to_vec(&buy_body()).unwrap();
    body.resize(len, b' ');
    body
}

#[tokio::test]
async fn routes_a_body_over_1_mib_is_413() {
    let s = TestServer::start().await;
    let id = paid(&s.admin).await;
    let before = shown(&s.admin, &id).await;
    let big = padded_buy(scm_api::MAX_BODY + 1);
    for (op, params) in [
        (Operation::SubscribeCertificate, vec![]),
        (
            Operation::V2PurchaseCertificate,
            vec![s.project_id.as_str()],
        ),
        (Operation::ApplyCertificate, vec![id.as_str()]),
        (
            Operation::V2SaveApplication,
            vec![s.project_id.as_str(), id.as_str()],
        ),
    ] {
        // Authenticated: too large. Unauthenticated: refused from its head, the body unread.
        for (auth, status, code) in [
            (RequestAuth::Signature, 413, "APIGW.0201"),
            (RequestAuth::None, 401, "APIGW.0301"),
        ] {
            let req = s.admin.request(op, &params, &[], Some(&big)).auth(auth);
            let resp = s.admin.send(req).await.unwrap();
            refused(&resp, status, code);
        }
    }
    assert_eq!(count(&s.admin).await, 1, "nothing bought");
    assert_eq!(shown(&s.admin, &id).await, before);
    // Exactly 1 MiB is within the limit.
    let resp = s
        .admin
        .call(
            Operation::SubscribeCertificate,
            &[],
            &[],
            Some(&padded_buy(scm_api::MAX_BODY)),
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(count(&s.admin).await, 2);
    s.stop().await;
}

/// A body that is not JSON is 400 `SCM.0005` naming `body` on every route that takes one, and
/// nothing changes.
#[tokio::test]
async fn routes_malformed_json_is_400_naming_body() {
    let s = TestServer::with_web_target().await;
    let pending = paid(&s.admin).await;
    let done = issued(&s.admin, "www.json.test").await;
    let before = listed(&s.admin).await;
    let p = s.project_id.as_str();
    for body in [
        &b"{\"cert_brand\": \"GLOBALSIGN\", \"order_number\": 1,"[..],
        b"{'single': 'quotes'}",
        b"\xff\xfe not utf-8",
        b"\"a string\"",
        b"null",
        b"{",
    ] {
        for (op, params) in [
            (Operation::SubscribeCertificate, vec![]),
            (Operation::V2PurchaseCertificate, vec![p]),
            (Operation::ApplyCertificate, vec![pending.as_str()]),
            (Operation::V2SaveApplication, vec![p, pending.as_str()]),
            (Operation::V2CompleteApplication, vec![p, pending.as_str()]),
            (Operation::PushCertificate, vec![done.as_str()]),
            (Operation::V2PushCertificate, vec![p, done.as_str()]),
        ] {
            let resp = s.admin.call(op, &params, &[], Some(body)).await.unwrap();
            crate::routes::invalid(&resp, "body");
        }
    }
    assert_eq!(listed(&s.admin).await, before, "a refusal changed nothing");
    assert!(
        s.admin
            .v2_push_history(p, &done)
            .await
            .unwrap()
            .push_history_list
            .is_empty()
    );
    s.stop().await;
}

/// Every answer, whatever its status, carries its own 32-hex `X-Request-Id`.
#[tokio::test]
async fn routes_every_response_carries_a_request_id() {
    let s = TestServer::with_web_target().await;
    let p = s.project_id.clone();
    let id = issued(&s.admin, "www.ids.test").await;
    let unissued = paid(&s.admin).await;
    let other = s.other_account("other").await;
    let mut answers: Vec<(u16, RawResponse)> = Vec::new();
    let mut add = |status: u16, resp: RawResponse| answers.push((status, resp));
    let a = &s.admin;
    add(
        200,
        a.send(RawRequest::new("GET", "/health").unauthenticated())
            .await
            .unwrap(),
    );
    add(
        201,
        a.call(Operation::CreateToken, &[], &[], None)
            .await
            .unwrap(),
    );
    add(
        200,
        a.call(Operation::KeystoneListAuthDomains, &[], &[], None)
            .await
            .unwrap(),
    );
    add(
        200,
        a.call(
            Operation::V2PurchaseCertificate,
            &[&p],
            &[],
            Some(&json(&v2_buy_body())),
        )
        .await
        .unwrap(),
    );
    add(
        200,
        a.call(
            Operation::V2SaveApplication,
            &[&p, &unissued],
            &[],
            Some(&json(&v2_application("ids.v2.test"))),
        )
        .await
        .unwrap(),
    );
    add(
        204,
        a.call(
            Operation::PushCertificate,
            &[&id],
            &[],
            Some(&json(&v3_push("ELB", Some("cn-north-4")))),
        )
        .await
        .unwrap(),
    );
    add(
        200,
        a.call(
            Operation::V2PushCertificate,
            &[&p, &id],
            &[],
            Some(&json(&v2_push("ELB", Some("cn-north-4")))),
        )
        .await
        .unwrap(),
    );
    add(
        200,
        a.call(Operation::V2ListPushHistory, &[&p, &id], &[], None)
            .await
            .unwrap(),
    );
    add(
        200,
        a.call(Operation::ListCertificates, &[], &[], None)
            .await
            .unwrap(),
    );
    add(
        200,
        a.call(Operation::ShowCertificate, &[&id], &[], None)
            .await
            .unwrap(),
    );
    add(
        200,
        a.call(Operation::ExportCertificate, &[&id], &[], None)
            .await
            .unwrap(),
    );
    add(
        200,
        a.call(
            Operation::V2CompleteApplication,
            &[&p, &unissued],
            &[],
            None,
        )
        .await
        .unwrap(),
    );
    let fresh = paid(a).await;
    add(
        200,
        a.call(
            Operation::ApplyCertificate,
            &[&fresh],
            &[],
            Some(&json(&apply_body("www.ids2.test"))),
        )
        .await
        .unwrap(),
    );
    // Refusals of every kind.
    add(
        400,
        a.call(Operation::ShowCertificate, &["bad"], &[], None)
            .await
            .unwrap(),
    );
    add(
        400,
        a.call(Operation::SubscribeCertificate, &[], &[], Some(b"{"))
            .await
            .unwrap(),
    );
    add(
        401,
        a.send(
            a.request(Operation::ListCertificates, &[], &[], None)
                .unauthenticated(),
        )
        .await
        .unwrap(),
    );
    // Another account's project in a v2 path (its certificates are 404, as unknown ones).
    let other_project = other.credentials().project_id.clone().unwrap();
    add(
        403,
        a.call(
            Operation::V2ListPushHistory,
            &[&other_project, &id],
            &[],
            None,
        )
        .await
        .unwrap(),
    );
    add(
        404,
        other
            .call(Operation::ShowCertificate, &[&id], &[], None)
            .await
            .unwrap(),
    );
    add(
        404,
        a.call(Operation::ShowCertificate, &["scs0000000000001"], &[], None)
            .await
            .unwrap(),
    );
    add(
        404,
        a.send(RawRequest::new("GET", "/nowhere")).await.unwrap(),
    );
    add(
        405,
        a.send(RawRequest::new("DELETE", "/v3/scm/certificates"))
            .await
            .unwrap(),
    );
    add(
        413,
        a.call(
            Operation::SubscribeCertificate,
            &[],
            &[],
            Some(&padded_buy(scm_api::MAX_BODY + 1)),
        )
        .await
        .unwrap(),
    );
    let mut seen = HashSet::new();
    for (status, resp) in &answers {
        assert_eq!(resp.status, *status, "{}", resp.text());
        assert!(seen.insert(request_id(resp)), "request ids repeat");
    }
    // Every operation of the table is among them (health, the two IAM routes, the five v2
    // routes, the six v3 routes), and every status the server answers with.
    let statuses: HashSet<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        statuses,
        HashSet::from([200, 201, 204, 400, 401, 403, 404, 405, 413])
    );
    s.stop().await;
}

fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// Something after the JSON value makes a body that is not JSON: refused like any malformed
/// body, and nothing bought.
#[tokio::test]
async fn routes_json_with_trailing_characters_is_400_naming_body() {
    let s = TestServer::start().await;
    for tail in [&b" trailing garbage"[..], b"}", b"{\"order_number\": 50}"] {
        let mut body = json(&buy_body());
        body.extend_from_slice(tail);
        let resp = s
            .admin
            .call(Operation::SubscribeCertificate, &[], &[], Some(&body))
            .await
            .unwrap();
        crate::routes::invalid(&resp, "body");
    }
    assert_eq!(
        count(&s.admin).await,
        0,
        "a malformed body bought certificates"
    );
    s.stop().await;
}

/// The bodies are JSON objects: an array is not one, even one whose items line up with the
/// fields.
#[tokio::test]
async fn routes_a_json_array_body_is_400_naming_body() {
    let s = TestServer::start().await;
    let positional = br#"["GLOBALSIGN", "DV_SSL_CERT", "SINGLE_DOMAIN", 1, 1, 1, true,
        null, null, null, null, null, null, null]"#;
    let resp = s
        .admin
        .call(Operation::SubscribeCertificate, &[], &[], Some(positional))
        .await
        .unwrap();
    crate::routes::invalid(&resp, "body");
    assert_eq!(
        count(&s.admin).await,
        0,
        "an array body bought a certificate"
    );
    s.stop().await;
}
