//! Request ids, access logs and authentication.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use scm_core::Principal;
use scm_proto::Operation;

use crate::error::{ApiError, ErrorNote};
use crate::{AppState, MAX_BODY};

/// Outermost layer: gives every request a 32-hex id (echoed in `X-Request-Id`) and writes one log
/// line per request with its operation, account and outcome. Internal error causes are logged
/// here, with the request id, and never sent.
pub(crate) async fn request_id_and_log(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = scm_core::random::request_id();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    req.extensions_mut().insert(id.clone());
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(id.as_str()) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let op = resp
        .extensions()
        .get::<Operation>()
        .copied()
        .map(Operation::name)
        .unwrap_or("Unknown");
    let account = resp
        .extensions()
        .get::<Principal>()
        .map(|p| p.account.to_string())
        .unwrap_or_default();
    let note = resp.extensions().get::<ErrorNote>().cloned();
    let status = resp.status().as_u16();
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    match note {
        Some(ErrorNote {
            code,
            internal: Some(cause),
        }) if status >= 500 => {
            tracing::error!(request_id = %id, %method, %path, operation = %op, %account, status, code = %code, %cause, micros, "request failed");
        }
        Some(ErrorNote {
            code,
            internal: Some(cause),
        }) => {
            tracing::info!(request_id = %id, %method, %path, operation = %op, %account, status, code = %code, %cause, micros, "request refused");
        }
        Some(ErrorNote {
            code,
            internal: None,
        }) => {
            tracing::info!(request_id = %id, %method, %path, operation = %op, %account, status, code = %code, micros, "request refused");
        }
        None => {
            tracing::info!(request_id = %id, %method, %path, operation = %op, %account, status, micros, "request")
        }
    }
    resp
}

/// The operation a matched route serves.
fn operation(method: &Method, route: &str) -> Option<Operation> {
    match (method.as_str(), route) {
        ("POST", "/v3/auth/tokens") => Some(Operation::CreateToken),
        ("POST", "/v2/{project_id}/scm/cert/purchase") => Some(Operation::V2PurchaseCertificate),
        ("POST", "/v2/{project_id}/scm/cert/{cert_id}/save") => Some(Operation::V2SaveApplication),
        ("POST", "/v2/{project_id}/scm/cert/{cert_id}/complete") => {
            Some(Operation::V2CompleteApplication)
        }
        ("POST", "/v2/{project_id}/scm/cert/{cert_id}/push") => Some(Operation::V2PushCertificate),
        ("GET", "/v2/{project_id}/scm/cert/{cert_id}/push-history") => {
            Some(Operation::V2ListPushHistory)
        }
        ("GET", "/v3/scm/certificates") => Some(Operation::ListCertificates),
        ("POST", "/v3/scm/certificates/buy") => Some(Operation::SubscribeCertificate),
        ("GET", "/v3/scm/certificates/{certificate_id}") => Some(Operation::ShowCertificate),
        ("POST", "/v3/scm/certificates/{certificate_id}/apply") => {
            Some(Operation::ApplyCertificate)
        }
        ("POST", "/v3/scm/certificates/{certificate_id}/export") => {
            Some(Operation::ExportCertificate)
        }
        ("POST", "/v3/scm/certificates/{certificate_id}/push") => Some(Operation::PushCertificate),
        ("GET", "/v3/auth/domains") => Some(Operation::KeystoneListAuthDomains),
        _ => None,
    }
}

/// Route layer of every API route: buffers the body (the signature covers it), authenticates,
/// and hands the [`Principal`] to the handler.
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let op = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|m| operation(req.method(), m.as_str()));
    let (mut parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return with_op(ApiError::BodyTooLarge.into_response(), op, None),
    };
    let headers: Vec<(&str, &str)> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
        .collect();
    let sign_req = scm_sign::Request {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query: parts.uri.query(),
        headers: &headers,
        body: &bytes,
    };
    let principal = match state.scm.authenticate(&sign_req).await {
        Ok(p) => p,
        Err(e) => return with_op(ApiError::from(e).into_response(), op, None),
    };
    parts.extensions.insert(principal.clone());
    let req = Request::from_parts(parts, Body::from(bytes));
    with_op(next.run(req).await, op, Some(principal))
}

fn with_op(mut resp: Response, op: Option<Operation>, p: Option<Principal>) -> Response {
    if let Some(op) = op {
        resp.extensions_mut().insert(op);
    }
    if let Some(p) = p {
        resp.extensions_mut().insert(p);
    }
    resp
}
