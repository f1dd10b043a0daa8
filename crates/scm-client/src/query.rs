//! The query of `GET /v3/scm/certificates`.

/// The query parameters of `ListCertificates`. Unset ones are not sent.
///
/// Numbers are `i64` so that a test can send out-of-range values (`limit=-1`) through the typed
/// call; for anything that is not a number, use [`crate::Client::call`] with raw pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Page size.
    pub limit: Option<i64>,
    /// Items to skip.
    pub offset: Option<i64>,
    /// `ASC` or `DESC`.
    pub sort_dir: Option<String>,
    /// Sort field, e.g. `certExpiredTime`.
    pub sort_key: Option<String>,
    /// Certificate status, e.g. `ISSUED`, or `ALL`.
    pub status: Option<String>,
    /// Free-text match on name or domain.
    pub content: Option<String>,
    /// Only deployable certificates (`true`) or not.
    pub deploy_support: Option<bool>,
    /// Enterprise project id, or `all`.
    pub enterprise_project_id: Option<String>,
    /// Leave out certificates expired more than this many days ago.
    pub expired_days_since: Option<i64>,
    /// Only the caller's own certificates.
    pub owned_by_self: Option<bool>,
}

impl ListQuery {
    /// The set parameters as `(name, value)` pairs, unencoded, in declaration order; booleans as
    /// `true`/`false` (as the SDK renders them).
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let Self {
            limit,
            offset,
            sort_dir,
            sort_key,
            status,
            content,
            deploy_support,
            enterprise_project_id,
            expired_days_since,
            owned_by_self,
        } = self;
        let mut out = Vec::new();
        let mut add = |name: &'static str, value: Option<String>| {
            if let Some(value) = value {
                out.push((name, value));
            }
        };
        add("limit", limit.map(|v| v.to_string()));
        add("offset", offset.map(|v| v.to_string()));
        add("sort_dir", sort_dir.clone());
        add("sort_key", sort_key.clone());
        add("status", status.clone());
        add("content", content.clone());
        add("deploy_support", deploy_support.map(|v| v.to_string()));
        add("enterprise_project_id", enterprise_project_id.clone());
        add(
            "expired_days_since",
            expired_days_since.map(|v| v.to_string()),
        );
        add("owned_by_self", owned_by_self.map(|v| v.to_string()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_set_parameters_are_sent() {
        assert!(ListQuery::default().pairs().is_empty());
        let q = ListQuery {
            limit: Some(10),
            offset: Some(-1),
            status: Some("ISSUED".into()),
            content: Some("www.a b.test".into()),
            deploy_support: Some(false),
            owned_by_self: Some(true),
            ..ListQuery::default()
        };
        assert_eq!(
            q.pairs(),
            [
                ("limit", "10".to_owned()),
                ("offset", "-1".to_owned()),
                ("status", "ISSUED".to_owned()),
                ("content", "www.a b.test".to_owned()),
                ("deploy_support", "false".to_owned()),
                ("owned_by_self", "true".to_owned()),
            ]
        );
    }
}
