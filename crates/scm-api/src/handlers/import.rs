//! ImportCertificate (reference §4.3.3).

use axum::extract::State;
use axum::{Extension, Json};
use scm_proto::import::{ImportCertificateBody, ImportCertificateResponse};

use super::ApiResult;
use crate::AppState;
use crate::extract::{Caller, JsonBody};
use crate::request_log::AuditTargets;

/// `POST /v3/scm/certificates/import`: `{"certificate_id": "scs…"}`.
pub(crate) async fn import_certificate(
    State(s): State<AppState>,
    Caller(p): Caller,
    JsonBody(body): JsonBody<ImportCertificateBody>,
) -> ApiResult<(Extension<AuditTargets>, Json<ImportCertificateResponse>)> {
    let id = s.scm.import_certificate(&p, &body).await?;
    Ok((
        Extension(AuditTargets(vec![id.to_string()])),
        Json(ImportCertificateResponse {
            certificate_id: id.to_string(),
        }),
    ))
}
