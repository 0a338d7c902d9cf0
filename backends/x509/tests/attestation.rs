//! PIV attestation from the software YubiKey, verified against its test root; refused
//! against Yubico's roots, when tampered with, or outside its validity.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use des::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use keystation_core::key::{KeyAlgorithm, PublicKey, RsaBits};
use keystation_core::keygen::{PinPolicy, PivSlot, TouchPolicy};
use keystation_core::{Channel, Command, Le, StatusWord, tlv};
use keystation_softcard::SoftCard;
use keystation_x509::attestation::{
    FirmwareVersion, verify_piv_attestation, verify_piv_attestation_at, yubico_roots,
};
use keystation_x509::{Certificate, Error, verify_signed_by};

const DEFAULT_MGMT: [u8; 24] =
    [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8];

fn send(card: &mut SoftCard, ins: u8, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
    let command = Command::new(0, ins, p1, p2).with_data(data).with_le(Le::Max);
    let response = Channel::new(card).transmit(&command).unwrap();
    assert_eq!(response.status(), StatusWord::SUCCESS, "INS {ins:02X}");
    response.data().to_vec()
}

fn inner(data: &[u8], tag: u32) -> Vec<u8> {
    tlv::find(data, tag).unwrap().unwrap_or_default().to_vec()
}

fn tdes(block: &[u8], encrypt: bool) -> Vec<u8> {
    let cipher = des::TdesEde3::new_from_slice(&DEFAULT_MGMT).unwrap();
    let mut b = des::cipher::Block::<des::TdesEde3>::default();
    b.copy_from_slice(block);
    if encrypt {
        cipher.encrypt_block(&mut b);
    } else {
        cipher.decrypt_block(&mut b);
    }
    b.to_vec()
}

/// What the test reads off the card: the attestation, the F9 certificate and the
/// generated public key (the `7F49` template).
struct Attested {
    attestation: Vec<u8>,
    device: Vec<u8>,
    public: Vec<u8>,
}

/// SELECT PIV, mutual management-key authentication (default 3DES key), GENERATE in
/// `slot` with the given algorithm and policies, ATTEST, GET DATA `5FFF01`.
fn attest(slot: u8, algorithm: u8, pin: u8, touch: u8) -> Attested {
    let mut card = SoftCard::yubikey5(Default::default(), Some(1));
    send(&mut card, 0xA4, 0x04, 0x00, &[0xA0, 0x00, 0x00, 0x03, 0x08]);
    let witness =
        inner(&inner(&send(&mut card, 0x87, 0x03, 0x9B, &[0x7C, 0x02, 0x80, 0x00]), 0x7C), 0x80);
    let challenge = [9u8, 8, 7, 6, 5, 4, 3, 2];
    let mut body = Vec::new();
    tlv::write_constructed(&mut body, 0x7C, |o| {
        tlv::write(o, 0x80, &tdes(&witness, false));
        tlv::write(o, 0x81, &challenge);
    });
    let answer = send(&mut card, 0x87, 0x03, 0x9B, &body);
    assert_eq!(inner(&inner(&answer, 0x7C), 0x82), tdes(&challenge, true));

    let mut body = Vec::new();
    tlv::write(&mut body, 0xAC, &[0x80, 0x01, algorithm, 0xAA, 0x01, pin, 0xAB, 0x01, touch]);
    let public = inner(&send(&mut card, 0x47, 0x00, slot, &body), 0x7F49);
    let attestation = send(&mut card, 0xF9, slot, 0x00, &[]);
    let object = send(&mut card, 0xCB, 0x3F, 0xFF, &[0x5C, 0x03, 0x5F, 0xFF, 0x01]);
    let device = inner(&inner(&object, 0x53), 0x70);
    Attested { attestation, device, public }
}

fn test_root() -> Vec<Vec<u8>> {
    vec![keystation_softcard::piv::test_attestation_root_der()]
}

#[test]
fn p256_attestation_verifies_and_reports_the_card() {
    let a = attest(0x9A, 0x11, 0x03, 0x02);
    let result = verify_piv_attestation(&a.attestation, &a.device, &[], &test_root()).unwrap();
    assert_eq!(result.slot, PivSlot::Authentication);
    assert_eq!(result.serial, Some(10_000_001));
    assert_eq!(result.firmware, Some(FirmwareVersion { major: 5, minor: 4, patch: 3 }));
    assert_eq!(result.firmware.map(|f| f.to_string()).as_deref(), Some("5.4.3"));
    assert_eq!((result.pin_policy_byte, result.touch_policy_byte), (Some(3), Some(2)));
    assert_eq!(result.pin_policy(), Some(PinPolicy::Always));
    assert_eq!(result.touch_policy(), Some(TouchPolicy::Always));
    assert_eq!(result.form_factor, Some(1));
    let expected = PublicKey::from_point(KeyAlgorithm::NistP256, &inner(&a.public, 0x86)).unwrap();
    assert_eq!(result.public_key, expected);
    assert_eq!(result.attestation.subject(), "CN=YubiKey PIV Attestation 9a");
    assert!(result.root.subject().contains("TEST ONLY"));
    assert_eq!(result.device.der(), a.device);

    // Unrelated intermediates are ignored.
    let with_noise =
        verify_piv_attestation(&a.attestation, &a.device, &yubico_roots(), &test_root());
    assert!(with_noise.is_ok(), "{with_noise:?}");
}

#[test]
fn rsa_attestation_in_the_signature_slot() {
    let a = attest(0x9C, 0x07, 0x02, 0x03);
    let result = verify_piv_attestation(&a.attestation, &a.device, &[], &test_root()).unwrap();
    assert_eq!(result.slot, PivSlot::Signature);
    assert_eq!(result.public_key.algorithm(), KeyAlgorithm::Rsa(RsaBits::Rsa2048));
    let expected = PublicKey::rsa(&inner(&a.public, 0x81), &inner(&a.public, 0x82)).unwrap();
    assert_eq!(result.public_key, expected);
    assert_eq!(result.pin_policy(), Some(PinPolicy::Once));
    assert_eq!(result.touch_policy(), Some(TouchPolicy::Cached));
}

#[test]
fn yubico_roots_do_not_anchor_the_software_card() {
    let a = attest(0x9A, 0x11, 0x01, 0x01);
    let err = verify_piv_attestation(&a.attestation, &a.device, &[], &yubico_roots()).unwrap_err();
    let Error::Attestation { link, reason } = &err else { panic!("{err:?}") };
    assert!(link.starts_with("device (F9) certificate"), "{link}");
    assert!(reason.contains("no trusted root"), "{reason}");
    assert!(verify_piv_attestation(&a.attestation, &a.device, &[], &[]).is_err());
}

#[test]
fn tampered_attestations_are_refused() {
    let a = attest(0x9A, 0x11, 0x01, 0x01);
    // A changed signature bit.
    let mut bad = a.attestation.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x40;
    let err = verify_piv_attestation(&bad, &a.device, &[], &test_root()).unwrap_err();
    let Error::Attestation { link, .. } = &err else { panic!("{err:?}") };
    assert!(link.starts_with("attestation certificate ← device (F9) certificate"), "{link}");

    // A changed serial inside the signed body (the INTEGER value of extension .3.7).
    let oid = [0x06, 0x0A, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x82, 0xC4, 0x0A, 0x03, 0x07];
    let at = a.attestation.windows(oid.len()).position(|w| w == oid).unwrap();
    let mut bad = a.attestation.clone();
    let serial_last = at + oid.len() + 2 + 2 + 3; // OCTET STRING header, INTEGER header
    bad[serial_last] ^= 0x01;
    assert_ne!(
        Certificate::from_der(&bad).unwrap().extension("1.3.6.1.4.1.41482.3.7"),
        Certificate::from_der(&a.attestation).unwrap().extension("1.3.6.1.4.1.41482.3.7")
    );
    let err = verify_piv_attestation(&bad, &a.device, &[], &test_root()).unwrap_err();
    assert!(err.to_string().contains("signature does not verify"), "{err}");

    // The root passed as the device certificate: names do not match.
    let err =
        verify_piv_attestation(&a.attestation, &test_root()[0], &[], &test_root()).unwrap_err();
    assert!(err.to_string().contains("is not"), "{err}");

    // A tampered device certificate.
    let mut bad = a.device.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    let err = verify_piv_attestation(&a.attestation, &bad, &[], &test_root()).unwrap_err();
    assert!(
        err.to_string().contains("attestation certificate ← device (F9) certificate")
            || err.to_string().contains("device (F9) certificate ← root"),
        "{err}"
    );
}

#[test]
fn validity_is_checked_at_the_given_time() {
    let a = attest(0x9A, 0x11, 0x01, 0x01);
    // 2020: before the software card's certificates begin (2024-01-01).
    let err =
        verify_piv_attestation_at(&a.attestation, &a.device, &[], &test_root(), 1_600_000_000)
            .unwrap_err();
    assert!(err.to_string().contains("not valid at 2020-09-13T12:26:40Z"), "{err}");
    assert!(
        verify_piv_attestation_at(&a.attestation, &a.device, &[], &test_root(), 1_800_000_000)
            .is_ok()
    );
}

#[test]
fn yubico_roots_are_self_signed_rsa() {
    let roots = yubico_roots();
    assert_eq!(roots.len(), 2);
    let subjects: Vec<String> =
        roots.iter().map(|der| Certificate::from_der(der).unwrap().subject().to_owned()).collect();
    assert_eq!(subjects, ["CN=Yubico PIV Root CA Serial 263751", "CN=Yubico Attestation Root 1"]);
    for der in &roots {
        // sha256WithRSAEncryption and sha512WithRSAEncryption respectively.
        verify_signed_by(der, der).unwrap();
        let cert = Certificate::from_der(der).unwrap();
        assert!(cert.is_ca());
        assert_eq!(cert.public_key().unwrap().algorithm(), KeyAlgorithm::Rsa(RsaBits::Rsa2048));
    }
}

#[test]
fn chains_through_an_intermediate_to_another_root() {
    // A cross-certificate: another root certifies the software test root's key under the
    // same name, so the chain runs attestation ← F9 ← cross-certificate ← other root.
    let a = attest(0x9E, 0x11, 0x01, 0x01);
    let test_root = Certificate::from_der(&test_root()[0]).unwrap();
    let mut keygen =
        keystation_keygen::SoftKeyGen::new(Box::new(keystation_keygen::SeededRandom::from_u64(77)));
    let secret = keygen.generate_secret(KeyAlgorithm::NistP384).unwrap();
    let mut other = keystation_keygen::HostSigner::new(&secret).unwrap();
    let validity =
        keystation_x509::Validity { not_before: 1_700_000_000, not_after: 4_000_000_000 };
    let ca = keystation_x509::CertificateOptions { ca: true, ..Default::default() };
    let other_name = keystation_x509::DistinguishedName::common_name("other root");
    let other_root =
        keystation_x509::self_signed_certificate(&mut other, &other_name, &[7], validity, &ca)
            .unwrap();
    let cross = keystation_x509::issue_certificate(
        &mut other,
        &other_root,
        &test_root.public_key().unwrap(),
        &keystation_x509::DistinguishedName::common_name(
            keystation_softcard::piv::TEST_ROOT_SUBJECT,
        ),
        &[8],
        validity,
        &ca,
    )
    .unwrap();
    assert_eq!(Certificate::from_der(&cross).unwrap().subject_der(), test_root.subject_der());

    let result = verify_piv_attestation(
        &a.attestation,
        &a.device,
        &[yubico_roots()[0].clone(), cross.clone()],
        std::slice::from_ref(&other_root),
    )
    .unwrap();
    assert_eq!(result.slot, PivSlot::CardAuthentication);
    assert_eq!(result.root.subject(), "CN=other root");

    // Without the intermediate there is no path.
    let err = verify_piv_attestation(&a.attestation, &a.device, &[], &[other_root]).unwrap_err();
    assert!(err.to_string().contains("no trusted root"), "{err}");

    // An intermediate whose signature is broken is named in the error.
    let mut bad = cross.clone();
    let last = bad.len() - 2;
    bad[last] ^= 0x01;
    let other_root =
        keystation_x509::self_signed_certificate(&mut other, &other_name, &[7], validity, &ca)
            .unwrap();
    let err = verify_piv_attestation(&a.attestation, &a.device, &[bad], &[other_root]).unwrap_err();
    let Error::Attestation { link, reason } = &err else { panic!("{err:?}") };
    assert!(link.contains("intermediate") && link.contains("root \"CN=other root\""), "{link}");
    assert!(reason.contains("signature") || reason.contains("malformed"), "{reason}");
}
