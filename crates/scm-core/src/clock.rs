//! Time as a dependency: the server uses [`SystemClock`]; tests use [`FixedClock`] so expiry,
//! skew and ordering are checked without sleeping.

use std::sync::Mutex;

use time::OffsetDateTime;

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// Now, UTC.
    fn now(&self) -> OffsetDateTime;

    /// Now as Unix milliseconds.
    fn now_ms(&self) -> i64 {
        unix_ms(self.now())
    }
}

/// A time as Unix milliseconds, the unit the store keeps times in.
pub fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that says what it is told (tests).
#[derive(Debug)]
pub struct FixedClock(Mutex<OffsetDateTime>);

impl FixedClock {
    /// A clock stopped at `t`.
    pub fn new(t: OffsetDateTime) -> Self {
        Self(Mutex::new(t))
    }

    /// Moves the clock to `t`.
    pub fn set(&self, t: OffsetDateTime) {
        if let Ok(mut g) = self.0.lock() {
            *g = t;
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, d: time::Duration) {
        if let Ok(mut g) = self.0.lock() {
            *g += d;
        }
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        self.0
            .lock()
            .map(|g| *g)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}
