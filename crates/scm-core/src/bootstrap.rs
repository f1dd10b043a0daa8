//! First start: on an empty store, create the admin account, its project, credential and CA, and
//! the serving CA of the HTTPS listener, in one transaction (so two servers starting on one
//! PostgreSQL create one of each).

use scm_pki::MasterKey;
use scm_proto::{AccessKeyId, DomainId, ProjectId};
use scm_sign::SecretKey;
use scm_store::{
    AccountRecord, Bootstrap, CaRole, CredentialRecord, CredentialStatus, ProjectRecord, Store,
};

use crate::clock::unix_ms;
use crate::issuance::{DEFAULT_POLICY, new_ca, tenant_ca_name};
use crate::{Clock, DomainError, random};

/// What a bootstrap created, for the caller to hand to the operator once.
#[derive(Debug)]
pub struct Created {
    /// The admin account.
    pub domain_id: DomainId,
    /// Its project.
    pub project_id: ProjectId,
    /// Admin access key.
    pub access_key: AccessKeyId,
    /// Admin secret key (shown once, then only stored sealed).
    pub secret_key: SecretKey,
}

const MASTER_CHECK_KEY: &str = "master_key_check";
const MASTER_CHECK_AAD: &[u8] = b"meta:master_key_check";

/// Makes sure `master` is the key this database was set up with (stores a check value on first
/// use). A server started with another key stops here instead of failing on every request.
pub async fn check_master_key(store: &dyn Store, master: &MasterKey) -> Result<(), DomainError> {
    if master_key_opens(store, master).await? {
        Ok(())
    } else {
        Err(DomainError::internal(
            "the master key does not match this database (it was set up with another master key file)",
        ))
    }
}

/// Whether `master` is the key this database was set up with; a database that has no check
/// value yet takes this key's (so the first start decides).
pub async fn master_key_opens(store: &dyn Store, master: &MasterKey) -> Result<bool, DomainError> {
    let sealed = master
        .seal(b"openscm", MASTER_CHECK_AAD)
        .map_err(|e| DomainError::internal_from("master key", e))?;
    let stored = store
        .init_meta(MASTER_CHECK_KEY, &hex::encode(sealed))
        .await?;
    let bytes = hex::decode(stored)
        .map_err(|e| DomainError::internal_from("corrupt master key check value", e))?;
    Ok(master.open(&bytes, MASTER_CHECK_AAD).is_ok())
}

/// Seals a secret key for the credentials table, bound to its access key.
pub(crate) fn seal_secret(
    master: &MasterKey,
    ak: &AccessKeyId,
    sk: &SecretKey,
) -> Result<Vec<u8>, DomainError> {
    master
        .seal(
            sk.expose().as_bytes(),
            format!("credential:{ak}").as_bytes(),
        )
        .map_err(|e| DomainError::internal_from("sealing secret", e))
}

/// Opens a sealed secret key.
pub(crate) fn open_secret(
    master: &MasterKey,
    ak: &AccessKeyId,
    sealed: &[u8],
) -> Result<SecretKey, DomainError> {
    let plain = master
        .open(sealed, format!("credential:{ak}").as_bytes())
        .map_err(|e| DomainError::internal_from(format!("opening the secret of {ak}"), e))?;
    let s = String::from_utf8(plain.to_vec())
        .map_err(|e| DomainError::internal_from("secret is not UTF-8", e))?;
    Ok(SecretKey::new(s))
}

/// Bootstraps an empty store; returns `None` when it was bootstrapped before (by us or another
/// process).
pub async fn run(
    store: &dyn Store,
    clock: &dyn Clock,
    master: &MasterKey,
) -> Result<Option<Created>, DomainError> {
    check_master_key(store, master).await?;
    if store.meta("bootstrapped").await?.is_some() {
        return Ok(None);
    }
    let now = clock.now();
    let now_ms = unix_ms(now);
    let domain_id = random::domain_id()?;
    let project_id = random::project_id()?;
    let access_key = random::access_key()?;
    let secret_key = SecretKey::new(random::secret_key()?);
    let name = "admin";
    let cas = vec![
        new_ca(
            master,
            CaRole::Tenant,
            Some(&domain_id),
            &tenant_ca_name(&domain_id, name),
            now,
        )
        .await?,
        new_ca(master, CaRole::Serving, None, "OpenSCM HTTPS", now).await?,
    ];
    let b = Bootstrap {
        account: AccountRecord {
            domain_id: domain_id.clone(),
            name: name.into(),
            policy: DEFAULT_POLICY.into(),
            renew_remaining_permille: None,
            created_ms: now_ms,
        },
        project: ProjectRecord {
            project_id: project_id.clone(),
            domain_id: domain_id.clone(),
            name: "default".into(),
            created_ms: now_ms,
        },
        credential: CredentialRecord {
            access_key: access_key.clone(),
            domain_id: domain_id.clone(),
            project_id: project_id.clone(),
            secret_sealed: seal_secret(master, &access_key, &secret_key)?,
            status: CredentialStatus::Active,
            description: "bootstrap admin credential".into(),
            created_ms: now_ms,
            revoked_ms: None,
        },
        cas,
    };
    if store.bootstrap(&b).await? {
        Ok(Some(Created {
            domain_id,
            project_id,
            access_key,
            secret_key,
        }))
    } else {
        Ok(None)
    }
}
