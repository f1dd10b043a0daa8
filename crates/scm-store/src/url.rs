//! [`DatabaseUrl`]: the connection string, which may carry a password, as a secret.

use std::fmt;

use zeroize::Zeroizing;

use crate::{Backend, StoreError};

/// A database URL: `sqlite://PATH[?mode=rwc]` or `postgres[ql]://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=...]`.
///
/// It is wiped from memory on drop, and `Debug`/`Display` show it with the password replaced
/// (`postgres://openscm:***@db:5432/openscm`), so it can be logged and put in error messages.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    url: Zeroizing<String>,
    backend: Backend,
}

impl DatabaseUrl {
    /// Parses a URL; the error says what is wrong without repeating the URL.
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let url = url.trim();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::Config(
                "must start with sqlite:// or postgres://".into(),
            ));
        };
        Ok(Self {
            url: Zeroizing::new(url.to_owned()),
            backend,
        })
    }

    /// The SQLite database in `path` (created when missing).
    pub fn sqlite_file(path: &std::path::Path) -> Self {
        Self {
            url: Zeroizing::new(format!("sqlite://{}?mode=rwc", path.display())),
            backend: Backend::Sqlite,
        }
    }

    /// Which database the URL names.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL with its secret, for the database driver only.
    pub fn expose(&self) -> &str {
        &self.url
    }

    /// The URL with the password (if any) replaced by `***`.
    pub fn redacted(&self) -> String {
        let url: &str = &self.url;
        let Some((scheme, rest)) = url.split_once("://") else {
            return url.to_owned();
        };
        // The authority ends at the first '/', '?' or '#'; its user info at the last '@' in it.
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let mut out = format!("{scheme}://");
        match authority.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
                if userinfo.contains(':') {
                    out.push_str(&format!("{user}:***@{host}"));
                } else {
                    out.push_str(&format!("{user}@{host}"));
                }
            }
            None => out.push_str(authority),
        }
        // A password can also come as a query parameter (`?password=...`).
        match tail.split_once('?') {
            Some((path, query)) => {
                let query: Vec<String> = query
                    .split('&')
                    .map(|kv| match kv.split_once('=') {
                        Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                        _ => kv.to_owned(),
                    })
                    .collect();
                out.push_str(path);
                out.push('?');
                out.push_str(&query.join("&"));
            }
            None => out.push_str(tail),
        }
        out
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        for (url, shown) in [
            (
                "postgres://openscm:s3cr%40t@db.internal:5432/scm?sslmode=require",
                "postgres://openscm:***@db.internal:5432/scm?sslmode=require",
            ),
            (
                "postgresql://u@h/db?password=hunter2&sslmode=verify-full",
                "postgresql://u@h/db?password=***&sslmode=verify-full",
            ),
            ("postgres://u@h:1/db", "postgres://u@h:1/db"),
            (
                "sqlite:///var/lib/openscm/openscm.db?mode=rwc",
                "sqlite:///var/lib/openscm/openscm.db?mode=rwc",
            ),
        ] {
            let u = DatabaseUrl::parse(url).unwrap();
            assert_eq!(u.redacted(), shown);
            assert_eq!(format!("{u}"), shown);
            assert!(!format!("{u:?}").contains("hunter2") && !format!("{u:?}").contains("s3cr"));
            assert_eq!(u.expose(), url);
        }
        assert_eq!(
            DatabaseUrl::parse("postgres://x@h/d").unwrap().backend(),
            Backend::Postgres
        );
        assert!(DatabaseUrl::parse("mysql://x@h/d").is_err());
    }
}
