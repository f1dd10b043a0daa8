//! An `acme` issuer as written in the config file (`[[issuers]]`), and the checks that turn it
//! into the domain's [`AcmeCa`] without contacting the CA.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use data_encoding::BASE64URL_NOPAD as URL_SAFE_NO_PAD;
use scm_core::issuers::acme::{AcmeCa, ChallengeKind};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::client::{AcmeClient, Eab};
use super::http::Transport;
use crate::dns::update::Dns01Config;
use crate::fsutil::read_secret_file;

/// One ACME certificate authority, e.g.
///
/// ```toml
/// [[issuers]]
/// name = "letsencrypt"
/// kind = "acme"
/// directory_url = "https://acme-v02.api.letsencrypt.org/directory"
/// contact = "mailto:ops@shop.test"
/// challenges = ["http-01", "dns-01"]
/// ```
///
/// Every key but `name`, `kind` and `directory_url` is optional; the defaults are on the fields.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeIssuerConfig {
    /// The issuer's name (`[brands]` lists name it).
    pub name: String,
    /// Must be `acme`.
    pub kind: String,
    /// The CA's directory, an `https://` URL.
    pub directory_url: String,
    /// The account's contact, a `mailto:` URL (e.g. `mailto:ops@shop.test`); none when absent.
    #[serde(default)]
    pub contact: Option<String>,
    /// A PEM file of CA certificates trusted for reaching the CA, on top of the machine's
    /// roots (a private or test CA). Public: any mode.
    #[serde(default)]
    pub trust_roots_file: Option<PathBuf>,
    /// External Account Binding: the key id the CA gave (needs `eab_hmac_key_file`).
    #[serde(default)]
    pub eab_kid: Option<String>,
    /// External Account Binding: a file holding the MAC key as the CA gave it (base64url),
    /// readable by its owner only (needs `eab_kid`).
    #[serde(default)]
    pub eab_hmac_key_file: Option<PathBuf>,
    /// The ACME profile to order (draft-aaron-acme-profiles), when the CA offers profiles.
    #[serde(default)]
    pub profile: Option<String>,
    /// The challenge types to use, in order of preference (default `["http-01", "dns-01"]`).
    #[serde(default = "default_challenges")]
    pub challenges: Vec<String>,
    /// Automatic dns-01 (TXT records by RFC 2136); absent: dns-01 records are shown to the
    /// user, who publishes them.
    #[serde(default)]
    pub dns01: Option<Dns01Config>,
    /// At most this many new orders per window, over every server sharing the store (default
    /// 100).
    #[serde(default = "default_max_orders")]
    pub max_orders: u32,
    /// The window `max_orders` counts over, in minutes (default 180).
    #[serde(default = "default_window_minutes")]
    pub max_orders_window_minutes: u64,
    /// The most names one certificate may carry at this CA (default 100).
    #[serde(default = "default_max_names")]
    pub max_names: usize,
    /// How long one HTTP request to the CA may take, in seconds (default 30).
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
}

fn default_challenges() -> Vec<String> {
    vec!["http-01".into(), "dns-01".into()]
}

fn default_max_orders() -> u32 {
    100
}

fn default_window_minutes() -> u64 {
    180
}

fn default_max_names() -> usize {
    100
}

fn default_timeout_seconds() -> u64 {
    30
}

impl AcmeIssuerConfig {
    /// The configured challenge types, in order; an unknown, repeated or missing one is an error
    /// naming the key (`challenges: ...`; the caller names the issuer, as [`acme_ca`] does).
    pub fn challenge_kinds(&self) -> Result<Vec<ChallengeKind>, String> {
        if self.challenges.is_empty() {
            return Err("challenges: needs at least one of \"http-01\", \"dns-01\"".into());
        }
        let mut kinds = Vec::with_capacity(self.challenges.len());
        for text in &self.challenges {
            let kind = ChallengeKind::parse(text).ok_or_else(|| {
                format!("challenges: {text:?} is not one of \"http-01\", \"dns-01\"")
            })?;
            if kinds.contains(&kind) {
                return Err(format!("challenges: {text:?} is listed twice"));
            }
            kinds.push(kind);
        }
        Ok(kinds)
    }

    /// The window `max_orders` counts over.
    pub fn order_window(&self) -> Duration {
        Duration::from_secs(self.max_orders_window_minutes.saturating_mul(60))
    }
}

/// Checks a configured `acme` issuer, reads its files (trust roots, EAB key) and builds its
/// [`AcmeCa`]. The CA is not contacted: its directory is fetched on first use, so a CA that is
/// down does not stop the server from starting. The error names the issuer and the key at fault
/// (`issuers "pebble": eab_hmac_key_file: ...`), never a secret.
pub fn acme_ca(c: &AcmeIssuerConfig) -> Result<Arc<dyn AcmeCa>, String> {
    let name = &c.name;
    if name.trim().is_empty() {
        return Err("issuers: name must not be empty".into());
    }
    let at = |e: String| format!("issuers \"{name}\": {e}");
    if c.kind != "acme" {
        return Err(at(format!("kind: must be \"acme\", not {:?}", c.kind)));
    }
    check_directory_url(&c.directory_url).map_err(|e| at(format!("directory_url: {e}")))?;
    if let Some(contact) = &c.contact {
        check_contact(contact).map_err(|e| at(format!("contact: {e}")))?;
    }
    c.challenge_kinds().map_err(at)?;
    if let Some(profile) = &c.profile
        && profile.trim().is_empty()
    {
        return Err(at(
            "profile: must not be empty (leave it out instead)".into()
        ));
    }
    for (key, value) in [
        ("max_orders", u64::from(c.max_orders)),
        ("max_orders_window_minutes", c.max_orders_window_minutes),
        ("max_names", u64::try_from(c.max_names).unwrap_or(u64::MAX)),
        ("timeout_seconds", c.timeout_seconds),
    ] {
        if value == 0 {
            return Err(at(format!("{key}: must be at least 1")));
        }
    }
    let eab = external_account(c).map_err(at)?;
    let roots = match &c.trust_roots_file {
        Some(path) => trust_roots(path).map_err(|e| at(format!("trust_roots_file: {e}")))?,
        None => Vec::new(),
    };
    let transport = Transport::new(roots, Duration::from_secs(c.timeout_seconds))
        .map_err(|e| at(format!("trust_roots_file: {e}")))?;
    Ok(Arc::new(AcmeClient::new(
        name.clone(),
        c.directory_url.clone(),
        c.contact.clone(),
        eab,
        c.profile.clone(),
        transport,
    )))
}

/// ACME is spoken over HTTPS only (RFC 8555 §6.1).
fn check_directory_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if parsed.scheme() != "https" {
        return Err(format!(
            "{url:?} must be an https:// URL (ACME is spoken over HTTPS)"
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("{url:?} has no host"));
    }
    Ok(())
}

/// A `mailto:` URL with one address: what CAs accept (Let's Encrypt refuses other schemes).
fn check_contact(contact: &str) -> Result<(), String> {
    let Some(address) = contact.strip_prefix("mailto:") else {
        return Err(format!(
            "{contact:?} must be a mailto: URL, e.g. \"mailto:ops@example.com\""
        ));
    };
    let valid = address
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !address
            .chars()
            .any(|ch| ch.is_whitespace() || ch.is_control() || ch == ',');
    if !valid {
        return Err(format!("{contact:?} is not a single mail address"));
    }
    Ok(())
}

/// The EAB key id and MAC key, both or neither.
fn external_account(c: &AcmeIssuerConfig) -> Result<Option<Eab>, String> {
    match (&c.eab_kid, &c.eab_hmac_key_file) {
        (None, None) => Ok(None),
        (Some(_), None) => Err("eab_kid: needs eab_hmac_key_file too".into()),
        (None, Some(_)) => Err("eab_hmac_key_file: needs eab_kid too".into()),
        (Some(kid), Some(path)) => {
            if kid.trim().is_empty() {
                return Err("eab_kid: must not be empty".into());
            }
            let key = hmac_key(path).map_err(|e| format!("eab_hmac_key_file: {e}"))?;
            Ok(Some(Eab {
                kid: kid.clone(),
                key,
            }))
        }
    }
}

/// The MAC key of `path`: base64url as CAs hand it out (padding tolerated), owner-only file.
fn hmac_key(path: &Path) -> Result<Zeroizing<Vec<u8>>, String> {
    let text = read_secret_file(path).map_err(|e| e.to_string())?;
    if text.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    let input = text.trim_end_matches('=').as_bytes();
    let refused = || {
        format!(
            "{} does not hold a base64url MAC key (as the CA gave it)",
            path.display()
        )
    };
    // Decoded into a buffer that is wiped when dropped; never the decoder's error: it quotes the
    // offending byte of the secret.
    let len = URL_SAFE_NO_PAD
        .decode_len(input.len())
        .map_err(|_| refused())?;
    let mut key = Zeroizing::new(vec![0_u8; len]);
    let written = URL_SAFE_NO_PAD
        .decode_mut(input, &mut key)
        .map_err(|_| refused())?;
    key.truncate(written);
    if key.len() < 16 {
        return Err(format!(
            "{} holds a {}-byte MAC key; CAs give at least 16 bytes",
            path.display(),
            key.len()
        ));
    }
    Ok(key)
}

/// The certificates of a PEM file: at least one, each a valid certificate.
fn trust_roots(path: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem =
        std::fs::read(path).map_err(|e| format!("cannot read {}: {}", path.display(), e.kind()))?;
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("{} holds an unreadable certificate: {e}", path.display()))?;
    // reqwest only splits the PEM; a certificate that does not parse would fail every
    // connection later, so each is read now.
    for block in scm_pki::pem_blocks(&String::from_utf8_lossy(&pem), "CERTIFICATE") {
        scm_pki::parse_certificate_pem(&block)
            .map_err(|e| format!("{} holds an unreadable certificate: {e}", path.display()))?;
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// Pebble's `kid-1` MAC key (its example EAB config).
    const KID1_KEY: &str = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";

    fn parse(text: &str) -> Result<AcmeIssuerConfig, toml::de::Error> {
        toml::from_str(text)
    }

    fn minimal() -> AcmeIssuerConfig {
        parse(
            r#"
            name = "pebble"
            kind = "acme"
            directory_url = "https://127.0.0.1:14000/dir"
            "#,
        )
        .unwrap()
    }

    fn err(c: &AcmeIssuerConfig) -> String {
        acme_ca(c).map(|_| ()).unwrap_err()
    }

    fn secret_file(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let p = dir.join("eab.key");
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn defaults_and_the_full_form() {
        let c = minimal();
        assert_eq!(c.challenges, ["http-01", "dns-01"]);
        assert_eq!(
            c.challenge_kinds().unwrap(),
            [ChallengeKind::Http01, ChallengeKind::Dns01]
        );
        assert_eq!(
            (c.max_orders, c.max_orders_window_minutes, c.max_names),
            (100, 180, 100)
        );
        assert_eq!(c.order_window(), Duration::from_secs(3 * 3600));
        assert_eq!(c.timeout_seconds, 30);
        assert_eq!(
            (c.contact, c.eab_kid, c.profile, c.dns01),
            (None, None, None, None)
        );

        let full = parse(
            r#"
            name = "le"
            kind = "acme"
            directory_url = "https://acme.example/dir"
            contact = "mailto:ops@shop.test"
            trust_roots_file = "/etc/openscm/ca.pem"
            eab_kid = "kid-1"
            eab_hmac_key_file = "/etc/openscm/eab.key"
            profile = "tlsserver"
            challenges = ["dns-01"]
            dns01 = { kind = "rfc2136", server = "127.0.0.1:53", zone = "shop.test.", tsig_key_name = "openscm.", tsig_secret_file = "/etc/openscm/tsig.key" }
            max_orders = 300
            max_orders_window_minutes = 60
            max_names = 10
            timeout_seconds = 5
            "#,
        )
        .unwrap();
        assert_eq!(full.challenge_kinds().unwrap(), [ChallengeKind::Dns01]);
        assert_eq!(full.dns01.unwrap().tsig_algorithm, "hmac-sha256");
        assert!(
            parse(
                "name = \"x\"\nkind = \"acme\"\ndirectory_url = \"https://a/\"\ncontacts = \"x\""
            )
            .unwrap_err()
            .to_string()
            .contains("unknown field")
        );
    }

    #[test]
    fn a_ca_that_is_down_does_not_stop_the_build() {
        // Nothing listens there: the directory is only fetched on first use.
        let c = AcmeIssuerConfig {
            directory_url: "https://127.0.0.1:1/dir".into(),
            ..minimal()
        };
        let ca = acme_ca(&c).unwrap();
        assert!(format!("{ca:?}").contains("pebble"));
    }

    #[test]
    fn bad_values_name_the_issuer_and_the_key() {
        let cases: Vec<(AcmeIssuerConfig, &str)> = vec![
            (
                AcmeIssuerConfig {
                    kind: "builtin".into(),
                    ..minimal()
                },
                "kind:",
            ),
            (
                AcmeIssuerConfig {
                    directory_url: "http://127.0.0.1:14000/dir".into(),
                    ..minimal()
                },
                "directory_url: \"http://127.0.0.1:14000/dir\" must be an https:// URL",
            ),
            (
                AcmeIssuerConfig {
                    directory_url: "not a url".into(),
                    ..minimal()
                },
                "directory_url:",
            ),
            (
                AcmeIssuerConfig {
                    contact: Some("ops@shop.test".into()),
                    ..minimal()
                },
                "contact: \"ops@shop.test\" must be a mailto: URL",
            ),
            (
                AcmeIssuerConfig {
                    contact: Some("mailto:a@b.test,c@d.test".into()),
                    ..minimal()
                },
                "contact:",
            ),
            (
                AcmeIssuerConfig {
                    challenges: vec!["tls-alpn-01".into()],
                    ..minimal()
                },
                "challenges: \"tls-alpn-01\" is not one of",
            ),
            (
                AcmeIssuerConfig {
                    challenges: vec!["dns-01".into(), "dns-01".into()],
                    ..minimal()
                },
                "challenges: \"dns-01\" is listed twice",
            ),
            (
                AcmeIssuerConfig {
                    challenges: vec![],
                    ..minimal()
                },
                "challenges: needs at least one",
            ),
            (
                AcmeIssuerConfig {
                    max_orders: 0,
                    ..minimal()
                },
                "max_orders: must be at least 1",
            ),
            (
                AcmeIssuerConfig {
                    timeout_seconds: 0,
                    ..minimal()
                },
                "timeout_seconds: must be at least 1",
            ),
            (
                AcmeIssuerConfig {
                    eab_kid: Some("kid-1".into()),
                    ..minimal()
                },
                "eab_kid: needs eab_hmac_key_file too",
            ),
            (
                AcmeIssuerConfig {
                    profile: Some(" ".into()),
                    ..minimal()
                },
                "profile:",
            ),
            (
                AcmeIssuerConfig {
                    trust_roots_file: Some("/nonexistent/ca.pem".into()),
                    ..minimal()
                },
                "trust_roots_file: cannot read /nonexistent/ca.pem",
            ),
        ];
        for (c, expected) in cases {
            let e = err(&c);
            assert!(e.starts_with("issuers \"pebble\": "), "{e}");
            assert!(e.contains(expected), "{e} should contain {expected}");
        }
    }

    #[test]
    fn the_eab_key_file_must_be_private_present_and_base64url() {
        let d = tempfile::tempdir().unwrap();
        let with_file = |p: PathBuf| AcmeIssuerConfig {
            eab_kid: Some("kid-1".into()),
            eab_hmac_key_file: Some(p),
            ..minimal()
        };

        let open = secret_file(d.path(), KID1_KEY, 0o644);
        let e = err(&with_file(open.clone()));
        assert!(
            e.starts_with("issuers \"pebble\": eab_hmac_key_file: "),
            "{e}"
        );
        assert!(e.contains("chmod 600"), "{e}");
        assert!(!e.contains(KID1_KEY), "{e}");

        let e = err(&with_file(d.path().join("missing.key")));
        assert!(
            e.starts_with("issuers \"pebble\": eab_hmac_key_file: cannot open"),
            "{e}"
        );

        let garbage = "not*base64url!secret-ish";
        let e = err(&with_file(secret_file(d.path(), garbage, 0o600)));
        assert!(e.contains("does not hold a base64url MAC key"), "{e}");
        assert!(!e.contains(garbage) && !e.contains('*'), "{e}");

        let e = err(&with_file(secret_file(d.path(), "c2hvcnQ", 0o600)));
        assert!(e.contains("5-byte MAC key"), "{e}");

        let e = err(&with_file(secret_file(d.path(), "\n", 0o600)));
        assert!(e.contains("is empty"), "{e}");

        // As Pebble and CAs print it, with a trailing newline; padding is tolerated.
        acme_ca(&with_file(secret_file(
            d.path(),
            &format!("{KID1_KEY}\n"),
            0o600,
        )))
        .unwrap();
        acme_ca(&with_file(secret_file(
            d.path(),
            "c2hvcnRzaG9ydHNob3J0cw==",
            0o400,
        )))
        .unwrap();
        let ca = acme_ca(&with_file(secret_file(d.path(), KID1_KEY, 0o600))).unwrap();
        let debug = format!("{ca:?}");
        assert!(
            debug.contains("kid-1") && !debug.contains(KID1_KEY),
            "{debug}"
        );
    }

    #[test]
    fn trust_roots_must_be_certificates() {
        let d = tempfile::tempdir().unwrap();
        let with_roots = |text: &str| {
            let p = d.path().join("roots.pem");
            std::fs::write(&p, text).unwrap();
            AcmeIssuerConfig {
                trust_roots_file: Some(p),
                ..minimal()
            }
        };
        let e = err(&with_roots("hello"));
        assert!(
            e.contains("trust_roots_file:") && e.contains("no PEM certificate"),
            "{e}"
        );
        let e = err(&with_roots(
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ));
        assert!(e.contains("unreadable certificate"), "{e}");

        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["ca.test".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        // World-readable is fine: roots are public.
        acme_ca(&with_roots(&cert.pem())).unwrap();
    }
}
