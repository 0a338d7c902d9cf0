//! APDU and BER-TLV codec benchmarks: the work done for every command keystation sends.
//!
//! `cargo bench --bench codec`; CI runs `cargo bench --no-run` so these always build.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

use keystation_core::apdu::{Command, Le, Response};
use keystation_core::key::PublicKey;
use keystation_core::tlv;
use keystation_core::{Card, Channel, ChannelOptions, Error};

/// A card that answers every command at once: `data_len` bytes in chunks of 256 with
/// `61xx`, so the GET RESPONSE loop is part of what is measured.
struct InstantCard {
    remaining: usize,
    data_len: usize,
}

impl Card for InstantCard {
    fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, Error> {
        if command[1] != 0xC0 {
            self.remaining = self.data_len;
        }
        let n = self.remaining.min(256);
        self.remaining -= n;
        response[..n].fill(0xA5);
        let sw =
            if self.remaining == 0 { [0x90, 0x00] } else { [0x61, self.remaining.min(255) as u8] };
        response[n..n + 2].copy_from_slice(&sw);
        Ok(n + 2)
    }
}

fn application_related_data() -> Vec<u8> {
    let mut out = Vec::new();
    tlv::write_constructed(&mut out, 0x6E, |ard| {
        tlv::write(ard, 0x4F, &[0xD2, 0x76, 0, 1, 0x24, 1, 3, 4, 0, 6, 1, 2, 3, 4, 0, 0]);
        tlv::write(ard, 0x5F52, &[0, 0x73, 0, 0, 0xE0, 5, 0x90, 0]);
        tlv::write_constructed(ard, 0x73, |dd| {
            tlv::write(dd, 0xC0, &[0x7D, 0, 0x0B, 0xFE, 8, 0, 0, 0xFF, 0, 0]);
            for tag in [0xC1, 0xC2, 0xC3] {
                tlv::write(dd, tag, &[1, 8, 0, 0, 0x11, 0]);
            }
            tlv::write(dd, 0xC4, &[0xFF, 0x7F, 0x7F, 0x7F, 3, 0, 3]);
            tlv::write(dd, 0xC5, &[0x5A; 60]);
            tlv::write(dd, 0xC6, &[0; 60]);
            tlv::write(dd, 0xCD, &[0x11; 12]);
        });
    });
    out
}

fn apdu(c: &mut Criterion) {
    let mut group = c.benchmark_group("apdu");
    let verify = Command::new(0, 0x20, 0, 0x81).with_data(b"123456");
    group.bench_function("encode_short", |b| b.iter(|| black_box(&verify).encode()));
    let import = Command::new(0, 0xDB, 0x3F, 0xFF).with_data(&[0x42; 1200]).with_le(Le::Max);
    group.bench_function("encode_extended_1200", |b| b.iter(|| black_box(&import).encode()));
    let encoded = import.encode().map(|e| e.to_vec()).unwrap_or_default();
    group.bench_function("parse_extended_1200", |b| b.iter(|| Command::parse(black_box(&encoded))));
    let mut response = vec![0x5A; 512];
    response.extend_from_slice(&[0x90, 0]);
    group
        .bench_function("response_parse_512", |b| b.iter(|| Response::parse(black_box(&response))));

    let get_data = Command::new(0, 0xCA, 0, 0x6E).with_le(Le::Max);
    for data_len in [200usize, 1200] {
        let mut card = InstantCard { remaining: 0, data_len };
        let mut channel = Channel::new(&mut card);
        group.throughput(Throughput::Bytes(data_len as u64));
        group.bench_function(format!("channel_get_response_{data_len}"), |b| {
            b.iter(|| channel.transmit(black_box(&get_data)))
        });
    }
    let chained = Command::new(0, 0xDB, 0x3F, 0xFF).with_data(&[0x42; 1200]);
    let mut card = InstantCard { remaining: 0, data_len: 0 };
    let mut channel = Channel::with_options(&mut card, ChannelOptions::default());
    group.throughput(Throughput::Bytes(1200));
    group.bench_function("channel_chaining_1200", |b| {
        b.iter(|| channel.transmit(black_box(&chained)))
    });
    group.finish();
}

fn ber_tlv(c: &mut Criterion) {
    let mut group = c.benchmark_group("tlv");
    let ard = application_related_data();
    group.throughput(Throughput::Bytes(ard.len() as u64));
    group.bench_function("find_nested_fingerprints", |b| {
        b.iter(|| tlv::find_nested(black_box(&ard), 0xC5))
    });
    group.bench_function("parse_all_top_level", |b| b.iter(|| tlv::parse(black_box(&ard)).count()));
    group.bench_function("write_application_related_data", |b| b.iter(application_related_data));
    group.finish();
}

fn key_encodings(c: &mut Criterion) {
    let mut group = c.benchmark_group("key");
    let n = [0xC5u8; 512];
    let Ok(rsa) = PublicKey::rsa(&n, &[1, 0, 1]) else { panic!("a 4096-bit modulus is valid") };
    group.bench_function("spki_rsa4096", |b| b.iter(|| black_box(&rsa).to_spki_der()));
    group.bench_function("openssh_rsa4096", |b| b.iter(|| black_box(&rsa).to_openssh(None)));
    group.finish();
}

criterion_group!(benches, apdu, ber_tlv, key_encodings);
criterion_main!(benches);
