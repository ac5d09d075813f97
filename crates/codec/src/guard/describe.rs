//! A read-only, flattened view of the guard's schemas, for one test only:
//! `protocol-tests/tests/guard_specs.rs`, which compares every table with
//! the message specs shipped in the Kafka jar the broker harness downloads.
//!
//! Cold and allocating on purpose; nothing on a message path calls it.

use std::ops::RangeInclusive;

use kafka_protocol::messages::ApiKey;

use super::schema::{Field, Ty};
use super::{tables, Direction};

/// One message of one API at one version, as the guard walks it.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageShape {
    /// Whether the version is flexible (KIP-482).
    pub flexible: bool,
    /// Every field present at the version, depth first in wire order
    /// (a struct's fields follow the struct's own entry).
    pub fields: Vec<FieldShape>,
}

/// One field of a message at one version.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldShape {
    /// Spec names from the message down, joined by dots:
    /// `Topics.Partitions.Records`.
    pub path: String,
    /// The wire type in the specs' words: `int8`, `int16`, `uint16`, `int32`,
    /// `int64`, `float64`, `bool`, `uuid`, `string`, `bytes`, `records`,
    /// `[]<primitive>`, `[]struct` or `struct`.
    pub ty: String,
    /// Whether the field may be null at this version.
    pub nullable: bool,
    /// Its tag, if it is a tagged field at this version.
    pub tag: Option<u32>,
}

/// Every API the guard has schemas for, with the versions each direction
/// covers. For the spec cross-check test only.
#[doc(hidden)]
pub fn described() -> Vec<(ApiKey, Direction, RangeInclusive<i16>)> {
    let mut out = Vec::new();
    for api in tables::SCHEMAS {
        for (direction, (versions, _)) in [
            (Direction::Request, &api.request),
            (Direction::Response, &api.response),
        ] {
            out.push((api.key, direction, versions.min..=versions.max));
        }
    }
    out
}

/// The guard's schema of `api` at `version` in `direction`, flattened; `None`
/// where the guard has none. For the spec cross-check test only.
#[doc(hidden)]
pub fn describe(api: ApiKey, version: i16, direction: Direction) -> Option<MessageShape> {
    let message = tables::lookup(api, version, direction)?;
    let mut fields = Vec::new();
    flatten(message.fields, version, "", &mut fields);
    Some(MessageShape {
        flexible: message.flexible.contains(version),
        fields,
    })
}

fn flatten(fields: &[Field], version: i16, prefix: &str, out: &mut Vec<FieldShape>) {
    for field in fields.iter().filter(|f| f.versions.contains(version)) {
        let path = format!("{prefix}{}", field.name);
        out.push(FieldShape {
            path: path.clone(),
            ty: type_name(&field.ty),
            nullable: field.nullable.contains(version),
            tag: field.tag,
        });
        if let Ty::Structs(inner) | Ty::Struct(inner) = field.ty {
            flatten(inner, version, &format!("{path}."), out);
        }
    }
}

fn type_name(ty: &Ty) -> String {
    match ty {
        Ty::Int8 => "int8".into(),
        Ty::Int16 => "int16".into(),
        Ty::Uint16 => "uint16".into(),
        Ty::Int32 => "int32".into(),
        Ty::Int64 => "int64".into(),
        Ty::Float64 => "float64".into(),
        Ty::Bool => "bool".into(),
        Ty::Uuid => "uuid".into(),
        Ty::Str => "string".into(),
        Ty::Bytes => "bytes".into(),
        Ty::Records => "records".into(),
        Ty::Array(element) => format!("[]{}", type_name(element)),
        Ty::Structs(_) => "[]struct".into(),
        Ty::Struct(_) => "struct".into(),
    }
}
