//! [`Error`]: the PC/SC return codes (PC/SC part 5 §2.2 "Return codes"; the values of
//! pcsc-lite's `pcsclite.h`), the client's one error type.

/// Declares the error enum, its decoding from a raw code and its messages in one table.
macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = $value:literal, $text:literal;)*) => {
        /// A PC/SC return code other than `SCARD_S_SUCCESS`, as pcscd sends it in a reply's
        /// `rv` field or as this client produces it (`SCARD_E_NO_SERVICE` when the socket
        /// cannot be reached, `SCARD_F_COMM_ERROR` for a broken or malformed exchange).
        ///
        /// The variant names are the `pcsc` crate's, so that `crate::sys` can switch.
        #[allow(clippy::enum_variant_names)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u32)]
        #[non_exhaustive]
        pub(crate) enum Error {
            $($(#[$doc])* $name = $value,)*
        }

        impl Error {
            /// The error for a raw code; `None` for one this table does not know.
            fn known(code: u32) -> Option<Self> {
                match code {
                    $($value => Some(Self::$name),)*
                    _ => None,
                }
            }

            /// What the code means.
            fn text(self) -> &'static str {
                match self {
                    $(Self::$name => $text,)*
                }
            }
        }
    };
}

codes! {
    /// `SCARD_F_INTERNAL_ERROR`.
    InternalError = 0x8010_0001, "internal consistency check failed";
    /// `SCARD_E_CANCELLED` (`SCardCancel`).
    Cancelled = 0x8010_0002, "the action was cancelled";
    /// `SCARD_E_INVALID_HANDLE`.
    InvalidHandle = 0x8010_0003, "the handle is not valid";
    /// `SCARD_E_INVALID_PARAMETER`.
    InvalidParameter = 0x8010_0004, "a parameter could not be interpreted";
    /// `SCARD_E_INVALID_TARGET`.
    InvalidTarget = 0x8010_0005, "invalid registry start-up information";
    /// `SCARD_E_NO_MEMORY`.
    NoMemory = 0x8010_0006, "not enough memory";
    /// `SCARD_F_WAITED_TOO_LONG`.
    WaitedTooLong = 0x8010_0007, "an internal timeout expired";
    /// `SCARD_E_INSUFFICIENT_BUFFER`.
    InsufficientBuffer = 0x8010_0008, "the data buffer is too small";
    /// `SCARD_E_UNKNOWN_READER`.
    UnknownReader = 0x8010_0009, "no reader of that name";
    /// `SCARD_E_TIMEOUT`.
    Timeout = 0x8010_000A, "the timeout expired";
    /// `SCARD_E_SHARING_VIOLATION`.
    SharingViolation = 0x8010_000B, "another connection holds the card";
    /// `SCARD_E_NO_SMARTCARD`.
    NoSmartcard = 0x8010_000C, "no card in the reader";
    /// `SCARD_E_UNKNOWN_CARD`.
    UnknownCard = 0x8010_000D, "unknown card type";
    /// `SCARD_E_CANT_DISPOSE`.
    CantDispose = 0x8010_000E, "the card cannot be disposed of as requested";
    /// `SCARD_E_PROTO_MISMATCH`.
    ProtoMismatch = 0x8010_000F, "the requested protocols are not available";
    /// `SCARD_E_NOT_READY`.
    NotReady = 0x8010_0010, "the reader or card is not ready";
    /// `SCARD_E_INVALID_VALUE`.
    InvalidValue = 0x8010_0011, "a value could not be interpreted";
    /// `SCARD_E_SYSTEM_CANCELLED`.
    SystemCancelled = 0x8010_0012, "cancelled by the system";
    /// `SCARD_F_COMM_ERROR`.
    CommError = 0x8010_0013, "internal communication error (with pcscd or the reader)";
    /// `SCARD_F_UNKNOWN_ERROR`; also any code this table does not know.
    UnknownError = 0x8010_0014, "unknown internal error";
    /// `SCARD_E_INVALID_ATR`.
    InvalidAtr = 0x8010_0015, "invalid ATR";
    /// `SCARD_E_NOT_TRANSACTED`.
    NotTransacted = 0x8010_0016, "the exchange with the card failed";
    /// `SCARD_E_READER_UNAVAILABLE`.
    ReaderUnavailable = 0x8010_0017, "the reader is not available";
    /// `SCARD_P_SHUTDOWN`.
    Shutdown = 0x8010_0018, "the operation was aborted for shutdown";
    /// `SCARD_E_PCI_TOO_SMALL`.
    PciTooSmall = 0x8010_0019, "the PCI receive buffer is too small";
    /// `SCARD_E_READER_UNSUPPORTED`.
    ReaderUnsupported = 0x8010_001A, "reader driver not supported";
    /// `SCARD_E_DUPLICATE_READER`.
    DuplicateReader = 0x8010_001B, "duplicate reader name";
    /// `SCARD_E_CARD_UNSUPPORTED`.
    CardUnsupported = 0x8010_001C, "card not supported";
    /// `SCARD_E_NO_SERVICE`.
    NoService = 0x8010_001D, "the smart-card service (pcscd) is not running";
    /// `SCARD_E_SERVICE_STOPPED`.
    ServiceStopped = 0x8010_001E, "the smart-card service (pcscd) stopped or refused us";
    /// `SCARD_E_UNSUPPORTED_FEATURE` (same value as `SCARD_E_UNEXPECTED`).
    UnsupportedFeature = 0x8010_001F, "feature not supported";
    /// `SCARD_E_ICC_INSTALLATION`.
    IccInstallation = 0x8010_0020, "no primary provider for the card";
    /// `SCARD_E_ICC_CREATEORDER`.
    IccCreateorder = 0x8010_0021, "unsupported creation order";
    /// `SCARD_E_DIR_NOT_FOUND`.
    DirNotFound = 0x8010_0023, "directory not found";
    /// `SCARD_E_FILE_NOT_FOUND`.
    FileNotFound = 0x8010_0024, "file not found";
    /// `SCARD_E_NO_DIR`.
    NoDir = 0x8010_0025, "not a directory";
    /// `SCARD_E_NO_FILE`.
    NoFile = 0x8010_0026, "not a file";
    /// `SCARD_E_NO_ACCESS`.
    NoAccess = 0x8010_0027, "access denied";
    /// `SCARD_E_WRITE_TOO_MANY`.
    WriteTooMany = 0x8010_0028, "the card is full";
    /// `SCARD_E_BAD_SEEK`.
    BadSeek = 0x8010_0029, "file pointer error";
    /// `SCARD_E_INVALID_CHV`.
    InvalidChv = 0x8010_002A, "the PIN is not valid";
    /// `SCARD_E_UNKNOWN_RES_MNG`.
    UnknownResMng = 0x8010_002B, "unrecognised resource-manager error";
    /// `SCARD_E_NO_SUCH_CERTIFICATE`.
    NoSuchCertificate = 0x8010_002C, "no such certificate";
    /// `SCARD_E_CERTIFICATE_UNAVAILABLE`.
    CertificateUnavailable = 0x8010_002D, "certificate unavailable";
    /// `SCARD_E_NO_READERS_AVAILABLE`.
    NoReadersAvailable = 0x8010_002E, "no readers";
    /// `SCARD_E_COMM_DATA_LOST`.
    CommDataLost = 0x8010_002F, "data lost in communication with the card";
    /// `SCARD_E_NO_KEY_CONTAINER`.
    NoKeyContainer = 0x8010_0030, "no such key container";
    /// `SCARD_E_SERVER_TOO_BUSY`.
    ServerTooBusy = 0x8010_0031, "the smart-card service is too busy";
    /// `SCARD_W_UNSUPPORTED_CARD`.
    UnsupportedCard = 0x8010_0065, "the card's configuration is not supported";
    /// `SCARD_W_UNRESPONSIVE_CARD`.
    UnresponsiveCard = 0x8010_0066, "the card does not answer the reset";
    /// `SCARD_W_UNPOWERED_CARD`.
    UnpoweredCard = 0x8010_0067, "the card is not powered";
    /// `SCARD_W_RESET_CARD`.
    ResetCard = 0x8010_0068, "the card was reset";
    /// `SCARD_W_REMOVED_CARD`.
    RemovedCard = 0x8010_0069, "the card was removed";
    /// `SCARD_W_SECURITY_VIOLATION`.
    SecurityViolation = 0x8010_006A, "access denied by security policy";
    /// `SCARD_W_WRONG_CHV`.
    WrongChv = 0x8010_006B, "wrong PIN";
    /// `SCARD_W_CHV_BLOCKED`.
    ChvBlocked = 0x8010_006C, "PIN blocked";
    /// `SCARD_W_EOF`.
    Eof = 0x8010_006D, "end of file";
    /// `SCARD_W_CANCELLED_BY_USER`.
    CancelledByUser = 0x8010_006E, "cancelled by the user";
    /// `SCARD_W_CARD_NOT_AUTHENTICATED`.
    CardNotAuthenticated = 0x8010_006F, "no PIN was presented";
}

impl Error {
    /// Turns a reply's `rv` into a result: `SCARD_S_SUCCESS` (0) is success, every other
    /// value an error; a value outside the table is `SCARD_F_UNKNOWN_ERROR`.
    pub(crate) fn check(rv: u32) -> Result<(), Self> {
        if rv == 0 {
            return Ok(());
        }
        Err(Self::known(rv).unwrap_or_else(|| {
            tracing::debug!(code = format_args!("0x{rv:08X}"), "unknown PC/SC return code");
            Self::UnknownError
        }))
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.text())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_are_unknown_error() {
        assert_eq!(Error::check(0), Ok(()));
        assert_eq!(Error::check(0x8010_0069), Err(Error::RemovedCard));
        assert_eq!(Error::RemovedCard as u32, 0x8010_0069);
        assert_eq!(Error::check(0x8010_0022), Err(Error::UnknownError));
        assert_eq!(Error::check(7), Err(Error::UnknownError));
        assert_eq!(Error::NoService.to_string(), "the smart-card service (pcscd) is not running");
    }
}
