//! The record writer: the one module of `exactly-codec` allowed `unsafe`
//! (ARCHITECTURE.md principle 10: `unsafe_code` is forbidden except in a hot
//! spot whose gain was measured; the measurement is in BENCHMARKS.md, "Codec:
//! RecordBatch v2").
//!
//! Appending a record (KIP-98 record layout: length, attributes, timestamp
//! delta, offset delta, key, value, headers from KIP-82) is the producer's
//! hottest loop. Safe code either zero-fills the batch buffer ahead of use and
//! bounds-checks every store into it, or grows a `Vec` once per field. Here
//! each record reserves its upper bound once, is written into the vector's
//! spare capacity through a raw pointer, and is committed with one `set_len`.
//!
//! Soundness does not depend on the callers: each function computes the
//! bound it reserves from the same slices it copies, so no input (however
//! large or inconsistent) makes it write outside the reservation. Wrong
//! inputs (lengths the caller should have rejected) can only give a wrong
//! encoding, never memory unsafety.
//!
//! Invariant of every writing function, for the `Vec` it is given:
//! - on entry, `reserve(bound)` makes `capacity - len >= bound`, where `bound`
//!   counts every byte any store may touch, scratch included;
//! - every store lands in `len..len + bound`;
//! - `set_len(len + n)` is called once, with every byte of `len..len + n`
//!   written before (bytes past `n` may have been written as scratch; they
//!   stay outside the initialized length).

use super::encode::RecordHeader;
use super::varint::{encoded_len, zigzag32};

/// A varint whose value takes 3 to 8 bytes is written with one 8-byte store;
/// the bytes past its end are scratch, overwritten by the next field or left
/// past the vector's length. Every reservation adds this much.
pub(super) const SCRATCH: usize = 8;

/// Upper bound of a header-less record's bytes beside key and value: length
/// (5), attributes (1), timestamp delta (10), offset delta (5), key length
/// (5), value length (5), header count (1).
const HEADERLESS_FRAMING_MAX: usize = 32;

/// The body of a header-less record (everything after its length prefix) is
/// at least this many bytes beside key and value: attributes, timestamp
/// delta, offset delta, key length, value length, header count, one byte
/// each.
const BODY_MIN: usize = 6;
/// ... and at most this many: 1 + 10 + 5 + 5 + 5 + 1.
const BODY_MAX: usize = 27;

/// Appends a record without headers whose length prefix can be sized from
/// bounds alone: the body is written first and its length filled in after,
/// with no sizing pass. Returns `false`, leaving `buf` untouched, when it
/// cannot (key plus value of 2^28 bytes or more, or bounds whose varint
/// widths differ: the caller then sizes the record first).
///
/// `ts_delta` is already zig-zag encoded; the offset delta (a record count,
/// never negative), key and value lengths are written as zig-zag i32
/// (`None` as -1).
#[inline(always)]
pub(super) fn append_headerless(
    buf: &mut Vec<u8>,
    ts_delta: u64,
    offset_delta: u32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> bool {
    let key_len = key.map_or(0, <[u8]>::len);
    let value_len = value.map_or(0, <[u8]>::len);
    // Two slices' lengths are each at most isize::MAX: the sum cannot wrap.
    let kv = key_len + value_len;
    if kv >= 1 << 28 {
        return false;
    }
    // The length prefix is the zig-zag of the body length: one byte below
    // 64, two below 8192, three below 2^20, four below 2^27.
    let prefix = if BODY_MAX + kv < 64 {
        1
    } else if BODY_MIN + kv >= 64 && BODY_MAX + kv < 8192 {
        2
    } else {
        let wide = encoded_len(zigzag32((BODY_MAX + kv) as i32));
        if wide != encoded_len(zigzag32((BODY_MIN + kv) as i32)) {
            return false;
        }
        wide
    };
    // kv < 2^28: no overflow. prefix <= 5 and the body <= BODY_MAX + kv, so
    // this covers HEADERLESS_FRAMING_MAX + kv, plus the scratch.
    let bound = HEADERLESS_FRAMING_MAX + kv + SCRATCH;
    buf.reserve(bound);
    let start = buf.len();
    debug_assert!(buf.capacity() - start >= bound);
    let base = buf.spare_capacity_mut().as_mut_ptr().cast::<u8>();
    // SAFETY: `base` points at `capacity - len >= bound` writable bytes (the
    // reservation above). The stores below are, in order: the body at
    // `base + prefix`, of at most BODY_MAX + kv bytes (attributes 1,
    // timestamp delta <= 10, offset delta <= 5 (a u32 times two), two length
    // varints <= 5 each (`zigzag_len`), key_len + value_len copied bytes,
    // header count 1), each varint store touching at
    // most SCRATCH bytes from its start; then the prefix at `base`, exactly
    // `prefix` <= 5 bytes. So every store lands in
    // `base..base + prefix + BODY_MAX + kv + SCRATCH`, inside the bound. The
    // key and value are copied from their own slices, which cannot overlap
    // the spare capacity of a `Vec` we hold `&mut`.
    let end = unsafe {
        let body = base.add(prefix);
        body.write(0); // record attributes: unused
        let mut p = put_varint(body.add(1), ts_delta);
        p = put_varint(p, u64::from(offset_delta) << 1);
        p = put_nullable(p, key);
        p = put_nullable(p, value);
        p.write(0); // header count
        p = p.add(1);
        let body_len = p.offset_from(body) as usize;
        debug_assert!((BODY_MIN + kv..=BODY_MAX + kv).contains(&body_len));
        put_varint_exact(base, zigzag_len(body_len), prefix);
        p.offset_from(base) as usize
    };
    debug_assert!(end <= bound - SCRATCH);
    // SAFETY: `end` bytes from `start` were written above: the prefix
    // (`prefix` bytes at `base`), then the body contiguously from
    // `base + prefix` to `p`; `end <= bound <= capacity - start`.
    unsafe { buf.set_len(start + end) };
    true
}

/// Appends a record of any shape whose body (everything after the length
/// prefix) the caller sized as `body_len` bytes. `offset_delta` (a record
/// count), key and value lengths, the header count and header lengths are
/// written as zig-zag i32; `ts_delta` is already zig-zag encoded.
///
/// The reservation is computed here from the slices, independently of
/// `body_len`, so a wrong `body_len` gives a wrong length prefix, never a
/// write outside the reservation (debug builds assert it is right).
pub(super) fn append_sized(
    buf: &mut Vec<u8>,
    body_len: i32,
    ts_delta: u64,
    offset_delta: u32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[RecordHeader<'_>],
) {
    // Every i32 varint is at most 5 bytes, the timestamp delta 10. Saturating
    // sums: an impossible total makes `reserve` panic, never under-reserve.
    let headers_max = headers.iter().fold(0usize, |acc, h| {
        acc.saturating_add(10)
            .saturating_add(h.key.len())
            .saturating_add(h.value.map_or(0, <[u8]>::len))
    });
    let bound = (5 + 1 + 10 + 5 + 5 + 5 + 5 + SCRATCH)
        .saturating_add(key.map_or(0, <[u8]>::len))
        .saturating_add(value.map_or(0, <[u8]>::len))
        .saturating_add(headers_max);
    buf.reserve(bound);
    let start = buf.len();
    let base = buf.spare_capacity_mut().as_mut_ptr().cast::<u8>();
    // SAFETY: `base` points at `capacity - len >= bound` writable bytes. The
    // stores, in order: the length prefix (<= 5, an i32's zig-zag),
    // attributes (1), timestamp delta (<= 10), offset delta (a u32 times
    // two), key length, value length and header count (`zigzag_len`) (<= 5
    // each), key and value bytes, then
    // per header a key length (<= 5), key bytes, a value length (<= 5) and
    // value bytes; each varint store touches at most SCRATCH bytes from its
    // start. Their sum, plus SCRATCH after the last one, is at most `bound`
    // as computed above (10 per header for its two lengths). Sources are
    // caller slices, which cannot overlap the spare capacity of a `Vec` we
    // hold `&mut`.
    let end = unsafe {
        let mut p = put_varint(base, zigzag32(body_len));
        let body = p;
        p.write(0); // record attributes: unused
        p = put_varint(p.add(1), ts_delta);
        p = put_varint(p, u64::from(offset_delta) << 1);
        p = put_nullable(p, key);
        p = put_nullable(p, value);
        p = put_varint(p, zigzag_len(headers.len()));
        for h in headers {
            p = put_nullable(p, Some(h.key.as_bytes()));
            p = put_nullable(p, h.value);
        }
        debug_assert_eq!(p.offset_from(body), body_len as isize);
        p.offset_from(base) as usize
    };
    debug_assert!(end <= bound - SCRATCH);
    // SAFETY: the `end` bytes from `start` were all written above, one field
    // after the other from `base`; `end <= bound <= capacity - start`.
    unsafe { buf.set_len(start + end) };
}

/// The zig-zag of a length (or count) as an i32: `2 n` for every `n` up to
/// `i32::MAX`, which is all the callers let through. Wider values are cut to
/// 32 bits first, so the varint never exceeds 5 bytes whatever `n` is (a
/// wrong encoding for a length the callers reject, never a longer store).
#[inline(always)]
fn zigzag_len(n: usize) -> u64 {
    u64::from(n as u32) << 1
}

/// Writes a nullable byte string: its zig-zag i32 length (`zigzag_len`; -1
/// for `None`),
/// then its bytes. Returns the position after it.
///
/// # Safety
/// `p` must be valid for writes of `5 + len + SCRATCH` bytes (`len` the
/// slice's length) and not overlap `field`.
#[inline(always)]
unsafe fn put_nullable(p: *mut u8, field: Option<&[u8]>) -> *mut u8 {
    match field {
        Some(f) => {
            // SAFETY: the length varint takes at most 5 bytes (an i32's
            // zig-zag; wider lengths are cut, not written past), touching at
            // most SCRATCH from `p`; the copy writes `f.len()` bytes after it:
            // within the caller's `5 + len + SCRATCH`.
            unsafe {
                let p = put_varint(p, zigzag_len(f.len()));
                copy_small(f, p);
                p.add(f.len())
            }
        }
        None => {
            // SAFETY: one byte, within the caller's bound.
            unsafe {
                p.write(1); // zig-zag of -1: null
                p.add(1)
            }
        }
    }
}

/// Copies `src` to `dst`: short fields (keys, small values) with a couple of
/// overlapping unaligned loads and stores, longer ones with `memcpy`.
///
/// # Safety
/// `dst` must be valid for writes of `src.len()` bytes and not overlap `src`.
#[inline(always)]
unsafe fn copy_small(src: &[u8], dst: *mut u8) {
    let n = src.len();
    let s = src.as_ptr();
    // SAFETY: every load reads inside `src` (offsets 0.. and n-8.., n-4..
    // only when n is at least 8, resp. 4), every store writes inside
    // `dst..dst + n` by the same arithmetic; the caller guarantees `dst`
    // holds `n` bytes and does not overlap `src`.
    unsafe {
        if n > 16 {
            std::ptr::copy_nonoverlapping(s, dst, n);
        } else if n >= 8 {
            let head = s.cast::<[u8; 8]>().read_unaligned();
            let tail = s.add(n - 8).cast::<[u8; 8]>().read_unaligned();
            dst.cast::<[u8; 8]>().write_unaligned(head);
            dst.add(n - 8).cast::<[u8; 8]>().write_unaligned(tail);
        } else if n >= 4 {
            let head = s.cast::<[u8; 4]>().read_unaligned();
            let tail = s.add(n - 4).cast::<[u8; 4]>().read_unaligned();
            dst.cast::<[u8; 4]>().write_unaligned(head);
            dst.add(n - 4).cast::<[u8; 4]>().write_unaligned(tail);
        } else {
            for i in 0..n {
                dst.add(i).write(*s.add(i));
            }
        }
    }
}

/// Writes an already zig-zagged value as a varint at `p`, returning the
/// position after it. One and two bytes are single stores; three to eight
/// bytes one 8-byte store whose tail is scratch; nine and ten bytes a loop.
///
/// # Safety
/// `p` must be valid for writes of `max(SCRATCH, len)` bytes, where `len` is
/// the varint's length (at most 10).
#[inline(always)]
unsafe fn put_varint(p: *mut u8, u: u64) -> *mut u8 {
    // SAFETY: (all branches) the stores write 1, 2, SCRATCH or
    // `encoded_len(u)` bytes from `p`, within what the caller guarantees.
    unsafe {
        if u < 0x80 {
            p.write(u as u8);
            return p.add(1);
        }
        if u < 1 << 14 {
            let two = [(u as u8) | 0x80, (u >> 7) as u8];
            p.cast::<[u8; 2]>().write_unaligned(two);
            return p.add(2);
        }
        put_varint_wide(p, u)
    }
}

/// [`put_varint`] for values of three bytes or more (timestamp deltas of
/// 8 s or more, offset deltas from 8192, lengths from 8192 bytes): out of
/// line, which keeps the common path short.
///
/// # Safety
/// As [`put_varint`].
#[inline(never)]
unsafe fn put_varint_wide(p: *mut u8, mut u: u64) -> *mut u8 {
    if u < 1 << 56 {
        let mut enc = 0u64;
        let mut shift = 0;
        while u >= 0x80 {
            enc |= ((u & 0x7f) | 0x80) << shift;
            u >>= 7;
            shift += 8;
        }
        enc |= u << shift;
        // SAFETY: one SCRATCH-byte store at `p`; the varint is its first
        // `shift / 8 + 1` <= 8 bytes.
        unsafe {
            p.cast::<[u8; 8]>().write_unaligned(enc.to_le_bytes());
            return p.add(shift / 8 + 1);
        }
    }
    let mut i = 0;
    while u >= 0x80 {
        // SAFETY: i < encoded_len(u) <= 10, within the caller's bound.
        unsafe { p.add(i).write((u as u8) | 0x80) };
        u >>= 7;
        i += 1;
    }
    // SAFETY: as above, the last byte of the varint.
    unsafe {
        p.add(i).write(u as u8);
        p.add(i + 1)
    }
}

/// Writes `u` as a varint of exactly `len` bytes (its minimal length, or
/// longer with continuation bits: still a valid varint of the same value).
///
/// # Safety
/// `p` must be valid for writes of `len` bytes; `len` >= 1.
#[inline(always)]
unsafe fn put_varint_exact(p: *mut u8, mut u: u64, len: usize) {
    debug_assert!(len >= 1);
    // SAFETY: writes `p[0..len]` exactly.
    unsafe {
        if len == 1 {
            p.write(u as u8);
            return;
        }
        if len == 2 {
            p.cast::<[u8; 2]>()
                .write_unaligned([(u as u8) | 0x80, (u >> 7) as u8]);
            return;
        }
        for i in 0..len - 1 {
            p.add(i).write((u as u8) | 0x80);
            u >>= 7;
        }
        p.add(len - 1).write(u as u8);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The reference: protobuf's varint, one byte at a time.
    fn reference_varint(mut u: u64, out: &mut Vec<u8>) {
        while u >= 0x80 {
            out.push((u as u8) | 0x80);
            u >>= 7;
        }
        out.push(u as u8);
    }

    /// `put_varint` through a vector, as the writers use it.
    fn varint_via_writer(u: u64) -> Vec<u8> {
        let mut v: Vec<u8> = Vec::with_capacity(10 + SCRATCH);
        let base = v.spare_capacity_mut().as_mut_ptr().cast::<u8>();
        // SAFETY: 18 bytes of capacity: a varint is at most 10 bytes and a
        // store touches at most SCRATCH; the written prefix is committed.
        unsafe {
            let end = put_varint(base, u);
            let n = end.offset_from(base) as usize;
            v.set_len(n);
        }
        v
    }

    /// Values at every width boundary: 2^(7k) - 1 and 2^(7k) for k = 1..9,
    /// and the extremes.
    fn boundaries() -> Vec<u64> {
        let mut v = vec![0, 1, u64::MAX, u64::MAX - 1];
        for k in 1..=9 {
            let b = 1u64 << (7 * k);
            v.extend([b - 1, b, b + 1]);
        }
        v
    }

    #[test]
    fn varint_widths_match_the_reference() {
        for u in boundaries() {
            let mut want = Vec::new();
            reference_varint(u, &mut want);
            assert_eq!(varint_via_writer(u), want, "value {u:#x}");
            assert_eq!(want.len(), encoded_len(u));
        }
    }

    #[test]
    fn exact_width_prefix_matches_minimal() {
        for u in boundaries().into_iter().filter(|&u| u <= u32::MAX as u64) {
            let len = encoded_len(u);
            let mut out = vec![0u8; len];
            // SAFETY: `out` holds `len` bytes.
            unsafe { put_varint_exact(out.as_mut_ptr(), u, len) };
            let mut want = Vec::new();
            reference_varint(u, &mut want);
            assert_eq!(out, want);
        }
    }

    #[test]
    fn small_copies_of_every_length() {
        let src: Vec<u8> = (0..40u8).collect();
        for n in 0..=40 {
            let mut out = vec![0xaau8; n + 2];
            // SAFETY: `out` holds n + 2 bytes; `src[..n]` is another buffer.
            unsafe { copy_small(&src[..n], out.as_mut_ptr().add(1)) };
            assert_eq!(out[0], 0xaa);
            assert_eq!(&out[1..=n], &src[..n]);
            assert_eq!(out[n + 1], 0xaa, "wrote past the field at n = {n}");
        }
    }

    #[test]
    fn headerless_refuses_straddling_bounds_untouched() {
        // 6 + kv = 60 fits one byte, 27 + kv = 81 needs two
        let mut v = vec![9u8; 3];
        assert!(!append_headerless(&mut v, 0, 0, Some(&[1; 54]), None));
        assert_eq!(v, [9, 9, 9]);
        assert!(append_headerless(&mut v, 0, 0, Some(&[1; 30]), None));
        assert_eq!(v.len(), 3 + 1 + 6 + 30);
    }

    proptest! {
        #[test]
        fn varint_matches_reference(u: u64) {
            let mut want = Vec::new();
            reference_varint(u, &mut want);
            prop_assert_eq!(varint_via_writer(u), want);
        }

        #[test]
        fn varint_of_each_width(width in 1u32..=10, low: u64) {
            // a value whose varint takes exactly `width` bytes: its top set
            // bit is bit 7 * (width - 1) (bit 63 for ten bytes)
            let top = (7 * (width - 1)).min(63);
            let u = (1u64 << top) | (low & ((1u64 << top) - 1));
            let u = if width == 1 { low & 0x7f } else { u };
            let mut want = Vec::new();
            reference_varint(u, &mut want);
            prop_assert_eq!(want.len(), width as usize);
            prop_assert_eq!(varint_via_writer(u), want);
        }
    }
}
