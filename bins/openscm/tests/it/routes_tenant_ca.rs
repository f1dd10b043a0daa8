//! Each account's own CA over HTTP (issue 19, point 15): `GET /v3/scm/ca/root` answers each
//! account its own root; accounts A and B are both issued `www.shop.test`, and the OpenSSL CLI
//! (which must be installed) verifies A's against A's root and refuses B's.

use std::process::Command;

use scm_client::Client;
use scm_proto::v3::CaRootResponse;

use crate::harness::TestServer;
use crate::routes::issued;

/// `openssl verify -CAfile root -untrusted chain leaf`: whether it verifies, and what it said.
fn openssl_verify(
    dir: &std::path::Path,
    root_pem: &str,
    chain_pem: &str,
    leaf_pem: &str,
) -> (bool, String) {
    let (root, chain, leaf) = (
        dir.join("root.pem"),
        dir.join("chain.pem"),
        dir.join("leaf.pem"),
    );
    std::fs::write(&root, root_pem).unwrap();
    std::fs::write(&chain, chain_pem).unwrap();
    std::fs::write(&leaf, leaf_pem).unwrap();
    let out = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(&root)
        .arg("-untrusted")
        .arg(&chain)
        .arg(&leaf)
        .output()
        .expect("the openssl CLI must be installed to run these tests");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn root_of(client: &Client) -> CaRootResponse {
    client.ca_root().await.unwrap()
}

#[tokio::test]
async fn routes_tenant_ca_a_trust_store_refuses_another_accounts_certificate() {
    let s = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let a = &s.admin;
    let b = s.other_account("shop-b").await;
    let (root_a, root_b) = (root_of(a).await, root_of(&b).await);
    assert_ne!(root_a.root_certificate, root_b.root_certificate);
    assert_ne!(root_a.ca_id, root_b.ca_id);
    assert!(root_a.retired_root_certificates.is_empty());
    assert_eq!(root_a.root_certificate, s.admin_roots().await.root_pem);
    // Asking again answers the same root (the CA is made once).
    assert_eq!(root_of(&b).await.root_certificate, root_b.root_certificate);

    let cert_a = a.export(&issued(a, "www.shop.test").await).await.unwrap();
    let cert_b = b.export(&issued(&b, "www.shop.test").await).await.unwrap();
    let check = |root: &CaRootResponse, e: &scm_proto::v3::ExportCertificateResponse| {
        openssl_verify(
            dir.path(),
            &root.root_certificate,
            &e.certificate_chain,
            &e.certificate,
        )
    };
    let (ok, said) = check(&root_a, &cert_a);
    assert!(ok, "A's own certificate: {said}");
    let (ok, said) = check(&root_b, &cert_b);
    assert!(ok, "B's own certificate: {said}");
    let (ok, said) = check(&root_a, &cert_b);
    assert!(!ok, "A's trust store accepts B's www.shop.test: {said}");
    let (ok, said) = check(&root_b, &cert_a);
    assert!(!ok, "B's trust store accepts A's www.shop.test: {said}");
    s.stop().await;
}
