//! Deployment benchmark: certificates delivered to real targets through the domain's delivery
//! path (`Scm::push_to_target` → one `deliver` job per target, its first attempt run at once as
//! the server runs it → the kind's `Deployer` → a TLS handshake with the target's `verify`
//! address through `scm_outbound::tls_probe::RustlsProber`, recorded in one transaction), with a
//! real store and certificates issued by the account's own CA (names under `.test`, issued at
//! once). Three figures, each beside a peer measured in the same run (only ratios within one run
//! are comparable on a shared machine):
//!
//! 1. Verified pushes per second, one after the other (each push a different certificate, so
//!    every one is a real delivery), to a `files` target (the `combined` PEM, served by a TLS
//!    server of this process that reads the file at each handshake), a `webhook` target (a
//!    receiver of this process on loopback that checks the signature, installs the delivered key
//!    and chain in a TLS server of its own and answers 200) and an `haproxy` target (a real
//!    HAProxy swapping the certificate through its runtime API, verified on its TLS frontend).
//!    Beside each: the same pushes to a twin target without `verify` (the cost of the check) and
//!    the twin's bare `Deployer::deliver` calls with no job, store or check (the ceiling); the
//!    three are interleaved, certificate by certificate, so that they see the same machine load.
//! 2. `--swaps` different certificates pushed one after the other to the HAProxy target
//!    (verified) while `wrk -t1 -c2 -H "Connection: close"` makes a new TLS handshake per request
//!    to that frontend: total time, and wrk's failed requests (socket errors and non-2xx
//!    answers), beside wrk's rate over 2 s before the swaps.
//! 3. Time from a new version stored to it served, over `--rounds` renewals, for nginx (files,
//!    then `nginx -s reload`) and HAProxy: the renewal runs as a `renew` job in the job worker
//!    (as the server runs it), whose transaction stores the version and queues the delivery;
//!    the worker then runs the delivery. Measured from the renew job's `finished_ms` (the time
//!    written by that transaction) to the deployment's `verified_ms` (the handshake that saw the
//!    new version served), both on the system clock.
//!
//! `cargo run --release -p openscm-bench --bin deploy -- [--pushes N] [--swaps N] [--rounds N]
//!  [--database-url postgres://USER@HOST/DB (a throwaway database is made there and dropped)]`
//!
//! Needs `haproxy`, `nginx` and `wrk` (Debian packages of the same names); runs as root (nginx
//! starts its worker as another user) or as a user that may bind loopback ports.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use openscm_bench::{BenchDb, Haproxy, Nginx, Sql, Wrk, arg, percentile, self_signed};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use scm_core::delivery::DeliverySettings;
use scm_core::deploy::probe::{Endpoint, TlsProber};
use scm_core::deploy::{DeliveryContext, Material, PushTarget};
use scm_core::jobs::JobHandler;
use scm_core::purchase::ApiVersion;
use scm_core::tasks::Supervisor;
use scm_core::{CoreConfig, Principal, Scm, SystemClock};
use scm_outbound::deploy::TargetConfig;
use scm_outbound::http::{EgressPolicy, OutboundHttp};
use scm_pki::MasterKey;
use scm_proto::CertificateId;
use scm_proto::v3::{ApplicationBody, PurchaseBody};
use scm_store::{DatabaseUrl, SqlStore, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Same allocator as the server binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Certificates per order: the v3 API's most.
const PER_ORDER: usize = 100;

/// The webhook receiver's signing secret.
const SECRET: &str = "deploy-bench-signing-secret";

fn purchase_body() -> PurchaseBody {
    serde_json::from_value(serde_json::json!({
        "cert_brand": "GLOBALSIGN", "cert_type": "DV_SSL_CERT", "domain_type": "SINGLE_DOMAIN",
        "effective_time": 1, "domain_numbers": 1, "order_number": PER_ORDER,
        "agree_privacy_protection": true
    }))
    .unwrap()
}

/// An application for a name under `.test` (pre-authorized by the default policy: issued at
/// once), with an EC P-256 key made by the server (each renewal makes a new one).
fn application(i: usize) -> ApplicationBody {
    serde_json::from_value(serde_json::json!({
        "domain": format!("host-{i}.deploy.test"), "applicant_name": "Bench Mark",
        "applicant_phone": "13212345678", "applicant_email": "bench@example.com",
        "agree_privacy_protection": true, "domain_method": "DNS", "key_algorithm": "EC_P256"
    }))
    .unwrap()
}

// ------------------------------------------------------------------ TLS servers of this process

/// A certificate chain and its key from PEM, as a TLS server holds them (`None`: unreadable, or
/// a key that does not match).
fn certified(
    chain_pem: &[u8],
    key_pem: &[u8],
    provider: &CryptoProvider,
) -> Option<Arc<CertifiedKey>> {
    let chain = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    if chain.is_empty() {
        return None;
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).ok()?;
    CertifiedKey::from_der(chain, key, provider)
        .ok()
        .map(Arc::new)
}

/// Serves what a `combined` file holds (key and full chain in one PEM, replaced atomically by the
/// files target), read at each handshake: a server that needs no reload.
#[derive(Debug)]
struct FromFile {
    path: PathBuf,
    provider: Arc<CryptoProvider>,
}

impl ResolvesServerCert for FromFile {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let pem = std::fs::read(&self.path).ok()?;
        certified(&pem, &pem, &self.provider)
    }
}

/// Serves what the webhook receiver installed last.
#[derive(Debug, Default)]
struct Installed(RwLock<Option<Arc<CertifiedKey>>>);

impl ResolvesServerCert for Installed {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.read().ok()?.clone()
    }
}

/// A TLS server on a free loopback port serving what `resolver` gives; each connection ends after
/// the handshake. Returns its `host:port`.
async fn serve_tls(resolver: Arc<dyn ResolvesServerCert>, provider: Arc<CryptoProvider>) -> String {
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    addr
}

// ------------------------------------------------------------------ the webhook receiver

/// A webhook receiver on a free loopback port (HTTP/1.1, keep-alive): a POST to a path of
/// `routes` with a good `X-OpenSCM-Signature` has its `fullchain` and `private_key` installed in
/// that route's TLS server, and is answered 200 (a bad signature 401, a body it cannot install
/// 422, another path 404). Returns its base URL.
async fn webhook_receiver(
    routes: Vec<(&'static str, Arc<Installed>)>,
    provider: Arc<CryptoProvider>,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let key = Arc::new(hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes()));
    let routes = Arc::new(routes);
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let (key, routes, provider) = (key.clone(), routes.clone(), provider.clone());
            tokio::spawn(async move {
                let _ = receive(conn, &key, &routes, &provider).await;
            });
        }
    });
    url
}

/// The value of header `name` (lower case) in a request head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

/// Answers the requests of one connection until the client closes it.
async fn receive(
    mut conn: TcpStream,
    key: &hmac::Key,
    routes: &[(&'static str, Arc<Installed>)],
    provider: &CryptoProvider,
) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(16 << 10);
    let mut chunk = vec![0u8; 16 << 10];
    loop {
        let end = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            let n = conn.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let len: usize = header(&head, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < end + 4 + len {
            let n = conn.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body: Vec<u8> = buf.drain(..end + 4 + len).skip(end + 4).collect();
        let path = head.split_whitespace().nth(1).unwrap_or_default();
        let status = match routes.iter().find(|(p, _)| *p == path) {
            None => "404 Not Found",
            Some((_, installed)) => {
                let tag = hmac::sign(key, &body);
                let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
                let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let material = match (json["fullchain"].as_str(), json["private_key"].as_str()) {
                    (Some(chain), Some(key)) => {
                        certified(chain.as_bytes(), key.as_bytes(), provider)
                    }
                    _ => None,
                };
                if header(&head, "x-openscm-signature") != Some(&format!("sha256={hex}")) {
                    "401 Unauthorized"
                } else if let Some(m) = material {
                    *installed.0.write().unwrap() = Some(m);
                    "200 OK"
                } else {
                    "422 Unprocessable Entity"
                }
            }
        };
        conn.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes())
            .await?;
    }
}

// ------------------------------------------------------------------ targets and measurements

/// A push target built from its config as the server builds it (`push_targets` entries):
/// `kind`'s own keys in `keys`, checked by `verify` when given.
fn target(
    http: &OutboundHttp,
    account: &str,
    name: &str,
    kind: &str,
    keys: serde_json::Value,
    verify: Option<&str>,
) -> PushTarget {
    let mut c =
        serde_json::json!({"kind": kind, "name": name, "account": account, "service": "CDN"});
    let object = c.as_object_mut().unwrap();
    object.extend(keys.as_object().unwrap().clone());
    if let Some(address) = verify {
        object.insert("verify".into(), serde_json::json!({ "address": address }));
    }
    let config: TargetConfig = serde_json::from_value(c).unwrap();
    scm_outbound::deploy::push_target(&config, http).unwrap()
}

/// Applies for every one of `ids` (the i-th for `host-{first + i}.deploy.test`) with `tasks`
/// concurrent applications.
async fn issue_all(scm: &Arc<Scm>, admin: &Principal, ids: &[CertificateId], tasks: usize) {
    let ids = Arc::new(ids.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let mut running = Vec::new();
    for _ in 0..tasks {
        let (scm, admin, ids, next) = (scm.clone(), admin.clone(), ids.clone(), next.clone());
        running.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(id) = ids.get(i) else { break };
                scm.apply(&admin, id, Some(&application(i)), ApiVersion::V3)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in running {
        t.await.unwrap();
    }
}

/// How a series of pushes (or deliveries) went.
#[derive(Default)]
struct Run {
    count: usize,
    secs: f64,
    failed: usize,
    first_error: Option<String>,
}

impl Run {
    /// Adds one push that began at `started` and ended now with `result`.
    fn add(&mut self, started: Instant, result: Result<(), String>) {
        self.secs += started.elapsed().as_secs_f64();
        self.count += 1;
        if let Err(e) = result {
            self.failed += 1;
            self.first_error.get_or_insert(e);
        }
    }

    fn rate(&self) -> f64 {
        self.count as f64 / self.secs
    }

    fn ms_each(&self) -> f64 {
        1000.0 * self.secs / self.count as f64
    }

    fn failures(&self) -> String {
        match &self.first_error {
            None => String::new(),
            Some(e) => format!("   {} FAILED, first: {e}", self.failed),
        }
    }
}

/// Pushes `id` to `target`, answered by its first attempt, timed into `run`.
async fn push(scm: &Arc<Scm>, admin: &Principal, id: &CertificateId, target: &str, run: &mut Run) {
    let started = Instant::now();
    let result = scm.push_to_target(admin, id, target).await;
    run.add(started, result.map_err(|e| e.to_string()));
}

/// The material of each of `ids` (version 1), as a delivery to `target` reads it.
async fn materials(
    scm: &Arc<Scm>,
    store: &Arc<dyn Store>,
    admin: &Principal,
    ids: &[CertificateId],
    target: &str,
) -> Vec<Material> {
    let mut out = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let cert = store.certificate(id).await.unwrap().unwrap();
        let key = scm.export(admin, id).await.unwrap().private_key.unwrap();
        let context = DeliveryContext {
            target: target.to_owned(),
            job_id: i as i64,
            attempt: 1,
        };
        let issued = cert.issued.as_ref().unwrap();
        out.push(scm_core::deploy::material(id, 1, issued, key, context).unwrap());
    }
    out
}

/// The system clock, Unix ms (what `SystemClock` stamps records with).
fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// An observer of its own, independent of the deliveries: a TLS handshake with a server every
/// 5 ms, noting when (system clock, ms, at the end of the handshake) each new leaf was first seen.
struct Observer {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<(i64, String)>>,
}

impl Observer {
    fn start(address: &str, server_name: &str) -> Self {
        let prober = scm_outbound::tls_probe::RustlsProber::new(Duration::from_secs(2));
        let endpoint = Endpoint {
            address: address.to_owned(),
            server_name: server_name.to_owned(),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let stop = stop.clone();
            async move {
                let mut seen: Vec<(i64, String)> = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    // No trust anchor: only the leaf's fingerprint matters here.
                    if let Ok(s) = prober.probe(&endpoint, "").await
                        && seen.last().map(|(_, f)| f) != Some(&s.sha256_fingerprint)
                    {
                        seen.push((now_ms(), s.sha256_fingerprint));
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                seen
            }
        });
        Self { stop, task }
    }

    /// Every change seen, in order.
    async fn stop(self) -> Vec<(i64, String)> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

/// One renewal's times (system clock, ms) and the new version's leaf.
struct Round {
    stored_ms: i64,
    sha256: String,
    verified_ms: i64,
}

/// Renews `cert` (named `name`) `rounds` times (the renew job run by the job worker); for each,
/// the time from the renewal's commit to the deployment on `target` verified serving the new
/// version, and to an [`Observer`]'s first handshake that saw it. Both sorted.
#[allow(clippy::too_many_arguments)]
async fn store_to_served(
    scm: &Arc<Scm>,
    store: &Arc<dyn Store>,
    sql: &mut Sql,
    admin: &Principal,
    cert: &CertificateId,
    name: &str,
    target: &str,
    rounds: usize,
) -> (Vec<Duration>, Vec<Duration>) {
    let t = scm.push_target(&admin.account, target).unwrap();
    let observer = Observer::start(&t.verify.as_ref().unwrap().address, name);
    let mut done = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let seq = scm.renew_now(admin, cert).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let row = loop {
            let row = store
                .deployments(cert)
                .await
                .unwrap()
                .into_iter()
                .find(|r| r.target == target && r.version == seq + 1 && r.verified);
            if let Some(row) = row {
                break row;
            }
            if Instant::now() > deadline {
                let history = scm.delivery_history(admin, cert, 3).await.unwrap();
                panic!(
                    "version {} of {cert} not seen served on {target} within 30 s; last \
                     attempts: {:?}",
                    seq + 1,
                    history
                        .iter()
                        .map(|r| (r.version, &r.outcome, &r.detail))
                        .collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let stored_ms = sql
            .scalar(format!(
                "SELECT MAX(finished_ms) FROM jobs WHERE kind = 'renew' AND state = 'done' AND \
                 dedupe_key = 'renew:{cert}:{seq}'"
            ))
            .await
            .unwrap();
        done.push(Round {
            stored_ms,
            sha256: row.sha256.unwrap(),
            verified_ms: row.verified_ms.unwrap(),
        });
    }
    let seen = observer.stop().await;
    let since = |from: i64, to: i64| Duration::from_millis(u64::try_from(to - from).unwrap_or(0));
    let mut verified: Vec<Duration> = done
        .iter()
        .map(|r| since(r.stored_ms, r.verified_ms))
        .collect();
    // A version the observer never saw (served for less than its interval) counts as verified.
    let mut served: Vec<Duration> = done
        .iter()
        .map(|r| {
            let at = seen
                .iter()
                .find(|(_, f)| *f == r.sha256)
                .map_or(r.verified_ms, |(at, _)| *at);
            since(r.stored_ms, at)
        })
        .collect();
    verified.sort();
    served.sort();
    (verified, served)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn parsed(name: &str, default: usize) -> usize {
    arg(name).and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// Writes `text` to `path`, with `mode`.
fn write(path: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[tokio::main]
async fn main() {
    let pushes = parsed("--pushes", 300).max(1);
    let swaps = parsed("--swaps", 1000).max(1);
    let rounds = parsed("--rounds", 100).max(1);
    let db = BenchDb::create(arg("--database-url").as_deref(), "deploy").await;
    println!(
        "OpenSCM deployment benchmark: pushes through Scm::push_to_target (one `deliver` job per \
         push, its first attempt run at once, verified by a TLS handshake when the target has \
         `verify`), one after the other, each of a different certificate (EC P-256, issued by \
         the account's CA); store {}; machine: {}",
        db.label,
        openscm_bench::machine()
    );

    // Peers: HAProxy and nginx serving placeholders, a TLS server of what the files target
    // writes, a webhook receiver with a TLS server of what it installs.
    let dir = std::env::temp_dir().join(format!("openscm_bench_deploy_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for sub in ["haproxy", "nginx", "files"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let (placeholder, placeholder_key) = self_signed("placeholder.deploy.test");
    let lb_pem = dir.join("haproxy/lb.pem");
    write(&lb_pem, &format!("{placeholder}{placeholder_key}"), 0o600);
    let mut haproxy = Haproxy::start(&dir.join("haproxy"), &lb_pem);
    let (site_crt, site_key) = (dir.join("nginx/site.crt"), dir.join("nginx/site.key"));
    write(&site_crt, &placeholder, 0o644);
    write(&site_key, &placeholder_key, 0o600);
    let nginx = Nginx::start(&dir.join("nginx"), &site_crt, &site_key);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let served_file = dir.join("files/served.pem");
    let files_tls = serve_tls(
        Arc::new(FromFile {
            path: served_file.clone(),
            provider: provider.clone(),
        }),
        provider.clone(),
    )
    .await;
    let (hook_served, hook_plain) = (
        Arc::new(Installed::default()),
        Arc::new(Installed::default()),
    );
    let hook_url = webhook_receiver(
        vec![("/served", hook_served.clone()), ("/plain", hook_plain)],
        provider.clone(),
    )
    .await;
    let hook_tls = serve_tls(hook_served, provider.clone()).await;
    let secret_file = dir.join("hook.secret");
    write(&secret_file, SECRET, 0o600);

    // The store, the account, and the targets as the server builds them from its config; the
    // egress policy lets the webhook reach loopback.
    let sql_store = Arc::new(
        SqlStore::connect(&DatabaseUrl::parse(&db.url).unwrap())
            .await
            .unwrap(),
    );
    let store: Arc<dyn Store> = sql_store.clone();
    let master = Arc::new(MasterKey::generate().unwrap());
    let clock = Arc::new(SystemClock);
    let created = scm_core::bootstrap::run(store.as_ref(), clock.as_ref(), &master)
        .await
        .unwrap()
        .unwrap();
    let account = created.domain_id.to_string();
    let http = OutboundHttp::new(EgressPolicy {
        allow_loopback: true,
        ..EgressPolicy::default()
    })
    .unwrap();
    let hap_port = format!("127.0.0.1:{}", haproxy.port);
    let nginx_port = format!("127.0.0.1:{}", nginx.port);
    let mut reload = nginx.command.clone();
    reload.extend(["-s".to_owned(), "reload".to_owned()]);
    let files = |path: &Path| serde_json::json!({"files": [{"path": path, "content": "combined"}]});
    let hook = |path: &str| {
        serde_json::json!({"url": format!("{hook_url}{path}"), "secret_file": secret_file,
                           "include_private_key": true})
    };
    let lb = |path: &Path| serde_json::json!({"socket": haproxy.socket, "cert_path": path, "crt_list": haproxy.crt_list});
    let targets = vec![
        target(
            &http,
            &account,
            "files",
            "files",
            files(&served_file),
            Some(&files_tls),
        ),
        target(
            &http,
            &account,
            "files-plain",
            "files",
            files(&dir.join("files/plain.pem")),
            None,
        ),
        target(
            &http,
            &account,
            "hook",
            "webhook",
            hook("/served"),
            Some(&hook_tls),
        ),
        target(
            &http,
            &account,
            "hook-plain",
            "webhook",
            hook("/plain"),
            None,
        ),
        target(
            &http,
            &account,
            "lb",
            "haproxy",
            lb(&lb_pem),
            Some(&hap_port),
        ),
        target(
            &http,
            &account,
            "lb-plain",
            "haproxy",
            lb(&dir.join("haproxy/lb-plain.pem")),
            None,
        ),
        target(
            &http,
            &account,
            "web",
            "nginx",
            serde_json::json!({"cert_path": site_crt, "key_path": site_key, "reload_command": reload}),
            Some(&nginx_port),
        ),
    ];
    // Part 1's pushes, part 2's swaps, one warm-up and one certificate renewed per server.
    let n = pushes + swaps + 3;
    let config = CoreConfig {
        quotas: scm_store::Quotas {
            certificates_per_account: (n + 1_000) as u64,
            orders_per_day: (n / PER_ORDER + 100) as u64,
            csrs_per_account: 1_000,
        },
        push_targets: targets,
        delivery: DeliverySettings {
            prober: Some(Arc::new(scm_outbound::tls_probe::RustlsProber::new(
                Duration::from_secs(5),
            ))),
            ..DeliverySettings::default()
        },
        ..CoreConfig::default()
    };
    let scm = Arc::new(
        Scm::open(store.clone(), clock.clone(), master, config)
            .await
            .unwrap(),
    );
    let admin = Principal {
        account: created.domain_id.clone(),
        project: created.project_id,
        access_key: created.access_key,
        method: scm_core::AuthMethod::Signature,
    };
    let mut sql = Sql::connect(&db.url).await;

    // Setup (not timed): n certificates bought and issued.
    let started = Instant::now();
    let mut ids = Vec::with_capacity(n);
    while ids.len() < n {
        let (_, got) = scm
            .purchase(&admin, &admin.project, &purchase_body(), ApiVersion::V3)
            .await
            .unwrap();
        ids.extend(got);
    }
    ids.truncate(n);
    issue_all(&scm, &admin, &ids, 4).await;
    let (part1, rest) = ids.split_at(pushes);
    let (part2, rest) = rest.split_at(swaps);
    let warm = &rest[0];
    // One push to every target first: the first delivery to lb-plain adds it to HAProxy, the
    // webhook's client connects, and every target is seen to work.
    for t in [
        "files",
        "files-plain",
        "hook",
        "hook-plain",
        "lb",
        "lb-plain",
        "web",
    ] {
        if let Err(e) = scm.push_to_target(&admin, warm, t).await {
            panic!(
                "the warm-up push to {t} failed: {e}\nHAProxy:\n{}\nnginx:\n{}",
                haproxy.log(),
                nginx.log()
            );
        }
    }
    println!(
        "  setup: {n} certificates issued, HAProxy {} and nginx {} started, one push to each \
         target, in {:.1} s",
        haproxy.port,
        nginx.port,
        started.elapsed().as_secs_f64()
    );

    // 1. Pushes per second, with and without the check, and bare deliveries.
    println!("  1. {pushes} pushes per target, one after the other:");
    let kinds = [
        (
            "files",
            "files-plain",
            "files (the combined PEM; a TLS server of this process reads it at each handshake)",
        ),
        (
            "hook",
            "hook-plain",
            "webhook (a receiver on loopback checks the signature, installs key and chain in its TLS server, answers 200)",
        ),
        (
            "lb",
            "lb-plain",
            "haproxy (set + commit ssl cert on the runtime API, verified on HAProxy's TLS frontend)",
        ),
    ];
    let mut haproxy_rate = 0.0;
    for (verified, plain, what) in kinds {
        let materials = materials(&scm, &store, &admin, part1, plain).await;
        let deployer = scm
            .push_target(&created.domain_id, plain)
            .unwrap()
            .deployer
            .clone();
        // Interleaved, so that the three see the same load of the shared machine.
        let (mut with, mut without, mut bare) = (Run::default(), Run::default(), Run::default());
        for (id, m) in part1.iter().zip(&materials) {
            push(&scm, &admin, id, verified, &mut with).await;
            push(&scm, &admin, id, plain, &mut without).await;
            let started = Instant::now();
            let result = deployer.deliver(m).await;
            bare.add(started, result.map_err(|e| e.to_string()));
        }
        println!("     {what}");
        println!(
            "       verified pushes            {:>6.1} /s  {:>6.2} ms each{}",
            with.rate(),
            with.ms_each(),
            with.failures()
        );
        println!(
            "       pushes without verify      {:>6.1} /s  {:>6.2} ms each   (the check costs {:.2} ms a push; verified at {:.0}% of this rate){}",
            without.rate(),
            without.ms_each(),
            with.ms_each() - without.ms_each(),
            100.0 * with.rate() / without.rate(),
            without.failures()
        );
        println!(
            "       Deployer::deliver alone    {:>6.1} /s  {:>6.2} ms each   (ceiling: no job, store or check; the job and its records cost {:.2} ms a push){}",
            bare.rate(),
            bare.ms_each(),
            without.ms_each() - bare.ms_each(),
            bare.failures()
        );
        if verified == "lb" {
            haproxy_rate = with.rate();
        }
    }

    // 2. Swaps under a TLS load with a handshake per request.
    let url = format!("https://127.0.0.1:{}/", haproxy.port);
    let wrk_args = ["-t1", "-c2", "-H", "Connection: close"];
    let baseline = Wrk::start(&wrk_args, &url);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let baseline = baseline.stop();
    let pid = haproxy.pid();
    let load = Wrk::start(&wrk_args, &url);
    // wrk connected before the first swap.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let load_started = Instant::now();
    let mut swapped = Run::default();
    for id in part2 {
        push(&scm, &admin, id, "lb", &mut swapped).await;
    }
    let load = load.stop();
    let load_secs = load_started.elapsed().as_secs_f64() + 0.5;
    let same_process = haproxy.running() && haproxy.pid() == pid;
    println!(
        "  2. {swaps} certificates swapped into one HAProxy (pushed to the haproxy target, verified) under wrk {} {url}:",
        wrk_args.join(" ")
    );
    println!(
        "       swaps                      {:>6.1} /s  {:>6.2} ms each   total {:.1} s   ({:.0}% of the verified push rate without load){}",
        swapped.rate(),
        swapped.ms_each(),
        swapped.secs,
        100.0 * swapped.rate() / haproxy_rate,
        swapped.failures()
    );
    println!(
        "       wrk meanwhile              {} requests ({:.0} /s, each a new TLS handshake), failed: {} ({} socket errors, {} non-2xx); \
         before the swaps: {:.0} /s, {} failed; HAProxy {}",
        load.requests,
        load.requests as f64 / load_secs,
        load.failed(),
        load.socket_errors,
        load.non_2xx,
        baseline.requests as f64 / 2.0,
        baseline.failed(),
        if same_process {
            "never restarted"
        } else {
            "RESTARTED OR GONE"
        }
    );
    if load.requests == 0 {
        println!("       wrk printed:\n{}", load.text);
    }

    // 3. From stored to served, through the renewal job and the job worker.
    let supervisor = Supervisor::new();
    let worker = scm.clone();
    supervisor.spawn("job-worker", move |cancel| {
        let handler: Arc<dyn JobHandler> = worker.clone();
        worker.job_runner().clone().run(handler, cancel)
    });
    println!(
        "  3. new version stored -> served, {rounds} renewals per server (a renew job in the job worker, whose transaction \
         stores the version and queues its delivery, which the worker then runs): from that transaction's finished_ms to \
         the deployment's verified_ms (the delivery's own TLS check, which looks again 20, 30, 45 ms... later, at most 250 ms apart), and to \
         the first handshake of an observer of the bench's own that saw the new leaf:"
    );
    for (label, t, i) in [
        ("nginx (cert and key files, nginx -s reload)", "web", n - 2),
        ("HAProxy (runtime API swap)", "lb", n - 1),
    ] {
        let cert = &ids[i];
        scm.push_to_target(&admin, cert, t).await.unwrap();
        let name = format!("host-{i}.deploy.test");
        let (verified, served) =
            store_to_served(&scm, &store, &mut sql, &admin, cert, &name, t, rounds).await;
        println!("       {label}");
        for (what, d) in [
            ("verified by the delivery's check", &verified),
            ("first served (observer, every 5 ms)", &served),
        ] {
            println!(
                "         {what:<36} p50 {:>6.1} ms   p95 {:>6.1} ms   max {:>6.1} ms",
                ms(percentile(d, 50)),
                ms(percentile(d, 95)),
                ms(*d.last().unwrap())
            );
        }
    }
    supervisor.stop(Duration::from_secs(10)).await;
    scm.job_runner().drain(Duration::from_secs(10)).await;

    // Checks: every push recorded as a verified success where it has `verify`, and nothing else.
    let failures = sql
        .scalar("SELECT COUNT(*) FROM push_records WHERE outcome <> 'success'".into())
        .await
        .unwrap();
    let mut counts = Vec::new();
    for (t, verified, expected) in [
        ("files", true, pushes + 1),
        ("files-plain", false, pushes + 1),
        ("hook", true, pushes + 1),
        ("hook-plain", false, pushes + 1),
        ("lb", true, pushes + swaps + 2 + rounds),
        ("lb-plain", false, pushes + 1),
        ("web", true, 2 + rounds),
    ] {
        let got = sql
            .scalar(format!(
                "SELECT COUNT(*) FROM push_records WHERE targets = '{t}' AND outcome = 'success' \
                 AND verified = {}",
                i32::from(verified)
            ))
            .await
            .unwrap();
        counts.push((t, got, expected as i64));
    }
    let ok = failures == 0 && counts.iter().all(|(_, got, want)| got == want) && same_process;
    println!(
        "  check: successes per target (got/expected) {}; {failures} failed attempts => {}",
        counts
            .iter()
            .map(|(t, got, want)| format!("{t} {got}/{want}"))
            .collect::<Vec<_>>()
            .join(", "),
        if ok { "ok" } else { "FAILED" }
    );
    drop(sql);
    drop(scm);
    drop(store);
    sql_store.close().await;
    db.remove().await;
    drop(haproxy);
    drop(nginx);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(ok, "deployment check failed");
}
