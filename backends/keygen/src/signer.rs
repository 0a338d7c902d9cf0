//! [`HostSigner`]: signs with a private key held in host memory.

use keystation_core::key::{HashAlgorithm, KeyAlgorithm, PublicKey};
use keystation_core::keygen::{SignInput, Signer};
use keystation_core::{Error, SecretKey};
use p256::ecdsa::signature::hazmat::PrehashSigner;
use rsa::{BigUint, Pkcs1v15Sign, RsaPrivateKey};
use zeroize::Zeroize;

use crate::rng::{Bridge, OsRandom};

/// A [`Signer`] over a private key in host memory.
///
/// It signs as core's contract asks: RSA PKCS#1 v1.5 over a DigestInfo for the digest's
/// hash (RFC 8017 §8.2.1, §9.2), ECDSA with RFC 6979 nonces returned as DER
/// `Ecdsa-Sig-Value` (RFC 5480 §2.2.3), Ed25519 as 64 bytes (RFC 8032 §5.1.6). An X25519
/// key signs nothing: every input is [`Error::InvalidSignInput`].
///
/// The private key is zeroized when the signer is dropped (the RustCrypto key types do
/// this on drop).
pub struct HostSigner {
    public: PublicKey,
    key: Key,
}

enum Key {
    Rsa(Box<RsaPrivateKey>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
    X25519,
}

impl core::fmt::Debug for HostSigner {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "HostSigner({:?}, [redacted])", self.public)
    }
}

impl HostSigner {
    /// A signer for `secret`, with its public key derived from it.
    ///
    /// RSA is rebuilt from `p`, `q` and `e` (the CRT parts are recomputed, so an
    /// inconsistent `dp`/`dq`/`qinv` cannot make a wrong signature); its modulus must be
    /// 2048, 3072 or 4096 bits. Scalars and seeds must have their curve's length.
    pub fn new(secret: &SecretKey) -> Result<Self, Error> {
        match secret {
            SecretKey::Rsa { e, p, q, .. } => {
                let mut p = BigUint::from_bytes_be(p.expose());
                let mut q = BigUint::from_bytes_be(q.expose());
                // Size and exponent checks first, with core's errors for them.
                let public = PublicKey::rsa(&(&p * &q).to_bytes_be(), e)?;
                let exponent = BigUint::from_bytes_be(e);
                let made = RsaPrivateKey::from_p_q(p.clone(), q.clone(), exponent);
                p.zeroize();
                q.zeroize();
                // p = q, or e not invertible modulo λ(n): no usable private exponent.
                let mut key = made.map_err(|_| bad_rsa_exponent(&public))?;
                key.precompute().map_err(|_| bad_rsa_exponent(&public))?;
                Ok(Self { public, key: Key::Rsa(Box::new(key)) })
            }
            SecretKey::NistP256(scalar) => {
                let key = p256::ecdsa::SigningKey::from_slice(scalar.expose())
                    .map_err(|_| wrong_length(KeyAlgorithm::NistP256))?;
                let point = key.verifying_key().to_encoded_point(false);
                let public = PublicKey::from_point(KeyAlgorithm::NistP256, point.as_bytes())?;
                Ok(Self { public, key: Key::P256(key) })
            }
            SecretKey::NistP384(scalar) => {
                let key = p384::ecdsa::SigningKey::from_slice(scalar.expose())
                    .map_err(|_| wrong_length(KeyAlgorithm::NistP384))?;
                let point = key.verifying_key().to_encoded_point(false);
                let public = PublicKey::from_point(KeyAlgorithm::NistP384, point.as_bytes())?;
                Ok(Self { public, key: Key::P384(key) })
            }
            SecretKey::Ed25519(seed) => {
                let seed: &[u8; 32] =
                    seed.expose().try_into().map_err(|_| wrong_length(KeyAlgorithm::Ed25519))?;
                let key = ed25519_dalek::SigningKey::from_bytes(seed);
                let public =
                    PublicKey::from_point(KeyAlgorithm::Ed25519, key.verifying_key().as_bytes())?;
                Ok(Self { public, key: Key::Ed25519(key) })
            }
            SecretKey::X25519(scalar) => {
                let mut bytes: [u8; 32] =
                    scalar.expose().try_into().map_err(|_| wrong_length(KeyAlgorithm::X25519))?;
                // StaticSecret zeroizes itself on drop; the array is `Copy`, so the local
                // copy is wiped here.
                let secret = x25519_dalek::StaticSecret::from(bytes);
                bytes.zeroize();
                let point = x25519_dalek::PublicKey::from(&secret);
                let public = PublicKey::from_point(KeyAlgorithm::X25519, point.as_bytes())?;
                Ok(Self { public, key: Key::X25519 })
            }
            // A kind of secret added to core after this crate was written.
            _ => Err(Error::UnknownAlgorithm("unrecognised secret key kind".into())),
        }
    }
}

// core's `KeyFault` is not re-exported, so its `InvalidKey` errors are obtained from the
// constructors that raise them.

/// `InvalidKey { fault: WrongLength }` for a curve algorithm.
pub(crate) fn wrong_length(algorithm: KeyAlgorithm) -> Error {
    PublicKey::from_point(algorithm, &[]).err().unwrap_or(Error::UnsupportedAlgorithm(algorithm))
}

/// `InvalidKey { fault: BadExponent }` for this RSA key's size.
fn bad_rsa_exponent(public: &PublicKey) -> Error {
    let n = public.rsa_components().map(|(n, _)| n).unwrap_or_default();
    PublicKey::rsa(n, &[2]).err().unwrap_or(Error::UnsupportedAlgorithm(public.algorithm()))
}

impl Signer for HostSigner {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&mut self, input: SignInput<'_>) -> Result<Vec<u8>, Error> {
        let algorithm = self.public.algorithm();
        let unfit = || Error::InvalidSignInput(algorithm);
        match (&self.key, input) {
            (Key::Rsa(key), SignInput::Digest { hash, digest }) => {
                if digest.len() != hash.output_len() {
                    return Err(unfit());
                }
                let scheme = match hash {
                    HashAlgorithm::Sha256 => Pkcs1v15Sign::new::<sha2::Sha256>(),
                    HashAlgorithm::Sha384 => Pkcs1v15Sign::new::<sha2::Sha384>(),
                    HashAlgorithm::Sha512 => Pkcs1v15Sign::new::<sha2::Sha512>(),
                    _ => return Err(unfit()),
                };
                // The random bytes only blind the exponentiation (against timing
                // attacks); PKCS#1 v1.5 signatures themselves are deterministic.
                let mut os = OsRandom;
                let mut rng = Bridge::new(&mut os)?;
                let signature = key.sign_with_rng(&mut rng, scheme, digest).map_err(|_| unfit());
                rng.finish()?;
                signature
            }
            (Key::P256(key), SignInput::Digest { hash, digest }) => {
                if digest.len() != hash.output_len() {
                    return Err(unfit());
                }
                let signature: p256::ecdsa::Signature =
                    key.sign_prehash(digest).map_err(|_| unfit())?;
                Ok(signature.to_der().as_bytes().to_vec())
            }
            (Key::P384(key), SignInput::Digest { hash, digest }) => {
                if digest.len() != hash.output_len() {
                    return Err(unfit());
                }
                let signature: p384::ecdsa::Signature =
                    key.sign_prehash(digest).map_err(|_| unfit())?;
                Ok(signature.to_der().as_bytes().to_vec())
            }
            (Key::Ed25519(key), SignInput::Message(message)) => {
                use ed25519_dalek::Signer as _;
                Ok(key.sign(message).to_bytes().to_vec())
            }
            _ => Err(unfit()),
        }
    }
}
