//! The client's profile file, `~/.config/openscm/credentials.toml` (or `$OPENSCM_CLI_CONFIG`):
//! one TOML table per profile, in the style of the cloud CLIs, written with mode 0600.
//!
//! ```toml
//! [default]
//! endpoint = "http://127.0.0.1:8080"
//! access_key = "..."
//! secret_key = "..."
//! project_id = "..."
//! domain_id = "..."          # optional: sent as X-Domain-Id
//! ca_file = "/path/https-root.pem"  # optional: an extra root for HTTPS
//! ```
//!
//! What a command uses, per setting: its flag (`--endpoint`, `--profile`), else the environment
//! (`OPENSCM_ENDPOINT`, `OPENSCM_ACCESS_KEY`, `OPENSCM_SECRET_KEY`, `OPENSCM_PROJECT_ID`,
//! `OPENSCM_DOMAIN_ID`, `OPENSCM_CA_FILE`; `OPENSCM_PROFILE` names the profile), else the
//! profile's value.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use scm_client::{Credentials, SecretKey};
use serde::Deserialize;

use super::Failure;

/// The profile used when none is named.
pub const DEFAULT_PROFILE: &str = "default";

/// One profile's settings; every one may be missing (the environment may give it).
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// `http(s)://host[:port]`.
    pub endpoint: Option<String>,
    /// Access key (AK).
    pub access_key: Option<String>,
    /// Secret key (SK); redacted in `Debug`.
    #[serde(default, deserialize_with = "secret")]
    pub secret_key: Option<SecretKey>,
    /// Project id (v2 routes).
    pub project_id: Option<String>,
    /// Domain (account) id, sent as `X-Domain-Id` on v3 routes.
    pub domain_id: Option<String>,
    /// A PEM file of CA certificates to trust for HTTPS besides the platform's.
    pub ca_file: Option<PathBuf>,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("endpoint", &self.endpoint)
            .field("access_key", &self.access_key)
            .field("secret_key", &self.secret_key)
            .field("project_id", &self.project_id)
            .field("domain_id", &self.domain_id)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SecretKey>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(SecretKey::new))
}

/// The profiles of a file, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileFile {
    /// Profiles by name.
    pub profiles: BTreeMap<String, Profile>,
}

impl ProfileFile {
    /// Parses the file's text (unknown keys refused, naming the key).
    pub fn parse(text: &str) -> Result<Self, String> {
        let profiles: BTreeMap<String, Profile> =
            toml::from_str(text).map_err(|e| e.to_string())?;
        Ok(Self { profiles })
    }

    /// Reads `path`; a missing file is an empty one.
    pub fn load(path: &Path) -> Result<Self, Failure> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                Self::parse(&text).map_err(|e| Failure::Config(format!("{}: {e}", path.display())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(Failure::Config(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    /// The TOML text: a table per profile, keys in a fixed order.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# OpenSCM client profiles (`openscm configure`). Keep this file private (mode 0600).\n",
        );
        for (name, p) in &self.profiles {
            out.push_str(&format!("\n[{}]\n", toml_key(name)));
            let mut line = |key: &str, value: Option<&str>| {
                if let Some(v) = value {
                    out.push_str(&format!("{key} = {}\n", toml_string(v)));
                }
            };
            line("endpoint", p.endpoint.as_deref());
            line("access_key", p.access_key.as_deref());
            line("secret_key", p.secret_key.as_ref().map(SecretKey::expose));
            line("project_id", p.project_id.as_deref());
            line("domain_id", p.domain_id.as_deref());
            line("ca_file", p.ca_file.as_deref().and_then(|p| p.to_str()));
        }
        out
    }

    /// Writes the file with mode 0600 (made so before the secret is in it), through a temporary
    /// file renamed over the old one.
    pub fn save(&self, path: &Path) -> Result<(), Failure> {
        let fail = |what: &str, e: std::io::Error| {
            Failure::Config(format!("cannot {what} {}: {e}", path.display()))
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail("create the directory of", e))?;
        }
        let tmp = path.with_extension("toml.tmp");
        let mut file = open_private(&tmp).map_err(|e| fail("write", e))?;
        file.write_all(self.render().as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| fail("write", e))?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(|e| fail("write", e))
    }
}

/// Writes `content` to `path` with `mode` as a new file: it is created under a fresh name in the
/// same directory (`O_CREAT|O_EXCL`: never through a symbolic link or into an existing file),
/// synced, and renamed over `path` (which replaces a link planted at `path`, never what it points
/// to). A directory that others may write to is refused unless it is sticky (`/tmp`): there,
/// someone else could swap the file between its checks and its use.
pub fn write_new_file(path: &Path, content: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.to_owned(),
        None => PathBuf::from("."),
    };
    let dir_mode = std::fs::metadata(&dir)?.permissions().mode();
    if dir_mode & 0o002 != 0 && dir_mode & 0o1000 == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} is writable by others and not sticky (mode {:o}): write to a directory of \
                 your own",
                dir.display(),
                dir_mode & 0o7777
            ),
        ));
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = dir.join(format!(".{name}.{}-{stamp:09}.tmp", std::process::id()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have narrowed the mode at creation: set it exactly.
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.write_all(content)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Creates (truncates) a file only its owner can read.
pub fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An existing file keeps its mode through open(): set it.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

fn toml_key(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        name.to_owned()
    } else {
        toml_string(name)
    }
}

/// A TOML basic string: JSON's escapes are all valid TOML escapes.
fn toml_string(value: &str) -> String {
    serde_json::Value::String(value.to_owned()).to_string()
}

/// Where the profile file is: `$OPENSCM_CLI_CONFIG`, else
/// `$XDG_CONFIG_HOME/openscm/credentials.toml`, else `~/.config/openscm/credentials.toml`.
pub fn file_path(env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf, Failure> {
    if let Some(path) = env("OPENSCM_CLI_CONFIG").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let base = match env("XDG_CONFIG_HOME").filter(|p| !p.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match env("HOME").filter(|p| !p.is_empty()) {
            Some(home) => PathBuf::from(home).join(".config"),
            None => {
                return Err(Failure::Config(
                    "no HOME: say where the profile file is with OPENSCM_CLI_CONFIG".into(),
                ));
            }
        },
    };
    Ok(base.join("openscm").join("credentials.toml"))
}

/// Everything a client needs, resolved.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// `http(s)://host[:port]`.
    pub endpoint: String,
    /// The credential (with project and domain ids when known).
    pub credentials: Credentials,
    /// Extra CA roots for HTTPS.
    pub ca_file: Option<PathBuf>,
}

/// Resolves the settings of `profile` (flag, else `OPENSCM_PROFILE`, else `default`) from the
/// flags, the environment and the file. A setting missing everywhere is a config failure naming
/// where it can be given.
pub fn resolve(
    file: &ProfileFile,
    profile_flag: Option<&str>,
    endpoint_flag: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Resolved, Failure> {
    let env = |name: &str| env(name).filter(|v| !v.is_empty());
    let name = profile_flag
        .map(str::to_owned)
        .or_else(|| env("OPENSCM_PROFILE"))
        .unwrap_or_else(|| DEFAULT_PROFILE.to_owned());
    let named = profile_flag.is_some() || env("OPENSCM_PROFILE").is_some();
    let stored = file.profiles.get(&name);
    if stored.is_none() && named {
        return Err(Failure::Config(format!(
            "no profile {name:?} in the profile file: run `openscm configure --profile {name}`"
        )));
    }
    let stored = stored.cloned().unwrap_or_default();
    let missing = |what: &str, var: &str| {
        Failure::Config(format!(
            "no {what}: run `openscm configure{}` or set {var}",
            if name == DEFAULT_PROFILE {
                String::new()
            } else {
                format!(" --profile {name}")
            }
        ))
    };
    let endpoint = endpoint_flag
        .map(str::to_owned)
        .or_else(|| env("OPENSCM_ENDPOINT"))
        .or(stored.endpoint)
        .ok_or_else(|| missing("endpoint", "OPENSCM_ENDPOINT"))?;
    let access_key = env("OPENSCM_ACCESS_KEY")
        .or(stored.access_key)
        .ok_or_else(|| missing("access key", "OPENSCM_ACCESS_KEY"))?;
    let secret_key = env("OPENSCM_SECRET_KEY")
        .map(SecretKey::new)
        .or(stored.secret_key)
        .ok_or_else(|| missing("secret key", "OPENSCM_SECRET_KEY"))?;
    let credentials = Credentials {
        access_key,
        secret_key,
        domain_id: env("OPENSCM_DOMAIN_ID").or(stored.domain_id),
        project_id: env("OPENSCM_PROJECT_ID").or(stored.project_id),
    };
    Ok(Resolved {
        endpoint,
        credentials,
        ca_file: env("OPENSCM_CA_FILE").map(PathBuf::from).or(stored.ca_file),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_files_never_follow_a_planted_link_nor_land_in_an_open_directory() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        // A file of someone else's, and a link to it where the key will be written.
        let victim = d.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = d.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let key = out.join("site.key");
        std::os::unix::fs::symlink(&victim, &key).unwrap();
        write_new_file(&key, b"KEY", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let victim_mode = std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777;
        assert_eq!(victim_mode, 0o644, "the victim's mode changed");
        let meta = std::fs::symlink_metadata(&key).unwrap();
        assert!(
            meta.file_type().is_file(),
            "the link was replaced by a file"
        );
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "KEY");
        // A directory others may write to is refused, unless sticky.
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
        let refused = write_new_file(&out.join("other.key"), b"KEY", 0o600).unwrap_err();
        assert!(
            refused.to_string().contains("writable by others"),
            "{refused}"
        );
        assert!(!out.join("other.key").exists());
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o1777)).unwrap();
        write_new_file(&out.join("other.key"), b"KEY", 0o600).unwrap();
        // Nothing is left behind but the files written.
        let mut names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["other.key", "site.key"]);
    }

    const FILE: &str = r#"
[default]
endpoint = "http://127.0.0.1:8080"
access_key = "AKDEFAULT"
secret_key = "SKDEFAULT"
project_id = "p-default"

[staging]
endpoint = "https://scm.staging.test:8443"
access_key = "AKSTAGING"
secret_key = "SKSTAGING"
ca_file = "/etc/openscm/ca.pem"
"#;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn parses_profiles_and_refuses_unknown_keys() {
        let file = ProfileFile::parse(FILE).unwrap();
        assert_eq!(file.profiles.len(), 2);
        let staging = &file.profiles["staging"];
        assert_eq!(staging.access_key.as_deref(), Some("AKSTAGING"));
        assert_eq!(
            staging.ca_file.as_deref(),
            Some(Path::new("/etc/openscm/ca.pem"))
        );
        assert!(!format!("{file:?}").contains("SKSTAGING"));

        let err = ProfileFile::parse("[default]\nsecret = \"x\"\n").unwrap_err();
        assert!(err.contains("secret"), "{err}");
    }

    #[test]
    fn renders_what_it_parses() {
        let mut file = ProfileFile::parse(FILE).unwrap();
        file.profiles.insert(
            "odd name \"q\"".into(),
            Profile {
                endpoint: Some("http://x".into()),
                secret_key: Some(SecretKey::new("a\"b\\c".into())),
                ..Profile::default()
            },
        );
        let text = file.render();
        assert_eq!(ProfileFile::parse(&text).unwrap(), file);
    }

    #[test]
    fn flags_beat_the_environment_which_beats_the_file() {
        let file = ProfileFile::parse(FILE).unwrap();
        let r = resolve(&file, None, None, &no_env).unwrap();
        assert_eq!(r.endpoint, "http://127.0.0.1:8080");
        assert_eq!(r.credentials.access_key, "AKDEFAULT");
        assert_eq!(r.credentials.project_id.as_deref(), Some("p-default"));

        let env = |name: &str| match name {
            "OPENSCM_PROFILE" => Some("staging".to_owned()),
            "OPENSCM_ENDPOINT" => Some("http://env:1".to_owned()),
            "OPENSCM_SECRET_KEY" => Some("SKENV".to_owned()),
            _ => None,
        };
        let r = resolve(&file, None, None, &env).unwrap();
        assert_eq!(r.endpoint, "http://env:1");
        assert_eq!(r.credentials.access_key, "AKSTAGING");
        assert_eq!(r.credentials.secret_key.expose(), "SKENV");
        assert_eq!(r.ca_file.as_deref(), Some(Path::new("/etc/openscm/ca.pem")));

        // The flags win over both.
        let r = resolve(&file, Some("default"), Some("http://flag:2"), &env).unwrap();
        assert_eq!(r.endpoint, "http://flag:2");
        assert_eq!(r.credentials.access_key, "AKDEFAULT");
    }

    #[test]
    fn missing_settings_and_profiles_say_how_to_fix_them() {
        let file = ProfileFile::parse(FILE).unwrap();
        let err = resolve(&file, Some("prod"), None, &no_env).unwrap_err();
        assert!(
            err.to_string().contains("configure --profile prod"),
            "{err}"
        );
        let err = resolve(&ProfileFile::default(), None, None, &no_env).unwrap_err();
        assert!(err.to_string().contains("OPENSCM_ENDPOINT"), "{err}");
        // The environment alone is enough.
        let env = |name: &str| match name {
            "OPENSCM_ENDPOINT" => Some("http://e".to_owned()),
            "OPENSCM_ACCESS_KEY" => Some("AK".to_owned()),
            "OPENSCM_SECRET_KEY" => Some("SK".to_owned()),
            _ => None,
        };
        let r = resolve(&ProfileFile::default(), None, None, &env).unwrap();
        assert_eq!(r.credentials.access_key, "AK");
        assert_eq!(r.credentials.project_id, None);
    }

    #[test]
    fn the_file_path_follows_the_environment() {
        let env = |name: &str| match name {
            "HOME" => Some("/home/u".to_owned()),
            _ => None,
        };
        assert_eq!(
            file_path(&env).unwrap(),
            Path::new("/home/u/.config/openscm/credentials.toml")
        );
        let env = |name: &str| match name {
            "OPENSCM_CLI_CONFIG" => Some("/tmp/c.toml".to_owned()),
            "HOME" => Some("/home/u".to_owned()),
            _ => None,
        };
        assert_eq!(file_path(&env).unwrap(), Path::new("/tmp/c.toml"));
    }

    #[test]
    fn saved_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("credentials.toml");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let file = ProfileFile::parse(FILE).unwrap();
        file.save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(ProfileFile::load(&path).unwrap(), file);
    }
}
