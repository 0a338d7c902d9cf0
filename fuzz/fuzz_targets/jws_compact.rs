#![no_main]
//! cargo-fuzz entry point; the body is `keystation_fuzz::jws_compact`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| keystation_fuzz::jws_compact(data));
