#![no_main]
//! cargo-fuzz entry point; the body is `keystation_fuzz::acme_dns_response`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| keystation_fuzz::acme_dns_response(data));
