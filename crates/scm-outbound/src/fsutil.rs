//! Files other programs read (certificates for web servers, credentials for operators) are
//! replaced atomically; deliveries to one file are serialised across processes by a lock file
//! kept in a lock directory of OpenSCM's own (never beside the file);
//! secrets given as files are refused when others may read them.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use zeroize::Zeroizing;

/// A file operation that failed, with the path and the OS error kind (no contents).
#[derive(Debug, thiserror::Error)]
#[error("{action} {}: {}", path.display(), source.kind())]
pub struct FileError {
    /// What was being done (`cannot write`, ...).
    pub action: &'static str,
    /// The file.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: io::Error,
}

impl FileError {
    fn new(action: &'static str, path: &Path, source: io::Error) -> Self {
        Self {
            action,
            path: path.to_owned(),
            source,
        }
    }

    /// Whether an operator must act (permissions, a missing directory, a read-only or wrong
    /// file), as opposed to a passing condition (a full disk, an interrupted call).
    pub fn is_misconfiguration(&self) -> bool {
        matches!(
            self.source.kind(),
            io::ErrorKind::PermissionDenied
                | io::ErrorKind::NotFound
                | io::ErrorKind::ReadOnlyFilesystem
                | io::ErrorKind::IsADirectory
                | io::ErrorKind::NotADirectory
                | io::ErrorKind::InvalidInput
        )
    }
}

/// The directory holding `path`.
fn parent_of(path: &Path) -> Result<&Path, FileError> {
    path.parent().ok_or_else(|| {
        FileError::new(
            "no parent directory for",
            path,
            io::Error::from(io::ErrorKind::InvalidInput),
        )
    })
}

/// A random suffix for temporary names.
fn suffix() -> String {
    let mut b = [0u8; 6];
    // A failing system generator only makes a name collision (refused by create_new) likelier.
    let _ = aws_lc_rs::rand::SecureRandom::fill(&aws_lc_rs::rand::SystemRandom::new(), &mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Who a written file belongs to (`None`: left as created, i.e. to OpenSCM's user and group).
/// Giving a file away needs root.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ownership {
    /// The owning user id.
    pub uid: Option<u32>,
    /// The owning group id.
    pub gid: Option<u32>,
}

/// Writes `content` to a temporary file beside `path` with `mode`, syncs it, and renames it over
/// `path`, so a reader sees either the old or the new file, never a partial one.
pub async fn write_atomic(path: &Path, content: &[u8], mode: u32) -> Result<(), FileError> {
    write_atomic_owned(path, content, mode, Ownership::default()).await
}

/// [`write_atomic`], the file given to `owner` before it is moved into place (so it never
/// appears with the wrong owner).
pub async fn write_atomic_owned(
    path: &Path,
    content: &[u8],
    mode: u32,
    owner: Ownership,
) -> Result<(), FileError> {
    let dir = parent_of(path)?;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{file_name}.openscm-{}", suffix()));
    let result = async {
        let mut f = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .await
            .map_err(|e| FileError::new("cannot create a file in", dir, e))?;
        f.write_all(content)
            .await
            .map_err(|e| FileError::new("cannot write", &tmp, e))?;
        f.sync_all()
            .await
            .map_err(|e| FileError::new("cannot sync", &tmp, e))?;
        if owner != Ownership::default() {
            std::os::unix::fs::chown(&tmp, owner.uid, owner.gid)
                .map_err(|e| FileError::new("cannot change the owner of", &tmp, e))?;
        }
        // The umask may have narrowed the mode at creation; set it exactly (after chown, which
        // may clear bits).
        tokio::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .await
            .map_err(|e| FileError::new("cannot set the mode of", &tmp, e))?;
        tokio::fs::rename(&tmp, path)
            .await
            .map_err(|e| FileError::new("cannot move into place", path, e))?;
        if let Ok(d) = tokio::fs::File::open(dir).await {
            let _ = d.sync_all().await;
        }
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result
}

/// An exclusive advisory lock on a target file, held in a lock file of the lock directory
/// ([`set_lock_dir`]), released on drop.
#[derive(Debug)]
pub struct FileLock {
    _file: std::fs::File,
}

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The lock file cannot be opened.
    #[error(transparent)]
    File(#[from] FileError),
    /// Another holder kept it for longer than we could wait.
    #[error("{} is held by another delivery", .0.display())]
    Busy(PathBuf),
}

/// The lock directory, once set.
static LOCK_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Sets the directory of the delivery locks (the server: `<data_dir>/locks`, or `[delivery]
/// lock_dir`), creating it with mode 0700. Locks live there, not beside the files they guard:
/// the operator's directories (`/etc/nginx/ssl`) get nothing but the files delivered. Processes
/// that deliver to the same files must use the same directory (servers on one host sharing
/// targets: the same `lock_dir`). Set once per process: a later call with another directory is
/// refused (locks already taken would no longer exclude new ones).
pub fn set_lock_dir(dir: &Path) -> Result<(), FileError> {
    let dir = std::path::absolute(dir).map_err(|e| FileError::new("cannot resolve", dir, e))?;
    private_dir(&dir)?;
    match LOCK_DIR.get_or_init(|| dir.clone()) {
        set if *set == dir => Ok(()),
        set => Err(FileError::new(
            "the lock directory is set already, to another place than",
            &dir,
            io::Error::other(set.display().to_string()),
        )),
    }
}

/// The lock directory: the one set, else this user's under the temporary directory (a library
/// user or test that set none).
fn lock_dir() -> Result<PathBuf, FileError> {
    if let Some(dir) = LOCK_DIR.get() {
        return Ok(dir.clone());
    }
    let uid = rustix::process::geteuid().as_raw();
    let dir = std::env::temp_dir().join(format!("openscm-locks-{uid}"));
    private_dir(&dir)?;
    Ok(dir)
}

/// Creates `dir` (mode 0700) if missing; refuses one that another user owns or others may write
/// (in a shared temporary directory, someone else could hold every lock).
fn private_dir(dir: &Path) -> Result<(), FileError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(FileError::new("cannot create the lock directory", dir, e)),
    }
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| FileError::new("cannot stat the lock directory", dir, e))?;
    let uid = rustix::process::geteuid().as_raw();
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o022 != 0 {
        return Err(FileError::new(
            "the lock directory is not a directory of this user that only it may write",
            dir,
            io::Error::from(io::ErrorKind::PermissionDenied),
        ));
    }
    Ok(())
}

/// The lock file of `path`: in the lock directory, named after the SHA-256 of its absolute
/// path (one file per target file, whatever its name; nothing of it is left in the target's
/// directory).
pub fn lock_path_for(path: &Path) -> Result<PathBuf, FileError> {
    use std::os::unix::ffi::OsStrExt;
    let absolute =
        std::path::absolute(path).map_err(|e| FileError::new("cannot resolve", path, e))?;
    let digest =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, absolute.as_os_str().as_bytes());
    let name: String = digest
        .as_ref()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(lock_dir()?.join(format!("{name}.lock")))
}

/// Takes the lock of `path`, waiting up to `wait` for another holder (another OpenSCM process
/// delivering to the same server) to let go. Polls instead of blocking a thread, so a slow peer
/// cannot starve the blocking pool that key generation also uses. The lock file names the path
/// it guards, for an operator who looks.
pub async fn lock_for(path: &Path, wait: Duration) -> Result<FileLock, LockError> {
    use std::io::Write;
    let lock_path = lock_path_for(path)?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| FileError::new("cannot open the lock file", &lock_path, e))?;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => {
                // What it guards (best effort: the lock holds either way).
                let _ = file
                    .set_len(0)
                    .and_then(|()| writeln!(file, "{}", path.display()));
                return Ok(FileLock { _file: file });
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                if tokio::time::Instant::now() >= deadline {
                    return Err(LockError::Busy(lock_path));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(FileError::new("cannot lock", &lock_path, e).into());
            }
        }
    }
}

/// Reads a secret from a file, refusing one that group or others may read (the error says to
/// `chmod 600` it). Surrounding whitespace (a trailing newline) is dropped.
pub fn read_secret_file(path: &Path) -> Result<Zeroizing<String>, FileError> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let mut file = std::fs::File::open(path).map_err(|e| FileError::new("cannot open", path, e))?;
    // The mode of the handle we read, not of whatever the path names a moment later.
    let mode = file
        .metadata()
        .map_err(|e| FileError::new("cannot stat", path, e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(FileError::new(
            "group or others may read (run `chmod 600` on it)",
            path,
            io::Error::from(io::ErrorKind::PermissionDenied),
        ));
    }
    let mut text = Zeroizing::new(String::with_capacity(256));
    file.read_to_string(&mut text)
        .map_err(|e| FileError::new("cannot read", path, e))?;
    let trimmed = Zeroizing::new(text.trim().to_owned());
    Ok(trimmed)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[tokio::test]
    async fn atomic_writes_set_the_mode_and_leave_nothing_behind() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("site.key");
        write_atomic(&p, b"one", 0o600).await.unwrap();
        write_atomic(&p, b"two", 0o600).await.unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        let e = write_atomic(&d.path().join("missing/x"), b"x", 0o600)
            .await
            .unwrap_err();
        assert!(e.is_misconfiguration(), "{e}");
    }

    #[tokio::test]
    async fn a_held_lock_makes_others_wait_then_give_up() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("site.crt");
        let held = lock_for(&p, Duration::from_secs(1)).await.unwrap();
        let busy = lock_for(&p, Duration::from_millis(100)).await;
        assert!(matches!(busy, Err(LockError::Busy(_))), "{busy:?}");
        // Another file has a lock of its own.
        let other = lock_for(&d.path().join("site.key"), Duration::from_millis(100)).await;
        assert!(other.is_ok(), "{other:?}");
        drop(held);
        lock_for(&p, Duration::from_millis(100)).await.unwrap();
        // Nothing of it in the file's directory; the lock file names what it guards.
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
        let lock = lock_path_for(&p).unwrap();
        assert!(!lock.starts_with(d.path()), "{}", lock.display());
        assert_eq!(
            std::fs::read_to_string(&lock).unwrap().trim(),
            p.display().to_string()
        );
    }

    #[test]
    fn a_lock_directory_others_may_write_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let open = d.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(private_dir(&open).is_err());
        let fine = d.path().join("a/b/locks");
        private_dir(&fine).unwrap();
        let mode = std::fs::metadata(&fine).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn secret_files_must_be_private() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s");
        std::fs::write(&p, "hunter2\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_secret_file(&p).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_secret_file(&p).unwrap().as_str(), "hunter2");
    }
}
