//! Bodies of the v2 ("historical") endpoints under `/v2/{project_id}/scm/...`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `POST .../push` request: `service_type` (CDN, WAF, ELB, Enhance_ELB) and `remote_project` (region).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct PushBody {
    /// Target service.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, extend("enum" = ["CDN", "WAF", "ELB", "Enhance_ELB"]))]
    pub service_type: Option<String>,
    /// Region of the target service.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255), pattern(crate::v3::REGION_PATTERN))]
    pub remote_project: Option<String>,
}

/// `{"message": "success"}`, the v2 push answer.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MessageResponse {
    /// Request result.
    pub message: String,
}

/// One push record of `GET .../push-history`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PushHistoryItem {
    /// Push time: millisecond Unix timestamp as a string.
    pub push_time: String,
    /// Target region; `null` for global services such as CDN.
    pub push_remote_project: Option<String>,
    /// Target service.
    pub push_service: String,
}

/// `GET .../push-history` answer: the last 10 pushes, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PushHistoryResponse {
    /// The records.
    pub push_history_list: Vec<PushHistoryItem>,
}

// --- revocation ---
/// `POST .../revoke` request: why the certificate is revoked (required, 0..63 characters).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct RevokeBody {
    /// The reason, free text; an RFC 5280 reason name (`keyCompromise`, `superseded`, ...)
    /// also becomes the reason code of the CRL entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, length(max = 63))]
    pub reason: Option<String>,
}
