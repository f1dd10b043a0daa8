//! Reading what a user imports (ImportCertificate): a leaf certificate, its chain and its
//! private key, in PEM, checked against each other, and whether the chain reaches a certificate
//! the server trusts.
//!
//! [`parse_import`] checks, in this order, and stops at the first refusal:
//! 1. `certificate`: `-----BEGIN CERTIFICATE-----` / `-----END CERTIFICATE-----` markers, each
//!    BEGIN with its END ([`ImportError::CertificateMarkers`]); no block empty between its
//!    markers ([`ImportError::CertificateEmpty`]); every block an X.509 certificate
//!    ([`ImportError::Certificate`]). The first block is the leaf; the others are its chain
//!    unless a chain is given separately, in which case only the leaf is taken;
//! 2. the chain (when given and not blank): the same markers, and every block a certificate
//!    ([`ImportError::Chain`] for anything wrong with it);
//! 3. the order: each certificate's issuer is the next one's subject, leaf first, then the
//!    lowest CA ([`ImportError::ChainOrder`]);
//! 4. the chain by its signatures, not only its names ([`crate::chain`]): the leaf not a CA
//!    ([`ImportError::LeafIsCa`]), without a critical extension OpenSCM does not process
//!    ([`ImportError::CriticalExtension`], chain certificates too) and valid already at `now`
//!    ([`ImportError::NotYetValid`]; an expired leaf is accepted); no loop
//!    ([`ImportError::ChainLoop`]); each signature verifies, from the leaf to the last certificate
//!    given, a self-signed last one included ([`ImportError::ChainSignature`]); each chain
//!    certificate may issue the one below it ([`ImportError::ChainIssuer`]);
//! 5. the leaf's names: its subject CN and its DNS subjectAltNames that are DNS names; none is
//!    [`ImportError::NoDomain`];
//! 6. `private_key`: BEGIN/END markers of a private key ([`ImportError::KeyMarkers`]); an
//!    unencrypted PKCS#8, PKCS#1 (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`) key of a
//!    supported type, RSA 2048/3072/4096 or EC P-256/P-384 ([`ImportError::Key`]);
//! 7. the key is the leaf's ([`ImportError::KeyMismatch`]).
//!
//! An import that passes carries the verdict on its chain ([`ImportedCertificate::trust`]):
//! trusted when it reaches one of the given [`TrustAnchors`], else why not.
//!
//! `\r\n` line endings are accepted everywhere. Text outside the blocks is ignored.

use time::OffsetDateTime;

use crate::cert::{CertificateInfo, parse_certificate_der};
use crate::chain::{ChainTrust, TrustAnchors, check_chain};
use crate::key::PrivateKey;
use crate::name::DnsName;
use crate::util::pem_encode;

/// Why an import was refused. No variant carries key material. Exhaustive on purpose: the
/// caller maps every kind to its own API code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// The certificate text lacks its BEGIN/END markers (or a BEGIN has no END).
    #[error(
        "the certificate must start with -----BEGIN CERTIFICATE----- and end with -----END CERTIFICATE-----"
    )]
    CertificateMarkers,
    /// A certificate block is empty between its markers.
    #[error("the certificate has no content between its BEGIN and END markers")]
    CertificateEmpty,
    /// A certificate block is not an X.509 certificate (the text says which).
    #[error("{0}")]
    Certificate(String),
    /// The chain is not a sequence of PEM certificates (the text says what is wrong).
    #[error("{0}")]
    Chain(String),
    /// A certificate's issuer is not the next one's subject (the text says where).
    #[error("{0}")]
    ChainOrder(String),
    /// The leaf is a CA certificate, `basicConstraints` CA:TRUE (the text names it).
    #[error("{0}")]
    LeafIsCa(String),
    /// A certificate has a critical extension OpenSCM does not process, or one it cannot read
    /// (the text names the certificate and the extension).
    #[error("{reason}")]
    CriticalExtension {
        /// A chain certificate (else the leaf).
        in_chain: bool,
        /// What is wrong, naming the certificate.
        reason: String,
    },
    /// The leaf's validity starts later than now (with [`crate::chain::NOT_BEFORE_LEEWAY`]).
    #[error("{0}")]
    NotYetValid(String),
    /// A CA comes twice along the chain, or the last certificate is issued by one before it
    /// (the text names them).
    #[error("{0}")]
    ChainLoop(String),
    /// A signature along the chain does not verify with the next certificate's key (the same
    /// name, another key), a self-signed last certificate's with its own, or one uses an
    /// algorithm OpenSCM cannot verify (the text names the certificates).
    #[error("{0}")]
    ChainSignature(String),
    /// A chain certificate may not issue the certificate below it: not a CA, no keyCertSign,
    /// its path length or its DNS name constraints exceeded (the text names it and says why).
    #[error("{0}")]
    ChainIssuer(String),
    /// The leaf names no DNS name (no DNS subjectAltName, no DNS-name CN).
    #[error("the certificate names no domain (no DNS subjectAltName, no subject CN)")]
    NoDomain,
    /// The key text lacks the BEGIN/END markers of a private key.
    #[error(
        "the private key must start with -----BEGIN PRIVATE KEY----- (or RSA/EC PRIVATE KEY) and end with its END marker"
    )]
    KeyMarkers,
    /// The key does not parse, is passphrase-protected or of an unsupported type (the text says
    /// which, never the key).
    #[error("{0}")]
    Key(String),
    /// The key is not the leaf's.
    #[error("the certificate does not match the private key")]
    KeyMismatch,
}

/// An import that passed every check.
#[derive(Debug)]
pub struct ImportedCertificate {
    /// The leaf.
    pub leaf: CertificateInfo,
    /// The leaf as canonical PEM (LF, 64 columns).
    pub leaf_pem: String,
    /// The chain certificates, lowest CA first.
    pub chain: Vec<CertificateInfo>,
    /// The chain as canonical PEM blocks one after the other; `""` without a chain.
    pub chain_pem: String,
    /// The leaf's names: the CN first when it is a DNS name, then the DNS subjectAltNames,
    /// each once.
    pub names: Vec<DnsName>,
    /// The key.
    pub key: PrivateKey,
    /// Whether the chain reaches a trust anchor given to [`parse_import`], and if not why.
    pub trust: ChainTrust,
}

const BEGIN_CERT: &str = "-----BEGIN CERTIFICATE-----";
const END_CERT: &str = "-----END CERTIFICATE-----";
const KEY_TAGS: [&str; 4] = [
    "PRIVATE KEY",
    "RSA PRIVATE KEY",
    "EC PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY",
];

/// How a certificate block was wrong.
enum BlockError {
    Markers,
    Empty,
    /// Block number (1-based) that is not a certificate.
    Unparsable(usize),
}

/// The certificate blocks of `text` (LF line endings), each decoded.
fn certificate_blocks(text: &str) -> Result<Vec<(CertificateInfo, String)>, BlockError> {
    let begins = text.matches(BEGIN_CERT).count();
    if begins == 0 || begins != text.matches(END_CERT).count() {
        return Err(BlockError::Markers);
    }
    let mut out = Vec::with_capacity(begins);
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN_CERT) {
        let after_begin = rest.get(start + BEGIN_CERT.len()..).unwrap_or_default();
        let Some(end) = after_begin.find(END_CERT) else {
            return Err(BlockError::Markers);
        };
        let body = after_begin.get(..end).unwrap_or_default();
        if body.contains(BEGIN_CERT) {
            return Err(BlockError::Markers);
        }
        if body.trim().is_empty() {
            return Err(BlockError::Empty);
        }
        let number = out.len() + 1;
        let block = format!("{BEGIN_CERT}{body}{END_CERT}");
        let der = pem::parse(block.as_bytes())
            .map_err(|_| BlockError::Unparsable(number))?
            .into_contents();
        let info = parse_certificate_der(&der).map_err(|_| BlockError::Unparsable(number))?;
        let canonical = pem_encode("CERTIFICATE", &der);
        out.push((info, canonical));
        rest = after_begin.get(end + END_CERT.len()..).unwrap_or_default();
    }
    Ok(out)
}

/// Whether `text` holds the BEGIN and END markers of one private-key block.
fn has_key_markers(text: &str) -> bool {
    KEY_TAGS.iter().any(|tag| {
        let begin = format!("-----BEGIN {tag}-----");
        let end = format!("-----END {tag}-----");
        text.find(&begin)
            .is_some_and(|at| text.get(at..).is_some_and(|t| t.contains(&end)))
    })
}

/// The leaf's DNS names: CN first when it is one, then the DNS subjectAltNames, each once.
fn leaf_names(leaf: &CertificateInfo) -> Vec<DnsName> {
    let mut names = Vec::new();
    let candidates = leaf.common_name.iter().chain(leaf.dns_names.iter());
    for n in candidates.filter_map(|n| DnsName::parse(n).ok()) {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    names
}

/// Checks and reads an import (see the module documentation for the checks and their order).
///
/// `chain` `None` or blank: the blocks of `certificate` after the first are the chain. `now` is
/// when the leaf must be valid already (the caller's clock); `anchors` are the certificates the
/// chain is trusted for reaching.
pub fn parse_import(
    certificate: &str,
    chain: Option<&str>,
    private_key: &str,
    now: OffsetDateTime,
    anchors: &TrustAnchors,
) -> Result<ImportedCertificate, ImportError> {
    let certificate = certificate.replace("\r\n", "\n");
    let mut blocks = certificate_blocks(&certificate)
        .map_err(|e| match e {
            BlockError::Markers => ImportError::CertificateMarkers,
            BlockError::Empty => ImportError::CertificateEmpty,
            BlockError::Unparsable(n) => ImportError::Certificate(format!(
                "certificate {n} is not a valid X.509 certificate"
            )),
        })?
        .into_iter();
    let Some((leaf, leaf_pem)) = blocks.next() else {
        return Err(ImportError::CertificateMarkers);
    };
    let chain_blocks: Vec<(CertificateInfo, String)> = match chain.map(|c| c.replace("\r\n", "\n"))
    {
        Some(c) if !c.trim().is_empty() => certificate_blocks(&c).map_err(|e| {
            ImportError::Chain(match e {
                BlockError::Markers => "the certificate chain must be PEM certificates, each \
                         between -----BEGIN CERTIFICATE----- and -----END CERTIFICATE-----"
                    .to_owned(),
                BlockError::Empty => {
                    "a certificate of the chain is empty between its markers".to_owned()
                }
                BlockError::Unparsable(n) => {
                    format!("certificate {n} of the chain is not a valid X.509 certificate")
                }
            })
        })?,
        _ => blocks.collect(),
    };
    let (chain, chain_pems): (Vec<CertificateInfo>, Vec<String>) = chain_blocks.into_iter().unzip();
    let mut previous = &leaf;
    for (i, ca) in chain.iter().enumerate() {
        if previous.issuer != ca.subject {
            let which = if i == 0 {
                "the leaf".to_owned()
            } else {
                format!("chain certificate {i}")
            };
            return Err(ImportError::ChainOrder(format!(
                "the issuer of {which} is not the subject of chain certificate {}: the chain must \
                 go from the certificate's issuer up, lowest CA first",
                i + 1
            )));
        }
        previous = ca;
    }
    let names = leaf_names(&leaf);
    let trust = check_chain(&leaf, &chain, &names, now, anchors)?;
    if names.is_empty() {
        return Err(ImportError::NoDomain);
    }
    let private_key = private_key.replace("\r\n", "\n");
    if !has_key_markers(&private_key) {
        return Err(ImportError::KeyMarkers);
    }
    if private_key.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || private_key.contains("Proc-Type: 4,ENCRYPTED")
    {
        return Err(ImportError::Key(
            "the private key is passphrase-protected: import it unencrypted".to_owned(),
        ));
    }
    let key = PrivateKey::from_pem(&private_key).map_err(|e| ImportError::Key(e.to_string()))?;
    if !leaf.public_key_matches(&key) {
        return Err(ImportError::KeyMismatch);
    }
    Ok(ImportedCertificate {
        leaf,
        leaf_pem,
        chain_pem: chain_pems.concat(),
        chain,
        names,
        key,
        trust,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SignatureAlgorithm,
    };

    /// [`parse_import`] now, with no trust anchors.
    fn parse(
        certificate: &str,
        chain: Option<&str>,
        private_key: &str,
    ) -> Result<ImportedCertificate, ImportError> {
        parse_import(
            certificate,
            chain,
            private_key,
            OffsetDateTime::now_utc(),
            &TrustAnchors::new(),
        )
    }

    /// A CA (self-signed root or intermediate under `parent`) with its signing key.
    struct Ca {
        pem: String,
        params: CertificateParams,
        key: KeyPair,
    }

    fn ca(cn: &str, parent: Option<&Ca>) -> Ca {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = match parent {
            None => params.self_signed(&key).unwrap(),
            Some(p) => params
                .signed_by(&key, &Issuer::from_params(&p.params, &p.key))
                .unwrap(),
        };
        Ca {
            pem: cert.pem(),
            params,
            key,
        }
    }

    fn leaf_with(
        alg: &'static SignatureAlgorithm,
        cn: Option<&str>,
        sans: &[&str],
        issuer: &Ca,
    ) -> (String, String) {
        let key = if alg == &rcgen::PKCS_RSA_SHA256 {
            KeyPair::generate_rsa_for(alg, rcgen::RsaKeySize::_2048).unwrap()
        } else {
            KeyPair::generate_for(alg).unwrap()
        };
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        let cert = params
            .signed_by(&key, &Issuer::from_params(&issuer.params, &issuer.key))
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn chain3() -> (Ca, Ca) {
        let root = ca("Import Test Root", None);
        let inter = ca("Import Test Intermediate", Some(&root));
        (root, inter)
    }

    #[test]
    fn leaf_chain_and_key_are_read() {
        let (root, inter) = chain3();
        let (leaf, key) = leaf_with(
            &rcgen::PKCS_ECDSA_P256_SHA256,
            Some("www.import.test"),
            &["www.import.test", "api.import.test", "*.import.test"],
            &inter,
        );
        // Separate chain, CRLF line endings everywhere.
        let crlf = |s: &str| s.replace('\n', "\r\n");
        let chain = format!("{}{}", inter.pem, root.pem);
        let got = parse(&crlf(&leaf), Some(&crlf(&chain)), &crlf(&key)).unwrap();
        assert_eq!(got.leaf_pem, leaf);
        assert_eq!(got.chain_pem, chain);
        assert_eq!(got.chain.len(), 2);
        assert_eq!(
            got.names.iter().map(DnsName::as_str).collect::<Vec<_>>(),
            ["www.import.test", "api.import.test", "*.import.test"]
        );
        assert!(got.leaf.public_key_matches(&got.key));
        assert!(got.leaf.issuer.contains("Import Test Intermediate"));

        // The bundle in `certificate`, no chain: the rest is the chain.
        let bundle = format!("{leaf}{}{}", inter.pem, root.pem);
        let got = parse(&bundle, None, &key).unwrap();
        assert_eq!(
            (got.leaf_pem.as_str(), got.chain_pem.as_str()),
            (leaf.as_str(), chain.as_str())
        );
        let got = parse(&bundle, Some("  \n"), &key).unwrap();
        assert_eq!(got.chain.len(), 2, "a blank chain is no chain");

        // The bundle in `certificate` and a chain: only the leaf is taken from `certificate`.
        let got = parse(&bundle, Some(&inter.pem), &key).unwrap();
        assert_eq!(got.chain_pem, inter.pem);

        // No chain at all.
        let got = parse(&leaf, None, &key).unwrap();
        assert!(got.chain.is_empty() && got.chain_pem.is_empty());
    }

    #[test]
    fn key_forms_and_types() {
        let (_, inter) = chain3();
        for alg in [
            &rcgen::PKCS_ECDSA_P256_SHA256,
            &rcgen::PKCS_ECDSA_P384_SHA384,
            &rcgen::PKCS_RSA_SHA256,
        ] {
            let (leaf, key) = leaf_with(alg, Some("k.import.test"), &[], &inter);
            let got = parse(&leaf, None, &key).unwrap();
            assert_eq!(got.names.len(), 1, "the CN alone is a name");
            // The traditional forms, as openssl writes them.
            let der = pem::parse(&key).unwrap().into_contents();
            parse(&leaf, None, &traditional(&der)).unwrap();
        }
    }

    /// The PKCS#1 / SEC1 form of a PKCS#8 key, through the openssl CLI.
    fn traditional(pkcs8_der: &[u8]) -> String {
        let dir = crate::test_util::TempDir::new("import-key");
        let path = dir.write("k.der", pkcs8_der);
        let out = crate::test_util::openssl(&[
            "pkey",
            "-inform",
            "DER",
            "-in",
            path.to_str().unwrap(),
            "-traditional",
        ]);
        assert!(
            out.status.success(),
            "{}",
            crate::test_util::output_text(&out)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("-----BEGIN RSA PRIVATE KEY-----")
                || text.contains("-----BEGIN EC PRIVATE KEY-----"),
            "{text}"
        );
        text
    }

    #[test]
    fn refusals() {
        let (root, inter) = chain3();
        let (leaf, key) = leaf_with(
            &rcgen::PKCS_ECDSA_P256_SHA256,
            None,
            &["r.import.test"],
            &inter,
        );
        let body = leaf
            .trim()
            .trim_start_matches(BEGIN_CERT)
            .trim_end_matches(END_CERT)
            .to_owned();
        let err = |c: &str, chain: Option<&str>, k: &str| parse(c, chain, k).unwrap_err();

        // Markers.
        assert_eq!(err(&body, None, &key), ImportError::CertificateMarkers);
        assert_eq!(err("", None, &key), ImportError::CertificateMarkers);
        assert_eq!(
            err(&format!("{BEGIN_CERT}{body}"), None, &key),
            ImportError::CertificateMarkers
        );
        assert_eq!(
            err(&format!("{body}{END_CERT}"), None, &key),
            ImportError::CertificateMarkers
        );
        // Empty body.
        assert_eq!(
            err(&format!("{BEGIN_CERT}\n\n{END_CERT}\n"), None, &key),
            ImportError::CertificateEmpty
        );
        // Not a certificate.
        assert!(matches!(
            err(&format!("{BEGIN_CERT}\nAAAA\n{END_CERT}\n"), None, &key),
            ImportError::Certificate(_)
        ));
        assert!(matches!(
            err(&format!("{BEGIN_CERT}\n!!!!\n{END_CERT}\n"), None, &key),
            ImportError::Certificate(_)
        ));
        // A bad second block of `certificate` is a bad certificate.
        assert!(matches!(
            err(&format!("{leaf}{BEGIN_CERT}\nAAAA\n{END_CERT}\n"), None, &key),
            ImportError::Certificate(m) if m.contains("certificate 2")
        ));
        // Chain.
        for chain in [
            "not a chain".to_owned(),
            format!("{BEGIN_CERT}\nAAAA\n{END_CERT}\n"),
            format!("{}{BEGIN_CERT}\n\n{END_CERT}\n", inter.pem),
        ] {
            assert!(
                matches!(err(&leaf, Some(&chain), &key), ImportError::Chain(_)),
                "{chain}"
            );
        }
        // Order: root before intermediate, or the wrong CA.
        let wrong = format!("{}{}", root.pem, inter.pem);
        assert!(matches!(
            err(&leaf, Some(&wrong), &key),
            ImportError::ChainOrder(m) if m.contains("the leaf")
        ));
        let other = ca("Another CA", None);
        assert!(matches!(
            err(&leaf, Some(&format!("{}{}", inter.pem, other.pem)), &key),
            ImportError::ChainOrder(m) if m.contains("chain certificate 1")
        ));
        assert!(matches!(
            err(&format!("{leaf}{}", root.pem), None, &key),
            ImportError::ChainOrder(_)
        ));
        // No domain: neither SAN DNS nor a DNS-name CN.
        let (nameless, nameless_key) = leaf_with(
            &rcgen::PKCS_ECDSA_P256_SHA256,
            Some("My Server"),
            &["10.0.0.1"],
            &inter,
        );
        assert_eq!(err(&nameless, None, &nameless_key), ImportError::NoDomain);
        // Key markers, key content, encrypted, unsupported, mismatch.
        let key_body = key
            .trim()
            .trim_start_matches("-----BEGIN PRIVATE KEY-----")
            .trim_end_matches("-----END PRIVATE KEY-----")
            .to_owned();
        assert_eq!(err(&leaf, None, &key_body), ImportError::KeyMarkers);
        assert_eq!(err(&leaf, None, ""), ImportError::KeyMarkers);
        assert_eq!(err(&leaf, None, &leaf), ImportError::KeyMarkers);
        assert!(matches!(
            err(
                &leaf,
                None,
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
            ),
            ImportError::Key(_)
        ));
        assert!(matches!(
            err(
                &leaf,
                None,
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"
            ),
            ImportError::Key(m) if m.contains("passphrase")
        ));
        let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        assert!(matches!(
            err(&leaf, None, &ed.serialize_pem()),
            ImportError::Key(_)
        ));
        let (_, other_key) = leaf_with(
            &rcgen::PKCS_ECDSA_P256_SHA256,
            None,
            &["x.import.test"],
            &inter,
        );
        assert_eq!(err(&leaf, None, &other_key), ImportError::KeyMismatch);
        // A key of another type than the certificate's.
        let (_, p384) = leaf_with(
            &rcgen::PKCS_ECDSA_P384_SHA384,
            None,
            &["x.import.test"],
            &inter,
        );
        assert_eq!(err(&leaf, None, &p384), ImportError::KeyMismatch);
    }
}
