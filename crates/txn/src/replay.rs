//! Record and replay: every input to the core as a compact binary log.
//!
//! The core is deterministic, so the log of its inputs (commands, outcomes,
//! timeouts and polls, each with its `now`) reproduces a session's outputs
//! exactly: a driver can record a production session with [`Recorder`] and a
//! developer can [`replay`] it under a debugger.
//!
//! Format: a header (magic `EXTX`, version 2, the [`Config`] and
//! [`BrokerInfo`]; version 2 added the completion probe), then one record per input: a tag byte and its fields.
//! Integers are LEB128 varints (zig-zag for signed ones), strings and lists
//! are length-prefixed. Decoding never allocates more than the input's length
//! and never panics on bad input.

use exactly_codec::ErrorCode;

use crate::config::{BrokerInfo, Config};
use crate::core::ProducerCore;
use crate::error::UsageError;
use crate::io::{Event, Outcome, Request, Response, Target};
use crate::types::{
    BatchId, GroupMetadata, Millis, OffsetCommit, ProducerIdentity, RequestId, TopicPartition,
};

const MAGIC: &[u8; 4] = b"EXTX";
const VERSION: u8 = 2;

/// One input to the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// [`ProducerCore::set_broker_info`].
    SetBrokerInfo(BrokerInfo),
    /// [`ProducerCore::init`].
    Init(Millis),
    /// [`ProducerCore::begin`].
    Begin(Millis),
    /// [`ProducerCore::enqueue`].
    Enqueue(Millis, TopicPartition, u32),
    /// [`ProducerCore::add_offsets`].
    AddOffsets(Millis, GroupMetadata, Vec<OffsetCommit>),
    /// [`ProducerCore::commit`].
    Commit(Millis),
    /// [`ProducerCore::abort`].
    Abort(Millis),
    /// [`ProducerCore::handle_outcome`].
    Outcome(Millis, RequestId, Outcome),
    /// [`ProducerCore::handle_timeout`].
    Timeout(Millis),
    /// [`ProducerCore::poll_request`].
    PollRequest(Millis),
    /// [`ProducerCore::poll_event`].
    PollEvent,
}

/// What the core returned for one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A command's result.
    Command(Result<(), UsageError>),
    /// `enqueue`'s result.
    Enqueued(Result<BatchId, UsageError>),
    /// `poll_request`'s result.
    Request(Option<(RequestId, Target, Request)>),
    /// `poll_event`'s result.
    Event(Option<Event>),
    /// An input with no return value.
    Done,
}

/// A log that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The log ends inside a record.
    #[error("log truncated")]
    Truncated,
    /// Not a log of this format or version.
    #[error("bad header")]
    BadHeader,
    /// An unknown tag.
    #[error("unknown tag {0}")]
    BadTag(u8),
    /// A value out of range (varint too long, invalid UTF-8...).
    #[error("invalid value")]
    Invalid,
}

/// Applies one input to the core and returns what it returned.
pub fn apply(core: &mut ProducerCore, input: &Input) -> Output {
    match input {
        Input::SetBrokerInfo(b) => {
            core.set_broker_info(*b);
            Output::Done
        }
        Input::Init(now) => Output::Command(core.init(*now)),
        Input::Begin(now) => Output::Command(core.begin(*now)),
        Input::Enqueue(now, tp, n) => Output::Enqueued(core.enqueue(*now, tp.clone(), *n)),
        Input::AddOffsets(now, g, o) => {
            Output::Command(core.add_offsets(*now, g.clone(), o.clone()).map(|_| ()))
        }
        Input::Commit(now) => Output::Command(core.commit(*now)),
        Input::Abort(now) => Output::Command(core.abort(*now)),
        Input::Outcome(now, id, o) => {
            core.handle_outcome(*now, *id, o.clone());
            Output::Done
        }
        Input::Timeout(now) => {
            core.handle_timeout(*now);
            Output::Done
        }
        Input::PollRequest(now) => Output::Request(core.poll_request(*now)),
        Input::PollEvent => Output::Event(core.poll_event()),
    }
}

/// A core that logs every input it is given.
#[derive(Debug, Clone)]
pub struct Recorder {
    core: ProducerCore,
    log: Vec<u8>,
}

impl Recorder {
    /// A new core, with the header written.
    pub fn new(config: Config, broker: BrokerInfo) -> Self {
        let mut w = Writer(Vec::new());
        w.0.extend_from_slice(MAGIC);
        w.0.push(VERSION);
        w.config(&config);
        w.broker(&broker);
        Self {
            core: ProducerCore::new(config, broker),
            log: w.0,
        }
    }

    /// Logs and applies one input.
    pub fn apply(&mut self, input: Input) -> Output {
        let mut w = Writer(std::mem::take(&mut self.log));
        w.input(&input);
        self.log = w.0;
        apply(&mut self.core, &input)
    }

    /// The core (read-only: every change must go through
    /// [`apply`](Recorder::apply)).
    pub fn core(&self) -> &ProducerCore {
        &self.core
    }

    /// The log so far.
    pub fn log(&self) -> &[u8] {
        &self.log
    }
}

/// Decodes a log into its configuration and inputs.
pub fn decode(log: &[u8]) -> Result<(Config, BrokerInfo, Vec<Input>), DecodeError> {
    let mut r = Reader(log);
    if r.take(4)? != MAGIC || r.u8()? != VERSION {
        return Err(DecodeError::BadHeader);
    }
    let config = r.config()?;
    let broker = r.broker()?;
    let mut inputs = Vec::new();
    while !r.0.is_empty() {
        inputs.push(r.input()?);
    }
    Ok((config, broker, inputs))
}

/// Replays a log on a fresh core and returns every output, in order.
pub fn replay(log: &[u8]) -> Result<Vec<Output>, DecodeError> {
    let (config, broker, inputs) = decode(log)?;
    let mut core = ProducerCore::new(config, broker);
    Ok(inputs.iter().map(|i| apply(&mut core, i)).collect())
}

struct Writer(Vec<u8>);

impl Writer {
    fn u64(&mut self, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(b);
                return;
            }
            self.0.push(b | 0x80);
        }
    }
    fn i64(&mut self, v: i64) {
        self.u64(((v << 1) ^ (v >> 63)) as u64);
    }
    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }
    fn opt_str(&mut self, s: &Option<String>) {
        match s {
            None => self.0.push(0),
            Some(s) => {
                self.0.push(1);
                self.str(s);
            }
        }
    }
    fn code(&mut self, e: Option<ErrorCode>) {
        self.i64(e.map_or(0, |e| i64::from(e.code())));
    }
    fn identity(&mut self, id: ProducerIdentity) {
        self.i64(id.producer_id);
        self.i64(i64::from(id.epoch));
    }
    fn tp(&mut self, tp: &TopicPartition) {
        self.str(&tp.topic);
        self.i64(i64::from(tp.partition));
    }
    fn config(&mut self, c: &Config) {
        self.opt_str(&c.transactional_id);
        self.i64(i64::from(c.transaction_timeout_ms));
        self.u64(c.delivery_timeout_ms);
        self.u64(c.retry_backoff_ms);
        self.u64(c.retry_backoff_max_ms);
        self.u64(c.concurrent_transactions_backoff_ms);
        self.u64(c.max_in_flight_per_partition as u64);
        self.0.push(u8::from(c.probe_completion));
    }
    fn broker(&mut self, b: &BrokerInfo) {
        for v in [
            b.transaction_version,
            b.produce,
            b.init_producer_id,
            b.end_txn,
            b.txn_offset_commit,
        ] {
            self.i64(i64::from(v));
        }
    }
    fn results(&mut self, rs: &[(TopicPartition, Option<ErrorCode>)]) {
        self.u64(rs.len() as u64);
        for (tp, e) in rs {
            self.tp(tp);
            self.code(*e);
        }
    }
    fn response(&mut self, r: &Response) {
        match r {
            Response::FindCoordinator { error, node } => {
                self.0.push(0);
                self.code(*error);
                self.i64(i64::from(*node));
            }
            Response::InitProducerId { error, identity } => {
                self.0.push(1);
                self.code(*error);
                self.identity(*identity);
            }
            Response::AddPartitionsToTxn { results } => {
                self.0.push(2);
                self.results(results);
            }
            Response::AddOffsetsToTxn { error } => {
                self.0.push(3);
                self.code(*error);
            }
            Response::TxnOffsetCommit { results } => {
                self.0.push(4);
                self.results(results);
            }
            Response::EndTxn { error, identity } => {
                self.0.push(5);
                self.code(*error);
                match identity {
                    None => self.0.push(0),
                    Some(id) => {
                        self.0.push(1);
                        self.identity(*id);
                    }
                }
            }
            Response::Produce {
                error,
                base_offset,
                log_start_offset,
            } => {
                self.0.push(6);
                self.code(*error);
                self.i64(*base_offset);
                self.i64(*log_start_offset);
            }
            Response::DescribeTransactions { error, completing } => {
                self.0.push(7);
                self.code(*error);
                self.0.push(u8::from(*completing));
            }
        }
    }
    fn input(&mut self, input: &Input) {
        match input {
            Input::SetBrokerInfo(b) => {
                self.0.push(0);
                self.broker(b);
            }
            Input::Init(now) => self.tagged_now(1, *now),
            Input::Begin(now) => self.tagged_now(2, *now),
            Input::Enqueue(now, tp, n) => {
                self.tagged_now(3, *now);
                self.tp(tp);
                self.u64(u64::from(*n));
            }
            Input::AddOffsets(now, g, offsets) => {
                self.tagged_now(4, *now);
                self.str(&g.group_id);
                self.i64(i64::from(g.generation_id));
                self.str(&g.member_id);
                self.opt_str(&g.group_instance_id);
                self.u64(offsets.len() as u64);
                for o in offsets {
                    self.tp(&o.partition);
                    self.i64(o.offset);
                    match o.leader_epoch {
                        None => self.0.push(0),
                        Some(e) => {
                            self.0.push(1);
                            self.i64(i64::from(e));
                        }
                    }
                    self.opt_str(&o.metadata);
                }
            }
            Input::Commit(now) => self.tagged_now(5, *now),
            Input::Abort(now) => self.tagged_now(6, *now),
            Input::Outcome(now, id, outcome) => {
                self.tagged_now(7, *now);
                self.u64(id.0);
                match outcome {
                    Outcome::NotSent => self.0.push(0),
                    Outcome::MaybeDelivered => self.0.push(1),
                    Outcome::Received { version, response } => {
                        self.0.push(2);
                        self.i64(i64::from(*version));
                        self.response(response);
                    }
                }
            }
            Input::Timeout(now) => self.tagged_now(8, *now),
            Input::PollRequest(now) => self.tagged_now(9, *now),
            Input::PollEvent => self.0.push(10),
        }
    }
    fn tagged_now(&mut self, tag: u8, now: Millis) {
        self.0.push(tag);
        self.u64(now.0);
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        if n > self.0.len() {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::Invalid)
    }
    fn i64(&mut self) -> Result<i64, DecodeError> {
        let v = self.u64()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }
    fn i32(&mut self) -> Result<i32, DecodeError> {
        i32::try_from(self.i64()?).map_err(|_| DecodeError::Invalid)
    }
    fn i16(&mut self) -> Result<i16, DecodeError> {
        i16::try_from(self.i64()?).map_err(|_| DecodeError::Invalid)
    }
    /// A length that cannot exceed what is left (every element takes at
    /// least one byte), so no allocation is sized by a bogus length.
    fn len(&mut self) -> Result<usize, DecodeError> {
        let n = usize::try_from(self.u64()?).map_err(|_| DecodeError::Invalid)?;
        if n > self.0.len() {
            return Err(DecodeError::Truncated);
        }
        Ok(n)
    }
    fn str(&mut self) -> Result<String, DecodeError> {
        let n = self.len()?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| DecodeError::Invalid)
    }
    fn opt<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            1 => f(self).map(Some),
            t => Err(DecodeError::BadTag(t)),
        }
    }
    fn code(&mut self) -> Result<Option<ErrorCode>, DecodeError> {
        Ok(ErrorCode::from_code(self.i16()?))
    }
    fn identity(&mut self) -> Result<ProducerIdentity, DecodeError> {
        Ok(ProducerIdentity::new(self.i64()?, self.i16()?))
    }
    fn tp(&mut self) -> Result<TopicPartition, DecodeError> {
        Ok(TopicPartition::new(self.str()?, self.i32()?))
    }
    fn now(&mut self) -> Result<Millis, DecodeError> {
        Ok(Millis(self.u64()?))
    }
    fn config(&mut self) -> Result<Config, DecodeError> {
        Ok(Config {
            transactional_id: self.opt(Self::str)?,
            transaction_timeout_ms: self.i32()?,
            delivery_timeout_ms: self.u64()?,
            retry_backoff_ms: self.u64()?,
            retry_backoff_max_ms: self.u64()?,
            concurrent_transactions_backoff_ms: self.u64()?,
            max_in_flight_per_partition: usize::try_from(self.u64()?)
                .map_err(|_| DecodeError::Invalid)?,
            probe_completion: match self.u8()? {
                0 => false,
                1 => true,
                t => return Err(DecodeError::BadTag(t)),
            },
        })
    }
    fn broker(&mut self) -> Result<BrokerInfo, DecodeError> {
        Ok(BrokerInfo {
            transaction_version: self.i16()?,
            produce: self.i16()?,
            init_producer_id: self.i16()?,
            end_txn: self.i16()?,
            txn_offset_commit: self.i16()?,
        })
    }
    fn results(&mut self) -> Result<Vec<(TopicPartition, Option<ErrorCode>)>, DecodeError> {
        let n = self.len()?;
        (0..n).map(|_| Ok((self.tp()?, self.code()?))).collect()
    }
    fn response(&mut self) -> Result<Response, DecodeError> {
        Ok(match self.u8()? {
            0 => Response::FindCoordinator {
                error: self.code()?,
                node: self.i32()?,
            },
            1 => Response::InitProducerId {
                error: self.code()?,
                identity: self.identity()?,
            },
            2 => Response::AddPartitionsToTxn {
                results: self.results()?,
            },
            3 => Response::AddOffsetsToTxn {
                error: self.code()?,
            },
            4 => Response::TxnOffsetCommit {
                results: self.results()?,
            },
            5 => Response::EndTxn {
                error: self.code()?,
                identity: self.opt(Self::identity)?,
            },
            6 => Response::Produce {
                error: self.code()?,
                base_offset: self.i64()?,
                log_start_offset: self.i64()?,
            },
            7 => Response::DescribeTransactions {
                error: self.code()?,
                completing: match self.u8()? {
                    0 => false,
                    1 => true,
                    t => return Err(DecodeError::BadTag(t)),
                },
            },
            t => return Err(DecodeError::BadTag(t)),
        })
    }
    fn input(&mut self) -> Result<Input, DecodeError> {
        Ok(match self.u8()? {
            0 => Input::SetBrokerInfo(self.broker()?),
            1 => Input::Init(self.now()?),
            2 => Input::Begin(self.now()?),
            3 => {
                let now = self.now()?;
                let tp = self.tp()?;
                let n = u32::try_from(self.u64()?).map_err(|_| DecodeError::Invalid)?;
                Input::Enqueue(now, tp, n)
            }
            4 => {
                let now = self.now()?;
                let group = GroupMetadata {
                    group_id: self.str()?,
                    generation_id: self.i32()?,
                    member_id: self.str()?,
                    group_instance_id: self.opt(Self::str)?,
                };
                let n = self.len()?;
                let offsets = (0..n)
                    .map(|_| {
                        Ok(OffsetCommit {
                            partition: self.tp()?,
                            offset: self.i64()?,
                            leader_epoch: self.opt(Self::i32)?,
                            metadata: self.opt(Self::str)?,
                        })
                    })
                    .collect::<Result<_, DecodeError>>()?;
                Input::AddOffsets(now, group, offsets)
            }
            5 => Input::Commit(self.now()?),
            6 => Input::Abort(self.now()?),
            7 => {
                let now = self.now()?;
                let id = RequestId(self.u64()?);
                let outcome = match self.u8()? {
                    0 => Outcome::NotSent,
                    1 => Outcome::MaybeDelivered,
                    2 => Outcome::Received {
                        version: self.i16()?,
                        response: self.response()?,
                    },
                    t => return Err(DecodeError::BadTag(t)),
                };
                Input::Outcome(now, id, outcome)
            }
            8 => Input::Timeout(self.now()?),
            9 => Input::PollRequest(self.now()?),
            10 => Input::PollEvent,
            t => return Err(DecodeError::BadTag(t)),
        })
    }
}
