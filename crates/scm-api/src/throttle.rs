//! Per-account request rate limits: a token bucket per account, refilled continuously. A
//! request that finds its account's bucket empty is answered 429 `APIGW.0308` with the seconds
//! to wait in `Retry-After`, and does nothing.
//!
//! The buckets live in this process: with several servers behind a load balancer, an account
//! gets each server's rate (documented in docs/security.md, "Fair sharing").

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use scm_proto::DomainId;

/// The rate every account gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests per second, sustained.
    pub per_second: f64,
    /// Requests allowed at once after a quiet spell.
    pub burst: f64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every account that made a request recently.
#[derive(Debug)]
pub(crate) struct Throttle {
    limit: RateLimit,
    buckets: Mutex<HashMap<DomainId, Bucket>>,
}

/// Buckets kept before the full ones (idle accounts) are dropped.
const MAX_BUCKETS: usize = 100_000;

impl Throttle {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from `account`'s bucket at `now`, or says how long until one is there.
    pub(crate) fn admit(&self, account: &DomainId, now: Instant) -> Result<(), Duration> {
        let RateLimit { per_second, burst } = self.limit;
        let Ok(mut buckets) = self.buckets.lock() else {
            // A poisoned lock means a panic elsewhere; limiting is not worth failing requests.
            return Ok(());
        };
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(account) {
            // Forget the accounts whose buckets have refilled: they lose nothing by it.
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * per_second < burst
            });
        }
        let bucket = buckets.entry(account.clone()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let refilled = now.saturating_duration_since(bucket.at).as_secs_f64() * per_second;
        bucket.tokens = (bucket.tokens + refilled).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let missing = 1.0 - bucket.tokens;
            Err(Duration::from_secs_f64(
                missing / per_second.max(f64::MIN_POSITIVE),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_sustained_rate_per_account() {
        let t = Throttle::new(RateLimit {
            per_second: 10.0,
            burst: 5.0,
        });
        let (a, b) = (
            DomainId::from_random([1; 16]),
            DomainId::from_random([2; 16]),
        );
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(t.admit(&a, t0).is_ok());
        }
        let wait = t.admit(&a, t0).unwrap_err();
        assert!(
            wait <= Duration::from_millis(100) && wait > Duration::ZERO,
            "{wait:?}"
        );
        assert!(
            t.admit(&b, t0).is_ok(),
            "another account has its own bucket"
        );
        assert!(
            t.admit(&a, t0 + Duration::from_millis(100)).is_ok(),
            "refilled"
        );
        assert!(t.admit(&a, t0 + Duration::from_millis(100)).is_err());
        assert!(t.admit(&a, t0 + Duration::from_secs(60)).is_ok());
    }
}
