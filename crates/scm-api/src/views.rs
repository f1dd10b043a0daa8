//! Records → wire types. Every documented key is emitted; one rule for unset values in every
//! answer: a value not known yet (the domain before the application, the expiry before issuance)
//! is `null`, an empty list `[]`.

use scm_core::application::Applicant;
use scm_core::issuance::wildcard_count;
use scm_core::service::import;
use scm_core::service::lifecycle::unsubscribable;
use scm_core::service::tag_query::TaggedCertificate;
use scm_proto::tags::{ResourceTag, TagResource, TagResourceDetail};
use scm_proto::v2::PushHistoryItem;
use scm_proto::v3::{CertificateDetail, ShowCertificateResponse};
use scm_proto::{DomainType, PrimaryDomainType};
use scm_store::{CertificateRecord, PushRecord, TagRecord};
use time::OffsetDateTime;
use time::macros::format_description;

/// `YYYY-MM-DD HH:MM:SS.0`, UTC: the style of the API's examples (the real format is not
/// documented; see docs/api-choices.md, "Times").
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

/// Months of validity bought (`effective_time` is in years); of an imported certificate, its
/// own validity in whole months.
/// `validity_period`: the months one certificate of it is valid, as the reference has it
/// ("multi-year products are stacked 1-year certificates"): the current certificate's own
/// validity once there is one (imported or issued; a purchase of several years is delivered as
/// successive certificates, renewed before each expires), and before that the product's
/// period up to 12 months. `effective_time` (the years bought) is the product's purchased
/// period in `ListCertificatesByTag`'s `purchase_period`.
fn validity_months(c: &CertificateRecord) -> i64 {
    match c.issued.as_ref() {
        Some(i) => import::validity_months(i.not_before_ms, i.not_after_ms),
        None => c.product.effective_time.saturating_mul(12).min(12),
    }
}

/// Certificates still to come in the purchased period (`effective_time` years from the
/// purchase): after the current one expires, how many more of its lifetime the period needs; 0
/// once the period is over (renewal goes on while the certificate is kept) and for an imported
/// certificate.
fn remaining_certificates(c: &CertificateRecord) -> i64 {
    const YEAR_MS: i64 = 365 * 86_400_000;
    let Some(i) = c.issued.as_ref().filter(|_| !c.is_imported()) else {
        return 0;
    };
    let period_end = c
        .created_ms
        .saturating_add(c.product.effective_time.saturating_mul(YEAR_MS));
    let lifetime = i.not_after_ms.saturating_sub(i.not_before_ms).max(1);
    let left = period_end.saturating_sub(i.not_after_ms);
    if left <= 0 {
        0
    } else {
        // Within a day of a whole certificate counts as covered (validity is backdated a little).
        (left - 86_400_000).max(0).saturating_add(lifetime - 1) / lifetime
    }
}

// --- import ---
/// The certificate type: what was bought; `None` for an imported certificate.
pub(crate) fn cert_type(c: &CertificateRecord) -> Option<String> {
    (!c.is_imported()).then(|| c.product.cert_type.as_str().to_owned())
}

/// The brand: what was bought, or, for an imported certificate, the one its issuer is when its
/// chain was verified up to a certificate the server trusts ([`import::imported_brand`]; `None`
/// otherwise, and when the issuer is none of the documented brands).
pub(crate) fn brand(c: &CertificateRecord) -> Option<String> {
    if c.is_imported() {
        import::imported_brand(c).map(|b| b.as_str().to_owned())
    } else {
        Some(c.product.brand.as_str().to_owned())
    }
}

/// The order: none for an imported certificate (its order row is only a placeholder).
fn order_id(c: &CertificateRecord) -> Option<String> {
    (!c.is_imported()).then(|| c.order_id.to_string())
}

pub(crate) fn show(c: &CertificateRecord) -> ShowCertificateResponse {
    let app = c.application.as_ref();
    let issued = c.issued.as_ref();
    let applicant = app.and_then(|a| serde_json::from_str::<Applicant>(&a.form_json).ok());
    ShowCertificateResponse {
        id: c.id.to_string(),
        status: c.status.as_str().into(),
        order_id: order_id(c),
        name: c.name.clone(),
        cert_type: cert_type(c),
        brand: brand(c),
        push_support: if deployable(c) {
            "ON".into()
        } else {
            "OFF".into()
        },
        revoke_reason: c.revocation.as_ref().map(|r| r.reason.clone()),
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

/// A proof of control the account must publish, as `authentification` shows it.
pub(crate) fn authentification(
    p: scm_core::lifecycle::validation::Proof,
) -> scm_proto::v3::Authentification {
    scm_proto::v3::Authentification {
        record_name: Some(p.record_name),
        record_type: Some(p.record_type),
        record_value: Some(p.record_value),
        domain: Some(p.domain),
    }
}

pub(crate) fn detail(c: &CertificateRecord) -> CertificateDetail {
    let app = c.application.as_ref();
    let issued = c.issued.as_ref();
    CertificateDetail {
        id: c.id.to_string(),
        name: c.name.clone(),
        domain: app.map(|a| a.domain.clone()),
        sans: app.map(|a| a.sans.clone()),
        signature_algorithm: issued.map(|i| i.signature_algorithm.clone()),
        deploy_support: deployable(c),
        cert_type: cert_type(c),
        brand: brand(c),
        expire_time: issued.and_then(|i| api_time(i.not_after_ms)),
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

pub(crate) fn resource_tag(t: TagRecord) -> ResourceTag {
    ResourceTag {
        key: Some(t.key),
        value: Some(t.value),
    }
}

/// A certificate found by its tags; times are millisecond epochs as strings (`""` when unset),
/// as the reference documents for this object.
pub(crate) fn tag_resource(t: &TaggedCertificate) -> TagResource {
    let c = &t.certificate;
    let app = c.application.as_ref();
    let issued = c.issued.as_ref();
    let ms = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    TagResource {
        resource_id: c.id.to_string(),
        tags: t.tags.iter().cloned().map(resource_tag).collect(),
        resource_name: c.name.clone(),
        resource_detail: TagResourceDetail {
            cert_id: c.id.to_string(),
            cert_name: c.name.clone(),
            domain: app.map(|a| a.domain.clone()).unwrap_or_default(),
            cert_type: cert_type(c).unwrap_or_default(),
            cert_brand: brand(c).unwrap_or_default(),
            domain_type: c.product.domain_type.as_str().into(),
            purchase_period: c.product.effective_time,
            expired_time: ms(issued.map(|i| i.not_after_ms)),
            order_status: c.status.as_str().into(),
            domain_num: c.product.domain_numbers,
            wildcard_number: wildcard_count(&c.product),
            sans: app.map(|a| a.sans.clone()).unwrap_or_default(),
            cert_des: c.description.clone(),
            signature_algorithm: issued
                .map(|i| i.signature_algorithm.clone())
                .unwrap_or_default(),
            fail_reason: String::new(),
            partner_order_id: order_id(c).unwrap_or_default(),
            push_support: deployable(c),
            cert_issued_time: ms(issued.map(|i| i.issued_ms)),
            resource_id: c.id.to_string(),
            unsubscribe_support: unsubscribable(c.status) && !c.is_imported(),
            enterprise_project_id: c.product.enterprise_project_id.clone(),
            origin_cert_id: String::new(),
            renewal_cert_id: String::new(),
            auto_renew_status: i64::from(
                c.lifecycle.auto_renew && !c.is_imported() && c.lifecycle.current_version.is_some(),
            ),
            remain_cert_number: remaining_certificates(c),
            auto_deploy_support: false,
        },
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
    use scm_proto::CertificateStatus;
    use scm_store::{CertificateRecord, IssuedRecord};

    use crate::test_records::{issued_record, record};

    const DAY: i64 = 86_400_000;

    /// A purchased certificate of `years`, bought at 0, its current version valid `from..until`.
    fn bought(years: i64, valid: Option<(i64, i64)>) -> CertificateRecord {
        let mut c = record("multi-year", CertificateStatus::Issued);
        c.product.effective_time = years;
        c.issued = valid.map(|(from, until)| IssuedRecord {
            issued_ms: from,
            not_before_ms: from,
            ..issued_record("01", until, None)
        });
        c
    }

    #[test]
    fn a_three_year_purchase_is_delivered_as_yearly_certificates() {
        // Not issued yet: one certificate's period, at most 12 months.
        assert_eq!(super::validity_months(&bought(3, None)), 12);
        assert_eq!(super::remaining_certificates(&bought(3, None)), 0);
        // The first year's certificate: two more to come; then one; then none (the period is
        // covered, renewal goes on).
        let year = 365 * DAY;
        let first = bought(3, Some((0, year)));
        assert_eq!(super::validity_months(&first), 12);
        assert_eq!(super::remaining_certificates(&first), 2);
        let second = bought(3, Some((year - 5 * 60_000, 2 * year - 5 * 60_000)));
        assert_eq!(super::remaining_certificates(&second), 1);
        // Renewed early (120 days left): the rest of the period needs two more.
        let early = bought(3, Some((year - 120 * DAY, 2 * year - 120 * DAY)));
        assert_eq!(super::remaining_certificates(&early), 2);
        let third = bought(3, Some((3 * year - 200 * DAY, 4 * year - 200 * DAY)));
        assert_eq!(super::remaining_certificates(&third), 0);
        // 90-day certificates: the months shown are theirs.
        let short = bought(1, Some((0, 90 * DAY)));
        assert_eq!(super::validity_months(&short), 3);
        assert_eq!(
            super::remaining_certificates(&short),
            4,
            "365 days need five of 90"
        );
    }

    #[test]
    fn time_format() {
        assert_eq!(
            super::api_time(1_556_257_820_000).unwrap(),
            "2019-04-26 05:50:20.0"
        );
    }
}
