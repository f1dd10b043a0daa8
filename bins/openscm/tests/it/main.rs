//! The one Rust integration-test binary of OpenSCM (kanidm's testkit pattern: one binary, many
//! modules, so the suite links once).
//!
//! - [`routes`]: every route of the operation table over HTTP, happy path and refusals, against
//!   an in-process server on SQLite driven by `scm-client`;
//! - [`processes`]: the job runner across real `openscm` processes: a job survives SIGKILL of its
//!   worker and is done exactly once; two servers on one PostgreSQL never run one job at once.

// Test code: failing loudly is the point (clippy.toml allows these only inside #[test] functions).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod harness;
mod processes;
mod routes;
