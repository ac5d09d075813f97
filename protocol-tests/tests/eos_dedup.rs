//! The idempotent consumer (`exactly::eos::dedup::Deduplicate`) on the real
//! broker: an input written at least once (every value once, some of them
//! again at later offsets, with the same `message-id` header) is copied by
//! a session whose handler is wrapped in `Deduplicate`; the output holds
//! each value exactly once. A second session (a restart: same group, same
//! `transactional.id`, its seen-set restored from the state's changelog)
//! skips the duplicates that arrive after the restart. Transaction
//! versions 2 and 1 (`EXACTLY_EOS_TV` picks one).

use std::time::{Duration, Instant};

use exactly::eos::dedup::{Deduplicate, MessageId, SeenLimits};
use exactly::eos::{per_record, OutputRecord, StateConfig};
use exactly::{check, Producer, ProducerRecord, Session};
use exactly_protocol_tests::judge::assert_no_hanging;
use exactly_protocol_tests::{unique_topic, Broker, TransactionVersion};

fn versions() -> Vec<TransactionVersion> {
    match std::env::var("EXACTLY_EOS_TV").as_deref() {
        Ok("1") => vec![TransactionVersion::V1],
        Ok("2") => vec![TransactionVersion::V2],
        _ => TransactionVersion::ALL.to_vec(),
    }
}

/// Writes each of `values` (decimal, as key, value and `message-id`).
async fn produce(bootstrap: &str, topic: &str, values: impl Iterator<Item = u64>) {
    let p = Producer::from_properties([("bootstrap.servers", bootstrap), ("linger.ms", "5")])
        .await
        .expect("producer");
    for v in values {
        let s = v.to_string();
        p.send(
            ProducerRecord::new(topic)
                .with_key(s.as_bytes())
                .with_value(s.as_bytes())
                .with_header("message-id", Some(s.as_bytes())),
        )
        .await
        .expect("send");
    }
    p.flush().await.expect("flush");
    p.close(Duration::from_secs(10)).await.expect("close");
}

/// One life of the deduplicating copier; returns (passed, skipped).
async fn run_once(
    broker: &Broker,
    input: &str,
    output: &str,
    group: &str,
    txn: &str,
) -> (u64, u64) {
    let mut b = Session::builder();
    b.bootstrap_servers(&broker.bootstrap())
        .expect("bootstrap")
        .set("auto.offset.reset", "earliest")
        .expect("reset");
    b.group_id(group)
        .transactional_id(txn)
        .input_topics(&[input])
        .max_records_per_transaction(200)
        .stop_when_idle(Duration::from_secs(2))
        .state(StateConfig::new("seen"));
    let session = b.build().await.expect("session");
    let out = output.to_owned();
    let copy = per_record(move |r, o| {
        o.push(OutputRecord::new(out.clone()).with_value(r.value().cloned().unwrap_or_default()));
        Ok(())
    });
    let h = Deduplicate::new(copy, MessageId::header("message-id"), SeenLimits::default());
    let counters = h.counters();
    session.run(h).await.expect("session run");
    assert_eq!(counters.without_id(), 0);
    (counters.passed(), counters.skipped())
}

#[test]
fn duplicates_at_other_offsets_are_skipped_also_after_a_restart() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    for tv in versions() {
        let t = Instant::now();
        let broker = Broker::shared(tv).unwrap_or_else(|e| panic!("{e}"));
        let input = unique_topic("dedup-in");
        let output = unique_topic("dedup-out");
        let group = unique_topic("dedup-group");
        let txn = unique_topic("dedup-txn");
        broker.create_topic(&input, 2).expect("input");
        broker.create_topic(&output, 3).expect("output");
        let bootstrap = broker.bootstrap();
        rt.block_on(async {
            // Every value of 0..800, then 0..400 again.
            produce(&bootstrap, &input, (0..800).chain(0..400)).await;
            let first = run_once(broker, &input, &output, &group, &txn).await;
            assert_eq!(first, (800, 400), "{tv:?}: first life (passed, skipped)");
            // After the restart: 400..800 again (skipped only if the
            // seen-set was restored) and 800..1000 new.
            produce(&bootstrap, &input, (400..800).chain(800..1000)).await;
            let second = run_once(broker, &input, &output, &group, &txn).await;
            assert_eq!(second, (200, 400), "{tv:?}: second life (passed, skipped)");
            let v = check::verify_selected(
                &bootstrap,
                &output,
                3,
                1000,
                |_| true,
                Duration::from_secs(20),
                |_| {},
            )
            .await
            .expect("verify");
            assert!(v.is_exactly_once(), "{tv:?}: {v:?}");
        });
        assert_no_hanging(broker, &[&output]);
        println!("dedup {tv:?}: {:.1} s", t.elapsed().as_secs_f64());
    }
}
