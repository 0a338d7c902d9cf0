//! [`PcscContext`]: the connection to the PC/SC resource manager (pcscd), reader listing
//! and card connections.

use std::ffi::CString;
use std::time::Duration;

use keystation_core::{Error, TransportFailure};

use crate::card::{PcscCard, ShareMode};
use crate::error::{Call, PcscFailure, ServiceMissing};
use crate::monitor::ReaderMonitor;
use crate::sys;

/// A reader and what is in it, as [`PcscContext::readers`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReaderInfo {
    /// The reader name as PC/SC reports it (pass it to [`PcscContext::connect`]).
    pub name: String,
    /// Whether a card is in the reader (`SCARD_STATE_PRESENT`).
    pub card_present: bool,
    /// The card's Answer To Reset (ISO/IEC 7816-3 §8), when a card is present and answered.
    pub atr: Option<Vec<u8>>,
    /// Whether another application is connected to the card (`SCARD_STATE_INUSE`).
    pub in_use: bool,
    /// Whether another application holds the card exclusively (`SCARD_STATE_EXCLUSIVE`);
    /// connecting then fails with
    /// [`TransportFailure::SharingViolation`](keystation_core::TransportFailure).
    pub exclusive: bool,
    /// Whether the card is present but did not answer the reset (`SCARD_STATE_MUTE`).
    pub mute: bool,
}

impl ReaderInfo {
    /// Reads a reader's state out of a `SCARD_READERSTATE` that `SCardGetStatusChange`
    /// filled in.
    pub(crate) fn from_state(state: &sys::ReaderState) -> Self {
        let flags = state.event_state();
        let card_present = flags.contains(sys::State::PRESENT);
        let atr = state.atr();
        Self {
            name: state.name().to_string_lossy().into_owned(),
            card_present,
            atr: (card_present && !atr.is_empty()).then(|| atr.to_vec()),
            in_use: flags.contains(sys::State::INUSE),
            exclusive: flags.contains(sys::State::EXCLUSIVE),
            mute: flags.contains(sys::State::MUTE),
        }
    }
}

/// A context with the PC/SC resource manager (`SCardEstablishContext`, PC/SC part 5 §3.1.3;
/// pcsc-lite talks to pcscd over its socket, `$PCSCLITE_CSOCK_NAME` or
/// `/run/pcscd/pcscd.comm`).
///
/// One context can list readers and open any number of cards. pcsc-lite serialises the
/// calls made on one context, so [`monitor`](Self::monitor) establishes its own context:
/// a long `SCardGetStatusChange` wait never delays a card's commands.
#[derive(Clone)]
pub struct PcscContext {
    context: sys::Context,
}

impl PcscContext {
    /// Establishes a context in the user scope (`SCARD_SCOPE_USER`).
    ///
    /// Fails with [`TransportFailure::ServiceUnavailable`] when pcscd is not running
    /// (`SCARD_E_NO_SERVICE`).
    pub fn establish() -> Result<Self, Error> {
        let context = establish_raw()?;
        Ok(Self { context })
    }

    /// Lists the readers with their card state and ATR; an empty list when there are
    /// no readers (`SCARD_E_NO_READERS_AVAILABLE` is not an error here).
    ///
    /// Uses `SCardListReaders` and one `SCardGetStatusChange` with a zero timeout and
    /// every reader in `SCARD_STATE_UNAWARE`, which reports the current state without
    /// connecting: a card that another application is using is not disturbed.
    pub fn readers(&self) -> Result<Vec<ReaderInfo>, Error> {
        // A reader can disappear between the listing and the status query; list again.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut states = list_reader_states(&self.context)?;
            if states.is_empty() {
                return Ok(Vec::new());
            }
            match query_states(&self.context, &mut states) {
                Ok(()) => {
                    return Ok(states
                        .iter()
                        .filter(|s| !is_gone(s.event_state()))
                        .map(ReaderInfo::from_state)
                        .collect());
                }
                Err(failure)
                    if failure.kind() == TransportFailure::UnknownReader && attempts < 3 =>
                {
                    continue;
                }
                Err(failure) => return Err(failure.into()),
            }
        }
    }

    /// Connects to the card in `reader` (`SCardConnect` with T=0 or T=1, whichever the
    /// card offers).
    ///
    /// [`ShareMode::Exclusive`] keeps every other application away from the card while
    /// the connection lasts; [`ShareMode::Shared`] lets them in between transactions.
    ///
    /// Errors: [`TransportFailure::NoCard`] without a card,
    /// [`TransportFailure::UnknownReader`] for a reader that does not exist,
    /// [`TransportFailure::SharingViolation`] when another application holds the card
    /// exclusively (or, for an exclusive connect, is connected at all).
    pub fn connect(&self, reader: &str, mode: ShareMode) -> Result<PcscCard, Error> {
        PcscCard::connect(&self.context, reader, mode)
    }

    /// Starts watching the readers for card and reader changes; see
    /// [`ReaderMonitor::wait_for_change`]. The monitor has a context of its own.
    pub fn monitor(&self) -> Result<ReaderMonitor, Error> {
        ReaderMonitor::new(establish_raw()?)
    }
}

impl core::fmt::Debug for PcscContext {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PcscContext").finish_non_exhaustive()
    }
}

/// `SCardEstablishContext(SCARD_SCOPE_USER)`. Without pcscd the error names the socket
/// that was tried.
pub(crate) fn establish_raw() -> Result<sys::Context, Error> {
    match sys::Context::establish(sys::Scope::User).call("SCardEstablishContext") {
        Ok(context) => Ok(context),
        Err(failure) if failure.code == sys::Error::NoService => {
            Err(ServiceMissing { socket: crate::pcscd::socket_path(), failure }.into())
        }
        Err(failure) => Err(failure.into()),
    }
}

/// The reader names (`SCardListReaders`), each in a fresh `SCARD_READERSTATE` with
/// `SCARD_STATE_UNAWARE`.
pub(crate) fn list_reader_states(
    context: &sys::Context,
) -> Result<Vec<sys::ReaderState>, PcscFailure> {
    let names = match context.list_readers_owned() {
        Ok(names) => names,
        Err(sys::Error::NoReadersAvailable) => Vec::new(),
        Err(code) => return Err(PcscFailure::new("SCardListReaders", code)),
    };
    Ok(names.into_iter().map(|name| sys::ReaderState::new(name, sys::State::UNAWARE)).collect())
}

/// Fills in the current state of `states` without waiting (`SCardGetStatusChange` with a
/// zero timeout). A timeout means nothing differs from what `states` already holds.
pub(crate) fn query_states(
    context: &sys::Context,
    states: &mut [sys::ReaderState],
) -> Result<(), PcscFailure> {
    match context.get_status_change(Duration::ZERO, states) {
        Ok(()) | Err(sys::Error::Timeout) => Ok(()),
        Err(code) => Err(PcscFailure::new("SCardGetStatusChange", code)),
    }
}

/// Whether a reader state says the reader no longer exists (`SCARD_STATE_UNKNOWN`, or
/// `SCARD_STATE_IGNORE` which pcsc-lite sets for names it does not know).
pub(crate) fn is_gone(flags: sys::State) -> bool {
    flags.intersects(sys::State::UNKNOWN | sys::State::IGNORE)
}

/// A reader name as the C string PC/SC wants; a name with an interior NUL cannot name any
/// reader.
pub(crate) fn reader_cstring(reader: &str) -> Result<CString, Error> {
    CString::new(reader).map_err(|e| Error::transport_with(TransportFailure::UnknownReader, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_names_with_nul_are_unknown_readers() {
        let e = reader_cstring("bad\0name").err();
        assert_eq!(e.and_then(|e| e.transport_failure()), Some(TransportFailure::UnknownReader));
        assert!(reader_cstring("Yubico YubiKey OTP+FIDO+CCID 00 00").is_ok());
    }

    #[test]
    fn a_fresh_reader_state_reports_nothing_present() {
        let state = sys::ReaderState::new(c"Reader 00 00".to_owned(), sys::State::UNAWARE);
        let info = ReaderInfo::from_state(&state);
        assert_eq!(info.name, "Reader 00 00");
        assert!(!info.card_present && info.atr.is_none() && !info.in_use && !info.mute);
        assert!(is_gone(sys::State::UNKNOWN | sys::State::CHANGED));
        assert!(!is_gone(sys::State::EMPTY | sys::State::CHANGED));
    }
}
