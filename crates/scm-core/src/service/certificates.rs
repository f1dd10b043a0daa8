//! Certificates: purchase, application, issuance by the built-in CA, reading and export.

use std::sync::Arc;

use scm_pki::PrivateKey;
use scm_proto::v3::{ApplicationBody, PurchaseBody};
use scm_proto::{CertificateId, CertificateStatus, OrderId, ProjectId};
use scm_store::{CertificateRecord, ListQuery, NewCertificate, OrderRecord, StoreError};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::application::{ApplicationForm, FormKind};
use crate::auth::Principal;
use crate::clock::unix_ms;
use crate::issuance;
use crate::purchase::{ApiVersion, PurchaseSpec};
use crate::{DomainError, random};

use super::{Export, Scm, is_organisation_validated, parse_list_query};

impl Scm {
    /// Buys `order_number` certificates in one transaction; they start in `PAID`.
    pub async fn purchase(
        &self,
        p: &Principal,
        project: &ProjectId,
        body: &PurchaseBody,
        version: ApiVersion,
    ) -> Result<(OrderId, Vec<CertificateId>), DomainError> {
        let spec = PurchaseSpec::parse(body, version)?;
        let tags_json =
            serde_json::to_string(&spec.tags).map_err(|e| DomainError::Internal(e.to_string()))?;
        let template = NewCertificate {
            name: "scm".into(),
            status: CertificateStatus::Paid,
            description: String::new(),
        };
        // Order ids carry 5 random characters per minute; retry on the rare collision.
        for _ in 0..5 {
            let now = self.clock.now();
            let order = OrderRecord {
                order_id: order_id(now)?,
                domain_id: p.account.clone(),
                project_id: project.clone(),
                product: spec.product.clone(),
                order_number: i64::from(spec.order_number),
                tags_json: tags_json.clone(),
                created_ms: unix_ms(now),
            };
            match self
                .store
                .create_order(&order, &template, spec.order_number, unix_ms(now))
                .await
            {
                Ok(ids) => return Ok((order.order_id, ids)),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(DomainError::Internal(
            "could not allocate a unique order id".into(),
        ))
    }

    /// Loads a certificate of the caller's account.
    pub async fn certificate(
        &self,
        p: &Principal,
        raw_id: &str,
    ) -> Result<Arc<CertificateRecord>, DomainError> {
        let id =
            CertificateId::try_from(raw_id).map_err(|_| DomainError::MalformedCertificateId)?;
        let cert = match self.cache.certificates.get(&id) {
            Some(c) => c,
            None => {
                let seen = self.cache.generation();
                let c = Arc::new(
                    self.store
                        .certificate(&id)
                        .await?
                        .ok_or(DomainError::CertificateNotFound)?,
                );
                self.cache.put_certificate(seen, c.clone());
                c
            }
        };
        if cert.domain_id != p.account {
            return Err(DomainError::OtherTenant);
        }
        Ok(cert)
    }

    /// v2 `save`: stores the application of a `PAID` certificate (again: overwrites).
    pub async fn save_application(
        &self,
        p: &Principal,
        raw_id: &str,
        body: &ApplicationBody,
    ) -> Result<(), DomainError> {
        let cert = self.certificate(p, raw_id).await?;
        if cert.status != CertificateStatus::Paid {
            return Err(DomainError::WrongStatus(cert.status));
        }
        let form = ApplicationForm::parse(
            body,
            FormKind::V2,
            is_organisation_validated(&cert.product.cert_type),
        )?;
        let rec = form.to_record()?;
        if self
            .store
            .save_application(&cert.id, CertificateStatus::Paid, &rec, self.clock.now_ms())
            .await
            .inspect(|_| self.cache.forget_certificate(&cert.id))?
        {
            return Ok(());
        }
        Err(self.status_changed(&cert.id).await)
    }

    pub(super) async fn status_changed(&self, id: &CertificateId) -> DomainError {
        match self.store.certificate(id).await {
            Ok(Some(c)) => DomainError::WrongStatus(c.status),
            Ok(None) => DomainError::CertificateNotFound,
            Err(e) => e.into(),
        }
    }

    /// v3 `apply` (with a body) or v2 `complete` (body optional: the saved application is used):
    /// checks the names against the product and the issuance policy, then issues with the
    /// built-in CA. The certificate is `ISSUED` when this returns.
    pub async fn apply(
        &self,
        p: &Principal,
        raw_id: &str,
        body: Option<&ApplicationBody>,
        kind: FormKind,
    ) -> Result<(), DomainError> {
        let cert = self.certificate(p, raw_id).await?;
        if cert.status != CertificateStatus::Paid {
            return Err(DomainError::WrongStatus(cert.status));
        }
        let ov = is_organisation_validated(&cert.product.cert_type);
        let form = match (body, &cert.application) {
            (Some(b), _) => ApplicationForm::parse(b, kind, ov)?,
            (None, Some(saved)) => ApplicationForm::from_record(saved)?,
            (None, None) => {
                return Err(DomainError::invalid(
                    "domain",
                    "is required: no application was saved for this certificate",
                ));
            }
        };
        let names = form.names();
        issuance::check_product(&cert.product, &names)?;
        let account = self
            .account(&p.account)
            .await?
            .ok_or(DomainError::OtherTenant)?;
        issuance::check_policy(&account.policy, &names)?;
        let now = self.clock.now();
        let issued = issuance::issue(
            self.ca.clone(),
            self.master.clone(),
            &cert.id,
            &form,
            now,
            self.config.leaf_validity,
        )
        .await?;
        let rec = form.to_record()?;
        // Conditional on PAID: of two concurrent applications only one certificate is recorded.
        if self
            .store
            .mark_issued(
                &cert.id,
                CertificateStatus::Paid,
                &rec,
                &issued,
                unix_ms(now),
            )
            .await
            .inspect(|_| self.cache.forget_certificate(&cert.id))?
        {
            tracing::info!(cert = %cert.id, serial = %issued.serial_hex, "certificate issued");
            return Ok(());
        }
        Err(self.status_changed(&cert.id).await)
    }

    /// `GET /v3/scm/certificates`: parses the query and lists a page of the caller's certificates.
    pub async fn list_query(
        &self,
        p: &Principal,
        pairs: &[(String, String)],
    ) -> Result<(Vec<CertificateRecord>, u64), DomainError> {
        let q = parse_list_query(pairs, self.clock.now_ms())?;
        self.list(p, &q).await
    }

    /// A page of the caller's certificates.
    pub async fn list(
        &self,
        p: &Principal,
        q: &ListQuery,
    ) -> Result<(Vec<CertificateRecord>, u64), DomainError> {
        Ok(self.store.list_certificates(&p.account, q).await?)
    }

    /// Certificate, chain and (when held) key of an issued certificate.
    pub async fn export(&self, p: &Principal, raw_id: &str) -> Result<Export, DomainError> {
        let cert = self.certificate(p, raw_id).await?;
        let issued = match (&cert.status, &cert.issued) {
            (CertificateStatus::Issued | CertificateStatus::Upload, Some(i)) => i,
            _ => return Err(DomainError::WrongStatus(cert.status)),
        };
        let private_key = match &issued.private_key_sealed {
            Some(sealed) => Some(self.open_key(&cert.id, sealed)?),
            None => None,
        };
        Ok(Export {
            certificate: issued.certificate_pem.clone(),
            chain: issued.chain_pem.clone(),
            entire: issuance::full_chain(&issued.certificate_pem, &issued.chain_pem),
            private_key,
        })
    }

    pub(super) fn open_key(
        &self,
        id: &CertificateId,
        sealed: &[u8],
    ) -> Result<Zeroizing<String>, DomainError> {
        let der = self
            .master
            .open(sealed, issuance::key_aad(id).as_bytes())
            .map_err(|e| DomainError::Internal(format!("opening key of {id}: {e}")))?;
        let key = PrivateKey::from_pkcs8_der(&der)
            .map_err(|e| DomainError::Internal(format!("key of {id}: {e}")))?;
        Ok(key.to_pem())
    }
}

/// `CS` + `yyMMddHHmm` in UTC+8 + five random upper-case alphanumerics.
fn order_id(now: OffsetDateTime) -> Result<OrderId, DomainError> {
    let china = now.to_offset(time::macros::offset!(+8));
    let stamp = format!(
        "{:02}{:02}{:02}{:02}{:02}",
        china.year().rem_euclid(100),
        u8::from(china.month()),
        china.day(),
        china.hour(),
        china.minute()
    );
    OrderId::new(&stamp, random::bytes()?).ok_or_else(|| DomainError::Internal("order id".into()))
}
