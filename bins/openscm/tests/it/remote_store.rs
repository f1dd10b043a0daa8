//! A store that answers like a database across a network: every call waits `latency` before it
//! goes to the real one. It makes a database round trip stand out of the noise of a loaded
//! machine, so that a test can tell by the clock whether a request went to the database.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use scm_proto::{AccessKeyId, CertificateId, CertificateStatus, DomainId, ProjectId};
use scm_store::{
    AccountRecord, Accounts, ApplicationRecord, Backend, Bootstrap, CaRecord, CertificateRecord,
    CertificateTag, Certificates, CredentialRecord, CredentialStatus, DueReminder, IssuedRecord,
    JobEffect, JobId, JobLease, JobOutcome, JobRecord, JobState, Jobs, ListQuery, Meta,
    NewCertificate, NewJob, Notices, OrderRecord, ProjectRecord, PushRecord, Pushes, Quotas,
    Result, Revisions, Store, TagRecord, Tags, TokenRecord,
};
// --- csr ---
use scm_proto::CsrId;
use scm_store::{CsrQuery, CsrRecord, Csrs, DeploymentRecord, Deployments};

/// `inner`, `latency` further away.
pub struct RemoteStore {
    inner: Arc<dyn Store>,
    latency: Duration,
}

impl RemoteStore {
    pub fn new(inner: Arc<dyn Store>, latency: Duration) -> Self {
        Self { inner, latency }
    }

    async fn wire(&self) {
        tokio::time::sleep(self.latency).await;
    }
}

#[async_trait]
impl Meta for RemoteStore {
    async fn bootstrap(&self, b: &Bootstrap) -> Result<bool> {
        self.wire().await;
        self.inner.bootstrap(b).await
    }
    async fn is_bootstrapped(&self) -> Result<bool> {
        self.wire().await;
        self.inner.is_bootstrapped().await
    }
    async fn revisions(&self) -> Result<Revisions> {
        self.wire().await;
        self.inner.revisions().await
    }
    async fn meta(&self, key: &str) -> Result<Option<String>> {
        self.wire().await;
        self.inner.meta(key).await
    }
    async fn init_meta(&self, key: &str, value: &str) -> Result<String> {
        self.wire().await;
        self.inner.init_meta(key, value).await
    }
    async fn ca(&self) -> Result<Option<CaRecord>> {
        self.wire().await;
        self.inner.ca().await
    }
}

#[async_trait]
impl Accounts for RemoteStore {
    async fn create_account(&self, account: &AccountRecord, project: &ProjectRecord) -> Result<()> {
        self.wire().await;
        self.inner.create_account(account, project).await
    }
    async fn create_project(&self, project: &ProjectRecord) -> Result<()> {
        self.wire().await;
        self.inner.create_project(project).await
    }
    async fn account(&self, id: &DomainId) -> Result<Option<AccountRecord>> {
        self.wire().await;
        self.inner.account(id).await
    }
    async fn accounts(&self) -> Result<Vec<AccountRecord>> {
        self.wire().await;
        self.inner.accounts().await
    }
    async fn project(&self, id: &ProjectId) -> Result<Option<ProjectRecord>> {
        self.wire().await;
        self.inner.project(id).await
    }
    async fn projects(&self, account: &DomainId) -> Result<Vec<ProjectRecord>> {
        self.wire().await;
        self.inner.projects(account).await
    }
    async fn set_policy(&self, account: &DomainId, policy: &str) -> Result<bool> {
        self.wire().await;
        self.inner.set_policy(account, policy).await
    }
    async fn insert_credential(&self, c: &CredentialRecord) -> Result<()> {
        self.wire().await;
        self.inner.insert_credential(c).await
    }
    async fn credential(&self, ak: &AccessKeyId) -> Result<Option<CredentialRecord>> {
        self.wire().await;
        self.inner.credential(ak).await
    }
    async fn credentials(&self, account: Option<&DomainId>) -> Result<Vec<CredentialRecord>> {
        self.wire().await;
        self.inner.credentials(account).await
    }
    async fn revoke_credential(&self, ak: &AccessKeyId, now_ms: i64) -> Result<bool> {
        self.wire().await;
        self.inner.revoke_credential(ak, now_ms).await
    }
    async fn insert_token(&self, t: &TokenRecord, max_live: u32) -> Result<()> {
        self.wire().await;
        self.inner.insert_token(t, max_live).await
    }
    async fn purge_expired_tokens(&self, now_ms: i64) -> Result<u64> {
        self.wire().await;
        self.inner.purge_expired_tokens(now_ms).await
    }
    async fn delete_token(&self, token_hash: &str) -> Result<bool> {
        self.wire().await;
        self.inner.delete_token(token_hash).await
    }
    async fn token(&self, token_hash: &str) -> Result<Option<(TokenRecord, CredentialStatus)>> {
        self.wire().await;
        self.inner.token(token_hash).await
    }
    async fn set_renewal_policy(&self, account: &DomainId, permille: Option<u32>) -> Result<bool> {
        self.wire().await;
        self.inner.set_renewal_policy(account, permille).await
    }
}

#[async_trait]
impl Certificates for RemoteStore {
    async fn create_order(
        &self,
        order: &OrderRecord,
        template: &NewCertificate,
        count: u32,
        now_ms: i64,
        max_lead_ms: Option<i64>,
        quotas: &Quotas,
    ) -> Result<Vec<CertificateId>> {
        self.wire().await;
        self.inner
            .create_order(order, template, count, now_ms, max_lead_ms, quotas)
            .await
    }
    async fn certificate(&self, id: &CertificateId) -> Result<Option<CertificateRecord>> {
        self.wire().await;
        self.inner.certificate(id).await
    }
    async fn certificate_of(
        &self,
        account: &DomainId,
        id: &CertificateId,
    ) -> Result<Option<CertificateRecord>> {
        self.wire().await;
        self.inner.certificate_of(account, id).await
    }
    async fn list_certificates(
        &self,
        account: &DomainId,
        q: &ListQuery,
    ) -> Result<(Vec<CertificateRecord>, u64)> {
        self.wire().await;
        self.inner.list_certificates(account, q).await
    }
    async fn save_application(
        &self,
        id: &CertificateId,
        expect: CertificateStatus,
        app: &ApplicationRecord,
        now_ms: i64,
    ) -> Result<bool> {
        self.wire().await;
        self.inner.save_application(id, expect, app, now_ms).await
    }
    async fn mark_issued(
        &self,
        id: &CertificateId,
        expect: CertificateStatus,
        app: &ApplicationRecord,
        issued: &IssuedRecord,
        now_ms: i64,
    ) -> Result<bool> {
        self.wire().await;
        self.inner
            .mark_issued(id, expect, app, issued, now_ms)
            .await
    }
    async fn add_version(&self, version: scm_store::NewVersion) -> Result<bool> {
        self.wire().await;
        self.inner.add_version(version).await
    }
}

#[async_trait]
impl Pushes for RemoteStore {
    async fn record_push(&self, rec: &PushRecord) -> Result<()> {
        self.wire().await;
        self.inner.record_push(rec).await
    }
    async fn push_history(
        &self,
        cert: &CertificateId,
        limit: u32,
        successful_only: bool,
    ) -> Result<Vec<PushRecord>> {
        self.wire().await;
        self.inner.push_history(cert, limit, successful_only).await
    }
}

#[async_trait]
impl Deployments for RemoteStore {
    async fn deployments(&self, cert: &CertificateId) -> Result<Vec<DeploymentRecord>> {
        self.wire().await;
        self.inner.deployments(cert).await
    }
    async fn deployments_to_check(
        &self,
        checked_before_ms: i64,
        limit: u32,
    ) -> Result<Vec<DeploymentRecord>> {
        self.wire().await;
        self.inner
            .deployments_to_check(checked_before_ms, limit)
            .await
    }
}

#[async_trait]
impl Tags for RemoteStore {
    async fn tags_of(&self, cert: &CertificateId) -> Result<Vec<TagRecord>> {
        self.wire().await;
        self.inner.tags_of(cert).await
    }
    async fn put_tags(
        &self,
        account: &DomainId,
        cert: &CertificateId,
        tags: &[TagRecord],
        max: u32,
        now_ms: i64,
    ) -> Result<bool> {
        self.wire().await;
        self.inner.put_tags(account, cert, tags, max, now_ms).await
    }
    async fn delete_tags(&self, cert: &CertificateId, keys: &[String]) -> Result<()> {
        self.wire().await;
        self.inner.delete_tags(cert, keys).await
    }
    async fn account_tags(&self, account: &DomainId) -> Result<Vec<CertificateTag>> {
        self.wire().await;
        self.inner.account_tags(account).await
    }
    async fn certificate_names(&self, account: &DomainId) -> Result<Vec<(CertificateId, String)>> {
        self.wire().await;
        self.inner.certificate_names(account).await
    }
}

#[async_trait]
impl Notices for RemoteStore {
    async fn set_notices(
        &self,
        account: &DomainId,
        entries: &[(CertificateId, String)],
        enabled: bool,
        now_ms: i64,
    ) -> Result<bool> {
        self.wire().await;
        self.inner
            .set_notices(account, entries, enabled, now_ms)
            .await
    }
    async fn disabled_notices(&self, cert: &CertificateId) -> Result<Vec<String>> {
        self.wire().await;
        self.inner.disabled_notices(cert).await
    }
    async fn due_reminders(&self, now_ms: i64, limit: u32) -> Result<Vec<DueReminder>> {
        self.wire().await;
        self.inner.due_reminders(now_ms, limit).await
    }
}

#[async_trait]
impl Jobs for RemoteStore {
    async fn hasten(&self, id: JobId, now_ms: i64) -> Result<bool> {
        self.wire().await;
        self.inner.hasten(id, now_ms).await
    }
    async fn enqueue(&self, job: &NewJob) -> Result<JobId> {
        self.wire().await;
        self.inner.enqueue(job).await
    }
    async fn claim(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<JobRecord>> {
        self.wire().await;
        self.inner.claim(owner, now_ms, lease_ms, limit).await
    }
    async fn claim_one(
        &self,
        id: JobId,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<JobRecord>> {
        self.wire().await;
        self.inner.claim_one(id, owner, now_ms, lease_ms).await
    }
    async fn renew_lease(&self, lease: &JobLease, lease_ms: i64) -> Result<bool> {
        self.wire().await;
        self.inner.renew_lease(lease, lease_ms).await
    }
    async fn finish(
        &self,
        lease: &JobLease,
        outcome: &JobOutcome,
        effects: &[JobEffect],
        now_ms: i64,
    ) -> Result<bool> {
        self.wire().await;
        self.inner.finish(lease, outcome, effects, now_ms).await
    }
    async fn release(&self, lease: &JobLease, now_ms: i64) -> Result<bool> {
        self.wire().await;
        self.inner.release(lease, now_ms).await
    }
    async fn job(&self, id: JobId) -> Result<Option<JobRecord>> {
        self.wire().await;
        self.inner.job(id).await
    }
    async fn jobs(&self, state: Option<JobState>, limit: u32) -> Result<Vec<JobRecord>> {
        self.wire().await;
        self.inner.jobs(state, limit).await
    }
    async fn purge_finished(&self, before_ms: i64) -> Result<u64> {
        self.wire().await;
        self.inner.purge_finished(before_ms).await
    }
    async fn watch_enqueued(&self, wake: &(dyn Fn() + Send + Sync)) -> Result<()> {
        // A subscription, not a round trip.
        self.inner.watch_enqueued(wake).await
    }
}

impl Store for RemoteStore {
    fn backend(&self) -> Backend {
        self.inner.backend()
    }
}

#[async_trait]
impl scm_store::Lifecycle for RemoteStore {
    async fn delete_certificate(
        &self,
        account: &DomainId,
        id: &CertificateId,
        expect: CertificateStatus,
    ) -> Result<bool> {
        self.wire().await;
        self.inner.delete_certificate(account, id, expect).await
    }
}

// --- csr ---
#[async_trait]
impl Csrs for RemoteStore {
    async fn insert_csr(&self, rec: &CsrRecord, max_per_account: u64) -> Result<()> {
        self.wire().await;
        self.inner.insert_csr(rec, max_per_account).await
    }
    async fn csr_of(&self, account: &DomainId, id: &CsrId) -> Result<Option<CsrRecord>> {
        self.wire().await;
        self.inner.csr_of(account, id).await
    }
    async fn list_csrs(&self, account: &DomainId, q: &CsrQuery) -> Result<(Vec<CsrRecord>, u64)> {
        self.wire().await;
        self.inner.list_csrs(account, q).await
    }
    async fn rename_csr(
        &self,
        account: &DomainId,
        id: &CsrId,
        name: &str,
        now_ms: i64,
    ) -> Result<bool> {
        self.wire().await;
        self.inner.rename_csr(account, id, name, now_ms).await
    }
    async fn delete_csr(&self, account: &DomainId, id: &CsrId) -> Result<bool> {
        self.wire().await;
        self.inner.delete_csr(account, id).await
    }
    async fn keyed_csrs_for(
        &self,
        account: &DomainId,
        domain_name: &str,
    ) -> Result<Vec<CsrRecord>> {
        self.wire().await;
        self.inner.keyed_csrs_for(account, domain_name).await
    }
}

// --- import ---
#[async_trait]
impl scm_store::Imports for RemoteStore {
    async fn allocate_certificate_id(&self, now_ms: i64) -> Result<CertificateId> {
        self.wire().await;
        self.inner.allocate_certificate_id(now_ms).await
    }
    async fn import_certificate(
        &self,
        order: &OrderRecord,
        cert: &CertificateRecord,
        quotas: &Quotas,
        duplicate_check: bool,
    ) -> Result<scm_store::ImportOutcome> {
        self.wire().await;
        self.inner
            .import_certificate(order, cert, quotas, duplicate_check)
            .await
    }
}

// --- console ---
#[async_trait]
impl scm_store::Console for RemoteStore {
    async fn expiry_histogram(
        &self,
        account: &DomainId,
        from_ms: i64,
        week_ms: i64,
        weeks: u32,
    ) -> Result<Vec<u64>> {
        self.wire().await;
        self.inner
            .expiry_histogram(account, from_ms, week_ms, weeks)
            .await
    }
    async fn latest_expiry(&self, account: &DomainId) -> Result<Option<i64>> {
        self.wire().await;
        self.inner.latest_expiry(account).await
    }
}

// --- audit ---
#[async_trait]
impl scm_store::Audit for RemoteStore {
    async fn append_audit(&self, events: &[scm_store::AuditEvent]) -> Result<()> {
        self.wire().await;
        self.inner.append_audit(events).await
    }
    async fn audit_events(&self, q: &scm_store::AuditQuery) -> Result<Vec<scm_store::AuditEvent>> {
        self.wire().await;
        self.inner.audit_events(q).await
    }
    async fn prune_audit(&self, before_ms: i64) -> Result<u64> {
        self.wire().await;
        self.inner.prune_audit(before_ms).await
    }
}

#[async_trait]
impl scm_store::Stats for RemoteStore {
    async fn stats(&self, now_ms: i64) -> Result<scm_store::StoreStats> {
        self.wire().await;
        self.inner.stats(now_ms).await
    }
    async fn ping(&self) -> Result<()> {
        self.wire().await;
        self.inner.ping().await
    }
}

// --- revocation ---
#[async_trait]
impl scm_store::Revocations for RemoteStore {
    async fn revoke_certificate(
        &self,
        r: &scm_store::NewRevocation,
        crl_job: &NewJob,
    ) -> Result<bool> {
        self.wire().await;
        self.inner.revoke_certificate(r, crl_job).await
    }
    async fn crl_inputs(&self, ca_id: &str, now_ms: i64) -> Result<scm_store::CrlInputs> {
        self.wire().await;
        self.inner.crl_inputs(ca_id, now_ms).await
    }
    async fn crl(&self, ca_id: &str) -> Result<Option<scm_store::CrlRecord>> {
        self.wire().await;
        self.inner.crl(ca_id).await
    }
}

// --- tenant ca ---
#[async_trait]
impl scm_store::Cas for RemoteStore {
    async fn insert_ca(&self, ca: &scm_store::StoredCa) -> Result<bool> {
        self.wire().await;
        self.inner.insert_ca(ca).await
    }
    async fn create_account_with_ca(
        &self,
        account: &AccountRecord,
        project: &ProjectRecord,
        ca: &scm_store::StoredCa,
    ) -> Result<()> {
        self.wire().await;
        self.inner
            .create_account_with_ca(account, project, ca)
            .await
    }
    async fn live_ca(
        &self,
        role: scm_store::CaRole,
        account: Option<&DomainId>,
    ) -> Result<Option<scm_store::StoredCa>> {
        self.wire().await;
        self.inner.live_ca(role, account).await
    }
    async fn ca_by_id(&self, id: &str) -> Result<Option<scm_store::StoredCa>> {
        self.wire().await;
        self.inner.ca_by_id(id).await
    }
    async fn cas_of_account(&self, account: &DomainId) -> Result<Vec<scm_store::StoredCa>> {
        self.wire().await;
        self.inner.cas_of_account(account).await
    }
    async fn cas_of_role(&self, role: scm_store::CaRole) -> Result<Vec<scm_store::StoredCa>> {
        self.wire().await;
        self.inner.cas_of_role(role).await
    }
    async fn crl_ca_ids(&self, now_ms: i64) -> Result<Vec<String>> {
        self.wire().await;
        self.inner.crl_ca_ids(now_ms).await
    }
    async fn retire_shared_ca(&self, ca: &scm_store::StoredCa) -> Result<()> {
        self.wire().await;
        self.inner.retire_shared_ca(ca).await
    }
}

#[async_trait]
impl scm_store::Versions for RemoteStore {
    async fn versions(&self, id: &CertificateId) -> Result<Vec<scm_store::VersionRecord>> {
        self.wire().await;
        self.inner.versions(id).await
    }
    async fn version(
        &self,
        id: &CertificateId,
        seq: u32,
    ) -> Result<Option<scm_store::VersionRecord>> {
        self.wire().await;
        self.inner.version(id, seq).await
    }
    async fn events(&self, id: &CertificateId, limit: u32) -> Result<Vec<scm_store::EventRecord>> {
        self.wire().await;
        self.inner.events(id, limit).await
    }
    async fn record_event(
        &self,
        id: &CertificateId,
        now_ms: i64,
        event: &scm_store::NewEvent,
    ) -> Result<()> {
        self.wire().await;
        self.inner.record_event(id, now_ms, event).await
    }
    async fn start_validation(
        &self,
        id: &CertificateId,
        expect: CertificateStatus,
        to: CertificateStatus,
        application: Option<&ApplicationRecord>,
        event: &scm_store::NewEvent,
        job: Option<&NewJob>,
        now_ms: i64,
    ) -> Result<bool> {
        self.wire().await;
        self.inner
            .start_validation(id, expect, to, application, event, job, now_ms)
            .await
    }
    async fn end_validation(
        &self,
        id: &CertificateId,
        end: &scm_store::EndValidation,
    ) -> Result<bool> {
        self.wire().await;
        self.inner.end_validation(id, end).await
    }
    async fn transition(
        &self,
        id: &CertificateId,
        expect: CertificateStatus,
        to: CertificateStatus,
        event: &scm_store::NewEvent,
        now_ms: i64,
    ) -> Result<bool> {
        self.wire().await;
        self.inner.transition(id, expect, to, event, now_ms).await
    }
    async fn queue_due_renewals(
        &self,
        now_ms: i64,
        limit: u32,
        next_check_ms: i64,
        make: &(dyn for<'c> Fn(&'c CertificateId, u32) -> NewJob + Send + Sync),
    ) -> Result<Vec<scm_store::QueuedRenewal>> {
        self.wire().await;
        self.inner
            .queue_due_renewals(now_ms, limit, next_check_ms, make)
            .await
    }
    async fn postpone_renewal(&self, id: &CertificateId, seq: u32, at_ms: i64) -> Result<bool> {
        self.wire().await;
        self.inner.postpone_renewal(id, seq, at_ms).await
    }
    async fn set_auto_renew(
        &self,
        id: &CertificateId,
        on: bool,
        event: &scm_store::NewEvent,
        now_ms: i64,
    ) -> Result<bool> {
        self.wire().await;
        self.inner.set_auto_renew(id, on, event, now_ms).await
    }
    async fn renewals_due(&self, now_ms: i64) -> Result<u64> {
        self.wire().await;
        self.inner.renewals_due(now_ms).await
    }
}

#[async_trait]
impl scm_store::Validations for RemoteStore {
    async fn validation_records(
        &self,
        account: &DomainId,
        names: &[String],
        make_value: &(dyn Fn() -> String + Send + Sync),
        now_ms: i64,
    ) -> Result<Vec<scm_store::ValidationRecord>> {
        self.wire().await;
        self.inner
            .validation_records(account, names, make_value, now_ms)
            .await
    }
    async fn validation_file(&self, name: &str, prefix: &str) -> Result<Option<String>> {
        self.wire().await;
        self.inner.validation_file(name, prefix).await
    }
    async fn record_check(
        &self,
        account: &DomainId,
        name: &str,
        result: &scm_store::CheckResult,
        now_ms: i64,
    ) -> Result<()> {
        self.wire().await;
        self.inner.record_check(account, name, result, now_ms).await
    }
}

// --- acme ---
#[async_trait]
impl scm_store::Acme for RemoteStore {
    async fn acme_account(&self, issuer: &str) -> Result<Option<scm_store::AcmeAccountRecord>> {
        self.wire().await;
        self.inner.acme_account(issuer).await
    }
    async fn insert_acme_account(&self, issuer: &str, sealed: &[u8], now_ms: i64) -> Result<bool> {
        self.wire().await;
        self.inner.insert_acme_account(issuer, sealed, now_ms).await
    }
    async fn delete_acme_account(&self, issuer: &str) -> Result<()> {
        self.wire().await;
        self.inner.delete_acme_account(issuer).await
    }
    async fn pause_acme_account(
        &self,
        issuer: &str,
        until_ms: Option<i64>,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<()> {
        self.wire().await;
        self.inner
            .pause_acme_account(issuer, until_ms, reason, now_ms)
            .await
    }
    async fn acme_order(
        &self,
        cert: &CertificateId,
        seq: u32,
    ) -> Result<Option<scm_store::AcmeOrderRecord>> {
        self.wire().await;
        self.inner.acme_order(cert, seq).await
    }
    async fn latest_acme_order(
        &self,
        cert: &CertificateId,
    ) -> Result<Option<scm_store::AcmeOrderRecord>> {
        self.wire().await;
        self.inner.latest_acme_order(cert).await
    }
    async fn insert_acme_order(&self, rec: &scm_store::AcmeOrderRecord) -> Result<bool> {
        self.wire().await;
        self.inner.insert_acme_order(rec).await
    }
    async fn update_acme_order(&self, rec: &scm_store::AcmeOrderRecord) -> Result<bool> {
        self.wire().await;
        self.inner.update_acme_order(rec).await
    }
    async fn take_order_slot(
        &self,
        rec: &scm_store::AcmeOrderRecord,
        max: u32,
        since_ms: i64,
    ) -> Result<scm_store::OrderSlot> {
        self.wire().await;
        self.inner.take_order_slot(rec, max, since_ms).await
    }
    async fn put_acme_token(
        &self,
        token: &str,
        key_authorization: &str,
        cert: &CertificateId,
        expires_ms: i64,
    ) -> Result<()> {
        self.wire().await;
        self.inner
            .put_acme_token(token, key_authorization, cert, expires_ms)
            .await
    }
    async fn acme_token(&self, token: &str, now_ms: i64) -> Result<Option<String>> {
        self.wire().await;
        self.inner.acme_token(token, now_ms).await
    }
    async fn delete_acme_tokens(&self, cert: &CertificateId, now_ms: i64) -> Result<()> {
        self.wire().await;
        self.inner.delete_acme_tokens(cert, now_ms).await
    }
    async fn record_name_failure(
        &self,
        account: &DomainId,
        name: &str,
        now_ms: i64,
        window_ms: i64,
    ) -> Result<scm_store::NameFailures> {
        self.wire().await;
        self.inner
            .record_name_failure(account, name, now_ms, window_ms)
            .await
    }
    async fn clear_name_failures(&self, account: &DomainId, names: &[String]) -> Result<()> {
        self.wire().await;
        self.inner.clear_name_failures(account, names).await
    }
    async fn name_failures(
        &self,
        account: &DomainId,
        names: &[String],
    ) -> Result<Vec<scm_store::NameFailures>> {
        self.wire().await;
        self.inner.name_failures(account, names).await
    }
}
