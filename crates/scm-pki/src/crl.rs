//! Certificate revocation lists (RFC 5280 §5) signed by the built-in CA's issuing certificate,
//! and reading them back.
//!
//! A CRL is version 2, signed with the issuer's key, with the authority key identifier of the
//! issuer (the one its leaves carry) and a CRL number; `nextUpdate` is always present. It has no
//! issuing distribution point: it covers every certificate of its issuer, so a verifier that
//! compares the two finds no scope to mismatch.

use rcgen::{
    CertificateRevocationListParams, KeyIdMethod, RevocationReason, RevokedCertParams, SerialNumber,
};
use time::OffsetDateTime;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::PkiError;
use crate::ca::Issuer;
use crate::util::{pem_encode, serial_hex};

/// An RFC 5280 CRL reason code (§5.3.1) that a revocation may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlReason {
    /// `unspecified` (0).
    Unspecified,
    /// `keyCompromise` (1).
    KeyCompromise,
    /// `cACompromise` (2).
    CaCompromise,
    /// `affiliationChanged` (3).
    AffiliationChanged,
    /// `superseded` (4).
    Superseded,
    /// `cessationOfOperation` (5).
    CessationOfOperation,
    /// `certificateHold` (6).
    CertificateHold,
    /// `privilegeWithdrawn` (9).
    PrivilegeWithdrawn,
    /// `aACompromise` (10).
    AaCompromise,
}

impl CrlReason {
    /// Every reason.
    pub const ALL: [Self; 9] = [
        Self::Unspecified,
        Self::KeyCompromise,
        Self::CaCompromise,
        Self::AffiliationChanged,
        Self::Superseded,
        Self::CessationOfOperation,
        Self::CertificateHold,
        Self::PrivilegeWithdrawn,
        Self::AaCompromise,
    ];

    /// The RFC 5280 name, e.g. `keyCompromise`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "keyCompromise",
            Self::CaCompromise => "cACompromise",
            Self::AffiliationChanged => "affiliationChanged",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessationOfOperation",
            Self::CertificateHold => "certificateHold",
            Self::PrivilegeWithdrawn => "privilegeWithdrawn",
            Self::AaCompromise => "aACompromise",
        }
    }

    /// The reason a free-text revocation reason names: an RFC 5280 name in any case, with or
    /// without `_`, `-` or spaces between its words (`keyCompromise`, `KEY_COMPROMISE`,
    /// `key compromise`). `None` for any other text: its CRL entry then carries no reason code.
    pub fn from_text(text: &str) -> Option<Self> {
        let squash = |s: &str| {
            s.chars()
                .filter(|c| !matches!(c, '_' | '-' | ' '))
                .flat_map(char::to_lowercase)
                .collect::<String>()
        };
        let wanted = squash(text.trim());
        Self::ALL.into_iter().find(|r| squash(r.name()) == wanted)
    }

    const fn rcgen(self) -> RevocationReason {
        match self {
            Self::Unspecified => RevocationReason::Unspecified,
            Self::KeyCompromise => RevocationReason::KeyCompromise,
            Self::CaCompromise => RevocationReason::CaCompromise,
            Self::AffiliationChanged => RevocationReason::AffiliationChanged,
            Self::Superseded => RevocationReason::Superseded,
            Self::CessationOfOperation => RevocationReason::CessationOfOperation,
            Self::CertificateHold => RevocationReason::CertificateHold,
            Self::PrivilegeWithdrawn => RevocationReason::PrivilegeWithdrawn,
            Self::AaCompromise => RevocationReason::AaCompromise,
        }
    }
}

/// One revoked certificate of a CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Its serial number, hex.
    pub serial_hex: String,
    /// When it was revoked.
    pub revoked_at: OffsetDateTime,
    /// Why, when the revocation named an RFC 5280 reason.
    pub reason: Option<CrlReason>,
}

/// What to put in a CRL.
#[derive(Debug, Clone, Copy)]
pub struct CrlRequest<'a> {
    /// The CRL number: strictly greater than that of every CRL of this issuer before.
    pub number: u64,
    /// When this CRL was issued.
    pub this_update: OffsetDateTime,
    /// When the next one will be issued at the latest (must be after `this_update`).
    pub next_update: OffsetDateTime,
    /// The revoked certificates.
    pub revoked: &'a [RevokedEntry],
}

impl Issuer {
    /// Signs a CRL of this issuer, DER.
    ///
    /// Errors: [`PkiError::InvalidRequest`] for a serial that is not hex, a `next_update` not
    /// after `this_update` or dates out of range; [`PkiError::Crypto`] if signing fails.
    pub fn sign_crl(&self, req: &CrlRequest<'_>) -> Result<Vec<u8>, PkiError> {
        if req.next_update <= req.this_update {
            return Err(PkiError::InvalidRequest(
                "a CRL's nextUpdate must be after its thisUpdate",
            ));
        }
        let revoked_certs = req
            .revoked
            .iter()
            .map(|e| {
                let serial = hex::decode(&e.serial_hex)
                    .ok()
                    .filter(|s| !s.is_empty())
                    .ok_or(PkiError::InvalidRequest(
                        "a revoked serial number is not hex",
                    ))?;
                Ok(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&serial),
                    revocation_time: whole_seconds(e.revoked_at)?,
                    reason_code: e.reason.map(CrlReason::rcgen),
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>, PkiError>>()?;
        let params = CertificateRevocationListParams {
            this_update: whole_seconds(req.this_update)?,
            next_update: whole_seconds(req.next_update)?,
            crl_number: SerialNumber::from(req.number),
            issuing_distribution_point: None,
            revoked_certs,
            // The issuer's own key identifier, so the CRL's authority key identifier is the one
            // its leaves carry.
            key_identifier_method: KeyIdMethod::PreSpecified(self.key_id.clone()),
        };
        let crl = params
            .signed_by(&self.inner)
            .map_err(|_| PkiError::Crypto("CRL signing"))?;
        Ok(crl.der().to_vec())
    }
}

/// A CRL as PEM (`X509 CRL`).
pub fn crl_pem(der: &[u8]) -> String {
    pem_encode("X509 CRL", der)
}

/// What a CRL says (its signature is not checked here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlInfo {
    /// The CRL number; `None` when absent or longer than 8 bytes.
    pub number: Option<u64>,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate, when present.
    pub next_update: Option<OffsetDateTime>,
    /// The revoked serial numbers, lower-case hex, in CRL order.
    pub revoked_serials: Vec<String>,
}

/// Reads a DER CRL (trailing bytes are refused).
///
/// Errors: [`PkiError::InvalidRequest`] when it does not parse.
pub fn parse_crl_der(der: &[u8]) -> Result<CrlInfo, PkiError> {
    let (rest, crl) = CertificateRevocationList::from_der(der)
        .map_err(|_| PkiError::InvalidRequest("not a DER CRL"))?;
    if !rest.is_empty() {
        return Err(PkiError::InvalidRequest("not a DER CRL"));
    }
    let number = crl.crl_number().and_then(|n| {
        let bytes = n.to_bytes_be();
        (bytes.len() <= 8).then(|| {
            bytes
                .iter()
                .fold(0_u64, |acc, b| (acc << 8) | u64::from(*b))
        })
    });
    Ok(CrlInfo {
        number,
        this_update: crl.last_update().to_datetime(),
        next_update: crl.next_update().map(|t| t.to_datetime()),
        revoked_serials: crl
            .iter_revoked_certificates()
            .map(|r| serial_hex(r.raw_serial()))
            .collect(),
    })
}

/// UTC, whole seconds, within what a CRL can write.
fn whole_seconds(t: OffsetDateTime) -> Result<OffsetDateTime, PkiError> {
    let utc = t.to_offset(time::UtcOffset::UTC);
    if !(1950..=9999).contains(&utc.year()) {
        return Err(PkiError::InvalidRequest(
            "CRL date out of range (1950-9999)",
        ));
    }
    utc.replace_nanosecond(0)
        .map_err(|_| PkiError::InvalidRequest("CRL date out of range (1950-9999)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{LeafKey, LeafRequest, SubjectFields, generate_ca};
    use crate::key::{KeyAlgorithm, PrivateKey};
    use crate::name::DnsName;
    use crate::test_util::{TempDir, openssl, output_text};
    use time::Duration;

    struct Setup {
        dir: TempDir,
        issuer: Issuer,
    }

    fn setup(label: &str) -> Setup {
        let ca = generate_ca("Crl", OffsetDateTime::now_utc()).unwrap();
        let issuer = Issuer::from_pem(&ca.intermediate_cert_pem, &ca.intermediate_key)
            .unwrap()
            .with_crl_url("http://scm.example.test/crl/x.crl")
            .unwrap();
        let dir = TempDir::new(label);
        // One CA file with both: `-crl_check` checks the leaf only, against its issuer's CRL.
        dir.write(
            "cas.pem",
            format!("{}{}", ca.root_cert_pem, ca.intermediate_cert_pem).as_bytes(),
        );
        Setup { dir, issuer }
    }

    fn leaf(issuer: &Issuer, name: &str) -> crate::ca::IssuedCertificate {
        let key = PrivateKey::generate(KeyAlgorithm::EcP256).unwrap();
        let names = [DnsName::parse(name).unwrap()];
        let now = OffsetDateTime::now_utc();
        issuer
            .issue(&LeafRequest {
                dns_names: &names,
                subject: SubjectFields::default(),
                not_before: now - Duration::minutes(5),
                not_after: now + Duration::days(30),
                public_key: LeafKey::Generated(&key),
            })
            .unwrap()
    }

    fn verify(s: &Setup, crl_der: &[u8], leaf_pem: &str) -> (bool, String) {
        let crl = s.dir.write("crl.pem", crl_pem(crl_der).as_bytes());
        let leaf = s.dir.write("leaf.pem", leaf_pem.as_bytes());
        let cas = s.dir.path().join("cas.pem");
        let out = openssl(&[
            "verify",
            "-crl_check",
            "-CAfile",
            cas.to_str().unwrap(),
            "-CRLfile",
            crl.to_str().unwrap(),
            leaf.to_str().unwrap(),
        ]);
        (out.status.success(), output_text(&out))
    }

    #[test]
    fn reasons_are_read_from_their_rfc_names_in_any_spelling() {
        assert_eq!(
            CrlReason::from_text("keyCompromise"),
            Some(CrlReason::KeyCompromise)
        );
        assert_eq!(
            CrlReason::from_text(" KEY_COMPROMISE "),
            Some(CrlReason::KeyCompromise)
        );
        assert_eq!(
            CrlReason::from_text("cessation of operation"),
            Some(CrlReason::CessationOfOperation)
        );
        assert_eq!(
            CrlReason::from_text("ca-compromise"),
            Some(CrlReason::CaCompromise)
        );
        assert_eq!(CrlReason::from_text("server decommissioned"), None);
        assert_eq!(CrlReason::from_text(""), None);
        for r in CrlReason::ALL {
            assert_eq!(CrlReason::from_text(r.name()), Some(r));
        }
    }

    /// `openssl verify -crl_check` accepts a good leaf and refuses a revoked one against a CRL
    /// signed here; `openssl crl` reads its number, dates and entries.
    #[test]
    fn openssl_checks_leaves_against_a_signed_crl() {
        let s = setup("crl-verify");
        let good = leaf(&s.issuer, "good.test");
        let bad = leaf(&s.issuer, "bad.test");
        let now = OffsetDateTime::now_utc();
        let empty = s
            .issuer
            .sign_crl(&CrlRequest {
                number: 1,
                this_update: now - Duration::minutes(5),
                next_update: now + Duration::days(7),
                revoked: &[],
            })
            .unwrap();
        for l in [&good, &bad] {
            let (ok, text) = verify(&s, &empty, &l.certificate_pem);
            assert!(ok && text.contains(": OK"), "{text}");
        }
        let revoked = [RevokedEntry {
            serial_hex: bad.serial_hex.clone(),
            revoked_at: now,
            reason: Some(CrlReason::KeyCompromise),
        }];
        let crl = s
            .issuer
            .sign_crl(&CrlRequest {
                number: 2,
                this_update: now - Duration::minutes(5),
                next_update: now + Duration::days(7),
                revoked: &revoked,
            })
            .unwrap();
        let (ok, text) = verify(&s, &crl, &bad.certificate_pem);
        assert!(!ok, "{text}");
        assert!(text.contains("certificate revoked"), "{text}");
        let (ok, text) = verify(&s, &crl, &good.certificate_pem);
        assert!(ok && text.contains(": OK"), "{text}");

        let path = s.dir.write("show.crl", &crl);
        let out = openssl(&[
            "crl",
            "-inform",
            "DER",
            "-noout",
            "-text",
            "-in",
            path.to_str().unwrap(),
        ]);
        let text = output_text(&out);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("Key Compromise"), "{text}");
        assert!(text.contains("Next Update"), "{text}");
        assert!(
            text.to_ascii_lowercase()
                .contains(&bad.serial_hex.to_ascii_uppercase().to_ascii_lowercase()),
            "{text}"
        );

        let info = parse_crl_der(&crl).unwrap();
        assert_eq!(info.number, Some(2));
        assert_eq!(info.revoked_serials, vec![bad.serial_hex.clone()]);
        assert_eq!(
            info.next_update.map(|t| t.unix_timestamp()),
            Some((now + Duration::days(7)).unix_timestamp())
        );
        assert_eq!(parse_crl_der(&empty).unwrap().revoked_serials.len(), 0);
    }

    /// Leaves carry the CRL distribution point set on the issuer, and the CRL's authority key
    /// identifier is the leaves' (the issuer's key id).
    #[test]
    fn leaves_carry_the_distribution_point_and_the_crl_the_issuers_key_id() {
        let s = setup("crl-cdp");
        let l = leaf(&s.issuer, "cdp.test");
        let path = s.dir.write("leaf.pem", l.certificate_pem.as_bytes());
        let out = openssl(&["x509", "-noout", "-text", "-in", path.to_str().unwrap()]);
        let text = output_text(&out);
        assert!(text.contains("X509v3 CRL Distribution Points"), "{text}");
        assert!(
            text.contains("URI:http://scm.example.test/crl/x.crl"),
            "{text}"
        );
        let key_id = s.issuer.key_id_hex();
        assert_eq!(key_id.len(), 40, "{key_id}");
        let colons = key_id
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap().to_ascii_uppercase())
            .collect::<Vec<_>>()
            .join(":");
        assert!(text.contains(&colons), "leaf AKI is not {colons}: {text}");
        // Without a URL set, no distribution point.
        let ca = generate_ca("Plain", OffsetDateTime::now_utc()).unwrap();
        let plain = Issuer::from_pem(&ca.intermediate_cert_pem, &ca.intermediate_key).unwrap();
        let l = leaf(&plain, "plain.test");
        let path = s.dir.write("plain.pem", l.certificate_pem.as_bytes());
        let out = openssl(&["x509", "-noout", "-text", "-in", path.to_str().unwrap()]);
        assert!(!output_text(&out).contains("CRL Distribution Points"));
    }

    #[test]
    fn bad_requests_are_refused() {
        let s = setup("crl-bad");
        for url in [
            "ftp://x/y.crl",
            "http://bücher.test/c.crl",
            "http://a b/c",
            "",
        ] {
            let ca = generate_ca("Url", OffsetDateTime::now_utc()).unwrap();
            let issuer = Issuer::from_pem(&ca.intermediate_cert_pem, &ca.intermediate_key).unwrap();
            assert!(issuer.with_crl_url(url).is_err(), "{url}");
        }
        let now = OffsetDateTime::now_utc();
        let req = |next_update, revoked| CrlRequest {
            number: 1,
            this_update: now,
            next_update,
            revoked,
        };
        assert!(s.issuer.sign_crl(&req(now, &[])).is_err());
        let entry = [RevokedEntry {
            serial_hex: "zz".into(),
            revoked_at: now,
            reason: None,
        }];
        assert!(
            s.issuer
                .sign_crl(&req(now + Duration::days(1), &entry))
                .is_err()
        );
        assert!(parse_crl_der(b"nope").is_err());
    }
}
