//! Which partitions each fetch names, and from where (issue 15).
//!
//! A partition is fetched when it has a position, is not paused, backing
//! off or holding an error, has no fetch in flight, and has room for
//! another response: it is fetched from the end of what is buffered for it,
//! so its next response is on its way while the application drains the last
//! one (the read-ahead limits are in `crate::state`). One fetch goes to each
//! broker that leads such a partition and has none in flight (as the Java
//! client does). What the request then names of them is up to the broker's
//! KIP-227 fetch session (`super::session`): after the first, only what
//! changed, and the partitions not planned now are forgotten by it.
//!
//! A broker's fetch is held back, not sent, when every partition it would
//! name is at its end (the last response put its offset at the high
//! watermark, or at the last stable offset under `read_committed`) while
//! the application still has records buffered from a partition that broker
//! leads. Sent, that fetch could only wait out `fetch.max.wait.ms` (with
//! `fetch.min.bytes` 1, a broker answers at once when any partition named
//! has a record), and, one fetch per broker, it would keep the buffered
//! partitions from being fetched again until it came back: the application
//! drains them in milliseconds, then idles for the rest of the wait, and a
//! seek (the rewind after an aborted transaction) waits for it too. Held,
//! it goes out together with them once the application makes room; a
//! broker whose partitions have nothing buffered long-polls as usual. This
//! was the consumer's idle time with default settings in issue 15: one
//! partition read to its end, the others still behind, and every other
//! fetch a 500 ms wait.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use exactly_net::metadata::Route;
use tokio::time::Instant;

use crate::state::{Assignment, Fetchable};
use crate::TopicPartition;

/// What one partition of a fetch was asked under.
#[derive(Debug, Clone)]
pub(crate) struct Asked {
    pub(crate) tp: TopicPartition,
    pub(crate) topic: Arc<str>,
    pub(crate) fetch_offset: i64,
    pub(crate) version: u64,
    pub(crate) route: Route,
}

/// The fetches to send now.
#[derive(Debug, Default)]
pub(crate) struct Planned {
    /// Per broker, the partitions to name, in assignment order.
    pub(crate) fetches: BTreeMap<i32, Vec<Asked>>,
    /// Fetches held back (see the module docs).
    pub(crate) held: usize,
    /// Some fetchable partition had no route.
    pub(crate) missing_route: bool,
}

/// The fetch being put together for one broker.
#[derive(Debug, Default)]
struct ForBroker {
    asked: Vec<Asked>,
    /// Some partition asked for is not known to be at its end.
    with_data: bool,
    /// The application has records buffered from a partition this broker
    /// leads (one it will fetch again once they are drained).
    holds_records: bool,
}

/// Decides the fetches to send now (no I/O): `route` finds a partition's
/// leader, `busy` lists the brokers with a fetch in flight, `max_buffered`
/// is `fetch.max.bytes` (no partition that already buffers records gets
/// more once all of them buffer that much).
pub(crate) fn plan(
    asg: &Assignment,
    route: impl Fn(&TopicPartition) -> Option<Route>,
    busy: &HashSet<i32>,
    now: Instant,
    max_buffered: usize,
    read_committed: bool,
) -> Planned {
    let room = asg.buffered_bytes() < max_buffered;
    let mut out = Planned::default();
    let mut by_broker: BTreeMap<i32, ForBroker> = BTreeMap::new();
    for (tp, st) in asg.partitions.iter() {
        let (fetch_offset, at_end) = match st.fetchable(now, room, read_committed) {
            Fetchable::No => continue,
            Fetchable::Full => {
                if let Some(r) = route(tp) {
                    by_broker.entry(r.leader).or_default().holds_records = true;
                }
                continue;
            }
            Fetchable::Yes { offset, at_end } => (offset, at_end),
        };
        let Some(r) = route(tp) else {
            out.missing_route = true;
            continue;
        };
        if st.buffer.is_some() {
            by_broker.entry(r.leader).or_default().holds_records = true;
        }
        if busy.contains(&r.leader) {
            continue;
        }
        let b = by_broker.entry(r.leader).or_default();
        b.with_data |= !at_end;
        b.asked.push(Asked {
            tp: tp.clone(),
            topic: st.topic.clone(),
            fetch_offset,
            version: st.version,
            route: r,
        });
    }
    for (broker, b) in by_broker {
        if b.asked.is_empty() {
            continue;
        }
        if b.holds_records && !b.with_data {
            out.held += 1;
            continue;
        }
        out.fetches.insert(broker, b.asked);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::record::ConsumerRecord;
    use crate::state::{Buffered, Pending, Position};

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    fn rec(p: i32, offset: i64) -> ConsumerRecord {
        ConsumerRecord {
            topic: Arc::from("t"),
            partition: p,
            offset,
            timestamp: 0,
            timestamp_type: crate::record::TimestampType::CreateTime,
            leader_epoch: None,
            key: None,
            value: Some(Bytes::from_static(b"v")),
            headers: Vec::new(),
        }
    }

    /// Partitions 0..n at offset 0, every one led by broker 1 except
    /// partition 3 (broker 2).
    fn assignment(n: i32) -> Assignment {
        let mut asg = Assignment::default();
        let parts: Vec<TopicPartition> = (0..n).map(tp).collect();
        asg.set(&parts, Pending::Committed);
        for st in asg.partitions.values_mut() {
            st.position = Some(Position {
                offset: 0,
                leader_epoch: None,
            });
        }
        asg
    }

    fn route(tp: &TopicPartition) -> Option<Route> {
        Some(Route {
            leader: if tp.partition == 3 { 2 } else { 1 },
            leader_epoch: 0,
            generation: 1,
        })
    }

    /// Gives `p` a response of records `from..to` ending at `end`, the
    /// partition's high watermark and last stable offset then being `hw`.
    fn fetched(asg: &mut Assignment, p: i32, from: i64, to: i64, hw: i64) {
        let st = asg.partitions.get_mut(&tp(p)).unwrap();
        let records = (from..to).map(|o| rec(p, o)).collect();
        match &mut st.buffer {
            Some(b) => b.append(records, to, None, 1000),
            None => st.buffer = Some(Buffered::new(records, to, None, 1000)),
        }
        st.high_watermark = hw;
        st.last_stable_offset = hw;
    }

    fn asked(p: &Planned, broker: i32) -> Vec<(i32, i64)> {
        p.fetches
            .get(&broker)
            .map(|a| a.iter().map(|a| (a.tp.partition, a.fetch_offset)).collect())
            .unwrap_or_default()
    }

    fn run(asg: &Assignment) -> Planned {
        plan(asg, route, &HashSet::new(), Instant::now(), 1 << 30, true)
    }

    #[test]
    fn buffered_partitions_are_fetched_from_the_end_of_their_buffer() {
        let mut asg = assignment(3);
        fetched(&mut asg, 1, 0, 10, 100);
        // Partition 2 is at its end: nothing new at the last fetch.
        let st = asg.partitions.get_mut(&tp(2)).unwrap();
        (st.high_watermark, st.last_stable_offset) = (0, 0);
        let p = run(&asg);
        assert_eq!(asked(&p, 1), [(0, 0), (1, 10), (2, 0)]);
        assert_eq!(p.held, 0);
    }

    #[test]
    fn a_fetch_of_partitions_at_their_end_waits_for_one_that_is_draining() {
        let mut asg = assignment(3);
        // 0 at its end; 1 and 2 hold two responses each (the read-ahead
        // limit) with more on the broker.
        let st = asg.partitions.get_mut(&tp(0)).unwrap();
        (st.high_watermark, st.last_stable_offset) = (0, 0);
        for p in [1, 2] {
            fetched(&mut asg, p, 0, 10, 100);
            fetched(&mut asg, p, 10, 20, 100);
        }
        let p = run(&asg);
        assert!(p.fetches.is_empty(), "{:?}", p.fetches);
        assert_eq!(p.held, 1);

        // The application drains partition 1's first response: 1 has room,
        // and both go out together.
        let out = {
            let st = asg.partitions.get_mut(&tp(2)).unwrap();
            st.paused = true;
            let out = asg.drain(10);
            asg.partitions.get_mut(&tp(2)).unwrap().paused = false;
            out
        };
        assert_eq!(out.len(), 10);
        let p = run(&asg);
        assert_eq!(asked(&p, 1), [(0, 0), (1, 20)]);
    }

    #[test]
    fn no_read_ahead_into_a_long_poll() {
        let mut asg = assignment(2);
        // Partition 0's buffer reaches its end (100): fetching ahead would
        // only wait, and keep a seek's fetch waiting behind it.
        fetched(&mut asg, 0, 0, 100, 100);
        let st = asg.partitions.get_mut(&tp(1)).unwrap();
        (st.high_watermark, st.last_stable_offset) = (0, 0);
        let p = run(&asg);
        assert!(p.fetches.is_empty(), "{:?}", p.fetches);
        assert_eq!(p.held, 1);
        // Drained: both at their end, nothing buffered: a long poll.
        assert_eq!(asg.drain(1000).len(), 100);
        let p = run(&asg);
        assert_eq!(asked(&p, 1), [(0, 100), (1, 0)]);
    }

    #[test]
    fn nothing_holds_a_fetch_that_nothing_can_drain() {
        let mut asg = assignment(4);
        for p in [0, 1] {
            let st = asg.partitions.get_mut(&tp(p)).unwrap();
            (st.high_watermark, st.last_stable_offset) = (0, 0);
        }
        // 2 is full but paused; 3 is full on another broker.
        for p in [2, 3] {
            fetched(&mut asg, p, 0, 10, 100);
            fetched(&mut asg, p, 10, 20, 100);
        }
        asg.partitions.get_mut(&tp(2)).unwrap().paused = true;
        let p = run(&asg);
        assert_eq!(asked(&p, 1), [(0, 0), (1, 0)]);
        assert!(asked(&p, 2).is_empty());
        assert_eq!(p.held, 0);
    }

    #[test]
    fn under_read_committed_the_end_is_the_last_stable_offset() {
        let mut asg = assignment(2);
        // Partition 0: an open transaction from 5 to the high watermark 50.
        let st = asg.partitions.get_mut(&tp(0)).unwrap();
        st.position = Some(Position {
            offset: 5,
            leader_epoch: None,
        });
        (st.high_watermark, st.last_stable_offset) = (50, 5);
        fetched(&mut asg, 1, 0, 10, 100);
        fetched(&mut asg, 1, 10, 20, 100);
        let held = run(&asg);
        assert_eq!(held.held, 1, "{:?}", held.fetches);
        // read_uncommitted reads it to the high watermark.
        let p = plan(&asg, route, &HashSet::new(), Instant::now(), 1 << 30, false);
        assert_eq!(asked(&p, 1), [(0, 5)]);
    }

    #[test]
    fn read_ahead_stops_at_fetch_max_bytes_and_busy_brokers_are_skipped() {
        let mut asg = assignment(4);
        fetched(&mut asg, 0, 0, 10, 100);
        // 1000 bytes buffered: at the cap, 0 gets nothing more; partitions
        // with nothing buffered are fetched anyway.
        let p = plan(&asg, route, &HashSet::new(), Instant::now(), 1000, true);
        assert_eq!(asked(&p, 1), [(1, 0), (2, 0)]);
        assert_eq!(asked(&p, 2), [(3, 0)]);
        let busy: HashSet<i32> = [1].into();
        let p = plan(&asg, route, &busy, Instant::now(), 1 << 30, true);
        assert!(asked(&p, 1).is_empty());
        assert_eq!(asked(&p, 2), [(3, 0)]);
        // A partition backing off is not fetched.
        let later = Instant::now() + Duration::from_secs(1);
        asg.partitions.get_mut(&tp(3)).unwrap().retry_at = Some(later);
        let p = run(&asg);
        assert!(asked(&p, 2).is_empty());
    }
}
