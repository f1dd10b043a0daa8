//! Health, the IAM routes (tokens, auth domains) and every way a signed route refuses its
//! caller: no or bad authentication, a request changed after signing, a stale `X-Sdk-Date`, a
//! revoked credential, and `X-Domain-Id` / `X-Project-Id` of another account.

use std::sync::Arc;

use scm_client::{Credentials, RawRequest, RequestAuth, SUBJECT_TOKEN_HEADER, Tamper};
use scm_core::{Clock, FixedClock};
use scm_proto::v3::TokenResponse;
use scm_proto::{AccessKeyId, DomainId, Operation};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::harness::TestServer;
use crate::routes::{buy_body, count, paid, refused, request_id};

const AUTH: &str = "APIGW.0301";

/// A client of a second credential of the admin account, and its access key.
async fn second_credential(s: &TestServer) -> (scm_client::Client, AccessKeyId) {
    let account = DomainId::try_from(s.domain_id.as_str()).unwrap();
    let cred = s
        .scm
        .create_credential(&account, None, "second")
        .await
        .unwrap();
    let client = s.admin.with_credentials(
        Credentials::new(
            cred.access_key.as_str(),
            cred.secret_key.expose().to_owned(),
        )
        .with_domain_id(cred.domain_id.as_str())
        .with_project_id(cred.project_id.as_str()),
    );
    (client, cred.access_key)
}

fn buy_json() -> Vec<u8> {
    serde_json::to_vec(&buy_body()).unwrap()
}

#[tokio::test]
async fn routes_health_answers_without_authentication() {
    let s = TestServer::start().await;
    let resp = s
        .admin
        .send(RawRequest::new("GET", "/health").unauthenticated())
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.json::<Value>().unwrap(),
        serde_json::json!({"status": "ok"})
    );
    request_id(&resp);
    // A signature is not needed, and not in the way either.
    let signed = s
        .admin
        .send(RawRequest::new("GET", "/health").auth(RequestAuth::Signature))
        .await
        .unwrap();
    assert_eq!(signed.status, 200);
    assert_eq!(s.admin.health().await.unwrap().status, "ok");
    s.stop().await;
}

#[tokio::test]
async fn routes_create_token_answers_201_and_the_token_authenticates() {
    let s = TestServer::start().await;
    let id = paid(&s.admin).await;
    let before = OffsetDateTime::now_utc() - Duration::seconds(2);
    let resp = s
        .admin
        .call(Operation::CreateToken, &[], &[], None)
        .await
        .unwrap();
    assert_eq!(resp.status, 201, "{}", resp.text());
    request_id(&resp);
    let token = resp.header(SUBJECT_TOKEN_HEADER).unwrap().to_owned();
    assert!(token.len() >= 32, "a token of {} characters", token.len());
    let body: TokenResponse = resp.json().unwrap();
    assert_eq!(body.token.methods, ["hw_ak_sk"]);
    assert_eq!(body.token.domain.id, s.domain_id);
    assert_eq!(body.token.project.id, s.project_id);
    let issued = OffsetDateTime::parse(&body.token.issued_at, &Rfc3339).unwrap();
    let expires = OffsetDateTime::parse(&body.token.expires_at, &Rfc3339).unwrap();
    assert!(issued >= before && issued <= OffsetDateTime::now_utc() + Duration::seconds(2));
    assert_eq!(expires - issued, Duration::hours(24));
    assert!(
        !resp.text().contains(&token),
        "the token is only in the header"
    );

    // The token authenticates v3 and v2 calls in place of a signature.
    let with_token = s.admin.with_token(&token);
    let listed = with_token
        .list_certificates(&scm_client::ListQuery::default())
        .await
        .unwrap();
    assert_eq!(listed.total_count, 1);
    assert_eq!(listed.certificates[0].id, id);
    assert_eq!(with_token.show(&id).await.unwrap().status, "PAID");
    let history = with_token
        .v2_push_history(&s.project_id, &id)
        .await
        .unwrap();
    assert!(history.push_history_list.is_empty());

    // An IAM-style JSON body is accepted as well (the signature is the proof).
    let with_body = s
        .admin
        .call(
            Operation::CreateToken,
            &[],
            &[],
            Some(br#"{"auth": {"identity": {"methods": ["hw_ak_sk"]}}}"#),
        )
        .await
        .unwrap();
    assert_eq!(with_body.status, 201, "{}", with_body.text());
    let second = with_body.header(SUBJECT_TOKEN_HEADER).unwrap();
    assert_ne!(second, token, "every token is new");

    // A token cannot create a token.
    let resp = with_token
        .call(Operation::CreateToken, &[], &[], None)
        .await
        .unwrap();
    refused(&resp, 401, AUTH);
    assert!(resp.header(SUBJECT_TOKEN_HEADER).is_none());

    // Garbage, a changed token, a short one: 401.
    let mid = token.len() / 2;
    let flipped = if &token[mid..=mid] == "A" { "B" } else { "A" };
    let tampered = format!("{}{flipped}{}", &token[..mid], &token[mid + 1..]);
    for bad in ["garbage".repeat(8), tampered, "short".into(), String::new()] {
        let resp = s
            .admin
            .send(
                s.admin
                    .request(Operation::ListCertificates, &[], &[], None)
                    .auth(RequestAuth::Token(bad.clone())),
            )
            .await
            .unwrap();
        refused(&resp, 401, AUTH);
    }

    // The token is still bound to its account: another account's X-Domain-Id is refused.
    let other = s.other_account("other").await;
    let other_domain = other.credentials().domain_id.clone().unwrap();
    let req = with_token
        .request(Operation::ListCertificates, &[], &[], None)
        .without_header("X-Domain-Id")
        .header("X-Domain-Id", other_domain.as_str());
    refused(&with_token.send(req).await.unwrap(), 403, "SCM.0003");
    s.stop().await;
}

#[tokio::test]
async fn routes_an_expired_token_is_refused() {
    let clock = Arc::new(FixedClock::new(OffsetDateTime::now_utc()));
    let s = TestServer::start_custom(clock.clone(), |_, _, _| {}).await;
    let signing = clock.clone();
    let admin = s.admin.with_clock(move || signing.now());
    let token = admin.create_token().await.unwrap();
    let with_token = admin.with_token(&token.token);
    let list = || async {
        with_token
            .call(Operation::ListCertificates, &[], &[], None)
            .await
            .unwrap()
    };
    assert_eq!(list().await.status, 200);
    clock.advance(Duration::hours(24) - Duration::seconds(1));
    assert_eq!(list().await.status, 200, "valid for 24 hours");
    clock.advance(Duration::seconds(1));
    refused(&list().await, 401, AUTH);
    // The signature of the same credential still works (signed with the moved clock).
    assert_eq!(
        admin
            .call(Operation::ListCertificates, &[], &[], None)
            .await
            .unwrap()
            .status,
        200
    );
    s.stop().await;
}

#[tokio::test]
async fn routes_auth_domains_name_the_callers_domain_only() {
    let s = TestServer::start().await;
    let other = s.other_account("other").await;
    let other_domain = other.credentials().domain_id.clone().unwrap();
    let mine = s.admin.list_auth_domains().await.unwrap();
    assert_eq!(mine.domains.len(), 1);
    assert_eq!(mine.domains[0].id, s.domain_id);
    let theirs = other.list_auth_domains().await.unwrap();
    assert_eq!(theirs.domains.len(), 1);
    assert_eq!(theirs.domains[0].id, other_domain);
    assert_ne!(other_domain, s.domain_id);

    // What the SDK does without a domain id: ask, then sign v3 calls with it.
    let mut creds = s.admin.credentials().clone();
    creds.domain_id = None;
    let bare = s.admin.with_credentials(creds);
    let found = bare.discover_domain_id().await.unwrap();
    assert_eq!(
        found.credentials().domain_id.as_deref(),
        Some(s.domain_id.as_str())
    );
    assert_eq!(count(&found).await, 0);

    // With a token too; unauthenticated, refused.
    let token = s.admin.create_token().await.unwrap();
    let by_token = s.admin.with_token(&token.token);
    assert_eq!(
        by_token.list_auth_domains().await.unwrap().domains[0].id,
        s.domain_id
    );
    let resp = s
        .admin
        .send(
            s.admin
                .request(Operation::KeystoneListAuthDomains, &[], &[], None)
                .auth(RequestAuth::None),
        )
        .await
        .unwrap();
    refused(&resp, 401, AUTH);
    s.stop().await;
}

/// No authentication, an unknown or malformed access key, a wrong secret, a body or a signed
/// header changed after signing, duplicated auth headers, an unhashed body: all 401, and
/// nothing is bought.
#[tokio::test]
async fn routes_signed_routes_refuse_bad_authentication() {
    let s = TestServer::start().await;
    let buy = || {
        s.admin
            .request(Operation::SubscribeCertificate, &[], &[], Some(&buy_json()))
    };
    let list = || s.admin.request(Operation::ListCertificates, &[], &[], None);
    let admin_creds = s.admin.credentials().clone();
    let with_key = |ak: &str, sk: &str| {
        s.admin.with_credentials(
            Credentials::new(ak, sk).with_domain_id(admin_creds.domain_id.clone().unwrap()),
        )
    };
    let unknown_ak = with_key("AKUNKNOWNUNKNOWN0001", admin_creds.secret_key.expose());
    let malformed_ak = with_key("not an access key", admin_creds.secret_key.expose());
    let wrong_sk = with_key(
        &admin_creds.access_key,
        "SKwrongSKwrongSKwrongSKwrongSKwrong0000",
    );

    let cases: Vec<(&str, &scm_client::Client, RawRequest)> = vec![
        ("no authentication", &s.admin, buy().unauthenticated()),
        (
            "no authentication (GET)",
            &s.admin,
            list().unauthenticated(),
        ),
        (
            "not SDK-HMAC-SHA256",
            &s.admin,
            buy()
                .unauthenticated()
                .header("Authorization", "Basic dXNlcjpwYXNz"),
        ),
        (
            "malformed Authorization",
            &s.admin,
            buy()
                .unauthenticated()
                .header("X-Sdk-Date", "20240102T030405Z")
                .header("Authorization", "SDK-HMAC-SHA256 nonsense"),
        ),
        ("unknown access key", &unknown_ak, buy()),
        ("malformed access key", &malformed_ak, buy()),
        ("wrong secret key", &wrong_sk, buy()),
        (
            "body changed after signing",
            &s.admin,
            buy().tamper(Tamper::Body(
                serde_json::to_vec(&scm_proto::v3::PurchaseBody {
                    order_number: Some(5),
                    ..buy_body()
                })
                .unwrap(),
            )),
        ),
        (
            "body added after signing",
            &s.admin,
            s.admin
                .request(Operation::SubscribeCertificate, &[], &[], None)
                .tamper(Tamper::Body(buy_json())),
        ),
        (
            "signed Content-Type changed",
            &s.admin,
            buy().tamper(Tamper::SetHeader(
                "Content-Type".into(),
                "application/json;charset=utf-8".into(),
            )),
        ),
        (
            "signed Host changed",
            &s.admin,
            list().tamper(Tamper::SetHeader("Host".into(), "scm.example.test".into())),
        ),
        (
            "signed X-Domain-Id removed",
            &s.admin,
            buy().tamper(Tamper::RemoveHeader("X-Domain-Id".into())),
        ),
        (
            "path changed after signing",
            &s.admin,
            list().tamper(Tamper::Target("/v3/scm/certificates?limit=20".into())),
        ),
        (
            "X-Sdk-Date changed after signing",
            &s.admin,
            buy().tamper(Tamper::SetHeader(
                "X-Sdk-Date".into(),
                (OffsetDateTime::now_utc() - Duration::minutes(1))
                    .format(time::macros::format_description!(
                        "[year][month][day]T[hour][minute][second]Z"
                    ))
                    .unwrap(),
            )),
        ),
        (
            "duplicate X-Sdk-Date",
            &s.admin,
            buy().tamper(Tamper::AddHeader(
                "X-Sdk-Date".into(),
                "20240102T030405Z".into(),
            )),
        ),
        (
            "duplicate Authorization",
            &s.admin,
            buy().tamper(Tamper::AddHeader(
                "Authorization".into(),
                "SDK-HMAC-SHA256 Access=AKUNKNOWNUNKNOWN0001, SignedHeaders=host, Signature=00"
                    .into(),
            )),
        ),
        (
            "no X-Sdk-Date",
            &s.admin,
            buy().tamper(Tamper::RemoveHeader("X-Sdk-Date".into())),
        ),
        (
            "UNSIGNED-PAYLOAD with a body",
            &s.admin,
            s.admin
                .request(Operation::SubscribeCertificate, &[], &[], Some(&buy_json()))
                .without_header("Content-Type")
                .header("Content-Type", "text/plain"),
        ),
    ];
    // The UNSIGNED-PAYLOAD case really is one: the signer added the header.
    let unsigned = s.admin.prepare(&cases.last().unwrap().2);
    assert_eq!(
        unsigned.header("x-sdk-content-sha256"),
        Some("UNSIGNED-PAYLOAD")
    );
    for (what, client, req) in cases {
        let resp = client.send(req).await.unwrap();
        let msg = refused(&resp, 401, AUTH);
        assert!(
            !msg.contains(admin_creds.secret_key.expose()),
            "{what}: the secret is never echoed"
        );
    }
    assert_eq!(
        count(&s.admin).await,
        0,
        "no refused request bought anything"
    );

    // Controls: the same requests untouched pass, and an unsigned header may be added freely.
    let resp = s
        .admin
        .send(buy().tamper(Tamper::AddHeader("X-Extra".into(), "1".into())))
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(s.admin.send(list()).await.unwrap().status, 200);
    assert_eq!(count(&s.admin).await, 1);
    s.stop().await;
}

/// `X-Sdk-Date` more than 15 minutes away (either way) is refused; within the window it passes.
#[tokio::test]
async fn routes_sdk_date_must_be_within_15_minutes() {
    let s = TestServer::start().await;
    let now = OffsetDateTime::now_utc();
    let unknown = "scs0000000000001";
    for minutes in [-20, 20, -16, 16] {
        let at = now + Duration::minutes(minutes);
        let list = s
            .admin
            .request(Operation::ListCertificates, &[], &[], None)
            .signed_at(at);
        refused(&s.admin.send(list).await.unwrap(), 401, AUTH);
        let history = s
            .admin
            .request(
                Operation::V2ListPushHistory,
                &[&s.project_id, unknown],
                &[],
                None,
            )
            .signed_at(at);
        refused(&s.admin.send(history).await.unwrap(), 401, AUTH);
        // The same through a client clock.
        let skewed = s.admin.with_clock(move || at);
        let err = skewed.subscribe(&buy_body()).await.unwrap_err();
        assert_eq!(
            crate::routes::code(err),
            (401, AUTH.into()),
            "{minutes} min"
        );
    }
    for minutes in [-10, 10, -14, 14] {
        let at = now + Duration::minutes(minutes);
        let list = s
            .admin
            .request(Operation::ListCertificates, &[], &[], None)
            .signed_at(at);
        assert_eq!(s.admin.send(list).await.unwrap().status, 200, "{minutes}");
        // Authenticated: the answer is about the certificate.
        let history = s
            .admin
            .request(
                Operation::V2ListPushHistory,
                &[&s.project_id, unknown],
                &[],
                None,
            )
            .signed_at(at);
        refused(&s.admin.send(history).await.unwrap(), 404, "SCM.0020");
    }
    assert_eq!(count(&s.admin).await, 0);
    s.stop().await;
}

#[tokio::test]
async fn routes_a_revoked_credential_stops_signatures_and_tokens() {
    let s = TestServer::start().await;
    let (second, ak) = second_credential(&s).await;
    assert_eq!(count(&second).await, 0);
    let token = second.create_token().await.unwrap();
    let by_token = second.with_token(&token.token);
    assert_eq!(count(&by_token).await, 0);

    assert!(s.scm.revoke_credential(&ak).await.unwrap());
    let unknown = "scs0000000000001";
    for client in [&second, &by_token] {
        let resp = client
            .call(Operation::ListCertificates, &[], &[], None)
            .await
            .unwrap();
        refused(&resp, 401, AUTH);
        let resp = client
            .call(
                Operation::V2ListPushHistory,
                &[&s.project_id, unknown],
                &[],
                None,
            )
            .await
            .unwrap();
        refused(&resp, 401, AUTH);
        let resp = client
            .call(Operation::SubscribeCertificate, &[], &[], Some(&buy_json()))
            .await
            .unwrap();
        refused(&resp, 401, AUTH);
    }
    // A revoked credential cannot get a new token either.
    refused(
        &second
            .call(Operation::CreateToken, &[], &[], None)
            .await
            .unwrap(),
        401,
        AUTH,
    );
    assert!(
        !s.scm.revoke_credential(&ak).await.unwrap(),
        "already revoked"
    );
    // The bootstrap credential of the same account is unaffected, and nothing was bought.
    assert_eq!(count(&s.admin).await, 0);
    s.stop().await;
}

/// `X-Domain-Id` / `X-Project-Id`, when sent (and signed), must be the caller's: another
/// account's, a malformed or an unknown one is 403 `SCM.0003`, on v3 and v2 alike.
#[tokio::test]
async fn routes_domain_and_project_headers_must_be_the_callers() {
    let s = TestServer::start().await;
    let other = s.other_account("other").await;
    let other_domain = other.credentials().domain_id.clone().unwrap();
    let other_project = other.credentials().project_id.clone().unwrap();
    let mine = paid(&s.admin).await;
    let with = |op: Operation, params: &[&str], body: Option<&[u8]>, name: &str, value: &str| {
        s.admin
            .request(op, params, &[], body)
            .without_header(name)
            .header(name, value)
    };
    let buy = buy_json();
    let unknown_hex = "0123456789abcdef0123456789abcdef";
    for value in [other_domain.as_str(), "not-a-domain", unknown_hex] {
        for req in [
            with(Operation::ListCertificates, &[], None, "X-Domain-Id", value),
            with(
                Operation::ShowCertificate,
                &[&mine],
                None,
                "X-Domain-Id",
                value,
            ),
            with(
                Operation::SubscribeCertificate,
                &[],
                Some(&buy),
                "X-Domain-Id",
                value,
            ),
        ] {
            let msg = refused(&s.admin.send(req).await.unwrap(), 403, "SCM.0003");
            assert!(!msg.contains(&mine) && !msg.contains(&s.domain_id), "{msg}");
        }
    }
    for value in [other_project.as_str(), "not-a-project", unknown_hex] {
        for req in [
            with(
                Operation::V2PurchaseCertificate,
                &[&s.project_id],
                Some(&buy),
                "X-Project-Id",
                value,
            ),
            with(
                Operation::V2ListPushHistory,
                &[&s.project_id, &mine],
                None,
                "X-Project-Id",
                value,
            ),
            // v3 routes check an X-Project-Id too, when one is sent.
            with(
                Operation::ListCertificates,
                &[],
                None,
                "X-Project-Id",
                value,
            ),
        ] {
            refused(&s.admin.send(req).await.unwrap(), 403, "SCM.0003");
        }
    }
    // Both headers naming the caller pass.
    let ok = s
        .admin
        .request(Operation::ListCertificates, &[], &[], None)
        .header("X-Project-Id", s.project_id.as_str());
    assert_eq!(s.admin.send(ok).await.unwrap().status, 200);
    assert_eq!(
        count(&s.admin).await,
        1,
        "nothing bought by a refused request"
    );
    assert_eq!(count(&other).await, 0);
    s.stop().await;
}

/// A forged request (the right access key, a wrong secret) gets the same 401 whatever scope it
/// names: its own project or another account's, in `X-Project-Id`, `X-Domain-Id` or a v2 path.
/// The signature is verified before any scope is looked at, so a refusal tells nothing about
/// which projects and accounts exist or belong together.
#[tokio::test]
async fn routes_a_forged_request_gets_the_same_401_whatever_scope_it_names() {
    let s = TestServer::start().await;
    let other = s.other_account("other").await;
    let other_domain = other.credentials().domain_id.clone().unwrap();
    let other_project = other.credentials().project_id.clone().unwrap();
    let admin_creds = s.admin.credentials().clone();
    let forged = s.admin.with_credentials(
        Credentials::new(
            &admin_creds.access_key,
            "SKwrongSKwrongSKwrongSKwrongSKwrong0000",
        )
        .with_domain_id(admin_creds.domain_id.clone().unwrap()),
    );
    let list = |name: &str, value: &str| {
        forged
            .request(Operation::ListCertificates, &[], &[], None)
            .without_header(name)
            .header(name, value)
    };
    let v2 = |project: &str| {
        forged.request(
            Operation::V2PurchaseCertificate,
            &[project],
            &[],
            Some(&buy_json()),
        )
    };
    let cases = [
        ("own X-Project-Id", list("X-Project-Id", &s.project_id)),
        ("other's X-Project-Id", list("X-Project-Id", &other_project)),
        (
            "unknown X-Project-Id",
            list("X-Project-Id", "0123456789abcdef0123456789abcdef"),
        ),
        ("own X-Domain-Id", list("X-Domain-Id", &s.domain_id)),
        ("other's X-Domain-Id", list("X-Domain-Id", &other_domain)),
        ("own v2 project", v2(&s.project_id)),
        ("other's v2 project", v2(&other_project)),
    ];
    let mut answers = Vec::new();
    for (what, req) in cases {
        let resp = forged.send(req).await.unwrap();
        answers.push((what, resp.status, refused(&resp, 401, AUTH)));
    }
    let first = &answers.first().unwrap().2;
    for (what, _, body) in &answers {
        assert_eq!(body, first, "{what}: the refusal differs from the others'");
    }
    assert_eq!(count(&s.admin).await, 0, "nothing bought");
    s.stop().await;
}
