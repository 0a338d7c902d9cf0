#![no_main]
//! cargo-fuzz entry point; the body is `keystation_fuzz::gcp_identity_token`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| keystation_fuzz::gcp_identity_token(data));
