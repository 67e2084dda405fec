//! The concurrency limit on expensive requests: those whose work or memory grows with the
//! catalog rather than with the page asked for (see `AppState::expensive` for which they are).
//!
//! At most `permits` run at once; a few more wait in a short queue (FIFO) for a bounded time;
//! the rest are refused at once, so memory stays bounded by what `permits` requests hold and a
//! flood of them is answered `503` + `Retry-After` instead of slowing every other route.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a queued request waits for a permit before it is refused.
pub(crate) const QUEUE_WAIT: Duration = Duration::from_secs(2);
/// Queued requests per permit.
pub(crate) const QUEUE_PER_PERMIT: usize = 2;
/// What a refused client is told to wait, in seconds.
pub(crate) const RETRY_AFTER_SECS: u64 = 1;

/// The default limit: one expensive request per core (their work is CPU in this process:
/// more at once only adds memory and latency), at least two so that one slow audit does not
/// hold every facet request on a one-core machine.
pub fn default_max_expensive_requests() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2)
}

#[derive(Debug)]
pub(crate) struct Limiter {
    permits: Arc<Semaphore>,
    queue: usize,
    waiting: AtomicUsize,
    wait: Duration,
}

/// The limit was reached and the queue was full, or the wait ran out.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refused;

/// Leaves the queue when the waiting request gets its permit, is refused, or is dropped.
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Limiter {
    pub(crate) fn new(permits: usize, queue: usize, wait: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(permits.clamp(1, Semaphore::MAX_PERMITS))),
            queue,
            waiting: AtomicUsize::new(0),
            wait,
        }
    }

    /// The limiter `[server] max_expensive_requests` asks for, with its queue.
    pub(crate) fn for_requests(permits: usize) -> Self {
        Self::new(
            permits,
            permits.saturating_mul(QUEUE_PER_PERMIT),
            QUEUE_WAIT,
        )
    }

    /// Requests waiting in the queue now.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// A permit, held while the request runs (drop it when the answer is built).
    pub(crate) async fn acquire(&self) -> Result<OwnedSemaphorePermit, Refused> {
        if let Ok(p) = Arc::clone(&self.permits).try_acquire_owned() {
            return Ok(p);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused);
        }
        let _queued = Queued(&self.waiting);
        match tokio::time::timeout(self.wait, Arc::clone(&self.permits).acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            // Timed out, or the semaphore closed (never done).
            _ => Err(Refused),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::Notify;

    use super::*;

    /// A handler that holds its permit until told to finish.
    async fn handler(limiter: Arc<Limiter>, release: Arc<Notify>) -> Result<(), Refused> {
        let _permit = limiter.acquire().await?;
        release.notified().await;
        Ok(())
    }

    #[tokio::test]
    async fn past_the_limit_requests_are_refused_and_admitted_again_once_one_ends() {
        let limiter = Arc::new(Limiter::new(2, 0, Duration::from_secs(60)));
        let release = Arc::new(Notify::new());
        let running: Vec<_> = (0..2)
            .map(|_| tokio::spawn(handler(Arc::clone(&limiter), Arc::clone(&release))))
            .collect();
        // Both took their permit (each is parked on the Notify).
        while limiter.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(limiter.acquire().await.err(), Some(Refused), "a third");
        release.notify_one();
        // One handler ends: a permit is free again.
        let freed = tokio::time::timeout(Duration::from_secs(10), async {
            while limiter.permits.available_permits() == 0 {
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert!(freed.is_ok(), "a permit within 10 s");
        assert!(limiter.acquire().await.is_ok());
        for r in running {
            // The handler not released is still parked on the Notify.
            r.abort();
        }
    }

    #[tokio::test]
    async fn the_queue_waits_its_turn_and_is_bounded() {
        let limiter = Arc::new(Limiter::new(1, 1, Duration::from_secs(60)));
        let release = Arc::new(Notify::new());
        let first = tokio::spawn(handler(Arc::clone(&limiter), Arc::clone(&release)));
        while limiter.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        // The second queues (waits); the third finds the queue full.
        let second = {
            let limiter = Arc::clone(&limiter);
            tokio::spawn(async move { limiter.acquire().await.map(drop) })
        };
        while limiter.waiting.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(limiter.acquire().await.err(), Some(Refused), "queue full");
        release.notify_one();
        assert_eq!(first.await.ok(), Some(Ok(())));
        let second = tokio::time::timeout(Duration::from_secs(10), second)
            .await
            .expect("the queued one is admitted");
        assert_eq!(second.ok(), Some(Ok(())));
        assert_eq!(limiter.waiting.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn a_queued_request_is_refused_when_its_wait_runs_out() {
        let limiter = Arc::new(Limiter::new(1, 4, Duration::from_millis(50)));
        let held = limiter.acquire().await.expect("the only permit");
        assert_eq!(limiter.acquire().await.err(), Some(Refused));
        assert_eq!(
            limiter.waiting.load(Ordering::Acquire),
            0,
            "it left the queue"
        );
        drop(held);
        assert!(limiter.acquire().await.is_ok());
    }
}
