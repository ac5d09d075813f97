//! The null broker (`src/null_broker.rs`) as a process of its own, so that
//! a client of another project (rust-rdkafka in `benches/peers`) can be
//! measured against it exactly as ours is (`cargo xtask bench cpu`).
//!
//! ```sh
//! cargo run --release -p exactly-benches --example null_broker -- [partitions] [cpu]
//! ```
//!
//! Prints `addr=HOST:PORT` once it listens (every topic has `partitions`
//! partitions, 3 by default; its thread is pinned to `cpu` when given),
//! then serves until its standard input closes or gives a line, and prints
//! `records=.. end_offsets=.. produce_requests=.. broker_cpu_s=..` before it
//! exits. Between runs a client may write a line to get the counts so far
//! (the broker keeps serving until EOF).

use std::io::{BufRead, Write};

use exactly_benches::null_broker::NullBroker;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let partitions: i32 = args.first().map_or(3, |a| a.parse().expect("partitions"));
    let cpu: Option<usize> = args.get(1).map(|a| a.parse().expect("cpu"));
    let broker = NullBroker::start(partitions, cpu).expect("null broker");
    let report = |b: &NullBroker| {
        println!(
            "records={} end_offsets={} produce_requests={} broker_cpu_s={:.3}",
            b.records(),
            b.end_offsets_total(),
            b.produce_requests(),
            b.cpu().as_secs_f64()
        );
        let _ = std::io::stdout().flush();
    };
    println!("addr={}", broker.addr());
    let _ = std::io::stdout().flush();
    let stdin = std::io::stdin();
    let mut line = String::new();
    loop {
        line.clear();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => report(&broker),
        }
    }
    report(&broker);
    let _ = broker.stop();
}
