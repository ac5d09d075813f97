//! Turning one partition of a Fetch response into records for the user:
//! decode the batches zero-copy (CRC checked, decompression capped), apply
//! the isolation level, and say where the next fetch starts.
//!
//! Rules (KIP-98 for transactions, KIP-74 for partial batches):
//! - under `read_committed`, nothing at or past the last stable offset is
//!   returned, even if a broker sent it, and aborted batches are skipped
//!   ([`super::read_committed`]);
//! - control batches are never returned, under either isolation level;
//! - records before the fetch offset (the front of a batch the broker sent
//!   whole) are dropped;
//! - a partial batch at the end (the broker cuts at the size limit) ends the
//!   data quietly; the next fetch starts at its base offset;
//! - a non-empty records section holding no complete batch at all is a
//!   fault ([`RecordError::NoCompleteBatch`]), as in the Java client: since
//!   KIP-74 a broker answers an incomplete first batch with no records, so
//!   this is a batch length that lies, and fetching again would loop forever;
//! - a batch is all or nothing: if any of its records (or its control record)
//!   is malformed, none of it is returned and the error is reported at the
//!   offset where that batch would have started being read.
//!
//! Nothing here allocates per record: keys, values and header parts are
//! `Bytes` slices of the response (or of the batch's decompressed section).

use std::sync::Arc;

use bytes::Bytes;
use exactly_codec::record::{Batches, DecodeOptions, RecordBatch, RecordError};

use super::read_committed::{AbortedTxn, ReadCommitted, Verdict};
use crate::record::{ConsumerRecord, RecordHeader};

/// One partition's data from a Fetch response.
#[derive(Debug, Clone)]
pub struct PartitionData {
    /// The offset the fetch asked for (the consumer's position).
    pub fetch_offset: i64,
    /// The partition's records section.
    pub records: Bytes,
    /// `Some` under `read_committed`: the aborted transactions the broker
    /// listed (in any order; `None` from the broker is an empty list).
    pub aborted: Option<Vec<AbortedTxn>>,
    /// The last stable offset the broker reported (-1 when unknown).
    pub last_stable_offset: i64,
}

/// Counters of one parse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseStats {
    /// Whole batches decoded.
    pub batches: u64,
    /// Batches skipped as part of an aborted transaction.
    pub aborted_batches: u64,
    /// Control batches skipped.
    pub control_batches: u64,
    /// Records skipped because they lay before the fetch offset.
    pub records_before_position: u64,
    /// Whether data at or past the last stable offset was cut off.
    pub cut_at_lso: bool,
    /// Bytes of a trailing partial batch.
    pub partial_tail_bytes: usize,
    /// Bytes the compressed batches decompressed to (counted against
    /// `fetch.max.uncompressed.bytes` of the whole response).
    pub decompressed_bytes: usize,
    /// Broker answers contradicting themselves under `read_committed`:
    /// markers contradicting the aborted list
    /// ([`super::read_committed`]), or no last stable offset (-1), which
    /// delivers nothing.
    pub read_committed_anomalies: u64,
}

/// A malformed batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFault {
    /// Where reading stopped (the position stays here).
    pub offset: i64,
    /// What was wrong.
    pub error: RecordError,
}

/// The outcome of parsing one partition.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// Records to show, in offset order.
    pub records: Vec<ConsumerRecord>,
    /// Where the next fetch starts once every record here is consumed.
    pub next_offset: i64,
    /// A malformed batch met after `records`.
    pub fault: Option<BatchFault>,
    /// Counters.
    pub stats: ParseStats,
}

/// Parses one partition's data. See the module docs for the rules.
pub fn parse_partition(
    topic: &Arc<str>,
    partition: i32,
    data: PartitionData,
    opts: DecodeOptions,
) -> Parsed {
    let mut out = Parsed {
        next_offset: data.fetch_offset,
        ..Parsed::default()
    };
    let read_committed = data.aborted.is_some();
    // Under read_committed an unknown LSO (-1; brokers always send one from
    // Fetch v4 on) makes nothing stable: nothing is delivered.
    let lso = match (read_committed, data.last_stable_offset) {
        (false, _) => None,
        (true, lso) if lso >= 0 => Some(lso),
        (true, _) => {
            out.stats.read_committed_anomalies += 1;
            Some(data.fetch_offset)
        }
    };
    let mut filter = ReadCommitted::new(data.aborted.unwrap_or_default());
    let mut batches = Batches::with_options(data.records, opts);
    let mut whole = 0u64;
    for item in batches.by_ref() {
        let batch = match item {
            Ok(b) => {
                whole += 1;
                if b.header().attributes.compression != exactly_codec::Compression::None {
                    out.stats.decompressed_bytes += b.records_section().len();
                }
                b
            }
            Err(error) => {
                out.fault = Some(BatchFault {
                    offset: out.next_offset,
                    error,
                });
                return done(out, &filter);
            }
        };
        let h = *batch.header();
        if lso.is_some_and(|lso| h.base_offset >= lso) {
            out.stats.cut_at_lso = true;
            return done(out, &filter);
        }
        out.stats.batches += 1;
        let control = if h.attributes.control {
            match batch.control_record() {
                Ok(c) => c.map(|c| c.kind),
                Err(error) => {
                    out.fault = Some(BatchFault {
                        offset: out.next_offset,
                        error,
                    });
                    return done(out, &filter);
                }
            }
        } else {
            None
        };
        let verdict = if read_committed {
            filter.verdict(&h, control)
        } else if h.attributes.control {
            Verdict::Control
        } else {
            Verdict::Deliver
        };
        match verdict {
            Verdict::Aborted => out.stats.aborted_batches += 1,
            Verdict::Control => out.stats.control_batches += 1,
            Verdict::Deliver => {
                let before = out.records.len();
                match push_records(topic, partition, &batch, lso, &mut out) {
                    Ok(true) => {}
                    Ok(false) => {
                        // Cut at the LSO inside this batch.
                        out.stats.cut_at_lso = true;
                        if let Some(lso) = lso {
                            out.next_offset = out.next_offset.max(lso.min(h.next_offset()));
                        }
                        return done(out, &filter);
                    }
                    Err(error) => {
                        out.records.truncate(before);
                        out.fault = Some(BatchFault {
                            offset: out.next_offset,
                            error,
                        });
                        return done(out, &filter);
                    }
                }
            }
        }
        out.next_offset = out.next_offset.max(h.next_offset());
    }
    out.stats.partial_tail_bytes = batches.remaining();
    if whole == 0 && out.stats.partial_tail_bytes > 0 {
        out.fault = Some(BatchFault {
            offset: out.next_offset,
            error: RecordError::NoCompleteBatch(out.stats.partial_tail_bytes),
        });
    }
    done(out, &filter)
}

/// Adds the filter's anomalies to the counters.
fn done(mut out: Parsed, filter: &ReadCommitted) -> Parsed {
    out.stats.read_committed_anomalies += filter.anomalies();
    out
}

/// Appends the batch's records at or after the position; `Ok(false)` when a
/// record at or past the LSO stopped it.
fn push_records(
    topic: &Arc<str>,
    partition: i32,
    batch: &RecordBatch,
    lso: Option<i64>,
    out: &mut Parsed,
) -> Result<bool, RecordError> {
    let h = batch.header();
    let leader_epoch = (h.partition_leader_epoch >= 0).then_some(h.partition_leader_epoch);
    let timestamp_type = h.attributes.timestamp_type;
    let section = batch.records_section();
    let from = out.next_offset;
    if out.records.capacity() == 0 {
        out.records
            .reserve(usize::try_from(h.record_count).unwrap_or(0).min(4096));
    }
    for r in batch.records() {
        let r = r?;
        if r.offset() < from {
            out.stats.records_before_position += 1;
            continue;
        }
        if lso.is_some_and(|lso| r.offset() >= lso) {
            return Ok(false);
        }
        let headers = if r.header_count() == 0 {
            Vec::new()
        } else {
            let mut hs = Vec::with_capacity(usize::try_from(r.header_count()).unwrap_or(0));
            for hd in r.headers() {
                let hd = hd?;
                hs.push(RecordHeader::new(
                    section.slice_ref(hd.key()),
                    hd.value_bytes(),
                ));
            }
            hs
        };
        out.records.push(ConsumerRecord {
            topic: topic.clone(),
            partition,
            offset: r.offset(),
            timestamp: r.timestamp(),
            timestamp_type,
            leader_epoch,
            key: r.key_bytes(),
            value: r.value_bytes(),
            headers,
        });
    }
    Ok(true)
}

#[cfg(test)]
#[path = "parse_tests.rs"]
pub(crate) mod tests;
