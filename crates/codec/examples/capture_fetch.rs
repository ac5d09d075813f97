//! Captures the raw record batches of a partition from a real broker, using
//! only this codec and `std::net` (no async runtime).
//!
//! ```text
//! cargo run -p exactly-codec --example capture_fetch -- 127.0.0.1:9092 TOPIC OUT.bin
//! ```
//!
//! Sends Fetch v12 (read_uncommitted, so aborted data and transaction markers
//! are included) for partition 0 from offset 0 until the high watermark, and
//! writes the concatenated `records` fields (whole batches only) to `OUT.bin`.

use std::io::{Read, Write};
use std::net::TcpStream;

use bytes::BytesMut;
use exactly_codec::messages::fetch_request::{FetchPartition, FetchTopic};
use exactly_codec::messages::{BrokerId, FetchRequest, TopicName};
use exactly_codec::protocol::StrBytes;
use exactly_codec::{decode_response, encode_request, Batches, FrameDecoder};

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let [_, addr, topic, out] = args.as_slice() else {
        return Err("usage: capture_fetch ADDR TOPIC OUT".into());
    };
    let mut conn = TcpStream::connect(addr.as_str())?;
    let frames = FrameDecoder::default();
    let mut captured = Vec::new();
    let mut offset = 0i64;
    for correlation_id in 1.. {
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(100)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_isolation_level(0)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(1 << 20)])]);
        let mut wire = BytesMut::new();
        encode_request(&mut wire, correlation_id, Some("capture"), 12, &req)?;
        conn.write_all(&wire)?;
        let mut inbuf = BytesMut::new();
        let frame = loop {
            if let Some(f) = frames.decode(&mut inbuf)? {
                break f;
            }
            let mut chunk = [0u8; 65536];
            let n = conn.read(&mut chunk)?;
            if n == 0 {
                return Err("connection closed".into());
            }
            inbuf.extend_from_slice(&chunk[..n]);
        };
        let (cid, resp) = decode_response::<FetchRequest>(frame, 12)?;
        assert_eq!(cid, correlation_id);
        let part = &resp.responses[0].partitions[0];
        if part.error_code != 0 {
            return Err(format!("fetch error code {}", part.error_code).into());
        }
        let records = part.records.clone().unwrap_or_default();
        let mut whole = 0;
        for batch in Batches::new(records.clone()) {
            let batch = batch?;
            whole += batch.raw().len();
            offset = batch.header().next_offset();
        }
        captured.extend_from_slice(&records[..whole]);
        eprintln!(
            "fetched {whole} bytes, next offset {offset}, high watermark {}",
            part.high_watermark
        );
        if offset >= part.high_watermark {
            break;
        }
        if whole == 0 {
            return Err("no whole batch in a fetch below the high watermark".into());
        }
    }
    std::fs::write(out, &captured)?;
    eprintln!("wrote {} bytes to {out}", captured.len());
    Ok(())
}
