//! The crate's one error type.

use keystation_core::key::KeyAlgorithm;

/// Everything that can fail in keystation-ca.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The password does not open the key file (or the file's ciphertext is damaged:
    /// PBES2 cannot tell the two apart).
    #[error("wrong password for the encrypted private key (or the key file is damaged)")]
    WrongPassword,
    /// A key file that is not a PKCS #8 private key keystation reads.
    #[error("key file: {0}")]
    KeyFile(String),
    /// An algorithm that cannot be a CA key (X25519 only agrees keys).
    #[error("{0} cannot be a CA key: it cannot sign")]
    UnsupportedCaKey(KeyAlgorithm),
    /// A certification request that is not DER or PEM PKCS #10 (RFC 2986).
    #[error("malformed certificate request: {0}")]
    MalformedCsr(String),
    /// The request's self-signature (proof of possession, RFC 2986 §3) does not verify.
    #[error("the certificate request's signature does not verify: {0}")]
    CsrSignature(String),
    /// An RSA subject key shorter than 2048 bits (step-ca's minimum).
    #[error("RSA key of {bits} bits: at least 2048 bits are required")]
    RsaKeyTooSmall {
        /// The modulus length.
        bits: usize,
    },
    /// A subject key keystation does not certify (another curve, DSA, an RSA size other
    /// than 2048/3072/4096 …).
    #[error("unsupported public key: {0}")]
    UnsupportedKey(String),
    /// A template value that cannot go into a certificate, CRL or SSH certificate.
    #[error("invalid template: {0}")]
    InvalidTemplate(String),
    /// The signer given to an [`Issuer`](crate::Issuer) or [`SshCa`](crate::SshCa) does
    /// not hold the key its certificate names.
    #[error("the signer's key is not the {0} key")]
    SignerMismatch(&'static str),
    /// A certificate given back to the CA (for renewal, rekeying, as a chain) that does
    /// not parse or fit.
    #[error("certificate: {0}")]
    Certificate(String),
    /// An SSH public key, certificate or signature problem (PROTOCOL.certkeys).
    #[error("SSH: {0}")]
    Ssh(String),
    /// The SSH certificate is not signed by this CA's key for its type, or not valid at
    /// the time asked.
    #[error("SSH certificate not accepted: {0}")]
    SshCertificateRejected(String),
    /// The CA for this SSH certificate type (user or host) is not configured.
    #[error("no SSH {0} CA key is configured")]
    NoSshCa(&'static str),
    /// Another thread panicked while it held the signer.
    #[error("the CA signer is unusable: a thread panicked while signing")]
    SignerPoisoned,
    /// An X.509 building, parsing or verification error.
    #[error(transparent)]
    X509(#[from] keystation_x509::Error),
    /// A key, signer or random-source error from keystation-core.
    #[error(transparent)]
    Core(#[from] keystation_core::Error),
}

impl Error {
    pub(crate) fn template(what: impl core::fmt::Display) -> Self {
        Self::InvalidTemplate(what.to_string())
    }

    pub(crate) fn ssh(what: impl core::fmt::Display) -> Self {
        Self::Ssh(what.to_string())
    }
}
