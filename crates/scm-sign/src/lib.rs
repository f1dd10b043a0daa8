//! SDK-HMAC-SHA256 request signing, as spoken by the Huawei Cloud SDKs.
//!
//! The server side parses an [`Authorization`] header, rebuilds the canonical request from the
//! request *as received* ([`Request`], [`canonical_request`]) and checks it with [`verify`]. The
//! client side produces the same headers as the official Python SDK signer with [`sign`].
//!
//! The algorithm is the one of the Python SDK (`huaweicloudsdkcore/signer/signer.py`):
//!
//! ```text
//! canonical request = METHOD \n canonical-uri \n canonical-query \n canonical-headers \n
//!                     signed-headers \n payload-hash
//! string to sign    = "SDK-HMAC-SHA256" \n X-Sdk-Date \n hex(sha256(canonical request))
//! signature         = hex(hmac-sha256(SK, string to sign))
//! ```
#![deny(missing_docs)]

mod authorization;
mod canonical;
mod client;
mod error;
mod secret;

use aws_lc_rs::{digest, hmac};
use subtle::ConstantTimeEq;
use time::{Date, Duration, Month, OffsetDateTime, Time, UtcOffset};

pub use authorization::Authorization;
pub use canonical::{Request, canonical_request, single_header};
pub use client::{Signed, sign};
pub use error::SignError;
pub use secret::SecretKey;

/// The only signing algorithm supported: the SDK default.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";

/// Name of the header carrying the signing time, lower-case as it appears in `SignedHeaders`.
pub const DATE_HEADER: &str = "x-sdk-date";

/// Lower-case hex SHA-256 of zero bytes: the payload hash of a request without a body.
pub const EMPTY_PAYLOAD_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Header by which a client opts out of hashing the body.
const CONTENT_SHA256_HEADER: &str = "x-sdk-content-sha256";

/// The value of [`CONTENT_SHA256_HEADER`] that replaces the body hash.
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Verifies a signed request on the server side.
///
/// `auth` is the parsed `Authorization` header of `req`, and `secret` the SK looked up by its
/// access key. The request is accepted when its `X-Sdk-Date` header is present, signed, and within
/// `max_skew` of `now` (either direction), and the signature over the headers named in
/// `auth.signed_headers` matches.
///
/// The skew is checked before the signature, as the API gateway does, so a stale request costs
/// no HMAC.
pub fn verify(
    req: &Request<'_>,
    auth: &Authorization<'_>,
    secret: &SecretKey,
    now: OffsetDateTime,
    max_skew: Duration,
) -> Result<(), SignError> {
    let sdk_date = check_date(req, auth, now, max_skew)?;
    let canonical = canonical_request(req, &auth.signed_headers)?;
    let expected = signature(secret, &string_to_sign(sdk_date, &canonical));
    match bool::from(expected.ct_eq(&auth.signature)) {
        true => Ok(()),
        false => Err(SignError::BadSignature),
    }
}

/// The part of [`verify`] that needs no body: `X-Sdk-Date` is present once, signed, well formed
/// and within `max_skew` of `now`. Returns the date header's value. A server checks this before it
/// reads a body, so a stale or unsigned request is refused without reading what it sends.
pub fn check_date<'a>(
    req: &Request<'a>,
    auth: &Authorization<'_>,
    now: OffsetDateTime,
    max_skew: Duration,
) -> Result<&'a str, SignError> {
    let sdk_date =
        canonical::single_header(req.headers, DATE_HEADER)?.ok_or(SignError::MissingDate)?;
    // An unsigned date could be replaced freely, making the skew check worthless.
    if !auth.signed_headers.contains(&DATE_HEADER) {
        return Err(SignError::UnsignedDate);
    }
    let date = parse_sdk_date(sdk_date)?;
    if (now - date).abs() > max_skew {
        return Err(SignError::Skew);
    }
    Ok(sdk_date)
}

/// Builds the string to sign: the algorithm, the `X-Sdk-Date` value and the hex SHA-256 of the
/// canonical request, separated by LF.
pub fn string_to_sign(sdk_date: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{sdk_date}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// Computes the raw HMAC-SHA256 signature of `string_to_sign`, keyed with the SK's UTF-8 bytes.
///
/// The `Authorization` header carries it as lower-case hex.
pub fn signature(secret: &SecretKey, string_to_sign: &str) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes());
    let tag = hmac::sign(&key, string_to_sign.as_bytes());
    let mut out = [0u8; 32];
    // HMAC-SHA256 tags are always 32 bytes; zipping avoids a panicking copy.
    for (dst, src) in out.iter_mut().zip(tag.as_ref()) {
        *dst = *src;
    }
    out
}

/// Parses an `X-Sdk-Date` value, `%Y%m%dT%H%M%SZ` in UTC (for example `20240102T030405Z`).
///
/// The format is matched exactly: 16 characters, digits where digits belong, no sign, no
/// surrounding whitespace.
pub fn parse_sdk_date(s: &str) -> Result<OffsetDateTime, SignError> {
    let bytes = s.as_bytes();
    if bytes.len() != 16 || bytes.get(8) != Some(&b'T') || bytes.get(15) != Some(&b'Z') {
        return Err(SignError::BadDate);
    }

    let month = Month::try_from(date_field::<u8>(s, 4..6)?).map_err(|_| SignError::BadDate)?;
    let date = Date::from_calendar_date(date_field(s, 0..4)?, month, date_field(s, 6..8)?)
        .map_err(|_| SignError::BadDate)?;
    let time = Time::from_hms(
        date_field(s, 9..11)?,
        date_field(s, 11..13)?,
        date_field(s, 13..15)?,
    )
    .map_err(|_| SignError::BadDate)?;
    Ok(date.with_time(time).assume_utc())
}

/// Parses the all-digit field `range` of an `X-Sdk-Date` value.
fn date_field<T: std::str::FromStr>(
    s: &str,
    range: std::ops::Range<usize>,
) -> Result<T, SignError> {
    let field = s.get(range).ok_or(SignError::BadDate)?;
    // `FromStr` for integers accepts a leading `+`, which the format does not.
    if !field.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignError::BadDate);
    }
    field.parse().map_err(|_| SignError::BadDate)
}

/// Formats a time as an `X-Sdk-Date` value, in UTC.
fn format_sdk_date(t: OffsetDateTime) -> String {
    // Only fails at the very edge of the representable range, where any output is meaningless.
    let t = t.checked_to_offset(UtcOffset::UTC).unwrap_or(t);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Lower-case hex SHA-256.
fn sha256_hex(data: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, data))
}

#[cfg(test)]
mod vector_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn empty_payload_constant_is_sha256_of_nothing() {
        assert_eq!(sha256_hex(b""), EMPTY_PAYLOAD_SHA256);
    }

    #[test]
    fn sdk_date_round_trip() {
        let t = parse_sdk_date("20240102T030405Z").unwrap();
        assert_eq!(t, datetime!(2024-01-02 03:04:05 UTC));
        assert_eq!(format_sdk_date(t), "20240102T030405Z");
        // Other offsets are converted to UTC first.
        let paris = datetime!(2024-01-02 04:04:05 +01:00);
        assert_eq!(format_sdk_date(paris), "20240102T030405Z");
    }

    #[test]
    fn sdk_date_rejects_other_formats() {
        for bad in [
            "",
            "20240102T030405",
            "20240102T030405z",
            "20240102t030405Z",
            "2024-01-02T03:04:05Z",
            "+0240102T030405Z",
            "2024+102T030405Z",
            "20241302T030405Z",
            "20240230T030405Z",
            "20240102T240405Z",
            "20240102T030460Z",
            " 20240102T030405Z",
            "20240102T030405Z ",
            "20240102T03040５Z",
        ] {
            assert_eq!(parse_sdk_date(bad), Err(SignError::BadDate), "{bad:?}");
        }
    }
}
