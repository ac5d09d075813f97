//! Client-side partition assignors of the classic group protocol, run by the
//! group leader after JoinGroup (the coordinator only relays the result).
//!
//! - `range`: per topic, the members subscribed to it are sorted and each
//!   takes a consecutive range; the first `partitions % members` members take
//!   one extra.
//! - `roundrobin`: every subscribed partition, sorted by (topic, partition),
//!   goes to the next member in sorted order that subscribes to its topic.
//!
//! - `cooperative-sticky`: balanced, sticky and incremental (KIP-429); see
//!   `sticky.rs` in this module.
//!
//! Members sort by group instance id when they have one (static members keep
//! their partitions across restarts, KIP-345), else by member id. Both
//! assignors are deterministic and give every member an entry, possibly
//! empty.

use std::collections::BTreeMap;

use crate::config::AssignmentStrategy;

/// One member as the leader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member id the coordinator gave.
    pub member_id: String,
    /// The static instance id, if any.
    pub instance_id: Option<String>,
    /// Subscribed topics.
    pub topics: Vec<String>,
    /// The partitions the member owns (subscription v1+, KIP-429).
    pub owned: BTreeMap<String, Vec<i32>>,
    /// The generation the member owned them in (-1 when unknown).
    pub generation: i32,
}

impl Member {
    fn sort_key(&self) -> (&str, &str) {
        (
            self.instance_id.as_deref().unwrap_or(&self.member_id),
            &self.member_id,
        )
    }
}

/// Member id -> topic -> partitions.
pub type Plan = BTreeMap<String, BTreeMap<String, Vec<i32>>>;

/// Assigns `partitions` (topic -> partition count; topics missing from it
/// are skipped) among `members` with `strategy`.
pub fn assign(
    strategy: AssignmentStrategy,
    members: &[Member],
    partitions: &BTreeMap<String, i32>,
) -> Plan {
    let mut sorted: Vec<&Member> = members.iter().collect();
    sorted.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    let mut plan: Plan = members
        .iter()
        .map(|m| (m.member_id.clone(), BTreeMap::new()))
        .collect();
    match strategy {
        AssignmentStrategy::CooperativeSticky => {
            return super::sticky::assign(&sorted, partitions);
        }
        AssignmentStrategy::Range => {
            for (topic, &count) in partitions {
                let subs: Vec<&&Member> = sorted
                    .iter()
                    .filter(|m| m.topics.iter().any(|t| t == topic))
                    .collect();
                if subs.is_empty() || count <= 0 {
                    continue;
                }
                let n = subs.len() as i32;
                let (each, extra) = (count / n, count % n);
                let mut next = 0;
                for (i, m) in subs.iter().enumerate() {
                    let take = each + i32::from((i as i32) < extra);
                    if take > 0 {
                        plan.entry(m.member_id.clone())
                            .or_default()
                            .insert(topic.clone(), (next..next + take).collect());
                    }
                    next += take;
                }
            }
        }
        AssignmentStrategy::RoundRobin => {
            if sorted.is_empty() {
                return plan;
            }
            let mut turn = 0usize;
            for (topic, &count) in partitions {
                for p in 0..count.max(0) {
                    // The next member (in turn) subscribed to this topic.
                    for step in 0..sorted.len() {
                        let m = sorted[(turn + step) % sorted.len()];
                        if m.topics.iter().any(|t| t == topic) {
                            plan.entry(m.member_id.clone())
                                .or_default()
                                .entry(topic.clone())
                                .or_default()
                                .push(p);
                            turn = (turn + step + 1) % sorted.len();
                            break;
                        }
                    }
                }
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Issue 16 item 4: after a (foreign) leader gave one partition to two
    /// members, both report owning it in their next metadata. Whichever
    /// strategy we lead with, the new plan gives every partition to exactly
    /// one member (the double claim is resolved, not carried on).
    #[test]
    fn a_partition_claimed_by_two_members_goes_to_one() {
        for strategy in [
            AssignmentStrategy::Range,
            AssignmentStrategy::RoundRobin,
            AssignmentStrategy::CooperativeSticky,
        ] {
            let mut a = member("a", &["t"]);
            let mut b = member("b", &["t"]);
            a.owned.insert("t".into(), vec![0, 1]);
            b.owned.insert("t".into(), vec![0, 2]);
            a.generation = 4;
            b.generation = 4;
            let partitions = BTreeMap::from([("t".to_string(), 4)]);
            let plan = assign(strategy, &[a, b], &partitions);
            let mut all: Vec<i32> = plan
                .values()
                .flat_map(|m| m.get("t").cloned().unwrap_or_default())
                .collect();
            all.sort_unstable();
            assert_eq!(all, [0, 1, 2, 3], "{strategy:?}: {plan:?}");
        }
    }

    fn member(id: &str, topics: &[&str]) -> Member {
        Member {
            member_id: id.into(),
            instance_id: None,
            topics: topics.iter().map(|t| (*t).into()).collect(),
            owned: BTreeMap::new(),
            generation: -1,
        }
    }

    fn parts(plan: &Plan, m: &str, t: &str) -> Vec<i32> {
        plan[m].get(t).cloned().unwrap_or_default()
    }

    #[test]
    fn range_splits_each_topic_in_consecutive_ranges() {
        let ms = [member("b", &["t", "u"]), member("a", &["t", "u"])];
        let counts = BTreeMap::from([("t".into(), 7), ("u".into(), 2)]);
        let plan = assign(AssignmentStrategy::Range, &ms, &counts);
        assert_eq!(parts(&plan, "a", "t"), [0, 1, 2, 3]);
        assert_eq!(parts(&plan, "b", "t"), [4, 5, 6]);
        assert_eq!(parts(&plan, "a", "u"), [0]);
        assert_eq!(parts(&plan, "b", "u"), [1]);
    }

    #[test]
    fn range_six_partitions_two_members_three_each_then_one_takes_all() {
        let counts = BTreeMap::from([("t".into(), 6)]);
        let plan = assign(
            AssignmentStrategy::Range,
            &[member("m1", &["t"]), member("m2", &["t"])],
            &counts,
        );
        assert_eq!(parts(&plan, "m1", "t"), [0, 1, 2]);
        assert_eq!(parts(&plan, "m2", "t"), [3, 4, 5]);
        let plan = assign(AssignmentStrategy::Range, &[member("m2", &["t"])], &counts);
        assert_eq!(parts(&plan, "m2", "t"), [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn roundrobin_deals_partitions_to_subscribers_in_turn() {
        let ms = [
            member("a", &["t", "u"]),
            member("b", &["t"]),
            member("c", &["t", "u"]),
        ];
        let counts = BTreeMap::from([("t".into(), 4), ("u".into(), 3), ("x".into(), 2)]);
        let plan = assign(AssignmentStrategy::RoundRobin, &ms, &counts);
        assert_eq!(parts(&plan, "a", "t"), [0, 3]);
        assert_eq!(parts(&plan, "b", "t"), [1]);
        assert_eq!(parts(&plan, "c", "t"), [2]);
        // u: b is not subscribed, so it goes b->c, a, c.
        assert_eq!(parts(&plan, "c", "u"), [0, 2]);
        assert_eq!(parts(&plan, "a", "u"), [1]);
        // Nobody subscribes to x.
        assert!(plan.values().all(|m| !m.contains_key("x")));
    }

    #[test]
    fn every_partition_exactly_once_and_static_ids_order_members() {
        let mut a = member("zzz", &["t"]);
        a.instance_id = Some("i-1".into());
        let mut b = member("aaa", &["t"]);
        b.instance_id = Some("i-2".into());
        let counts = BTreeMap::from([("t".into(), 5)]);
        for s in [
            AssignmentStrategy::Range,
            AssignmentStrategy::RoundRobin,
            AssignmentStrategy::CooperativeSticky,
        ] {
            let plan = assign(s, &[a.clone(), b.clone()], &counts);
            let mut all: Vec<i32> = plan.values().flat_map(|m| m["t"].clone()).collect();
            all.sort_unstable();
            assert_eq!(all, [0, 1, 2, 3, 4], "{s:?}");
            // i-1 sorts first despite its member id.
            assert!(plan["zzz"]["t"].contains(&0), "{s:?}");
            assert_eq!(plan["zzz"]["t"].len(), 3, "{s:?}");
        }
        let empty = assign(AssignmentStrategy::RoundRobin, &[], &counts);
        assert!(empty.is_empty());
    }
}
