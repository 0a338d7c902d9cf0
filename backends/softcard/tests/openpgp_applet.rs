//! The OpenPGP card 3.4 applet of the software YubiKey 5, driven through
//! `keystation_core::Channel` as a host would drive it; every signature is checked with
//! the RustCrypto/dalek verifiers and every decryption against the host's own result.

use keystation_core::{Channel, Command, Le, StatusWord, tlv};
use keystation_softcard::{Identity, SoftCard};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sha2::{Digest, Sha256};

const OPENPGP_AID: [u8; 6] = [0xD2, 0x76, 0x00, 0x01, 0x24, 0x01];
const OID_P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const OID_ED25519: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0xDA, 0x47, 0x0F, 0x01];
const OID_X25519: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01];
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

fn card() -> SoftCard {
    SoftCard::yubikey5(Identity::default(), Some(42))
}

/// Sends one command; returns data and status.
fn send(card: &mut SoftCard, ins: u8, p1: u8, p2: u8, data: &[u8]) -> (Vec<u8>, StatusWord) {
    let mut command = Command::new(0, ins, p1, p2).with_le(Le::Max);
    if !data.is_empty() {
        command = command.with_data(data);
    }
    let mut channel = Channel::new(card);
    match channel.transmit(&command) {
        Ok(response) => (response.data().to_vec(), response.status()),
        Err(e) => panic!("transport error: {e}"),
    }
}

/// Sends one command that must succeed; returns its data.
fn ok(card: &mut SoftCard, ins: u8, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
    let (out, sw) = send(card, ins, p1, p2, data);
    assert_eq!(sw, StatusWord::SUCCESS, "INS {ins:02X} P1 {p1:02X} P2 {p2:02X}");
    out
}

fn sw(card: &mut SoftCard, ins: u8, p1: u8, p2: u8, data: &[u8]) -> u16 {
    send(card, ins, p1, p2, data).1.0
}

fn selected() -> SoftCard {
    let mut card = card();
    ok(&mut card, 0xA4, 0x04, 0x00, &OPENPGP_AID);
    card
}

fn get_data(card: &mut SoftCard, tag: u16) -> Vec<u8> {
    let [p1, p2] = tag.to_be_bytes();
    ok(card, 0xCA, p1, p2, &[])
}

fn put_data(card: &mut SoftCard, tag: u16, value: &[u8]) {
    let [p1, p2] = tag.to_be_bytes();
    ok(card, 0xDA, p1, p2, value);
}

fn admin(card: &mut SoftCard) {
    ok(card, 0x20, 0x00, 0x83, b"12345678");
}

fn nested(data: &[u8], tag: u32) -> Vec<u8> {
    match tlv::find_nested(data, tag) {
        Ok(Some(value)) => value.to_vec(),
        other => panic!("tag {tag:X} not found: {other:?}"),
    }
}

/// GENERATE ASYMMETRIC KEY PAIR for the slot named by `crt`; returns the `7F49` value.
fn generate(card: &mut SoftCard, crt: u8) -> Vec<u8> {
    let template = ok(card, 0x47, 0x80, 0x00, &[crt, 0x00]);
    let read = ok(card, 0x47, 0x81, 0x00, &[crt, 0x00]);
    assert_eq!(template, read, "generated and read public keys agree");
    nested(&template, 0x7F49)
}

fn rsa_public(template: &[u8]) -> rsa::RsaPublicKey {
    let n = rsa::BigUint::from_bytes_be(&nested(template, 0x81));
    let e = rsa::BigUint::from_bytes_be(&nested(template, 0x82));
    match rsa::RsaPublicKey::new(n, e) {
        Ok(key) => key,
        Err(e) => panic!("bad RSA public key: {e}"),
    }
}

fn ecc_attributes(id: u8, oid: &[u8]) -> Vec<u8> {
    let mut out = vec![id];
    out.extend_from_slice(oid);
    out
}

fn ecdh_data(point: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    tlv::write_constructed(&mut out, 0xA6, |out| {
        tlv::write_constructed(out, 0x7F49, |out| tlv::write(out, 0x86, point));
    });
    out
}

fn import_template(crt: u8, parts: &[(u8, &[u8])]) -> Vec<u8> {
    let mut header = Vec::new();
    let mut values = Vec::new();
    for (tag, value) in parts {
        tlv::write_header(&mut header, u32::from(*tag), value.len());
        values.extend_from_slice(value);
    }
    let mut out = Vec::new();
    tlv::write_constructed(&mut out, 0x4D, |out| {
        tlv::write(out, u32::from(crt), &[]);
        tlv::write(out, 0x7F48, &header);
        tlv::write(out, 0x5F48, &values);
    });
    out
}

#[test]
fn select_get_version_and_application_related_data() {
    let mut card = card();
    let (data, status) = send(&mut card, 0xA4, 0x04, 0x00, &OPENPGP_AID);
    assert_eq!((data.len(), status), (0, StatusWord::SUCCESS));

    // AID: RID, application, version 3.4, Yubico, serial 10000001 in BCD, RFU.
    let aid = get_data(&mut card, 0x004F);
    assert_eq!(aid, [0xD2, 0x76, 0, 1, 0x24, 1, 3, 4, 0, 6, 0x10, 0, 0, 0x01, 0, 0]);
    assert_eq!(ok(&mut card, 0xF1, 0, 0, &[]), [0x05, 0x04, 0x03]);

    let related = get_data(&mut card, 0x006E);
    let outer = nested(&related, 0x6E);
    assert_eq!(nested(&outer, 0x4F), aid);
    assert_eq!(nested(&outer, 0x5F52), [0x00, 0x73, 0x00, 0x00, 0xE0, 0x05, 0x90, 0x00]);
    assert_eq!(nested(&outer, 0x7F66), [0x02, 0x02, 0x0B, 0xFE, 0x02, 0x02, 0x0B, 0xFE]);
    assert_eq!(nested(&outer, 0x7F74), [0x81, 0x01, 0x20]);
    let discretionary = nested(&outer, 0x73);
    assert_eq!(nested(&discretionary, 0xC0), [0x7D, 0, 0x0B, 0xFE, 0x08, 0, 0, 0xFF, 0, 0]);
    for tag in [0xC1, 0xC2, 0xC3] {
        assert_eq!(nested(&discretionary, tag), [0x01, 0x08, 0x00, 0x00, 0x11, 0x00]);
    }
    assert_eq!(nested(&discretionary, 0xC4), [0x01, 0x7F, 0x7F, 0x7F, 0x03, 0x00, 0x03]);
    assert_eq!(nested(&discretionary, 0xC5), [0; 60]);
    assert_eq!(nested(&discretionary, 0xC6), [0; 60]);
    assert_eq!(nested(&discretionary, 0xCD), [0; 12]);
    assert_eq!(nested(&discretionary, 0xDE), [1, 0, 2, 0, 3, 0]);
    for tag in [0xD6, 0xD7, 0xD8] {
        assert_eq!(nested(&discretionary, tag), [0x00, 0x20]);
    }

    // Individual DOs.
    assert_eq!(get_data(&mut card, 0x00C4), [0x01, 0x7F, 0x7F, 0x7F, 0x03, 0x00, 0x03]);
    assert_eq!(get_data(&mut card, 0x007A), [0x7A, 0x05, 0x93, 0x03, 0, 0, 0]);
    assert_eq!(
        get_data(&mut card, 0x0065),
        [0x65, 0x09, 0x5B, 0, 0x5F, 0x2D, 0, 0x5F, 0x35, 1, 0x30]
    );
    assert_eq!(get_data(&mut card, 0x00F9), [0x81, 0x01, 0x00]);
    assert_eq!(get_data(&mut card, 0x00D6), [0x00, 0x20]);
    assert_eq!(get_data(&mut card, 0x7F74), [0x81, 0x01, 0x20]);
    assert!(get_data(&mut card, 0x7F21).is_empty());
    assert!(get_data(&mut card, 0x5F50).is_empty());
    assert!(get_data(&mut card, 0x0101).is_empty());
    assert_eq!(sw(&mut card, 0xCA, 0x01, 0x03, &[]), 0x6982);
    assert_eq!(sw(&mut card, 0xCA, 0x01, 0x04, &[]), 0x6982);
    assert_eq!(sw(&mut card, 0xCA, 0x00, 0xEE, &[]), 0x6A88);

    // Algorithm information: every entry parses, and firmware 5.4.3 lists the X25519/EdDSA
    // entries ykman removes.
    let info = get_data(&mut card, 0x00FA);
    let entries: Vec<(u32, Vec<u8>)> = tlv::parse(&nested(&info, 0xFA))
        .map(|t| t.map(|t| (t.tag().0, t.value().to_vec())))
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    assert!(entries.len() > 20);
    assert!(entries.contains(&(0xC2, ecc_attributes(0x12, OID_X25519))));
    assert!(entries.contains(&(0xC1, ecc_attributes(0x16, OID_X25519))));
    assert!(entries.contains(&(0xC3, ecc_attributes(0x16, OID_ED25519))));
    assert!(entries.contains(&(0xC1, vec![1, 0x10, 0, 0, 0x11, 0])));
}

#[test]
fn verify_counts_down_blocks_and_answers_status_queries() {
    let mut card = selected();
    assert_eq!(sw(&mut card, 0x20, 0x00, 0x81, &[]), 0x63C3);
    assert_eq!(sw(&mut card, 0x20, 0x00, 0x81, b"000000"), 0x6982);
    assert_eq!(sw(&mut card, 0x20, 0x00, 0x82, &[]), 0x63C2);
    assert_eq!(sw(&mut card, 0x20, 0x00, 0x81, b"123456"), 0x9000);
    assert_eq!(sw(&mut card, 0x20, 0x00, 0x81, &[]), 0x9000);
    assert_eq!(sw(&mut card, 0x20, 0x00, 0x82, &[]), 0x63C3, "82 is separate from 81");
    // P1 FF forgets the verification.
    assert_eq!(sw(&mut card, 0x20, 0xFF, 0x81, &[]), 0x9000);
    assert_eq!(sw(&mut card, 0x20, 0x00, 0x81, &[]), 0x63C3);

    for left in [2u16, 1, 0] {
        assert_eq!(sw(&mut card, 0x20, 0x00, 0x82, b"654321"), 0x6982);
        assert_eq!(sw(&mut card, 0x20, 0x00, 0x82, &[]), 0x63C0 | left);
    }
    assert_eq!(sw(&mut card, 0x20, 0x00, 0x82, b"123456"), 0x6983, "blocked");
    assert_eq!(get_data(&mut card, 0x00C4)[4..], [0, 0, 3]);

    // PW3 is independent; a power cycle forgets the verification.
    assert_eq!(sw(&mut card, 0x20, 0x00, 0x83, b"12345678"), 0x9000);
    assert_eq!(sw(&mut card, 0x20, 0x00, 0x83, &[]), 0x9000);
    card.power_cycle();
    ok(&mut card, 0xA4, 0x04, 0x00, &OPENPGP_AID);
    assert_eq!(sw(&mut card, 0x20, 0x00, 0x83, &[]), 0x63C3);

    // Bad parameters.
    assert_eq!(sw(&mut card, 0x20, 0x00, 0x84, b"123456"), 0x6A86);
    assert_eq!(sw(&mut card, 0x20, 0x01, 0x81, b"123456"), 0x6A86);
}

#[test]
fn change_pin_and_reset_retry_counter() {
    let mut card = selected();
    // Change PW1; the old one stops working.
    ok(&mut card, 0x24, 0x00, 0x81, b"123456654321");
    assert_eq!(sw(&mut card, 0x20, 0x00, 0x82, b"123456"), 0x6982);
    ok(&mut card, 0x20, 0x00, 0x82, b"654321");
    // Wrong old PIN costs a try; a too-short new PIN is refused.
    assert_eq!(sw(&mut card, 0x24, 0x00, 0x81, b"111111222222"), 0x6982);
    assert_eq!(get_data(&mut card, 0x00C4)[4], 2);
    assert_eq!(sw(&mut card, 0x24, 0x00, 0x81, b"65432112345"), 0x6700);
    assert_eq!(sw(&mut card, 0x24, 0x00, 0x82, b"654321123456"), 0x6A86);
    // Change PW3.
    ok(&mut card, 0x24, 0x00, 0x83, b"12345678abcdefgh");
    assert_eq!(sw(&mut card, 0x20, 0x00, 0x83, b"12345678"), 0x6982);
    ok(&mut card, 0x20, 0x00, 0x83, b"abcdefgh");

    // Block PW1, then unblock it with PW3 (P1 02).
    for _ in 0..3 {
        send(&mut card, 0x20, 0x00, 0x81, b"000000");
    }
    assert_eq!(sw(&mut card, 0x20, 0x00, 0x81, b"654321"), 0x6983);
    ok(&mut card, 0x2C, 0x02, 0x81, b"24682468");
    ok(&mut card, 0x20, 0x00, 0x81, b"24682468");

    // Without a resetting code, P1 00 is blocked; set one (PUT DATA D3) and use it.
    assert_eq!(sw(&mut card, 0x2C, 0x00, 0x81, b"rcrcrcrc111111"), 0x6983);
    put_data(&mut card, 0x00D3, b"rcrcrcrc");
    assert_eq!(get_data(&mut card, 0x00C4)[5], 3);
    card.power_cycle();
    ok(&mut card, 0xA4, 0x04, 0x00, &OPENPGP_AID);
    assert_eq!(sw(&mut card, 0x2C, 0x02, 0x81, b"11111111"), 0x6982, "P1 02 needs PW3");
    assert_eq!(sw(&mut card, 0x2C, 0x00, 0x81, b"rcrcrcrX111111"), 0x6982);
    assert_eq!(get_data(&mut card, 0x00C4)[5], 2);
    ok(&mut card, 0x2C, 0x00, 0x81, b"rcrcrcrc111111");
    ok(&mut card, 0x20, 0x00, 0x82, b"111111");
    assert_eq!(sw(&mut card, 0x2C, 0x00, 0x82, b"rcrcrcrc111111"), 0x6A86);
}

#[test]
fn cardholder_data_and_access_rules() {
    let mut card = selected();
    assert_eq!(sw(&mut card, 0xDA, 0x00, 0x5B, b"Doe<<John"), 0x6982);
    admin(&mut card);
    put_data(&mut card, 0x005B, b"Doe<<John");
    put_data(&mut card, 0x5F2D, b"en");
    put_data(&mut card, 0x5F35, &[0x31]);
    put_data(&mut card, 0x5F50, b"https://example.org/key.asc");
    put_data(&mut card, 0x005E, b"jdoe");
    put_data(&mut card, 0x00C7, &[0xAB; 20]);
    put_data(&mut card, 0x00CB, &[0xCD; 20]);
    put_data(&mut card, 0x00D0, &[0x5F, 0, 0, 1]);
    put_data(&mut card, 0x0102, b"two");
    put_data(&mut card, 0x0104, b"four");
    put_data(&mut card, 0x00D7, &[0x01, 0x20]);
    put_data(&mut card, 0x00C4, &[0x00]);
    let holder = get_data(&mut card, 0x0065);
    assert_eq!(nested(&holder, 0x5B), b"Doe<<John");
    assert_eq!(nested(&holder, 0x5F2D), b"en");
    assert_eq!(nested(&holder, 0x5F35), [0x31]);
    assert_eq!(get_data(&mut card, 0x5F50), b"https://example.org/key.asc");
    assert_eq!(get_data(&mut card, 0x005E), b"jdoe");
    assert_eq!(get_data(&mut card, 0x0102), b"two");
    assert_eq!(get_data(&mut card, 0x0104), b"four");
    assert_eq!(get_data(&mut card, 0x00D7), [0x01, 0x20]);
    assert_eq!(get_data(&mut card, 0x00C4)[0], 0x00);
    let related = get_data(&mut card, 0x006E);
    let fingerprints = nested(&related, 0xC5);
    assert_eq!(&fingerprints[..20], &[0xAB; 20]);
    assert_eq!(&nested(&related, 0xC6)[20..40], &[0xCD; 20]);
    assert_eq!(&nested(&related, 0xCD)[8..], &[0x5F, 0, 0, 1]);

    // Bad values.
    assert_eq!(sw(&mut card, 0xDA, 0x00, 0xC7, &[0xAB; 19]), 0x6700);
    assert_eq!(sw(&mut card, 0xDA, 0x00, 0x5B, &[b'a'; 40]), 0x6700);
    assert_eq!(sw(&mut card, 0xDA, 0x5F, 0x35, &[0x33]), 0x6A80);
    assert_eq!(sw(&mut card, 0xDA, 0x00, 0xD6, &[0x07, 0x20]), 0x6A80);
    assert_eq!(sw(&mut card, 0xDA, 0x00, 0xC4, &[0x02]), 0x6A80);
    assert_eq!(sw(&mut card, 0xDA, 0x00, 0xD3, b"short"), 0x6A80);
    assert_eq!(sw(&mut card, 0xDA, 0x00, 0xEE, b"x"), 0x6A88);
    // A fixed touch policy stays.
    put_data(&mut card, 0x00D8, &[0x02, 0x20]);
    assert_eq!(sw(&mut card, 0xDA, 0x00, 0xD8, &[0x00, 0x20]), 0x6982);
    put_data(&mut card, 0x00D9, &[0x03, 0x20]);
    assert_eq!(get_data(&mut card, 0x00D9), [0x03, 0x20]);
    assert_eq!(nested(&get_data(&mut card, 0x006E), 0xD9), [0x03, 0x20]);

    // Three cardholder certificates, picked with SELECT DATA (ykman's form with the extra
    // length byte, and the standard form).
    put_data(&mut card, 0x7F21, b"aut cert");
    ok(&mut card, 0xA5, 0x02, 0x04, &[0x06, 0x60, 0x04, 0x5C, 0x02, 0x7F, 0x21]);
    assert!(get_data(&mut card, 0x7F21).is_empty());
    put_data(&mut card, 0x7F21, b"sig cert");
    ok(&mut card, 0xA5, 0x00, 0x04, &[0x60, 0x04, 0x5C, 0x02, 0x7F, 0x21]);
    assert_eq!(get_data(&mut card, 0x7F21), b"aut cert");
    ok(&mut card, 0xA5, 0x02, 0x04, &[0x60, 0x04, 0x5C, 0x02, 0x7F, 0x21]);
    assert_eq!(get_data(&mut card, 0x7F21), b"sig cert");
    // GET NEXT DATA walks the occurrences.
    ok(&mut card, 0xA5, 0x00, 0x04, &[0x60, 0x04, 0x5C, 0x02, 0x7F, 0x21]);
    assert!(ok(&mut card, 0xCC, 0x7F, 0x21, &[]).is_empty());
    assert_eq!(ok(&mut card, 0xCC, 0x7F, 0x21, &[]), b"sig cert");
    assert_eq!(sw(&mut card, 0xCC, 0x7F, 0x21, &[]), 0x6A88);
    assert_eq!(sw(&mut card, 0xCC, 0x00, 0x5B, &[]), 0x6A88);
    assert_eq!(sw(&mut card, 0xA5, 0x03, 0x04, &[0x60, 0x04, 0x5C, 0x02, 0x7F, 0x21]), 0x6A88);
    assert_eq!(sw(&mut card, 0xA5, 0x00, 0x04, &[0x60, 0x03, 0x5C, 0x01, 0x5B]), 0x6A88);
    assert_eq!(sw(&mut card, 0xA5, 0x00, 0x05, &[0x60, 0x04, 0x5C, 0x02, 0x7F, 0x21]), 0x6A86);
    assert_eq!(sw(&mut card, 0xA5, 0x00, 0x04, &[0x61, 0x00]), 0x6A80);

    // Private DO 0101/0103 are written with PW1 (82), 0103 read with it too.
    card.power_cycle();
    ok(&mut card, 0xA4, 0x04, 0x00, &OPENPGP_AID);
    assert_eq!(sw(&mut card, 0xDA, 0x01, 0x01, b"one"), 0x6982);
    ok(&mut card, 0x20, 0x00, 0x82, b"123456");
    put_data(&mut card, 0x0101, b"one");
    put_data(&mut card, 0x0103, b"three");
    assert_eq!(get_data(&mut card, 0x0103), b"three");
    assert_eq!(sw(&mut card, 0xDA, 0x01, 0x02, b"two"), 0x6982, "0102 needs PW3");
    assert_eq!(sw(&mut card, 0xDA, 0x00, 0x5B, b"x"), 0x6982);
}

#[test]
fn rsa_2048_generate_sign_decipher_authenticate() {
    use rsa::{Pkcs1v15Encrypt, Pkcs1v15Sign};
    let mut card = selected();
    assert_eq!(sw(&mut card, 0x47, 0x80, 0x00, &[0xB6, 0x00]), 0x6982);
    assert_eq!(sw(&mut card, 0x47, 0x81, 0x00, &[0xB6, 0x00]), 0x6A88);
    admin(&mut card);
    let sig = rsa_public(&generate(&mut card, 0xB6));
    let dec = rsa_public(&generate(&mut card, 0xB8));
    let aut = rsa_public(&generate(&mut card, 0xA4));
    assert_eq!(nested(&get_data(&mut card, 0x006E), 0xDE), [1, 1, 2, 1, 3, 1]);

    // PSO:CDS over a DigestInfo.
    let digest = Sha256::digest(b"message");
    let mut digest_info = SHA256_DIGEST_INFO.to_vec();
    digest_info.extend_from_slice(&digest);
    assert_eq!(sw(&mut card, 0x2A, 0x9E, 0x9A, &digest_info), 0x6982);
    ok(&mut card, 0x20, 0x00, 0x81, b"123456");
    let signature = ok(&mut card, 0x2A, 0x9E, 0x9A, &digest_info);
    assert!(sig.verify(Pkcs1v15Sign::new_unprefixed(), &digest_info, &signature).is_ok());
    assert_eq!(get_data(&mut card, 0x007A), [0x7A, 0x05, 0x93, 0x03, 0, 0, 1]);
    // PW1 stays valid for several signatures by default; with C4 = 00 for one.
    ok(&mut card, 0x2A, 0x9E, 0x9A, &digest_info);
    put_data(&mut card, 0x00C4, &[0x00]);
    ok(&mut card, 0x2A, 0x9E, 0x9A, &digest_info);
    assert_eq!(sw(&mut card, 0x2A, 0x9E, 0x9A, &digest_info), 0x6982);
    assert_eq!(get_data(&mut card, 0x007A)[6], 3);

    // PSO:DECIPHER of a PKCS#1 v1.5 cryptogram (an extended APDU of 257 bytes).
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let session_key = [0x5Au8; 32];
    let cryptogram = match dec.encrypt(&mut rng, Pkcs1v15Encrypt, &session_key) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let mut input = vec![0x00];
    input.extend_from_slice(&cryptogram);
    assert_eq!(sw(&mut card, 0x2A, 0x80, 0x86, &input), 0x6982, "needs PW1 82");
    ok(&mut card, 0x20, 0x00, 0x82, b"123456");
    assert_eq!(ok(&mut card, 0x2A, 0x80, 0x86, &input), session_key);
    assert_eq!(sw(&mut card, 0x2A, 0x80, 0x86, &input[1..]), 0x6A80, "no padding indicator");
    assert_eq!(sw(&mut card, 0x2A, 0x80, 0x86, &input[..100]), 0x6A80, "not a cryptogram");
    let mut oversize = input.clone();
    oversize.push(0);
    assert_eq!(sw(&mut card, 0x2A, 0x80, 0x86, &oversize), 0x6700);

    // INTERNAL AUTHENTICATE.
    let challenge = Sha256::digest(b"ssh session");
    let mut auth_input = SHA256_DIGEST_INFO.to_vec();
    auth_input.extend_from_slice(&challenge);
    let auth = ok(&mut card, 0x88, 0x00, 0x00, &auth_input);
    assert!(aut.verify(Pkcs1v15Sign::new_unprefixed(), &auth_input, &auth).is_ok());
    assert_eq!(sw(&mut card, 0x88, 0x00, 0x00, &[0x11; 120]), 0x6A80, "over 40% of modulus");

    // Generating a new signature key resets the counter.
    generate(&mut card, 0xB6);
    assert_eq!(get_data(&mut card, 0x007A)[6], 0);
}

#[test]
fn ed25519_and_x25519_keys() {
    let mut card = selected();
    admin(&mut card);
    // Attribute validation: X25519 is for decryption only, Ed25519 not for decryption.
    assert_eq!(sw(&mut card, 0xDA, 0x00, 0xC1, &ecc_attributes(0x12, OID_X25519)), 0x6A80);
    assert_eq!(sw(&mut card, 0xDA, 0x00, 0xC2, &ecc_attributes(0x16, OID_ED25519)), 0x6A80);
    assert_eq!(sw(&mut card, 0xDA, 0x00, 0xC1, &[0x01, 0x04, 0x00, 0x00, 0x11, 0x00]), 0x6A80);
    put_data(&mut card, 0x00C1, &ecc_attributes(0x16, OID_ED25519));
    put_data(&mut card, 0x00C2, &ecc_attributes(0x12, OID_X25519));
    put_data(&mut card, 0x00C3, &ecc_attributes(0x16, OID_ED25519));
    assert_eq!(get_data(&mut card, 0x00C2), ecc_attributes(0x12, OID_X25519));

    let sig = generate(&mut card, 0xB6);
    let dec = generate(&mut card, 0xB8);
    let aut = generate(&mut card, 0xA4);
    let verifier = |template: &[u8]| {
        let point: [u8; 32] = nested(template, 0x86).try_into().unwrap_or([0; 32]);
        ed25519_dalek::VerifyingKey::from_bytes(&point).ok()
    };
    let (Some(sig), Some(aut)) = (verifier(&sig), verifier(&aut)) else {
        panic!("bad Ed25519 public keys")
    };

    ok(&mut card, 0x20, 0x00, 0x81, b"123456");
    let message = Sha256::digest(b"signed data");
    let signature = ok(&mut card, 0x2A, 0x9E, 0x9A, &message);
    let signature = ed25519_dalek::Signature::from_slice(&signature);
    assert!(signature.is_ok_and(|s| sig.verify_strict(&message, &s).is_ok()));

    ok(&mut card, 0x20, 0x00, 0x82, b"123456");
    let auth = ok(&mut card, 0x88, 0x00, 0x00, b"challenge");
    let auth = ed25519_dalek::Signature::from_slice(&auth);
    assert!(auth.is_ok_and(|s| aut.verify_strict(b"challenge", &s).is_ok()));

    // ECDH with an ephemeral X25519 key, with and without gpg's 0x40 prefix.
    let card_public: [u8; 32] = nested(&dec, 0x86).try_into().unwrap_or([0; 32]);
    let ephemeral = x25519_dalek::StaticSecret::random_from_rng(ChaCha20Rng::seed_from_u64(3));
    let ephemeral_public = x25519_dalek::PublicKey::from(&ephemeral);
    let expected = ephemeral.diffie_hellman(&x25519_dalek::PublicKey::from(card_public));
    let shared = ok(&mut card, 0x2A, 0x80, 0x86, &ecdh_data(ephemeral_public.as_bytes()));
    assert_eq!(shared, expected.as_bytes());
    let mut prefixed = vec![0x40];
    prefixed.extend_from_slice(ephemeral_public.as_bytes());
    assert_eq!(ok(&mut card, 0x2A, 0x80, 0x86, &ecdh_data(&prefixed)), expected.as_bytes());
    assert_eq!(sw(&mut card, 0x2A, 0x80, 0x86, &ecdh_data(&[1, 2, 3])), 0x6A80);
    assert_eq!(sw(&mut card, 0x2A, 0x80, 0x86, &[0xA6, 0x01]), 0x6A80);

    // Changing the attributes removes the key.
    put_data(&mut card, 0x00C1, &[0x01, 0x08, 0x00, 0x00, 0x11, 0x00]);
    assert_eq!(sw(&mut card, 0x47, 0x81, 0x00, &[0xB6, 0x00]), 0x6A88);
    assert_eq!(sw(&mut card, 0x2A, 0x9E, 0x9A, &message), 0x6A88);
}

#[test]
fn p256_keys() {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let mut card = selected();
    admin(&mut card);
    put_data(&mut card, 0x00C1, &ecc_attributes(0x13, OID_P256));
    put_data(&mut card, 0x00C2, &ecc_attributes(0x12, OID_P256));
    put_data(&mut card, 0x00C3, &ecc_attributes(0x13, OID_P256));
    let sig = generate(&mut card, 0xB6);
    let dec = generate(&mut card, 0xB8);
    let aut = generate(&mut card, 0xA4);
    let verifier = |template: &[u8]| {
        let point = nested(template, 0x86);
        assert_eq!((point.len(), point[0]), (65, 0x04));
        p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).ok()
    };
    let (Some(sig), Some(aut)) = (verifier(&sig), verifier(&aut)) else {
        panic!("bad P-256 public keys")
    };

    ok(&mut card, 0x20, 0x00, 0x81, b"123456");
    let hash = Sha256::digest(b"data");
    let raw = ok(&mut card, 0x2A, 0x9E, 0x9A, &hash);
    assert_eq!(raw.len(), 64, "r || s, not DER");
    let signature = p256::ecdsa::Signature::from_slice(&raw);
    assert!(signature.is_ok_and(|s| sig.verify_prehash(&hash, &s).is_ok()));

    ok(&mut card, 0x20, 0x00, 0x82, b"123456");
    let raw = ok(&mut card, 0x88, 0x00, 0x00, &hash);
    let signature = p256::ecdsa::Signature::from_slice(&raw);
    assert!(signature.is_ok_and(|s| aut.verify_prehash(&hash, &s).is_ok()));

    let ephemeral = p256::SecretKey::random(&mut ChaCha20Rng::seed_from_u64(5));
    let ephemeral_point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(
        &ephemeral.public_key(),
        false,
    );
    let card_public = p256::PublicKey::from_sec1_bytes(&nested(&dec, 0x86));
    let Ok(card_public) = card_public else { panic!("bad P-256 point") };
    let expected =
        p256::ecdh::diffie_hellman(ephemeral.to_nonzero_scalar(), card_public.as_affine());
    let shared = ok(&mut card, 0x2A, 0x80, 0x86, &ecdh_data(ephemeral_point.as_bytes()));
    assert_eq!(&shared[..], &expected.raw_secret_bytes()[..]);
}

#[test]
fn imported_keys_sign_and_decipher() {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    use rsa::traits::{PrivateKeyParts, PublicKeyParts};
    let mut card = selected();
    assert_eq!(sw(&mut card, 0xDB, 0x3F, 0xFF, &[0x4D, 0x00]), 0x6982);
    admin(&mut card);

    // Ed25519 signature key from a known seed.
    put_data(&mut card, 0x00C1, &ecc_attributes(0x16, OID_ED25519));
    let seed = [0x11u8; 32];
    let known = ed25519_dalek::SigningKey::from_bytes(&seed);
    ok(&mut card, 0xDB, 0x3F, 0xFF, &import_template(0xB6, &[(0x92, &seed)]));
    assert_eq!(
        nested(&ok(&mut card, 0x47, 0x81, 0, &[0xB6, 0]), 0x86),
        known.verifying_key().as_bytes()
    );
    ok(&mut card, 0x20, 0x00, 0x81, b"123456");
    let signature = ok(&mut card, 0x2A, 0x9E, 0x9A, b"imported");
    let signature = ed25519_dalek::Signature::from_slice(&signature);
    assert!(signature.is_ok_and(|s| known.verifying_key().verify_strict(b"imported", &s).is_ok()));
    assert_eq!(nested(&get_data(&mut card, 0x006E), 0xDE), [1, 2, 2, 0, 3, 0]);

    // X25519 decryption key, scalar big-endian as OpenPGP stores it.
    put_data(&mut card, 0x00C2, &ecc_attributes(0x12, OID_X25519));
    let scalar = [0x22u8; 32];
    let secret = x25519_dalek::StaticSecret::from(scalar);
    let mut big_endian = scalar;
    big_endian.reverse();
    ok(&mut card, 0xDB, 0x3F, 0xFF, &import_template(0xB8, &[(0x92, &big_endian)]));
    let peer = x25519_dalek::StaticSecret::from([0x33u8; 32]);
    let peer_public = x25519_dalek::PublicKey::from(&peer);
    ok(&mut card, 0x20, 0x00, 0x82, b"123456");
    let shared = ok(&mut card, 0x2A, 0x80, 0x86, &ecdh_data(peer_public.as_bytes()));
    assert_eq!(shared, secret.diffie_hellman(&peer_public).as_bytes());

    // P-256 authentication key with its public key (99), which must match.
    put_data(&mut card, 0x00C3, &ecc_attributes(0x13, OID_P256));
    let p256_key = p256::SecretKey::random(&mut ChaCha20Rng::seed_from_u64(8));
    let scalar = p256_key.to_bytes();
    let public =
        p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&p256_key.public_key(), false);
    let wrong = [0x04u8; 65];
    let bad = import_template(0xA4, &[(0x92, &scalar), (0x99, &wrong)]);
    assert_eq!(sw(&mut card, 0xDB, 0x3F, 0xFF, &bad), 0x6A80);
    let good = import_template(0xA4, &[(0x92, &scalar), (0x99, public.as_bytes())]);
    ok(&mut card, 0xDB, 0x3F, 0xFF, &good);
    let hash = Sha256::digest(b"auth");
    let raw = ok(&mut card, 0x88, 0x00, 0x00, &hash);
    let verifier = p256::ecdsa::VerifyingKey::from(p256_key.public_key());
    let signature = p256::ecdsa::Signature::from_slice(&raw);
    assert!(signature.is_ok_and(|s| verifier.verify_prehash(&hash, &s).is_ok()));

    // RSA-2048 signature key from e, p, q.
    put_data(&mut card, 0x00C1, &[0x01, 0x08, 0x00, 0x00, 0x11, 0x00]);
    let rsa_key = match rsa::RsaPrivateKey::new(&mut ChaCha20Rng::seed_from_u64(10), 2048) {
        Ok(k) => k,
        Err(e) => panic!("{e}"),
    };
    let primes = rsa_key.primes();
    let (e, p, q) = (rsa_key.e().to_bytes_be(), primes[0].to_bytes_be(), primes[1].to_bytes_be());
    let template = import_template(0xB6, &[(0x91, &e), (0x92, &p), (0x93, &q)]);
    assert!(template.len() > 255, "needs an extended APDU");
    ok(&mut card, 0xDB, 0x3F, 0xFF, &template);
    let read = ok(&mut card, 0x47, 0x81, 0, &[0xB6, 0]);
    assert_eq!(nested(&read, 0x81), rsa_key.n().to_bytes_be());
    let digest = Sha256::digest(b"rsa import");
    let mut digest_info = SHA256_DIGEST_INFO.to_vec();
    digest_info.extend_from_slice(&digest);
    ok(&mut card, 0x20, 0x00, 0x81, b"123456");
    let signature = ok(&mut card, 0x2A, 0x9E, 0x9A, &digest_info);
    let public = rsa_key.to_public_key();
    assert!(public.verify(rsa::Pkcs1v15Sign::new_unprefixed(), &digest_info, &signature).is_ok());

    // Malformed templates.
    for bad in [
        vec![0x4D, 0x00],
        vec![0x4D, 0x02, 0xB6, 0x00],
        import_template(0xB6, &[(0x92, &p)]),
        import_template(0xB6, &[(0x91, &e), (0x92, &p), (0x93, &p)]),
        vec![0x4D, 0x05, 0xB6, 0x00, 0x7F, 0x48, 0x09],
    ] {
        assert_eq!(sw(&mut card, 0xDB, 0x3F, 0xFF, &bad), 0x6A80);
    }
    assert_eq!(sw(&mut card, 0xDB, 0x3F, 0xFE, &good), 0x6A86);
}

#[test]
fn terminate_and_activate_restore_the_factory_state() {
    let mut card = selected();
    admin(&mut card);
    put_data(&mut card, 0x005B, b"Someone");
    put_data(&mut card, 0x00C1, &ecc_attributes(0x16, OID_ED25519));
    generate(&mut card, 0xB6);
    ok(&mut card, 0x24, 0x00, 0x81, b"123456999999");
    card.power_cycle();
    ok(&mut card, 0xA4, 0x04, 0x00, &OPENPGP_AID);
    assert_eq!(sw(&mut card, 0xE6, 0x00, 0x00, &[]), 0x6982, "PW3 neither verified nor blocked");

    // As ykman resets: block PW1 and PW3 with wrong PINs, TERMINATE, ACTIVATE.
    for p2 in [0x81, 0x83] {
        for _ in 0..3 {
            assert_eq!(sw(&mut card, 0x20, 0x00, p2, &[0; 8]), 0x6982);
        }
    }
    ok(&mut card, 0xE6, 0x00, 0x00, &[]);
    assert_eq!(sw(&mut card, 0xCA, 0x00, 0x6E, &[]), 0x6285);
    assert_eq!(sw(&mut card, 0xA4, 0x04, 0x00, &OPENPGP_AID), 0x6285);
    assert_eq!(sw(&mut card, 0x20, 0x00, 0x81, b"123456"), 0x6285);
    ok(&mut card, 0x44, 0x00, 0x00, &[]);
    ok(&mut card, 0xA4, 0x04, 0x00, &OPENPGP_AID);
    assert_eq!(get_data(&mut card, 0x00C4), [0x01, 0x7F, 0x7F, 0x7F, 0x03, 0x00, 0x03]);
    assert_eq!(get_data(&mut card, 0x00C1), [0x01, 0x08, 0x00, 0x00, 0x11, 0x00]);
    assert_eq!(nested(&get_data(&mut card, 0x0065), 0x5B), b"");
    assert_eq!(sw(&mut card, 0x47, 0x81, 0x00, &[0xB6, 0x00]), 0x6A88);
    ok(&mut card, 0x20, 0x00, 0x81, b"123456");
    ok(&mut card, 0x20, 0x00, 0x83, b"12345678");
    // With PW3 verified TERMINATE needs no blocking; ACTIVATE on an active card is a no-op.
    ok(&mut card, 0x44, 0x00, 0x00, &[]);
    ok(&mut card, 0xE6, 0x00, 0x00, &[]);
    ok(&mut card, 0x44, 0x00, 0x00, &[]);
    ok(&mut card, 0xA4, 0x04, 0x00, &OPENPGP_AID);
}

#[test]
fn kdf_pin_retries_and_challenge() {
    let mut card = selected();
    admin(&mut card);
    // KDF-ITERSALTED-S2K: PW1 and PW3 become the initial hashes.
    let mut kdf = Vec::new();
    tlv::write(&mut kdf, 0x81, &[0x03]);
    tlv::write(&mut kdf, 0x82, &[0x08]);
    tlv::write(&mut kdf, 0x83, &0x0078_0000u32.to_be_bytes());
    tlv::write(&mut kdf, 0x84, &[1; 8]);
    tlv::write(&mut kdf, 0x86, &[3; 8]);
    tlv::write(&mut kdf, 0x87, &[0xA1; 32]);
    tlv::write(&mut kdf, 0x88, &[0xA3; 32]);
    put_data(&mut card, 0x00F9, &kdf);
    assert_eq!(get_data(&mut card, 0x00F9), kdf);
    assert_eq!(sw(&mut card, 0x20, 0x00, 0x81, b"123456"), 0x6982);
    ok(&mut card, 0x20, 0x00, 0x81, &[0xA1; 32]);
    ok(&mut card, 0x20, 0x00, 0x83, &[0xA3; 32]);
    put_data(&mut card, 0x00F9, &[0x81, 0x01, 0x00]);
    ok(&mut card, 0x20, 0x00, 0x81, b"123456");
    assert_eq!(sw(&mut card, 0xDA, 0x00, 0xF9, &[0x81, 0x01, 0x07]), 0x6A80);

    // Yubico SET PIN RETRIES.
    ok(&mut card, 0x20, 0x00, 0x83, b"12345678");
    ok(&mut card, 0xF2, 0x00, 0x00, &[5, 4, 6]);
    assert_eq!(get_data(&mut card, 0x00C4)[4..], [5, 0, 6]);
    assert_eq!(sw(&mut card, 0xF2, 0x00, 0x00, &[5, 0, 6]), 0x6A80);
    assert_eq!(sw(&mut card, 0xF2, 0x00, 0x00, &[5, 4]), 0x6700);

    // GET CHALLENGE.
    let (random, status) = {
        let mut channel = Channel::new(&mut card);
        match channel.transmit(&Command::new(0, 0x84, 0, 0).with_le(Le::Exactly(16))) {
            Ok(r) => (r.data().to_vec(), r.status()),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!((random.len(), status), (16, StatusWord::SUCCESS));
    assert_ne!(random, [0; 16]);
    assert_eq!(card.process(&[0x00, 0x84, 0x00, 0x00]), [0x67, 0x00]);
}

#[test]
fn malformed_commands_get_status_words() {
    let mut card = selected();
    assert_eq!(sw(&mut card, 0x99, 0x00, 0x00, &[]), 0x6D00);
    assert_eq!(sw(&mut card, 0x2A, 0x9E, 0x9B, b"x"), 0x6A86);
    assert_eq!(sw(&mut card, 0x2A, 0x9E, 0x9A, b"x"), 0x6982);
    assert_eq!(sw(&mut card, 0x88, 0x00, 0x00, b"x"), 0x6982);
    assert_eq!(sw(&mut card, 0x88, 0x01, 0x00, b"x"), 0x6A86);
    assert_eq!(sw(&mut card, 0x47, 0x81, 0x00, &[]), 0x6700);
    assert_eq!(sw(&mut card, 0x47, 0x81, 0x00, &[0xB7, 0x00]), 0x6A80);
    assert_eq!(sw(&mut card, 0x47, 0x81, 0x00, &[0xB6, 0x05]), 0x6A80);
    assert_eq!(sw(&mut card, 0x47, 0x82, 0x00, &[0xB6, 0x00]), 0x6A86);
    assert_eq!(sw(&mut card, 0x47, 0x81, 0x00, &[0xB6, 0x03, 0x84, 0x01, 0x81]), 0x6A88);
    assert_eq!(sw(&mut card, 0xE6, 0x01, 0x00, &[]), 0x6A86);
    assert_eq!(sw(&mut card, 0xA5, 0x00, 0x04, &[]), 0x6A80);
    admin(&mut card);
    assert_eq!(sw(&mut card, 0xDA, 0x00, 0xC1, &[]), 0x6A80);
    assert_eq!(sw(&mut card, 0xDA, 0x00, 0xC3, &[0x13, 0x2A]), 0x6A80);
    assert_eq!(sw(&mut card, 0xDB, 0x3F, 0xFF, &[0xFF, 0xFF, 0x4D]), 0x6A80);

    // Random commands never panic and always end in a status word.
    use rand_core::RngCore;
    let mut rng = ChaCha20Rng::seed_from_u64(77);
    for _ in 0..3000 {
        let len = (rng.next_u32() % 40) as usize;
        let mut apdu = vec![0u8; len];
        rng.fill_bytes(&mut apdu);
        if let Some(cla) = apdu.first_mut() {
            *cla &= 0x10;
        }
        if apdu.len() > 1 && rng.next_u32() % 2 == 0 {
            let ins = [0x20, 0x24, 0x2C, 0x2A, 0x44, 0x47, 0x84, 0x88, 0xCA, 0xDA, 0xDB, 0xE6];
            apdu[1] = ins[(rng.next_u32() as usize) % ins.len()];
        }
        if apdu.len() > 1 && apdu[1] == 0xE6 {
            continue;
        }
        let answer = card.process(&apdu);
        assert!(answer.len() >= 2);
    }
}

#[test]
fn p384_keys_and_keys_survive_a_power_cycle() {
    use p384::ecdsa::signature::hazmat::PrehashVerifier;
    const OID_P384: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x22];
    let mut card = selected();
    admin(&mut card);
    put_data(&mut card, 0x00C1, &ecc_attributes(0x13, OID_P384));
    put_data(&mut card, 0x00C2, &ecc_attributes(0x12, OID_P384));
    let sig = generate(&mut card, 0xB6);
    let dec = generate(&mut card, 0xB8);
    card.power_cycle();
    ok(&mut card, 0xA4, 0x04, 0x00, &OPENPGP_AID);
    assert_eq!(nested(&ok(&mut card, 0x47, 0x81, 0, &[0xB6, 0]), 0x7F49), sig);

    ok(&mut card, 0x20, 0x00, 0x81, b"123456");
    let hash = sha2::Sha384::digest(b"p384");
    let raw = ok(&mut card, 0x2A, 0x9E, 0x9A, &hash);
    assert_eq!(raw.len(), 96);
    let verifier = p384::ecdsa::VerifyingKey::from_sec1_bytes(&nested(&sig, 0x86));
    let Ok(verifier) = verifier else { panic!("bad P-384 point") };
    let signature = p384::ecdsa::Signature::from_slice(&raw);
    assert!(signature.is_ok_and(|s| verifier.verify_prehash(&hash, &s).is_ok()));

    ok(&mut card, 0x20, 0x00, 0x82, b"123456");
    let ephemeral = p384::SecretKey::random(&mut ChaCha20Rng::seed_from_u64(6));
    let point = p384::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(
        &ephemeral.public_key(),
        false,
    );
    let Ok(card_public) = p384::PublicKey::from_sec1_bytes(&nested(&dec, 0x86)) else {
        panic!("bad P-384 point")
    };
    let expected =
        p384::ecdh::diffie_hellman(ephemeral.to_nonzero_scalar(), card_public.as_affine());
    let shared = ok(&mut card, 0x2A, 0x80, 0x86, &ecdh_data(point.as_bytes()));
    assert_eq!(&shared[..], &expected.raw_secret_bytes()[..]);
    // A P-256 point on a P-384 key is refused.
    let other = p256::SecretKey::random(&mut ChaCha20Rng::seed_from_u64(7));
    let other =
        p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&other.public_key(), false);
    assert_eq!(sw(&mut card, 0x2A, 0x80, 0x86, &ecdh_data(other.as_bytes())), 0x6A80);
}

#[test]
fn firmware_version_shapes_version_answer_and_algorithm_information() {
    let identity = Identity {
        serial: 12_345_678,
        version: keystation_softcard::Version(5, 7, 1),
        ..Identity::default()
    };
    let mut card = SoftCard::yubikey5(identity, Some(1));
    ok(&mut card, 0xA4, 0x04, 0x00, &OPENPGP_AID);
    assert_eq!(ok(&mut card, 0xF1, 0, 0, &[]), [0x05, 0x07, 0x01]);
    assert_eq!(&get_data(&mut card, 0x004F)[10..14], &[0x12, 0x34, 0x56, 0x78]);
    let info = get_data(&mut card, 0x00FA);
    let entries: Vec<(u32, Vec<u8>)> = tlv::parse(&nested(&info, 0xFA))
        .map(|t| t.map(|t| (t.tag().0, t.value().to_vec())))
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    assert!(!entries.iter().any(|(_, v)| *v == ecc_attributes(0x16, OID_X25519)));
    assert!(!entries.contains(&(0xC2, ecc_attributes(0x16, OID_ED25519))));
    assert!(entries.contains(&(0xC2, ecc_attributes(0x12, OID_X25519))));

    let old = Identity { version: keystation_softcard::Version(5, 1, 2), ..Identity::default() };
    let mut card = SoftCard::yubikey5(old, Some(1));
    ok(&mut card, 0xA4, 0x04, 0x00, &OPENPGP_AID);
    let related = get_data(&mut card, 0x006E);
    assert!(matches!(tlv::find_nested(&related, 0xD9), Ok(None)), "no D9 before 5.2.1");
}
