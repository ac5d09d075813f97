//! Transactions on the real broker, under transaction.version 2 and 1:
//! visibility of committed and aborted records to a `read_committed` Java
//! consumer, offsets committed only with their transaction, zombie fencing,
//! and a transaction left open past `transaction.timeout.ms`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod producer_support;

use std::time::Duration;

use exactly_producer::{Producer, ProducerRecord};
use exactly_protocol_tests::{unique_topic, Broker, TransactionVersion};
use producer_support::*;

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

fn visibility(tv: TransactionVersion) {
    let broker = Broker::shared(tv).unwrap_or_else(|e| panic!("{e}"));
    let topic = unique_topic("txn-vis");
    broker.create_topic(&topic, 3).unwrap();
    let txn_id = unique_topic("txn-vis-id");
    runtime().block_on(async {
        let p = producer(&broker.bootstrap(), &[("transactional.id", &txn_id)]).await;
        p.init_transactions().await.unwrap();
        for round in 0..6u32 {
            p.begin_transaction().await.unwrap();
            let tag = if round % 2 == 0 { "commit" } else { "abort" };
            send_values(&p, &topic, &format!("{tag}{round}"), 0..500).await;
            if round % 2 == 0 {
                p.commit_transaction().await.unwrap();
            } else {
                p.abort_transaction().await.unwrap();
            }
        }
        p.close(Duration::from_secs(10)).await.unwrap();
    });
    let got = read_committed(broker, &topic, 1500, Duration::from_secs(120));
    let values: Vec<String> = got.iter().map(|r| r.value.clone().unwrap()).collect();
    assert_eq!(values.len(), 1500, "{tv:?}");
    assert!(
        values.iter().all(|v| v.starts_with("commit")),
        "{tv:?}: aborted record visible"
    );
    let mut sorted = values.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 1500, "{tv:?}: duplicates");
}

#[test]
fn committed_visible_aborted_never_tv2() {
    visibility(TransactionVersion::V2);
}

#[test]
fn committed_visible_aborted_never_tv1() {
    visibility(TransactionVersion::V1);
}
