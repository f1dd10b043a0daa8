//! The guard of every route: authenticates the caller and checks the scope the operation table
//! gives the route, before any handler runs. It authenticates from the request head first (token,
//! or the signature's key, status and date), so an unauthenticated request is answered without its
//! body being read; then the body, within its deadline, and the signature over it; last the
//! account's request rate (only a proven request spends it). A handler gets what the guard established through the
//! extractors of [`crate::extract`] ([`crate::extract::Caller`], [`crate::extract::V2Project`]),
//! which cannot be built any other way.

use axum::body::Body;
use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use scm_core::Principal;
use scm_proto::{Operation, ProjectId, Scope};

use crate::error::ApiError;
use crate::{AppState, MAX_BODY};

/// The project of a v2 path, checked to be one of the caller's account's projects.
#[derive(Debug, Clone)]
pub(crate) struct ProjectScope(pub ProjectId);

/// The guard's state: the app and the operation of the route it guards.
#[derive(Clone)]
pub(crate) struct Guarded {
    pub app: AppState,
    pub op: Operation,
}

/// Route layer of every operation that is not public: authenticates, checks the scope, then
/// hands the request on with the [`Principal`] (and, for project-scoped routes, the
/// [`ProjectScope`]) in its extensions. The operation and the principal also go on the response,
/// for the access log.
pub(crate) async fn guard(State(g): State<Guarded>, req: Request, next: Next) -> Response {
    let (resp, principal) = match g.op.scope() {
        // Public routes are mounted without this guard; should one get here, it is let through.
        Scope::Public => (next.run(req).await, None),
        Scope::Account | Scope::Project => match authorise(&g.app, g.op, req).await {
            Ok((req, principal)) => (next.run(req).await, Some(principal)),
            Err(e) => (e.into_response(), None),
        },
    };
    tag(resp, g.op, principal)
}

async fn authorise(
    state: &AppState,
    op: Operation,
    req: Request,
) -> Result<(Request, Principal), ApiError> {
    let (mut parts, body) = req.into_parts();
    let head = {
        let headers = header_pairs(&parts.headers);
        let head = scm_sign::Request {
            method: parts.method.as_str(),
            raw_path: parts.uri.path(),
            raw_query: parts.uri.query(),
            headers: &headers,
            body: &[],
        };
        // Nothing of the body is read (nor `100 Continue` sent) for a request that fails here.
        state.scm.authenticate_head(&head).await?
    };
    let bytes = crate::body::read_body(&parts.headers, body, MAX_BODY, state.limits.body_timeout)
        .await
        .map_err(|refusal| match refusal {
            crate::body::BodyRefusal::TooLarge => ApiError::BodyTooLarge,
            crate::body::BodyRefusal::Timeout => ApiError::BodyTimeout,
        })?;
    let principal = {
        let headers = header_pairs(&parts.headers);
        let full = scm_sign::Request {
            method: parts.method.as_str(),
            raw_path: parts.uri.path(),
            raw_query: parts.uri.query(),
            headers: &headers,
            body: &bytes,
        };
        state.scm.authenticate_body(head, &full).await?
    };
    // Only a request proven to be the account's spends its budget (one that merely names its
    // access key must not be able to throttle it).
    if let Some(throttle) = &state.throttle
        && let Err(wait) = throttle.admit(&principal.account, std::time::Instant::now())
    {
        return Err(ApiError::Throttled {
            retry_after: wait.as_secs().saturating_add(1),
        });
    }
    if op.scope() == Scope::Project {
        let params = RawPathParams::from_request_parts(&mut parts, &())
            .await
            .ok();
        let raw = params
            .as_ref()
            .and_then(|p| p.iter().find(|(k, _)| *k == "project_id").map(|(_, v)| v))
            .unwrap_or_default();
        let project = state.scm.project_scope(&principal, raw).await?;
        parts.extensions.insert(ProjectScope(project));
    }
    parts.extensions.insert(principal.clone());
    Ok((Request::from_parts(parts, Body::from(bytes)), principal))
}

/// The headers as text pairs (a header whose value is not text is left out, so a signature
/// naming it fails).
fn header_pairs(headers: &axum::http::HeaderMap) -> Vec<(&str, &str)> {
    headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
        .collect()
}

/// Puts the operation (and the caller) on a response, for the access log.
pub(crate) fn tag(mut resp: Response, op: Operation, p: Option<Principal>) -> Response {
    resp.extensions_mut().insert(op);
    if let Some(p) = p {
        resp.extensions_mut().insert(p);
    }
    resp
}
