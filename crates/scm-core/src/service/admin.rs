//! Administration (the CLI): accounts, projects, credentials, issuance policies and jobs.

use scm_proto::{AccessKeyId, DomainId, ProjectId};
use scm_sign::SecretKey;
use scm_store::{
    AccountRecord, CaRole, CredentialRecord, CredentialStatus, JobRecord, JobState, ProjectRecord,
    StoreError,
};

use crate::bootstrap::seal_secret;
use crate::issuance::{DEFAULT_POLICY, new_ca, tenant_ca_name};
use crate::{DomainError, random};

use super::revocation::crl_job;
use super::{NewCredential, Scm};

impl Scm {
    /// Creates an account with one project named `default`, the default issuance policy and a CA
    /// of its own (in the same transaction), whose CRL is signed by a `crl` job queued now.
    pub async fn create_account(
        &self,
        name: &str,
    ) -> Result<(AccountRecord, ProjectRecord), DomainError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 64 {
            return Err(DomainError::invalid("name", "must be 1 to 64 characters"));
        }
        let now_ms = self.clock.now_ms();
        let account = AccountRecord {
            domain_id: random::domain_id()?,
            name: name.into(),
            policy: DEFAULT_POLICY.into(),
            renew_remaining_permille: None,
            created_ms: now_ms,
        };
        let project = ProjectRecord {
            project_id: random::project_id()?,
            domain_id: account.domain_id.clone(),
            name: "default".into(),
            created_ms: now_ms,
        };
        let ca = new_ca(
            &self.master,
            CaRole::Tenant,
            Some(&account.domain_id),
            &tenant_ca_name(&account.domain_id, name),
            self.clock.now(),
        )
        .await?;
        match self
            .store
            .create_account_with_ca(&account, &project, &ca)
            .await
        {
            Ok(()) => {
                self.store.enqueue(&crl_job(&ca.id, now_ms)?).await?;
                Ok((account, project))
            }
            Err(StoreError::Conflict(_)) => Err(DomainError::invalid(
                "name",
                "an account with this name exists",
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// All accounts, oldest first.
    pub async fn accounts(&self) -> Result<Vec<AccountRecord>, DomainError> {
        Ok(self.store.accounts().await?)
    }

    /// The projects of an account, oldest first.
    pub async fn projects(&self, account: &DomainId) -> Result<Vec<ProjectRecord>, DomainError> {
        Ok(self.store.projects(account).await?)
    }

    /// Jobs, newest first, optionally only those in `state`.
    pub async fn jobs(
        &self,
        state: Option<JobState>,
        limit: u32,
    ) -> Result<Vec<JobRecord>, DomainError> {
        Ok(self.store.jobs(state, limit).await?)
    }

    /// Creates another project in an account.
    pub async fn create_project(
        &self,
        account: &DomainId,
        name: &str,
    ) -> Result<ProjectRecord, DomainError> {
        self.store
            .account(account)
            .await?
            .ok_or_else(|| DomainError::invalid("account", "no such account"))?;
        let project = ProjectRecord {
            project_id: random::project_id()?,
            domain_id: account.clone(),
            name: name.trim().into(),
            created_ms: self.clock.now_ms(),
        };
        match self.store.create_project(&project).await {
            Ok(()) => Ok(project),
            Err(StoreError::Conflict(_)) => Err(DomainError::invalid(
                "name",
                "a project with this name exists",
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates an AK/SK credential for an account (default project unless one is given).
    pub async fn create_credential(
        &self,
        account: &DomainId,
        project: Option<&ProjectId>,
        description: &str,
    ) -> Result<NewCredential, DomainError> {
        let projects = self.store.projects(account).await?;
        let project_id = match project {
            Some(p) => projects
                .iter()
                .find(|x| &x.project_id == p)
                .map(|x| x.project_id.clone()),
            None => projects.first().map(|x| x.project_id.clone()),
        }
        .ok_or_else(|| DomainError::invalid("account", "no such account or project"))?;
        let access_key = random::access_key()?;
        let secret_key = SecretKey::new(random::secret_key()?);
        let rec = CredentialRecord {
            access_key: access_key.clone(),
            domain_id: account.clone(),
            project_id: project_id.clone(),
            secret_sealed: seal_secret(&self.master, &access_key, &secret_key)?,
            status: CredentialStatus::Active,
            description: description.into(),
            created_ms: self.clock.now_ms(),
            revoked_ms: None,
        };
        self.store.insert_credential(&rec).await?;
        self.cache.forget_credential(&access_key);
        Ok(NewCredential {
            access_key,
            secret_key,
            domain_id: account.clone(),
            project_id,
        })
    }

    /// Credentials (without secrets).
    pub async fn credentials(
        &self,
        account: Option<&DomainId>,
    ) -> Result<Vec<CredentialRecord>, DomainError> {
        Ok(self.store.credentials(account).await?)
    }

    /// Revokes a credential; `false` if unknown or already revoked.
    pub async fn revoke_credential(&self, ak: &AccessKeyId) -> Result<bool, DomainError> {
        let done = self
            .store
            .revoke_credential(ak, self.clock.now_ms())
            .await?;
        self.cache.forget_credential(ak);
        Ok(done)
    }

    /// Replaces an account's issuance policy (`;`-separated domain suffixes such as `.test` or
    /// `example.com`; anything else is refused, naming the entry).
    pub async fn set_policy(&self, account: &DomainId, policy: &str) -> Result<bool, DomainError> {
        let policy = crate::issuance::normalise_policy(policy)?;
        let done = self.store.set_policy(account, &policy).await?;
        self.cache.forget_account(account);
        Ok(done)
    }
}
