//! Parsing a purchase request (v2 `cert/purchase`, v3 `certificates/buy`) into a [`PurchaseSpec`].
//!
//! The two versions differ in their ranges (v2: `effective_time` 1..2, `order_number` 1..1000 and
//! only OV/EV types; v3: 1..3 and 1..100, six types) and v3 adds the multi-domain breakdown, the
//! enterprise project and tags. Enum values are matched exactly after trimming surrounding
//! whitespace (the v2 page's own example sends `"OV_SSL_CERT "`).

use scm_proto::v3::{PurchaseBody, ResourceTag};
use scm_proto::{Brand, CertType, DomainType, PrimaryDomainType};
use scm_store::Product;
use serde::Serialize;

use crate::DomainError;

/// Which API generation a request came through; the ranges differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// `/v2/{project_id}/scm/...`.
    V2,
    /// `/v3/scm/...`.
    V3,
}

/// A validated purchase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseSpec {
    /// The product each certificate is.
    pub product: Product,
    /// How many certificates.
    pub order_number: u32,
    /// Tags, already checked.
    pub tags: Vec<Tag>,
}

/// A checked resource tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tag {
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
}

fn required<T: Clone>(v: &Option<T>, field: &str) -> Result<T, DomainError> {
    v.clone()
        .ok_or_else(|| DomainError::invalid(field, "is required"))
}

/// Parses one of the `allowed` values of a wire enum, naming them all when `v` is not one.
fn one_of<T: Copy + PartialEq>(
    v: &str,
    allowed: &[T],
    parse: fn(&str) -> Option<T>,
    spell: fn(T) -> &'static str,
    field: &str,
) -> Result<T, DomainError> {
    parse(v).filter(|t| allowed.contains(t)).ok_or_else(|| {
        let names: Vec<&str> = allowed.iter().map(|t| spell(*t)).collect();
        DomainError::invalid(field, format!("must be one of {}", names.join(", ")))
    })
}

fn in_range(v: i64, lo: i64, hi: i64, field: &str) -> Result<i64, DomainError> {
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(DomainError::invalid(
            field,
            format!("must be between {lo} and {hi}"),
        ))
    }
}

/// Refuses `v` longer than `max` characters, naming `field`.
pub(crate) fn max_len(v: &str, max: usize, field: &str) -> Result<(), DomainError> {
    if v.chars().count() > max {
        Err(DomainError::invalid(
            field,
            format!("must be at most {max} characters"),
        ))
    } else {
        Ok(())
    }
}

/// Checks an `enterprise_project_id`: `0`, `all` or a lower-case UUID.
pub fn enterprise_project(v: &str, field: &str) -> Result<String, DomainError> {
    let uuid = v.len() == 36
        && v.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_digit() || c.is_ascii_lowercase()
            }
        });
    if v == "0" || v == "all" || uuid {
        Ok(v.to_owned())
    } else {
        Err(DomainError::invalid(
            field,
            "must be \"0\", \"all\" or an enterprise project UUID",
        ))
    }
}

fn tag_chars_ok(s: &str, allow_slash: bool) -> bool {
    s.chars().all(|c| {
        c.is_alphanumeric()
            || c == ' '
            || matches!(c, '_' | '.' | ':' | '=' | '+' | '-' | '@')
            || (allow_slash && c == '/')
    })
}

fn parse_tags(tags: &[ResourceTag]) -> Result<Vec<Tag>, DomainError> {
    if tags.len() > 10 {
        return Err(DomainError::invalid("tags", "must have at most 10 items"));
    }
    let mut out: Vec<Tag> = Vec::with_capacity(tags.len());
    for (i, t) in tags.iter().enumerate() {
        let key = t.key.clone().unwrap_or_default();
        let value = t.value.clone().unwrap_or_default();
        let kf = format!("tags[{i}].key");
        let vf = format!("tags[{i}].value");
        if key.is_empty() || key.chars().count() > 128 || !tag_chars_ok(&key, false) {
            return Err(DomainError::invalid(
                kf,
                "must be 1 to 128 letters, digits, spaces or _ . : = + - @",
            ));
        }
        if value.chars().count() > 255 || !tag_chars_ok(&value, true) {
            return Err(DomainError::invalid(
                vf,
                "must be 0 to 255 letters, digits, spaces or _ . : = + - @ /",
            ));
        }
        if out.iter().any(|o| o.key == key) {
            return Err(DomainError::invalid(kf, "duplicates another tag key"));
        }
        out.push(Tag { key, value });
    }
    Ok(out)
}

impl PurchaseSpec {
    /// Checks a purchase body against the rules of `version`.
    pub fn parse(body: &PurchaseBody, version: ApiVersion) -> Result<Self, DomainError> {
        let brand = one_of(
            &required(&body.cert_brand, "cert_brand")?,
            Brand::ALL,
            Brand::parse,
            Brand::as_str,
            "cert_brand",
        )?;
        let types = match version {
            ApiVersion::V2 => CertType::V2,
            ApiVersion::V3 => CertType::ALL,
        };
        let cert_type = one_of(
            &required(&body.cert_type, "cert_type")?,
            types,
            CertType::parse,
            CertType::as_str,
            "cert_type",
        )?;
        let domain_type = one_of(
            &required(&body.domain_type, "domain_type")?,
            DomainType::ALL,
            DomainType::parse,
            DomainType::as_str,
            "domain_type",
        )?;
        let max_years = match version {
            ApiVersion::V2 => 2,
            ApiVersion::V3 => 3,
        };
        let effective_time = in_range(
            required(&body.effective_time, "effective_time")?,
            1,
            max_years,
            "effective_time",
        )?;
        let domain_numbers = required(&body.domain_numbers, "domain_numbers")?;
        if domain_type == DomainType::Multi {
            // The v3 page's range is 1..100 (a multi-domain certificate may hold its primary
            // domain only, more added later); the v2 page says 2..100 for MULTI_DOMAIN.
            let min = match version {
                ApiVersion::V2 => 2,
                ApiVersion::V3 => 1,
            };
            in_range(domain_numbers, min, 100, "domain_numbers")?;
        } else if domain_numbers != 1 {
            return Err(DomainError::invalid(
                "domain_numbers",
                format!("must be 1 for {domain_type}"),
            ));
        }
        let max_orders = match version {
            ApiVersion::V2 => 1000,
            ApiVersion::V3 => 100,
        };
        let order_number = in_range(
            required(&body.order_number, "order_number")?,
            1,
            max_orders,
            "order_number",
        )?;
        if !required(&body.agree_privacy_protection, "agree_privacy_protection")? {
            return Err(DomainError::invalid(
                "agree_privacy_protection",
                "must be true",
            ));
        }

        let mut product = Product {
            brand,
            cert_type,
            domain_type,
            effective_time,
            domain_numbers,
            primary_domain_type: None,
            single_domain_number: None,
            wildcard_domain_number: None,
            enterprise_project_id: "0".into(),
        };
        let mut tags = Vec::new();
        if version == ApiVersion::V3 {
            Self::parse_v3_extras(body, &mut product)?;
            if let Some(t) = &body.tags {
                tags = parse_tags(t)?;
            }
        }
        Ok(Self {
            product,
            order_number: u32::try_from(order_number).unwrap_or(1),
            tags,
        })
    }

    fn parse_v3_extras(body: &PurchaseBody, product: &mut Product) -> Result<(), DomainError> {
        let multi = product.domain_type == DomainType::Multi;
        let multi_only = |present: bool, field: &str| {
            if present && !multi {
                Err(DomainError::invalid(
                    field,
                    "is only allowed for MULTI_DOMAIN certificates",
                ))
            } else {
                Ok(())
            }
        };
        multi_only(body.primary_domain_type.is_some(), "primary_domain_type")?;
        multi_only(body.single_domain_number.is_some(), "single_domain_number")?;
        multi_only(
            body.wildcard_domain_number.is_some(),
            "wildcard_domain_number",
        )?;
        if let Some(p) = &body.primary_domain_type {
            max_len(p, 63, "primary_domain_type")?;
            product.primary_domain_type = Some(one_of(
                p,
                PrimaryDomainType::ALL,
                PrimaryDomainType::parse,
                PrimaryDomainType::as_str,
                "primary_domain_type",
            )?);
        }
        if let Some(n) = body.single_domain_number {
            product.single_domain_number = Some(in_range(n, 1, 100, "single_domain_number")?);
        }
        if let Some(n) = body.wildcard_domain_number {
            product.wildcard_domain_number = Some(in_range(n, 1, 100, "wildcard_domain_number")?);
        }
        // The primary domain plus the additional ones must fit in the domains bought.
        let extra =
            product.single_domain_number.unwrap_or(0) + product.wildcard_domain_number.unwrap_or(0);
        if extra > 0 && 1 + extra > product.domain_numbers {
            return Err(DomainError::invalid(
                "domain_numbers",
                "must be at least 1 + single_domain_number + wildcard_domain_number",
            ));
        }
        // Documented as 0..36 characters: the empty value is the absent one (the default).
        if let Some(e) = body
            .enterprise_project_id
            .as_ref()
            .filter(|e| !e.is_empty())
        {
            max_len(e, 36, "enterprise_project_id")?;
            product.enterprise_project_id = enterprise_project(e, "enterprise_project_id")?;
        }
        if let Some(o) = &body.order_id {
            max_len(o, 63, "order_id")?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::type_complexity)]
mod tests {
    use super::*;
    use crate::error::invalid_field;

    fn seed() -> PurchaseBody {
        serde_json::from_str(
            r#"{"cert_brand": "GLOBALSIGN", "cert_type": "OV_SSL_CERT", "domain_type": "MULTI_DOMAIN",
                "effective_time": 1, "domain_numbers": 5, "order_number": 1, "agree_privacy_protection": true}"#,
        )
        .unwrap()
    }

    /// The v3 seed page documents `domain_numbers` 1..100: a MULTI_DOMAIN certificate of one
    /// domain (its primary) is a purchase it allows.
    #[test]
    fn v3_multi_domain_allows_one_domain() {
        let mut b = seed();
        b.domain_numbers = Some(1);
        let s = PurchaseSpec::parse(&b, ApiVersion::V3).unwrap();
        assert_eq!(
            (s.product.domain_type, s.product.domain_numbers),
            (DomainType::Multi, 1)
        );
        // With an additional domain, the one bought is not enough.
        b.single_domain_number = Some(1);
        assert_eq!(
            crate::error::invalid_field(PurchaseSpec::parse(&b, ApiVersion::V3)),
            "domain_numbers"
        );
    }

    #[test]
    fn seed_example_parses_on_both_versions() {
        for v in [ApiVersion::V2, ApiVersion::V3] {
            let s = PurchaseSpec::parse(&seed(), v).unwrap();
            assert_eq!(s.order_number, 1);
            assert_eq!(s.product.domain_numbers, 5);
        }
        let mut b = seed();
        b.cert_type = Some("OV_SSL_CERT ".into());
        assert_eq!(
            PurchaseSpec::parse(&b, ApiVersion::V2)
                .unwrap()
                .product
                .cert_type,
            CertType::OvSsl
        );
    }

    #[test]
    fn each_rule_names_its_field() {
        let cases: Vec<(fn(&mut PurchaseBody), ApiVersion, &str)> = vec![
            (
                |b| b.agree_privacy_protection = Some(false),
                ApiVersion::V3,
                "agree_privacy_protection",
            ),
            (
                |b| b.agree_privacy_protection = None,
                ApiVersion::V2,
                "agree_privacy_protection",
            ),
            (
                |b| b.cert_brand = Some("ACME".into()),
                ApiVersion::V3,
                "cert_brand",
            ),
            (
                |b| b.cert_type = Some("DV_SSL_CERT".into()),
                ApiVersion::V2,
                "cert_type",
            ),
            (
                |b| b.domain_type = Some("single".into()),
                ApiVersion::V3,
                "domain_type",
            ),
            (
                |b| b.effective_time = Some(3),
                ApiVersion::V2,
                "effective_time",
            ),
            (
                |b| b.effective_time = Some(4),
                ApiVersion::V3,
                "effective_time",
            ),
            (
                |b| b.effective_time = Some(0),
                ApiVersion::V3,
                "effective_time",
            ),
            (
                |b| b.order_number = Some(101),
                ApiVersion::V3,
                "order_number",
            ),
            (|b| b.order_number = Some(0), ApiVersion::V2, "order_number"),
            (
                |b| b.order_number = Some(1001),
                ApiVersion::V2,
                "order_number",
            ),
            // The v2 page's MULTI_DOMAIN range starts at 2, the v3 page's at 1.
            (
                |b| b.domain_numbers = Some(1),
                ApiVersion::V2,
                "domain_numbers",
            ),
            (
                |b| b.domain_numbers = Some(0),
                ApiVersion::V3,
                "domain_numbers",
            ),
            (
                |b| b.domain_numbers = Some(101),
                ApiVersion::V3,
                "domain_numbers",
            ),
            (
                |b| {
                    b.domain_type = Some("SINGLE_DOMAIN".into());
                    b.domain_numbers = Some(2)
                },
                ApiVersion::V3,
                "domain_numbers",
            ),
            (
                |b| {
                    b.domain_type = Some("WILDCARD".into());
                },
                ApiVersion::V2,
                "domain_numbers",
            ),
            (
                |b| b.primary_domain_type = Some("WILD".into()),
                ApiVersion::V3,
                "primary_domain_type",
            ),
            (
                |b| {
                    b.domain_type = Some("WILDCARD".into());
                    b.domain_numbers = Some(1);
                    b.wildcard_domain_number = Some(1)
                },
                ApiVersion::V3,
                "wildcard_domain_number",
            ),
            (
                |b| b.single_domain_number = Some(0),
                ApiVersion::V3,
                "single_domain_number",
            ),
            (
                |b| {
                    b.single_domain_number = Some(3);
                    b.wildcard_domain_number = Some(2)
                },
                ApiVersion::V3,
                "domain_numbers",
            ),
            (
                |b| b.enterprise_project_id = Some("prod".into()),
                ApiVersion::V3,
                "enterprise_project_id",
            ),
            (
                |b| {
                    b.tags = Some(vec![
                        ResourceTag {
                            key: Some("k".into()),
                            value: None
                        };
                        11
                    ])
                },
                ApiVersion::V3,
                "tags",
            ),
            (
                |b| {
                    b.tags = Some(vec![ResourceTag {
                        key: Some(String::new()),
                        value: None,
                    }])
                },
                ApiVersion::V3,
                "tags[0].key",
            ),
            (
                |b| {
                    b.tags = Some(vec![
                        ResourceTag {
                            key: Some("a".into()),
                            value: Some("b".into()),
                        },
                        ResourceTag {
                            key: Some("a".into()),
                            value: None,
                        },
                    ])
                },
                ApiVersion::V3,
                "tags[1].key",
            ),
        ];
        for (i, (mutate, v, field)) in cases.into_iter().enumerate() {
            let mut b = seed();
            mutate(&mut b);
            assert_eq!(invalid_field(PurchaseSpec::parse(&b, v)), field, "case {i}");
        }
    }

    #[test]
    fn an_empty_enterprise_project_is_the_default() {
        let mut b = seed();
        b.enterprise_project_id = Some(String::new());
        let s = PurchaseSpec::parse(&b, ApiVersion::V3).unwrap();
        assert_eq!(s.product.enterprise_project_id, "0");
    }

    #[test]
    fn version_ranges_differ() {
        let mut b = seed();
        b.order_number = Some(101);
        assert!(PurchaseSpec::parse(&b, ApiVersion::V2).is_ok());
        b.order_number = Some(1);
        b.effective_time = Some(3);
        assert!(PurchaseSpec::parse(&b, ApiVersion::V3).is_ok());
        b.effective_time = Some(1);
        b.cert_type = Some("DV_SSL_CERT".into());
        assert!(PurchaseSpec::parse(&b, ApiVersion::V3).is_ok());
    }

    #[test]
    fn sdk_capture_parses() {
        let b: PurchaseBody = serde_json::from_str(
            r#"{"cert_brand": "GEOTRUST", "cert_type": "DV_SSL_CERT", "domain_type": "MULTI_DOMAIN", "effective_time": 1, "domain_numbers": 4, "order_number": 1, "agree_privacy_protection": true, "primary_domain_type": "SINGLE_DOMAIN", "single_domain_number": 1, "wildcard_domain_number": 2, "is_auto_pay": true, "enterprise_project_id": "0", "tags": [{"key": "env", "value": "prod"}]}"#,
        )
        .unwrap();
        let s = PurchaseSpec::parse(&b, ApiVersion::V3).unwrap();
        assert_eq!(s.product.wildcard_domain_number, Some(2));
        assert_eq!(
            s.tags,
            vec![Tag {
                key: "env".into(),
                value: "prod".into()
            }]
        );
    }
}
