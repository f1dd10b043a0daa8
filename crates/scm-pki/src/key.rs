//! Private keys: generation, import (PEM/DER) and PKCS#8 export.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair,
    EcdsaSigningAlgorithm, KeyPair as _,
};
use x509_parser::asn1_rs::{Any, FromDer, Tag};
use x509_parser::x509::AlgorithmIdentifier;
use zeroize::Zeroizing;

use crate::PkiError;
use crate::util::{OID_EC_PUBLIC_KEY, OID_P256, OID_P384, OID_RSA_ENCRYPTION, pem_encode_secret};

/// Key algorithms the API knows, with their API names (`"RSA_2048"`, …, `"EC_P384"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// RSA with a 2048-bit modulus (`"RSA_2048"`).
    Rsa2048,
    /// RSA with a 3072-bit modulus (`"RSA_3072"`).
    Rsa3072,
    /// RSA with a 4096-bit modulus (`"RSA_4096"`).
    Rsa4096,
    /// ECDSA on NIST P-256 (`"EC_P256"`).
    EcP256,
    /// ECDSA on NIST P-384 (`"EC_P384"`).
    EcP384,
}

impl KeyAlgorithm {
    /// Every algorithm, in API order.
    pub const ALL: [KeyAlgorithm; 5] = [
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
        KeyAlgorithm::EcP256,
        KeyAlgorithm::EcP384,
    ];

    /// The API name, e.g. `"EC_P256"`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa2048 => "RSA_2048",
            KeyAlgorithm::Rsa3072 => "RSA_3072",
            KeyAlgorithm::Rsa4096 => "RSA_4096",
            KeyAlgorithm::EcP256 => "EC_P256",
            KeyAlgorithm::EcP384 => "EC_P384",
        }
    }

    /// Whether this is one of the RSA sizes.
    pub fn is_rsa(self) -> bool {
        matches!(
            self,
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096
        )
    }

    /// The RSA size for an exact modulus length; other lengths have no API name.
    pub(crate) fn from_rsa_bits(bits: usize) -> Option<Self> {
        match bits {
            2048 => Some(KeyAlgorithm::Rsa2048),
            3072 => Some(KeyAlgorithm::Rsa3072),
            4096 => Some(KeyAlgorithm::Rsa4096),
            _ => None,
        }
    }

    pub(crate) fn kind(self) -> KeyKind {
        match self {
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => KeyKind::Rsa,
            KeyAlgorithm::EcP256 => KeyKind::EcP256,
            KeyAlgorithm::EcP384 => KeyKind::EcP384,
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = PkiError;

    /// Parses an API name (exact, upper case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyAlgorithm::ALL
            .into_iter()
            .find(|alg| alg.as_str() == s)
            .ok_or_else(|| {
                // Bounded so a hostile request cannot blow up the error text.
                let shown: String = s.chars().take(32).collect();
                PkiError::UnsupportedKey(format!("unknown key algorithm {shown:?}"))
            })
    }
}

/// The public-key type as it appears in a SubjectPublicKeyInfo, independent of RSA size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
}

impl KeyKind {
    /// The rcgen algorithm whose SPKI encoding matches this key type.
    ///
    /// rcgen writes SPKI from "signature algorithm" descriptors; for RSA any PKCS#1 v1.5
    /// descriptor yields `rsaEncryption` with NULL parameters.
    pub(crate) fn rcgen_alg(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            KeyKind::Rsa => &rcgen::PKCS_RSA_SHA256,
            KeyKind::EcP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyKind::EcP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        }
    }
}

/// A borrowed public key (raw `subjectPublicKey` bits plus type) that rcgen can embed in a
/// certificate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PublicKeyRef<'a> {
    pub(crate) raw: &'a [u8],
    pub(crate) kind: KeyKind,
}

impl rcgen::PublicKeyData for PublicKeyRef<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.raw
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.kind.rcgen_alg()
    }
}

/// A private key held as PKCS#8 DER.
///
/// The DER is wiped from memory on drop; `Debug` shows only the algorithm. Wiping is best
/// effort: buffers inside aws-lc are cleansed by aws-lc, but PEM *decoding* (in
/// [`PrivateKey::from_pem`]) goes through the `pem` crate, whose temporaries are not wiped.
///
/// Generating keys is CPU-heavy for RSA (RSA-4096 can take a second or more) and this type's
/// constructors are plain blocking functions: async callers should run them on a blocking
/// thread (e.g. `tokio::task::spawn_blocking`).
#[derive(Clone)]
pub struct PrivateKey {
    pkcs8: Zeroizing<Vec<u8>>,
    algorithm: KeyAlgorithm,
    /// Raw `subjectPublicKey` bits (RSAPublicKey DER, or the uncompressed EC point).
    public_key: Vec<u8>,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.algorithm)
            .field("der", &"[redacted]")
            .finish()
    }
}

fn ec_alg(alg: KeyAlgorithm) -> Option<&'static EcdsaSigningAlgorithm> {
    match alg {
        KeyAlgorithm::EcP256 => Some(&ECDSA_P256_SHA256_ASN1_SIGNING),
        KeyAlgorithm::EcP384 => Some(&ECDSA_P384_SHA384_ASN1_SIGNING),
        _ => None,
    }
}

impl PrivateKey {
    /// Generates a new key (blocking; RSA generation takes from tens of milliseconds up to
    /// seconds — run it on a blocking thread from async code).
    pub fn generate(algorithm: KeyAlgorithm) -> Result<Self, PkiError> {
        let size = match algorithm {
            KeyAlgorithm::Rsa2048 => KeySize::Rsa2048,
            KeyAlgorithm::Rsa3072 => KeySize::Rsa3072,
            KeyAlgorithm::Rsa4096 => KeySize::Rsa4096,
            KeyAlgorithm::EcP256 | KeyAlgorithm::EcP384 => {
                let alg = ec_alg(algorithm).ok_or(PkiError::Crypto("EC key generation"))?;
                let pair = EcdsaKeyPair::generate(alg)
                    .map_err(|_| PkiError::Crypto("EC key generation"))?;
                return Self::from_ec_pair(&pair, algorithm);
            }
        };
        let pair =
            RsaKeyPair::generate(size).map_err(|_| PkiError::Crypto("RSA key generation"))?;
        Self::from_rsa_pair(&pair)
    }

    fn from_ec_pair(pair: &EcdsaKeyPair, algorithm: KeyAlgorithm) -> Result<Self, PkiError> {
        let doc = pair
            .to_pkcs8v1()
            .map_err(|_| PkiError::Crypto("PKCS#8 encoding"))?;
        Ok(Self {
            pkcs8: Zeroizing::new(doc.as_ref().to_vec()),
            algorithm,
            public_key: pair.public_key().as_ref().to_vec(),
        })
    }

    fn from_rsa_pair(pair: &RsaKeyPair) -> Result<Self, PkiError> {
        let bits = pair.public_modulus_len() * 8;
        let algorithm = KeyAlgorithm::from_rsa_bits(bits)
            .ok_or_else(|| PkiError::UnsupportedKey(format!("RSA {bits}-bit")))?;
        let der = pair
            .as_der()
            .map_err(|_| PkiError::Crypto("PKCS#8 encoding"))?;
        Ok(Self {
            pkcs8: Zeroizing::new(der.as_ref().to_vec()),
            algorithm,
            public_key: pair.public_key().as_ref().to_vec(),
        })
    }

    /// Imports an unencrypted PKCS#8 `PrivateKeyInfo` (DER).
    ///
    /// Accepts RSA 2048/3072/4096 and EC P-256/P-384; other RSA sizes, curves and key types
    /// are [`PkiError::UnsupportedKey`]; malformed input is [`PkiError::BadKeyPem`].
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, PkiError> {
        match pkcs8_key_kind(der)? {
            KeyKind::Rsa => {
                let pair = RsaKeyPair::from_pkcs8(der).map_err(rsa_rejected)?;
                Self::from_rsa_pair(&pair)
            }
            kind @ (KeyKind::EcP256 | KeyKind::EcP384) => {
                let algorithm = if kind == KeyKind::EcP256 {
                    KeyAlgorithm::EcP256
                } else {
                    KeyAlgorithm::EcP384
                };
                let alg = ec_alg(algorithm).ok_or(PkiError::BadKeyPem)?;
                let pair = EcdsaKeyPair::from_pkcs8(alg, der).map_err(|_| PkiError::BadKeyPem)?;
                Self::from_ec_pair(&pair, algorithm)
            }
        }
    }

    /// Imports a PEM private key.
    ///
    /// Takes the first `PRIVATE KEY` (PKCS#8), `RSA PRIVATE KEY` (PKCS#1) or `EC PRIVATE KEY`
    /// (SEC1, P-256/P-384) block, ignoring other blocks such as certificates or
    /// `EC PARAMETERS`. The key is converted to PKCS#8. Encrypted keys are rejected with
    /// [`PkiError::BadKeyPem`].
    pub fn from_pem(pem_text: &str) -> Result<Self, PkiError> {
        let blocks = pem::parse_many(pem_text).map_err(|_| PkiError::BadKeyPem)?;
        let block = blocks
            .into_iter()
            .find(|b| {
                matches!(
                    b.tag(),
                    "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "ENCRYPTED PRIVATE KEY"
                )
            })
            .ok_or(PkiError::BadKeyPem)?;
        // Legacy OpenSSL encryption is signalled by a Proc-Type header.
        let encrypted =
            block.tag() == "ENCRYPTED PRIVATE KEY" || block.headers().get("Proc-Type").is_some();
        let tag = block.tag().to_owned();
        let der = Zeroizing::new(block.into_contents());
        if encrypted {
            return Err(PkiError::BadKeyPem);
        }
        match tag.as_str() {
            "PRIVATE KEY" => Self::from_pkcs8_der(&der),
            "RSA PRIVATE KEY" => {
                let pair = RsaKeyPair::from_der(&der).map_err(rsa_rejected)?;
                Self::from_rsa_pair(&pair)
            }
            _ => {
                for algorithm in [KeyAlgorithm::EcP256, KeyAlgorithm::EcP384] {
                    let alg = ec_alg(algorithm).ok_or(PkiError::BadKeyPem)?;
                    if let Ok(pair) = EcdsaKeyPair::from_private_key_der(alg, &der) {
                        return Self::from_ec_pair(&pair, algorithm);
                    }
                }
                Err(PkiError::BadKeyPem)
            }
        }
    }

    /// The key as a PKCS#8 PEM block (`-----BEGIN PRIVATE KEY-----`, LF line endings).
    pub fn to_pem(&self) -> Zeroizing<String> {
        pem_encode_secret("PRIVATE KEY", &self.pkcs8)
    }

    /// The key as PKCS#8 DER.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The raw `subjectPublicKey` bits: the PKCS#1 `RSAPublicKey` DER for RSA, the
    /// uncompressed point for EC.
    pub fn public_key_raw(&self) -> &[u8] {
        &self.public_key
    }

    pub(crate) fn public_key_ref(&self) -> PublicKeyRef<'_> {
        PublicKeyRef {
            raw: &self.public_key,
            kind: self.algorithm.kind(),
        }
    }
}

/// RSA keys aws-lc rejects for size are "unsupported"; anything else is malformed.
fn rsa_rejected(e: aws_lc_rs::error::KeyRejected) -> PkiError {
    match e.description_() {
        "TooSmall" => PkiError::UnsupportedKey("RSA key smaller than 2048 bits".to_owned()),
        "TooLarge" => PkiError::UnsupportedKey("RSA key larger than 8192 bits".to_owned()),
        _ => PkiError::BadKeyPem,
    }
}

/// Reads the key type from a PKCS#8 `PrivateKeyInfo` without touching the secret part.
fn pkcs8_key_kind(der: &[u8]) -> Result<KeyKind, PkiError> {
    let (_, outer) = Any::from_der(der).map_err(|_| PkiError::BadKeyPem)?;
    if outer.tag() != Tag::Sequence {
        return Err(PkiError::BadKeyPem);
    }
    let (rest, version) = Any::from_der(outer.data).map_err(|_| PkiError::BadKeyPem)?;
    if version.tag() != Tag::Integer {
        return Err(PkiError::BadKeyPem);
    }
    let (_, alg) = AlgorithmIdentifier::from_der(rest).map_err(|_| PkiError::BadKeyPem)?;
    spki_kind(&alg)
}

/// Maps a public-key AlgorithmIdentifier to a supported key type.
pub(crate) fn spki_kind(alg: &AlgorithmIdentifier<'_>) -> Result<KeyKind, PkiError> {
    let oid = alg.algorithm.to_id_string();
    match oid.as_str() {
        OID_RSA_ENCRYPTION => Ok(KeyKind::Rsa),
        OID_EC_PUBLIC_KEY => {
            let curve = alg
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .ok_or_else(|| {
                    PkiError::UnsupportedKey("EC key without a named curve".to_owned())
                })?;
            match curve.as_str() {
                OID_P256 => Ok(KeyKind::EcP256),
                OID_P384 => Ok(KeyKind::EcP384),
                "1.3.132.0.35" => Err(PkiError::UnsupportedKey("EC P-521".to_owned())),
                other => Err(PkiError::UnsupportedKey(format!("EC curve {other}"))),
            }
        }
        other => Err(PkiError::UnsupportedKey(crate::util::key_type_name(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{TempDir, openssl};

    fn check_roundtrip(key: &PrivateKey) {
        let pem = key.to_pem();
        assert!(
            pem.starts_with("-----BEGIN PRIVATE KEY-----\n"),
            "{}",
            &*pem
        );
        assert!(pem.trim_end().ends_with("-----END PRIVATE KEY-----"));
        assert!(!pem.contains('\r'));
        let back = PrivateKey::from_pem(&pem).unwrap();
        assert_eq!(back.algorithm(), key.algorithm());
        assert_eq!(back.pkcs8_der(), key.pkcs8_der());
        assert_eq!(back.public_key_raw(), key.public_key_raw());
        let der_back = PrivateKey::from_pkcs8_der(key.pkcs8_der()).unwrap();
        assert_eq!(der_back.algorithm(), key.algorithm());
    }

    fn openssl_accepts(key: &PrivateKey, dir: &TempDir, name: &str) {
        let path = dir.write(name, key.to_pem().as_bytes());
        let out = openssl(&["pkey", "-in", path.to_str().unwrap(), "-noout"]);
        assert!(
            out.status.success(),
            "openssl pkey rejected {name}: {out:?}"
        );
    }

    #[test]
    fn algorithm_names_roundtrip() {
        for alg in KeyAlgorithm::ALL {
            assert_eq!(alg.as_str().parse::<KeyAlgorithm>().unwrap(), alg);
            assert_eq!(alg.to_string(), alg.as_str());
        }
        assert!(matches!(
            "RSA_1024".parse::<KeyAlgorithm>(),
            Err(PkiError::UnsupportedKey(_))
        ));
        assert!(matches!(
            "ec_p256".parse::<KeyAlgorithm>(),
            Err(PkiError::UnsupportedKey(_))
        ));
    }

    #[test]
    fn ec_keys_generate_roundtrip_and_openssl_accepts() {
        let dir = TempDir::new("ec-keys");
        for alg in [KeyAlgorithm::EcP256, KeyAlgorithm::EcP384] {
            let key = PrivateKey::generate(alg).unwrap();
            assert_eq!(key.algorithm(), alg);
            let point_len = if alg == KeyAlgorithm::EcP256 { 65 } else { 97 };
            assert_eq!(key.public_key_raw().len(), point_len);
            check_roundtrip(&key);
            openssl_accepts(&key, &dir, &format!("{alg}.pem"));
        }
    }

    #[test]
    fn rsa_2048_generate_roundtrip_and_openssl_accepts() {
        let dir = TempDir::new("rsa-key");
        let key = PrivateKey::generate(KeyAlgorithm::Rsa2048).unwrap();
        assert_eq!(key.algorithm(), KeyAlgorithm::Rsa2048);
        check_roundtrip(&key);
        openssl_accepts(&key, &dir, "rsa2048.pem");
    }

    #[test]
    fn rsa_3072_and_4096_generate() {
        let dir = TempDir::new("rsa-big-keys");
        for alg in [KeyAlgorithm::Rsa3072, KeyAlgorithm::Rsa4096] {
            let key = PrivateKey::generate(alg).unwrap();
            assert_eq!(key.algorithm(), alg);
            check_roundtrip(&key);
            openssl_accepts(&key, &dir, &format!("{alg}.pem"));
        }
    }

    #[test]
    fn traditional_pem_formats_are_converted_to_pkcs8() {
        let dir = TempDir::new("trad-keys");
        for alg in [
            KeyAlgorithm::Rsa2048,
            KeyAlgorithm::EcP256,
            KeyAlgorithm::EcP384,
        ] {
            let key = PrivateKey::generate(alg).unwrap();
            let pkcs8 = dir.write("pkcs8.pem", key.to_pem().as_bytes());
            let out = openssl(&["pkey", "-in", pkcs8.to_str().unwrap(), "-traditional"]);
            assert!(out.status.success(), "{out:?}");
            let traditional = String::from_utf8(out.stdout).unwrap();
            let expected_tag = if alg.is_rsa() {
                "RSA PRIVATE KEY"
            } else {
                "EC PRIVATE KEY"
            };
            assert!(traditional.contains(expected_tag), "{traditional}");
            // Surrounding blocks (a certificate, EC PARAMETERS) are skipped.
            let noisy = format!(
                "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{traditional}"
            );
            let back = PrivateKey::from_pem(&noisy).unwrap();
            assert_eq!(back.algorithm(), alg);
            assert_eq!(back.public_key_raw(), key.public_key_raw());
            assert!(back.to_pem().contains("BEGIN PRIVATE KEY"));
        }
    }

    #[test]
    fn bad_and_unsupported_keys_are_rejected() {
        assert!(matches!(
            PrivateKey::from_pem("garbage"),
            Err(PkiError::BadKeyPem)
        ));
        assert!(matches!(
            PrivateKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
            Err(PkiError::BadKeyPem)
        ));
        assert!(matches!(
            PrivateKey::from_pkcs8_der(&[0x30, 0x00]),
            Err(PkiError::BadKeyPem)
        ));
        let cert_only = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            PrivateKey::from_pem(cert_only),
            Err(PkiError::BadKeyPem)
        ));
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(matches!(
            PrivateKey::from_pem(encrypted),
            Err(PkiError::BadKeyPem)
        ));

        // Ed25519 and P-521 are well-formed but not supported.
        let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        assert!(matches!(
            PrivateKey::from_pem(&ed.serialize_pem()),
            Err(PkiError::UnsupportedKey(_))
        ));
        let p521 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
        let err = PrivateKey::from_pem(&p521.serialize_pem()).unwrap_err();
        assert!(
            matches!(&err, PkiError::UnsupportedKey(s) if s.contains("P-521")),
            "{err}"
        );
    }

    #[test]
    fn debug_does_not_leak_key_material() {
        let key = PrivateKey::generate(KeyAlgorithm::EcP256).unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains("EcP256"));
        assert!(!shown.contains(&hex::encode(&key.pkcs8_der()[..8])));
        assert!(shown.len() < 100, "{shown}");
    }
}
