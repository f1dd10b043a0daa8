//! DER certificates (what every PEM block decodes to): `parse_certificate_der`.
//! The harness is `scm_fuzz::certificate_der` (crates/scm-fuzz), which `cargo test` also replays over the
//! committed inputs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| scm_fuzz::certificate_der(data));
