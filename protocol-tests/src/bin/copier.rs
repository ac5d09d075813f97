//! A copier process for reliability tests that must `kill -9` the copier
//! itself (RELIABILITY.md T3): runs `exactly::copy` with the arguments
//! given and prints one line per finished transaction
//! (`committed <records> <transactions> <aborted>`), so a test can kill it
//! at a chosen point of progress.
//!
//! With `EXACTLY_TXN_LOG=<path>`, it also appends each transaction's outcome
//! to that file as it ends (`exactly::oracle::TxnLog::lines`: `committed
//! <writer> <seq> <records>` / `aborted <writer> <seq>`), for the oracle's
//! aborted-visible and torn checks across kills.
//!
//! Usage: `copier <bootstrap> <input> <output> <group> <transactional.id>
//! <records-per-transaction> <abort-fraction> <seed> <idle-secs>`

use std::io::Write;
use std::time::Duration;

use exactly::{copy, CopyConfig, Transformed};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 9 {
        eprintln!("usage: copier <bootstrap> <input> <output> <group> <transactional.id> <per-txn> <abort-fraction> <seed> <idle-secs>");
        std::process::exit(2);
    }
    let num = |i: usize| -> f64 {
        args[i].parse().unwrap_or_else(|_| {
            eprintln!("argument {i} is not a number: {}", args[i]);
            std::process::exit(2)
        })
    };
    let cfg = CopyConfig {
        records_per_transaction: num(5) as usize,
        abort_fraction: num(6),
        label: true,
        seed: num(7) as u64,
        idle_timeout: Duration::from_secs(num(8) as u64),
        // Static membership (KIP-345): a restarted copier takes the killed
        // one's place at once instead of waiting out its session.
        consumer_properties: vec![
            ("group.instance.id".into(), args[4].clone()),
            ("session.timeout.ms".into(), "10000".into()),
        ],
        ..CopyConfig::new(&args[0], &args[1], &args[2], &args[3], &args[4])
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokio: {e}");
            std::process::exit(1)
        }
    };
    let mut txn_log = std::env::var_os("EXACTLY_TXN_LOG").and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(|e| eprintln!("EXACTLY_TXN_LOG {p:?}: {e}"))
            .ok()
    });
    let result = rt.block_on(copy(&cfg, Transformed::identity, |s| {
        if let Some(f) = &mut txn_log {
            for l in s.log.lines() {
                let _ = writeln!(f, "{l}");
            }
            let _ = f.flush();
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "committed {} {} {} {}",
            s.committed_records,
            s.transactions_committed,
            s.transactions_aborted,
            s.aborted_on_error
        );
        let _ = out.flush();
    }));
    match result {
        Ok(s) => println!(
            "done {} {} {} {}",
            s.committed_records,
            s.transactions_committed,
            s.transactions_aborted,
            s.aborted_on_error
        ),
        Err(e) => {
            eprintln!("copy failed: {e}");
            std::process::exit(1)
        }
    }
}
