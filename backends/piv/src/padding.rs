//! RSA signature encodings (RFC 8017 §9) for the card's raw RSA operation: PIV cards
//! exponentiate a modulus-sized block, the host pads.

use keystation_core::key::HashAlgorithm;
use sha2::Digest;

use crate::error::Error;

/// DER of the DigestInfo prefix for each hash (RFC 8017 §9.2, note 1).
fn digest_info_prefix(hash: HashAlgorithm) -> Result<&'static [u8], Error> {
    Ok(match hash {
        HashAlgorithm::Sha256 => &[
            0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        HashAlgorithm::Sha384 => &[
            0x30, 0x41, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        HashAlgorithm::Sha512 => &[
            0x30, 0x51, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
        _ => return Err(unsupported_hash()),
    })
}

fn unsupported_hash() -> Error {
    Error::invalid("hash", "not SHA-256, SHA-384 or SHA-512")
}

fn check_digest(hash: HashAlgorithm, digest: &[u8]) -> Result<(), Error> {
    if digest.len() != hash.output_len() {
        return Err(Error::invalid("digest", "length differs from the hash's output"));
    }
    Ok(())
}

/// EMSA-PKCS1-v1_5 (RFC 8017 §9.2): `00 01 FF… 00 DigestInfo`, `modulus_len` bytes,
/// ready for [`PivCard::rsa_raw`](crate::PivCard::rsa_raw).
pub fn pkcs1v15_digest_info(
    hash: HashAlgorithm,
    digest: &[u8],
    modulus_len: usize,
) -> Result<Vec<u8>, Error> {
    check_digest(hash, digest)?;
    let prefix = digest_info_prefix(hash)?;
    let t_len = prefix.len() + digest.len();
    // §9.2 step 3: at least eight bytes of FF padding.
    if modulus_len < t_len + 11 {
        return Err(Error::invalid("modulus length", "too short for the DigestInfo"));
    }
    let mut em = Vec::with_capacity(modulus_len);
    em.extend_from_slice(&[0x00, 0x01]);
    em.resize(modulus_len - t_len - 1, 0xFF);
    em.push(0x00);
    em.extend_from_slice(prefix);
    em.extend_from_slice(digest);
    Ok(em)
}

fn hash_parts(hash: HashAlgorithm, parts: &[&[u8]]) -> Result<Vec<u8>, Error> {
    fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
        let mut hasher = D::new();
        for part in parts {
            hasher.update(part);
        }
        hasher.finalize().to_vec()
    }
    Ok(match hash {
        HashAlgorithm::Sha256 => run::<sha2::Sha256>(parts),
        HashAlgorithm::Sha384 => run::<sha2::Sha384>(parts),
        HashAlgorithm::Sha512 => run::<sha2::Sha512>(parts),
        _ => return Err(unsupported_hash()),
    })
}

/// MGF1 (RFC 8017 appendix B.2.1) XORed into `out`.
fn mgf1_xor(hash: HashAlgorithm, seed: &[u8], out: &mut [u8]) -> Result<(), Error> {
    for (counter, chunk) in out.chunks_mut(hash.output_len()).enumerate() {
        let c = (counter as u32).to_be_bytes();
        let mask = hash_parts(hash, &[seed, &c])?;
        for (o, m) in chunk.iter_mut().zip(mask) {
            *o ^= m;
        }
    }
    Ok(())
}

/// EMSA-PSS-ENCODE (RFC 8017 §9.1.1) with MGF1 of the same hash and a salt as long as
/// the hash (TLS 1.3's `rsa_pss_rsae_*`, RFC 8446 §4.2.3), for a modulus of exactly
/// `modulus_len` bytes (emBits = 8·modulus_len − 1). Returns `modulus_len` bytes with a
/// leading zero, ready for [`PivCard::rsa_raw`](crate::PivCard::rsa_raw).
pub fn pss_encode(
    hash: HashAlgorithm,
    digest: &[u8],
    modulus_len: usize,
    salt: &[u8],
) -> Result<Vec<u8>, Error> {
    check_digest(hash, digest)?;
    let h_len = hash.output_len();
    if salt.len() != h_len {
        return Err(Error::invalid("PSS salt", "must be as long as the hash"));
    }
    // emBits = 8k − 1 gives emLen = k; step 3: emLen ≥ hLen + sLen + 2.
    let em_len = modulus_len;
    if em_len < h_len + salt.len() + 2 {
        return Err(Error::invalid("modulus length", "too short for PSS with this hash"));
    }
    // Steps 5–6: H = Hash(00×8 || mHash || salt).
    let h = hash_parts(hash, &[&[0u8; 8], digest, salt])?;
    // Steps 7–8: DB = PS || 01 || salt.
    let db_len = em_len - h_len - 1;
    let mut em = vec![0u8; db_len];
    em[db_len - salt.len() - 1] = 0x01;
    em[db_len - salt.len()..].copy_from_slice(salt);
    // Steps 9–10: maskedDB = DB xor MGF(H).
    mgf1_xor(hash, &h, &mut em)?;
    // Step 11: clear the leftmost 8·emLen − emBits = 1 bit.
    em[0] &= 0x7F;
    // Step 12: EM = maskedDB || H || BC.
    em.extend_from_slice(&h);
    em.push(0xBC);
    Ok(em)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkcs1_layout() {
        let em = pkcs1v15_digest_info(HashAlgorithm::Sha256, &[7; 32], 256).unwrap_or_default();
        assert_eq!(em.len(), 256);
        assert_eq!(&em[..3], &[0, 1, 0xFF]);
        assert_eq!(em[256 - 32 - 19 - 1], 0);
        assert_eq!(&em[256 - 32..], &[7; 32]);
        assert!(pkcs1v15_digest_info(HashAlgorithm::Sha256, &[7; 31], 256).is_err());
        assert!(pkcs1v15_digest_info(HashAlgorithm::Sha512, &[7; 64], 90).is_err());
    }

    #[test]
    fn pss_layout() {
        let em = pss_encode(HashAlgorithm::Sha256, &[1; 32], 256, &[2; 32]).unwrap_or_default();
        assert_eq!(em.len(), 256);
        assert_eq!(em[0] & 0x80, 0);
        assert_eq!(em[255], 0xBC);
        assert!(pss_encode(HashAlgorithm::Sha256, &[1; 32], 256, &[2; 20]).is_err());
        assert!(pss_encode(HashAlgorithm::Sha512, &[1; 64], 100, &[2; 64]).is_err());
    }
}
