//! Parsing and checking PKCS#10 certificate signing requests.

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

use crate::PkiError;
use crate::ca::{CaSigner, SubjectFields, leaf_name, san_for};
use crate::key::{KeyAlgorithm, KeyKind, PrivateKey, PublicKeyRef, spki_kind};
use crate::name::DnsName;
use crate::util::bit_len;

/// Largest RSA modulus accepted: aws-lc verifies RSA signatures up to 8192 bits, and larger
/// keys only cost CPU.
const MAX_RSA_BITS: usize = 8192;
/// Smallest RSA modulus accepted.
const MIN_RSA_BITS: usize = 2048;

/// A CSR whose self-signature has been verified and whose key is supported.
///
/// Only the parts the CA uses are kept: the requested names and the public key. The CSR's
/// subject is *not* used for issuance (the issuer takes the subject from the request).
#[derive(Debug, Clone)]
pub struct ParsedCsr {
    dns_names: Vec<String>,
    common_name: Option<String>,
    kind: KeyKind,
    key_algorithm: Option<KeyAlgorithm>,
    key_bits: usize,
    public_key: Vec<u8>,
    spki_der: Vec<u8>,
}

impl ParsedCsr {
    /// Parses a PEM CSR (`CERTIFICATE REQUEST` or `NEW CERTIFICATE REQUEST`; the first such
    /// block is used), checks the key and verifies the self-signature.
    ///
    /// Errors: [`PkiError::BadCsrPem`] for anything that does not parse,
    /// [`PkiError::UnsupportedKey`] for keys other than RSA 2048–8192 bits or EC P-256/P-384
    /// (uncompressed point), [`PkiError::BadCsrSignature`] when the signature does not verify
    /// or uses an algorithm aws-lc cannot verify. The key is checked before the signature so
    /// that, e.g., an RSA-1024 request is reported as an unsupported key.
    pub fn from_pem(pem_text: &str) -> Result<Self, PkiError> {
        let blocks = pem::parse_many(pem_text).map_err(|_| PkiError::BadCsrPem)?;
        let block = blocks
            .iter()
            .find(|b| matches!(b.tag(), "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST"))
            .ok_or(PkiError::BadCsrPem)?;
        Self::from_der(block.contents())
    }

    /// Same as [`ParsedCsr::from_pem`] for DER input (trailing bytes are rejected).
    pub fn from_der(der: &[u8]) -> Result<Self, PkiError> {
        let (rest, csr) =
            X509CertificationRequest::from_der(der).map_err(|_| PkiError::BadCsrPem)?;
        if !rest.is_empty() {
            return Err(PkiError::BadCsrPem);
        }
        let info = &csr.certification_request_info;
        let spki = &info.subject_pki;

        let kind = spki_kind(&spki.algorithm)?;
        let public_key = spki.subject_public_key.data.to_vec();
        let (key_algorithm, key_bits) = match (kind, spki.parsed()) {
            (KeyKind::Rsa, Ok(PublicKey::RSA(rsa))) => {
                let bits = bit_len(rsa.modulus);
                if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                    return Err(PkiError::UnsupportedKey(format!("RSA {bits}-bit")));
                }
                (KeyAlgorithm::from_rsa_bits(bits), bits)
            }
            (KeyKind::EcP256 | KeyKind::EcP384, Ok(PublicKey::EC(_))) => {
                let (alg, bits) = if kind == KeyKind::EcP256 {
                    (KeyAlgorithm::EcP256, 256)
                } else {
                    (KeyAlgorithm::EcP384, 384)
                };
                // Uncompressed points only: compressed ones are legal but poorly supported
                // by TLS clients once they end up in a certificate.
                let expected_len = 1 + 2 * bits / 8;
                if public_key.len() != expected_len || public_key.first() != Some(&0x04) {
                    return Err(PkiError::UnsupportedKey(
                        "EC public key is not an uncompressed point".to_owned(),
                    ));
                }
                (Some(alg), bits)
            }
            _ => return Err(PkiError::BadCsrPem),
        };

        csr.verify_signature()
            .map_err(|_| PkiError::BadCsrSignature)?;

        // A CN that is not a decodable string is ignored: it could not be a domain anyway.
        let common_name = info
            .subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(|cn| cn.trim().to_ascii_lowercase())
            .filter(|cn| !cn.is_empty());

        let mut dns_names: Vec<String> = Vec::new();
        if let Some(cn) = &common_name {
            dns_names.push(cn.clone());
        }
        if let Some(extensions) = csr.requested_extensions() {
            for ext in extensions {
                if let ParsedExtension::SubjectAlternativeName(san) = ext {
                    for name in &san.general_names {
                        if let GeneralName::DNSName(dns) = name {
                            let dns = dns.trim().to_ascii_lowercase();
                            if !dns.is_empty() && !dns_names.contains(&dns) {
                                dns_names.push(dns);
                            }
                        }
                    }
                }
            }
        }

        Ok(Self {
            dns_names,
            common_name,
            kind,
            key_algorithm,
            key_bits,
            public_key,
            spki_der: spki.raw.to_vec(),
        })
    }

    /// The names the request asks for, lower-cased and without duplicates: the subject CN
    /// first (when present), then the subjectAltName DNS names in request order. A request
    /// without SANs yields just its CN; other SAN types (IP, e-mail, URI) are not included.
    pub fn dns_names(&self) -> Vec<String> {
        self.dns_names.clone()
    }

    /// The subject common name, lower-cased, if the request has one.
    pub fn common_name(&self) -> Option<&str> {
        self.common_name.as_deref()
    }

    /// The API key algorithm of the request's key.
    ///
    /// `None` for RSA keys whose modulus is not exactly 2048, 3072 or 4096 bits: such keys
    /// (2048–8192 bits) are accepted and can be certified, but have no API name; see
    /// [`ParsedCsr::key_bits`].
    pub fn key_algorithm(&self) -> Option<KeyAlgorithm> {
        self.key_algorithm
    }

    /// Key size in bits (RSA modulus length, or the curve size).
    pub fn key_bits(&self) -> usize {
        self.key_bits
    }

    /// Whether the request's key is RSA.
    pub fn is_rsa(&self) -> bool {
        self.kind == KeyKind::Rsa
    }

    /// The request's SubjectPublicKeyInfo, DER.
    pub fn public_key_info_der(&self) -> &[u8] {
        &self.spki_der
    }

    pub(crate) fn public_key_ref(&self) -> PublicKeyRef<'_> {
        PublicKeyRef {
            raw: &self.public_key,
            kind: self.kind,
        }
    }

    /// Whether `key` is the private half of the request's public key (same type, same public
    /// key bits).
    pub fn matches_key(&self, key: &PrivateKey) -> bool {
        self.kind == key.algorithm().kind() && self.public_key == key.public_key_raw()
    }
}

/// Makes a PKCS#10 request for `dns_names` signed with `key` (blocking, but cheap next to
/// generating an RSA key): subject C/ST/L/O/OU from `subject` (empty ones left out) and CN the
/// first name; every name (duplicates dropped) in a requested subjectAltName extension.
/// Signature: ECDSA with SHA-256/384 for EC keys, RSA PKCS#1 v1.5 with SHA-256 for RSA keys.
/// Returns the PEM (`CERTIFICATE REQUEST`).
///
/// Errors: [`PkiError::InvalidRequest`] without names, [`PkiError::InvalidName`] for a name the
/// encoder refuses, [`PkiError::Crypto`] if signing fails.
pub fn generate_csr(
    key: &PrivateKey,
    dns_names: &[DnsName],
    subject: &SubjectFields<'_>,
) -> Result<String, PkiError> {
    let mut names: Vec<String> = Vec::with_capacity(dns_names.len());
    for n in dns_names {
        if !names.iter().any(|m| m == n.as_str()) {
            names.push(n.as_str().to_owned());
        }
    }
    let common_name = names
        .first()
        .cloned()
        .ok_or(PkiError::InvalidRequest("at least one name is required"))?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = leaf_name(subject, common_name);
    params.subject_alt_names = names
        .into_iter()
        .map(san_for)
        .collect::<Result<Vec<_>, _>>()?;
    let signer = CaSigner::new(key)?;
    let csr = params
        .serialize_request(&signer)
        .map_err(|_| PkiError::Crypto("CSR signing"))?;
    csr.pem().map_err(|_| PkiError::Crypto("CSR encoding"))
}

/// The DER of the first CSR block of `pem_text` (what an ACME `finalize` sends).
///
/// Errors: [`PkiError::BadCsrPem`] when there is no CSR block.
pub fn csr_der(pem_text: &str) -> Result<Vec<u8>, PkiError> {
    let blocks = pem::parse_many(pem_text).map_err(|_| PkiError::BadCsrPem)?;
    blocks
        .into_iter()
        .find(|b| matches!(b.tag(), "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST"))
        .map(|b| b.into_contents())
        .ok_or(PkiError::BadCsrPem)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::test_util::{TempDir, openssl, output_text};
    use rcgen::{CertificateParams, DnType, KeyPair};

    /// A CSR made by rcgen with the given CN and SANs.
    pub(crate) fn make_csr(key: &KeyPair, cn: Option<&str>, sans: &[&str]) -> String {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Evil Corp");
        params.serialize_request(key).unwrap().pem().unwrap()
    }

    #[test]
    fn generated_csrs_parse_verify_and_match_their_key() {
        let names: Vec<DnsName> = ["www.a.test", "a.test", "www.a.test", "*.b.test"]
            .iter()
            .map(|n| DnsName::parse(n).unwrap())
            .collect();
        let subject = SubjectFields {
            country: Some("CN"),
            province: Some("Sichuan"),
            city: Some("Chengdu"),
            organization: Some("OpenSCM"),
            organizational_unit: None,
        };
        for alg in [
            KeyAlgorithm::EcP256,
            KeyAlgorithm::EcP384,
            KeyAlgorithm::Rsa2048,
        ] {
            let key = PrivateKey::generate(alg).unwrap();
            let pem = generate_csr(&key, &names, &subject).unwrap();
            assert!(
                pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----"),
                "{pem}"
            );
            let csr = ParsedCsr::from_pem(&pem).unwrap();
            assert_eq!(csr.dns_names(), vec!["www.a.test", "a.test", "*.b.test"]);
            assert_eq!(csr.key_algorithm(), Some(alg));
            assert!(csr.matches_key(&key));
            let other = PrivateKey::generate(KeyAlgorithm::EcP256).unwrap();
            assert!(!csr.matches_key(&other));
            // OpenSSL agrees: the signature verifies and the subject is what was asked.
            let dir = TempDir::new("gen-csr");
            let path = dir.write("r.csr", pem.as_bytes());
            let out = openssl(&[
                "req",
                "-in",
                path.to_str().unwrap(),
                "-noout",
                "-verify",
                "-subject",
            ]);
            let text = output_text(&out);
            assert!(out.status.success(), "{text}");
            assert!(text.contains("O = OpenSCM"), "{text}");
            assert!(text.contains("CN = www.a.test"), "{text}");
        }
        assert!(
            generate_csr(
                &PrivateKey::generate(KeyAlgorithm::EcP256).unwrap(),
                &[],
                &subject
            )
            .is_err()
        );
    }

    #[test]
    fn ec_csr_names_and_algorithm() {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let csr = ParsedCsr::from_pem(&make_csr(
            &key,
            Some("WWW.A.test"),
            &["a.test", "*.A.test", "www.a.test"],
        ))
        .unwrap();
        assert_eq!(csr.dns_names(), vec!["www.a.test", "a.test", "*.a.test"]);
        assert_eq!(csr.common_name(), Some("www.a.test"));
        assert_eq!(csr.key_algorithm(), Some(KeyAlgorithm::EcP256));
        assert_eq!(csr.key_bits(), 256);
        assert!(!csr.is_rsa());
        assert_eq!(
            csr.public_key_info_der(),
            rcgen::PublicKeyData::subject_public_key_info(&key)
        );

        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let csr = ParsedCsr::from_pem(&make_csr(&key, None, &["b.test", "c.test"])).unwrap();
        assert_eq!(csr.dns_names(), vec!["b.test", "c.test"]);
        assert_eq!(csr.common_name(), None);
        assert_eq!(csr.key_algorithm(), Some(KeyAlgorithm::EcP384));
    }

    #[test]
    fn cn_only_csr() {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let pem = make_csr(&key, Some("only.test"), &[]);
        let csr = ParsedCsr::from_pem(&pem).unwrap();
        assert_eq!(csr.dns_names(), vec!["only.test"]);
        // The old "NEW CERTIFICATE REQUEST" label is accepted too.
        let renamed = pem.replace("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST");
        assert_eq!(
            ParsedCsr::from_pem(&renamed).unwrap().dns_names(),
            vec!["only.test"]
        );
    }

    #[test]
    fn rsa_csr() {
        let key =
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap();
        let csr = ParsedCsr::from_pem(&make_csr(&key, Some("r.test"), &["r.test"])).unwrap();
        assert_eq!(csr.key_algorithm(), Some(KeyAlgorithm::Rsa2048));
        assert_eq!(csr.key_bits(), 2048);
        assert!(csr.is_rsa());
        assert_eq!(csr.dns_names(), vec!["r.test"]);
    }

    #[test]
    fn corrupted_signature_is_rejected() {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let pem_text = make_csr(&key, Some("victim.test"), &["victim.test"]);
        let mut der = pem::parse(&pem_text).unwrap().into_contents();
        // Change the signed content (the CN) so the DER still parses but the signature fails.
        let pos = der.windows(6).position(|w| w == b"victim").unwrap();
        der[pos] = b'V';
        let tampered = crate::util::pem_encode("CERTIFICATE REQUEST", &der);
        assert!(matches!(
            ParsedCsr::from_pem(&tampered),
            Err(PkiError::BadCsrSignature)
        ));

        // Flipping a signature byte is caught as well.
        let mut der = pem::parse(&pem_text).unwrap().into_contents();
        let last = der.len() - 1;
        der[last] ^= 0x01;
        let tampered = crate::util::pem_encode("CERTIFICATE REQUEST", &der);
        assert!(matches!(
            ParsedCsr::from_pem(&tampered),
            Err(PkiError::BadCsrSignature)
        ));
    }

    #[test]
    fn garbage_is_bad_pem() {
        for text in [
            "",
            "not pem",
            "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ] {
            assert!(
                matches!(ParsedCsr::from_pem(text), Err(PkiError::BadCsrPem)),
                "{text:?}"
            );
        }
    }

    #[test]
    fn unsupported_keys_are_rejected() {
        let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let err = ParsedCsr::from_pem(&make_csr(&ed, Some("e.test"), &[])).unwrap_err();
        assert!(
            matches!(&err, PkiError::UnsupportedKey(s) if s.contains("Ed25519")),
            "{err}"
        );

        let p521 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
        let err = ParsedCsr::from_pem(&make_csr(&p521, Some("e.test"), &[])).unwrap_err();
        assert!(matches!(err, PkiError::UnsupportedKey(_)), "{err}");

        // RSA-1024 via the OpenSSL CLI (rcgen will not generate it).
        let dir = TempDir::new("csr-rsa1024");
        let key_path = dir.path().join("k.pem");
        let csr_path = dir.path().join("r.csr");
        let out = openssl(&[
            "req",
            "-new",
            "-newkey",
            "rsa:1024",
            "-nodes",
            "-subj",
            "/CN=small.test",
            "-keyout",
            key_path.to_str().unwrap(),
            "-out",
            csr_path.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", output_text(&out));
        let pem_text = std::fs::read_to_string(&csr_path).unwrap();
        let err = ParsedCsr::from_pem(&pem_text).unwrap_err();
        assert!(
            matches!(&err, PkiError::UnsupportedKey(s) if s.contains("1024")),
            "{err}"
        );
    }

    #[test]
    fn openssl_made_csr_with_sans_is_accepted() {
        let dir = TempDir::new("csr-openssl");
        let key_path = dir.path().join("k.pem");
        let csr_path = dir.path().join("r.csr");
        let out = openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-nodes",
            "-subj",
            "/C=CN/O=Org/CN=Main.test",
            "-addext",
            "subjectAltName=DNS:alt.test,DNS:main.test,IP:10.0.0.1",
            "-keyout",
            key_path.to_str().unwrap(),
            "-out",
            csr_path.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", output_text(&out));
        let csr = ParsedCsr::from_pem(&std::fs::read_to_string(&csr_path).unwrap()).unwrap();
        assert_eq!(csr.dns_names(), vec!["main.test", "alt.test"]);
        assert_eq!(csr.key_algorithm(), Some(KeyAlgorithm::EcP384));
    }

    #[test]
    fn openssl_verifies_rcgen_csr() {
        let dir = TempDir::new("csr-verify");
        for key in [
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap(),
        ] {
            let path = dir.write(
                "r.csr",
                make_csr(&key, Some("v.test"), &["v.test"]).as_bytes(),
            );
            let out = openssl(&["req", "-in", path.to_str().unwrap(), "-verify", "-noout"]);
            let text = output_text(&out);
            assert!(out.status.success(), "{text}");
            assert!(text.contains("verify OK"), "{text}");
        }
    }
}
