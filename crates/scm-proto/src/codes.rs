//! Error codes returned in `error_code`. Every code the server can return is a variant of
//! [`ErrorCode`]; [`ErrorCode::ALL`] is generated from the same list, so a code cannot be added
//! without being seen by the compatibility tests.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The JSON error body of every non-2xx response: `{"error_code": "...", "error_msg": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `SCM.0005`.
    #[schemars(extend("enum" = ErrorCode::wire_names()))]
    pub error_code: String,
    /// Human-readable message; never contains internal causes.
    #[schemars(length(max = 1024))]
    pub error_msg: String,
}

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $name:ident = $code:literal, )*) => {
        /// A stable error code of the API.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[$doc])* $name, )*
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(Self::$name),*];

            /// Every spelling, in declaration order (the `enum` of the OpenAPI error schema).
            pub fn wire_names() -> Vec<&'static str> {
                Self::ALL.iter().map(|c| c.as_str()).collect()
            }

            /// The wire spelling, e.g. `SCM.0005`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$name => $code,)*
                }
            }
        }
    };
}

error_codes! {
    /// Another tenant's resource.
    TenantNoPrivilege = "SCM.0003",
    /// Invalid request parameter (the message names the field).
    InvalidParameter = "SCM.0005",
    /// Certificate id is not of the `scs` + 13 digits form.
    AbnormalCertificateId = "SCM.0008",
    /// Operation not allowed in the certificate's current status.
    WrongStatus = "SCM.0010",
    /// Domain names do not fit the purchased product (count, type, or issuance policy).
    DomainMismatch = "SCM.0015",
    /// Unknown certificate id.
    CertificateNotFound = "SCM.0020",
    /// Push to the target failed.
    PushFailed = "SCM.0028",
    /// No push target for this service and region.
    PushUnsupported = "SCM.0030",
    /// Internal error. The real service's code for this is not known; OpenSCM uses `SCM.0500`.
    Internal = "SCM.0500",
    /// A dependency (the database) is unavailable for now; retrying later may succeed. The real
    /// service's code is not known; OpenSCM uses `SCM.0503` beside HTTP 503.
    Unavailable = "SCM.0503",
    /// Authentication failed (the code Huawei's API gateway uses).
    AuthFailed = "APIGW.0301",
    /// Unknown API route (the code Huawei's API gateway uses).
    RouteNotFound = "APIGW.0101",
    /// Method not allowed on an existing route.
    MethodNotAllowed = "APIGW.0105",
    /// Request body larger than the server accepts.
    BodyTooLarge = "APIGW.0201",
    /// The request body did not arrive within the body deadline (HTTP 408).
    BodyTimeout = "APIGW.0202",
    /// The request took longer than the request deadline (HTTP 503).
    RequestTimeout = "APIGW.0203",
    /// Too many requests from this account: throttled (HTTP 429 with `Retry-After`), the code
    /// Huawei's API gateway uses for throttling.
    Throttled = "APIGW.0308",
    /// Too many connections open to the server (HTTP 503, sent before closing a connection).
    TooManyConnections = "APIGW.0309",
    /// The account's quota of certificates or orders is reached (the documented code for the
    /// certificate count limit).
    QuotaExceeded = "SCM.0011",
    // --- csr ---
    /// A private key does not belong to the CSR (or certificate) it came with (the documented
    /// "does not match the private key" code).
    KeyMismatch = "SCM.0014",
    // --- import ---
    /// The imported certificate does not parse, or cannot be used: a CA certificate, a critical
    /// extension OpenSCM does not process, not valid yet (the documented "failed to be resolved"
    /// code).
    CertificateUnparsable = "SCM.0006",
    /// The imported certificate names no domain.
    CertificateWithoutDomain = "SCM.0009",
    /// The imported private key does not parse, is passphrase-protected or unsupported.
    KeyUnparsable = "SCM.0012",
    /// The imported certificate chain does not parse, or one of its certificates has a critical
    /// extension OpenSCM does not process.
    ChainUnparsable = "SCM.0013",
    /// The certificate name is not 3..63 of `A-Z a-z 0-9 _ - .`.
    CertificateName = "SCM.0032",
    /// The imported certificate lacks its BEGIN/END markers.
    CertificateMarkers = "SCM.0053",
    /// The imported certificate is empty between its markers.
    CertificateEmpty = "SCM.0054",
    /// The chain does not verify: out of order (a certificate's issuer is not the next one's
    /// subject), a signature that does not verify with the next certificate's key, a loop, or a
    /// certificate that may not issue the one below it (the documented chain-check code).
    ChainOrder = "SCM.0079",
    /// The imported private key lacks its BEGIN/END markers.
    KeyMarkers = "SCM.0114",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_fit_the_documented_length_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!((3..=36).contains(&code.as_str().len()), "{code}");
            assert!(seen.insert(code.as_str()), "{code} twice");
        }
    }
}
