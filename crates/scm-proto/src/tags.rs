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

/// A field match of `ListCertificatesByTag` (ScsMatch): `key` from a fixed dictionary
/// (`resource_name`), `value` to look for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TagMatch {
    /// The field: `resource_name`.
    pub key: Option<String>,
    /// The value to look for.
    pub value: Option<String>,
}

/// `POST /v3/scm/resource_instances/action` body (every field optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct ListByTagBody {
    /// Only certificates without any tag; the four tag filters are then ignored.
    pub without_any_tag: Option<bool>,
    /// Has every key (AND), each with one of its values (OR; `[]`: any value).
    pub tags: Option<Vec<KeyValues>>,
    /// Has any of the keys (OR), with one of its values.
    pub tags_any: Option<Vec<KeyValues>>,
    /// Not matched by `not_tags` read as `tags`.
    pub not_tags: Option<Vec<KeyValues>>,
    /// Not matched by `not_tags_any` read as `tags_any`.
    pub not_tags_any: Option<Vec<KeyValues>>,
    /// Page size: 10 to 50.
    pub limit: Option<i64>,
    /// Items to skip.
    pub offset: Option<i64>,
    /// `filter` (the page of resources) or `count` (only `total_count`).
    pub action: Option<String>,
    /// Field matches.
    pub matches: Option<Vec<TagMatch>>,
}

/// `ListCertificatesByTag` answer.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ListByTagResponse {
    /// Number of matching certificates (all pages).
    pub total_count: u64,
    /// The page (`[]` for `action=count`).
    pub resources: Vec<TagResource>,
}

/// A certificate found by its tags (TagResource).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TagResource {
    /// Certificate id.
    pub resource_id: String,
    /// Its tags (`[]` when none).
    pub tags: Vec<ResourceTag>,
    /// Certificate name.
    pub resource_name: String,
    /// The certificate.
    pub resource_detail: TagResourceDetail,
}

/// The certificate of a [`TagResource`] (TagResourceResourceDetail). Every key is present;
/// unset strings are `""` and times are millisecond epochs as strings, as documented.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TagResourceDetail {
    /// Certificate id.
    pub cert_id: String,
    /// Certificate name.
    pub cert_name: String,
    /// Primary domain.
    pub domain: String,
    /// Product type, e.g. `DV_SSL_CERT`.
    pub cert_type: String,
    /// Brand, e.g. `GLOBALSIGN`.
    pub cert_brand: String,
    /// `SINGLE_DOMAIN`, `MULTI_DOMAIN` or `WILDCARD`.
    pub domain_type: String,
    /// Years bought.
    pub purchase_period: i64,
    /// Expiry, ms epoch (`""` before issuance).
    pub expired_time: String,
    /// Status.
    pub order_status: String,
    /// Domains bought.
    pub domain_num: i64,
    /// Additional wildcard domains bought (a wildcard primary domain is not one).
    pub wildcard_number: i64,
    /// Additional domains, `;`-separated.
    pub sans: String,
    /// Description.
    pub cert_des: String,
    /// Signature algorithm.
    pub signature_algorithm: String,
    /// Why the application failed (`""`).
    pub fail_reason: String,
    /// Order id.
    pub partner_order_id: String,
    /// Whether it can be pushed.
    pub push_support: bool,
    /// Issuance time, ms epoch (`""` before issuance).
    pub cert_issued_time: String,
    /// Certificate id again, as the real service sends it.
    pub resource_id: String,
    /// Whether it can be unsubscribed.
    pub unsubscribe_support: bool,
    /// Enterprise project.
    pub enterprise_project_id: String,
    /// The certificate this one renews (`""`).
    pub origin_cert_id: String,
    /// The certificate that renews this one (`""`).
    pub renewal_cert_id: String,
    /// Auto-renewal status (1: OpenSCM renews it before it expires; 0: off, imported, or
    /// nothing issued yet).
    pub auto_renew_status: i64,
    /// Certificates still to come in a multi-year purchase after the current one (0 once the
    /// purchased period is covered; renewal goes on while the certificate is kept).
    pub remain_cert_number: i64,
    /// Auto-deployment (false).
    pub auto_deploy_support: bool,
}
