//! Pushes: delivering issued certificates to the configured targets, and their history.

use std::sync::Arc;

use scm_proto::CertificateStatus;
use scm_proto::v2::PushBody as V2PushBody;
use scm_proto::v3::PushBody as V3PushBody;
use scm_store::{PushOutcome, PushRecord};

use crate::auth::Principal;
use crate::deploy::{self, Material, PushService, PushTarget};
use crate::{DomainError, issuance};

use super::Scm;

impl Scm {
    /// v2 push body → service and region.
    pub fn parse_v2_push(body: &V2PushBody) -> Result<(PushService, Option<String>), DomainError> {
        let raw = body
            .service_type
            .as_deref()
            .ok_or_else(|| DomainError::invalid("service_type", "is required"))?;
        let service = PushService::parse(raw)
            .filter(|s| s.as_str() == raw.trim())
            .ok_or_else(|| {
                DomainError::invalid("service_type", "must be one of CDN, WAF, ELB, Enhance_ELB")
            })?;
        let region = check_region(body.remote_project.as_deref(), "remote_project", service)?;
        Ok((service, region))
    }

    /// v3 push body → service and region.
    pub fn parse_v3_push(body: &V3PushBody) -> Result<(PushService, Option<String>), DomainError> {
        let raw = body
            .target_service
            .as_deref()
            .ok_or_else(|| DomainError::invalid("target_service", "is required"))?;
        if raw.is_empty() || raw.len() > 64 {
            return Err(DomainError::invalid(
                "target_service",
                "must be 1 to 64 characters",
            ));
        }
        let service = PushService::parse(raw).ok_or_else(|| {
            DomainError::invalid("target_service", "must be one of CDN, WAF, ELB")
        })?;
        let region = check_region(body.target_project.as_deref(), "target_project", service)?;
        Ok((service, region))
    }

    /// Pushes an issued certificate to every configured target of the caller's account for this
    /// service and region. Every attempt is recorded, successful or not.
    pub async fn push(
        &self,
        p: &Principal,
        raw_id: &str,
        service: PushService,
        region: Option<String>,
    ) -> Result<(), DomainError> {
        let cert = self.certificate(p, raw_id).await?;
        let issued = match (&cert.status, &cert.issued) {
            (CertificateStatus::Issued | CertificateStatus::Upload, Some(i)) => i,
            _ => return Err(DomainError::WrongStatus(cert.status)),
        };
        let targets: Vec<&PushTarget> = self
            .config
            .push_targets
            .iter()
            .filter(|t| t.matches(&p.account, service, region.as_deref()))
            .collect();
        if targets.is_empty() {
            return Err(DomainError::NoPushTarget {
                service: service.as_str().into(),
                region: region.clone().unwrap_or_else(|| "global".into()),
            });
        }
        let region = if service.is_global() { None } else { region };
        let material = match &issued.private_key_sealed {
            Some(sealed) => Some(Material {
                fullchain_pem: issuance::full_chain(&issued.certificate_pem, &issued.chain_pem),
                key_pem: self.open_key(&cert.id, sealed)?,
            }),
            None => None,
        };
        let mut failures = Vec::new();
        let mut details = Vec::new();
        for t in &targets {
            let outcome = match &material {
                Some(m) => {
                    let lock = self.target_locks.get(&t.name).cloned();
                    let _guard = match &lock {
                        Some(l) => Some(l.lock().await),
                        None => None,
                    };
                    deploy::deliver(t, m).await
                }
                None => Err(format!(
                    "target {}: OpenSCM does not hold the private key of this certificate (it was issued from your CSR)",
                    t.name
                )),
            };
            match outcome {
                Ok(()) => details.push(format!("{}: ok", t.name)),
                Err(e) => {
                    details.push(e.clone());
                    failures.push(e);
                }
            }
        }
        let rec = PushRecord {
            cert_id: cert.id.clone(),
            domain_id: p.account.clone(),
            pushed_ms: self.clock.now_ms(),
            service: service.as_str().into(),
            region,
            outcome: if failures.is_empty() {
                PushOutcome::Success
            } else {
                PushOutcome::Failure
            },
            detail: details.join("; "),
            targets: targets
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(";"),
        };
        let recorded = self.store.record_push(&rec).await;
        self.cache.forget_certificate(&cert.id);
        recorded?;
        if failures.is_empty() {
            tracing::info!(cert = %cert.id, service = service.as_str(), targets = %rec.targets, "certificate pushed");
            Ok(())
        } else {
            Err(DomainError::PushFailed(failures.join("; ")))
        }
    }

    /// The last 10 successful pushes, newest first.
    pub async fn push_history(
        &self,
        p: &Principal,
        raw_id: &str,
    ) -> Result<Arc<Vec<PushRecord>>, DomainError> {
        let cert = self.certificate(p, raw_id).await?;
        if let Some(h) = self.cache.history.get(&cert.id) {
            return Ok(h);
        }
        let seen = self.cache.generation();
        let h = Arc::new(self.store.push_history(&cert.id, 10, true).await?);
        self.cache.put_history(seen, cert.id.clone(), h.clone());
        Ok(h)
    }
}

fn check_region(
    raw: Option<&str>,
    field: &str,
    service: PushService,
) -> Result<Option<String>, DomainError> {
    let region = raw.map(str::trim).filter(|r| !r.is_empty());
    match region {
        None if service.is_global() => Ok(None),
        None => Err(DomainError::invalid(field, "is required")),
        Some(r) => {
            if r.len() > 255
                || !r
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(DomainError::invalid(
                    field,
                    "must be a region name such as cn-north-4",
                ));
            }
            Ok(Some(r.to_owned()))
        }
    }
}
