//! Key algorithms and public keys, with the encodings the rest of keystation hands out:
//! X.509 SubjectPublicKeyInfo (RFC 5280 §4.1.2.7, with RFC 3279, RFC 5480 and RFC 8410
//! algorithm identifiers) and OpenSSH public keys (RFC 4253 §6.6, RFC 5656 §3.1,
//! RFC 8709 §4).

use core::str::FromStr;

use crate::error::{Error, KeyFault};
use crate::tlv;

/// RSA modulus sizes keystation generates and imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum RsaBits {
    /// 2048-bit modulus.
    Rsa2048,
    /// 3072-bit modulus.
    Rsa3072,
    /// 4096-bit modulus.
    Rsa4096,
}

impl RsaBits {
    /// The modulus size in bits.
    pub const fn bits(self) -> u16 {
        match self {
            Self::Rsa2048 => 2048,
            Self::Rsa3072 => 3072,
            Self::Rsa4096 => 4096,
        }
    }

    /// The size for a modulus of `bits` bits, if keystation supports it.
    pub const fn from_bits(bits: u16) -> Option<Self> {
        match bits {
            2048 => Some(Self::Rsa2048),
            3072 => Some(Self::Rsa3072),
            4096 => Some(Self::Rsa4096),
            _ => None,
        }
    }
}

/// The asymmetric algorithms keystation puts on cards.
///
/// Names (`Display`/`FromStr`) follow gpg's `key-attr` vocabulary: `rsa2048`, `rsa3072`,
/// `rsa4096`, `nistp256`, `nistp384`, `ed25519`, `cv25519` (`x25519` is accepted too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// RSA with the given modulus size.
    Rsa(RsaBits),
    /// ECDSA/ECDH on NIST P-256 (secp256r1).
    NistP256,
    /// ECDSA/ECDH on NIST P-384 (secp384r1).
    NistP384,
    /// EdDSA on edwards25519.
    Ed25519,
    /// ECDH on Curve25519.
    X25519,
}

impl KeyAlgorithm {
    /// Every algorithm, in a stable order.
    pub const ALL: [Self; 7] = [
        Self::Rsa(RsaBits::Rsa2048),
        Self::Rsa(RsaBits::Rsa3072),
        Self::Rsa(RsaBits::Rsa4096),
        Self::NistP256,
        Self::NistP384,
        Self::Ed25519,
        Self::X25519,
    ];

    /// Whether keys of this algorithm can make signatures (X25519 only agrees keys).
    pub const fn can_sign(self) -> bool {
        !matches!(self, Self::X25519)
    }
}

impl core::fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Rsa(bits) => write!(f, "rsa{}", bits.bits()),
            Self::NistP256 => f.write_str("nistp256"),
            Self::NistP384 => f.write_str("nistp384"),
            Self::Ed25519 => f.write_str("ed25519"),
            Self::X25519 => f.write_str("cv25519"),
        }
    }
}

impl FromStr for KeyAlgorithm {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let lower = s.to_ascii_lowercase();
        if let Some(bits) = lower.strip_prefix("rsa")
            && let Some(bits) = bits.parse().ok().and_then(RsaBits::from_bits)
        {
            return Ok(Self::Rsa(bits));
        }
        match lower.as_str() {
            "nistp256" | "p256" | "p-256" | "eccp256" => Ok(Self::NistP256),
            "nistp384" | "p384" | "p-384" | "eccp384" => Ok(Self::NistP384),
            "ed25519" => Ok(Self::Ed25519),
            "cv25519" | "x25519" => Ok(Self::X25519),
            _ => Err(Error::UnknownAlgorithm(s.into())),
        }
    }
}

/// Hash functions used with signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlgorithm {
    /// Digest length in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }
}

/// A public key, validated against its algorithm.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PublicKey {
    algorithm: KeyAlgorithm,
    material: Material,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum Material {
    /// Modulus and exponent, big-endian without leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// SEC1 uncompressed point, or the 32 raw bytes of an Ed25519/X25519 key.
    Point(Vec<u8>),
}

// DER encodings of the algorithm OIDs (X.690 §8.19), as they appear in
// AlgorithmIdentifier.
const OID_RSA_ENCRYPTION: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
const OID_PRIME256V1: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const OID_SECP384R1: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x22];
const OID_ED25519: &[u8] = &[0x2B, 0x65, 0x70];
const OID_X25519: &[u8] = &[0x2B, 0x65, 0x6E];

// DER universal tags.
const INTEGER: u32 = 0x02;
const BIT_STRING: u32 = 0x03;
const NULL: u32 = 0x05;
const OBJECT_IDENTIFIER: u32 = 0x06;
const SEQUENCE: u32 = 0x30;

impl PublicKey {
    /// An RSA key from its modulus and public exponent (big-endian; leading zeros are
    /// removed). The modulus must be exactly 2048, 3072 or 4096 bits.
    pub fn rsa(n: &[u8], e: &[u8]) -> Result<Self, Error> {
        let n = strip_leading_zeros(n);
        let e = strip_leading_zeros(e);
        let bit_len = bit_length(n);
        let Some(bits) = u16::try_from(bit_len).ok().and_then(RsaBits::from_bits) else {
            // Report against the nearest size, so the message says what was expected.
            let nearest = if bit_len <= 2048 { RsaBits::Rsa2048 } else { RsaBits::Rsa4096 };
            return Err(Error::InvalidKey {
                algorithm: KeyAlgorithm::Rsa(nearest),
                fault: KeyFault::ModulusSize,
            });
        };
        let algorithm = KeyAlgorithm::Rsa(bits);
        let odd = e.last().is_some_and(|b| b & 1 == 1);
        if !odd || e == [1] || e.len() > n.len() {
            return Err(Error::InvalidKey { algorithm, fault: KeyFault::BadExponent });
        }
        Ok(Self { algorithm, material: Material::Rsa { n: n.to_vec(), e: e.to_vec() } })
    }

    /// An elliptic-curve or Edwards/Montgomery key from its point: SEC1 uncompressed
    /// (`04 || X || Y`) for NIST curves, the 32 raw bytes for Ed25519 and X25519.
    pub fn from_point(algorithm: KeyAlgorithm, point: &[u8]) -> Result<Self, Error> {
        let expected = match algorithm {
            KeyAlgorithm::NistP256 => 65,
            KeyAlgorithm::NistP384 => 97,
            KeyAlgorithm::Ed25519 | KeyAlgorithm::X25519 => 32,
            KeyAlgorithm::Rsa(_) => return Err(Error::UnsupportedAlgorithm(algorithm)),
        };
        if point.len() != expected {
            return Err(Error::InvalidKey { algorithm, fault: KeyFault::WrongLength });
        }
        if expected > 32 && point[0] != 0x04 {
            return Err(Error::InvalidKey { algorithm, fault: KeyFault::NotUncompressedPoint });
        }
        Ok(Self { algorithm, material: Material::Point(point.to_vec()) })
    }

    /// The algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// RSA modulus and exponent, if this is an RSA key.
    pub fn rsa_components(&self) -> Option<(&[u8], &[u8])> {
        match &self.material {
            Material::Rsa { n, e } => Some((n, e)),
            Material::Point(_) => None,
        }
    }

    /// The point (SEC1 uncompressed, or the 32 raw bytes), if this is not an RSA key.
    pub fn point(&self) -> Option<&[u8]> {
        match &self.material {
            Material::Point(p) => Some(p),
            Material::Rsa { .. } => None,
        }
    }

    /// DER-encoded SubjectPublicKeyInfo (RFC 5280 §4.1.2.7), as X.509 certificates,
    /// certificate requests and `openssl pkey -pubin` expect.
    pub fn to_spki_der(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(600);
        tlv::write_constructed(&mut out, SEQUENCE, |spki| {
            tlv::write_constructed(spki, SEQUENCE, |alg| match self.algorithm {
                KeyAlgorithm::Rsa(_) => {
                    tlv::write(alg, OBJECT_IDENTIFIER, OID_RSA_ENCRYPTION);
                    tlv::write(alg, NULL, &[]);
                }
                KeyAlgorithm::NistP256 | KeyAlgorithm::NistP384 => {
                    tlv::write(alg, OBJECT_IDENTIFIER, OID_EC_PUBLIC_KEY);
                    let curve = if self.algorithm == KeyAlgorithm::NistP256 {
                        OID_PRIME256V1
                    } else {
                        OID_SECP384R1
                    };
                    tlv::write(alg, OBJECT_IDENTIFIER, curve);
                }
                KeyAlgorithm::Ed25519 => tlv::write(alg, OBJECT_IDENTIFIER, OID_ED25519),
                KeyAlgorithm::X25519 => tlv::write(alg, OBJECT_IDENTIFIER, OID_X25519),
            });
            // BIT STRING with zero unused bits.
            tlv::write_constructed(spki, BIT_STRING, |bits| {
                bits.push(0);
                match &self.material {
                    Material::Rsa { n, e } => {
                        tlv::write_constructed(bits, SEQUENCE, |seq| {
                            write_der_unsigned(seq, n);
                            write_der_unsigned(seq, e);
                        });
                    }
                    Material::Point(p) => bits.extend_from_slice(p),
                }
            });
        });
        out
    }

    /// The OpenSSH public key line (`ssh-ed25519 AAAA…`), with `comment` appended when
    /// given. X25519 keys have no SSH form and return `None`.
    pub fn to_openssh(&self, comment: Option<&str>) -> Option<String> {
        let mut blob = Vec::with_capacity(600);
        let name = match (&self.algorithm, &self.material) {
            (KeyAlgorithm::Rsa(_), Material::Rsa { n, e }) => {
                ssh_string(&mut blob, b"ssh-rsa");
                ssh_mpint(&mut blob, e);
                ssh_mpint(&mut blob, n);
                "ssh-rsa"
            }
            (KeyAlgorithm::NistP256 | KeyAlgorithm::NistP384, Material::Point(p)) => {
                let (name, curve) = if self.algorithm == KeyAlgorithm::NistP256 {
                    ("ecdsa-sha2-nistp256", "nistp256")
                } else {
                    ("ecdsa-sha2-nistp384", "nistp384")
                };
                ssh_string(&mut blob, name.as_bytes());
                ssh_string(&mut blob, curve.as_bytes());
                ssh_string(&mut blob, p);
                name
            }
            (KeyAlgorithm::Ed25519, Material::Point(p)) => {
                ssh_string(&mut blob, b"ssh-ed25519");
                ssh_string(&mut blob, p);
                "ssh-ed25519"
            }
            _ => return None,
        };
        let mut line = format!("{name} {}", crate::base64::encode(&blob));
        if let Some(comment) = comment.filter(|c| !c.is_empty()) {
            line.push(' ');
            line.push_str(comment);
        }
        Some(line)
    }
}

impl core::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PublicKey({})", self.algorithm)
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

fn bit_length(unsigned: &[u8]) -> usize {
    match unsigned.first() {
        None => 0,
        Some(&top) => unsigned.len() * 8 - top.leading_zeros() as usize,
    }
}

/// A DER INTEGER holding a non-negative number (X.690 §8.3: two's complement, so a
/// leading zero byte when the top bit is set).
fn write_der_unsigned(out: &mut Vec<u8>, value: &[u8]) {
    let value = strip_leading_zeros(value);
    let pad = value.first().is_none_or(|b| b & 0x80 != 0);
    tlv::write_header(out, INTEGER, value.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(value);
}

/// RFC 4251 §5 `string`.
fn ssh_string(out: &mut Vec<u8>, value: &[u8]) {
    out.extend_from_slice(&(value.len() as u32).to_be_bytes());
    out.extend_from_slice(value);
}

/// RFC 4251 §5 `mpint` for a non-negative number.
fn ssh_mpint(out: &mut Vec<u8>, value: &[u8]) {
    let value = strip_leading_zeros(value);
    let pad = value.first().is_some_and(|b| b & 0x80 != 0);
    out.extend_from_slice(&((value.len() + usize::from(pad)) as u32).to_be_bytes());
    if pad {
        out.push(0);
    }
    out.extend_from_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_round_trip() {
        for alg in KeyAlgorithm::ALL {
            assert_eq!(alg.to_string().parse::<KeyAlgorithm>().ok(), Some(alg));
        }
        assert_eq!("X25519".parse::<KeyAlgorithm>().ok(), Some(KeyAlgorithm::X25519));
        assert!(matches!("rsa1024".parse::<KeyAlgorithm>(), Err(Error::UnknownAlgorithm(_))));
        assert!(!KeyAlgorithm::X25519.can_sign() && KeyAlgorithm::Ed25519.can_sign());
    }

    #[test]
    fn rsa_validation() {
        let mut n = vec![0u8; 257];
        n[1] = 0x80; // leading zero byte, then a 2048-bit modulus
        n[256] = 1;
        let key = PublicKey::rsa(&n, &[1, 0, 1]);
        assert_eq!(
            key.as_ref().map(PublicKey::algorithm).ok(),
            Some(KeyAlgorithm::Rsa(RsaBits::Rsa2048))
        );
        assert_eq!(key.ok().and_then(|k| k.rsa_components().map(|(n, _)| n.len())), Some(256));
        let short = PublicKey::rsa(&[0xFF; 128], &[1, 0, 1]);
        assert!(matches!(short, Err(Error::InvalidKey { fault: KeyFault::ModulusSize, .. })));
        for e in [&[1u8, 0, 0][..], &[1], &[]] {
            let r = PublicKey::rsa(&[0xFF; 256], e);
            assert!(
                matches!(r, Err(Error::InvalidKey { fault: KeyFault::BadExponent, .. })),
                "{e:?}"
            );
        }
    }

    #[test]
    fn point_validation() {
        assert!(PublicKey::from_point(KeyAlgorithm::Ed25519, &[9; 32]).is_ok());
        let bad_len = PublicKey::from_point(KeyAlgorithm::NistP256, &[4; 64]);
        assert!(matches!(bad_len, Err(Error::InvalidKey { fault: KeyFault::WrongLength, .. })));
        let compressed = PublicKey::from_point(KeyAlgorithm::NistP384, &[2; 97]);
        assert!(matches!(
            compressed,
            Err(Error::InvalidKey { fault: KeyFault::NotUncompressedPoint, .. })
        ));
        let rsa = PublicKey::from_point(KeyAlgorithm::Rsa(RsaBits::Rsa2048), &[0; 32]);
        assert!(matches!(rsa, Err(Error::UnsupportedAlgorithm(_))));
    }

    #[test]
    fn ed25519_spki_and_ssh_have_the_fixed_prefixes() {
        let key =
            PublicKey::from_point(KeyAlgorithm::Ed25519, &[0x11; 32]).map_err(|e| e.to_string());
        let Ok(key) = key else { panic!("{key:?}") };
        // RFC 8410 §10.1 shape: 30 2A 30 05 06 03 2B 65 70 03 21 00 || key
        let der = key.to_spki_der();
        assert_eq!(
            &der[..12],
            &[0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x03, 0x21, 0x00]
        );
        assert_eq!(&der[12..], &[0x11; 32]);
        let line = key.to_openssh(Some("card 1234")).unwrap_or_default();
        // "ssh-ed25519" blob prefix 00 00 00 0b 73 73 68 2d … encodes as AAAAC3NzaC1lZDI1NTE5.
        assert!(line.starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"), "{line}");
        assert!(line.ends_with(" card 1234"));
        let x = PublicKey::from_point(KeyAlgorithm::X25519, &[1; 32]).ok();
        assert_eq!(x.and_then(|k| k.to_openssh(None)), None);
    }

    #[test]
    fn der_integers_are_minimal_and_positive() {
        let mut out = Vec::new();
        write_der_unsigned(&mut out, &[0, 0, 0x7F]);
        assert_eq!(out, [0x02, 0x01, 0x7F]);
        out.clear();
        write_der_unsigned(&mut out, &[0x80]);
        assert_eq!(out, [0x02, 0x02, 0x00, 0x80]);
        out.clear();
        write_der_unsigned(&mut out, &[]);
        assert_eq!(out, [0x02, 0x01, 0x00]);
        let mut mp = Vec::new();
        ssh_mpint(&mut mp, &[0x80, 1]);
        assert_eq!(mp, [0, 0, 0, 3, 0, 0x80, 1]);
    }
}
