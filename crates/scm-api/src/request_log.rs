//! Request ids and the access log: one line per request.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use scm_core::Principal;
use scm_proto::{Operation, RequestId};

use axum::response::IntoResponse;

use crate::error::{ApiError, ErrorNote};

/// A new request id. Falls back to a time-based id if the system generator fails, since a
/// response must always carry one.
fn request_id() -> RequestId {
    match scm_core::random::bytes::<16>() {
        Ok(b) => RequestId::from_random(b),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            RequestId::from_random(nanos.to_be_bytes())
        }
    }
}

/// Outermost layer: gives every request a 32-hex id (echoed in `X-Request-Id`), bounds the whole
/// request by `deadline` (503 `APIGW.0203` past it; work it started, such as a delivery job, goes
/// on), and writes one log line per request with its operation, account and outcome. Internal
/// error causes are logged here, with the request id, and never sent.
pub(crate) async fn request_id_and_log(
    State(deadline): State<std::time::Duration>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = request_id();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    req.extensions_mut().insert(id.clone());
    let mut resp = match tokio::time::timeout(deadline, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::RequestTimeout.into_response(),
    };
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
    let code = note
        .as_ref()
        .map(|n| tracing::field::display(n.code.as_str()));
    let cause = note
        .as_ref()
        .and_then(|n| n.internal.as_deref())
        .map(tracing::field::display);
    let outcome = match (status, &code) {
        (500.., _) => "request failed",
        (_, Some(_)) => "request refused",
        _ => "request",
    };
    macro_rules! log_line {
        ($level:ident) => {
            tracing::$level!(request_id = %id, %method, %path, operation = %op, %account, status, code, cause, micros, "{outcome}")
        };
    }
    if status >= 500 {
        log_line!(error);
    } else {
        log_line!(info);
    }
    resp
}
