//! `GET /metrics`: the Prometheus text exposition format (0.0.4).
//!
//! The endpoint is not an operation of the table: it is no Huawei API, is not signed, and has its
//! own access rule (an address allow-list or a bearer token), so it is mounted beside the table's
//! routes, outside the access log and the SCM authentication (a scrape neither needs a credential
//! nor spends an account's rate).
//!
//! Request counts and latencies are kept in atomics pre-sized from [`Operation::ALL`] and
//! [`ErrorCode::ALL`] (one counter per operation and outcome, one histogram per operation), so
//! recording a request is a few relaxed atomic adds and label cardinality is bounded by the two
//! tables: no per-certificate, per-account or per-request label exists. Store-derived gauges come
//! from [`scm_core::Scm::observe`], which reads the store at most every 15 s.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use scm_core::Scm;
use scm_core::lifecycle::keys::KeyGenerations;
use scm_proto::{CertificateStatus, ErrorCode, Operation};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::Peer;

/// Upper bounds of the latency histogram buckets, in seconds (`+Inf` is implied).
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// The same bounds in microseconds, for recording without floating point.
const BUCKETS_MICROS: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

/// An address range, `ADDR/PREFIX` (a bare address is its own /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in the range (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an address or ADDRESS/PREFIX range"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0..={max}"))?,
            None => max,
        };
        Ok(Self { net, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// The bearer token a scraper may present instead of coming from an allowed address. Compared in
/// constant time (over digests, so not even its length leaks); never shown by `Debug`; zeroed
/// when dropped.
#[derive(Clone)]
pub struct MetricsToken(Zeroizing<Vec<u8>>);

impl MetricsToken {
    /// A token from its text (surrounding whitespace, such as a file's last line feed, is not
    /// part of it). `None` when nothing is left.
    pub fn new(text: &str) -> Option<Self> {
        let t = text.trim();
        (!t.is_empty()).then(|| Self(Zeroizing::new(t.as_bytes().to_vec())))
    }

    fn matches(&self, presented: &[u8]) -> bool {
        let digest = |b: &[u8]| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b);
        let (want, got) = (digest(&self.0), digest(presented));
        bool::from(want.as_ref().ct_eq(got.as_ref()))
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(<redacted>)")
    }
}

/// Who may read `/metrics`.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// Client addresses allowed without a token (default: loopback only).
    pub allow: Vec<Cidr>,
    /// A bearer token that is accepted from any address.
    pub token: Option<MetricsToken>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            allow: vec![
                Cidr {
                    net: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
                    prefix: 32,
                },
                Cidr {
                    net: IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
                    prefix: 128,
                },
            ],
            token: None,
        }
    }
}

/// The server's counters, and who may read them.
pub struct Metrics {
    config: MetricsConfig,
    /// `(operation or Unknown) × (ok or an error code)`.
    requests: Box<[AtomicU64]>,
    /// `(operation or Unknown) × bucket` (not cumulative; `+Inf` last).
    buckets: Box<[AtomicU64]>,
    /// Per operation (or Unknown): total microseconds.
    micros: Box<[AtomicU64]>,
    /// The HTTPS listener's certificate (its `not_after`), shared with the TLS task that renews
    /// or reloads it.
    serving: crate::tls::ServingStatus,
    /// The accept loop's connection counters.
    connections: crate::serve::ConnectionStats,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Operations plus one for requests no operation matched ("Unknown").
const fn op_slots() -> usize {
    Operation::ALL.len() + 1
}

/// Codes plus one for "ok".
const fn code_slots() -> usize {
    ErrorCode::ALL.len() + 1
}

fn counters(n: usize) -> Box<[AtomicU64]> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

/// The slot of an operation: its place in the table (the enum is declared in table order), the
/// last slot for none.
fn op_slot(op: Option<Operation>) -> usize {
    op.map_or(Operation::ALL.len(), |o| o as usize)
}

fn op_name(slot: usize) -> &'static str {
    Operation::ALL.get(slot).map_or("Unknown", |o| o.name())
}

fn code_slot(code: Option<ErrorCode>) -> usize {
    code.map_or(0, |c| c as usize + 1)
}

fn code_name(slot: usize) -> &'static str {
    match slot.checked_sub(1) {
        None => "ok",
        Some(i) => ErrorCode::ALL.get(i).map_or("unknown", |c| c.as_str()),
    }
}

impl Metrics {
    /// Empty counters, readable as `config` says.
    pub fn new(config: MetricsConfig) -> Self {
        Self {
            config,
            requests: counters(op_slots() * code_slots()),
            buckets: counters(op_slots() * (BUCKETS.len() + 1)),
            micros: counters(op_slots()),
            serving: crate::tls::ServingStatus::default(),
            connections: crate::serve::ConnectionStats::default(),
        }
    }

    /// Counts one answered request: its operation (`None`: no route matched), its error code
    /// (`None`: it succeeded) and how long it took.
    pub fn record(&self, op: Option<Operation>, code: Option<ErrorCode>, took: Duration) {
        let o = op_slot(op);
        if let Some(c) = self.requests.get(o * code_slots() + code_slot(code)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let b = BUCKETS_MICROS
            .iter()
            .position(|le| micros <= *le)
            .unwrap_or(BUCKETS.len());
        if let Some(c) = self.buckets.get(o * (BUCKETS.len() + 1) + b) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(c) = self.micros.get(o) {
            c.fetch_add(micros, Ordering::Relaxed);
        }
    }

    /// Reports the expiry of the certificate the server serves HTTPS with, as the TLS task
    /// keeps it (without TLS the series is left out).
    #[must_use]
    pub fn with_serving(mut self, serving: crate::tls::ServingStatus) -> Self {
        self.serving = serving;
        self
    }

    /// Reports the accept loop's connections (give the same counters to
    /// [`crate::serve_with`]).
    #[must_use]
    pub fn with_connections(mut self, connections: crate::serve::ConnectionStats) -> Self {
        self.connections = connections;
        self
    }

    /// Whether a scrape from `peer` presenting `authorization` may read: `Err` is the refusal.
    fn admit(&self, peer: Option<IpAddr>, authorization: Option<&[u8]>) -> Result<(), StatusCode> {
        match authorization {
            Some(value) => {
                let presented = value
                    .strip_prefix(b"Bearer ")
                    .or_else(|| value.strip_prefix(b"bearer "));
                match (&self.config.token, presented) {
                    (Some(token), Some(p)) if token.matches(p) => Ok(()),
                    _ => Err(StatusCode::UNAUTHORIZED),
                }
            }
            None if peer.is_some_and(|ip| self.config.allow.iter().any(|c| c.contains(ip))) => {
                Ok(())
            }
            None => Err(StatusCode::FORBIDDEN),
        }
    }

    /// The exposition text.
    pub async fn render(&self, scm: &Scm) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // `write!` into a String cannot fail.
        let _ = self.write_requests(&mut out);
        let snapshot = scm.observe().await;
        let _ = write_snapshot(&mut out, &snapshot, &scm.cache_figures());
        if let Some(stats) = &snapshot.stats {
            let _ = write_deliveries(&mut out, stats, &scm.push_target_kinds());
        }
        let _ = self.write_process(&mut out);
        let _ = write_key_generations(&mut out, scm.key_generations());
        out
    }

    fn write_requests(&self, out: &mut String) -> std::fmt::Result {
        writeln!(
            out,
            "# HELP openscm_requests_total API requests answered, by operation and outcome (ok or the error code)."
        )?;
        writeln!(out, "# TYPE openscm_requests_total counter")?;
        for o in 0..op_slots() {
            for c in 0..code_slots() {
                let n = self
                    .requests
                    .get(o * code_slots() + c)
                    .map_or(0, |a| a.load(Ordering::Relaxed));
                if n > 0 {
                    writeln!(
                        out,
                        "openscm_requests_total{{operation=\"{}\",code=\"{}\"}} {n}",
                        op_name(o),
                        code_name(c)
                    )?;
                }
            }
        }
        writeln!(
            out,
            "# HELP openscm_request_duration_seconds Time from a request's head to its answer, by operation."
        )?;
        writeln!(out, "# TYPE openscm_request_duration_seconds histogram")?;
        let width = BUCKETS.len() + 1;
        for o in 0..op_slots() {
            let counts: Vec<u64> = (0..width)
                .map(|b| {
                    self.buckets
                        .get(o * width + b)
                        .map_or(0, |a| a.load(Ordering::Relaxed))
                })
                .collect();
            let total: u64 = counts.iter().sum();
            if total == 0 {
                continue;
            }
            let name = op_name(o);
            let mut cumulative = 0u64;
            for (le, n) in BUCKETS.iter().zip(&counts) {
                cumulative += n;
                writeln!(
                    out,
                    "openscm_request_duration_seconds_bucket{{operation=\"{name}\",le=\"{le}\"}} {cumulative}"
                )?;
            }
            writeln!(
                out,
                "openscm_request_duration_seconds_bucket{{operation=\"{name}\",le=\"+Inf\"}} {total}"
            )?;
            let micros = self.micros.get(o).map_or(0, |a| a.load(Ordering::Relaxed));
            writeln!(
                out,
                "openscm_request_duration_seconds_sum{{operation=\"{name}\"}} {}",
                micros as f64 / 1e6
            )?;
            writeln!(
                out,
                "openscm_request_duration_seconds_count{{operation=\"{name}\"}} {total}"
            )?;
        }
        Ok(())
    }

    fn write_process(&self, out: &mut String) -> std::fmt::Result {
        let c = &self.connections;
        writeln!(
            out,
            "# HELP openscm_connections_open Client connections open now (the scrape's own included)."
        )?;
        writeln!(out, "# TYPE openscm_connections_open gauge")?;
        writeln!(out, "openscm_connections_open {}", c.open())?;
        writeln!(
            out,
            "# HELP openscm_connections_refused_total Connections refused at once (503) or closed unheard: the server-wide cap was full (total), the client's address had its share open (address), or no first byte came in time (silent)."
        )?;
        writeln!(out, "# TYPE openscm_connections_refused_total counter")?;
        writeln!(
            out,
            "openscm_connections_refused_total{{reason=\"total\"}} {}",
            c.refused_total_cap()
        )?;
        writeln!(
            out,
            "openscm_connections_refused_total{{reason=\"address\"}} {}",
            c.refused_address_cap()
        )?;
        writeln!(
            out,
            "openscm_connections_refused_total{{reason=\"silent\"}} {}",
            c.silent()
        )?;
        if let Some(not_after) = self.serving.not_after_unix() {
            writeln!(
                out,
                "# HELP openscm_serving_certificate_expiry_timestamp_seconds When the certificate the server serves HTTPS with expires (Unix seconds)."
            )?;
            writeln!(
                out,
                "# TYPE openscm_serving_certificate_expiry_timestamp_seconds gauge"
            )?;
            writeln!(
                out,
                "openscm_serving_certificate_expiry_timestamp_seconds {not_after}"
            )?;
        }
        writeln!(
            out,
            "# HELP openscm_build_info The running OpenSCM version (always 1)."
        )?;
        writeln!(out, "# TYPE openscm_build_info gauge")?;
        writeln!(
            out,
            "openscm_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )
    }
}

fn write_snapshot(
    out: &mut String,
    s: &scm_core::service::Snapshot,
    cache: &scm_core::service::CacheFigures,
) -> std::fmt::Result {
    writeln!(
        out,
        "# HELP openscm_store_up Whether the database answered a ping (1) or not (0)."
    )?;
    writeln!(out, "# TYPE openscm_store_up gauge")?;
    writeln!(out, "openscm_store_up {}", u8::from(s.store_up))?;
    writeln!(
        out,
        "# HELP openscm_store_ping_seconds How long the last database ping took."
    )?;
    writeln!(out, "# TYPE openscm_store_ping_seconds gauge")?;
    writeln!(out, "openscm_store_ping_seconds {}", s.ping.as_secs_f64())?;
    writeln!(
        out,
        "# HELP openscm_store_snapshot_timestamp_seconds When the store gauges below were read (they are read at most every 15 s)."
    )?;
    writeln!(out, "# TYPE openscm_store_snapshot_timestamp_seconds gauge")?;
    writeln!(
        out,
        "openscm_store_snapshot_timestamp_seconds {}",
        s.taken_ms as f64 / 1e3
    )?;
    writeln!(
        out,
        "# HELP openscm_cache_entries Entries held by each read cache."
    )?;
    writeln!(out, "# TYPE openscm_cache_entries gauge")?;
    for c in &cache.caches {
        writeln!(
            out,
            "openscm_cache_entries{{cache=\"{}\"}} {}",
            c.name, c.entries
        )?;
    }
    writeln!(
        out,
        "# HELP openscm_cache_lookups_total Lookups in each read cache, by result (hit: answered from memory; miss: read from the store)."
    )?;
    writeln!(out, "# TYPE openscm_cache_lookups_total counter")?;
    for c in &cache.caches {
        for (result, n) in [("hit", c.hits), ("miss", c.misses)] {
            writeln!(
                out,
                "openscm_cache_lookups_total{{cache=\"{}\",result=\"{result}\"}} {n}",
                c.name
            )?;
        }
    }
    writeln!(
        out,
        "# HELP openscm_cache_invalidations_total Times each side of the read caches was invalidated (by a write here or a change seen from another process): access (credentials, unknown keys, accounts) or certificates (certificates, push histories)."
    )?;
    writeln!(out, "# TYPE openscm_cache_invalidations_total counter")?;
    for (side, n) in [
        ("access", cache.access_drops),
        ("certificates", cache.certificates_drops),
    ] {
        writeln!(
            out,
            "openscm_cache_invalidations_total{{side=\"{side}\"}} {n}"
        )?;
    }
    // Without the store's aggregates the series below are left out (not reported as zero).
    let Some(stats) = &s.stats else {
        return Ok(());
    };
    writeln!(
        out,
        "# HELP openscm_certificates Certificates of all accounts, by status (issued ones past their expiry count as EXPIRED)."
    )?;
    writeln!(out, "# TYPE openscm_certificates gauge")?;
    // Every status is reported, 0 included, so that an alert on one always has a series.
    for status in CertificateStatus::ALL {
        let name = status.as_str();
        let n = stats
            .certificates_by_status
            .iter()
            .find(|(s, _)| s == name)
            .map_or(0, |(_, n)| *n);
        writeln!(out, "openscm_certificates{{status=\"{name}\"}} {n}")?;
    }
    writeln!(
        out,
        "# HELP openscm_certificates_expiring Issued or imported certificates, not yet expired, that expire within the window."
    )?;
    writeln!(out, "# TYPE openscm_certificates_expiring gauge")?;
    writeln!(
        out,
        "openscm_certificates_expiring{{within=\"7d\"}} {}",
        stats.expiring_7d
    )?;
    writeln!(
        out,
        "openscm_certificates_expiring{{within=\"30d\"}} {}",
        stats.expiring_30d
    )?;
    writeln!(
        out,
        "# HELP openscm_validations_pending Certificates waiting for domain validation (applications in CHECKING_DOMAIN and renewals whose proof is pending)."
    )?;
    writeln!(out, "# TYPE openscm_validations_pending gauge")?;
    writeln!(
        out,
        "openscm_validations_pending {}",
        stats.validations_pending
    )?;
    writeln!(
        out,
        "# HELP openscm_renewals_due Certificates whose renewal is due and not yet queued (the sweep queues them every [renewal] sweep_seconds)."
    )?;
    writeln!(out, "# TYPE openscm_renewals_due gauge")?;
    writeln!(out, "openscm_renewals_due {}", stats.renewals_due)?;
    writeln!(
        out,
        "# HELP openscm_acme_orders ACME orders under way, by issuer and step (new, placing, placed, finalizing)."
    )?;
    writeln!(out, "# TYPE openscm_acme_orders gauge")?;
    for (issuer, state, n) in &stats.acme_orders {
        writeln!(
            out,
            "openscm_acme_orders{{issuer=\"{}\",state=\"{}\"}} {n}",
            label(issuer),
            label(state)
        )?;
    }
    writeln!(
        out,
        "# HELP openscm_acme_names_stopped Names left alone for a day after failing validation 5 times in a row (a person must fix them, then apply or renew again)."
    )?;
    writeln!(out, "# TYPE openscm_acme_names_stopped gauge")?;
    writeln!(
        out,
        "openscm_acme_names_stopped {}",
        stats.acme_names_stopped
    )?;
    writeln!(
        out,
        "# HELP openscm_acme_account_paused 1 while an ACME CA account takes no new order (after rateLimited)."
    )?;
    writeln!(out, "# TYPE openscm_acme_account_paused gauge")?;
    for issuer in &stats.acme_paused {
        writeln!(
            out,
            "openscm_acme_account_paused{{issuer=\"{}\"}} 1",
            label(issuer)
        )?;
    }
    if let Some(ms) = stats.next_renewable_expiry_ms {
        writeln!(
            out,
            "# HELP openscm_next_renewable_expiry_seconds Seconds until the soonest expiry of a certificate OpenSCM renews (negative: it expired without a successful renewal)."
        )?;
        writeln!(out, "# TYPE openscm_next_renewable_expiry_seconds gauge")?;
        writeln!(
            out,
            "openscm_next_renewable_expiry_seconds {}",
            (ms - s.taken_ms) / 1000
        )?;
    }
    writeln!(
        out,
        "# HELP openscm_audit_events Audit events kept (they are deleted after [audit] retention_days)."
    )?;
    writeln!(out, "# TYPE openscm_audit_events gauge")?;
    writeln!(out, "openscm_audit_events {}", stats.audit_events)?;
    writeln!(
        out,
        "# HELP openscm_csrs CSRs kept, all accounts (each account holds at most [quotas] csrs_per_account)."
    )?;
    writeln!(out, "# TYPE openscm_csrs gauge")?;
    writeln!(out, "openscm_csrs {}", stats.csrs)?;
    writeln!(
        out,
        "# HELP openscm_push_attempts_total Push attempts in the push history, by outcome."
    )?;
    writeln!(out, "# TYPE openscm_push_attempts_total counter")?;
    for outcome in [
        scm_store::PushOutcome::Success,
        scm_store::PushOutcome::Failure,
    ] {
        let name = outcome.as_str();
        let n = stats
            .pushes_by_outcome
            .iter()
            .find(|(o, _)| o == name)
            .map_or(0, |(_, n)| *n);
        writeln!(out, "openscm_push_attempts_total{{outcome=\"{name}\"}} {n}")?;
    }
    writeln!(
        out,
        "# HELP openscm_jobs Background jobs by kind and state (ended ones are kept for the retention period)."
    )?;
    writeln!(out, "# TYPE openscm_jobs gauge")?;
    for state in ["pending", "running", "done", "failed"] {
        let n: i64 = stats
            .jobs
            .iter()
            .filter(|(_, s, _)| s == state)
            .map(|(_, _, n)| n)
            .sum();
        writeln!(out, "openscm_jobs{{state=\"{state}\"}} {n}")?;
    }
    writeln!(
        out,
        "# HELP openscm_jobs_by_kind Background jobs by kind and state."
    )?;
    writeln!(out, "# TYPE openscm_jobs_by_kind gauge")?;
    for (kind, state, n) in &stats.jobs {
        writeln!(
            out,
            "openscm_jobs_by_kind{{kind=\"{}\",state=\"{}\"}} {n}",
            label(kind),
            label(state)
        )?;
    }
    Ok(())
}

/// The kind of a push target by its name, `unknown` for a name no longer configured.
fn kind_of<'a>(targets: &'a [(String, &'static str)], name: &str) -> &'a str {
    targets
        .iter()
        .find(|(n, _)| n == name)
        .map_or("unknown", |(_, k)| k)
}

/// Deliveries and deployments per push target, and notifications given up, from the store's
/// aggregates (so that every server reports the same). `targets`: the configured targets'
/// `(name, kind)`; each is reported, 0 included, so that an alert on one always has a series;
/// targets found in the store but no longer configured are reported with kind `unknown`.
fn write_deliveries(
    out: &mut String,
    stats: &scm_store::StoreStats,
    targets: &[(String, &'static str)],
) -> std::fmt::Result {
    let mut names: Vec<&str> = targets.iter().map(|(n, _)| n.as_str()).collect();
    for name in stats
        .deliveries
        .iter()
        .map(|(t, _, _)| t.as_str())
        .chain(stats.deployment_health.iter().map(|h| h.target.as_str()))
    {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.sort_unstable();
    writeln!(
        out,
        "# HELP openscm_deliveries_total Deliveries to push targets in the push history, by target, its kind and outcome (unchanged: the target already served the version, nothing was delivered)."
    )?;
    writeln!(out, "# TYPE openscm_deliveries_total counter")?;
    for name in &names {
        let kind = kind_of(targets, name);
        for outcome in [
            scm_store::PushOutcome::Success,
            scm_store::PushOutcome::Failure,
            scm_store::PushOutcome::Unchanged,
        ] {
            let o = outcome.as_str();
            let n: i64 = stats
                .deliveries
                .iter()
                .filter(|(t, oc, _)| t == name && oc == o)
                .map(|(_, _, n)| n)
                .sum();
            writeln!(
                out,
                "openscm_deliveries_total{{target=\"{}\",kind=\"{}\",outcome=\"{o}\"}} {n}",
                label(name),
                label(kind)
            )?;
        }
    }
    type Pick = fn(&scm_store::DeploymentHealth) -> i64;
    let gauges: [(&str, &str, Pick); 3] = [
        (
            "openscm_targets_failing",
            "Deployments (certificate on a push target) whose delivery is failing now, by target.",
            |h| h.failing,
        ),
        (
            "openscm_targets_not_serving",
            "Deployments whose delivery is failing because the target does not serve the delivered version (TLS check), by target.",
            |h| h.not_serving,
        ),
        (
            "openscm_targets_drifted",
            "Deployments whose target no longer serves what was delivered (drift check), by target.",
            |h| h.drifted,
        ),
    ];
    for (metric, help, pick) in gauges {
        writeln!(out, "# HELP {metric} {help}")?;
        writeln!(out, "# TYPE {metric} gauge")?;
        for name in &names {
            let n = stats
                .deployment_health
                .iter()
                .find(|h| h.target == *name)
                .map_or(0, pick);
            writeln!(
                out,
                "{metric}{{target=\"{}\",kind=\"{}\"}} {n}",
                label(name),
                label(kind_of(targets, name))
            )?;
        }
    }
    writeln!(
        out,
        "# HELP openscm_notifications_failed Notifications given up after their retries (notify jobs failed, kept for the jobs' retention period)."
    )?;
    writeln!(out, "# TYPE openscm_notifications_failed gauge")?;
    let failed: i64 = stats
        .jobs
        .iter()
        .filter(|(k, s, _)| k == "notify" && s == "failed")
        .map(|(_, _, n)| n)
        .sum();
    writeln!(out, "openscm_notifications_failed {failed}")
}

/// A label value as the format wants it (job kinds and states are plain words; escape anyway).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// What the `/metrics` handler needs.
#[derive(Clone)]
pub(crate) struct MetricsState {
    pub scm: Arc<Scm>,
    pub metrics: Arc<Metrics>,
}

/// `GET /metrics`: the exposition, or 403 (address not allowed) / 401 (bad or unknown token)
/// with no metric data.
pub(crate) async fn handler(State(s): State<MetricsState>, req: Request) -> Response {
    let peer = req.extensions().get::<Peer>().map(|p| p.0.ip());
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    if let Err(status) = s.metrics.admit(peer, authorization) {
        let body = if status == StatusCode::UNAUTHORIZED {
            "metrics: a valid bearer token is needed\n"
        } else {
            "metrics: this address may not read metrics\n"
        };
        let mut resp = (status, body).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        return resp;
    }
    let text = s.metrics.render(&s.scm).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

fn write_key_generations(out: &mut String, k: KeyGenerations) -> std::fmt::Result {
    writeln!(
        out,
        "# HELP openscm_key_generations_running RSA private keys being generated now (at most one per core), the key pool's refill included."
    )?;
    writeln!(out, "# TYPE openscm_key_generations_running gauge")?;
    writeln!(out, "openscm_key_generations_running {}", k.running)?;
    writeln!(
        out,
        "# HELP openscm_key_generations_waiting RSA key generations waiting for their account's turn or for a core."
    )?;
    writeln!(out, "# TYPE openscm_key_generations_waiting gauge")?;
    writeln!(out, "openscm_key_generations_waiting {}", k.waiting)?;
    writeln!(
        out,
        "# HELP openscm_key_pool_ready RSA private keys generated ahead, in memory, ready for applications, by algorithm."
    )?;
    writeln!(out, "# TYPE openscm_key_pool_ready gauge")?;
    for (algorithm, ready) in k.pool_ready {
        writeln!(
            out,
            "openscm_key_pool_ready{{algorithm=\"{}\"}} {ready}",
            label(algorithm.as_str())
        )?;
    }
    writeln!(
        out,
        "# HELP openscm_keys_total RSA private keys handed to requests: taken from the key pool, or generated on the request path."
    )?;
    writeln!(out, "# TYPE openscm_keys_total counter")?;
    writeln!(out, "openscm_keys_total{{source=\"pool\"}} {}", k.from_pool)?;
    writeln!(
        out,
        "openscm_keys_total{{source=\"request\"}} {}",
        k.on_request
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_tables() {
        for (i, op) in Operation::ALL.iter().enumerate() {
            assert_eq!(op_slot(Some(*op)), i);
            assert_eq!(op_name(i), op.name());
        }
        assert_eq!(op_name(op_slot(None)), "Unknown");
        for code in ErrorCode::ALL {
            assert_eq!(code_name(code_slot(Some(*code))), code.as_str());
        }
        assert_eq!(code_name(code_slot(None)), "ok");
    }

    #[test]
    fn cidrs_parse_and_match() {
        let c: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(
            c.contains("::ffff:10.1.0.9".parse().unwrap()),
            "IPv4-mapped"
        );
        let any: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(any.contains("192.0.2.1".parse().unwrap()));
        assert!(!any.contains("::1".parse().unwrap()));
        let one: Cidr = "::1".parse().unwrap();
        assert_eq!(one.to_string(), "::1/128");
        assert!(one.contains("::1".parse().unwrap()));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "::/129", "x/8", "10.0.0.0/", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn scrapes_are_admitted_by_address_or_token() {
        let local = Some("127.0.0.1".parse().unwrap());
        let far = Some("192.0.2.7".parse().unwrap());
        let open = Metrics::new(MetricsConfig::default());
        assert_eq!(open.admit(local, None), Ok(()));
        assert_eq!(open.admit(far, None), Err(StatusCode::FORBIDDEN));
        assert_eq!(open.admit(None, None), Err(StatusCode::FORBIDDEN));
        assert_eq!(
            open.admit(local, Some(b"Bearer x")),
            Err(StatusCode::UNAUTHORIZED),
            "no token is configured"
        );
        let tokened = Metrics::new(MetricsConfig {
            allow: Vec::new(),
            token: MetricsToken::new("s3cret\n"),
        });
        assert_eq!(tokened.admit(far, Some(b"Bearer s3cret")), Ok(()));
        assert_eq!(
            tokened.admit(far, Some(b"Bearer s3cre")),
            Err(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(
            tokened.admit(far, Some(b"s3cret")),
            Err(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(tokened.admit(local, None), Err(StatusCode::FORBIDDEN));
        assert!(MetricsToken::new(" \n").is_none());
        assert_eq!(
            format!("{:?}", MetricsToken::new("s3cret").unwrap()),
            "MetricsToken(<redacted>)"
        );
    }

    #[test]
    fn latencies_land_in_their_bucket() {
        let m = Metrics::new(MetricsConfig::default());
        m.record(Some(Operation::Health), None, Duration::from_micros(700));
        m.record(None, Some(ErrorCode::ALL[0]), Duration::from_secs(20));
        let mut out = String::new();
        m.write_requests(&mut out).unwrap();
        assert!(out.contains("openscm_requests_total{operation=\"Health\",code=\"ok\"} 1"));
        assert!(out.contains(&format!(
            "openscm_requests_total{{operation=\"Unknown\",code=\"{}\"}} 1",
            ErrorCode::ALL[0].as_str()
        )));
        assert!(out.contains("bucket{operation=\"Health\",le=\"0.0005\"} 0"));
        assert!(out.contains("bucket{operation=\"Health\",le=\"0.001\"} 1"));
        assert!(out.contains("bucket{operation=\"Unknown\",le=\"10\"} 0"));
        assert!(out.contains("bucket{operation=\"Unknown\",le=\"+Inf\"} 1"));
        assert!(out.contains("openscm_request_duration_seconds_sum{operation=\"Health\"} 0.0007"));
    }

    #[test]
    fn deliveries_and_deployments_are_reported_per_target_with_its_kind() {
        let stats = scm_store::StoreStats {
            deliveries: vec![
                ("edge".into(), "failure".into(), 2),
                ("edge".into(), "success".into(), 5),
                ("gone".into(), "success".into(), 1),
                ("lb".into(), "unchanged".into(), 3),
            ],
            deployment_health: vec![scm_store::DeploymentHealth {
                target: "edge".into(),
                failing: 3,
                not_serving: 1,
                drifted: 2,
            }],
            jobs: vec![
                ("notify".into(), "done".into(), 9),
                ("notify".into(), "failed".into(), 4),
                ("deliver".into(), "failed".into(), 7),
            ],
            ..Default::default()
        };
        let targets = vec![
            ("edge".to_string(), "nginx"),
            ("lb".to_string(), "haproxy"),
            ("idle".to_string(), "files"),
        ];
        let mut out = String::new();
        write_deliveries(&mut out, &stats, &targets).unwrap();
        for line in [
            "openscm_deliveries_total{target=\"edge\",kind=\"nginx\",outcome=\"success\"} 5",
            "openscm_deliveries_total{target=\"edge\",kind=\"nginx\",outcome=\"failure\"} 2",
            "openscm_deliveries_total{target=\"edge\",kind=\"nginx\",outcome=\"unchanged\"} 0",
            "openscm_deliveries_total{target=\"lb\",kind=\"haproxy\",outcome=\"unchanged\"} 3",
            "openscm_deliveries_total{target=\"idle\",kind=\"files\",outcome=\"success\"} 0",
            "openscm_deliveries_total{target=\"gone\",kind=\"unknown\",outcome=\"success\"} 1",
            "openscm_targets_failing{target=\"edge\",kind=\"nginx\"} 3",
            "openscm_targets_not_serving{target=\"edge\",kind=\"nginx\"} 1",
            "openscm_targets_drifted{target=\"edge\",kind=\"nginx\"} 2",
            "openscm_targets_drifted{target=\"idle\",kind=\"files\"} 0",
            "openscm_targets_not_serving{target=\"gone\",kind=\"unknown\"} 0",
            "openscm_notifications_failed 4",
        ] {
            assert!(out.lines().any(|l| l == line), "no {line:?} in\n{out}");
        }
        for name in [
            "openscm_deliveries_total",
            "openscm_targets_failing",
            "openscm_targets_not_serving",
            "openscm_targets_drifted",
            "openscm_notifications_failed",
        ] {
            assert_eq!(out.matches(&format!("# HELP {name} ")).count(), 1, "{out}");
            assert_eq!(out.matches(&format!("# TYPE {name} ")).count(), 1, "{out}");
        }
    }

    #[test]
    fn the_key_pool_is_reported_by_algorithm_and_by_source() {
        use scm_pki::KeyAlgorithm;
        let mut out = String::new();
        write_key_generations(
            &mut out,
            KeyGenerations {
                running: 1,
                waiting: 2,
                pool_ready: [
                    (KeyAlgorithm::Rsa2048, 8),
                    (KeyAlgorithm::Rsa3072, 0),
                    (KeyAlgorithm::Rsa4096, 2),
                ],
                from_pool: 5,
                on_request: 3,
            },
        )
        .unwrap();
        for line in [
            "openscm_key_generations_running 1",
            "openscm_key_generations_waiting 2",
            "# TYPE openscm_key_pool_ready gauge",
            "openscm_key_pool_ready{algorithm=\"RSA_2048\"} 8",
            "openscm_key_pool_ready{algorithm=\"RSA_3072\"} 0",
            "openscm_key_pool_ready{algorithm=\"RSA_4096\"} 2",
            "# TYPE openscm_keys_total counter",
            "openscm_keys_total{source=\"pool\"} 5",
            "openscm_keys_total{source=\"request\"} 3",
        ] {
            assert!(out.lines().any(|l| l == line), "no {line:?} in\n{out}");
        }
        // Every series has its HELP and TYPE, once.
        for name in [
            "openscm_key_generations_running",
            "openscm_key_generations_waiting",
            "openscm_key_pool_ready",
            "openscm_keys_total",
        ] {
            assert_eq!(out.matches(&format!("# HELP {name} ")).count(), 1, "{out}");
            assert_eq!(out.matches(&format!("# TYPE {name} ")).count(), 1, "{out}");
        }
    }
}
