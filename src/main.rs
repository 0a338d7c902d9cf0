//! keystation: identities on hardware keys.

use clap::Parser;

fn main() -> std::process::ExitCode {
    keystation::cli::run(keystation::cli::Cli::parse())
}
