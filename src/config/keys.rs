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
}

const fn key(key: &'static str, flag: &'static str, env: &'static [&'static str]) -> KeySpec {
    KeySpec { key, flag, env, secret: false }
}

// The key names.
pub(crate) const ID: &str = "id";
pub(crate) const LOG_LEVEL: &str = "log_level";
pub(crate) const LOG_FORMAT: &str = "log_format";
pub(crate) const GRPC_URL: &str = "grpc_url";
pub(crate) const GRPC_CA: &str = "grpc_ca";
pub(crate) const TOKEN: &str = "token";
pub(crate) const SMARTCARD_RETRIES: &str = "smartcard_retries";
pub(crate) const SMARTCARD_RETRY_INTERVAL: &str = "smartcard_retry_interval";
pub(crate) const GPG_DEBUG_LEVEL: &str = "gpg_debug_level";
pub(crate) const READER: &str = "reader";
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

/// Every configuration key, in display order.
pub(crate) const KEYS: &[KeySpec] = &[
    key(ID, "--id", &["KEYSTATION_ID", "WORKER_ID", "ID"]),
    key(LOG_LEVEL, "--log-level", &["KEYSTATION_LOG_LEVEL", "LOG_LEVEL"]),
    key(LOG_FORMAT, "--log-format", &["KEYSTATION_LOG_FORMAT"]),
    key(GRPC_URL, "--grpc", &["KEYSTATION_GRPC_URL", "GRPC_URL"]),
    key(GRPC_CA, "--ca-file", &["KEYSTATION_GRPC_CA", "GRPC_CA"]),
    KeySpec {
        key: TOKEN,
        flag: "--token",
        env: &["KEYSTATION_TOKEN", "DEFGUARD_TOKEN"],
        secret: true,
    },
    key(
        SMARTCARD_RETRIES,
        "--smartcard-retries",
        &["KEYSTATION_SMARTCARD_RETRIES", "YUBIKEY_RETRIES"],
    ),
    key(
        SMARTCARD_RETRY_INTERVAL,
        "--smartcard-retry-interval",
        &["KEYSTATION_SMARTCARD_RETRY_INTERVAL", "YUBIKEY_RETRY_INTERVAL"],
    ),
    key(GPG_DEBUG_LEVEL, "--gpg-debug-level", &["KEYSTATION_GPG_DEBUG_LEVEL", "GPG_DEBUG_LEVEL"]),
    key(READER, "--reader", &["KEYSTATION_READER"]),
    key(SHARE_MODE, "--share-mode", &["KEYSTATION_SHARE_MODE"]),
    key(GRPC_PACKAGE, "--grpc-package", &["KEYSTATION_GRPC_PACKAGE"]),
    key(POLL_INTERVAL, "--poll-interval", &["KEYSTATION_POLL_INTERVAL"]),
    key(ALGORITHM, "--algorithm", &["KEYSTATION_ALGORITHM"]),
    key(KEY_LOCATION, "--key-location", &["KEYSTATION_KEY_LOCATION"]),
    key(BACKUP_FILE, "--backup-file", &["KEYSTATION_BACKUP_FILE"]),
    key(BACKUP_PASSPHRASE_FILE, "--backup-passphrase-file", &["KEYSTATION_BACKUP_PASSPHRASE_FILE"]),
    key(PIN_POLICY, "--pin-policy", &["KEYSTATION_PIN_POLICY"]),
    key(USER_PIN_FILE, "--user-pin-file", &["KEYSTATION_USER_PIN_FILE"]),
    key(ADMIN_PIN_FILE, "--admin-pin-file", &["KEYSTATION_ADMIN_PIN_FILE"]),
    key(TOUCH_POLICY, "--touch-policy", &["KEYSTATION_TOUCH_POLICY"]),
    key(RESET, "--reset", &["KEYSTATION_RESET"]),
];

/// Whether `key` holds a file path (for the "expected" text of its errors).
pub(crate) fn is_path(key: &str) -> bool {
    matches!(key, GRPC_CA | BACKUP_FILE | BACKUP_PASSPHRASE_FILE | USER_PIN_FILE | ADMIN_PIN_FILE)
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
