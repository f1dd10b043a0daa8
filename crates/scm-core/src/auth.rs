//! Authentication: `SDK-HMAC-SHA256` signatures exactly as the official SDKs make them, and
//! `X-Auth-Token` bearer tokens obtained from `POST /v3/auth/tokens`.
//!
//! Credentials (with their opened secret keys) are held in the coherent read cache of
//! [`crate::cache`]: a revocation takes effect at once in the process that made it and within one
//! poll interval (0.1 s) everywhere else.

use aws_lc_rs::digest;
use scm_proto::{AccessKeyId, DomainId, ProjectId};
use scm_sign::{Authorization, Request, SecretKey, SignError};
use scm_store::CredentialStatus;

use crate::DomainError;

/// How a request was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// AK/SK signature.
    Signature,
    /// Bearer token.
    Token,
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Account.
    pub account: DomainId,
    /// Default project (the credential's).
    pub project: ProjectId,
    /// Credential used.
    pub access_key: AccessKeyId,
    /// How.
    pub method: AuthMethod,
}

/// Why authentication failed. All map to HTTP 401; the HTTP layer words the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// Neither a signature nor a token.
    Missing,
    /// The Authorization header or a signed header is malformed.
    Malformed,
    /// Unknown access key.
    UnknownKey,
    /// The credential was revoked.
    Revoked,
    /// `X-Sdk-Date` is outside the allowed skew.
    Skew,
    /// The signature does not verify.
    BadSignature,
    /// Unknown or malformed token.
    BadToken,
    /// The token expired.
    ExpiredToken,
}

/// A credential as the verifier needs it (shared, never copied, from the cache).
pub(crate) struct CachedCredential {
    pub account: DomainId,
    pub project: ProjectId,
    pub secret: SecretKey,
    pub status: CredentialStatus,
}

/// Trimmed header value by case-insensitive name; `Err` if it occurs more than once.
pub(crate) fn header<'a>(req: &Request<'a>, name: &str) -> Result<Option<&'a str>, AuthFailure> {
    scm_sign::single_header(req.headers, name).map_err(|_| AuthFailure::Malformed)
}

/// The parsed `Authorization` of a signed request, if it claims SDK-HMAC-SHA256.
pub(crate) fn signature_authorization<'a>(
    req: &Request<'a>,
) -> Result<Option<Authorization<'a>>, AuthFailure> {
    let Some(value) = header(req, "authorization")? else {
        return Ok(None);
    };
    if !value.trim_start().starts_with(scm_sign::ALGORITHM) {
        return Ok(None);
    }
    Authorization::parse(value.trim())
        .map(Some)
        .map_err(|_| AuthFailure::Malformed)
}

/// Maps a verifier error to a failure.
pub(crate) fn sign_failure(e: &SignError) -> AuthFailure {
    match e {
        SignError::Skew => AuthFailure::Skew,
        SignError::BadSignature => AuthFailure::BadSignature,
        _ => AuthFailure::Malformed,
    }
}

/// Hex SHA-256 of a token: tokens are stored and looked up by hash only.
pub fn token_hash(token: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, token.as_bytes()).as_ref())
}

impl From<AuthFailure> for DomainError {
    fn from(f: AuthFailure) -> Self {
        DomainError::Unauthenticated(f)
    }
}
