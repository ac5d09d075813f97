//! The task that owns one socket and pipelines requests over it.
//!
//! One task per connection reads, writes, admits new requests and watches
//! deadlines in a single `select!` loop; every branch is cancel-safe
//! (`read_buf`, `write_buf`, `flush`, `mpsc::recv`, `sleep_until`), so no
//! branch can lose bytes when another one wins. Reading and writing proceed
//! together: a big request never blocks the responses that would let the
//! broker read it.
//!
//! Callers talk to the task through [`Pipeline`]: a request is a whole frame
//! encoded by the caller with a placeholder correlation id; the task stamps the
//! real id when it queues the frame for writing, so ids follow write order.
//! A caller that drops its future drops the receiving half of its reply
//! channel: if the frame was not written yet it is skipped, otherwise its
//! response is read and discarded, and the stream stays in step.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use exactly_codec::{peek_correlation_id, FrameDecoder};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::{sleep_until, Instant};

use super::inflight::{CorrelationIds, Entry, InFlight, Reply, ReplyTx};
use crate::error::{Delivery, Disconnect, NetError};
use crate::metrics::Metrics;

/// Any byte stream a connection can run over (TCP, TLS over TCP, a test pipe).
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// Offset of the correlation id in a size-prefixed request frame: size (4),
/// api key (2), api version (2). Every request header version has this shape.
const CORRELATION_OFFSET: usize = 8;

/// A request handed to the task.
pub(crate) struct Command {
    /// The whole size-prefixed frame, correlation id still a placeholder.
    pub(crate) frame: BytesMut,
    pub(crate) api_key: i16,
    pub(crate) version: i16,
    pub(crate) timeout: Duration,
    pub(crate) reply: ReplyTx,
    /// False for the one request the broker never answers: Produce with
    /// acks=0. Its caller is answered once the whole frame is written.
    pub(crate) expects_response: bool,
}

/// A request the broker will not answer, waiting to be wholly written.
struct Unanswered {
    end: u64,
    deadline: Instant,
    correlation_id: i32,
    reply: ReplyTx,
}

/// State shared between the task and the handles.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) addr: Arc<str>,
    /// Set once, when the task ends; what ended it.
    pub(crate) closed: Mutex<Option<Disconnect>>,
    pub(crate) is_closed: AtomicBool,
    /// The broker asked us to hold back until then (KIP-219).
    pub(crate) throttle_until: Mutex<Option<Instant>>,
    pub(crate) shutdown: Notify,
    /// Stop taking requests, finish those queued and in flight, then close.
    pub(crate) retire: Notify,
    pub(crate) metrics: Arc<Metrics>,
}

impl Shared {
    fn cause(&self) -> Disconnect {
        self.closed
            .lock()
            .ok()
            .and_then(|c| c.clone())
            .unwrap_or(Disconnect::Closed)
    }

    pub(crate) fn throttle(&self, until: Instant) {
        if let Ok(mut t) = self.throttle_until.lock() {
            if t.is_none_or(|cur| cur < until) {
                *t = Some(until);
            }
        }
    }

    fn throttled_until(&self, now: Instant) -> Option<Instant> {
        let t = self.throttle_until.lock().ok()?.filter(|&t| t > now);
        t
    }
}

/// Options of one pipeline.
#[derive(Debug, Clone)]
pub(crate) struct PipelineOptions {
    pub(crate) max_in_flight: usize,
    pub(crate) max_response_size: usize,
    pub(crate) first_correlation_id: i32,
}

/// The handle to a connection task.
#[derive(Debug, Clone)]
pub(crate) struct Pipeline {
    tx: mpsc::Sender<Command>,
    pub(crate) shared: Arc<Shared>,
}

impl Pipeline {
    /// Spawns the task owning `stream`.
    pub(crate) fn spawn(
        stream: impl Stream,
        addr: Arc<str>,
        opts: PipelineOptions,
        metrics: Arc<Metrics>,
    ) -> Pipeline {
        // The channel only buffers requests waiting for an in-flight slot;
        // senders wait (cancel-safely) when it is full.
        let (tx, rx) = mpsc::channel(opts.max_in_flight.clamp(16, 1024));
        let shared = Arc::new(Shared {
            addr,
            closed: Mutex::new(None),
            is_closed: AtomicBool::new(false),
            throttle_until: Mutex::new(None),
            shutdown: Notify::new(),
            retire: Notify::new(),
            metrics,
        });
        let (reader, writer) = tokio::io::split(stream);
        let task = Task {
            rx,
            reader: Box::new(reader),
            writer: Box::new(writer),
            rbuf: BytesMut::with_capacity(64 * 1024),
            wbuf: BytesMut::with_capacity(64 * 1024),
            needs_flush: false,
            decoder: FrameDecoder::new(opts.max_response_size),
            inflight: InFlight::default(),
            unanswered: VecDeque::new(),
            ids: CorrelationIds::starting_at(opts.first_correlation_id),
            queued: 0,
            written: 0,
            max_in_flight: opts.max_in_flight.max(1),
            shared: shared.clone(),
            rx_open: true,
            parked: None,
        };
        tokio::spawn(task.run());
        Pipeline { tx, shared }
    }

    /// Whether the task has ended.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.is_closed.load(Ordering::Acquire)
    }

    /// Asks the task to end; in-flight requests fail with
    /// [`Disconnect::Closed`].
    pub(crate) fn close(&self) {
        self.shared.shutdown.notify_one();
    }

    /// Asks the task to take no new requests, answer those already queued or
    /// in flight, then close: a graceful end (e.g. before a SASL session
    /// expires). Later requests fail as not sent.
    pub(crate) fn retire(&self) {
        self.shared.retire.notify_one();
    }

    /// Sends one frame and waits for its response frame. Cancel-safe.
    pub(crate) async fn request(
        &self,
        frame: BytesMut,
        api_key: i16,
        version: i16,
        timeout: Duration,
    ) -> Result<Reply, NetError> {
        self.submit(frame, api_key, version, timeout, true).await
    }

    /// Sends one frame the broker will not answer (Produce with acks=0);
    /// completes once the frame is wholly written. Cancel-safe.
    pub(crate) async fn request_no_response(
        &self,
        frame: BytesMut,
        api_key: i16,
        version: i16,
        timeout: Duration,
    ) -> Result<Reply, NetError> {
        self.submit(frame, api_key, version, timeout, false).await
    }

    async fn submit(
        &self,
        frame: BytesMut,
        api_key: i16,
        version: i16,
        timeout: Duration,
        expects_response: bool,
    ) -> Result<Reply, NetError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command {
            frame,
            api_key,
            version,
            timeout,
            reply,
            expects_response,
        };
        if self.tx.send(cmd).await.is_err() {
            return Err(NetError::lost(
                &self.shared.addr,
                Delivery::NotSent,
                self.shared.cause(),
            ));
        }
        match rx.await {
            Ok(r) => r,
            // The task dropped the request without answering: only possible
            // while it ends, before the request was written.
            Err(_) => Err(NetError::lost(
                &self.shared.addr,
                Delivery::NotSent,
                self.shared.cause(),
            )),
        }
    }
}

struct Task {
    rx: mpsc::Receiver<Command>,
    reader: Box<dyn AsyncRead + Send + Unpin>,
    writer: Box<dyn AsyncWrite + Send + Unpin>,
    rbuf: BytesMut,
    wbuf: BytesMut,
    needs_flush: bool,
    decoder: FrameDecoder,
    inflight: InFlight,
    /// Requests without a response, in write order.
    unanswered: VecDeque<Unanswered>,
    ids: CorrelationIds,
    /// Bytes appended to the output stream so far.
    queued: u64,
    /// Bytes accepted by the writer so far.
    written: u64,
    max_in_flight: usize,
    shared: Arc<Shared>,
    rx_open: bool,
    /// A request received while no slot was known to be free; admitted at the
    /// top of the next turn if it may go (throttling can begin meanwhile).
    parked: Option<Command>,
}

/// What ended one loop turn badly.
enum Stop {
    Fail(Disconnect),
}

impl Task {
    async fn run(mut self) {
        let cause = match self.run_loop().await {
            Ok(()) => Disconnect::Closed,
            Err(Stop::Fail(c)) => c,
        };
        self.finish(cause);
    }

    fn can_admit(&self, now: Instant) -> bool {
        self.rx_open
            && self.inflight.len() + self.unanswered.len() < self.max_in_flight
            && self.shared.throttled_until(now).is_none()
    }

    /// Queues a command's frame for writing, unless its caller is gone.
    fn admit(&mut self, mut cmd: Command, now: Instant) {
        if cmd.reply.is_closed() {
            // Dropped before a byte was written: skip it entirely.
            return;
        }
        if cmd.frame.len() < CORRELATION_OFFSET + 4 {
            let _ = cmd
                .reply
                .send(Err(NetError::Codec(exactly_codec::CodecError::Header(
                    "request frame too short".into(),
                ))));
            return;
        }
        let id = self.ids.next_id();
        cmd.frame[CORRELATION_OFFSET..CORRELATION_OFFSET + 4].copy_from_slice(&id.to_be_bytes());
        let len = cmd.frame.len();
        self.shared.metrics.request(len);
        self.queued += len as u64;
        if self.wbuf.is_empty() {
            // Take the caller's buffer as is: no copy for the common case.
            self.wbuf = cmd.frame;
        } else {
            self.wbuf.extend_from_slice(&cmd.frame);
        }
        tracing::trace!(
            addr = %self.shared.addr,
            correlation_id = id,
            api_key = cmd.api_key,
            version = cmd.version,
            bytes = len,
            "queued request"
        );
        if !cmd.expects_response {
            self.unanswered.push_back(Unanswered {
                end: self.queued,
                deadline: now + cmd.timeout,
                correlation_id: id,
                reply: cmd.reply,
            });
            return;
        }
        self.inflight.push(Entry {
            correlation_id: id,
            api_key: cmd.api_key,
            version: cmd.version,
            end: self.queued,
            deadline: now + cmd.timeout,
            timeout: cmd.timeout,
            reply: cmd.reply,
        });
    }

    async fn run_loop(&mut self) -> Result<(), Stop> {
        loop {
            let now = Instant::now();
            // Admit whatever is waiting, without awaiting: batches writes.
            while self.can_admit(now) {
                if let Some(cmd) = self.parked.take() {
                    self.admit(cmd, now);
                    continue;
                }
                match self.rx.try_recv() {
                    Ok(cmd) => self.admit(cmd, now),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => self.rx_open = false,
                }
            }
            if !self.rx_open
                && self.parked.is_none()
                && self.inflight.is_empty()
                && self.unanswered.is_empty()
                && self.wbuf.is_empty()
            {
                return Ok(());
            }
            let admit = self.can_admit(now) && self.parked.is_none();
            let throttle = if self.rx_open {
                self.shared.throttled_until(now)
            } else {
                None
            };
            let deadline = match (self.inflight.next_deadline(), self.unanswered.front()) {
                (Some(a), Some(u)) => Some(a.min(u.deadline)),
                (a, u) => a.or(u.map(|u| u.deadline)),
            };
            let want_write = !self.wbuf.is_empty() || self.needs_flush;
            tokio::select! {
                biased;
                _ = self.shared.shutdown.notified() => {
                    return Err(Stop::Fail(Disconnect::Closed));
                }
                _ = self.shared.retire.notified(), if self.rx_open => {
                    // Requests already queued are still received (and sent);
                    // new ones are refused at once.
                    tracing::debug!(addr = %self.shared.addr, "connection retiring");
                    self.rx.close();
                }
                r = self.reader.read_buf(&mut self.rbuf) => {
                    match r {
                        Ok(0) => return Err(Stop::Fail(Disconnect::ClosedByPeer)),
                        Ok(_) => self.on_readable()?,
                        Err(e) => return Err(Stop::Fail(io(e))),
                    }
                }
                r = write_some(&mut self.writer, &mut self.wbuf, self.needs_flush), if want_write => {
                    match r {
                        Ok(0) if !self.wbuf.is_empty() => {
                            return Err(Stop::Fail(Disconnect::Io {
                                kind: std::io::ErrorKind::WriteZero,
                                message: "socket accepted no bytes".into(),
                            }))
                        }
                        Ok(n) => {
                            self.written += n as u64;
                            self.complete_unanswered();
                            // Flush once the buffer is drained (TLS buffers
                            // records until flushed).
                            self.needs_flush = self.wbuf.is_empty() && n > 0;
                        }
                        Err(e) => return Err(Stop::Fail(io(e))),
                    }
                }
                cmd = self.rx.recv(), if admit => {
                    match cmd {
                        Some(cmd) => self.parked = Some(cmd),
                        None => self.rx_open = false,
                    }
                }
                _ = sleep_until(deadline.unwrap_or(now)), if deadline.is_some() => {
                    self.check_deadlines()?;
                }
                _ = sleep_until(throttle.unwrap_or(now)), if throttle.is_some() => {}
            }
        }
    }

    /// Answers the no-response requests whose frames are wholly written.
    fn complete_unanswered(&mut self) {
        while self
            .unanswered
            .front()
            .is_some_and(|u| u.end <= self.written)
        {
            if let Some(u) = self.unanswered.pop_front() {
                let _ = u.reply.send(Ok(Reply {
                    frame: bytes::Bytes::new(),
                    correlation_id: u.correlation_id,
                }));
            }
        }
    }

    fn check_deadlines(&mut self) -> Result<(), Stop> {
        let now = Instant::now();
        if let Some(u) = self.unanswered.front().filter(|u| u.deadline <= now) {
            // The socket took none of it in time: the peer is not reading.
            tracing::warn!(
                addr = %self.shared.addr,
                correlation_id = u.correlation_id,
                "request without response not written in time; closing the connection"
            );
            self.shared.metrics.timed_out();
            return Err(Stop::Fail(Disconnect::RequestTimedOut {
                correlation_id: u.correlation_id,
            }));
        }
        // Any passed deadline fails the connection: every later response is
        // queued behind the late one.
        let Some((id, entry)) = self.inflight.expired(now) else {
            return Ok(());
        };
        tracing::warn!(
            addr = %self.shared.addr,
            correlation_id = id,
            api_key = entry.map(|e| e.api_key),
            version = entry.map(|e| e.version),
            timeout_ms = entry.map(|e| e.timeout.as_millis() as u64),
            "request timed out; closing the connection"
        );
        self.shared.metrics.timed_out();
        Err(Stop::Fail(Disconnect::RequestTimedOut {
            correlation_id: id,
        }))
    }

    /// Takes every whole response frame off the read buffer and routes it.
    fn on_readable(&mut self) -> Result<(), Stop> {
        loop {
            let frame = match self.decoder.decode(&mut self.rbuf) {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(()),
                Err(e) => {
                    return Err(Stop::Fail(Disconnect::ProtocolViolation(
                        e.to_string().into(),
                    )))
                }
            };
            self.shared.metrics.response(frame.len() + 4);
            let id = match peek_correlation_id(&frame) {
                Ok(id) => id,
                Err(e) => {
                    return Err(Stop::Fail(Disconnect::ProtocolViolation(
                        e.to_string().into(),
                    )))
                }
            };
            match self.inflight.complete(id) {
                Ok(entry) => {
                    let reply = Reply {
                        frame,
                        correlation_id: id,
                    };
                    if entry.reply.send(Ok(reply)).is_err() {
                        self.shared.metrics.discarded();
                        tracing::debug!(
                            addr = %self.shared.addr,
                            correlation_id = id,
                            api_key = entry.api_key,
                            "caller gone; response discarded"
                        );
                    }
                }
                Err((mismatch, head)) => {
                    tracing::error!(
                        addr = %self.shared.addr,
                        %mismatch,
                        "correlation id mismatch: failing the connection"
                    );
                    let cause = Disconnect::ProtocolViolation(mismatch.to_string().into());
                    if let Some(head) = head {
                        let _ = head.reply.send(Err(NetError::lost(
                            &self.shared.addr,
                            Delivery::MaybeDelivered,
                            cause.clone(),
                        )));
                    }
                    return Err(Stop::Fail(cause));
                }
            }
        }
    }

    /// Fails everything in flight or queued, and marks the connection closed.
    fn finish(&mut self, cause: Disconnect) {
        let addr = self.shared.addr.clone();
        if let Ok(mut c) = self.shared.closed.lock() {
            *c = Some(cause.clone());
        }
        self.shared.is_closed.store(true, Ordering::Release);
        self.rx.close();
        let had_inflight = !self.inflight.is_empty();
        if had_inflight || !matches!(cause, Disconnect::Closed) {
            self.shared.metrics.disconnected();
            tracing::debug!(%addr, %cause, in_flight = self.inflight.len(), "connection closed");
        }
        let now = Instant::now();
        for (e, delivery) in self.inflight.drain(self.written) {
            let err = match (&cause, delivery) {
                (Disconnect::RequestTimedOut { correlation_id }, Delivery::MaybeDelivered)
                    if *correlation_id == e.correlation_id || e.deadline <= now =>
                {
                    NetError::Timeout {
                        addr: addr.clone(),
                        after: e.timeout,
                    }
                }
                _ => NetError::lost(&addr, delivery, cause.clone()),
            };
            let _ = e.reply.send(Err(err));
        }
        let mut parked = self.parked.take();
        // Not wholly written: the broker cannot have acted on them.
        for u in self.unanswered.drain(..) {
            let _ = u
                .reply
                .send(Err(NetError::lost(&addr, Delivery::NotSent, cause.clone())));
        }
        while let Some(cmd) = parked.take().or_else(|| self.rx.try_recv().ok()) {
            let _ = cmd
                .reply
                .send(Err(NetError::lost(&addr, Delivery::NotSent, cause.clone())));
        }
    }
}

fn io(e: std::io::Error) -> Disconnect {
    Disconnect::Io {
        kind: e.kind(),
        message: e.to_string().into(),
    }
}

/// Writes some of `buf`, or flushes when it is empty. Cancel-safe.
async fn write_some(
    w: &mut Box<dyn AsyncWrite + Send + Unpin>,
    buf: &mut BytesMut,
    flush: bool,
) -> std::io::Result<usize> {
    if buf.has_remaining() {
        w.write_buf(buf).await
    } else {
        if flush {
            w.flush().await?;
        }
        Ok(0)
    }
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;
