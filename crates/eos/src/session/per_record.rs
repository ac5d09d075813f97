//! A handler from a plain closure called once per input record: for
//! transforms that need no `await` (map, filter, fan-out, routing).

use bytes::Bytes;
use exactly_consumer::ConsumerRecord;
use exactly_producer::ProducerRecord;

use super::handler::{Context, Handler, HandlerError};

/// An output record that owns its parts (what a [`per_record`] closure
/// emits; the session sends it in the open transaction).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputRecord {
    topic: String,
    partition: Option<i32>,
    key: Option<Bytes>,
    value: Option<Bytes>,
    headers: Vec<(String, Option<Bytes>)>,
    timestamp: Option<i64>,
}

impl OutputRecord {
    /// A record for `topic` with a null key and value.
    pub fn new(topic: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            ..Self::default()
        }
    }

    /// With this key.
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// With this value.
    pub fn with_value(mut self, value: impl Into<Bytes>) -> Self {
        self.value = Some(value.into());
        self
    }

    /// To this partition (instead of the partitioner's choice).
    pub fn with_partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// With one more header.
    pub fn with_header(mut self, key: impl Into<String>, value: Option<Bytes>) -> Self {
        self.headers.push((key.into(), value));
        self
    }

    /// With this timestamp (milliseconds since the epoch).
    pub fn with_timestamp(mut self, timestamp_ms: i64) -> Self {
        self.timestamp = Some(timestamp_ms);
        self
    }

    /// The record to send, borrowing from this one.
    pub fn as_producer_record(&self) -> ProducerRecord<'_> {
        let mut r = ProducerRecord::new(&self.topic);
        if let Some(p) = self.partition {
            r = r.with_partition(p);
        }
        if let Some(k) = &self.key {
            r = r.with_key(k);
        }
        if let Some(v) = &self.value {
            r = r.with_value(v);
        }
        for (k, v) in &self.headers {
            r = r.with_header(k, v.as_deref());
        }
        if let Some(t) = self.timestamp {
            r = r.with_timestamp(t);
        }
        r
    }
}

/// The [`Handler`] [`per_record`] makes.
#[derive(Debug)]
pub struct PerRecord<F> {
    f: F,
    out: Vec<OutputRecord>,
}

/// A handler calling `f` for each input record; `f` pushes 0..N output
/// records. An `Err` from `f` aborts the transaction as
/// [`Handler::process`] describes.
///
/// ```
/// use exactly_eos::{per_record, OutputRecord};
///
/// // Every value to "all"; even numbers to "even" too.
/// let handler = per_record(|r, out| {
///     let Some(v) = r.value() else { return Ok(()) };
///     out.push(OutputRecord::new("all").with_value(v.clone()));
///     if std::str::from_utf8(v)?.parse::<u64>()?.is_multiple_of(2) {
///         out.push(OutputRecord::new("even").with_value(v.clone()));
///     }
///     Ok(())
/// });
/// # let _ = handler;
/// ```
pub fn per_record<F>(f: F) -> PerRecord<F>
where
    F: FnMut(&ConsumerRecord, &mut Vec<OutputRecord>) -> Result<(), HandlerError> + Send,
{
    PerRecord { f, out: Vec::new() }
}

impl<F> Handler for PerRecord<F>
where
    F: FnMut(&ConsumerRecord, &mut Vec<OutputRecord>) -> Result<(), HandlerError> + Send,
{
    async fn process(
        &mut self,
        ctx: &mut Context<'_>,
        records: &[ConsumerRecord],
    ) -> Result<(), HandlerError> {
        for r in records {
            self.out.clear();
            (self.f)(r, &mut self.out)?;
            for o in &self.out {
                ctx.send(o.as_producer_record()).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_records_carry_every_part() {
        let o = OutputRecord::new("t")
            .with_key(&b"k"[..])
            .with_value(&b"v"[..])
            .with_partition(2)
            .with_header("h", Some(Bytes::from_static(b"x")))
            .with_timestamp(42);
        let r = o.as_producer_record();
        assert_eq!(r.topic(), "t");
        assert_eq!(r.partition(), Some(2));
        assert_eq!(r.key(), Some(&b"k"[..]));
        assert_eq!(r.value(), Some(&b"v"[..]));
        assert_eq!(r.headers().len(), 1);
        assert_eq!(r.timestamp(), Some(42));
        let bare = OutputRecord::new("t");
        assert_eq!(bare.as_producer_record(), ProducerRecord::new("t"));
    }
}
