//! Issuance: the product and the account's issuance policy decide which names may be issued;
//! then an [`Issuer`] signs. The account's own CA ([`BuiltinCa`]) signs either the user's CSR or a key
//! generated here; ACME issuers plug in beside it through the same trait.

use std::sync::Arc;

use async_trait::async_trait;
use scm_pki::{
    DnsName, KeyAlgorithm, LeafKey, LeafRequest, MasterKey, PrivateKey, ServingHost, SubjectFields,
};
use scm_proto::{CertificateId, DomainId, DomainType, PrimaryDomainType};
use scm_store::{CaRecord, CaRole, IssuedRecord, Product, StoredCa};
use time::OffsetDateTime;

use crate::DomainError;
use crate::application::ApplicationForm;
use crate::clock::unix_ms;

/// Key generation moved to [`crate::lifecycle::keys`]; named here too, as before.
pub use crate::lifecycle::keys::{KeyGenerations, KeyGenerator};

/// What to issue: the checked application of one certificate.
#[derive(Debug, Clone, Copy)]
pub struct IssueRequest<'a> {
    /// The certificate row (a generated key is sealed bound to it).
    pub id: &'a CertificateId,
    /// Names, subject and key choice.
    pub form: &'a ApplicationForm,
    /// The certificate's private key when OpenSCM holds it, sealed into the issued record:
    /// generated here when the application has no CSR (see [`KeyGenerator`]), or, with a CSR,
    /// the key of a CSR OpenSCM made or was given with its key (the CSR's public key is
    /// certified, and must be this key's). `None` with a CSR whose key is the applicant's alone.
    pub key: Option<&'a PrivateKey>,
    /// The version this issuance makes (1 for the first): a generated key is sealed bound to
    /// the certificate and this version ([`version_key_aad`]).
    pub version: u32,
    /// The time of issuance.
    pub now: OffsetDateTime,
    /// How long the certificate is valid.
    pub validity: time::Duration,
}

/// Something that signs certificates: the built-in CA, or (next) an ACME CA.
#[async_trait]
pub trait Issuer: Send + Sync + std::fmt::Debug {
    /// Issues the certificate of `req`; a generated private key comes back sealed for storage.
    async fn issue(&self, req: IssueRequest<'_>) -> Result<IssuedRecord, DomainError>;
}

/// Default issuance policy of a new account: names under the reserved TLDs, which no public CA
/// issues for and which therefore need no domain validation to be safe.
pub const DEFAULT_POLICY: &str = ".test;.internal;.localhost;.example";

/// One of OpenSCM's own CAs (an account's, the serving CA, or the retired shared CA of a store
/// made before migration 0015), loaded with the master key and shared.
pub struct BuiltinCa {
    issuer: scm_pki::Issuer,
    master: Arc<MasterKey>,
    chain_pem: String,
    root_pem: String,
    id: String,
    role: CaRole,
    account: Option<DomainId>,
    retired: bool,
}

impl std::fmt::Debug for BuiltinCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltinCa")
            .field("id", &self.id)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// The associated data sealing a CA key: `part` is `root` or `intermediate`. The CAs made
/// before migration 0015 (one per store) sealed theirs as `ca:<part>`; every CA since binds its
/// keys to its id, so a key cannot be moved to another CA's row.
fn ca_key_aad(id: Option<&str>, part: &str) -> String {
    match id {
        Some(id) => format!("ca:{id}:{part}"),
        None => format!("ca:{part}"),
    }
}

/// Makes a new CA (a P-256 root and intermediate, as [`scm_pki::generate_ca`]) for `role`,
/// owned by `account` for [`CaRole::Tenant`], its keys sealed bound to its id. The subject names
/// start with `name` (trimmed and cut short: it is shown in certificates).
pub async fn new_ca(
    master: &MasterKey,
    role: CaRole,
    account: Option<&DomainId>,
    name: &str,
    now: OffsetDateTime,
) -> Result<StoredCa, DomainError> {
    let prefix: String = name.chars().filter(|c| !c.is_control()).take(40).collect();
    let generated = tokio::task::spawn_blocking(move || scm_pki::generate_ca(&prefix, now))
        .await?
        .map_err(|e| DomainError::internal_from("CA generation", e))?;
    let id = scm_pki::Issuer::from_pem(
        &generated.intermediate_cert_pem,
        &generated.intermediate_key,
    )
    .map_err(|e| DomainError::internal_from("CA", e))?
    .key_id_hex();
    let seal = |der: &[u8], part: &str| {
        master
            .seal(der, ca_key_aad(Some(&id), part).as_bytes())
            .map_err(|e| DomainError::internal_from("sealing CA key", e))
    };
    Ok(StoredCa {
        role,
        domain_id: account.cloned(),
        ca: CaRecord {
            root_cert_pem: generated.root_cert_pem.clone(),
            root_key_sealed: seal(generated.root_key.pkcs8_der(), "root")?,
            intermediate_cert_pem: generated.intermediate_cert_pem.clone(),
            intermediate_key_sealed: seal(generated.intermediate_key.pkcs8_der(), "intermediate")?,
            created_ms: unix_ms(now),
        },
        retired_ms: None,
        id,
    })
}

/// The subject name prefix of an account's CA: `OpenSCM <account name> <start of its id>` (the
/// id keeps two accounts' roots apart when their names start alike).
pub fn tenant_ca_name(account: &DomainId, name: &str) -> String {
    let short: String = name.chars().filter(|c| !c.is_control()).take(24).collect();
    let id: String = account.as_str().chars().take(8).collect();
    format!("OpenSCM {} {id}", short.trim())
}

impl BuiltinCa {
    /// Opens the shared CA of a store made before migration 0015 (keys sealed as `ca:root` and
    /// `ca:intermediate`) with the master key. With `public_endpoint` (the URL clients reach
    /// the server at), every leaf it signs carries its CRL's URL there as its CRL distribution
    /// point ([`crate::service::revocation::crl_url`]); without, leaves carry none.
    pub fn load(
        rec: &CaRecord,
        master: Arc<MasterKey>,
        public_endpoint: Option<&str>,
    ) -> Result<Self, DomainError> {
        Self::open_record(
            rec,
            None,
            master,
            public_endpoint,
            CaRole::Shared,
            None,
            true,
        )
    }

    /// Opens a CA of `cas` with the master key; `public_endpoint` as in [`BuiltinCa::load`].
    /// Fails when the row's id is not its intermediate's key identifier.
    pub fn open(
        stored: &StoredCa,
        master: Arc<MasterKey>,
        public_endpoint: Option<&str>,
    ) -> Result<Self, DomainError> {
        let sealed_with_id = stored.role != CaRole::Shared;
        let ca = Self::open_record(
            &stored.ca,
            sealed_with_id.then_some(stored.id.as_str()),
            master,
            public_endpoint,
            stored.role,
            stored.domain_id.clone(),
            stored.retired_ms.is_some(),
        )?;
        if ca.id != stored.id {
            return Err(DomainError::internal(format!(
                "the CA stored as {} has the key identifier {}",
                stored.id, ca.id
            )));
        }
        Ok(ca)
    }

    fn open_record(
        rec: &CaRecord,
        aad_id: Option<&str>,
        master: Arc<MasterKey>,
        public_endpoint: Option<&str>,
        role: CaRole,
        account: Option<DomainId>,
        retired: bool,
    ) -> Result<Self, DomainError> {
        let key_der = master
            .open(
                &rec.intermediate_key_sealed,
                ca_key_aad(aad_id, "intermediate").as_bytes(),
            )
            .map_err(|e| {
                DomainError::internal_from(
                    "cannot open the CA key; is this the right master key?",
                    e,
                )
            })?;
        let key = PrivateKey::from_pkcs8_der(&key_der)
            .map_err(|e| DomainError::internal_from("CA key", e))?;
        let mut issuer = scm_pki::Issuer::from_pem(&rec.intermediate_cert_pem, &key)
            .map_err(|e| DomainError::internal_from("CA", e))?;
        let id = issuer.key_id_hex();
        if let Some(endpoint) = public_endpoint {
            let url = crate::service::revocation::crl_url(endpoint, &id);
            issuer = issuer.with_crl_url(url).map_err(|_| {
                DomainError::invalid(
                    "public_endpoint",
                    "must be an http(s) URL of printable ASCII: leaves carry it as their CRL \
                     distribution point",
                )
            })?;
        }
        Ok(Self {
            issuer,
            master,
            chain_pem: rec.intermediate_cert_pem.clone(),
            root_pem: rec.root_cert_pem.clone(),
            id,
            role,
            account,
            retired,
        })
    }

    /// What the CA is for.
    pub fn role(&self) -> CaRole {
        self.role
    }

    /// The account owning it ([`CaRole::Tenant`] only).
    pub fn account(&self) -> Option<&DomainId> {
        self.account.as_ref()
    }

    /// Whether it is retired (issues nothing new; its CRL is still signed).
    pub fn is_retired(&self) -> bool {
        self.retired
    }

    /// The intermediate certificate (the chain served with every leaf).
    pub fn chain_pem(&self) -> &str {
        &self.chain_pem
    }

    /// The root certificate, for clients to trust.
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// The CA's id: the lower-case hex of the issuing certificate's key identifier. It names
    /// the CA's CRL (`/crl/<id>.crl`) and keys its revocations.
    pub fn ca_id(&self) -> String {
        self.id.clone()
    }

    /// The CRL distribution point its leaves carry, if any.
    pub fn crl_url(&self) -> Option<&str> {
        self.issuer.crl_url()
    }

    /// Signs a CRL of this CA, DER.
    pub fn sign_crl(&self, req: &scm_pki::CrlRequest<'_>) -> Result<Vec<u8>, DomainError> {
        self.issuer
            .sign_crl(req)
            .map_err(|e| DomainError::internal_from("CRL signing", e))
    }

    /// Issues a serving certificate for OpenSCM's own HTTPS listener: a new P-256 key, a leaf
    /// for `hosts` valid from `not_before` to `not_after` (clamped to the intermediate's own
    /// expiry). The key is returned, never stored: the listener keeps it in memory only and a
    /// restart issues a new one.
    pub fn issue_serving(
        &self,
        hosts: &[ServingHost],
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<ServingCertificate, DomainError> {
        let key = PrivateKey::generate(KeyAlgorithm::EcP256)
            .map_err(|e| DomainError::internal_from("serving key generation", e))?;
        let leaf = self
            .issuer
            .issue_serving(hosts, not_before, not_after, &key)
            .map_err(|e| DomainError::internal_from("serving certificate", e))?;
        Ok(ServingCertificate {
            chain_pem: format!("{}{}", leaf.certificate_pem, self.chain_pem),
            key,
            serial_hex: leaf.serial_hex,
            not_before: leaf.not_before,
            not_after: leaf.not_after,
        })
    }
}

/// A serving certificate just issued by the built-in CA, with its key (wiped on drop; redacted
/// in `Debug`).
#[derive(Debug)]
pub struct ServingCertificate {
    /// The leaf followed by the intermediate, PEM.
    pub chain_pem: String,
    /// The leaf's private key.
    pub key: PrivateKey,
    /// The leaf's serial, lower-case hex.
    pub serial_hex: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

/// Checks the names of an application against the product bought.
pub fn check_product(product: &Product, names: &[DnsName]) -> Result<(), DomainError> {
    let Some((primary, sans)) = names.split_first() else {
        return Err(DomainError::DomainMismatch(
            "at least one domain name is required".into(),
        ));
    };
    let mismatch = |m: String| Err(DomainError::DomainMismatch(m));
    match product.domain_type {
        DomainType::Single => {
            if !sans.is_empty() {
                return mismatch("a SINGLE_DOMAIN certificate carries exactly one domain name; sans must be empty".into());
            }
            if primary.is_wildcard() {
                return mismatch("a SINGLE_DOMAIN certificate cannot carry a wildcard name; buy a WILDCARD certificate".into());
            }
        }
        DomainType::Wildcard => {
            if !sans.is_empty() {
                return mismatch(
                    "a WILDCARD certificate carries exactly one wildcard name; sans must be empty"
                        .into(),
                );
            }
            if !primary.is_wildcard() {
                return mismatch(
                    "a WILDCARD certificate needs a wildcard domain such as *.example.test".into(),
                );
            }
        }
        DomainType::Multi => {
            let total = i64::try_from(names.len()).unwrap_or(i64::MAX);
            if total > product.domain_numbers {
                return mismatch(format!(
                    "{total} domain names given but this certificate allows {}",
                    product.domain_numbers
                ));
            }
            match product.primary_domain_type {
                Some(PrimaryDomainType::Wildcard) if !primary.is_wildcard() => {
                    return mismatch("the primary domain must be a wildcard name (primary_domain_type WILDCARD_DOMAIN)".into());
                }
                Some(PrimaryDomainType::Single) if primary.is_wildcard() => {
                    return mismatch("the primary domain must not be a wildcard name (primary_domain_type SINGLE_DOMAIN)".into());
                }
                _ => {}
            }
            // When the purchase split the extra domains into single and wildcard ones, hold to it.
            if product.single_domain_number.is_some() || product.wildcard_domain_number.is_some() {
                let wild = i64::try_from(sans.iter().filter(|n| n.is_wildcard()).count())
                    .unwrap_or(i64::MAX);
                let single = i64::try_from(sans.len()).unwrap_or(i64::MAX) - wild;
                if wild > product.wildcard_domain_number.unwrap_or(0) {
                    return mismatch(format!(
                        "{wild} additional wildcard names given but {} were bought",
                        product.wildcard_domain_number.unwrap_or(0)
                    ));
                }
                if single > product.single_domain_number.unwrap_or(0) {
                    return mismatch(format!(
                        "{single} additional single names given but {} were bought",
                        product.single_domain_number.unwrap_or(0)
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The `wildcard_count` of show and list: the number of *additional* wildcard domains the
/// product carries (reference §4.3.2), so a wildcard primary domain is not counted: 0 for a
/// `WILDCARD` certificate (its one name is the primary) and for `SINGLE_DOMAIN`, the
/// `wildcard_domain_number` bought for `MULTI_DOMAIN`.
pub fn wildcard_count(product: &Product) -> i64 {
    match product.domain_type {
        DomainType::Multi => product.wildcard_domain_number.unwrap_or(0),
        DomainType::Wildcard | DomainType::Single => 0,
    }
}

/// Checks an issuance policy: `;`-separated domain suffixes, each a DNS name (`example.com`) or a
/// top-level suffix with a leading dot (`.test`); no wildcards, no empty entries but a wholly
/// empty policy (nothing is issued without validation), and no public suffix or top-level domain
/// other than the special-use ones
/// ([`crate::lifecycle::names::too_broad_for_policy`]). Returns it normalised (lower case, no
/// spaces).
pub fn normalise_policy(policy: &str) -> Result<String, DomainError> {
    let mut out = Vec::new();
    for entry in policy.split(';').map(str::trim) {
        if entry.is_empty() {
            if policy.trim().is_empty() {
                continue;
            }
            return Err(DomainError::invalid("allow", "has an empty entry"));
        }
        let bare = entry.strip_prefix('.').unwrap_or(entry);
        // A one-label suffix (`test`) is valid as a top-level domain: check it as a name under it.
        let check = if bare.contains('.') {
            bare.to_owned()
        } else {
            format!("x.{bare}")
        };
        let lower = bare.to_ascii_lowercase();
        match DnsName::parse(&check) {
            Ok(n) if !n.is_wildcard() && crate::lifecycle::names::too_broad_for_policy(&lower) => {
                return Err(DomainError::invalid(
                    "allow",
                    format!(
                        "{entry:?} is a public suffix (a top-level domain or a suffix of the \
                         Public Suffix List): anyone can register a name under it, so it would \
                         allow unvalidated issuance for other people's domains; name a domain \
                         you hold (example.com) or a special-use suffix (.test, .internal)"
                    ),
                ));
            }
            Ok(n) if !n.is_wildcard() => out.push(if entry.starts_with('.') {
                format!(".{}", bare.to_ascii_lowercase())
            } else {
                bare.to_ascii_lowercase()
            }),
            _ => {
                return Err(DomainError::invalid(
                    "allow",
                    format!("{entry:?} is not a domain suffix such as .test or example.com"),
                ));
            }
        }
    }
    Ok(out.join(";"))
}

/// Checks every name against the account's issuance policy (`;`-separated suffixes).
pub fn check_policy(policy: &str, names: &[DnsName]) -> Result<(), DomainError> {
    let suffixes: Vec<&str> = policy
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    for n in names {
        if !suffixes.iter().any(|s| n.is_under(s)) {
            return Err(DomainError::DomainMismatch(format!(
                "{n} is not authorised for issuance: until domain validation is configured, this account's policy \
                 allows only names under {}",
                suffixes.join(", ")
            )));
        }
    }
    Ok(())
}

#[async_trait]
impl Issuer for BuiltinCa {
    /// Signs the certificate and seals its key, when given, for storage. A retired CA, and the
    /// serving CA, sign no certificates of accounts.
    async fn issue(&self, req: IssueRequest<'_>) -> Result<IssuedRecord, DomainError> {
        if self.retired || self.role != CaRole::Tenant {
            return Err(DomainError::internal(format!(
                "CA {} does not issue certificates of accounts",
                self.id
            )));
        }
        let form = req.form;
        let names = form.names();
        let a = &form.applicant;
        fn opt(s: &str) -> Option<&str> {
            Some(s).filter(|s| !s.is_empty())
        }
        let public_key = match (&form.csr, req.key) {
            (Some((_, csr)), Some(key)) if !csr.matches_key(key) => {
                return Err(DomainError::internal(
                    "the key given is not the key of the CSR",
                ));
            }
            (Some((_, csr)), _) => LeafKey::Csr(csr),
            (None, Some(key)) => LeafKey::Generated(key),
            (None, None) => {
                return Err(DomainError::internal(
                    "no key given for an application without a CSR",
                ));
            }
        };
        let now = req.now;
        let leaf = self
            .issuer
            .issue(&LeafRequest {
                dns_names: &names,
                subject: SubjectFields {
                    country: opt(&a.country),
                    province: opt(&a.company_province),
                    city: opt(&a.company_city),
                    organization: opt(&a.company_name),
                    organizational_unit: opt(&a.company_unit),
                },
                // Backdated a little so clients with a slow clock accept it at once.
                not_before: now - time::Duration::minutes(5),
                not_after: now + req.validity,
                public_key,
            })
            .map_err(|e| DomainError::internal_from("signing", e))?;
        let private_key_sealed = match req.key {
            Some(key) => Some(
                self.master
                    .seal(
                        key.pkcs8_der(),
                        version_key_aad(req.id, req.version).as_bytes(),
                    )
                    .map_err(|e| DomainError::internal_from("sealing key", e))?,
            ),
            None => None,
        };
        Ok(IssuedRecord {
            certificate_pem: leaf.certificate_pem,
            chain_pem: self.chain_pem.clone(),
            private_key_sealed,
            serial_hex: leaf.serial_hex,
            fingerprint: leaf.sha1_fingerprint_hex,
            signature_algorithm: leaf.signature_algorithm.to_owned(),
            issued_ms: unix_ms(now),
            not_before_ms: unix_ms(leaf.not_before),
            not_after_ms: unix_ms(leaf.not_after),
            ca_id: Some(self.id.clone()),
        })
    }
}

/// The full chain a server presents: the leaf, then the chain, one PEM block after another.
pub fn full_chain(leaf_pem: &str, chain_pem: &str) -> String {
    let sep = if leaf_pem.ends_with('\n') { "" } else { "\n" };
    format!("{leaf_pem}{sep}{chain_pem}")
}

/// The associated data binding a sealed leaf key to its certificate row (an imported
/// certificate's key, and version 1 of a purchased one).
pub fn key_aad(id: &CertificateId) -> String {
    format!("cert-key:{id}")
}

/// The associated data binding the sealed key of version `seq` of a certificate: version 1 keeps
/// [`key_aad`] (every key sealed before versions existed is a version 1), later versions add
/// their number, so that no sealed key can be moved to another version.
pub fn version_key_aad(id: &CertificateId, seq: u32) -> String {
    if seq <= 1 {
        key_aad(id)
    } else {
        format!("cert-key:{id}:{seq}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use scm_proto::{Brand, CertType};

    fn names(list: &[&str]) -> Vec<DnsName> {
        list.iter().map(|n| DnsName::parse(n).unwrap()).collect()
    }

    fn product(domain_type: &str, n: i64) -> Product {
        Product {
            brand: Brand::GlobalSign,
            cert_type: CertType::DvSsl,
            domain_type: DomainType::parse(domain_type).unwrap(),
            effective_time: 1,
            domain_numbers: n,
            primary_domain_type: None,
            single_domain_number: None,
            wildcard_domain_number: None,
            enterprise_project_id: "0".into(),
        }
    }

    #[test]
    fn product_rules() {
        assert!(check_product(&product("SINGLE_DOMAIN", 1), &names(&["a.test"])).is_ok());
        assert!(
            check_product(&product("SINGLE_DOMAIN", 1), &names(&["a.test", "b.test"])).is_err()
        );
        assert!(check_product(&product("SINGLE_DOMAIN", 1), &names(&["*.a.test"])).is_err());
        assert!(check_product(&product("WILDCARD", 1), &names(&["*.a.test"])).is_ok());
        assert!(check_product(&product("WILDCARD", 1), &names(&["a.test"])).is_err());
        assert!(
            check_product(
                &product("MULTI_DOMAIN", 3),
                &names(&["a.test", "b.test", "*.c.test"])
            )
            .is_ok()
        );
        assert!(
            check_product(
                &product("MULTI_DOMAIN", 2),
                &names(&["a.test", "b.test", "c.test"])
            )
            .is_err()
        );
        let mut p = product("MULTI_DOMAIN", 4);
        p.primary_domain_type = Some(PrimaryDomainType::Single);
        p.single_domain_number = Some(1);
        p.wildcard_domain_number = Some(2);
        assert!(check_product(&p, &names(&["a.test", "b.test", "*.c.test", "*.d.test"])).is_ok());
        assert!(check_product(&p, &names(&["a.test", "b.test", "c.test"])).is_err());
        assert!(check_product(&p, &names(&["*.a.test", "b.test"])).is_err());
        // A multi-domain certificate of one domain (the v3 minimum) carries its primary only.
        assert!(check_product(&product("MULTI_DOMAIN", 1), &names(&["a.test"])).is_ok());
        assert!(check_product(&product("MULTI_DOMAIN", 1), &names(&["a.test", "b.test"])).is_err());
    }

    /// `wildcard_count` is the number of additional wildcard domains (reference §4.3.2): a
    /// wildcard primary domain is not one of them.
    #[test]
    fn wildcard_count_leaves_out_a_wildcard_primary_domain() {
        assert_eq!(wildcard_count(&product("SINGLE_DOMAIN", 1)), 0);
        assert_eq!(wildcard_count(&product("WILDCARD", 1)), 0);
        let mut p = product("MULTI_DOMAIN", 4);
        p.primary_domain_type = Some(PrimaryDomainType::Wildcard);
        assert_eq!(wildcard_count(&p), 0);
        p.single_domain_number = Some(1);
        p.wildcard_domain_number = Some(2);
        assert_eq!(wildcard_count(&p), 2);
        p.primary_domain_type = Some(PrimaryDomainType::Single);
        assert_eq!(wildcard_count(&p), 2);
    }

    #[test]
    fn policies_are_domain_suffixes() {
        assert_eq!(
            normalise_policy(" .Test ; example.COM;.internal").unwrap(),
            ".test;example.com;.internal"
        );
        assert_eq!(normalise_policy("").unwrap(), "");
        for bad in [
            "*",
            "*.test",
            ".",
            "a..b",
            "exa mple.com",
            ".test;;.x",
            "1.2.3.4",
            "-a.test",
            ".com",
            "com",
            ".CO.UK",
            "github.io",
            ".test;.com",
            ".zzzunlisted",
        ] {
            assert!(normalise_policy(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn policy_rules() {
        assert!(
            check_policy(
                DEFAULT_POLICY,
                &names(&["www.e2e.test", "*.x.internal", "app.localhost"])
            )
            .is_ok()
        );
        assert!(matches!(
            check_policy(DEFAULT_POLICY, &names(&["www.example.com"])),
            Err(DomainError::DomainMismatch(_))
        ));
        assert!(check_policy("", &names(&["a.test"])).is_err());
    }
}
