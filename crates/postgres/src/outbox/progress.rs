//! The relay's position and the compacted Kafka topic that keeps it.
//!
//! Record format (key = the relay's id, UTF-8): the value is
//! `v1 <txid> <id>` in ASCII decimal. Reading it back is strict: anything
//! else is a typed error, never a guess (a wrong position republishes or
//! skips rows).

use std::time::Duration;

use exactly_consumer::{Consumer, Polled, TopicPartition};
use exactly_net::admin::NewTopic;
use tokio::time::Instant;

use super::relay::OutboxError;

/// How far the relay has published: every row whose `(txid, id)` is at or
/// below this was published, none above it. Ordered as the relay reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OutboxPosition {
    /// The inserting transaction's id (`xid8`) of the last row published.
    pub txid: u64,
    /// The last row's id.
    pub id: i64,
}

impl OutboxPosition {
    /// The progress record's value.
    pub fn encode(&self) -> String {
        format!("v1 {} {}", self.txid, self.id)
    }

    /// Reads a progress record's value.
    pub fn decode(value: &[u8]) -> Option<Self> {
        let s = std::str::from_utf8(value).ok()?;
        let mut parts = s.split(' ');
        if parts.next()? != "v1" {
            return None;
        }
        let txid = parts.next()?.parse().ok()?;
        let id = parts.next()?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(Self { txid, id })
    }
}

/// The progress topic's partition (always 0: one partition, so one place to
/// read back).
pub(crate) fn progress_partition(topic: &str) -> TopicPartition {
    TopicPartition::new(topic, 0)
}

/// Creates the progress topic (1 partition, compacted) unless it exists.
pub(crate) async fn ensure_topic(
    consumer: &Consumer,
    topic: &str,
    timeout: Duration,
) -> Result<(), OutboxError> {
    let t = NewTopic::new(topic, 1, -1).with_config("cleanup.policy", "compact");
    consumer
        .client()
        .ensure_topics(&[t], timeout)
        .await
        .map_err(|e| OutboxError::Kafka(e.to_string()))
}

/// Reads the progress partition `read_committed` from its start to its last
/// stable offset and returns the last position stored under `relay_id`.
/// Call it after `init_transactions`, so no transaction of an older
/// instance is still open.
pub(crate) async fn restore(
    consumer: &mut Consumer,
    topic: &str,
    relay_id: &str,
    timeout: Duration,
) -> Result<OutboxPosition, OutboxError> {
    let tp = progress_partition(topic);
    consumer.assign(std::slice::from_ref(&tp))?;
    let end = consumer
        .end_offsets(std::slice::from_ref(&tp))
        .await?
        .get(&tp)
        .copied()
        .unwrap_or(0);
    let mut last = OutboxPosition::default();
    if end <= 0 {
        return Ok(last);
    }
    consumer.seek_to_beginning(std::slice::from_ref(&tp))?;
    let deadline = Instant::now() + timeout;
    while consumer.position(&tp).is_none_or(|p| p < end) {
        if Instant::now() >= deadline {
            return Err(OutboxError::Progress(format!(
                "could not read {tp} up to its end {end} within {timeout:?}"
            )));
        }
        let Polled::Records(records) = consumer.poll(Duration::from_millis(200)).await? else {
            continue;
        };
        for r in records.iter() {
            if r.key().map(|k| &k[..]) != Some(relay_id.as_bytes()) {
                continue;
            }
            let Some(value) = r.value() else {
                // A tombstone: the relay's position was deleted on purpose.
                last = OutboxPosition::default();
                continue;
            };
            last = OutboxPosition::decode(value).ok_or_else(|| {
                OutboxError::Progress(format!(
                    "unreadable progress record at {tp}@{}: {:?}",
                    r.offset(),
                    String::from_utf8_lossy(value)
                ))
            })?;
        }
    }
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::OutboxPosition;

    #[test]
    fn positions_round_trip_and_garbage_is_refused() {
        let p = OutboxPosition {
            txid: 18_446_744_073_709_551_615,
            id: 9_223_372_036_854_775_807,
        };
        assert_eq!(OutboxPosition::decode(p.encode().as_bytes()), Some(p));
        for bad in [
            &b""[..],
            b"v1",
            b"v1 1",
            b"v2 1 2",
            b"v1 1 2 3",
            b"v1 -1 2",
            b"v1 1 x",
            b"\xff\xfe",
            b"v1  1 2",
        ] {
            assert_eq!(OutboxPosition::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn positions_order_by_transaction_then_row() {
        let a = OutboxPosition { txid: 7, id: 90 };
        let b = OutboxPosition { txid: 8, id: 3 };
        let c = OutboxPosition { txid: 8, id: 4 };
        assert!(a < b && b < c);
    }
}
