//! The `haproxy` push target against a real HAProxy: certificates swapped and added through the
//! runtime API with no reload, refusals classified, and no failed request under load.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{CertificateParams, DnType, KeyPair};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use scm_core::deploy::{CertificateFacts, DeliveryContext, DeliveryErrorKind, Deployer, Material};
use scm_outbound::deploy::haproxy::{HaproxyConfig, HaproxyDeployer};
use zeroize::Zeroizing;

use crate::support::haproxy::Haproxy;
use crate::support::require_binary;

/// A self-signed certificate and its key.
struct TestCert {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl TestCert {
    fn new(name: &str, label: &str) -> Self {
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} {label}"));
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// What HAProxy loads: the certificate then its key.
    fn bundle(&self) -> String {
        format!("{}{}", self.cert_pem, self.key_pem)
    }

    fn material(&self) -> Material {
        self.material_with_key(&self.key_pem)
    }

    fn material_with_key(&self, key_pem: &str) -> Material {
        Material {
            leaf_pem: self.cert_pem.clone(),
            chain_pem: String::new(),
            fullchain_pem: self.cert_pem.clone(),
            key_pem: Zeroizing::new(key_pem.to_owned()),
            facts: CertificateFacts {
                certificate_id: "scs1700000000000".into(),
                version: 1,
                names: vec!["www.shop.test".into()],
                serial_hex: "01".into(),
                sha256_fingerprint: "00".repeat(32),
                not_after_ms: 1_800_000_000_000,
            },
            context: DeliveryContext {
                target: "edge".into(),
                job_id: 1,
                attempt: 1,
            },
        }
    }
}

fn target(socket: &Path, cert_path: &Path, crt_list: Option<&Path>) -> HaproxyDeployer {
    HaproxyDeployer::new(&HaproxyConfig {
        name: "edge".into(),
        account: "0123456789abcdef0123456789abcdef".into(),
        service: "ELB".into(),
        region: Some("cn-north-4".into()),
        resource_id: None,
        verify: None,
        redeliver_on_drift: false,
        socket: socket.to_owned(),
        cert_path: cert_path.to_owned(),
        crt_list: crt_list.map(Path::to_owned),
        timeout_seconds: Some(10),
    })
    .unwrap()
}

/// Accepts any certificate and records the leaf it was shown.
#[derive(Debug)]
struct RecordLeaf {
    provider: Arc<rustls::crypto::CryptoProvider>,
    leaf: Mutex<Option<Vec<u8>>>,
}

impl ServerCertVerifier for RecordLeaf {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.leaf.lock().unwrap() = Some(end_entity.to_vec());
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The leaf HAProxy presents to a new TLS handshake asking for `server_name`.
async fn served(h: &Haproxy, server_name: &str) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(RecordLeaf {
        provider: provider.clone(),
        leaf: Mutex::new(None),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    let name = ServerName::try_from(server_name.to_owned()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp))
        .await
        .unwrap_or_else(|_| panic!("no TLS handshake within 10 s\n{}", h.log()))
        .unwrap_or_else(|e| panic!("TLS handshake failed: {e}\n{}", h.log()));
    verifier.leaf.lock().unwrap().clone().unwrap()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[tokio::test]
async fn a_swap_is_served_at_once_without_a_reload() {
    let a = TestCert::new("www.shop.test", "A");
    let b = TestCert::new("www.shop.test", "B");
    let mut h = Haproxy::start(&[("site.pem", &a.bundle())]).await;
    assert_eq!(
        served(&h, "www.shop.test").await,
        a.der,
        "HAProxy starts with A"
    );
    let pid = h.pid();
    let info = h.command("show info").await;
    assert!(info.contains(&format!("Pid: {pid}\n")), "{info}");
    let site = h.cert_path("site.pem");
    let t = target(&h.socket, &site, None);
    t.deliver(&b.material()).await.unwrap();
    assert_eq!(
        served(&h, "www.shop.test").await,
        b.der,
        "the first handshake after the delivery gets B"
    );
    assert_eq!(read(&site), b.bundle(), "a restart would serve B too");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&site).unwrap().permissions())
            & 0o777,
        0o600
    );
    assert!(h.running(), "HAProxy still runs:\n{}", h.log());
    let info = h.command("show info").await;
    assert!(
        info.contains(&format!("Pid: {pid}\n")),
        "the same process serves (no reload):\n{info}"
    );
    // Delivering again converges; and back to A.
    t.deliver(&b.material()).await.unwrap();
    t.deliver(&a.material()).await.unwrap();
    assert_eq!(served(&h, "www.shop.test").await, a.der);
    assert_eq!(read(&site), a.bundle());
    let listing = h.command("show ssl cert").await;
    assert!(!listing.contains("# transaction"), "{listing}");
}

#[tokio::test]
async fn a_new_name_is_added_to_the_crt_list() {
    let a = TestCert::new("www.shop.test", "A");
    let other = TestCert::new("other.shop.test", "O");
    let h = Haproxy::start(&[("site.pem", &a.bundle())]).await;
    let path = h.cert_path("other.pem");
    let t = target(&h.socket, &path, Some(&h.crt_list));
    t.deliver(&other.material()).await.unwrap();
    assert_eq!(served(&h, "other.shop.test").await, other.der);
    assert_eq!(
        served(&h, "www.shop.test").await,
        a.der,
        "the other name still gets its certificate"
    );
    let line = format!("{}\n", path.display());
    assert_eq!(
        read(&h.crt_list),
        format!("{}\n{line}", h.cert_path("site.pem").display()),
        "a restart would serve it too"
    );
    assert_eq!(read(&path), other.bundle());
    // Again: HAProxy knows and lists it now; nothing is listed twice.
    t.deliver(&other.material()).await.unwrap();
    assert_eq!(read(&h.crt_list).matches(&line).count(), 1);
    let listed = h
        .command(&format!("show ssl crt-list {}", h.crt_list.display()))
        .await;
    assert_eq!(listed.matches(&line).count(), 1, "{listed}");
    assert_eq!(served(&h, "other.shop.test").await, other.der);
}

#[tokio::test]
async fn unknown_certificates_and_mismatched_keys_are_refused() {
    let a = TestCert::new("www.shop.test", "A");
    let b = TestCert::new("www.shop.test", "B");
    let stranger = KeyPair::generate().unwrap().serialize_pem();
    let h = Haproxy::start(&[("site.pem", &a.bundle())]).await;

    // HAProxy does not know it and there is nowhere to add it: nothing changes.
    let unknown = h.cert_path("unknown.pem");
    let e = target(&h.socket, &unknown, None)
        .deliver(&b.material())
        .await
        .unwrap_err();
    assert_eq!(e.kind, DeliveryErrorKind::Misconfigured, "{e}");
    assert!(e.message.contains("crt_list"), "{e}");
    assert!(!unknown.exists());

    // A key that does not match: refused at commit, aborted, old certificate and file kept.
    let site = h.cert_path("site.pem");
    let t = target(&h.socket, &site, None);
    let e = t
        .deliver(&b.material_with_key(&stranger))
        .await
        .unwrap_err();
    assert_eq!(e.kind, DeliveryErrorKind::Permanent, "{e}");
    assert!(!e.message.contains("PRIVATE KEY"), "{e}");
    assert_eq!(served(&h, "www.shop.test").await, a.der, "still A");
    assert_eq!(read(&site), a.bundle(), "the file is put back");
    let listing = h.command("show ssl cert").await;
    assert!(!listing.contains("# transaction"), "aborted: {listing}");
    t.deliver(&b.material()).await.unwrap();
    assert_eq!(served(&h, "www.shop.test").await, b.der);

    // The same for a new certificate: deleted again, not listed, crt-list file unchanged.
    let list_before = read(&h.crt_list);
    let other = TestCert::new("other.shop.test", "O");
    let new = h.cert_path("other.pem");
    let e = target(&h.socket, &new, Some(&h.crt_list))
        .deliver(&other.material_with_key(&stranger))
        .await
        .unwrap_err();
    assert_eq!(e.kind, DeliveryErrorKind::Permanent, "{e}");
    let listing = h.command("show ssl cert").await;
    assert!(!listing.contains("other.pem"), "{listing}");
    assert_eq!(read(&h.crt_list), list_before);
    assert!(!new.exists());
}

#[tokio::test]
async fn a_transaction_open_on_another_certificate_is_left_alone() {
    let a = TestCert::new("www.shop.test", "A");
    let b = TestCert::new("www.shop.test", "B");
    let other = TestCert::new("other.shop.test", "O");
    let h = Haproxy::start(&[("site.pem", &a.bundle()), ("other.pem", &other.bundle())]).await;
    let foreign = h.cert_path("other.pem");
    // An operator's transaction, not committed yet.
    let opened = h
        .command(&format!(
            "set ssl cert {} <<\n{}",
            foreign.display(),
            other.bundle()
        ))
        .await;
    assert!(opened.contains("Transaction created"), "{opened}");
    let t = target(&h.socket, &h.cert_path("site.pem"), None);
    let e = t.deliver(&b.material()).await.unwrap_err();
    assert_eq!(e.kind, DeliveryErrorKind::Transient, "{e}");
    assert!(e.message.contains("other.pem"), "{e}");
    let listing = h.command("show ssl cert").await;
    assert!(
        listing.contains(&format!("*{}", foreign.display())),
        "the operator's transaction is still open: {listing}"
    );
    assert_eq!(served(&h, "www.shop.test").await, a.der);
    h.command(&format!("abort ssl cert {}", foreign.display()))
        .await;
    t.deliver(&b.material()).await.unwrap();
    assert_eq!(served(&h, "www.shop.test").await, b.der);
}

#[tokio::test]
async fn a_missing_socket_is_misconfigured_and_a_stopped_haproxy_transient() {
    let a = TestCert::new("www.shop.test", "A");
    let d = tempfile::tempdir().unwrap();
    let e = target(
        &d.path().join("none.sock"),
        &d.path().join("site.pem"),
        None,
    )
    .deliver(&a.material())
    .await
    .unwrap_err();
    assert_eq!(e.kind, DeliveryErrorKind::Misconfigured, "{e}");
    assert!(e.message.contains("none.sock"), "{e}");

    let mut h = Haproxy::start(&[("site.pem", &a.bundle())]).await;
    h.kill();
    assert!(h.socket.exists(), "the socket file stays after a kill");
    let b = TestCert::new("www.shop.test", "B");
    let site = h.cert_path("site.pem");
    let e = target(&h.socket, &site, None)
        .deliver(&b.material())
        .await
        .unwrap_err();
    assert_eq!(e.kind, DeliveryErrorKind::Transient, "{e}");
    assert_eq!(read(&site), a.bundle(), "nothing written");
}

/// HAProxy's count of the connections it accepted.
async fn cumulated_connections(h: &Haproxy) -> u64 {
    let info = h.command("show info").await;
    info.lines()
        .find_map(|l| l.strip_prefix("CumConns: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no CumConns in show info:\n{info}"))
}

#[tokio::test]
async fn a_hundred_swaps_under_load_fail_no_request() {
    let wrk = require_binary("wrk", "wrk");
    let a = TestCert::new("www.shop.test", "A");
    let b = TestCert::new("www.shop.test", "B");
    let mut h = Haproxy::start(&[("site.pem", &a.bundle())]).await;
    let pid = h.pid();
    let out_path = tempfile::NamedTempFile::new().unwrap();
    // A new TLS handshake per request (Connection: close), so that handshakes meet the swaps;
    // stopped with SIGINT (wrk then prints its report) once the swaps are done.
    let mut load = tokio::process::Command::new(&wrk)
        .args(["-t2", "-c8", "-d120s", "-H", "Connection: close"])
        .arg(format!("https://{}/", h.addr))
        .stdin(Stdio::null())
        .stdout(out_path.reopen().unwrap())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let wrk_pid = load.id().unwrap();
    // wrk runs once HAProxy counts its connections (its report is buffered until it ends).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let connections = cumulated_connections(&h).await;
        if connections > 100 {
            break;
        }
        assert!(
            Instant::now() < deadline && load.try_wait().unwrap().is_none(),
            "wrk is not loading HAProxy ({connections} connections so far):\n{}",
            read(out_path.path())
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t = target(&h.socket, &h.cert_path("site.pem"), None);
    let started = Instant::now();
    for i in 0..100 {
        let next = if i % 2 == 0 { &b } else { &a };
        t.deliver(&next.material())
            .await
            .unwrap_or_else(|e| panic!("swap {i}: {e}\n{}", h.log()));
    }
    let swaps = started.elapsed();
    assert!(
        load.try_wait().unwrap().is_none(),
        "wrk ended before the swaps did:\n{}",
        read(out_path.path())
    );
    let stopped = std::process::Command::new("kill")
        .args(["-INT", &wrk_pid.to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let status = tokio::time::timeout(Duration::from_secs(30), load.wait())
        .await
        .expect("wrk stops on SIGINT")
        .unwrap();
    let report = read(out_path.path());
    assert!(status.success(), "wrk: {status}\n{report}");
    let requests: u64 = report
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in wrk's report:\n{report}"));
    assert!(
        requests > 100,
        "wrk made only {requests} requests:\n{report}"
    );
    assert!(
        !report.contains("Socket errors") && !report.contains("Non-2xx"),
        "requests failed during 100 swaps ({swaps:?}):\n{report}"
    );
    assert_eq!(served(&h, "www.shop.test").await, a.der, "the last swap");
    assert!(h.running(), "{}", h.log());
    assert_eq!(h.pid(), pid);
    assert!(
        h.command("show info")
            .await
            .contains(&format!("Pid: {pid}\n"))
    );
    eprintln!("100 swaps in {swaps:?} under load: {requests} requests, none failed");
}
