#![no_main]
//! cargo-fuzz entry point; the body is `keystation_fuzz::private_key`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| keystation_fuzz::private_key(data));
