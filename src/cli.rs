//! The command line: options, subcommands, and [`run`], which `main` calls.
//!
//! Every configuration option is an `Option` with no clap default and no clap `env`
//! attribute: [`GlobalArgs`] is serialized (unset options skipped) as the top
//! configuration layer, so clap never hides a value from the file or the environment, and
//! `config show` can say which flag set what. Values are validated by [`crate::config`],
//! with the same messages as for every other layer.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::Error;
use crate::config::{self, Token, show::ShowFormat};

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
    /// Configuration options (valid before or after the subcommand).
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The configuration options. Each overrides every other source; see [`crate::config`].
#[derive(Debug, Clone, Default, Args, Serialize)]
#[command(next_help_heading = "Configuration")]
pub struct GlobalArgs {
    /// TOML config file
    ///
    /// [env: KEYSTATION_CONFIG] [default: none]
    #[arg(long, global = true, value_name = "PATH")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Station id shown in defguard
    ///
    /// [env: KEYSTATION_ID, WORKER_ID, ID] [default: YubikeyProvisioner]
    #[arg(long, global = true, value_name = "ID")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,

    /// error, warn, info, debug or trace
    ///
    /// [env: KEYSTATION_LOG_LEVEL, LOG_LEVEL] [default: info]
    #[arg(long, global = true, value_name = "LEVEL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,

    /// Log lines as text or json, on stderr
    ///
    /// [env: KEYSTATION_LOG_FORMAT] [default: text]
    #[arg(long, global = true, value_name = "FORMAT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<String>,

    /// defguard gRPC endpoint, http:// or https://
    ///
    /// [env: KEYSTATION_GRPC_URL, GRPC_URL] [default: http://127.0.0.1:50055]
    #[arg(long = "grpc", global = true, value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_url: Option<String>,

    /// CA certificate (PEM) for defguard's TLS certificate
    ///
    /// [env: KEYSTATION_GRPC_CA, GRPC_CA] [default: none]
    #[arg(long = "ca-file", global = true, value_name = "PATH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_ca: Option<String>,

    /// Authorization token from defguard's Provisioners page (secret; prefer the environment)
    ///
    /// [env: KEYSTATION_TOKEN, DEFGUARD_TOKEN]
    #[arg(long, global = true, value_name = "TOKEN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<Token>,

    /// File holding the token (e.g. a systemd credential: %d/token)
    ///
    /// [env: KEYSTATION_TOKEN_FILE] [default: none]
    #[arg(long = "token-file", global = true, value_name = "PATH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,

    /// Allow the token over plain http:// to a host that is not loopback: true or false
    ///
    /// [env: KEYSTATION_GRPC_ALLOW_PLAINTEXT] [default: false]
    #[arg(long = "grpc-allow-plaintext", global = true, value_name = "BOOL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_allow_plaintext: Option<String>,

    /// How many times to look for a card before a job fails
    ///
    /// [env: KEYSTATION_SMARTCARD_RETRIES, YUBIKEY_RETRIES] [default: 1]
    #[arg(long, global = true, value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smartcard_retries: Option<String>,

    /// Seconds between looks for a card
    ///
    /// [env: KEYSTATION_SMARTCARD_RETRY_INTERVAL, YUBIKEY_RETRY_INTERVAL] [default: 15]
    #[arg(long, global = true, value_name = "SECONDS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smartcard_retry_interval: Option<String>,

    /// Accepted for compatibility, unused: none, basic, advanced, expert or guru
    ///
    /// [env: KEYSTATION_GPG_DEBUG_LEVEL, GPG_DEBUG_LEVEL] [default: none]
    #[arg(long, global = true, value_name = "LEVEL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpg_debug_level: Option<String>,

    /// Use only PC/SC readers whose name contains this
    ///
    /// [env: KEYSTATION_READER] [default: any]
    #[arg(long, global = true, value_name = "NAME")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reader: Option<String>,

    /// Open the card exclusive or shared
    ///
    /// [env: KEYSTATION_SHARE_MODE] [default: exclusive]
    #[arg(long, global = true, value_name = "MODE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_mode: Option<String>,

    /// Protobuf package of defguard's worker service: defguard.worker.v1 or worker
    ///
    /// [env: KEYSTATION_GRPC_PACKAGE] [default: defguard.worker.v1]
    #[arg(long = "grpc-package", global = true, value_name = "PACKAGE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_package: Option<String>,

    /// How often the station asks defguard for a job, like 500ms or 1s
    ///
    /// [env: KEYSTATION_POLL_INTERVAL] [default: 1s]
    #[arg(long = "poll-interval", global = true, value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_interval: Option<String>,

    /// Key algorithm: auto, ed25519, nistp256, nistp384, rsa2048, rsa3072 or rsa4096
    ///
    /// [env: KEYSTATION_ALGORITHM] [default: auto]
    #[arg(long = "algorithm", global = true, value_name = "ALGORITHM")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,

    /// Generate keys on the card or on the host (then import them)
    ///
    /// [env: KEYSTATION_KEY_LOCATION] [default: card]
    #[arg(long = "key-location", global = true, value_name = "WHERE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_location: Option<String>,

    /// Encrypted backup of host-generated keys (needs --key-location host)
    ///
    /// [env: KEYSTATION_BACKUP_FILE] [default: none]
    #[arg(long = "backup-file", global = true, value_name = "PATH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_file: Option<String>,

    /// File holding the backup's passphrase
    ///
    /// [env: KEYSTATION_BACKUP_PASSPHRASE_FILE] [default: none]
    #[arg(long = "backup-passphrase-file", global = true, value_name = "PATH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_passphrase_file: Option<String>,

    /// PINs after provisioning: auto, unattended, random, set (from the PIN files) or keep
    ///
    /// auto is unattended for `station` (user PIN left at 123456 for the holder to change,
    /// admin PIN random and not kept, or from --admin-pin-file) and random for `provision`
    /// (both PINs random, printed in the result).
    ///
    /// [env: KEYSTATION_PIN_POLICY] [default: auto]
    #[arg(long = "pin-policy", global = true, value_name = "POLICY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin_policy: Option<String>,

    /// File holding the new user PIN (--pin-policy set)
    ///
    /// [env: KEYSTATION_USER_PIN_FILE] [default: none]
    #[arg(long = "user-pin-file", global = true, value_name = "PATH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_pin_file: Option<String>,

    /// File holding the new admin PIN (--pin-policy set or unattended)
    ///
    /// [env: KEYSTATION_ADMIN_PIN_FILE] [default: none]
    #[arg(long = "admin-pin-file", global = true, value_name = "PATH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_pin_file: Option<String>,

    /// Touch to use a key: off, on, fixed, cached or cached-fixed
    ///
    /// [env: KEYSTATION_TOUCH_POLICY] [default: off]
    #[arg(long = "touch-policy", global = true, value_name = "POLICY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub touch_policy: Option<String>,

    /// Reset the card's OpenPGP application before provisioning: true or false
    ///
    /// [env: KEYSTATION_RESET] [default: true]
    #[arg(long = "reset", global = true, value_name = "BOOL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset: Option<String>,

    /// Where the station notes the job it runs, to bound retries after a crash
    ///
    /// [env: KEYSTATION_STATE_DIR] [default: $STATE_DIRECTORY, else none]
    #[arg(long = "state-dir", global = true, value_name = "PATH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<String>,
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
    Card(CardCommand),
    /// Plug a software YubiKey 5 into pcscd's vpcd reader and serve it until stopped
    /// (Ctrl-C or SIGTERM). For rehearsals and tests: its keys live in memory, unprotected.
    #[cfg(feature = "softcard")]
    Simulate(SimulateArgs),
    /// Run as a provisioning station: take jobs from defguard over gRPC (--grpc, --token,
    /// --id, --grpc-package, --poll-interval) until SIGTERM or Ctrl-C.
    #[cfg(feature = "grpc")]
    Station(StationArgs),
    /// Provision one card now: reset its OpenPGP application, generate the keys on it,
    /// make the card-signed OpenPGP certificate, set the PINs (profile options above), and
    /// print the certificate, SSH key, serial, fingerprints and any new PINs.
    #[cfg(feature = "openpgp")]
    Provision(ProvisionArgs),
    /// Work with the PIV application: keys, certificates, attestation, reset (honours
    /// --reader).
    #[cfg(feature = "piv")]
    #[command(subcommand)]
    Piv(crate::piv_cmd::PivCommand),
    /// kubectl through a local proxy that authenticates with a key on the card.
    #[cfg(feature = "kube")]
    #[command(subcommand)]
    Kube(KubeCommand),
}

/// `keystation kube …`
#[cfg(feature = "kube")]
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum KubeCommand {
    /// Put a kubeconfig context's client credential into a PIV slot (import it, or
    /// --generate a key on the card and get it certified by the cluster), and write
    /// proxy.yml and client.yml.
    Setup(KubeSetupArgs),
    /// Serve kubectl on loopback, forwarding to the API server over mutual TLS signed by
    /// the card, until SIGINT or SIGTERM.
    Proxy(KubeProxyArgs),
    /// Run a shell (or the command after --) with KUBECONFIG pointing at a proxy that
    /// lives as long as the shell.
    Shell {
        /// Proxy settings.
        #[command(flatten)]
        proxy: KubeProxyArgs,
        /// The command to run instead of $SHELL
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
}

/// `keystation kube proxy` (and the proxy of `kube shell`).
#[cfg(feature = "kube")]
#[derive(Debug, Clone, Args)]
pub struct KubeProxyArgs {
    /// The proxy's kubeconfig, as `kube setup` wrote it [default: ~/.kube/proxy.yml]
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The context [default: its current-context]
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Loopback address to listen on [default: from the kubeconfig, else 127.0.0.1:8080]
    #[arg(long, value_name = "ADDRESS")]
    pub listen: Option<String>,
    /// The PIV slot holding the key [default: from the kubeconfig, else 9a]
    #[arg(long, value_name = "SLOT", value_parser = parse_slot)]
    pub slot: Option<keystation_core::keygen::PivSlot>,
    /// Presence-watch mode: keep connections to the API server alive (faster), and close
    /// them all as soon as the card is removed. Without it every request opens a new TLS
    /// connection, signed by the card
    #[arg(long)]
    pub keep_alive: bool,
    /// Read the PIN from this file (else it is asked for on the terminal if the key's PIN
    /// policy needs it)
    #[arg(long, value_name = "FILE")]
    pub pin_file: Option<PathBuf>,
}

#[cfg(feature = "kube")]
fn parse_slot(text: &str) -> Result<keystation_core::keygen::PivSlot, String> {
    crate::kube::parse_slot(text).map_err(|e| e.to_string())
}

#[cfg(feature = "kube")]
impl KubeProxyArgs {
    fn options(&self, reader: Option<&str>) -> crate::kube::ProxyOptions {
        crate::kube::ProxyOptions {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            listen: self.listen.clone(),
            slot: self.slot,
            keep_alive: self.keep_alive,
            pin_file: self.pin_file.clone(),
            reader: reader.map(str::to_owned),
        }
    }
}

/// `keystation kube setup`
#[cfg(feature = "kube")]
#[derive(Debug, Clone, Args)]
pub struct KubeSetupArgs {
    /// The kubeconfig to read [default: $KUBECONFIG, else ~/.kube/config]
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The context [default: current-context]
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// The PIV slot: 9a, 9c, 9d or 9e
    #[arg(long, default_value = "9a", value_parser = parse_slot)]
    pub slot: keystation_core::keygen::PivSlot,
    /// Generate the key on the card and get its certificate from the cluster's
    /// certificates.k8s.io API, instead of importing the kubeconfig's key
    #[arg(long)]
    pub generate: bool,
    /// Key algorithm with --generate: p256, p384, rsa2048, ed25519 (5.7)
    #[arg(long = "key-algorithm", id = "key_algorithm", default_value = "p256", value_parser = crate::piv_cmd::parse_algorithm, requires = "generate")]
    pub algorithm: keystation_core::key::KeyAlgorithm,
    /// Certificate subject with --generate [default: the current client certificate's]
    #[arg(long, value_name = "DN", requires = "generate")]
    pub subject: Option<String>,
    /// Approve the certificate signing request yourself (needs the permission)
    #[arg(long, requires = "generate")]
    pub approve: bool,
    /// Seconds to wait for the request to be approved
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub wait: u64,
    /// Ask for a certificate valid this many seconds (at least 600)
    #[arg(long, value_name = "SECONDS", requires = "generate")]
    pub expiration: Option<u64>,
    /// Where to write proxy.yml and client.yml [default: ~/.kube]
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// The address the proxy will listen on (written to both files)
    #[arg(long, default_value = crate::kube::DEFAULT_LISTEN, value_name = "ADDRESS")]
    pub listen: String,
    /// The key's PIN policy: default, never, once, always
    #[arg(long = "key-pin-policy", id = "key_pin_policy", default_value = "default", value_parser = crate::piv_cmd::parse_pin_policy)]
    pub pin_policy: keystation_core::keygen::PinPolicy,
    /// The key's touch policy: default, never, always, cached
    #[arg(long = "key-touch-policy", id = "key_touch_policy", default_value = "default", value_parser = crate::piv_cmd::parse_touch_policy)]
    pub touch_policy: keystation_core::keygen::TouchPolicy,
    /// Overwrite existing proxy.yml and client.yml
    #[arg(long)]
    pub force: bool,
    /// PIN and management key.
    #[command(flatten)]
    pub access: crate::piv_cmd::AccessArgs,
}

/// `keystation provision …`
#[cfg(feature = "openpgp")]
#[derive(Debug, Clone, Args)]
pub struct ProvisionArgs {
    /// The holder's name, "First Last" (the last word is the surname)
    #[arg(long, value_name = "NAME", required_unless_present_all = ["first_name", "last_name"])]
    pub name: Option<String>,
    /// Given name(s), instead of --name
    #[arg(long, value_name = "FIRST", conflicts_with = "name", requires = "last_name")]
    pub first_name: Option<String>,
    /// Surname, instead of --name
    #[arg(long, value_name = "LAST", conflicts_with = "name", requires = "first_name")]
    pub last_name: Option<String>,
    /// The holder's e-mail address
    #[arg(long, value_name = "ADDRESS")]
    pub email: String,
    /// Which card: auto = the one card in a PC/SC reader, or the built-in software card
    /// when there is none
    #[arg(long, value_enum, default_value_t)]
    pub card: crate::provision::run::CardChoice,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

#[cfg(feature = "openpgp")]
impl ProvisionArgs {
    /// The holder the options name.
    pub fn holder(&self) -> Result<crate::provision::Holder, crate::provision::InvalidHolder> {
        let (first, last) = match (&self.name, &self.first_name, &self.last_name) {
            (Some(name), _, _) => match name.trim().rsplit_once(char::is_whitespace) {
                Some((first, last)) => (first.trim().to_owned(), last.to_owned()),
                None => {
                    return Err(crate::provision::InvalidHolder {
                        field: "--name",
                        reason: "give a first and a last name, e.g. --name \"Ada Lovelace\" \
                                 (or --first-name and --last-name)",
                    });
                }
            },
            (None, first, last) => {
                (first.clone().unwrap_or_default(), last.clone().unwrap_or_default())
            }
        };
        crate::provision::Holder::new(&first, &last, &self.email)
    }
}

/// `keystation station …`. The connection options are the configuration options above.
#[cfg(feature = "grpc")]
#[derive(Debug, Clone, Default, Args)]
#[non_exhaustive]
pub struct StationArgs {
    /// Which card each job uses: auto = the one card in a PC/SC reader (the built-in
    /// software card when there is none), pcsc, or software (a rehearsal)
    #[cfg(feature = "openpgp")]
    #[arg(long, value_enum, default_value_t = crate::provision::run::CardChoice::Pcsc)]
    pub card: crate::provision::run::CardChoice,
}

/// The provisioning side the station runs jobs with: the OpenPGP flow with the
/// configured profile on the card `--card` names, or — in a build without the `openpgp`
/// feature — a refusal of every job.
#[cfg(feature = "grpc")]
fn provisioner(
    args: &StationArgs,
    settings: &config::Settings,
) -> std::sync::Arc<dyn crate::station::Provision> {
    #[cfg(feature = "openpgp")]
    return std::sync::Arc::new(crate::provision::run::StationJobs::new(
        args.card,
        settings.clone(),
    ));
    #[cfg(not(feature = "openpgp"))]
    {
        let _ = (args, settings);
        std::sync::Arc::new(crate::station::NoProvisioning)
    }
}

/// `keystation simulate …`
#[cfg(feature = "softcard")]
#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// vpcd's address (pcscd's vsmartcard reader driver); the card connects to it
    #[arg(long, value_name = "HOST:PORT", default_value = crate::simulate::DEFAULT_VPCD,
          value_parser = crate::simulate::parse_address)]
    pub vpcd: String,
    /// Serial number the card reports [default: 10000001]
    #[arg(long, value_name = "N")]
    pub serial: Option<u32>,
    /// Firmware version the card reports; ykman reads one digit each for minor and patch
    /// [default: 5.4.3]
    #[arg(long, value_name = "X.Y.Z", value_parser = crate::simulate::parse_version)]
    pub version: Option<keystation_softcard::Version>,
    /// Seed for the card's random numbers, for reproducible keys [default: from the OS]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Keep the card's keys, PINs and settings in this file so that the card survives
    /// restarts: loaded at start if it exists, rewritten (mode 0600) after every command
    /// that changes them. It holds test keys and PINs in the clear: rehearsal only
    #[arg(long, value_name = "FILE")]
    pub state: Option<std::path::PathBuf>,
    /// For tests: remove the card (close the vpcd connection) after N command APDUs,
    /// then insert it again a second later, power-cycled. Happens once
    #[arg(long, value_name = "N")]
    pub remove_after: Option<u64>,
    /// Whether the simulated user touches the card when a key's touch policy asks: auto
    /// (at once) or never (such operations fail with 6982, as when nobody touches a
    /// YubiKey)
    #[arg(long, value_enum, default_value_t)]
    pub touch: crate::simulate::Touch,
}

/// `keystation config …`
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum ConfigCommand {
    /// Print every setting, its effective value and where it came from (secrets redacted).
    Show {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
        format: ShowFormat,
    },
    /// Print a config file with every key commented out, its meaning and its default
    /// (e.g. `keystation config template > /etc/keystation/station.toml`).
    Template,
}

/// `keystation card …`
#[cfg(feature = "pcsc")]
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum CardCommand {
    /// List PC/SC readers and the cards in them (honours --reader).
    List,
}

/// Runs the parsed command line against the real environment, writing command output to
/// stdout and errors to stderr. Returns the process exit status: 0 on success, 2 for a
/// configuration error, 1 when the command fails.
pub fn run(cli: Cli) -> ExitCode {
    let loaded = match config::load(&cli.global) {
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
            ExitCode::from(match error {
                Error::Config(_) => EXIT_CONFIG,
                #[cfg(feature = "grpc")]
                Error::Station(error) if error.is_configuration() => EXIT_CONFIG,
                _ => EXIT_FAILURE,
            })
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
        Command::Config(ConfigCommand::Show { format }) => {
            config::show::write(loaded, *format, out)?;
        }
        Command::Config(ConfigCommand::Template) => config::show::write_template(out)?,
        #[cfg(feature = "pcsc")]
        Command::Card(CardCommand::List) => {
            crate::cards::list(loaded.settings.reader.as_deref(), out)?;
        }
        #[cfg(feature = "softcard")]
        Command::Simulate(args) => {
            crate::simulate::run(&crate::simulate::Options {
                vpcd: args.vpcd.clone(),
                serial: args.serial,
                version: args.version,
                seed: args.seed,
                state: args.state.clone(),
                remove_after: args.remove_after,
                touch: args.touch,
            })?;
        }
        #[cfg(feature = "grpc")]
        Command::Station(args) => {
            let provision = provisioner(args, &loaded.settings);
            let settings = crate::station::StationSettings::from_settings(&loaded.settings);
            crate::station::run_until_signalled(settings, provision)?;
        }
        #[cfg(feature = "openpgp")]
        Command::Provision(args) => {
            let holder = args.holder().map_err(crate::provision::run::RunError::from)?;
            crate::provision::run::one_shot(args.card, &loaded.settings, &holder, args.json, out)?;
        }
        #[cfg(feature = "piv")]
        Command::Piv(command) => {
            crate::piv_cmd::run(command, loaded.settings.reader.as_deref(), out)?;
        }
        #[cfg(feature = "kube")]
        Command::Kube(command) => kube(command, loaded, out)?,
    }
    Ok(())
}

/// Runs a `kube` command.
#[cfg(feature = "kube")]
fn kube(command: &KubeCommand, loaded: &config::Loaded, out: &mut dyn Write) -> Result<(), Error> {
    let reader = loaded.settings.reader.as_deref();
    match command {
        KubeCommand::Proxy(args) => crate::kube::run_proxy(&args.options(reader), out),
        KubeCommand::Shell { proxy, command } => {
            let options = crate::kube::shell::ShellOptions {
                proxy: proxy.options(reader),
                command: command.clone(),
            };
            let code = crate::kube::shell::run(&options)?;
            out.flush()?;
            // The shell's status is keystation's (as `ssh` and `sudo` do).
            std::process::exit(code)
        }
        KubeCommand::Setup(args) => crate::kube::setup::run(
            &crate::kube::setup::SetupOptions {
                kubeconfig: args.kubeconfig.clone(),
                context: args.context.clone(),
                slot: args.slot,
                generate: args.generate,
                algorithm: args.algorithm,
                subject: args.subject.clone(),
                approve: args.approve,
                wait: std::time::Duration::from_secs(args.wait),
                expiration: args.expiration.map(std::time::Duration::from_secs),
                out_dir: args.out_dir.clone(),
                listen: args.listen.clone(),
                pin_policy: args.pin_policy,
                touch_policy: args.touch_policy,
                access: args.access.clone(),
                reader: reader.map(str::to_owned),
                force: args.force,
            },
            out,
        ),
    }
}

/// Writes `error: …` to stderr; if even that fails there is nobody left to tell.
fn report(error: &Error) {
    let _ = writeln!(io::stderr(), "error: {}", crate::error::describe(error));
}
