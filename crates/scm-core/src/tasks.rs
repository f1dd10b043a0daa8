//! [`Supervisor`]: the background tasks of a server (job workers, the cache poller), restarted
//! when one dies, and stopped together.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Runs named background tasks. A task that panics or returns before it is told to stop is
/// logged and started again (after a pause that grows to 5 s, so a task that keeps dying does not
/// spin); [`Supervisor::stop`] tells every task to stop and waits for them.
#[derive(Debug, Clone, Default)]
pub struct Supervisor {
    tracker: TaskTracker,
    cancel: CancellationToken,
}

impl Supervisor {
    /// A supervisor with no tasks.
    pub fn new() -> Self {
        Self::default()
    }

    /// The token every task receives; it fires when the supervisor stops.
    pub fn token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Starts `task` (called again for each restart) under supervision.
    pub fn spawn<F, Fut>(&self, name: &'static str, task: F)
    where
        F: Fn(CancellationToken) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let cancel = self.cancel.clone();
        self.tracker.spawn(async move {
            let mut pause = Duration::from_millis(100);
            loop {
                let run = tokio::spawn(task(cancel.clone()));
                let outcome = run.await;
                if cancel.is_cancelled() {
                    return;
                }
                match outcome {
                    Ok(()) => tracing::error!(task = name, "background task ended; restarting it"),
                    Err(e) => {
                        tracing::error!(task = name, error = %e, "background task died; restarting it")
                    }
                }
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        });
    }

    /// Tells every task to stop and waits up to `grace` for them; `true` if all stopped.
    pub async fn stop(&self, grace: Duration) -> bool {
        self.cancel.cancel();
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_task_that_dies_is_restarted_and_all_stop_together() {
        let sup = Supervisor::new();
        let starts = Arc::new(AtomicU32::new(0));
        let counted = starts.clone();
        sup.spawn("flaky", move |cancel| {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    panic!("boom {n}");
                }
                cancel.cancelled().await;
            }
        });
        for _ in 0..100 {
            if starts.load(Ordering::SeqCst) >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            starts.load(Ordering::SeqCst),
            3,
            "restarted after each panic"
        );
        assert!(sup.stop(Duration::from_secs(2)).await);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            starts.load(Ordering::SeqCst),
            3,
            "not restarted once stopped"
        );
    }
}
