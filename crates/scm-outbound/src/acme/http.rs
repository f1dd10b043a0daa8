//! instant-acme's [`HttpClient`] over our reqwest, so that ACME uses the same TLS stack as every
//! other connection (rustls on aws-lc-rs, the machine's roots plus the issuer's
//! `trust_roots_file`), and a record of what each call saw (status, `Retry-After`) that
//! instant-acme's errors do not carry.

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};

/// The largest answer read from a CA: directories, orders and certificate chains are a few KB.
const MAX_BODY: usize = 1024 * 1024;

/// The `User-Agent` of ACME requests (RFC 8555 §6.1 asks clients to send one).
const USER_AGENT: &str = concat!("OpenSCM/", env!("CARGO_PKG_VERSION"), " (instant-acme)");

/// The HTTP client of one ACME issuer.
#[derive(Debug)]
pub(crate) struct Transport {
    client: reqwest::Client,
}

impl Transport {
    /// A client trusting the machine's roots plus `roots`, each request bounded by `timeout`.
    pub(crate) fn new(roots: Vec<reqwest::Certificate>, timeout: Duration) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            // The directory URL is the operator's; a proxy from the environment would reach
            // the CA on our behalf, past what the operator wrote.
            .no_proxy()
            // ACME servers answer where they are asked; a redirect of a signed POST is not
            // followed (the signature names the URL).
            .redirect(reqwest::redirect::Policy::none())
            .retry(reqwest::retry::never())
            .http1_only()
            .tls_certs_merge(roots)
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| format!("the HTTPS client could not be set up: {}", root_cause(&e)))?;
        Ok(Self { client })
    }

    /// Sends `req`, reading the whole body (up to [`MAX_BODY`]).
    pub(crate) async fn send(
        &self,
        req: http::Request<Bytes>,
    ) -> Result<(http::response::Parts, Bytes), TransportError> {
        let (mut parts, body) = req.into_parts();
        // Ours (which names instant-acme too) rather than the library's own.
        parts.headers.remove(http::header::USER_AGENT);
        let url = parts.uri.to_string();
        let host = parts.uri.host().unwrap_or_default().to_owned();
        let mut builder = self
            .client
            .request(parts.method, url.as_str())
            .headers(parts.headers);
        if !body.is_empty() {
            builder = builder.body(body);
        }
        let mut response = builder
            .send()
            .await
            .map_err(|e| TransportError::from_reqwest(&e, &host))?;
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        let mut body = BytesMut::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| TransportError::from_reqwest(&e, &host))?
        {
            if body.len().saturating_add(chunk.len()) > MAX_BODY {
                return Err(TransportError {
                    kind: TransportKind::Protocol,
                    message: format!("{host} answered with more than {MAX_BODY} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        let mut parts = http::Response::new(()).into_parts().0;
        parts.status = status;
        parts.headers = headers;
        Ok((parts, body.freeze()))
    }
}

/// What kind of failure a request met before it had an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransportKind {
    /// Timed out, refused, unreachable, broken off: the CA is (for now) out of reach.
    Unreachable,
    /// The CA's certificate is not trusted (or TLS failed on our side): the trust settings
    /// are wrong, or someone is in the way.
    Tls,
    /// The URL cannot be requested.
    BadUrl,
    /// The answer is not HTTP we can read, or too large.
    Protocol,
}

/// A request that got no answer; boxed into instant-acme's `Error::Other` and recognised on the
/// way out. The message names the host, never a request body.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub(crate) struct TransportError {
    pub(crate) kind: TransportKind,
    pub(crate) message: String,
}

impl TransportError {
    fn from_reqwest(err: &reqwest::Error, host: &str) -> Self {
        let cause = root_cause(err);
        let (kind, what) = if let Some(tls) = find_rustls(err) {
            return Self {
                kind: TransportKind::Tls,
                message: format!("TLS with {host} failed: {tls}"),
            };
        } else if err.is_timeout() {
            (TransportKind::Unreachable, "timed out")
        } else if err.is_connect() {
            (TransportKind::Unreachable, "could not connect")
        } else if err.is_builder() {
            (TransportKind::BadUrl, "cannot be requested")
        } else if find::<io::Error>(err).is_some() {
            (TransportKind::Unreachable, "connection broke off")
        } else {
            (TransportKind::Protocol, "unreadable HTTP")
        };
        Self {
            kind,
            message: format!("{host}: {what}: {cause}"),
        }
    }
}

/// One request of a call and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Exchange {
    /// The URL requested.
    pub(crate) url: String,
    /// The answer's status; `None` when there was no answer.
    pub(crate) status: Option<u16>,
    /// The answer's `Retry-After`, from now.
    pub(crate) retry_after: Option<Duration>,
    /// The answer's `Location`: what a POST made (an order's URL, for newOrder).
    pub(crate) location: Option<String>,
}

/// What the requests of one call saw, in order.
pub(crate) type Trace = Arc<Mutex<Vec<Exchange>>>;

/// The [`HttpClient`] handed to instant-acme for one call: the issuer's [`Transport`], and the
/// call's own [`Trace`] (instant-acme's errors keep the problem document but drop the status and
/// the headers).
pub(crate) struct Bridge {
    transport: Arc<Transport>,
    trace: Trace,
}

impl Bridge {
    pub(crate) fn new(transport: Arc<Transport>) -> (Self, Trace) {
        let trace = Trace::default();
        (
            Self {
                transport,
                trace: Arc::clone(&trace),
            },
            trace,
        )
    }
}

impl HttpClient for Bridge {
    fn request(
        &self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let transport = Arc::clone(&self.transport);
        let trace = Arc::clone(&self.trace);
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            // The wrapper's error type is Infallible: collecting it cannot fail.
            let body = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(never) => match never {},
            };
            let url = parts.uri.to_string();
            let result = transport.send(http::Request::from_parts(parts, body)).await;
            let exchange = Exchange {
                url,
                status: result.as_ref().ok().map(|(p, _)| p.status.as_u16()),
                retry_after: result
                    .as_ref()
                    .ok()
                    .and_then(|(p, _)| retry_after(&p.headers)),
                location: result
                    .as_ref()
                    .ok()
                    .and_then(|(p, _)| p.headers.get(http::header::LOCATION))
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            };
            if let Ok(mut seen) = trace.lock() {
                seen.push(exchange);
            }
            let (parts, body) = result.map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            Ok(BytesResponse {
                parts,
                body: Box::new(body),
            })
        })
    }
}

/// `Retry-After` as a delay from now: seconds, or an HTTP date (RFC 9110 §10.2.3).
pub(crate) fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = u64::from_str(value) {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The first error of type `T` in the source chain of `err`.
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

/// A rustls error in the chain: hyper-rustls wraps it in an `io::Error`, whose `source()`
/// skips the wrapped error itself, so each `io::Error`'s payload is looked at too.
fn find_rustls<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        if let Some(found) = e
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
            .and_then(|inner| find_rustls(inner))
        {
            return Some(found);
        }
        next = e.source();
    }
    None
}

/// The innermost error's text ("Connection refused (os error 111)"), not reqwest's wrappers.
fn root_cause(err: &(dyn StdError + 'static)) -> String {
    let mut last = err;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let mut h = http::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(http::header::RETRY_AFTER, "120".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(120)));
        let later = SystemTime::now() + Duration::from_secs(3600);
        h.insert(
            http::header::RETRY_AFTER,
            httpdate::fmt_http_date(later).parse().unwrap(),
        );
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(3590) && d <= Duration::from_secs(3600),
            "{d:?}"
        );
        h.insert(
            http::header::RETRY_AFTER,
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(http::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
