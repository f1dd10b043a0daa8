//! The OpenSCM extensions for versions and renewal over HTTP: list a certificate's versions and
//! history, renew it now (a new version with a new key and the same names, exported as current,
//! the earlier one still exportable by number), turn auto-renew off and on; and their refusals
//! (malformed, unknown and another account's ids, a certificate not issued, a bad version or
//! body), each changing nothing.

use scm_client::Client;
use scm_proto::Operation;

use crate::harness::TestServer;
use crate::routes::{issued, paid, refused, shown};

async fn wait_for_version(c: &Client, id: &str, version: u32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let v = c.certificate_versions(id).await.unwrap();
        if v.current_version == Some(version) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "version {version} of {id} not issued within 20 s; versions: {:?}, events: {:?}",
            v.versions,
            v.events
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn routes_versions_renew_now_adds_a_version_and_keeps_the_earlier_one() {
    let s = TestServer::start().await;
    let a = &s.admin;
    let id = issued(a, "www.versions.test").await;
    let v = a.certificate_versions(&id).await.unwrap();
    assert_eq!(v.current_version, Some(1));
    assert!(v.auto_renew);
    assert!(v.renew_at.is_some());
    assert_eq!(v.versions.len(), 1);
    assert!(v.versions[0].current);
    assert_eq!(v.versions[0].reason, "issued");
    assert!(
        v.events.iter().any(|e| e.event == "issued"),
        "{:?}",
        v.events
    );
    let first = a.export(&id).await.unwrap();

    let r = a.renew(&id).await.unwrap();
    assert_eq!(r.renewing_version, 1);
    wait_for_version(a, &id, 2).await;
    let v = a.certificate_versions(&id).await.unwrap();
    assert_eq!(
        v.versions.iter().map(|x| x.version).collect::<Vec<_>>(),
        [2, 1]
    );
    assert_eq!(v.versions[0].reason, "renewal-manual");
    assert_ne!(v.versions[0].serial_number, v.versions[1].serial_number);
    let renewed = a.export(&id).await.unwrap();
    assert_ne!(renewed.certificate, first.certificate);
    assert_ne!(renewed.private_key, first.private_key, "a new key");
    // The earlier version is still there, with its own key.
    let old = a.export_version(&id, 1).await.unwrap();
    assert_eq!(old.certificate, first.certificate);
    assert_eq!(old.private_key, first.private_key);
    assert_eq!(
        a.export_version(&id, 2).await.unwrap().certificate,
        renewed.certificate
    );
    // ShowCertificate describes the current version.
    let show = shown(a, &id).await;
    assert_eq!(show["status"], "ISSUED");
    assert_eq!(show["fingerprint"], v.versions[0].fingerprint);

    // Auto-renew off and on.
    assert!(!a.set_auto_renew(&id, false).await.unwrap().auto_renew);
    let off = a.certificate_versions(&id).await.unwrap();
    assert!(!off.auto_renew && off.renew_at.is_none());
    assert!(a.set_auto_renew(&id, true).await.unwrap().auto_renew);
    let on = a.certificate_versions(&id).await.unwrap();
    assert!(on.auto_renew && on.renew_at.is_some());
    assert!(
        on.events
            .iter()
            .any(|e| e.event == "auto_renew" && e.detail == "off")
    );
    s.stop().await;
}

#[tokio::test]
async fn routes_versions_refusals_change_nothing() {
    let s = TestServer::start().await;
    let a = &s.admin;
    let id = issued(a, "www.refuse.test").await;
    let before = a.certificate_versions(&id).await.unwrap();
    for op in [
        Operation::ListCertificateVersions,
        Operation::RenewCertificate,
        Operation::ExportCertificateVersion,
    ] {
        let params: &[&str] = if op == Operation::ExportCertificateVersion {
            &["scs123", "1"]
        } else {
            &["scs123"]
        };
        refused(
            &a.call(op, params, &[], None).await.unwrap(),
            400,
            "SCM.0008",
        );
        let unknown: &[&str] = if op == Operation::ExportCertificateVersion {
            &["scs1000000000000", "1"]
        } else {
            &["scs1000000000000"]
        };
        refused(
            &a.call(op, unknown, &[], None).await.unwrap(),
            404,
            "SCM.0020",
        );
    }
    // Another account's certificate answers as an unknown one, and stays as it was.
    let other = s.other_account("versions-other").await;
    let theirs = issued(&other, "www.theirs.test").await;
    let theirs_before = other.certificate_versions(&theirs).await.unwrap();
    refused(
        &a.call(Operation::RenewCertificate, &[&theirs], &[], None)
            .await
            .unwrap(),
        404,
        "SCM.0020",
    );
    refused(
        &a.call(
            Operation::ExportCertificateVersion,
            &[&theirs, "1"],
            &[],
            None,
        )
        .await
        .unwrap(),
        404,
        "SCM.0020",
    );
    let body = br#"{"auto_renew": false}"#;
    refused(
        &a.call(Operation::UpdateAutoRenew, &[&theirs], &[], Some(body))
            .await
            .unwrap(),
        404,
        "SCM.0020",
    );
    let theirs_after = other.certificate_versions(&theirs).await.unwrap();
    assert_eq!(theirs_after.auto_renew, theirs_before.auto_renew);
    assert_eq!(theirs_after.versions.len(), 1);
    // A bad version number, and one that does not exist, name the field.
    for bad in ["0", "x", "-1", "99999999999"] {
        let resp = a
            .call(Operation::ExportCertificateVersion, &[&id, bad], &[], None)
            .await
            .unwrap();
        let said = refused(&resp, 400, "SCM.0005");
        assert!(said.contains("version"), "{said}");
    }
    let said = refused(
        &a.call(Operation::ExportCertificateVersion, &[&id, "7"], &[], None)
            .await
            .unwrap(),
        400,
        "SCM.0005",
    );
    assert!(said.contains("no version 7"), "{said}");
    // The auto-renew body must say on or off.
    for body in [&b"{}"[..], b"{\"auto_renew\": \"yes\"}", b"", b"[1]"] {
        let resp = a
            .call(Operation::UpdateAutoRenew, &[&id], &[], Some(body))
            .await
            .unwrap();
        assert_eq!(resp.status, 400, "{}", resp.text());
    }
    // A certificate not issued yet cannot be renewed or exported by version.
    let bought = paid(a).await;
    refused(
        &a.call(Operation::RenewCertificate, &[&bought], &[], None)
            .await
            .unwrap(),
        400,
        "SCM.0010",
    );
    refused(
        &a.call(
            Operation::ExportCertificateVersion,
            &[&bought, "1"],
            &[],
            None,
        )
        .await
        .unwrap(),
        400,
        "SCM.0010",
    );
    let after = a.certificate_versions(&id).await.unwrap();
    assert_eq!(after.versions.len(), before.versions.len());
    assert_eq!(after.auto_renew, before.auto_renew);
    s.stop().await;
}
