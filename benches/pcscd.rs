//! The software card through the whole PC/SC stack: keystation-pcsc → libpcsclite →
//! pcscd → vpcd → `keystation simulate`'s bridge (in this process) → the software card.
//! Per-APDU latency and signatures per second, to set against `benches/softcard.rs`
//! (the same card in-process).
//!
//! It needs the private pcscd with the vpcd reader that `scripts/with-pcscd` starts:
//!
//! ```sh
//! scripts/with-pcscd cargo bench --features test-vpcd --bench pcscd
//! ```
//!
//! Without it the bench stops at once with that hint.
#![allow(clippy::print_stderr, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use keystation_core::{Channel, Command, Le};
use keystation_pcsc::{PcscCard, PcscContext, ShareMode};
use keystation_softcard::bridge as simulate;

mod common;
use common::{OPENPGP_AID, ok};

/// The bridge serving a software card on the vpcd reader, stopped when dropped.
struct Bridge {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts the bridge and connects to the card through pcscd.
fn connect() -> (Bridge, PcscCard) {
    let hint = "run under the private pcscd: \
                scripts/with-pcscd cargo bench --features test-vpcd --bench pcscd";
    let port = std::env::var("KEYSTATION_TEST_VPCD_PORT").unwrap_or_else(|_| panic!("{hint}"));
    let reader = std::env::var("KEYSTATION_TEST_VPCD_READER").unwrap_or_else(|_| panic!("{hint}"));
    let context = PcscContext::establish().unwrap_or_else(|e| panic!("pcscd: {e}; {hint}"));
    // Another benchmark's card may still be leaving the reader.
    common::wait_for_card(&context, &reader, false);
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let stop = Arc::clone(&stop);
        let options = simulate::Options {
            vpcd: format!("127.0.0.1:{port}"),
            seed: Some(1),
            ..simulate::Options::default()
        };
        std::thread::spawn(move || {
            let mut card = simulate::card(&options);
            simulate::serve_until(&options.vpcd, &mut card, None, &stop);
        })
    };
    let bridge = Bridge { stop, thread: Some(thread) };
    common::wait_for_card(&context, &reader, true);
    let card = context.connect(&reader, ShareMode::Exclusive).unwrap_or_else(|e| panic!("{e}"));
    (bridge, card)
}

/// One bridge and one PC/SC connection for every measurement (pcscd needs a moment to
/// see a card come and go).
fn pcscd(c: &mut Criterion) {
    let (_bridge, mut card) = connect();
    apdus_and_signatures(c, &mut card);
    provisioning(c, &mut card);
}

fn apdus_and_signatures(c: &mut Criterion, card: &mut PcscCard) {
    let mut channel = Channel::new(card);
    ok(&mut channel, &Command::new(0, 0xA4, 4, 0).with_data(OPENPGP_AID));
    let get_ard = Command::new(0, 0xCA, 0, 0x6E).with_le(Le::Max);
    c.bench_function("pcscd/get_data_6e", |b| b.iter(|| channel.transmit(black_box(&get_ard))));
    let verify_status = Command::new(0, 0x20, 0, 0x81);
    c.bench_function("pcscd/verify_status", |b| {
        b.iter(|| channel.transmit(black_box(&verify_status)))
    });

    let mut group = c.benchmark_group("pcscd/sign");
    for (name, attributes, input) in common::signature_cases() {
        let sign = common::signature_key(&mut channel, &attributes, &input);
        group.bench_function(name, |b| b.iter(|| channel.transmit(black_box(&sign))));
    }
    group.finish();
}

/// Whole provisionings through pcscd, per ECC profile (RSA's on-card generation is the
/// same as in-process; see `benches/provision.rs`).
fn provisioning(c: &mut Criterion, card: &mut PcscCard) {
    use keystation_provision::{AlgorithmChoice, Holder, PinPlan, Profile, provision};
    let holder = Holder::new("Ada", "Lovelace", "ada@example.com").expect("valid holder");
    let mut rng = keystation_keygen::SeededRandom::from_u64(2);
    let mut group = c.benchmark_group("pcscd/provision");
    group.sample_size(20);
    for (name, algorithm) in
        [("curve25519", AlgorithmChoice::Curve25519), ("nistp256", AlgorithmChoice::NistP256)]
    {
        let profile = Profile { algorithm, pins: PinPlan::Random, ..Profile::default() };
        let done =
            provision(card, &holder, &profile, 1_795_392_000, &mut rng).expect("provisioning");
        eprintln!("pcscd/provision/{name}: {} APDUs", done.apdus);
        group.bench_function(name, |b| {
            b.iter(|| provision(card, &holder, &profile, 1_795_392_000, &mut rng))
        });
    }
    group.finish();
}

criterion_group!(benches, pcscd);
criterion_main!(benches);
