//! Stopping a running loop from outside: one cloneable [`ShutdownHandle`]
//! shared by the [`Session`](crate::Session), the
//! [`SinkRunner`](crate::sink::SinkRunner) and the `exactly-postgres`
//! outbox relay (wire it to SIGTERM, a health check, an admin endpoint;
//! one handle may stop several of them).
//!
//! For a session, a graceful stop ([`ShutdownHandle::shutdown`]) lets the
//! handler call in progress finish, commits the open transaction, then
//! closes the producer and the consumer (leaving the group); records polled
//! but not yet processed are left for the partition's next owner. The whole
//! stop is bounded by `shutdown.timeout.ms`, counted from the request: past
//! it, a handler call still running is dropped and the open transaction is
//! aborted instead. [`ShutdownHandle::abort`] aborts at once.
//!
//! The sink runner and the outbox relay notice either request at their
//! next await point: the batch in flight finishes (their own bound), the
//! member leaves the group, the clients close.
//!
//! ```
//! # async fn demo() {
//! use exactly_eos::ShutdownHandle;
//!
//! let shutdown = ShutdownHandle::new();
//! let for_signal = shutdown.clone();
//! tokio::spawn(async move {
//!     // e.g. after tokio::signal::ctrl_c().await
//!     for_signal.shutdown();
//! });
//! shutdown.requested().await;
//! assert!(shutdown.is_requested());
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// How a stop was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopMode {
    /// Commit the open transaction, then close.
    Finish,
    /// Abort the open transaction, then close.
    Abort,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Request {
    mode: StopMode,
    at: Instant,
}

/// Stops a running [`Session`](crate::Session),
/// [`SinkRunner`](crate::sink::SinkRunner) or outbox relay; clone it
/// freely. Once requested, a stop stays requested.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    tx: Arc<watch::Sender<Option<Request>>>,
}

impl Default for ShutdownHandle {
    fn default() -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(None)),
        }
    }
}

impl ShutdownHandle {
    /// A handle with no stop requested.
    pub fn new() -> Self {
        Self::default()
    }

    /// Graceful stop: commit the open transaction, leave the group, close
    /// (within `shutdown.timeout.ms` of this call). Idempotent.
    pub fn shutdown(&self) {
        self.request(StopMode::Finish);
    }

    /// Stop now: abort the open transaction, leave the group, close. Also
    /// turns a graceful stop in progress into an abort.
    pub fn abort(&self) {
        self.request(StopMode::Abort);
    }

    /// Whether a stop was asked for.
    pub fn is_requested(&self) -> bool {
        self.tx.borrow().is_some()
    }

    /// Resolves once a stop (either kind) is asked for, at once if it
    /// already was. Cancel-safe.
    pub async fn requested(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`: the wait cannot fail.
        let _ = rx.wait_for(Option::is_some).await;
    }

    fn request(&self, mode: StopMode) {
        self.tx.send_if_modified(|r| match r {
            None => {
                *r = Some(Request {
                    mode,
                    at: Instant::now(),
                });
                true
            }
            Some(old) if old.mode == StopMode::Finish && mode == StopMode::Abort => {
                old.mode = StopMode::Abort;
                true
            }
            Some(_) => false,
        });
    }

    pub(crate) fn signal(&self, timeout: Duration) -> StopSignal {
        StopSignal {
            rx: self.tx.subscribe(),
            timeout,
        }
    }
}

/// The session's end of the handle.
#[derive(Debug)]
pub(crate) struct StopSignal {
    rx: watch::Receiver<Option<Request>>,
    timeout: Duration,
}

impl StopSignal {
    /// The stop asked for, if any.
    pub(crate) fn requested(&self) -> Option<StopMode> {
        self.rx.borrow().map(|r| r.mode)
    }

    /// When the stop must be over (`None`: no stop asked for).
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.rx.borrow().map(|r| match r.mode {
            StopMode::Finish => r.at + self.timeout,
            StopMode::Abort => r.at,
        })
    }

    /// Resolves once a stop is asked for.
    pub(crate) async fn requested_wait(&mut self) {
        // An error means every handle is gone: nobody can ask any more.
        if self.rx.wait_for(Option::is_some).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Resolves once a stop was asked for and its time is up (at once for
    /// an abort): what is still running then must be dropped.
    pub(crate) async fn expired(&mut self) {
        loop {
            match self.deadline() {
                Some(deadline) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(deadline) => return,
                        // A graceful stop turned into an abort.
                        r = self.rx.changed() => if r.is_err() {
                            tokio::time::sleep_until(deadline).await;
                            return;
                        },
                    }
                }
                None => self.requested_wait().await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn graceful_stop_expires_after_the_timeout_and_abort_at_once() {
        let h = ShutdownHandle::default();
        let mut s = h.signal(Duration::from_secs(5));
        assert_eq!(s.requested(), None);
        assert!(!h.is_requested());
        let start = Instant::now();
        let h2 = h.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            h2.shutdown();
        });
        s.expired().await;
        assert_eq!(s.requested(), Some(StopMode::Finish));
        assert_eq!(start.elapsed(), Duration::from_secs(6));

        // A second graceful request changes nothing; an abort makes the
        // deadline the first request's moment.
        h.shutdown();
        assert_eq!(s.deadline(), Some(start + Duration::from_secs(6)));
        h.abort();
        assert_eq!(s.requested(), Some(StopMode::Abort));
        assert_eq!(s.deadline(), Some(start + Duration::from_secs(1)));
        h.shutdown();
        assert_eq!(s.requested(), Some(StopMode::Abort), "no downgrade");
    }

    #[tokio::test]
    async fn requested_wakes_every_waiter_and_stays_requested() {
        let h = ShutdownHandle::new();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let h = h.clone();
                tokio::spawn(async move { h.requested().await })
            })
            .collect();
        tokio::task::yield_now().await;
        h.shutdown();
        for w in waiters {
            tokio::time::timeout(Duration::from_secs(5), w)
                .await
                .expect("a waiter was not woken")
                .expect("waiter task");
        }
        // Already requested: returns at once.
        tokio::time::timeout(Duration::from_secs(5), h.requested())
            .await
            .expect("requested() must return at once after shutdown()");
        let a = ShutdownHandle::new();
        a.abort();
        tokio::time::timeout(Duration::from_secs(5), a.requested())
            .await
            .expect("an abort is a request too");
    }

    #[tokio::test(start_paused = true)]
    async fn an_abort_cuts_a_graceful_stop_short() {
        let h = ShutdownHandle::default();
        let mut s = h.signal(Duration::from_secs(30));
        h.shutdown();
        let start = Instant::now();
        let h2 = h.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            h2.abort();
        });
        s.expired().await;
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }
}
