//! A throwaway two-level CA (scm-pki's own) issuing serving certificates, and a TLS server on
//! loopback (tokio-rustls) that serves one of them and answers nothing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use scm_pki::{GeneratedCa, Issuer, KeyAlgorithm, PrivateKey, ServingHost, generate_ca};
use time::{Duration, OffsetDateTime};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A test CA: its root and its issuing intermediate.
pub struct TestCa {
    ca: GeneratedCa,
    issuer: Issuer,
}

/// A serving certificate: its leaf, the chain served (leaf, intermediate) and its key.
pub struct Leaf {
    /// The leaf's DER.
    pub der: Vec<u8>,
    /// The leaf's serial, lowercase hex.
    pub serial_hex: String,
    /// Leaf then intermediate, PEM.
    pub chain_pem: String,
    /// The key, PKCS#8 PEM.
    pub key_pem: String,
    key: PrivateKey,
}

impl TestCa {
    /// A fresh CA named `prefix`.
    pub fn new(prefix: &str) -> Self {
        let ca = generate_ca(prefix, OffsetDateTime::now_utc()).unwrap();
        let issuer = Issuer::from_pem(&ca.intermediate_cert_pem, &ca.intermediate_key).unwrap();
        Self { ca, issuer }
    }

    /// The root, PEM (the trust anchor).
    pub fn root_pem(&self) -> &str {
        &self.ca.root_cert_pem
    }

    /// A serving certificate for `hosts` (names or IP addresses), valid for a day.
    pub fn leaf(&self, hosts: &[&str]) -> Leaf {
        let hosts: Vec<ServingHost> = hosts
            .iter()
            .map(|h| ServingHost::parse(h).unwrap())
            .collect();
        let key = PrivateKey::generate(KeyAlgorithm::EcP256).unwrap();
        let now = OffsetDateTime::now_utc();
        let issued = self
            .issuer
            .issue_serving(
                &hosts,
                now - Duration::hours(1),
                now + Duration::days(1),
                &key,
            )
            .unwrap();
        Leaf {
            der: issued.der.clone(),
            serial_hex: issued.serial_hex.clone(),
            chain_pem: format!(
                "{}{}",
                issued.certificate_pem, self.ca.intermediate_cert_pem
            ),
            key_pem: key.to_pem().to_string(),
            key,
        }
    }
}

impl Leaf {
    /// Writes the chain and the key to `dir` (`cert.pem`, `key.pem`) for a server process.
    pub fn write_to(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, &self.chain_pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        (cert, key)
    }
}

/// A TLS server on a free loopback port serving `leaf` (with its intermediate) to every
/// connection, then closing it. Stops when the handle is dropped (aborted).
pub struct TlsServer {
    /// Where it listens.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsServer {
    /// Starts serving `leaf`.
    pub async fn start(leaf: &Leaf) -> Self {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(leaf.chain_pem.as_bytes())
                .collect::<Result<_, _>>()
                .unwrap();
        assert_eq!(chain.len(), 2, "leaf and intermediate");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key.pkcs8_der().to_vec()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        Self { addr, task }
    }
}
