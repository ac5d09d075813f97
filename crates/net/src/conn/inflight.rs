//! The in-flight queue of one connection and its correlation ids.
//!
//! Kafka answers the requests of one connection in the order they were sent,
//! so the response at the front of the stream belongs to the request at the
//! front of this queue. Invariants kept here:
//! - entries are in write order, and each holds the correlation id written
//!   into its frame;
//! - no two entries share a correlation id (ids advance by one and wrap from
//!   `i32::MAX` to `0`; the queue is far shorter than 2^31);
//! - `end` (the byte offset at which the frame ends in the connection's output
//!   stream) grows along the queue, which tells a lost request that was wholly
//!   written ([`Delivery::MaybeDelivered`]) from one that was not.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::error::{Delivery, NetError};

/// What a caller gets back: the whole response frame (header and body) and
/// the correlation id it was sent under.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) frame: Bytes,
    pub(crate) correlation_id: i32,
}

pub(crate) type ReplyTx = oneshot::Sender<Result<Reply, NetError>>;

/// Hands out correlation ids: 0, 1, ..., `i32::MAX`, 0, ... (never negative,
/// which the Java broker reserves for its own SASL use).
#[derive(Debug, Clone)]
pub(crate) struct CorrelationIds {
    next: i32,
}

impl CorrelationIds {
    pub(crate) fn starting_at(next: i32) -> Self {
        Self { next: next.max(0) }
    }

    pub(crate) fn next_id(&mut self) -> i32 {
        let id = self.next;
        self.next = if id == i32::MAX { 0 } else { id + 1 };
        id
    }
}

/// One request on the wire, waiting for its response.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) correlation_id: i32,
    pub(crate) api_key: i16,
    pub(crate) version: i16,
    /// Offset in the output stream just past this frame.
    pub(crate) end: u64,
    pub(crate) deadline: Instant,
    pub(crate) timeout: Duration,
    pub(crate) reply: ReplyTx,
}

/// The FIFO of in-flight requests plus an index of their deadlines.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    queue: VecDeque<Entry>,
    deadlines: BTreeSet<(Instant, i32)>,
}

/// The response at the head of the stream did not match the head of the queue.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Mismatch {
    /// A response arrived with nothing in flight.
    Unexpected { got: i32 },
    /// A response for another request than the oldest one.
    Wrong { expected: i32, got: i32 },
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::Unexpected { got } => {
                write!(
                    f,
                    "response with correlation id {got} but nothing in flight"
                )
            }
            Mismatch::Wrong { expected, got } => write!(
                f,
                "response with correlation id {got} but the oldest request in flight is {expected}"
            ),
        }
    }
}

impl InFlight {
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub(crate) fn push(&mut self, e: Entry) {
        self.deadlines.insert((e.deadline, e.correlation_id));
        self.queue.push_back(e);
    }

    /// The earliest deadline of any request in flight.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|&(d, _)| d)
    }

    /// The correlation id of the in-flight request whose deadline passed
    /// first, with the request, if any deadline has passed.
    pub(crate) fn expired(&self, now: Instant) -> Option<(i32, Option<&Entry>)> {
        let &(d, id) = self.deadlines.first()?;
        if d > now {
            return None;
        }
        Some((id, self.queue.iter().find(|e| e.correlation_id == id)))
    }

    /// Takes the head if `correlation_id` is its id. On a mismatch the head is
    /// taken too (the connection is about to fail) and returned with the error.
    pub(crate) fn complete(
        &mut self,
        correlation_id: i32,
    ) -> Result<Entry, (Mismatch, Option<Entry>)> {
        let Some(head) = self.queue.pop_front() else {
            return Err((
                Mismatch::Unexpected {
                    got: correlation_id,
                },
                None,
            ));
        };
        self.deadlines.remove(&(head.deadline, head.correlation_id));
        if head.correlation_id != correlation_id {
            return Err((
                Mismatch::Wrong {
                    expected: head.correlation_id,
                    got: correlation_id,
                },
                Some(head),
            ));
        }
        Ok(head)
    }

    /// Empties the queue, pairing each entry with what it may have become:
    /// [`Delivery::MaybeDelivered`] if its whole frame was written (offset
    /// `written`), [`Delivery::NotSent`] otherwise.
    pub(crate) fn drain(&mut self, written: u64) -> impl Iterator<Item = (Entry, Delivery)> + '_ {
        self.deadlines.clear();
        self.queue.drain(..).map(move |e| {
            let d = if e.end <= written {
                Delivery::MaybeDelivered
            } else {
                Delivery::NotSent
            };
            (e, d)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        id: i32,
        end: u64,
        deadline: Instant,
    ) -> (Entry, oneshot::Receiver<Result<Reply, NetError>>) {
        let (tx, rx) = oneshot::channel();
        (
            Entry {
                correlation_id: id,
                api_key: 3,
                version: 12,
                end,
                deadline,
                timeout: Duration::from_secs(1),
                reply: tx,
            },
            rx,
        )
    }

    #[test]
    fn ids_wrap_to_zero_never_negative() {
        let mut ids = CorrelationIds::starting_at(i32::MAX - 1);
        assert_eq!(ids.next_id(), i32::MAX - 1);
        assert_eq!(ids.next_id(), i32::MAX);
        assert_eq!(ids.next_id(), 0);
        assert_eq!(ids.next_id(), 1);
        assert_eq!(CorrelationIds::starting_at(-5).next_id(), 0);
    }

    #[test]
    fn fifo_and_mismatch() {
        let now = Instant::now();
        let mut q = InFlight::default();
        let (a, _ra) = entry(7, 10, now);
        let (b, _rb) = entry(8, 20, now);
        q.push(a);
        q.push(b);
        assert_eq!(q.complete(7).unwrap().correlation_id, 7);
        let (m, head) = q.complete(9).unwrap_err();
        assert_eq!(
            m,
            Mismatch::Wrong {
                expected: 8,
                got: 9
            }
        );
        assert_eq!(head.unwrap().correlation_id, 8);
        assert!(q.is_empty());
        assert_eq!(q.next_deadline(), None);
        assert!(matches!(
            q.complete(1),
            Err((Mismatch::Unexpected { got: 1 }, None))
        ));
    }

    #[test]
    fn deadlines_and_delivery() {
        let now = Instant::now();
        let mut q = InFlight::default();
        let (a, _ra) = entry(1, 10, now + Duration::from_secs(5));
        let (b, _rb) = entry(2, 20, now + Duration::from_secs(1));
        q.push(a);
        q.push(b);
        assert_eq!(q.next_deadline(), Some(now + Duration::from_secs(1)));
        assert!(q.expired(now).is_none());
        let (id, entry) = q.expired(now + Duration::from_secs(2)).unwrap();
        assert_eq!((id, entry.unwrap().correlation_id), (2, 2));
        let got: Vec<_> = q.drain(15).map(|(e, d)| (e.correlation_id, d)).collect();
        assert_eq!(
            got,
            vec![(1, Delivery::MaybeDelivered), (2, Delivery::NotSent)]
        );
        assert_eq!(q.next_deadline(), None);
    }
}
