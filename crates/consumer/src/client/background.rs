//! A task of the consumer's whose result the next turn of `poll` picks up
//! (the group join, the committed-offset and ListOffsets lookups).
//!
//! The task stores its result, then wakes `poll`; so a turn that a task's
//! wake-up starts always finds that result. Checking
//! `JoinHandle::is_finished` instead lost wake-ups: the task's last line
//! (the wake-up) runs before the handle reads as finished, the woken turn
//! found nothing, and `poll` slept out its whole timeout (a consumer group
//! join took a second longer about one time in five with a 1 s poll timeout;
//! issue 15).

use std::future::Future;
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::group::heartbeat::GroupShared;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Background<T> {
    handle: JoinHandle<()>,
    result: oneshot::Receiver<T>,
}

/// How a background task ended without a result (aborted or panicked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gone;

impl<T: Send + 'static> Background<T> {
    /// Runs `work` on its own task; `wake` is notified once its result can
    /// be taken.
    pub(crate) fn spawn(
        work: impl Future<Output = T> + Send + 'static,
        wake: Arc<GroupShared>,
    ) -> Self {
        let (tx, result) = oneshot::channel();
        let handle = tokio::spawn(async move {
            let r = work.await;
            let _ = tx.send(r);
            wake.notify.notify_one();
        });
        Self { handle, result }
    }

    /// The result once there; `Err(Gone)` if the task ended without one;
    /// `None` while it runs.
    pub(crate) fn try_take(&mut self) -> Option<Result<T, Gone>> {
        match self.result.try_recv() {
            Ok(r) => Some(Ok(r)),
            Err(oneshot::error::TryRecvError::Empty) => None,
            Err(oneshot::error::TryRecvError::Closed) => Some(Err(Gone)),
        }
    }

    /// Stops the task (its result, if any, is never taken).
    pub(crate) fn abort(&self) {
        self.handle.abort();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_wake_up_always_finds_the_result() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let shared = Arc::new(GroupShared::default());
            for i in 0..2000u32 {
                let notified = shared.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let mut bg = Background::spawn(async move { i }, shared.clone());
                notified.await;
                assert_eq!(bg.try_take(), Some(Ok(i)), "round {i}");
            }
            let mut gone = Background::spawn(std::future::pending::<u8>(), shared.clone());
            assert_eq!(gone.try_take(), None);
            gone.abort();
            tokio::task::yield_now().await;
            while gone.try_take().is_none() {
                tokio::task::yield_now().await;
            }
            assert_eq!(gone.try_take(), Some(Err(Gone)));
        });
    }
}
