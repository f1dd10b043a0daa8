//! The query of `GET /v3/scm/certificates`: decoded into pairs, then checked into a list request.
//! The harness is `scm_fuzz::list_query` (crates/scm-fuzz), which `cargo test` also replays over the
//! committed inputs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| scm_fuzz::list_query(data));
