//! The pattern a user of `exactly-testkit` follows to fuzz their own decoder
//! of record values: the fuzzer's bytes become a valid record batch through
//! the testkit's `Arbitrary` specs (any records, compression and producer
//! stamp), the codec encodes and decodes it, and every value goes to the
//! application's decoder, which may refuse a value but must never panic.
//! `decode_order` below stands in for that decoder.
#![no_main]

use exactly_codec::RecordBatch;
use exactly_testkit::strategies::BatchSpec;

/// A value as the application writes it: order id (u32), quantity (u16),
/// then the item name in UTF-8.
#[derive(Debug)]
#[allow(dead_code)]
struct Order<'a> {
    id: u32,
    quantity: u16,
    item: &'a str,
}

/// The application's decoder under test.
fn decode_order(value: Option<&[u8]>) -> Result<Order<'_>, &'static str> {
    let value = value.ok_or("a tombstone")?;
    let (id, rest) = value.split_first_chunk::<4>().ok_or("short id")?;
    let (quantity, item) = rest.split_first_chunk::<2>().ok_or("short quantity")?;
    Ok(Order {
        id: u32::from_be_bytes(*id),
        quantity: u16::from_be_bytes(*quantity),
        item: std::str::from_utf8(item).map_err(|_| "item not UTF-8")?,
    })
}

libfuzzer_sys::fuzz_target!(|spec: BatchSpec| {
    let Ok(bytes) = spec.encode() else { return };
    // A batch the testkit built decodes, every record of it.
    let batch = RecordBatch::decode(bytes).expect("a valid batch decodes");
    let mut seen = 0;
    for record in batch.records() {
        let record = record.expect("a record of a valid batch");
        let _ = decode_order(record.value());
        seen += 1;
    }
    assert_eq!(seen, spec.records.len());
});
