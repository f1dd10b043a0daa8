//! No existence oracle: whatever belongs to another account answers exactly as what does not
//! exist, in content and in time, so that certificate ids (millisecond timestamps, easy to
//! guess) cannot be probed across tenants.

use std::sync::Arc;
use std::time::{Duration, Instant};

use scm_client::{Client, RawResponse};
use scm_core::SystemClock;
use scm_proto::Operation;

use crate::harness::{TestServer, file_target};
use crate::remote_store::RemoteStore;
use crate::routes::{
    apply_body, buy_body, issued, paid, refused, shown, v2_application, v2_push, v3_push,
};

fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// An id no certificate has (ids are allocated upwards from the clock).
const NEVER_ISSUED: &str = "scs9999999999999";

/// What an answer shows a client: status, `error_code`, `error_msg`, and the bytes of the body
/// and of the headers that describe it.
fn face(resp: &RawResponse) -> (u16, String, String, Vec<u8>, Option<String>, Option<String>) {
    let error = resp.error().unwrap_or_else(|| panic!("{}", resp.text()));
    (
        resp.status,
        error.error_code,
        error.error_msg,
        resp.body.to_vec(),
        resp.header("content-type").map(str::to_owned),
        resp.header("content-length").map(str::to_owned),
    )
}

/// Every route that takes a certificate id, with a body that would be accepted for the caller's
/// own `PAID` (apply, save, complete) or `ISSUED` (push) certificate.
fn certificate_routes(project: &str) -> Vec<(Operation, Vec<String>, Option<Vec<u8>>)> {
    let v2 = |op, body: Option<Vec<u8>>| (op, vec![project.to_owned()], body);
    let v3 = |op, body: Option<Vec<u8>>| (op, Vec::new(), body);
    vec![
        v2(
            Operation::V2SaveApplication,
            Some(json(&v2_application("hijack.tenancy.test"))),
        ),
        v2(
            Operation::V2CompleteApplication,
            Some(json(&v2_application("hijack.tenancy.test"))),
        ),
        v2(Operation::V2CompleteApplication, None),
        v2(
            Operation::V2PushCertificate,
            Some(json(&v2_push("ELB", Some("cn-north-4")))),
        ),
        v2(Operation::V2ListPushHistory, None),
        v3(Operation::ShowCertificate, None),
        v3(
            Operation::ApplyCertificate,
            Some(json(&apply_body("hijack.tenancy.test"))),
        ),
        v3(Operation::ExportCertificate, None),
        v3(
            Operation::PushCertificate,
            Some(json(&v3_push("ELB", Some("cn-north-4")))),
        ),
    ]
}

async fn ask(
    client: &Client,
    (op, prefix, body): &(Operation, Vec<String>, Option<Vec<u8>>),
    id: &str,
) -> RawResponse {
    let mut params: Vec<&str> = prefix.iter().map(String::as_str).collect();
    params.push(id);
    client
        .call(*op, &params, &[], body.as_deref())
        .await
        .unwrap()
}

/// On every route that takes a certificate id, another account's certificate (bought, and
/// issued; cached by its owner) answers byte for byte what an id never issued answers: 404
/// `SCM.0020` "Incorrect certificate ID.", and the certificate is left alone. Push targets exist
/// for both accounts, so a push let through would show.
#[tokio::test]
async fn routes_another_accounts_certificate_is_answered_as_an_unknown_one() {
    let s = TestServer::start_with(|account, out| {
        vec![file_target(
            "mine",
            account,
            "ELB",
            "cn-north-4",
            out,
            &["true"],
        )]
    })
    .await;
    let other = s.other_account("other").await;
    let theirs_paid = paid(&other).await;
    let theirs_issued = issued(&other, "www.theirs.test").await;
    // In the cache, for their owner.
    let before = (
        shown(&other, &theirs_paid).await,
        shown(&other, &theirs_issued).await,
    );
    for route in certificate_routes(&s.project_id) {
        let unknown = ask(&s.admin, &route, NEVER_ISSUED).await;
        let msg = refused(&unknown, 404, "SCM.0020");
        assert_eq!(msg, "Incorrect certificate ID.", "{}", route.0);
        for theirs in [&theirs_paid, &theirs_issued] {
            let resp = ask(&s.admin, &route, theirs).await;
            refused(&resp, 404, "SCM.0020");
            assert_eq!(face(&resp), face(&unknown), "{} {theirs}", route.0);
        }
    }
    // By token too.
    let token = s.admin.create_token().await.unwrap();
    let by_token = s.admin.with_token(&token.token);
    for route in certificate_routes(&s.project_id) {
        let unknown = ask(&by_token, &route, NEVER_ISSUED).await;
        let theirs = ask(&by_token, &route, &theirs_issued).await;
        refused(&theirs, 404, "SCM.0020");
        assert_eq!(face(&theirs), face(&unknown), "{}", route.0);
    }
    assert_eq!(
        (
            shown(&other, &theirs_paid).await,
            shown(&other, &theirs_issued).await,
        ),
        before,
        "nothing changed"
    );
    let other_project = other.credentials().project_id.clone().unwrap();
    let history = other
        .v2_push_history(&other_project, &theirs_issued)
        .await
        .unwrap();
    assert!(history.push_history_list.is_empty());
    assert!(!s.out.join("mine.crt").exists(), "nothing was pushed");
    s.stop().await;
}

/// Tenancy refusals that remain 403 `SCM.0003` (a v2 path project, `X-Project-Id`,
/// `X-Domain-Id` that is not the caller's) answer byte for byte the same for another account's
/// project or domain as for one that does not exist, or a malformed one.
#[tokio::test]
async fn routes_another_accounts_project_or_domain_is_answered_as_an_unknown_one() {
    let s = TestServer::start().await;
    let other = s.other_account("other").await;
    let other_project = other.credentials().project_id.clone().unwrap();
    let other_domain = other.credentials().domain_id.clone().unwrap();
    let mine = paid(&s.admin).await;
    let unknown_hex = "0123456789abcdef0123456789abcdef";
    let buy = json(&buy_body());

    let mut answers = Vec::new();
    for project in [other_project.as_str(), unknown_hex, "not-a-project"] {
        let by_path = s
            .admin
            .call(Operation::V2ListPushHistory, &[project, &mine], &[], None)
            .await
            .unwrap();
        let by_header = s
            .admin
            .send(
                s.admin
                    .request(Operation::ShowCertificate, &[&mine], &[], None)
                    .header("X-Project-Id", project),
            )
            .await
            .unwrap();
        answers.push((format!("project {project} in the path"), by_path));
        answers.push((format!("X-Project-Id {project}"), by_header));
    }
    for domain in [other_domain.as_str(), unknown_hex, "not-a-domain"] {
        let resp = s
            .admin
            .send(
                s.admin
                    .request(Operation::SubscribeCertificate, &[], &[], Some(&buy))
                    .without_header("X-Domain-Id")
                    .header("X-Domain-Id", domain),
            )
            .await
            .unwrap();
        answers.push((format!("X-Domain-Id {domain}"), resp));
    }
    let first = face(&answers[0].1);
    assert_eq!((first.0, first.1.as_str()), (403, "SCM.0003"));
    for (what, resp) in &answers {
        refused(resp, 403, "SCM.0003");
        assert_eq!(face(resp), first, "{what}");
    }
    assert_eq!(crate::routes::count(&s.admin).await, 1, "nothing bought");
    s.stop().await;
}

/// The median of `samples`.
fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Another account's certificate takes as long to refuse as an id never issued, even while it is
/// in the server's cache for its owner: both go to the store (one query by id and account).
///
/// The store is made 5 ms away (as a database across a network), so that a request that skips
/// the database (answering from memory) is several times faster than one that does not, far
/// beyond the noise of a loaded machine; 200 probes of each kind, interleaved, and the medians
/// must be within 2x or 2 ms of each other, whichever is larger.
#[tokio::test]
async fn routes_another_accounts_certificate_takes_as_long_as_an_unknown_one() {
    let latency = Duration::from_millis(5);
    let s = TestServer::start_on(
        Arc::new(SystemClock),
        |store| Arc::new(RemoteStore::new(store, latency)),
        |_, _, _| {},
    )
    .await;
    let other = s.other_account("other").await;
    let theirs = issued(&other, "www.timing.test").await;
    let probe = |id: String| {
        let admin = s.admin.clone();
        async move {
            let started = Instant::now();
            let resp = admin
                .call(Operation::ShowCertificate, &[&id], &[], None)
                .await
                .unwrap();
            let took = started.elapsed();
            assert_eq!(resp.status, 404, "{}", resp.text());
            took
        }
    };
    // Warm up connections and caches; the owner keeps its certificate cached throughout.
    shown(&other, &theirs).await;
    for _ in 0..10 {
        probe(theirs.clone()).await;
        probe(NEVER_ISSUED.to_owned()).await;
    }
    let (mut foreign, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..200 {
        if i % 20 == 0 {
            shown(&other, &theirs).await;
        }
        // Alternate which goes first, so that neither always follows the other.
        if i % 2 == 0 {
            foreign.push(probe(theirs.clone()).await);
            unknown.push(probe(NEVER_ISSUED.to_owned()).await);
        } else {
            unknown.push(probe(NEVER_ISSUED.to_owned()).await);
            foreign.push(probe(theirs.clone()).await);
        }
    }
    let (foreign, unknown) = (median(&mut foreign), median(&mut unknown));
    eprintln!("medians: another account's certificate {foreign:?}, an unknown id {unknown:?}");
    let (lo, hi) = (foreign.min(unknown), foreign.max(unknown));
    let allowed = (lo * 2).max(lo + Duration::from_millis(2));
    assert!(
        hi <= allowed,
        "another account's certificate answers in {foreign:?} (median), an unknown id in \
         {unknown:?}: one of them skips the database"
    );
    // Both went to the store (a database miss is at least its latency away).
    assert!(
        lo >= latency,
        "foreign {foreign:?}, unknown {unknown:?}: faster than the store"
    );
    s.stop().await;
}
