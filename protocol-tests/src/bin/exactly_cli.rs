//! The `exactly` command-line tool, built inside the test package so that
//! real-broker tests (`tests/admin_cli.rs`) can run it as a process
//! (`CARGO_BIN_EXE_exactly_cli`); the same code as `crates/exactly`'s binary.

fn main() -> std::process::ExitCode {
    exactly::cli::main()
}
