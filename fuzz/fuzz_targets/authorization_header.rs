//! The `Authorization` header: `Authorization::parse`. The layout is matched strictly, so a value
//! accepted is exactly the one rebuilt from its parts.
//! The harness is `scm_fuzz::authorization_header` (crates/scm-fuzz), which `cargo test` also replays over the
//! committed inputs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| scm_fuzz::authorization_header(data));
