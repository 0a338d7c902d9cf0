//! Saving and restoring the software card's persistent state (`SoftCard::save_state` /
//! `SoftCard::restore_state`, behind `keystation simulate --state`): keys generated and
//! PINs changed on one card work on a fresh card the state is restored into.

#![allow(clippy::expect_used)]

use des::cipher::{BlockEncrypt, KeyInit};
use keystation_core::{Channel, Command, Le, StatusWord, tlv};
use keystation_softcard::{Identity, STATE_MAGIC, SoftCard, StateError};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use sha2::{Digest, Sha256};

const OPENPGP_AID: [u8; 6] = [0xD2, 0x76, 0x00, 0x01, 0x24, 0x01];
const PIV_AID: [u8; 5] = [0xA0, 0x00, 0x00, 0x03, 0x08];
const MGMT_AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x05, 0x27, 0x47, 0x11, 0x17];
const OID_P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const OID_ED25519: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0xDA, 0x47, 0x0F, 0x01];
const OID_X25519: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01];
const DEFAULT_MGMT: [u8; 24] =
    [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8];

fn card(seed: u64) -> SoftCard {
    SoftCard::yubikey5(Identity::default(), Some(seed))
}

fn send(card: &mut SoftCard, ins: u8, p1: u8, p2: u8, data: &[u8]) -> (Vec<u8>, StatusWord) {
    let mut command = Command::new(0, ins, p1, p2).with_le(Le::Max);
    if !data.is_empty() {
        command = command.with_data(data);
    }
    match Channel::new(card).transmit(&command) {
        Ok(response) => (response.data().to_vec(), response.status()),
        Err(e) => panic!("transport error: {e}"),
    }
}

fn ok(card: &mut SoftCard, ins: u8, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
    let (out, sw) = send(card, ins, p1, p2, data);
    assert_eq!(sw, StatusWord::SUCCESS, "INS {ins:02X} P1 {p1:02X} P2 {p2:02X}");
    out
}

fn nested(data: &[u8], tag: u32) -> Vec<u8> {
    match tlv::find_nested(data, tag) {
        Ok(Some(value)) => value.to_vec(),
        other => panic!("tag {tag:X} not found: {other:?}"),
    }
}

/// Saves `card` and restores the state into a fresh card (another random seed).
fn reincarnate(card: &SoftCard) -> SoftCard {
    let saved = card.save_state();
    assert!(saved.starts_with(STATE_MAGIC));
    let mut fresh = self::card(99);
    if let Err(e) = fresh.restore_state(&saved) {
        panic!("restore: {e}");
    }
    assert_eq!(*fresh.save_state(), *saved, "a restored card saves the same state");
    fresh
}

#[test]
fn openpgp_keys_pins_counters_and_data_survive() {
    let mut card = card(1);
    ok(&mut card, 0xA4, 4, 0, &OPENPGP_AID);
    ok(&mut card, 0x20, 0, 0x83, b"12345678");
    ok(&mut card, 0xDA, 0, 0xC1, &[&[0x13], OID_P256].concat());
    ok(&mut card, 0xDA, 0, 0xC2, &[&[0x12], OID_X25519].concat());
    ok(&mut card, 0xDA, 0, 0xC3, &[&[0x16], OID_ED25519].concat());
    let sig_public = nested(&ok(&mut card, 0x47, 0x80, 0, &[0xB6, 0x00]), 0x86);
    let dec_public = nested(&ok(&mut card, 0x47, 0x80, 0, &[0xB8, 0x00]), 0x86);
    let aut_public = nested(&ok(&mut card, 0x47, 0x80, 0, &[0xA4, 0x00]), 0x86);
    ok(&mut card, 0xDA, 0, 0xC7, &[0x11; 20]);
    ok(&mut card, 0xDA, 0, 0x5B, b"Tester<<Rehearsal");
    ok(&mut card, 0xDA, 0x5F, 0x50, b"https://example.test/key");
    ok(&mut card, 0xDA, 0, 0xD3, b"resetcode");
    ok(&mut card, 0x24, 0, 0x81, b"123456654321");
    ok(&mut card, 0x24, 0, 0x83, b"1234567887654321");
    ok(&mut card, 0x20, 0, 0x81, b"654321");
    let digest = Sha256::digest(b"before");
    ok(&mut card, 0x2A, 0x9E, 0x9A, &digest);
    // One wrong PW1 entry: the counter (2 of 3) must survive too.
    assert_eq!(send(&mut card, 0x20, 0, 0x82, b"000000").1, StatusWord(0x6982));

    let mut card = reincarnate(&card);
    ok(&mut card, 0xA4, 4, 0, &OPENPGP_AID);
    // Nothing is verified after the restore; the counters are as they were.
    assert_ne!(send(&mut card, 0x20, 0, 0x81, &[]).1, StatusWord::SUCCESS);
    let pw_status = ok(&mut card, 0xCA, 0, 0xC4, &[]);
    assert_eq!(&pw_status[4..], &[2, 3, 3]);
    assert_eq!(nested(&ok(&mut card, 0xCA, 0, 0x7A, &[]), 0x93), [0, 0, 1]);
    assert!(nested(&ok(&mut card, 0xCA, 0, 0x65, &[]), 0x5B).starts_with(b"Tester"));
    assert_eq!(ok(&mut card, 0xCA, 0x5F, 0x50, &[]), b"https://example.test/key");
    assert_eq!(&nested(&ok(&mut card, 0xCA, 0, 0x6E, &[]), 0xC5)[..20], &[0x11; 20]);
    // The old PINs are gone, the new ones work.
    assert_eq!(send(&mut card, 0x20, 0, 0x83, b"12345678").1, StatusWord(0x6982));
    ok(&mut card, 0x20, 0, 0x83, b"87654321");
    ok(&mut card, 0x20, 0, 0x81, b"654321");
    ok(&mut card, 0x20, 0, 0x82, b"654321");
    // The public keys read back are the generated ones, and the private keys sign.
    assert_eq!(nested(&ok(&mut card, 0x47, 0x81, 0, &[0xB6, 0x00]), 0x86), sig_public);
    assert_eq!(nested(&ok(&mut card, 0x47, 0x81, 0, &[0xB8, 0x00]), 0x86), dec_public);
    let digest = Sha256::digest(b"after restore");
    let signature = ok(&mut card, 0x2A, 0x9E, 0x9A, &digest);
    let verifying = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sig_public).expect("point");
    let signature = p256::ecdsa::Signature::from_slice(&signature).expect("r || s");
    assert!(verifying.verify_prehash(&digest, &signature).is_ok());
    let message = b"ssh authentication";
    let signature = ok(&mut card, 0x88, 0, 0, message);
    let verifying = ed25519_dalek::VerifyingKey::from_bytes(
        &<[u8; 32]>::try_from(aut_public.as_slice()).expect("32 bytes"),
    )
    .expect("Ed25519 point");
    let signature = ed25519_dalek::Signature::from_slice(&signature).expect("64 bytes");
    assert!(verifying.verify(message, &signature).is_ok());
    // The resetting code was restored: it resets PW1.
    ok(&mut card, 0x2C, 0, 0x81, b"resetcode111111");
    ok(&mut card, 0x20, 0, 0x81, b"111111");
}

#[test]
fn openpgp_rsa_key_survives() {
    use rsa::Pkcs1v15Sign;
    let mut card = card(2);
    ok(&mut card, 0xA4, 4, 0, &OPENPGP_AID);
    ok(&mut card, 0x20, 0, 0x83, b"12345678");
    let template = ok(&mut card, 0x47, 0x80, 0, &[0xB6, 0x00]);
    let n = rsa::BigUint::from_bytes_be(&nested(&template, 0x81));
    let e = rsa::BigUint::from_bytes_be(&nested(&template, 0x82));
    let public = rsa::RsaPublicKey::new(n, e).expect("RSA public key");
    let mut card = reincarnate(&card);
    ok(&mut card, 0xA4, 4, 0, &OPENPGP_AID);
    ok(&mut card, 0x20, 0, 0x81, b"123456");
    let digest = Sha256::digest(b"rsa after restore");
    let mut digest_info = vec![
        0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    digest_info.extend_from_slice(&digest);
    let signature = ok(&mut card, 0x2A, 0x9E, 0x9A, &digest_info);
    assert!(public.verify(Pkcs1v15Sign::new_unprefixed(), &digest_info, &signature).is_ok());
}

/// External management key authentication with the factory 3DES key.
fn piv_authenticate(card: &mut SoftCard) {
    let data = ok(card, 0x87, 0x03, 0x9B, &[0x7C, 0x02, 0x81, 0x00]);
    let challenge = nested(&data, 0x81);
    let cipher = des::TdesEde3::new_from_slice(&DEFAULT_MGMT).expect("key length");
    let mut block = des::cipher::Block::<des::TdesEde3>::default();
    block.copy_from_slice(&challenge);
    cipher.encrypt_block(&mut block);
    let mut body = vec![0x7C, 0x0A, 0x82, 0x08];
    body.extend_from_slice(&block);
    ok(card, 0x87, 0x03, 0x9B, &body);
}

#[test]
fn piv_key_pin_and_objects_survive() {
    let mut card = card(3);
    ok(&mut card, 0xA4, 4, 0, &PIV_AID);
    piv_authenticate(&mut card);
    let public = nested(&ok(&mut card, 0x47, 0, 0x9A, &[0xAC, 0x03, 0x80, 0x01, 0x11]), 0x86);
    let object = [0x5C, 0x03, 0x5F, 0xC1, 0x05, 0x53, 0x04, 0x70, 0x02, 0x01, 0x02];
    ok(&mut card, 0xDB, 0x3F, 0xFF, &object);
    ok(&mut card, 0x24, 0, 0x80, b"123456\xFF\xFF246800\xFF\xFF");
    assert_eq!(send(&mut card, 0x20, 0, 0x80, b"000000\xFF\xFF").1, StatusWord(0x63C2));

    let mut card = reincarnate(&card);
    ok(&mut card, 0xA4, 4, 0, &PIV_AID);
    assert_eq!(send(&mut card, 0x20, 0, 0x80, &[]).1, StatusWord(0x63C2));
    let read = ok(&mut card, 0xCB, 0x3F, 0xFF, &[0x5C, 0x03, 0x5F, 0xC1, 0x05]);
    assert_eq!(read, object[5..]);
    assert_eq!(send(&mut card, 0x20, 0, 0x80, b"123456\xFF\xFF").1, StatusWord(0x63C1));
    ok(&mut card, 0x20, 0, 0x80, b"246800\xFF\xFF");
    let digest = Sha256::digest(b"piv after restore");
    let mut body = Vec::new();
    tlv::write_constructed(&mut body, 0x7C, |o| {
        tlv::write(o, 0x82, &[]);
        tlv::write(o, 0x81, &digest);
    });
    let signature = nested(&ok(&mut card, 0x87, 0x11, 0x9A, &body), 0x82);
    let verifying = p256::ecdsa::VerifyingKey::from_sec1_bytes(&public).expect("point");
    let signature = p256::ecdsa::Signature::from_der(&signature).expect("DER");
    assert!(verifying.verify_prehash(&digest, &signature).is_ok());
    // The management key is still the factory one, and still works.
    piv_authenticate(&mut card);
}

#[test]
fn management_settings_survive() {
    let mut card = card(4);
    ok(&mut card, 0xA4, 4, 0, &MGMT_AID);
    let before = ok(&mut card, 0x1D, 0, 0, &[]);
    // Disable PIV over NFC (03 enabled USB stays), change the challenge-response timeout.
    ok(&mut card, 0x1C, 0, 0, &[0x07, 0x0E, 0x02, 0x00, 0x09, 0x07, 0x01, 0x1E]);
    let changed = ok(&mut card, 0x1D, 0, 0, &[]);
    assert_ne!(before, changed);
    let mut card = reincarnate(&card);
    ok(&mut card, 0xA4, 4, 0, &MGMT_AID);
    assert_eq!(ok(&mut card, 0x1D, 0, 0, &[]), changed);
}

#[test]
fn bad_states_are_errors_not_panics() {
    let card = card(5);
    let saved = card.save_state();
    let mut fresh = self::card(6);
    assert_eq!(fresh.restore_state(b"nonsense"), Err(StateError::Magic));
    assert_eq!(fresh.restore_state(&[]), Err(StateError::Magic));
    let mut version = saved.to_vec();
    version[4] = 9;
    assert_eq!(fresh.restore_state(&version), Err(StateError::Version(9)));
    // Every truncation and every single-byte corruption is either refused or accepted,
    // never a panic.
    for len in 0..saved.len() {
        let _ = fresh.restore_state(&saved[..len]);
    }
    for i in 5..saved.len() {
        let mut corrupt = saved.to_vec();
        corrupt[i] ^= 0x5A;
        let _ = self::card(6).restore_state(&corrupt);
    }
    // A card with another serial does not take the state.
    let other = Identity { serial: 12_345_678, ..Identity::default() };
    let mut other = SoftCard::yubikey5(other, Some(1));
    let error = other.restore_state(&saved).expect_err("another identity");
    assert!(error.to_string().contains("serial 10000001"), "{error}");
}
