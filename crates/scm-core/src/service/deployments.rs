//! Pushes to several places in one call, and where a certificate is deployed: BatchPushCertificate
//! (one push per region), DeployCertificate (one push per named resource) and
//! ListDeployedResources (the push history, grouped by service and region).
//!
//! OpenSCM's resources are its push targets: a resource id (or, for CDN, the accelerated domain)
//! is the name of a push target of the caller's account. Every delivery is an ordinary `deliver`
//! job, one per region or resource, so each is retried, recorded and notified as a single push is.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use scm_proto::CertificateId;
use scm_proto::deploy::{BatchPushBody, DeployBody, ListDeployedBody};
use scm_store::CertificateRecord;
use tokio::task::JoinSet;

use crate::DomainError;
use crate::auth::Principal;
use crate::deploy::{PushService, PushTarget};

use super::Scm;

/// Regions of one batch push, at most.
const MAX_REGIONS: usize = 10;
/// Characters of one region of a batch push.
const MAX_REGION_CHARS: usize = 32;
/// Resources of one deploy, at most.
const MAX_RESOURCES: usize = 20;
/// Certificates (and services) of one ListDeployedResources, at most.
const MAX_LISTED: usize = 50;

/// Where a certificate is deployed: service label (`CDN`, `WAF`, `ELB`) → region (`global` for
/// CDN) → what is known of the region.
pub type Placement = BTreeMap<&'static str, BTreeMap<String, RegionPlacement>>;

/// A region of a service a certificate was delivered to (or failed to be).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegionPlacement {
    /// The push targets a successful delivery of the certificate reached, by name.
    pub resources: BTreeSet<String>,
    /// Whether the last delivery of the certificate to one of the region's targets failed: what
    /// that target serves is then not known (a failed reload restores the previous files, a
    /// failure past the write may not), so the answer may be wrong for it.
    pub is_error: bool,
}

/// The label ListDeployedResources gives a service (at most 5 characters: `Enhance_ELB` is an
/// `ELB`).
pub fn service_label(s: PushService) -> &'static str {
    match s {
        PushService::Cdn => "CDN",
        PushService::Waf => "WAF",
        PushService::Elb | PushService::EnhanceElb => "ELB",
    }
}

fn parse_service(raw: Option<&str>, field: &str) -> Result<PushService, DomainError> {
    let raw = raw.ok_or_else(|| DomainError::invalid(field, "is required"))?;
    if raw.is_empty() || raw.chars().count() > 64 {
        return Err(DomainError::invalid(field, "must be 1 to 64 characters"));
    }
    PushService::parse(raw)
        .ok_or_else(|| DomainError::invalid(field, "must be one of CDN, WAF, ELB"))
}

fn is_region(r: &str) -> bool {
    r.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Batch push body → service and the distinct regions, in the order given (`None` once for CDN,
/// which is global).
fn parse_batch(body: &BatchPushBody) -> Result<(PushService, Vec<Option<String>>), DomainError> {
    let service = parse_service(body.target_service.as_deref(), "target_service")?;
    let projects = body
        .target_projects
        .as_deref()
        .ok_or_else(|| DomainError::invalid("target_projects", "is required"))?;
    if projects.is_empty() || projects.len() > MAX_REGIONS {
        return Err(DomainError::invalid(
            "target_projects",
            format!("must hold 1 to {MAX_REGIONS} regions"),
        ));
    }
    let mut regions: Vec<Option<String>> = Vec::new();
    for (i, raw) in projects.iter().enumerate() {
        let r = raw.trim();
        if r.is_empty() || r.chars().count() > MAX_REGION_CHARS || !is_region(r) {
            return Err(DomainError::invalid(
                format!("target_projects[{i}]"),
                format!(
                    "must be a region name of 1 to {MAX_REGION_CHARS} letters, digits, '-' or '_'"
                ),
            ));
        }
        let region = (!service.is_global()).then(|| r.to_owned());
        if !regions.contains(&region) {
            regions.push(region);
        }
    }
    Ok((service, regions))
}

/// One resource of a deploy: what the answer calls it, and the push target name it names.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Resource {
    /// As the request named it (the failure list echoes it).
    label: String,
    /// Whether it is a CDN domain that the certificate must cover.
    cdn_domain: bool,
}

fn parse_deploy(
    body: &DeployBody,
) -> Result<(PushService, Option<String>, Vec<Resource>), DomainError> {
    let service = parse_service(body.service_name.as_deref(), "service_name")?;
    let region = match body.project_name.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(r) if r.chars().count() <= 255 && is_region(r) => Some(r.to_owned()),
        Some(_) => {
            return Err(DomainError::invalid(
                "project_name",
                "must be a region name of 1 to 255 letters, digits, '-' or '_'",
            ));
        }
    };
    let items = body
        .resources
        .as_deref()
        .ok_or_else(|| DomainError::invalid("resources", "is required"))?;
    if items.is_empty() || items.len() > MAX_RESOURCES {
        return Err(DomainError::invalid(
            "resources",
            format!("must hold 1 to {MAX_RESOURCES} resources"),
        ));
    }
    let mut out: Vec<Resource> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        for (field, v) in [
            ("id", &item.id),
            ("type", &item.kind),
            ("domain_name", &item.domain_name),
            ("enterprise_project_id", &item.enterprise_project_id),
        ] {
            if v.as_deref().is_some_and(|v| v.chars().count() > 63) {
                return Err(DomainError::invalid(
                    format!("resources[{i}].{field}"),
                    "must be at most 63 characters",
                ));
            }
        }
        let (field, value) = if service.is_global() {
            ("domain_name", item.domain_name.as_deref())
        } else {
            ("id", item.id.as_deref())
        };
        let label = value
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                DomainError::invalid(
                    format!("resources[{i}].{field}"),
                    format!("is required for {}", service.as_str()),
                )
            })?
            .to_owned();
        let r = Resource {
            label,
            cdn_domain: service.is_global(),
        };
        if !out.contains(&r) {
            out.push(r);
        }
    }
    Ok((service, region, out))
}

/// Which services ListDeployedResources asks for, in their answer order.
fn parse_listed_services(raw: Option<&[String]>) -> Result<Vec<&'static str>, DomainError> {
    let raw = raw.ok_or_else(|| DomainError::invalid("service_names", "is required"))?;
    if raw.is_empty() || raw.len() > MAX_LISTED {
        return Err(DomainError::invalid(
            "service_names",
            format!("must hold 1 to {MAX_LISTED} services"),
        ));
    }
    let mut wanted = BTreeSet::new();
    for (i, s) in raw.iter().enumerate() {
        let s = s.trim();
        match s.to_ascii_uppercase().as_str() {
            "ALL" => wanted.extend(["CDN", "ELB", "WAF"]),
            "CDN" => {
                wanted.insert("CDN");
            }
            "ELB" => {
                wanted.insert("ELB");
            }
            "WAF" => {
                wanted.insert("WAF");
            }
            _ => {
                return Err(DomainError::invalid(
                    format!("service_names[{i}]"),
                    "must be WAF, CDN, ELB or ALL",
                ));
            }
        }
    }
    Ok(wanted.into_iter().collect())
}

fn parse_listed_ids(raw: Option<&[String]>) -> Result<Vec<CertificateId>, DomainError> {
    let raw = raw.ok_or_else(|| DomainError::invalid("certificate_ids", "is required"))?;
    if raw.is_empty() || raw.len() > MAX_LISTED {
        return Err(DomainError::invalid(
            "certificate_ids",
            format!("must hold 1 to {MAX_LISTED} certificate ids"),
        ));
    }
    let mut out: Vec<CertificateId> = Vec::new();
    for s in raw {
        let id =
            CertificateId::try_from(s.as_str()).map_err(|_| DomainError::MalformedCertificateId)?;
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// Whether a certificate name (`*.example.com` or `www.example.com`) covers `domain`.
fn name_covers(name: &str, domain: &str) -> bool {
    let (name, domain) = (name.to_ascii_lowercase(), domain.to_ascii_lowercase());
    match name.strip_prefix("*.") {
        Some(base) => domain
            .strip_suffix(base)
            .and_then(|head| head.strip_suffix('.'))
            .is_some_and(|label| !label.is_empty() && !label.contains('.')),
        None => name == domain,
    }
}

/// Whether the issued certificate names `domain` (a SAN or its CN).
fn certificate_covers(cert: &CertificateRecord, domain: &str) -> bool {
    let Some(issued) = &cert.issued else {
        return false;
    };
    match scm_pki::cert::parse_certificate_pem(&issued.certificate_pem) {
        Ok(info) => info
            .dns_names
            .iter()
            .chain(info.common_name.iter())
            .any(|n| name_covers(n, domain)),
        Err(_) => false,
    }
}

impl Scm {
    /// BatchPushCertificate: one push per region, run at once, each answered by its first
    /// attempt. A region without a target, or whose delivery fails, is reported in its result; a
    /// certificate that cannot be pushed at all refuses the whole call.
    pub async fn batch_push(
        self: &Arc<Self>,
        p: &Principal,
        id: &CertificateId,
        body: &BatchPushBody,
    ) -> Result<Vec<(String, Result<(), DomainError>)>, DomainError> {
        let (service, regions) = parse_batch(body)?;
        let cert = self.certificate(p, id).await?;
        super::push::ensure_pushable(&cert)?;
        let mut set = JoinSet::new();
        for (i, region) in regions.into_iter().enumerate() {
            let (scm, cert) = (self.clone(), cert.clone());
            set.spawn(async move {
                let label = region.clone().unwrap_or_else(|| "global".into());
                let outcome = match scm.enqueue_push(&cert, service, region).await {
                    Ok(jobs) => match scm.first_attempts(jobs).await {
                        Ok(outcomes) => crate::delivery::push_answer(&outcomes),
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                };
                (i, label, outcome)
            });
        }
        Ok(Self::in_order(set).await)
    }

    /// DeployCertificate: one push per resource (a push target of the account, by name), run at
    /// once; answers the resources that failed.
    pub async fn deploy(
        self: &Arc<Self>,
        p: &Principal,
        id: &CertificateId,
        body: &DeployBody,
    ) -> Result<Vec<(String, DomainError)>, DomainError> {
        let (service, region, resources) = parse_deploy(body)?;
        let cert = self.certificate(p, id).await?;
        super::push::ensure_pushable(&cert)?;
        let mut set = JoinSet::new();
        for (i, r) in resources.into_iter().enumerate() {
            let (scm, cert, region) = (self.clone(), cert.clone(), region.clone());
            set.spawn(async move {
                let outcome = scm.deploy_one(&cert, service, region, &r).await;
                (i, r.label, outcome)
            });
        }
        Ok(Self::in_order(set)
            .await
            .into_iter()
            .filter_map(|(label, r)| r.err().map(|e| (label, e)))
            .collect())
    }

    async fn deploy_one(
        self: &Arc<Self>,
        cert: &CertificateRecord,
        service: PushService,
        region: Option<String>,
        r: &Resource,
    ) -> Result<(), DomainError> {
        if r.cdn_domain && !certificate_covers(cert, &r.label) {
            return Err(DomainError::DomainMismatch(format!(
                "the certificate does not cover {}",
                r.label
            )));
        }
        let target: Option<&PushTarget> = self.config.push_targets.iter().find(|t| {
            t.resource_id == r.label
                && t.account == cert.domain_id
                && t.service == service
                && (service.is_global() || region.is_none() || t.region == region)
        });
        let region = target.and_then(|t| t.region.clone()).or(region);
        let targets: Vec<&PushTarget> = target.into_iter().collect();
        let jobs = self
            .enqueue_deliveries(cert, service, region, &targets)
            .await?;
        crate::delivery::push_answer(&self.first_attempts(jobs).await?)
    }

    /// The outcomes of spawned pushes, in the order they were asked for. A push task that panicked
    /// or was cancelled is reported as an internal failure.
    async fn in_order(
        mut set: JoinSet<(usize, String, Result<(), DomainError>)>,
    ) -> Vec<(String, Result<(), DomainError>)> {
        let mut done: Vec<(usize, String, Result<(), DomainError>)> = Vec::new();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(r) => done.push(r),
                Err(e) => done.push((
                    usize::MAX,
                    String::new(),
                    Err(DomainError::internal_from(
                        "a push task ended abnormally",
                        e,
                    )),
                )),
            }
        }
        done.sort_by_key(|(i, _, _)| *i);
        done.into_iter().map(|(_, l, r)| (l, r)).collect()
    }

    /// ListDeployedResources: for each certificate (all the caller's, else `SCM.0020` for the
    /// call; all issued or imported, else `SCM.0010` for the call, as for a push), the push
    /// targets that a delivery of it reached and that are still configured, grouped by the
    /// services asked for and by region; a region is in error when the last delivery of the
    /// certificate to one of its targets failed (such a region is listed even if no delivery
    /// to it ever succeeded).
    pub async fn deployed_resources(
        &self,
        p: &Principal,
        body: &ListDeployedBody,
    ) -> Result<Vec<(CertificateId, Placement)>, DomainError> {
        let ids = parse_listed_ids(body.certificate_ids.as_deref())?;
        let services = parse_listed_services(body.service_names.as_deref())?;
        let mut certs = Vec::with_capacity(ids.len());
        for id in ids {
            let cert = self.certificate(p, &id).await?;
            ensure_issued_or_imported(&cert)?;
            certs.push(cert);
        }
        let mut out = Vec::with_capacity(certs.len());
        for cert in certs {
            let deployments = self.store.deployments(&cert.id).await?;
            out.push((
                cert.id.clone(),
                self.placement(&cert, &services, &deployments),
            ));
        }
        Ok(out)
    }

    /// Where `cert` is deployed, for `services`: the targets (still configured) that hold a
    /// version of it, by resource id; a region is in error when a delivery to one of its targets
    /// is failing now (listed even if none succeeded).
    fn placement(
        &self,
        cert: &CertificateRecord,
        services: &[&'static str],
        deployments: &[scm_store::DeploymentRecord],
    ) -> Placement {
        let mut placement: Placement = services.iter().map(|s| (*s, BTreeMap::new())).collect();
        for d in deployments {
            let Some(t) = self
                .config
                .push_targets
                .iter()
                .find(|t| t.name == d.target && t.account == cert.domain_id)
            else {
                continue;
            };
            let Some(regions) = placement.get_mut(service_label(t.service)) else {
                continue;
            };
            let region = regions
                .entry(t.region.clone().unwrap_or_else(|| "global".into()))
                .or_default();
            if d.version > 0 {
                region.resources.insert(t.resource_id.clone());
            }
            if d.failing_version.is_some() {
                region.is_error = true;
            }
        }
        placement
    }
}

/// ListDeployedResources answers for certificates that can have been deployed: issued or
/// imported ones (`ISSUED`, `UPLOAD`, and the same once `EXPIRED`: where an expired certificate
/// is still deployed is what one looks for). Any other (`PAID`, an application under review) is
/// refused as a push of it is: `SCM.0010`.
fn ensure_issued_or_imported(cert: &CertificateRecord) -> Result<(), DomainError> {
    if cert.issued.is_some() {
        Ok(())
    } else {
        Err(DomainError::WrongStatus(cert.status))
    }
}

#[cfg(test)]
mod tests {
    use scm_proto::deploy::DeployedResource;

    use super::*;
    use crate::error::invalid_field;

    #[test]
    fn batch_bodies_name_the_bad_field_and_dedupe_regions() {
        let body = |s: Option<&str>, p: Option<Vec<&str>>| BatchPushBody {
            target_service: s.map(Into::into),
            target_projects: p.map(|v| v.into_iter().map(Into::into).collect()),
        };
        assert_eq!(
            invalid_field(parse_batch(&body(None, Some(vec!["r"])))),
            "target_service"
        );
        assert_eq!(
            invalid_field(parse_batch(&body(Some("FTP"), Some(vec!["r"])))),
            "target_service"
        );
        assert_eq!(
            invalid_field(parse_batch(&body(Some("ELB"), None))),
            "target_projects"
        );
        assert_eq!(
            invalid_field(parse_batch(&body(Some("ELB"), Some(vec![])))),
            "target_projects"
        );
        assert_eq!(
            invalid_field(parse_batch(&body(Some("ELB"), Some(vec!["r"; 11])))),
            "target_projects"
        );
        assert_eq!(
            invalid_field(parse_batch(&body(Some("ELB"), Some(vec!["a", ""])))),
            "target_projects[1]"
        );
        assert_eq!(
            invalid_field(parse_batch(&body(Some("ELB"), Some(vec![&"x".repeat(33)])))),
            "target_projects[0]"
        );
        let (s, r) = parse_batch(&body(Some("elb"), Some(vec!["a", "b", "a"]))).unwrap();
        assert_eq!(s, PushService::Elb);
        assert_eq!(r, vec![Some("a".to_owned()), Some("b".to_owned())]);
        let (_, r) = parse_batch(&body(Some("CDN"), Some(vec!["a", "b"]))).unwrap();
        assert_eq!(r, vec![None], "CDN is global: one push");
    }

    #[test]
    fn deploy_bodies_need_the_key_of_their_service() {
        let res = |id: Option<&str>, domain: Option<&str>| DeployedResource {
            id: id.map(Into::into),
            domain_name: domain.map(Into::into),
            ..DeployedResource::default()
        };
        let body = |s: &str, r: Vec<DeployedResource>| DeployBody {
            project_name: None,
            service_name: Some(s.into()),
            resources: Some(r),
        };
        assert_eq!(
            invalid_field(parse_deploy(&body("ELB", vec![res(None, Some("a.test"))]))),
            "resources[0].id"
        );
        assert_eq!(
            invalid_field(parse_deploy(&body("CDN", vec![res(Some("x"), None)]))),
            "resources[0].domain_name"
        );
        assert_eq!(
            invalid_field(parse_deploy(&body("ELB", vec![]))),
            "resources"
        );
        assert_eq!(
            invalid_field(parse_deploy(&body(
                "ELB",
                vec![res(Some(&"x".repeat(64)), None)]
            ))),
            "resources[0].id"
        );
        let mut b = body("ELB", vec![res(Some("lb"), None)]);
        b.project_name = Some("bad region!".into());
        assert_eq!(invalid_field(parse_deploy(&b)), "project_name");
        let (_, region, r) = parse_deploy(&body(
            "waf",
            vec![res(Some("w1"), None), res(Some("w1"), None)],
        ))
        .unwrap();
        assert_eq!(region, None);
        assert_eq!(r.len(), 1, "a resource named twice is deployed once");
    }

    #[test]
    fn listed_services_and_ids() {
        let v = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            parse_listed_services(Some(&v(&["all"]))).unwrap(),
            vec!["CDN", "ELB", "WAF"]
        );
        assert_eq!(
            parse_listed_services(Some(&v(&["WAF", "waf"]))).unwrap(),
            vec!["WAF"]
        );
        assert_eq!(
            invalid_field(parse_listed_services(Some(&v(&["FTP"])))),
            "service_names[0]"
        );
        assert_eq!(invalid_field(parse_listed_services(None)), "service_names");
        assert_eq!(
            invalid_field(parse_listed_ids(Some(&[]))),
            "certificate_ids"
        );
        assert!(matches!(
            parse_listed_ids(Some(&v(&["nope"]))),
            Err(DomainError::MalformedCertificateId)
        ));
        assert_eq!(
            parse_listed_ids(Some(&v(&["scs1481110651012", "scs1481110651012"])))
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn wildcards_cover_one_label() {
        assert!(name_covers("*.example.test", "www.example.test"));
        assert!(name_covers("WWW.example.test", "www.EXAMPLE.test"));
        assert!(!name_covers("*.example.test", "example.test"));
        assert!(!name_covers("*.example.test", "a.b.example.test"));
        assert!(!name_covers("*.example.test", "wwwexample.test"));
        assert!(!name_covers("www.example.test", "api.example.test"));
    }
}
