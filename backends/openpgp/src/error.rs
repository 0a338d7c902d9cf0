//! The crate's one error type, with the operation that failed and the card's answer.

use keystation_core::StatusWord;
use keystation_core::key::KeyAlgorithm;
use keystation_core::keygen::OpenPgpKeySlot;

/// The passwords of the OpenPGP application (OpenPGP card 3.4.1 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PinRef {
    /// PW1 as verified for PSO:COMPUTE DIGITAL SIGNATURE (VERIFY P2 `81`).
    Pw1Signing,
    /// PW1 as verified for everything else: decipher, authenticate, private DOs (P2 `82`).
    Pw1,
    /// PW3, the admin PIN (P2 `83`).
    Pw3,
    /// The resetting code (RC, §4.3.3), which unblocks PW1.
    ResettingCode,
}

impl PinRef {
    /// P2 of VERIFY for this password (§7.2.2); the resetting code has none.
    pub const fn verify_p2(self) -> Option<u8> {
        match self {
            Self::Pw1Signing => Some(0x81),
            Self::Pw1 => Some(0x82),
            Self::Pw3 => Some(0x83),
            Self::ResettingCode => None,
        }
    }
}

impl core::fmt::Display for PinRef {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Pw1Signing => "user PIN (PW1, signing)",
            Self::Pw1 => "user PIN (PW1)",
            Self::Pw3 => "admin PIN (PW3)",
            Self::ResettingCode => "resetting code",
        })
    }
}

/// What the client was doing when something failed (the command of OpenPGP card 3.4.1
/// §7.2 and the data object it addressed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// SELECT of the OpenPGP application (§7.2.1).
    Select,
    /// GET DATA of a data object (§7.2.6).
    GetData(u16),
    /// PUT DATA of a data object (§7.2.8).
    PutData(u16),
    /// VERIFY (§7.2.2).
    Verify(PinRef),
    /// CHANGE REFERENCE DATA (§7.2.3).
    ChangePin(PinRef),
    /// RESET RETRY COUNTER (§7.2.4).
    ResetRetryCounter,
    /// TERMINATE DF (§7.2.16).
    Terminate,
    /// ACTIVATE FILE (§7.2.17).
    Activate,
    /// GENERATE ASYMMETRIC KEY PAIR, generation (§7.2.14, P1 `80`).
    Generate(OpenPgpKeySlot),
    /// GENERATE ASYMMETRIC KEY PAIR, reading the public key (§7.2.14, P1 `81`).
    ReadPublicKey(OpenPgpKeySlot),
    /// Key import with the extended header list (§4.4.3.12, PUT DATA `DB 3FFF`).
    ImportKey(OpenPgpKeySlot),
    /// PSO:COMPUTE DIGITAL SIGNATURE (§7.2.10).
    Sign,
    /// PSO:DECIPHER (§7.2.11).
    Decipher,
    /// INTERNAL AUTHENTICATE (§7.2.13).
    InternalAuthenticate,
}

impl core::fmt::Display for Operation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Select => f.write_str("SELECT"),
            Self::GetData(tag) => write!(f, "GET DATA {tag:04X}"),
            Self::PutData(tag) => write!(f, "PUT DATA {tag:04X}"),
            Self::Verify(pin) => write!(f, "VERIFY {pin}"),
            Self::ChangePin(pin) => write!(f, "CHANGE REFERENCE DATA {pin}"),
            Self::ResetRetryCounter => f.write_str("RESET RETRY COUNTER"),
            Self::Terminate => f.write_str("TERMINATE DF"),
            Self::Activate => f.write_str("ACTIVATE FILE"),
            Self::Generate(slot) => {
                write!(f, "GENERATE ASYMMETRIC KEY PAIR ({})", slot_name(*slot))
            }
            Self::ReadPublicKey(slot) => write!(f, "read public key ({})", slot_name(*slot)),
            Self::ImportKey(slot) => write!(f, "key import ({})", slot_name(*slot)),
            Self::Sign => f.write_str("PSO:COMPUTE DIGITAL SIGNATURE"),
            Self::Decipher => f.write_str("PSO:DECIPHER"),
            Self::InternalAuthenticate => f.write_str("INTERNAL AUTHENTICATE"),
        }
    }
}

/// A short name of a key slot for messages.
pub(crate) fn slot_name(slot: OpenPgpKeySlot) -> &'static str {
    match slot {
        OpenPgpKeySlot::Signature => "signature key",
        OpenPgpKeySlot::Decryption => "decryption key",
        OpenPgpKeySlot::Authentication => "authentication key",
    }
}

/// Everything that can go wrong talking to an OpenPGP card.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A wrong password: the card counted a failed try (§7.2.2, `63Cx` or `6982`).
    #[error("wrong {pin}: {retries} tries left")]
    WrongPin {
        /// Which password.
        pin: PinRef,
        /// Tries left, as the card reported them (or as counted from the PW status bytes
        /// when the card answers a plain `6982`).
        retries: u8,
    },
    /// The password's retry counter is at zero (`6983`); reset it with the resetting code
    /// or PW3, or reset the application.
    #[error("{0} is blocked")]
    PinBlocked(PinRef),
    /// A password that the card would refuse for its length (§4.3: PW1 6 bytes at least,
    /// PW3 and the resetting code 8; at most what the PW status bytes announce).
    #[error("{pin} must be {min} to {max} bytes long")]
    PinLength {
        /// Which password.
        pin: PinRef,
        /// Shortest allowed.
        min: usize,
        /// Longest allowed.
        max: usize,
    },
    /// The command needs a password that is not verified (`6982`).
    #[error("{operation} needs a verified PIN (security status not satisfied)")]
    SecurityStatusNotSatisfied {
        /// The refused command.
        operation: Operation,
    },
    /// The card (by its algorithm information, `FA`) or the slot cannot hold this
    /// algorithm. Reported before anything is sent to the card.
    #[error("the card does not support {algorithm} for the {}", slot_name(*slot))]
    UnsupportedAlgorithm {
        /// The slot asked for.
        slot: OpenPgpKeySlot,
        /// The algorithm asked for.
        algorithm: KeyAlgorithm,
    },
    /// The card does not announce a feature the call needs (touch policy DOs, key import,
    /// changeable attributes, a PIN or touch policy).
    #[error("the card does not support {0}")]
    UnsupportedFeature(&'static str),
    /// The card's key in this slot has attributes keystation cannot use (e.g. a curve it
    /// does not know).
    #[error("the {} has unsupported attributes {attributes:02X?}", slot_name(*slot))]
    UnknownKeyAttributes {
        /// The slot.
        slot: OpenPgpKeySlot,
        /// The raw attributes (C1–C3).
        attributes: Vec<u8>,
    },
    /// The card answered a status other than success.
    #[error("card returned {status} for {operation}")]
    Card {
        /// The command.
        operation: Operation,
        /// The card's status word.
        status: StatusWord,
    },
    /// The application is in its termination state (`6285` to SELECT, §7.2.16); it needs
    /// ACTIVATE FILE (see [`OpenPgpCard::select_activating`](crate::OpenPgpCard::select_activating)).
    #[error("the OpenPGP application is terminated (needs ACTIVATE FILE)")]
    Terminated,
    /// The card has no OpenPGP application (`6A82` to SELECT).
    #[error("the card has no OpenPGP application")]
    NoApplication,
    /// Data from the card that does not parse.
    #[error("malformed {what} ({tag:04X}) from the card: {reason}")]
    Malformed {
        /// Which data object.
        what: &'static str,
        /// Its tag.
        tag: u16,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A caller's value the card cannot take (too long, not ISO 8859-1, …).
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// Which value.
        what: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// The card went away or the reader failed during `operation`.
    #[error("transport failure during {operation}")]
    Transport {
        /// The command under way.
        operation: Operation,
        /// The transport's error.
        #[source]
        source: keystation_core::Error,
    },
    /// Anything else from keystation-core (APDU encoding, key validation, …).
    #[error(transparent)]
    Core(keystation_core::Error),
}

impl Error {
    /// Wraps a core error, keeping transport failures apart with the operation.
    pub(crate) fn from_core(operation: Operation, error: keystation_core::Error) -> Self {
        if error.transport_failure().is_some() {
            Self::Transport { operation, source: error }
        } else {
            Self::Core(error)
        }
    }

    /// The status word the card answered, where the error came from one.
    pub fn status(&self) -> Option<StatusWord> {
        match self {
            Self::Card { status, .. } => Some(*status),
            Self::SecurityStatusNotSatisfied { .. } => {
                Some(StatusWord::SECURITY_STATUS_NOT_SATISFIED)
            }
            Self::PinBlocked(_) => Some(StatusWord::AUTH_METHOD_BLOCKED),
            Self::WrongPin { retries, .. } => Some(StatusWord(0x63C0 | u16::from(*retries & 0x0F))),
            Self::Terminated => Some(StatusWord::SELECTED_FILE_TERMINATED),
            Self::NoApplication => Some(StatusWord::NOT_FOUND),
            _ => None,
        }
    }

    pub(crate) fn malformed(what: &'static str, tag: u16, reason: &'static str) -> Self {
        Self::Malformed { what, tag, reason }
    }
}

impl From<keystation_core::Error> for Error {
    fn from(error: keystation_core::Error) -> Self {
        Self::Core(error)
    }
}

/// Maps onto core's error for the [`Signer`](keystation_core::keygen::Signer) and
/// [`KeyGen`](keystation_core::KeyGen) contracts: card answers become
/// [`Status`](keystation_core::Error::Status), refusals become
/// [`UnsupportedAlgorithm`](keystation_core::Error::UnsupportedAlgorithm) /
/// [`UnsupportedPolicy`](keystation_core::Error::UnsupportedPolicy).
impl From<Error> for keystation_core::Error {
    fn from(error: Error) -> Self {
        match error {
            Error::Transport { source, .. } | Error::Core(source) => source,
            Error::UnsupportedAlgorithm { algorithm, .. } => Self::UnsupportedAlgorithm(algorithm),
            Error::UnsupportedFeature(_) => Self::UnsupportedPolicy,
            // Core has no "malformed card data" variant it exports a fault for; the closest
            // is the data object that could not be found in usable form.
            Error::Malformed { tag, .. } => Self::MissingDataObject { tag: u32::from(tag) },
            Error::PinLength { .. } | Error::InvalidInput { .. } => {
                Self::Status(StatusWord::WRONG_LENGTH)
            }
            other => Self::Status(other.status().unwrap_or(StatusWord::NO_PRECISE_DIAGNOSIS)),
        }
    }
}
