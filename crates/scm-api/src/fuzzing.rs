//! Entry points for the fuzz targets in `fuzz/` (a crate outside the workspace): thin public
//! wrappers around the private request parsers of this crate, each followed by the pure domain
//! checks that the handler applies next. Not part of the API: hidden from the docs, and free to
//! change with the targets.
//!
//! Every function takes the raw bytes or text of a request, as the server receives them, and
//! must never panic, whatever they are.
#![doc(hidden)]

use bytes::Bytes;
use scm_core::ListRequest;
use scm_core::application::ApplicationForm;
use scm_core::deploy::PushService;
use scm_core::purchase::{ApiVersion, PurchaseSpec};
use scm_proto::v2::PushBody as V2PushBody;
use scm_proto::v3::{ApplicationBody, PurchaseBody, PushBody as V3PushBody};

use crate::ApiError;
use crate::parse;

/// A purchase body (v2 `cert/purchase`, v3 `certificates/buy`): the JSON body parser, then
/// [`PurchaseSpec::parse`] with the rules of `version`.
pub fn purchase(body: &[u8], version: ApiVersion) -> Result<PurchaseSpec, ApiError> {
    let body: PurchaseBody = parse::json(&Bytes::copy_from_slice(body))?;
    Ok(PurchaseSpec::parse(&body, version)?)
}

/// An application form (v2 `save`/`complete`, v3 `apply`): the JSON body parser, then
/// [`ApplicationForm::parse`] (names, applicant fields, and the CSR when there is one).
/// `organisation_validated` is true for OV/EV products, which need the company.
pub fn application(
    body: &[u8],
    version: ApiVersion,
    organisation_validated: bool,
) -> Result<ApplicationForm, ApiError> {
    let body: ApplicationBody = parse::json(&Bytes::copy_from_slice(body))?;
    Ok(ApplicationForm::parse(
        &body,
        version,
        organisation_validated,
    )?)
}

/// A v2 push body (`POST /v2/{project_id}/scm/cert/{id}/push`): the JSON body parser, then the
/// service and region checks of the v2 page.
pub fn v2_push(body: &[u8]) -> Result<(PushService, Option<String>), ApiError> {
    let body: V2PushBody = parse::json(&Bytes::copy_from_slice(body))?;
    Ok(parse::v2_push(&body)?)
}

/// A v3 push body (`POST /v3/scm/certificates/{id}/push`): the JSON body parser, then the
/// service and region checks of v3.
pub fn v3_push(body: &[u8]) -> Result<(PushService, Option<String>), ApiError> {
    let body: V3PushBody = parse::json(&Bytes::copy_from_slice(body))?;
    Ok(parse::v3_push(&body)?)
}

/// The raw query string of `GET /v3/scm/certificates` (without the `?`; `None` when there is
/// none): decoded into pairs, then checked into a [`ListRequest`].
pub fn list_query(raw: Option<&str>) -> Result<ListRequest, ApiError> {
    let pairs = parse::query_pairs(raw)?;
    Ok(parse::list_request(&pairs)?)
}
