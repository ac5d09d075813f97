//! An outbox relay process for the tests that `kill -9` it
//! (`tests/pg_outbox.rs`): [`exactly::postgres::OutboxRelay`] with the
//! arguments given.
//!
//! Usage: `outbox_relay <bootstrap> <postgres> <table> <relay-id>
//! <progress-topic> <rows-per-transaction>`. Prints `committed <rows>
//! <transactions> <txid> <id>` after every Kafka commit and `done ...` after
//! a graceful stop (SIGTERM). `EXACTLY_CRASH_AFTER_COMMITS=k` makes it
//! SIGKILL itself right after its k-th Kafka commit, before anything else.

use exactly::postgres::{OutboxRelay, RelayConfig};
use exactly_protocol_tests::child::side::{
    crash_after_commits, init_tracing_from_env, kill_self, on_sigterm, runtime, say,
};

fn main() {
    // `RUST_LOG=exactly_postgres=debug,...` shows what the process did, on
    // stderr (the test reads stdout).
    init_tracing_from_env();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 6 {
        eprintln!(
            "usage: outbox_relay <bootstrap> <postgres> <table> <relay-id> <progress-topic> <rows-per-txn>"
        );
        std::process::exit(2);
    }
    let crash_after = crash_after_commits();
    let mut cfg = RelayConfig::new(&args[1], &args[0], &args[2], &args[3]);
    cfg.progress_topic = args[4].clone();
    cfg.max_rows_per_transaction = args[5].parse().unwrap_or(100);
    cfg.poll_interval = std::time::Duration::from_millis(20);
    cfg.producer_properties = vec![("linger.ms".into(), "2".into())];
    let relay = match OutboxRelay::new(cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("outbox_relay: {e}");
            std::process::exit(2)
        }
    };
    let rt = runtime();
    let code = rt.block_on(async {
        let shutdown = relay.shutdown_handle();
        on_sigterm(move || shutdown.shutdown());
        let result = relay
            .run(|s| {
                say(&format!(
                    "committed {} {} {} {}",
                    s.rows_published, s.transactions_committed, s.position.txid, s.position.id
                ));
                if crash_after.is_some_and(|k| s.transactions_committed >= k) {
                    // Right after the Kafka commit, before anything else.
                    kill_self();
                }
            })
            .await;
        match result {
            Ok(s) => {
                say(&format!(
                    "done {} {} {} {}",
                    s.rows_published, s.transactions_committed, s.position.txid, s.position.id
                ));
                0
            }
            Err(e) => {
                eprintln!("outbox_relay failed: {e}");
                1
            }
        }
    });
    std::process::exit(code);
}
