//! Bodies shared by the v3 endpoints (and by the v2 purchase/save pages, whose fields are a subset).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Brand, CertType, CertificateStatus, DomainType, PrimaryDomainType};

// Patterns and value lists of the JSON Schemas (OpenAPI description) of the fields below: they
// say what the parsers accept. The parsers trim surrounding spaces where noted; the patterns allow
// plain spaces there. Character classes are ASCII so that every JSON Schema regex dialect (and the
// test generators) reads them alike.

/// A certificate id: `scs` + 13 digits.
pub const CERTIFICATE_ID_PATTERN: &str = "^scs[0-9]{13}$";
/// `enterprise_project_id`: `0`, `all` or a lower-case UUID.
pub const ENTERPRISE_PROJECT_PATTERN: &str =
    "^(0|all|[0-9a-z]{8}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{12})$";
/// A two-letter country code, or nothing (trimmed).
pub const COUNTRY_PATTERN: &str = "^ *([A-Za-z]{2} *)?$";
/// A phone number: an optional leading `+`, at least 5 digits, spaces, `-`, `(` and `)` (trimmed).
pub const PHONE_PATTERN: &str = "^ *[+]?([ ()-]*[0-9]){5}[0-9 ()-]* *$";
/// A phone number, or nothing (trimmed).
pub const OPTIONAL_PHONE_PATTERN: &str = "^ *([+]?([ ()-]*[0-9]){5}[0-9 ()-]*)? *$";
/// A region such as `cn-north-4`, or nothing (trimmed; required unless the service is CDN).
pub const REGION_PATTERN: &str = "^ *[A-Za-z0-9_-]* *$";
/// v3 push service: CDN, WAF, ELB or Enhance_ELB, in any case (trimmed).
pub const V3_SERVICE_PATTERN: &str =
    "^ *([Cc][Dd][Nn]|[Ww][Aa][Ff]|[Ee][Ll][Bb]|[Ee][Nn][Hh][Aa][Nn][Cc][Ee]_[Ee][Ll][Bb]) *$";
/// `key_algorithm`: the server-generated key's algorithm; empty or absent is `RSA_2048`.
pub const KEY_ALGORITHMS: &[Option<&str>] = &[
    Some("RSA_2048"),
    Some("RSA_3072"),
    Some("RSA_4096"),
    Some("EC_P256"),
    Some("EC_P384"),
    Some(""),
    None,
];

/// The values of an optional enum field: `names`, or `null`.
fn or_null(names: Vec<&'static str>) -> Vec<Option<&'static str>> {
    names.into_iter().map(Some).chain([None]).collect()
}

/// A `{key, value}` resource tag (ScsResourceTag).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResourceTag {
    /// Tag key, 1..128 characters.
    #[schemars(required, length(min = 1, max = 128))]
    pub key: Option<String>,
    /// Tag value, 0..255 characters.
    #[schemars(length(max = 255))]
    pub value: Option<String>,
}

/// Purchase request: v3 `PurchaseCertificateRequestBody` and the v2 purchase body (a subset).
///
/// Every field is optional here; the domain layer checks presence, ranges and enums and names the
/// field that is wrong.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[schemars(description = "Purchase request (PurchaseCertificateRequestBody).")]
pub struct PurchaseBody {
    /// Certificate brand, e.g. `GLOBALSIGN`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, extend("enum" = Brand::wire_names()))]
    pub cert_brand: Option<String>,
    /// Certificate type, e.g. `OV_SSL_CERT`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, extend("enum" = CertType::wire_names()))]
    pub cert_type: Option<String>,
    /// `SINGLE_DOMAIN`, `MULTI_DOMAIN` or `WILDCARD`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, extend("enum" = DomainType::wire_names()))]
    pub domain_type: Option<String>,
    /// Validity in years.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, range(min = 1, max = 3))]
    pub effective_time: Option<i64>,
    /// Number of domain names.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, range(min = 1, max = 100))]
    pub domain_numbers: Option<i64>,
    /// Number of certificates to buy.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, range(min = 1, max = 100))]
    pub order_number: Option<i64>,
    /// Must be `true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, extend("const" = true))]
    pub agree_privacy_protection: Option<bool>,
    /// Multi-domain only: `SINGLE_DOMAIN` or `WILDCARD_DOMAIN`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = or_null(PrimaryDomainType::wire_names())))]
    pub primary_domain_type: Option<String>,
    /// Additional single domains.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub single_domain_number: Option<i64>,
    /// Additional wildcard domains.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub wildcard_domain_number: Option<i64>,
    /// Pay automatically (OpenSCM always does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_auto_pay: Option<bool>,
    /// Enterprise project: `0`, `all` or a UUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 36), pattern(ENTERPRISE_PROJECT_PATTERN))]
    pub enterprise_project_id: Option<String>,
    /// Combined-purchase order id.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub order_id: Option<String>,
    /// Tags, 0..10.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 10))]
    pub tags: Option<Vec<ResourceTag>>,
}

/// `{"cert_id": "scs..."}` (CertDetail).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CertRef {
    /// Certificate id.
    #[schemars(pattern(CERTIFICATE_ID_PATTERN))]
    pub cert_id: String,
}

/// Purchase answer (v2 and v3).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PurchaseResponse {
    /// Order id.
    pub order_id: String,
    /// One entry per certificate bought.
    pub cert: Vec<CertRef>,
}

/// Application form: v3 `ApplyCertificateRequestBody` and the v2 save/complete body (a subset).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct ApplicationBody {
    /// Primary domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, length(min = 1, max = 255))]
    pub domain: Option<String>,
    /// Additional domains, `;`-separated.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub sans: Option<String>,
    /// Own CSR (PEM), optional.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 5120))]
    pub csr: Option<String>,
    /// Company name.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub company_name: Option<String>,
    /// Department.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub company_unit: Option<String>,
    /// State or province.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub company_province: Option<String>,
    /// City.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub company_city: Option<String>,
    /// Two-letter country code.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(COUNTRY_PATTERN))]
    pub country: Option<String>,
    /// Applicant name.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, length(min = 1, max = 100))]
    pub applicant_name: Option<String>,
    /// Applicant phone.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, pattern(PHONE_PATTERN))]
    pub applicant_phone: Option<String>,
    /// Applicant email.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, length(min = 3, max = 254))]
    pub applicant_email: Option<String>,
    /// Technical contact name.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub contact_name: Option<String>,
    /// Technical contact phone.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(OPTIONAL_PHONE_PATTERN))]
    pub contact_phone: Option<String>,
    /// Technical contact email.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 254))]
    pub contact_email: Option<String>,
    /// Push DNS validation records automatically (v3 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_dns_auth: Option<bool>,
    /// Must be `true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, extend("const" = true))]
    pub agree_privacy_protection: Option<bool>,
    /// `DNS`, `FILE` or `EMAIL` (v3 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, extend("enum" = ["DNS", "FILE", "EMAIL"]))]
    pub domain_method: Option<String>,
    /// Server-generated key algorithm, default `RSA_2048` (v3 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = KEY_ALGORITHMS))]
    pub key_algorithm: Option<String>,
    /// `DEFAULT` or `SHA-256` (v3 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["DEFAULT", "SHA-256", "", null]))]
    pub ca_hash_algorithm: Option<String>,
}

/// `{"request_info": "success"}` (save, apply, complete).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RequestInfoResponse {
    /// Always `success`.
    pub request_info: String,
}

/// v3 push request.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct PushBody {
    /// Target region.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255), pattern(REGION_PATTERN))]
    pub target_project: Option<String>,
    /// Target service: CDN, WAF, ELB (case-insensitive).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, length(min = 1, max = 64), pattern(V3_SERVICE_PATTERN))]
    pub target_service: Option<String>,
}

/// Applicant data of a certificate (ShowCertificate `application_info`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct ApplicationInfo {
    /// Country code.
    pub country: Option<String>,
    /// Company name.
    pub company_name: Option<String>,
    /// Province.
    pub company_province: Option<String>,
    /// City.
    pub company_city: Option<String>,
    /// Applicant name.
    pub applicant_name: Option<String>,
    /// Applicant phone.
    pub applicant_phone: Option<String>,
    /// Applicant email.
    pub applicant_email: Option<String>,
    /// Contact name.
    pub contact_name: Option<String>,
    /// Contact phone.
    pub contact_phone: Option<String>,
    /// Contact email.
    pub contact_email: Option<String>,
}

/// Domain validation record (`authentification`, spelled as in the API).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Authentification {
    /// Record name, e.g. `_dnsauth.example.com`.
    pub record_name: Option<String>,
    /// Record type, e.g. `TXT`.
    pub record_type: Option<String>,
    /// Record value.
    pub record_value: Option<String>,
    /// Domain validated.
    pub domain: Option<String>,
}

/// `GET /v3/scm/certificates/{id}` answer. Every key is always present.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ShowCertificateResponse {
    /// Certificate id.
    #[schemars(pattern(CERTIFICATE_ID_PATTERN))]
    pub id: String,
    /// Status, e.g. `PAID`, `ISSUED`.
    #[schemars(extend("enum" = CertificateStatus::wire_names()))]
    pub status: String,
    /// Order id.
    pub order_id: Option<String>,
    /// Certificate name.
    pub name: String,
    /// Certificate type.
    #[serde(rename = "type")]
    pub cert_type: Option<String>,
    /// Brand.
    pub brand: Option<String>,
    /// `ON` or `OFF`.
    pub push_support: String,
    /// Revocation reason.
    pub revoke_reason: Option<String>,
    /// Signature algorithm of the issued certificate.
    pub signature_algorithm: Option<String>,
    /// Issue time, `YYYY-MM-DD HH:MM:SS.0` UTC.
    pub issue_time: Option<String>,
    /// Start of validity.
    pub not_before: Option<String>,
    /// End of validity.
    pub not_after: Option<String>,
    /// Months of validity of one certificate.
    pub validity_period: i64,
    /// `DNS`, `FILE` or `EMAIL`.
    pub validation_method: Option<String>,
    /// `SINGLE_DOMAIN`, `WILDCARD` or `MULTI_DOMAIN`.
    pub domain_type: Option<String>,
    /// `primary_single` or `primary_wildcard` for multi-domain certificates.
    pub multi_domain_type: Option<String>,
    /// Primary domain.
    pub domain: Option<String>,
    /// Additional domains, `;`-separated.
    pub sans: Option<String>,
    /// Number of domains the certificate may bind.
    pub domain_count: i64,
    /// Number of additional wildcard domains (a wildcard primary domain is not one).
    pub wildcard_count: i64,
    /// SHA-1 fingerprint, 40 lower-case hex.
    pub fingerprint: Option<String>,
    /// Whether the certificate is shared to this tenant.
    pub shared: bool,
    /// Applicant data.
    pub application_info: Option<ApplicationInfo>,
    /// Description.
    pub description: Option<String>,
    /// Enterprise project id.
    pub enterprise_project_id: String,
    /// Domain validation records.
    pub authentification: Vec<Authentification>,
}

/// One item of `GET /v3/scm/certificates` (CertificateDetail). Every key is always present.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CertificateDetail {
    /// Certificate id.
    #[schemars(pattern(CERTIFICATE_ID_PATTERN))]
    pub id: String,
    /// Name.
    pub name: String,
    /// Primary domain (`null` until applied: unset values are `null` in every answer).
    pub domain: Option<String>,
    /// Additional domains (`null` until applied).
    pub sans: Option<String>,
    /// Signature algorithm (`null` until issued).
    pub signature_algorithm: Option<String>,
    /// Whether it can be deployed (issued or uploaded).
    pub deploy_support: bool,
    /// Certificate type (`null` for an imported certificate).
    #[serde(rename = "type")]
    pub cert_type: Option<String>,
    /// Brand (for an imported certificate: recognised from its issuer, else `null`).
    pub brand: Option<String>,
    /// Expiry, `YYYY-MM-DD HH:MM:SS.0` UTC, `null` until issued.
    pub expire_time: Option<String>,
    /// Domain type.
    pub domain_type: String,
    /// Months.
    pub validity_period: i64,
    /// Status.
    #[schemars(extend("enum" = CertificateStatus::wire_names()))]
    pub status: String,
    /// Domain count.
    pub domain_count: i64,
    /// Number of additional wildcard domains (a wildcard primary domain is not one).
    pub wildcard_count: i64,
    /// Description.
    pub description: String,
    /// Account id.
    pub domain_id: String,
    /// Enterprise project id.
    pub enterprise_project_id: String,
}

/// `GET /v3/scm/certificates` answer.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ListCertificatesResponse {
    /// The page; `[]` past the end.
    pub certificates: Vec<CertificateDetail>,
    /// Total number of matches.
    pub total_count: u64,
}

/// `POST /v3/scm/certificates/{id}/export` answer.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ExportCertificateResponse {
    /// Leaf followed by the chain.
    pub entire_certificate: String,
    /// Leaf only.
    pub certificate: String,
    /// Intermediate certificate(s).
    pub certificate_chain: String,
    /// PKCS#8 PEM key; `null` when the key is not held (the user supplied a CSR).
    pub private_key: Option<String>,
    /// SM2 only; always `null`.
    pub enc_certificate: Option<String>,
    /// SM2 only; always `null`.
    pub enc_private_key: Option<String>,
}

/// `POST /v3/auth/tokens` answer body (the token itself is in `X-Subject-Token`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TokenResponse {
    /// Token metadata.
    pub token: TokenInfo,
}

/// Token metadata, in the shape of Huawei IAM's answer.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TokenInfo {
    /// Authentication methods used.
    pub methods: Vec<String>,
    /// Expiry, RFC 3339 UTC.
    pub expires_at: String,
    /// Issue time, RFC 3339 UTC.
    pub issued_at: String,
    /// The account.
    pub domain: NamedId,
    /// The project the token is scoped to.
    pub project: NamedId,
}

/// `{"id": ..., "name": ...}`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct NamedId {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
}

/// `GET /v3/auth/domains` answer: the caller's account, as IAM lists domains.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DomainsResponse {
    /// Exactly one entry: the caller's account (id and name are the account id).
    pub domains: Vec<NamedId>,
}

/// `GET /health` answer: `{"status": "ok"}`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct HealthResponse {
    /// Always `ok`.
    #[schemars(extend("const" = "ok"))]
    pub status: String,
}

/// The query of `GET /v3/scm/certificates`, every parameter optional. The server parses the
/// query itself (`scm-api` `parse::list_request`, whose test pins these names); this type gives
/// the parameters their names, types and limits in the OpenAPI description. Unknown parameters
/// are ignored.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct ListCertificatesQuery {
    /// Page size, 10..50 (default 10).
    #[schemars(range(min = 10, max = 50))]
    pub limit: Option<u32>,
    /// Items to skip (default 0). The documented maximum is 100; OpenSCM accepts up to 1000000.
    #[schemars(range(min = 0, max = 1_000_000))]
    pub offset: Option<u32>,
    /// `ASC` or `DESC` (default).
    #[schemars(extend("enum" = ["ASC", "DESC", ""]))]
    pub sort_dir: Option<String>,
    /// Sort field (default `certUpdateTime`).
    #[schemars(extend("enum" = ["certExpiredTime", "certStatus", "certUpdateTime", ""]))]
    pub sort_key: Option<String>,
    /// Status filter: `ALL` (default), empty (all), or one status.
    #[schemars(extend("enum" = list_status_values()))]
    pub status: Option<String>,
    /// Keyword over certificate name and domain, at most 255 characters.
    #[schemars(length(max = 255))]
    pub content: Option<String>,
    /// Only certificates that can be deployed (`true` / `false`, default `false`).
    pub deploy_support: Option<bool>,
    /// Accepted and without effect: nothing is shared between accounts.
    pub owned_by_self: Option<bool>,
    /// Leave out certificates expired more than this many days ago, 0..1095; default 0 (only
    /// certificates valid now, or not issued yet), no window when `status` is `EXPIRED`.
    #[schemars(range(min = 0, max = 1095))]
    pub expired_days_since: Option<u32>,
    /// Enterprise project filter: `all` (default), `0` or a UUID.
    #[schemars(pattern(ENTERPRISE_PROJECT_PATTERN))]
    pub enterprise_project_id: Option<String>,
}

/// The values of the list's `status` filter.
fn list_status_values() -> Vec<&'static str> {
    ["ALL", ""]
        .into_iter()
        .chain(CertificateStatus::wire_names())
        .collect()
}

// --- tenant ca ---
/// `GET /v3/scm/ca/root` (an OpenSCM extension): the roots the caller's account's clients trust.
/// Every certificate issued to the account chains to `root_certificate` (or, for one issued
/// before the account had a CA of its own, to one of `retired_root_certificates`); no other
/// account's certificate chains to it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CaRootResponse {
    /// The id of the account's CA: the lower-case hex of its key identifier, also the name of
    /// its CRL (`/crl/<ca_id>.crl`).
    pub ca_id: String,
    /// The root certificate of the account's CA, PEM.
    pub root_certificate: String,
    /// The roots of retired CAs that issued older certificates of the account (they issue
    /// nothing new), PEM; empty for an account made since OpenSCM gave each account its own CA.
    pub retired_root_certificates: Vec<String>,
}

/// `GET /v3/scm/certificates/{certificate_id}/versions` (OpenSCM extension): a certificate's
/// versions, its renewal state, and the history of its state changes.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CertificateVersionsResponse {
    /// The certificate.
    pub certificate_id: String,
    /// The version show, export and push use; `null` before the first issuance (and for an
    /// imported certificate, which has no versions).
    pub current_version: Option<u32>,
    /// Whether OpenSCM renews it by itself.
    pub auto_renew: bool,
    /// When its current version is due for renewal (`yyyy-MM-dd HH:mm:ss`, UTC+8 as the API's
    /// other times); `null` when it is not to be renewed.
    pub renew_at: Option<String>,
    /// Its versions, newest first.
    pub versions: Vec<CertificateVersionView>,
    /// Its state changes, oldest first (the last 500).
    pub events: Vec<CertificateEventView>,
}

/// One version of a certificate.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CertificateVersionView {
    /// 1, 2, ... in the order of issuance.
    pub version: u32,
    /// Why it was made: `issued`, `renewal`, `renewal-manual`.
    pub reason: String,
    /// The serial number, lower-case hex.
    pub serial_number: String,
    /// SHA-1 fingerprint, lower-case hex.
    pub fingerprint: String,
    /// When it was issued.
    pub issue_time: Option<String>,
    /// Start of validity.
    pub not_before: Option<String>,
    /// End of validity.
    pub not_after: Option<String>,
    /// When it was (or is) due for renewal.
    pub renew_at: Option<String>,
    /// Whether it is the current version.
    pub current: bool,
}

/// One state change of a certificate.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CertificateEventView {
    /// When.
    pub time: Option<String>,
    /// What: `applied`, `validation_passed`, `validation_failed`, `validated`, `issued`,
    /// `renewal_scheduled`, `renewal_validation`, `renewed`, `unpassed`, `cancelled`,
    /// `auto_renew`.
    pub event: String,
    /// The cause (names, an error, a serial).
    pub detail: String,
    /// Who or what: `user <access key>`, `job <id>`.
    pub actor: String,
}

/// `POST /v3/scm/certificates/{certificate_id}/renew` (OpenSCM extension): the renewal queued.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RenewCertificateResponse {
    /// The certificate.
    pub certificate_id: String,
    /// The version being renewed (the new one is this plus one, when it is issued).
    pub renewing_version: u32,
}

/// `GET /v3/scm/certificates/{certificate_id}/deployments` (OpenSCM extension): where the
/// certificate is deployed, per push target, and its latest delivery attempts.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CertificateDeploymentsResponse {
    /// The certificate.
    pub certificate_id: String,
    /// Its current version.
    pub current_version: Option<u32>,
    /// One entry per target it was delivered to or is being delivered to.
    pub deployments: Vec<DeploymentView>,
    /// The latest delivery attempts (every outcome), newest first.
    pub attempts: Vec<DeliveryAttemptView>,
}

/// Where a certificate is deployed: one push target.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DeploymentView {
    /// The target's name.
    pub target: String,
    /// Its kind (`nginx`, `files`, `haproxy`, `exec`, `webhook`), `null` when it is no longer
    /// configured.
    pub kind: Option<String>,
    /// Its resource id (what `deploy` names it by).
    pub resource_id: Option<String>,
    /// `served` (seen served by a TLS check), `delivered` (no check configured), `failing`,
    /// `not_served` (delivered, not served), `drift` (no longer serves what it was given), or
    /// `pending` (nothing delivered yet).
    pub state: String,
    /// The version it holds (0: none yet).
    pub version: u32,
    /// Whether a TLS check saw it served.
    pub verified: bool,
    /// The serial seen served at the last check.
    pub served_serial: Option<String>,
    /// When the version was delivered.
    pub delivered_at: Option<String>,
    /// When it was seen served.
    pub verified_at: Option<String>,
    /// The version whose delivery is failing now.
    pub failing_version: Option<u32>,
    /// Why it fails, or what the drift check saw.
    pub last_error: Option<String>,
    /// When a drift was first seen.
    pub drift_at: Option<String>,
    /// When the drift check last looked.
    pub checked_at: Option<String>,
}

/// One delivery attempt.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DeliveryAttemptView {
    /// When.
    pub time: String,
    /// The target.
    pub target: String,
    /// The version delivered.
    pub version: Option<u32>,
    /// `success`, `failure` or `unchanged` (already served: nothing delivered).
    pub outcome: String,
    /// Whether a TLS check saw it served.
    pub verified: bool,
    /// The serial served at the check.
    pub served_serial: Option<String>,
    /// The attempt number of the delivery.
    pub attempt: u32,
    /// What happened.
    pub detail: String,
}

/// `POST /v3/scm/certificates/{certificate_id}/deployments/{target}/push` (OpenSCM extension):
/// the current version delivered to one target (answered when its first attempt succeeded).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PushToTargetResponse {
    /// The certificate.
    pub certificate_id: String,
    /// The target.
    pub target: String,
    /// `served` (seen served), `delivered` (the target has no TLS check) or `unchanged`.
    pub state: String,
    /// The version it holds now.
    pub version: u32,
}

/// `PUT /v3/scm/certificates/{certificate_id}/auto-renew` (OpenSCM extension) body and answer.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AutoRenewBody {
    /// On (`true`) or off (`false`).
    pub auto_renew: Option<bool>,
}

/// The answer to `PUT .../auto-renew`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AutoRenewResponse {
    /// The certificate.
    pub certificate_id: String,
    /// The switch as it is now.
    pub auto_renew: bool,
}
