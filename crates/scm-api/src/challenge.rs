//! The ACME http-01 listener: plain HTTP, no authentication (a CA's validator asks), one route,
//! `GET /.well-known/acme-challenge/{token}` answering the key authorization of a token an
//! order of this store published. Tokens live in the store, so every server answers for every
//! order. Anything else is 404; nothing here reads a body.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use scm_core::Scm;

/// The router of the http-01 listener (`[acme] http01_listen`).
pub fn challenge_router(scm: Arc<Scm>) -> Router {
    Router::new()
        .route("/.well-known/acme-challenge/{token}", get(answer))
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
