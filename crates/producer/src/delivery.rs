//! Delivery futures.
//!
//! Bookkeeping is per batch, not per record: every record of a batch shares
//! one [`BatchSlot`] (allocated when the batch opens), and a record's
//! [`DeliveryFuture`] holds that slot and the record's index in the batch.
//! The producer keeps nothing per buffered record beyond its encoded bytes;
//! a record's offset is the batch's base offset plus its index.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use crate::error::ProducerError;
use crate::record::RecordMetadata;

/// What the broker said about a delivered batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchAck {
    /// The batch's base offset, when known.
    pub(crate) base_offset: Option<i64>,
    /// The broker's append time, when the topic uses `LogAppendTime`.
    pub(crate) log_append_time: Option<i64>,
}

#[derive(Debug, Default)]
struct SlotState {
    result: Option<Result<BatchAck, ProducerError>>,
    wakers: Vec<Waker>,
}

/// The outcome of one batch, shared by the delivery futures of its records.
#[derive(Debug)]
pub(crate) struct BatchSlot {
    partition: i32,
    state: Mutex<SlotState>,
}

impl BatchSlot {
    pub(crate) fn new(partition: i32) -> Arc<Self> {
        Arc::new(Self {
            partition,
            state: Mutex::new(SlotState::default()),
        })
    }

    /// Sets the outcome (the first one wins) and wakes every waiting record.
    pub(crate) fn complete(&self, result: Result<BatchAck, ProducerError>) {
        let wakers = match self.state.lock() {
            Ok(mut s) if s.result.is_none() => {
                s.result = Some(result);
                std::mem::take(&mut s.wakers)
            }
            _ => return,
        };
        for w in wakers {
            w.wake();
        }
    }

    #[cfg(test)]
    pub(crate) fn is_complete(&self) -> bool {
        self.state.lock().map_or(true, |s| s.result.is_some())
    }
}

/// Resolves when the record's batch is delivered ([`RecordMetadata`]) or has
/// failed (a [`ProducerError`] whose
/// [`maybe_written`](ProducerError::maybe_written) says whether it may have
/// been written anyway).
///
/// Dropping it changes nothing: the record is still delivered.
///
/// ```no_run
/// # async fn demo(producer: exactly_producer::Producer) -> Result<(), exactly_producer::ProducerError> {
/// use exactly_producer::ProducerRecord;
///
/// let delivery = producer.send(ProducerRecord::new("t").with_value(b"v")).await?;
/// println!("going to partition {}", delivery.partition());
/// match delivery.await {
///     Ok(meta) => println!("written at offset {:?}", meta.offset),
///     Err(e) if e.maybe_written() => println!("outcome unknown: {e}"),
///     Err(e) => println!("not written: {e}"),
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct DeliveryFuture {
    slot: Arc<BatchSlot>,
    index: u32,
    timestamp: i64,
    /// Where this future's waker sits in the slot, once registered.
    waker_at: Option<usize>,
}

impl DeliveryFuture {
    pub(crate) fn new(slot: Arc<BatchSlot>, index: u32, timestamp: i64) -> Self {
        Self {
            slot,
            index,
            timestamp,
            waker_at: None,
        }
    }

    /// The record's partition (known as soon as `send` returned).
    pub fn partition(&self) -> i32 {
        self.slot.partition
    }

    /// The outcome if it is known, without waiting.
    pub fn try_result(&self) -> Option<Result<RecordMetadata, ProducerError>> {
        let s = self.slot.state.lock().ok()?;
        s.result.as_ref().map(|r| self.metadata(r))
    }

    fn metadata(
        &self,
        r: &Result<BatchAck, ProducerError>,
    ) -> Result<RecordMetadata, ProducerError> {
        match r {
            Ok(ack) => Ok(RecordMetadata {
                partition: self.slot.partition,
                offset: ack.base_offset.map(|b| b + i64::from(self.index)),
                timestamp: ack.log_append_time.unwrap_or(self.timestamp),
            }),
            Err(e) => Err(e.clone()),
        }
    }
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata, ProducerError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Ok(mut s) = this.slot.state.lock() else {
            return Poll::Ready(Err(ProducerError::Closed));
        };
        if let Some(r) = &s.result {
            let out = this.metadata(r);
            return Poll::Ready(out);
        }
        match this.waker_at {
            Some(i) if i < s.wakers.len() => {
                if !s.wakers[i].will_wake(cx.waker()) {
                    s.wakers[i] = cx.waker().clone();
                }
            }
            _ => {
                this.waker_at = Some(s.wakers.len());
                s.wakers.push(cx.waker().clone());
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use exactly_txn::{DeliveryError, DeliveryFailure, TopicPartition};

    #[test]
    fn offsets_are_base_plus_index() {
        let slot = BatchSlot::new(3);
        let a = DeliveryFuture::new(slot.clone(), 0, 10);
        let b = DeliveryFuture::new(slot.clone(), 7, 11);
        assert!(a.try_result().is_none());
        slot.complete(Ok(BatchAck {
            base_offset: Some(100),
            log_append_time: None,
        }));
        let ra = a.try_result().unwrap().unwrap();
        let rb = b.try_result().unwrap().unwrap();
        assert_eq!((ra.partition, ra.offset, ra.timestamp), (3, Some(100), 10));
        assert_eq!((rb.offset, rb.timestamp), (Some(107), 11));
        // The first outcome wins.
        slot.complete(Ok(BatchAck {
            base_offset: Some(5),
            log_append_time: Some(99),
        }));
        assert_eq!(b.try_result().unwrap().unwrap().offset, Some(107));
    }

    #[test]
    fn log_append_time_and_failures() {
        let slot = BatchSlot::new(0);
        let f = DeliveryFuture::new(slot.clone(), 1, 10);
        slot.complete(Ok(BatchAck {
            base_offset: None,
            log_append_time: Some(77),
        }));
        let m = f.try_result().unwrap().unwrap();
        assert_eq!((m.offset, m.timestamp), (None, 77));
        let slot = BatchSlot::new(0);
        let f = DeliveryFuture::new(slot.clone(), 0, 10);
        slot.complete(Err(ProducerError::Delivery {
            error: DeliveryError {
                failure: DeliveryFailure::Expired,
                partition: TopicPartition::new("t", 0),
                maybe_written: false,
            },
            transactional: false,
        }));
        assert!(slot.is_complete());
        assert!(f.try_result().unwrap().unwrap_err().is_retriable());
    }

    #[test]
    fn wakes_the_waiting_task() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let slot = BatchSlot::new(1);
            let f = DeliveryFuture::new(slot.clone(), 2, 0);
            let h = tokio::spawn(f);
            tokio::task::yield_now().await;
            slot.complete(Ok(BatchAck {
                base_offset: Some(40),
                log_append_time: None,
            }));
            assert_eq!(h.await.unwrap().unwrap().offset, Some(42));
        });
    }
}
