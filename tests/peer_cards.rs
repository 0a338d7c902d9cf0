#![cfg(feature = "test-vpcd")]
//! keystation against card applications nobody on this project wrote: Nitrokey's opcard
//! (OpenPGP card 3.4) and piv-authenticator (PIV), each hosted in pcscd's vpcd reader by
//! the test-only adapters in `tests/peers/` (a separate workspace; see its README.md).
//!
//! ```text
//! peers=$(scripts/peer-cards --env) && eval "$peers"   # KEYSTATION_TEST_{OPCARD,PIV}_VPCD
//! scripts/with-pcscd cargo test --features test-vpcd --test peer_cards
//! ```
//!
//! Without `KEYSTATION_TEST_OPCARD_VPCD` / `KEYSTATION_TEST_PIV_VPCD` (the adapter binaries) or
//! `KEYSTATION_TEST_VPCD_PORT` (set by `scripts/with-pcscd`) the tests fail and say so.
//! The tests share the one vpcd reader and run one at a time (a static mutex).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/simulator.rs"]
mod simulator;

use keystation_core::{Card, Channel, Command, Le, StatusWord, Transaction, tlv};
use simulator::Simulator;

/// OpenPGP card application: RID `D2 76 00 01 24`, PIX application `01` (OpenPGP card 3.4
/// §4.2.1).
const OPENPGP_AID: [u8; 6] = [0xD2, 0x76, 0x00, 0x01, 0x24, 0x01];

/// Nitrokey's manufacturer ID in the OpenPGP AID (bytes 8 and 9, OpenPGP card 3.4 §4.2.1),
/// which the adapter gives opcard as Nitrokey's firmware does.
const NITROKEY: [u8; 2] = [0x00, 0x0F];

/// keystation's `card list` report of the card's reader.
fn card_list(card: &Simulator) -> String {
    let mut out = Vec::new();
    keystation::cards::list(Some(&card.reader), &mut out).expect("card list");
    String::from_utf8(out).expect("UTF-8 output")
}

fn select(aid: &[u8]) -> Command {
    Command::new(0x00, 0xA4, 0x04, 0x00).with_data(aid)
}

/// GET DATA of a data object (OpenPGP card 3.4 §7.2.6).
fn get_data(tag: u16) -> Command {
    let [p1, p2] = tag.to_be_bytes();
    Command::new(0x00, 0xCA, p1, p2).with_le(Le::Max)
}

#[test]
fn opcard_application_related_data_through_channel() {
    let opcard = Simulator::start_peer("KEYSTATION_TEST_OPCARD_VPCD", &[], false);
    let mut card = opcard.connect();
    let atr = card.atr().expect("the card has an ATR").to_vec();

    let mut transaction = Transaction::begin(&mut card).expect("begin transaction");
    let mut channel = Channel::new(transaction.card());
    let selected = channel.transmit(&select(&OPENPGP_AID)).expect("SELECT OpenPGP");
    assert_eq!(selected.status(), StatusWord::SUCCESS);

    // Application related data (OpenPGP card 3.4 §4.4.1, DO 6E). opcard answers the DO's
    // contents without the 6E wrapper; accept both forms.
    let related = channel.transmit_ok(&get_data(0x6E)).expect("GET DATA 6E");
    let related: &[u8] = match tlv::find(&related, 0x6E_u32).expect("parsing 6E") {
        Some(inner) => inner,
        None => &related,
    };
    let aid = tlv::require(related, 0x4F_u32).expect("DO 4F in 6E");
    assert_eq!(aid.len(), 16, "full AID: {aid:02X?}");
    assert_eq!(aid[..6], OPENPGP_AID, "RID and application: {aid:02X?}");
    assert_eq!(aid[6..8], [0x03, 0x04], "version 3.4: {aid:02X?}");
    assert_eq!(aid[8..10], NITROKEY, "Nitrokey's manufacturer ID: {aid:02X?}");

    // Historical bytes (DO 5F52, OpenPGP card 3.4 §6) agree with those in the ATR (T0's
    // low nibble counts them; they end before TCK).
    let historical = tlv::require(related, 0x5F52_u32).expect("DO 5F52 in 6E");
    let count = usize::from(atr[1] & 0x0F);
    assert_eq!(atr[atr.len() - 1 - count..atr.len() - 1], *historical, "ATR {atr:02X?}");

    // Discretionary data objects (DO 73) carry the key attributes: RSA 2048 for signing
    // by default (C1 = algorithm 01, modulus 0800 bits).
    let discretionary = tlv::require(related, 0x73_u32).expect("DO 73 in 6E");
    let signing = tlv::require(discretionary, 0xC1_u32).expect("DO C1 in 73");
    assert_eq!(signing[..3], [0x01, 0x08, 0x00], "{signing:02X?}");

    // The same AID through GET DATA 4F directly.
    let direct = channel.transmit_ok(&get_data(0x4F)).expect("GET DATA 4F");
    assert_eq!(*direct, *aid);
    drop(channel);
    transaction.end().expect("end transaction");
    drop(card);

    // keystation's own report of the card.
    let output = card_list(&opcard);
    let serial: String = aid[10..14].iter().map(|b| format!("{b:02X}")).collect();
    let expected = format!("  applications: OpenPGP 3.4 (serial {serial}, Nitrokey)");
    assert!(output.lines().any(|line| line == expected), "{expected:?} missing:\n{output}");
    drop(opcard);
}

/// The PIV application's AID truncated to RID and PIX without the version, as SP 800-73-4
/// part 1 §2.2 lets clients select it.
const PIV_AID: [u8; 9] = [0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00];

/// GET DATA of a PIV data object (SP 800-73-4 part 2 §3.1.2): `00 CB 3F FF` with the
/// tag list `5C`.
fn piv_get_data(tag: [u8; 3]) -> Command {
    Command::new(0x00, 0xCB, 0x3F, 0xFF)
        .with_data(&[0x5C, 0x03, tag[0], tag[1], tag[2]])
        .with_le(Le::Max)
}

#[test]
fn piv_authenticator_select_and_chuid_through_channel() {
    let piv = Simulator::start_peer("KEYSTATION_TEST_PIV_VPCD", &[], false);
    let mut card = piv.connect();
    let mut transaction = Transaction::begin(&mut card).expect("begin transaction");
    let mut channel = Channel::new(transaction.card());

    // The published applet wants at least the 9-byte AID; the RID alone is not found.
    let rid_only = channel.transmit(&select(&PIV_AID[..5])).expect("SELECT by RID");
    assert_eq!(rid_only.status(), StatusWord::NOT_FOUND);

    // SELECT answers the application property template (SP 800-73-4 part 2 §3.1.1).
    let selected = channel.transmit_ok(&select(&PIV_AID)).expect("SELECT PIV");
    let template = tlv::require(&selected, 0x61_u32).expect("template 61");
    let application = tlv::require(template, 0x4F_u32).expect("DO 4F in 61");
    assert!(application.starts_with(&PIV_AID[5..]), "{application:02X?}");

    // The CHUID (tag 5FC102) carries a 16-byte card UUID in 34 (SP 800-73-4 part 1 §3.1.2).
    let chuid = channel.transmit_ok(&piv_get_data([0x5F, 0xC1, 0x02])).expect("GET DATA CHUID");
    let chuid = tlv::require(&chuid, 0x53_u32).expect("CHUID in 53");
    assert_eq!(tlv::require(chuid, 0x34_u32).expect("GUID 34").len(), 16, "{chuid:02X?}");
    drop(channel);
    transaction.end().expect("end transaction");
    drop(card);
    drop(piv);

    // keystation's probe selects PIV by the RID alone, as YubiKeys accept it, and falls
    // back to the 9-byte AID every PIV card must accept, which finds this card.
    let piv = Simulator::start_peer("KEYSTATION_TEST_PIV_VPCD", &[], false);
    let output = card_list(&piv);
    assert!(output.lines().any(|line| line == "  applications: PIV"), "{output}");
    drop(piv);
}
