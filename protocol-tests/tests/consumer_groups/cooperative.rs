//! Cooperative rebalancing (KIP-429, `cooperative-sticky`) under the
//! exactly-once session, on the real broker, transaction versions 2 and 1
//! (`EXACTLY_EOS_TV` picks one): a session copies a 6-partition topic fed
//! while it runs; a second instance joins the group mid-stream. The first
//! instance gives up only the partitions that move (its open transaction
//! committed first), keeps processing the others without a revoke or a
//! rewind, and the output holds every input value exactly once
//! (`read_committed`, our consumer and Java's).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use exactly::eos::{Context, Handler, HandlerError, TransactionEnd};
use exactly::{ConsumerRecord, Producer, ProducerRecord, Session, SessionStats, TopicPartition};
use exactly_protocol_tests::judge;
use exactly_protocol_tests::{unique_topic, Broker, TransactionVersion};

fn versions() -> Vec<TransactionVersion> {
    match std::env::var("EXACTLY_EOS_TV").as_deref() {
        Ok("1") => vec![TransactionVersion::V1],
        Ok("2") => vec![TransactionVersion::V2],
        _ => TransactionVersion::ALL.to_vec(),
    }
}

/// What an instance's handler saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Assigned(Vec<TopicPartition>),
    Revoked(Vec<TopicPartition>),
    Lost(Vec<TopicPartition>),
}

struct Copier {
    output: String,
    events: Arc<Mutex<Vec<Seen>>>,
    committed: Arc<AtomicU64>,
    /// Partitions with records processed after the instance's first revoke.
    after_revoke: Arc<Mutex<BTreeSet<i32>>>,
}

impl Handler for Copier {
    async fn process(
        &mut self,
        ctx: &mut Context<'_>,
        records: &[ConsumerRecord],
    ) -> Result<(), HandlerError> {
        let revoked_before = self
            .events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, Seen::Revoked(_)));
        for r in records {
            let mut out = ProducerRecord::new(&self.output);
            if let Some(v) = r.value() {
                out = out.with_value(v);
            }
            ctx.send(out).await?;
            if revoked_before {
                self.after_revoke.lock().unwrap().insert(r.partition());
            }
        }
        Ok(())
    }

    fn assigned(&mut self, partitions: &[TopicPartition]) {
        self.events
            .lock()
            .unwrap()
            .push(Seen::Assigned(partitions.to_vec()));
    }

    fn revoked(&mut self, partitions: &[TopicPartition], lost: bool) {
        let e = if lost {
            Seen::Lost(partitions.to_vec())
        } else {
            Seen::Revoked(partitions.to_vec())
        };
        self.events.lock().unwrap().push(e);
    }

    fn transaction_ended(&mut self, end: &TransactionEnd, _: &SessionStats) {
        if let TransactionEnd::Committed { records_in, .. } = end {
            self.committed.fetch_add(*records_in, Ordering::SeqCst);
        }
    }
}

async fn session(bootstrap: &str, input: &str, group: &str, txn: &str) -> Session {
    let mut b = Session::builder();
    b.bootstrap_servers(bootstrap).unwrap();
    for (k, v) in [
        ("auto.offset.reset", "earliest"),
        ("partition.assignment.strategy", "cooperative-sticky"),
        ("heartbeat.interval.ms", "300"),
        ("commit.interval.ms", "100"),
    ] {
        b.set(k, v).unwrap_or_else(|e| panic!("{k}: {e}"));
    }
    b.input_topics(&[input])
        .group_id(group)
        .transactional_id(txn)
        .max_records_per_transaction(100)
        .stop_when_idle(Duration::from_secs(3));
    b.build().await.expect("session")
}

/// Writes `0..n` to `topic` at about `rate` records/s (keys spread them over
/// the partitions).
async fn produce_paced(bootstrap: &str, topic: &str, n: u64, rate: u64) {
    let p = Producer::from_properties([
        ("bootstrap.servers", bootstrap),
        ("linger.ms", "5"),
        ("acks", "all"),
    ])
    .await
    .expect("producer");
    let start = Instant::now();
    let chunk = (rate / 20).max(1);
    let mut i = 0;
    while i < n {
        for v in i..(i + chunk).min(n) {
            let s = v.to_string();
            p.send(
                ProducerRecord::new(topic)
                    .with_key(s.as_bytes())
                    .with_value(s.as_bytes()),
            )
            .await
            .expect("send");
        }
        i = (i + chunk).min(n);
        let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
    }
    p.flush().await.expect("flush");
    p.close(Duration::from_secs(10)).await.expect("close");
}

fn parts(events: &[Seen], pick: fn(&Seen) -> Option<&Vec<TopicPartition>>) -> BTreeSet<i32> {
    events
        .iter()
        .filter_map(pick)
        .flatten()
        .map(|tp| tp.partition)
        .collect()
}

#[test]
fn second_instance_joins_mid_stream_only_moved_partitions_are_revoked() {
    let _serial = crate::serial();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let n = 4_000u64;
    for tv in versions() {
        let broker = Broker::shared(tv).unwrap_or_else(|e| panic!("{e}"));
        let started = Instant::now();
        let bootstrap = broker.bootstrap();
        let input = unique_topic("coop-in");
        let output = unique_topic("coop-out");
        broker.create_topic(&input, 6).expect("input topic");
        broker.create_topic(&output, 3).expect("output topic");
        let group = unique_topic("coop-group");
        let (ev_a, ev_b) = (Arc::default(), Arc::default());
        let (after_a, after_b) = (Arc::default(), Arc::default());
        let committed_a = Arc::new(AtomicU64::new(0));
        let committed_b = Arc::new(AtomicU64::new(0));
        let joined_b = Arc::new(AtomicBool::new(false));
        let (sa, sb) = rt.block_on(async {
            let feed = tokio::spawn({
                let (b, t) = (bootstrap.clone(), input.clone());
                async move { produce_paced(&b, &t, n, 1_000).await }
            });
            let a = session(&bootstrap, &input, &group, &unique_topic("coop-a")).await;
            let a = tokio::spawn(a.run(Copier {
                output: output.clone(),
                events: Arc::clone(&ev_a),
                committed: committed_a.clone(),
                after_revoke: Arc::clone(&after_a),
            }));
            // B joins once A is well under way.
            // (A fresh broker may take a while to serve transactions.)
            let deadline = Instant::now() + Duration::from_secs(90);
            while committed_a.load(Ordering::SeqCst) < 1_000 {
                assert!(Instant::now() < deadline, "A made no progress");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            joined_b.store(true, Ordering::SeqCst);
            let b = session(&bootstrap, &input, &group, &unique_topic("coop-b")).await;
            let b = tokio::spawn(b.run(Copier {
                output: output.clone(),
                events: Arc::clone(&ev_b),
                committed: committed_b.clone(),
                after_revoke: Arc::clone(&after_b),
            }));
            feed.await.expect("feed");
            (a.await.expect("a"), b.await.expect("b"))
        });
        let (sa, sb) = (sa.expect("session a"), sb.expect("session b"));
        let ev_a = ev_a.lock().unwrap().clone();
        let ev_b = ev_b.lock().unwrap().clone();
        println!("{tv:?}: A {ev_a:?} {sa:?}\n{tv:?}: B {ev_b:?} {sb:?}");
        // A got all six, then gave up only some, none lost.
        assert_eq!(
            ev_a.first(),
            Some(&Seen::Assigned(
                (0..6).map(|p| TopicPartition::new(&input, p)).collect()
            ))
        );
        assert!(!ev_a.iter().any(|e| matches!(e, Seen::Lost(_))), "{ev_a:?}");
        let revoked_a = parts(&ev_a, |e| match e {
            Seen::Revoked(p) => Some(p),
            _ => None,
        });
        let kept: BTreeSet<i32> = (0..6).filter(|p| !revoked_a.contains(p)).collect();
        assert_eq!(revoked_a.len(), 3, "A gave up half: {ev_a:?}");
        // B got exactly what A gave up (A stops later or at about the same
        // time; what B may get after A left comes after A's kept ones).
        let assigned_b = parts(&ev_b, |e| match e {
            Seen::Assigned(p) => Some(p),
            _ => None,
        });
        assert!(revoked_a.is_subset(&assigned_b), "{ev_a:?} / {ev_b:?}");
        assert!(!ev_b.iter().any(|e| matches!(e, Seen::Lost(_))), "{ev_b:?}");
        // A's kept partitions kept being processed after the revoke.
        let after = after_a.lock().unwrap().clone();
        assert!(
            after.iter().all(|p| kept.contains(p)) && !after.is_empty(),
            "A processed {after:?} after the revoke; kept {kept:?}"
        );
        assert!(joined_b.load(Ordering::SeqCst));
        // Nothing was aborted, so nothing was rewound: the commit waited
        // for the join instead of being fenced by the new generation.
        assert_eq!(sa.transactions_aborted, 0, "{sa:?}");
        assert_eq!(sb.transactions_aborted, 0, "{sb:?}");
        assert_eq!(
            committed_a.load(Ordering::SeqCst) + committed_b.load(Ordering::SeqCst),
            n,
            "every input record committed once"
        );
        judge::exactly_once(broker, &rt, &output, 3, n, &format!("cooperative {tv:?}"));
        println!("{tv:?}: took {:?}", started.elapsed());
    }
}
