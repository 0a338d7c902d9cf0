//! Mapping PC/SC return codes onto [`TransportFailure`] kinds.
//!
//! The codes are those of PC/SC part 5 ("ICC Resource Manager Definition") as pcsc-lite
//! returns them from its `SCard*` functions (`SCARD_E_*`, `SCARD_W_*`). Callers only ever
//! see [`keystation_core::Error::Transport`]; the PC/SC code travels along as the error's
//! source, as a private type, so that logs keep the exact cause.

use keystation_core::{Error, TransportFailure};

use crate::sys;

/// A failed PC/SC call: which `SCard*` function failed and the code it returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PcscFailure {
    /// The pcsc-lite function, e.g. `"SCardTransmit"`.
    pub(crate) call: &'static str,
    /// What it returned.
    pub(crate) code: sys::Error,
}

impl PcscFailure {
    pub(crate) fn new(call: &'static str, code: sys::Error) -> Self {
        Self { call, code }
    }

    /// The transport failure kind of this code.
    pub(crate) fn kind(&self) -> TransportFailure {
        kind_of(self.code)
    }

    /// Converts into the crate-independent error, keeping `self` as the source.
    pub(crate) fn into_error(self) -> Error {
        match self.code {
            sys::Error::InsufficientBuffer | sys::Error::PciTooSmall => {
                // Only transmit can report this and it turns it into `BufferTooSmall`
                // itself; anywhere else it is an internal failure.
                Error::transport_with(TransportFailure::Other, self)
            }
            _ => Error::transport_with(self.kind(), self),
        }
    }
}

impl core::fmt::Display for PcscFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} failed: {} (0x{:08X})", self.call, self.code, self.code as u32)
    }
}

impl std::error::Error for PcscFailure {}

impl From<PcscFailure> for Error {
    fn from(failure: PcscFailure) -> Self {
        failure.into_error()
    }
}

/// `SCardEstablishContext` found no pcscd (`SCARD_E_NO_SERVICE`): names the socket that
/// was tried, which both implementations take from `$PCSCLITE_CSOCK_NAME` or default to
/// `/run/pcscd/pcscd.comm`. The PC/SC failure is the source.
#[derive(Debug)]
pub(crate) struct ServiceMissing {
    /// The socket path tried.
    pub(crate) socket: std::path::PathBuf,
    /// The failed call.
    pub(crate) failure: PcscFailure,
}

impl core::fmt::Display for ServiceMissing {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "cannot reach pcscd at {} (is pcscd running? $PCSCLITE_CSOCK_NAME names another socket)",
            self.socket.display()
        )
    }
}

impl std::error::Error for ServiceMissing {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.failure)
    }
}

impl From<ServiceMissing> for Error {
    fn from(missing: ServiceMissing) -> Self {
        Error::transport_with(TransportFailure::ServiceUnavailable, missing)
    }
}

/// Extension to attach the failing function's name to a pcsc result.
pub(crate) trait Call<T> {
    /// Tags the error with the `SCard*` function that returned it.
    fn call(self, name: &'static str) -> Result<T, PcscFailure>;
}

impl<T> Call<T> for Result<T, sys::Error> {
    fn call(self, name: &'static str) -> Result<T, PcscFailure> {
        self.map_err(|code| PcscFailure::new(name, code))
    }
}

/// The [`TransportFailure`] kind of a PC/SC return code.
///
/// | PC/SC code | kind |
/// |---|---|
/// | `SCARD_E_NO_SERVICE`, `SCARD_E_SERVICE_STOPPED`, `SCARD_P_SHUTDOWN` | `ServiceUnavailable` |
/// | `SCARD_E_UNKNOWN_READER`, `SCARD_E_READER_UNAVAILABLE`, `SCARD_E_NO_READERS_AVAILABLE` | `UnknownReader` |
/// | `SCARD_E_NO_SMARTCARD` | `NoCard` |
/// | `SCARD_W_REMOVED_CARD` | `CardRemoved` |
/// | `SCARD_W_RESET_CARD` | `CardReset` |
/// | `SCARD_E_SHARING_VIOLATION` | `SharingViolation` |
/// | `SCARD_W_UNRESPONSIVE_CARD`, `SCARD_W_UNPOWERED_CARD` | `Unresponsive` |
/// | `SCARD_E_TIMEOUT` | `Timeout` |
/// | anything else | `Other` |
pub(crate) fn kind_of(code: sys::Error) -> TransportFailure {
    use sys::Error as E;
    match code {
        E::NoService | E::ServiceStopped | E::Shutdown => TransportFailure::ServiceUnavailable,
        E::UnknownReader | E::ReaderUnavailable | E::NoReadersAvailable => {
            TransportFailure::UnknownReader
        }
        E::NoSmartcard => TransportFailure::NoCard,
        E::RemovedCard => TransportFailure::CardRemoved,
        E::ResetCard => TransportFailure::CardReset,
        E::SharingViolation => TransportFailure::SharingViolation,
        E::UnresponsiveCard | E::UnpoweredCard => TransportFailure::Unresponsive,
        E::Timeout => TransportFailure::Timeout,
        _ => TransportFailure::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn codes_map_to_the_documented_kinds() {
        use sys::Error as E;
        let table = [
            (E::NoService, TransportFailure::ServiceUnavailable),
            (E::ServiceStopped, TransportFailure::ServiceUnavailable),
            (E::UnknownReader, TransportFailure::UnknownReader),
            (E::ReaderUnavailable, TransportFailure::UnknownReader),
            (E::NoSmartcard, TransportFailure::NoCard),
            (E::RemovedCard, TransportFailure::CardRemoved),
            (E::ResetCard, TransportFailure::CardReset),
            (E::SharingViolation, TransportFailure::SharingViolation),
            (E::UnresponsiveCard, TransportFailure::Unresponsive),
            (E::Timeout, TransportFailure::Timeout),
            (E::CommError, TransportFailure::Other),
            (E::InvalidHandle, TransportFailure::Other),
        ];
        for (code, kind) in table {
            assert_eq!(kind_of(code), kind, "{code:?}");
        }
    }

    #[test]
    fn the_pcsc_code_is_kept_as_the_source() {
        let error: Error = PcscFailure::new("SCardTransmit", sys::Error::CommError).into();
        assert_eq!(error.transport_failure(), Some(TransportFailure::Other));
        let source = error.source().map(ToString::to_string).unwrap_or_default();
        assert!(source.starts_with("SCardTransmit failed: "), "{source}");
        assert!(source.ends_with("(0x80100013)"), "{source}");
    }

    #[test]
    fn a_missing_pcscd_names_the_socket() {
        let error: Error = ServiceMissing {
            socket: "/nowhere/pcscd.comm".into(),
            failure: PcscFailure::new("SCardEstablishContext", sys::Error::NoService),
        }
        .into();
        assert_eq!(error.transport_failure(), Some(TransportFailure::ServiceUnavailable));
        let shown = error.to_string();
        let source = error.source().map(ToString::to_string).unwrap_or_default();
        assert!(
            shown.contains("/nowhere/pcscd.comm") || source.contains("/nowhere/pcscd.comm"),
            "{shown} / {source}"
        );
    }

    #[test]
    fn call_tags_errors_with_the_function_name() {
        let r: Result<(), sys::Error> = Err(sys::Error::NoSmartcard);
        assert_eq!(
            r.call("SCardConnect"),
            Err(PcscFailure::new("SCardConnect", sys::Error::NoSmartcard))
        );
    }
}
