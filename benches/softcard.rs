//! The software card in-process: latency of one APDU, and signatures per second per
//! algorithm through the OpenPGP applet (PSO: COMPUTE DIGITAL SIGNATURE).
//!
//! `cargo bench --bench softcard` (feature `softcard`, on by default). The same card
//! through pcscd + vpcd is `benches/pcscd.rs`.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

use keystation_core::{Channel, Command, Le};
use keystation_softcard::{Identity, SoftCard};

const OPENPGP_AID: &[u8] = &[0xD2, 0x76, 0x00, 0x01, 0x24, 0x01];

fn ok(channel: &mut Channel<'_>, command: &Command) -> Vec<u8> {
    match channel.transmit_ok(command) {
        Ok(data) => data.to_vec(),
        Err(e) => panic!("{command}: {e}"),
    }
}

/// A card with the OpenPGP applet selected.
fn selected_card() -> SoftCard {
    let mut card = SoftCard::yubikey5(Identity::default(), Some(7));
    ok(&mut Channel::new(&mut card), &Command::new(0, 0xA4, 4, 0).with_data(OPENPGP_AID));
    card
}

fn apdu_latency(c: &mut Criterion) {
    let mut card = selected_card();
    let mut channel = Channel::new(&mut card);
    let get_ard = Command::new(0, 0xCA, 0, 0x6E).with_le(Le::Max);
    c.bench_function("softcard/get_data_6e", |b| b.iter(|| channel.transmit(black_box(&get_ard))));
    let verify_status = Command::new(0, 0x20, 0, 0x81);
    c.bench_function("softcard/verify_status", |b| {
        b.iter(|| channel.transmit(black_box(&verify_status)))
    });
}

fn signatures(c: &mut Criterion) {
    // Algorithm attributes (OpenPGP card 3.4 §4.4.3.10) and the input PSO:CDS signs.
    let digest_info_sha256: Vec<u8> = {
        let mut d = vec![
            0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ];
        d.extend_from_slice(&[0x5A; 32]);
        d
    };
    let cases: [(&str, Vec<u8>, Vec<u8>); 4] = [
        ("rsa2048", vec![0x01, 0x08, 0x00, 0x00, 0x11, 0x00], digest_info_sha256),
        ("nistp256", vec![0x13, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07], vec![0x5A; 32]),
        ("nistp384", vec![0x13, 0x2B, 0x81, 0x04, 0x00, 0x22], vec![0x5A; 48]),
        (
            "ed25519",
            vec![0x16, 0x2B, 0x06, 0x01, 0x04, 0x01, 0xDA, 0x47, 0x0F, 0x01],
            vec![0x5A; 32],
        ),
    ];
    let mut group = c.benchmark_group("softcard/sign");
    for (name, attributes, input) in cases {
        let mut card = selected_card();
        let mut channel = Channel::new(&mut card);
        ok(&mut channel, &Command::new(0, 0x20, 0, 0x83).with_data(b"12345678"));
        ok(&mut channel, &Command::new(0, 0xDA, 0, 0xC1).with_data(&attributes));
        ok(&mut channel, &Command::new(0, 0x47, 0x80, 0).with_data(&[0xB6, 0x00]).with_le(Le::Max));
        ok(&mut channel, &Command::new(0, 0x20, 0, 0x81).with_data(b"123456"));
        let sign = Command::new(0, 0x2A, 0x9E, 0x9A).with_data(&input).with_le(Le::Max);
        // PW1 stays verified for several signatures (factory PW1 status byte 01), so every
        // iteration really signs; check that once.
        ok(&mut channel, &sign);
        ok(&mut channel, &sign);
        group.bench_function(name, |b| b.iter(|| channel.transmit(black_box(&sign))));
    }
    group.finish();
}

criterion_group!(benches, apdu_latency, signatures);
criterion_main!(benches);
