//! The one place where errors become HTTP responses. Every [`DomainError`] variant is matched
//! explicitly (no catch-all arm), so a new variant does not compile until it is mapped.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use scm_core::{AuthFailure, DomainError, ImportRefusal, InternalKind};
use scm_proto::{ErrorBody, ErrorCode};

/// An error answer.
#[derive(Debug)]
pub enum ApiError {
    /// From the domain.
    Domain(DomainError),
    /// The body is not JSON of the expected shape; `field` is the JSON path.
    BadJson {
        /// Path of the offending field (`body` for syntax errors).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// No such route.
    RouteNotFound,
    /// Route exists, method does not.
    MethodNotAllowed,
    /// Body larger than [`crate::MAX_BODY`].
    BodyTooLarge,
    /// The body did not arrive within the body deadline.
    BodyTimeout,
    /// The request took longer than the request deadline.
    RequestTimeout,
    /// The account sent more requests than its rate allows; retry after this many seconds.
    Throttled {
        /// Seconds until a request is allowed again (at least 1).
        retry_after: u64,
    },
    /// The server has as many connections open as it allows.
    TooManyConnections,
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        Self::Domain(e)
    }
}

/// What the access log needs to know about an error answer; the internal cause stays here.
#[derive(Debug, Clone)]
pub(crate) struct ErrorNote {
    pub code: ErrorCode,
    pub internal: Option<String>,
}

fn status_code_message(e: &ApiError) -> (StatusCode, ErrorCode, String) {
    match e {
        ApiError::Domain(d) => match d {
            DomainError::InvalidParameter { field, reason } => (
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidParameter,
                format!("Incorrect request parameter: {field} {reason}."),
            ),
            DomainError::MalformedCertificateId => (
                StatusCode::BAD_REQUEST,
                ErrorCode::AbnormalCertificateId,
                "Abnormal certificate ID.".into(),
            ),
            DomainError::CertificateNotFound => (
                StatusCode::NOT_FOUND,
                ErrorCode::CertificateNotFound,
                "Incorrect certificate ID.".into(),
            ),
            DomainError::OtherTenant => (
                StatusCode::FORBIDDEN,
                ErrorCode::TenantNoPrivilege,
                "Tenant has no privilege.".into(),
            ),
            DomainError::WrongStatus(s) => (
                StatusCode::BAD_REQUEST,
                ErrorCode::WrongStatus,
                format!(
                    "This operation is not allowed by the current certificate type or status ({s})."
                ),
            ),
            DomainError::DomainMismatch(m) => (
                StatusCode::BAD_REQUEST,
                ErrorCode::DomainMismatch,
                format!(
                    "The number or format of domain names entered does not meet the requirements of your certificate: {m}."
                ),
            ),
            DomainError::NoPushTarget { service, region } => (
                StatusCode::BAD_REQUEST,
                ErrorCode::PushUnsupported,
                format!(
                    "Certificates cannot be pushed to this service: no {service} target is configured for {region}."
                ),
            ),
            DomainError::UnknownTarget(name) => (
                StatusCode::BAD_REQUEST,
                ErrorCode::PushUnsupported,
                format!("Certificates cannot be pushed to this target: no push target of this account is named {name:?}."),
            ),
            DomainError::QuotaExceeded(what) => (
                StatusCode::BAD_REQUEST,
                ErrorCode::QuotaExceeded,
                format!("The quota of this account is reached: {what}."),
            ),
            DomainError::PushFailed(cause) => (
                StatusCode::BAD_REQUEST,
                ErrorCode::PushFailed,
                format!("Push cert error: {cause}."),
            ),
            DomainError::IssuerFailed(cause) => (
                StatusCode::BAD_GATEWAY,
                ErrorCode::Unavailable,
                format!("The certificate authority failed: {cause}."),
            ),
            DomainError::Unauthenticated(f) => (
                StatusCode::UNAUTHORIZED,
                ErrorCode::AuthFailed,
                auth_message(*f).into(),
            ),
            // --- csr ---
            DomainError::MalformedCsrId => (
                StatusCode::BAD_REQUEST,
                ErrorCode::AbnormalCertificateId,
                "Abnormal CSR ID.".into(),
            ),
            DomainError::CsrNotFound => (
                StatusCode::NOT_FOUND,
                ErrorCode::CertificateNotFound,
                "Incorrect CSR ID.".into(),
            ),
            DomainError::KeyMismatch => (
                StatusCode::BAD_REQUEST,
                ErrorCode::KeyMismatch,
                "The uploaded CSR does not match the private key.".into(),
            ),
            DomainError::CsrWithoutKey => (
                StatusCode::BAD_REQUEST,
                ErrorCode::WrongStatus,
                "This operation is not allowed for this CSR: it was uploaded without its private key."
                    .into(),
            ),
            // --- import ---
            DomainError::ImportRefused { refusal, reason } => {
                let (code, doc) = match refusal {
                    ImportRefusal::Name => {
                        (ErrorCode::CertificateName, "Incorrect certificate name")
                    }
                    ImportRefusal::CertificateMarkers => (
                        ErrorCode::CertificateMarkers,
                        "The certificate format is incorrect",
                    ),
                    ImportRefusal::CertificateEmpty => (
                        ErrorCode::CertificateEmpty,
                        "The certificate content is missing",
                    ),
                    ImportRefusal::CertificateUnparsable => (
                        ErrorCode::CertificateUnparsable,
                        "The uploaded certificate failed to be resolved",
                    ),
                    ImportRefusal::ChainUnparsable => (
                        ErrorCode::ChainUnparsable,
                        "The uploaded certificate chain failed to be resolved",
                    ),
                    ImportRefusal::ChainOrder => (
                        ErrorCode::ChainOrder,
                        "The certificate chain does not match the certificate",
                    ),
                    ImportRefusal::ChainUnverified => (
                        ErrorCode::ChainOrder,
                        "The certificate chain does not verify",
                    ),
                    ImportRefusal::CertificateRefused => (
                        ErrorCode::CertificateUnparsable,
                        "The uploaded certificate cannot be used",
                    ),
                    ImportRefusal::NoDomain => (
                        ErrorCode::CertificateWithoutDomain,
                        "Failed to upload the certificate because no domain name is bound to the certificate",
                    ),
                    ImportRefusal::KeyMarkers => (
                        ErrorCode::KeyMarkers,
                        "The private key format is incorrect",
                    ),
                    ImportRefusal::KeyUnparsable => (
                        ErrorCode::KeyUnparsable,
                        "The uploaded private key failed to be resolved",
                    ),
                    ImportRefusal::KeyMismatch => (
                        ErrorCode::KeyMismatch,
                        "The uploaded certificate does not match the private key",
                    ),
                };
                (StatusCode::BAD_REQUEST, code, format!("{doc}: {reason}."))
            }
            DomainError::Internal(i) => match i.kind {
                InternalKind::Fault => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::Internal,
                    "Internal server error.".into(),
                ),
                InternalKind::Unavailable => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::Unavailable,
                    "The service is temporarily unavailable; retry later.".into(),
                ),
            },
        },
        ApiError::BadJson { field, reason } => (
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidParameter,
            format!("Incorrect request parameter: {field} {reason}."),
        ),
        ApiError::RouteNotFound => (
            StatusCode::NOT_FOUND,
            ErrorCode::RouteNotFound,
            "The API does not exist or has not been published in the environment.".into(),
        ),
        ApiError::MethodNotAllowed => (
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
            "The method is not allowed on this API.".into(),
        ),
        ApiError::BodyTooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BodyTooLarge,
            "The request body is too large.".into(),
        ),
        ApiError::BodyTimeout => (
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::BodyTimeout,
            "The request body was not received in time.".into(),
        ),
        ApiError::RequestTimeout => (
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::RequestTimeout,
            "The request took too long; retry later.".into(),
        ),
        ApiError::Throttled { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Throttled,
            "The throttling threshold has been reached: too many requests from this account."
                .into(),
        ),
        ApiError::TooManyConnections => (
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::TooManyConnections,
            "Too many connections to the server; retry later.".into(),
        ),
    }
}

/// The HTTP status every answer with `code` has: what [`status_code_message`] pairs with it (the
/// test below pins the two together). The OpenAPI description groups the codes of an operation
/// by it.
pub(crate) const fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidParameter
        | ErrorCode::AbnormalCertificateId
        | ErrorCode::WrongStatus
        | ErrorCode::DomainMismatch
        | ErrorCode::PushFailed
        | ErrorCode::PushUnsupported
        | ErrorCode::QuotaExceeded
        | ErrorCode::KeyMismatch
        // --- import ---
        | ErrorCode::CertificateUnparsable
        | ErrorCode::CertificateWithoutDomain
        | ErrorCode::KeyUnparsable
        | ErrorCode::ChainUnparsable
        | ErrorCode::CertificateName
        | ErrorCode::CertificateMarkers
        | ErrorCode::CertificateEmpty
        | ErrorCode::ChainOrder
        | ErrorCode::KeyMarkers => StatusCode::BAD_REQUEST,
        ErrorCode::AuthFailed => StatusCode::UNAUTHORIZED,
        ErrorCode::TenantNoPrivilege => StatusCode::FORBIDDEN,
        ErrorCode::CertificateNotFound | ErrorCode::RouteNotFound => StatusCode::NOT_FOUND,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
        ErrorCode::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::Throttled => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Unavailable | ErrorCode::RequestTimeout | ErrorCode::TooManyConnections => {
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

/// The public message of an authentication failure: it says what to fix, never which part of a
/// key or signature was wrong.
fn auth_message(f: AuthFailure) -> &'static str {
    match f {
        AuthFailure::Missing => {
            "Incorrect IAM authentication information: sign the request with AK/SK or send X-Auth-Token."
        }
        AuthFailure::Malformed => {
            "Incorrect IAM authentication information: malformed Authorization or signed headers."
        }
        AuthFailure::UnknownKey | AuthFailure::Revoked | AuthFailure::BadSignature => {
            "Incorrect IAM authentication information: verify AK/SK signature fail."
        }
        AuthFailure::Skew => {
            "Incorrect IAM authentication information: X-Sdk-Date is expired or too far in the future."
        }
        AuthFailure::BadToken | AuthFailure::ExpiredToken => {
            "Incorrect IAM authentication information: the token is invalid or expired."
        }
    }
}

/// Why authentication failed, for the log only (a client learns nothing of which check failed).
fn auth_reason(f: AuthFailure) -> &'static str {
    match f {
        AuthFailure::Missing => "no signature and no token",
        AuthFailure::Malformed => "malformed Authorization or signed header",
        AuthFailure::UnknownKey => "unknown access key",
        AuthFailure::Revoked => "revoked access key",
        AuthFailure::BadSignature => "bad signature",
        AuthFailure::Skew => "X-Sdk-Date outside the allowed clock skew",
        AuthFailure::BadToken => "unknown or malformed token",
        AuthFailure::ExpiredToken => "expired token",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = status_code_message(&self);
        let internal = match &self {
            ApiError::Domain(DomainError::Internal(cause)) => Some(error_chain(cause)),
            ApiError::Domain(DomainError::PushFailed(cause)) => Some(cause.clone()),
            // Every 401 tells the client the same; the log says which check failed.
            ApiError::Domain(DomainError::Unauthenticated(f)) => Some(auth_reason(*f).to_owned()),
            _ => None,
        };
        let mut resp = (
            status,
            Json(ErrorBody {
                error_code: code.as_str().to_owned(),
                error_msg: message.chars().take(1024).collect(),
            }),
        )
            .into_response();
        if let ApiError::Throttled { retry_after } = &self
            && let Ok(v) = axum::http::HeaderValue::from_str(&retry_after.to_string())
        {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, v);
        }
        resp.extensions_mut().insert(ErrorNote { code, internal });
        resp
    }
}

/// The whole answer to a connection past the cap, written before it is closed (no request is
/// read from it, so the response is raw HTTP/1.1).
pub(crate) fn over_capacity_response() -> Vec<u8> {
    let (status, code, message) = status_code_message(&ApiError::TooManyConnections);
    let body = serde_json::json!({"error_code": code.as_str(), "error_msg": message}).to_string();
    format!(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nConnection: close\r\n\
         Retry-After: 1\r\nContent-Length: {}\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes()
}

/// One part's outcome inside a successful answer (a region of a batch push, a resource of a
/// deploy): `SCM.xxxx: public message`, from the same mapping as an error answer. An internal
/// cause is logged here (inside the request's span), never returned.
pub(crate) fn outcome_text(e: DomainError) -> String {
    match &e {
        DomainError::Internal(cause) => {
            tracing::error!(error = %error_chain(cause), "part of a request failed");
        }
        DomainError::PushFailed(cause) => tracing::info!(error = %cause, "a push failed"),
        _ => {}
    }
    let (_, code, message) = status_code_message(&ApiError::Domain(e));
    format!("{}: {message}", code.as_str())
        .chars()
        .take(255)
        .collect()
}

/// An error and its sources, `: `-separated, for the log.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let text = s.to_string();
        // Errors that print their source themselves would repeat it.
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use scm_proto::CertificateStatus;

    use super::*;

    fn import(refusal: ImportRefusal) -> ApiError {
        DomainError::import_refused(refusal, "what is wrong").into()
    }

    fn mapped(e: ApiError) -> (u16, String, String) {
        let (status, code, msg) = status_code_message(&e);
        (status.as_u16(), code.as_str().to_owned(), msg)
    }

    /// Pins the public face of every error: status, code, and that internals stay inside.
    #[test]
    fn every_error_has_its_status_and_code() {
        let cases = [
            (
                ApiError::from(DomainError::invalid("tags[1].key", "is required")),
                400,
                "SCM.0005",
            ),
            (DomainError::MalformedCertificateId.into(), 400, "SCM.0008"),
            (DomainError::CertificateNotFound.into(), 404, "SCM.0020"),
            (DomainError::OtherTenant.into(), 403, "SCM.0003"),
            (
                DomainError::WrongStatus(CertificateStatus::Paid).into(),
                400,
                "SCM.0010",
            ),
            (
                DomainError::DomainMismatch("x".into()).into(),
                400,
                "SCM.0015",
            ),
            (
                DomainError::NoPushTarget {
                    service: "ELB".into(),
                    region: "r".into(),
                }
                .into(),
                400,
                "SCM.0030",
            ),
            (
                DomainError::PushFailed("target t: reload failed".into()).into(),
                400,
                "SCM.0028",
            ),
            (
                DomainError::Unauthenticated(AuthFailure::Skew).into(),
                401,
                "APIGW.0301",
            ),
            (
                DomainError::internal("db password=hunter2").into(),
                500,
                "SCM.0500",
            ),
            (
                DomainError::from(scm_store::StoreError::Batch("database gone".into())).into(),
                503,
                "SCM.0503",
            ),
            (
                ApiError::BadJson {
                    field: "order_number".into(),
                    reason: "x".into(),
                },
                400,
                "SCM.0005",
            ),
            (ApiError::RouteNotFound, 404, "APIGW.0101"),
            (ApiError::MethodNotAllowed, 405, "APIGW.0105"),
            (ApiError::BodyTooLarge, 413, "APIGW.0201"),
            (ApiError::BodyTimeout, 408, "APIGW.0202"),
            (ApiError::RequestTimeout, 503, "APIGW.0203"),
            (ApiError::Throttled { retry_after: 2 }, 429, "APIGW.0308"),
            (ApiError::TooManyConnections, 503, "APIGW.0309"),
            (
                DomainError::QuotaExceeded("10000 certificates".into()).into(),
                400,
                "SCM.0011",
            ),
            // --- csr ---
            (DomainError::MalformedCsrId.into(), 400, "SCM.0008"),
            (DomainError::CsrNotFound.into(), 404, "SCM.0020"),
            (DomainError::KeyMismatch.into(), 400, "SCM.0014"),
            (DomainError::CsrWithoutKey.into(), 400, "SCM.0010"),
            // --- import ---
            (import(ImportRefusal::Name), 400, "SCM.0032"),
            (import(ImportRefusal::CertificateMarkers), 400, "SCM.0053"),
            (import(ImportRefusal::CertificateEmpty), 400, "SCM.0054"),
            (
                import(ImportRefusal::CertificateUnparsable),
                400,
                "SCM.0006",
            ),
            (import(ImportRefusal::ChainUnparsable), 400, "SCM.0013"),
            (import(ImportRefusal::ChainOrder), 400, "SCM.0079"),
            (import(ImportRefusal::ChainUnverified), 400, "SCM.0079"),
            (import(ImportRefusal::CertificateRefused), 400, "SCM.0006"),
            (import(ImportRefusal::NoDomain), 400, "SCM.0009"),
            (import(ImportRefusal::KeyMarkers), 400, "SCM.0114"),
            (import(ImportRefusal::KeyUnparsable), 400, "SCM.0012"),
            (import(ImportRefusal::KeyMismatch), 400, "SCM.0014"),
        ];
        let covered: std::collections::HashSet<&str> = cases.iter().map(|c| c.2).collect();
        for code in ErrorCode::ALL {
            assert!(covered.contains(code.as_str()), "{code} is not pinned here");
        }
        for (e, status, code) in cases {
            let (s, c, msg) = mapped(e);
            assert_eq!((s, c.as_str()), (status, code), "{msg}");
            let kind = ErrorCode::ALL.iter().find(|k| k.as_str() == c).unwrap();
            assert_eq!(status_of(*kind).as_u16(), status, "status_of({c})");
            assert!(ErrorCode::ALL.iter().any(|k| k.as_str() == c));
            assert!(
                !msg.contains("hunter2"),
                "internal causes never reach the client"
            );
            assert!(msg.len() <= 1024);
        }
        let (_, _, msg) = mapped(DomainError::invalid("tags[1].key", "is required").into());
        assert!(msg.contains("tags[1].key"), "the field is named: {msg}");
    }
}
