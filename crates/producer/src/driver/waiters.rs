//! The application's calls waiting for the core: `init_transactions`,
//! `begin_transaction` (while the core re-initializes between
//! transactions), `commit`/`abort` (several callers may share one),
//! `send_offsets_to_transaction`, `flush` and `close`. Pure bookkeeping: the
//! driver tells it what the core reported, it answers the calls; no runtime
//! needed (the replies are oneshot senders).

use exactly_txn::{OffsetsId, UsageError};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::error::ProducerError;

/// Where a call's answer goes.
pub(crate) type Reply = oneshot::Sender<Result<(), ProducerError>>;

/// Which of commit and abort is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxnOpKind {
    Commit,
    Abort,
}

impl TxnOpKind {
    /// The core's name of the command.
    pub(crate) fn command(self) -> &'static str {
        match self {
            TxnOpKind::Commit => "commit",
            TxnOpKind::Abort => "abort",
        }
    }
}

#[derive(Debug)]
struct TxnOp {
    kind: TxnOpKind,
    replies: Vec<Reply>,
}

#[derive(Debug)]
struct FlushWaiter {
    /// Every batch with a smaller id must be resolved.
    upto: u64,
    error: Option<ProducerError>,
    reply: Reply,
}

#[derive(Debug)]
struct OffsetsWaiter {
    id: OffsetsId,
    reply: Reply,
}

/// `close` in progress.
#[derive(Debug)]
pub(crate) struct Closing {
    pub(crate) deadline: Instant,
    replies: Vec<Reply>,
}

/// What [`Waiters::start_txn_op`] decided.
#[derive(Debug)]
pub(crate) enum TxnOpStart {
    /// No commit or abort runs: ask the core, then
    /// [`Waiters::txn_op_started`] or answer the refusal.
    Ask(Reply),
    /// The same call again (a caller that timed out): it shares the outcome
    /// of the one in progress.
    Joined,
    /// The other one of commit and abort runs: refuse it (in the core's
    /// words).
    Refuse(Reply),
}

fn send_all(replies: impl IntoIterator<Item = Reply>, r: &Result<(), ProducerError>) {
    for reply in replies {
        let _ = reply.send(r.clone());
    }
}

/// Every waiting call.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    init: Vec<Reply>,
    begin: Vec<Reply>,
    txn_op: Option<TxnOp>,
    offsets: Vec<OffsetsWaiter>,
    flush: Vec<FlushWaiter>,
    closing: Option<Closing>,
}

impl Waiters {
    pub(crate) fn wait_init(&mut self, reply: Reply) {
        self.init.push(reply);
    }

    pub(crate) fn wait_begin(&mut self, reply: Reply) {
        self.begin.push(reply);
    }

    /// The `begin_transaction` calls to ask the core for again.
    pub(crate) fn take_begins(&mut self) -> Vec<Reply> {
        std::mem::take(&mut self.begin)
    }

    pub(crate) fn wait_offsets(&mut self, id: OffsetsId, reply: Reply) {
        self.offsets.push(OffsetsWaiter { id, reply });
    }

    /// `flush`: answered once every batch below `upto` is resolved (with the
    /// first error among them, or `error` if given).
    pub(crate) fn wait_flush(&mut self, upto: u64, error: Option<ProducerError>, reply: Reply) {
        self.flush.push(FlushWaiter { upto, error, reply });
    }

    pub(crate) fn start_txn_op(&mut self, kind: TxnOpKind, reply: Reply) -> TxnOpStart {
        match &mut self.txn_op {
            Some(op) if op.kind == kind => {
                op.replies.push(reply);
                TxnOpStart::Joined
            }
            Some(_) => TxnOpStart::Refuse(reply),
            None => TxnOpStart::Ask(reply),
        }
    }

    /// The core accepted the commit or abort.
    pub(crate) fn txn_op_started(&mut self, kind: TxnOpKind, reply: Reply) {
        self.txn_op = Some(TxnOp {
            kind,
            replies: vec![reply],
        });
    }

    fn finish_txn_op(&mut self, kind: TxnOpKind, result: &Result<(), ProducerError>) {
        if self.txn_op.as_ref().is_some_and(|op| op.kind == kind) {
            if let Some(op) = self.txn_op.take() {
                send_all(op.replies, result);
            }
        }
    }

    /// The producer has its first identity.
    pub(crate) fn initialized(&mut self) {
        send_all(self.init.drain(..), &Ok(()));
    }

    pub(crate) fn offsets_committed(&mut self, id: OffsetsId) {
        if let Some(i) = self.offsets.iter().position(|w| w.id == id) {
            let _ = self.offsets.swap_remove(i).reply.send(Ok(()));
        }
    }

    pub(crate) fn committed(&mut self) {
        self.finish_txn_op(TxnOpKind::Commit, &Ok(()));
        send_all(self.offsets.drain(..).map(|w| w.reply), &Ok(()));
    }

    pub(crate) fn aborted(&mut self) {
        self.finish_txn_op(TxnOpKind::Abort, &Ok(()));
        let e = Err(ProducerError::Usage(UsageError::InvalidState {
            command: "send_offsets_to_transaction",
            state: "Aborted",
        }));
        send_all(self.offsets.drain(..).map(|w| w.reply), &e);
    }

    /// The transaction must be aborted: a commit in progress fails.
    pub(crate) fn abortable(&mut self, e: ProducerError) {
        let e = Err(e);
        self.finish_txn_op(TxnOpKind::Commit, &e);
        send_all(self.offsets.drain(..).map(|w| w.reply), &e);
    }

    /// The producer is dead: every transactional call fails with `e`.
    pub(crate) fn fatal(&mut self, e: ProducerError) {
        let e = Err(e);
        send_all(self.init.drain(..).chain(self.begin.drain(..)), &e);
        if let Some(op) = self.txn_op.take() {
            send_all(op.replies, &e);
        }
        send_all(self.offsets.drain(..).map(|w| w.reply), &e);
    }

    /// A batch failed: the flushes that wait for it report the error.
    pub(crate) fn batch_failed(&mut self, batch: u64, e: &ProducerError) {
        for w in &mut self.flush {
            if batch < w.upto && w.error.is_none() {
                w.error = Some(e.clone());
            }
        }
    }

    /// Answers the flushes whose batches are all resolved (`lowest`: the
    /// smallest id of a batch still held).
    pub(crate) fn flushes_done(&mut self, lowest: u64) {
        let (done, wait): (Vec<_>, Vec<_>) = std::mem::take(&mut self.flush)
            .into_iter()
            .partition(|w| lowest >= w.upto);
        self.flush = wait;
        for w in done {
            let _ = w.reply.send(w.error.map_or(Ok(()), Err));
        }
    }

    /// `close` called (again): the earliest deadline wins. Returns whether
    /// it was the first call.
    pub(crate) fn close(&mut self, reply: Option<Reply>, deadline: Instant) -> bool {
        if let Some(c) = &mut self.closing {
            c.replies.extend(reply);
            c.deadline = c.deadline.min(deadline);
            return false;
        }
        self.closing = Some(Closing {
            deadline,
            replies: reply.into_iter().collect(),
        });
        true
    }

    pub(crate) fn closing(&self) -> Option<&Closing> {
        self.closing.as_ref()
    }

    /// The driver stops: every call still waiting fails as closed (a flush
    /// with the error it saw first), and `close` gets `result`.
    pub(crate) fn closed(&mut self, result: Result<(), ProducerError>) {
        let closed = Err(ProducerError::Closed);
        send_all(self.init.drain(..).chain(self.begin.drain(..)), &closed);
        if let Some(op) = self.txn_op.take() {
            send_all(op.replies, &closed);
        }
        send_all(self.offsets.drain(..).map(|w| w.reply), &closed);
        for w in self.flush.drain(..) {
            let _ = w.reply.send(Err(w.error.unwrap_or(ProducerError::Closed)));
        }
        if let Some(c) = self.closing.take() {
            send_all(c.replies, &result);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    type Rx = oneshot::Receiver<Result<(), ProducerError>>;

    fn call() -> (Reply, Rx) {
        oneshot::channel()
    }

    fn answer(rx: &mut Rx) -> Option<Result<(), ProducerError>> {
        rx.try_recv().ok()
    }

    #[test]
    fn commit_calls_share_one_outcome_and_abort_is_refused_meanwhile() {
        let mut w = Waiters::default();
        let (a, mut ra) = call();
        let TxnOpStart::Ask(a) = w.start_txn_op(TxnOpKind::Commit, a) else {
            panic!("nothing runs yet")
        };
        w.txn_op_started(TxnOpKind::Commit, a);
        let (b, mut rb) = call();
        assert!(matches!(
            w.start_txn_op(TxnOpKind::Commit, b),
            TxnOpStart::Joined
        ));
        let (c, _rc) = call();
        assert!(matches!(
            w.start_txn_op(TxnOpKind::Abort, c),
            TxnOpStart::Refuse(_)
        ));
        assert!(answer(&mut ra).is_none());
        // An aborted transaction does not answer a commit.
        w.aborted();
        assert!(answer(&mut ra).is_none());
        w.committed();
        assert!(matches!(answer(&mut ra), Some(Ok(()))));
        assert!(matches!(answer(&mut rb), Some(Ok(()))));
    }

    #[test]
    fn offsets_are_answered_by_id_then_by_the_transactions_end() {
        let mut w = Waiters::default();
        let (a, mut ra) = call();
        let (b, mut rb) = call();
        w.wait_offsets(OffsetsId(1), a);
        w.wait_offsets(OffsetsId(2), b);
        w.offsets_committed(OffsetsId(2));
        assert!(answer(&mut ra).is_none());
        assert!(matches!(answer(&mut rb), Some(Ok(()))));
        w.aborted();
        assert!(matches!(
            answer(&mut ra),
            Some(Err(ProducerError::Usage(UsageError::InvalidState { .. })))
        ));
    }

    #[test]
    fn flush_waits_for_its_batches_and_reports_the_first_error() {
        let mut w = Waiters::default();
        let (a, mut ra) = call();
        let (b, mut rb) = call();
        w.wait_flush(3, None, a);
        w.wait_flush(5, None, b);
        w.batch_failed(4, &ProducerError::Closed);
        w.flushes_done(3);
        assert!(matches!(answer(&mut ra), Some(Ok(()))));
        assert!(answer(&mut rb).is_none());
        w.flushes_done(u64::MAX);
        assert!(matches!(answer(&mut rb), Some(Err(ProducerError::Closed))));
    }

    #[test]
    fn fatal_and_close_answer_everyone() {
        let mut w = Waiters::default();
        let (a, mut ra) = call();
        let (b, mut rb) = call();
        w.wait_init(a);
        w.wait_begin(b);
        w.fatal(ProducerError::Closed);
        assert!(matches!(answer(&mut ra), Some(Err(_))));
        assert!(matches!(answer(&mut rb), Some(Err(_))));

        let (c, mut rc) = call();
        let (d, mut rd) = call();
        let (e, mut re) = call();
        let now = Instant::now();
        w.wait_begin(c);
        assert!(w.close(Some(d), now + std::time::Duration::from_secs(5)));
        assert!(!w.close(Some(e), now));
        assert_eq!(w.closing().map(|c| c.deadline), Some(now));
        w.closed(Ok(()));
        assert!(matches!(answer(&mut rc), Some(Err(ProducerError::Closed))));
        assert!(matches!(answer(&mut rd), Some(Ok(()))));
        assert!(matches!(answer(&mut re), Some(Ok(()))));
    }
}
