//! HTTPS for the listener: rustls (on the aws-lc-rs provider) with a certificate resolver whose
//! certificate can be swapped while the server runs, so a new certificate reaches the next
//! connection without a restart. Two sources feed it:
//!
//! - [`FileSource`]: a PEM chain and key given by the operator, read again every few seconds; a
//!   changed pair that loads (chain parses, key parses and matches the leaf) replaces the served
//!   one, a broken one is logged and the old one kept;
//! - [`BuiltinSource`]: a serving certificate issued by OpenSCM's own built-in CA for the
//!   configured host names, short-lived and renewed at 2/3 of its life (decided on the injected
//!   [`Clock`]); its key lives in memory only and a restart issues a new one.
//!
//! [`ServingStatus`] tells others (the metrics) when the served certificate expires.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use scm_core::Clock;
use scm_core::issuance::BuiltinCa;
use scm_core::tasks::Supervisor;
use scm_pki::ServingHost;
use time::OffsetDateTime;
use zeroize::Zeroizing;

pub use tokio_rustls::TlsAcceptor;

/// The served certificate's expiry, for the metrics: Unix seconds, 0 while no TLS is served.
/// Cheap to clone (one shared atomic).
#[derive(Debug, Clone, Default)]
pub struct ServingStatus(Arc<AtomicI64>);

impl ServingStatus {
    /// `not_after` of the certificate served to new connections, Unix seconds; `None` without
    /// TLS.
    pub fn not_after_unix(&self) -> Option<i64> {
        Some(self.0.load(Ordering::Relaxed)).filter(|t| *t != 0)
    }

    fn set(&self, not_after: OffsetDateTime) {
        self.0.store(not_after.unix_timestamp(), Ordering::Relaxed);
    }
}

/// Why a certificate and key could not be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsError {
    /// A file could not be read (path, reason).
    Read(PathBuf, String),
    /// The chain holds no `CERTIFICATE` block, or one that does not parse.
    BadChain(String),
    /// The key is not one PEM private key (PKCS#8, PKCS#1 or SEC1) that the provider loads.
    BadKey(String),
    /// The key does not belong to the chain's first certificate.
    KeyMismatch,
    /// The built-in CA could not issue (the text says why).
    Issue(String),
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Read(path, e) => write!(f, "cannot read {}: {e}", path.display()),
            Self::BadChain(e) => write!(f, "the certificate chain is not usable: {e}"),
            Self::BadKey(e) => write!(f, "the private key is not usable: {e}"),
            Self::KeyMismatch => {
                f.write_str("the private key does not match the chain's first certificate")
            }
            Self::Issue(e) => write!(
                f,
                "the built-in CA cannot issue the serving certificate: {e}"
            ),
        }
    }
}

impl std::error::Error for TlsError {}

/// A certificate ready to serve.
#[derive(Debug, Clone)]
pub struct Loaded {
    key: Arc<CertifiedKey>,
    /// The leaf's serial, lower-case hex.
    pub serial_hex: String,
    /// Start of the leaf's validity.
    pub not_before: OffsetDateTime,
    /// End of the leaf's validity.
    pub not_after: OffsetDateTime,
}

impl Loaded {
    /// The leaf certificate (DER).
    pub fn leaf_der(&self) -> Option<&[u8]> {
        self.key.cert.first().map(|c| c.as_ref())
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Loads a PEM chain (leaf first) and its PEM key, checking that the key is the leaf's.
pub fn load_pem_pair(chain_pem: &[u8], key_pem: &[u8]) -> Result<Loaded, TlsError> {
    let chain = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadChain(e.to_string()))?;
    let key =
        PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::BadKey(e.to_string()))?;
    certified(chain, key)
}

fn certified(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Loaded, TlsError> {
    let leaf = chain
        .first()
        .ok_or_else(|| TlsError::BadChain("no CERTIFICATE block".into()))?;
    let info = scm_pki::parse_certificate_der(leaf.as_ref())
        .map_err(|e| TlsError::BadChain(e.to_string()))?;
    let key = CertifiedKey::from_der(chain, key, &provider()).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch,
        other => TlsError::BadKey(other.to_string()),
    })?;
    Ok(Loaded {
        key: Arc::new(key),
        serial_hex: info.serial_hex,
        not_before: info.not_before,
        not_after: info.not_after,
    })
}

/// The certificate served to new connections (a rustls resolver); [`ServingCert::install`]
/// swaps it, and connections already open keep theirs.
#[derive(Debug)]
pub struct ServingCert {
    current: RwLock<Loaded>,
    status: ServingStatus,
}

impl ServingCert {
    /// A resolver serving `first`, reporting its expiry in `status`.
    pub fn new(first: Loaded, status: ServingStatus) -> Self {
        status.set(first.not_after);
        Self {
            current: RwLock::new(first),
            status,
        }
    }

    /// Serves `next` to new connections from now on.
    pub fn install(&self, next: Loaded) {
        self.status.set(next.not_after);
        if let Ok(mut current) = self.current.write() {
            *current = next;
        }
    }

    /// What is served now.
    pub fn current(&self) -> Option<Loaded> {
        self.current.read().ok().map(|g| g.clone())
    }

    /// The TLS acceptor of a listener serving this resolver's certificate (HTTP/1.1 only).
    pub fn acceptor(self: &Arc<Self>) -> Result<TlsAcceptor, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::BadKey(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|g| g.key.clone())
    }
}

/// What one look at the files found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// The files are as last seen.
    Unchanged,
    /// A new pair is served (its serial).
    Installed(String),
    /// The files changed but do not load; the old pair is still served.
    Rejected(TlsError),
}

/// The operator's certificate and key files, watched by content (so an edit within one mtime
/// tick, or a file replaced by a rename, is still seen).
pub struct FileSource {
    cert_file: PathBuf,
    key_file: PathBuf,
    seen: Mutex<Option<Pair>>,
}

/// The bytes of a chain file and a key file.
type Pair = (Vec<u8>, Zeroizing<Vec<u8>>);

impl std::fmt::Debug for FileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSource")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read(path.to_owned(), e.to_string()))
}

/// Reads a private key file, refusing one that group or others may read, as every other secret
/// file of the server is refused (the mode is that of the handle read, not of whatever the path
/// names a moment later).
fn read_private(path: &Path) -> Result<Zeroizing<Vec<u8>>, TlsError> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let failed = |e: std::io::Error| TlsError::Read(path.to_owned(), e.to_string());
    let mut file = std::fs::File::open(path).map_err(failed)?;
    let mode = file.metadata().map_err(failed)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(TlsError::Read(
            path.to_owned(),
            format!(
                "the private key file is readable by group or others (mode {:o}); run `chmod 600` on it",
                mode & 0o777
            ),
        ));
    }
    let mut key = Zeroizing::new(Vec::with_capacity(4096));
    file.read_to_end(&mut key).map_err(failed)?;
    Ok(key)
}

/// How near its end a served certificate is, for the warning of files mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// More than [`EXPIRY_WARNING`] left.
    Fine,
    /// Valid, but for less than [`EXPIRY_WARNING`].
    Soon,
    /// Past its `not_after`.
    Expired,
}

/// A served certificate with less than this left is warned about (files mode; the built-in one
/// is renewed at 2/3 of its life).
pub const EXPIRY_WARNING: time::Duration = time::Duration::days(7);

impl Expiry {
    /// Where `not_after` stands at `now`.
    pub fn at(not_after: OffsetDateTime, now: OffsetDateTime) -> Self {
        if not_after <= now {
            Self::Expired
        } else if not_after - now < EXPIRY_WARNING {
            Self::Soon
        } else {
            Self::Fine
        }
    }
}

impl FileSource {
    /// A source reading `cert_file` (PEM chain, leaf first) and `key_file` (PEM key).
    pub fn new(cert_file: PathBuf, key_file: PathBuf) -> Self {
        Self {
            cert_file,
            key_file,
            seen: Mutex::new(None),
        }
    }

    /// Reads and loads the pair (the first load at start: an error stops the start).
    pub fn load(&self) -> Result<Loaded, TlsError> {
        let chain = read(&self.cert_file)?;
        let key = read_private(&self.key_file)?;
        let loaded = load_pem_pair(&chain, &key)?;
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some((chain, key));
        }
        Ok(loaded)
    }

    /// Reads the files again; when they changed and load, installs the new pair in `target`.
    pub fn reload(&self, target: &ServingCert) -> Reload {
        let read_both = || -> Result<Pair, TlsError> {
            Ok((read(&self.cert_file)?, read_private(&self.key_file)?))
        };
        let (chain, key) = match read_both() {
            Ok(pair) => pair,
            Err(e) => return Reload::Rejected(e),
        };
        let Ok(mut seen) = self.seen.lock() else {
            return Reload::Unchanged;
        };
        if seen
            .as_ref()
            .is_some_and(|(c, k)| *c == chain && k.as_slice() == key.as_slice())
        {
            return Reload::Unchanged;
        }
        let outcome = match load_pem_pair(&chain, &key) {
            Ok(loaded) => {
                let serial = loaded.serial_hex.clone();
                target.install(loaded);
                Reload::Installed(serial)
            }
            Err(e) => Reload::Rejected(e),
        };
        // A rejected pair is remembered too: it is logged once, not at every look.
        *seen = Some((chain, key));
        outcome
    }
}

/// The serving certificate issued by the built-in CA.
pub struct BuiltinSource {
    ca: Arc<BuiltinCa>,
    hosts: Vec<ServingHost>,
    validity: time::Duration,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for BuiltinSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltinSource")
            .field("hosts", &self.hosts)
            .field("validity", &self.validity)
            .finish_non_exhaustive()
    }
}

/// A serving certificate starts this long before it is issued, for clients whose clocks lag.
const BACKDATE: time::Duration = time::Duration::minutes(5);

/// After a failed renewal, the next try comes this much later.
const RETRY: Duration = Duration::from_secs(60);

/// The longest the renewal task sleeps before it reads the clock again (a suspended machine or
/// a clock set forward is noticed within this).
const MAX_NAP: Duration = Duration::from_secs(3600);

/// When a certificate valid from `not_before` to `not_after` is renewed: at 2/3 of its life.
pub fn renew_at(not_before: OffsetDateTime, not_after: OffsetDateTime) -> OffsetDateTime {
    not_before + (not_after - not_before) * 2 / 3
}

/// How long to wait, at `now`, before renewing a certificate due at `due`: zero when it is due,
/// else the time left, at most an hour (the clock is read again then).
pub fn wait_before_renewal(now: OffsetDateTime, due: OffsetDateTime) -> Duration {
    let left = due - now;
    if left <= time::Duration::ZERO {
        return Duration::ZERO;
    }
    Duration::try_from(left).map_or(MAX_NAP, |d| d.min(MAX_NAP))
}

impl BuiltinSource {
    /// Issues for `hosts`, each certificate valid for `validity`, times from `clock`.
    pub fn new(
        ca: Arc<BuiltinCa>,
        hosts: Vec<ServingHost>,
        validity: time::Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            ca,
            hosts,
            validity,
            clock,
        }
    }

    /// A new certificate and key, valid from now (less a few minutes) for the validity.
    pub fn issue(&self) -> Result<Loaded, TlsError> {
        let now = self.clock.now();
        let issued = self
            .ca
            .issue_serving(&self.hosts, now - BACKDATE, now + self.validity)
            .map_err(|e| TlsError::Issue(e.to_string()))?;
        let chain = CertificateDer::pem_slice_iter(issued.chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::Issue(e.to_string()))?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(issued.key.pkcs8_der().to_vec()));
        certified(chain, key)
    }

    /// How long to wait before looking again, given what is served now.
    pub fn wait(&self, served: &Loaded) -> Duration {
        wait_before_renewal(
            self.clock.now(),
            renew_at(served.not_before, served.not_after),
        )
    }
}

/// How the listener gets its certificate.
#[derive(Debug)]
pub enum Source {
    /// Operator's files, looked at every `poll`.
    Files {
        /// The files.
        files: FileSource,
        /// Time between looks.
        poll: Duration,
    },
    /// The built-in CA.
    Builtin(BuiltinSource),
}

/// The `Strict-Transport-Security` value of every HTTPS answer: a year, this host only (the
/// server's name may be shared with sites it does not speak for, so no `includeSubDomains`).
pub const HSTS: &str = "max-age=31536000";

/// `app` with `Strict-Transport-Security` on every answer (for a router served over TLS only:
/// over plain HTTP the header means nothing and browsers ignore it).
pub fn with_hsts(app: axum::Router) -> axum::Router {
    app.layer(axum::middleware::map_response(
        |mut resp: axum::response::Response| async move {
            resp.headers_mut().insert(
                axum::http::header::STRICT_TRANSPORT_SECURITY,
                axum::http::HeaderValue::from_static(HSTS),
            );
            resp
        },
    ))
}

/// A TLS listener's certificate, with the task that keeps it current.
pub struct Tls {
    /// The acceptor for the listener.
    pub acceptor: TlsAcceptor,
    /// What is served.
    pub cert: Arc<ServingCert>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.cert)
            .finish_non_exhaustive()
    }
}

/// Loads or issues the first certificate (an error stops the start), and starts under
/// `supervisor` the task that reloads the files or renews the built-in certificate.
pub fn start(
    source: Source,
    status: ServingStatus,
    supervisor: &Supervisor,
) -> Result<Tls, TlsError> {
    let first = match &source {
        Source::Files { files, .. } => files.load()?,
        Source::Builtin(builtin) => builtin.issue()?,
    };
    let cert = Arc::new(ServingCert::new(first, status));
    let acceptor = cert.acceptor()?;
    let source = Arc::new(source);
    let target = cert.clone();
    supervisor.spawn("tls-certificate", move |cancel| {
        let (source, target) = (source.clone(), target.clone());
        async move {
            // The last refusal, so that a file that stays missing is logged once, not every look.
            let mut refused: Option<TlsError> = None;
            // The certificate (serial) and state last warned about: once each, not every look.
            let mut warned: Option<(String, Expiry)> = None;
            loop {
                let nap = match source.as_ref() {
                    Source::Files { files, poll } => {
                        if let Some(served) = target.current() {
                            let state = Expiry::at(served.not_after, OffsetDateTime::now_utc());
                            let seen = Some((served.serial_hex.clone(), state));
                            if state != Expiry::Fine && warned != seen {
                                tracing::warn!(
                                    serial = %served.serial_hex,
                                    not_after = %served.not_after,
                                    expired = state == Expiry::Expired,
                                    "the TLS certificate served from the configured files {}; replace the files (they are reloaded when they change)",
                                    if state == Expiry::Expired { "has expired" } else { "expires within 7 days" }
                                );
                            }
                            warned = seen;
                        }
                        match files.reload(&target) {
                            Reload::Unchanged => {}
                            Reload::Installed(serial) => {
                                refused = None;
                                tracing::info!(%serial, "TLS certificate files changed: serving the new certificate")
                            }
                            Reload::Rejected(e) if refused.as_ref() != Some(&e) => {
                                tracing::warn!(
                                    error = %e,
                                    "TLS certificate files changed but do not load: still serving the previous certificate"
                                );
                                refused = Some(e);
                            }
                            Reload::Rejected(_) => {}
                        }
                        *poll
                    }
                    Source::Builtin(builtin) => match target.current() {
                        Some(served) if !builtin.wait(&served).is_zero() => builtin.wait(&served),
                        _ => match builtin.issue() {
                            Ok(next) => {
                                tracing::info!(serial = %next.serial_hex, not_after = %next.not_after, "renewed the serving certificate");
                                let wait = builtin.wait(&next);
                                target.install(next);
                                wait
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "cannot renew the serving certificate; trying again in a minute");
                                RETRY
                            }
                        },
                    },
                };
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(nap) => {}
                }
            }
        }
    });
    Ok(Tls { acceptor, cert })
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    use rustls::pki_types::ServerName;
    use scm_core::FixedClock;
    use time::macros::datetime;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A throwaway CA that signs leaves for `localhost`.
    struct TestCa {
        cert: rcgen::Certificate,
        issuer: rcgen::Issuer<'static, KeyPair>,
    }

    impl TestCa {
        fn new() -> Self {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            let key = KeyPair::generate().unwrap();
            let cert = params.self_signed(&key).unwrap();
            Self {
                cert,
                issuer: rcgen::Issuer::new(params, key),
            }
        }

        /// A leaf's PEM chain and key.
        fn leaf(&self) -> (String, String) {
            let params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &self.issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        }

        fn root(&self) -> CertificateDer<'static> {
            self.cert.der().clone()
        }
    }

    /// Serves TLS with `acceptor` on loopback until the test ends.
    async fn serve_tls(acceptor: TlsAcceptor) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/health", axum::routing::get(|| async { "ok" }));
        tokio::spawn(crate::serve_with(
            listener,
            app,
            std::future::pending(),
            crate::ServeLimits::default(),
            Some(acceptor),
            crate::ConnectionStats::default(),
        ));
        addr
    }

    /// Connects trusting only `root` as `name`, sends a request, and returns the certificate
    /// the server presented (the handshake verifies it) and the answer.
    async fn fetch(
        addr: SocketAddr,
        root: CertificateDer<'static>,
        name: &str,
    ) -> Result<(CertificateDer<'static>, String), String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(root).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from(name.to_owned()).unwrap();
        let mut tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let presented = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
        tls.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        tls.read_to_string(&mut answer).await.unwrap();
        Ok((presented, answer))
    }

    fn der_of(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    #[test]
    fn a_served_certificate_is_fine_then_expiring_within_7_days_then_expired() {
        let end = datetime!(2027-01-31 00:00 UTC);
        assert_eq!(
            Expiry::at(end, datetime!(2027-01-23 23:59 UTC)),
            Expiry::Fine
        );
        assert_eq!(
            Expiry::at(end, datetime!(2027-01-24 00:01 UTC)),
            Expiry::Soon
        );
        assert_eq!(Expiry::at(end, end), Expiry::Expired);
    }

    #[tokio::test]
    async fn https_answers_carry_strict_transport_security() {
        use tower::ServiceExt;
        let app =
            with_hsts(axum::Router::new().route("/health", axum::routing::get(|| async { "ok" })));
        let resp = app
            .oneshot(
                axum::http::Request::get("/health")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(
            resp.headers()
                .get(axum::http::header::STRICT_TRANSPORT_SECURITY)
                .unwrap(),
            HSTS
        );
    }

    #[tokio::test]
    async fn a_changed_pair_reaches_the_next_connection_and_a_broken_one_keeps_the_old() {
        let ca = TestCa::new();
        let dir = tempfile::tempdir().unwrap();
        let (cert_file, key_file) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        let (first, first_key) = ca.leaf();
        std::fs::write(&cert_file, &first).unwrap();
        std::fs::write(&key_file, &first_key).unwrap();
        // A key file others may read is refused, as every secret file is.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
            let refused = FileSource::new(cert_file.clone(), key_file.clone())
                .load()
                .unwrap_err();
            assert!(refused.to_string().contains("chmod 600"), "{refused}");
            std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let files = FileSource::new(cert_file.clone(), key_file.clone());
        let status = ServingStatus::default();
        assert_eq!(status.not_after_unix(), None, "no TLS yet");
        let cert = Arc::new(ServingCert::new(files.load().unwrap(), status.clone()));
        assert!(status.not_after_unix().unwrap() > 0);
        let addr = serve_tls(cert.acceptor().unwrap()).await;

        let (presented, answer) = fetch(addr, ca.root(), "localhost").await.unwrap();
        assert_eq!(presented, der_of(&first));
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok"),
            "{answer}"
        );
        assert_eq!(files.reload(&cert), Reload::Unchanged);

        // A new pair: served to the next connection, no restart.
        let (second, second_key) = ca.leaf();
        std::fs::write(&cert_file, &second).unwrap();
        std::fs::write(&key_file, &second_key).unwrap();
        let serial = scm_pki::parse_certificate_der(der_of(&second).as_ref())
            .unwrap()
            .serial_hex;
        assert_eq!(files.reload(&cert), Reload::Installed(serial));
        let (presented, _) = fetch(addr, ca.root(), "localhost").await.unwrap();
        assert_eq!(presented, der_of(&second));

        // A certificate whose key is another's: refused, the second pair still served.
        let (third, _) = ca.leaf();
        std::fs::write(&cert_file, &third).unwrap();
        assert_eq!(files.reload(&cert), Reload::Rejected(TlsError::KeyMismatch));
        assert_eq!(
            files.reload(&cert),
            Reload::Unchanged,
            "refused once, not at every look"
        );
        let (presented, _) = fetch(addr, ca.root(), "localhost").await.unwrap();
        assert_eq!(presented, der_of(&second));

        // Garbage, then a missing key file: refused, still the second pair.
        std::fs::write(&cert_file, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
        assert!(matches!(
            files.reload(&cert),
            Reload::Rejected(TlsError::BadChain(_))
        ));
        std::fs::write(&cert_file, &second).unwrap();
        std::fs::remove_file(&key_file).unwrap();
        assert!(matches!(
            files.reload(&cert),
            Reload::Rejected(TlsError::Read(..))
        ));
        let (presented, _) = fetch(addr, ca.root(), "localhost").await.unwrap();
        assert_eq!(presented, der_of(&second));

        // A client that does not trust the CA fails verification.
        let other = TestCa::new();
        let refused = fetch(addr, other.root(), "localhost").await.unwrap_err();
        assert!(refused.contains("invalid peer certificate"), "{refused}");
    }

    #[test]
    fn a_pair_that_does_not_load_is_refused_at_start() {
        let ca = TestCa::new();
        let (cert, key) = ca.leaf();
        let (_, other_key) = ca.leaf();
        assert!(load_pem_pair(cert.as_bytes(), key.as_bytes()).is_ok());
        assert_eq!(
            load_pem_pair(cert.as_bytes(), other_key.as_bytes()).unwrap_err(),
            TlsError::KeyMismatch
        );
        assert!(matches!(
            load_pem_pair(b"", key.as_bytes()),
            Err(TlsError::BadChain(_))
        ));
        assert!(matches!(
            load_pem_pair(cert.as_bytes(), cert.as_bytes()),
            Err(TlsError::BadKey(_))
        ));
    }

    fn builtin_ca() -> (Arc<BuiltinCa>, String) {
        let generated = scm_pki::generate_ca("Test", OffsetDateTime::now_utc()).unwrap();
        let master = Arc::new(scm_pki::MasterKey::generate().unwrap());
        let rec = scm_store::CaRecord {
            root_cert_pem: generated.root_cert_pem.clone(),
            root_key_sealed: master
                .seal(generated.root_key.pkcs8_der(), b"ca:root")
                .unwrap(),
            intermediate_cert_pem: generated.intermediate_cert_pem.clone(),
            intermediate_key_sealed: master
                .seal(generated.intermediate_key.pkcs8_der(), b"ca:intermediate")
                .unwrap(),
            created_ms: 0,
        };
        (
            Arc::new(BuiltinCa::load(&rec, master, None).unwrap()),
            generated.root_cert_pem,
        )
    }

    #[test]
    fn renewal_comes_at_two_thirds_of_the_life_on_the_injected_clock() {
        let t0 = datetime!(2026-01-01 00:00 UTC);
        let life = time::Duration::days(30);
        assert_eq!(renew_at(t0, t0 + life), t0 + time::Duration::days(20));
        assert_eq!(
            wait_before_renewal(t0, t0 + time::Duration::days(20)),
            MAX_NAP,
            "a long wait is cut to an hour (the clock is read again)"
        );
        let due = t0 + time::Duration::days(20);
        assert_eq!(
            wait_before_renewal(due - time::Duration::seconds(90), due),
            Duration::from_secs(90)
        );
        assert_eq!(wait_before_renewal(due, due), Duration::ZERO);
        assert_eq!(
            wait_before_renewal(due + life, due),
            Duration::ZERO,
            "overdue: at once"
        );

        // The built-in source, on a fixed clock now (the CA was made with the real one).
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let clock = Arc::new(FixedClock::new(now));
        let (ca, _) = builtin_ca();
        let hosts = vec![ServingHost::parse("localhost").unwrap()];
        let source = BuiltinSource::new(ca, hosts, life, clock.clone());
        let served = source.issue().unwrap();
        assert_eq!(served.not_before, now - BACKDATE);
        assert_eq!(served.not_after, now + life);
        assert_eq!(source.wait(&served), MAX_NAP);
        let due = renew_at(served.not_before, served.not_after);
        clock.set(due - time::Duration::seconds(1));
        assert_eq!(source.wait(&served), Duration::from_secs(1));
        clock.set(due);
        assert_eq!(source.wait(&served), Duration::ZERO);
        let renewed = source.issue().unwrap();
        assert_ne!(renewed.serial_hex, served.serial_hex);
        assert_eq!(renewed.not_after, due + life);
        assert_eq!(source.wait(&renewed), MAX_NAP);
    }

    #[tokio::test]
    async fn the_builtin_certificate_verifies_for_its_names_and_addresses() {
        let (ca, root_pem) = builtin_ca();
        let hosts = ["localhost", "127.0.0.1", "scm.internal"]
            .iter()
            .map(|h| ServingHost::parse(h).unwrap())
            .collect();
        let source = BuiltinSource::new(
            ca,
            hosts,
            time::Duration::days(30),
            Arc::new(scm_core::SystemClock),
        );
        let cert = Arc::new(ServingCert::new(
            source.issue().unwrap(),
            ServingStatus::default(),
        ));
        let addr = serve_tls(cert.acceptor().unwrap()).await;
        let root = der_of(&root_pem);
        for name in ["localhost", "127.0.0.1", "scm.internal"] {
            let (_, answer) = fetch(addr, root.clone(), name).await.unwrap();
            assert!(answer.ends_with("ok"), "{name}: {answer}");
        }
        let wrong = fetch(addr, root, "other.internal").await.unwrap_err();
        assert!(wrong.contains("not valid for name"), "{wrong}");
    }
}
