//! The certificate application: v2 `save` (a draft), v2 `complete` and v3 `apply` (submission).
//! [`ApplicationForm::parse`] checks every documented field and limit and names the bad one.

use std::collections::BTreeSet;

use scm_pki::{KeyAlgorithm, ParsedCsr};
use scm_proto::v3::{ApplicationBody, ApplicationInfo};
use scm_store::ApplicationRecord;
use serde::{Deserialize, Serialize};

use scm_pki::DnsName;

use crate::DomainError;
use crate::purchase::ApiVersion;

/// The applicant and company data, stored as JSON apart from the names (it is personal data).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applicant {
    /// Company name.
    pub company_name: String,
    /// Department.
    pub company_unit: String,
    /// Province.
    pub company_province: String,
    /// City.
    pub company_city: String,
    /// Upper-case ISO country code, or empty.
    pub country: String,
    /// Applicant name.
    pub applicant_name: String,
    /// Applicant phone.
    pub applicant_phone: String,
    /// Applicant email.
    pub applicant_email: String,
    /// Technical contact.
    pub contact_name: String,
    /// Technical contact phone.
    pub contact_phone: String,
    /// Technical contact email.
    pub contact_email: String,
}

impl Applicant {
    /// The wire `application_info` object.
    pub fn to_info(&self) -> ApplicationInfo {
        let opt = |s: &str| {
            if s.is_empty() {
                None
            } else {
                Some(s.to_owned())
            }
        };
        ApplicationInfo {
            country: opt(&self.country),
            company_name: opt(&self.company_name),
            company_province: opt(&self.company_province),
            company_city: opt(&self.company_city),
            applicant_name: opt(&self.applicant_name),
            applicant_phone: opt(&self.applicant_phone),
            applicant_email: opt(&self.applicant_email),
            contact_name: opt(&self.contact_name),
            contact_phone: opt(&self.contact_phone),
            contact_email: opt(&self.contact_email),
        }
    }
}

/// A checked application.
#[derive(Debug, Clone)]
pub struct ApplicationForm {
    /// Primary domain.
    pub domain: DnsName,
    /// Additional domains, in the order given, without duplicates.
    pub sans: Vec<DnsName>,
    /// Own CSR, already verified and matching the names.
    pub csr: Option<(String, ParsedCsr)>,
    /// Applicant data.
    pub applicant: Applicant,
    /// `DNS`, `FILE` or `EMAIL`.
    pub domain_method: Option<String>,
    /// Algorithm of a server-generated key (default `RSA_2048`).
    pub key_algorithm: KeyAlgorithm,
}

fn text(v: &Option<String>) -> String {
    v.as_deref().unwrap_or("").trim().to_owned()
}

fn present(v: &Option<String>, field: &str) -> Result<String, DomainError> {
    v.as_deref()
        .map(|s| s.trim().to_owned())
        .ok_or_else(|| DomainError::invalid(field, "is required"))
}

fn non_empty(v: &Option<String>, field: &str) -> Result<String, DomainError> {
    let s = present(v, field)?;
    if s.is_empty() {
        Err(DomainError::invalid(field, "must not be empty"))
    } else {
        Ok(s)
    }
}

/// The documented limits count characters (Unicode scalar values), except where the reference says
/// bytes (`applicant_name` on v3: [`check_v3_applicant_name`]).
fn max_chars(s: &str, max: usize, field: &str) -> Result<(), DomainError> {
    if s.chars().count() > max {
        Err(DomainError::invalid(
            field,
            format!("must be at most {max} characters"),
        ))
    } else {
        Ok(())
    }
}

/// Longest e-mail address (RFC 5321's path limit).
const MAX_EMAIL: usize = 254;

/// An e-mail field. v3 (example `example@huawei.com`): a plausible address, `local@domain`
/// with a fully qualified domain. v2: at most 254 characters, no form checked — the v2 page's
/// own example value is `example.huawei.com`, which no address check would take.
fn check_email(s: &str, field: &str, kind: ApiVersion) -> Result<(), DomainError> {
    if kind == ApiVersion::V2 {
        return max_chars(s, MAX_EMAIL, field);
    }
    let bad = || DomainError::invalid(field, "must be an email address such as name@example.com");
    if s.len() > MAX_EMAIL {
        return Err(bad());
    }
    let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(
                    b,
                    b'@' | b'<'
                        | b'>'
                        | b'('
                        | b')'
                        | b','
                        | b';'
                        | b':'
                        | b'\\'
                        | b'"'
                        | b'['
                        | b']'
                )
        });
    if !local_ok || domain.contains('*') || DnsName::parse(domain).is_err() {
        return Err(bad());
    }
    Ok(())
}

/// A plausible phone number: digits with an optional leading `+` and separators, 5..32 characters.
fn check_phone(s: &str, field: &str) -> Result<(), DomainError> {
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    let chars_ok = s.bytes().enumerate().all(|(i, b)| {
        b.is_ascii_digit() || matches!(b, b' ' | b'-' | b'(' | b')') || (i == 0 && b == b'+')
    });
    if !(5..=32).contains(&s.len()) || digits < 5 || !chars_ok {
        return Err(DomainError::invalid(
            field,
            "must be a phone number such as 13212345678",
        ));
    }
    Ok(())
}

/// v3 `applicant_name`: "4..100 bytes" in the reference, so UTF-8 bytes are counted (a Chinese
/// character is three), unlike the other limits.
fn check_v3_applicant_name(s: &str) -> Result<(), DomainError> {
    let field = "applicant_name";
    if !(4..=100).contains(&s.len()) {
        return Err(DomainError::invalid(field, "must be 4 to 100 bytes"));
    }
    if !s
        .chars()
        .all(|c| c.is_alphabetic() || matches!(c, '_' | '-' | ',' | '.' | ' '))
    {
        return Err(DomainError::invalid(
            field,
            "may contain only letters, spaces, '_', '-', ',' and '.'",
        ));
    }
    Ok(())
}

fn parse_names(
    domain: &str,
    sans: &str,
    max_sans: usize,
) -> Result<(DnsName, Vec<DnsName>), DomainError> {
    max_chars(domain, 255, "domain")?;
    let domain =
        DnsName::parse(domain).map_err(|e| DomainError::invalid("domain", e.to_string()))?;
    max_chars(sans, max_sans, "sans")?;
    let mut seen = BTreeSet::from([domain.clone()]);
    let mut out = Vec::new();
    for part in sans.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let name = DnsName::parse(part).map_err(|e| DomainError::invalid("sans", e.to_string()))?;
        if !seen.insert(name.clone()) {
            return Err(DomainError::invalid(
                "sans",
                format!("{name} is listed twice"),
            ));
        }
        out.push(name);
    }
    Ok((domain, out))
}

fn check_csr(
    pem: &str,
    domain: &DnsName,
    sans: &[DnsName],
    max: usize,
) -> Result<ParsedCsr, DomainError> {
    max_chars(pem, max, "csr")?;
    let csr = ParsedCsr::from_pem(pem).map_err(|e| DomainError::invalid("csr", e.to_string()))?;
    let in_csr: BTreeSet<String> = csr
        .dns_names()
        .into_iter()
        .map(|n| n.to_ascii_lowercase())
        .collect();
    let wanted: BTreeSet<String> = std::iter::once(domain)
        .chain(sans)
        .map(|n| n.as_str().to_owned())
        .collect();
    if in_csr != wanted {
        return Err(DomainError::invalid(
            "csr",
            format!(
                "names in the CSR ({}) do not match domain and sans ({})",
                in_csr.into_iter().collect::<Vec<_>>().join(", "),
                wanted.into_iter().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    Ok(csr)
}

impl ApplicationForm {
    /// Checks a form. `organisation_validated` is true for OV/EV products, which need the company.
    pub fn parse(
        body: &ApplicationBody,
        kind: ApiVersion,
        organisation_validated: bool,
    ) -> Result<Self, DomainError> {
        if body.agree_privacy_protection != Some(true) {
            return Err(DomainError::invalid(
                "agree_privacy_protection",
                "must be true",
            ));
        }
        let domain_raw = non_empty(&body.domain, "domain")?;
        let (max_sans, max_csr) = match kind {
            ApiVersion::V2 => (4096, 8192),
            ApiVersion::V3 => (4096, 5120),
        };
        let (domain, sans) = parse_names(&domain_raw, &text(&body.sans), max_sans)?;

        // The company fields are mandatory for OV and EV certificates only (both pages say so;
        // the v2 table's "Yes" is qualified by that text), so a DV form may leave them out. The
        // v2 page lists `country` as mandatory without qualification: v2 needs it present
        // (empty is allowed for DV).
        let company = |v: &Option<String>, field: &str| -> Result<String, DomainError> {
            let s = text(v);
            max_chars(&s, 63, field)?;
            if organisation_validated && s.is_empty() {
                return Err(DomainError::invalid(
                    field,
                    "is required for OV and EV certificates",
                ));
            }
            Ok(s)
        };
        let company_name = company(&body.company_name, "company_name")?;
        let company_province = company(&body.company_province, "company_province")?;
        let company_city = company(&body.company_city, "company_city")?;
        if kind == ApiVersion::V2 {
            present(&body.country, "country")?;
        }
        let country = company(&body.country, "country")?;
        let two_letters = country.len() == 2 && country.bytes().all(|b| b.is_ascii_alphabetic());
        if !country.is_empty() && !two_letters {
            return Err(DomainError::invalid(
                "country",
                "must be a two-letter country code such as CN",
            ));
        }
        let company_unit = text(&body.company_unit);
        max_chars(&company_unit, 63, "company_unit")?;

        // v2: required (present) and 0..63 characters, as the v2 page says; v3: 4..100 bytes.
        let applicant_name = match kind {
            ApiVersion::V2 => {
                let name = present(&body.applicant_name, "applicant_name")?;
                max_chars(&name, 63, "applicant_name")?;
                name
            }
            ApiVersion::V3 => {
                let name = non_empty(&body.applicant_name, "applicant_name")?;
                check_v3_applicant_name(&name)?;
                name
            }
        };
        let applicant_phone = non_empty(&body.applicant_phone, "applicant_phone")?;
        check_phone(&applicant_phone, "applicant_phone")?;
        let applicant_email = non_empty(&body.applicant_email, "applicant_email")?;
        check_email(&applicant_email, "applicant_email", kind)?;
        let contact_name = text(&body.contact_name);
        max_chars(&contact_name, 63, "contact_name")?;
        let contact_phone = text(&body.contact_phone);
        if !contact_phone.is_empty() {
            check_phone(&contact_phone, "contact_phone")?;
        }
        let contact_email = text(&body.contact_email);
        if !contact_email.is_empty() {
            check_email(&contact_email, "contact_email", kind)?;
        }

        let domain_method = match kind {
            ApiVersion::V3 => {
                let m = non_empty(&body.domain_method, "domain_method")?;
                if !["DNS", "FILE", "EMAIL"].contains(&m.as_str()) {
                    return Err(DomainError::invalid(
                        "domain_method",
                        "must be one of DNS, FILE, EMAIL",
                    ));
                }
                Some(m)
            }
            ApiVersion::V2 => None,
        };
        let key_algorithm = match text(&body.key_algorithm).as_str() {
            "" => KeyAlgorithm::Rsa2048,
            s => s.parse().map_err(|_| {
                DomainError::invalid(
                    "key_algorithm",
                    "must be one of RSA_2048, RSA_3072, RSA_4096, EC_P256, EC_P384",
                )
            })?,
        };
        if let Some(h) = &body.ca_hash_algorithm
            && !["DEFAULT", "SHA-256", ""].contains(&h.trim())
        {
            return Err(DomainError::invalid(
                "ca_hash_algorithm",
                "must be DEFAULT or SHA-256",
            ));
        }
        let csr_text = text(&body.csr);
        let csr = if csr_text.is_empty() {
            None
        } else {
            let parsed = check_csr(&csr_text, &domain, &sans, max_csr)?;
            Some((csr_text, parsed))
        };

        Ok(Self {
            domain,
            sans,
            csr,
            applicant: Applicant {
                company_name,
                company_unit,
                company_province,
                company_city,
                country: country.to_ascii_uppercase(),
                applicant_name,
                applicant_phone,
                applicant_email,
                contact_name,
                contact_phone,
                contact_email,
            },
            domain_method,
            key_algorithm,
        })
    }

    /// Rebuilds a form from what was stored at `save`.
    pub fn from_record(rec: &ApplicationRecord) -> Result<Self, DomainError> {
        let applicant: Applicant = serde_json::from_str(&rec.form_json)
            .map_err(|e| DomainError::internal_from("stored application does not parse", e))?;
        let (domain, sans) = parse_names(&rec.domain, &rec.sans, usize::MAX)
            .map_err(|e| DomainError::internal_from("stored application names", e))?;
        let csr = match &rec.csr_pem {
            Some(pem) => Some((pem.clone(), check_csr(pem, &domain, &sans, usize::MAX)?)),
            None => None,
        };
        let key_algorithm = rec
            .key_algorithm
            .as_deref()
            .and_then(|k| k.parse().ok())
            .unwrap_or(KeyAlgorithm::Rsa2048);
        Ok(Self {
            domain,
            sans,
            csr,
            applicant,
            domain_method: rec.validation_method.clone(),
            key_algorithm,
        })
    }

    /// All names: the domain first, then the SANs.
    pub fn names(&self) -> Vec<DnsName> {
        std::iter::once(self.domain.clone())
            .chain(self.sans.iter().cloned())
            .collect()
    }

    /// The stored form.
    pub fn to_record(&self) -> Result<ApplicationRecord, DomainError> {
        Ok(ApplicationRecord {
            domain: self.domain.to_string(),
            sans: self
                .sans
                .iter()
                .map(DnsName::as_str)
                .collect::<Vec<_>>()
                .join(";"),
            form_json: serde_json::to_string(&self.applicant)
                .map_err(|e| DomainError::internal_from("application to JSON", e))?,
            csr_pem: self.csr.as_ref().map(|(pem, _)| pem.clone()),
            validation_method: self.domain_method.clone(),
            // The key certified: the CSR's when there is one, else the one to generate.
            key_algorithm: match &self.csr {
                Some((_, csr)) => csr.key_algorithm().map(|a| a.as_str().to_owned()),
                None => Some(self.key_algorithm.as_str().to_owned()),
            },
        })
    }
}

#[cfg(test)]
#[allow(clippy::type_complexity)]
mod tests {
    use super::*;
    use crate::error::invalid_field;

    /// The `key_algorithm` values the OpenAPI schema lists are the algorithms the parser knows
    /// (plus empty and absent: the default).
    #[test]
    fn the_described_key_algorithms_are_the_known_ones() {
        let described: Vec<&str> = scm_proto::v3::KEY_ALGORITHMS
            .iter()
            .flatten()
            .copied()
            .filter(|s| !s.is_empty())
            .collect();
        let known: Vec<&str> = KeyAlgorithm::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(described, known);
        assert!(scm_proto::v3::KEY_ALGORITHMS.contains(&None));
        assert!(scm_proto::v3::KEY_ALGORITHMS.contains(&Some("")));
    }

    fn v2_seed() -> ApplicationBody {
        serde_json::from_str(
            r#"{"domain": "www.xzz.test", "company_name": "Huawei Chengdu branch", "company_province": "Sichuan",
                "company_city": "Chengdu", "applicant_name": "Tom", "applicant_phone": "13212345678",
                "applicant_email": "9997342346@qq.com", "csr": "", "sans": "", "country": "CN",
                "company_unit": "Human Resource Dept", "contact_name": "Jacky", "contact_phone": "13512345678",
                "contact_email": "jk@jk.ff", "agree_privacy_protection": true}"#,
        )
        .unwrap()
    }

    fn v3_capture() -> ApplicationBody {
        serde_json::from_str(
            r#"{"domain": "www.example.test", "applicant_name": "Tom Smith", "applicant_phone": "13212345678",
                "applicant_email": "tom@example.com", "agree_privacy_protection": true, "domain_method": "DNS"}"#,
        )
        .unwrap()
    }

    #[test]
    fn documented_examples_parse() {
        let f = ApplicationForm::parse(&v2_seed(), ApiVersion::V2, true).unwrap();
        assert_eq!(f.domain.as_str(), "www.xzz.test");
        assert!(f.sans.is_empty() && f.csr.is_none());
        assert_eq!(f.applicant.country, "CN");
        let f = ApplicationForm::parse(&v3_capture(), ApiVersion::V3, false).unwrap();
        assert_eq!(f.key_algorithm, KeyAlgorithm::Rsa2048);
        let rec = f.to_record().unwrap();
        let back = ApplicationForm::from_record(&rec).unwrap();
        assert_eq!(back.applicant, f.applicant);
    }

    #[test]
    fn bad_fields_are_named() {
        let cases: Vec<(fn(&mut ApplicationBody), ApiVersion, &str)> = vec![
            (
                |b| b.agree_privacy_protection = Some(false),
                ApiVersion::V2,
                "agree_privacy_protection",
            ),
            (|b| b.domain = None, ApiVersion::V2, "domain"),
            (
                |b| b.domain = Some("not a domain".into()),
                ApiVersion::V2,
                "domain",
            ),
            (
                |b| b.sans = Some("a.test;a.test".into()),
                ApiVersion::V2,
                "sans",
            ),
            (
                |b| b.sans = Some("www.xzz.test".into()),
                ApiVersion::V2,
                "sans",
            ),
            (|b| b.company_name = None, ApiVersion::V2, "company_name"),
            (
                |b| b.company_city = Some(String::new()),
                ApiVersion::V2,
                "company_city",
            ),
            (
                |b| b.company_unit = Some("x".repeat(64)),
                ApiVersion::V2,
                "company_unit",
            ),
            (
                |b| b.country = Some("CHN".into()),
                ApiVersion::V2,
                "country",
            ),
            (
                |b| b.applicant_email = Some(format!("{}@qq.com", "x".repeat(248))),
                ApiVersion::V2,
                "applicant_email",
            ),
            (
                |b| b.applicant_email = None,
                ApiVersion::V2,
                "applicant_email",
            ),
            (
                |b| b.applicant_name = None,
                ApiVersion::V2,
                "applicant_name",
            ),
            (|b| b.country = None, ApiVersion::V2, "country"),
            (
                |b| b.applicant_phone = Some("call me".into()),
                ApiVersion::V2,
                "applicant_phone",
            ),
            (
                |b| b.contact_email = Some("x".repeat(255)),
                ApiVersion::V2,
                "contact_email",
            ),
            (
                |b| b.applicant_name = Some("x".repeat(64)),
                ApiVersion::V2,
                "applicant_name",
            ),
            (
                |b| {
                    b.csr = Some("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----".into())
                },
                ApiVersion::V2,
                "csr",
            ),
        ];
        for (i, (mutate, kind, want)) in cases.into_iter().enumerate() {
            let mut b = v2_seed();
            mutate(&mut b);
            assert_eq!(
                invalid_field(ApplicationForm::parse(&b, kind, true)),
                want,
                "case {i}"
            );
        }
        let v3_cases: Vec<(fn(&mut ApplicationBody), &str)> = vec![
            (|b| b.applicant_name = Some("Tom".into()), "applicant_name"),
            (|b| b.applicant_name = Some("Tom9".into()), "applicant_name"),
            (|b| b.domain_method = None, "domain_method"),
            (|b| b.domain_method = Some("HTTP".into()), "domain_method"),
            (
                |b| b.key_algorithm = Some("RSA_1024".into()),
                "key_algorithm",
            ),
            (
                |b| b.ca_hash_algorithm = Some("MD5".into()),
                "ca_hash_algorithm",
            ),
            (|b| b.country = Some("C1".into()), "country"),
            // v3's example is an address (`example@huawei.com`): v3 checks the form.
            (
                |b| b.applicant_email = Some("example.huawei.com".into()),
                "applicant_email",
            ),
            (|b| b.contact_email = Some("a@b".into()), "contact_email"),
        ];
        for (i, (mutate, want)) in v3_cases.into_iter().enumerate() {
            let mut b = v3_capture();
            mutate(&mut b);
            assert_eq!(
                invalid_field(ApplicationForm::parse(&b, ApiVersion::V3, false)),
                want,
                "v3 case {i}"
            );
        }
        // OV/EV needs the company on v3 too.
        assert_eq!(
            invalid_field(ApplicationForm::parse(&v3_capture(), ApiVersion::V3, true)),
            "company_name"
        );
    }

    /// What the v2 save page allows is taken: its own example e-mail value
    /// (`example.huawei.com`, "Example" of `applicant_email` and `contact_email`), an empty
    /// `applicant_name` ("0 to 63 characters"), and, for a DV certificate, no company fields
    /// ("mandatory for certificates of the OV and EV types").
    #[test]
    fn v2_forms_take_what_the_v2_page_allows() {
        let mut b = v2_seed();
        b.applicant_email = Some("example.huawei.com".into());
        b.contact_email = Some("example.huawei.com".into());
        let f = ApplicationForm::parse(&b, ApiVersion::V2, true).unwrap();
        assert_eq!(f.applicant.applicant_email, "example.huawei.com");
        assert_eq!(f.applicant.contact_email, "example.huawei.com");

        let mut b = v2_seed();
        b.applicant_name = Some(String::new());
        let f = ApplicationForm::parse(&b, ApiVersion::V2, true).unwrap();
        assert_eq!(f.applicant.applicant_name, "");

        let mut dv = v2_seed();
        dv.company_name = None;
        dv.company_unit = None;
        dv.company_province = None;
        dv.company_city = None;
        let f = ApplicationForm::parse(&dv, ApiVersion::V2, false).unwrap();
        assert_eq!(
            (
                f.applicant.company_name.as_str(),
                f.applicant.company_province.as_str(),
                f.applicant.company_city.as_str()
            ),
            ("", "", "")
        );
        // The same form for an OV certificate still needs the company.
        assert_eq!(
            invalid_field(ApplicationForm::parse(&dv, ApiVersion::V2, true)),
            "company_name"
        );
        // `country` is mandatory on the v2 page without qualification: present, even if empty.
        dv.country = Some(String::new());
        assert!(ApplicationForm::parse(&dv, ApiVersion::V2, false).is_ok());
        dv.country = None;
        assert_eq!(
            invalid_field(ApplicationForm::parse(&dv, ApiVersion::V2, false)),
            "country"
        );
    }

    #[test]
    fn csr_names_must_match() {
        let key = scm_pki::PrivateKey::generate(KeyAlgorithm::EcP256).unwrap();
        let kp = rcgen_keypair(&key);
        let mut params = rcgen::CertificateParams::new(vec![
            "www.xzz.test".to_string(),
            "api.xzz.test".to_string(),
        ])
        .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "www.xzz.test");
        let pem = params.serialize_request(&kp).unwrap().pem().unwrap();
        let mut b = v2_seed();
        b.csr = Some(pem.clone());
        assert_eq!(
            invalid_field(ApplicationForm::parse(&b, ApiVersion::V2, true)),
            "csr"
        );
        b.sans = Some("api.xzz.test".into());
        let f = ApplicationForm::parse(&b, ApiVersion::V2, true).unwrap();
        assert!(f.csr.is_some());
    }

    fn rcgen_keypair(key: &scm_pki::PrivateKey) -> rcgen::KeyPair {
        rcgen::KeyPair::from_pem(&key.to_pem()).unwrap()
    }
}
