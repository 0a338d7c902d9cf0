//! The crate's one error type, each variant tied to the RFC 8555 §6.7 problem type a server
//! answers it with ([`Error::problem_type`]).

use crate::problem::{Problem, ProblemType};

/// Everything that can fail in parsing and checking ACME requests, bindings, identifiers
/// and attestation statements.
///
/// Messages never contain key material or MAC keys; they may quote header values,
/// identifiers and configuration, which are not secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is longer than accepted (the cap is checked before anything is decoded).
    #[error("{what} is {len} bytes, more than the {max} accepted")]
    TooLarge {
        /// What was too long.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The structure is wrong: not JSON, a missing or mistyped member, a bad value.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being parsed.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A member is not valid base64url without padding (RFC 8555 §6.1).
    #[error("{what} is not valid base64url without padding")]
    Base64 {
        /// Which member.
        what: &'static str,
    },
    /// The JWS carries an unprotected `header` (RFC 8555 §6.2: every parameter is in the
    /// protected header) or uses the general serialization (`signatures`).
    #[error(
        "the JWS {0:?} member is not allowed: ACME uses the flattened JSON serialization with every header parameter protected"
    )]
    UnprotectedHeader(&'static str),
    /// The protected header has both `jwk` and `kid`, or neither (RFC 8555 §6.2).
    #[error("the protected header must carry exactly one of \"jwk\" and \"kid\" ({0})")]
    KeyChoice(&'static str),
    /// The protected header has no `nonce` (RFC 8555 §6.5: a missing nonce is a bad one).
    #[error("the protected header has no \"nonce\"")]
    MissingNonce,
    /// The protected header has no `url`, or an empty one (RFC 8555 §6.4).
    #[error("the protected header has no \"url\"")]
    MissingUrl,
    /// The `alg` is not one the server accepts (`none`, HMAC, unknown, PS256): RFC 8555
    /// §6.2's badSignatureAlgorithm.
    #[error("signature algorithm {0:?} is not accepted (ES256, ES384, EdDSA, RS256 are)")]
    BadSignatureAlgorithm(String),
    /// The `alg` does not fit the key the request is verified with.
    #[error("signature algorithm {alg:?} does not fit the account key ({key})")]
    AlgorithmMismatch {
        /// The header's `alg`.
        alg: String,
        /// The key's algorithm.
        key: String,
    },
    /// The `jwk` is not a key the server accepts (RSA under 2048 bits, an unsupported
    /// curve, private members, a point off its curve): RFC 8555's badPublicKey.
    #[error("unacceptable public key: {0}")]
    BadPublicKey(String),
    /// The signature does not verify with the key.
    #[error("the JWS signature does not verify")]
    BadSignature,
    /// A request that must have been signed with `jwk` names an account (`kid`), or the
    /// reverse (RFC 8555 §6.2: newAccount and revokeCert-by-key use `jwk`, the rest `kid`).
    #[error("this request must be signed with {expected}")]
    WrongKeyChoice {
        /// `"jwk"` or `"kid"`.
        expected: &'static str,
    },
    /// The inner JWS of a key change does not agree with the outer one (RFC 8555 §7.3.5).
    #[error("key change refused: {0}")]
    KeyChange(String),
    /// newAccount without the `externalAccountBinding` the provisioner requires
    /// (RFC 8555 §7.3.4).
    #[error("an external account binding is required")]
    ExternalAccountRequired,
    /// The external account binding does not verify: unknown key ID, wrong MAC, wrong
    /// `url`, or a payload that is not the account key (RFC 8555 §7.3.4).
    #[error("external account binding refused: {0}")]
    ExternalAccountBinding(String),
    /// An identifier that cannot be certified: a malformed DNS name or IP address, a bad
    /// wildcard, an empty permanent identifier (RFC 8555 §7.1.3, RFC 8738 §3).
    #[error("identifier {value:?} refused: {reason}")]
    RejectedIdentifier {
        /// The identifier's value, as sent.
        value: String,
        /// Why.
        reason: String,
    },
    /// An identifier type the server does not know (RFC 8555 §7.1.3).
    #[error("identifier type {0:?} is not supported")]
    UnsupportedIdentifier(String),
    /// The device-attest-01 attestation object or statement is refused: malformed CBOR, an
    /// unsupported format, a chain that does not verify, a signature that does not, a
    /// policy violation (draft-ietf-acme-device-attest §5).
    #[error("attestation statement refused: {0}")]
    BadAttestationStatement(String),
    /// The attestation is valid but for another device than the identifier names.
    #[error("the attested serial {attested} is not the identifier {identifier:?}")]
    SerialMismatch {
        /// The serial the attestation certifies, in decimal.
        attested: String,
        /// The order's permanent identifier.
        identifier: String,
    },
    /// The operating system's random number generator failed.
    #[error("random number generator failed")]
    Random,
}

impl Error {
    pub(crate) fn malformed(what: &'static str, reason: impl Into<String>) -> Self {
        Self::Malformed { what, reason: reason.into() }
    }

    /// The RFC 8555 §6.7 problem type a server answers this error with. A bad signature
    /// is `malformed`, as boulder and step-ca answer it; a missing nonce is `badNonce`
    /// (RFC 8555 §6.5: "unacceptable (or not present)").
    pub fn problem_type(&self) -> ProblemType {
        match self {
            Self::TooLarge { .. }
            | Self::Malformed { .. }
            | Self::Base64 { .. }
            | Self::UnprotectedHeader(_)
            | Self::KeyChoice(_)
            | Self::MissingUrl
            | Self::AlgorithmMismatch { .. }
            | Self::BadSignature
            | Self::WrongKeyChoice { .. } => ProblemType::Malformed,
            Self::MissingNonce => ProblemType::BadNonce,
            Self::BadSignatureAlgorithm(_) => ProblemType::BadSignatureAlgorithm,
            Self::BadPublicKey(_) => ProblemType::BadPublicKey,
            Self::KeyChange(_) | Self::ExternalAccountBinding(_) => ProblemType::Unauthorized,
            Self::ExternalAccountRequired => ProblemType::ExternalAccountRequired,
            Self::RejectedIdentifier { .. } | Self::SerialMismatch { .. } => {
                ProblemType::RejectedIdentifier
            }
            Self::UnsupportedIdentifier(_) => ProblemType::UnsupportedIdentifier,
            Self::BadAttestationStatement(_) => ProblemType::BadAttestationStatement,
            Self::Random => ProblemType::ServerInternal,
        }
    }

    /// The problem document for this error: its [`problem_type`](Self::problem_type), the
    /// message as `detail`, and for badSignatureAlgorithm the accepted `algorithms`
    /// (RFC 8555 §6.2).
    pub fn problem(&self) -> Problem {
        let problem = Problem::new(self.problem_type(), self.to_string());
        match self {
            Self::BadSignatureAlgorithm(_) => problem.with_algorithms(
                crate::envelope::ACCEPTED_ALGORITHMS.iter().map(|a| a.name().to_owned()).collect(),
            ),
            _ => problem,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = core::result::Result<T, E>;
