//! The changelog's two jobs outside the transaction: creating the topic,
//! and rebuilding a newly assigned partition's store from it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use exactly_codec::ErrorCode;
use exactly_consumer::{Consumer, ConsumerConfig, ConsumerError, Polled};
use exactly_net::admin::NewTopic;
use exactly_net::{Client, NetError};
use exactly_producer::TopicPartition;

use super::{PartitionState, States};
use crate::SessionError;

fn partition_count(client_view: &exactly_net::metadata::ClusterView, topic: &str) -> Option<usize> {
    client_view
        .topic(topic)
        .map(|t| t.partitions.len())
        .filter(|n| *n > 0)
}

/// Creates the changelog topic of each input topic among `partitions`
/// (compacted, with the input topic's partition count) unless it exists; an
/// existing one must have that partition count.
pub(crate) async fn ensure_changelogs(
    client: &Client,
    states: &States,
    partitions: &[TopicPartition],
    timeout: Duration,
) -> Result<(), SessionError> {
    let inputs: BTreeSet<&str> = partitions.iter().map(|p| p.topic.as_str()).collect();
    for input in inputs {
        let view = client
            .metadata_for(&[input])
            .await
            .map_err(ConsumerError::Net)?;
        let count = partition_count(&view, input).ok_or_else(|| SessionError::Changelog {
            topic: input.to_owned(),
            reason: "the input topic's partition count is unknown".into(),
        })?;
        let name = states.cfg.changelog_topic(&states.group, input);
        let topic = NewTopic::new(&name, count as i32, states.cfg.replication_factor)
            .with_config("cleanup.policy", "compact");
        let created = client
            .create_topics(&[topic], timeout)
            .await
            .map_err(ConsumerError::Net)?;
        for (_, r) in created {
            match r {
                Ok(()) => tracing::info!(topic = %name, partitions = count, "changelog created"),
                Err(NetError::Kafka {
                    code: ErrorCode::TopicAlreadyExists,
                    ..
                }) => {
                    let view = client
                        .refresh_metadata(&[&name])
                        .await
                        .map_err(ConsumerError::Net)?;
                    let have = partition_count(&view, &name);
                    if have != Some(count) {
                        return Err(SessionError::Changelog {
                            topic: name,
                            reason: format!(
                                "it has {have:?} partitions, the input {input} has {count}"
                            ),
                        });
                    }
                }
                Err(e) => return Err(ConsumerError::Net(e).into()),
            }
        }
        client
            .wait_for_leaders(&name, timeout)
            .await
            .map_err(ConsumerError::Net)?;
    }
    Ok(())
}

/// Rebuilds the state of `partitions` from their changelog partitions, read
/// `read_committed` from the beginning to the end, once no transaction is
/// open on them (see [`settled_ends`]).
pub(crate) async fn restore(
    cfg: ConsumerConfig,
    uncommitted: ConsumerConfig,
    states: &States,
    partitions: &[TopicPartition],
) -> Result<Vec<(TopicPartition, PartitionState)>, SessionError> {
    let mut consumer = Consumer::new(cfg).await?;
    let mut by_changelog: BTreeMap<TopicPartition, (TopicPartition, PartitionState)> =
        BTreeMap::new();
    for p in partitions {
        let changelog = TopicPartition::new(
            states.cfg.changelog_topic(&states.group, &p.topic),
            p.partition,
        );
        let state = PartitionState::new(states.cfg.factory.open(p));
        by_changelog.insert(changelog, (p.clone(), state));
    }
    let changelogs: Vec<TopicPartition> = by_changelog.keys().cloned().collect();
    consumer.assign(&changelogs)?;
    let ends = settled_ends(&mut consumer, uncommitted, &changelogs).await?;
    let begins = consumer.beginning_offsets(&changelogs).await?;
    consumer.seek_to_beginning(&changelogs)?;
    let mut left: BTreeMap<TopicPartition, i64> = ends
        .into_iter()
        .filter(|(tp, end)| *end > begins.get(tp).copied().unwrap_or(0))
        .collect();
    let mut restored = 0u64;
    while !left.is_empty() {
        if let Polled::Records(records) = consumer.poll(Duration::from_millis(200)).await? {
            for r in records {
                let tp = TopicPartition::new(r.topic(), r.partition());
                if let (Some((_, state)), Some(key)) = (by_changelog.get_mut(&tp), r.key()) {
                    state.restore(key.clone(), r.value().cloned());
                    restored += 1;
                }
            }
        }
        left.retain(|tp, end| consumer.position(tp).is_none_or(|pos| pos < *end));
    }
    let _ = consumer.close().await;
    tracing::info!(
        partitions = partitions.len(),
        records = restored,
        "state restored from the changelog"
    );
    Ok(by_changelog.into_values().collect())
}

/// How long a restore waits for the transactions open on a changelog to
/// end (a zombie's lasts up to its `transaction.timeout.ms`).
const SETTLE_LIMIT: Duration = Duration::from_secs(300);

/// The end offsets of `changelogs` once no transaction is open on them: the
/// last stable offset equal to the high watermark.
///
/// Why wait: the transaction that last committed this state may still have
/// its markers on the way. Its offsets can already be stable (the marker in
/// `__consumer_offsets` written) while the changelog's marker is not, and
/// reading only up to the last stable offset then would rebuild a state
/// older than the committed offsets the input resumes from. Only the
/// partition's owner writes its changelog, so once the markers land
/// nothing reopens it.
async fn settled_ends(
    consumer: &mut Consumer,
    uncommitted: ConsumerConfig,
    changelogs: &[TopicPartition],
) -> Result<BTreeMap<TopicPartition, i64>, SessionError> {
    let mut hw_reader = Consumer::new(uncommitted).await?;
    let high = hw_reader.end_offsets(changelogs).await;
    let _ = hw_reader.close().await;
    let high = high?;
    let started = tokio::time::Instant::now();
    let mut warned = started;
    loop {
        let stable = consumer.end_offsets(changelogs).await?;
        let open: Vec<&TopicPartition> = stable
            .iter()
            .filter(|(tp, lso)| high.get(*tp).is_some_and(|hw| *lso < hw))
            .map(|(tp, _)| tp)
            .collect();
        if open.is_empty() {
            return Ok(stable);
        }
        if started.elapsed() >= SETTLE_LIMIT {
            return Err(SessionError::Changelog {
                topic: open[0].topic.clone(),
                reason: format!(
                    "a transaction stayed open on {open:?} for {SETTLE_LIMIT:?}; no restore"
                ),
            });
        }
        if warned.elapsed() >= Duration::from_secs(10) {
            tracing::warn!(
                ?open,
                "waiting for open transactions on the changelog to end"
            );
            warned = tokio::time::Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
