//! A broker killed with SIGKILL in the middle of a transaction, under
//! transaction.version 2 and 1: the transaction ends in either a clean
//! commit (every record visible to a `read_committed` reader) or a clean
//! abort (none), never part of it; the producer (or a new one, if it failed
//! fatally) carries on; `TransactionsCommand find-hanging` finds nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod producer_support;

use std::time::Duration;

use exactly_producer::{Producer, ProducerRecord};
use exactly_protocol_tests::{unique_topic, Broker, BrokerConfig, TransactionVersion};
use producer_support::*;

const N: u32 = 300;

async fn send_values(p: &Producer, topic: &str, tag: &str, range: std::ops::Range<u32>) {
    let mut futures = Vec::new();
    for i in range {
        let v = format!("{tag}-{i}");
        futures.push(
            p.send(ProducerRecord::new(topic).with_value(v.as_bytes()))
                .await
                .unwrap(),
        );
    }
    p.flush().await.unwrap();
    for f in futures {
        f.await.unwrap();
    }
}

/// How the transaction the broker crashed under ended, as the client saw it.
#[derive(Debug, PartialEq, Eq)]
enum Fate {
    Committed,
    Aborted,
    Unknown,
}

fn crash(tv: TransactionVersion) {
    let broker =
        Broker::start(BrokerConfig::with_transaction_version(tv)).unwrap_or_else(|e| panic!("{e}"));
    let topic = unique_topic("txn-crash");
    broker.create_topic(&topic, 3).unwrap();
    let txn_id = unique_topic("txn-crash-id");
    let props = [
        ("transactional.id", txn_id.as_str()),
        ("request.timeout.ms", "5000"),
        ("delivery.timeout.ms", "120000"),
        ("reconnect.backoff.max.ms", "200"),
    ];
    let rt = runtime();
    let p = rt.block_on(async {
        let p = producer(&broker.bootstrap(), &props).await;
        p.init_transactions().await.unwrap();
        p.begin_transaction().await.unwrap();
        send_values(&p, &topic, "a", 0..N).await;
        p.commit_transaction().await.unwrap();
        p.begin_transaction().await.unwrap();
        send_values(&p, &topic, "b", 0..N / 2).await;
        // The second half is in flight (or not yet sent) when the broker dies.
        for i in N / 2..N {
            let v = format!("b-{i}");
            p.send(ProducerRecord::new(&topic).with_value(v.as_bytes()))
                .await
                .unwrap();
        }
        p
    });
    // The broker dies mid-transaction, and the commit is asked for while it
    // is down: it must wait for every batch, then end the transaction.
    broker.kill9(1).unwrap();
    let commit = {
        let p = p.clone();
        rt.spawn(async move { p.commit_transaction().await })
    };
    std::thread::sleep(Duration::from_secs(2));
    broker.restart(1).unwrap();
    let (fate, survivor) = rt.block_on(async {
        let result = tokio::time::timeout(Duration::from_secs(120), commit)
            .await
            .expect("the commit must end")
            .unwrap();
        eprintln!("{tv:?}: commit across the crash: {result:?}");
        match result {
            Ok(()) => (Fate::Committed, p),
            Err(e) if e.is_abortable() => {
                p.abort_transaction().await.unwrap();
                (Fate::Aborted, p)
            }
            Err(e) => {
                assert!(e.is_fatal(), "{e:?}");
                let _ = p.close(Duration::from_secs(5)).await;
                // A new producer's init ends whatever was left open.
                let fresh = producer(&broker.bootstrap(), &props).await;
                fresh.init_transactions().await.unwrap();
                (Fate::Unknown, fresh)
            }
        }
    });
    rt.block_on(async {
        survivor.begin_transaction().await.unwrap();
        send_values(&survivor, &topic, "c", 0..N).await;
        survivor.commit_transaction().await.unwrap();
        survivor.close(Duration::from_secs(10)).await.unwrap();
    });
    let (expected, timeout) = match fate {
        Fate::Committed => (3 * N as usize, 60),
        Fate::Aborted => (2 * N as usize, 60),
        Fate::Unknown => (3 * N as usize, 20),
    };
    let got = read_committed(&broker, &topic, expected, Duration::from_secs(timeout));
    let count = |tag: &str| {
        got.iter()
            .filter(|r| r.value.as_deref().unwrap().starts_with(&format!("{tag}-")))
            .count()
    };
    let (a, b, c) = (count("a"), count("b"), count("c"));
    eprintln!("{tv:?}: fate {fate:?}; visible a={a} b={b} c={c}");
    assert_eq!((a, c), (N as usize, N as usize), "{tv:?}");
    match fate {
        Fate::Committed => assert_eq!(b, N as usize, "{tv:?}: committed, so all of b"),
        Fate::Aborted => assert_eq!(b, 0, "{tv:?}: aborted, so none of b"),
        Fate::Unknown => assert!(b == 0 || b == N as usize, "{tv:?}: part of b visible: {b}"),
    }
    assert_eq!(got.len(), a + b + c, "{tv:?}: nothing else");
    assert_no_hanging(&broker, &[&topic, "__consumer_offsets"]);
}

#[test]
fn broker_killed_mid_transaction_tv2() {
    crash(TransactionVersion::V2);
}

#[test]
fn broker_killed_mid_transaction_tv1() {
    crash(TransactionVersion::V1);
}
