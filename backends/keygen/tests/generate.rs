#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every algorithm generates, signs, and verifies with a verifier built only from the
//! public key bytes; seeded generation repeats; refused requests fail as documented.

use keystation_core::key::{HashAlgorithm, KeyAlgorithm, PublicKey, RsaBits};
use keystation_core::keygen::{
    KeyGen, KeyLocation, KeyPurpose, KeyRequest, OpenPgpKeySlot, PinPolicy, PivSlot, RandomSource,
    SignInput, TouchPolicy,
};
use keystation_core::{Error, SecretKey};
use keystation_keygen::{HostSigner, OsRandom, SeededRandom, SoftKeyGen};
use sha2::Digest;

fn seeded(seed: u64) -> SoftKeyGen {
    SoftKeyGen::new(Box::new(SeededRandom::from_u64(seed)))
}

fn purpose_for(algorithm: KeyAlgorithm) -> KeyPurpose {
    if algorithm == KeyAlgorithm::X25519 {
        KeyPurpose::OpenPgp(OpenPgpKeySlot::Decryption)
    } else {
        KeyPurpose::OpenPgp(OpenPgpKeySlot::Signature)
    }
}

/// Verifies `signature` over `message` with an independent implementation.
fn verify(public: &PublicKey, message: &[u8], signature: &[u8]) {
    match public.algorithm() {
        KeyAlgorithm::Rsa(_) => {
            let (n, e) = public.rsa_components().unwrap();
            let key = rsa::RsaPublicKey::new(
                rsa::BigUint::from_bytes_be(n),
                rsa::BigUint::from_bytes_be(e),
            )
            .unwrap();
            assert_eq!(signature.len(), n.len(), "RSA signature is modulus-sized");
            let digest = sha2::Sha256::digest(message);
            key.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &digest, signature).unwrap();
        }
        KeyAlgorithm::NistP256 => {
            use p256::ecdsa::signature::Verifier;
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public.point().unwrap()).unwrap();
            let sig = p256::ecdsa::DerSignature::try_from(signature).unwrap();
            key.verify(message, &sig).unwrap();
        }
        KeyAlgorithm::NistP384 => {
            use p384::ecdsa::signature::Verifier;
            let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(public.point().unwrap()).unwrap();
            let sig = p384::ecdsa::DerSignature::try_from(signature).unwrap();
            key.verify(message, &sig).unwrap();
        }
        KeyAlgorithm::Ed25519 => {
            let bytes: [u8; 32] = public.point().unwrap().try_into().unwrap();
            let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes).unwrap();
            let sig = ed25519_dalek::Signature::from_slice(signature).unwrap();
            key.verify_strict(message, &sig).unwrap();
        }
        other => panic!("{other} does not sign"),
    }
}

fn digest_input(algorithm: KeyAlgorithm, message: &[u8]) -> (HashAlgorithm, Vec<u8>) {
    // ECDSA verifiers above hash with the curve's own hash (SHA-256 / SHA-384).
    if algorithm == KeyAlgorithm::NistP384 {
        (HashAlgorithm::Sha384, sha2::Sha384::digest(message).to_vec())
    } else {
        (HashAlgorithm::Sha256, sha2::Sha256::digest(message).to_vec())
    }
}

#[test]
fn every_algorithm_generates_and_signs_verifiably() {
    let message = b"keystation keygen test message";
    let mut keygen = seeded(1);
    assert_eq!(keygen.algorithms(), &KeyAlgorithm::ALL);
    for algorithm in KeyAlgorithm::ALL {
        let request = KeyRequest::new(purpose_for(algorithm), algorithm);
        let mut generated = keygen.generate(&request).unwrap();
        assert_eq!(generated.public.algorithm(), algorithm);
        assert_eq!(generated.signer.public_key(), &generated.public);
        let KeyLocation::Host(secret) = &generated.location else { panic!("not a host key") };
        check_secret_parts(secret, &generated.public);
        // A signer made again from the secret has the same public key.
        let again = HostSigner::new(secret).unwrap();
        assert_eq!(keystation_core::keygen::Signer::public_key(&again), &generated.public);

        if algorithm == KeyAlgorithm::X25519 {
            let r = generated.signer.sign(SignInput::Message(message));
            assert!(matches!(r, Err(Error::InvalidSignInput(KeyAlgorithm::X25519))));
            continue;
        }
        let signature = if algorithm == KeyAlgorithm::Ed25519 {
            let sig = generated.signer.sign(SignInput::Message(message)).unwrap();
            assert_eq!(sig.len(), 64);
            sig
        } else {
            let (hash, digest) = digest_input(algorithm, message);
            generated.signer.sign(SignInput::Digest { hash, digest: &digest }).unwrap()
        };
        verify(&generated.public, message, &signature);
        // A signature over other data must not verify (the verifier is not vacuous).
        let other = std::panic::catch_unwind(|| verify(&generated.public, b"other", &signature));
        assert!(other.is_err(), "{algorithm}: signature verified over the wrong message");
    }
}

fn check_secret_parts(secret: &SecretKey, public: &PublicKey) {
    match secret {
        SecretKey::Rsa { e, p, q, dp, dq, qinv } => {
            use rsa::BigUint;
            let (n, pub_e) = public.rsa_components().unwrap();
            assert_eq!(e.as_slice(), pub_e);
            assert_eq!(e.as_slice(), &[1, 0, 1]);
            let [p, q, dp, dq, qinv] =
                [p, q, dp, dq, qinv].map(|x| BigUint::from_bytes_be(x.expose()));
            assert_eq!((&p * &q).to_bytes_be(), n);
            let one = BigUint::from(1u8);
            let e = BigUint::from(65_537u32);
            // e·dp ≡ 1 (mod p−1), e·dq ≡ 1 (mod q−1), q·qinv ≡ 1 (mod p).
            assert_eq!((&e * &dp) % (&p - &one), one);
            assert_eq!((&e * &dq) % (&q - &one), one);
            assert_eq!((&q * &qinv) % &p, one);
        }
        SecretKey::NistP256(s) => assert_eq!(s.len(), 32),
        SecretKey::NistP384(s) => assert_eq!(s.len(), 48),
        SecretKey::Ed25519(s) => assert_eq!(s.len(), 32),
        SecretKey::X25519(s) => {
            let s = s.expose();
            assert_eq!(s.len(), 32);
            assert_eq!((s[0] & 7, s[31] & 0xC0), (0, 0x40), "clamped");
        }
        _ => panic!("unexpected secret kind"),
    }
}

#[test]
fn the_same_seed_gives_the_same_keys() {
    for algorithm in
        [KeyAlgorithm::Rsa(RsaBits::Rsa2048), KeyAlgorithm::NistP256, KeyAlgorithm::Ed25519]
    {
        let request = KeyRequest::new(purpose_for(algorithm), algorithm);
        let a = seeded(42).generate(&request).unwrap().public;
        let b = seeded(42).generate(&request).unwrap().public;
        let c = seeded(43).generate(&request).unwrap().public;
        assert_eq!(a, b, "{algorithm}");
        assert_ne!(a, c, "{algorithm}");
    }
    let mut os = SoftKeyGen::with_os_random();
    let request = KeyRequest::new(purpose_for(KeyAlgorithm::Ed25519), KeyAlgorithm::Ed25519);
    let x = os.generate(&request).unwrap().public;
    let y = os.generate(&request).unwrap().public;
    assert_ne!(x, y);
}

#[test]
fn larger_rsa_sizes_generate() {
    let mut keygen = SoftKeyGen::new(Box::new(OsRandom));
    for bits in [RsaBits::Rsa3072, RsaBits::Rsa4096] {
        let algorithm = KeyAlgorithm::Rsa(bits);
        let request = KeyRequest::new(KeyPurpose::Piv(PivSlot::Authentication), algorithm);
        let mut generated = keygen.generate(&request).unwrap();
        assert_eq!(generated.public.algorithm(), algorithm);
        let (hash, digest) = digest_input(algorithm, b"big");
        let sig = generated.signer.sign(SignInput::Digest { hash, digest: &digest }).unwrap();
        verify(&generated.public, b"big", &sig);
    }
}

#[test]
fn refused_requests_fail_as_documented() {
    let mut keygen = seeded(3);
    for purpose in [
        KeyPurpose::OpenPgp(OpenPgpKeySlot::Signature),
        KeyPurpose::OpenPgp(OpenPgpKeySlot::Authentication),
        KeyPurpose::Piv(PivSlot::Authentication),
        KeyPurpose::Piv(PivSlot::Signature),
    ] {
        let r = keygen.generate(&KeyRequest::new(purpose, KeyAlgorithm::X25519));
        assert!(matches!(r, Err(Error::UnsupportedAlgorithm(KeyAlgorithm::X25519))), "{purpose:?}");
    }
    let key_management = KeyPurpose::Piv(PivSlot::KeyManagement);
    assert!(keygen.generate(&KeyRequest::new(key_management, KeyAlgorithm::X25519)).is_ok());

    let mut request =
        KeyRequest::new(KeyPurpose::OpenPgp(OpenPgpKeySlot::Signature), KeyAlgorithm::Ed25519);
    request.pin_policy = PinPolicy::Always;
    assert!(matches!(keygen.generate(&request), Err(Error::UnsupportedPolicy)));
    // PIV policies and OpenPGP touch are accepted (applied at import).
    request.pin_policy = PinPolicy::Default;
    request.touch_policy = TouchPolicy::Always;
    assert!(keygen.generate(&request).is_ok());
    let mut piv = KeyRequest::new(KeyPurpose::Piv(PivSlot::Signature), KeyAlgorithm::NistP256);
    piv.pin_policy = PinPolicy::Never;
    piv.touch_policy = TouchPolicy::Cached;
    assert!(keygen.generate(&piv).is_ok());
}

#[test]
fn unfit_sign_inputs_are_rejected() {
    let mut keygen = seeded(4);
    let digest = [0u8; 32];
    let cases: [(KeyAlgorithm, SignInput<'_>); 5] = [
        (KeyAlgorithm::Ed25519, SignInput::Digest { hash: HashAlgorithm::Sha256, digest: &digest }),
        (KeyAlgorithm::NistP256, SignInput::Message(b"m")),
        (
            KeyAlgorithm::NistP256,
            SignInput::Digest { hash: HashAlgorithm::Sha384, digest: &digest },
        ),
        (KeyAlgorithm::Rsa(RsaBits::Rsa2048), SignInput::Message(b"m")),
        (
            KeyAlgorithm::Rsa(RsaBits::Rsa2048),
            SignInput::Digest { hash: HashAlgorithm::Sha512, digest: &digest },
        ),
    ];
    for (algorithm, input) in cases {
        let mut g = keygen.generate(&KeyRequest::new(purpose_for(algorithm), algorithm)).unwrap();
        let r = g.signer.sign(input);
        assert!(matches!(r, Err(Error::InvalidSignInput(a)) if a == algorithm), "{algorithm}");
    }
}

struct FailsAfter(usize);
impl RandomSource for FailsAfter {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), Error> {
        if self.0 < dest.len() {
            return Err(Error::RandomSourceFailed);
        }
        self.0 -= dest.len();
        dest.fill(0x5A);
        Ok(())
    }
}

#[test]
fn a_failing_random_source_is_reported() {
    for algorithm in
        [KeyAlgorithm::Ed25519, KeyAlgorithm::NistP384, KeyAlgorithm::Rsa(RsaBits::Rsa2048)]
    {
        // Dead from the start, and dying part-way through (after 20 bytes).
        for budget in [0, 20] {
            let mut keygen = SoftKeyGen::new(Box::new(FailsAfter(budget)));
            let r = keygen.generate(&KeyRequest::new(purpose_for(algorithm), algorithm));
            assert!(matches!(r, Err(Error::RandomSourceFailed)), "{algorithm} {budget}");
        }
    }
}

#[test]
fn host_signer_rejects_malformed_secrets() {
    use keystation_core::SecretBytes;
    let short = SecretKey::Ed25519(SecretBytes::copy_from(&[1; 31]));
    assert!(matches!(HostSigner::new(&short), Err(Error::InvalidKey { .. })));
    let zero = SecretKey::NistP256(SecretBytes::copy_from(&[0; 32]));
    assert!(matches!(HostSigner::new(&zero), Err(Error::InvalidKey { .. })));
    let tiny_rsa = SecretKey::Rsa {
        e: vec![1, 0, 1],
        p: SecretBytes::copy_from(&[0xFB]),
        q: SecretBytes::copy_from(&[0xF1]),
        dp: SecretBytes::default(),
        dq: SecretBytes::default(),
        qinv: SecretBytes::default(),
    };
    assert!(matches!(HostSigner::new(&tiny_rsa), Err(Error::InvalidKey { .. })));
    // Debug output never shows key material.
    let signer = HostSigner::new(&SecretKey::Ed25519(SecretBytes::copy_from(&[7; 32]))).unwrap();
    assert_eq!(format!("{signer:?}"), "HostSigner(PublicKey(ed25519), [redacted])");
}
