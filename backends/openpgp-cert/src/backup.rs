//! Passphrase-protected backup of host-generated secret keys as an OpenPGP Transferable
//! Secret Key (RFC 4880 §11.2), which `gpg --import` accepts with the passphrase.
//!
//! Each key packet of the certificate becomes a Secret-Key (5) or Secret-Subkey (7)
//! packet (§5.5.3): the public fields, S2K usage 254, AES-256 (§9.2), an iterated and
//! salted SHA-256 S2K (§3.7.1.3), a random IV, and the secret MPIs followed by their
//! SHA-1 hash, encrypted in CFB mode (§13.9 without the resynchronisation step, as §5.5.3
//! prescribes for secret keys). The User ID and the signatures are the certificate's.

use aes::cipher::{BlockEncrypt, KeyInit};
use keystation_core::keygen::RandomSource;
use keystation_core::{SecretBytes, SecretKey};
use rsa::BigUint;
use rsa::traits::PrivateKeyParts;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::CertError;
use crate::armor::{ArmorKind, armor};
use crate::cert::{Certificate, KeyRole};
use crate::packet::{parse_packets, tag, write_mpi, write_packet};

/// S2K usage octet: the secret is encrypted and checked with SHA-1 (§5.5.3).
const S2K_USAGE_SHA1: u8 = 254;
/// AES with a 256-bit key (§9.2).
const SYM_AES256: u8 = 9;
/// S2K specifier: iterated and salted (§3.7.1.3).
const S2K_ITERATED_SALTED: u8 = 3;
/// SHA-256 (§9.4).
const HASH_SHA256: u8 = 8;

/// How much work the S2K does: the coded count octet of §3.7.1.3.
///
/// `0xF0` (the default) hashes 33,554,432 octets per derivation, in the range gpg
/// calibrates to on current machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct S2kCount(pub u8);

impl Default for S2kCount {
    fn default() -> Self {
        Self(0xF0)
    }
}

impl S2kCount {
    /// The number of octets hashed: `(16 + (c & 15)) << ((c >> 4) + 6)`.
    pub fn octets(self) -> usize {
        (16 + usize::from(self.0 & 15)) << ((self.0 >> 4) + 6)
    }
}

/// The secret keys of a certificate, in the certificate's order.
#[derive(Debug)]
pub struct SecretKeys<'a> {
    /// The primary (signature) key.
    pub primary: &'a SecretKey,
    /// The encryption subkey.
    pub encryption: &'a SecretKey,
    /// The authentication subkey.
    pub authentication: &'a SecretKey,
}

impl Certificate {
    /// The certificate with its secret keys, each protected with `passphrase`, as an
    /// armored Transferable Secret Key (`-----BEGIN PGP PRIVATE KEY BLOCK-----`).
    ///
    /// The secrets must belong to the certificate's keys (checked only as far as the
    /// kind of key; a mismatch makes a backup gpg rejects). Salts and IVs come from
    /// `rng`. The result is secret-equivalent for anyone with the passphrase: keystation
    /// never writes it to disk itself.
    pub fn secret_backup(
        &self,
        secrets: &SecretKeys<'_>,
        passphrase: &[u8],
        count: S2kCount,
        rng: &mut dyn RandomSource,
    ) -> Result<Zeroizing<String>, CertError> {
        let packets = parse_packets(self.to_bytes())?;
        let mut out = Zeroizing::new(Vec::with_capacity(self.to_bytes().len() + 2048));
        let mut subkeys = [
            (secrets.encryption, self.encryption().role),
            (secrets.authentication, self.authentication().role),
        ]
        .into_iter();
        for packet in packets {
            match packet.tag {
                tag::PUBLIC_KEY => {
                    let body = secret_body(
                        packet.body,
                        secrets.primary,
                        KeyRole::Primary,
                        passphrase,
                        count,
                        rng,
                    )?;
                    write_packet(&mut out, tag::SECRET_KEY, &body);
                }
                tag::PUBLIC_SUBKEY => {
                    let (secret, role) = subkeys.next().ok_or(CertError::SecretKeyMismatch)?;
                    let body = secret_body(packet.body, secret, role, passphrase, count, rng)?;
                    write_packet(&mut out, tag::SECRET_SUBKEY, &body);
                }
                other => write_packet(&mut out, other, packet.body),
            }
        }
        Ok(Zeroizing::new(armor(ArmorKind::PrivateKey, &out)))
    }
}

/// A Secret-Key packet body: the public key body, then the protected secret (§5.5.3).
fn secret_body(
    public_body: &[u8],
    secret: &SecretKey,
    role: KeyRole,
    passphrase: &[u8],
    count: S2kCount,
    rng: &mut dyn RandomSource,
) -> Result<Vec<u8>, CertError> {
    // The public-key algorithm octet follows the version and the creation time.
    let algo = *public_body.get(5).ok_or(CertError::SecretKeyMismatch)?;
    let mut plain = secret_mpis(secret, algo, role)?;
    let check = Sha1::digest(plain.as_slice());
    plain.extend_from_slice(&check);

    let mut salt = [0u8; 8];
    let mut iv = [0u8; 16];
    rng.fill(&mut salt).map_err(CertError::Random)?;
    rng.fill(&mut iv).map_err(CertError::Random)?;
    let key = s2k_iterated_salted(passphrase, &salt, count);
    cfb_encrypt(&key, &iv, &mut plain);

    let mut body = public_body.to_vec();
    body.extend_from_slice(&[S2K_USAGE_SHA1, SYM_AES256, S2K_ITERATED_SALTED, HASH_SHA256]);
    body.extend_from_slice(&salt);
    body.push(count.0);
    body.extend_from_slice(&iv);
    body.extend_from_slice(&plain);
    Ok(body)
}

/// The algorithm-specific secret MPIs (§5.5.3; RFC 6637 §9; gpg's EdDSA and Curve25519
/// conventions), checked against the public key's algorithm octet.
fn secret_mpis(
    secret: &SecretKey,
    algo: u8,
    role: KeyRole,
) -> Result<Zeroizing<Vec<u8>>, CertError> {
    let mut out = Zeroizing::new(Vec::with_capacity(1100));
    let mismatch = || CertError::SecretKeyMismatch;
    match (secret, algo) {
        (SecretKey::Rsa { e, p, q, .. }, 1) => {
            // §5.5.3: d, p, q (p < q) and u = p⁻¹ mod q.
            let mut p = BigUint::from_bytes_be(p.expose());
            let mut q = BigUint::from_bytes_be(q.expose());
            if p > q {
                core::mem::swap(&mut p, &mut q);
            }
            let key = rsa::RsaPrivateKey::from_p_q(p.clone(), q.clone(), BigUint::from_bytes_be(e))
                .map_err(|_| mismatch())?;
            // q is prime, so p⁻¹ = p^(q−2) mod q (Fermat).
            let two = BigUint::from(2u8);
            let mut u = p.modpow(&(&q - &two), &q);
            for part in [key.d(), &p, &q, &u] {
                let mut bytes = Zeroizing::new(part.to_bytes_be());
                write_mpi(&mut out, &bytes);
                bytes.zeroize();
            }
            p.zeroize();
            q.zeroize();
            u.zeroize();
        }
        (SecretKey::NistP256(scalar) | SecretKey::NistP384(scalar), 18 | 19) => {
            write_mpi(&mut out, scalar.expose());
        }
        (SecretKey::Ed25519(seed), 22) => write_mpi(&mut out, seed.expose()),
        (SecretKey::X25519(scalar), 18) if role == KeyRole::Encryption => {
            // gpg stores the Curve25519 scalar as a big-endian MPI: the native
            // little-endian bytes reversed. (SecretBytes wipes the copy on drop.)
            let reversed = SecretBytes::new(scalar.expose().iter().rev().copied().collect());
            write_mpi(&mut out, reversed.expose());
        }
        _ => return Err(mismatch()),
    }
    Ok(out)
}

/// Iterated and salted S2K (§3.7.1.3) with SHA-256: hashes `salt ‖ passphrase` repeated
/// to `count` octets (at least once whole); the digest is the 32-byte AES-256 key.
fn s2k_iterated_salted(passphrase: &[u8], salt: &[u8; 8], count: S2kCount) -> Zeroizing<[u8; 32]> {
    let mut unit = Zeroizing::new(Vec::with_capacity(8 + passphrase.len()));
    unit.extend_from_slice(salt);
    unit.extend_from_slice(passphrase);
    let total = count.octets().max(unit.len());
    let mut hasher = Sha256::new();
    let mut left = total;
    while left >= unit.len() {
        hasher.update(unit.as_slice());
        left -= unit.len();
    }
    hasher.update(&unit[..left]);
    Zeroizing::new(hasher.finalize().into())
}

/// AES-256 in plain CFB mode (NIST SP 800-38A §6.3 with a full-block segment) in place.
fn cfb_encrypt(key: &[u8; 32], iv: &[u8; 16], data: &mut [u8]) {
    let cipher = aes::Aes256::new(key.into());
    let mut feedback = aes::Block::from(*iv);
    for chunk in data.chunks_mut(16) {
        cipher.encrypt_block(&mut feedback);
        for (byte, ks) in chunk.iter_mut().zip(feedback.iter()) {
            *byte ^= ks;
        }
        feedback[..chunk.len()].copy_from_slice(chunk);
    }
    feedback.zeroize();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_octet_decodes_per_rfc4880() {
        // §3.7.1.3: c = 96 → (16 + 0) << (6 + 6) = 65536.
        assert_eq!(S2kCount(96).octets(), 65_536);
        assert_eq!(S2kCount(0).octets(), 1024);
        assert_eq!(S2kCount(0xFF).octets(), 65_011_712);
    }

    #[test]
    fn s2k_hashes_exactly_count_octets() {
        let salt = [1, 2, 3, 4, 5, 6, 7, 8];
        let key = s2k_iterated_salted(b"pw", &salt, S2kCount(0));
        // 1024 octets of (salt ‖ "pw") repeated and cut.
        let stream: Vec<u8> = salt.iter().chain(b"pw").copied().cycle().take(1024).collect();
        assert_eq!(key.to_vec(), Sha256::digest(&stream).to_vec());
    }

    #[test]
    fn cfb_matches_sp800_38a_f_3_17() {
        // NIST SP 800-38A F.3.17 CFB128-AES256.Encrypt, first two blocks.
        let key: [u8; 32] = hex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
        let iv: [u8; 16] = hex("000102030405060708090a0b0c0d0e0f");
        let mut data: [u8; 32] =
            hex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51");
        cfb_encrypt(&key, &iv, &mut data);
        let expected: [u8; 32] =
            hex("dc7e84bfda79164b7ecd8486985d386039ffed143b28b1c832113c6331e5407b");
        assert_eq!(data, expected);
    }

    fn hex<const N: usize>(s: &str) -> [u8; N] {
        let mut out = [0u8; N];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap_or(0);
        }
        out
    }
}
