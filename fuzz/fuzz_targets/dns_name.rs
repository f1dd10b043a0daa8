//! DNS names (`domain`, `sans`): `DnsName::parse`; a parsed name is lower case, at most 253
//! characters, and parses again to itself.
//! The harness is `scm_fuzz::dns_name` (crates/scm-fuzz), which `cargo test` also replays over the
//! committed inputs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| scm_fuzz::dns_name(data));
