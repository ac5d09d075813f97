//! Input topics by pattern: the consumer subscribes to a list, so a pattern
//! is resolved against the cluster's topic list (a Metadata request for all
//! topics) when the session starts and again every
//! `input.pattern.refresh.ms`; a changed list is subscribed again, which
//! rejoins the group (the Java consumer does the same with its metadata
//! refreshes).

use exactly_codec::messages::MetadataRequest;
use exactly_codec::ErrorCode;
use exactly_net::{Client, NetError};
use regex::Regex;

/// The non-internal topics of the cluster whose names `pattern` matches,
/// sorted.
pub(crate) async fn matching_topics(
    client: &Client,
    pattern: &Regex,
) -> Result<Vec<String>, NetError> {
    let req = MetadataRequest::default()
        .with_topics(None)
        .with_allow_auto_topic_creation(false);
    let resp = client.any_connection().await?.send(&req).await?;
    let mut names: Vec<String> = resp
        .topics
        .iter()
        .filter(|t| !t.is_internal && ErrorCode::from_code(t.error_code).is_none())
        .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
        .filter(|n| !n.starts_with("__") && pattern.is_match(n))
        .collect();
    names.sort();
    Ok(names)
}
