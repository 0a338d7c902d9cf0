#![no_main]
//! cargo-fuzz entry point; the body is `keystation_fuzz::ber_tlv`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| keystation_fuzz::ber_tlv(data));
