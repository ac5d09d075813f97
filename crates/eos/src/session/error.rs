//! Why a session ended early, and the panic guard around the handler.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::task::Poll;

use exactly_consumer::ConsumerError;
use exactly_net::ConfigError;
use exactly_producer::ProducerError;

use super::handler::HandlerError;

/// Why [`Session::run`](crate::Session::run) (or building a session)
/// failed. In every case the open transaction was aborted (or fenced) and
/// the clients closed before the error was returned: a session never leaves
/// a transaction hanging.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// Invalid or missing settings.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// The producer failed fatally: fenced by a newer instance with the
    /// same `transactional.id` (this one is a zombie and must stop),
    /// not authorized, or an unsupported broker.
    #[error("producer: {0}")]
    Producer(ProducerError),
    /// The consumer failed in a way the session cannot retry (a corrupt
    /// batch, authorization, an offset out of range with
    /// `auto.offset.reset=none`, a fatal group error).
    #[error("consumer: {0}")]
    Consumer(#[from] ConsumerError),
    /// A state's changelog topic cannot be used (its partition count
    /// differs from the input's, or it could not be created).
    #[error("changelog {topic}: {reason}")]
    Changelog {
        /// The topic.
        topic: String,
        /// What is wrong.
        reason: String,
    },
    /// The handler panicked; the transaction was aborted.
    #[error("the handler panicked: {message}")]
    HandlerPanicked {
        /// The panic's message, when it had one.
        message: String,
    },
    /// The handler failed `handler.max.retries` + 1 times in a row on the
    /// same input; the last transaction was aborted.
    #[error("the handler failed {attempts} times in a row: {source}")]
    HandlerFailed {
        /// Consecutive failed attempts.
        attempts: u32,
        /// The last failure.
        #[source]
        source: HandlerError,
    },
}

impl SessionError {
    /// Whether a newer instance with the same `transactional.id` took over
    /// (this process is a zombie; restarting it with the same id fences the
    /// other one in turn, so check the deployment).
    pub fn is_fenced(&self) -> bool {
        use exactly_codec::ErrorCode;
        let SessionError::Producer(e) = self else {
            return false;
        };
        e.txn_error().and_then(|t| t.code).is_some_and(|c| {
            matches!(
                c,
                ErrorCode::ProducerFenced | ErrorCode::InvalidProducerEpoch
            )
        })
    }
}

/// Runs `fut`, turning a panic inside it into `Err(message)`.
pub(crate) async fn catch_panic<F: Future>(fut: F) -> Result<F::Output, String> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(move |cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => Poll::Ready(Err(panic_message(panic.as_ref()))),
        }
    })
    .await
}

/// Runs `f`, turning a panic into `Err(message)`.
pub(crate) fn catch_panic_sync<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|p| panic_message(p.as_ref()))
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_across_an_await_becomes_an_error() {
        let ok = catch_panic(async { 7 }).await;
        assert_eq!(ok, Ok(7));
        let n = 3;
        let err = catch_panic(async move {
            tokio::task::yield_now().await;
            if n == 3 {
                panic!("boom {n}");
            }
            1
        })
        .await;
        assert_eq!(err, Err("boom 3".to_owned()));
        assert_eq!(
            catch_panic_sync(|| -> u8 { panic!("static") }),
            Err("static".to_owned())
        );
    }
}
