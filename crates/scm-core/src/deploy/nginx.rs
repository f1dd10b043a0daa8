//! The `nginx` target: write the chain and key next to their final paths, rename them into place
//! (atomic on one filesystem), optionally test, then reload. If the test or the reload fails the
//! previous files are put back, so the server keeps what it was serving.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::Material;

/// Where and how to deliver to one nginx.
#[derive(Debug, Clone)]
pub struct NginxTarget {
    /// Full chain file.
    pub cert_path: PathBuf,
    /// Key file (written 0600).
    pub key_path: PathBuf,
    /// Optional check run before the reload.
    pub test_command: Option<Vec<String>>,
    /// Reload command.
    pub reload_command: Vec<String>,
    /// Limit per command.
    pub timeout: Duration,
}

/// A file's previous content, to restore on failure.
struct Backup {
    path: PathBuf,
    content: Option<Vec<u8>>,
    mode: u32,
}

impl NginxTarget {
    pub(crate) async fn deliver(&self, name: &str, m: &Material) -> Result<(), String> {
        // Several OpenSCM processes may deliver to one server: hold an exclusive lock on a file
        // beside the certificate for the whole write-test-reload-restore sequence, so that a
        // certificate of one push is never paired with the key of another.
        let _lock = lock_beside(&self.cert_path)
            .await
            .map_err(|e| format!("target {name}: {e}"))?;
        let backups = [
            backup(&self.cert_path, 0o644).await?,
            backup(&self.key_path, 0o600).await?,
        ];
        let placed = async {
            crate::files::write_atomic(&self.cert_path, m.fullchain_pem.as_bytes(), 0o644).await?;
            crate::files::write_atomic(&self.key_path, m.key_pem.as_bytes(), 0o600).await
        }
        .await;
        if let Err(e) = placed {
            restore(&backups).await;
            return Err(format!("target {name}: {e}"));
        }
        if let Some(test) = &self.test_command
            && let Err(e) = run(test, self.timeout).await
        {
            restore(&backups).await;
            return Err(format!(
                "target {name}: test command {e}; previous certificate kept"
            ));
        }
        if let Err(e) = run(&self.reload_command, self.timeout).await {
            restore(&backups).await;
            // Reload again so a server that did pick up the new files goes back to the old ones.
            let _ = run(&self.reload_command, self.timeout).await;
            return Err(format!(
                "target {name}: reload command {e}; previous certificate kept"
            ));
        }
        Ok(())
    }
}

/// Takes an exclusive advisory lock on `.<file>.openscm.lock` beside `path` (released on drop).
async fn lock_beside(path: &Path) -> Result<std::fs::File, String> {
    let dir = path
        .parent()
        .ok_or_else(|| format!("{} has no parent directory", path.display()))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let lock_path = dir.join(format!(".{name}.openscm.lock"));
    tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| {
                format!(
                    "cannot open lock file {}: {}",
                    lock_path.display(),
                    e.kind()
                )
            })?;
        file.lock()
            .map_err(|e| format!("cannot lock {}: {}", lock_path.display(), e.kind()))?;
        Ok(file)
    })
    .await
    .map_err(|e| format!("lock task: {e}"))?
}

async fn backup(path: &Path, default_mode: u32) -> Result<Backup, String> {
    use std::os::unix::fs::PermissionsExt;
    match tokio::fs::read(path).await {
        Ok(content) => {
            let mode = tokio::fs::metadata(path)
                .await
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(default_mode);
            Ok(Backup {
                path: path.to_owned(),
                content: Some(content),
                mode,
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Backup {
            path: path.to_owned(),
            content: None,
            mode: default_mode,
        }),
        Err(e) => Err(format!("cannot read {}: {}", path.display(), e.kind())),
    }
}

async fn restore(backups: &[Backup]) {
    for b in backups {
        let outcome = match &b.content {
            Some(c) => crate::files::write_atomic(&b.path, c, b.mode).await,
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

/// Runs `argv` (no shell) with a time limit; the error says how it failed, without its output,
/// which is logged instead.
async fn run(argv: &[String], limit: Duration) -> Result<(), String> {
    let (program, args) = argv.split_first().ok_or("is empty")?;
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{program:?} could not start ({})", e.kind()))?;
    let out = match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(format!("{program:?} failed ({})", e.kind())),
        Err(_) => return Err(format!("{program:?} timed out after {} s", limit.as_secs())),
    };
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: String = stderr
        .chars()
        .rev()
        .take(2000)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    tracing::warn!(program = %program, status = %out.status, stderr = %tail, "push command failed");
    Err(match out.status.code() {
        Some(code) => format!("{program:?} exited with status {code}"),
        None => format!("{program:?} was killed by a signal"),
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "openscm-nginx-{}",
            hex::encode(crate::random::bytes::<8>().unwrap())
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn target(d: &Path, reload: &[&str], test: Option<&[&str]>) -> NginxTarget {
        NginxTarget {
            cert_path: d.join("live.crt"),
            key_path: d.join("live.key"),
            test_command: test.map(|t| t.iter().map(|s| s.to_string()).collect()),
            reload_command: reload.iter().map(|s| s.to_string()).collect(),
            timeout: Duration::from_secs(5),
        }
    }

    fn material(tag: &str) -> Material {
        Material {
            fullchain_pem: format!("chain {tag}"),
            key_pem: Zeroizing::new(format!("key {tag}")),
        }
    }

    use zeroize::Zeroizing;

    #[tokio::test]
    async fn writes_files_with_modes_and_reloads() {
        let d = tempdir();
        let marker = d.join("reloaded");
        let t = target(&d, &["touch", marker.to_str().unwrap()], Some(&["true"]));
        t.deliver("t", &material("v1")).await.unwrap();
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
        // No temporary files are left behind (the lock file stays for the next push).
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 4);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[tokio::test]
    async fn failed_reload_or_test_keeps_the_old_files() {
        let d = tempdir();
        target(&d, &["true"], None)
            .deliver("t", &material("v1"))
            .await
            .unwrap();
        let e = target(&d, &["false"], None)
            .deliver("t", &material("v2"))
            .await
            .unwrap_err();
        assert!(e.contains("exited with status 1"), "{e}");
        assert_eq!(
            std::fs::read_to_string(d.join("live.crt")).unwrap(),
            "chain v1"
        );
        assert_eq!(
            std::fs::read_to_string(d.join("live.key")).unwrap(),
            "key v1"
        );
        let e = target(&d, &["true"], Some(&["false"]))
            .deliver("t", &material("v3"))
            .await
            .unwrap_err();
        assert!(e.contains("test command"), "{e}");
        assert_eq!(
            std::fs::read_to_string(d.join("live.key")).unwrap(),
            "key v1"
        );
        let e = target(&d, &["/nonexistent/reload"], None)
            .deliver("t", &material("v4"))
            .await
            .unwrap_err();
        assert!(e.contains("could not start"), "{e}");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 3);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[tokio::test]
    async fn first_delivery_failure_leaves_no_files() {
        let d = tempdir();
        target(&d, &["false"], None)
            .deliver("t", &material("v1"))
            .await
            .unwrap_err();
        assert!(!d.join("live.crt").exists() && !d.join("live.key").exists());
        assert_eq!(
            std::fs::read_dir(&d).unwrap().count(),
            1,
            "only the lock file"
        );
        std::fs::remove_dir_all(d).unwrap();
    }

    #[tokio::test]
    async fn concurrent_deliveries_never_mix_a_certificate_with_another_key() {
        let d = tempdir();
        let mut tasks = Vec::new();
        for i in 0..8 {
            // Separate target values, as two processes would have: only the file lock orders them.
            let t = target(&d, &["sh", "-c", "sleep 0.02"], None);
            tasks.push(tokio::spawn(async move {
                t.deliver("t", &material(&format!("v{i}"))).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let cert = std::fs::read_to_string(d.join("live.crt")).unwrap();
        let key = std::fs::read_to_string(d.join("live.key")).unwrap();
        assert_eq!(
            cert.trim_start_matches("chain "),
            key.trim_start_matches("key "),
            "a matching pair"
        );
        std::fs::remove_dir_all(d).unwrap();
    }

    #[tokio::test]
    async fn slow_commands_time_out() {
        let d = tempdir();
        let mut t = target(&d, &["sleep", "5"], None);
        t.timeout = Duration::from_millis(200);
        let e = t.deliver("t", &material("v1")).await.unwrap_err();
        assert!(e.contains("timed out"), "{e}");
        std::fs::remove_dir_all(d).unwrap();
    }
}
