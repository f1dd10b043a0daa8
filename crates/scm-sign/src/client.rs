//! Client-side signing, reproducing the Python SDK signer.

use time::OffsetDateTime;

use crate::canonical::{assemble, encode, encode_query, payload_hash};
use crate::{
    ALGORITHM, CONTENT_SHA256_HEADER, SecretKey, UNSIGNED_PAYLOAD, format_sdk_date, signature,
    string_to_sign,
};

/// A signed request, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The request target: the encoded path, then `?` and the canonical query when there is one.
    /// The SDK sends exactly the canonical query, so a server sees it already canonical.
    pub request_uri: String,
    /// Every header to send, in the SDK's order: the given headers with trimmed values, then
    /// `X-Sdk-Content-Sha256`, `X-Sdk-Date` and `Host` when added, then `Authorization`. Headers
    /// the HTTP library adds afterwards (`Content-Length`, `Accept`, …) are not signed.
    pub headers: Vec<(String, String)>,
}

/// Signs a request the way the Huawei Cloud Python SDK does, byte for byte.
///
/// * `host` is the endpoint's `host[:port]`, sent as `Host` unless `headers` has one already.
/// * `path` is unencoded: each `/`-separated segment is percent-encoded (RFC 3986 unreserved
///   characters kept), so a segment cannot itself contain `/`.
/// * `query` pairs are unencoded; they are sorted by key then value and sent in canonical form.
///   Booleans are expected as `true`/`false`, as the SDK renders them.
/// * `headers` are the operation and credential headers (`Content-Type`, `User-Agent`,
///   `X-Domain-Id` or `X-Project-Id`, `X-Security-Token`). Values are sent trimmed. An
///   `X-Sdk-Date` among them is overwritten in place with `sdk_date`, so the signature always
///   matches the date sent; an `Authorization` among them is dropped and replaced.
///
/// As in the SDK, a `Content-Type` that starts with neither `application/json` nor
/// `application/bson` adds `X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD` and the body goes unhashed;
/// every header whose name has no `_` is signed.
#[allow(clippy::too_many_arguments)] // Mirrors the SDK's request fields one for one.
pub fn sign(
    method: &str,
    host: &str,
    path: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
    body: &[u8],
    access_key: &str,
    secret: &SecretKey,
    sdk_date: OffsetDateTime,
) -> Signed {
    let sdk_date = format_sdk_date(sdk_date);
    let mut sent = headers
        .iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("authorization"))
        .map(|(name, value)| ((*name).to_owned(), value.trim().to_owned()))
        .collect::<Vec<_>>();

    let hashes_body = last_header(&sent, "content-type").is_none_or(|content_type| {
        content_type.is_empty()
            || content_type.starts_with("application/json")
            || content_type.starts_with("application/bson")
    });
    if !hashes_body {
        set_header(&mut sent, "X-Sdk-Content-Sha256", UNSIGNED_PAYLOAD);
    }
    set_header(&mut sent, "X-Sdk-Date", &sdk_date);
    if last_header(&sent, "host").is_none() {
        sent.push(("Host".to_owned(), host.to_owned()));
    }

    // As in the SDK: proxies such as nginx drop names with `_` by default.
    let mut signed_headers = sent
        .iter()
        .filter(|(name, _)| !name.contains('_'))
        .map(|(name, _)| name.to_ascii_lowercase())
        .collect::<Vec<_>>();
    signed_headers.sort();
    signed_headers.dedup();
    let signed_headers = signed_headers
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>();

    let header_lines = signed_headers
        .iter()
        .map(|name| format!("{name}:{}", last_header(&sent, name).unwrap_or("")))
        .collect::<Vec<_>>();

    let mut path = path.split('/').map(encode).collect::<Vec<_>>().join("/");
    if path.is_empty() {
        path.push('/');
    }
    let mut canonical_uri = path.clone();
    if !canonical_uri.ends_with('/') {
        canonical_uri.push('/');
    }

    let mut query = query.to_vec();
    query.sort();
    let query = encode_query(query.into_iter());

    let canonical = assemble(
        method,
        &canonical_uri,
        &query,
        &header_lines,
        &signed_headers,
        &payload_hash(last_header(&sent, CONTENT_SHA256_HEADER), body),
    );
    let signature = signature(secret, &string_to_sign(&sdk_date, &canonical));
    sent.push((
        "Authorization".to_owned(),
        format!(
            "{ALGORITHM} Access={access_key}, SignedHeaders={}, Signature={}",
            signed_headers.join(";"),
            hex::encode(signature)
        ),
    ));

    let request_uri = match query.is_empty() {
        true => path,
        false => format!("{path}?{query}"),
    };
    Signed {
        request_uri,
        headers: sent,
    }
}

/// The value of the last header called `name`, in any case: the one a Python dict would keep.
fn last_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .rev()
        .find(|(header, _)| header.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// Overwrites every header called `name` in place, or appends one.
fn set_header(headers: &mut Vec<(String, String)>, name: &str, value: &str) {
    let mut found = false;
    for (header, old) in headers.iter_mut() {
        if header.eq_ignore_ascii_case(name) {
            value.clone_into(old);
            found = true;
        }
    }
    if !found {
        headers.push((name.to_owned(), value.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn secret() -> SecretKey {
        SecretKey::new("SKtestSKtestSKtestSKtestSKtestSKtest0001".to_owned())
    }

    #[test]
    fn header_order_matches_the_sdk() {
        // V5 of the signing vectors, headers in the order the SDK builds them.
        let signed = sign(
            "PUT",
            "scm.cn-north-4.myhuaweicloud.com",
            "/v3/scm/csr/abc",
            &[],
            &[
                ("Content-Type", "application/octet-stream"),
                ("X-Sdk-Date", "20240102T030405Z"),
                ("X_Custom_Header", "ignored-in-signature"),
                ("X-Custom", "  padded value  "),
                ("X-Domain-Id", "d0m41n1d0000000000000000000000ab"),
            ],
            b"\x00\x01binary",
            "AKTESTAKTESTAKTEST01",
            &secret(),
            datetime!(2024-01-02 03:04:05 UTC),
        );
        let headers = signed
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect::<Vec<_>>();
        assert_eq!(
            headers,
            [
                ("Content-Type", "application/octet-stream"),
                ("X-Sdk-Date", "20240102T030405Z"),
                ("X_Custom_Header", "ignored-in-signature"),
                ("X-Custom", "padded value"),
                ("X-Domain-Id", "d0m41n1d0000000000000000000000ab"),
                ("X-Sdk-Content-Sha256", "UNSIGNED-PAYLOAD"),
                ("Host", "scm.cn-north-4.myhuaweicloud.com"),
                (
                    "Authorization",
                    "SDK-HMAC-SHA256 Access=AKTESTAKTESTAKTEST01, SignedHeaders=content-type;host;x-custom;x-domain-id;x-sdk-content-sha256;x-sdk-date, Signature=ff69dccb33ea2688b112423171193d67a128a2c5ea048353abefa7aa78803dad"
                ),
            ]
        );
        assert_eq!(signed.request_uri, "/v3/scm/csr/abc");
    }

    #[test]
    fn date_and_host_are_added_and_date_overrides() {
        let date = datetime!(2024-01-02 03:04:05 UTC);
        let added = sign(
            "GET",
            "example.com",
            "/v3/scm/certificates",
            &[],
            &[("Content-Type", "application/json")],
            b"",
            "AK",
            &secret(),
            date,
        );
        assert_eq!(
            added.headers[1..3],
            [
                ("X-Sdk-Date".to_owned(), "20240102T030405Z".to_owned()),
                ("Host".to_owned(), "example.com".to_owned()),
            ]
        );

        // A stale date among the headers is replaced in place; a given Host is kept.
        let replaced = sign(
            "GET",
            "ignored.example",
            "/v3/scm/certificates",
            &[],
            &[
                ("x-sdk-date", "19990101T000000Z"),
                ("Content-Type", "application/json"),
                ("host", "example.com"),
                ("Authorization", "stale"),
            ],
            b"",
            "AK",
            &secret(),
            date,
        );
        assert_eq!(
            replaced.headers[..3],
            [
                ("x-sdk-date".to_owned(), "20240102T030405Z".to_owned()),
                ("Content-Type".to_owned(), "application/json".to_owned()),
                ("host".to_owned(), "example.com".to_owned()),
            ]
        );
        assert_eq!(replaced.headers.len(), 4);
        // Header order and name case do not change the signature.
        assert_eq!(replaced.headers[3], added.headers[3]);
    }

    #[test]
    fn path_segments_and_query_are_encoded() {
        let signed = sign(
            "GET",
            "example.com",
            "/v3/scm/csr/my csr+ü",
            &[("q", "a+b c"), ("flag", "true")],
            &[],
            b"",
            "AK",
            &secret(),
            datetime!(2024-01-02 03:04:05 UTC),
        );
        assert_eq!(
            signed.request_uri,
            "/v3/scm/csr/my%20csr%2B%C3%BC?flag=true&q=a%2Bb%20c"
        );
    }

    #[test]
    fn json_and_bson_bodies_are_hashed() {
        for content_type in [
            "application/json",
            "application/json;charset=UTF-8",
            "application/bson",
            "",
        ] {
            let signed = sign(
                "POST",
                "example.com",
                "/",
                &[],
                &[("Content-Type", content_type)],
                b"{}",
                "AK",
                &secret(),
                datetime!(2024-01-02 03:04:05 UTC),
            );
            assert!(
                !signed
                    .headers
                    .iter()
                    .any(|(name, _)| name == "X-Sdk-Content-Sha256"),
                "{content_type:?}"
            );
        }
    }
}
