//! The server's read caches and writes made by another process (the admin CLI, another server on
//! the same database): here a second store on the server's own SQLite file. Each side of the
//! caches follows its own revision counter, so the certificate work that runs all the time in the
//! background (deliveries, issuance, renewal, expiry) never empties the credential cache that
//! every request's authentication reads.

use std::time::Duration;

use scm_client::ClientError;
use scm_core::service::CacheStat;
use scm_proto::{AccessKeyId, CertificateId, DomainId};
use scm_store::{Accounts, PushOutcome, PushRecord, Pushes, SqlStore};

use crate::harness::{TestServer, eventually};
use crate::metrics_audit::{sample, scrape};
use crate::routes::issued;

/// Long enough for a loaded machine; a change is due within one poll (0.1 s).
const WITHIN: Duration = Duration::from_secs(10);

fn credentials(s: &TestServer) -> CacheStat {
    s.scm
        .cache_figures()
        .caches
        .into_iter()
        .find(|c| c.name == "credentials")
        .unwrap()
}

async fn invalidations(s: &TestServer) -> (f64, f64) {
    let (_, body) = scrape(&s.url, None).await;
    let side = |name: &str| {
        sample(
            &body,
            &format!("openscm_cache_invalidations_total{{side=\"{name}\"}}"),
        )
        .unwrap_or_else(|| panic!("no invalidations of side {name}: {body}"))
    };
    (side("access"), side("certificates"))
}

#[tokio::test]
async fn certificate_writes_elsewhere_keep_the_credential_cache_and_credential_writes_arrive() {
    let s = TestServer::start().await;
    let id = issued(&s.admin, "coherence.cache.test").await;
    let p = s.project_id.clone();
    let elsewhere = SqlStore::connect(&s.db).await.unwrap();
    // Cached: the admin's credential (every request) and the certificate's (empty) history.
    assert!(
        s.admin
            .v2_push_history(&p, &id)
            .await
            .unwrap()
            .push_history_list
            .is_empty()
    );
    let before = credentials(&s);
    assert_eq!(before.entries, 1);
    let (access_before, _) = invalidations(&s).await;

    // A delivery recorded by another process: the history shows it within a poll...
    elsewhere
        .record_push(&PushRecord {
            cert_id: CertificateId::try_from(id.as_str()).unwrap(),
            domain_id: DomainId::try_from(s.domain_id.as_str()).unwrap(),
            pushed_ms: 1,
            service: "ELB".into(),
            region: Some("cn-north-4".into()),
            outcome: PushOutcome::Success,
            detail: String::new(),
            targets: "web".into(),
            version: None,
            verified: false,
            served_serial: None,
            attempt: 0,
        })
        .await
        .unwrap();
    let mut requests = 0;
    eventually("the push recorded elsewhere in the history", WITHIN, || {
        requests += 1;
        let (admin, p, id) = (&s.admin, &p, &id);
        async move {
            let h = admin
                .v2_push_history(p, id)
                .await
                .map_err(|e| e.to_string())?;
            match h.push_history_list.len() {
                1 => Ok(()),
                n => Err(format!("{n} pushes")),
            }
        }
    })
    .await;
    // ...and every one of those requests authenticated from the cache: the credential was never
    // dropped, so never read from the store again.
    let after = credentials(&s);
    assert_eq!(
        (after.entries, after.misses),
        (1, before.misses),
        "the credential stayed cached ({requests} requests)"
    );
    assert!(
        after.hits >= before.hits + requests,
        "{before:?} -> {after:?}"
    );
    let (access_after, certificates_after) = invalidations(&s).await;
    assert_eq!(
        access_after, access_before,
        "the access side was never invalidated"
    );
    assert!(certificates_after >= 1.0);

    // A credential revoked by another process is refused within a poll (the access side moved).
    let ak = AccessKeyId::try_from(s.admin.credentials().access_key.as_str()).unwrap();
    assert!(elsewhere.revoke_credential(&ak, 2).await.unwrap());
    eventually("the revocation made elsewhere in force", WITHIN, || {
        let (admin, p, id) = (&s.admin, &p, &id);
        async move {
            match admin.v2_push_history(p, id).await {
                Err(ClientError::Api { status: 401, .. }) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await;
    let (access_revoked, _) = invalidations(&s).await;
    assert!(access_revoked > access_after);
    elsewhere.close().await;
    s.stop().await;
}
