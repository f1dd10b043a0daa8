//! PEM private keys (PKCS#8, PKCS#1, SEC1): `PrivateKey::from_pem`; a key read is exported and
//! read back unchanged.
//! The harness is `scm_fuzz::private_key_pem` (crates/scm-fuzz), which `cargo test` also replays over the
//! committed inputs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| scm_fuzz::private_key_pem(data));
