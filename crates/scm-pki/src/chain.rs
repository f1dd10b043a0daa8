//! The chain of an imported certificate, checked by its signatures rather than by its names, and
//! whether it reaches a certificate the server trusts ([`TrustAnchors`], [`ChainTrust`]).
//!
//! [`crate::import::parse_import`] runs these checks once the chain's names are in order (each
//! certificate's issuer is the next one's subject); they stop at the first refusal, which names
//! the certificate at fault (`the leaf "CN=…"`, `chain certificate 2 "CN=…"`):
//! 1. the leaf: not a CA (`basicConstraints` CA:TRUE is [`ImportError::LeafIsCa`]); no critical
//!    extension OpenSCM does not process ([`ImportError::CriticalExtension`]); valid already, with
//!    [`NOT_BEFORE_LEEWAY`] for clocks that differ ([`ImportError::NotYetValid`]). An expired leaf
//!    is no refusal: it is imported and reads `EXPIRED`;
//! 2. every chain certificate: no critical extension OpenSCM does not process
//!    ([`ImportError::CriticalExtension`], `in_chain`);
//! 3. no loop: no CA (subject and key) twice in the chain, and the last certificate not issued by
//!    one before it ([`ImportError::ChainLoop`]);
//! 4. each signature, from the leaf to the last certificate given: each certificate is signed by
//!    the key of the next one, and a last certificate that names itself as its issuer (a root)
//!    by its own key ([`ImportError::ChainSignature`], also when the algorithm is one OpenSCM
//!    cannot verify);
//! 5. each chain certificate may issue the one below it: `basicConstraints` CA:TRUE, `keyUsage`
//!    (when present) with keyCertSign, its path length constraint kept, and the leaf's DNS names
//!    within its DNS name constraints ([`ImportError::ChainIssuer`]).
//!
//! Critical extensions OpenSCM processes are those Go's crypto/x509 (and so step-ca) does:
//! subjectKeyIdentifier, keyUsage, subjectAltName, basicConstraints, nameConstraints (DNS names
//! are enforced; other name forms are not what an OpenSCM certificate is for),
//! cRLDistributionPoints, certificatePolicies, authorityKeyIdentifier, extKeyUsage and
//! authorityInfoAccess. Anything else marked critical (a CT precertificate poison, policy
//! constraints, a private extension) refuses the certificate, as RFC 5280 §4.2 requires.
//!
//! The validity of chain certificates is not checked: an expired cross-signature at the end of
//! a chain (Let's Encrypt's DST Root CA X3 one, for instance) is common and harmless.
//!
//! Then the verdict ([`ChainTrust`]), which is no refusal: walking up from the leaf, the first
//! certificate that is a trust anchor, or is signed by one (same name, and the signature verifies
//! with the anchor's key), makes the chain trusted; a chain given up to a root the server does not
//! trust, a self-signed certificate, or a chain that stops below any anchor is not.

use std::fmt;

use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::extensions::{GeneralName, GeneralSubtree, NameConstraints, ParsedExtension};
use x509_parser::prelude::FromDer;
use x509_parser::x509::{SubjectPublicKeyInfo, X509Name};

use crate::PkiError;
use crate::cert::{CertificateInfo, signature_algorithm_name};
use crate::import::ImportError;
use crate::name::DnsName;

/// How far in the future a leaf's `notBefore` may be and still count as valid now: clocks
/// differ, and a certificate made a moment ago elsewhere must import.
pub const NOT_BEFORE_LEEWAY: time::Duration = time::Duration::minutes(5);

/// The extensions that may be critical (OIDs): those OpenSCM processes, the set Go's crypto/x509
/// handles.
const KNOWN_CRITICAL: &[(&str, &str)] = &[
    ("2.5.29.14", "subjectKeyIdentifier"),
    ("2.5.29.15", "keyUsage"),
    ("2.5.29.17", "subjectAltName"),
    ("2.5.29.19", "basicConstraints"),
    ("2.5.29.30", "nameConstraints"),
    ("2.5.29.31", "cRLDistributionPoints"),
    ("2.5.29.32", "certificatePolicies"),
    ("2.5.29.35", "authorityKeyIdentifier"),
    ("2.5.29.37", "extKeyUsage"),
    ("1.3.6.1.5.5.7.1.1", "authorityInfoAccess"),
];

/// A certificate the server trusts as the end of an imported chain.
#[derive(Clone)]
struct Anchor {
    subject: String,
    subject_raw: Vec<u8>,
    /// SubjectPublicKeyInfo, DER.
    spki: Vec<u8>,
    source: String,
}

/// The certificates the server trusts as the end of an imported chain (its trust anchors): the
/// server adds the machine's trust store and the roots of its own CA. Each is known by its
/// subject and key, with where it came from (`source`, shown in verdicts); its own signature,
/// extensions and validity are not looked at (as for the anchors of any TLS client).
#[derive(Clone, Default)]
pub struct TrustAnchors {
    anchors: Vec<Anchor>,
}

impl fmt::Debug for TrustAnchors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustAnchors")
            .field("len", &self.anchors.len())
            .finish()
    }
}

impl TrustAnchors {
    /// No anchors: no chain is trusted.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the DER certificate `der`, from `source` (e.g. `"system trust store"`). `Ok(false)`
    /// when an anchor with its subject and key is held already.
    pub fn add_der(&mut self, der: &[u8], source: &str) -> Result<bool, PkiError> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|_| PkiError::BadCertificatePem)?;
        let anchor = Anchor {
            subject: cert.subject().to_string(),
            subject_raw: cert.subject().as_raw().to_vec(),
            spki: cert.public_key().raw.to_vec(),
            source: source.to_owned(),
        };
        if self
            .anchors
            .iter()
            .any(|a| a.subject_raw == anchor.subject_raw && a.spki == anchor.spki)
        {
            return Ok(false);
        }
        self.anchors.push(anchor);
        Ok(true)
    }

    /// Adds every `CERTIFICATE` block of the PEM text `text` (other blocks are skipped).
    /// Returns how many were added and how many blocks were not certificates that parse.
    pub fn add_pem(&mut self, text: &str, source: &str) -> (usize, usize) {
        let (mut added, mut bad) = (0, 0);
        for block in crate::cert::pem_blocks(text, "CERTIFICATE") {
            match pem::parse(block.as_bytes()) {
                Ok(p) => match self.add_der(p.contents(), source) {
                    Ok(true) => added += 1,
                    Ok(false) => {}
                    Err(_) => bad += 1,
                },
                Err(_) => bad += 1,
            }
        }
        (added, bad)
    }

    /// How many anchors.
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    /// The anchor that is `cert` (same subject, same key).
    fn same_as(&self, cert: &X509Certificate<'_>) -> Option<&Anchor> {
        self.anchors
            .iter()
            .find(|a| a.subject_raw == cert.subject().as_raw() && a.spki == cert.public_key().raw)
    }

    /// The anchor that issued `cert`: its subject is `cert`'s issuer and `cert`'s signature
    /// verifies with its key.
    fn issuer_of(&self, cert: &X509Certificate<'_>) -> Option<&Anchor> {
        let issuer = cert.issuer();
        let issuer_text = issuer.to_string();
        self.anchors.iter().find(|a| {
            (a.subject_raw == issuer.as_raw() || a.subject == issuer_text)
                && SubjectPublicKeyInfo::from_der(&a.spki)
                    .is_ok_and(|(_, spki)| cert.verify_signature(Some(&spki)).is_ok())
        })
    }
}

/// Whether an imported chain reaches a certificate the server trusts, and if not why. Recorded
/// with the certificate; `Display` is the sentence shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainTrust {
    /// The signatures lead to `anchor` (a subject), which the server trusts (from `source`).
    Trusted {
        /// The anchor's subject.
        anchor: String,
        /// Where the anchor comes from.
        source: String,
    },
    /// The certificate is self-signed (no chain), and the server does not trust it.
    SelfSigned,
    /// The chain is given up to `root`, a self-signed certificate the server does not trust.
    UntrustedRoot {
        /// The root's subject.
        root: String,
    },
    /// The chain stops at `last`, whose issuer `issuer` is neither given nor trusted.
    Incomplete {
        /// The subject of the last certificate given (the leaf's, without a chain).
        last: String,
        /// Its issuer.
        issuer: String,
    },
}

impl ChainTrust {
    /// Whether the chain reaches a trust anchor.
    pub fn is_trusted(&self) -> bool {
        matches!(self, Self::Trusted { .. })
    }
}

impl fmt::Display for ChainTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Trusted { anchor, source } => write!(
                f,
                "the chain reaches \"{anchor}\", which the server trusts ({source})"
            ),
            Self::SelfSigned => {
                f.write_str("the certificate is self-signed, and the server does not trust it")
            }
            Self::UntrustedRoot { root } => write!(
                f,
                "the chain ends at the self-signed root \"{root}\", which the server does not trust"
            ),
            Self::Incomplete { last, issuer } => write!(
                f,
                "the chain stops at \"{last}\", whose issuer \"{issuer}\" is neither given nor \
                 trusted by the server"
            ),
        }
    }
}

/// A certificate of the path, leaf first, with how messages name it.
struct Link<'a> {
    cert: X509Certificate<'a>,
    label: String,
}

fn label(position: usize, subject: &str) -> String {
    let shown = if subject.is_empty() {
        "(empty subject)".to_owned()
    } else {
        format!("\"{subject}\"")
    };
    if position == 0 {
        format!("the leaf {shown}")
    } else {
        format!("chain certificate {position} {shown}")
    }
}

fn same_name(a: &X509Name<'_>, b: &X509Name<'_>) -> bool {
    a.as_raw() == b.as_raw() || a.to_string() == b.to_string()
}

fn self_issued(cert: &X509Certificate<'_>) -> bool {
    same_name(cert.subject(), cert.issuer())
}

/// Why a signature is not accepted.
enum BadSignature {
    /// It does not verify with the key.
    Mismatch,
    /// Its algorithm (named) is not one OpenSCM verifies.
    Unsupported(String),
}

fn verify(cert: &X509Certificate<'_>, key: &SubjectPublicKeyInfo<'_>) -> Result<(), BadSignature> {
    match cert.verify_signature(Some(key)) {
        Ok(()) => Ok(()),
        Err(X509Error::SignatureUnsupportedAlgorithm) => Err(BadSignature::Unsupported(
            signature_algorithm_name(&cert.signature_algorithm),
        )),
        Err(_) => Err(BadSignature::Mismatch),
    }
}

const VERIFIED_ALGORITHMS: &str = "RSA PKCS#1 v1.5 and PSS (2048 to 8192 bits), ECDSA P-256 and \
                                   P-384 with SHA-256 or SHA-384, and Ed25519";

/// The first critical extension of `cert` OpenSCM does not process, described.
fn unknown_critical(cert: &X509Certificate<'_>) -> Option<String> {
    cert.extensions()
        .iter()
        .filter(|e| e.critical)
        .find_map(|e| {
            let oid = e.oid.to_id_string();
            match KNOWN_CRITICAL.iter().find(|(known, _)| *known == oid) {
                None => Some(format!(
                    "a critical extension OpenSCM does not process (OID {oid}): a client that does \
                 not know it must refuse the certificate"
                )),
                Some((_, name)) if e.parsed_extension().error().is_some() => {
                    Some(format!("a critical {name} extension that cannot be read"))
                }
                Some(_) => None,
            }
        })
}

/// The DNS-name bases of `subtrees`, lower-cased, without a trailing dot.
fn dns_subtrees(subtrees: Option<&Vec<GeneralSubtree<'_>>>) -> Vec<String> {
    subtrees
        .into_iter()
        .flatten()
        .filter_map(|s| match s.base {
            GeneralName::DNSName(d) => Some(d.trim_end_matches('.').to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// Whether `name` is within the DNS subtree `base` (RFC 5280 §4.2.1.10: `example.com` holds
/// itself and every name under it; `.example.com` only the names under it; `""` every name).
fn within(name: &str, base: &str) -> bool {
    if base.is_empty() {
        return true;
    }
    if base.starts_with('.') {
        return name.ends_with(base);
    }
    name == base
        || name
            .strip_suffix(base)
            .is_some_and(|head| head.ends_with('.'))
}

/// The first of `names` the DNS name constraints `nc` do not allow, described.
fn outside_constraints(nc: &NameConstraints<'_>, names: &[DnsName]) -> Option<String> {
    let permitted = dns_subtrees(nc.permitted_subtrees.as_ref());
    let excluded = dns_subtrees(nc.excluded_subtrees.as_ref());
    names.iter().map(DnsName::as_str).find_map(|n| {
        if let Some(base) = excluded.iter().find(|b| within(n, b)) {
            return Some(format!("{n} is within its excluded names ({base})"));
        }
        (!permitted.is_empty() && !permitted.iter().any(|b| within(n, b))).then(|| {
            format!(
                "{n} is outside its permitted names ({})",
                permitted.join(", ")
            )
        })
    })
}

/// Checks the path `leaf` + `chain` (names in order already) and judges it against `anchors`
/// at `now`; see the module documentation for the checks, their order and the verdict.
pub(crate) fn check_chain(
    leaf: &CertificateInfo,
    chain: &[CertificateInfo],
    names: &[DnsName],
    now: OffsetDateTime,
    anchors: &TrustAnchors,
) -> Result<ChainTrust, ImportError> {
    let mut path: Vec<Link<'_>> = Vec::with_capacity(chain.len() + 1);
    for (position, info) in std::iter::once(leaf).chain(chain).enumerate() {
        // Each of them parsed already; a failure here would be a broken invariant.
        let (_, cert) = X509Certificate::from_der(&info.der).map_err(|_| {
            ImportError::Certificate(format!(
                "{} is not a valid X.509 certificate",
                label(position, &info.subject)
            ))
        })?;
        path.push(Link {
            cert,
            label: label(position, &info.subject),
        });
    }
    let Some((first, cas)) = path.split_first() else {
        return Err(ImportError::CertificateMarkers);
    };
    check_leaf(first, now)?;
    for ca in cas {
        if let Some(what) = unknown_critical(&ca.cert) {
            return Err(ImportError::CriticalExtension {
                in_chain: true,
                reason: format!("{} has {what}", ca.label),
            });
        }
    }
    check_loops(cas)?;
    check_signatures(&path)?;
    check_issuers(cas, names)?;
    Ok(verdict(&path, anchors))
}

fn check_leaf(leaf: &Link<'_>, now: OffsetDateTime) -> Result<(), ImportError> {
    let ca = leaf
        .cert
        .basic_constraints()
        .map_err(|_| {
            ImportError::Certificate(format!(
                "{} has its basicConstraints extension more than once",
                leaf.label
            ))
        })?
        .is_some_and(|bc| bc.value.ca);
    if ca {
        return Err(ImportError::LeafIsCa(format!(
            "{} is a CA certificate (basicConstraints CA:TRUE): import the server certificate \
             as `certificate` and its CAs as the chain",
            leaf.label
        )));
    }
    if let Some(what) = unknown_critical(&leaf.cert) {
        return Err(ImportError::CriticalExtension {
            in_chain: false,
            reason: format!("{} has {what}", leaf.label),
        });
    }
    let not_before = leaf.cert.validity().not_before.to_datetime();
    if not_before > now.checked_add(NOT_BEFORE_LEEWAY).unwrap_or(now) {
        return Err(ImportError::NotYetValid(format!(
            "{} is not valid before {} (UTC), and it is {} now",
            leaf.label,
            utc(not_before),
            utc(now)
        )));
    }
    Ok(())
}

fn utc(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// No CA twice, and the last not issued by one before it.
fn check_loops(cas: &[Link<'_>]) -> Result<(), ImportError> {
    fn same_ca(a: &Link<'_>, b: &Link<'_>) -> bool {
        a.cert.subject().as_raw() == b.cert.subject().as_raw()
            && a.cert.public_key().raw == b.cert.public_key().raw
    }
    for (i, later) in cas.iter().enumerate() {
        if let Some(earlier) = cas.iter().take(i).find(|e| same_ca(e, later)) {
            return Err(ImportError::ChainLoop(format!(
                "{} is {} again (the same subject and key): the chain loops; give each CA once, \
                 from the certificate's issuer up",
                later.label, earlier.label
            )));
        }
    }
    if let Some((last, before)) = cas.split_last()
        && !self_issued(&last.cert)
        && let Some(earlier) = before.iter().find(|e| {
            same_name(e.cert.subject(), last.cert.issuer())
                && verify(&last.cert, e.cert.public_key()).is_ok()
        })
    {
        return Err(ImportError::ChainLoop(format!(
            "{} is issued by {}, which comes before it: the chain loops; give each CA once, from \
             the certificate's issuer up",
            last.label, earlier.label
        )));
    }
    Ok(())
}

/// Each certificate signed by the next one's key; a last one that names itself as its issuer,
/// by its own.
fn check_signatures(path: &[Link<'_>]) -> Result<(), ImportError> {
    for pair in path.windows(2) {
        let [child, issuer] = pair else { continue };
        match verify(&child.cert, issuer.cert.public_key()) {
            Ok(()) => {}
            Err(BadSignature::Mismatch) => {
                return Err(ImportError::ChainSignature(format!(
                    "the signature of {} does not verify with the key of {}: that certificate \
                     has the name of its issuer but not its key (another CA of the same name, \
                     or a re-keyed one); give the CA certificate that signed it",
                    child.label, issuer.label
                )));
            }
            Err(BadSignature::Unsupported(alg)) => {
                return Err(ImportError::ChainSignature(format!(
                    "the signature of {} ({alg}) cannot be verified: OpenSCM verifies \
                     {VERIFIED_ALGORITHMS}",
                    child.label
                )));
            }
        }
    }
    if let Some(last) = path.last()
        && self_issued(&last.cert)
    {
        match verify(&last.cert, last.cert.public_key()) {
            Ok(()) => {}
            Err(BadSignature::Mismatch) => {
                return Err(ImportError::ChainSignature(format!(
                    "{} names itself as its issuer, but its signature does not verify with its \
                     own key",
                    last.label
                )));
            }
            Err(BadSignature::Unsupported(alg)) => {
                return Err(ImportError::ChainSignature(format!(
                    "the signature of {} ({alg}) cannot be verified: OpenSCM verifies \
                     {VERIFIED_ALGORITHMS}",
                    last.label
                )));
            }
        }
    }
    Ok(())
}

/// Each chain certificate may issue the certificates below it.
fn check_issuers(cas: &[Link<'_>], names: &[DnsName]) -> Result<(), ImportError> {
    let refuse = |ca: &Link<'_>, why: String| {
        Err(ImportError::ChainIssuer(format!(
            "{} may not issue the certificate below it: {why}",
            ca.label
        )))
    };
    // CA certificates below the one at hand, self-issued ones not counted (RFC 5280 §4.2.1.9).
    let mut below = 0_u32;
    for ca in cas {
        let bc = match ca.cert.basic_constraints() {
            Ok(Some(bc)) if bc.value.ca => bc.value,
            Ok(_) => {
                return refuse(
                    ca,
                    "it is not a CA certificate (no basicConstraints CA:TRUE)".into(),
                );
            }
            Err(_) => {
                return refuse(
                    ca,
                    "it has its basicConstraints extension more than once".into(),
                );
            }
        };
        match ca.cert.key_usage() {
            Ok(Some(ku)) if !ku.value.key_cert_sign() => {
                return refuse(ca, "its keyUsage does not include keyCertSign".into());
            }
            Ok(_) => {}
            Err(_) => return refuse(ca, "its keyUsage extension cannot be read".into()),
        }
        if let Some(max) = bc.path_len_constraint
            && below > max
        {
            return refuse(
                ca,
                format!(
                    "its path length constraint allows {max} CA certificate(s) below it, and the \
                     chain has {below}"
                ),
            );
        }
        for ext in ca.cert.extensions() {
            if let ParsedExtension::NameConstraints(nc) = ext.parsed_extension()
                && let Some(why) = outside_constraints(nc, names)
            {
                return refuse(ca, format!("the certificate's name {why}"));
            }
        }
        if !self_issued(&ca.cert) {
            below = below.saturating_add(1);
        }
    }
    Ok(())
}

/// The first certificate from the leaf up that is an anchor or is signed by one.
fn verdict(path: &[Link<'_>], anchors: &TrustAnchors) -> ChainTrust {
    for (position, link) in path.iter().enumerate() {
        let found = if position > 0 {
            anchors.same_as(&link.cert)
        } else {
            None
        }
        .or_else(|| anchors.issuer_of(&link.cert));
        if let Some(a) = found {
            return ChainTrust::Trusted {
                anchor: a.subject.clone(),
                source: a.source.clone(),
            };
        }
    }
    match path.last() {
        Some(last) if self_issued(&last.cert) && path.len() == 1 => ChainTrust::SelfSigned,
        Some(last) if self_issued(&last.cert) => ChainTrust::UntrustedRoot {
            root: last.cert.subject().to_string(),
        },
        Some(last) => ChainTrust::Incomplete {
            last: last.cert.subject().to_string(),
            issuer: last.cert.issuer().to_string(),
        },
        None => ChainTrust::SelfSigned,
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{
        BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa,
        Issuer, KeyPair, KeyUsagePurpose,
    };
    use time::Duration;

    use super::*;
    use crate::import::{ImportedCertificate, parse_import};

    /// A CA certificate with the key it signs with.
    struct Ca {
        params: CertificateParams,
        key: KeyPair,
        pem: String,
    }

    impl Ca {
        fn issuer(&self) -> Issuer<'_, &KeyPair> {
            Issuer::from_params(&self.params, &self.key)
        }
    }

    fn key() -> KeyPair {
        KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap()
    }

    fn ca_params(cn: &str) -> CertificateParams {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p
    }

    /// A self-signed root.
    fn root(cn: &str) -> Ca {
        let (params, key) = (ca_params(cn), key());
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { params, key, pem }
    }

    /// A CA of `params` signed by `parent` with a new key.
    fn sub_with(params: CertificateParams, parent: &Ca) -> Ca {
        let key = key();
        let pem = params.signed_by(&key, &parent.issuer()).unwrap().pem();
        Ca { params, key, pem }
    }

    fn sub(cn: &str, parent: &Ca) -> Ca {
        sub_with(ca_params(cn), parent)
    }

    /// A 90-day leaf for `names`, valid since yesterday.
    fn leaf_params(names: &[&str]) -> CertificateParams {
        let mut p =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, names[0]);
        let now = OffsetDateTime::now_utc();
        p.not_before = now - Duration::days(1);
        p.not_after = now + Duration::days(89);
        p
    }

    /// A leaf of `params` signed by `issuer`, and its key.
    fn leaf_with(params: &CertificateParams, issuer: &Ca) -> (String, String) {
        let key = key();
        let pem = params.signed_by(&key, &issuer.issuer()).unwrap().pem();
        (pem, key.serialize_pem())
    }

    fn leaf(issuer: &Ca) -> (String, String) {
        leaf_with(&leaf_params(&["www.chain.test", "api.chain.test"]), issuer)
    }

    fn import(
        cert: &str,
        chain: &str,
        key: &str,
        anchors: &TrustAnchors,
    ) -> Result<ImportedCertificate, ImportError> {
        parse_import(cert, Some(chain), key, OffsetDateTime::now_utc(), anchors)
    }

    fn refused(cert: &str, chain: &str, key: &str) -> ImportError {
        import(cert, chain, key, &TrustAnchors::new()).unwrap_err()
    }

    fn anchors(pems: &[&str]) -> TrustAnchors {
        let mut a = TrustAnchors::new();
        for pem in pems {
            a.add_pem(pem, "test roots");
        }
        a
    }

    /// The PEM certificate `pem` with the last byte of its signature changed.
    fn tampered(pem: &str) -> String {
        let mut der = ::pem::parse(pem).unwrap().into_contents();
        if let Some(last) = der.last_mut() {
            *last ^= 0x01;
        }
        crate::util::pem_encode("CERTIFICATE", &der)
    }

    #[test]
    fn a_good_chain_is_accepted_and_judged() {
        let r = root("Chain Test Root");
        let i = sub("Chain Test Intermediate", &r);
        let (l, k) = leaf(&i);
        let full = format!("{}{}", i.pem, r.pem);

        // Up to a root nobody trusts.
        let got = import(&l, &full, &k, &TrustAnchors::new()).unwrap();
        assert_eq!(
            got.trust,
            ChainTrust::UntrustedRoot {
                root: "CN=Chain Test Root".into()
            }
        );
        assert!(!got.trust.is_trusted());
        assert_eq!(
            got.trust.to_string(),
            "the chain ends at the self-signed root \"CN=Chain Test Root\", which the server \
             does not trust"
        );
        // Stopping below the root.
        let got = import(&l, &i.pem, &k, &TrustAnchors::new()).unwrap();
        assert_eq!(
            got.trust,
            ChainTrust::Incomplete {
                last: "CN=Chain Test Intermediate".into(),
                issuer: "CN=Chain Test Root".into()
            }
        );

        // A good chain to a trusted root is reported trusted, root given or not.
        let trusted = anchors(&[&r.pem]);
        let expected = ChainTrust::Trusted {
            anchor: "CN=Chain Test Root".into(),
            source: "test roots".into(),
        };
        for chain in [full.as_str(), i.pem.as_str()] {
            let got = import(&l, chain, &k, &trusted).unwrap();
            assert_eq!(got.trust, expected, "{chain}");
        }
        assert_eq!(
            expected.to_string(),
            "the chain reaches \"CN=Chain Test Root\", which the server trusts (test roots)"
        );
        // The intermediate itself an anchor; the leaf alone then reaches it.
        let got = import(&l, "", &k, &anchors(&[&i.pem])).unwrap();
        assert!(got.trust.is_trusted(), "{}", got.trust);
        assert_eq!(
            parse_import(
                &l,
                None,
                &k,
                OffsetDateTime::now_utc(),
                &TrustAnchors::new()
            )
            .unwrap()
            .trust,
            ChainTrust::Incomplete {
                last: "CN=www.chain.test".into(),
                issuer: "CN=Chain Test Intermediate".into()
            }
        );
    }

    #[test]
    fn an_anchor_with_the_right_name_and_another_key_is_no_anchor() {
        let r = root("Chain Test Root");
        let i = sub("Chain Test Intermediate", &r);
        let (l, k) = leaf(&i);
        let impostor = root("Chain Test Root");
        let got = import(&l, &i.pem, &k, &anchors(&[&impostor.pem])).unwrap();
        assert!(!got.trust.is_trusted(), "{}", got.trust);
    }

    #[test]
    fn an_intermediate_with_the_right_name_and_another_key_is_refused() {
        let r = root("Chain Test Root");
        let i = sub("Chain Test Intermediate", &r);
        let (l, k) = leaf(&i);
        // Another CA of the intermediate's name, signed by the same root: only the key differs.
        let impostor = sub("Chain Test Intermediate", &r);
        let err = refused(&l, &format!("{}{}", impostor.pem, r.pem), &k);
        assert!(
            matches!(&err, ImportError::ChainSignature(m)
                if m.contains("the signature of the leaf \"CN=www.chain.test\"")
                && m.contains("chain certificate 1 \"CN=Chain Test Intermediate\"")),
            "{err:?}"
        );
        // Even when the impostor is trusted: the name is not enough.
        let err = import(&l, &impostor.pem, &k, &anchors(&[&impostor.pem])).unwrap_err();
        assert!(matches!(err, ImportError::ChainSignature(_)), "{err:?}");
        // Higher up: a root of the right name and another key.
        let other_root = root("Chain Test Root");
        let err = refused(&l, &format!("{}{}", i.pem, other_root.pem), &k);
        assert!(
            matches!(&err, ImportError::ChainSignature(m)
                if m.contains("chain certificate 1") && m.contains("chain certificate 2")),
            "{err:?}"
        );
    }

    #[test]
    fn a_self_signed_certificate_must_verify_with_its_own_key() {
        // A self-signed leaf: accepted, not trusted; its signature broken: refused.
        let params = leaf_params(&["self.chain.test"]);
        let key = key();
        let pem = params.self_signed(&key).unwrap().pem();
        let got = parse_import(
            &pem,
            None,
            &key.serialize_pem(),
            OffsetDateTime::now_utc(),
            &TrustAnchors::new(),
        )
        .unwrap();
        assert_eq!(got.trust, ChainTrust::SelfSigned);
        let err = refused(&tampered(&pem), "", &key.serialize_pem());
        assert!(
            matches!(&err, ImportError::ChainSignature(m) if m.contains("the leaf") && m.contains("own key")),
            "{err:?}"
        );
        // A root at the end of the chain whose signature is broken.
        let r = root("Chain Test Root");
        let i = sub("Chain Test Intermediate", &r);
        let (l, k) = leaf(&i);
        let err = refused(&l, &format!("{}{}", i.pem, tampered(&r.pem)), &k);
        assert!(
            matches!(&err, ImportError::ChainSignature(m)
                if m.contains("chain certificate 2 \"CN=Chain Test Root\"") && m.contains("own key")),
            "{err:?}"
        );
    }

    #[test]
    fn loops_are_refused() {
        // A and B sign each other; the leaf is A's.
        let (a_key, b_key) = (key(), key());
        let (a, b) = (ca_params("Chain Loop A"), ca_params("Chain Loop B"));
        let a_by_b = a
            .signed_by(&a_key, &Issuer::from_params(&b, &b_key))
            .unwrap()
            .pem();
        let b_by_a = b
            .signed_by(&b_key, &Issuer::from_params(&a, &a_key))
            .unwrap()
            .pem();
        let a_ca = Ca {
            params: a,
            key: a_key,
            pem: a_by_b.clone(),
        };
        let (l, k) = leaf(&a_ca);
        // A → B → A: A twice.
        let err = refused(&l, &format!("{a_by_b}{b_by_a}{a_by_b}"), &k);
        assert!(
            matches!(&err, ImportError::ChainLoop(m)
                if m.contains("chain certificate 3 \"CN=Chain Loop A\" is chain certificate 1")),
            "{err:?}"
        );
        // A → B, B issued by A.
        let err = refused(&l, &format!("{a_by_b}{b_by_a}"), &k);
        assert!(
            matches!(&err, ImportError::ChainLoop(m)
                if m.contains("chain certificate 2 \"CN=Chain Loop B\" is issued by chain certificate 1")),
            "{err:?}"
        );
        // A root given twice.
        let r = root("Chain Test Root");
        let i = sub("Chain Test Intermediate", &r);
        let (l, k) = leaf(&i);
        let err = refused(&l, &format!("{}{}{}", i.pem, r.pem, r.pem), &k);
        assert!(matches!(err, ImportError::ChainLoop(_)), "{err:?}");
    }

    #[test]
    fn a_ca_leaf_is_refused() {
        let r = root("Chain Test Root");
        let mut p = leaf_params(&["ca.chain.test"]);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let (l, k) = leaf_with(&p, &r);
        let err = refused(&l, &r.pem, &k);
        assert!(
            matches!(&err, ImportError::LeafIsCa(m) if m.contains("the leaf \"CN=ca.chain.test\"")),
            "{err:?}"
        );
        // CA:FALSE said explicitly is a leaf.
        p.is_ca = IsCa::ExplicitNoCa;
        let (l, k) = leaf_with(&p, &r);
        import(&l, &r.pem, &k, &TrustAnchors::new()).unwrap();
    }

    fn critical(oid: &[u64]) -> CustomExtension {
        // The content is a DER NULL.
        let mut ext = CustomExtension::from_oid_content(oid, vec![0x05, 0x00]);
        ext.set_criticality(true);
        ext
    }

    #[test]
    fn unknown_critical_extensions_are_refused() {
        let r = root("Chain Test Root");
        // A private extension, and a CT precertificate poison.
        for oid in [
            &[1, 3, 6, 1, 4, 1, 55555, 1][..],
            &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 3],
        ] {
            let mut p = leaf_params(&["ext.chain.test"]);
            p.custom_extensions.push(critical(oid));
            let (l, k) = leaf_with(&p, &r);
            let err = refused(&l, &r.pem, &k);
            let dotted = oid.iter().map(u64::to_string).collect::<Vec<_>>().join(".");
            assert!(
                matches!(&err, ImportError::CriticalExtension { in_chain: false, reason }
                    if reason.contains("the leaf") && reason.contains(&dotted)),
                "{err:?}"
            );
        }
        // Not critical: ignored, as any client does.
        let mut p = leaf_params(&["ext.chain.test"]);
        p.custom_extensions.push(CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 55555, 1],
            vec![0x05, 0x00],
        ));
        let (l, k) = leaf_with(&p, &r);
        import(&l, &r.pem, &k, &TrustAnchors::new()).unwrap();
        // Known critical extensions (rcgen marks keyUsage and basicConstraints critical).
        let mut p = leaf_params(&["ku.chain.test"]);
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.is_ca = IsCa::ExplicitNoCa;
        let (l, k) = leaf_with(&p, &r);
        import(&l, &r.pem, &k, &TrustAnchors::new()).unwrap();
        // On an intermediate: the chain is refused.
        let mut ip = ca_params("Chain Test Intermediate");
        ip.custom_extensions
            .push(critical(&[1, 3, 6, 1, 4, 1, 55555, 2]));
        let i = sub_with(ip, &r);
        let (l, k) = leaf(&i);
        let err = refused(&l, &format!("{}{}", i.pem, r.pem), &k);
        assert!(
            matches!(&err, ImportError::CriticalExtension { in_chain: true, reason }
                if reason.contains("chain certificate 1")),
            "{err:?}"
        );
    }

    #[test]
    fn a_leaf_not_valid_yet_is_refused_an_expired_one_is_not() {
        let r = root("Chain Test Root");
        let now = OffsetDateTime::now_utc();
        let mut p = leaf_params(&["later.chain.test"]);
        p.not_before = now + Duration::days(2);
        p.not_after = now + Duration::days(92);
        let (l, k) = leaf_with(&p, &r);
        let err = refused(&l, &r.pem, &k);
        assert!(
            matches!(&err, ImportError::NotYetValid(m) if m.contains("the leaf \"CN=later.chain.test\"")),
            "{err:?}"
        );
        // The same leaf, imported at a time it is valid (the caller's clock decides).
        parse_import(
            &l,
            Some(&r.pem),
            &k,
            now + Duration::days(3),
            &TrustAnchors::new(),
        )
        .unwrap();
        // Made a moment ago on a clock a little ahead: within the leeway.
        p.not_before = now + Duration::minutes(2);
        let (l, k) = leaf_with(&p, &r);
        import(&l, &r.pem, &k, &TrustAnchors::new()).unwrap();
        // Expired: imported (it reads EXPIRED).
        p.not_before = now - Duration::days(30);
        p.not_after = now - Duration::days(1);
        let (l, k) = leaf_with(&p, &r);
        import(&l, &r.pem, &k, &TrustAnchors::new()).unwrap();
    }

    #[test]
    fn chain_certificates_must_be_allowed_to_issue() {
        let r = root("Chain Test Root");
        // Not a CA.
        let mut p = ca_params("Chain Test Not A CA");
        p.is_ca = IsCa::ExplicitNoCa;
        let not_ca = sub_with(p, &r);
        let (l, k) = leaf(&not_ca);
        let err = refused(&l, &format!("{}{}", not_ca.pem, r.pem), &k);
        assert!(
            matches!(&err, ImportError::ChainIssuer(m) if m.contains("chain certificate 1") && m.contains("not a CA")),
            "{err:?}"
        );
        // A key usage without keyCertSign.
        let mut p = ca_params("Chain Test No CertSign");
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::CrlSign];
        let no_sign = sub_with(p, &r);
        let (l, k) = leaf(&no_sign);
        let err = refused(&l, &no_sign.pem, &k);
        assert!(
            matches!(&err, ImportError::ChainIssuer(m) if m.contains("keyCertSign")),
            "{err:?}"
        );
        // Path length 0 with a CA below it.
        let mut p = ca_params("Chain Test Pathlen 0");
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        let top = sub_with(p, &r);
        let below = sub("Chain Test Below", &top);
        let (l, k) = leaf(&below);
        let err = refused(&l, &format!("{}{}{}", below.pem, top.pem, r.pem), &k);
        assert!(
            matches!(&err, ImportError::ChainIssuer(m) if m.contains("chain certificate 2") && m.contains("path length")),
            "{err:?}"
        );
        let (l, k) = leaf(&top);
        import(
            &l,
            &format!("{}{}", top.pem, r.pem),
            &k,
            &TrustAnchors::new(),
        )
        .unwrap();
        // DNS name constraints.
        let mut p = ca_params("Chain Test Constrained");
        p.name_constraints = Some(rcgen::NameConstraints {
            permitted_subtrees: vec![rcgen::GeneralSubtree::DnsName("chain.test".into())],
            excluded_subtrees: vec![rcgen::GeneralSubtree::DnsName("secret.chain.test".into())],
        });
        let constrained = sub_with(p, &r);
        let (l, k) = leaf(&constrained);
        import(&l, &constrained.pem, &k, &TrustAnchors::new()).unwrap();
        for names in [
            &["www.chain.test", "www.other.test"][..],
            &["db.secret.chain.test"],
            &["notchain.test"],
        ] {
            let (l, k) = leaf_with(&leaf_params(names), &constrained);
            let err = refused(&l, &constrained.pem, &k);
            assert!(
                matches!(&err, ImportError::ChainIssuer(m) if m.contains("chain certificate 1")
                    && (m.contains("permitted names") || m.contains("excluded names"))),
                "{names:?}: {err:?}"
            );
        }
    }

    #[test]
    fn name_constraint_matching() {
        assert!(within("a.example.com", "example.com"));
        assert!(within("example.com", "example.com"));
        assert!(!within("badexample.com", "example.com"));
        assert!(within("a.example.com", ".example.com"));
        assert!(!within("example.com", ".example.com"));
        assert!(within("anything.test", ""));
        assert!(within("*.example.com", "example.com"));
    }

    #[test]
    fn anchors_are_read_from_pem_once_each() {
        let (r1, r2) = (root("Chain Anchor 1"), root("Chain Anchor 2"));
        let mut a = TrustAnchors::new();
        assert!(a.is_empty());
        let bundle = format!(
            "# a comment\n{}{}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            r1.pem, r2.pem
        );
        assert_eq!(a.add_pem(&bundle, "bundle"), (2, 1));
        assert_eq!(a.add_pem(&r1.pem, "again"), (0, 0), "held already");
        assert_eq!(a.len(), 2);
        assert_eq!(format!("{a:?}"), "TrustAnchors { len: 2 }");
    }
}
