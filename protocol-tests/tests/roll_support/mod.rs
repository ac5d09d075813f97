//! The measure of the rolling-restart test (`eos_session_roll.rs`, issue
//! 12): from the commits of all members (time, member, input partitions the
//! committed transaction carried offsets for) and the moments of the
//! restarts, the processing pause each rebalance caused.
//!
//! A partition's *pause* is the gap between two consecutive commits of it,
//! whoever made them. An event (a member stopped, started or killed) owns the
//! window from its moment to the next event's (the last one to the end of
//! the roll); its pauses are the gaps that overlap the window. A partition
//! *moved* in that window when the member committing it last before the
//! window is not the one committing it last inside the window (or it has no
//! commit inside it at all, so it surely stopped). KIP-848 groups should
//! pause only moved partitions: the longest pause of the unmoved ones stays
//! near the commit interval, while eager pauses them all.

#![allow(dead_code)]

use std::collections::BTreeMap;

/// One committed transaction of one member.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    /// Unix milliseconds, as the member printed them.
    pub at: u64,
    /// Which member (index).
    pub member: usize,
    /// Input records it committed.
    pub records: u64,
    /// Input partitions it committed offsets for.
    pub parts: Vec<i32>,
}

/// Parses `commit <unix ms> <records> <p,p,...>` (the `eos_app` line).
pub fn parse_commit(member: usize, line: &str) -> Option<Commit> {
    let mut w = line.split_whitespace();
    if w.next()? != "commit" {
        return None;
    }
    let at = w.next()?.parse().ok()?;
    let records = w.next()?.parse().ok()?;
    let parts = match w.next() {
        Some(list) => list
            .split(',')
            .map(|p| p.parse().ok())
            .collect::<Option<Vec<i32>>>()?,
        None => Vec::new(),
    };
    Some(Commit {
        at,
        member,
        records,
        parts,
    })
}

/// The pauses of one event's window.
#[derive(Debug, Clone, PartialEq)]
pub struct Pauses {
    /// The event (`stop 0`, `start 0`, `kill -9 1`, ...).
    pub label: String,
    /// Partitions that moved in the window.
    pub moved: usize,
    /// The longest pause of a moved partition (ms).
    pub moved_max: u64,
    /// The longest pause of a partition that did not move (ms), or 0 if
    /// all moved.
    pub unmoved_max: u64,
}

/// Per partition, the (time, member) of its commits in time order.
fn per_partition(commits: &[Commit]) -> BTreeMap<i32, Vec<(u64, usize)>> {
    let mut by: BTreeMap<i32, Vec<(u64, usize)>> = BTreeMap::new();
    for c in commits {
        for p in &c.parts {
            by.entry(*p).or_default().push((c.at, c.member));
        }
    }
    for v in by.values_mut() {
        v.sort();
    }
    by
}

/// The longest gap between consecutive commits in `times` that ended in
/// `(from, to]` (a pause belongs to the last event before the commit that
/// ended it), or the pause still running at `to`.
fn longest_gap(times: &[(u64, usize)], from: u64, to: u64) -> u64 {
    let mut longest = 0;
    for w in times.windows(2) {
        let (a, b) = (w[0].0, w[1].0);
        if b > from && b <= to {
            longest = longest.max(b - a);
        }
    }
    // A pause still running when the window closes.
    if let Some((last, _)) = times.iter().rev().find(|(t, _)| *t <= to) {
        longest = longest.max(to - last);
    }
    longest
}

/// The pauses of each event: `events` are (unix ms, label) in time order,
/// `end` closes the last window.
pub fn pauses(commits: &[Commit], events: &[(u64, String)], end: u64) -> Vec<Pauses> {
    let by = per_partition(commits);
    let mut out = Vec::new();
    for (i, (from, label)) in events.iter().enumerate() {
        let to = events.get(i + 1).map(|e| e.0).unwrap_or(end);
        let (mut moved, mut moved_max, mut unmoved_max) = (0, 0, 0);
        for times in by.values() {
            let before = times.iter().rev().find(|(t, _)| *t <= *from).map(|c| c.1);
            let inside = times
                .iter()
                .rev()
                .find(|(t, _)| *t > *from && *t < to)
                .map(|c| c.1);
            let gap = longest_gap(times, *from, to);
            if inside.is_none() || before != inside {
                moved += 1;
                moved_max = moved_max.max(gap);
            } else {
                unmoved_max = unmoved_max.max(gap);
            }
        }
        out.push(Pauses {
            label: label.clone(),
            moved,
            moved_max,
            unmoved_max,
        });
    }
    out
}

/// Input records committed in `[from, to)`, per second.
pub fn records_per_sec(commits: &[Commit], from: u64, to: u64) -> f64 {
    let n: u64 = commits
        .iter()
        .filter(|c| c.at >= from && c.at < to)
        .map(|c| c.records)
        .sum();
    n as f64 * 1000.0 / (to.saturating_sub(from).max(1)) as f64
}

/// The median gap between consecutive commits of a partition before
/// `until` (the steady state's commit cadence).
pub fn median_gap(commits: &[Commit], until: u64) -> u64 {
    let mut gaps: Vec<u64> = per_partition(commits)
        .values()
        .flat_map(|t| {
            t.windows(2)
                .filter(|w| w[1].0 < until)
                .map(|w| w[1].0 - w[0].0)
                .collect::<Vec<_>>()
        })
        .collect();
    gaps.sort_unstable();
    gaps.get(gaps.len() / 2).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(at: u64, member: usize, parts: &[i32]) -> Commit {
        Commit {
            at,
            member,
            records: 10,
            parts: parts.to_vec(),
        }
    }

    #[test]
    fn a_commit_line_parses() {
        assert_eq!(
            parse_commit(2, "commit 1700000000123 57 0,3,11"),
            Some(c(1_700_000_000_123, 2, &[0, 3, 11])).map(|mut x| {
                x.records = 57;
                x
            })
        );
        assert_eq!(parse_commit(0, "committed 5 6"), None);
        assert_eq!(parse_commit(0, "commit x 5 1"), None);
    }

    #[test]
    fn only_the_moved_partition_pauses() {
        // Partition 0 stays with member 0 and commits every 100 ms;
        // partition 1 moves from member 1 to member 0 with a 900 ms gap.
        let mut commits = Vec::new();
        for i in 0..20 {
            commits.push(c(i * 100, 0, &[0]));
        }
        for i in 0..5 {
            commits.push(c(i * 100, 1, &[1]));
        }
        for i in 13..20 {
            commits.push(c(i * 100, 0, &[1]));
        }
        let events = vec![(450, "stop 1".to_owned())];
        let p = pauses(&commits, &events, 2000);
        assert_eq!(
            p,
            vec![Pauses {
                label: "stop 1".into(),
                moved: 1,
                moved_max: 900,
                unmoved_max: 100,
            }]
        );
        assert_eq!(median_gap(&commits, 400), 100);
        assert!((records_per_sec(&commits, 0, 1000) - 150.0).abs() < 1e-9);
    }

    #[test]
    fn a_partition_that_stops_committing_pauses_to_the_window_end() {
        let commits = vec![
            c(0, 0, &[0]),
            c(100, 0, &[0]),
            c(100, 0, &[1]),
            c(5000, 0, &[1]),
        ];
        let p = pauses(&commits, &[(200, "kill -9 0".into())], 3000);
        assert_eq!(p[0].moved, 2);
        assert_eq!(p[0].moved_max, 2900);
        let p = pauses(&commits[..3], &[(200, "kill -9 0".into())], 3000);
        assert_eq!(p[0].moved_max, 2900);
    }
}
