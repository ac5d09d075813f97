//! A small harness to drive the core by hand in unit tests.
#![allow(dead_code, unreachable_pub)]

use exactly_txn::*;

pub const PID: i64 = 42;

pub fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("t", p)
}

pub fn id(pid: i64, epoch: i16) -> ProducerIdentity {
    ProducerIdentity::new(pid, epoch)
}

pub fn group() -> GroupMetadata {
    GroupMetadata {
        group_id: "g".into(),
        generation_id: 3,
        member_id: "member-1".into(),
        group_instance_id: Some("instance-1".into()),
    }
}

pub fn offsets() -> Vec<OffsetCommit> {
    vec![OffsetCommit {
        partition: TopicPartition::new("in", 0),
        offset: 17,
        leader_epoch: Some(1),
        metadata: None,
    }]
}

pub struct H {
    pub core: ProducerCore,
    pub now: Millis,
}

pub fn ok<T: Into<Option<ErrorCode>>>(e: T) -> Option<ErrorCode> {
    e.into()
}

impl H {
    pub fn new(config: Config, broker: BrokerInfo) -> Self {
        Self {
            core: ProducerCore::new(config, broker),
            now: Millis(0),
        }
    }

    pub fn txn(broker: BrokerInfo) -> Self {
        Self::new(Config::transactional("tx"), broker)
    }

    pub fn idempotent() -> Self {
        Self::new(Config::default(), BrokerInfo::v2())
    }

    pub fn advance(&mut self, ms: u64) {
        self.now = self.now.plus(ms);
        self.core.handle_timeout(self.now);
    }

    pub fn poll(&mut self) -> Option<(RequestId, Target, Request)> {
        self.core.poll_request(self.now)
    }

    /// Polls one request, panicking if there is none. A completion probe
    /// (DescribeTransactions after an EndTxn) is answered on the way with
    /// "the previous transaction completed"; `tests/completion.rs` tests the
    /// probe itself through [`H::poll`].
    pub fn req(&mut self) -> (RequestId, Request) {
        loop {
            let (id, _, r) = self.poll().expect("a request");
            if let Request::DescribeTransactions { .. } = r {
                self.answer(
                    id,
                    0,
                    Response::DescribeTransactions {
                        error: None,
                        completing: false,
                    },
                );
                continue;
            }
            return (id, r);
        }
    }

    pub fn none(&mut self) {
        let r = self.poll();
        assert!(r.is_none(), "unexpected request {r:?}");
    }

    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.core.poll_event()).collect()
    }

    pub fn answer(&mut self, id: RequestId, version: i16, response: Response) {
        self.core
            .handle_outcome(self.now, id, Outcome::Received { version, response });
    }

    pub fn lost(&mut self, id: RequestId) {
        self.core
            .handle_outcome(self.now, id, Outcome::MaybeDelivered);
    }

    pub fn not_sent(&mut self, id: RequestId) {
        self.core.handle_outcome(self.now, id, Outcome::NotSent);
    }

    pub fn produce_ok(&mut self, id: RequestId, offset: i64) {
        self.answer(
            id,
            12,
            Response::Produce {
                error: None,
                base_offset: offset,
                log_start_offset: 0,
            },
        );
    }

    /// Writes one batch of `records` to `tp` and acknowledges it, so that
    /// the broker holds state for the producer there and the core pipelines
    /// the next batches (before a first acknowledgement it sends one at a
    /// time). Returns the events.
    pub fn prime(&mut self, tp: TopicPartition, records: u32) -> Vec<Event> {
        self.core.enqueue(self.now, tp, records).unwrap();
        let (rid, r) = self.req();
        assert!(matches!(r, Request::Produce { .. }), "{r:?}");
        self.produce_ok(rid, 0);
        self.events()
    }

    pub fn produce_err(&mut self, id: RequestId, version: i16, code: ErrorCode) {
        self.answer(
            id,
            version,
            Response::Produce {
                error: Some(code),
                base_offset: -1,
                log_start_offset: 0,
            },
        );
    }

    pub fn end_ok(&mut self, id: RequestId, next: Option<ProducerIdentity>) {
        self.answer(
            id,
            5,
            Response::EndTxn {
                error: None,
                identity: next,
            },
        );
    }

    /// FindCoordinator + InitProducerId for a transactional producer, or
    /// InitProducerId for an idempotent one. Leaves the core Ready.
    pub fn init(&mut self, identity: ProducerIdentity) {
        self.core.init(self.now).expect("init");
        let (rid, r) = self.req();
        let rid = if let Request::FindCoordinator { .. } = r {
            self.answer(
                rid,
                4,
                Response::FindCoordinator {
                    error: None,
                    node: 7,
                },
            );
            self.req().0
        } else {
            rid
        };
        self.answer(
            rid,
            5,
            Response::InitProducerId {
                error: None,
                identity,
            },
        );
        assert_eq!(*self.core.state(), TxnState::Ready);
        self.events();
    }

    /// Answers an InitProducerId that must be the next request.
    pub fn answer_init(&mut self, identity: ProducerIdentity) -> Request {
        let (rid, r) = self.req();
        assert!(matches!(r, Request::InitProducerId { .. }), "{r:?}");
        self.answer(
            rid,
            5,
            Response::InitProducerId {
                error: None,
                identity,
            },
        );
        r
    }

    /// Flow v1 abort: EndTxn(abort) must be the next request, then the
    /// InitProducerId that bumps the epoch. Returns the InitProducerId.
    pub fn answer_v1_abort(&mut self, bumped: ProducerIdentity) -> Request {
        let (rid, r) = self.req();
        assert!(
            matches!(r, Request::EndTxn { commit: false, .. }),
            "expected EndTxn(abort), got {r:?}"
        );
        self.answer(
            rid,
            4,
            Response::EndTxn {
                error: None,
                identity: None,
            },
        );
        self.answer_init(bumped)
    }

    pub fn stamp_of(r: &Request) -> Stamp {
        match r {
            Request::Produce { stamp, .. } => *stamp,
            other => panic!("not a produce: {other:?}"),
        }
    }

    /// Answers a v1 AddPartitionsToTxn that must be the next request.
    pub fn add_partitions_ok(&mut self) -> Vec<TopicPartition> {
        let (rid, r) = self.req();
        let Request::AddPartitionsToTxn { partitions, .. } = r else {
            panic!("expected AddPartitionsToTxn, got {r:?}");
        };
        self.answer(
            rid,
            3,
            Response::AddPartitionsToTxn {
                results: partitions.iter().map(|p| (p.clone(), None)).collect(),
            },
        );
        partitions
    }

    pub fn state_name(&self) -> &'static str {
        self.core.state().name()
    }
}
