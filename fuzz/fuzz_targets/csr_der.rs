//! DER certificate signing requests: `ParsedCsr::from_der` (parse, key check, self-signature).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|der: &[u8]| {
    if let Ok(csr) = scm_pki::ParsedCsr::from_der(der) {
        let _ = (csr.dns_names(), csr.common_name(), csr.key_algorithm());
    }
});
