//! The one Rust integration-test binary of OpenSCM (kanidm's testkit pattern: one binary, many
//! modules, so the suite links once).
//!
//! - [`routes`]: every route of the operation table over HTTP, happy path and refusals, against
//!   an in-process server on SQLite driven by `scm-client` (with [`routes_auth`]: health, tokens,
//!   authentication; [`routes_v2`]: the v2 routes; [`routes_v3`]: the v3 certificate routes;
//!   [`routes_http`]: unknown routes, methods, body limits, request ids; [`routes_tenancy`]:
//!   another account's resources answer as nonexistent ones, in content and in time;
//!   [`routes_tags`]: the tag routes; [`routes_csr`]: the CSR routes; [`routes_import`]:
//!   ImportCertificate (on SQLite and PostgreSQL);
//!   [`routes_openapi`]: the served OpenAPI description;
//!   [`routes_text`]: control and bidirectional characters are refused in every text field;
//!   [`routes_revoke`]: v2 revoke and the served CRL, checked with `openssl verify -crl_check`);
//! - [`cache_coherence`]: writes made by another process reach the server's read caches within a
//!   poll, each on its own side (certificate work leaves the credential cache alone);
//! - [`processes`]: the job runner across real `openscm` processes: a job survives SIGKILL of its
//!   worker and is done exactly once; two servers on one PostgreSQL never run one job at once;
//! - [`operations`]: which store a start opens and the refusal of a mistaken data directory,
//!   the shipped systemd unit and sample config, a backup restored in a new directory.

// Test code: failing loudly is the point (clippy.toml allows these only inside #[test] functions).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod cache_coherence;
mod hardening;
mod harness;
mod metrics_audit;
mod operations;
mod processes;
mod remote_store;
mod routes;
mod routes_auth;
mod routes_http;
mod routes_lifecycle;
mod routes_notices;
mod routes_openapi;
mod routes_tags;
mod routes_tenancy;
mod routes_text;
mod routes_v2;
mod routes_v3;
// --- csr ---
mod routes_csr;
// --- multi-target push ---
mod routes_deploy;
// --- import ---
mod routes_import;
// --- revocation ---
mod routes_revoke;
// --- tenant ca ---
mod routes_tenant_ca;
mod routes_versions;
