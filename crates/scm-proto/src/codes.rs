//! Error codes returned in `error_code`, pinned here so that every code the server can return is a
//! constant and a compatibility test can check them all.

use serde::{Deserialize, Serialize};

/// The JSON error body of every non-2xx response: `{"error_code": "...", "error_msg": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `SCM.0005`.
    pub error_code: String,
    /// Human-readable message; never contains internal causes.
    pub error_msg: String,
}

/// Another tenant's resource.
pub const TENANT_NO_PRIVILEGE: &str = "SCM.0003";
/// Invalid request parameter (the message names the field).
pub const INVALID_PARAMETER: &str = "SCM.0005";
/// Certificate id is not of the `scs` + 13 digits form.
pub const ABNORMAL_CERTIFICATE_ID: &str = "SCM.0008";
/// Operation not allowed in the certificate's current status.
pub const WRONG_STATUS: &str = "SCM.0010";
/// Domain names do not fit the purchased product (count, type, or issuance policy).
pub const DOMAIN_MISMATCH: &str = "SCM.0015";
/// Unknown certificate id.
pub const CERTIFICATE_NOT_FOUND: &str = "SCM.0020";
/// Push to the target failed.
pub const PUSH_FAILED: &str = "SCM.0028";
/// No push target for this service and region.
pub const PUSH_UNSUPPORTED: &str = "SCM.0030";
/// Internal error. The real service's code for this is not known; OpenSCM uses `SCM.0500`.
pub const INTERNAL: &str = "SCM.0500";
/// Authentication failed (the code Huawei's API gateway uses).
pub const AUTH_FAILED: &str = "APIGW.0301";
/// Unknown API route (the code Huawei's API gateway uses).
pub const ROUTE_NOT_FOUND: &str = "APIGW.0101";
/// Method not allowed on an existing route.
pub const METHOD_NOT_ALLOWED: &str = "APIGW.0105";
/// Request body larger than the server accepts.
pub const BODY_TOO_LARGE: &str = "APIGW.0201";

/// Every code above, for compatibility tests.
pub const ALL: &[&str] = &[
    TENANT_NO_PRIVILEGE,
    INVALID_PARAMETER,
    ABNORMAL_CERTIFICATE_ID,
    WRONG_STATUS,
    DOMAIN_MISMATCH,
    CERTIFICATE_NOT_FOUND,
    PUSH_FAILED,
    PUSH_UNSUPPORTED,
    INTERNAL,
    AUTH_FAILED,
    ROUTE_NOT_FOUND,
    METHOD_NOT_ALLOWED,
    BODY_TOO_LARGE,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_fit_the_documented_length() {
        for code in ALL {
            assert!((3..=36).contains(&code.len()), "{code}");
        }
    }
}
