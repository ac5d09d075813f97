//! A small admin helper: create topics (CreateTopics; in KRaft any broker
//! forwards it to the controller, KIP-590) and wait for their leaders. Tests
//! and the demo need it; it is not a full admin client.

use std::time::Duration;

use exactly_codec::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use exactly_codec::messages::{ApiKey, CreateTopicsRequest, TopicName};
use exactly_codec::protocol::StrBytes;
use exactly_codec::ErrorCode;

use crate::cluster::Client;
use crate::error::NetError;

/// A topic to create.
#[derive(Debug, Clone)]
pub struct NewTopic {
    /// Name.
    pub name: String,
    /// Partition count (-1 for the broker default).
    pub partitions: i32,
    /// Replication factor (-1 for the broker default).
    pub replication_factor: i16,
    /// Topic configs (`min.insync.replicas`, ...).
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    /// A topic with `partitions` partitions and `replication_factor` replicas.
    pub fn new(name: impl Into<String>, partitions: i32, replication_factor: i16) -> Self {
        Self {
            name: name.into(),
            partitions,
            replication_factor,
            configs: Vec::new(),
        }
    }

    /// Adds a topic config.
    pub fn with_config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.push((key.into(), value.into()));
        self
    }
}

impl Client {
    /// Creates topics; returns each topic's outcome (TOPIC_ALREADY_EXISTS
    /// included, as an error the caller may accept).
    pub async fn create_topics(
        &self,
        topics: &[NewTopic],
        timeout: Duration,
    ) -> Result<Vec<(String, Result<(), NetError>)>, NetError> {
        let req = CreateTopicsRequest::default()
            .with_timeout_ms(i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX))
            .with_topics(
                topics
                    .iter()
                    .map(|t| {
                        CreatableTopic::default()
                            .with_name(TopicName(StrBytes::from_string(t.name.clone())))
                            .with_num_partitions(t.partitions)
                            .with_replication_factor(t.replication_factor)
                            .with_configs(
                                t.configs
                                    .iter()
                                    .map(|(k, v)| {
                                        CreatableTopicConfig::default()
                                            .with_name(StrBytes::from_string(k.clone()))
                                            .with_value(Some(StrBytes::from_string(v.clone())))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let conn = self.any_connection().await?;
        let resp = conn.send(&req).await?;
        Ok(resp
            .topics
            .into_iter()
            .map(|t| {
                let r = match ErrorCode::from_code(t.error_code) {
                    None => Ok(()),
                    Some(code) => {
                        self.metrics().record_error(code);
                        Err(NetError::Kafka {
                            api: ApiKey::CreateTopics,
                            code,
                            message: t.error_message.map(|m| m.to_string().into()),
                        })
                    }
                };
                (t.name.0.to_string(), r)
            })
            .collect())
    }

    /// Creates the topics unless they exist, then waits until every
    /// partition has a leader.
    pub async fn ensure_topics(
        &self,
        topics: &[NewTopic],
        timeout: Duration,
    ) -> Result<(), NetError> {
        for (_, r) in self.create_topics(topics, timeout).await? {
            match r {
                Ok(()) => {}
                Err(NetError::Kafka {
                    code: ErrorCode::TopicAlreadyExists,
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
        for t in topics {
            self.wait_for_leaders(&t.name, timeout).await?;
        }
        Ok(())
    }
}
