//! The client: configuration, authentication, the low-level `call`/`send`, and one typed method
//! per operation.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use scm_proto::v3::{
    ApplicationBody, ExportCertificateResponse, ListCertificatesResponse, NamedId, PurchaseBody,
    PurchaseResponse, RequestInfoResponse, ShowCertificateResponse, TokenResponse,
};
use scm_proto::{Operation, Scope, v2, v3};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::raw::{decode_target, encode_target, set_header};
use crate::{
    ClientError, Credentials, CredentialsFile, ListQuery, PreparedRequest, RawRequest, RawResponse,
    RequestAuth,
};

/// The header carrying a bearer token.
pub const TOKEN_HEADER: &str = "X-Auth-Token";

/// The header in which `create_token` answers the token.
pub const SUBJECT_TOKEN_HEADER: &str = "X-Subject-Token";

/// Where the signing time comes from. Any `Fn() -> OffsetDateTime` is one, so a test can sign
/// with a stale date: `client.with_clock(|| OffsetDateTime::now_utc() - Duration::minutes(20))`.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> OffsetDateTime;
}

impl<F> Clock for F
where
    F: Fn() -> OffsetDateTime + Send + Sync + 'static,
{
    fn now(&self) -> OffsetDateTime {
        self()
    }
}

/// The system clock, in UTC.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// How the client authenticates its requests (routes of [`Scope::Public`] are never
/// authenticated).
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Auth {
    /// `SDK-HMAC-SHA256` with the AK/SK, exactly as the Python SDK signs.
    #[default]
    Signature,
    /// A bearer token (`X-Auth-Token`), as [`Client::create_token`] answers it.
    Token(String),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Signature => f.write_str("Signature"),
            Self::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

/// `GET /health` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// `GET /v3/auth/domains` answer: the caller's account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthDomains {
    /// One entry, the caller's domain.
    pub domains: Vec<NamedId>,
}

/// A token from [`Client::create_token`].
#[derive(Clone)]
pub struct IssuedToken {
    /// The token, from the `X-Subject-Token` header.
    pub token: String,
    /// The JSON body.
    pub body: TokenResponse,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"<redacted>")
            .field("body", &self.body)
            .finish()
    }
}

/// Builds a [`Client`] with more than the defaults.
pub struct ClientBuilder {
    endpoint: String,
    credentials: Credentials,
    auth: Auth,
    clock: Arc<dyn Clock>,
    timeout: Option<Duration>,
    roots: Vec<Vec<u8>>,
    roots_only: bool,
}

impl ClientBuilder {
    /// Total time allowed for one request, from connecting to the end of the body (default: no
    /// limit).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Trusts the CA certificate(s) of this PEM for HTTPS, beside the platform's roots (e.g. the
    /// server's `ca-root.pem`).
    pub fn root_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.roots.push(pem.into());
        self
    }

    /// Trusts only the CA certificates given with [`ClientBuilder::root_ca_pem`], not the
    /// platform's.
    pub fn only_given_roots(mut self) -> Self {
        self.roots_only = true;
        self
    }

    /// Signs with this clock's time.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Authenticates this way (default: [`Auth::Signature`]).
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Builds the client. Fails on an endpoint that is not `http(s)://host[:port]` or a CA PEM
    /// without a certificate.
    pub fn build(self) -> Result<Client, ClientError> {
        let url = reqwest::Url::parse(self.endpoint.trim())
            .map_err(|e| ClientError::Config(format!("endpoint {:?}: {e}", self.endpoint)))?;
        if !matches!(url.scheme(), "http" | "https")
            || !url.path().trim_end_matches('/').is_empty()
            || url.query().is_some()
        {
            return Err(ClientError::Config(format!(
                "endpoint {:?} is not http(s)://host[:port]",
                self.endpoint
            )));
        }
        let host_name = url.host_str().ok_or_else(|| {
            ClientError::Config(format!("endpoint {:?} has no host", self.endpoint))
        })?;
        // The Host header as the HTTP library sends it: the port only when not the default.
        let host = match url.port() {
            Some(port) => format!("{host_name}:{port}"),
            None => host_name.to_owned(),
        };
        let origin = format!("{}://{host}", url.scheme());

        let mut certs = Vec::new();
        for pem in &self.roots {
            let found = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ClientError::Config(format!("root CA PEM: {e}")))?;
            if found.is_empty() {
                return Err(ClientError::Config(
                    "root CA PEM holds no certificate".into(),
                ));
            }
            certs.extend(found);
        }
        let mut http = reqwest::Client::builder()
            .user_agent(concat!("openscm-client/", env!("CARGO_PKG_VERSION")))
            // A test sees the answer it caused: no redirect followed, no request sent twice, no
            // proxy from the environment in between.
            .redirect(reqwest::redirect::Policy::none())
            .retry(reqwest::retry::never())
            .no_proxy();
        if let Some(timeout) = self.timeout {
            http = http.timeout(timeout);
        }
        if self.roots_only {
            http = http.tls_certs_only(certs);
        } else if !certs.is_empty() {
            http = http.tls_certs_merge(certs);
        }
        let http = http
            .build()
            .map_err(|e| ClientError::Config(format!("HTTP client: {e}")))?;
        Ok(Client {
            shared: Arc::new(Shared {
                http,
                origin,
                host,
                credentials: self.credentials,
                auth: self.auth,
                clock: self.clock,
            }),
        })
    }
}

struct Shared {
    http: reqwest::Client,
    /// `scheme://host[:port]`.
    origin: String,
    /// `host[:port]`, as sent in `Host`.
    host: String,
    credentials: Credentials,
    auth: Auth,
    clock: Arc<dyn Clock>,
}

/// A client of one OpenSCM server. Cheap to clone: clones share one connection pool.
///
/// Typed methods (one per [`Operation`]) answer the `scm-proto` type of the operation, or
/// [`ClientError::Api`] for any non-2xx answer. [`Client::call`], [`Client::send`] and
/// [`Client::prepare`] give the low-level access refusal tests need.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.shared.origin)
            .field("access_key", &self.shared.credentials.access_key)
            .field("auth", &self.shared.auth)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of `endpoint` (`http://127.0.0.1:8080`) signing with `credentials`.
    pub fn new(endpoint: &str, credentials: Credentials) -> Result<Self, ClientError> {
        Self::builder(endpoint, credentials).build()
    }

    /// A builder, for a timeout, extra CA roots, a clock or token auth.
    pub fn builder(endpoint: &str, credentials: Credentials) -> ClientBuilder {
        ClientBuilder {
            endpoint: endpoint.to_owned(),
            credentials,
            auth: Auth::Signature,
            clock: Arc::new(SystemClock),
            timeout: None,
            roots: Vec::new(),
            roots_only: false,
        }
    }

    /// A client of the endpoint and credential of a `credentials.json`.
    pub fn from_credentials_file(path: impl AsRef<Path>) -> Result<Self, ClientError> {
        let file = CredentialsFile::load(path)?;
        let endpoint = file
            .endpoint
            .ok_or_else(|| ClientError::Credentials("the file names no endpoint".into()))?;
        Self::new(&endpoint, file.credentials)
    }

    fn derive(&self, change: impl FnOnce(&mut Shared)) -> Self {
        let s = &self.shared;
        let mut shared = Shared {
            http: s.http.clone(),
            origin: s.origin.clone(),
            host: s.host.clone(),
            credentials: s.credentials.clone(),
            auth: s.auth.clone(),
            clock: s.clock.clone(),
        };
        change(&mut shared);
        Self {
            shared: Arc::new(shared),
        }
    }

    /// The same client (same connection pool) authenticating another way.
    pub fn with_auth(&self, auth: Auth) -> Self {
        self.derive(|s| s.auth = auth)
    }

    /// The same client authenticating with a bearer token.
    pub fn with_token(&self, token: impl Into<String>) -> Self {
        self.with_auth(Auth::Token(token.into()))
    }

    /// The same client with another credential (another account's key, a revoked one, …).
    pub fn with_credentials(&self, credentials: Credentials) -> Self {
        self.derive(|s| s.credentials = credentials)
    }

    /// The same client signing with another clock.
    pub fn with_clock(&self, clock: impl Clock) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(clock);
        self.derive(|s| s.clock = clock)
    }

    /// The endpoint, `scheme://host[:port]`.
    pub fn endpoint(&self) -> &str {
        &self.shared.origin
    }

    /// The credential.
    pub fn credentials(&self) -> &Credentials {
        &self.shared.credentials
    }

    /// How requests are authenticated.
    pub fn auth(&self) -> &Auth {
        &self.shared.auth
    }

    // ---------------------------------------------------------------- low level

    /// The request [`Client::call`] sends, to change before [`Client::send`].
    ///
    /// `path_params` fill the `{param}` placeholders of [`Operation::path`] in order (unencoded);
    /// `query` pairs are unencoded and sent in the order given. Headers, as the SDK sends them:
    /// `Content-Type: application/json`; on [`Scope::Account`] routes `X-Domain-Id` when the
    /// credential knows its domain; on [`Scope::Project`] (v2) routes `X-Project-Id`, the
    /// credential's project (as the SDK's `BasicCredentials` sends it) or else the path's.
    /// [`Scope::Public`] routes get no header and no authentication.
    pub fn request(
        &self,
        op: Operation,
        path_params: &[&str],
        query: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> RawRequest {
        let target = encode_target(&op.path_with(path_params), query);
        let mut req =
            RawRequest::new(op.method().as_str(), target).body(body.unwrap_or_default().to_vec());
        let credentials = &self.shared.credentials;
        match op.scope() {
            Scope::Public => req = req.unauthenticated(),
            Scope::Account => {
                req = req.header("Content-Type", "application/json");
                if let Some(domain) = &credentials.domain_id {
                    req = req.header("X-Domain-Id", domain.as_str());
                }
            }
            Scope::Project => {
                req = req.header("Content-Type", "application/json");
                let project = credentials
                    .project_id
                    .as_deref()
                    .or_else(|| path_params.first().copied());
                if let Some(project) = project {
                    req = req.header("X-Project-Id", project);
                }
            }
        }
        req
    }

    /// Sends one operation and answers whatever came back (any status): [`Client::request`],
    /// then [`Client::send`].
    pub async fn call(
        &self,
        op: Operation,
        path_params: &[&str],
        query: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<RawResponse, ClientError> {
        self.send(self.request(op, path_params, query, body)).await
    }

    /// Signs (or not) and tampers with a request as it asks, without sending it: exactly what
    /// [`Client::send`] would put on the wire, but the headers the HTTP library adds unsigned.
    pub fn prepare(&self, req: &RawRequest) -> PreparedRequest {
        let shared = &self.shared;
        let auth = match &req.auth {
            RequestAuth::AsClient => Some(shared.auth.clone()),
            RequestAuth::Signature => Some(Auth::Signature),
            RequestAuth::Token(token) => Some(Auth::Token(token.clone())),
            RequestAuth::None => None,
        };
        let mut headers = req.headers.clone();
        match auth {
            Some(Auth::Signature) => {
                let (path, query) = decode_target(&req.target);
                let query = query
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect::<Vec<_>>();
                let given = req
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect::<Vec<_>>();
                let signed = scm_sign::sign(
                    &req.method,
                    &shared.host,
                    &path,
                    &query,
                    &given,
                    &req.body,
                    &shared.credentials.access_key,
                    &shared.credentials.secret_key,
                    req.date.unwrap_or_else(|| shared.clock.now()),
                );
                headers = signed.headers;
            }
            Some(Auth::Token(token)) => set_header(&mut headers, TOKEN_HEADER, &token),
            None => {}
        }
        let mut prepared = PreparedRequest {
            method: req.method.clone(),
            target: req.target.clone(),
            headers,
            body: req.body.clone(),
        };
        for tamper in &req.tamper {
            prepared.apply(tamper);
        }
        prepared
    }

    /// Prepares and sends a request; answers whatever came back (any status).
    pub async fn send(&self, req: RawRequest) -> Result<RawResponse, ClientError> {
        let prepared = self.prepare(&req);
        self.send_prepared(prepared).await
    }

    /// Sends a prepared request as it is.
    pub async fn send_prepared(&self, req: PreparedRequest) -> Result<RawResponse, ClientError> {
        let url = reqwest::Url::parse(&format!("{}{}", self.shared.origin, req.target))
            .map_err(|e| ClientError::InvalidRequest(format!("target {:?}: {e}", req.target)))?;
        let method = reqwest::Method::from_bytes(req.method.as_bytes())
            .map_err(|e| ClientError::InvalidRequest(format!("method {:?}: {e}", req.method)))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &req.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| ClientError::InvalidRequest(format!("header {name:?}: {e}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|e| ClientError::InvalidRequest(format!("header {name}: {e}")))?;
            headers.append(name, value);
        }
        // As Python's `requests`: a POST or PUT without body still says `Content-Length: 0`.
        let sends_body = !req.body.is_empty()
            || matches!(
                method,
                reqwest::Method::POST | reqwest::Method::PUT | reqwest::Method::PATCH
            );
        let mut request = reqwest::Request::new(method, url);
        *request.headers_mut() = headers;
        if sends_body {
            *request.body_mut() = Some(req.body.into());
        }
        let response = self.shared.http.execute(request).await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await?;
        let request_id = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(RawResponse {
            status,
            headers,
            body,
            request_id,
        })
    }

    // ---------------------------------------------------------------- typed

    async fn typed<T: DeserializeOwned>(
        &self,
        op: Operation,
        path_params: &[&str],
        query: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<T, ClientError> {
        self.call(op, path_params, query, body).await?.into_json()
    }

    /// `GET /health` (unauthenticated).
    pub async fn health(&self) -> Result<Health, ClientError> {
        self.typed(Operation::Health, &[], &[], None).await
    }

    /// `POST /v3/auth/tokens`: a bearer token for the AK/SK (the server refuses a token-authenticated
    /// call). Use it with [`Client::with_token`].
    pub async fn create_token(&self) -> Result<IssuedToken, ClientError> {
        let response = self
            .call(Operation::CreateToken, &[], &[], None)
            .await?
            .check()?;
        let Some(token) = response.header(SUBJECT_TOKEN_HEADER).map(str::to_owned) else {
            return Err(ClientError::MissingHeader {
                status: response.status,
                name: SUBJECT_TOKEN_HEADER,
                request_id: response.request_id,
            });
        };
        Ok(IssuedToken {
            token,
            body: response.json()?,
        })
    }

    /// `GET /v3/auth/domains`: the caller's domain.
    pub async fn list_auth_domains(&self) -> Result<AuthDomains, ClientError> {
        self.typed(Operation::KeystoneListAuthDomains, &[], &[], None)
            .await
    }

    /// The same client with the domain id the server names for its credential (what the SDK
    /// does before its first v3 call when it has no domain id).
    pub async fn discover_domain_id(&self) -> Result<Self, ClientError> {
        let domains = self.list_auth_domains().await?;
        let Some(domain) = domains.domains.into_iter().next() else {
            return Err(ClientError::InvalidRequest(
                "the server names no domain for this credential".into(),
            ));
        };
        let mut credentials = self.shared.credentials.clone();
        credentials.domain_id = Some(domain.id);
        Ok(self.with_credentials(credentials))
    }

    /// `POST /v2/{project_id}/scm/cert/purchase`.
    pub async fn v2_purchase(
        &self,
        project_id: &str,
        body: &PurchaseBody,
    ) -> Result<PurchaseResponse, ClientError> {
        let body = to_json(body)?;
        self.typed(
            Operation::V2PurchaseCertificate,
            &[project_id],
            &[],
            Some(&body),
        )
        .await
    }

    /// `POST /v2/{project_id}/scm/cert/{cert_id}/save`: save (overwrite) the draft application.
    pub async fn v2_save(
        &self,
        project_id: &str,
        cert_id: &str,
        body: &ApplicationBody,
    ) -> Result<RequestInfoResponse, ClientError> {
        let body = to_json(body)?;
        self.typed(
            Operation::V2SaveApplication,
            &[project_id, cert_id],
            &[],
            Some(&body),
        )
        .await
    }

    /// `POST /v2/{project_id}/scm/cert/{cert_id}/complete`: submit `body`, or with `None` (an
    /// empty body) the saved application.
    pub async fn v2_complete(
        &self,
        project_id: &str,
        cert_id: &str,
        body: Option<&ApplicationBody>,
    ) -> Result<RequestInfoResponse, ClientError> {
        let body = body.map(to_json).transpose()?;
        self.typed(
            Operation::V2CompleteApplication,
            &[project_id, cert_id],
            &[],
            body.as_deref(),
        )
        .await
    }

    /// `POST /v2/{project_id}/scm/cert/{cert_id}/push`.
    pub async fn v2_push(
        &self,
        project_id: &str,
        cert_id: &str,
        body: &v2::PushBody,
    ) -> Result<v2::MessageResponse, ClientError> {
        let body = to_json(body)?;
        self.typed(
            Operation::V2PushCertificate,
            &[project_id, cert_id],
            &[],
            Some(&body),
        )
        .await
    }

    /// `POST /v2/{project_id}/scm/cert/{cert_id}/revoke`.
    pub async fn v2_revoke(
        &self,
        project_id: &str,
        cert_id: &str,
        body: &v2::RevokeBody,
    ) -> Result<v2::MessageResponse, ClientError> {
        let body = to_json(body)?;
        self.typed(
            Operation::V2RevokeCertificate,
            &[project_id, cert_id],
            &[],
            Some(&body),
        )
        .await
    }

    /// `GET /crl/<ca id>.crl`: the CRL of a CA of the server, DER (no authentication). The
    /// address is the CRL distribution point of the certificates the CA issued.
    pub async fn crl(&self, ca_id: &str) -> Result<Vec<u8>, ClientError> {
        let file = format!("{ca_id}.crl");
        let resp = self
            .call(Operation::CertificateRevocationList, &[&file], &[], None)
            .await?;
        Ok(resp.check()?.body.to_vec())
    }

    /// `GET /v2/{project_id}/scm/cert/{cert_id}/push-history`.
    pub async fn v2_push_history(
        &self,
        project_id: &str,
        cert_id: &str,
    ) -> Result<v2::PushHistoryResponse, ClientError> {
        self.typed(
            Operation::V2ListPushHistory,
            &[project_id, cert_id],
            &[],
            None,
        )
        .await
    }

    /// `GET /v3/scm/certificates`.
    pub async fn list_certificates(
        &self,
        query: &ListQuery,
    ) -> Result<ListCertificatesResponse, ClientError> {
        let pairs = query.pairs();
        let pairs = pairs
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>();
        self.typed(Operation::ListCertificates, &[], &pairs, None)
            .await
    }

    /// `POST /v3/scm/certificates/buy`.
    pub async fn subscribe(&self, body: &PurchaseBody) -> Result<PurchaseResponse, ClientError> {
        let body = to_json(body)?;
        self.typed(Operation::SubscribeCertificate, &[], &[], Some(&body))
            .await
    }

    /// `GET /v3/scm/certificates/{certificate_id}`.
    pub async fn show(&self, cert_id: &str) -> Result<ShowCertificateResponse, ClientError> {
        self.typed(Operation::ShowCertificate, &[cert_id], &[], None)
            .await
    }

    /// `POST /v3/scm/certificates/{certificate_id}/apply`: the server issues at once.
    pub async fn apply(
        &self,
        cert_id: &str,
        body: &ApplicationBody,
    ) -> Result<RequestInfoResponse, ClientError> {
        let body = to_json(body)?;
        self.typed(Operation::ApplyCertificate, &[cert_id], &[], Some(&body))
            .await
    }

    /// `POST /v3/scm/certificates/{certificate_id}/export`.
    pub async fn export(&self, cert_id: &str) -> Result<ExportCertificateResponse, ClientError> {
        self.typed(Operation::ExportCertificate, &[cert_id], &[], None)
            .await
    }

    /// `POST /v3/scm/certificates/{certificate_id}/push` (answers 204, no body).
    pub async fn push(&self, cert_id: &str, body: &v3::PushBody) -> Result<(), ClientError> {
        let body = to_json(body)?;
        self.call(Operation::PushCertificate, &[cert_id], &[], Some(&body))
            .await?
            .check()?;
        Ok(())
    }

    // --- import ---

    /// `POST /v3/scm/certificates/import`: a certificate made elsewhere, with its chain and key.
    pub async fn import_certificate(
        &self,
        body: &scm_proto::import::ImportCertificateBody,
    ) -> Result<scm_proto::import::ImportCertificateResponse, ClientError> {
        let body = to_json(body)?;
        self.typed(Operation::ImportCertificate, &[], &[], Some(&body))
            .await
    }

    /// `POST /v3/scm/{resource_id}/tags`: adds one tag.
    pub async fn create_tag(
        &self,
        cert_id: &str,
        body: &scm_proto::tags::CreateTagBody,
    ) -> Result<scm_proto::tags::DescResponse, ClientError> {
        let body = to_json(body)?;
        self.typed(
            Operation::CreateCertificateTag,
            &[cert_id],
            &[],
            Some(&body),
        )
        .await
    }

    /// `GET /v3/scm/{resource_id}/tags`.
    pub async fn certificate_tags(
        &self,
        cert_id: &str,
    ) -> Result<scm_proto::tags::ResourceTagsResponse, ClientError> {
        self.typed(Operation::ListTagsByCertificate, &[cert_id], &[], None)
            .await
    }

    /// `POST /v3/scm/{resource_id}/tags/action`: adds or deletes tags.
    pub async fn batch_tags(
        &self,
        cert_id: &str,
        body: &scm_proto::tags::BatchTagsBody,
    ) -> Result<scm_proto::tags::DescResponse, ClientError> {
        let body = to_json(body)?;
        self.typed(
            Operation::BatchCreateOrDeleteTags,
            &[cert_id],
            &[],
            Some(&body),
        )
        .await
    }

    /// `GET /v3/scm/tags`: every key of the account's tags with its values.
    pub async fn all_tags(&self) -> Result<scm_proto::tags::AllTagsResponse, ClientError> {
        self.typed(Operation::ListAllTags, &[], &[], None).await
    }

    // --- lifecycle ---

    /// `DELETE /v3/scm/certificates/{certificate_id}` (answers 204, no body).
    pub async fn delete_certificate(&self, cert_id: &str) -> Result<(), ClientError> {
        self.call(Operation::DeleteCertificate, &[cert_id], &[], None)
            .await?
            .check()?;
        Ok(())
    }

    /// `DELETE /v3/scm/certificates/{cert_id}/unsubscribe`.
    pub async fn unsubscribe(
        &self,
        cert_id: &str,
    ) -> Result<scm_proto::lifecycle::UnsubscribeResponse, ClientError> {
        self.typed(Operation::UnsubscribeCertificate, &[cert_id], &[], None)
            .await
    }

    /// `POST /v3/scm/certificates/{certificate_id}/cancel-cert`.
    pub async fn cancel_certificate_request(
        &self,
        cert_id: &str,
    ) -> Result<scm_proto::lifecycle::CancelCertResponse, ClientError> {
        self.typed(Operation::CancelCertificateRequest, &[cert_id], &[], None)
            .await
    }

    // --- by tag ---

    /// `POST /v3/scm/resource_instances/action`: certificates filtered (or counted) by tags.
    pub async fn certificates_by_tag(
        &self,
        body: &scm_proto::tags::ListByTagBody,
    ) -> Result<scm_proto::tags::ListByTagResponse, ClientError> {
        let body = to_json(body)?;
        self.typed(Operation::ListCertificatesByTag, &[], &[], Some(&body))
            .await
    }

    // --- notices ---

    /// `POST /v3/scm/notification/enable` (`enabled`) or `.../disable`: expiry reminders.
    pub async fn set_notification(
        &self,
        enabled: bool,
        items: &[scm_proto::notices::NoticeBody],
    ) -> Result<scm_proto::notices::NoticeResponse, ClientError> {
        let body = to_json(&items)?;
        let op = if enabled {
            Operation::EnableNotification
        } else {
            Operation::DisableNotification
        };
        self.typed(op, &[], &[], Some(&body)).await
    }

    // --- csr ---

    /// `POST /v3/scm/csr`: the server generates the key and the CSR (answers 201).
    pub async fn create_csr(
        &self,
        body: &scm_proto::csr::CreateCsrBody,
    ) -> Result<scm_proto::csr::CreateCsrResponse, ClientError> {
        let body = to_json(body)?;
        self.typed(Operation::CreateCsr, &[], &[], Some(&body))
            .await
    }

    /// `GET /v3/scm/csr` with the given query pairs (`limit`, `offset`, `name`,
    /// `private_key_algo`).
    pub async fn list_csr(
        &self,
        query: &[(&str, &str)],
    ) -> Result<scm_proto::csr::ListCsrResponse, ClientError> {
        self.typed(Operation::ListCsr, &[], query, None).await
    }

    /// `GET /v3/scm/csr/{id}`.
    pub async fn show_csr(&self, id: &str) -> Result<scm_proto::csr::CsrResponse, ClientError> {
        self.typed(Operation::ShowCsr, &[id], &[], None).await
    }

    /// `PUT /v3/scm/csr/{id}`: renames.
    pub async fn update_csr(
        &self,
        id: &str,
        body: &scm_proto::csr::UpdateCsrBody,
    ) -> Result<scm_proto::csr::CsrResponse, ClientError> {
        let body = to_json(body)?;
        self.typed(Operation::UpdateCsr, &[id], &[], Some(&body))
            .await
    }

    /// `DELETE /v3/scm/csr/{id}` (answers 204, no body).
    pub async fn delete_csr(&self, id: &str) -> Result<(), ClientError> {
        self.call(Operation::DeleteCsr, &[id], &[], None)
            .await?
            .check()?;
        Ok(())
    }

    /// `GET /v3/scm/csr/{id}/private-key`.
    pub async fn show_csr_private_key(
        &self,
        id: &str,
    ) -> Result<scm_proto::csr::CsrPrivateKeyResponse, ClientError> {
        self.typed(Operation::ShowCsrPrivateKey, &[id], &[], None)
            .await
    }

    /// `POST /v3/scm/csr/upload`.
    pub async fn upload_csr(
        &self,
        body: &scm_proto::csr::UploadCsrBody,
    ) -> Result<scm_proto::csr::UploadCsrResponse, ClientError> {
        let body = to_json(body)?;
        self.typed(Operation::UploadCsr, &[], &[], Some(&body))
            .await
    }

    // --- multi-target push ---

    /// `POST /v3/scm/certificates/{id}/batch-push`: one result per region.
    pub async fn batch_push(
        &self,
        id: &str,
        body: &scm_proto::deploy::BatchPushBody,
    ) -> Result<scm_proto::deploy::BatchPushResponse, ClientError> {
        let body = to_json(body)?;
        self.typed(Operation::BatchPushCertificate, &[id], &[], Some(&body))
            .await
    }

    /// `POST /v3/scm/certificates/{id}/deploy`: the resources that failed.
    pub async fn deploy(
        &self,
        id: &str,
        body: &scm_proto::deploy::DeployBody,
    ) -> Result<scm_proto::deploy::DeployResponse, ClientError> {
        let body = to_json(body)?;
        self.typed(Operation::DeployCertificate, &[id], &[], Some(&body))
            .await
    }

    /// `POST /v3/scm/deployed-resources`.
    pub async fn deployed_resources(
        &self,
        body: &scm_proto::deploy::ListDeployedBody,
    ) -> Result<scm_proto::deploy::ListDeployedResponse, ClientError> {
        let body = to_json(body)?;
        self.typed(Operation::ListDeployedResources, &[], &[], Some(&body))
            .await
    }

    // --- openapi ---

    /// `GET /openapi.json` (unauthenticated): the server's OpenAPI 3.1 description, as JSON.
    pub async fn openapi_description(&self) -> Result<serde_json::Value, ClientError> {
        self.typed(Operation::OpenApiDescription, &[], &[], None)
            .await
    }

    // --- tenant ca ---

    /// `GET /v3/scm/ca/root` (OpenSCM extension): the root of the account's own CA, and the
    /// roots of retired CAs that issued its older certificates.
    pub async fn ca_root(&self) -> Result<scm_proto::v3::CaRootResponse, ClientError> {
        self.typed(Operation::ShowCaRoot, &[], &[], None).await
    }

    // --- versions and renewal ---

    /// `GET /v3/scm/certificates/{id}/versions` (OpenSCM extension): the certificate's versions,
    /// renewal state and history.
    pub async fn certificate_versions(
        &self,
        id: &str,
    ) -> Result<scm_proto::v3::CertificateVersionsResponse, ClientError> {
        self.typed(Operation::ListCertificateVersions, &[id], &[], None)
            .await
    }

    /// `POST /v3/scm/certificates/{id}/renew` (OpenSCM extension): renew it now.
    pub async fn renew(
        &self,
        id: &str,
    ) -> Result<scm_proto::v3::RenewCertificateResponse, ClientError> {
        self.typed(Operation::RenewCertificate, &[id], &[], None)
            .await
    }

    /// `PUT /v3/scm/certificates/{id}/auto-renew` (OpenSCM extension).
    pub async fn set_auto_renew(
        &self,
        id: &str,
        on: bool,
    ) -> Result<scm_proto::v3::AutoRenewResponse, ClientError> {
        let body = to_json(&scm_proto::v3::AutoRenewBody {
            auto_renew: Some(on),
        })?;
        self.typed(Operation::UpdateAutoRenew, &[id], &[], Some(&body))
            .await
    }

    /// `POST /v3/scm/certificates/{id}/versions/{version}/export` (OpenSCM extension).
    pub async fn export_version(
        &self,
        id: &str,
        version: u32,
    ) -> Result<scm_proto::v3::ExportCertificateResponse, ClientError> {
        let version = version.to_string();
        self.typed(
            Operation::ExportCertificateVersion,
            &[id, version.as_str()],
            &[],
            None,
        )
        .await
    }

    /// `GET /v3/scm/certificates/{id}/deployments` (OpenSCM extension).
    pub async fn deployments(
        &self,
        id: &str,
    ) -> Result<scm_proto::v3::CertificateDeploymentsResponse, ClientError> {
        self.typed(Operation::ListCertificateDeployments, &[id], &[], None)
            .await
    }

    /// `POST /v3/scm/certificates/{id}/deployments/{target}/push` (OpenSCM extension).
    pub async fn push_to_target(
        &self,
        id: &str,
        target: &str,
    ) -> Result<scm_proto::v3::PushToTargetResponse, ClientError> {
        self.typed(Operation::PushCertificateToTarget, &[id, target], &[], None)
            .await
    }
}

fn to_json<T: Serialize>(body: &T) -> Result<Vec<u8>, ClientError> {
    serde_json::to_vec(body).map_err(ClientError::Encode)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::Tamper;

    const DATE: OffsetDateTime = datetime!(2024-01-02 03:04:05 UTC);

    fn client() -> Client {
        Client::builder(
            "http://127.0.0.1:8080",
            Credentials::new(
                "AKTESTAKTESTAKTEST01",
                "SKtestSKtestSKtestSKtestSKtestSKtest0001",
            )
            .with_domain_id("d0m41n1d0000000000000000000000ab")
            .with_project_id("p40j3c71d0000000000000000000000c"),
        )
        .clock(|| DATE)
        .build()
        .unwrap()
    }

    fn names(p: &PreparedRequest) -> Vec<&str> {
        p.headers.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// What the server does with a request as received: the verifier must accept it.
    fn verifies(client: &Client, p: &PreparedRequest) -> Result<(), scm_sign::SignError> {
        let headers = p
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect::<Vec<_>>();
        let (raw_path, raw_query) = match p.target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (p.target.as_str(), None),
        };
        let req = scm_sign::Request {
            method: &p.method,
            raw_path,
            raw_query,
            headers: &headers,
            body: &p.body,
        };
        let authz = scm_sign::Authorization::parse(p.header("authorization").unwrap()).unwrap();
        scm_sign::verify(
            &req,
            &authz,
            &client.credentials().secret_key,
            DATE,
            time::Duration::minutes(15),
        )
    }

    /// A compile-time check that every operation has a typed method: a new operation does not
    /// compile here until it is mapped.
    fn typed_method(op: Operation) -> &'static str {
        match op {
            Operation::Health => "health",
            Operation::CreateToken => "create_token",
            Operation::KeystoneListAuthDomains => "list_auth_domains",
            Operation::V2PurchaseCertificate => "v2_purchase",
            Operation::V2SaveApplication => "v2_save",
            Operation::V2CompleteApplication => "v2_complete",
            Operation::V2PushCertificate => "v2_push",
            Operation::V2ListPushHistory => "v2_push_history",
            // --- revocation ---
            Operation::V2RevokeCertificate => "v2_revoke",
            Operation::ListCertificates => "list_certificates",
            Operation::SubscribeCertificate => "subscribe",
            Operation::ShowCertificate => "show",
            Operation::ApplyCertificate => "apply",
            Operation::ExportCertificate => "export",
            Operation::PushCertificate => "push",
            // --- import ---
            Operation::ImportCertificate => "import_certificate",
            Operation::CreateCertificateTag => "create_tag",
            Operation::ListTagsByCertificate => "certificate_tags",
            Operation::BatchCreateOrDeleteTags => "batch_tags",
            Operation::ListAllTags => "all_tags",
            // --- lifecycle ---
            Operation::DeleteCertificate => "delete_certificate",
            Operation::UnsubscribeCertificate => "unsubscribe",
            Operation::CancelCertificateRequest => "cancel_certificate_request",
            // --- by tag ---
            Operation::ListCertificatesByTag => "certificates_by_tag",
            // --- notices --- (one method for both)
            Operation::EnableNotification => "set_notification(true)",
            Operation::DisableNotification => "set_notification(false)",
            // --- csr ---
            Operation::CreateCsr => "create_csr",
            Operation::ListCsr => "list_csr",
            Operation::ShowCsr => "show_csr",
            Operation::UpdateCsr => "update_csr",
            Operation::DeleteCsr => "delete_csr",
            Operation::ShowCsrPrivateKey => "show_csr_private_key",
            Operation::UploadCsr => "upload_csr",
            // --- multi-target push ---
            Operation::BatchPushCertificate => "batch_push",
            Operation::DeployCertificate => "deploy",
            Operation::ListDeployedResources => "deployed_resources",
            // --- openapi ---
            Operation::OpenApiDescription => "openapi_description",
            // --- revocation ---
            Operation::CertificateRevocationList => "crl",
            // --- tenant ca ---
            Operation::ShowCaRoot => "ca_root",
            // --- versions and renewal ---
            Operation::ListCertificateVersions => "certificate_versions",
            Operation::RenewCertificate => "renew",
            Operation::UpdateAutoRenew => "set_auto_renew",
            Operation::ExportCertificateVersion => "export_version",
            Operation::ListCertificateDeployments => "deployments",
            Operation::PushCertificateToTarget => "push_to_target",
        }
    }

    #[test]
    fn every_operation_has_a_typed_method() {
        let names = Operation::ALL
            .iter()
            .map(|op| typed_method(*op))
            .collect::<std::collections::HashSet<_>>();
        assert_eq!(names.len(), Operation::ALL.len());
    }

    #[test]
    fn a_v3_request_carries_the_domain_id_and_verifies() {
        let c = client();
        let p = c.prepare(&c.request(
            Operation::ApplyCertificate,
            &["scs1700000000000"],
            &[],
            Some(b"{}"),
        ));
        assert_eq!(p.method, "POST");
        assert_eq!(p.target, "/v3/scm/certificates/scs1700000000000/apply");
        assert_eq!(
            names(&p),
            [
                "Content-Type",
                "X-Domain-Id",
                "X-Sdk-Date",
                "Host",
                "Authorization"
            ]
        );
        assert_eq!(p.header("content-type"), Some("application/json"));
        assert_eq!(
            p.header("x-domain-id"),
            Some("d0m41n1d0000000000000000000000ab")
        );
        assert_eq!(p.header("x-sdk-date"), Some("20240102T030405Z"));
        assert_eq!(p.header("host"), Some("127.0.0.1:8080"));
        let authz = p.header("authorization").unwrap();
        assert!(
            authz.starts_with(
                "SDK-HMAC-SHA256 Access=AKTESTAKTESTAKTEST01, SignedHeaders=content-type;host;x-domain-id;x-sdk-date, Signature="
            ),
            "{authz}"
        );
        assert_eq!(p.body, b"{}");
        verifies(&c, &p).unwrap();

        // Without a known domain id, no X-Domain-Id.
        let mut creds = c.credentials().clone();
        creds.domain_id = None;
        let c = c.with_credentials(creds);
        let p = c.prepare(&c.request(Operation::ListCertificates, &[], &[], None));
        assert_eq!(
            names(&p),
            ["Content-Type", "X-Sdk-Date", "Host", "Authorization"]
        );
    }

    #[test]
    fn a_v2_request_carries_the_project_id_and_verifies() {
        let c = client();
        let req = c.request(
            Operation::V2ListPushHistory,
            &["p40j3c71d0000000000000000000000c", "scs1700000000000"],
            &[],
            None,
        );
        let p = c.prepare(&req);
        assert_eq!(p.method, "GET");
        assert_eq!(
            p.target,
            "/v2/p40j3c71d0000000000000000000000c/scm/cert/scs1700000000000/push-history"
        );
        assert_eq!(
            names(&p),
            [
                "Content-Type",
                "X-Project-Id",
                "X-Sdk-Date",
                "Host",
                "Authorization"
            ]
        );
        assert_eq!(
            p.header("x-project-id"),
            Some("p40j3c71d0000000000000000000000c")
        );
        assert!(p.header("x-domain-id").is_none());
        verifies(&c, &p).unwrap();

        // Without a project in the credential, the path's is sent.
        let mut creds = c.credentials().clone();
        creds.project_id = None;
        let c = c.with_credentials(creds);
        let p = c.prepare(&c.request(Operation::V2ListPushHistory, &["x", "scs1"], &[], None));
        assert_eq!(p.header("x-project-id"), Some("x"));
    }

    #[test]
    fn health_is_unauthenticated_and_tokens_replace_the_signature() {
        let c = client();
        let p = c.prepare(&c.request(Operation::Health, &[], &[], None));
        assert!(p.headers.is_empty(), "{:?}", p.headers);

        let t = c.with_token("tok");
        let p = t.prepare(&t.request(Operation::ShowCertificate, &["scs1"], &[], None));
        assert_eq!(
            p.headers,
            [
                ("Content-Type".to_owned(), "application/json".to_owned()),
                (
                    "X-Domain-Id".to_owned(),
                    "d0m41n1d0000000000000000000000ab".to_owned()
                ),
                ("X-Auth-Token".to_owned(), "tok".to_owned()),
            ]
        );
        assert!(!format!("{:?}", t.auth()).contains("tok"));
    }

    #[test]
    fn queries_sign_over_the_canonical_form_but_go_out_as_given() {
        let c = client();
        let q = ListQuery {
            status: Some("ISSUED".into()),
            content: Some("a b".into()),
            limit: Some(5),
            ..ListQuery::default()
        };
        let pairs = q.pairs();
        let pairs = pairs
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>();
        let p = c.prepare(&c.request(Operation::ListCertificates, &[], &pairs, None));
        assert_eq!(
            p.target,
            "/v3/scm/certificates?limit=5&status=ISSUED&content=a%20b"
        );
        verifies(&c, &p).unwrap();
    }

    #[test]
    fn raw_requests_sign_stale_dates_and_tampering_breaks_the_signature() {
        let c = client();
        let stale = c.prepare(
            &c.request(Operation::ShowCertificate, &["scs1"], &[], None)
                .signed_at(datetime!(2023-12-31 00:00:00 UTC)),
        );
        assert_eq!(stale.header("x-sdk-date"), Some("20231231T000000Z"));
        assert_eq!(verifies(&c, &stale), Err(scm_sign::SignError::Skew));

        let clock = c.with_clock(|| datetime!(2024-01-02 03:30:00 UTC));
        let p = clock.prepare(&clock.request(Operation::ShowCertificate, &["scs1"], &[], None));
        assert_eq!(p.header("x-sdk-date"), Some("20240102T033000Z"));
        assert_eq!(verifies(&c, &p), Err(scm_sign::SignError::Skew));

        let body = c.prepare(
            &c.request(Operation::ApplyCertificate, &["scs1"], &[], Some(b"{}"))
                .tamper(Tamper::Body(b"{\"domain\":\"x\"}".to_vec())),
        );
        assert_eq!(verifies(&c, &body), Err(scm_sign::SignError::BadSignature));

        let header = c.prepare(
            &c.request(Operation::ShowCertificate, &["scs1"], &[], None)
                .tamper(Tamper::SetHeader("X-Domain-Id".into(), "other".into())),
        );
        assert_eq!(
            verifies(&c, &header),
            Err(scm_sign::SignError::BadSignature)
        );

        // An unsigned header may change freely.
        let free = c.prepare(
            &c.request(Operation::ShowCertificate, &["scs1"], &[], None)
                .tamper(Tamper::AddHeader("X-Extra".into(), "1".into())),
        );
        verifies(&c, &free).unwrap();

        // A raw, unsorted, oddly encoded target is signed as the server will read it.
        let raw = c.prepare(
            &RawRequest::new(
                "GET",
                "/v3/scm/certificates?status=ISSUED&limit=%35&content=a+b",
            )
            .header("Content-Type", "application/json"),
        );
        assert_eq!(
            raw.target,
            "/v3/scm/certificates?status=ISSUED&limit=%35&content=a+b"
        );
        verifies(&c, &raw).unwrap();

        let unsigned = c.prepare(&RawRequest::new("GET", "/v3/scm/certificates").unauthenticated());
        assert!(unsigned.headers.is_empty());
    }

    #[test]
    fn endpoints_are_checked() {
        let creds = Credentials::new("AK", "SK");
        for bad in [
            "127.0.0.1:8080",
            "ftp://x",
            "http://x/prefix",
            "http://x?a=b",
            "nope",
        ] {
            assert!(
                matches!(Client::new(bad, creds.clone()), Err(ClientError::Config(_))),
                "{bad}"
            );
        }
        let c = Client::new("http://[::1]:80/", creds.clone()).unwrap();
        assert_eq!(c.endpoint(), "http://[::1]");
        assert_eq!(c.shared.host, "[::1]");
        let c = Client::new("https://scm.example:8443", creds.clone()).unwrap();
        assert_eq!(c.shared.host, "scm.example:8443");
        assert!(matches!(
            Client::builder("https://x", creds)
                .root_ca_pem("not a pem")
                .build(),
            Err(ClientError::Config(_))
        ));
    }
}
