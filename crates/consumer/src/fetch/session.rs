//! Fetch sessions (KIP-227, incremental fetch requests), one per broker,
//! without I/O: what the next Fetch to a broker names, and what its answer
//! does to the session.
//!
//! A session lets a Fetch name only what changed. The first request of a
//! session is *full* (session id 0 or the old id, epoch 0): it names every
//! partition wanted, and the broker answers with a new session id (or 0 when
//! it keeps no session for us: the next request is full again). Each later
//! request is *incremental* (the session id, epoch 1, 2, ...): it names the
//! partitions that are new to the session or whose fetch offset, current
//! leader epoch or maximum bytes changed, and lists in `forgotten_topics_data`
//! the partitions the session holds that are not wanted now (paused, backing
//! off, buffered to their limit, moved to another leader). The broker keeps
//! fetching every partition of the session from where it was last named, and
//! its answer leaves out the partitions with nothing new (no records, no
//! change of high watermark, last stable offset or log start offset, no
//! error): a partition left out is not an empty error, just nothing new (the
//! fetcher already treats a missing partition so). The epoch wraps from
//! `i32::MAX` to 1 (KIP-227: 0 means "full", -1 "no session").
//!
//! The session follows what the broker holds only through answers: the
//! partitions a request leaves the session with are pending until its answer
//! comes. A top-level FETCH_SESSION_ID_NOT_FOUND (the broker evicted or never
//! had the session) starts a new session (id 0, epoch 0); any other top-level
//! error (INVALID_FETCH_SESSION_EPOCH...), a lost connection, a request
//! abandoned in flight (a rebalance aborts fetches) or an answer we cannot
//! match closes the session and opens a new one with the next request (the
//! old id, epoch 0), as the Java client does. Either way the next request is
//! full, so nothing the broker may or may not have applied is relied on.
//!
//! One fetch is in flight per broker (see [`super::plan`]), so a broker's
//! session sees request, answer, request... in turn. Fetch v7+ carries
//! sessions; this client stops at v12 (topic names, not KIP-516 topic ids),
//! so sessions are keyed by name, and an older broker simply answers session
//! id 0 (the fetcher then stays full). `enable.fetch.sessions=false` turns
//! them off (every request names every partition, session id 0, epoch -1);
//! the Java client has no such switch and always uses them.

use std::collections::HashMap;

use exactly_codec::ErrorCode;

use crate::TopicPartition;

/// What a session remembers of a partition: the fields whose change makes
/// an incremental request name it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Sent {
    pub(crate) fetch_offset: i64,
    pub(crate) leader_epoch: i32,
    pub(crate) max_bytes: i32,
}

/// What the next request to a broker carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionRequest {
    /// `session_id` of the request.
    pub(crate) session_id: i32,
    /// `session_epoch` of the request: 0 full (new session), -1 no session.
    pub(crate) epoch: i32,
    /// For each wanted partition, in the order given, whether the request
    /// names it.
    pub(crate) named: Vec<bool>,
    /// Partitions the session holds that are no longer wanted.
    pub(crate) forgotten: Vec<TopicPartition>,
}

impl SessionRequest {
    /// A request outside any session: names everything wanted.
    pub(crate) fn sessionless(wanted: usize) -> SessionRequest {
        SessionRequest {
            session_id: 0,
            epoch: -1,
            named: vec![true; wanted],
            forgotten: Vec::new(),
        }
    }

    /// Whether the request names every partition wanted (not incremental).
    pub(crate) fn is_full(&self) -> bool {
        self.epoch <= 0
    }
}

/// How a request ended, as far as its session is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// A response without a top-level error, carrying this session id.
    Ok {
        /// The response's `session_id`.
        session_id: i32,
    },
    /// A response with a top-level error.
    Error(ErrorCode),
    /// No response (connection lost, task aborted or panicked).
    Failed,
}

/// The epoch after `epoch` (KIP-227: wraps to 1, never 0 or negative).
pub(crate) fn next_epoch(epoch: i32) -> i32 {
    if (1..i32::MAX).contains(&epoch) {
        epoch + 1
    } else {
        1
    }
}

/// One broker's fetch session (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct FetchSession {
    /// The session id; 0 when there is none.
    id: i32,
    /// The epoch of the next request: 0 makes it full.
    epoch: i32,
    /// What the broker's session holds (after the last answered request).
    partitions: HashMap<TopicPartition, Sent>,
    /// What it will hold once the request in flight is answered, and the
    /// epoch that request carried.
    pending: Option<(HashMap<TopicPartition, Sent>, i32)>,
    /// Times the session had to start over (an error or a lost request).
    resets: u64,
}

impl FetchSession {
    /// The session id (0: none).
    #[cfg(test)]
    pub(crate) fn id(&self) -> i32 {
        self.id
    }

    /// The epoch the next request carries.
    #[cfg(test)]
    pub(crate) fn epoch(&self) -> i32 {
        self.epoch
    }

    /// Times the session started over after an error or a lost request.
    pub(crate) fn resets(&self) -> u64 {
        self.resets
    }

    /// The next request, for `wanted` (distinct partitions). The session
    /// then waits for [`FetchSession::answered`].
    pub(crate) fn request(&mut self, wanted: &[(&TopicPartition, Sent)]) -> SessionRequest {
        if self.pending.is_some() {
            // A request whose answer never came: start over.
            self.failed();
        }
        let next: HashMap<TopicPartition, Sent> =
            wanted.iter().map(|(tp, s)| ((*tp).clone(), *s)).collect();
        let req = if self.epoch == 0 {
            SessionRequest {
                session_id: self.id,
                epoch: 0,
                named: vec![true; wanted.len()],
                forgotten: Vec::new(),
            }
        } else {
            let named = wanted
                .iter()
                .map(|(tp, s)| self.partitions.get(*tp) != Some(s))
                .collect();
            let mut forgotten: Vec<TopicPartition> = self
                .partitions
                .keys()
                .filter(|tp| !next.contains_key(*tp))
                .cloned()
                .collect();
            forgotten.sort();
            SessionRequest {
                session_id: self.id,
                epoch: self.epoch,
                named,
                forgotten,
            }
        };
        self.pending = Some((next, self.epoch));
        req
    }

    /// Applies how the request in flight ended.
    pub(crate) fn answered(&mut self, answer: Answer) {
        let Some((next, sent_epoch)) = self.pending.take() else {
            // Nothing in flight (abandoned before): the next request is
            // full already.
            return;
        };
        match answer {
            Answer::Ok { session_id } => {
                let full = sent_epoch == 0;
                if session_id == 0 {
                    // No session kept (the broker's cache is full, an old
                    // broker, or it closed ours): full again next time.
                    if !full {
                        self.resets += 1;
                    }
                    self.id = 0;
                    self.epoch = 0;
                    self.partitions.clear();
                } else if full || session_id == self.id {
                    self.id = session_id;
                    self.epoch = next_epoch(sent_epoch);
                    self.partitions = next;
                } else {
                    // An incremental answer for another session.
                    self.failed();
                }
            }
            Answer::Error(ErrorCode::FetchSessionIdNotFound) => {
                self.resets += 1;
                self.id = 0;
                self.epoch = 0;
                self.partitions.clear();
            }
            Answer::Error(_) | Answer::Failed => self.failed(),
        }
    }

    /// Closes the session: the next request is full, under the old id (the
    /// broker drops it and opens a new one).
    pub(crate) fn failed(&mut self) {
        self.pending = None;
        if self.id != 0 || self.epoch != 0 {
            self.resets += 1;
        }
        self.epoch = 0;
        self.partitions.clear();
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
