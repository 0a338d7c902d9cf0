//! The crate's one error type, naming the command that failed and the card's answer.

use keystation_core::StatusWord;
use keystation_core::key::KeyAlgorithm;

/// The PIV application's reference data (SP 800-73-4 part 1 §3.1, key references `80`
/// and `81`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PinKind {
    /// The PIV Card Application PIN (`80`).
    Pin,
    /// The PIN Unblocking Key (`81`).
    Puk,
}

impl core::fmt::Display for PinKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Pin => "PIN",
            Self::Puk => "PUK",
        })
    }
}

/// What the client was doing when something failed: the command of SP 800-73-4 part 2
/// §3 or of Yubico's PIV extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// SELECT of the PIV application (part 2 §3.1.1).
    Select,
    /// GET DATA of a data object (part 2 §3.1.2).
    GetData(u32),
    /// PUT DATA of a data object (part 2 §3.3.1).
    PutData(u32),
    /// VERIFY (part 2 §3.2.1).
    Verify(PinKind),
    /// CHANGE REFERENCE DATA (part 2 §3.2.2).
    ChangeReference(PinKind),
    /// RESET RETRY COUNTER (part 2 §3.2.3).
    ResetRetryCounter,
    /// GENERAL AUTHENTICATE with the management key `9B` (part 2 §3.2.4).
    AuthenticateManagementKey,
    /// GENERAL AUTHENTICATE with a key slot: sign, decrypt or key agreement.
    PrivateKey(u8),
    /// GENERATE ASYMMETRIC KEY PAIR (part 2 §3.3.2).
    Generate(u8),
    /// Yubico IMPORT KEY (`FE`).
    ImportKey(u8),
    /// Yubico SET MANAGEMENT KEY (`FF`).
    SetManagementKey,
    /// Yubico GET VERSION (`FD`).
    GetVersion,
    /// Yubico GET SERIAL (`F8`).
    GetSerial,
    /// Yubico GET METADATA (`F7`).
    Metadata(u8),
    /// Yubico ATTEST (`F9`).
    Attest(u8),
    /// Yubico RESET (`FB`).
    Reset,
}

impl core::fmt::Display for Operation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Select => f.write_str("SELECT PIV"),
            Self::GetData(tag) => write!(f, "GET DATA {tag:06X}"),
            Self::PutData(tag) => write!(f, "PUT DATA {tag:06X}"),
            Self::Verify(pin) => write!(f, "VERIFY {pin}"),
            Self::ChangeReference(pin) => write!(f, "CHANGE REFERENCE DATA {pin}"),
            Self::ResetRetryCounter => f.write_str("RESET RETRY COUNTER"),
            Self::AuthenticateManagementKey => {
                f.write_str("GENERAL AUTHENTICATE with the management key")
            }
            Self::PrivateKey(slot) => write!(f, "GENERAL AUTHENTICATE with slot {slot:02X}"),
            Self::Generate(slot) => write!(f, "GENERATE ASYMMETRIC KEY PAIR in slot {slot:02X}"),
            Self::ImportKey(slot) => write!(f, "IMPORT KEY into slot {slot:02X}"),
            Self::SetManagementKey => f.write_str("SET MANAGEMENT KEY"),
            Self::GetVersion => f.write_str("GET VERSION"),
            Self::GetSerial => f.write_str("GET SERIAL"),
            Self::Metadata(reference) => write!(f, "GET METADATA {reference:02X}"),
            Self::Attest(slot) => write!(f, "ATTEST slot {slot:02X}"),
            Self::Reset => f.write_str("RESET PIV"),
        }
    }
}

/// Everything that can go wrong talking to a PIV card.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A wrong PIN or PUK: the card counted a failed try (`63Cx`, part 2 §3.2.1).
    #[error("wrong {pin}: {tries_left} tries left")]
    WrongPin {
        /// Which reference data.
        pin: PinKind,
        /// Tries left, as the card reported them.
        tries_left: u8,
    },
    /// The PIN or PUK retry counter is at zero (`6983`, or `63C0` as YubiKeys answer).
    #[error("the {0} is blocked")]
    PinBlocked(PinKind),
    /// A PIN or PUK that cannot be valid: PIV reference data are 6–8 bytes, none of them
    /// `FF` (part 2 §2.4.3).
    #[error("the {0} must be 6 to 8 bytes long, without FF bytes")]
    PinFormat(PinKind),
    /// The card rejected the management key (`6982` to the mutual authentication).
    #[error("management key authentication failed: the card rejected the key")]
    WrongManagementKey,
    /// The card's answer to our challenge was wrong: it does not hold the same key.
    #[error("management key authentication failed: the card's response is wrong")]
    CardAuthenticationFailed,
    /// The command needs the PIN verified, or the management key authenticated (`6982`).
    #[error("{operation} needs a verified PIN or an authenticated management key (6982)")]
    SecurityStatusNotSatisfied {
        /// The refused command.
        operation: Operation,
    },
    /// The card does not implement this Yubico extension (`6D00`/`6A81`), e.g. a
    /// standard PIV card.
    #[error("the card does not support {operation} (not a YubiKey, or firmware too old)")]
    Unsupported {
        /// The command the card does not know.
        operation: Operation,
    },
    /// The algorithm is not available on this card, or not in this slot. Reported before
    /// anything is sent.
    #[error("{algorithm} is not supported here: {reason}")]
    UnsupportedAlgorithm {
        /// The algorithm asked for.
        algorithm: KeyAlgorithm,
        /// Why not.
        reason: &'static str,
    },
    /// The slot holds no key (`6A88`, or `6A80`/`6A82` as YubiKeys answer for an empty
    /// slot in some commands).
    #[error("slot {slot:02X} holds no key (card returned {status})")]
    NoKey {
        /// Key reference.
        slot: u8,
        /// The card's status word.
        status: StatusWord,
    },
    /// The card has no PIV application (`6A82` to SELECT with both AIDs).
    #[error("the card has no PIV application")]
    NoApplication,
    /// The card answered a status other than success.
    #[error("card returned {status} for {operation}")]
    Card {
        /// The command.
        operation: Operation,
        /// The card's status word.
        status: StatusWord,
    },
    /// Data from the card (or handed to a parser) that does not parse.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which data.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A caller's value the card cannot take.
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// Which value.
        what: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// The operating system's random source failed.
    #[error("the random source failed")]
    Random,
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
            Self::Card { status, .. } | Self::NoKey { status, .. } => Some(*status),
            Self::SecurityStatusNotSatisfied { .. } | Self::WrongManagementKey => {
                Some(StatusWord::SECURITY_STATUS_NOT_SATISFIED)
            }
            Self::PinBlocked(_) => Some(StatusWord::AUTH_METHOD_BLOCKED),
            Self::WrongPin { tries_left, .. } => {
                Some(StatusWord(0x63C0 | u16::from(*tries_left & 0x0F)))
            }
            Self::Unsupported { .. } => Some(StatusWord::INS_NOT_SUPPORTED),
            Self::NoApplication => Some(StatusWord::NOT_FOUND),
            _ => None,
        }
    }

    pub(crate) fn malformed(what: &'static str, reason: &'static str) -> Self {
        Self::Malformed { what, reason }
    }

    pub(crate) fn invalid(what: &'static str, reason: &'static str) -> Self {
        Self::InvalidInput { what, reason }
    }
}

impl From<keystation_core::Error> for Error {
    fn from(error: keystation_core::Error) -> Self {
        Self::Core(error)
    }
}

/// Maps onto core's error for the [`Signer`](keystation_core::keygen::Signer) and
/// [`KeyGen`](keystation_core::KeyGen) contracts.
impl From<Error> for keystation_core::Error {
    fn from(error: Error) -> Self {
        match error {
            Error::Transport { source, .. } | Error::Core(source) => source,
            Error::UnsupportedAlgorithm { algorithm, .. } => Self::UnsupportedAlgorithm(algorithm),
            Error::Random => Self::RandomSourceFailed,
            Error::PinFormat(_) | Error::InvalidInput { .. } | Error::Malformed { .. } => {
                Self::Status(StatusWord::INCORRECT_DATA)
            }
            other => Self::Status(other.status().unwrap_or(StatusWord::NO_PRECISE_DIAGNOSIS)),
        }
    }
}
