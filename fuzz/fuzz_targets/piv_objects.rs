#![no_main]
//! cargo-fuzz entry point; the body is `keystation_fuzz::piv_objects`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| keystation_fuzz::piv_objects(data));
