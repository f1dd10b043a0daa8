//! The plain-text rendering of a notification, for people (mail today): a subject that names the
//! event and the certificate, and a body that says what happened, to which certificate and
//! target, when, and what to do about it.

use std::fmt::Write;

use scm_core::notify::{Event, Notification};
use time::OffsetDateTime;
use time::macros::format_description;

/// The subject and the body of `n`.
pub fn render(n: &Notification) -> (String, String) {
    let mut target: Option<String> = None;
    let mut details: Vec<(&str, String)> = Vec::new();
    let (certificate_id, name, subject, what, todo) = match &n.event {
        Event::PushFailed {
            certificate_id,
            name,
            service,
            region,
            targets,
            error,
            attempts,
        } => {
            // A job queued before push failures carried the name has none.
            let name = if name.is_empty() {
                certificate_id
            } else {
                name
            };
            let to = targets_phrase(targets);
            target = Some(targets.join(", "));
            details.push(("Service", service_phrase(service, region.as_deref())));
            details.push(("Attempts", attempts.to_string()));
            details.push(("Error", error.clone()));
            (
                certificate_id,
                name,
                format!("Push failed: {} to {to}", cert_phrase(name, certificate_id)),
                format!(
                    "OpenSCM gave up pushing the certificate {name} to {to} after {attempts} \
                     attempt{}.",
                    plural(*attempts)
                ),
                "Fix what the error above points at on the target (its configuration, its \
                 server, the files and commands it uses), then push the certificate again."
                    .to_owned(),
            )
        }
        Event::CertificateExpiring {
            certificate_id,
            name,
            domain,
            not_after_ms,
        } => {
            if let Some(d) = domain {
                details.push(("Domain", d.clone()));
            }
            details.push(("Expires", date(*not_after_ms)));
            (
                certificate_id,
                name,
                format!(
                    "Certificate expiring: {} on {}",
                    cert_phrase(name, certificate_id),
                    day(*not_after_ms)
                ),
                format!("The certificate {name} expires on {}.", date(*not_after_ms)),
                "Renew or replace it before then, or find out why automatic renewal has not \
                 replaced it yet."
                    .to_owned(),
            )
        }
        Event::CertificateExpired {
            certificate_id,
            name,
            domain,
            not_after_ms,
        } => {
            if let Some(d) = domain {
                details.push(("Domain", d.clone()));
            }
            details.push(("Expired", date(*not_after_ms)));
            (
                certificate_id,
                name,
                format!("Certificate expired: {}", cert_phrase(name, certificate_id)),
                format!("The certificate {name} expired on {}.", date(*not_after_ms)),
                "Renew or replace it now: clients that are still served it get a certificate \
                 error."
                    .to_owned(),
            )
        }
        Event::RenewalFailed {
            certificate_id,
            name,
            not_after_ms,
            error,
        } => {
            details.push(("Expires", date(*not_after_ms)));
            details.push(("Error", error.clone()));
            (
                certificate_id,
                name,
                format!("Renewal failing: {}", cert_phrase(name, certificate_id)),
                format!(
                    "Renewing the certificate {name} keeps failing, and its current version \
                     expires on {}.",
                    date(*not_after_ms)
                ),
                "Fix the cause given above (domain validation, the CA, the certificate's \
                 settings); OpenSCM keeps trying until the certificate expires."
                    .to_owned(),
            )
        }
        Event::NotServed {
            certificate_id,
            name,
            target: t,
            version,
            expected_sha256,
            served_sha256,
            error,
        } => {
            target = Some(t.clone());
            details.push(("Version", version.to_string()));
            details.push(("Expected SHA-256", expected_sha256.clone()));
            details.push(("Served SHA-256", served_phrase(served_sha256.as_deref())));
            details.push(("Check", error.clone()));
            (
                certificate_id,
                name,
                format!(
                    "Not served: {} on target {t}",
                    cert_phrase(name, certificate_id)
                ),
                format!(
                    "Version {version} of the certificate {name} was delivered to the target \
                     {t}, but the target does not serve it."
                ),
                "Check that the server behind the target was reloaded and serves the files \
                 OpenSCM wrote, for this server name, then push the certificate again."
                    .to_owned(),
            )
        }
        Event::Drift {
            certificate_id,
            name,
            target: t,
            version,
            expected_sha256,
            served_sha256,
        } => {
            target = Some(t.clone());
            details.push(("Version", version.to_string()));
            details.push(("Expected SHA-256", expected_sha256.clone()));
            details.push(("Served SHA-256", served_phrase(served_sha256.as_deref())));
            (
                certificate_id,
                name,
                format!(
                    "Certificate replaced on target {t}: {}",
                    cert_phrase(name, certificate_id)
                ),
                format!(
                    "The target {t} served version {version} of the certificate {name}, and \
                     now serves something else."
                ),
                "Find out who or what replaced the certificate on that server, then push the \
                 certificate again (a target with redeliver_on_drift does so by itself)."
                    .to_owned(),
            )
        }
        Event::Renewed {
            certificate_id,
            name,
            version,
            not_after_ms,
        } => {
            details.push(("Version", version.to_string()));
            details.push(("Valid until", date(*not_after_ms)));
            (
                certificate_id,
                name,
                format!(
                    "Renewed: {}, version {version}",
                    cert_phrase(name, certificate_id)
                ),
                format!(
                    "The certificate {name} was renewed: version {version} is valid until {}.",
                    date(*not_after_ms)
                ),
                "Nothing, where push targets receive it; install the new version by hand \
                 wherever the certificate is used without one."
                    .to_owned(),
            )
        }
        Event::ValidationFailed {
            certificate_id,
            name,
            domain,
            error,
        } => {
            details.push(("Domain", domain.clone()));
            details.push(("Error", error.clone()));
            (
                certificate_id,
                name,
                format!(
                    "Validation failed: {} for {domain}",
                    cert_phrase(name, certificate_id)
                ),
                format!("Validating the domain {domain} for the certificate {name} failed."),
                format!(
                    "Check the DNS record or the file the validation of {domain} expects (the \
                     error above says what was found), then validate again."
                ),
            )
        }
        Event::ValidationNeeded {
            certificate_id,
            name,
            domain,
            record_name,
            record_type,
            record_value,
        } => {
            details.push(("Domain", domain.clone()));
            details.push((
                "Record",
                format!("{record_name} {record_type} {record_value}"),
            ));
            (
                certificate_id,
                name,
                format!(
                    "Action needed: publish a DNS record for {}",
                    cert_phrase(name, certificate_id)
                ),
                format!(
                    "The renewal of the certificate {name} waits for the {record_type} record \
                     {record_name} with the value {record_value}: the CA gave a new value for \
                     this renewal."
                ),
                "Publish the record; OpenSCM sees it and carries on. To make renewals \
                 hands-free, give the issuer RFC 2136 settings (dns01) or delegate \
                 _acme-challenge with a CNAME to a zone OpenSCM updates."
                    .to_owned(),
            )
        }
        Event::ValidationStopped {
            certificate_id,
            name,
            domain,
            failures,
            until_ms,
            error,
        } => {
            details.push(("Domain", domain.clone()));
            details.push(("Failures in a row", failures.to_string()));
            details.push(("Paused until", date(*until_ms)));
            details.push(("Error", error.clone()));
            (
                certificate_id,
                name,
                format!(
                    "Validation stopped: {} for {domain}",
                    cert_phrase(name, certificate_id)
                ),
                format!(
                    "Validating {domain} for the certificate {name} failed {failures} times in \
                     a row; OpenSCM does not try again before {}.",
                    date(*until_ms)
                ),
                "Fix what the error says (DNS, the web server answering http-01), then apply \
                 or renew again to retry at once."
                    .to_owned(),
            )
        }
    };
    let mut body = String::new();
    let _ = writeln!(body, "{what}\n");
    let _ = writeln!(body, "Certificate: {}", cert_phrase(name, certificate_id));
    if let Some(t) = target {
        let _ = writeln!(body, "Target: {t}");
    }
    for (label, value) in details {
        let _ = writeln!(body, "{label}: {value}");
    }
    let _ = writeln!(body, "Account: {}", n.account);
    let _ = writeln!(body, "When: {}", date(n.at_ms));
    let _ = writeln!(body, "\nWhat to do: {todo}");
    let _ = write!(body, "\n-- \nOpenSCM ({})\n", n.event.name());
    (one_line(&format!("[OpenSCM] {subject}")), body)
}

/// `name (id)`, or the id alone when it stands in for a missing name.
fn cert_phrase(name: &str, id: &str) -> String {
    if name.is_empty() || name == id {
        id.to_owned()
    } else {
        format!("{name} ({id})")
    }
}

/// `target edge`, `targets a, b`, or `no target`.
fn targets_phrase(targets: &[String]) -> String {
    match targets {
        [] => "no target".to_owned(),
        [one] => format!("target {one}"),
        many => format!("targets {}", many.join(", ")),
    }
}

fn service_phrase(service: &str, region: Option<&str>) -> String {
    match region {
        Some(r) => format!("{service} (region {r})"),
        None => service.to_owned(),
    }
}

fn served_phrase(served: Option<&str>) -> String {
    served.map_or_else(
        || "none (no TLS handshake completed)".to_owned(),
        str::to_owned,
    )
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A Unix-ms instant as `2023-11-14 22:13:20 UTC`.
fn date(ms: i64) -> String {
    let fmt = format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(fmt).ok())
        .unwrap_or_else(|| format!("{ms} ms after 1970"))
}

/// A Unix-ms instant's day, `2023-11-14`.
fn day(ms: i64) -> String {
    let fmt = format_description!("[year]-[month]-[day]");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(fmt).ok())
        .unwrap_or_else(|| format!("{ms} ms after 1970"))
}

/// Control characters (a line break in a certificate's name) become spaces: a subject is one
/// header line.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
    /// 2023-11-14 22:13:20 UTC.
    const AT: i64 = 1_700_000_000_000;
    /// 2024-02-01 00:00:00 UTC.
    const NOT_AFTER: i64 = 1_706_745_600_000;

    fn note(event: Event) -> (String, String) {
        render(&Notification {
            account: ACCOUNT.into(),
            at_ms: AT,
            event,
        })
    }

    /// Every body names the certificate, the account and the time, and says what to do.
    fn common(body: &str) {
        assert!(
            body.contains("Certificate: www.shop.test (scs1700000000000)\n"),
            "{body}"
        );
        assert!(body.contains(&format!("Account: {ACCOUNT}\n")), "{body}");
        assert!(body.contains("When: 2023-11-14 22:13:20 UTC\n"), "{body}");
        assert!(body.contains("\nWhat to do: "), "{body}");
    }

    #[test]
    fn push_failed() {
        let (subject, body) = note(Event::PushFailed {
            certificate_id: "scs1700000000000".into(),
            name: "www.shop.test".into(),
            service: "ELB".into(),
            region: Some("r1".into()),
            targets: vec!["edge".into()],
            error: "target edge: reload failed: exit status 1".into(),
            attempts: 30,
        });
        assert_eq!(
            subject,
            "[OpenSCM] Push failed: www.shop.test (scs1700000000000) to target edge"
        );
        common(&body);
        assert!(body.starts_with("OpenSCM gave up pushing the certificate www.shop.test to target edge after 30 attempts.\n"), "{body}");
        assert!(body.contains("Target: edge\n"), "{body}");
        assert!(body.contains("Service: ELB (region r1)\n"), "{body}");
        assert!(
            body.contains("Error: target edge: reload failed: exit status 1\n"),
            "{body}"
        );
        assert!(body.contains("push the certificate again"), "{body}");

        let (subject, body) = note(Event::PushFailed {
            certificate_id: "scs1700000000000".into(),
            name: "www.shop.test".into(),
            service: "ELB".into(),
            region: None,
            targets: vec!["a".into(), "b".into()],
            error: "x".into(),
            attempts: 1,
        });
        assert!(subject.ends_with("to targets a, b"), "{subject}");
        assert!(body.contains("after 1 attempt.\n"), "{body}");
        assert!(body.contains("Target: a, b\n"), "{body}");

        // Queued before the name was carried: the id stands in for it.
        let (subject, body) = note(Event::PushFailed {
            certificate_id: "scs1700000000000".into(),
            name: String::new(),
            service: "ELB".into(),
            region: None,
            targets: vec!["edge".into()],
            error: "x".into(),
            attempts: 2,
        });
        assert_eq!(
            subject,
            "[OpenSCM] Push failed: scs1700000000000 to target edge"
        );
        assert!(body.contains("Certificate: scs1700000000000\n"), "{body}");
    }

    #[test]
    fn certificate_expiring() {
        let (subject, body) = note(Event::CertificateExpiring {
            certificate_id: "scs1700000000000".into(),
            name: "www.shop.test".into(),
            domain: Some("shop.test".into()),
            not_after_ms: NOT_AFTER,
        });
        assert_eq!(
            subject,
            "[OpenSCM] Certificate expiring: www.shop.test (scs1700000000000) on 2024-02-01"
        );
        common(&body);
        assert!(
            body.starts_with("The certificate www.shop.test expires on 2024-02-01 00:00:00 UTC.\n"),
            "{body}"
        );
        assert!(body.contains("Domain: shop.test\n"), "{body}");
        assert!(!body.contains("Target:"), "{body}");
        assert!(body.contains("Renew or replace it before then"), "{body}");
    }

    #[test]
    fn certificate_expired() {
        let (subject, body) = note(Event::CertificateExpired {
            certificate_id: "scs1700000000000".into(),
            name: "www.shop.test".into(),
            domain: None,
            not_after_ms: NOT_AFTER,
        });
        assert_eq!(
            subject,
            "[OpenSCM] Certificate expired: www.shop.test (scs1700000000000)"
        );
        common(&body);
        assert!(
            body.contains("expired on 2024-02-01 00:00:00 UTC."),
            "{body}"
        );
        assert!(!body.contains("Domain:"), "{body}");
        assert!(body.contains("Renew or replace it now"), "{body}");
    }

    #[test]
    fn renewal_failed() {
        let (subject, body) = note(Event::RenewalFailed {
            certificate_id: "scs1700000000000".into(),
            name: "www.shop.test".into(),
            not_after_ms: NOT_AFTER,
            error: "DNS validation failed".into(),
        });
        assert_eq!(
            subject,
            "[OpenSCM] Renewal failing: www.shop.test (scs1700000000000)"
        );
        common(&body);
        assert!(body.contains("keeps failing"), "{body}");
        assert!(body.contains("Error: DNS validation failed\n"), "{body}");
        assert!(
            body.contains("Expires: 2024-02-01 00:00:00 UTC\n"),
            "{body}"
        );
    }

    #[test]
    fn not_served() {
        let (subject, body) = note(Event::NotServed {
            certificate_id: "scs1700000000000".into(),
            name: "www.shop.test".into(),
            target: "edge".into(),
            version: 3,
            expected_sha256: "aa".repeat(32),
            served_sha256: None,
            error: "connection refused".into(),
        });
        assert_eq!(
            subject,
            "[OpenSCM] Not served: www.shop.test (scs1700000000000) on target edge"
        );
        common(&body);
        assert!(body.contains("Version 3 of the certificate www.shop.test was delivered to the target edge, but the target does not serve it."), "{body}");
        assert!(body.contains("Target: edge\n"), "{body}");
        assert!(
            body.contains(&format!("Expected SHA-256: {}\n", "aa".repeat(32))),
            "{body}"
        );
        assert!(
            body.contains("Served SHA-256: none (no TLS handshake completed)\n"),
            "{body}"
        );
        assert!(body.contains("Check: connection refused\n"), "{body}");
        assert!(body.contains("reloaded"), "{body}");
    }

    #[test]
    fn drift() {
        let (subject, body) = note(Event::Drift {
            certificate_id: "scs1700000000000".into(),
            name: "www.shop.test".into(),
            target: "edge".into(),
            version: 2,
            expected_sha256: "aa".repeat(32),
            served_sha256: Some("bb".repeat(32)),
        });
        assert_eq!(
            subject,
            "[OpenSCM] Certificate replaced on target edge: www.shop.test (scs1700000000000)"
        );
        common(&body);
        assert!(body.contains("Target: edge\n"), "{body}");
        assert!(
            body.contains(&format!("Served SHA-256: {}\n", "bb".repeat(32))),
            "{body}"
        );
        assert!(body.contains("redeliver_on_drift"), "{body}");
    }

    #[test]
    fn renewed() {
        let (subject, body) = note(Event::Renewed {
            certificate_id: "scs1700000000000".into(),
            name: "www.shop.test".into(),
            version: 4,
            not_after_ms: NOT_AFTER,
        });
        assert_eq!(
            subject,
            "[OpenSCM] Renewed: www.shop.test (scs1700000000000), version 4"
        );
        common(&body);
        assert!(
            body.contains("version 4 is valid until 2024-02-01 00:00:00 UTC."),
            "{body}"
        );
    }

    #[test]
    fn validation_failed() {
        let (subject, body) = note(Event::ValidationFailed {
            certificate_id: "scs1700000000000".into(),
            name: "www.shop.test".into(),
            domain: "shop.test".into(),
            error: "no TXT record at _dnsauth.shop.test".into(),
        });
        assert_eq!(
            subject,
            "[OpenSCM] Validation failed: www.shop.test (scs1700000000000) for shop.test"
        );
        common(&body);
        assert!(
            body.contains("Error: no TXT record at _dnsauth.shop.test\n"),
            "{body}"
        );
        assert!(body.contains("validate again"), "{body}");
    }

    #[test]
    fn a_subject_is_one_line() {
        let (subject, _) = note(Event::CertificateExpired {
            certificate_id: "scs1700000000000".into(),
            name: "evil\r\nBcc: x@y.test".into(),
            domain: None,
            not_after_ms: NOT_AFTER,
        });
        assert!(!subject.contains(['\r', '\n']), "{subject}");
    }
}
