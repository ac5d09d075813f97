//! The vocabulary of the wire schemas: field types, version ranges, fields
//! and messages, built by `const fn`s so every table is checked by the
//! compiler and costs nothing at run time.
//!
//! A table reads like the message specs of Kafka's protocol guide: a field
//! has a name, a type, the versions it is present in, the versions in which
//! it may be null, and, for a tagged field (KIP-482), its tag:
//!
//! ```text
//! f("TransactionalId", Str, "3+").null("3+")
//! f("CurrentLeader", Struct(&[..]), "10+").tag(0)
//! ```
//!
//! Whether a string, bytes or array uses the compact (varint) or the classic
//! (int16/int32) length is not a property of the field: it follows from the
//! message's flexible versions, which also decide where tagged-field
//! sections appear (at the end of every struct, the message included).

/// An inclusive range of versions, written as the message specs write them:
/// `"3+"`, `"0-7"`, `"2"`, or `"none"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Versions {
    pub(crate) min: i16,
    pub(crate) max: i16,
}

impl Versions {
    /// No version at all.
    pub(crate) const NONE: Versions = Versions { min: 1, max: 0 };

    /// Parses `"N+"`, `"N-M"`, `"N"` or `"none"`; a malformed spec fails the
    /// build (every call happens in a constant).
    pub(crate) const fn parse(spec: &str) -> Versions {
        let b = spec.as_bytes();
        if b.len() == 4 && b[0] == b'n' && b[1] == b'o' && b[2] == b'n' && b[3] == b'e' {
            return Versions::NONE;
        }
        let (min, mut i) = number(b, 0);
        if i == b.len() {
            return Versions { min, max: min };
        }
        if b[i] == b'+' && i + 1 == b.len() {
            return Versions { min, max: i16::MAX };
        }
        assert!(b[i] == b'-', "version spec: expected '+', '-' or the end");
        i += 1;
        let (max, end) = number(b, i);
        assert!(
            end == b.len() && max >= min,
            "version spec: bad upper bound"
        );
        Versions { min, max }
    }

    /// Whether `version` lies in the range.
    pub(crate) const fn contains(self, version: i16) -> bool {
        self.min <= version && version <= self.max
    }
}

/// Reads a decimal number at `b[i..]`; returns it and the index after it.
const fn number(b: &[u8], mut i: usize) -> (i16, usize) {
    let start = i;
    let mut n: i16 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        n = n * 10 + (b[i] - b'0') as i16;
        i += 1;
    }
    assert!(i > start, "version spec: expected a number");
    (n, i)
}

/// The type of a field on the wire.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ty {
    /// 1 byte.
    Int8,
    /// 2 bytes.
    Int16,
    /// 2 bytes, unsigned (no field of the client's APIs has it yet).
    #[cfg_attr(not(test), allow(dead_code))]
    Uint16,
    /// 4 bytes.
    Int32,
    /// 8 bytes.
    Int64,
    /// 8 bytes, IEEE 754 (no field of the client's APIs has it yet).
    #[cfg_attr(not(test), allow(dead_code))]
    Float64,
    /// 1 byte.
    Bool,
    /// 16 bytes.
    Uuid,
    /// UTF-8 text: int16 length (-1 = null), or in flexible versions an
    /// unsigned varint of length + 1 (0 = null).
    Str,
    /// Opaque bytes: int32 length (-1 = null), or compact as for strings.
    Bytes,
    /// A record set: laid out as bytes; its batches are checked by
    /// [`crate::record`] when they are read.
    Records,
    /// An array of a primitive type: int32 count (-1 = null), or compact
    /// (unsigned varint count + 1, 0 = null).
    Array(&'static Ty),
    /// An array of structs, counted as [`Ty::Array`].
    Structs(&'static [Field]),
    /// One struct (in our APIs only ever the value of a tagged field).
    Struct(&'static [Field]),
}

/// One field of a struct.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    /// The field's name in the message spec (used in error paths).
    pub(crate) name: &'static str,
    /// Its wire type.
    pub(crate) ty: Ty,
    /// The versions it is present in.
    pub(crate) versions: Versions,
    /// The versions in which it may be null (strings, bytes, arrays).
    pub(crate) nullable: Versions,
    /// Its tag, when it travels in the tagged-field section.
    pub(crate) tag: Option<u32>,
}

/// A field named `name` of type `ty`, present in `versions`.
pub(crate) const fn f(name: &'static str, ty: Ty, versions: &str) -> Field {
    Field {
        name,
        ty,
        versions: Versions::parse(versions),
        nullable: Versions::NONE,
        tag: None,
    }
}

impl Field {
    /// The field may be null in `versions`.
    pub(crate) const fn null(self, versions: &str) -> Field {
        Field {
            nullable: Versions::parse(versions),
            ..self
        }
    }

    /// The field is tagged with `tag` (in the versions it is present in).
    pub(crate) const fn tag(self, tag: u32) -> Field {
        Field {
            tag: Some(tag),
            ..self
        }
    }
}

/// A request or response body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Message {
    /// The versions in which the message is flexible (KIP-482).
    pub(crate) flexible: Versions,
    /// The top-level fields.
    pub(crate) fields: &'static [Field],
}

/// A message flexible in `flexible`, with `fields`.
pub(crate) const fn message(flexible: &str, fields: &'static [Field]) -> Message {
    Message {
        flexible: Versions::parse(flexible),
        fields,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_specs() {
        assert_eq!(
            Versions::parse("3+"),
            Versions {
                min: 3,
                max: i16::MAX
            }
        );
        assert_eq!(Versions::parse("0-7"), Versions { min: 0, max: 7 });
        assert_eq!(Versions::parse("12"), Versions { min: 12, max: 12 });
        assert_eq!(Versions::parse("none"), Versions::NONE);
        assert!(!Versions::NONE.contains(0) && !Versions::NONE.contains(1));
        assert!(Versions::parse("2-4").contains(4) && !Versions::parse("2-4").contains(5));
        assert!(!Versions::parse("2-4").contains(1));
    }
}
