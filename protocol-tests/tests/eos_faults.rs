//! Exactly-once under broker faults (RELIABILITY.md T8), each on a private
//! broker so the faults touch no other test.

use std::time::{Duration, Instant};

use exactly::{Producer, ProducerRecord};
use exactly_protocol_tests::{unique_topic, Broker, BrokerConfig, TransactionVersion};

fn runtime() -> tokio::runtime::Runtime {
    // `RUST_LOG=...` shows the clients' tracing (debugging a fault run).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    tokio::runtime::Runtime::new().expect("tokio runtime")
}

/// T8: the coordinator is unavailable. The producer is created and
/// `init_transactions` called while the broker is down; the broker comes
/// back, and init completes without a fatal error. Then the broker restarts
/// during a transaction's commit, and the next transactions succeed.
#[test]
fn t8_coordinator_unavailable_then_recovers() {
    for tv in TransactionVersion::ALL {
        let broker = Broker::start(BrokerConfig::with_transaction_version(tv)).expect("broker");
        let topic = unique_topic("t8");
        broker.create_topic(&topic, 1).expect("topic");
        broker.kill9(1).expect("kill -9");
        let bootstrap = broker.bootstrap();
        let txn_id = unique_topic("t8-txn");
        let t = Instant::now();
        let init = std::thread::spawn(move || {
            let rt = runtime();
            rt.block_on(async {
                let producer = Producer::from_properties([
                    ("bootstrap.servers", bootstrap.as_str()),
                    ("transactional.id", txn_id.as_str()),
                    ("max.block.ms", "120000"),
                ])
                .await?;
                producer.init_transactions().await?;
                Ok::<_, exactly::ProducerError>(producer)
            })
            .map(|p| (p, rt))
        });
        std::thread::sleep(Duration::from_secs(3));
        broker.restart(1).expect("restart");
        let (producer, prt) = init
            .join()
            .expect("init thread")
            .unwrap_or_else(|e| panic!("{tv:?}: init while the broker was down: {e}"));
        println!(
            "T8 {tv:?}: init completed {:.1} s after the client started",
            t.elapsed().as_secs_f64()
        );
        let mut committed = 0;
        for round in 0..3 {
            prt.block_on(async {
                producer.begin_transaction().await?;
                for i in 0..100 {
                    let v = format!("{round}-{i}");
                    producer
                        .send(ProducerRecord::new(&topic).with_value(v.as_bytes()))
                        .await?;
                }
                producer.flush().await?;
                Ok::<_, exactly::ProducerError>(())
            })
            .unwrap_or_else(|e| panic!("{tv:?}: round {round}: {e}"));
            if round == 1 {
                broker.kill9(1).expect("kill -9 before commit");
                std::thread::sleep(Duration::from_secs(1));
                broker.restart(1).expect("restart");
            }
            match prt.block_on(producer.commit_transaction()) {
                Ok(()) => committed += 100,
                Err(e) if e.is_abortable() => {
                    prt.block_on(producer.abort_transaction()).expect("abort");
                }
                Err(e) => panic!("{tv:?}: round {round}: fatal after a broker restart: {e}"),
            }
        }
        assert!(committed >= 200, "{tv:?}: only {committed} committed");
        let java = broker
            .java()
            .verifiable_consumer(
                &topic,
                &unique_topic("judge"),
                committed,
                &[("isolation.level", "read_committed")],
                Duration::from_secs(120),
            )
            .expect("judge");
        assert_eq!(
            java.len(),
            committed,
            "{tv:?}: exactly the committed records"
        );
        prt.block_on(producer.close(Duration::from_secs(10)))
            .expect("close");
    }
}
