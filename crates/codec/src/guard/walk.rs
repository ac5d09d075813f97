//! The skimmer: walks a message body along its schema without building
//! anything, checking every length against the bytes that remain.
//!
//! Invariant kept by [`Walker`]: `pos <= buf.len()`, and `pos` only moves
//! forward by amounts already checked against `buf.len() - pos`. Nothing is
//! allocated on the way; a failure allocates its path while it unwinds.
//!
//! The walker reads lengths exactly as `kafka-protocol` 0.18's decoders do,
//! so that whatever it accepts, the decoder walks the same way: unsigned
//! varints of at most five bytes, compact lengths stored plus one (zero is
//! null), classic lengths as int16 (strings) or int32 (bytes, arrays), and
//! a known tagged field read by its type (the decoder ignores the declared
//! size there, so the walker insists the value fills it exactly).

use std::fmt;

use super::schema::{Field, Ty};
use super::Fault;

/// One step of the path to a fault.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Seg {
    /// A named field.
    Field(&'static str),
    /// An element of an array.
    Index(u64),
    /// A tagged field this schema does not know by name.
    Tag(u32),
    /// The tagged-field section of a struct.
    TaggedFields,
}

/// A fault and where it is, innermost step first.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) fault: Fault,
    steps: Vec<Seg>,
}

impl Failure {
    fn new(fault: Fault) -> Box<Failure> {
        Box::new(Failure {
            fault,
            steps: Vec::new(),
        })
    }

    /// Adds an outer step while the failure unwinds.
    pub(crate) fn at(mut self: Box<Self>, seg: Seg) -> Box<Self> {
        self.steps.push(seg);
        self
    }

    /// The path from the message down to the fault, e.g.
    /// `Responses[0].Partitions[3].Records`.
    pub(crate) fn path(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.steps.is_empty() {
            return f.write_str("(message)");
        }
        for (i, seg) in self.steps.iter().rev().enumerate() {
            let dot = if i == 0 { "" } else { "." };
            match seg {
                Seg::Field(name) => write!(f, "{dot}{name}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Tag(t) => write!(f, "{dot}<tag {t}>")?,
                Seg::TaggedFields => write!(f, "{dot}<tagged fields>")?,
            }
        }
        Ok(())
    }
}

pub(crate) type Step<T = ()> = Result<T, Box<Failure>>;

/// A cursor over one message at one version.
#[derive(Debug)]
pub(crate) struct Walker<'a> {
    buf: &'a [u8],
    pos: usize,
    version: i16,
    flexible: bool,
}

impl<'a> Walker<'a> {
    /// A walker at the start of `buf`, for `version`, flexible or not.
    pub(crate) fn new(buf: &'a [u8], version: i16, flexible: bool) -> Self {
        Walker {
            buf,
            pos: 0,
            version,
            flexible,
        }
    }

    /// Bytes consumed so far.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Skips `n` bytes, if that many remain.
    pub(crate) fn take(&mut self, n: u64) -> Step {
        let available = self.remaining();
        if n > available as u64 {
            return Err(Failure::new(Fault::LengthPastEnd {
                declared: n,
                available,
            }));
        }
        self.pos += n as usize;
        Ok(())
    }

    fn byte(&mut self) -> Step<u8> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(Failure::new(Fault::LengthPastEnd {
                declared: 1,
                available: 0,
            })),
        }
    }

    fn int16(&mut self) -> Step<i16> {
        Ok(i16::from_be_bytes([self.byte()?, self.byte()?]))
    }

    fn int32(&mut self) -> Step<i32> {
        let available = self.remaining();
        match self.buf.get(self.pos..self.pos + 4) {
            Some(b) => {
                self.pos += 4;
                Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            }
            None => Err(Failure::new(Fault::LengthPastEnd {
                declared: 4,
                available,
            })),
        }
    }

    /// An unsigned varint of at most five bytes that fits 32 bits.
    pub(crate) fn uvarint(&mut self) -> Step<u32> {
        let mut value = 0u32;
        for i in 0..5 {
            let b = self.byte()?;
            if i == 4 {
                if b & 0x80 != 0 {
                    return Err(Failure::new(Fault::VarintTooLong));
                }
                if b > 0x0f {
                    return Err(Failure::new(Fault::VarintOverflow));
                }
            }
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                break;
            }
        }
        Ok(value)
    }

    /// A compact length (stored plus one, zero meaning null).
    fn compact_len(&mut self) -> Step<Option<u64>> {
        Ok(match self.uvarint()? {
            0 => None,
            n => Some(u64::from(n) - 1),
        })
    }

    /// A classic length: -1 is null, anything lower is an error.
    fn classic_len(n: i32) -> Step<Option<u64>> {
        match n {
            -1 => Ok(None),
            n if n < 0 => Err(Failure::new(Fault::NegativeLength(n))),
            n => Ok(Some(n as u64)),
        }
    }

    fn not_null(len: Option<u64>, nullable: bool) -> Step<Option<u64>> {
        if len.is_none() && !nullable {
            return Err(Failure::new(Fault::UnexpectedNull));
        }
        Ok(len)
    }

    /// A string or bytes length, then the bytes it declares.
    fn sized(&mut self, classic16: bool, nullable: bool) -> Step {
        let len = if self.flexible {
            self.compact_len()?
        } else if classic16 {
            Self::classic_len(i32::from(self.int16()?))?
        } else {
            Self::classic_len(self.int32()?)?
        };
        match Self::not_null(len, nullable)? {
            Some(n) => self.take(n),
            None => Ok(()),
        }
    }

    /// An array count, checked against the remaining bytes given that each
    /// element takes at least `min_element` bytes.
    fn count(&mut self, nullable: bool, min_element: usize) -> Step<Option<u64>> {
        let n = if self.flexible {
            self.compact_len()?
        } else {
            Self::classic_len(self.int32()?)?
        };
        let Some(n) = Self::not_null(n, nullable)? else {
            return Ok(None);
        };
        let available = self.remaining();
        let min_element = min_element.max(1);
        if n.saturating_mul(min_element as u64) > available as u64 {
            return Err(Failure::new(Fault::CountPastEnd {
                declared: n,
                available,
                min_element,
            }));
        }
        Ok(Some(n))
    }

    /// The fewest bytes a value of `ty` can take at this version.
    fn min_size(&self, ty: &Ty) -> usize {
        let small = |classic: usize| if self.flexible { 1 } else { classic };
        match ty {
            Ty::Int8 | Ty::Bool => 1,
            Ty::Int16 | Ty::Uint16 => 2,
            Ty::Int32 => 4,
            Ty::Int64 | Ty::Float64 => 8,
            Ty::Uuid => 16,
            Ty::Str => small(2),
            Ty::Bytes | Ty::Records | Ty::Array(_) | Ty::Structs(_) => small(4),
            Ty::Struct(fields) => self.struct_min(fields),
        }
    }

    fn struct_min(&self, fields: &[Field]) -> usize {
        let own: usize = fields
            .iter()
            .filter(|f| f.tag.is_none() && f.versions.contains(self.version))
            .map(|f| self.min_size(&f.ty))
            .sum();
        own + usize::from(self.flexible)
    }

    /// The exact size of `ty` when it has one.
    fn fixed_size(ty: &Ty) -> Option<u64> {
        match ty {
            Ty::Int8 | Ty::Bool => Some(1),
            Ty::Int16 | Ty::Uint16 => Some(2),
            Ty::Int32 => Some(4),
            Ty::Int64 | Ty::Float64 => Some(8),
            Ty::Uuid => Some(16),
            _ => None,
        }
    }

    /// Skims one value of `ty`.
    fn value(&mut self, ty: &Ty, nullable: bool) -> Step {
        if let Some(n) = Self::fixed_size(ty) {
            return self.take(n);
        }
        match ty {
            Ty::Str => self.sized(true, nullable),
            Ty::Bytes | Ty::Records => self.sized(false, nullable),
            Ty::Array(elem) => {
                let Some(n) = self.count(nullable, self.min_size(elem))? else {
                    return Ok(());
                };
                if let Some(size) = Self::fixed_size(elem) {
                    return self.take(n * size);
                }
                for i in 0..n {
                    self.value(elem, false).map_err(|e| e.at(Seg::Index(i)))?;
                }
                Ok(())
            }
            Ty::Structs(fields) => {
                let Some(n) = self.count(nullable, self.struct_min(fields))? else {
                    return Ok(());
                };
                for i in 0..n {
                    self.fields(fields).map_err(|e| e.at(Seg::Index(i)))?;
                }
                Ok(())
            }
            // A nullable struct outside a tagged field (KIP-848's heartbeat
            // assignment): one marker byte, 1 for present; the decoder reads
            // anything else as null and nothing after it.
            Ty::Struct(fields) if nullable => {
                if self.byte()? == 1 {
                    self.fields(fields)?;
                }
                Ok(())
            }
            Ty::Struct(fields) => self.fields(fields),
            // fixed-size types returned above
            _ => Ok(()),
        }
    }

    /// Skims a struct: its fields present at this version, in order, then
    /// (in flexible versions) its tagged-field section.
    pub(crate) fn fields(&mut self, fields: &'static [Field]) -> Step {
        for f in fields {
            if f.tag.is_some() || !f.versions.contains(self.version) {
                continue;
            }
            let nullable = f.nullable.contains(self.version);
            self.value(&f.ty, nullable)
                .map_err(|e| e.at(Seg::Field(f.name)))?;
        }
        if self.flexible {
            self.tagged(fields)?;
        }
        Ok(())
    }

    /// Skims a tagged-field section: a count, then (tag, size, value)
    /// entries with strictly increasing tags. Known tags are walked by their
    /// type inside exactly their declared size; others are skipped.
    pub(crate) fn tagged(&mut self, fields: &'static [Field]) -> Step {
        let count = self.uvarint().map_err(|e| e.at(Seg::TaggedFields))?;
        let available = self.remaining();
        // each entry takes at least a one-byte tag and a one-byte size
        if u64::from(count) * 2 > available as u64 {
            return Err(Failure::new(Fault::CountPastEnd {
                declared: u64::from(count),
                available,
                min_element: 2,
            })
            .at(Seg::TaggedFields));
        }
        let mut previous: Option<u32> = None;
        for _ in 0..count {
            let tag = self.uvarint().map_err(|e| e.at(Seg::TaggedFields))?;
            let size = self.uvarint().map_err(|e| e.at(Seg::Tag(tag)))?;
            if let Some(previous) = previous.filter(|&p| tag <= p) {
                return Err(Failure::new(Fault::TagOutOfOrder { tag, previous }).at(Seg::Tag(tag)));
            }
            previous = Some(tag);
            let start = self.pos;
            let end = start.saturating_add(size as usize);
            match fields.iter().find(|f| f.tag == Some(tag)) {
                Some(f) if f.versions.contains(self.version) => {
                    let at = Seg::Field(f.name);
                    self.take(u64::from(size)).map_err(|e| e.at(at))?;
                    let mut inner = Walker {
                        buf: &self.buf[..end],
                        pos: start,
                        version: self.version,
                        flexible: self.flexible,
                    };
                    inner
                        .value(&f.ty, f.nullable.contains(self.version))
                        .map_err(|e| e.at(at))?;
                    if inner.pos != end {
                        return Err(Failure::new(Fault::TagSizeMismatch {
                            tag,
                            declared: size,
                            used: inner.pos - start,
                        })
                        .at(at));
                    }
                }
                Some(_) => {
                    return Err(Failure::new(Fault::TagNotInVersion(tag)).at(Seg::Tag(tag)));
                }
                None => self
                    .take(u64::from(size))
                    .map_err(|e| e.at(Seg::Tag(tag)))?,
            }
        }
        Ok(())
    }

    /// Skims a classic nullable string (the request header's client id,
    /// which stays classic even in flexible header versions).
    pub(crate) fn classic_nullable_string(&mut self) -> Step {
        let len = Self::classic_len(i32::from(self.int16()?))?;
        match len {
            Some(n) => self.take(n),
            None => Ok(()),
        }
    }
}
