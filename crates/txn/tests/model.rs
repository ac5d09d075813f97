//! Model-based property test: random commands and random broker behaviour
//! (success, every error class, lost, duplicated, delayed and reordered
//! outcomes, requests that never left, timeouts), with the safety invariants
//! checked after every step. Every case is also recorded and replayed, and the
//! replay must reproduce every output exactly.

#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::collections::{BTreeMap, BTreeSet};

use exactly_txn::replay::{replay, Input, Output, Recorder};
use exactly_txn::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Reply {
    Ok,
    Error(usize),
    NotSent,
    MaybeDelivered,
}

#[derive(Debug, Clone)]
enum Step {
    Begin,
    Enqueue(u8, u8),
    AddOffsets,
    Commit,
    Abort,
    Poll,
    Respond(u8, Reply),
    Duplicate(u8),
    Advance(u16),
    FlipFeature,
}

const CODES: &[ErrorCode] = &[
    ErrorCode::NotLeaderOrFollower,
    ErrorCode::NotEnoughReplicas,
    ErrorCode::RequestTimedOut,
    ErrorCode::NotEnoughReplicasAfterAppend,
    ErrorCode::NotCoordinator,
    ErrorCode::CoordinatorLoadInProgress,
    ErrorCode::ConcurrentTransactions,
    ErrorCode::OutOfOrderSequenceNumber,
    ErrorCode::UnknownProducerId,
    ErrorCode::DuplicateSequenceNumber,
    ErrorCode::InvalidProducerEpoch,
    ErrorCode::ProducerFenced,
    ErrorCode::TransactionAbortable,
    ErrorCode::MessageTooLarge,
    ErrorCode::TopicAuthorizationFailed,
    ErrorCode::IllegalGeneration,
    ErrorCode::InvalidTxnState,
    ErrorCode::UnknownServerError,
    ErrorCode::Unknown(31000),
];

fn step() -> impl Strategy<Value = Step> {
    let reply = prop_oneof![
        6 => Just(Reply::Ok),
        2 => (0..CODES.len()).prop_map(Reply::Error),
        1 => Just(Reply::NotSent),
        1 => Just(Reply::MaybeDelivered),
    ];
    prop_oneof![
        2 => Just(Step::Begin),
        3 => (0u8..3, 1u8..4).prop_map(|(p, n)| Step::Enqueue(p, n)),
        1 => Just(Step::AddOffsets),
        2 => Just(Step::Commit),
        1 => Just(Step::Abort),
        4 => Just(Step::Poll),
        8 => (any::<u8>(), reply).prop_map(|(i, r)| Step::Respond(i, r)),
        1 => any::<u8>().prop_map(Step::Duplicate),
        2 => (0u16..3000).prop_map(Step::Advance),
        1 => Just(Step::FlipFeature),
    ]
}

struct Model {
    rec: Recorder,
    outputs: Vec<Output>,
    now: u64,
    transactional: bool,
    pending: Vec<(RequestId, Request)>,
    answered: Vec<(RequestId, Outcome)>,
    next_pid: i64,
    probes: u64,
    offset: i64,
    // Invariant bookkeeping.
    expected_seq: BTreeMap<(ProducerIdentity, TopicPartition), i32>,
    first_send: BTreeMap<(BatchId, ProducerIdentity), Request>,
    committed_ok: BTreeSet<ProducerIdentity>,
    txn_sent: bool,
    used_by_txn: BTreeSet<ProducerIdentity>,
    retired: BTreeSet<ProducerIdentity>,
    end_txns: BTreeMap<RequestId, (ProducerIdentity, Flow, bool)>,
    reported: BTreeSet<BatchId>,
    offsets_reported: BTreeSet<OffsetsId>,
    fatal: bool,
}

impl Model {
    fn new(transactional: bool, broker: BrokerInfo, epoch_start: i16) -> Self {
        let config = Config {
            transactional_id: transactional.then(|| "tx".to_string()),
            delivery_timeout_ms: 5_000,
            ..Config::default()
        };
        let mut m = Self {
            rec: Recorder::new(config, broker),
            outputs: Vec::new(),
            now: 0,
            transactional,
            pending: Vec::new(),
            answered: Vec::new(),
            next_pid: 100,
            probes: 0,
            offset: 0,
            expected_seq: BTreeMap::new(),
            first_send: BTreeMap::new(),
            committed_ok: BTreeSet::new(),
            txn_sent: false,
            used_by_txn: BTreeSet::new(),
            retired: BTreeSet::new(),
            end_txns: BTreeMap::new(),
            reported: BTreeSet::new(),
            offsets_reported: BTreeSet::new(),
            fatal: false,
        };
        m.next_pid = 100 + i64::from(epoch_start);
        m.apply(Input::Init(Millis(0)));
        m
    }

    fn apply(&mut self, input: Input) -> Output {
        let out = self.rec.apply(input);
        self.outputs.push(out.clone());
        out
    }

    fn state(&self) -> &TxnState {
        self.rec.core().state()
    }

    fn now(&self) -> Millis {
        Millis(self.now)
    }

    fn ok_response(&mut self, req: &Request) -> Response {
        match req {
            Request::FindCoordinator { .. } => Response::FindCoordinator {
                error: None,
                node: 1,
            },
            Request::InitProducerId { current, .. } => {
                let identity = match current {
                    Some(c) if c.epoch < i16::MAX => {
                        ProducerIdentity::new(c.producer_id, c.epoch + 1)
                    }
                    _ => {
                        self.next_pid += 1;
                        // Start some identities close to exhaustion.
                        let epoch = if self.next_pid % 3 == 0 {
                            i16::MAX - 1
                        } else {
                            0
                        };
                        ProducerIdentity::new(self.next_pid, epoch)
                    }
                };
                Response::InitProducerId {
                    error: None,
                    identity,
                }
            }
            Request::AddPartitionsToTxn { partitions, .. } => Response::AddPartitionsToTxn {
                results: partitions.iter().map(|p| (p.clone(), None)).collect(),
            },
            Request::AddOffsetsToTxn { .. } => Response::AddOffsetsToTxn { error: None },
            Request::TxnOffsetCommit { offsets, .. } => Response::TxnOffsetCommit {
                results: offsets
                    .iter()
                    .map(|o| (o.partition.clone(), None))
                    .collect(),
            },
            Request::EndTxn { identity, flow, .. } => Response::EndTxn {
                error: None,
                identity: match flow {
                    Flow::V1 => None,
                    Flow::V2 => Some(if identity.epoch < i16::MAX {
                        ProducerIdentity::new(identity.producer_id, identity.epoch + 1)
                    } else {
                        self.next_pid += 1;
                        ProducerIdentity::new(self.next_pid, 0)
                    }),
                },
            },
            Request::DescribeTransactions { .. } => {
                // Still completing on two answers of three: the core holds
                // the next transaction's opening request meanwhile.
                self.probes += 1;
                Response::DescribeTransactions {
                    error: None,
                    completing: !self.probes.is_multiple_of(3),
                }
            }
            Request::Produce { .. } => {
                self.offset += 1;
                Response::Produce {
                    error: None,
                    base_offset: self.offset,
                    log_start_offset: 0,
                }
            }
        }
    }

    fn error_response(req: &Request, code: ErrorCode) -> Response {
        let e = Some(code);
        match req {
            Request::FindCoordinator { .. } => Response::FindCoordinator { error: e, node: -1 },
            Request::InitProducerId { .. } => Response::InitProducerId {
                error: e,
                identity: ProducerIdentity::new(-1, -1),
            },
            Request::AddPartitionsToTxn { partitions, .. } => Response::AddPartitionsToTxn {
                results: partitions.iter().map(|p| (p.clone(), e)).collect(),
            },
            Request::AddOffsetsToTxn { .. } => Response::AddOffsetsToTxn { error: e },
            Request::TxnOffsetCommit { offsets, .. } => Response::TxnOffsetCommit {
                results: offsets.iter().map(|o| (o.partition.clone(), e)).collect(),
            },
            Request::EndTxn { .. } => Response::EndTxn {
                error: e,
                identity: None,
            },
            Request::DescribeTransactions { .. } => Response::DescribeTransactions {
                error: e,
                completing: false,
            },
            Request::Produce { .. } => Response::Produce {
                error: e,
                base_offset: -1,
                log_start_offset: -1,
            },
        }
    }

    fn version(req: &Request) -> i16 {
        match req {
            Request::Produce {
                flow: Some(Flow::V1),
                ..
            } => 11,
            Request::Produce { .. } => 12,
            Request::EndTxn { flow: Flow::V1, .. } => 4,
            Request::EndTxn { .. } => 5,
            _ => 4,
        }
    }

    /// Polls requests and events dry, checking every output.
    fn drain(&mut self) -> Result<(), TestCaseError> {
        loop {
            let Output::Request(r) = self.apply(Input::PollRequest(self.now())) else {
                unreachable!()
            };
            let Some((id, _target, req)) = r else { break };
            prop_assert!(!self.fatal, "request after Fatal: {req:?}");
            self.check_request(&req)?;
            if let Request::EndTxn {
                identity,
                flow,
                commit,
                ..
            } = &req
            {
                self.end_txns.insert(id, (*identity, *flow, *commit));
                if *flow == Flow::V2 {
                    self.retired.insert(*identity);
                }
            }
            self.pending.push((id, req));
        }
        loop {
            let Output::Event(e) = self.apply(Input::PollEvent) else {
                unreachable!()
            };
            let Some(e) = e else { break };
            match &e {
                Event::Delivered { batch, .. } | Event::DeliveryFailed { batch, .. } => {
                    prop_assert!(
                        self.reported.insert(*batch),
                        "batch {batch:?} reported twice"
                    );
                }
                Event::Committed { identity } => {
                    prop_assert!(
                        self.committed_ok.contains(identity) || !self.txn_sent,
                        "commit of {identity} reported without a successful EndTxn(commit)"
                    );
                }
                Event::OffsetsCommitted { id } => {
                    prop_assert!(
                        self.offsets_reported.insert(*id),
                        "offsets {id:?} reported committed twice"
                    );
                }
                Event::Fatal { .. } => self.fatal = true,
                _ => {}
            }
        }
        if self.fatal {
            prop_assert!(matches!(self.state(), TxnState::Fatal { .. }), "left Fatal");
        }
        Ok(())
    }

    fn check_request(&mut self, req: &Request) -> Result<(), TestCaseError> {
        let txn_identity = match req {
            Request::AddPartitionsToTxn { identity, .. }
            | Request::AddOffsetsToTxn { identity, .. }
            | Request::TxnOffsetCommit { identity, .. } => Some(*identity),
            Request::Produce { stamp, .. } if stamp.transactional => Some(stamp.identity()),
            _ => None,
        };
        if let Some(identity) = txn_identity {
            prop_assert!(
                matches!(
                    self.state(),
                    TxnState::InTransaction { .. } | TxnState::Committing { .. }
                ),
                "{req:?} outside a transaction ({})",
                self.state().name()
            );
            prop_assert!(
                !self.retired.contains(&identity),
                "{req:?} reuses an ended epoch"
            );
            self.txn_sent = true;
            self.used_by_txn.insert(identity);
        }
        if let Request::Produce {
            partition,
            batch,
            record_count,
            stamp,
            ..
        } = req
        {
            prop_assert_eq!(stamp.transactional, self.transactional);
            let id = stamp.identity();
            match self.first_send.get(&(*batch, id)) {
                Some(first) => prop_assert_eq!(first, req, "a retry differs from the first send"),
                None => {
                    // A batch re-stamped under the same identity would be a
                    // silent sequence rewrite.
                    prop_assert!(
                        !self.first_send.keys().any(|(b, i)| b == batch && *i == id),
                        "re-stamped under the same identity"
                    );
                    let key = (id, partition.clone());
                    let expected = self.expected_seq.get(&key).copied().unwrap_or(0);
                    prop_assert_eq!(stamp.base_sequence, expected, "sequence gap under {}", id);
                    self.expected_seq
                        .insert(key, advance_sequence(expected, *record_count));
                    self.first_send.insert((*batch, id), req.clone());
                }
            }
        }
        Ok(())
    }

    fn step(&mut self, step: Step) -> Result<(), TestCaseError> {
        let now = self.now();
        match step {
            Step::Begin => {
                let before = self.rec.core().identity();
                if self.apply(Input::Begin(now)) == Output::Command(Ok(())) {
                    let id = before.expect("identity when Ready");
                    // An epoch is never reused for a new transaction.
                    prop_assert!(
                        !self.retired.contains(&id),
                        "transaction begun on ended epoch {id}"
                    );
                    self.txn_sent = false;
                }
            }
            Step::Enqueue(p, n) => {
                self.apply(Input::Enqueue(
                    now,
                    TopicPartition::new("t", i32::from(p)),
                    u32::from(n),
                ));
            }
            Step::AddOffsets => {
                let group = GroupMetadata {
                    group_id: "g".into(),
                    generation_id: 1,
                    member_id: "m".into(),
                    group_instance_id: None,
                };
                let offsets = vec![OffsetCommit {
                    partition: TopicPartition::new("in", 0),
                    offset: 5,
                    leader_epoch: None,
                    metadata: None,
                }];
                self.apply(Input::AddOffsets(now, group, offsets));
            }
            Step::Commit => {
                self.apply(Input::Commit(now));
            }
            Step::Abort => {
                self.apply(Input::Abort(now));
            }
            Step::Poll => {}
            Step::Respond(i, reply) => {
                if !self.pending.is_empty() {
                    let (id, req) = self.pending.remove(usize::from(i) % self.pending.len());
                    let outcome = match reply {
                        Reply::Ok => Outcome::Received {
                            version: Self::version(&req),
                            response: self.ok_response(&req),
                        },
                        Reply::Error(c) => Outcome::Received {
                            version: Self::version(&req),
                            response: Self::error_response(&req, CODES[c]),
                        },
                        Reply::NotSent => Outcome::NotSent,
                        Reply::MaybeDelivered => Outcome::MaybeDelivered,
                    };
                    if let Some((identity, flow, commit)) = self.end_txns.remove(&id) {
                        if outcome == Outcome::MaybeDelivered && flow == Flow::V1 {
                            self.retired.insert(identity);
                        }
                        if commit
                            && matches!(
                                &outcome,
                                Outcome::Received {
                                    response: Response::EndTxn { error: None, .. },
                                    ..
                                }
                            )
                        {
                            self.committed_ok.insert(identity);
                        }
                    }
                    self.answered.push((id, outcome.clone()));
                    self.apply(Input::Outcome(now, id, outcome));
                }
            }
            Step::Duplicate(i) => {
                if !self.answered.is_empty() {
                    let (id, o) = self.answered[usize::from(i) % self.answered.len()].clone();
                    self.apply(Input::Outcome(now, id, o));
                }
            }
            Step::Advance(ms) => {
                self.now += u64::from(ms);
                self.apply(Input::Timeout(self.now()));
            }
            Step::FlipFeature => {
                let b = self.rec.core().broker_info();
                let flipped = if b.flow() == Flow::V2 {
                    BrokerInfo::v1()
                } else {
                    BrokerInfo::v2()
                };
                self.apply(Input::SetBrokerInfo(flipped));
            }
        }
        self.drain()
    }
}

proptest! {
    // `EXACTLY_MODEL_CASES` raises the case count for a longer local run.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("EXACTLY_MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1500),
        ..ProptestConfig::default()
    })]

    #[test]
    fn invariants_hold_under_random_commands_and_broker_behaviour(
        transactional in any::<bool>(),
        v2 in any::<bool>(),
        epoch_start in prop_oneof![Just(0i16), Just(i16::MAX - 1)],
        steps in proptest::collection::vec(step(), 1..120),
    ) {
        let broker = if v2 { BrokerInfo::v2() } else { BrokerInfo::v1() };
        let mut m = Model::new(transactional, broker, epoch_start);
        m.drain()?;
        for s in steps {
            m.step(s)?;
        }
        // Record and replay: the same inputs give the same outputs.
        let replayed = replay(m.rec.log()).expect("log decodes");
        prop_assert_eq!(replayed, m.outputs);
    }
}

#[test]
fn replay_rejects_bad_logs_without_panicking() {
    use exactly_txn::replay::{decode, DecodeError};
    assert_eq!(decode(b"nope").unwrap_err(), DecodeError::BadHeader);
    let mut rec = Recorder::new(Config::transactional("tx"), BrokerInfo::v1());
    rec.apply(Input::Init(Millis(3)));
    rec.apply(Input::Enqueue(Millis(4), TopicPartition::new("t", 1), 3));
    let log = rec.log().to_vec();
    let (_, _, inputs) = decode(&log).unwrap();
    assert_eq!(
        inputs,
        vec![
            Input::Init(Millis(3)),
            Input::Enqueue(Millis(4), TopicPartition::new("t", 1), 3)
        ]
    );
    // A cut log is either rejected or a prefix of the session (cut between
    // records); never a different session.
    let mut prefixes = 0;
    for cut in 0..log.len() {
        if let Ok((_, _, got)) = decode(&log[..cut]) {
            assert_eq!(got[..], inputs[..got.len()], "cut at {cut}");
            prefixes += 1;
        }
    }
    assert_eq!(prefixes, 2, "header only, header + init");
    let mut garbage = log.clone();
    garbage.push(200);
    assert_eq!(decode(&garbage).unwrap_err(), DecodeError::BadTag(200));
}

proptest! {
    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut log = b"EXTX\x01".to_vec();
        log.extend(bytes);
        let _ = exactly_txn::replay::decode(&log);
    }
}
