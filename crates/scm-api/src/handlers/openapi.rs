//! `GET /openapi.json`: the OpenAPI 3.1 description, built once from the code.

use axum::http::header;
use axum::response::IntoResponse;

pub(crate) async fn openapi_description() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::served(),
    )
}
