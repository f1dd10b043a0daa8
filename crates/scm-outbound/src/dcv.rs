//! The file fetch of domain control validation (method FILE): [`ValidationFileFetcher`], the
//! domain's [`FileFetch`], sending through [`OutboundHttp`] so that the operator's egress policy
//! holds for every request, redirects included.
//!
//! What the CA/Browser Forum Baseline Requirements allow (3.2.2.4.18 and .19), and so what is
//! followed: `GET http://<name>/.well-known/pki-validation/<file>` on port 80; redirects with
//! status 301, 302, 307 or 308 only, each to `http` on port 80 or `https` on port 443; the final
//! answer must be 200. OpenSCM adds: at most [`MAX_REDIRECTS`] redirects, at most
//! [`MAX_BODY_BYTES`] of body, and one deadline (the egress policy's request timeout) for the
//! whole chain.
//!
//! **The port.** 80 is what the Baseline Requirements name, and the default. An operator (or a
//! test) whose web servers answer validation on another port sets [`FileFetchConfig::http_port`];
//! every `http` URL without an explicit port, the first and any redirect target, is then fetched
//! on that port, and an explicit port must be that one. A publicly trusted CA must keep 80.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Url;
use reqwest::header::LOCATION;
use scm_core::lifecycle::probes::{FetchedFile, FileFetch, ProbeError};
use scm_core::resolve::DnsResolver;

use crate::http::{
    EgressPolicy, Method, OutboundError, OutboundErrorKind, OutboundHttp, OutboundRequest,
};

/// The port of `http` validation URLs unless configured otherwise (BR 3.2.2.4.18).
pub const DEFAULT_HTTP_PORT: u16 = 80;
/// The most redirects one fetch follows; one more is a failure.
pub const MAX_REDIRECTS: usize = 10;
/// The largest body read (of the file, or of a redirect's answer); a longer one is a failure.
/// A validation file holds one token.
pub const MAX_BODY_BYTES: u64 = 16 * 1024;
/// Where validation files live (BR 3.2.2.4.18).
pub const VALIDATION_PATH: &str = "/.well-known/pki-validation/";

/// How a [`ValidationFileFetcher`] fetches. The binary builds it from the `[validation]` section
/// of its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFetchConfig {
    /// The port `http` URLs are fetched on (see the module documentation). Default 80.
    pub http_port: u16,
}

impl Default for FileFetchConfig {
    fn default() -> Self {
        Self {
            http_port: DEFAULT_HTTP_PORT,
        }
    }
}

/// Fetches validation files ([`FileFetch`]) under the rules of this module, through an
/// [`OutboundHttp`] of the operator's egress policy that follows no redirect itself (each hop is
/// checked here, then sent, and so checked by the policy too).
#[derive(Debug, Clone)]
pub struct ValidationFileFetcher {
    http: OutboundHttp,
    http_port: u16,
    deadline: Duration,
}

impl ValidationFileFetcher {
    /// A fetcher bound by `egress` (which addresses it may reach, its timeouts; its body cap is
    /// lowered to [`MAX_BODY_BYTES`], and redirects are followed here instead), resolving names
    /// with `resolver`: give it the validation's own resolver
    /// ([`crate::dns::TxtResolver`]), so that the file is fetched from where the DNS the TXT
    /// checks see points, or [`crate::http::SystemResolver`].
    ///
    /// # Errors
    ///
    /// A zero `http_port`, or an egress policy [`OutboundHttp`] refuses (zero timeouts).
    pub fn new(
        egress: &EgressPolicy,
        config: &FileFetchConfig,
        resolver: Arc<dyn DnsResolver>,
    ) -> Result<Self, OutboundError> {
        if config.http_port == 0 {
            return Err(OutboundError::new(
                OutboundErrorKind::Other,
                None,
                "the validation http_port must not be 0",
            ));
        }
        let policy = EgressPolicy {
            max_redirects: 0,
            max_response_bytes: egress.max_response_bytes.min(MAX_BODY_BYTES),
            ..egress.clone()
        };
        let deadline = policy.request_timeout();
        Ok(Self {
            http: OutboundHttp::with_resolver(policy, resolver)?,
            http_port: config.http_port,
            deadline,
        })
    }

    /// Follows the chain from `start` (already checked) to its final answer.
    async fn follow(&self, start: Url) -> Result<FetchedFile, ProbeError> {
        let mut current = start;
        let mut redirects = 0;
        loop {
            let response = self
                .http
                .send(OutboundRequest::new(Method::GET, current.as_str()))
                .await
                .map_err(|e| ProbeError {
                    reason: format!("GET {current}: {e}"),
                    transient: e.is_transient(),
                })?;
            let status = response.status;
            match status {
                200 => {
                    return Ok(FetchedFile {
                        url: current.to_string(),
                        body: String::from_utf8_lossy(&response.body).into_owned(),
                    });
                }
                301 | 302 | 307 | 308 => {
                    let refused = |why: String| ProbeError {
                        reason: format!("GET {current}: redirect ({status}) not followed: {why}"),
                        transient: false,
                    };
                    if redirects == MAX_REDIRECTS {
                        return Err(refused(format!("more than {MAX_REDIRECTS} redirects")));
                    }
                    let location = response
                        .header(LOCATION.as_str())
                        .ok_or_else(|| refused("no usable Location header".into()))?;
                    let next = current
                        .join(location)
                        .map_err(|e| refused(format!("Location {location:?}: {e}")))?;
                    current = self
                        .redirect_target(next)
                        .map_err(|(url, why)| refused(format!("to {url}: {why}")))?;
                    redirects += 1;
                }
                _ => {
                    return Err(ProbeError {
                        reason: format!("GET {current}: status {status}, not 200"),
                        // A server error may pass; a missing file or a refusal will not by
                        // itself.
                        transient: status >= 500,
                    });
                }
            }
        }
    }

    /// The first URL: `http`, a domain name, [`VALIDATION_PATH`] and a file name, nothing else;
    /// on [`FileFetchConfig::http_port`].
    fn first_url(&self, url: &str) -> Result<Url, String> {
        let parsed = Url::parse(url).map_err(|e| e.to_string())?;
        if parsed.scheme() != "http" {
            return Err(format!("the scheme must be http, not {}", parsed.scheme()));
        }
        if parsed.domain().is_none() {
            return Err("the host must be a domain name".into());
        }
        let file = parsed.path().strip_prefix(VALIDATION_PATH).unwrap_or("");
        if file.is_empty() || file.contains('/') {
            return Err(format!("the path must be {VALIDATION_PATH}<file>"));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err("the URL must have no query or fragment".into());
        }
        self.redirect_target(parsed).map_err(|(_, why)| why)
    }

    /// `url` as it is fetched, if a validation may go there: `http` on the http port (an
    /// implicit port becomes it), or `https` on 443; no user name or password.
    fn redirect_target(&self, mut url: Url) -> Result<Url, (Url, String)> {
        if !url.username().is_empty() || url.password().is_some() {
            // Not repeated in the message: the password may be real.
            let _ = url.set_username("");
            let _ = url.set_password(None);
            return Err((url, "a URL with a user name or password".into()));
        }
        match url.scheme() {
            "http" => match url.port() {
                None if self.http_port != DEFAULT_HTTP_PORT => {
                    // An http URL has a host, so it takes a port.
                    if url.set_port(Some(self.http_port)).is_err() {
                        return Err((url, "the URL takes no port".into()));
                    }
                    Ok(url)
                }
                None => Ok(url),
                Some(port) if port == self.http_port => Ok(url),
                Some(port) => {
                    let why = format!("http must be on port {}, not {port}", self.http_port);
                    Err((url, why))
                }
            },
            // The url crate drops an explicit :443 from https URLs, so no port is 443.
            "https" => match url.port() {
                None => Ok(url),
                Some(port) => Err((url, format!("https must be on port 443, not {port}"))),
            },
            other => {
                let why = format!("only http and https may be followed, not {other}");
                Err((url, why))
            }
        }
    }
}

#[async_trait]
impl FileFetch for ValidationFileFetcher {
    /// Fetches `url` (see the module documentation). The body is returned as sent (lossily
    /// decoded as UTF-8); compare it trimmed.
    async fn fetch(&self, url: &str) -> Result<FetchedFile, ProbeError> {
        let start = self.first_url(url).map_err(|why| ProbeError {
            reason: format!("{url} is not a validation file URL: {why}"),
            transient: false,
        })?;
        match tokio::time::timeout(self.deadline, self.follow(start)).await {
            Ok(result) => result,
            Err(_) => Err(ProbeError {
                reason: format!(
                    "GET {url}: no final answer within {} s, redirects included",
                    self.deadline.as_secs()
                ),
                transient: true,
            }),
        }
    }
}
