//! The ports domain control validation checks the outside world through: a DNS TXT lookup
//! ([`TxtLookup`]) and an HTTP fetch of a validation file ([`FileFetch`]). The domain never opens
//! a socket; `scm-outbound` implements both (a hickory resolver the operator can point at given
//! name servers, and the egress-guarded HTTP client).

use async_trait::async_trait;

/// Why a check could not see what it looked for. `transient` says whether looking again later
/// may help (a timeout, a server failure) as opposed to an answer that is simply not the
/// expected one yet (both are retried by the validation job until its deadline; the flag only
/// decides how the failure is reported and logged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ProbeError {
    /// Safe to show to the account: what was asked and what went wrong.
    pub reason: String,
    /// Whether the failure is of the network or the server rather than the answer.
    pub transient: bool,
}

/// Looks up TXT records for domain validation.
#[async_trait]
pub trait TxtLookup: Send + Sync + 'static {
    /// The TXT records at `name` (a fully qualified name, no trailing dot needed), each
    /// record's character-strings concatenated. A name that does not exist, or has no TXT
    /// record, is `Ok(vec![])`.
    async fn txt(&self, name: &str) -> Result<Vec<String>, ProbeError>;
}

/// What a validation file fetch found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedFile {
    /// The final URL, after the redirects followed.
    pub url: String,
    /// The body as sent (at most the fetcher's size cap), lossily decoded as UTF-8; compare it
    /// trimmed, as web servers and editors add line ends.
    pub body: String,
}

/// Fetches the file of FILE validation: `GET http://<name>/.well-known/pki-validation/<file>`
/// on port 80, following redirects only as the CA/Browser Forum Baseline Requirements allow
/// (3.2.2.4.18/19: 301, 302, 307 and 308, to `http` on port 80 or `https` on port 443), through
/// the operator's egress policy. (The operator may move "port 80" elsewhere for a test setup:
/// `scm_outbound::dcv::FileFetchConfig::http_port`.)
#[async_trait]
pub trait FileFetch: Send + Sync + 'static {
    /// Fetches `url`; a status other than 200 is an error that names it (transient for 5xx
    /// and network failures, not for 4xx, refused redirects or an oversized body).
    async fn fetch(&self, url: &str) -> Result<FetchedFile, ProbeError>;
}

/// Publishes and withdraws TXT records: automatic `dns-01` (RFC 2136 dynamic updates signed
/// with TSIG in `scm-outbound`).
#[async_trait]
pub trait TxtUpdate: Send + Sync + std::fmt::Debug + 'static {
    /// Adds the TXT record `value` at `fqdn` (other values at the name stay: several
    /// authorizations of one name may be pending at once) with a short TTL.
    async fn add_txt(&self, fqdn: &str, value: &str) -> Result<(), ProbeError>;
    /// Removes the TXT record `value` at `fqdn` (only that value); a record that is not there
    /// is not an error.
    async fn remove_txt(&self, fqdn: &str, value: &str) -> Result<(), ProbeError>;
}
