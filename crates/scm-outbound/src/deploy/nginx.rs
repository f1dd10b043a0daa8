//! The `nginx` target: write the chain and key next to their final paths, rename them into place
//! (atomic on one filesystem), optionally test, then reload. If anything fails the previous files
//! are put back, so the server keeps what it was serving.
//!
//! The commands run without a shell, with the delivery in their environment (`OPENSCM_CERTIFICATE_ID`,
//! `OPENSCM_VERSION`, `OPENSCM_NAMES`, `OPENSCM_SERIAL`, `OPENSCM_FINGERPRINT_SHA256`,
//! `OPENSCM_NOT_AFTER`, `OPENSCM_TARGET`, `OPENSCM_JOB_ID`, `OPENSCM_ATTEMPT`), for scripts that
//! log or notify. They must be idempotent: a delivery interrupted by a crash is delivered again.
//!
//! How failures are classified for the job runner:
//! - the files cannot be written, or a command cannot start: **misconfigured** (an operator must
//!   fix a path, a permission or a program name);
//! - the test command (`nginx -t`) refuses: **permanent** (this material is refused as it is);
//! - the reload command fails or a command times out, or another delivery holds the target:
//!   **transient** (a server that is restarting, busy or slow): retried with backoff.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use scm_core::deploy::{DeliveryError, Deployer, Material};
use zeroize::Zeroizing;

use super::command;
use super::files_common::{self, Install, Planned};
use crate::fsutil::Ownership;

crate::target_config! {
    /// An nginx target as written in the config file (`kind = "nginx"`).
    pub struct NginxConfig {
        /// Where the full chain (leaf + intermediates) is written.
        pub cert_path: PathBuf,
        /// Where the private key is written (mode 0600).
        pub key_path: PathBuf,
        /// Run after writing the files and before reloading (e.g. `nginx -t`).
        #[serde(default)]
        pub test_command: Option<Vec<String>>,
        /// Makes the server load the new files (e.g. `nginx -s reload`).
        pub reload_command: Vec<String>,
        /// Seconds each command may run, and a delivery may wait for another to finish (default 30).
        #[serde(default)]
        pub timeout_seconds: Option<u64>,
    }
}

/// Delivers to one nginx.
#[derive(Debug)]
pub struct NginxDeployer {
    name: String,
    cert_path: PathBuf,
    key_path: PathBuf,
    test_command: Option<Vec<String>>,
    reload_command: Vec<String>,
    timeout: Duration,
    /// Deliveries of this process to this target, one at a time (the lock file orders them
    /// across processes).
    local: tokio::sync::Mutex<()>,
}

impl NginxDeployer {
    /// Checks a configured target; the error names the key at fault.
    pub fn new(c: &NginxConfig) -> Result<Self, String> {
        if !c.cert_path.is_absolute() || !c.key_path.is_absolute() {
            return Err("cert_path and key_path must be absolute paths".into());
        }
        if c.cert_path == c.key_path {
            return Err("key_path must differ from cert_path (nginx reads two files)".into());
        }
        let reload_command = command::required_argv("reload_command", &c.reload_command)?;
        let test_command = command::optional_argv("test_command", c.test_command.as_ref())?;
        let timeout = command::timeout(c.timeout_seconds)?;
        Ok(Self {
            name: c.name.clone(),
            cert_path: c.cert_path.clone(),
            key_path: c.key_path.clone(),
            test_command,
            reload_command,
            timeout,
            local: tokio::sync::Mutex::new(()),
        })
    }
}

#[async_trait]
impl Deployer for NginxDeployer {
    async fn deliver(&self, m: &Material) -> Result<(), DeliveryError> {
        let _local = self.local.lock().await;
        let files = [
            Planned {
                path: self.cert_path.clone(),
                content: Zeroizing::new(m.fullchain_pem.as_bytes().to_vec()),
                mode: 0o644,
                owner: Ownership::default(),
            },
            Planned {
                path: self.key_path.clone(),
                content: Zeroizing::new(m.key_pem.as_bytes().to_vec()),
                mode: 0o600,
                owner: Ownership::default(),
            },
        ];
        let env = command::delivery_env(m, &self.name);
        files_common::install(&Install {
            lock_for: &self.cert_path,
            files: &files,
            test: self.test_command.as_deref(),
            reload: Some(&self.reload_command),
            env: &env,
            timeout: self.timeout,
        })
        .await?;
        tracing::debug!(target = %self.name, "delivered to nginx");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    use scm_core::deploy::DeliveryErrorKind;

    use super::*;

    fn target(d: &Path, reload: &[&str], test: Option<&[&str]>) -> NginxDeployer {
        NginxDeployer::new(&NginxConfig {
            name: "t".into(),
            account: String::new(),
            service: "ELB".into(),
            region: None,
            resource_id: None,
            verify: None,
            redeliver_on_drift: false,
            cert_path: d.join("live.crt"),
            key_path: d.join("live.key"),
            test_command: test.map(|t| t.iter().map(|s| s.to_string()).collect()),
            reload_command: reload.iter().map(|s| s.to_string()).collect(),
            timeout_seconds: Some(5),
        })
        .unwrap()
    }

    fn material(tag: &str) -> Material {
        crate::deploy::testing::material(tag)
    }

    #[tokio::test]
    async fn writes_files_with_modes_and_reloads() {
        let d = tempfile::tempdir().unwrap();
        let d = d.path();
        let marker = d.join("reloaded");
        let script = format!(
            "echo $OPENSCM_CERTIFICATE_ID $OPENSCM_JOB_ID $OPENSCM_ATTEMPT $OPENSCM_TARGET > {}",
            marker.display()
        );
        let t = target(d, &["sh", "-c", &script], Some(&["true"]));
        t.deliver(&material("v1")).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&marker).unwrap(),
            "scs1700000000000 7 2 t\n",
            "the commands are told which delivery this is"
        );
        assert_eq!(
            std::fs::read_to_string(d.join("live.crt")).unwrap(),
            "chain v1"
        );
        assert_eq!(
            std::fs::read_to_string(d.join("live.key")).unwrap(),
            "key v1"
        );
        assert_eq!(
            std::fs::metadata(d.join("live.key"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        assert!(marker.exists());
        // No temporary files are left behind, and no lock file (it is kept in the lock
        // directory): the certificate, the key and the reload's marker.
        assert_eq!(std::fs::read_dir(d).unwrap().count(), 3);
    }

    #[tokio::test]
    async fn failures_keep_the_old_files_and_say_whether_to_retry() {
        let d = tempfile::tempdir().unwrap();
        let d = d.path();
        target(d, &["true"], None)
            .deliver(&material("v1"))
            .await
            .unwrap();
        let e = target(d, &["false"], None)
            .deliver(&material("v2"))
            .await
            .unwrap_err();
        assert!(e.message.contains("exited with status 1"), "{e}");
        assert_eq!(
            e.kind,
            DeliveryErrorKind::Transient,
            "a reload may work later"
        );
        assert_eq!(
            std::fs::read_to_string(d.join("live.crt")).unwrap(),
            "chain v1"
        );
        assert_eq!(
            std::fs::read_to_string(d.join("live.key")).unwrap(),
            "key v1"
        );
        let e = target(d, &["true"], Some(&["false"]))
            .deliver(&material("v3"))
            .await
            .unwrap_err();
        assert!(e.message.contains("test command"), "{e}");
        assert_eq!(e.kind, DeliveryErrorKind::Permanent, "the test refused it");
        assert_eq!(
            std::fs::read_to_string(d.join("live.key")).unwrap(),
            "key v1"
        );
        let e = target(d, &["/nonexistent/reload"], None)
            .deliver(&material("v4"))
            .await
            .unwrap_err();
        assert!(e.message.contains("could not start"), "{e}");
        assert_eq!(e.kind, DeliveryErrorKind::Misconfigured);
        assert_eq!(std::fs::read_dir(d).unwrap().count(), 2);
        let mut unwritable = target(d, &["true"], None);
        unwritable.cert_path = d.join("no-such-dir/live.crt");
        let e = unwritable.deliver(&material("v5")).await.unwrap_err();
        assert_eq!(e.kind, DeliveryErrorKind::Misconfigured, "{e}");
    }

    #[tokio::test]
    async fn first_delivery_failure_leaves_no_files() {
        let d = tempfile::tempdir().unwrap();
        let d = d.path();
        target(d, &["false"], None)
            .deliver(&material("v1"))
            .await
            .unwrap_err();
        assert!(!d.join("live.crt").exists() && !d.join("live.key").exists());
        assert_eq!(
            std::fs::read_dir(d).unwrap().count(),
            0,
            "nothing, not even a lock file"
        );
    }

    #[tokio::test]
    async fn concurrent_deliveries_never_mix_a_certificate_with_another_key() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().to_owned();
        let mut tasks = Vec::new();
        for i in 0..8 {
            // Separate deployers, as two processes would have: only the file lock orders them.
            let t = target(&path, &["sh", "-c", "sleep 0.02"], None);
            tasks.push(tokio::spawn(async move {
                t.deliver(&material(&format!("v{i}"))).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let cert = std::fs::read_to_string(path.join("live.crt")).unwrap();
        let key = std::fs::read_to_string(path.join("live.key")).unwrap();
        assert_eq!(
            cert.trim_start_matches("chain "),
            key.trim_start_matches("key "),
            "a matching pair"
        );
    }

    #[tokio::test]
    async fn slow_commands_time_out_as_transient() {
        let d = tempfile::tempdir().unwrap();
        let mut t = target(d.path(), &["sleep", "5"], None);
        t.timeout = Duration::from_millis(200);
        let e = t.deliver(&material("v1")).await.unwrap_err();
        assert!(e.message.contains("timed out"), "{e}");
        assert_eq!(e.kind, DeliveryErrorKind::Transient);
    }

    #[test]
    fn bad_configs_are_named() {
        let mut c = NginxConfig {
            name: "t".into(),
            account: String::new(),
            service: "ELB".into(),
            region: None,
            resource_id: None,
            verify: None,
            redeliver_on_drift: false,
            cert_path: "/etc/nginx/a.crt".into(),
            key_path: "/etc/nginx/a.crt".into(),
            test_command: None,
            reload_command: vec!["nginx".into()],
            timeout_seconds: None,
        };
        assert!(NginxDeployer::new(&c).unwrap_err().contains("key_path"));
        c.key_path = "relative.key".into();
        assert!(NginxDeployer::new(&c).unwrap_err().contains("absolute"));
        c.key_path = "/etc/nginx/a.key".into();
        c.reload_command.clear();
        assert!(
            NginxDeployer::new(&c)
                .unwrap_err()
                .contains("reload_command")
        );
    }
}
