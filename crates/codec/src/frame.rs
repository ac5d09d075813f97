//! Size-prefixed framing: every Kafka request and response is a big-endian
//! `int32` size followed by that many bytes.
//!
//! The decoder is incremental: [`FrameDecoder::decode`] returns `Ok(None)`
//! until a whole frame is buffered. The declared size is checked against a
//! configurable maximum *before* anything is reserved, so a hostile or
//! confused peer (an HTTP `GET ` read as a size is 1,195,725,856) costs a
//! typed error, not memory. Below the maximum, the buffer grows with the
//! bytes that actually arrive (at most doubling, from
//! [`GROWTH_FLOOR`]), never by the declared size alone: a peer that sends
//! a 4-byte prefix declaring 100 MiB and then nothing costs 64 KiB, not
//! 100 MiB per connection.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::CodecError;

/// Default maximum frame size: 100 MiB, the Java client's
/// `socket.request.max.bytes` default on the broker side.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 100 * 1024 * 1024;

/// The least a partial frame's buffer is grown by: small frames are read
/// whole in one reservation, large ones grow geometrically from here.
pub const GROWTH_FLOOR: usize = 64 * 1024;

/// Incremental decoder of size-prefixed frames.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_frame_size: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_SIZE)
    }
}

impl FrameDecoder {
    /// A decoder that rejects frames larger than `max_frame_size` bytes.
    pub fn new(max_frame_size: usize) -> Self {
        Self { max_frame_size }
    }

    /// The configured maximum.
    pub fn max_frame_size(&self) -> usize {
        self.max_frame_size
    }

    /// Takes one whole frame (without its size prefix) off the front of
    /// `buf`, or returns `Ok(None)` when more bytes are needed. On `Ok(None)`
    /// the buffer is left as it was, and room is reserved for the rest of
    /// the frame but never more than what is buffered already (or
    /// [`GROWTH_FLOOR`]): memory follows received bytes, not the declared
    /// size. The extra copies of growing cost at most one copy of the frame.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        let Some(prefix) = buf.get(..4) else {
            return Ok(None);
        };
        let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        if size < 0 {
            return Err(CodecError::NegativeFrameSize(size));
        }
        let len = size as usize;
        if len > self.max_frame_size {
            return Err(CodecError::FrameTooLarge {
                size,
                max: self.max_frame_size,
            });
        }
        if buf.len() < 4 + len {
            let missing = 4 + len - buf.len();
            buf.reserve(missing.min(buf.len().max(GROWTH_FLOOR)));
            return Ok(None);
        }
        buf.advance(4);
        Ok(Some(buf.split_to(len).freeze()))
    }
}

/// Writes a size-prefixed frame whose body is produced by `body`, patching the
/// size once the body is written. Returns the body length.
pub fn write_frame<E>(
    dst: &mut BytesMut,
    body: impl FnOnce(&mut BytesMut) -> Result<(), E>,
) -> Result<usize, E> {
    let start = dst.len();
    dst.put_i32(0);
    body(dst)?;
    let len = dst.len() - start - 4;
    // A frame never exceeds i32::MAX: callers encode bounded messages, and the
    // broker would reject anything larger anyway.
    let size = i32::try_from(len).unwrap_or(i32::MAX);
    dst[start..start + 4].copy_from_slice(&size.to_be_bytes());
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_more_until_whole() {
        let d = FrameDecoder::default();
        let mut b = BytesMut::new();
        assert_eq!(d.decode(&mut b).unwrap(), None);
        b.extend_from_slice(&[0, 0, 0, 3, 1, 2]);
        assert_eq!(d.decode(&mut b).unwrap(), None);
        assert_eq!(b.len(), 6);
        b.extend_from_slice(&[3, 0, 0]);
        assert_eq!(d.decode(&mut b).unwrap().unwrap().as_ref(), &[1, 2, 3]);
        assert_eq!(b.as_ref(), &[0, 0]);
    }

    #[test]
    fn http_get_is_rejected_before_allocation() {
        let d = FrameDecoder::default();
        let mut b = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
        let cap = b.capacity();
        match d.decode(&mut b) {
            Err(CodecError::FrameTooLarge { size, .. }) => assert_eq!(size, 1_195_725_856),
            other => panic!("{other:?}"),
        }
        assert_eq!(b.capacity(), cap);
    }

    /// Issue 16 item 4: a size prefix just under the maximum waits for its
    /// bytes with a reservation bounded by the maximum; one just over is an
    /// error before any reservation.
    #[test]
    fn a_size_just_under_the_maximum_waits_with_a_bounded_reservation() {
        let max = 1 << 20;
        let d = FrameDecoder::new(max);
        let mut b = BytesMut::new();
        b.put_i32(max as i32 - 1);
        b.put_slice(b"abc");
        assert_eq!(d.decode(&mut b).unwrap(), None);
        assert_eq!(b.len(), 7, "the buffer is left as it was");
        assert!(b.capacity() <= 4 + max, "{}", b.capacity());
        let mut b = BytesMut::new();
        b.put_i32(max as i32 + 1);
        let cap = b.capacity();
        assert!(matches!(
            d.decode(&mut b),
            Err(CodecError::FrameTooLarge { .. })
        ));
        assert_eq!(b.capacity(), cap);
        // Exactly the maximum is a frame.
        let mut b = BytesMut::new();
        b.put_i32(max as i32);
        b.put_bytes(7, max);
        assert_eq!(d.decode(&mut b).unwrap().unwrap().len(), max);
    }

    /// A prefix declaring the default maximum (100 MiB) followed by nothing
    /// reserves the growth floor, not the declared size; fed in pieces the
    /// frame still decodes, and the buffer's capacity stays a small multiple
    /// of what arrived (`BytesMut` itself doubles on reallocation, so four
    /// times, plus the floor twice).
    #[test]
    fn reservation_follows_received_bytes() {
        let d = FrameDecoder::default();
        let mut b = BytesMut::new();
        b.put_i32(DEFAULT_MAX_FRAME_SIZE as i32);
        assert_eq!(d.decode(&mut b).unwrap(), None);
        assert!(b.capacity() <= 4 + GROWTH_FLOOR + 64, "{}", b.capacity());

        let len = 3 * GROWTH_FLOOR + 17;
        let body: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut b = BytesMut::new();
        b.put_i32(len as i32);
        let mut fed = 0;
        let frame = loop {
            if let Some(f) = d.decode(&mut b).unwrap() {
                break f;
            }
            assert!(b.capacity() <= 4 * b.len() + 2 * GROWTH_FLOOR + 64);
            // Read into spare capacity, as `read_buf` does.
            let take = (b.capacity() - b.len()).clamp(1, len - fed).min(10_000);
            b.put_slice(&body[fed..fed + take]);
            fed += take;
        };
        assert_eq!(frame.as_ref(), &body[..]);
    }

    #[test]
    fn negative_size() {
        let d = FrameDecoder::default();
        let mut b = BytesMut::from(&[0xff, 0xff, 0xff, 0xfe][..]);
        assert_eq!(d.decode(&mut b), Err(CodecError::NegativeFrameSize(-2)));
    }

    #[test]
    fn write_then_read() {
        let mut b = BytesMut::new();
        write_frame::<()>(&mut b, |b| {
            b.put_slice(b"hello");
            Ok(())
        })
        .unwrap();
        let d = FrameDecoder::new(5);
        assert_eq!(d.decode(&mut b).unwrap().unwrap().as_ref(), b"hello");
    }
}
