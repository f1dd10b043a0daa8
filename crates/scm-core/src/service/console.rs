//! The web console: sign-in with an access key and secret key (a session is a token of the
//! token mechanism, stored by hash, so it works across servers on one database), sign-out, CSRF
//! tokens bound to the session, throttled sign-in attempts, and the expiry timeline.
//!
//! A session token is stored under the hash of `console-session:` + the token, never under the
//! hash of the token alone: a console cookie is therefore no `X-Auth-Token` for the API, and an
//! API token is no console session.

use std::collections::HashMap;
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

/// Failed sign-ins allowed per access key within [`THROTTLE_WINDOW_MS`]; past it every attempt
/// with that key (even a right one) is refused until the window ends.
pub const MAX_FAILURES: u32 = 5;

/// Failed sign-ins allowed per client address within [`THROTTLE_WINDOW_MS`] (higher than per key:
/// a team behind one address should not lock itself out at the first few typos).
pub const MAX_FAILURES_PER_SOURCE: u32 = 20;

/// The window of [`MAX_FAILURES`] (15 minutes).
pub const THROTTLE_WINDOW_MS: i64 = 15 * 60 * 1000;

/// Entries the limiter keeps at most (a flood of made-up keys cannot grow it without bound).
const LIMITER_CAPACITY: usize = 10_000;

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

/// Failed sign-in attempts by access key and by client address, in fixed windows.
#[derive(Debug, Default)]
pub struct SignInLimiter {
    failures: Mutex<HashMap<String, (u32, i64)>>,
}

impl SignInLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether none of `keys` has used up its failures (the limit given with it) in the window
    /// running at `now_ms`.
    pub fn allows(&self, keys: &[(String, u32)], now_ms: i64) -> bool {
        let Ok(map) = self.failures.lock() else {
            return false;
        };
        keys.iter().all(|(k, limit)| match map.get(k) {
            Some((n, since)) if now_ms - since < THROTTLE_WINDOW_MS => n < limit,
            _ => true,
        })
    }

    /// Counts a failure against each of `keys`.
    pub fn failed(&self, keys: &[(String, u32)], now_ms: i64) {
        let Ok(mut map) = self.failures.lock() else {
            return;
        };
        if map.len() >= LIMITER_CAPACITY {
            map.retain(|_, (_, since)| now_ms - *since < THROTTLE_WINDOW_MS);
        }
        for (k, _) in keys {
            if map.len() >= LIMITER_CAPACITY && !map.contains_key(k) {
                continue;
            }
            let e = map.entry(k.clone()).or_insert((0, now_ms));
            if now_ms - e.1 >= THROTTLE_WINDOW_MS {
                *e = (0, now_ms);
            }
            e.0 = e.0.saturating_add(1);
        }
    }

    /// Forgets the failures of `key` (after a sign-in with it succeeded).
    pub fn clear(&self, key: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(key);
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

/// One bar of the expiry timeline: certificates whose `not_after` is in `[from_ms, before_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryWeek {
    /// Start of the week (Unix ms, inclusive).
    pub from_ms: i64,
    /// End of the week (Unix ms, exclusive).
    pub before_ms: i64,
    /// How many of the account's certificates expire in it.
    pub count: u64,
}

/// Milliseconds in a week.
pub const WEEK_MS: i64 = 7 * 86_400_000;

/// The first week of the timeline starts at the beginning of the current UTC day, so that its
/// bars (and the links to their certificates) stay the same all day.
pub fn timeline_start(now_ms: i64) -> i64 {
    now_ms.div_euclid(86_400_000) * 86_400_000
}

/// The weeks of a timeline from `start_ms`, with the counts of the store's aggregate.
pub fn expiry_weeks(start_ms: i64, counts: &[u64]) -> Vec<ExpiryWeek> {
    (0_i64..)
        .zip(counts)
        .map(|(i, &count)| ExpiryWeek {
            from_ms: start_ms + i * WEEK_MS,
            before_ms: start_ms + (i + 1) * WEEK_MS,
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
        let ak_key = format!("ak:{}", access_key.trim());
        let keys = [
            (ak_key.clone(), MAX_FAILURES),
            (format!("src:{source}"), MAX_FAILURES_PER_SOURCE),
        ];
        if !limiter.allows(&keys, now_ms) {
            tracing::warn!(access_key = %access_key.trim(), %source, reason = "throttled", "console sign-in refused");
            return Err(SignInError::Refused);
        }
        let cred = match AccessKeyId::try_from(access_key.trim()) {
            Ok(ak) => self.credential(&ak).await?.map(|c| (ak, c)),
            Err(_) => None,
        };
        let refused = |reason: AuthFailure| {
            limiter.failed(&keys, now_ms);
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
        limiter.clear(&ak_key);
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

    /// The expiry timeline of the caller's account: `weeks` weeks from the start of today (UTC),
    /// each with how many certificates expire in it.
    pub async fn expiry_timeline(
        &self,
        p: &Principal,
        weeks: u32,
    ) -> Result<Vec<ExpiryWeek>, DomainError> {
        let start = timeline_start(self.clock.now_ms());
        let counts = self
            .store
            .expiry_histogram(&p.account, start, WEEK_MS, weeks)
            .await?;
        Ok(expiry_weeks(start, &counts))
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
    fn limiter_refuses_past_the_failures_until_the_window_ends() {
        let l = SignInLimiter::new();
        let key = |k: &str| (format!("ak:{k}"), MAX_FAILURES);
        let src = |s: &str| (format!("src:{s}"), MAX_FAILURES_PER_SOURCE);
        let keys = [key("A"), src("1.2.3.4")];
        for i in 0..MAX_FAILURES {
            assert!(l.allows(&keys, 1000 + i64::from(i)));
            l.failed(&keys, 1000 + i64::from(i));
        }
        assert!(!l.allows(&keys, 2000));
        // Another key from the same address is still let in, until the address's own limit.
        assert!(l.allows(&[key("B"), src("1.2.3.4")], 2000));
        for i in MAX_FAILURES..MAX_FAILURES_PER_SOURCE {
            l.failed(&[key(&format!("K{i}")), src("1.2.3.4")], 2000);
        }
        assert!(!l.allows(&[key("B"), src("1.2.3.4")], 2000));
        assert!(l.allows(&[key("B"), src("5.6.7.8")], 2000));
        // The window ends.
        assert!(l.allows(&keys, 1000 + THROTTLE_WINDOW_MS));
        l.clear("ak:A");
        assert!(l.allows(&[key("A"), src("5.6.7.8")], 2001));
    }

    #[test]
    fn timeline_weeks_start_at_the_utc_day_and_follow_each_other() {
        // 2026-12-04 01:57:40 UTC.
        let now = 1_796_349_460_000;
        let start = timeline_start(now);
        assert_eq!(start, 1_796_342_400_000);
        assert_eq!(timeline_start(start), start);
        let weeks = expiry_weeks(start, &[3, 0, 7]);
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
}
