//! Wire input into typed requests: JSON bodies (naming the bad field), the list query, and the
//! push bodies of v2 and v3.

use bytes::Bytes;
use scm_core::deploy::PushService;
use scm_core::{DomainError, ListRequest};
use scm_proto::CertificateStatus;
use scm_proto::v2::PushBody as V2PushBody;
use scm_proto::v3::PushBody as V3PushBody;
use scm_store::{ListQuery, SortKey};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Parses a JSON body, which must be one JSON object and nothing after it, whose text is clean
/// (see [`check_text`]); a type error names its JSON path, anything else names `body`.
///
/// The body is parsed twice: once into a [`serde_json::Value`], whose every string (and member
/// name) is checked before anything is deserialized, then into `T` from the bytes, so that `T`
/// gets serde's own checks of the bytes (a field given twice is refused, not overwritten).
pub(crate) fn json<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    json_value(body)?;
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(bad_json)?;
    de.end().map_err(|e| ApiError::BadJson {
        field: "body".into(),
        reason: format!("has data after the JSON object ({e})"),
    })?;
    Ok(value)
}

/// The body as one JSON object, its text checked: what [`json`] checks before it deserializes.
/// Bytes that are not UTF-8 (anywhere), a syntax error, a body that is not an object or has
/// data after it: `SCM.0005` naming `body`.
pub(crate) fn json_value(body: &Bytes) -> Result<serde_json::Value, ApiError> {
    json_value_of(body, b'{')
}

/// [`json_value`] of a body that must be a JSON array (the notification operations').
pub(crate) fn json_array_value(body: &Bytes) -> Result<serde_json::Value, ApiError> {
    json_value_of(body, b'[')
}

fn json_value_of(body: &Bytes, open: u8) -> Result<serde_json::Value, ApiError> {
    let bad_body = |reason: String| ApiError::BadJson {
        field: "body".into(),
        reason,
    };
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(bad_body("is required".into())),
        // serde would map an array onto a struct's fields by position (and an object must not
        // pass for a list).
        Some(b) if *b == open => {}
        Some(_) if open == b'[' => return Err(bad_body("must be a JSON array".into())),
        Some(_) => return Err(bad_body("must be a JSON object".into())),
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: serde_json::Value = serde::Deserialize::deserialize(&mut de)
        .map_err(|e| bad_body(format!("is not valid JSON ({e})")))?;
    de.end()
        .map_err(|e| bad_body(format!("has data after the JSON object ({e})")))?;
    let mut path = String::new();
    check_value(&value, &mut path, false)?;
    Ok(value)
}

/// Fields that carry PEM: they may contain line breaks (`\n`, `\r`), and nothing else that
/// [`is_forbidden`] refuses.
const PEM_FIELDS: &[&str] = &[
    "csr",
    "certificate",
    "certificate_chain",
    "private_key",
    "enc_certificate",
    "enc_private_key",
];

/// Characters no request text may contain: the C0 controls (U+0000–U+001F), DEL (U+007F), the
/// C1 controls (U+0080–U+009F), and the bidirectional formatting characters: ARABIC LETTER MARK
/// (U+061C), LEFT-TO-RIGHT and RIGHT-TO-LEFT MARK (U+200E, U+200F), the embeddings and
/// overrides (U+202A–U+202E) and the isolates (U+2066–U+2069). They would be signed into a
/// certificate's subject, written to logs, or shown reordered to whoever reads them.
pub(crate) fn is_forbidden(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{61c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

/// Refuses `text` if it contains a character of [`is_forbidden`] (line breaks allowed in `pem`
/// text), naming `field` and the code point (never the text itself).
pub(crate) fn check_text(text: &str, field: &str, pem: bool) -> Result<(), ApiError> {
    let allowed = |c: char| pem && matches!(c, '\n' | '\r');
    match text.chars().find(|&c| is_forbidden(c) && !allowed(c)) {
        None => Ok(()),
        Some(c) => Err(ApiError::BadJson {
            field: if field.is_empty() { "body" } else { field }.into(),
            reason: format!(
                "must not contain control or bidirectional formatting characters (U+{:04X})",
                u32::from(c)
            ),
        }),
    }
}

/// Checks every string of `value` and every member name, `path` being the JSON path of `value`
/// (`tags[2].value`; empty at the root). A bad member name is refused naming the object that
/// holds it (`body` at the root), so that the name is never echoed.
fn check_value(value: &serde_json::Value, path: &mut String, pem: bool) -> Result<(), ApiError> {
    match value {
        serde_json::Value::String(s) => check_text(s, path, pem),
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                check_value(item, path, false)?;
                path.truncate(len);
            }
            Ok(())
        }
        serde_json::Value::Object(members) => {
            for (name, item) in members {
                check_text(name, path, false)?;
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(name);
                check_value(item, path, PEM_FIELDS.contains(&name.as_str()))?;
                path.truncate(len);
            }
            Ok(())
        }
        serde_json::Value::Null | serde_json::Value::Bool(_) | serde_json::Value::Number(_) => {
            Ok(())
        }
    }
}

/// Like [`json`], from an already parsed value.
pub(crate) fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(bad_json)
}

fn bad_json(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    if inner.is_syntax() || inner.is_eof() || path == "." {
        ApiError::BadJson {
            field: "body".into(),
            reason: format!("is not valid JSON of the expected shape ({inner})"),
        }
    } else {
        ApiError::BadJson {
            field: path,
            reason: format!("has the wrong type ({inner})"),
        }
    }
}

/// The decoded `key=value` pairs of a query string. A query that is not UTF-8 once decoded is
/// `SCM.0005` naming `query`; a value with a character of [`is_forbidden`] names its parameter
/// (a name with one names `query`). Checked for every parameter, known or not, in this one place
/// for every route.
pub(crate) fn query_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    for part in raw.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| ApiError::BadJson {
                    field: "query".into(),
                    reason: "is not valid UTF-8".into(),
                })
        };
        let (k, v) = (decode(k)?, decode(v)?);
        check_text(&k, "query", false)?;
        check_text(&v, if k.is_empty() { "query" } else { &k }, false)?;
        out.push((k, v));
    }
    Ok(out)
}

/// The documented default of ListCertificates' `expired_days_since`.
pub(crate) const DEFAULT_EXPIRED_DAYS_SINCE: i64 = 0;

/// Parses the query of `GET /v3/scm/certificates`.
///
/// `enterprise_project_id` filters unless `all`. `owned_by_self` is accepted: nothing is shared
/// between accounts, so every certificate listed is the caller's own. Unknown keys are ignored.
/// `expired_days_since` absent is its documented default, 0 (certificates valid now, or not
/// issued yet), except when `status` asks for `EXPIRED` certificates, which no window of 0 days
/// could match: there the window applies only when given.
pub(crate) fn list_request(pairs: &[(String, String)]) -> Result<ListRequest, DomainError> {
    let mut q = ListQuery::default();
    let mut expired_days_since = None;
    let int = |k: &str, v: &str, lo: i64, hi: i64| -> Result<i64, DomainError> {
        v.parse::<i64>()
            .ok()
            .filter(|n| (lo..=hi).contains(n))
            .ok_or_else(|| {
                DomainError::invalid(k, format!("must be an integer between {lo} and {hi}"))
            })
    };
    let boolean = |k: &str, v: &str| -> Result<bool, DomainError> {
        match v {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(DomainError::invalid(k, "must be true or false")),
        }
    };
    for (k, v) in pairs {
        // Documented with a length from 0: the empty value is the absent one.
        if v.is_empty()
            && matches!(
                k.as_str(),
                "sort_dir" | "sort_key" | "enterprise_project_id"
            )
        {
            continue;
        }
        match k.as_str() {
            "limit" => q.limit = u32::try_from(int(k, v, 10, 50)?).unwrap_or(10),
            // Documented max is 100; we accept any item offset (older pages set no max).
            "offset" => q.offset = u32::try_from(int(k, v, 0, 1_000_000)?).unwrap_or(0),
            "sort_dir" => {
                q.ascending = match v.as_str() {
                    "ASC" => true,
                    "DESC" => false,
                    _ => return Err(DomainError::invalid(k, "must be ASC or DESC")),
                }
            }
            "sort_key" => {
                q.sort_key = match v.as_str() {
                    "certExpiredTime" => SortKey::ExpiredTime,
                    "certStatus" => SortKey::Status,
                    "certUpdateTime" => SortKey::UpdateTime,
                    _ => {
                        return Err(DomainError::invalid(
                            k,
                            "must be certExpiredTime, certStatus or certUpdateTime",
                        ));
                    }
                }
            }
            "status" => {
                q.status = match v.as_str() {
                    "ALL" | "" => None,
                    s => Some(s.parse().map_err(|()| {
                        DomainError::invalid(k, "is not a known certificate status")
                    })?),
                }
            }
            "content" => {
                if v.chars().count() > 255 {
                    return Err(DomainError::invalid(k, "must be at most 255 characters"));
                }
                q.content = Some(v.clone()).filter(|s| !s.is_empty());
            }
            "deploy_support" => q.deploy_support = boolean(k, v)?,
            "owned_by_self" => {
                boolean(k, v)?;
            }
            "expired_days_since" => expired_days_since = Some(int(k, v, 0, 1095)?),
            "enterprise_project_id" => {
                let e = scm_core::purchase::enterprise_project(v, k)?;
                q.enterprise_project_id = Some(e).filter(|e| e != "all");
            }
            _ => {}
        }
    }
    let expired_days_since = expired_days_since
        .or((q.status != Some(CertificateStatus::Expired)).then_some(DEFAULT_EXPIRED_DAYS_SINCE));
    Ok(ListRequest {
        query: q,
        expired_days_since,
    })
}

/// v2 push body → service and region. The one rule of both versions: services are matched
/// without regard to case, and the region is required, except that v3 accepts none for the
/// global CDN (Terraform sends none); the v2 page marks `remote_project` mandatory for every
/// service, so v2 requires it for CDN too.
pub(crate) fn v2_push(body: &V2PushBody) -> Result<(PushService, Option<String>), DomainError> {
    let raw = body
        .service_type
        .as_deref()
        .ok_or_else(|| DomainError::invalid("service_type", "is required"))?;
    let service = PushService::parse(raw).ok_or_else(|| {
        DomainError::invalid("service_type", "must be one of CDN, WAF, ELB, Enhance_ELB")
    })?;
    if body
        .remote_project
        .as_deref()
        .is_none_or(|r| r.trim().is_empty())
    {
        return Err(DomainError::invalid("remote_project", "is required"));
    }
    let region = region(body.remote_project.as_deref(), "remote_project", service)?;
    Ok((service, region))
}

/// v3 push body → service and region (the rule of [`v2_push`]).
pub(crate) fn v3_push(body: &V3PushBody) -> Result<(PushService, Option<String>), DomainError> {
    let raw = body
        .target_service
        .as_deref()
        .ok_or_else(|| DomainError::invalid("target_service", "is required"))?;
    if raw.is_empty() || raw.chars().count() > 64 {
        return Err(DomainError::invalid(
            "target_service",
            "must be 1 to 64 characters",
        ));
    }
    let service = PushService::parse(raw)
        .ok_or_else(|| DomainError::invalid("target_service", "must be one of CDN, WAF, ELB"))?;
    let region = region(body.target_project.as_deref(), "target_project", service)?;
    Ok((service, region))
}

fn region(
    raw: Option<&str>,
    field: &str,
    service: PushService,
) -> Result<Option<String>, DomainError> {
    let region = raw.map(str::trim).filter(|r| !r.is_empty());
    match region {
        None if service.is_global() => Ok(None),
        None => Err(DomainError::invalid(field, "is required")),
        Some(r) => {
            if r.chars().count() > 255
                || !r
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(DomainError::invalid(
                    field,
                    "must be a region name such as cn-north-4",
                ));
            }
            Ok(Some(r.to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        query_pairs(Some(q)).unwrap()
    }

    #[test]
    fn list_queries_parse_and_refusals_name_the_parameter() {
        let r = list_request(&pairs(
            "limit=50&offset=20&sort_dir=ASC&sort_key=certExpiredTime&status=ISSUED&content=a%20b\
             &expired_days_since=7&enterprise_project_id=all&owned_by_self=true",
        ))
        .unwrap();
        assert_eq!(
            (r.query.limit, r.query.offset, r.query.ascending),
            (50, 20, true)
        );
        assert_eq!(r.query.sort_key, SortKey::ExpiredTime);
        assert_eq!(r.query.content.as_deref(), Some("a b"));
        assert_eq!(r.expired_days_since, Some(7));
        assert_eq!(r.query.enterprise_project_id, None);
        for (q, field) in [
            ("limit=9", "limit"),
            ("limit=x", "limit"),
            ("sort_dir=up", "sort_dir"),
            ("sort_key=name", "sort_key"),
            ("status=NOPE", "status"),
            ("deploy_support=1", "deploy_support"),
            ("expired_days_since=1096", "expired_days_since"),
            ("enterprise_project_id=prod", "enterprise_project_id"),
        ] {
            match list_request(&pairs(q)) {
                Err(DomainError::InvalidParameter { field: f, .. }) => assert_eq!(f, field, "{q}"),
                other => panic!("{q}: {other:?}"),
            }
        }
        assert!(query_pairs(Some("content=%ff")).is_err());
        // `expired_days_since` absent is its documented default, 0 (expired certificates left
        // out), unless the status asked for is EXPIRED.
        assert_eq!(list_request(&[]).unwrap().expired_days_since, Some(0));
        assert_eq!(
            list_request(&pairs("status=ISSUED"))
                .unwrap()
                .expired_days_since,
            Some(0)
        );
        assert_eq!(
            list_request(&pairs("status=EXPIRED"))
                .unwrap()
                .expired_days_since,
            None
        );
        assert_eq!(
            list_request(&pairs("status=EXPIRED&expired_days_since=30"))
                .unwrap()
                .expired_days_since,
            Some(30)
        );
        // Empty values of the fields documented from length 0 are the defaults.
        let r = list_request(&pairs("sort_dir=&sort_key=&enterprise_project_id=")).unwrap();
        assert_eq!(r, list_request(&[]).unwrap());
    }

    /// Every parameter the OpenAPI description gives the list (the properties of
    /// `ListCertificatesQuery`) is one this parser reads: a bad value is refused naming it.
    #[test]
    fn the_described_list_parameters_are_the_parsed_ones() {
        let schema = schemars::schema_for!(scm_proto::v3::ListCertificatesQuery);
        let props = schema.as_value()["properties"].as_object().unwrap();
        assert_eq!(props.len(), 10);
        // Too long for `content`, and no integer, boolean, sort, status or project.
        let bad = "a".repeat(256);
        for name in props.keys() {
            match list_request(&[(name.clone(), bad.clone())]) {
                Err(DomainError::InvalidParameter { field, .. }) => assert_eq!(&field, name),
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    /// The field a refusal names.
    fn named(r: Result<impl std::fmt::Debug, ApiError>) -> String {
        match r {
            Err(ApiError::BadJson { field, .. }) => field,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn forbidden_characters_are_exactly_the_listed_ranges() {
        let listed = |c: u32| matches!(c, 0..=0x1f | 0x7f..=0x9f | 0x61c | 0x200e | 0x200f | 0x202a..=0x202e | 0x2066..=0x2069);
        for c in (0..=0x3000).filter_map(char::from_u32) {
            assert_eq!(
                is_forbidden(c),
                listed(u32::from(c)),
                "U+{:04X}",
                u32::from(c)
            );
        }
        // Neighbours and everyday text pass.
        for ok in [
            ' ', '~', '\u{a0}', '\u{61b}', '\u{61d}', '\u{200d}', '\u{2010}', '\u{2029}',
            '\u{202f}', '\u{2065}', '\u{206a}', '华', 'é', '😀',
        ] {
            assert!(!is_forbidden(ok), "{ok:?}");
        }
    }

    #[test]
    fn body_text_is_checked_by_json_path_with_line_breaks_only_in_pem() {
        let v = |s: &[u8]| json_value(&Bytes::copy_from_slice(s));
        let cases: [(&[u8], &str); 16] = [
            (br#"{"company_name": "a\u0000b"}"#, "company_name"),
            (br#"{"company_name": "a\nb"}"#, "company_name"),
            (br#"{"company_name": "\u001b[31m"}"#, "company_name"),
            (br#"{"company_name": "\u202e"}"#, "company_name"),
            (
                br#"{"tags": [{"key": "a"}, {"key": "b"}, {"key": "c", "value": "\u2066"}]}"#,
                "tags[2].value",
            ),
            (br#"{"tags": [{"key": "\u0085"}]}"#, "tags[0].key"),
            (br#"{"a": {"b": ["x", "\u007f"]}}"#, "a.b[1]"),
            (br#"{"csr": "-----BEGIN\r\n\t"}"#, "csr"),
            (br#"{"private_key": "\u200f"}"#, "private_key"),
            // Only a PEM field's own string may break lines.
            (br#"{"tags": [{"key": "a\nb"}]}"#, "tags[0].key"),
            // A bad member name is not echoed: the object holding it is named.
            (br#"{"a\u0000": "x"}"#, "body"),
            (br#"{"tags": [{"k\u001b": 1}]}"#, "tags[0]"),
            // Not UTF-8, inside a string or out; a lone surrogate; not an object.
            (b"{\"company_name\": \"\xff\"}", "body"),
            (b"{\"company_name\": \"a\"}\xff", "body"),
            (br#"{"company_name": "\ud800"}"#, "body"),
            (b"[1]", "body"),
        ];
        for (text, field) in cases {
            assert_eq!(named(v(text)), field, "{}", String::from_utf8_lossy(text));
        }
        // A field given twice is refused by the typed parse, not overwritten.
        let twice =
            Bytes::from_static(br#"{"target_service": "ELB", "target_service": "W\u0000"}"#);
        assert_eq!(named(json::<V3PushBody>(&twice)), "target_service");
        let twice = Bytes::from_static(br#"{"target_service": "ELB", "target_service": "WAF"}"#);
        assert!(json::<V3PushBody>(&twice).is_err());
        for ok in [
            r#"{"csr": "-----BEGIN CERTIFICATE REQUEST-----\r\nMII\n-----END-----\n"}"#,
            r#"{"company_name": "华为技术有限公司", "tags": [{"key": "环境", "value": "生产"}]}"#,
            r#"{"company_name": "O'Brien & Söhne", "n": 1, "b": true, "z": null}"#,
        ] {
            assert!(v(ok.as_bytes()).is_ok(), "{ok}");
        }
    }

    #[test]
    fn query_text_is_checked_by_parameter() {
        for (q, field) in [
            ("content=a%00b", "content"),
            ("content=%0A", "content"),
            ("status=%1B", "status"),
            ("content=%E2%80%AE", "content"),
            ("unknown=%C2%85", "unknown"),
            ("a%00=1", "query"),
            ("=%07", "query"),
            ("content=%ff", "query"),
            ("content=%C0%80", "query"),
        ] {
            assert_eq!(named(query_pairs(Some(q))), field, "{q}");
        }
        assert_eq!(pairs("content=%E5%8D%8E")[0].1, "华");
    }

    #[test]
    fn push_bodies() {
        let v2 = |s: Option<&str>, r: Option<&str>| {
            v2_push(&V2PushBody {
                service_type: s.map(Into::into),
                remote_project: r.map(Into::into),
            })
        };
        assert!(
            v2(Some("CDN"), None).is_err(),
            "the v2 page requires remote_project"
        );
        assert_eq!(
            v2(Some("waf"), Some("r")).unwrap(),
            (PushService::Waf, Some("r".into())),
            "services are matched without regard to case, as on v3"
        );
        assert!(v2(Some("ELB"), None).is_err(), "region required");
        let v3 = v3_push(&V3PushBody {
            target_service: Some("waf".into()),
            target_project: Some("cn-north-4".into()),
        })
        .unwrap();
        assert_eq!(v3, (PushService::Waf, Some("cn-north-4".into())));
    }
}
