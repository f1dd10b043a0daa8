//! The `Authorization` header: `Authorization::parse`. The layout is matched strictly, so a value
//! accepted is exactly the one rebuilt from its parts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scm_sign::Authorization;

fuzz_target!(|value: &str| {
    if let Ok(auth) = Authorization::parse(value) {
        let signature: String = auth.signature.iter().map(|b| format!("{b:02x}")).collect();
        let rebuilt = format!(
            "SDK-HMAC-SHA256 Access={}, SignedHeaders={}, Signature={signature}",
            auth.access_key,
            auth.signed_headers.join(";"),
        );
        assert_eq!(rebuilt, value);
    }
});
