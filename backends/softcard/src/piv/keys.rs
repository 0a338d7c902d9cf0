//! Asymmetric keys in PIV slots: algorithm identifiers, generation, import, the private-key
//! operations of GENERAL AUTHENTICATE, and public key encodings.
//!
//! Algorithm identifiers are NIST SP 800-78-4 table 6-2 (`06` RSA-1024, `07` RSA-2048,
//! `11` P-256, `14` P-384) plus Yubico's (`05` RSA-3072, `16` RSA-4096, `E0` Ed25519,
//! `E1` X25519; docs.yubico.com, "PIV commands", GET METADATA table 1).

use keystation_core::{StatusWord, tlv};
use rand_chacha::ChaCha20Rng;
use rsa::BigUint;
use rsa::traits::PublicKeyParts;
use zeroize::Zeroizing;

use crate::identity::Version;

/// An asymmetric algorithm a PIV slot can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Algorithm {
    /// RSA with a 1024-bit modulus (`06`).
    Rsa1024,
    /// RSA with a 2048-bit modulus (`07`).
    Rsa2048,
    /// RSA with a 3072-bit modulus (`05`, firmware 5.7).
    Rsa3072,
    /// RSA with a 4096-bit modulus (`16`, firmware 5.7).
    Rsa4096,
    /// ECDSA/ECDH on P-256 (`11`).
    P256,
    /// ECDSA/ECDH on P-384 (`14`).
    P384,
    /// Ed25519 (`E0`, firmware 5.7).
    Ed25519,
    /// X25519 (`E1`, firmware 5.7).
    X25519,
}

/// The version that brought RSA-3072/4096, Ed25519 and X25519 (Yubico, "YubiKey 5.7
/// enhancements to PIV").
const V5_7: Version = Version(5, 7, 0);

impl Algorithm {
    /// The algorithm with identifier `id`, if `version` supports it.
    pub(crate) fn from_id(id: u8, version: Version) -> Option<Self> {
        let alg = match id {
            0x06 => Self::Rsa1024,
            0x07 => Self::Rsa2048,
            0x05 => Self::Rsa3072,
            0x16 => Self::Rsa4096,
            0x11 => Self::P256,
            0x14 => Self::P384,
            0xE0 => Self::Ed25519,
            0xE1 => Self::X25519,
            _ => return None,
        };
        let needs_5_7 = matches!(alg, Self::Rsa3072 | Self::Rsa4096 | Self::Ed25519 | Self::X25519);
        if needs_5_7 && version < V5_7 {
            return None;
        }
        // P-384 and the policy-carrying YubiKey PIV came with firmware 4.
        Some(alg)
    }

    /// The identifier byte.
    pub(crate) const fn id(self) -> u8 {
        match self {
            Self::Rsa1024 => 0x06,
            Self::Rsa2048 => 0x07,
            Self::Rsa3072 => 0x05,
            Self::Rsa4096 => 0x16,
            Self::P256 => 0x11,
            Self::P384 => 0x14,
            Self::Ed25519 => 0xE0,
            Self::X25519 => 0xE1,
        }
    }

    /// RSA modulus size in bits, for RSA algorithms.
    const fn rsa_bits(self) -> Option<usize> {
        match self {
            Self::Rsa1024 => Some(1024),
            Self::Rsa2048 => Some(2048),
            Self::Rsa3072 => Some(3072),
            Self::Rsa4096 => Some(4096),
            _ => None,
        }
    }
}

/// A private key held in a slot. Every variant zeroizes its secret when dropped (the
/// RustCrypto and dalek key types implement `ZeroizeOnDrop`).
pub(crate) enum PrivateKey {
    /// RSA.
    Rsa(Box<rsa::RsaPrivateKey>),
    /// NIST P-256.
    P256(p256::SecretKey),
    /// NIST P-384.
    P384(p384::SecretKey),
    /// Ed25519.
    Ed25519(Box<ed25519_dalek::SigningKey>),
    /// X25519.
    X25519(Box<x25519_dalek::StaticSecret>),
}

impl core::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PrivateKey([redacted])")
    }
}

impl PrivateKey {
    /// Generates a key of `algorithm` (SP 800-73-4 part 2 §3.3.2 GENERATE ASYMMETRIC KEY
    /// PAIR). Fails with `6A80` only if the RSA generator does, which it does not for
    /// these sizes.
    pub(crate) fn generate(
        algorithm: Algorithm,
        rng: &mut ChaCha20Rng,
    ) -> Result<Self, StatusWord> {
        Ok(match algorithm {
            Algorithm::P256 => Self::P256(p256::SecretKey::random(rng)),
            Algorithm::P384 => Self::P384(p384::SecretKey::random(rng)),
            Algorithm::Ed25519 => Self::Ed25519(Box::new(ed25519_dalek::SigningKey::generate(rng))),
            Algorithm::X25519 => {
                Self::X25519(Box::new(x25519_dalek::StaticSecret::random_from_rng(rng)))
            }
            rsa_alg => {
                let bits = rsa_alg.rsa_bits().ok_or(StatusWord::INCORRECT_DATA)?;
                let key =
                    rsa::RsaPrivateKey::new(rng, bits).map_err(|_| StatusWord::EXECUTION_ERROR)?;
                Self::Rsa(Box::new(key))
            }
        })
    }

    /// Builds a key from Yubico's IMPORT KEY data: `01` p, `02` q, `03` dp, `04` dq,
    /// `05` qinv for RSA (public exponent 65537); `06` the private scalar for ECC; `07` the
    /// Ed25519 seed; `08` the X25519 scalar (Yubico PIV extensions, "Import asymmetric
    /// key"). Wrong or inconsistent values answer `6A80`.
    pub(crate) fn import(algorithm: Algorithm, data: &[u8]) -> Result<Self, StatusWord> {
        let bad = StatusWord::INCORRECT_DATA;
        let get = |tag: u32| -> Result<&[u8], StatusWord> {
            tlv::find(data, tag).map_err(|_| bad)?.ok_or(bad)
        };
        match algorithm {
            Algorithm::P256 => {
                let scalar = get(0x06)?;
                if scalar.len() != 32 {
                    return Err(bad);
                }
                p256::SecretKey::from_slice(scalar).map(Self::P256).map_err(|_| bad)
            }
            Algorithm::P384 => {
                let scalar = get(0x06)?;
                if scalar.len() != 48 {
                    return Err(bad);
                }
                p384::SecretKey::from_slice(scalar).map(Self::P384).map_err(|_| bad)
            }
            Algorithm::Ed25519 => {
                let seed: [u8; 32] = get(0x07)?.try_into().map_err(|_| bad)?;
                let seed = Zeroizing::new(seed);
                Ok(Self::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(&seed))))
            }
            Algorithm::X25519 => {
                let scalar: [u8; 32] = get(0x08)?.try_into().map_err(|_| bad)?;
                let scalar = Zeroizing::new(scalar);
                Ok(Self::X25519(Box::new(x25519_dalek::StaticSecret::from(*scalar))))
            }
            rsa_alg => {
                let bits = rsa_alg.rsa_bits().ok_or(bad)?;
                let half = bits / 16;
                let p = get(0x01)?;
                let q = get(0x02)?;
                // dp, dq and qinv must be present; the card recomputes them from p and q.
                for tag in [0x03, 0x04, 0x05] {
                    if get(tag)?.len() > half {
                        return Err(bad);
                    }
                }
                if p.len() > half || q.len() > half {
                    return Err(bad);
                }
                let (p, q) = (BigUint::from_bytes_be(p), BigUint::from_bytes_be(q));
                // Primes are odd and large; rejecting tiny or even values here also keeps
                // the arithmetic below away from zero moduli.
                let three = BigUint::from(3u8);
                let odd = |v: &BigUint| v.to_bytes_be().last().is_some_and(|b| b & 1 == 1);
                if p < three || q < three || !odd(&p) || !odd(&q) {
                    return Err(bad);
                }
                let key = rsa::RsaPrivateKey::from_p_q(p, q, BigUint::from(65_537u32))
                    .map_err(|_| bad)?;
                if key.n().bits() != bits {
                    return Err(bad);
                }
                Ok(Self::Rsa(Box::new(key)))
            }
        }
    }

    /// The algorithm of this key.
    pub(crate) fn algorithm(&self) -> Algorithm {
        match self {
            Self::Rsa(key) => match key.n().bits() {
                0..=1024 => Algorithm::Rsa1024,
                1025..=2048 => Algorithm::Rsa2048,
                2049..=3072 => Algorithm::Rsa3072,
                _ => Algorithm::Rsa4096,
            },
            Self::P256(_) => Algorithm::P256,
            Self::P384(_) => Algorithm::P384,
            Self::Ed25519(_) => Algorithm::Ed25519,
            Self::X25519(_) => Algorithm::X25519,
        }
    }

    /// The public key as GENERATE ASYMMETRIC KEY PAIR returns it inside `7F49`: `81`
    /// modulus and `82` exponent for RSA, `86` the point for the others (SP 800-73-4
    /// part 2 §3.3.2 table 10; the 32 raw bytes for Ed25519/X25519).
    pub(crate) fn public_tlvs(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(530);
        match self {
            Self::Rsa(key) => {
                tlv::write(&mut out, 0x81, &key.n().to_bytes_be());
                tlv::write(&mut out, 0x82, &key.e().to_bytes_be());
            }
            _ => tlv::write(&mut out, 0x86, &self.point()),
        }
        out
    }

    /// The public point: SEC1 uncompressed for P-256/P-384, raw 32 bytes otherwise; empty
    /// for RSA.
    fn point(&self) -> Vec<u8> {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        match self {
            Self::Rsa(_) => Vec::new(),
            Self::P256(k) => k.public_key().to_encoded_point(false).as_bytes().to_vec(),
            Self::P384(k) => k.public_key().to_encoded_point(false).as_bytes().to_vec(),
            Self::Ed25519(k) => k.verifying_key().to_bytes().to_vec(),
            Self::X25519(k) => x25519_dalek::PublicKey::from(k.as_ref()).as_bytes().to_vec(),
        }
    }

    /// DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7; RFC 3279 §2.3.1 for RSA, RFC 5480 for
    /// ECC, RFC 8410 for Ed25519/X25519).
    pub(crate) fn spki_der(&self) -> Vec<u8> {
        const RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
        const EC: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
        const P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
        const P384: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x22];
        let mut out = Vec::with_capacity(600);
        tlv::write_constructed(&mut out, 0x30, |spki| {
            tlv::write_constructed(spki, 0x30, |alg| match self {
                Self::Rsa(_) => {
                    tlv::write(alg, 0x06, RSA);
                    tlv::write(alg, 0x05, &[]);
                }
                Self::P256(_) => {
                    tlv::write(alg, 0x06, EC);
                    tlv::write(alg, 0x06, P256);
                }
                Self::P384(_) => {
                    tlv::write(alg, 0x06, EC);
                    tlv::write(alg, 0x06, P384);
                }
                Self::Ed25519(_) => tlv::write(alg, 0x06, &[0x2B, 0x65, 0x70]),
                Self::X25519(_) => tlv::write(alg, 0x06, &[0x2B, 0x65, 0x6E]),
            });
            tlv::write_constructed(spki, 0x03, |bits| {
                bits.push(0);
                match self {
                    Self::Rsa(key) => tlv::write_constructed(bits, 0x30, |seq| {
                        der_unsigned(seq, &key.n().to_bytes_be());
                        der_unsigned(seq, &key.e().to_bytes_be());
                    }),
                    _ => bits.extend_from_slice(&self.point()),
                }
            });
        });
        out
    }

    /// The private-key operation of GENERAL AUTHENTICATE with a challenge (`81`): raw RSA
    /// on a modulus-sized block (the client applies PKCS#1 or PSS padding; this is also
    /// RSA decryption), ECDSA over a hash (left-padded to the field size; longer input is
    /// `6A80`) answered as a DER `Ecdsa-Sig-Value`, or Ed25519 over the message.
    /// X25519 keys cannot sign: `6A80`.
    pub(crate) fn sign(&self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>, StatusWord> {
        use p256::ecdsa::signature::hazmat::PrehashSigner;
        let bad = StatusWord::INCORRECT_DATA;
        match self {
            Self::Rsa(key) => {
                let size = key.size();
                if input.len() != size {
                    return Err(bad);
                }
                let c = BigUint::from_bytes_be(input);
                if &c >= key.n() {
                    return Err(bad);
                }
                let m = raw_rsa(key, &c);
                // Check the result, as a card does against fault attacks.
                if m.modpow(key.e(), key.n()) != c {
                    return Err(StatusWord::EXECUTION_ERROR);
                }
                let bytes = Zeroizing::new(m.to_bytes_be());
                let mut out = Zeroizing::new(vec![0u8; size - bytes.len().min(size)]);
                out.extend_from_slice(&bytes);
                Ok(out)
            }
            Self::P256(k) => {
                let digest = left_pad(input, 32)?;
                let signer = p256::ecdsa::SigningKey::from(k);
                let sig: p256::ecdsa::Signature = signer.sign_prehash(&digest).map_err(|_| bad)?;
                Ok(Zeroizing::new(sig.to_der().as_bytes().to_vec()))
            }
            Self::P384(k) => {
                let digest = left_pad(input, 48)?;
                let signer = p384::ecdsa::SigningKey::from(k);
                let sig: p384::ecdsa::Signature = signer.sign_prehash(&digest).map_err(|_| bad)?;
                Ok(Zeroizing::new(sig.to_der().as_bytes().to_vec()))
            }
            Self::Ed25519(k) => {
                use ed25519_dalek::Signer;
                Ok(Zeroizing::new(k.sign(input).to_bytes().to_vec()))
            }
            Self::X25519(_) => Err(bad),
        }
    }

    /// ECDH with the peer's public point (GENERAL AUTHENTICATE with `85`, SP 800-73-4
    /// part 2 §3.2.4 and SP 800-78-4 §3.3): the X coordinate of the shared point for
    /// P-256/P-384, the X25519 output for X25519. RSA and Ed25519 keys, and points not on
    /// the curve, answer `6A80`.
    pub(crate) fn ecdh(&self, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>, StatusWord> {
        let bad = StatusWord::INCORRECT_DATA;
        match self {
            Self::P256(k) => {
                if peer.len() != 65 {
                    return Err(bad);
                }
                let public = p256::PublicKey::from_sec1_bytes(peer).map_err(|_| bad)?;
                let shared = p256::ecdh::diffie_hellman(k.to_nonzero_scalar(), public.as_affine());
                Ok(Zeroizing::new(shared.raw_secret_bytes().to_vec()))
            }
            Self::P384(k) => {
                if peer.len() != 97 {
                    return Err(bad);
                }
                let public = p384::PublicKey::from_sec1_bytes(peer).map_err(|_| bad)?;
                let shared = p384::ecdh::diffie_hellman(k.to_nonzero_scalar(), public.as_affine());
                Ok(Zeroizing::new(shared.raw_secret_bytes().to_vec()))
            }
            Self::X25519(k) => {
                let point: [u8; 32] = peer.try_into().map_err(|_| bad)?;
                let shared = k.diffie_hellman(&x25519_dalek::PublicKey::from(point));
                if !shared.was_contributory() {
                    return Err(bad);
                }
                Ok(Zeroizing::new(shared.as_bytes().to_vec()))
            }
            Self::Rsa(_) | Self::Ed25519(_) => Err(bad),
        }
    }
}

/// The RSA private-key operation `c^d mod n` with the CRT (RFC 8017 §5.1.2 step 2b).
/// Not constant-time: this card is a test double, not a secure element.
fn raw_rsa(key: &rsa::RsaPrivateKey, c: &BigUint) -> BigUint {
    use rsa::traits::PrivateKeyParts;
    match (key.primes(), key.dp(), key.dq(), key.crt_coefficient()) {
        ([p, q], Some(dp), Some(dq), Some(qinv)) => {
            let m1 = c.modpow(dp, p);
            let m2 = c.modpow(dq, q);
            // h = qinv · (m1 − m2) mod p
            let diff = if m1 >= m2 { &m1 - &m2 } else { p - ((&m2 - &m1) % p) };
            let h = (&qinv * diff) % p;
            m2 + h * q
        }
        _ => c.modpow(key.d(), key.n()),
    }
}

/// `input` left-padded with zeros to `len` bytes; longer input is `6A80`, as is an empty
/// one.
fn left_pad(input: &[u8], len: usize) -> Result<Zeroizing<Vec<u8>>, StatusWord> {
    if input.is_empty() || input.len() > len {
        return Err(StatusWord::INCORRECT_DATA);
    }
    let mut out = Zeroizing::new(vec![0u8; len - input.len()]);
    out.extend_from_slice(input);
    Ok(out)
}

/// Appends a DER INTEGER holding the unsigned big-endian `value` (X.690 §8.3).
pub(crate) fn der_unsigned(out: &mut Vec<u8>, value: &[u8]) {
    let start = value.iter().position(|&b| b != 0).unwrap_or(value.len().saturating_sub(1));
    let value = value.get(start..).unwrap_or_default();
    let pad = value.first().is_none_or(|b| b & 0x80 != 0);
    tlv::write_header(out, 0x02, value.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(value);
}
