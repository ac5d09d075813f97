//! exactly-net against the real broker: 10,000 pipelined requests over one
//! connection, mixed kinds and sizes, callers dropped at random, every
//! response delivered to its own caller.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use exactly_codec::messages::metadata_request::MetadataRequestTopic;
use exactly_codec::messages::{ApiVersionsRequest, MetadataRequest, TopicName};
use exactly_net::admin::NewTopic;
use exactly_net::{Client, Connection, Connector, Metrics, NetConfig};
use exactly_protocol_tests::{unique_topic, Broker, TransactionVersion};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn metadata(names: &[String]) -> MetadataRequest {
    MetadataRequest::default()
        .with_topics(Some(
            names
                .iter()
                .map(|n| {
                    MetadataRequestTopic::default().with_name(Some(TopicName(n.clone().into())))
                })
                .collect(),
        ))
        .with_allow_auto_topic_creation(false)
}

#[test]
fn ten_thousand_pipelined_requests_reach_their_own_callers() {
    let broker = Broker::shared(TransactionVersion::V2).unwrap_or_else(|e| panic!("{e}"));
    runtime().block_on(async {
        let cfg = NetConfig::from_properties([
            ("bootstrap.servers", broker.bootstrap().as_str()),
            ("max.in.flight.requests.per.connection", "256"),
        ])
        .unwrap();
        // Topics of different sizes, so responses differ in kind and length.
        let client = Client::connect(cfg.clone()).await.unwrap();
        let topics: Vec<String> = (0..6).map(|i| unique_topic(&format!("pipe{i}"))).collect();
        let new: Vec<NewTopic> = topics
            .iter()
            .enumerate()
            .map(|(i, t)| NewTopic::new(t.clone(), 1 + i as i32 * 3, 1))
            .collect();
        client
            .ensure_topics(&new, Duration::from_secs(60))
            .await
            .unwrap();
        let connector = Connector::new(Arc::new(cfg), Arc::new(Metrics::default())).unwrap();
        let conn: Connection = connector
            .connect(&broker.address(1), Some(1))
            .await
            .unwrap();
        let topics = Arc::new(topics);
        let started = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for i in 0..10_000usize {
            let c = conn.clone();
            let topics = topics.clone();
            set.spawn(async move {
                let work = async {
                    if i % 4 == 0 {
                        let req = ApiVersionsRequest::default()
                            .with_client_software_name("exactly-test".into())
                            .with_client_software_version("0".into());
                        let r = c.send(&req).await.unwrap();
                        assert_eq!(r.error_code, 0);
                        assert!(r.api_keys.len() > 40);
                    } else {
                        // A subset of topics chosen by i; the response must
                        // list exactly these, each with its own partition count.
                        let want: Vec<String> = topics
                            .iter()
                            .enumerate()
                            .filter(|(k, _)| (i >> k) & 1 == 1)
                            .map(|(_, t)| t.clone())
                            .collect();
                        let r = c.send(&metadata(&want)).await.unwrap();
                        let mut got: Vec<(String, usize)> = r
                            .topics
                            .iter()
                            .map(|t| (t.name.as_ref().unwrap().0.to_string(), t.partitions.len()))
                            .collect();
                        got.sort();
                        let mut expect: Vec<(String, usize)> = want
                            .iter()
                            .map(|t| {
                                let k = topics.iter().position(|x| x == t).unwrap();
                                (t.clone(), 1 + k * 3)
                            })
                            .collect();
                        expect.sort();
                        assert_eq!(got, expect, "request {i}");
                    }
                };
                if (i.wrapping_mul(2_654_435_761) >> 9) % 13 == 0 {
                    tokio::select! {
                        biased;
                        _ = work => true,
                        _ = tokio::task::yield_now() => false,
                    }
                } else {
                    work.await;
                    true
                }
            });
        }
        let mut completed = 0;
        while let Some(r) = set.join_next().await {
            completed += usize::from(r.unwrap());
        }
        let elapsed = started.elapsed();
        eprintln!("10,000 pipelined requests to the real broker over one connection: {elapsed:?}");
        assert!(completed >= 9_000, "{completed}");
        let m = conn.metrics().snapshot();
        assert_eq!(m.disconnects, 0, "{m:?}");
        assert_eq!(m.requests, m.responses, "{m:?}");
        // Still in step.
        let r = conn.send(&metadata(&topics[..1])).await.unwrap();
        assert_eq!(r.topics.len(), 1);
    });
}

/// Produce with acks=0 gets no response from the real broker; interleaved
/// with answered requests on one connection, every answer still reaches its
/// own caller.
#[test]
fn produce_acks0_interleaved_with_answered_requests() {
    use exactly_codec::messages::ProduceRequest;
    use exactly_net::SendOptions;
    let broker = Broker::shared(TransactionVersion::V2).unwrap_or_else(|e| panic!("{e}"));
    runtime().block_on(async {
        let cfg = NetConfig::from_properties([("bootstrap.servers", broker.bootstrap().as_str())])
            .unwrap();
        let connector = Connector::new(Arc::new(cfg), Arc::new(Metrics::default())).unwrap();
        let conn = connector
            .connect(&broker.address(1), Some(1))
            .await
            .unwrap();
        let produce = ProduceRequest::default().with_acks(0).with_timeout_ms(1000);
        let topic = vec![unique_topic("acks0")];
        for _ in 0..100 {
            conn.send_without_response(&produce, SendOptions::default())
                .await
                .unwrap();
            let r = conn.send(&metadata(&topic)).await.unwrap();
            assert_eq!(r.topics[0].name.as_ref().unwrap().0.as_str(), topic[0]);
        }
        let m = conn.metrics().snapshot();
        assert_eq!(m.requests, m.responses + 100, "{m:?}");
        assert!(!conn.is_closed());
    });
}
