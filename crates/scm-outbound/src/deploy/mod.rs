//! Push targets: the [`scm_core::deploy::Deployer`] of each kind of target, and its configuration.
//!
//! Kinds: `nginx` ([`nginx`]: files, test, reload, roll back), `files` ([`files`]: the
//! certificate in the forms listed, optional test and reload), `haproxy` ([`haproxy`]: the file,
//! then a swap through the runtime API, no reload), `exec` ([`exec`]: a deploy hook) and
//! `webhook` ([`webhook`]: a signed HTTPS POST). Each kind has its own config struct, a variant
//! of [`TargetConfig`]; the keys every kind has (name, account, service, region, resource id,
//! where it serves) are declared once by [`target_config!`](crate::target_config).

mod command;
pub mod exec;
pub mod files;
mod files_common;
pub mod haproxy;
pub mod nginx;
pub mod webhook;

use std::sync::Arc;

use scm_core::deploy::{PushService, PushTarget, VerifyAt};
use scm_proto::DomainId;
use serde::Deserialize;

use crate::http::OutboundHttp;

/// `verify = { address = "127.0.0.1:8443", server_name = "www.shop.test" }`: where a target
/// serves, checked by a TLS handshake after each delivery.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyConfig {
    /// `host:port` to connect to.
    pub address: String,
    /// The server name (SNI) to ask for; the certificate's first name when absent.
    #[serde(default)]
    pub server_name: Option<String>,
}

/// The keys every kind of target has, borrowed from its config.
#[derive(Debug, Clone, Copy)]
pub struct CommonConfig<'a> {
    /// Unique name.
    pub name: &'a str,
    /// Account (32-hex domain id).
    pub account: &'a str,
    /// `CDN`, `WAF`, `ELB` or `Enhance_ELB`.
    pub service: &'a str,
    /// Region (ignored for CDN).
    pub region: Option<&'a str>,
    /// Resource id for `deploy` (default: the name).
    pub resource_id: Option<&'a str>,
    /// Where it serves.
    pub verify: Option<&'a VerifyConfig>,
    /// Whether a drift is re-delivered.
    pub redeliver_on_drift: bool,
}

/// Declares a kind's config struct with the keys every kind has, then the kind's own.
#[macro_export]
macro_rules! target_config {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Unique name, shown in errors, logs and the push history.
            pub name: String,
            /// Account (32-hex domain id) whose certificates may be pushed here.
            pub account: String,
            /// `CDN`, `WAF`, `ELB` or `Enhance_ELB`.
            pub service: String,
            /// Region name a push must name (ignored for CDN).
            #[serde(default)]
            pub region: Option<String>,
            /// The id `deploy` names this target by (default: its name).
            #[serde(default)]
            pub resource_id: Option<String>,
            /// Where the target serves, checked by a TLS handshake after each delivery.
            #[serde(default)]
            pub verify: Option<$crate::deploy::VerifyConfig>,
            /// Whether a drift (the target no longer serves what was delivered) is re-delivered.
            #[serde(default)]
            pub redeliver_on_drift: bool,
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $name {
            /// The keys every kind has.
            pub fn common(&self) -> $crate::deploy::CommonConfig<'_> {
                $crate::deploy::CommonConfig {
                    name: &self.name,
                    account: &self.account,
                    service: &self.service,
                    region: self.region.as_deref(),
                    resource_id: self.resource_id.as_deref(),
                    verify: self.verify.as_ref(),
                    redeliver_on_drift: self.redeliver_on_drift,
                }
            }
        }
    };
}

/// A push target as written in the config file (`[[push_targets]]`), by `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum TargetConfig {
    /// Write files, test, reload.
    Nginx(nginx::NginxConfig),
    /// Write the file, swap the certificate through the runtime API.
    Haproxy(haproxy::HaproxyConfig),
    /// Write the listed files, optionally test and reload.
    Files(files::FilesConfig),
    /// Run a deploy hook (after writing the listed files).
    Exec(exec::ExecConfig),
    /// POST the certificate to a URL.
    Webhook(webhook::WebhookTargetConfig),
}

impl TargetConfig {
    /// The keys every kind has.
    pub fn common(&self) -> CommonConfig<'_> {
        match self {
            Self::Nginx(c) => c.common(),
            Self::Haproxy(c) => c.common(),
            Self::Files(c) => c.common(),
            Self::Exec(c) => c.common(),
            Self::Webhook(c) => c.common(),
        }
    }

    /// The target's name.
    pub fn name(&self) -> &str {
        self.common().name
    }

    /// The kind, as configured.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Nginx(_) => "nginx",
            Self::Haproxy(_) => "haproxy",
            Self::Files(_) => "files",
            Self::Exec(_) => "exec",
            Self::Webhook(_) => "webhook",
        }
    }

    /// The files a delivery to this target writes.
    pub fn files(&self) -> Vec<&std::path::Path> {
        match self {
            Self::Nginx(c) => vec![c.cert_path.as_path(), c.key_path.as_path()],
            // Not the crt-list: several certificates of one HAProxy share it (under its lock).
            Self::Haproxy(c) => vec![c.cert_path.as_path()],
            Self::Files(c) => c.files.iter().map(|f| f.path.as_path()).collect(),
            Self::Exec(c) => c.files.iter().map(|f| f.path.as_path()).collect(),
            Self::Webhook(_) => Vec::new(),
        }
    }

    /// Builds the kind's deployer; the error names the key at fault.
    fn deployer(&self, http: &OutboundHttp) -> Result<Arc<dyn scm_core::deploy::Deployer>, String> {
        Ok(match self {
            Self::Nginx(n) => Arc::new(nginx::NginxDeployer::new(n)?),
            Self::Haproxy(h) => Arc::new(haproxy::HaproxyDeployer::new(h)?),
            Self::Files(f) => Arc::new(files::FilesDeployer::new(f)?),
            Self::Exec(e) => Arc::new(exec::ExecDeployer::new(e)?),
            Self::Webhook(w) => Arc::new(webhook::WebhookDeployer::new(w, http)?),
        })
    }
}

/// Checks a configured target and builds it (a webhook over `http`, the one outbound client);
/// the error names the target and the key at fault.
pub fn push_target(c: &TargetConfig, http: &OutboundHttp) -> Result<PushTarget, String> {
    let common = c.common();
    let name = common.name;
    if name.trim().is_empty() {
        return Err("push_targets: name must not be empty".into());
    }
    let at = |key: &str, what: &str| format!("push_targets \"{name}\": {key} {what}");
    let deployer = c
        .deployer(http)
        .map_err(|e| format!("push_targets \"{name}\": {e}"))?;
    let account = DomainId::try_from(common.account)
        .map_err(|_| at("account", "must be a 32-hex account (domain) id"))?;
    let service = PushService::parse(common.service)
        .ok_or_else(|| at("service", "must be one of CDN, WAF, ELB, Enhance_ELB"))?;
    let region = match (common.region, service.is_global()) {
        (Some(r), _) if !r.trim().is_empty() => Some(r.trim().to_owned()),
        (_, true) => None,
        _ => return Err(at("region", "is required for this service")),
    };
    let resource_id = match common.resource_id {
        None => name.to_owned(),
        Some(r) if !r.trim().is_empty() && r.len() <= 128 => r.trim().to_owned(),
        Some(_) => return Err(at("resource_id", "must be 1 to 128 characters")),
    };
    let verify = match common.verify {
        None => None,
        Some(v) => Some(verify_at(v).map_err(|e| at("verify.address", &e))?),
    };
    Ok(PushTarget {
        name: name.to_owned(),
        account,
        service,
        region,
        resource_id,
        verify,
        redeliver_on_drift: common.redeliver_on_drift,
        kind: c.kind(),
        deployer,
    })
}

/// Checks `verify`: a `host:port` with a port, and a server name that is a DNS name if given.
fn verify_at(v: &VerifyConfig) -> Result<VerifyAt, String> {
    let address = v.address.trim();
    let port = address
        .rsplit_once(':')
        .and_then(|(host, port)| (!host.is_empty()).then_some(port))
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|p| *p != 0);
    if port.is_none() {
        return Err(format!("{address:?} must be host:port"));
    }
    let server_name = match v.server_name.as_deref().map(str::trim) {
        None => None,
        Some(n) if rustls::pki_types::ServerName::try_from(n).is_ok() && !n.is_empty() => {
            Some(n.to_owned())
        }
        Some(n) => return Err(format!("server_name {n:?} is not a valid server name")),
    };
    Ok(VerifyAt {
        address: address.to_owned(),
        server_name,
    })
}

/// Material for adapters' unit tests (not a certificate: text that shows which delivery wrote
/// a file).
#[cfg(test)]
pub(crate) mod testing {
    use scm_core::deploy::{CertificateFacts, DeliveryContext, Material};
    use zeroize::Zeroizing;

    pub(crate) fn material(tag: &str) -> Material {
        Material {
            leaf_pem: format!("leaf {tag}"),
            chain_pem: format!("intermediate {tag}"),
            fullchain_pem: format!("chain {tag}"),
            key_pem: Zeroizing::new(format!("key {tag}")),
            facts: CertificateFacts {
                certificate_id: "scs1700000000000".into(),
                version: 1,
                names: vec!["www.shop.test".into()],
                serial_hex: "0a".into(),
                sha256_fingerprint: "00".repeat(32),
                not_after_ms: 1_800_000_000_000,
            },
            context: DeliveryContext {
                target: "web".into(),
                job_id: 7,
                attempt: 2,
            },
        }
    }
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
        let http = OutboundHttp::new(Default::default()).unwrap();
        let t = push_target(&c, &http).unwrap();
        assert_eq!((t.name.as_str(), t.service), ("web", PushService::Elb));
        let e = toml::from_str::<TargetConfig>(
            "kind = \"nginx\"\nname = \"a\"\naccount = \"x\"\nservice = \"ELB\"\nreload = []\n",
        )
        .unwrap_err();
        assert!(e.message().contains("reload"), "{}", e.message());
        let e = toml::from_str::<TargetConfig>("kind = \"apache\"\nname = \"a\"\n").unwrap_err();
        assert!(e.message().contains("apache"), "{}", e.message());
        let TargetConfig::Nginx(mut n) = c else {
            panic!("{c:?}")
        };
        n.region = None;
        assert!(
            push_target(&TargetConfig::Nginx(n.clone()), &http)
                .unwrap_err()
                .contains("region")
        );
        n.region = Some("r".into());
        n.account = "ADMIN".into();
        assert!(
            push_target(&TargetConfig::Nginx(n), &http)
                .unwrap_err()
                .contains("account")
        );
    }

    /// The path of `binary`; fails the test, naming the Debian package, when it is missing.
    pub(crate) fn require_binary(binary: &str, package: &str) -> std::path::PathBuf {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|d| d.join(binary))
            .find(|p| p.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "{binary} is not installed: this test needs it (apt-get install -y {package})"
                )
            })
    }

    #[test]
    fn a_webhook_the_egress_policy_refuses_is_named_at_start() {
        let c: TargetConfig = toml::from_str(
            r#"kind = "webhook"
               name = "hook"
               account = "0123456789abcdef0123456789abcdef"
               service = "CDN"
               url = "https://169.254.169.254/latest"
               secret_file = "/nonexistent""#,
        )
        .unwrap();
        assert!(c.files().is_empty());
        let http = OutboundHttp::new(Default::default()).unwrap();
        let e = push_target(&c, &http).unwrap_err();
        assert!(
            e.starts_with("push_targets \"hook\": url is refused by the egress policy"),
            "{e}"
        );
    }
}
