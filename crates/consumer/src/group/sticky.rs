//! The `cooperative-sticky` assignor (KIP-429 over the sticky assignor of
//! KIP-54), run by the leader of a classic group.
//!
//! Three goals, in this order:
//! 1. every partition of a subscribed topic goes to exactly one member that
//!    subscribes to it;
//! 2. balance: no member holds two or more partitions more than another
//!    member that could take one of them;
//! 3. stickiness: a member keeps what it owned (as its subscription says),
//!    and partitions move only as much as balance needs.
//!
//! Ownership claims are validated first: a claim on a partition that no
//! longer exists, of a topic the member does not subscribe to, or that
//! another member makes with a newer generation is dropped (equal
//! generations: both claims are dropped, since neither can be trusted).
//!
//! Then the cooperative step: a partition that moves from one owner to
//! another is withheld from its new owner in this generation. The old owner
//! sees it missing from its assignment, revokes it and rejoins; the follow-up
//! rebalance gives it to the new owner. So no partition is ever owned by two
//! members at once.

use std::collections::{BTreeMap, BTreeSet};

use super::assignor::{Member, Plan};

type Tp = (String, i32);

/// Computes the cooperative sticky assignment. `members` must be sorted in
/// the assignor's member order.
pub(crate) fn assign(members: &[&Member], partitions: &BTreeMap<String, i32>) -> Plan {
    let sticky = balanced(members, partitions);
    let owners = valid_owners(members, partitions);
    let mut plan: Plan = members
        .iter()
        .map(|m| (m.member_id.clone(), BTreeMap::new()))
        .collect();
    for (member, tps) in sticky {
        let mine = plan.entry(member.clone()).or_default();
        for (topic, p) in tps {
            // Withheld while another member still owns it.
            if owners
                .get(&(topic.clone(), p))
                .is_some_and(|o| *o != member)
            {
                continue;
            }
            mine.entry(topic).or_default().push(p);
        }
    }
    for tps in plan.values_mut() {
        for ps in tps.values_mut() {
            ps.sort_unstable();
        }
    }
    plan
}

/// The valid owner of each claimed partition.
fn valid_owners(members: &[&Member], partitions: &BTreeMap<String, i32>) -> BTreeMap<Tp, String> {
    // partition -> (generation, member, contested)
    let mut best: BTreeMap<Tp, (i32, String, bool)> = BTreeMap::new();
    for m in members {
        for (topic, ps) in &m.owned {
            let exists = partitions.get(topic).copied().unwrap_or(0);
            if !m.topics.contains(topic) {
                continue;
            }
            for &p in ps {
                if p < 0 || p >= exists {
                    continue;
                }
                let key = (topic.clone(), p);
                match best.get_mut(&key) {
                    None => {
                        best.insert(key, (m.generation, m.member_id.clone(), false));
                    }
                    Some(cur) if m.generation > cur.0 => {
                        *cur = (m.generation, m.member_id.clone(), false);
                    }
                    Some(cur) if m.generation == cur.0 && cur.1 != m.member_id => cur.2 = true,
                    Some(_) => {}
                }
            }
        }
    }
    best.into_iter()
        .filter(|(_, (_, _, contested))| !contested)
        .map(|(tp, (_, m, _))| (tp, m))
        .collect()
}

/// The balanced sticky assignment, ignoring who must give up what first.
fn balanced(members: &[&Member], partitions: &BTreeMap<String, i32>) -> BTreeMap<String, Vec<Tp>> {
    let idx: BTreeMap<&str, usize> = members
        .iter()
        .enumerate()
        .map(|(i, m)| (m.member_id.as_str(), i))
        .collect();
    let subscribes = |i: usize, topic: &str| members[i].topics.iter().any(|t| t == topic);
    let mut held: Vec<BTreeSet<Tp>> = vec![BTreeSet::new(); members.len()];
    // Keep valid claims.
    for (tp, owner) in valid_owners(members, partitions) {
        if let Some(&i) = idx.get(owner.as_str()) {
            held[i].insert(tp);
        }
    }
    let taken: BTreeSet<Tp> = held.iter().flatten().cloned().collect();
    // Hand out the rest, each to the least loaded subscriber.
    for (topic, &count) in partitions {
        for p in 0..count.max(0) {
            let tp = (topic.clone(), p);
            if taken.contains(&tp) {
                continue;
            }
            let least = (0..members.len())
                .filter(|&i| subscribes(i, topic))
                .min_by_key(|&i| (held[i].len(), i));
            if let Some(i) = least {
                held[i].insert(tp);
            }
        }
    }
    // Move from the most to the least loaded subscriber until no move helps.
    // Each move lowers the sum of squared loads, so this ends.
    loop {
        let mut order: Vec<usize> = (0..members.len()).collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(held[i].len()), i));
        let mut moved = false;
        'from: for &a in &order {
            // Give up the highest partitions first so low ones stay put.
            let candidates: Vec<Tp> = held[a].iter().rev().cloned().collect();
            for tp in candidates {
                let to = (0..members.len())
                    .filter(|&b| b != a && subscribes(b, &tp.0))
                    .filter(|&b| held[b].len() + 2 <= held[a].len())
                    .min_by_key(|&b| (held[b].len(), b));
                if let Some(b) = to {
                    held[a].remove(&tp);
                    held[b].insert(tp);
                    moved = true;
                    break 'from;
                }
            }
        }
        if !moved {
            break;
        }
    }
    members
        .iter()
        .zip(held)
        .map(|(m, h)| (m.member_id.clone(), h.into_iter().collect()))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::AssignmentStrategy;
    use crate::group::assignor;
    use proptest::prelude::*;

    fn member(id: &str, topics: &[&str], owned: &[(&str, i32)], generation: i32) -> Member {
        let mut o: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (t, p) in owned {
            o.entry((*t).into()).or_default().push(*p);
        }
        Member {
            member_id: id.into(),
            instance_id: None,
            topics: topics.iter().map(|t| (*t).into()).collect(),
            owned: o,
            generation,
        }
    }

    fn run(ms: &[Member], counts: &BTreeMap<String, i32>) -> Plan {
        assignor::assign(AssignmentStrategy::CooperativeSticky, ms, counts)
    }

    fn count(plan: &Plan, m: &str) -> usize {
        plan[m].values().map(Vec::len).sum()
    }

    #[test]
    fn fresh_group_is_balanced() {
        let counts = BTreeMap::from([("t".into(), 7)]);
        let ms = [member("a", &["t"], &[], -1), member("b", &["t"], &[], -1)];
        let plan = run(&ms, &counts);
        assert_eq!(count(&plan, "a") + count(&plan, "b"), 7);
        assert!(count(&plan, "a").abs_diff(count(&plan, "b")) <= 1);
    }

    #[test]
    fn a_joining_member_gets_nothing_moved_until_the_owner_revokes() {
        let counts = BTreeMap::from([("t".into(), 4)]);
        let all: Vec<(&str, i32)> = (0..4).map(|p| ("t", p)).collect();
        let ms = [member("a", &["t"], &all, 3), member("b", &["t"], &[], -1)];
        // First rebalance: a keeps two, the two that move go to nobody.
        let plan = run(&ms, &counts);
        assert_eq!(count(&plan, "a"), 2);
        assert_eq!(count(&plan, "b"), 0);
        let kept = plan["a"]["t"].clone();
        // a revokes the other two and rejoins: b gets them.
        let owned: Vec<(&str, i32)> = kept.iter().map(|p| ("t", *p)).collect();
        let ms = [member("a", &["t"], &owned, 4), member("b", &["t"], &[], 4)];
        let plan = run(&ms, &counts);
        assert_eq!(plan["a"]["t"], kept);
        assert_eq!(count(&plan, "b"), 2);
    }

    #[test]
    fn stale_and_contested_claims_are_dropped() {
        let counts = BTreeMap::from([("t".into(), 2)]);
        // b claims 0 with an older generation: a's claim wins.
        let ms = [
            member("a", &["t"], &[("t", 0)], 5),
            member("b", &["t"], &[("t", 0), ("t", 1), ("t", 9)], 4),
        ];
        let plan = run(&ms, &counts);
        assert_eq!(plan["a"]["t"], [0]);
        assert_eq!(plan["b"]["t"], [1]);
        // Equal generations on the same partition: nobody gets it now.
        let ms = [
            member("a", &["t"], &[("t", 0)], 5),
            member("b", &["t"], &[("t", 0)], 5),
        ];
        let plan = run(&ms, &counts);
        let all: Vec<i32> = plan.values().flat_map(|m| m["t"].clone()).collect();
        assert!(all.iter().filter(|&&p| p == 0).count() <= 1);
    }

    /// One subscription state: topic counts, members with subscriptions.
    fn group() -> impl Strategy<Value = (BTreeMap<String, i32>, Vec<Vec<String>>)> {
        let counts = proptest::collection::vec(0i32..9, 1..4).prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, n)| (format!("t{i}"), n))
                .collect::<BTreeMap<_, _>>()
        });
        (counts, 1usize..6, any::<u64>()).prop_map(|(counts, n, seed)| {
            let topics: Vec<String> = counts.keys().cloned().collect();
            let subs = (0..n)
                .map(|i| {
                    let mut s: Vec<String> = topics
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| (seed >> ((i * 3 + j) % 64)) & 1 == 1)
                        .map(|(_, t)| t.clone())
                        .collect();
                    if s.is_empty() {
                        s.push(topics[i % topics.len()].clone());
                    }
                    s
                })
                .collect();
            (counts, subs)
        })
    }

    fn as_set(plan: &Plan, m: &str) -> BTreeSet<Tp> {
        plan[m]
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(|p| (t.clone(), *p)))
            .collect()
    }

    proptest! {
        /// Members join and leave in random steps, each rebalance run to
        /// completion (revoke, rejoin) as the protocol does: at every point
        /// no partition has two owners, the end state covers every partition
        /// and is balanced, and a member never loses more than balance needs.
        #[test]
        fn rebalances_keep_single_ownership_balance_and_stickiness(
            (counts, subs) in group(),
            steps in proptest::collection::vec((0usize..6, any::<bool>()), 1..6),
        ) {
            // member -> (subscription, owned)
            let mut owned: BTreeMap<String, (Vec<String>, BTreeSet<Tp>)> = BTreeMap::new();
            let mut generation = 0;
            let mut next_id = 0;
            for (pick, join) in steps {
                if join || owned.is_empty() {
                    let s = subs[pick % subs.len()].clone();
                    owned.insert(format!("m{next_id}"), (s, BTreeSet::new()));
                    next_id += 1;
                } else {
                    let k = owned.keys().nth(pick % owned.len()).cloned().unwrap();
                    owned.remove(&k);
                }
                // Rebalance until nobody has to revoke (at most a few rounds).
                let mut rounds = 0;
                loop {
                    rounds += 1;
                    prop_assert!(rounds <= 3, "did not settle");
                    let ms: Vec<Member> = owned.iter().map(|(id, (s, o))| {
                        let mut m = member(id, &[], &[], generation);
                        m.topics = s.clone();
                        for (t, p) in o {
                            m.owned.entry(t.clone()).or_default().push(*p);
                        }
                        m
                    }).collect();
                    let plan = run(&ms, &counts);
                    generation += 1;
                    let mut revoked_any = false;
                    let mut seen = BTreeSet::new();
                    // Who owns what before this rebalance.
                    let before: BTreeMap<Tp, String> = owned
                        .iter()
                        .flat_map(|(id, (_, o))| o.iter().map(move |tp| (tp.clone(), id.clone())))
                        .collect();
                    for (id, (_, o)) in owned.iter_mut() {
                        let new = as_set(&plan, id);
                        // A partition goes to a new owner only once its old
                        // owner gave it up (in an earlier rebalance).
                        for tp in new.difference(o) {
                            prop_assert!(
                                !before.contains_key(tp),
                                "{:?} given to {} while {:?} owns it", tp, id, before.get(tp)
                            );
                        }
                        if o.iter().any(|tp| !new.contains(tp)) {
                            revoked_any = true;
                        }
                        *o = new;
                        for tp in o.iter() {
                            prop_assert!(seen.insert(tp.clone()), "{:?} owned twice", tp);
                        }
                    }
                    if !revoked_any {
                        break;
                    }
                }
                // Coverage: every partition of a subscribed topic is owned.
                let all: BTreeSet<Tp> = owned.values().flat_map(|(_, o)| o.iter().cloned()).collect();
                for (t, &n) in &counts {
                    let wanted = owned.values().any(|(s, _)| s.contains(t));
                    for p in 0..n {
                        prop_assert_eq!(all.contains(&(t.clone(), p)), wanted);
                    }
                }
                // Balance: nobody could take one from someone holding 2+ more.
                for (_, (_, oa)) in owned.iter() {
                    for (_, (sb, ob)) in owned.iter() {
                        if oa.len() >= ob.len() + 2 {
                            prop_assert!(oa.iter().all(|(t, _)| !sb.contains(t)));
                        }
                    }
                }
            }
        }

        /// Stickiness with one shared subscription: a member keeps
        /// min(owned, fair share) of what it owned.
        #[test]
        fn same_subscription_keeps_the_fair_share(
            n in 1i32..40,
            members in 1usize..6,
            cut in 0usize..6,
        ) {
            let counts = BTreeMap::from([("t".to_string(), n)]);
            let first: Vec<Member> = (0..members).map(|i| member(&format!("m{i}"), &["t"], &[], -1)).collect();
            let plan = run(&first, &counts);
            // Some members leave, one joins.
            let mut ms: Vec<Member> = first.iter().skip(cut.min(members - 1)).map(|m| {
                let mut m = m.clone();
                m.owned = plan[&m.member_id].clone();
                m.generation = 1;
                m
            }).collect();
            ms.push(member("new", &["t"], &[], -1));
            let next = run(&ms, &counts);
            let floor = n as usize / ms.len();
            for m in &ms {
                let had: usize = m.owned.values().map(Vec::len).sum();
                let kept = m.owned.get("t").map_or(0, |ps| ps.iter().filter(|p| next[&m.member_id].get("t").is_some_and(|q| q.contains(p))).count());
                prop_assert!(kept >= had.min(floor), "{} kept {kept} of {had}, share {floor}", m.member_id);
            }
        }
    }
}
