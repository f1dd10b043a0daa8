//! Why signing or verification failed.

/// Why a request could not be canonicalised or verified.
///
/// Messages never contain the secret key; they may name a header, which is safe to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The `Authorization` header does not match
    /// `SDK-HMAC-SHA256 Access=…, SignedHeaders=…, Signature=…`.
    #[error("malformed Authorization header")]
    MalformedAuthorization,
    /// The `Authorization` header uses a scheme other than `SDK-HMAC-SHA256`.
    #[error("unsupported Authorization scheme")]
    UnsupportedAlgorithm,
    /// A header listed in `SignedHeaders` is absent from the request.
    #[error("signed header `{0}` is missing from the request")]
    MissingSignedHeader(String),
    /// A header that takes part in the signature appears more than once.
    #[error("header `{0}` appears more than once")]
    DuplicateHeader(String),
    /// The request has no `X-Sdk-Date` header.
    #[error("missing X-Sdk-Date header")]
    MissingDate,
    /// `X-Sdk-Date` is not listed in `SignedHeaders`.
    #[error("X-Sdk-Date is not a signed header")]
    UnsignedDate,
    /// `X-Sdk-Date` is not a valid `YYYYMMDDTHHMMSSZ` time.
    #[error("X-Sdk-Date is not a valid YYYYMMDDTHHMMSSZ time")]
    BadDate,
    /// `X-Sdk-Date` is further from the server clock than the allowed skew.
    #[error("X-Sdk-Date is outside the allowed clock skew")]
    Skew,
    /// The signature does not match the request.
    #[error("signature mismatch")]
    BadSignature,
    /// The path or query has an invalid percent-escape or is not UTF-8 once decoded.
    #[error("invalid percent-encoding in path or query")]
    BadEncoding,
}
