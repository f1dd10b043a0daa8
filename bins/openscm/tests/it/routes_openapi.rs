//! `GET /openapi.json`: the OpenAPI description answers without authentication, as JSON, and is
//! the document the code generates (the one committed as docs/openapi.json).

use scm_client::{RawRequest, RequestAuth};
use serde_json::Value;

use crate::harness::TestServer;
use crate::routes::request_id;

#[tokio::test]
async fn routes_openapi_description_answers_unauthenticated() {
    let s = TestServer::start().await;
    let resp = s
        .admin
        .send(RawRequest::new("GET", "/openapi.json").unauthenticated())
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("content-type"), Some("application/json"));
    request_id(&resp);
    assert_eq!(resp.text(), scm_api::openapi::render());
    let doc: Value = resp.json().unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["paths"]["/openapi.json"]["get"]["operationId"],
        "OpenApiDescription"
    );
    assert_eq!(
        doc["paths"]["/openapi.json"]["get"]["security"],
        serde_json::json!([])
    );
    // A signature is not needed, and not in the way either; the typed method reads it.
    let signed = s
        .admin
        .send(RawRequest::new("GET", "/openapi.json").auth(RequestAuth::Signature))
        .await
        .unwrap();
    assert_eq!(signed.status, 200);
    assert_eq!(s.admin.openapi_description().await.unwrap(), doc);
    // Only GET.
    let post = s
        .admin
        .send(RawRequest::new("POST", "/openapi.json").unauthenticated())
        .await
        .unwrap();
    assert_eq!(post.status, 405);
    s.stop().await;
}
