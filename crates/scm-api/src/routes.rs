//! The router, built from the operation table of `scm-proto`: every [`Operation`] is mounted at its
//! path with its method and, unless it is public, behind [`crate::auth::guard`], which knows the
//! operation and enforces its [`Scope`]; every answer is tagged with its operation (for the
//! access log). The match below has
//! no catch-all arm: a new operation does not compile until it has a handler.

use axum::Router;
use axum::middleware;
use axum::response::Response;
use axum::routing::{MethodFilter, MethodRouter, on};
use scm_proto::{Method, Operation, Scope};
use tower::util::MapResponseLayer;

use crate::auth::{self, Guarded};
use crate::{AppState, handlers, request_log};

fn filter(m: Method) -> MethodFilter {
    match m {
        Method::Get => MethodFilter::GET,
        Method::Post => MethodFilter::POST,
        Method::Put => MethodFilter::PUT,
        Method::Delete => MethodFilter::DELETE,
    }
}

/// The handler of each operation.
fn handler(op: Operation) -> MethodRouter<AppState> {
    let m = filter(op.method());
    match op {
        Operation::Health => on(m, handlers::health),
        Operation::CreateToken => on(m, handlers::create_token),
        Operation::KeystoneListAuthDomains => on(m, handlers::list_domains),
        Operation::V2PurchaseCertificate => on(m, handlers::v2_purchase),
        Operation::V2SaveApplication => on(m, handlers::v2_save),
        Operation::V2CompleteApplication => on(m, handlers::v2_complete),
        Operation::V2PushCertificate => on(m, handlers::v2_push),
        Operation::V2ListPushHistory => on(m, handlers::v2_push_history),
        // --- revocation ---
        Operation::V2RevokeCertificate => on(m, handlers::revocation::v2_revoke),
        Operation::ListCertificates => on(m, handlers::list_certificates),
        Operation::SubscribeCertificate => on(m, handlers::subscribe),
        Operation::ShowCertificate => on(m, handlers::show_certificate),
        Operation::ApplyCertificate => on(m, handlers::apply),
        Operation::ExportCertificate => on(m, handlers::export),
        Operation::PushCertificate => on(m, handlers::push),
        // --- import ---
        Operation::ImportCertificate => on(m, handlers::import::import_certificate),
        // --- tags ---
        Operation::CreateCertificateTag => on(m, handlers::tags::create_certificate_tag),
        Operation::ListTagsByCertificate => on(m, handlers::tags::list_tags_by_certificate),
        Operation::BatchCreateOrDeleteTags => on(m, handlers::tags::batch_create_or_delete_tags),
        Operation::ListAllTags => on(m, handlers::tags::list_all_tags),
        // --- lifecycle ---
        Operation::DeleteCertificate => on(m, handlers::delete_certificate),
        Operation::UnsubscribeCertificate => on(m, handlers::unsubscribe_certificate),
        Operation::CancelCertificateRequest => on(m, handlers::cancel_certificate_request),
        // --- by tag ---
        Operation::ListCertificatesByTag => on(m, handlers::tags::list_certificates_by_tag),
        // --- notices ---
        Operation::EnableNotification => on(m, handlers::notices::enable_notification),
        Operation::DisableNotification => on(m, handlers::notices::disable_notification),
        // --- csr ---
        Operation::CreateCsr => on(m, handlers::csr::create_csr),
        Operation::ListCsr => on(m, handlers::csr::list_csr),
        Operation::ShowCsr => on(m, handlers::csr::show_csr),
        Operation::UpdateCsr => on(m, handlers::csr::update_csr),
        Operation::DeleteCsr => on(m, handlers::csr::delete_csr),
        Operation::ShowCsrPrivateKey => on(m, handlers::csr::show_csr_private_key),
        Operation::UploadCsr => on(m, handlers::csr::upload_csr),
        // --- multi-target push ---
        Operation::BatchPushCertificate => on(m, handlers::deploy::batch_push),
        Operation::DeployCertificate => on(m, handlers::deploy::deploy),
        Operation::ListDeployedResources => on(m, handlers::deploy::list_deployed_resources),
        // --- openapi ---
        Operation::OpenApiDescription => on(m, handlers::openapi::openapi_description),
        // --- revocation ---
        Operation::CertificateRevocationList => on(m, handlers::revocation::crl),
        // --- tenant ca ---
        Operation::ShowCaRoot => on(m, handlers::ca::show_ca_root),
        // --- versions and renewal ---
        Operation::ListCertificateVersions => on(m, handlers::versions::list_versions),
        Operation::RenewCertificate => on(m, handlers::versions::renew),
        Operation::UpdateAutoRenew => on(m, handlers::versions::update_auto_renew),
        Operation::ExportCertificateVersion => on(m, handlers::versions::export_version),
        // --- deployments ---
        Operation::ListCertificateDeployments => on(m, handlers::deployments::list_deployments),
        Operation::PushCertificateToTarget => on(m, handlers::deployments::push_to_target),
    }
}

/// The full router: every operation of the table, `/metrics`, and 404/405 for everything else.
pub(crate) fn router(state: AppState, metrics: std::sync::Arc<crate::metrics::Metrics>) -> Router {
    // Operations that share a path (show and delete of one resource) share one method router:
    // axum refuses the same path twice.
    let mut by_path: std::collections::BTreeMap<&'static str, MethodRouter<AppState>> =
        std::collections::BTreeMap::new();
    for &op in Operation::ALL {
        let route = match op.scope() {
            // Nothing to check: only tag the answer with its operation, for the access log.
            Scope::Public => {
                handler(op).route_layer(MapResponseLayer::new(move |resp: Response| {
                    auth::tag(resp, op, None)
                }))
            }
            Scope::Account | Scope::Project => {
                let guarded = Guarded {
                    app: state.clone(),
                    op,
                };
                handler(op).route_layer(middleware::from_fn_with_state(guarded, auth::guard))
            }
        };
        let merged = match by_path.remove(op.path()) {
            Some(earlier) => earlier.merge(route),
            None => route,
        };
        by_path.insert(op.path(), merged);
    }
    let mut app = Router::new();
    for (path, route) in by_path {
        app = app.route(path, route);
    }
    // The web console: its own routes, inside the request-log layer below.
    app = app.merge(crate::console::router());
    let log = request_log::LogState {
        deadline: state.limits.request_timeout,
        metrics: metrics.clone(),
        scm: state.scm.clone(),
    };
    let scrape = crate::metrics::MetricsState {
        scm: state.scm.clone(),
        metrics,
    };
    app.method_not_allowed_fallback(handlers::method_not_allowed)
        .fallback(handlers::not_found)
        .with_state(state)
        .layer(middleware::from_fn_with_state(
            log,
            request_log::request_id_and_log,
        ))
        // Beside the table's routes, outside the access log and the SCM guard: see `metrics`.
        .merge(
            Router::new()
                .route("/metrics", axum::routing::get(crate::metrics::handler))
                .with_state(scrape),
        )
}
