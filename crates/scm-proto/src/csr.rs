//! Wire types of the CSR operations (reference §4.4, §4.7.12).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `POST /v3/scm/csr` body (`CreateCsrRequestBody`). Every field is optional here so that the
/// domain can name the missing one.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct CreateCsrBody {
    /// Name, 1..63 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Primary domain (the subject CN and the first subjectAltName).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain_name: Option<String>,
    /// Additional domains, `;`- or `,`-separated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sans: Option<String>,
    /// `RSA_2048`, `RSA_3072`, `RSA_4096`, `EC_P256`, `EC_P384` (or `SM2`, refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key_algo: Option<String>,
    /// `PERSONAL` or `ENTERPRISE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<String>,
    /// Country (C), required for `ENTERPRISE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company_country: Option<String>,
    /// State or province (ST), required for `ENTERPRISE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company_province: Option<String>,
    /// City (L), required for `ENTERPRISE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company_city: Option<String>,
    /// Organisation (O), required for `ENTERPRISE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
}

/// `POST /v3/scm/csr/upload` body (`UploadCsrRequestBody`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct UploadCsrBody {
    /// Name, 1..63 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The CSR, PEM, at most 2555 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csr: Option<String>,
    /// Its private key, PEM, at most 4096 characters; optional.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
}

/// `PUT /v3/scm/csr/{id}` body (`UpdateCSRRequestBody`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct UpdateCsrBody {
    /// The new name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `CSRResponseBody`: an item of ListCsr and the answer of ShowCsr and UpdateCsr. Every key is
/// present; fields an uploaded CSR does not have are `null`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CsrResponse {
    /// CSR id, 32 lower-case hex characters.
    pub id: String,
    /// Name.
    pub name: String,
    /// The CSR, PEM.
    pub csr: String,
    /// Primary domain.
    pub domain_name: String,
    /// Additional domains, `;`-separated (empty when none).
    pub sans: String,
    /// Key algorithm (`null` for an uploaded RSA key of a size without an API name).
    pub private_key_algo: Option<String>,
    /// `PERSONAL` or `ENTERPRISE` (`null` for an uploaded CSR).
    pub usage: Option<String>,
    /// Country.
    pub company_country: Option<String>,
    /// State or province.
    pub company_province: Option<String>,
    /// City.
    pub company_city: Option<String>,
    /// Organisation.
    pub company_name: Option<String>,
    /// Created, ms since the epoch.
    pub create_time: i64,
    /// Last changed, ms since the epoch.
    pub update_time: i64,
}

/// The answer of CreateCsr (201): [`CsrResponse`] without the PEM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CreateCsrResponse {
    /// CSR id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Primary domain.
    pub domain_name: String,
    /// Additional domains, `;`-separated.
    pub sans: String,
    /// Key algorithm.
    pub private_key_algo: String,
    /// `PERSONAL` or `ENTERPRISE`.
    pub usage: String,
    /// Country.
    pub company_country: Option<String>,
    /// State or province.
    pub company_province: Option<String>,
    /// City.
    pub company_city: Option<String>,
    /// Organisation.
    pub company_name: Option<String>,
    /// Created, ms since the epoch.
    pub create_time: i64,
    /// Last changed, ms since the epoch.
    pub update_time: i64,
}

/// `GET /v3/scm/csr`: a page of CSRs and the number matching.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ListCsrResponse {
    /// The page (always present, `[]` past the end).
    pub csr_list: Vec<CsrResponse>,
    /// How many CSRs match the filters.
    pub total: u64,
}

/// The answer of UploadCsr.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UploadCsrResponse {
    /// CSR id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Created, ms since the epoch.
    pub create_time: i64,
}

/// `GET /v3/scm/csr/{id}/private-key`.
#[derive(Clone, Serialize, Deserialize, JsonSchema)]
pub struct CsrPrivateKeyResponse {
    /// The key, PKCS#8 PEM.
    pub private_key: String,
}

impl std::fmt::Debug for CsrPrivateKeyResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsrPrivateKeyResponse")
            .field("private_key", &"<redacted>")
            .finish()
    }
}

/// The query of `GET /v3/scm/csr` (described for the OpenAPI document; the handler reads the
/// pairs).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct ListCsrQuery {
    /// Page size, 10..50 (default 10).
    #[schemars(range(min = 10, max = 50))]
    pub limit: Option<u32>,
    /// Items to skip, 0..1000000.
    #[schemars(range(min = 0, max = 1_000_000))]
    pub offset: Option<u32>,
    /// Case-insensitive substring of the name.
    #[schemars(length(max = 63))]
    pub name: Option<String>,
    /// Key algorithm filter.
    #[schemars(extend("enum" = ["RSA_2048", "RSA_3072", "RSA_4096", "EC_P256", "EC_P384", "SM2"]))]
    pub private_key_algo: Option<String>,
}
