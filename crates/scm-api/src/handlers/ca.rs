//! `GET /v3/scm/ca/root` (an OpenSCM extension): the roots of the caller's account's own CA.

use axum::Json;
use axum::extract::State;
use scm_proto::v3::CaRootResponse;

use super::ApiResult;
use crate::AppState;
use crate::extract::Caller;

/// `GET /v3/scm/ca/root`: `{"ca_id", "root_certificate", "retired_root_certificates"}`. An
/// account made before OpenSCM gave each account a CA gets its CA here on first call.
pub(crate) async fn show_ca_root(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> ApiResult<Json<CaRootResponse>> {
    let roots = s.scm.account_roots(&p.account).await?;
    Ok(Json(CaRootResponse {
        ca_id: roots.ca_id,
        root_certificate: roots.root_pem,
        retired_root_certificates: roots.retired_root_pems,
    }))
}
