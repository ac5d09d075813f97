use super::*;
use crate::state::{MemoryStore, PartitionState, StateConfig, States};

fn rec(p: i32, offset: i64, id: Option<&str>, ts: i64) -> ConsumerRecord {
    let r = ConsumerRecord::new("in", p, offset)
        .with_timestamp(ts)
        .with_value(format!("v{offset}"));
    match id {
        Some(id) => r
            .with_header("other", Some(Bytes::from("x")))
            .with_header("message-id", Some(Bytes::from(id.to_owned()))),
        None => r,
    }
}

#[test]
fn a_header_id_is_admitted_once_per_partition() {
    let mut d = Dedup::new(MessageId::header("message-id"), SeenLimits::default());
    let mut store = MemorySeenStore::default();
    let tp = TopicPartition::new("in", 0);
    assert_eq!(
        d.admit(&tp, &mut store, &rec(0, 0, Some("a"), 1)),
        Verdict::New(Bytes::from("a"))
    );
    assert_eq!(
        d.admit(&tp, &mut store, &rec(0, 1, Some("a"), 2)),
        Verdict::Duplicate(Bytes::from("a"))
    );
    assert_eq!(d.admit(&tp, &mut store, &rec(0, 2, None, 3)), Verdict::NoId);
    // Another partition has its own set (and store).
    let mut other = MemorySeenStore::default();
    let tp1 = TopicPartition::new("in", 1);
    assert_eq!(
        d.admit(&tp1, &mut other, &rec(1, 0, Some("a"), 1)),
        Verdict::New(Bytes::from("a"))
    );
    assert_eq!(d.len(&tp), 1);
    assert_eq!(d.len(&tp1), 1);
}

#[test]
fn check_does_not_mark_and_a_restart_reloads_from_the_store() {
    let tp = TopicPartition::new("in", 0);
    let mut store = MemorySeenStore::default();
    {
        let mut d = Dedup::new(MessageId::header("message-id"), SeenLimits::default());
        let r = rec(0, 0, Some("a"), 1);
        assert!(matches!(d.check(&tp, &mut store, &r), Verdict::New(_)));
        assert!(matches!(d.check(&tp, &mut store, &r), Verdict::New(_)));
        d.mark(&tp, &mut store, Bytes::from("a"), 1);
    }
    // A new deduplicator (a restarted process) over the same store.
    let mut d = Dedup::new(MessageId::header("message-id"), SeenLimits::default());
    assert_eq!(
        d.check(&tp, &mut store, &rec(0, 7, Some("a"), 9)),
        Verdict::Duplicate(Bytes::from("a"))
    );
}

#[test]
fn a_function_id_and_the_bound_per_partition() {
    let id = MessageId::function(|r| r.value().cloned());
    let limits = SeenLimits {
        max_entries: 2,
        max_age: None,
    };
    let mut d = Dedup::new(id, limits);
    let mut store = MemorySeenStore::default();
    let tp = TopicPartition::new("in", 0);
    let v = |offset: i64, value: &str| {
        ConsumerRecord::new("in", 0, offset).with_value(value.to_owned())
    };
    assert!(matches!(
        d.admit(&tp, &mut store, &v(0, "x")),
        Verdict::New(_)
    ));
    assert!(matches!(
        d.admit(&tp, &mut store, &v(1, "y")),
        Verdict::New(_)
    ));
    assert!(matches!(
        d.admit(&tp, &mut store, &v(2, "x")),
        Verdict::Duplicate(_)
    ));
    assert!(matches!(
        d.admit(&tp, &mut store, &v(3, "z")),
        Verdict::New(_)
    ));
    // "x" fell out of the bound of 2: a duplicate that late is let through.
    assert!(matches!(
        d.admit(&tp, &mut store, &v(4, "x")),
        Verdict::New(_)
    ));
    assert_eq!(store.load().len(), 2);
}

/// The seen-set in the session's state: marks commit with the transaction,
/// an abort takes them back (and `forget` makes the in-memory index follow),
/// and they survive a restore into a fresh store.
#[test]
fn in_the_session_state_marks_commit_and_roll_back_with_the_transaction() {
    let tp = TopicPartition::new("in", 2);
    let mut states = States::new(StateConfig::new("seen"), "app".into());
    states.insert(
        tp.clone(),
        PartitionState::new(Box::<MemoryStore>::default()),
    );
    let mut d = Dedup::new(MessageId::header("message-id"), SeenLimits::default());
    let admit = |d: &mut Dedup, states: &mut States, r: &ConsumerRecord| {
        let mut state = states.view(&tp).expect("state");
        d.admit(&tp, &mut StateSeenStore::new(&mut state), r)
    };
    assert!(matches!(
        admit(&mut d, &mut states, &rec(2, 0, Some("a"), 1)),
        Verdict::New(_)
    ));
    // The mark goes to the changelog under the reserved prefix.
    let log = states.changelog_records();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].key, Bytes::from(&b"\0dedup\0a"[..]));
    assert_eq!(log[0].topic, "app-seen-in-changelog");
    states.committed();

    assert!(matches!(
        admit(&mut d, &mut states, &rec(2, 1, Some("b"), 2)),
        Verdict::New(_)
    ));
    states.rolled_back();
    d.forget(std::slice::from_ref(&tp));
    // "b" was in the aborted transaction: new again; "a" committed.
    assert!(matches!(
        admit(&mut d, &mut states, &rec(2, 1, Some("b"), 2)),
        Verdict::New(_)
    ));
    assert!(matches!(
        admit(&mut d, &mut states, &rec(2, 2, Some("a"), 3)),
        Verdict::Duplicate(_)
    ));

    // A restore (what the changelog holds, replayed into a fresh store)
    // gives a new owner the same set.
    let restored: Vec<_> = states.changelog_records();
    states.committed();
    let mut fresh = PartitionState::new(Box::<MemoryStore>::default());
    fresh.restore(log[0].key.clone(), log[0].value.clone());
    for c in restored {
        fresh.restore(c.key, c.value);
    }
    let mut states2 = States::new(StateConfig::new("seen"), "app".into());
    states2.insert(tp.clone(), fresh);
    let mut d2 = Dedup::new(MessageId::header("message-id"), SeenLimits::default());
    for (off, id) in [(5, "a"), (6, "b")] {
        assert!(matches!(
            admit(&mut d2, &mut states2, &rec(2, off, Some(id), 4)),
            Verdict::Duplicate(_)
        ));
    }
}
