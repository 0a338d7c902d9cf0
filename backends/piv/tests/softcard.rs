//! The PIV client against the in-process software YubiKey 5: what the card conformance
//! suite (tests/conformance, keystation-card-conformance, run over this card in process
//! and through pcscd) does not check — APDU budgets, the touch the card asks for, and
//! refusals before any APDU.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use keystation_core::key::KeyAlgorithm;
use keystation_core::keygen::{KeyPurpose, KeyRequest, PinPolicy, PivSlot, TouchPolicy};
use keystation_core::{KeyGen, SecretBytes};
use keystation_piv::{ManagementKey, PivCard};
use keystation_softcard::{Identity, SoftCard};

const PIN: &[u8] = b"123456";

fn card(seed: u64) -> SoftCard {
    SoftCard::yubikey5(Identity::default(), Some(seed))
}

fn secret(bytes: &[u8]) -> SecretBytes {
    SecretBytes::copy_from(bytes)
}

fn admin(piv: &mut PivCard<'_>) {
    piv.authenticate(&ManagementKey::factory_default()).unwrap();
    piv.verify_pin(&secret(PIN)).unwrap();
}

#[test]
fn select_reads_version_and_serial() {
    let mut sc = card(1);
    let mut piv = PivCard::select(&mut sc).unwrap();
    // SELECT and GET VERSION.
    assert_eq!(piv.apdus_sent(), 2);
    assert_eq!(piv.version().map(|v| v.to_string()).as_deref(), Some("5.4.3"));
    assert_eq!(piv.serial().unwrap(), Some(10_000_001));
    assert_eq!(piv.apdus_sent(), 3);
    assert_eq!(piv.supported_algorithms().len(), 3);
    assert!(piv.apdus_sent() >= 3);
    assert_eq!(piv.chuid().unwrap(), None);
}

#[test]
fn touch_policy_is_enforced_by_the_card() {
    let mut sc = card(14);
    {
        let mut piv = PivCard::select(&mut sc).unwrap();
        admin(&mut piv);
        piv.generate(
            PivSlot::Authentication,
            KeyAlgorithm::NistP256,
            PinPolicy::Once,
            TouchPolicy::Always,
        )
        .unwrap();
        for _ in 0..2 {
            piv.sign_digest(PivSlot::Authentication, KeyAlgorithm::NistP256, &[1; 32]).unwrap();
        }
    }
    assert_eq!(sc.touch_requests(), 2);
}

#[test]
fn keygen_refuses_what_it_cannot_do_before_sending() {
    let mut sc = card(15);
    let mut piv = PivCard::select(&mut sc).unwrap();
    let sent = piv.apdus_sent();
    let openpgp = KeyRequest::new(
        KeyPurpose::OpenPgp(keystation_core::keygen::OpenPgpKeySlot::Signature),
        KeyAlgorithm::NistP256,
    );
    assert!(matches!(
        KeyGen::generate(&mut piv, &openpgp),
        Err(keystation_core::Error::UnsupportedAlgorithm(_))
    ));
    let f9 = KeyRequest::new(KeyPurpose::Piv(PivSlot::Attestation), KeyAlgorithm::NistP256);
    assert!(KeyGen::generate(&mut piv, &f9).is_err());
    let x25519 = KeyRequest::new(KeyPurpose::Piv(PivSlot::KeyManagement), KeyAlgorithm::X25519);
    assert!(KeyGen::generate(&mut piv, &x25519).is_err());
    assert_eq!(piv.apdus_sent(), sent);
    assert_eq!(KeyGen::algorithms(&piv).len(), 3);
}
