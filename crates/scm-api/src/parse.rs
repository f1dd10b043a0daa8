//! Wire input into typed requests: JSON bodies (naming the bad field), the list query, and the
//! push bodies of v2 and v3.

use bytes::Bytes;
use scm_core::deploy::PushService;
use scm_core::{DomainError, ListRequest};
use scm_proto::v2::PushBody as V2PushBody;
use scm_proto::v3::PushBody as V3PushBody;
use scm_store::{ListQuery, SortKey};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Parses a JSON body, which must be one JSON object and nothing after it; a type error names its
/// JSON path, anything else names `body`.
pub(crate) fn json<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let bad_body = |reason: String| ApiError::BadJson {
        field: "body".into(),
        reason,
    };
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(bad_body("is required".into())),
        // serde would map an array onto a struct's fields by position.
        Some(b'{') => {}
        Some(_) => return Err(bad_body("must be a JSON object".into())),
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(bad_json)?;
    de.end()
        .map_err(|e| bad_body(format!("has data after the JSON object ({e})")))?;
    Ok(value)
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

/// The decoded `key=value` pairs of a query string.
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
        out.push((decode(k)?, decode(v)?));
    }
    Ok(out)
}

/// Parses the query of `GET /v3/scm/certificates`.
///
/// `enterprise_project_id` filters unless `all`. `owned_by_self` is accepted: nothing is shared
/// between accounts, so every certificate listed is the caller's own. Unknown keys are ignored.
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
    Ok(ListRequest {
        query: q,
        expired_days_since,
    })
}

/// v2 push body → service and region (services matched exactly, as the v2 page spells them).
pub(crate) fn v2_push(body: &V2PushBody) -> Result<(PushService, Option<String>), DomainError> {
    let raw = body
        .service_type
        .as_deref()
        .ok_or_else(|| DomainError::invalid("service_type", "is required"))?;
    let service = PushService::parse(raw)
        .filter(|s| s.as_str() == raw.trim())
        .ok_or_else(|| {
            DomainError::invalid("service_type", "must be one of CDN, WAF, ELB, Enhance_ELB")
        })?;
    let region = region(body.remote_project.as_deref(), "remote_project", service)?;
    Ok((service, region))
}

/// v3 push body → service and region (services matched without regard to case).
pub(crate) fn v3_push(body: &V3PushBody) -> Result<(PushService, Option<String>), DomainError> {
    let raw = body
        .target_service
        .as_deref()
        .ok_or_else(|| DomainError::invalid("target_service", "is required"))?;
    if raw.is_empty() || raw.len() > 64 {
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
            if r.len() > 255
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
    }

    #[test]
    fn push_bodies() {
        let v2 = |s: Option<&str>, r: Option<&str>| {
            v2_push(&V2PushBody {
                service_type: s.map(Into::into),
                remote_project: r.map(Into::into),
            })
        };
        assert_eq!(v2(Some("CDN"), None).unwrap(), (PushService::Cdn, None));
        assert!(v2(Some("waf"), Some("r")).is_err(), "v2 matches exactly");
        assert!(v2(Some("ELB"), None).is_err(), "region required");
        let v3 = v3_push(&V3PushBody {
            target_service: Some("waf".into()),
            target_project: Some("cn-north-4".into()),
        })
        .unwrap();
        assert_eq!(v3, (PushService::Waf, Some("cn-north-4".into())));
    }
}
