//! A generator of random, well-formed message bodies driven by our schemas.

use bytes::{BufMut, Bytes, BytesMut};

use crate::guard::schema::{Field, Message, Ty};

/// xorshift64*: deterministic, dependency-free.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

/// Writes random well-formed values of a schema.
struct Gen<'r> {
    rng: &'r mut Rng,
    version: i16,
    flexible: bool,
    /// Empty strings and bytes, no tagged fields, arrays of two minimal
    /// elements: every array is as small as it can be.
    minimal: bool,
    /// Whether a known tagged field was written.
    known_tags: bool,
    depth: u32,
}

const TEXT: &[&str] = &["", "a", "topic-1", "é", "ünï", "日本", "x.y_z", "🦀"];

pub(super) fn put_uvarint(out: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

impl Gen<'_> {
    fn length(&mut self, out: &mut BytesMut, len: Option<usize>, classic16: bool) {
        match (self.flexible, len) {
            (true, None) => out.put_u8(0),
            (true, Some(n)) => put_uvarint(out, n as u32 + 1),
            (false, None) if classic16 => out.put_i16(-1),
            (false, None) => out.put_i32(-1),
            (false, Some(n)) if classic16 => out.put_i16(n as i16),
            (false, Some(n)) => out.put_i32(n as i32),
        }
    }

    fn is_null(&mut self, nullable: bool) -> bool {
        nullable && !self.minimal && self.rng.one_in(4)
    }

    fn count(&mut self) -> usize {
        if self.minimal {
            2
        } else if self.depth > 3 {
            self.rng.below(2) as usize
        } else {
            self.rng.below(4) as usize
        }
    }

    fn value(&mut self, ty: &Ty, nullable: bool, out: &mut BytesMut) {
        let r = self.rng.next();
        match ty {
            Ty::Int8 => out.put_i8(r as i8),
            Ty::Bool => out.put_u8((r & 1) as u8),
            Ty::Int16 | Ty::Uint16 => out.put_u16(r as u16),
            Ty::Int32 => out.put_u32(r as u32),
            Ty::Int64 | Ty::Float64 => out.put_u64(r),
            Ty::Uuid => {
                out.put_u64(r);
                out.put_u64(self.rng.next());
            }
            Ty::Str => {
                if self.is_null(nullable) {
                    return self.length(out, None, true);
                }
                let s = if self.minimal {
                    ""
                } else {
                    TEXT[self.rng.below(TEXT.len() as u64) as usize]
                };
                self.length(out, Some(s.len()), true);
                out.put_slice(s.as_bytes());
            }
            Ty::Bytes | Ty::Records => {
                if self.is_null(nullable) {
                    return self.length(out, None, false);
                }
                let n = if self.minimal {
                    0
                } else {
                    self.rng.below(40) as usize
                };
                self.length(out, Some(n), false);
                for _ in 0..n {
                    out.put_u8(self.rng.next() as u8);
                }
            }
            Ty::Array(elem) => {
                if self.is_null(nullable) {
                    return self.length(out, None, false);
                }
                let n = self.count();
                self.length(out, Some(n), false);
                for _ in 0..n {
                    self.value(elem, false, out);
                }
            }
            Ty::Structs(fields) => {
                if self.is_null(nullable) {
                    return self.length(out, None, false);
                }
                let n = self.count();
                self.length(out, Some(n), false);
                self.depth += 1;
                for _ in 0..n {
                    self.fields(fields, out);
                }
                self.depth -= 1;
            }
            Ty::Struct(fields) if nullable => {
                if self.is_null(true) {
                    out.put_i8(-1);
                } else {
                    out.put_i8(1);
                    self.depth += 1;
                    self.fields(fields, out);
                    self.depth -= 1;
                }
            }
            Ty::Struct(fields) => self.fields(fields, out),
        }
    }

    fn fields(&mut self, fields: &'static [Field], out: &mut BytesMut) {
        for fld in fields {
            if fld.tag.is_none() && fld.versions.contains(self.version) {
                self.value(&fld.ty, fld.nullable.contains(self.version), out);
            }
        }
        if self.flexible {
            self.tags(fields, out);
        }
    }

    fn tags(&mut self, fields: &'static [Field], out: &mut BytesMut) {
        let mut entries: Vec<(u32, BytesMut)> = Vec::new();
        if !self.minimal {
            for fld in fields {
                let Some(tag) = fld.tag else { continue };
                if fld.versions.contains(self.version) && self.rng.one_in(2) {
                    let mut v = BytesMut::new();
                    self.value(&fld.ty, fld.nullable.contains(self.version), &mut v);
                    entries.push((tag, v));
                    self.known_tags = true;
                }
            }
            // unknown tags above every tag the schema knows
            let first_free = fields
                .iter()
                .filter_map(|f| f.tag)
                .max()
                .map_or(0, |t| t + 1);
            if self.rng.one_in(3) {
                let tag = first_free + self.rng.below(200) as u32;
                let n = self.rng.below(6) as usize;
                let v: Vec<u8> = (0..n).map(|_| self.rng.next() as u8).collect();
                entries.push((tag, BytesMut::from(&v[..])));
            }
        }
        put_uvarint(out, entries.len() as u32);
        for (tag, v) in entries {
            put_uvarint(out, tag);
            put_uvarint(out, v.len() as u32);
            out.put_slice(&v);
        }
    }
}

pub(super) fn generate(msg: &Message, version: i16, rng: &mut Rng, minimal: bool) -> (Bytes, bool) {
    let mut g = Gen {
        rng,
        version,
        flexible: msg.flexible.contains(version),
        minimal,
        known_tags: false,
        depth: 0,
    };
    let mut out = BytesMut::new();
    g.fields(msg.fields, &mut out);
    (out.freeze(), g.known_tags)
}
