//! Tags of certificates: add one, add or delete several, list those of a certificate or of the
//! whole account.
//!
//! Limits (reference §4.5, §4.7.5): key 1..128 characters (the reference says 0..128; an empty
//! key names nothing, so it is refused), value 0..255; keys of letters (any script), digits,
//! space and `_ . : = + - @`, values also `/`. A certificate holds at most
//! [`MAX_TAGS_PER_CERTIFICATE`] tags (not documented for SCM; the limit of a batch call, which is
//! also Huawei's usual per-resource tag limit). Adding a key the certificate has replaces its value.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use scm_proto::CertificateId;
use scm_proto::tags::{BatchTagsBody, CreateTagBody, KeyValues, ResourceTag};
use scm_store::TagRecord;

use super::Scm;
use crate::{DomainError, Principal};

/// The most tags one certificate may have.
pub const MAX_TAGS_PER_CERTIFICATE: u32 = 20;
/// The most tags one batch call may carry.
pub const MAX_TAGS_PER_BATCH: usize = 20;
const MAX_KEY: usize = 128;
const MAX_VALUE: usize = 255;

/// What a batch call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagAction {
    /// Add (or replace) the tags.
    Create,
    /// Delete the tags by key (the value sent is not compared).
    Delete,
}

fn allowed(c: char, value: bool) -> bool {
    c.is_alphanumeric()
        || matches!(c, ' ' | '_' | '.' | ':' | '=' | '+' | '-' | '@')
        || (value && c == '/')
}

/// Checks one tag; `field` is its JSON path (`tag`, `tags[3]`).
pub(crate) fn check_tag(t: &ResourceTag, field: &str) -> Result<TagRecord, DomainError> {
    let key = t
        .key
        .as_deref()
        .ok_or_else(|| DomainError::invalid(format!("{field}.key"), "is required"))?;
    check_tag_parts(key, t.value.as_deref().unwrap_or_default(), field)
}

/// Checks a key and a value by the tag rules; errors name `{field}.key` or `{field}.value`.
pub(crate) fn check_tag_parts(
    key: &str,
    value: &str,
    field: &str,
) -> Result<TagRecord, DomainError> {
    let key_field = format!("{field}.key");
    let n = key.chars().count();
    if n == 0 || n > MAX_KEY {
        return Err(DomainError::invalid(
            key_field,
            format!("must have 1 to {MAX_KEY} characters"),
        ));
    }
    if !key.chars().all(|c| allowed(c, false)) {
        return Err(DomainError::invalid(
            key_field,
            "may hold only letters, digits, space and _ . : = + - @",
        ));
    }
    let value_field = format!("{field}.value");
    if value.chars().count() > MAX_VALUE {
        return Err(DomainError::invalid(
            value_field,
            format!("must have at most {MAX_VALUE} characters"),
        ));
    }
    if !value.chars().all(|c| allowed(c, true)) {
        return Err(DomainError::invalid(
            value_field,
            "may hold only letters, digits, space and _ . : = + - @ /",
        ));
    }
    Ok(TagRecord {
        key: key.to_owned(),
        value: value.to_owned(),
    })
}

fn check_batch(body: &BatchTagsBody) -> Result<(TagAction, Vec<TagRecord>), DomainError> {
    let action = match body.action.as_deref() {
        Some("create") => TagAction::Create,
        Some("delete") => TagAction::Delete,
        Some(_) => return Err(DomainError::invalid("action", "must be create or delete")),
        None => return Err(DomainError::invalid("action", "is required")),
    };
    let tags = body
        .tags
        .as_deref()
        .ok_or_else(|| DomainError::invalid("tags", "is required"))?;
    if tags.is_empty() || tags.len() > MAX_TAGS_PER_BATCH {
        return Err(DomainError::invalid(
            "tags",
            format!("must hold 1 to {MAX_TAGS_PER_BATCH} tags"),
        ));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(tags.len());
    for (i, t) in tags.iter().enumerate() {
        let field = format!("tags[{i}]");
        let rec = check_tag(t, &field)?;
        if !seen.insert(rec.key.clone()) {
            return Err(DomainError::invalid(
                format!("{field}.key"),
                "repeats a key of this call",
            ));
        }
        out.push(rec);
    }
    Ok((action, out))
}

fn too_many() -> DomainError {
    DomainError::invalid(
        "tags",
        format!("a certificate may have at most {MAX_TAGS_PER_CERTIFICATE} tags"),
    )
}

impl Scm {
    /// `CreateCertificateTag`: adds one tag (replaces the value of a key the certificate has).
    pub async fn create_tag(
        &self,
        p: &Principal,
        id: &CertificateId,
        body: &CreateTagBody,
    ) -> Result<(), DomainError> {
        let tag = body
            .tag
            .as_ref()
            .ok_or_else(|| DomainError::invalid("tag", "is required"))?;
        let rec = check_tag(tag, "tag")?;
        let cert = self.certificate(p, id).await?;
        self.put_tags(p, &cert.id, std::slice::from_ref(&rec)).await
    }

    /// Adds `tags` to the caller's certificate `cert`, all or none, within the per-certificate
    /// limit.
    async fn put_tags(
        &self,
        p: &Principal,
        cert: &CertificateId,
        tags: &[TagRecord],
    ) -> Result<(), DomainError> {
        let put = self
            .store
            .put_tags(
                &p.account,
                cert,
                tags,
                MAX_TAGS_PER_CERTIFICATE,
                self.clock.now_ms(),
            )
            .await?;
        if put { Ok(()) } else { Err(too_many()) }
    }

    /// `BatchCreateOrDeleteTags`: adds or deletes up to 20 tags at once, all or nothing.
    pub async fn batch_tags(
        &self,
        p: &Principal,
        id: &CertificateId,
        body: &BatchTagsBody,
    ) -> Result<TagAction, DomainError> {
        let (action, tags) = check_batch(body)?;
        let cert = self.certificate(p, id).await?;
        match action {
            TagAction::Create => self.put_tags(p, &cert.id, &tags).await?,
            TagAction::Delete => {
                let keys: Vec<String> = tags.into_iter().map(|t| t.key).collect();
                self.store.delete_tags(&cert.id, &keys).await?;
            }
        }
        Ok(action)
    }

    /// `ListTagsByCertificate`: the tags of one certificate, by key.
    pub async fn certificate_tags(
        &self,
        p: &Principal,
        id: &CertificateId,
    ) -> Result<Vec<TagRecord>, DomainError> {
        let cert = self.certificate(p, id).await?;
        Ok(self.store.tags_of(&cert.id).await?)
    }

    /// `ListAllTags`: every key on the account's certificates with its distinct values, sorted.
    pub async fn all_tags(&self, p: &Principal) -> Result<Vec<KeyValues>, DomainError> {
        let mut by_key: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for t in self.store.account_tags(&p.account).await? {
            by_key.entry(t.tag.key).or_default().insert(t.tag.value);
        }
        Ok(by_key
            .into_iter()
            .map(|(key, values)| KeyValues {
                key: Some(key),
                values: Some(values.into_iter().collect()),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> ResourceTag {
        ResourceTag {
            key: Some(k.into()),
            value: Some(v.into()),
        }
    }

    fn field(r: Result<TagRecord, DomainError>) -> String {
        crate::error::invalid_field(r)
    }

    #[test]
    fn tags_are_checked_by_field() {
        assert!(check_tag(&tag("env 名前_.:=+-@", "a/b c"), "tag").is_ok());
        assert_eq!(field(check_tag(&ResourceTag::default(), "tag")), "tag.key");
        assert_eq!(field(check_tag(&tag("", "v"), "tag")), "tag.key");
        assert_eq!(
            field(check_tag(&tag(&"k".repeat(129), "v"), "tag")),
            "tag.key"
        );
        assert!(check_tag(&tag(&"k".repeat(128), &"v".repeat(255)), "tag").is_ok());
        assert_eq!(field(check_tag(&tag("a/b", "v"), "tag")), "tag.key");
        assert_eq!(
            field(check_tag(&tag("k", &"v".repeat(256)), "t")),
            "t.value"
        );
        assert_eq!(field(check_tag(&tag("k", "a#b"), "t")), "t.value");
    }

    #[test]
    fn batches_are_checked_by_field() {
        let body = |action: Option<&str>, tags: Option<Vec<ResourceTag>>| BatchTagsBody {
            action: action.map(Into::into),
            tags,
        };
        let f = |b: BatchTagsBody| crate::error::invalid_field(check_batch(&b));
        assert_eq!(f(body(None, Some(vec![tag("k", "v")]))), "action");
        assert_eq!(f(body(Some("update"), Some(vec![tag("k", "v")]))), "action");
        assert_eq!(f(body(Some("create"), None)), "tags");
        assert_eq!(f(body(Some("create"), Some(vec![]))), "tags");
        assert_eq!(
            f(body(Some("create"), Some(vec![tag("k", "v"); 21]))),
            "tags"
        );
        assert_eq!(
            f(body(
                Some("create"),
                Some(vec![tag("k", "v"), tag("k", "w")])
            )),
            "tags[1].key"
        );
        assert!(check_batch(&body(Some("delete"), Some(vec![tag("k", "")]))).is_ok());
    }
}
