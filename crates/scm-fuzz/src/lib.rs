//! The harness of every fuzz target, one function per target, each taking the raw input.
//!
//! `fuzz/fuzz_targets/<name>.rs` is one line that calls [`<name>`](TARGETS), so the
//! coverage-guided campaign (`fuzz/run.sh`, nightly-free through cargo-fuzz) and the replay that
//! `cargo test` runs over every committed seed and crash input (`tests/replay.rs`) exercise the
//! same code. A harness panics when an invariant breaks; that is how a fuzzer reports a finding.
// A fuzz harness states its invariants with assertions and unwraps: a panic is the finding.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use scm_api::fuzzing;
use scm_core::application::ApplicationForm;
use scm_core::purchase::ApiVersion;
use scm_pki::import::parse_import;
use scm_pki::{DnsName, PrivateKey, TrustAnchors, parse_certificate_pem, pem_blocks};
use scm_sign::{Authorization, Request, SecretKey, canonical_request, single_header, verify};

/// A harness: runs one input, panics on a finding.
pub type Harness = fn(&[u8]);

/// Every target: its name (the directory of its corpus under `fuzz/corpus/` and of its crash
/// inputs under `fuzz/regressions/`) and its harness.
pub const TARGETS: &[(&str, Harness)] = &[
    ("application_body", application_body),
    ("authorization_header", authorization_header),
    ("certificate_der", certificate_der),
    ("certificate_pem", certificate_pem),
    ("csr_der", csr_der),
    ("csr_pem", csr_pem),
    ("dns_name", dns_name),
    ("import_material", import_material),
    ("list_query", list_query),
    ("private_key_der", private_key_der),
    ("private_key_pem", private_key_pem),
    ("purchase_body", purchase_body),
    ("push_body", push_body),
    ("signed_request", signed_request),
];

/// Text targets see only UTF-8 input, as libfuzzer-sys's `|text: &str|` targets do.
fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// Application forms (v2 `save`/`complete`, v3 `apply`): the API's JSON body parser, then
/// `ApplicationForm::parse` for v2 and v3, OV/EV or not; a form accepted is stored and read back
/// (v2 `save`, then `complete`).
pub fn application_body(body: &[u8]) {
    for version in [ApiVersion::V2, ApiVersion::V3] {
        for organisation_validated in [false, true] {
            if let Ok(form) = fuzzing::application(body, version, organisation_validated) {
                let back = ApplicationForm::from_record(&form.to_record().unwrap()).unwrap();
                assert_eq!(back.names(), form.names());
            }
        }
    }
}

/// The `Authorization` header: `Authorization::parse`. The layout is matched strictly, so a value
/// accepted is exactly the one rebuilt from its parts.
pub fn authorization_header(data: &[u8]) {
    let Some(value) = text(data) else { return };
    if let Ok(auth) = Authorization::parse(value) {
        let signature: String = auth.signature.iter().map(|b| format!("{b:02x}")).collect();
        let rebuilt = format!(
            "SDK-HMAC-SHA256 Access={}, SignedHeaders={}, Signature={signature}",
            auth.access_key,
            auth.signed_headers.join(";"),
        );
        assert_eq!(rebuilt, value);
    }
}

/// DER certificates (what every PEM block decodes to): `parse_certificate_der`.
pub fn certificate_der(der: &[u8]) {
    if let Ok(info) = scm_pki::parse_certificate_der(der) {
        assert_eq!(info.der, der);
        assert_eq!(info.sha1_fingerprint_hex.len(), 40);
    }
}

/// PEM certificates and chains: `pem_blocks` splits a bundle, `parse_certificate_pem` reads the
/// first block and then each block of the chain on its own.
pub fn certificate_pem(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let _ = parse_certificate_pem(text);
    for block in pem_blocks(text, "CERTIFICATE") {
        // A block is canonical (or verbatim when it does not decode): splitting it again gives
        // the block itself.
        assert_eq!(pem_blocks(&block, "CERTIFICATE"), [block.as_str()]);
        let _ = parse_certificate_pem(&block);
    }
}

/// DER certificate signing requests: `ParsedCsr::from_der` (parse, key check, self-signature).
pub fn csr_der(der: &[u8]) {
    if let Ok(csr) = scm_pki::ParsedCsr::from_der(der) {
        let _ = (csr.dns_names(), csr.common_name(), csr.key_algorithm());
    }
}

/// PEM certificate signing requests: `ParsedCsr::from_pem` (parse, key check, self-signature).
pub fn csr_pem(data: &[u8]) {
    let Some(text) = text(data) else { return };
    if let Ok(csr) = scm_pki::ParsedCsr::from_pem(text) {
        let _ = (csr.dns_names(), csr.common_name(), csr.key_algorithm());
    }
}

/// DNS names (`domain`, `sans`): `DnsName::parse`; a parsed name is lower case, at most 253
/// characters, and parses again to itself.
pub fn dns_name(data: &[u8]) {
    let Some(text) = text(data) else { return };
    if let Ok(name) = DnsName::parse(text) {
        let s = name.as_str();
        assert!(s.len() <= 253 && !s.bytes().any(|b| b.is_ascii_uppercase()));
        assert_eq!(DnsName::parse(s).as_ref(), Ok(&name));
    }
}

/// ImportCertificate's material: `parse_import` reads a certificate (or bundle), an optional chain
/// and a private key, checks them against each other and verifies the chain's signatures, at a
/// fixed time (reproducible) and with no trust anchor, so nothing may come out trusted. The input
/// is the three texts separated by U+0001 (a character no PEM holds).
pub fn import_material(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let mut parts = text.splitn(3, '\u{1}');
    let certificate = parts.next().unwrap_or_default();
    let chain = parts.next();
    let key = parts.next().unwrap_or_default();
    let now = time::OffsetDateTime::from_unix_timestamp(1_800_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    if let Ok(imported) = parse_import(
        certificate,
        chain.filter(|c| !c.is_empty()),
        key,
        now,
        &TrustAnchors::new(),
    ) {
        assert!(!imported.trust.is_trusted(), "trusted without an anchor");
        assert!(!imported.trust.to_string().is_empty());
    }
}

/// The query of `GET /v3/scm/certificates`: decoded into pairs, then checked into a list request.
pub fn list_query(data: &[u8]) {
    let Some(query) = text(data) else { return };
    let _ = fuzzing::list_query(Some(query));
}

/// PKCS#8 DER private keys: `PrivateKey::from_pkcs8_der`; a key read is read back from its own
/// PKCS#8 unchanged.
pub fn private_key_der(der: &[u8]) {
    if let Ok(key) = PrivateKey::from_pkcs8_der(der) {
        let back = PrivateKey::from_pkcs8_der(key.pkcs8_der()).unwrap();
        assert_eq!(back.algorithm(), key.algorithm());
        assert_eq!(back.public_key_raw(), key.public_key_raw());
    }
}

/// PEM private keys (PKCS#8, PKCS#1, SEC1): `PrivateKey::from_pem`; a key read is exported and
/// read back unchanged.
pub fn private_key_pem(data: &[u8]) {
    let Some(text) = text(data) else { return };
    if let Ok(key) = PrivateKey::from_pem(text) {
        let back = PrivateKey::from_pem(&key.to_pem()).unwrap();
        assert_eq!(back.algorithm(), key.algorithm());
        assert_eq!(back.public_key_raw(), key.public_key_raw());
    }
}

/// Purchase bodies (v2 `cert/purchase`, v3 `certificates/buy`): the API's JSON body parser, then
/// `PurchaseSpec::parse` with the v2 and the v3 rules.
pub fn purchase_body(body: &[u8]) {
    let _ = fuzzing::purchase(body, ApiVersion::V2);
    let _ = fuzzing::purchase(body, ApiVersion::V3);
}

/// Push bodies (v2 `cert/{id}/push`, v3 `certificates/{id}/push`): the API's JSON body parser,
/// then the service and region checks of each version.
pub fn push_body(body: &[u8]) {
    let _ = fuzzing::v2_push(body);
    let _ = fuzzing::v3_push(body);
}

const SIGNING_SECRET: &str = "SKtestSKtestSKtestSKtestSKtestSKtest0001";
const SIGNING_NOW: &str = "20240102T030405Z";

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

/// Signed requests: the input is an HTTP/1.1 request (request line, `Name: value` header lines, a
/// blank line, the body), split into method, path, query, headers and body. Its canonical request
/// is built over every header it has, and, when it carries an `Authorization` header that parses,
/// over the signed headers, then `verify` checks it with the secret and time of the reference
/// signing vectors (so the seeds verify).
pub fn signed_request(data: &[u8]) {
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
    let now = scm_sign::parse_sdk_date(SIGNING_NOW).unwrap();
    let secret = SecretKey::new(SIGNING_SECRET.to_owned());
    let _ = verify(&req, &auth, &secret, now, time::Duration::minutes(15));
}
