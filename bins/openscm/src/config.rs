//! Configuration: a TOML file (unknown keys refused, the key named), every setting also as a flag
//! and an `OPENSCM_*` environment variable. Precedence: flag/env > file > default. The result is a
//! [`RuntimeConfig`] in which nothing that must be set is optional.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use scm_core::CoreConfig;
use scm_core::deploy::PushTarget;
use scm_core::jobs::JobSettings;
use scm_core::lifecycle::{Probes, RenewalSettings, ValidationSettings};
use scm_core::notify::NotifierTarget;
use scm_outbound::deploy::TargetConfig;
use scm_outbound::http::{EgressPolicy, OutboundHttp};
use scm_outbound::notify::NotifierConfig;
use scm_store::DatabaseUrl;
use serde::Deserialize;

/// The config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address to listen on.
    pub listen: Option<String>,
    /// Directory for the SQLite database, master key and credentials file.
    pub data_dir: Option<PathBuf>,
    /// `sqlite://...` or `postgres://...`; default: SQLite in the data dir.
    pub database_url: Option<String>,
    /// A file (mode 0600) holding the database URL, for URLs with a password.
    pub database_url_file: Option<PathBuf>,
    /// Master key file; default `<data_dir>/master.key`.
    pub master_key_file: Option<PathBuf>,
    /// Endpoint written into credentials.json for clients; default `http://<listen>`.
    pub public_endpoint: Option<String>,
    /// `text` or `json`.
    pub log_format: Option<String>,
    /// Allowed X-Sdk-Date skew in seconds (default 900).
    pub max_clock_skew_seconds: Option<u64>,
    /// X-Auth-Token lifetime in seconds (default 86400).
    pub token_ttl_seconds: Option<u64>,
    /// Validity of issued certificates in days (default 365).
    pub leaf_validity_days: Option<u64>,
    /// The longest validity the built-in CA may give (default 397, the CA/Browser Forum's
    /// ceiling until March 2026): `leaf_validity_days` above it is refused at start.
    pub max_validity_days: Option<u64>,
    /// Seconds to let requests in flight finish on SIGTERM (default 30).
    pub shutdown_grace_seconds: Option<u64>,
    /// The job runner.
    #[serde(default)]
    pub jobs: JobsFile,
    /// Where outbound connections (webhooks) may go.
    #[serde(default)]
    pub egress: EgressPolicy,
    /// Where pushes go.
    #[serde(default)]
    pub push_targets: Vec<TargetConfig>,
    /// Who hears about failures.
    #[serde(default)]
    pub notifiers: Vec<NotifierConfig>,
    /// Connection and request limits.
    #[serde(default)]
    pub limits: LimitsFile,
    /// Domain control validation.
    #[serde(default)]
    pub validation: ValidationFile,
    /// Automatic renewal.
    #[serde(default)]
    pub renewal: RenewalFile,
    /// What each account may buy.
    #[serde(default)]
    pub quotas: QuotasFile,
    /// HTTPS.
    #[serde(default)]
    pub tls: TlsFile,
    /// Who may read `/metrics`.
    #[serde(default)]
    pub metrics: MetricsFile,
    /// The audit log.
    #[serde(default)]
    pub audit: AuditFile,
    /// The web console.
    #[serde(default)]
    pub console: ConsoleFile,
}

/// The `[console]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleFile {
    /// Reverse proxies (CIDR ranges, or single addresses) whose `X-Forwarded-For` names the
    /// client, for the sign-in throttle; default none (the TCP peer is the client). Behind a proxy
    /// on the same host, name it (`["127.0.0.1/32"]`), or every client counts as the proxy.
    pub trusted_proxies: Option<Vec<String>>,
}

/// Days audit events are kept unless `[audit] retention_days` says otherwise.
pub const DEFAULT_AUDIT_RETENTION_DAYS: u64 = 30;

/// The `[audit]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFile {
    /// Days audit events are kept (default 30; 1..=36500; `0`: kept for ever, on purpose). Older
    /// events are deleted by the hourly housekeeping of every server.
    pub retention_days: Option<u64>,
}

/// The `[metrics]` table: `/metrics` answers clients from `allow` without a token, and anyone
/// presenting the bearer token of `token_file`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsFile {
    /// Client address ranges (CIDR, or single addresses); default loopback only
    /// (`["127.0.0.1/32", "::1/128"]`); `[]`: none (token only).
    pub allow: Option<Vec<String>>,
    /// A file (mode 0600) holding the bearer token.
    pub token_file: Option<PathBuf>,
}

/// The `[tls]` table: how the listener serves HTTPS.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    /// `off`, `files` or `builtin` (default: `files` when `cert_file`/`key_file` are given, else
    /// `off`).
    pub mode: Option<String>,
    /// PEM chain (leaf first) served in `files` mode; read again when it changes.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of the chain's leaf, `files` mode.
    pub key_file: Option<PathBuf>,
    /// Seconds between looks at the files (default 5, 1..=3600).
    pub reload_seconds: Option<u64>,
    /// Names and addresses of the built-in certificate (default: localhost, 127.0.0.1, ::1, the
    /// listen address or name, the host of `public_endpoint`).
    pub hosts: Option<Vec<String>>,
    /// Validity of the built-in certificate in days (default 30, 1..=397); renewed at 2/3.
    pub validity_days: Option<u64>,
    /// Serve plain HTTP on a non-loopback address (a TLS-terminating proxy in front).
    pub allow_plain_http: Option<bool>,
}

/// The `[limits]` table: how much of the server one client or account may take.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// Seconds a client has to send a request head; also how long an idle keep-alive connection
    /// is kept (default 30, 1..=300).
    pub header_timeout_seconds: Option<u64>,
    /// Seconds the body of an authenticated request has to arrive (default 10, 1..=300).
    pub body_timeout_seconds: Option<u64>,
    /// Seconds a whole request may take (default 120, 5..=3600).
    pub request_timeout_seconds: Option<u64>,
    /// Connections open at once (default 1024, 16..=1000000; never above the open-file limit).
    pub max_connections: Option<u64>,
    /// Connections open at once from one client address, an IPv4 address or an IPv6 /64
    /// (default 256, a quarter of the default cap, 1..=1000000; at most `max_connections`).
    /// Behind a proxy on the same host every client has the proxy's address: raise it to
    /// `max_connections` there.
    pub max_connections_per_address: Option<u64>,
    /// Seconds a new connection has to send its first byte (default 5, 1..=300; at most
    /// `header_timeout_seconds`).
    pub first_byte_timeout_seconds: Option<u64>,
    /// Requests per second per account, sustained (default 100, 0..=1000000; 0: no limit).
    pub rate_limit_per_second: Option<u64>,
    /// Requests at once per account after a quiet spell (default 200, 1..=1000000).
    pub rate_limit_burst: Option<u64>,
    /// Live tokens per credential (default 20, 1..=1000).
    pub max_tokens_per_credential: Option<u64>,
    /// RSA key generations one account may run at once (default 1, 1..=64).
    pub keygen_per_account: Option<u64>,
}

/// The `[quotas]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotasFile {
    /// Certificates an account may hold (default 10000, 1..=100000000).
    pub certificates_per_account: Option<u64>,
    /// Orders an account may place per UTC day (default 1000, 1..=10000000).
    pub orders_per_day: Option<u64>,
    /// CSRs an account may hold, created or uploaded (default 1000, 1..=10000000).
    pub csrs_per_account: Option<u64>,
}

/// The `[validation]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationFile {
    /// The name servers (`host:port`) DNS validation asks; default: the system's resolvers.
    pub nameservers: Option<Vec<String>>,
    /// Ask the zone's authoritative servers (found through `nameservers`) rather than a
    /// recursive resolver's answer (default false).
    pub authoritative: Option<bool>,
    /// The port FILE validation fetches `http://<name>/.well-known/pki-validation/...` on
    /// (default 80, what a CA uses).
    pub http_port: Option<u16>,
    /// Days after which a validation not passed ends `UNPASSED` (default 7).
    pub deadline_days: Option<u64>,
    /// Days a name proven once needs no new check (default 30).
    pub reuse_days: Option<u64>,
    /// Longest wait between two checks of a pending validation, in seconds (default 300).
    pub max_interval_seconds: Option<u64>,
}

/// The `[renewal]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewalFile {
    /// Renew when this fraction of a version's lifetime is left (default 0.33; 0.05..=0.9).
    pub remaining_fraction: Option<f64>,
    /// Seconds between renewal sweeps (default 60).
    pub sweep_seconds: Option<u64>,
    /// Minutes before a queued renewal that produced no version is looked at again (default 60).
    pub retry_minutes: Option<u64>,
}

/// The `[jobs]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsFile {
    /// Seconds a worker holds a job without renewing its lease (default 60).
    pub lease_seconds: Option<u64>,
    /// Milliseconds between looks for due jobs (default 1000).
    pub poll_millis: Option<u64>,
    /// Job attempts run at once by one server (default 8).
    pub concurrency: Option<usize>,
    /// Days ended jobs are kept (default 30).
    pub retention_days: Option<u64>,
}

/// Store settings of `server` and `admin` (flags with env fallbacks). They are flattened into
/// those two commands only (global within them), so the client commands' `--help` does not list
/// them.
#[derive(Debug, Clone, Default, Args)]
// Under their own heading, so each command's own options come first in its `--help`.
#[command(next_help_heading = "Store options (of server and admin commands)")]
pub struct CommonArgs {
    /// TOML config file.
    #[arg(long, env = "OPENSCM_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory (SQLite database, master key, credentials.json) [default: ./openscm-data].
    #[arg(long, env = "OPENSCM_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST:PORT/DB [default: SQLite in the data
    /// dir]. A URL with a password is better given with --database-url-file (flags show in `ps`).
    #[arg(
        long,
        env = "OPENSCM_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// File (mode 0600) holding the database URL.
    #[arg(long, env = "OPENSCM_DATABASE_URL_FILE", global = true)]
    pub database_url_file: Option<PathBuf>,
    /// Master key file (32 random bytes, hex) [default: DATA_DIR/master.key].
    #[arg(long, env = "OPENSCM_MASTER_KEY_FILE", global = true)]
    pub master_key_file: Option<PathBuf>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "OPENSCM_LOG_FORMAT", global = true)]
    pub log_format: Option<String>,
}

/// The same store flags before the command (`openscm --data-dir D server`), as earlier versions
/// took them: hidden from `--help`, without env fallback (the command's own flags read the
/// environment), and only for `server` and `admin`.
#[derive(Debug, Clone, Default, Args)]
pub struct LegacyStoreArgs {
    #[arg(long = "config", hide = true)]
    config: Option<PathBuf>,
    #[arg(long = "data-dir", hide = true)]
    data_dir: Option<PathBuf>,
    #[arg(long = "database-url", hide = true)]
    database_url: Option<String>,
    #[arg(long = "database-url-file", hide = true)]
    database_url_file: Option<PathBuf>,
    #[arg(long = "master-key-file", hide = true)]
    master_key_file: Option<PathBuf>,
    #[arg(long = "log-format", hide = true)]
    log_format: Option<String>,
}

impl LegacyStoreArgs {
    /// Whether any flag was given.
    pub fn is_empty(&self) -> bool {
        let Self {
            config,
            data_dir,
            database_url,
            database_url_file,
            master_key_file,
            log_format,
        } = self;
        config.is_none()
            && data_dir.is_none()
            && database_url.is_none()
            && database_url_file.is_none()
            && master_key_file.is_none()
            && log_format.is_none()
    }
}

impl CommonArgs {
    /// These flags, each one not given here taken from the flags before the command; a flag
    /// given after the command wins (it is also where the environment is read).
    pub fn or_legacy(self, legacy: LegacyStoreArgs) -> Self {
        Self {
            config: self.config.or(legacy.config),
            data_dir: self.data_dir.or(legacy.data_dir),
            database_url: self.database_url.or(legacy.database_url),
            database_url_file: self.database_url_file.or(legacy.database_url_file),
            master_key_file: self.master_key_file.or(legacy.master_key_file),
            log_format: self.log_format.or(legacy.log_format),
        }
    }
}

/// Settings of `server` only.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Address to listen on: IP:PORT (127.0.0.1:8080, [::1]:8443, 0.0.0.0:8443) or
    /// HOST:PORT with a host name (localhost:8443, resolved at start: the first IPv4 address,
    /// else the first address; the one chosen is printed) [default: 127.0.0.1:8080].
    #[arg(long, env = "OPENSCM_LISTEN", value_name = "ADDR:PORT|HOST:PORT")]
    pub listen: Option<String>,
    /// HTTPS and the plain-HTTP rule.
    #[command(flatten)]
    pub tls: Box<TlsArgs>,
    /// Endpoint clients use, written to credentials.json [default: http://LISTEN, or
    /// https://LISTEN with TLS].
    #[arg(long, env = "OPENSCM_PUBLIC_ENDPOINT")]
    pub public_endpoint: Option<String>,
    /// Allowed X-Sdk-Date clock skew in seconds [default: 900].
    #[arg(long, env = "OPENSCM_MAX_CLOCK_SKEW_SECONDS")]
    pub max_clock_skew_seconds: Option<u64>,
    /// Lifetime of X-Auth-Token tokens in seconds [default: 86400].
    #[arg(long, env = "OPENSCM_TOKEN_TTL_SECONDS")]
    pub token_ttl_seconds: Option<u64>,
    /// Validity of certificates issued by the built-in CA, in days [default: 365].
    #[arg(long, env = "OPENSCM_LEAF_VALIDITY_DAYS")]
    pub leaf_validity_days: Option<u64>,
    /// Seconds requests in flight may take to finish after SIGTERM [default: 30].
    #[arg(long, env = "OPENSCM_SHUTDOWN_GRACE_SECONDS")]
    pub shutdown_grace_seconds: Option<u64>,
    /// Push targets as an inline TOML array, replacing those of the config file, e.g.
    /// '[{name="a", kind="nginx", ...}]'.
    #[arg(long, env = "OPENSCM_PUSH_TARGETS")]
    pub push_targets: Option<String>,
    /// Seconds a job worker holds a job without renewing its lease [default: 60].
    #[arg(long, env = "OPENSCM_JOB_LEASE_SECONDS")]
    pub job_lease_seconds: Option<u64>,
    /// Milliseconds between looks for due jobs [default: 1000].
    #[arg(long, env = "OPENSCM_JOB_POLL_MILLIS")]
    pub job_poll_millis: Option<u64>,
    /// Job attempts run at once by this server [default: 8].
    #[arg(long, env = "OPENSCM_JOB_CONCURRENCY")]
    pub job_concurrency: Option<usize>,
}

/// The `server` flags of HTTPS (boxed in [`ServerArgs`]: they are many and rarely given).
#[derive(Debug, Clone, Args)]
pub struct TlsArgs {
    /// HTTPS: off, files (--tls-cert-file + --tls-key-file) or builtin (a certificate from the
    /// built-in CA) [default: files when the files are given, else off].
    #[arg(long = "tls", env = "OPENSCM_TLS", value_name = "MODE")]
    pub mode: Option<String>,
    /// PEM certificate chain (leaf first) to serve; read again when it changes.
    #[arg(long = "tls-cert-file", env = "OPENSCM_TLS_CERT_FILE")]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of that certificate.
    #[arg(long = "tls-key-file", env = "OPENSCM_TLS_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Host names and IP addresses of the built-in serving certificate, comma-separated
    /// [default: localhost, 127.0.0.1, ::1, the listen address, the public endpoint's host].
    #[arg(long = "tls-hosts", env = "OPENSCM_TLS_HOSTS", value_delimiter = ',')]
    pub hosts: Option<Vec<String>>,
    /// Serve plain HTTP on a non-loopback address (only behind a TLS-terminating proxy).
    #[arg(long, env = "OPENSCM_ALLOW_PLAIN_HTTP", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub allow_plain_http: Option<bool>,
}

/// Everything resolved.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// The host name `listen` was given with, and every address it resolved to.
    pub listen_name: Option<ListenName>,
    /// HTTPS.
    pub tls: TlsConfig,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Database URL (a secret: redacted in `Debug`).
    pub database_url: DatabaseUrl,
    /// Master key file.
    pub master_key_file: PathBuf,
    /// Endpoint for clients.
    pub public_endpoint: String,
    /// Whether the endpoint was configured (else it follows the address actually bound).
    pub public_endpoint_explicit: bool,
    /// JSON logs?
    pub json_logs: bool,
    /// Grace period on shutdown.
    pub shutdown_grace: std::time::Duration,
    /// Connection limits (the grace period included).
    pub serve: scm_api::ServeLimits,
    /// Request limits.
    pub api: scm_api::ApiLimits,
    /// Domain settings.
    pub core: CoreConfig,
    /// Who may read `/metrics`.
    pub metrics: scm_api::MetricsConfig,
    /// Whether a proxy sits in front (plain HTTP allowed on purpose, or trusted proxies named):
    /// then loopback is every client of a proxy on the same host.
    pub behind_proxy: bool,
}

impl RuntimeConfig {
    /// The warning to give at start when `/metrics` is readable from loopback without a token
    /// behind a proxy: a proxy on the same host makes every one of its clients loopback.
    pub fn metrics_exposure_warning(&self) -> Option<&'static str> {
        let loopback_allowed = self.metrics.allow.iter().any(|c| {
            c.contains(std::net::IpAddr::from([127, 0, 0, 1]))
                || c.contains(std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST))
        });
        (self.behind_proxy && loopback_allowed && self.metrics.token.is_none()).then_some(
            "/metrics is readable from loopback without a token, and a proxy sits in front: a \
             proxy on the same host makes every one of its clients loopback. Set [metrics] \
             token_file (and allow = []), or keep /metrics out of the proxy's routes",
        )
    }
}

/// A host name given for `listen`, and every address it resolved to.
pub type ListenName = (String, Vec<SocketAddr>);

/// How the listener serves.
#[derive(Debug, Clone)]
pub enum TlsConfig {
    /// Plain HTTP.
    Off,
    /// The operator's certificate and key files, looked at every `poll`.
    Files {
        /// PEM chain.
        cert_file: PathBuf,
        /// PEM key.
        key_file: PathBuf,
        /// Time between looks.
        poll: std::time::Duration,
    },
    /// A certificate from the built-in CA.
    Builtin {
        /// Its names and addresses.
        hosts: Vec<scm_pki::ServingHost>,
        /// Its validity.
        validity: time::Duration,
    },
}

impl TlsConfig {
    /// Whether the listener serves HTTPS.
    pub fn on(&self) -> bool {
        !matches!(self, Self::Off)
    }
}

/// `http://host:port` (`https://` with TLS) for a listen address (loopback when it listens on
/// all addresses), or for the host name it was given with.
pub fn endpoint_of(listen: SocketAddr, name: Option<&str>, tls: bool) -> String {
    let host = match (name, listen.ip()) {
        (Some(name), _) => name.to_owned(),
        (None, ip) if ip.is_unspecified() => "127.0.0.1".to_string(),
        (None, std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
        (None, ip) => ip.to_string(),
    };
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{host}:{}", listen.port())
}

/// A listen address: `IP:PORT`, or `HOST:PORT` resolved now (the first IPv4 address, else the
/// first; every address found is returned with the name).
pub fn parse_listen(raw: &str) -> anyhow::Result<(SocketAddr, Option<ListenName>)> {
    if let Ok(addr) = raw.parse::<SocketAddr>() {
        return Ok((addr, None));
    }
    let shape = || {
        anyhow::anyhow!(
            "listen: {raw:?} is not IP:PORT or HOST:PORT (such as 127.0.0.1:8080, [::1]:8443, \
             0.0.0.0:8443 or localhost:8443)"
        )
    };
    let (host, port) = raw.rsplit_once(':').ok_or_else(shape)?;
    let port: u16 = port.parse().map_err(|_| shape())?;
    if scm_pki::ServingHost::parse(host).is_err() || host.starts_with('[') {
        return Err(shape());
    }
    let found: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .with_context(|| format!("listen: cannot resolve the host name {host:?}"))?
        .collect();
    let chosen = found
        .iter()
        .find(|a| a.is_ipv4())
        .or(found.first())
        .copied()
        .ok_or_else(|| anyhow::anyhow!("listen: the host name {host:?} resolves to no address"))?;
    Ok((chosen, Some((host.to_ascii_lowercase(), found))))
}

/// The host of an endpoint URL (`https://scm.example.test:8443/x` gives `scm.example.test`).
fn endpoint_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    Some(host).filter(|h| !h.is_empty())
}

/// The `[tls]` settings resolved: the mode, its files or hosts, and the plain-HTTP rule.
fn resolve_tls(
    file: &TlsFile,
    server: Option<&ServerArgs>,
    listen: SocketAddr,
    listen_name: Option<&str>,
    explicit_endpoint: Option<&str>,
) -> anyhow::Result<TlsConfig> {
    let cert_file = server
        .and_then(|s| s.tls.cert_file.clone())
        .or(file.cert_file.clone());
    let key_file = server
        .and_then(|s| s.tls.key_file.clone())
        .or(file.key_file.clone());
    let mode = server
        .and_then(|s| s.tls.mode.clone())
        .or(file.mode.clone())
        .unwrap_or_else(|| {
            if cert_file.is_some() || key_file.is_some() {
                "files".into()
            } else {
                "off".into()
            }
        });
    let allow_plain_http = server
        .and_then(|s| s.tls.allow_plain_http)
        .or(file.allow_plain_http)
        .unwrap_or(false);
    let files_given = cert_file.is_some() || key_file.is_some();
    let tls = match mode.as_str() {
        "off" => {
            if files_given {
                bail!("tls: cert_file/key_file are given but mode is \"off\"");
            }
            TlsConfig::Off
        }
        "files" => {
            let (Some(cert_file), Some(key_file)) = (cert_file, key_file) else {
                bail!(
                    "tls: mode \"files\" needs both cert_file and key_file (--tls-cert-file, --tls-key-file)"
                );
            };
            let poll = ranged(
                "tls.reload_seconds",
                file.reload_seconds.unwrap_or(5),
                1..=3600,
            )?;
            TlsConfig::Files {
                cert_file,
                key_file,
                poll: std::time::Duration::from_secs(poll),
            }
        }
        "builtin" => {
            if files_given {
                bail!("tls: cert_file/key_file are for mode \"files\", not \"builtin\"");
            }
            let names = match server
                .and_then(|s| s.tls.hosts.clone())
                .or(file.hosts.clone())
            {
                Some(names) => names,
                None => default_hosts(listen, listen_name, explicit_endpoint),
            };
            let mut hosts = Vec::new();
            for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
                let host = scm_pki::ServingHost::parse(name).map_err(|_| {
                    anyhow::anyhow!("tls.hosts: {name:?} is not a host name or an IP address")
                })?;
                if !hosts.contains(&host) {
                    hosts.push(host);
                }
            }
            if hosts.is_empty() {
                bail!("tls.hosts: give at least one host name or IP address");
            }
            let days = ranged(
                "tls.validity_days",
                file.validity_days.unwrap_or(30),
                1..=397,
            )?;
            TlsConfig::Builtin {
                hosts,
                validity: secs(days * 86_400),
            }
        }
        other => bail!("tls.mode: {other:?} is not off, files or builtin"),
    };
    if !tls.on() && !listen.ip().is_loopback() && !allow_plain_http {
        bail!(
            "listen: {listen} is not a loopback address and TLS is off, so signed requests, tokens \
             and exported private keys would cross the network in clear. Serve HTTPS ([tls] mode = \
             \"builtin\" for a certificate from the built-in CA, or [tls] cert_file + key_file; \
             flags --tls builtin, or --tls-cert-file + --tls-key-file), or, when a TLS-terminating \
             proxy sits in front, allow plain HTTP explicitly: [tls] allow_plain_http = true \
             (--allow-plain-http, OPENSCM_ALLOW_PLAIN_HTTP=true)"
        );
    }
    Ok(tls)
}

/// localhost, 127.0.0.1, ::1, the listen address (unless it is the wildcard) and name, and the
/// host of the configured public endpoint.
fn default_hosts(
    listen: SocketAddr,
    listen_name: Option<&str>,
    explicit_endpoint: Option<&str>,
) -> Vec<String> {
    let mut hosts = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if !listen.ip().is_unspecified() {
        hosts.push(listen.ip().to_string());
    }
    hosts.extend(listen_name.map(str::to_owned));
    hosts.extend(explicit_endpoint.and_then(endpoint_host).map(str::to_owned));
    hosts
}

/// Reads the config file, if any.
pub fn read_file(path: Option<&Path>) -> anyhow::Result<FileConfig> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    parse_toml(&format!("config file {}", path.display()), &text)
}

/// Parses TOML into `T`; an error names where it is (`line N`), the key (`leaf_validity_days`,
/// `push_targets[1].cert_path`) and, inside a push target or notifier, that entry's name, so a
/// value of the wrong type can be found at once.
pub fn parse_toml<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> anyhow::Result<T> {
    let de = toml::de::Deserializer::parse(text)
        .map_err(|e| anyhow::anyhow!("{what}{}: {}", line_of(text, &e), e.message().trim()))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.inner();
        let entry = entry_name(text, &key)
            .map(|(list, name)| format!(" ({list} {name:?})"))
            .unwrap_or_default();
        let key = if key == "." {
            String::new()
        } else {
            format!(" {key}{entry}:")
        };
        anyhow::anyhow!(
            "{what}{}:{key} {}",
            line_of(text, inner),
            inner.message().trim()
        )
    })
}

/// `, line N` of an error's position, when it has one.
fn line_of(text: &str, e: &toml::de::Error) -> String {
    e.span()
        .and_then(|span| text.get(..span.start))
        .map(|before| format!(", line {}", before.matches('\n').count() + 1))
        .unwrap_or_default()
}

/// For a key path inside `push_targets[i]` or `notifiers[i]`, that list and the entry's name.
fn entry_name(text: &str, key: &str) -> Option<(&'static str, String)> {
    let (list, label) = if key.starts_with("push_targets[") {
        ("push_targets", "push target")
    } else if key.starts_with("notifiers[") {
        ("notifiers", "notifier")
    } else {
        return None;
    };
    let rest = key.strip_prefix(list)?.strip_prefix('[')?;
    let index: usize = rest.split(']').next()?.parse().ok()?;
    let table: toml::Table = toml::from_str(text).ok()?;
    let name = table
        .get(list)?
        .as_array()?
        .get(index)?
        .get("name")?
        .as_str()?;
    Some((label, name.to_owned()))
}

fn secs(v: u64) -> time::Duration {
    time::Duration::seconds(i64::try_from(v).unwrap_or(i64::MAX))
}

/// A setting from the flag/environment, else the file, else its default, checked in range.
fn pick(
    name: &str,
    flag: Option<u64>,
    file: Option<u64>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> anyhow::Result<u64> {
    ranged(name, flag.or(file).unwrap_or(default), range)
}

/// The `[validation]` and `[renewal]` sections, and the adapters validation checks through.
fn resolve_lifecycle(
    v: &ValidationFile,
    r: &RenewalFile,
    egress: &EgressPolicy,
) -> anyhow::Result<(ValidationSettings, RenewalSettings, Probes)> {
    let days = |d: u64| std::time::Duration::from_secs(d * 86_400);
    let validation = ValidationSettings {
        deadline: days(pick(
            "validation.deadline_days",
            None,
            v.deadline_days,
            7,
            1..=90,
        )?),
        reuse: days(pick(
            "validation.reuse_days",
            None,
            v.reuse_days,
            30,
            0..=398,
        )?),
        max_interval: std::time::Duration::from_secs(pick(
            "validation.max_interval_seconds",
            None,
            v.max_interval_seconds,
            300,
            5..=3600,
        )?),
    };
    let fraction = r.remaining_fraction.unwrap_or(0.33);
    if !(0.05..=0.9).contains(&fraction) {
        bail!("renewal.remaining_fraction: {fraction} is out of range (0.05..=0.9)");
    }
    let renewal = RenewalSettings {
        remaining_fraction: fraction,
        sweep_every: std::time::Duration::from_secs(pick(
            "renewal.sweep_seconds",
            None,
            r.sweep_seconds,
            60,
            1..=3600,
        )?),
        retry_after: std::time::Duration::from_secs(
            pick("renewal.retry_minutes", None, r.retry_minutes, 60, 1..=1440)? * 60,
        ),
        ..RenewalSettings::default()
    };
    let mut nameservers = Vec::new();
    for (i, ns) in v.nameservers.iter().flatten().enumerate() {
        let addr: SocketAddr = ns.parse().map_err(|_| {
            anyhow::anyhow!(
                "validation.nameservers[{i}]: {ns:?} is not an address such as 127.0.0.1:53"
            )
        })?;
        nameservers.push(addr);
    }
    let probes = scm_outbound::probes::probes(
        &nameservers,
        v.authoritative.unwrap_or(false),
        v.http_port.unwrap_or(80),
        egress,
    )
    .map_err(|e| anyhow::anyhow!("validation: {e}"))?;
    Ok((validation, renewal, probes))
}

/// `value` if it lies in `range`; else the error names the setting and the range. A setting out of
/// range stops the start rather than working strangely (a huge skew would turn the date check off).
fn ranged(name: &str, value: u64, range: std::ops::RangeInclusive<u64>) -> anyhow::Result<u64> {
    if range.contains(&value) {
        Ok(value)
    } else {
        bail!(
            "{name}: {value} is out of range ({}..={})",
            range.start(),
            range.end()
        )
    }
}

/// Merges flags/env, file and defaults.
pub fn resolve(common: &CommonArgs, server: Option<&ServerArgs>) -> anyhow::Result<RuntimeConfig> {
    let file = read_file(common.config.as_deref())?;
    let data_dir = common
        .data_dir
        .clone()
        .or(file.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from("openscm-data"));
    let listen_raw = server
        .and_then(|s| s.listen.clone())
        .or(file.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let (listen, listen_name) = parse_listen(&listen_raw)?;
    let database_url = database_url(common, &file, &data_dir)?;
    let master_key_file = common
        .master_key_file
        .clone()
        .or(file.master_key_file.clone())
        .unwrap_or_else(|| data_dir.join("master.key"));
    let explicit_endpoint = server
        .and_then(|s| s.public_endpoint.clone())
        .or(file.public_endpoint.clone());
    let tls = resolve_tls(
        &file.tls,
        server,
        listen,
        listen_name.as_ref().map(|(n, _)| n.as_str()),
        explicit_endpoint.as_deref(),
    )?;
    // Plain HTTP allowed on purpose, or a proxy named: a TLS-terminating proxy sits in front.
    let behind_proxy = (!tls.on()
        && server
            .and_then(|s| s.tls.allow_plain_http)
            .or(file.tls.allow_plain_http)
            .unwrap_or(false))
        || file
            .console
            .trusted_proxies
            .as_ref()
            .is_some_and(|p| !p.is_empty());
    let public_endpoint = explicit_endpoint.clone().unwrap_or_else(|| {
        endpoint_of(
            listen,
            listen_name.as_ref().map(|(n, _)| n.as_str()),
            tls.on(),
        )
    });
    let log_format = common
        .log_format
        .clone()
        .or(file.log_format.clone())
        .unwrap_or_else(|| "text".into());
    let json_logs = match log_format.as_str() {
        "text" => false,
        "json" => true,
        other => bail!("log_format: {other:?} is not text or json"),
    };
    let push_configs = match server.and_then(|s| s.push_targets.clone()) {
        Some(inline) => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Wrapper {
                push_targets: Vec<TargetConfig>,
            }
            let w: Wrapper =
                parse_toml("OPENSCM_PUSH_TARGETS", &format!("push_targets = {inline}"))?;
            w.push_targets
        }
        None => file.push_targets,
    };
    let mut push_targets: Vec<PushTarget> = Vec::new();
    let mut written: Vec<(PathBuf, String)> = Vec::new();
    for c in &push_configs {
        if push_targets.iter().any(|x| x.name == c.name()) {
            bail!("push_targets: the name {:?} is used twice", c.name());
        }
        // Two targets writing one file would let one account's push replace another's key.
        for path in c.files() {
            let path = normalise(path);
            if let Some((_, other)) = written.iter().find(|(p, _)| *p == path) {
                bail!(
                    "push_targets {:?}: {} is also written by push target {other:?}",
                    c.name(),
                    path.display()
                );
            }
            written.push((path, c.name().to_owned()));
        }
        push_targets.push(scm_outbound::deploy::push_target(c).map_err(|e| anyhow::anyhow!(e))?);
    }
    // One outbound HTTP client for every adapter, bounded by the operator's egress policy.
    let egress = &file.egress;
    ranged(
        "egress.connect_timeout_seconds",
        egress.connect_timeout_seconds,
        1..=300,
    )?;
    ranged(
        "egress.request_timeout_seconds",
        egress.request_timeout_seconds,
        1..=3600,
    )?;
    ranged(
        "egress.max_response_bytes",
        egress.max_response_bytes,
        1..=64 << 20,
    )?;
    ranged(
        "egress.max_redirects",
        u64::from(egress.max_redirects),
        0..=20,
    )?;
    let http = OutboundHttp::new(egress.clone()).map_err(|e| anyhow::anyhow!("egress: {e}"))?;
    let mut notifiers: Vec<NotifierTarget> = Vec::new();
    for c in &file.notifiers {
        if notifiers.iter().any(|x| x.name == c.name()) {
            bail!("notifiers: the name {:?} is used twice", c.name());
        }
        notifiers.push(scm_outbound::notify::notifier(c, &http).map_err(|e| anyhow::anyhow!(e))?);
    }
    let jobs = JobSettings {
        lease: std::time::Duration::from_secs(pick(
            "jobs.lease_seconds",
            server.and_then(|s| s.job_lease_seconds),
            file.jobs.lease_seconds,
            60,
            1..=3600,
        )?),
        poll: std::time::Duration::from_millis(pick(
            "jobs.poll_millis",
            server.and_then(|s| s.job_poll_millis),
            file.jobs.poll_millis,
            1000,
            10..=60_000,
        )?),
        concurrency: usize::try_from(pick(
            "jobs.concurrency",
            server.and_then(|s| s.job_concurrency).map(|c| c as u64),
            file.jobs.concurrency.map(|c| c as u64),
            8,
            1..=256,
        )?)?,
        retention: std::time::Duration::from_secs(
            pick(
                "jobs.retention_days",
                None,
                file.jobs.retention_days,
                30,
                1..=3650,
            )? * 86_400,
        ),
    };
    let limits = &file.limits;
    let quotas = &file.quotas;
    let (validation, renewal, probes) =
        resolve_lifecycle(&file.validation, &file.renewal, &file.egress)?;
    let max_validity = pick(
        "max_validity_days",
        None,
        file.max_validity_days,
        397,
        1..=3650,
    )?;
    let leaf_days = pick(
        "leaf_validity_days",
        server.and_then(|s| s.leaf_validity_days),
        file.leaf_validity_days,
        365,
        1..=3650,
    )?;
    if leaf_days > max_validity {
        bail!("leaf_validity_days: {leaf_days} is longer than max_validity_days ({max_validity})");
    }
    let core = CoreConfig {
        validation,
        renewal,
        probes,
        max_skew: secs(pick(
            "max_clock_skew_seconds",
            server.and_then(|s| s.max_clock_skew_seconds),
            file.max_clock_skew_seconds,
            900,
            60..=900,
        )?),
        token_ttl: secs(pick(
            "token_ttl_seconds",
            server.and_then(|s| s.token_ttl_seconds),
            file.token_ttl_seconds,
            86_400,
            300..=604_800,
        )?),
        leaf_validity: secs(leaf_days * 86_400),
        push_targets,
        notifiers,
        jobs,
        max_tokens_per_credential: u32::try_from(pick(
            "limits.max_tokens_per_credential",
            None,
            limits.max_tokens_per_credential,
            20,
            1..=1000,
        )?)?,
        quotas: scm_store::Quotas {
            certificates_per_account: pick(
                "quotas.certificates_per_account",
                None,
                quotas.certificates_per_account,
                10_000,
                1..=100_000_000,
            )?,
            orders_per_day: pick(
                "quotas.orders_per_day",
                None,
                quotas.orders_per_day,
                1_000,
                1..=10_000_000,
            )?,
            csrs_per_account: pick(
                "quotas.csrs_per_account",
                None,
                quotas.csrs_per_account,
                1_000,
                1..=10_000_000,
            )?,
        },
        keygen_per_account: u32::try_from(pick(
            "limits.keygen_per_account",
            None,
            limits.keygen_per_account,
            1,
            1..=64,
        )?)?,
        // A default a small disk survives (about 360 bytes an event); 0 keeps them for ever.
        audit_retention: match file
            .audit
            .retention_days
            .unwrap_or(DEFAULT_AUDIT_RETENTION_DAYS)
        {
            0 => None,
            days => Some(std::time::Duration::from_secs(
                ranged("audit.retention_days", days, 0..=36_500)? * 86_400,
            )),
        },
        ..CoreConfig::default()
    };
    let shutdown_grace = std::time::Duration::from_secs(pick(
        "shutdown_grace_seconds",
        server.and_then(|s| s.shutdown_grace_seconds),
        file.shutdown_grace_seconds,
        30,
        1..=600,
    )?);
    let header_timeout = pick(
        "limits.header_timeout_seconds",
        None,
        limits.header_timeout_seconds,
        30,
        1..=300,
    )?;
    let max_connections = pick(
        "limits.max_connections",
        None,
        limits.max_connections,
        1024,
        16..=1_000_000,
    )?;
    let serve = scm_api::ServeLimits {
        header_read_timeout: std::time::Duration::from_secs(header_timeout),
        // The first byte never gets longer than the whole head.
        first_byte_timeout: std::time::Duration::from_secs(
            pick(
                "limits.first_byte_timeout_seconds",
                None,
                limits.first_byte_timeout_seconds,
                5,
                1..=300,
            )?
            .min(header_timeout),
        ),
        grace: shutdown_grace,
        max_connections: usize::try_from(max_connections)?,
        // One address never gets more than the whole cap.
        max_connections_per_address: usize::try_from(
            pick(
                "limits.max_connections_per_address",
                None,
                limits.max_connections_per_address,
                256,
                1..=1_000_000,
            )?
            .min(max_connections),
        )?,
    };
    let per_second = pick(
        "limits.rate_limit_per_second",
        None,
        limits.rate_limit_per_second,
        100,
        0..=1_000_000,
    )?;
    let burst = pick(
        "limits.rate_limit_burst",
        None,
        limits.rate_limit_burst,
        200,
        1..=1_000_000,
    )?;
    let metrics = metrics_config(&file.metrics)?;
    let api = scm_api::ApiLimits {
        body_timeout: std::time::Duration::from_secs(pick(
            "limits.body_timeout_seconds",
            None,
            limits.body_timeout_seconds,
            10,
            1..=300,
        )?),
        request_timeout: std::time::Duration::from_secs(pick(
            "limits.request_timeout_seconds",
            None,
            limits.request_timeout_seconds,
            120,
            5..=3600,
        )?),
        rate: (per_second > 0).then_some(scm_api::RateLimit {
            per_second: per_second as f64,
            burst: burst as f64,
        }),
        trusted_proxies: file
            .console
            .trusted_proxies
            .iter()
            .flatten()
            .map(|a| {
                a.parse::<scm_api::Cidr>()
                    .map_err(|e| anyhow::anyhow!("console.trusted_proxies: {e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?
            .into(),
    };
    Ok(RuntimeConfig {
        listen,
        listen_name,
        tls,
        data_dir,
        database_url,
        master_key_file,
        public_endpoint,
        public_endpoint_explicit: explicit_endpoint.is_some(),
        json_logs,
        shutdown_grace,
        serve,
        api,
        core,
        metrics,
        behind_proxy,
    })
}

/// The `[metrics]` table resolved: the ranges parsed, the token read.
fn metrics_config(file: &MetricsFile) -> anyhow::Result<scm_api::MetricsConfig> {
    let mut config = scm_api::MetricsConfig::default();
    if let Some(allow) = &file.allow {
        config.allow = allow
            .iter()
            .map(|a| {
                a.parse::<scm_api::Cidr>()
                    .map_err(|e| anyhow::anyhow!("metrics.allow: {e}"))
            })
            .collect::<anyhow::Result<_>>()?;
    }
    if let Some(path) = &file.token_file {
        let text = scm_outbound::fsutil::read_secret_file(path)
            .map_err(|e| anyhow::anyhow!("metrics.token_file: {e}"))?;
        config.token = Some(scm_api::MetricsToken::new(&text).ok_or_else(|| {
            anyhow::anyhow!("metrics.token_file: {} holds no token", path.display())
        })?);
    }
    Ok(config)
}

/// `path` without `.` segments and with `..` applied to what precedes it (paths are absolute),
/// its directory resolved through symbolic links when it exists: two spellings of one file
/// compare equal.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    match (out.parent(), out.file_name()) {
        (Some(dir), Some(name)) => match std::fs::canonicalize(dir) {
            Ok(dir) => dir.join(name),
            Err(_) => out,
        },
        _ => out,
    }
}

/// The database URL: from the flag or environment, the config file, a file named by either, or
/// SQLite in the data directory.
fn database_url(
    common: &CommonArgs,
    file: &FileConfig,
    data_dir: &Path,
) -> anyhow::Result<DatabaseUrl> {
    let inline = common.database_url.clone().or(file.database_url.clone());
    let from_file = common
        .database_url_file
        .clone()
        .or(file.database_url_file.clone());
    let raw = match (inline, from_file) {
        (Some(_), Some(_)) => bail!("give database_url or database_url_file, not both"),
        (Some(u), None) => zeroize::Zeroizing::new(u),
        (None, Some(path)) => scm_outbound::fsutil::read_secret_file(&path)
            .map_err(|e| anyhow::anyhow!("database_url_file: {e}"))?,
        (None, None) => return Ok(DatabaseUrl::sqlite_file(&data_dir.join("openscm.db"))),
    };
    DatabaseUrl::parse(&raw).map_err(|e| anyhow::anyhow!("database_url: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_of_the_wrong_type_names_its_key_line_and_push_target() {
        let e = parse_toml::<FileConfig>(
            "config file x.toml",
            "listen = \"127.0.0.1:1\"\nleaf_validity_days = \"90\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("config file x.toml, line 2: leaf_validity_days:"),
            "{e}"
        );
        assert!(
            e.ends_with("invalid type: string \"90\", expected u64"),
            "{e}"
        );
        let text = "[[push_targets]]\nname = \"web\"\nkind = \"nginx\"\naccount = \"x\"\nservice = \"ELB\"\nregion = \"r\"\ncert_path = \"/a\"\nkey_path = \"/b\"\nreload_command = [\"true\"]\n\n[[push_targets]]\nname = \"edge\"\nkind = \"nginx\"\naccount = \"x\"\nservice = \"ELB\"\nregion = \"r\"\ncert_path = 7\nkey_path = \"/c\"\nreload_command = [\"true\"]\n";
        let e = parse_toml::<FileConfig>("config file x.toml", text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("push_targets[1]"), "{e}");
        assert!(e.contains("(push target \"edge\")"), "{e}");
        let e = parse_toml::<FileConfig>("config file x.toml", "[jobs]\nconcurrency = -1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2: jobs.concurrency:"), "{e}");
        let e = parse_toml::<FileConfig>("config file x.toml", "listen = \n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("config file x.toml, line 1:"), "{e}");
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = toml::from_str::<FileConfig>("listen = \"127.0.0.1:1\"\nlisten_adress = 3\n")
            .unwrap_err();
        assert!(e.message().contains("listen_adress"), "{}", e.message());
        let e = toml::from_str::<FileConfig>("[[push_targets]]\nname = \"a\"\nkind = \"nginx\"\naccount = \"x\"\nservice = \"ELB\"\nreload = []\n")
            .unwrap_err();
        assert!(e.message().contains("reload"), "{}", e.message());
        let e = toml::from_str::<FileConfig>("[jobs]\nleases = 3\n").unwrap_err();
        assert!(e.message().contains("leases"), "{}", e.message());
        let e = toml::from_str::<FileConfig>("[egress]\nallow_lo = true\n").unwrap_err();
        assert!(e.message().contains("allow_lo"), "{}", e.message());
    }

    #[test]
    fn the_metrics_table_takes_ranges_and_a_token_file() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let token = d.path().join("metrics.token");
        std::fs::write(&token, "s3cret-token\n").unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
        let file: FileConfig = toml::from_str(&format!(
            "[metrics]\nallow = [\"10.0.0.0/8\", \"::1\"]\ntoken_file = {:?}\n",
            token.display().to_string()
        ))
        .unwrap();
        let m = metrics_config(&file.metrics).unwrap();
        let allow: Vec<String> = m.allow.iter().map(ToString::to_string).collect();
        assert_eq!(allow, ["10.0.0.0/8", "::1/128"]);
        assert!(m.token.is_some());
        assert!(
            !format!("{m:?}").contains("s3cret"),
            "the token is redacted"
        );
        // Defaults: loopback, no token.
        let m = metrics_config(&MetricsFile::default()).unwrap();
        assert_eq!(m.allow.len(), 2);
        assert!(m.token.is_none());
        let bad: FileConfig = toml::from_str("[metrics]\nallow = [\"10.0.0.0/40\"]\n").unwrap();
        let e = metrics_config(&bad.metrics).unwrap_err().to_string();
        assert!(
            e.contains("metrics.allow") && e.contains("10.0.0.0/40"),
            "{e}"
        );
        let e = toml::from_str::<FileConfig>("[metrics]\ntoken = \"x\"\n").unwrap_err();
        assert!(e.message().contains("token"), "{}", e.message());
    }

    #[test]
    fn audit_retention_is_for_ever_unless_set_in_range() {
        let d = tempfile::tempdir().unwrap();
        let config = d.path().join("openscm.toml");
        let resolved = |text: &str| {
            std::fs::write(&config, text).unwrap();
            let common = CommonArgs {
                config: Some(config.clone()),
                data_dir: Some(d.path().to_owned()),
                ..CommonArgs::default()
            };
            resolve(&common, None)
        };
        assert_eq!(
            resolved("").unwrap().core.audit_retention,
            Some(std::time::Duration::from_secs(30 * 86_400)),
            "a default a small disk survives"
        );
        assert_eq!(
            resolved("[audit]\nretention_days = 0\n")
                .unwrap()
                .core
                .audit_retention,
            None,
            "for ever, on purpose"
        );
        assert_eq!(
            resolved("[audit]\nretention_days = 400\n")
                .unwrap()
                .core
                .audit_retention,
            Some(std::time::Duration::from_secs(400 * 86_400))
        );
        let e = resolved("[audit]\nretention_days = 36501\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("audit.retention_days"), "{e}");
    }

    #[test]
    fn the_database_url_is_a_secret_and_can_come_from_a_file() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("db-url");
        std::fs::write(&path, "postgres://scm:hunter2@db:5432/scm\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let common = CommonArgs {
            config: None,
            data_dir: Some(d.path().to_owned()),
            database_url: None,
            database_url_file: Some(path.clone()),
            master_key_file: None,
            log_format: None,
        };
        let cfg = resolve(&common, None).unwrap();
        assert_eq!(
            cfg.database_url.expose(),
            "postgres://scm:hunter2@db:5432/scm"
        );
        assert!(!format!("{cfg:?}").contains("hunter2"), "redacted in Debug");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = resolve(&common, None).unwrap_err();
        assert!(format!("{e:#}").contains("chmod 600"), "{e:#}");
        let both = CommonArgs {
            database_url: Some("sqlite://x".into()),
            ..common
        };
        assert!(resolve(&both, None).is_err());
    }

    fn server_args(args: &[&str]) -> ServerArgs {
        #[derive(clap::Parser)]
        struct Wrap {
            #[command(flatten)]
            server: ServerArgs,
        }
        <Wrap as clap::Parser>::try_parse_from(
            std::iter::once("openscm").chain(args.iter().copied()),
        )
        .unwrap()
        .server
    }

    fn common_in(dir: &Path, config: Option<PathBuf>) -> CommonArgs {
        CommonArgs {
            config,
            data_dir: Some(dir.to_owned()),
            database_url: None,
            database_url_file: None,
            master_key_file: None,
            log_format: None,
        }
    }

    #[test]
    fn metrics_open_to_loopback_behind_a_proxy_are_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("c.toml");
        let warned = |text: &str| {
            std::fs::write(&file, text).unwrap();
            resolve(
                &common_in(d.path(), Some(file.clone())),
                Some(&server_args(&[])),
            )
            .unwrap()
            .metrics_exposure_warning()
            .is_some()
        };
        let behind = "listen = \"0.0.0.0:8080\"\n[tls]\nallow_plain_http = true\n";
        assert!(
            warned(behind),
            "plain HTTP behind a proxy, /metrics open to loopback"
        );
        assert!(warned("[console]\ntrusted_proxies = [\"127.0.0.1/32\"]\n"));
        assert!(!warned(""), "no proxy: loopback is loopback");
        assert!(!warned(&format!(
            "{behind}[metrics]\nallow = [\"10.0.0.0/8\"]\n"
        )));
        let token = d.path().join("token");
        std::fs::write(&token, "scrape-token-0123456789").unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(!warned(&format!(
            "{behind}[metrics]\ntoken_file = \"{}\"\n",
            token.display()
        )));
    }

    #[test]
    fn plain_http_on_a_non_loopback_address_is_refused_unless_allowed() {
        let d = tempfile::tempdir().unwrap();
        let common = common_in(d.path(), None);
        let e = resolve(&common, Some(&server_args(&["--listen", "0.0.0.0:8080"]))).unwrap_err();
        let text = format!("{e:#}");
        for what in [
            "0.0.0.0:8080",
            "not a loopback address",
            "mode = \"builtin\"",
            "allow_plain_http = true",
            "--allow-plain-http",
        ] {
            assert!(text.contains(what), "{what:?} missing from: {text}");
        }
        // Allowed by flag or by the file; loopback needs nothing; TLS on needs nothing.
        let cfg = resolve(
            &common,
            Some(&server_args(&[
                "--listen",
                "0.0.0.0:8080",
                "--allow-plain-http",
            ])),
        )
        .unwrap();
        assert!(!cfg.tls.on());
        assert_eq!(cfg.public_endpoint, "http://127.0.0.1:8080");
        let file = d.path().join("c.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:8080\"\n[tls]\nallow_plain_http = true\n",
        )
        .unwrap();
        assert!(
            resolve(
                &common_in(d.path(), Some(file.clone())),
                Some(&server_args(&[]))
            )
            .is_ok()
        );
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:8080\"\n[tls]\nallow_plain_http = false\n",
        )
        .unwrap();
        assert!(resolve(&common_in(d.path(), Some(file)), Some(&server_args(&[]))).is_err());
        for loopback in ["127.0.0.1:8080", "[::1]:8080", "127.0.0.2:9"] {
            assert!(
                resolve(&common, Some(&server_args(&["--listen", loopback]))).is_ok(),
                "{loopback}"
            );
        }
        let cfg = resolve(
            &common,
            Some(&server_args(&[
                "--listen",
                "0.0.0.0:8443",
                "--tls",
                "builtin",
            ])),
        )
        .unwrap();
        assert!(cfg.tls.on());
        assert_eq!(cfg.public_endpoint, "https://127.0.0.1:8443");
        // The default start stays plain HTTP on loopback.
        let cfg = resolve(&common, None).unwrap();
        assert!(!cfg.tls.on());
        assert_eq!(cfg.public_endpoint, "http://127.0.0.1:8080");
    }

    #[test]
    fn listen_takes_host_names() {
        let d = tempfile::tempdir().unwrap();
        let common = common_in(d.path(), None);
        let cfg = resolve(
            &common,
            Some(&server_args(&[
                "--listen",
                "localhost:8443",
                "--tls",
                "builtin",
            ])),
        )
        .unwrap();
        assert!(cfg.listen.ip().is_loopback(), "{}", cfg.listen);
        assert_eq!(cfg.listen.port(), 8443);
        let (name, found) = cfg.listen_name.clone().unwrap();
        assert_eq!(name, "localhost");
        assert!(found.contains(&cfg.listen));
        assert_eq!(cfg.public_endpoint, "https://localhost:8443");
        let TlsConfig::Builtin { hosts, validity } = &cfg.tls else {
            panic!("{:?}", cfg.tls)
        };
        assert_eq!(*validity, time::Duration::days(30));
        let names: Vec<String> = hosts.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["localhost", "127.0.0.1", "::1"]);
        // Loopback by name needs no TLS.
        assert!(resolve(&common, Some(&server_args(&["--listen", "localhost:8080"]))).is_ok());
        for bad in [
            "localhost",
            "localhost:http",
            ":8080",
            "no such host!:80",
            "[localhost]:80",
        ] {
            let e = resolve(&common, Some(&server_args(&["--listen", bad]))).unwrap_err();
            assert!(format!("{e:#}").contains("HOST:PORT"), "{bad}: {e:#}");
        }
        let e = resolve(
            &common,
            Some(&server_args(&["--listen", "nothing-here.invalid:80"])),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("cannot resolve"), "{e:#}");
    }

    #[test]
    fn tls_modes_resolve_with_their_settings() {
        let d = tempfile::tempdir().unwrap();
        let common = common_in(d.path(), None);
        let cfg = resolve(
            &common,
            Some(&server_args(&[
                "--tls-cert-file",
                "/c.pem",
                "--tls-key-file",
                "/k.pem",
            ])),
        )
        .unwrap();
        assert!(
            matches!(&cfg.tls, TlsConfig::Files { poll, .. } if poll.as_secs() == 5),
            "{:?}",
            cfg.tls
        );
        assert_eq!(cfg.public_endpoint, "https://127.0.0.1:8080");
        for (args, want) in [
            (
                &["--tls", "files", "--tls-cert-file", "/c.pem"][..],
                "needs both",
            ),
            (
                &["--tls", "builtin", "--tls-key-file", "/k.pem"][..],
                "for mode \"files\"",
            ),
            (&["--tls", "on"][..], "is not off, files or builtin"),
            (
                &["--tls", "builtin", "--tls-hosts", "ok.test,bad name"][..],
                "\"bad name\"",
            ),
        ] {
            let e = resolve(&common, Some(&server_args(args))).unwrap_err();
            assert!(format!("{e:#}").contains(want), "{args:?}: {e:#}");
        }
        let file = d.path().join("c.toml");
        std::fs::write(
            &file,
            "listen = \"10.1.2.3:8443\"\npublic_endpoint = \"https://scm.example.test:443/\"\n[tls]\nmode = \"builtin\"\nvalidity_days = 7\n",
        )
        .unwrap();
        let cfg = resolve(
            &common_in(d.path(), Some(file.clone())),
            Some(&server_args(&[])),
        )
        .unwrap();
        let TlsConfig::Builtin { hosts, validity } = &cfg.tls else {
            panic!("{:?}", cfg.tls)
        };
        assert_eq!(*validity, time::Duration::days(7));
        let names: Vec<String> = hosts.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "localhost",
                "127.0.0.1",
                "::1",
                "10.1.2.3",
                "scm.example.test"
            ]
        );
        std::fs::write(&file, "[tls]\nmode = \"builtin\"\nvalidity_days = 400\n").unwrap();
        let e = resolve(
            &common_in(d.path(), Some(file.clone())),
            Some(&server_args(&[])),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("tls.validity_days"), "{e:#}");
        std::fs::write(&file, "[tls]\nmod = \"builtin\"\n").unwrap();
        let e = resolve(&common_in(d.path(), Some(file)), Some(&server_args(&[]))).unwrap_err();
        assert!(format!("{e:#}").contains("mod"), "{e:#}");
    }
}
