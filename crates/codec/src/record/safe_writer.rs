//! EXPERIMENT (not for main): the header-less fast path in safe Rust, with the
//! same micro-optimizations as `writer` (threshold prefix, 2-byte store, short
//! copies as two overlapping 8/4-byte copies, wide varints out of line), into
//! a zero-filled buffer with bounds-checked slice stores.

use super::varint::{encoded_len, zigzag32};

const SCRATCH: usize = 8;
const HEADERLESS_FRAMING_MAX: usize = 32;
const BODY_MIN: usize = 6;
const BODY_MAX: usize = 27;

#[inline(always)]
pub(super) fn append_headerless(
    buf: &mut Vec<u8>,
    len: &mut usize,
    ts_delta: u64,
    offset_delta: u32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> bool {
    let key_len = key.map_or(0, <[u8]>::len);
    let value_len = value.map_or(0, <[u8]>::len);
    let kv = key_len + value_len;
    if kv >= 1 << 28 {
        return false;
    }
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
    let bound = HEADERLESS_FRAMING_MAX + kv + SCRATCH;
    let start = *len;
    if start + bound > buf.len() {
        grow(buf, start + bound);
    }
    let out = &mut buf[start..start + bound];
    out[prefix] = 0;
    let mut p = put_varint(out, prefix + 1, ts_delta);
    p = put_varint(out, p, u64::from(offset_delta) << 1);
    p = put_nullable(out, p, key);
    p = put_nullable(out, p, value);
    out[p] = 0;
    p += 1;
    put_exact(out, u64::from((p - prefix) as u32) << 1, prefix);
    *len = start + p;
    true
}

#[cold]
fn grow(buf: &mut Vec<u8>, needed: usize) {
    let target = needed.max(buf.len().saturating_mul(2));
    buf.resize(target, 0);
}

#[inline(always)]
fn put_nullable(out: &mut [u8], at: usize, f: Option<&[u8]>) -> usize {
    match f {
        Some(f) => {
            let p = put_varint(out, at, u64::from(f.len() as u32) << 1);
            copy_small(out, p, f);
            p + f.len()
        }
        None => {
            out[at] = 1;
            at + 1
        }
    }
}

#[inline(always)]
fn copy_small(out: &mut [u8], at: usize, src: &[u8]) {
    let n = src.len();
    if n > 16 {
        out[at..at + n].copy_from_slice(src);
    } else if n >= 8 {
        out[at..at + 8].copy_from_slice(&src[..8]);
        out[at + n - 8..at + n].copy_from_slice(&src[n - 8..]);
    } else if n >= 4 {
        out[at..at + 4].copy_from_slice(&src[..4]);
        out[at + n - 4..at + n].copy_from_slice(&src[n - 4..]);
    } else {
        out[at..at + n].copy_from_slice(src);
    }
}

#[inline(always)]
fn put_varint(out: &mut [u8], at: usize, u: u64) -> usize {
    if u < 0x80 {
        out[at] = u as u8;
        return at + 1;
    }
    if u < 1 << 14 {
        out[at..at + 2].copy_from_slice(&[(u as u8) | 0x80, (u >> 7) as u8]);
        return at + 2;
    }
    put_varint_wide(out, at, u)
}

#[inline(never)]
fn put_varint_wide(out: &mut [u8], at: usize, mut u: u64) -> usize {
    let mut i = at;
    while u >= 0x80 {
        out[i] = (u as u8) | 0x80;
        u >>= 7;
        i += 1;
    }
    out[i] = u as u8;
    i + 1
}

#[inline(always)]
fn put_exact(out: &mut [u8], mut u: u64, len: usize) {
    if len == 1 {
        out[0] = u as u8;
        return;
    }
    if len == 2 {
        out[..2].copy_from_slice(&[(u as u8) | 0x80, (u >> 7) as u8]);
        return;
    }
    for b in &mut out[..len - 1] {
        *b = (u as u8) | 0x80;
        u >>= 7;
    }
    out[len - 1] = u as u8;
}
