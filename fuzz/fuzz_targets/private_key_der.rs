//! PKCS#8 DER private keys: `PrivateKey::from_pkcs8_der`; a key read is read back from its own
//! PKCS#8 unchanged.
//! The harness is `scm_fuzz::private_key_der` (crates/scm-fuzz), which `cargo test` also replays over the
//! committed inputs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| scm_fuzz::private_key_der(data));
