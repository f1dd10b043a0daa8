//! [`DomainName`]: a DNS name a certificate may carry, normalised to lower case.

use std::fmt;

/// A fully qualified DNS name (at least two labels, LDH, ≤ 253 characters), optionally with one
/// leading `*.` wildcard label. IP addresses and single-label names are not domain names here.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainName(String);

impl DomainName {
    /// Parses and lower-cases `s`; the error says what is wrong.
    pub fn parse(s: &str) -> Result<Self, String> {
        let lower = s.trim().to_ascii_lowercase();
        if lower.is_empty() {
            return Err("must not be empty".into());
        }
        if lower.len() > 253 {
            return Err(format!("{s:?} is longer than 253 characters"));
        }
        let base = lower.strip_prefix("*.").unwrap_or(&lower);
        let labels: Vec<&str> = base.split('.').collect();
        if labels.len() < 2 {
            return Err(format!("{s:?} is not a fully qualified domain name"));
        }
        for label in &labels {
            if label.is_empty() || label.len() > 63 {
                return Err(format!("{s:?} has an empty or over-long label"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(format!("{s:?} has characters not allowed in a domain name"));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(format!("{s:?} has a label starting or ending with '-'"));
            }
        }
        if labels
            .last()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(format!("{s:?} is not a domain name"));
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
        base == suffix || base.ends_with(&format!(".{suffix}"))
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DomainName({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        assert_eq!(
            DomainName::parse("WWW.Example.Test").unwrap().as_str(),
            "www.example.test"
        );
        assert!(DomainName::parse("*.a.test").unwrap().is_wildcard());
        for bad in [
            "",
            "localhost",
            "a..test",
            "-a.test",
            "a-.test",
            "a_b.test",
            "*.test",
            "a.*.test",
            "1.2.3.4",
            "a b.test",
        ] {
            assert!(DomainName::parse(bad).is_err(), "{bad}");
        }
        let long = format!("{}.test", "a".repeat(64));
        assert!(DomainName::parse(&long).is_err());
    }

    #[test]
    fn suffixes() {
        let n = DomainName::parse("*.www.e2e.test").unwrap();
        assert!(n.is_under(".test"));
        assert!(n.is_under("e2e.test"));
        assert!(!n.is_under("2e.test"));
        assert!(!n.is_under(""));
        assert!(
            DomainName::parse("app.localhost")
                .unwrap()
                .is_under(".localhost")
        );
    }
}
