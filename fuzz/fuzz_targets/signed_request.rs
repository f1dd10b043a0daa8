//! Signed requests: the input is an HTTP/1.1 request (request line, `Name: value` header lines, a
//! blank line, the body), split into method, path, query, headers and body. Its canonical request
//! is built over every header it has, and, when it carries an `Authorization` header that parses,
//! over the signed headers, then `verify` checks it with the secret and time of the reference
//! signing vectors (so the seeds verify).
#![no_main]

use libfuzzer_sys::fuzz_target;
use scm_sign::{Authorization, Request, SecretKey, canonical_request, single_header, verify};

const SECRET: &str = "SKtestSKtestSKtestSKtestSKtestSKtest0001";
const NOW: &str = "20240102T030405Z";

/// Splits at the first blank line (LF or CRLF); the head keeps its last line's end.
fn split_head(data: &[u8]) -> (&[u8], &[u8]) {
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' {
            let rest = &data[i + 1..];
            if let Some(body) = rest
                .strip_prefix(b"\n")
                .or_else(|| rest.strip_prefix(b"\r\n"))
            {
                return (&data[..=i], body);
            }
        }
    }
    (data, &[])
}

fuzz_target!(|data: &[u8]| {
    let (head, body) = split_head(data);
    let Ok(head) = std::str::from_utf8(head) else {
        return;
    };
    let mut lines = head.lines();
    let mut request_line = lines.next().unwrap_or("").splitn(3, ' ');
    let method = request_line.next().unwrap_or("");
    let target = request_line.next().unwrap_or("");
    let (raw_path, raw_query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let headers: Vec<(&str, &str)> = lines
        .map(|l| l.split_once(':').unwrap_or((l, "")))
        .collect();
    let req = Request {
        method,
        raw_path,
        raw_query,
        headers: &headers,
        body,
    };

    let all: Vec<String> = headers
        .iter()
        .map(|(name, _)| name.to_ascii_lowercase())
        .collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let _ = canonical_request(&req, &all);

    let Ok(Some(value)) = single_header(&headers, "authorization") else {
        return;
    };
    let Ok(auth) = Authorization::parse(value) else {
        return;
    };
    let _ = canonical_request(&req, &auth.signed_headers);
    let now = scm_sign::parse_sdk_date(NOW).unwrap();
    let secret = SecretKey::new(SECRET.to_owned());
    let _ = verify(&req, &auth, &secret, now, time::Duration::minutes(15));
});
