//! Wire types of the lifecycle operations: unsubscribe and cancel-cert (delete has no body).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `DELETE /v3/scm/certificates/{cert_id}/unsubscribe`: `{"unsubscribe_results": "SUCCESS"}`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UnsubscribeResponse {
    /// Always `SUCCESS` (Terraform requires the literal).
    #[schemars(extend("const" = "SUCCESS"))]
    pub unsubscribe_results: String,
}

/// `POST /v3/scm/certificates/{certificate_id}/cancel-cert`:
/// `{"cert_id": "scs…", "message": "success"}`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CancelCertResponse {
    /// The certificate whose application was withdrawn.
    #[schemars(pattern(crate::v3::CERTIFICATE_ID_PATTERN))]
    pub cert_id: String,
    /// Always `success`.
    #[schemars(extend("const" = "success"))]
    pub message: String,
}
