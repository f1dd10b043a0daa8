//! Wire types of the lifecycle operations: unsubscribe and cancel-cert (delete has no body).

use serde::{Deserialize, Serialize};

/// `DELETE /v3/scm/certificates/{cert_id}/unsubscribe`: `{"unsubscribe_results": "SUCCESS"}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnsubscribeResponse {
    /// Always `SUCCESS` (Terraform requires the literal).
    pub unsubscribe_results: String,
}

/// `POST /v3/scm/certificates/{certificate_id}/cancel-cert`:
/// `{"cert_id": "scs…", "message": "success"}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CancelCertResponse {
    /// The certificate whose application was withdrawn.
    pub cert_id: String,
    /// Always `success`.
    pub message: String,
}
