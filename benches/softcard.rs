//! The software card in-process: latency of one APDU, and signatures per second per
//! algorithm through the OpenPGP applet (PSO: COMPUTE DIGITAL SIGNATURE).
//!
//! `cargo bench --bench softcard` (feature `softcard`, on by default). The same card
//! through pcscd + vpcd is `benches/pcscd.rs`.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

use keystation_core::{Channel, Command, Le};
use keystation_softcard::{Identity, SoftCard};

mod common;
use common::{OPENPGP_AID, ok};

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
    let mut group = c.benchmark_group("softcard/sign");
    for (name, attributes, input) in common::signature_cases() {
        let mut card = selected_card();
        let mut channel = Channel::new(&mut card);
        let sign = common::signature_key(&mut channel, &attributes, &input);
        group.bench_function(name, |b| b.iter(|| channel.transmit(black_box(&sign))));
    }
    group.finish();
}

criterion_group!(benches, apdu_latency, signatures);
criterion_main!(benches);
