//! One function per operation: parse, call the domain, map the answer.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use scm_core::application::FormKind;
use scm_core::purchase::ApiVersion;
use scm_core::{DomainError, Principal, Scm};
use scm_proto::v2::{MessageResponse, PushBody as V2PushBody, PushHistoryResponse};
use scm_proto::v3::{
    ApplicationBody, CertRef, ExportCertificateResponse, ListCertificatesResponse, NamedId,
    PurchaseBody, PurchaseResponse, PushBody as V3PushBody, RequestInfoResponse, TokenInfo,
    TokenResponse,
};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::{AppState, views};

type ApiResult<T> = Result<T, ApiError>;

/// Parses a JSON body; a type error names its JSON path, a syntax error names `body`.
fn json<T: DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadJson {
            field: "body".into(),
            reason: "is required".into(),
        });
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(bad_json)
}

/// Like [`json`], from an already parsed value.
fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> ApiResult<T> {
    serde_path_to_error::deserialize(value).map_err(bad_json)
}

fn bad_json(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    if inner.is_syntax() || inner.is_eof() || path == "." {
        ApiError::BadJson {
            field: "body".into(),
            reason: format!("is not valid JSON of the expected shape ({inner})"),
        }
    } else {
        ApiError::BadJson {
            field: path,
            reason: format!("has the wrong type ({inner})"),
        }
    }
}

/// Like [`json`], but an empty body is `None`.
fn optional_json<T: DeserializeOwned>(body: &Bytes) -> ApiResult<Option<T>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(None)
    } else {
        json(body).map(Some)
    }
}

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

pub(crate) async fn health() -> (Extension<scm_proto::Operation>, Json<serde_json::Value>) {
    (
        Extension(scm_proto::Operation::Health),
        Json(serde_json::json!({"status": "ok"})),
    )
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
    Extension(p): Extension<Principal>,
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
        .map_err(|_| DomainError::Internal("token header".into()))?;
    resp.headers_mut().insert("x-subject-token", v);
    Ok(resp)
}

/// `GET /v3/auth/domains`: the IAM call the SDK makes to learn its domain id.
pub(crate) async fn list_domains(Extension(p): Extension<Principal>) -> Json<serde_json::Value> {
    Json(
        serde_json::json!({"domains": [{"id": p.account.to_string(), "name": p.account.to_string()}]}),
    )
}

async fn purchase(
    scm: &Scm,
    p: &Principal,
    project: &scm_proto::ProjectId,
    body: &Bytes,
    v: ApiVersion,
) -> ApiResult<Json<PurchaseResponse>> {
    let body: PurchaseBody = json(body)?;
    let (order, ids) = scm.purchase(p, project, &body, v).await?;
    Ok(Json(PurchaseResponse {
        order_id: order.to_string(),
        cert: ids
            .into_iter()
            .map(|id| CertRef {
                cert_id: id.to_string(),
            })
            .collect(),
    }))
}

pub(crate) async fn v2_purchase(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(project_id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<PurchaseResponse>> {
    let project = s.scm.project_scope(&p, &project_id).await?;
    purchase(&s.scm, &p, &project, &body, ApiVersion::V2).await
}

pub(crate) async fn subscribe(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    body: Bytes,
) -> ApiResult<Json<PurchaseResponse>> {
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
    Extension(p): Extension<Principal>,
    Path((project_id, cert_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<RequestInfoResponse>> {
    s.scm.project_scope(&p, &project_id).await?;
    let body: ApplicationBody = json(&body)?;
    s.scm.save_application(&p, &cert_id, &body).await?;
    Ok(success())
}

pub(crate) async fn v2_complete(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((project_id, cert_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<RequestInfoResponse>> {
    s.scm.project_scope(&p, &project_id).await?;
    // An empty body (or `{}`) submits the saved application.
    let body: Option<ApplicationBody> = match optional_json::<serde_json::Value>(&body)? {
        Some(v) if v.as_object().is_none_or(|o| !o.is_empty()) => Some(from_value(v)?),
        _ => None,
    };
    s.scm
        .apply(&p, &cert_id, body.as_ref(), FormKind::V2)
        .await?;
    Ok(success())
}

pub(crate) async fn apply(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(cert_id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<RequestInfoResponse>> {
    let body: ApplicationBody = json(&body)?;
    s.scm.apply(&p, &cert_id, Some(&body), FormKind::V3).await?;
    Ok(success())
}

pub(crate) async fn v2_push(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((project_id, cert_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<MessageResponse>> {
    s.scm.project_scope(&p, &project_id).await?;
    let body: V2PushBody = json(&body)?;
    let (service, region) = Scm::parse_v2_push(&body)?;
    s.scm.push(&p, &cert_id, service, region).await?;
    Ok(Json(MessageResponse {
        message: "success".into(),
    }))
}

pub(crate) async fn push(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(cert_id): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let body: V3PushBody = json(&body)?;
    let (service, region) = Scm::parse_v3_push(&body)?;
    s.scm.push(&p, &cert_id, service, region).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn v2_push_history(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((project_id, cert_id)): Path<(String, String)>,
) -> ApiResult<Json<PushHistoryResponse>> {
    s.scm.project_scope(&p, &project_id).await?;
    let records = s.scm.push_history(&p, &cert_id).await?;
    Ok(Json(PushHistoryResponse {
        push_history_list: records.iter().map(views::push_item).collect(),
    }))
}

pub(crate) async fn show_certificate(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(cert_id): Path<String>,
) -> ApiResult<Json<scm_proto::v3::ShowCertificateResponse>> {
    let c = s.scm.certificate(&p, &cert_id).await?;
    Ok(Json(views::show(&c)))
}

fn query_pairs(raw: Option<&str>) -> ApiResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    for part in raw.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| ApiError::BadJson {
                    field: "query".into(),
                    reason: "is not valid UTF-8".into(),
                })
        };
        out.push((decode(k)?, decode(v)?));
    }
    Ok(out)
}

pub(crate) async fn list_certificates(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    uri: axum::http::Uri,
) -> ApiResult<Json<ListCertificatesResponse>> {
    let (certs, total) = s.scm.list_query(&p, &query_pairs(uri.query())?).await?;
    Ok(Json(ListCertificatesResponse {
        certificates: certs.iter().map(views::detail).collect(),
        total_count: total,
    }))
}

pub(crate) async fn export(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(cert_id): Path<String>,
) -> ApiResult<Json<ExportCertificateResponse>> {
    let e = s.scm.export(&p, &cert_id).await?;
    Ok(Json(ExportCertificateResponse {
        entire_certificate: e.entire,
        certificate: e.certificate,
        certificate_chain: e.chain,
        private_key: e.private_key.map(|k| k.to_string()),
        enc_certificate: None,
        enc_private_key: None,
    }))
}
