//! The inputs in `fuzz/regressions/kafka-protocol-oom/` once made
//! `kafka-protocol` 0.18 reserve tens of gigabytes (an array count read from
//! the wire, reserved before any element was read) and abort the process.
//! Through our decoders they are now typed errors from the wire guard,
//! raised before `kafka-protocol` sees the bytes.
//!
//! The files are in the fuzz targets' input formats: `response-*` is byte 0
//! = index into `CLIENT_APIS`, byte 1 = version offset in its range, then
//! the response frame; `request-*` is a request frame.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use bytes::Bytes;
use exactly_codec::guard::Fault;
use exactly_codec::messages::ApiKey;
use exactly_codec::{decode_request, decode_response_kind, CodecError, CLIENT_APIS};

fn decode_fuzz_input(name: &str, data: &[u8]) -> Result<ApiKey, CodecError> {
    if name.starts_with("response-") {
        let [a, v, frame @ ..] = data else {
            panic!("{name}: too short")
        };
        let (api, range) = CLIENT_APIS[usize::from(*a) % CLIENT_APIS.len()];
        let span = (range.max - range.min + 1) as u8;
        let version = range.min + i16::from(*v % span);
        decode_response_kind(api, version, Bytes::copy_from_slice(frame)).map(|_| api)
    } else {
        decode_request(Bytes::copy_from_slice(data))
            .map(|(h, _)| ApiKey::try_from(h.request_api_key).unwrap())
    }
}

#[test]
fn every_oom_reproducer_is_a_typed_error() {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/kafka-protocol-oom");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let data = std::fs::read(&path).unwrap();
        let r = decode_fuzz_input(&name, &data);
        // Both declare an array count the frame cannot back: the request
        // plainly (int32 count), the response as a varint whose fifth byte
        // still continues (kafka-protocol would have read ~2^34 brokers).
        let e = r.unwrap_err();
        let CodecError::Decode { api, version, .. } = e else {
            panic!("{name}: not a decode error: {e:?}")
        };
        let m = e
            .malformed()
            .unwrap_or_else(|| panic!("{name}: not the guard: {e:?}"));
        match name.as_str() {
            "request-fetch-v4" => {
                assert_eq!(
                    (api, version, m.path.as_str()),
                    (ApiKey::Fetch, 4, "Topics")
                );
                assert!(
                    matches!(m.fault, Fault::CountPastEnd { declared, available, .. }
                        if declared > available as u64),
                    "{m:?}"
                );
            }
            "response-metadata-v12-broker-array" => {
                assert_eq!(
                    (api, version, m.path.as_str()),
                    (ApiKey::Metadata, 12, "Brokers")
                );
                assert_eq!(m.fault, Fault::VarintTooLong);
            }
            _ => panic!("{name}: unexpected file"),
        }
        seen.push((name, e.to_string()));
    }
    seen.sort();
    let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["request-fetch-v4", "response-metadata-v12-broker-array"],
        "{seen:#?}"
    );
    // the messages name the API, the version and the field
    assert!(
        seen[0].1.contains("Fetch v4: Request at Topics:"),
        "{}",
        seen[0].1
    );
    assert!(
        seen[1].1.contains("Metadata v12: Response at Brokers"),
        "{}",
        seen[1].1
    );
}
