//! Topics: create (CreateTopics; the net crate's helper, KIP-590 forwarding
//! to the controller), delete (DeleteTopics by name), add partitions
//! (CreatePartitions, KIP-195) and describe a topic's configs
//! (DescribeConfigs with synonyms off; KIP-226 config sources).

use std::time::Duration;

use exactly_codec::messages::create_partitions_request::CreatePartitionsTopic;
use exactly_codec::messages::describe_configs_request::DescribeConfigsResource;
use exactly_codec::messages::{
    ApiKey, CreatePartitionsRequest, DeleteTopicsRequest, DescribeConfigsRequest, TopicName,
};
use exactly_codec::protocol::StrBytes;
use exactly_net::admin::NewTopic;

use crate::send::{millis, send};
use crate::{Admin, AdminError};

/// DescribeConfigs resource type of a topic.
const RESOURCE_TOPIC: i8 = 2;

/// One config of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Name (`retention.ms`...).
    pub name: String,
    /// Value (`None` for a sensitive or unset value).
    pub value: Option<String>,
    /// Whether it cannot be altered.
    pub read_only: bool,
    /// Whether it is the default (not set on the topic itself).
    pub is_default: bool,
    /// Whether the value is sensitive (and so withheld).
    pub sensitive: bool,
    /// Where the value comes from (KIP-226: 1 topic, 4 static broker, 5
    /// default...).
    pub source: i8,
}

impl Admin {
    /// Creates topics; each topic's outcome (TOPIC_ALREADY_EXISTS is an
    /// error the caller may accept).
    pub async fn create_topics(
        &self,
        topics: &[NewTopic],
        timeout: Duration,
    ) -> Result<Vec<(String, Result<(), AdminError>)>, AdminError> {
        Ok(self
            .client
            .create_topics(topics, timeout)
            .await?
            .into_iter()
            .map(|(n, r)| (n, r.map_err(AdminError::from)))
            .collect())
    }

    /// Deletes topics by name; each topic's outcome.
    pub async fn delete_topics(
        &self,
        names: &[&str],
        timeout: Duration,
    ) -> Result<Vec<(String, Result<(), AdminError>)>, AdminError> {
        let req = DeleteTopicsRequest::default()
            .with_timeout_ms(millis(timeout))
            .with_topic_names(
                names
                    .iter()
                    .map(|n| TopicName(StrBytes::from_string((*n).to_owned())))
                    .collect(),
            )
            .with_topics(
                names
                    .iter()
                    .map(|n| {
                        exactly_codec::messages::delete_topics_request::DeleteTopicState::default()
                            .with_name(Some(TopicName(StrBytes::from_string((*n).to_owned()))))
                    })
                    .collect(),
            );
        let conn = self.client.any_connection().await?;
        let resp = send(&conn, &req).await?;
        Ok(resp
            .responses
            .iter()
            .map(|t| {
                let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
                let r = AdminError::check(
                    ApiKey::DeleteTopics,
                    || name.clone(),
                    t.error_code,
                    t.error_message.as_deref(),
                );
                (name, r)
            })
            .collect())
    }

    /// Grows `topic` to `total` partitions.
    pub async fn create_partitions(
        &self,
        topic: &str,
        total: i32,
        timeout: Duration,
    ) -> Result<(), AdminError> {
        let req = CreatePartitionsRequest::default()
            .with_timeout_ms(millis(timeout))
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_count(total)
                .with_assignments(None)]);
        let conn = self.client.any_connection().await?;
        let resp = send(&conn, &req).await?;
        let r = resp
            .results
            .iter()
            .find(|r| r.name.as_str() == topic)
            .ok_or_else(|| {
                AdminError::Unexpected(format!("no CreatePartitions result for {topic}"))
            })?;
        AdminError::check(
            ApiKey::CreatePartitions,
            || topic.to_owned(),
            r.error_code,
            r.error_message.as_deref(),
        )
    }

    /// Every config of `topic` (defaults included), sorted by name.
    pub async fn describe_topic_configs(
        &self,
        topic: &str,
    ) -> Result<Vec<ConfigEntry>, AdminError> {
        let req = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(RESOURCE_TOPIC)
                .with_resource_name(StrBytes::from_string(topic.to_owned()))
                .with_configuration_keys(None),
        ]);
        let conn = self.client.any_connection().await?;
        let resp = send(&conn, &req).await?;
        let r = resp
            .results
            .iter()
            .find(|r| r.resource_name.as_str() == topic)
            .ok_or_else(|| {
                AdminError::Unexpected(format!("no DescribeConfigs result for {topic}"))
            })?;
        AdminError::check(
            ApiKey::DescribeConfigs,
            || topic.to_owned(),
            r.error_code,
            r.error_message.as_deref(),
        )?;
        let mut out: Vec<ConfigEntry> = r
            .configs
            .iter()
            .map(|c| ConfigEntry {
                name: c.name.to_string(),
                value: c.value.as_ref().map(|v| v.to_string()),
                read_only: c.read_only,
                // KIP-226: 5 DEFAULT_CONFIG; 1 DYNAMIC_TOPIC_CONFIG.
                is_default: c.config_source == 5,
                sensitive: c.is_sensitive,
                source: c.config_source,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}
