//! [`DnsName`]: the one set of rules for a DNS name a certificate may carry, used by the domain
//! to check applications and by the CA, which only ever signs names of this type.

use std::fmt;

/// Why a string is not a [`DnsName`]. The text is safe to show to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Nothing given.
    #[error("must not be empty")]
    Empty,
    /// Over 253 characters.
    #[error("{0:?} is longer than 253 characters")]
    TooLong(String),
    /// A single label, such as `localhost`.
    #[error("{0:?} is not a fully qualified domain name")]
    NotQualified(String),
    /// An empty label or one over 63 characters.
    #[error("{0:?} has an empty or over-long label")]
    BadLabel(String),
    /// A character outside letters, digits and `-`.
    #[error("{0:?} has characters not allowed in a domain name")]
    BadCharacter(String),
    /// A label that starts or ends with `-`.
    #[error("{0:?} has a label starting or ending with '-'")]
    BadHyphen(String),
    /// An all-numeric top-level label (an IP address, say).
    #[error("{0:?} is not a domain name")]
    NumericTld(String),
}

/// A fully qualified DNS name, lower-cased: at least two labels of letters, digits and `-`
/// (1..63 characters each, no leading or trailing `-`), at most 253 characters, a top-level label
/// that is not all digits, and optionally one leading `*.` wildcard label. IP addresses,
/// single-label names and underscores are not DNS names here. Internationalised names are given
/// in their ASCII (`xn--`) form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DnsName(String);

impl DnsName {
    /// Parses and lower-cases `s` (surrounding spaces ignored).
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let shown = || s.chars().take(80).collect::<String>();
        let lower = s.trim().to_ascii_lowercase();
        if lower.is_empty() {
            return Err(NameError::Empty);
        }
        if lower.len() > 253 {
            return Err(NameError::TooLong(shown()));
        }
        let base = lower.strip_prefix("*.").unwrap_or(&lower);
        let labels: Vec<&str> = base.split('.').collect();
        if labels.len() < 2 {
            return Err(NameError::NotQualified(shown()));
        }
        for label in &labels {
            if label.is_empty() || label.len() > 63 {
                return Err(NameError::BadLabel(shown()));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(NameError::BadCharacter(shown()));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(NameError::BadHyphen(shown()));
            }
        }
        if labels
            .last()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(NameError::NumericTld(shown()));
        }
        Ok(Self(lower))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a `*.` wildcard.
    pub fn is_wildcard(&self) -> bool {
        self.0.starts_with("*.")
    }

    /// The name without a wildcard label.
    pub fn base(&self) -> &str {
        self.0.strip_prefix("*.").unwrap_or(&self.0)
    }

    /// Whether the name is `suffix` or lies under it (`suffix` given as `.test` or `test`).
    pub fn is_under(&self, suffix: &str) -> bool {
        let suffix = suffix.trim().trim_start_matches('.').to_ascii_lowercase();
        if suffix.is_empty() {
            return false;
        }
        let base = self.base();
        base == suffix
            || base
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.ends_with('.'))
    }
}

impl TryFrom<&str> for DnsName {
    type Error = NameError;
    fn try_from(s: &str) -> Result<Self, NameError> {
        Self::parse(s)
    }
}

impl std::str::FromStr for DnsName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        Self::parse(s)
    }
}

impl fmt::Display for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DnsName({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        assert_eq!(
            DnsName::parse("WWW.Example.Test").unwrap().as_str(),
            "www.example.test"
        );
        assert!(DnsName::parse("*.a.test").unwrap().is_wildcard());
        assert!(DnsName::parse("xn--bcher-kva.test").is_ok());
        for bad in [
            "",
            "localhost",
            "a..test",
            "-a.test",
            "a-.test",
            "a_b.test",
            "_svc.a.test",
            "*.test",
            "a.*.test",
            "*",
            "1.2.3.4",
            "::1",
            "a b.test",
            "é.test",
            ".a.test",
            "a.test.",
        ] {
            assert!(DnsName::parse(bad).is_err(), "{bad}");
        }
        let long = format!("{}.test", "a".repeat(64));
        assert!(matches!(DnsName::parse(&long), Err(NameError::BadLabel(_))));
        let too_long = format!("{}.test", vec!["a".repeat(60); 5].join("."));
        assert!(matches!(
            DnsName::parse(&too_long),
            Err(NameError::TooLong(_))
        ));
    }

    #[test]
    fn suffixes() {
        let n = DnsName::parse("*.www.e2e.test").unwrap();
        assert!(n.is_under(".test"));
        assert!(n.is_under("e2e.test"));
        assert!(!n.is_under("2e.test"));
        assert!(!n.is_under(""));
        assert!(
            DnsName::parse("app.localhost")
                .unwrap()
                .is_under(".localhost")
        );
    }
}
