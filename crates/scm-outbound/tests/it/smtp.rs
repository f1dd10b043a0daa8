//! [`SmtpNotifier`] against a real SMTP server (aiosmtpd): the mail that arrives, over plain
//! SMTP, STARTTLS with a login and implicit TLS; and how each kind of failure is classified.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use scm_core::notify::{Event, Notification, Notifier, NotifyError, NotifyErrorKind};
use scm_outbound::notify::smtp::{SmtpConfig, SmtpNotifier};

use crate::support::free_tcp_port;
use crate::support::smtp::{SmtpOptions, SmtpServer, SmtpTls};
use crate::support::tls::TestCa;

fn config(server: impl ToString, tls: &str) -> SmtpConfig {
    SmtpConfig {
        name: "mail".into(),
        account: "0123456789abcdef0123456789abcdef".into(),
        server: server.to_string(),
        tls: tls.into(),
        from: "OpenSCM <openscm@shop.test>".into(),
        to: vec!["ops@shop.test".into(), "oncall@shop.test".into()],
        username: None,
        password_file: None,
        ca_file: None,
        timeout_seconds: Some(20),
    }
}

fn push_failed() -> Notification {
    Notification {
        account: "0123456789abcdef0123456789abcdef".into(),
        at_ms: 1_700_000_000_000,
        event: Event::PushFailed {
            certificate_id: "scs1700000000000".into(),
            name: "www.shop.test".into(),
            service: "ELB".into(),
            region: None,
            targets: vec!["edge".into()],
            error: "target edge: reload failed: exit status 1".into(),
            attempts: 30,
        },
    }
}

async fn send(c: &SmtpConfig) -> Result<(), NotifyError> {
    SmtpNotifier::new(c).unwrap().notify(&push_failed()).await
}

/// A certificate for 127.0.0.1 from a fresh CA, written to `dir`: (chain, key, the CA's root).
fn server_certificate(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca = TestCa::new("SMTP Test");
    let (cert, key) = ca.leaf(&["127.0.0.1"]).write_to(dir);
    let root = dir.join("root.pem");
    std::fs::write(&root, ca.root_pem()).unwrap();
    (cert, key, root)
}

fn password_file(dir: &Path, password: &str) -> PathBuf {
    let path = dir.join("smtp.password");
    std::fs::write(&path, format!("{password}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

#[tokio::test]
async fn a_notification_arrives_as_one_plain_text_mail() {
    let server = SmtpServer::start(&SmtpOptions::default()).await;
    send(&config(server.addr, "none")).await.unwrap();
    let mails = server.wait_for(1).await;
    let mail = &mails[0];
    assert_eq!(mail.mail_from, "openscm@shop.test");
    assert_eq!(mail.rcpt_tos, vec!["ops@shop.test", "oncall@shop.test"]);
    assert_eq!(mail.from, "OpenSCM <openscm@shop.test>");
    assert_eq!(mail.to, "ops@shop.test, oncall@shop.test");
    assert_eq!(
        mail.subject,
        "[OpenSCM] Push failed: www.shop.test (scs1700000000000) to target edge"
    );
    assert_eq!(mail.content_type, "text/plain");
    assert!(
        mail.body
            .contains("Certificate: www.shop.test (scs1700000000000)"),
        "{}",
        mail.body
    );
    assert!(mail.body.contains("Target: edge"), "{}", mail.body);
    assert!(
        mail.body.contains("When: 2023-11-14 22:13:20 UTC"),
        "{}",
        mail.body
    );
    assert!(mail.body.contains("What to do: "), "{}", mail.body);
    assert!(!mail.encrypted && !mail.authenticated, "{mail:?}");
}

#[tokio::test]
async fn starttls_with_a_login() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, root) = server_certificate(dir.path());
    let server = SmtpServer::start(&SmtpOptions {
        tls: SmtpTls::StartTls(&cert, &key),
        login: Some(("openscm", "s3cret")),
        ..SmtpOptions::default()
    })
    .await;
    let good = SmtpConfig {
        username: Some("openscm".into()),
        password_file: Some(password_file(dir.path(), "s3cret")),
        ca_file: Some(root.clone()),
        ..config(server.addr, "starttls")
    };
    send(&good).await.unwrap();
    let mails = server.wait_for(1).await;
    assert!(
        mails[0].encrypted && mails[0].authenticated,
        "{:?}",
        mails[0]
    );
    assert!(mails[0].subject.contains("www.shop.test"), "{:?}", mails[0]);

    // A wrong password: the operator must fix it.
    let other = tempfile::tempdir().unwrap();
    let wrong = SmtpConfig {
        password_file: Some(password_file(other.path(), "wrong")),
        ..good.clone()
    };
    let e = send(&wrong).await.unwrap_err();
    assert_eq!(
        e.kind,
        NotifyErrorKind::Misconfigured,
        "{e}\n{}",
        server.log()
    );
    assert!(e.message.contains("535"), "{e}");
    assert!(!e.message.contains("wrong"), "no password in errors: {e}");

    // No login at all where one is required: likewise.
    let anonymous = SmtpConfig {
        username: None,
        password_file: None,
        ..good.clone()
    };
    let e = send(&anonymous).await.unwrap_err();
    assert_eq!(
        e.kind,
        NotifyErrorKind::Misconfigured,
        "{e}\n{}",
        server.log()
    );

    // Plain SMTP to a server that requires STARTTLS: refused, for the operator.
    let e = send(&config(server.addr, "none")).await.unwrap_err();
    assert_eq!(
        e.kind,
        NotifyErrorKind::Misconfigured,
        "{e}\n{}",
        server.log()
    );

    // A certificate from a CA we were not told to trust: not sent.
    let stranger = TestCa::new("Stranger");
    let stranger_root = other.path().join("stranger.pem");
    std::fs::write(&stranger_root, stranger.root_pem()).unwrap();
    let untrusted = SmtpConfig {
        ca_file: Some(stranger_root),
        ..good.clone()
    };
    let e = send(&untrusted).await.unwrap_err();
    assert_eq!(e.kind, NotifyErrorKind::Misconfigured, "{e}");
    assert!(e.message.contains("ca_file"), "{e}");

    assert_eq!(server.received().len(), 1, "only the good one arrived");
}

#[tokio::test]
async fn implicit_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, root) = server_certificate(dir.path());
    let server = SmtpServer::start(&SmtpOptions {
        tls: SmtpTls::Implicit(&cert, &key),
        ..SmtpOptions::default()
    })
    .await;
    let c = SmtpConfig {
        ca_file: Some(root),
        ..config(server.addr, "tls")
    };
    send(&c).await.unwrap();
    let mails = server.wait_for(1).await;
    assert!(mails[0].encrypted, "{:?}", mails[0]);
}

#[tokio::test]
async fn starttls_that_the_server_does_not_offer_is_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, root) = server_certificate(dir.path());
    let server = SmtpServer::start(&SmtpOptions::default()).await;
    let c = SmtpConfig {
        ca_file: Some(root),
        ..config(server.addr, "starttls")
    };
    let e = send(&c).await.unwrap_err();
    assert_eq!(e.kind, NotifyErrorKind::Misconfigured, "{e}");
    assert!(e.message.contains("STARTTLS"), "{e}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn replies_decide_whether_to_retry() {
    for (reply, kind) in [
        ("550 5.1.1 No such user", NotifyErrorKind::Permanent),
        ("451 4.3.0 Try again later", NotifyErrorKind::Transient),
    ] {
        let server = SmtpServer::start(&SmtpOptions {
            rcpt_reply: Some(reply),
            ..SmtpOptions::default()
        })
        .await;
        let e = send(&config(server.addr, "none")).await.unwrap_err();
        assert_eq!(e.kind, kind, "{reply}: {e}\n{}", server.log());
        assert!(e.message.contains(&reply[..3]), "{e}");
        assert!(e.message.contains(&server.addr.to_string()), "{e}");
        assert!(server.received().is_empty());
    }
}

#[tokio::test]
async fn a_server_that_is_down_is_retried_later() {
    let addr = free_tcp_port();
    let started = Instant::now();
    let e = send(&config(addr, "none")).await.unwrap_err();
    assert_eq!(e.kind, NotifyErrorKind::Transient, "{e}");
    assert!(e.message.contains(&addr.to_string()), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}
