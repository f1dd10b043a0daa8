//! The multi-target push operations (reference §4.3.7–§4.3.9).

use axum::Json;
use axum::extract::State;
use scm_proto::deploy::{
    BatchPushBody, BatchPushResponse, BatchPushResult, DeployBody, DeployResponse,
    DeployedResourceDetail, FailureResource, ListDeployedBody, ListDeployedResponse,
    RegionResourceDetail, ResourceDetail, ResultDetail,
};

use super::ApiResult;
use crate::AppState;
use crate::error::outcome_text;
use crate::extract::{Caller, CertId, JsonBody};

/// `POST /v3/scm/certificates/{certificate_id}/batch-push`: one result per region.
pub(crate) async fn batch_push(
    State(s): State<AppState>,
    Caller(p): Caller,
    CertId(id): CertId,
    JsonBody(body): JsonBody<BatchPushBody>,
) -> ApiResult<Json<BatchPushResponse>> {
    let outcomes = s.scm.batch_push(&p, &id, &body).await?;
    Ok(Json(BatchPushResponse {
        results: outcomes
            .into_iter()
            .map(|(region, r)| match r {
                Ok(()) => BatchPushResult {
                    project_name: region,
                    cert_id: Some(id.to_string()),
                    message: "success".into(),
                },
                Err(e) => BatchPushResult {
                    project_name: region,
                    cert_id: None,
                    message: outcome_text(e),
                },
            })
            .collect(),
    }))
}

/// `POST /v3/scm/certificates/{certificate_id}/deploy`: the resources that failed.
pub(crate) async fn deploy(
    State(s): State<AppState>,
    Caller(p): Caller,
    CertId(id): CertId,
    JsonBody(body): JsonBody<DeployBody>,
) -> ApiResult<Json<DeployResponse>> {
    let failures = s.scm.deploy(&p, &id, &body).await?;
    Ok(Json(DeployResponse {
        failure_list: failures
            .into_iter()
            .map(|(resource, e)| FailureResource {
                resource,
                failure_info: outcome_text(e),
            })
            .collect(),
    }))
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// `POST /v3/scm/deployed-resources`: per certificate, per service asked for, per region.
pub(crate) async fn list_deployed_resources(
    State(s): State<AppState>,
    Caller(p): Caller,
    JsonBody(body): JsonBody<ListDeployedBody>,
) -> ApiResult<Json<ListDeployedResponse>> {
    let placed = s.scm.deployed_resources(&p, &body).await?;
    let results = placed
        .into_iter()
        .map(|(id, placement)| {
            let deployed_resources: Vec<DeployedResourceDetail> = placement
                .into_iter()
                .map(|(service, regions)| {
                    let region_resources: Vec<RegionResourceDetail> = regions
                        .into_iter()
                        .map(|(region_id, region)| RegionResourceDetail {
                            region_id,
                            is_error: region.is_error,
                            resources: region
                                .resources
                                .into_iter()
                                .map(|n| ResourceDetail {
                                    resource_id: n.clone(),
                                    resource_name: n,
                                })
                                .collect(),
                        })
                        .collect();
                    DeployedResourceDetail {
                        service: service.into(),
                        resource_num: count(
                            region_resources.iter().map(|r| r.resources.len()).sum(),
                        ),
                        resource_location: if service == "CDN" { "global" } else { "region" }
                            .into(),
                        region_resources,
                    }
                })
                .collect();
            ResultDetail {
                certificate_id: id.to_string(),
                total_num: deployed_resources.iter().map(|d| d.resource_num).sum(),
                deployed_resources,
            }
        })
        .collect();
    Ok(Json(ListDeployedResponse { results }))
}
