//! [`OutboundHttp`]: the client every adapter sends its HTTP requests through.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url, redirect};
use serde::Serialize;

use super::error::{OutboundError, OutboundErrorKind};
use super::policy::{EgressPolicy, is_allowed};
use scm_core::resolve::DnsResolver;

use super::resolve::{GuardedResolver, SystemResolver};

/// The `User-Agent` of every outbound request, so that the operators of the receiving servers
/// can tell what is calling them.
const USER_AGENT: &str = concat!("OpenSCM/", env!("CARGO_PKG_VERSION"));

/// One outbound HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    /// The HTTP method.
    pub method: Method,
    /// The absolute `http://` or `https://` URL.
    pub url: String,
    /// Header names and values, sent in this order; a name may repeat.
    pub headers: Vec<(String, String)>,
    /// The body, if any. Kept whole so that a 307/308 redirect can send it again.
    pub body: Option<Bytes>,
}

impl OutboundRequest {
    /// A request with no headers and no body.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: None,
        }
    }
}

/// The response to an [`OutboundRequest`], body read in full (within the policy's cap).
///
/// Any status is a response, not an error: a 404 or a 500 from a webhook target, or a redirect
/// this client would not follow, is for the caller to judge.
#[derive(Debug, Clone)]
pub struct OutboundResponse {
    /// The status code.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The response body.
    pub body: Bytes,
}

impl OutboundResponse {
    /// The value of header `name` (case-insensitive), if present and valid text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The outbound HTTP client, guarded by an [`EgressPolicy`].
///
/// Cheap to clone (the connection pool and the policy are shared), so build one at start-up and
/// hand clones to every adapter. What it guarantees:
///
/// - **Only allowed addresses.** Names go through a resolver that drops every address the policy
///   refuses, inside the connector, so the addresses checked are the ones connected to (no DNS
///   rebinding window). IP-literal URLs, which the connector does not resolve, are checked before
///   the request is sent.
/// - **No proxy**, not even from `HTTP_PROXY`/`HTTPS_PROXY`: a proxy would connect on our behalf
///   to wherever it is asked, past the guard.
/// - **Only `http` and `https`.**
/// - **Same-origin redirects only**: at most [`EgressPolicy::max_redirects`], and only to the
///   same scheme, host and port as the original request. Any other redirect is not followed and
///   its 3xx is returned as the response, as is the 3xx that would exceed the limit. A redirect
///   to another origin is where an SSRF usually hides (a harmless public URL that redirects to an
///   internal one), and OpenSCM's peers (push targets, notifiers, ACME servers) have no reason to
///   send us elsewhere; a caller that gets a 3xx can tell the user to fix the URL. Reqwest's own
///   retries are off for the same reason as the redirect limit: whether to repeat a request is the
///   job runner's decision ([`OutboundError::is_transient`]).
/// - **Bounded waits and bodies**: the connect timeout covers DNS, TCP and TLS; the request
///   timeout covers everything up to the last body byte; a body longer than
///   [`EgressPolicy::max_response_bytes`] fails with [`OutboundErrorKind::TooLarge`] without
///   being read further. No compression is negotiated, so the cap is the real size.
#[derive(Clone)]
pub struct OutboundHttp {
    client: reqwest::Client,
    policy: Arc<EgressPolicy>,
}

impl std::fmt::Debug for OutboundHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundHttp")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl OutboundHttp {
    /// A client for `policy`, resolving names with the system resolver.
    pub fn new(policy: EgressPolicy) -> Result<Self, OutboundError> {
        Self::with_resolver(policy, Arc::new(SystemResolver))
    }

    /// A client for `policy` that resolves names with `lookup` (tests use it to make a name
    /// resolve to an address of their choosing). The policy filters what `lookup` returns exactly
    /// as it filters the system resolver's answers.
    pub fn with_resolver(
        policy: EgressPolicy,
        lookup: Arc<dyn DnsResolver>,
    ) -> Result<Self, OutboundError> {
        if policy.connect_timeout_seconds == 0 || policy.request_timeout_seconds == 0 {
            // A zero timeout would make every request fail; better to say so at start-up.
            return Err(OutboundError::new(
                OutboundErrorKind::Other,
                None,
                "connect_timeout_seconds and request_timeout_seconds must be at least 1",
            ));
        }
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver::new(lookup, Arc::clone(&policy))))
            .redirect(same_origin_redirects(policy.max_redirects))
            // The Referer would repeat the previous URL, path and query included, to the server.
            .referer(false)
            .retry(reqwest::retry::never())
            .http1_only()
            .connect_timeout(policy.connect_timeout())
            .timeout(policy.request_timeout())
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| {
                OutboundError::new(
                    OutboundErrorKind::Other,
                    None,
                    format!("the outbound HTTP client could not be set up: {e}"),
                )
            })?;
        Ok(Self { client, policy })
    }

    /// The policy this client enforces.
    pub fn policy(&self) -> &EgressPolicy {
        &self.policy
    }

    /// Sends `req` and reads the whole response body (up to the policy's cap).
    pub async fn send(&self, req: OutboundRequest) -> Result<OutboundResponse, OutboundError> {
        let url = Url::parse(&req.url).map_err(|e| {
            // The URL text itself stays out of the message: it may carry a secret.
            OutboundError::new(
                OutboundErrorKind::InvalidUrl,
                None,
                format!("invalid URL: {e}"),
            )
        })?;
        let host = self.check_destination(&url)?;
        let headers = header_map(&req.headers, &host)?;

        let mut builder = self.client.request(req.method, url).headers(headers);
        if let Some(body) = req.body {
            builder = builder.body(body);
        }
        let mut response = builder
            .send()
            .await
            .map_err(|e| OutboundError::from_reqwest(e, &host, &self.policy))?;

        let status = response.status().as_u16();
        let headers = std::mem::take(response.headers_mut());
        let body = self.read_capped(response, &host).await?;
        Ok(OutboundResponse {
            status,
            headers,
            body,
        })
    }

    /// POSTs `body` as JSON (`Content-Type: application/json`) with the extra `headers`.
    pub async fn post_json<T: Serialize + ?Sized>(
        &self,
        url: &str,
        headers: Vec<(String, String)>,
        body: &T,
    ) -> Result<OutboundResponse, OutboundError> {
        let json = serde_json::to_vec(body).map_err(|e| {
            OutboundError::new(
                OutboundErrorKind::InvalidRequest,
                None,
                format!("the JSON body could not be serialised: {e}"),
            )
        })?;
        let mut all = Vec::with_capacity(headers.len() + 1);
        all.push((
            CONTENT_TYPE.as_str().to_owned(),
            "application/json".to_owned(),
        ));
        all.extend(headers);
        self.send(OutboundRequest {
            method: Method::POST,
            url: url.to_owned(),
            headers: all,
            body: Some(Bytes::from(json)),
        })
        .await
    }

    /// Checks what can be checked before connecting: the scheme, the presence of a host, and an
    /// IP-literal host against the policy (the connector skips the resolver for those, so this is
    /// their only check). Returns the host, for error messages.
    fn check_destination(&self, url: &Url) -> Result<String, OutboundError> {
        let scheme = url.scheme();
        if scheme != "http" && scheme != "https" {
            return Err(OutboundError::new(
                OutboundErrorKind::InvalidUrl,
                url.host_str(),
                format!("only http and https URLs are allowed, not {scheme}"),
            ));
        }
        let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
            return Err(OutboundError::new(
                OutboundErrorKind::InvalidUrl,
                None,
                "the URL has no host",
            ));
        };
        let host = host.to_owned();
        // The same test the connector applies to decide it need not resolve: brackets off, then
        // parse as an address. The url crate has already rewritten the odd IPv4 spellings
        // (`2130706433`, `0x7f.1`, `0177.0.0.1`) as dotted quads, so they are caught here too.
        let literal = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok();
        if let Some(ip) = literal
            && let Err(reason) = is_allowed(ip, &self.policy)
        {
            return Err(OutboundError::new(
                OutboundErrorKind::Refused,
                Some(&host),
                format!("refused by egress policy: {host} is {reason}"),
            ));
        }
        Ok(host)
    }

    /// Reads the body chunk by chunk, failing as soon as it would pass the cap.
    async fn read_capped(
        &self,
        mut response: reqwest::Response,
        host: &str,
    ) -> Result<Bytes, OutboundError> {
        let cap = self.policy.max_response_bytes;
        let too_large = || {
            OutboundError::new(
                OutboundErrorKind::TooLarge,
                Some(host),
                format!("the response from {host} is larger than the {cap}-byte limit"),
            )
        };
        // A declared length over the cap fails before reading anything.
        if response.content_length().is_some_and(|len| len > cap) {
            return Err(too_large());
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| OutboundError::from_reqwest(e, host, &self.policy))?
        {
            let total = (body.len() as u64).saturating_add(chunk.len() as u64);
            if total > cap {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }
}

/// The redirect policy: follow at most `max` redirects, each to the same scheme, host and port
/// as the original request; return any other 3xx to the caller (see [`OutboundHttp`]).
fn same_origin_redirects(max: u32) -> redirect::Policy {
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    redirect::Policy::custom(move |attempt| {
        // `previous` holds every URL requested so far, the original first, so its length is the
        // number of this redirect (1 for the first).
        let previous = attempt.previous();
        if previous.len() > max {
            return attempt.stop();
        }
        match previous.first() {
            Some(original) if same_origin(original, attempt.url()) => attempt.follow(),
            _ => attempt.stop(),
        }
    })
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// The request headers as a [`HeaderMap`]; a bad one is named, its value never shown (it may be
/// a token).
fn header_map(headers: &[(String, String)], host: &str) -> Result<HeaderMap, OutboundError> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let bad = || {
            OutboundError::new(
                OutboundErrorKind::InvalidRequest,
                Some(host),
                format!("header {name:?} is not a valid HTTP header"),
            )
        };
        let name_ok = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
        let value_ok = HeaderValue::from_str(value).map_err(|_| bad())?;
        map.append(name_ok, value_ok);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(same_origin(
            &u("http://a.example/x"),
            &u("http://a.example:80/y?z")
        ));
        assert!(same_origin(
            &u("https://a.example/"),
            &u("https://A.EXAMPLE:443/")
        ));
        assert!(!same_origin(
            &u("http://a.example/"),
            &u("https://a.example/")
        ));
        assert!(!same_origin(
            &u("http://a.example/"),
            &u("http://b.example/")
        ));
        assert!(!same_origin(
            &u("http://a.example/"),
            &u("http://a.example:8080/")
        ));
        assert!(!same_origin(
            &u("http://127.0.0.1/"),
            &u("http://localhost/")
        ));
    }

    #[test]
    fn bad_header_names_the_header_not_the_value() {
        let err = header_map(
            &[("Authorization".into(), "Bearer s3cr3t\n".into())],
            "h.example",
        )
        .unwrap_err();
        assert_eq!(err.kind(), OutboundErrorKind::InvalidRequest);
        assert!(err.to_string().contains("Authorization"), "{err}");
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
    }
}
