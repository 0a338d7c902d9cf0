#![no_main]
//! cargo-fuzz entry point; the body is `keystation_fuzz::softcard_state`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| keystation_fuzz::softcard_state(data));
