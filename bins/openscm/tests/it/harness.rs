//! An in-process OpenSCM server on a temporary SQLite store, listening on a free loopback port,
//! and `scm-client` clients for its accounts.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use scm_client::{Client, Credentials};
use scm_core::deploy::PushTarget;
use scm_core::tasks::Supervisor;
use scm_core::{Clock, CoreConfig, Scm, SystemClock};
use scm_outbound::deploy::{TargetConfig, nginx::NginxConfig};
use scm_pki::MasterKey;
use scm_proto::DomainId;
use scm_store::{DatabaseUrl, SqlStore, Store};

/// A running server.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The bootstrap admin, signing with AK/SK.
    pub admin: Client,
    /// The admin account.
    pub domain_id: String,
    /// The admin's project.
    pub project_id: String,
    /// The domain service behind the router.
    pub scm: Arc<Scm>,
    /// Where push targets write.
    pub out: PathBuf,
    /// The server's database (for a second store on it: what another process sees and does).
    pub db: DatabaseUrl,
    background: Supervisor,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<bool>>,
    _dir: tempfile::TempDir,
}

/// An nginx-kind push target for `account` writing into `dir/<name>.{crt,key}`.
pub fn file_target(
    name: &str,
    account: &DomainId,
    service: &str,
    region: &str,
    dir: &std::path::Path,
    reload: &[&str],
) -> PushTarget {
    scm_outbound::deploy::push_target(
        &TargetConfig::Nginx(NginxConfig {
            name: name.into(),
            account: account.to_string(),
            service: service.into(),
            region: Some(region.into()),
            resource_id: None,
            verify: None,
            redeliver_on_drift: false,
            cert_path: dir.join(format!("{name}.crt")),
            key_path: dir.join(format!("{name}.key")),
            test_command: None,
            reload_command: reload.iter().map(|s| s.to_string()).collect(),
            timeout_seconds: Some(5),
        }),
        &scm_outbound::http::OutboundHttp::new(Default::default()).unwrap(),
    )
    .unwrap()
}

impl TestServer {
    /// A server with no push target.
    pub async fn start() -> Self {
        Self::start_with(|_, _| Vec::new()).await
    }

    /// A server with one push target of the admin account: `web`, service `ELB` in
    /// `cn-north-4`, writing into the output dir, reloaded by `true`.
    pub async fn with_web_target() -> Self {
        Self::start_with(|account, out| {
            vec![file_target(
                "web",
                account,
                "ELB",
                "cn-north-4",
                out,
                &["true"],
            )]
        })
        .await
    }

    /// A server whose push targets `targets(admin account, output dir)` returns.
    pub async fn start_with(
        targets: impl FnOnce(&DomainId, &std::path::Path) -> Vec<PushTarget>,
    ) -> Self {
        Self::start_custom(Arc::new(SystemClock), |account, out, config| {
            config.push_targets = targets(account, out);
        })
        .await
    }

    /// A server on `clock` (bootstrap included) whose settings `configure(admin account, output
    /// dir, settings)` may change from the defaults (push targets, token lifetime, …).
    pub async fn start_custom(
        clock: Arc<dyn Clock>,
        configure: impl FnOnce(&DomainId, &std::path::Path, &mut CoreConfig),
    ) -> Self {
        Self::start_on(clock, |store| store, configure).await
    }

    /// A server whose store is `wrap(the SQLite store)` once bootstrapped (e.g. a
    /// [`crate::remote_store::RemoteStore`]).
    pub async fn start_on(
        clock: Arc<dyn Clock>,
        wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
        configure: impl FnOnce(&DomainId, &std::path::Path, &mut CoreConfig),
    ) -> Self {
        // Tests make requests in quick succession: no rate limit unless a test asks for one.
        let limits = scm_api::ApiLimits {
            rate: None,
            ..scm_api::ApiLimits::default()
        };
        Self::start_full(
            clock,
            wrap,
            configure,
            limits,
            scm_api::ServeLimits::default(),
        )
        .await
    }

    /// A server with every knob: the store, the domain's config, request and connection limits.
    pub async fn start_full(
        clock: Arc<dyn Clock>,
        wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
        configure: impl FnOnce(&DomainId, &std::path::Path, &mut CoreConfig),
        api: scm_api::ApiLimits,
        serve: scm_api::ServeLimits,
    ) -> Self {
        Self::start_full_on(None, clock, wrap, configure, api, serve).await
    }

    /// [`Self::with_web_target`] on the (empty) database at `url` instead of a SQLite file.
    pub async fn with_web_target_on(url: &DatabaseUrl) -> Self {
        let limits = scm_api::ApiLimits {
            rate: None,
            ..scm_api::ApiLimits::default()
        };
        Self::start_full_on(
            Some(url),
            Arc::new(SystemClock),
            |store| store,
            |account, out, config| {
                config.push_targets = vec![file_target(
                    "web",
                    account,
                    "ELB",
                    "cn-north-4",
                    out,
                    &["true"],
                )];
            },
            limits,
            scm_api::ServeLimits::default(),
        )
        .await
    }

    /// [`Self::start_full`] on the database at `url`, or on a SQLite file of its own (`None`).
    pub async fn start_full_on(
        url: Option<&DatabaseUrl>,
        clock: Arc<dyn Clock>,
        wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
        configure: impl FnOnce(&DomainId, &std::path::Path, &mut CoreConfig),
        api: scm_api::ApiLimits,
        serve: scm_api::ServeLimits,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        let sqlite = DatabaseUrl::sqlite_file(&dir.path().join("t.db"));
        let db = url.unwrap_or(&sqlite).clone();
        let store = Arc::new(SqlStore::connect(&db).await.unwrap());
        let master = MasterKey::generate().unwrap();
        let created = scm_core::bootstrap::run(store.as_ref(), clock.as_ref(), &master)
            .await
            .unwrap()
            .unwrap();
        // Bound first: leaves carry their CRL's URL under the server's address.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mut config = CoreConfig {
            public_endpoint: Some(url.clone()),
            ..CoreConfig::default()
        };
        configure(&created.domain_id, &out, &mut config);
        let dyn_store: Arc<dyn Store> = wrap(store);
        let scm = Arc::new(
            Scm::open(dyn_store, clock, Arc::new(master), config)
                .await
                .unwrap(),
        );
        let background = Supervisor::new();
        scm.start_background(&background).await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(scm_api::serve(
            listener,
            scm_api::router(scm.clone(), api),
            async move {
                let _ = stopped.await;
            },
            serve,
        ));
        let admin = Client::new(
            &url,
            Credentials::new(
                created.access_key.as_str(),
                created.secret_key.expose().to_owned(),
            )
            .with_domain_id(created.domain_id.as_str())
            .with_project_id(created.project_id.as_str()),
        )
        .unwrap();
        Self {
            url,
            admin,
            domain_id: created.domain_id.to_string(),
            project_id: created.project_id.to_string(),
            scm,
            out,
            db,
            background,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        }
    }

    /// The admin as the domain sees it (for reading state no route shows).
    pub fn principal(&self) -> scm_core::Principal {
        use scm_proto::{AccessKeyId, DomainId, ProjectId};
        scm_core::Principal {
            account: DomainId::try_from(self.domain_id.as_str()).unwrap(),
            project: ProjectId::try_from(self.project_id.as_str()).unwrap(),
            access_key: AccessKeyId::try_from(self.admin.credentials().access_key.as_str())
                .unwrap(),
            method: scm_core::AuthMethod::Signature,
        }
    }

    /// A new account with a credential, and a client signing with it.
    pub async fn other_account(&self, name: &str) -> Client {
        let (account, project) = self.scm.create_account(name).await.unwrap();
        let cred = self
            .scm
            .create_credential(&account.domain_id, None, "it")
            .await
            .unwrap();
        Client::new(
            &self.url,
            Credentials::new(
                cred.access_key.as_str(),
                cred.secret_key.expose().to_owned(),
            )
            .with_domain_id(account.domain_id.as_str())
            .with_project_id(project.project_id.as_str()),
        )
        .unwrap()
    }

    /// The roots of the admin account's own CA.
    pub async fn admin_roots(&self) -> scm_core::service::cas::AccountRoots {
        let account = DomainId::try_from(self.domain_id.clone()).unwrap();
        self.scm.account_roots(&account).await.unwrap()
    }

    /// The file name of the admin account's CA's CRL (`<ca id>.crl`), once its first CRL is
    /// signed (the job queued at start), waiting for it up to 10 s.
    pub async fn crl_file(&self) -> String {
        let file = format!("{}.crl", self.admin_roots().await.ca_id);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.scm.crl(&file).await.unwrap().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "no CRL signed 10 s after the start"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        file
    }

    /// Stops serving and the background tasks.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            assert!(task.await.unwrap(), "drained");
        }
        self.background
            .stop(std::time::Duration::from_secs(5))
            .await;
    }
}

/// Polls `probe` every 20 ms until it answers `Ok`, and returns that; after `limit`, fails saying
/// what was awaited and what the last probe saw (its `Err`).
pub(crate) async fn eventually<T, F, Fut>(what: &str, limit: std::time::Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = std::time::Instant::now() + limit;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(seen) if std::time::Instant::now() >= deadline => {
                panic!("timed out after {limit:?} waiting for {what}; saw: {seen}")
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
}
