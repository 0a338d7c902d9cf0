//! `keystation card …`: the readers PC/SC knows and the cards in them.

use std::io::Write;

use clap::Subcommand;

use crate::Error;
use crate::config::Settings;

/// `keystation card …`
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum CardCommand {
    /// List PC/SC readers and the cards in them (honours --reader).
    List,
}

/// Runs a `card` command.
pub fn run(command: &CardCommand, settings: &Settings, out: &mut dyn Write) -> Result<(), Error> {
    match command {
        CardCommand::List => keystation_cards::list(settings.reader.as_deref(), out)?,
    }
    Ok(())
}
