//! Wire types of the notification operations (reference §4.6, §4.7.11).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One item of the `EnableNotification` / `DisableNotification` body, a top-level JSON array
/// (NoticeRequestBody).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NoticeBody {
    /// The certificate.
    pub resource_id: Option<String>,
    /// `CERT_EXPIRING` and/or `CERT_EXPIRED` (absent: both).
    pub notice_type: Option<Vec<String>>,
}

/// The answer of both operations: `{}` (the SDK's response models have no fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NoticeResponse {}
