//! The producer's bookkeeping per buffered record (PERFORMANCE.md goal:
//! <= 64 B beyond its encoded bytes), and its allocations per record on the
//! `send` path, measured by a counting global allocator on the sending
//! thread (the null broker runs on its own thread and is not counted).
//!
//! Records are sent with a long `linger.ms` so that they stay buffered in
//! the accumulator while the heap is measured.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use exactly_benches::null_broker::NullBroker;
use exactly_producer::{Producer, ProducerRecord};

struct Measuring;

thread_local! {
    static COUNT: Cell<usize> = const { Cell::new(0) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize, count: usize) {
    let _ = COUNT.try_with(|c| c.set(c.get() + count));
    let _ = LIVE.try_with(|l| l.set(l.get() + delta));
}

unsafe impl GlobalAlloc for Measuring {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as isize, 1);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as isize, 1);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size as isize - layout.size() as isize, 1);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(-(layout.size() as isize), 0);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Measuring = Measuring;

#[test]
fn buffered_record_bookkeeping_and_send_allocations() {
    const N: usize = 100_000;
    let broker = NullBroker::start(3, None).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let producer = Producer::from_properties([
            ("bootstrap.servers", broker.addr()),
            ("linger.ms", "600000"),
            ("delivery.timeout.ms", "900000"),
            ("batch.size", "65536"),
            ("buffer.memory", "67108864"),
        ])
        .await
        .unwrap();
        // Warm up the topic's metadata and the partitioner.
        drop(
            producer
                .send(ProducerRecord::new("mem").with_value(b"w"))
                .await
                .unwrap(),
        );
        let key = [7u8; 16];
        let value = [1u8; 100];
        let count0 = COUNT.with(Cell::get);
        let live0 = LIVE.with(Cell::get);
        for _ in 0..N {
            drop(
                producer
                    .send(ProducerRecord::new("mem").with_key(&key).with_value(&value))
                    .await
                    .unwrap(),
            );
        }
        let allocs = COUNT.with(Cell::get) - count0;
        let live = (LIVE.with(Cell::get) - live0) as f64;
        let per_record_allocs = allocs as f64 / N as f64;
        // Everything kept beyond the key and value bytes counts as
        // bookkeeping here, the record's own framing (length, attributes,
        // deltas: 7-9 bytes) included.
        let overhead = live / N as f64 - (key.len() + value.len()) as f64;
        println!(
            "{N} buffered records: {allocs} allocations ({per_record_allocs:.4} per record), \
             {:.1} B held per record beyond key and value",
            overhead
        );
        assert!(
            per_record_allocs <= 0.01,
            "{per_record_allocs} allocations per record"
        );
        assert!(
            overhead <= 64.0,
            "{overhead} B per record beyond key and value"
        );
        producer.flush().await.unwrap();
        producer.close(Duration::from_secs(5)).await.unwrap();
    });
    assert_eq!(broker.records(), N as u64 + 1);
    broker.stop();
}
