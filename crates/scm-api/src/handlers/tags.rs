//! The tag operations (reference §4.5).

use axum::Json;
use axum::extract::State;
use scm_core::service::tag_query::TagQuery;
use scm_core::service::tags::TagAction;
use scm_proto::tags::{
    AllTagsResponse, BatchTagsBody, CreateTagBody, DescResponse, ListByTagBody, ListByTagResponse,
    ResourceTagsResponse,
};

use super::ApiResult;
use crate::AppState;
use crate::extract::{Caller, CertId, JsonBody, OptionalJsonBody};
use crate::views;

pub(crate) async fn create_certificate_tag(
    State(s): State<AppState>,
    Caller(p): Caller,
    CertId(id): CertId,
    JsonBody(body): JsonBody<CreateTagBody>,
) -> ApiResult<Json<DescResponse>> {
    s.scm.create_tag(&p, &id, &body).await?;
    Ok(Json(DescResponse {
        desc: "success".into(),
    }))
}

pub(crate) async fn list_tags_by_certificate(
    State(s): State<AppState>,
    Caller(p): Caller,
    CertId(id): CertId,
) -> ApiResult<Json<ResourceTagsResponse>> {
    let tags = s.scm.certificate_tags(&p, &id).await?;
    Ok(Json(ResourceTagsResponse {
        tags: tags.into_iter().map(views::resource_tag).collect(),
    }))
}

pub(crate) async fn batch_create_or_delete_tags(
    State(s): State<AppState>,
    Caller(p): Caller,
    CertId(id): CertId,
    JsonBody(body): JsonBody<BatchTagsBody>,
) -> ApiResult<Json<DescResponse>> {
    let action = s.scm.batch_tags(&p, &id, &body).await?;
    let desc = match action {
        TagAction::Create => "create tags success",
        TagAction::Delete => "delete tags success",
    };
    Ok(Json(DescResponse { desc: desc.into() }))
}

pub(crate) async fn list_all_tags(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> ApiResult<Json<AllTagsResponse>> {
    Ok(Json(AllTagsResponse {
        tags: s.scm.all_tags(&p).await?,
    }))
}

pub(crate) async fn list_certificates_by_tag(
    State(s): State<AppState>,
    Caller(p): Caller,
    OptionalJsonBody(body): OptionalJsonBody<ListByTagBody>,
) -> ApiResult<Json<ListByTagResponse>> {
    let query = TagQuery::parse(&body.unwrap_or_default())?;
    let page = s.scm.certificates_by_tag(&p, &query).await?;
    Ok(Json(ListByTagResponse {
        total_count: page.total,
        resources: page.items.iter().map(views::tag_resource).collect(),
    }))
}
