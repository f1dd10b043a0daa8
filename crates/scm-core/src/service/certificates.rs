//! Certificates: purchase, application, issuance by the built-in CA, reading and export.

use std::sync::Arc;

use scm_pki::PrivateKey;
use scm_proto::v3::{ApplicationBody, PurchaseBody};
use scm_proto::{CertificateId, CertificateStatus, OrderId, ProjectId};
use scm_store::{
    CertificateRecord, ListQuery, NewCertificate, OrderRecord, StoreError, TagRecord, VersionExpect,
};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::application::ApplicationForm;
use crate::auth::Principal;
use crate::clock::unix_ms;
use crate::issuance;
use crate::lifecycle::validation::method_of;
use crate::lifecycle::versions::VersionReason;
use crate::purchase::{ApiVersion, PurchaseSpec};
use crate::{DomainError, random};

use super::{Export, Scm};

/// How far ahead of the clock the certificate ids of an order may run (see
/// [`Scm::purchase`]).
pub const MAX_ID_LEAD_MS: i64 = 100;
/// How long an order whose ids would run further ahead waits for the clock before it takes them
/// anyway: long enough for the largest order (1,000 certificates, one a millisecond).
pub const MAX_ID_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A certificate list request, as parsed from the query string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListRequest {
    /// Filters, sort and page. `expired_after_ms` is left unset: it follows from
    /// `expired_days_since` and the clock.
    pub query: ListQuery,
    /// Leave out certificates that expired more than this many days ago; `None`: leave out
    /// nothing for having expired. (The API's parser gives the documented default, 0, when the
    /// parameter is absent.)
    pub expired_days_since: Option<i64>,
}

impl Scm {
    /// Buys `order_number` certificates in one transaction; they start in `PAID`, with the
    /// purchase's tags.
    ///
    /// Certificate ids are `scs` + a millisecond time, one per millisecond, from a counter
    /// shared by every process on the database (see [`scm_store::Certificates::create_order`]):
    /// an order takes the unused milliseconds up to now, so its ids are not ahead of the clock.
    /// Only orders that ask for more ids than milliseconds have passed (bursts beyond 1,000
    /// certificates a second) would run ahead; they run at most [`MAX_ID_LEAD_MS`] ahead, and
    /// beyond that wait for the clock to catch up, up to [`MAX_ID_WAIT`]. An order still
    /// refused after that (the clock stands still, or another process's clock is that far
    /// ahead of this one's) takes its ids anyway, and says so in the log: ids must be unique,
    /// and the purchase must not fail for want of a millisecond.
    pub async fn purchase(
        &self,
        p: &Principal,
        project: &ProjectId,
        body: &PurchaseBody,
        version: ApiVersion,
    ) -> Result<(OrderId, Vec<CertificateId>), DomainError> {
        let spec = PurchaseSpec::parse(body, version)?;
        let tags_json = serde_json::to_string(&spec.tags)
            .map_err(|e| DomainError::internal_from("tags to JSON", e))?;
        let template = NewCertificate {
            name: "scm".into(),
            status: CertificateStatus::Paid,
            description: String::new(),
            tags: spec
                .tags
                .iter()
                .map(|t| TagRecord {
                    key: t.key.clone(),
                    value: t.value.clone(),
                })
                .collect(),
        };
        let mut collisions = 0;
        let mut waited = std::time::Duration::ZERO;
        loop {
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
            let lead = (waited < MAX_ID_WAIT).then_some(MAX_ID_LEAD_MS);
            match self
                .store
                .create_order(
                    &order,
                    &template,
                    spec.order_number,
                    unix_ms(now),
                    lead,
                    &self.config.quotas,
                )
                .await
            {
                Ok(ids) => {
                    let ahead = ids.last().map_or(0, |id| {
                        i64::try_from(id.millis()).unwrap_or(i64::MAX) - unix_ms(now)
                    });
                    if ahead > MAX_ID_LEAD_MS {
                        tracing::warn!(
                            order = %order.order_id,
                            ahead_ms = ahead,
                            "certificate ids run ahead of the clock: the clock did not catch up \
                             with the orders (or another server's clock is ahead of this one's)"
                        );
                    }
                    return Ok((order.order_id, ids));
                }
                // Order ids carry 5 random characters per minute; retry on the rare collision.
                Err(StoreError::Conflict(_)) if collisions < 4 => collisions += 1,
                Err(StoreError::Conflict(_)) => {
                    return Err(DomainError::internal(
                        "could not allocate a unique order id",
                    ));
                }
                Err(StoreError::IdsAhead(ms)) => {
                    let wait = std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(1))
                        .max(std::time::Duration::from_millis(1))
                        .min(MAX_ID_WAIT.saturating_sub(waited));
                    self.clock.sleep(wait).await;
                    waited += wait;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Loads a certificate of the caller's account.
    ///
    /// Another account's certificate is [`DomainError::CertificateNotFound`], exactly as an id that
    /// was never issued, and after the same work: the cache holds a certificate only under its own
    /// account, so for anyone else it misses, and the store is asked by id and account at once.
    /// Whether an id belongs to someone else is therefore not observable, neither in the answer
    /// nor in its timing.
    ///
    /// Its status is the one it shows now ([`CertificateRecord::as_of`]: `EXPIRED` from its
    /// `not_after` on); [`Self::stored_certificate`] is the record as stored.
    pub async fn certificate(
        &self,
        p: &Principal,
        id: &CertificateId,
    ) -> Result<Arc<CertificateRecord>, DomainError> {
        Ok(self.as_of_now(self.stored_certificate(p, id).await?))
    }

    /// [`Self::certificate`] as stored (for writes conditional on the stored status).
    pub(crate) async fn stored_certificate(
        &self,
        p: &Principal,
        id: &CertificateId,
    ) -> Result<Arc<CertificateRecord>, DomainError> {
        let mine = |c: &CertificateRecord| c.domain_id == p.account;
        let key = (p.account.clone(), id.clone());
        if let Some(c) = self.cache.certificates.get(&key).filter(|c| mine(c)) {
            return Ok(c);
        }
        let seen = self.cache.certificates_generation();
        let c = Arc::new(
            self.store
                .certificate_of(&p.account, id)
                .await?
                .filter(mine)
                .ok_or(DomainError::CertificateNotFound)?,
        );
        self.cache.put_certificate(seen, c.clone());
        Ok(c)
    }

    /// `c` as it reads now: `EXPIRED` from its `not_after` on (the stored record is kept as
    /// it is, in the cache too; only a certificate whose status changes is copied).
    pub(super) fn as_of_now(&self, c: Arc<CertificateRecord>) -> Arc<CertificateRecord> {
        let now = self.clock.now_ms();
        if c.status_at(now) == c.status {
            c
        } else {
            Arc::new(CertificateRecord::clone(&c).as_of(now))
        }
    }

    /// v2 `save`: stores the application of a `PAID` certificate (again: overwrites).
    pub async fn save_application(
        &self,
        p: &Principal,
        id: &CertificateId,
        body: &ApplicationBody,
    ) -> Result<(), DomainError> {
        let cert = self.certificate(p, id).await?;
        if cert.status != CertificateStatus::Paid {
            return Err(DomainError::WrongStatus(cert.status));
        }
        let form = ApplicationForm::parse(
            body,
            ApiVersion::V2,
            cert.product.cert_type.is_organisation_validated(),
        )?;
        let rec = form.to_record()?;
        if self
            .store
            .save_application(&cert.id, CertificateStatus::Paid, &rec, self.clock.now_ms())
            .await
            .inspect(|_| self.cache.forget_certificate(&cert.domain_id, &cert.id))?
        {
            return Ok(());
        }
        Err(self.status_changed(p, &cert.id).await)
    }

    /// Why a conditional update of the caller's certificate did not happen.
    pub(super) async fn status_changed(&self, p: &Principal, id: &CertificateId) -> DomainError {
        match self.store.certificate_of(&p.account, id).await {
            Ok(Some(c)) => DomainError::WrongStatus(c.status),
            Ok(None) => DomainError::CertificateNotFound,
            Err(e) => e.into(),
        }
    }

    /// v3 `apply` (with a body) or v2 `complete` (body optional: the saved application is used):
    /// checks the names against the product, the CA/Browser Forum rules and the issuance
    /// policy. Names the account's policy pre-authorizes, or that it proved control of within
    /// the reuse period, are issued at once (the certificate is `ISSUED` when this returns);
    /// otherwise the certificate moves to `CHECKING_DOMAIN` and OpenSCM checks the proofs shown
    /// in its `authentification` ([`crate::lifecycle::validation`]).
    pub async fn apply(
        &self,
        p: &Principal,
        id: &CertificateId,
        body: Option<&ApplicationBody>,
        version: ApiVersion,
    ) -> Result<(), DomainError> {
        let cert = self.certificate(p, id).await?;
        if cert.status != CertificateStatus::Paid {
            return Err(DomainError::WrongStatus(cert.status));
        }
        let ov = cert.product.cert_type.is_organisation_validated();
        let form = match (body, &cert.application) {
            (Some(b), _) => ApplicationForm::parse(b, version, ov)?,
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
        crate::lifecycle::names::check_names(&names, method_of(&form))?;
        let actor = crate::lifecycle::actor(p);
        // A brand an ACME CA issues first: the CA validates the names, through an order.
        if let crate::issuers::IssuerChoice::Acme(issuer) =
            self.config.issuers.first_for(cert.product.brand.as_str())
        {
            Self::check_acme_product(&issuer, &cert, &form)?;
            let issuers = self.config.issuers.names_for(cert.product.brand.as_str());
            if self
                .start_acme_issuance(&cert, &form, issuers, &actor)
                .await?
            {
                tracing::info!(cert = %cert.id, issuer = %issuer.name, "ACME issuance started");
                return Ok(());
            }
            return Err(self.status_changed(p, &cert.id).await);
        }
        let unproven = self.unproven(&p.account, &form).await?;
        if !unproven.is_empty() {
            let method = form.domain_method.as_deref().unwrap_or("DNS");
            if crate::lifecycle::names::ValidationMethod::from_form(
                &method.trim().to_ascii_uppercase(),
            )
            .is_none()
            {
                return Err(DomainError::invalid(
                    "domain_method",
                    format!(
                        "{method} validation is not offered: use DNS or FILE to prove control of {}",
                        unproven
                            .iter()
                            .map(|r| r.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            if self
                .start_application_validation(&cert, &form, &unproven, &actor)
                .await?
            {
                tracing::info!(cert = %cert.id, names = unproven.len(), "domain validation started");
                return Ok(());
            }
            return Err(self.status_changed(p, &cert.id).await);
        }
        // Conditional on PAID: of two concurrent applications only one certificate is recorded.
        if self
            .issue_version(
                &cert,
                &form,
                VersionExpect::Status(CertificateStatus::Paid),
                VersionReason::Issued,
                &actor,
            )
            .await?
            .is_some()
        {
            return Ok(());
        }
        Err(self.status_changed(p, &cert.id).await)
    }

    /// A page of the caller's certificates and how many match in all.
    ///
    /// `expired_days_since=N` leaves out certificates that expired more than N days ago; without
    /// it nothing is left out for having expired.
    pub async fn list(
        &self,
        p: &Principal,
        req: &ListRequest,
    ) -> Result<(Vec<CertificateRecord>, u64), DomainError> {
        let mut q = req.query.clone();
        q.expired_after_ms = req
            .expired_days_since
            .map(|days| self.clock.now_ms() - days.saturating_mul(86_400_000));
        q.now_ms = self.clock.now_ms();
        let (certs, total) = self.store.list_certificates(&p.account, &q).await?;
        Ok((
            certs.into_iter().map(|c| c.as_of(q.now_ms)).collect(),
            total,
        ))
    }

    /// Certificate, chain and (when held) key of an issued certificate.
    pub async fn export(&self, p: &Principal, id: &CertificateId) -> Result<Export, DomainError> {
        let cert = self.certificate(p, id).await?;
        let issued = match &cert.issued {
            Some(i) if cert.status.is_deployable() => i,
            _ => return Err(DomainError::WrongStatus(cert.status)),
        };
        let private_key = match &issued.private_key_sealed {
            Some(sealed) => Some(self.open_key(
                &cert.id,
                cert.lifecycle.current_version.unwrap_or(1),
                sealed,
            )?),
            None => None,
        };
        Ok(Export {
            certificate: issued.certificate_pem.clone(),
            chain: issued.chain_pem.clone(),
            entire: issuance::full_chain(&issued.certificate_pem, &issued.chain_pem),
            private_key,
        })
    }

    /// Opens the sealed key of version `seq` of certificate `id` (1 for an imported one).
    pub(crate) fn open_key(
        &self,
        id: &CertificateId,
        seq: u32,
        sealed: &[u8],
    ) -> Result<Zeroizing<String>, DomainError> {
        let der = self
            .master
            .open(sealed, issuance::version_key_aad(id, seq).as_bytes())
            .map_err(|e| DomainError::internal_from(format!("opening the key of {id}"), e))?;
        let key = PrivateKey::from_pkcs8_der(&der)
            .map_err(|e| DomainError::internal_from(format!("the key of {id}"), e))?;
        Ok(key.to_pem())
    }
}

/// `CS` + `yyMMddHHmm` in UTC+8 + five random upper-case alphanumerics.
pub(super) fn order_id(now: OffsetDateTime) -> Result<OrderId, DomainError> {
    let china = now.to_offset(time::macros::offset!(+8));
    let stamp = format!(
        "{:02}{:02}{:02}{:02}{:02}",
        china.year().rem_euclid(100),
        u8::from(china.month()),
        china.day(),
        china.hour(),
        china.minute()
    );
    OrderId::new(&stamp, random::bytes()?).ok_or_else(|| DomainError::internal("order id"))
}
