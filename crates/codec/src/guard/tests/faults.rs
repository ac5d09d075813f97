//! Hand-made hostile inputs: each fault, with the path it is reported at.

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::ApiKey;

use super::frame;
use super::generate::put_uvarint;
use crate::guard::schema::{f, message, Message, Ty};
use crate::guard::{check_response, Direction, Fault};
use crate::{decode_request, CodecError};

fn malformed(r: Result<(), CodecError>) -> (String, Fault) {
    match r {
        Err(e) => match e.malformed() {
            Some(m) => (m.path.clone(), m.fault.clone()),
            None => panic!("expected the guard's verdict, got {e:?}"),
        },
        Ok(_) => panic!("expected the guard's verdict, got Ok"),
    }
}

/// Metadata v12 response (flexible) with `body` after the header.
fn metadata_v12(body: &[u8]) -> Result<(), CodecError> {
    check_response(
        ApiKey::Metadata,
        12,
        &frame(ApiKey::Metadata, 12, Direction::Response, body),
    )
}

#[test]
fn array_count_beyond_the_bytes() {
    // throttle, then a broker count of 2^28 in four varint bytes
    let (path, fault) = malformed(metadata_v12(&[
        0, 0, 0, 0, 0x81, 0x80, 0x80, 0x80, 0x01, 0, 0,
    ]));
    assert_eq!(path, "Brokers");
    assert_eq!(
        fault,
        Fault::CountPastEnd {
            declared: (1 << 28),
            available: 2,
            min_element: 4 + 1 + 4 + 1 + 1, // id, host, port, rack, tags
        }
    );
}

#[test]
fn deep_paths_name_the_element() {
    // Metadata v12: no brokers, null cluster id, controller, one topic whose
    // partition 0 declares 1000 replica nodes
    let mut b = BytesMut::new();
    b.put_i32(0);
    b.put_u8(1); // brokers: empty
    b.put_u8(0); // cluster id: null
    b.put_i32(1);
    b.put_u8(2); // topics: one
    b.put_i16(0);
    b.put_u8(2);
    b.put_slice(b"t");
    b.put_slice(&[0; 16]);
    b.put_u8(0); // not internal
    b.put_u8(2); // partitions: one
    b.put_i16(0);
    b.put_i32(0);
    b.put_i32(1);
    b.put_i32(0);
    put_uvarint(&mut b, 1001); // replica nodes: 1000
    b.put_i32(1);
    let (path, fault) = malformed(metadata_v12(&b));
    assert_eq!(path, "Topics[0].Partitions[0].ReplicaNodes");
    assert_eq!(
        fault,
        Fault::CountPastEnd {
            declared: 1000,
            available: 4,
            min_element: 4
        }
    );
}

#[test]
fn null_only_where_the_spec_allows() {
    // Metadata v12 brokers: null is not allowed
    let (path, fault) = malformed(metadata_v12(&[0, 0, 0, 0, 0]));
    assert_eq!((path.as_str(), fault), ("Brokers", Fault::UnexpectedNull));
    // FindCoordinator v2 host: -1 not allowed, -2 never
    for (len, fault) in [(-1, Fault::UnexpectedNull), (-2, Fault::NegativeLength(-2))] {
        let mut b = BytesMut::new();
        b.put_i32(0);
        b.put_i16(0);
        b.put_i16(-1); // error message: null is fine
        b.put_i32(1);
        b.put_i16(len);
        b.put_i32(9092);
        let r = check_response(
            ApiKey::FindCoordinator,
            2,
            &frame(ApiKey::FindCoordinator, 2, Direction::Response, &b),
        );
        assert_eq!(malformed(r), ("Host".to_owned(), fault));
    }
}

/// EndTxn v5 response (flexible) ending in `tail` (the tagged section).
fn end_txn_v5(tail: &[u8]) -> Result<(), CodecError> {
    let mut b = BytesMut::new();
    b.put_i32(0);
    b.put_i16(0);
    b.put_i64(42);
    b.put_i16(1);
    b.put_slice(tail);
    check_response(
        ApiKey::EndTxn,
        5,
        &frame(ApiKey::EndTxn, 5, Direction::Response, &b),
    )
}

#[test]
fn varints() {
    assert_eq!(
        malformed(end_txn_v5(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00])),
        ("<tagged fields>".to_owned(), Fault::VarintTooLong)
    );
    assert_eq!(
        malformed(end_txn_v5(&[0x80, 0x80, 0x80, 0x80, 0x10])),
        ("<tagged fields>".to_owned(), Fault::VarintOverflow)
    );
    // the largest five-byte value is fine as a varint (then too many tags)
    assert!(matches!(
        malformed(end_txn_v5(&[0xff, 0xff, 0xff, 0xff, 0x0f])).1,
        Fault::CountPastEnd { .. }
    ));
    // a padded (non-minimal) zero is still zero, as the decoder reads it
    assert_eq!(end_txn_v5(&[0x80, 0x00]), Ok(()));
}

#[test]
fn tagged_fields() {
    // in order: fine, and unknown tags are skipped
    assert_eq!(end_txn_v5(&[2, 3, 1, 0xaa, 7, 0]), Ok(()));
    // duplicates and disorder
    assert_eq!(
        malformed(end_txn_v5(&[2, 3, 0, 3, 0])),
        (
            "<tag 3>".to_owned(),
            Fault::TagOutOfOrder {
                tag: 3,
                previous: 3
            }
        )
    );
    assert_eq!(
        malformed(end_txn_v5(&[2, 5, 0, 4, 0])),
        (
            "<tag 4>".to_owned(),
            Fault::TagOutOfOrder {
                tag: 4,
                previous: 5
            }
        )
    );
    // a huge size
    assert_eq!(
        malformed(end_txn_v5(&[1, 9, 0xff, 0xff, 0xff, 0xff, 0x07, 1, 2, 3])),
        (
            "<tag 9>".to_owned(),
            Fault::LengthPastEnd {
                declared: i32::MAX as u64,
                available: 3
            }
        )
    );
    // more tags than bytes
    assert!(matches!(
        malformed(end_txn_v5(&[100, 0, 0])).1,
        Fault::CountPastEnd {
            declared: 100,
            available: 2,
            min_element: 2
        }
    ));
}

/// ApiVersions v3 response with no api keys and `tags` as its tagged section.
fn api_versions_v3(tags: &[u8]) -> Result<(), CodecError> {
    let mut b = BytesMut::new();
    b.put_i16(0);
    b.put_u8(1);
    b.put_i32(0);
    b.put_slice(tags);
    check_response(
        ApiKey::ApiVersions,
        3,
        &frame(ApiKey::ApiVersions, 3, Direction::Response, &b),
    )
}

#[test]
fn known_tags_are_walked_by_type() {
    // SupportedFeatures (tag 0) of five bytes, holding a count of 2^32-2:
    // the decoder reads known tags by type, so this must not pass as five
    // opaque bytes
    let (path, fault) = malformed(api_versions_v3(&[1, 0, 5, 0xff, 0xff, 0xff, 0xff, 0x0f]));
    assert_eq!(path, "SupportedFeatures");
    assert!(matches!(
        fault,
        Fault::CountPastEnd {
            declared: 0xffff_fffe,
            available: 0,
            ..
        }
    ));
    // a value shorter than its declared size
    assert_eq!(
        malformed(api_versions_v3(&[1, 3, 2, 1, 0])),
        (
            "ZkMigrationReady".to_owned(),
            Fault::TagSizeMismatch {
                tag: 3,
                declared: 2,
                used: 1
            }
        )
    );
    // FinalizedFeaturesEpoch (tag 1) is an int64: 8 bytes, not 4
    assert!(matches!(
        malformed(api_versions_v3(&[1, 1, 4, 0, 0, 0, 1])).1,
        Fault::LengthPastEnd {
            declared: 8,
            available: 4
        }
    ));
    // well-formed: epoch 7 and zk flag
    assert_eq!(
        api_versions_v3(&[2, 1, 8, 0, 0, 0, 0, 0, 0, 0, 7, 3, 1, 1]),
        Ok(())
    );
}

#[test]
fn known_tag_outside_its_versions() {
    // Produce v9 is flexible, but CurrentLeader (tag 0) exists from v10
    let mut b = BytesMut::new();
    b.put_u8(2); // one topic
    b.put_u8(2);
    b.put_slice(b"t");
    b.put_u8(2); // one partition
    b.put_i32(0);
    b.put_i16(0);
    b.put_i64(0);
    b.put_i64(0);
    b.put_i64(0);
    b.put_u8(1); // no record errors
    b.put_u8(0); // null error message
    b.put_slice(&[1, 0, 9, 0, 0, 0, 1, 0, 0, 0, 2, 0]); // tag 0: leader 1, epoch 2
    b.put_u8(0); // topic tags
    b.put_i32(0); // throttle
    b.put_u8(0);
    let r = check_response(
        ApiKey::Produce,
        9,
        &frame(ApiKey::Produce, 9, Direction::Response, &b),
    );
    assert_eq!(
        malformed(r),
        (
            "Responses[0].PartitionResponses[0].<tag 0>".to_owned(),
            Fault::TagNotInVersion(0)
        )
    );
    // the same bytes at v10 are a leader hint
    let r = check_response(
        ApiKey::Produce,
        10,
        &frame(ApiKey::Produce, 10, Direction::Response, &b),
    );
    assert_eq!(r, Ok(()));
}

#[test]
fn request_header_faults() {
    // client id longer than the frame
    let mut b = BytesMut::new();
    b.put_i16(ApiKey::EndTxn as i16);
    b.put_i16(3);
    b.put_i32(1);
    b.put_i16(300);
    b.put_slice(b"abc");
    let e = decode_request(b.freeze()).unwrap_err();
    assert_eq!(
        e.malformed(),
        Some(&crate::guard::Malformed {
            direction: Direction::Request,
            path: "header.ClientId".to_owned(),
            fault: Fault::LengthPastEnd {
                declared: 300,
                available: 3
            },
        })
    );
    assert_eq!(
        e.to_string(),
        "cannot decode EndTxn v3: Request at header.ClientId: declares 300 bytes, 3 available"
    );
}

#[test]
fn primitive_widths_of_the_dsl() {
    // types no client API uses yet still have their widths
    const M: Message = message(
        "none",
        &[
            f("Port", Ty::Uint16, "0+"),
            f("Ratio", Ty::Float64, "0+"),
            f("Ports", Ty::Array(&Ty::Uint16), "0+"),
        ],
    );
    let mut ok = BytesMut::new();
    ok.put_u16(9092);
    ok.put_f64(0.5);
    ok.put_i32(2);
    ok.put_u16(1);
    ok.put_u16(2);
    let mut w = crate::guard::walk::Walker::new(&ok, 0, false);
    assert!(w.fields(M.fields).is_ok());
    assert_eq!(w.position(), ok.len());
    let mut w = crate::guard::walk::Walker::new(&ok[..ok.len() - 1], 0, false);
    let e = w.fields(M.fields).unwrap_err();
    assert_eq!(e.path(), "Ports");
    assert_eq!(
        e.fault,
        Fault::CountPastEnd {
            declared: 2,
            available: 3,
            min_element: 2
        }
    );
}
