//! PKCS#8 DER private keys: `PrivateKey::from_pkcs8_der`; a key read is read back from its own
//! PKCS#8 unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scm_pki::PrivateKey;

fuzz_target!(|der: &[u8]| {
    if let Ok(key) = PrivateKey::from_pkcs8_der(der) {
        let back = PrivateKey::from_pkcs8_der(key.pkcs8_der()).unwrap();
        assert_eq!(back.algorithm(), key.algorithm());
        assert_eq!(back.public_key_raw(), key.public_key_raw());
    }
});
