//! Key algorithms and public keys.

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
}

/// The asymmetric algorithms keystation puts on cards.
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
