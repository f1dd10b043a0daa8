//! PEM certificates and chains: `pem_blocks` splits a bundle, `parse_certificate_pem` reads the
//! first block and then each block of the chain on its own.
//! The harness is `scm_fuzz::certificate_pem` (crates/scm-fuzz), which `cargo test` also replays over the
//! committed inputs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| scm_fuzz::certificate_pem(data));
