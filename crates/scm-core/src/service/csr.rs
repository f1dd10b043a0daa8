//! Certificate signing requests: made here with a key generated here (CreateCsr), or uploaded
//! (UploadCsr, with their key or without); listed, shown, renamed, deleted; and the key shown.
//!
//! Choices where the reference is silent or vague (reference §4.4, open question 13):
//! - ids are 32 random lower-case hex characters ([`CsrId`]);
//! - `name`: 1..63 characters of `A-Z a-z 0-9 _ . -` (the import rule; the reference says 0..63,
//!   but an empty name names nothing);
//! - `domain_name`: a DNS name (wildcards allowed) of at most 63 characters; `sans`: at most 255
//!   characters of DNS names separated by `;` or `,` (spaces around them ignored), none twice
//!   and none equal to `domain_name`; answered normalised (lower case, `;`-separated);
//! - `private_key_algo`: `RSA_2048`, `RSA_3072`, `RSA_4096`, `EC_P256`, `EC_P384`. `SM2` is a
//!   documented value but OpenSCM's cryptography (aws-lc) has no SM2: it is refused with
//!   `SCM.0005` naming `private_key_algo`;
//! - `usage`: `PERSONAL` or `ENTERPRISE`; with `ENTERPRISE` the four `company_*` fields are
//!   required (`SCM.0005` naming the first missing one). `company_country` is two letters (the
//!   X.520 countryName), answered in upper case; the others at most 255 characters. Given with
//!   `PERSONAL`, they are still written into the subject;
//! - UploadCsr: `csr` at most 2555 characters, parsed with its self-signature verified (anything
//!   else is `SCM.0005` naming `csr`), and its names must be DNS names; `private_key` (optional;
//!   empty is absent) at most 4096 characters, an unencrypted PEM key (else `SCM.0005` naming
//!   `private_key`) whose public key must be the CSR's (else `SCM.0014`). The CSR's first name
//!   (its CN, else its first DNS subjectAltName) is its `domain_name`, the others its `sans`;
//!   `usage` and `company_*` are `null`;
//! - ShowCsrPrivateKey of a CSR uploaded without its key: `400 SCM.0010`;
//! - ListCsr: `limit` 10..50 (default 10) and `offset` 0..1000000 (an item offset), as
//!   ListCertificates; `name` a case-insensitive substring (at most 63 characters);
//!   `private_key_algo` one of the values above (`SM2` is accepted and matches nothing).
//!   Newest first.
//!
//! The key is generated through the same fair, off-the-async-workers [`KeyGenerator`] as the
//! keys of certificates, and stored sealed under the master key, bound to the CSR's id.
//!
//! [`KeyGenerator`]: crate::lifecycle::keys::KeyGenerator

use scm_pki::{DnsName, KeyAlgorithm, ParsedCsr, PrivateKey, SubjectFields, generate_csr};
use scm_proto::csr::{CreateCsrBody, UpdateCsrBody, UploadCsrBody};
use scm_proto::{CsrId, DomainId};
use scm_store::{CsrQuery, CsrRecord, StoreError};
use zeroize::Zeroizing;

use super::Scm;
use crate::{DomainError, Principal, random};

/// Longest CSR name.
pub const MAX_NAME: usize = 63;
/// Longest `domain_name`.
pub const MAX_DOMAIN: usize = 63;
/// Longest `sans`.
pub const MAX_SANS: usize = 255;
/// Longest `company_*` value.
pub const MAX_COMPANY: usize = 255;
/// Longest uploaded CSR PEM.
pub const MAX_CSR: usize = 2555;
/// Longest uploaded private key PEM (the reference's 63 is a documentation error).
pub const MAX_PRIVATE_KEY: usize = 4096;

/// What a CSR is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// `PERSONAL`: the subject needs only the names.
    Personal,
    /// `ENTERPRISE`: the subject carries the company.
    Enterprise,
}

impl Usage {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Personal => "PERSONAL",
            Self::Enterprise => "ENTERPRISE",
        }
    }
}

/// A checked CreateCsr request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrSpec {
    /// Name.
    pub name: String,
    /// Primary domain.
    pub domain: DnsName,
    /// Further domains.
    pub sans: Vec<DnsName>,
    /// Key to generate.
    pub algorithm: KeyAlgorithm,
    /// Usage.
    pub usage: Usage,
    /// C, upper case.
    pub country: Option<String>,
    /// ST.
    pub province: Option<String>,
    /// L.
    pub city: Option<String>,
    /// O.
    pub company: Option<String>,
}

fn chars_at_most(s: &str, max: usize, field: &str) -> Result<(), DomainError> {
    if s.chars().count() > max {
        Err(DomainError::invalid(
            field,
            format!("must be at most {max} characters"),
        ))
    } else {
        Ok(())
    }
}

/// A CSR name: required, 1..63 of `A-Z a-z 0-9 _ . -`.
pub fn check_name(v: Option<&str>) -> Result<String, DomainError> {
    let name = v.ok_or_else(|| DomainError::invalid("name", "is required"))?;
    if name.is_empty() {
        return Err(DomainError::invalid("name", "must not be empty"));
    }
    chars_at_most(name, MAX_NAME, "name")?;
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(DomainError::invalid(
            "name",
            "may hold only letters A-Z a-z, digits and _ . -",
        ));
    }
    Ok(name.to_owned())
}

/// A key algorithm of CreateCsr (and of the list filter, where `SM2` is allowed).
fn check_algorithm(v: Option<&str>) -> Result<KeyAlgorithm, DomainError> {
    let field = "private_key_algo";
    match v {
        None => Err(DomainError::invalid(field, "is required")),
        Some("SM2") => Err(DomainError::invalid(
            field,
            "SM2 is not supported by OpenSCM (its cryptography has no SM2); use RSA_2048, \
             RSA_3072, RSA_4096, EC_P256 or EC_P384",
        )),
        Some(s) => s.parse().map_err(|_| {
            DomainError::invalid(
                field,
                "must be RSA_2048, RSA_3072, RSA_4096, EC_P256 or EC_P384",
            )
        }),
    }
}

/// `sans`: names separated by `;` or `,`, none twice, none the primary domain.
fn check_sans(sans: &str, domain: &DnsName) -> Result<Vec<DnsName>, DomainError> {
    chars_at_most(sans, MAX_SANS, "sans")?;
    let mut out: Vec<DnsName> = Vec::new();
    for part in sans
        .split([';', ','])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let name = DnsName::parse(part).map_err(|e| DomainError::invalid("sans", e.to_string()))?;
        if &name == domain || out.contains(&name) {
            return Err(DomainError::invalid(
                "sans",
                format!("{name} is listed twice"),
            ));
        }
        out.push(name);
    }
    Ok(out)
}

fn company_field(
    v: Option<&str>,
    field: &str,
    required: bool,
) -> Result<Option<String>, DomainError> {
    let value = v.map(str::trim).filter(|s| !s.is_empty());
    match value {
        None if required => Err(DomainError::invalid(
            field,
            "is required when usage is ENTERPRISE",
        )),
        None => Ok(None),
        Some(s) => {
            chars_at_most(s, MAX_COMPANY, field)?;
            Ok(Some(s.to_owned()))
        }
    }
}

impl CsrSpec {
    /// Checks a CreateCsr body, naming the first bad field.
    pub fn parse(body: &CreateCsrBody) -> Result<Self, DomainError> {
        let name = check_name(body.name.as_deref())?;
        let domain_text = body
            .domain_name
            .as_deref()
            .ok_or_else(|| DomainError::invalid("domain_name", "is required"))?;
        chars_at_most(domain_text, MAX_DOMAIN, "domain_name")?;
        let domain = DnsName::parse(domain_text)
            .map_err(|e| DomainError::invalid("domain_name", e.to_string()))?;
        let sans = check_sans(body.sans.as_deref().unwrap_or(""), &domain)?;
        let algorithm = check_algorithm(body.private_key_algo.as_deref())?;
        let usage = match body.usage.as_deref() {
            Some("PERSONAL") => Usage::Personal,
            Some("ENTERPRISE") => Usage::Enterprise,
            Some(_) => {
                return Err(DomainError::invalid(
                    "usage",
                    "must be PERSONAL or ENTERPRISE",
                ));
            }
            None => return Err(DomainError::invalid("usage", "is required")),
        };
        let required = usage == Usage::Enterprise;
        let country = company_field(body.company_country.as_deref(), "company_country", required)?;
        if let Some(c) = &country
            && !(c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()))
        {
            return Err(DomainError::invalid(
                "company_country",
                "must be a two-letter country code such as CN",
            ));
        }
        let province = company_field(
            body.company_province.as_deref(),
            "company_province",
            required,
        )?;
        let city = company_field(body.company_city.as_deref(), "company_city", required)?;
        let company = company_field(body.company_name.as_deref(), "company_name", required)?;
        Ok(Self {
            name,
            domain,
            sans,
            algorithm,
            usage,
            country: country.map(|c| c.to_ascii_uppercase()),
            province,
            city,
            company,
        })
    }

    /// The primary domain, then the sans.
    pub fn names(&self) -> Vec<DnsName> {
        std::iter::once(self.domain.clone())
            .chain(self.sans.iter().cloned())
            .collect()
    }
}

fn join_names(names: &[DnsName]) -> String {
    names
        .iter()
        .map(DnsName::as_str)
        .collect::<Vec<_>>()
        .join(";")
}

/// The checked parts of an UploadCsr body.
#[derive(Debug)]
struct Upload {
    name: String,
    pem: String,
    names: Vec<DnsName>,
    algorithm: Option<KeyAlgorithm>,
    key: Option<PrivateKey>,
}

fn check_upload(body: &UploadCsrBody) -> Result<Upload, DomainError> {
    let name = check_name(body.name.as_deref())?;
    let pem = body
        .csr
        .as_deref()
        .ok_or_else(|| DomainError::invalid("csr", "is required"))?;
    if pem.trim().is_empty() {
        return Err(DomainError::invalid("csr", "must not be empty"));
    }
    chars_at_most(pem, MAX_CSR, "csr")?;
    let key_pem = body.private_key.as_deref().filter(|k| !k.trim().is_empty());
    if let Some(k) = key_pem {
        chars_at_most(k, MAX_PRIVATE_KEY, "private_key")?;
    }
    let csr = ParsedCsr::from_pem(pem).map_err(|e| DomainError::invalid("csr", e.to_string()))?;
    let mut names = Vec::new();
    for n in csr.dns_names() {
        let n = DnsName::parse(&n).map_err(|e| DomainError::invalid("csr", e.to_string()))?;
        if !names.contains(&n) {
            names.push(n);
        }
    }
    if names.is_empty() {
        return Err(DomainError::invalid(
            "csr",
            "names no domain (no subject CN, no DNS subjectAltName)",
        ));
    }
    let key = match key_pem {
        None => None,
        Some(k) => {
            let key = PrivateKey::from_pem(k)
                .map_err(|e| DomainError::invalid("private_key", e.to_string()))?;
            if !csr.matches_key(&key) {
                return Err(DomainError::KeyMismatch);
            }
            Some(key)
        }
    };
    Ok(Upload {
        name,
        pem: pem.to_owned(),
        names,
        algorithm: csr.key_algorithm(),
        key,
    })
}

/// The query of ListCsr. Unknown parameters are ignored.
pub fn list_query(pairs: &[(String, String)]) -> Result<CsrQuery, DomainError> {
    let mut q = CsrQuery::default();
    let int = |k: &str, v: &str, lo: u32, hi: u32| -> Result<u32, DomainError> {
        v.parse::<u32>()
            .ok()
            .filter(|n| (lo..=hi).contains(n))
            .ok_or_else(|| {
                DomainError::invalid(k, format!("must be an integer between {lo} and {hi}"))
            })
    };
    for (k, v) in pairs {
        match k.as_str() {
            "limit" => q.limit = int(k, v, 10, 50)?,
            "offset" => q.offset = int(k, v, 0, 1_000_000)?,
            "name" => {
                chars_at_most(v, MAX_NAME, k)?;
                q.name = Some(v.clone()).filter(|s| !s.is_empty());
            }
            "private_key_algo" => {
                q.private_key_algo = match v.as_str() {
                    "" => None,
                    "SM2" => Some(v.clone()),
                    s => Some(
                        s.parse::<KeyAlgorithm>()
                            .map_err(|_| {
                                DomainError::invalid(
                                    k,
                                    "must be RSA_2048, RSA_3072, RSA_4096, EC_P256, EC_P384 or SM2",
                                )
                            })?
                            .as_str()
                            .to_owned(),
                    ),
                }
            }
            _ => {}
        }
    }
    Ok(q)
}

/// The associated data binding a sealed CSR key to its CSR.
fn key_aad(id: &CsrId) -> String {
    format!("csr-key:{id}")
}

impl Scm {
    /// The private key of `csr` (a CSR given to apply) when OpenSCM holds it: the key of one of
    /// the account's CSRs, made by CreateCsr or uploaded with its key, for the same public key
    /// (the CSR given need not be that one's text: any CSR of its key will do). `None` for any
    /// other CSR. The candidates are the account's keyed CSRs made for the same first name.
    pub(crate) async fn held_csr_key(
        &self,
        account: &DomainId,
        csr: &ParsedCsr,
    ) -> Result<Option<PrivateKey>, DomainError> {
        let Some(first) = csr.dns_names().first().and_then(|n| DnsName::parse(n).ok()) else {
            return Ok(None);
        };
        for rec in self.store.keyed_csrs_for(account, first.as_str()).await? {
            let Some(sealed) = &rec.private_key_sealed else {
                continue;
            };
            let same_key = ParsedCsr::from_pem(&rec.csr_pem)
                .is_ok_and(|held| held.public_key_info_der() == csr.public_key_info_der());
            if !same_key {
                continue;
            }
            let der = self
                .master
                .open(sealed, key_aad(&rec.id).as_bytes())
                .map_err(|e| {
                    DomainError::internal_from(format!("opening the key of CSR {}", rec.id), e)
                })?;
            let key = PrivateKey::from_pkcs8_der(&der)
                .map_err(|e| DomainError::internal_from(format!("the key of CSR {}", rec.id), e))?;
            if csr.matches_key(&key) {
                tracing::info!(csr = %rec.id, "the key of a CSR OpenSCM holds is the certificate's");
                return Ok(Some(key));
            }
        }
        Ok(None)
    }

    fn new_csr_id() -> Result<CsrId, DomainError> {
        Ok(CsrId::from_random(random::bytes()?))
    }

    async fn insert_csr(&self, rec: &CsrRecord) -> Result<(), DomainError> {
        match self
            .store
            .insert_csr(rec, self.config.quotas.csrs_per_account)
            .await
        {
            Ok(()) => Ok(()),
            // 128 random bits: a collision is a broken random source, not bad luck.
            Err(StoreError::Conflict(_)) => Err(DomainError::internal("CSR id collision")),
            Err(e) => Err(e.into()),
        }
    }

    fn seal_key(&self, id: &CsrId, key: &PrivateKey) -> Result<Vec<u8>, DomainError> {
        self.master
            .seal(key.pkcs8_der(), key_aad(id).as_bytes())
            .map_err(|e| DomainError::internal_from("sealing key", e))
    }

    /// `CreateCsr`: generates the key (fairly, off the async workers), makes and signs the CSR,
    /// and stores both, the key sealed.
    pub async fn create_csr(
        &self,
        p: &Principal,
        body: &CreateCsrBody,
    ) -> Result<CsrRecord, DomainError> {
        let spec = CsrSpec::parse(body)?;
        let key = self.keygen.generate(&p.account, spec.algorithm).await?;
        let names = spec.names();
        let (signing_key, subject_spec, csr_names) = (key.clone(), spec.clone(), names.clone());
        // Signing with an RSA-4096 key takes milliseconds: off the async workers too.
        let pem = tokio::task::spawn_blocking(move || {
            let subject = SubjectFields {
                country: subject_spec.country.as_deref(),
                province: subject_spec.province.as_deref(),
                city: subject_spec.city.as_deref(),
                organization: subject_spec.company.as_deref(),
                organizational_unit: None,
            };
            generate_csr(&signing_key, &csr_names, &subject)
        })
        .await?
        .map_err(|e| DomainError::internal_from("making the CSR", e))?;
        let id = Self::new_csr_id()?;
        let now = self.clock.now_ms();
        let rec = CsrRecord {
            private_key_sealed: Some(self.seal_key(&id, &key)?),
            id,
            domain_id: p.account.clone(),
            name: spec.name,
            csr_pem: pem,
            domain_name: spec.domain.as_str().to_owned(),
            sans: join_names(&spec.sans),
            private_key_algo: Some(spec.algorithm.as_str().to_owned()),
            usage: Some(spec.usage.as_str().to_owned()),
            company_country: spec.country,
            company_province: spec.province,
            company_city: spec.city,
            company_name: spec.company,
            created_ms: now,
            updated_ms: now,
        };
        self.insert_csr(&rec).await?;
        Ok(rec)
    }

    /// `UploadCsr`: stores a CSR made elsewhere (its signature verified), with its key if given
    /// (which must be the CSR's).
    pub async fn upload_csr(
        &self,
        p: &Principal,
        body: &UploadCsrBody,
    ) -> Result<CsrRecord, DomainError> {
        let up = check_upload(body)?;
        let id = Self::new_csr_id()?;
        let sealed = match &up.key {
            Some(key) => Some(self.seal_key(&id, key)?),
            None => None,
        };
        let (domain, sans) = match up.names.split_first() {
            Some((first, rest)) => (first.as_str().to_owned(), join_names(rest)),
            None => return Err(DomainError::invalid("csr", "names no domain")),
        };
        let now = self.clock.now_ms();
        let rec = CsrRecord {
            id,
            domain_id: p.account.clone(),
            name: up.name,
            csr_pem: up.pem,
            domain_name: domain,
            sans,
            private_key_algo: up.algorithm.map(|a| a.as_str().to_owned()),
            usage: None,
            company_country: None,
            company_province: None,
            company_city: None,
            company_name: None,
            private_key_sealed: sealed,
            created_ms: now,
            updated_ms: now,
        };
        self.insert_csr(&rec).await?;
        Ok(rec)
    }

    /// `ListCsr`: a page of the caller's CSRs, newest first, and how many match.
    pub async fn list_csrs(
        &self,
        p: &Principal,
        q: &CsrQuery,
    ) -> Result<(Vec<CsrRecord>, u64), DomainError> {
        Ok(self.store.list_csrs(&p.account, q).await?)
    }

    /// `ShowCsr`: one of the caller's CSRs.
    pub async fn csr(&self, p: &Principal, id: &CsrId) -> Result<CsrRecord, DomainError> {
        self.store
            .csr_of(&p.account, id)
            .await?
            .ok_or(DomainError::CsrNotFound)
    }

    /// `UpdateCsr`: renames one of the caller's CSRs; answers it as it is now.
    pub async fn update_csr(
        &self,
        p: &Principal,
        id: &CsrId,
        body: &UpdateCsrBody,
    ) -> Result<CsrRecord, DomainError> {
        let name = check_name(body.name.as_deref())?;
        let renamed = self
            .store
            .rename_csr(&p.account, id, &name, self.clock.now_ms())
            .await?;
        if !renamed {
            return Err(DomainError::CsrNotFound);
        }
        self.csr(p, id).await
    }

    /// `DeleteCsr`: deletes one of the caller's CSRs and its key.
    pub async fn delete_csr(&self, p: &Principal, id: &CsrId) -> Result<(), DomainError> {
        if self.store.delete_csr(&p.account, id).await? {
            Ok(())
        } else {
            Err(DomainError::CsrNotFound)
        }
    }

    /// `ShowCsrPrivateKey`: the key of one of the caller's CSRs, PKCS#8 PEM.
    pub async fn csr_private_key(
        &self,
        p: &Principal,
        id: &CsrId,
    ) -> Result<Zeroizing<String>, DomainError> {
        let rec = self.csr(p, id).await?;
        let sealed = rec.private_key_sealed.ok_or(DomainError::CsrWithoutKey)?;
        let der = self
            .master
            .open(&sealed, key_aad(&rec.id).as_bytes())
            .map_err(|e| DomainError::internal_from("opening the CSR key", e))?;
        let key = PrivateKey::from_pkcs8_der(&der)
            .map_err(|e| DomainError::internal_from("CSR key", e))?;
        Ok(key.to_pem())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> CreateCsrBody {
        CreateCsrBody {
            name: Some("csr-1".into()),
            domain_name: Some("WWW.Example.test".into()),
            sans: Some("a.test; b.test ,*.c.test".into()),
            private_key_algo: Some("EC_P256".into()),
            usage: Some("PERSONAL".into()),
            ..CreateCsrBody::default()
        }
    }

    fn enterprise() -> CreateCsrBody {
        CreateCsrBody {
            usage: Some("ENTERPRISE".into()),
            company_country: Some("cn".into()),
            company_province: Some("Sichuan".into()),
            company_city: Some("Chengdu".into()),
            company_name: Some("OpenSCM Ltd".into()),
            ..body()
        }
    }

    fn field(b: CreateCsrBody) -> String {
        crate::error::invalid_field(CsrSpec::parse(&b))
    }

    #[test]
    fn create_bodies_parse_and_normalise() {
        let s = CsrSpec::parse(&body()).unwrap();
        assert_eq!(s.domain.as_str(), "www.example.test");
        assert_eq!(join_names(&s.sans), "a.test;b.test;*.c.test");
        assert_eq!(
            (s.algorithm, s.usage),
            (KeyAlgorithm::EcP256, Usage::Personal)
        );
        assert_eq!(s.country, None);
        let s = CsrSpec::parse(&enterprise()).unwrap();
        assert_eq!(s.country.as_deref(), Some("CN"));
        assert_eq!(s.company.as_deref(), Some("OpenSCM Ltd"));
        let s = CsrSpec::parse(&CreateCsrBody {
            sans: None,
            ..body()
        })
        .unwrap();
        assert!(s.sans.is_empty());
        for alg in ["RSA_2048", "RSA_3072", "RSA_4096", "EC_P256", "EC_P384"] {
            let b = CreateCsrBody {
                private_key_algo: Some(alg.into()),
                ..body()
            };
            assert_eq!(CsrSpec::parse(&b).unwrap().algorithm.as_str(), alg);
        }
    }

    #[test]
    fn create_refusals_name_the_field() {
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(
            field(CreateCsrBody {
                name: None,
                ..body()
            }),
            "name"
        );
        assert_eq!(
            field(CreateCsrBody {
                name: s(""),
                ..body()
            }),
            "name"
        );
        assert_eq!(
            field(CreateCsrBody {
                name: s(&"n".repeat(64)),
                ..body()
            }),
            "name"
        );
        assert!(
            CsrSpec::parse(&CreateCsrBody {
                name: s(&"n".repeat(63)),
                ..body()
            })
            .is_ok()
        );
        assert_eq!(
            field(CreateCsrBody {
                name: s("a b"),
                ..body()
            }),
            "name"
        );
        assert_eq!(
            field(CreateCsrBody {
                domain_name: None,
                ..body()
            }),
            "domain_name"
        );
        assert_eq!(
            field(CreateCsrBody {
                domain_name: s("not a name"),
                ..body()
            }),
            "domain_name"
        );
        let long = format!("{}.test", "a".repeat(59));
        assert_eq!(
            field(CreateCsrBody {
                domain_name: s(&long),
                ..body()
            }),
            "domain_name"
        );
        assert_eq!(
            field(CreateCsrBody {
                sans: s("a.test;;bad name"),
                ..body()
            }),
            "sans"
        );
        assert_eq!(
            field(CreateCsrBody {
                sans: s("a.test,A.test"),
                ..body()
            }),
            "sans"
        );
        assert_eq!(
            field(CreateCsrBody {
                sans: s("www.example.test"),
                ..body()
            }),
            "sans"
        );
        let many = vec!["abcdefghi.test"; 18].join(";");
        assert!(many.len() > 255);
        assert_eq!(
            field(CreateCsrBody {
                sans: s(&many),
                ..body()
            }),
            "sans"
        );
        assert_eq!(
            field(CreateCsrBody {
                private_key_algo: None,
                ..body()
            }),
            "private_key_algo"
        );
        assert_eq!(
            field(CreateCsrBody {
                private_key_algo: s("SM2"),
                ..body()
            }),
            "private_key_algo"
        );
        assert_eq!(
            field(CreateCsrBody {
                private_key_algo: s("RSA_1024"),
                ..body()
            }),
            "private_key_algo"
        );
        assert_eq!(
            field(CreateCsrBody {
                usage: None,
                ..body()
            }),
            "usage"
        );
        assert_eq!(
            field(CreateCsrBody {
                usage: s("personal"),
                ..body()
            }),
            "usage"
        );
        for f in [
            "company_country",
            "company_province",
            "company_city",
            "company_name",
        ] {
            let mut b = enterprise();
            let slot = match f {
                "company_country" => &mut b.company_country,
                "company_province" => &mut b.company_province,
                "company_city" => &mut b.company_city,
                _ => &mut b.company_name,
            };
            *slot = None;
            let mut blank = b.clone();
            assert_eq!(field(b), f, "missing");
            let slot = match f {
                "company_country" => &mut blank.company_country,
                "company_province" => &mut blank.company_province,
                "company_city" => &mut blank.company_city,
                _ => &mut blank.company_name,
            };
            *slot = Some("  ".into());
            assert_eq!(field(blank), f, "blank");
        }
        assert_eq!(
            field(CreateCsrBody {
                company_country: s("CHN"),
                ..enterprise()
            }),
            "company_country"
        );
        assert_eq!(
            field(CreateCsrBody {
                company_city: s(&"c".repeat(256)),
                ..enterprise()
            }),
            "company_city"
        );
        // PERSONAL needs no company.
        assert!(
            CsrSpec::parse(&CreateCsrBody {
                company_name: s("x"),
                ..body()
            })
            .is_ok()
        );
    }

    #[test]
    fn list_queries_parse_and_refusals_name_the_parameter() {
        let pairs = |q: &[(&str, &str)]| {
            q.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>()
        };
        let q = list_query(&pairs(&[
            ("limit", "50"),
            ("offset", "20"),
            ("name", "Web"),
            ("private_key_algo", "EC_P256"),
            ("other", "x"),
        ]))
        .unwrap();
        assert_eq!(
            q,
            CsrQuery {
                name: Some("Web".into()),
                private_key_algo: Some("EC_P256".into()),
                limit: 50,
                offset: 20
            }
        );
        assert_eq!(list_query(&[]).unwrap(), CsrQuery::default());
        assert!(list_query(&pairs(&[("private_key_algo", "SM2")])).is_ok());
        for (k, v) in [
            ("limit", "9"),
            ("limit", "51"),
            ("limit", "x"),
            ("offset", "-1"),
            ("offset", "1000001"),
            ("private_key_algo", "RSA_1024"),
            ("name", &"n".repeat(64)),
        ] {
            assert_eq!(
                crate::error::invalid_field(list_query(&pairs(&[(k, v)]))),
                k,
                "{k}={v}"
            );
        }
    }

    fn rcgen_csr(key: &PrivateKey, names: &[&str]) -> String {
        let names: Vec<DnsName> = names.iter().map(|n| DnsName::parse(n).unwrap()).collect();
        generate_csr(key, &names, &SubjectFields::default()).unwrap()
    }

    #[test]
    fn uploads_are_checked() {
        let key = PrivateKey::generate(KeyAlgorithm::EcP256).unwrap();
        let pem = rcgen_csr(&key, &["www.a.test", "a.test"]);
        let up = |csr: Option<&str>, k: Option<&str>| UploadCsrBody {
            name: Some("up".into()),
            csr: csr.map(Into::into),
            private_key: k.map(Into::into),
        };
        let ok = check_upload(&up(Some(&pem), None)).unwrap();
        assert_eq!(join_names(&ok.names), "www.a.test;a.test");
        assert_eq!(ok.algorithm, Some(KeyAlgorithm::EcP256));
        assert!(ok.key.is_none());
        let with_key = check_upload(&up(Some(&pem), Some(&key.to_pem()))).unwrap();
        assert!(with_key.key.is_some());
        // An empty key is no key.
        assert!(
            check_upload(&up(Some(&pem), Some("")))
                .unwrap()
                .key
                .is_none()
        );

        let f = |b: UploadCsrBody| crate::error::invalid_field(check_upload(&b));
        assert_eq!(
            f(UploadCsrBody {
                name: None,
                ..up(Some(&pem), None)
            }),
            "name"
        );
        assert_eq!(f(up(None, None)), "csr");
        assert_eq!(f(up(Some(""), None)), "csr");
        assert_eq!(
            f(up(
                Some(
                    "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----"
                ),
                None
            )),
            "csr"
        );
        assert_eq!(f(up(Some(&"x".repeat(2556)), None)), "csr");
        assert_eq!(f(up(Some(&pem), Some("not a key"))), "private_key");
        assert_eq!(f(up(Some(&pem), Some(&"k".repeat(4097)))), "private_key");
        let other = PrivateKey::generate(KeyAlgorithm::EcP256).unwrap();
        assert!(matches!(
            check_upload(&up(Some(&pem), Some(&other.to_pem()))),
            Err(DomainError::KeyMismatch)
        ));
    }
}
