//! The guard of every route: authenticates the caller and checks the scope the operation table
//! gives the route, before any handler runs. A handler gets what the guard established through the
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
    // The signature covers the body, so it is read before the signature is checked.
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::BodyTooLarge)?;
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
    let principal = state.scm.authenticate(&sign_req).await?;
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

/// Puts the operation (and the caller) on a response, for the access log.
pub(crate) fn tag(mut resp: Response, op: Operation, p: Option<Principal>) -> Response {
    resp.extensions_mut().insert(op);
    if let Some(p) = p {
        resp.extensions_mut().insert(p);
    }
    resp
}
