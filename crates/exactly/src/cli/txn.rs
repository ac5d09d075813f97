//! `txn list | describe | producers | find-hanging | abort`: the jobs of
//! `kafka-transactions.sh`, with its column names.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::admin::{HangingReason, HangingScope};
use anyhow::Context;

use super::{admin, Failure, Props};

pub(crate) const HELP: &str = "\
Examples:
  exactly txn list --state Ongoing
  exactly txn describe --transactional-id copier-1
  exactly txn producers --topic orders --partition 0
  exactly txn find-hanging --broker-id 1
  exactly txn find-hanging --topic orders --max-transaction-timeout 0
  exactly txn abort --topic orders --partition 0 --start-offset 1234

find-hanging lists open transactions at least --max-transaction-timeout
minutes old (default 15) that their coordinator does not hold open on that
partition, or holds open past their timeout. abort writes an abort marker
for the transaction that starts at --start-offset (as kafka-transactions.sh
abort: producer id, epoch and coordinator epoch from DescribeProducers).";

#[derive(clap::Subcommand)]
pub(crate) enum TxnCmd {
    /// Transactions on every coordinator.
    #[command(after_help = "Example:\n  exactly txn list --state Ongoing")]
    List {
        /// Only in this state (Ongoing, PrepareCommit, Empty, ...; repeatable).
        #[arg(long = "state")]
        states: Vec<String>,
        /// Only of this producer id (repeatable).
        #[arg(long = "producer-id")]
        producer_ids: Vec<i64>,
        /// JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// One transaction, at its coordinator.
    #[command(after_help = "Example:\n  exactly txn describe --transactional-id copier-1")]
    Describe {
        /// The transactional.id.
        #[arg(long)]
        transactional_id: String,
        /// JSON.
        #[arg(long)]
        json: bool,
    },
    /// The active producers of a partition (KIP-664).
    #[command(after_help = "Example:\n  exactly txn producers --topic orders --partition 0")]
    Producers {
        /// Topic.
        #[arg(long)]
        topic: String,
        /// Partition.
        #[arg(long)]
        partition: i32,
        /// JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Open transactions no coordinator will finish.
    #[command(
        after_help = "Example:\n  exactly txn find-hanging --broker-id 1\n  exactly txn find-hanging --topic orders --max-transaction-timeout 0"
    )]
    FindHanging {
        /// Partitions this broker leads.
        #[arg(long, conflicts_with = "topic", required_unless_present = "topic")]
        broker_id: Option<i32>,
        /// Partitions of this topic.
        #[arg(long)]
        topic: Option<String>,
        /// Only this partition of --topic.
        #[arg(long, requires = "topic")]
        partition: Option<i32>,
        /// Minutes an open transaction must be old to be considered.
        #[arg(long, default_value_t = 15)]
        max_transaction_timeout: u64,
        /// JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Abort the open transaction starting at an offset (WriteTxnMarkers).
    #[command(
        after_help = "Example:\n  exactly txn abort --topic orders --partition 0 --start-offset 1234"
    )]
    Abort {
        /// Topic.
        #[arg(long)]
        topic: String,
        /// Partition.
        #[arg(long)]
        partition: i32,
        /// The first offset of the transaction (`txn producers` shows it).
        #[arg(long)]
        start_offset: i64,
    },
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) async fn run(props: &Props, c: TxnCmd) -> Result<(), Failure> {
    let admin = admin(props).await?;
    match c {
        TxnCmd::List {
            states,
            producer_ids,
            json,
        } => {
            let refs: Vec<&str> = states.iter().map(String::as_str).collect();
            let all = admin
                .list_transactions(&refs, &producer_ids)
                .await
                .context("ListTransactions")?;
            if !json {
                println!("TransactionalId\tCoordinator\tProducerId\tTransactionState");
            }
            for t in all {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"transactional_id": t.transactional_id, "coordinator": t.coordinator,
                            "producer_id": t.producer_id, "state": t.state})
                    );
                } else {
                    println!(
                        "{}\t{}\t{}\t{}",
                        t.transactional_id, t.coordinator, t.producer_id, t.state
                    );
                }
            }
        }
        TxnCmd::Describe {
            transactional_id,
            json,
        } => {
            let d = admin
                .describe_transaction(&transactional_id)
                .await
                .context("DescribeTransactions")?;
            let parts: Vec<String> = d
                .partitions
                .iter()
                .map(|(t, p)| format!("{t}-{p}"))
                .collect();
            let duration = (d.start_time_ms >= 0).then(|| now_ms() - d.start_time_ms);
            if json {
                println!(
                    "{}",
                    serde_json::json!({"coordinator": d.coordinator, "transactional_id": d.transactional_id,
                        "producer_id": d.producer_id, "producer_epoch": d.producer_epoch, "state": d.state,
                        "timeout_ms": d.timeout_ms, "start_time_ms": d.start_time_ms,
                        "duration_ms": duration, "partitions": parts})
                );
            } else {
                println!("CoordinatorId\tTransactionalId\tProducerId\tProducerEpoch\tTransactionState\tCurrentTransactionTimeoutMs\tCurrentTransactionStartTimeMs\tTransactionDurationMs\tTopicPartitions");
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    d.coordinator,
                    d.transactional_id,
                    d.producer_id,
                    d.producer_epoch,
                    d.state,
                    d.timeout_ms,
                    if d.start_time_ms >= 0 {
                        d.start_time_ms.to_string()
                    } else {
                        "None".into()
                    },
                    duration.map_or("None".into(), |v| v.to_string()),
                    parts.join(",")
                );
            }
        }
        TxnCmd::Producers {
            topic,
            partition,
            json,
        } => {
            let all = admin
                .describe_producers(&topic, partition)
                .await
                .context("DescribeProducers")?;
            if !json {
                println!("ProducerId\tProducerEpoch\tLatestCoordinatorEpoch\tLastSequence\tLastTimestamp\tCurrentTransactionStartOffset");
            }
            for p in all {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"producer_id": p.producer_id, "producer_epoch": p.producer_epoch,
                            "coordinator_epoch": p.coordinator_epoch, "last_sequence": p.last_sequence,
                            "last_timestamp": p.last_timestamp,
                            "current_txn_start_offset": p.current_txn_start_offset})
                    );
                } else {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        p.producer_id,
                        p.producer_epoch,
                        p.coordinator_epoch,
                        p.last_sequence,
                        p.last_timestamp,
                        if p.current_txn_start_offset >= 0 {
                            p.current_txn_start_offset.to_string()
                        } else {
                            "None".into()
                        }
                    );
                }
            }
        }
        TxnCmd::FindHanging {
            broker_id,
            topic,
            partition,
            max_transaction_timeout,
            json,
        } => {
            let scope = match (broker_id, topic) {
                (Some(b), _) => HangingScope::Broker(b),
                (None, Some(t)) => HangingScope::Topic(t, partition),
                (None, None) => {
                    return Err(Failure::Usage(anyhow::anyhow!("--broker-id or --topic")))
                }
            };
            let hanging = admin
                .find_hanging(
                    scope,
                    Some(Duration::from_secs(max_transaction_timeout * 60)),
                )
                .await
                .context("find-hanging")?;
            if !json {
                println!("Topic\tPartition\tProducerId\tProducerEpoch\tCoordinatorEpoch\tStartOffset\tLastTimestamp\tDuration(min)\tTransactionalId\tReason");
            }
            let now = now_ms();
            for h in &hanging {
                let reason = match &h.reason {
                    HangingReason::UnknownProducer => {
                        "no coordinator knows the producer".to_owned()
                    }
                    HangingReason::NotInCoordinatorTransaction { coordinator } => format!(
                        "coordinator {} has it {} with producer {}/{} and {} partitions",
                        coordinator.coordinator,
                        coordinator.state,
                        coordinator.producer_id,
                        coordinator.producer_epoch,
                        coordinator.partitions.len()
                    ),
                    HangingReason::PastTimeout { coordinator } => format!(
                        "open past its timeout of {} ms at coordinator {}",
                        coordinator.timeout_ms, coordinator.coordinator
                    ),
                };
                let p = &h.producer;
                let minutes = (now - p.last_timestamp).max(0) / 60_000;
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"topic": h.topic, "partition": h.partition,
                            "producer_id": p.producer_id, "producer_epoch": p.producer_epoch,
                            "coordinator_epoch": p.coordinator_epoch, "start_offset": p.current_txn_start_offset,
                            "last_timestamp": p.last_timestamp, "duration_min": minutes,
                            "transactional_id": h.transactional_id, "reason": reason})
                    );
                } else {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        h.topic,
                        h.partition,
                        p.producer_id,
                        p.producer_epoch,
                        p.coordinator_epoch,
                        p.current_txn_start_offset,
                        p.last_timestamp,
                        minutes,
                        h.transactional_id.as_deref().unwrap_or("-"),
                        reason
                    );
                }
            }
            eprintln!("{} hanging transaction(s)", hanging.len());
        }
        TxnCmd::Abort {
            topic,
            partition,
            start_offset,
        } => {
            let p = admin
                .abort_transaction(&topic, partition, start_offset)
                .await
                .context("abort")?;
            println!(
                "aborted the transaction of producer {} (epoch {}, coordinator epoch {}) starting at offset {start_offset} of {topic}-{partition}",
                p.producer_id, p.producer_epoch, p.coordinator_epoch
            );
        }
    }
    Ok(())
}
