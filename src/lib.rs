//! The keystation binary's library half: the command line, configuration loading and
//! logging, and the wiring from a command's flags to the library crates that do the work.
//! `main.rs` only parses the command line and calls [`cli::run`]. See ARCHITECTURE.md.

pub mod cli;
pub mod config;
mod error;
pub mod logging;

pub use error::Error;
