//! Wire types of the tag operations (reference §4.5, §4.7.5, §4.7.6).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A key and one value (ScsResourceTag). In requests both are optional so that the domain can
/// name the missing one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResourceTag {
    /// Key, 1..128 characters.
    #[schemars(required, length(min = 1, max = 128))]
    pub key: Option<String>,
    /// Value, 0..255 characters.
    #[schemars(length(max = 255))]
    pub value: Option<String>,
}

/// A key and its values (ScsTag).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KeyValues {
    /// Key.
    pub key: Option<String>,
    /// Values (`[]` in a filter: any value).
    pub values: Option<Vec<String>>,
}

/// `POST /v3/scm/{resource_id}/tags` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct CreateTagBody {
    /// The tag to add.
    #[schemars(required)]
    pub tag: Option<ResourceTag>,
}

/// `POST /v3/scm/{resource_id}/tags/action` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct BatchTagsBody {
    /// `create` or `delete`.
    #[schemars(required, extend("enum" = ["create", "delete"]))]
    pub action: Option<String>,
    /// 1..20 tags.
    #[schemars(required, length(min = 1, max = 20))]
    pub tags: Option<Vec<ResourceTag>>,
}

/// `{"desc": "..."}`: the answer of the tag writes.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DescResponse {
    /// What was done.
    pub desc: String,
}

/// `{"tags": [ScsResourceTag]}`: the tags of one certificate.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ResourceTagsResponse {
    /// The tags, by key.
    pub tags: Vec<ResourceTag>,
}

/// `{"tags": [ScsTag]}`: every key of the account's tags, with its values.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AllTagsResponse {
    /// The keys, sorted, each with its sorted values.
    pub tags: Vec<KeyValues>,
}
