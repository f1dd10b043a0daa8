//! Wire types of the tag operations (reference §4.5, §4.7.5, §4.7.6).

use serde::{Deserialize, Serialize};

/// A key and one value (ScsResourceTag). In requests both are optional so that the domain can
/// name the missing one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceTag {
    /// Key, 1..128 characters.
    pub key: Option<String>,
    /// Value, 0..255 characters.
    pub value: Option<String>,
}

/// A key and its values (ScsTag).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValues {
    /// Key.
    pub key: Option<String>,
    /// Values (`[]` in a filter: any value).
    pub values: Option<Vec<String>>,
}

/// `POST /v3/scm/{resource_id}/tags` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateTagBody {
    /// The tag to add.
    pub tag: Option<ResourceTag>,
}

/// `POST /v3/scm/{resource_id}/tags/action` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BatchTagsBody {
    /// `create` or `delete`.
    pub action: Option<String>,
    /// 1..20 tags.
    pub tags: Option<Vec<ResourceTag>>,
}

/// `{"desc": "..."}`: the answer of the tag writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DescResponse {
    /// What was done.
    pub desc: String,
}

/// `{"tags": [ScsResourceTag]}`: the tags of one certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResourceTagsResponse {
    /// The tags, by key.
    pub tags: Vec<ResourceTag>,
}

/// `{"tags": [ScsTag]}`: every key of the account's tags, with its values.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AllTagsResponse {
    /// The keys, sorted, each with its sorted values.
    pub tags: Vec<KeyValues>,
}
