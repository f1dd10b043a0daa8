//! Pushing certificates to the user's own servers.
//!
//! The operator declares push targets in the config file; a v2/v3 push for service S in region R
//! delivers the certificate to every target of the caller's account with that service and region
//! (region is ignored for the global service CDN). Outbound actions go only to these targets.
//!
//! Target kinds: `nginx` (write files atomically, test, reload, roll back on failure). Later kinds
//! (HAProxy runtime API, webhooks, programs) plug in beside it.

pub mod nginx;

use std::path::PathBuf;
use std::time::Duration;

use scm_proto::DomainId;
use serde::Deserialize;
use zeroize::Zeroizing;

/// Target service of a push, as named by the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PushService {
    /// Content delivery network (global).
    Cdn,
    /// Web application firewall.
    Waf,
    /// Classic load balancer.
    Elb,
    /// Dedicated/shared load balancer.
    EnhanceElb,
}

impl PushService {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cdn => "CDN",
            Self::Waf => "WAF",
            Self::Elb => "ELB",
            Self::EnhanceElb => "Enhance_ELB",
        }
    }

    /// Parses a service name, ignoring case (the v3 doc example sends `"waf"`).
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Cdn, Self::Waf, Self::Elb, Self::EnhanceElb]
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// Whether the service is global (no region).
    pub fn is_global(self) -> bool {
        self == Self::Cdn
    }
}

/// A push target as written in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushTargetConfig {
    /// Unique name, shown in errors and logs.
    pub name: String,
    /// `nginx`.
    pub kind: String,
    /// Account (32-hex domain id) whose certificates may be pushed here.
    pub account: String,
    /// `CDN`, `WAF`, `ELB` or `Enhance_ELB`.
    pub service: String,
    /// Region name the push must name (ignored for CDN).
    #[serde(default)]
    pub region: Option<String>,
    /// nginx: where the full chain (leaf + intermediates) is written.
    #[serde(default)]
    pub cert_path: Option<PathBuf>,
    /// nginx: where the private key is written (mode 0600).
    #[serde(default)]
    pub key_path: Option<PathBuf>,
    /// nginx: optional command run after writing the files and before reloading (e.g. `nginx -t`).
    #[serde(default)]
    pub test_command: Option<Vec<String>>,
    /// nginx: command that makes the server load the new files (e.g. `nginx -s reload`).
    #[serde(default)]
    pub reload_command: Option<Vec<String>>,
    /// Seconds each command may run (default 30).
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

/// A checked push target.
#[derive(Debug, Clone)]
pub struct PushTarget {
    /// Unique name.
    pub name: String,
    /// Account allowed to push here.
    pub account: DomainId,
    /// Service.
    pub service: PushService,
    /// Region, `None` for CDN.
    pub region: Option<String>,
    /// How to deliver.
    pub kind: TargetKind,
}

/// Delivery mechanisms.
#[derive(Debug, Clone)]
pub enum TargetKind {
    /// Files + reload command.
    Nginx(nginx::NginxTarget),
}

impl PushTarget {
    /// Checks a configured target; the error names the target and the key.
    pub fn from_config(c: &PushTargetConfig) -> Result<Self, String> {
        let at = |key: &str, what: &str| format!("push_targets \"{}\": {key} {what}", c.name);
        if c.name.trim().is_empty() {
            return Err("push_targets: name must not be empty".into());
        }
        let account = DomainId::try_from(c.account.as_str())
            .map_err(|_| at("account", "must be a 32-hex account (domain) id"))?;
        let service = PushService::parse(&c.service)
            .ok_or_else(|| at("service", "must be one of CDN, WAF, ELB, Enhance_ELB"))?;
        let region = match (&c.region, service.is_global()) {
            (Some(r), _) if !r.trim().is_empty() => Some(r.trim().to_owned()),
            (_, true) => None,
            _ => return Err(at("region", "is required for this service")),
        };
        let timeout = Duration::from_secs(c.timeout_seconds.unwrap_or(30).clamp(1, 3600));
        let kind = match c.kind.as_str() {
            "nginx" => {
                let cert_path = c
                    .cert_path
                    .clone()
                    .ok_or_else(|| at("cert_path", "is required for nginx"))?;
                let key_path = c
                    .key_path
                    .clone()
                    .ok_or_else(|| at("key_path", "is required for nginx"))?;
                if !cert_path.is_absolute() || !key_path.is_absolute() {
                    return Err(at("cert_path/key_path", "must be absolute paths"));
                }
                if cert_path == key_path {
                    return Err(at(
                        "key_path",
                        "must differ from cert_path (nginx reads two files)",
                    ));
                }
                let reload_command = c
                    .reload_command
                    .clone()
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| at("reload_command", "is required for nginx"))?;
                let test_command = c.test_command.clone().filter(|v| !v.is_empty());
                TargetKind::Nginx(nginx::NginxTarget {
                    cert_path,
                    key_path,
                    test_command,
                    reload_command,
                    timeout,
                })
            }
            other => {
                return Err(at(
                    "kind",
                    &format!("{other:?} is not a known kind (nginx)"),
                ));
            }
        };
        Ok(Self {
            name: c.name.clone(),
            account,
            service,
            region,
            kind,
        })
    }

    /// Whether a push of `account`'s certificate to `service` in `region` goes to this target.
    pub fn matches(&self, account: &DomainId, service: PushService, region: Option<&str>) -> bool {
        &self.account == account
            && self.service == service
            && (service.is_global() || self.region.as_deref() == region)
    }
}

/// What gets delivered.
pub struct Material {
    /// Leaf followed by the intermediates.
    pub fullchain_pem: String,
    /// PKCS#8 private key.
    pub key_pem: Zeroizing<String>,
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Material").finish_non_exhaustive()
    }
}

/// Delivers `m` to `target`. The error is safe to show to the account (no command output).
pub async fn deliver(target: &PushTarget, m: &Material) -> Result<(), String> {
    match &target.kind {
        TargetKind::Nginx(n) => n.deliver(&target.name, m).await,
    }
}
