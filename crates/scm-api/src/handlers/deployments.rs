//! OpenSCM extensions for the deployment engine: where a certificate is deployed (per push
//! target, with its latest delivery attempts), and a push of the current version to one target.

use axum::Json;
use axum::extract::State;
use scm_proto::v3::{
    CertificateDeploymentsResponse, DeliveryAttemptView, DeploymentView, PushToTargetResponse,
};

use super::ApiResult;
use crate::AppState;
use crate::extract::{Caller, CertId, TargetName};
use crate::views::api_time;

/// Delivery attempts listed at most.
const ATTEMPTS: u32 = 50;

/// `GET /v3/scm/certificates/{certificate_id}/deployments`.
pub(crate) async fn list_deployments(
    State(s): State<AppState>,
    Caller(p): Caller,
    CertId(id): CertId,
) -> ApiResult<Json<CertificateDeploymentsResponse>> {
    let cert = s.scm.certificate(&p, &id).await?;
    let deployments = s.scm.deployments_of(&p, &id).await?;
    let attempts = s.scm.delivery_history(&p, &id, ATTEMPTS).await?;
    let time = |ms: Option<i64>| ms.and_then(api_time);
    Ok(Json(CertificateDeploymentsResponse {
        certificate_id: cert.id.to_string(),
        current_version: cert.lifecycle.current_version,
        deployments: deployments
            .iter()
            .map(|d| {
                let target = s.scm.push_target(&cert.domain_id, &d.target);
                DeploymentView {
                    target: d.target.clone(),
                    kind: target.map(|t| t.kind.to_owned()),
                    resource_id: target.map(|t| t.resource_id.clone()),
                    state: d.state().to_owned(),
                    version: d.version,
                    verified: d.verified,
                    served_serial: d.served_serial.clone(),
                    delivered_at: time(d.delivered_ms),
                    verified_at: time(d.verified_ms),
                    failing_version: d.failing_version,
                    last_error: d.last_error.clone(),
                    drift_at: time(d.drift_ms),
                    checked_at: time(d.checked_ms),
                }
            })
            .collect(),
        attempts: attempts
            .into_iter()
            .map(|a| DeliveryAttemptView {
                time: api_time(a.pushed_ms).unwrap_or_default(),
                target: a.targets,
                version: a.version,
                outcome: a.outcome.as_str().to_owned(),
                verified: a.verified,
                served_serial: a.served_serial,
                attempt: a.attempt,
                detail: a.detail,
            })
            .collect(),
    }))
}

/// `POST /v3/scm/certificates/{certificate_id}/deployments/{target}/push` (no body).
pub(crate) async fn push_to_target(
    State(s): State<AppState>,
    Caller(p): Caller,
    CertId(id): CertId,
    TargetName(target): TargetName,
) -> ApiResult<Json<PushToTargetResponse>> {
    s.scm.push_to_target(&p, &id, &target).await?;
    let deployment = s
        .scm
        .deployments_of(&p, &id)
        .await?
        .into_iter()
        .find(|d| d.target == target);
    let (state, version) = deployment
        .as_ref()
        .map_or(("delivered", 0), |d| (d.state(), d.version));
    Ok(Json(PushToTargetResponse {
        certificate_id: id.to_string(),
        target,
        state: state.to_owned(),
        version,
    }))
}
