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
//! What the card conformance suite (tests/card_conformance.rs) checks on these cards —
//! the application data through keystation-core's `Channel`, PINs, keys — is not repeated
//! here: this is keystation's own report of them (`card list`).
//!
//! Without `KEYSTATION_TEST_OPCARD_VPCD` / `KEYSTATION_TEST_PIV_VPCD` (the adapter binaries) or
//! `KEYSTATION_TEST_VPCD_PORT` (set by `scripts/with-pcscd`) the tests fail and say so.
//! The tests share the one vpcd reader and run one at a time (a static mutex).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/simulator.rs"]
mod simulator;

use simulator::Simulator;

/// keystation's `card list` report of the card's reader.
fn card_list(card: &Simulator) -> String {
    let mut out = Vec::new();
    keystation_cards::list(Some(&card.reader), &mut out).expect("card list");
    String::from_utf8(out).expect("UTF-8 output")
}

#[test]
fn opcard_in_card_list() {
    let opcard = Simulator::start_peer("KEYSTATION_TEST_OPCARD_VPCD", &[], false);
    // The serial and Nitrokey's manufacturer ID in the AID are checked by the conformance
    // suite (tests/card_conformance.rs).
    let output = card_list(&opcard);
    let expected = "  applications: OpenPGP 3.4 (serial 00000001, Nitrokey)";
    assert!(output.lines().any(|line| line == expected), "{expected:?} missing:\n{output}");
    drop(opcard);
}

#[test]
fn piv_authenticator_in_card_list() {
    // keystation's probe selects PIV by the RID alone, as YubiKeys accept it (this card
    // does not: the conformance suite checks its 6A82), and falls back to the 9-byte AID
    // every PIV card must accept, which finds this card.
    let piv = Simulator::start_peer("KEYSTATION_TEST_PIV_VPCD", &[], false);
    let output = card_list(&piv);
    assert!(output.lines().any(|line| line == "  applications: PIV"), "{output}");
    drop(piv);
}
