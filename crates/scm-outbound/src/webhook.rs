//! What OpenSCM's two webhooks (the `webhook` push target and the `webhook` notifier) share: the
//! signing of the body, the checks of the URL, and what an answer means for the job runner.
//!
//! Signing: `X-OpenSCM-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes under the
//! secret>`; `X-OpenSCM-Event` names the event. Both bodies carry `at_ms` (when it was sent), for
//! a receiver that refuses old, replayed requests.
//!
//! Answers: 2xx is success; 408, 429 and 5xx, timeouts and connection failures are transient
//! (retried); any other answer is permanent; a URL the egress policy refuses, or that is not a
//! valid URL, is misconfigured.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use aws_lc_rs::hmac;
use scm_core::deploy::DeliveryError;

use crate::fsutil;
use crate::http::{EgressPolicy, OutboundError, OutboundResponse, is_allowed};

/// The header naming the event.
pub const EVENT_HEADER: &str = "X-OpenSCM-Event";
/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-OpenSCM-Signature";

/// The HMAC-SHA256 key held in `path` (a file only its owner may read, not empty).
pub fn signing_key(path: &Path) -> Result<hmac::Key, String> {
    let secret = fsutil::read_secret_file(path).map_err(|e| e.to_string())?;
    if secret.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()))
}

/// `sha256=<hex>` of the body under `key`.
pub fn signature(key: &hmac::Key, body: &[u8]) -> String {
    let tag = hmac::sign(key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// The headers of a JSON POST of `event`, signed when a key is given.
pub fn headers(event: &str, key: Option<&hmac::Key>, body: &[u8]) -> Vec<(String, String)> {
    let mut h = vec![
        ("Content-Type".to_owned(), "application/json".to_owned()),
        (EVENT_HEADER.to_owned(), event.to_owned()),
    ];
    if let Some(key) = key {
        h.push((SIGNATURE_HEADER.to_owned(), signature(key, body)));
    }
    h
}

/// What the webhook's answer (or the failure to get one) means for the job runner.
pub fn outcome(answer: Result<OutboundResponse, OutboundError>) -> Result<(), DeliveryError> {
    match answer {
        Ok(resp) if resp.is_success() => Ok(()),
        Ok(resp) if resp.status == 408 || resp.status == 429 || resp.status >= 500 => Err(
            DeliveryError::transient(format!("the webhook answered {}", resp.status)),
        ),
        Ok(resp) => Err(DeliveryError::permanent(format!(
            "the webhook answered {}",
            resp.status
        ))),
        Err(e) if e.is_transient() => Err(DeliveryError::transient(e.to_string())),
        Err(e) => Err(DeliveryError::misconfigured(e.to_string())),
    }
}

/// A checked webhook URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlFacts {
    /// `https://`.
    pub https: bool,
    /// Its host is a loopback address or `localhost` (nothing crosses a network).
    pub loopback: bool,
}

/// Checks a URL at start: `http` or `https`, a host, and, for a host that is an address (or
/// `localhost`), that `policy` allows connecting there. A name is checked when it is resolved,
/// at each request. Errors name the host, never the path or query (which may hold a secret).
pub fn check_url(url: &str, policy: &EgressPolicy) -> Result<UrlFacts, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("is not a valid URL ({e})"))?;
    let https = match parsed.scheme() {
        "https" => true,
        "http" => false,
        other => {
            return Err(format!(
                "must be an http:// or https:// URL, not {other}://"
            ));
        }
    };
    let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) else {
        return Err("has no host".into());
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let lower = bare.to_ascii_lowercase();
    let address = if lower == "localhost" || lower.ends_with(".localhost") {
        // Resolves to loopback on every system (RFC 6761).
        Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
    } else {
        bare.parse::<IpAddr>().ok()
    };
    if let Some(ip) = address {
        is_allowed(ip, policy)
            .map_err(|reason| format!("is refused by the egress policy: {host} is {reason}"))?;
    }
    Ok(UrlFacts {
        https,
        loopback: address.is_some_and(|ip| ip.is_loopback()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_the_policy_refuses_are_refused_at_start() {
        let strict = EgressPolicy::default();
        for url in [
            "http://127.0.0.1:8080/hook",
            "https://localhost/hook",
            "https://169.254.169.254/latest",
            "http://[::1]/x",
            "https://10.0.0.1/x",
        ] {
            let e = check_url(url, &strict).unwrap_err();
            assert!(e.contains("refused by the egress policy"), "{url}: {e}");
        }
        assert!(check_url("ftp://example.com/", &strict).is_err());
        assert!(check_url("not a url", &strict).is_err());
        let f = check_url("https://hooks.example.com/x?token=s3cret", &strict).unwrap();
        assert_eq!(
            f,
            UrlFacts {
                https: true,
                loopback: false
            }
        );
        let e = check_url("http://10.1.2.3/x?token=s3cret", &strict).unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
        let open = EgressPolicy {
            allow_loopback: true,
            ..EgressPolicy::default()
        };
        assert!(check_url("http://127.0.0.1:1/", &open).unwrap().loopback);
    }
}
