//! The notification operations (reference §4.6): expiry reminders on or off.

use axum::Json;
use axum::extract::State;
use scm_proto::notices::{NoticeBody, NoticeResponse};

use super::ApiResult;
use crate::AppState;
use crate::extract::{Caller, JsonList};

pub(crate) async fn enable_notification(
    State(s): State<AppState>,
    Caller(p): Caller,
    JsonList(items): JsonList<NoticeBody>,
) -> ApiResult<Json<NoticeResponse>> {
    s.scm.set_notices(&p, items.as_deref(), true).await?;
    Ok(Json(NoticeResponse {}))
}

pub(crate) async fn disable_notification(
    State(s): State<AppState>,
    Caller(p): Caller,
    JsonList(items): JsonList<NoticeBody>,
) -> ApiResult<Json<NoticeResponse>> {
    s.scm.set_notices(&p, items.as_deref(), false).await?;
    Ok(Json(NoticeResponse {}))
}
