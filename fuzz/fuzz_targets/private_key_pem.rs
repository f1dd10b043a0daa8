//! PEM private keys (PKCS#8, PKCS#1, SEC1): `PrivateKey::from_pem`; a key read is exported and
//! read back unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scm_pki::PrivateKey;

fuzz_target!(|text: &str| {
    if let Ok(key) = PrivateKey::from_pem(text) {
        let back = PrivateKey::from_pem(&key.to_pem()).unwrap();
        assert_eq!(back.algorithm(), key.algorithm());
        assert_eq!(back.public_key_raw(), key.public_key_raw());
    }
});
