//! The crate's one error type.

/// Everything that can fail in keystation-x509.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Text that is not valid PEM (RFC 7468).
    #[error("invalid PEM: {0}")]
    Pem(String),
    /// DER that does not decode as the structure expected.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// What was being decoded ("certificate", "PKCS#8 private key" …).
        what: &'static str,
        /// What the decoder reported.
        detail: String,
    },
    /// A public-key algorithm keystation does not handle.
    #[error("unsupported public key algorithm {0}")]
    UnsupportedKeyAlgorithm(String),
    /// A signature algorithm keystation does not verify or produce.
    #[error("unsupported signature algorithm {0}")]
    UnsupportedSignatureAlgorithm(String),
    /// The signature does not verify with the key.
    #[error("signature does not verify")]
    BadSignature,
    /// A password-protected private key (PKCS#8 `ENCRYPTED PRIVATE KEY` or a PEM
    /// `Proc-Type: 4,ENCRYPTED` header).
    #[error("encrypted private keys are not supported")]
    EncryptedPrivateKey,
    /// A distinguished-name string that does not parse (RFC 4514).
    #[error("invalid distinguished name: {0}")]
    InvalidName(String),
    /// A value that cannot go into a certificate (serial, validity, alt name …).
    #[error("invalid certificate input: {0}")]
    InvalidInput(String),
    /// A key, signer or key encoding rejected by keystation-core.
    #[error(transparent)]
    Core(#[from] keystation_core::Error),
    /// One link of a YubiKey attestation chain failed.
    #[error("attestation chain, {link}: {reason}")]
    Attestation {
        /// Which link: "attestation certificate ← device (F9) certificate" …
        link: String,
        /// Why it failed.
        reason: String,
    },
}

impl Error {
    pub(crate) fn malformed(what: &'static str, detail: impl core::fmt::Display) -> Self {
        Self::Malformed { what, detail: detail.to_string() }
    }
}
