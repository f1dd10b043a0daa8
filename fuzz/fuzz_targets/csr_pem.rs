//! PEM certificate signing requests: `ParsedCsr::from_pem` (parse, key check, self-signature).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(csr) = scm_pki::ParsedCsr::from_pem(text) {
        let _ = (csr.dns_names(), csr.common_name(), csr.key_algorithm());
    }
});
