//! [`AcmeClient`]: the domain's [`AcmeCa`] on instant-acme. Stateless per call: each call
//! rebuilds the instant-acme [`Account`] from the stored credentials and the issuer's cached
//! directory (no request for that), performs its few requests, and maps what went wrong to the
//! domain's [`AcmeError`] classes.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use data_encoding::BASE64URL_NOPAD as URL_SAFE_NO_PAD;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, CertificateIdentifier, ChallengeStatus,
    ChallengeType, ExternalAccountKey, Identifier, NewAccount, NewOrder, Order, RevocationReason,
    RevocationRequest,
};
use rustls::pki_types::{CertificateDer, Der};
use scm_core::issuers::acme::{
    AccountSecret, AcmeCa, AcmeError, AuthorizationView, ChallengeKind, ChallengeView, ItemStatus,
    NewOrderSpec, OrderStatus, OrderView, Problem, RenewalWindow,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::time::Instant;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::ari;
use super::http::{Bridge, Exchange, Trace, Transport, TransportError, TransportKind};

/// How long a fetched directory is used before it is fetched again (CAs add endpoints, such as
/// `renewalInfo`, while servers run for months).
const DIRECTORY_MAX_AGE: Duration = Duration::from_secs(6 * 3600);

/// The ACME problem type prefix (RFC 8555 §6.7).
const ACME_ERROR: &str = "urn:ietf:params:acme:error:";

/// An External Account Binding: the CA's key id and the MAC key.
pub(crate) struct Eab {
    pub(crate) kid: String,
    pub(crate) key: Zeroizing<Vec<u8>>,
}

/// One configured ACME CA.
pub(crate) struct AcmeClient {
    name: String,
    directory_url: String,
    contact: Option<String>,
    eab: Option<Eab>,
    profile: Option<String>,
    transport: Arc<Transport>,
    /// The directory, fetched on first use and again after a failure or [`DIRECTORY_MAX_AGE`].
    /// An async mutex: calls that arrive while it is fetched wait for that one fetch.
    directory: Mutex<Option<Arc<Directory>>>,
}

impl std::fmt::Debug for AcmeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the MAC key.
        f.debug_struct("AcmeClient")
            .field("name", &self.name)
            .field("directory_url", &self.directory_url)
            .field("contact", &self.contact)
            .field("eab_kid", &self.eab.as_ref().map(|e| &e.kid))
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// A CA's directory (RFC 8555 §7.1.1).
struct Directory {
    /// The document as the CA sent it: instant-acme takes it in place of fetching it again for
    /// every account rebuilt.
    document: serde_json::Value,
    /// ARI's endpoint, when offered.
    renewal_info: Option<String>,
    /// Its length as JSON text (to size the buffer credentials are rebuilt in).
    document_len: usize,
    /// The names of the profiles offered (`meta.profiles`), when the CA lists any.
    profiles: Option<Vec<String>>,
    fetched: Instant,
}

/// An account's credentials as instant-acme serialises them (its `AccountCredentials`), read
/// here to swap the directory URL for the cached directory document.
#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
struct StoredCredentials {
    id: String,
    key_pkcs8: String,
    #[serde(default)]
    directory: Option<String>,
}

/// The same credentials with the directory's URLs inline (instant-acme's older form, which it
/// still reads and which needs no request).
#[derive(Serialize)]
struct InlineCredentials<'a> {
    id: &'a str,
    key_pkcs8: &'a str,
    urls: &'a serde_json::Value,
}

/// One call's account and what its requests saw.
struct Call {
    account: Account,
    trace: Trace,
}

/// How a failure of a call is read. [`AcmeError::Gone`] names either the order the call was
/// about or the account, never another URL, so that the domain can tell which is lost.
#[derive(Clone, Copy)]
struct Context<'a> {
    /// The account's URL, for `accountDoesNotExist`.
    account_url: Option<&'a str>,
    /// The order the call is about: a 404 on it or its parts (authorizations, challenges) means
    /// it is gone. `None`: a 404 is a wrong endpoint (newOrder, revokeCert), a refusal.
    order_url: Option<&'a str>,
}

impl AcmeClient {
    pub(crate) fn new(
        name: String,
        directory_url: String,
        contact: Option<String>,
        eab: Option<Eab>,
        profile: Option<String>,
        transport: Transport,
    ) -> Self {
        Self {
            name,
            directory_url,
            contact,
            eab,
            profile,
            transport: Arc::new(transport),
            directory: Mutex::new(None),
        }
    }

    /// The directory, from the cache or fetched now.
    async fn directory(&self) -> Result<Arc<Directory>, AcmeError> {
        let mut cached = self.directory.lock().await;
        if let Some(d) = cached.as_ref()
            && d.fetched.elapsed() < DIRECTORY_MAX_AGE
        {
            return Ok(Arc::clone(d));
        }
        *cached = None;
        let fetched = Arc::new(self.fetch_directory().await?);
        *cached = Some(Arc::clone(&fetched));
        Ok(fetched)
    }

    async fn fetch_directory(&self) -> Result<Directory, AcmeError> {
        let url = &self.directory_url;
        let request = http::Request::get(url.as_str())
            .header(http::header::ACCEPT, "application/json")
            .body(Bytes::new())
            .map_err(|e| misconfigured(format!("directory_url {url}: {e}")))?;
        let (parts, body) = self
            .transport
            .send(request)
            .await
            .map_err(|e| transport_error(&e, None))?;
        let status = parts.status.as_u16();
        if status >= 500 {
            return Err(AcmeError::Unavailable {
                reason: format!("the directory {url} answered {status}"),
                retry_after: super::http::retry_after(&parts.headers),
            });
        }
        if status != 200 {
            return Err(misconfigured(format!(
                "the directory {url} answered {status}: check directory_url"
            )));
        }
        let not_a_directory = || {
            misconfigured(format!(
                "{url} is not an ACME directory: check directory_url"
            ))
        };
        let document: serde_json::Value =
            serde_json::from_slice(&body).map_err(|_| not_a_directory())?;
        let has = |key: &str| document.get(key).is_some_and(serde_json::Value::is_string);
        if !(has("newNonce") && has("newAccount") && has("newOrder")) {
            return Err(not_a_directory());
        }
        let renewal_info = document
            .get("renewalInfo")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        let profiles = document
            .get("meta")
            .and_then(|m| m.get("profiles"))
            .and_then(serde_json::Value::as_object)
            .map(|p| p.keys().cloned().collect());
        tracing::debug!(issuer = %self.name, ari = renewal_info.is_some(), "ACME directory fetched");
        Ok(Directory {
            document,
            document_len: body.len(),
            renewal_info,
            profiles,
            fetched: Instant::now(),
        })
    }

    /// Forgets the directory after a call that failed in a way a changed directory could
    /// explain, so that the next call fetches it again.
    async fn settle<T>(&self, result: Result<T, AcmeError>) -> Result<T, AcmeError> {
        if let Err(AcmeError::Unavailable { .. } | AcmeError::Misconfigured { .. }) = &result {
            *self.directory.lock().await = None;
        }
        result
    }

    /// Rebuilds the account of `secret` for one call (no request: the directory is cached).
    async fn call(&self, secret: &AccountSecret) -> Result<Call, AcmeError> {
        let directory = self.directory().await?;
        let unreadable =
            || misconfigured("the stored ACME account credentials are unreadable".into());
        let stored: StoredCredentials =
            serde_json::from_str(secret.0.as_str()).map_err(|_| unreadable())?;
        if let Some(made_at) = &stored.directory
            && made_at != &self.directory_url
        {
            // The account belongs to another CA (directory_url was changed): a new one is needed.
            return Err(AcmeError::Gone {
                url: stored.id.clone(),
            });
        }
        let inline = InlineCredentials {
            id: &stored.id,
            key_pkcs8: &stored.key_pkcs8,
            urls: &directory.document,
        };
        let mut text = Zeroizing::new(Vec::with_capacity(
            secret.0.len() + directory.document_len + 64,
        ));
        serde_json::to_writer(&mut *text, &inline).map_err(|_| unreadable())?;
        let credentials: AccountCredentials =
            serde_json::from_slice(&text).map_err(|_| unreadable())?;
        let (bridge, trace) = Bridge::new(Arc::clone(&self.transport));
        let account = Account::builder_with_http(Box::new(bridge))
            .from_credentials(credentials)
            .await
            .map_err(|_| unreadable())?;
        Ok(Call { account, trace })
    }

    /// The profile of a new order: the order's own, else the issuer's, checked against what
    /// the CA offers.
    fn profile<'a>(
        &'a self,
        spec: &'a NewOrderSpec,
        directory: &Directory,
    ) -> Result<Option<&'a str>, AcmeError> {
        let Some(profile) = spec.profile.as_deref().or(self.profile.as_deref()) else {
            return Ok(None);
        };
        match &directory.profiles {
            Some(offered) if offered.iter().any(|p| p == profile) => Ok(Some(profile)),
            Some(offered) => Err(misconfigured(format!(
                "profile {profile:?} is not offered by the CA (it offers {})",
                offered.join(", ")
            ))),
            None => Err(misconfigured(format!(
                "profile {profile:?}: the CA offers no profiles"
            ))),
        }
    }

    async fn new_order_inner(
        &self,
        secret: &AccountSecret,
        spec: &NewOrderSpec,
    ) -> Result<OrderView, AcmeError> {
        let directory = self.directory().await?;
        let profile = self.profile(spec, &directory)?;
        let call = self.call(secret).await?;
        let context = Context {
            account_url: Some(call.account.id()),
            order_url: None,
        };
        let identifiers: Vec<Identifier> = spec
            .names
            .iter()
            .map(|n| Identifier::Dns(n.clone()))
            .collect();
        // `replaces` only where the CA offers ARI (instant-acme refuses it otherwise), and only
        // for a certificate that has a CertID.
        let replaced = match (&directory.renewal_info, &spec.replaces) {
            (Some(_), Some(der)) => match ari::cert_id_parts(der) {
                Ok(parts) => Some(parts),
                Err(e) => {
                    tracing::debug!(issuer = %self.name, "not sending replaces: {e}");
                    None
                }
            },
            _ => None,
        };
        let order_of = |replaces: bool| {
            let mut new = NewOrder::new(&identifiers);
            if let (true, Some((aki, serial))) = (replaces, &replaced) {
                new = new.replaces(CertificateIdentifier::new(
                    Der::from_slice(aki),
                    Der::from_slice(serial),
                ));
            }
            if let Some(p) = profile {
                new = new.profile(p);
            }
            new
        };
        let placed = match call.account.new_order(&order_of(true)).await {
            // The replaced certificate was already replaced by another order (RFC 9773 §5):
            // this order is still wanted, without the claim.
            Err(instant_acme::Error::Api(p))
                if replaced.is_some() && problem_type_is(&p, "alreadyReplaced") =>
            {
                call.account.new_order(&order_of(false)).await
            }
            other => other,
        };
        let mut order = match placed {
            Ok(order) => order,
            Err(e) => match created_order(&call.trace, &directory.document) {
                // The CA made the order, but its answer was not taken (a CA offering ARI that
                // does not reflect `replaces`, which instant-acme refuses): carry on with that
                // order, rather than leave it behind and place another at every retry.
                Some(url) => {
                    tracing::warn!(issuer = %self.name, order = %url, error = %e, "the CA's answer to newOrder was not taken as it was; carrying on with the order it made");
                    call.account
                        .order(url)
                        .await
                        .map_err(|e| self.classify(e, &call.trace, context))?
                }
                None => return Err(self.classify(e, &call.trace, context)),
            },
        };
        let thumbprint = call.account.key_thumbprint().to_owned();
        let url = order.url().to_owned();
        order_view(&mut order, &thumbprint, &call.trace)
            .await
            .map_err(|e| {
                self.classify(
                    e,
                    &call.trace,
                    Context {
                        order_url: Some(&url),
                        ..context
                    },
                )
            })
    }

    async fn order_inner(&self, secret: &AccountSecret, url: &str) -> Result<OrderView, AcmeError> {
        let call = self.call(secret).await?;
        let context = order_context(&call, url);
        let thumbprint = call.account.key_thumbprint().to_owned();
        let result = async {
            let mut order = call.account.order(url.to_owned()).await?;
            order_view(&mut order, &thumbprint, &call.trace).await
        }
        .await;
        result.map_err(|e| self.classify(e, &call.trace, context))
    }

    async fn answer_inner(
        &self,
        secret: &AccountSecret,
        order_url: &str,
        challenge_url: &str,
    ) -> Result<(), AcmeError> {
        let call = self.call(secret).await?;
        let context = order_context(&call, order_url);
        let result = async {
            let mut order = call.account.order(order_url.to_owned()).await?;
            let mut authorizations = order.authorizations();
            while let Some(next) = authorizations.next().await {
                let mut authorization = next?;
                let Some(kind) = authorization
                    .challenges
                    .iter()
                    .find(|c| c.url == challenge_url)
                    .map(|c| c.r#type.clone())
                else {
                    continue;
                };
                if let Some(mut challenge) = authorization.challenge(kind)
                    && challenge.url == challenge_url
                {
                    challenge.set_ready().await?;
                    return Ok(true);
                }
                return Ok(false);
            }
            Ok(false)
        }
        .await;
        match result {
            Ok(true) => Ok(()),
            // Not a challenge of this order (any more): the order the domain holds is not the
            // CA's; a new one is needed.
            Ok(false) => Err(AcmeError::Gone {
                url: order_url.to_owned(),
            }),
            Err(e) => Err(self.classify(e, &call.trace, context)),
        }
    }

    async fn finalize_inner(
        &self,
        secret: &AccountSecret,
        order_url: &str,
        csr_der: &[u8],
    ) -> Result<OrderView, AcmeError> {
        let call = self.call(secret).await?;
        let context = order_context(&call, order_url);
        let thumbprint = call.account.key_thumbprint().to_owned();
        let result = async {
            let mut order = call.account.order(order_url.to_owned()).await?;
            order.finalize_csr(csr_der).await?;
            order_view(&mut order, &thumbprint, &call.trace).await
        }
        .await;
        result.map_err(|e| self.classify(e, &call.trace, context))
    }

    async fn certificate_inner(
        &self,
        secret: &AccountSecret,
        order_url: &str,
    ) -> Result<Option<String>, AcmeError> {
        let call = self.call(secret).await?;
        let context = order_context(&call, order_url);
        let result = async {
            let mut order = call.account.order(order_url.to_owned()).await?;
            let state = order.state();
            match state.status {
                instant_acme::OrderStatus::Valid => order.certificate().await.map(Ok),
                instant_acme::OrderStatus::Invalid => {
                    let problem = state.error.as_ref().map(problem).unwrap_or(Problem {
                        kind: format!("{ACME_ERROR}orderInvalid"),
                        detail: "the order is invalid".into(),
                        subproblems: Vec::new(),
                    });
                    Ok(Err(AcmeError::Refused { problem }))
                }
                _ => Ok(Ok(None)),
            }
        }
        .await;
        match result {
            Ok(answer) => answer,
            Err(e) => Err(self.classify(e, &call.trace, context)),
        }
    }

    async fn renewal_info_inner(
        &self,
        cert_der: &[u8],
    ) -> Result<Option<RenewalWindow>, AcmeError> {
        let directory = self.directory().await?;
        let Some(base) = &directory.renewal_info else {
            return Ok(None);
        };
        let id = ari::cert_id(cert_der).map_err(|e| AcmeError::Refused {
            problem: Problem {
                kind: format!("{ACME_ERROR}malformed"),
                detail: format!("no ARI certificate id: {e}"),
                subproblems: Vec::new(),
            },
        })?;
        let url = format!("{}/{id}", base.trim_end_matches('/'));
        let request = http::Request::get(url.as_str())
            .body(Bytes::new())
            .map_err(|e| misconfigured(format!("renewalInfo {url}: {e}")))?;
        let (parts, body) = self
            .transport
            .send(request)
            .await
            .map_err(|e| transport_error(&e, None))?;
        let status = parts.status.as_u16();
        let retry_after = super::http::retry_after(&parts.headers);
        if status >= 500 {
            return Err(AcmeError::Unavailable {
                reason: format!("renewalInfo answered {status}"),
                retry_after,
            });
        }
        if status != 200 {
            let problem = serde_json::from_slice::<instant_acme::Problem>(&body)
                .map(|p| problem(&p))
                .unwrap_or(Problem {
                    kind: String::new(),
                    detail: format!("renewalInfo answered {status}"),
                    subproblems: Vec::new(),
                });
            return Err(if problem_short(&problem.kind) == "rateLimited" {
                AcmeError::RateLimited {
                    problem,
                    retry_after,
                }
            } else {
                AcmeError::Refused { problem }
            });
        }
        ari::renewal_window(&body, retry_after)
            .map(Some)
            .map_err(|reason| AcmeError::Unavailable {
                reason,
                retry_after,
            })
    }

    async fn revoke_inner(
        &self,
        secret: &AccountSecret,
        cert_der: &[u8],
        reason: Option<u8>,
    ) -> Result<(), AcmeError> {
        let reason = match reason {
            None => None,
            Some(code) => Some(revocation_reason(code).ok_or_else(|| AcmeError::Refused {
                problem: Problem {
                    kind: format!("{ACME_ERROR}badRevocationReason"),
                    detail: format!("{code} is not an RFC 5280 reason code"),
                    subproblems: Vec::new(),
                },
            })?),
        };
        let call = self.call(secret).await?;
        let certificate = CertificateDer::from(cert_der);
        let request = RevocationRequest {
            certificate: &certificate,
            reason,
        };
        match call.account.revoke(&request).await {
            Ok(()) => Ok(()),
            // Revoked by an earlier attempt whose answer was lost: done.
            Err(instant_acme::Error::Api(p)) if problem_type_is(&p, "alreadyRevoked") => Ok(()),
            Err(e) => Err(self.classify(
                e,
                &call.trace,
                Context {
                    account_url: Some(call.account.id()),
                    order_url: None,
                },
            )),
        }
    }

    async fn create_account_inner(&self) -> Result<AccountSecret, AcmeError> {
        // Fetched (and checked) here so that a bad directory is told apart from a refusal.
        self.directory().await?;
        let (bridge, trace) = Bridge::new(Arc::clone(&self.transport));
        let contact: Vec<&str> = self.contact.iter().map(String::as_str).collect();
        let eab = self
            .eab
            .as_ref()
            .map(|e| ExternalAccountKey::new(e.kid.clone(), &e.key));
        let created = Account::builder_with_http(Box::new(bridge))
            .create(
                &NewAccount {
                    contact: &contact,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                self.directory_url.clone(),
                eab.as_ref(),
            )
            .await;
        let (account, credentials) = created.map_err(|e| {
            self.classify(
                e,
                &trace,
                Context {
                    account_url: None,
                    order_url: None,
                },
            )
        })?;
        let text = serde_json::to_string(&credentials)
            .map(Zeroizing::new)
            .map_err(|e| misconfigured(format!("the account credentials cannot be stored: {e}")))?;
        tracing::info!(issuer = %self.name, account = %account.id(), "ACME account created");
        Ok(AccountSecret(text))
    }

    /// Maps what instant-acme returned, with what the call's requests saw, to the domain's
    /// classes.
    fn classify(&self, err: instant_acme::Error, trace: &Trace, context: Context<'_>) -> AcmeError {
        let last = trace.lock().ok().and_then(|seen| seen.last().cloned());
        classify(err, last.as_ref(), context)
    }
}

#[async_trait]
impl AcmeCa for AcmeClient {
    async fn create_account(&self) -> Result<AccountSecret, AcmeError> {
        self.settle(self.create_account_inner().await).await
    }

    async fn new_order(
        &self,
        account: &AccountSecret,
        order: &NewOrderSpec,
    ) -> Result<OrderView, AcmeError> {
        self.settle(self.new_order_inner(account, order).await)
            .await
    }

    async fn order(&self, account: &AccountSecret, url: &str) -> Result<OrderView, AcmeError> {
        self.settle(self.order_inner(account, url).await).await
    }

    async fn answer(
        &self,
        account: &AccountSecret,
        order_url: &str,
        challenge_url: &str,
    ) -> Result<(), AcmeError> {
        self.settle(self.answer_inner(account, order_url, challenge_url).await)
            .await
    }

    async fn finalize(
        &self,
        account: &AccountSecret,
        order_url: &str,
        csr_der: &[u8],
    ) -> Result<OrderView, AcmeError> {
        self.settle(self.finalize_inner(account, order_url, csr_der).await)
            .await
    }

    async fn certificate(
        &self,
        account: &AccountSecret,
        order_url: &str,
    ) -> Result<Option<String>, AcmeError> {
        self.settle(self.certificate_inner(account, order_url).await)
            .await
    }

    async fn offers_ari(&self) -> Result<bool, AcmeError> {
        let directory = self.directory().await;
        self.settle(directory.map(|d| d.renewal_info.is_some()))
            .await
    }

    async fn renewal_info(&self, cert_der: &[u8]) -> Result<Option<RenewalWindow>, AcmeError> {
        self.settle(self.renewal_info_inner(cert_der).await).await
    }

    async fn revoke(
        &self,
        account: &AccountSecret,
        cert_der: &[u8],
        reason: Option<u8>,
    ) -> Result<(), AcmeError> {
        self.settle(self.revoke_inner(account, cert_der, reason).await)
            .await
    }
}

/// The context of calls about the order at `order_url`.
fn order_context<'a>(call: &'a Call, order_url: &'a str) -> Context<'a> {
    Context {
        account_url: Some(call.account.id()),
        order_url: Some(order_url),
    }
}

/// The order's view, its authorizations fetched.
/// The URL of the order the CA made in this call: its last answer to newOrder was `201 Created`
/// with a `Location`.
fn created_order(trace: &Trace, directory: &serde_json::Value) -> Option<String> {
    let new_order = directory.get("newOrder")?.as_str()?;
    let seen = trace.lock().ok()?;
    let last = seen.iter().rev().find(|x| x.url == new_order)?;
    (last.status == Some(201))
        .then(|| last.location.clone())
        .flatten()
}

async fn order_view(
    order: &mut Order,
    thumbprint: &str,
    trace: &Trace,
) -> Result<OrderView, instant_acme::Error> {
    let mut authorizations = Vec::new();
    let mut stream = order.authorizations();
    while let Some(next) = stream.next().await {
        let handle = next?;
        let identifier = handle.identifier();
        let mut challenges: Vec<ChallengeView> = handle
            .challenges
            .iter()
            .filter_map(|c| challenge_view(c, thumbprint))
            .collect();
        // A stable order (CAs such as Pebble list them in a different order on each fetch).
        challenges.sort_by_key(|c| match c.kind {
            ChallengeKind::Http01 => 0,
            ChallengeKind::Dns01 => 1,
        });
        authorizations.push(AuthorizationView {
            url: handle.url().to_owned(),
            // Without `*.`: the identifier's value (the wildcard is a flag).
            name: identifier.identifier.authorized(false).to_string(),
            wildcard: identifier.wildcard,
            status: authorization_status(handle.status),
            challenges,
        });
    }
    // A stable order here too: Pebble lists an order's authorizations differently each time.
    authorizations.sort_by(|a, b| (&a.name, a.wildcard).cmp(&(&b.name, b.wildcard)));
    let url = order.url().to_owned();
    let state = order.state();
    let finalize = state.finalize.clone();
    let retry_after = {
        let seen = trace.lock().map(|s| s.clone()).unwrap_or_default();
        order_retry_after(&seen, &url, &finalize)
    };
    Ok(OrderView {
        url,
        status: order_status(state.status),
        authorizations,
        error: state.error.as_ref().map(problem),
        retry_after,
    })
}

/// The `Retry-After` of the latest answer about the order itself (its URL, or its finalize URL
/// while it is processed).
fn order_retry_after(seen: &[Exchange], url: &str, finalize: &str) -> Option<Duration> {
    seen.iter()
        .rev()
        .find(|e| e.url == url || e.url == finalize)
        .and_then(|e| e.retry_after)
}

/// A challenge of a type OpenSCM solves, with what to publish for it.
fn challenge_view(c: &instant_acme::Challenge, thumbprint: &str) -> Option<ChallengeView> {
    let kind = match c.r#type {
        ChallengeType::Http01 => ChallengeKind::Http01,
        ChallengeType::Dns01 => ChallengeKind::Dns01,
        _ => return None,
    };
    let key_authorization = format!("{}.{thumbprint}", c.token);
    let digest =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key_authorization.as_bytes());
    Some(ChallengeView {
        kind,
        url: c.url.clone(),
        token: c.token.clone(),
        status: match c.status {
            ChallengeStatus::Pending => ItemStatus::Pending,
            ChallengeStatus::Processing => ItemStatus::Processing,
            ChallengeStatus::Valid => ItemStatus::Valid,
            ChallengeStatus::Invalid => ItemStatus::Invalid,
        },
        dns_value: URL_SAFE_NO_PAD.encode(digest.as_ref()),
        key_authorization,
        error: c.error.as_ref().map(problem),
    })
}

fn authorization_status(s: AuthorizationStatus) -> ItemStatus {
    match s {
        AuthorizationStatus::Pending => ItemStatus::Pending,
        AuthorizationStatus::Valid => ItemStatus::Valid,
        AuthorizationStatus::Invalid => ItemStatus::Invalid,
        AuthorizationStatus::Revoked
        | AuthorizationStatus::Expired
        | AuthorizationStatus::Deactivated => ItemStatus::Other,
    }
}

fn order_status(s: instant_acme::OrderStatus) -> OrderStatus {
    match s {
        instant_acme::OrderStatus::Pending => OrderStatus::Pending,
        instant_acme::OrderStatus::Ready => OrderStatus::Ready,
        instant_acme::OrderStatus::Processing => OrderStatus::Processing,
        instant_acme::OrderStatus::Valid => OrderStatus::Valid,
        instant_acme::OrderStatus::Invalid => OrderStatus::Invalid,
    }
}

fn revocation_reason(code: u8) -> Option<RevocationReason> {
    Some(match code {
        0 => RevocationReason::Unspecified,
        1 => RevocationReason::KeyCompromise,
        2 => RevocationReason::CaCompromise,
        3 => RevocationReason::AffiliationChanged,
        4 => RevocationReason::Superseded,
        5 => RevocationReason::CessationOfOperation,
        6 => RevocationReason::CertificateHold,
        8 => RevocationReason::RemoveFromCrl,
        9 => RevocationReason::PrivilegeWithdrawn,
        10 => RevocationReason::AaCompromise,
        _ => return None,
    })
}

/// instant-acme's problem document as the domain's.
fn problem(p: &instant_acme::Problem) -> Problem {
    Problem {
        kind: p.r#type.clone().unwrap_or_default(),
        detail: p.detail.clone().unwrap_or_default(),
        subproblems: p
            .subproblems
            .iter()
            .map(|s| {
                let name = s
                    .identifier
                    .as_ref()
                    .map(|i| i.authorized(false).to_string())
                    .unwrap_or_default();
                let kind = s.r#type.as_deref().map(problem_short).unwrap_or_default();
                let detail = s.detail.as_deref().unwrap_or_default();
                (name, format!("{kind}: {detail}"))
            })
            .collect(),
    }
}

/// `rateLimited` of `urn:ietf:params:acme:error:rateLimited`.
fn problem_short(kind: &str) -> &str {
    kind.rsplit(':').next().unwrap_or(kind)
}

fn problem_type_is(p: &instant_acme::Problem, short: &str) -> bool {
    p.r#type
        .as_deref()
        .and_then(|t| t.strip_prefix(ACME_ERROR))
        .is_some_and(|t| t == short)
}

fn misconfigured(reason: String) -> AcmeError {
    AcmeError::Misconfigured { reason }
}

/// A request that got no answer.
fn transport_error(e: &TransportError, retry_after: Option<Duration>) -> AcmeError {
    match e.kind {
        TransportKind::Unreachable | TransportKind::Protocol => AcmeError::Unavailable {
            reason: e.message.clone(),
            retry_after,
        },
        TransportKind::Tls => misconfigured(format!(
            "{} (is the CA's root in the machine's store or in trust_roots_file?)",
            e.message
        )),
        TransportKind::BadUrl => misconfigured(e.message.clone()),
    }
}

/// The classes of RFC 8555 §6.7's problems, and of failures without one, given the last
/// exchange of the call (the one that failed, if any answered).
fn classify(err: instant_acme::Error, last: Option<&Exchange>, context: Context<'_>) -> AcmeError {
    let status = last.and_then(|e| e.status);
    let retry_after = last.and_then(|e| e.retry_after);
    let gone = |status: Option<u16>| {
        context
            .order_url
            .filter(|_| status == Some(404))
            .map(|url| AcmeError::Gone {
                url: url.to_owned(),
            })
    };
    // A failure with no problem document: the status decides.
    let without_problem = |reason: String| {
        gone(status).unwrap_or(AcmeError::Unavailable {
            reason,
            retry_after,
        })
    };
    match err {
        instant_acme::Error::Api(p) => {
            let status = status.or(p.status);
            let problem = problem(&p);
            match problem_short(&problem.kind) {
                "rateLimited" => AcmeError::RateLimited {
                    problem,
                    retry_after,
                },
                // instant-acme has already retried a bad nonce at once (three attempts).
                "badNonce" | "serverInternal" => AcmeError::Unavailable {
                    reason: problem.to_string(),
                    retry_after,
                },
                "accountDoesNotExist" => match context.account_url {
                    Some(url) => AcmeError::Gone {
                        url: url.to_owned(),
                    },
                    None => AcmeError::Refused { problem },
                },
                _ if status.is_some_and(|s| s >= 500) => AcmeError::Unavailable {
                    reason: problem.to_string(),
                    retry_after,
                },
                _ => gone(status).unwrap_or(AcmeError::Refused { problem }),
            }
        }
        instant_acme::Error::Other(e) => match e.downcast_ref::<TransportError>() {
            Some(t) => transport_error(t, retry_after),
            None => without_problem(format!("the CA's answer is unusable: {e}")),
        },
        instant_acme::Error::Json(e) => without_problem(match status {
            Some(s) => format!("the CA answered {s} with something unreadable: {e}"),
            None => format!("the CA's answer is unreadable: {e}"),
        }),
        instant_acme::Error::Str(what) => without_problem(format!("the CA's answer: {what}")),
        instant_acme::Error::Timeout(_) => AcmeError::Unavailable {
            reason: "timed out waiting for the CA".into(),
            retry_after,
        },
        instant_acme::Error::Crypto | instant_acme::Error::KeyRejected => {
            misconfigured("the ACME account key cannot be used".into())
        }
        instant_acme::Error::Http(e) => misconfigured(format!("an ACME URL is unusable: {e}")),
        instant_acme::Error::InvalidUri(e) => {
            misconfigured(format!("an ACME URL is unusable: {e}"))
        }
        instant_acme::Error::Unsupported(what) => {
            misconfigured(format!("the CA does not support {what}"))
        }
        other => without_problem(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(kind: &str, status: u16) -> instant_acme::Error {
        let p: instant_acme::Problem = serde_json::from_value(serde_json::json!({
            "type": format!("{ACME_ERROR}{kind}"),
            "detail": format!("{kind} happened"),
            "status": status,
            "subproblems": [{
                "type": format!("{ACME_ERROR}rejectedIdentifier"),
                "detail": "not this one",
                "identifier": {"type": "dns", "value": "bad.shop.test"}
            }]
        }))
        .unwrap();
        instant_acme::Error::Api(p)
    }

    fn seen(status: Option<u16>, retry_after: Option<u64>) -> Exchange {
        // The failing request may be about a part of the order (here an authorization).
        Exchange {
            url: "https://ca.test/authz/3".into(),
            status,
            retry_after: retry_after.map(Duration::from_secs),
            location: None,
        }
    }

    const ORDERS: Context<'static> = Context {
        account_url: Some("https://ca.test/acct/7"),
        order_url: Some("https://ca.test/order/1"),
    };
    const ENDPOINTS: Context<'static> = Context {
        account_url: Some("https://ca.test/acct/7"),
        order_url: None,
    };

    #[test]
    fn problems_map_to_the_domain_classes() {
        let e = classify(
            api("rateLimited", 429),
            Some(&seen(Some(429), Some(3600))),
            ENDPOINTS,
        );
        let AcmeError::RateLimited {
            problem,
            retry_after,
        } = e
        else {
            panic!("{e:?}")
        };
        assert_eq!(retry_after, Some(Duration::from_secs(3600)));
        assert_eq!(problem.short(), "rateLimited");
        assert_eq!(
            problem.subproblems,
            [(
                "bad.shop.test".to_owned(),
                "rejectedIdentifier: not this one".to_owned()
            )]
        );
        assert!(matches!(
            classify(
                api("rateLimited", 429),
                Some(&seen(Some(429), None)),
                ENDPOINTS
            ),
            AcmeError::RateLimited {
                retry_after: None,
                ..
            }
        ));

        for kind in [
            "unauthorized",
            "rejectedIdentifier",
            "caa",
            "badCSR",
            "externalAccountRequired",
            "malformed",
            "unsupportedIdentifier",
            "userActionRequired",
            "orderNotReady",
        ] {
            let e = classify(api(kind, 403), Some(&seen(Some(403), None)), ORDERS);
            assert!(
                matches!(&e, AcmeError::Refused { problem } if problem.short() == kind),
                "{kind}: {e:?}"
            );
        }
        for kind in ["badNonce", "serverInternal"] {
            let e = classify(api(kind, 400), Some(&seen(Some(400), Some(5))), ORDERS);
            assert!(
                matches!(&e, AcmeError::Unavailable { retry_after: Some(d), .. } if d.as_secs() == 5),
                "{kind}: {e:?}"
            );
        }
        // Any problem with a 5xx is the CA's trouble.
        let e = classify(api("malformed", 503), Some(&seen(Some(503), None)), ORDERS);
        assert!(matches!(e, AcmeError::Unavailable { .. }), "{e:?}");

        // 404 on an order is Gone; on an endpoint (newOrder, revokeCert) it is a refusal.
        let e = classify(api("malformed", 404), Some(&seen(Some(404), None)), ORDERS);
        assert_eq!(
            e,
            AcmeError::Gone {
                url: "https://ca.test/order/1".into()
            }
        );
        let e = classify(
            api("malformed", 404),
            Some(&seen(Some(404), None)),
            ENDPOINTS,
        );
        assert!(matches!(e, AcmeError::Refused { .. }), "{e:?}");

        let e = classify(
            api("accountDoesNotExist", 400),
            Some(&seen(Some(400), None)),
            ENDPOINTS,
        );
        assert_eq!(
            e,
            AcmeError::Gone {
                url: "https://ca.test/acct/7".into()
            }
        );
    }

    #[test]
    fn failures_without_a_problem() {
        let unreachable = instant_acme::Error::Other(Box::new(TransportError {
            kind: TransportKind::Unreachable,
            message: "ca.test: could not connect: refused".into(),
        }));
        let e = classify(unreachable, Some(&seen(None, None)), ORDERS);
        assert!(
            matches!(&e, AcmeError::Unavailable { reason, .. } if reason.contains("could not connect")),
            "{e:?}"
        );
        let tls = instant_acme::Error::Other(Box::new(TransportError {
            kind: TransportKind::Tls,
            message: "TLS with ca.test failed: invalid peer certificate: UnknownIssuer".into(),
        }));
        let e = classify(tls, Some(&seen(None, None)), ORDERS);
        assert!(
            matches!(&e, AcmeError::Misconfigured { reason } if reason.contains("trust_roots_file")),
            "{e:?}"
        );
        // A proxy's HTML error page.
        let html = serde_json::from_str::<serde_json::Value>("<html>").unwrap_err();
        let e = classify(
            instant_acme::Error::Json(html),
            Some(&seen(Some(502), Some(30))),
            ORDERS,
        );
        assert!(
            matches!(&e, AcmeError::Unavailable { reason, retry_after: Some(_) } if reason.contains("502")),
            "{e:?}"
        );
        let html = serde_json::from_str::<serde_json::Value>("<html>").unwrap_err();
        let e = classify(
            instant_acme::Error::Json(html),
            Some(&seen(Some(404), None)),
            ORDERS,
        );
        assert!(matches!(e, AcmeError::Gone { .. }), "{e:?}");
        let e = classify(instant_acme::Error::KeyRejected, None, ORDERS);
        assert!(matches!(e, AcmeError::Misconfigured { .. }), "{e:?}");
    }

    #[test]
    fn reason_codes() {
        assert!(revocation_reason(7).is_none());
        assert!(revocation_reason(11).is_none());
        for code in [0, 1, 2, 3, 4, 5, 6, 8, 9, 10] {
            let reason = revocation_reason(code).unwrap();
            assert_eq!(serde_json::to_value(reason).unwrap(), code, "{code}");
        }
    }

    #[test]
    fn the_dns_value_is_the_base64url_sha256_of_the_key_authorization() {
        // RFC 8555 §8.4's example would need its account key; the definition is checked
        // against an independent computation instead.
        let c: instant_acme::Challenge = serde_json::from_value(serde_json::json!({
            "type": "dns-01", "url": "https://ca.test/chall/1", "status": "pending",
            "token": "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
        }))
        .unwrap();
        let v = challenge_view(&c, "thumb").unwrap();
        assert_eq!(
            v.key_authorization,
            "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.thumb"
        );
        let expected = {
            let d = aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA256,
                b"evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.thumb",
            );
            URL_SAFE_NO_PAD.encode(d.as_ref())
        };
        assert_eq!(v.dns_value, expected);
        assert_eq!(v.dns_value.len(), 43);
        let alpn: instant_acme::Challenge = serde_json::from_value(serde_json::json!({
            "type": "tls-alpn-01", "url": "https://ca.test/chall/2", "status": "pending", "token": "t"
        }))
        .unwrap();
        assert!(challenge_view(&alpn, "thumb").is_none());
    }

    #[test]
    fn an_order_the_ca_made_is_found_in_the_trace() {
        let directory = serde_json::json!({"newOrder": "https://ca.test/new-order"});
        let exchange = |url: &str, status: u16, location: Option<&str>| Exchange {
            url: url.into(),
            status: Some(status),
            retry_after: None,
            location: location.map(str::to_owned),
        };
        let trace = |seen: Vec<Exchange>| -> Trace { Arc::new(std::sync::Mutex::new(seen)) };
        let made = trace(vec![
            exchange("https://ca.test/nonce", 200, None),
            exchange("https://ca.test/new-order", 400, None),
            exchange(
                "https://ca.test/new-order",
                201,
                Some("https://ca.test/order/9"),
            ),
        ]);
        assert_eq!(
            created_order(&made, &directory).as_deref(),
            Some("https://ca.test/order/9")
        );
        // Refused (a problem document), or no answer: no order was made.
        let refused = trace(vec![exchange("https://ca.test/new-order", 403, None)]);
        assert_eq!(created_order(&refused, &directory), None);
        let other = trace(vec![exchange(
            "https://ca.test/acct",
            201,
            Some("https://ca.test/acct/1"),
        )]);
        assert_eq!(created_order(&other, &directory), None);
        assert_eq!(created_order(&made, &serde_json::json!({})), None);
    }
}
