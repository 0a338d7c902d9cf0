#![no_main]
//! cargo-fuzz entry point; the body is `keystation_fuzz::attestation_chain`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| keystation_fuzz::attestation_chain(data));
