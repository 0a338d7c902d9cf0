#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Building certificates without gpg: determinism, fingerprints, and the errors.

use keystation_core::key::{KeyAlgorithm, PublicKey};
use keystation_core::keygen::{
    KeyGen, KeyLocation, KeyPurpose, KeyRequest, OpenPgpKeySlot, SignInput, Signer,
};
use keystation_keygen::{HostSigner, SeededRandom, SoftKeyGen};
use keystation_openpgp_cert::{
    CertError, Certificate, CertificateParams, KeyRole, Subkey, fingerprint, parse_packets,
    sign_detached,
};

/// A host signer for an Ed25519 primary key, with its public key, and the two subkeys.
struct Keys {
    signer: HostSigner,
    public: PublicKey,
}

fn keys(seed: u64) -> (Keys, Subkey, Subkey) {
    let mut keygen = SoftKeyGen::new(Box::new(SeededRandom::from_u64(seed)));
    let mut make = |slot, algorithm| {
        let g = keygen.generate(&KeyRequest::new(KeyPurpose::OpenPgp(slot), algorithm)).unwrap();
        let KeyLocation::Host(secret) = g.location else { panic!("host key") };
        (g.public, secret)
    };
    let enc = make(OpenPgpKeySlot::Decryption, KeyAlgorithm::X25519).0;
    let auth = make(OpenPgpKeySlot::Authentication, KeyAlgorithm::Ed25519).0;
    let (public, secret) = make(OpenPgpKeySlot::Signature, KeyAlgorithm::Ed25519);
    (
        Keys { signer: HostSigner::new(&secret).unwrap(), public },
        Subkey { public: enc, created: 100 },
        Subkey { public: auth, created: 100 },
    )
}

fn params<'a>(enc: &Subkey, auth: &Subkey, uid: &'a str, signed_at: u32) -> CertificateParams<'a> {
    CertificateParams {
        primary_created: 100,
        encryption: enc.clone(),
        authentication: auth.clone(),
        user_id: uid,
        signed_at,
    }
}

#[test]
fn same_keys_and_times_give_the_same_certificate() {
    let (mut a, enc, auth) = keys(9);
    let (mut b, _, _) = keys(9);
    let p = params(&enc, &auth, "A B <a@b>", 200);
    let ca = Certificate::build(&mut a.signer, &p).unwrap();
    let cb = Certificate::build(&mut b.signer, &p).unwrap();
    assert_eq!(ca.to_bytes(), cb.to_bytes());
    assert_eq!(ca.primary().fingerprint, fingerprint(&a.public, 100, KeyRole::Primary).unwrap());
    assert_eq!(
        ca.encryption().fingerprint,
        fingerprint(&enc.public, 100, KeyRole::Encryption).unwrap()
    );
    let fp = ca.authentication().fingerprint;
    assert_eq!(fp.key_id().as_bytes(), &fp.as_bytes()[12..]);
    assert_eq!(fp.to_string().len(), 40);
    // Another User ID changes the bytes but not the fingerprints.
    let other = Certificate::build(&mut a.signer, &params(&enc, &auth, "C D <c@d>", 200)).unwrap();
    assert_ne!(other.to_bytes(), ca.to_bytes());
    assert_eq!(other.primary().fingerprint, ca.primary().fingerprint);
    // A detached signature is one Signature packet of type 00.
    let sig = sign_detached(&mut a.signer, 100, 300, b"data").unwrap();
    let packets = parse_packets(&sig).unwrap();
    assert_eq!(packets.len(), 1);
    assert_eq!((packets[0].tag, packets[0].body[0], packets[0].body[1]), (2, 4, 0x00));
}

#[test]
fn bad_inputs_are_refused() {
    let (mut key, enc, auth) = keys(10);
    for uid in ["", "Line\nBreak <a@b>"] {
        let r = Certificate::build(&mut key.signer, &params(&enc, &auth, uid, 200));
        assert!(matches!(r, Err(CertError::InvalidUserId)), "{uid:?}");
    }
    let r = Certificate::build(&mut key.signer, &params(&enc, &auth, "A <a@b>", 99));
    assert!(matches!(r, Err(CertError::SignatureBeforeKey)));
    // Subkeys in the wrong roles.
    let r = Certificate::build(&mut key.signer, &params(&auth, &enc, "A <a@b>", 200));
    assert!(matches!(r, Err(CertError::UnsupportedKey { role: KeyRole::Encryption, .. })));
}

/// A signer that fails, or returns a signature of the wrong shape.
struct Broken(PublicKey, bool);

impl Signer for Broken {
    fn public_key(&self) -> &PublicKey {
        &self.0
    }
    fn sign(&mut self, _: SignInput<'_>) -> Result<Vec<u8>, keystation_core::Error> {
        if self.1 {
            Err(keystation_core::Error::InvalidSignInput(self.0.algorithm()))
        } else {
            Ok(vec![1, 2, 3])
        }
    }
}

#[test]
fn signer_failures_surface() {
    let (_, enc, auth) = keys(11);
    let p = params(&enc, &auth, "A <a@b>", 200);
    let x = PublicKey::from_point(KeyAlgorithm::X25519, &[5; 32]).unwrap();
    let r = Certificate::build(&mut Broken(x, false), &p);
    assert!(matches!(r, Err(CertError::UnsupportedKey { role: KeyRole::Primary, .. })));
    let ed = PublicKey::from_point(KeyAlgorithm::Ed25519, &[5; 32]).unwrap();
    let r = Certificate::build(&mut Broken(ed.clone(), true), &p);
    assert!(matches!(r, Err(CertError::Sign(_))));
    let r = Certificate::build(&mut Broken(ed, false), &p);
    assert!(matches!(r, Err(CertError::MalformedSignature(KeyAlgorithm::Ed25519))));
    let mut p256 = vec![4u8];
    p256.extend_from_slice(&[1; 64]);
    let nist = PublicKey::from_point(KeyAlgorithm::NistP256, &p256).unwrap();
    let r = Certificate::build(&mut Broken(nist, false), &p);
    assert!(matches!(r, Err(CertError::MalformedSignature(KeyAlgorithm::NistP256))));
}

#[test]
fn parsers_are_total_on_noise() {
    use keystation_openpgp_cert::{ArmorKind, armor, dearmor};
    // Every two-byte input, then pseudo-random inputs and damaged armor.
    for a in 0..=255u8 {
        for b in 0..=255u8 {
            let _ = parse_packets(&[a, b]);
        }
    }
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut key, enc, auth) = keys(12);
    let cert = Certificate::build(&mut key.signer, &params(&enc, &auth, "N <n@n>", 200)).unwrap();
    let good = cert.to_bytes().to_vec();
    let text = armor(ArmorKind::PublicKey, &good);
    for _ in 0..5000 {
        let mut bytes = good.clone();
        let i = (next() as usize) % bytes.len();
        bytes[i] = next() as u8;
        bytes.truncate((next() as usize) % (bytes.len() + 1));
        let _ = parse_packets(&bytes);
        let mut t = text.clone().into_bytes();
        let j = (next() as usize) % t.len();
        t[j] = (next() as u8) & 0x7F;
        if let Ok(s) = String::from_utf8(t) {
            // Either an error or exactly one changed/unchanged payload, never a panic.
            let _ = dearmor(&s);
        }
    }
    assert_eq!(dearmor(&text).unwrap().1, good);
}
