//! Heap allocations of the codec's hot paths, counted by a measuring global
//! allocator (this package, unlike the library crates, may hold the unsafe
//! `GlobalAlloc` impl). Counting is per thread, so parallel tests do not
//! disturb each other.
//!
//! - PERFORMANCE.md goal: <= 0.01 allocations per record to encode, and to
//!   decode, a 1,000-record batch.
//! - RELIABILITY.md: hostile lengths never size an allocation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::{Bytes, BytesMut};
use exactly_codec::compression::{decompress, Compression};
use exactly_codec::record::DecodeOptions;
use exactly_codec::{BatchBuilder, Batches, FrameDecoder, ProducerStamp, RecordBatch};

struct Measuring;

thread_local! {
    static COUNT: Cell<usize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // try_with: the thread-local may be gone while a thread shuts down
    let _ = COUNT.try_with(|c| c.set(c.get() + 1));
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

unsafe impl GlobalAlloc for Measuring {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Measuring = Measuring;

/// (allocations, largest single allocation) made by `f` on this thread.
fn measure<T>(f: impl FnOnce() -> T) -> (usize, usize, T) {
    COUNT.with(|c| c.set(0));
    LARGEST.with(|l| l.set(0));
    let out = f();
    (COUNT.with(Cell::get), LARGEST.with(Cell::get), out)
}

const N: usize = 1000;

fn stamp() -> ProducerStamp {
    ProducerStamp {
        producer_id: 1,
        producer_epoch: 0,
        base_sequence: 0,
        transactional: true,
    }
}

#[test]
fn encode_allocations_per_record() {
    let key = [7u8; 12];
    let value = [1u8; 100];
    for codec in [Compression::None, Compression::Lz4] {
        let (allocs, _, bytes) = measure(|| {
            let mut b = BatchBuilder::with_capacity(codec, N * 130);
            for i in 0..N {
                b.append(1_700_000_000_000 + i as i64, Some(&key), Some(&value), &[])
                    .unwrap();
            }
            let mut closed = b.close().unwrap();
            closed.stamp(stamp())
        });
        let per_record = allocs as f64 / N as f64;
        println!("encode {codec}: {allocs} allocations for {N} records ({per_record} per record)");
        if codec == Compression::None {
            assert!(
                per_record <= 0.01,
                "{codec}: {per_record} allocations per record"
            );
        }
        assert!(RecordBatch::decode(bytes).is_ok());
    }
}

/// A producer with `linger.ms=0` and keyed traffic sends many one-record
/// batches: each costs its buffer and one shared handle for the bytes that
/// are both sent and kept for a retry (`Bytes` needs that handle to be
/// cloned), and nothing else: no default-sized buffer, no second handle
/// from the stamp.
#[test]
fn single_record_batch_allocations() {
    let key = [7u8; 12];
    for size in [10usize, 100, 1000] {
        let value = vec![1u8; size];
        for (how, capacity) in [("new", None), ("with_capacity", Some(size + 16))] {
            let (allocs, largest, bytes) = measure(|| {
                let mut b = match capacity {
                    None => BatchBuilder::new(Compression::None),
                    Some(c) => BatchBuilder::with_capacity(Compression::None, c),
                };
                b.append(1_700_000_000_000, Some(&key), Some(&value), &[])
                    .unwrap();
                let mut closed = b.close().unwrap();
                let sent = closed.stamp(stamp());
                // a plain retry resends the same bytes: no allocation
                let again = closed.stamp(stamp());
                assert_eq!(sent.as_ptr(), again.as_ptr());
                sent
            });
            println!("{how}, 1 record of {size} B: {allocs} allocations, largest {largest} B");
            assert_eq!(allocs, 2, "{how}, {size} B");
            assert!(
                largest <= 61 + 12 + size + 64,
                "{how}, {size} B: {largest} B buffer"
            );
            let d = RecordBatch::decode(bytes).unwrap();
            assert_eq!(d.header().record_count, 1);
        }
    }
}

#[test]
fn decode_allocations_per_record() {
    let key = [7u8; 12];
    let value = [1u8; 100];
    let mut b = BatchBuilder::new(Compression::None);
    for i in 0..N {
        b.append(i as i64, Some(&key), Some(&value), &[]).unwrap();
    }
    let bytes = b.close().unwrap().stamp(stamp());
    let (allocs, _, sum) = measure(|| {
        let mut sum = 0usize;
        for batch in Batches::new(bytes.clone()) {
            let batch = batch.unwrap();
            for r in batch.records() {
                let r = r.unwrap();
                sum += r.key().unwrap().len() + r.value().unwrap().len();
                // owned zero-copy slices: refcount bumps, no allocation
                let _v = r.value_bytes();
                for h in r.headers() {
                    h.unwrap();
                }
            }
        }
        sum
    });
    assert_eq!(sum, N * 112);
    let per_record = allocs as f64 / N as f64;
    println!("decode: {allocs} allocations for {N} records ({per_record} per record)");
    assert!(per_record <= 0.01, "{per_record} allocations per record");
}

/// Hostile inputs: the largest allocation made while rejecting each is small
/// and unrelated to the length the input declares.
#[test]
fn hostile_lengths_never_size_an_allocation() {
    const BOUND: usize = 64 * 1024;

    // a frame declaring 1.1 GB ("GET " read as a size)
    let (_, largest, r) = measure(|| {
        let mut b = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
        FrameDecoder::default().decode(&mut b)
    });
    assert!(r.is_err());
    assert!(largest <= BOUND, "frame: {largest}");

    // a batch declaring i32::MAX bytes and a record count of i32::MAX
    let mut b = BatchBuilder::new(Compression::None);
    b.append(0, None, Some(b"v"), &[]).unwrap();
    let good = b.close().unwrap().stamp(stamp()).to_vec();
    let mut huge_len = good.clone();
    huge_len[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    let mut huge_count = good.clone();
    huge_count[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
    let crc = crc(&huge_count[21..]);
    huge_count[17..21].copy_from_slice(&crc.to_be_bytes());
    for (what, bytes) in [("length", huge_len), ("count", huge_count)] {
        let bytes = Bytes::from(bytes);
        let (_, largest, r) = measure(|| RecordBatch::decode(bytes.clone()).map(|_| ()));
        assert!(r.is_err(), "{what}");
        assert!(largest <= BOUND, "{what}: {largest}");
        let (_, largest, n) = measure(|| Batches::new(bytes.clone()).count());
        assert!(n <= 1 && largest <= BOUND, "{what} in a set: {largest}");
    }

    // snappy declaring 1 GiB in 6 bytes, raw and xerial-framed
    let lie = [0x80u8, 0x80, 0x80, 0x80, 0x04, 0x00];
    let mut framed = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x06".to_vec();
    framed.extend_from_slice(&lie);
    for input in [&lie[..], &framed[..]] {
        let (_, largest, r) = measure(|| decompress(Compression::Snappy, input, usize::MAX));
        assert!(r.is_err());
        assert!(largest <= BOUND, "snappy: {largest}");
    }

    // zstd frame asking for a 2 TiB window, and one declaring a 1 TiB content size
    let window = [0x28u8, 0xb5, 0x2f, 0xfd, 0x00, 0xf8, 0, 0, 0];
    let content = [
        0x28u8, 0xb5, 0x2f, 0xfd, 0xe0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0,
    ];
    for input in [&window[..], &content[..]] {
        let (_, largest, r) = measure(|| decompress(Compression::Zstd, input, 1 << 20));
        assert!(r.is_err());
        assert!(largest <= BOUND, "zstd: {largest}");
    }

    // a gzip bomb: 4 MiB of zeros against a 1 MiB cap
    let mut b = BatchBuilder::new(Compression::Gzip);
    b.append(0, None, Some(&vec![0u8; 4 << 20]), &[]).unwrap();
    let bomb = b.close().unwrap().stamp(stamp());
    let opts = DecodeOptions {
        max_decompressed_size: 1 << 20,
        ..DecodeOptions::default()
    };
    let (_, largest, r) = measure(|| RecordBatch::decode_with(bomb.clone(), &opts).map(|_| ()));
    assert!(r.is_err());
    assert!(largest <= 2 << 20, "gzip bomb: {largest}");
}

/// Messages declaring huge arrays (the `kafka-protocol` OOM reproducers and
/// hand-made ones) are rejected by the wire guard with small allocations;
/// the guard itself allocates nothing on a valid message.
#[test]
fn hostile_message_counts_never_size_an_allocation() {
    use exactly_codec::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use exactly_codec::messages::{ApiKey, FetchResponse, ResponseKind};
    use exactly_codec::{
        decode_request, decode_response_kind, encode_response, guard, CLIENT_APIS,
    };
    const BOUND: usize = 64 * 1024;

    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fuzz/regressions/kafka-protocol-oom"
    );
    let request = std::fs::read(format!("{dir}/request-fetch-v4")).unwrap();
    let (_, largest, r) = measure(|| decode_request(Bytes::from(request.clone())).map(|_| ()));
    assert!(r.is_err());
    assert!(largest <= BOUND, "request reproducer: {largest}");
    // response reproducer: byte 0 picks the API, byte 1 the version (fuzz hook format)
    let response = std::fs::read(format!("{dir}/response-metadata-v12-broker-array")).unwrap();
    let (api, range) = CLIENT_APIS[usize::from(response[0]) % CLIENT_APIS.len()];
    let version = range.min + i16::from(response[1]) % (range.max - range.min + 1);
    let frame = Bytes::copy_from_slice(&response[2..]);
    let (_, largest, r) = measure(|| decode_response_kind(api, version, frame.clone()).map(|_| ()));
    assert!(r.is_err());
    assert!(largest <= BOUND, "response reproducer: {largest}");

    // Fetch v4 response: one topic whose partition array declares i32::MAX
    let mut b = BytesMut::new();
    b.extend_from_slice(&7i32.to_be_bytes()); // correlation id
    b.extend_from_slice(&0i32.to_be_bytes()); // throttle
    b.extend_from_slice(&1i32.to_be_bytes()); // one topic
    b.extend_from_slice(&1i16.to_be_bytes());
    b.extend_from_slice(b"t");
    b.extend_from_slice(&i32::MAX.to_be_bytes());
    b.extend_from_slice(&[0; 64]);
    let (_, largest, r) = measure(|| decode_response_kind(ApiKey::Fetch, 4, b.clone().freeze()));
    assert!(r.is_err());
    assert!(largest <= BOUND, "fetch partitions: {largest}");

    // and a valid Fetch v12 response: the guard allocates nothing at all
    let resp = FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
        .with_partitions(
            (0..100)
                .map(|i| PartitionData::default().with_partition_index(i))
                .collect(),
        )]);
    let mut wire = BytesMut::new();
    encode_response(&mut wire, ApiKey::Fetch, 1, 12, &ResponseKind::Fetch(resp)).unwrap();
    let frame = FrameDecoder::default().decode(&mut wire).unwrap().unwrap();
    let (allocs, _, r) = measure(|| guard::check_response(ApiKey::Fetch, 12, &frame));
    assert_eq!(r, Ok(()));
    assert_eq!(allocs, 0);
}

fn crc(b: &[u8]) -> u32 {
    // CRC-32C, bitwise (the test avoids depending on the crc crate)
    let mut c = !0u32;
    for &x in b {
        c ^= u32::from(x);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82f6_3b78
            } else {
                c >> 1
            };
        }
    }
    !c
}
