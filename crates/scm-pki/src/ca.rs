//! The built-in CA: generating the root/intermediate pair and issuing leaf certificates.

use std::fmt;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::KeyPair as RsaKeyPair;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _,
    RSA_PKCS1_SHA256,
};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime, UtcOffset};

use crate::PkiError;
use crate::cert::parse_certificate_der;
use crate::csr::ParsedCsr;
use crate::key::{KeyAlgorithm, KeyKind, PrivateKey, PublicKeyRef};
use crate::name::DnsName;
use crate::util::{pem_encode, serial_hex, sha1_hex};

/// Organization name written into the CA certificates.
const CA_ORGANIZATION: &str = "OpenSCM";
/// CA certificates start this long before "now" so clients with slightly slow clocks
/// accept a freshly generated CA.
const CA_BACKDATE: Duration = Duration::hours(1);
const ROOT_YEARS: i32 = 20;
const INTERMEDIATE_YEARS: i32 = 10;
/// Serial numbers are 16 random bytes (126 bits of entropy after fixing the top two bits).
const SERIAL_LEN: usize = 16;

/// A freshly generated two-level CA (both keys ECDSA P-256).
#[derive(Debug, Clone)]
pub struct GeneratedCa {
    /// Self-signed root certificate, PEM.
    pub root_cert_pem: String,
    /// Root private key (keep offline / sealed; only needed to re-issue the intermediate).
    pub root_key: PrivateKey,
    /// Intermediate certificate signed by the root, PEM; the issuer of all leaves.
    pub intermediate_cert_pem: String,
    /// Intermediate private key.
    pub intermediate_key: PrivateKey,
}

/// Generates a root CA ("`<prefix>` Root CA", 20 years, CA:TRUE, keyCertSign + cRLSign)
/// and an intermediate ("`<prefix>` Intermediate CA", 10 years, CA:TRUE pathlen 0,
/// keyCertSign + cRLSign + digitalSignature) signed by it. Both have O = "OpenSCM",
/// random positive 16-byte serials and subject key identifiers; the intermediate also has
/// an authority key identifier. Validity starts one hour before `now` to absorb clock skew.
pub fn generate_ca(common_name_prefix: &str, now: OffsetDateTime) -> Result<GeneratedCa, PkiError> {
    let now = to_utc_seconds(now)?;
    let prefix = common_name_prefix.trim();
    let not_before = now - CA_BACKDATE;

    let root_key = PrivateKey::generate(KeyAlgorithm::EcP256)?;
    let intermediate_key = PrivateKey::generate(KeyAlgorithm::EcP256)?;
    let root_signer = CaSigner::new(&root_key)?;

    let mut root = CertificateParams::default();
    root.not_before = not_before;
    root.not_after = add_years(now, ROOT_YEARS)?;
    root.serial_number = Some(random_serial()?);
    root.distinguished_name = ca_name(&format!("{prefix} Root CA"));
    root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let root_cert = root.self_signed(&root_signer).map_err(sign_error)?;

    let mut intermediate = CertificateParams::default();
    intermediate.not_before = not_before;
    intermediate.not_after = add_years(now, INTERMEDIATE_YEARS)?;
    intermediate.serial_number = Some(random_serial()?);
    intermediate.distinguished_name = ca_name(&format!("{prefix} Intermediate CA"));
    intermediate.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    intermediate.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    intermediate.use_authority_key_identifier_extension = true;
    let root_issuer = rcgen::Issuer::from_params(&root, &root_signer);
    let intermediate_cert = intermediate
        .signed_by(&intermediate_key.public_key_ref(), &root_issuer)
        .map_err(sign_error)?;

    Ok(GeneratedCa {
        root_cert_pem: pem_encode("CERTIFICATE", root_cert.der()),
        root_key,
        intermediate_cert_pem: pem_encode("CERTIFICATE", intermediate_cert.der()),
        intermediate_key,
    })
}

fn ca_name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, CA_ORGANIZATION);
    dn.push(DnType::CommonName, common_name.trim());
    dn
}

/// Optional subject attributes of a leaf; `None` and empty strings are omitted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubjectFields<'a> {
    /// C (two-letter country code; written as PrintableString when possible).
    pub country: Option<&'a str>,
    /// ST.
    pub province: Option<&'a str>,
    /// L.
    pub city: Option<&'a str>,
    /// O.
    pub organization: Option<&'a str>,
    /// OU.
    pub organizational_unit: Option<&'a str>,
}

/// Where a leaf's public key comes from.
#[derive(Debug, Clone, Copy)]
pub enum LeafKey<'a> {
    /// The key of a verified CSR (the CSR's subject is ignored).
    Csr(&'a ParsedCsr),
    /// A key generated by the service.
    Generated(&'a PrivateKey),
}

impl LeafKey<'_> {
    fn public_key(&self) -> PublicKeyRef<'_> {
        match self {
            LeafKey::Csr(csr) => csr.public_key_ref(),
            LeafKey::Generated(key) => key.public_key_ref(),
        }
    }
}

/// What to put in a leaf certificate.
#[derive(Debug, Clone)]
pub struct LeafRequest<'a> {
    /// Names for the subjectAltName; the first is also the subject CN. Duplicates are dropped.
    pub dns_names: &'a [DnsName],
    /// Subject attributes besides the CN.
    pub subject: SubjectFields<'a>,
    /// Start of validity (sub-second part dropped).
    pub not_before: OffsetDateTime,
    /// End of validity (sub-second part dropped; clamped to the issuer's own expiry).
    pub not_after: OffsetDateTime,
    /// The subject public key.
    pub public_key: LeafKey<'a>,
}

/// A certificate the CA just signed.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    /// The certificate, PEM (LF line endings).
    pub certificate_pem: String,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// Serial number, lower-case hex (32 characters).
    pub serial_hex: String,
    /// SHA-1 of the DER, 40 lower-case hex characters.
    pub sha1_fingerprint_hex: String,
    /// Start of validity as written in the certificate.
    pub not_before: OffsetDateTime,
    /// End of validity as written in the certificate (after clamping).
    pub not_after: OffsetDateTime,
    /// Huawei-style signature algorithm, e.g. `"SHA256WITHECDSA"`.
    pub signature_algorithm: &'static str,
}

/// The intermediate CA ready to sign leaves.
///
/// Build it once and share it (`Arc<Issuer>`): it is `Send + Sync`, holds the parsed
/// issuer name, key identifier and signing key, and each [`Issuer::issue`] costs one
/// signature plus DER encoding.
pub struct Issuer {
    pub(crate) inner: rcgen::Issuer<'static, CaSigner>,
    certificate_pem: String,
    not_after: OffsetDateTime,
    signature_algorithm: &'static str,
    /// The issuing certificate's subject key identifier (what its leaves and CRLs carry as
    /// their authority key identifier).
    pub(crate) key_id: Vec<u8>,
    /// The URL written as the CRL distribution point of every leaf, when set.
    crl_url: Option<String>,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("not_after", &self.not_after)
            .field("signature_algorithm", &self.signature_algorithm)
            .field("crl_url", &self.crl_url)
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// Loads the issuing CA from its certificate (first `CERTIFICATE` block) and key.
    ///
    /// Fails with [`PkiError::BadCertificatePem`] if the certificate does not parse,
    /// [`PkiError::NotCa`] if it is not a CA certificate and [`PkiError::KeyMismatch`] if
    /// the key is not the certificate's key. The key may be any supported algorithm;
    /// leaves are signed with SHA-256 (RSA, P-256) or SHA-384 (P-384).
    pub fn from_pem(
        intermediate_cert_pem: &str,
        intermediate_key: &PrivateKey,
    ) -> Result<Self, PkiError> {
        let block = crate::cert::pem_blocks(intermediate_cert_pem, "CERTIFICATE")
            .into_iter()
            .next()
            .ok_or(PkiError::BadCertificatePem)?;
        let der = pem::parse(&block)
            .map_err(|_| PkiError::BadCertificatePem)?
            .into_contents();
        let info = parse_certificate_der(&der)?;
        if !info.is_ca {
            return Err(PkiError::NotCa);
        }
        if !info.public_key_matches(intermediate_key) {
            return Err(PkiError::KeyMismatch);
        }
        let signer = CaSigner::new(intermediate_key)?;
        let signature_algorithm = signer.huawei_name();
        let key_id = key_identifier(&der)?;
        let inner = rcgen::Issuer::from_ca_cert_der(&der.as_slice().into(), signer)
            .map_err(|_| PkiError::BadCertificatePem)?;
        Ok(Self {
            inner,
            certificate_pem: block,
            not_after: info.not_after,
            signature_algorithm,
            key_id,
            crl_url: None,
        })
    }

    /// The same issuer, writing `url` as the CRL distribution point of every leaf it signs from
    /// now on.
    ///
    /// Errors: [`PkiError::InvalidRequest`] unless `url` is an `http://` or `https://` URL of
    /// printable ASCII (a certificate writes it as an IA5String).
    pub fn with_crl_url(mut self, url: impl Into<String>) -> Result<Self, PkiError> {
        let url = url.into();
        let printable = url.bytes().all(|b| b.is_ascii_graphic());
        let http = url.starts_with("http://") || url.starts_with("https://");
        if !printable || !http {
            return Err(PkiError::InvalidRequest(
                "a CRL distribution point must be an http(s) URL of printable ASCII",
            ));
        }
        self.crl_url = Some(url);
        Ok(self)
    }

    /// The CRL distribution point written into leaves, if any.
    pub fn crl_url(&self) -> Option<&str> {
        self.crl_url.as_deref()
    }

    /// The issuing certificate's key identifier (its subjectKeyIdentifier; without one, the
    /// first 20 bytes of the SHA-256 of its public key, as rcgen then writes in leaves), lower-case
    /// hex: a stable name of this CA, for its CRL's URL and its revocations.
    pub fn key_id_hex(&self) -> String {
        hex::encode(&self.key_id)
    }

    /// The issuing certificate, PEM (what to append to a leaf to build its chain).
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// The issuing certificate's expiry; leaves never outlive it.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// Signs a leaf certificate.
    ///
    /// Subject: C, ST, L, O, OU (those present and non-empty) and CN = first name. SAN: all
    /// names. Extensions: basicConstraints CA:FALSE (critical), keyUsage digitalSignature
    /// (+ keyEncipherment for RSA keys, critical), extendedKeyUsage serverAuth + clientAuth,
    /// authority and subject key identifiers, and the CRL distribution point when one is set
    /// ([`Issuer::with_crl_url`]). Serial: 16 random bytes, positive.
    ///
    /// Errors: [`PkiError::InvalidRequest`] for no names or an empty/out-of-range validity,
    /// [`PkiError::InvalidName`] for a name the encoder refuses.
    pub fn issue(&self, req: &LeafRequest<'_>) -> Result<IssuedCertificate, PkiError> {
        let mut names: Vec<String> = Vec::with_capacity(req.dns_names.len());
        for name in req.dns_names {
            let name = name.as_str().to_owned();
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let common_name = names
            .first()
            .cloned()
            .ok_or(PkiError::InvalidRequest("at least one name is required"))?;

        let not_before = to_utc_seconds(req.not_before)?;
        let not_after = to_utc_seconds(req.not_after)?.min(self.not_after);
        if not_after <= not_before {
            return Err(PkiError::InvalidRequest(
                "not_after must be later than not_before (and than the issuer's start)",
            ));
        }

        let sans = names
            .into_iter()
            .map(san_for)
            .collect::<Result<Vec<_>, _>>()?;
        self.sign_leaf(LeafParts {
            sans,
            common_name,
            subject: &req.subject,
            not_before,
            not_after,
            public_key: req.public_key.public_key(),
        })
    }

    /// Signs the serving certificate of OpenSCM's own HTTPS listener: `hosts` (host names such
    /// as `localhost` or `scm.internal`, and IP addresses) in the subjectAltName (an IP as an
    /// iPAddress entry, which is what clients compare an IP endpoint against), the first also as
    /// the CN, with the leaf extensions of [`Issuer::issue`]. Host names follow the looser rules
    /// of [`ServingHost`] (one label allowed), since a server is reached as `localhost` too.
    ///
    /// Errors as [`Issuer::issue`].
    pub fn issue_serving(
        &self,
        hosts: &[ServingHost],
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
        key: &PrivateKey,
    ) -> Result<IssuedCertificate, PkiError> {
        let first = hosts
            .first()
            .ok_or(PkiError::InvalidRequest("at least one host is required"))?;
        let not_before = to_utc_seconds(not_before)?;
        let not_after = to_utc_seconds(not_after)?.min(self.not_after);
        if not_after <= not_before {
            return Err(PkiError::InvalidRequest(
                "not_after must be later than not_before (and than the issuer's start)",
            ));
        }
        let mut sans: Vec<SanType> = Vec::with_capacity(hosts.len());
        for host in hosts {
            let san = match host {
                ServingHost::Ip(ip) => SanType::IpAddress(*ip),
                ServingHost::Name(name) => san_for(name.clone())?,
            };
            if !sans.contains(&san) {
                sans.push(san);
            }
        }
        self.sign_leaf(LeafParts {
            sans,
            common_name: first.to_string(),
            subject: &SubjectFields {
                organization: Some(CA_ORGANIZATION),
                ..SubjectFields::default()
            },
            not_before,
            not_after,
            public_key: key.public_key_ref(),
        })
    }

    fn sign_leaf(&self, parts: LeafParts<'_>) -> Result<IssuedCertificate, PkiError> {
        let public_key = parts.public_key;
        let mut params = CertificateParams::default();
        params.not_before = parts.not_before;
        params.not_after = parts.not_after;
        let serial = random_serial()?;
        let serial_text = serial_hex(serial.as_ref());
        params.serial_number = Some(serial);
        params.subject_alt_names = parts.sans;
        params.distinguished_name = leaf_name(parts.subject, parts.common_name);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = if public_key.kind == KeyKind::Rsa {
            vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ]
        } else {
            vec![KeyUsagePurpose::DigitalSignature]
        };
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        if let Some(url) = &self.crl_url {
            params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
                uris: vec![url.clone()],
            }];
        }

        let cert = params
            .signed_by(&public_key, &self.inner)
            .map_err(sign_error)?;
        let der = cert.der().to_vec();
        Ok(IssuedCertificate {
            certificate_pem: pem_encode("CERTIFICATE", &der),
            serial_hex: serial_text,
            sha1_fingerprint_hex: sha1_hex(&der),
            der,
            not_before: parts.not_before,
            not_after: parts.not_after,
            signature_algorithm: self.signature_algorithm,
        })
    }
}

/// The subjectKeyIdentifier of a CA certificate (DER), or, when it has none, the first 20 bytes
/// of the SHA-256 of its SubjectPublicKeyInfo: what rcgen writes as the authority key identifier
/// of what it signs in either case.
fn key_identifier(der: &[u8]) -> Result<Vec<u8>, PkiError> {
    use x509_parser::extensions::ParsedExtension;
    use x509_parser::prelude::FromDer;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der)
        .map_err(|_| PkiError::BadCertificatePem)?;
    let ski = cert
        .iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
            _ => None,
        });
    Ok(ski.unwrap_or_else(|| {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cert.public_key().raw);
        digest.as_ref().iter().take(20).copied().collect()
    }))
}

/// What one leaf is made of, checked (shared by application leaves and the serving certificate).
struct LeafParts<'a> {
    sans: Vec<SanType>,
    common_name: String,
    subject: &'a SubjectFields<'a>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    public_key: PublicKeyRef<'a>,
}

/// A name OpenSCM's own HTTPS listener is reached by: an IP address, or a host name of letters,
/// digits and `-` in dot-separated labels (one label, such as `localhost`, allowed; no
/// wildcard), lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServingHost {
    /// An IP address (an iPAddress subjectAltName).
    Ip(std::net::IpAddr),
    /// A host name (a dNSName subjectAltName).
    Name(String),
}

impl ServingHost {
    /// Parses an IP address (IPv6 with or without brackets) or a host name.
    ///
    /// Errors: [`PkiError::InvalidName`] naming what was given.
    pub fn parse(text: &str) -> Result<Self, PkiError> {
        let trimmed = text.trim();
        let bare = trimmed
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(trimmed);
        if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
            return Ok(Self::Ip(ip));
        }
        let name = trimmed.trim_end_matches('.').to_ascii_lowercase();
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(PkiError::InvalidName(text.to_owned()));
        }
        // An all-digit last label would be read as (part of) an IP address by clients.
        if name
            .rsplit('.')
            .next()
            .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(PkiError::InvalidName(text.to_owned()));
        }
        Ok(Self::Name(name))
    }
}

impl fmt::Display for ServingHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Name(name) => f.write_str(name),
        }
    }
}

pub(crate) fn san_for(name: String) -> Result<SanType, PkiError> {
    rcgen::string::Ia5String::try_from(name.as_str())
        .map(SanType::DnsName)
        .map_err(|_| PkiError::InvalidName(name))
}

pub(crate) fn leaf_name(subject: &SubjectFields<'_>, common_name: String) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    let present = |v: Option<&str>| {
        v.map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    if let Some(country) = present(subject.country) {
        // X.520 wants PrintableString for countryName; UTF8String is the fallback.
        let value = match rcgen::string::PrintableString::try_from(country.as_str()) {
            Ok(printable) => DnValue::PrintableString(printable),
            Err(_) => DnValue::Utf8String(country),
        };
        dn.push(DnType::CountryName, value);
    }
    let others = [
        (DnType::StateOrProvinceName, subject.province),
        (DnType::LocalityName, subject.city),
        (DnType::OrganizationName, subject.organization),
        (DnType::OrganizationalUnitName, subject.organizational_unit),
    ];
    for (ty, value) in others {
        if let Some(value) = present(value) {
            dn.push(ty, value);
        }
    }
    dn.push(DnType::CommonName, common_name);
    dn
}

/// A CA signing key for rcgen, backed directly by aws-lc (no extra copies of the secret).
pub(crate) struct CaSigner {
    key: SignerKey,
    rng: SystemRandom,
}

enum SignerKey {
    Ec(EcdsaKeyPair, KeyKind),
    Rsa(RsaKeyPair),
}

impl CaSigner {
    pub(crate) fn new(key: &PrivateKey) -> Result<Self, PkiError> {
        let der = key.pkcs8_der();
        let key = match key.algorithm() {
            KeyAlgorithm::EcP256 => SignerKey::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der)
                    .map_err(|_| PkiError::BadKeyPem)?,
                KeyKind::EcP256,
            ),
            KeyAlgorithm::EcP384 => SignerKey::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, der)
                    .map_err(|_| PkiError::BadKeyPem)?,
                KeyKind::EcP384,
            ),
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                SignerKey::Rsa(RsaKeyPair::from_pkcs8(der).map_err(|_| PkiError::BadKeyPem)?)
            }
        };
        Ok(Self {
            key,
            rng: SystemRandom::new(),
        })
    }

    fn kind(&self) -> KeyKind {
        match &self.key {
            SignerKey::Ec(_, kind) => *kind,
            SignerKey::Rsa(_) => KeyKind::Rsa,
        }
    }

    fn huawei_name(&self) -> &'static str {
        match self.kind() {
            KeyKind::EcP256 => "SHA256WITHECDSA",
            KeyKind::EcP384 => "SHA384WITHECDSA",
            KeyKind::Rsa => "SHA256WITHRSA",
        }
    }
}

impl rcgen::PublicKeyData for CaSigner {
    fn der_bytes(&self) -> &[u8] {
        match &self.key {
            SignerKey::Ec(pair, _) => pair.public_key().as_ref(),
            SignerKey::Rsa(pair) => pair.public_key().as_ref(),
        }
    }

    /// Also the signature algorithm rcgen writes: ECDSA with SHA-256/384, RSA PKCS#1 SHA-256.
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.kind().rcgen_alg()
    }
}

impl rcgen::SigningKey for CaSigner {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        match &self.key {
            SignerKey::Ec(pair, _) => pair
                .sign(&self.rng, msg)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|_| rcgen::Error::RingUnspecified),
            SignerKey::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &self.rng, msg, &mut sig)
                    .map_err(|_| rcgen::Error::RingUnspecified)?;
                Ok(sig)
            }
        }
    }
}

fn sign_error(_: rcgen::Error) -> PkiError {
    PkiError::Crypto("certificate signing")
}

/// 16 random bytes with the top bit clear (positive) and the next bit set (so the DER
/// INTEGER is always exactly 16 bytes and the hex always 32 characters).
fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; SERIAL_LEN];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| PkiError::Crypto("random serial number"))?;
    if let Some(first) = bytes.first_mut() {
        *first = (*first & 0x7f) | 0x40;
    }
    Ok(SerialNumber::from_slice(&bytes))
}

/// UTC, whole seconds (certificates cannot carry fractions), years 1950–9999 (what
/// UTCTime/GeneralizedTime can express).
fn to_utc_seconds(t: OffsetDateTime) -> Result<OffsetDateTime, PkiError> {
    let out_of_range = PkiError::InvalidRequest("validity date out of range (1950-9999)");
    let utc = t.checked_to_offset(UtcOffset::UTC).ok_or(out_of_range)?;
    if !(1950..=9999).contains(&utc.year()) {
        return Err(PkiError::InvalidRequest(
            "validity date out of range (1950-9999)",
        ));
    }
    utc.replace_nanosecond(0)
        .map_err(|_| PkiError::InvalidRequest("validity date out of range (1950-9999)"))
}

/// Same month/day `years` later (29 February becomes 28 February).
fn add_years(t: OffsetDateTime, years: i32) -> Result<OffsetDateTime, PkiError> {
    let year = t.year() + years;
    t.replace_year(year)
        .or_else(|_| t.replace_day(28).and_then(|t| t.replace_year(year)))
        .map_err(|_| PkiError::InvalidRequest("validity date out of range (1950-9999)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::{parse_certificate_pem, pem_blocks};
    use crate::csr::tests::make_csr;
    use crate::test_util::{TempDir, openssl, output_text};
    use std::sync::Arc;
    use time::macros::datetime;

    fn names(list: &[&str]) -> Vec<DnsName> {
        list.iter().map(|s| DnsName::parse(s).unwrap()).collect()
    }

    fn full_subject() -> SubjectFields<'static> {
        SubjectFields {
            country: Some("CN"),
            province: Some("Guangdong"),
            city: Some("Shenzhen"),
            organization: Some("Example Org"),
            organizational_unit: Some(""),
        }
    }

    struct Chain {
        dir: TempDir,
        ca: GeneratedCa,
        issuer: Issuer,
    }

    impl Chain {
        fn new(label: &str) -> Self {
            let ca = generate_ca("Test", OffsetDateTime::now_utc()).unwrap();
            let issuer = Issuer::from_pem(&ca.intermediate_cert_pem, &ca.intermediate_key).unwrap();
            let dir = TempDir::new(label);
            dir.write("root.pem", ca.root_cert_pem.as_bytes());
            dir.write("int.pem", ca.intermediate_cert_pem.as_bytes());
            Chain { dir, ca, issuer }
        }

        /// `openssl verify` of a leaf against root + intermediate: must say OK and exit 0.
        fn verify(&self, leaf_pem: &str) {
            let leaf = self.dir.write("leaf.pem", leaf_pem.as_bytes());
            let root = self.dir.path().join("root.pem");
            let int = self.dir.path().join("int.pem");
            let out = openssl(&[
                "verify",
                "-CAfile",
                root.to_str().unwrap(),
                "-untrusted",
                int.to_str().unwrap(),
                leaf.to_str().unwrap(),
            ]);
            let text = output_text(&out);
            assert!(out.status.success(), "openssl verify failed: {text}");
            assert!(text.contains(": OK"), "{text}");
        }

        fn text(&self, pem: &str) -> String {
            let path = self.dir.write("show.pem", pem.as_bytes());
            let out = openssl(&["x509", "-noout", "-text", "-in", path.to_str().unwrap()]);
            assert!(out.status.success(), "{}", output_text(&out));
            String::from_utf8(out.stdout).unwrap()
        }

        fn request<'a>(&self, dns: &'a [DnsName], key: LeafKey<'a>) -> LeafRequest<'a> {
            let now = OffsetDateTime::now_utc();
            LeafRequest {
                dns_names: dns,
                subject: full_subject(),
                not_before: now - Duration::minutes(5),
                not_after: now + Duration::days(365),
                public_key: key,
            }
        }
    }

    #[test]
    fn generated_ca_has_expected_shape() {
        let now = datetime!(2024-02-29 12:34:56.789 UTC);
        let ca = generate_ca("Acme", now).unwrap();
        assert_eq!(ca.root_key.algorithm(), KeyAlgorithm::EcP256);
        assert_eq!(ca.intermediate_key.algorithm(), KeyAlgorithm::EcP256);

        let root = parse_certificate_pem(&ca.root_cert_pem).unwrap();
        assert_eq!(root.common_name.as_deref(), Some("Acme Root CA"));
        assert_eq!(root.subject, "O=OpenSCM, CN=Acme Root CA");
        assert_eq!(root.subject, root.issuer);
        assert!(root.is_ca);
        assert!(root.public_key_matches(&ca.root_key));
        assert_eq!(root.signature_algorithm, "SHA256WITHECDSA");
        assert_eq!(root.not_before, datetime!(2024-02-29 11:34:56 UTC));
        assert_eq!(root.not_after, datetime!(2044-02-29 12:34:56 UTC));
        assert_eq!(root.serial_hex.len(), 32);

        let int = parse_certificate_pem(&ca.intermediate_cert_pem).unwrap();
        assert_eq!(int.common_name.as_deref(), Some("Acme Intermediate CA"));
        assert_eq!(int.issuer, root.subject);
        assert!(int.is_ca);
        assert!(int.public_key_matches(&ca.intermediate_key));
        assert!(!int.public_key_matches(&ca.root_key));
        assert_eq!(int.not_after, datetime!(2034-02-28 12:34:56 UTC));
        assert_ne!(int.serial_hex, root.serial_hex);

        // Extensions as OpenSSL sees them.
        let dir = TempDir::new("ca-shape");
        let show = |pem: &str| {
            let path = dir.write("c.pem", pem.as_bytes());
            let out = openssl(&["x509", "-noout", "-text", "-in", path.to_str().unwrap()]);
            assert!(out.status.success());
            String::from_utf8(out.stdout).unwrap()
        };
        let root_text = show(&ca.root_cert_pem);
        assert!(
            root_text.contains("X509v3 Basic Constraints: critical"),
            "{root_text}"
        );
        assert!(root_text.contains("CA:TRUE"), "{root_text}");
        assert!(
            root_text.contains("Certificate Sign, CRL Sign"),
            "{root_text}"
        );
        assert!(
            root_text.contains("X509v3 Subject Key Identifier"),
            "{root_text}"
        );
        let int_text = show(&ca.intermediate_cert_pem);
        assert!(int_text.contains("CA:TRUE, pathlen:0"), "{int_text}");
        assert!(
            int_text.contains("Digital Signature, Certificate Sign, CRL Sign"),
            "{int_text}"
        );
        assert!(
            int_text.contains("X509v3 Authority Key Identifier"),
            "{int_text}"
        );
        assert!(
            int_text.contains("X509v3 Subject Key Identifier"),
            "{int_text}"
        );

        // The intermediate chains to the root.
        let root_path = dir.write("root.pem", ca.root_cert_pem.as_bytes());
        let int_path = dir.write("int.pem", ca.intermediate_cert_pem.as_bytes());
        let out = openssl(&[
            "verify",
            "-attime",
            "1709300000",
            "-CAfile",
            root_path.to_str().unwrap(),
            int_path.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", output_text(&out));
    }

    #[test]
    fn issue_from_generated_ec_key_verifies_with_openssl() {
        let chain = Chain::new("issue-ec");
        let key = PrivateKey::generate(KeyAlgorithm::EcP256).unwrap();
        let dns = names(&["Shop.A.test", "*.a.test", "a.test", "shop.a.test"]);
        let issued = chain
            .issuer
            .issue(&chain.request(&dns, LeafKey::Generated(&key)))
            .unwrap();

        assert_eq!(issued.signature_algorithm, "SHA256WITHECDSA");
        assert_eq!(issued.serial_hex.len(), 32);
        assert_eq!(issued.sha1_fingerprint_hex.len(), 40);
        assert_eq!(issued.not_before.nanosecond(), 0);
        assert!(
            issued
                .certificate_pem
                .starts_with("-----BEGIN CERTIFICATE-----\n")
        );

        let info = parse_certificate_pem(&issued.certificate_pem).unwrap();
        assert_eq!(info.der, issued.der);
        assert_eq!(info.serial_hex, issued.serial_hex);
        assert_eq!(info.sha1_fingerprint_hex, issued.sha1_fingerprint_hex);
        assert_eq!(info.not_before, issued.not_before);
        assert_eq!(info.not_after, issued.not_after);
        assert_eq!(info.signature_algorithm, issued.signature_algorithm);
        assert_eq!(info.common_name.as_deref(), Some("shop.a.test"));
        assert_eq!(info.dns_names, vec!["shop.a.test", "*.a.test", "a.test"]);
        assert_eq!(
            info.subject,
            "C=CN, ST=Guangdong, L=Shenzhen, O=Example Org, CN=shop.a.test"
        );
        assert_eq!(info.issuer, "O=OpenSCM, CN=Test Intermediate CA");
        assert_eq!(info.key_algorithm, Some(KeyAlgorithm::EcP256));
        assert!(!info.is_ca);
        assert!(info.public_key_matches(&key));
        assert!(!info.public_key_matches(&chain.ca.intermediate_key));

        chain.verify(&issued.certificate_pem);
        let text = chain.text(&issued.certificate_pem);
        for expected in [
            "DNS:shop.a.test, DNS:*.a.test, DNS:a.test\n",
            "C = CN, ST = Guangdong, L = Shenzhen, O = Example Org, CN = shop.a.test",
            "CA:FALSE",
            "Digital Signature",
            "TLS Web Server Authentication, TLS Web Client Authentication",
            "X509v3 Authority Key Identifier",
            "X509v3 Subject Key Identifier",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
        assert!(!text.contains("Key Encipherment"), "{text}");
        assert!(!text.contains("OU ="), "empty OU must be omitted: {text}");

        // The chain splits back into its parts.
        let bundle = format!(
            "{}{}",
            issued.certificate_pem,
            chain.issuer.certificate_pem()
        );
        assert_eq!(
            pem_blocks(&bundle, "CERTIFICATE"),
            vec![
                issued.certificate_pem.clone(),
                chain.ca.intermediate_cert_pem.clone()
            ]
        );
    }

    #[test]
    fn issue_from_csrs_uses_request_subject_and_verifies() {
        let chain = Chain::new("issue-csr");
        let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let rsa =
            rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
                .unwrap();
        for (key, is_rsa) in [(ec, false), (rsa, true)] {
            let csr_pem = make_csr(&key, Some("csr.a.test"), &["csr.a.test", "www.csr.a.test"]);
            let csr = ParsedCsr::from_pem(&csr_pem).unwrap();
            let dns: Vec<DnsName> = csr
                .dns_names()
                .iter()
                .map(|n| DnsName::parse(n).unwrap())
                .collect();
            let mut req = chain.request(&dns, LeafKey::Csr(&csr));
            req.subject = SubjectFields {
                country: Some("US"),
                organization: Some("Good Org"),
                ..SubjectFields::default()
            };
            let issued = chain.issuer.issue(&req).unwrap();
            let info = parse_certificate_pem(&issued.certificate_pem).unwrap();
            assert_eq!(info.subject, "C=US, O=Good Org, CN=csr.a.test");
            assert!(!info.subject.contains("Evil"));
            assert_eq!(info.dns_names, vec!["csr.a.test", "www.csr.a.test"]);
            assert_eq!(
                rcgen::PublicKeyData::subject_public_key_info(&key),
                csr.public_key_info_der()
            );
            chain.verify(&issued.certificate_pem);
            let text = chain.text(&issued.certificate_pem);
            assert!(
                text.contains("DNS:csr.a.test, DNS:www.csr.a.test"),
                "{text}"
            );
            assert!(
                text.contains("C = US, O = Good Org, CN = csr.a.test"),
                "{text}"
            );
            assert_eq!(text.contains("Key Encipherment"), is_rsa, "{text}");
            // The leaf's key is the CSR's key.
            let spki_path = chain.dir.write("pub.pem", key.public_key_pem().as_bytes());
            let leaf_path = chain
                .dir
                .write("leaf2.pem", issued.certificate_pem.as_bytes());
            let out = openssl(&[
                "x509",
                "-noout",
                "-pubkey",
                "-in",
                leaf_path.to_str().unwrap(),
            ]);
            assert!(out.status.success());
            assert_eq!(
                String::from_utf8(out.stdout).unwrap().trim(),
                std::fs::read_to_string(spki_path).unwrap().trim()
            );
        }
    }

    #[test]
    fn issue_with_generated_rsa_key() {
        let chain = Chain::new("issue-rsa");
        let key = PrivateKey::generate(KeyAlgorithm::Rsa2048).unwrap();
        let dns = names(&["rsa.a.test"]);
        let issued = chain
            .issuer
            .issue(&chain.request(&dns, LeafKey::Generated(&key)))
            .unwrap();
        let info = parse_certificate_pem(&issued.certificate_pem).unwrap();
        assert_eq!(info.key_algorithm, Some(KeyAlgorithm::Rsa2048));
        assert!(info.public_key_matches(&key));
        chain.verify(&issued.certificate_pem);
        assert!(
            chain
                .text(&issued.certificate_pem)
                .contains("Key Encipherment")
        );
    }

    #[test]
    fn issue_rejects_bad_requests_and_clamps_validity() {
        let chain = Chain::new("issue-bad");
        let key = PrivateKey::generate(KeyAlgorithm::EcP256).unwrap();
        let empty: Vec<DnsName> = Vec::new();
        assert!(matches!(
            chain
                .issuer
                .issue(&chain.request(&empty, LeafKey::Generated(&key))),
            Err(PkiError::InvalidRequest(_))
        ));
        let dns = names(&["ok.test"]);
        let mut req = chain.request(&dns, LeafKey::Generated(&key));
        req.not_after = req.not_before;
        assert!(matches!(
            chain.issuer.issue(&req),
            Err(PkiError::InvalidRequest(_))
        ));

        // A leaf asking to outlive the intermediate is cut at the intermediate's expiry.
        let mut req = chain.request(&dns, LeafKey::Generated(&key));
        req.not_after = req.not_before + Duration::days(365 * 30);
        let issued = chain.issuer.issue(&req).unwrap();
        assert_eq!(issued.not_after, chain.issuer.not_after());
        chain.verify(&issued.certificate_pem);

        // Non-UTC inputs are converted.
        let mut req = chain.request(&dns, LeafKey::Generated(&key));
        let offset = UtcOffset::from_hms(8, 0, 0).unwrap();
        req.not_before = req.not_before.to_offset(offset);
        let issued = chain.issuer.issue(&req).unwrap();
        assert_eq!(issued.not_before.offset(), UtcOffset::UTC);
        assert_eq!(
            issued.not_before.unix_timestamp(),
            req.not_before.unix_timestamp()
        );
    }

    #[test]
    fn issuer_rejects_wrong_key_and_non_ca() {
        let ca = generate_ca("X", OffsetDateTime::now_utc()).unwrap();
        assert!(matches!(
            Issuer::from_pem(&ca.intermediate_cert_pem, &ca.root_key),
            Err(PkiError::KeyMismatch)
        ));
        assert!(matches!(
            Issuer::from_pem("nonsense", &ca.intermediate_key),
            Err(PkiError::BadCertificatePem)
        ));
        // A leaf cannot be an issuer.
        let issuer = Issuer::from_pem(&ca.intermediate_cert_pem, &ca.intermediate_key).unwrap();
        let key = PrivateKey::generate(KeyAlgorithm::EcP256).unwrap();
        let now = OffsetDateTime::now_utc();
        let dns = names(&["leaf.test"]);
        let leaf = issuer
            .issue(&LeafRequest {
                dns_names: &dns,
                subject: SubjectFields::default(),
                not_before: now,
                not_after: now + Duration::days(1),
                public_key: LeafKey::Generated(&key),
            })
            .unwrap();
        assert!(matches!(
            Issuer::from_pem(&leaf.certificate_pem, &key),
            Err(PkiError::NotCa)
        ));
        // The root itself can act as issuer.
        assert!(Issuer::from_pem(&ca.root_cert_pem, &ca.root_key).is_ok());
        // Debug output carries no key material.
        assert!(!format!("{issuer:?}").contains("key"));
    }

    #[test]
    fn issuer_is_send_sync_and_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Issuer>();
        assert_send_sync::<GeneratedCa>();
        let chain = Chain::new("issue-threads");
        let issuer = Arc::new(chain.issuer);
        let handles: Vec<_> = (0..2)
            .map(|i| {
                let issuer = Arc::clone(&issuer);
                std::thread::spawn(move || {
                    let key = PrivateKey::generate(KeyAlgorithm::EcP256).unwrap();
                    let dns = vec![DnsName::parse(&format!("t{i}.test")).unwrap()];
                    let now = OffsetDateTime::now_utc();
                    issuer
                        .issue(&LeafRequest {
                            dns_names: &dns,
                            subject: SubjectFields::default(),
                            not_before: now,
                            not_after: now + Duration::days(1),
                            public_key: LeafKey::Generated(&key),
                        })
                        .unwrap()
                        .serial_hex
                })
            })
            .collect();
        let serials: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_ne!(serials[0], serials[1]);
    }

    #[test]
    fn serving_hosts_take_single_labels_and_addresses() {
        let ok = [
            "localhost",
            "SCM.Internal.",
            "127.0.0.1",
            "::1",
            "[::1]",
            "a-b.example",
        ];
        let parsed: Vec<String> = ok
            .iter()
            .map(|h| ServingHost::parse(h).unwrap().to_string())
            .collect();
        assert_eq!(
            parsed,
            [
                "localhost",
                "scm.internal",
                "127.0.0.1",
                "::1",
                "::1",
                "a-b.example"
            ]
        );
        for bad in [
            "",
            "*.example.test",
            "a b",
            "-x.test",
            "1.2.3",
            "x..y",
            "under_score.test",
        ] {
            assert!(ServingHost::parse(bad).is_err(), "{bad:?}");
        }
        let chain = Chain::new("serving");
        let key = PrivateKey::generate(KeyAlgorithm::EcP256).unwrap();
        let now = OffsetDateTime::now_utc();
        let hosts = [
            ServingHost::parse("localhost").unwrap(),
            ServingHost::parse("127.0.0.1").unwrap(),
        ];
        let leaf = chain
            .issuer
            .issue_serving(&hosts, now, now + Duration::days(30), &key)
            .unwrap();
        let info = parse_certificate_der(&leaf.der).unwrap();
        assert_eq!(info.common_name.as_deref(), Some("localhost"));
        assert_eq!(info.dns_names, ["localhost"]);
        assert!(info.public_key_matches(&key));
        assert!(
            chain
                .issuer
                .issue_serving(&[], now, now + Duration::days(1), &key)
                .is_err()
        );
    }
}
