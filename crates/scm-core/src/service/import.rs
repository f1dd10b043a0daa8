//! ImportCertificate: a certificate made elsewhere, stored with its chain and its key (sealed
//! under the master key exactly as the keys of issued certificates), in status `UPLOAD`. From
//! then on it is read, listed, exported, pushed, tagged and deleted as an issued certificate
//! is, and reads `EXPIRED` from its `not_after` on ([`CertificateRecord::as_of`]).
//!
//! The body is checked in this order; the first refusal answers and nothing is written:
//! 1. `name`: required, 3..63 characters of `A-Z a-z 0-9 _ - .`, else `SCM.0032` "Incorrect
//!    certificate name" (the code the reference lists for it);
//! 2. sizes, in characters: `certificate` (required) at most 4096, `certificate_chain` 8192,
//!    `private_key` (required) 4096, `enc_certificate` and `enc_private_key` 4096 each; a
//!    missing or oversized field is `SCM.0005` naming it; `enterprise_project_id` as for
//!    purchases (`0`, `all` or a UUID; empty = `0`);
//! 3. SM2: a non-blank `enc_certificate` or `enc_private_key` is `SCM.0005` naming it: OpenSCM's
//!    cryptography (aws-lc) has no SM2, so an SM2 dual certificate cannot be checked or used;
//! 4. the PEM texts ([`scm_pki::import`]): certificate markers `SCM.0053`, empty body
//!    `SCM.0054`, unparsable certificate `SCM.0006`, unparsable chain `SCM.0013`, chain order
//!    `SCM.0079`; then the chain by its signatures ([`scm_pki::chain`], at the injected clock's
//!    now), each refusal naming the certificate at fault: a CA leaf (CA:TRUE), a leaf with a
//!    critical extension OpenSCM does not process, or one not valid yet `SCM.0006` (the
//!    documented "failed to be resolved … ensure that the certificate has been issued" code);
//!    a chain certificate with such an extension `SCM.0013`; a signature that does not verify
//!    with the next certificate's key (a CA of the right name and another key), a loop, or a
//!    chain certificate that may not issue (not a CA, no keyCertSign, path length or DNS name
//!    constraints) `SCM.0079` (the chain-check code); then no domain `SCM.0009`, key markers
//!    `SCM.0114`, unparsable, passphrase-protected or unsupported key `SCM.0012`, key not the
//!    certificate's `SCM.0014`;
//! 5. `duplicate_check: true` (the SDK's reading of the contradictory docs, open question 5):
//!    the account already holds a certificate with the leaf's SHA-1 fingerprint (imported or
//!    issued here) is `SCM.0005` naming `certificate`; absent or `false` allows the copy;
//! 6. the account's certificate quota (`SCM.0011`), as for purchases.
//!
//! What is stored is derived from the leaf: domain (the CN when it is a DNS name, else the first
//! DNS subjectAltName), sans (the other names), domain type and counts, signature algorithm,
//! fingerprint, serial, validity (`issue_time` is `not_before`), and the issuer, which also marks
//! the certificate imported. With them the verdict on the chain: whether its signatures lead to a
//! certificate the server trusts (the anchors given in [`crate::CoreConfig::import_trust`], the
//! machine's trust store in the server, and the roots of the importing account's own CAs), and if not why
//! ([`scm_pki::ChainTrust`]); a chain that is not trusted is no refusal (ACM and Vault import
//! certificates of private CAs too). The brand is recognised from the issuer's name only when the
//! chain is trusted ([`imported_brand`]): a name alone proves nothing, anyone can call their CA
//! "GlobalSign". An imported certificate has no order for the client: `certificates.order_id`
//! must name one, so each import writes an order row of its own, never shown.

use scm_pki::{DnsName, ImportError, ImportedCertificate, parse_import};
use scm_proto::import::ImportCertificateBody;
use scm_proto::{Brand, CertType, CertificateId, CertificateStatus, DomainType, PrimaryDomainType};
use scm_store::{
    ApplicationRecord, CertificateRecord, ChainTrustRecord, ImportOutcome, IssuedRecord,
    OrderRecord, Product, StoreError,
};
use zeroize::Zeroizing;

use super::Scm;
use super::certificates::order_id;
use crate::clock::unix_ms;
use crate::error::ImportRefusal;
use crate::purchase::{enterprise_project, max_len};
use crate::{DomainError, Principal, issuance};

/// Shortest certificate name.
pub const MIN_NAME: usize = 3;
/// Longest certificate name.
pub const MAX_NAME: usize = 63;
/// Longest `certificate`.
pub const MAX_CERTIFICATE: usize = 4096;
/// Longest `certificate_chain`.
pub const MAX_CHAIN: usize = 8192;
/// Longest `private_key`.
pub const MAX_PRIVATE_KEY: usize = 4096;
/// Longest `enc_certificate` / `enc_private_key`.
pub const MAX_ENC: usize = 4096;
/// Longest `enterprise_project_id`.
pub const MAX_ENTERPRISE_PROJECT: usize = 64;
/// The source named in the verdict of a chain that reaches the root of one of the importing
/// account's own CAs (another account's CA is not trusted).
pub const BUILTIN_CA_SOURCE: &str = "this account's OpenSCM CA";
/// The source named in the verdict of a chain that reaches a root of the machine's trust store.
pub const SYSTEM_TRUST_SOURCE: &str = "the machine's trust store";

/// A checked ImportCertificate body, before its PEM texts are read.
#[derive(Clone)]
pub struct ImportSpec {
    /// Name.
    pub name: String,
    /// Certificate PEM (maybe with its chain).
    pub certificate: String,
    /// Chain PEM, when given and not blank.
    pub chain: Option<String>,
    /// Key PEM.
    pub private_key: Zeroizing<String>,
    /// Refuse a certificate the account already holds.
    pub duplicate_check: bool,
    /// Enterprise project.
    pub enterprise_project_id: String,
}

impl std::fmt::Debug for ImportSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportSpec")
            .field("name", &self.name)
            .field("duplicate_check", &self.duplicate_check)
            .finish_non_exhaustive()
    }
}

fn required<'a>(v: Option<&'a str>, max: usize, field: &str) -> Result<&'a str, DomainError> {
    let v = v.ok_or_else(|| DomainError::invalid(field, "is required"))?;
    max_len(v, max, field)?;
    Ok(v)
}

/// The name rule: 3..63 of `A-Z a-z 0-9 _ - .`; anything else is `SCM.0032`.
pub fn check_name(v: Option<&str>) -> Result<String, DomainError> {
    let refuse =
        |why: &str| DomainError::import_refused(ImportRefusal::Name, format!("name {why}"));
    let name = v.ok_or_else(|| refuse("is required"))?;
    let n = name.chars().count();
    if !(MIN_NAME..=MAX_NAME).contains(&n) {
        return Err(refuse("must be 3 to 63 characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(refuse("may hold only letters A-Z a-z, digits and _ - ."));
    }
    Ok(name.to_owned())
}

/// Checks an ImportCertificate body up to its PEM content (steps 1–3 of the module
/// documentation).
pub fn check_import(body: &ImportCertificateBody) -> Result<ImportSpec, DomainError> {
    let name = check_name(body.name.as_deref())?;
    let certificate = required(body.certificate.as_deref(), MAX_CERTIFICATE, "certificate")?;
    if let Some(c) = &body.certificate_chain {
        max_len(c, MAX_CHAIN, "certificate_chain")?;
    }
    let private_key = required(body.private_key.as_deref(), MAX_PRIVATE_KEY, "private_key")?;
    for (v, field) in [
        (&body.enc_certificate, "enc_certificate"),
        (&body.enc_private_key, "enc_private_key"),
    ] {
        if let Some(v) = v {
            max_len(v, MAX_ENC, field)?;
        }
    }
    let enterprise_project_id = match body
        .enterprise_project_id
        .as_deref()
        .filter(|e| !e.is_empty())
    {
        None => "0".to_owned(),
        Some(e) => {
            max_len(e, MAX_ENTERPRISE_PROJECT, "enterprise_project_id")?;
            enterprise_project(e, "enterprise_project_id")?
        }
    };
    for (v, field) in [
        (&body.enc_certificate, "enc_certificate"),
        (&body.enc_private_key, "enc_private_key"),
    ] {
        if v.as_deref().is_some_and(|v| !v.trim().is_empty()) {
            return Err(DomainError::invalid(
                field,
                "is for SM2 dual certificates, which OpenSCM does not support (its cryptography, \
                 aws-lc, has no SM2)",
            ));
        }
    }
    Ok(ImportSpec {
        name,
        certificate: certificate.to_owned(),
        chain: body
            .certificate_chain
            .clone()
            .filter(|c| !c.trim().is_empty()),
        private_key: Zeroizing::new(private_key.to_owned()),
        duplicate_check: body.duplicate_check.unwrap_or(false),
        enterprise_project_id,
    })
}

/// The domain error of a refused PEM text, one code per kind.
fn refused(e: ImportError) -> DomainError {
    let reason = e.to_string();
    let refusal = match e {
        ImportError::CertificateMarkers => ImportRefusal::CertificateMarkers,
        ImportError::CertificateEmpty => ImportRefusal::CertificateEmpty,
        ImportError::Certificate(_) => ImportRefusal::CertificateUnparsable,
        ImportError::Chain(_) => ImportRefusal::ChainUnparsable,
        ImportError::ChainOrder(_) => ImportRefusal::ChainOrder,
        ImportError::ChainLoop(_)
        | ImportError::ChainSignature(_)
        | ImportError::ChainIssuer(_) => ImportRefusal::ChainUnverified,
        ImportError::LeafIsCa(_)
        | ImportError::NotYetValid(_)
        | ImportError::CriticalExtension {
            in_chain: false, ..
        } => ImportRefusal::CertificateRefused,
        ImportError::CriticalExtension { in_chain: true, .. } => ImportRefusal::ChainUnparsable,
        ImportError::NoDomain => ImportRefusal::NoDomain,
        ImportError::KeyMarkers => ImportRefusal::KeyMarkers,
        ImportError::Key(_) => ImportRefusal::KeyUnparsable,
        ImportError::KeyMismatch => ImportRefusal::KeyMismatch,
    };
    DomainError::import_refused(refusal, reason)
}

/// The brand of a certificate issued by `issuer` (a distinguished name), when it is one of the
/// documented brands (by the issuer's name: GlobalSign, GeoTrust, DigiCert/Symantec, CFCA,
/// TrustAsia, vTrus); `None` for any other CA.
pub fn brand_of_issuer(issuer: &str) -> Option<Brand> {
    let lower = issuer.to_ascii_lowercase();
    [
        ("globalsign", Brand::GlobalSign),
        ("geotrust", Brand::GeoTrust),
        ("symantec", Brand::Symantec),
        ("digicert", Brand::Symantec),
        ("cfca", Brand::Cfca),
        ("trustasia", Brand::TrustAsia),
        ("vtrus", Brand::Vtrus),
    ]
    .into_iter()
    .find(|(needle, _)| lower.contains(needle))
    .map(|(_, brand)| brand)
}

/// The brand an imported certificate shows: the documented brand its issuer is
/// ([`brand_of_issuer`]), read from the issuer's name only when the chain was verified up to a
/// certificate the server trusts; `None` (shown `null`, as for an issuer that is no documented
/// brand) when it was not, or when the certificate was imported before chains were verified.
/// `None` too for a purchased certificate, whose brand is the product's.
pub fn imported_brand(c: &CertificateRecord) -> Option<Brand> {
    let issuer = c.issuer.as_deref()?;
    c.chain_trust.as_ref().filter(|t| t.trusted)?;
    brand_of_issuer(issuer)
}

/// Average month, ms (365.2425 / 12 days).
const MONTH_MS: i64 = 2_629_746_000;

/// Whole months from `not_before` to `not_after`, rounded (a 365-day certificate is 12).
pub fn validity_months(not_before_ms: i64, not_after_ms: i64) -> i64 {
    let span = not_after_ms.saturating_sub(not_before_ms).max(0);
    span.saturating_add(MONTH_MS / 2) / MONTH_MS
}

/// The product an imported certificate is stored with: what its names make it (single,
/// wildcard, multi-domain and the counts). Brand and type are placeholders the views never
/// show for an imported certificate (the brand shown comes from the issuer).
fn product_of(names: &[DnsName], months: i64, enterprise_project_id: String) -> Product {
    let count = i64::try_from(names.len()).unwrap_or(i64::MAX);
    let (domain_type, primary, singles, wilds) = match names {
        [only] if only.is_wildcard() => (DomainType::Wildcard, None, None, None),
        [_] | [] => (DomainType::Single, None, None, None),
        [first, rest @ ..] => {
            let rest_wild = rest.iter().filter(|n| n.is_wildcard()).count();
            let rest_wild = i64::try_from(rest_wild).unwrap_or(0);
            let rest_len = i64::try_from(rest.len()).unwrap_or(0);
            (
                DomainType::Multi,
                Some(if first.is_wildcard() {
                    PrimaryDomainType::Wildcard
                } else {
                    PrimaryDomainType::Single
                }),
                Some(rest_len - rest_wild),
                Some(rest_wild),
            )
        }
    };
    Product {
        brand: Brand::GlobalSign,
        cert_type: CertType::DvSsl,
        domain_type,
        effective_time: ((months + 11) / 12).max(1),
        domain_numbers: count,
        primary_domain_type: primary,
        single_domain_number: singles,
        wildcard_domain_number: wilds,
        enterprise_project_id,
    }
}

impl Scm {
    /// `ImportCertificate`: checks the body, the certificate, its chain and its key, and stores
    /// them (the key sealed, bound to the new id) as a certificate in `UPLOAD`. Returns its id.
    pub async fn import_certificate(
        &self,
        p: &Principal,
        body: &ImportCertificateBody,
    ) -> Result<CertificateId, DomainError> {
        let spec = check_import(body)?;
        let (certificate, chain, key) = (
            spec.certificate.clone(),
            spec.chain.clone(),
            spec.private_key.clone(),
        );
        let (now, anchors) = (self.clock.now(), self.import_anchors(&p.account).await?);
        // Checking an RSA-4096 key and the chain's signatures takes milliseconds: off the async
        // workers.
        let parsed: ImportedCertificate = tokio::task::spawn_blocking(move || {
            parse_import(&certificate, chain.as_deref(), &key, now, &anchors)
        })
        .await?
        .map_err(refused)?;
        let not_before_ms = unix_ms(parsed.leaf.not_before);
        let not_after_ms = unix_ms(parsed.leaf.not_after);
        let product = product_of(
            &parsed.names,
            validity_months(not_before_ms, not_after_ms),
            spec.enterprise_project_id.clone(),
        );
        let (domain, sans) = match parsed.names.split_first() {
            Some((first, rest)) => (
                first.as_str().to_owned(),
                rest.iter()
                    .map(DnsName::as_str)
                    .collect::<Vec<_>>()
                    .join(";"),
            ),
            None => {
                return Err(DomainError::import_refused(
                    ImportRefusal::NoDomain,
                    ImportError::NoDomain.to_string(),
                ));
            }
        };
        let application = ApplicationRecord {
            domain,
            sans,
            form_json: String::new(),
            csr_pem: None,
            validation_method: None,
            key_algorithm: Some(parsed.key.algorithm().as_str().to_owned()),
        };
        // Order ids carry 5 random characters per minute; retry on the rare collision.
        for _ in 0..5 {
            let now = self.clock.now();
            let now_ms = unix_ms(now);
            let id = self.store.allocate_certificate_id(now_ms).await?;
            let sealed = self
                .master
                .seal(parsed.key.pkcs8_der(), issuance::key_aad(&id).as_bytes())
                .map_err(|e| DomainError::internal_from("sealing key", e))?;
            let order = OrderRecord {
                order_id: order_id(now)?,
                domain_id: p.account.clone(),
                project_id: p.project.clone(),
                product: product.clone(),
                order_number: 1,
                tags_json: "[]".into(),
                created_ms: now_ms,
            };
            let cert = CertificateRecord {
                id: id.clone(),
                domain_id: p.account.clone(),
                project_id: p.project.clone(),
                order_id: order.order_id.clone(),
                name: spec.name.clone(),
                status: CertificateStatus::Upload,
                product: product.clone(),
                description: String::new(),
                tags_json: "[]".into(),
                application: Some(application.clone()),
                issued: Some(IssuedRecord {
                    certificate_pem: parsed.leaf_pem.clone(),
                    chain_pem: parsed.chain_pem.clone(),
                    private_key_sealed: Some(sealed),
                    serial_hex: parsed.leaf.serial_hex.clone(),
                    fingerprint: parsed.leaf.sha1_fingerprint_hex.clone(),
                    signature_algorithm: parsed.leaf.signature_algorithm.clone(),
                    issued_ms: not_before_ms,
                    not_before_ms,
                    not_after_ms,
                    ca_id: None,
                }),
                created_ms: now_ms,
                updated_ms: now_ms,
                issuer: Some(parsed.leaf.issuer.clone()),
                chain_trust: Some(ChainTrustRecord {
                    trusted: parsed.trust.is_trusted(),
                    note: parsed.trust.to_string(),
                }),
                revocation: None,
                lifecycle: scm_store::LifecycleRecord::default(),
            };
            match self
                .store
                .import_certificate(&order, &cert, &self.config.quotas, spec.duplicate_check)
                .await
            {
                Ok(ImportOutcome::Imported) => {
                    tracing::info!(
                        cert = %id,
                        serial = %parsed.leaf.serial_hex,
                        trusted = parsed.trust.is_trusted(),
                        chain = %parsed.trust,
                        "certificate imported"
                    );
                    return Ok(id);
                }
                Ok(ImportOutcome::Duplicate(existing)) => {
                    return Err(DomainError::invalid(
                        "certificate",
                        format!(
                            "is already in this account as {existing} (duplicate_check is true)"
                        ),
                    ));
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(DomainError::internal(
            "could not allocate a unique order id",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::invalid_field;

    fn body() -> ImportCertificateBody {
        ImportCertificateBody {
            name: Some("my-cert.1".into()),
            certificate: Some("-----BEGIN CERTIFICATE-----".into()),
            private_key: Some("-----BEGIN PRIVATE KEY-----".into()),
            ..ImportCertificateBody::default()
        }
    }

    fn refusal(r: Result<ImportSpec, DomainError>) -> ImportRefusal {
        match r {
            Err(DomainError::ImportRefused { refusal, .. }) => refusal,
            other => panic!("expected an import refusal, got {other:?}"),
        }
    }

    #[test]
    fn bodies_parse() {
        let spec = check_import(&body()).unwrap();
        assert_eq!(spec.name, "my-cert.1");
        assert_eq!(spec.enterprise_project_id, "0");
        assert!(!spec.duplicate_check);
        assert!(spec.chain.is_none());
        let mut b = body();
        b.certificate_chain = Some("  ".into());
        b.duplicate_check = Some(true);
        b.enterprise_project_id = Some(String::new());
        b.enc_certificate = Some(String::new());
        let spec = check_import(&b).unwrap();
        assert!(spec.chain.is_none(), "a blank chain is none");
        assert!(spec.duplicate_check);
        assert_eq!(spec.enterprise_project_id, "0");
        assert!(
            !format!("{spec:?}").contains("PRIVATE KEY"),
            "no key in Debug"
        );
    }

    #[test]
    fn names_are_scm_0032() {
        for bad in [
            None,
            Some(""),
            Some("ab"),
            Some("has space"),
            Some("名字名字"),
            Some("a/b"),
        ] {
            let mut b = body();
            b.name = bad.map(str::to_owned);
            assert_eq!(refusal(check_import(&b)), ImportRefusal::Name, "{bad:?}");
        }
        let mut b = body();
        b.name = Some("x".repeat(64));
        assert_eq!(refusal(check_import(&b)), ImportRefusal::Name);
        b.name = Some("A_b-c.9".repeat(9));
        assert_eq!(check_import(&b).unwrap().name.len(), 63);
    }

    #[test]
    fn sizes_and_sm2_name_the_field() {
        type Change = fn(&mut ImportCertificateBody);
        let cases: [(Change, &str); 10] = [
            (|b| b.certificate = None, "certificate"),
            (|b| b.certificate = Some("c".repeat(4097)), "certificate"),
            (
                |b| b.certificate_chain = Some("c".repeat(8193)),
                "certificate_chain",
            ),
            (|b| b.private_key = None, "private_key"),
            (|b| b.private_key = Some("k".repeat(4097)), "private_key"),
            (
                |b| b.enc_certificate = Some("e".repeat(4097)),
                "enc_certificate",
            ),
            (
                |b| b.enc_private_key = Some("e".repeat(4097)),
                "enc_private_key",
            ),
            (
                |b| b.enterprise_project_id = Some("prod".into()),
                "enterprise_project_id",
            ),
            (
                |b| b.enc_certificate = Some("-----BEGIN CERTIFICATE-----".into()),
                "enc_certificate",
            ),
            (
                |b| b.enc_private_key = Some("-----BEGIN PRIVATE KEY-----".into()),
                "enc_private_key",
            ),
        ];
        for (change, field) in cases {
            let mut b = body();
            change(&mut b);
            assert_eq!(invalid_field(check_import(&b)), field);
        }
        // At the limits: accepted.
        let mut b = body();
        b.certificate = Some("c".repeat(4096));
        b.certificate_chain = Some("c".repeat(8192));
        b.private_key = Some("k".repeat(4096));
        check_import(&b).unwrap();
    }

    #[test]
    fn pem_refusals_have_their_kind() {
        let kind = |e: ImportError| match refused(e) {
            DomainError::ImportRefused { refusal, .. } => refusal,
            _ => unreachable!(),
        };
        let text = || "what".to_owned();
        assert_eq!(kind(ImportError::KeyMismatch), ImportRefusal::KeyMismatch);
        // The chain by its signatures: the chain-check code, SCM.0079.
        for e in [
            ImportError::ChainSignature(text()),
            ImportError::ChainLoop(text()),
            ImportError::ChainIssuer(text()),
        ] {
            assert_eq!(kind(e), ImportRefusal::ChainUnverified);
        }
        // The leaf that cannot be used: SCM.0006.
        for e in [
            ImportError::LeafIsCa(text()),
            ImportError::NotYetValid(text()),
            ImportError::CriticalExtension {
                in_chain: false,
                reason: text(),
            },
        ] {
            assert_eq!(kind(e), ImportRefusal::CertificateRefused);
        }
        // A chain certificate with an unknown critical extension: SCM.0013.
        assert_eq!(
            kind(ImportError::CriticalExtension {
                in_chain: true,
                reason: text()
            }),
            ImportRefusal::ChainUnparsable
        );
    }

    #[test]
    fn brands_and_months() {
        assert_eq!(
            brand_of_issuer("C=BE, O=GlobalSign nv-sa, CN=GlobalSign RSA OV SSL CA 2018"),
            Some(Brand::GlobalSign)
        );
        assert_eq!(
            brand_of_issuer("C=US, O=DigiCert Inc, CN=GeoTrust TLS RSA CA G1"),
            Some(Brand::GeoTrust),
            "GeoTrust first: DigiCert issues GeoTrust-branded certificates"
        );
        assert_eq!(brand_of_issuer("C=US, O=Let's Encrypt, CN=R3"), None);
        let day = 86_400_000;
        assert_eq!(validity_months(0, 365 * day), 12);
        assert_eq!(validity_months(0, 90 * day), 3);
        assert_eq!(validity_months(0, 397 * day), 13);
        assert_eq!(validity_months(10, 0), 0);
    }

    #[test]
    fn products_follow_the_names() {
        let n = |list: &[&str]| -> Vec<DnsName> {
            list.iter().map(|s| DnsName::parse(s).unwrap()).collect()
        };
        let p = product_of(&n(&["a.test"]), 12, "0".into());
        assert_eq!(
            (p.domain_type, p.domain_numbers, p.effective_time),
            (DomainType::Single, 1, 1)
        );
        let p = product_of(&n(&["*.a.test"]), 3, "0".into());
        assert_eq!(p.domain_type, DomainType::Wildcard);
        let p = product_of(&n(&["*.a.test", "b.test", "*.c.test"]), 24, "0".into());
        assert_eq!(p.domain_type, DomainType::Multi);
        assert_eq!(p.primary_domain_type, Some(PrimaryDomainType::Wildcard));
        assert_eq!(
            (p.single_domain_number, p.wildcard_domain_number),
            (Some(1), Some(1))
        );
        assert_eq!((p.domain_numbers, p.effective_time), (3, 2));
        // The additional wildcard name only: the wildcard primary is not counted.
        assert_eq!(issuance::wildcard_count(&p), 1);
    }
}
