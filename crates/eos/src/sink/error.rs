//! Why a [`super::SinkRunner`] stopped.

use exactly_consumer::ConsumerError;

/// Why a sink runner stopped before it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum SinkRunError<E: std::error::Error + 'static> {
    /// The consumer failed in a way polling again cannot fix (a corrupt
    /// batch, authorization, a fatal group error).
    #[error("consumer: {0}")]
    Consumer(#[from] ConsumerError),
    /// The sink failed with an error that is not retriable, or with
    /// retriable errors for longer than [`super::SinkOptions::give_up_after`].
    #[error("sink: {0}")]
    Sink(#[source] E),
    /// The consumer is not set up for a sink: it needs `group.id`,
    /// `isolation.level=read_committed` and `enable.auto.commit=false`.
    #[error("the sink's consumer is misconfigured: {0}")]
    Config(String),
    /// The sink broke its contract (e.g. `stored_offsets` left out a
    /// partition it was asked for).
    #[error("the sink broke its contract: {0}")]
    Contract(String),
}
