//! PEM certificate signing requests: `ParsedCsr::from_pem` (parse, key check, self-signature).
//! The harness is `scm_fuzz::csr_pem` (crates/scm-fuzz), which `cargo test` also replays over the
//! committed inputs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| scm_fuzz::csr_pem(data));
