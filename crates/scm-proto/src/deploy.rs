//! Wire types of the multi-target push operations (reference §4.3.7–§4.3.9, §4.7.7–§4.7.10):
//! BatchPushCertificate, DeployCertificate and ListDeployedResources. Request fields are optional
//! so that the domain can name the one that is missing.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `POST /v3/scm/certificates/{certificate_id}/batch-push` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct BatchPushBody {
    /// Target regions, 1..10 items of 1..32 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, length(min = 1, max = 10))]
    pub target_projects: Option<Vec<String>>,
    /// Target service: CDN, WAF, ELB (case-insensitive).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, length(min = 1, max = 64))]
    pub target_service: Option<String>,
}

/// One region's outcome of a batch push (§4.7.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BatchPushResult {
    /// The region (`global` for CDN).
    pub project_name: String,
    /// The certificate as the targets now hold it (its OpenSCM id); `null` when the push failed.
    pub cert_id: Option<String>,
    /// `success`, or why the push to this region failed (`SCM.xxxx: message`).
    pub message: String,
}

/// The answer of BatchPushCertificate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BatchPushResponse {
    /// One result per region, in the order asked.
    pub results: Vec<BatchPushResult>,
}

/// `POST /v3/scm/certificates/{certificate_id}/deploy` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct DeployBody {
    /// Region of the resources; absent: the resources are found in any region.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub project_name: Option<String>,
    /// Service: CDN, WAF, ELB (case-insensitive).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, length(min = 1, max = 64))]
    pub service_name: Option<String>,
    /// The resources to deploy to, 1..20.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, length(min = 1, max = 20))]
    pub resources: Option<Vec<DeployedResource>>,
}

/// One resource of a deploy request (§4.7.8). OpenSCM's resources are its push targets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeployedResource {
    /// WAF and ELB: the resource id, which is the push target's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub id: Option<String>,
    /// WAF only: `premium` or `cloud` (accepted, not used).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub kind: Option<String>,
    /// CDN only: the accelerated domain, which the certificate must cover and which is the push
    /// target's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub domain_name: Option<String>,
    /// WAF only (accepted, not used).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub enterprise_project_id: Option<String>,
}

/// A resource the certificate could not be deployed to (§4.7.10, `FaiureResource`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FailureResource {
    /// The resource as the request named it.
    pub resource: String,
    /// Why: `SCM.xxxx: message`.
    pub failure_info: String,
}

/// The answer of DeployCertificate: `failure_list` is `[]` when every resource succeeded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeployResponse {
    /// The resources that failed.
    pub failure_list: Vec<FailureResource>,
}

/// `POST /v3/scm/deployed-resources` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct ListDeployedBody {
    /// Certificates, 1..50 ids.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, length(min = 1, max = 50))]
    pub certificate_ids: Option<Vec<String>>,
    /// Services: `WAF`, `CDN`, `ELB`, `ALL`, 1..50 items.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, length(min = 1, max = 50))]
    pub service_names: Option<Vec<String>>,
}

/// Where one certificate is deployed (§4.7.9 ResultDetail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResultDetail {
    /// The certificate.
    pub certificate_id: String,
    /// Resources over every service.
    pub total_num: u32,
    /// Per service asked for.
    pub deployed_resources: Vec<DeployedResourceDetail>,
}

/// One service's resources (§4.7.9 DeployedResourceDetail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeployedResourceDetail {
    /// `WAF`, `CDN` or `ELB`.
    pub service: String,
    /// Resources of this service.
    pub resource_num: u32,
    /// `global` (CDN) or `region`.
    pub resource_location: String,
    /// Per region.
    pub region_resources: Vec<RegionResourceDetail>,
}

/// One region's resources (§4.7.9 RegionResourceDetail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RegionResourceDetail {
    /// Region, `global` for CDN.
    pub region_id: String,
    /// Whether the last delivery of the certificate to one of the region's resources failed:
    /// what that resource serves is then not known, and the count may be wrong.
    pub is_error: bool,
    /// The resources.
    pub resources: Vec<ResourceDetail>,
}

/// One resource (§4.7.9 ResourceDetail): a push target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResourceDetail {
    /// The push target's name.
    pub resource_id: String,
    /// The push target's name.
    pub resource_name: String,
}

/// The answer of ListDeployedResources.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ListDeployedResponse {
    /// One result per certificate, in the order asked.
    pub results: Vec<ResultDetail>,
}
