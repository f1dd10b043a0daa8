//! The six Python SDK vectors of `tests/signing-vectors.json`, through both sides, plus
//! verification failures built from them.

use std::collections::BTreeMap;

use serde_json::Value;
use time::Duration;

use super::*;

const VECTORS: &str = include_str!("../tests/signing-vectors.json");
const MAX_SKEW: Duration = Duration::minutes(15);

struct Vector {
    name: String,
    method: String,
    host: String,
    path: String,
    query: Vec<(String, String)>,
    /// Input headers plus the credential header, as handed to `sign`.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    access_key: String,
    secret_key: SecretKey,
    timestamp: String,
    request_uri: String,
    headers_sent: Vec<(String, String)>,
    canonical_request: String,
    string_to_sign: String,
    signature: String,
    authorization: String,
}

impl Vector {
    fn raw_path(&self) -> &str {
        self.request_uri
            .split_once('?')
            .map_or(self.request_uri.as_str(), |(path, _)| path)
    }

    fn raw_query(&self) -> Option<&str> {
        self.request_uri.split_once('?').map(|(_, query)| query)
    }

    fn sent_headers(&self) -> Vec<(&str, &str)> {
        pairs(&self.headers_sent)
    }

    fn time(&self) -> OffsetDateTime {
        parse_sdk_date(&self.timestamp).unwrap()
    }
}

fn pairs(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect()
}

fn string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => panic!("unexpected JSON value {other}"),
    }
}

fn header_map(value: &Value) -> Vec<(String, String)> {
    value
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, value)| (name.clone(), string(value)))
        .collect()
}

fn vectors() -> Vec<Vector> {
    let json: Value = serde_json::from_str(VECTORS).unwrap();
    let vectors = json["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 6);
    vectors
        .iter()
        .map(|v| {
            let inputs = &v["inputs"];
            let expected = &v["expected"];
            let credential = &inputs["credential"];
            let mut headers = header_map(&inputs["headers"]);
            if let Some(header) = credential["adds_header"].as_str() {
                let id = match header {
                    "X-Domain-Id" => &credential["domain_id"],
                    "X-Project-Id" => &credential["project_id"],
                    other => panic!("unexpected credential header {other}"),
                };
                headers.push((header.to_owned(), string(id)));
            }
            Vector {
                name: string(&v["name"]),
                method: string(&inputs["method"]),
                host: string(&inputs["host"]),
                path: string(&inputs["path"]),
                query: inputs["query"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|pair| (string(&pair[0]), string(&pair[1])))
                    .collect(),
                headers,
                body: match &inputs["body"] {
                    Value::Null => Vec::new(),
                    body => string(body).into_bytes(),
                },
                access_key: string(&inputs["access_key"]),
                secret_key: SecretKey::new(string(&inputs["secret_key"])),
                timestamp: string(&inputs["timestamp"]),
                request_uri: string(&expected["request_uri"]),
                headers_sent: header_map(&expected["headers_sent"]),
                canonical_request: string(&expected["canonical_request"]),
                string_to_sign: string(&expected["string_to_sign"]),
                signature: string(&expected["signature"]),
                authorization: string(&expected["authorization"]),
            }
        })
        .collect()
}

fn authorization_of<'a>(headers: &[(&str, &'a str)]) -> &'a str {
    headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        .unwrap()
        .1
}

#[test]
fn server_canonical_request() {
    for v in vectors() {
        let headers = v.sent_headers();
        let auth = Authorization::parse(authorization_of(&headers)).unwrap();
        let req = Request {
            method: &v.method,
            raw_path: v.raw_path(),
            raw_query: v.raw_query(),
            headers: &headers,
            body: &v.body,
        };
        let canonical = canonical_request(&req, &auth.signed_headers).unwrap();
        assert_eq!(canonical, v.canonical_request, "{}", v.name);
    }
}

#[test]
fn string_to_sign_and_signature() {
    for v in vectors() {
        let sts = string_to_sign(&v.timestamp, &v.canonical_request);
        assert_eq!(sts, v.string_to_sign, "{}", v.name);
        let sig = signature(&v.secret_key, &sts);
        assert_eq!(hex::encode(sig), v.signature, "{}", v.name);
    }
}

#[test]
fn verify_within_skew() {
    for v in vectors() {
        let headers = v.sent_headers();
        let auth = Authorization::parse(authorization_of(&headers)).unwrap();
        assert_eq!(auth.access_key, v.access_key, "{}", v.name);
        let req = Request {
            method: &v.method,
            raw_path: v.raw_path(),
            raw_query: v.raw_query(),
            headers: &headers,
            body: &v.body,
        };
        let at = |offset: Duration| verify(&req, &auth, &v.secret_key, v.time() + offset, MAX_SKEW);

        assert_eq!(at(Duration::ZERO), Ok(()), "{}", v.name);
        assert_eq!(at(Duration::minutes(14)), Ok(()), "{}", v.name);
        assert_eq!(at(-Duration::minutes(14)), Ok(()), "{}", v.name);
        assert_eq!(at(Duration::minutes(15)), Ok(()), "{}", v.name);
        assert_eq!(
            at(Duration::minutes(16)),
            Err(SignError::Skew),
            "{}",
            v.name
        );
        assert_eq!(
            at(-Duration::minutes(16)),
            Err(SignError::Skew),
            "{}",
            v.name
        );

        let wrong = SecretKey::new("SKtestSKtestSKtestSKtestSKtestSKtest0002".to_owned());
        assert_eq!(
            verify(&req, &auth, &wrong, v.time(), MAX_SKEW),
            Err(SignError::BadSignature),
            "{}",
            v.name
        );
    }
}

#[test]
fn client_reproduces_sdk() {
    for v in vectors() {
        let query = pairs(&v.query);
        let headers = pairs(&v.headers);
        let signed = sign(
            &v.method,
            &v.host,
            &v.path,
            &query,
            &headers,
            &v.body,
            &v.access_key,
            &v.secret_key,
            v.time(),
        );
        assert_eq!(signed.request_uri, v.request_uri, "{}", v.name);
        let sent = pairs(&signed.headers);
        assert_eq!(authorization_of(&sent), v.authorization, "{}", v.name);
        // The JSON object loses the header order; `client::tests` checks it on V5.
        assert_eq!(
            sent.iter().copied().collect::<BTreeMap<_, _>>(),
            v.sent_headers().into_iter().collect::<BTreeMap<_, _>>(),
            "{}",
            v.name
        );
        assert_eq!(signed.headers.len(), v.headers_sent.len(), "{}", v.name);
    }
}

#[test]
fn client_output_verifies() {
    for v in vectors() {
        let query = pairs(&v.query);
        let headers = pairs(&v.headers);
        let date = v.time() + Duration::hours(5);
        let signed = sign(
            &v.method,
            &v.host,
            &v.path,
            &query,
            &headers,
            &v.body,
            &v.access_key,
            &v.secret_key,
            date,
        );
        let sent = pairs(&signed.headers);
        let auth = Authorization::parse(authorization_of(&sent)).unwrap();
        let (raw_path, raw_query) = signed
            .request_uri
            .split_once('?')
            .map_or((signed.request_uri.as_str(), None), |(path, query)| {
                (path, Some(query))
            });
        let req = Request {
            method: &v.method,
            raw_path,
            raw_query,
            headers: &sent,
            body: &v.body,
        };
        assert_eq!(
            verify(&req, &auth, &v.secret_key, date, MAX_SKEW),
            Ok(()),
            "{}",
            v.name
        );
    }
}

/// V2 (a JSON body) as the server received it, with `edit` applied to headers and body.
fn verify_v2(edit: impl FnOnce(&mut Vec<(String, String)>, &mut Vec<u8>)) -> Result<(), SignError> {
    let v = vectors().into_iter().nth(1).unwrap();
    let mut headers = v.headers_sent.clone();
    let mut body = v.body.clone();
    edit(&mut headers, &mut body);
    let headers = pairs(&headers);
    let auth = Authorization::parse(authorization_of(&headers)).unwrap();
    let req = Request {
        method: &v.method,
        raw_path: v.raw_path(),
        raw_query: v.raw_query(),
        headers: &headers,
        body: &body,
    };
    verify(&req, &auth, &v.secret_key, v.time(), MAX_SKEW)
}

fn set(headers: &mut [(String, String)], name: &str, value: &str) {
    let header = headers.iter_mut().find(|(n, _)| n == name).unwrap();
    header.1 = value.to_owned();
}

#[test]
fn untouched_v2_verifies() {
    assert_eq!(verify_v2(|_, _| {}), Ok(()));
    // Header case, order, extra unsigned headers and surrounding whitespace do not matter.
    assert_eq!(
        verify_v2(|headers, _| {
            headers.reverse();
            for (name, value) in headers.iter_mut() {
                // `Authorization::parse` is strict; HTTP parsers strip that whitespace anyway.
                if name != "Authorization" {
                    *value = format!(" {value}\t");
                }
                *name = name.to_ascii_lowercase();
            }
            headers.push(("accept".to_owned(), "*/*".to_owned()));
            headers.push(("content-length".to_owned(), "182".to_owned()));
        }),
        Ok(())
    );
}

#[test]
fn tampered_body() {
    assert_eq!(
        verify_v2(|_, body| body.push(b' ')),
        Err(SignError::BadSignature)
    );
    assert_eq!(
        verify_v2(|_, body| body.clear()),
        Err(SignError::BadSignature)
    );
}

#[test]
fn tampered_body_with_claimed_digest() {
    // Claiming the original body's digest does not let another body through.
    let original = vectors().into_iter().nth(1).unwrap().body;
    assert_eq!(
        verify_v2(|headers, body| {
            headers.push(("X-Sdk-Content-Sha256".to_owned(), sha256_hex(&original)));
            *body = b"{\"cert_brand\": \"OTHER\"}".to_vec();
        }),
        Err(SignError::BadSignature)
    );
    // Nor does switching to UNSIGNED-PAYLOAD after the fact.
    assert_eq!(
        verify_v2(|headers, body| {
            headers.push((
                "X-Sdk-Content-Sha256".to_owned(),
                UNSIGNED_PAYLOAD.to_owned(),
            ));
            body.push(b' ');
        }),
        Err(SignError::BadSignature)
    );
}

#[test]
fn tampered_signed_header() {
    assert_eq!(
        verify_v2(|headers, _| set(headers, "X-Domain-Id", "someoneelse0000000000000000000ab")),
        Err(SignError::BadSignature)
    );
    assert_eq!(
        verify_v2(|headers, _| set(headers, "Host", "evil.example")),
        Err(SignError::BadSignature)
    );
    // A date moved within the skew window still breaks the signature.
    assert_eq!(
        verify_v2(|headers, _| set(headers, "X-Sdk-Date", "20240102T030406Z")),
        Err(SignError::BadSignature)
    );
}

#[test]
fn tampered_authorization() {
    let v = vectors().into_iter().nth(1).unwrap();
    let headers = v.sent_headers();
    let req = Request {
        method: &v.method,
        raw_path: v.raw_path(),
        raw_query: v.raw_query(),
        headers: &headers,
        body: &v.body,
    };
    let mut auth = Authorization::parse(&v.authorization).unwrap();
    auth.signature[31] ^= 1;
    assert_eq!(
        verify(&req, &auth, &v.secret_key, v.time(), MAX_SKEW),
        Err(SignError::BadSignature)
    );

    // Dropping a signed header from the list changes the canonical request.
    let mut auth = Authorization::parse(&v.authorization).unwrap();
    auth.signed_headers.retain(|name| *name != "user-agent");
    assert_eq!(
        verify(&req, &auth, &v.secret_key, v.time(), MAX_SKEW),
        Err(SignError::BadSignature)
    );

    // Another method or path.
    let mut other = req;
    other.method = "PUT";
    let auth = Authorization::parse(&v.authorization).unwrap();
    assert_eq!(
        verify(&other, &auth, &v.secret_key, v.time(), MAX_SKEW),
        Err(SignError::BadSignature)
    );
    let mut other = req;
    other.raw_path = "/v3/scm/certificates/import";
    assert_eq!(
        verify(&other, &auth, &v.secret_key, v.time(), MAX_SKEW),
        Err(SignError::BadSignature)
    );
    let mut other = req;
    other.raw_query = Some("a=1");
    assert_eq!(
        verify(&other, &auth, &v.secret_key, v.time(), MAX_SKEW),
        Err(SignError::BadSignature)
    );
}

#[test]
fn date_must_be_present_signed_and_valid() {
    // Sign a request whose signed headers leave the date out, the way a careless client might.
    let v = vectors().into_iter().nth(1).unwrap();
    let headers = v.sent_headers();
    let signed_headers = ["content-type", "host", "user-agent", "x-domain-id"];
    let req = Request {
        method: &v.method,
        raw_path: v.raw_path(),
        raw_query: v.raw_query(),
        headers: &headers,
        body: &v.body,
    };
    let canonical = canonical_request(&req, &signed_headers).unwrap();
    let auth = Authorization {
        access_key: &v.access_key,
        signed_headers: signed_headers.to_vec(),
        signature: signature(&v.secret_key, &string_to_sign(&v.timestamp, &canonical)),
    };
    assert_eq!(
        verify(&req, &auth, &v.secret_key, v.time(), MAX_SKEW),
        Err(SignError::UnsignedDate)
    );

    assert_eq!(
        verify_v2(|headers, _| headers.retain(|(name, _)| name != "X-Sdk-Date")),
        Err(SignError::MissingDate)
    );
    assert_eq!(
        verify_v2(|headers, _| headers.push(("x-sdk-date".to_owned(), v.timestamp.clone()))),
        Err(SignError::DuplicateHeader(DATE_HEADER.to_owned()))
    );
    assert_eq!(
        verify_v2(|headers, _| set(headers, "X-Sdk-Date", "2024-01-02T03:04:05Z")),
        Err(SignError::BadDate)
    );
}

#[test]
fn duplicate_signed_header() {
    assert_eq!(
        verify_v2(|headers, _| headers.push(("host".to_owned(), "evil.example".to_owned()))),
        Err(SignError::DuplicateHeader("host".to_owned()))
    );
    assert_eq!(
        verify_v2(|headers, _| headers.retain(|(name, _)| name != "User-Agent")),
        Err(SignError::MissingSignedHeader("user-agent".to_owned()))
    );
}

#[test]
fn plus_in_query_round_trip() {
    let secret = SecretKey::new("sk".to_owned());
    let date = parse_sdk_date("20240102T030405Z").unwrap();
    let signed = sign(
        "GET",
        "example.com",
        "/v3/scm/certificates",
        &[("search", "a+b"), ("name", "x y")],
        &[("Content-Type", "application/json")],
        b"",
        "AK",
        &secret,
        date,
    );
    assert_eq!(
        signed.request_uri,
        "/v3/scm/certificates?name=x%20y&search=a%2Bb"
    );
    let headers = pairs(&signed.headers);
    let auth = Authorization::parse(authorization_of(&headers)).unwrap();
    let at = |raw_query| {
        let req = Request {
            method: "GET",
            raw_path: "/v3/scm/certificates",
            raw_query: Some(raw_query),
            headers: &headers,
            body: b"",
        };
        verify(&req, &auth, &secret, date, MAX_SKEW)
    };
    assert_eq!(at("name=x%20y&search=a%2Bb"), Ok(()));
    // A literal `+` is a plus sign, not a space, so it matches what the client signed.
    assert_eq!(at("search=a+b&name=x%20y"), Ok(()));
    assert_eq!(at("name=x+y&search=a%2Bb"), Err(SignError::BadSignature));
    assert_eq!(at("name=x%20y&search=a%20b"), Err(SignError::BadSignature));
}
