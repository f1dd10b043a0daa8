//! ImportCertificate (reference §4.3.3).

use axum::Json;
use axum::extract::State;
use scm_proto::import::{ImportCertificateBody, ImportCertificateResponse};

use super::ApiResult;
use crate::AppState;
use crate::extract::{Caller, JsonBody};

/// `POST /v3/scm/certificates/import`: `{"certificate_id": "scs…"}`.
pub(crate) async fn import_certificate(
    State(s): State<AppState>,
    Caller(p): Caller,
    JsonBody(body): JsonBody<ImportCertificateBody>,
) -> ApiResult<Json<ImportCertificateResponse>> {
    let id = s.scm.import_certificate(&p, &body).await?;
    Ok(Json(ImportCertificateResponse {
        certificate_id: id.to_string(),
    }))
}
