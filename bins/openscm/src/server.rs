//! `openscm server`: open (or bootstrap) the store, then serve the API until SIGTERM/SIGINT.
//!
//! Which store is opened, and the refusal of a data directory that looks like a mistake: see
//! [`crate::store_guard`].
//!
//! What runs, and the order it stops in on SIGTERM:
//! 1. the HTTP listener stops accepting; the supervised background tasks (job worker, cache
//!    poller) are told to stop, so no new job is claimed;
//! 2. requests in flight finish (a push request waits for its delivery attempt, which runs on);
//! 3. job attempts still running get the rest of the grace period; those that do not finish are
//!    stopped and their jobs given back to the queue at once (another server or the next start
//!    runs them);
//! 4. the group-commit writer flushes what it holds, and the database pool closes.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use scm_core::bootstrap::Created;
use scm_core::service::import::SYSTEM_TRUST_SOURCE;
use scm_core::tasks::Supervisor;
use scm_core::{Scm, SystemClock};
use scm_outbound::fsutil;
use scm_pki::{MasterKey, TrustAnchors};
use scm_store::{Backend, Meta, SqlStore, Store};
use tracing_subscriber::EnvFilter;

use crate::config::{self, CommonArgs, RuntimeConfig, ServerArgs, TlsConfig};
use crate::store_guard;

fn init_logs(json: bool) {
    let filter = EnvFilter::try_from_env("OPENSCM_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    // Colour only on a terminal (and not when NO_COLOR is set): a log file or a pipe gets plain
    // text that grep and log shippers read as written.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    // Ignore the error: a subscriber is already set only in tests.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// The file of the data directory holding the roots the bootstrap account's certificates chain
/// to.
pub const CA_ROOT_FILE: &str = "ca-root.pem";
/// The file of the data directory holding the root of the serving CA, which issues the HTTPS
/// listener's certificate (`--tls builtin`) and nothing else: what HTTPS clients trust.
pub const HTTPS_ROOT_FILE: &str = "https-root.pem";

/// Opens the store and the domain service, bootstrapping an empty store (the server's start).
pub async fn open_or_bootstrap(
    cfg: &RuntimeConfig,
) -> anyhow::Result<(Arc<Scm>, Arc<SqlStore>, Option<Created>)> {
    create_private_dir(&cfg.data_dir)?;
    create_private_database(cfg)?;
    let store = Arc::new(
        SqlStore::connect(&cfg.database_url)
            .await
            .with_context(|| format!("cannot open the database {}", cfg.database_url))?,
    );
    // A store that is set up already needs the key it was set up with: never make a new one for
    // it (that key could read nothing, and its file would be left behind).
    let master = if store.is_bootstrapped().await? {
        load_master_key(cfg, store.as_ref()).await?
    } else {
        let (master, created_key) = MasterKey::load_or_create(&cfg.master_key_file)?;
        if created_key {
            tracing::info!(path = %cfg.master_key_file.display(), "created a new master key");
        }
        master
    };
    let clock = Arc::new(SystemClock);
    let created = scm_core::bootstrap::run(store.as_ref(), clock.as_ref(), &master).await?;
    if let Some(c) = &created {
        write_credentials(cfg, c).await?;
    }
    let dyn_store: Arc<dyn Store> = store.clone();
    let mut core = cfg.core.clone();
    core.import_trust = Arc::new(system_trust());
    // Known only now (a listen port of 0 is bound by `run` first): leaves carry their CRL's URL
    // under it.
    core.public_endpoint = Some(cfg.public_endpoint.clone());
    let scm = Scm::open(dyn_store, clock, Arc::new(master), core).await?;
    // The root of the HTTPS listener's certificate, in a file of its own (its CA issues nothing
    // else), then the roots the bootstrap account's certificates chain to (its own CA's, then
    // the retired shared CA's of a store made before each account had its own). In that order:
    // whoever waits for ca-root.pem (tests, benchmarks) finds both.
    let serving = scm.serving_ca().await?;
    fsutil::write_atomic(
        &cfg.data_dir.join(HTTPS_ROOT_FILE),
        serving.root_pem().as_bytes(),
        0o644,
    )
    .await?;
    let roots = scm.bootstrap_account_roots().await?;
    fsutil::write_atomic(
        &cfg.data_dir.join(CA_ROOT_FILE),
        roots.bundle().as_bytes(),
        0o644,
    )
    .await?;
    Ok((Arc::new(scm), store, created))
}

/// The machine's trust store: the certificates of `SSL_CERT_FILE` and `SSL_CERT_DIR` when set,
/// else the system's (`/etc/ssl/certs/ca-certificates.crt` and the like, found as OpenSSL finds
/// them). ImportCertificate trusts a chain that reaches one of them (or the built-in CA's root);
/// a store that cannot be read only leaves chains untrusted, it does not stop the server.
fn system_trust() -> TrustAnchors {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!(error = %e, "cannot read all of the machine's trust store");
    }
    let mut anchors = TrustAnchors::new();
    let mut unreadable = 0_usize;
    for cert in &found.certs {
        if anchors.add_der(cert.as_ref(), SYSTEM_TRUST_SOURCE).is_err() {
            unreadable += 1;
        }
    }
    tracing::info!(
        roots = anchors.len(),
        unreadable,
        "imported chains are trusted when they reach a root of the machine's trust store or the \
         built-in CA"
    );
    anchors
}

/// Opens an existing store for the admin CLI; refuses, rather than creating one, when there is
/// none (no master key, no SQLite file, or a database never bootstrapped).
pub async fn open_existing(cfg: &RuntimeConfig) -> anyhow::Result<(Arc<Scm>, Arc<SqlStore>)> {
    let none_here = || match store_guard::mistake(cfg) {
        // Where the store probably is, when the rules of `store_guard` see a mistake.
        Some(why) => anyhow::anyhow!("no store here: {why}"),
        None => anyhow::anyhow!(
            "no store here ({}): start the server once, or pass --data-dir",
            store_guard::describe(cfg)
        ),
    };
    if cfg.database_url.backend() == Backend::Sqlite
        && let Some(path) = sqlite_path(cfg.database_url.expose())
        && !Path::new(path).exists()
    {
        return Err(none_here());
    }
    let store = Arc::new(
        SqlStore::connect(&cfg.database_url)
            .await
            .with_context(|| format!("cannot open the database {}", cfg.database_url))?,
    );
    if !store.is_bootstrapped().await? {
        store.close().await;
        return Err(none_here());
    }
    let master = load_master_key(cfg, store.as_ref()).await?;
    let dyn_store: Arc<dyn Store> = store.clone();
    let scm = Scm::open(
        dyn_store,
        Arc::new(SystemClock),
        Arc::new(master),
        cfg.core.clone(),
    )
    .await?;
    Ok((Arc::new(scm), store))
}

/// The master key of a store that is set up already: the file must exist and hold the key the
/// store was set up with. Either failure says what is wrong and what to do, and closes the store
/// first, so that nothing is left behind (an SQLite store unclosed keeps its -wal and -shm files).
async fn load_master_key(cfg: &RuntimeConfig, store: &SqlStore) -> anyhow::Result<MasterKey> {
    let loaded = read_master_key(cfg, store).await;
    if loaded.is_err() {
        store.close().await;
    }
    loaded
}

async fn read_master_key(cfg: &RuntimeConfig, store: &dyn Store) -> anyhow::Result<MasterKey> {
    let path = cfg.master_key_file.display();
    let Some(master) = MasterKey::load(&cfg.master_key_file)? else {
        anyhow::bail!(
            "the master key file {path} is missing, and the database ({}) was set up with a \
             master key: without it no private key or secret in it can be read. Restore the file \
             from your backup, or give its path with --master-key-file (OPENSCM_MASTER_KEY_FILE). \
             Nothing was changed.",
            cfg.database_url
        );
    };
    if !scm_core::bootstrap::master_key_opens(store, &master).await? {
        anyhow::bail!(
            "the master key in {path} is not the key the database ({}) was set up with (another \
             data directory's key, or a regenerated one?). Start with this store's own master key \
             file (--master-key-file, OPENSCM_MASTER_KEY_FILE). Nothing was changed.",
            cfg.database_url
        );
    }
    Ok(master)
}

/// The file of a `sqlite://PATH[?...]` URL (`None` for in-memory databases and other backends).
pub(crate) fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    Some(path).filter(|p| !p.is_empty() && !p.starts_with(":memory:"))
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
        // The umask may have narrowed the mode at creation; set it exactly.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot set the mode of {}", dir.display()))?;
    }
    Ok(())
}

/// Creates the SQLite database file with mode 0600 before SQLite does (SQLite would create it,
/// and its journals, readable by all under the usual umask).
fn create_private_database(cfg: &RuntimeConfig) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if cfg.database_url.backend() != Backend::Sqlite {
        return Ok(());
    }
    let Some(path) = sqlite_path(cfg.database_url.expose()) else {
        return Ok(());
    };
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("cannot set the mode of {path}"))?;
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot create the database file {path}")),
    }
}

async fn write_credentials(cfg: &RuntimeConfig, c: &Created) -> anyhow::Result<()> {
    let json = serde_json::json!({
        "access_key": c.access_key.as_str(),
        "secret_key": c.secret_key.expose(),
        "domain_id": c.domain_id.as_str(),
        "project_id": c.project_id.as_str(),
        "endpoint": cfg.public_endpoint,
    });
    let path = cfg.data_dir.join("credentials.json");
    let text = serde_json::to_string_pretty(&json)?;
    fsutil::write_atomic(&path, format!("{text}\n").as_bytes(), 0o600).await?;
    println!(
        "OpenSCM: bootstrapped a new store; admin credentials written to {}",
        path.display()
    );
    Ok(())
}

/// Runs the server.
pub async fn run(common: &CommonArgs, args: &ServerArgs) -> anyhow::Result<()> {
    // Register for SIGTERM/SIGINT before anything else (reading the config included): a signal
    // that arrives while we start up is then a graceful stop once serving begins, never the
    // default "terminate at once".
    let signals = Signals::register()?;
    let mut cfg = config::resolve(common, Some(args))?;
    if args.check_config {
        return check_config(&cfg);
    }
    init_logs(cfg.json_logs);
    // Before anything is created: a store-less place that looks like a mistake is refused.
    if let Some(why) = store_guard::mistake(&cfg) {
        if !cfg.init {
            return Err(store_guard::refusal(&why));
        }
        tracing::warn!(reason = %why, "--init: bootstrapping a new store where one would be refused");
        println!("OpenSCM: --init: bootstrapping a new store although {why}");
    }
    // Bind first: with port 0 the endpoint written to credentials.json must name the real port.
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    if let Some((name, found)) = &cfg.listen_name {
        let all: Vec<String> = found.iter().map(|a| a.ip().to_string()).collect();
        println!(
            "OpenSCM: {name} resolves to {}; listening on {addr}",
            all.join(", ")
        );
    }
    if !cfg.public_endpoint_explicit {
        cfg.public_endpoint = config::endpoint_of(
            addr,
            cfg.listen_name.as_ref().map(|(n, _)| n.as_str()),
            cfg.tls.on(),
        );
    }
    if let Some(warning) = cfg.metrics_exposure_warning() {
        tracing::warn!("{warning}");
        println!("OpenSCM: warning: {warning}");
    }
    let (scm, store, created) = open_or_bootstrap(&cfg).await?;
    let paths = store_guard::paths_of(&cfg);
    tracing::info!(
        data_dir = %paths.data_dir.display(),
        database = %cfg.database_url,
        master_key = %paths.master_key.display(),
        new = created.is_some(),
        "store opened"
    );
    println!("OpenSCM: store: {}", store_guard::describe(&cfg));
    if created.is_some() {
        new_store_banner(&cfg);
    }
    let credentials = cfg.data_dir.join("credentials.json");
    if created.is_none() {
        println!(
            "OpenSCM: using the existing store; admin credentials are in {} (written on first start)",
            credentials.display()
        );
        keep_endpoint_current(&credentials, &cfg.public_endpoint).await?;
    }
    // Delivery locks in a directory of OpenSCM's own, not beside the operator's files.
    fsutil::set_lock_dir(&cfg.lock_dir)
        .with_context(|| format!("delivery.lock_dir {}", cfg.lock_dir.display()))?;
    let background = Supervisor::new();
    // The serving certificate's expiry, for /metrics (0 while plain HTTP).
    let serving = scm_api::tls::ServingStatus::default();
    let tls = start_tls(&cfg, &scm, &serving, &background).await?;
    let served = tls.as_ref().and_then(|t| t.cert.current());
    if let Some(warning) = served.and_then(|leaf| endpoint_not_covered(&cfg, &leaf)) {
        tracing::warn!("{warning}");
        println!("OpenSCM: warning: {warning}");
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!(
        "OpenSCM listening on {scheme}://{addr} (database: {})",
        scm.backend().name()
    );
    println!("OpenSCM: clients' endpoint is {}", cfg.public_endpoint);
    println!(
        "OpenSCM: web console at {}/console (sign in with an access key and its secret key)",
        cfg.public_endpoint.trim_end_matches('/')
    );
    tracing::info!(
        %addr,
        tls = tls.is_some(),
        targets = cfg.core.push_targets.len(),
        notifiers = cfg.core.notifiers.len(),
        database = %cfg.database_url,
        worker = scm.job_runner().owner(),
        "listening"
    );
    scm.start_background(&background).await?;
    let connections = scm_api::ConnectionStats::default();
    let metrics = Arc::new(
        scm_api::Metrics::new(cfg.metrics.clone())
            .with_serving(serving.clone())
            .with_connections(connections.clone()),
    );
    let mut app = scm_api::router_with(scm.clone(), cfg.api, metrics);
    if tls.is_some() {
        app = scm_api::tls::with_hsts(app);
    }
    let limits = connection_limits(cfg.serve);
    for warning in &cfg.warnings {
        tracing::warn!("{warning}");
    }
    if let Some(at) = cfg.http01_listen {
        // The http-01 listener: its own small router on plain HTTP (a CA's validator asks on
        // port 80), stopped with the rest.
        let challenges = tokio::net::TcpListener::bind(at)
            .await
            .with_context(|| format!("acme.http01_listen: cannot listen on {at}"))?;
        let bound = challenges.local_addr()?;
        println!(
            "OpenSCM answers ACME http-01 challenges on http://{bound}/.well-known/acme-challenge/"
        );
        tracing::info!(address = %bound, "http-01 listener");
        let stop = background.token();
        let router = scm_api::challenge_router(scm.clone());
        tokio::spawn(async move {
            scm_api::serve(
                challenges,
                router,
                async move { stop.cancelled().await },
                limits,
            )
            .await;
        });
    }
    let stop_claiming = background.token();
    let signalled = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let mark = signalled.clone();
    let drained = scm_api::serve_with(
        listener,
        app,
        async move {
            signals.recv().await;
            if let Ok(mut at) = mark.lock() {
                *at = Some(Instant::now());
            }
            stop_claiming.cancel();
            tracing::info!(
                "shutting down: no new connections or jobs, finishing what is in flight"
            );
        },
        limits,
        tls.map(|t| t.acceptor),
        connections,
    )
    .await;
    if !drained {
        tracing::warn!("grace period over; dropping requests still running");
    }
    let started = signalled
        .lock()
        .ok()
        .and_then(|at| *at)
        .unwrap_or_else(Instant::now);
    let left = || cfg.shutdown_grace.saturating_sub(started.elapsed());
    background.stop(left()).await;
    let released = scm.job_runner().drain(left()).await;
    if released > 0 {
        tracing::warn!(
            released,
            "job attempts stopped at shutdown were given back to the queue"
        );
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// `--check-config`: the configuration was read and checked (by [`config::resolve`]); say which
/// store it names, and whether a start would refuse it, without opening or creating anything.
fn check_config(cfg: &RuntimeConfig) -> anyhow::Result<()> {
    let paths = store_guard::paths_of(cfg);
    if let Some(why) = store_guard::mistake(cfg)
        && !cfg.init
    {
        anyhow::bail!(
            "the configuration is valid, but a start would refuse its store: {why} (--init makes \
             a new store there on purpose)"
        );
    }
    println!("OpenSCM: the configuration is valid");
    println!("OpenSCM: store: {}", store_guard::describe(cfg));
    println!(
        "OpenSCM: {}",
        if paths.holds_store() {
            "a store is there; a start opens it"
        } else {
            "no store is there yet; the first start bootstraps one"
        }
    );
    println!(
        "OpenSCM: would listen on {} ({}); clients' endpoint {}",
        cfg.listen,
        if cfg.tls.on() { "HTTPS" } else { "plain HTTP" },
        cfg.public_endpoint
    );
    for warning in &cfg.warnings {
        println!("OpenSCM: warning: {warning}");
    }
    Ok(())
}

/// The banner of a bootstrap, on stdout and as a warning in the log: a new store is a new CA and
/// new credentials, which nobody wants by accident.
fn new_store_banner(cfg: &RuntimeConfig) {
    let data_dir = store_guard::absolute(&cfg.data_dir);
    tracing::warn!(
        data_dir = %data_dir.display(),
        database = %cfg.database_url,
        "bootstrapped a NEW store: a new CA and new admin credentials; if an existing store was \
         meant, stop this server and start it with --data-dir or --config naming that store"
    );
    let rule = "OpenSCM: ======================================================================";
    println!("{rule}");
    println!("OpenSCM: NEW STORE bootstrapped in {}", data_dir.display());
    println!("OpenSCM:   a new CA, a new admin account and new credentials: nothing of any other");
    println!("OpenSCM:   store is here. If you meant to open an existing store, stop this server");
    println!("OpenSCM:   and start it with --data-dir (or --config) naming that store.");
    println!("{rule}");
}

/// Loads (files) or issues (built-in CA) the serving certificate and starts the task that keeps
/// it current; `None` when TLS is off. Says on stdout what is served.
async fn start_tls(
    cfg: &RuntimeConfig,
    scm: &Arc<Scm>,
    serving: &scm_api::tls::ServingStatus,
    background: &Supervisor,
) -> anyhow::Result<Option<scm_api::tls::Tls>> {
    use scm_api::tls::{BuiltinSource, FileSource, Source};
    let source = match &cfg.tls {
        TlsConfig::Off => return Ok(None),
        TlsConfig::Files {
            cert_file,
            key_file,
            poll,
        } => Source::Files {
            files: FileSource::new(cert_file.clone(), key_file.clone()),
            poll: *poll,
        },
        TlsConfig::Builtin { hosts, validity } => Source::Builtin(BuiltinSource::new(
            scm.serving_ca().await?,
            hosts.clone(),
            *validity,
            Arc::new(SystemClock),
        )),
    };
    let tls = scm_api::tls::start(source, serving.clone(), background)
        .map_err(|e| anyhow::anyhow!("tls: {e}"))?;
    let served = tls.cert.current();
    let until = served
        .as_ref()
        .and_then(|c| {
            c.not_after
                .format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    match &cfg.tls {
        TlsConfig::Files {
            cert_file, poll, ..
        } => println!(
            "OpenSCM: TLS from {} (valid until {until}; looked at again every {} s)",
            cert_file.display(),
            poll.as_secs()
        ),
        TlsConfig::Builtin { hosts, .. } => {
            let names: Vec<String> = hosts.iter().map(ToString::to_string).collect();
            println!(
                "OpenSCM: TLS certificate from the built-in CA of the HTTPS listener (it issues nothing else) for {} (valid until {until}, renewed at 2/3 of its life; its key is kept in memory only); clients trust {}",
                names.join(", "),
                cfg.data_dir.join(HTTPS_ROOT_FILE).display()
            );
        }
        TlsConfig::Off => {}
    }
    Ok(Some(tls))
}

/// The warning to give when the clients' endpoint (written to credentials.json) names a host the
/// served certificate `leaf` is not for: clients configured from it would fail to verify the
/// server, with nothing said here. `None` when it is covered, or when the leaf's names cannot be
/// read.
fn endpoint_not_covered(cfg: &RuntimeConfig, leaf: &scm_api::tls::Loaded) -> Option<String> {
    let host = config::endpoint_host(&cfg.public_endpoint)?;
    let hosts = scm_pki::subject_alt_hosts(leaf.leaf_der()?).ok()?;
    let what = match &cfg.tls {
        TlsConfig::Files { cert_file, .. } => {
            format!("the certificate of {}", cert_file.display())
        }
        TlsConfig::Builtin { .. } => {
            "the built-in serving certificate ([tls] hosts, --tls-hosts)".to_owned()
        }
        TlsConfig::Off => return None,
    };
    if covers(&hosts, host) {
        return None;
    }
    let names: Vec<String> = hosts.iter().map(ToString::to_string).collect();
    Some(format!(
        "the clients' endpoint {} (written to credentials.json) names {host}, which {what} is \
         not for (it names {}): clients configured from it will fail to verify the server. Set \
         public_endpoint (--public-endpoint) to a name the certificate covers, or serve a \
         certificate that names {host}",
        cfg.public_endpoint,
        if names.is_empty() {
            "no host".to_owned()
        } else {
            names.join(", ")
        }
    ))
}

/// Whether a certificate for `hosts` is valid for `host` (an IP address, or a name matched
/// case-insensitively, a `*.` name covering one label), as a TLS client checks it.
fn covers(hosts: &[scm_pki::ServingHost], host: &str) -> bool {
    use scm_pki::ServingHost;
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return hosts.contains(&ServingHost::Ip(ip));
    }
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    hosts.iter().any(|h| match h {
        ServingHost::Name(name) => {
            *name == host
                || name.strip_prefix("*.").is_some_and(|base| {
                    host.split_once('.')
                        .is_some_and(|(label, rest)| !label.is_empty() && rest == base)
                })
        }
        ServingHost::Ip(_) => false,
    })
}

/// Rewrites the `endpoint` of credentials.json when it is not `endpoint` (the server moved to
/// another address or to HTTPS since the file was written), keeping every other field as it is
/// and the mode 0600. A missing file (removed by the operator, or another server's data
/// directory) is left missing.
async fn keep_endpoint_current(path: &Path, endpoint: &str) -> anyhow::Result<()> {
    let text = match tokio::fs::read(path).await {
        Ok(text) => zeroize::Zeroizing::new(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut json: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a JSON object", path.display()))?;
    let old = json
        .get("endpoint")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    if old.as_deref() == Some(endpoint) {
        return Ok(());
    }
    json.insert(
        "endpoint".into(),
        serde_json::Value::String(endpoint.into()),
    );
    let out = zeroize::Zeroizing::new(format!("{}\n", serde_json::to_string_pretty(&json)?));
    // The secret key went through a `Value`: wipe what can be wiped.
    for v in json.values_mut() {
        if let serde_json::Value::String(s) = v {
            zeroize::Zeroize::zeroize(s);
        }
    }
    fsutil::write_atomic(path, out.as_bytes(), 0o600).await?;
    println!(
        "OpenSCM: {} now names the endpoint {endpoint} (it named {})",
        path.display(),
        old.as_deref().unwrap_or("none")
    );
    Ok(())
}

/// The connection cap, within the process's open-file limit: the soft limit is raised to the hard
/// one first, and the cap kept 256 below it (for the database, the listener and files), so the
/// server never runs out of descriptors and refuses extra connections at once instead.
fn connection_limits(mut limits: scm_api::ServeLimits) -> scm_api::ServeLimits {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(open_files) => {
            let room = usize::try_from(open_files.saturating_sub(256)).unwrap_or(usize::MAX);
            if limits.max_connections > room {
                tracing::warn!(
                    configured = limits.max_connections,
                    open_files,
                    "max_connections lowered to fit the open-file limit"
                );
                limits.max_connections = room.max(16);
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    limits
}

/// SIGTERM and SIGINT, registered up front.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn register() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
        })
    }

    async fn recv(mut self) {
        tokio::select! {
            _ = self.term.recv() => {},
            _ = self.int.recv() => {},
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_covers_its_names_addresses_and_one_label_under_a_wildcard() {
        use scm_pki::ServingHost;
        let hosts = [
            ServingHost::Name("scm.example.test".into()),
            ServingHost::Name("*.apps.example.test".into()),
            ServingHost::Ip("127.0.0.1".parse().unwrap()),
            ServingHost::Ip("::1".parse().unwrap()),
        ];
        for yes in [
            "scm.example.test",
            "SCM.Example.Test.",
            "a.apps.example.test",
            "127.0.0.1",
            "::1",
        ] {
            assert!(covers(&hosts, yes), "{yes}");
        }
        for no in [
            "example.test",
            "apps.example.test",
            "a.b.apps.example.test",
            "127.0.0.2",
            "localhost",
        ] {
            assert!(!covers(&hosts, no), "{no}");
        }
    }
}
