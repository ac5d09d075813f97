#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| exactly_codec::fuzz::batch_roundtrip(data));
