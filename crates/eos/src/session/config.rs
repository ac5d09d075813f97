//! The session's configuration: its own settings, plus the consumer's and
//! the producer's, all by Kafka property names or typed setters.
//!
//! Property routing (as Kafka Streams does it): a key the session owns is
//! the session's (`group.id`, `transactional.id`, `input.topics`, ...); a
//! key prefixed `consumer.` or `producer.` goes to that client only; any
//! other key goes to every client that knows it (`bootstrap.servers`,
//! `client.id`, `security.protocol`, ... to both; `linger.ms` to the
//! producer; `fetch.max.wait.ms` to the consumer). A key nobody knows is an
//! error, never ignored.
//!
//! Settings that exactly-once depends on are the session's to make and are
//! refused if set otherwise: the consumer reads `read_committed` with
//! `enable.auto.commit=false` (offsets travel in the transaction, KIP-447),
//! and the producer is transactional with the session's
//! `transactional.id` (which implies idempotence and `acks=all`).

use std::time::Duration;

use exactly_consumer::{ConsumerConfig, ConsumerConfigBuilder};
use exactly_net::ConfigError;
use exactly_producer::ProducerConfigBuilder;
use regex::Regex;

use crate::state::StateConfig;

/// The topics a session reads.
#[derive(Debug, Clone)]
pub enum InputTopics {
    /// These topics.
    Names(Vec<String>),
    /// Every topic whose whole name matches this regular expression, as found
    /// in the cluster's metadata when the session starts and at every
    /// `input.pattern.refresh.ms` after (a change rejoins the group with the
    /// new list). Internal topics (`__consumer_offsets`, ...) never match.
    Pattern(Regex),
}

/// The validated settings of a session (see [`SessionBuilder`] for each
/// property and its default).
///
/// [`SessionBuilder`]: crate::SessionBuilder
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub(crate) group_id: String,
    pub(crate) transactional_id: String,
    pub(crate) input: InputTopics,
    pub(crate) max_records: usize,
    pub(crate) max_time: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) idle_stop: Option<Duration>,
    pub(crate) handler_max_retries: Option<u32>,
    pub(crate) handler_retry_backoff: Duration,
    pub(crate) pattern_refresh: Duration,
    pub(crate) poll_timeout: Duration,
    pub(crate) state: Option<StateConfig>,
}

impl SessionConfig {
    /// `group.id`.
    pub fn group_id(&self) -> &str {
        &self.group_id
    }
    /// `transactional.id`.
    pub fn transactional_id(&self) -> &str {
        &self.transactional_id
    }
    /// The input topics.
    pub fn input(&self) -> &InputTopics {
        &self.input
    }
    /// `transaction.max.records`.
    pub fn max_records(&self) -> usize {
        self.max_records
    }
    /// `commit.interval.ms`.
    pub fn max_time(&self) -> Duration {
        self.max_time
    }
    /// `shutdown.timeout.ms`.
    pub fn shutdown_timeout(&self) -> Duration {
        self.shutdown_timeout
    }
}

/// The settings being gathered, before validation.
#[derive(Debug, Clone)]
pub(crate) struct Draft {
    pub(crate) group_id: Option<String>,
    pub(crate) transactional_id: Option<String>,
    pub(crate) topics: Vec<String>,
    pub(crate) pattern: Option<Regex>,
    pub(crate) max_records: usize,
    pub(crate) max_time: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) idle_stop: Option<Duration>,
    pub(crate) handler_max_retries: Option<u32>,
    pub(crate) handler_retry_backoff: Duration,
    pub(crate) pattern_refresh: Duration,
    pub(crate) poll_timeout: Duration,
    pub(crate) state: Option<StateConfig>,
    /// `group.instance.id`: the group consumer's only (the restore consumer
    /// has no group).
    pub(crate) group_instance_id: Option<String>,
    pub(crate) consumer: ConsumerConfigBuilder,
    pub(crate) producer: ProducerConfigBuilder,
}

impl Default for Draft {
    fn default() -> Self {
        Self {
            group_id: None,
            transactional_id: None,
            topics: Vec::new(),
            pattern: None,
            max_records: 1000,
            // Kafka Streams' default under exactly-once.
            max_time: Duration::from_millis(100),
            shutdown_timeout: Duration::from_secs(30),
            idle_stop: None,
            handler_max_retries: None,
            handler_retry_backoff: Duration::from_millis(100),
            pattern_refresh: Duration::from_secs(30),
            poll_timeout: Duration::from_millis(500),
            state: None,
            group_instance_id: None,
            consumer: ConsumerConfigBuilder::default(),
            producer: ProducerConfigBuilder::default(),
        }
    }
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.into(),
    }
}

fn millis(key: &str, value: &str, min: u64) -> Result<Duration, ConfigError> {
    match value.trim().parse::<u64>() {
        Ok(ms) if ms >= min => Ok(Duration::from_millis(ms)),
        _ => Err(invalid(
            key,
            value,
            format!("expected a number of milliseconds >= {min}"),
        )),
    }
}

fn non_empty(key: &str, value: &str) -> Result<String, ConfigError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(invalid(key, value, "must not be empty"));
    }
    Ok(v.to_owned())
}

/// `Ok(true)` if the client took the key, `Ok(false)` if it does not know it.
fn offer(r: Result<(), ConfigError>) -> Result<bool, ConfigError> {
    match r {
        Ok(()) => Ok(true),
        Err(ConfigError::UnknownProperty(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Compiles an input pattern, anchored to the whole topic name (as Java's
/// `Pattern.matcher(topic).matches()`).
pub(crate) fn compile_pattern(key: &str, pattern: &str) -> Result<Regex, ConfigError> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|e| invalid(key, pattern, e.to_string()))
}

impl Draft {
    pub(crate) fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        match key {
            "group.id" => self.group_id = Some(non_empty(key, value)?),
            "group.instance.id" | "consumer.group.instance.id" => {
                self.group_instance_id = Some(non_empty(key, value)?)
            }
            "transactional.id" => self.transactional_id = Some(non_empty(key, value)?),
            "input.topics" => {
                let topics: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect();
                if topics.is_empty() {
                    return Err(invalid(key, value, "name at least one topic"));
                }
                self.topics = topics;
            }
            "input.pattern" => self.pattern = Some(compile_pattern(key, value.trim())?),
            "input.pattern.refresh.ms" => self.pattern_refresh = millis(key, value, 1)?,
            "transaction.max.records" => match value.trim().parse::<usize>() {
                Ok(n) if n >= 1 => self.max_records = n,
                _ => return Err(invalid(key, value, "expected a count >= 1")),
            },
            "commit.interval.ms" => self.max_time = millis(key, value, 1)?,
            "shutdown.timeout.ms" => self.shutdown_timeout = millis(key, value, 1)?,
            "idle.stop.ms" => {
                self.idle_stop = match value.trim() {
                    "-1" => None,
                    _ => Some(millis(key, value, 1)?),
                }
            }
            "handler.max.retries" => {
                self.handler_max_retries = match value.trim() {
                    "-1" => None,
                    v => Some(v.parse().map_err(|_| {
                        invalid(key, value, "expected a count, or -1 for no limit")
                    })?),
                }
            }
            "handler.retry.backoff.ms" => self.handler_retry_backoff = millis(key, value, 0)?,
            "poll.timeout.ms" => self.poll_timeout = millis(key, value, 1)?,
            "state.name" => self.state = Some(StateConfig::new(non_empty(key, value)?)),
            "isolation.level" if !value.trim().eq_ignore_ascii_case("read_committed") => {
                return Err(invalid(
                    key,
                    value,
                    "a session reads read_committed (it would otherwise process aborted input)",
                ))
            }
            "enable.auto.commit" if !value.trim().eq_ignore_ascii_case("false") => {
                return Err(invalid(
                    key,
                    value,
                    "a session commits its offsets in its transactions",
                ))
            }
            "enable.idempotence" | "acks" => {
                let ok = match key {
                    "acks" => matches!(value.trim(), "all" | "-1"),
                    _ => value.trim().eq_ignore_ascii_case("true"),
                };
                if !ok {
                    return Err(invalid(key, value, "a transactional producer needs it"));
                }
            }
            _ => {
                if let Some(k) = key.strip_prefix("consumer.") {
                    self.check_reserved(k, value)?;
                    self.consumer.set(k, value)?;
                } else if let Some(k) = key.strip_prefix("producer.") {
                    self.check_reserved(k, value)?;
                    self.producer.set(k, value)?;
                } else {
                    let c = offer(self.consumer.set(key, value).map(|_| ()))?;
                    let p = offer(self.producer.set(key, value).map(|_| ()))?;
                    if !c && !p {
                        return Err(ConfigError::UnknownProperty(key.to_owned()));
                    }
                }
            }
        }
        Ok(())
    }

    /// A prefixed key must not get around the session's own settings.
    fn check_reserved(&self, key: &str, value: &str) -> Result<(), ConfigError> {
        if matches!(
            key,
            "group.id"
                | "transactional.id"
                | "isolation.level"
                | "enable.auto.commit"
                | "acks"
                | "enable.idempotence"
        ) {
            let mut probe = Draft::default();
            return probe.set(key, value).and_then(|()| {
                if matches!(key, "group.id" | "transactional.id") {
                    Err(invalid(key, value, "set it without a prefix"))
                } else {
                    Ok(())
                }
            });
        }
        Ok(())
    }

    /// Validates the settings and fills the clients' builders with the
    /// session's own.
    pub(crate) fn build(&self) -> Result<Built, ConfigError> {
        let group_id = self
            .group_id
            .clone()
            .ok_or_else(|| ConfigError::Inconsistent("a session needs `group.id`".into()))?;
        let transactional_id = self.transactional_id.clone().ok_or_else(|| {
            ConfigError::Inconsistent(
                "a session needs `transactional.id` (one fixed id per instance)".into(),
            )
        })?;
        let input = match (&self.pattern, self.topics.is_empty()) {
            (Some(_), false) => {
                return Err(ConfigError::Inconsistent(
                    "set `input.topics` or `input.pattern`, not both".into(),
                ))
            }
            (Some(p), true) => InputTopics::Pattern(p.clone()),
            (None, false) => InputTopics::Names(self.topics.clone()),
            (None, true) => {
                return Err(ConfigError::Inconsistent(
                    "a session needs `input.topics` or `input.pattern`".into(),
                ))
            }
        };
        // The restore consumer reads changelogs outside the group.
        let mut restore = self.consumer.clone();
        restore
            .set("isolation.level", "read_committed")?
            .set("enable.auto.commit", "false")?
            .set("auto.offset.reset", "earliest")?;
        let mut uncommitted = restore.clone();
        uncommitted.set("isolation.level", "read_uncommitted")?;
        let restore = restore.build()?;
        let uncommitted = uncommitted.build()?;
        let mut consumer = self.consumer.clone();
        if let Some(id) = &self.group_instance_id {
            consumer.set("group.instance.id", id)?;
        }
        consumer
            .set("group.id", &group_id)?
            .set("isolation.level", "read_committed")?
            .set("enable.auto.commit", "false")?;
        let mut producer = self.producer.clone();
        producer
            .set("transactional.id", &transactional_id)?
            .set("acks", "all")?
            .set("enable.idempotence", "true")?;
        // Both validate now, so a bad setting fails before any connection.
        consumer.build()?;
        producer.build()?;
        let cfg = SessionConfig {
            group_id,
            transactional_id,
            input,
            max_records: self.max_records,
            max_time: self.max_time,
            shutdown_timeout: self.shutdown_timeout,
            idle_stop: self.idle_stop,
            handler_max_retries: self.handler_max_retries,
            handler_retry_backoff: self.handler_retry_backoff,
            pattern_refresh: self.pattern_refresh,
            poll_timeout: self.poll_timeout,
            state: self.state.clone(),
        };
        Ok(Built {
            session: cfg,
            consumer,
            producer,
            restore,
            uncommitted,
        })
    }
}

/// Validated settings, and the clients' builders filled with the session's.
#[derive(Debug)]
pub(crate) struct Built {
    pub(crate) session: SessionConfig,
    pub(crate) consumer: ConsumerConfigBuilder,
    pub(crate) producer: ProducerConfigBuilder,
    /// The consumer that restores state from changelogs (no group).
    pub(crate) restore: ConsumerConfig,
    /// The same, `read_uncommitted`: reads the changelogs' high watermarks.
    pub(crate) uncommitted: ConsumerConfig,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(props: &[(&str, &str)]) -> Result<Draft, ConfigError> {
        let mut d = Draft::default();
        for (k, v) in props {
            d.set(k, v)?;
        }
        Ok(d)
    }

    const BASE: &[(&str, &str)] = &[
        ("bootstrap.servers", "127.0.0.1:9092"),
        ("group.id", "g"),
        ("transactional.id", "t-1"),
        ("input.topics", "a, b"),
    ];

    #[test]
    fn routes_keys_to_the_clients_that_know_them() {
        let mut props = BASE.to_vec();
        props.extend([
            ("linger.ms", "7"),
            ("fetch.max.wait.ms", "50"),
            ("consumer.client.id", "c"),
            ("producer.client.id", "p"),
            ("group.instance.id", "static-1"),
            ("transaction.max.records", "250"),
            ("commit.interval.ms", "40"),
        ]);
        let b = draft(&props).unwrap().build().unwrap();
        let (cfg, consumer, producer) = (b.session, b.consumer, b.producer);
        let consumer = consumer.build().unwrap();
        let producer = producer.build().unwrap();
        assert_eq!(
            b.restore.group_id(),
            None,
            "the restore consumer has no group"
        );
        assert_eq!(cfg.max_records(), 250);
        assert_eq!(cfg.max_time(), Duration::from_millis(40));
        assert!(matches!(cfg.input(), InputTopics::Names(t) if t == &["a", "b"]));
        assert_eq!(producer.linger(), Duration::from_millis(7));
        assert_eq!(producer.transactional_id(), Some("t-1"));
        assert_eq!(consumer.group_id(), Some("g"));
        assert_eq!(consumer.group_instance_id(), Some("static-1"));
        assert_eq!(b.restore.group_instance_id(), None);
        assert_eq!(
            consumer.isolation_level(),
            exactly_consumer::IsolationLevel::ReadCommitted
        );
        assert!(!consumer.enable_auto_commit());
        assert_eq!(consumer.net().client_id(), "c");
        assert_eq!(producer.net().client_id(), "p");
    }

    #[test]
    fn unknown_keys_and_unsafe_settings_are_errors() {
        assert!(matches!(
            draft(&[("lingerms", "5")]),
            Err(ConfigError::UnknownProperty(k)) if k == "lingerms"
        ));
        for (k, v) in [
            ("isolation.level", "read_uncommitted"),
            ("consumer.isolation.level", "read_uncommitted"),
            ("enable.auto.commit", "true"),
            ("consumer.enable.auto.commit", "true"),
            ("acks", "1"),
            ("producer.enable.idempotence", "false"),
            ("producer.transactional.id", "other"),
            ("transaction.max.records", "0"),
            ("input.pattern", "("),
        ] {
            assert!(
                matches!(draft(&[(k, v)]), Err(ConfigError::InvalidValue { .. })),
                "{k}={v} must be refused"
            );
        }
        // Harmless restatements pass.
        draft(&[("isolation.level", "read_committed"), ("acks", "all")]).unwrap();
    }

    #[test]
    fn needs_group_transactional_id_and_one_kind_of_input() {
        let missing = |skip: &str| {
            let props: Vec<_> = BASE.iter().filter(|(k, _)| *k != skip).copied().collect();
            draft(&props).unwrap().build().map(|_| ())
        };
        for key in ["group.id", "transactional.id", "input.topics"] {
            assert!(
                matches!(missing(key), Err(ConfigError::Inconsistent(_))),
                "without {key}"
            );
        }
        let mut props = BASE.to_vec();
        props.push(("input.pattern", "a.*"));
        assert!(matches!(
            draft(&props).unwrap().build(),
            Err(ConfigError::Inconsistent(_))
        ));
    }

    #[test]
    fn patterns_match_whole_topic_names() {
        let re = compile_pattern("input.pattern", "orders-.*|refunds").unwrap();
        assert!(re.is_match("orders-eu"));
        assert!(re.is_match("refunds"));
        assert!(!re.is_match("old-orders-eu"));
        assert!(!re.is_match("refunds-2"));
    }
}
