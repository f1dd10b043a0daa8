//! Certificate status values, spelled exactly as the API does.

use std::fmt;
use std::str::FromStr;

/// Status of a certificate (§4.8 of the reference). OpenSCM currently produces `PAID`, `CHECKING`,
/// `ISSUED`, `UPLOAD`, `EXPIRED` and `REVOKED`; the others exist so that filters parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertificateStatus {
    /// Bought and paid; waiting for the application.
    Paid,
    /// Application submitted, under review.
    Checking,
    /// Waiting for domain validation.
    CheckingDomain,
    /// Waiting for organisation validation.
    CheckingOrg,
    /// Approved, being issued.
    Issuing,
    /// Issued.
    Issued,
    /// Application rejected.
    Unpassed,
    /// Cancellation of the application under review.
    CancelChecking,
    /// Past `not_after`.
    Expired,
    /// Revocation under review.
    Revoking,
    /// Revocation being cancelled (spelled `CANCLEREVOKING` by the API).
    CancelRevoking,
    /// Revoked.
    Revoked,
    /// Imported by the user.
    Upload,
    /// Adding SANs, under review.
    SupplementChecking,
    /// Cancelling the SAN addition.
    CancelSupplementing,
}

impl CertificateStatus {
    /// Every status.
    pub const ALL: [Self; 15] = [
        Self::Paid,
        Self::Checking,
        Self::CheckingDomain,
        Self::CheckingOrg,
        Self::Issuing,
        Self::Issued,
        Self::Unpassed,
        Self::CancelChecking,
        Self::Expired,
        Self::Revoking,
        Self::CancelRevoking,
        Self::Revoked,
        Self::Upload,
        Self::SupplementChecking,
        Self::CancelSupplementing,
    ];

    /// Every spelling, in declaration order (the `enum` of the OpenAPI schemas).
    pub fn wire_names() -> Vec<&'static str> {
        Self::ALL.iter().map(|v| v.as_str()).collect()
    }

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paid => "PAID",
            Self::Checking => "CHECKING",
            Self::CheckingDomain => "CHECKING_DOMAIN",
            Self::CheckingOrg => "CHECKING_ORG",
            Self::Issuing => "ISSUING",
            Self::Issued => "ISSUED",
            Self::Unpassed => "UNPASSED",
            Self::CancelChecking => "CANCELCHECKING",
            Self::Expired => "EXPIRED",
            Self::Revoking => "REVOKING",
            Self::CancelRevoking => "CANCLEREVOKING",
            Self::Revoked => "REVOKED",
            Self::Upload => "UPLOAD",
            Self::SupplementChecking => "SUPPLEMENTCHECKING",
            Self::CancelSupplementing => "CANCELSUPPLEMENTING",
        }
    }
}

impl CertificateStatus {
    /// Whether a certificate in this status holds material that can be exported and pushed: an
    /// issued certificate, or one the user imported. The one place this rule is written.
    pub const fn is_deployable(self) -> bool {
        matches!(self, Self::Issued | Self::Upload)
    }
}

impl CertificateStatus {
    /// The status a certificate shows at `now_ms`: an issued or imported certificate whose
    /// `not_after` has passed is `EXPIRED` from that moment, whether or not background work has
    /// stored it yet. Every read (show, list, export, push) goes through this; the list filter's
    /// SQL says the same (a test pins the two).
    pub const fn at(self, not_after_ms: Option<i64>, now_ms: i64) -> Self {
        match (self, not_after_ms) {
            (Self::Issued | Self::Upload, Some(end)) if end <= now_ms => Self::Expired,
            (other, _) => other,
        }
    }
}

impl FromStr for CertificateStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|v| v.as_str() == s).ok_or(())
    }
}

impl fmt::Display for CertificateStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::CertificateStatus as S;

    #[test]
    fn issued_and_uploaded_certificates_expire_at_not_after() {
        assert_eq!(S::Issued.at(Some(1000), 999), S::Issued);
        assert_eq!(S::Issued.at(Some(1000), 1000), S::Expired);
        assert_eq!(S::Upload.at(Some(1000), 5000), S::Expired);
        assert_eq!(S::Paid.at(None, 5000), S::Paid);
        assert_eq!(S::Revoked.at(Some(1000), 5000), S::Revoked);
        assert_eq!(S::Expired.at(Some(1000), 5), S::Expired);
    }
}
