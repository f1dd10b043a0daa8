//! DER certificates (what every PEM block decodes to): `parse_certificate_der`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|der: &[u8]| {
    if let Ok(info) = scm_pki::parse_certificate_der(der) {
        assert_eq!(info.der, der);
        assert_eq!(info.sha1_fingerprint_hex.len(), 40);
    }
});
