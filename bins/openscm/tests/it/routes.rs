//! Every route over HTTP, against an in-process server: happy paths and refusals.

use scm_client::{ClientError, RequestAuth};
use scm_proto::v3::{ApplicationBody, PurchaseBody, PushBody};
use scm_proto::{Operation, Scope};

use crate::harness::{TestServer, file_target};

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

fn code(e: ClientError) -> (u16, String) {
    (e.status().unwrap_or(0), e.code().unwrap_or("").to_owned())
}

/// No route of the operation table answers an unauthenticated request with anything but 401,
/// except the public ones: a route cannot be mounted without its guard.
#[tokio::test]
async fn every_route_is_guarded_by_its_scope() {
    let s = TestServer::start().await;
    for &op in Operation::ALL {
        let params = ["0123456789abcdef0123456789abcdef", "scs1700000000000"];
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
    let s = TestServer::start_with(|account, out| {
        vec![file_target(
            "web",
            account,
            "ELB",
            "cn-north-4",
            out,
            &["true"],
        )]
    })
    .await;
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
