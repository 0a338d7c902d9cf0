//! The client against the software YubiKey 5 (keystation-softcard), in process, with
//! every signature and shared secret checked by an independent implementation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ed25519_dalek::Verifier as _;
use keystation_core::key::{HashAlgorithm, KeyAlgorithm, PublicKey, RsaBits};
use keystation_core::keygen::{
    KeyPurpose, KeyRequest, OpenPgpKeySlot, PinPolicy, SignInput, Signer, TouchPolicy,
};
use keystation_core::{Card, KeyGen, SecretBytes, SecretKey, StatusWord};
use keystation_openpgp::{CardSigner, Error, KeyAttributes, KeyStatus, OpenPgpCard, PinRef, Uif};
use keystation_softcard::{Identity, SoftCard};
use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use rand_chacha::rand_core::SeedableRng as _;
use sha2::Digest as _;

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

fn verify_p256(public: &PublicKey, digest: &[u8], der: &[u8]) {
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public.point().unwrap()).unwrap();
    let signature = p256::ecdsa::Signature::from_der(der).unwrap();
    key.verify_prehash(digest, &signature).expect("P-256 signature verifies");
}

fn verify_p384(public: &PublicKey, digest: &[u8], der: &[u8]) {
    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(public.point().unwrap()).unwrap();
    let signature = p384::ecdsa::Signature::from_der(der).unwrap();
    key.verify_prehash(digest, &signature).expect("P-384 signature verifies");
}

fn rsa_public(public: &PublicKey) -> rsa::RsaPublicKey {
    let (n, e) = public.rsa_components().unwrap();
    rsa::RsaPublicKey::new(rsa::BigUint::from_bytes_be(n), rsa::BigUint::from_bytes_be(e)).unwrap()
}

fn sha256(message: &[u8]) -> Vec<u8> {
    sha2::Sha256::digest(message).to_vec()
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
fn pin_change_wrong_pins_and_retry_counters() {
    let mut card = softcard();
    let mut pgp = OpenPgpCard::select(&mut card).unwrap();

    // Length checks happen before anything is sent.
    let before = pgp.apdus_sent();
    assert!(matches!(
        pgp.verify(PinRef::Pw1, &pin("123")),
        Err(Error::PinLength { pin: PinRef::Pw1, min: 6, max: 127 })
    ));
    assert!(matches!(pgp.verify(PinRef::Pw3, &pin("1234567")), Err(Error::PinLength { .. })));
    assert_eq!(pgp.apdus_sent(), before);

    assert!(matches!(
        pgp.verify(PinRef::Pw1, &pin("000000")),
        Err(Error::WrongPin { pin: PinRef::Pw1, retries: 2 })
    ));
    assert_eq!(pgp.read_pw_status().unwrap().pw1_retries, 2);
    pgp.verify(PinRef::Pw1, &pin("123456")).unwrap();
    assert_eq!(pgp.pw_status().pw1_retries, 3);
    assert_eq!(pgp.read_pw_status().unwrap().pw1_retries, 3);

    // Change PW1: a wrong old PIN costs a try; the right one changes it.
    assert!(matches!(
        pgp.change_pin(PinRef::Pw1, &pin("111111"), &pin("24680246")),
        Err(Error::WrongPin { retries: 2, .. })
    ));
    pgp.change_pin(PinRef::Pw1, &pin("123456"), &pin("24680246")).unwrap();
    pgp.verify(PinRef::Pw1, &pin("24680246")).unwrap();
    assert!(matches!(pgp.verify(PinRef::Pw1, &pin("123456")), Err(Error::WrongPin { .. })));

    // Resetting code, then block PW1 and unblock it with the code.
    admin(&mut pgp);
    pgp.set_resetting_code(Some(&pin("reset-code"))).unwrap();
    assert_eq!(pgp.read_pw_status().unwrap().rc_retries, 3);
    pgp.verify(PinRef::Pw1, &pin("24680246")).unwrap();
    assert!(matches!(
        pgp.verify(PinRef::Pw1, &pin("000000")),
        Err(Error::WrongPin { retries: 2, .. })
    ));
    assert!(matches!(
        pgp.verify(PinRef::Pw1, &pin("000000")),
        Err(Error::WrongPin { retries: 1, .. })
    ));
    assert!(matches!(pgp.verify(PinRef::Pw1, &pin("000000")), Err(Error::PinBlocked(PinRef::Pw1))));
    assert!(matches!(
        pgp.verify(PinRef::Pw1, &pin("24680246")),
        Err(Error::PinBlocked(PinRef::Pw1))
    ));
    assert!(matches!(
        pgp.reset_retry_counter_with_code(&pin("wrong-code"), &pin("13579135")),
        Err(Error::WrongPin { pin: PinRef::ResettingCode, retries: 2 })
    ));
    pgp.reset_retry_counter_with_code(&pin("reset-code"), &pin("13579135")).unwrap();
    pgp.verify(PinRef::Pw1, &pin("13579135")).unwrap();

    // With PW3: reset the counter and set a new PW1.
    admin(&mut pgp);
    pgp.reset_retry_counter(&pin("97531975")).unwrap();
    pgp.verify(PinRef::Pw1Signing, &pin("97531975")).unwrap();

    // Block PW3: the error says so, and admin commands are refused as unauthorized.
    pgp.change_pin(PinRef::Pw3, &pin("12345678"), &pin("new-admin")).unwrap();
    for retries in [2, 1] {
        assert!(matches!(
            pgp.verify(PinRef::Pw3, &pin("bad-admin")),
            Err(Error::WrongPin { pin: PinRef::Pw3, retries: r }) if r == retries
        ));
    }
    assert!(matches!(
        pgp.verify(PinRef::Pw3, &pin("bad-admin")),
        Err(Error::PinBlocked(PinRef::Pw3))
    ));
    assert!(matches!(
        pgp.set_url(b"https://example.invalid/key.asc"),
        Err(Error::SecurityStatusNotSatisfied { .. })
    ));
    assert_eq!(pgp.read_pw_status().unwrap().pw3_retries, 0);
}

#[test]
fn ed25519_and_x25519_generated_on_card_sign_and_agree() {
    let mut card = softcard();
    let mut pgp = OpenPgpCard::select(&mut card).unwrap();
    admin(&mut pgp);
    pgp.remember_user_pin(pin("123456")).unwrap();

    let keystation_core::keygen::GeneratedKey { public, location, mut signer } = KeyGen::generate(
        &mut pgp,
        &KeyRequest::new(KeyPurpose::OpenPgp(SIG), KeyAlgorithm::Ed25519),
    )
    .unwrap();
    assert!(matches!(location, keystation_core::keygen::KeyLocation::OnCard));
    let signature = signer.sign(SignInput::Message(b"hello card")).unwrap();
    assert_eq!(signature.len(), 64);
    verify_ed25519(&public, b"hello card", &signature);
    // A digest is not what EdDSA signs.
    let digest = sha256(b"x");
    assert!(matches!(
        signer.sign(SignInput::Digest { hash: HashAlgorithm::Sha256, digest: &digest }),
        Err(keystation_core::Error::InvalidSignInput(KeyAlgorithm::Ed25519))
    ));
    drop(signer);
    assert_eq!(
        pgp.key_attributes(SIG).to_bytes(),
        [0x16, 0x2B, 0x06, 0x01, 0x04, 0x01, 0xDA, 0x47, 0x0F, 0x01]
    );

    pgp.set_algorithm(AUT, KeyAlgorithm::Ed25519).unwrap();
    let auth = pgp.generate_key_pair(AUT).unwrap();
    let signature = pgp.authenticate(SignInput::Message(b"ssh challenge")).unwrap();
    verify_ed25519(&auth, b"ssh challenge", &signature);
    assert_eq!(auth.to_openssh(None).map(|l| l.starts_with("ssh-ed25519 ")), Some(true));

    assert!(pgp.set_algorithm(DEC, KeyAlgorithm::X25519).unwrap());
    assert_eq!(
        pgp.key_attributes(DEC).to_bytes(),
        [0x12, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01]
    );
    // Same attributes again: nothing is sent.
    let before = pgp.apdus_sent();
    assert!(!pgp.set_algorithm(DEC, KeyAlgorithm::X25519).unwrap());
    assert_eq!(pgp.apdus_sent(), before);
    let card_public = pgp.generate_key_pair(DEC).unwrap();
    let ephemeral = x25519_dalek::StaticSecret::from([0x5A; 32]);
    let ephemeral_public = x25519_dalek::PublicKey::from(&ephemeral);
    let shared = pgp.decipher(ephemeral_public.as_bytes()).unwrap();
    let point: [u8; 32] = card_public.point().unwrap().try_into().unwrap();
    let expected = ephemeral.diffie_hellman(&x25519_dalek::PublicKey::from(point));
    assert_eq!(shared.expose(), expected.as_bytes());
    // The public key is cached after generation.
    let before = pgp.apdus_sent();
    assert_eq!(pgp.public_key(DEC).unwrap(), card_public);
    assert_eq!(pgp.apdus_sent(), before);
}

#[test]
fn p256_sign_authenticate_and_ecdh() {
    let mut card = softcard();
    let mut pgp = OpenPgpCard::select(&mut card).unwrap();
    admin(&mut pgp);
    for slot in [SIG, DEC, AUT] {
        pgp.set_algorithm(slot, KeyAlgorithm::NistP256).unwrap();
    }
    assert_eq!(
        pgp.key_attributes(SIG),
        &KeyAttributes::Ecc {
            algorithm_id: 0x13,
            oid: vec![0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07],
            with_public_key: false,
        }
    );
    assert_eq!(pgp.key_attributes(DEC).to_bytes()[0], 0x12);
    let sig_public = pgp.generate_key_pair(SIG).unwrap();
    let dec_public = pgp.generate_key_pair(DEC).unwrap();
    let aut_public = pgp.generate_key_pair(AUT).unwrap();

    // Without PW1 the card refuses, and the error says why.
    let digest = sha256(b"certificate body");
    let input = SignInput::Digest { hash: HashAlgorithm::Sha256, digest: &digest };
    assert!(matches!(pgp.sign(input), Err(Error::SecurityStatusNotSatisfied { .. })));
    pgp.verify(PinRef::Pw1Signing, &pin("123456")).unwrap();
    let der = pgp.sign(input).unwrap();
    verify_p256(&sig_public, &digest, &der);
    assert!(matches!(
        pgp.sign(SignInput::Message(b"raw")),
        Err(Error::Core(keystation_core::Error::InvalidSignInput(KeyAlgorithm::NistP256)))
    ));

    pgp.verify(PinRef::Pw1, &pin("123456")).unwrap();
    let der = pgp.authenticate(input).unwrap();
    verify_p256(&aut_public, &digest, &der);

    let host = p256::SecretKey::from_slice(&[0x33; 32]).unwrap();
    let host_point =
        p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&host.public_key(), false);
    let shared = pgp.decipher(host_point.as_bytes()).unwrap();
    let card_key = p256::PublicKey::from_sec1_bytes(dec_public.point().unwrap()).unwrap();
    let expected = p256::ecdh::diffie_hellman(host.to_nonzero_scalar(), card_key.as_affine());
    assert_eq!(shared.expose(), &expected.raw_secret_bytes()[..]);
}

#[test]
fn p384_signature_key() {
    let mut card = softcard();
    let mut pgp = OpenPgpCard::select(&mut card).unwrap();
    admin(&mut pgp);
    pgp.remember_user_pin(pin("123456")).unwrap();
    let generated = KeyGen::generate(
        &mut pgp,
        &KeyRequest::new(KeyPurpose::OpenPgp(SIG), KeyAlgorithm::NistP384),
    )
    .unwrap();
    let public = generated.public.clone();
    assert_eq!(public.algorithm(), KeyAlgorithm::NistP384);
    let mut signer = generated.signer;
    let digest = sha2::Sha384::digest(b"p384 message").to_vec();
    let der =
        signer.sign(SignInput::Digest { hash: HashAlgorithm::Sha384, digest: &digest }).unwrap();
    verify_p384(&public, &digest, &der);
    assert!(matches!(
        signer.sign(SignInput::Digest { hash: HashAlgorithm::Sha384, digest: &digest[..32] }),
        Err(keystation_core::Error::InvalidSignInput(_))
    ));
}

#[test]
fn rsa_2048_generate_sign_and_decipher() {
    let mut card = softcard();
    let mut pgp = OpenPgpCard::select(&mut card).unwrap();
    admin(&mut pgp);
    pgp.remember_user_pin(pin("123456")).unwrap();
    // The factory attributes are RSA-2048 already: nothing to write.
    let before = pgp.apdus_sent();
    assert!(!pgp.set_algorithm(SIG, KeyAlgorithm::Rsa(RsaBits::Rsa2048)).unwrap());
    assert_eq!(pgp.apdus_sent(), before);

    let sig_public = pgp.generate_key_pair(SIG).unwrap();
    assert_eq!(sig_public.algorithm(), KeyAlgorithm::Rsa(RsaBits::Rsa2048));
    let digest = sha256(b"rsa message");
    let signature =
        pgp.sign(SignInput::Digest { hash: HashAlgorithm::Sha256, digest: &digest }).unwrap();
    assert_eq!(signature.len(), 256);
    rsa_public(&sig_public)
        .verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &digest, &signature)
        .expect("RSA signature verifies");

    let dec_public = pgp.generate_key_pair(DEC).unwrap();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
    let cryptogram = rsa_public(&dec_public)
        .encrypt(&mut rng, rsa::Pkcs1v15Encrypt, b"session key 1234")
        .unwrap();
    let plain = pgp.decipher(&cryptogram).unwrap();
    assert_eq!(plain.expose(), b"session key 1234");
}

fn host_rsa_secret(key: &rsa::RsaPrivateKey) -> SecretKey {
    use rsa::traits::{PrivateKeyParts as _, PublicKeyParts as _};
    let primes = key.primes();
    SecretKey::Rsa {
        e: key.e().to_bytes_be(),
        p: SecretBytes::new(primes[0].to_bytes_be()),
        q: SecretBytes::new(primes[1].to_bytes_be()),
        dp: SecretBytes::new(key.dp().unwrap().to_bytes_be()),
        dq: SecretBytes::new(key.dq().unwrap().to_bytes_be()),
        qinv: SecretBytes::new(key.qinv().unwrap().to_bytes_be().1),
    }
}

#[test]
fn imported_host_keys_sign_verify_and_agree() {
    let mut card = softcard();
    let mut pgp = OpenPgpCard::select(&mut card).unwrap();
    admin(&mut pgp);
    pgp.remember_user_pin(pin("123456")).unwrap();

    // Ed25519 signature key.
    let seed = [0x42; 32];
    let host = ed25519_dalek::SigningKey::from_bytes(&seed);
    pgp.import_key(SIG, &SecretKey::Ed25519(SecretBytes::copy_from(&seed))).unwrap();
    assert_eq!(pgp.application_related_data().key_status[0], Some(KeyStatus::Imported));
    let public = pgp.public_key(SIG).unwrap();
    assert_eq!(public.point(), Some(&host.verifying_key().to_bytes()[..]));
    let signature = pgp.sign(SignInput::Message(b"imported")).unwrap();
    verify_ed25519(&public, b"imported", &signature);

    // P-256 authentication key, through a CardSigner.
    let scalar = [0x21; 32];
    let host = p256::SecretKey::from_slice(&scalar).unwrap();
    pgp.import_key(AUT, &SecretKey::NistP256(SecretBytes::copy_from(&scalar))).unwrap();
    let mut signer = CardSigner::new(&mut pgp, AUT).unwrap();
    let host_point =
        p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&host.public_key(), false);
    assert_eq!(signer.public_key().point(), Some(host_point.as_bytes()));
    let digest = sha256(b"auth");
    let der =
        signer.sign(SignInput::Digest { hash: HashAlgorithm::Sha256, digest: &digest }).unwrap();
    verify_p256(signer.public_key(), &digest, &der);
    drop(signer);

    // X25519 decryption key: the card must agree the same secret as the host key.
    let scalar = [0x77; 32];
    let host = x25519_dalek::StaticSecret::from(scalar);
    pgp.import_key(DEC, &SecretKey::X25519(SecretBytes::copy_from(&scalar))).unwrap();
    let card_public = pgp.public_key(DEC).unwrap();
    assert_eq!(card_public.point(), Some(&x25519_dalek::PublicKey::from(&host).to_bytes()[..]));
    let peer = x25519_dalek::StaticSecret::from([0x19; 32]);
    let shared = pgp.decipher(x25519_dalek::PublicKey::from(&peer).as_bytes()).unwrap();
    assert_eq!(
        shared.expose(),
        host.diffie_hellman(&x25519_dalek::PublicKey::from(&peer)).as_bytes()
    );

    // RSA-2048 signature key from the host.
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
    let host = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
    pgp.import_key(SIG, &host_rsa_secret(&host)).unwrap();
    let public = pgp.public_key(SIG).unwrap();
    let digest = sha256(b"rsa import");
    let signature =
        pgp.sign(SignInput::Digest { hash: HashAlgorithm::Sha256, digest: &digest }).unwrap();
    rsa::RsaPublicKey::from(&host)
        .verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &digest, &signature)
        .expect("imported RSA key signs");
    assert_eq!(rsa_public(&public), rsa::RsaPublicKey::from(&host));
}

/// The softcard behind a transport without extended length: the client must chain
/// commands and collect responses with GET RESPONSE.
struct ShortOnly {
    card: SoftCard,
    longest_command: usize,
}

impl Card for ShortOnly {
    fn transmit(
        &mut self,
        command: &[u8],
        response: &mut [u8],
    ) -> Result<usize, keystation_core::Error> {
        self.longest_command = self.longest_command.max(command.len());
        self.card.transmit(command, response)
    }
    fn supports_extended_length(&self) -> bool {
        false
    }
}

#[test]
fn short_apdus_with_chaining_and_get_response() {
    let mut card = ShortOnly { card: softcard(), longest_command: 0 };
    {
        let mut pgp = OpenPgpCard::select(&mut card).unwrap();
        assert!(!pgp.uses_extended_length());
        admin(&mut pgp);
        pgp.remember_user_pin(pin("123456")).unwrap();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        let host = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
        // A 2048-bit import template is longer than 255 bytes: it goes in a chain.
        pgp.import_key(AUT, &host_rsa_secret(&host)).unwrap();
        // The 7F49 answer is longer than 256 bytes: it comes with 61xx.
        let public = pgp.public_key(AUT).unwrap();
        assert_eq!(rsa_public(&public), rsa::RsaPublicKey::from(&host));
        let digest = sha256(b"short");
        let signature = pgp
            .authenticate(SignInput::Digest { hash: HashAlgorithm::Sha256, digest: &digest })
            .unwrap();
        rsa::RsaPublicKey::from(&host)
            .verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &digest, &signature)
            .unwrap();
    }
    assert!(card.longest_command <= 5 + 255 + 1, "{}", card.longest_command);
}

#[test]
fn touch_policy_set_and_read() {
    let mut card = softcard();
    let mut pgp = OpenPgpCard::select(&mut card).unwrap();
    admin(&mut pgp);
    pgp.set_uif(SIG, Uif::On).unwrap();
    pgp.set_touch_policy(AUT, TouchPolicy::Cached).unwrap();
    // Default leaves the flag alone and sends nothing; an unchanged flag is not rewritten.
    let before = pgp.apdus_sent();
    pgp.set_touch_policy(DEC, TouchPolicy::Default).unwrap();
    pgp.set_uif(SIG, Uif::On).unwrap();
    assert_eq!(pgp.apdus_sent(), before);
    assert_eq!(pgp.get_data(0xD6).unwrap(), Some(vec![0x01, 0x20]));
    pgp.refresh().unwrap();
    assert_eq!(pgp.uif(SIG), Some(Uif::On));
    assert_eq!(pgp.uif(DEC), Some(Uif::Off));
    assert_eq!(pgp.uif(AUT), Some(Uif::Cached));

    // A fixed flag changes only with a reset.
    pgp.set_uif(DEC, Uif::Fixed).unwrap();
    assert!(matches!(pgp.set_uif(DEC, Uif::Off), Err(Error::SecurityStatusNotSatisfied { .. })));
    pgp.factory_reset().unwrap();
    assert_eq!(pgp.uif(DEC), Some(Uif::Off));

    // KeyGen applies a touch policy with the key.
    admin(&mut pgp);
    let mut request = KeyRequest::new(KeyPurpose::OpenPgp(AUT), KeyAlgorithm::Ed25519);
    request.touch_policy = TouchPolicy::Always;
    KeyGen::generate(&mut pgp, &request).unwrap();
    assert_eq!(pgp.uif(AUT), Some(Uif::On));
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

#[test]
fn terminated_application_is_reported_and_can_be_activated() {
    let mut card = softcard();
    // Leave the application terminated, as an interrupted reset would.
    {
        let mut pgp = OpenPgpCard::select(&mut card).unwrap();
        admin(&mut pgp);
        pgp.set_url(b"https://example.invalid/k").unwrap();
    }
    let terminate = |card: &mut SoftCard| {
        assert_eq!(
            card.process(&[
                0x00, 0x20, 0x00, 0x83, 0x08, b'1', b'2', b'3', b'4', b'5', b'6', b'7', b'8'
            ]),
            [0x90, 0x00]
        );
        assert_eq!(card.process(&[0x00, 0xE6, 0x00, 0x00]), [0x90, 0x00]);
    };
    terminate(&mut card);
    assert!(matches!(OpenPgpCard::select(&mut card), Err(Error::Terminated)));
    let mut pgp = OpenPgpCard::select_activating(&mut card).unwrap();
    assert!(pgp.url().unwrap().is_empty());
    pgp.verify(PinRef::Pw3, &pin("12345678")).unwrap();
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
fn single_signature_pw1_is_verified_before_each_signature() {
    let mut card = softcard();
    let mut pgp = OpenPgpCard::select(&mut card).unwrap();
    admin(&mut pgp);
    pgp.set_pw1_valid_for_several_signatures(false).unwrap();
    assert!(!pgp.read_pw_status().unwrap().pw1_valid_for_several_signatures);
    pgp.set_algorithm(SIG, KeyAlgorithm::NistP256).unwrap();
    let public = pgp.generate_key_pair(SIG).unwrap();
    pgp.remember_user_pin(pin("123456")).unwrap();
    let mut signer = CardSigner::new(&mut pgp, SIG).unwrap();
    let before = signer.card().apdus_sent();
    for message in [&b"one"[..], b"two", b"three"] {
        let digest = sha256(message);
        let der = signer
            .sign(SignInput::Digest { hash: HashAlgorithm::Sha256, digest: &digest })
            .unwrap();
        verify_p256(&public, &digest, &der);
    }
    // One VERIFY and one PSO:CDS per signature, no refused attempt.
    assert_eq!(signer.card().apdus_sent() - before, 6);
    drop(signer);
    // Forgetting the PIN: the next signature is refused by the card.
    pgp.forget_user_pin();
    let digest = sha256(b"four");
    assert!(matches!(
        pgp.sign(SignInput::Digest { hash: HashAlgorithm::Sha256, digest: &digest }),
        Err(Error::SecurityStatusNotSatisfied { operation: keystation_openpgp::Operation::Sign })
    ));
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
