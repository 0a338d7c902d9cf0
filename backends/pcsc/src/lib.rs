//! keystation-pcsc: the PC/SC transport.
//!
//! PC/SC ("Interoperability Specification for ICCs and Personal Computer Systems", part 5:
//! the ICC Resource Manager) is how applications reach smart-card readers; on Linux and the
//! BSDs its implementation is pcsc-lite and its daemon pcscd. This crate wraps the `SCard*`
//! functions that keystation needs behind keystation-core's types:
//!
//! * [`PcscContext`]: `SCardEstablishContext`; [`readers`](PcscContext::readers) lists the
//!   readers with card presence and ATR without touching the cards;
//! * [`ReaderMonitor`]: `SCardGetStatusChange` with the `\\?PnP?\Notification`
//!   pseudo-reader, turned into typed [`ReaderEvent`]s (card inserted/removed, reader
//!   added/removed, timeout);
//! * [`PcscCard`]: `SCardConnect` in [`ShareMode::Exclusive`] or [`ShareMode::Shared`],
//!   implementing [`keystation_core::Card`] (`SCardTransmit`, `SCardBeginTransaction`,
//!   `SCardEndTransaction`, and `SCardReconnect` after a reset).
//!
//! Every error is a [`keystation_core::Error`]; PC/SC return codes become
//! [`TransportFailure`](keystation_core::TransportFailure) kinds (`SCARD_E_NO_SERVICE` →
//! `ServiceUnavailable`, `SCARD_W_REMOVED_CARD` → `CardRemoved`, …) with the code kept as
//! the error's source. No type of the underlying `pcsc` crate appears in this crate's API.
//!
//! pcsc-lite's client library connects to `$PCSCLITE_CSOCK_NAME` when that is set, and to
//! `/run/pcscd/pcscd.comm` otherwise; `scripts/with-pcscd` uses this to run tests against a
//! private pcscd.
//!
//! # Two implementations of the `SCard*` calls
//!
//! With the cargo feature `libpcsclite` (the default) the calls go through the `pcsc`
//! crate to pcsc-lite's C library, `libpcsclite.so`. Without it they go through this
//! crate's own client of pcscd's socket protocol (`pcscd`, protocol 4.4 and 4.5), which
//! needs no C library: a statically linked keystation then needs only pcscd beside it.
//! `sys` picks one; the rest of the crate names only `sys::`.

mod card;
mod context;
mod error;
mod monitor;
#[cfg_attr(feature = "libpcsclite", allow(dead_code))]
mod pcscd;

/// The `SCard*` implementation in use: the `pcsc` crate over libpcsclite, or the pure-Rust
/// client of pcscd's socket ([`pcscd`]); both offer the same names.
mod sys {
    #[cfg(feature = "libpcsclite")]
    pub(crate) use pcsc::*;

    #[cfg(not(feature = "libpcsclite"))]
    pub(crate) use crate::pcscd::*;
}

/// Entry points for the fuzz crate (`fuzz/`); not part of the API.
#[doc(hidden)]
pub mod fuzzing {
    /// Runs the pure-Rust pcscd client's reply decoders (pcsc-lite `winscard_msg.h`
    /// structs and the `READER_STATE` array of `eventhandler.h`) and its
    /// `SCardGetStatusChange` evaluation over arbitrary bytes; panics on a broken
    /// invariant. The first byte picks the reply.
    pub fn pcscd_replies(data: &[u8]) {
        crate::pcscd::fuzz_replies(data);
    }
}

pub use card::{Disposition, PcscCard, ShareMode};
pub use context::{PcscContext, ReaderInfo};
pub use monitor::{ReaderEvent, ReaderMonitor};
