//! The operations OpenSCM serves, named after the official SDK's v3 operations (and the v2 pages),
//! used for logging, metrics and authorisation.

use std::fmt;

/// One API operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// `GET /health` (unauthenticated).
    Health,
    /// `POST /v3/auth/tokens`.
    CreateToken,
    /// `POST /v2/{project_id}/scm/cert/purchase`.
    V2PurchaseCertificate,
    /// `POST /v2/{project_id}/scm/cert/{cert_id}/save`.
    V2SaveApplication,
    /// `POST /v2/{project_id}/scm/cert/{cert_id}/complete`.
    V2CompleteApplication,
    /// `POST /v2/{project_id}/scm/cert/{cert_id}/push`.
    V2PushCertificate,
    /// `GET /v2/{project_id}/scm/cert/{cert_id}/push-history`.
    V2ListPushHistory,
    /// `POST /v3/scm/certificates/buy`.
    SubscribeCertificate,
    /// `POST /v3/scm/certificates/{certificate_id}/apply`.
    ApplyCertificate,
    /// `GET /v3/scm/certificates/{certificate_id}`.
    ShowCertificate,
    /// `GET /v3/scm/certificates`.
    ListCertificates,
    /// `POST /v3/scm/certificates/{certificate_id}/export`.
    ExportCertificate,
    /// `POST /v3/scm/certificates/{certificate_id}/push`.
    PushCertificate,
    /// Any unrouted request.
    Unknown,
}

impl Operation {
    /// The operation's stable name, as written in logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Health => "Health",
            Self::CreateToken => "CreateToken",
            Self::V2PurchaseCertificate => "V2PurchaseCertificate",
            Self::V2SaveApplication => "V2SaveApplication",
            Self::V2CompleteApplication => "V2CompleteApplication",
            Self::V2PushCertificate => "V2PushCertificate",
            Self::V2ListPushHistory => "V2ListPushHistory",
            Self::SubscribeCertificate => "SubscribeCertificate",
            Self::ApplyCertificate => "ApplyCertificate",
            Self::ShowCertificate => "ShowCertificate",
            Self::ListCertificates => "ListCertificates",
            Self::ExportCertificate => "ExportCertificate",
            Self::PushCertificate => "PushCertificate",
            Self::Unknown => "Unknown",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
