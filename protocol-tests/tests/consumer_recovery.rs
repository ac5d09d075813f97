//! (d) exactly-consumer recovers from a `kill -9` of the broker in the middle
//! of consumption without user action: a group member keeps calling `poll`
//! (which never returns an error) and `commit`, the broker is killed and
//! restarted, more records are produced after the restart, and the member
//! reads every record of before and after: none lost, none twice, offsets in
//! order per partition. Under `transaction.version` 2 and 1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use exactly_consumer::{Consumer, Polled, Rebalance};
use exactly_protocol_tests::{unique_topic, Broker, TransactionVersion};

/// The tests kill their broker: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

#[derive(Debug, Default)]
struct Log {
    seen: Vec<(i32, i64, u64)>,
    events: Vec<Rebalance>,
    commit_errors: Vec<String>,
}

fn kill9_mid_consumption_recovers(tv: TransactionVersion) {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let broker = Broker::shared(tv).unwrap_or_else(|e| panic!("{e}"));
    let topic = unique_topic("crash");
    broker.create_topic(&topic, 3).unwrap();
    const BEFORE: u64 = 3000;
    const AFTER: u64 = 1000;
    let java = broker.java();
    let r = java
        .verifiable_producer(&topic, BEFORE, &[("acks", "all")], Duration::from_secs(120))
        .unwrap();
    assert_eq!(r.acked, BEFORE);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let log = Arc::new(Mutex::new(Log::default()));
    let count = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let props: Vec<(String, String)> = [
        ("bootstrap.servers", broker.bootstrap()),
        ("group.id", format!("{topic}-g")),
        ("auto.offset.reset", "earliest".to_owned()),
        ("max.poll.records", "50".to_owned()),
        ("session.timeout.ms", "30000".to_owned()),
        ("heartbeat.interval.ms", "500".to_owned()),
        ("request.timeout.ms", "5000".to_owned()),
        ("reconnect.backoff.max.ms", "500".to_owned()),
        ("default.api.timeout.ms", "90000".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let member = {
        let (log, count, stop, topic) = (log.clone(), count.clone(), stop.clone(), topic.clone());
        rt.spawn(async move {
            let mut c = Consumer::from_properties(props).await.unwrap();
            c.subscribe(&[&topic]).unwrap();
            while !stop.load(Ordering::SeqCst) {
                // Recovery without user action: poll never fails.
                match c.poll(Duration::from_millis(200)).await.unwrap() {
                    Polled::Records(rs) if rs.is_empty() => {}
                    Polled::Records(rs) => {
                        {
                            let mut l = log.lock().unwrap();
                            for r in &rs {
                                let v = std::str::from_utf8(r.value().unwrap()).unwrap();
                                l.seen.push((r.partition(), r.offset(), v.parse().unwrap()));
                            }
                        }
                        count.fetch_add(rs.len(), Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        if let Err(e) = c.commit().await {
                            log.lock().unwrap().commit_errors.push(e.to_string());
                        }
                    }
                    Polled::Rebalance(e) => {
                        if let Rebalance::Revoked(_) = e {
                            if let Err(e) = c.commit().await {
                                log.lock().unwrap().commit_errors.push(e.to_string());
                            }
                        }
                        log.lock().unwrap().events.push(e);
                    }
                }
            }
            c.close().await.unwrap();
        })
    };
    let wait_for = |n: usize, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(120);
        while count.load(Ordering::SeqCst) < n {
            assert!(
                Instant::now() < deadline,
                "{what}: {} of {n} after 120 s; {:?}",
                count.load(Ordering::SeqCst),
                log.lock().unwrap().events
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for(1000, "before the crash");
    broker.kill9(1).unwrap();
    let at_kill = count.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(2));
    let restart = Instant::now();
    broker.restart(1).unwrap();
    eprintln!(
        "{tv:?}: killed at {at_kill} records; broker back in {:?}",
        restart.elapsed()
    );
    // New records after the restart must reach the same consumer.
    let r = java
        .verifiable_producer(&topic, AFTER, &[("acks", "all")], Duration::from_secs(120))
        .unwrap();
    assert_eq!(r.acked, AFTER);
    let resumed = Instant::now();
    wait_for((BEFORE + AFTER) as usize, "after the restart");
    eprintln!(
        "{tv:?}: all read {:?} after the second producer finished",
        resumed.elapsed()
    );
    stop.store(true, Ordering::SeqCst);
    rt.block_on(member).unwrap();

    let log = std::mem::take(&mut *log.lock().unwrap());
    assert_eq!(
        log.seen.len() as u64,
        BEFORE + AFTER,
        "records read twice (commit errors {:?}, events {:?})",
        log.commit_errors,
        log.events
    );
    // VerifiableProducer values: 0..BEFORE, then 0..AFTER again.
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for (_, _, v) in &log.seen {
        *counts.entry(*v).or_default() += 1;
    }
    for v in 0..BEFORE {
        let expect = if v < AFTER { 2 } else { 1 };
        assert_eq!(counts.get(&v).copied().unwrap_or(0), expect, "value {v}");
    }
    // Offsets per partition: 0, 1, 2, ... with no gap and no repeat.
    let mut per: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for (p, o, _) in &log.seen {
        per.entry(*p).or_default().push(*o);
    }
    for (p, offsets) in per {
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(offsets, expected, "partition {p}");
    }
    eprintln!(
        "{tv:?}: events {:?}; commit errors during the outage: {}",
        log.events
            .iter()
            .map(|e| match e {
                Rebalance::Assigned(p) => format!("+{}", p.len()),
                Rebalance::Revoked(p) => format!("-{}", p.len()),
                Rebalance::Lost(p) => format!("lost{}", p.len()),
            })
            .collect::<Vec<_>>(),
        log.commit_errors.len()
    );
}

#[test]
fn v2_kill9_mid_consumption_recovers_without_user_action() {
    kill9_mid_consumption_recovers(TransactionVersion::V2);
}

#[test]
fn v1_kill9_mid_consumption_recovers_without_user_action() {
    kill9_mid_consumption_recovers(TransactionVersion::V1);
}
