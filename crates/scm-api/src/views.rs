//! Records → wire types. Every documented key is emitted; unset values are `null` (show) or empty
//! (list items, whose Go model marks every field required).

use scm_core::application::Applicant;
use scm_core::issuance::wildcard_count;
use scm_proto::v2::PushHistoryItem;
use scm_proto::v3::{CertificateDetail, ShowCertificateResponse};
use scm_proto::{DomainType, PrimaryDomainType};
use scm_store::{CertificateRecord, PushRecord};
use time::OffsetDateTime;
use time::macros::format_description;

/// `YYYY-MM-DD HH:MM:SS.0`, UTC: the style of the API's examples (the real format is not
/// documented; see README).
pub(crate) fn api_time(ms: i64) -> Option<String> {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    t.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second].0"
    ))
    .ok()
}

/// `push_support` / `deploy_support`: whether the certificate can be pushed.
fn deployable(c: &CertificateRecord) -> bool {
    c.is_pushable()
}

/// Months of validity bought (`effective_time` is in years).
fn validity_months(c: &CertificateRecord) -> i64 {
    c.product.effective_time.saturating_mul(12)
}

pub(crate) fn show(c: &CertificateRecord) -> ShowCertificateResponse {
    let app = c.application.as_ref();
    let issued = c.issued.as_ref();
    let applicant = app.and_then(|a| serde_json::from_str::<Applicant>(&a.form_json).ok());
    ShowCertificateResponse {
        id: c.id.to_string(),
        status: c.status.as_str().into(),
        order_id: Some(c.order_id.to_string()),
        name: c.name.clone(),
        cert_type: Some(c.product.cert_type.as_str().into()),
        brand: Some(c.product.brand.as_str().into()),
        push_support: if deployable(c) {
            "ON".into()
        } else {
            "OFF".into()
        },
        revoke_reason: None,
        signature_algorithm: issued.map(|i| i.signature_algorithm.clone()),
        issue_time: issued.and_then(|i| api_time(i.issued_ms)),
        not_before: issued.and_then(|i| api_time(i.not_before_ms)),
        not_after: issued.and_then(|i| api_time(i.not_after_ms)),
        validity_period: validity_months(c),
        validation_method: app.and_then(|a| a.validation_method.clone()),
        domain_type: Some(c.product.domain_type.as_str().into()),
        multi_domain_type: match (c.product.domain_type, c.product.primary_domain_type) {
            (DomainType::Multi, Some(PrimaryDomainType::Wildcard)) => {
                Some("primary_wildcard".into())
            }
            (DomainType::Multi, Some(PrimaryDomainType::Single)) => Some("primary_single".into()),
            _ => None,
        },
        domain: app.map(|a| a.domain.clone()),
        sans: app.map(|a| a.sans.clone()),
        domain_count: c.product.domain_numbers,
        wildcard_count: wildcard_count(&c.product),
        fingerprint: issued.map(|i| i.fingerprint.clone()),
        shared: false,
        application_info: applicant.map(|a| a.to_info()),
        description: Some(c.description.clone()),
        enterprise_project_id: c.product.enterprise_project_id.clone(),
        authentification: Vec::new(),
    }
}

pub(crate) fn detail(c: &CertificateRecord) -> CertificateDetail {
    let app = c.application.as_ref();
    let issued = c.issued.as_ref();
    CertificateDetail {
        id: c.id.to_string(),
        name: c.name.clone(),
        domain: app.map(|a| a.domain.clone()).unwrap_or_default(),
        sans: app.map(|a| a.sans.clone()).unwrap_or_default(),
        signature_algorithm: issued
            .map(|i| i.signature_algorithm.clone())
            .unwrap_or_default(),
        deploy_support: deployable(c),
        cert_type: c.product.cert_type.as_str().into(),
        brand: c.product.brand.as_str().into(),
        expire_time: issued
            .and_then(|i| api_time(i.not_after_ms))
            .unwrap_or_default(),
        domain_type: c.product.domain_type.as_str().into(),
        validity_period: validity_months(c),
        status: c.status.as_str().into(),
        domain_count: c.product.domain_numbers,
        wildcard_count: wildcard_count(&c.product),
        description: c.description.clone(),
        domain_id: c.domain_id.to_string(),
        enterprise_project_id: c.product.enterprise_project_id.clone(),
    }
}

pub(crate) fn push_item(r: &PushRecord) -> PushHistoryItem {
    PushHistoryItem {
        push_time: r.pushed_ms.to_string(),
        push_remote_project: r.region.clone(),
        push_service: r.service.clone(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn time_format() {
        assert_eq!(
            super::api_time(1_556_257_820_000).unwrap(),
            "2019-04-26 05:50:20.0"
        );
    }
}
