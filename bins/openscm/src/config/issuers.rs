//! `[[issuers]]`, `[brands]` and `[acme]`: the ACME CAs OpenSCM may order from, which issuers
//! issue each brand (in order of preference), and where http-01 challenges are answered.
//!
//! Choices written down here:
//! - `builtin` (the built-in CA) always exists and cannot be redefined; a brand not listed in
//!   `[brands]` is issued by it, so the zero-config start is unchanged.
//! - `[brands]` keys are the API's brands (`GEOTRUST`, `GLOBALSIGN`, ...), in any case: what
//!   a user buys decides who issues it. A list names configured issuers, each once.
//! - An issuer's secret files are read and checked now (a missing, malformed or group/other
//!   readable file stops the start, naming the issuer and the key), but its CA is not
//!   contacted: an unreachable CA does not stop the start.
//! - An issuer allowed `http-01` while `[acme] http01_listen` is not set is only warned about:
//!   a proxy may answer the challenges for OpenSCM... but then nothing would; the warning says so.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use scm_core::issuers::acme::ChallengeKind;
use scm_core::issuers::{AcmeIssuer, BUILTIN, IssuerSettings};
use scm_outbound::acme::AcmeIssuerConfig;
use serde::Deserialize;

/// The `[acme]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeFile {
    /// Where OpenSCM answers http-01 challenges (plain HTTP; port 80 in production), e.g.
    /// `0.0.0.0:80`. Unset: no listener.
    pub http01_listen: Option<String>,
}

/// The issuers resolved, and the http-01 listener's address.
pub struct Issuers {
    /// For the domain.
    pub settings: IssuerSettings,
    /// `[acme] http01_listen`.
    pub http01_listen: Option<SocketAddr>,
    /// Things the operator should know (said at start).
    pub warnings: Vec<String>,
}

/// Checks and builds `[[issuers]]`, `[brands]` and `[acme]`.
pub fn resolve(
    issuers: &[AcmeIssuerConfig],
    brands: &BTreeMap<String, Vec<String>>,
    acme: &AcmeFile,
) -> anyhow::Result<Issuers> {
    let mut settings = IssuerSettings::default();
    let mut warnings = Vec::new();
    let http01_listen = match &acme.http01_listen {
        Some(raw) => Some(raw.parse::<SocketAddr>().map_err(|_| {
            anyhow::anyhow!("acme.http01_listen: {raw:?} is not an address such as 0.0.0.0:80")
        })?),
        None => None,
    };
    for c in issuers {
        let name = c.name.trim();
        if name.is_empty() {
            bail!("issuers: name must not be empty");
        }
        if name.eq_ignore_ascii_case(BUILTIN) {
            bail!("issuers \"{name}\": the name \"builtin\" is the built-in CA's");
        }
        if settings.acme(name).is_some() {
            bail!("issuers: the name {name:?} is used twice");
        }
        let ca = scm_outbound::acme::acme_ca(c).map_err(|e| anyhow::anyhow!(e))?;
        let challenges = c.challenge_kinds().map_err(|e| anyhow::anyhow!(e))?;
        let dns01 = match &c.dns01 {
            Some(d) => Some(
                scm_outbound::dns::update::txt_updater(d, name).map_err(|e| anyhow::anyhow!(e))?,
            ),
            None => None,
        };
        if challenges.contains(&ChallengeKind::Http01) && http01_listen.is_none() {
            warnings.push(format!(
                "issuers \"{name}\" may use http-01, but [acme] http01_listen is not set: \
                 nothing answers http-01 challenges (applications with domain_method FILE fail)"
            ));
        }
        let max_orders = c.max_orders;
        if !(1..=100_000).contains(&max_orders) {
            bail!("issuers \"{name}\": max_orders must be between 1 and 100000");
        }
        let window = c.max_orders_window_minutes;
        if !(1..=10_080).contains(&window) {
            bail!("issuers \"{name}\": max_orders_window_minutes must be between 1 and 10080");
        }
        let max_names = c.max_names;
        if !(1..=1000).contains(&max_names) {
            bail!("issuers \"{name}\": max_names must be between 1 and 1000");
        }
        settings.acme.push(Arc::new(AcmeIssuer {
            name: name.to_owned(),
            ca,
            challenges,
            dns01,
            max_orders,
            order_window: Duration::from_secs(window * 60),
            max_names,
        }));
    }
    for (brand, list) in brands {
        let key = brand.trim().to_ascii_uppercase();
        if scm_proto::Brand::parse(&key).is_none() {
            let known: Vec<&str> = scm_proto::Brand::ALL.iter().map(|b| b.as_str()).collect();
            bail!(
                "brands.{brand}: not a brand the API sells ({})",
                known.join(", ")
            );
        }
        if list.is_empty() {
            bail!("brands.{brand}: the list of issuers is empty");
        }
        let mut seen: Vec<&str> = Vec::new();
        for issuer in list {
            if seen.contains(&issuer.as_str()) {
                bail!("brands.{brand}: {issuer:?} is listed twice");
            }
            seen.push(issuer);
            if issuer != BUILTIN && settings.acme(issuer).is_none() {
                bail!(
                    "brands.{brand}: no issuer is named {issuer:?} (configured: builtin{})",
                    settings
                        .acme
                        .iter()
                        .map(|a| format!(", {}", a.name))
                        .collect::<String>()
                );
            }
        }
        settings.brands.insert(key, list.clone());
    }
    Ok(Issuers {
        settings,
        http01_listen,
        warnings,
    })
}
