//! Queueing and dispatch of Produce batches, pure (no runtime): the core's
//! Produce requests wait per partition leader and go out merged, at most one
//! batch per partition and `max.request.size` per wire request, at most
//! `max.in.flight.requests.per.connection` wire requests per broker.

use std::collections::{HashMap, VecDeque};

use exactly_txn::TopicPartition;

use super::wire::ProduceItem;

#[derive(Debug, Default)]
struct BrokerQueue {
    pending: VecDeque<ProduceItem>,
    in_flight: usize,
}

/// Produce batches waiting for a request slot, per broker.
#[derive(Debug, Default)]
pub(crate) struct Dispatch {
    brokers: HashMap<i32, BrokerQueue>,
}

impl Dispatch {
    /// Queues a batch for `broker` (its partition's leader), behind the
    /// batches already queued there.
    pub(crate) fn queue(&mut self, broker: i32, item: ProduceItem) {
        self.brokers
            .entry(broker)
            .or_default()
            .pending
            .push_back(item);
    }

    /// The wire requests that may go now: per broker, while it has fewer
    /// than `max_in_flight` requests out, the next request's batches (see
    /// `take_request`). Each counts as in flight until
    /// [`Dispatch::completed`].
    pub(crate) fn ready(
        &mut self,
        max_in_flight: usize,
        max_bytes: usize,
    ) -> Vec<(i32, Vec<ProduceItem>)> {
        let max = max_in_flight.max(1);
        let mut out = Vec::new();
        for (&broker, q) in self.brokers.iter_mut() {
            while q.in_flight < max && !q.pending.is_empty() {
                out.push((broker, take_request(&mut q.pending, max_bytes)));
                q.in_flight += 1;
            }
        }
        out
    }

    /// A wire request to `broker` completed (whatever its outcome).
    pub(crate) fn completed(&mut self, broker: i32) {
        if let Some(q) = self.brokers.get_mut(&broker) {
            q.in_flight = q.in_flight.saturating_sub(1);
        }
    }
}

/// Takes the next wire request's batches from a broker's queue: distinct
/// partitions (the broker takes one batch per partition per request), one
/// flow, at most `max_bytes` (but at least one batch). A partition whose
/// batch stays behind blocks its later batches, keeping sequence order.
fn take_request(pending: &mut VecDeque<ProduceItem>, max_bytes: usize) -> Vec<ProduceItem> {
    let mut out: Vec<ProduceItem> = Vec::new();
    let mut blocked: Vec<TopicPartition> = Vec::new();
    let mut size = 0usize;
    let mut i = 0;
    while i < pending.len() {
        let it = &pending[i];
        let same_kind = out
            .first()
            .is_none_or(|f| f.flow == it.flow && f.transactional_id == it.transactional_id);
        let fits = out.is_empty() || size + it.bytes.len() <= max_bytes;
        let free = !out.iter().any(|o| o.tp == it.tp) && !blocked.contains(&it.tp);
        if same_kind && fits && free {
            if let Some(it) = pending.remove(i) {
                size += it.bytes.len();
                out.push(it);
            }
        } else {
            if !blocked.contains(&it.tp) {
                blocked.push(it.tp.clone());
            }
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use exactly_txn::{BatchId, RequestId};

    fn item(p: i32, seq: u64, len: usize) -> ProduceItem {
        ProduceItem {
            id: RequestId(seq),
            tp: TopicPartition::new("t", p),
            batch: BatchId(seq),
            bytes: Bytes::from(vec![0u8; len]),
            flow: None,
            transactional_id: None,
            generation: 0,
        }
    }

    fn ids(v: &[ProduceItem]) -> Vec<u64> {
        v.iter().map(|i| i.id.0).collect()
    }

    #[test]
    fn one_batch_per_partition_per_request_in_order() {
        let mut q: VecDeque<ProduceItem> = [
            item(0, 1, 10),
            item(0, 2, 10),
            item(1, 3, 10),
            item(2, 4, 10),
            item(1, 5, 10),
        ]
        .into_iter()
        .collect();
        assert_eq!(ids(&take_request(&mut q, 1000)), vec![1, 3, 4]);
        assert_eq!(ids(&take_request(&mut q, 1000)), vec![2, 5]);
        assert!(q.is_empty());
    }

    #[test]
    fn size_limit_blocks_the_partition_behind() {
        let mut q: VecDeque<ProduceItem> = [
            item(0, 1, 60),
            item(1, 2, 60),
            item(1, 3, 10),
            item(2, 4, 30),
        ]
        .into_iter()
        .collect();
        // 1 fits; 2 does not (blocks partition 1, so 3 must wait too); 4 fits.
        assert_eq!(ids(&take_request(&mut q, 100)), vec![1, 4]);
        assert_eq!(ids(&take_request(&mut q, 100)), vec![2]);
        assert_eq!(ids(&take_request(&mut q, 100)), vec![3]);
        // A batch larger than the limit still goes, alone.
        let mut q: VecDeque<ProduceItem> = [item(0, 9, 500)].into_iter().collect();
        assert_eq!(ids(&take_request(&mut q, 100)), vec![9]);
    }

    #[test]
    fn at_most_max_in_flight_requests_per_broker() {
        let mut d = Dispatch::default();
        for seq in 1..=4 {
            d.queue(1, item(0, seq, 10));
        }
        d.queue(2, item(1, 9, 10));
        let mut first = d.ready(2, 1000);
        first.sort_by_key(|(b, _)| *b);
        let shape: Vec<(i32, Vec<u64>)> = first.iter().map(|(b, v)| (*b, ids(v))).collect();
        assert_eq!(shape, vec![(1, vec![1]), (1, vec![2]), (2, vec![9])]);
        assert!(d.ready(2, 1000).is_empty(), "broker 1 has two out");
        d.completed(1);
        let next: Vec<(i32, Vec<u64>)> =
            d.ready(2, 1000).iter().map(|(b, v)| (*b, ids(v))).collect();
        assert_eq!(next, vec![(1, vec![3])]);
    }
}
