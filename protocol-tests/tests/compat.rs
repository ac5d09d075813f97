//! The broker compatibility suite: one lean pass over what exactly promises,
//! against the Apache Kafka release `$EXACTLY_KAFKA_VERSION` selects
//! (`cargo xtask compat [--versions ...]` runs it per version; the matrix
//! and its results are in README.md and docs/KAFKA-BROKER.md).
//!
//! Per transaction version (`suite_tv2`, `suite_tv1`), on a broker of that
//! version whose every connection goes through the chaos proxy:
//!
//! 1. handshake: ApiVersions (KIP-35/KIP-511) and the version the client
//!    picks for each API it speaks; where the broker is older the client
//!    negotiates down (printed as a table, asserted API by API), including
//!    ApiVersions itself (KIP-511's UNSUPPORTED_VERSION retry on 3.x), the
//!    finalized `transaction.version` (KIP-584/KIP-890) and the group
//!    protocol (the classic one on every version: the client does not
//!    implement KIP-848, whatever the broker lists);
//! 2. idempotent produce (KIP-98) through connection cuts: every record
//!    once, in order;
//! 3. transactions: commit, abort and zombie fencing; the producer epoch
//!    shows which transaction protocol ran (KIP-890 part 2 bumps it on every
//!    EndTxn, the v1 protocol keeps it); read_committed sees committed
//!    records only, read_uncommitted sees the aborted ones too (KIP-98);
//! 4. offsets in transactions (KIP-447): committed only with the
//!    transaction, fenced for a stale group generation;
//! 5. a consumer group of two members (classic protocol): all records once,
//!    offsets committed;
//! 6. the exactly-once copy (`exactly::copy`) with random aborts, judged
//!    read_committed;
//! 7. no transaction marker dropped by the broker (KAFKA-20734's log line).
//!
//! Kafka 3.x has no `transaction.version` 2: `suite_tv2` on 3.x shows the
//! harness refuses to format it, then runs the transaction steps on the only
//! protocol 3.x has and asserts the client chose the v1 flow.
//!
//! The tests are `#[ignore]`d in the plain workspace run (the default broker
//! is covered by the other test files); `cargo xtask compat` and
//! `cargo xtask test` (oldest and newest version) run them with `--ignored`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod producer_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use exactly::{check, copy, CopyConfig, Transformed};
use exactly_codec::messages::ApiKey;
use exactly_consumer::{Consumer, Polled, TopicPartition};
use exactly_producer::{ConsumerGroupMetadata, OffsetCommit, Producer, ProducerRecord};
use exactly_protocol_tests::jars::KafkaVersion;
use exactly_protocol_tests::proxy::{ChaosProxy, Faults};
use exactly_protocol_tests::{
    unique_topic, Broker, BrokerConfig, HarnessError, TransactionVersion,
};
use producer_support::*;

fn version() -> KafkaVersion {
    KafkaVersion::selected().unwrap_or_else(|e| panic!("EXACTLY_KAFKA_VERSION: {e}"))
}

/// A broker of the selected version whose advertised address is a chaos
/// proxy in front of it, so that every connection of every client (the
/// bootstrap one and the leaders') goes through the proxy.
struct Setup {
    version: KafkaVersion,
    tv: TransactionVersion,
    broker: Broker,
    proxy: ChaosProxy,
    rt: tokio::runtime::Runtime,
    steps: Vec<(&'static str, Duration)>,
}

impl Setup {
    fn start(tv: TransactionVersion) -> Setup {
        let version = version();
        let t = Instant::now();
        let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy_port = reserved.local_addr().unwrap().port();
        let broker = Broker::start(
            BrokerConfig::with_transaction_version(tv)
                .version(version)
                .property(
                    "advertised.listeners",
                    format!("PLAINTEXT://127.0.0.1:{proxy_port}"),
                ),
        )
        .unwrap_or_else(|e| panic!("Kafka {version} ({tv:?}): {e}"));
        let rt = runtime();
        let proxy = rt
            .block_on(ChaosProxy::start_on(reserved, &broker.address(1)))
            .unwrap();
        Setup {
            version,
            tv,
            broker,
            proxy,
            rt,
            steps: vec![("broker start", t.elapsed())],
        }
    }

    fn bootstrap(&self) -> String {
        self.proxy.addr()
    }

    fn label(&self) -> String {
        format!("Kafka {} {:?}", self.version, self.tv)
    }

    fn step(&mut self, name: &'static str, f: impl FnOnce(&Setup)) {
        let t = Instant::now();
        f(self);
        let took = t.elapsed();
        println!(
            "COMPAT {}: {name} ok in {:.1} s",
            self.label(),
            took.as_secs_f64()
        );
        self.steps.push((name, took));
    }

    fn summary(&self) {
        let total: Duration = self.steps.iter().map(|s| s.1).sum();
        println!(
            "COMPAT {}: all steps passed in {:.1} s ({})",
            self.label(),
            total.as_secs_f64(),
            self.steps
                .iter()
                .map(|(n, d)| format!("{n} {:.1} s", d.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

/// Counts `ApiVersions downgraded` events of the net crate's handshake.
#[derive(Clone, Default)]
struct DowngradeCounter(Arc<AtomicU64>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for DowngradeCounter {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Msg(bool);
        impl tracing::field::Visit for Msg {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                if f.name() == "message" && format!("{v:?}").contains("ApiVersions downgraded") {
                    self.0 = true;
                }
            }
        }
        let mut m = Msg(false);
        event.record(&mut m);
        if m.0 {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Step 1: the handshake and what the client negotiated, API by API.
fn handshake(s: &Setup) {
    use tracing_subscriber::layer::SubscriberExt;
    let downgrades = DowngradeCounter::default();
    let subscriber = tracing_subscriber::registry().with(downgrades.clone());
    // A current-thread runtime: the handshake's events stay on this thread,
    // where the counting subscriber is the default.
    let table = tracing::subscriber::with_default(subscriber, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let client = net_client(&s.bootstrap()).await;
                let conn = client.any_connection().await.unwrap();
                let table = conn.versions().clone();
                client.close();
                table
            })
    });
    let label = s.label();
    println!("COMPAT {label}: API            client   broker   picked");
    let mut down = Vec::new();
    for &(api, client) in exactly_codec::CLIENT_APIS {
        let broker = table.broker_range(api);
        let picked = table.pick_client(api);
        println!(
            "COMPAT {label}: {:<22} {:>2}..{:<3}  {:>8}  {}",
            format!("{api:?}"),
            client.min,
            client.max,
            broker.map_or("absent".to_owned(), |b| format!("{}..{}", b.min, b.max)),
            match &picked {
                Ok(v) if *v < client.max => format!("v{v} (negotiated down from v{})", client.max),
                Ok(v) => format!("v{v}"),
                Err(_) => "unsupported".to_owned(),
            }
        );
        match (broker, picked) {
            (Some(b), Ok(v)) => {
                assert_eq!(v, client.max.min(b.max), "{label}: {api:?}");
                if v < client.max {
                    down.push(format!("{api:?} v{v}<v{}", client.max));
                }
            }
            // Only the admin-side describe APIs may be missing.
            (None, Err(_)) => assert!(
                matches!(
                    api,
                    ApiKey::DescribeProducers | ApiKey::DescribeTransactions
                ),
                "{label}: broker lacks {api:?}"
            ),
            (b, p) => panic!("{label}: {api:?}: broker {b:?}, picked {p:?}"),
        }
    }
    // ApiVersions itself: sent at our newest version; a broker that does
    // not know it answers UNSUPPORTED_VERSION and we retry (KIP-511).
    let ours = exactly_codec::client_versions(ApiKey::ApiVersions)
        .unwrap()
        .max;
    let theirs = table.broker_range(ApiKey::ApiVersions).unwrap().max;
    let n = downgrades.0.load(Ordering::Relaxed);
    println!(
        "COMPAT {label}: ApiVersions: client v{ours}, broker up to v{theirs}, downgrade retries seen: {n}"
    );
    assert_eq!(
        n > 0,
        theirs < ours,
        "{label}: the handshake retries at a lower ApiVersions version exactly when the broker is older"
    );
    // Transaction protocol (KIP-890): the finalized feature level.
    let tv = table.transaction_version();
    let expected = if s.version.offers_transaction_v2() {
        s.tv.level()
    } else {
        0
    };
    println!(
        "COMPAT {label}: finalized transaction.version = {tv} ({})",
        if tv >= 2 {
            "the client runs the KIP-890 v2 flow"
        } else {
            "the client runs the v1 flow (explicit AddPartitionsToTxn)"
        }
    );
    assert_eq!(tv, expected, "{label}");
    if tv >= 2 {
        assert!(
            table.pick_client(ApiKey::EndTxn).unwrap() >= 5,
            "{label}: TV2 needs EndTxn v5"
        );
    }
    // Group protocol: the suite's groups use the classic one (JoinGroup, the
    // default `group.protocol`) on every version. KIP-848's
    // ConsumerGroupHeartbeat is spoken under `group.protocol=consumer`
    // (tested on 4.3.1 in consumer_kip848.rs, not in this suite); 3.9 lists
    // it as early access, 4.0 made it generally available.
    let kip848 = table.broker_range(ApiKey::ConsumerGroupHeartbeat);
    println!(
        "COMPAT {label}: broker lists KIP-848 ConsumerGroupHeartbeat: {} (the client would pick {}); the suite's groups use the classic protocol (JoinGroup v{})",
        kip848.map_or("no".to_owned(), |r| format!("v{}..v{}", r.min, r.max)),
        table
            .pick_client(ApiKey::ConsumerGroupHeartbeat)
            .map_or_else(|e| format!("none: {e}"), |v| format!("v{v}")),
        table.pick_client(ApiKey::JoinGroup).unwrap()
    );
    assert!(
        exactly_codec::client_versions(ApiKey::ConsumerGroupHeartbeat).is_some(),
        "{label}: the client speaks KIP-848's heartbeat"
    );
    if s.version.major < 4 {
        assert!(
            !down.is_empty(),
            "{label}: a 3.x broker is older than the client on some API"
        );
    }
    println!("COMPAT {label}: negotiated down: {down:?}");
}

/// Step 2: idempotent produce while every connection is cut after 0.3-0.9 s.
fn idempotent_through_cuts(s: &Setup) {
    const N: u64 = 20_000;
    let topic = unique_topic("compat-idem");
    s.broker.create_topic(&topic, 3).unwrap();
    let label = s.label();
    let cuts = s.rt.block_on(async {
        let p = producer(
            &s.bootstrap(),
            &[
                ("acks", "all"),
                ("enable.idempotence", "true"),
                ("linger.ms", "5"),
                ("batch.size", "4096"),
                ("request.timeout.ms", "10000"),
                ("retry.backoff.ms", "20"),
            ],
        )
        .await;
        s.proxy.set_faults(Faults {
            cut_after: Some((300, 900)),
            delay: Duration::from_millis(10),
            ..Faults::default()
        });
        s.proxy.cut_all();
        let cuts_before = s.proxy.cuts();
        let span = Duration::from_secs(5);
        let from = tokio::time::Instant::now();
        let mut futures = Vec::with_capacity(N as usize);
        for i in 0..N {
            if i % 500 == 0 {
                tokio::time::sleep_until(from + span.mul_f64(i as f64 / N as f64)).await;
            }
            let v = i.to_string();
            futures.push(
                p.send(
                    ProducerRecord::new(&topic)
                        .with_key(v.as_bytes())
                        .with_value(v.as_bytes()),
                )
                .await
                .unwrap(),
            );
        }
        p.flush().await.unwrap();
        for (i, f) in futures.into_iter().enumerate() {
            f.await
                .unwrap_or_else(|e| panic!("{label}: record {i}: {e}"));
        }
        let cuts = s.proxy.cuts() - cuts_before;
        s.proxy.set_faults(Faults::default());
        p.close(Duration::from_secs(10)).await.unwrap();
        cuts
    });
    let verdict =
        s.rt.block_on(check::verify_numbered(
            &s.bootstrap(),
            &topic,
            3,
            N,
            Duration::from_secs(30),
            |_| {},
        ))
        .unwrap();
    println!("COMPAT {label}: {N} idempotent records through {cuts} connection cuts: {verdict:?}");
    assert!(
        cuts >= 3,
        "{label}: only {cuts} cuts: the chaos did not bite"
    );
    assert!(verdict.is_exactly_once_in_order(), "{label}: {verdict:?}");
}

async fn send_numbered(p: &Producer, topic: &str, range: std::ops::Range<u64>) {
    let mut fs = Vec::new();
    for i in range {
        let v = i.to_string();
        fs.push(
            p.send(ProducerRecord::new(topic).with_value(v.as_bytes()))
                .await
                .unwrap(),
        );
    }
    p.flush().await.unwrap();
    for f in fs {
        f.await.unwrap();
    }
}

/// Records of `topic` (all partitions) read with `isolation`, until `want`
/// arrived or nothing came for 3 s.
async fn count_records(bootstrap: &str, topic: &str, partitions: i32, isolation: &str) -> usize {
    let mut c = Consumer::from_properties([
        ("bootstrap.servers", bootstrap),
        ("isolation.level", isolation),
        ("auto.offset.reset", "earliest"),
    ])
    .await
    .unwrap();
    c.assign(
        &(0..partitions)
            .map(|p| TopicPartition::new(topic, p))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let mut n = 0;
    let mut idle_since = Instant::now();
    while idle_since.elapsed() < Duration::from_secs(3) {
        if let Polled::Records(rs) = c.poll(Duration::from_millis(200)).await.unwrap() {
            if !rs.is_empty() {
                n += rs.len();
                idle_since = Instant::now();
            }
        }
    }
    n
}

/// Step 3: commit, abort, zombie fencing, read_committed; the epoch shows
/// the transaction protocol that ran.
fn transactions(s: &Setup) {
    const K: u64 = 100;
    let label = s.label();
    let topic = unique_topic("compat-txn");
    s.broker.create_topic(&topic, 2).unwrap();
    let txn_id = unique_topic("compat-txn-id");
    let broker_tv = if s.version.offers_transaction_v2() {
        s.tv
    } else {
        TransactionVersion::V1
    };
    s.rt.block_on(async {
        let check = net_client(&s.bootstrap()).await;
        let old = producer(&s.bootstrap(), &[("transactional.id", &txn_id)]).await;
        old.init_transactions().await.unwrap();
        let (_, pid0, epoch0) = describe_transaction(&check, &txn_id).await;
        // Transactions 0..4: even ones commit, odd ones abort. The epoch
        // after the first commit tells the protocol: KIP-890 v2 bumps it on
        // every EndTxn, the v1 flow keeps it across a commit (our client
        // bumps it after each abort instead, KIP-360, so that a late request
        // of the aborted transaction is fenced).
        let mut after_first = (pid0, epoch0);
        for t in 0..4u64 {
            old.begin_transaction().await.unwrap();
            send_numbered(&old, &topic, t * K..(t + 1) * K).await;
            if t % 2 == 0 {
                old.commit_transaction().await.unwrap();
            } else {
                old.abort_transaction().await.unwrap();
            }
            if t == 0 {
                let (_, pid, epoch) = describe_transaction(&check, &txn_id).await;
                after_first = (pid, epoch);
            }
        }
        let (state, pid1, epoch1) = describe_transaction(&check, &txn_id).await;
        println!(
            "COMPAT {label}: producer {pid0} epoch {epoch0}; after one commit {after_first:?}; after 2 commits and 2 aborts producer {pid1} epoch {epoch1} ({state})"
        );
        match broker_tv {
            TransactionVersion::V2 => assert!(
                after_first.0 != pid0 || after_first.1 > epoch0,
                "{label}: KIP-890 v2 bumps the epoch on every EndTxn"
            ),
            TransactionVersion::V1 => {
                assert_eq!(
                    after_first,
                    (pid0, epoch0),
                    "{label}: the v1 flow keeps the epoch across a commit"
                );
                assert_eq!(
                    (pid1, epoch1),
                    (pid0, epoch0 + 2),
                    "{label}: v1 flow: one client-side bump per abort (KIP-360)"
                );
                if s.tv == TransactionVersion::V2 {
                    println!(
                        "COMPAT {label}: transaction.version 2 asked, Kafka {} offers only the v1 protocol: the client ran the v1 flow (epoch kept across a commit)",
                        s.version
                    );
                }
            }
        }
        // Transaction 4: a zombie. A second producer with the same id fences
        // it; its open transaction is aborted, its commit fails.
        old.begin_transaction().await.unwrap();
        send_numbered(&old, &topic, 4 * K..5 * K).await;
        let new = producer(&s.bootstrap(), &[("transactional.id", &txn_id)]).await;
        new.init_transactions().await.unwrap();
        let e = old.commit_transaction().await.unwrap_err();
        println!("COMPAT {label}: the fenced zombie's commit: {e}");
        assert!(e.is_fatal() || e.is_abortable(), "{label}: {e:?}");
        if !e.is_fatal() {
            assert!(old.abort_transaction().await.unwrap_err().is_fatal());
        }
        assert!(old.begin_transaction().await.unwrap_err().is_fatal(), "{label}");
        // Transaction 5: the new producer commits.
        new.begin_transaction().await.unwrap();
        send_numbered(&new, &topic, 5 * K..6 * K).await;
        new.commit_transaction().await.unwrap();
        new.close(Duration::from_secs(10)).await.unwrap();
        let _ = old.close(Duration::from_secs(2)).await;
        check.close();
    });
    let committed = |v: u64| matches!(v / K, 0 | 2 | 5);
    let verdict =
        s.rt.block_on(check::verify_selected(
            &s.bootstrap(),
            &topic,
            2,
            6 * K,
            committed,
            Duration::from_secs(30),
            |_| {},
        ))
        .unwrap();
    println!("COMPAT {label}: read_committed: {verdict:?}");
    assert!(verdict.is_exactly_once(), "{label}: {verdict:?}");
    let uncommitted =
        s.rt.block_on(count_records(&s.bootstrap(), &topic, 2, "read_uncommitted"));
    println!("COMPAT {label}: read_uncommitted sees {uncommitted} records (aborted ones too)");
    assert_eq!(uncommitted as u64, 6 * K, "{label}");
}

/// Step 4: offsets sent to a transaction (KIP-447).
fn offsets_in_transactions(s: &Setup) {
    let label = s.label();
    let input = unique_topic("compat-off-in");
    let output = unique_topic("compat-off-out");
    s.broker.create_topic(&input, 2).unwrap();
    s.broker.create_topic(&output, 1).unwrap();
    let group = unique_topic("compat-off-group");
    let txn_id = unique_topic("compat-off-id");
    s.rt.block_on(async {
        let check = net_client(&s.bootstrap()).await;
        let p = producer(&s.bootstrap(), &[("transactional.id", &txn_id)]).await;
        let meta = ConsumerGroupMetadata::new(&group);
        let offsets = |a: i64, b: i64| {
            [(0, a), (1, b)].map(|(part, offset)| OffsetCommit {
                partition: exactly_producer::TopicPartition::new(&input, part),
                offset,
                leader_epoch: None,
                metadata: None,
            })
        };
        p.init_transactions().await.unwrap();
        p.begin_transaction().await.unwrap();
        send_numbered(&p, &output, 0..10).await;
        p.send_offsets_to_transaction(offsets(10, 20), &meta)
            .await
            .unwrap();
        assert_eq!(
            committed_offsets(&check, &group, &input, &[0, 1], true).await,
            vec![Err(88), Err(88)],
            "{label}: UNSTABLE_OFFSET_COMMIT while the transaction is open"
        );
        p.commit_transaction().await.unwrap();
        assert_eq!(
            stable_offsets(&check, &group, &input, &[0, 1]).await,
            vec![Ok(10), Ok(20)],
            "{label}"
        );
        p.begin_transaction().await.unwrap();
        p.send_offsets_to_transaction(offsets(30, 40), &meta)
            .await
            .unwrap();
        p.abort_transaction().await.unwrap();
        assert_eq!(
            stable_offsets(&check, &group, &input, &[0, 1]).await,
            vec![Ok(10), Ok(20)],
            "{label}: aborted offsets discarded"
        );
        // A generation the group never had is fenced (KIP-447).
        p.begin_transaction().await.unwrap();
        let zombie = ConsumerGroupMetadata {
            generation_id: 7,
            member_id: "gone-member".into(),
            ..ConsumerGroupMetadata::new(&group)
        };
        let e = p
            .send_offsets_to_transaction(offsets(50, 60), &zombie)
            .await
            .unwrap_err();
        println!("COMPAT {label}: stale group generation: {e}");
        assert!(e.is_abortable(), "{label}: {e:?}");
        p.abort_transaction().await.unwrap();
        p.close(Duration::from_secs(10)).await.unwrap();
        check.close();
    });
}

/// Step 5: two members of a classic consumer group share a topic.
fn consumer_group(s: &Setup) {
    const N: u64 = 2_000;
    let label = s.label();
    let topic = unique_topic("compat-group");
    s.broker.create_topic(&topic, 4).unwrap();
    let group = unique_topic("compat-group-g");
    s.rt.block_on(check::produce_numbered(&s.bootstrap(), &topic, N, |_| {}))
        .unwrap();
    let total = Arc::new(AtomicU64::new(0));
    let seen: Vec<(usize, BTreeSet<(i32, i64)>)> = s.rt.block_on(async {
        let member = |idx: usize| {
            let bootstrap = s.bootstrap();
            let topic = topic.clone();
            let group = group.clone();
            let total = total.clone();
            tokio::spawn(async move {
                let mut c = Consumer::from_properties([
                    ("bootstrap.servers", bootstrap.as_str()),
                    ("group.id", group.as_str()),
                    ("auto.offset.reset", "earliest"),
                    ("enable.auto.commit", "false"),
                    ("max.poll.records", "100"),
                ])
                .await
                .unwrap();
                c.subscribe(&[&topic]).unwrap();
                let mut got = BTreeSet::new();
                let deadline = Instant::now() + Duration::from_secs(60);
                while total.load(Ordering::SeqCst) < N {
                    assert!(Instant::now() < deadline, "member {idx} timed out");
                    match c.poll(Duration::from_millis(100)).await.unwrap() {
                        Polled::Records(rs) if rs.is_empty() => {}
                        Polled::Records(rs) => {
                            for r in &rs {
                                assert!(got.insert((r.partition(), r.offset())));
                            }
                            total.fetch_add(rs.len() as u64, Ordering::SeqCst);
                            // Slow enough for the second member to join.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            c.commit().await.unwrap();
                        }
                        Polled::Rebalance(_) => {}
                    }
                }
                c.commit().await.unwrap();
                c.close().await.unwrap();
                (idx, got)
            })
        };
        let a = member(0);
        let b = member(1);
        vec![a.await.unwrap(), b.await.unwrap()]
    });
    let mut all: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for (idx, got) in &seen {
        println!("COMPAT {label}: member {idx} read {} records", got.len());
        for k in got {
            *all.entry(*k).or_default() += 1;
        }
    }
    assert_eq!(all.len() as u64, N, "{label}: every record read");
    assert!(
        all.values().all(|&n| n == 1),
        "{label}: a record was read by both members"
    );
    assert!(
        seen.iter().all(|(_, got)| !got.is_empty()),
        "{label}: both members got partitions"
    );
    let committed = s.rt.block_on(async {
        let check = net_client(&s.bootstrap()).await;
        let c = committed_offsets(&check, &group, &topic, &[0, 1, 2, 3], false).await;
        check.close();
        c
    });
    let sum: i64 = committed.iter().map(|r| *r.as_ref().unwrap()).sum();
    assert_eq!(sum as u64, N, "{label}: committed offsets {committed:?}");
}

/// Step 6: the exactly-once copy with a third of the transactions aborted.
fn exactly_once_copy(s: &Setup) {
    const N: u64 = 4_000;
    let label = s.label();
    let input = unique_topic("compat-copy-in");
    let output = unique_topic("compat-copy-out");
    s.broker.create_topic(&input, 2).unwrap();
    s.broker.create_topic(&output, 3).unwrap();
    s.rt.block_on(check::produce_numbered(&s.bootstrap(), &input, N, |_| {}))
        .unwrap();
    let cfg = CopyConfig {
        records_per_transaction: 200,
        abort_fraction: 1.0 / 3.0,
        label: true,
        stop_after: Some(N),
        idle_timeout: Duration::from_secs(30),
        ..CopyConfig::new(
            s.bootstrap(),
            &input,
            &output,
            unique_topic("compat-copy-group"),
            unique_topic("compat-copy-txn"),
        )
    };
    let stats =
        s.rt.block_on(copy(&cfg, Transformed::identity, |_| {}))
            .unwrap_or_else(|e| panic!("{label}: copy: {e}"));
    assert_eq!(stats.committed_records, N, "{label}: {stats:?}");
    assert!(
        stats.transactions_aborted > 0,
        "{label}: the copy must abort"
    );
    let verdict =
        s.rt.block_on(check::verify_numbered(
            &s.bootstrap(),
            &output,
            3,
            N,
            Duration::from_secs(30),
            |_| {},
        ))
        .unwrap();
    println!("COMPAT {label}: copy {stats:?}; read_committed {verdict:?}");
    assert!(verdict.is_exactly_once(), "{label}: {verdict:?}");
}

/// Step 7: the broker logged no dropped transaction markers.
fn no_dropped_markers(s: &Setup) {
    let log = s.broker.data_dir(1).parent().unwrap().join("broker.log");
    let text = std::fs::read_to_string(&log).unwrap();
    let drops: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("likely deleted already"))
        .collect();
    assert!(
        drops.is_empty(),
        "{}: the transaction coordinator dropped markers (KAFKA-20734: a leaderless partition is taken for a deleted topic): {drops:?}",
        s.label()
    );
}

fn suite(tv: TransactionVersion) {
    let v = version();
    if tv == TransactionVersion::V2 && !v.offers_transaction_v2() {
        // 3.x: the harness refuses to format transaction.version=2 ...
        let refused = Broker::start(BrokerConfig::with_transaction_version(tv).version(v));
        match refused {
            Err(HarnessError::Version { why, .. }) => {
                println!("COMPAT Kafka {v} V2: not offered: {why}");
            }
            other => panic!("Kafka {v}: TV2 must be refused, got {other:?}"),
        }
        // ... and the client, asked for nothing but transactions, runs the
        // v1 flow on what 3.x has (asserted in `transactions`).
        let mut s = Setup::start(TransactionVersion::V1);
        s.tv = TransactionVersion::V2;
        s.step("handshake", handshake);
        s.step("transactions (v1 flow)", transactions);
        s.step("no dropped markers", no_dropped_markers);
        s.summary();
        return;
    }
    let mut s = Setup::start(tv);
    s.step("handshake", handshake);
    s.step("idempotent produce through cuts", idempotent_through_cuts);
    s.step("transactions", transactions);
    s.step("offsets in transactions", offsets_in_transactions);
    s.step("consumer group", consumer_group);
    s.step("exactly-once copy", exactly_once_copy);
    s.step("no dropped markers", no_dropped_markers);
    s.summary();
}

#[test]
#[ignore = "run per Kafka version by `cargo xtask compat` (EXACTLY_KAFKA_VERSION selects it)"]
fn suite_tv2() {
    suite(TransactionVersion::V2);
}

#[test]
#[ignore = "run per Kafka version by `cargo xtask compat` (EXACTLY_KAFKA_VERSION selects it)"]
fn suite_tv1() {
    suite(TransactionVersion::V1);
}
