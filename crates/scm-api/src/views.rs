//! Records → wire types. Every documented key is emitted; unset values are `null` (show) or empty
//! (list items, whose Go model marks every field required).

use scm_core::application::Applicant;
use scm_proto::CertificateStatus;
use scm_proto::v2::PushHistoryItem;
use scm_proto::v3::{CertificateDetail, ShowCertificateResponse};
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

fn wildcard_count(c: &CertificateRecord) -> i64 {
    let p = &c.product;
    match p.domain_type.as_str() {
        "WILDCARD" => 1,
        "MULTI_DOMAIN" => {
            p.wildcard_domain_number.unwrap_or(0)
                + i64::from(p.primary_domain_type.as_deref() == Some("WILDCARD_DOMAIN"))
        }
        _ => 0,
    }
}

fn deployable(c: &CertificateRecord) -> bool {
    matches!(
        c.status,
        CertificateStatus::Issued | CertificateStatus::Upload
    )
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
        cert_type: Some(c.product.cert_type.clone()),
        brand: Some(c.product.brand.clone()),
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
        validity_period: 12,
        validation_method: app.and_then(|a| a.validation_method.clone()),
        domain_type: Some(c.product.domain_type.clone()),
        multi_domain_type: match (
            c.product.domain_type.as_str(),
            c.product.primary_domain_type.as_deref(),
        ) {
            ("MULTI_DOMAIN", Some("WILDCARD_DOMAIN")) => Some("primary_wildcard".into()),
            ("MULTI_DOMAIN", Some(_)) => Some("primary_single".into()),
            _ => None,
        },
        domain: app.map(|a| a.domain.clone()),
        sans: app.map(|a| a.sans.clone()),
        domain_count: c.product.domain_numbers,
        wildcard_count: wildcard_count(c),
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
        cert_type: c.product.cert_type.clone(),
        brand: c.product.brand.clone(),
        expire_time: issued
            .and_then(|i| api_time(i.not_after_ms))
            .unwrap_or_default(),
        domain_type: c.product.domain_type.clone(),
        validity_period: 12,
        status: c.status.as_str().into(),
        domain_count: c.product.domain_numbers,
        wildcard_count: wildcard_count(c),
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
