#![no_main]
//! cargo-fuzz entry point; the body is `keystation_fuzz::vpcd_frames`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| keystation_fuzz::vpcd_frames(data));
