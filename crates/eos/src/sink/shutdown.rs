//! A shutdown handle: one side asks for a graceful stop (a `SIGTERM`
//! handler, a test), the runner notices at its next await point.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// Asks a running loop to stop gracefully. Cloning gives another handle to
/// the same stop; once triggered it stays triggered.
///
/// ```
/// # async fn demo() {
/// use exactly_eos::sink::Shutdown;
///
/// let shutdown = Shutdown::new();
/// let for_signal = shutdown.clone();
/// tokio::spawn(async move {
///     // e.g. after tokio::signal::ctrl_c().await
///     for_signal.trigger();
/// });
/// shutdown.triggered().await;
/// assert!(shutdown.is_triggered());
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    triggered: AtomicBool,
    notify: Notify,
}

impl Shutdown {
    /// A handle not yet triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks for the stop (idempotent).
    pub fn trigger(&self) {
        self.inner.triggered.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// Whether the stop was asked for.
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::SeqCst)
    }

    /// Resolves once the stop is asked for (at once if it already was).
    /// Cancel-safe.
    pub async fn triggered(&self) {
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            // Register before looking at the flag, so a trigger between the
            // look and the await is not missed.
            notified.as_mut().enable();
            if self.is_triggered() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Shutdown;
    use std::time::Duration;

    #[tokio::test]
    async fn trigger_wakes_every_waiter_and_stays_triggered() {
        let s = Shutdown::new();
        assert!(!s.is_triggered());
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move { s.triggered().await })
            })
            .collect();
        tokio::task::yield_now().await;
        s.trigger();
        for w in waiters {
            tokio::time::timeout(Duration::from_secs(5), w)
                .await
                .expect("a waiter was not woken")
                .expect("waiter task");
        }
        // Already triggered: returns at once.
        tokio::time::timeout(Duration::from_secs(5), s.triggered())
            .await
            .expect("triggered() must return at once after trigger()");
        assert!(s.is_triggered());
    }
}
