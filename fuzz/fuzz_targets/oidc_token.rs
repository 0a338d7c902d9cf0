#![no_main]
//! cargo-fuzz entry point; the body is `keystation_fuzz::oidc_token`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| keystation_fuzz::oidc_token(data));
