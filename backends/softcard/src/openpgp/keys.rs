//! Key material of the three key slots and what the card does with it: algorithm
//! attributes (OpenPGP card 3.4 §4.4.3.9), key generation and the public key template
//! `7F49` (§7.2.14), key import (§4.4.3.12), signing (§7.2.10, §7.2.13) and deciphering
//! (§7.2.11).

use keystation_core::key::{KeyAlgorithm, RsaBits};
use keystation_core::{StatusWord, tlv};
use rand_chacha::ChaCha20Rng;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Pkcs1v15Encrypt, Pkcs1v15Sign, RsaPrivateKey};
use zeroize::Zeroizing;

/// Curve OID of NIST P-256 (secp256r1), §4.4.3.9 table.
pub(super) const OID_P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
/// Curve OID of NIST P-384 (secp384r1).
pub(super) const OID_P384: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x22];
/// Curve OID of Ed25519 (gpg's 1.3.6.1.4.1.11591.15.1).
pub(super) const OID_ED25519: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0xDA, 0x47, 0x0F, 0x01];
/// Curve OID of Curve25519 for ECDH (gpg's 1.3.6.1.4.1.3029.1.5.1).
pub(super) const OID_X25519: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01];

/// Algorithm ID of RSA (RFC 4880 §9.1).
pub(super) const ALGO_RSA: u8 = 0x01;
/// Algorithm ID of ECDH (RFC 6637).
pub(super) const ALGO_ECDH: u8 = 0x12;
/// Algorithm ID of ECDSA (RFC 6637).
pub(super) const ALGO_ECDSA: u8 = 0x13;
/// Algorithm ID of EdDSA (draft-koch-eddsa-for-openpgp).
pub(super) const ALGO_EDDSA: u8 = 0x16;

/// Length in bits of the public exponent YubiKeys announce (65537 needs 17 bits).
pub(super) const RSA_E_BITS: u16 = 17;

/// The three key slots (key references 1, 2, 3 of §7.2.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// Signature key (C1, C7, CE, CRT B6).
    Sig,
    /// Decryption key (C2, C8, CF, CRT B8).
    Dec,
    /// Authentication key (C3, C9, D0, CRT A4).
    Aut,
}

impl Role {
    /// Index into the slot array.
    pub(super) const fn index(self) -> usize {
        match self {
            Self::Sig => 0,
            Self::Dec => 1,
            Self::Aut => 2,
        }
    }

    /// The slot a control reference template tag (`B6`, `B8`, `A4`) names (§7.2.14).
    pub(super) fn from_crt(tag: u32) -> Option<Self> {
        match tag {
            0xB6 => Some(Self::Sig),
            0xB8 => Some(Self::Dec),
            0xA4 => Some(Self::Aut),
            _ => None,
        }
    }
}

/// Encodes RSA algorithm attributes: ID, modulus bits, exponent bits, import format
/// (§4.4.3.9).
pub(super) fn rsa_attributes(bits: u16) -> Vec<u8> {
    let [nh, nl] = bits.to_be_bytes();
    let [eh, el] = RSA_E_BITS.to_be_bytes();
    vec![ALGO_RSA, nh, nl, eh, el, 0x00]
}

/// Encodes ECC algorithm attributes: ID and curve OID (§4.4.3.9).
pub(super) fn ecc_attributes(id: u8, oid: &[u8]) -> Vec<u8> {
    let mut out = vec![id];
    out.extend_from_slice(oid);
    out
}

/// Validates algorithm attributes written with PUT DATA C1–C3 (§4.4.3.9) and returns the
/// algorithm they select. RSA 2048/3072/4096 with a public exponent of 17 to 32 bits;
/// ECDSA on P-256/P-384 and EdDSA on Ed25519 for signature and authentication keys;
/// ECDH on P-256/P-384 and X25519 for the decryption key. An optional trailing `FF`
/// (import format with public key) is accepted on ECC attributes.
pub(super) fn parse_attributes(role: Role, attributes: &[u8]) -> Result<KeyAlgorithm, StatusWord> {
    let bad = StatusWord::INCORRECT_DATA;
    let (&id, rest) = attributes.split_first().ok_or(bad)?;
    if id == ALGO_RSA {
        let [nh, nl, eh, el, format @ ..] = rest else { return Err(bad) };
        let bits = RsaBits::from_bits(u16::from_be_bytes([*nh, *nl])).ok_or(bad)?;
        let e_bits = u16::from_be_bytes([*eh, *el]);
        if !(RSA_E_BITS..=32).contains(&e_bits) || !matches!(format, [] | [0..=3]) {
            return Err(bad);
        }
        return Ok(KeyAlgorithm::Rsa(bits));
    }
    let oid = rest.strip_suffix(&[0xFF]).unwrap_or(rest);
    let algorithm = match oid {
        OID_P256 => KeyAlgorithm::NistP256,
        OID_P384 => KeyAlgorithm::NistP384,
        OID_ED25519 => KeyAlgorithm::Ed25519,
        OID_X25519 => KeyAlgorithm::X25519,
        _ => return Err(bad),
    };
    let allowed = matches!(
        (role, id, algorithm),
        (
            Role::Dec,
            ALGO_ECDH,
            KeyAlgorithm::NistP256 | KeyAlgorithm::NistP384 | KeyAlgorithm::X25519
        ) | (Role::Sig | Role::Aut, ALGO_ECDSA, KeyAlgorithm::NistP256 | KeyAlgorithm::NistP384)
            | (Role::Sig | Role::Aut, ALGO_EDDSA, KeyAlgorithm::Ed25519)
            // ykman 4 writes X25519 with the EdDSA ID, and firmware before 5.6.1 takes it.
            | (Role::Dec, ALGO_EDDSA, KeyAlgorithm::X25519)
    );
    if allowed { Ok(algorithm) } else { Err(bad) }
}

/// A private key held in a slot. Every variant zeroizes its secret when dropped (the
/// RustCrypto and dalek types do so themselves).
pub(super) enum PrivateKey {
    /// RSA in CRT form.
    Rsa(Box<RsaPrivateKey>),
    /// NIST P-256 scalar.
    P256(p256::SecretKey),
    /// NIST P-384 scalar.
    P384(p384::SecretKey),
    /// Ed25519 seed.
    Ed25519(Box<ed25519_dalek::SigningKey>),
    /// X25519 scalar (RFC 7748 byte order).
    X25519(Box<x25519_dalek::StaticSecret>),
}

impl core::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PrivateKey::{}([redacted])", self.algorithm())
    }
}

impl Clone for PrivateKey {
    fn clone(&self) -> Self {
        match self {
            Self::Rsa(k) => Self::Rsa(k.clone()),
            Self::P256(k) => Self::P256(k.clone()),
            Self::P384(k) => Self::P384(k.clone()),
            Self::Ed25519(k) => Self::Ed25519(k.clone()),
            Self::X25519(k) => Self::X25519(k.clone()),
        }
    }
}

impl PrivateKey {
    /// Generates a key of `algorithm` (§7.2.14, P1 = 80).
    pub(super) fn generate(
        algorithm: KeyAlgorithm,
        rng: &mut ChaCha20Rng,
    ) -> Result<Self, StatusWord> {
        Ok(match algorithm {
            KeyAlgorithm::Rsa(bits) => {
                let key = RsaPrivateKey::new(rng, usize::from(bits.bits()))
                    .map_err(|_| StatusWord::EXECUTION_ERROR)?;
                Self::Rsa(Box::new(key))
            }
            KeyAlgorithm::NistP256 => Self::P256(p256::SecretKey::random(rng)),
            KeyAlgorithm::NistP384 => Self::P384(p384::SecretKey::random(rng)),
            KeyAlgorithm::Ed25519 => {
                Self::Ed25519(Box::new(ed25519_dalek::SigningKey::generate(rng)))
            }
            KeyAlgorithm::X25519 => {
                Self::X25519(Box::new(x25519_dalek::StaticSecret::random_from_rng(rng)))
            }
            _ => return Err(StatusWord::FUNCTION_NOT_SUPPORTED),
        })
    }

    /// The key's algorithm.
    pub(super) fn algorithm(&self) -> KeyAlgorithm {
        match self {
            Self::Rsa(k) => {
                let bits = u16::try_from(k.size() * 8).unwrap_or(0);
                RsaBits::from_bits(bits)
                    .map_or(KeyAlgorithm::Rsa(RsaBits::Rsa2048), KeyAlgorithm::Rsa)
            }
            Self::P256(_) => KeyAlgorithm::NistP256,
            Self::P384(_) => KeyAlgorithm::NistP384,
            Self::Ed25519(_) => KeyAlgorithm::Ed25519,
            Self::X25519(_) => KeyAlgorithm::X25519,
        }
    }

    /// The public key template `7F49` (§7.2.14): modulus `81` and exponent `82` for RSA,
    /// the point `86` for ECC (`04 || X || Y` on NIST curves, 32 raw bytes for
    /// Ed25519/X25519).
    pub(super) fn public_key_template(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(600);
        tlv::write_constructed(&mut out, 0x7F49, |out| match self {
            Self::Rsa(k) => {
                tlv::write(out, 0x81, &k.n().to_bytes_be());
                tlv::write(out, 0x82, &k.e().to_bytes_be());
            }
            Self::P256(k) => {
                let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(
                    &k.public_key(),
                    false,
                );
                tlv::write(out, 0x86, point.as_bytes());
            }
            Self::P384(k) => {
                let point = p384::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(
                    &k.public_key(),
                    false,
                );
                tlv::write(out, 0x86, point.as_bytes());
            }
            Self::Ed25519(k) => tlv::write(out, 0x86, k.verifying_key().as_bytes()),
            Self::X25519(k) => {
                tlv::write(out, 0x86, x25519_dalek::PublicKey::from(k.as_ref()).as_bytes());
            }
        });
        out
    }

    /// Imports a key from the parts of an extended header list (§4.4.3.12): for RSA the
    /// public exponent `91` and primes `92`, `93`; for ECC the private scalar `92` (an
    /// X25519 scalar big-endian, as OpenPGP stores it) and optionally the public key `99`,
    /// which must match.
    pub(super) fn import(
        algorithm: KeyAlgorithm,
        parts: &[(u32, &[u8])],
    ) -> Result<Self, StatusWord> {
        let bad = StatusWord::INCORRECT_DATA;
        let part = |tag: u32| parts.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v);
        let key = match algorithm {
            KeyAlgorithm::Rsa(bits) => {
                let (e, p, q) = (part(0x91), part(0x92), part(0x93));
                let (Some(e), Some(p), Some(q)) = (e, p, q) else { return Err(bad) };
                let (e, p, q) = (
                    BigUint::from_bytes_be(e),
                    BigUint::from_bytes_be(p),
                    BigUint::from_bytes_be(q),
                );
                // Both primes are odd with at most half the modulus' bits (its size is
                // checked below) and e is odd with at most 32 bits: checked before the
                // arithmetic, which would underflow on a zero prime.
                let half = usize::from(bits.bits() / 2);
                let odd = |n: &BigUint| {
                    n.bits() > 1 && n.to_bytes_be().last().is_some_and(|b| b & 1 == 1)
                };
                if p.bits() > half || q.bits() > half || !odd(&p) || !odd(&q) {
                    return Err(bad);
                }
                if e.bits() > 32 || !odd(&e) {
                    return Err(bad);
                }
                let key = RsaPrivateKey::from_p_q(p, q, e).map_err(|_| bad)?;
                if key.n().bits() != usize::from(bits.bits()) {
                    return Err(bad);
                }
                Self::Rsa(Box::new(key))
            }
            KeyAlgorithm::NistP256 => {
                let scalar = left_pad::<32>(part(0x92).ok_or(bad)?)?;
                Self::P256(p256::SecretKey::from_bytes((&*scalar).into()).map_err(|_| bad)?)
            }
            KeyAlgorithm::NistP384 => {
                let scalar = left_pad::<48>(part(0x92).ok_or(bad)?)?;
                Self::P384(p384::SecretKey::from_bytes((&*scalar).into()).map_err(|_| bad)?)
            }
            KeyAlgorithm::Ed25519 => {
                let seed = left_pad::<32>(part(0x92).ok_or(bad)?)?;
                Self::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(&seed)))
            }
            KeyAlgorithm::X25519 => {
                let mut scalar = left_pad::<32>(part(0x92).ok_or(bad)?)?;
                scalar.reverse();
                Self::X25519(Box::new(x25519_dalek::StaticSecret::from(*scalar)))
            }
            _ => return Err(StatusWord::FUNCTION_NOT_SUPPORTED),
        };
        if let Some(public) = part(0x99) {
            let template = key.public_key_template();
            let point = tlv::find_nested(&template, 0x86).ok().flatten();
            if point != Some(public) {
                return Err(bad);
            }
        }
        Ok(key)
    }

    /// Signs `data` as PSO:COMPUTE DIGITAL SIGNATURE (§7.2.10) and INTERNAL AUTHENTICATE
    /// (§7.2.13) do: RSA pads the given DigestInfo (or authentication input) with
    /// PKCS#1 v1.5 type 1 without hashing it; ECDSA signs the given hash and answers
    /// `r || s`; EdDSA signs the given message.
    pub(super) fn sign(
        &self,
        data: &[u8],
        rng: &mut ChaCha20Rng,
    ) -> Result<Zeroizing<Vec<u8>>, StatusWord> {
        use p256::ecdsa::signature::hazmat::PrehashSigner;
        let bad = StatusWord::INCORRECT_DATA;
        if data.is_empty() && !matches!(self, Self::Ed25519(_)) {
            return Err(StatusWord::WRONG_LENGTH);
        }
        let signature = match self {
            Self::Rsa(k) => {
                // The input may be at most 40 % of the modulus (§7.2.10, §7.2.13).
                if data.len() * 10 > k.size() * 4 {
                    return Err(bad);
                }
                k.sign_with_rng(rng, Pkcs1v15Sign::new_unprefixed(), data).map_err(|_| bad)?
            }
            Self::P256(k) => {
                let signer = p256::ecdsa::SigningKey::from(k);
                let signature: p256::ecdsa::Signature =
                    signer.sign_prehash(data).map_err(|_| bad)?;
                signature.to_bytes().to_vec()
            }
            Self::P384(k) => {
                let signer = p384::ecdsa::SigningKey::from(k);
                let signature: p384::ecdsa::Signature =
                    signer.sign_prehash(data).map_err(|_| bad)?;
                signature.to_bytes().to_vec()
            }
            Self::Ed25519(k) => {
                use ed25519_dalek::Signer;
                k.sign(data).to_bytes().to_vec()
            }
            Self::X25519(_) => return Err(StatusWord::CONDITIONS_NOT_SATISFIED),
        };
        Ok(Zeroizing::new(signature))
    }

    /// PSO:DECIPHER (§7.2.11): RSA takes the padding indicator `00` and the cryptogram
    /// and answers the PKCS#1 v1.5 plaintext; ECDH takes `A6 { 7F49 { 86 point } }` and
    /// answers the shared secret (the X coordinate on NIST curves, the X25519 output).
    pub(super) fn decipher(
        &self,
        data: &[u8],
        rng: &mut ChaCha20Rng,
    ) -> Result<Zeroizing<Vec<u8>>, StatusWord> {
        let bad = StatusWord::INCORRECT_DATA;
        if let Self::Rsa(k) = self {
            let [0x00, cryptogram @ ..] = data else { return Err(bad) };
            // A cryptogram with its leading zero bytes dropped is shorter than the modulus.
            if cryptogram.is_empty() || cryptogram.len() > k.size() {
                return Err(StatusWord::WRONG_LENGTH);
            }
            let plain = k.decrypt_blinded(rng, Pkcs1v15Encrypt, cryptogram).map_err(|_| bad)?;
            return Ok(Zeroizing::new(plain));
        }
        let point = ecdh_point(data).ok_or(bad)?;
        let secret = match self {
            Self::P256(k) => {
                let public = p256::PublicKey::from_sec1_bytes(point).map_err(|_| bad)?;
                let shared = p256::ecdh::diffie_hellman(k.to_nonzero_scalar(), public.as_affine());
                shared.raw_secret_bytes().to_vec()
            }
            Self::P384(k) => {
                let public = p384::PublicKey::from_sec1_bytes(point).map_err(|_| bad)?;
                let shared = p384::ecdh::diffie_hellman(k.to_nonzero_scalar(), public.as_affine());
                shared.raw_secret_bytes().to_vec()
            }
            Self::X25519(k) => {
                // gpg may keep the 0x40 prefix of its native point encoding.
                let point = match point {
                    [0x40, rest @ ..] if rest.len() == 32 => rest,
                    other => other,
                };
                let point: [u8; 32] = point.try_into().map_err(|_| bad)?;
                let shared = k.diffie_hellman(&x25519_dalek::PublicKey::from(point));
                shared.as_bytes().to_vec()
            }
            Self::Ed25519(_) | Self::Rsa(_) => return Err(StatusWord::CONDITIONS_NOT_SATISFIED),
        };
        Ok(Zeroizing::new(secret))
    }
}

/// The point of `A6 { 7F49 { 86 point } }` (§7.2.11).
fn ecdh_point(data: &[u8]) -> Option<&[u8]> {
    let a6 = tlv::find(data, 0xA6).ok()??;
    let template = tlv::find(a6, 0x7F49).ok()??;
    tlv::find(template, 0x86).ok()?
}

/// A big-endian integer left-padded with zeros to `N` bytes; longer input is refused
/// unless its excess bytes are zero.
fn left_pad<const N: usize>(value: &[u8]) -> Result<Zeroizing<[u8; N]>, StatusWord> {
    let mut value = value;
    while value.len() > N {
        match value.split_first() {
            Some((0, rest)) => value = rest,
            _ => return Err(StatusWord::INCORRECT_DATA),
        }
    }
    let mut out = Zeroizing::new([0u8; N]);
    out[N - value.len()..].copy_from_slice(value);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_validated_per_slot() {
        assert_eq!(
            parse_attributes(Role::Sig, &rsa_attributes(4096)),
            Ok(KeyAlgorithm::Rsa(RsaBits::Rsa4096))
        );
        assert!(parse_attributes(Role::Sig, &[1, 0x04, 0x00, 0, 0x11, 0]).is_err());
        assert!(parse_attributes(Role::Sig, &[1, 0x08, 0x00, 0, 0x20, 0]).is_ok());
        assert!(parse_attributes(Role::Sig, &[1, 0x08, 0x00, 0, 0x10, 0]).is_err());
        assert!(parse_attributes(Role::Sig, &ecc_attributes(ALGO_EDDSA, OID_ED25519)).is_ok());
        assert!(parse_attributes(Role::Dec, &ecc_attributes(ALGO_EDDSA, OID_ED25519)).is_err());
        assert!(parse_attributes(Role::Dec, &ecc_attributes(ALGO_ECDH, OID_X25519)).is_ok());
        assert!(parse_attributes(Role::Sig, &ecc_attributes(ALGO_ECDH, OID_X25519)).is_err());
        let mut with_ff = ecc_attributes(ALGO_ECDSA, OID_P384);
        with_ff.push(0xFF);
        assert_eq!(parse_attributes(Role::Aut, &with_ff), Ok(KeyAlgorithm::NistP384));
        assert!(parse_attributes(Role::Aut, &[]).is_err());
        assert!(parse_attributes(Role::Aut, &[0x13, 1, 2]).is_err());
    }

    #[test]
    fn rsa_import_refuses_degenerate_numbers_without_panicking() {
        let rsa2048 = KeyAlgorithm::Rsa(RsaBits::Rsa2048);
        let half = [0xFFu8; 128];
        let cases: [[&[u8]; 3]; 6] = [
            [&[1, 0, 1], &[], &[]],
            [&[1, 0, 1], &[0], &half],
            [&[1, 0, 1], &[1], &half],
            [&[0], &half, &half],
            [&[2], &half, &half],
            [&[1, 0, 1], &half, &half],
        ];
        for [e, p, q] in cases {
            let parts = [(0x91, e), (0x92, p), (0x93, q)];
            assert!(PrivateKey::import(rsa2048, &parts).is_err());
        }
    }

    #[test]
    fn left_pad_accepts_short_and_zero_prefixed_scalars() {
        assert_eq!(left_pad::<4>(&[1, 2]).map(|v| *v), Ok([0, 0, 1, 2]));
        assert_eq!(left_pad::<2>(&[0, 1, 2]).map(|v| *v), Ok([1, 2]));
        assert!(left_pad::<2>(&[1, 1, 2]).is_err());
    }
}
