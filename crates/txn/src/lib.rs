//! # exactly-txn
//!
//! The sans-IO heart of `exactly`: the idempotent producer (KIP-98, KIP-360)
//! and transactional producer (KIP-98, KIP-447, KIP-588, KIP-890, KIP-1050)
//! state machines, and the one error classifier.
//!
//! **No I/O, deterministic.** This crate has no runtime, no sockets and never
//! reads a clock. Its inputs are commands, request outcomes and `now` (a
//! [`Millis`] passed in); its outputs are requests to send (with their
//! [`Target`]), a timer deadline and [`Event`]s. The same inputs always give
//! the same outputs, so a session can be recorded and replayed ([`replay`]),
//! and the whole core can be simulated on a virtual clock.
//!
//! What it does not do: encode or decode anything (the driver maps
//! [`Request`]/[`Response`] to the wire structs), hold record bytes (a batch
//! is a [`BatchId`] and a record count; the driver writes the [`Stamp`] the
//! core chose into the batch header), partition records, track metadata, or
//! open connections.
//!
//! ## Driving the core
//!
//! ```
//! use exactly_txn::*;
//!
//! let mut core = ProducerCore::new(Config::transactional("tx-1"), BrokerInfo::v2());
//! let t0 = Millis(0);
//! core.init(t0).unwrap();
//!
//! // The driver polls requests, sends them, and reports each outcome.
//! let (id, target, req) = core.poll_request(t0).unwrap();
//! assert!(matches!(req, Request::FindCoordinator { .. }));
//! assert_eq!(target, Target::AnyBroker);
//! core.handle_outcome(t0, id, Outcome::Received {
//!     version: 4,
//!     response: Response::FindCoordinator { error: None, node: 1 },
//! });
//! let (id, target, req) = core.poll_request(t0).unwrap();
//! assert!(matches!(req, Request::InitProducerId { current: None, .. }));
//! assert_eq!(target, Target::TransactionCoordinator(1));
//! core.handle_outcome(t0, id, Outcome::Received {
//!     version: 5,
//!     response: Response::InitProducerId { error: None, identity: ProducerIdentity::new(42, 0) },
//! });
//! assert_eq!(core.poll_event(), Some(Event::Initialized { identity: ProducerIdentity::new(42, 0) }));
//!
//! // A transaction: the core stamps the batch; the driver writes the stamp
//! // into the batch header and sends it to the partition leader.
//! core.begin(t0).unwrap();
//! let tp = TopicPartition::new("out", 0);
//! let batch = core.enqueue(t0, tp.clone(), 10).unwrap();
//! let (id, target, req) = core.poll_request(t0).unwrap();
//! let Request::Produce { stamp, .. } = req else { panic!("expected produce") };
//! assert_eq!(target, Target::Leader(tp.clone()));
//! assert_eq!((stamp.producer_id, stamp.epoch, stamp.base_sequence, stamp.transactional), (42, 0, 0, true));
//! core.handle_outcome(t0, id, Outcome::Received {
//!     version: 12,
//!     response: Response::Produce { error: None, base_offset: 100, log_start_offset: 0 },
//! });
//! assert_eq!(core.poll_event(), Some(Event::Delivered { batch, partition: tp, base_offset: Some(100) }));
//!
//! // Commit: EndTxn v5 returns the next epoch (KIP-890).
//! core.commit(t0).unwrap();
//! let (id, _, req) = core.poll_request(t0).unwrap();
//! assert!(matches!(req, Request::EndTxn { commit: true, .. }));
//! core.handle_outcome(t0, id, Outcome::Received {
//!     version: 5,
//!     response: Response::EndTxn { error: None, identity: Some(ProducerIdentity::new(42, 1)) },
//! });
//! assert_eq!(core.poll_event(), Some(Event::Committed { identity: ProducerIdentity::new(42, 0) }));
//! assert_eq!(core.identity(), Some(ProducerIdentity::new(42, 1)));
//! assert_eq!(core.poll_request(t0), None);
//! ```
//!
//! See [`ProducerCore`] for the calling order; [`TxnState`] for the state
//! diagram, with every transition beside it in the same file
//! (`src/state.rs`: one method per arrow, an [`IllegalTransition`] for a move
//! the state does not allow; `core/` only decides when to take them);
//! [`classify()`] for the error table; and the crate's README for the
//! simulation knobs.

mod classify;
mod config;
mod core;
mod error;
mod io;
mod ledger;
pub mod replay;
mod state;
mod types;

pub use crate::classify::{classify, Context as ClassifyContext, ErrorClass};
pub use crate::config::{BrokerInfo, Config, Flow};
pub use crate::core::{Acceptance, ProducerCore};
pub use crate::error::{
    DeliveryError, DeliveryFailure, ErrorReason, Severity, TxnError, UsageError,
};
pub use crate::io::{CoordinatorType, Event, IdentityCause, Outcome, Request, Response, Target};
pub use crate::state::{
    EndTxnStatus, EpochRisk, IllegalTransition, InitReason, OffsetsJob, OffsetsStep, Opening,
    Transaction, TxnState,
};
pub use crate::types::{
    advance_sequence, BatchId, GroupMetadata, Millis, NodeId, OffsetCommit, OffsetsId,
    ProducerIdentity, RequestId, Stamp, TopicPartition,
};

/// Re-exported so users of [`classify()`] need not depend on the codec.
pub use exactly_codec::messages::ApiKey;
pub use exactly_codec::ErrorCode;
