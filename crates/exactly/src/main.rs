//! `exactly`: the command-line tool of the exactly Kafka client — kcat's and
//! `kafka-transactions.sh`'s jobs without a JVM.
//!
//! ```text
//! exactly produce -t in --count 100000
//! exactly consume in -e -J
//! exactly txn find-hanging --topic in
//! exactly copy --input in --output out --group copier --transactional-id copier-1
//! exactly verify --topic out --partitions 3 --count 100000
//! ```
//!
//! `exactly --help` lists the subcommands and exit codes; each subcommand's
//! `--help` has an example. `RUST_LOG=exactly=debug` (or any `tracing`
//! filter) shows the clients' spans.

fn main() -> std::process::ExitCode {
    exactly::cli::main()
}
