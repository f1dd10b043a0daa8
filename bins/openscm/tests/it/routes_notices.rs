//! The notification routes: expiry reminders on and off per certificate, with the body a JSON
//! array, tenancy and the refusals (the sweep itself is tested in scm-core).

use scm_proto::Operation;
use serde_json::json;

use crate::harness::TestServer;
use crate::routes::{invalid, paid, refused};

#[tokio::test]
async fn routes_notification_enable_and_disable() {
    let s = TestServer::start().await;
    let a = paid(&s.admin).await;
    let call = |op, v: Option<serde_json::Value>| {
        let c = s.admin.clone();
        async move {
            let bytes = v.map(|v| serde_json::to_vec(&v).unwrap());
            c.call(op, &[], &[], bytes.as_deref()).await.unwrap()
        }
    };
    let resp = call(
        Operation::DisableNotification,
        Some(json!([{"resource_id": a, "notice_type": ["CERT_EXPIRING"]}])),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.text(), "{}");
    let id = scm_proto::CertificateId::try_from(a.as_str()).unwrap();
    let admin = s.scm.clone();
    let principal = s.principal();
    assert_eq!(
        admin.disabled_notices(&principal, &id).await.unwrap(),
        vec!["CERT_EXPIRING".to_string()]
    );
    let resp = call(
        Operation::EnableNotification,
        Some(json!([{"resource_id": a}])),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(
        admin
            .disabled_notices(&principal, &id)
            .await
            .unwrap()
            .is_empty()
    );

    for (v, field) in [
        (None, "body"),
        (Some(json!([])), "body"),
        (Some(json!({"resource_id": a})), "body"),
        (Some(json!([{}])), "[0].resource_id"),
        (
            Some(json!([{"resource_id": a, "notice_type": []}])),
            "[0].notice_type",
        ),
        (
            Some(json!([{"resource_id": a, "notice_type": ["SOON"]}])),
            "[0].notice_type[0]",
        ),
        (
            Some(json!([{"resource_id": a, "notice_type": "CERT_EXPIRED"}])),
            "[0].notice_type",
        ),
    ] {
        invalid(
            &call(Operation::DisableNotification, v.clone()).await,
            field,
        );
        invalid(&call(Operation::EnableNotification, v).await, field);
    }
    refused(
        &call(
            Operation::DisableNotification,
            Some(json!([{"resource_id": "nope"}])),
        )
        .await,
        400,
        "SCM.0008",
    );
    // Unknown, or another account's: 404, and nothing of the call is applied.
    let other = s.other_account("other").await;
    let theirs = paid(&other).await;
    for id in ["scs0000000000001", theirs.as_str()] {
        let resp = call(
            Operation::DisableNotification,
            Some(json!([{"resource_id": a}, {"resource_id": id}])),
        )
        .await;
        refused(&resp, 404, "SCM.0020");
    }
    assert!(
        admin
            .disabled_notices(&principal, &id)
            .await
            .unwrap()
            .is_empty()
    );
    s.stop().await;
}
