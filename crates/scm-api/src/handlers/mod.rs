//! One function per operation: take the parsed request from the extractors, call one domain
//! operation, map the answer to its wire type.

mod lifecycle;

pub(crate) use lifecycle::{
    cancel_certificate_request, delete_certificate, unsubscribe_certificate,
};

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use scm_core::purchase::ApiVersion;
use scm_core::{DomainError, Principal, Scm};
use scm_proto::ProjectId;
use scm_proto::v2::{MessageResponse, PushBody as V2PushBody, PushHistoryResponse};
use scm_proto::v3::{
    ApplicationBody, CertRef, DomainsResponse, ExportCertificateResponse, HealthResponse,
    ListCertificatesResponse, NamedId, PurchaseBody, PurchaseResponse, PushBody as V3PushBody,
    RequestInfoResponse, ShowCertificateResponse, TokenInfo, TokenResponse,
};

use crate::error::ApiError;
use crate::extract::{Caller, CertId, JsonBody, ListParams, OptionalJsonBody, V2Project};
use crate::request_log::AuditTargets;
use crate::{AppState, parse, views};

pub(crate) mod notices;
pub(crate) mod tags;
// --- csr ---
pub(crate) mod csr;
pub(crate) mod deploy;
pub(crate) mod deployments;
// --- import ---
pub(crate) mod import;

// --- openapi ---
pub(crate) mod openapi;
// --- revocation ---
pub(crate) mod revocation;
// --- tenant ca ---
pub(crate) mod ca;
pub(crate) mod versions;

type ApiResult<T> = Result<T, ApiError>;

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

pub(crate) async fn health() -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok".into(),
    })
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::RouteNotFound
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// `POST /v3/auth/tokens`: a bearer token for the AK/SK that signed the request. The body (an
/// IAM-style auth document or nothing) is not needed: the signature is the proof.
pub(crate) async fn create_token(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> ApiResult<Response> {
    let t = s.scm.create_token(&p).await?;
    let body = TokenResponse {
        token: TokenInfo {
            methods: vec!["hw_ak_sk".into()],
            expires_at: rfc3339(t.record.expires_ms),
            issued_at: rfc3339(t.record.issued_ms),
            domain: NamedId {
                id: p.account.to_string(),
                name: p.account.to_string(),
            },
            project: NamedId {
                id: p.project.to_string(),
                name: p.project.to_string(),
            },
        },
    };
    let mut resp = (StatusCode::CREATED, Json(body)).into_response();
    let v = HeaderValue::from_str(&t.token)
        .map_err(|e| DomainError::internal_from("token header", e))?;
    resp.headers_mut().insert("x-subject-token", v);
    Ok(resp)
}

/// `GET /v3/auth/domains`: the IAM call the SDK makes to learn its domain id.
pub(crate) async fn list_domains(Caller(p): Caller) -> Json<DomainsResponse> {
    Json(DomainsResponse {
        domains: vec![NamedId {
            id: p.account.to_string(),
            name: p.account.to_string(),
        }],
    })
}

async fn purchase(
    scm: &Scm,
    p: &Principal,
    project: &ProjectId,
    body: &PurchaseBody,
    v: ApiVersion,
) -> ApiResult<(Extension<AuditTargets>, Json<PurchaseResponse>)> {
    let (order, ids) = scm.purchase(p, project, body, v).await?;
    let created = std::iter::once(order.to_string())
        .chain(ids.iter().map(ToString::to_string))
        .collect();
    Ok((
        Extension(AuditTargets(created)),
        Json(PurchaseResponse {
            order_id: order.to_string(),
            cert: ids
                .into_iter()
                .map(|id| CertRef {
                    cert_id: id.to_string(),
                })
                .collect(),
        }),
    ))
}

pub(crate) async fn v2_purchase(
    State(s): State<AppState>,
    Caller(p): Caller,
    V2Project(project): V2Project,
    JsonBody(body): JsonBody<PurchaseBody>,
) -> ApiResult<(Extension<AuditTargets>, Json<PurchaseResponse>)> {
    purchase(&s.scm, &p, &project, &body, ApiVersion::V2).await
}

pub(crate) async fn subscribe(
    State(s): State<AppState>,
    Caller(p): Caller,
    JsonBody(body): JsonBody<PurchaseBody>,
) -> ApiResult<(Extension<AuditTargets>, Json<PurchaseResponse>)> {
    let project = p.project.clone();
    purchase(&s.scm, &p, &project, &body, ApiVersion::V3).await
}

fn success() -> Json<RequestInfoResponse> {
    Json(RequestInfoResponse {
        request_info: "success".into(),
    })
}

pub(crate) async fn v2_save(
    State(s): State<AppState>,
    Caller(p): Caller,
    _: V2Project,
    CertId(id): CertId,
    JsonBody(body): JsonBody<ApplicationBody>,
) -> ApiResult<Json<RequestInfoResponse>> {
    s.scm.save_application(&p, &id, &body).await?;
    Ok(success())
}

pub(crate) async fn v2_complete(
    State(s): State<AppState>,
    Caller(p): Caller,
    _: V2Project,
    CertId(id): CertId,
    OptionalJsonBody(body): OptionalJsonBody<ApplicationBody>,
) -> ApiResult<Json<RequestInfoResponse>> {
    s.scm.apply(&p, &id, body.as_ref(), ApiVersion::V2).await?;
    Ok(success())
}

pub(crate) async fn apply(
    State(s): State<AppState>,
    Caller(p): Caller,
    CertId(id): CertId,
    JsonBody(body): JsonBody<ApplicationBody>,
) -> ApiResult<Json<RequestInfoResponse>> {
    s.scm.apply(&p, &id, Some(&body), ApiVersion::V3).await?;
    Ok(success())
}

pub(crate) async fn v2_push(
    State(s): State<AppState>,
    Caller(p): Caller,
    _: V2Project,
    CertId(id): CertId,
    JsonBody(body): JsonBody<V2PushBody>,
) -> ApiResult<Json<MessageResponse>> {
    let (service, region) = parse::v2_push(&body)?;
    s.scm.push(&p, &id, service, region).await?;
    Ok(Json(MessageResponse {
        message: "success".into(),
    }))
}

pub(crate) async fn push(
    State(s): State<AppState>,
    Caller(p): Caller,
    CertId(id): CertId,
    JsonBody(body): JsonBody<V3PushBody>,
) -> ApiResult<StatusCode> {
    let (service, region) = parse::v3_push(&body)?;
    s.scm.push(&p, &id, service, region).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn v2_push_history(
    State(s): State<AppState>,
    Caller(p): Caller,
    _: V2Project,
    CertId(id): CertId,
) -> ApiResult<Json<PushHistoryResponse>> {
    let records = s.scm.push_history(&p, &id).await?;
    Ok(Json(PushHistoryResponse {
        push_history_list: records.iter().map(views::push_item).collect(),
    }))
}

pub(crate) async fn show_certificate(
    State(s): State<AppState>,
    Caller(p): Caller,
    CertId(id): CertId,
) -> ApiResult<Json<ShowCertificateResponse>> {
    let c = s.scm.certificate(&p, &id).await?;
    let proofs = s.scm.proofs(&c).await?;
    let mut shown = views::show(&c);
    shown.authentification = proofs.into_iter().map(views::authentification).collect();
    Ok(Json(shown))
}

pub(crate) async fn list_certificates(
    State(s): State<AppState>,
    Caller(p): Caller,
    ListParams(req): ListParams,
) -> ApiResult<Json<ListCertificatesResponse>> {
    let (certs, total) = s.scm.list(&p, &req).await?;
    Ok(Json(ListCertificatesResponse {
        certificates: certs.iter().map(views::detail).collect(),
        total_count: total,
    }))
}

pub(crate) async fn export(
    State(s): State<AppState>,
    Caller(p): Caller,
    CertId(id): CertId,
) -> ApiResult<Json<ExportCertificateResponse>> {
    let e = s.scm.export(&p, &id).await?;
    Ok(Json(ExportCertificateResponse {
        entire_certificate: e.entire,
        certificate: e.certificate,
        certificate_chain: e.chain,
        private_key: e.private_key.map(|k| k.to_string()),
        enc_certificate: None,
        enc_private_key: None,
    }))
}
