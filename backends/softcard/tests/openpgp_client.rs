//! The `openpgp-card` crate, an independent OpenPGP card client, drives the software
//! YubiKey 5 in-process through its `card-backend` traits.

use std::sync::Mutex;

use card_backend::{CardBackend, CardCaps, CardTransaction, PinType, SmartcardError};
use keystation_softcard::{Identity, SoftCard};
use openpgp_card::ocard::KeyType;
use openpgp_card::ocard::algorithm::AlgoSimple;
use openpgp_card::ocard::crypto::{Hash, PublicKeyMaterial};
use openpgp_card::ocard::data::Fingerprint;
use secrecy::SecretString;

/// A `card-backend` over a software card.
struct SoftBackend {
    card: Mutex<SoftCard>,
}

struct SoftTransaction<'a> {
    card: &'a Mutex<SoftCard>,
}

impl CardBackend for SoftBackend {
    fn limit_card_caps(&self, card_caps: CardCaps) -> CardCaps {
        card_caps
    }

    fn transaction(
        &mut self,
        _reselect_application: Option<&[u8]>,
    ) -> Result<Box<dyn CardTransaction + Send + Sync + '_>, SmartcardError> {
        // The software card is never reset behind the client's back, so no reselect.
        Ok(Box::new(SoftTransaction { card: &self.card }))
    }
}

impl CardTransaction for SoftTransaction<'_> {
    fn transmit(&mut self, cmd: &[u8], _buf_size: usize) -> Result<Vec<u8>, SmartcardError> {
        let mut card = self.card.lock().map_err(|_| SmartcardError::Error("poisoned".into()))?;
        Ok(card.process(cmd))
    }

    fn feature_pinpad_verify(&self) -> bool {
        false
    }

    fn feature_pinpad_modify(&self) -> bool {
        false
    }

    fn pinpad_verify(
        &mut self,
        _pin: PinType,
        _card_caps: &Option<CardCaps>,
    ) -> Result<Vec<u8>, SmartcardError> {
        Err(SmartcardError::Error("no pin pad".into()))
    }

    fn pinpad_modify(
        &mut self,
        _pin: PinType,
        _card_caps: &Option<CardCaps>,
    ) -> Result<Vec<u8>, SmartcardError> {
        Err(SmartcardError::Error("no pin pad".into()))
    }

    fn was_reset(&self) -> bool {
        false
    }
}

fn pin(value: &str) -> SecretString {
    SecretString::new(value.to_owned())
}

/// A fixed fingerprint: the client computes OpenPGP fingerprints with a callback, which
/// this test does not need.
fn fingerprint(
    _: &PublicKeyMaterial,
    _: openpgp_card::ocard::data::KeyGenerationTime,
    _: KeyType,
) -> Result<Fingerprint, openpgp_card::Error> {
    Ok(Fingerprint::from([0x42; 20]))
}

#[test]
fn openpgp_card_crate_reads_writes_generates_and_signs() -> Result<(), openpgp_card::Error> {
    let backend =
        SoftBackend { card: Mutex::new(SoftCard::yubikey5(Identity::default(), Some(3))) };
    let backend: Box<dyn CardBackend + Send + Sync> = Box::new(backend);
    let mut card = openpgp_card::Card::new(backend)?;
    let mut tx = card.transaction()?;

    let aid = tx.application_identifier()?;
    assert_eq!(aid.manufacturer(), 0x0006);
    assert_eq!(aid.manufacturer_name(), "Yubico AB");
    assert_eq!(aid.version(), 0x0304);
    assert_eq!(format!("{:08X}", aid.serial()), "10000001", "BCD serial reads as decimal");
    let status = tx.pw_status_bytes()?;
    assert_eq!((status.err_count_pw1(), status.err_count_rc(), status.err_count_pw3()), (3, 0, 3));
    assert!(tx.extended_capabilities()?.max_len_challenge() > 0);
    assert_eq!(tx.fingerprints()?.signature(), None);

    {
        let mut admin = tx.to_admin_card(pin("12345678"))?;
        admin.set_cardholder_name("Rust<<Client")?;
        admin.set_algorithm(KeyType::Signing, AlgoSimple::Curve25519)?;
        admin.generate_key(fingerprint, KeyType::Signing)?;
    }
    assert_eq!(tx.cardholder_name()?, "Rust<<Client");
    tx.invalidate_cache()?;
    assert_eq!(tx.fingerprints()?.signature(), Some(&Fingerprint::from([0x42; 20])));

    let public = tx.card().public_key(KeyType::Signing)?;
    let PublicKeyMaterial::E(ecc) = public else { panic!("expected an ECC key, got {public}") };
    let point: [u8; 32] = ecc.data().try_into().unwrap_or([0; 32]);
    let verifier = ed25519_dalek::VerifyingKey::from_bytes(&point);
    let Ok(verifier) = verifier else { panic!("bad Ed25519 point") };

    tx.verify_user_signing_pin(pin("123456"))?;
    let message = [0x5Au8; 32];
    let signature = tx.card().signature_for_hash(Hash::EdDSA(&message))?;
    let signature = ed25519_dalek::Signature::from_slice(&signature);
    assert!(signature.is_ok_and(|s| verifier.verify_strict(&message, &s).is_ok()));
    assert_eq!(tx.digital_signature_count()?, 1);
    Ok(())
}
