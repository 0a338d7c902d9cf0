//! Key encodings between the card and keystation-core: the public key template `7F49`
//! (OpenPGP card 3.4.1 §7.2.14), the extended header list for key import (§4.4.3.12),
//! the DigestInfo of PSO:CDS (§7.2.10) and the DER form of ECDSA signatures.

use keystation_core::key::{HashAlgorithm, KeyAlgorithm, PublicKey};
use keystation_core::keygen::OpenPgpKeySlot;
use keystation_core::{SecretKey, tlv};
use zeroize::Zeroizing;

use crate::data::KeyAttributes;
use crate::error::Error;

fn malformed(reason: &'static str) -> Error {
    Error::malformed("public key template", 0x7F49, reason)
}

/// Parses a public key template `7F49` (§7.2.14) — the whole object or its contents —
/// into a [`PublicKey`] of `algorithm` (which the slot's attributes give): modulus `81`
/// and exponent `82` for RSA, the point `86` for ECC (`04 || X || Y` on NIST curves; 32
/// bytes for Ed25519 and X25519, where a leading `40` is also accepted).
pub fn parse_public_key_template(
    bytes: &[u8],
    algorithm: KeyAlgorithm,
) -> Result<PublicKey, Error> {
    let mut body = bytes;
    if let Some(Ok(first)) = tlv::parse(bytes).next()
        && first.tag().0 == 0x7F49
    {
        body = first.value();
    }
    let find = |tag: u32| tlv::find(body, tag).map_err(|_| malformed("broken BER-TLV"));
    match algorithm {
        KeyAlgorithm::Rsa(_) => {
            let n = find(0x81)?.ok_or_else(|| malformed("no modulus (81)"))?;
            let e = find(0x82)?.ok_or_else(|| malformed("no exponent (82)"))?;
            let key = PublicKey::rsa(n, e)?;
            if key.algorithm() != algorithm {
                return Err(malformed("modulus size differs from the key attributes"));
            }
            Ok(key)
        }
        _ => {
            let mut point = find(0x86)?.ok_or_else(|| malformed("no public point (86)"))?;
            if matches!(algorithm, KeyAlgorithm::Ed25519 | KeyAlgorithm::X25519)
                && point.len() == 33
                && point[0] == 0x40
            {
                point = &point[1..];
            }
            Ok(PublicKey::from_point(algorithm, point)?)
        }
    }
}

/// The DER prefix of a PKCS#1 DigestInfo (RFC 8017 §9.2, note 1) for `hash`.
pub fn digest_info_prefix(hash: HashAlgorithm) -> &'static [u8] {
    const SHA256: &[u8] = &[
        0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    const SHA384: &[u8] = &[
        0x30, 0x41, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02,
        0x05, 0x00, 0x04, 0x30,
    ];
    const SHA512: &[u8] = &[
        0x30, 0x51, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03,
        0x05, 0x00, 0x04, 0x40,
    ];
    match hash {
        HashAlgorithm::Sha256 => SHA256,
        HashAlgorithm::Sha384 => SHA384,
        // `HashAlgorithm` is non-exhaustive; SHA-512 is the last one keystation knows.
        _ => SHA512,
    }
}

/// Converts an ECDSA signature as cards return it (`r || s`, each the field size) into
/// DER `Ecdsa-Sig-Value` (RFC 3279 §2.2.3). `None` for odd or empty input.
pub fn ecdsa_signature_to_der(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return None;
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut body = Vec::with_capacity(raw.len() + 8);
    der_unsigned(&mut body, r);
    der_unsigned(&mut body, s);
    let mut out = Vec::with_capacity(body.len() + 4);
    tlv::write(&mut out, 0x30, &body);
    Some(out)
}

/// A DER INTEGER holding a non-negative big-endian number (X.690 §8.3).
fn der_unsigned(out: &mut Vec<u8>, value: &[u8]) {
    let start = value.iter().position(|&b| b != 0).unwrap_or(value.len());
    let value = &value[start..];
    let pad = value.first().is_none_or(|b| b & 0x80 != 0);
    tlv::write_header(out, 0x02, value.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(value);
}

/// The keystation algorithm of a private key, from its parts.
pub(crate) fn secret_key_algorithm(key: &SecretKey) -> Option<KeyAlgorithm> {
    use keystation_core::key::RsaBits;
    Some(match key {
        SecretKey::Rsa { p, q, .. } => {
            let bytes = trimmed(p.expose()).len() + trimmed(q.expose()).len();
            KeyAlgorithm::Rsa(RsaBits::from_bits(u16::try_from(bytes * 8).ok()?)?)
        }
        SecretKey::NistP256(_) => KeyAlgorithm::NistP256,
        SecretKey::NistP384(_) => KeyAlgorithm::NistP384,
        SecretKey::Ed25519(_) => KeyAlgorithm::Ed25519,
        SecretKey::X25519(_) => KeyAlgorithm::X25519,
        _ => return None,
    })
}

fn trimmed(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// `value` left-padded with zeros to `len` bytes (leading zeros removed first); `None`
/// if it does not fit.
fn padded(value: &[u8], len: usize) -> Option<Zeroizing<Vec<u8>>> {
    let value = trimmed(value);
    let mut out = Zeroizing::new(vec![0u8; len]);
    let start = len.checked_sub(value.len())?;
    out[start..].copy_from_slice(value);
    Some(out)
}

/// Builds the data of PUT DATA `DB 3FFF` (§4.4.3.12): the extended header list `4D` with
/// the slot's control reference template, the private key template `7F48` (tags and
/// lengths) and the concatenated values `5F48`.
///
/// RSA is sent as `91` e, `92` p, `93` q (import format `00`), plus `94` q⁻¹ mod p, `95`
/// d mod (p−1), `96` d mod (q−1) for the CRT format `02`; the primes are padded to half
/// the modulus and e to the attributes' exponent length. ECC is sent as `92` the private
/// scalar (X25519 big-endian, as OpenPGP stores it). The buffer is zeroized on drop and
/// never reallocated while it holds key material.
pub fn import_template(
    slot: OpenPgpKeySlot,
    key: &SecretKey,
    attributes: &KeyAttributes,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let too_big = |what| Error::InvalidInput { what, reason: "longer than the key size" };
    let mut parts: Vec<(u8, Zeroizing<Vec<u8>>)> = Vec::with_capacity(6);
    match (key, attributes) {
        (
            SecretKey::Rsa { e, p, q, dp, dq, qinv },
            KeyAttributes::Rsa { modulus_bits, exponent_bits, import_format },
        ) => {
            let half = usize::from(*modulus_bits / 16);
            let e_len = usize::from(exponent_bits.div_ceil(8)).max(trimmed(e).len());
            parts.push((0x91, padded(e, e_len).ok_or(too_big("RSA exponent"))?));
            parts.push((0x92, padded(p.expose(), half).ok_or(too_big("RSA prime p"))?));
            parts.push((0x93, padded(q.expose(), half).ok_or(too_big("RSA prime q"))?));
            match import_format {
                0 => {}
                2 => {
                    parts.push((0x94, padded(qinv.expose(), half).ok_or(too_big("RSA q⁻¹"))?));
                    parts.push((0x95, padded(dp.expose(), half).ok_or(too_big("RSA dP"))?));
                    parts.push((0x96, padded(dq.expose(), half).ok_or(too_big("RSA dQ"))?));
                }
                _ => return Err(Error::UnsupportedFeature("RSA import formats with the modulus")),
            }
        }
        (SecretKey::NistP256(d), KeyAttributes::Ecc { .. }) => {
            parts.push((0x92, padded(d.expose(), 32).ok_or(too_big("P-256 scalar"))?));
        }
        (SecretKey::NistP384(d), KeyAttributes::Ecc { .. }) => {
            parts.push((0x92, padded(d.expose(), 48).ok_or(too_big("P-384 scalar"))?));
        }
        (SecretKey::Ed25519(seed), KeyAttributes::Ecc { .. }) => {
            parts.push((0x92, padded(seed.expose(), 32).ok_or(too_big("Ed25519 seed"))?));
        }
        (SecretKey::X25519(scalar), KeyAttributes::Ecc { .. }) => {
            // RFC 7748 keeps the scalar little-endian; OpenPGP (and the card) big-endian.
            if scalar.len() != 32 {
                return Err(Error::InvalidInput { what: "X25519 scalar", reason: "not 32 bytes" });
            }
            let mut reversed = Zeroizing::new(scalar.expose().to_vec());
            reversed.reverse();
            parts.push((0x92, reversed));
        }
        _ => {
            return Err(Error::InvalidInput {
                what: "private key",
                reason: "does not match the slot's algorithm attributes",
            });
        }
    }

    let mut header = Vec::with_capacity(24);
    for (tag, value) in &parts {
        tlv::write_header(&mut header, u32::from(*tag), value.len());
    }
    let values_len: usize = parts.iter().map(|(_, v)| v.len()).sum();
    let crt = [slot.crt_tag(), 0x00];
    let mut inner_len = crt.len() + header_len(0x7F48, header.len()) + header.len();
    inner_len += header_len(0x5F48, values_len) + values_len;
    let total = header_len(0x4D, inner_len) + inner_len;

    let mut out = Zeroizing::new(Vec::with_capacity(total));
    tlv::write_header(&mut out, 0x4D, inner_len);
    out.extend_from_slice(&crt);
    tlv::write_header(&mut out, 0x7F48, header.len());
    out.extend_from_slice(&header);
    tlv::write_header(&mut out, 0x5F48, values_len);
    for (_, value) in &parts {
        out.extend_from_slice(value);
    }
    debug_assert_eq!(out.len(), total);
    Ok(out)
}

/// Length of a tag and length field for a value of `len` bytes.
fn header_len(tag: u32, len: usize) -> usize {
    let mut scratch = Vec::with_capacity(8);
    tlv::write_header(&mut scratch, tag, len);
    scratch.len()
}
