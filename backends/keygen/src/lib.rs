//! keystation-keygen: a software [`KeyGen`] that makes key pairs in host memory.
//!
//! Cards generate their own keys; this backend is for the cases where the key is made on
//! the host and imported — RSA-4096 for cards too slow to generate it, or a key that is
//! also kept as an encrypted backup. It generates
//!
//! * RSA 2048/3072/4096 with e = 65537 (RFC 8017 §3),
//! * ECDSA/ECDH keys on NIST P-256 and P-384 (FIPS 186-4, SEC 1),
//! * Ed25519 (RFC 8032 §5.1.5: a 32-byte random seed),
//! * X25519 (RFC 7748 §5: a 32-byte scalar, stored clamped),
//!
//! from an injected [`RandomSource`]: [`OsRandom`] in production, [`SeededRandom`] for
//! reproducible tests. The private key comes back once, as
//! [`KeyLocation::Host`]\([`SecretKey`]), together with a [`HostSigner`] over it; both
//! zeroize the key material when dropped. [`HostSigner::new`] also makes a signer from a
//! [`SecretKey`] obtained elsewhere, so that a certificate can be self-signed before the
//! key is imported to a card.
//!
//! # Requests it refuses
//!
//! * An X25519 key for a purpose that signs — the OpenPGP signature or authentication
//!   slot, or any PIV slot other than Key Management (`9D`) and the retired
//!   key-management slots — is [`Error::UnsupportedAlgorithm`]`(X25519)`.
//! * A PIN policy other than [`PinPolicy::Default`] for an OpenPGP slot is
//!   [`Error::UnsupportedPolicy`]: OpenPGP cards have no per-key PIN policy (PW1's status
//!   byte rules), so the request could not be honoured anywhere. PIV PIN and touch
//!   policies, and the OpenPGP touch policy (the card's UIF data objects), are accepted:
//!   a software key has no gate of its own, and the backend that imports the key applies
//!   them then.

mod rng;
mod signer;

use keystation_core::key::{KeyAlgorithm, PublicKey, RsaBits};
use keystation_core::keygen::{
    GeneratedKey, KeyGen, KeyLocation, KeyPurpose, KeyRequest, OpenPgpKeySlot, PinPolicy, PivSlot,
    RandomSource,
};
use keystation_core::{Error, SecretBytes, SecretKey};
use rsa::BigUint;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use zeroize::{Zeroize, Zeroizing};

pub use rng::{OsRandom, SeededRandom};
pub use signer::HostSigner;

/// The RSA public exponent, F4 = 65537.
const RSA_EXPONENT: u32 = 65_537;

/// Software key generation in host memory; see the [crate documentation](crate).
pub struct SoftKeyGen {
    rng: Box<dyn RandomSource>,
}

impl core::fmt::Debug for SoftKeyGen {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SoftKeyGen")
    }
}

impl SoftKeyGen {
    /// A generator drawing on `rng`.
    pub fn new(rng: Box<dyn RandomSource>) -> Self {
        Self { rng }
    }

    /// A generator drawing on the operating system's CSPRNG.
    pub fn with_os_random() -> Self {
        Self::new(Box::new(OsRandom))
    }

    /// Generates only the private key for `algorithm` (no purpose checks), for callers
    /// that want a [`SecretKey`] without a signer.
    pub fn generate_secret(&mut self, algorithm: KeyAlgorithm) -> Result<SecretKey, Error> {
        match algorithm {
            KeyAlgorithm::Rsa(bits) => self.rsa(bits),
            KeyAlgorithm::NistP256 => {
                let mut bridge = rng::Bridge::new(self.rng.as_mut())?;
                let key = p256::SecretKey::random(&mut bridge);
                bridge.finish()?;
                let mut bytes = key.to_bytes();
                let secret = SecretBytes::copy_from(&bytes);
                bytes[..].zeroize();
                Ok(SecretKey::NistP256(secret))
            }
            KeyAlgorithm::NistP384 => {
                let mut bridge = rng::Bridge::new(self.rng.as_mut())?;
                let key = p384::SecretKey::random(&mut bridge);
                bridge.finish()?;
                let mut bytes = key.to_bytes();
                let secret = SecretBytes::copy_from(&bytes);
                bytes[..].zeroize();
                Ok(SecretKey::NistP384(secret))
            }
            KeyAlgorithm::Ed25519 => {
                let mut seed = Zeroizing::new(vec![0u8; 32]);
                self.rng.fill(&mut seed)?;
                Ok(SecretKey::Ed25519(SecretBytes::new(core::mem::take(&mut *seed))))
            }
            KeyAlgorithm::X25519 => {
                let mut scalar = Zeroizing::new(vec![0u8; 32]);
                self.rng.fill(&mut scalar)?;
                // RFC 7748 §5 decodeScalar25519; X25519 clamps anyway, so storing the
                // clamped form changes no result and gives importers one canonical form.
                scalar[0] &= 0xF8;
                scalar[31] &= 0x7F;
                scalar[31] |= 0x40;
                Ok(SecretKey::X25519(SecretBytes::new(core::mem::take(&mut *scalar))))
            }
            other => Err(Error::UnsupportedAlgorithm(other)),
        }
    }

    fn rsa(&mut self, bits: RsaBits) -> Result<SecretKey, Error> {
        let mut bridge = rng::Bridge::new(self.rng.as_mut())?;
        let made = rsa::RsaPrivateKey::new_with_exp(
            &mut bridge,
            usize::from(bits.bits()),
            &BigUint::from(RSA_EXPONENT),
        );
        bridge.finish()?;
        let algorithm = KeyAlgorithm::Rsa(bits);
        let mut key = made.map_err(|_| Error::UnsupportedAlgorithm(algorithm))?;
        key.precompute().map_err(|_| Error::UnsupportedAlgorithm(algorithm))?;
        let secret =
            |n: Option<&BigUint>| SecretBytes::new(n.map(BigUint::to_bytes_be).unwrap_or_default());
        let primes = key.primes();
        let mut qinv = key.crt_coefficient();
        let out = SecretKey::Rsa {
            e: key.e().to_bytes_be(),
            p: secret(primes.first()),
            q: secret(primes.get(1)),
            dp: secret(key.dp()),
            dq: secret(key.dq()),
            qinv: secret(qinv.as_ref()),
        };
        if let Some(q) = qinv.as_mut() {
            q.zeroize();
        }
        Ok(out)
    }
}

/// Whether keys for `purpose` are used to sign (and so cannot be X25519).
fn purpose_signs(purpose: KeyPurpose) -> bool {
    match purpose {
        KeyPurpose::OpenPgp(slot) => slot != OpenPgpKeySlot::Decryption,
        KeyPurpose::Piv(slot) => !matches!(slot, PivSlot::KeyManagement | PivSlot::Retired(_)),
    }
}

/// Checks `request` against what a software key can be; see the crate documentation.
fn check_request(request: &KeyRequest) -> Result<(), Error> {
    if !KeyAlgorithm::ALL.contains(&request.algorithm) {
        return Err(Error::UnsupportedAlgorithm(request.algorithm));
    }
    if !request.algorithm.can_sign() && purpose_signs(request.purpose) {
        return Err(Error::UnsupportedAlgorithm(request.algorithm));
    }
    if matches!(request.purpose, KeyPurpose::OpenPgp(_)) && request.pin_policy != PinPolicy::Default
    {
        return Err(Error::UnsupportedPolicy);
    }
    Ok(())
}

impl KeyGen for SoftKeyGen {
    fn algorithms(&self) -> &[KeyAlgorithm] {
        &KeyAlgorithm::ALL
    }

    fn generate(&mut self, request: &KeyRequest) -> Result<GeneratedKey<'_>, Error> {
        check_request(request)?;
        let secret = self.generate_secret(request.algorithm)?;
        let signer = HostSigner::new(&secret)?;
        let public: PublicKey = keystation_core::keygen::Signer::public_key(&signer).clone();
        Ok(GeneratedKey { public, location: KeyLocation::Host(secret), signer: Box::new(signer) })
    }
}
