//! Reading X.509 certificates and splitting PEM bundles.

use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use x509_parser::signature_algorithm::RsaSsaPssParams;
use x509_parser::x509::AlgorithmIdentifier;

use crate::PkiError;
use crate::key::{KeyAlgorithm, KeyKind, PrivateKey, spki_kind};
use crate::util::{OID_RSASSA_PSS, bit_len, pem_encode, serial_hex, sha1_hex};

/// What the service needs to know about a certificate.
#[derive(Debug, Clone)]
pub struct CertificateInfo {
    /// The first subject common name, if any.
    pub common_name: Option<String>,
    /// subjectAltName DNS names, lower-cased, in certificate order.
    pub dns_names: Vec<String>,
    /// Subject distinguished name, e.g. `"C=CN, O=Example, CN=a.test"`.
    pub subject: String,
    /// Issuer distinguished name, same format.
    pub issuer: String,
    /// Serial number as lower-case hex, without sign-padding zero bytes.
    pub serial_hex: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// SHA-1 of the DER, 40 lower-case hex characters.
    pub sha1_fingerprint_hex: String,
    /// Signature algorithm in Huawei style (`"SHA256WITHRSA"`, `"SHA256WITHECDSA"`, …);
    /// unknown algorithms are given as their dotted OID.
    pub signature_algorithm: String,
    /// The subject key's API algorithm, when it is one of the supported ones.
    pub key_algorithm: Option<KeyAlgorithm>,
    /// Whether basicConstraints says CA:TRUE.
    pub is_ca: bool,
    /// The certificate DER.
    pub der: Vec<u8>,
    /// Algorithm OID string and raw bits of the subject key, for key matching.
    spki_algorithm: String,
    spki_raw: Vec<u8>,
}

impl CertificateInfo {
    /// Whether `key` is the private key for this certificate's public key.
    pub fn public_key_matches(&self, key: &PrivateKey) -> bool {
        let expected_alg = match key.algorithm().kind() {
            KeyKind::Rsa => crate::util::OID_RSA_ENCRYPTION,
            KeyKind::EcP256 | KeyKind::EcP384 => crate::util::OID_EC_PUBLIC_KEY,
        };
        // The EC curve is implied by the point length, so algorithm + bits identify the key.
        self.spki_algorithm == expected_alg && self.spki_raw == key.public_key_raw()
    }
}

/// Parses the first `CERTIFICATE` block of `text` (other blocks are ignored).
pub fn parse_certificate_pem(text: &str) -> Result<CertificateInfo, PkiError> {
    let first = pem_blocks(text, "CERTIFICATE")
        .into_iter()
        .next()
        .ok_or(PkiError::BadCertificatePem)?;
    let block = pem::parse(first).map_err(|_| PkiError::BadCertificatePem)?;
    parse_certificate_der(block.contents())
}

/// The hosts a DER certificate is for: its subjectAltName's dNSNames (lower case, wildcards as
/// written) and iPAddresses; empty when it has none.
///
/// Errors: [`PkiError::BadCertificatePem`] for bytes that are no certificate.
pub fn subject_alt_hosts(der: &[u8]) -> Result<Vec<crate::ServingHost>, PkiError> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|_| PkiError::BadCertificatePem)?;
    let san = cert
        .subject_alternative_name()
        .map_err(|_| PkiError::BadCertificatePem)?;
    Ok(san
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::DNSName(dns) => {
                        Some(crate::ServingHost::Name(dns.to_ascii_lowercase()))
                    }
                    GeneralName::IPAddress(bytes) => match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes)
                            .ok()
                            .map(|b| crate::ServingHost::Ip(std::net::IpAddr::from(b))),
                        16 => <[u8; 16]>::try_from(*bytes)
                            .ok()
                            .map(|b| crate::ServingHost::Ip(std::net::IpAddr::from(b))),
                        _ => None,
                    },
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default())
}

/// Parses a DER certificate (trailing bytes are rejected).
pub fn parse_certificate_der(der: &[u8]) -> Result<CertificateInfo, PkiError> {
    let (rest, cert) = X509Certificate::from_der(der).map_err(|_| PkiError::BadCertificatePem)?;
    if !rest.is_empty() {
        return Err(PkiError::BadCertificatePem);
    }
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    let dns_names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some(dns.to_ascii_lowercase()),
                _ => None,
            })
            .collect(),
        Ok(None) => Vec::new(),
        Err(_) => return Err(PkiError::BadCertificatePem),
    };
    let spki = cert.public_key();
    Ok(CertificateInfo {
        common_name,
        dns_names,
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial_hex: serial_hex(cert.raw_serial()),
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        sha1_fingerprint_hex: sha1_hex(der),
        signature_algorithm: signature_algorithm_name(&cert.signature_algorithm),
        key_algorithm: certificate_key_algorithm(&cert),
        is_ca: cert.is_ca(),
        der: der.to_vec(),
        spki_algorithm: spki.algorithm.algorithm.to_id_string(),
        spki_raw: spki.subject_public_key.data.to_vec(),
    })
}

fn certificate_key_algorithm(cert: &X509Certificate<'_>) -> Option<KeyAlgorithm> {
    let spki = cert.public_key();
    match spki_kind(&spki.algorithm).ok()? {
        KeyKind::EcP256 => Some(KeyAlgorithm::EcP256),
        KeyKind::EcP384 => Some(KeyAlgorithm::EcP384),
        KeyKind::Rsa => match spki.parsed().ok()? {
            x509_parser::public_key::PublicKey::RSA(rsa) => {
                KeyAlgorithm::from_rsa_bits(bit_len(rsa.modulus))
            }
            _ => None,
        },
    }
}

/// Huawei-style signature algorithm name for an AlgorithmIdentifier.
pub(crate) fn signature_algorithm_name(alg: &AlgorithmIdentifier<'_>) -> String {
    let oid = alg.algorithm.to_id_string();
    let name = match oid.as_str() {
        "1.2.840.113549.1.1.4" => "MD5WITHRSA",
        "1.2.840.113549.1.1.5" | "1.3.14.3.2.29" => "SHA1WITHRSA",
        "1.2.840.113549.1.1.14" => "SHA224WITHRSA",
        "1.2.840.113549.1.1.11" => "SHA256WITHRSA",
        "1.2.840.113549.1.1.12" => "SHA384WITHRSA",
        "1.2.840.113549.1.1.13" => "SHA512WITHRSA",
        OID_RSASSA_PSS => pss_name(alg),
        "1.2.840.10045.4.1" => "SHA1WITHECDSA",
        "1.2.840.10045.4.3.1" => "SHA224WITHECDSA",
        "1.2.840.10045.4.3.2" => "SHA256WITHECDSA",
        "1.2.840.10045.4.3.3" => "SHA384WITHECDSA",
        "1.2.840.10045.4.3.4" => "SHA512WITHECDSA",
        "1.2.840.10040.4.3" => "SHA1WITHDSA",
        "2.16.840.1.101.3.4.3.2" => "SHA256WITHDSA",
        "1.3.101.112" => "ED25519",
        "1.3.101.113" => "ED448",
        "1.2.156.10197.1.501" => "SM3WITHSM2",
        _ => return oid,
    };
    name.to_owned()
}

fn pss_name(alg: &AlgorithmIdentifier<'_>) -> &'static str {
    let hash = alg
        .parameters
        .as_ref()
        .and_then(|p| RsaSsaPssParams::try_from(p).ok())
        .map(|p| p.hash_algorithm_oid().to_id_string());
    match hash.as_deref() {
        Some("2.16.840.1.101.3.4.2.1") => "SHA256WITHRSAPSS",
        Some("2.16.840.1.101.3.4.2.2") => "SHA384WITHRSAPSS",
        Some("2.16.840.1.101.3.4.2.3") => "SHA512WITHRSAPSS",
        // Absent parameters mean the SHA-1 defaults.
        _ => "SHA1WITHRSAPSS",
    }
}

/// Every `-----BEGIN <tag>-----` … `-----END <tag>-----` block of `text`, in order.
///
/// Blocks that decode are re-encoded canonically (LF line endings, 64 columns, headers
/// dropped); a block that does not decode is returned verbatim so that parsing it later
/// reports the error instead of the block silently disappearing. Blocks with other tags are
/// skipped (`"CERTIFICATE"` does not match `CERTIFICATE REQUEST`).
pub fn pem_blocks(text: &str, tag: &str) -> Vec<String> {
    let begin = format!("-----BEGIN {tag}-----");
    let end = format!("-----END {tag}-----");
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&begin) {
        let Some(from_begin) = rest.get(start..) else {
            break;
        };
        let Some(end_at) = from_begin.find(&end) else {
            break;
        };
        let block_len = end_at + end.len();
        let Some(block) = from_begin.get(..block_len) else {
            break;
        };
        blocks.push(match pem::parse(block) {
            Ok(p) if p.tag() == tag => pem_encode(tag, p.contents()),
            _ => block.to_owned(),
        });
        rest = from_begin.get(block_len..).unwrap_or_default();
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};

    #[test]
    fn subject_alt_hosts_are_names_and_addresses() {
        let (pem, _) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256, None);
        let der = parse_certificate_pem(&pem).unwrap().der;
        assert_eq!(
            subject_alt_hosts(&der).unwrap(),
            vec![
                crate::ServingHost::Name("self.test".into()),
                crate::ServingHost::Ip("10.1.1.1".parse().unwrap()),
            ]
        );
        assert!(subject_alt_hosts(b"junk").is_err());
    }

    fn self_signed(
        alg: &'static rcgen::SignatureAlgorithm,
        key: Option<KeyPair>,
    ) -> (String, KeyPair) {
        let key = key.unwrap_or_else(|| KeyPair::generate_for(alg).unwrap());
        let params =
            CertificateParams::new(vec!["Self.Test".to_owned(), "10.1.1.1".to_owned()]).unwrap();
        (params.self_signed(&key).unwrap().pem(), key)
    }

    #[test]
    fn signature_algorithm_names() {
        let (pem, _) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256, None);
        let info = parse_certificate_pem(&pem).unwrap();
        assert_eq!(info.signature_algorithm, "SHA256WITHECDSA");
        assert_eq!(info.key_algorithm, Some(KeyAlgorithm::EcP256));

        let (pem, _) = self_signed(&rcgen::PKCS_ECDSA_P384_SHA384, None);
        let info = parse_certificate_pem(&pem).unwrap();
        assert_eq!(info.signature_algorithm, "SHA384WITHECDSA");
        assert_eq!(info.key_algorithm, Some(KeyAlgorithm::EcP384));

        let rsa =
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap();
        let (pem, _) = self_signed(&rcgen::PKCS_RSA_SHA256, Some(rsa));
        let info = parse_certificate_pem(&pem).unwrap();
        assert_eq!(info.signature_algorithm, "SHA256WITHRSA");
        assert_eq!(info.key_algorithm, Some(KeyAlgorithm::Rsa2048));
    }

    #[test]
    fn fields_and_key_matching() {
        let key = PrivateKey::generate(KeyAlgorithm::EcP256).unwrap();
        let rc_key = KeyPair::try_from(key.pkcs8_der()).unwrap();
        let (pem, _) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256, Some(rc_key));
        let info = parse_certificate_pem(&format!("junk before\n{pem}\ntrailing")).unwrap();
        assert_eq!(info.dns_names, vec!["self.test"]);
        assert_eq!(info.common_name.as_deref(), Some("rcgen self signed cert"));
        assert_eq!(info.subject, info.issuer);
        assert_eq!(info.sha1_fingerprint_hex.len(), 40);
        assert!(
            info.sha1_fingerprint_hex
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        );
        assert!(!info.is_ca);
        assert!(info.public_key_matches(&key));
        assert!(!info.public_key_matches(&PrivateKey::generate(KeyAlgorithm::EcP256).unwrap()));
        assert!(!info.public_key_matches(&PrivateKey::generate(KeyAlgorithm::EcP384).unwrap()));
    }

    #[test]
    fn bad_certificates() {
        assert!(matches!(
            parse_certificate_pem(""),
            Err(PkiError::BadCertificatePem)
        ));
        assert!(matches!(
            parse_certificate_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"),
            Err(PkiError::BadCertificatePem)
        ));
        assert!(matches!(
            parse_certificate_pem("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----"),
            Err(PkiError::BadCertificatePem)
        ));
        let (pem, _) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256, None);
        let mut der = pem::parse(&pem).unwrap().into_contents();
        der.push(0);
        assert!(matches!(
            parse_certificate_der(&der),
            Err(PkiError::BadCertificatePem)
        ));
    }

    #[test]
    fn pem_blocks_split_chains() {
        let (a, _) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256, None);
        let (b, _) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256, None);
        let csr = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
        let bundle = format!("{}\r\n{csr}garbage\n{}", a.replace('\n', "\r\n"), b);
        let blocks = pem_blocks(&bundle, "CERTIFICATE");
        assert_eq!(blocks, vec![a.clone(), b.clone()]);
        assert_eq!(pem_blocks(&bundle, "CERTIFICATE REQUEST").len(), 1);
        assert!(pem_blocks("nothing here", "CERTIFICATE").is_empty());
        // An undecodable block is kept verbatim so the caller's parse reports it.
        let broken = "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----";
        assert_eq!(
            pem_blocks(&format!("{a}{broken}"), "CERTIFICATE"),
            vec![a, broken.to_owned()]
        );
        // An unterminated block is ignored.
        assert!(pem_blocks("-----BEGIN CERTIFICATE-----\nAAAA\n", "CERTIFICATE").is_empty());
    }
}
