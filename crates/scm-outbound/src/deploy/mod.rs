//! Push targets: the [`scm_core::deploy::Deployer`] of each kind of target, and its configuration.
//!
//! Kinds: `nginx` ([`nginx`]: files, test, reload, roll back). HAProxy, webhooks and programs
//! come next, each with its own config struct as a variant of [`TargetConfig`].

pub mod nginx;

use std::sync::Arc;

use scm_core::deploy::{PushService, PushTarget};
use scm_proto::DomainId;
use serde::Deserialize;

/// A push target as written in the config file (`[[push_targets]]`), by `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum TargetConfig {
    /// Write files, test, reload.
    Nginx(nginx::NginxConfig),
}

impl TargetConfig {
    /// The target's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Nginx(c) => &c.name,
        }
    }

    /// The files a delivery to this target writes.
    pub fn files(&self) -> Vec<&std::path::Path> {
        match self {
            Self::Nginx(c) => vec![c.cert_path.as_path(), c.key_path.as_path()],
        }
    }
}

/// Checks a configured target and builds it; the error names the target and the key at fault.
pub fn push_target(c: &TargetConfig) -> Result<PushTarget, String> {
    let (name, account, service, region, deployer) = match c {
        TargetConfig::Nginx(n) => {
            let at = |e: String| format!("push_targets \"{}\": {e}", n.name);
            let deployer: Arc<dyn scm_core::deploy::Deployer> =
                Arc::new(nginx::NginxDeployer::new(n).map_err(at)?);
            (&n.name, &n.account, &n.service, &n.region, deployer)
        }
    };
    let at = |key: &str, what: &str| format!("push_targets \"{name}\": {key} {what}");
    if name.trim().is_empty() {
        return Err("push_targets: name must not be empty".into());
    }
    let account = DomainId::try_from(account.as_str())
        .map_err(|_| at("account", "must be a 32-hex account (domain) id"))?;
    let service = PushService::parse(service)
        .ok_or_else(|| at("service", "must be one of CDN, WAF, ELB, Enhance_ELB"))?;
    let region = match (region, service.is_global()) {
        (Some(r), _) if !r.trim().is_empty() => Some(r.trim().to_owned()),
        (_, true) => None,
        _ => return Err(at("region", "is required for this service")),
    };
    Ok(PushTarget {
        name: name.clone(),
        account,
        service,
        region,
        deployer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_parse_by_kind_and_name_unknown_keys() {
        let c: TargetConfig = toml::from_str(
            r#"kind = "nginx"
               name = "web"
               account = "0123456789abcdef0123456789abcdef"
               service = "elb"
               region = "cn-north-4"
               cert_path = "/etc/nginx/site.crt"
               key_path = "/etc/nginx/site.key"
               reload_command = ["nginx", "-s", "reload"]"#,
        )
        .unwrap();
        let t = push_target(&c).unwrap();
        assert_eq!((t.name.as_str(), t.service), ("web", PushService::Elb));
        let e = toml::from_str::<TargetConfig>(
            "kind = \"nginx\"\nname = \"a\"\naccount = \"x\"\nservice = \"ELB\"\nreload = []\n",
        )
        .unwrap_err();
        assert!(e.message().contains("reload"), "{}", e.message());
        let e = toml::from_str::<TargetConfig>("kind = \"apache\"\nname = \"a\"\n").unwrap_err();
        assert!(e.message().contains("apache"), "{}", e.message());
        let TargetConfig::Nginx(mut n) = c;
        n.region = None;
        assert!(
            push_target(&TargetConfig::Nginx(n.clone()))
                .unwrap_err()
                .contains("region")
        );
        n.region = Some("r".into());
        n.account = "ADMIN".into();
        assert!(
            push_target(&TargetConfig::Nginx(n))
                .unwrap_err()
                .contains("account")
        );
    }
}
