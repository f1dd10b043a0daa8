//! The web console: sign-in with an access key and secret key (a session is a token of the
//! token mechanism, stored by hash, so it works across servers on one database), sign-out, CSRF
//! tokens bound to the session, throttled sign-in attempts, and the expiry timeline.
//!
//! A session token is stored under the hash of `console-session:` + the token, never under the
//! hash of the token alone: a console cookie is therefore no `X-Auth-Token` for the API, and an
//! API token is no console session.

use std::sync::Mutex;

use aws_lc_rs::hmac;
use scm_proto::AccessKeyId;
use scm_sign::SecretKey;
use scm_store::{CredentialStatus, TokenKind, TokenRecord};
use zeroize::Zeroizing;

use crate::auth::{self, AuthFailure, AuthMethod, Principal};
use crate::clock::unix_ms;
use crate::{DomainError, random};

use super::Scm;

/// How long a console session lasts (a working day).
pub const SESSION_TTL: time::Duration = time::Duration::hours(8);

/// Failed sign-ins allowed per access key *from one client address* within
/// [`THROTTLE_WINDOW_MS`]; past it that address's attempts with that key (even a right one) are
/// refused until the window ends. The key's owner elsewhere is not affected: failures are never
/// counted per key alone, since such a count would let anyone lock an owner out (and 40-character
/// random secret keys make guessing from many addresses hopeless anyway).
pub const MAX_FAILURES: u32 = 5;

/// Failed sign-ins allowed per client address within [`THROTTLE_WINDOW_MS`], whatever the keys
/// (higher than per key: a team behind one address should not lock itself out at the first few
/// typos). Behind a proxy, the client address is the proxy's unless the operator names the proxy
/// (`[console] trusted_proxies`).
pub const MAX_FAILURES_PER_SOURCE: u32 = 20;

/// The window of [`MAX_FAILURES`] (15 minutes).
pub const THROTTLE_WINDOW_MS: i64 = 15 * 60 * 1000;

/// Buckets per row of the limiter's table (two rows; 16 bytes a bucket: 4 MiB in all). An
/// attacker is held to [`MAX_FAILURES_PER_SOURCE`] counted failures per address and window, so
/// filling it far enough for counts of strangers to add up takes tens of thousands of addresses.
const LIMITER_WIDTH: usize = 1 << 17;

/// A console session just opened.
pub struct ConsoleSession {
    /// The cookie value (shown once, to the browser).
    pub token: Zeroizing<String>,
    /// When it ends (Unix ms).
    pub expires_ms: i64,
    /// Who signed in.
    pub principal: Principal,
}

impl std::fmt::Debug for ConsoleSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleSession")
            .field("token", &"<redacted>")
            .field("expires_ms", &self.expires_ms)
            .field("principal", &self.principal)
            .finish()
    }
}

/// Why a sign-in did not open a session.
#[derive(Debug)]
pub enum SignInError {
    /// Refused: unknown key, revoked key, wrong secret, or too many failures. Which one is
    /// logged, never told: the page says the same for all (no enumeration of access keys).
    Refused,
    /// The store failed.
    Failed(DomainError),
}

impl From<DomainError> for SignInError {
    fn from(e: DomainError) -> Self {
        Self::Failed(e)
    }
}

/// Failed sign-in attempts per (access key, client address) and per client address, in fixed
/// windows.
///
/// The counts live in a table of fixed size (a count-min sketch: each name is counted in one
/// bucket of each of two rows, chosen by two independently and randomly keyed hashes, and its
/// count is the smaller of the two). A flood of made-up keys or addresses therefore can neither
/// grow it nor push anything out of it: every failure is counted, always. Sharing a bucket only
/// ever makes a count higher, never lower, and since the hash keys are random per process an
/// attacker cannot aim at another name's buckets.
#[derive(Debug)]
pub struct SignInLimiter {
    hashers: [std::collections::hash_map::RandomState; 2],
    buckets: Mutex<Vec<Bucket>>,
}

/// Failures counted since `since_ms` (the window's start).
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    count: u32,
    since_ms: i64,
}

impl Bucket {
    fn count_at(&self, now_ms: i64) -> u32 {
        if now_ms - self.since_ms < THROTTLE_WINDOW_MS {
            self.count
        } else {
            0
        }
    }
}

impl Default for SignInLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl SignInLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self {
            hashers: Default::default(),
            buckets: Mutex::new(vec![Bucket::default(); 2 * LIMITER_WIDTH]),
        }
    }

    /// The name of an (access key, address) pair and of an address in the table.
    fn names(access_key: &str, source: &str) -> [(String, u32); 2] {
        [
            (
                format!("pair\n{}\n{source}", access_key.trim()),
                MAX_FAILURES,
            ),
            (format!("src\n{source}"), MAX_FAILURES_PER_SOURCE),
        ]
    }

    /// The two buckets of `name` (one per row).
    fn slots(&self, name: &str) -> [usize; 2] {
        use std::hash::BuildHasher;
        let [a, b] = &self.hashers;
        // The remainder is below the width, so it fits a usize on every target.
        let at = |h: u64| usize::try_from(h % LIMITER_WIDTH as u64).unwrap_or(0);
        [at(a.hash_one(name)), LIMITER_WIDTH + at(b.hash_one(name))]
    }

    /// Whether `source` may try `access_key` at `now_ms`: neither the pair nor the address has
    /// used up its failures in the window.
    pub fn allows(&self, access_key: &str, source: &str, now_ms: i64) -> bool {
        // A poisoned table (a panic while it was held) still holds valid counts.
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        Self::names(access_key, source).iter().all(|(name, limit)| {
            let count = self
                .slots(name)
                .iter()
                .map(|i| buckets.get(*i).map_or(0, |b| b.count_at(now_ms)))
                .min()
                .unwrap_or(0);
            count < *limit
        })
    }

    /// Counts a failure of `source` with `access_key`.
    pub fn failed(&self, access_key: &str, source: &str, now_ms: i64) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        for (name, _) in Self::names(access_key, source) {
            for i in self.slots(&name) {
                if let Some(b) = buckets.get_mut(i) {
                    if now_ms - b.since_ms >= THROTTLE_WINDOW_MS {
                        *b = Bucket {
                            count: 0,
                            since_ms: now_ms,
                        };
                    }
                    b.count = b.count.saturating_add(1);
                }
            }
        }
    }

    /// Forgets the failures of `source` with `access_key` (after a sign-in with them succeeded);
    /// the address's own count stays.
    pub fn clear(&self, access_key: &str, source: &str) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let [(pair, _), _] = Self::names(access_key, source);
        for i in self.slots(&pair) {
            if let Some(b) = buckets.get_mut(i) {
                *b = Bucket::default();
            }
        }
    }
}

/// The hash a console session is stored under (see the module documentation).
pub fn session_hash(token: &str) -> String {
    let tagged = Zeroizing::new(format!("console-session:{token}"));
    auth::token_hash(&tagged)
}

/// What the CSRF token is the HMAC of, keyed by the session token.
const CSRF_LABEL: &[u8] = b"openscm console csrf v1";

/// The CSRF token of a session: HMAC-SHA256 keyed by the session token (secret, in an
/// `HttpOnly` cookie another site can neither read nor send), so every server derives it
/// without shared state and it dies with the session.
pub fn csrf_token(session: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, session.as_bytes());
    hex::encode(hmac::sign(&key, CSRF_LABEL).as_ref())
}

/// Whether `presented` is the CSRF token of `session`, compared in constant time.
pub fn csrf_matches(session: &str, presented: &str) -> bool {
    let Ok(tag) = hex::decode(presented.trim()) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, session.as_bytes());
    hmac::verify(&key, CSRF_LABEL, &tag).is_ok()
}

/// One bar of the expiry timeline: certificates whose `not_after` is in `[from_ms, before_ms)`
/// (one week, or several when the timeline is long).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryWeek {
    /// Start of the bar's span (Unix ms, inclusive).
    pub from_ms: i64,
    /// End of the bar's span (Unix ms, exclusive).
    pub before_ms: i64,
    /// How many of the account's certificates expire in it.
    pub count: u64,
}

/// The expiry timeline: consecutive bars from the start of today (UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    /// The bars, each `weeks_per_bar` weeks long.
    pub bars: Vec<ExpiryWeek>,
    /// Weeks per bar: 1 unless the account holds a certificate expiring past what
    /// [`TIMELINE_MAX_BARS`] weeks cover.
    pub weeks_per_bar: u32,
}

impl Timeline {
    /// Weeks the timeline covers.
    pub fn weeks(&self) -> u64 {
        self.bars.len() as u64 * u64::from(self.weeks_per_bar)
    }
}

/// Milliseconds in a week.
pub const WEEK_MS: i64 = 7 * 86_400_000;

/// The timeline covers at least 13 months (57 weeks: 399 days), so that a certificate of a year
/// (the longest a public CA issues) is on it from the day it is issued.
pub const TIMELINE_MIN_WEEKS: u32 = 57;

/// At most this many bars: a longer span (a certificate held expires later than that) is drawn
/// in bars of several weeks each, so the chart stays readable.
pub const TIMELINE_MAX_BARS: u32 = 60;

/// Longest span drawn (100 years), whatever a certificate held says.
const TIMELINE_MAX_WEEKS: u32 = 5_218;

/// The first week of the timeline starts at the beginning of the current UTC day, so that its
/// bars (and the links to their certificates) stay the same all day.
pub fn timeline_start(now_ms: i64) -> i64 {
    now_ms.div_euclid(86_400_000) * 86_400_000
}

/// Weeks per bar and bars of a timeline from `start_ms` that shows `latest_ms`, the latest
/// expiry the account holds: at least [`TIMELINE_MIN_WEEKS`] weeks, one week per bar up to
/// [`TIMELINE_MAX_BARS`] bars, then as many weeks per bar as it takes.
pub fn timeline_shape(start_ms: i64, latest_ms: Option<i64>) -> (u32, u32) {
    let needed = latest_ms
        .filter(|l| *l >= start_ms)
        .map_or(0, |l| l.saturating_sub(start_ms) / WEEK_MS + 1);
    let weeks = u32::try_from(needed)
        .unwrap_or(TIMELINE_MAX_WEEKS)
        .clamp(TIMELINE_MIN_WEEKS, TIMELINE_MAX_WEEKS);
    let per_bar = weeks.div_ceil(TIMELINE_MAX_BARS).max(1);
    (per_bar, weeks.div_ceil(per_bar))
}

/// The bars of a timeline from `start_ms`, each `width_ms` long, with the counts of the store's
/// aggregate.
pub fn expiry_weeks(start_ms: i64, width_ms: i64, counts: &[u64]) -> Vec<ExpiryWeek> {
    (0_i64..)
        .zip(counts)
        .map(|(i, &count)| ExpiryWeek {
            from_ms: start_ms + i * width_ms,
            before_ms: start_ms + (i + 1) * width_ms,
            count,
        })
        .collect()
}

impl Scm {
    /// Opens a console session for the holder of an active credential's access key and secret
    /// key. The secret is compared in constant time (also for an unknown key, against a dummy);
    /// failures count against the access key and the client address `source` in `limiter`, and
    /// past [`MAX_FAILURES`] every attempt is refused alike. The reason of a refusal is logged.
    pub async fn console_sign_in(
        &self,
        limiter: &SignInLimiter,
        access_key: &str,
        secret_key: &SecretKey,
        source: &str,
    ) -> Result<ConsoleSession, SignInError> {
        let now = self.clock.now();
        let now_ms = unix_ms(now);
        if !limiter.allows(access_key, source, now_ms) {
            tracing::warn!(access_key = %access_key.trim(), %source, reason = "throttled", "console sign-in refused");
            return Err(SignInError::Refused);
        }
        let cred = match AccessKeyId::try_from(access_key.trim()) {
            Ok(ak) => self.credential(&ak).await?.map(|c| (ak, c)),
            Err(_) => None,
        };
        let refused = |reason: AuthFailure| {
            limiter.failed(access_key, source, now_ms);
            tracing::warn!(access_key = %access_key.trim(), %source, ?reason, "console sign-in refused");
            SignInError::Refused
        };
        let Some((ak, cred)) = cred else {
            // The same comparison as for a known key, so that timing tells nothing.
            let _ = SecretKey::new("0".repeat(secret_key.expose().len().max(1))) == *secret_key;
            return Err(refused(AuthFailure::UnknownKey));
        };
        if cred.secret != *secret_key {
            return Err(refused(AuthFailure::BadSignature));
        }
        if cred.status != CredentialStatus::Active {
            return Err(refused(AuthFailure::Revoked));
        }
        limiter.clear(access_key, source);
        let token = Zeroizing::new(random::token()?);
        let expires_ms = unix_ms(now + SESSION_TTL);
        let record = TokenRecord {
            kind: TokenKind::ConsoleSession,
            token_hash: session_hash(&token),
            access_key: ak.clone(),
            domain_id: cred.account.clone(),
            project_id: cred.project.clone(),
            issued_ms: now_ms,
            expires_ms,
        };
        self.store
            .insert_token(&record, self.config.max_tokens_per_credential)
            .await
            .map_err(DomainError::from)?;
        tracing::info!(access_key = %ak, account = %cred.account, "console sign-in");
        Ok(ConsoleSession {
            token,
            expires_ms,
            principal: Principal {
                account: cred.account.clone(),
                project: cred.project.clone(),
                access_key: ak,
                method: AuthMethod::Token,
            },
        })
    }

    /// The caller of a console session cookie: a live session of an active credential.
    pub async fn console_session(&self, token: &str) -> Result<Principal, DomainError> {
        let token = token.trim();
        if !(32..=256).contains(&token.len()) {
            return Err(AuthFailure::BadToken.into());
        }
        self.verify_token_hash(&session_hash(token), TokenKind::ConsoleSession)
            .await
    }

    /// Ends a console session (its token is deleted: no server accepts it any more).
    pub async fn console_sign_out(&self, token: &str) -> Result<(), DomainError> {
        self.store.delete_token(&session_hash(token.trim())).await?;
        Ok(())
    }

    /// The expiry timeline of the caller's account from the start of today (UTC): at least 13
    /// months, and up to the latest expiry the account holds ([`timeline_shape`]).
    pub async fn expiry_timeline(&self, p: &Principal) -> Result<Timeline, DomainError> {
        let start = timeline_start(self.clock.now_ms());
        let latest = self.store.latest_expiry(&p.account).await?;
        let (weeks_per_bar, bars) = timeline_shape(start, latest);
        let width = WEEK_MS * i64::from(weeks_per_bar);
        let counts = self
            .store
            .expiry_histogram(&p.account, start, width, bars)
            .await?;
        Ok(Timeline {
            bars: expiry_weeks(start, width, &counts),
            weeks_per_bar,
        })
    }

    /// The time now by the service's clock (Unix ms), for pages that show relative times.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_token_is_bound_to_its_session() {
        let s = "OSCM".to_owned() + &"ab".repeat(32);
        let t = csrf_token(&s);
        assert_eq!(t.len(), 64);
        assert!(csrf_matches(&s, &t));
        assert!(csrf_matches(&s, &format!(" {t} ")));
        let other = "OSCM".to_owned() + &"cd".repeat(32);
        assert!(!csrf_matches(&other, &t), "another session's token");
        assert!(!csrf_matches(&s, ""));
        assert!(!csrf_matches(&s, "zz"));
        assert!(!csrf_matches(&s, &t[..62]), "a truncated token");
        let mut flipped = t.clone().into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        assert!(!csrf_matches(&s, &String::from_utf8(flipped).unwrap()));
    }

    #[test]
    fn session_hash_is_not_the_api_token_hash() {
        let t = "OSCM".to_owned() + &"ef".repeat(32);
        assert_ne!(session_hash(&t), auth::token_hash(&t));
        assert_eq!(session_hash(&t).len(), 64);
    }

    #[test]
    fn limiter_refuses_a_pair_then_an_address_past_their_failures_until_the_window_ends() {
        let l = SignInLimiter::new();
        for i in 0..MAX_FAILURES {
            assert!(l.allows("A", "1.2.3.4", 1000 + i64::from(i)));
            l.failed("A", "1.2.3.4", 1000 + i64::from(i));
        }
        assert!(!l.allows("A", "1.2.3.4", 2000), "the pair is used up");
        // The key's owner elsewhere is not locked out by someone else's failures.
        assert!(l.allows("A", "5.6.7.8", 2000));
        // Another key from the same address is still let in, until the address's own limit.
        assert!(l.allows("B", "1.2.3.4", 2000));
        for i in MAX_FAILURES..MAX_FAILURES_PER_SOURCE {
            l.failed(&format!("K{i}"), "1.2.3.4", 2000);
        }
        assert!(!l.allows("B", "1.2.3.4", 2000), "the address is used up");
        assert!(l.allows("B", "5.6.7.8", 2000));
        // The window ends.
        assert!(l.allows("A", "1.2.3.4", 1000 + THROTTLE_WINDOW_MS));
        // A success forgets the pair, not the address.
        l.clear("A", "5.6.7.8");
        assert!(l.allows("A", "5.6.7.8", 2001));
    }

    #[test]
    fn a_full_limiter_still_counts_every_failure() {
        let l = SignInLimiter::new();
        // Twice the 10,000 entries the old table held: 20 made-up keys from each of 1,000
        // addresses (each address's whole budget).
        for a in 0..1000 {
            let source = format!("10.0.{}.{}", a >> 8, a & 255);
            for k in 0..MAX_FAILURES_PER_SOURCE {
                l.failed(&format!("FAKE{a}-{k}"), &source, 1000);
            }
        }
        // A fresh key and address is still counted: refused after its failures (a count-min
        // table never counts low, so this holds whatever the hashes)...
        for _ in 0..MAX_FAILURES {
            l.failed("VICTIM", "192.0.2.1", 2000);
        }
        assert!(!l.allows("VICTIM", "192.0.2.1", 2000));
        // ...and the flood locked (almost) nobody else out. Counting in shared buckets can count
        // high: a name whose bucket in both rows also holds a flooded address reads as used up.
        // With 1,000 flooded addresses in 131,072 buckets a row, that is about 6 in 100,000
        // names (a handful of false refusals would mean the table is too small or the hashes
        // are not independent); the test saw one such name in a few dozen runs of 1,000.
        let refused = (0..1000)
            .filter(|i| {
                !l.allows(
                    &format!("OWNER{i}"),
                    &format!("198.51.100.{}", i % 250),
                    2000,
                )
            })
            .count();
        assert!(
            refused <= 10,
            "{refused} of 1,000 other sign-ins refused after the flood"
        );
    }

    #[test]
    fn timeline_weeks_start_at_the_utc_day_and_follow_each_other() {
        // 2026-12-04 01:57:40 UTC.
        let now = 1_796_349_460_000;
        let start = timeline_start(now);
        assert_eq!(start, 1_796_342_400_000);
        assert_eq!(timeline_start(start), start);
        let weeks = expiry_weeks(start, WEEK_MS, &[3, 0, 7]);
        assert_eq!(weeks.len(), 3);
        assert_eq!(
            weeks[0],
            ExpiryWeek {
                from_ms: start,
                before_ms: start + WEEK_MS,
                count: 3
            }
        );
        assert!(weeks.windows(2).all(|w| w[0].before_ms == w[1].from_ms));
        assert_eq!(weeks[2].count, 7);
        assert_eq!(timeline_start(-1), -86_400_000);
    }

    #[test]
    fn the_timeline_covers_13_months_or_the_latest_expiry_in_at_most_60_bars() {
        let start = 1_796_342_400_000;
        let day = 86_400_000;
        // Nothing held, or nothing later than 13 months: 57 weeks, one per bar.
        assert_eq!(timeline_shape(start, None), (1, 57));
        assert_eq!(timeline_shape(start, Some(start - 1)), (1, 57));
        assert_eq!(timeline_shape(start, Some(start + 365 * day)), (1, 57));
        // A certificate of 397 days (the longest a public CA issued) is on it.
        let (per, bars) = timeline_shape(start, Some(start + 397 * day));
        assert!(i64::from(per * bars) * WEEK_MS > 397 * day);
        // Up to 60 weeks, still one per bar; past that, wider bars, and the last one holds it.
        assert_eq!(
            timeline_shape(start, Some(start + 60 * WEEK_MS - 1)),
            (1, 60)
        );
        assert_eq!(timeline_shape(start, Some(start + 60 * WEEK_MS)), (2, 31));
        let five_years = start + 5 * 365 * day;
        let (per, bars) = timeline_shape(start, Some(five_years));
        assert!(bars <= TIMELINE_MAX_BARS, "{bars}");
        assert!(start + i64::from(per * bars) * WEEK_MS > five_years);
        assert!(start + i64::from(per * (bars - 1)) * WEEK_MS <= five_years);
        // A certificate of a thousand years does not make an endless chart.
        let (per, bars) = timeline_shape(start, Some(i64::MAX - 1));
        assert!(bars <= TIMELINE_MAX_BARS && per * bars <= TIMELINE_MAX_WEEKS + per);
    }
}
