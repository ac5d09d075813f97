#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| exactly_codec::fuzz::decompress(exactly_codec::Compression::Lz4, data));
