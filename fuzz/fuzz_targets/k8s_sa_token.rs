#![no_main]
//! cargo-fuzz entry point; the body is `keystation_fuzz::k8s_sa_token`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| keystation_fuzz::k8s_sa_token(data));
