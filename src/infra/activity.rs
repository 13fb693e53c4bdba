//! Counts work in flight (command tasks, runs) so the piped console can wait for a line's work
//! to finish before it reads the next line.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// A shared counter of unfinished work. Clone freely; all clones count together.
#[derive(Clone, Default)]
pub struct Activity {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    busy: AtomicUsize,
    idle: Notify,
}

/// Held while a piece of work runs; dropping it marks the work finished.
pub struct Busy {
    inner: Arc<Inner>,
}

impl Activity {
    /// Marks the start of a piece of work.
    pub fn begin(&self) -> Busy {
        self.inner.busy.fetch_add(1, Ordering::SeqCst);
        Busy {
            inner: self.inner.clone(),
        }
    }

    /// How many pieces of work are unfinished.
    pub fn busy(&self) -> usize {
        self.inner.busy.load(Ordering::SeqCst)
    }

    /// Waits until no work is unfinished.
    pub async fn idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            if self.busy() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if self.inner.busy.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.inner.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn idle_waits_for_every_guard() {
        let activity = Activity::default();
        activity.idle().await; // nothing running: returns at once
        let a = activity.begin();
        let b = activity.begin();
        let waiter = tokio::spawn({
            let activity = activity.clone();
            async move { activity.idle().await }
        });
        drop(a);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        drop(b);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("idle after the last guard")
            .unwrap();
    }
}
