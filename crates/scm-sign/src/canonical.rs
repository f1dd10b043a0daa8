//! The canonical request, rebuilt from a request as the server received it.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::{CONTENT_SHA256_HEADER, EMPTY_PAYLOAD_SHA256, SignError, UNSIGNED_PAYLOAD, sha256_hex};

/// A request as received by the server, borrowed from whatever HTTP types hold it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The HTTP method, such as `GET`.
    pub method: &'a str,
    /// The path exactly as received, still percent-encoded, without the query.
    pub raw_path: &'a str,
    /// The query string exactly as received, without the `?`; `None` when there is none.
    pub raw_query: Option<&'a str>,
    /// All request headers, names in any case, values as received. An HTTP/2 `:authority` should
    /// be passed as `host`.
    pub headers: &'a [(&'a str, &'a str)],
    /// The exact body bytes, before any decoding.
    pub body: &'a [u8],
}

/// Builds the canonical request of `req` over `signed_headers`, the names from the
/// `Authorization` header in their given order.
///
/// The parts, joined by LF:
///
/// 1. the method, upper case;
/// 2. the canonical URI: the raw path percent-decoded, split on `/`, each segment re-encoded
///    (RFC 3986 unreserved characters kept, upper-case hex), re-joined, with a trailing `/`;
/// 3. the canonical query: the raw query split on `&` and the first `=`, keys and values
///    percent-decoded (a literal `+` stays `+`), sorted by key then value, re-encoded like path
///    segments; `a` and `a=` both become `a=`;
/// 4. `name:value` LF for each signed header, the value trimmed;
/// 5. the signed header names joined with `;`;
/// 6. the payload hash: [`EMPTY_PAYLOAD_SHA256`] for an empty body, `UNSIGNED-PAYLOAD` when the
///    `X-Sdk-Content-Sha256` header says so, and otherwise the hex SHA-256 of the body.
///
/// An `X-Sdk-Content-Sha256` value other than `UNSIGNED-PAYLOAD` is not trusted: the body is
/// hashed anyway, so a claimed digest that does not match the body fails verification instead of
/// letting a captured signature vouch for another body. Honest clients are unaffected.
///
/// Fails when a signed header is missing or repeated, when the payload-hash header is repeated,
/// or when the path or query is not valid percent-encoded UTF-8.
pub fn canonical_request(req: &Request<'_>, signed_headers: &[&str]) -> Result<String, SignError> {
    let uri = canonical_uri(req.raw_path)?;
    let query = canonical_query(req.raw_query.unwrap_or(""))?;

    let mut lines = Vec::with_capacity(signed_headers.len());
    for name in signed_headers {
        let value = single_header(req.headers, name)?
            .ok_or_else(|| SignError::MissingSignedHeader((*name).to_owned()))?;
        lines.push(format!("{name}:{value}"));
    }

    let content_sha256 = single_header(req.headers, CONTENT_SHA256_HEADER)?;
    Ok(assemble(
        req.method,
        &uri,
        &query,
        &lines,
        signed_headers,
        &payload_hash(content_sha256, req.body),
    ))
}

/// Joins the six parts of a canonical request.
pub(crate) fn assemble(
    method: &str,
    uri: &str,
    query: &str,
    header_lines: &[String],
    signed_headers: &[&str],
    payload_hash: &str,
) -> String {
    // The header block ends in LF and is followed by the LF separator, leaving an empty line.
    format!(
        "{}\n{uri}\n{query}\n{}\n\n{}\n{payload_hash}",
        method.to_ascii_uppercase(),
        header_lines.join("\n"),
        signed_headers.join(";"),
    )
}

/// The payload hash, given the trimmed `X-Sdk-Content-Sha256` value if any.
pub(crate) fn payload_hash(content_sha256: Option<&str>, body: &[u8]) -> String {
    match (body.is_empty(), content_sha256) {
        (true, _) => EMPTY_PAYLOAD_SHA256.to_owned(),
        (false, Some(UNSIGNED_PAYLOAD)) => UNSIGNED_PAYLOAD.to_owned(),
        (false, _) => sha256_hex(body),
    }
}

/// The trimmed value of the only header called `name` (in any case), if there is one.
pub fn single_header<'a>(
    headers: &[(&str, &'a str)],
    name: &str,
) -> Result<Option<&'a str>, SignError> {
    let mut found = None;
    for (header, value) in headers {
        if !header.eq_ignore_ascii_case(name) {
            continue;
        }
        // Which of two values was signed is ambiguous; the Python SDK never repeats a header.
        if found.is_some() {
            return Err(SignError::DuplicateHeader(name.to_owned()));
        }
        found = Some(value.trim());
    }
    Ok(found)
}

/// Canonical URI of a raw (percent-encoded) path.
fn canonical_uri(raw_path: &str) -> Result<String, SignError> {
    let mut uri = percent_decode(raw_path)?
        .split('/')
        .map(encode)
        .collect::<Vec<_>>()
        .join("/");
    if !uri.ends_with('/') {
        uri.push('/');
    }
    Ok(uri)
}

/// Canonical query of a raw query string.
fn canonical_query(raw_query: &str) -> Result<String, SignError> {
    let mut params = Vec::new();
    // Empty pieces (`a=1&&b=2`, a trailing `&`) carry no parameter; form decoders drop them too.
    for param in raw_query.split('&').filter(|param| !param.is_empty()) {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        params.push((percent_decode(key)?, percent_decode(value)?));
    }
    params.sort();
    Ok(encode_query(
        params
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str())),
    ))
}

/// Encodes already sorted, decoded query parameters.
pub(crate) fn encode_query<'a>(params: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    params
        .map(|(key, value)| format!("{}={}", encode(key), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Everything but the RFC 3986 unreserved characters is escaped, as Python's
/// `quote(s, safe='~')` does.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes `s` with upper-case hex over its UTF-8 bytes.
pub(crate) fn encode(s: &str) -> String {
    utf8_percent_encode(s, RFC3986).to_string()
}

/// Percent-decodes `s`, leaving `+` alone.
///
/// Unlike Python's lenient `unquote`, a stray `%` or a decoded byte sequence that is not UTF-8
/// is an error: such a request was not produced by an SDK.
fn percent_decode(s: &str) -> Result<String, SignError> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let high = bytes.next().and_then(hex_digit);
        let low = bytes.next().and_then(hex_digit);
        match (high, low) {
            (Some(high), Some(low)) => out.push(high << 4 | low),
            _ => return Err(SignError::BadEncoding),
        }
    }
    String::from_utf8(out).map_err(|_| SignError::BadEncoding)
}

/// The value of one hex digit, either case.
fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_is_decoded_and_re_encoded() {
        for (raw, canonical) in [
            ("/v3/scm/certificates", "/v3/scm/certificates/"),
            ("/v3/scm/certificates/", "/v3/scm/certificates/"),
            ("", "/"),
            ("/", "/"),
            ("/v3/scm/csr/my%20csr", "/v3/scm/csr/my%20csr/"),
            ("/v3/scm/csr/my csr", "/v3/scm/csr/my%20csr/"),
            ("/a~b*c", "/a~b%2Ac/"),
            ("/a%7eb%2a", "/a~b%2A/"),
            ("/a+b", "/a%2Bb/"),
            ("/%C3%BC/%c3%bc/ü", "/%C3%BC/%C3%BC/%C3%BC/"),
            // An encoded slash splits a segment after decoding, as in the SDK.
            ("/a%2Fb", "/a/b/"),
            ("//a", "//a/"),
        ] {
            assert_eq!(canonical_uri(raw).unwrap(), canonical, "{raw:?}");
        }
    }

    #[test]
    fn query_is_sorted_and_re_encoded() {
        for (raw, canonical) in [
            ("", ""),
            ("limit=10&offset=0", "limit=10&offset=0"),
            ("offset=0&limit=10", "limit=10&offset=0"),
            ("b=2&a=&c", "a=&b=2&c="),
            ("a=2&a=1", "a=1&a=2"),
            ("a=1&&b=2&", "a=1&b=2"),
            ("name=x%20y%2a", "name=x%20y%2A"),
            ("name=x=y", "name=x%3Dy"),
            ("na%6De=%C3%BC", "name=%C3%BC"),
            ("a~b=x", "a~b=x"),
        ] {
            assert_eq!(canonical_query(raw).unwrap(), canonical, "{raw:?}");
        }
    }

    #[test]
    fn plus_in_query_is_a_plus() {
        // Both SDKs encode a space as %20, so a literal `+` is a plus sign, signed as %2B.
        assert_eq!(canonical_query("q=a+b").unwrap(), "q=a%2Bb");
        assert_eq!(canonical_query("q=a%2Bb").unwrap(), "q=a%2Bb");
        assert_eq!(canonical_query("q=a%20b").unwrap(), "q=a%20b");
    }

    #[test]
    fn bad_percent_encoding() {
        for raw in ["%", "%4", "a%zz", "%C3", "%FF", "%C3%28", "%%41"] {
            assert_eq!(canonical_uri(raw), Err(SignError::BadEncoding), "{raw:?}");
            assert_eq!(
                canonical_query(&format!("a={raw}")),
                Err(SignError::BadEncoding),
                "{raw:?}"
            );
            assert_eq!(
                canonical_query(&format!("{raw}=1")),
                Err(SignError::BadEncoding),
                "{raw:?}"
            );
        }
    }

    fn request<'a>(headers: &'a [(&'a str, &'a str)], body: &'a [u8]) -> Request<'a> {
        Request {
            method: "post",
            raw_path: "/v3/scm/csr",
            raw_query: Some("b=1&a=2"),
            headers,
            body,
        }
    }

    #[test]
    fn headers_are_matched_case_insensitively_and_trimmed() {
        let headers = [
            ("HOST", " example.com:8443 "),
            ("X-Sdk-Date", "20240102T030405Z"),
            ("Accept", "*/*"),
        ];
        let canonical =
            canonical_request(&request(&headers, b""), &["x-sdk-date", "host"]).unwrap();
        assert_eq!(
            canonical,
            format!(
                "POST\n/v3/scm/csr/\na=2&b=1\nx-sdk-date:20240102T030405Z\nhost:example.com:8443\n\nx-sdk-date;host\n{EMPTY_PAYLOAD_SHA256}"
            )
        );
    }

    #[test]
    fn missing_signed_header() {
        let headers = [("Host", "example.com")];
        assert_eq!(
            canonical_request(&request(&headers, b""), &["host", "x-sdk-date"]),
            Err(SignError::MissingSignedHeader("x-sdk-date".to_owned()))
        );
    }

    #[test]
    fn duplicate_signed_header() {
        let headers = [("Host", "example.com"), ("host", "evil.example")];
        assert_eq!(
            canonical_request(&request(&headers, b""), &["host"]),
            Err(SignError::DuplicateHeader("host".to_owned()))
        );
        // Repeated unsigned headers do not matter.
        let headers = [("Host", "example.com"), ("Accept", "a"), ("accept", "b")];
        assert!(canonical_request(&request(&headers, b""), &["host"]).is_ok());
    }

    #[test]
    fn payload_hash_rules() {
        let body = b"{}";
        let body_hash = sha256_hex(body);
        assert_eq!(payload_hash(None, b""), EMPTY_PAYLOAD_SHA256);
        assert_eq!(
            payload_hash(Some(UNSIGNED_PAYLOAD), b""),
            EMPTY_PAYLOAD_SHA256
        );
        assert_eq!(payload_hash(None, body), body_hash);
        assert_eq!(payload_hash(Some(UNSIGNED_PAYLOAD), body), UNSIGNED_PAYLOAD);
        // A claimed digest is never taken on trust.
        assert_eq!(payload_hash(Some(EMPTY_PAYLOAD_SHA256), body), body_hash);
        assert_eq!(payload_hash(Some("unsigned-payload"), body), body_hash);

        let headers = [
            ("Host", "example.com"),
            ("X-Sdk-Content-Sha256", "UNSIGNED-PAYLOAD"),
            ("x-sdk-content-sha256", "UNSIGNED-PAYLOAD"),
        ];
        assert_eq!(
            canonical_request(&request(&headers, body), &["host"]),
            Err(SignError::DuplicateHeader(CONTENT_SHA256_HEADER.to_owned()))
        );
    }
}
