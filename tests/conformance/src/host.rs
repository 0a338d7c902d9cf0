//! Host-side checks of what the card computes, with independent implementations.

use ed25519_dalek::Verifier as _;
use keystation_core::key::PublicKey;
use keystation_core::{SecretBytes, SecretKey};
use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use sha2::Digest as _;

pub(crate) fn verify_ed25519(public: &PublicKey, message: &[u8], signature: &[u8]) {
    let key: [u8; 32] = public.point().expect("EC point").try_into().expect("32 bytes");
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key).expect("Ed25519 public key");
    let signature = ed25519_dalek::Signature::from_slice(signature).expect("64-byte signature");
    key.verify(message, &signature).expect("Ed25519 signature verifies");
}

pub(crate) fn verify_p256(public: &PublicKey, digest: &[u8], der: &[u8]) {
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public.point().expect("EC point"))
        .expect("P-256 public key");
    let signature = p256::ecdsa::Signature::from_der(der).expect("DER ECDSA signature");
    key.verify_prehash(digest, &signature).expect("P-256 signature verifies");
}

pub(crate) fn verify_p384(public: &PublicKey, digest: &[u8], der: &[u8]) {
    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(public.point().expect("EC point"))
        .expect("P-384 public key");
    let signature = p384::ecdsa::Signature::from_der(der).expect("DER ECDSA signature");
    key.verify_prehash(digest, &signature).expect("P-384 signature verifies");
}

pub(crate) fn rsa_public(public: &PublicKey) -> rsa::RsaPublicKey {
    let (n, e) = public.rsa_components().expect("RSA public key");
    rsa::RsaPublicKey::new(rsa::BigUint::from_bytes_be(n), rsa::BigUint::from_bytes_be(e))
        .expect("valid RSA public key")
}

pub(crate) fn verify_rsa_pkcs1(public: &rsa::RsaPublicKey, digest: &[u8], signature: &[u8]) {
    public
        .verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), digest, signature)
        .expect("RSA PKCS #1 v1.5 signature verifies");
}

pub(crate) fn sha256(message: &[u8]) -> Vec<u8> {
    sha2::Sha256::digest(message).to_vec()
}

pub(crate) fn sha384(message: &[u8]) -> Vec<u8> {
    sha2::Sha384::digest(message).to_vec()
}

pub(crate) fn sha512(message: &[u8]) -> Vec<u8> {
    sha2::Sha512::digest(message).to_vec()
}

pub(crate) fn secret(bytes: &[u8]) -> SecretBytes {
    SecretBytes::copy_from(bytes)
}

/// A seeded RSA-2048 host key (seeded: the same key in every run).
pub(crate) fn rsa_2048(seed: u64) -> rsa::RsaPrivateKey {
    use rand_chacha::rand_core::SeedableRng as _;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    rsa::RsaPrivateKey::new(&mut rng, 2048).expect("RSA-2048 host key")
}

/// The CRT parts of an RSA host key, as keystation imports them.
pub(crate) fn rsa_secret(key: &rsa::RsaPrivateKey) -> SecretKey {
    use rsa::traits::{PrivateKeyParts as _, PublicKeyParts as _};
    let primes = key.primes();
    SecretKey::Rsa {
        e: key.e().to_bytes_be(),
        p: SecretBytes::new(primes[0].to_bytes_be()),
        q: SecretBytes::new(primes[1].to_bytes_be()),
        dp: SecretBytes::new(key.dp().expect("dP").to_bytes_be()),
        dq: SecretBytes::new(key.dq().expect("dQ").to_bytes_be()),
        qinv: SecretBytes::new(key.crt_coefficient().expect("qInv").to_bytes_be()),
    }
}
