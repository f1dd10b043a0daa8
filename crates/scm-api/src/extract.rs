//! Extractors: what a handler may take from a request, already parsed and checked.
//!
//! - [`Caller`]: the authenticated principal (set by the guard; a handler of a public route
//!   cannot ask for it without failing closed);
//! - [`V2Project`]: the project of a v2 path, checked by the guard to be the caller's;
//! - [`CertId`]: the certificate id of the path (`SCM.0008` when malformed);
//! - [`JsonBody`] / [`OptionalJsonBody`]: the body, with errors naming the JSON path;
//! - [`ListParams`]: the query of the certificate list;
//! - [`CsrIdPath`]: the CSR id of the path (`SCM.0008` when malformed), [`CsrListParams`]: the
//!   query of the CSR list.

use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use bytes::Bytes;
use scm_core::{DomainError, ListRequest, Principal};
use scm_proto::{CertificateId, ProjectId};
use serde::de::DeserializeOwned;

use crate::auth::ProjectScope;
use crate::error::ApiError;
use crate::parse;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Caller)
            // Only the guard puts it there; a route without authentication must not get one.
            .ok_or(ApiError::Domain(DomainError::Unauthenticated(
                scm_core::AuthFailure::Missing,
            )))
    }
}

/// The project of a v2 path, checked against the caller's account by the guard.
#[derive(Debug, Clone)]
pub(crate) struct V2Project(pub ProjectId);

impl<S: Send + Sync> FromRequestParts<S> for V2Project {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<ProjectScope>()
            .map(|p| V2Project(p.0.clone()))
            // Only project-scoped routes are checked by the guard; any other route is refused.
            .ok_or(ApiError::Domain(DomainError::OtherTenant))
    }
}

/// The certificate id of the path (`{cert_id}` on v2, `{certificate_id}` on v3, `{resource_id}`
/// on the tag routes).
#[derive(Debug, Clone)]
pub(crate) struct CertId(pub CertificateId);

impl<S: Send + Sync> FromRequestParts<S> for CertId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::Domain(DomainError::MalformedCertificateId))?;
        params
            .iter()
            .find(|(k, _)| matches!(*k, "cert_id" | "certificate_id" | "resource_id"))
            .and_then(|(_, v)| CertificateId::try_from(v).ok())
            .map(CertId)
            .ok_or(ApiError::Domain(DomainError::MalformedCertificateId))
    }
}

/// The `{version}` of the path: a version number, 1 or more (anything else is `SCM.0005`
/// naming `version`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct VersionNo(pub u32);

impl<S: Send + Sync> FromRequestParts<S> for VersionNo {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let bad = || {
            ApiError::Domain(DomainError::invalid(
                "version",
                "must be a version number (1, 2, ...)",
            ))
        };
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| bad())?;
        params
            .iter()
            .find(|(k, _)| *k == "version")
            .and_then(|(_, v)| v.parse::<u32>().ok())
            .filter(|v| *v >= 1 && *v < 1_000_000)
            .map(VersionNo)
            .ok_or_else(bad)
    }
}

/// The `{target}` of the path: a push target's name (1 to 128 printable characters; anything
/// else is `SCM.0005` naming `target`). Whether the account has such a target is the domain's
/// question.
#[derive(Debug, Clone)]
pub(crate) struct TargetName(pub String);

impl<S: Send + Sync> FromRequestParts<S> for TargetName {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let bad = || {
            ApiError::Domain(DomainError::invalid(
                "target",
                "must be the name of a push target (1 to 128 printable characters)",
            ))
        };
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| bad())?;
        params
            .iter()
            .find(|(k, _)| *k == "target")
            .map(|(_, v)| v.to_owned())
            .filter(|v| !v.is_empty() && v.len() <= 128 && !v.chars().any(char::is_control))
            .map(TargetName)
            .ok_or_else(bad)
    }
}

/// A JSON body of type `T`: a missing body or a syntax error names `body`, a type error its JSON
/// path (`SCM.0005`).
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = body_bytes(req, state).await?;
        parse::json(&bytes).map(JsonBody)
    }
}

/// Like [`JsonBody`], but an empty body, or `{}`, is `None` (v2 `complete` without a body
/// submits the saved application).
#[derive(Debug)]
pub(crate) struct OptionalJsonBody<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        let value = parse::json_value(&bytes)?;
        if value.as_object().is_some_and(serde_json::Map::is_empty) {
            return Ok(Self(None));
        }
        parse::from_value(value).map(|v| Self(Some(v)))
    }
}

/// A body that is a JSON array of `T` (the notification operations'); an empty body is `None`.
#[derive(Debug)]
pub(crate) struct JsonList<T>(pub Option<Vec<T>>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonList<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        let value = parse::json_array_value(&bytes)?;
        parse::from_value(value).map(|v| Self(Some(v)))
    }
}

async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    // The guard has read (and size-checked) the body already; this only takes it over.
    Bytes::from_request(req, state)
        .await
        .map_err(|_| ApiError::BodyTooLarge)
}

/// The query of `GET /v3/scm/certificates`.
#[derive(Debug, Clone)]
pub(crate) struct ListParams(pub ListRequest);

impl<S: Send + Sync> FromRequestParts<S> for ListParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let pairs = parse::query_pairs(parts.uri.query())?;
        Ok(Self(parse::list_request(&pairs)?))
    }
}

// --- csr ---

/// The CSR id of the path (`{id}` on the CSR routes): `SCM.0008` when it is not one.
#[derive(Debug, Clone)]
pub(crate) struct CsrIdPath(pub scm_proto::CsrId);

impl<S: Send + Sync> FromRequestParts<S> for CsrIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::Domain(DomainError::MalformedCsrId))?;
        params
            .iter()
            .find(|(k, _)| *k == "id")
            .and_then(|(_, v)| scm_proto::CsrId::try_from(v).ok())
            .map(CsrIdPath)
            .ok_or(ApiError::Domain(DomainError::MalformedCsrId))
    }
}

/// The query of `GET /v3/scm/csr`.
#[derive(Debug, Clone)]
pub(crate) struct CsrListParams(pub scm_store::CsrQuery);

impl<S: Send + Sync> FromRequestParts<S> for CsrListParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let pairs = parse::query_pairs(parts.uri.query())?;
        Ok(Self(scm_core::service::csr::list_query(&pairs)?))
    }
}
