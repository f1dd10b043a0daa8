//! ImportCertificate's material: `parse_import` reads a certificate (or bundle), an optional chain
//! and a private key, and checks them against each other. The input is the three texts separated
//! by U+0001 (a character no PEM holds).
#![no_main]

use libfuzzer_sys::fuzz_target;
use scm_pki::import::parse_import;

fuzz_target!(|text: &str| {
    let mut parts = text.splitn(3, '\u{1}');
    let certificate = parts.next().unwrap_or_default();
    let chain = parts.next();
    let key = parts.next().unwrap_or_default();
    let _ = parse_import(certificate, chain.filter(|c| !c.is_empty()), key);
});
