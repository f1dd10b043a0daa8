//! The ACME http-01 listener: plain HTTP, no authentication (a CA's validator asks), two
//! routes: `GET /.well-known/acme-challenge/{token}` answers the key authorization of a token an
//! order of this store published, and `GET /.well-known/pki-validation/{file}` the built-in CA's
//! FILE validation of the name in `Host` (when that name points at this listener). Both live in
//! the store, so every server answers for every order. Anything else is 404; nothing here reads
//! a body.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use scm_core::Scm;

/// The router of the http-01 listener (`[acme] http01_listen`).
pub fn challenge_router(scm: Arc<Scm>) -> Router {
    Router::new()
        .route("/.well-known/acme-challenge/{token}", get(answer))
        .route("/.well-known/pki-validation/{file}", get(validation_file))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .with_state(scm)
}

async fn answer(State(scm): State<Arc<Scm>>, Path(token): Path<String>) -> Response {
    match scm.acme_challenge_answer(&token).await {
        Ok(Some(key_authorization)) => {
            tracing::info!(token = %token, "http-01 challenge answered");
            (
                [(header::CONTENT_TYPE, "application/octet-stream")],
                key_authorization,
            )
                .into_response()
        }
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "http-01 challenge: the store is unavailable");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

async fn validation_file(
    State(scm): State<Arc<Scm>>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match scm.hosted_validation_file(host, &file).await {
        Ok(Some(value)) => ([(header::CONTENT_TYPE, "text/plain")], value).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "validation file: the store is unavailable");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}
