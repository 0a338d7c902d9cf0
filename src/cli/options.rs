//! The configuration flags that more than one command takes, in groups: the station's
//! connection, the wait for a card, the OpenPGP profile. Each command flattens the groups
//! it uses (so `keystation piv --help` lists no OpenPGP profile flag), and `config show`
//! takes them all, to show what a command would run with.
//!
//! Every flag is an `Option` with no clap default and no clap `env` attribute: the groups
//! are serialized (unset flags skipped) into the command line's configuration layer
//! ([`config::CommandLine`]), so clap never hides a value from the file or the environment,
//! and `config show` can say which flag set what. Values are validated by
//! [`crate::config`], with the same messages as for every other layer.

use std::path::PathBuf;
#[cfg(feature = "openpgp")]
use std::time::Duration;

use clap::Args;
#[cfg(feature = "openpgp")]
use keystation_cards::{CardChoice, CardSelection};
use serde::Serialize;

use crate::config::{self, Token};

/// The flags every command takes (valid before or after the subcommand).
#[derive(Debug, Clone, Default, Args, Serialize)]
#[command(next_help_heading = "Configuration")]
pub struct CommonOptions {
    /// TOML config file
    ///
    /// [env: KEYSTATION_CONFIG] [default: none]
    #[arg(long, global = true, value_name = "PATH")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

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

    /// Use only PC/SC readers whose name contains this
    ///
    /// [env: KEYSTATION_READER] [default: any]
    #[arg(long, global = true, value_name = "NAME")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reader: Option<String>,

    /// Use only the card with this serial number (a YubiKey's as ykman shows it, else the
    /// OpenPGP serial as gpg --card-status shows it)
    ///
    /// [env: KEYSTATION_CARD_SERIAL] [default: any]
    #[arg(long = "card-serial", global = true, value_name = "SERIAL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_serial: Option<String>,
}

/// How `keystation station` reaches defguard.
#[derive(Debug, Clone, Default, Args, Serialize)]
#[command(next_help_heading = "Station")]
pub struct StationOptions {
    /// Station id shown in defguard
    ///
    /// [env: KEYSTATION_ID, WORKER_ID, ID] [default: YubikeyProvisioner]
    #[arg(long, value_name = "ID")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,

    /// defguard gRPC endpoint, http:// or https://
    ///
    /// [env: KEYSTATION_GRPC_URL, GRPC_URL] [default: http://127.0.0.1:50055]
    #[arg(long = "grpc", value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_url: Option<String>,

    /// CA certificate (PEM) for defguard's TLS certificate
    ///
    /// [env: KEYSTATION_GRPC_CA, GRPC_CA] [default: none]
    #[arg(long = "ca-file", value_name = "PATH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_ca: Option<String>,

    /// Authorization token from defguard's Provisioners page (secret; prefer the environment)
    ///
    /// [env: KEYSTATION_TOKEN, DEFGUARD_TOKEN]
    #[arg(long, value_name = "TOKEN")]
    #[serde(skip)]
    pub token: Option<Token>,

    /// File holding the token (e.g. a systemd credential: %d/token)
    ///
    /// [env: KEYSTATION_TOKEN_FILE] [default: none]
    #[arg(long = "token-file", value_name = "PATH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,

    /// Allow the token over plain http:// to a host that is not loopback: true or false
    ///
    /// [env: KEYSTATION_GRPC_ALLOW_PLAINTEXT] [default: false]
    #[arg(long = "grpc-allow-plaintext", value_name = "BOOL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_allow_plaintext: Option<String>,

    /// Accepted for compatibility, unused: none, basic, advanced, expert or guru
    ///
    /// [env: KEYSTATION_GPG_DEBUG_LEVEL, GPG_DEBUG_LEVEL] [default: none]
    #[arg(long, value_name = "LEVEL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpg_debug_level: Option<String>,

    /// Protobuf package of defguard's worker service: defguard.worker.v1 or worker
    ///
    /// [env: KEYSTATION_GRPC_PACKAGE] [default: defguard.worker.v1]
    #[arg(long = "grpc-package", value_name = "PACKAGE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_package: Option<String>,

    /// How often the station asks defguard for a job, like 500ms or 1s
    ///
    /// [env: KEYSTATION_POLL_INTERVAL] [default: 1s]
    #[arg(long = "poll-interval", value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_interval: Option<String>,

    /// Where the station notes the job it runs, to bound retries after a crash
    ///
    /// [env: KEYSTATION_STATE_DIR] [default: $STATE_DIRECTORY, else none]
    #[arg(long = "state-dir", value_name = "PATH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<String>,
}

/// Where the authority keeps its state and how it serves (`authority …`).
#[derive(Debug, Clone, Default, Args, Serialize)]
#[command(next_help_heading = "Authority")]
pub struct AuthorityOptions {
    /// The authority's state directory (certs/, secrets/, config/, db/)
    ///
    /// [env: KEYSTATION_AUTHORITY_DIR] [default: $STATE_DIRECTORY, else /var/lib/keystation-authority]
    #[arg(long = "dir", value_name = "PATH")]
    #[serde(rename = "authority_dir", skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,

    /// Where the HTTPS API listens, like 127.0.0.1:9443
    ///
    /// [env: KEYSTATION_AUTHORITY_ADDRESS] [default: the address `authority init` chose]
    #[arg(long = "address", value_name = "IP:PORT")]
    #[serde(rename = "authority_address", skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,

    /// Where defguard's worker service (gRPC over TLS) listens for stations
    ///
    /// [env: KEYSTATION_AUTHORITY_GRPC_ADDRESS] [default: not served]
    #[arg(long = "grpc-address", value_name = "IP:PORT")]
    #[serde(rename = "authority_grpc_address", skip_serializing_if = "Option::is_none")]
    pub grpc_address: Option<String>,

    /// The store: sqlite://PATH or postgres://…
    ///
    /// [env: KEYSTATION_AUTHORITY_DATABASE] [default: db/authority.sqlite in the state directory]
    #[arg(long = "database", value_name = "URL")]
    #[serde(rename = "authority_database", skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,

    /// File with the password of the CA keys and the first provisioner
    ///
    /// [env: KEYSTATION_AUTHORITY_PASSWORD_FILE] [default: $CREDENTIALS_DIRECTORY/authority-password]
    #[arg(long = "password-file", value_name = "FILE")]
    #[serde(rename = "authority_password_file", skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
}

/// How `provision` and the station's jobs find and open their card.
#[derive(Debug, Clone, Default, Args, Serialize)]
#[command(next_help_heading = "Finding the card")]
pub struct CardSearchOptions {
    /// How many times to look for a card before a job fails
    ///
    /// [env: KEYSTATION_SMARTCARD_RETRIES, YUBIKEY_RETRIES] [default: 1]
    #[arg(long, value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smartcard_retries: Option<String>,

    /// Seconds between looks for a card
    ///
    /// [env: KEYSTATION_SMARTCARD_RETRY_INTERVAL, YUBIKEY_RETRY_INTERVAL] [default: 15]
    #[arg(long, value_name = "SECONDS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smartcard_retry_interval: Option<String>,

    /// Open the card exclusive or shared
    ///
    /// [env: KEYSTATION_SHARE_MODE] [default: exclusive]
    #[arg(long, value_name = "MODE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_mode: Option<String>,
}

/// The OpenPGP provisioning profile.
#[derive(Debug, Clone, Default, Args, Serialize)]
#[command(next_help_heading = "OpenPGP profile")]
pub struct ProfileOptions {
    /// Key algorithm: auto, ed25519, nistp256, nistp384, rsa2048, rsa3072 or rsa4096
    ///
    /// [env: KEYSTATION_ALGORITHM] [default: auto]
    #[arg(long = "algorithm", value_name = "ALGORITHM")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,

    /// Generate keys on the card or on the host (then import them)
    ///
    /// [env: KEYSTATION_KEY_LOCATION] [default: card]
    #[arg(long = "key-location", value_name = "WHERE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_location: Option<String>,

    /// Encrypted backup of host-generated keys (needs --key-location host)
    ///
    /// [env: KEYSTATION_BACKUP_FILE] [default: none]
    #[arg(long = "backup-file", value_name = "PATH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_file: Option<String>,

    /// File holding the backup's passphrase
    ///
    /// [env: KEYSTATION_BACKUP_PASSPHRASE_FILE] [default: none]
    #[arg(long = "backup-passphrase-file", value_name = "PATH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_passphrase_file: Option<String>,

    /// PINs after provisioning: auto, unattended, random, set (from the PIN files) or keep
    ///
    /// auto is unattended for `station` (user PIN left at 123456 for the holder to change,
    /// admin PIN random and not kept, or from --admin-pin-file) and random for `provision`
    /// (both PINs random, printed in the result).
    ///
    /// [env: KEYSTATION_PIN_POLICY] [default: auto]
    #[arg(long = "pin-policy", value_name = "POLICY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin_policy: Option<String>,

    /// File holding the new user PIN (--pin-policy set)
    ///
    /// [env: KEYSTATION_USER_PIN_FILE] [default: none]
    #[arg(long = "user-pin-file", value_name = "PATH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_pin_file: Option<String>,

    /// File holding the new admin PIN (--pin-policy set or unattended)
    ///
    /// [env: KEYSTATION_ADMIN_PIN_FILE] [default: none]
    #[arg(long = "admin-pin-file", value_name = "PATH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_pin_file: Option<String>,

    /// Touch to use a key: off, on, fixed, cached or cached-fixed
    ///
    /// [env: KEYSTATION_TOUCH_POLICY] [default: off]
    #[arg(long = "touch-policy", value_name = "POLICY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub touch_policy: Option<String>,

    /// Reset the card's OpenPGP application before provisioning: true or false
    ///
    /// [env: KEYSTATION_RESET] [default: true]
    #[arg(long = "reset", value_name = "BOOL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset: Option<String>,
}

/// The flag groups a command takes, as one configuration layer.
#[derive(Debug, Default, Serialize)]
pub(crate) struct FlagGroups<'a> {
    /// The station's connection.
    #[serde(flatten)]
    pub(crate) station: Option<&'a StationOptions>,
    /// How the card is found and opened.
    #[serde(flatten)]
    pub(crate) search: Option<&'a CardSearchOptions>,
    /// The OpenPGP profile.
    #[serde(flatten)]
    pub(crate) profile: Option<&'a ProfileOptions>,
    /// The authority's state and addresses.
    #[serde(flatten)]
    pub(crate) authority: Option<&'a AuthorityOptions>,
}

/// The command line's configuration layer: `common` plus the groups the command takes.
pub(crate) fn command_line(
    common: &CommonOptions,
    groups: FlagGroups<'_>,
) -> Result<config::CommandLine, config::ConfigError> {
    #[derive(Serialize)]
    struct Layer<'a> {
        #[serde(flatten)]
        common: &'a CommonOptions,
        #[serde(flatten)]
        groups: FlagGroups<'a>,
    }
    let token = groups.station.and_then(|station| station.token.clone());
    config::CommandLine::new(common.config.clone(), token, &Layer { common, groups })
}

#[cfg(feature = "openpgp")]
/// The card a command on `choice` works on, as the configuration says: the reader filter,
/// the share mode, and — with `search` — the retries and interval of the card search.
pub(crate) fn card_selection(
    settings: &config::Settings,
    choice: CardChoice,
    search: bool,
) -> CardSelection {
    CardSelection {
        choice,
        reader: settings.reader.clone(),
        serial: settings.card_serial.clone(),
        share_mode: settings.share_mode,
        retries: if search { settings.smartcard_retries } else { 0 },
        interval: if search { settings.smartcard_retry_interval } else { Duration::ZERO },
    }
}

#[cfg(feature = "openpgp")]
/// `--card`'s parser: the names of [`CardChoice`], listed in the help.
pub(crate) fn card_choice_parser() -> impl clap::builder::TypedValueParser<Value = CardChoice> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(CardChoice::ALL.map(CardChoice::name))
        .map(|name| CardChoice::ALL.into_iter().find(|c| c.name() == name).unwrap_or_default())
}

/// The one card present in a PC/SC reader that `--reader` and `--card-serial` allow, opened
/// exclusively, without waiting: the card `piv` and `kube` work on.
#[cfg(feature = "piv")]
pub(crate) fn pcsc_card(settings: &config::Settings) -> keystation_cards::CardSelection {
    keystation_cards::CardSelection {
        serial: settings.card_serial.clone(),
        ..keystation_cards::CardSelection::pcsc(settings.reader.as_deref())
    }
}

/// The PIV flags `piv` and `kube` share: where the PIN and management key come from, and
/// the names of algorithms and PIV key policies.
#[cfg(feature = "piv")]
pub mod piv {
    use std::path::PathBuf;

    use clap::Args;
    use keystation_core::key::KeyAlgorithm;
    use keystation_core::keygen::{PinPolicy, TouchPolicy};
    use keystation_piv_ops::Access;

    /// Where the PIN and management key come from.
    #[derive(Debug, Clone, Default, Args)]
    pub struct AccessArgs {
        /// Read the PIN from this file (else it is asked for on the terminal when needed)
        #[arg(long, value_name = "FILE")]
        pub pin_file: Option<PathBuf>,
        /// Read the management key (hex) from this file [default: the PIN-protected key if the
        /// card has one, else the factory default]
        #[arg(long, value_name = "FILE")]
        pub management_key_file: Option<PathBuf>,
    }

    /// A key algorithm by the names gpg and ykman use (`p256`, `eccp256`, `nistp256`, `rsa2048`,
    /// `ed25519`, `x25519`, …).
    pub(crate) fn parse_algorithm(text: &str) -> Result<KeyAlgorithm, String> {
        text.parse().map_err(|e: keystation_core::Error| e.to_string())
    }

    /// A PIV key PIN policy: default, never, once or always.
    pub(crate) fn parse_pin_policy(text: &str) -> Result<PinPolicy, String> {
        text.parse()
            .map_err(|e: keystation_core::Error| format!("{e}: use default, never, once or always"))
    }

    /// A PIV key touch policy: default, never, always or cached.
    pub(crate) fn parse_touch_policy(text: &str) -> Result<TouchPolicy, String> {
        TouchPolicy::from_piv_name(text)
            .map_err(|e| format!("{e}: use default, never, always or cached"))
    }

    impl From<&AccessArgs> for Access {
        fn from(args: &AccessArgs) -> Self {
            Self {
                pin_file: args.pin_file.clone(),
                management_key_file: args.management_key_file.clone(),
            }
        }
    }
}
