//! The PIV applet of the software YubiKey 5, driven through `keystation_core::Channel` the
//! way yubico-piv-tool and ykman drive a real one.

use des::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use keystation_core::{Channel, Command, Le, StatusWord, tlv};
use keystation_softcard::{Identity, SoftCard, Version};
use p256::ecdsa::signature::Verifier;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};

const DEFAULT_MGMT: [u8; 24] =
    [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8];
const SW_OK: StatusWord = StatusWord::SUCCESS;

fn card() -> SoftCard {
    let mut card = SoftCard::yubikey5(Identity::default(), Some(7));
    let (_, sw) = send(&mut card, Command::new(0, 0xA4, 4, 0).with_data(&[0xA0, 0, 0, 3, 8]));
    assert_eq!(sw, SW_OK);
    card
}

fn send(card: &mut SoftCard, command: Command) -> (Vec<u8>, StatusWord) {
    let command = command.with_le(Le::Max);
    let response = Channel::new(card).transmit(&command);
    let Ok(response) = response else { panic!("transport error: {response:?}") };
    (response.data().to_vec(), response.status())
}

fn apdu(ins: u8, p1: u8, p2: u8, data: &[u8]) -> Command {
    Command::new(0, ins, p1, p2).with_data(data)
}

fn padded(pin: &[u8]) -> Vec<u8> {
    let mut out = pin.to_vec();
    out.resize(8, 0xFF);
    out
}

fn verify_pin(card: &mut SoftCard, pin: &[u8]) -> StatusWord {
    send(card, apdu(0x20, 0, 0x80, &padded(pin))).1
}

/// The value of `tag` inside the `7C` template of a GENERAL AUTHENTICATE response.
fn dyn_auth_item(data: &[u8], tag: u32) -> Vec<u8> {
    let template = tlv::find(data, 0x7C).ok().flatten().unwrap_or_default();
    tlv::find(template, tag).ok().flatten().unwrap_or_default().to_vec()
}

fn tdes(key: &[u8], block: &[u8], encrypt: bool) -> Vec<u8> {
    let Ok(cipher) = des::TdesEde3::new_from_slice(key) else { panic!("key length") };
    let mut b = des::cipher::Block::<des::TdesEde3>::default();
    b.copy_from_slice(block);
    if encrypt {
        cipher.encrypt_block(&mut b);
    } else {
        cipher.decrypt_block(&mut b);
    }
    b.to_vec()
}

fn aes128(key: &[u8], block: &[u8], encrypt: bool) -> Vec<u8> {
    let Ok(cipher) = aes::Aes128::new_from_slice(key) else { panic!("key length") };
    let mut b = aes::cipher::Block::<aes::Aes128>::default();
    b.copy_from_slice(block);
    if encrypt {
        cipher.encrypt_block(&mut b);
    } else {
        cipher.decrypt_block(&mut b);
    }
    b.to_vec()
}

/// Mutual authentication with the management key, as ykman does it. Returns the status
/// of the second step.
fn authenticate_with(
    card: &mut SoftCard,
    alg: u8,
    crypt: &dyn Fn(&[u8], bool) -> Vec<u8>,
    block: usize,
) -> StatusWord {
    let (data, sw) = send(card, apdu(0x87, alg, 0x9B, &[0x7C, 0x02, 0x80, 0x00]));
    assert_eq!(sw, SW_OK);
    let witness = dyn_auth_item(&data, 0x80);
    assert_eq!(witness.len(), block);
    let decrypted = crypt(&witness, false);
    let challenge: Vec<u8> = (0..block as u8).collect();
    let mut body = Vec::new();
    tlv::write_constructed(&mut body, 0x7C, |o| {
        tlv::write(o, 0x80, &decrypted);
        tlv::write(o, 0x81, &challenge);
    });
    let (data, sw) = send(card, apdu(0x87, alg, 0x9B, &body));
    if sw == SW_OK {
        assert_eq!(dyn_auth_item(&data, 0x82), crypt(&challenge, true), "card proves the key");
    }
    sw
}

fn authenticate(card: &mut SoftCard) {
    let sw = authenticate_with(card, 0x03, &|b, e| tdes(&DEFAULT_MGMT, b, e), 8);
    assert_eq!(sw, SW_OK);
}

/// GENERATE in `slot`; returns the inside of `7F49`.
fn generate(card: &mut SoftCard, slot: u8, alg: u8, policies: &[u8]) -> Vec<u8> {
    let mut template = vec![0x80, 0x01, alg];
    template.extend_from_slice(policies);
    let mut body = Vec::new();
    tlv::write(&mut body, 0xAC, &template);
    let (data, sw) = send(card, apdu(0x47, 0, slot, &body));
    assert_eq!(sw, SW_OK, "generate {alg:02X} in {slot:02X}");
    tlv::find(&data, 0x7F49).ok().flatten().unwrap_or_default().to_vec()
}

/// GENERAL AUTHENTICATE with a challenge (`81`) or a point (`85`); returns data and status.
fn use_key(
    card: &mut SoftCard,
    alg: u8,
    slot: u8,
    tag: u32,
    input: &[u8],
) -> (Vec<u8>, StatusWord) {
    let mut body = Vec::new();
    tlv::write_constructed(&mut body, 0x7C, |o| {
        tlv::write(o, 0x82, &[]);
        tlv::write(o, tag, input);
    });
    let (data, sw) = send(card, apdu(0x87, alg, slot, &body));
    (dyn_auth_item(&data, 0x82), sw)
}

fn get_data(card: &mut SoftCard, tag: &[u8]) -> (Vec<u8>, StatusWord) {
    let mut body = Vec::new();
    tlv::write(&mut body, 0x5C, tag);
    send(card, apdu(0xCB, 0x3F, 0xFF, &body))
}

fn put_data(card: &mut SoftCard, tag: &[u8], value: &[u8]) -> StatusWord {
    let mut body = Vec::new();
    tlv::write(&mut body, 0x5C, tag);
    tlv::write(&mut body, 0x53, value);
    send(card, apdu(0xDB, 0x3F, 0xFF, &body)).1
}

fn metadata(card: &mut SoftCard, reference: u8) -> (Vec<u8>, StatusWord) {
    send(card, apdu(0xF7, 0, reference, &[]))
}

fn tlv_value(data: &[u8], tag: u32) -> Vec<u8> {
    tlv::find(data, tag).ok().flatten().unwrap_or_default().to_vec()
}

#[test]
fn select_by_rid_answers_the_property_template_version_and_serial() {
    let mut card = SoftCard::yubikey5(Identity::default(), Some(1));
    let (data, sw) = send(&mut card, Command::new(0, 0xA4, 4, 0).with_data(&[0xA0, 0, 0, 3, 8]));
    assert_eq!(sw, SW_OK);
    assert_eq!(
        data,
        [
            0x61, 0x11, 0x4F, 0x06, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00, 0x79, 0x07, 0x4F, 0x05,
            0xA0, 0x00, 0x00, 0x03, 0x08
        ]
    );
    let full = [0xA0, 0, 0, 3, 8, 0, 0, 0x10, 0, 1, 0];
    assert_eq!(send(&mut card, Command::new(0, 0xA4, 4, 0).with_data(&full)).1, SW_OK);
    assert_eq!(send(&mut card, apdu(0xFD, 0, 0, &[])), (vec![5, 4, 3], SW_OK));
    assert_eq!(
        send(&mut card, apdu(0xF8, 0, 0, &[])),
        (10_000_001u32.to_be_bytes().to_vec(), SW_OK)
    );
}

#[test]
fn management_key_default_3des_authenticates_and_a_wrong_key_does_not() {
    let mut card = card();
    assert_eq!(put_data(&mut card, &[0x5F, 0xC1, 0x02], &[0x30, 0x00]), StatusWord(0x6982));
    let wrong = [9u8; 24];
    let sw = authenticate_with(&mut card, 0x03, &|b, e| tdes(&wrong, b, e), 8);
    assert_eq!(sw, StatusWord(0x6982));
    assert_eq!(put_data(&mut card, &[0x5F, 0xC1, 0x02], &[0x30, 0x00]), StatusWord(0x6982));
    // The wrong algorithm in P1.
    assert_eq!(
        send(&mut card, apdu(0x87, 0x08, 0x9B, &[0x7C, 0x02, 0x80, 0x00])).1,
        StatusWord(0x6A86)
    );
    // A response with no witness asked for.
    let mut body = Vec::new();
    tlv::write_constructed(&mut body, 0x7C, |o| {
        tlv::write(o, 0x80, &[0; 8]);
        tlv::write(o, 0x81, &[0; 8]);
    });
    assert_eq!(send(&mut card, apdu(0x87, 0x03, 0x9B, &body)).1, StatusWord(0x6985));
    authenticate(&mut card);
    assert_eq!(put_data(&mut card, &[0x5F, 0xC1, 0x02], &[0x30, 0x00]), SW_OK);
    let (meta, sw) = metadata(&mut card, 0x9B);
    assert_eq!(sw, SW_OK);
    assert_eq!(tlv_value(&meta, 0x01), [0x03]);
    assert_eq!(tlv_value(&meta, 0x05), [0x01]);
}

#[test]
fn external_authentication_with_a_clear_challenge_works_too() {
    let mut card = card();
    let (data, sw) = send(&mut card, apdu(0x87, 0x03, 0x9B, &[0x7C, 0x02, 0x81, 0x00]));
    assert_eq!(sw, SW_OK);
    let challenge = dyn_auth_item(&data, 0x81);
    let mut body = Vec::new();
    tlv::write_constructed(&mut body, 0x7C, |o| {
        tlv::write(o, 0x82, &tdes(&DEFAULT_MGMT, &challenge, true));
    });
    assert_eq!(send(&mut card, apdu(0x87, 0x03, 0x9B, &body)).1, SW_OK);
    assert_eq!(put_data(&mut card, &[0x5F, 0xC1, 0x07], &[0xF0, 0x00]), SW_OK);
}

#[test]
fn set_management_key_to_aes128_then_authenticate_with_it() {
    let mut card = card();
    authenticate(&mut card);
    let key: Vec<u8> = (0x40..0x50).collect();
    let mut body = vec![0x08, 0x9B, 16];
    body.extend_from_slice(&key);
    assert_eq!(send(&mut card, apdu(0xFF, 0xFF, 0xFF, &body)).1, SW_OK);
    // Wrong length for the algorithm.
    assert_eq!(
        send(&mut card, apdu(0xFF, 0xFF, 0xFF, &[0x08, 0x9B, 3, 1, 2, 3])).1,
        StatusWord(0x6A80)
    );
    let (meta, _) = metadata(&mut card, 0x9B);
    assert_eq!(tlv_value(&meta, 0x01), [0x08]);
    assert_eq!(tlv_value(&meta, 0x05), [0x00]);
    card.power_cycle();
    send(&mut card, Command::new(0, 0xA4, 4, 0).with_data(&[0xA0, 0, 0, 3, 8]));
    let sw = authenticate_with(&mut card, 0x08, &|b, e| aes128(&key, b, e), 16);
    assert_eq!(sw, SW_OK);
}

#[test]
fn pin_and_puk_change_block_and_unblock() {
    let mut card = card();
    // Status query: not verified, three tries.
    assert_eq!(send(&mut card, apdu(0x20, 0, 0x80, &[])).1, StatusWord(0x63C3));
    assert_eq!(verify_pin(&mut card, b"123456"), SW_OK);
    assert_eq!(send(&mut card, apdu(0x20, 0, 0x80, &[])).1, SW_OK);
    // Change the PIN; a too-short new PIN is refused after the old one checked.
    let mut body = padded(b"123456");
    body.extend_from_slice(&padded(b"12345"));
    assert_eq!(send(&mut card, apdu(0x24, 0, 0x80, &body)).1, StatusWord(0x6A80));
    assert_eq!(send(&mut card, apdu(0x20, 0, 0x80, &[])).1, StatusWord(0x63C3));
    let mut body = padded(b"123456");
    body.extend_from_slice(&padded(b"654321"));
    assert_eq!(send(&mut card, apdu(0x24, 0, 0x80, &body)).1, SW_OK);
    assert_eq!(verify_pin(&mut card, b"123456"), StatusWord(0x63C2));
    assert_eq!(verify_pin(&mut card, b"654321"), SW_OK);
    // Change the PUK.
    let mut body = padded(b"12345678");
    body.extend_from_slice(&padded(b"87654321"));
    assert_eq!(send(&mut card, apdu(0x24, 0, 0x81, &body)).1, SW_OK);
    let (meta, _) = metadata(&mut card, 0x81);
    assert_eq!(tlv_value(&meta, 0x05), [0x00]);
    assert_eq!(tlv_value(&meta, 0x06), [3, 3]);
    // Block the PIN.
    assert_eq!(verify_pin(&mut card, b"000000"), StatusWord(0x63C2));
    assert_eq!(verify_pin(&mut card, b"000000"), StatusWord(0x63C1));
    assert_eq!(verify_pin(&mut card, b"000000"), StatusWord(0x63C0));
    assert_eq!(verify_pin(&mut card, b"654321"), StatusWord(0x6983));
    assert_eq!(send(&mut card, apdu(0x20, 0, 0x80, &[])).1, StatusWord(0x6983));
    let (meta, _) = metadata(&mut card, 0x80);
    assert_eq!(tlv_value(&meta, 0x01), [0xFF]);
    assert_eq!(tlv_value(&meta, 0x06), [3, 0]);
    // Unblock with the PUK: a wrong one spends a PUK try.
    let mut body = padded(b"11111111");
    body.extend_from_slice(&padded(b"999999"));
    assert_eq!(send(&mut card, apdu(0x2C, 0, 0x80, &body)).1, StatusWord(0x63C2));
    let mut body = padded(b"87654321");
    body.extend_from_slice(&padded(b"999999"));
    assert_eq!(send(&mut card, apdu(0x2C, 0, 0x80, &body)).1, SW_OK);
    assert_eq!(verify_pin(&mut card, b"999999"), SW_OK);
    // Unverify.
    assert_eq!(send(&mut card, apdu(0x20, 0xFF, 0x80, &[])).1, SW_OK);
    assert_eq!(send(&mut card, apdu(0x20, 0, 0x80, &[])).1, StatusWord(0x63C3));
}

#[test]
fn p256_in_9a_signs_with_the_pin_and_verifies_on_the_host() {
    let mut card = card();
    authenticate(&mut card);
    let public = generate(&mut card, 0x9A, 0x11, &[]);
    let point = tlv_value(&public, 0x86);
    assert_eq!(point.len(), 65);
    let Ok(verifying) = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point) else {
        panic!("bad point")
    };
    let message = b"keystation PIV test";
    let digest = Sha256::digest(message);
    // PIN policy "once" for 9A: refused before VERIFY.
    assert_eq!(use_key(&mut card, 0x11, 0x9A, 0x81, &digest).1, StatusWord(0x6982));
    assert_eq!(verify_pin(&mut card, b"123456"), SW_OK);
    // Wrong algorithm in P1.
    assert_eq!(use_key(&mut card, 0x14, 0x9A, 0x81, &digest).1, StatusWord(0x6A80));
    for _ in 0..2 {
        let (sig, sw) = use_key(&mut card, 0x11, 0x9A, 0x81, &digest);
        assert_eq!(sw, SW_OK);
        let Ok(sig) = p256::ecdsa::Signature::from_der(&sig) else { panic!("not DER") };
        assert!(verifying.verify(message, &sig).is_ok());
    }
    // GET METADATA for the slot.
    let (meta, sw) = metadata(&mut card, 0x9A);
    assert_eq!(sw, SW_OK);
    assert_eq!(tlv_value(&meta, 0x01), [0x11]);
    assert_eq!(tlv_value(&meta, 0x02), [0x02, 0x01]);
    assert_eq!(tlv_value(&meta, 0x03), [0x01]);
    assert_eq!(tlv_value(&tlv_value(&meta, 0x04), 0x86), point);
}

#[test]
fn rsa2048_in_9c_needs_the_pin_before_every_signature() {
    use rsa::traits::PublicKeyParts;
    let mut card = card();
    authenticate(&mut card);
    let public = generate(&mut card, 0x9C, 0x07, &[]);
    let n = tlv_value(&public, 0x81);
    let e = tlv_value(&public, 0x82);
    let Ok(key) =
        rsa::RsaPublicKey::new(rsa::BigUint::from_bytes_be(&n), rsa::BigUint::from_bytes_be(&e))
    else {
        panic!("bad public key")
    };
    assert_eq!(key.size(), 256);
    // PKCS#1 v1.5 block over a SHA-256 DigestInfo, padded by the host.
    let prefix = [
        0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    let mut t = prefix.to_vec();
    t.extend_from_slice(&Sha256::digest(b"signed by 9c"));
    let mut block = vec![0x00, 0x01];
    block.resize(256 - t.len() - 1, 0xFF);
    block.push(0);
    block.extend_from_slice(&t);
    assert_eq!(block.len(), 256);
    assert_eq!(verify_pin(&mut card, b"123456"), SW_OK);
    let (sig, sw) = use_key(&mut card, 0x07, 0x9C, 0x81, &block);
    assert_eq!(sw, SW_OK);
    assert!(key.verify(rsa::Pkcs1v15Sign::new_unprefixed(), &t, &sig).is_ok());
    // PIN policy "always": a second signature needs another VERIFY.
    assert_eq!(use_key(&mut card, 0x07, 0x9C, 0x81, &block).1, StatusWord(0x6982));
    assert_eq!(verify_pin(&mut card, b"123456"), SW_OK);
    assert_eq!(use_key(&mut card, 0x07, 0x9C, 0x81, &block).1, SW_OK);
    // Input of the wrong length.
    assert_eq!(verify_pin(&mut card, b"123456"), SW_OK);
    assert_eq!(use_key(&mut card, 0x07, 0x9C, 0x81, &block[1..]).1, StatusWord(0x6A80));
}

#[test]
fn ecdh_in_9d_matches_the_host() {
    let mut card = card();
    authenticate(&mut card);
    let public = generate(&mut card, 0x9D, 0x11, &[]);
    let Ok(card_key) = p256::PublicKey::from_sec1_bytes(&tlv_value(&public, 0x86)) else {
        panic!("bad point")
    };
    let host = p256::SecretKey::random(&mut rand_core::OsRng);
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let host_point = host.public_key().to_encoded_point(false);
    assert_eq!(verify_pin(&mut card, b"123456"), SW_OK);
    let (secret, sw) = use_key(&mut card, 0x11, 0x9D, 0x85, host_point.as_bytes());
    assert_eq!(sw, SW_OK);
    let expected = p256::ecdh::diffie_hellman(host.to_nonzero_scalar(), card_key.as_affine());
    assert_eq!(secret, expected.raw_secret_bytes().to_vec());
    // A point not on the curve.
    let mut bad = host_point.as_bytes().to_vec();
    bad[40] ^= 1;
    assert_eq!(use_key(&mut card, 0x11, 0x9D, 0x85, &bad).1, StatusWord(0x6A80));
}

#[test]
fn data_objects_round_trip_and_absent_ones_answer_6a82() {
    let mut card = card();
    assert_eq!(get_data(&mut card, &[0x5F, 0xC1, 0x05]).1, StatusWord(0x6A82));
    assert_eq!(get_data(&mut card, &[0x5F, 0xFF, 0x00]).1, StatusWord(0x6A82));
    assert_eq!(get_data(&mut card, &[0x5F, 0xC1, 0x02]).1, StatusWord(0x6A82));
    authenticate(&mut card);
    let mut cert_object = Vec::new();
    tlv::write(&mut cert_object, 0x70, &[0x30; 1200]);
    tlv::write(&mut cert_object, 0x71, &[0]);
    tlv::write(&mut cert_object, 0xFE, &[]);
    assert_eq!(put_data(&mut card, &[0x5F, 0xC1, 0x05], &cert_object), SW_OK);
    let (data, sw) = get_data(&mut card, &[0x5F, 0xC1, 0x05]);
    assert_eq!(sw, SW_OK);
    assert_eq!(tlv_value(&data, 0x53), cert_object);
    // Deleting with an empty value.
    assert_eq!(put_data(&mut card, &[0x5F, 0xC1, 0x05], &[]), SW_OK);
    assert_eq!(get_data(&mut card, &[0x5F, 0xC1, 0x05]).1, StatusWord(0x6A82));
    // Discovery object, always there.
    let (data, sw) = get_data(&mut card, &[0x7E]);
    assert_eq!(sw, SW_OK);
    assert_eq!(data[0], 0x7E);
    // Printed information needs the PIN.
    assert_eq!(put_data(&mut card, &[0x5F, 0xC1, 0x09], &[0x88, 0x00]), SW_OK);
    assert_eq!(get_data(&mut card, &[0x5F, 0xC1, 0x09]).1, StatusWord(0x6982));
    assert_eq!(verify_pin(&mut card, b"123456"), SW_OK);
    assert_eq!(get_data(&mut card, &[0x5F, 0xC1, 0x09]).1, SW_OK);
    // Bad tag lists and parameters.
    assert_eq!(get_data(&mut card, &[0x5F, 0xC2, 0x00]).1, StatusWord(0x6A80));
    assert_eq!(send(&mut card, apdu(0xCB, 0x3F, 0xFF, &[0x5C])).1, StatusWord(0x6A80));
    assert_eq!(send(&mut card, apdu(0xCB, 0, 0, &[0x5C, 1, 0x7E])).1, StatusWord(0x6A86));
    assert_eq!(put_data(&mut card, &[0x5F, 0xC1, 0x05], &[0; 3100]), StatusWord(0x6A84));
}

#[test]
fn imported_p256_key_signs_and_reports_its_origin() {
    let mut card = card();
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let mut body = Vec::new();
    tlv::write(&mut body, 0x06, &secret.to_bytes());
    tlv::write(&mut body, 0xAA, &[0x01]);
    assert_eq!(send(&mut card, apdu(0xFE, 0x11, 0x9E, &body)).1, StatusWord(0x6982));
    authenticate(&mut card);
    assert_eq!(send(&mut card, apdu(0xFE, 0x11, 0x9E, &body)).1, SW_OK);
    let digest = Sha256::digest(b"card authentication");
    // PIN policy never: no VERIFY needed.
    let (sig, sw) = use_key(&mut card, 0x11, 0x9E, 0x81, &digest);
    assert_eq!(sw, SW_OK);
    let Ok(sig) = p256::ecdsa::Signature::from_der(&sig) else { panic!("not DER") };
    let verifying = p256::ecdsa::VerifyingKey::from(secret.public_key());
    assert!(verifying.verify(b"card authentication", &sig).is_ok());
    let (meta, _) = metadata(&mut card, 0x9E);
    assert_eq!(tlv_value(&meta, 0x03), [0x02]);
    assert_eq!(tlv_value(&meta, 0x02), [0x01, 0x01]);
    // Imported keys are not attested.
    assert_eq!(send(&mut card, apdu(0xF9, 0x9E, 0, &[])).1, StatusWord(0x6A80));
    // A scalar of the wrong length.
    assert_eq!(send(&mut card, apdu(0xFE, 0x11, 0x9E, &[0x06, 2, 1, 2])).1, StatusWord(0x6A80));
}

/// Verifies an ECDSA P-256 signed certificate with `issuer`'s key.
fn verify_p256_signed(cert: &Certificate, issuer: &Certificate) -> bool {
    let spki = &issuer.tbs_certificate.subject_public_key_info;
    let Ok(key) = p256::ecdsa::VerifyingKey::from_sec1_bytes(spki.subject_public_key.raw_bytes())
    else {
        return false;
    };
    let Ok(tbs) = cert.tbs_certificate.to_der() else { return false };
    let Ok(sig) = p256::ecdsa::Signature::from_der(cert.signature.raw_bytes()) else {
        return false;
    };
    key.verify(&tbs, &sig).is_ok()
}

#[test]
fn attestation_chains_to_the_test_root() {
    let mut card = card();
    authenticate(&mut card);
    let public = generate(&mut card, 0x9A, 0x11, &[0xAA, 0x01, 0x03, 0xAB, 0x01, 0x02]);
    let (der, sw) = send(&mut card, apdu(0xF9, 0x9A, 0, &[]));
    assert_eq!(sw, SW_OK);
    let Ok(attestation) = Certificate::from_der(&der) else { panic!("attestation does not parse") };

    let (object, sw) = get_data(&mut card, &[0x5F, 0xFF, 0x01]);
    assert_eq!(sw, SW_OK);
    let f9_der = tlv_value(&tlv_value(&object, 0x53), 0x70);
    let Ok(f9) = Certificate::from_der(&f9_der) else { panic!("F9 certificate does not parse") };
    let Ok(root) = Certificate::from_der(&keystation_softcard::piv::test_attestation_root_der())
    else {
        panic!("root does not parse")
    };
    assert!(
        keystation_softcard::piv::test_attestation_root_pem()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );

    assert!(verify_p256_signed(&attestation, &f9), "attestation signed by F9");
    assert!(verify_p256_signed(&f9, &root), "F9 certificate signed by the root");
    assert!(verify_p256_signed(&root, &root), "root self-signed");
    assert_eq!(attestation.tbs_certificate.issuer, f9.tbs_certificate.subject);
    assert_eq!(f9.tbs_certificate.issuer, root.tbs_certificate.subject);
    assert!(root.tbs_certificate.subject.to_string().contains("TEST ONLY"));
    assert_eq!(attestation.tbs_certificate.subject.to_string(), "CN=YubiKey PIV Attestation 9a");

    // The attested key is the generated one.
    let spki = &attestation.tbs_certificate.subject_public_key_info;
    assert_eq!(spki.subject_public_key.raw_bytes(), tlv_value(&public, 0x86));

    // Yubico's extensions.
    let extensions = attestation.tbs_certificate.extensions.unwrap_or_default();
    let ext = |oid: &str| {
        extensions
            .iter()
            .find(|e| e.extn_id.to_string() == oid)
            .map(|e| e.extn_value.as_bytes().to_vec())
            .unwrap_or_default()
    };
    assert_eq!(ext("1.3.6.1.4.1.41482.3.3"), [5, 4, 3]);
    assert_eq!(ext("1.3.6.1.4.1.41482.3.7"), [0x02, 0x04, 0x00, 0x98, 0x96, 0x81]);
    assert_eq!(ext("1.3.6.1.4.1.41482.3.8"), [0x03, 0x02]);
    assert_eq!(ext("1.3.6.1.4.1.41482.3.9"), [0x01]);

    // Absent slot, and the attestation slot itself.
    assert_eq!(send(&mut card, apdu(0xF9, 0x9D, 0, &[])).1, StatusWord(0x6A82));
    assert_eq!(send(&mut card, apdu(0xF9, 0xF9, 0, &[])).1, StatusWord(0x6A86));
    assert_eq!(metadata(&mut card, 0x9D).1, StatusWord(0x6A88));
}

#[test]
fn the_factory_attestation_key_depends_on_the_serial_only() {
    let read_f9 = |serial: u32, seed: u64| {
        let identity = Identity { serial, ..Identity::default() };
        let mut card = SoftCard::yubikey5(identity, Some(seed));
        send(&mut card, Command::new(0, 0xA4, 4, 0).with_data(&[0xA0, 0, 0, 3, 8]));
        get_data(&mut card, &[0x5F, 0xFF, 0x01]).0
    };
    assert_eq!(read_f9(42, 1), read_f9(42, 2));
    assert_ne!(read_f9(42, 1), read_f9(43, 1));
}

#[test]
fn reset_only_after_pin_and_puk_are_blocked() {
    let mut card = card();
    authenticate(&mut card);
    generate(&mut card, 0x9A, 0x11, &[]);
    assert_eq!(put_data(&mut card, &[0x5F, 0xC1, 0x02], &[0x30, 0x00]), SW_OK);
    assert_eq!(send(&mut card, apdu(0xFB, 0, 0, &[])).1, StatusWord(0x6985));
    // As ykman blocks the PIN: VERIFY with an empty (all-FF) PIN.
    for expected in [0x63C2, 0x63C1, 0x63C0, 0x6983] {
        assert_eq!(send(&mut card, apdu(0x20, 0, 0x80, &[0xFF; 8])).1, StatusWord(expected));
    }
    assert_eq!(send(&mut card, apdu(0xFB, 0, 0, &[])).1, StatusWord(0x6985));
    // As ykman blocks the PUK: RESET RETRY COUNTER with empty (all-FF) PUK and PIN.
    for expected in [0x63C2, 0x63C1, 0x63C0, 0x6983] {
        assert_eq!(send(&mut card, apdu(0x2C, 0, 0x80, &[0xFF; 16])).1, StatusWord(expected));
    }
    assert_eq!(send(&mut card, apdu(0xFB, 0, 0, &[])).1, SW_OK);
    assert_eq!(verify_pin(&mut card, b"123456"), SW_OK);
    assert_eq!(metadata(&mut card, 0x9A).1, StatusWord(0x6A88));
    assert_eq!(get_data(&mut card, &[0x5F, 0xC1, 0x02]).1, StatusWord(0x6A82));
    // The attestation key and certificate survive.
    assert_eq!(get_data(&mut card, &[0x5F, 0xFF, 0x01]).1, SW_OK);
    assert_eq!(metadata(&mut card, 0xF9).1, SW_OK);
    authenticate(&mut card);
}

#[test]
fn set_pin_retries_needs_management_key_and_pin() {
    let mut card = card();
    assert_eq!(send(&mut card, apdu(0xFA, 5, 6, &[])).1, StatusWord(0x6982));
    authenticate(&mut card);
    assert_eq!(send(&mut card, apdu(0xFA, 5, 6, &[])).1, StatusWord(0x6982));
    assert_eq!(verify_pin(&mut card, b"123456"), SW_OK);
    assert_eq!(send(&mut card, apdu(0xFA, 0, 6, &[])).1, StatusWord(0x6A86));
    assert_eq!(send(&mut card, apdu(0xFA, 5, 6, &[])).1, SW_OK);
    assert_eq!(tlv_value(&metadata(&mut card, 0x80).0, 0x06), [5, 5]);
    assert_eq!(tlv_value(&metadata(&mut card, 0x81).0, 0x06), [6, 6]);
}

#[test]
fn malformed_commands_get_real_status_words() {
    let mut card = card();
    assert_eq!(send(&mut card, apdu(0x99, 0, 0, &[])).1, StatusWord(0x6D00));
    assert_eq!(send(&mut card, apdu(0x20, 0, 0x80, &[0x31; 5])).1, StatusWord(0x6A80));
    assert_eq!(send(&mut card, apdu(0x20, 0, 0x82, &[])).1, StatusWord(0x6A88));
    assert_eq!(send(&mut card, apdu(0x24, 0, 0x80, &[0x31; 8])).1, StatusWord(0x6A80));
    assert_eq!(
        send(&mut card, apdu(0x47, 0, 0x9A, &[0xAC, 3, 0x80, 1, 0x11])).1,
        StatusWord(0x6982)
    );
    authenticate(&mut card);
    // Unsupported algorithms on 5.4.3: Ed25519 and RSA-4096.
    assert_eq!(
        send(&mut card, apdu(0x47, 0, 0x9A, &[0xAC, 3, 0x80, 1, 0xE0])).1,
        StatusWord(0x6A80)
    );
    assert_eq!(
        send(&mut card, apdu(0x47, 0, 0x9A, &[0xAC, 3, 0x80, 1, 0x16])).1,
        StatusWord(0x6A80)
    );
    assert_eq!(send(&mut card, apdu(0x47, 0, 0x9A, &[0xAC, 0])).1, StatusWord(0x6A80));
    assert_eq!(
        send(&mut card, apdu(0x47, 0, 0x9B, &[0xAC, 3, 0x80, 1, 0x11])).1,
        StatusWord(0x6A86)
    );
    assert_eq!(
        send(&mut card, apdu(0x47, 0, 0x9A, &[0xAC, 6, 0x80, 1, 0x11, 0xAA, 1, 9])).1,
        StatusWord(0x6A80)
    );
    assert_eq!(send(&mut card, apdu(0x87, 0x11, 0x9A, &[0x7C, 5, 0x82])).1, StatusWord(0x6A80));
    assert_eq!(send(&mut card, apdu(0x87, 0x11, 0x9A, &[0x7C, 2, 0x82, 0])).1, StatusWord(0x6A80));
    assert_eq!(send(&mut card, apdu(0x87, 0x11, 0x42, &[0x7C, 2, 0x82, 0])).1, StatusWord(0x6A86));
    assert_eq!(metadata(&mut card, 0x42).1, StatusWord(0x6A88));
    // The YubiKey Bio's references, which ykman 5 probes for.
    assert_eq!(metadata(&mut card, 0x96).1, StatusWord(0x6A88));
    assert_eq!(send(&mut card, apdu(0x20, 0, 0x96, &[])).1, StatusWord(0x6A88));
    assert_eq!(send(&mut card, apdu(0xFE, 0x42, 0x9A, &[])).1, StatusWord(0x6A86));
    // Every instruction with garbage: a status word, never a panic.
    for ins in 0..=255u8 {
        if ins == 0xA4 || ins == 0xC0 {
            continue;
        }
        for data in
            [&[][..], &[0x7C, 0x81][..], &[0xAC, 0x03, 0x80, 0x01, 0x99][..], &[0xFF; 40][..]]
        {
            for (p1, p2) in [(0, 0), (0x3F, 0xFF), (0x11, 0x9A), (0xFF, 0xFF), (0x03, 0x9B)] {
                let _ = send(&mut card, apdu(ins, p1, p2, data));
            }
        }
    }
}

#[test]
fn firmware_5_7_has_aes192_default_and_ed25519() {
    let identity = Identity { version: Version(5, 7, 1), ..Identity::default() };
    let mut card = SoftCard::yubikey5(identity, Some(3));
    send(&mut card, Command::new(0, 0xA4, 4, 0).with_data(&[0xA0, 0, 0, 3, 8]));
    let (meta, _) = metadata(&mut card, 0x9B);
    assert_eq!(tlv_value(&meta, 0x01), [0x0A]);
    let aes192 = |b: &[u8], encrypt: bool| {
        let Ok(cipher) = aes::Aes192::new_from_slice(&DEFAULT_MGMT) else { panic!() };
        let mut block = aes::cipher::Block::<aes::Aes192>::default();
        block.copy_from_slice(b);
        if encrypt {
            cipher.encrypt_block(&mut block);
        } else {
            cipher.decrypt_block(&mut block);
        }
        block.to_vec()
    };
    assert_eq!(authenticate_with(&mut card, 0x0A, &aes192, 16), SW_OK);
    let public = generate(&mut card, 0x9C, 0xE0, &[0xAA, 0x01, 0x01]);
    let point: [u8; 32] = tlv_value(&public, 0x86).try_into().unwrap_or([0; 32]);
    let Ok(verifying) = ed25519_dalek::VerifyingKey::from_bytes(&point) else { panic!() };
    let (sig, sw) = use_key(&mut card, 0xE0, 0x9C, 0x81, b"an ed25519 message");
    assert_eq!(sw, SW_OK);
    let sig: [u8; 64] = sig.try_into().unwrap_or([0; 64]);
    let sig = ed25519_dalek::Signature::from_bytes(&sig);
    assert!(verifying.verify_strict(b"an ed25519 message", &sig).is_ok());
    // MOVE KEY 9C → 82, then the old slot is empty.
    assert_eq!(send(&mut card, apdu(0xF6, 0x82, 0x9C, &[])).1, SW_OK);
    assert_eq!(metadata(&mut card, 0x9C).1, StatusWord(0x6A88));
    assert_eq!(metadata(&mut card, 0x82).1, SW_OK);
    // Moving from an empty slot, onto an occupied one, and deleting.
    assert_eq!(send(&mut card, apdu(0xF6, 0x83, 0x9C, &[])).1, StatusWord(0x6A88));
    generate(&mut card, 0x9A, 0x11, &[]);
    assert_eq!(send(&mut card, apdu(0xF6, 0x82, 0x9A, &[])).1, StatusWord(0x6A80));
    assert_eq!(send(&mut card, apdu(0xF6, 0xFF, 0x9A, &[])).1, SW_OK);
    assert_eq!(metadata(&mut card, 0x9A).1, StatusWord(0x6A88));
}

#[test]
fn imported_rsa2048_key_decrypts_what_the_host_encrypted() {
    use rsa::traits::{PrivateKeyParts, PublicKeyParts};
    let mut rng = rand_core::OsRng;
    let Ok(key) = rsa::RsaPrivateKey::new(&mut rng, 2048) else { panic!("keygen") };
    let [p, q] = key.primes() else { panic!("two primes") };
    let (Some(dp), Some(dq), Some(qinv)) = (key.dp(), key.dq(), key.crt_coefficient()) else {
        panic!("CRT values")
    };
    let mut body = Vec::new();
    tlv::write(&mut body, 0x01, &p.to_bytes_be());
    tlv::write(&mut body, 0x02, &q.to_bytes_be());
    tlv::write(&mut body, 0x03, &dp.to_bytes_be());
    tlv::write(&mut body, 0x04, &dq.to_bytes_be());
    tlv::write(&mut body, 0x05, &qinv.to_bytes_be());
    let mut card = card();
    authenticate(&mut card);
    // Degenerate primes are refused, not computed with.
    let mut bad = Vec::new();
    for tag in 1..=5u32 {
        tlv::write(&mut bad, tag, &[0]);
    }
    assert_eq!(send(&mut card, apdu(0xFE, 0x07, 0x9D, &bad)).1, StatusWord(0x6A80));
    assert_eq!(send(&mut card, apdu(0xFE, 0x07, 0x9D, &body)).1, SW_OK);
    let public = key.to_public_key();
    let Ok(ciphertext) = public.encrypt(&mut rng, rsa::Pkcs1v15Encrypt, b"session key") else {
        panic!("encrypt")
    };
    assert_eq!(ciphertext.len(), public.size());
    assert_eq!(verify_pin(&mut card, b"123456"), SW_OK);
    let (plain, sw) = use_key(&mut card, 0x07, 0x9D, 0x81, &ciphertext);
    assert_eq!(sw, SW_OK);
    assert_eq!(plain.len(), 256);
    assert_eq!(&plain[..2], &[0x00, 0x02]);
    assert!(plain.ends_with(b"\x00session key"));
    let (meta, _) = metadata(&mut card, 0x9D);
    assert_eq!(tlv_value(&meta, 0x01), [0x07]);
    assert_eq!(tlv_value(&tlv_value(&meta, 0x04), 0x81), public.n().to_bytes_be());
}

#[test]
fn random_command_sequences_never_panic_and_keep_counters_in_range() {
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};
    let mut rng = ChaCha20Rng::seed_from_u64(2026);
    let mut card = card();
    let ins = [
        0x20, 0x24, 0x2C, 0x47, 0x87, 0xCB, 0xDB, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA, 0xFB, 0xFD, 0xFE,
        0xFF,
    ];
    let p1s = [0x00, 0x03, 0x11, 0x14, 0x3F, 0x9A, 0xFF];
    let p2s = [0x00, 0x80, 0x81, 0x9A, 0x9B, 0x9C, 0x9D, 0xF9, 0xFF];
    // Well-formed pieces that reach deeper code paths (no RSA: generation is slow).
    let pieces: [&[u8]; 8] = [
        &[0x7C, 0x02, 0x80, 0x00],
        &[0x7C, 0x02, 0x81, 0x00],
        &[0x7C, 0x04, 0x82, 0x00, 0x81, 0x00],
        &[0xAC, 0x03, 0x80, 0x01, 0x11],
        &[0x5C, 0x03, 0x5F, 0xC1, 0x05, 0x53, 0x01, 0x00],
        &[0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0xFF, 0xFF],
        &[0x06, 0x20],
        &[0x03, 0x9B, 0x18],
    ];
    for round in 0..4000 {
        if round % 500 == 0 {
            authenticate(&mut card);
        }
        let pick = |rng: &mut ChaCha20Rng, n: usize| (rng.next_u32() as usize) % n;
        let mut data = Vec::new();
        for _ in 0..pick(&mut rng, 3) {
            if rng.next_u32() % 2 == 0 {
                data.extend_from_slice(pieces[pick(&mut rng, pieces.len())]);
            } else {
                let mut noise = vec![0u8; pick(&mut rng, 40)];
                rng.fill_bytes(&mut noise);
                data.extend_from_slice(&noise);
            }
        }
        let command = apdu(
            ins[pick(&mut rng, ins.len())],
            p1s[pick(&mut rng, p1s.len())],
            p2s[pick(&mut rng, p2s.len())],
            &data,
        );
        let _ = send(&mut card, command);
        for reference in [0x80, 0x81] {
            let (meta, sw) = metadata(&mut card, reference);
            assert_eq!(sw, SW_OK);
            let retries = tlv_value(&meta, 0x06);
            assert!(
                retries.len() == 2 && retries[1] <= retries[0] && retries[0] > 0,
                "{retries:?}"
            );
        }
    }
}

#[test]
fn saved_state_restores_keys_pins_and_objects() {
    use keystation_softcard::piv::Piv;
    use keystation_softcard::{Applet, Context, Touch};
    use rand_core::SeedableRng;
    let identity = Identity::default();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    let mut piv = Piv::new(&identity);
    let mut run = |piv: &mut Piv, command: Command| {
        let mut context =
            Context { identity: &identity, rng: &mut rng, touch: &mut Touch::default() };
        piv.process(&mut context, &command).map(|data| data.to_vec())
    };
    // Management key authentication, straight into the applet.
    let Ok(witness) = run(&mut piv, apdu(0x87, 3, 0x9B, &[0x7C, 0x02, 0x80, 0x00])) else {
        panic!("witness")
    };
    let mut body = Vec::new();
    tlv::write_constructed(&mut body, 0x7C, |o| {
        tlv::write(o, 0x80, &tdes(&DEFAULT_MGMT, &dyn_auth_item(&witness, 0x80), false));
        tlv::write(o, 0x81, &[7; 8]);
    });
    assert!(run(&mut piv, apdu(0x87, 3, 0x9B, &body)).is_ok());
    let Ok(public) = run(&mut piv, apdu(0x47, 0, 0x9A, &[0xAC, 3, 0x80, 1, 0x11])) else {
        panic!("generate")
    };
    let point = tlv_value(&tlv_value(&public, 0x7F49), 0x86);
    let mut put = Vec::new();
    tlv::write(&mut put, 0x5C, &[0x5F, 0xC1, 0x05]);
    tlv::write(&mut put, 0x53, &[0x70, 0x01, 0x30, 0x71, 0x01, 0x00]);
    assert!(run(&mut piv, apdu(0xDB, 0x3F, 0xFF, &put)).is_ok());
    let mut change = padded(b"123456");
    change.extend_from_slice(&padded(b"654321"));
    assert!(run(&mut piv, apdu(0x24, 0, 0x80, &change)).is_ok());
    assert!(run(&mut piv, apdu(0x20, 0, 0x80, &padded(b"000000"))).is_err());

    let saved = piv.save_state();
    assert!(Piv::restore_state(&identity, &saved[..saved.len() - 3]).is_err());
    assert!(Piv::restore_state(&identity, &saved[3..]).is_err(), "format item missing");
    let Ok(restored) = Piv::restore_state(&identity, &saved) else { panic!("restore") };

    let mut card = SoftCard::new(identity.clone(), vec![Box::new(restored)], Some(1));
    send(&mut card, Command::new(0, 0xA4, 4, 0).with_data(&[0xA0, 0, 0, 3, 8]));
    assert_eq!(send(&mut card, apdu(0x20, 0, 0x80, &[])).1, StatusWord(0x63C2));
    assert_eq!(verify_pin(&mut card, b"654321"), SW_OK);
    let (meta, _) = metadata(&mut card, 0x9A);
    assert_eq!(tlv_value(&tlv_value(&meta, 0x04), 0x86), point);
    let digest = Sha256::digest(b"after restart");
    let (sig, sw) = use_key(&mut card, 0x11, 0x9A, 0x81, &digest);
    assert_eq!(sw, SW_OK);
    let (Ok(key), Ok(sig)) = (
        p256::ecdsa::VerifyingKey::from_sec1_bytes(&point),
        p256::ecdsa::Signature::from_der(&sig),
    ) else {
        panic!("key or signature")
    };
    assert!(key.verify(b"after restart", &sig).is_ok());
    assert_eq!(get_data(&mut card, &[0x5F, 0xC1, 0x05]).1, SW_OK);
    assert_eq!(get_data(&mut card, &[0x5F, 0xFF, 0x01]).1, SW_OK);
    // The attestation key came along: attestation still verifies against 5FFF01.
    let (der, sw) = send(&mut card, apdu(0xF9, 0x9A, 0, &[]));
    assert_eq!(sw, SW_OK);
    let f9 = tlv_value(&tlv_value(&get_data(&mut card, &[0x5F, 0xFF, 0x01]).0, 0x53), 0x70);
    let (Ok(attestation), Ok(f9)) = (Certificate::from_der(&der), Certificate::from_der(&f9))
    else {
        panic!("certificates")
    };
    assert!(verify_p256_signed(&attestation, &f9));
    // Ed25519 needs firmware 5.7: a 5.4.3 card refuses a state that holds one.
    let v57 = Identity { version: Version(5, 7, 0), ..Identity::default() };
    let mut ed = Piv::new(&v57);
    let mut rng57 = rand_chacha::ChaCha20Rng::seed_from_u64(6);
    let mut ctx = Context { identity: &v57, rng: &mut rng57, touch: &mut Touch::default() };
    let Ok(w) = ed.process(&mut ctx, &apdu(0x87, 0x0A, 0x9B, &[0x7C, 0x02, 0x80, 0x00])) else {
        panic!("witness")
    };
    let aes192 = |b: &[u8]| {
        let Ok(cipher) = aes::Aes192::new_from_slice(&DEFAULT_MGMT) else { panic!() };
        let mut block = aes::cipher::Block::<aes::Aes192>::default();
        block.copy_from_slice(b);
        cipher.decrypt_block(&mut block);
        block.to_vec()
    };
    let mut body = Vec::new();
    tlv::write_constructed(&mut body, 0x7C, |o| {
        tlv::write(o, 0x80, &aes192(&dyn_auth_item(&w, 0x80)));
        tlv::write(o, 0x81, &[1; 16]);
    });
    assert!(ed.process(&mut ctx, &apdu(0x87, 0x0A, 0x9B, &body)).is_ok());
    assert!(ed.process(&mut ctx, &apdu(0x47, 0, 0x9C, &[0xAC, 3, 0x80, 1, 0xE0])).is_ok());
    let saved = ed.save_state();
    assert!(Piv::restore_state(&v57, &saved).is_ok());
    assert!(Piv::restore_state(&identity, &saved).is_err());
}
