//! Issuance through the issuers of a brand, one resumable step per job attempt.
//!
//! Each version made by an ACME issuer (the first, from `apply`, and every renewal) is one row
//! of `acme_orders` and one `acme-order` job (dedupe `acme-order:{cert}:{seq}`). The row is the
//! state, as cert-manager keeps it in `Order.status`: the handler reads it, does one thing, and
//! writes what it learned, conditional on the row's revision (two servers never both advance
//! one order):
//!
//! - `new`: take a slot of the CA account's order cap (`max_orders` per window, counted over
//!   every server) and write `placing` *before* asking the CA, then place the order and store
//!   its URL (`placed`). Only a crash between the CA's answer and that write can leave an order
//!   behind at the CA.
//! - `placed`: read the order. Pending authorizations get their challenge published (http-01:
//!   a token every server's listener answers; dns-01: a TXT record through RFC 2136 when the
//!   issuer has `dns01`, else shown in `authentification` for the user to publish) and answered
//!   once OpenSCM's own resolver sees the record. A ready order is finalized with the
//!   certificate's key (made once and kept sealed on the row, or the user's CSR), then the
//!   chain is downloaded and stored as the new version.
//! - Failures are classified ([`AcmeError`]): one another CA could fix (unreachable, 5xx,
//!   `rateLimited`, a refusal) moves to the brand's next issuer at once, recorded in the
//!   certificate's history; `rateLimited` also pauses the CA account until the time it names.
//!   A failed validation does not move on (another CA would fail it too): it counts against the
//!   name, and a name failing [`STOP_AFTER`] times in a row within a day is left alone for a day
//!   (or until a person applies or renews again), its account told once.

use std::time::Duration;

use scm_pki::{DnsName, PrivateKey, SubjectFields};
use scm_proto::{CertificateId, CertificateStatus};
use scm_store::{
    AcmeOrderRecord, CertificateRecord, EndValidation, IssuedRecord, JobEffect, JobRecord,
    NewEvent, NewJob, OrderSlot, VersionExpect,
};
use serde::{Deserialize, Serialize};

use super::acme::{
    AccountSecret, AcmeError, ChallengeKind, ItemStatus, NewOrderSpec, OrderStatus, OrderView,
};
use super::{AcmeIssuer, IssuerChoice, acme_ca_id};
use crate::application::ApplicationForm;
use crate::clock::unix_ms;
use crate::jobs::{Attempt, JobKind, millis, not_yet};
use crate::lifecycle::names::ValidationMethod;
use crate::lifecycle::validation::method_of;
use crate::lifecycle::versions::VersionReason;
use crate::notify::{Event, Notification};
use crate::service::Scm;
use crate::{DomainError, issuance};

/// Failed validations of one name in a row, within [`FAILURE_WINDOW`], after which the name is
/// not tried again for a day unless a person acts.
pub const STOP_AFTER: u32 = 5;
/// The window failures of a name are counted over, and how long a stopped name is left alone.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(86_400);
/// How long an http-01 token is answered at most.
const TOKEN_TTL: Duration = Duration::from_secs(7 * 86_400);
/// How long after a CA-side failure with no other issuer to try the same issuer is tried again.
const RETRY_SAME: Duration = Duration::from_secs(60);

/// How long after every issuer refused an order the first is asked again.
const REFUSED_AGAIN: Duration = Duration::from_secs(3600);

/// The input of an `acme-order` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OrderJob {
    /// The certificate.
    pub cert: String,
    /// The version the order makes.
    pub seq: u32,
}

/// The dedupe key of the order job of version `seq` of `cert`.
pub(crate) fn job_key(cert: &CertificateId, seq: u32) -> String {
    format!("acme-order:{cert}:{seq}")
}

/// The order job of version `seq` of `cert`, due at `due_ms`.
pub(crate) fn order_job(
    cert: &CertificateId,
    seq: u32,
    due_ms: i64,
) -> Result<NewJob, DomainError> {
    let payload = serde_json::to_string(&OrderJob {
        cert: cert.to_string(),
        seq,
    })
    .map_err(|e| DomainError::internal_from("job payload", e))?;
    Ok(JobKind::AcmeOrder.job(payload, Some(job_key(cert, seq)), due_ms))
}

/// A challenge published for the current order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The name authorized (`*.example.com` for a wildcard).
    pub name: String,
    /// `http-01` or `dns-01`.
    pub kind: String,
    /// The challenge's URL.
    pub url: String,
    /// http-01: the token (the listener answers it).
    #[serde(default)]
    pub token: String,
    /// dns-01: the TXT record's name; http-01: the URL the CA fetches.
    pub record_name: String,
    /// dns-01: the TXT value; http-01: the key authorization.
    pub value: String,
    /// Published by OpenSCM (RFC 2136, or the http-01 listener), so withdrawn by it.
    #[serde(default)]
    pub automatic: bool,
    /// Answered (the CA was told to validate).
    #[serde(default)]
    pub answered: bool,
}

/// The domain's part of an order row (`acme_orders.data`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OrderData {
    /// The brand's issuers when the issuance began, in order.
    pub issuers: Vec<String>,
    /// `DNS` or `FILE`.
    pub method: String,
    /// The names.
    pub names: Vec<String>,
    /// When the issuance began.
    pub started_ms: i64,
    /// A renewal a person asked for.
    #[serde(default)]
    pub manual: bool,
    /// The challenges of the current order.
    #[serde(default)]
    pub challenges: Vec<Published>,
    /// Polls of the current order since it last changed (spaces them out).
    #[serde(default)]
    pub polls: u32,
    /// Transient failures in a row at the current issuer.
    #[serde(default)]
    pub failures: u32,
    /// The account was told that a person must publish a record (`validation_needed`).
    #[serde(default)]
    pub told: bool,
    /// Names whose stop the account was told of (`validation_stopped`), with the run's start.
    #[serde(default)]
    pub stopped_told: Vec<(String, i64)>,
}

impl OrderData {
    fn parse(text: &str) -> Result<Self, DomainError> {
        serde_json::from_str(text).map_err(|e| DomainError::internal_from("acme_orders.data", e))
    }

    fn text(&self) -> Result<String, DomainError> {
        serde_json::to_string(self).map_err(|e| DomainError::internal_from("acme_orders.data", e))
    }
}

impl Order {
    /// The condition and the reason of the version this order makes: the first issuance
    /// expects the certificate in `first` (its status), a renewal the version before.
    fn version_to_make(&self, first: CertificateStatus) -> (VersionExpect, VersionReason) {
        let seq = self.row.seq;
        if seq == 1 {
            (VersionExpect::Status(first), VersionReason::Issued)
        } else if self.data.manual {
            (
                VersionExpect::Current(seq.saturating_sub(1)),
                VersionReason::ManualRenewal,
            )
        } else {
            (
                VersionExpect::Current(seq.saturating_sub(1)),
                VersionReason::Renewal,
            )
        }
    }
}

/// What one step of an order leaves.
enum Step {
    /// Finished (issued, or nothing more to do), with these effects.
    Done(Vec<JobEffect>),
    /// Look again at this time.
    Wait(i64),
}

/// A row and its data, read for one step.
struct Order {
    row: AcmeOrderRecord,
    data: OrderData,
}

impl Scm {
    /// Starts the issuance of version `seq` of `cert` through the issuers `issuers` (names, in
    /// order): stores the order row (replacing one that ended without a version) and returns
    /// the job that carries it. The caller queues the job with its own state change.
    pub(crate) async fn prepare_order(
        &self,
        cert: &CertificateRecord,
        form: &ApplicationForm,
        seq: u32,
        issuers: Vec<String>,
        manual: bool,
    ) -> Result<NewJob, DomainError> {
        let now = self.clock.now_ms();
        let first = issuers
            .first()
            .cloned()
            .unwrap_or_else(|| super::BUILTIN.to_owned());
        let data = OrderData {
            issuers,
            method: method_of(form).as_str().to_owned(),
            names: form.names().iter().map(|n| n.as_str().to_owned()).collect(),
            started_ms: now,
            manual,
            ..OrderData::default()
        };
        let fresh = AcmeOrderRecord {
            cert_id: cert.id.clone(),
            seq,
            domain_id: cert.domain_id.clone(),
            issuer: first,
            issuer_index: 0,
            state: "new".into(),
            order_url: None,
            key_sealed: None,
            data: data.text()?,
            placed_ms: None,
            error: None,
            rev: 0,
            created_ms: now,
            updated_ms: now,
        };
        if !self.store.insert_acme_order(&fresh).await? {
            // One exists: an issuance of this version that is under way continues; one that
            // ended without a version (withdrawn, given up) starts again.
            if let Some(old) = self.store.acme_order(&cert.id, seq).await?
                && matches!(old.state.as_str(), "failed" | "withdrawn")
            {
                let again = AcmeOrderRecord {
                    rev: old.rev,
                    created_ms: old.created_ms,
                    ..fresh
                };
                self.store.update_acme_order(&again).await?;
            }
        }
        // A person asking again lifts the stop of names that kept failing.
        if manual || seq == 1 {
            self.store
                .clear_name_failures(&cert.domain_id, &data.names)
                .await?;
        }
        order_job(&cert.id, seq, now)
    }

    /// Checks that `issuer` can issue `form` for `cert`'s product: refused with the issuer and
    /// the limit named.
    pub(crate) fn check_acme_product(
        issuer: &AcmeIssuer,
        cert: &CertificateRecord,
        form: &ApplicationForm,
    ) -> Result<(), DomainError> {
        if cert.product.cert_type.is_organisation_validated()
            || cert.product.cert_type.as_str().starts_with("EV")
        {
            return Err(DomainError::invalid(
                "cert_type",
                format!(
                    "{} is issued by the ACME issuer \"{}\", which issues domain-validated \
                     certificates only",
                    cert.product.cert_type, issuer.name
                ),
            ));
        }
        let names = form.names();
        if names.len() > issuer.max_names {
            return Err(DomainError::invalid(
                "domain",
                format!(
                    "{} names: the ACME issuer \"{}\" issues at most {} names per certificate",
                    names.len(),
                    issuer.name,
                    issuer.max_names
                ),
            ));
        }
        let method = form
            .domain_method
            .as_deref()
            .map(|m| m.trim().to_ascii_uppercase());
        let kind = match method.as_deref() {
            None | Some("DNS") => ChallengeKind::Dns01,
            Some("FILE") => ChallengeKind::Http01,
            Some(other) => {
                return Err(DomainError::invalid(
                    "domain_method",
                    format!(
                        "{other} validation is not offered by the ACME issuer \"{}\": use DNS \
                         (dns-01) or FILE (http-01)",
                        issuer.name
                    ),
                ));
            }
        };
        if !issuer.challenges.contains(&kind) {
            return Err(DomainError::invalid(
                "domain_method",
                format!(
                    "the ACME issuer \"{}\" is not configured for {}",
                    issuer.name,
                    kind.as_str()
                ),
            ));
        }
        if kind == ChallengeKind::Http01 && names.iter().any(DnsName::is_wildcard) {
            return Err(DomainError::invalid(
                "domain_method",
                "a wildcard name can only be validated by DNS (dns-01)",
            ));
        }
        Ok(())
    }

    /// Starts the first issuance of `cert` through an ACME issuer (`PAID` → `CHECKING_DOMAIN`,
    /// the order job queued in the same transaction). `false` when the status moved on.
    pub(crate) async fn start_acme_issuance(
        &self,
        cert: &CertificateRecord,
        form: &ApplicationForm,
        issuers: Vec<String>,
        actor: &str,
    ) -> Result<bool, DomainError> {
        let first = issuers.first().cloned().unwrap_or_default();
        let job = self.prepare_order(cert, form, 1, issuers, true).await?;
        let now = self.clock.now_ms();
        let names: Vec<String> = form.names().iter().map(|n| n.as_str().to_owned()).collect();
        let event = NewEvent {
            event: "applied".into(),
            detail: format!(
                "ordering from the ACME issuer \"{first}\" ({}) for {}",
                method_of(form).as_str(),
                names.join(", ")
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

    /// What the account must publish for the ACME order of `cert` under way: dns-01 records
    /// OpenSCM does not publish itself, and (for information) the http-01 files it serves.
    pub(crate) async fn acme_proofs(
        &self,
        cert: &CertificateRecord,
    ) -> Result<Option<Vec<crate::lifecycle::validation::Proof>>, DomainError> {
        let Some(row) = self.store.latest_acme_order(&cert.id).await? else {
            return Ok(None);
        };
        if matches!(row.state.as_str(), "done" | "failed" | "withdrawn") {
            return Ok(None);
        }
        let data = OrderData::parse(&row.data)?;
        Ok(Some(
            data.challenges
                .iter()
                .map(|p| crate::lifecycle::validation::Proof {
                    domain: p.name.clone(),
                    record_name: p.record_name.clone(),
                    record_type: if p.kind == ChallengeKind::Dns01.as_str() {
                        "TXT".into()
                    } else {
                        "FILE".into()
                    },
                    record_value: p.value.clone(),
                })
                .collect(),
        ))
    }

    /// The key authorization of an http-01 token, for the challenge listener.
    pub async fn acme_challenge_answer(&self, token: &str) -> Result<Option<String>, DomainError> {
        if token.is_empty()
            || token.len() > 256
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Ok(None);
        }
        Ok(self.store.acme_token(token, self.clock.now_ms()).await?)
    }

    /// An `acme-order` job: one step of the order of version `o.seq` of `o.cert`.
    pub(crate) async fn attempt_order(&self, job: &JobRecord, o: &OrderJob) -> Attempt {
        let actor = format!("job {}", job.id);
        match self.order_step(o, &actor).await {
            Ok(Step::Done(effects)) => Attempt::Done { effects },
            Ok(Step::Wait(until)) => not_yet(until),
            Err(e) => {
                tracing::warn!(job = %job.id, cert = %o.cert, seq = o.seq, error = %e, "ACME order step failed");
                Attempt::Failed {
                    message: e.to_string(),
                    transient: true,
                    effects: Vec::new(),
                }
            }
        }
    }

    async fn order_step(&self, o: &OrderJob, actor: &str) -> Result<Step, DomainError> {
        let Ok(id) = CertificateId::try_from(o.cert.as_str()) else {
            return Ok(Step::Done(Vec::new()));
        };
        let Some(row) = self.store.acme_order(&id, o.seq).await? else {
            return Ok(Step::Done(Vec::new()));
        };
        if matches!(row.state.as_str(), "done" | "failed" | "withdrawn") {
            return Ok(Step::Done(Vec::new()));
        }
        let mut order = Order {
            data: OrderData::parse(&row.data)?,
            row,
        };
        let Some(cert) = self.store.certificate(&id).await? else {
            self.end_order(&mut order, "withdrawn", None).await?;
            return Ok(Step::Done(Vec::new()));
        };
        let still_wanted = if o.seq == 1 {
            matches!(
                cert.status,
                CertificateStatus::CheckingDomain | CertificateStatus::Issuing
            )
        } else {
            cert.lifecycle.current_version == Some(o.seq.saturating_sub(1))
                && Self::renewable_status(cert.status)
        };
        if !still_wanted {
            self.end_order(&mut order, "withdrawn", None).await?;
            return Ok(Step::Done(Vec::new()));
        }
        let Some(saved) = cert.application.as_ref() else {
            self.end_order(&mut order, "failed", Some("no application"))
                .await?;
            return Ok(Step::Done(Vec::new()));
        };
        let form = ApplicationForm::from_record(saved)?;
        let now = self.clock.now_ms();
        // The first issuance ends UNPASSED at the validation deadline.
        if o.seq == 1 {
            let deadline = millis(self.config.validation.deadline);
            if now.saturating_sub(order.data.started_ms) >= deadline {
                let why = order
                    .row
                    .error
                    .clone()
                    .unwrap_or_else(|| "the CA did not issue in time".into());
                return self.order_unpassed(&cert, &mut order, &why, actor).await;
            }
        }
        // A renewal still failing with a tenth of the lifetime left: the account hears it once
        // per version.
        if o.seq > 1
            && let Some(error) = order.row.error.clone()
        {
            let notices = self.renewal_failing(&cert, &error, actor).await?;
            self.enqueue_now(notices).await?;
        }
        let choice = self.config.issuers.choice(&order.row.issuer);
        match choice {
            None => {
                let why = format!(
                    "the issuer \"{}\" is no longer configured",
                    order.row.issuer
                );
                self.next_issuer(&cert, &mut order, &why, actor).await
            }
            Some(IssuerChoice::Builtin) => self.builtin_step(&cert, &form, &mut order, actor).await,
            Some(IssuerChoice::Acme(issuer)) => {
                match self
                    .acme_step(&cert, &form, &issuer, &mut order, actor)
                    .await
                {
                    Ok(step) => Ok(step),
                    Err(StepError::Domain(e)) => Err(e),
                    Err(StepError::Acme(e)) => {
                        self.acme_failed(&cert, &issuer, &mut order, e, actor).await
                    }
                }
            }
        }
    }

    /// Writes the row (conditional on its revision); `false` when another server moved it.
    async fn save(&self, order: &mut Order) -> Result<bool, DomainError> {
        order.row.data = order.data.text()?;
        order.row.updated_ms = self.clock.now_ms();
        if self.store.update_acme_order(&order.row).await? {
            order.row.rev += 1;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Ends an order without a version (`failed` or `withdrawn`), withdrawing what it
    /// published.
    async fn end_order(
        &self,
        order: &mut Order,
        state: &str,
        error: Option<&str>,
    ) -> Result<(), DomainError> {
        self.withdraw_challenges(order).await;
        order.row.state = state.into();
        if let Some(e) = error {
            order.row.error = Some(e.into());
        }
        self.save(order).await?;
        Ok(())
    }

    /// Removes the records OpenSCM published for the current order (best effort: a record
    /// left behind is harmless and logged).
    async fn withdraw_challenges(&self, order: &mut Order) {
        let now = self.clock.now_ms();
        if let Err(e) = self.store.delete_acme_tokens(&order.row.cert_id, now).await {
            tracing::warn!(cert = %order.row.cert_id, error = %e, "cannot remove http-01 tokens");
        }
        if let Some(issuer) = self.config.issuers.acme(&order.row.issuer)
            && let Some(dns) = &issuer.dns01
        {
            for p in &order.data.challenges {
                if p.automatic
                    && p.kind == ChallengeKind::Dns01.as_str()
                    && let Err(e) = dns.remove_txt(&p.record_name, &p.value).await
                {
                    tracing::warn!(cert = %order.row.cert_id, record = %p.record_name, error = %e, "cannot remove a dns-01 record");
                }
            }
        }
        order.data.challenges.clear();
    }

    /// The first issuance ends `UNPASSED` with `why`.
    async fn order_unpassed(
        &self,
        cert: &CertificateRecord,
        order: &mut Order,
        why: &str,
        actor: &str,
    ) -> Result<Step, DomainError> {
        let now = self.clock.now_ms();
        self.end_order(order, "failed", Some(why)).await?;
        let end = EndValidation {
            expect: cert.status,
            to: CertificateStatus::Unpassed,
            job_key: job_key(&cert.id, order.row.seq),
            event: NewEvent {
                event: "unpassed".into(),
                detail: format!("not issued: {why}"),
                actor: actor.into(),
            },
            now_ms: now,
        };
        let ended = self.store.end_validation(&cert.id, &end).await?;
        self.cache.forget_certificate(&cert.domain_id, &cert.id);
        if !ended {
            return Ok(Step::Done(Vec::new()));
        }
        let n = Notification {
            account: cert.domain_id.to_string(),
            at_ms: now,
            event: Event::ValidationFailed {
                certificate_id: cert.id.to_string(),
                name: cert.name.clone(),
                domain: order.data.names.join(", "),
                error: why.into(),
            },
        };
        Ok(Step::Done(self.notify_jobs(&cert.domain_id, &n, now)))
    }

    /// Moves the order to the brand's next issuer (recorded in the history), or, with none
    /// left, waits and tries the first again.
    async fn next_issuer(
        &self,
        cert: &CertificateRecord,
        order: &mut Order,
        why: &str,
        actor: &str,
    ) -> Result<Step, DomainError> {
        let now = self.clock.now_ms();
        let from = order.row.issuer.clone();
        self.withdraw_challenges(order).await;
        let next_index = order.row.issuer_index.saturating_add(1);
        let (index, wait) = match order.data.issuers.get(next_index as usize) {
            Some(_) => (next_index, 0),
            // Every issuer failed: start over after a while.
            None => (0, millis(RETRY_SAME)),
        };
        let to = order
            .data
            .issuers
            .get(index as usize)
            .cloned()
            .unwrap_or_else(|| super::BUILTIN.to_owned());
        order.row.issuer_index = index;
        order.row.issuer = to.clone();
        order.row.state = "new".into();
        order.row.order_url = None;
        order.row.error = Some(why.chars().take(1000).collect());
        order.data.polls = 0;
        order.data.failures = 0;
        if !self.save(order).await? {
            return Ok(Step::Wait(now));
        }
        let detail = if wait == 0 {
            format!("{from} failed ({why}); trying {to}")
        } else {
            format!("{from} failed ({why}); no other issuer, trying {to} again")
        };
        tracing::info!(cert = %cert.id, seq = order.row.seq, %from, %to, "issuer fallback");
        self.store
            .record_event(
                &cert.id,
                now,
                &NewEvent {
                    event: "issuer_fallback".into(),
                    detail,
                    actor: actor.into(),
                },
            )
            .await?;
        Ok(Step::Wait(now.saturating_add(wait)))
    }

    /// The built-in CA's turn in a brand's list: it issues at once, for names the account may
    /// have issued without proof or has proven.
    async fn builtin_step(
        &self,
        cert: &CertificateRecord,
        form: &ApplicationForm,
        order: &mut Order,
        actor: &str,
    ) -> Result<Step, DomainError> {
        let unproven = self.unproven(&cert.domain_id, form).await?;
        if !unproven.is_empty() {
            let names: Vec<&str> = unproven.iter().map(|r| r.name.as_str()).collect();
            let why = format!(
                "the built-in CA issues {} only after the account proves control of them",
                names.join(", ")
            );
            if order.row.issuer_index as usize + 1 < order.data.issuers.len() {
                return self.next_issuer(cert, order, &why, actor).await;
            }
            if order.row.seq == 1 {
                return self.order_unpassed(cert, order, &why, actor).await;
            }
            self.end_order(order, "failed", Some(&why)).await?;
            return Ok(Step::Done(Vec::new()));
        }
        let (expect, reason) = order.version_to_make(cert.status);
        let issued = self
            .issue_version(cert, form, expect, reason, actor)
            .await?;
        self.finish_order(cert, order, issued).await
    }

    /// After a version was recorded (or another server recorded it): the row ends, and a
    /// renewal's pushes and notification go with the job's end.
    async fn finish_order(
        &self,
        cert: &CertificateRecord,
        order: &mut Order,
        issued: Option<IssuedRecord>,
    ) -> Result<Step, DomainError> {
        self.withdraw_challenges(order).await;
        order.row.state = "done".into();
        order.row.error = None;
        self.save(order).await?;
        self.store
            .clear_name_failures(&cert.domain_id, &order.data.names)
            .await?;
        let Some(issued) = issued else {
            return Ok(Step::Done(Vec::new()));
        };
        let seq = order.row.seq;
        let mut effects = Vec::new();
        if let Some(issuer) = self.config.issuers.acme(&order.row.issuer)
            && issuer.ca.offers_ari().await.unwrap_or(false)
        {
            effects.push(JobEffect::Enqueue(super::ari::ari_job(
                &cert.id,
                seq,
                self.clock.now_ms(),
            )?));
        }
        if seq > 1 {
            effects.extend(self.repush_after_renewal(cert).await);
            let now = self.clock.now_ms();
            let n = Notification {
                account: cert.domain_id.to_string(),
                at_ms: now,
                event: Event::Renewed {
                    certificate_id: cert.id.to_string(),
                    name: cert.name.clone(),
                    version: seq,
                    not_after_ms: issued.not_after_ms,
                },
            };
            effects.extend(self.notify_jobs(&cert.domain_id, &n, now));
        }
        Ok(Step::Done(effects))
    }

    /// The credentials of `issuer`'s ACME account, made at the CA on first use and stored
    /// sealed (two servers making one at once keep the first stored).
    async fn acme_account(&self, issuer: &AcmeIssuer) -> Result<AccountSecret, StepError> {
        let aad = format!("acme-account:{}", issuer.name);
        let open = |sealed: &[u8]| -> Result<AccountSecret, StepError> {
            let plain = self
                .master
                .open(sealed, aad.as_bytes())
                .map_err(|e| DomainError::internal_from("opening an ACME account key", e))?;
            let text = String::from_utf8(plain.to_vec())
                .map_err(|e| DomainError::internal_from("an ACME account's credentials", e))?;
            Ok(AccountSecret(zeroize::Zeroizing::new(text)))
        };
        if let Some(rec) = self.store.acme_account(&issuer.name).await? {
            return open(&rec.credentials_sealed);
        }
        let made = issuer.ca.create_account().await.map_err(StepError::Acme)?;
        let sealed = self
            .master
            .seal(made.0.as_bytes(), aad.as_bytes())
            .map_err(|e| DomainError::internal_from("sealing an ACME account key", e))?;
        let now = self.clock.now_ms();
        if self
            .store
            .insert_acme_account(&issuer.name, &sealed, now)
            .await?
        {
            tracing::info!(issuer = %issuer.name, "ACME account created");
            return Ok(made);
        }
        match self.store.acme_account(&issuer.name).await? {
            Some(rec) => open(&rec.credentials_sealed),
            None => Err(DomainError::internal("an ACME account vanished").into()),
        }
    }

    /// One step of an order at an ACME CA.
    async fn acme_step(
        &self,
        cert: &CertificateRecord,
        form: &ApplicationForm,
        issuer: &AcmeIssuer,
        order: &mut Order,
        actor: &str,
    ) -> Result<Step, StepError> {
        if let Some(until) = self.names_stopped(cert, order, actor).await? {
            return Ok(Step::Wait(until));
        }
        let account = self.acme_account(issuer).await?;
        let view = match (order.row.state.as_str(), order.row.order_url.clone()) {
            // A CA that lost the order (or the account) is `Gone`: handled with the other
            // failures, by placing a new one.
            ("placed" | "finalizing", Some(url)) => issuer
                .ca
                .order(&account, &url)
                .await
                .map_err(StepError::Acme)?,
            _ => match self.place(cert, issuer, &account, order).await? {
                Placed::View(v) => v,
                Placed::Wait(until) => return Ok(Step::Wait(until)),
            },
        };
        order.data.failures = 0;
        match view.status {
            OrderStatus::Pending => {
                self.solve(cert, issuer, &account, order, &view, actor)
                    .await
            }
            OrderStatus::Ready => {
                self.finalize(cert, form, issuer, &account, order, actor)
                    .await
            }
            OrderStatus::Processing => Ok(Step::Wait(self.poll_again(order, &view).await?)),
            OrderStatus::Valid => self.download(cert, form, issuer, &account, order).await,
            OrderStatus::Invalid => self.order_invalid(cert, order, &view, actor).await,
        }
    }

    /// Places a new order (state `new`/`placing`) within the CA account's pause and cap.
    async fn place(
        &self,
        cert: &CertificateRecord,
        issuer: &AcmeIssuer,
        account: &AccountSecret,
        order: &mut Order,
    ) -> Result<Placed, StepError> {
        let now = self.clock.now_ms();
        if let Some(rec) = self.store.acme_account(&issuer.name).await?
            && let Some(until) = rec.paused_until_ms.filter(|u| *u > now)
        {
            let reason = rec
                .pause_reason
                .unwrap_or_else(|| "rate limited".to_owned());
            return Err(StepError::Acme(AcmeError::RateLimited {
                problem: super::acme::Problem {
                    kind: "urn:ietf:params:acme:error:rateLimited".into(),
                    detail: format!(
                        "no new order before {} ({reason})",
                        crate::clock::from_unix_ms(until)
                    ),
                    subproblems: Vec::new(),
                },
                retry_after: Some(Duration::from_millis(
                    u64::try_from(until.saturating_sub(now)).unwrap_or(0),
                )),
            }));
        }
        order.row.state = "placing".into();
        order.row.placed_ms = Some(now);
        order.row.order_url = None;
        order.data.challenges.clear();
        order.data.polls = 0;
        order.data.told = false;
        order.row.data = order.data.text()?;
        order.row.updated_ms = now;
        let window = millis(issuer.order_window);
        match self
            .store
            .take_order_slot(&order.row, issuer.max_orders, now.saturating_sub(window))
            .await?
        {
            OrderSlot::Taken => order.row.rev += 1,
            OrderSlot::Stale => return Ok(Placed::Wait(now)),
            OrderSlot::Full { oldest_ms } => {
                let until = oldest_ms.saturating_add(window).max(now + 1000);
                tracing::info!(issuer = %issuer.name, cert = %cert.id, "ACME order cap reached; waiting");
                return Ok(Placed::Wait(until));
            }
        }
        // ARI: a renewal says which certificate it replaces.
        let replaces = if order.row.seq > 1 {
            self.store
                .version(&cert.id, order.row.seq.saturating_sub(1))
                .await?
                .filter(|v| {
                    super::acme_issuer_of(v.issued.ca_id.as_deref()) == Some(issuer.name.as_str())
                })
                .and_then(|v| scm_pki::parse_certificate_pem(&v.issued.certificate_pem).ok())
                .map(|info| info.der)
        } else {
            None
        };
        let spec = NewOrderSpec {
            names: order.data.names.clone(),
            replaces,
            profile: None,
        };
        let view = issuer
            .ca
            .new_order(account, &spec)
            .await
            .map_err(StepError::Acme)?;
        order.row.state = "placed".into();
        order.row.order_url = Some(view.url.clone());
        order.row.error = None;
        if !self.save(order).await? {
            return Ok(Placed::Wait(now));
        }
        tracing::info!(issuer = %issuer.name, cert = %cert.id, seq = order.row.seq, url = %view.url, "ACME order placed");
        Ok(Placed::View(view))
    }

    /// Pending authorizations: publish each challenge, answer those OpenSCM can see published.
    async fn solve(
        &self,
        cert: &CertificateRecord,
        issuer: &AcmeIssuer,
        account: &AccountSecret,
        order: &mut Order,
        view: &OrderView,
        actor: &str,
    ) -> Result<Step, StepError> {
        let now = self.clock.now_ms();
        let method =
            ValidationMethod::from_form(&order.data.method).unwrap_or(ValidationMethod::Dns);
        let url = order.row.order_url.clone().unwrap_or_default();
        let mut waiting_for_user = Vec::new();
        let mut invalid = false;
        for authz in &view.authorizations {
            match authz.status {
                ItemStatus::Valid | ItemStatus::Processing => continue,
                ItemStatus::Invalid | ItemStatus::Other => {
                    invalid = true;
                    continue;
                }
                ItemStatus::Pending => {}
            }
            let name = if authz.wildcard {
                format!("*.{}", authz.name)
            } else {
                authz.name.clone()
            };
            let kind = if method == ValidationMethod::File && !authz.wildcard {
                ChallengeKind::Http01
            } else {
                ChallengeKind::Dns01
            };
            let Some(ch) = authz.challenges.iter().find(|c| c.kind == kind) else {
                return Err(StepError::Acme(AcmeError::Refused {
                    problem: super::acme::Problem {
                        kind: "urn:ietf:params:acme:error:unsupportedChallenge".into(),
                        detail: format!("the CA offers no {} challenge for {name}", kind.as_str()),
                        subproblems: Vec::new(),
                    },
                }));
            };
            if ch.status != ItemStatus::Pending {
                continue;
            }
            let pos = match order.data.challenges.iter().position(|p| p.url == ch.url) {
                Some(i) => i,
                None => {
                    let published = self
                        .publish(cert, issuer, &name, &authz.name, kind, ch)
                        .await?;
                    order.data.challenges.push(published);
                    order.data.challenges.len() - 1
                }
            };
            let Some(p) = order.data.challenges.get(pos).cloned() else {
                continue;
            };
            if p.answered {
                continue;
            }
            if kind == ChallengeKind::Dns01 && !self.txt_visible(&p.record_name, &p.value).await {
                if !p.automatic {
                    waiting_for_user.push(p.clone());
                }
                continue;
            }
            issuer
                .ca
                .answer(account, &url, &ch.url)
                .await
                .map_err(StepError::Acme)?;
            if let Some(q) = order.data.challenges.get_mut(pos) {
                q.answered = true;
            }
            order.data.polls = 0;
        }
        if invalid {
            self.save(order).await?;
            return Ok(Step::Wait(now.saturating_add(1000)));
        }
        let mut effects = Vec::new();
        if !waiting_for_user.is_empty() && order.row.seq > 1 && !order.data.told {
            // A renewal through manual dns-01 needs a person at once: the CA gave new values.
            order.data.told = true;
            for p in &waiting_for_user {
                let n = Notification {
                    account: cert.domain_id.to_string(),
                    at_ms: now,
                    event: Event::ValidationNeeded {
                        certificate_id: cert.id.to_string(),
                        name: cert.name.clone(),
                        domain: p.name.clone(),
                        record_name: p.record_name.clone(),
                        record_type: "TXT".into(),
                        record_value: p.value.clone(),
                    },
                };
                effects.extend(self.notify_jobs(&cert.domain_id, &n, now));
            }
            self.store
                .record_event(
                    &cert.id,
                    now,
                    &NewEvent {
                        event: "validation_needed".into(),
                        detail: waiting_for_user
                            .iter()
                            .map(|p| format!("TXT {} = {}", p.record_name, p.value))
                            .collect::<Vec<_>>()
                            .join("; "),
                        actor: actor.into(),
                    },
                )
                .await?;
        }
        self.enqueue_now(effects).await?;
        let until = if waiting_for_user.is_empty() {
            self.poll_again(order, view).await?
        } else {
            self.save(order).await?;
            now.saturating_add(crate::lifecycle::validation::next_check_in_ms(
                &self.config.validation,
                now.saturating_sub(order.data.started_ms),
            ))
        };
        self.cache.forget_certificate(&cert.domain_id, &cert.id);
        Ok(Step::Wait(until))
    }

    /// Publishes one challenge: an http-01 token for the listener, or a dns-01 record (through
    /// RFC 2136 when configured, else for the user).
    async fn publish(
        &self,
        cert: &CertificateRecord,
        issuer: &AcmeIssuer,
        name: &str,
        base: &str,
        kind: ChallengeKind,
        ch: &super::acme::ChallengeView,
    ) -> Result<Published, StepError> {
        let now = self.clock.now_ms();
        match kind {
            ChallengeKind::Http01 => {
                self.store
                    .put_acme_token(
                        &ch.token,
                        &ch.key_authorization,
                        &cert.id,
                        now.saturating_add(millis(TOKEN_TTL)),
                    )
                    .await?;
                Ok(Published {
                    name: name.into(),
                    kind: kind.as_str().into(),
                    url: ch.url.clone(),
                    token: ch.token.clone(),
                    record_name: format!("http://{base}/.well-known/acme-challenge/{}", ch.token),
                    value: ch.key_authorization.clone(),
                    automatic: true,
                    answered: false,
                })
            }
            ChallengeKind::Dns01 => {
                let record_name = format!("_acme-challenge.{base}");
                let automatic = match &issuer.dns01 {
                    Some(dns) => {
                        dns.add_txt(&record_name, &ch.dns_value)
                            .await
                            .map_err(|e| {
                                StepError::Acme(AcmeError::Unavailable {
                                    reason: format!("publishing TXT {record_name}: {}", e.reason),
                                    retry_after: None,
                                })
                            })?;
                        true
                    }
                    None => false,
                };
                Ok(Published {
                    name: name.into(),
                    kind: kind.as_str().into(),
                    url: ch.url.clone(),
                    token: String::new(),
                    record_name,
                    value: ch.dns_value.clone(),
                    automatic,
                    answered: false,
                })
            }
        }
    }

    /// Whether OpenSCM's own resolver sees `value` at `record` (a CNAME is followed by the
    /// resolver). Without a resolver, a record is taken as published.
    async fn txt_visible(&self, record: &str, value: &str) -> bool {
        let Some(txt) = &self.config.probes.txt else {
            return true;
        };
        match txt.txt(record).await {
            Ok(found) => found.iter().any(|v| v.trim() == value),
            Err(e) => {
                tracing::debug!(record, error = %e, "dns-01 record not visible yet");
                false
            }
        }
    }

    /// When to look at the order again: the CA's `Retry-After`, else 1 s doubling per poll
    /// up to 30 s. Saves the poll count.
    async fn poll_again(&self, order: &mut Order, view: &OrderView) -> Result<i64, DomainError> {
        let now = self.clock.now_ms();
        let backoff = Duration::from_millis(500u64.saturating_mul(1u64 << order.data.polls.min(6)))
            .min(Duration::from_secs(30));
        order.data.polls = order.data.polls.saturating_add(1);
        self.save(order).await?;
        let wait = view
            .retry_after
            .map(|r| r.min(Duration::from_secs(3600)))
            .unwrap_or(backoff);
        Ok(now.saturating_add(millis(wait)))
    }

    /// A ready order: finalize with the certificate's key (made once, kept sealed on the row)
    /// or the user's CSR.
    async fn finalize(
        &self,
        cert: &CertificateRecord,
        form: &ApplicationForm,
        issuer: &AcmeIssuer,
        account: &AccountSecret,
        order: &mut Order,
        actor: &str,
    ) -> Result<Step, StepError> {
        self.mark_issuing(
            cert,
            order,
            format!(
                "the ACME issuer \"{}\" validated every name; issuing",
                issuer.name
            ),
            actor,
        )
        .await?;
        let csr_der = match &form.csr {
            Some((pem, _)) => scm_pki::csr_der(pem)
                .map_err(|e| DomainError::internal_from("the application's CSR", e))?,
            None => {
                let key = self.order_key(cert, form, order).await?;
                let names = form.names();
                let pem = scm_pki::generate_csr(&key, &names, &SubjectFields::default())
                    .map_err(|e| DomainError::internal_from("making the CSR", e))?;
                scm_pki::csr_der(&pem).map_err(|e| DomainError::internal_from("the CSR", e))?
            }
        };
        let url = order.row.order_url.clone().unwrap_or_default();
        let view = issuer
            .ca
            .finalize(account, &url, &csr_der)
            .await
            .map_err(StepError::Acme)?;
        order.row.state = "finalizing".into();
        order.data.polls = 0;
        self.save(order).await?;
        if view.status == OrderStatus::Valid {
            return self.download(cert, form, issuer, account, order).await;
        }
        Ok(Step::Wait(self.poll_again(order, &view).await?))
    }

    /// A first issuance whose names the CA validated: `CHECKING_DOMAIN` → `ISSUING`, with
    /// `detail` in the history (nothing for a renewal, or a certificate already moved on).
    async fn mark_issuing(
        &self,
        cert: &CertificateRecord,
        order: &Order,
        detail: String,
        actor: &str,
    ) -> Result<(), DomainError> {
        if order.row.seq != 1 || cert.status != CertificateStatus::CheckingDomain {
            return Ok(());
        }
        let event = NewEvent {
            event: "validated".into(),
            detail,
            actor: actor.into(),
        };
        self.store
            .transition(
                &cert.id,
                CertificateStatus::CheckingDomain,
                CertificateStatus::Issuing,
                &event,
                self.clock.now_ms(),
            )
            .await?;
        self.cache.forget_certificate(&cert.domain_id, &cert.id);
        Ok(())
    }

    /// The private key of the version being ordered: made (through the key generator, with its
    /// per-account fairness) and sealed onto the row before first use, so that a retry finalizes
    /// with the same key.
    async fn order_key(
        &self,
        cert: &CertificateRecord,
        form: &ApplicationForm,
        order: &mut Order,
    ) -> Result<PrivateKey, DomainError> {
        let aad = issuance::version_key_aad(&cert.id, order.row.seq);
        if let Some(sealed) = &order.row.key_sealed {
            let der = self
                .master
                .open(sealed, aad.as_bytes())
                .map_err(|e| DomainError::internal_from("opening an order's key", e))?;
            return PrivateKey::from_pkcs8_der(&der)
                .map_err(|e| DomainError::internal_from("an order's key", e));
        }
        let key = self
            .keygen
            .generate(&cert.domain_id, form.key_algorithm)
            .await?;
        let sealed = self
            .master
            .seal(key.pkcs8_der(), aad.as_bytes())
            .map_err(|e| DomainError::internal_from("sealing key", e))?;
        order.row.key_sealed = Some(sealed);
        if !self.save(order).await? {
            return Err(DomainError::internal(
                "another server advanced this order; its step is retried",
            ));
        }
        Ok(key)
    }

    /// A valid order: download the chain and store it as the new version.
    async fn download(
        &self,
        cert: &CertificateRecord,
        form: &ApplicationForm,
        issuer: &AcmeIssuer,
        account: &AccountSecret,
        order: &mut Order,
    ) -> Result<Step, StepError> {
        let now = self.clock.now_ms();
        let url = order.row.order_url.clone().unwrap_or_default();
        let Some(chain) = issuer
            .ca
            .certificate(account, &url)
            .await
            .map_err(StepError::Acme)?
        else {
            return Ok(Step::Wait(now.saturating_add(1000)));
        };
        let blocks = scm_pki::cert::pem_blocks(&chain, "CERTIFICATE");
        let Some(leaf_pem) = blocks.first().cloned() else {
            return Err(StepError::Acme(AcmeError::Refused {
                problem: super::acme::Problem {
                    kind: "certificate".into(),
                    detail: "the CA sent no certificate".into(),
                    subproblems: Vec::new(),
                },
            }));
        };
        let info = scm_pki::parse_certificate_pem(&leaf_pem)
            .map_err(|e| DomainError::internal_from("the CA's certificate", e))?;
        let held_sealed = order.row.key_sealed.clone();
        let private_key_sealed = match (&form.csr, held_sealed) {
            (None, Some(sealed)) => {
                let key = self.order_key(cert, form, order).await?;
                if !info.public_key_matches(&key) {
                    return Err(DomainError::internal(
                        "the CA's certificate is not for the order's key",
                    )
                    .into());
                }
                Some(sealed)
            }
            (Some((_, csr)), _) => {
                let held = self.held_csr_key(&cert.domain_id, csr).await?;
                match held {
                    Some(key) => Some(
                        self.master
                            .seal(
                                key.pkcs8_der(),
                                issuance::version_key_aad(&cert.id, order.row.seq).as_bytes(),
                            )
                            .map_err(|e| DomainError::internal_from("sealing key", e))?,
                    ),
                    None => None,
                }
            }
            (None, None) => None,
        };
        let chain_pem: String = blocks.iter().skip(1).cloned().collect::<Vec<_>>().join("");
        let issued = IssuedRecord {
            certificate_pem: leaf_pem,
            chain_pem,
            private_key_sealed,
            serial_hex: info.serial_hex.clone(),
            fingerprint: info.sha1_fingerprint_hex.clone(),
            signature_algorithm: info.signature_algorithm.clone(),
            issued_ms: now,
            not_before_ms: unix_ms(info.not_before),
            not_after_ms: unix_ms(info.not_after),
            ca_id: Some(acme_ca_id(&issuer.name)),
        };
        let actor = format!("issuer {}", issuer.name);
        self.mark_issuing(
            cert,
            order,
            format!("the ACME issuer \"{}\" issued", issuer.name),
            &actor,
        )
        .await?;
        let (expect, reason) = order.version_to_make(CertificateStatus::Issuing);
        let recorded = self
            .record_version(cert, form, expect, issued, reason, &actor)
            .await?;
        Ok(self.finish_order(cert, order, recorded).await?)
    }

    /// An invalid order: names whose validation failed count against them (and may stop);
    /// otherwise the CA refused the order.
    async fn order_invalid(
        &self,
        cert: &CertificateRecord,
        order: &mut Order,
        view: &OrderView,
        actor: &str,
    ) -> Result<Step, StepError> {
        let now = self.clock.now_ms();
        let mut failed = Vec::new();
        for authz in &view.authorizations {
            if authz.status != ItemStatus::Invalid {
                continue;
            }
            let name = if authz.wildcard {
                format!("*.{}", authz.name)
            } else {
                authz.name.clone()
            };
            let why = authz
                .challenges
                .iter()
                .find_map(|c| c.error.as_ref().map(ToString::to_string))
                .unwrap_or_else(|| "validation failed".into());
            failed.push((name, why));
        }
        if failed.is_empty() {
            let problem = view.error.clone().unwrap_or_default();
            return Err(StepError::Acme(AcmeError::Refused { problem }));
        }
        self.withdraw_challenges(order).await;
        let mut stopped_until = None;
        for (name, why) in &failed {
            let run = self
                .store
                .record_name_failure(&cert.domain_id, name, now, millis(FAILURE_WINDOW))
                .await?;
            self.store
                .record_event(
                    &cert.id,
                    now,
                    &NewEvent {
                        event: "validation_failed".into(),
                        detail: format!("{name} ({} in a row): {why}", run.failures),
                        actor: actor.into(),
                    },
                )
                .await?;
            if run.failures >= STOP_AFTER {
                stopped_until = Some(run.last_ms.saturating_add(millis(FAILURE_WINDOW)));
            }
        }
        let summary = failed
            .iter()
            .map(|(n, w)| format!("{n}: {w}"))
            .collect::<Vec<_>>()
            .join("; ");
        order.row.state = "new".into();
        order.row.order_url = None;
        order.row.error = Some(summary.chars().take(1000).collect());
        self.save(order).await?;
        if let Some(until) = stopped_until {
            // Told once, by the stop step.
            let _ = self.names_stopped(cert, order, actor).await?;
            return Ok(Step::Wait(until));
        }
        // Let's Encrypt allows 5 failed validations per name per hour: space them out.
        let worst = self
            .store
            .name_failures(
                &cert.domain_id,
                &failed.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
            )
            .await?
            .iter()
            .map(|f| f.failures)
            .max()
            .unwrap_or(1);
        let wait = Duration::from_secs(30).saturating_mul(1u32 << worst.min(6));
        Ok(Step::Wait(now.saturating_add(millis(wait))))
    }

    /// When a name of the order is stopped (failed [`STOP_AFTER`] times in a row within a
    /// day), until when; the account is told once per run.
    async fn names_stopped(
        &self,
        cert: &CertificateRecord,
        order: &mut Order,
        actor: &str,
    ) -> Result<Option<i64>, DomainError> {
        let now = self.clock.now_ms();
        let runs = self
            .store
            .name_failures(&cert.domain_id, &order.data.names)
            .await?;
        let mut until = None;
        let mut notices = Vec::new();
        for run in runs {
            let ends = run.last_ms.saturating_add(millis(FAILURE_WINDOW));
            if run.failures < STOP_AFTER || ends <= now {
                continue;
            }
            until = Some(until.map_or(ends, |u: i64| u.max(ends)));
            if order
                .data
                .stopped_told
                .iter()
                .any(|(n, first)| *n == run.name && *first == run.first_ms)
            {
                continue;
            }
            order
                .data
                .stopped_told
                .push((run.name.clone(), run.first_ms));
            let why = format!(
                "{} failed validation {} times in a row; not tried again before {} unless \
                 someone applies or renews again",
                run.name,
                run.failures,
                crate::clock::from_unix_ms(ends)
            );
            self.store
                .record_event(
                    &cert.id,
                    now,
                    &NewEvent {
                        event: "validation_stopped".into(),
                        detail: why.clone(),
                        actor: actor.into(),
                    },
                )
                .await?;
            let n = Notification {
                account: cert.domain_id.to_string(),
                at_ms: now,
                event: Event::ValidationStopped {
                    certificate_id: cert.id.to_string(),
                    name: cert.name.clone(),
                    domain: run.name.clone(),
                    failures: run.failures,
                    until_ms: ends,
                    error: why,
                },
            };
            notices.extend(self.notify_jobs(&cert.domain_id, &n, now));
        }
        if !notices.is_empty() {
            self.save(order).await?;
            self.enqueue_now(notices).await?;
        }
        Ok(until)
    }

    /// An ACME call failed: wait, retry, or move to the next issuer, by the failure's class.
    async fn acme_failed(
        &self,
        cert: &CertificateRecord,
        issuer: &AcmeIssuer,
        order: &mut Order,
        e: AcmeError,
        actor: &str,
    ) -> Result<Step, DomainError> {
        let now = self.clock.now_ms();
        let why = e.to_string();
        tracing::info!(cert = %cert.id, issuer = %issuer.name, error = %why, "ACME step failed");
        let has_next = (order.row.issuer_index as usize) + 1 < order.data.issuers.len();
        match &e {
            AcmeError::RateLimited { retry_after, .. } => {
                // No new order to this CA account before the time it names (an hour when it
                // names none).
                let wait = retry_after.unwrap_or(Duration::from_secs(3600));
                let until = now.saturating_add(millis(wait));
                let known_pause = self
                    .store
                    .acme_account(&issuer.name)
                    .await?
                    .and_then(|a| a.paused_until_ms)
                    .is_some_and(|u| u >= until - 1000);
                if !known_pause {
                    self.store
                        .pause_acme_account(&issuer.name, Some(until), Some(&why), now)
                        .await?;
                }
                if has_next {
                    return self.next_issuer(cert, order, &why, actor).await;
                }
                order.row.error = Some(why);
                order.row.state = "new".into();
                self.save(order).await?;
                Ok(Step::Wait(until))
            }
            AcmeError::Gone { url } => {
                // The CA no longer knows the account (or the order): a new account, then a new
                // order.
                if order.row.order_url.as_deref() != Some(url.as_str()) {
                    tracing::warn!(issuer = %issuer.name, "the CA no longer knows the ACME account; making a new one");
                    self.store.delete_acme_account(&issuer.name).await?;
                }
                self.withdraw_challenges(order).await;
                order.row.state = "new".into();
                order.row.order_url = None;
                self.save(order).await?;
                Ok(Step::Wait(now))
            }
            AcmeError::Unavailable { retry_after, .. } => {
                // An order under way survives a blip: look again a few times before moving on.
                let placing = order.row.order_url.is_none();
                order.data.failures = order.data.failures.saturating_add(1);
                if has_next && (placing || order.data.failures >= 3) {
                    return self.next_issuer(cert, order, &why, actor).await;
                }
                order.row.error = Some(why);
                if placing {
                    order.row.state = "new".into();
                }
                self.save(order).await?;
                let backoff = Duration::from_secs(5)
                    .saturating_mul(1u32 << order.data.failures.min(7))
                    .min(Duration::from_secs(600));
                Ok(Step::Wait(
                    now.saturating_add(millis(retry_after.unwrap_or(backoff))),
                ))
            }
            AcmeError::Refused { .. } | AcmeError::Misconfigured { .. } => {
                if has_next {
                    return self.next_issuer(cert, order, &why, actor).await;
                }
                self.store
                    .record_event(
                        &cert.id,
                        now,
                        &NewEvent {
                            event: "issuer_failed".into(),
                            detail: format!("{}: {why}", issuer.name),
                            actor: actor.into(),
                        },
                    )
                    .await?;
                // Every issuer refused: the first again, after an hour (a refusal does not pass
                // in a minute).
                let step = self.next_issuer(cert, order, &why, actor).await?;
                Ok(match step {
                    Step::Wait(at) => Step::Wait(at.max(now.saturating_add(millis(REFUSED_AGAIN)))),
                    done => done,
                })
            }
        }
    }

    /// A person asked for version `seq` of `cert` now: the order under way for it (if any) has
    /// its names' stop lifted and is made due at once.
    pub(crate) async fn hasten_order(
        &self,
        cert: &CertificateRecord,
        seq: u32,
    ) -> Result<(), DomainError> {
        let Some(row) = self.store.acme_order(&cert.id, seq).await? else {
            return Ok(());
        };
        if matches!(row.state.as_str(), "done" | "failed" | "withdrawn") {
            return Ok(());
        }
        let data = OrderData::parse(&row.data)?;
        self.store
            .clear_name_failures(&cert.domain_id, &data.names)
            .await?;
        let now = self.clock.now_ms();
        let id = self.store.enqueue(&order_job(&cert.id, seq, now)?).await?;
        self.store.hasten(id, now).await?;
        self.jobs.wake();
        Ok(())
    }

    /// Starts the renewal of `cert` (current version `seq`) through the brand's issuers: the
    /// order job of version `seq + 1`, as an effect of the renew job.
    pub(crate) async fn renewal_order(
        &self,
        cert: &CertificateRecord,
        form: &ApplicationForm,
        seq: u32,
        manual: bool,
    ) -> Result<JobEffect, DomainError> {
        let issuers = self.config.issuers.names_for(cert.product.brand.as_str());
        let job = self
            .prepare_order(cert, form, seq.saturating_add(1), issuers, manual)
            .await?;
        Ok(JobEffect::Enqueue(job))
    }

    /// Whether `cert` is issued through the order machinery: its brand's first issuer is an
    /// ACME CA, or its current version came from one.
    pub(crate) fn issued_by_acme(&self, cert: &CertificateRecord) -> bool {
        matches!(
            self.config.issuers.first_for(cert.product.brand.as_str()),
            IssuerChoice::Acme(_)
        ) || super::acme_issuer_of(cert.issued.as_ref().and_then(|i| i.ca_id.as_deref())).is_some()
    }

    /// The account an ACME version belongs to, for revocation: `(issuer, credentials)`.
    pub(crate) async fn acme_revoke(
        &self,
        issuer_name: &str,
        cert_pem: &str,
        reason: Option<u8>,
    ) -> Result<(), DomainError> {
        let Some(issuer) = self.config.issuers.acme(issuer_name).cloned() else {
            return Err(DomainError::invalid(
                "cert_id",
                format!(
                    "the certificate was issued by the ACME issuer \"{issuer_name}\", which is \
                     no longer configured: it cannot be revoked at its CA from here"
                ),
            ));
        };
        let account = match self.acme_account(&issuer).await {
            Ok(a) => a,
            Err(StepError::Domain(e)) => return Err(e),
            Err(StepError::Acme(e)) => return Err(DomainError::IssuerFailed(e.to_string())),
        };
        let info = scm_pki::parse_certificate_pem(cert_pem)
            .map_err(|e| DomainError::internal_from("a stored certificate", e))?;
        issuer
            .ca
            .revoke(&account, &info.der, reason)
            .await
            .map_err(|e| DomainError::IssuerFailed(format!("the CA \"{issuer_name}\": {e}")))
    }
}

/// How placing an order ended.
enum Placed {
    /// Placed: the CA's view of it.
    View(OrderView),
    /// Not now: look again then.
    Wait(i64),
}

/// A step's failure: of the store or domain (retried by the job), or of the CA (classified).
enum StepError {
    Domain(DomainError),
    Acme(AcmeError),
}

impl From<DomainError> for StepError {
    fn from(e: DomainError) -> Self {
        Self::Domain(e)
    }
}

impl From<scm_store::StoreError> for StepError {
    fn from(e: scm_store::StoreError) -> Self {
        Self::Domain(e.into())
    }
}
