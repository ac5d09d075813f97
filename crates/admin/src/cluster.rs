//! The cluster: brokers and controller (DescribeCluster, KIP-700; the
//! Metadata view when DescribeCluster is not offered), and every topic with
//! its partitions, leaders, replicas and ISR (Metadata with a null topic
//! list).

use std::sync::Arc;

use exactly_codec::messages::{ApiKey, DescribeClusterRequest, MetadataRequest};
use exactly_net::metadata::{BrokerInfo, ClusterView, TopicInfo};

use crate::send::send;
use crate::{Admin, AdminError};

/// What DescribeCluster reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// The cluster id.
    pub cluster_id: String,
    /// The active controller's id as brokers see it (-1 when unknown; in
    /// KRaft, a random broker).
    pub controller: i32,
    /// Every registered broker.
    pub brokers: Vec<BrokerInfo>,
}

/// A topic with its partitions (leaders, replicas, ISR).
#[derive(Debug, Clone)]
pub struct TopicListing {
    /// Name, partitions, leaders, ISR.
    pub info: Arc<TopicInfo>,
}

impl Admin {
    /// Brokers, controller and cluster id.
    pub async fn describe_cluster(&self) -> Result<ClusterDescription, AdminError> {
        let conn = self.client.any_connection().await?;
        let resp = send(&conn, &DescribeClusterRequest::default()).await?;
        AdminError::check(
            ApiKey::DescribeCluster,
            || "cluster".into(),
            resp.error_code,
            resp.error_message.as_deref(),
        )?;
        let mut brokers: Vec<BrokerInfo> = resp
            .brokers
            .iter()
            .map(|b| BrokerInfo {
                id: b.broker_id.0,
                host: b.host.to_string(),
                port: u16::try_from(b.port).unwrap_or(0),
                rack: b.rack.as_ref().map(|r| r.to_string()),
            })
            .collect();
        brokers.sort_by_key(|b| b.id);
        Ok(ClusterDescription {
            cluster_id: resp.cluster_id.to_string(),
            controller: resp.controller_id.0,
            brokers,
        })
    }

    /// The names of every topic (internal ones included when `internal`).
    pub async fn list_topics(&self, internal: bool) -> Result<Vec<String>, AdminError> {
        let conn = self.client.any_connection().await?;
        let resp = send(&conn, &MetadataRequest::default().with_topics(None)).await?;
        let mut names: Vec<String> = resp
            .topics
            .iter()
            .filter(|t| internal || !t.is_internal)
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The cluster view (brokers, topics, partitions, leaders, ISR) for
    /// `topics`, or for every topic when `topics` is empty.
    pub async fn metadata(&self, topics: &[&str]) -> Result<Arc<ClusterView>, AdminError> {
        let all;
        let names: Vec<&str> = if topics.is_empty() {
            all = self.list_topics(true).await?;
            all.iter().map(String::as_str).collect()
        } else {
            topics.to_vec()
        };
        Ok(self.client.refresh_metadata(&names).await?)
    }

    /// The partitions of `topic`, from fresh metadata.
    pub async fn partitions(&self, topic: &str) -> Result<Vec<i32>, AdminError> {
        let view = self.client.refresh_metadata(&[topic]).await?;
        match view.topic(topic) {
            Some(t) => Ok(t.partitions.iter().map(|p| p.partition).collect()),
            None => Err(match view.topic_error(topic) {
                Some(code) => AdminError::Kafka {
                    api: ApiKey::Metadata,
                    resource: Some(topic.to_owned()),
                    code,
                    message: None,
                },
                None => AdminError::NotFound(format!("topic {topic}")),
            }),
        }
    }
}
