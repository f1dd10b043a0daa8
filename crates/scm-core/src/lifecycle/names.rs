//! The names a certificate may carry, beyond their syntax: the CA/Browser Forum rules the issuer
//! enforces before an application is stored (Baseline Requirements 3.2.2.6 for wildcards).
//!
//! The syntax (label characters and lengths, at least two labels, `*.` only as the whole
//! left-most label) is [`DnsName`]'s; a name reaches [`check_names`] already parsed, so `*.com`
//! and `*.test` (one label under the wildcard) never get this far. What is checked here:
//!
//! - a name may not itself be a public suffix (`co.uk`, `home.arpa`): nobody holds it;
//! - a wildcard may not stand directly under a public suffix (`*.co.uk`, `*.home.arpa`),
//!   while `*.example.co.uk` and `*.shop.test` are fine;
//! - a wildcard needs [`ValidationMethod::Dns`]: a file on one web server proves control of that
//!   host, not of every name under it.
//!
//! A public suffix is a suffix of the ICANN section of the Public Suffix List (the `psl` crate's
//! compiled-in copy; BR 3.2.2.6: "a CA SHOULD consult the ICANN DOMAINS section only, not the
//! PRIVATE DOMAINS section"), or one of [`RESERVED_SUFFIXES`]. The list's implicit `*` rule (any
//! unknown top-level label is a suffix) does not count: it would make every name under a
//! top-level domain the list does not know yet look like a suffix.

use scm_pki::DnsName;

use crate::DomainError;

/// How an applicant proves control of its names: the application's `domain_method`.
///
/// The form also accepts `EMAIL`, which OpenSCM does not check itself, so it has no variant:
/// [`ValidationMethod::from_form`] gives `None` for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValidationMethod {
    /// `DNS`: a TXT record at `_dnsauth.<name>`.
    Dns,
    /// `FILE`: a file at `http://<name>/.well-known/pki-validation/<file>`.
    File,
}

impl ValidationMethod {
    /// The method a form's `domain_method` names (`DNS` or `FILE`, as the form spells them);
    /// `None` for anything else (`EMAIL` included).
    pub fn from_form(domain_method: &str) -> Option<Self> {
        match domain_method {
            "DNS" => Some(Self::Dns),
            "FILE" => Some(Self::File),
            _ => None,
        }
    }

    /// The form's spelling: `DNS` or `FILE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dns => "DNS",
            Self::File => "FILE",
        }
    }
}

impl std::fmt::Display for ValidationMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Names reserved for special use, counted as public suffixes here although the Public Suffix
/// List does not list them all: no one can prove control of the whole of one, so neither it nor
/// a wildcard directly under it may be certified.
///
/// - `test`, `example`, `invalid`, `localhost`: RFC 2606 and RFC 6761;
/// - `local`: multicast DNS, RFC 6762 (the Baseline Requirements' own example, `*.local`);
/// - `internal`: reserved by ICANN for private networks (2024);
/// - `onion`: Tor onion services, RFC 7686;
/// - `arpa` and `home.arpa`: infrastructure (RFC 3172) and home networks (RFC 8375).
///
/// The one-label entries matter only to [`is_public_suffix`]: a name of one label, or a wildcard
/// over one, does not parse as a [`DnsName`]. `home.arpa` is where they bite (`*.home.arpa`).
pub const RESERVED_SUFFIXES: &[&str] = &[
    "test",
    "example",
    "invalid",
    "localhost",
    "local",
    "internal",
    "onion",
    "arpa",
    "home.arpa",
];

/// Whether `name` (lower case, no trailing dot, no `*.`) is a public suffix: listed in the ICANN
/// section of the Public Suffix List, or one of [`RESERVED_SUFFIXES`]. The list's implicit `*`
/// rule does not count, so an unknown top-level label is not a suffix here.
pub fn is_public_suffix(name: &str) -> bool {
    if RESERVED_SUFFIXES.contains(&name) {
        return true;
    }
    // `psl::suffix` gives the longest suffix of `name` the list matches; `name` is a suffix
    // itself when that match is all of it. `typ()` is `None` for the implicit `*` rule.
    psl::suffix(name.as_bytes()).is_some_and(|suffix| {
        suffix.typ() == Some(psl::Type::Icann) && suffix.as_bytes() == name.as_bytes()
    })
}

/// Whether an issuance policy may allow the special-use `suffix` as a whole: one of
/// [`RESERVED_SUFFIXES`] that names nobody's public domain, so allowing it (as the default policy
/// does, `.test;.internal;.localhost;.example`) lets an account certify lab and private names
/// without proving anything, and nothing of anyone else's. Not `onion` (Tor names are global
/// identities) nor `arpa` (reverse DNS of real addresses).
fn policy_special_use(suffix: &str) -> bool {
    RESERVED_SUFFIXES.contains(&suffix) && !matches!(suffix, "onion" | "arpa")
}

/// Whether an issuance policy may not allow `suffix` (lower case, without its leading dot): a
/// top-level label, listed or not (`com`, `zzz`), or a suffix of the Public Suffix List, ICANN or
/// PRIVATE section (`co.uk`, `github.io`): anyone can register a name under one, so allowing it
/// would issue, without validation, for other people's domains. Special-use names
/// ([`RESERVED_SUFFIXES`] but `onion` and `arpa`) are allowed.
pub fn too_broad_for_policy(suffix: &str) -> bool {
    if policy_special_use(suffix) {
        return false;
    }
    if !suffix.contains('.') {
        return true;
    }
    // `typ()` is `None` only for the implicit `*` rule (an unknown top-level label, which has no
    // dot and was refused above); a listed suffix equal to all of `suffix` is a registry's.
    psl::suffix(suffix.as_bytes())
        .is_some_and(|s| s.typ().is_some() && s.as_bytes() == suffix.as_bytes())
}

/// Checks the names of an application against the rules of this module (see the module
/// documentation). `names` are the form's names in order: the first is its `domain`, the others
/// its `sans` (as [`crate::application::ApplicationForm::names`] returns them), which decides the
/// field a refusal names.
///
/// # Errors
///
/// The first name that breaks a rule, with the name and the rule in the message:
/// - [`DomainError::InvalidParameter`] (field `domain` or `sans`) for a name that is a public
///   suffix itself, which is no name a certificate can be for (and for an empty list, as
///   `domain` is required);
/// - [`DomainError::DomainMismatch`] for what the issuance policy refuses: a wildcard directly
///   under a public suffix, a wildcard with [`ValidationMethod::File`].
pub fn check_names(names: &[DnsName], method: ValidationMethod) -> Result<(), DomainError> {
    if names.is_empty() {
        return Err(DomainError::invalid("domain", "is required"));
    }
    for (n, name) in names.iter().enumerate() {
        let field = if n == 0 { "domain" } else { "sans" };
        check_name(name, method, field)?;
    }
    Ok(())
}

fn check_name(name: &DnsName, method: ValidationMethod, field: &str) -> Result<(), DomainError> {
    let base = name.base();
    if is_public_suffix(base) {
        if name.is_wildcard() {
            return Err(DomainError::DomainMismatch(format!(
                "{name}: a wildcard may not stand directly under the public suffix {base}"
            )));
        }
        return Err(DomainError::invalid(
            field,
            format!("{name}: is a public suffix, not a domain name one can hold"),
        ));
    }
    if name.is_wildcard() && method == ValidationMethod::File {
        return Err(DomainError::DomainMismatch(format!(
            "{name}: a wildcard name can only be validated with DNS, not FILE"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ValidationMethod::{Dns, File};

    fn names(list: &[&str]) -> Vec<DnsName> {
        list.iter().map(|n| DnsName::parse(n).unwrap()).collect()
    }

    fn check(list: &[&str], method: ValidationMethod) -> Result<(), DomainError> {
        check_names(&names(list), method)
    }

    /// The message of a refusal, and whether it was an InvalidParameter (with its field) or a
    /// DomainMismatch.
    fn refusal(r: Result<(), DomainError>) -> (Option<String>, String) {
        match r {
            Err(DomainError::InvalidParameter { field, reason }) => (Some(field), reason),
            Err(DomainError::DomainMismatch(m)) => (None, m),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn policies_may_not_allow_a_registry_suffix() {
        for broad in [
            "com",
            "uk",
            "co.uk",
            "github.io",
            "zzzunlisted",
            "in-addr.arpa",
            "onion",
        ] {
            assert!(too_broad_for_policy(broad), "{broad}");
        }
        for fine in [
            "test",
            "example",
            "invalid",
            "localhost",
            "internal",
            "home.arpa",
            "example.com",
            "corp.example.co.uk",
            "shop.github.io",
        ] {
            assert!(!too_broad_for_policy(fine), "{fine}");
        }
    }

    #[test]
    fn ordinary_names_pass_with_either_method() {
        for method in [Dns, File] {
            check(
                &[
                    "www.shop.test",
                    "shop.test",
                    "example.co.uk",
                    "a.b.c.example.com",
                ],
                method,
            )
            .unwrap();
        }
    }

    #[test]
    fn wildcards_below_a_registrable_name_pass_with_dns() {
        check(
            &[
                "*.shop.test",
                "*.example.co.uk",
                "*.example.com",
                "*.www.example.com",
            ],
            Dns,
        )
        .unwrap();
    }

    #[test]
    fn a_wildcard_directly_under_a_public_suffix_is_a_mismatch_naming_name_and_suffix() {
        for (wild, suffix) in [
            ("*.co.uk", "co.uk"),
            ("*.com.cn", "com.cn"),
            ("*.home.arpa", "home.arpa"),
            ("*.in-addr.arpa", "in-addr.arpa"),
        ] {
            let (field, msg) = refusal(check(&[wild], Dns));
            assert_eq!(field, None, "{wild}: {msg}");
            assert!(msg.contains(wild), "{msg}");
            assert!(msg.contains(&format!("public suffix {suffix}")), "{msg}");
        }
    }

    /// `*.com` and `*.test` are refused by the parser already (one label under the wildcard),
    /// so they can never reach the policy.
    #[test]
    fn a_wildcard_over_one_label_never_parses() {
        for wild in ["*.com", "*.test", "*.uk", "*.local"] {
            assert!(DnsName::parse(wild).is_err(), "{wild}");
        }
    }

    #[test]
    fn a_wildcard_with_file_is_a_mismatch() {
        let (field, msg) = refusal(check(&["www.shop.test", "*.shop.test"], File));
        assert_eq!(field, None);
        assert!(msg.contains("*.shop.test"), "{msg}");
        assert!(msg.contains("DNS, not FILE"), "{msg}");
    }

    #[test]
    fn a_public_suffix_as_a_name_is_invalid_in_its_field() {
        let (field, msg) = refusal(check(&["co.uk"], Dns));
        assert_eq!(field.as_deref(), Some("domain"));
        assert!(msg.starts_with("co.uk: "), "{msg}");
        assert!(msg.contains("public suffix"), "{msg}");

        let (field, msg) = refusal(check(&["www.shop.test", "home.arpa"], File));
        assert_eq!(field.as_deref(), Some("sans"));
        assert!(msg.starts_with("home.arpa: "), "{msg}");
    }

    #[test]
    fn the_first_refusal_is_reported() {
        let (field, msg) = refusal(check(&["ok.example.com", "co.uk", "*.co.uk"], Dns));
        assert_eq!(field.as_deref(), Some("sans"));
        assert!(msg.starts_with("co.uk: "), "{msg}");
    }

    #[test]
    fn no_names_is_a_missing_domain() {
        let (field, _) = refusal(check_names(&[], Dns));
        assert_eq!(field.as_deref(), Some("domain"));
    }

    #[test]
    fn only_listed_icann_suffixes_and_reserved_names_are_public_suffixes() {
        for suffix in ["com", "uk", "co.uk", "com.cn", "arpa", "in-addr.arpa"] {
            assert!(is_public_suffix(suffix), "{suffix}");
        }
        for reserved in RESERVED_SUFFIXES {
            assert!(is_public_suffix(reserved), "{reserved}");
        }
        // The implicit `*` rule matches any unknown top-level label; it does not count.
        assert!(!is_public_suffix("zzzunlisted"));
        assert!(psl::suffix(b"zzzunlisted").is_some_and(|s| !s.is_known()));
        // Registrable names are not suffixes.
        for name in ["example.com", "example.co.uk", "shop.test", "foo.home.arpa"] {
            assert!(!is_public_suffix(name), "{name}");
        }
    }

    /// The list's wildcard and exception rules: `*.ck` makes every `<label>.ck` a suffix,
    /// `!www.ck` takes `www.ck` back out.
    #[test]
    fn wildcard_and_exception_rules_of_the_list_apply() {
        assert!(is_public_suffix("anything.ck"));
        assert!(!is_public_suffix("www.ck"));
        refusal(check(&["*.anything.ck"], Dns));
        check(&["*.www.ck", "*.example.anything.ck"], Dns).unwrap();
    }

    /// The PRIVATE section (hosting platforms such as `github.io`) is left out, as BR 3.2.2.6
    /// recommends: such a platform may certify its own wildcard.
    #[test]
    fn private_section_suffixes_do_not_count() {
        let github = psl::suffix(b"github.io").unwrap();
        assert_eq!(github.typ(), Some(psl::Type::Private));
        assert!(!is_public_suffix("github.io"));
        check(&["*.github.io"], Dns).unwrap();
    }

    #[test]
    fn methods_spell_as_the_form_does() {
        for m in [Dns, File] {
            assert_eq!(ValidationMethod::from_form(m.as_str()), Some(m));
            assert_eq!(m.to_string(), m.as_str());
        }
        assert_eq!(ValidationMethod::from_form("EMAIL"), None);
        assert_eq!(ValidationMethod::from_form("dns"), None);
    }
}
