//! The lifecycle routes: delete, unsubscribe and cancel-cert, with the statuses they allow,
//! tenancy, malformed ids, and what is left afterwards (nothing, and the quota given back).

use std::sync::Arc;

use scm_client::Client;
use scm_core::SystemClock;
use scm_proto::Operation;

use crate::harness::TestServer;
use crate::routes::{buy_body, count, issued, paid, refused, request_id, shown, v3_push};

async fn call(c: &Client, op: Operation, id: &str) -> scm_client::RawResponse {
    c.call(op, &[id], &[], None).await.unwrap()
}

/// The certificate answers as one that never was.
async fn gone(c: &Client, id: &str) {
    refused(
        &call(c, Operation::ShowCertificate, id).await,
        404,
        "SCM.0020",
    );
}

/// Malformed, unknown and another account's ids answer as the reference says for each, and
/// another account's certificate is left as it was.
async fn refuses_foreign_ids(s: &TestServer, op: Operation) {
    refused(&call(&s.admin, op, "scs123").await, 400, "SCM.0008");
    refused(
        &call(&s.admin, op, "xyz1234567890123").await,
        400,
        "SCM.0008",
    );
    refused(
        &call(&s.admin, op, "scs1000000000000").await,
        404,
        "SCM.0020",
    );
    let other = s.other_account(&format!("other-{}", op.name())).await;
    let theirs = issued(&other, "www.theirs.test").await;
    let before = shown(&other, &theirs).await;
    refused(&call(&s.admin, op, &theirs).await, 404, "SCM.0020");
    assert_eq!(shown(&other, &theirs).await, before);
}

#[tokio::test]
async fn routes_delete_removes_an_issued_certificate_and_refuses_other_statuses() {
    let s = TestServer::with_web_target().await;
    let id = issued(&s.admin, "www.delete.test").await;
    // A push record refers to it: it goes with the certificate.
    s.admin
        .push(&id, &v3_push("ELB", Some("cn-north-4")))
        .await
        .unwrap();
    let held = count(&s.admin).await;
    let resp = call(&s.admin, Operation::DeleteCertificate, &id).await;
    assert_eq!(resp.status, 204, "{}", resp.text());
    assert!(resp.body.is_empty());
    request_id(&resp);
    gone(&s.admin, &id).await;
    assert_eq!(count(&s.admin).await, held - 1);
    // Twice: it is unknown now.
    refused(
        &call(&s.admin, Operation::DeleteCertificate, &id).await,
        404,
        "SCM.0020",
    );
    refused(
        &call(&s.admin, Operation::ExportCertificate, &id).await,
        404,
        "SCM.0020",
    );

    // PAID: bought, not yet applied for; that one is unsubscribed, not deleted.
    let p = paid(&s.admin).await;
    let before = shown(&s.admin, &p).await;
    let msg = refused(
        &call(&s.admin, Operation::DeleteCertificate, &p).await,
        400,
        "SCM.0010",
    );
    assert!(msg.contains("PAID"), "{msg}");
    assert_eq!(shown(&s.admin, &p).await, before);

    refuses_foreign_ids(&s, Operation::DeleteCertificate).await;
}

#[tokio::test]
async fn routes_delete_and_unsubscribe_give_the_quota_back() {
    let s = TestServer::start_custom(Arc::new(SystemClock), |_, _, config| {
        config.quotas.certificates_per_account = 2;
    })
    .await;
    let a = issued(&s.admin, "www.quota.test").await;
    let b = paid(&s.admin).await;
    let full = s.admin.subscribe(&buy_body()).await.unwrap_err();
    assert!(full.to_string().contains("SCM.0011"), "{full}");
    assert_eq!(
        call(&s.admin, Operation::DeleteCertificate, &a)
            .await
            .status,
        204
    );
    let c = paid(&s.admin).await;
    assert!(s.admin.subscribe(&buy_body()).await.is_err());
    assert_eq!(
        call(&s.admin, Operation::UnsubscribeCertificate, &b)
            .await
            .status,
        200
    );
    paid(&s.admin).await;
    assert_eq!(count(&s.admin).await, 2);
    gone(&s.admin, &a).await;
    gone(&s.admin, &b).await;
    shown(&s.admin, &c).await;
}

#[tokio::test]
async fn routes_unsubscribe_removes_purchased_certificates() {
    let s = TestServer::start().await;
    for id in [
        paid(&s.admin).await,
        issued(&s.admin, "www.unsub.test").await,
    ] {
        let resp = call(&s.admin, Operation::UnsubscribeCertificate, &id).await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        request_id(&resp);
        let body: serde_json::Value = resp.json().unwrap();
        assert_eq!(body, serde_json::json!({"unsubscribe_results": "SUCCESS"}));
        gone(&s.admin, &id).await;
        refused(
            &call(&s.admin, Operation::UnsubscribeCertificate, &id).await,
            404,
            "SCM.0020",
        );
    }
    assert_eq!(count(&s.admin).await, 0);
    refuses_foreign_ids(&s, Operation::UnsubscribeCertificate).await;
}

/// Nothing OpenSCM issues stays under review (the built-in CA decides at once), so every
/// certificate the API can make refuses cancel-cert; the withdrawal itself is tested on the
/// store and domain.
#[tokio::test]
async fn routes_cancel_cert_refuses_certificates_not_under_review() {
    let s = TestServer::start().await;
    for id in [
        paid(&s.admin).await,
        issued(&s.admin, "www.cancel.test").await,
    ] {
        let before = shown(&s.admin, &id).await;
        refused(
            &call(&s.admin, Operation::CancelCertificateRequest, &id).await,
            400,
            "SCM.0010",
        );
        assert_eq!(shown(&s.admin, &id).await, before);
    }
    refuses_foreign_ids(&s, Operation::CancelCertificateRequest).await;
}

/// The typed client methods of scm-client speak the same routes.
#[tokio::test]
async fn routes_lifecycle_through_the_typed_client() {
    let s = TestServer::start().await;
    let a = issued(&s.admin, "www.typed.test").await;
    s.admin.delete_certificate(&a).await.unwrap();
    gone(&s.admin, &a).await;
    let b = paid(&s.admin).await;
    let e = s.admin.cancel_certificate_request(&b).await.unwrap_err();
    assert!(e.to_string().contains("SCM.0010"), "{e}");
    assert_eq!(
        s.admin.unsubscribe(&b).await.unwrap().unsubscribe_results,
        "SUCCESS"
    );
    gone(&s.admin, &b).await;
}
