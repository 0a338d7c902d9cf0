//! Test-only hosts for card applets that nobody on keystation wrote: Nitrokey's `opcard`
//! (OpenPGP card 3.4) and `piv-authenticator` (PIV), each inserted into pcscd's vpcd
//! virtual reader so that keystation's tests, gpg and OpenSC can talk to them.
//!
//! The pieces: [`platform`] runs the applets' trussed platform in memory, [`card`] adds the
//! card transport (chaining, GET RESPONSE, ATR), [`applets`] wraps the two applets, [`vpcd`]
//! speaks the vpcd protocol, and [`cli`] is the binaries' `main`.
//!
//! This crate is its own workspace and never a dependency of keystation (opcard is
//! LGPL-3.0-only); see README.md.

pub mod applets;
pub mod card;
pub mod cli;
pub mod platform;
pub mod vpcd;

/// Everything that ends a peer early.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad command line or environment.
    #[error("{0}")]
    Usage(String),
    /// Nothing accepted the connection to vpcd in time.
    #[error(
        "cannot connect to vpcd at 127.0.0.1:{port} (is pcscd with the vpcd driver running?): {source}"
    )]
    Connect {
        /// The port tried.
        port: u16,
        /// The last connection error.
        source: std::io::Error,
    },
    /// The vpcd connection failed after it was up.
    #[error("vpcd connection: {0}")]
    Vpcd(std::io::Error),
    /// vpcd sent a control byte outside the protocol.
    #[error("vpcd sent the unknown control byte {0:#04x}")]
    UnknownControl(u8),
    /// The SIGTERM/SIGINT handlers could not be installed.
    #[error("installing signal handlers: {0}")]
    Signal(std::io::Error),
}
