//! Text that reaches a certificate is clean: on every route with a JSON body or a query, every
//! string field refuses the control characters and the bidirectional formatting characters with
//! 400 `SCM.0005` naming the field, and nothing is written; PEM fields may break lines; any
//! other Unicode text (a Chinese company name) passes. The fields are taken from the body types
//! themselves (serde's list of a struct's fields), so a new field is covered or fails here.

use scm_client::{Client, RawResponse, RequestAuth};
use scm_pki::parse_certificate_pem;
use scm_proto::Operation;
use scm_proto::v3::{ApplicationBody, PurchaseBody, ResourceTag};
use serde::de::{DeserializeOwned, Visitor};
use serde_json::Value;

use crate::harness::TestServer;
use crate::routes::{
    buy_body, count, csr, invalid, issued, listed, refused, shown, v2_buy_body, v2_push, v3_push,
};

/// One of each forbidden class, and the ends of each range: C0 (NUL, tab, line feed, carriage
/// return, ESC, U+001F), DEL, C1 (U+0080, NEL, U+009F), ALM, LRM, RLM, the embeddings and
/// overrides (LRE, LRO, RLO), the isolates (LRI, PDI).
const FORBIDDEN: &[char] = &[
    '\u{0}', '\t', '\n', '\r', '\u{1b}', '\u{1f}', '\u{7f}', '\u{80}', '\u{85}', '\u{9f}',
    '\u{61c}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2069}',
];

/// The field names of a struct, as its derived `Deserialize` knows them.
fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("stop")
        }
    }
    impl std::error::Error for Stop {}
    impl serde::de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Stop
        }
    }
    struct Fields(&'static [&'static str]);
    impl<'de> serde::Deserializer<'de> for &mut Fields {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0 = fields;
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut probe = Fields(&[]);
    let _ = T::deserialize(&mut probe);
    assert!(
        !probe.0.is_empty(),
        "{} is a struct",
        std::any::type_name::<T>()
    );
    probe.0
}

/// Asserts that `sample` sets every field of `T` (so that every field is tested).
#[track_caller]
fn sets_every_field<T: DeserializeOwned>(sample: &Value) {
    for field in fields_of::<T>() {
        assert!(
            sample.get(field).is_some_and(|v| !v.is_null()),
            "the sample {} leaves out {field}",
            std::any::type_name::<T>()
        );
    }
}

/// The string leaves of `value`: (JSON path as the server names it, JSON pointer).
fn strings(value: &Value, path: &str, pointer: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::String(_) => out.push((path.to_owned(), pointer.to_owned())),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                strings(
                    item,
                    &format!("{path}[{i}]"),
                    &format!("{pointer}/{i}"),
                    out,
                );
            }
        }
        Value::Object(members) => {
            for (name, item) in members {
                let p = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                strings(item, &p, &format!("{pointer}/{name}"), out);
            }
        }
        _ => {}
    }
}

/// Whether the field at `path` carries PEM (may break lines).
fn is_pem(path: &str) -> bool {
    matches!(
        path,
        "csr"
            | "certificate"
            | "certificate_chain"
            | "private_key"
            | "enc_certificate"
            | "enc_private_key"
    )
}

/// `text` with `c` in its middle (or `c` alone).
fn poisoned(text: &str, c: char) -> String {
    let mid = text
        .char_indices()
        .nth(text.chars().count() / 2)
        .map_or(text.len(), |(i, _)| i);
    format!("{}{c}{}", &text[..mid], &text[mid..])
}

/// Every body of `sample` with one forbidden character in one string field: (field, body).
fn poisoned_bodies(sample: &Value) -> Vec<(String, Vec<u8>)> {
    let mut leaves = Vec::new();
    strings(sample, "", "", &mut leaves);
    assert!(!leaves.is_empty());
    let mut out = Vec::new();
    for (path, pointer) in leaves {
        for &c in FORBIDDEN {
            if is_pem(&path) && matches!(c, '\n' | '\r') {
                continue;
            }
            let mut body = sample.clone();
            let leaf = body.pointer_mut(&pointer).unwrap();
            let text = leaf.as_str().unwrap().to_owned();
            *leaf = Value::String(poisoned(&text, c));
            out.push((path.clone(), serde_json::to_vec(&body).unwrap()));
        }
    }
    out
}

/// Sends every poisoned body of `sample` to `op` and asserts each is refused naming its field.
async fn refuses_every_field(client: &Client, op: Operation, params: &[&str], sample: &Value) {
    let bodies = poisoned_bodies(sample);
    for (field, body) in &bodies {
        let resp = client.call(op, params, &[], Some(body)).await.unwrap();
        assert_refused(&resp, field, op);
    }
}

#[track_caller]
fn assert_refused(resp: &RawResponse, field: &str, op: Operation) {
    let msg = refused(resp, 400, "SCM.0005");
    assert!(
        msg.starts_with(&format!(
            "Incorrect request parameter: {field} must not contain control or bidirectional"
        )),
        "{op} {field}: {msg}"
    );
}

/// A purchase body with every field set (valid on v2 and v3): a multi-domain OV certificate
/// with the v3 extras, and three tags, one in Chinese.
fn full_purchase() -> Value {
    let tag = |k: &str, v: &str| ResourceTag {
        key: Some(k.into()),
        value: Some(v.into()),
    };
    let body = PurchaseBody {
        cert_type: Some("OV_SSL_CERT".into()),
        domain_type: Some("MULTI_DOMAIN".into()),
        domain_numbers: Some(5),
        primary_domain_type: Some("SINGLE_DOMAIN".into()),
        single_domain_number: Some(1),
        wildcard_domain_number: Some(1),
        is_auto_pay: Some(true),
        enterprise_project_id: Some("0".into()),
        order_id: Some("CS2605011200ABCDE".into()),
        tags: Some(vec![
            tag("env", "prod"),
            tag("team", "web"),
            tag("环境", "生产"),
        ]),
        ..buy_body()
    };
    let v = serde_json::to_value(&body).unwrap();
    sets_every_field::<PurchaseBody>(&v);
    for t in v["tags"].as_array().unwrap() {
        sets_every_field::<ResourceTag>(t);
    }
    v
}

/// An application with every field set, for `a.text.test` + `b.text.test`: a CSR with CRLF line
/// ends, and the company and applicant in Chinese.
fn full_application() -> Value {
    let (pem, _key) = csr(&["a.text.test", "b.text.test"]);
    let body = ApplicationBody {
        domain: Some("a.text.test".into()),
        sans: Some("b.text.test".into()),
        csr: Some(pem.replace("\r\n", "\n").replace('\n', "\r\n")),
        company_name: Some("华为技术有限公司".into()),
        company_unit: Some("研发部".into()),
        company_province: Some("四川".into()),
        company_city: Some("成都".into()),
        country: Some("CN".into()),
        applicant_name: Some("张伟明".into()),
        applicant_phone: Some("13212345678".into()),
        applicant_email: Some("tom@example.com".into()),
        contact_name: Some("李娜".into()),
        contact_phone: Some("13512345678".into()),
        contact_email: Some("contact@example.com".into()),
        auto_dns_auth: Some(false),
        agree_privacy_protection: Some(true),
        domain_method: Some("DNS".into()),
        key_algorithm: Some("EC_P256".into()),
        ca_hash_algorithm: Some("SHA-256".into()),
    };
    let v = serde_json::to_value(&body).unwrap();
    sets_every_field::<ApplicationBody>(&v);
    assert!(v["csr"].as_str().unwrap().contains("\r\n"));
    v
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// v2 purchase and v3 buy: every string of the body, every class; nothing is bought; the clean
/// body (Chinese tag included) buys.
#[tokio::test]
async fn routes_purchase_bodies_refuse_control_and_bidi_characters_in_every_field() {
    let s = TestServer::start().await;
    let sample = full_purchase();
    let p = s.project_id.as_str();
    refuses_every_field(&s.admin, Operation::SubscribeCertificate, &[], &sample).await;
    refuses_every_field(&s.admin, Operation::V2PurchaseCertificate, &[p], &sample).await;
    assert_eq!(count(&s.admin).await, 0, "nothing bought");
    for (op, params) in [
        (Operation::SubscribeCertificate, vec![]),
        (Operation::V2PurchaseCertificate, vec![p]),
    ] {
        let resp = s
            .admin
            .call(op, &params, &[], Some(&bytes(&sample)))
            .await
            .unwrap();
        assert_eq!(resp.status, 200, "{op}: {}", resp.text());
    }
    let listed = listed(&s.admin).await;
    assert_eq!(listed["total_count"], 2);
    s.stop().await;
}

/// v2 save, v2 complete and v3 apply: every string of the application, every class (PEM line
/// breaks excepted); the certificates stay as they were; then the clean application (CRLF in the
/// CSR, Chinese company and applicant) saves and issues, and the subject carries the Chinese
/// company name.
#[tokio::test]
async fn routes_application_bodies_refuse_control_and_bidi_characters_in_every_field() {
    let s = TestServer::start().await;
    let sample = full_application();
    let p = s.project_id.clone();
    let multi = |base: PurchaseBody| PurchaseBody {
        domain_type: Some("MULTI_DOMAIN".into()),
        domain_numbers: Some(2),
        ..base
    };
    let v2_cert = s
        .admin
        .v2_purchase(&p, &multi(v2_buy_body()))
        .await
        .unwrap()
        .cert[0]
        .cert_id
        .clone();
    let v3_cert = s.admin.subscribe(&multi(buy_body())).await.unwrap().cert[0]
        .cert_id
        .clone();
    let before = (
        shown(&s.admin, &v2_cert).await,
        shown(&s.admin, &v3_cert).await,
    );
    for op in [
        Operation::V2SaveApplication,
        Operation::V2CompleteApplication,
    ] {
        refuses_every_field(&s.admin, op, &[&p, &v2_cert], &sample).await;
    }
    refuses_every_field(&s.admin, Operation::ApplyCertificate, &[&v3_cert], &sample).await;
    assert_eq!(
        (
            shown(&s.admin, &v2_cert).await,
            shown(&s.admin, &v3_cert).await
        ),
        before,
        "nothing written"
    );

    // The clean application: saved, then completed (v2); applied (v3).
    for (op, params) in [
        (Operation::V2SaveApplication, vec![p.as_str(), &v2_cert]),
        (Operation::V2CompleteApplication, vec![p.as_str(), &v2_cert]),
        (Operation::ApplyCertificate, vec![v3_cert.as_str()]),
    ] {
        let resp = s
            .admin
            .call(op, &params, &[], Some(&bytes(&sample)))
            .await
            .unwrap();
        assert_eq!(resp.status, 200, "{op}: {}", resp.text());
    }
    for id in [&v2_cert, &v3_cert] {
        assert_eq!(s.admin.show(id).await.unwrap().status, "ISSUED");
        let leaf = parse_certificate_pem(&s.admin.export(id).await.unwrap().certificate).unwrap();
        assert!(
            leaf.subject.contains("华为技术有限公司") && leaf.subject.contains("成都"),
            "{}",
            leaf.subject
        );
    }
    s.stop().await;
}

/// v2 and v3 push: every string of the body, every class; nothing is pushed; the clean bodies
/// push.
#[tokio::test]
async fn routes_push_bodies_refuse_control_and_bidi_characters_in_every_field() {
    let s = TestServer::with_web_target().await;
    let id = issued(&s.admin, "www.text-push.test").await;
    let p = s.project_id.clone();
    let v2 = serde_json::to_value(v2_push("ELB", Some("cn-north-4"))).unwrap();
    sets_every_field::<scm_proto::v2::PushBody>(&v2);
    let v3 = serde_json::to_value(v3_push("ELB", Some("cn-north-4"))).unwrap();
    sets_every_field::<scm_proto::v3::PushBody>(&v3);
    refuses_every_field(&s.admin, Operation::V2PushCertificate, &[&p, &id], &v2).await;
    refuses_every_field(&s.admin, Operation::PushCertificate, &[&id], &v3).await;
    let history = |s: &TestServer| {
        let (admin, p, id) = (s.admin.clone(), p.clone(), id.clone());
        async move {
            admin
                .v2_push_history(&p, &id)
                .await
                .unwrap()
                .push_history_list
                .len()
        }
    };
    assert_eq!(history(&s).await, 0, "nothing pushed");
    assert!(!s.out.join("web.crt").exists());
    let resp = s
        .admin
        .call(
            Operation::V2PushCertificate,
            &[&p, &id],
            &[],
            Some(&bytes(&v2)),
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = s
        .admin
        .call(Operation::PushCertificate, &[&id], &[], Some(&bytes(&v3)))
        .await
        .unwrap();
    assert_eq!(resp.status, 204, "{}", resp.text());
    assert_eq!(history(&s).await, 2);
    s.stop().await;
}

// --- revocation ---
/// v2 revoke: the reason refuses every class; nothing is revoked; a clean Chinese reason
/// revokes.
#[tokio::test]
async fn routes_revoke_body_refuses_control_and_bidi_characters() {
    let s = TestServer::start().await;
    let id = issued(&s.admin, "www.text-revoke.test").await;
    let p = s.project_id.clone();
    let body = serde_json::json!({"reason": "keyCompromise"});
    sets_every_field::<scm_proto::v2::RevokeBody>(&body);
    refuses_every_field(&s.admin, Operation::V2RevokeCertificate, &[&p, &id], &body).await;
    assert_eq!(shown(&s.admin, &id).await["status"], "ISSUED");
    let clean = serde_json::json!({"reason": "服务器已下线"});
    let resp = s
        .admin
        .call(
            Operation::V2RevokeCertificate,
            &[&p, &id],
            &[],
            Some(&bytes(&clean)),
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let shown = shown(&s.admin, &id).await;
    assert_eq!(
        (&shown["status"], &shown["revoke_reason"]),
        (
            &serde_json::json!("REVOKED"),
            &serde_json::json!("服务器已下线")
        )
    );
    s.stop().await;
}

/// The list query: every parameter (all are text on the wire), every class, refused naming the
/// parameter; Chinese `content` passes.
#[tokio::test]
async fn routes_list_query_refuses_control_and_bidi_characters_in_every_parameter() {
    let s = TestServer::start().await;
    let full = scm_client::ListQuery {
        limit: Some(10),
        offset: Some(0),
        sort_dir: Some("DESC".into()),
        sort_key: Some("certUpdateTime".into()),
        status: Some("ALL".into()),
        content: Some("www".into()),
        deploy_support: Some(false),
        enterprise_project_id: Some("all".into()),
        expired_days_since: Some(1095),
        owned_by_self: Some(true),
    };
    let pairs = full.pairs();
    assert_eq!(pairs.len(), 10, "every parameter is set");
    let call = |query: Vec<(String, String)>| {
        let admin = s.admin.clone();
        async move {
            let q: Vec<(&str, &str)> = query
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            admin
                .call(Operation::ListCertificates, &[], &q, None)
                .await
                .unwrap()
        }
    };
    let owned: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    assert_eq!(call(owned.clone()).await.status, 200);
    for (i, (name, value)) in pairs.iter().enumerate() {
        for &c in FORBIDDEN {
            let mut query = owned.clone();
            query[i].1 = poisoned(value, c);
            assert_refused(&call(query).await, name, Operation::ListCertificates);
        }
    }
    // An unknown parameter is checked too; a bad name names `query`.
    assert_refused(
        &call(vec![("x-unknown".into(), "a\u{1b}b".into())]).await,
        "x-unknown",
        Operation::ListCertificates,
    );
    assert_refused(
        &call(vec![("a\u{202e}".into(), "b".into())]).await,
        "query",
        Operation::ListCertificates,
    );
    let resp = call(vec![("content".into(), "华为".into())]).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    s.stop().await;
}

/// Bytes that are not UTF-8 are refused: anywhere in a body (naming `body`), as a JSON escape of
/// a lone surrogate (`body`), and in a query once decoded (`query`). The query is checked after
/// authentication: a signed request whose query is not UTF-8 cannot be verified (its canonical
/// form is defined over UTF-8) and is 401 like any bad signature, while a request authenticated
/// by token gets the 400.
#[tokio::test]
async fn routes_text_that_is_not_utf8_is_refused() {
    let s = TestServer::start().await;
    let id = crate::routes::paid(&s.admin).await;
    let cases: [&[u8]; 4] = [
        b"{\"company_name\": \"\xff\"}",
        b"{\"company_name\": \"a\"}\xc0",
        b"{\"company_name\": \"\xed\xa0\x80\"}",
        br#"{"company_name": "\ud800"}"#,
    ];
    for body in cases {
        let resp = s
            .admin
            .call(Operation::ApplyCertificate, &[&id], &[], Some(body))
            .await
            .unwrap();
        invalid(&resp, "body");
        let resp = s
            .admin
            .call(Operation::SubscribeCertificate, &[], &[], Some(body))
            .await
            .unwrap();
        invalid(&resp, "body");
    }
    assert_eq!(count(&s.admin).await, 1);

    let token = s.admin.create_token().await.unwrap();
    for target in [
        "/v3/scm/certificates?content=%ff",
        "/v3/scm/certificates?limit=10&content=a%C0%80",
        "/v3/scm/certificates?%fe=1",
    ] {
        let mut req = s.admin.request(Operation::ListCertificates, &[], &[], None);
        req.target = target.into();
        let by_token = s
            .admin
            .send(req.clone().auth(RequestAuth::Token(token.token.clone())))
            .await
            .unwrap();
        invalid(&by_token, "query");
        let signed = s.admin.send(req).await.unwrap();
        refused(&signed, 401, "APIGW.0301");
    }
    s.stop().await;
}
