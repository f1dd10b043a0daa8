//! The certificate list query.

use scm_store::{ListQuery, SortKey};

use crate::DomainError;

/// Parses the query of `GET /v3/scm/certificates` (`now_ms` anchors `expired_days_since`).
///
/// `expired_days_since=N` leaves out certificates that expired more than N days ago; without the
/// parameter nothing is left out for having expired. `enterprise_project_id` filters unless `all`.
/// `owned_by_self` is accepted: nothing is shared between accounts, so every certificate listed is
/// the caller's own.
pub fn parse_list_query(pairs: &[(String, String)], now_ms: i64) -> Result<ListQuery, DomainError> {
    let mut q = ListQuery::default();
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
            "expired_days_since" => {
                let days = int(k, v, 0, 1095)?;
                q.expired_after_ms = Some(now_ms - days * 86_400_000);
            }
            "enterprise_project_id" => {
                let e = crate::purchase::enterprise_project(v, k)?;
                q.enterprise_project_id = Some(e).filter(|e| e != "all");
            }
            _ => {}
        }
    }
    Ok(q)
}
