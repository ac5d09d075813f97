#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| exactly_consumer::fuzz::fetch_partition(data));
