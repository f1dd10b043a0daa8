//! At-rest encryption of private keys under a master key (AES-256-GCM).
//!
//! Format of a sealed blob: `version (1 byte, = 1) || nonce (12 bytes) || ciphertext || tag (16 bytes)`.
//! The associated data (`aad`) is not stored; the caller passes the same value (for example
//! the certificate id) to [`MasterKey::seal`] and [`MasterKey::open`], which binds a sealed
//! key to its database row.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::PkiError;

/// Length of the master key in bytes (AES-256).
pub const MASTER_KEY_LEN: usize = 32;

/// Current sealed-blob format version.
const VERSION: u8 = 1;
/// AES-GCM tag length.
const TAG_LEN: usize = 16;
/// Hex characters in a master key file, not counting the newline.
const HEX_LEN: usize = MASTER_KEY_LEN * 2;
/// A valid file is 65 bytes; reading a little more lets us tell "too long" from "exact".
const MAX_FILE_READ: u64 = 128;

/// The 32-byte secret that encrypts private keys at rest.
///
/// The bytes are wiped from memory on drop and never printed (`Debug` is redacted).
#[derive(Clone)]
pub struct MasterKey {
    bytes: Zeroizing<[u8; MASTER_KEY_LEN]>,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    /// Generates a new random master key from the system CSPRNG.
    pub fn generate() -> Result<Self, PkiError> {
        let mut bytes = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        SystemRandom::new()
            .fill(bytes.as_mut())
            .map_err(|_| PkiError::Crypto("random master key"))?;
        Ok(Self { bytes })
    }

    /// Wraps existing key bytes (for example from a secret store).
    pub fn from_bytes(bytes: [u8; MASTER_KEY_LEN]) -> Self {
        Self {
            bytes: Zeroizing::new(bytes),
        }
    }

    /// Loads the master key from `path`; `None` when there is no such file (nothing is created).
    pub fn load(path: &Path) -> Result<Option<Self>, PkiError> {
        match File::open(path) {
            Ok(file) => Self::load_from(path, file).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(file_error(path, format!("cannot open: {e}"))),
        }
    }

    /// Loads the master key from `path`, or creates it there if the file does not exist.
    ///
    /// Returns the key and `true` when the file was created by this call.
    ///
    /// The file holds 64 lower-case hex characters and a newline. A new file is written to a
    /// temporary name with mode 0600, synced, then hard-linked into place so that a crash or a
    /// concurrent start never leaves a half-written key under `path` and never overwrites an
    /// existing one. The parent directory must already exist.
    ///
    /// Loading refuses (on Unix) a file whose mode grants any permission to group or others,
    /// and a file whose content is not exactly the expected format; the error names the path.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), PkiError> {
        match File::open(path) {
            Ok(file) => Ok((Self::load_from(path, file)?, false)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::create_at(path),
            Err(e) => Err(file_error(path, format!("cannot open: {e}"))),
        }
    }

    fn load_from(path: &Path, file: File) -> Result<Self, PkiError> {
        // Check the mode on the opened handle, not the path, so the file we check is the file we read.
        let meta = file
            .metadata()
            .map_err(|e| file_error(path, format!("cannot stat: {e}")))?;
        if !meta.is_file() {
            return Err(file_error(path, "not a regular file".to_owned()));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(file_error(
                    path,
                    format!(
                        "permissions {mode:04o} give access to group or others; \
                         run `chmod 600` on it"
                    ),
                ));
            }
        }
        // Capacity is reserved up front so `read_to_end` never reallocates and leaves an
        // unwiped copy of the secret behind.
        let mut content = Zeroizing::new(Vec::with_capacity(MAX_FILE_READ as usize + 1));
        file.take(MAX_FILE_READ)
            .read_to_end(&mut content)
            .map_err(|e| file_error(path, format!("cannot read: {e}")))?;
        let bad_content = || {
            file_error(
                path,
                "wrong content: expected 64 hex characters followed by a newline".to_owned(),
            )
        };
        let hex_part = content.strip_suffix(b"\n").unwrap_or(&content);
        let hex_part = hex_part.strip_suffix(b"\r").unwrap_or(hex_part);
        if hex_part.len() != HEX_LEN {
            return Err(bad_content());
        }
        let mut bytes = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        hex::decode_to_slice(hex_part, bytes.as_mut()).map_err(|_| bad_content())?;
        Ok(Self { bytes })
    }

    fn create_at(path: &Path) -> Result<(Self, bool), PkiError> {
        let key = Self::generate()?;
        let mut content = Zeroizing::new([0u8; HEX_LEN + 1]);
        let (hex_part, newline) = content.split_at_mut(HEX_LEN);
        hex::encode_to_slice(key.bytes.as_ref(), hex_part)
            .map_err(|_| PkiError::Crypto("hex-encode master key"))?;
        newline.fill(b'\n');

        let tmp = temp_path(path)?;
        write_new_file(&tmp, content.as_ref())
            .map_err(|e| file_error(path, format!("cannot create a new key file: {e}")))?;
        let placed = match std::fs::hard_link(&tmp, path) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                // Some filesystems have no hard links; exclusive create is still no-clobber.
                write_new_file(path, content.as_ref())
            }
            linked => linked,
        };
        let _ = std::fs::remove_file(&tmp);
        match placed {
            Ok(()) => {
                sync_parent_dir(path);
                Ok((key, true))
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // Another process created it first: use theirs, data may already be sealed with it.
                let file =
                    File::open(path).map_err(|e| file_error(path, format!("cannot open: {e}")))?;
                Ok((Self::load_from(path, file)?, false))
            }
            Err(e) => Err(file_error(path, format!("cannot create: {e}"))),
        }
    }

    fn aead_key(&self) -> Result<LessSafeKey, PkiError> {
        UnboundKey::new(&AES_256_GCM, self.bytes.as_ref())
            .map(LessSafeKey::new)
            .map_err(|_| PkiError::Crypto("AES-256-GCM key"))
    }

    /// Encrypts `plaintext`, binding it to `aad`.
    ///
    /// Output: version byte `1` || 12-byte random nonce || AES-256-GCM ciphertext and tag.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, PkiError> {
        let key = self.aead_key()?;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| PkiError::Seal)?;
        // Exact capacity: appending the tag must not reallocate and leave a stray plaintext copy.
        let mut body = Zeroizing::new(Vec::with_capacity(plaintext.len() + TAG_LEN));
        body.extend_from_slice(plaintext);
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut *body,
        )
        .map_err(|_| PkiError::Seal)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + body.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Decrypts a blob produced by [`MasterKey::seal`] with the same `aad`.
    ///
    /// Fails with [`PkiError::Open`] on a wrong key, wrong `aad`, unknown version, truncation
    /// or any modified byte.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, PkiError> {
        let (&version, rest) = sealed.split_first().ok_or(PkiError::Open)?;
        if version != VERSION || rest.len() < NONCE_LEN + TAG_LEN {
            return Err(PkiError::Open);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| PkiError::Open)?;
        let key = self.aead_key()?;
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let plain_len = key
            .open_in_place(nonce, Aad::from(aad), buf.as_mut_slice())
            .map_err(|_| PkiError::Open)?
            .len();
        buf.truncate(plain_len);
        Ok(buf)
    }
}

fn file_error(path: &Path, reason: String) -> PkiError {
    PkiError::MasterKeyFile {
        path: path.to_path_buf(),
        reason,
    }
}

/// A sibling of `path` that no one else will pick: pid plus random suffix.
fn temp_path(path: &Path) -> Result<PathBuf, PkiError> {
    let mut suffix = [0u8; 8];
    SystemRandom::new()
        .fill(&mut suffix)
        .map_err(|_| PkiError::Crypto("random temporary name"))?;
    let mut name = path
        .file_name()
        .ok_or_else(|| file_error(path, "path has no file name".to_owned()))?
        .to_os_string();
    name.push(format!(
        ".tmp.{}.{}",
        std::process::id(),
        hex::encode(suffix)
    ));
    Ok(path.with_file_name(name))
}

/// Exclusive-create `path` with mode 0600, write `content`, fsync. A file this call created
/// but could not complete is removed; an existing file is never touched.
fn write_new_file(path: &Path, content: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    let written = file.write_all(content).and_then(|()| file.sync_all());
    if written.is_err() {
        drop(file);
        let _ = std::fs::remove_file(path);
    }
    written
}

/// Makes the new directory entry durable; best effort because not every platform allows it.
fn sync_parent_dir(path: &Path) {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(dir) = File::open(parent) {
        let _ = dir.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TempDir;

    #[test]
    fn seal_open_roundtrip() {
        let key = MasterKey::generate().unwrap();
        let sealed = key.seal(b"secret key bytes", b"cert-1").unwrap();
        assert_eq!(sealed[0], 1);
        assert_eq!(sealed.len(), 1 + 12 + 16 + 16);
        let opened = key.open(&sealed, b"cert-1").unwrap();
        assert_eq!(opened.as_slice(), b"secret key bytes");
        // Fresh nonce each time.
        assert_ne!(sealed, key.seal(b"secret key bytes", b"cert-1").unwrap());
        // Empty plaintext works too.
        let empty = key.seal(b"", b"x").unwrap();
        assert!(key.open(&empty, b"x").unwrap().is_empty());
    }

    #[test]
    fn wrong_aad_fails() {
        let key = MasterKey::generate().unwrap();
        let sealed = key.seal(b"secret", b"cert-1").unwrap();
        assert!(matches!(key.open(&sealed, b"cert-2"), Err(PkiError::Open)));
        assert!(matches!(key.open(&sealed, b""), Err(PkiError::Open)));
    }

    #[test]
    fn wrong_key_fails() {
        let sealed = MasterKey::generate()
            .unwrap()
            .seal(b"secret", b"a")
            .unwrap();
        let other = MasterKey::generate().unwrap();
        assert!(matches!(other.open(&sealed, b"a"), Err(PkiError::Open)));
    }

    #[test]
    fn tampered_byte_fails() {
        let key = MasterKey::from_bytes([7u8; 32]);
        let sealed = key.seal(b"some secret", b"row").unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(
                matches!(key.open(&bad, b"row"), Err(PkiError::Open)),
                "byte {i}"
            );
        }
        assert!(matches!(
            key.open(&sealed[..sealed.len() - 1], b"row"),
            Err(PkiError::Open)
        ));
        assert!(matches!(key.open(&[], b"row"), Err(PkiError::Open)));
        assert!(matches!(key.open(&[1u8; 28], b"row"), Err(PkiError::Open)));
    }

    #[test]
    fn debug_is_redacted() {
        let key = MasterKey::from_bytes([0xab; 32]);
        let shown = format!("{key:?}");
        assert!(!shown.contains("ab"), "{shown}");
        assert!(!shown.contains("171"), "{shown}");
    }

    #[test]
    fn master_key_file_created_0600_and_reloaded() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("master-key");
        let path = dir.path().join("master.key");
        let (created_key, created) = MasterKey::load_or_create(&path).unwrap();
        assert!(created);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 65);
        assert!(text.ends_with('\n'));
        assert!(text[..64].bytes().all(|b| b.is_ascii_hexdigit()));
        // No temporary files left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        let (loaded_key, created) = MasterKey::load_or_create(&path).unwrap();
        assert!(!created);
        let sealed = created_key.seal(b"k", b"id").unwrap();
        assert_eq!(loaded_key.open(&sealed, b"id").unwrap().as_slice(), b"k");
    }

    #[test]
    fn master_key_file_with_loose_mode_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("master-key-mode");
        let path = dir.path().join("master.key");
        MasterKey::load_or_create(&path).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = MasterKey::load_or_create(&path).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, PkiError::MasterKeyFile { .. }), "{msg}");
            assert!(msg.contains(path.to_str().unwrap()), "{msg}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(!MasterKey::load_or_create(&path).unwrap().1);
    }

    #[test]
    fn master_key_file_with_wrong_content_is_refused() {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = TempDir::new("master-key-content");
        let path = dir.path().join("master.key");
        let valid = format!("{}\n", "0f".repeat(32));
        for content in [
            String::new(),
            "abc\n".to_owned(),
            format!("{}\n", "zz".repeat(32)),
            format!("{}\n", "0f".repeat(33)),
            format!("{}\n\n", "0f".repeat(32)),
            format!("{valid}{valid}"),
        ] {
            let _ = std::fs::remove_file(&path);
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .unwrap();
            f.write_all(content.as_bytes()).unwrap();
            drop(f);
            let err = MasterKey::load_or_create(&path).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("wrong content"), "{msg}");
            assert!(msg.contains(path.to_str().unwrap()), "{msg}");
            assert!(!msg.contains("0f0f"), "{msg}");
        }
        // The valid form (with or without the trailing newline) loads.
        std::fs::write(&path, &valid).unwrap();
        let (key, created) = MasterKey::load_or_create(&path).unwrap();
        assert!(!created);
        let sealed = MasterKey::from_bytes([0x0f; 32]).seal(b"x", b"y").unwrap();
        assert_eq!(key.open(&sealed, b"y").unwrap().as_slice(), b"x");
    }

    #[test]
    fn master_key_file_missing_directory_is_an_error() {
        let dir = TempDir::new("master-key-nodir");
        let path = dir.path().join("missing").join("master.key");
        let err = MasterKey::load_or_create(&path).unwrap_err();
        assert!(matches!(err, PkiError::MasterKeyFile { .. }));
    }
}
