//! The embedded consumer protocol of the classic group protocol: the member
//! metadata (`ConsumerProtocolSubscription`) a member puts in JoinGroup and
//! the assignment (`ConsumerProtocolAssignment`) the leader hands out in
//! SyncGroup (KIP-62 era format; owned partitions v1 from KIP-429,
//! generation v2 and rack v3 from KIP-881).
//!
//! Our own encoder and decoder: these bytes come from other group members
//! through the coordinator, so the decoder treats them as hostile. Every
//! count is checked against the bytes left before anything is allocated, a
//! negative length is an error (except the nullable `-1`), and a version
//! newer than 3 is read as 3 (newer versions only append fields), as the
//! reference client does.

use std::collections::BTreeMap;

/// What is wrong with a member's metadata or an assignment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed consumer protocol {what}: {why}")]
pub struct ProtocolError {
    what: &'static str,
    why: &'static str,
}

/// A member's subscription.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscription {
    /// The topics the member wants.
    pub topics: Vec<String>,
    /// Opaque user data.
    pub user_data: Option<Vec<u8>>,
    /// Partitions the member owns (v1+, cooperative protocols).
    pub owned: BTreeMap<String, Vec<i32>>,
    /// The member's generation (v2+; -1 when absent).
    pub generation: i32,
    /// The member's rack (v3+).
    pub rack: Option<String>,
}

/// One member's assignment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    /// Assigned partitions per topic.
    pub partitions: BTreeMap<String, Vec<i32>>,
    /// Opaque user data.
    pub user_data: Option<Vec<u8>>,
}

/// The subscription version we write: v3 (owned partitions and generation
/// for cooperative rebalancing; the rack from `client.rack`, null when
/// unset), as the reference client does. Readers of older versions stop after the fields they know.
const SUBSCRIPTION_VERSION: i16 = 3;
/// The assignment version we write.
const ASSIGNMENT_VERSION: i16 = 0;

fn put_str(out: &mut Vec<u8>, s: &str) {
    let len = i16::try_from(s.len()).unwrap_or(i16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..len as usize]);
}

fn put_partitions(out: &mut Vec<u8>, m: &BTreeMap<String, Vec<i32>>) {
    out.extend_from_slice(&(m.len() as i32).to_be_bytes());
    for (topic, ps) in m {
        put_str(out, topic);
        out.extend_from_slice(&(ps.len() as i32).to_be_bytes());
        for p in ps {
            out.extend_from_slice(&p.to_be_bytes());
        }
    }
}

fn put_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(b) => {
            out.extend_from_slice(&(b.len() as i32).to_be_bytes());
            out.extend_from_slice(b);
        }
    }
}

impl Subscription {
    /// Encodes the member metadata for JoinGroup.
    pub fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(16 + self.topics.iter().map(|t| t.len() + 2).sum::<usize>());
        out.extend_from_slice(&SUBSCRIPTION_VERSION.to_be_bytes());
        out.extend_from_slice(&(self.topics.len() as i32).to_be_bytes());
        for t in &self.topics {
            put_str(&mut out, t);
        }
        put_bytes(&mut out, self.user_data.as_deref());
        put_partitions(&mut out, &self.owned);
        out.extend_from_slice(&self.generation.to_be_bytes());
        match &self.rack {
            Some(r) => put_str(&mut out, r),
            None => out.extend_from_slice(&(-1i16).to_be_bytes()),
        }
        out
    }

    /// Decodes a member's metadata (any version; > 3 read as 3).
    pub fn decode(buf: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(buf, "subscription");
        let version = r.i16()?;
        if version < 0 {
            return Err(r.err("negative version"));
        }
        let n = r.count(2)?;
        let mut topics = Vec::new();
        for _ in 0..n {
            topics.push(r.string()?);
        }
        let user_data = r.bytes()?;
        let mut s = Subscription {
            topics,
            user_data,
            owned: BTreeMap::new(),
            generation: -1,
            rack: None,
        };
        if version >= 1 {
            s.owned = r.partitions()?;
        }
        if version >= 2 {
            s.generation = r.i32()?;
        }
        if version >= 3 {
            s.rack = r.nullable_string()?;
        }
        Ok(s)
    }
}

impl Assignment {
    /// Encodes an assignment for SyncGroup.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        out.extend_from_slice(&ASSIGNMENT_VERSION.to_be_bytes());
        put_partitions(&mut out, &self.partitions);
        put_bytes(&mut out, self.user_data.as_deref());
        out
    }

    /// Decodes an assignment (any version; > 3 read as 3). An empty buffer
    /// is an empty assignment (what the coordinator sends a member the
    /// leader gave nothing).
    pub fn decode(buf: &[u8]) -> Result<Self, ProtocolError> {
        if buf.is_empty() {
            return Ok(Assignment::default());
        }
        let mut r = Reader::new(buf, "assignment");
        let version = r.i16()?;
        if version < 0 {
            return Err(r.err("negative version"));
        }
        let partitions = r.partitions()?;
        let user_data = r.bytes()?;
        Ok(Assignment {
            partitions,
            user_data,
        })
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, pos: 0, what }
    }

    fn err(&self, why: &'static str) -> ProtocolError {
        ProtocolError {
            what: self.what,
            why,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| self.err("length overflow"))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| self.err("truncated"))?;
        self.pos = end;
        Ok(s)
    }

    fn i16(&mut self) -> Result<i16, ProtocolError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Result<i32, ProtocolError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// An array count whose elements take at least `min_each` bytes.
    fn count(&mut self, min_each: usize) -> Result<usize, ProtocolError> {
        let n = self.i32()?;
        let n = usize::try_from(n).map_err(|_| self.err("negative array count"))?;
        if n.saturating_mul(min_each) > self.buf.len() - self.pos {
            return Err(self.err("array count larger than the bytes left"));
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<String, ProtocolError> {
        self.nullable_string()?
            .ok_or_else(|| self.err("null where a string is required"))
    }

    fn nullable_string(&mut self) -> Result<Option<String>, ProtocolError> {
        let len = self.i16()?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| self.err("negative string length"))?;
        let b = self.take(len)?;
        String::from_utf8(b.to_vec())
            .map(Some)
            .map_err(|_| self.err("string is not UTF-8"))
    }

    fn bytes(&mut self) -> Result<Option<Vec<u8>>, ProtocolError> {
        let len = self.i32()?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| self.err("negative bytes length"))?;
        Ok(Some(self.take(len)?.to_vec()))
    }

    fn partitions(&mut self) -> Result<BTreeMap<String, Vec<i32>>, ProtocolError> {
        let n = self.count(6)?;
        let mut out = BTreeMap::new();
        for _ in 0..n {
            let topic = self.string()?;
            let k = self.count(4)?;
            let mut ps = Vec::with_capacity(k);
            for _ in 0..k {
                ps.push(self.i32()?);
            }
            out.entry(topic).or_insert_with(Vec::new).extend(ps);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use exactly_codec::messages::consumer_protocol_assignment::TopicPartition as AssignedTp;
    use exactly_codec::messages::consumer_protocol_subscription::TopicPartition as OwnedTp;
    use exactly_codec::messages::{
        ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName,
    };
    use exactly_codec::protocol::{Decodable, Encodable, StrBytes};

    #[test]
    fn roundtrip_ours() {
        let s = Subscription {
            topics: vec!["a".into(), "bb".into()],
            user_data: Some(vec![1, 2]),
            owned: BTreeMap::from([("a".into(), vec![3, 1])]),
            generation: 7,
            rack: None,
        };
        assert_eq!(Subscription::decode(&s.encode()).unwrap(), s);
        // The reference format reads what we write.
        let bytes = s.encode();
        let mut body = &bytes[2..];
        let theirs = ConsumerProtocolSubscription::decode(&mut body, 3).unwrap();
        assert_eq!(theirs.generation_id, 7);
        assert_eq!(theirs.owned_partitions[0].partitions, [3, 1]);
        assert!(body.is_empty());
        let mut a = Assignment::default();
        a.partitions.insert("a".into(), vec![0, 2]);
        a.partitions.insert("bb".into(), vec![1]);
        assert_eq!(Assignment::decode(&a.encode()).unwrap(), a);
        assert_eq!(Assignment::decode(&[]).unwrap(), Assignment::default());
    }

    #[test]
    fn reads_what_the_reference_format_writes_at_every_version() {
        // kafka-protocol's generated encoder stands in for other clients.
        let msg = ConsumerProtocolSubscription::default()
            .with_topics(vec![StrBytes::from_static_str("t1")])
            .with_owned_partitions(vec![OwnedTp::default()
                .with_topic(TopicName(StrBytes::from_static_str("t1")))
                .with_partitions(vec![3, 4])])
            .with_generation_id(9)
            .with_rack_id(Some(StrBytes::from_static_str("r1")));
        for v in 0..=3i16 {
            let mut buf = v.to_be_bytes().to_vec();
            msg.encode(&mut buf, v).unwrap();
            let d = Subscription::decode(&buf).unwrap();
            assert_eq!(d.topics, ["t1"]);
            assert_eq!(d.owned.contains_key("t1"), v >= 1, "v{v}");
            assert_eq!(d.generation, if v >= 2 { 9 } else { -1 });
            assert_eq!(d.rack.as_deref(), (v >= 3).then_some("r1"));
        }
        let a = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
            AssignedTp::default()
                .with_topic(TopicName(StrBytes::from_static_str("t1")))
                .with_partitions(vec![0, 1]),
        ]);
        for v in 0..=3i16 {
            let mut buf = v.to_be_bytes().to_vec();
            a.encode(&mut buf, v).unwrap();
            let d = Assignment::decode(&buf).unwrap();
            assert_eq!(d.partitions.get("t1").unwrap(), &[0, 1]);
        }
        // A newer version with trailing fields is read as v3.
        let mut buf = 7i16.to_be_bytes().to_vec();
        msg.encode(&mut buf, 3).unwrap();
        buf.extend_from_slice(&[0xde, 0xad]);
        assert_eq!(Subscription::decode(&buf).unwrap().topics, ["t1"]);
    }

    #[test]
    fn hostile_bytes_are_errors_without_big_allocations() {
        // A huge topic count in a tiny buffer.
        let mut b = 0i16.to_be_bytes().to_vec();
        b.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(Subscription::decode(&b).is_err());
        let mut b = 0i16.to_be_bytes().to_vec();
        b.extend_from_slice(&(-2i32).to_be_bytes());
        assert!(Subscription::decode(&b).is_err());
        // Huge partition count.
        let mut b = 0i16.to_be_bytes().to_vec();
        b.extend_from_slice(&1i32.to_be_bytes());
        b.extend_from_slice(&1i16.to_be_bytes());
        b.push(b't');
        b.extend_from_slice(&0x4000_0000i32.to_be_bytes());
        assert!(Assignment::decode(&b).is_err());
        // Negative string length, negative version, truncation everywhere.
        let good = Subscription {
            topics: vec!["topic".into()],
            user_data: Some(vec![9; 4]),
            ..Subscription::default()
        }
        .encode();
        for cut in 0..good.len() {
            assert!(Subscription::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut neg = good.clone();
        neg[6..8].copy_from_slice(&(-3i16).to_be_bytes());
        assert!(Subscription::decode(&neg).is_err());
        assert!(Subscription::decode(&[0xff, 0xff, 0, 0, 0, 0]).is_err());
        let mut bad_utf8 = good;
        bad_utf8[8] = 0xff;
        assert!(Subscription::decode(&bad_utf8).is_err());
    }
}
