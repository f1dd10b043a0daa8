//! Domain control validation: the built-in CA issues a name the account has not pre-authorized
//! (its policy's suffixes) only once the account has proven control of it, and checks the proof
//! itself, in jobs.
//!
//! - **What to prove.** For `DNS`, a TXT record at `_dnsauth.<name>` (for `*.example.com`, at
//!   `_dnsauth.example.com`) holding the value shown in `authentification`; for `FILE`, a file
//!   at `http://<name>/.well-known/pki-validation/<file>` holding it. OpenSCM accepts `FILE`
//!   for domain names (not only IP addresses, as the reference's products do): it is the HTTP
//!   method every ACME CA offers. The value is made once per account and name and kept, so a
//!   record left in place proves control again at every renewal.
//! - **When.** `apply` moves the certificate to `CHECKING_DOMAIN` and queues a `validate` job,
//!   which checks at once, then again after half the time since the validation began (at
//!   least 5 s, at most [`ValidationSettings::max_interval`]), until every name passes (then
//!   `ISSUING` → `ISSUED`) or the deadline passes (`UNPASSED`, with the reason per name in the
//!   certificate's history).
//! - **Reuse.** A name that passed within [`ValidationSettings::reuse`] is not checked again for
//!   the same account.

use std::collections::HashSet;

use scm_pki::DnsName;
use scm_proto::{CertificateId, CertificateStatus, DomainId};
use scm_store::{
    CertificateRecord, CheckResult, EndValidation, JobRecord, NewEvent, ValidationRecord,
    VersionExpect,
};
use serde::{Deserialize, Serialize};

use crate::application::ApplicationForm;
use crate::jobs::{Attempt, JobKind};
use crate::notify::{Event, Notification};
use crate::service::Scm;
use crate::{DomainError, random};

use super::ValidationSettings;
use super::versions::VersionReason;

pub use super::names::ValidationMethod as Method;

/// The method of an application: its `domain_method`, `DNS` when it names none OpenSCM checks
/// (`apply` refuses `EMAIL` for names that need proof).
pub fn method_of(form: &ApplicationForm) -> Method {
    form.domain_method
        .as_deref()
        .and_then(|m| Method::from_form(&m.trim().to_ascii_uppercase()))
        .unwrap_or(Method::Dns)
}

/// What the account must publish for one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The name proven.
    pub domain: String,
    /// For `DNS` the record's name (`_dnsauth.<name>`); for `FILE` the file's URL.
    pub record_name: String,
    /// `TXT` or `FILE`.
    pub record_type: String,
    /// The TXT value, or the file's content.
    pub record_value: String,
}

/// The input of a `validate` job: the certificate whose application is being validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ValidateJob {
    /// The certificate.
    pub cert: String,
}

/// The dedupe key of the validation job of `id` (one live per certificate).
pub(crate) fn job_key(id: &CertificateId) -> String {
    format!("validate:{id}")
}

/// A fresh value: 40 characters of lower-case letters and digits (about 206 bits).
fn new_value() -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let bytes = random::bytes::<40>().unwrap_or([0; 40]);
    bytes
        .iter()
        .map(|b| char::from(ALPHABET.get(usize::from(b % 32)).copied().unwrap_or(b'a')))
        .collect()
}

/// The name the proof of `name` is published under: the base of a wildcard.
fn base(name: &str) -> &str {
    name.strip_prefix("*.").unwrap_or(name)
}

/// The file name of FILE validation for a record value (its first 16 characters: the value
/// itself is published anyway).
fn file_name(value: &str) -> String {
    let head: String = value.chars().take(16).collect();
    format!("openscm-{head}.txt")
}

/// Names of `names` that the account's `policy` (`;`-separated suffixes) does not pre-authorize.
pub fn needing_proof(policy: &str, names: &[DnsName]) -> Vec<DnsName> {
    let suffixes: Vec<&str> = policy
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let mut seen = HashSet::new();
    names
        .iter()
        .filter(|n| !suffixes.iter().any(|s| n.is_under(s)))
        .filter(|n| seen.insert(n.as_str().to_owned()))
        .cloned()
        .collect()
}

/// Whether `rec` proves control now (passed within the reuse period).
fn still_valid(rec: &ValidationRecord, settings: &ValidationSettings, now_ms: i64) -> bool {
    let reuse = i64::try_from(settings.reuse.as_millis()).unwrap_or(i64::MAX);
    rec.validated_ms
        .is_some_and(|at| at <= now_ms && now_ms - at < reuse)
}

/// When to check again, `elapsed_ms` after the validation began: half of that, from 5 s up to
/// the settings' maximum.
pub fn next_check_in_ms(settings: &ValidationSettings, elapsed_ms: i64) -> i64 {
    let max = i64::try_from(settings.max_interval.as_millis()).unwrap_or(300_000);
    (elapsed_ms / 2).clamp(5_000, max.max(5_000))
}

/// How a round of checks ended.
pub(crate) enum Round {
    /// Every name proves control.
    Passed,
    /// Some do not: each with what its check saw.
    Pending(Vec<(String, String)>),
}

impl Scm {
    /// The proofs the account must publish for the names of `cert` that need one (empty when
    /// none does, or when nothing was applied for).
    pub async fn proofs(&self, cert: &CertificateRecord) -> Result<Vec<Proof>, DomainError> {
        if let Some(acme) = self.acme_proofs(cert).await? {
            return Ok(acme);
        }
        let waiting = matches!(
            cert.status,
            CertificateStatus::CheckingDomain | CertificateStatus::Unpassed
        ) || cert.lifecycle.validation_started_ms.is_some();
        let Some(saved) = cert.application.as_ref().filter(|_| waiting) else {
            return Ok(Vec::new());
        };
        let form = ApplicationForm::from_record(saved)?;
        let account = self
            .account(&cert.domain_id)
            .await?
            .ok_or(DomainError::OtherTenant)?;
        let names = needing_proof(&account.policy, &form.names());
        let records = self.validation_records(&cert.domain_id, &names).await?;
        let method = method_of(&form);
        Ok(records
            .iter()
            .map(|r| self.proof(&r.name, &r.value, method))
            .collect())
    }

    /// The content of the FILE validation file `file` of `host` (the request's `Host`, a port
    /// allowed), when OpenSCM answers on the name's port 80 itself (`[acme] http01_listen`).
    pub async fn hosted_validation_file(
        &self,
        host: &str,
        file: &str,
    ) -> Result<Option<String>, DomainError> {
        let Some(prefix) = file
            .strip_prefix("openscm-")
            .and_then(|f| f.strip_suffix(".txt"))
            .filter(|p| p.len() == 16 && p.bytes().all(|b| b.is_ascii_alphanumeric()))
        else {
            return Ok(None);
        };
        let name = host
            .rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(h, _)| h)
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let Ok(name) = DnsName::parse(&name) else {
            return Ok(None);
        };
        Ok(self.store.validation_file(name.as_str(), prefix).await?)
    }

    fn proof(&self, name: &str, value: &str, method: Method) -> Proof {
        match method {
            Method::Dns => Proof {
                domain: name.to_owned(),
                record_name: format!("_dnsauth.{}", base(name)),
                record_type: "TXT".into(),
                record_value: value.to_owned(),
            },
            Method::File => Proof {
                domain: name.to_owned(),
                record_name: self.file_url(name, value),
                record_type: "FILE".into(),
                record_value: value.to_owned(),
            },
        }
    }

    fn file_url(&self, name: &str, value: &str) -> String {
        let port = match self.config.probes.http_port {
            80 => String::new(),
            p => format!(":{p}"),
        };
        format!(
            "http://{}{port}/.well-known/pki-validation/{}",
            base(name),
            file_name(value)
        )
    }

    async fn validation_records(
        &self,
        account: &DomainId,
        names: &[DnsName],
    ) -> Result<Vec<ValidationRecord>, DomainError> {
        let names: Vec<String> = names.iter().map(|n| n.as_str().to_owned()).collect();
        Ok(self
            .store
            .validation_records(account, &names, &new_value, self.clock.now_ms())
            .await?)
    }

    /// The names of `form` that `account` must still prove control of now: not pre-authorized by
    /// its policy, and not proven within the reuse period.
    pub(crate) async fn unproven(
        &self,
        account: &DomainId,
        form: &ApplicationForm,
    ) -> Result<Vec<ValidationRecord>, DomainError> {
        let acc = self
            .account(account)
            .await?
            .ok_or(DomainError::OtherTenant)?;
        let names = needing_proof(&acc.policy, &form.names());
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.clock.now_ms();
        Ok(self
            .validation_records(account, &names)
            .await?
            .into_iter()
            .filter(|r| !still_valid(r, &self.config.validation, now))
            .collect())
    }

    /// Checks each of `records` once, records the outcomes (and a history entry for each name
    /// that passed, or whose failure changed), and says whether all passed.
    pub(crate) async fn check_round(
        &self,
        cert: &CertificateRecord,
        records: &[ValidationRecord],
        method: Method,
        actor: &str,
    ) -> Result<Round, DomainError> {
        let mut failing = Vec::new();
        for rec in records {
            let now = self.clock.now_ms();
            let outcome = self.check_one(rec, method).await;
            let (result, event) = match &outcome {
                Ok(()) => (
                    CheckResult::Passed(method.as_str().into()),
                    Some(NewEvent {
                        event: "validation_passed".into(),
                        detail: format!("{} ({})", rec.name, method.as_str()),
                        actor: actor.into(),
                    }),
                ),
                Err(why) => (
                    CheckResult::Failed(why.clone()),
                    (rec.last_error.as_deref() != Some(why.as_str())).then(|| NewEvent {
                        event: "validation_failed".into(),
                        detail: format!("{}: {why}", rec.name),
                        actor: actor.into(),
                    }),
                ),
            };
            self.store
                .record_check(&cert.domain_id, &rec.name, &result, now)
                .await?;
            if let Some(event) = event {
                self.store.record_event(&cert.id, now, &event).await?;
            }
            if let Err(why) = outcome {
                failing.push((rec.name.clone(), why));
            }
        }
        Ok(if failing.is_empty() {
            Round::Passed
        } else {
            Round::Pending(failing)
        })
    }

    /// One check of one name: `Err` says what it saw.
    async fn check_one(&self, rec: &ValidationRecord, method: Method) -> Result<(), String> {
        match method {
            Method::Dns => {
                let Some(txt) = &self.config.probes.txt else {
                    return Err("this server has no DNS resolver for validation".into());
                };
                let at = format!("_dnsauth.{}", base(&rec.name));
                let found = txt.txt(&at).await.map_err(|e| e.reason)?;
                if found.iter().any(|v| v.trim() == rec.value) {
                    Ok(())
                } else if found.is_empty() {
                    Err(format!("no TXT record at {at}"))
                } else {
                    Err(format!(
                        "the TXT records at {at} do not hold the expected value ({} found)",
                        found.len()
                    ))
                }
            }
            Method::File => {
                let Some(files) = &self.config.probes.files else {
                    return Err("this server cannot fetch validation files".into());
                };
                let url = self.file_url(&rec.name, &rec.value);
                let file = files.fetch(&url).await.map_err(|e| e.reason)?;
                if file.body.trim() == rec.value {
                    Ok(())
                } else {
                    Err(format!("{} does not hold the expected content", file.url))
                }
            }
        }
    }

    /// Starts the validation of an application (`PAID` → `CHECKING_DOMAIN`): stores it, and
    /// queues the job that checks, at once.
    pub(crate) async fn start_application_validation(
        &self,
        cert: &CertificateRecord,
        form: &ApplicationForm,
        names: &[ValidationRecord],
        actor: &str,
    ) -> Result<bool, DomainError> {
        let now = self.clock.now_ms();
        let payload = serde_json::to_string(&ValidateJob {
            cert: cert.id.to_string(),
        })
        .map_err(|e| DomainError::internal_from("job payload", e))?;
        let job = JobKind::Validate.job(payload, Some(job_key(&cert.id)), now);
        let listed: Vec<&str> = names.iter().map(|r| r.name.as_str()).collect();
        let event = NewEvent {
            event: "applied".into(),
            detail: format!(
                "domain validation ({}) of {}",
                method_of(form).as_str(),
                listed.join(", ")
            ),
            actor: actor.into(),
        };
        let recorded = self
            .store
            .start_validation(
                &cert.id,
                CertificateStatus::Paid,
                CertificateStatus::CheckingDomain,
                Some(&form.to_record()?),
                &event,
                Some(&job),
                now,
            )
            .await
            .inspect(|_| self.cache.forget_certificate(&cert.domain_id, &cert.id))?;
        if recorded {
            self.jobs.wake();
        }
        Ok(recorded)
    }

    /// A `validate` job: one round of checks of a certificate in `CHECKING_DOMAIN`; when every
    /// name passes, issuance (`ISSUING` → `ISSUED`); at the deadline, `UNPASSED`; otherwise a
    /// look again later. A certificate no longer waiting (withdrawn, deleted) ends the job.
    pub(crate) async fn attempt_validation(&self, job: &JobRecord, v: &ValidateJob) -> Attempt {
        let actor = format!("job {}", job.id);
        match self.validation_step(v, &actor).await {
            Ok(Step::Done) => Attempt::Done {
                effects: Vec::new(),
            },
            Ok(Step::Unpassed(effects)) => Attempt::Done { effects },
            Ok(Step::Again(until_ms)) => crate::jobs::not_yet(until_ms),
            Err(e) => Attempt::Failed {
                message: e.to_string(),
                transient: true,
                effects: Vec::new(),
            },
        }
    }

    async fn validation_step(&self, v: &ValidateJob, actor: &str) -> Result<Step, DomainError> {
        let Ok(id) = CertificateId::try_from(v.cert.as_str()) else {
            return Ok(Step::Done);
        };
        let Some(cert) = self.store.certificate(&id).await? else {
            return Ok(Step::Done);
        };
        let Some(saved) = cert.application.as_ref() else {
            return Ok(Step::Done);
        };
        let form = ApplicationForm::from_record(saved)?;
        match cert.status {
            CertificateStatus::CheckingDomain => {}
            // A crash between the two steps of issuance: finish it.
            CertificateStatus::Issuing => {
                self.issue_version(
                    &cert,
                    &form,
                    VersionExpect::Status(CertificateStatus::Issuing),
                    VersionReason::Issued,
                    actor,
                )
                .await?;
                return Ok(Step::Done);
            }
            _ => return Ok(Step::Done),
        }
        let now = self.clock.now_ms();
        let started = cert.lifecycle.validation_started_ms.unwrap_or(now);
        let unproven = self.unproven(&cert.domain_id, &form).await?;
        let round = if unproven.is_empty() {
            Round::Passed
        } else {
            self.check_round(&cert, &unproven, method_of(&form), actor)
                .await?
        };
        match round {
            Round::Passed => {
                let event = NewEvent {
                    event: "validated".into(),
                    detail: "every name proves control; issuing".into(),
                    actor: actor.into(),
                };
                if self
                    .store
                    .transition(
                        &cert.id,
                        CertificateStatus::CheckingDomain,
                        CertificateStatus::Issuing,
                        &event,
                        now,
                    )
                    .await?
                {
                    self.issue_version(
                        &cert,
                        &form,
                        VersionExpect::Status(CertificateStatus::Issuing),
                        VersionReason::Issued,
                        actor,
                    )
                    .await?;
                }
                self.cache.forget_certificate(&cert.domain_id, &cert.id);
                Ok(Step::Done)
            }
            Round::Pending(failing) => {
                let deadline =
                    i64::try_from(self.config.validation.deadline.as_millis()).unwrap_or(i64::MAX);
                let now = self.clock.now_ms();
                if now.saturating_sub(started) >= deadline {
                    let reasons: Vec<String> = failing
                        .iter()
                        .map(|(n, why)| format!("{n}: {why}"))
                        .collect();
                    let end = EndValidation {
                        expect: CertificateStatus::CheckingDomain,
                        to: CertificateStatus::Unpassed,
                        job_key: job_key(&cert.id),
                        event: NewEvent {
                            event: "unpassed".into(),
                            detail: format!(
                                "domain validation not passed by its deadline: {}",
                                reasons.join("; ")
                            ),
                            actor: actor.into(),
                        },
                        now_ms: now,
                    };
                    let ended = self.store.end_validation(&cert.id, &end).await?;
                    self.cache.forget_certificate(&cert.domain_id, &cert.id);
                    if !ended {
                        // Another server ended it (and told).
                        return Ok(Step::Done);
                    }
                    tracing::info!(cert = %cert.id, "domain validation not passed by its deadline");
                    // One `validation_failed` per name that did not pass, queued with this
                    // job's end.
                    let effects = failing
                        .into_iter()
                        .flat_map(|(domain, error)| {
                            let n = Notification {
                                account: cert.domain_id.to_string(),
                                at_ms: now,
                                event: Event::ValidationFailed {
                                    certificate_id: cert.id.to_string(),
                                    name: cert.name.clone(),
                                    domain,
                                    error,
                                },
                            };
                            self.notify_jobs(&cert.domain_id, &n, now)
                        })
                        .collect();
                    return Ok(Step::Unpassed(effects));
                }
                let next =
                    now + next_check_in_ms(&self.config.validation, now.saturating_sub(started));
                Ok(Step::Again(next.min(started.saturating_add(deadline))))
            }
        }
    }
}

/// What a validation step leaves.
enum Step {
    /// Nothing more to do.
    Done,
    /// Ended `UNPASSED` at its deadline: these effects (the account's notifications) go with
    /// the job's end.
    Unpassed(Vec<scm_store::JobEffect>),
    /// Look again at this time.
    Again(i64),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<DnsName> {
        list.iter().map(|n| DnsName::parse(n).unwrap()).collect()
    }

    #[test]
    fn names_under_the_policy_need_no_proof() {
        let need = needing_proof(
            ".test;.internal",
            &names(&[
                "a.test",
                "www.example.com",
                "*.shop.example.com",
                "www.example.com",
            ]),
        );
        let need: Vec<&str> = need.iter().map(DnsName::as_str).collect();
        assert_eq!(need, ["www.example.com", "*.shop.example.com"]);
    }

    #[test]
    fn checks_are_spaced_out_from_seconds_to_the_cap() {
        let s = ValidationSettings::default();
        assert_eq!(next_check_in_ms(&s, 0), 5_000);
        assert_eq!(next_check_in_ms(&s, 60_000), 30_000);
        assert_eq!(next_check_in_ms(&s, 86_400_000), 300_000);
    }

    #[test]
    fn values_are_long_and_from_a_dns_safe_alphabet() {
        let (a, b) = (new_value(), new_value());
        assert_eq!(a.len(), 40);
        assert_ne!(a, b);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_lowercase() || (b'2'..=b'7').contains(&c))
        );
        assert_eq!(base("*.a.example.com"), "a.example.com");
        assert!(file_name(&a).starts_with("openscm-") && file_name(&a).ends_with(".txt"));
    }
}
