//! Record batch compression, all in pure Rust: gzip (`flate2` on
//! `miniz_oxide`), snappy (`snap`, raw and the xerial framing the Java client
//! writes), lz4 (`lz4_flex`, frame format, fast mode) and zstd (`ruzstd`).
//!
//! Kafka compresses the records section of a v2 batch as one unit (KIP-98;
//! zstd since KIP-110). The codec id lives in the low three bits of the batch
//! attributes.
//!
//! Decompression is capped: output beyond `max` bytes is a typed
//! [`RecordError::DecompressedTooLarge`] (a "bomb"), and no buffer is sized by
//! a length the input declares unless that length is first checked against the
//! cap and against what the input could possibly expand to.

use std::cell::RefCell;
use std::io::{Cursor, Read, Write};

use crate::record::RecordError;

/// A compression codec of a record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// No compression (attribute id 0).
    #[default]
    None,
    /// gzip (id 1).
    Gzip,
    /// snappy (id 2); written with the xerial framing, read framed or raw.
    Snappy,
    /// lz4 frame format (id 3).
    Lz4,
    /// zstd (id 4, KIP-110).
    Zstd,
}

impl Compression {
    /// Every codec, in id order.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The attribute id (0..=4).
    pub const fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec with attribute id `id`; ids 5..=7 are an error.
    pub fn from_id(id: u8) -> Result<Self, RecordError> {
        match id {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(RecordError::UnknownCompression(other)),
        }
    }

    /// Kafka's name for the codec (`compression.type`).
    pub const fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Default cap on the decompressed size of one batch's records: 64 MiB.
pub const DEFAULT_MAX_DECOMPRESSED_SIZE: usize = 64 * 1024 * 1024;

/// The xerial snappy stream header: magic, then version 1 and compatible
/// version 1 as big-endian int32.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_LEN: usize = 16;
/// The xerial library's default block size, which the Java client uses.
const XERIAL_BLOCK: usize = 32 * 1024;
/// No snappy element expands more than 64 output bytes from 3 input bytes
/// (a 2-byte-offset copy), so a declared length beyond 22x the input is a lie.
const SNAPPY_MAX_RATIO: usize = 22;
/// zstd windows up to 8 MiB must be supported by every decoder (RFC 8878,
/// 3.1.1.1.2); a larger window is accepted only up to the output cap.
const ZSTD_MIN_WINDOW_LIMIT: u64 = 8 * 1024 * 1024;
/// lz4 frame block size used when writing (the Java client's default).
const LZ4_BLOCK: lz4_flex::frame::BlockSize = lz4_flex::frame::BlockSize::Max64KB;

type ZstdCompressor = ruzstd::encoding::FrameCompressor<
    Cursor<Vec<u8>>,
    Vec<u8>,
    ruzstd::encoding::MatchGeneratorDriver,
>;

thread_local! {
    // Reused zstd contexts: the match generator's and the decoder's buffers
    // survive between batches on the same thread.
    static ZSTD_ENCODER: RefCell<Option<ZstdCompressor>> = const { RefCell::new(None) };
    static ZSTD_DECODER: RefCell<Option<ruzstd::decoding::FrameDecoder>> = const { RefCell::new(None) };
}

fn failed(codec: Compression, e: impl std::fmt::Display) -> RecordError {
    RecordError::Decompress {
        codec,
        reason: e.to_string(),
    }
}

/// Compresses `src` with `codec`, appending to `dst`.
pub fn compress(codec: Compression, src: &[u8], dst: &mut Vec<u8>) -> Result<(), RecordError> {
    let comp_err = |e: std::io::Error| RecordError::Compress {
        codec,
        reason: e.to_string(),
    };
    match codec {
        Compression::None => dst.extend_from_slice(src),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(dst, flate2::Compression::fast());
            enc.write_all(src).map_err(comp_err)?;
            enc.finish().map_err(comp_err)?;
        }
        Compression::Snappy => {
            dst.extend_from_slice(&XERIAL_MAGIC);
            dst.extend_from_slice(&1i32.to_be_bytes());
            dst.extend_from_slice(&1i32.to_be_bytes());
            let mut enc = snap::raw::Encoder::new();
            for block in src.chunks(XERIAL_BLOCK) {
                let at = dst.len();
                dst.extend_from_slice(&[0; 4]);
                dst.resize(at + 4 + snap::raw::max_compress_len(block.len()), 0);
                let n =
                    enc.compress(block, &mut dst[at + 4..])
                        .map_err(|e| RecordError::Compress {
                            codec,
                            reason: e.to_string(),
                        })?;
                dst.truncate(at + 4 + n);
                // n <= max_compress_len(32 KiB), far below i32::MAX
                dst[at..at + 4].copy_from_slice(&(n as u32).to_be_bytes());
            }
        }
        Compression::Lz4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(LZ4_BLOCK)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, dst);
            enc.write_all(src).map_err(comp_err)?;
            enc.finish().map_err(|e| RecordError::Compress {
                codec,
                reason: e.to_string(),
            })?;
        }
        Compression::Zstd => ZSTD_ENCODER.with(|cell| {
            let mut slot = cell.borrow_mut();
            let enc = slot.get_or_insert_with(|| {
                ZstdCompressor::new(ruzstd::encoding::CompressionLevel::Fastest)
            });
            // The compressor reads from an owned cursor and writes to an owned
            // vector; both are moved in and taken back out so the context
            // (match tables, window) is reused.
            enc.set_source(Cursor::new(src.to_vec()));
            enc.set_drain(std::mem::take(dst));
            enc.compress();
            enc.take_source();
            if let Some(out) = enc.take_drain() {
                *dst = out;
            }
        }),
    }
    Ok(())
}

/// Decompresses `src` (compressed with `codec`), refusing to produce more than
/// `max` bytes.
pub fn decompress(codec: Compression, src: &[u8], max: usize) -> Result<Vec<u8>, RecordError> {
    let too_large = || RecordError::DecompressedTooLarge { codec, max };
    match codec {
        Compression::None => {
            if src.len() > max {
                return Err(too_large());
            }
            Ok(src.to_vec())
        }
        Compression::Gzip => read_capped(codec, flate2::read::MultiGzDecoder::new(src), src, max),
        Compression::Lz4 => read_capped(codec, lz4_flex::frame::FrameDecoder::new(src), src, max),
        Compression::Snappy => {
            if src.len() >= XERIAL_HEADER_LEN && src[..8] == XERIAL_MAGIC {
                let mut out = Vec::new();
                let mut rest = &src[XERIAL_HEADER_LEN..];
                let mut dec = snap::raw::Decoder::new();
                while !rest.is_empty() {
                    let Some(len) = rest.get(..4) else {
                        return Err(failed(codec, "truncated xerial block length"));
                    };
                    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
                    let Some(block) = rest.get(4..4 + len) else {
                        return Err(failed(codec, "xerial block past the end"));
                    };
                    snappy_raw(&mut dec, block, &mut out, max)?;
                    rest = &rest[4 + len..];
                }
                Ok(out)
            } else {
                let mut out = Vec::new();
                snappy_raw(&mut snap::raw::Decoder::new(), src, &mut out, max)?;
                Ok(out)
            }
        }
        Compression::Zstd => zstd_decompress(src, max),
    }
}

fn read_capped(
    codec: Compression,
    reader: impl Read,
    src: &[u8],
    max: usize,
) -> Result<Vec<u8>, RecordError> {
    // Start from a guess tied to the real input size, never a declared one.
    let mut out = Vec::with_capacity(src.len().saturating_mul(4).min(max));
    let cap = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| failed(codec, e))?;
    if out.len() > max {
        return Err(RecordError::DecompressedTooLarge { codec, max });
    }
    Ok(out)
}

fn snappy_raw(
    dec: &mut snap::raw::Decoder,
    block: &[u8],
    out: &mut Vec<u8>,
    max: usize,
) -> Result<(), RecordError> {
    let codec = Compression::Snappy;
    let declared = snap::raw::decompress_len(block).map_err(|e| failed(codec, e))?;
    if declared > max.saturating_sub(out.len()) {
        return Err(RecordError::DecompressedTooLarge { codec, max });
    }
    if declared > block.len().saturating_mul(SNAPPY_MAX_RATIO) {
        return Err(failed(
            codec,
            "declared length exceeds what the input can expand to",
        ));
    }
    let at = out.len();
    out.resize(at + declared, 0);
    let n = dec
        .decompress(block, &mut out[at..])
        .map_err(|e| failed(codec, e))?;
    out.truncate(at + n);
    Ok(())
}

/// Reads the window a zstd frame header asks for (or its content size for a
/// single-segment frame) without trusting it further than the check.
fn zstd_window(src: &[u8]) -> Result<u64, RecordError> {
    let codec = Compression::Zstd;
    let Some(h) = src.get(..5) else {
        return Err(failed(codec, "truncated frame header"));
    };
    if h[..4] != [0x28, 0xb5, 0x2f, 0xfd] {
        return Err(failed(codec, "bad frame magic"));
    }
    let fhd = h[4];
    let single_segment = fhd & 0x20 != 0;
    if !single_segment {
        let Some(&wd) = src.get(5) else {
            return Err(failed(codec, "truncated window descriptor"));
        };
        let exp = u64::from(wd >> 3);
        let base = 1u64 << (10 + exp);
        return Ok(base + (base / 8) * u64::from(wd & 7));
    }
    let dict_len = [0usize, 1, 2, 4][(fhd & 3) as usize];
    let fcs_len = [1usize, 2, 4, 8][(fhd >> 6) as usize];
    let at = 5 + dict_len;
    let Some(f) = src.get(at..at + fcs_len) else {
        return Err(failed(codec, "truncated frame content size"));
    };
    let mut v = 0u64;
    for (i, b) in f.iter().enumerate() {
        v |= u64::from(*b) << (8 * i);
    }
    Ok(if fcs_len == 2 { v + 256 } else { v })
}

fn zstd_decompress(mut src: &[u8], max: usize) -> Result<Vec<u8>, RecordError> {
    let codec = Compression::Zstd;
    let max64 = u64::try_from(max).unwrap_or(u64::MAX);
    let mut out = Vec::with_capacity(src.len().saturating_mul(4).min(max));
    ZSTD_DECODER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let dec = slot.get_or_insert_with(ruzstd::decoding::FrameDecoder::new);
        while !src.is_empty() {
            if zstd_window(src)? > max64.max(ZSTD_MIN_WINDOW_LIMIT) {
                return Err(RecordError::DecompressedTooLarge { codec, max });
            }
            let room = max64 - out.len() as u64 + 1;
            let mut stream =
                ruzstd::decoding::StreamingDecoder::new_with_decoder(&mut src, &mut *dec)
                    .map_err(|e| failed(codec, e))?;
            (&mut stream)
                .take(room)
                .read_to_end(&mut out)
                .map_err(|e| failed(codec, e))?;
            if out.len() > max {
                return Err(RecordError::DecompressedTooLarge { codec, max });
            }
            if !stream.decoder.is_finished() {
                return Err(failed(codec, "truncated frame"));
            }
        }
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn roundtrip_every_codec() {
        let data = sample();
        for codec in Compression::ALL {
            let mut c = Vec::new();
            compress(codec, &data, &mut c).unwrap();
            if codec != Compression::None {
                assert!(c.len() < data.len() / 2, "{codec} did not compress");
            }
            assert_eq!(decompress(codec, &c, data.len()).unwrap(), data, "{codec}");
            // twice: the reused contexts must not leak state between batches
            let mut c2 = Vec::new();
            compress(codec, &data[..1000], &mut c2).unwrap();
            assert_eq!(decompress(codec, &c2, 1000).unwrap(), &data[..1000]);
        }
    }

    #[test]
    fn empty_input_roundtrips() {
        for codec in Compression::ALL {
            let mut c = Vec::new();
            compress(codec, &[], &mut c).unwrap();
            assert_eq!(
                decompress(codec, &c, 0).unwrap(),
                Vec::<u8>::new(),
                "{codec}"
            );
        }
    }

    #[test]
    fn bombs_are_typed_errors() {
        let zeros = vec![0u8; 4 * 1024 * 1024];
        for codec in Compression::ALL {
            let mut c = Vec::new();
            compress(codec, &zeros, &mut c).unwrap();
            assert_eq!(
                decompress(codec, &c, 1024 * 1024),
                Err(RecordError::DecompressedTooLarge {
                    codec,
                    max: 1024 * 1024
                }),
                "{codec}"
            );
        }
    }

    #[test]
    fn snappy_lying_length_is_rejected_before_allocation() {
        // declares 1 GiB of output in a 6-byte block
        let lie = [0x80, 0x80, 0x80, 0x80, 0x04, 0x00];
        assert!(matches!(
            decompress(Compression::Snappy, &lie, usize::MAX),
            Err(RecordError::Decompress { .. })
        ));
        assert!(matches!(
            decompress(Compression::Snappy, &lie, 1024),
            Err(RecordError::DecompressedTooLarge { .. })
        ));
    }

    #[test]
    fn zstd_huge_window_is_rejected() {
        // window descriptor exponent 31 -> 2 TiB window
        let frame = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xf8, 0, 0, 0];
        assert!(matches!(
            decompress(Compression::Zstd, &frame, 1 << 20),
            Err(RecordError::DecompressedTooLarge { .. })
        ));
    }

    #[test]
    fn raw_snappy_is_read_too() {
        let data = sample();
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(
            decompress(Compression::Snappy, &raw, usize::MAX).unwrap(),
            data
        );
    }

    #[test]
    fn garbage_is_a_typed_error() {
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            for junk in [&b""[..], b"\xff", b"not compressed at all, just text"] {
                match decompress(codec, junk, 1 << 20) {
                    Err(RecordError::Decompress { .. }) => {}
                    Ok(v) if junk.is_empty() && v.is_empty() => {}
                    other => panic!("{codec} {junk:?}: {other:?}"),
                }
            }
        }
        assert_eq!(
            Compression::from_id(5),
            Err(RecordError::UnknownCompression(5))
        );
    }
}
