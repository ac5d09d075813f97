//! The transactional producer's tracing stays bounded over many
//! transactions. Under `transaction.version` 2 every EndTxn bumps the epoch,
//! so a producer that `record`ed its identity on its long-lived span again at
//! each change made fmt-style subscribers append one more
//! `producer_id=.. epoch=..` pair to that span's formatted fields per
//! transaction: every log line grew with the producer's age (and so did the
//! subscriber's memory). Each line must name one identity, the current one.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use exactly::{Producer, ProducerRecord};
use exactly_protocol_tests::{unique_topic, Broker, TransactionVersion};

/// A `MakeWriter` into a shared buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("capture lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[test]
fn producer_log_lines_name_one_identity_however_many_transactions() {
    const TRANSACTIONS: i16 = 6;
    let broker = Broker::shared(TransactionVersion::V2).unwrap_or_else(|e| panic!("{e}"));
    let topic = unique_topic("trace");
    broker.create_topic(&topic, 1).expect("topic");
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "warn,exactly_producer=trace",
        ))
        .with_ansi(false)
        .with_writer(capture.clone())
        .finish();
    // The driver task runs on this thread (current-thread runtime), so the
    // thread's default subscriber sees its spans and events.
    let _guard = tracing::subscriber::set_default(subscriber);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let txn_id = unique_topic("trace-txn");
    rt.block_on(async {
        let p = Producer::from_properties([
            ("bootstrap.servers", broker.bootstrap().as_str()),
            ("transactional.id", txn_id.as_str()),
        ])
        .await
        .expect("producer");
        p.init_transactions().await.expect("init");
        for i in 0..TRANSACTIONS {
            p.begin_transaction().await.expect("begin");
            let v = format!("v{i}");
            p.send(ProducerRecord::new(&topic).with_value(v.as_bytes()))
                .await
                .expect("send");
            p.commit_transaction().await.expect("commit");
        }
        // One more transaction, logged under the last identity.
        p.begin_transaction().await.expect("begin");
        p.send(ProducerRecord::new(&topic).with_value(b"last"))
            .await
            .expect("send");
        p.flush().await.expect("flush");
        p.commit_transaction().await.expect("commit");
        p.close(Duration::from_secs(10)).await.expect("close");
    });
    drop(_guard);
    let text = String::from_utf8(capture.0.lock().expect("lock").clone()).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() > 50, "too little logged: {} lines", lines.len());
    let mut epochs_seen = std::collections::BTreeSet::new();
    for line in &lines {
        let n = line.matches("epoch=").count();
        assert!(n <= 1, "a line names {n} epochs: {line}");
        if let Some(rest) = line.split("epoch=").nth(1) {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(e) = digits.parse::<i16>() {
                epochs_seen.insert(e);
            }
        }
    }
    // Every identity the producer went through shows up (so the check
    // above looked at lines that do carry an identity): epochs 0 to
    // TRANSACTIONS + 1 under tv2 (one bump per commit).
    let want: std::collections::BTreeSet<i16> = (0..=TRANSACTIONS + 1).collect();
    assert_eq!(epochs_seen, want, "epochs in the log");
    // The requests of the last transaction are logged under its identity.
    let last_produce = lines
        .iter()
        .rev()
        .find(|l| l.contains("req=Produce"))
        .expect("a logged Produce request");
    assert!(
        last_produce.contains(&format!("epoch={TRANSACTIONS}}}")),
        "{last_produce}"
    );
}
