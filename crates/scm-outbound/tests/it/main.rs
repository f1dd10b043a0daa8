//! The integration tests of scm-outbound, against real peers (one binary, many modules):
//!
//! - [`acme`]: the ACME adapter against Pebble (with challtestsrv as its DNS): accounts with and
//!   without EAB, http-01 and dns-01 orders to chains that verify, an order resumed after a
//!   restart, revocation, and the classification of failures;
//! - [`dns`]: [`scm_outbound::dns::TxtResolver`] against `pebble-challtestsrv` (TXT records set
//!   and cleared, SERVFAIL, addresses) and BIND (no cache despite long TTLs; authoritative mode
//!   with two servers that disagree, and with servers that cannot be asked);
//! - [`dns_update`]: automatic dns-01 ([`scm_outbound::dns::update::txt_updater`]) against
//!   BIND 9 with TSIG keys (hmac-sha256 and -sha512): records added beside each other and removed
//!   one by one, refusals of a key granted nothing, a wrong secret, a server that is down;
//! - [`dcv_fetch`]: [`scm_outbound::dcv::ValidationFileFetcher`] against an HTTP responder on
//!   loopback, its names resolved by challtestsrv: status, redirects, limits, egress policy;
//! - [`haproxy`]: the `haproxy` push target against a real HAProxy: swaps with no reload, new
//!   names through a crt-list, refusals, and 100 swaps under `wrk` load;
//! - [`smtp`]: [`scm_outbound::notify::smtp::SmtpNotifier`] against aiosmtpd (plain, STARTTLS
//!   with a login, implicit TLS) and how refusals, TLS and login failures and a server that is
//!   down are classified;
//! - [`tls_probe`]: [`scm_outbound::tls_probe::RustlsProber`] against TLS servers on loopback
//!   serving certificates of a test CA, and against servers that refuse, never speak TLS or never
//!   speak.
//!
//! The peers are started by each test ([`support`]); a missing one fails the test.

// Test code: failing loudly is the point (clippy.toml allows these only inside #[test] functions).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod acme;
mod dcv_fetch;
mod dns;
mod dns_update;
mod haproxy;
mod smtp;
mod support;
mod tls_probe;
