//! One attempt of a `deliver` job: the certificate's current version to one target, then the
//! TLS check that the target serves it, recorded with the job's new state in one transaction.

use std::time::Duration;

use scm_proto::{CertificateId, DomainId};
use scm_store::{
    CertificateRecord, DeploymentChange, DeploymentRecord, JobEffect, JobRecord, PushOutcome,
    PushRecord,
};

use crate::deploy::probe::{Endpoint, ProbeError, Served};
use crate::deploy::{DeliveryContext, DeliveryErrorKind, Material, PushTarget};
use crate::jobs::{Attempt, give_up as permanent};
use crate::notify::{Event, Notification};
use crate::service::Scm;

use super::DeliverJob;

/// What the TLS check saw.
pub(crate) enum Check {
    /// The delivered leaf, with a chain that verifies.
    Served(Served),
    /// Something else (or an unverifiable chain).
    Other(Option<Served>, String),
}

/// The trust anchor of the chain check: the top of the delivered chain (the issuer's root, or
/// the intermediate it signed; a chain verifying to it verifies to the root). An empty chain (a
/// self-signed or leaf-only certificate) has none: only the fingerprint is compared.
fn anchor(m: &Material) -> Option<String> {
    let blocks = scm_pki::pem_blocks(&m.chain_pem, "CERTIFICATE");
    blocks.last().map(|b| format!("{b}\n"))
}

impl Scm {
    /// One TLS handshake with `endpoint`, judged against `m`.
    pub(crate) async fn check_once(
        &self,
        endpoint: &Endpoint,
        m: &Material,
    ) -> Result<Check, ProbeError> {
        let Some(prober) = &self.config.delivery.prober else {
            return Err(ProbeError {
                message: "this server has no TLS prober".into(),
            });
        };
        let anchors = anchor(m);
        let served = prober
            .probe(endpoint, anchors.as_deref().unwrap_or_default())
            .await?;
        Ok(if served.sha256_fingerprint != m.facts.sha256_fingerprint {
            let why = format!(
                "{endpoint} serves serial {} (expected {}, version {})",
                served.serial_hex, m.facts.serial_hex, m.facts.version
            );
            Check::Other(Some(served), why)
        } else if anchors.is_some() && !served.chain_verified {
            let why = format!(
                "{endpoint} serves the certificate with a chain that does not verify to its issuer"
            );
            Check::Other(Some(served), why)
        } else {
            Check::Served(served)
        })
    }

    /// Checks that `endpoint` serves `m`, looking again for up to the verify window (a reload
    /// takes a moment): the last thing seen.
    pub(crate) async fn check_served(&self, endpoint: &Endpoint, m: &Material) -> Check {
        let deadline = tokio::time::Instant::now() + self.config.delivery.verify_window;
        // Short looks at first (an nginx reload takes tens of milliseconds: a delivery should
        // be confirmed soon after it is served), then up to one every 250 ms.
        let mut pause = Duration::from_millis(20);
        loop {
            let seen = match self.check_once(endpoint, m).await {
                Ok(c) => c,
                Err(e) => Check::Other(None, format!("TLS check of {endpoint}: {}", e.message)),
            };
            if matches!(seen, Check::Served(_)) || tokio::time::Instant::now() + pause > deadline {
                return seen;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 3 / 2).min(Duration::from_millis(250));
        }
    }

    /// One attempt of a delivery to one target.
    pub(crate) async fn attempt_delivery(&self, job: &JobRecord, d: &DeliverJob) -> Attempt {
        let (Ok(cert_id), Ok(account)) = (
            CertificateId::try_from(d.certificate_id.as_str()),
            DomainId::try_from(d.account.as_str()),
        ) else {
            return permanent("deliver job names a malformed certificate or account".into());
        };
        let Some(name) = d.target.clone() else {
            return self.split_legacy(&cert_id, &account, d).await;
        };
        // The certificate as it is now (it may have been renewed since the push was asked for).
        let cert = match self.store.certificate(&cert_id).await {
            Ok(Some(c)) if c.domain_id == account => c.as_of(self.clock.now_ms()),
            Ok(_) => return permanent(format!("certificate {cert_id} no longer exists")),
            Err(e) => return store_unavailable(&e),
        };
        let target = self
            .config
            .push_targets
            .iter()
            .find(|t| t.name == name && t.account == account);
        let context = DeliveryContext {
            target: name.clone(),
            job_id: job.id.0,
            attempt: job.attempts,
        };
        let material = self.material(&cert, context);
        let version = cert.lifecycle.current_version.unwrap_or(1);
        let deployment = match self.store.deployments(&cert.id).await {
            Ok(rows) => rows.into_iter().find(|r| r.target == name),
            Err(e) => return store_unavailable(&e),
        };
        let mut attempt = DeliveryAttempt {
            job,
            d,
            cert: &cert,
            target: name,
            version,
            deployment,
            now: self.clock.now_ms(),
        };
        let (target, material) = match (target, material) {
            (None, _) => {
                let why = format!("target {}: no longer configured", attempt.target);
                return self.delivery_failed(&attempt, why, DeliveryErrorKind::Misconfigured, None);
            }
            (Some(_), Err(why)) => {
                let why = format!("target {}: {why}", attempt.target);
                return self.delivery_failed(&attempt, why, DeliveryErrorKind::Permanent, None);
            }
            (Some(t), Ok(m)) => (t, m),
        };
        let endpoint = target
            .verify
            .as_ref()
            .map(|v| v.endpoint(material.facts.names.first().map_or("", String::as_str)));

        // Already served (seen by a check, and seen again now): nothing to deliver.
        if let (false, Some(e), Some(row)) = (d.force, &endpoint, &attempt.deployment)
            && row.version == version
            && row.verified
            && let Ok(Check::Served(served)) = self.check_once(e, &material).await
        {
            return self.delivery_unchanged(&attempt, &material, &served);
        }

        if let Err(e) = target.deployer.deliver(&material).await {
            let why = format!("target {}: {}", attempt.target, e.message);
            return self.delivery_failed(&attempt, why, e.kind, None);
        }
        attempt.now = self.clock.now_ms();
        match endpoint {
            None => self.delivery_succeeded(&attempt, target, &material, None),
            Some(e) => match self.check_served(&e, &material).await {
                Check::Served(served) => {
                    attempt.now = self.clock.now_ms();
                    self.delivery_succeeded(&attempt, target, &material, Some(&served))
                }
                Check::Other(served, why) => {
                    attempt.now = self.clock.now_ms();
                    let why = format!("target {}: delivered but not served: {why}", attempt.target);
                    self.delivery_failed(
                        &attempt,
                        why,
                        DeliveryErrorKind::Transient,
                        Some((&material, served)),
                    )
                }
            },
        }
    }

    /// The material of `cert`'s current version, or why it cannot be delivered.
    fn material(
        &self,
        cert: &CertificateRecord,
        context: DeliveryContext,
    ) -> Result<Material, String> {
        let Some(issued) = cert.issued.as_ref().filter(|_| cert.status.is_deployable()) else {
            return Err(format!(
                "the certificate is {} and cannot be pushed",
                cert.status
            ));
        };
        let Some(sealed) = &issued.private_key_sealed else {
            return Err(
                "OpenSCM does not hold the private key of this certificate (it was \
                        issued from your CSR)"
                    .to_owned(),
            );
        };
        let version = cert.lifecycle.current_version.unwrap_or(1);
        let key_pem = self.open_key(&cert.id, version, sealed).map_err(|e| {
            tracing::error!(cert = %cert.id, error = %e, "cannot open a certificate key for a push");
            "the certificate's private key cannot be opened".to_owned()
        })?;
        crate::deploy::material(&cert.id, version, issued, key_pem, context)
    }

    /// A job queued by an earlier release for several targets: replaced by one job per target
    /// (those still configured), queued with this job's end.
    async fn split_legacy(
        &self,
        cert_id: &CertificateId,
        account: &DomainId,
        d: &DeliverJob,
    ) -> Attempt {
        let cert = match self.store.certificate(cert_id).await {
            Ok(Some(c)) if &c.domain_id == account => c,
            Ok(_) => return permanent(format!("certificate {cert_id} no longer exists")),
            Err(e) => return store_unavailable(&e),
        };
        let targets: Vec<&PushTarget> = self
            .config
            .push_targets
            .iter()
            .filter(|t| d.targets.contains(&t.name) && &t.account == account)
            .collect();
        let Some(service) = crate::deploy::PushService::parse(&d.service) else {
            return permanent(format!(
                "deliver job names an unknown service {:?}",
                d.service
            ));
        };
        match self.delivery_jobs(&cert, service, d.region.clone(), &targets, d.force) {
            Ok(jobs) => Attempt::Done {
                effects: jobs
                    .into_iter()
                    .map(|(_, j)| JobEffect::Enqueue(j))
                    .collect(),
            },
            Err(e) => permanent(format!("the push can no longer be delivered: {e}")),
        }
    }

    fn delivery_unchanged(
        &self,
        a: &DeliveryAttempt<'_>,
        m: &Material,
        served: &Served,
    ) -> Attempt {
        tracing::info!(cert = %a.cert.id, target = %a.target, version = a.version, "the target already serves this version");
        let record = a.record(
            PushOutcome::Unchanged,
            format!("{}: already served", a.target),
            true,
            Some(served.serial_hex.clone()),
        );
        Attempt::Done {
            effects: vec![
                JobEffect::RecordPush(record),
                JobEffect::Deployment(DeploymentChange::Delivered {
                    cert_id: a.cert.id.clone(),
                    target: a.target.clone(),
                    domain_id: a.cert.domain_id.clone(),
                    version: a.version,
                    sha256: m.facts.sha256_fingerprint.clone(),
                    verified: true,
                    served_serial: Some(served.serial_hex.clone()),
                    at_ms: a.now,
                }),
            ],
        }
    }

    fn delivery_succeeded(
        &self,
        a: &DeliveryAttempt<'_>,
        target: &PushTarget,
        m: &Material,
        served: Option<&Served>,
    ) -> Attempt {
        let verified = served.is_some();
        let serial = served.map(|s| s.serial_hex.clone());
        tracing::info!(cert = %a.cert.id, target = %a.target, kind = target.kind, version = a.version, verified, "certificate delivered");
        self.cache.forget_certificate(&a.cert.domain_id, &a.cert.id);
        let detail = if verified {
            format!("{}: ok, served", a.target)
        } else {
            format!("{}: ok", a.target)
        };
        let record = a.record(PushOutcome::Success, detail, verified, serial.clone());
        Attempt::Done {
            effects: vec![
                JobEffect::RecordPush(record),
                JobEffect::Deployment(DeploymentChange::Delivered {
                    cert_id: a.cert.id.clone(),
                    target: a.target.clone(),
                    domain_id: a.cert.domain_id.clone(),
                    version: a.version,
                    sha256: m.facts.sha256_fingerprint.clone(),
                    verified,
                    served_serial: serial,
                    at_ms: a.now,
                }),
            ],
        }
    }

    /// A failed attempt: recorded; `not_served` (the material and what was served) when the
    /// target took it but does not serve it, told to the account when first seen; the account
    /// is told `push_failed` when the delivery is given up.
    fn delivery_failed(
        &self,
        a: &DeliveryAttempt<'_>,
        message: String,
        kind: DeliveryErrorKind,
        not_served: Option<(&Material, Option<Served>)>,
    ) -> Attempt {
        tracing::warn!(cert = %a.cert.id, target = %a.target, attempt = a.job.attempts, error = %message, "delivery failed");
        let transient = kind.is_transient();
        let served_serial = not_served
            .as_ref()
            .and_then(|(_, s)| s.as_ref().map(|s| s.serial_hex.clone()));
        let mut effects = vec![
            JobEffect::RecordPush(a.record(
                PushOutcome::Failure,
                message.clone(),
                false,
                served_serial,
            )),
            JobEffect::Deployment(DeploymentChange::Failed {
                cert_id: a.cert.id.clone(),
                target: a.target.clone(),
                domain_id: a.cert.domain_id.clone(),
                version: a.version,
                not_served: not_served.is_some(),
                error: message.clone(),
                at_ms: a.now,
            }),
        ];
        let told_already = a
            .deployment
            .as_ref()
            .is_some_and(|r| r.failing_version == Some(a.version) && r.not_served);
        if let Some((m, served)) = not_served
            && !told_already
        {
            let n = Notification {
                account: a.cert.domain_id.to_string(),
                at_ms: a.now,
                event: Event::NotServed {
                    certificate_id: a.cert.id.to_string(),
                    name: a.cert.name.clone(),
                    target: a.target.clone(),
                    version: a.version,
                    expected_sha256: m.facts.sha256_fingerprint.clone(),
                    served_sha256: served.map(|s| s.sha256_fingerprint),
                    error: message.clone(),
                },
            };
            effects.extend(self.notify_jobs(&a.cert.domain_id, &n, a.now));
        }
        if crate::jobs::is_last_attempt(a.job, transient) {
            effects.extend(self.push_failed_notifications(
                &a.cert.domain_id,
                &a.cert.id,
                &a.cert.name,
                a.d,
                &message,
                a.job.attempts,
            ));
        }
        Attempt::Failed {
            message,
            transient,
            effects,
        }
    }
}

/// One delivery attempt's facts, for its records.
struct DeliveryAttempt<'a> {
    job: &'a JobRecord,
    d: &'a DeliverJob,
    cert: &'a CertificateRecord,
    target: String,
    version: u32,
    deployment: Option<DeploymentRecord>,
    now: i64,
}

impl DeliveryAttempt<'_> {
    fn record(
        &self,
        outcome: PushOutcome,
        detail: String,
        verified: bool,
        served_serial: Option<String>,
    ) -> PushRecord {
        PushRecord {
            cert_id: self.cert.id.clone(),
            domain_id: self.cert.domain_id.clone(),
            pushed_ms: self.now,
            service: self.d.service.clone(),
            region: self.d.region.clone(),
            outcome,
            detail,
            targets: self.target.clone(),
            version: Some(self.version),
            verified,
            served_serial,
            attempt: self.job.attempts,
        }
    }
}

fn store_unavailable(e: &dyn std::fmt::Display) -> Attempt {
    crate::jobs::store_unavailable("delivery", e)
}
