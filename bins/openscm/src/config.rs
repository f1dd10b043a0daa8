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
    /// What each account may buy.
    #[serde(default)]
    pub quotas: QuotasFile,
    /// Who may read `/metrics`.
    #[serde(default)]
    pub metrics: MetricsFile,
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

/// Settings shared by `server` and `admin` (flags with env fallbacks).
#[derive(Debug, Clone, Args)]
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

/// Settings of `server` only.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "OPENSCM_LISTEN")]
    pub listen: Option<String>,
    /// Endpoint clients use, written to credentials.json [default: http://LISTEN].
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

/// Everything resolved.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Listen address.
    pub listen: SocketAddr,
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
}

/// `http://host:port` for a listen address (loopback when it listens on all addresses).
pub fn endpoint_of(listen: SocketAddr) -> String {
    let host = match listen.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("http://{host}:{}", listen.port())
}

/// Reads the config file, if any.
pub fn read_file(path: Option<&Path>) -> anyhow::Result<FileConfig> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("config file {}: {}", path.display(), e.message()))
}

fn secs(v: u64) -> time::Duration {
    time::Duration::seconds(i64::try_from(v).unwrap_or(i64::MAX))
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
    let listen: SocketAddr = listen_raw.parse().with_context(|| {
        format!("listen: {listen_raw:?} is not an address such as 127.0.0.1:8080")
    })?;
    let database_url = database_url(common, &file, &data_dir)?;
    let master_key_file = common
        .master_key_file
        .clone()
        .or(file.master_key_file.clone())
        .unwrap_or_else(|| data_dir.join("master.key"));
    let explicit_endpoint = server
        .and_then(|s| s.public_endpoint.clone())
        .or(file.public_endpoint.clone());
    let public_endpoint = explicit_endpoint
        .clone()
        .unwrap_or_else(|| endpoint_of(listen));
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
    // A setting from the flag/environment, else the file, else its default, checked in range.
    let pick = |name: &str,
                flag: Option<u64>,
                file: Option<u64>,
                default: u64,
                range: std::ops::RangeInclusive<u64>| {
        ranged(name, flag.or(file).unwrap_or(default), range)
    };
    let push_configs = match server.and_then(|s| s.push_targets.clone()) {
        Some(inline) => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Wrapper {
                push_targets: Vec<TargetConfig>,
            }
            let w: Wrapper = toml::from_str(&format!("push_targets = {inline}"))
                .map_err(|e| anyhow::anyhow!("OPENSCM_PUSH_TARGETS: {}", e.message()))?;
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
    let core = CoreConfig {
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
        leaf_validity: secs(
            pick(
                "leaf_validity_days",
                server.and_then(|s| s.leaf_validity_days),
                file.leaf_validity_days,
                365,
                1..=3650,
            )? * 86_400,
        ),
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
        },
        keygen_per_account: u32::try_from(pick(
            "limits.keygen_per_account",
            None,
            limits.keygen_per_account,
            1,
            1..=64,
        )?)?,
        ..CoreConfig::default()
    };
    let shutdown_grace = std::time::Duration::from_secs(pick(
        "shutdown_grace_seconds",
        server.and_then(|s| s.shutdown_grace_seconds),
        file.shutdown_grace_seconds,
        30,
        1..=600,
    )?);
    let serve = scm_api::ServeLimits {
        header_read_timeout: std::time::Duration::from_secs(pick(
            "limits.header_timeout_seconds",
            None,
            limits.header_timeout_seconds,
            30,
            1..=300,
        )?),
        grace: shutdown_grace,
        max_connections: usize::try_from(pick(
            "limits.max_connections",
            None,
            limits.max_connections,
            1024,
            16..=1_000_000,
        )?)?,
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
    };
    Ok(RuntimeConfig {
        listen,
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
}
