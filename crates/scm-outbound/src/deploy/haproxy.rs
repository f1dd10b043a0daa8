//! The `haproxy` target: the certificate is replaced in a running HAProxy (2.2 or later) through
//! its runtime API, with no reload, and written to disk so that a restart serves it too.
//!
//! What a delivery writes, under the lock of `cert_path` (and that of `crt_list`; lock files are
//! kept in OpenSCM's lock directory, see `fsutil::set_lock_dir`):
//! - `cert_path`: the full chain and the PKCS#8 key in one PEM file (mode 0600), replaced
//!   atomically; HAProxy loads it from there when it starts;
//! - `crt_list` (only when HAProxy did not serve the certificate yet): the line `<cert_path>`
//!   appended, atomically, unless the file already has it.
//!
//! (The temporary files are dot files, which HAProxy's `crt <directory>` skips.)
//!
//! Then it speaks the runtime API over the UNIX socket `socket` (a `stats socket ... level
//! admin`), one connection per command:
//! 1. `show ssl cert`: does HAProxy know `cert_path` (certificates are named by the path exactly
//!    as haproxy.cfg or its crt-list spells it), and is a transaction on another certificate open?
//!    With `crt_list`, `show ssl crt-list <crt_list>` too: is the certificate listed there?
//! 2. A certificate HAProxy does not know is created (`new ssl cert <cert_path>`); without
//!    `crt_list` that is refused as misconfigured, since nothing would serve it.
//! 3. `set ssl cert <cert_path> <<` with the PEM as payload (ended by an empty line; the PEM's
//!    own empty lines are dropped, since one would end the payload early), then
//!    `commit ssl cert <cert_path>`. On any failure between the two: `abort ssl cert <cert_path>`.
//! 4. A new certificate (or one HAProxy knows but serves nowhere) is attached with
//!    `add ssl crt-list <crt_list> <cert_path>`.
//!
//! If a step fails, the transaction is aborted, a certificate created in step 2 is deleted
//! again (`del ssl cert`), and the files are put back: HAProxy keeps serving, in memory and on
//! disk, what it served before. Every step checks first, so delivering the same material again
//! (a retry after a crash) converges: an open transaction on the same certificate is reused, a
//! certificate already created or listed is not created or listed twice.
//!
//! HAProxy holds one certificate transaction at a time, and 2.6 puts a `set` on one certificate
//! into a transaction open on another one. So deliveries through one socket are serialised in
//! this process; a transaction left open on another certificate (an operator's, or another
//! process's) makes the delivery wait as a transient failure; and a `set` that HAProxy reports
//! under another certificate's name is aborted at once rather than ever committed.
//!
//! How failures are classified for the job runner:
//! - the socket does not exist or may not be opened, HAProxy says `Permission denied` (the
//!   socket is not `level admin`) or does not know the commands, HAProxy does not know the
//!   certificate and there is no `crt_list`, or a file cannot be written: **misconfigured**;
//! - nobody listens on the socket (HAProxy restarting), an exchange times out or breaks off,
//!   another transaction is open, or another delivery holds the target: **transient**;
//! - HAProxy refuses the material (a PEM it cannot load, a key that does not match the
//!   certificate, a payload larger than its command buffer): **permanent**.
//!
//! The key never reaches a log or an error message: the payload lives in zeroized buffers, and
//! HAProxy's answers are quoted only with PEM lines removed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use scm_core::deploy::{DeliveryError, DeliveryErrorKind, Deployer, Material};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zeroize::Zeroizing;

use crate::fsutil::{self, FileError, LockError};

crate::target_config! {
    /// An HAProxy target as written in the config file (`kind = "haproxy"`).
    pub struct HaproxyConfig {
        /// HAProxy's runtime API: the UNIX socket of a `stats socket ... level admin` line.
        pub socket: PathBuf,
        /// The certificate's name in HAProxy (the path exactly as haproxy.cfg or its crt-list
        /// writes it); the full chain and key are also written there (mode 0600).
        pub cert_path: PathBuf,
        /// A crt-list HAProxy loaded (named as haproxy.cfg names it), where a certificate
        /// HAProxy does not serve yet is added.
        #[serde(default)]
        pub crt_list: Option<PathBuf>,
        /// Seconds each runtime API command may take, and a delivery may wait for another to
        /// finish (default 30).
        #[serde(default)]
        pub timeout_seconds: Option<u64>,
    }
}

/// The answer of one command may be long (`show ssl cert` lists every certificate) but not
/// unbounded.
const ANSWER_LIMIT: u64 = 8 << 20;

/// HAProxy reads a command and its payload into one buffer (`tune.bufsize`, 16384 bytes by
/// default) and drops the connection, without an answer, when they do not fit. A request
/// above this size that gets no answer was most likely too large.
const LIKELY_TOO_LARGE: usize = 14_000;

/// Deliveries through one runtime API socket, one at a time in this process: HAProxy has one
/// certificate transaction at a time.
static SOCKETS: LazyLock<std::sync::Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Default::default);

/// Delivers to one certificate of one HAProxy.
#[derive(Debug)]
pub struct HaproxyDeployer {
    api: RuntimeApi,
    cert_path: PathBuf,
    /// `cert_path` as HAProxy names it.
    cert_name: String,
    crt_list: Option<CrtList>,
    timeout: Duration,
    /// Shared by every target on the same socket.
    socket_turn: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Debug)]
struct CrtList {
    path: PathBuf,
    /// As HAProxy names it.
    name: String,
}

impl HaproxyDeployer {
    /// Checks a configured target; the error names the key at fault.
    pub fn new(c: &HaproxyConfig) -> Result<Self, String> {
        if !c.socket.is_absolute() {
            return Err("socket must be an absolute path (HAProxy's stats socket)".into());
        }
        let cert_name = command_word("cert_path", &c.cert_path)?;
        let crt_list = match &c.crt_list {
            None => None,
            Some(p) => Some(CrtList {
                path: p.clone(),
                name: command_word("crt_list", p)?,
            }),
        };
        if crt_list.as_ref().is_some_and(|l| l.path == c.cert_path) {
            return Err("crt_list must differ from cert_path".into());
        }
        let timeout = c.timeout_seconds.unwrap_or(30);
        if !(1..=3600).contains(&timeout) {
            return Err(format!(
                "timeout_seconds: {timeout} is out of range (1..=3600)"
            ));
        }
        let timeout = Duration::from_secs(timeout);
        let socket_turn = SOCKETS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(c.socket.clone())
            .or_default()
            .clone();
        Ok(Self {
            api: RuntimeApi {
                socket: c.socket.clone(),
                timeout,
            },
            cert_path: c.cert_path.clone(),
            cert_name,
            crt_list,
            timeout,
            socket_turn,
        })
    }
}

/// A path that is written into runtime API commands: absolute, and one word there.
fn command_word(key: &str, path: &Path) -> Result<String, String> {
    if !path.is_absolute() || path.file_name().is_none() {
        return Err(format!("{key} must be an absolute path to a file"));
    }
    let text = path
        .to_str()
        .ok_or_else(|| format!("{key} must be valid UTF-8"))?;
    if text
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, ';' | '\\' | '#'))
    {
        return Err(format!(
            "{key} must not contain spaces, control characters, ';', '#' or '\\' \
             (HAProxy's command line splits on them)"
        ));
    }
    Ok(text.to_owned())
}

/// What HAProxy knows before anything changes.
struct Survey {
    /// `show ssl cert` lists the certificate.
    known: bool,
    /// It is in `crt_list` (so the crt-list file on disk must list it too).
    listed: bool,
    /// It is to be added to `crt_list`.
    attach: bool,
}

#[async_trait]
impl Deployer for HaproxyDeployer {
    async fn deliver(&self, m: &Material) -> Result<(), DeliveryError> {
        let _turn = tokio::time::timeout(self.timeout, self.socket_turn.lock())
            .await
            .map_err(|_| {
                DeliveryError::transient("another delivery to this HAProxy is in progress")
            })?;
        // Other OpenSCM processes may deliver to the same certificate, or add to the same
        // crt-list file: the locks order them (always in this order).
        let _cert_lock = lock(&self.cert_path, self.timeout).await?;
        let _list_lock = match &self.crt_list {
            Some(l) => Some(lock(&l.path, self.timeout).await?),
            None => None,
        };
        let pem = pem_bundle(m);
        // Ask first: a target HAProxy cannot serve from changes nothing on disk.
        let survey = self.survey().await?;
        let cert_backup = backup(&self.cert_path).await?;
        fsutil::write_atomic(&self.cert_path, pem.as_bytes(), 0o600)
            .await
            .map_err(|e| file_failure(&e))?;
        let list_backup = match &self.crt_list {
            Some(list) if survey.listed || survey.attach => {
                match list_on_disk(&list.path, &self.cert_name).await {
                    Ok(b) => b,
                    Err(e) => {
                        restore(&[cert_backup]).await;
                        return Err(e);
                    }
                }
            }
            _ => None,
        };
        if let Err(e) = self.swap(&pem, &survey).await {
            restore(
                &[Some(cert_backup), list_backup]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>(),
            )
            .await;
            return Err(e);
        }
        tracing::debug!(
            certificate = %self.cert_name,
            new = !survey.known,
            added_to_crt_list = survey.attach,
            "delivered to HAProxy"
        );
        Ok(())
    }
}

impl HaproxyDeployer {
    /// Whether HAProxy knows the certificate and serves it from `crt_list`, and what to do.
    async fn survey(&self) -> Result<Survey, DeliveryError> {
        let name = &self.cert_name;
        let answer = self.command("show ssl cert").await?;
        let listing =
            parse_cert_listing(&answer).ok_or_else(|| refused("show ssl cert", &answer))?;
        if let Some(other) = listing.transaction.filter(|t| t != name) {
            return Err(DeliveryError::transient(format!(
                "HAProxy has an open transaction on the certificate {other} (only one at a time); \
                 previous certificate kept"
            )));
        }
        let known = listing.files.iter().any(|f| f == name);
        let Some(list) = &self.crt_list else {
            if !known {
                return Err(DeliveryError::misconfigured(format!(
                    "HAProxy does not know the certificate {name} (`show ssl cert` does not list \
                     it): write cert_path exactly as haproxy.cfg names it, or set crt_list so \
                     that a new certificate is added there"
                )));
            }
            return Ok(Survey {
                known,
                listed: false,
                attach: false,
            });
        };
        let verb = format!("show ssl crt-list {}", list.name);
        let answer = self.command(&verb).await?;
        let Some(entries) = parse_crt_list(&answer) else {
            if answer.contains("didn't find") {
                return Err(DeliveryError::misconfigured(format!(
                    "crt_list: HAProxy has no crt-list {} (write it exactly as haproxy.cfg \
                     names it)",
                    list.name
                )));
            }
            return Err(refused(&verb, &answer));
        };
        let listed = entries.iter().any(|e| e == name);
        // A certificate HAProxy knows but serves nowhere is one an earlier attempt created and
        // could not attach; one it serves from elsewhere (a `crt` line) stays where it is.
        let attach = !listed
            && (!known || {
                let verb = format!("show ssl cert {name}");
                let answer = self.command(&verb).await?;
                !answer.lines().any(|l| l.trim() == "Status: Used")
            });
        Ok(Survey {
            known,
            listed,
            attach,
        })
    }

    /// Replaces (or creates) the certificate in HAProxy's memory; on failure HAProxy serves
    /// what it served before.
    async fn swap(&self, pem: &str, survey: &Survey) -> Result<(), DeliveryError> {
        let name = &self.cert_name;
        if !survey.known {
            let verb = format!("new ssl cert {name}");
            let answer = self.command(&verb).await?;
            if !(answer.contains("New empty certificate store")
                || answer.contains("already exists"))
            {
                return Err(failure(&verb, &answer, DeliveryErrorKind::Transient));
            }
        }
        let installed = async {
            self.set(pem).await?;
            self.commit().await?;
            match &self.crt_list {
                Some(list) if survey.attach => self.attach(list).await,
                _ => Ok(()),
            }
        }
        .await;
        if installed.is_err() {
            // Harmless when nothing is open ("No ongoing transaction!"), and it never touches
            // a transaction on another certificate.
            self.quietly(&format!("abort ssl cert {name}")).await;
            if !survey.known {
                self.quietly(&format!("del ssl cert {name}")).await;
            }
        }
        installed
    }

    /// `set ssl cert` with the PEM as payload.
    async fn set(&self, pem: &str) -> Result<(), DeliveryError> {
        let name = &self.cert_name;
        let verb = format!("set ssl cert {name}");
        let mut request = Zeroizing::new(Vec::with_capacity(verb.len() + pem.len() + 8));
        request.extend_from_slice(verb.as_bytes());
        request.extend_from_slice(b" <<\n");
        request.extend_from_slice(pem.as_bytes());
        // The empty line ends the payload.
        request.extend_from_slice(b"\n");
        let size = request.len();
        let answer = match self.api.exchange(&request).await {
            Ok(answer) => answer,
            Err(ApiError::Broken(_)) if size > LIKELY_TOO_LARGE => String::new(),
            Err(e) => return Err(self.api_failure(e, &verb)),
        };
        if answer.trim().is_empty() && size > LIKELY_TOO_LARGE {
            return Err(DeliveryError::permanent(format!(
                "HAProxy dropped the connection on the {size}-byte certificate and key: more \
                 than its command buffer holds (tune.bufsize, 16384 by default); previous \
                 certificate kept"
            )));
        }
        match transaction_of(&answer) {
            Some(path) if path == name => Ok(()),
            Some(other) => {
                // HAProxy 2.6 put this payload into a transaction another party opened on
                // another certificate: it must never be committed under that name.
                self.quietly(&format!("abort ssl cert {other}")).await;
                Err(DeliveryError::transient(format!(
                    "HAProxy had an open transaction on the certificate {other}, now aborted; \
                     previous certificate kept"
                )))
            }
            None => Err(failure(&verb, &answer, DeliveryErrorKind::Permanent)),
        }
    }

    /// `commit ssl cert`: HAProxy checks the certificate against the key here.
    async fn commit(&self) -> Result<(), DeliveryError> {
        let verb = format!("commit ssl cert {}", self.cert_name);
        let answer = self.command(&verb).await?;
        if answer.lines().any(|l| l.trim() == "Success!") {
            return Ok(());
        }
        Err(failure(&verb, &answer, DeliveryErrorKind::Permanent))
    }

    /// `add ssl crt-list`: the certificate is served for its names.
    async fn attach(&self, list: &CrtList) -> Result<(), DeliveryError> {
        let verb = format!("add ssl crt-list {} {}", list.name, self.cert_name);
        let answer = self.command(&verb).await?;
        if answer.lines().any(|l| l.trim() == "Success!") {
            return Ok(());
        }
        if answer.contains("does not exist") {
            return Err(DeliveryError::misconfigured(format!(
                "crt_list: HAProxy has no crt-list {}; previous certificate kept",
                list.name
            )));
        }
        Err(failure(&verb, &answer, DeliveryErrorKind::Permanent))
    }

    /// One command without a payload; its answer.
    async fn command(&self, verb: &str) -> Result<String, DeliveryError> {
        let request = format!("{verb}\n");
        self.api
            .exchange(request.as_bytes())
            .await
            .map_err(|e| self.api_failure(e, verb))
    }

    /// A clean-up command whose failure is only logged.
    async fn quietly(&self, verb: &str) {
        match self.command(verb).await {
            Ok(answer) => {
                tracing::debug!(command = %verb, answer = %excerpt(&answer), "HAProxy clean-up");
            }
            Err(e) => tracing::warn!(command = %verb, error = %e, "HAProxy clean-up failed"),
        }
    }

    fn api_failure(&self, e: ApiError, verb: &str) -> DeliveryError {
        let socket = self.api.socket.display();
        let message = match e {
            ApiError::Unreachable(kind) => {
                return DeliveryError::misconfigured(format!(
                    "socket {socket} cannot be opened ({kind}): it must be HAProxy's \
                     `stats socket ... level admin`, writable by OpenSCM; previous certificate kept"
                ));
            }
            ApiError::Down(kind) => format!(
                "HAProxy's runtime API at {socket} is not answering ({kind}); HAProxy may be \
                 restarting"
            ),
            ApiError::TimedOut => format!(
                "HAProxy's runtime API at {socket} did not answer `{verb}` within {} s",
                self.api.timeout.as_secs()
            ),
            ApiError::Broken(kind) => {
                format!("the connection to HAProxy broke off during `{verb}` ({kind})")
            }
        };
        DeliveryError::transient(format!("{message}; previous certificate kept"))
    }
}

/// How an exchange with the runtime API failed.
#[derive(Debug)]
enum ApiError {
    /// The socket is missing or may not be opened: an operator must act.
    Unreachable(std::io::ErrorKind),
    /// Nobody listens on it.
    Down(std::io::ErrorKind),
    /// No complete answer in time.
    TimedOut,
    /// The connection broke off.
    Broken(std::io::ErrorKind),
}

/// HAProxy's runtime API on a UNIX socket, in its non-interactive mode: one command (with its
/// payload) per connection, answered, then closed by HAProxy.
#[derive(Debug)]
struct RuntimeApi {
    socket: PathBuf,
    timeout: Duration,
}

impl RuntimeApi {
    /// Sends `request` (one command line, or a command with its payload and the empty line
    /// that ends it) and reads the answer until HAProxy closes the connection.
    async fn exchange(&self, request: &[u8]) -> Result<String, ApiError> {
        let exchange = async {
            let mut stream = tokio::net::UnixStream::connect(&self.socket)
                .await
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::PermissionDenied
                    | std::io::ErrorKind::NotADirectory => ApiError::Unreachable(e.kind()),
                    kind => ApiError::Down(kind),
                })?;
            stream
                .write_all(request)
                .await
                .map_err(|e| ApiError::Broken(e.kind()))?;
            let mut answer = Vec::new();
            (&mut stream)
                .take(ANSWER_LIMIT)
                .read_to_end(&mut answer)
                .await
                .map_err(|e| ApiError::Broken(e.kind()))?;
            Ok(String::from_utf8_lossy(&answer).into_owned())
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| ApiError::TimedOut)?
    }
}

/// The full chain then the key, one PEM text with `\n` line ends and no empty line (an empty
/// line ends a runtime API payload; whatever followed would be read as commands).
fn pem_bundle(m: &Material) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(
        m.fullchain_pem.len() + m.key_pem.len() + 2,
    ));
    for line in m.fullchain_pem.lines().chain(m.key_pem.lines()) {
        let line = line.trim_end();
        if !line.is_empty() {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// `show ssl cert`: the certificates HAProxy knows and the one with an open transaction.
#[derive(Debug, Default, PartialEq, Eq)]
struct CertListing {
    files: Vec<String>,
    transaction: Option<String>,
}

/// Parses `# transaction\n*<path>\n# filename\n<path>\n...`; `None` for anything else (an error
/// message).
fn parse_cert_listing(answer: &str) -> Option<CertListing> {
    let mut lines = answer.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next()?;
    if !first.starts_with('#') {
        return None;
    }
    let mut listing = CertListing::default();
    let mut in_transaction = first == "# transaction";
    for line in lines {
        if let Some(heading) = line.strip_prefix('#') {
            in_transaction = heading.trim() == "transaction";
        } else if in_transaction {
            listing.transaction = Some(line.trim_start_matches('*').to_owned());
        } else {
            listing.files.push(line.to_owned());
        }
    }
    Some(listing)
}

/// `show ssl crt-list <list>`: `# <list>` then a line per entry, the certificate first.
fn parse_crt_list(answer: &str) -> Option<Vec<String>> {
    let mut lines = answer.lines().map(str::trim).filter(|l| !l.is_empty());
    if !lines.next()?.starts_with('#') {
        return None;
    }
    Some(
        lines
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .collect(),
    )
}

/// The certificate named by `Transaction created|updated for certificate <path>!`.
fn transaction_of(answer: &str) -> Option<&str> {
    answer.lines().find_map(|l| {
        let rest = l
            .trim()
            .strip_prefix("Transaction created for certificate ")
            .or_else(|| {
                l.trim()
                    .strip_prefix("Transaction updated for certificate ")
            })?;
        Some(rest.strip_suffix('!').unwrap_or(rest))
    })
}

/// HAProxy's answer, for messages and logs: one line, bounded, without PEM lines.
fn excerpt(answer: &str) -> String {
    let text = answer
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains("-----"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut short: String = text.chars().take(300).collect();
    if short.len() < text.len() {
        short.push_str("...");
    }
    short
}

/// A query (`show ...`) answered with an error.
fn refused(verb: &str, answer: &str) -> DeliveryError {
    failure(verb, answer, DeliveryErrorKind::Transient)
}

/// A command HAProxy did not carry out: misconfigured when the socket may not do it, transient
/// when HAProxy is busy, else `otherwise` (what a refusal of this command means).
fn failure(verb: &str, answer: &str, otherwise: DeliveryErrorKind) -> DeliveryError {
    let said = excerpt(answer);
    tracing::warn!(command = %verb, answer = %said, "HAProxy refused a runtime API command");
    if answer.contains("Permission denied") || answer.contains("Unknown command") {
        return DeliveryError::misconfigured(format!(
            "HAProxy refuses `{verb}` ({said}): the socket must be a `stats socket ... level \
             admin` of HAProxy 2.2 or later; previous certificate kept"
        ));
    }
    let kind = if said.is_empty()
        || [
            "currently locked",
            "ongoing transaction",
            "not referenced",
            "allocate",
        ]
        .iter()
        .any(|busy| answer.contains(busy))
    {
        DeliveryErrorKind::Transient
    } else {
        otherwise
    };
    let said = if said.is_empty() {
        "no answer".to_owned()
    } else {
        said
    };
    let message = format!("HAProxy refused `{verb}`: {said}; previous certificate kept");
    match kind {
        DeliveryErrorKind::Transient => DeliveryError::transient(message),
        DeliveryErrorKind::Permanent => DeliveryError::permanent(message),
        DeliveryErrorKind::Misconfigured => DeliveryError::misconfigured(message),
    }
}

fn file_failure(e: &FileError) -> DeliveryError {
    if e.is_misconfiguration() {
        DeliveryError::misconfigured(e.to_string())
    } else {
        DeliveryError::transient(e.to_string())
    }
}

async fn lock(path: &Path, wait: Duration) -> Result<fsutil::FileLock, DeliveryError> {
    fsutil::lock_for(path, wait).await.map_err(|e| match e {
        LockError::File(f) => file_failure(&f),
        LockError::Busy(_) => {
            DeliveryError::transient("another delivery to this target is in progress")
        }
    })
}

/// A file's previous content, to restore on failure (key material: wiped on drop).
struct Backup {
    path: PathBuf,
    content: Option<Zeroizing<Vec<u8>>>,
    mode: u32,
}

async fn backup(path: &Path) -> Result<Backup, DeliveryError> {
    use std::os::unix::fs::PermissionsExt;
    match tokio::fs::read(path).await {
        Ok(content) => {
            let mode = tokio::fs::metadata(path)
                .await
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0o600);
            Ok(Backup {
                path: path.to_owned(),
                content: Some(Zeroizing::new(content)),
                mode,
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Backup {
            path: path.to_owned(),
            content: None,
            mode: 0o600,
        }),
        Err(e) => Err(file_failure(&FileError {
            action: "cannot read",
            path: path.to_owned(),
            source: e,
        })),
    }
}

async fn restore(backups: &[Backup]) {
    for b in backups {
        let outcome = match &b.content {
            Some(c) => fsutil::write_atomic(&b.path, c, b.mode)
                .await
                .map_err(|e| e.to_string()),
            None => tokio::fs::remove_file(&b.path).await.or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e.to_string())
                }
            }),
        };
        if let Err(e) = outcome {
            tracing::error!(path = %b.path.display(), error = %e, "could not restore previous file");
        }
    }
}

/// Makes the crt-list file on disk list `name` (appended, atomically, unless a line already
/// starts with it), so a restarted HAProxy serves it too; the previous content when it changed.
async fn list_on_disk(list: &Path, name: &str) -> Result<Option<Backup>, DeliveryError> {
    let previous = backup(list).await?;
    let Some(content) = &previous.content else {
        return Err(DeliveryError::misconfigured(format!(
            "crt_list {} does not exist on disk (HAProxy would lose the certificate on restart)",
            list.display()
        )));
    };
    let text = String::from_utf8_lossy(content);
    if text
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name))
    {
        return Ok(None);
    }
    let mut updated = text.into_owned();
    if !updated.is_empty() && !updated.ends_with('\n') {
        updated.push('\n');
    }
    updated.push_str(name);
    updated.push('\n');
    fsutil::write_atomic(list, updated.as_bytes(), previous.mode)
        .await
        .map_err(|e| file_failure(&e))?;
    Ok(Some(previous))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml_text: &str) -> Result<HaproxyDeployer, String> {
        let c: HaproxyConfig = toml::from_str(&format!(
            "name = \"edge\"\naccount = \"0123456789abcdef0123456789abcdef\"\n\
             service = \"ELB\"\n{toml_text}"
        ))
        .map_err(|e| e.message().to_owned())?;
        HaproxyDeployer::new(&c)
    }

    #[test]
    fn config_refusals_name_the_key() {
        let ok = "socket = \"/run/haproxy/admin.sock\"\ncert_path = \"/etc/haproxy/site.pem\"\n";
        config(ok).unwrap();
        config(&format!(
            "{ok}crt_list = \"/etc/haproxy/list\"\ntimeout_seconds = 5\n"
        ))
        .unwrap();
        let e = config("cert_path = \"/etc/haproxy/site.pem\"\n").unwrap_err();
        assert!(e.contains("socket"), "{e}");
        let e = config("socket = \"/run/haproxy/admin.sock\"\n").unwrap_err();
        assert!(e.contains("cert_path"), "{e}");
        let e =
            config("socket = \"admin.sock\"\ncert_path = \"/etc/haproxy/site.pem\"\n").unwrap_err();
        assert!(e.contains("socket") && e.contains("absolute"), "{e}");
        let e = config("socket = \"/run/a.sock\"\ncert_path = \"site.pem\"\n").unwrap_err();
        assert!(e.contains("cert_path") && e.contains("absolute"), "{e}");
        let e = config(&format!("{ok}crt_list = \"certs/list\"\n")).unwrap_err();
        assert!(e.contains("crt_list") && e.contains("absolute"), "{e}");
        let e = config("socket = \"/run/a.sock\"\ncert_path = \"/etc/my site.pem\"\n").unwrap_err();
        assert!(e.contains("cert_path") && e.contains("spaces"), "{e}");
        let e = config(&format!("{ok}crt_list = \"/etc/x;show info\"\n")).unwrap_err();
        assert!(e.contains("crt_list"), "{e}");
        let e = config(&format!("{ok}timeout_seconds = 0\n")).unwrap_err();
        assert!(e.contains("timeout_seconds"), "{e}");
        let e = config(&format!("{ok}reload_command = []\n")).unwrap_err();
        assert!(e.contains("reload_command"), "{e}");
    }

    #[test]
    fn push_targets_of_kind_haproxy() {
        let c: crate::deploy::TargetConfig = toml::from_str(
            r#"kind = "haproxy"
               name = "edge"
               account = "0123456789abcdef0123456789abcdef"
               service = "ELB"
               region = "cn-north-4"
               socket = "/run/haproxy/admin.sock"
               cert_path = "/etc/haproxy/certs/site.pem"
               crt_list = "/etc/haproxy/certs/list.crtlist"
               verify = { address = "127.0.0.1:443", server_name = "www.shop.test" }
               timeout_seconds = 30"#,
        )
        .unwrap();
        assert_eq!(c.kind(), "haproxy");
        assert_eq!(c.files(), [Path::new("/etc/haproxy/certs/site.pem")]);
        let t = crate::deploy::push_target(
            &c,
            &crate::http::OutboundHttp::new(Default::default()).unwrap(),
        )
        .unwrap();
        assert_eq!((t.name.as_str(), t.kind), ("edge", "haproxy"));
        assert!(t.verify.is_some());
    }

    #[test]
    fn the_payload_has_no_empty_line_and_unix_line_ends() {
        let mut m = crate::deploy::testing::material("v1");
        m.fullchain_pem = "-----BEGIN CERTIFICATE-----\r\nAAA\r\n-----END CERTIFICATE-----\r\n\r\n\
                           -----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n\n"
            .into();
        m.key_pem =
            Zeroizing::new("\n-----BEGIN PRIVATE KEY-----\nKKK\n-----END PRIVATE KEY-----".into());
        assert_eq!(
            pem_bundle(&m).as_str(),
            "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n\
             -----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n\
             -----BEGIN PRIVATE KEY-----\nKKK\n-----END PRIVATE KEY-----\n"
        );
    }

    #[test]
    fn listings_are_parsed_as_haproxy_2_6_prints_them() {
        let l = parse_cert_listing(
            "# transaction\n*/c/site.pem\n# filename\n/c/other.pem\n/c/site.pem\n\n",
        )
        .unwrap();
        assert_eq!(l.transaction.as_deref(), Some("/c/site.pem"));
        assert_eq!(l.files, ["/c/other.pem", "/c/site.pem"]);
        assert_eq!(
            parse_cert_listing("# filename\n\n").unwrap(),
            CertListing::default()
        );
        assert_eq!(parse_cert_listing("Permission denied\n\n"), None);
        assert_eq!(parse_cert_listing(""), None);
        assert_eq!(
            parse_crt_list("# /c/list\n/c/site.pem\n/c/o.pem [alpn h2] o.test\n\n").unwrap(),
            ["/c/site.pem", "/c/o.pem"]
        );
        assert_eq!(
            parse_crt_list("didn't find the specified filename\n\n"),
            None
        );
        assert_eq!(
            transaction_of("Transaction updated for certificate /c/site.pem!\n\n"),
            Some("/c/site.pem")
        );
        assert_eq!(transaction_of("Can't update /c/site.pem!\n"), None);
    }

    #[test]
    fn refusals_are_classified_and_quoted_without_pem() {
        let e = failure(
            "commit ssl cert /c/s.pem",
            "inconsistencies between private key and certificate loaded '/c/s.pem'.\n\
             Can't commit /c/s.pem!\n\n",
            DeliveryErrorKind::Permanent,
        );
        assert_eq!(e.kind, DeliveryErrorKind::Permanent);
        assert!(e.message.contains("inconsistencies"), "{e}");
        let e = failure(
            "set ssl cert /c/s.pem",
            "Permission denied\n\n",
            DeliveryErrorKind::Permanent,
        );
        assert_eq!(e.kind, DeliveryErrorKind::Misconfigured, "{e}");
        let e = failure(
            "commit ssl cert /c/s.pem",
            "No ongoing transaction! !\nCan't commit /c/s.pem!\n",
            DeliveryErrorKind::Permanent,
        );
        assert_eq!(e.kind, DeliveryErrorKind::Transient, "{e}");
        let e = failure("set ssl cert /c/s.pem", "", DeliveryErrorKind::Permanent);
        assert_eq!(e.kind, DeliveryErrorKind::Transient, "{e}");
        assert!(e.message.contains("no answer"), "{e}");
        let e = failure(
            "set ssl cert /c/s.pem",
            "-----BEGIN PRIVATE KEY-----\nsecret\nunable to load\n",
            DeliveryErrorKind::Permanent,
        );
        assert!(!e.message.contains("BEGIN"), "{e}");
    }

    #[tokio::test]
    async fn the_crt_list_file_gets_one_line_per_certificate() {
        let d = tempfile::tempdir().unwrap();
        let list = d.path().join("list");
        std::fs::write(&list, "/c/site.pem [alpn h2]").unwrap();
        let b = list_on_disk(&list, "/c/new.pem").await.unwrap();
        assert!(b.is_some());
        assert!(list_on_disk(&list, "/c/new.pem").await.unwrap().is_none());
        assert!(list_on_disk(&list, "/c/site.pem").await.unwrap().is_none());
        assert_eq!(
            std::fs::read_to_string(&list).unwrap(),
            "/c/site.pem [alpn h2]\n/c/new.pem\n"
        );
        // (No unwrap_err: a backup holds file contents and has no Debug to print them.)
        let Err(e) = list_on_disk(&d.path().join("missing"), "/c/x.pem").await else {
            panic!("a missing crt-list file is refused")
        };
        assert_eq!(e.kind, DeliveryErrorKind::Misconfigured, "{e}");
    }
}
