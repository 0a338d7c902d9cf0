//! The crate's one error type.

use crate::alg::Algorithm;

/// Everything that can fail in parsing, verifying, signing, encrypting or decrypting.
///
/// Messages never contain key material or passwords; they may name header values and
/// claim names, which are not secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is longer than the parser accepts.
    #[error("{what} is {len} bytes, more than the {max} accepted")]
    TooLong {
        /// What was too long ("compact JWS", "compact JWE").
        what: &'static str,
        /// Its length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The structure is wrong (number of parts, a member of the wrong type, a missing member).
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being parsed.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A part is not valid base64url without padding (RFC 7515 §2), or a certificate is not
    /// valid base64 (RFC 7515 §4.1.6).
    #[error("{what} is not valid base64")]
    Base64 {
        /// The part ("protected header", "payload", "signature", "x5c certificate", …).
        what: &'static str,
    },
    /// The header names `alg: none` (RFC 7518 §3.6): never accepted.
    #[error("alg \"none\" (an unsigned token) is never accepted")]
    NoneAlgorithm,
    /// The header names an HMAC algorithm (HS256/384/512): never accepted, since a
    /// verification key here is always public.
    #[error("symmetric algorithm {0} is never accepted")]
    SymmetricAlgorithm(String),
    /// An algorithm this crate does not implement.
    #[error("unsupported algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The header's `alg` is not the verification key's algorithm (the algorithm comes from
    /// the key, never from the token).
    #[error("token alg {header:?} does not match the key's algorithm {key}")]
    AlgorithmMismatch {
        /// The header's `alg`.
        header: String,
        /// The key's algorithm.
        key: Algorithm,
    },
    /// A JWK whose `alg` does not fit its key type.
    #[error("alg {alg} does not fit a {kty} key")]
    KeyAlgorithmMismatch {
        /// The algorithm named.
        alg: Algorithm,
        /// The key type (`EC P-256`, `RSA`, …).
        kty: String,
    },
    /// The header lists critical extensions (RFC 7515 §4.1.11), none of which this crate
    /// understands.
    #[error("critical header extensions are not supported")]
    CriticalHeader,
    /// The signature does not verify with the key.
    #[error("signature does not verify")]
    BadSignature,
    /// A key that is not a valid key of its type (a point off the curve, bad lengths).
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// An RSA key with a modulus under 2048 bits.
    #[error("RSA key of {bits} bits refused: at least 2048 are required")]
    RsaKeyTooSmall {
        /// The modulus length.
        bits: usize,
    },
    /// A key type or curve this crate does not handle.
    #[error("unsupported key: {0}")]
    UnsupportedKey(String),
    /// A public JWK that carries private members.
    #[error("a public JWK must not carry private key members")]
    UnexpectedPrivateKey,
    /// A private JWK whose private members are missing or do not match its public ones.
    #[error("invalid private JWK")]
    InvalidPrivateKey,
    /// Signing failed.
    #[error("signing failed")]
    Signing,
    /// The operating system's random number generator failed.
    #[error("random number generator failed")]
    Random,
    /// The JWE does not decrypt: wrong password, or the token was altered.
    #[error("decryption failed (wrong password or altered data)")]
    Decryption,
    /// A JWE whose algorithms or header parameters are not the ones supported
    /// (PBES2-HS256+A128KW with A256GCM, no compression).
    #[error("unsupported JWE: {0}")]
    UnsupportedJwe(String),
    /// A PBES2 iteration count outside 1 ..= the accepted maximum.
    #[error("PBES2 iteration count {p2c} outside 1..={max}")]
    IterationCount {
        /// The token's `p2c`.
        p2c: u64,
        /// The largest accepted.
        max: u32,
    },
    /// An error from keystation-core (converting keys).
    #[error(transparent)]
    Core(#[from] keystation_core::Error),
}

/// The crate's result type.
pub type Result<T, E = Error> = core::result::Result<T, E>;

impl Error {
    pub(crate) fn malformed(what: &'static str, reason: impl Into<String>) -> Self {
        Self::Malformed { what, reason: reason.into() }
    }
}
