//! Push bodies (v2 `cert/{id}/push`, v3 `certificates/{id}/push`): the API's JSON body parser,
//! then the service and region checks of each version.
//! The harness is `scm_fuzz::push_body` (crates/scm-fuzz), which `cargo test` also replays over the
//! committed inputs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| scm_fuzz::push_body(data));
