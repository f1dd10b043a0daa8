//! Expiry reminders at their thresholds, and the lifecycle's notifications (a renewal, a
//! validation failed at its deadline), over a real SQLite store with a fixed clock (the setup of
//! `crate::tests`). Notifiers are recording doubles of the domain's port: what they get is what
//! the account would hear.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use scm_pki::MasterKey;
use scm_proto::notices::NoticeBody;
use scm_proto::v3::{ApplicationBody, PurchaseBody};
use scm_proto::{CertificateId, CertificateStatus};
use scm_store::{DatabaseUrl, SqlStore, Store};
use time::macros::datetime;

use super::ReminderSettings;
use crate::jobs::{JobHandler, JobSettings};
use crate::notify::{Event, Notification, Notifier, NotifierTarget, NotifyError};
use crate::purchase::ApiVersion;
use crate::{CoreConfig, FixedClock, Principal, Scm, bootstrap};

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;

/// A notifier that records what it is told.
#[derive(Debug, Default)]
struct Heard(Mutex<Vec<Notification>>);

#[async_trait]
impl Notifier for Heard {
    async fn notify(&self, n: &Notification) -> Result<(), NotifyError> {
        self.0.lock().unwrap().push(n.clone());
        Ok(())
    }
}

impl Heard {
    /// `(event name, certificate, not_after)` of what was heard, in order.
    fn events(&self) -> Vec<(&'static str, String, Option<i64>)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|n| {
                let (id, not_after) = match &n.event {
                    Event::CertificateExpiring {
                        certificate_id,
                        not_after_ms,
                        ..
                    }
                    | Event::CertificateExpired {
                        certificate_id,
                        not_after_ms,
                        ..
                    }
                    | Event::Renewed {
                        certificate_id,
                        not_after_ms,
                        ..
                    } => (certificate_id.clone(), Some(*not_after_ms)),
                    Event::ValidationFailed { certificate_id, .. } => {
                        (certificate_id.clone(), None)
                    }
                    other => (format!("{other:?}"), None),
                };
                (n.event.name(), id, not_after)
            })
            .collect()
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

struct World {
    scm: Arc<Scm>,
    store: Arc<dyn Store>,
    clock: Arc<FixedClock>,
    admin: Principal,
    _dir: tempfile::TempDir,
}

/// A world with `notifiers` recording notifiers for the admin account and `tweak` applied to
/// the configuration.
async fn world(notifiers: usize, tweak: impl FnOnce(&mut CoreConfig)) -> (World, Vec<Arc<Heard>>) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqlStore::connect(&DatabaseUrl::sqlite_file(&dir.path().join("t.db")))
            .await
            .unwrap(),
    );
    let clock = Arc::new(FixedClock::new(datetime!(2026-11-23 12:00 UTC)));
    let master = Arc::new(MasterKey::generate().unwrap());
    let created = bootstrap::run(store.as_ref(), clock.as_ref(), &master)
        .await
        .unwrap()
        .unwrap();
    let mut config = CoreConfig {
        jobs: JobSettings {
            lease: std::time::Duration::from_secs(60),
            ..JobSettings::default()
        },
        ..CoreConfig::default()
    };
    let heard: Vec<Arc<Heard>> = (0..notifiers).map(|_| Arc::new(Heard::default())).collect();
    for (i, h) in heard.iter().enumerate() {
        config.notifiers.push(NotifierTarget {
            name: format!("ops-{i}"),
            account: created.domain_id.clone(),
            notifier: h.clone(),
        });
    }
    tweak(&mut config);
    let scm = Arc::new(
        Scm::open(store.clone(), clock.clone(), master, config)
            .await
            .unwrap(),
    );
    let admin = Principal {
        account: created.domain_id,
        project: created.project_id,
        access_key: created.access_key,
        method: crate::AuthMethod::Signature,
    };
    (
        World {
            scm,
            store,
            clock,
            admin,
            _dir: dir,
        },
        heard,
    )
}

impl World {
    async fn run_jobs(&self) {
        let handler: Arc<dyn JobHandler> = self.scm.clone();
        while !self
            .scm
            .job_runner()
            .run_due(&handler)
            .await
            .unwrap()
            .is_empty()
        {}
    }

    /// Sets the clock to `ms` and runs the reminder sweep (queued, as at a server's start, unless
    /// it is queued already) and the jobs it queues.
    async fn sweep_at(&self, ms: i64) {
        self.clock.set(crate::clock::from_unix_ms(ms));
        self.scm.schedule_reminders().await.unwrap();
        self.run_jobs().await;
    }

    async fn buy(&self, domain_type: &str, n: i64) -> CertificateId {
        let body: PurchaseBody = serde_json::from_value(serde_json::json!({
            "cert_brand": "GLOBALSIGN", "cert_type": "DV_SSL_CERT", "domain_type": domain_type,
            "effective_time": 1, "domain_numbers": n, "order_number": 1,
            "agree_privacy_protection": true
        }))
        .unwrap();
        let (_, ids) = self
            .scm
            .purchase(&self.admin, &self.admin.project, &body, ApiVersion::V3)
            .await
            .unwrap();
        ids.into_iter().next().unwrap()
    }

    async fn apply(&self, id: &CertificateId, domain: &str, sans: &str) {
        let body: ApplicationBody = serde_json::from_value(serde_json::json!({
            "domain": domain, "sans": sans, "applicant_name": "Tom Smith",
            "applicant_phone": "13212345678", "applicant_email": "tom@example.com",
            "agree_privacy_protection": true, "domain_method": "DNS", "key_algorithm": "EC_P256",
            "company_name": "Example Org", "country": "cn"
        }))
        .unwrap();
        self.scm
            .apply(&self.admin, id, Some(&body), ApiVersion::V3)
            .await
            .unwrap();
    }

    /// A certificate issued now (its name is under the account's policy: no validation).
    async fn issued(&self, domain: &str) -> (CertificateId, i64) {
        let id = self.buy("SINGLE_DOMAIN", 1).await;
        self.apply(&id, domain, "").await;
        let not_after = self.not_after(&id).await;
        (id, not_after)
    }

    async fn not_after(&self, id: &CertificateId) -> i64 {
        self.scm
            .certificate(&self.admin, id)
            .await
            .unwrap()
            .issued
            .as_ref()
            .unwrap()
            .not_after_ms
    }

    async fn set_notice(&self, id: &CertificateId, kind: &str, enabled: bool) {
        self.scm
            .set_notices(
                &self.admin,
                Some(&[NoticeBody {
                    resource_id: Some(id.to_string()),
                    notice_type: Some(vec![kind.into()]),
                }]),
                enabled,
            )
            .await
            .unwrap();
    }
}

/// `CERT_EXPIRING` once at each default threshold (30, 14, 7, 3 and 1 days before the end),
/// `CERT_EXPIRED` once past it, to every notifier of the account; sweeps in between send nothing.
#[tokio::test]
async fn expiring_is_sent_once_at_each_threshold_to_each_notifier_and_expired_once() {
    let (w, heard) = world(2, |_| {}).await;
    let (id, end) = w.issued("thresholds.test").await;
    let steps: [(i64, usize); 16] = [
        (end - 200 * DAY, 0),
        (end - 31 * DAY, 0),
        (end - 30 * DAY, 1),
        (end - 30 * DAY + HOUR, 0),
        (end - 20 * DAY, 0),
        (end - 14 * DAY + 10, 1),
        (end - 14 * DAY + 3 * HOUR, 0),
        (end - 7 * DAY, 1),
        (end - 5 * DAY, 0),
        (end - 3 * DAY, 1),
        (end - DAY, 1),
        (end - HOUR, 0),
        (end, 1),
        (end + HOUR, 0),
        (end + 10 * DAY, 0),
        (end + 400 * DAY, 0),
    ];
    let mut expected = 0;
    for (at, new) in steps {
        w.sweep_at(at).await;
        expected += new;
        for h in &heard {
            assert_eq!(
                h.count(),
                expected,
                "{} days before the end: {:?}",
                (end - at) as f64 / DAY as f64,
                h.events()
            );
        }
    }
    let (expiring, expired) = (
        ("certificate_expiring", id.to_string(), Some(end)),
        ("certificate_expired", id.to_string(), Some(end)),
    );
    for h in &heard {
        let mut want = vec![expiring.clone(); 5];
        want.push(expired.clone());
        assert_eq!(h.events(), want);
    }
    let stored = w.store.certificate(&id).await.unwrap().unwrap();
    assert_eq!(stored.status, CertificateStatus::Expired);
}

/// Servers down over several thresholds: the next sweep sends only the latest one due, and past
/// the end only `CERT_EXPIRED` (no burst of stale reminders).
#[tokio::test]
async fn a_sweep_after_a_long_stop_sends_only_the_latest_reminder_due() {
    let (w, heard) = world(1, |_| {}).await;
    let (a, end_a) = w.issued("down-a.test").await;
    w.sweep_at(end_a - 100 * DAY).await;
    // Down from 100 days before the end to 2 days before: the 3-day reminder only.
    w.sweep_at(end_a - 2 * DAY).await;
    assert_eq!(
        heard[0].events(),
        vec![("certificate_expiring", a.to_string(), Some(end_a))]
    );
    // Down again past the end (the 1-day threshold passed meanwhile): CERT_EXPIRED only.
    w.sweep_at(end_a + 5 * DAY).await;
    w.sweep_at(end_a + 6 * DAY).await;
    assert_eq!(
        heard[0].events(),
        vec![
            ("certificate_expiring", a.to_string(), Some(end_a)),
            ("certificate_expired", a.to_string(), Some(end_a)),
        ]
    );
}

/// `DisableNotification` / `EnableNotification` keep controlling the reminders per kind (a kind
/// turned off at a threshold is not sent later for it), and `[notifications] expiring_days`
/// sets the thresholds.
#[tokio::test]
async fn kinds_turned_off_are_not_sent_and_configured_thresholds_apply() {
    let (w, heard) = world(1, |c| {
        c.reminders = ReminderSettings::new(&[2, 10]).unwrap();
    })
    .await;
    let (id, end) = w.issued("quiet.test").await;
    w.set_notice(&id, "CERT_EXPIRING", false).await;
    w.sweep_at(end - 30 * DAY).await;
    w.sweep_at(end - 10 * DAY).await;
    assert!(heard[0].events().is_empty(), "{:?}", heard[0].events());
    // Turned on again: the next threshold is sent, the one passed while off is not.
    w.set_notice(&id, "CERT_EXPIRING", true).await;
    w.sweep_at(end - 5 * DAY).await;
    assert!(heard[0].events().is_empty(), "{:?}", heard[0].events());
    w.sweep_at(end - 2 * DAY).await;
    assert_eq!(
        heard[0].events(),
        vec![("certificate_expiring", id.to_string(), Some(end))]
    );
    // CERT_EXPIRED off: not sent, but the certificate is stored EXPIRED all the same.
    w.set_notice(&id, "CERT_EXPIRED", false).await;
    w.sweep_at(end + HOUR).await;
    assert_eq!(heard[0].count(), 1, "{:?}", heard[0].events());
    let stored = w.store.certificate(&id).await.unwrap().unwrap();
    assert_eq!(stored.status, CertificateStatus::Expired);
}

/// A renewal tells the account once (`renewed`, with the new version and its expiry, queued with
/// the renewal job's end), and from then on the reminders follow the new version's expiry only.
#[tokio::test]
async fn a_renewed_certificate_is_told_once_and_reminded_of_its_new_expiry_only() {
    let (w, heard) = world(1, |_| {}).await;
    let (id, end) = w.issued("renewed.test").await;
    w.sweep_at(end - 30 * DAY).await;
    assert_eq!(heard[0].count(), 1);
    assert_eq!(w.scm.renew_now(&w.admin, &id).await.unwrap(), 1);
    w.run_jobs().await;
    let end2 = w.not_after(&id).await;
    assert!(end2 > end + 300 * DAY, "{end2} {end}");
    let renewed: Vec<Notification> = heard[0]
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|n| n.event.name() == "renewed")
        .cloned()
        .collect();
    assert_eq!(renewed.len(), 1, "{renewed:?}");
    assert!(
        matches!(
            &renewed[0].event,
            Event::Renewed { certificate_id, name, version: 2, not_after_ms }
                if *certificate_id == id.to_string() && !name.is_empty() && *not_after_ms == end2
        ),
        "{renewed:?}"
    );
    // The old expiry's thresholds and end pass: nothing (the certificate is not expired).
    for at in [end - 14 * DAY, end - DAY, end + HOUR, end + 2 * DAY] {
        w.sweep_at(at).await;
    }
    assert_eq!(heard[0].count(), 2, "{:?}", heard[0].events());
    let stored = w.store.certificate(&id).await.unwrap().unwrap();
    assert_eq!(stored.status, CertificateStatus::Issued);
    // The new expiry's first threshold.
    w.sweep_at(end2 - 30 * DAY).await;
    assert_eq!(
        heard[0].events().last(),
        Some(&("certificate_expiring", id.to_string(), Some(end2)))
    );
    assert_eq!(heard[0].count(), 3);
}

/// A validation not passed by its deadline tells the account once per name that failed, with
/// what its last check saw.
#[tokio::test]
async fn a_validation_ending_unpassed_tells_each_failed_name_once() {
    // No DNS resolver for validation: every check fails.
    let (w, heard) = world(1, |_| {}).await;
    let id = w.buy("MULTI_DOMAIN", 2).await;
    w.apply(&id, "www.example.com", "api.example.com").await;
    w.run_jobs().await;
    assert_eq!(
        w.scm.certificate(&w.admin, &id).await.unwrap().status,
        CertificateStatus::CheckingDomain
    );
    assert_eq!(heard[0].count(), 0, "nothing before the deadline");
    w.clock
        .advance(time::Duration::days(7) + time::Duration::minutes(1));
    w.run_jobs().await;
    w.clock.advance(time::Duration::hours(1));
    w.run_jobs().await;
    assert_eq!(
        w.scm.certificate(&w.admin, &id).await.unwrap().status,
        CertificateStatus::Unpassed
    );
    let got = heard[0].0.lock().unwrap().clone();
    let mut failed: Vec<(String, String)> = got
        .iter()
        .filter_map(|n| match &n.event {
            Event::ValidationFailed {
                certificate_id,
                domain,
                error,
                ..
            } if *certificate_id == id.to_string() => Some((domain.clone(), error.clone())),
            _ => None,
        })
        .collect();
    failed.sort();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        failed.iter().map(|(d, _)| d.as_str()).collect::<Vec<_>>(),
        ["api.example.com", "www.example.com"]
    );
    assert!(
        failed.iter().all(|(_, e)| e.contains("no DNS resolver")),
        "{failed:?}"
    );
}
