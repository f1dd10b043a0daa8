//! ImportCertificate's material: `parse_import` reads a certificate (or bundle), an optional chain
//! and a private key, and checks them against each other. The input is the three texts separated
//! by U+0001 (a character no PEM holds).
//! The harness is `scm_fuzz::import_material` (crates/scm-fuzz), which `cargo test` also replays over the
//! committed inputs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| scm_fuzz::import_material(data));
