//! Revocation: v2 `revoke`, and the CRLs served unauthenticated.

use axum::Json;
use axum::extract::State;
use axum::http::{Uri, header};
use axum::response::{IntoResponse, Response};
use scm_proto::v2::{MessageResponse, RevokeBody};

use super::ApiResult;
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Caller, CertId, JsonBody, V2Project};

/// The media type of a DER CRL (RFC 2585).
const PKIX_CRL: &str = "application/pkix-crl";

/// `POST /v2/{project_id}/scm/cert/{cert_id}/revoke`: `{"message": "success"}`.
pub(crate) async fn v2_revoke(
    State(s): State<AppState>,
    Caller(p): Caller,
    _: V2Project,
    CertId(id): CertId,
    JsonBody(body): JsonBody<RevokeBody>,
) -> ApiResult<Json<MessageResponse>> {
    s.scm.revoke(&p, &id, body.reason.as_deref()).await?;
    Ok(Json(MessageResponse {
        message: "success".into(),
    }))
}

/// `GET /crl/<ca id>.crl`: the CA's current CRL, DER; 404 (`APIGW.0101`) for anything else.
pub(crate) async fn crl(State(s): State<AppState>, uri: Uri) -> ApiResult<Response> {
    // The route is `/crl/{crl_file}`: the file is the last segment, taken raw (an escaped
    // character makes it no CA id).
    let file = uri.path().rsplit('/').next().unwrap_or_default();
    let crl = s.scm.crl(file).await?.ok_or(ApiError::RouteNotFound)?;
    Ok(([(header::CONTENT_TYPE, PKIX_CRL)], crl.der).into_response())
}
