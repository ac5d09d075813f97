//! Consumer groups: list (ListGroups to every broker, KIP-518 state
//! filters), describe (DescribeGroups to the group coordinator; member
//! assignments decoded from the consumer protocol), committed offsets
//! (OffsetFetch, all topics), lag (committed against the high watermark, as
//! `kafka-consumer-groups.sh --describe` computes it), and deleting a group's
//! committed offsets (OffsetDelete, KIP-496).

use std::collections::BTreeMap;

use bytes::Buf;
use exactly_codec::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use exactly_codec::messages::offset_fetch_request::OffsetFetchRequestGroup;
use exactly_codec::messages::{
    ApiKey, DescribeGroupsRequest, GroupId, ListGroupsRequest, OffsetDeleteRequest,
    OffsetFetchRequest, TopicName,
};
use exactly_codec::protocol::StrBytes;
use exactly_net::{Connection, CoordinatorType};
use futures_util::future::join_all;

use crate::offsets::OffsetSpec;
use crate::send::send;
use crate::{Admin, AdminError};

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// The group id.
    pub group_id: String,
    /// `consumer` for consumer groups, empty for simple ones.
    pub protocol_type: String,
    /// `Stable`, `Empty`, `PreparingRebalance`... (empty before ListGroups v4).
    pub state: String,
    /// The coordinator that listed it.
    pub coordinator: i32,
}

/// A member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// Static membership id (KIP-345).
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Assigned partitions (consumer protocol only; empty otherwise).
    pub assignment: Vec<(String, i32)>,
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group id.
    pub group_id: String,
    /// State.
    pub state: String,
    /// Protocol type (`consumer`).
    pub protocol_type: String,
    /// The assignor (`range`, `cooperative-sticky`...).
    pub protocol: String,
    /// The coordinator's broker id.
    pub coordinator: i32,
    /// Members.
    pub members: Vec<MemberDescription>,
}

/// One partition's lag for a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The committed offset, `None` when the group has none for it.
    pub committed: Option<i64>,
    /// The high watermark.
    pub log_end: Option<i64>,
    /// `log_end - committed` when both are known.
    pub lag: Option<i64>,
    /// The member the partition is assigned to, if any.
    pub member: Option<MemberDescription>,
}

impl Admin {
    async fn group_coordinator(&self, group: &str) -> Result<(i32, Connection), AdminError> {
        let c = self
            .client
            .coordinator(CoordinatorType::Group, group)
            .await?;
        Ok((c.broker_id, self.client.connection(c.broker_id).await?))
    }

    /// Every group of every broker, in states `states` (all when empty).
    pub async fn list_groups(&self, states: &[&str]) -> Result<Vec<GroupListing>, AdminError> {
        let view = self.client.refresh_metadata(&[]).await?;
        let ids: Vec<i32> = view.brokers().map(|b| b.id).collect();
        let req = ListGroupsRequest::default().with_states_filter(
            states
                .iter()
                .map(|s| StrBytes::from_string((*s).to_owned()))
                .collect(),
        );
        let calls = ids.into_iter().map(|id| {
            let req = &req;
            async move {
                let conn = self.client.connection(id).await?;
                Ok::<_, AdminError>((id, send(&conn, req).await?))
            }
        });
        let mut out = Vec::new();
        for r in join_all(calls).await {
            let (id, resp) = r?;
            AdminError::check(
                ApiKey::ListGroups,
                || format!("broker {id}"),
                resp.error_code,
                None,
            )?;
            out.extend(resp.groups.iter().map(|g| GroupListing {
                group_id: g.group_id.to_string(),
                protocol_type: g.protocol_type.to_string(),
                state: g.group_state.to_string(),
                coordinator: id,
            }));
        }
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(out)
    }

    /// State, protocol and members of `group`.
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription, AdminError> {
        let (coordinator, conn) = self.group_coordinator(group).await?;
        let req = DescribeGroupsRequest::default()
            .with_groups(vec![GroupId(StrBytes::from_string(group.to_owned()))]);
        let resp = send(&conn, &req).await?;
        let g = resp
            .groups
            .iter()
            .find(|g| g.group_id.as_str() == group)
            .ok_or_else(|| {
                AdminError::Unexpected(format!("no DescribeGroups entry for {group}"))
            })?;
        AdminError::check(
            ApiKey::DescribeGroups,
            || group.to_owned(),
            g.error_code,
            g.error_message.as_deref(),
        )?;
        let consumer = g.protocol_type.as_str() == "consumer";
        let members = g
            .members
            .iter()
            .map(|m| MemberDescription {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                assignment: if consumer {
                    decode_assignment(&m.member_assignment).unwrap_or_default()
                } else {
                    Vec::new()
                },
            })
            .collect();
        Ok(GroupDescription {
            group_id: group.to_owned(),
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
            protocol: g.protocol_data.to_string(),
            coordinator,
            members,
        })
    }

    /// Every committed offset of `group`.
    pub async fn group_offsets(
        &self,
        group: &str,
    ) -> Result<BTreeMap<(String, i32), i64>, AdminError> {
        let (_, conn) = self.group_coordinator(group).await?;
        let v = conn.versions().pick_client(ApiKey::OffsetFetch)?;
        let mut req = OffsetFetchRequest::default();
        if v >= 8 {
            req.groups = vec![OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
                .with_member_id(None)
                .with_member_epoch(-1)
                .with_topics(None)];
        } else {
            req.group_id = GroupId(StrBytes::from_string(group.to_owned()));
            req.topics = None;
        }
        let resp = send(&conn, &req).await?;
        let mut out = BTreeMap::new();
        AdminError::check(
            ApiKey::OffsetFetch,
            || group.to_owned(),
            resp.error_code,
            None,
        )?;
        let mut add = |t: &str, p: i32, offset: i64, code: i16| -> Result<(), AdminError> {
            AdminError::check(
                ApiKey::OffsetFetch,
                || format!("{group} {t}-{p}"),
                code,
                None,
            )?;
            if offset >= 0 {
                out.insert((t.to_owned(), p), offset);
            }
            Ok(())
        };
        for t in &resp.topics {
            for p in &t.partitions {
                add(
                    t.name.as_str(),
                    p.partition_index,
                    p.committed_offset,
                    p.error_code,
                )?;
            }
        }
        for g in resp.groups.iter().filter(|g| g.group_id.as_str() == group) {
            AdminError::check(ApiKey::OffsetFetch, || group.to_owned(), g.error_code, None)?;
            for t in &g.topics {
                for p in &t.partitions {
                    add(
                        t.name.as_str(),
                        p.partition_index,
                        p.committed_offset,
                        p.error_code,
                    )?;
                }
            }
        }
        Ok(out)
    }

    /// Per partition: committed offset, high watermark, lag and owner, for
    /// every partition the group has committed or is assigned.
    pub async fn group_lag(&self, group: &str) -> Result<Vec<PartitionLag>, AdminError> {
        let description = self.describe_group(group).await?;
        let committed = self.group_offsets(group).await?;
        let mut owners: BTreeMap<(String, i32), MemberDescription> = BTreeMap::new();
        for m in &description.members {
            for tp in &m.assignment {
                owners.insert(tp.clone(), m.clone());
            }
        }
        let mut keys: Vec<(String, i32)> = committed.keys().cloned().collect();
        keys.extend(owners.keys().cloned());
        keys.sort();
        keys.dedup();
        let asked: Vec<(&str, i32)> = keys.iter().map(|(t, p)| (t.as_str(), *p)).collect();
        let ends = if asked.is_empty() {
            Default::default()
        } else {
            self.list_offsets(&asked, OffsetSpec::Latest).await?
        };
        Ok(keys
            .into_iter()
            .map(|k| {
                let committed = committed.get(&k).copied();
                let log_end = ends
                    .get(&k)
                    .and_then(|r| r.as_ref().ok())
                    .and_then(|o| o.offset);
                let lag = match (committed, log_end) {
                    (Some(c), Some(e)) => Some((e - c).max(0)),
                    _ => None,
                };
                let member = owners.get(&k).cloned();
                PartitionLag {
                    topic: k.0,
                    partition: k.1,
                    committed,
                    log_end,
                    lag,
                    member,
                }
            })
            .collect())
    }

    /// Deletes `group`'s committed offsets of `partitions` of `topic` (the
    /// group must not be subscribed to it); each partition's outcome.
    pub async fn delete_group_offsets(
        &self,
        group: &str,
        topic: &str,
        partitions: &[i32],
    ) -> Result<Vec<(i32, Result<(), AdminError>)>, AdminError> {
        let (_, conn) = self.group_coordinator(group).await?;
        let req = OffsetDeleteRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
            .with_topics(vec![OffsetDeleteRequestTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|&p| OffsetDeleteRequestPartition::default().with_partition_index(p))
                        .collect(),
                )]);
        let resp = send(&conn, &req).await?;
        AdminError::check(
            ApiKey::OffsetDelete,
            || group.to_owned(),
            resp.error_code,
            None,
        )?;
        Ok(resp
            .topics
            .iter()
            .filter(|t| t.name.as_str() == topic)
            .flat_map(|t| t.partitions.iter())
            .map(|p| {
                (
                    p.partition_index,
                    AdminError::check(
                        ApiKey::OffsetDelete,
                        || format!("{group} {topic}-{}", p.partition_index),
                        p.error_code,
                        None,
                    ),
                )
            })
            .collect())
    }
}

/// Decodes a consumer-protocol assignment (version, then topics with their
/// partitions; user data and any later fields ignored). Every length is
/// checked against the bytes that remain before anything is reserved.
pub(crate) fn decode_assignment(bytes: &[u8]) -> Result<Vec<(String, i32)>, AdminError> {
    let bad = || AdminError::Unexpected("malformed consumer assignment".into());
    let mut b = bytes;
    if b.is_empty() {
        return Ok(Vec::new());
    }
    if b.remaining() < 2 + 4 {
        return Err(bad());
    }
    let _version = b.get_i16();
    let topics = b.get_i32();
    let mut out = Vec::new();
    for _ in 0..topics.max(0) {
        if b.remaining() < 2 {
            return Err(bad());
        }
        let len = usize::try_from(b.get_i16()).map_err(|_| bad())?;
        if b.remaining() < len + 4 {
            return Err(bad());
        }
        let name = std::str::from_utf8(&b[..len])
            .map_err(|_| bad())?
            .to_owned();
        b.advance(len);
        let n = b.get_i32();
        let n = usize::try_from(n.max(0)).map_err(|_| bad())?;
        if b.remaining() < n.saturating_mul(4) {
            return Err(bad());
        }
        for _ in 0..n {
            out.push((name.clone(), b.get_i32()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_round_trip_and_truncation() {
        // version 1, topics [("ab", [0, 3])], user data null
        let mut v = vec![0, 1, 0, 0, 0, 1, 0, 2, b'a', b'b', 0, 0, 0, 2];
        v.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(
            decode_assignment(&v).ok(),
            Some(vec![("ab".to_owned(), 0), ("ab".to_owned(), 3)])
        );
        for cut in 1..14 {
            assert!(decode_assignment(&v[..cut]).is_err(), "cut at {cut}");
        }
        // a huge partition count with nothing behind it is refused, not reserved
        let huge = [0, 1, 0, 0, 0, 1, 0, 1, b'x', 0x7f, 0xff, 0xff, 0xff];
        assert!(decode_assignment(&huge).is_err());
    }
}
