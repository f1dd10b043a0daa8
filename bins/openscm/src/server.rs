//! `openscm server`: open (or bootstrap) the store, then serve the API until SIGTERM/SIGINT.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use scm_core::bootstrap::Created;
use scm_core::{Scm, SystemClock};
use scm_pki::MasterKey;
use scm_store::{SqlStore, Store};
use tracing_subscriber::EnvFilter;

use crate::config::{self, CommonArgs, RuntimeConfig, ServerArgs};

fn init_logs(json: bool) {
    let filter = EnvFilter::try_from_env("OPENSCM_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Ignore the error: a subscriber is already set only in tests.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Opens the store and the domain service, bootstrapping on first use. Shared with `admin`.
pub async fn open(cfg: &RuntimeConfig) -> anyhow::Result<(Arc<Scm>, Option<Created>)> {
    create_private_dir(&cfg.data_dir)?;
    let (master, created_key) = MasterKey::load_or_create(&cfg.master_key_file)?;
    if created_key {
        tracing::info!(path = %cfg.master_key_file.display(), "created a new master key");
    }
    let store: Arc<dyn Store> = Arc::new(
        SqlStore::connect(&cfg.database_url)
            .await
            .context("cannot open the database")?,
    );
    let clock = Arc::new(SystemClock);
    let created = scm_core::bootstrap::run(store.as_ref(), clock.as_ref(), &master)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(c) = &created {
        write_credentials(cfg, c).await?;
    }
    let scm = Scm::open(store, clock, Arc::new(master), cfg.core.clone())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    write_file(
        &cfg.data_dir.join("ca-root.pem"),
        scm.ca_root_pem().as_bytes(),
        0o644,
    )
    .await?;
    Ok((Arc::new(scm), created))
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    }
    Ok(())
}

/// Writes a file atomically with `mode` (temporary file, fsync, rename).
async fn write_file(path: &Path, content: &[u8], mode: u32) -> anyhow::Result<()> {
    scm_core::files::write_atomic(path, content, mode)
        .await
        .map_err(|e| anyhow::anyhow!(e))
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
    write_file(&path, format!("{text}\n").as_bytes(), 0o600).await?;
    println!(
        "OpenSCM: bootstrapped a new store; admin credentials written to {}",
        path.display()
    );
    Ok(())
}

/// Runs the server.
pub async fn run(common: &CommonArgs, args: &ServerArgs) -> anyhow::Result<()> {
    let mut cfg = config::resolve(common, Some(args))?;
    init_logs(cfg.json_logs);
    // Register for SIGTERM/SIGINT before anything else: a signal that arrives while we start up is
    // then a graceful stop once serving begins, never the default "terminate at once".
    let signals = Signals::register()?;
    // Bind first: with port 0 the endpoint written to credentials.json must name the real port.
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    if !cfg.public_endpoint_explicit {
        cfg.public_endpoint = config::endpoint_of(addr);
    }
    let (scm, created) = open(&cfg).await?;
    if created.is_none() {
        println!(
            "OpenSCM: using the existing store; admin credentials are in {} (written on first start)",
            cfg.data_dir.join("credentials.json").display()
        );
    }
    println!(
        "OpenSCM listening on http://{addr} (database: {})",
        scm.store().backend_name()
    );
    tracing::info!(%addr, targets = cfg.core.push_targets.len(), "listening");
    let app = scm_api::router(scm);
    let limits = scm_api::ServeLimits {
        grace: cfg.shutdown_grace,
        ..scm_api::ServeLimits::default()
    };
    let drained = scm_api::serve(
        listener,
        app,
        async move {
            signals.recv().await;
            tracing::info!("shutting down: no new connections, finishing requests in flight");
        },
        limits,
    )
    .await;
    if !drained {
        tracing::warn!("grace period over; dropping requests still running");
    }
    tracing::info!("stopped");
    Ok(())
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
