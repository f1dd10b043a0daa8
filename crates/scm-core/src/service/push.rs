//! Pushes: a push request becomes one durable `deliver` job per matching target (see
//! [`crate::delivery`]); the request waits for each target's first attempt and answers with
//! them, while retries (and a delivery interrupted by a crash) go on in the background, in
//! whichever process claims the job.

use std::sync::Arc;

use scm_proto::CertificateId;
use scm_store::{CertificateRecord, DeploymentRecord, JobId, PushRecord};

use crate::DomainError;
use crate::auth::Principal;
use crate::deploy::{PushService, PushTarget};

use super::Scm;

impl Scm {
    /// Pushes an issued certificate to every configured target of the caller's account for this
    /// service and region (or only to the target named `only`): one delivery per target, each
    /// answered by its first attempt. Every attempt is recorded in the history; a failed attempt
    /// that may pass is retried in the background (the error says so, and when).
    pub async fn push(
        self: &Arc<Self>,
        p: &Principal,
        id: &CertificateId,
        service: PushService,
        region: Option<String>,
    ) -> Result<(), DomainError> {
        let cert = self.certificate(p, id).await?;
        let jobs = self.enqueue_push(&cert, service, region).await?;
        crate::delivery::push_answer(&self.first_attempts(jobs).await?)
    }

    /// Pushes the caller's certificate to one target of the account, by name (CLI, console: a
    /// failed or stale target pushed again without a new issuance).
    pub async fn push_to_target(
        self: &Arc<Self>,
        p: &Principal,
        id: &CertificateId,
        target: &str,
    ) -> Result<(), DomainError> {
        let cert = self.certificate(p, id).await?;
        let t = self
            .config
            .push_targets
            .iter()
            .find(|t| t.name == target && t.account == cert.domain_id)
            .ok_or_else(|| DomainError::UnknownTarget(target.to_owned()))?;
        let jobs = self
            .enqueue_deliveries(&cert, t.service, t.region.clone(), &[t])
            .await?;
        crate::delivery::push_answer(&self.first_attempts(jobs).await?)
    }

    /// Pushes the caller's certificate again to every target it is deployed to that is still
    /// configured (the console's "push again to every target"): one delivery per target, each
    /// answered by its first attempt, as [`Scm::push_to_target`] for each. Refused when the
    /// certificate is deployed nowhere (push it to a target first).
    pub async fn push_to_deployed_targets(
        self: &Arc<Self>,
        p: &Principal,
        id: &CertificateId,
    ) -> Result<(), DomainError> {
        let cert = self.certificate(p, id).await?;
        let deployed = self.store.deployments(&cert.id).await?;
        let targets: Vec<&PushTarget> = deployed
            .iter()
            .filter_map(|d| self.push_target(&cert.domain_id, &d.target))
            .collect();
        if targets.is_empty() {
            return Err(DomainError::invalid(
                "target",
                "the certificate is not deployed to any configured push target",
            ));
        }
        let mut jobs = Vec::new();
        // Targets may differ in service and region: each is queued as its own push names it.
        for t in targets {
            jobs.extend(
                self.enqueue_deliveries(&cert, t.service, t.region.clone(), &[t])
                    .await?,
            );
        }
        crate::delivery::push_answer(&self.first_attempts(jobs).await?)
    }

    /// The names of the push targets configured for `account`, in the configuration's order.
    pub fn push_target_names(&self, account: &scm_proto::DomainId) -> Vec<&str> {
        self.config
            .push_targets
            .iter()
            .filter(|t| &t.account == account)
            .map(|t| t.name.as_str())
            .collect()
    }

    /// The push target of `account` named `name`, if it is configured.
    pub fn push_target(&self, account: &scm_proto::DomainId, name: &str) -> Option<&PushTarget> {
        self.config
            .push_targets
            .iter()
            .find(|t| t.name == name && &t.account == account)
    }

    /// Queues a push of a certificate (of any account) for the job workers, without waiting for
    /// it: the admin CLI's `push`, for operators who re-deliver from a script.
    pub async fn queue_push(
        &self,
        id: &CertificateId,
        service: PushService,
        region: Option<String>,
    ) -> Result<Vec<(String, JobId)>, DomainError> {
        let cert = self
            .store
            .certificate(id)
            .await?
            .ok_or(DomainError::CertificateNotFound)?;
        self.enqueue_push(&cert, service, region).await
    }

    /// Checks that `cert` can be pushed to `service` in `region` and records one delivery per
    /// matching target.
    pub(super) async fn enqueue_push(
        &self,
        cert: &CertificateRecord,
        service: PushService,
        region: Option<String>,
    ) -> Result<Vec<(String, JobId)>, DomainError> {
        let targets: Vec<&PushTarget> = self
            .config
            .push_targets
            .iter()
            .filter(|t| t.matches(&cert.domain_id, service, region.as_deref()))
            .collect();
        self.enqueue_deliveries(cert, service, region, &targets)
            .await
    }

    /// The last 10 successful pushes, newest first.
    pub async fn push_history(
        &self,
        p: &Principal,
        id: &CertificateId,
    ) -> Result<Arc<Vec<PushRecord>>, DomainError> {
        let cert = self.certificate(p, id).await?;
        if let Some(h) = self.cache.history.get(&cert.id) {
            return Ok(h);
        }
        let seen = self.cache.certificates_generation();
        let h = Arc::new(self.store.push_history(&cert.id, 10, true).await?);
        self.cache.put_history(seen, cert.id.clone(), h.clone());
        Ok(h)
    }

    /// Every attempt of every delivery of the caller's certificate (failed ones too), newest
    /// first, up to `limit`: the CLI's and the console's delivery history.
    pub async fn delivery_history(
        &self,
        p: &Principal,
        id: &CertificateId,
        limit: u32,
    ) -> Result<Vec<PushRecord>, DomainError> {
        let cert = self.certificate(p, id).await?;
        Ok(self.store.push_history(&cert.id, limit, false).await?)
    }

    /// Where the caller's certificate is deployed, per target.
    pub async fn deployments_of(
        &self,
        p: &Principal,
        id: &CertificateId,
    ) -> Result<Vec<DeploymentRecord>, DomainError> {
        let cert = self.certificate(p, id).await?;
        Ok(self.store.deployments(&cert.id).await?)
    }
}

/// Refuses a certificate whose status does not allow a push (or that holds no certificate yet).
pub(crate) fn ensure_pushable(cert: &CertificateRecord) -> Result<(), DomainError> {
    if cert.status.is_deployable() && cert.issued.is_some() {
        Ok(())
    } else {
        Err(DomainError::WrongStatus(cert.status))
    }
}
