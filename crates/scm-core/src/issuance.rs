//! Issuance by the built-in CA: the product and the account's issuance policy decide which names
//! may be issued; then the intermediate signs either the user's CSR or a key generated here.

use std::sync::Arc;

use scm_pki::{Issuer, LeafKey, LeafRequest, MasterKey, PrivateKey, SubjectFields};
use scm_proto::CertificateId;
use scm_store::{CaRecord, IssuedRecord, Product};
use time::OffsetDateTime;

use crate::application::ApplicationForm;
use crate::clock::unix_ms;
use crate::{DomainError, DomainName};

/// Default issuance policy of a new account: names under the reserved TLDs, which no public CA
/// issues for and which therefore need no domain validation to be safe.
pub const DEFAULT_POLICY: &str = ".test;.internal;.localhost;.example";

/// The built-in CA, loaded once and shared.
pub struct BuiltinCa {
    issuer: Issuer,
    chain_pem: String,
    root_pem: String,
}

impl std::fmt::Debug for BuiltinCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltinCa").finish_non_exhaustive()
    }
}

impl BuiltinCa {
    /// Opens the stored CA with the master key.
    pub fn load(rec: &CaRecord, master: &MasterKey) -> Result<Self, DomainError> {
        let key_der = master
            .open(&rec.intermediate_key_sealed, b"ca:intermediate")
            .map_err(|e| {
                DomainError::Internal(format!(
                    "cannot open the CA key ({e}); is this the right master key?"
                ))
            })?;
        let key = PrivateKey::from_pkcs8_der(&key_der)
            .map_err(|e| DomainError::Internal(format!("CA key: {e}")))?;
        let issuer = Issuer::from_pem(&rec.intermediate_cert_pem, &key)
            .map_err(|e| DomainError::Internal(format!("CA: {e}")))?;
        Ok(Self {
            issuer,
            chain_pem: rec.intermediate_cert_pem.clone(),
            root_pem: rec.root_cert_pem.clone(),
        })
    }

    /// The intermediate certificate (the chain served with every leaf).
    pub fn chain_pem(&self) -> &str {
        &self.chain_pem
    }

    /// The root certificate, for clients to trust.
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }
}

/// Checks the names of an application against the product bought.
pub fn check_product(product: &Product, names: &[DomainName]) -> Result<(), DomainError> {
    let Some((primary, sans)) = names.split_first() else {
        return Err(DomainError::DomainMismatch(
            "at least one domain name is required".into(),
        ));
    };
    let mismatch = |m: String| Err(DomainError::DomainMismatch(m));
    match product.domain_type.as_str() {
        "SINGLE_DOMAIN" => {
            if !sans.is_empty() {
                return mismatch("a SINGLE_DOMAIN certificate carries exactly one domain name; sans must be empty".into());
            }
            if primary.is_wildcard() {
                return mismatch("a SINGLE_DOMAIN certificate cannot carry a wildcard name; buy a WILDCARD certificate".into());
            }
        }
        "WILDCARD" => {
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
        _ => {
            let total = i64::try_from(names.len()).unwrap_or(i64::MAX);
            if total > product.domain_numbers {
                return mismatch(format!(
                    "{total} domain names given but this certificate allows {}",
                    product.domain_numbers
                ));
            }
            let wants_wildcard_primary =
                product.primary_domain_type.as_deref() == Some("WILDCARD_DOMAIN");
            if product.primary_domain_type.is_some()
                && primary.is_wildcard() != wants_wildcard_primary
            {
                return mismatch(if wants_wildcard_primary {
                    "the primary domain must be a wildcard name (primary_domain_type WILDCARD_DOMAIN)".into()
                } else {
                    "the primary domain must not be a wildcard name (primary_domain_type SINGLE_DOMAIN)".into()
                });
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

/// Checks every name against the account's issuance policy (`;`-separated suffixes).
pub fn check_policy(policy: &str, names: &[DomainName]) -> Result<(), DomainError> {
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

/// Signs the certificate (generating its key on a blocking thread when there is no CSR) and seals
/// the key for storage.
pub async fn issue(
    ca: Arc<BuiltinCa>,
    master: Arc<MasterKey>,
    id: &CertificateId,
    form: &ApplicationForm,
    now: OffsetDateTime,
    validity: time::Duration,
) -> Result<IssuedRecord, DomainError> {
    let generated = match &form.csr {
        Some(_) => None,
        None => {
            let alg = form.key_algorithm;
            // RSA generation takes 70 ms to seconds: keep it off the async workers.
            Some(
                tokio::task::spawn_blocking(move || PrivateKey::generate(alg))
                    .await?
                    .map_err(|e| DomainError::Internal(format!("key generation: {e}")))?,
            )
        }
    };
    let names: Vec<String> = form.names().iter().map(|n| n.as_str().to_owned()).collect();
    let a = &form.applicant;
    let opt = |s: &str| {
        if s.is_empty() {
            None
        } else {
            Some(s.to_owned())
        }
    };
    let (country, province, city, org, unit) = (
        opt(&a.country),
        opt(&a.company_province),
        opt(&a.company_city),
        opt(&a.company_name),
        opt(&a.company_unit),
    );
    let public_key = match (&form.csr, &generated) {
        (Some((_, csr)), _) => LeafKey::Csr(csr),
        (None, Some(key)) => LeafKey::Generated(key),
        (None, None) => return Err(DomainError::Internal("no key to certify".into())),
    };
    let leaf = ca
        .issuer
        .issue(&LeafRequest {
            dns_names: &names,
            subject: SubjectFields {
                country: country.as_deref(),
                province: province.as_deref(),
                city: city.as_deref(),
                organization: org.as_deref(),
                organizational_unit: unit.as_deref(),
            },
            // Backdated a little so clients with a slow clock accept it at once.
            not_before: now - time::Duration::minutes(5),
            not_after: now + validity,
            public_key,
        })
        .map_err(|e| DomainError::Internal(format!("signing: {e}")))?;
    let private_key_sealed = match &generated {
        Some(key) => Some(
            master
                .seal(key.pkcs8_der(), key_aad(id).as_bytes())
                .map_err(|e| DomainError::Internal(format!("sealing key: {e}")))?,
        ),
        None => None,
    };
    Ok(IssuedRecord {
        certificate_pem: leaf.certificate_pem,
        chain_pem: ca.chain_pem.clone(),
        private_key_sealed,
        serial_hex: leaf.serial_hex,
        fingerprint: leaf.sha1_fingerprint_hex,
        signature_algorithm: leaf.signature_algorithm.to_owned(),
        issued_ms: unix_ms(now),
        not_before_ms: unix_ms(leaf.not_before),
        not_after_ms: unix_ms(leaf.not_after),
    })
}

/// The full chain a server presents: the leaf, then the chain, one PEM block after another.
pub fn full_chain(leaf_pem: &str, chain_pem: &str) -> String {
    let sep = if leaf_pem.ends_with('\n') { "" } else { "\n" };
    format!("{leaf_pem}{sep}{chain_pem}")
}

/// The associated data binding a sealed leaf key to its certificate row.
pub fn key_aad(id: &CertificateId) -> String {
    format!("cert-key:{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<DomainName> {
        list.iter().map(|n| DomainName::parse(n).unwrap()).collect()
    }

    fn product(domain_type: &str, n: i64) -> Product {
        Product {
            brand: "GLOBALSIGN".into(),
            cert_type: "DV_SSL_CERT".into(),
            domain_type: domain_type.into(),
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
        p.primary_domain_type = Some("SINGLE_DOMAIN".into());
        p.single_domain_number = Some(1);
        p.wildcard_domain_number = Some(2);
        assert!(check_product(&p, &names(&["a.test", "b.test", "*.c.test", "*.d.test"])).is_ok());
        assert!(check_product(&p, &names(&["a.test", "b.test", "c.test"])).is_err());
        assert!(check_product(&p, &names(&["*.a.test", "b.test"])).is_err());
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
