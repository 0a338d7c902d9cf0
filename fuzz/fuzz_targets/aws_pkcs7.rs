#![no_main]
//! cargo-fuzz entry point; the body is `keystation_fuzz::aws_pkcs7`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| keystation_fuzz::aws_pkcs7(data));
