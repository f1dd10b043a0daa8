//! The `exec` target: hand the certificate to a program of the operator's (a deploy hook), which
//! installs it wherever it must go.
//!
//! The files listed in `files` (as for the [`super::files`] kind) are written first, under the
//! lock of the first of them (in OpenSCM's lock directory); then `command` runs (argv, no shell) with at most
//! `timeout_seconds`. Without `files`, the full chain, key, leaf and chain are written into a
//! private directory (mode 0700, files 0600) that is removed when the command returns: the hook
//! must copy what it needs. (Without `files`, deliveries of one OpenSCM process are serialised,
//! but not those of several processes: list files to get the lock.)
//!
//! The command's environment: `OPENSCM_CERTIFICATE_ID`, `OPENSCM_VERSION`, `OPENSCM_NAMES`
//! (comma-separated), `OPENSCM_SERIAL` (hex), `OPENSCM_FINGERPRINT_SHA256` (hex of the leaf's
//! DER), `OPENSCM_NOT_AFTER` (RFC 3339), `OPENSCM_TARGET`, `OPENSCM_JOB_ID`, `OPENSCM_ATTEMPT`, and
//! `OPENSCM_FILE_<CONTENT>` (`OPENSCM_FILE_FULLCHAIN`, `OPENSCM_FILE_KEY`, ...) with the path of
//! each content written. The command must be idempotent: a delivery interrupted by a crash (or
//! retried after a failure) runs it again with the same certificate.
//!
//! How failures are classified for the job runner:
//! - exit status 0: delivered;
//! - the command cannot start, or a file cannot be written: **misconfigured**;
//! - any other exit status, or running past the time limit (the command and everything it
//!   started are killed): **transient**, retried with backoff.
//!
//! On failure the listed files are put back as they were.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use scm_core::deploy::{DeliveryError, Deployer, Material};

use super::command;
use super::files::{self, Content, FileOut, FileSpec};
use super::files_common::{self, file_failure};
use crate::fsutil::{self, FileError, Ownership};

crate::target_config! {
    /// An exec target as written in the config file (`kind = "exec"`).
    pub struct ExecConfig {
        /// The program and its arguments (no shell).
        pub command: Vec<String>,
        /// Files to write before running it (as for `kind = "files"`); none: a private
        /// temporary directory.
        #[serde(default)]
        pub files: Vec<FileSpec>,
        /// Seconds the command may run, and a delivery may wait for another (default 30).
        #[serde(default)]
        pub timeout_seconds: Option<u64>,
    }
}

/// Delivers by running a program.
#[derive(Debug)]
pub struct ExecDeployer {
    name: String,
    command: Vec<String>,
    files: Vec<FileOut>,
    timeout: Duration,
    /// Deliveries of this process, one at a time.
    local: tokio::sync::Mutex<()>,
}

impl ExecDeployer {
    /// Checks a configured target; the error names the key at fault.
    pub fn new(c: &ExecConfig) -> Result<Self, String> {
        Ok(Self {
            name: c.name.clone(),
            command: command::required_argv("command", &c.command)?,
            files: files::check_files(&c.files, files_common::is_root())?,
            timeout: command::timeout(c.timeout_seconds)?,
            local: tokio::sync::Mutex::new(()),
        })
    }

    async fn run(&self, env: &[(String, String)]) -> Result<(), DeliveryError> {
        command::run(&self.command, env, self.timeout)
            .await
            .map_err(|f| f.into_error("command", false))
    }

    /// Writes the listed files under their lock, runs the command, puts the files back if it
    /// fails.
    async fn with_files(&self, m: &Material, first: &FileOut) -> Result<(), DeliveryError> {
        let planned = self
            .files
            .iter()
            .map(|f| files::render(f, m))
            .collect::<Result<Vec<_>, _>>()?;
        let mut env = command::delivery_env(m, &self.name);
        env.extend(files::file_env(&self.files));
        let _lock = files_common::lock(&first.path, self.timeout).await?;
        let written = files_common::write_all(&planned).await?;
        if let Err(e) = self.run(&env).await {
            written.roll_back().await;
            return Err(e);
        }
        Ok(())
    }

    /// Writes the material into a private directory, runs the command, removes the directory.
    async fn in_private_dir(&self, m: &Material) -> Result<(), DeliveryError> {
        let dir = tempfile::Builder::new()
            .prefix("openscm-exec-")
            .tempdir()
            .map_err(|e| {
                file_failure(&FileError {
                    action: "cannot create a private directory in",
                    path: std::env::temp_dir(),
                    source: e,
                })
            })?;
        let outcome = async {
            use std::os::unix::fs::PermissionsExt;
            tokio::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
                .await
                .map_err(|e| {
                    file_failure(&FileError {
                        action: "cannot set the mode of",
                        path: dir.path().to_owned(),
                        source: e,
                    })
                })?;
            let mut outs = Vec::new();
            for (content, name) in [
                (Content::Fullchain, "fullchain.pem"),
                (Content::Key, "key.pem"),
                (Content::Leaf, "leaf.pem"),
                (Content::Chain, "chain.pem"),
            ] {
                let out = FileOut {
                    path: dir.path().join(name),
                    content,
                    mode: 0o600,
                    owner: Ownership::default(),
                    password_file: None,
                };
                let p = files::render(&out, m)?;
                fsutil::write_atomic(&p.path, &p.content, p.mode)
                    .await
                    .map_err(|e| file_failure(&e))?;
                outs.push(out);
            }
            let mut env = command::delivery_env(m, &self.name);
            env.extend(files::file_env(&outs));
            self.run(&env).await
        }
        .await;
        let path: PathBuf = dir.path().to_owned();
        if let Err(e) = dir.close() {
            tracing::error!(path = %path.display(), error = %e, "could not remove the exec target's private directory");
        }
        outcome
    }
}

#[async_trait]
impl Deployer for ExecDeployer {
    async fn deliver(&self, m: &Material) -> Result<(), DeliveryError> {
        let _local = self.local.lock().await;
        match self.files.first() {
            Some(first) => self.with_files(m, first).await?,
            None => self.in_private_dir(m).await?,
        }
        tracing::debug!(target = %self.name, "delivered through a command");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    use scm_core::deploy::DeliveryErrorKind;

    use super::*;

    fn config(command: Vec<String>, files: Vec<FileSpec>) -> ExecConfig {
        ExecConfig {
            name: "hook".into(),
            account: String::new(),
            service: "ELB".into(),
            region: None,
            resource_id: None,
            verify: None,
            redeliver_on_drift: false,
            command,
            files,
            timeout_seconds: Some(10),
        }
    }

    /// A real hook: records its environment and copies the files it is told about, failing when
    /// one is missing.
    fn hook(dir: &Path) -> PathBuf {
        let script = dir.join("deploy-hook");
        std::fs::write(
            &script,
            "#!/bin/sh\nset -e\nout=\"$1\"\nenv | grep '^OPENSCM_' | sort > \"$out/env\"\n\
             cat \"$OPENSCM_FILE_FULLCHAIN\" > \"$out/fullchain\"\n\
             cat \"$OPENSCM_FILE_KEY\" > \"$out/key\"\n\
             stat -c %a \"$(dirname \"$OPENSCM_FILE_KEY\")\" > \"$out/dirmode\"\n\
             exit \"${HOOK_EXIT:-0}\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        script
    }

    fn env_of(out: &Path) -> std::collections::BTreeMap<String, String> {
        std::fs::read_to_string(out.join("env"))
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[tokio::test]
    async fn runs_the_hook_with_the_delivery_in_its_environment_and_a_private_dir() {
        let d = tempfile::tempdir().unwrap();
        let script = hook(d.path());
        let out = d.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let argv = vec![script.display().to_string(), out.display().to_string()];
        let t = ExecDeployer::new(&config(argv, vec![])).unwrap();
        let m = super::super::files::tests::real_material();
        t.deliver(&m).await.unwrap();
        let env = env_of(&out);
        let get = |k: &str| {
            env.get(k)
                .map(String::as_str)
                .unwrap_or_else(|| panic!("{k} in {env:?}"))
        };
        assert_eq!(get("OPENSCM_CERTIFICATE_ID"), "scs1700000000000");
        assert_eq!(get("OPENSCM_VERSION"), "3");
        assert_eq!(get("OPENSCM_NAMES"), "www.shop.test");
        assert_eq!(get("OPENSCM_SERIAL"), m.facts.serial_hex);
        assert_eq!(
            get("OPENSCM_FINGERPRINT_SHA256"),
            m.facts.sha256_fingerprint
        );
        assert_eq!(
            get("OPENSCM_NOT_AFTER"),
            command::rfc3339_ms(m.facts.not_after_ms)
        );
        assert!(get("OPENSCM_NOT_AFTER").ends_with('Z'));
        assert_eq!(get("OPENSCM_TARGET"), "hook");
        assert_eq!(get("OPENSCM_JOB_ID"), "7");
        assert_eq!(get("OPENSCM_ATTEMPT"), "1");
        assert!(env.contains_key("OPENSCM_FILE_LEAF") && env.contains_key("OPENSCM_FILE_CHAIN"));
        assert_eq!(
            std::fs::read_to_string(out.join("fullchain")).unwrap(),
            m.fullchain_pem
        );
        assert_eq!(
            std::fs::read_to_string(out.join("key")).unwrap(),
            *m.key_pem
        );
        assert_eq!(
            std::fs::read_to_string(out.join("dirmode")).unwrap(),
            "700\n"
        );
        let private = Path::new(get("OPENSCM_FILE_KEY"))
            .parent()
            .unwrap()
            .to_owned();
        assert!(
            !private.exists(),
            "the private directory is removed after the command"
        );
    }

    #[tokio::test]
    async fn listed_files_are_written_first_and_put_back_when_the_hook_fails() {
        let d = tempfile::tempdir().unwrap();
        let script = hook(d.path());
        let out = d.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let site = d.path().join("site");
        std::fs::create_dir(&site).unwrap();
        let files = vec![
            FileSpec {
                path: site.join("fullchain.pem"),
                content: Content::Fullchain,
                mode: None,
                owner: None,
                group: None,
                password_file: None,
            },
            FileSpec {
                path: site.join("key.pem"),
                content: Content::Key,
                mode: None,
                owner: None,
                group: None,
                password_file: None,
            },
        ];
        let argv = vec![script.display().to_string(), out.display().to_string()];
        let t = ExecDeployer::new(&config(argv.clone(), files.clone())).unwrap();
        t.deliver(&crate::deploy::testing::material("v1"))
            .await
            .unwrap();
        let env = env_of(&out);
        assert_eq!(
            env["OPENSCM_FILE_KEY"],
            site.join("key.pem").display().to_string()
        );
        assert_eq!(std::fs::read_to_string(out.join("key")).unwrap(), "key v1");

        // A non-zero exit: transient, and the previous files are back.
        let failing = vec![
            "sh".into(),
            "-c".into(),
            format!("HOOK_EXIT=3 exec {} {}", argv[0], argv[1]),
        ];
        let e = ExecDeployer::new(&config(failing, files))
            .unwrap()
            .deliver(&crate::deploy::testing::material("v2"))
            .await
            .unwrap_err();
        assert_eq!(e.kind, DeliveryErrorKind::Transient, "{e}");
        assert!(e.message.contains("exited with status 3"), "{e}");
        assert_eq!(
            std::fs::read_to_string(out.join("key")).unwrap(),
            "key v2",
            "it ran"
        );
        assert_eq!(
            std::fs::read_to_string(site.join("key.pem")).unwrap(),
            "key v1"
        );
        assert_eq!(
            std::fs::read_to_string(site.join("fullchain.pem")).unwrap(),
            "chain v1"
        );
    }

    #[tokio::test]
    async fn timeouts_are_transient_and_programs_that_cannot_start_misconfigured() {
        let mut c = config(vec!["sleep".into(), "30".into()], vec![]);
        c.timeout_seconds = Some(1);
        let started = std::time::Instant::now();
        let e = ExecDeployer::new(&c)
            .unwrap()
            .deliver(&crate::deploy::testing::material("v1"))
            .await
            .unwrap_err();
        assert_eq!(e.kind, DeliveryErrorKind::Transient, "{e}");
        assert!(e.message.contains("timed out"), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        let c = config(vec!["/nonexistent/deploy-hook".into()], vec![]);
        let e = ExecDeployer::new(&c)
            .unwrap()
            .deliver(&crate::deploy::testing::material("v1"))
            .await
            .unwrap_err();
        assert_eq!(e.kind, DeliveryErrorKind::Misconfigured, "{e}");
        assert!(
            ExecDeployer::new(&config(vec![], vec![]))
                .unwrap_err()
                .contains("command")
        );
    }
}
