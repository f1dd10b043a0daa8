//! The CSR operations (reference §4.4, §4.7.12).

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use scm_proto::csr::{
    CreateCsrBody, CreateCsrResponse, CsrPrivateKeyResponse, CsrResponse, ListCsrResponse,
    UpdateCsrBody, UploadCsrBody, UploadCsrResponse,
};
use scm_store::CsrRecord;

use super::ApiResult;
use crate::AppState;
use crate::extract::{Caller, CsrIdPath, CsrListParams, JsonBody};
use crate::request_log::AuditTargets;

/// `CSRResponseBody`: every key, the PEM included.
fn view(r: CsrRecord) -> CsrResponse {
    CsrResponse {
        id: r.id.to_string(),
        name: r.name,
        csr: r.csr_pem,
        domain_name: r.domain_name,
        sans: r.sans,
        private_key_algo: r.private_key_algo,
        usage: r.usage,
        company_country: r.company_country,
        company_province: r.company_province,
        company_city: r.company_city,
        company_name: r.company_name,
        create_time: r.created_ms,
        update_time: r.updated_ms,
    }
}

/// `POST /v3/scm/csr`: 201 with the CSR's fields, without the PEM.
pub(crate) async fn create_csr(
    State(s): State<AppState>,
    Caller(p): Caller,
    JsonBody(body): JsonBody<CreateCsrBody>,
) -> ApiResult<(StatusCode, Extension<AuditTargets>, Json<CreateCsrResponse>)> {
    let r = s.scm.create_csr(&p, &body).await?;
    Ok((
        StatusCode::CREATED,
        Extension(AuditTargets(vec![r.id.to_string()])),
        Json(CreateCsrResponse {
            id: r.id.to_string(),
            name: r.name,
            domain_name: r.domain_name,
            sans: r.sans,
            private_key_algo: r.private_key_algo.unwrap_or_default(),
            usage: r.usage.unwrap_or_default(),
            company_country: r.company_country,
            company_province: r.company_province,
            company_city: r.company_city,
            company_name: r.company_name,
            create_time: r.created_ms,
            update_time: r.updated_ms,
        }),
    ))
}

/// `GET /v3/scm/csr`: `{"csr_list": [...], "total": n}`.
pub(crate) async fn list_csr(
    State(s): State<AppState>,
    Caller(p): Caller,
    CsrListParams(q): CsrListParams,
) -> ApiResult<Json<ListCsrResponse>> {
    let (rows, total) = s.scm.list_csrs(&p, &q).await?;
    Ok(Json(ListCsrResponse {
        csr_list: rows.into_iter().map(view).collect(),
        total,
    }))
}

/// `GET /v3/scm/csr/{id}`.
pub(crate) async fn show_csr(
    State(s): State<AppState>,
    Caller(p): Caller,
    CsrIdPath(id): CsrIdPath,
) -> ApiResult<Json<CsrResponse>> {
    Ok(Json(view(s.scm.csr(&p, &id).await?)))
}

/// `PUT /v3/scm/csr/{id}`: renames; answers the CSR as it is now.
pub(crate) async fn update_csr(
    State(s): State<AppState>,
    Caller(p): Caller,
    CsrIdPath(id): CsrIdPath,
    JsonBody(body): JsonBody<UpdateCsrBody>,
) -> ApiResult<Json<CsrResponse>> {
    Ok(Json(view(s.scm.update_csr(&p, &id, &body).await?)))
}

/// `DELETE /v3/scm/csr/{id}`: 204, no body.
pub(crate) async fn delete_csr(
    State(s): State<AppState>,
    Caller(p): Caller,
    CsrIdPath(id): CsrIdPath,
) -> ApiResult<StatusCode> {
    s.scm.delete_csr(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v3/scm/csr/{id}/private-key`: `{"private_key": "-----BEGIN PRIVATE KEY-----..."}`.
pub(crate) async fn show_csr_private_key(
    State(s): State<AppState>,
    Caller(p): Caller,
    CsrIdPath(id): CsrIdPath,
) -> ApiResult<Json<CsrPrivateKeyResponse>> {
    let key = s.scm.csr_private_key(&p, &id).await?;
    Ok(Json(CsrPrivateKeyResponse {
        private_key: key.to_string(),
    }))
}

/// `POST /v3/scm/csr/upload`: `{"id", "name", "create_time"}`.
pub(crate) async fn upload_csr(
    State(s): State<AppState>,
    Caller(p): Caller,
    JsonBody(body): JsonBody<UploadCsrBody>,
) -> ApiResult<(Extension<AuditTargets>, Json<UploadCsrResponse>)> {
    let r = s.scm.upload_csr(&p, &body).await?;
    Ok((
        Extension(AuditTargets(vec![r.id.to_string()])),
        Json(UploadCsrResponse {
            id: r.id.to_string(),
            name: r.name,
            create_time: r.created_ms,
        }),
    ))
}
