#![no_main]
//! cargo-fuzz entry point; the body is `keystation_fuzz::pcscd_replies`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| keystation_fuzz::pcscd_replies(data));
