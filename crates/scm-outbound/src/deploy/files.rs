//! The `files` target: write the certificate in the forms the operator lists, each at its own
//! path with its own mode (and owner, when OpenSCM runs as root), then optionally test and reload.
//!
//! What each `content` writes:
//! - `fullchain`: leaf then intermediates (PEM); `leaf`: the leaf alone; `chain`: the
//!   intermediates alone (empty when there are none);
//! - `key`: the PKCS#8 private key (PEM);
//! - `combined`: the key then the full chain in one PEM file (what HAProxy reads);
//! - `pkcs12`: key, leaf and chain in a PKCS#12 file encrypted under the password read from
//!   `password_file` at each delivery (so it can be rotated); the layout is OpenSSL 3's default.
//!
//! Default modes are 0644, and 0600 for `key`, `combined` and `pkcs12`. `owner` and `group`
//! (names or numeric ids) give the files away; only root can do that, so they are refused at start
//! when OpenSCM does not run as root.
//!
//! Every file is written beside its final path and renamed into place, all of them under one lock
//! (the first file's, kept in OpenSCM's lock directory, not beside it). If a write, the test or the reload fails, the previous files are put
//! back (and the reload run again, so a server that picked up the new files goes back to the old).
//!
//! The commands run without a shell, with the delivery in their environment (`OPENSCM_*`, see
//! [`super::exec`]), and `OPENSCM_FILE_<CONTENT>` naming the path of each content written. They
//! must be idempotent: a delivery interrupted by a crash is delivered again.
//!
//! How failures are classified for the job runner:
//! - a file cannot be written, or a command cannot start: **misconfigured**;
//! - the test command refuses, or the material cannot be put in the form asked (a key PKCS#12
//!   cannot carry): **permanent**;
//! - the reload command fails or a command times out, or another delivery holds the target:
//!   **transient**, retried with backoff.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use scm_core::deploy::{DeliveryError, Deployer, Material};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::command;
use super::files_common::{self, Install, Planned, file_failure};
use crate::fsutil::{self, Ownership};

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Content {
    /// Leaf then intermediates, PEM.
    Fullchain,
    /// The leaf, PEM.
    Leaf,
    /// The intermediates, PEM.
    Chain,
    /// The private key, PKCS#8 PEM.
    Key,
    /// The key then the full chain, PEM.
    Combined,
    /// Key, leaf and chain in a password-protected PKCS#12 file.
    Pkcs12,
}

impl Content {
    /// The config spelling, upper-cased in `OPENSCM_FILE_<CONTENT>`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fullchain => "fullchain",
            Self::Leaf => "leaf",
            Self::Chain => "chain",
            Self::Key => "key",
            Self::Combined => "combined",
            Self::Pkcs12 => "pkcs12",
        }
    }

    /// Whether it holds the private key (and so defaults to mode 0600).
    pub fn is_secret(self) -> bool {
        matches!(self, Self::Key | Self::Combined | Self::Pkcs12)
    }
}

/// A user or group: a name, or a numeric id (`33` or `"33"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum NameOrId {
    /// A numeric id.
    Id(u32),
    /// A name (or a number written as a string).
    Name(String),
}

/// One file a target writes:
/// `{ path = "/etc/ssl/site/key.pem", content = "key", mode = "0640", group = "ssl-cert" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// Absolute path.
    pub path: PathBuf,
    /// What it holds.
    pub content: Content,
    /// Octal mode (`"0644"`); 0644 by default, 0600 for the key, combined and PKCS#12 files.
    #[serde(default)]
    pub mode: Option<String>,
    /// Owning user (root only).
    #[serde(default)]
    pub owner: Option<NameOrId>,
    /// Owning group (root only).
    #[serde(default)]
    pub group: Option<NameOrId>,
    /// The PKCS#12 password, in a file only its owner may read (`pkcs12` only, and required).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

crate::target_config! {
    /// A files target as written in the config file (`kind = "files"`).
    pub struct FilesConfig {
        /// The files to write, in this order.
        pub files: Vec<FileSpec>,
        /// Run after writing the files; a failure refuses the material.
        #[serde(default)]
        pub test_command: Option<Vec<String>>,
        /// Run after the test, to make a server load the files.
        #[serde(default)]
        pub reload_command: Option<Vec<String>>,
        /// Seconds each command may run, and a delivery may wait for another (default 30).
        #[serde(default)]
        pub timeout_seconds: Option<u64>,
    }
}

/// A checked [`FileSpec`].
#[derive(Debug, Clone)]
pub(crate) struct FileOut {
    pub path: PathBuf,
    pub content: Content,
    pub mode: u32,
    pub owner: Ownership,
    pub password_file: Option<PathBuf>,
}

/// Checks a `files` list; `root`: whether OpenSCM runs as root. The error names the key
/// (`files[2].mode ...`).
pub(crate) fn check_files(specs: &[FileSpec], root: bool) -> Result<Vec<FileOut>, String> {
    let mut out: Vec<FileOut> = Vec::with_capacity(specs.len());
    for (i, f) in specs.iter().enumerate() {
        let key = |k: &str| format!("files[{i}].{k}");
        if !f.path.is_absolute() || f.path.file_name().is_none() {
            return Err(format!(
                "{} {:?} must be an absolute path to a file",
                key("path"),
                f.path
            ));
        }
        if let Some(j) = out.iter().position(|o| o.path == f.path) {
            return Err(format!(
                "{} {:?} is also files[{j}].path",
                key("path"),
                f.path
            ));
        }
        let mode = match &f.mode {
            None if f.content.is_secret() => 0o600,
            None => 0o644,
            Some(m) => parse_mode(m).ok_or_else(|| {
                format!(
                    "{} {m:?} must be an octal mode such as \"0640\" (no special bits)",
                    key("mode")
                )
            })?,
        };
        let mut owner = Ownership::default();
        for (k, value, lookup) in [("owner", &f.owner, "passwd"), ("group", &f.group, "group")] {
            let Some(value) = value else { continue };
            if !root {
                return Err(format!(
                    "{} is set, but OpenSCM does not run as root and only root can give files \
                     away (remove it, or run as the user the files should belong to)",
                    key(k)
                ));
            }
            let id = resolve_id(value, lookup).map_err(|e| format!("{} {e}", key(k)))?;
            if k == "owner" {
                owner.uid = Some(id);
            } else {
                owner.gid = Some(id);
            }
        }
        let password_file = match (f.content, &f.password_file) {
            (Content::Pkcs12, None) => {
                return Err(format!(
                    "{} is required for content = \"pkcs12\"",
                    key("password_file")
                ));
            }
            (Content::Pkcs12, Some(p)) => {
                check_password_file(p).map_err(|e| format!("{} {e}", key("password_file")))?;
                Some(p.clone())
            }
            (_, Some(_)) => {
                return Err(format!(
                    "{} applies only to content = \"pkcs12\"",
                    key("password_file")
                ));
            }
            (_, None) => None,
        };
        out.push(FileOut {
            path: f.path.clone(),
            content: f.content,
            mode,
            owner,
            password_file,
        });
    }
    Ok(out)
}

/// `"0644"`, `"644"`: permission bits only.
fn parse_mode(text: &str) -> Option<u32> {
    let t = text.trim();
    if t.is_empty() || t.len() > 4 || !t.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    u32::from_str_radix(t, 8).ok().filter(|m| *m <= 0o777)
}

/// A numeric id as is, a name through the system's user or group database (`getent`, so names
/// from LDAP or SSSD resolve too).
fn resolve_id(value: &NameOrId, database: &str) -> Result<u32, String> {
    let name = match value {
        NameOrId::Id(id) => return Ok(*id),
        NameOrId::Name(n) => n.trim(),
    };
    if let Ok(id) = name.parse::<u32>() {
        return Ok(id);
    }
    if name.is_empty() || name.starts_with('-') {
        return Err(format!("{name:?} is not a valid name"));
    }
    let out = std::process::Command::new("getent")
        .args([database, name])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("{name:?} cannot be looked up (getent: {})", e.kind()))?;
    let what = if database == "passwd" {
        "user"
    } else {
        "group"
    };
    if !out.status.success() {
        return Err(format!("{name:?} is not a known {what}"));
    }
    // `name:x:id:...`
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .and_then(|l| l.split(':').nth(2))
        .and_then(|id| id.parse::<u32>().ok())
        .ok_or_else(|| format!("{name:?}: getent gave no {what} id"))
}

/// The password file exists, only its owner may read it, and it is not empty.
fn check_password_file(p: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(p)
        .map_err(|e| format!("{} cannot be read ({})", p.display(), e.kind()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "{} is readable by others (run `chmod 600` on it)",
            p.display()
        ));
    }
    let password = fsutil::read_secret_file(p).map_err(|e| e.to_string())?;
    if password.is_empty() {
        return Err(format!("{} is empty", p.display()));
    }
    Ok(())
}

/// The bytes of `f` for material `m`.
pub(crate) fn render(f: &FileOut, m: &Material) -> Result<Planned, DeliveryError> {
    let content = match f.content {
        Content::Fullchain => Zeroizing::new(m.fullchain_pem.as_bytes().to_vec()),
        Content::Leaf => Zeroizing::new(m.leaf_pem.as_bytes().to_vec()),
        Content::Chain => Zeroizing::new(m.chain_pem.as_bytes().to_vec()),
        Content::Key => Zeroizing::new(m.key_pem.as_bytes().to_vec()),
        Content::Combined => {
            let mut c = Zeroizing::new(Vec::with_capacity(
                m.key_pem.len() + m.fullchain_pem.len() + 1,
            ));
            c.extend_from_slice(m.key_pem.as_bytes());
            if !m.key_pem.ends_with('\n') {
                c.push(b'\n');
            }
            c.extend_from_slice(m.fullchain_pem.as_bytes());
            c
        }
        Content::Pkcs12 => pkcs12(f, m)?,
    };
    Ok(Planned {
        path: f.path.clone(),
        content,
        mode: f.mode,
        owner: f.owner,
    })
}

fn pkcs12(f: &FileOut, m: &Material) -> Result<Zeroizing<Vec<u8>>, DeliveryError> {
    let Some(password_file) = &f.password_file else {
        return Err(DeliveryError::misconfigured(
            "a pkcs12 file needs a password_file",
        ));
    };
    let password = fsutil::read_secret_file(password_file).map_err(|e| file_failure(&e))?;
    if password.is_empty() {
        return Err(DeliveryError::misconfigured(format!(
            "{} is empty",
            password_file.display()
        )));
    }
    let refused = |what: String| DeliveryError::permanent(format!("PKCS#12: {what}"));
    let key = scm_pki::PrivateKey::from_pem(&m.key_pem).map_err(|e| refused(e.to_string()))?;
    let leaf = scm_pki::parse_certificate_pem(&m.leaf_pem).map_err(|e| refused(e.to_string()))?;
    let mut chain = Vec::new();
    for block in scm_pki::pem_blocks(&m.chain_pem, "CERTIFICATE") {
        let c = scm_pki::parse_certificate_pem(&block).map_err(|e| refused(e.to_string()))?;
        chain.push(c.der);
    }
    let name = m
        .facts
        .names
        .first()
        .unwrap_or(&m.facts.certificate_id)
        .clone();
    let der = scm_pki::pkcs12::write_pkcs12(
        &scm_pki::pkcs12::Pkcs12Input {
            pkcs8_key: key.pkcs8_der(),
            leaf_der: &leaf.der,
            chain_der: &chain,
            friendly_name: &name,
        },
        &password,
    )
    .map_err(|e| refused(e.to_string()))?;
    Ok(Zeroizing::new(der))
}

/// `OPENSCM_FILE_<CONTENT>` = path, for each content written (the first file of a content when
/// several hold it).
pub(crate) fn file_env(files: &[FileOut]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    for f in files {
        let k = format!("OPENSCM_FILE_{}", f.content.as_str().to_ascii_uppercase());
        if !env.iter().any(|(e, _)| *e == k) {
            env.push((k, f.path.display().to_string()));
        }
    }
    env
}

/// Delivers to one set of files.
#[derive(Debug)]
pub struct FilesDeployer {
    name: String,
    files: Vec<FileOut>,
    test_command: Option<Vec<String>>,
    reload_command: Option<Vec<String>>,
    timeout: Duration,
    /// Deliveries of this process, one at a time (the lock file orders processes).
    local: tokio::sync::Mutex<()>,
}

impl FilesDeployer {
    /// Checks a configured target; the error names the key at fault.
    pub fn new(c: &FilesConfig) -> Result<Self, String> {
        Self::checked(c, files_common::is_root())
    }

    fn checked(c: &FilesConfig, root: bool) -> Result<Self, String> {
        if c.files.is_empty() {
            return Err("files must list at least one file".into());
        }
        Ok(Self {
            name: c.name.clone(),
            files: check_files(&c.files, root)?,
            test_command: command::optional_argv("test_command", c.test_command.as_ref())?,
            reload_command: command::optional_argv("reload_command", c.reload_command.as_ref())?,
            timeout: command::timeout(c.timeout_seconds)?,
            local: tokio::sync::Mutex::new(()),
        })
    }
}

#[async_trait]
impl Deployer for FilesDeployer {
    async fn deliver(&self, m: &Material) -> Result<(), DeliveryError> {
        let planned = self
            .files
            .iter()
            .map(|f| render(f, m))
            .collect::<Result<Vec<_>, _>>()?;
        let Some(first) = self.files.first() else {
            return Err(DeliveryError::misconfigured("no files to write"));
        };
        let mut env = command::delivery_env(m, &self.name);
        env.extend(file_env(&self.files));
        let _local = self.local.lock().await;
        files_common::install(&Install {
            lock_for: &first.path,
            files: &planned,
            test: self.test_command.as_deref(),
            reload: self.reload_command.as_deref(),
            env: &env,
            timeout: self.timeout,
        })
        .await?;
        tracing::debug!(target = %self.name, files = self.files.len(), "delivered files");
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use scm_core::deploy::{CertificateFacts, DeliveryContext, DeliveryErrorKind};

    use super::*;

    /// A real certificate (leaf issued by a real intermediate) and its key.
    pub(crate) fn real_material() -> Material {
        let now = time::OffsetDateTime::now_utc();
        let ca = scm_pki::generate_ca("OpenSCM Test", now).unwrap();
        let issuer =
            scm_pki::ca::Issuer::from_pem(&ca.intermediate_cert_pem, &ca.intermediate_key).unwrap();
        let key = scm_pki::PrivateKey::generate(scm_pki::KeyAlgorithm::EcP256).unwrap();
        let names = [scm_pki::DnsName::parse("www.shop.test").unwrap()];
        let issued = issuer
            .issue(&scm_pki::ca::LeafRequest {
                dns_names: &names,
                subject: Default::default(),
                not_before: now,
                not_after: now + time::Duration::days(30),
                public_key: scm_pki::ca::LeafKey::Generated(&key),
            })
            .unwrap();
        let chain = issuer.certificate_pem().to_owned();
        Material {
            fullchain_pem: format!("{}{}", issued.certificate_pem, chain),
            leaf_pem: issued.certificate_pem,
            chain_pem: chain,
            key_pem: key.to_pem(),
            facts: CertificateFacts {
                certificate_id: "scs1700000000000".into(),
                version: 3,
                names: vec!["www.shop.test".into()],
                serial_hex: issued.serial_hex,
                sha256_fingerprint: "ab".repeat(32),
                not_after_ms: issued.not_after.unix_timestamp() * 1000,
            },
            context: DeliveryContext {
                target: "disk".into(),
                job_id: 7,
                attempt: 1,
            },
        }
    }

    fn spec(path: &Path, content: Content) -> FileSpec {
        FileSpec {
            path: path.to_owned(),
            content,
            mode: None,
            owner: None,
            group: None,
            password_file: None,
        }
    }

    pub(crate) fn config(files: Vec<FileSpec>) -> FilesConfig {
        FilesConfig {
            name: "disk".into(),
            account: String::new(),
            service: "ELB".into(),
            region: None,
            resource_id: None,
            verify: None,
            redeliver_on_drift: false,
            files,
            test_command: None,
            reload_command: None,
            timeout_seconds: Some(10),
        }
    }

    fn private_file(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    fn openssl(args: &[&str]) -> String {
        let out =
            std::process::Command::new(super::super::tests::require_binary("openssl", "openssl"))
                .args(args)
                .output()
                .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The base64 body of the first PEM block with `tag` in `text` (to compare what openssl
    /// printed with what was delivered, headers and bag attributes aside).
    fn pem_body(text: &str, tag: &str) -> String {
        let begin = format!("-----BEGIN {tag}-----");
        let end = format!("-----END {tag}-----");
        let from = text
            .find(&begin)
            .unwrap_or_else(|| panic!("no {tag} in {text}"));
        let rest = &text[from + begin.len()..];
        rest[..rest.find(&end).unwrap()]
            .split_whitespace()
            .collect()
    }

    #[tokio::test]
    async fn writes_every_content_from_a_real_certificate() {
        let d = tempfile::tempdir().unwrap();
        let d = d.path();
        let pass = d.join("p12.pass");
        private_file(&pass, "correct horse\n");
        let mut files = vec![
            spec(&d.join("fullchain.pem"), Content::Fullchain),
            spec(&d.join("key.pem"), Content::Key),
            spec(&d.join("leaf.pem"), Content::Leaf),
            spec(&d.join("chain.pem"), Content::Chain),
            spec(&d.join("combined.pem"), Content::Combined),
            spec(&d.join("site.p12"), Content::Pkcs12),
        ];
        files[0].mode = Some("0640".into());
        files[5].password_file = Some(pass.clone());
        let mut c = config(files);
        let record = d.join("reloaded");
        c.reload_command = Some(vec![
            "sh".into(),
            "-c".into(),
            format!(
                "echo \"$OPENSCM_FILE_PKCS12 $OPENSCM_VERSION\" > {}",
                record.display()
            ),
        ]);
        let t = FilesDeployer::new(&c).unwrap();
        let m = real_material();
        t.deliver(&m).await.unwrap();

        let read = |n: &str| std::fs::read_to_string(d.join(n)).unwrap();
        assert_eq!(read("fullchain.pem"), m.fullchain_pem);
        assert_eq!(read("leaf.pem"), m.leaf_pem);
        assert_eq!(read("chain.pem"), m.chain_pem);
        assert_eq!(read("key.pem"), *m.key_pem);
        assert_eq!(
            read("combined.pem"),
            format!("{}{}", *m.key_pem, m.fullchain_pem)
        );
        assert_eq!(
            read("reloaded"),
            format!("{} 3\n", d.join("site.p12").display())
        );
        for (name, want) in [
            ("fullchain.pem", 0o640),
            ("key.pem", 0o600),
            ("leaf.pem", 0o644),
            ("chain.pem", 0o644),
            ("combined.pem", 0o600),
            ("site.p12", 0o600),
        ] {
            assert_eq!(mode(&d.join(name)), want, "{name}");
        }

        // OpenSSL 3 reads the PKCS#12 back: the same leaf (and chain), the same key.
        let p12 = d.join("site.p12");
        let passin = format!("file:{}", pass.display());
        let certs = openssl(&[
            "pkcs12",
            "-in",
            p12.to_str().unwrap(),
            "-passin",
            &passin,
            "-nokeys",
            "-clcerts",
        ]);
        assert_eq!(
            pem_body(&certs, "CERTIFICATE"),
            pem_body(&m.leaf_pem, "CERTIFICATE"),
            "the leaf"
        );
        let cas = openssl(&[
            "pkcs12",
            "-in",
            p12.to_str().unwrap(),
            "-passin",
            &passin,
            "-nokeys",
            "-cacerts",
        ]);
        assert_eq!(
            pem_body(&cas, "CERTIFICATE"),
            pem_body(&m.chain_pem, "CERTIFICATE"),
            "the intermediate"
        );
        let key = openssl(&[
            "pkcs12",
            "-in",
            p12.to_str().unwrap(),
            "-passin",
            &passin,
            "-nocerts",
            "-nodes",
        ]);
        assert_eq!(
            pem_body(&key, "PRIVATE KEY"),
            pem_body(&m.key_pem, "PRIVATE KEY"),
            "the key"
        );
        // A wrong password is refused (the MAC is checked).
        let wrong = d.join("wrong.pass");
        private_file(&wrong, "battery staple");
        let out =
            std::process::Command::new(super::super::tests::require_binary("openssl", "openssl"))
                .args(["pkcs12", "-in", p12.to_str().unwrap(), "-nokeys"])
                .arg("-passin")
                .arg(format!("file:{}", wrong.display()))
                .output()
                .unwrap();
        assert!(!out.status.success(), "a wrong password was accepted");
    }

    #[tokio::test]
    async fn a_failing_test_puts_every_previous_file_back() {
        let d = tempfile::tempdir().unwrap();
        let d = d.path();
        let files = vec![
            spec(&d.join("fullchain.pem"), Content::Fullchain),
            spec(&d.join("key.pem"), Content::Key),
        ];
        let mut c = config(files);
        FilesDeployer::new(&c)
            .unwrap()
            .deliver(&crate::deploy::testing::material("v1"))
            .await
            .unwrap();
        c.test_command = Some(vec!["false".into()]);
        let e = FilesDeployer::new(&c)
            .unwrap()
            .deliver(&crate::deploy::testing::material("v2"))
            .await
            .unwrap_err();
        assert_eq!(e.kind, DeliveryErrorKind::Permanent, "{e}");
        assert_eq!(
            std::fs::read_to_string(d.join("fullchain.pem")).unwrap(),
            "chain v1"
        );
        assert_eq!(
            std::fs::read_to_string(d.join("key.pem")).unwrap(),
            "key v1"
        );
        // A write that fails midway (a missing directory) puts back the files before it.
        c.test_command = None;
        c.files
            .push(spec(&d.join("missing/leaf.pem"), Content::Leaf));
        let e = FilesDeployer::new(&c)
            .unwrap()
            .deliver(&crate::deploy::testing::material("v3"))
            .await
            .unwrap_err();
        assert_eq!(e.kind, DeliveryErrorKind::Misconfigured, "{e}");
        assert_eq!(
            std::fs::read_to_string(d.join("key.pem")).unwrap(),
            "key v1"
        );
        // Material a PKCS#12 cannot carry (not a key) is refused, nothing written.
        let pass = d.join("pass");
        private_file(&pass, "pw");
        let mut p12 = spec(&d.join("site.p12"), Content::Pkcs12);
        p12.password_file = Some(pass);
        let e = FilesDeployer::new(&config(vec![p12]))
            .unwrap()
            .deliver(&crate::deploy::testing::material("v4"))
            .await
            .unwrap_err();
        assert_eq!(e.kind, DeliveryErrorKind::Permanent, "{e}");
        assert!(!d.join("site.p12").exists());
    }

    #[tokio::test]
    async fn owner_and_group_are_applied_as_root_and_refused_otherwise() {
        let d = tempfile::tempdir().unwrap();
        let mut f = spec(&d.path().join("key.pem"), Content::Key);
        f.owner = Some(NameOrId::Name("65534".into()));
        f.group = Some(NameOrId::Id(65534));
        let c = config(vec![f]);
        let e = FilesDeployer::checked(&c, false).unwrap_err();
        assert!(e.starts_with("files[0].owner is set"), "{e}");
        if files_common::is_root() {
            FilesDeployer::new(&c)
                .unwrap()
                .deliver(&crate::deploy::testing::material("v1"))
                .await
                .unwrap();
            let meta = std::fs::metadata(d.path().join("key.pem")).unwrap();
            assert_eq!(
                (meta.uid(), meta.gid(), meta.mode() & 0o777),
                (65534, 65534, 0o600)
            );
            let mut named = spec(&d.path().join("k2.pem"), Content::Key);
            named.owner = Some(NameOrId::Name("root".into()));
            named.group = Some(NameOrId::Name("no-such-group-openscm".into()));
            let e = FilesDeployer::checked(&config(vec![named]), true).unwrap_err();
            assert!(
                e.contains("files[0].group") && e.contains("not a known group"),
                "{e}"
            );
        }
    }

    #[test]
    fn bad_configs_name_the_key() {
        let d = tempfile::tempdir().unwrap();
        let d = d.path();
        let refused =
            |files: Vec<FileSpec>| FilesDeployer::checked(&config(files), false).unwrap_err();
        assert!(refused(vec![]).contains("at least one"));
        let mut f = spec(&d.join("a.pem"), Content::Leaf);
        f.mode = Some("0999".into());
        let e = refused(vec![spec(&d.join("b.pem"), Content::Key), f.clone()]);
        assert!(e.starts_with("files[1].mode \"0999\""), "{e}");
        f.mode = Some("4755".into());
        assert!(refused(vec![f]).starts_with("files[0].mode"));
        let e = refused(vec![spec(Path::new("rel.pem"), Content::Key)]);
        assert!(e.starts_with("files[0].path"), "{e}");
        let e = refused(vec![
            spec(&d.join("a.pem"), Content::Key),
            spec(&d.join("a.pem"), Content::Leaf),
        ]);
        assert!(
            e.starts_with("files[1].path") && e.contains("files[0]"),
            "{e}"
        );
        let e = refused(vec![spec(&d.join("a.p12"), Content::Pkcs12)]);
        assert!(e.starts_with("files[0].password_file is required"), "{e}");
        let pass = d.join("p12.pass");
        std::fs::write(&pass, "pw").unwrap();
        std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut p12 = spec(&d.join("a.p12"), Content::Pkcs12);
        p12.password_file = Some(pass.clone());
        let e = refused(vec![p12.clone()]);
        assert!(
            e.starts_with("files[0].password_file") && e.contains("is readable by others"),
            "{e}"
        );
        private_file(&pass, "");
        assert!(refused(vec![p12.clone()]).contains("is empty"));
        p12.password_file = Some(d.join("missing.pass"));
        assert!(refused(vec![p12]).starts_with("files[0].password_file"));
        let mut leaf = spec(&d.join("a.pem"), Content::Leaf);
        leaf.password_file = Some(pass);
        assert!(refused(vec![leaf]).contains("only to content = \"pkcs12\""));
        let mut c = config(vec![spec(&d.join("a.pem"), Content::Leaf)]);
        c.timeout_seconds = Some(0);
        assert!(
            FilesDeployer::checked(&c, false)
                .unwrap_err()
                .contains("timeout_seconds")
        );
        c.timeout_seconds = None;
        c.reload_command = Some(vec![String::new()]);
        assert!(
            FilesDeployer::checked(&c, false)
                .unwrap_err()
                .contains("reload_command")
        );
        assert_eq!(parse_mode("644"), Some(0o644));
        assert_eq!(parse_mode("0600"), Some(0o600));
    }

    #[test]
    fn the_config_file_form_parses() {
        let c: crate::deploy::TargetConfig = toml::from_str(
            r#"kind = "files"
               name = "disk"
               account = "0123456789abcdef0123456789abcdef"
               service = "ELB"
               region = "r1"
               files = [
                 { path = "/etc/ssl/site/fullchain.pem", content = "fullchain", mode = "0644" },
                 { path = "/etc/ssl/site/key.pem", content = "key", owner = "www-data", group = 33 },
               ]
               reload_command = ["systemctl", "reload", "haproxy"]"#,
        )
        .unwrap();
        let crate::deploy::TargetConfig::Files(f) = &c else {
            panic!("{c:?}")
        };
        assert_eq!(f.files[1].group, Some(NameOrId::Id(33)));
        assert_eq!(c.files().len(), 2);
        let e = toml::from_str::<crate::deploy::TargetConfig>(
            "kind = \"files\"\nname = \"a\"\naccount = \"x\"\nservice = \"ELB\"\nfiles = [{ path = \"/a\", content = \"der\" }]\n",
        )
        .unwrap_err();
        assert!(e.message().contains("der"), "{}", e.message());
    }
}
