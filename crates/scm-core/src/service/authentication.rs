//! Authentication: AK/SK signatures, bearer tokens, and the caller's projects.

use std::sync::Arc;

use scm_proto::{AccessKeyId, DomainId, ProjectId};
use scm_sign::Request;
use scm_store::{AccountRecord, CredentialStatus, TokenKind, TokenRecord};
use zeroize::Zeroizing;

use crate::auth::{self, AuthFailure, AuthMethod, CachedCredential, Principal};
use crate::bootstrap::open_secret;
use crate::clock::unix_ms;
use crate::{DomainError, random};

use super::{IssuedToken, Scm};

/// A caller authenticated from the request head (method, path, query, headers). A token needs
/// nothing more; a signature still has to be checked over the body, with
/// [`Scm::authenticate_body`].
pub struct HeadCheck {
    principal: Principal,
    /// The credential whose signature remains to be checked over the body.
    signed_with: Option<Arc<CachedCredential>>,
}

impl HeadCheck {
    /// The caller, as far as the head shows it (the signature over the body is still to check).
    pub fn principal(&self) -> &Principal {
        &self.principal
    }
}

impl std::fmt::Debug for HeadCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeadCheck")
            .field("principal", &self.principal)
            .field("signature_pending", &self.signed_with.is_some())
            .finish()
    }
}

impl Scm {
    /// Authenticates a request by signature or token, and checks that any `X-Domain-Id` /
    /// `X-Project-Id` it carries belongs to the caller: [`Scm::authenticate_head`] then
    /// [`Scm::authenticate_body`].
    pub async fn authenticate(&self, req: &Request<'_>) -> Result<Principal, DomainError> {
        let head = self.authenticate_head(req).await?;
        self.authenticate_body(head, req).await
    }

    /// Everything that can be checked without the body (`req.body` is not looked at): the token,
    /// or the signature's access key, credential status and date (present, signed, within the
    /// allowed skew); and the `X-Domain-Id` / `X-Project-Id` scope. A request that fails here is
    /// refused before its body is read.
    pub async fn authenticate_head(&self, req: &Request<'_>) -> Result<HeadCheck, DomainError> {
        let check = match auth::signature_authorization(req)? {
            Some(authz) => {
                let ak =
                    AccessKeyId::try_from(authz.access_key).map_err(|_| AuthFailure::UnknownKey)?;
                let cred = self.credential(&ak).await?.ok_or(AuthFailure::UnknownKey)?;
                if cred.status != CredentialStatus::Active {
                    return Err(AuthFailure::Revoked.into());
                }
                scm_sign::check_date(req, &authz, self.clock.now(), self.config.max_skew)
                    .map_err(|e| DomainError::from(auth::sign_failure(&e)))?;
                HeadCheck {
                    principal: Principal {
                        account: cred.account.clone(),
                        project: cred.project.clone(),
                        access_key: ak,
                        method: AuthMethod::Signature,
                    },
                    signed_with: Some(cred),
                }
            }
            None => match auth::header(req, "x-auth-token")? {
                Some(token) => HeadCheck {
                    principal: self.verify_token(token).await?,
                    signed_with: None,
                },
                None => return Err(AuthFailure::Missing.into()),
            },
        };
        // A token is proven by now; a signature only once the body is in (its scope headers are
        // checked then), so that a forged request learns nothing from a scope refusal.
        if check.signed_with.is_none() {
            self.check_scope_headers(&check.principal, req).await?;
        }
        Ok(check)
    }

    /// `X-Domain-Id` and `X-Project-Id`, when the request carries them, name the caller's account
    /// and one of its projects.
    async fn check_scope_headers(
        &self,
        principal: &Principal,
        req: &Request<'_>,
    ) -> Result<(), DomainError> {
        if let Some(d) = auth::header(req, "x-domain-id")?
            && d.trim() != principal.account.as_str()
        {
            return Err(DomainError::OtherTenant);
        }
        if let Some(p) = auth::header(req, "x-project-id")? {
            self.project_scope(principal, p.trim()).await?;
        }
        Ok(())
    }

    /// Finishes [`Scm::authenticate_head`] once the body is in `req`: checks the signature over
    /// the whole request (a JSON body must be covered by it: `UNSIGNED-PAYLOAD` is refused).
    pub async fn authenticate_body(
        &self,
        head: HeadCheck,
        req: &Request<'_>,
    ) -> Result<Principal, DomainError> {
        let Some(cred) = head.signed_with else {
            return Ok(head.principal);
        };
        let authz = auth::signature_authorization(req)?.ok_or(AuthFailure::Malformed)?;
        if !req.body.is_empty()
            && auth::header(req, "x-sdk-content-sha256")?
                .is_some_and(|v| v.trim() == "UNSIGNED-PAYLOAD")
        {
            return Err(AuthFailure::Malformed.into());
        }
        scm_sign::verify(
            req,
            &authz,
            &cred.secret,
            self.clock.now(),
            self.config.max_skew,
        )
        .map_err(|e| DomainError::from(auth::sign_failure(&e)))?;
        self.check_scope_headers(&head.principal, req).await?;
        Ok(head.principal)
    }

    /// The account of a credential (active or revoked); `None` for an unknown access key.
    pub async fn credential_account(
        &self,
        ak: &AccessKeyId,
    ) -> Result<Option<DomainId>, DomainError> {
        Ok(self.credential(ak).await?.map(|c| c.account.clone()))
    }

    pub(super) async fn credential(
        &self,
        ak: &AccessKeyId,
    ) -> Result<Option<Arc<CachedCredential>>, DomainError> {
        if let Some(c) = self.cache.credentials.get(ak) {
            return Ok(Some(c));
        }
        // A flood of made-up access keys costs one database query per key per few seconds.
        let now = self.clock.now_ms();
        if self
            .cache
            .unknown_keys
            .get(ak)
            .is_some_and(|until| until > now)
        {
            return Ok(None);
        }
        let seen = self.cache.access_generation();
        let Some(rec) = self.store.credential(ak).await? else {
            self.cache
                .put_unknown_key(seen, ak.clone(), now + crate::cache::UNKNOWN_KEY_TTL_MS);
            return Ok(None);
        };
        let cached = Arc::new(CachedCredential {
            secret: open_secret(&self.master, ak, &rec.secret_sealed)?,
            account: rec.domain_id,
            project: rec.project_id,
            status: rec.status,
        });
        self.cache.put_credential(seen, ak.clone(), cached.clone());
        Ok(Some(cached))
    }

    /// One account, if it exists (through the cache that authentication fills).
    pub async fn account(&self, id: &DomainId) -> Result<Option<Arc<AccountRecord>>, DomainError> {
        if let Some(a) = self.cache.accounts.get(id) {
            return Ok(Some(a));
        }
        let seen = self.cache.access_generation();
        let Some(rec) = self.store.account(id).await? else {
            return Ok(None);
        };
        let rec = Arc::new(rec);
        self.cache.put_account(seen, rec.clone());
        Ok(Some(rec))
    }

    async fn verify_token(&self, token: &str) -> Result<Principal, DomainError> {
        let token = token.trim();
        if !(32..=2_097_152).contains(&token.len()) {
            return Err(AuthFailure::BadToken.into());
        }
        self.verify_token_hash(&auth::token_hash(token), TokenKind::Api)
            .await
    }

    /// The caller of the token of `kind` stored under `hash` (API tokens and console sessions).
    pub(super) async fn verify_token_hash(
        &self,
        hash: &str,
        kind: TokenKind,
    ) -> Result<Principal, DomainError> {
        let (rec, status) = self.store.token(hash).await?.ok_or(AuthFailure::BadToken)?;
        // The hashes of the two kinds differ already; the stored kind makes it explicit.
        if rec.kind != kind {
            return Err(AuthFailure::BadToken.into());
        }
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
            kind: TokenKind::Api,
            token_hash: auth::token_hash(&token),
            access_key: p.access_key.clone(),
            domain_id: p.account.clone(),
            project_id: p.project.clone(),
            issued_ms: unix_ms(now),
            expires_ms: unix_ms(now + self.config.token_ttl),
        };
        self.store
            .insert_token(&record, self.config.max_tokens_per_credential)
            .await?;
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
}
