//! The driver's requests in flight, polled in the order they were created.
//!
//! Order matters: a request reaches its connection's queue on its first
//! poll, so two Produce requests for one partition must be first polled in
//! the order the core emitted them (their sequences). `tokio::spawn` gives
//! no such order (the newest task may run first), so the driver keeps its
//! request futures here and polls them itself, oldest first, all on its own
//! task.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Futures polled oldest first; completed ones are handed out together.
pub(crate) struct InFlight<T> {
    futures: Vec<BoxFuture<T>>,
}

impl<T> Default for InFlight<T> {
    fn default() -> Self {
        Self {
            futures: Vec::new(),
        }
    }
}

impl<T> std::fmt::Debug for InFlight<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlight")
            .field("len", &self.futures.len())
            .finish()
    }
}

impl<T> InFlight<T> {
    /// Adds a future; it is first polled after every older one.
    pub(crate) fn push(&mut self, f: impl Future<Output = T> + Send + 'static) {
        self.futures.push(Box::pin(f));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.futures.len()
    }

    /// Polls every future, oldest first; ready when at least one completed
    /// (all completed ones are returned, in order). Pending when empty.
    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Vec<T>> {
        let mut done = Vec::new();
        let mut i = 0;
        while i < self.futures.len() {
            match self.futures[i].as_mut().poll(cx) {
                Poll::Ready(v) => {
                    done.push(v);
                    // Keep the order of the others.
                    drop(self.futures.remove(i));
                }
                Poll::Pending => i += 1,
            }
        }
        if done.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(done)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn first_polls_follow_creation_order() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let log = Arc::new(Mutex::new(Vec::new()));
            let mut set = InFlight::default();
            for i in 0..5u32 {
                let log = log.clone();
                set.push(async move {
                    log.lock().unwrap().push(i);
                    tokio::time::sleep(std::time::Duration::from_millis(u64::from(5 - i))).await;
                    i
                });
            }
            let mut got = Vec::new();
            while set.len() > 0 {
                got.extend(std::future::poll_fn(|cx| set.poll_ready(cx)).await);
            }
            assert_eq!(*log.lock().unwrap(), vec![0, 1, 2, 3, 4]);
            got.sort_unstable();
            assert_eq!(got, vec![0, 1, 2, 3, 4]);
        });
    }
}
