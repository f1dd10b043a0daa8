//! The one error type of the client.

use std::error::Error as StdError;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered non-2xx with the API's error body `{"error_code", "error_msg"}`.
    #[error("HTTP {status} {code}: {message}{}", request_id_note(.request_id.as_deref()))]
    Api {
        /// HTTP status.
        status: u16,
        /// `error_code`, e.g. `SCM.0020`.
        code: String,
        /// `error_msg`.
        message: String,
        /// `X-Request-Id` of the answer.
        request_id: Option<String>,
    },
    /// The server answered non-2xx without an error body the client understands.
    #[error("HTTP {status} without an error body: {}{}", excerpt(.body), request_id_note(.request_id.as_deref()))]
    Status {
        /// HTTP status.
        status: u16,
        /// The body, decoded as UTF-8 (lossily).
        body: String,
        /// `X-Request-Id` of the answer.
        request_id: Option<String>,
    },
    /// A 2xx answer whose body is not the expected JSON.
    #[error("cannot decode the HTTP {status} answer: {source}{}", request_id_note(.request_id.as_deref()))]
    Decode {
        /// HTTP status.
        status: u16,
        /// What serde said.
        #[source]
        source: serde_json::Error,
        /// `X-Request-Id` of the answer.
        request_id: Option<String>,
    },
    /// A 2xx answer lacks a header the operation promises (`X-Subject-Token`).
    #[error("the HTTP {status} answer has no {name} header{}", request_id_note(.request_id.as_deref()))]
    MissingHeader {
        /// HTTP status.
        status: u16,
        /// The header's name.
        name: &'static str,
        /// `X-Request-Id` of the answer.
        request_id: Option<String>,
    },
    /// The request could not be sent or its answer not read (connection, TLS, timeout).
    #[error("transport: {}", chain(.0))]
    Transport(#[from] reqwest::Error),
    /// A request body could not be serialised.
    #[error("cannot encode the request body: {0}")]
    Encode(#[source] serde_json::Error),
    /// The request cannot be built: bad endpoint, method, header name or value.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The client cannot be configured (bad CA certificate, TLS set-up).
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// A credentials file cannot be read or parsed.
    #[error("credentials: {0}")]
    Credentials(String),
}

impl ClientError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. }
            | Self::Status { status, .. }
            | Self::Decode { status, .. }
            | Self::MissingHeader { status, .. } => Some(*status),
            Self::Transport(e) => e.status().map(|s| s.as_u16()),
            _ => None,
        }
    }

    /// The API error code (`SCM.0020`, `APIGW.0301`, …) of an [`ClientError::Api`] error.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The `X-Request-Id` of the answer, when the server answered.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Api { request_id, .. }
            | Self::Status { request_id, .. }
            | Self::Decode { request_id, .. }
            | Self::MissingHeader { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }
}

fn request_id_note(id: Option<&str>) -> String {
    id.map(|id| format!(" (request id {id})"))
        .unwrap_or_default()
}

/// At most 200 characters of a body, for a one-line message.
fn excerpt(body: &str) -> String {
    let mut out: String = body.chars().take(200).collect();
    if out.len() < body.len() {
        out.push('…');
    }
    out
}

/// An error and its sources, `: `-separated (reqwest's own message names none of the causes).
fn chain(e: &dyn StdError) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
