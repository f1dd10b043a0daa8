//! `ListCertificatesByTag`: filter (or count) the account's certificates by their tags and name.
//!
//! The match rules (reference §4.5, the SDK's docstrings):
//! - `tags`: the certificate has every key (AND), each with one of the listed values (OR); an
//!   empty `values` list means any value of the key;
//! - `tags_any`: it has at least one of the keys, with one of that key's values;
//! - `not_tags`: it is *not* matched by the same list read as `tags`;
//! - `not_tags_any`: it is *not* matched by the same list read as `tags_any`;
//! - the four combine with AND; an absent or empty list does not filter;
//! - `without_any_tag: true`: only certificates with no tag, and the four lists are ignored;
//! - `matches`: `resource_name` is a case-insensitive substring of the certificate's name (the
//!   only key of the dictionary OpenSCM knows; another key, or one key twice, is refused);
//! - `action`: `filter` (default) answers the page, `count` only `total_count`.
//!
//! Limits: at most 20 keys per list and 20 values per key, no key twice in a list and no value
//! twice under a key, keys and values by the tag rules; `limit` 10..50 (default 10, as the
//! certificate list), `offset` 0.. (items skipped). Certificates come newest first.
//!
//! The candidates are the account's certificates and tags, read in two queries and matched here:
//! the rules stay in one place, testable without a database, at a cost linear in the account's
//! certificates.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use scm_proto::tags::{KeyValues, ListByTagBody, TagMatch};
use scm_store::{CertificateRecord, TagRecord};

use super::Scm;
use super::tags::check_tag_parts;
use crate::{DomainError, Principal};

const MAX_KEYS: usize = 20;
const MAX_VALUES: usize = 20;
const MAX_MATCH_VALUE: usize = 255;

/// One list of key → allowed values (empty: any value).
type TagList = Vec<(String, HashSet<String>)>;

/// What to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagQueryAction {
    /// The page of matching certificates.
    Filter,
    /// Only how many match.
    Count,
}

/// A parsed `ListCertificatesByTag` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagQuery {
    without_any_tag: bool,
    tags: TagList,
    tags_any: TagList,
    not_tags: TagList,
    not_tags_any: TagList,
    /// Lower-cased substring of the name.
    name: Option<String>,
    limit: usize,
    offset: usize,
    action: TagQueryAction,
}

/// A matching certificate with its tags.
#[derive(Debug, Clone)]
pub struct TaggedCertificate {
    /// The certificate.
    pub certificate: Arc<CertificateRecord>,
    /// Its tags, by key.
    pub tags: Vec<TagRecord>,
}

/// The answer of a tag query.
#[derive(Debug, Clone)]
pub struct TagQueryPage {
    /// How many certificates match (all pages).
    pub total: u64,
    /// The page (empty for [`TagQueryAction::Count`]).
    pub items: Vec<TaggedCertificate>,
}

fn tag_list(lists: Option<&[KeyValues]>, field: &str) -> Result<TagList, DomainError> {
    let Some(lists) = lists else {
        return Ok(Vec::new());
    };
    if lists.len() > MAX_KEYS {
        return Err(DomainError::invalid(
            field,
            format!("may hold at most {MAX_KEYS} keys"),
        ));
    }
    let mut keys = HashSet::new();
    let mut out = Vec::with_capacity(lists.len());
    for (i, kv) in lists.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let key_field = format!("{at}.key");
        let key = kv
            .key
            .as_deref()
            .ok_or_else(|| DomainError::invalid(&key_field, "is required"))?;
        // The SDK's docstring: values may be `[]` but must be present.
        let values = kv
            .values
            .as_deref()
            .ok_or_else(|| DomainError::invalid(format!("{at}.values"), "is required"))?;
        if values.len() > MAX_VALUES {
            return Err(DomainError::invalid(
                format!("{at}.values"),
                format!("may hold at most {MAX_VALUES} values"),
            ));
        }
        check_tag_parts(key, "", &at)?;
        if !keys.insert(key.to_owned()) {
            return Err(DomainError::invalid(
                key_field,
                "repeats a key of this list",
            ));
        }
        let mut set = HashSet::with_capacity(values.len());
        for (j, v) in values.iter().enumerate() {
            let value_field = format!("{at}.values[{j}]");
            check_tag_parts(key, v, &at)
                .map_err(|_| DomainError::invalid(&value_field, "is not a valid tag value"))?;
            if !set.insert(v.clone()) {
                return Err(DomainError::invalid(
                    value_field,
                    "repeats a value of this key",
                ));
            }
        }
        out.push((key.to_owned(), set));
    }
    Ok(out)
}

fn name_match(matches: Option<&[TagMatch]>) -> Result<Option<String>, DomainError> {
    let mut name = None;
    for (i, m) in matches.unwrap_or_default().iter().enumerate() {
        let at = format!("matches[{i}]");
        match m.key.as_deref() {
            Some("resource_name") => {}
            Some(_) => {
                return Err(DomainError::invalid(
                    format!("{at}.key"),
                    "must be resource_name",
                ));
            }
            None => return Err(DomainError::invalid(format!("{at}.key"), "is required")),
        }
        if name.is_some() {
            return Err(DomainError::invalid(
                format!("{at}.key"),
                "repeats a key of this list",
            ));
        }
        let value = m
            .value
            .as_deref()
            .ok_or_else(|| DomainError::invalid(format!("{at}.value"), "is required"))?;
        if value.chars().count() > MAX_MATCH_VALUE {
            return Err(DomainError::invalid(
                format!("{at}.value"),
                format!("must have at most {MAX_MATCH_VALUE} characters"),
            ));
        }
        name = Some(value.to_lowercase());
    }
    Ok(name)
}

impl TagQuery {
    /// Parses the body; every refusal names its field.
    pub fn parse(body: &ListByTagBody) -> Result<Self, DomainError> {
        let limit = match body.limit {
            None => 10,
            Some(n @ 10..=50) => usize::try_from(n).unwrap_or(10),
            Some(_) => return Err(DomainError::invalid("limit", "must be 10 to 50")),
        };
        let offset = match body.offset {
            None => 0,
            Some(n @ 0..=1_000_000) => usize::try_from(n).unwrap_or(0),
            Some(_) => return Err(DomainError::invalid("offset", "must be 0 to 1000000")),
        };
        let action = match body.action.as_deref() {
            None | Some("filter") => TagQueryAction::Filter,
            Some("count") => TagQueryAction::Count,
            Some(_) => return Err(DomainError::invalid("action", "must be filter or count")),
        };
        Ok(Self {
            without_any_tag: body.without_any_tag.unwrap_or(false),
            tags: tag_list(body.tags.as_deref(), "tags")?,
            tags_any: tag_list(body.tags_any.as_deref(), "tags_any")?,
            not_tags: tag_list(body.not_tags.as_deref(), "not_tags")?,
            not_tags_any: tag_list(body.not_tags_any.as_deref(), "not_tags_any")?,
            name: name_match(body.matches.as_deref())?,
            limit,
            offset,
            action,
        })
    }

    /// Whether a certificate named `name` with `tags` (key → value) matches.
    fn matches(&self, name: &str, tags: Option<&BTreeMap<String, String>>) -> bool {
        if let Some(want) = &self.name
            && !name.to_lowercase().contains(want.as_str())
        {
            return false;
        }
        let empty = BTreeMap::new();
        let tags = tags.unwrap_or(&empty);
        if self.without_any_tag {
            return tags.is_empty();
        }
        let has = |(key, values): &(String, HashSet<String>)| {
            tags.get(key)
                .is_some_and(|v| values.is_empty() || values.contains(v))
        };
        let all = |list: &TagList| list.iter().all(has);
        let any = |list: &TagList| list.iter().any(has);
        (self.tags.is_empty() || all(&self.tags))
            && (self.tags_any.is_empty() || any(&self.tags_any))
            && (self.not_tags.is_empty() || !all(&self.not_tags))
            && (self.not_tags_any.is_empty() || !any(&self.not_tags_any))
    }
}

impl Scm {
    /// `ListCertificatesByTag`: the account's certificates matched by `q`, newest first.
    pub async fn certificates_by_tag(
        &self,
        p: &Principal,
        q: &TagQuery,
    ) -> Result<TagQueryPage, DomainError> {
        let candidates = self.store.certificate_names(&p.account).await?;
        let mut by_cert: BTreeMap<_, BTreeMap<String, String>> = BTreeMap::new();
        for t in self.store.account_tags(&p.account).await? {
            by_cert
                .entry(t.cert_id)
                .or_default()
                .insert(t.tag.key, t.tag.value);
        }
        let matching: Vec<_> = candidates
            .into_iter()
            .filter(|(id, name)| q.matches(name, by_cert.get(id)))
            .map(|(id, _)| id)
            .collect();
        let total = u64::try_from(matching.len()).unwrap_or(u64::MAX);
        let mut items = Vec::new();
        if q.action == TagQueryAction::Filter {
            for id in matching.iter().skip(q.offset).take(q.limit) {
                let certificate = match self.certificate(p, id).await {
                    Ok(c) => c,
                    // Deleted between the two reads: not part of the answer.
                    Err(DomainError::CertificateNotFound) => continue,
                    Err(e) => return Err(e),
                };
                let tags = by_cert
                    .get(id)
                    .map(|m| {
                        m.iter()
                            .map(|(key, value)| TagRecord {
                                key: key.clone(),
                                value: value.clone(),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                items.push(TaggedCertificate { certificate, tags });
            }
        }
        Ok(TagQueryPage { total, items })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, values: &[&str]) -> KeyValues {
        KeyValues {
            key: Some(key.into()),
            values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
        }
    }

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn q(body: ListByTagBody) -> TagQuery {
        TagQuery::parse(&body).unwrap()
    }

    #[test]
    fn the_match_rules() {
        let prod_web = tags(&[("env", "prod"), ("team", "web")]);
        let staging = tags(&[("env", "staging")]);
        let none = tags(&[]);
        let all = |query: &TagQuery| {
            [&prod_web, &staging, &none]
                .iter()
                .map(|t| query.matches("Site-A", Some(t)))
                .collect::<Vec<_>>()
        };

        // No filter: everything.
        assert_eq!(all(&q(ListByTagBody::default())), [true, true, true]);
        // tags: AND between keys, OR between values, [] = any value.
        let body = ListByTagBody {
            tags: Some(vec![kv("env", &["prod", "staging"])]),
            ..Default::default()
        };
        assert_eq!(all(&q(body)), [true, true, false]);
        let body = ListByTagBody {
            tags: Some(vec![kv("env", &[]), kv("team", &["web"])]),
            ..Default::default()
        };
        assert_eq!(all(&q(body)), [true, false, false]);
        // tags_any: OR between keys.
        let body = ListByTagBody {
            tags_any: Some(vec![kv("team", &[]), kv("env", &["staging"])]),
            ..Default::default()
        };
        assert_eq!(all(&q(body)), [true, true, false]);
        // not_tags: not (all of them).
        let body = ListByTagBody {
            not_tags: Some(vec![kv("env", &["prod"]), kv("team", &[])]),
            ..Default::default()
        };
        assert_eq!(all(&q(body)), [false, true, true]);
        // not_tags_any: none of them.
        let body = ListByTagBody {
            not_tags_any: Some(vec![kv("team", &[]), kv("env", &["staging"])]),
            ..Default::default()
        };
        assert_eq!(all(&q(body)), [false, false, true]);
        // without_any_tag wins over the lists.
        let body = ListByTagBody {
            without_any_tag: Some(true),
            tags: Some(vec![kv("env", &[])]),
            ..Default::default()
        };
        assert_eq!(all(&q(body)), [false, false, true]);
        // resource_name: case-insensitive substring.
        let body = ListByTagBody {
            matches: Some(vec![TagMatch {
                key: Some("resource_name".into()),
                value: Some("site-a".into()),
            }]),
            ..Default::default()
        };
        let by_name = q(body);
        assert!(by_name.matches("my-SITE-A-1", None));
        assert!(!by_name.matches("site-b", None));
    }

    #[test]
    fn refusals_name_their_field() {
        let f = |body: ListByTagBody| crate::error::invalid_field(TagQuery::parse(&body));
        let with_tags = |list: Vec<KeyValues>| ListByTagBody {
            tags: Some(list),
            ..Default::default()
        };
        assert_eq!(
            f(ListByTagBody {
                limit: Some(5),
                ..Default::default()
            }),
            "limit"
        );
        assert_eq!(
            f(ListByTagBody {
                offset: Some(-1),
                ..Default::default()
            }),
            "offset"
        );
        assert_eq!(
            f(ListByTagBody {
                action: Some("delete".into()),
                ..Default::default()
            }),
            "action"
        );
        assert_eq!(
            f(with_tags(
                (0..21).map(|i| kv(&format!("k{i}"), &[])).collect()
            )),
            "tags"
        );
        assert_eq!(f(with_tags(vec![kv("k", &["v"; 21])])), "tags[0].values");
        assert_eq!(
            f(with_tags(vec![kv("k", &[]), kv("k", &["v"])])),
            "tags[1].key"
        );
        assert_eq!(
            f(with_tags(vec![kv("k", &["v", "v"])])),
            "tags[0].values[1]"
        );
        assert_eq!(f(with_tags(vec![kv("k", &["a#b"])])), "tags[0].values[0]");
        assert_eq!(f(with_tags(vec![kv("a/b", &[])])), "tags[0].key");
        assert_eq!(
            f(with_tags(vec![KeyValues {
                key: Some("k".into()),
                values: None
            }])),
            "tags[0].values"
        );
        assert_eq!(
            f(ListByTagBody {
                not_tags_any: Some(vec![KeyValues::default()]),
                ..Default::default()
            }),
            "not_tags_any[0].key"
        );
        let m = |key: &str| TagMatch {
            key: Some(key.into()),
            value: Some("x".into()),
        };
        assert_eq!(
            f(ListByTagBody {
                matches: Some(vec![m("domain")]),
                ..Default::default()
            }),
            "matches[0].key"
        );
        assert_eq!(
            f(ListByTagBody {
                matches: Some(vec![m("resource_name"), m("resource_name")]),
                ..Default::default()
            }),
            "matches[1].key"
        );
    }
}
