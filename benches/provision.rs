//! Wall time of one whole provisioning — reset, PINs, three keys, the card-signed
//! certificate, fingerprints, cardholder data — per algorithm, on the software card
//! in-process (`provision/softcard/…`; `benches/pcscd.rs` has the same through pcscd).
//! The APDU count of each profile is printed once before its measurement.
//!
//! `cargo bench --bench provision`. The reference implementation spends about 2.1 s of
//! host time per job (gpg key generation, ykman start-up); the goal for the ECC profile
//! is at least 50 times less, under 42 ms, APDUs included.
#![allow(clippy::print_stderr, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use keystation_core::key::RsaBits;
use keystation_keygen::SeededRandom;
use keystation_provision::{AlgorithmChoice, Holder, PinPlan, Profile, provision};
use keystation_softcard::{Identity, SoftCard};

/// 2026-11-23T00:00:00Z.
const NOW: u32 = 1_795_392_000;

fn provisioning(c: &mut Criterion) {
    let holder = Holder::new("Ada", "Lovelace", "ada@example.com").expect("valid holder");
    let profiles = [
        ("curve25519", AlgorithmChoice::Curve25519),
        ("nistp256", AlgorithmChoice::NistP256),
        ("nistp384", AlgorithmChoice::NistP384),
        ("rsa2048", AlgorithmChoice::Rsa(RsaBits::Rsa2048)),
    ];
    let mut group = c.benchmark_group("provision/softcard");
    for (name, algorithm) in profiles {
        if name.starts_with("rsa") {
            // On-card RSA generation dominates: a few samples say enough.
            group.sample_size(10);
        }
        let profile = Profile { algorithm, pins: PinPlan::Random, ..Profile::default() };
        let mut card = SoftCard::yubikey5(Identity::default(), Some(1));
        let mut rng = SeededRandom::from_u64(1);
        let done = provision(&mut card, &holder, &profile, NOW, &mut rng).expect("provisioning");
        eprintln!("provision/softcard/{name}: {} APDUs", done.apdus);
        group.bench_function(name, |b| {
            b.iter(|| provision(&mut card, &holder, black_box(&profile), NOW, &mut rng))
        });
    }
    group.finish();
}

criterion_group!(benches, provisioning);
criterion_main!(benches);
