#![no_main]
//! cargo-fuzz entry point; the body is `keystation_fuzz::apdu_response`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| keystation_fuzz::apdu_response(data));
