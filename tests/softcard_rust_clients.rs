#![cfg(feature = "test-vpcd")]
//! Two independent Rust clients drive the software YubiKey 5 through a real pcscd:
//! `keystation simulate` plugs it into the vpcd reader of a private pcscd (started by
//! `scripts/with-pcscd`), and the `openpgp-card` crate (over `card-backend-pcsc`) and the
//! `yubikey` crate talk to it exactly as they would to a YubiKey in a USB port.
//!
//! ```text
//! scripts/with-pcscd cargo test --features test-vpcd --test softcard_rust_clients
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/simulator.rs"]
mod simulator;

use card_backend_pcsc::PcscBackend;
use openpgp_card::Card;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, VerifyingKey};
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use simulator::{SERIAL, Simulator};
use yubikey::piv::{self, AlgorithmId, SlotId};
use yubikey::{MgmKey, PinPolicy, TouchPolicy, YubiKey};

/// The OpenPGP ident `openpgp-card` uses: Yubico's manufacturer id and the BCD serial,
/// which reads as the decimal serial.
fn openpgp_ident() -> String {
    format!("0006:{SERIAL:08}")
}

fn open_openpgp() -> Card<openpgp_card::state::Open> {
    let backends = PcscBackend::card_backends(None).expect("PC/SC through pcscd");
    Card::<openpgp_card::state::Open>::open_by_ident(backends, &openpgp_ident())
        .unwrap_or_else(|e| panic!("no OpenPGP card {} through pcscd: {e}", openpgp_ident()))
}

/// `openpgp-card`: finds the card by its ident, reads the application related data,
/// verifies PW3, writes the cardholder name and reads it back in a new session.
#[test]
fn openpgp_card_crate_through_pcscd() {
    let _simulator = Simulator::start();

    let mut card = open_openpgp();
    {
        let mut tx = card.transaction().expect("transaction");
        let aid = tx.application_identifier().expect("AID");
        assert_eq!(aid.manufacturer(), 0x0006);
        assert_eq!(aid.manufacturer_name(), "Yubico AB");
        assert_eq!(aid.version(), 0x0304, "OpenPGP 3.4");
        assert_eq!(format!("{:08X}", aid.serial()), format!("{SERIAL:08}"));
        assert_eq!(aid.ident(), openpgp_ident());

        let pw = tx.pw_status_bytes().expect("PW status bytes");
        assert_eq!(pw.err_count_pw1(), 3);
        assert_eq!(pw.err_count_pw3(), 3);
        // Yubico's own DO: GET DATA 5F52 historical bytes parse and the firmware
        // version (F1 via GET VERSION) is the configured one.
        tx.historical_bytes().expect("historical bytes");
        assert_eq!(tx.firmware_version().expect("firmware version"), vec![5, 4, 3]);

        let mut admin = tx
            .to_admin_card(SecretString::new("12345678".into()))
            .expect("VERIFY PW3 with the factory Admin PIN");
        admin.set_cardholder_name("Rust<<Client").expect("PUT DATA 5B");
    }
    drop(card);

    // A new connection: nothing is cached in the client.
    let mut card = open_openpgp();
    let mut tx = card.transaction().expect("transaction");
    assert_eq!(tx.cardholder_name().expect("cardholder data 65"), "Rust<<Client");
    // A wrong Admin PIN is refused and counted.
    assert!(tx.verify_admin_pin(SecretString::new("87654321".into())).is_err());
    // The client caches the application related data; read it again from the card.
    tx.invalidate_cache().expect("re-read application related data");
    assert_eq!(tx.pw_status_bytes().expect("PW status bytes").err_count_pw3(), 2);
}

/// `yubikey`: opens the card by serial, reads version, serial and CHUID, verifies the
/// PIN, authenticates with the factory 3DES management key, generates a P-256 key in 9c,
/// signs with it and checks the signature with `p256`.
#[test]
fn yubikey_crate_through_pcscd() {
    let _simulator = Simulator::start();

    let mut yubikey =
        YubiKey::open_by_serial(SERIAL.into()).expect("YubiKey with the simulator's serial");
    assert_eq!(yubikey.serial().0, SERIAL);
    let version = yubikey.version();
    assert_eq!((version.major, version.minor, version.patch), (5, 4, 3));
    assert!(yubikey.name().contains("Yubico YubiKey"), "reader {}", yubikey.name());

    // A factory-fresh card has no CHUID: the crate reports it as not found (6A82).
    match yubikey.chuid() {
        Ok(chuid) => panic!("a fresh card has no CHUID, got {chuid:?}"),
        Err(yubikey::Error::NotFound) => {}
        Err(e) => panic!("CHUID: expected NotFound, got {e:?}"),
    }

    assert!(yubikey.verify_pin(b"654321").is_err(), "a wrong PIN is refused");
    assert_eq!(yubikey.get_pin_retries().expect("PIN retries"), 2);
    yubikey.verify_pin(b"123456").expect("VERIFY with the factory PIN");
    assert_eq!(yubikey.get_pin_retries().expect("PIN retries"), 3);

    yubikey.authenticate(MgmKey::default()).expect("3DES management key authentication");

    let spki = piv::generate(
        &mut yubikey,
        SlotId::Signature,
        AlgorithmId::EccP256,
        PinPolicy::Default,
        TouchPolicy::Default,
    )
    .expect("GENERATE P-256 in 9c");
    let point = spki.subject_public_key.as_bytes().expect("BIT STRING of whole bytes");
    let verifying_key = VerifyingKey::from_sec1_bytes(point).expect("a valid P-256 point");
    assert_eq!(point.len(), 65, "uncompressed point");

    // 9c needs the PIN for every signature (PIN policy "always" by default).
    yubikey.verify_pin(b"123456").expect("VERIFY before signing");
    let digest = Sha256::digest(b"signed by the software YubiKey through pcscd");
    let signature = piv::sign_data(&mut yubikey, &digest, AlgorithmId::EccP256, SlotId::Signature)
        .expect("GENERAL AUTHENTICATE sign");
    let signature = Signature::from_der(&signature).expect("DER ECDSA signature");
    verifying_key.verify_prehash(&digest, &signature).expect("signature verifies with p256");

    // The crate lists the slot's metadata as the card reports it (GET METADATA, F7).
    let metadata = piv::metadata(&mut yubikey, SlotId::Signature).expect("metadata of 9c");
    assert_eq!(metadata.algorithm, piv::ManagementAlgorithmId::Asymmetric(AlgorithmId::EccP256));
}
