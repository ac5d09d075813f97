//! The per-partition sequence ledger of the idempotent producer (KIP-98,
//! KIP-360).
//!
//! Invariants kept here:
//! - Batches are kept in enqueue order: first the stamped ones (those that
//!   carry a sequence) in sequence order, then the queued ones (no sequence
//!   yet). A batch leaves only when acknowledged or failed.
//! - All stamped batches share the ledger's `seq_identity`, and their
//!   sequences are contiguous from the first unacknowledged one: stamping
//!   takes `next_sequence` and advances it by the record count, wrapping at
//!   `i32::MAX`.
//! - At most `max_in_flight_per_partition` (<= 5) batches are stamped: the
//!   broker deduplicates against its last 5 batches per producer and
//!   partition, so an unresolved batch always stays inside that window.
//! - Until one batch of the current identity is acknowledged on the
//!   partition, only one is stamped: a broker without state for the producer
//!   accepts any sequence, so only after a first acknowledgement does the
//!   success of a batch prove that every earlier sequence was written.
//! - A retry resends the same stamp. Only [`Ledger::reset`] removes a stamp,
//!   and it never does so beneath a batch that may have been written: such a
//!   batch is failed with `maybe_written` instead of being re-sent under a new
//!   epoch.
//! - The ledger switches to a new identity only when nothing is stamped, and
//!   then restarts at sequence 0: idle partitions never keep an old epoch's
//!   sequence (KAFKA-12152).

use std::collections::VecDeque;

use crate::types::{advance_sequence, BatchId, Millis, ProducerIdentity, RequestId, Stamp};

/// What is known about whether a stamped batch was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Knowledge {
    /// Every send of this stamp got an answer that excludes a write.
    NotWritten,
    /// Some send of this stamp may have been applied (no answer, or an
    /// answer such as REQUEST_TIMED_OUT).
    MaybeWritten,
}

/// Where a batch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BatchState {
    /// Accepted, no sequence yet: certainly not written.
    Queued,
    /// Stamped and waiting to be (re)sent with this very stamp.
    Stamped(Stamp),
    /// Stamped and in this request.
    InFlight(Stamp, RequestId),
}

/// One closed batch.
#[derive(Debug, Clone)]
pub(crate) struct Batch {
    pub(crate) id: BatchId,
    pub(crate) record_count: u32,
    pub(crate) created: Millis,
    pub(crate) state: BatchState,
    pub(crate) knowledge: Knowledge,
    pub(crate) sends: u32,
    pub(crate) not_before: Millis,
}

impl Batch {
    pub(crate) fn new(id: BatchId, record_count: u32, created: Millis) -> Self {
        Self {
            id,
            record_count,
            created,
            state: BatchState::Queued,
            knowledge: Knowledge::NotWritten,
            sends: 0,
            not_before: created,
        }
    }

    pub(crate) fn stamp(&self) -> Option<Stamp> {
        match self.state {
            BatchState::Queued => None,
            BatchState::Stamped(s) | BatchState::InFlight(s, _) => Some(s),
        }
    }

    pub(crate) fn in_flight(&self) -> bool {
        matches!(self.state, BatchState::InFlight(..))
    }

    /// Whether the batch may have been written.
    pub(crate) fn maybe_written(&self) -> bool {
        match self.state {
            BatchState::Queued => false,
            BatchState::InFlight(..) => true,
            BatchState::Stamped(_) => self.knowledge == Knowledge::MaybeWritten,
        }
    }
}

/// One partition's batches and sequence state.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ledger {
    pub(crate) batches: VecDeque<Batch>,
    /// The identity the stamped batches (and `next_sequence`) belong to.
    pub(crate) seq_identity: Option<ProducerIdentity>,
    pub(crate) next_sequence: i32,
    /// The sequence after the last acknowledged batch.
    pub(crate) acked_through: Option<i32>,
    /// The sequence state is broken (a gap, an out-of-order answer, an
    /// expired stamped batch): send nothing until it is resolved or reset.
    pub(crate) needs_reset: bool,
}

/// What the ledger offers to send next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NextSend {
    /// Resend the stamped batch at this index.
    Resend(usize),
    /// Stamp and send the queued batch at this index.
    Stamp(usize),
}

impl Ledger {
    pub(crate) fn has_in_flight(&self) -> bool {
        self.batches.iter().any(Batch::in_flight)
    }

    /// Whether a stamped batch waits for its retry backoff to end (then
    /// `next_send` may offer it without any other change).
    pub(crate) fn waits_for_backoff(&self, now: Millis) -> bool {
        self.batches
            .iter()
            .any(|b| matches!(b.state, BatchState::Stamped(_)) && b.not_before > now)
    }

    pub(crate) fn stamped_count(&self) -> usize {
        self.batches.iter().filter(|b| b.stamp().is_some()).count()
    }

    /// The next batch to put on the wire, keeping order across retries: while
    /// any stamped batch waits for a resend, only the lowest one goes, and
    /// only when nothing of this partition is in flight.
    pub(crate) fn next_send(&self, now: Millis, limit: usize) -> Option<NextSend> {
        if self.needs_reset {
            return None;
        }
        if let Some(i) = self
            .batches
            .iter()
            .position(|b| matches!(b.state, BatchState::Stamped(_)))
        {
            if self.has_in_flight() || self.batches[i].not_before > now {
                return None;
            }
            return Some(NextSend::Resend(i));
        }
        // Until the broker has acknowledged a batch of this identity here, it
        // may hold no state for us on this partition, and then it accepts a
        // batch at *any* sequence (Kafka's relaxation for producer state lost
        // to retention; only transaction.version 2 transactions must start
        // at 0). A second batch sent while the first is unanswered could then
        // be written in front of a first one that failed, and its success
        // would wrongly vouch for the first (see `ack_through`): so one batch
        // at a time until the first acknowledgement.
        let limit = if self.acked_through.is_none() {
            1
        } else {
            limit
        };
        let stamped = self.stamped_count();
        if stamped < limit && stamped < self.batches.len() {
            return Some(NextSend::Stamp(stamped));
        }
        None
    }

    /// Whether a queued batch may be stamped under `current` now; switches
    /// an idle ledger to `current` at sequence 0.
    pub(crate) fn prepare_stamp(&mut self, current: ProducerIdentity) -> bool {
        if self.seq_identity == Some(current) {
            return true;
        }
        if self.stamped_count() > 0 {
            return false;
        }
        self.seq_identity = Some(current);
        self.next_sequence = 0;
        self.acked_through = None;
        self.needs_reset = false;
        true
    }

    /// Stamps the queued batch at `index` (which must be the first queued
    /// one) and returns its stamp.
    pub(crate) fn stamp_at(
        &mut self,
        index: usize,
        current: ProducerIdentity,
        transactional: bool,
    ) -> Option<Stamp> {
        let seq = self.next_sequence;
        let batch = self.batches.get_mut(index)?;
        if batch.state != BatchState::Queued {
            return None;
        }
        let stamp = Stamp {
            producer_id: current.producer_id,
            epoch: current.epoch,
            base_sequence: seq,
            transactional,
        };
        batch.state = BatchState::Stamped(stamp);
        batch.knowledge = Knowledge::NotWritten;
        self.next_sequence = advance_sequence(seq, batch.record_count);
        Some(stamp)
    }

    /// Removes the batches up to and including `index`: the broker accepted
    /// `index`, so every earlier sequence of the same identity was written
    /// (true because nothing is stamped behind an unacknowledged first batch:
    /// see `next_send`).
    pub(crate) fn ack_through(&mut self, index: usize) -> Vec<Batch> {
        let acked: Vec<Batch> = self.batches.drain(..=index).collect();
        if let Some(last) = acked.last() {
            if let Some(s) = last.stamp() {
                self.acked_through = Some(advance_sequence(s.base_sequence, last.record_count));
            }
        }
        acked
    }

    /// The sequence state is consistent again without a reset: nothing is
    /// stamped and every sequence handed out was acknowledged (an expired
    /// batch that had in fact landed).
    pub(crate) fn resolved(&self) -> bool {
        self.stamped_count() == 0 && self.acked_through == Some(self.next_sequence)
    }

    /// Resets the sequence state (KIP-360) once nothing is in flight: every
    /// stamped batch that may have been written is removed and returned (to be
    /// failed, never re-sent under a new identity); the others lose their
    /// stamp and will be stamped again from sequence 0 under the current
    /// identity.
    pub(crate) fn reset(&mut self) -> Vec<Batch> {
        let mut failed = Vec::new();
        let mut kept = VecDeque::with_capacity(self.batches.len());
        for mut b in self.batches.drain(..) {
            if b.maybe_written() {
                failed.push(b);
            } else {
                b.state = BatchState::Queued;
                b.knowledge = Knowledge::NotWritten;
                kept.push_back(b);
            }
        }
        self.batches = kept;
        self.seq_identity = None;
        self.next_sequence = 0;
        self.acked_through = None;
        self.needs_reset = false;
        failed
    }
}
