//! Which store a start opens, and the refusal of a data directory that looks like a mistake.
//!
//! The default data directory, `./openscm-data`, is relative: started from another directory,
//! `openscm server` would quietly bootstrap a second store there, with a new CA and new admin
//! credentials, while the real one sits unused. So every start says, with absolute paths, which
//! store it opened (see [`describe`]), a bootstrap says so in a banner, and before anything is
//! created a store-less location is checked against these rules; `openscm server` refuses to
//! bootstrap, and `openscm admin` (which never creates a store) says where the store probably is,
//! when:
//!
//! 1. **The config file names another store.** `--config` gives a file whose `data_dir`,
//!    `database_url` or `master_key_file` name a store that exists, while flags or `OPENSCM_*`
//!    variables point elsewhere, at a place that holds none (`--data-dir /tmp/x --config
//!    /etc/openscm/openscm.toml`).
//! 2. **The default directory, in the wrong place.** No flag, variable or config key named the
//!    data directory, `./openscm-data` holds no store, and an `openscm-data` holding one is in a
//!    parent of the working directory or in the home directory (the server was once started
//!    there, and now from a subdirectory or elsewhere).
//! 3. **Not a data directory.** The data directory exists, is not empty, and holds nothing of
//!    OpenSCM's (`--data-dir ~`, `--data-dir /etc/nginx`): its files would be mixed with a store's,
//!    and the directory was probably meant for something else. Hidden files, `lost+found` (a
//!    dedicated file system) and the files the configuration names (the config file itself, TLS
//!    certificate and key, database URL and metrics token files) do not count.
//!
//! A place "holds a store" when its SQLite database file is there and not empty, or its master
//! key file is there (a PostgreSQL store keeps only its master key and credentials.json in the
//! data directory). A fresh or empty data directory passes: the first start in an empty working
//! directory, a service's new state directory and the test suites' fresh `--data-dir` bootstrap as
//! before.
//!
//! `openscm server --init` (`OPENSCM_INIT=true`) bootstraps a new store where these rules would
//! refuse; on a location that holds a store already it changes nothing.

use std::path::{Path, PathBuf};

use crate::config::RuntimeConfig;

/// The files and directories OpenSCM keeps in a data directory.
const OUR_FILES: &[&str] = &[
    "openscm.db",
    "openscm.db-wal",
    "openscm.db-shm",
    "openscm.db-journal",
    "master.key",
    "credentials.json",
    crate::server::CA_ROOT_FILE,
    crate::server::HTTPS_ROOT_FILE,
    "locks",
];

/// Where a store's parts are (absolute paths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorePaths {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The SQLite database file (`None` for PostgreSQL or an in-memory database).
    pub sqlite: Option<PathBuf>,
    /// The master key file.
    pub master_key: PathBuf,
}

impl StorePaths {
    /// Whether a store is there: its SQLite file, not empty, or its master key file.
    pub fn holds_store(&self) -> bool {
        let db = self
            .sqlite
            .as_deref()
            .and_then(|p| std::fs::metadata(p).ok())
            .is_some_and(|m| m.is_file() && m.len() > 0);
        db || self.master_key.exists()
    }

    /// The paths of a store in `data_dir` with the default file names, absolute.
    pub fn default_in(data_dir: &Path) -> Self {
        let data_dir = absolute(data_dir);
        Self {
            sqlite: Some(data_dir.join("openscm.db")),
            master_key: data_dir.join("master.key"),
            data_dir,
        }
    }

    fn describe(&self) -> String {
        match &self.sqlite {
            Some(db) => format!(
                "data dir {}, database {}, master key {}",
                self.data_dir.display(),
                db.display(),
                self.master_key.display()
            ),
            None => format!(
                "data dir {}, master key {}",
                self.data_dir.display(),
                self.master_key.display()
            ),
        }
    }
}

/// `path` made absolute against the working directory (as it stands; nothing is resolved
/// through symbolic links, and the path need not exist).
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// How the store's location was chosen, for the rules of this module.
#[derive(Debug, Clone, Default)]
pub struct StoreOrigin {
    /// No flag, variable or config key named the data directory (`./openscm-data`).
    pub default_data_dir: bool,
    /// The config file, when one was given.
    pub config_file: Option<PathBuf>,
    /// The store the config file alone names, when it names one (a `data_dir`, `database_url`
    /// or `master_key_file`) and flags or variables override any of them.
    pub config_store: Option<StorePaths>,
    /// The files the configuration names (absolute): the config file, TLS certificate and key,
    /// database URL file, metrics token file. Kept in the data directory, they are no sign of a
    /// mistaken one.
    pub named_files: Vec<PathBuf>,
}

/// The store a resolved configuration opens.
pub fn paths_of(cfg: &RuntimeConfig) -> StorePaths {
    StorePaths {
        data_dir: absolute(&cfg.data_dir),
        sqlite: crate::server::sqlite_path(cfg.database_url.expose())
            .map(|p| absolute(Path::new(p))),
        master_key: absolute(&cfg.master_key_file),
    }
}

/// The line every start prints: the store opened, with absolute paths and the database URL
/// without its password.
pub fn describe(cfg: &RuntimeConfig) -> String {
    let paths = paths_of(cfg);
    let database = match &paths.sqlite {
        Some(db) => format!("SQLite {}", db.display()),
        None => cfg.database_url.redacted(),
    };
    format!(
        "data dir {}, database {database}, master key {}",
        paths.data_dir.display(),
        paths.master_key.display()
    )
}

/// Why a location looks like a mistake (one of the rules of this module), with what to do.
pub fn mistake(cfg: &RuntimeConfig) -> Option<String> {
    let here = paths_of(cfg);
    if here.holds_store() {
        return None;
    }
    if let (Some(file), Some(named)) = (&cfg.origin.config_file, &cfg.origin.config_store)
        && *named != here
        && named.holds_store()
    {
        return Some(format!(
            "the config file {} names the store at {}, but the flags or OPENSCM_* variables point \
             to {}, which holds no store",
            absolute(file).display(),
            named.describe(),
            here.describe()
        ));
    }
    if cfg.origin.default_data_dir
        && let Some(found) = store_nearby(&here.data_dir)
    {
        return Some(format!(
            "no store in {} (the default data directory, ./openscm-data, is relative to the \
             working directory), but {} holds one: start from {}, or name it with --data-dir {} \
             (OPENSCM_DATA_DIR, or data_dir in a config file)",
            here.data_dir.display(),
            found.display(),
            found.parent().unwrap_or(&found).display(),
            found.display()
        ));
    }
    if let Some(first) = foreign_entry(&here.data_dir, &cfg.origin.named_files) {
        return Some(format!(
            "the data directory {} is not empty ({first:?} is there) and holds nothing of \
             OpenSCM's: is it the directory you meant? A store's data directory is one of its \
             own (a new or empty one on first start)",
            here.data_dir.display()
        ));
    }
    None
}

/// An `openscm-data` holding a store in a parent of `data_dir`'s directory or in the home
/// directory (`data_dir` itself excluded).
fn store_nearby(data_dir: &Path) -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = data_dir
        .parent()
        .map(|wd| {
            wd.ancestors()
                .skip(1)
                .map(|a| a.join("openscm-data"))
                .collect()
        })
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        candidates.push(Path::new(&home).join("openscm-data"));
    }
    candidates
        .into_iter()
        .map(|c| absolute(&c))
        .find(|c| c != data_dir && StorePaths::default_in(c).holds_store())
}

/// When `dir` holds nothing of OpenSCM's, its first entry that is not hidden, not `lost+found`
/// and not one of `named` (files the configuration names); `None` when there is none, when
/// something of OpenSCM's is there (a data directory, whatever else it holds), or when there is
/// no directory.
fn foreign_entry(dir: &Path, named: &[PathBuf]) -> Option<String> {
    let entries: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    if entries.iter().any(|(n, _)| OUR_FILES.contains(&n.as_str())) {
        return None;
    }
    let mut names: Vec<String> = entries
        .into_iter()
        .filter(|(n, p)| !n.starts_with('.') && n != "lost+found" && !named.contains(&absolute(p)))
        .map(|(n, _)| n)
        .collect();
    names.sort();
    names.into_iter().next()
}

/// The refusal of `openscm server` for a mistaken location.
pub fn refusal(why: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "refusing to bootstrap a new store: {why}. Nothing was created. To make a new store \
         there on purpose, start with --init (OPENSCM_INIT=true)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_in(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("master.key"), "00").unwrap();
    }

    #[test]
    fn a_store_is_its_database_or_its_master_key() {
        let d = tempfile::tempdir().unwrap();
        let p = StorePaths::default_in(&d.path().join("data"));
        assert!(!p.holds_store());
        std::fs::create_dir_all(&p.data_dir).unwrap();
        std::fs::write(p.sqlite.as_ref().unwrap(), b"").unwrap();
        assert!(!p.holds_store(), "an empty database file is no store");
        std::fs::write(p.sqlite.as_ref().unwrap(), b"SQLite format 3").unwrap();
        assert!(p.holds_store());
        std::fs::remove_file(p.sqlite.as_ref().unwrap()).unwrap();
        std::fs::write(&p.master_key, b"00").unwrap();
        assert!(p.holds_store());
    }

    #[test]
    fn a_store_in_a_parent_or_home_is_found() {
        let d = tempfile::tempdir().unwrap();
        let top = d.path().join("project");
        store_in(&top.join("openscm-data"));
        let deep = top.join("a/b/openscm-data");
        assert_eq!(store_nearby(&deep), Some(top.join("openscm-data")));
        // Its own directory is not "nearby" (whatever the real home directory holds).
        let own = top.join("openscm-data");
        assert_ne!(store_nearby(&own), Some(own));
    }

    #[test]
    fn foreign_files_are_told_from_ours() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(foreign_entry(&d.path().join("missing"), &[]), None);
        for ignored in [".keep", "lost+found", "openscm.toml"] {
            std::fs::write(d.path().join(ignored), "").unwrap();
        }
        let named = [d.path().join("openscm.toml")];
        assert_eq!(foreign_entry(d.path(), &named), None);
        assert_eq!(
            foreign_entry(d.path(), &[]).as_deref(),
            Some("openscm.toml")
        );
        std::fs::write(d.path().join("nginx.conf"), "").unwrap();
        assert_eq!(
            foreign_entry(d.path(), &named).as_deref(),
            Some("nginx.conf")
        );
        // Anything of OpenSCM's (a PostgreSQL store's data directory with its master key moved
        // away) makes it a data directory, whatever else is there.
        std::fs::write(d.path().join("credentials.json"), "").unwrap();
        assert_eq!(foreign_entry(d.path(), &named), None);
    }
}
