//! The provisioning flow on the software YubiKey 5, in-process: what the card holds
//! afterwards, what the certificate says, and how many APDUs it took.
#![cfg(all(feature = "openpgp", feature = "softcard"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use keystation_core::SecretBytes;
use keystation_core::key::{KeyAlgorithm, RsaBits};
use keystation_core::keygen::{KeyOrigin, TouchPolicy};
use keystation_core::keygen::{OpenPgpKeySlot, RandomSource};
use keystation_openpgp::{OpenPgpCard, PinRef};
use keystation_openpgp_cert::{ArmorKind, dearmor, parse_packets, tag};
use keystation_provision::{AlgorithmChoice, Holder, NewPinValues, PinPlan, Profile, provision};
use keystation_softcard::{Identity, SoftCard};

/// 2026-11-23T00:00:00Z.
const NOW: u32 = 1_795_392_000;

/// A deterministic random source (counter bytes): enough for PIN digits.
struct Counter(u8);

impl RandomSource for Counter {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), keystation_core::Error> {
        for b in dest {
            self.0 = self.0.wrapping_add(37);
            *b = self.0;
        }
        Ok(())
    }
}

fn holder() -> Holder {
    Holder::new("Ada", "Lovelace", "ada@example.com").unwrap()
}

fn card() -> SoftCard {
    SoftCard::yubikey5(Identity { serial: 22_334_455, ..Identity::default() }, Some(9))
}

#[test]
fn default_profile_puts_curve25519_keys_and_random_pins_on_the_card_within_40_apdus() {
    let mut card = card();
    let done = provision(&mut card, &holder(), &Profile::default(), NOW, &mut Counter(0)).unwrap();
    assert_eq!(done.serial, "22334455");
    assert_eq!(done.manufacturer, Some("Yubico"));
    assert_eq!(
        done.algorithms,
        [KeyAlgorithm::Ed25519, KeyAlgorithm::X25519, KeyAlgorithm::Ed25519]
    );
    assert!(
        done.apdus <= 40,
        "{} APDUs for reset, PINs, three keys and the certificate",
        done.apdus
    );
    assert!(done.ssh_key.starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"), "{}", done.ssh_key);

    // The certificate: one primary key, the user ID, two subkeys, four signatures.
    let (kind, bytes) = dearmor(&done.certificate).unwrap();
    assert_eq!(kind, ArmorKind::PublicKey);
    let tags: Vec<u8> = parse_packets(&bytes).unwrap().iter().map(|p| p.tag).collect();
    assert_eq!(
        tags,
        [
            tag::PUBLIC_KEY,
            tag::USER_ID,
            tag::SIGNATURE,
            tag::PUBLIC_SUBKEY,
            tag::SIGNATURE,
            tag::PUBLIC_SUBKEY,
            tag::SIGNATURE
        ]
    );
    assert!(
        parse_packets(&bytes).unwrap().iter().any(|p| p.body == b"Ada Lovelace <ada@example.com>")
    );

    // The card: fingerprints and times written, cardholder data, new PINs in force.
    let pins = done.new_pins.clone().unwrap();
    assert_eq!(pins.user.len(), 6);
    assert_eq!(pins.admin.len(), 8);
    assert!(pins.user.expose().iter().chain(pins.admin.expose()).all(u8::is_ascii_digit));
    let mut pgp = OpenPgpCard::select(&mut card).unwrap();
    let ard = pgp.application_related_data().clone();
    for (index, fingerprint) in done.fingerprints.iter().enumerate() {
        assert_eq!(ard.fingerprints[index], Some(*fingerprint), "fingerprint {index}");
        assert_eq!(ard.generation_times[index], Some(NOW), "generation time {index}");
    }
    assert_eq!(pgp.cardholder_data().unwrap().name, b"Lovelace<<Ada".to_vec());
    assert_eq!(pgp.login_data().unwrap(), b"ada@example.com".to_vec());
    let factory = SecretBytes::copy_from(b"12345678");
    assert!(pgp.verify(PinRef::Pw3, &factory).is_err(), "the factory admin PIN is gone");
    pgp.verify(PinRef::Pw3, &pins.admin).unwrap();
    pgp.verify(PinRef::Pw1, &pins.user).unwrap();
}

#[test]
fn host_generated_p256_keys_are_imported_and_the_card_signs_with_them() {
    let mut card = card();
    let profile = Profile {
        algorithm: AlgorithmChoice::NistP256,
        key_origin: KeyOrigin::Host,
        pins: PinPlan::Keep,
        touch: TouchPolicy::Always,
        ..Profile::default()
    };
    let done = provision(&mut card, &holder(), &profile, NOW, &mut Counter(1)).unwrap();
    assert_eq!(done.algorithms, [KeyAlgorithm::NistP256; 3]);
    assert!(done.new_pins.is_none());
    assert!(done.ssh_key.starts_with("ecdsa-sha2-nistp256 "), "{}", done.ssh_key);
    let mut pgp = OpenPgpCard::select(&mut card).unwrap();
    // Imported keys (key status 02, §4.4.3.11 `DE`), touch on, factory PINs kept.
    for slot in
        [OpenPgpKeySlot::Signature, OpenPgpKeySlot::Decryption, OpenPgpKeySlot::Authentication]
    {
        assert_eq!(pgp.uif(slot), Some(keystation_openpgp::Uif::On), "touch on for {slot:?}");
    }
    pgp.verify(PinRef::Pw3, &SecretBytes::copy_from(b"12345678")).unwrap();
}

#[test]
fn set_pins_from_the_profile_and_keep_the_card_unreset_when_asked() {
    let mut card = card();
    let new_pin_values = NewPinValues {
        user: Some(SecretBytes::copy_from(b"246810")),
        admin: Some(SecretBytes::copy_from(b"13579111")),
    };
    let profile = Profile { pins: PinPlan::Set, new_pin_values, ..Profile::default() };
    provision(&mut card, &holder(), &profile, NOW, &mut Counter(2)).unwrap();
    // Again without reset: the current PINs are needed, and the wrong ones fail cleanly.
    let again = Profile { reset: false, pins: PinPlan::Keep, ..Profile::default() };
    let error = provision(&mut card, &holder(), &again, NOW + 60, &mut Counter(3)).unwrap_err();
    assert!(error.to_string().starts_with("verify the admin PIN"), "{error}");
    let with_pins = Profile {
        current_pins: Some((
            SecretBytes::copy_from(b"246810"),
            SecretBytes::copy_from(b"13579111"),
        )),
        ..again
    };
    let done = provision(&mut card, &holder(), &with_pins, NOW + 120, &mut Counter(4)).unwrap();
    assert!(done.apdus < 40);
}

#[test]
fn rsa_2048_profile() {
    let mut card = card();
    let profile =
        Profile { algorithm: AlgorithmChoice::Rsa(RsaBits::Rsa2048), ..Profile::default() };
    let done = provision(&mut card, &holder(), &profile, NOW, &mut Counter(5)).unwrap();
    assert_eq!(done.algorithms, [KeyAlgorithm::Rsa(RsaBits::Rsa2048); 3]);
    assert!(done.ssh_key.starts_with("ssh-rsa "));
}

#[test]
fn a_card_removed_mid_job_is_a_clear_error_naming_the_step() {
    let mut card = card();
    card.set_faults(keystation_softcard::Faults { drop_after: Some(20), ..Default::default() });
    let error =
        provision(&mut card, &holder(), &Profile::default(), NOW, &mut Counter(6)).unwrap_err();
    let text = error.to_string();
    assert!(text.contains("removed") || text.contains("Removed"), "{text}");
}

#[test]
fn holder_fields_are_checked() {
    for (first, last, email, field) in [
        ("", "Lovelace", "ada@example.com", "first name"),
        ("Ada", "Love<lace>", "ada@example.com", "last name"),
        ("Ada", "Lovelace", "ada.example.com", "email"),
        ("Ada", "Lovelace", "ada@@example.com", "email"),
        ("Ada\u{7}", "Lovelace", "ada@example.com", "first name"),
        ("Ada", "Lovelace", "ada @example.com", "email"),
    ] {
        let error = Holder::new(first, last, email).unwrap_err();
        assert_eq!(error.field, field, "{first:?} {last:?} {email:?}");
    }
    let long = "x".repeat(257);
    assert_eq!(Holder::new(&long, "L", "a@b").unwrap_err().field, "first name");
}

#[test]
fn host_keys_come_with_a_passphrase_protected_backup_and_card_keys_cannot() {
    let mut card = card();
    let profile = Profile {
        key_origin: KeyOrigin::Host,
        backup_passphrase: Some(SecretBytes::copy_from(b"correct horse battery staple")),
        ..Profile::default()
    };
    let done = provision(&mut card, &holder(), &profile, NOW, &mut Counter(7)).unwrap();
    let backup = done.backup.as_deref().unwrap();
    let (kind, bytes) = dearmor(backup).unwrap();
    assert_eq!(kind, ArmorKind::PrivateKey);
    let tags: Vec<u8> = parse_packets(&bytes).unwrap().iter().map(|p| p.tag).collect();
    assert_eq!(tags.iter().filter(|&&t| t == tag::SECRET_KEY).count(), 1);
    assert_eq!(tags.iter().filter(|&&t| t == tag::SECRET_SUBKEY).count(), 2);

    let mut fresh = self::card();
    let on_card = Profile {
        backup_passphrase: Some(SecretBytes::copy_from(b"passphrase")),
        ..Profile::default()
    };
    let error = provision(&mut fresh, &holder(), &on_card, NOW, &mut Counter(8)).unwrap_err();
    assert!(error.to_string().contains("cannot leave"), "{error}");
}

#[test]
fn refusals_come_before_the_card_changes() {
    let mut card = card();
    // Put a key and a PIN on the card that a reset would remove.
    let first = provision(
        &mut card,
        &holder(),
        &Profile { pins: PinPlan::Keep, ..Profile::default() },
        NOW,
        &mut Counter(9),
    )
    .unwrap();
    let short = Profile {
        pins: PinPlan::Set,
        new_pin_values: NewPinValues {
            user: Some(SecretBytes::copy_from(b"123")),
            admin: Some(SecretBytes::copy_from(b"12345678")),
        },
        ..Profile::default()
    };
    let error = provision(&mut card, &holder(), &short, NOW, &mut Counter(10)).unwrap_err();
    assert_eq!(error.to_string(), "the new user PIN must have at least 6 characters");
    // The card was not reset: the first provisioning's fingerprints are still there.
    let pgp = OpenPgpCard::select(&mut card).unwrap();
    assert_eq!(pgp.application_related_data().fingerprints[0], Some(first.fingerprints[0]));
}
