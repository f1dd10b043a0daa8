//! Lifecycle handlers: delete, unsubscribe, cancel-cert.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use scm_proto::lifecycle::{CancelCertResponse, UnsubscribeResponse};

use super::ApiResult;
use crate::AppState;
use crate::extract::{Caller, CertId};

/// `DELETE /v3/scm/certificates/{certificate_id}`: 204, no body.
pub(crate) async fn delete_certificate(
    State(s): State<AppState>,
    Caller(p): Caller,
    CertId(id): CertId,
) -> ApiResult<StatusCode> {
    s.scm.delete_certificate(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v3/scm/certificates/{cert_id}/unsubscribe`: `{"unsubscribe_results": "SUCCESS"}`.
pub(crate) async fn unsubscribe_certificate(
    State(s): State<AppState>,
    Caller(p): Caller,
    CertId(id): CertId,
) -> ApiResult<Json<UnsubscribeResponse>> {
    s.scm.unsubscribe_certificate(&p, &id).await?;
    Ok(Json(UnsubscribeResponse {
        unsubscribe_results: "SUCCESS".into(),
    }))
}

/// `POST /v3/scm/certificates/{certificate_id}/cancel-cert`: `{"cert_id", "message": "success"}`.
pub(crate) async fn cancel_certificate_request(
    State(s): State<AppState>,
    Caller(p): Caller,
    CertId(id): CertId,
) -> ApiResult<Json<CancelCertResponse>> {
    s.scm.cancel_application(&p, &id).await?;
    Ok(Json(CancelCertResponse {
        cert_id: id.to_string(),
        message: "success".into(),
    }))
}
