//! The per-call work of the core stays linear in the partitions (KIP-98
//! producer, many partitions): one turn of `poll_request` calls (until
//! `None`) must not walk every partition's ledger once per request. Counts
//! ledger visits, not time, so it fails deterministically.

use super::ProducerCore;
use crate::config::{BrokerInfo, Config};
use crate::io::{Outcome, Request, Response};
use crate::types::{Millis, ProducerIdentity, RequestId, TopicPartition};

const PARTITIONS: i32 = 2_000;

fn idempotent_ready() -> ProducerCore {
    let mut core = ProducerCore::new(Config::default(), BrokerInfo::v2());
    core.init(Millis(0)).expect("init");
    let (rid, _, r) = core.poll_request(Millis(0)).expect("InitProducerId");
    assert!(matches!(r, Request::InitProducerId { .. }), "{r:?}");
    core.handle_outcome(
        Millis(0),
        rid,
        Outcome::Received {
            version: 5,
            response: Response::InitProducerId {
                error: None,
                identity: ProducerIdentity::new(42, 0),
            },
        },
    );
    assert!(core.poll_request(Millis(0)).is_none());
    core
}

/// Polls until `None`: the Produce requests' ids and partitions, in order.
fn drain(core: &mut ProducerCore, now: Millis) -> Vec<(RequestId, TopicPartition)> {
    let mut out = Vec::new();
    while let Some((id, _, r)) = core.poll_request(now) {
        match r {
            Request::Produce { partition, .. } => out.push((id, partition)),
            other => panic!("unexpected {other:?}"),
        }
    }
    out
}

fn produce_ok(core: &mut ProducerCore, now: Millis, id: RequestId) {
    core.handle_outcome(
        now,
        id,
        Outcome::Received {
            version: 12,
            response: Response::Produce {
                error: None,
                base_offset: 0,
                log_start_offset: 0,
            },
        },
    );
}

#[test]
fn a_turn_of_polls_visits_each_ledger_a_bounded_number_of_times() {
    let mut core = idempotent_ready();
    let p = PARTITIONS as u64;
    for i in 0..PARTITIONS {
        for _ in 0..3 {
            core.enqueue(Millis(1), TopicPartition::new("t", i), 1)
                .expect("enqueue");
        }
    }
    // Before the first acknowledgement one batch per partition goes.
    core.ledger_visits = 0;
    let first = drain(&mut core, Millis(1));
    assert_eq!(first.len(), PARTITIONS as usize);
    let visits = core.ledger_visits;
    assert!(
        visits <= 4 * p,
        "{visits} ledger visits for {p} partitions in one turn (quadratic)"
    );
    // Acknowledged one by one, each followed by a turn (as the driver
    // does per response): the others' work must not be redone per turn
    // beyond one pass.
    core.ledger_visits = 0;
    let mut second = Vec::new();
    for (id, _) in &first {
        produce_ok(&mut core, Millis(2), *id);
        second.extend(drain(&mut core, Millis(2)));
    }
    assert_eq!(second.len(), 2 * PARTITIONS as usize, "two batches each");
    let visits = core.ledger_visits;
    assert!(
        visits <= 10 * p,
        "{visits} ledger visits for {p} acknowledgements, a turn each"
    );
}

#[test]
fn requests_go_round_robin_across_partitions() {
    let mut core = idempotent_ready();
    for i in 0..4 {
        core.enqueue(Millis(1), TopicPartition::new("t", i), 1)
            .expect("enqueue");
    }
    let order: Vec<i32> = drain(&mut core, Millis(1))
        .into_iter()
        .map(|(_, tp)| tp.partition)
        .collect();
    assert_eq!(order, vec![0, 1, 2, 3]);
    // Partition 3 sent last: a new batch on 0 and on 3 go 0 first.
    core.enqueue(Millis(1), TopicPartition::new("t", 3), 1)
        .expect("enqueue");
    core.enqueue(Millis(1), TopicPartition::new("t", 0), 1)
        .expect("enqueue");
    // Nothing more before the first acknowledgements.
    assert!(drain(&mut core, Millis(1)).is_empty());
}
