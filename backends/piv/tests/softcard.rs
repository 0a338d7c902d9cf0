//! The PIV client against the in-process software YubiKey 5, checked with independent
//! implementations (RustCrypto, dalek, x509-cert).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use keystation_core::key::{HashAlgorithm, KeyAlgorithm, PublicKey, RsaBits};
use keystation_core::keygen::{
    KeyPurpose, KeyRequest, PinPolicy, PivSlot, RetiredSlot, SignInput, TouchPolicy,
};
use keystation_core::{KeyGen, SecretBytes, SecretKey};
use keystation_piv::{
    AdminData, Error, KeyOrigin, ManagementAlgorithm, ManagementKey, PinKind, PivAlgorithm,
    PivCard, PivSigner, Retries, object, pss_encode,
};
use keystation_softcard::{Identity, SoftCard, Version};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use sha2::{Digest, Sha256};

const PIN: &[u8] = b"123456";
const PUK: &[u8] = b"12345678";

fn card(seed: u64) -> SoftCard {
    SoftCard::yubikey5(Identity::default(), Some(seed))
}

fn card_5_7(seed: u64) -> SoftCard {
    SoftCard::yubikey5(Identity { version: Version(5, 7, 0), ..Identity::default() }, Some(seed))
}

fn secret(bytes: &[u8]) -> SecretBytes {
    SecretBytes::copy_from(bytes)
}

fn admin(piv: &mut PivCard<'_>) {
    piv.authenticate(&ManagementKey::factory_default()).unwrap();
    piv.verify_pin(&secret(PIN)).unwrap();
}

fn verify_p256(public: &PublicKey, digest: &[u8], der: &[u8]) {
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public.point().unwrap()).unwrap();
    let sig = p256::ecdsa::Signature::from_der(der).unwrap();
    key.verify_prehash(digest, &sig).unwrap();
}

fn rsa_public(public: &PublicKey) -> rsa::RsaPublicKey {
    let (n, e) = public.rsa_components().unwrap();
    rsa::RsaPublicKey::new(rsa::BigUint::from_bytes_be(n), rsa::BigUint::from_bytes_be(e)).unwrap()
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
fn generated_p256_p384_and_rsa_keys_sign_verifiably() {
    let mut sc = card(2);
    let mut piv = PivCard::select(&mut sc).unwrap();
    admin(&mut piv);
    let slot = PivSlot::Authentication;
    let digest = Sha256::digest(b"hello piv");

    let public = piv
        .generate(slot, KeyAlgorithm::NistP256, PinPolicy::Default, TouchPolicy::Default)
        .unwrap();
    let der = piv.sign_digest(slot, KeyAlgorithm::NistP256, &digest).unwrap();
    verify_p256(&public, &digest, &der);
    // A longer digest is truncated to the curve size (FIPS 186-4 §6.4).
    let long = sha2::Sha512::digest(b"long");
    let der = piv.sign_digest(slot, KeyAlgorithm::NistP256, &long).unwrap();
    verify_p256(&public, &long[..32], &der);

    let public =
        piv.generate(slot, KeyAlgorithm::NistP384, PinPolicy::Never, TouchPolicy::Never).unwrap();
    let digest384 = sha2::Sha384::digest(b"hello p384");
    let der = piv.sign_digest(slot, KeyAlgorithm::NistP384, &digest384).unwrap();
    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(public.point().unwrap()).unwrap();
    key.verify_prehash(&digest384, &p384::ecdsa::Signature::from_der(&der).unwrap()).unwrap();

    let rsa_alg = KeyAlgorithm::Rsa(RsaBits::Rsa2048);
    let public = piv.generate(slot, rsa_alg, PinPolicy::Default, TouchPolicy::Default).unwrap();
    let signature = piv.sign_digest(slot, rsa_alg, &digest).unwrap();
    assert_eq!(signature.len(), 256);
    rsa_public(&public).verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest, &signature).unwrap();

    // The same key through core's Signer, then RSA-PSS through the signer.
    let mut signer = PivSigner::new(&mut piv, slot, public.clone());
    let signature = keystation_core::keygen::Signer::sign(
        &mut signer,
        SignInput::Digest { hash: HashAlgorithm::Sha256, digest: &digest },
    )
    .unwrap();
    rsa_public(&public).verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest, &signature).unwrap();
    let pss = signer.sign_pss(HashAlgorithm::Sha256, &digest).unwrap();
    rsa_public(&public).verify(rsa::Pss::new::<Sha256>(), &digest, &pss).unwrap();
}

#[test]
fn ed25519_on_firmware_5_7_and_refused_before() {
    let mut old = card(3);
    let mut piv = PivCard::select(&mut old).unwrap();
    admin(&mut piv);
    let refused = piv.generate(
        PivSlot::Signature,
        KeyAlgorithm::Ed25519,
        PinPolicy::Default,
        TouchPolicy::Default,
    );
    assert!(matches!(refused, Err(Error::UnsupportedAlgorithm { .. })), "{refused:?}");

    let mut sc = card_5_7(3);
    let mut piv = PivCard::select(&mut sc).unwrap();
    assert!(piv.supported_algorithms().contains(&KeyAlgorithm::Ed25519));
    // 5.7 ships the default key as AES-192; authenticate takes the algorithm from metadata.
    admin(&mut piv);
    let request = KeyRequest {
        purpose: KeyPurpose::Piv(PivSlot::Authentication),
        algorithm: KeyAlgorithm::Ed25519,
        pin_policy: PinPolicy::Once,
        touch_policy: TouchPolicy::Default,
    };
    let mut generated = KeyGen::generate(&mut piv, &request).unwrap();
    let signature = generated.signer.sign(SignInput::Message(b"edwards")).unwrap();
    let point: [u8; 32] = generated.public.point().unwrap().try_into().unwrap();
    let key = ed25519_dalek::VerifyingKey::from_bytes(&point).unwrap();
    let signature = ed25519_dalek::Signature::from_slice(&signature).unwrap();
    key.verify_strict(b"edwards", &signature).unwrap();
    // A digest is not an Ed25519 input.
    let wrong =
        generated.signer.sign(SignInput::Digest { hash: HashAlgorithm::Sha256, digest: &[0; 32] });
    assert!(matches!(wrong, Err(keystation_core::Error::InvalidSignInput(_))));
}

#[test]
fn imported_p256_and_rsa_keys_sign_verifiably() {
    let mut sc = card(4);
    let mut piv = PivCard::select(&mut sc).unwrap();
    admin(&mut piv);

    let ec = p256::SecretKey::from_slice(&[0x42; 32]).unwrap();
    let slot = PivSlot::Retired(RetiredSlot::new(3).unwrap());
    piv.import_key(
        slot,
        &SecretKey::NistP256(secret(&ec.to_bytes())),
        PinPolicy::Never,
        TouchPolicy::Default,
    )
    .unwrap();
    let digest = Sha256::digest(b"imported");
    let der = piv.sign_digest(slot, KeyAlgorithm::NistP256, &digest).unwrap();
    let verifying = p256::ecdsa::VerifyingKey::from(ec.public_key());
    verifying.verify_prehash(&digest, &p256::ecdsa::Signature::from_der(&der).unwrap()).unwrap();
    let meta = piv.metadata(slot.key_reference()).unwrap().unwrap();
    assert_eq!(meta.origin, Some(KeyOrigin::Imported));
    assert_eq!(meta.pin_policy, Some(PinPolicy::Never));

    use rsa::traits::{PrivateKeyParts, PublicKeyParts};
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let host = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
    let primes = host.primes();
    let key = SecretKey::Rsa {
        e: host.e().to_bytes_be(),
        p: secret(&primes[0].to_bytes_be()),
        q: secret(&primes[1].to_bytes_be()),
        dp: secret(&host.dp().unwrap().to_bytes_be()),
        dq: secret(&host.dq().unwrap().to_bytes_be()),
        qinv: secret(&host.crt_coefficient().unwrap().to_bytes_be()),
    };
    piv.import_key(PivSlot::Signature, &key, PinPolicy::Default, TouchPolicy::Default).unwrap();
    // 9C's default PIN policy is "always": the remembered PIN is verified on demand.
    piv.remember_pin(secret(PIN)).unwrap();
    let signature =
        piv.sign_digest(PivSlot::Signature, KeyAlgorithm::Rsa(RsaBits::Rsa2048), &digest).unwrap();
    rsa::RsaPublicKey::from(&host)
        .verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest, &signature)
        .unwrap();
}

#[test]
fn pss_encoding_verifies_with_the_rsa_crate() {
    let mut sc = card(5);
    let mut piv = PivCard::select(&mut sc).unwrap();
    admin(&mut piv);
    let slot = PivSlot::KeyManagement;
    let bits = RsaBits::Rsa2048;
    let public = piv
        .generate(slot, KeyAlgorithm::Rsa(bits), PinPolicy::Default, TouchPolicy::Default)
        .unwrap();
    for (i, message) in [&b"tls 1.3"[..], b"", b"another message"].iter().enumerate() {
        let digest = Sha256::digest(message);
        let salt = [i as u8 + 1; 32];
        let em = pss_encode(HashAlgorithm::Sha256, &digest, 256, &salt).unwrap();
        let signature = piv.rsa_raw(slot, bits, &em).unwrap();
        rsa_public(&public).verify(rsa::Pss::new::<Sha256>(), &digest, signature.expose()).unwrap();
    }
    // Tampered: a wrong digest does not verify.
    let em = pss_encode(HashAlgorithm::Sha256, &[1; 32], 256, &[2; 32]).unwrap();
    let signature = piv.rsa_raw(slot, bits, &em).unwrap();
    assert!(
        rsa_public(&public)
            .verify(rsa::Pss::new::<Sha256>(), &[3; 32], signature.expose())
            .is_err()
    );
}

#[test]
fn ecdh_agrees_with_the_host() {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let mut sc = card(6);
    let mut piv = PivCard::select(&mut sc).unwrap();
    admin(&mut piv);
    let public = piv
        .generate(
            PivSlot::KeyManagement,
            KeyAlgorithm::NistP256,
            PinPolicy::Once,
            TouchPolicy::Never,
        )
        .unwrap();
    let peer = p256::SecretKey::from_slice(&[0x17; 32]).unwrap();
    let peer_point = peer.public_key().to_encoded_point(false);
    let shared = piv.ecdh(PivSlot::KeyManagement, peer_point.as_bytes()).unwrap();
    let card_public = p256::PublicKey::from_sec1_bytes(public.point().unwrap()).unwrap();
    let host = p256::ecdh::diffie_hellman(peer.to_nonzero_scalar(), card_public.as_affine());
    assert_eq!(shared.expose(), &host.raw_secret_bytes()[..]);
}

#[test]
fn wrong_pin_counts_down_blocks_and_puk_unblocks() {
    let mut sc = card(7);
    let mut piv = PivCard::select(&mut sc).unwrap();
    assert_eq!(piv.pin_tries_left().unwrap(), 3);
    let wrong = secret(b"000000");
    assert!(matches!(
        piv.verify_pin(&wrong),
        Err(Error::WrongPin { pin: PinKind::Pin, tries_left: 2 })
    ));
    assert_eq!(piv.pin_tries_left().unwrap(), 2);
    assert!(matches!(piv.verify_pin(&wrong), Err(Error::WrongPin { tries_left: 1, .. })));
    let blocked = piv.verify_pin(&wrong);
    assert!(matches!(blocked, Err(Error::PinBlocked(PinKind::Pin))), "{blocked:?}");
    assert!(blocked.unwrap_err().to_string().contains("blocked"));
    assert!(matches!(piv.verify_pin(&secret(PIN)), Err(Error::PinBlocked(PinKind::Pin))));
    assert_eq!(piv.pin_tries_left().unwrap(), 0);

    // Too short PINs never reach the card.
    assert!(matches!(piv.verify_pin(&secret(b"123")), Err(Error::PinFormat(PinKind::Pin))));

    let wrong_puk = piv.unblock_pin(&secret(b"87654321"), &secret(b"246810"));
    assert!(matches!(wrong_puk, Err(Error::WrongPin { pin: PinKind::Puk, tries_left: 2 })));
    piv.unblock_pin(&secret(PUK), &secret(b"246810")).unwrap();
    assert_eq!(piv.pin_tries_left().unwrap(), 3);
    piv.verify_pin(&secret(b"246810")).unwrap();
    // Verified: the card answers 9000 and the count comes from metadata.
    assert_eq!(piv.pin_tries_left().unwrap(), 3);

    piv.change_pin(&secret(b"246810"), &secret(b"13572468")).unwrap();
    piv.verify_pin(&secret(b"13572468")).unwrap();
    piv.change_puk(&secret(PUK), &secret(b"99999999")).unwrap();
    let meta = piv.metadata(0x81).unwrap().unwrap();
    assert_eq!(meta.default_value, Some(false));
    assert_eq!(meta.retries, Some(Retries { total: 3, remaining: 3 }));
}

#[test]
fn management_keys_3des_and_aes_and_a_wrong_key() {
    let mut sc = card(8);
    let mut piv = PivCard::select(&mut sc).unwrap();
    let wrong = ManagementKey::new(ManagementAlgorithm::TripleDes, secret(&[9; 24])).unwrap();
    assert!(matches!(piv.authenticate(&wrong), Err(Error::WrongManagementKey)));
    assert!(!piv.is_management_authenticated());
    // Without the management key, generation is refused by the card.
    let refused = piv.generate(
        PivSlot::Authentication,
        KeyAlgorithm::NistP256,
        PinPolicy::Default,
        TouchPolicy::Default,
    );
    assert!(matches!(refused, Err(Error::SecurityStatusNotSatisfied { .. })), "{refused:?}");

    piv.authenticate(&ManagementKey::factory_default()).unwrap();
    assert!(piv.is_management_authenticated());
    let meta = piv.metadata(0x9B).unwrap().unwrap();
    assert_eq!(meta.algorithm, Some(PivAlgorithm::TripleDes));
    assert_eq!(meta.default_value, Some(true));

    let aes = ManagementKey::new(ManagementAlgorithm::Aes192, secret(&[0x5A; 24])).unwrap();
    piv.set_management_key(&aes, false).unwrap();
    assert!(matches!(
        piv.authenticate(&ManagementKey::factory_default()),
        Err(Error::WrongManagementKey)
    ));
    piv.authenticate(&aes).unwrap();
    assert_eq!(piv.metadata(0x9B).unwrap().unwrap().algorithm, Some(PivAlgorithm::Aes192));
    // The key given as 3DES still works: the algorithm comes from the card's metadata.
    let as_3des = ManagementKey::new(ManagementAlgorithm::TripleDes, secret(&[0x5A; 24])).unwrap();
    piv.authenticate(&as_3des).unwrap();

    let aes128 = ManagementKey::new(ManagementAlgorithm::Aes128, secret(&[0x33; 16])).unwrap();
    piv.set_management_key(&aes128, false).unwrap();
    piv.authenticate(&aes128).unwrap();
    piv.set_management_key(&ManagementKey::factory_default(), false).unwrap();
    piv.authenticate(&ManagementKey::factory_default()).unwrap();
    assert!(ManagementKey::new(ManagementAlgorithm::Aes256, secret(&[1; 24])).is_err());
}

#[test]
fn pin_protected_management_key_in_ykman_layout() {
    let mut sc = card(9);
    let key = {
        let mut piv = PivCard::select(&mut sc).unwrap();
        admin(&mut piv);
        assert!(piv.pin_protected_management_key().unwrap().is_none());
        piv.set_pin_protected_management_key(ManagementAlgorithm::Aes192).unwrap()
    };
    let mut piv = PivCard::select(&mut sc).unwrap();
    // ykman's layout: ADMIN DATA 80 { 81 01 02 }, PRINTED 88 { 89 key }.
    assert_eq!(piv.get_data(object::ADMIN_DATA).unwrap().unwrap(), [0x80, 0x03, 0x81, 0x01, 0x02]);
    assert_eq!(piv.admin_data().unwrap().unwrap().flags, AdminData::MGMT_KEY_STORED);
    // PRINTED needs the PIN.
    assert!(matches!(
        piv.pin_protected_management_key(),
        Err(Error::SecurityStatusNotSatisfied { .. })
    ));
    piv.verify_pin(&secret(PIN)).unwrap();
    let mut expected = vec![0x88, 0x1A, 0x89, 0x18];
    expected.extend_from_slice(key.key.expose());
    assert_eq!(piv.get_data(object::PRINTED).unwrap().unwrap(), expected);
    let stored = piv.pin_protected_management_key().unwrap().unwrap();
    assert_eq!(stored.algorithm, ManagementAlgorithm::Aes192);
    assert_eq!(stored.key.expose(), key.key.expose());
    assert!(matches!(
        piv.authenticate(&ManagementKey::factory_default()),
        Err(Error::WrongManagementKey)
    ));
    piv.authenticate(&stored).unwrap();
}

#[test]
fn certificates_round_trip_plain_and_gzip() {
    let mut sc = card(10);
    let mut piv = PivCard::select(&mut sc).unwrap();
    let f9 = piv.attestation_certificate().unwrap().expect("factory F9 certificate");
    assert_eq!(f9[0], 0x30);
    assert_eq!(piv.read_certificate(PivSlot::Authentication).unwrap(), None);
    // Writing needs the management key.
    let refused = piv.write_certificate(PivSlot::Authentication, &f9);
    assert!(matches!(refused, Err(Error::SecurityStatusNotSatisfied { .. })));
    piv.authenticate(&ManagementKey::factory_default()).unwrap();

    piv.write_certificate(PivSlot::Authentication, &f9).unwrap();
    assert_eq!(piv.read_certificate(PivSlot::Authentication).unwrap().as_deref(), Some(&f9[..]));
    let raw = piv.get_data(0x5F_C105).unwrap().unwrap();
    assert_eq!(raw[0], 0x70);
    assert!(raw.ends_with(&[0x71, 0x01, 0x00, 0xFE, 0x00]));

    let retired = PivSlot::Retired(RetiredSlot::new(20).unwrap());
    piv.write_certificate_with(retired, &f9, true).unwrap();
    let raw = piv.get_data(0x5F_C120).unwrap().unwrap();
    assert!(raw.ends_with(&[0x71, 0x01, 0x01, 0xFE, 0x00]));
    assert_eq!(piv.read_certificate(retired).unwrap().as_deref(), Some(&f9[..]));

    piv.delete_certificate(PivSlot::Authentication).unwrap();
    assert_eq!(piv.read_certificate(PivSlot::Authentication).unwrap(), None);

    piv.put_data(object::CHUID, &[0x30, 0x19, 0xD4]).unwrap();
    assert_eq!(piv.chuid().unwrap().as_deref(), Some(&[0x30, 0x19, 0xD4][..]));
}

#[test]
fn metadata_reports_policies_origin_and_public_key() {
    let mut sc = card(11);
    let mut piv = PivCard::select(&mut sc).unwrap();
    admin(&mut piv);
    let slot = PivSlot::CardAuthentication;
    assert!(matches!(piv.metadata(0x9E), Err(Error::NoKey { slot: 0x9E, .. })));
    let public =
        piv.generate(slot, KeyAlgorithm::NistP256, PinPolicy::Always, TouchPolicy::Cached).unwrap();
    let meta = piv.metadata(0x9E).unwrap().unwrap();
    assert_eq!(meta.algorithm, Some(PivAlgorithm::EccP256));
    assert_eq!(meta.pin_policy, Some(PinPolicy::Always));
    assert_eq!(meta.touch_policy, Some(TouchPolicy::Cached));
    assert_eq!(meta.origin, Some(KeyOrigin::Generated));
    assert_eq!(meta.public_key.as_ref(), Some(&public));
    let pin = piv.metadata(0x80).unwrap().unwrap();
    assert_eq!(pin.default_value, Some(true));
    assert_eq!(pin.retries, Some(Retries { total: 3, remaining: 3 }));
    assert_eq!(pin.algorithm, Some(PivAlgorithm::Pin));
    // A signer built from metadata.
    let signer = PivSigner::from_metadata(&mut piv, slot).unwrap();
    assert_eq!(keystation_core::keygen::Signer::public_key(&signer), &public);
}

#[test]
fn reset_restores_factory_state() {
    let mut sc = card(12);
    let mut piv = PivCard::select(&mut sc).unwrap();
    admin(&mut piv);
    piv.generate(
        PivSlot::Authentication,
        KeyAlgorithm::NistP256,
        PinPolicy::Default,
        TouchPolicy::Default,
    )
    .unwrap();
    piv.write_certificate(PivSlot::Authentication, &[0x30, 0x00]).unwrap();
    let aes = ManagementKey::new(ManagementAlgorithm::Aes256, secret(&[7; 32])).unwrap();
    piv.set_management_key(&aes, false).unwrap();
    piv.change_pin(&secret(PIN), &secret(b"778899")).unwrap();
    piv.change_puk(&secret(PUK), &secret(b"11223344")).unwrap();

    piv.reset().unwrap();
    assert!(!piv.is_management_authenticated());
    assert_eq!(piv.pin_tries_left().unwrap(), 3);
    piv.verify_pin(&secret(PIN)).unwrap();
    piv.authenticate(&ManagementKey::factory_default()).unwrap();
    assert!(matches!(piv.metadata(0x9A), Err(Error::NoKey { .. })));
    assert_eq!(piv.read_certificate(PivSlot::Authentication).unwrap(), None);
    assert_eq!(piv.metadata(0x81).unwrap().unwrap().default_value, Some(true));
    // The attestation key and certificate survive.
    assert!(piv.attestation_certificate().unwrap().is_some());
}

#[test]
fn attestation_is_issued_by_the_f9_certificate() {
    use x509_cert::Certificate;
    use x509_cert::der::{Decode, Encode};
    let mut sc = card(13);
    let mut piv = PivCard::select(&mut sc).unwrap();
    admin(&mut piv);
    let public = piv
        .generate(
            PivSlot::Authentication,
            KeyAlgorithm::NistP256,
            PinPolicy::Once,
            TouchPolicy::Always,
        )
        .unwrap();
    let attestation = piv.attest(PivSlot::Authentication).unwrap();
    let f9 = piv.attestation_certificate().unwrap().unwrap();
    let attestation = Certificate::from_der(&attestation).unwrap();
    let f9 = Certificate::from_der(&f9).unwrap();
    assert_eq!(
        attestation.tbs_certificate.issuer.to_der().unwrap(),
        f9.tbs_certificate.subject.to_der().unwrap()
    );
    assert_eq!(
        attestation.tbs_certificate.subject_public_key_info.to_der().unwrap(),
        public.to_spki_der()
    );
    // Imported keys cannot be attested.
    piv.import_key(
        PivSlot::Signature,
        &SecretKey::NistP256(secret(&[0x21; 32])),
        PinPolicy::Default,
        TouchPolicy::Default,
    )
    .unwrap();
    let error = piv.attest(PivSlot::Signature).unwrap_err();
    assert_eq!(error.to_string(), "card returned 6A80 (incorrect data) for ATTEST slot 9C");
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
