//! [`RustlsProber`] against real TLS servers on loopback (tokio-rustls, certificates from
//! scm-pki's CA), a port where nobody listens, a server that never speaks TLS and one that never
//! speaks at all.

use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use scm_core::deploy::probe::{Endpoint, TlsProber};
use scm_outbound::tls_probe::RustlsProber;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use crate::support::free_tcp_port;
use crate::support::tls::{TestCa, TlsServer};

fn endpoint(address: impl ToString, server_name: &str) -> Endpoint {
    Endpoint {
        address: address.to_string(),
        server_name: server_name.into(),
    }
}

fn sha256_hex(der: &[u8]) -> String {
    digest::digest(&digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn reports_the_served_leaf_and_whether_its_chain_verifies() {
    let ca = TestCa::new("Probe Test");
    let other = TestCa::new("Other");
    let leaf = ca.leaf(&["www.shop.test"]);
    let server = TlsServer::start(&leaf).await;
    let prober = RustlsProber::new(Duration::from_secs(10));
    let www = endpoint(server.addr, "www.shop.test");

    let served = prober.probe(&www, ca.root_pem()).await.unwrap();
    assert_eq!(served.sha256_fingerprint, sha256_hex(&leaf.der));
    assert_eq!(served.serial_hex, leaf.serial_hex);
    assert!(served.chain_verified, "the CA's root is the anchor");

    // Another root: the same certificate is reported, but its chain does not verify.
    let untrusted = prober.probe(&www, other.root_pem()).await.unwrap();
    assert_eq!(untrusted.sha256_fingerprint, served.sha256_fingerprint);
    assert!(!untrusted.chain_verified, "another root is not the anchor");

    // Several anchors: one of them is enough.
    let both = format!("{}{}", other.root_pem(), ca.root_pem());
    assert!(prober.probe(&www, &both).await.unwrap().chain_verified);

    // A name the certificate is not for: served all the same, not verified.
    let wrong = prober
        .probe(&endpoint(server.addr, "shop.test"), ca.root_pem())
        .await
        .unwrap();
    assert_eq!(wrong.sha256_fingerprint, served.sha256_fingerprint);
    assert!(!wrong.chain_verified, "the leaf is not for shop.test");

    // No anchor at all: nothing verifies.
    assert!(!prober.probe(&www, "").await.unwrap().chain_verified);
}

#[tokio::test]
async fn a_port_where_nobody_listens_fails_at_once() {
    let addr = free_tcp_port();
    let started = Instant::now();
    let e = RustlsProber::new(Duration::from_secs(20))
        .probe(&endpoint(addr, "www.shop.test"), "")
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}: {e}",
        started.elapsed()
    );
    assert!(
        e.message.contains(&format!("{addr} (SNI www.shop.test)")),
        "{e}"
    );
    assert!(e.message.contains("cannot connect"), "{e}");
}

#[tokio::test]
async fn a_server_that_does_not_speak_tls_fails_the_handshake() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        conn.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        conn.shutdown().await.unwrap();
    });
    let e = RustlsProber::new(Duration::from_secs(20))
        .probe(&endpoint(addr, "www.shop.test"), "")
        .await
        .unwrap_err();
    assert!(e.message.contains("TLS handshake failed"), "{e}");
    assert!(e.message.contains(&addr.to_string()), "{e}");
    server.await.unwrap();
}

#[tokio::test]
async fn a_server_that_never_answers_fails_after_the_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts and holds the connection, never saying a word.
    let server = tokio::spawn(async move {
        let (conn, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(conn);
    });
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let e = RustlsProber::new(timeout)
        .probe(&endpoint(addr, "www.shop.test"), "")
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        took >= timeout && took < Duration::from_secs(10),
        "took {took:?}: {e}"
    );
    assert!(e.message.contains("no TLS handshake within"), "{e}");
    assert!(e.message.contains("SNI www.shop.test"), "{e}");
    server.abort();
}
