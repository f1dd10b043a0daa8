//! Wire types of ImportCertificate (reference §4.3.3).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::v3::CERTIFICATE_ID_PATTERN;

/// `POST /v3/scm/certificates/import` body (`ImportCertificateRequestBody`). Every field is
/// optional here so that the domain can name the missing one.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct ImportCertificateBody {
    /// Name, 3..63 characters of `A-Z a-z 0-9 _ - .`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The certificate, PEM, at most 4096 characters; may be followed by its chain (used when
    /// `certificate_chain` is not given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// The chain, PEM, lowest CA first, at most 8192 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_chain: Option<String>,
    /// The certificate's private key, unencrypted PEM, at most 4096 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    /// `true`: refuse a certificate already in the account (same SHA-1 fingerprint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_check: Option<bool>,
    /// Enterprise project: `0` (default) or a UUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enterprise_project_id: Option<String>,
    /// SM2 encryption certificate (refused: OpenSCM has no SM2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enc_certificate: Option<String>,
    /// SM2 encryption key (refused: OpenSCM has no SM2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enc_private_key: Option<String>,
}

/// `POST /v3/scm/certificates/import` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImportCertificateResponse {
    /// The new certificate's id (`scs` + 13 digits).
    #[schemars(pattern(CERTIFICATE_ID_PATTERN))]
    pub certificate_id: String,
}
