//! Signed requests: the input is an HTTP/1.1 request (request line, `Name: value` header lines, a
//! blank line, the body), split into method, path, query, headers and body. Its canonical request
//! is built over every header it has, and, when it carries an `Authorization` header that parses,
//! over the signed headers, then `verify` checks it with the secret and time of the reference
//! signing vectors (so the seeds verify).
//! The harness is `scm_fuzz::signed_request` (crates/scm-fuzz), which `cargo test` also replays over the
//! committed inputs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| scm_fuzz::signed_request(data));
