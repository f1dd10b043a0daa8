//! What the client authenticates with, and the `credentials.json` the server writes.

use std::path::Path;

use scm_sign::SecretKey;
use serde::Deserialize;

use crate::ClientError;

/// An AK/SK pair and the ids the client sends beside it.
///
/// `domain_id` goes out as `X-Domain-Id` on v3 and IAM routes (as the SDK's `GlobalCredentials`
/// does) and `project_id` as `X-Project-Id` on v2 routes (as `BasicCredentials` does); each is
/// left out when unknown. The secret's `Debug` output is redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Access key (AK).
    pub access_key: String,
    /// Secret key (SK).
    pub secret_key: SecretKey,
    /// The account (domain) id, if known.
    pub domain_id: Option<String>,
    /// The credential's project id, if known.
    pub project_id: Option<String>,
}

impl Credentials {
    /// An AK/SK pair without domain or project id.
    pub fn new(access_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Self {
            access_key: access_key.into(),
            secret_key: SecretKey::new(secret_key.into()),
            domain_id: None,
            project_id: None,
        }
    }

    /// The same, with a domain id.
    pub fn with_domain_id(mut self, domain_id: impl Into<String>) -> Self {
        self.domain_id = Some(domain_id.into());
        self
    }

    /// The same, with a project id.
    pub fn with_project_id(mut self, project_id: impl Into<String>) -> Self {
        self.project_id = Some(project_id.into());
        self
    }
}

/// The JSON the server writes to `DATA_DIR/credentials.json` on first start (keys `access_key`,
/// `secret_key`, `domain_id`, `project_id`, `endpoint`). `openscm admin credential create` prints
/// the same keys but `endpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialsFile {
    /// The endpoint clients should use, e.g. `http://127.0.0.1:8080`.
    pub endpoint: Option<String>,
    /// The credential.
    pub credentials: Credentials,
}

#[derive(Deserialize)]
struct Wire {
    access_key: String,
    secret_key: String,
    domain_id: Option<String>,
    project_id: Option<String>,
    endpoint: Option<String>,
}

impl CredentialsFile {
    /// Reads and parses a credentials file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ClientError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ClientError::Credentials(format!("cannot read {}: {e}", path.display()))
        })?;
        Self::parse(&text).map_err(|e| ClientError::Credentials(format!("{}: {e}", path.display())))
    }

    /// Parses the JSON of a credentials file (or of `openscm admin credential create`).
    pub fn parse(json: &str) -> Result<Self, ClientError> {
        let wire: Wire = serde_json::from_str(json)
            .map_err(|e| ClientError::Credentials(format!("not a credentials document: {e}")))?;
        Ok(Self {
            endpoint: wire.endpoint,
            credentials: Credentials {
                access_key: wire.access_key,
                secret_key: SecretKey::new(wire.secret_key),
                domain_id: wire.domain_id,
                project_id: wire.project_id,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_servers_file_and_the_admin_output() {
        let file = CredentialsFile::parse(
            r#"{"access_key": "AK1", "secret_key": "SK1", "domain_id": "d1", "project_id": "p1",
                "endpoint": "http://127.0.0.1:8080"}"#,
        )
        .unwrap();
        assert_eq!(file.endpoint.as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(
            file.credentials,
            Credentials::new("AK1", "SK1")
                .with_domain_id("d1")
                .with_project_id("p1")
        );
        assert!(!format!("{file:?}").contains("SK1"));

        let admin =
            CredentialsFile::parse(r#"{"access_key": "AK2", "secret_key": "SK2"}"#).unwrap();
        assert_eq!(admin.endpoint, None);
        assert_eq!(admin.credentials, Credentials::new("AK2", "SK2"));

        let err = CredentialsFile::parse(r#"{"access_key": "AK2"}"#).unwrap_err();
        assert!(err.to_string().contains("secret_key"), "{err}");
    }
}
