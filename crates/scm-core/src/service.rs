//! [`Scm`]: the domain operations the API calls, one method per operation.

use std::collections::HashMap;
use std::sync::Arc;

use scm_pki::{MasterKey, PrivateKey};
use scm_proto::v2::PushBody as V2PushBody;
use scm_proto::v3::{ApplicationBody, PurchaseBody, PushBody as V3PushBody};
use scm_proto::{AccessKeyId, CertificateId, CertificateStatus, DomainId, OrderId, ProjectId};
use scm_sign::{Request, SecretKey};
use scm_store::{
    AccountRecord, CertificateRecord, CredentialRecord, CredentialStatus, ListQuery,
    NewCertificate, OrderRecord, ProjectRecord, PushOutcome, PushRecord, SortKey, Store,
    StoreError, TokenRecord,
};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::application::{ApplicationForm, FormKind};
use crate::auth::{self, AuthFailure, AuthMethod, CachedCredential, Principal};
use crate::bootstrap::{open_secret, seal_secret};
use crate::cache::{self, ReadCache};
use crate::deploy::{self, Material, PushService, PushTarget};
use crate::issuance::{self, BuiltinCa, DEFAULT_POLICY, ms};
use crate::purchase::{ApiVersion, PurchaseSpec};
use crate::{Clock, DomainError, random};

/// Settings of the domain layer.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Allowed `X-Sdk-Date` skew (default 15 minutes).
    pub max_skew: time::Duration,
    /// Lifetime of `X-Auth-Token`s (default 24 hours).
    pub token_ttl: time::Duration,
    /// Validity of issued leaves (default 365 days).
    pub leaf_validity: time::Duration,
    /// Where pushes go.
    pub push_targets: Vec<PushTarget>,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            max_skew: time::Duration::minutes(15),
            token_ttl: time::Duration::hours(24),
            leaf_validity: time::Duration::days(365),
            push_targets: Vec::new(),
        }
    }
}

/// A token just issued.
pub struct IssuedToken {
    /// The bearer value (shown once).
    pub token: Zeroizing<String>,
    /// Its record.
    pub record: TokenRecord,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"<redacted>")
            .field("record", &self.record)
            .finish()
    }
}

/// What export returns.
pub struct Export {
    /// Leaf PEM.
    pub certificate: String,
    /// Chain PEM.
    pub chain: String,
    /// Key PEM, when held.
    pub private_key: Option<Zeroizing<String>>,
}

/// A new credential.
#[derive(Debug)]
pub struct NewCredential {
    /// Access key.
    pub access_key: AccessKeyId,
    /// Secret key (shown once).
    pub secret_key: SecretKey,
    /// Account.
    pub domain_id: DomainId,
    /// Project.
    pub project_id: ProjectId,
}

/// The OpenSCM domain service.
pub struct Scm {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    master: Arc<MasterKey>,
    ca: Arc<BuiltinCa>,
    config: CoreConfig,
    cache: Arc<ReadCache>,
    target_locks: HashMap<String, Arc<tokio::sync::Mutex<()>>>,
}

impl std::fmt::Debug for Scm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scm").finish_non_exhaustive()
    }
}

/// Keeps the text of a stored enum value when it is known.
fn is_organisation_validated(cert_type: &str) -> bool {
    cert_type.starts_with("OV_") || cert_type.starts_with("EV_")
}

impl Scm {
    /// Builds the service over a bootstrapped store.
    pub async fn open(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        master: Arc<MasterKey>,
        config: CoreConfig,
    ) -> Result<Self, DomainError> {
        crate::bootstrap::check_master_key(store.as_ref(), &master).await?;
        let rec = store
            .ca()
            .await?
            .ok_or_else(|| DomainError::Internal("the store has no CA: bootstrap first".into()))?;
        let ca = Arc::new(BuiltinCa::load(&rec, &master)?);
        let cache = Arc::new(ReadCache::new());
        let revision = store.revision().await?;
        cache::spawn_poller(Arc::downgrade(&cache), store.clone(), revision);
        let target_locks = config
            .push_targets
            .iter()
            .map(|t| (t.name.clone(), Arc::new(tokio::sync::Mutex::new(()))))
            .collect();
        Ok(Self {
            store,
            clock,
            master,
            ca,
            config,
            cache,
            target_locks,
        })
    }

    /// The root certificate of the built-in CA.
    pub fn ca_root_pem(&self) -> &str {
        self.ca.root_pem()
    }

    /// The store (for the admin CLI).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    // ---- authentication ----------------------------------------------------------------------

    /// Authenticates a request by signature or token, and checks that any `X-Domain-Id` /
    /// `X-Project-Id` it carries belongs to the caller.
    pub async fn authenticate(&self, req: &Request<'_>) -> Result<Principal, DomainError> {
        let principal = match auth::signature_authorization(req)? {
            Some(authz) => self.verify_signature(req, &authz).await?,
            None => match auth::header(req, "x-auth-token")? {
                Some(token) => self.verify_token(token).await?,
                None => return Err(AuthFailure::Missing.into()),
            },
        };
        if let Some(d) = auth::header(req, "x-domain-id")?
            && d.trim() != principal.account.as_str()
        {
            return Err(DomainError::OtherTenant);
        }
        if let Some(p) = auth::header(req, "x-project-id")? {
            self.project_scope(&principal, p.trim()).await?;
        }
        Ok(principal)
    }

    async fn credential(&self, ak: &AccessKeyId) -> Result<Option<CachedCredential>, DomainError> {
        if let Some(c) = self.cache.credentials.get(ak) {
            return Ok(Some(c));
        }
        let seen = self.cache.generation();
        let Some(rec) = self.store.credential(ak).await? else {
            return Ok(None);
        };
        let cached = CachedCredential {
            secret: open_secret(&self.master, ak, &rec.secret_sealed)?,
            account: rec.domain_id,
            project: rec.project_id,
            status: rec.status,
        };
        self.cache.put_credential(seen, ak.clone(), cached.clone());
        Ok(Some(cached))
    }

    async fn account(&self, id: &DomainId) -> Result<Option<Arc<AccountRecord>>, DomainError> {
        if let Some(a) = self.cache.accounts.get(id) {
            return Ok(Some(a));
        }
        let seen = self.cache.generation();
        let Some(rec) = self.store.account(id).await? else {
            return Ok(None);
        };
        let rec = Arc::new(rec);
        self.cache.put_account(seen, rec.clone());
        Ok(Some(rec))
    }

    async fn verify_signature(
        &self,
        req: &Request<'_>,
        authz: &scm_sign::Authorization<'_>,
    ) -> Result<Principal, DomainError> {
        let ak = AccessKeyId::try_from(authz.access_key).map_err(|_| AuthFailure::UnknownKey)?;
        let cred = self.credential(&ak).await?.ok_or(AuthFailure::UnknownKey)?;
        if cred.status != CredentialStatus::Active {
            return Err(AuthFailure::Revoked.into());
        }
        // A JSON body must be covered by the signature.
        if !req.body.is_empty()
            && auth::header(req, "x-sdk-content-sha256")?
                .is_some_and(|v| v.trim() == "UNSIGNED-PAYLOAD")
        {
            return Err(AuthFailure::Malformed.into());
        }
        scm_sign::verify(
            req,
            authz,
            &cred.secret,
            self.clock.now(),
            self.config.max_skew,
        )
        .map_err(|e| DomainError::from(auth::sign_failure(&e)))?;
        Ok(Principal {
            account: cred.account,
            project: cred.project,
            access_key: ak,
            method: AuthMethod::Signature,
        })
    }

    async fn verify_token(&self, token: &str) -> Result<Principal, DomainError> {
        let token = token.trim();
        if !(32..=2_097_152).contains(&token.len()) {
            return Err(AuthFailure::BadToken.into());
        }
        let (rec, status) = self
            .store
            .token(&auth::token_hash(token))
            .await?
            .ok_or(AuthFailure::BadToken)?;
        if status != CredentialStatus::Active {
            return Err(AuthFailure::Revoked.into());
        }
        if self.clock.now_ms() >= rec.expires_ms {
            return Err(AuthFailure::ExpiredToken.into());
        }
        Ok(Principal {
            account: rec.domain_id,
            project: rec.project_id,
            access_key: rec.access_key,
            method: AuthMethod::Token,
        })
    }

    /// Issues an `X-Auth-Token` to a caller authenticated by AK/SK.
    pub async fn create_token(&self, p: &Principal) -> Result<IssuedToken, DomainError> {
        if p.method != AuthMethod::Signature {
            return Err(AuthFailure::Missing.into());
        }
        let token = Zeroizing::new(random::token()?);
        let now = self.clock.now();
        let record = TokenRecord {
            token_hash: auth::token_hash(&token),
            access_key: p.access_key.clone(),
            domain_id: p.account.clone(),
            project_id: p.project.clone(),
            issued_ms: ms(now),
            expires_ms: ms(now + self.config.token_ttl),
        };
        self.store.insert_token(&record).await?;
        Ok(IssuedToken { token, record })
    }

    /// The caller's project named in a v2 path (or `X-Project-Id`); another account's project, or
    /// one that does not exist, is refused alike.
    pub async fn project_scope(&self, p: &Principal, raw: &str) -> Result<ProjectId, DomainError> {
        let id = ProjectId::try_from(raw).map_err(|_| DomainError::OtherTenant)?;
        if id == p.project {
            return Ok(id);
        }
        match self.store.project(&id).await? {
            Some(proj) if proj.domain_id == p.account => Ok(id),
            _ => Err(DomainError::OtherTenant),
        }
    }

    // ---- certificates ------------------------------------------------------------------------

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
                created_ms: ms(now),
            };
            match self
                .store
                .create_order(&order, &template, spec.order_number, ms(now))
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

    async fn status_changed(&self, id: &CertificateId) -> DomainError {
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
            .mark_issued(&cert.id, CertificateStatus::Paid, &rec, &issued, ms(now))
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
            private_key,
        })
    }

    fn open_key(
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
                fullchain_pem: format!(
                    "{}{}",
                    ensure_newline(&issued.certificate_pem),
                    issued.chain_pem
                ),
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

    // ---- administration (CLI) ----------------------------------------------------------------

    /// Creates an account with one project named `default` and the default issuance policy.
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
            created_ms: now_ms,
        };
        let project = ProjectRecord {
            project_id: random::project_id()?,
            domain_id: account.domain_id.clone(),
            name: "default".into(),
            created_ms: now_ms,
        };
        match self.store.create_account(&account, &project).await {
            Ok(()) => Ok((account, project)),
            Err(StoreError::Conflict(_)) => Err(DomainError::invalid(
                "name",
                "an account with this name exists",
            )),
            Err(e) => Err(e.into()),
        }
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

    /// Replaces an account's issuance policy (`;`-separated suffixes).
    pub async fn set_policy(&self, account: &DomainId, policy: &str) -> Result<bool, DomainError> {
        let done = self.store.set_policy(account, policy).await?;
        self.cache.forget_account(account);
        Ok(done)
    }
}

fn ensure_newline(s: &str) -> String {
    if s.ends_with('\n') {
        s.to_owned()
    } else {
        format!("{s}\n")
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

/// Parses the query of `GET /v3/scm/certificates` (`now_ms` anchors `expired_days_since`).
///
/// `expired_days_since=N` leaves out certificates that expired more than N days ago; without the
/// parameter nothing is left out for having expired. `enterprise_project_id` filters unless `all`.
/// `owned_by_self` is accepted: nothing is shared between accounts, so every certificate listed is
/// the caller's own.
pub fn parse_list_query(pairs: &[(String, String)], now_ms: i64) -> Result<ListQuery, DomainError> {
    let mut q = ListQuery {
        status: None,
        content: None,
        deploy_support: false,
        enterprise_project_id: None,
        expired_after_ms: None,
        sort_key: SortKey::UpdateTime,
        ascending: false,
        limit: 10,
        offset: 0,
    };
    let int = |k: &str, v: &str, lo: i64, hi: i64| -> Result<i64, DomainError> {
        v.parse::<i64>()
            .ok()
            .filter(|n| (lo..=hi).contains(n))
            .ok_or_else(|| {
                DomainError::invalid(k, format!("must be an integer between {lo} and {hi}"))
            })
    };
    let boolean = |k: &str, v: &str| -> Result<bool, DomainError> {
        match v {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(DomainError::invalid(k, "must be true or false")),
        }
    };
    for (k, v) in pairs {
        match k.as_str() {
            "limit" => q.limit = u32::try_from(int(k, v, 10, 50)?).unwrap_or(10),
            // Documented max is 100; we accept any item offset (older pages set no max).
            "offset" => q.offset = u32::try_from(int(k, v, 0, 1_000_000)?).unwrap_or(0),
            "sort_dir" => {
                q.ascending = match v.as_str() {
                    "ASC" => true,
                    "DESC" => false,
                    _ => return Err(DomainError::invalid(k, "must be ASC or DESC")),
                }
            }
            "sort_key" => {
                q.sort_key = match v.as_str() {
                    "certExpiredTime" => SortKey::ExpiredTime,
                    "certStatus" => SortKey::Status,
                    "certUpdateTime" => SortKey::UpdateTime,
                    _ => {
                        return Err(DomainError::invalid(
                            k,
                            "must be certExpiredTime, certStatus or certUpdateTime",
                        ));
                    }
                }
            }
            "status" => {
                q.status = match v.as_str() {
                    "ALL" | "" => None,
                    s => Some(s.parse().map_err(|()| {
                        DomainError::invalid(k, "is not a known certificate status")
                    })?),
                }
            }
            "content" => {
                if v.chars().count() > 255 {
                    return Err(DomainError::invalid(k, "must be at most 255 characters"));
                }
                q.content = Some(v.clone()).filter(|s| !s.is_empty());
            }
            "deploy_support" => q.deploy_support = boolean(k, v)?,
            "owned_by_self" => {
                boolean(k, v)?;
            }
            "expired_days_since" => {
                let days = int(k, v, 0, 1095)?;
                q.expired_after_ms = Some(now_ms - days * 86_400_000);
            }
            "enterprise_project_id" => {
                let e = crate::purchase::enterprise_project(v, k)?;
                q.enterprise_project_id = Some(e).filter(|e| e != "all");
            }
            _ => {}
        }
    }
    Ok(q)
}
