//! Following a changing cluster (periodic metadata refresh,
//! `metadata.max.age.ms`), on the real broker:
//! - (a) a transactional copy (the exactly-once session) of a 3-partition
//!   topic while it is raised to 6 partitions: the producer feeding it
//!   starts writing to the new partitions, the group's leader sees the new
//!   count and rejoins, the session is assigned the new partitions, and the
//!   output holds every input value exactly once (`read_committed`, ours and
//!   Java's), transaction versions 2 and 1 (`EXACTLY_EOS_TV` picks one);
//! - (b) a subscribed topic deleted under a consumer is reported as
//!   `ConsumerError::TopicDeleted` and its partitions are revoked (only
//!   them, under `cooperative-sticky`).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use exactly::eos::{Context, Handler, HandlerError, TransactionEnd};
use exactly::{ConsumerRecord, Producer, ProducerRecord, Session, SessionStats, TopicPartition};
use exactly_consumer::{Consumer, ConsumerError, Polled, Rebalance};
use exactly_protocol_tests::judge;
use exactly_protocol_tests::{unique_topic, Broker, TransactionVersion};

fn versions() -> Vec<TransactionVersion> {
    match std::env::var("EXACTLY_EOS_TV").as_deref() {
        Ok("1") => vec![TransactionVersion::V1],
        Ok("2") => vec![TransactionVersion::V2],
        _ => TransactionVersion::ALL.to_vec(),
    }
}

struct Copier {
    output: String,
    assigned: Arc<Mutex<BTreeSet<i32>>>,
    committed: Arc<AtomicU64>,
}

impl Handler for Copier {
    async fn process(
        &mut self,
        ctx: &mut Context<'_>,
        records: &[ConsumerRecord],
    ) -> Result<(), HandlerError> {
        for r in records {
            let mut out = ProducerRecord::new(&self.output);
            if let Some(v) = r.value() {
                out = out.with_value(v);
            }
            ctx.send(out).await?;
        }
        Ok(())
    }

    fn assigned(&mut self, partitions: &[TopicPartition]) {
        self.assigned
            .lock()
            .unwrap()
            .extend(partitions.iter().map(|tp| tp.partition));
    }

    fn transaction_ended(&mut self, end: &TransactionEnd, _: &SessionStats) {
        if let TransactionEnd::Committed { records_in, .. } = end {
            self.committed.fetch_add(*records_in, Ordering::SeqCst);
        }
    }
}

#[test]
fn partitions_added_during_a_transactional_copy_are_copied_exactly_once() {
    let _serial = crate::serial();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let n = 4_000u64;
    for tv in versions() {
        let broker = Broker::shared(tv).unwrap_or_else(|e| panic!("{e}"));
        let started = Instant::now();
        let bootstrap = broker.bootstrap();
        let input = unique_topic("grow-in");
        let output = unique_topic("grow-out");
        broker.create_topic(&input, 3).expect("input topic");
        broker.create_topic(&output, 3).expect("output topic");
        let assigned = Arc::new(Mutex::new(BTreeSet::new()));
        let committed = Arc::new(AtomicU64::new(0));
        let stats = rt.block_on(async {
            let mut b = Session::builder();
            b.bootstrap_servers(&bootstrap).unwrap();
            for (k, v) in [
                ("auto.offset.reset", "earliest"),
                ("metadata.max.age.ms", "1000"),
                ("heartbeat.interval.ms", "300"),
            ] {
                b.set(k, v).unwrap_or_else(|e| panic!("{k}: {e}"));
            }
            b.input_topics(&[&input])
                .group_id(unique_topic("grow-group"))
                .transactional_id(unique_topic("grow-txn"))
                .max_records_per_transaction(100)
                .stop_when_idle(Duration::from_secs(3));
            let session = b.build().await.expect("session");
            let run = tokio::spawn(session.run(Copier {
                output: output.clone(),
                assigned: assigned.clone(),
                committed: committed.clone(),
            }));
            let p = Producer::from_properties([
                ("bootstrap.servers", bootstrap.as_str()),
                ("linger.ms", "5"),
                ("metadata.max.age.ms", "1000"),
            ])
            .await
            .expect("producer");
            let t0 = Instant::now();
            let rate = 1_000.0;
            let mut grown = false;
            for v in 0..n {
                if !grown && v == n / 3 {
                    // Raise the count mid-stream; the producer and the
                    // group learn it from their periodic refresh.
                    let (broker, input) = (broker, input.clone());
                    tokio::task::spawn_blocking(move || broker.create_partitions(&input, 6))
                        .await
                        .unwrap()
                        .expect("create partitions");
                    grown = true;
                }
                let s = v.to_string();
                p.send(
                    ProducerRecord::new(&input)
                        .with_key(s.as_bytes())
                        .with_value(s.as_bytes()),
                )
                .await
                .expect("send");
                if v % 50 == 49 {
                    let due = t0 + Duration::from_secs_f64((v + 1) as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
            }
            p.flush().await.expect("flush");
            p.close(Duration::from_secs(10)).await.expect("close");
            run.await.expect("join").expect("session")
        });
        let assigned = assigned.lock().unwrap().clone();
        println!("{tv:?}: assigned {assigned:?}, {stats:?}");
        assert_eq!(
            assigned,
            (0..6).collect::<BTreeSet<i32>>(),
            "the new partitions were assigned"
        );
        // The producer did write to the new partitions.
        let ends = rt.block_on(async {
            let mut c = Consumer::from_properties([("bootstrap.servers", bootstrap.as_str())])
                .await
                .unwrap();
            let tps: Vec<TopicPartition> = (3..6).map(|p| TopicPartition::new(&input, p)).collect();
            c.end_offsets(&tps).await.unwrap()
        });
        assert!(
            ends.values().all(|&e| e > 0),
            "new partitions written: {ends:?}"
        );
        assert_eq!(committed.load(Ordering::SeqCst), n);
        judge::exactly_once(broker, &rt, &output, 3, n, &format!("grown {tv:?}"));
        println!("{tv:?}: took {:?}", started.elapsed());
    }
}

#[test]
fn a_deleted_topic_is_reported_and_its_partitions_revoked() {
    let _serial = crate::serial();
    let broker = Broker::shared(TransactionVersion::V2).unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let bootstrap = broker.bootstrap();
    let keep = unique_topic("del-keep");
    let doomed = unique_topic("del-doomed");
    broker.create_topic(&keep, 2).expect("topic");
    broker.create_topic(&doomed, 2).expect("topic");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut c = Consumer::from_properties([
            ("bootstrap.servers", bootstrap.as_str()),
            ("group.id", unique_topic("del-group").as_str()),
            ("partition.assignment.strategy", "cooperative-sticky"),
            ("metadata.max.age.ms", "500"),
            ("allow.auto.create.topics", "false"),
            ("heartbeat.interval.ms", "300"),
        ])
        .await
        .expect("consumer");
        c.subscribe(&[&keep, &doomed]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while c.assignment().len() < 4 {
            assert!(Instant::now() < deadline, "no assignment");
            let _ = c.poll(Duration::from_millis(200)).await.unwrap();
        }
        let (b, t) = (broker, doomed.clone());
        tokio::task::spawn_blocking(move || b.delete_topic(&t))
            .await
            .unwrap()
            .expect("delete");
        let mut reported = false;
        let mut revoked = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !(reported && c.assignment().iter().all(|tp| tp.topic == keep)) {
            assert!(
                Instant::now() < deadline,
                "reported {reported}, revoked {revoked:?}, still {:?}",
                c.assignment()
            );
            match c.poll(Duration::from_millis(200)).await {
                Err(ConsumerError::TopicDeleted { topic }) => {
                    assert_eq!(topic, doomed);
                    assert!(!reported, "reported once");
                    reported = true;
                }
                Err(e) => panic!("{e}"),
                Ok(Polled::Rebalance(Rebalance::Revoked(p))) => revoked.extend(p),
                Ok(Polled::Rebalance(Rebalance::Lost(p))) => panic!("lost {p:?}"),
                Ok(_) => {}
            }
        }
        assert!(!revoked.is_empty());
        assert!(revoked.iter().all(|tp| tp.topic == doomed), "{revoked:?}");
        assert_eq!(c.assignment().len(), 2);
        c.close().await.unwrap();
    });
    println!("took {:?}", started.elapsed());
}
