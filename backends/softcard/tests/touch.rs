//! Touch policies are enforced: PIV slot touch policies (`AB` of GENERATE), the PIV
//! management key's touch flag (SET MANAGEMENT KEY P2 `FE`), and OpenPGP's user
//! interaction flags (`D6`–`D8`). The simulated user touches at once, later, or never.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use keystation_core::{Channel, Command, Le, StatusWord, tlv};
use keystation_softcard::{Identity, SoftCard, TouchResponse};

const PIV_AID: [u8; 5] = [0xA0, 0, 0, 3, 8];
const OPENPGP_AID: [u8; 6] = [0xD2, 0x76, 0x00, 0x01, 0x24, 0x01];
const MGMT_3DES: [u8; 24] =
    [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8];
/// PIV algorithm byte of P-256, touch policy bytes.
const P256: u8 = 0x11;
const TOUCH_NEVER: u8 = 0x01;
const TOUCH_ALWAYS: u8 = 0x02;
const TOUCH_CACHED: u8 = 0x03;

fn send(card: &mut SoftCard, ins: u8, p1: u8, p2: u8, data: &[u8]) -> (Vec<u8>, StatusWord) {
    let mut command = Command::new(0, ins, p1, p2).with_le(Le::Max);
    if !data.is_empty() {
        command = command.with_data(data);
    }
    let response = Channel::new(card).transmit(&command).expect("software card transport");
    (response.data().to_vec(), response.status())
}

fn ok(card: &mut SoftCard, ins: u8, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
    let (out, sw) = send(card, ins, p1, p2, data);
    assert_eq!(sw, StatusWord::SUCCESS, "INS {ins:02X} P1 {p1:02X} P2 {p2:02X}");
    out
}

/// External management key authentication with the factory 3DES key: asks for a
/// challenge, answers it; returns the status of the answer.
fn piv_external_authenticate(card: &mut SoftCard) -> StatusWord {
    use des::cipher::{BlockEncrypt, KeyInit};
    let data = ok(card, 0x87, 0x03, 0x9B, &[0x7C, 0x02, 0x81, 0x00]);
    let challenge = tlv::find(tlv::find(&data, 0x7C).unwrap().unwrap(), 0x81).unwrap().unwrap();
    let cipher = des::TdesEde3::new_from_slice(&MGMT_3DES).unwrap();
    let mut block = des::cipher::Block::<des::TdesEde3>::default();
    block.copy_from_slice(challenge);
    cipher.encrypt_block(&mut block);
    let mut body = vec![0x7C, 0x0A, 0x82, 0x08];
    body.extend_from_slice(&block);
    send(card, 0x87, 0x03, 0x9B, &body).1
}

fn piv_admin(card: &mut SoftCard) {
    assert_eq!(piv_external_authenticate(card), StatusWord::SUCCESS, "management key");
}

/// A PIV card with a P-256 key in 9E (PIN policy never) with this touch policy.
fn piv_card_with_key(touch: u8) -> SoftCard {
    let mut card = SoftCard::yubikey5(Identity::default(), Some(3));
    ok(&mut card, 0xA4, 0x04, 0x00, &PIV_AID);
    piv_admin(&mut card);
    let template = [0xAC, 0x09, 0x80, 0x01, P256, 0xAA, 0x01, 0x01, 0xAB, 0x01, touch];
    ok(&mut card, 0x47, 0x00, 0x9E, &template);
    card
}

fn piv_sign(card: &mut SoftCard) -> StatusWord {
    let mut body = Vec::new();
    tlv::write_constructed(&mut body, 0x7C, |o| {
        tlv::write(o, 0x82, &[]);
        tlv::write(o, 0x81, &[0x5A; 32]);
    });
    send(card, 0x87, P256, 0x9E, &body).1
}

#[test]
fn piv_touch_never_asks_for_no_touch() {
    let mut card = piv_card_with_key(TOUCH_NEVER);
    card.set_touch(TouchResponse::Never);
    assert_eq!(piv_sign(&mut card), StatusWord::SUCCESS);
    assert_eq!(card.touch_requests(), 0);
}

#[test]
fn piv_touch_always_asks_every_time_and_fails_without_a_touch() {
    let mut card = piv_card_with_key(TOUCH_ALWAYS);
    assert_eq!(piv_sign(&mut card), StatusWord::SUCCESS);
    assert_eq!(piv_sign(&mut card), StatusWord::SUCCESS);
    assert_eq!(card.touch_requests(), 2, "one touch per signature");
    card.set_touch(TouchResponse::Never);
    assert_eq!(piv_sign(&mut card), StatusWord::SECURITY_STATUS_NOT_SATISFIED);
    assert_eq!(card.touch_requests(), 3);
}

#[test]
fn piv_touch_cached_accepts_one_touch_for_a_while_and_a_power_cycle_forgets_it() {
    let mut card = piv_card_with_key(TOUCH_CACHED);
    assert_eq!(piv_sign(&mut card), StatusWord::SUCCESS);
    card.set_touch(TouchResponse::Never);
    assert_eq!(piv_sign(&mut card), StatusWord::SUCCESS, "the cached touch serves");
    assert_eq!(card.touch_requests(), 1);
    card.power_cycle();
    ok(&mut card, 0xA4, 0x04, 0x00, &PIV_AID);
    assert_eq!(piv_sign(&mut card), StatusWord::SECURITY_STATUS_NOT_SATISFIED);
}

#[test]
fn a_slow_touch_delays_the_answer() {
    let mut card = piv_card_with_key(TOUCH_ALWAYS);
    card.set_touch(TouchResponse::After(Duration::from_millis(50)));
    let started = std::time::Instant::now();
    assert_eq!(piv_sign(&mut card), StatusWord::SUCCESS);
    assert!(started.elapsed() >= Duration::from_millis(50));
}

#[test]
fn piv_management_key_with_touch_needs_a_touch_to_authenticate() {
    let mut card = SoftCard::yubikey5(Identity::default(), Some(4));
    ok(&mut card, 0xA4, 0x04, 0x00, &PIV_AID);
    piv_admin(&mut card);
    // SET MANAGEMENT KEY, same 3DES key, P2 FE: touch required.
    let mut data = vec![0x03, 0x9B, 24];
    data.extend_from_slice(&MGMT_3DES);
    ok(&mut card, 0xFF, 0xFF, 0xFE, &data);
    assert_eq!(card.touch_requests(), 0);
    piv_admin(&mut card);
    assert_eq!(card.touch_requests(), 1);
    // The right answer without a touch is refused.
    card.set_touch(TouchResponse::Never);
    assert_eq!(piv_external_authenticate(&mut card), StatusWord::SECURITY_STATUS_NOT_SATISFIED);
}

/// An OpenPGP card with Ed25519 signature and authentication keys and an X25519
/// decryption key, PW1 verified for both uses.
fn openpgp_card() -> SoftCard {
    let mut card = SoftCard::yubikey5(Identity::default(), Some(5));
    ok(&mut card, 0xA4, 0x04, 0x00, &OPENPGP_AID);
    ok(&mut card, 0x20, 0x00, 0x83, b"12345678");
    let ed25519 = [0x16, 0x2B, 0x06, 0x01, 0x04, 0x01, 0xDA, 0x47, 0x0F, 0x01];
    ok(&mut card, 0xDA, 0x00, 0xC1, &ed25519);
    ok(&mut card, 0xDA, 0x00, 0xC3, &ed25519);
    for crt in [0xB6, 0xA4] {
        ok(&mut card, 0x47, 0x80, 0x00, &[crt, 0x00]);
    }
    ok(&mut card, 0x20, 0x00, 0x81, b"123456");
    ok(&mut card, 0x20, 0x00, 0x82, b"123456");
    card
}

#[test]
fn openpgp_uif_on_asks_for_a_touch_per_signature() {
    let mut card = openpgp_card();
    // Signature key UIF on (D6), authentication key UIF off.
    ok(&mut card, 0xDA, 0x00, 0xD6, &[0x01, 0x20]);
    // PW1 81 is valid for one signature (factory PW1 status 00): verify before each.
    ok(&mut card, 0x2A, 0x9E, 0x9A, b"message one");
    ok(&mut card, 0x20, 0x00, 0x81, b"123456");
    ok(&mut card, 0x2A, 0x9E, 0x9A, b"message two");
    ok(&mut card, 0x88, 0x00, 0x00, b"challenge");
    assert_eq!(card.touch_requests(), 2, "signatures only; the auth key has UIF off");
    card.set_touch(TouchResponse::Never);
    ok(&mut card, 0x20, 0x00, 0x81, b"123456");
    let (_, sw) = send(&mut card, 0x2A, 0x9E, 0x9A, b"message three");
    assert_eq!(sw, StatusWord::SECURITY_STATUS_NOT_SATISFIED);
    ok(&mut card, 0x88, 0x00, 0x00, b"challenge");
}

#[test]
fn openpgp_uif_cached_serves_a_second_authentication_without_a_touch() {
    let mut card = openpgp_card();
    ok(&mut card, 0xDA, 0x00, 0xD8, &[0x03, 0x20]);
    ok(&mut card, 0x88, 0x00, 0x00, b"first");
    card.set_touch(TouchResponse::Never);
    ok(&mut card, 0x88, 0x00, 0x00, b"second");
    assert_eq!(card.touch_requests(), 1);
}
