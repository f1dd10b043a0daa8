//! Application forms (v2 `save`/`complete`, v3 `apply`): the API's JSON body parser, then
//! `ApplicationForm::parse` for v2 and v3, OV/EV or not; a form accepted is stored and read back
//! (v2 `save`, then `complete`).
//! The harness is `scm_fuzz::application_body` (crates/scm-fuzz), which `cargo test` also replays over the
//! committed inputs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| scm_fuzz::application_body(data));
