//! The tag routes: add one tag, add or delete several, list a certificate's tags and the
//! account's, with their limits, tenancy and refusals.

use scm_proto::Operation;
use scm_proto::tags::{
    AllTagsResponse, DescResponse, KeyValues, ResourceTag, ResourceTagsResponse,
};
use serde_json::json;

use crate::harness::TestServer;
use crate::routes::{invalid, paid, refused};

fn body(v: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn tag(k: &str, v: &str) -> ResourceTag {
    ResourceTag {
        key: Some(k.into()),
        value: Some(v.into()),
    }
}

#[tokio::test]
async fn routes_tags_add_list_and_delete() {
    let s = TestServer::start().await;
    let a = paid(&s.admin).await;
    let b = paid(&s.admin).await;
    let call = |op, id: &str, v: Option<serde_json::Value>| {
        let id = id.to_owned();
        let c = s.admin.clone();
        async move {
            let bytes = v.as_ref().map(body);
            c.call(op, &[id.as_str()], &[], bytes.as_deref())
                .await
                .unwrap()
        }
    };

    // A new certificate has no tags: `[]`, not a missing key.
    let resp = call(Operation::ListTagsByCertificate, &a, None).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.text(), r#"{"tags":[]}"#);

    let resp = call(
        Operation::CreateCertificateTag,
        &a,
        Some(json!({"tag": {"key": "env", "value": "prod"}})),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json::<DescResponse>().unwrap().desc, "success");
    // The same key again replaces the value.
    let resp = call(
        Operation::CreateCertificateTag,
        &a,
        Some(json!({"tag": {"key": "env", "value": "staging"}})),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());

    let resp = call(
        Operation::BatchCreateOrDeleteTags,
        &b,
        Some(json!({"action": "create", "tags": [
            {"key": "env", "value": "prod"}, {"key": "团队", "value": "a/b"}, {"key": "x", "value": ""}
        ]})),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.json::<DescResponse>().unwrap().desc,
        "create tags success"
    );

    let tags = call(Operation::ListTagsByCertificate, &a, None)
        .await
        .json::<ResourceTagsResponse>()
        .unwrap()
        .tags;
    assert_eq!(tags, vec![tag("env", "staging")]);
    let tags = call(Operation::ListTagsByCertificate, &b, None)
        .await
        .json::<ResourceTagsResponse>()
        .unwrap()
        .tags;
    assert_eq!(
        tags,
        vec![tag("env", "prod"), tag("x", ""), tag("团队", "a/b")]
    );

    // Every key of the account, with its distinct values, sorted.
    let all = s
        .admin
        .call(Operation::ListAllTags, &[], &[], None)
        .await
        .unwrap()
        .json::<AllTagsResponse>()
        .unwrap()
        .tags;
    let kv = |k: &str, v: &[&str]| KeyValues {
        key: Some(k.into()),
        values: Some(v.iter().map(|s| (*s).to_owned()).collect()),
    };
    assert_eq!(
        all,
        vec![
            kv("env", &["prod", "staging"]),
            kv("x", &[""]),
            kv("团队", &["a/b"])
        ]
    );

    // Delete by key; an unknown key is no error.
    let resp = call(
        Operation::BatchCreateOrDeleteTags,
        &b,
        Some(json!({"action": "delete", "tags": [{"key": "env"}, {"key": "nope", "value": "v"}]})),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.json::<DescResponse>().unwrap().desc,
        "delete tags success"
    );
    let tags = call(Operation::ListTagsByCertificate, &b, None)
        .await
        .json::<ResourceTagsResponse>()
        .unwrap()
        .tags;
    assert_eq!(tags, vec![tag("x", ""), tag("团队", "a/b")]);

    // Another account sees none of it.
    let other = s.other_account("other").await;
    let all = other
        .call(Operation::ListAllTags, &[], &[], None)
        .await
        .unwrap();
    assert_eq!(all.text(), r#"{"tags":[]}"#);
    s.stop().await;
}

#[tokio::test]
async fn routes_tags_refusals() {
    let s = TestServer::start().await;
    let a = paid(&s.admin).await;
    let post = |op, id: &str, v: serde_json::Value| {
        let id = id.to_owned();
        let c = s.admin.clone();
        async move {
            c.call(op, &[id.as_str()], &[], Some(&body(&v)))
                .await
                .unwrap()
        }
    };
    let create = Operation::CreateCertificateTag;
    let batch = Operation::BatchCreateOrDeleteTags;
    for (v, field) in [
        (json!({}), "tag"),
        (json!({"tag": {"value": "v"}}), "tag.key"),
        (json!({"tag": {"key": "", "value": "v"}}), "tag.key"),
        (
            json!({"tag": {"key": "k".repeat(129), "value": "v"}}),
            "tag.key",
        ),
        (json!({"tag": {"key": "a/b", "value": "v"}}), "tag.key"),
        (
            json!({"tag": {"key": "k", "value": "v".repeat(256)}}),
            "tag.value",
        ),
        (json!({"tag": {"key": "k", "value": "a#b"}}), "tag.value"),
        (json!({"tag": {"key": 1, "value": "v"}}), "tag.key"),
    ] {
        invalid(&post(create, &a, v).await, field);
    }
    let many: Vec<_> = (0..21)
        .map(|i| json!({"key": format!("k{i}"), "value": "v"}))
        .collect();
    for (v, field) in [
        (json!({"tags": [{"key": "k"}]}), "action"),
        (
            json!({"action": "update", "tags": [{"key": "k"}]}),
            "action",
        ),
        (json!({"action": "create"}), "tags"),
        (json!({"action": "create", "tags": []}), "tags"),
        (json!({"action": "create", "tags": many}), "tags"),
        (
            json!({"action": "create", "tags": [{"key": "k"}, {"key": "k"}]}),
            "tags[1].key",
        ),
        (
            json!({"action": "create", "tags": [{"key": "k", "value": "v".repeat(256)}]}),
            "tags[0].value",
        ),
    ] {
        invalid(&post(batch, &a, v).await, field);
    }
    // Bad input changed nothing.
    let resp = s
        .admin
        .call(Operation::ListTagsByCertificate, &[&a], &[], None)
        .await
        .unwrap();
    assert_eq!(resp.text(), r#"{"tags":[]}"#);

    // At most 20 tags per certificate: 20 fit, the 21st is refused and not stored.
    let twenty: Vec<_> = (0..20)
        .map(|i| json!({"key": format!("k{i}"), "value": "v"}))
        .collect();
    let resp = post(batch, &a, json!({"action": "create", "tags": twenty})).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    invalid(
        &post(create, &a, json!({"tag": {"key": "k20", "value": "v"}})).await,
        "tags",
    );
    // Replacing the value of a key it has is still allowed.
    let resp = post(create, &a, json!({"tag": {"key": "k0", "value": "w"}})).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let tags = s
        .admin
        .call(Operation::ListTagsByCertificate, &[&a], &[], None)
        .await
        .unwrap()
        .json::<ResourceTagsResponse>()
        .unwrap()
        .tags;
    assert_eq!(tags.len(), 20);

    // Ids: malformed, unknown, another account's (answered as unknown).
    let other = s.other_account("other").await;
    let ok = body(&json!({"tag": {"key": "k", "value": "v"}}));
    let ok_batch = body(&json!({"action": "create", "tags": [{"key": "k"}]}));
    for (who, id, status, code) in [
        (&s.admin, "not-a-cert", 400, "SCM.0008"),
        (&s.admin, "scs0000000000001", 404, "SCM.0020"),
        (&other, a.as_str(), 404, "SCM.0020"),
    ] {
        for (op, b) in [
            (create, Some(ok.as_slice())),
            (batch, Some(ok_batch.as_slice())),
            (Operation::ListTagsByCertificate, None),
        ] {
            let resp = who.call(op, &[id], &[], b).await.unwrap();
            refused(&resp, status, code);
        }
    }
    s.stop().await;
}

/// Tags go with their certificate: after unsubscribe, the account's tags no longer list them.
#[tokio::test]
async fn routes_tags_go_with_their_certificate() {
    let s = TestServer::start().await;
    let a = paid(&s.admin).await;
    let resp = s
        .admin
        .call(
            Operation::CreateCertificateTag,
            &[a.as_str()],
            &[],
            Some(&body(&json!({"tag": {"key": "gone", "value": "soon"}}))),
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let all: AllTagsResponse = s
        .admin
        .call(Operation::ListAllTags, &[], &[], None)
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(all.tags.len(), 1, "{:?}", all.tags);
    s.admin.unsubscribe(&a).await.unwrap();
    let resp = s
        .admin
        .call(Operation::ListAllTags, &[], &[], None)
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.text(), r#"{"tags":[]}"#);
}

/// `ListCertificatesByTag`: the match rules over the route, `count`, paging, the literal path
/// segment, tenancy and the refusals.
#[tokio::test]
async fn routes_certificates_by_tag() {
    use scm_proto::tags::ListByTagResponse;

    let s = TestServer::start().await;
    let prod = paid(&s.admin).await;
    let staging = paid(&s.admin).await;
    let bare = paid(&s.admin).await;
    for (id, tags) in [
        (
            &prod,
            json!([{"key": "env", "value": "prod"}, {"key": "team", "value": "web"}]),
        ),
        (&staging, json!([{"key": "env", "value": "staging"}])),
    ] {
        let resp = s
            .admin
            .call(
                Operation::BatchCreateOrDeleteTags,
                &[id.as_str()],
                &[],
                Some(&body(&json!({"action": "create", "tags": tags}))),
            )
            .await
            .unwrap();
        assert_eq!(resp.status, 200, "{}", resp.text());
    }
    let other = s.other_account("other").await;
    paid(&other).await;
    let query = |who: &scm_client::Client, v: serde_json::Value| {
        let who = who.clone();
        async move {
            who.call(Operation::ListCertificatesByTag, &[], &[], Some(&body(&v)))
                .await
                .unwrap()
        }
    };
    let ids = |resp: &scm_client::RawResponse| {
        assert_eq!(resp.status, 200, "{}", resp.text());
        let r: ListByTagResponse = resp.json().unwrap();
        let mut ids: Vec<_> = r.resources.iter().map(|t| t.resource_id.clone()).collect();
        ids.sort();
        (r.total_count, ids)
    };
    let sorted = |v: &[&String]| {
        let mut v: Vec<String> = v.iter().map(|s| (*s).clone()).collect();
        v.sort();
        v
    };

    // No filter: every certificate of the account (not the other account's).
    assert_eq!(
        ids(&query(&s.admin, json!({})).await),
        (3, sorted(&[&prod, &staging, &bare]))
    );
    for (q, want) in [
        (
            json!({"tags": [{"key": "env", "values": []}]}),
            vec![&prod, &staging],
        ),
        (
            json!({"tags": [{"key": "env", "values": ["prod", "x"]}, {"key": "team", "values": []}]}),
            vec![&prod],
        ),
        (
            json!({"tags_any": [{"key": "team", "values": []}, {"key": "env", "values": ["staging"]}]}),
            vec![&prod, &staging],
        ),
        (
            json!({"not_tags": [{"key": "env", "values": ["prod"]}]}),
            vec![&staging, &bare],
        ),
        (
            json!({"not_tags_any": [{"key": "env", "values": []}]}),
            vec![&bare],
        ),
        (
            json!({"without_any_tag": true, "tags": [{"key": "env", "values": []}]}),
            vec![&bare],
        ),
    ] {
        assert_eq!(
            ids(&query(&s.admin, q.clone()).await),
            (u64::try_from(want.len()).unwrap(), sorted(&want)),
            "{q}"
        );
    }

    // One item in full: every documented key, times as ms strings, its tags.
    let resp = query(
        &s.admin,
        json!({"tags": [{"key": "team", "values": ["web"]}], "action": "filter"}),
    )
    .await;
    let v: serde_json::Value = resp.json().unwrap();
    let item = &v["resources"][0];
    assert_eq!(item["resource_id"], prod.as_str());
    assert_eq!(
        item["tags"],
        json!([{"key": "env", "value": "prod"}, {"key": "team", "value": "web"}])
    );
    let detail = &item["resource_detail"];
    assert_eq!(detail["cert_id"], prod.as_str());
    assert_eq!(detail["order_status"], "PAID");
    assert_eq!(detail["expired_time"], "");
    assert_eq!(detail["push_support"], false);
    assert_eq!(detail["unsubscribe_support"], true);
    assert_eq!(detail["purchase_period"], 1);
    assert_eq!(detail.as_object().unwrap().len(), 26, "{detail}");

    // count: only the total.
    let resp = query(&s.admin, json!({"action": "count"})).await;
    assert_eq!(resp.text(), r#"{"total_count":3,"resources":[]}"#);
    // An empty body is no filter.
    let resp = s
        .admin
        .call(Operation::ListCertificatesByTag, &[], &[], None)
        .await
        .unwrap();
    assert_eq!(ids(&resp).0, 3);
    // Paging: newest first, offset skips.
    let resp = query(&s.admin, json!({"limit": 10, "offset": 2})).await;
    assert_eq!(ids(&resp), (3, vec![prod.clone()]));
    // Name match, case-insensitive, on the certificate's name.
    let name = s.admin.show(&bare).await.unwrap().name;
    let resp = query(
        &s.admin,
        json!({"matches": [{"key": "resource_name", "value": name.to_uppercase()}]}),
    )
    .await;
    assert_eq!(ids(&resp), (1, vec![bare.clone()]));

    // The other account sees only its own.
    assert_eq!(ids(&query(&other, json!({})).await).0, 1);

    // Refusals name the field and change nothing.
    for (q, field) in [
        (json!({"limit": 5}), "limit"),
        (json!({"limit": "10"}), "limit"),
        (json!({"offset": -1}), "offset"),
        (json!({"action": "delete"}), "action"),
        (json!({"without_any_tag": "yes"}), "without_any_tag"),
        (json!({"tags": [{"key": "k"}]}), "tags[0].values"),
        (json!({"tags": [{"values": []}]}), "tags[0].key"),
        (
            json!({"tags_any": [{"key": "k", "values": ["v", "v"]}]}),
            "tags_any[0].values[1]",
        ),
        (
            json!({"not_tags": [{"key": "k", "values": []}, {"key": "k", "values": []}]}),
            "not_tags[1].key",
        ),
        (
            json!({"matches": [{"key": "domain", "value": "x"}]}),
            "matches[0].key",
        ),
    ] {
        invalid(&query(&s.admin, q).await, field);
    }
    // (Unauthenticated requests: the sweep of every route in routes.rs.)
    s.stop().await;
}
