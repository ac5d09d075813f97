//! Requests out and outcomes in: the core's requests dispatched (coordinator
//! requests sent at once; Produce batches stamped, queued per leader in
//! `dispatch.rs` and sent merged), and every outcome reported back to the
//! core, exactly once per request.

use exactly_codec::{ErrorCode, ProducerStamp};
use exactly_txn::{BatchId, Millis, Outcome, Request, RequestId, Response, Target, TopicPartition};
use tokio::time::Instant;
use tracing::Instrument;

use super::coordinator;
use super::wire::{self, ProduceItem, ProduceResult};
use super::{Completion, Driver};

impl Driver {
    pub(super) fn dispatch(&mut self, id: RequestId, target: Target, req: Request) {
        tracing::trace!(?id, ?target, ?req, "request");
        let Request::Produce {
            partition,
            batch,
            stamp,
            transactional_id,
            flow,
            ..
        } = req
        else {
            let fut = coordinator::coordinator(self.client.clone(), id, target, req);
            self.inflight
                .push(async move { Completion::Coordinator(fut.await) });
            return;
        };
        let idempotence = self.cfg.idempotence;
        let Some(b) = self.batches.get_mut(&batch) else {
            // The core asks only for batches it holds, and the driver drops a
            // batch only after the core resolved it.
            tracing::error!(?batch, "core asked for an unknown batch");
            self.core
                .handle_outcome(self.millis(Instant::now()), id, Outcome::MaybeDelivered);
            return;
        };
        let ps = if idempotence {
            ProducerStamp {
                producer_id: stamp.producer_id,
                producer_epoch: stamp.epoch,
                base_sequence: stamp.base_sequence,
                transactional: stamp.transactional,
            }
        } else {
            ProducerStamp::NONE
        };
        if b.sends > 0 {
            self.metrics.retry();
        }
        b.sends = b.sends.saturating_add(1);
        // A plain retry (the same stamp) resends the very same bytes; only a
        // new stamp (after an epoch bump) rewrites the header and the CRC.
        let bytes = b.closed.stamp(ps);
        let route = self
            .client
            .view()
            .route(&partition.topic, partition.partition);
        let item = ProduceItem {
            id,
            tp: partition,
            batch,
            bytes,
            flow,
            transactional_id,
            generation: route.map_or(0, |r| r.generation),
        };
        match route {
            Some(r) => self.dispatch.queue(r.leader, item),
            None => self.spawn_produce(None, vec![item]),
        }
    }

    /// Sends queued Produce batches while brokers have request slots.
    pub(super) fn send_queued(&mut self) {
        let ready = self
            .dispatch
            .ready(self.cfg.max_in_flight, self.cfg.max_request_size);
        for (broker, items) in ready {
            self.spawn_produce(Some(broker), items);
        }
    }

    fn spawn_produce(&mut self, broker: Option<i32>, items: Vec<ProduceItem>) {
        let meta: Vec<(RequestId, TopicPartition, BatchId, u64)> = items
            .iter()
            .map(|i| (i.id, i.tp.clone(), i.batch, i.generation))
            .collect();
        let span = tracing::debug_span!("produce", broker, batches = items.len());
        let fut = wire::produce(
            self.client.clone(),
            broker,
            items,
            self.cfg.acks.wire(),
            self.cfg.net.request_timeout(),
        )
        .instrument(span);
        self.inflight.push(async move {
            Completion::Produce {
                broker,
                items: meta,
                result: fut.await,
            }
        });
    }

    pub(super) fn refresh_metadata(&mut self) {
        if self.refreshing {
            return;
        }
        self.refreshing = true;
        let client = self.client.clone();
        let topics = self.acc.topics();
        self.inflight.push(async move {
            let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
            Completion::Metadata(client.refresh_metadata(&refs).await.map(|_| ()))
        });
    }

    pub(super) fn on_completion(&mut self, c: Completion) {
        let m = self.millis(Instant::now());
        match c {
            Completion::Coordinator(done) => {
                tracing::trace!(id = ?done.id, outcome = ?done.outcome, "coordinator outcome");
                if let Some((epoch, info)) = done.info {
                    if epoch >= self.features_epoch && info != self.core.broker_info() {
                        self.features_epoch = epoch;
                        self.core.set_broker_info(info);
                    }
                }
                self.core.handle_outcome(m, done.id, done.outcome);
            }
            Completion::Metadata(r) => {
                self.refreshing = false;
                match r {
                    Ok(()) => {
                        let view = self.client.view();
                        for t in self.acc.topics() {
                            if let Some(info) = view.topic(&t) {
                                let n = info.partitions.iter().map(|p| p.partition + 1).max();
                                if let Some(n) = n {
                                    self.acc.set_partition_count(&t, n.max(0) as usize);
                                }
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "metadata refresh failed"),
                }
            }
            Completion::Produce {
                broker,
                items,
                result,
            } => {
                if let Some(b) = broker {
                    self.dispatch.completed(b);
                }
                self.on_produce_result(m, items, result);
            }
        }
    }

    fn on_produce_result(
        &mut self,
        m: Millis,
        items: Vec<(RequestId, TopicPartition, BatchId, u64)>,
        result: ProduceResult,
    ) {
        match result {
            ProduceResult::Answered {
                version,
                response,
                leader,
            } => {
                for (id, tp, batch, generation) in items {
                    let outcome = match wire::partition_response(&response, &tp) {
                        Some(p) => {
                            let error = ErrorCode::from_code(p.error_code);
                            if let Some(code) = error {
                                let route = exactly_net::metadata::Route {
                                    leader,
                                    leader_epoch: -1,
                                    generation,
                                };
                                self.client.on_partition_error(code, &route);
                            }
                            if p.log_append_time_ms >= 0 {
                                if let Some(b) = self.batches.get_mut(&batch) {
                                    b.log_append_time = Some(p.log_append_time_ms);
                                }
                            }
                            Outcome::Received {
                                version,
                                response: Response::Produce {
                                    error,
                                    base_offset: p.base_offset,
                                    log_start_offset: p.log_start_offset,
                                },
                            }
                        }
                        // A broker that leaves a partition out broke the
                        // protocol; the batch may have been written.
                        None => Outcome::MaybeDelivered,
                    };
                    self.core.handle_outcome(m, id, outcome);
                }
            }
            ProduceResult::Written { version } => {
                for (id, ..) in items {
                    let response = Response::Produce {
                        error: None,
                        base_offset: -1,
                        log_start_offset: -1,
                    };
                    self.core
                        .handle_outcome(m, id, Outcome::Received { version, response });
                }
            }
            ProduceResult::Refused(code) => {
                for (id, ..) in items {
                    let response = Response::Produce {
                        error: Some(code),
                        base_offset: -1,
                        log_start_offset: -1,
                    };
                    self.core.handle_outcome(
                        m,
                        id,
                        Outcome::Received {
                            version: -1,
                            response,
                        },
                    );
                }
            }
            ProduceResult::Failed { outcome, refresh } => {
                if refresh {
                    for (.., generation) in &items {
                        self.client.invalidate_metadata(*generation);
                    }
                    self.refresh_metadata();
                }
                for (id, ..) in items {
                    self.core.handle_outcome(m, id, outcome.clone());
                }
            }
        }
    }
}
