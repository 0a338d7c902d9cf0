//! The table of configuration keys: every key's command-line flag and environment names.
//!
//! This is the single place that knows which outside name maps to which key; the layer
//! builders and the provenance code both read it.

/// One configuration key and the names it goes by outside the TOML file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeySpec {
    /// The key as written in the TOML file and shown by `config show`.
    pub(crate) key: &'static str,
    /// The command-line flag, with its dashes.
    pub(crate) flag: &'static str,
    /// Environment (and `.env`) variable names, **highest priority first**: the
    /// `KEYSTATION_*` name, then the defguard provisioner's names.
    pub(crate) env: &'static [&'static str],
    /// The value is a secret: never shown, never echoed in errors.
    pub(crate) secret: bool,
    /// What the key means and which values it takes, in one or two sentences: the
    /// comment above the key in `keystation config template`.
    pub(crate) about: &'static str,
}

const fn key(
    key: &'static str,
    flag: &'static str,
    env: &'static [&'static str],
    about: &'static str,
) -> KeySpec {
    KeySpec { key, flag, env, secret: false, about }
}

// The key names.
pub(crate) const ID: &str = "id";
pub(crate) const LOG_LEVEL: &str = "log_level";
pub(crate) const LOG_FORMAT: &str = "log_format";
pub(crate) const GRPC_URL: &str = "grpc_url";
pub(crate) const GRPC_CA: &str = "grpc_ca";
pub(crate) const TOKEN: &str = "token";
pub(crate) const TOKEN_FILE: &str = "token_file";
pub(crate) const GRPC_ALLOW_PLAINTEXT: &str = "grpc_allow_plaintext";
pub(crate) const SMARTCARD_RETRIES: &str = "smartcard_retries";
pub(crate) const SMARTCARD_RETRY_INTERVAL: &str = "smartcard_retry_interval";
pub(crate) const GPG_DEBUG_LEVEL: &str = "gpg_debug_level";
pub(crate) const READER: &str = "reader";
pub(crate) const CARD_SERIAL: &str = "card_serial";
pub(crate) const SHARE_MODE: &str = "share_mode";
pub(crate) const GRPC_PACKAGE: &str = "grpc_package";
pub(crate) const POLL_INTERVAL: &str = "poll_interval";
pub(crate) const ALGORITHM: &str = "algorithm";
pub(crate) const KEY_LOCATION: &str = "key_location";
pub(crate) const BACKUP_FILE: &str = "backup_file";
pub(crate) const BACKUP_PASSPHRASE_FILE: &str = "backup_passphrase_file";
pub(crate) const PIN_POLICY: &str = "pin_policy";
pub(crate) const USER_PIN_FILE: &str = "user_pin_file";
pub(crate) const ADMIN_PIN_FILE: &str = "admin_pin_file";
pub(crate) const TOUCH_POLICY: &str = "touch_policy";
pub(crate) const RESET: &str = "reset";
pub(crate) const STATE_DIR: &str = "state_dir";
pub(crate) const AUTHORITY_DIR: &str = "authority_dir";
pub(crate) const AUTHORITY_ADDRESS: &str = "authority_address";
pub(crate) const AUTHORITY_GRPC_ADDRESS: &str = "authority_grpc_address";
pub(crate) const AUTHORITY_DATABASE: &str = "authority_database";
pub(crate) const AUTHORITY_PASSWORD_FILE: &str = "authority_password_file";

/// Every configuration key, in display order.
pub(crate) const KEYS: &[KeySpec] = &[
    key(
        ID,
        "--id",
        &["KEYSTATION_ID", "WORKER_ID", "ID"],
        "The station's name in defguard's Provisioners page.",
    ),
    key(
        LOG_LEVEL,
        "--log-level",
        &["KEYSTATION_LOG_LEVEL", "LOG_LEVEL"],
        "error, warn, info, debug or trace (trace logs every APDU, secrets redacted).",
    ),
    key(
        LOG_FORMAT,
        "--log-format",
        &["KEYSTATION_LOG_FORMAT"],
        "text or json; logs go to stderr (the journal under systemd).",
    ),
    key(
        GRPC_URL,
        "--grpc",
        &["KEYSTATION_GRPC_URL", "GRPC_URL"],
        "defguard's gRPC endpoint, http:// or https://.",
    ),
    key(
        GRPC_CA,
        "--ca-file",
        &["KEYSTATION_GRPC_CA", "GRPC_CA"],
        "PEM CA certificate that verifies defguard's TLS certificate (then TLS is used).",
    ),
    KeySpec {
        key: TOKEN,
        flag: "--token",
        env: &["KEYSTATION_TOKEN", "DEFGUARD_TOKEN"],
        secret: true,
        about: "The token from defguard's Provisioners page. Secret: prefer token_file.",
    },
    key(
        TOKEN_FILE,
        "--token-file",
        &["KEYSTATION_TOKEN_FILE"],
        "File holding the token (e.g. a systemd credential, %d/token); instead of token.",
    ),
    key(
        GRPC_ALLOW_PLAINTEXT,
        "--grpc-allow-plaintext",
        &["KEYSTATION_GRPC_ALLOW_PLAINTEXT"],
        "Allow sending the token over plain http:// to a host that is not loopback.",
    ),
    key(
        SMARTCARD_RETRIES,
        "--smartcard-retries",
        &["KEYSTATION_SMARTCARD_RETRIES", "YUBIKEY_RETRIES"],
        "How many times a job looks for a card before it fails.",
    ),
    key(
        SMARTCARD_RETRY_INTERVAL,
        "--smartcard-retry-interval",
        &["KEYSTATION_SMARTCARD_RETRY_INTERVAL", "YUBIKEY_RETRY_INTERVAL"],
        "Seconds between looks for a card.",
    ),
    key(
        GPG_DEBUG_LEVEL,
        "--gpg-debug-level",
        &["KEYSTATION_GPG_DEBUG_LEVEL", "GPG_DEBUG_LEVEL"],
        "Accepted for compatibility with defguard's provisioner; keystation runs no gpg.",
    ),
    key(
        READER,
        "--reader",
        &["KEYSTATION_READER"],
        "Use only PC/SC readers whose name contains this text.",
    ),
    key(
        CARD_SERIAL,
        "--card-serial",
        &["KEYSTATION_CARD_SERIAL"],
        "Use only the card with this serial number (a YubiKey's as ykman shows it, else the \
         OpenPGP serial as gpg --card-status shows it).",
    ),
    key(
        SHARE_MODE,
        "--share-mode",
        &["KEYSTATION_SHARE_MODE"],
        "How jobs open the card: exclusive or shared.",
    ),
    key(
        GRPC_PACKAGE,
        "--grpc-package",
        &["KEYSTATION_GRPC_PACKAGE"],
        "defguard.worker.v1 (current defguard) or worker (older cores).",
    ),
    key(
        POLL_INTERVAL,
        "--poll-interval",
        &["KEYSTATION_POLL_INTERVAL"],
        "How often the station asks for a job (500ms, 1s, 2m); defguard wants 2s or less.",
    ),
    key(
        ALGORITHM,
        "--algorithm",
        &["KEYSTATION_ALGORITHM"],
        "auto, ed25519, nistp256, nistp384, rsa2048, rsa3072 or rsa4096.",
    ),
    key(
        KEY_LOCATION,
        "--key-location",
        &["KEYSTATION_KEY_LOCATION"],
        "card (generated on the card) or host (generated in memory, imported, zeroized).",
    ),
    key(
        BACKUP_FILE,
        "--backup-file",
        &["KEYSTATION_BACKUP_FILE"],
        "With key_location = host: write the passphrase-encrypted secret keys here.",
    ),
    key(
        BACKUP_PASSPHRASE_FILE,
        "--backup-passphrase-file",
        &["KEYSTATION_BACKUP_PASSPHRASE_FILE"],
        "File holding the backup's passphrase.",
    ),
    key(
        PIN_POLICY,
        "--pin-policy",
        &["KEYSTATION_PIN_POLICY"],
        "auto (station: unattended; provision: random), unattended (user PIN left at \
         123456 for the holder to change, admin PIN random and not kept, or from \
         admin_pin_file), random (shown on a console), set (from the PIN files) or keep.",
    ),
    key(
        USER_PIN_FILE,
        "--user-pin-file",
        &["KEYSTATION_USER_PIN_FILE"],
        "File holding the new user PIN (pin_policy = set).",
    ),
    key(
        ADMIN_PIN_FILE,
        "--admin-pin-file",
        &["KEYSTATION_ADMIN_PIN_FILE"],
        "File holding the new admin PIN (pin_policy = set or unattended).",
    ),
    key(
        TOUCH_POLICY,
        "--touch-policy",
        &["KEYSTATION_TOUCH_POLICY"],
        "off, on, fixed, cached or cached-fixed.",
    ),
    key(
        RESET,
        "--reset",
        &["KEYSTATION_RESET"],
        "Factory-reset the card's OpenPGP application before provisioning.",
    ),
    key(
        STATE_DIR,
        "--state-dir",
        &["KEYSTATION_STATE_DIR"],
        "Where the station notes the job it is running, so that a job that keeps killing \
         the station is failed, not retried forever (default: $STATE_DIRECTORY).",
    ),
    key(
        AUTHORITY_DIR,
        "--dir",
        &["KEYSTATION_AUTHORITY_DIR"],
        "The authority's state directory: certs/, secrets/, config/, db/ \
         (default: $STATE_DIRECTORY, else /var/lib/keystation-authority).",
    ),
    key(
        AUTHORITY_ADDRESS,
        "--address",
        &["KEYSTATION_AUTHORITY_ADDRESS"],
        "Where the authority's HTTPS API listens, like 127.0.0.1:9443 (default: the \
         address `authority init` chose).",
    ),
    key(
        AUTHORITY_GRPC_ADDRESS,
        "--grpc-address",
        &["KEYSTATION_AUTHORITY_GRPC_ADDRESS"],
        "Where the authority serves defguard's worker service to stations (gRPC over TLS); \
         not served when unset.",
    ),
    key(
        AUTHORITY_DATABASE,
        "--database",
        &["KEYSTATION_AUTHORITY_DATABASE"],
        "The authority's store: sqlite://PATH or postgres://… (default: db/authority.sqlite \
         in the state directory). Keep PostgreSQL passwords out of it (PGPASSFILE).",
    ),
    key(
        AUTHORITY_PASSWORD_FILE,
        "--password-file",
        &["KEYSTATION_AUTHORITY_PASSWORD_FILE"],
        "File holding the password of the authority's CA keys and first provisioner \
         (default: $CREDENTIALS_DIRECTORY/authority-password under systemd).",
    ),
];

/// Whether `key` holds a file path (for the "expected" text of its errors).
pub(crate) fn is_path(key: &str) -> bool {
    matches!(
        key,
        GRPC_CA
            | TOKEN_FILE
            | BACKUP_FILE
            | BACKUP_PASSPHRASE_FILE
            | USER_PIN_FILE
            | ADMIN_PIN_FILE
            | STATE_DIR
            | AUTHORITY_DIR
            | AUTHORITY_PASSWORD_FILE
    )
}

/// The variable that names the config file (not a key itself: it selects a layer).
pub(crate) const CONFIG_VAR: &str = "KEYSTATION_CONFIG";
/// The flag that names the config file.
pub(crate) const CONFIG_FLAG: &str = "--config";
/// Prefix of keystation's own variables; unknown ones draw a warning.
pub(crate) const PREFIX: &str = "KEYSTATION_";
/// Variables under this prefix belong to the test harness (e.g. `KEYSTATION_TEST_READER`)
/// and are not configuration, so they draw no warning.
pub(crate) const TEST_PREFIX: &str = "KEYSTATION_TEST_";

/// The spec of `key`, which must be one of [`KEYS`].
pub(crate) fn spec(key: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|s| s.key == key)
}

/// Whether `name` is a variable keystation reads (any key's name, or the config-file one).
pub(crate) fn is_known_variable(name: &str) -> bool {
    name == CONFIG_VAR || KEYS.iter().any(|s| s.env.contains(&name))
}

/// Whether an unknown `name` deserves the "unknown variable" warning.
pub(crate) fn is_suspicious_variable(name: &str) -> bool {
    name.starts_with(PREFIX) && !name.starts_with(TEST_PREFIX) && !is_known_variable(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for spec in KEYS {
            assert!(seen.insert(spec.key), "duplicate key {}", spec.key);
            assert!(seen.insert(spec.flag), "duplicate flag {}", spec.flag);
            for var in spec.env {
                assert!(seen.insert(var), "duplicate variable {var}");
            }
            assert!(
                spec.env[0].starts_with(PREFIX),
                "{}: KEYSTATION_* name must come first",
                spec.key
            );
            assert_eq!(spec.env[0], format!("{PREFIX}{}", spec.key.to_ascii_uppercase()));
        }
    }

    #[test]
    fn suspicious_variables() {
        assert!(is_suspicious_variable("KEYSTATION_GRCP_URL"));
        assert!(!is_suspicious_variable("KEYSTATION_GRPC_URL"));
        assert!(!is_suspicious_variable("KEYSTATION_CONFIG"));
        assert!(!is_suspicious_variable("KEYSTATION_TEST_READER"));
        assert!(!is_suspicious_variable("GRCP_URL"));
    }
}
