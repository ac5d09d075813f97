//! Deterministic simulation of the core against the simulated broker of
//! `exactly-testkit` (`exactly_testkit::sim`). `EXACTLY_SIM_SCHEDULES`
//! (default 10000) and `EXACTLY_SIM_SEED` (default 0: the first seed) choose
//! the schedules; a failing seed is printed and can be re-run alone with
//! `EXACTLY_SIM_SEED=<seed> EXACTLY_SIM_SCHEDULES=1` (`EXACTLY_SIM_TRACE=1`
//! prints its every request, outcome and event).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use exactly_testkit::sim::{Sim, Stats};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn simulated_schedules_keep_exactly_once() {
    let n = env_u64("EXACTLY_SIM_SCHEDULES", 10_000);
    let first = env_u64("EXACTLY_SIM_SEED", 0);
    let trace = std::env::var_os("EXACTLY_SIM_TRACE").is_some();
    let mut total = Stats::default();
    let mut failures = Vec::new();
    for seed in first..first + n {
        let mut s = Sim::new(seed);
        s.set_trace(trace);
        if let Err(e) = s.run() {
            failures.push(format!("seed {seed}: {e}"));
            if failures.len() >= 10 {
                break;
            }
        }
        total.add(&s.stats);
    }
    println!("{n} schedules from seed {first}: {total:?}");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The schedules must exercise every ending, or the checks prove little.
    assert!(total.committed > 0 && total.aborted > 0 && total.delivered > 0);
}
