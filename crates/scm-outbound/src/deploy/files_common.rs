//! Writing a target's files as one change, for the kinds that write files (`nginx`, `files`,
//! `exec`): under a lock, each file replaced atomically, the previous contents kept so that a
//! failed write, test or reload puts them back.

use std::path::{Path, PathBuf};
use std::time::Duration;

use scm_core::deploy::DeliveryError;
use zeroize::Zeroizing;

use super::command;
use crate::fsutil::{self, FileError, FileLock, LockError, Ownership};

/// Whether OpenSCM runs as root (the only user that may give files away).
pub(crate) fn is_root() -> bool {
    rustix::process::geteuid().as_raw() == 0
}

/// A file that cannot be written or read: misconfigured when an operator must act (a path, a
/// permission), transient otherwise (a full disk).
pub(crate) fn file_failure(e: &FileError) -> DeliveryError {
    if e.is_misconfiguration() {
        DeliveryError::misconfigured(e.to_string())
    } else {
        DeliveryError::transient(e.to_string())
    }
}

/// Takes the lock of `path` (in the lock directory, see [`fsutil::set_lock_dir`]) for a whole
/// delivery. Several OpenSCM processes may deliver to
/// one server: holding it for the write-test-reload-restore sequence means the certificate of one
/// push is never paired with the key of another.
pub(crate) async fn lock(path: &Path, wait: Duration) -> Result<FileLock, DeliveryError> {
    fsutil::lock_for(path, wait).await.map_err(|e| match e {
        LockError::File(f) => file_failure(&f),
        LockError::Busy(_) => {
            DeliveryError::transient("another delivery to this target is in progress")
        }
    })
}

/// A file a delivery writes.
pub(crate) struct Planned {
    /// Where.
    pub path: PathBuf,
    /// What (may be key material: wiped on drop).
    pub content: Zeroizing<Vec<u8>>,
    /// Its mode.
    pub mode: u32,
    /// Its owner, if it is given away.
    pub owner: Ownership,
}

/// A file's previous content, to restore on failure (key material: wiped on drop).
struct Backup {
    path: PathBuf,
    content: Option<Zeroizing<Vec<u8>>>,
    mode: u32,
    owner: Ownership,
}

/// Files written in place, with what they replaced.
pub(crate) struct Written {
    backups: Vec<Backup>,
}

impl Written {
    /// Puts the previous files back (removing those that did not exist); a file that cannot be
    /// restored is logged, and the others are still restored.
    pub(crate) async fn roll_back(&self) {
        restore(&self.backups).await;
    }
}

/// Backs up every file of `files`, then writes them in order; if one cannot be written, the
/// ones before it are put back and the error says which file failed.
pub(crate) async fn write_all(files: &[Planned]) -> Result<Written, DeliveryError> {
    let mut backups = Vec::with_capacity(files.len());
    for f in files {
        backups.push(backup(&f.path, f.mode).await?);
    }
    for f in files {
        if let Err(e) = fsutil::write_atomic_owned(&f.path, &f.content, f.mode, f.owner).await {
            restore(&backups).await;
            return Err(file_failure(&e));
        }
    }
    Ok(Written { backups })
}

/// What a files-and-commands delivery does, in order.
pub(crate) struct Install<'a> {
    /// The lock taken is this file's.
    pub lock_for: &'a Path,
    /// The files, written in this order.
    pub files: &'a [Planned],
    /// Run after writing; its failure refuses the material.
    pub test: Option<&'a [String]>,
    /// Run after the test; its failure may pass. After restoring the old files it is run again,
    /// so a server that did pick up the new files goes back to the old ones.
    pub reload: Option<&'a [String]>,
    /// The commands' environment.
    pub env: &'a [(String, String)],
    /// Each command's time limit, and the longest wait for the lock.
    pub timeout: Duration,
}

/// Locks, writes, tests, reloads; on any failure the previous files are back in place.
pub(crate) async fn install(i: &Install<'_>) -> Result<(), DeliveryError> {
    let _lock = lock(i.lock_for, i.timeout).await?;
    let written = write_all(i.files).await?;
    if let Some(test) = i.test
        && let Err(failure) = command::run(test, i.env, i.timeout).await
    {
        written.roll_back().await;
        return Err(failure.into_error("test command", true));
    }
    if let Some(reload) = i.reload
        && let Err(failure) = command::run(reload, i.env, i.timeout).await
    {
        written.roll_back().await;
        let _ = command::run(reload, i.env, i.timeout).await;
        return Err(failure.into_error("reload command", false));
    }
    Ok(())
}

async fn backup(path: &Path, default_mode: u32) -> Result<Backup, DeliveryError> {
    use std::os::unix::fs::MetadataExt;
    match tokio::fs::read(path).await {
        Ok(content) => {
            let meta = tokio::fs::metadata(path).await.ok();
            let mode = meta.as_ref().map_or(default_mode, |m| m.mode() & 0o777);
            // Only root can give a restored file back to its owner; anyone else restores it as
            // their own, as they wrote it.
            let owner = match meta {
                Some(m) if is_root() => Ownership {
                    uid: Some(m.uid()),
                    gid: Some(m.gid()),
                },
                _ => Ownership::default(),
            };
            Ok(Backup {
                path: path.to_owned(),
                content: Some(Zeroizing::new(content)),
                mode,
                owner,
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Backup {
            path: path.to_owned(),
            content: None,
            mode: default_mode,
            owner: Ownership::default(),
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
            Some(c) => fsutil::write_atomic_owned(&b.path, c, b.mode, b.owner)
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
