//! DNS names (`domain`, `sans`): `DnsName::parse`; a parsed name is lower case, at most 253
//! characters, and parses again to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scm_pki::DnsName;

fuzz_target!(|text: &str| {
    if let Ok(name) = DnsName::parse(text) {
        let s = name.as_str();
        assert!(s.len() <= 253 && !s.bytes().any(|b| b.is_ascii_uppercase()));
        assert_eq!(DnsName::parse(s).as_ref(), Ok(&name));
    }
});
