//! The KIP-848 consumer group protocol (`group.protocol=consumer`) against
//! the real broker (Kafka 4.3.1; the harness offers `classic,consumer` and
//! 500 ms heartbeats, see `broker.rs`):
//! - two of our consumers share 6 partitions (only the moved ones are
//!   revoked), one leaves, the other takes over: with commits after every
//!   batch, nothing is lost or read twice;
//! - a zombie's transaction: offsets for a partition that moved to another
//!   member, under the member epoch from before the move (KIP-447 over
//!   KIP-848), are refused by the group coordinator (ILLEGAL_GENERATION on
//!   TxnOffsetCommit) and the transaction aborts, the group's offsets
//!   unchanged; offsets of the partition kept, under the current epoch,
//!   commit (transaction.version 2 and 1). A stale epoch alone is not
//!   refused for a partition the member still holds: since KIP-1251 the
//!   coordinator accepts any epoch from the one the partition was assigned
//!   at up to the current one.
//!
//! - the exactly-once session on `group.protocol=consumer`: two sessions in
//!   one group copy a topic while partitions move from one to the other
//!   (the moved ones revoked, the session committing on revoke) and the
//!   first stops: both judges read every value exactly once
//!   (transaction.version 2 and 1);
//! - static membership (`group.instance.id`): a static member that closes
//!   (leave with epoch -2) and comes back within the session timeout gets
//!   its partitions back; the other member's assignment never moves;
//! - regex subscription (`SubscribedTopicRegex`, resolved by the broker):
//!   a consumer subscribed with a regex reads a matching topic, then a
//!   matching topic created after the subscription is assigned and read; a
//!   topic that does not match is not;
//! - `group.remote.assignor`: 2 members over 2 topics of 3 partitions get
//!   the broker's `range` layout (per topic, so one member holds
//!   partitions 0 and 1 of both topics, the other partition 2 of both: 4
//!   and 2) and its `uniform` one (3 and 3);
//! - (ignored, long) a mixed group of Java `VerifiableConsumer`s and ours.
//!
//! Run: `cargo test -p exactly-protocol-tests --test consumer_kip848`
//! (add `-- --ignored` for the long one).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use exactly_consumer::{Consumer, Polled, Rebalance, TopicPartition};
use exactly_producer::{Producer, ProducerRecord};
use exactly_protocol_tests::{unique_topic, Broker, JavaMember, TransactionVersion};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn broker(tv: TransactionVersion) -> &'static Broker {
    Broker::shared(tv).unwrap_or_else(|e| panic!("{e}"))
}

fn text(v: Option<&bytes::Bytes>) -> String {
    String::from_utf8(v.map(|b| b.to_vec()).unwrap_or_default()).unwrap()
}

fn props(broker: &Broker, group: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = [
        ("bootstrap.servers", broker.bootstrap()),
        ("group.id", group.to_owned()),
        ("group.protocol", "consumer".into()),
        ("auto.offset.reset", "earliest".into()),
        ("max.poll.records", "50".into()),
        ("fetch.max.wait.ms", "100".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    p.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    p
}

/// Writes `n` values "0".."n-1" round-robin over `partitions` partitions.
async fn produce(bootstrap: &str, topic: &str, partitions: i32, n: usize) {
    produce_range(bootstrap, topic, partitions, 0..n).await
}

/// Writes the values of `range` round-robin over `partitions` partitions.
async fn produce_range(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    range: std::ops::Range<usize>,
) {
    let p = Producer::from_properties([("bootstrap.servers", bootstrap), ("acks", "all")])
        .await
        .unwrap();
    let mut futs = Vec::new();
    for i in range {
        let v = i.to_string();
        let part = (i % partitions as usize) as i32;
        futs.push(
            p.send(
                ProducerRecord::new(topic)
                    .with_partition(part)
                    .with_value(v.as_bytes()),
            )
            .await
            .unwrap(),
        );
    }
    for f in futs {
        f.await.unwrap();
    }
    p.close(Duration::from_secs(10)).await.unwrap();
}

/// What one member did.
#[derive(Debug, Default)]
struct MemberLog {
    seen: Vec<(i32, i64, String)>,
    events: Vec<Rebalance>,
}

/// Runs one member until `stop` is set (then commits and closes, leaving
/// the group) or `done` says everything was read. Commits after every
/// batch and on every revocation.
async fn member(
    props: Vec<(String, String)>,
    topic: String,
    stop: Arc<AtomicBool>,
    done: impl Fn(usize) -> bool,
    log: Arc<Mutex<MemberLog>>,
    total: Arc<AtomicUsize>,
) {
    let mut c = Consumer::from_properties(props).await.unwrap();
    c.subscribe(&[&topic]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        assert!(Instant::now() < deadline, "member did not finish");
        if stop.load(Ordering::SeqCst) || done(total.load(Ordering::SeqCst)) {
            c.commit().await.unwrap();
            c.close().await.unwrap();
            return;
        }
        match c.poll(Duration::from_millis(200)).await.unwrap() {
            Polled::Records(rs) if rs.is_empty() => {}
            Polled::Records(rs) => {
                {
                    let mut l = log.lock().unwrap();
                    for r in &rs {
                        l.seen.push((r.partition(), r.offset(), text(r.value())));
                    }
                }
                total.fetch_add(rs.len(), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                c.commit().await.unwrap();
            }
            Polled::Rebalance(e) => {
                if let Rebalance::Revoked(_) = e {
                    c.commit().await.unwrap();
                }
                assert!(!matches!(e, Rebalance::Lost(_)), "membership lost: {e:?}");
                log.lock().unwrap().events.push(e);
            }
        }
    }
}

/// The partitions a member holds after its events.
fn holding(events: &[Rebalance]) -> BTreeSet<i32> {
    let mut h = BTreeSet::new();
    for e in events {
        match e {
            Rebalance::Assigned(p) => h.extend(p.iter().map(|tp| tp.partition)),
            Rebalance::Revoked(p) | Rebalance::Lost(p) => {
                for tp in p {
                    h.remove(&tp.partition);
                }
            }
        }
    }
    h
}

#[test]
fn kip848_members_share_then_one_leaves_no_loss_no_duplicates() {
    let _s = serial();
    let started = Instant::now();
    let broker = broker(TransactionVersion::V2);
    let topic = unique_topic("k848share");
    broker.create_topic(&topic, 6).unwrap();
    const N: usize = 6000;
    let rt = runtime();
    rt.block_on(produce(&broker.bootstrap(), &topic, 6, N));
    let group = format!("{topic}-g");
    let props = props(broker, &group, &[("group.remote.assignor", "uniform")]);
    let (a, b) = rt.block_on(async {
        let total = Arc::new(AtomicUsize::new(0));
        let a_log = Arc::new(Mutex::new(MemberLog::default()));
        let b_log = Arc::new(Mutex::new(MemberLog::default()));
        let a_stop = Arc::new(AtomicBool::new(false));
        let b_stop = Arc::new(AtomicBool::new(false));
        let a = tokio::spawn(member(
            props.clone(),
            topic.clone(),
            a_stop.clone(),
            |n| n >= N,
            a_log.clone(),
            total.clone(),
        ));
        let wait = |what: &'static str, f: Box<dyn Fn() -> bool + Send>| async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !f() {
                assert!(Instant::now() < deadline, "timed out waiting for {what}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let t = total.clone();
        wait(
            "A to read",
            Box::new(move || t.load(Ordering::SeqCst) >= 300),
        )
        .await;
        let b = tokio::spawn(member(
            props.clone(),
            topic.clone(),
            b_stop.clone(),
            |_| false,
            b_log.clone(),
            total.clone(),
        ));
        let bl = b_log.clone();
        wait(
            "B to read 300 records",
            Box::new(move || bl.lock().unwrap().seen.len() >= 300),
        )
        .await;
        b_stop.store(true, Ordering::SeqCst);
        b.await.unwrap();
        a.await.unwrap();
        let a = std::mem::take(&mut *a_log.lock().unwrap());
        let b = std::mem::take(&mut *b_log.lock().unwrap());
        (a, b)
    });
    // A: all 6, some revoked for B (never all: incremental), then all 6.
    let Rebalance::Assigned(first) = &a.events[0] else {
        panic!("{:?}", a.events);
    };
    assert_eq!(first.len(), 6, "{:?}", a.events);
    let revoked: Vec<&Rebalance> = a
        .events
        .iter()
        .filter(|e| matches!(e, Rebalance::Revoked(_)))
        .collect();
    assert!(!revoked.is_empty(), "A gave nothing to B: {:?}", a.events);
    for r in &revoked {
        let Rebalance::Revoked(p) = r else {
            unreachable!()
        };
        assert!(p.len() < 6, "incremental: only the moved partitions");
    }
    assert_eq!(holding(&a.events).len(), 6, "A took over: {:?}", a.events);
    let b_had = holding(
        &b.events
            .iter()
            .filter(|e| matches!(e, Rebalance::Assigned(_)))
            .cloned()
            .collect::<Vec<_>>(),
    );
    assert!(!b_had.is_empty(), "B got nothing: {:?}", b.events);
    // Nothing lost, nothing read twice.
    let mut all: Vec<(i32, i64)> = a
        .seen
        .iter()
        .chain(b.seen.iter())
        .map(|(p, o, _)| (*p, *o))
        .collect();
    all.sort_unstable();
    let read = all.len();
    all.dedup();
    assert_eq!(read, all.len(), "{} records read twice", read - all.len());
    let mut values: Vec<u64> = a
        .seen
        .iter()
        .chain(b.seen.iter())
        .map(|(_, _, v)| v.parse().unwrap())
        .collect();
    values.sort_unstable();
    assert_eq!(values, (0..N as u64).collect::<Vec<_>>());
    eprintln!(
        "A read {}, B read {} (B had {b_had:?}), events A {:?} B {:?}; {:?}",
        a.seen.len(),
        b.seen.len(),
        a.events,
        b.events,
        started.elapsed()
    );
}

/// Polls `c` until `f` holds (or 30 s), collecting rebalance events.
async fn poll_until(c: &mut Consumer, what: &str, mut f: impl FnMut(&Consumer) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f(c) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        if let Polled::Rebalance(Rebalance::Lost(p)) =
            c.poll(Duration::from_millis(100)).await.unwrap()
        {
            panic!("lost {p:?} while waiting for {what}");
        }
    }
}

fn stale_member_epoch_aborts_the_transaction(tv: TransactionVersion) {
    let _s = serial();
    let started = Instant::now();
    let broker = broker(tv);
    let topic = unique_topic("k848txn");
    let out = format!("{topic}-out");
    broker.create_topic(&topic, 2).unwrap();
    broker.create_topic(&out, 1).unwrap();
    let rt = runtime();
    rt.block_on(async {
        produce(&broker.bootstrap(), &topic, 2, 20).await;
        let group = format!("{topic}-g");
        let mut a = Consumer::from_properties(props(broker, &group, &[]))
            .await
            .unwrap();
        a.subscribe(&[&topic]).unwrap();
        poll_until(&mut a, "A to hold both partitions", |c| {
            c.assignment().len() == 2
        })
        .await;
        poll_until(&mut a, "A to read", |c| {
            c.assignment()
                .iter()
                .all(|tp| c.position(tp).is_some_and(|p| p > 0))
        })
        .await;
        // A's positions and identity before the group changes: what a
        // zombie (a member that missed the rebalance) would commit.
        let stale = a.group_metadata();
        let stale_offsets = a.offsets_to_commit();
        assert!(stale.generation_id > 0, "a member epoch: {stale:?}");
        // B joins: one partition moves to B, A's epoch moves on.
        let mut b = Consumer::from_properties(props(broker, &group, &[]))
            .await
            .unwrap();
        b.subscribe(&[&topic]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !(a.assignment().len() == 1
            && b.assignment().len() == 1
            && a.group_metadata().generation_id > stale.generation_id)
        {
            assert!(Instant::now() < deadline, "the group did not rebalance");
            a.poll(Duration::from_millis(50)).await.unwrap();
            b.poll(Duration::from_millis(50)).await.unwrap();
        }
        let kept = a.assignment()[0].clone();
        let moved = b.assignment()[0].clone();
        assert_ne!(kept, moved);
        let position = a.position(&kept).unwrap();
        let offsets: Vec<_> = a
            .offsets_to_commit()
            .into_iter()
            .filter(|o| o.partition == kept)
            .collect();
        let zombie: Vec<_> = stale_offsets
            .into_iter()
            .filter(|o| o.partition == moved)
            .collect();
        assert_eq!(zombie.len(), 1);
        let before = a.committed(std::slice::from_ref(&moved)).await.unwrap();
        let p = Producer::from_properties([
            ("bootstrap.servers", broker.bootstrap().as_str()),
            ("transactional.id", format!("{topic}-t").as_str()),
        ])
        .await
        .unwrap();
        p.init_transactions().await.unwrap();
        // The stale epoch, for a partition that moved: refused, the
        // transaction must abort.
        p.begin_transaction().await.unwrap();
        p.send(ProducerRecord::new(&out).with_value(b"stale"))
            .await
            .unwrap();
        let sent = p.send_offsets_to_transaction(zombie, &stale).await;
        let committed = match sent {
            Ok(()) => p.commit_transaction().await,
            Err(e) => Err(e),
        };
        let e = committed.expect_err("offsets under a stale member epoch must not commit");
        eprintln!(
            "{tv:?}: epoch {} (now {}) refused for {moved}: {e}",
            stale.generation_id,
            a.group_metadata().generation_id
        );
        p.abort_transaction().await.unwrap();
        let after = a.committed(std::slice::from_ref(&moved)).await.unwrap();
        assert_eq!(before, after, "the aborted transaction moved the offsets");
        // The current epoch: commits.
        let current = a.group_metadata();
        p.begin_transaction().await.unwrap();
        p.send(ProducerRecord::new(&out).with_value(b"current"))
            .await
            .unwrap();
        p.send_offsets_to_transaction(offsets, &current)
            .await
            .unwrap();
        p.commit_transaction().await.unwrap();
        let after = a.committed(std::slice::from_ref(&kept)).await.unwrap();
        assert_eq!(after[&kept].as_ref().map(|o| o.offset), Some(position));
        // Only the committed transaction's record is visible.
        let mut r = Consumer::from_properties([
            ("bootstrap.servers", broker.bootstrap().as_str()),
            ("auto.offset.reset", "earliest"),
        ])
        .await
        .unwrap();
        let otp = TopicPartition::new(&out, 0);
        r.assign(std::slice::from_ref(&otp)).unwrap();
        let mut values = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while values.is_empty() {
            assert!(Instant::now() < deadline, "the committed record never came");
            for rec in &r
                .poll(Duration::from_millis(200))
                .await
                .unwrap()
                .into_records()
            {
                values.push(text(rec.value()));
            }
        }
        assert_eq!(values, ["current"]);
        p.close(Duration::from_secs(5)).await.unwrap();
        b.close().await.unwrap();
        a.close().await.unwrap();
    });
    eprintln!("{tv:?}: {:?}", started.elapsed());
}

#[test]
fn v2_kip848_stale_member_epoch_aborts_the_transaction() {
    stale_member_epoch_aborts_the_transaction(TransactionVersion::V2);
}

#[test]
fn v1_kip848_stale_member_epoch_aborts_the_transaction() {
    stale_member_epoch_aborts_the_transaction(TransactionVersion::V1);
}

/// A mixed KIP-848 group: 2 Java `VerifiableConsumer`s and 2 of ours. The
/// Java members read first; ours join (partitions move from Java to ours,
/// who start at the Java members' commits), then ours leave (their
/// partitions go back to Java, who start at ours'). Every record is read
/// exactly once across the four.
///
/// Ignored by default (about a minute with the JVMs); run with
/// `cargo test -p exactly-protocol-tests --test consumer_kip848 -- --ignored mixed`.
#[test]
#[ignore = "long: JVM members; run with --ignored"]
fn kip848_mixed_group_with_java_every_record_once() {
    let _s = serial();
    let started = Instant::now();
    let broker = broker(TransactionVersion::V2);
    let topic = unique_topic("k848mixed");
    broker.create_topic(&topic, 8).unwrap();
    let group = format!("{topic}-g");
    const PHASE: usize = 2000;
    let rt = runtime();
    let boot = broker.bootstrap();
    rt.block_on(produce_range(&boot, &topic, 8, 0..PHASE));
    let tools = broker.java();
    let java_props: [(&str, &str); 0] = [];
    let j1 = JavaMember::start(&tools, &topic, &group, "consumer", "j1", &java_props).unwrap();
    let j2 = JavaMember::start(&tools, &topic, &group, "consumer", "j2", &java_props).unwrap();
    let java_count = |j1: &JavaMember, j2: &JavaMember| j1.count() + j2.count();
    let wait = |what: &str, f: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(90);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    while java_count(&j1, &j2) < PHASE {
        assert!(
            Instant::now() < deadline,
            "the Java members read {} of phase 1; stderr:\n{}\n{}",
            java_count(&j1, &j2),
            j1.stderr_tail(),
            j2.stderr_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let java_phase1 = java_count(&j1, &j2);
    // Ours join.
    let props = props(broker, &group, &[]);
    let total = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let logs: Vec<Arc<Mutex<MemberLog>>> = (0..2)
        .map(|_| Arc::new(Mutex::new(MemberLog::default())))
        .collect();
    let ours: Vec<_> = logs
        .iter()
        .map(|l| {
            rt.spawn(member(
                props.clone(),
                topic.clone(),
                stop.clone(),
                |_| false,
                l.clone(),
                total.clone(),
            ))
        })
        .collect();
    wait("ours to hold partitions", &|| {
        logs.iter()
            .all(|l| !holding(&l.lock().unwrap().events).is_empty())
    });
    rt.block_on(produce_range(&boot, &topic, 8, PHASE..2 * PHASE));
    wait("phase 2 to be read", &|| {
        java_count(&j1, &j2) + total.load(Ordering::SeqCst) >= 2 * PHASE
    });
    // Ours leave (commit, close).
    stop.store(true, Ordering::SeqCst);
    for o in ours {
        rt.block_on(o).unwrap();
    }
    let ours_read = total.load(Ordering::SeqCst);
    rt.block_on(produce_range(&boot, &topic, 8, 2 * PHASE..3 * PHASE));
    wait("phase 3 to be read", &|| {
        java_count(&j1, &j2) + ours_read >= 3 * PHASE
    });
    // A little longer: a duplicate would show up now.
    std::thread::sleep(Duration::from_secs(2));
    let (c1, c2) = (j1.commits(), j2.commits());
    let java: Vec<_> = j1.stop().into_iter().chain(j2.stop()).collect();
    let ours: Vec<MemberLog> = logs
        .iter()
        .map(|l| std::mem::take(&mut *l.lock().unwrap()))
        .collect();
    // Every value once across the four.
    let mut values: Vec<u64> = java
        .iter()
        .map(|r| r.value.as_deref().unwrap_or_default().parse().unwrap())
        .chain(
            ours.iter()
                .flat_map(|l| l.seen.iter().map(|(_, _, v)| v.parse().unwrap())),
        )
        .collect();
    values.sort_unstable();
    let read = values.len();
    values.dedup();
    assert_eq!(
        read,
        values.len(),
        "{} records read twice",
        read - values.len()
    );
    assert_eq!(values, (0..3 * PHASE as u64).collect::<Vec<_>>());
    for (i, l) in ours.iter().enumerate() {
        assert!(
            !l.seen.is_empty(),
            "our member {i} read nothing: {:?}",
            l.events
        );
    }
    // Partitions moved both ways: ours read partitions the Java members had
    // read (starting at their commits), and the Java members read, after
    // ours left, partitions ours had read (starting at ours').
    let ours_parts: BTreeSet<i32> = ours
        .iter()
        .flat_map(|l| l.seen.iter().map(|(p, _, _)| *p))
        .collect();
    let java_late: BTreeSet<i32> = java
        .iter()
        .filter(|r| {
            r.value
                .as_deref()
                .is_some_and(|v| v.parse::<usize>().unwrap() >= 2 * PHASE)
        })
        .map(|r| r.partition)
        .collect();
    assert!(
        ours_parts.is_subset(&java_late),
        "the Java members did not take back {ours_parts:?} (read late: {java_late:?})"
    );
    eprintln!(
        "mixed: Java read {} ({java_phase1} in phase 1, commits {c1}+{c2}), ours read {} over {ours_parts:?}; {:?}",
        java.len(),
        ours_read,
        started.elapsed()
    );
}

/// Copies each record's value to `output`.
struct Copy {
    output: String,
}

impl exactly::eos::Handler for Copy {
    async fn process(
        &mut self,
        ctx: &mut exactly::eos::Context<'_>,
        records: &[exactly::ConsumerRecord],
    ) -> Result<(), exactly::eos::HandlerError> {
        for r in records {
            let mut out = ProducerRecord::new(&self.output);
            if let Some(v) = r.value() {
                out = out.with_value(v);
            }
            ctx.send(out).await?;
        }
        Ok(())
    }
}

async fn eos_session(
    broker: &Broker,
    input: &str,
    group: &str,
    txn_id: &str,
    idle: Duration,
) -> exactly::Session {
    let mut b = exactly::Session::builder();
    b.bootstrap_servers(&broker.bootstrap())
        .unwrap()
        .set("auto.offset.reset", "earliest")
        .unwrap()
        .set("group.protocol", "consumer")
        .unwrap();
    b.group_id(group)
        .transactional_id(txn_id)
        .input_topics(&[input])
        .max_records_per_transaction(100)
        .max_transaction_time(Duration::from_millis(100))
        .stop_when_idle(idle);
    b.build().await.unwrap()
}

fn eos_session_on_kip848(tv: TransactionVersion) {
    let _s = serial();
    let started = Instant::now();
    let broker = broker(tv);
    let input = unique_topic("k848eos-in");
    let output = unique_topic("k848eos-out");
    broker.create_topic(&input, 4).unwrap();
    broker.create_topic(&output, 2).unwrap();
    const HALF: usize = 2000;
    let rt = runtime();
    let group = format!("{input}-g");
    let (a, b) = rt.block_on(async {
        produce_range(&broker.bootstrap(), &input, 4, 0..HALF).await;
        let a = eos_session(
            broker,
            &input,
            &group,
            &format!("{input}-ta"),
            Duration::from_secs(4),
        )
        .await;
        let a_metrics = a.metrics();
        let a = tokio::spawn(a.run(Copy {
            output: output.clone(),
        }));
        let deadline = Instant::now() + Duration::from_secs(30);
        while a_metrics.snapshot().records_committed < 500 {
            assert!(Instant::now() < deadline, "A committed nothing");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // B joins: some of A's partitions move to B, mid-copy.
        let b = eos_session(
            broker,
            &input,
            &group,
            &format!("{input}-tb"),
            Duration::from_secs(4),
        )
        .await;
        let b_metrics = b.metrics();
        let b = tokio::spawn(b.run(Copy {
            output: output.clone(),
        }));
        let deadline = Instant::now() + Duration::from_secs(30);
        while b_metrics.snapshot().rebalances == 0 {
            assert!(Instant::now() < deadline, "B got no partitions");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        produce_range(&broker.bootstrap(), &input, 4, HALF..2 * HALF).await;
        (a.await.unwrap().unwrap(), b.await.unwrap().unwrap())
    });
    eprintln!("{tv:?}: A {a:?}\nB {b:?}");
    assert!(a.rebalances >= 2, "A saw the move: {a:?}");
    assert!(b.records_committed > 0, "B copied nothing: {b:?}");
    assert_eq!(
        a.aborted_on_lost + b.aborted_on_lost,
        0,
        "no membership lost"
    );
    assert_eq!(
        a.records_committed + b.records_committed,
        2 * HALF as u64,
        "each input record committed once"
    );
    exactly_protocol_tests::judge::exactly_once(
        broker,
        &rt,
        &output,
        2,
        2 * HALF as u64,
        &format!("kip848 session {tv:?}"),
    );
    eprintln!("{tv:?}: {:?}", started.elapsed());
}

#[test]
fn v2_kip848_eos_session_partitions_move_exactly_once() {
    eos_session_on_kip848(TransactionVersion::V2);
}

#[test]
fn v1_kip848_eos_session_partitions_move_exactly_once() {
    eos_session_on_kip848(TransactionVersion::V1);
}

#[test]
fn kip848_static_member_comes_back_to_its_partitions() {
    let _s = serial();
    let started = Instant::now();
    let broker = broker(TransactionVersion::V2);
    let topic = unique_topic("k848static");
    broker.create_topic(&topic, 4).unwrap();
    let group = format!("{topic}-g");
    let rt = runtime();
    rt.block_on(async {
        let stat = props(broker, &group, &[("group.instance.id", "static-a")]);
        let mut a = Consumer::from_properties(stat.clone()).await.unwrap();
        let mut b = Consumer::from_properties(props(broker, &group, &[]))
            .await
            .unwrap();
        a.subscribe(&[&topic]).unwrap();
        b.subscribe(&[&topic]).unwrap();
        let mut b_events = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !(a.assignment().len() == 2 && b.assignment().len() == 2) {
            assert!(Instant::now() < deadline, "no 2+2 split");
            a.poll(Duration::from_millis(50)).await.unwrap();
            if let Polled::Rebalance(e) = b.poll(Duration::from_millis(50)).await.unwrap() {
                b_events.push(e);
            }
        }
        let a_parts = a.assignment();
        let b_parts = b.assignment();
        let b_settled = b_events.len();
        // A leaves as a static member (epoch -2): its partitions wait for it.
        a.close().await.unwrap();
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            if let Polled::Rebalance(e) = b.poll(Duration::from_millis(100)).await.unwrap() {
                b_events.push(e);
            }
        }
        assert_eq!(
            b.assignment(),
            b_parts,
            "B took A's partitions: {b_events:?}"
        );
        // A comes back under the same instance id: the same partitions.
        let mut a2 = Consumer::from_properties(stat).await.unwrap();
        a2.subscribe(&[&topic]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while a2.assignment().len() < 2 {
            assert!(
                Instant::now() < deadline,
                "A did not get its partitions back"
            );
            a2.poll(Duration::from_millis(50)).await.unwrap();
            if let Polled::Rebalance(e) = b.poll(Duration::from_millis(50)).await.unwrap() {
                b_events.push(e);
            }
        }
        assert_eq!(a2.assignment(), a_parts);
        assert_eq!(b.assignment(), b_parts);
        assert_eq!(
            b_events.len(),
            b_settled,
            "B's assignment moved: {b_events:?}"
        );
        a2.close().await.unwrap();
        b.close().await.unwrap();
    });
    eprintln!("static: {:?}", started.elapsed());
}

#[test]
fn kip848_regex_subscription_picks_up_a_topic_created_later() {
    let _s = serial();
    let started = Instant::now();
    let broker = broker(TransactionVersion::V2);
    let base = unique_topic("k848re");
    let (first, later, other) = (
        format!("{base}-in-a"),
        format!("{base}-in-b"),
        format!("{base}-out"),
    );
    broker.create_topic(&first, 2).unwrap();
    broker.create_topic(&other, 1).unwrap();
    let regex = format!("{}-in-.*", base.replace('.', "\\."));
    let rt = runtime();
    rt.block_on(async {
        produce(&broker.bootstrap(), &first, 2, 10).await;
        produce(&broker.bootstrap(), &other, 1, 5).await;
        let mut c = Consumer::from_properties(props(broker, &format!("{base}-g"), &[]))
            .await
            .unwrap();
        c.subscribe_pattern(&regex).unwrap();
        let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
        let read = |c: Polled, seen: &mut BTreeSet<(String, String)>| {
            if let Polled::Records(rs) = c {
                for r in &rs {
                    seen.insert((r.topic().to_string(), text(r.value())));
                }
            }
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while seen.iter().filter(|(t, _)| *t == first).count() < 10 {
            assert!(Instant::now() < deadline, "{first} not read: {seen:?}");
            read(c.poll(Duration::from_millis(100)).await.unwrap(), &mut seen);
        }
        let t_first = started.elapsed();
        // A matching topic created after the subscription: the broker
        // resolves the regex again and assigns it.
        broker.create_topic(&later, 2).unwrap();
        produce(&broker.bootstrap(), &later, 2, 6).await;
        let created = Instant::now();
        let deadline = created + Duration::from_secs(40);
        while seen.iter().filter(|(t, _)| *t == later).count() < 6 {
            assert!(
                Instant::now() < deadline,
                "{later} not read: {:?} {seen:?}",
                c.assignment()
            );
            read(c.poll(Duration::from_millis(100)).await.unwrap(), &mut seen);
        }
        let t_later = created.elapsed();
        let mut topics: Vec<String> = c.assignment().into_iter().map(|tp| tp.topic).collect();
        topics.sort();
        topics.dedup();
        assert_eq!(topics, vec![first.clone(), later.clone()]);
        assert!(
            seen.iter().all(|(t, _)| *t != other),
            "a topic the regex does not match was read"
        );
        assert_eq!(seen.len(), 16, "{seen:?}");
        c.close().await.unwrap();
        eprintln!("regex: first topic read after {t_first:?}, the later one {t_later:?} after its creation");
    });
    eprintln!("regex: {:?}", started.elapsed());
}

/// Two members of one group over `topics`, polled until both hold
/// something, all 6 partitions are held and nothing moved for 2 s.
async fn settled_split(
    broker: &Broker,
    group: &str,
    assignor: &str,
    topics: &[String],
) -> (Vec<TopicPartition>, Vec<TopicPartition>) {
    let p = props(broker, group, &[("group.remote.assignor", assignor)]);
    let mut a = Consumer::from_properties(p.clone()).await.unwrap();
    let mut b = Consumer::from_properties(p).await.unwrap();
    a.subscribe(topics).unwrap();
    b.subscribe(topics).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = (Vec::new(), Vec::new());
    let mut since = Instant::now();
    loop {
        assert!(
            Instant::now() < deadline,
            "{assignor}: no settled split: {last:?}"
        );
        a.poll(Duration::from_millis(50)).await.unwrap();
        b.poll(Duration::from_millis(50)).await.unwrap();
        let mut now = (a.assignment(), b.assignment());
        now.0.sort();
        now.1.sort();
        if now != last {
            last = now;
            since = Instant::now();
            continue;
        }
        let full = !last.0.is_empty() && !last.1.is_empty() && last.0.len() + last.1.len() == 6;
        if full && since.elapsed() > Duration::from_secs(2) {
            break;
        }
    }
    a.close().await.unwrap();
    b.close().await.unwrap();
    last
}

#[test]
fn kip848_remote_assignor_range_and_uniform_give_the_broker_layouts() {
    let _s = serial();
    let started = Instant::now();
    let broker = broker(TransactionVersion::V2);
    let base = unique_topic("k848asg");
    let topics = vec![format!("{base}-x"), format!("{base}-y")];
    for t in &topics {
        broker.create_topic(t, 3).unwrap();
    }
    let rt = runtime();
    rt.block_on(async {
        let parts = |v: &[TopicPartition], t: &str| -> Vec<i32> {
            v.iter()
                .filter(|tp| tp.topic == t)
                .map(|tp| tp.partition)
                .collect()
        };
        // range: per topic, partitions 0..3 split 2 + 1, the same way in
        // both topics (co-partitioned).
        let (a, b) = settled_split(broker, &format!("{base}-range"), "range", &topics).await;
        let (big, small) = if a.len() > b.len() { (a, b) } else { (b, a) };
        for t in &topics {
            assert_eq!(parts(&big, t), vec![0, 1], "range: {big:?} / {small:?}");
            assert_eq!(parts(&small, t), vec![2], "range: {big:?} / {small:?}");
        }
        // uniform: 3 and 3.
        let (a, b) = settled_split(broker, &format!("{base}-uniform"), "uniform", &topics).await;
        assert_eq!((a.len(), b.len()), (3, 3), "uniform: {a:?} / {b:?}");
        eprintln!("uniform layout: {a:?} / {b:?}");
    });
    eprintln!("assignors: {:?}", started.elapsed());
}
