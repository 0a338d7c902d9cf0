//! The command line: the subcommands, their flags, and [`run`], which `main` calls.
//!
//! Each command has a module here that turns its flags and the loaded configuration into
//! the typed options of the library crate that does the work (`keystation-provision`,
//! `keystation-piv-ops`, `keystation-kube`, `keystation-station`, `keystation-cards`) and
//! prints the result. No clap type leaves this module, and no command's module uses
//! another's: what several share lives in [`options`] and [`profile`].

#[cfg(feature = "authority")]
pub mod authority;
#[cfg(any(feature = "iid-aws", feature = "iid-gcp", feature = "iid-azure"))]
pub mod ca;
#[cfg(feature = "pcsc")]
pub mod card;
#[cfg(feature = "kube")]
pub mod kube;
pub mod options;
#[cfg(feature = "piv")]
pub mod piv;
#[cfg(feature = "openpgp")]
mod profile;
#[cfg(feature = "openpgp")]
pub mod provision;
#[cfg(feature = "softcard")]
pub mod simulate;
#[cfg(feature = "grpc")]
pub mod station;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use self::options::{
    AuthorityOptions, CardSearchOptions, CommonOptions, FlagGroups, ProfileOptions, StationOptions,
};
use crate::Error;
use crate::config::{self, show::ShowFormat};

/// Exit status for a configuration error (also what clap uses for a usage error).
pub const EXIT_CONFIG: u8 = 2;
/// Exit status for a command that failed.
pub const EXIT_FAILURE: u8 = 1;

/// keystation: provision identities onto smart cards.
#[derive(Debug, Parser)]
#[command(
    name = "keystation",
    version,
    about = "Provision identities onto smart cards (OpenPGP card, PIV) over raw APDUs",
    after_help = "Configuration, lowest to highest precedence: built-in defaults, the TOML file \
                  (--config or KEYSTATION_CONFIG), ./.env, ./.env.local, the environment, \
                  command-line options. `keystation config show` prints each value and its \
                  source.",
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// The flags every command takes.
    #[command(flatten)]
    pub common: CommonOptions,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Work with cards and readers.
    #[cfg(feature = "pcsc")]
    #[command(subcommand)]
    Card(card::CardCommand),
    /// Plug a software YubiKey 5 into pcscd's vpcd reader and serve it until stopped
    /// (Ctrl-C or SIGTERM). For rehearsals and tests: its keys live in memory, unprotected.
    #[cfg(feature = "softcard")]
    Simulate(simulate::SimulateArgs),
    /// Run as a provisioning station: take jobs from defguard over gRPC (--grpc, --token,
    /// --id, --grpc-package, --poll-interval) until SIGTERM or Ctrl-C.
    #[cfg(feature = "grpc")]
    Station(station::StationArgs),
    /// Provision one card now: reset its OpenPGP application, generate the keys on it,
    /// make the card-signed OpenPGP certificate, set the PINs (OpenPGP profile options),
    /// and print the certificate, SSH key, serial, fingerprints and any new PINs.
    #[cfg(feature = "openpgp")]
    Provision(provision::ProvisionArgs),
    /// Work with the PIV application: keys, certificates, attestation, reset (honours
    /// --reader).
    #[cfg(feature = "piv")]
    #[command(subcommand)]
    Piv(piv::PivCommand),
    /// The certificate authority: step-ca's API, its provisioners, and the job queue for
    /// stations (init, serve, provisioner, admin, job).
    #[cfg(feature = "authority")]
    #[command(subcommand)]
    Authority(authority::AuthorityCommand),
    /// kubectl through a local proxy that authenticates with a key on the card.
    #[cfg(feature = "kube")]
    #[command(subcommand)]
    Kube(kube::KubeCommand),
    /// A client of an authority: the token a cloud instance presents (token).
    #[cfg(any(feature = "iid-aws", feature = "iid-gcp", feature = "iid-azure"))]
    #[command(subcommand)]
    Ca(ca::CaCommand),
}

/// `keystation config …`
#[derive(Debug, Subcommand)]
#[non_exhaustive]
// `show` carries every flag group; the value is parsed once per process, so its size does
// not matter.
#[allow(clippy::large_enum_variant)]
pub enum ConfigCommand {
    /// Print every setting, its effective value and where it came from (secrets redacted).
    /// Takes every command's configuration flags, to show what a command would run with.
    Show {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
        format: ShowFormat,
        /// The station's flags.
        #[command(flatten)]
        station: StationOptions,
        /// The card search flags.
        #[command(flatten)]
        search: CardSearchOptions,
        /// The OpenPGP profile flags.
        #[command(flatten)]
        profile: ProfileOptions,
        /// The authority's flags.
        #[command(flatten)]
        authority: AuthorityOptions,
    },
    /// Print a config file with every key commented out, its meaning and its default
    /// (e.g. `keystation config template > /etc/keystation/station.toml`).
    Template,
}

impl Cli {
    /// The command line's configuration layer: the common flags and those of the command.
    pub fn command_line(&self) -> Result<config::CommandLine, config::ConfigError> {
        let common = &self.common;
        match &self.command {
            Command::Config(ConfigCommand::Show {
                station, search, profile, authority, ..
            }) => {
                let groups = FlagGroups {
                    station: Some(station),
                    search: Some(search),
                    profile: Some(profile),
                    authority: Some(authority),
                };
                options::command_line(common, groups)
            }
            #[cfg(feature = "grpc")]
            Command::Station(args) => args.command_line(common),
            #[cfg(feature = "openpgp")]
            Command::Provision(args) => args.command_line(common),
            #[cfg(feature = "authority")]
            Command::Authority(command) => command.command_line(common),
            _ => options::command_line(common, FlagGroups::default()),
        }
    }
}

/// Runs the parsed command line against the real environment, writing command output to
/// stdout and errors to stderr. Returns the process exit status: 0 on success, 2 for a
/// configuration error, 1 when the command fails.
pub fn run(cli: Cli) -> ExitCode {
    let loaded = match cli.command_line().and_then(|layer| config::load(&layer)) {
        Ok(loaded) => loaded,
        Err(error) => {
            report(&Error::Config(error));
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    crate::logging::init(loaded.settings.log_level, loaded.settings.log_format);
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let result = execute(&cli.command, &loaded, &mut out).and_then(|()| Ok(out.flush()?));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (`keystation config show | head -1`).
        Err(Error::Io(error)) if error.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            report(&error);
            ExitCode::from(if error.is_configuration() { EXIT_CONFIG } else { EXIT_FAILURE })
        }
    }
}

/// Runs one command with loaded configuration, writing its output to `out`.
pub fn execute(
    command: &Command,
    loaded: &config::Loaded,
    out: &mut dyn Write,
) -> Result<(), Error> {
    match command {
        Command::Config(ConfigCommand::Show { format, .. }) => {
            config::show::write(loaded, *format, out)?;
        }
        Command::Config(ConfigCommand::Template) => config::show::write_template(out)?,
        #[cfg(feature = "pcsc")]
        Command::Card(command) => card::run(command, &loaded.settings, out)?,
        #[cfg(feature = "softcard")]
        Command::Simulate(args) => simulate::run(args)?,
        #[cfg(feature = "grpc")]
        Command::Station(args) => station::run(args, &loaded.settings)?,
        #[cfg(feature = "openpgp")]
        Command::Provision(args) => provision::run(args, &loaded.settings, out)?,
        #[cfg(feature = "piv")]
        Command::Piv(command) => piv::run(command, &loaded.settings, out)?,
        #[cfg(feature = "kube")]
        Command::Kube(command) => kube::run(command, &loaded.settings, out)?,
        #[cfg(feature = "authority")]
        Command::Authority(command) => authority::run(command, &loaded.settings, out)?,
        #[cfg(any(feature = "iid-aws", feature = "iid-gcp", feature = "iid-azure"))]
        Command::Ca(command) => ca::run(command, out)?,
    }
    Ok(())
}

/// Writes `error: …` to stderr; if even that fails there is nobody left to tell.
fn report(error: &Error) {
    let _ = writeln!(io::stderr(), "error: {}", keystation_core::describe_chain(error));
}
