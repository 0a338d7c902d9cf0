//! The crate's one error type.

use crate::key::KeyAlgorithm;
use crate::status::StatusWord;

/// What went wrong below the APDU layer: the reader, the card's presence, the link.
///
/// Transports map their own error codes onto these so that callers can react (wait for a
/// card, reconnect after a reset) without knowing which transport is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportFailure {
    /// The smart-card service (pcscd) is not running or not reachable.
    ServiceUnavailable,
    /// The named reader does not exist (any more).
    UnknownReader,
    /// There is no card in the reader.
    NoCard,
    /// The card was removed while in use.
    CardRemoved,
    /// The card was reset (by another application or a power loss); volatile state such as
    /// verified PINs and the selected application is gone.
    CardReset,
    /// Another application holds the card exclusively.
    SharingViolation,
    /// The card does not answer.
    Unresponsive,
    /// Waiting for a reader event timed out.
    Timeout,
    /// The transport failed in a way not listed above; see the error's source.
    Other,
}

impl core::fmt::Display for TransportFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::ServiceUnavailable => "the smart-card service (pcscd) is not available",
            Self::UnknownReader => "the reader is not available",
            Self::NoCard => "no card detected in the reader",
            Self::CardRemoved => "the card was removed",
            Self::CardReset => "the card was reset",
            Self::SharingViolation => "the card is in use by another application",
            Self::Unresponsive => "the card does not respond",
            Self::Timeout => "timed out waiting for the reader",
            Self::Other => "transport failure",
        })
    }
}

/// Reasons a BER-TLV encoding is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlvFault {
    /// The input ended inside a tag, a length or a value.
    Truncated,
    /// A tag longer than this crate supports (more than three bytes).
    TagTooLong,
    /// A length field longer than four bytes, or the indefinite form (`80`) which
    /// ISO/IEC 7816-4 does not allow in card data.
    BadLength,
    /// Constructed data objects nested deeper than the parser allows.
    TooDeep,
}

impl core::fmt::Display for TlvFault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Truncated => "input ends inside a data object",
            Self::TagTooLong => "tag longer than three bytes",
            Self::BadLength => "unsupported length encoding",
            Self::TooDeep => "data objects nested too deeply",
        })
    }
}

/// Reasons key material is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyFault {
    /// The encoding has the wrong length for the algorithm.
    WrongLength,
    /// An EC point is not in uncompressed SEC1 form (`04 || X || Y`).
    NotUncompressedPoint,
    /// An RSA modulus has a different size than the algorithm names.
    ModulusSize,
    /// An RSA public exponent that is even, one, or longer than the modulus.
    BadExponent,
}

impl core::fmt::Display for KeyFault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::WrongLength => "wrong length",
            Self::NotUncompressedPoint => "not an uncompressed SEC1 point",
            Self::ModulusSize => "modulus size does not match the algorithm",
            Self::BadExponent => "invalid public exponent",
        })
    }
}

/// Everything that can fail in keystation-core and in the transports built on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed; `source` carries the transport's own error where there is one
    /// (error reports walk the `source` chain to show it).
    #[error("{kind}")]
    Transport {
        /// What kind of failure.
        kind: TransportFailure,
        /// The transport's own error, kept for logs (its type stays private to the backend).
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
    /// The card answered with a status word that is not success.
    #[error("card returned {0}")]
    Status(StatusWord),
    /// A response APDU shorter than the two status bytes.
    #[error("response of {len} bytes has no status word")]
    ResponseTooShort {
        /// Bytes received.
        len: usize,
    },
    /// The card kept answering `61xx`/`6Cxx` beyond the limit, or sent more data than the
    /// channel accepts in one response.
    #[error("card response exceeds {limit} bytes or {limit_rounds} GET RESPONSE rounds")]
    ResponseOverflow {
        /// Byte limit.
        limit: usize,
        /// Round limit.
        limit_rounds: usize,
    },
    /// Command data longer than any APDU form can carry.
    #[error("command data of {len} bytes exceeds the maximum of {max}")]
    CommandTooLong {
        /// Data length asked for.
        len: usize,
        /// Largest length possible.
        max: usize,
    },
    /// A command APDU that cannot be decoded (wrong Lc, trailing bytes, too short).
    #[error("malformed command APDU: {reason}")]
    MalformedCommand {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The caller's response buffer is too small for what the transport received.
    #[error("response buffer of {capacity} bytes is too small")]
    BufferTooSmall {
        /// The buffer's size.
        capacity: usize,
    },
    /// Malformed BER-TLV data.
    #[error("malformed BER-TLV at byte {offset}: {fault}")]
    MalformedTlv {
        /// Offset into the parsed buffer where the fault was found.
        offset: usize,
        /// What is wrong.
        fault: TlvFault,
    },
    /// A data object the caller required is absent.
    #[error("data object {tag:#06X} not found")]
    MissingDataObject {
        /// The tag looked for.
        tag: u32,
    },
    /// Key material that does not fit its algorithm.
    #[error("invalid {algorithm} key: {fault}")]
    InvalidKey {
        /// The algorithm the material was meant for.
        algorithm: KeyAlgorithm,
        /// What is wrong.
        fault: KeyFault,
    },
    /// The backend cannot do this algorithm.
    #[error("algorithm {0} is not supported here")]
    UnsupportedAlgorithm(KeyAlgorithm),
    /// An algorithm name that keystation does not know.
    #[error(
        "unknown algorithm {0:?}: use rsa2048, rsa3072, rsa4096, nistp256 (p256), nistp384 \
         (p384), ed25519 or cv25519 (x25519)"
    )]
    UnknownAlgorithm(Box<str>),
    /// A policy name that keystation does not know.
    #[error("unknown {what} {name:?}")]
    UnknownPolicy {
        /// Which policy: "PIN policy", "touch policy".
        what: &'static str,
        /// The name given.
        name: Box<str>,
    },
    /// The backend cannot apply the requested PIN or touch policy.
    #[error("the requested PIN or touch policy is not supported here")]
    UnsupportedPolicy,
    /// A signing input that does not fit the key (digest length, message for ECDSA).
    #[error("signing input does not fit a {0} key")]
    InvalidSignInput(KeyAlgorithm),
    /// The random source failed.
    #[error("the random source failed")]
    RandomSourceFailed,
    /// A provisioner refused the request.
    #[error("unauthorized: {0}")]
    Unauthorized(crate::provisioner::Denial),
}

/// A provisioner's refusal as an error, so that `authorize` can use `?` on checks that
/// answer with a [`Denial`](crate::provisioner::Denial).
impl From<crate::provisioner::Denial> for Error {
    fn from(denial: crate::provisioner::Denial) -> Self {
        Self::Unauthorized(denial)
    }
}

impl Error {
    /// A transport error without a source.
    pub fn transport(kind: TransportFailure) -> Self {
        Self::Transport { kind, source: None }
    }

    /// A transport error that keeps the transport's own error as its source.
    pub fn transport_with(
        kind: TransportFailure,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Transport { kind, source: Some(Box::new(source)) }
    }

    /// The transport failure kind, if this is a transport error.
    pub fn transport_failure(&self) -> Option<TransportFailure> {
        match self {
            Self::Transport { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// The status word, if the card answered with a non-success status.
    pub fn status(&self) -> Option<StatusWord> {
        match self {
            Self::Status(sw) => Some(*sw),
            _ => None,
        }
    }
}

/// An error and its chain of causes as one line, `outer: cause: root cause`, for log lines
/// and the messages users read. A cause whose text the line already holds (an error that
/// prints its source itself) is not repeated.
pub fn describe_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_errors_name_the_failure_and_keep_the_transports_error() {
        let other = Error::transport_with(
            TransportFailure::Other,
            std::io::Error::other("SCardTransmit failed: Not transacted (0x80100016)"),
        );
        assert_eq!(other.to_string(), "transport failure");
        let source = std::error::Error::source(&other).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("SCardTransmit failed: Not transacted (0x80100016)"));
        assert_eq!(other.transport_failure(), Some(TransportFailure::Other));
    }
}
