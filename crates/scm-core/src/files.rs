//! Files that other programs read (certificates for web servers, credentials for operators)
//! are replaced atomically.

use std::path::Path;

use tokio::io::AsyncWriteExt;

/// Writes `content` to a temporary file beside `path` with `mode`, syncs it, and renames it over
/// `path`, so a reader sees either the old or the new file, never a partial one.
pub async fn write_atomic(path: &Path, content: &[u8], mode: u32) -> Result<(), String> {
    let dir = path
        .parent()
        .ok_or_else(|| format!("{} has no parent directory", path.display()))?;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let suffix = crate::random::bytes::<6>()
        .map(hex::encode)
        .map_err(|e| e.to_string())?;
    let tmp = dir.join(format!(".{file_name}.openscm-{suffix}"));
    let result = async {
        let mut f = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .await
            .map_err(|e| format!("cannot create a file in {}: {}", dir.display(), e.kind()))?;
        f.write_all(content)
            .await
            .map_err(|e| format!("cannot write {}: {}", tmp.display(), e.kind()))?;
        f.sync_all()
            .await
            .map_err(|e| format!("cannot sync {}: {}", tmp.display(), e.kind()))?;
        // The umask may have narrowed the mode at creation; set it exactly.
        tokio::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .await
            .map_err(|e| format!("cannot set mode on {}: {}", tmp.display(), e.kind()))?;
        tokio::fs::rename(&tmp, path)
            .await
            .map_err(|e| format!("cannot move into place {}: {}", path.display(), e.kind()))?;
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
