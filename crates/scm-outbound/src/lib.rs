//! Every connection OpenSCM opens: outbound HTTP, push targets, notifiers, ACME and DNS
//! adapters.
//!
//! A certificate manager is handed URLs by its users (webhook targets, notification endpoints,
//! ACME directories). Each of them is a way to make the server reach somewhere the operator never
//! meant it to reach: the cloud metadata service, a database on the loopback interface, an admin
//! panel on the private network. Keeping every outbound connection in this one crate means there
//! is one place that decides where OpenSCM may go, and one place to audit.
//!
//! - [`http`]: the one outbound HTTP client ([`http::OutboundHttp`]), guarded by the operator's
//!   [`http::EgressPolicy`];
//! - [`acme`]: ACME certificate authorities (the domain's `AcmeCa`, on instant-acme), with
//!   their configuration;
//! - [`dns`]: the DNS lookups of domain validation ([`dns::TxtResolver`]);
//! - [`dcv`]: the file fetch of domain validation ([`dcv::ValidationFileFetcher`]), through
//!   [`http::OutboundHttp`];
//! - [`deploy`]: push targets (nginx, files, haproxy, exec, webhook), the domain's `Deployer`s,
//!   with their configuration;
//! - [`notify`]: notifiers (webhooks, mail), the domain's `Notifier`s, with their configuration;
//! - [`tls_probe`]: the TLS handshake that reports what a push target serves
//!   ([`tls_probe::RustlsProber`], the domain's `TlsProber`);
//! - [`webhook`]: what the webhook push target and the webhook notifier share (signing, URL
//!   checks, the meaning of answers);
//! - [`fsutil`]: atomic file replacement, lock files, secret files.
//!
//! Each adapter implements a port of `scm-core` and owns the serde struct of its configuration;
//! the binary's config aggregates them.
#![deny(missing_docs)]

pub mod acme;
pub mod dcv;
pub mod deploy;
pub mod dns;
pub mod fsutil;
pub mod http;
pub mod notify;
pub mod probes;
pub mod tls_probe;
pub mod webhook;
