//! Low-level requests and answers: what a refusal test needs to send a request the typed calls
//! never would (unsigned, stale, tampered with, malformed) and to look at the whole answer.

use std::borrow::Cow;

use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use reqwest::header::HeaderMap;
use scm_proto::ErrorBody;
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::ClientError;

/// How a [`RawRequest`] is authenticated.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum RequestAuth {
    /// As the client is configured (see [`crate::Auth`]): its AK/SK signature or its token.
    #[default]
    AsClient,
    /// Signed with the client's AK/SK, whatever the client's mode.
    Signature,
    /// `X-Auth-Token` with this token, whatever the client's mode.
    Token(String),
    /// Nothing added: the request goes out with exactly the headers given.
    None,
}

impl std::fmt::Debug for RequestAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AsClient => f.write_str("AsClient"),
            Self::Signature => f.write_str("Signature"),
            Self::Token(_) => f.write_str("Token(<redacted>)"),
            Self::None => f.write_str("None"),
        }
    }
}

/// A change made to a request after it was signed (or, unsigned, after its headers were set):
/// the signature then no longer matches what is sent, unless the change is outside what it
/// covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tamper {
    /// Replaces the value of every header called `name` (in any case), or adds the header.
    SetHeader(String, String),
    /// Adds a header, even beside one of the same name (a duplicate).
    AddHeader(String, String),
    /// Removes every header called `name` (in any case).
    RemoveHeader(String),
    /// Replaces the body.
    Body(Vec<u8>),
    /// Replaces the request target (path and query, already encoded).
    Target(String),
    /// Replaces the method.
    Method(String),
}

/// A request exactly as a test wants it sent.
///
/// `target` is the path and query as they go on the wire, percent-encoded (`/v3/scm/certificates?limit=1`);
/// it is sent as given, and when the request is signed the signature is computed over it the way
/// the server canonicalises what it receives (decoded, re-encoded, query sorted). `headers` are
/// sent in order, duplicates included. Nothing is added but what [`RawRequest::auth`] asks for
/// (signing adds `X-Sdk-Date`, `Host` and `Authorization`; a token adds `X-Auth-Token`) and what
/// the HTTP library adds unsigned (`Content-Length`, `Accept`, `User-Agent`, and `Host` when
/// absent). Then [`RawRequest::tamper`] is applied, in order.
///
/// The HTTP library parses the target as a URL: dot segments (`/a/../b`) are resolved and
/// characters not allowed in a URL are percent-encoded before it goes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRequest {
    /// Method, sent as given (a custom one is allowed).
    pub method: String,
    /// Path and query, encoded, as sent.
    pub target: String,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// Body bytes (empty: no body).
    pub body: Vec<u8>,
    /// How the request is authenticated.
    pub auth: RequestAuth,
    /// Signing time; `None` takes the client's clock.
    pub date: Option<OffsetDateTime>,
    /// Changes applied after signing, in order.
    pub tamper: Vec<Tamper>,
}

impl RawRequest {
    /// A request without headers or body, authenticated as the client is.
    pub fn new(method: impl Into<String>, target: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            target: target.into(),
            headers: Vec::new(),
            body: Vec::new(),
            auth: RequestAuth::AsClient,
            date: None,
            tamper: Vec::new(),
        }
    }

    /// Adds a header (before signing).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Removes every header called `name`, in any case (before signing).
    pub fn without_header(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets the body to `value` as JSON (the `Content-Type` header is left as it is).
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Result<Self, ClientError> {
        self.body = serde_json::to_vec(value).map_err(ClientError::Encode)?;
        Ok(self)
    }

    /// Sets how the request is authenticated.
    pub fn auth(mut self, auth: RequestAuth) -> Self {
        self.auth = auth;
        self
    }

    /// Sends the request without signature or token.
    pub fn unauthenticated(self) -> Self {
        self.auth(RequestAuth::None)
    }

    /// Signs with this date instead of the client's clock (a stale or future `X-Sdk-Date`).
    pub fn signed_at(mut self, date: OffsetDateTime) -> Self {
        self.date = Some(date);
        self
    }

    /// Adds a change made after signing.
    pub fn tamper(mut self, tamper: Tamper) -> Self {
        self.tamper.push(tamper);
        self
    }
}

/// A request ready to go: signed (or not) and tampered with. What [`crate::Client::prepare`]
/// returns and [`crate::Client::send_prepared`] sends, so that a test can look at (or change)
/// exactly what goes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedRequest {
    /// Method.
    pub method: String,
    /// Path and query, encoded.
    pub target: String,
    /// Every header, in order.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl PreparedRequest {
    /// The value of the last header called `name`, in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        last_header(&self.headers, name)
    }

    /// Applies one change.
    pub fn apply(&mut self, tamper: &Tamper) {
        match tamper {
            Tamper::SetHeader(name, value) => set_header(&mut self.headers, name, value),
            Tamper::AddHeader(name, value) => self.headers.push((name.clone(), value.clone())),
            Tamper::RemoveHeader(name) => {
                self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            }
            Tamper::Body(body) => body.clone_into(&mut self.body),
            Tamper::Target(target) => target.clone_into(&mut self.target),
            Tamper::Method(method) => method.clone_into(&mut self.method),
        }
    }
}

/// An answer, whatever its status.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// HTTP status.
    pub status: u16,
    /// Every header.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
    /// `X-Request-Id`, which the server sets on every answer.
    pub request_id: Option<String>,
}

impl RawResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The value of a header, if it is present once or more and is visible ASCII (the first one).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as UTF-8, lossily.
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The body decoded as JSON, whatever the status.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        serde_json::from_slice(&self.body).map_err(|source| ClientError::Decode {
            status: self.status,
            source,
            request_id: self.request_id.clone(),
        })
    }

    /// The API error body, if the body is one (`{"error_code", "error_msg"}`).
    pub fn error(&self) -> Option<ErrorBody> {
        serde_json::from_slice(&self.body).ok()
    }

    /// `Ok(self)` for a 2xx answer, else the error it carries ([`ClientError::Api`], or
    /// [`ClientError::Status`] without an error body).
    pub fn check(self) -> Result<Self, ClientError> {
        if self.is_success() {
            return Ok(self);
        }
        Err(match self.error() {
            Some(e) => ClientError::Api {
                status: self.status,
                code: e.error_code,
                message: e.error_msg,
                request_id: self.request_id,
            },
            None => ClientError::Status {
                status: self.status,
                body: self.text().into_owned(),
                request_id: self.request_id,
            },
        })
    }

    /// [`RawResponse::check`], then the body decoded as JSON.
    pub fn into_json<T: DeserializeOwned>(self) -> Result<T, ClientError> {
        self.check()?.json()
    }
}

/// Everything but the RFC 3986 unreserved characters is escaped, as the SDK's signer does.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// The encoded target of an unencoded path (each `/`-separated segment encoded) and query
/// (pairs in the order given), as the SDK sends them.
pub(crate) fn encode_target(path: &str, query: &[(&str, &str)]) -> String {
    let mut target = path.split('/').map(encode).collect::<Vec<_>>().join("/");
    for (i, (key, value)) in query.iter().enumerate() {
        target.push(if i == 0 { '?' } else { '&' });
        target.push_str(&encode(key));
        target.push('=');
        target.push_str(&encode(value));
    }
    target
}

/// The decoded path and query pairs of an encoded target: what the signer takes, so that the
/// signature matches what the server canonicalises from the target as received.
pub(crate) fn decode_target(target: &str) -> (String, Vec<(String, String)>) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect();
    (decode(path), query)
}

/// The value of the last header called `name`, in any case.
pub(crate) fn last_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .rev()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Replaces the value of every header called `name`, or appends one.
pub(crate) fn set_header(headers: &mut Vec<(String, String)>, name: &str, value: &str) {
    let mut found = false;
    for (n, v) in headers.iter_mut() {
        if n.eq_ignore_ascii_case(name) {
            value.clone_into(v);
            found = true;
        }
    }
    if !found {
        headers.push((name.to_owned(), value.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> RawResponse {
        RawResponse {
            status,
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_owned()),
            request_id: Some("0123456789abcdef0123456789abcdef".into()),
        }
    }

    #[test]
    fn targets_are_encoded_like_the_sdk_and_decode_back() {
        let target = encode_target(
            "/v3/scm/certificates/scs 1+ü",
            &[("content", "a b+c"), ("limit", "10")],
        );
        assert_eq!(
            target,
            "/v3/scm/certificates/scs%201%2B%C3%BC?content=a%20b%2Bc&limit=10"
        );
        assert_eq!(
            decode_target(&target),
            (
                "/v3/scm/certificates/scs 1+ü".to_owned(),
                vec![
                    ("content".to_owned(), "a b+c".to_owned()),
                    ("limit".to_owned(), "10".to_owned())
                ]
            )
        );
        // A bare key, an empty piece and a literal `+` (not a space, as the server reads it).
        assert_eq!(
            decode_target("/x?b&&a=1+2"),
            (
                "/x".to_owned(),
                vec![
                    ("b".to_owned(), String::new()),
                    ("a".to_owned(), "1+2".to_owned())
                ]
            )
        );
        assert_eq!(encode_target("/health", &[]), "/health");
    }

    #[test]
    fn error_bodies_decode_to_api_errors() {
        let r = response(
            404,
            r#"{"error_code": "SCM.0020", "error_msg": "certificate not found"}"#,
        );
        assert_eq!(r.error().unwrap().error_code, "SCM.0020");
        let err = r.check().unwrap_err();
        assert!(matches!(
            &err,
            ClientError::Api { status: 404, code, message, request_id: Some(_) }
                if code == "SCM.0020" && message == "certificate not found"
        ));
        assert_eq!(err.code(), Some("SCM.0020"));
        assert_eq!(err.status(), Some(404));
        assert_eq!(err.request_id(), Some("0123456789abcdef0123456789abcdef"));
        assert_eq!(
            err.to_string(),
            "HTTP 404 SCM.0020: certificate not found (request id 0123456789abcdef0123456789abcdef)"
        );
    }

    #[test]
    fn other_answers_decode_to_status_or_decode_errors() {
        let err = response(502, "<html>bad gateway</html>")
            .check()
            .unwrap_err();
        assert!(
            matches!(&err, ClientError::Status { status: 502, body, .. } if body == "<html>bad gateway</html>")
        );
        assert_eq!(err.code(), None);
        assert_eq!(err.status(), Some(502));

        // A 2xx answer is not an error, even with an error-shaped body.
        let ok = response(200, r#"{"error_code": "X", "error_msg": "y"}"#);
        assert!(ok.clone().check().is_ok());

        let err = response(200, "{").into_json::<ErrorBody>().unwrap_err();
        assert!(matches!(err, ClientError::Decode { status: 200, .. }));
        let err = response(201, r#"{"error_code": 1}"#)
            .into_json::<ErrorBody>()
            .unwrap_err();
        assert!(matches!(err, ClientError::Decode { status: 201, .. }));
    }

    #[test]
    fn tampering_edits_the_prepared_request() {
        let mut p = PreparedRequest {
            method: "POST".into(),
            target: "/a".into(),
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("X-Sdk-Date".into(), "20240102T030405Z".into()),
            ],
            body: b"{}".to_vec(),
        };
        for t in [
            Tamper::SetHeader("x-sdk-date".into(), "20240102T030406Z".into()),
            Tamper::AddHeader("X-Domain-Id".into(), "a".into()),
            Tamper::AddHeader("X-Domain-Id".into(), "b".into()),
            Tamper::RemoveHeader("CONTENT-TYPE".into()),
            Tamper::Body(b"{\"x\":1}".to_vec()),
            Tamper::Target("/b?c=d".into()),
            Tamper::Method("PUT".into()),
        ] {
            p.apply(&t);
        }
        assert_eq!(
            p,
            PreparedRequest {
                method: "PUT".into(),
                target: "/b?c=d".into(),
                headers: vec![
                    ("X-Sdk-Date".into(), "20240102T030406Z".into()),
                    ("X-Domain-Id".into(), "a".into()),
                    ("X-Domain-Id".into(), "b".into()),
                ],
                body: b"{\"x\":1}".to_vec(),
            }
        );
        assert_eq!(p.header("x-domain-id"), Some("b"));
    }
}
