//! The keystation binary's library half: configuration, CLI, logging and the services the
//! binary runs. `main.rs` only parses the command line and calls into here.

#[cfg(feature = "pcsc")]
pub mod acquire;
#[cfg(feature = "pcsc")]
pub mod cards;
pub mod cli;
pub mod config;
mod error;
#[cfg(feature = "kube")]
pub mod kube;
pub mod logging;
#[cfg(feature = "piv")]
pub mod piv_cmd;
#[cfg(feature = "grpc")]
pub mod proto;
#[cfg(feature = "openpgp")]
pub mod provision;
#[cfg(feature = "softcard")]
pub mod simulate;
pub mod station;

pub use error::Error;
