//! The web console at `/console`: sign-in with an access key and secret key, the account's
//! inventory (the list operation of the API, with its search, status filter, sorts and paging),
//! a certificate's details, export and revocation (after a confirmation page), the expiry
//! timeline, and the download of the account's root (`/console/ca-root.pem`). Server-rendered HTML that works
//! without JavaScript; the stylesheet is embedded in the binary.
//!
//! Its routes are their own small router, merged into the API's inside the request-log layer
//! (request ids, one log line per request), and not in the operation table: that table is the
//! Huawei API's. Handlers are thin: the session, CSRF and sign-in rules are in
//! `scm_core::service::console`, the HTML in [`html`].
//!
//! A session is a cookie `openscm_console` (`Secure; HttpOnly; SameSite=Strict; Path=/console`,
//! 8 hours, also ended on the server at that time); every state-changing form (sign-out, export,
//! revoke)
//! carries the session's CSRF token, checked in constant time. Every state-changing form, sign-in
//! included, must come from the console itself: a browser's `Sec-Fetch-Site` must say
//! `same-origin` (or `none`), else its `Origin` must be this host; a request with neither (an old
//! browser, a script) must carry the sign-in form's own token (double-submit: a `SameSite=Strict`
//! cookie set with the form, and the same value in the form), so another site cannot sign a
//! victim's browser into the attacker's session (login CSRF).
//!
//! Bodies follow the API's rules: a form is at most [`crate::MAX_FORM_BODY`] bytes (a larger
//! declared length is refused before anything is read), must arrive within the body deadline,
//! and the session of sign-out, export and revoke is checked before their body is read. Every answer carries a strict
//! Content-Security-Policy (no script at all), `X-Frame-Options: DENY`,
//! `Referrer-Policy: no-referrer` and `X-Content-Type-Options: nosniff`; pages are `no-store`.

mod html;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use scm_core::service::console::{self as core_console, SESSION_TTL, SignInError, SignInLimiter};
use scm_core::{DomainError, ListRequest, Principal};

use crate::body::{BodyRefusal, read_body};
use crate::request_log::{AuditCall, AuditSubject};

/// The audit log's name of a console sign-in.
pub(crate) const SIGN_IN: &str = "ConsoleSignIn";
/// The audit log's name of a console sign-out.
pub(crate) const SIGN_OUT: &str = "ConsoleSignOut";
/// The audit log's name of an export (certificate, chain and key) through the console.
pub(crate) const EXPORT: &str = "ConsoleExportCertificate";
/// The audit log's name of a revocation through the console.
pub(crate) const REVOKE: &str = "ConsoleRevokeCertificate";
/// The audit log's name of a renewal asked for through the console.
pub(crate) const RENEW: &str = "ConsoleRenewCertificate";
/// The audit log's name of an auto-renew switch turned through the console.
pub(crate) const AUTO_RENEW: &str = "ConsoleUpdateAutoRenew";
/// The audit log's name of a push to one target asked for through the console.
pub(crate) const PUSH_TARGET: &str = "ConsolePushToTarget";
/// The audit log's name of a push again to every target a certificate is deployed to.
pub(crate) const PUSH_ALL: &str = "ConsolePushToAllTargets";
/// The audit log's name of expiry reminders turned on or off through the console.
pub(crate) const REMINDERS: &str = "ConsoleUpdateReminders";
/// The audit log's name of a deletion through the console.
pub(crate) const DELETE: &str = "ConsoleDeleteCertificate";
use scm_proto::CertificateId;
use scm_sign::SecretKey;
use scm_store::CertificateRecord;
use zeroize::Zeroizing;

use crate::error::ApiError;
use crate::{AppState, Peer, parse};

use html::{ChainEntry, Chrome, Details};

/// The session cookie's name.
const COOKIE: &str = "openscm_console";

/// The cookie of the sign-in form's token (login CSRF, for requests without `Origin` and
/// `Sec-Fetch-Site`).
const LOGIN_COOKIE: &str = "openscm_console_login";

/// The embedded stylesheet.
const STYLE: &str = include_str!("assets/console.css");

/// Items per inventory page unless the query says (the list API's range, 10..=50).
const PAGE_SIZE: u32 = 20;

/// The console's Content-Security-Policy: only the console's own stylesheet, no script, no
/// framing, forms only to itself.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// The console's routes (merged into the API router, inside its request-log layer).
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(home))
        .route("/console/", get(home))
        .route("/console/sign-in", get(sign_in_form).post(sign_in))
        .route("/console/sign-out", post(sign_out))
        .route("/console/certificates", get(inventory))
        .route("/console/certificates/{id}", get(details))
        .route("/console/certificates/{id}/export", post(export))
        .route("/console/certificates/{id}/renew", post(renew))
        .route("/console/certificates/{id}/auto-renew", post(auto_renew))
        .route("/console/certificates/{id}/push-target", post(push_target))
        .route("/console/certificates/{id}/push-all", post(push_all))
        .route("/console/certificates/{id}/reminders", post(reminders))
        .route(
            "/console/certificates/{id}/delete",
            get(delete_form).post(delete),
        )
        .route(
            "/console/certificates/{id}/revoke",
            get(revoke_form).post(revoke),
        )
        .route("/console/timeline", get(timeline))
        .route("/console/ca-root.pem", get(ca_root))
        .route("/console/static/console.css", get(style))
        .layer(Extension(Arc::new(SignInLimiter::new())))
        .layer(axum::middleware::map_response(security_headers))
}

/// The headers every console answer carries.
async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// The `Set-Cookie` value of a new session.
pub(crate) fn session_cookie(token: &str, max_age_seconds: i64) -> String {
    format!(
        "{COOKIE}={token}; Path=/console; Max-Age={max_age_seconds}; Secure; HttpOnly; SameSite=Strict"
    )
}

/// The `Set-Cookie` value that deletes the session cookie.
pub(crate) fn cleared_cookie() -> String {
    session_cookie("", 0)
}

/// The session cookie's value, if the request has one.
fn cookie(headers: &HeaderMap) -> Option<Zeroizing<String>> {
    cookie_named(headers, COOKIE)
}

/// The value of the cookie `name`, if the request has one.
fn cookie_named(headers: &HeaderMap, name: &str) -> Option<Zeroizing<String>> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| Zeroizing::new(v.trim().to_owned()))
        .filter(|v| !v.is_empty())
}

/// Where a state-changing form came from, by the browser's own word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FormOrigin {
    /// `Sec-Fetch-Site: same-origin` (or `none`: typed, a bookmark), or an `Origin` naming this
    /// host.
    Console,
    /// Another site, or an `Origin` of `null`.
    Elsewhere,
    /// The request says neither (no such header): only a token can tell.
    Unknown,
}

/// Reads `Sec-Fetch-Site`, then `Origin` (against the `Host` the request was sent to).
fn form_origin(headers: &HeaderMap) -> FormOrigin {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_ascii_lowercase())
    };
    if let Some(site) = text("sec-fetch-site") {
        return if site == "same-origin" || site == "none" {
            FormOrigin::Console
        } else {
            FormOrigin::Elsewhere
        };
    }
    let Some(origin) = text("origin") else {
        return FormOrigin::Unknown;
    };
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    match (authority, text("host")) {
        (Some(a), Some(host)) if a.trim_end_matches('/') == host => FormOrigin::Console,
        _ => FormOrigin::Elsewhere,
    }
}

/// The 403 page of a form sent from elsewhere.
fn cross_site_refusal() -> Response {
    tracing::warn!("console form refused: sent from another site");
    page(
        StatusCode::FORBIDDEN,
        html::problem(
            None,
            "Refused",
            "The form was not sent from this console. Open the console and try again.",
        ),
    )
}

/// Reads a console form's body within the API's rules: at most [`crate::MAX_FORM_BODY`] bytes (a
/// larger declared length is refused unread) and within the body deadline. `Err` is the answer.
async fn read_form(
    s: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<(String, String)>, Response> {
    let too_large = || {
        page(
            StatusCode::PAYLOAD_TOO_LARGE,
            html::problem(
                None,
                "Refused",
                "The form is larger than a console form can be.",
            ),
        )
    };
    match read_body(headers, body, crate::MAX_FORM_BODY, s.limits.body_timeout).await {
        Ok(bytes) => Ok(form(&bytes)),
        Err(BodyRefusal::TooLarge) => Err(too_large()),
        Err(BodyRefusal::Timeout) => Err(page(
            StatusCode::REQUEST_TIMEOUT,
            html::problem(None, "Refused", "The form did not arrive in time."),
        )),
    }
}

/// The client's address for the sign-in throttle: the TCP peer, or, when the peer is a proxy the
/// operator trusts, the right-most address of `X-Forwarded-For` that is not itself a trusted
/// proxy. An IPv6 client counts by its /64 (the block one client usually has).
fn client_address(s: &AppState, peer: Option<std::net::IpAddr>, headers: &HeaderMap) -> String {
    let trusted = |ip: &std::net::IpAddr| s.limits.trusted_proxies.iter().any(|c| c.contains(*ip));
    let mut client = peer;
    if peer.as_ref().is_some_and(trusted) {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in forwarded.iter().rev() {
            match hop.parse::<std::net::IpAddr>() {
                Ok(ip) if trusted(&ip) => continue,
                Ok(ip) => {
                    client = Some(ip);
                    break;
                }
                // A hop that is no address: stop at the last one that was.
                Err(_) => break,
            }
        }
    }
    client.map_or_else(
        || "unknown".to_owned(),
        |ip| crate::address::AddressKey::of(ip).to_string(),
    )
}

/// A signed-in request.
struct Session {
    principal: Principal,
    /// The account's name (what the operator chose; the id is a hex string no one recognises).
    account_name: String,
    token: Zeroizing<String>,
    csrf: String,
}

impl Session {
    fn chrome(&self) -> Chrome<'_> {
        Chrome {
            account: &self.account_name,
            account_id: self.principal.account.as_str(),
            access_key: self.principal.access_key.as_str(),
            csrf: &self.csrf,
        }
    }
}

/// The request's session, or the answer to give instead: to the sign-in page when there is
/// none (or it ended), an error page when the store fails.
async fn session(s: &AppState, headers: &HeaderMap) -> Result<Session, Response> {
    let Some(token) = cookie(headers) else {
        return Err(to_sign_in(false));
    };
    let principal = match s.scm.console_session(&token).await {
        Ok(principal) => principal,
        Err(DomainError::Unauthenticated(_)) => return Err(to_sign_in(true)),
        Err(e) => return Err(failure(None, e)),
    };
    // The account is cached beside the credential that authenticated the session.
    let account_name = match s.scm.account(&principal.account).await {
        Ok(Some(a)) => a.name.clone(),
        Ok(None) => principal.account.as_str().to_owned(),
        Err(e) => return Err(failure(None, e)),
    };
    Ok(Session {
        csrf: core_console::csrf_token(&token),
        principal,
        account_name,
        token,
    })
}

/// 303 to the sign-in page (deleting a cookie that no longer names a session).
fn to_sign_in(clear: bool) -> Response {
    let mut resp = see_other("/console/sign-in");
    if clear && let Ok(v) = HeaderValue::from_str(&cleared_cookie()) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

fn see_other(to: &'static str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, HeaderValue::from_static(to)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response()
}

/// An HTML page (never cached: it holds the account's data).
fn page(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

/// Puts the caller on the answer, for the access log.
fn signed(mut resp: Response, s: &Session) -> Response {
    resp.extensions_mut().insert(s.principal.clone());
    resp
}

/// The answer to a domain error: the status (and the log note) of the API's one mapping, with an
/// HTML page instead of the JSON body.
fn failure(chrome: Option<&Chrome<'_>>, e: DomainError) -> Response {
    let (mut parts, _) = ApiError::from(e).into_response().into_parts();
    let title = match parts.status {
        StatusCode::NOT_FOUND => "Not found",
        s if s.is_server_error() => "Something went wrong",
        _ => "Refused",
    };
    let text = match parts.status {
        StatusCode::NOT_FOUND => "There is no such certificate in this account.".to_owned(),
        s if s.is_server_error() => {
            "The server could not answer; the request id in the X-Request-Id header is in its log."
                .to_owned()
        }
        s => format!(
            "The request was refused ({}).",
            s.canonical_reason().unwrap_or("")
        ),
    };
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    parts
        .headers
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Response::from_parts(parts, Body::from(html::problem(chrome, title, &text)))
}

/// The `key=value` pairs of a form body (`application/x-www-form-urlencoded`: `+` is a space).
fn form(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body).replace('+', "%20");
    parse::query_pairs(Some(&text)).unwrap_or_default()
}

/// The value of `name` in a form, taken out of it.
fn take(form: &mut [(String, String)], name: &str) -> Zeroizing<String> {
    let v = form
        .iter_mut()
        .find(|(k, _)| k == name)
        .map(|(_, v)| std::mem::take(v))
        .unwrap_or_default();
    Zeroizing::new(v)
}

/// Checks a form's CSRF token against the session's; `Some` is the 403 to answer instead.
fn csrf_refusal(s: &Session, form: &mut [(String, String)]) -> Option<Response> {
    let presented = take(form, "csrf");
    if core_console::csrf_matches(&s.token, &presented) {
        return None;
    }
    tracing::warn!(account = %s.principal.account, "console form refused: bad CSRF token");
    Some(signed(
        page(
            StatusCode::FORBIDDEN,
            html::problem(
                Some(&s.chrome()),
                "Refused",
                "The form was not sent by this console session (its CSRF token is missing or wrong). Reload the page and try again.",
            ),
        ),
        s,
    ))
}

async fn home(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match session(&s, &headers).await {
        Ok(_) => see_other("/console/certificates"),
        Err(resp) => resp,
    }
}

async fn style() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        STYLE,
    )
        .into_response()
}

async fn sign_in_form() -> Response {
    sign_in_page(StatusCode::OK, None)
}

/// The sign-in page with a fresh form token (its cookie set beside it).
fn sign_in_page(status: StatusCode, message: Option<&str>) -> Response {
    let token = match scm_core::random::token() {
        Ok(t) => Zeroizing::new(t),
        Err(e) => return failure(None, e),
    };
    let mut resp = page(status, html::sign_in(message, &token));
    let cookie = format!(
        "{LOGIN_COOKIE}={}; Path=/console/sign-in; Max-Age=3600; Secure; HttpOnly; SameSite=Strict",
        token.as_str()
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// The one message of every refused sign-in (which key exists is not told).
const REFUSED: &str = "Sign-in refused: the access key and secret key do not match an active \
                       credential, or there were too many failed attempts (wait 15 minutes).";

async fn sign_in(
    State(s): State<AppState>,
    Extension(limiter): Extension<Arc<SignInLimiter>>,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let origin = form_origin(&headers);
    if origin == FormOrigin::Elsewhere {
        return cross_site_refusal();
    }
    let mut fields = match read_form(&s, &headers, body).await {
        Ok(fields) => fields,
        Err(resp) => return resp,
    };
    if origin == FormOrigin::Unknown {
        // No browser word on where the form came from: the form's own token must match its
        // cookie (which another site can neither read nor send).
        let presented = take(&mut fields, "login_csrf");
        let matches = cookie_named(&headers, LOGIN_COOKIE).is_some_and(|c| {
            !presented.is_empty()
                && subtle::ConstantTimeEq::ct_eq(c.as_bytes(), presented.as_bytes()).into()
        });
        if !matches {
            tracing::warn!("console sign-in refused: no origin and no valid form token");
            return sign_in_page(
                StatusCode::FORBIDDEN,
                Some("The sign-in form has expired. Sign in again from this page."),
            );
        }
    }
    let access_key = take(&mut fields, "access_key");
    let secret = SecretKey::new(std::mem::take(&mut *take(&mut fields, "secret_key")));
    let source = client_address(&s, peer.map(|Extension(p)| p.0.ip()), &headers);
    // Refusals the limiter let through are recorded; those it throttles are not: it bounds the
    // first kind, nothing bounds the second (a flood would fill the audit log).
    let checked = limiter.allows(&access_key, &source, s.scm.now_ms());
    match s
        .scm
        .console_sign_in(&limiter, &access_key, &secret, &source)
        .await
    {
        Ok(session) => {
            let mut resp = see_other("/console/certificates");
            let cookie = session_cookie(&session.token, SESSION_TTL.whole_seconds());
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp.extensions_mut().insert(session.principal);
            resp.extensions_mut().insert(AuditCall {
                operation: SIGN_IN,
                targets: Vec::new(),
            });
            resp
        }
        Err(SignInError::Refused) => {
            let mut resp = sign_in_page(StatusCode::UNAUTHORIZED, Some(REFUSED));
            if checked {
                // The key tried, when it is one (never what else was typed there: a secret
                // pasted into the wrong field is no access key), and its account.
                let credential = scm_proto::AccessKeyId::try_from(access_key.trim()).ok();
                let account = match &credential {
                    Some(ak) => s.scm.credential_account(ak).await.ok().flatten(),
                    None => None,
                };
                resp.extensions_mut().insert(AuditCall {
                    operation: SIGN_IN,
                    targets: Vec::new(),
                });
                resp.extensions_mut().insert(AuditSubject {
                    account,
                    credential,
                    outcome: "refused",
                });
            }
            resp
        }
        Err(SignInError::Failed(e)) => failure(None, e),
    }
}

async fn sign_out(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    // The session first: nothing of the body is read for a request without one.
    let session = match session(&s, &headers).await {
        Ok(session) => session,
        Err(resp) => return resp,
    };
    if form_origin(&headers) == FormOrigin::Elsewhere {
        return signed(cross_site_refusal(), &session);
    }
    let mut fields = match read_form(&s, &headers, body).await {
        Ok(fields) => fields,
        Err(resp) => return signed(resp, &session),
    };
    if let Some(resp) = csrf_refusal(&session, &mut fields) {
        return resp;
    }
    let mut resp = match s.scm.console_sign_out(&session.token).await {
        Ok(_) => signed(to_sign_in(true), &session),
        Err(e) => signed(failure(Some(&session.chrome()), e), &session),
    };
    resp.extensions_mut().insert(AuditCall {
        operation: SIGN_OUT,
        targets: Vec::new(),
    });
    resp
}

/// The inventory's query: the list API's parameters (`content`, `status`, `sort_key`,
/// `sort_dir`, `limit`, `offset`, `expired_days_since`, which leaves nothing out unless given)
/// and the timeline's window (`expires_from`, `expires_before`).
fn inventory_request(raw: Option<&str>) -> Result<ListRequest, String> {
    let pairs = parse::query_pairs(raw).map_err(|_| "the query is not valid text".to_owned())?;
    let mut req = parse::list_request(&pairs).map_err(|e| e.to_string())?;
    if !pairs.iter().any(|(k, _)| k == "limit") {
        req.query.limit = PAGE_SIZE;
    }
    // The inventory is the operator's whole estate: expired certificates are in it unless a
    // window is asked for (the API's default of 0 days is for API clients).
    if !pairs.iter().any(|(k, _)| k == "expired_days_since") {
        req.expired_days_since = None;
    }
    let ms = |name: &str| -> Result<Option<i64>, String> {
        pairs
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| {
                v.parse::<i64>()
                    .map_err(|_| format!("{name} must be a time in Unix milliseconds"))
            })
            .transpose()
    };
    req.query.expires_within = match (ms("expires_from")?, ms("expires_before")?) {
        (Some(from), Some(before)) => Some((from, before)),
        (None, None) => None,
        _ => return Err("expires_from and expires_before go together".into()),
    };
    Ok(req)
}

async fn inventory(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let session = match session(&s, &headers).await {
        Ok(session) => session,
        Err(resp) => return resp,
    };
    let req = match inventory_request(raw.as_deref()) {
        Ok(req) => req,
        Err(why) => {
            return signed(
                page(
                    StatusCode::BAD_REQUEST,
                    html::problem(Some(&session.chrome()), "Not a valid filter", &why),
                ),
                &session,
            );
        }
    };
    let resp = match s.scm.list(&session.principal, &req).await {
        Ok((certs, total)) => page(
            StatusCode::OK,
            html::inventory(&session.chrome(), &req.query, &certs, total, s.scm.now_ms()),
        ),
        Err(e) => failure(Some(&session.chrome()), e),
    };
    signed(resp, &session)
}

/// The chain of an issued certificate as shown: leaf first.
fn chain_of(c: &scm_store::CertificateRecord) -> Vec<ChainEntry> {
    let Some(issued) = &c.issued else {
        return Vec::new();
    };
    [&issued.certificate_pem, &issued.chain_pem]
        .into_iter()
        .flat_map(|pem| scm_pki::pem_blocks(pem, "CERTIFICATE"))
        .filter_map(|block| scm_pki::parse_certificate_pem(&block).ok())
        .map(|info| ChainEntry {
            subject: info.subject,
            issuer: info.issuer,
            not_after_ms: i64::try_from(info.not_after.unix_timestamp_nanos() / 1_000_000)
                .unwrap_or(0),
            key_algorithm: info.key_algorithm.map(|k| k.as_str().to_owned()),
        })
        .collect()
}

async fn details(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let session = match session(&s, &headers).await {
        Ok(session) => session,
        Err(resp) => return resp,
    };
    let chrome = session.chrome();
    let Ok(id) = CertificateId::try_from(id.as_str()) else {
        return signed(
            failure(Some(&chrome), DomainError::CertificateNotFound),
            &session,
        );
    };
    let p = &session.principal;
    let loaded = async {
        let (cert, versions, events) = s.scm.versions_of(p, &id).await?;
        let pushes = s.scm.delivery_history(p, &id, 50).await?;
        let deployments: Vec<_> = s
            .scm
            .deployments_of(p, &id)
            .await?
            .into_iter()
            .map(|d| {
                let kind = s.scm.push_target(&d.domain_id, &d.target).map(|t| t.kind);
                (d, kind)
            })
            .collect();
        let tags = s.scm.certificate_tags(p, &id).await?;
        let proofs = s.scm.proofs(&cert).await?;
        let off = s.scm.disabled_notices(p, &id).await?;
        Ok::<_, DomainError>((
            cert,
            pushes,
            deployments,
            tags,
            versions,
            events,
            proofs,
            off,
        ))
    };
    let resp = match loaded.await {
        Ok((cert, pushes, deployments, tags, versions, events, proofs, reminders_off)) => {
            let chain = chain_of(&cert);
            let targets = s.scm.push_target_names(&p.account);
            page(
                StatusCode::OK,
                html::details(
                    &chrome,
                    &Details {
                        cert: &cert,
                        chain: &chain,
                        pushes: &pushes,
                        deployments: &deployments,
                        tags: &tags,
                        versions: &versions,
                        events: &events,
                        proofs: &proofs,
                        reminders_off: &reminders_off,
                        targets: &targets,
                        now_ms: s.scm.now_ms(),
                    },
                ),
            )
        }
        Err(e) => failure(Some(&chrome), e),
    };
    signed(resp, &session)
}

async fn export(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    match certificate_form(&s, &headers, &id, body, EXPORT).await {
        Ok((session, mut fields, call)) => {
            let mut resp = export_for(&s, &session, &id, &mut fields).await;
            resp.extensions_mut().insert(call);
            resp
        }
        Err(resp) => resp,
    }
}

/// Renews a certificate now (the button on its page), then shows the page again.
async fn renew(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    lifecycle_form(&s, &headers, &id, body, RENEW).await
}

/// Turns a certificate's auto-renew switch (`auto_renew=on|off`), then shows its page again.
async fn auto_renew(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    lifecycle_form(&s, &headers, &id, body, AUTO_RENEW).await
}

/// Pushes the current version to one target (`target=<name>`, the button of the deployments
/// table), then shows the page again.
async fn push_target(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    lifecycle_form(&s, &headers, &id, body, PUSH_TARGET).await
}

/// Pushes the current version again to every target it is deployed to, then shows the page
/// again.
async fn push_all(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    lifecycle_form(&s, &headers, &id, body, PUSH_ALL).await
}

/// Turns a certificate's expiry reminders on or off (`reminders=on|off`, both kinds), then
/// shows its page again.
async fn reminders(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    lifecycle_form(&s, &headers, &id, body, REMINDERS).await
}

/// The renew and auto-renew forms: session, origin and CSRF checks as every form, then the one
/// domain operation, then back to the certificate's page (303) or the error page.
async fn lifecycle_form(
    s: &AppState,
    headers: &HeaderMap,
    id: &str,
    body: Body,
    operation: &'static str,
) -> Response {
    let (session, mut fields, call) = match certificate_form(s, headers, id, body, operation).await
    {
        Ok(form) => form,
        Err(resp) => return resp,
    };
    let mut resp = lifecycle_action(s, &session, id, &mut fields, operation).await;
    resp.extensions_mut().insert(call);
    resp
}

async fn lifecycle_action(
    s: &AppState,
    session: &Session,
    id: &str,
    fields: &mut [(String, String)],
    operation: &'static str,
) -> Response {
    if let Some(resp) = csrf_refusal(session, fields) {
        return signed(resp, session);
    }
    let chrome = session.chrome();
    let Ok(cert) = CertificateId::try_from(id) else {
        return signed(
            failure(Some(&chrome), DomainError::CertificateNotFound),
            session,
        );
    };
    let p = &session.principal;
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let done = if operation == RENEW {
        s.scm.renew_now(p, &cert).await.map(|_| ())
    } else if operation == PUSH_TARGET {
        match field("target") {
            Some(target) if !target.is_empty() => s.scm.push_to_target(p, &cert, &target).await,
            _ => Err(DomainError::invalid("target", "must name a push target")),
        }
    } else if operation == PUSH_ALL {
        s.scm.push_to_deployed_targets(p, &cert).await
    } else if operation == REMINDERS {
        // The API's EnableNotification / DisableNotification, for both kinds.
        let item = [scm_proto::notices::NoticeBody {
            resource_id: Some(cert.as_str().to_owned()),
            notice_type: None,
        }];
        match field("reminders").as_deref() {
            Some("on") => s.scm.set_notices(p, Some(&item), true).await,
            Some("off") => s.scm.set_notices(p, Some(&item), false).await,
            _ => Err(DomainError::invalid("reminders", "must be on or off")),
        }
    } else {
        let value = fields
            .iter()
            .find(|(k, _)| k == "auto_renew")
            .map(|(_, v)| v.as_str());
        match value {
            Some("on") => s.scm.set_auto_renew(p, &cert, true).await,
            Some("off") => s.scm.set_auto_renew(p, &cert, false).await,
            _ => Err(DomainError::invalid("auto_renew", "must be on or off")),
        }
    };
    match done {
        Ok(()) => {
            let anchor = match operation {
                PUSH_TARGET | PUSH_ALL => "deployments",
                REMINDERS => "reminders",
                _ => "versions",
            };
            let to = format!(
                "/console/certificates/{}#{anchor}",
                html::query_value(cert.as_str())
            );
            let mut resp = see_other("/console/certificates");
            if let Ok(v) = HeaderValue::from_str(&to) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            signed(resp, session)
        }
        Err(e) => signed(failure(Some(&chrome), e), session),
    }
}

/// A signed-in user's form about certificate `id`, for the audited `operation`: the session
/// first (nothing of the body is read for a request without one), then the form's origin, then
/// its body. Every answer past the session check carries the audit call, refused or not (the
/// `Ok` one is for the caller to add to its own answer).
async fn certificate_form(
    s: &AppState,
    headers: &HeaderMap,
    id: &str,
    body: Body,
    operation: &'static str,
) -> Result<(Session, Vec<(String, String)>, AuditCall), Response> {
    let session = session(s, headers).await?;
    let call = AuditCall {
        operation,
        targets: vec![id.to_owned()],
    };
    let refused = if form_origin(headers) == FormOrigin::Elsewhere {
        cross_site_refusal()
    } else {
        match read_form(s, headers, body).await {
            Ok(fields) => return Ok((session, fields, call)),
            Err(resp) => resp,
        }
    };
    let mut resp = signed(refused, &session);
    resp.extensions_mut().insert(call);
    Err(resp)
}

async fn export_for(
    s: &AppState,
    session: &Session,
    id: &str,
    fields: &mut [(String, String)],
) -> Response {
    if let Some(resp) = csrf_refusal(session, fields) {
        return signed(resp, session);
    }
    let chrome = session.chrome();
    let Ok(id) = CertificateId::try_from(id) else {
        return signed(
            failure(Some(&chrome), DomainError::CertificateNotFound),
            session,
        );
    };
    let e = match s.scm.export(&session.principal, &id).await {
        Ok(e) => e,
        Err(e) => return signed(failure(Some(&chrome), e), session),
    };
    let mut pem = Zeroizing::new(e.entire.clone());
    if !pem.ends_with('\n') {
        pem.push('\n');
    }
    if let Some(key) = &e.private_key {
        pem.push_str(key);
    }
    tracing::info!(account = %session.principal.account, cert = %id, "console export");
    let disposition = format!("attachment; filename=\"{}.pem\"", id.as_str());
    let mut resp = (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-pem-file"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        pem.as_bytes().to_vec(),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    signed(resp, session)
}

// --- revocation and deletion: actions confirmed on a page of their own ---
/// An action the console asks to confirm on a page of its own first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Confirmed {
    /// `ConsoleRevokeCertificate`: the API's revocation, with a reason.
    Revoke,
    /// `ConsoleDeleteCertificate`: `DeleteCertificate`, or `UnsubscribeCertificate` for a
    /// certificate bought and not issued.
    Delete,
}

impl Confirmed {
    /// Whether the console offers it for `c` (the domain operation decides in the end).
    fn offered(self, c: &CertificateRecord, now_ms: i64) -> bool {
        match self {
            Self::Revoke => html::revocable(c),
            Self::Delete => html::removable(c, now_ms),
        }
    }

    /// Its confirmation page; `problem` says why the last attempt was refused.
    fn page(self, chrome: &Chrome<'_>, c: &CertificateRecord, problem: Option<&str>) -> String {
        match self {
            Self::Revoke => html::revoke_form(chrome, c, problem),
            Self::Delete => html::delete_form(chrome, c, problem),
        }
    }

    /// The audit log's name of it.
    fn audited(self) -> &'static str {
        match self {
            Self::Revoke => REVOKE,
            Self::Delete => DELETE,
        }
    }

    /// "revoked", "deleted": for the messages of its page.
    fn done(self) -> &'static str {
        match self {
            Self::Revoke => "revoked",
            Self::Delete => "deleted",
        }
    }
}

/// The caller's certificate `id` if the console offers `action` for it; else the answer to give.
async fn confirmable(
    s: &AppState,
    session: &Session,
    id: &str,
    action: Confirmed,
) -> Result<Arc<CertificateRecord>, Response> {
    let chrome = session.chrome();
    let Ok(id) = CertificateId::try_from(id) else {
        return Err(signed(
            failure(Some(&chrome), DomainError::CertificateNotFound),
            session,
        ));
    };
    let now = s.scm.now_ms();
    match s.scm.certificate(&session.principal, &id).await {
        Ok(c) if action.offered(&c, now) => Ok(c),
        Ok(c) => Err(signed(
            failure(Some(&chrome), DomainError::WrongStatus(c.status_at(now))),
            session,
        )),
        Err(e) => Err(signed(failure(Some(&chrome), e), session)),
    }
}

/// `GET /console/certificates/{id}/revoke`: the confirmation page.
async fn revoke_form(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    confirmation(&s, &headers, &id, Confirmed::Revoke).await
}

/// `GET /console/certificates/{id}/delete`: the confirmation page.
async fn delete_form(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    confirmation(&s, &headers, &id, Confirmed::Delete).await
}

async fn confirmation(s: &AppState, headers: &HeaderMap, id: &str, action: Confirmed) -> Response {
    let session = match session(s, headers).await {
        Ok(session) => session,
        Err(resp) => return resp,
    };
    match confirmable(s, &session, id, action).await {
        Ok(c) => signed(
            page(StatusCode::OK, action.page(&session.chrome(), &c, None)),
            &session,
        ),
        Err(resp) => resp,
    }
}

/// `POST /console/certificates/{id}/revoke`: revokes once the form says `confirm=yes`, then
/// back to the certificate's page.
async fn revoke(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    confirmed(&s, &headers, &id, body, Confirmed::Revoke).await
}

/// `POST /console/certificates/{id}/delete`: deletes once the form says `confirm=yes`, then
/// back to the inventory.
async fn delete(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    confirmed(&s, &headers, &id, body, Confirmed::Delete).await
}

async fn confirmed(
    s: &AppState,
    headers: &HeaderMap,
    id: &str,
    body: Body,
    action: Confirmed,
) -> Response {
    match certificate_form(s, headers, id, body, action.audited()).await {
        Ok((session, mut fields, call)) => {
            let mut resp = confirmed_for(s, &session, id, &mut fields, action).await;
            resp.extensions_mut().insert(call);
            resp
        }
        Err(resp) => resp,
    }
}

async fn confirmed_for(
    s: &AppState,
    session: &Session,
    id: &str,
    fields: &mut [(String, String)],
    action: Confirmed,
) -> Response {
    if let Some(resp) = csrf_refusal(session, fields) {
        return signed(resp, session);
    }
    let cert = match confirmable(s, session, id, action).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let chrome = session.chrome();
    let again = |problem: &str| {
        signed(
            page(
                StatusCode::BAD_REQUEST,
                action.page(&chrome, &cert, Some(problem)),
            ),
            session,
        )
    };
    if take(fields, "confirm").as_str() != "yes" {
        return again(&format!(
            "Not {}: tick the box to confirm that this cannot be undone.",
            action.done()
        ));
    }
    let p = &session.principal;
    let (done, to) = match action {
        Confirmed::Revoke => {
            let reason = take(fields, "reason");
            // The API's rules for text (control and bidirectional characters), then the
            // domain's.
            if let Err(ApiError::BadJson { reason: why, .. }) =
                parse::check_text(&reason, "reason", false)
            {
                return again(&format!("Not revoked: the reason {why}."));
            }
            let done = s.scm.revoke(p, &cert.id, Some(&reason)).await;
            (done, format!("/console/certificates/{}", cert.id.as_str()))
        }
        Confirmed::Delete => {
            // DeleteCertificate where it takes the status, else (bought, not issued)
            // UnsubscribeCertificate.
            let done = if scm_core::service::lifecycle::deletable(cert.status_at(s.scm.now_ms())) {
                s.scm.delete_certificate(p, &cert.id).await
            } else {
                s.scm.unsubscribe_certificate(p, &cert.id).await
            };
            (done, "/console/certificates".to_owned())
        }
    };
    match done {
        Ok(()) => {
            tracing::info!(account = %p.account, cert = %cert.id, action = action.done(), "console action confirmed");
            let mut resp = see_other("/console/certificates");
            if let Ok(v) = HeaderValue::from_str(&to) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            signed(resp, session)
        }
        Err(DomainError::InvalidParameter { reason: why, .. }) if action == Confirmed::Revoke => {
            again(&format!("Not revoked: the reason {why}."))
        }
        Err(e) => signed(failure(Some(&chrome), e), session),
    }
}

async fn timeline(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let session = match session(&s, &headers).await {
        Ok(session) => session,
        Err(resp) => return resp,
    };
    let resp = match s.scm.expiry_timeline(&session.principal).await {
        Ok(t) => page(StatusCode::OK, html::timeline(&session.chrome(), &t)),
        Err(e) => failure(Some(&session.chrome()), e),
    };
    signed(resp, &session)
}

// --- tenant ca ---
/// `GET /console/ca-root.pem`: the roots the account's clients trust (its CA's, then those of
/// retired CAs that issued its older certificates), a PEM bundle to download. Certificates only,
/// nothing secret: a GET, with the session checked as for every page.
async fn ca_root(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let session = match session(&s, &headers).await {
        Ok(session) => session,
        Err(resp) => return resp,
    };
    let roots = match s.scm.account_roots(&session.principal.account).await {
        Ok(roots) => roots,
        Err(e) => return signed(failure(Some(&session.chrome()), e), &session),
    };
    let resp = (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-pem-file"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"ca-root.pem\""),
            ),
        ],
        roots.bundle(),
    )
        .into_response();
    signed(resp, &session)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_cookie_has_every_attribute() {
        let c = session_cookie("OSCMabc", 28_800);
        let parts: Vec<&str> = c.split("; ").collect();
        assert_eq!(parts[0], "openscm_console=OSCMabc");
        for want in [
            "Path=/console",
            "Max-Age=28800",
            "Secure",
            "HttpOnly",
            "SameSite=Strict",
        ] {
            assert!(parts.contains(&want), "{want} in {c}");
        }
        assert_eq!(SESSION_TTL.whole_seconds(), 28_800);
        assert!(cleared_cookie().starts_with("openscm_console=; "));
        assert!(cleared_cookie().contains("Max-Age=0"));
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
        assert!(cookie(&h).is_none());
        h.append(
            header::COOKIE,
            HeaderValue::from_static("x=y; openscm_console=OSCMtok ; z=w"),
        );
        assert_eq!(cookie(&h).as_deref().map(String::as_str), Some("OSCMtok"));
        let mut empty = HeaderMap::new();
        empty.append(header::COOKIE, HeaderValue::from_static("openscm_console="));
        assert!(cookie(&empty).is_none());
    }

    #[test]
    fn forms_decode_plus_as_space_and_percent_escapes() {
        let mut f = form(b"access_key=AK+1&secret_key=a%2Bb%3D&csrf=");
        assert_eq!(take(&mut f, "access_key").as_str(), "AK 1");
        assert_eq!(take(&mut f, "secret_key").as_str(), "a+b=");
        assert_eq!(take(&mut f, "csrf").as_str(), "");
        assert_eq!(take(&mut f, "missing").as_str(), "");
    }

    #[test]
    fn inventory_queries_take_the_list_parameters_and_a_window() {
        let r = inventory_request(Some(
            "content=host-1&status=ISSUED&sort_key=certExpiredTime&sort_dir=ASC&offset=40",
        ))
        .unwrap();
        assert_eq!(r.query.content.as_deref(), Some("host-1"));
        assert_eq!(r.query.limit, PAGE_SIZE);
        assert_eq!(r.query.offset, 40);
        assert!(r.query.ascending);
        let r = inventory_request(Some("expires_from=10&expires_before=20&limit=50")).unwrap();
        assert_eq!(r.query.expires_within, Some((10, 20)));
        assert_eq!(r.query.limit, 50);
        assert!(inventory_request(Some("expires_from=10")).is_err());
        assert!(inventory_request(Some("expires_from=x&expires_before=2")).is_err());
        assert!(inventory_request(Some("sort_key=nope")).is_err());
        assert_eq!(inventory_request(None).unwrap().query.expires_within, None);
    }
}
