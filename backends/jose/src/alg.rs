//! The JWS algorithms this crate signs and verifies with (RFC 7518 §3.1, RFC 8037 §3.1).

use keystation_core::key::{KeyAlgorithm, PublicKey};

use crate::error::Error;

/// A signature algorithm: each is tied to one kind of key, and a token is verified with the
/// algorithm of the key, never with the one its header names (the header must merely agree).
///
/// `none` (RFC 7518 §3.6) and the HMAC algorithms (§3.2) are not variants: they can never
/// be chosen, and [`Algorithm::from_name`] refuses them with their own errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// ECDSA on P-256 with SHA-256, signature `r || s` (RFC 7518 §3.4).
    Es256,
    /// ECDSA on P-384 with SHA-384, signature `r || s` (RFC 7518 §3.4).
    Es384,
    /// EdDSA with Ed25519 (RFC 8037 §3.1).
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3).
    Rs256,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt (RFC 7518 §3.5).
    Ps256,
}

impl Algorithm {
    /// Every algorithm, in a stable order.
    pub const ALL: [Self; 5] = [Self::Es256, Self::Es384, Self::EdDsa, Self::Rs256, Self::Ps256];

    /// The `alg` header value.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::EdDsa => "EdDSA",
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
        }
    }

    /// The algorithm an `alg` value names. `none` is [`Error::NoneAlgorithm`], `HS256`,
    /// `HS384` and `HS512` are [`Error::SymmetricAlgorithm`], anything else not listed
    /// [`Error::UnsupportedAlgorithm`]. Names are case-sensitive (RFC 7515 §4.1.1).
    pub fn from_name(name: &str) -> Result<Self, Error> {
        match name {
            "ES256" => Ok(Self::Es256),
            "ES384" => Ok(Self::Es384),
            "EdDSA" => Ok(Self::EdDsa),
            "RS256" => Ok(Self::Rs256),
            "PS256" => Ok(Self::Ps256),
            "none" => Err(Error::NoneAlgorithm),
            "HS256" | "HS384" | "HS512" => Err(Error::SymmetricAlgorithm(name.into())),
            _ => Err(Error::UnsupportedAlgorithm(name.into())),
        }
    }

    /// The algorithm a key signs with when nothing else says: ES256 for P-256, ES384 for
    /// P-384, EdDSA for Ed25519, RS256 for RSA (as step's tools default). `None` for keys
    /// that cannot sign (X25519).
    pub fn default_for(key: &PublicKey) -> Option<Self> {
        match key.algorithm() {
            KeyAlgorithm::NistP256 => Some(Self::Es256),
            KeyAlgorithm::NistP384 => Some(Self::Es384),
            KeyAlgorithm::Ed25519 => Some(Self::EdDsa),
            KeyAlgorithm::Rsa(_) => Some(Self::Rs256),
            _ => None,
        }
    }

    /// Whether keys of `algorithm` make signatures of this algorithm.
    pub fn fits(self, algorithm: KeyAlgorithm) -> bool {
        matches!(
            (self, algorithm),
            (Self::Es256, KeyAlgorithm::NistP256)
                | (Self::Es384, KeyAlgorithm::NistP384)
                | (Self::EdDsa, KeyAlgorithm::Ed25519)
                | (Self::Rs256 | Self::Ps256, KeyAlgorithm::Rsa(_))
        )
    }
}

impl core::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl core::str::FromStr for Algorithm {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::from_name(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_refusals_have_their_own_errors() {
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(alg.name()).ok(), Some(alg));
        }
        assert!(matches!(Algorithm::from_name("none"), Err(Error::NoneAlgorithm)));
        for hs in ["HS256", "HS384", "HS512"] {
            assert!(
                matches!(Algorithm::from_name(hs), Err(Error::SymmetricAlgorithm(n)) if n == hs)
            );
        }
        assert!(matches!(Algorithm::from_name("es256"), Err(Error::UnsupportedAlgorithm(_))));
        assert!(matches!(Algorithm::from_name("RS512"), Err(Error::UnsupportedAlgorithm(_))));
        assert!(matches!(Algorithm::from_name("NONE"), Err(Error::UnsupportedAlgorithm(_))));
    }

    #[test]
    fn algorithms_fit_only_their_key_types() {
        use keystation_core::key::RsaBits;
        assert!(Algorithm::Es256.fits(KeyAlgorithm::NistP256));
        assert!(!Algorithm::Es256.fits(KeyAlgorithm::NistP384));
        assert!(Algorithm::Ps256.fits(KeyAlgorithm::Rsa(RsaBits::Rsa3072)));
        assert!(!Algorithm::EdDsa.fits(KeyAlgorithm::X25519));
        assert!(!Algorithm::Rs256.fits(KeyAlgorithm::Ed25519));
    }
}
