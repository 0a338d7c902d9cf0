#![no_main]
//! cargo-fuzz entry point; the body is `keystation_fuzz::ca_csr`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| keystation_fuzz::ca_csr(data));
