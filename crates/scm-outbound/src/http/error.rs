//! The one error type of outbound HTTP, with a kind a job runner can act on.

use std::error::Error as StdError;
use std::fmt;
use std::io;

use super::policy::EgressPolicy;
use super::resolve::HostRefused;

/// What went wrong, coarsely: enough to decide whether trying again later can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboundErrorKind {
    /// The egress policy refused the destination (an IP literal, or every address of the name).
    /// Permanent until the operator changes the policy or the user changes the URL.
    Refused,
    /// The URL does not parse, has no host, or is not `http`/`https`. Permanent.
    InvalidUrl,
    /// The request itself is malformed (a header name or value HTTP cannot carry, a body that
    /// does not serialise). Permanent.
    InvalidRequest,
    /// The connect or the total request timeout ran out. Transient.
    Timeout,
    /// No connection could be made (DNS failure, refused, unreachable, TLS handshake failure), or
    /// the connection broke before the response was complete. Transient.
    Connect,
    /// The response body is larger than [`EgressPolicy::max_response_bytes`]. Permanent: the
    /// same request will most likely get the same answer.
    TooLarge,
    /// The peer's HTTP could not be understood, or a redirect could not be followed. Permanent.
    Protocol,
    /// The client could not be set up (for example the platform's TLS roots are unusable).
    /// Permanent.
    Other,
}

impl OutboundErrorKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Refused => "refused",
            Self::InvalidUrl => "invalid URL",
            Self::InvalidRequest => "invalid request",
            Self::Timeout => "timeout",
            Self::Connect => "connection failed",
            Self::TooLarge => "response too large",
            Self::Protocol => "protocol error",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for OutboundErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An outbound request that did not produce a response.
///
/// The message is written to be shown to the operator or to the user who configured the URL: it
/// names the host but never the URL's path or query (webhook URLs often carry a secret there),
/// never header values, never a response body, and never the addresses a name resolved to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct OutboundError {
    kind: OutboundErrorKind,
    host: Option<String>,
    message: String,
}

impl OutboundError {
    /// The kind of failure.
    pub fn kind(&self) -> OutboundErrorKind {
        self.kind
    }

    /// The host the request was for, when the URL got far enough to have one.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// Whether the same request may succeed later: timeouts and connection failures are
    /// transient; refusals, bad URLs and requests, oversized responses and protocol errors are
    /// not, and retrying them only repeats the failure.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            OutboundErrorKind::Timeout | OutboundErrorKind::Connect
        )
    }

    pub(crate) fn new(
        kind: OutboundErrorKind,
        host: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            host: host.map(str::to_owned),
            message: message.into(),
        }
    }

    /// Translates a reqwest error for a request to `host`.
    pub(crate) fn from_reqwest(err: reqwest::Error, host: &str, policy: &EgressPolicy) -> Self {
        // The URL (with its path and query) stays out of everything below.
        let err = err.without_url();
        if let Some(refused) = find::<HostRefused>(&err) {
            return Self::new(OutboundErrorKind::Refused, Some(host), refused.to_string());
        }
        if err.is_timeout() {
            return Self::new(
                OutboundErrorKind::Timeout,
                Some(host),
                format!(
                    "request to {host} timed out (connect timeout {} s, request timeout {} s)",
                    policy.connect_timeout_seconds, policy.request_timeout_seconds
                ),
            );
        }
        let cause = root_cause(&err);
        if err.is_connect() {
            let what = if err.is_dns() {
                "could not resolve"
            } else {
                "could not connect to"
            };
            return Self::new(
                OutboundErrorKind::Connect,
                Some(host),
                format!("{what} {host}: {cause}"),
            );
        }
        if err.is_builder() {
            return Self::new(
                OutboundErrorKind::InvalidRequest,
                Some(host),
                format!("request to {host} could not be built: {cause}"),
            );
        }
        if err.is_redirect() {
            return Self::new(
                OutboundErrorKind::Protocol,
                Some(host),
                format!("redirect from {host} could not be followed: {cause}"),
            );
        }
        if broke_off(&err) {
            return Self::new(
                OutboundErrorKind::Connect,
                Some(host),
                format!("connection to {host} broke off: {cause}"),
            );
        }
        Self::new(
            OutboundErrorKind::Protocol,
            Some(host),
            format!("HTTP exchange with {host} failed: {cause}"),
        )
    }
}

/// The first error of type `T` in the source chain of `err` (including `err`).
fn find<'a, T: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

/// The innermost error's text: the specific one ("Connection refused (os error 111)") rather
/// than reqwest's generic wrappers ("error sending request").
fn root_cause(err: &(dyn StdError + 'static)) -> String {
    let mut last = err;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

/// Whether the exchange failed because the connection itself failed (reset, closed early), as
/// opposed to the peer sending something that is not HTTP.
fn broke_off(err: &(dyn StdError + 'static)) -> bool {
    if find::<io::Error>(err).is_some() {
        return true;
    }
    // hyper reports a connection closed before the response was complete as its own error,
    // without an io::Error underneath.
    find::<hyper::Error>(err)
        .is_some_and(|e| e.is_incomplete_message() || e.is_closed() || e.is_canceled())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_kinds() {
        use OutboundErrorKind::*;
        for (kind, transient) in [
            (Refused, false),
            (InvalidUrl, false),
            (InvalidRequest, false),
            (Timeout, true),
            (Connect, true),
            (TooLarge, false),
            (Protocol, false),
            (Other, false),
        ] {
            let err = OutboundError::new(kind, Some("h.example"), "x");
            assert_eq!(err.is_transient(), transient, "{kind}");
            assert_eq!(err.kind(), kind);
            assert_eq!(err.host(), Some("h.example"));
        }
    }
}
