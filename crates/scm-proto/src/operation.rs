//! The operation table: every route OpenSCM serves, with its method, path, name and the scope a
//! caller needs. The HTTP router, the access log (and later metrics and authorisation) are all
//! built from this one table, so a route cannot exist without a name and a scope, and a new
//! operation does not compile until the router maps it to a handler.
//!
//! Names are the official SDK's operation names where the SDK has the operation (v3), and the
//! v2 pages' names otherwise.

use std::fmt;

/// HTTP method of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `DELETE`.
    Delete,
}

impl Method {
    /// The method as sent on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
        }
    }
}

/// What a caller must prove before an operation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Nothing: anyone may call it (`/health`, `/openapi.json`, the CRLs).
    Public,
    /// An authenticated caller; every resource it names must belong to the caller's account.
    Account,
    /// An authenticated caller, and the `{project_id}` of the path must be a project of the
    /// caller's account (the v2 routes).
    Project,
}

macro_rules! operations {
    ($( $(#[$doc:meta])* $name:ident = ($method:ident, $path:literal, $scope:ident), )*) => {
        /// One API operation.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Operation {
            $( $(#[$doc])* $name, )*
        }

        impl Operation {
            /// Every operation, in table order.
            pub const ALL: &'static [Operation] = &[$(Self::$name),*];

            /// The stable name, as written in logs and metrics.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$name => stringify!($name),)*
                }
            }

            /// The HTTP method.
            pub const fn method(self) -> Method {
                match self {
                    $(Self::$name => Method::$method,)*
                }
            }

            /// The route template, with `{param}` placeholders (the router's syntax).
            pub const fn path(self) -> &'static str {
                match self {
                    $(Self::$name => $path,)*
                }
            }

            /// What the caller must prove.
            pub const fn scope(self) -> Scope {
                match self {
                    $(Self::$name => Scope::$scope,)*
                }
            }
        }
    };
}

operations! {
    /// Liveness probe, unauthenticated.
    Health = (Get, "/health", Public),
    /// IAM: a bearer token for the AK/SK that signed the request.
    CreateToken = (Post, "/v3/auth/tokens", Account),
    /// IAM: the caller's domain, which the SDK asks to learn its domain id.
    KeystoneListAuthDomains = (Get, "/v3/auth/domains", Account),
    /// v2: buy certificates.
    V2PurchaseCertificate = (Post, "/v2/{project_id}/scm/cert/purchase", Project),
    /// v2: save a draft application.
    V2SaveApplication = (Post, "/v2/{project_id}/scm/cert/{cert_id}/save", Project),
    /// v2: submit the application (issue).
    V2CompleteApplication = (Post, "/v2/{project_id}/scm/cert/{cert_id}/complete", Project),
    /// v2: push to a service.
    V2PushCertificate = (Post, "/v2/{project_id}/scm/cert/{cert_id}/push", Project),
    /// v2: the last successful pushes.
    V2ListPushHistory = (Get, "/v2/{project_id}/scm/cert/{cert_id}/push-history", Project),
    // --- revocation ---
    /// v2: revoke an issued certificate (it is put on its CA's CRL).
    V2RevokeCertificate = (Post, "/v2/{project_id}/scm/cert/{cert_id}/revoke", Project),
    /// v3: list certificates.
    ListCertificates = (Get, "/v3/scm/certificates", Account),
    /// v3: buy certificates.
    SubscribeCertificate = (Post, "/v3/scm/certificates/buy", Account),
    /// v3: one certificate.
    ShowCertificate = (Get, "/v3/scm/certificates/{certificate_id}", Account),
    /// v3: apply (issue).
    ApplyCertificate = (Post, "/v3/scm/certificates/{certificate_id}/apply", Account),
    /// v3: export certificate, chain and key.
    ExportCertificate = (Post, "/v3/scm/certificates/{certificate_id}/export", Account),
    /// v3: push to a service.
    PushCertificate = (Post, "/v3/scm/certificates/{certificate_id}/push", Account),
    // --- import ---
    /// v3: import a certificate made elsewhere, with its chain and key (status `UPLOAD`).
    ImportCertificate = (Post, "/v3/scm/certificates/import", Account),
    // --- tags ---
    /// v3: add one tag to a certificate.
    CreateCertificateTag = (Post, "/v3/scm/{resource_id}/tags", Account),
    /// v3: the tags of a certificate.
    ListTagsByCertificate = (Get, "/v3/scm/{resource_id}/tags", Account),
    /// v3: add or delete tags of a certificate in one call.
    BatchCreateOrDeleteTags = (Post, "/v3/scm/{resource_id}/tags/action", Account),
    /// v3: every tag key of the account's certificates, with its values.
    ListAllTags = (Get, "/v3/scm/tags", Account),
    // --- lifecycle ---
    /// v3: delete a certificate (204).
    DeleteCertificate = (Delete, "/v3/scm/certificates/{certificate_id}", Account),
    /// v3: unsubscribe (refund) a purchased certificate; it is gone afterwards.
    UnsubscribeCertificate = (Delete, "/v3/scm/certificates/{cert_id}/unsubscribe", Account),
    /// v3: withdraw a submitted application.
    CancelCertificateRequest = (Post, "/v3/scm/certificates/{certificate_id}/cancel-cert", Account),
    // --- by tag ---
    /// v3: filter or count certificates by their tags (the path segment is the literal
    /// `resource_instances`).
    ListCertificatesByTag = (Post, "/v3/scm/resource_instances/action", Account),
    // --- notices ---
    /// v3: turn expiry reminders of certificates on (the body is a JSON array).
    EnableNotification = (Post, "/v3/scm/notification/enable", Account),
    /// v3: turn expiry reminders of certificates off.
    DisableNotification = (Post, "/v3/scm/notification/disable", Account),
    // --- csr ---
    /// v3: generate a key and a CSR for it on the server (201).
    CreateCsr = (Post, "/v3/scm/csr", Account),
    /// v3: the account's CSRs, a page of them.
    ListCsr = (Get, "/v3/scm/csr", Account),
    /// v3: one CSR, with its PEM.
    ShowCsr = (Get, "/v3/scm/csr/{id}", Account),
    /// v3: rename a CSR.
    UpdateCsr = (Put, "/v3/scm/csr/{id}", Account),
    /// v3: delete a CSR and its key (204).
    DeleteCsr = (Delete, "/v3/scm/csr/{id}", Account),
    /// v3: the private key of a CSR, PEM.
    ShowCsrPrivateKey = (Get, "/v3/scm/csr/{id}/private-key", Account),
    /// v3: store a CSR made elsewhere, with its key or without.
    UploadCsr = (Post, "/v3/scm/csr/upload", Account),
    // --- multi-target push ---
    /// v3: push to several regions of a service in one call.
    BatchPushCertificate = (Post, "/v3/scm/certificates/{certificate_id}/batch-push", Account),
    /// v3: push to named resources (push targets) of a service.
    DeployCertificate = (Post, "/v3/scm/certificates/{certificate_id}/deploy", Account),
    /// v3: where certificates are deployed, by service and region.
    ListDeployedResources = (Post, "/v3/scm/deployed-resources", Account),
    // --- openapi ---
    /// The OpenAPI 3.1 description of every route (this one included), unauthenticated.
    OpenApiDescription = (Get, "/openapi.json", Public),
    // --- revocation ---
    /// The CRL of a CA of this server, unauthenticated, at `/crl/<ca id>.crl` (the router cannot
    /// match a parameter with a suffix: the segment `<ca id>.crl` is the parameter).
    CertificateRevocationList = (Get, "/crl/{crl_file}", Public),
    // --- tenant ca ---
    /// OpenSCM extension: the root certificate of the caller's account's own CA (and the roots
    /// of retired CAs that issued its older certificates), for its clients to trust.
    ShowCaRoot = (Get, "/v3/scm/ca/root", Account),
    // --- versions and renewal ---
    /// OpenSCM extension: a certificate's versions (each issuance under its id, newest first),
    /// its renewal state, and the history of its state changes.
    ListCertificateVersions = (Get, "/v3/scm/certificates/{certificate_id}/versions", Account),
    /// OpenSCM extension: renew a certificate now (its current version), whatever its renewal
    /// time and auto-renew switch.
    RenewCertificate = (Post, "/v3/scm/certificates/{certificate_id}/renew", Account),
    /// OpenSCM extension: turn a certificate's automatic renewal on or off.
    UpdateAutoRenew = (Put, "/v3/scm/certificates/{certificate_id}/auto-renew", Account),
    /// OpenSCM extension: the certificate, chain and key of one version (an earlier one too).
    ExportCertificateVersion = (
        Post,
        "/v3/scm/certificates/{certificate_id}/versions/{version}/export",
        Account
    ),
    // --- deployments ---
    /// OpenSCM extension: where a certificate is deployed, per push target (delivered and served
    /// versions, failures, drift), and its latest delivery attempts.
    ListCertificateDeployments = (
        Get,
        "/v3/scm/certificates/{certificate_id}/deployments",
        Account
    ),
    /// OpenSCM extension: deliver the current version to one push target of the account, by
    /// name (a failed or stale target pushed again without a new issuance).
    PushCertificateToTarget = (
        Post,
        "/v3/scm/certificates/{certificate_id}/deployments/{target}/push",
        Account
    ),
}

impl Operation {
    /// Whether a call of this operation is recorded in the audit log: every operation that
    /// changes something (or issues a credential: `CreateToken`), and every one that hands out a
    /// private key. Reads are not recorded. The match has no catch-all arm: a new operation does
    /// not compile until it is decided here.
    pub const fn audited(self) -> bool {
        match self {
            Self::CreateToken
            | Self::V2PurchaseCertificate
            | Self::V2SaveApplication
            | Self::V2CompleteApplication
            | Self::V2PushCertificate
            | Self::SubscribeCertificate
            | Self::ApplyCertificate
            | Self::ExportCertificate
            | Self::PushCertificate
            | Self::ImportCertificate
            | Self::CreateCertificateTag
            | Self::BatchCreateOrDeleteTags
            | Self::DeleteCertificate
            | Self::UnsubscribeCertificate
            | Self::CancelCertificateRequest
            | Self::EnableNotification
            | Self::DisableNotification
            | Self::CreateCsr
            | Self::UpdateCsr
            | Self::DeleteCsr
            | Self::ShowCsrPrivateKey
            | Self::UploadCsr
            | Self::BatchPushCertificate
            | Self::DeployCertificate
            | Self::V2RevokeCertificate
            | Self::RenewCertificate
            | Self::UpdateAutoRenew
            | Self::ExportCertificateVersion
            | Self::PushCertificateToTarget => true,
            Self::Health
            | Self::KeystoneListAuthDomains
            | Self::V2ListPushHistory
            | Self::ListCertificates
            | Self::ShowCertificate
            | Self::ListTagsByCertificate
            | Self::ListAllTags
            | Self::ListCertificatesByTag
            | Self::ListCsr
            | Self::ShowCsr
            | Self::ListDeployedResources
            | Self::OpenApiDescription
            | Self::CertificateRevocationList
            | Self::ShowCaRoot
            | Self::ListCertificateVersions
            | Self::ListCertificateDeployments => false,
        }
    }

    /// The path with its placeholders replaced by `params`, in order (unencoded: the signer
    /// encodes each segment). Missing parameters leave their placeholder in place.
    pub fn path_with(self, params: &[&str]) -> String {
        let mut out = String::with_capacity(self.path().len() + 32);
        let mut params = params.iter();
        let mut rest = self.path();
        while let Some(start) = rest.find('{') {
            let Some(len) = rest.get(start..).and_then(|r| r.find('}')) else {
                break;
            };
            out.push_str(rest.get(..start).unwrap_or_default());
            match params.next() {
                Some(p) => out.push_str(p),
                None => out.push_str(rest.get(start..=start + len).unwrap_or_default()),
            }
            rest = rest.get(start + len + 1..).unwrap_or_default();
        }
        out.push_str(rest);
        out
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn routes_are_unique_and_scoped_consistently() {
        let mut routes = HashSet::new();
        let mut names = HashSet::new();
        for op in Operation::ALL {
            assert!(routes.insert((op.method(), op.path())), "{op} routed twice");
            assert!(names.insert(op.name()), "{op} named twice");
            // The v2 routes carry the project in the path, and only they need the project scope.
            assert_eq!(
                op.path().starts_with("/v2/{project_id}/"),
                op.scope() == Scope::Project,
                "{op}"
            );
        }
    }

    #[test]
    fn public_operations_are_not_audited_and_key_exports_are() {
        for op in Operation::ALL {
            if op.scope() == Scope::Public {
                assert!(!op.audited(), "{op}");
            }
            // Every write is audited (GET routes only read; the POST reads are named).
            let post_read = matches!(
                op,
                Operation::ListCertificatesByTag | Operation::ListDeployedResources
            );
            if op.method() != Method::Get && !post_read && op.scope() != Scope::Public {
                assert!(op.audited(), "{op}");
            }
        }
        assert!(Operation::ExportCertificate.audited());
        assert!(Operation::ShowCsrPrivateKey.audited());
    }

    #[test]
    fn paths_are_filled_in_order() {
        assert_eq!(
            Operation::V2SaveApplication.path_with(&["p", "scs1"]),
            "/v2/p/scm/cert/scs1/save"
        );
        assert_eq!(
            Operation::ShowCertificate.path_with(&["scs1"]),
            "/v3/scm/certificates/scs1"
        );
        assert_eq!(Operation::Health.path_with(&[]), "/health");
    }
}
