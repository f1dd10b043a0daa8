//! The HTTP face of OpenSCM: the Huawei Cloud SCM v2/v3 routes, authentication, request ids,
//! access logs, and the one mapping from domain errors to HTTP status + `SCM.xxxx` code.
//!
//! Handlers are thin: parse the body into a `scm-proto` type, call one `scm-core` operation, map
//! the result to the wire type.
#![deny(missing_docs)]

mod error;
mod handlers;
mod middleware;
mod serve;
mod views;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use scm_core::Scm;

pub use error::ApiError;
pub use serve::{ServeLimits, serve};

/// Largest request body accepted (bytes). Certificates and CSRs are a few KiB.
pub const MAX_BODY: usize = 1024 * 1024;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    /// The domain service.
    pub scm: Arc<Scm>,
}

/// The full router: authenticated API routes, `/health`, and 404/405 for everything else.
pub fn router(scm: Arc<Scm>) -> Router {
    let state = AppState { scm };
    let api = Router::new()
        .route("/v3/auth/tokens", post(handlers::create_token))
        .route("/v3/auth/domains", get(handlers::list_domains))
        .route(
            "/v2/{project_id}/scm/cert/purchase",
            post(handlers::v2_purchase),
        )
        .route(
            "/v2/{project_id}/scm/cert/{cert_id}/save",
            post(handlers::v2_save),
        )
        .route(
            "/v2/{project_id}/scm/cert/{cert_id}/complete",
            post(handlers::v2_complete),
        )
        .route(
            "/v2/{project_id}/scm/cert/{cert_id}/push",
            post(handlers::v2_push),
        )
        .route(
            "/v2/{project_id}/scm/cert/{cert_id}/push-history",
            get(handlers::v2_push_history),
        )
        .route("/v3/scm/certificates", get(handlers::list_certificates))
        .route("/v3/scm/certificates/buy", post(handlers::subscribe))
        .route(
            "/v3/scm/certificates/{certificate_id}",
            get(handlers::show_certificate),
        )
        .route(
            "/v3/scm/certificates/{certificate_id}/apply",
            post(handlers::apply),
        )
        .route(
            "/v3/scm/certificates/{certificate_id}/export",
            post(handlers::export),
        )
        .route(
            "/v3/scm/certificates/{certificate_id}/push",
            post(handlers::push),
        )
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::authenticate,
        ));
    Router::new()
        .route("/health", get(handlers::health))
        .merge(api)
        .fallback(handlers::not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn(middleware::request_id_and_log))
}
