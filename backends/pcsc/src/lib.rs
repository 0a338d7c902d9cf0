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

mod card;
mod context;
mod error;
mod monitor;

pub use card::{Disposition, PcscCard, ShareMode};
pub use context::{PcscContext, ReaderInfo};
pub use monitor::{ReaderEvent, ReaderMonitor};
