//! Purchase bodies (v2 `cert/purchase`, v3 `certificates/buy`): the API's JSON body parser, then
//! `PurchaseSpec::parse` with the v2 and the v3 rules.
//! The harness is `scm_fuzz::purchase_body` (crates/scm-fuzz), which `cargo test` also replays over the
//! committed inputs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| scm_fuzz::purchase_body(data));
