#![no_main]
//! cargo-fuzz entry point; the body is `keystation_fuzz::token_review_status`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| keystation_fuzz::token_review_status(data));
