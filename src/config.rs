//! Configuration: built-in defaults, a TOML file, `.env` files, the environment and the
//! command line, merged with [figment] so that every value knows where it came from.
//!
//! # Layers
//!
//! From lowest to highest precedence:
//!
//! 1. built-in defaults;
//! 2. the TOML file named by `--config PATH` or `KEYSTATION_CONFIG` (there is no default
//!    file; a file that is named but cannot be read is an error, and so is a key in it
//!    that keystation does not know);
//! 3. `./.env`, then `./.env.local` (which wins over `.env`), read without touching the
//!    process environment; a file that does not exist is skipped;
//! 4. the process environment;
//! 5. command-line flags.
//!
//! The environment and the `.env` files use the same variable names: each key has a
//! `KEYSTATION_*` name and, where the defguard YubiKey provisioner had one, that name too
//! (`WORKER_ID`, `GRPC_URL`, `DEFGUARD_TOKEN`, …). Within one layer the `KEYSTATION_*` name
//! wins over the defguard name, and `WORKER_ID` wins over `ID`. Unknown `KEYSTATION_*`
//! variables are reported as [`ConfigWarning`]s.
//!
//! Only the value that wins is validated, so a bad value in a lower layer that a higher
//! layer overrides is not an error. An empty value for an optional key (`grpc_ca`, `token`,
//! `reader`, `card_serial`) means "unset" and overrides lower layers.
//!
//! # Provenance
//!
//! Each layer is its own figment provider with its own [`figment::Metadata`] name; after
//! merging, [`figment::Figment::find_metadata`] tells which layer each key's value came from,
//! and the layer knows the exact variable or flag. [`Loaded::entries`] lists every key with
//! its effective value and [`Origin`]; `keystation config show` prints them.
//!
//! # Secrets
//!
//! The token never enters figment: layers carry a `<redacted>` marker for it, and keep the
//! value itself in a [`Token`], which zeroizes on drop and never shows its value.

mod keys;
mod layers;
pub mod show;
mod value;

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use keystation_cards::ShareMode;
pub use keystation_core::keygen::{KeyOrigin, TouchPolicy};
use keystation_core::secret::SecretBytes;
pub use keystation_provision::{AlgorithmChoice, Attendance, PinPlan};
pub use keystation_station::{GrpcPackage, REDACTED, Token};

use self::value::Resolver;

macro_rules! choice {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in the order the documentation lists them.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// What the configuration expects, for error messages.
            const EXPECTED: &'static str = concat!("one of ", choice!(@join $($text),+));

            /// The name used in configuration and output.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            /// Parses a configuration name, ignoring ASCII case.
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str().eq_ignore_ascii_case(name))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
    (@join $first:literal $(, $rest:literal)*) => { concat!($first $(, ", ", $rest)*) };
}

choice! {
    /// How much the station logs (`--log-level`, `LOG_LEVEL`).
    LogLevel {
        /// Only errors.
        Error => "error",
        /// Errors and warnings.
        Warn => "warn",
        /// The default: what the station is doing.
        #[default]
        Info => "info",
        /// Detail for diagnosing problems.
        Debug => "debug",
        /// Everything, including every APDU (target `keystation::apdu`, secrets redacted).
        Trace => "trace",
    }
}

choice! {
    /// How log lines are written to stderr (`--log-format`).
    LogFormat {
        /// Human-readable lines.
        #[default]
        Text => "text",
        /// One JSON object per line.
        Json => "json",
    }
}

choice! {
    /// gpg's `--debug-level` names (`--gpg-debug-level`, `GPG_DEBUG_LEVEL`). Accepted for
    /// compatibility with the defguard provisioner's configuration; keystation does not run
    /// gpg, so the value has no effect.
    GpgDebugLevel {
        /// No debugging.
        #[default]
        None => "none",
        /// gpg's "basic" level.
        Basic => "basic",
        /// gpg's "advanced" level.
        Advanced => "advanced",
        /// gpg's "expert" level.
        Expert => "expert",
        /// gpg's "guru" level.
        Guru => "guru",
    }
}

/// The station id shown in the defguard UI when nothing else is configured.
pub const DEFAULT_ID: &str = "YubikeyProvisioner";
/// defguard's gRPC endpoint when nothing else is configured.
pub const DEFAULT_GRPC_URL: &str = "http://127.0.0.1:50055";
/// How many times to look for a card when nothing else is configured.
pub const DEFAULT_SMARTCARD_RETRIES: u32 = 1;
/// Seconds between looks for a card when nothing else is configured.
pub const DEFAULT_SMARTCARD_RETRY_INTERVAL_SECS: u64 = 15;
/// How often the station polls defguard for a job when nothing else is configured.
pub use keystation_station::DEFAULT_POLL_INTERVAL;

/// The effective configuration, after all layers are merged and every value is validated.
///
/// `#[non_exhaustive]`: build one with [`Settings::default`] and assign fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// The station's id, shown in the defguard UI (`--id`, `WORKER_ID`, `ID`).
    pub id: String,
    /// Log verbosity (`--log-level`, `LOG_LEVEL`).
    pub log_level: LogLevel,
    /// Log line format (`--log-format`).
    pub log_format: LogFormat,
    /// defguard's gRPC endpoint; validated to be an `http://` or `https://` URL with a host
    /// (`--grpc`, `GRPC_URL`).
    pub grpc_url: String,
    /// CA certificate (PEM) to verify defguard's TLS certificate with (`--ca-file`,
    /// `GRPC_CA`). A relative path is relative to the working directory.
    pub grpc_ca: Option<PathBuf>,
    /// The authorization token from defguard's Provisioners page (`--token`,
    /// `DEFGUARD_TOKEN`). Secret.
    pub token: Option<Token>,
    /// File holding the token (`--token-file`), read when the station starts; e.g. a
    /// systemd credential. Never set together with `token`.
    pub token_file: Option<PathBuf>,
    /// Whether the token may travel over plain `http://` to a host that is not loopback
    /// (`--grpc-allow-plaintext`).
    pub grpc_allow_plaintext: bool,
    /// How many times to look for a card before a job fails (`--smartcard-retries`,
    /// `YUBIKEY_RETRIES`).
    pub smartcard_retries: u32,
    /// How long to wait between looks for a card; configured in whole seconds
    /// (`--smartcard-retry-interval`, `YUBIKEY_RETRY_INTERVAL`).
    pub smartcard_retry_interval: Duration,
    /// Accepted for compatibility, unused (`--gpg-debug-level`, `GPG_DEBUG_LEVEL`).
    pub gpg_debug_level: GpgDebugLevel,
    /// Use only PC/SC readers whose name contains this (`--reader`).
    pub reader: Option<String>,
    /// Use only the card with this serial number (`--card-serial`).
    pub card_serial: Option<String>,
    /// How to open the card (`--share-mode`).
    pub share_mode: ShareMode,
    /// The protobuf package of defguard's worker service (`--grpc-package`).
    pub grpc_package: GrpcPackage,
    /// How often the station asks defguard for a job (`--poll-interval`; `500ms`, `1s`).
    pub poll_interval: Duration,
    /// Key algorithm for provisioning (`--algorithm`).
    pub algorithm: AlgorithmChoice,
    /// Where provisioning generates keys (`--key-location`).
    pub key_location: KeyOrigin,
    /// Where to write an encrypted backup of host-generated keys (`--backup-file`); only
    /// with `key_location = host` and a `backup_passphrase_file`.
    pub backup_file: Option<PathBuf>,
    /// File holding the backup's passphrase (`--backup-passphrase-file`); read with
    /// [`read_secret_file`] when used.
    pub backup_passphrase_file: Option<PathBuf>,
    /// What provisioning does with the PINs (`--pin-policy`): the OpenPGP PIN plan.
    pub pin_policy: PinPlan,
    /// File holding the new user PIN for `pin_policy = set` (`--user-pin-file`); read with
    /// [`read_secret_file`] when used.
    pub user_pin_file: Option<PathBuf>,
    /// File holding the new admin PIN for `pin_policy = set` (`--admin-pin-file`); read with
    /// [`read_secret_file`] when used.
    pub admin_pin_file: Option<PathBuf>,
    /// Touch policy for the generated keys (`--touch-policy`, by OpenPGP names).
    pub touch_policy: TouchPolicy,
    /// Whether provisioning resets the card's OpenPGP application first (`--reset`).
    pub reset: bool,
    /// Where the station notes the job it is running (`--state-dir`); `None`: systemd's
    /// `$STATE_DIRECTORY` when set, else nowhere.
    pub state_dir: Option<PathBuf>,
    /// The authority's state directory (`--dir`, `KEYSTATION_AUTHORITY_DIR`).
    pub authority_dir: Option<PathBuf>,
    /// The authority's HTTPS address (`--address`), overriding the one `init` chose.
    pub authority_address: Option<std::net::SocketAddr>,
    /// The authority's worker service address (`--grpc-address`).
    pub authority_grpc_address: Option<std::net::SocketAddr>,
    /// The authority's store URL (`--database`).
    pub authority_database: Option<String>,
    /// The file with the authority's password (`--password-file`).
    pub authority_password_file: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            id: DEFAULT_ID.to_owned(),
            log_level: LogLevel::default(),
            log_format: LogFormat::default(),
            grpc_url: DEFAULT_GRPC_URL.to_owned(),
            grpc_ca: None,
            token: None,
            token_file: None,
            grpc_allow_plaintext: false,
            smartcard_retries: DEFAULT_SMARTCARD_RETRIES,
            smartcard_retry_interval: Duration::from_secs(DEFAULT_SMARTCARD_RETRY_INTERVAL_SECS),
            gpg_debug_level: GpgDebugLevel::default(),
            reader: None,
            card_serial: None,
            share_mode: ShareMode::default(),
            grpc_package: GrpcPackage::default(),
            poll_interval: DEFAULT_POLL_INTERVAL,
            algorithm: AlgorithmChoice::default(),
            key_location: KeyOrigin::default(),
            backup_file: None,
            backup_passphrase_file: None,
            pin_policy: PinPlan::default(),
            user_pin_file: None,
            admin_pin_file: None,
            touch_policy: TouchPolicy::Never,
            reset: true,
            state_dir: None,
            authority_dir: None,
            authority_address: None,
            authority_grpc_address: None,
            authority_database: None,
            authority_password_file: None,
        }
    }
}

/// A duration as `config show` prints it: whole seconds as `2s`, anything else in `ms`.
fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis.is_multiple_of(1000) { format!("{}s", millis / 1000) } else { format!("{millis}ms") }
}

/// The largest secret file (PIN, passphrase, token) keystation reads: far above any real
/// one, small enough that a wrong path (a disk image, `/dev/zero`) fails at once.
pub const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// The largest config file keystation reads.
pub const MAX_CONFIG_FILE_BYTES: u64 = 1024 * 1024;

/// Reads at most `max` bytes of `path`: the whole file, or an `InvalidData` error naming the
/// limit when it is longer. The bytes are zeroized when dropped (files may hold secrets).
pub fn read_capped(path: &Path, max: u64) -> io::Result<zeroize::Zeroizing<Vec<u8>>> {
    keystation_core::secret::read_capped(std::fs::File::open(path)?, max)
}

/// Reads a secret (a PIN, a passphrase, a token) from `path` at the moment it is needed:
/// the bytes of the file without one trailing line ending (`\n` or `\r\n`), at most
/// [`MAX_SECRET_FILE_BYTES`]. The result is zeroized when dropped; so is every
/// intermediate copy made here.
pub fn read_secret_file(path: &Path) -> io::Result<SecretBytes> {
    let mut bytes = read_capped(path, MAX_SECRET_FILE_BYTES)?;
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    Ok(SecretBytes::copy_from(&bytes))
}

/// Where a configuration value (or the config file's name) came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// The built-in default.
    Default,
    /// The TOML config file, by absolute path.
    ConfigFile {
        /// The file's absolute path.
        path: PathBuf,
    },
    /// A `.env` or `.env.local` file in the working directory.
    DotEnv {
        /// The file, as found: `./.env` or `./.env.local`.
        path: PathBuf,
        /// The variable in it that supplied the value.
        variable: String,
    },
    /// The process environment.
    Environment {
        /// The variable that supplied the value.
        variable: String,
    },
    /// The command line.
    CommandLine {
        /// The flag that supplied the value, with its dashes.
        flag: &'static str,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::ConfigFile { path } => write!(f, "config file {}", path.display()),
            Self::DotEnv { path, variable } => {
                write!(f, ".env file {}, variable {variable}", path.display())
            }
            Self::Environment { variable } => write!(f, "environment variable {variable}"),
            Self::CommandLine { flag } => write!(f, "command line {flag}"),
        }
    }
}

/// An effective value as `config show` presents it: secrets are never carried here.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShownValue {
    /// The key has no value.
    Unset,
    /// A secret is set; its value is not shown.
    Redacted,
    /// A text value (names, URLs, paths).
    Text(String),
    /// A number.
    Number(u64),
}

impl fmt::Display for ShownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unset => f.write_str("(unset)"),
            Self::Redacted => f.write_str(REDACTED),
            Self::Text(text) => {
                // Escape control characters so a value cannot forge output lines.
                for c in text.chars() {
                    if c.is_control() {
                        write!(f, "{}", c.escape_default())?;
                    } else {
                        write!(f, "{c}")?;
                    }
                }
                Ok(())
            }
            Self::Number(n) => write!(f, "{n}"),
        }
    }
}

/// One key of the effective configuration, with its value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Entry {
    /// The key, as written in the TOML file (`grpc_url`).
    pub key: &'static str,
    /// The effective value, redacted if secret.
    pub value: ShownValue,
    /// The layer (and variable or flag) the value came from.
    pub origin: Origin,
}

/// The config file that was read, and what named it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigFile {
    /// The file's absolute path.
    pub path: PathBuf,
    /// The flag or variable that named it.
    pub named_by: Origin,
}

/// A problem with the configuration that is not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigWarning {
    /// A `KEYSTATION_*` variable that is no configuration key (probably a typo); ignored.
    UnknownVariable {
        /// The variable's name.
        variable: String,
        /// The `.env` file that set it, or `None` for the process environment.
        file: Option<PathBuf>,
    },
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownVariable { variable, file: None } => {
                write!(f, "ignoring unknown environment variable {variable}")
            }
            Self::UnknownVariable { variable, file: Some(file) } => {
                write!(f, "ignoring unknown variable {variable} in .env file {}", file.display())
            }
        }
    }
}

/// The result of [`load`]: the settings, every key's provenance, and warnings to log once
/// logging is set up.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Loaded {
    /// The effective, validated configuration.
    pub settings: Settings,
    /// Every key in display order, with its shown value and origin.
    pub entries: Vec<Entry>,
    /// The config file that was read, if any.
    pub config_file: Option<ConfigFile>,
    /// Things worth a warning (unknown `KEYSTATION_*` variables).
    pub warnings: Vec<ConfigWarning>,
}

impl Loaded {
    /// The entry for `key` (e.g. `"grpc_url"`), if it is a configuration key.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// Where `key`'s value came from, if it is a configuration key.
    pub fn origin(&self, key: &str) -> Option<&Origin> {
        self.entry(key).map(|e| &e.origin)
    }
}

/// Why the configuration could not be loaded. Every variant names the file, key or
/// variable at fault; none shows a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file that `--config` or `KEYSTATION_CONFIG` named cannot be read.
    #[error("cannot read config file {} (named by {named_by}): {error}", path.display())]
    ReadFile {
        /// The file's absolute path.
        path: PathBuf,
        /// What named the file.
        named_by: Origin,
        /// Why reading failed.
        error: io::Error,
    },
    /// The config file is not valid TOML.
    #[error("config file {} is not valid TOML: {detail}", path.display())]
    FileSyntax {
        /// The file's absolute path.
        path: PathBuf,
        /// The parser's message (position and problem; never the offending line's text).
        detail: String,
    },
    /// The config file has keys keystation does not know.
    #[error(
        "config file {} has unknown key{} {} (known keys: {})",
        path.display(),
        if keys.len() == 1 { "" } else { "s" },
        keys.join(", "),
        known_keys()
    )]
    UnknownFileKeys {
        /// The file's absolute path.
        path: PathBuf,
        /// The unknown keys, sorted.
        keys: Vec<String>,
    },
    /// A `.env` file exists but cannot be read.
    #[error("cannot read .env file {}: {error}", path.display())]
    ReadDotEnv {
        /// The file, as found (`./.env`).
        path: PathBuf,
        /// Why reading failed.
        error: io::Error,
    },
    /// A `.env` file has a line that does not parse.
    #[error(
        ".env file {} has a syntax error{}",
        path.display(),
        line.map(|l| format!(" on line {l}")).unwrap_or_default()
    )]
    DotEnvSyntax {
        /// The file, as found (`./.env`).
        path: PathBuf,
        /// The 1-based line, when it could be found. The line's text is not reported: it
        /// may hold a secret.
        line: Option<usize>,
    },
    /// The command-line options could not be turned into a configuration layer.
    #[error("cannot use the command-line options: {0}")]
    CommandLine(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// A key's effective value is invalid.
    #[error(
        "invalid value {}for {key} (from {origin}): expected {expected}",
        value.as_ref().map(|v| format!("{v} ")).unwrap_or_default()
    )]
    InvalidValue {
        /// The key (`smartcard_retries`).
        key: &'static str,
        /// The offending value, quoted if text; `None` for secrets.
        value: Option<String>,
        /// Where the value came from.
        origin: Origin,
        /// What a valid value looks like ("an unsigned integer").
        expected: &'static str,
    },
}

fn known_keys() -> String {
    keys::KEYS.iter().map(|s| s.key).collect::<Vec<_>>().join(", ")
}

/// The command line's layer: the config file it names and the configuration flags given.
/// The CLI builds it from its arguments ([`CommandLine::new`]); flags that were not given
/// are absent, so that they hide nothing from lower layers.
#[derive(Debug, Clone, Default)]
pub struct CommandLine {
    /// The config file (`--config`).
    pub config: Option<PathBuf>,
    /// The token (`--token`); kept out of figment (see "Secrets" above).
    pub token: Option<Token>,
    /// The other flags' values by configuration key.
    values: figment::value::Dict,
}

impl CommandLine {
    /// The layer of `flags`: any serializable struct whose fields are named as the
    /// configuration keys, unset flags skipped (`Option` fields with
    /// `skip_serializing_if`). `config` and `token` are given apart.
    pub fn new(
        config: Option<PathBuf>,
        token: Option<Token>,
        flags: &impl serde::Serialize,
    ) -> Result<Self, ConfigError> {
        let values = figment::value::Value::serialize(flags)
            .map_err(|e| ConfigError::CommandLine(Box::new(e)))?
            .into_dict()
            .unwrap_or_default();
        Ok(Self { config, token, values })
    }
}

/// Loads the configuration for the process: the real environment, `.env` files in the
/// working directory, and `args` from the command line.
pub fn load(args: &CommandLine) -> Result<Loaded, ConfigError> {
    load_from(args, std::env::vars_os(), Path::new("."))
}

/// Loads the configuration with an explicit environment and directory for the `.env`
/// files (and for a relative config file path). [`load`] is
/// `load_from(args, std::env::vars_os(), Path::new("."))`.
pub fn load_from<I>(args: &CommandLine, env: I, dir: &Path) -> Result<Loaded, ConfigError>
where
    I: IntoIterator<Item = (OsString, OsString)>,
{
    let mut warnings = Vec::new();
    let dotenv = layers::dotenv(&dir.join(".env"), &mut warnings)?;
    let dotenv_local = layers::dotenv(&dir.join(".env.local"), &mut warnings)?;
    let environment = layers::environment(env, &mut warnings);
    let command_line = layers::command_line(args)?;

    // The config file's name follows the same precedence as the keys.
    let named = args
        .config
        .clone()
        .map(|path| (path, Origin::CommandLine { flag: keys::CONFIG_FLAG }))
        .or_else(|| environment.config_path())
        .or_else(|| dotenv_local.as_ref().and_then(layers::Layer::config_path))
        .or_else(|| dotenv.as_ref().and_then(layers::Layer::config_path))
        .filter(|(path, _)| !path.as_os_str().is_empty());
    let (file_layer, config_file) = match named {
        Some((path, named_by)) => {
            let path = absolute(&dir.join(path));
            let layer = layers::config_file(&path, &named_by)?;
            (Some(layer), Some(ConfigFile { path, named_by }))
        }
        None => (None, None),
    };

    let all: Vec<layers::Layer> = [Some(layers::defaults()), file_layer, dotenv, dotenv_local]
        .into_iter()
        .flatten()
        .chain([environment, command_line])
        .collect();
    let (settings, entries) = Resolver::new(&all).settings()?;
    Ok(Loaded { settings, entries, config_file, warnings })
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
