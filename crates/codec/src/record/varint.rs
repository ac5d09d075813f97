//! Zig-zag variable-length integers, as used inside v2 records (KIP-98; the
//! encoding is protobuf's: 7 bits per byte, low group first, high bit set on
//! every byte but the last).
//!
//! A 32-bit varint takes at most 5 bytes and a 64-bit one at most 10; a longer
//! run of continuation bits is an error, never a loop over attacker bytes.
//!
//! Encoding into a batch lives in `writer` (raw stores into spare capacity);
//! the slice encoders here are the tests' reference.

use super::RecordError;

/// Maximum encoded size of a 32-bit varint.
pub(crate) const MAX_VARINT_LEN: usize = 5;
/// Maximum encoded size of a 64-bit varint.
pub(crate) const MAX_VARLONG_LEN: usize = 10;

/// Zig-zag encodes `v` into `out`, returning how many bytes were written.
#[cfg(test)]
#[inline(always)]
pub(crate) fn put_varint(out: &mut [u8], v: i32) -> usize {
    put_unsigned(out, ((v << 1) ^ (v >> 31)) as u32 as u64)
}

/// Zig-zag encodes `v` into `out`, returning how many bytes were written.
#[cfg(test)]
#[inline(always)]
pub(crate) fn put_varlong(out: &mut [u8], v: i64) -> usize {
    put_unsigned(out, ((v << 1) ^ (v >> 63)) as u64)
}

#[cfg(test)]
#[inline(always)]
fn put_unsigned(out: &mut [u8], mut u: u64) -> usize {
    let mut i = 0;
    while u >= 0x80 {
        out[i] = (u as u8) | 0x80;
        u >>= 7;
        i += 1;
    }
    out[i] = u as u8;
    i + 1
}

/// How many bytes `v` takes as a zig-zag varint.
#[cfg(test)]
#[inline(always)]
pub(crate) const fn varint_len(v: i32) -> usize {
    unsigned_len(((v << 1) ^ (v >> 31)) as u32 as u64)
}

/// How many bytes `v` takes as a zig-zag varlong.
#[cfg(test)]
#[inline(always)]
pub(crate) const fn varlong_len(v: i64) -> usize {
    unsigned_len(((v << 1) ^ (v >> 63)) as u64)
}

/// Encoded length by count of leading zero bits: 1 byte per started group of
/// 7 significant bits, at least 1.
const LEN_BY_LEADING_ZEROS: [u8; 65] = {
    let mut t = [0u8; 65];
    let mut lz = 0;
    while lz <= 64 {
        let bits = 64 - lz;
        t[lz] = if bits == 0 { 1 } else { bits.div_ceil(7) as u8 };
        lz += 1;
    }
    t
};

#[inline(always)]
const fn unsigned_len(u: u64) -> usize {
    LEN_BY_LEADING_ZEROS[u.leading_zeros() as usize] as usize
}

/// Zig-zag of a 32-bit value, widened.
#[inline(always)]
pub(crate) const fn zigzag32(v: i32) -> u64 {
    ((v << 1) ^ (v >> 31)) as u32 as u64
}

/// Zig-zag of a 64-bit value.
#[inline(always)]
pub(crate) const fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Length of an already zig-zagged value.
#[inline(always)]
pub(crate) const fn encoded_len(u: u64) -> usize {
    unsigned_len(u)
}

/// Reads a zig-zag varint at `*pos`, advancing it.
#[inline(always)]
pub(crate) fn get_varint(buf: &[u8], pos: &mut usize) -> Result<i32, RecordError> {
    // Fast path: one byte (values -64..=63), the common case for lengths of
    // small records, deltas and counts.
    if let Some(&b) = buf.get(*pos) {
        if b < 0x80 {
            *pos += 1;
            let u = b as u32;
            return Ok(((u >> 1) as i32) ^ -((u & 1) as i32));
        }
    }
    let u = get_unsigned(buf, pos, MAX_VARINT_LEN)?;
    if u > u32::MAX as u64 {
        return Err(RecordError::VarintOverflow);
    }
    let u = u as u32;
    Ok(((u >> 1) as i32) ^ -((u & 1) as i32))
}

/// Reads a zig-zag varlong at `*pos`, advancing it.
#[inline(always)]
pub(crate) fn get_varlong(buf: &[u8], pos: &mut usize) -> Result<i64, RecordError> {
    if let Some(&b) = buf.get(*pos) {
        if b < 0x80 {
            *pos += 1;
            let u = b as u64;
            return Ok(((u >> 1) as i64) ^ -((u & 1) as i64));
        }
    }
    let u = get_unsigned(buf, pos, MAX_VARLONG_LEN)?;
    Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
}

#[inline]
fn get_unsigned(buf: &[u8], pos: &mut usize, max_len: usize) -> Result<u64, RecordError> {
    let mut u: u64 = 0;
    let mut shift = 0u32;
    for i in 0..max_len {
        let Some(&b) = buf.get(*pos + i) else {
            return Err(RecordError::Truncated("varint"));
        };
        if shift == 63 && b > 1 {
            return Err(RecordError::VarintOverflow);
        }
        u |= ((b & 0x7f) as u64) << shift;
        if b < 0x80 {
            *pos += i + 1;
            return Ok(u);
        }
        shift += 7;
    }
    Err(RecordError::VarintTooLong)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn known_encodings() {
        let mut b = [0u8; 10];
        assert_eq!(put_varint(&mut b, 0), 1);
        assert_eq!(b[0], 0);
        assert_eq!(put_varint(&mut b, -1), 1);
        assert_eq!(b[0], 1);
        assert_eq!(put_varint(&mut b, 1), 1);
        assert_eq!(b[0], 2);
        assert_eq!(put_varint(&mut b, 64), 2);
        assert_eq!(&b[..2], &[0x80, 0x01]);
        assert_eq!(put_varint(&mut b, i32::MIN), 5);
        assert_eq!(&b[..5], &[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(put_varlong(&mut b, i64::MIN), 10);
    }

    #[test]
    fn too_long_and_truncated() {
        let six = [0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
        assert_eq!(get_varint(&six, &mut 0), Err(RecordError::VarintTooLong));
        let big = [0xff, 0xff, 0xff, 0xff, 0x7f];
        assert_eq!(get_varint(&big, &mut 0), Err(RecordError::VarintOverflow));
        // a tenth continuation byte cannot fit 64 bits: rejected at that byte
        let eleven = [0x80u8; 11];
        assert_eq!(
            get_varlong(&eleven, &mut 0),
            Err(RecordError::VarintOverflow)
        );
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(get_varlong(&over, &mut 0), Err(RecordError::VarintOverflow));
        assert_eq!(
            get_varint(&[0x80], &mut 0),
            Err(RecordError::Truncated("varint"))
        );
        assert_eq!(
            get_varint(&[], &mut 0),
            Err(RecordError::Truncated("varint"))
        );
    }

    proptest! {
        #[test]
        fn varint_roundtrip(v: i32) {
            let mut b = [0u8; 10];
            let n = put_varint(&mut b, v);
            prop_assert_eq!(n, varint_len(v));
            let mut pos = 0;
            prop_assert_eq!(get_varint(&b[..n], &mut pos), Ok(v));
            prop_assert_eq!(pos, n);
        }

        #[test]
        fn varlong_roundtrip(v: i64) {
            let mut b = [0u8; 10];
            let n = put_varlong(&mut b, v);
            prop_assert_eq!(n, varlong_len(v));
            let mut pos = 0;
            prop_assert_eq!(get_varlong(&b[..n], &mut pos), Ok(v));
            prop_assert_eq!(pos, n);
        }
    }
}
