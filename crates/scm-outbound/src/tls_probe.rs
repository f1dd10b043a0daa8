//! The [`TlsProber`] of push targets: one rustls handshake (on the aws-lc-rs provider) with a
//! target's address and server name, reporting the certificate it served.
//!
//! The handshake accepts whatever chain the server presents: the point is to see what is served,
//! even an untrusted, expired or wrong certificate, so that the domain can say so. The chain is
//! then checked separately, with rustls's own WebPKI verifier, against the trust anchors the
//! probe was given (the issuer's root), and the answer is reported as `chain_verified`. The
//! signatures of the handshake itself are still checked, with the provider's algorithms, so the
//! peer does hold the key of the certificate it presented.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_lc_rs::digest;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use scm_core::deploy::probe::{Endpoint, ProbeError, Served, TlsProber};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Probes targets with one TLS handshake each, within a time limit.
#[derive(Debug, Clone)]
pub struct RustlsProber {
    timeout: Duration,
    provider: Arc<CryptoProvider>,
}

impl RustlsProber {
    /// A prober whose every probe (name lookup, connection and handshake together) ends within
    /// `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        }
    }

    /// The handshake, without the time limit.
    async fn handshake(
        &self,
        endpoint: &Endpoint,
        name: ServerName<'static>,
    ) -> Result<Vec<CertificateDer<'static>>, String> {
        let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up TLS: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyChain {
                algorithms: self.provider.signature_verification_algorithms,
            }))
            .with_no_client_auth();
        // Tokio resolves `host:port` and tries each address in turn.
        let tcp = TcpStream::connect(endpoint.address.as_str())
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let tls = TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake failed: {e}"))?;
        let (_, conn) = tls.get_ref();
        let chain = conn
            .peer_certificates()
            .map(|c| c.iter().map(|c| c.clone().into_owned()).collect::<Vec<_>>())
            .unwrap_or_default();
        if chain.is_empty() {
            return Err("the server presented no certificate".into());
        }
        Ok(chain)
    }

    /// Whether `chain` (leaf first) verifies for `name`, now, to one of `anchors_pem`.
    fn verifies(
        &self,
        chain: &[CertificateDer<'static>],
        name: &ServerName<'static>,
        anchors_pem: &str,
    ) -> bool {
        let mut roots = RootCertStore::empty();
        for der in CertificateDer::pem_slice_iter(anchors_pem.as_bytes()).flatten() {
            // A root the verifier cannot use only means fewer anchors.
            let _ = roots.add(der);
        }
        if roots.is_empty() {
            tracing::warn!("a TLS probe was given no usable trust anchor");
            return false;
        }
        let Some((leaf, intermediates)) = chain.split_first() else {
            return false;
        };
        let verifier = match WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(&self.provider),
        )
        .build()
        {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "cannot build the chain verifier of a TLS probe");
                return false;
            }
        };
        match verifier.verify_server_cert(leaf, intermediates, name, &[], UnixTime::now()) {
            Ok(_) => true,
            Err(e) => {
                tracing::debug!(error = %e, "the served chain does not verify");
                false
            }
        }
    }
}

#[async_trait]
impl TlsProber for RustlsProber {
    async fn probe(&self, endpoint: &Endpoint, anchors_pem: &str) -> Result<Served, ProbeError> {
        let failed = |why: String| ProbeError {
            message: format!("probing {endpoint}: {why}"),
        };
        let name = ServerName::try_from(endpoint.server_name.clone())
            .map_err(|_| failed("the server name is not a DNS name or an IP address".into()))?;
        let chain = match tokio::time::timeout(self.timeout, self.handshake(endpoint, name.clone()))
            .await
        {
            Ok(Ok(chain)) => chain,
            Ok(Err(why)) => return Err(failed(why)),
            Err(_) => {
                return Err(failed(format!(
                    "no TLS handshake within {} s",
                    self.timeout.as_secs_f32()
                )));
            }
        };
        let leaf = chain
            .first()
            .ok_or_else(|| failed("the server presented no certificate".into()))?;
        let info = scm_pki::parse_certificate_der(leaf.as_ref())
            .map_err(|e| failed(format!("the served certificate does not parse: {e}")))?;
        Ok(Served {
            sha256_fingerprint: sha256_hex(leaf.as_ref()),
            serial_hex: info.serial_hex,
            chain_verified: self.verifies(&chain, &name, anchors_pem),
        })
    }
}

/// SHA-256 of `der`, lowercase hex.
fn sha256_hex(der: &[u8]) -> String {
    digest::digest(&digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Accepts any presented chain (it is judged after the handshake), but checks the handshake's
/// signatures as rustls's own verifiers do.
#[derive(Debug)]
struct AcceptAnyChain {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyChain {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_lowercase_hex_sha256() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[tokio::test]
    async fn a_bad_server_name_is_refused_before_connecting() {
        let e = RustlsProber::new(Duration::from_secs(1))
            .probe(
                &Endpoint {
                    address: "127.0.0.1:1".into(),
                    server_name: "not a name".into(),
                },
                "",
            )
            .await
            .unwrap_err();
        assert!(e.message.contains("127.0.0.1:1 (SNI not a name)"), "{e}");
        assert!(e.message.contains("server name"), "{e}");
    }
}
