//! The port through which the domain talks to an ACME certificate authority (RFC 8555, with
//! ARI, RFC 9773). The domain keeps every order's state in the store and drives it one step
//! per job attempt ([`super::orders`]); the adapter (`scm_outbound::acme`, on instant-acme)
//! only performs single, stateless protocol calls with the account credentials it is given.

use std::time::Duration;

use async_trait::async_trait;
use zeroize::Zeroizing;

/// An ACME account's credentials as the adapter serialises them (the account URL and its
/// private key): stored sealed under the master key, never logged.
#[derive(Clone)]
pub struct AccountSecret(pub Zeroizing<String>);

impl std::fmt::Debug for AccountSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountSecret(..)")
    }
}

/// An RFC 7807 problem document as a CA sent it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Problem {
    /// `urn:ietf:params:acme:error:...` (or another URI), empty when absent.
    pub kind: String,
    /// The CA's explanation.
    pub detail: String,
    /// Sub-problems per identifier (`(name, problem)`), e.g. for a rejected identifier.
    pub subproblems: Vec<(String, String)>,
}

impl Problem {
    /// The short name of the problem type (`rateLimited` for
    /// `urn:ietf:params:acme:error:rateLimited`).
    pub fn short(&self) -> &str {
        self.kind.rsplit(':').next().unwrap_or(self.kind.as_str())
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.short(), self.detail)?;
        for (name, detail) in &self.subproblems {
            write!(f, "; {name}: {detail}")?;
        }
        Ok(())
    }
}

/// Why an ACME call failed, classified for the order job: what to wait for, and whether
/// another CA could do better.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcmeError {
    /// The CA could not be reached, answered 5xx, or kept refusing nonces: try again soon
    /// (`retry_after` when the CA said when); another CA may do better.
    #[error("the CA is unavailable: {reason}")]
    Unavailable {
        /// What failed.
        reason: String,
        /// The CA's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// `rateLimited`: no new order to this CA account before `retry_after` from now (the
    /// CA's `Retry-After`, or the adapter's guess when it sent none).
    #[error("rate limited by the CA: {problem}")]
    RateLimited {
        /// The CA's problem document.
        problem: Problem,
        /// How long to wait.
        retry_after: Option<Duration>,
    },
    /// The CA refused the request itself (`rejectedIdentifier`, `unauthorized`, `caa`,
    /// `badCSR`, `externalAccountRequired`, ...): retrying at this CA will not help; another
    /// CA may.
    #[error("refused by the CA: {problem}")]
    Refused {
        /// The CA's problem document.
        problem: Problem,
    },
    /// The order (or account) URL is unknown to the CA (it was deleted, or the CA lost its
    /// state): place a new order.
    #[error("the CA no longer knows {url}")]
    Gone {
        /// The URL asked for.
        url: String,
    },
    /// This server's configuration of the issuer is wrong (an unreadable directory, bad
    /// trust roots): tell the operator.
    #[error("the issuer is misconfigured: {reason}")]
    Misconfigured {
        /// What is wrong.
        reason: String,
    },
}

impl AcmeError {
    /// Whether the next issuer of the list may succeed where this one failed.
    pub fn try_next_issuer(&self) -> bool {
        match self {
            Self::Unavailable { .. }
            | Self::RateLimited { .. }
            | Self::Refused { .. }
            | Self::Misconfigured { .. } => true,
            Self::Gone { .. } => false,
        }
    }
}

/// What to order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrderSpec {
    /// The DNS names (a wildcard as `*.example.com`), in the certificate's order.
    pub names: Vec<String>,
    /// ARI: the DER of the certificate this order replaces (sent as `replaces` when the CA
    /// offers ARI; ignored otherwise).
    pub replaces: Option<Vec<u8>>,
    /// The ACME profile to ask for (draft-aaron-acme-profiles), when configured.
    pub profile: Option<String>,
}

/// An order's status (RFC 8555 §7.1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    /// Authorizations are pending.
    Pending,
    /// Every authorization is valid: finalize.
    Ready,
    /// Finalized; the CA is issuing.
    Processing,
    /// Issued: download the certificate.
    Valid,
    /// Failed for good.
    Invalid,
}

/// An authorization's or a challenge's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemStatus {
    /// Waiting for the client.
    Pending,
    /// The CA is validating.
    Processing,
    /// Passed.
    Valid,
    /// Failed.
    Invalid,
    /// Withdrawn, expired, revoked or deactivated.
    Other,
}

/// A challenge type OpenSCM can solve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChallengeKind {
    /// `http-01`: a file at `http://<name>/.well-known/acme-challenge/<token>`.
    Http01,
    /// `dns-01`: a TXT record at `_acme-challenge.<name>`.
    Dns01,
}

impl ChallengeKind {
    /// The ACME spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http01 => "http-01",
            Self::Dns01 => "dns-01",
        }
    }

    /// Parses the ACME spelling (other types are not solved by OpenSCM).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "http-01" => Some(Self::Http01),
            "dns-01" => Some(Self::Dns01),
            _ => None,
        }
    }
}

/// One challenge of an authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeView {
    /// Its type.
    pub kind: ChallengeKind,
    /// Its URL (POSTed to say it is ready).
    pub url: String,
    /// Its token.
    pub token: String,
    /// Its status.
    pub status: ItemStatus,
    /// The key authorization (`token.thumbprint`): the body of the http-01 file.
    pub key_authorization: String,
    /// The dns-01 TXT value (base64url of the SHA-256 of the key authorization).
    pub dns_value: String,
    /// Why it failed, when it did.
    pub error: Option<Problem>,
}

/// One authorization of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationView {
    /// The authorization's URL.
    pub url: String,
    /// The name authorized, without `*.` (see `wildcard`).
    pub name: String,
    /// Whether it authorizes the wildcard of `name`.
    pub wildcard: bool,
    /// Its status.
    pub status: ItemStatus,
    /// The challenges of types OpenSCM solves (others left out).
    pub challenges: Vec<ChallengeView>,
}

/// An order as the CA reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderView {
    /// The order's URL (the key to resume it).
    pub url: String,
    /// Its status.
    pub status: OrderStatus,
    /// Its authorizations (fetched with it).
    pub authorizations: Vec<AuthorizationView>,
    /// Why it failed, when it did.
    pub error: Option<Problem>,
    /// The CA's `Retry-After` on this answer, when it sent one.
    pub retry_after: Option<Duration>,
}

/// The renewal window a CA suggests for a certificate (ARI, RFC 9773).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewalWindow {
    /// Start of the window (Unix ms).
    pub start_ms: i64,
    /// End of the window (Unix ms).
    pub end_ms: i64,
    /// When to ask again (the response's `Retry-After`).
    pub retry_after: Option<Duration>,
    /// The CA's explanation URL, if any.
    pub explanation_url: Option<String>,
}

/// One configured ACME CA (a directory, with its contact, EAB and trust settings): the
/// domain's view of the adapter.
#[async_trait]
pub trait AcmeCa: Send + Sync + std::fmt::Debug + 'static {
    /// Registers a new account at the CA (agreeing to its terms, with the configured contact
    /// and External Account Binding) and returns its credentials.
    async fn create_account(&self) -> Result<AccountSecret, AcmeError>;
    /// Places a new order; the answer carries its URL and authorizations.
    async fn new_order(
        &self,
        account: &AccountSecret,
        order: &NewOrderSpec,
    ) -> Result<OrderView, AcmeError>;
    /// The current state of the order at `url`, with its authorizations.
    async fn order(&self, account: &AccountSecret, url: &str) -> Result<OrderView, AcmeError>;
    /// Tells the CA that the challenge at `challenge_url` (of the order at `order_url`) is
    /// ready to be validated.
    async fn answer(
        &self,
        account: &AccountSecret,
        order_url: &str,
        challenge_url: &str,
    ) -> Result<(), AcmeError>;
    /// Finalizes a ready order with the DER of a CSR for its names.
    async fn finalize(
        &self,
        account: &AccountSecret,
        order_url: &str,
        csr_der: &[u8],
    ) -> Result<OrderView, AcmeError>;
    /// The issued chain of a valid order (leaf first, PEM); `None` while not yet available.
    async fn certificate(
        &self,
        account: &AccountSecret,
        order_url: &str,
    ) -> Result<Option<String>, AcmeError>;
    /// Whether the directory offers ARI (`renewalInfo`).
    async fn offers_ari(&self) -> Result<bool, AcmeError>;
    /// The CA's suggested renewal window for the certificate with this DER (ARI); `None` when
    /// the directory has no `renewalInfo`.
    async fn renewal_info(&self, cert_der: &[u8]) -> Result<Option<RenewalWindow>, AcmeError>;
    /// Revokes the certificate with this DER (RFC 5280 reason code, when given).
    async fn revoke(
        &self,
        account: &AccountSecret,
        cert_der: &[u8],
        reason: Option<u8>,
    ) -> Result<(), AcmeError>;
}
