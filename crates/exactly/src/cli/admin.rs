//! `metadata`, `offsets`, `topics`, `groups`.

use std::time::Duration;

use crate::admin::{NewTopic, OffsetSpec};
use anyhow::Context;

use super::{admin, Failure, Props};

pub(crate) const METADATA_HELP: &str = "\
Examples:
  exactly metadata                 # brokers and every topic
  exactly metadata -t orders       # one topic: partitions, leaders, replicas, ISR";

pub(crate) const OFFSETS_HELP: &str = "\
Examples:
  exactly offsets -t orders                       # earliest, latest, last stable per partition
  exactly offsets -t orders --time -1             # topic:partition:offset, as GetOffsetShell
  exactly offsets -t orders --time 1700000000000  # first offset at or after a timestamp (ms)

--time: -1 latest, -2 earliest, -5 last stable (read_committed end), else a timestamp.";

pub(crate) const TOPICS_HELP: &str = "\
Examples:
  exactly topics create orders --partitions 3 --replication-factor 1 --config retention.ms=86400000
  exactly topics add-partitions orders --total 6
  exactly topics describe orders
  exactly topics list
  exactly topics delete orders";

pub(crate) const GROUPS_HELP: &str = "\
Examples:
  exactly groups list
  exactly groups describe copier      # per partition: offsets, lag, owner (as kafka-consumer-groups.sh --describe)
  exactly groups delete-offsets copier --topic old-input";

#[derive(clap::Args)]
pub(crate) struct MetadataArgs {
    /// Only these topics.
    #[arg(short = 't', long = "topic")]
    topics: Vec<String>,
    /// Include internal topics.
    #[arg(long)]
    internal: bool,
}

#[derive(clap::Args)]
pub(crate) struct OffsetsArgs {
    /// Topic.
    #[arg(short = 't', long)]
    topic: String,
    /// Only this partition.
    #[arg(short = 'p', long)]
    partition: Option<i32>,
    /// One offset per partition, printed as topic:partition:offset.
    #[arg(long, allow_hyphen_values = true)]
    time: Option<i64>,
    /// JSON lines.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Subcommand)]
pub(crate) enum TopicsCmd {
    /// Create a topic.
    #[command(
        after_help = "Example:\n  exactly topics create orders --partitions 3 --replication-factor 1 --config retention.ms=86400000"
    )]
    Create {
        /// Name.
        name: String,
        /// Partitions (-1: broker default).
        #[arg(long, default_value_t = -1)]
        partitions: i32,
        /// Replication factor (-1: broker default).
        #[arg(long, default_value_t = -1)]
        replication_factor: i16,
        /// A topic config `key=value` (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
    },
    /// Delete topics.
    #[command(after_help = "Example:\n  exactly topics delete orders")]
    Delete {
        /// Names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Grow a topic to a total partition count.
    #[command(after_help = "Example:\n  exactly topics add-partitions orders --total 6")]
    AddPartitions {
        /// Name.
        name: String,
        /// The new total.
        #[arg(long)]
        total: i32,
    },
    /// Partitions and configs of a topic (non-default configs unless --all).
    #[command(after_help = "Example:\n  exactly topics describe orders --all")]
    Describe {
        /// Name.
        name: String,
        /// Every config, defaults included.
        #[arg(long)]
        all: bool,
    },
    /// Topic names.
    #[command(after_help = "Example:\n  exactly topics list --internal")]
    List {
        /// Include internal topics.
        #[arg(long)]
        internal: bool,
    },
}

#[derive(clap::Subcommand)]
pub(crate) enum GroupsCmd {
    /// Every group (optionally in some states: Stable, Empty, ...).
    #[command(after_help = "Example:\n  exactly groups list --state Stable")]
    List {
        /// Only groups in this state (repeatable).
        #[arg(long = "state")]
        states: Vec<String>,
    },
    /// A group's state, members and, per partition, offsets and lag.
    #[command(after_help = "Example:\n  exactly groups describe copier")]
    Describe {
        /// Group id.
        group: String,
        /// JSON lines, one per partition.
        #[arg(long)]
        json: bool,
    },
    /// Delete a group's committed offsets of a topic.
    #[command(after_help = "Example:\n  exactly groups delete-offsets copier --topic old-input")]
    DeleteOffsets {
        /// Group id.
        group: String,
        /// Topic.
        #[arg(long)]
        topic: String,
        /// Only these partitions (default: all).
        #[arg(long = "partition")]
        partitions: Vec<i32>,
    },
}

pub(crate) async fn metadata(props: &Props, a: MetadataArgs) -> Result<(), Failure> {
    let admin = admin(props).await?;
    let cluster = admin.describe_cluster().await.context("DescribeCluster")?;
    println!(
        "cluster {} controller {}",
        cluster.cluster_id, cluster.controller
    );
    for b in &cluster.brokers {
        println!(
            "broker {} at {}{}",
            b.id,
            b.addr(),
            b.rack
                .as_deref()
                .map(|r| format!(" rack {r}"))
                .unwrap_or_default()
        );
    }
    let names = if a.topics.is_empty() {
        admin.list_topics(a.internal).await.context("Metadata")?
    } else {
        a.topics.clone()
    };
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let view = admin
        .client()
        .refresh_metadata(&refs)
        .await
        .context("Metadata")?;
    for name in &names {
        match view.topic(name) {
            Some(t) => {
                println!("topic {name} with {} partitions:", t.partitions.len());
                for p in &t.partitions {
                    println!(
                        "  partition {} leader {} replicas {:?} isr {:?}{}",
                        p.partition,
                        p.leader,
                        p.replicas,
                        p.isr,
                        p.error.map(|e| format!(" error {e:?}")).unwrap_or_default()
                    );
                }
            }
            None => println!(
                "topic {name}: {}",
                view.topic_error(name)
                    .map(|e| format!("{e:?}"))
                    .unwrap_or_else(|| "unknown".into())
            ),
        }
    }
    Ok(())
}

pub(crate) async fn offsets(props: &Props, a: OffsetsArgs) -> Result<(), Failure> {
    let admin = admin(props).await?;
    let parts: Vec<i32> = admin
        .partitions(&a.topic)
        .await
        .context("partitions")?
        .into_iter()
        .filter(|p| a.partition.is_none_or(|x| x == *p))
        .collect();
    let asked: Vec<(&str, i32)> = parts.iter().map(|&p| (a.topic.as_str(), p)).collect();
    if let Some(time) = a.time {
        let spec = match time {
            -1 => OffsetSpec::Latest,
            -2 => OffsetSpec::Earliest,
            -5 => OffsetSpec::LastStable,
            ts => OffsetSpec::Timestamp(ts),
        };
        for ((t, p), r) in admin
            .list_offsets(&asked, spec)
            .await
            .context("ListOffsets")?
        {
            let o = r.with_context(|| format!("{t}-{p}"))?;
            match o.offset {
                Some(off) => println!("{t}:{p}:{off}"),
                None => println!("{t}:{p}:"),
            }
        }
        return Ok(());
    }
    let earliest = admin
        .list_offsets(&asked, OffsetSpec::Earliest)
        .await
        .context("ListOffsets")?;
    let latest = admin
        .list_offsets(&asked, OffsetSpec::Latest)
        .await
        .context("ListOffsets")?;
    let stable = admin
        .list_offsets(&asked, OffsetSpec::LastStable)
        .await
        .context("ListOffsets")?;
    let get = |m: &crate::admin::offsets::Offsets, k: &(String, i32)| -> anyhow::Result<i64> {
        let r = m
            .get(k)
            .with_context(|| format!("no answer for {}-{}", k.0, k.1))?;
        let o = r
            .as_ref()
            .map_err(|e| anyhow::anyhow!("{}-{}: {e}", k.0, k.1))?;
        Ok(o.offset.unwrap_or(-1))
    };
    if !a.json {
        println!("TOPIC\tPARTITION\tEARLIEST\tLATEST\tLAST-STABLE");
    }
    for &p in &parts {
        let k = (a.topic.clone(), p);
        let (e, l, s) = (get(&earliest, &k)?, get(&latest, &k)?, get(&stable, &k)?);
        if a.json {
            println!(
                "{}",
                serde_json::json!({"topic": a.topic, "partition": p, "earliest": e, "latest": l, "last_stable": s})
            );
        } else {
            println!("{}\t{p}\t{e}\t{l}\t{s}", a.topic);
        }
    }
    Ok(())
}

pub(crate) async fn topics(props: &Props, c: TopicsCmd) -> Result<(), Failure> {
    let admin = admin(props).await?;
    let timeout = Duration::from_secs(30);
    match c {
        TopicsCmd::Create {
            name,
            partitions,
            replication_factor,
            configs,
        } => {
            let mut t = NewTopic::new(&name, partitions, replication_factor);
            for kv in &configs {
                let (k, v) = kv.split_once('=').ok_or_else(|| {
                    Failure::Usage(anyhow::anyhow!("--config {kv}: not key=value"))
                })?;
                t = t.with_config(k, v);
            }
            for (n, r) in admin
                .create_topics(&[t], timeout)
                .await
                .context("CreateTopics")?
            {
                r.with_context(|| format!("creating {n}"))?;
                println!("created {n}");
            }
        }
        TopicsCmd::Delete { names } => {
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            for (n, r) in admin
                .delete_topics(&refs, timeout)
                .await
                .context("DeleteTopics")?
            {
                r.with_context(|| format!("deleting {n}"))?;
                println!("deleted {n}");
            }
        }
        TopicsCmd::AddPartitions { name, total } => {
            admin
                .create_partitions(&name, total, timeout)
                .await
                .context("CreatePartitions")?;
            println!("{name} now has {total} partitions");
        }
        TopicsCmd::Describe { name, all } => {
            let view = admin
                .client()
                .refresh_metadata(&[&name])
                .await
                .context("Metadata")?;
            let t = view
                .topic(&name)
                .with_context(|| format!("topic {name} not found"))?;
            println!("topic {name} with {} partitions:", t.partitions.len());
            for p in &t.partitions {
                println!(
                    "  partition {} leader {} replicas {:?} isr {:?}",
                    p.partition, p.leader, p.replicas, p.isr
                );
            }
            println!("configs:");
            for c in admin
                .describe_topic_configs(&name)
                .await
                .context("DescribeConfigs")?
            {
                if all || !c.is_default {
                    println!(
                        "  {}={}",
                        c.name,
                        if c.sensitive {
                            "(sensitive)".to_owned()
                        } else {
                            c.value.unwrap_or_default()
                        }
                    );
                }
            }
        }
        TopicsCmd::List { internal } => {
            for n in admin.list_topics(internal).await.context("Metadata")? {
                println!("{n}");
            }
        }
    }
    Ok(())
}

pub(crate) async fn groups(props: &Props, c: GroupsCmd) -> Result<(), Failure> {
    let admin = admin(props).await?;
    match c {
        GroupsCmd::List { states } => {
            let refs: Vec<&str> = states.iter().map(String::as_str).collect();
            println!("GROUP\tSTATE\tPROTOCOL-TYPE\tCOORDINATOR");
            for g in admin.list_groups(&refs).await.context("ListGroups")? {
                println!(
                    "{}\t{}\t{}\t{}",
                    g.group_id, g.state, g.protocol_type, g.coordinator
                );
            }
        }
        GroupsCmd::Describe { group, json } => {
            let d = admin
                .describe_group(&group)
                .await
                .context("DescribeGroups")?;
            let lag = admin.group_lag(&group).await.context("lag")?;
            if !json {
                eprintln!(
                    "group {group}: {} ({} members, assignor {:?}, coordinator {})",
                    d.state,
                    d.members.len(),
                    d.protocol,
                    d.coordinator
                );
                println!("GROUP\tTOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-END-OFFSET\tLAG\tCONSUMER-ID\tHOST\tCLIENT-ID");
            }
            let dash = |o: Option<i64>| o.map_or("-".to_owned(), |v| v.to_string());
            for l in &lag {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "group": group, "topic": l.topic, "partition": l.partition,
                            "current_offset": l.committed, "log_end_offset": l.log_end, "lag": l.lag,
                            "consumer_id": l.member.as_ref().map(|m| &m.member_id),
                            "host": l.member.as_ref().map(|m| &m.client_host),
                            "client_id": l.member.as_ref().map(|m| &m.client_id),
                        })
                    );
                } else {
                    let (id, host, client) = l.member.as_ref().map_or(("-", "-", "-"), |m| {
                        (
                            m.member_id.as_str(),
                            m.client_host.as_str(),
                            m.client_id.as_str(),
                        )
                    });
                    println!(
                        "{group}\t{}\t{}\t{}\t{}\t{}\t{id}\t{host}\t{client}",
                        l.topic,
                        l.partition,
                        dash(l.committed),
                        dash(l.log_end),
                        dash(l.lag)
                    );
                }
            }
        }
        GroupsCmd::DeleteOffsets {
            group,
            topic,
            partitions,
        } => {
            let parts = if partitions.is_empty() {
                admin.partitions(&topic).await.context("partitions")?
            } else {
                partitions
            };
            for (p, r) in admin
                .delete_group_offsets(&group, &topic, &parts)
                .await
                .context("OffsetDelete")?
            {
                r.with_context(|| format!("{topic}-{p}"))?;
                println!("deleted {group}'s offset of {topic}-{p}");
            }
        }
    }
    Ok(())
}
