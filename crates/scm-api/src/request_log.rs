//! Request ids, the access log (one line per request), the request metrics, and the audit log
//! (one record per audited call, see [`Operation::audited`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::response::Response;
use scm_core::{Principal, Scm};
use scm_proto::{Operation, RequestId};
use scm_store::AuditEvent;

use crate::Peer;
use crate::error::{ApiError, ErrorNote};
use crate::metrics::Metrics;

/// The ids a handler created (an order's certificates, a new CSR), put on its response for the
/// audit log; those the path names are found from the path.
#[derive(Debug, Clone, Default)]
pub(crate) struct AuditTargets(pub Vec<String>);

/// A call outside the operation table that the audit log records all the same (the console's
/// sign-in, sign-out and export of a key): its name and targets, put on its response.
#[derive(Debug, Clone)]
pub(crate) struct AuditCall {
    pub operation: &'static str,
    pub targets: Vec<String>,
}

/// Who a call without a caller concerns (a refused console sign-in: the access key tried, when it
/// is one, and its account, when it has one), put on its response beside its [`AuditCall`], so
/// that the audit log records it although nobody signed in.
#[derive(Debug, Clone)]
pub(crate) struct AuditSubject {
    pub account: Option<scm_proto::DomainId>,
    pub credential: Option<scm_proto::AccessKeyId>,
    /// The outcome recorded (`refused`).
    pub outcome: &'static str,
}

/// What the outermost layer needs.
#[derive(Clone)]
pub(crate) struct LogState {
    /// The bound of a whole request.
    pub deadline: Duration,
    /// Request counters.
    pub metrics: Arc<Metrics>,
    /// Where audit records go.
    pub scm: Arc<Scm>,
}

/// The values of the `{param}` segments of `template` in `path` (the project id left out: it is
/// the caller's, not a target).
fn path_targets(template: &str, path: &str) -> Vec<String> {
    template
        .split('/')
        .zip(path.split('/'))
        .filter(|(t, v)| t.starts_with('{') && *t != "{project_id}" && !v.is_empty())
        .map(|(_, v)| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

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
/// error causes are logged here, with the request id, and never sent. Every request is counted
/// in the metrics; an authenticated call of an audited operation is recorded in the audit log,
/// whatever its outcome, before it is answered. Unauthenticated calls are not recorded (a flood
/// of them must not fill the log): the metrics count them by code.
pub(crate) async fn request_id_and_log(
    State(state): State<LogState>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = request_id();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let peer = req.extensions().get::<Peer>().copied();
    req.extensions_mut().insert(id.clone());
    let deadline = state.deadline;
    let mut resp = match tokio::time::timeout(deadline, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::RequestTimeout.into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(id.as_str()) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let operation = resp.extensions().get::<Operation>().copied();
    let op = operation.map(Operation::name).unwrap_or("Unknown");
    let account = resp
        .extensions()
        .get::<Principal>()
        .map(|p| p.account.to_string())
        .unwrap_or_default();
    let note = resp.extensions().get::<ErrorNote>().cloned();
    let status = resp.status().as_u16();
    let took = started.elapsed();
    let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
    state
        .metrics
        .record(operation, note.as_ref().map(|n| n.code), took);
    let audited = match (
        operation.filter(|o| o.audited()),
        resp.extensions().get::<AuditCall>(),
    ) {
        (Some(op), _) => Some((op.name(), path_targets(op.path(), &path))),
        (None, Some(call)) => Some((call.operation, call.targets.clone())),
        (None, None) => None,
    };
    // The caller, or who a call without one concerns (a refused sign-in).
    let subject = match (
        resp.extensions().get::<Principal>(),
        resp.extensions().get::<AuditSubject>(),
    ) {
        (Some(p), _) => Some((Some(p.account.clone()), Some(p.access_key.clone()), None)),
        (None, Some(s)) => Some((s.account.clone(), s.credential.clone(), Some(s.outcome))),
        (None, None) => None,
    };
    if let Some((op, mut targets)) = audited
        && let Some((account, credential, outcome)) = subject
    {
        if let Some(created) = resp.extensions().get::<AuditTargets>() {
            targets.extend(
                created
                    .0
                    .iter()
                    .filter(|t| !targets.contains(t))
                    .cloned()
                    .collect::<Vec<_>>(),
            );
        }
        let event = AuditEvent {
            at_ms: 0,
            account,
            credential,
            operation: op.to_owned(),
            targets,
            // A refusal without an SCM code (the console's CSRF check) reads as its status.
            outcome: match (outcome, &note, status) {
                (Some(o), _, _) => o.to_owned(),
                (None, Some(n), _) => n.code.as_str().to_owned(),
                (None, None, 200..=399) => "ok".to_owned(),
                (None, None, other) => format!("HTTP {other}"),
            },
            status,
            request_id: id.as_str().to_owned(),
            source: peer.map(|p| p.0.ip().to_string()).unwrap_or_default(),
        };
        if let Err(e) = state.scm.audit(event).await {
            tracing::error!(request_id = %id, operation = %op, error = %e, "audit record lost");
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_the_path_parameters_but_the_project() {
        assert_eq!(
            path_targets(
                Operation::V2PushCertificate.path(),
                "/v2/p1/scm/cert/scs9/push"
            ),
            vec!["scs9".to_owned()]
        );
        assert_eq!(
            path_targets(Operation::DeleteCsr.path(), "/v3/scm/csr/csr%2D1"),
            vec!["csr-1".to_owned()]
        );
        assert!(
            path_targets(
                Operation::SubscribeCertificate.path(),
                "/v3/scm/certificates/buy"
            )
            .is_empty()
        );
    }
}
