//! OpenSCM extensions for certificate versions and renewal: list the versions and history of a
//! certificate, renew it now, turn its automatic renewal on or off, export an earlier version.

use axum::Json;
use axum::extract::State;
use scm_proto::v3::{
    AutoRenewBody, AutoRenewResponse, CertificateEventView, CertificateVersionView,
    CertificateVersionsResponse, ExportCertificateResponse, RenewCertificateResponse,
};

use super::ApiResult;
use crate::AppState;
use crate::extract::{Caller, CertId, JsonBody, VersionNo};
use crate::views::api_time;

/// `GET /v3/scm/certificates/{certificate_id}/versions`.
pub(crate) async fn list_versions(
    State(s): State<AppState>,
    Caller(p): Caller,
    CertId(id): CertId,
) -> ApiResult<Json<CertificateVersionsResponse>> {
    let (cert, versions, events) = s.scm.versions_of(&p, &id).await?;
    let current = cert.lifecycle.current_version;
    Ok(Json(CertificateVersionsResponse {
        certificate_id: cert.id.to_string(),
        current_version: current,
        auto_renew: cert.lifecycle.auto_renew,
        renew_at: cert.lifecycle.renew_at_ms.and_then(api_time),
        versions: versions
            .into_iter()
            .map(|v| CertificateVersionView {
                version: v.seq,
                reason: v.reason,
                serial_number: v.issued.serial_hex,
                fingerprint: v.issued.fingerprint,
                issue_time: api_time(v.issued.issued_ms),
                not_before: api_time(v.issued.not_before_ms),
                not_after: api_time(v.issued.not_after_ms),
                renew_at: v.renew_at_ms.and_then(api_time),
                current: Some(v.seq) == current,
            })
            .collect(),
        events: events
            .into_iter()
            .map(|e| CertificateEventView {
                time: api_time(e.at_ms),
                event: e.event,
                detail: e.detail,
                actor: e.actor,
            })
            .collect(),
    }))
}

/// `POST /v3/scm/certificates/{certificate_id}/renew` (no body).
pub(crate) async fn renew(
    State(s): State<AppState>,
    Caller(p): Caller,
    CertId(id): CertId,
) -> ApiResult<Json<RenewCertificateResponse>> {
    let seq = s.scm.renew_now(&p, &id).await?;
    Ok(Json(RenewCertificateResponse {
        certificate_id: id.to_string(),
        renewing_version: seq,
    }))
}

/// `PUT /v3/scm/certificates/{certificate_id}/auto-renew` with `{"auto_renew": bool}`.
pub(crate) async fn update_auto_renew(
    State(s): State<AppState>,
    Caller(p): Caller,
    CertId(id): CertId,
    JsonBody(body): JsonBody<AutoRenewBody>,
) -> ApiResult<Json<AutoRenewResponse>> {
    let on = body.auto_renew.ok_or_else(|| {
        scm_core::DomainError::invalid("auto_renew", "is required: true or false")
    })?;
    s.scm.set_auto_renew(&p, &id, on).await?;
    Ok(Json(AutoRenewResponse {
        certificate_id: id.to_string(),
        auto_renew: on,
    }))
}

/// `POST /v3/scm/certificates/{certificate_id}/versions/{version}/export` (no body).
pub(crate) async fn export_version(
    State(s): State<AppState>,
    Caller(p): Caller,
    CertId(id): CertId,
    VersionNo(version): VersionNo,
) -> ApiResult<Json<ExportCertificateResponse>> {
    let e = s.scm.export_version(&p, &id, version).await?;
    Ok(Json(ExportCertificateResponse {
        entire_certificate: e.entire,
        certificate: e.certificate,
        certificate_chain: e.chain,
        private_key: e.private_key.map(|k| k.to_string()),
        enc_certificate: None,
        enc_private_key: None,
    }))
}
