//! The fetch-session state machine against a model broker that follows
//! KIP-227 (sessions created by full requests, updated by incremental ones,
//! epochs checked, sessions evicted at will): whatever happens, every
//! request the broker accepts leaves it fetching exactly the partitions the
//! consumer wanted, from where it wanted them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("t", p)
}

fn sent(offset: i64) -> Sent {
    Sent {
        fetch_offset: offset,
        leader_epoch: 0,
        max_bytes: 1 << 20,
    }
}

fn want(parts: &[(i32, i64)]) -> Vec<(TopicPartition, Sent)> {
    parts.iter().map(|&(p, o)| (tp(p), sent(o))).collect()
}

fn req(s: &mut FetchSession, w: &[(TopicPartition, Sent)]) -> SessionRequest {
    let refs: Vec<(&TopicPartition, Sent)> = w.iter().map(|(t, s)| (t, *s)).collect();
    s.request(&refs)
}

fn named(r: &SessionRequest, w: &[(TopicPartition, Sent)]) -> Vec<i32> {
    w.iter()
        .zip(&r.named)
        .filter(|(_, n)| **n)
        .map(|((t, _), _)| t.partition)
        .collect()
}

#[test]
fn full_then_incremental_names_only_what_changed() {
    let mut s = FetchSession::default();
    let w = want(&[(0, 0), (1, 0), (2, 0)]);
    let r = req(&mut s, &w);
    assert_eq!((r.session_id, r.epoch), (0, 0));
    assert_eq!(named(&r, &w), [0, 1, 2]);
    s.answered(Answer::Ok { session_id: 77 });
    assert_eq!((s.id(), s.epoch()), (77, 1));

    // Nothing changed: an empty incremental request (the idle case).
    let r = req(&mut s, &w);
    assert_eq!((r.session_id, r.epoch), (77, 1));
    assert!(named(&r, &w).is_empty());
    assert!(r.forgotten.is_empty());
    s.answered(Answer::Ok { session_id: 77 });

    // 1 moved on, 2 is no longer wanted, 3 is new.
    let w = want(&[(0, 0), (1, 10), (3, 0)]);
    let r = req(&mut s, &w);
    assert_eq!((r.session_id, r.epoch), (77, 2));
    assert_eq!(named(&r, &w), [1, 3]);
    assert_eq!(r.forgotten, [tp(2)]);
    s.answered(Answer::Ok { session_id: 77 });
    assert_eq!(s.epoch(), 3);
    assert_eq!(s.resets(), 0);
}

#[test]
fn a_leader_epoch_or_max_bytes_change_names_the_partition_again() {
    let mut s = FetchSession::default();
    let w = want(&[(0, 5), (1, 5)]);
    req(&mut s, &w);
    s.answered(Answer::Ok { session_id: 1 });
    let mut w2 = w.clone();
    w2[0].1.leader_epoch = 3;
    w2[1].1.max_bytes = 10;
    let r = req(&mut s, &w2);
    assert_eq!(named(&r, &w2), [0, 1]);
}

#[test]
fn session_errors_start_over_with_a_full_request() {
    let mut s = FetchSession::default();
    let w = want(&[(0, 0), (1, 0)]);
    req(&mut s, &w);
    s.answered(Answer::Ok { session_id: 9 });
    req(&mut s, &w);
    // Unknown session: a new one (id 0).
    s.answered(Answer::Error(ErrorCode::FetchSessionIdNotFound));
    let r = req(&mut s, &w);
    assert_eq!((r.session_id, r.epoch), (0, 0));
    assert_eq!(named(&r, &w), [0, 1]);
    s.answered(Answer::Ok { session_id: 10 });
    req(&mut s, &w);
    // Wrong epoch: close the old session, open a new one (its id, epoch 0).
    s.answered(Answer::Error(ErrorCode::InvalidFetchSessionEpoch));
    let r = req(&mut s, &w);
    assert_eq!((r.session_id, r.epoch), (10, 0));
    assert_eq!(named(&r, &w), [0, 1]);
    // A lost request likewise.
    s.answered(Answer::Ok { session_id: 11 });
    req(&mut s, &w);
    s.answered(Answer::Failed);
    let r = req(&mut s, &w);
    assert_eq!((r.session_id, r.epoch), (11, 0));
    assert_eq!(s.resets(), 3);
}

#[test]
fn no_session_kept_means_full_requests() {
    let mut s = FetchSession::default();
    let w = want(&[(0, 0)]);
    for _ in 0..3 {
        let r = req(&mut s, &w);
        assert_eq!((r.session_id, r.epoch), (0, 0));
        assert_eq!(named(&r, &w), [0]);
        // The broker keeps no session (cache full, or Fetch < v7).
        s.answered(Answer::Ok { session_id: 0 });
    }
    assert_eq!(s.resets(), 0);
    // An incremental answer carrying another session id: start over.
    req(&mut s, &w);
    s.answered(Answer::Ok { session_id: 4 });
    req(&mut s, &w);
    s.answered(Answer::Ok { session_id: 5 });
    let r = req(&mut s, &w);
    assert_eq!((r.session_id, r.epoch), (4, 0));
}

#[test]
fn the_epoch_wraps_to_one() {
    assert_eq!(next_epoch(1), 2);
    assert_eq!(next_epoch(i32::MAX - 1), i32::MAX);
    assert_eq!(next_epoch(i32::MAX), 1);
    let mut s = FetchSession::default();
    let w = want(&[(0, 0)]);
    req(&mut s, &w);
    s.answered(Answer::Ok { session_id: 3 });
    s.epoch = i32::MAX;
    let r = req(&mut s, &w);
    assert_eq!(r.epoch, i32::MAX);
    s.answered(Answer::Ok { session_id: 3 });
    let r = req(&mut s, &w);
    assert_eq!((r.session_id, r.epoch), (3, 1));
    assert!(!r.is_full());
}

#[test]
fn a_request_never_answered_is_a_lost_one() {
    let mut s = FetchSession::default();
    let w = want(&[(0, 0)]);
    req(&mut s, &w);
    s.answered(Answer::Ok { session_id: 3 });
    req(&mut s, &w);
    // Abandoned (no answer), then asked again.
    let r = req(&mut s, &w);
    assert_eq!((r.session_id, r.epoch), (3, 0));
    // A stray answer for nothing in flight changes nothing.
    s.answered(Answer::Ok { session_id: 3 });
    s.answered(Answer::Ok { session_id: 99 });
    assert_eq!((s.id(), s.epoch()), (3, 1));
}

/// KIP-227 as a broker applies it.
#[derive(Default)]
struct Broker {
    sessions: HashMap<i32, (i32, HashMap<TopicPartition, Sent>)>,
    last_id: i32,
}

impl Broker {
    /// Applies a request; the answer and what the broker fetches for it.
    fn handle(
        &mut self,
        r: &SessionRequest,
        w: &[(TopicPartition, Sent)],
        no_room: bool,
    ) -> (Answer, HashMap<TopicPartition, Sent>) {
        let named: HashMap<TopicPartition, Sent> = w
            .iter()
            .zip(&r.named)
            .filter(|(_, n)| **n)
            .map(|(x, _)| x.clone())
            .collect();
        if r.epoch == -1 {
            return (Answer::Ok { session_id: 0 }, named);
        }
        if r.epoch == 0 {
            assert!(r.forgotten.is_empty());
            self.sessions.remove(&r.session_id);
            if no_room {
                return (Answer::Ok { session_id: 0 }, named);
            }
            self.last_id += 1;
            self.sessions.insert(self.last_id, (1, named.clone()));
            return (
                Answer::Ok {
                    session_id: self.last_id,
                },
                named,
            );
        }
        let Some((epoch, parts)) = self.sessions.get_mut(&r.session_id) else {
            return (
                Answer::Error(ErrorCode::FetchSessionIdNotFound),
                HashMap::new(),
            );
        };
        if *epoch != r.epoch {
            return (
                Answer::Error(ErrorCode::InvalidFetchSessionEpoch),
                HashMap::new(),
            );
        }
        *epoch = next_epoch(*epoch);
        for t in &r.forgotten {
            parts.remove(t);
        }
        parts.extend(named);
        (
            Answer::Ok {
                session_id: r.session_id,
            },
            parts.clone(),
        )
    }
}

#[derive(Debug, Clone)]
enum Fate {
    /// Answered.
    Answered,
    /// The broker kept no session (full requests only).
    NoRoom,
    /// Lost before the broker saw it.
    LostBefore,
    /// Applied by the broker, but the answer was lost.
    LostAfter,
    /// The broker evicted the session before the request.
    Evicted,
}

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        6 => Just(Fate::Answered),
        1 => Just(Fate::NoRoom),
        1 => Just(Fate::LostBefore),
        1 => Just(Fate::LostAfter),
        1 => Just(Fate::Evicted),
    ]
}

/// A step: for each of 6 partitions, not wanted or wanted at an offset
/// (few distinct offsets, so unchanged partitions are common).
fn step() -> impl Strategy<Value = (Vec<Option<i64>>, Fate)> {
    (
        proptest::collection::vec(proptest::option::weighted(0.8, 0..3i64), 6),
        fate(),
    )
}

proptest! {
    #[test]
    fn the_broker_fetches_what_is_wanted(steps in proptest::collection::vec(step(), 1..40)) {
        let mut s = FetchSession::default();
        let mut b = Broker::default();
        for (offsets, fate) in steps {
            let w: Vec<(TopicPartition, Sent)> = offsets
                .iter()
                .enumerate()
                .filter_map(|(p, o)| o.map(|o| (tp(p as i32), sent(o))))
                .collect();
            let before = s.partitions.clone();
            let r = req(&mut s, &w);
            if !r.is_full() {
                // Incremental: names exactly the new or changed partitions.
                for ((t, x), n) in w.iter().zip(&r.named) {
                    prop_assert_eq!(*n, before.get(t) != Some(x));
                }
                for t in &r.forgotten {
                    prop_assert!(before.contains_key(t) && !w.iter().any(|(u, _)| u == t));
                }
            } else {
                prop_assert!(r.named.iter().all(|n| *n));
            }
            if matches!(fate, Fate::Evicted) {
                b.sessions.clear();
            }
            let answer = match fate {
                Fate::LostBefore => Answer::Failed,
                Fate::LostAfter => {
                    b.handle(&r, &w, false);
                    Answer::Failed
                }
                _ => {
                    let (a, fetching) = b.handle(&r, &w, matches!(fate, Fate::NoRoom));
                    if let Answer::Ok { .. } = a {
                        let wanted: HashMap<TopicPartition, Sent> = w.iter().cloned().collect();
                        prop_assert_eq!(fetching, wanted);
                    }
                    a
                }
            };
            s.answered(answer);
        }
    }
}
