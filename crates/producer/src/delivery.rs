//! Delivery futures, and delivery callbacks.
//!
//! Bookkeeping is per batch, not per record: every record of a batch shares
//! one [`BatchSlot`] (allocated when the batch opens), and a record's
//! [`DeliveryFuture`] holds that slot and the record's index in the batch.
//! The producer keeps nothing per buffered record beyond its encoded bytes;
//! a record's offset is the batch's base offset plus its index.
//!
//! What awaiting costs (issue 15; `benches/examples/producer_cpu.rs`, see
//! BENCHMARKS.md): a future polled after its batch completed reads the
//! outcome with one atomic load, no lock, no waker; a future polled before
//! registers its task's waker in the slot (one per task: an executor that
//! polls many futures from one task, as awaiting in order does, registers
//! once per batch; one that gives each future a waker of its own, as
//! `FuturesUnordered` and `join_all` do, once per record, then wakes and
//! polls each again). A callback ([`DeliveryFuture::on_delivery`]) is kept
//! in a `Vec` per batch and closure type: no allocation per record, no
//! waker.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
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

/// The callbacks of one closure type waiting on a batch: one `Vec` per type
/// and batch, so registering a callback allocates nothing per record (a
/// `Box` per callback made the allocator the largest cost of a send).
trait Callbacks: Send {
    fn as_any(&mut self) -> &mut dyn Any;
    /// Calls each with its record's outcome.
    fn run(self: Box<Self>, partition: i32, r: &Result<BatchAck, ProducerError>);
}

/// (record index, record timestamp, callback) of one closure type.
struct Typed<F>(Vec<(u32, i64, F)>);

impl<F> Callbacks for Typed<F>
where
    F: FnOnce(Result<RecordMetadata, ProducerError>) + Send + 'static,
{
    fn as_any(&mut self) -> &mut dyn Any {
        self
    }

    fn run(self: Box<Self>, partition: i32, r: &Result<BatchAck, ProducerError>) {
        for (index, timestamp, f) in self.0 {
            run_callback(f, metadata(partition, index, timestamp, r));
        }
    }
}

/// Who waits for a batch that is not complete yet.
#[derive(Default)]
struct Waiters {
    wakers: Vec<Waker>,
    /// One entry per closure type (usually one).
    callbacks: Vec<Box<dyn Callbacks>>,
}

impl Waiters {
    fn add_callback<F>(&mut self, index: u32, timestamp: i64, f: F)
    where
        F: FnOnce(Result<RecordMetadata, ProducerError>) + Send + 'static,
    {
        for list in &mut self.callbacks {
            if let Some(t) = list.as_any().downcast_mut::<Typed<F>>() {
                t.0.push((index, timestamp, f));
                return;
            }
        }
        self.callbacks
            .push(Box::new(Typed(vec![(index, timestamp, f)])));
    }
}

impl std::fmt::Debug for Waiters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiters")
            .field("wakers", &self.wakers.len())
            .field("callback_types", &self.callbacks.len())
            .finish()
    }
}

/// The outcome of one batch, shared by the delivery futures of its records.
///
/// Invariant: `result` is set once, before `waiters` is emptied; a waiter
/// registers only while holding the lock and after seeing `result` unset,
/// so none is left behind after `complete`.
#[derive(Debug)]
pub(crate) struct BatchSlot {
    partition: i32,
    result: OnceLock<Result<BatchAck, ProducerError>>,
    waiters: Mutex<Waiters>,
}

impl BatchSlot {
    pub(crate) fn new(partition: i32) -> Arc<Self> {
        Arc::new(Self {
            partition,
            result: OnceLock::new(),
            waiters: Mutex::new(Waiters::default()),
        })
    }

    /// Sets the outcome (the first one wins), wakes every waiting record and
    /// runs every callback (on the caller's task: the producer's driver).
    pub(crate) fn complete(&self, result: Result<BatchAck, ProducerError>) {
        if self.result.set(result).is_err() {
            return;
        }
        let waiters = match self.waiters.lock() {
            Ok(mut w) => std::mem::take(&mut *w),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        for w in waiters.wakers {
            w.wake();
        }
        if let Some(r) = self.result.get() {
            for list in waiters.callbacks {
                list.run(self.partition, r);
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn is_complete(&self) -> bool {
        self.result.get().is_some()
    }
}

impl Drop for BatchSlot {
    /// A slot dropped before it completed (only callbacks can still be
    /// waiting: a future holds the slot): the callbacks are told the
    /// producer closed, so each is called exactly once.
    fn drop(&mut self) {
        if self.result.get().is_some() {
            return;
        }
        let waiters = match self.waiters.get_mut() {
            Ok(w) => std::mem::take(w),
            Err(poisoned) => std::mem::take(poisoned.into_inner()),
        };
        let closed = Err(ProducerError::Closed);
        for list in waiters.callbacks {
            list.run(self.partition, &closed);
        }
    }
}

/// Runs a user's callback; a panic in it is logged, not propagated into the
/// producer's driver.
fn run_callback(
    f: impl FnOnce(Result<RecordMetadata, ProducerError>),
    r: Result<RecordMetadata, ProducerError>,
) {
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || f(r)));
    if ran.is_err() {
        tracing::error!("a delivery callback panicked; the producer goes on");
    }
}

fn metadata(
    partition: i32,
    index: u32,
    timestamp: i64,
    r: &Result<BatchAck, ProducerError>,
) -> Result<RecordMetadata, ProducerError> {
    match r {
        Ok(ack) => Ok(RecordMetadata {
            partition,
            offset: ack.base_offset.map(|b| b + i64::from(index)),
            timestamp: ack.log_append_time.unwrap_or(timestamp),
        }),
        Err(e) => Err(e.clone()),
    }
}

/// No waker registered yet.
const NO_WAKER: u32 = u32::MAX;

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
///
/// # Awaiting many, cheaply
///
/// From cheapest to dearest per record (client CPU against a null broker,
/// BENCHMARKS.md "Producer: awaiting deliveries"):
/// 1. drop the futures and call [`Producer::flush`](crate::Producer::flush),
///    which returns the first failure among the records sent before it; or
///    keep them, `flush`, then read each outcome with
///    [`try_result`](Self::try_result) (nothing left to wait for);
/// 2. [`on_delivery`](Self::on_delivery), a callback per record (no future
///    to keep or poll, nothing allocated per record), or keeping the futures
///    in a `Vec`/`VecDeque` and awaiting them in order: each about 10% over
///    (1);
/// 3. `FuturesUnordered` or `join_all` over many records: about 1.6x and 2x
///    (1), most of it theirs: an allocation and a waker per future, a second
///    poll of each when its batch completes, and for `join_all` an 80-byte
///    output per record. Bound how many are pending, or use (1) or (2).
#[derive(Debug)]
pub struct DeliveryFuture {
    slot: Arc<BatchSlot>,
    timestamp: i64,
    index: u32,
    /// Where this future's waker sits in the slot (`NO_WAKER`: not yet).
    waker_at: u32,
}

impl DeliveryFuture {
    pub(crate) fn new(slot: Arc<BatchSlot>, index: u32, timestamp: i64) -> Self {
        Self {
            slot,
            timestamp,
            index,
            waker_at: NO_WAKER,
        }
    }

    /// The record's partition (known as soon as `send` returned).
    pub fn partition(&self) -> i32 {
        self.slot.partition
    }

    /// The outcome if it is known, without waiting.
    pub fn try_result(&self) -> Option<Result<RecordMetadata, ProducerError>> {
        self.slot.result.get().map(|r| self.metadata(r))
    }

    /// Calls `f` with the outcome instead of being awaited: at once if it is
    /// known, else when the record's batch completes, on the producer's
    /// driver task. `f` is called exactly once (with
    /// [`ProducerError::Closed`] if the producer is dropped first); keep it
    /// short and never block in it (it holds up the producer's I/O, as a
    /// Java callback holds up its I/O thread); a panic in it is logged and
    /// goes no further.
    ///
    /// ```no_run
    /// # async fn demo(producer: exactly_producer::Producer) -> Result<(), exactly_producer::ProducerError> {
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// use exactly_producer::ProducerRecord;
    ///
    /// let failed = Arc::new(AtomicU64::new(0));
    /// for i in 0..1000u32 {
    ///     let failed = failed.clone();
    ///     producer
    ///         .send(ProducerRecord::new("t").with_value(&i.to_be_bytes()))
    ///         .await?
    ///         .on_delivery(move |r| {
    ///             if r.is_err() {
    ///                 failed.fetch_add(1, Ordering::Relaxed);
    ///             }
    ///         });
    /// }
    /// producer.flush().await.ok();
    /// println!("{} failed", failed.load(Ordering::Relaxed));
    /// # Ok(()) }
    /// ```
    pub fn on_delivery(
        self,
        f: impl FnOnce(Result<RecordMetadata, ProducerError>) + Send + 'static,
    ) {
        if let Some(r) = self.try_result() {
            return run_callback(f, r);
        }
        let not_registered = match self.slot.waiters.lock() {
            // Checked again under the lock: `complete` sets the result
            // before it takes the waiters.
            Ok(mut w) if self.slot.result.get().is_none() => {
                w.add_callback(self.index, self.timestamp, f);
                None
            }
            _ => Some(f),
        };
        if let Some(f) = not_registered {
            let r = self.try_result().unwrap_or(Err(ProducerError::Closed));
            run_callback(f, r);
        }
    }

    fn metadata(
        &self,
        r: &Result<BatchAck, ProducerError>,
    ) -> Result<RecordMetadata, ProducerError> {
        metadata(self.slot.partition, self.index, self.timestamp, r)
    }
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata, ProducerError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(r) = this.slot.result.get() {
            return Poll::Ready(this.metadata(r));
        }
        let Ok(mut w) = this.slot.waiters.lock() else {
            return Poll::Ready(Err(ProducerError::Closed));
        };
        // Checked again under the lock: `complete` sets the result before
        // it takes the wakers.
        if let Some(r) = this.slot.result.get() {
            drop(w);
            return Poll::Ready(this.metadata(r));
        }
        let at = this.waker_at as usize;
        match w.wakers.get_mut(at) {
            Some(old) if this.waker_at != NO_WAKER => {
                if !old.will_wake(cx.waker()) {
                    old.clone_from(cx.waker());
                }
            }
            _ => {
                // The slot holds at most one waker per record of the batch
                // (u32 indices), so the position fits.
                this.waker_at = u32::try_from(w.wakers.len()).unwrap_or(NO_WAKER);
                w.wakers.push(cx.waker().clone());
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

    fn ack(base: i64) -> Result<BatchAck, ProducerError> {
        Ok(BatchAck {
            base_offset: Some(base),
            log_append_time: None,
        })
    }

    #[test]
    fn callbacks_run_once_before_or_after_completion_and_on_drop() {
        use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
        let seen = Arc::new(AtomicI64::new(0));
        let calls = Arc::new(AtomicUsize::new(0));
        let cb = |seen: &Arc<AtomicI64>, calls: &Arc<AtomicUsize>| {
            let (seen, calls) = (seen.clone(), calls.clone());
            move |r: Result<RecordMetadata, ProducerError>| {
                calls.fetch_add(1, Ordering::SeqCst);
                if let Ok(m) = r {
                    seen.fetch_add(m.offset.unwrap_or(-1000), Ordering::SeqCst);
                }
            }
        };
        let slot = BatchSlot::new(0);
        // Registered before completion: run by complete.
        DeliveryFuture::new(slot.clone(), 1, 0).on_delivery(cb(&seen, &calls));
        DeliveryFuture::new(slot.clone(), 2, 0).on_delivery(cb(&seen, &calls));
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        slot.complete(ack(10));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(seen.load(Ordering::SeqCst), 11 + 12);
        // Registered after: run at once.
        DeliveryFuture::new(slot.clone(), 3, 0).on_delivery(cb(&seen, &calls));
        assert_eq!(seen.load(Ordering::SeqCst), 11 + 12 + 13);
        // A second completion runs nothing again.
        slot.complete(ack(99));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // A slot dropped unfinished: Closed, once.
        let slot = BatchSlot::new(0);
        let closed = Arc::new(AtomicUsize::new(0));
        let c2 = closed.clone();
        DeliveryFuture::new(slot.clone(), 0, 0).on_delivery(move |r| {
            assert!(matches!(r, Err(ProducerError::Closed)));
            c2.fetch_add(1, Ordering::SeqCst);
        });
        drop(slot);
        assert_eq!(closed.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_panicking_callback_does_not_stop_the_others() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let slot = BatchSlot::new(0);
        let calls = Arc::new(AtomicUsize::new(0));
        DeliveryFuture::new(slot.clone(), 0, 0).on_delivery(|_| panic!("user bug"));
        let c = calls.clone();
        DeliveryFuture::new(slot.clone(), 1, 0).on_delivery(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
        });
        slot.complete(ack(0));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn every_record_of_a_batch_polled_by_its_own_task_is_woken() {
        // As FuturesUnordered does: one waker per future.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        rt.block_on(async {
            for round in 0..200 {
                let slot = BatchSlot::new(1);
                let tasks: Vec<_> = (0..8)
                    .map(|i| tokio::spawn(DeliveryFuture::new(slot.clone(), i, 0)))
                    .collect();
                if round % 2 == 0 {
                    tokio::task::yield_now().await;
                }
                slot.complete(ack(100));
                for (i, t) in tasks.into_iter().enumerate() {
                    assert_eq!(t.await.unwrap().unwrap().offset, Some(100 + i as i64));
                }
            }
        });
    }

    #[test]
    fn a_future_is_small() {
        // It sits inline in whatever holds many of them (a Vec, a
        // FuturesUnordered node).
        assert!(std::mem::size_of::<DeliveryFuture>() <= 24);
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
