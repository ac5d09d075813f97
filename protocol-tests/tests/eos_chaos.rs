//! RELIABILITY.md T5: a transactional exactly-once copy (`exactly::copy`)
//! whose every connection goes through the chaos proxy: connections cut
//! after a random 0.5-1.5 s, plus two hold-and-release windows in which the
//! proxy holds every client-to-broker byte past the clients' request timeout
//! and delivers it only after they gave up (the KAFKA-17754 case: a request
//! the client counted as lost lands late). Under both transaction versions,
//! judged by our read_committed consumer and the Java `VerifiableConsumer`,
//! and by the intent headers (`exactly::oracle`): aborted-visible must be 0,
//! not only the set of values clean.
//!
//! `EXACTLY_EOS_RECORDS` scales the record count (default 50,000 here, half
//! of T2's).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use exactly::{check, copy, CopyConfig, CopyError, CopyStats, Transformed};
use exactly_protocol_tests::proxy::{ChaosProxy, Faults};
use exactly_protocol_tests::{judge, unique_topic, Broker, BrokerConfig, TransactionVersion};

fn records() -> u64 {
    std::env::var("EXACTLY_EOS_RECORDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(50_000, |n| n / 2)
}

/// The clients' request timeout; each hold lasts longer than it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(4);
const HOLD: Duration = Duration::from_secs(6);

/// Waits until `progress` reaches `target` or the copy ended (then panics
/// with its outcome), or `limit` passed.
async fn wait_progress(
    progress: &AtomicU64,
    target: u64,
    copier: &mut tokio::task::JoinHandle<Result<CopyStats, CopyError>>,
    limit: Duration,
) {
    let deadline = Instant::now() + limit;
    while progress.load(Ordering::Relaxed) < target {
        if copier.is_finished() {
            let outcome = copier.await.map(|r| r.map_err(|e| e.to_string()));
            panic!("the copy ended before {target} records: {outcome:?}");
        }
        assert!(
            Instant::now() < deadline,
            "no progress to {target} within {limit:?} (at {})",
            progress.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn t5(tv: TransactionVersion) {
    let n = records();
    // The broker advertises the proxy's address: every connection of every
    // client (bootstrap, leaders, coordinators) goes through the proxy.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").expect("reserve a port");
    let proxy_port = reserved.local_addr().expect("port").port();
    let broker = Broker::start(BrokerConfig::with_transaction_version(tv).property(
        "advertised.listeners",
        format!("PLAINTEXT://127.0.0.1:{proxy_port}"),
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let input = unique_topic("t5-in");
    let output = unique_topic("t5-out");
    broker.create_topic(&input, 2).expect("input");
    broker.create_topic(&output, 3).expect("output");
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let t = Instant::now();
    // The proxy outlives the copy: the judges reach the broker through it.
    let proxy = rt
        .block_on(ChaosProxy::start_on(reserved, &broker.address(1)))
        .expect("proxy");
    let (stats, cuts, holds) = rt.block_on(async {
        check::produce_numbered(&proxy.addr(), &input, n, |_| {})
            .await
            .expect("produce input");
        let timeout = REQUEST_TIMEOUT.as_millis().to_string();
        let props = |extra: &[(&str, &str)]| {
            [("request.timeout.ms", timeout.as_str())]
                .iter()
                .chain(extra)
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>()
        };
        let cfg = CopyConfig {
            records_per_transaction: 500,
            abort_fraction: 1.0 / 3.0,
            label: true,
            stop_after: Some(n),
            idle_timeout: Duration::from_secs(120),
            consumer_properties: props(&[("default.api.timeout.ms", "120000")]),
            producer_properties: props(&[("max.block.ms", "120000")]),
            ..CopyConfig::new(
                proxy.addr(),
                &input,
                &output,
                unique_topic("t5-group"),
                unique_topic("t5-txn"),
            )
        };
        let progress = Arc::new(AtomicU64::new(0));
        let p = progress.clone();
        let mut copier = tokio::spawn(async move {
            copy(&cfg, Transformed::identity, move |s| {
                p.store(s.committed_records, Ordering::Relaxed);
            })
            .await
        });
        let chaos = Faults {
            cut_after: Some((500, 1500)),
            delay: Duration::from_millis(5),
            ..Faults::default()
        };
        proxy.set_faults(chaos.clone());
        proxy.cut_all();
        let mut holds = Vec::new();
        for at in [n * 3 / 10, n * 6 / 10] {
            wait_progress(&progress, at, &mut copier, Duration::from_secs(300)).await;
            let before = progress.load(Ordering::Relaxed);
            let late_before = proxy.late_deliveries();
            // Connections opened from now on are not cut (a cut would drop
            // the held bytes): they time out on the client side instead.
            proxy.set_faults(Faults {
                hold: true,
                cut_after: None,
                ..chaos.clone()
            });
            tokio::time::sleep(HOLD).await;
            proxy.set_faults(chaos.clone());
            proxy.release();
            let released = Instant::now();
            // Recovery: the next commit after the release.
            let after = progress.load(Ordering::Relaxed);
            wait_progress(&progress, after + 1, &mut copier, Duration::from_secs(300)).await;
            holds.push((
                before,
                released.elapsed(),
                proxy.late_deliveries() - late_before,
            ));
        }
        let stats = copier.await.expect("copy task").expect("copy");
        (stats, proxy.cuts(), holds)
    });
    proxy.set_faults(Faults::default());
    println!(
        "T5 {tv:?}: {n} records through {cuts} connection cuts and two {HOLD:?} holds \
         (committed records at the hold, recovery to the next commit, requests delivered late) {holds:?}; {stats:?}; {:.1} s",
        t.elapsed().as_secs_f64()
    );
    assert!(cuts >= 5, "only {cuts} cuts: the chaos did not bite");
    // Requests the clients gave up on during each hold (their connections
    // closed on timeout) were delivered after the release.
    let late: Vec<u64> = holds.iter().map(|h| h.2).collect();
    assert!(
        late.iter().all(|&l| l > 0),
        "each hold must deliver requests the clients gave up on: {late:?}"
    );
    assert_eq!(stats.committed_records, n);
    // The deliberate aborts were logged (so aborted-visible 0 means something).
    assert!(
        !stats.log.aborted.is_empty()
            && stats.log.committed.len() as u64 == stats.transactions_committed,
        "T5 {tv:?}: transaction log {} committed, {} aborted",
        stats.log.committed.len(),
        stats.log.aborted.len()
    );
    // Intent headers and the copy's log: aborted-visible 0 (KAFKA-17754),
    // no torn transaction, input order, besides the set of values.
    judge::exactly_once_copied(
        &broker,
        &rt,
        &output,
        3,
        n,
        &stats.log,
        &format!("T5 {tv:?}"),
    );
}

#[test]
fn t5_copy_through_cuts_and_hold_and_release_tv2() {
    t5(TransactionVersion::V2);
}

#[test]
fn t5_copy_through_cuts_and_hold_and_release_tv1() {
    t5(TransactionVersion::V1);
}
