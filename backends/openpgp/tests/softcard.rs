//! The client against the software YubiKey 5 (keystation-softcard), in process: what the
//! card conformance suite (tests/conformance, keystation-card-conformance, run over this
//! card in process and through pcscd, and over opcard) does not check — APDU budgets,
//! refusals before any APDU, another vendor's announcements, card removal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ed25519_dalek::Verifier as _;
use keystation_core::key::{KeyAlgorithm, PublicKey, RsaBits};
use keystation_core::keygen::{
    KeyPurpose, KeyRequest, OpenPgpKeySlot, PinPolicy, SignInput, Signer, TouchPolicy,
};
use keystation_core::{Card, KeyGen, SecretBytes, SecretKey, StatusWord};
use keystation_openpgp::{CardSigner, Error, KeyStatus, OpenPgpCard, PinRef, Uif};
use keystation_softcard::{Identity, SoftCard};

const SIG: OpenPgpKeySlot = OpenPgpKeySlot::Signature;
const DEC: OpenPgpKeySlot = OpenPgpKeySlot::Decryption;
const AUT: OpenPgpKeySlot = OpenPgpKeySlot::Authentication;

fn softcard() -> SoftCard {
    SoftCard::yubikey5(Identity::default(), Some(7))
}

fn pin(s: &str) -> SecretBytes {
    SecretBytes::copy_from(s.as_bytes())
}

fn admin(pgp: &mut OpenPgpCard<'_>) {
    pgp.verify(PinRef::Pw3, &pin("12345678")).unwrap();
}

fn verify_ed25519(public: &PublicKey, message: &[u8], signature: &[u8]) {
    let key: [u8; 32] = public.point().unwrap().try_into().unwrap();
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key).unwrap();
    let signature = ed25519_dalek::Signature::from_slice(signature).unwrap();
    key.verify(message, &signature).expect("Ed25519 signature verifies");
}

#[test]
fn reads_everything_on_a_fresh_card() {
    let mut card = softcard();
    let mut pgp = OpenPgpCard::select(&mut card).unwrap();
    // SELECT, 6E in one extended APDU, FA.
    assert_eq!(pgp.apdus_sent(), 3);
    assert!(pgp.uses_extended_length());
    assert_eq!(pgp.serial(), "10000001");
    assert_eq!(pgp.manufacturer_name(), Some("Yubico"));
    let ard = pgp.application_related_data().clone();
    assert_eq!(ard.aid.version(), (3, 4));
    assert_eq!(ard.aid.manufacturer(), 6);
    let ext = ard.extended_length.unwrap();
    assert_eq!((ext.max_command, ext.max_response), (0x0BFE, 0x0BFE));
    assert!(ard.extended_capabilities.key_import());
    assert!(ard.extended_capabilities.algorithm_attributes_changeable());
    for slot in [SIG, DEC, AUT] {
        assert_eq!(pgp.slot_algorithm(slot).unwrap(), KeyAlgorithm::Rsa(RsaBits::Rsa2048));
        assert_eq!(pgp.uif(slot), Some(Uif::Off));
    }
    let pw = pgp.pw_status();
    assert_eq!((pw.pw1_retries, pw.rc_retries, pw.pw3_retries), (3, 0, 3));
    assert_eq!((pw.pw1_max_len, pw.rc_max_len, pw.pw3_max_len), (127, 127, 127));
    assert!(pw.pw1_valid_for_several_signatures);
    assert_eq!(ard.fingerprints, [None, None, None]);
    assert_eq!(ard.generation_times, [None, None, None]);
    assert_eq!(ard.key_status, [Some(KeyStatus::None); 3]);

    let info = pgp.algorithm_information().unwrap();
    assert!(info.algorithms(SIG).contains(&KeyAlgorithm::Ed25519));
    assert!(info.algorithms(DEC).contains(&KeyAlgorithm::X25519));
    assert!(!info.algorithms(SIG).contains(&KeyAlgorithm::X25519));
    assert_eq!(pgp.algorithms(), KeyAlgorithm::ALL);

    let holder = pgp.cardholder_data().unwrap().clone();
    assert!(holder.name.is_empty());
    assert_eq!(holder.sex, Some(0x30));
    assert!(pgp.url().unwrap().is_empty());
    assert!(pgp.login_data().unwrap().is_empty());
    // Cardholder data is cached: reading it again sends nothing.
    let before = pgp.apdus_sent();
    pgp.cardholder_data().unwrap();
    assert_eq!(pgp.apdus_sent(), before);
    // The cached 6E matches a fresh read.
    pgp.refresh().unwrap();
    assert_eq!(pgp.application_related_data(), &ard);
}

#[test]
fn factory_reset_after_changing_pins_restores_factory_pins() {
    let mut card = softcard();
    let mut pgp = OpenPgpCard::select(&mut card).unwrap();
    admin(&mut pgp);
    pgp.set_cardholder_name("Doe", "Jane").unwrap();
    pgp.set_algorithm(SIG, KeyAlgorithm::Ed25519).unwrap();
    pgp.generate_key_pair(SIG).unwrap();
    pgp.change_pin(PinRef::Pw3, &pin("12345678"), &pin("admin-pin-2")).unwrap();
    pgp.change_pin(PinRef::Pw1, &pin("123456"), &pin("user-pin-2")).unwrap();
    // A wrong try, so that the reset must count from the card's counters.
    assert!(matches!(
        pgp.verify(PinRef::Pw1, &pin("999999")),
        Err(Error::WrongPin { pin: PinRef::Pw1, retries: 2 })
    ));

    let before = pgp.apdus_sent();
    pgp.factory_reset().unwrap();
    // 2 + 3 wrong VERIFYs, TERMINATE, ACTIVATE, SELECT, GET DATA 6E.
    assert_eq!(pgp.apdus_sent() - before, 9);

    let pw = pgp.pw_status();
    assert_eq!((pw.pw1_retries, pw.rc_retries, pw.pw3_retries), (3, 0, 3));
    assert_eq!(pgp.slot_algorithm(SIG).unwrap(), KeyAlgorithm::Rsa(RsaBits::Rsa2048));
    assert_eq!(pgp.application_related_data().key_status[0], Some(KeyStatus::None));
    assert!(pgp.cardholder_data().unwrap().name.is_empty());
    assert!(matches!(
        pgp.verify(PinRef::Pw1, &pin("user-pin-2")),
        Err(Error::WrongPin { retries: 2, .. })
    ));
    pgp.verify(PinRef::Pw1, &pin("123456")).unwrap();
    pgp.verify(PinRef::Pw1Signing, &pin("123456")).unwrap();
    pgp.verify(PinRef::Pw3, &pin("12345678")).unwrap();
    assert_eq!(pgp.read_pw_status().unwrap().pw1_retries, 3);
}

#[test]
fn unsupported_algorithms_are_refused_before_any_apdu() {
    let mut card = softcard();
    let mut pgp = OpenPgpCard::select(&mut card).unwrap();
    admin(&mut pgp);
    let before = pgp.apdus_sent();
    assert!(matches!(
        pgp.set_algorithm(SIG, KeyAlgorithm::X25519),
        Err(Error::UnsupportedAlgorithm {
            slot: OpenPgpKeySlot::Signature,
            algorithm: KeyAlgorithm::X25519
        })
    ));
    assert!(matches!(
        pgp.set_algorithm(DEC, KeyAlgorithm::Ed25519),
        Err(Error::UnsupportedAlgorithm { .. })
    ));
    let request = KeyRequest::new(KeyPurpose::OpenPgp(AUT), KeyAlgorithm::X25519);
    assert!(matches!(
        KeyGen::generate(&mut pgp, &request).map(|_| ()),
        Err(keystation_core::Error::UnsupportedAlgorithm(KeyAlgorithm::X25519))
    ));
    let mut request = KeyRequest::new(KeyPurpose::OpenPgp(SIG), KeyAlgorithm::Ed25519);
    request.pin_policy = PinPolicy::Always;
    assert!(matches!(
        KeyGen::generate(&mut pgp, &request).map(|_| ()),
        Err(keystation_core::Error::UnsupportedPolicy)
    ));
    let piv = KeyRequest::new(
        KeyPurpose::Piv(keystation_core::keygen::PivSlot::Authentication),
        KeyAlgorithm::NistP256,
    );
    assert!(KeyGen::generate(&mut pgp, &piv).is_err());
    assert_eq!(pgp.apdus_sent(), before);
}

/// A scripted OpenPGP 3.4 card from another vendor (FSIJ) that lists only RSA-2048 in
/// its algorithm information, has no touch DOs and no extended length.
struct ScriptedCard {
    received: Vec<Vec<u8>>,
}

impl ScriptedCard {
    fn answer(command: &[u8]) -> Vec<u8> {
        let rsa = [0x01, 0x08, 0x00, 0x00, 0x11, 0x00];
        match command {
            [0x00, 0xA4, 0x04, 0x00, 0x06, 0xD2, 0x76, 0x00, 0x01, 0x24, 0x01] => vec![0x90, 0x00],
            [0x00, 0xCA, 0x00, 0x6E, 0x00] => {
                let mut discretionary = Vec::new();
                for (tag, value) in [
                    (0xC0u8, &[0x34, 0, 0, 0x80, 0x08, 0, 0, 0xFF, 0, 0][..]),
                    (0xC1, &rsa[..]),
                    (0xC2, &rsa[..]),
                    (0xC3, &rsa[..]),
                    (0xC4, &[0x00, 0x7F, 0x7F, 0x7F, 0x03, 0x00, 0x03][..]),
                ] {
                    discretionary.extend_from_slice(&[tag, value.len() as u8]);
                    discretionary.extend_from_slice(value);
                }
                let mut body =
                    vec![0x4F, 0x10, 0xD2, 0x76, 0x00, 0x01, 0x24, 0x01, 0x03, 0x04, 0xF5, 0x17];
                body.extend_from_slice(&[0x00, 0x00, 0x12, 0x34, 0x00, 0x00]);
                body.extend_from_slice(&[
                    0x5F, 0x52, 0x0A, 0x00, 0x31, 0x84, 0x73, 0x80, 0x01, 0x80, 0x05, 0x90, 0x00,
                ]);
                body.extend_from_slice(&[0x73, discretionary.len() as u8]);
                body.extend(discretionary);
                let mut out = vec![0x6E, body.len() as u8];
                out.extend(body);
                out.extend_from_slice(&[0x90, 0x00]);
                out
            }
            [0x00, 0xCA, 0x00, 0xFA, 0x00] => {
                let mut out = vec![0xFA, 24];
                for tag in [0xC1, 0xC2, 0xC3] {
                    out.extend_from_slice(&[tag, 6]);
                    out.extend_from_slice(&rsa);
                }
                out.extend_from_slice(&[0x90, 0x00]);
                out
            }
            _ => StatusWord::INS_NOT_SUPPORTED.0.to_be_bytes().to_vec(),
        }
    }
}

impl Card for ScriptedCard {
    fn transmit(
        &mut self,
        command: &[u8],
        response: &mut [u8],
    ) -> Result<usize, keystation_core::Error> {
        self.received.push(command.to_vec());
        let answer = Self::answer(command);
        response[..answer.len()].copy_from_slice(&answer);
        Ok(answer.len())
    }
    fn supports_extended_length(&self) -> bool {
        false
    }
}

#[test]
fn another_vendors_card_is_driven_by_what_it_announces() {
    let mut card = ScriptedCard { received: Vec::new() };
    {
        let mut pgp = OpenPgpCard::select(&mut card).unwrap();
        assert_eq!(pgp.apdus_sent(), 3);
        assert_eq!(pgp.manufacturer_name(), Some("FSIJ"));
        assert_eq!(pgp.serial(), "00001234");
        assert!(!pgp.uses_extended_length());
        assert!(!pgp.pw_status().pw1_valid_for_several_signatures);
        assert_eq!(pgp.algorithms(), [KeyAlgorithm::Rsa(RsaBits::Rsa2048)]);
        assert_eq!(pgp.supported_algorithms(DEC), [KeyAlgorithm::Rsa(RsaBits::Rsa2048)]);

        assert!(matches!(
            pgp.set_algorithm(SIG, KeyAlgorithm::Ed25519),
            Err(Error::UnsupportedAlgorithm { algorithm: KeyAlgorithm::Ed25519, .. })
        ));
        assert!(matches!(
            pgp.check_algorithm(AUT, KeyAlgorithm::Rsa(RsaBits::Rsa4096)),
            Err(Error::UnsupportedAlgorithm { .. })
        ));
        let request = KeyRequest::new(KeyPurpose::OpenPgp(DEC), KeyAlgorithm::NistP256);
        assert!(matches!(
            KeyGen::generate(&mut pgp, &request).map(|_| ()),
            Err(keystation_core::Error::UnsupportedAlgorithm(KeyAlgorithm::NistP256))
        ));
        let mut request =
            KeyRequest::new(KeyPurpose::OpenPgp(SIG), KeyAlgorithm::Rsa(RsaBits::Rsa2048));
        request.touch_policy = TouchPolicy::Always;
        assert!(matches!(
            KeyGen::generate(&mut pgp, &request).map(|_| ()),
            Err(keystation_core::Error::UnsupportedPolicy)
        ));
        assert!(matches!(pgp.set_uif(SIG, Uif::On), Err(Error::UnsupportedFeature(_))));
        assert!(matches!(
            pgp.import_key(SIG, &SecretKey::Ed25519(SecretBytes::copy_from(&[1; 32]))),
            Err(Error::UnsupportedAlgorithm { .. })
        ));
        assert_eq!(pgp.apdus_sent(), 3);
    }
    assert_eq!(card.received.len(), 3);
}

/// Issue 4: reset, PINs, three ECC keys, fingerprints and timestamps, and three
/// certificate signatures in at most 40 APDUs.
#[test]
fn provisioning_sequence_apdu_budget() {
    let mut card = softcard();
    let mut pgp = OpenPgpCard::select(&mut card).unwrap();
    pgp.factory_reset().unwrap();
    pgp.change_pin(PinRef::Pw3, &pin("12345678"), &pin("admin-0001")).unwrap();
    pgp.change_pin(PinRef::Pw1, &pin("123456"), &pin("user-0001")).unwrap();
    pgp.verify(PinRef::Pw3, &pin("admin-0001")).unwrap();
    pgp.remember_user_pin(pin("user-0001")).unwrap();

    let mut publics = Vec::new();
    for (slot, algorithm) in
        [(SIG, KeyAlgorithm::Ed25519), (DEC, KeyAlgorithm::X25519), (AUT, KeyAlgorithm::Ed25519)]
    {
        let generated =
            KeyGen::generate(&mut pgp, &KeyRequest::new(KeyPurpose::OpenPgp(slot), algorithm))
                .unwrap();
        publics.push(generated.public.clone());
    }
    for (i, slot) in [SIG, DEC, AUT].into_iter().enumerate() {
        pgp.write_fingerprint(slot, &[0x10 + i as u8; 20]).unwrap();
        pgp.write_generation_time(slot, 1_700_000_000).unwrap();
    }
    let mut signer = CardSigner::new(&mut pgp, SIG).unwrap();
    for message in [
        &b"primary self-signature"[..],
        b"encryption subkey binding",
        b"authentication subkey binding",
    ] {
        let signature = signer.sign(SignInput::Message(message)).unwrap();
        verify_ed25519(&publics[0], message, &signature);
    }
    drop(signer);

    let sent = pgp.apdus_sent();
    assert!(sent <= 40, "{sent} APDUs");
    // 3 select + 10 reset + 3 PINs + 6 attributes/generation + 6 DOs + 4 signing.
    assert_eq!(sent, 32);

    // What was written is what the card has.
    let cached = pgp.application_related_data().clone();
    pgp.refresh().unwrap();
    assert_eq!(pgp.application_related_data(), &cached);
    assert_eq!(cached.generation_times, [Some(1_700_000_000); 3]);
    assert_eq!(cached.fingerprints[2], Some([0x12; 20]));
}

#[test]
fn card_removal_is_a_transport_error_naming_the_operation() {
    let mut card = softcard();
    card.set_faults(keystation_softcard::Faults { drop_after: Some(4), ..Default::default() });
    let mut pgp = OpenPgpCard::select(&mut card).unwrap();
    admin(&mut pgp);
    let err = pgp.generate_key_pair(SIG).unwrap_err();
    match &err {
        Error::Transport { operation, source } => {
            assert_eq!(*operation, keystation_openpgp::Operation::Generate(SIG));
            assert_eq!(
                source.transport_failure(),
                Some(keystation_core::TransportFailure::CardRemoved)
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("GENERATE ASYMMETRIC KEY PAIR"));
    let core: keystation_core::Error = err.into();
    assert_eq!(core.transport_failure(), Some(keystation_core::TransportFailure::CardRemoved));
}
