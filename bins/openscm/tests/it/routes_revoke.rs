//! Revocation over HTTP: v2 `revoke` and the CRL served at `/crl/<ca id>.crl`, checked with the
//! OpenSSL CLI (`openssl verify -crl_check`), which must be installed: a missing `openssl` fails
//! these tests.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use scm_client::{Client, RequestAuth};
use scm_proto::Operation;
use scm_proto::v2::RevokeBody;

use crate::harness::TestServer;
use crate::routes::{issued, paid, refused, shown, v2_push};

fn reason(r: &str) -> Vec<u8> {
    serde_json::to_vec(&RevokeBody {
        reason: Some(r.into()),
    })
    .unwrap()
}

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl CLI must be installed to run the revocation tests");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `openssl verify -crl_check` of `leaf_pem` against the root, the chain and the CRL (DER).
fn verify(
    dir: &Path,
    root_pem: &str,
    chain_pem: &str,
    crl_der: &[u8],
    leaf_pem: &str,
) -> (bool, String) {
    let cas = dir.join("cas.pem");
    std::fs::write(&cas, format!("{root_pem}{chain_pem}")).unwrap();
    let crl = dir.join("crl.pem");
    std::fs::write(&crl, scm_pki::crl_pem(crl_der)).unwrap();
    let leaf = dir.join("leaf.pem");
    std::fs::write(&leaf, leaf_pem).unwrap();
    openssl(&[
        "verify",
        "-crl_check",
        "-CAfile",
        cas.to_str().unwrap(),
        "-CRLfile",
        crl.to_str().unwrap(),
        leaf.to_str().unwrap(),
    ])
}

/// The CRL as served (unauthenticated), waiting up to 10 s until `ready` holds for its parsed
/// form; the failure says what was last served.
async fn served_crl(
    anonymous: &Client,
    file: &str,
    ready: impl Fn(&scm_pki::CrlInfo) -> bool,
) -> (Vec<u8>, scm_pki::CrlInfo) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let resp = anonymous
            .send(
                anonymous
                    .request(Operation::CertificateRevocationList, &[file], &[], None)
                    .auth(RequestAuth::None),
            )
            .await
            .unwrap();
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert_eq!(resp.header("content-type"), Some("application/pkix-crl"));
        let info = scm_pki::parse_crl_der(&resp.body).unwrap();
        if ready(&info) {
            return (resp.body.to_vec(), info);
        }
        assert!(
            Instant::now() < deadline,
            "the served CRL did not change as expected within 10 s; last seen: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Issue two certificates; both verify against the served CRL; revoke one: it is `REVOKED` with
/// its reason, the CRL served (without authentication) lists it at once and `openssl verify
/// -crl_check` refuses it while the other still verifies. Every leaf carries the CRL's URL.
#[tokio::test]
async fn routes_revoke_puts_the_certificate_on_the_served_crl() {
    let s = TestServer::with_web_target().await;
    let dir = tempfile::tempdir().unwrap();
    let file = s.crl_file().await;
    let root = s.admin_roots().await.root_pem;
    let (first, info) = served_crl(&s.admin, &file, |_| true).await;
    assert!(info.revoked_serials.is_empty());
    let first_number = info.number.unwrap();
    assert!(info.next_update.is_some());

    let bad = issued(&s.admin, "revoked.test").await;
    let good = issued(&s.admin, "good.test").await;
    let bad_export = s.admin.export(&bad).await.unwrap();
    let good_export = s.admin.export(&good).await.unwrap();
    let chain = bad_export.certificate_chain.clone();
    let serial = scm_pki::parse_certificate_pem(&bad_export.certificate)
        .unwrap()
        .serial_hex;

    // The leaf's CRL distribution point is the URL the CRL is served at.
    let leaf_path = dir.path().join("show.pem");
    std::fs::write(&leaf_path, &bad_export.certificate).unwrap();
    let (ok, text) = openssl(&[
        "x509",
        "-noout",
        "-text",
        "-in",
        leaf_path.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let url = format!("{}/crl/{file}", s.url);
    assert!(text.contains(&format!("URI:{url}")), "{url} not in {text}");

    for pem in [&bad_export.certificate, &good_export.certificate] {
        let (ok, text) = verify(dir.path(), &root, &chain, &first, pem);
        assert!(ok && text.contains(": OK"), "{text}");
    }

    let done = s
        .admin
        .v2_revoke(
            &s.project_id,
            &bad,
            &RevokeBody {
                reason: Some("keyCompromise".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(done.message, "success");
    let shown_bad = s.admin.show(&bad).await.unwrap();
    assert_eq!(shown_bad.status, "REVOKED");
    assert_eq!(shown_bad.revoke_reason.as_deref(), Some("keyCompromise"));
    assert_eq!(shown_bad.push_support, "OFF");

    let (crl, info) = served_crl(&s.admin, &file, |i| !i.revoked_serials.is_empty()).await;
    assert_eq!(info.revoked_serials, vec![serial]);
    assert!(info.number.unwrap() > first_number, "{info:?}");
    let (ok, text) = verify(dir.path(), &root, &chain, &crl, &bad_export.certificate);
    assert!(!ok, "a revoked certificate verified: {text}");
    assert!(text.contains("certificate revoked"), "{text}");
    let (ok, text) = verify(dir.path(), &root, &chain, &crl, &good_export.certificate);
    assert!(ok && text.contains(": OK"), "{text}");

    // A revoked certificate is not pushed (the other one is), nor revoked again.
    let resp = s
        .admin
        .call(
            Operation::V2PushCertificate,
            &[&s.project_id, &bad],
            &[],
            Some(&serde_json::to_vec(&v2_push("ELB", Some("cn-north-4"))).unwrap()),
        )
        .await
        .unwrap();
    let msg = refused(&resp, 400, "SCM.0010");
    assert!(msg.contains("REVOKED"), "{msg}");
    s.admin
        .v2_push(&s.project_id, &good, &v2_push("ELB", Some("cn-north-4")))
        .await
        .unwrap();
    let again = s
        .admin
        .call(
            Operation::V2RevokeCertificate,
            &[&s.project_id, &bad],
            &[],
            Some(&reason("again")),
        )
        .await
        .unwrap();
    refused(&again, 400, "SCM.0010");
    s.stop().await;
}

/// What may not be revoked is refused and nothing changes: a bad or missing reason (400
/// `SCM.0005` naming it), a certificate not `ISSUED` (400 `SCM.0010`), another account's
/// certificate (404 `SCM.0020`, as an unknown id), another account's project (403 `SCM.0003`),
/// no authentication (401). An unknown CRL is 404.
#[tokio::test]
async fn routes_revoke_refusals_change_nothing() {
    let s = TestServer::start().await;
    let p = s.project_id.clone();
    let id = issued(&s.admin, "keep.test").await;
    let pending = paid(&s.admin).await;
    let before = shown(&s.admin, &id).await;
    let call = |client: &Client, project: &str, cert: &str, body: Option<Vec<u8>>| {
        let (client, project, cert) = (client.clone(), project.to_owned(), cert.to_owned());
        async move {
            client
                .call(
                    Operation::V2RevokeCertificate,
                    &[&project, &cert],
                    &[],
                    body.as_deref(),
                )
                .await
                .unwrap()
        }
    };
    let long = "x".repeat(64);
    for (body, field) in [
        (Some(b"{}".to_vec()), "reason"),
        (Some(br#"{"reason": null}"#.to_vec()), "reason"),
        (Some(br#"{"reason": 7}"#.to_vec()), "reason"),
        (Some(reason(&long)), "reason"),
        (None, "body"),
    ] {
        crate::routes::invalid(&call(&s.admin, &p, &id, body).await, field);
    }
    // 63 characters (not bytes) are allowed: checked on the PAID one, refused for its status.
    let max = "é".repeat(63);
    refused(
        &call(&s.admin, &p, &pending, Some(reason(&max))).await,
        400,
        "SCM.0010",
    );
    let other = s.other_account("intruder").await;
    let other_project = other.credentials().project_id.clone().unwrap();
    refused(
        &call(&other, &other_project, &id, Some(reason("mine"))).await,
        404,
        "SCM.0020",
    );
    refused(
        &call(&s.admin, &other_project, &id, Some(reason("x"))).await,
        403,
        "SCM.0003",
    );
    refused(
        &call(&s.admin, &p, "scs12", Some(reason("x"))).await,
        400,
        "SCM.0008",
    );
    let anonymous = s
        .admin
        .send(
            s.admin
                .request(
                    Operation::V2RevokeCertificate,
                    &[&p, &id],
                    &[],
                    Some(&reason("x")),
                )
                .auth(RequestAuth::None),
        )
        .await
        .unwrap();
    refused(&anonymous, 401, "APIGW.0301");
    assert_eq!(
        shown(&s.admin, &id).await,
        before,
        "a refusal changed nothing"
    );
    assert_eq!(before["status"], "ISSUED");
    assert!(before["revoke_reason"].is_null());

    let file = s.crl_file().await;
    let (_, info) = served_crl(&s.admin, &file, |_| true).await;
    assert!(info.revoked_serials.is_empty(), "{info:?}");
    let unknown = s
        .admin
        .send(
            s.admin
                .request(
                    Operation::CertificateRevocationList,
                    &["00ff.crl"],
                    &[],
                    None,
                )
                .auth(RequestAuth::None),
        )
        .await
        .unwrap();
    refused(&unknown, 404, "APIGW.0101");
    s.stop().await;
}
