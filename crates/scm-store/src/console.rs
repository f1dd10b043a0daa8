//! [`Console`]: what the web console needs beyond the API's queries: the expiry timeline's
//! aggregate.

use async_trait::async_trait;
use scm_proto::DomainId;

use crate::pool::db_run;
use crate::{Result, SqlStore};

/// The web console's store operations.
#[async_trait]
pub trait Console: Send + Sync {
    /// How many of `account`'s certificates expire in each of `weeks` consecutive windows of
    /// `week_ms` starting at `from_ms` (`not_after` in `[from + i·week, from + (i+1)·week)`),
    /// whatever their status. One aggregate over a range of the expiry index.
    async fn expiry_histogram(
        &self,
        account: &DomainId,
        from_ms: i64,
        week_ms: i64,
        weeks: u32,
    ) -> Result<Vec<u64>>;

    /// The latest `not_after` of `account`'s certificates (of any status), `None` when none is
    /// issued. The top of the same expiry index.
    async fn latest_expiry(&self, account: &DomainId) -> Result<Option<i64>>;
}

#[async_trait]
impl Console for SqlStore {
    async fn expiry_histogram(
        &self,
        account: &DomainId,
        from_ms: i64,
        week_ms: i64,
        weeks: u32,
    ) -> Result<Vec<u64>> {
        let n = usize::try_from(weeks).unwrap_or(0);
        let week_ms = week_ms.max(1);
        let until = from_ms.saturating_add(week_ms.saturating_mul(i64::from(weeks)));
        // The expression of the expiry sort index (migration 0009): a range scan of that index,
        // which also holds everything counted (no table read).
        let rows: Vec<(i64, i64)> = db_run!(&self.pool, |p| {
            sqlx::query_as(
                "SELECT (coalesce(not_after_ms, 9223372036854775807) - $2) / $3 AS week, \
                 COUNT(*) FROM certificates WHERE domain_id = $1 \
                 AND coalesce(not_after_ms, 9223372036854775807) >= $2 \
                 AND coalesce(not_after_ms, 9223372036854775807) < $4 GROUP BY 1",
            )
            .bind(account.as_str())
            .bind(from_ms)
            .bind(week_ms)
            .bind(until)
            .fetch_all(p)
            .await?
        });
        let mut counts = vec![0_u64; n];
        for (week, count) in rows {
            if let Some(slot) = usize::try_from(week).ok().and_then(|w| counts.get_mut(w)) {
                *slot = u64::try_from(count).unwrap_or(0);
            }
        }
        Ok(counts)
    }

    async fn latest_expiry(&self, account: &DomainId) -> Result<Option<i64>> {
        // The index's expression again (certificates not issued yet sort last as i64::MAX).
        let latest: Option<i64> = db_run!(&self.pool, |p| {
            sqlx::query_scalar(
                "SELECT max(coalesce(not_after_ms, 9223372036854775807)) FROM certificates \
                 WHERE domain_id = $1 \
                 AND coalesce(not_after_ms, 9223372036854775807) < 9223372036854775807",
            )
            .bind(account.as_str())
            .fetch_one(p)
            .await?
        });
        Ok(latest)
    }
}
