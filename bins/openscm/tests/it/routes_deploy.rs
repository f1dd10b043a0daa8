//! The multi-target push routes: batch-push (one push per region), deploy (one push per named
//! resource) and deployed-resources (where the history says a certificate went); their limits,
//! tenancy and refusals.

use scm_proto::Operation;
use scm_proto::deploy::{
    BatchPushBody, DeployBody, DeployedResource, ListDeployedBody, ListDeployedResponse,
};
use serde_json::{Value, json};

use crate::harness::{TestServer, file_target};
use crate::routes::{invalid, issued, paid, refused, request_id};

fn body(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// Targets of the admin account: `web` (ELB, cn-north-4), `web2` (ELB, cn-east-3), `broken`
/// (ELB, cn-south-1, whose reload fails) and the CDN domain `www.deploy.test`.
async fn server() -> TestServer {
    TestServer::start_with(|account, out| {
        vec![
            file_target("web", account, "ELB", "cn-north-4", out, &["true"]),
            file_target("web2", account, "ELB", "cn-east-3", out, &["true"]),
            file_target("broken", account, "ELB", "cn-south-1", out, &["false"]),
            file_target("www.deploy.test", account, "CDN", "global", out, &["true"]),
        ]
    })
    .await
}

#[tokio::test]
async fn routes_batch_push_answers_per_region() {
    let s = server().await;
    let id = issued(&s.admin, "www.deploy.test").await;
    let r = s
        .admin
        .batch_push(
            &id,
            &BatchPushBody {
                target_projects: Some(
                    [
                        "cn-north-4",
                        "cn-east-3",
                        "cn-south-1",
                        "ap-none-1",
                        "cn-north-4",
                    ]
                    .map(String::from)
                    .to_vec(),
                ),
                target_service: Some("elb".into()),
            },
        )
        .await
        .unwrap();
    let got: Vec<(&str, Option<&str>, &str)> = r
        .results
        .iter()
        .map(|r| {
            (
                r.project_name.as_str(),
                r.cert_id.as_deref(),
                r.message.get(..8).unwrap_or(&r.message),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("cn-north-4", Some(id.as_str()), "success"),
            ("cn-east-3", Some(id.as_str()), "success"),
            ("cn-south-1", None, "SCM.0028"),
            ("ap-none-1", None, "SCM.0030"),
        ],
        "{r:?}"
    );
    for name in ["web", "web2"] {
        let crt = std::fs::read_to_string(s.out.join(format!("{name}.crt"))).unwrap();
        assert!(crt.contains("BEGIN CERTIFICATE"), "{name}");
    }
    // Only the successful regions are in the history (the v2 history lists successes).
    let history = s
        .admin
        .v2_push_history(&s.project_id, &id)
        .await
        .unwrap()
        .push_history_list;
    assert_eq!(history.len(), 2);

    // CDN is global: one push, whatever the regions.
    let r = s
        .admin
        .batch_push(
            &id,
            &BatchPushBody {
                target_projects: Some(vec!["a".into(), "b".into()]),
                target_service: Some("CDN".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(r.results.len(), 1);
    assert_eq!(r.results[0].project_name, "global");
    assert_eq!(r.results[0].message, "success");

    let call = |id: &str, b: Vec<u8>| {
        let (admin, id) = (s.admin.clone(), id.to_owned());
        async move {
            admin
                .call(Operation::BatchPushCertificate, &[&id], &[], Some(&b))
                .await
                .unwrap()
        }
    };
    let good = json!({"target_projects": ["cn-north-4"], "target_service": "ELB"});
    for (b, field) in [
        (json!({"target_projects": ["cn-north-4"]}), "target_service"),
        (
            json!({"target_projects": ["cn-north-4"], "target_service": "FTP"}),
            "target_service",
        ),
        (json!({"target_service": "ELB"}), "target_projects"),
        (
            json!({"target_projects": [], "target_service": "ELB"}),
            "target_projects",
        ),
        (
            json!({"target_projects": vec!["r"; 11], "target_service": "ELB"}),
            "target_projects",
        ),
        (
            json!({"target_projects": ["x".repeat(33)], "target_service": "ELB"}),
            "target_projects[0]",
        ),
        (
            json!({"target_projects": ["ok", "../etc"], "target_service": "ELB"}),
            "target_projects[1]",
        ),
        (
            json!({"target_projects": "cn-north-4", "target_service": "ELB"}),
            "target_projects",
        ),
    ] {
        invalid(&call(&id, body(&b)).await, field);
    }
    let unissued = paid(&s.admin).await;
    refused(&call(&unissued, body(&good)).await, 400, "SCM.0010");
    refused(&call("nope", body(&good)).await, 400, "SCM.0008");
    refused(
        &call("scs0000000000001", body(&good)).await,
        404,
        "SCM.0020",
    );
    let other = s.other_account("other").await;
    let resp = other
        .call(
            Operation::BatchPushCertificate,
            &[&id],
            &[],
            Some(&body(&good)),
        )
        .await
        .unwrap();
    refused(&resp, 404, "SCM.0020");
    let history = s
        .admin
        .v2_push_history(&s.project_id, &id)
        .await
        .unwrap()
        .push_history_list;
    assert_eq!(history.len(), 3, "refused calls pushed nothing");
    s.stop().await;
}

#[tokio::test]
async fn routes_deploy_and_deployed_resources() {
    let s = server().await;
    let id = issued(&s.admin, "www.deploy.test").await;
    let res = |id: &str| DeployedResource {
        id: Some(id.into()),
        ..DeployedResource::default()
    };
    let r = s
        .admin
        .deploy(
            &id,
            &DeployBody {
                project_name: None,
                service_name: Some("ELB".into()),
                resources: Some(vec![res("web"), res("ghost"), res("broken"), res("web")]),
            },
        )
        .await
        .unwrap();
    let failed: Vec<(&str, &str)> = r
        .failure_list
        .iter()
        .map(|f| {
            (
                f.resource.as_str(),
                f.failure_info.get(..8).unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        failed,
        [("ghost", "SCM.0030"), ("broken", "SCM.0028")],
        "{r:?}"
    );
    // A region narrows the resources: web is in cn-north-4, not in cn-east-3.
    let r = s
        .admin
        .deploy(
            &id,
            &DeployBody {
                project_name: Some("cn-east-3".into()),
                service_name: Some("ELB".into()),
                resources: Some(vec![res("web"), res("web2")]),
            },
        )
        .await
        .unwrap();
    assert_eq!(r.failure_list.len(), 1, "{r:?}");
    assert_eq!(r.failure_list[0].resource, "web");
    // CDN: the accelerated domain must be covered by the certificate.
    let cdn = |d: &str| DeployedResource {
        domain_name: Some(d.into()),
        ..DeployedResource::default()
    };
    let r = s
        .admin
        .deploy(
            &id,
            &DeployBody {
                project_name: None,
                service_name: Some("cdn".into()),
                resources: Some(vec![cdn("www.deploy.test"), cdn("other.test")]),
            },
        )
        .await
        .unwrap();
    assert_eq!(r.failure_list.len(), 1, "{r:?}");
    assert_eq!(r.failure_list[0].resource, "other.test");
    assert!(
        r.failure_list[0].failure_info.starts_with("SCM.0015"),
        "{r:?}"
    );
    // All succeeded: an empty list, present.
    let resp = s
        .admin
        .call(
            Operation::DeployCertificate,
            &[&id],
            &[],
            Some(&body(
                &json!({"service_name": "ELB", "resources": [{"id": "web"}]}),
            )),
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        serde_json::from_slice::<Value>(&resp.body).unwrap(),
        json!({"failure_list": []})
    );
    request_id(&resp);

    // Where it is deployed now: web, web2 (ELB, two regions) and the CDN domain; broken never,
    // and its last delivery failed: its region is in error (what it serves is not known).
    let listed = |services: &[&str]| {
        let (admin, id) = (s.admin.clone(), id.clone());
        let services: Vec<String> = services.iter().map(|s| (*s).to_owned()).collect();
        async move {
            admin
                .deployed_resources(&ListDeployedBody {
                    certificate_ids: Some(vec![id]),
                    service_names: Some(services),
                })
                .await
                .unwrap()
        }
    };
    let all: ListDeployedResponse = listed(&["ALL"]).await;
    let got = serde_json::to_value(&all).unwrap();
    assert_eq!(
        got,
        json!({"results": [{
            "certificate_id": id,
            "total_num": 3,
            "deployed_resources": [
                {"service": "CDN", "resource_num": 1, "resource_location": "global",
                 "region_resources": [{"region_id": "global", "is_error": false, "resources": [
                     {"resource_id": "www.deploy.test", "resource_name": "www.deploy.test"}]}]},
                {"service": "ELB", "resource_num": 2, "resource_location": "region",
                 "region_resources": [
                     {"region_id": "cn-east-3", "is_error": false, "resources": [
                         {"resource_id": "web2", "resource_name": "web2"}]},
                     {"region_id": "cn-north-4", "is_error": false, "resources": [
                         {"resource_id": "web", "resource_name": "web"}]},
                     {"region_id": "cn-south-1", "is_error": true, "resources": []}]},
                {"service": "WAF", "resource_num": 0, "resource_location": "region",
                 "region_resources": []}
            ]
        }]})
    );
    let waf = listed(&["waf"]).await;
    assert_eq!(waf.results[0].total_num, 0);
    assert_eq!(waf.results[0].deployed_resources.len(), 1);

    let deploy = |id: &str, b: Vec<u8>| {
        let (admin, id) = (s.admin.clone(), id.to_owned());
        async move {
            admin
                .call(Operation::DeployCertificate, &[&id], &[], Some(&b))
                .await
                .unwrap()
        }
    };
    for (b, field) in [
        (json!({"resources": [{"id": "web"}]}), "service_name"),
        (
            json!({"service_name": "FTP", "resources": [{"id": "web"}]}),
            "service_name",
        ),
        (json!({"service_name": "ELB"}), "resources"),
        (json!({"service_name": "ELB", "resources": []}), "resources"),
        (
            json!({"service_name": "ELB", "resources": vec![json!({"id": "w"}); 21]}),
            "resources",
        ),
        (
            json!({"service_name": "ELB", "resources": [{"domain_name": "www.deploy.test"}]}),
            "resources[0].id",
        ),
        (
            json!({"service_name": "CDN", "resources": [{"id": "web"}]}),
            "resources[0].domain_name",
        ),
        (
            json!({"service_name": "ELB", "resources": [{"id": "x".repeat(64)}]}),
            "resources[0].id",
        ),
        (
            json!({"service_name": "ELB", "project_name": "a b", "resources": [{"id": "web"}]}),
            "project_name",
        ),
    ] {
        invalid(&deploy(&id, body(&b)).await, field);
    }
    let good = json!({"service_name": "ELB", "resources": [{"id": "web"}]});
    let unissued = paid(&s.admin).await;
    refused(&deploy(&unissued, body(&good)).await, 400, "SCM.0010");
    refused(&deploy("nope", body(&good)).await, 400, "SCM.0008");
    refused(
        &deploy("scs0000000000001", body(&good)).await,
        404,
        "SCM.0020",
    );

    let list = |b: Value| {
        let admin = s.admin.clone();
        async move {
            admin
                .call(Operation::ListDeployedResources, &[], &[], Some(&body(&b)))
                .await
                .unwrap()
        }
    };
    for (b, field) in [
        (json!({"service_names": ["ALL"]}), "certificate_ids"),
        (
            json!({"certificate_ids": [], "service_names": ["ALL"]}),
            "certificate_ids",
        ),
        (
            json!({"certificate_ids": vec![id.clone(); 51], "service_names": ["ALL"]}),
            "certificate_ids",
        ),
        (json!({"certificate_ids": [id]}), "service_names"),
        (
            json!({"certificate_ids": [id], "service_names": ["FTP"]}),
            "service_names[0]",
        ),
    ] {
        invalid(&list(b).await, field);
    }
    refused(
        &list(json!({"certificate_ids": ["nope"], "service_names": ["ALL"]})).await,
        400,
        "SCM.0008",
    );
    refused(
        &list(json!({"certificate_ids": [id, "scs0000000000001"], "service_names": ["ALL"]})).await,
        404,
        "SCM.0020",
    );
    // A certificate not issued is deployed nowhere and cannot be: refused as a deploy of it
    // is, and the whole call with it.
    for ids in [json!([unissued]), json!([id, unissued])] {
        refused(
            &list(json!({"certificate_ids": ids, "service_names": ["ALL"]})).await,
            400,
            "SCM.0010",
        );
    }
    // Another account sees neither the certificate nor where it went.
    let other = s.other_account("other").await;
    let resp = other
        .call(
            Operation::ListDeployedResources,
            &[],
            &[],
            Some(&body(
                &json!({"certificate_ids": [id], "service_names": ["ALL"]}),
            )),
        )
        .await
        .unwrap();
    refused(&resp, 404, "SCM.0020");
    let resp = other
        .call(
            Operation::DeployCertificate,
            &[&id],
            &[],
            Some(&body(&good)),
        )
        .await
        .unwrap();
    refused(&resp, 404, "SCM.0020");
    s.stop().await;
}
