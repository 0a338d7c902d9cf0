#![cfg(feature = "test-vpcd")]
//! The PC/SC transport against a real pcscd: a private pcscd with vsmartcard's vpcd reader
//! (started by `scripts/with-pcscd`) and this test's own virtual card
//! (`tests/support/vpcd_card.rs`).
//!
//! ```text
//! scripts/with-pcscd cargo test --features test-vpcd --test vpcd_transport
//! ```
//!
//! Without `KEYSTATION_TEST_VPCD_PORT` (set by the script) every test fails and says so. The
//! tests share the one vpcd reader and run one at a time (a static mutex); each one
//! inserts the card, and removes it when done.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use keystation_core::{Card, Channel, Command, StatusWord, Transaction, TransportFailure};
use keystation_pcsc::{Disposition, PcscCard, PcscContext, ReaderEvent, ReaderInfo, ShareMode};
use support::vpcd_card::{self, Received, VirtualCard};

/// Upper bound for anything pcscd has to notice (it polls vpcd every 400 ms).
const TIMEOUT: Duration = Duration::from_secs(15);

/// The reader name `scripts/with-pcscd` configures, if it does not say otherwise.
const DEFAULT_READER: &str = "Yubico YubiKey OTP+FIDO+CCID 00 00";

/// Serialises the tests: they share one pcscd and one vpcd reader.
static VPCD: Mutex<()> = Mutex::new(());

/// One test's hold on the shared vpcd reader.
struct Vpcd {
    _serial: MutexGuard<'static, ()>,
    port: u16,
    reader: String,
    context: PcscContext,
}

/// Takes the vpcd reader for one test, after the previous test's card is gone.
fn vpcd() -> Vpcd {
    let serial = VPCD.lock().unwrap_or_else(PoisonError::into_inner);
    let Ok(port) = std::env::var("KEYSTATION_TEST_VPCD_PORT") else {
        panic!(
            "KEYSTATION_TEST_VPCD_PORT is not set. These tests need a private pcscd with the vpcd \
             reader; run them through scripts/with-pcscd:\n    \
             scripts/with-pcscd cargo test --features test-vpcd --test vpcd_transport"
        );
    };
    let port = port
        .parse()
        .unwrap_or_else(|_| panic!("KEYSTATION_TEST_VPCD_PORT={port:?} is not a TCP port number"));
    let reader =
        std::env::var("KEYSTATION_TEST_VPCD_READER").unwrap_or_else(|_| DEFAULT_READER.into());
    let context = PcscContext::establish().unwrap_or_else(|e| {
        panic!("no pcscd at PCSCLITE_CSOCK_NAME (run through scripts/with-pcscd): {e}")
    });
    let vpcd = Vpcd { _serial: serial, port, reader, context };
    vpcd.wait_for_card(false);
    vpcd
}

impl Vpcd {
    /// Inserts the virtual card and waits until pcscd reports it.
    fn insert(&self) -> VirtualCard {
        let card = VirtualCard::insert(self.port, TIMEOUT).expect("connecting to vpcd");
        self.wait_for_card(true);
        card
    }

    /// Polls the reader list until the reader's card is present (or absent).
    fn wait_for_card(&self, present: bool) -> ReaderInfo {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let readers = self.context.readers().expect("listing readers");
            let reader = readers.iter().find(|r| r.name == self.reader);
            match reader {
                Some(info) if info.card_present == present => return info.clone(),
                _ if Instant::now() > deadline => panic!(
                    "reader {:?} did not report the card {} within {TIMEOUT:?}; readers: {readers:?}",
                    self.reader,
                    if present { "present" } else { "absent" },
                ),
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn connect(&self, mode: ShareMode) -> PcscCard {
        self.context.connect(&self.reader, mode).expect("connecting to the virtual card")
    }

    /// The next monitor event for this test's reader, skipping other readers' events.
    fn next_event(&self, monitor: &mut keystation_pcsc::ReaderMonitor) -> ReaderEvent {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = monitor.wait_for_change(left).expect("waiting for a reader event");
            match &event {
                ReaderEvent::Timeout => panic!("no event for {:?} within {TIMEOUT:?}", self.reader),
                ReaderEvent::CardInserted { reader, .. }
                | ReaderEvent::CardRemoved { reader }
                | ReaderEvent::ReaderAdded { reader }
                | ReaderEvent::ReaderRemoved { reader }
                    if *reader == self.reader =>
                {
                    return event;
                }
                _ => {}
            }
        }
    }
}

/// SELECT by DF name (ISO/IEC 7816-4 §11.2.2).
fn select(aid: &[u8]) -> Command {
    Command::new(0x00, 0xA4, 0x04, 0x00).with_data(aid)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(" ")
}

/// The lines of `reader`'s block in `card list` output.
fn block<'a>(output: &'a str, reader: &str) -> Vec<&'a str> {
    let mut lines = output.lines().skip_while(|line| *line != reader);
    let Some(first) = lines.next() else {
        panic!("reader {reader:?} missing from card list output:\n{output}");
    };
    std::iter::once(first).chain(lines.take_while(|line| !line.is_empty())).collect()
}

/// Checks `card list` output for the virtual card in the test's reader.
fn assert_lists_virtual_card(output: &str, reader: &str) {
    let expected = [
        reader.to_owned(),
        "  card: present".to_owned(),
        format!("  ATR:  {}", hex(&vpcd_card::ATR)),
        "  applications: OpenPGP 3.4 (serial 12345678, manufacturer FFFE)".to_owned(),
    ];
    assert_eq!(block(output, reader), expected, "card list output:\n{output}");
}

#[test]
fn card_list_shows_the_virtual_card() {
    let vpcd = vpcd();
    let card = vpcd.insert();

    let mut out = Vec::new();
    keystation_cards::list(None, &mut out).expect("card list");
    let output = String::from_utf8(out).expect("UTF-8 output");
    assert_lists_virtual_card(&output, &vpcd.reader);
    // The second vpcd reader has no card.
    let other = std::env::var("KEYSTATION_TEST_VPCD_READER2")
        .expect("KEYSTATION_TEST_VPCD_READER2 is not set: run through scripts/with-pcscd");
    assert_eq!(block(&output, &other), [other.as_str(), "  card: absent"]);

    // The filter keeps only matching readers, ignoring case.
    let mut out = Vec::new();
    keystation_cards::list(Some(&vpcd.reader.to_lowercase()), &mut out).expect("card list");
    let filtered = String::from_utf8(out).expect("UTF-8 output");
    assert_lists_virtual_card(&filtered, &vpcd.reader);
    assert_eq!(filtered.lines().filter(|l| !l.starts_with("  ")).count(), 1, "{filtered}");

    let mut out = Vec::new();
    keystation_cards::list(Some("no such reader"), &mut out).expect("card list");
    let none = String::from_utf8(out).expect("UTF-8 output");
    assert!(none.starts_with("No reader matches \"no such reader\""), "{none}");

    // Probing selected the four applications in one shared-mode transaction.
    let selects = card
        .received()
        .into_iter()
        .filter(|r| matches!(r, Received::Apdu(apdu) if apdu.get(1) == Some(&0xA4)))
        .count();
    assert!(selects >= 4, "{:?}", card.received());
    card.remove().expect("removing the card");
}

#[test]
fn card_list_binary_shows_the_virtual_card() {
    let vpcd = vpcd();
    let card = vpcd.insert();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_keystation"))
        .args(["card", "list"])
        .output()
        .expect("running the keystation binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "keystation card list failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_lists_virtual_card(&stdout, &vpcd.reader);
    card.remove().expect("removing the card");
}

#[test]
fn select_round_trip_sharing_and_reset() {
    let vpcd = vpcd();
    let virtual_card = vpcd.insert();

    // Exclusive: the ATR is the virtual card's, nobody else gets in.
    let mut card = vpcd.connect(ShareMode::Exclusive);
    assert_eq!(card.atr(), Some(&vpcd_card::ATR[..]));
    let refused = vpcd.context.connect(&vpcd.reader, ShareMode::Shared).err();
    assert_eq!(
        refused.and_then(|e| e.transport_failure()),
        Some(TransportFailure::SharingViolation)
    );
    {
        let mut transaction = Transaction::begin(&mut card).expect("begin transaction");
        let mut channel = Channel::new(transaction.card());
        let response = channel.transmit(&select(&vpcd_card::OPENPGP_RID_PIX)).expect("SELECT");
        assert_eq!(response.status(), StatusWord::SUCCESS);
        assert_eq!(response.data(), vpcd_card::SELECT_RESPONSE);
        let response = channel.transmit(&select(&[0xA0, 0x00, 0x00, 0x00, 0x01])).expect("SELECT");
        assert_eq!(response.status(), StatusWord::NOT_FOUND);
        assert!(response.data().is_empty());
        drop(channel);
        transaction.end().expect("end transaction");
    }
    assert!(virtual_card.received().contains(&Received::Apdu(vec![
        0x00, 0xA4, 0x04, 0x00, 0x06, 0xD2, 0x76, 0x00, 0x01, 0x24, 0x01
    ])));
    card.disconnect(Disposition::Leave).expect("disconnect");

    // Shared: two connections; one resets the card, the other notices once and recovers.
    let mut first = vpcd.connect(ShareMode::Shared);
    let second = vpcd.connect(ShareMode::Shared);
    let mut buffer = [0u8; 258];
    let apdu = select(&vpcd_card::OPENPGP_RID_PIX).encode().expect("encode");
    assert_eq!(
        first.transmit(&apdu, &mut buffer).map(|n| buffer[n - 2..n].to_vec()).ok(),
        Some(vec![0x90, 0x00])
    );
    let controls_before = virtual_card.received().len();
    second.disconnect(Disposition::Reset).expect("disconnect with reset");
    let after_reset = first.transmit(&apdu, &mut buffer).err();
    assert_eq!(after_reset.and_then(|e| e.transport_failure()), Some(TransportFailure::CardReset));
    assert!(first.take_reset(), "take_reset reports the reset");
    assert!(!first.take_reset(), "and clears it");
    assert_eq!(first.atr(), Some(&vpcd_card::ATR[..]));
    let n = first.transmit(&apdu, &mut buffer).expect("transmit after the reset");
    assert_eq!(buffer[n - 2..n], [0x90, 0x00]);
    let since = virtual_card.received().split_off(controls_before);
    assert!(
        since.iter().any(|r| matches!(r, Received::Control(0x00 | 0x02))),
        "vpcd should have reset or power-cycled the card: {since:?}"
    );
    // Transactions nest; only the outermost one ends the PC/SC transaction.
    first.begin_transaction().expect("begin");
    first.begin_transaction().expect("nested begin");
    first.end_transaction().expect("nested end");
    first.transmit(&apdu, &mut buffer).expect("transmit in the outer transaction");
    first.end_transaction().expect("end");
    first.end_transaction().expect("ending without a transaction does nothing");
    drop(first);
    virtual_card.remove().expect("removing the card");
}

#[test]
fn removal_and_reinsertion_are_seen() {
    let vpcd = vpcd();
    let virtual_card = vpcd.insert();
    let mut monitor = vpcd.context.monitor().expect("monitor");
    // pcsc-lite has the \\?PnP?\Notification pseudo-reader, so reader changes are seen too.
    assert!(format!("{monitor:?}").contains("pnp: true"), "{monitor:?}");
    let mut card = vpcd.connect(ShareMode::Shared);
    let mut buffer = [0u8; 258];
    let apdu = select(&vpcd_card::OPENPGP_RID_PIX).encode().expect("encode");
    card.transmit(&apdu, &mut buffer).expect("transmit before removal");

    // Removal: the monitor reports it and the old connection fails for good.
    let removed_at = Instant::now();
    virtual_card.remove().expect("removing the card");
    assert_eq!(
        vpcd.next_event(&mut monitor),
        ReaderEvent::CardRemoved { reader: vpcd.reader.clone() }
    );
    assert!(removed_at.elapsed() < TIMEOUT);
    for _ in 0..2 {
        let failure = card.transmit(&apdu, &mut buffer).err().and_then(|e| e.transport_failure());
        assert_eq!(failure, Some(TransportFailure::CardRemoved));
    }
    assert!(!card.take_reset());
    let no_card = vpcd.context.connect(&vpcd.reader, ShareMode::Shared).err();
    assert_eq!(no_card.and_then(|e| e.transport_failure()), Some(TransportFailure::NoCard));

    // Nothing else happens: the wait times out with a typed result.
    let started = Instant::now();
    assert_eq!(
        monitor.wait_for_change(Duration::from_millis(300)).expect("wait"),
        ReaderEvent::Timeout
    );
    assert!(started.elapsed() >= Duration::from_millis(250));

    // Re-insertion.
    let virtual_card = VirtualCard::insert(vpcd.port, TIMEOUT).expect("reconnecting to vpcd");
    assert_eq!(
        vpcd.next_event(&mut monitor),
        ReaderEvent::CardInserted { reader: vpcd.reader.clone(), atr: vpcd_card::ATR.to_vec() }
    );
    let failure = card.transmit(&apdu, &mut buffer).err().and_then(|e| e.transport_failure());
    assert_eq!(failure, Some(TransportFailure::CardRemoved), "the old connection stays dead");
    drop(card);
    let mut card = vpcd.connect(ShareMode::Shared);
    let n = card.transmit(&apdu, &mut buffer).expect("transmit after re-insertion");
    assert_eq!(buffer[n - 2..n], [0x90, 0x00]);
    drop(card);
    virtual_card.remove().expect("removing the card");
}

#[test]
fn unknown_reader_is_reported_as_such() {
    let vpcd = vpcd();
    let missing = vpcd.context.connect("No Such Reader 00 00", ShareMode::Shared).err();
    assert_eq!(missing.and_then(|e| e.transport_failure()), Some(TransportFailure::UnknownReader));
    let empty = vpcd.context.connect(&vpcd.reader, ShareMode::Shared).err();
    assert_eq!(empty.and_then(|e| e.transport_failure()), Some(TransportFailure::NoCard));
}
