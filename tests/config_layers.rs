//! Configuration layering, provenance, validation and secrecy.
//!
//! Most tests run the real binary in a fresh working directory with a cleared environment
//! (only `PATH` is passed on), so the machine's environment cannot leak in. The `jail_*`
//! tests call the library through `figment::Jail`, which also clears the environment and
//! changes into a temporary directory.
// `result_large_err`: `figment::Jail` closures must return `figment::Error`, which is large.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::result_large_err)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use keystation::cli::Cli;
use keystation::config::{self, ConfigError, LogLevel, Origin, ShareMode, ShownValue};

const SECRET: &str = "s3cr3t-T0KEN-do-not-leak";

/// A fresh working directory with its own files and environment.
struct Station {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Station {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("temp dir"), env: Vec::new() }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `name` in the working directory and returns its absolute path.
    fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, contents).expect("write file");
        path
    }

    fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_keystation"));
        command.current_dir(self.path()).env_clear().args(args);
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command.output().expect("run keystation")
    }

    /// `config show` with `args`, parsed into key → (value, source). Fails the test if the
    /// command fails.
    fn show(&self, args: &[&str]) -> BTreeMap<String, (String, String)> {
        let mut all = vec!["config", "show"];
        all.extend_from_slice(args);
        let output = self.run(&all);
        assert!(output.status.success(), "config show failed: {}", text(&output.stderr));
        parse_table(&text(&output.stdout))
    }

    /// Runs `config show` with `args`, expects a configuration error, returns its message.
    fn error(&self, args: &[&str]) -> String {
        let mut all = vec!["config", "show"];
        all.extend_from_slice(args);
        let output = self.run(&all);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
        assert!(output.stdout.is_empty(), "stdout: {}", text(&output.stdout));
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!stderr.contains("backtrace"), "{stderr}");
        let line = stderr.trim_end();
        assert_eq!(line.lines().count(), 1, "one line expected: {stderr}");
        line.strip_prefix("error: ").expect("error: prefix").to_owned()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Parses the aligned `KEY VALUE SOURCE` table by the header's column positions.
fn parse_table(table: &str) -> BTreeMap<String, (String, String)> {
    let mut lines = table.lines();
    let header = lines.next().expect("header");
    let value_at = header.find("VALUE").expect("VALUE column");
    let source_at = header.find("SOURCE").expect("SOURCE column");
    lines
        .take_while(|l| !l.is_empty())
        .map(|l| {
            (
                l[..value_at].trim().to_owned(),
                (l[value_at..source_at].trim().to_owned(), l[source_at..].trim().to_owned()),
            )
        })
        .collect()
}

fn entry(table: &BTreeMap<String, (String, String)>, key: &str) -> (String, String) {
    table.get(key).cloned().unwrap_or_else(|| panic!("no {key} in {table:?}"))
}

fn assert_entry(table: &BTreeMap<String, (String, String)>, key: &str, value: &str, source: &str) {
    assert_eq!(entry(table, key), (value.to_owned(), source.to_owned()), "key {key}");
}

// ---------------------------------------------------------------------------------------
// Defaults and each layer
// ---------------------------------------------------------------------------------------

#[test]
fn defaults() {
    let table = Station::new().show(&[]);
    let expected = [
        ("id", "YubikeyProvisioner"),
        ("log_level", "info"),
        ("log_format", "text"),
        ("grpc_url", "http://127.0.0.1:50055"),
        ("grpc_ca", "(unset)"),
        ("token", "(unset)"),
        ("token_file", "(unset)"),
        ("grpc_allow_plaintext", "false"),
        ("smartcard_retries", "1"),
        ("smartcard_retry_interval", "15"),
        ("gpg_debug_level", "none"),
        ("reader", "(unset)"),
        ("card_serial", "(unset)"),
        ("share_mode", "exclusive"),
        ("grpc_package", "defguard.worker.v1"),
        ("poll_interval", "1s"),
        ("algorithm", "auto"),
        ("key_location", "card"),
        ("backup_file", "(unset)"),
        ("backup_passphrase_file", "(unset)"),
        ("pin_policy", "auto"),
        ("user_pin_file", "(unset)"),
        ("admin_pin_file", "(unset)"),
        ("touch_policy", "off"),
        ("reset", "true"),
        ("state_dir", "(unset)"),
        ("authority_dir", "(unset)"),
        ("authority_address", "(unset)"),
        ("authority_grpc_address", "(unset)"),
        ("authority_database", "(unset)"),
        ("authority_password_file", "(unset)"),
    ];
    assert_eq!(table.len(), expected.len(), "{table:?}");
    for (key, value) in expected {
        assert_entry(&table, key, value, "default");
    }
}

/// One value per key that differs from the default, as (key, value shown, TOML literal).
const EVERY_KEY: &[(&str, &str, &str)] = &[
    ("id", "station-7", "\"station-7\""),
    ("log_level", "debug", "\"debug\""),
    ("log_format", "json", "\"json\""),
    ("grpc_url", "https://defguard.example:444", "\"https://defguard.example:444\""),
    ("grpc_ca", "/etc/ca.pem", "\"/etc/ca.pem\""),
    ("grpc_allow_plaintext", "true", "true"),
    ("smartcard_retries", "5", "5"),
    ("smartcard_retry_interval", "3", "3"),
    ("gpg_debug_level", "guru", "\"guru\""),
    ("reader", "Yubico", "\"Yubico\""),
    ("share_mode", "shared", "\"shared\""),
    ("grpc_package", "worker", "\"worker\""),
    ("poll_interval", "500ms", "\"500ms\""),
    ("algorithm", "rsa4096", "\"rsa4096\""),
    ("key_location", "host", "\"host\""),
    ("backup_file", "/etc/keys.bak", "\"/etc/keys.bak\""),
    ("backup_passphrase_file", "/etc/keys.pass", "\"/etc/keys.pass\""),
    ("pin_policy", "set", "\"set\""),
    ("user_pin_file", "/etc/user.pin", "\"/etc/user.pin\""),
    ("admin_pin_file", "/etc/admin.pin", "\"/etc/admin.pin\""),
    ("touch_policy", "cached-fixed", "\"cached-fixed\""),
    ("reset", "false", "false"),
    ("state_dir", "/var/lib/ks", "\"/var/lib/ks\""),
    ("authority_dir", "/var/lib/ca", "\"/var/lib/ca\""),
    ("authority_address", "127.0.0.1:9443", "\"127.0.0.1:9443\""),
    ("authority_grpc_address", "[::1]:50055", "\"[::1]:50055\""),
    ("authority_database", "postgres://ca@db/ca", "\"postgres://ca@db/ca\""),
    ("authority_password_file", "/etc/ca.pass", "\"/etc/ca.pass\""),
];

#[test]
fn config_file_sets_every_key() {
    let station = Station::new();
    let mut toml: String =
        EVERY_KEY.iter().map(|(key, _, literal)| format!("{key} = {literal}\n")).collect();
    toml.push_str(&format!("token = \"{SECRET}\"\n"));
    let path = station.file("keystation.toml", &toml);
    let table = station.show(&["--config", path.to_str().unwrap()]);
    let source = format!("config file {}", path.display());
    for (key, value, _) in EVERY_KEY {
        assert_entry(&table, key, value, &source);
    }
    assert_entry(&table, "token", "<redacted>", &source);
}

/// (key, value, KEYSTATION_* variable, defguard variable if any)
const EVERY_VARIABLE: &[(&str, &str, &str, Option<&str>)] = &[
    ("id", "station-7", "KEYSTATION_ID", Some("WORKER_ID")),
    ("log_level", "debug", "KEYSTATION_LOG_LEVEL", Some("LOG_LEVEL")),
    ("log_format", "json", "KEYSTATION_LOG_FORMAT", None),
    ("grpc_url", "https://defguard.example:444", "KEYSTATION_GRPC_URL", Some("GRPC_URL")),
    ("grpc_ca", "/etc/ca.pem", "KEYSTATION_GRPC_CA", Some("GRPC_CA")),
    ("grpc_allow_plaintext", "true", "KEYSTATION_GRPC_ALLOW_PLAINTEXT", None),
    ("smartcard_retries", "5", "KEYSTATION_SMARTCARD_RETRIES", Some("YUBIKEY_RETRIES")),
    (
        "smartcard_retry_interval",
        "3",
        "KEYSTATION_SMARTCARD_RETRY_INTERVAL",
        Some("YUBIKEY_RETRY_INTERVAL"),
    ),
    ("gpg_debug_level", "guru", "KEYSTATION_GPG_DEBUG_LEVEL", Some("GPG_DEBUG_LEVEL")),
    ("reader", "Yubico", "KEYSTATION_READER", None),
    ("share_mode", "shared", "KEYSTATION_SHARE_MODE", None),
    ("grpc_package", "worker", "KEYSTATION_GRPC_PACKAGE", None),
    ("poll_interval", "500ms", "KEYSTATION_POLL_INTERVAL", None),
    ("algorithm", "rsa4096", "KEYSTATION_ALGORITHM", None),
    ("key_location", "host", "KEYSTATION_KEY_LOCATION", None),
    ("backup_file", "/etc/keys.bak", "KEYSTATION_BACKUP_FILE", None),
    ("backup_passphrase_file", "/etc/keys.pass", "KEYSTATION_BACKUP_PASSPHRASE_FILE", None),
    ("pin_policy", "set", "KEYSTATION_PIN_POLICY", None),
    ("user_pin_file", "/etc/user.pin", "KEYSTATION_USER_PIN_FILE", None),
    ("admin_pin_file", "/etc/admin.pin", "KEYSTATION_ADMIN_PIN_FILE", None),
    ("touch_policy", "cached-fixed", "KEYSTATION_TOUCH_POLICY", None),
    ("reset", "false", "KEYSTATION_RESET", None),
    ("state_dir", "/var/lib/ks", "KEYSTATION_STATE_DIR", None),
    ("authority_dir", "/var/lib/ca", "KEYSTATION_AUTHORITY_DIR", None),
    ("authority_address", "127.0.0.1:9443", "KEYSTATION_AUTHORITY_ADDRESS", None),
    ("authority_grpc_address", "[::1]:50055", "KEYSTATION_AUTHORITY_GRPC_ADDRESS", None),
    ("authority_database", "postgres://ca@db/ca", "KEYSTATION_AUTHORITY_DATABASE", None),
    ("authority_password_file", "/etc/ca.pass", "KEYSTATION_AUTHORITY_PASSWORD_FILE", None),
];

#[test]
fn environment_sets_every_key_under_every_name() {
    for use_defguard_names in [false, true] {
        let mut station = Station::new();
        let mut expected = Vec::new();
        for (key, value, ours, theirs) in EVERY_VARIABLE {
            let name = if use_defguard_names { theirs.unwrap_or(ours) } else { ours };
            station = station.env(name, value);
            expected.push((*key, *value, format!("environment variable {name}")));
        }
        let token_var = if use_defguard_names { "DEFGUARD_TOKEN" } else { "KEYSTATION_TOKEN" };
        station = station.env(token_var, SECRET);
        let table = station.show(&[]);
        for (key, value, source) in &expected {
            assert_entry(&table, key, value, source);
        }
        assert_entry(&table, "token", "<redacted>", &format!("environment variable {token_var}"));
    }
}

#[test]
fn dotenv_files_set_every_key() {
    for file in [".env", ".env.local"] {
        let station = Station::new();
        let mut contents: String = EVERY_VARIABLE
            .iter()
            .map(|(_, value, ours, theirs)| format!("{}={value}\n", theirs.unwrap_or(ours)))
            .collect();
        contents.push_str(&format!("DEFGUARD_TOKEN={SECRET}\n"));
        station.file(file, &contents);
        let table = station.show(&[]);
        for (key, value, ours, theirs) in EVERY_VARIABLE {
            let source = format!(".env file ./{file}, variable {}", theirs.unwrap_or(ours));
            assert_entry(&table, key, value, &source);
        }
        assert_entry(
            &table,
            "token",
            "<redacted>",
            &format!(".env file ./{file}, variable DEFGUARD_TOKEN"),
        );
    }
}

#[test]
fn command_line_sets_every_key() {
    let flags = [
        ("id", "--id"),
        ("log_level", "--log-level"),
        ("log_format", "--log-format"),
        ("grpc_url", "--grpc"),
        ("grpc_ca", "--ca-file"),
        ("grpc_allow_plaintext", "--grpc-allow-plaintext"),
        ("smartcard_retries", "--smartcard-retries"),
        ("smartcard_retry_interval", "--smartcard-retry-interval"),
        ("gpg_debug_level", "--gpg-debug-level"),
        ("reader", "--reader"),
        ("share_mode", "--share-mode"),
        ("grpc_package", "--grpc-package"),
        ("poll_interval", "--poll-interval"),
        ("algorithm", "--algorithm"),
        ("key_location", "--key-location"),
        ("backup_file", "--backup-file"),
        ("backup_passphrase_file", "--backup-passphrase-file"),
        ("pin_policy", "--pin-policy"),
        ("user_pin_file", "--user-pin-file"),
        ("admin_pin_file", "--admin-pin-file"),
        ("touch_policy", "--touch-policy"),
        ("reset", "--reset"),
        ("state_dir", "--state-dir"),
        ("authority_dir", "--dir"),
        ("authority_address", "--address"),
        ("authority_grpc_address", "--grpc-address"),
        ("authority_database", "--database"),
        ("authority_password_file", "--password-file"),
    ];
    let mut args = vec!["--token", SECRET];
    for (key, flag) in flags {
        let value = EVERY_KEY.iter().find(|(k, ..)| *k == key).unwrap().1;
        args.extend([flag, value]);
    }
    let table = Station::new().show(&args);
    for (key, flag) in flags {
        let value = EVERY_KEY.iter().find(|(k, ..)| *k == key).unwrap().1;
        assert_entry(&table, key, value, &format!("command line {flag}"));
    }
    assert_entry(&table, "token", "<redacted>", "command line --token");
}

// ---------------------------------------------------------------------------------------
// Precedence between layers
// ---------------------------------------------------------------------------------------

/// Adds one layer at a time, lowest first, and checks that each one takes over.
#[test]
fn each_layer_beats_the_one_below() {
    let station = Station::new();
    let table = station.show(&[]);
    assert_entry(&table, "grpc_url", "http://127.0.0.1:50055", "default");

    let path = station.file("station.toml", "grpc_url = \"http://file:1\"\nid = \"from-file\"\n");
    let config = path.to_str().unwrap();
    let file_source = format!("config file {}", path.display());
    let table = station.show(&["--config", config]);
    assert_entry(&table, "grpc_url", "http://file:1", &file_source);

    station.file(".env", "GRPC_URL=http://dotenv:2\nLOG_LEVEL=warn\n");
    let table = station.show(&["--config", config]);
    assert_entry(&table, "grpc_url", "http://dotenv:2", ".env file ./.env, variable GRPC_URL");

    station.file(".env.local", "GRPC_URL=http://dotenv-local:3\n");
    let table = station.show(&["--config", config]);
    assert_entry(
        &table,
        "grpc_url",
        "http://dotenv-local:3",
        ".env file ./.env.local, variable GRPC_URL",
    );

    let station = station.env("GRPC_URL", "http://environment:4");
    let table = station.show(&["--config", config]);
    assert_entry(&table, "grpc_url", "http://environment:4", "environment variable GRPC_URL");

    let table = station.show(&["--config", config, "--grpc", "http://cli:5"]);
    assert_entry(&table, "grpc_url", "http://cli:5", "command line --grpc");

    // Keys that no higher layer sets keep their lower source.
    assert_entry(&table, "id", "from-file", &file_source);
    assert_entry(&table, "log_level", "warn", ".env file ./.env, variable LOG_LEVEL");
    assert_entry(&table, "share_mode", "exclusive", "default");
}

#[test]
fn keystation_names_beat_defguard_names_in_one_layer() {
    let station = Station::new()
        .env("GRPC_URL", "http://defguard-name:1")
        .env("KEYSTATION_GRPC_URL", "http://keystation-name:2")
        .env("DEFGUARD_TOKEN", "other-token")
        .env("KEYSTATION_TOKEN", SECRET)
        .env("YUBIKEY_RETRIES", "7")
        .env("KEYSTATION_SMARTCARD_RETRIES", "8");
    let table = station.show(&[]);
    assert_entry(
        &table,
        "grpc_url",
        "http://keystation-name:2",
        "environment variable KEYSTATION_GRPC_URL",
    );
    assert_entry(&table, "token", "<redacted>", "environment variable KEYSTATION_TOKEN");
    assert_entry(
        &table,
        "smartcard_retries",
        "8",
        "environment variable KEYSTATION_SMARTCARD_RETRIES",
    );

    // The same within a .env file, whatever the order of the lines.
    let station = Station::new();
    station.file(".env", "KEYSTATION_LOG_LEVEL=trace\nLOG_LEVEL=error\n");
    let table = station.show(&[]);
    assert_entry(&table, "log_level", "trace", ".env file ./.env, variable KEYSTATION_LOG_LEVEL");
}

#[test]
fn but_a_defguard_name_in_a_higher_layer_beats_a_keystation_name_in_a_lower_one() {
    let station = Station::new().env("LOG_LEVEL", "debug");
    station.file(".env", "KEYSTATION_LOG_LEVEL=trace\n");
    let table = station.show(&[]);
    assert_entry(&table, "log_level", "debug", "environment variable LOG_LEVEL");
}

#[test]
fn worker_id_beats_id_and_keystation_id_beats_both() {
    let station = Station::new().env("ID", "plain-id");
    assert_entry(&station.show(&[]), "id", "plain-id", "environment variable ID");
    let station = station.env("WORKER_ID", "worker-id");
    assert_entry(&station.show(&[]), "id", "worker-id", "environment variable WORKER_ID");
    let station = station.env("KEYSTATION_ID", "keystation-id");
    assert_entry(&station.show(&[]), "id", "keystation-id", "environment variable KEYSTATION_ID");
    assert_entry(&station.show(&["--id", "flag-id"]), "id", "flag-id", "command line --id");

    let station = Station::new();
    station.file(".env", "ID=plain-id\nWORKER_ID=worker-id\n");
    assert_entry(&station.show(&[]), "id", "worker-id", ".env file ./.env, variable WORKER_ID");
}

#[test]
fn dotenv_local_beats_dotenv_key_by_key() {
    let station = Station::new();
    station.file(".env", "WORKER_ID=from-env-file\nYUBIKEY_RETRIES=4\n");
    station.file(".env.local", "WORKER_ID=from-local\n");
    let table = station.show(&[]);
    assert_entry(&table, "id", "from-local", ".env file ./.env.local, variable WORKER_ID");
    assert_entry(&table, "smartcard_retries", "4", ".env file ./.env, variable YUBIKEY_RETRIES");
}

#[test]
fn dotenv_does_not_touch_the_process_environment_or_beat_it() {
    // If the .env were loaded into the environment, its value would show as an
    // environment variable; and a real environment variable must still win.
    let station = Station::new().env("WORKER_ID", "real-env");
    station.file(".env", "WORKER_ID=dotenv\nYUBIKEY_RETRIES=9\n");
    let table = station.show(&[]);
    assert_entry(&table, "id", "real-env", "environment variable WORKER_ID");
    assert_entry(&table, "smartcard_retries", "9", ".env file ./.env, variable YUBIKEY_RETRIES");
}

#[test]
fn empty_value_unsets_an_optional_key() {
    let station = Station::new().env("KEYSTATION_READER", "");
    let path = station.file("k.toml", "reader = \"Yubico\"\ngrpc_ca = \"/ca.pem\"\n");
    let table = station.show(&["--config", path.to_str().unwrap(), "--ca-file", ""]);
    assert_entry(&table, "reader", "(unset)", "environment variable KEYSTATION_READER");
    assert_entry(&table, "grpc_ca", "(unset)", "command line --ca-file");
}

// ---------------------------------------------------------------------------------------
// The config file
// ---------------------------------------------------------------------------------------

#[test]
fn config_file_named_by_environment_or_dotenv() {
    let station = Station::new();
    let a = station.file("a.toml", "id = \"a\"\n");
    let b = station.file("b.toml", "id = \"b\"\n");
    let c = station.file("c.toml", "id = \"c\"\n");

    // Named in .env (relative to the working directory).
    station.file(".env", "KEYSTATION_CONFIG=c.toml\n");
    assert_entry(&station.show(&[]), "id", "c", &format!("config file {}", c.display()));

    // The environment beats .env; --config beats the environment.
    let station = station.env("KEYSTATION_CONFIG", a.to_str().unwrap());
    assert_entry(&station.show(&[]), "id", "a", &format!("config file {}", a.display()));
    let output = station.run(&["config", "show", "--config", b.to_str().unwrap()]);
    let stdout = text(&output.stdout);
    assert_entry(&parse_table(&stdout), "id", "b", &format!("config file {}", b.display()));
    assert!(
        stdout.contains(&format!("config file: {} (named by command line --config)", b.display()))
    );
}

#[test]
fn relative_config_path_is_shown_absolute() {
    let station = Station::new();
    let path = station.file("rel.toml", "id = \"rel\"\n");
    let table = station.show(&["--config", "rel.toml"]);
    assert_entry(&table, "id", "rel", &format!("config file {}", path.display()));
}

#[test]
fn missing_config_file_is_an_error() {
    let station = Station::new();
    let message = station.error(&["--config", "missing.toml"]);
    let expected = format!(
        "cannot read config file {} (named by command line --config): ",
        station.path().join("missing.toml").display()
    );
    assert!(message.starts_with(&expected), "{message}");
    assert!(message.contains("No such file"), "{message}");

    let station = station.env("KEYSTATION_CONFIG", "/nonexistent/k.toml");
    let message = station.error(&[]);
    assert!(
        message.starts_with(
            "cannot read config file /nonexistent/k.toml (named by environment variable KEYSTATION_CONFIG)"
        ),
        "{message}"
    );
}

#[test]
fn unknown_key_in_config_file_is_an_error() {
    let station = Station::new();
    let path = station.file("k.toml", "id = \"x\"\ngrcp_url = \"http://x\"\n");
    let message = station.error(&["--config", path.to_str().unwrap()]);
    assert!(
        message.starts_with(&format!(
            "config file {} has unknown key grcp_url (known keys: id, ",
            path.display()
        )),
        "{message}"
    );
}

#[test]
fn config_file_syntax_error_names_the_file_but_not_the_line() {
    let station = Station::new();
    let path = station.file("k.toml", &format!("id = \"x\"\ntoken = {SECRET}\n"));
    let message = station.error(&["--config", path.to_str().unwrap()]);
    assert!(
        message.starts_with(&format!("config file {} is not valid TOML: ", path.display())),
        "{message}"
    );
    assert!(message.contains("line 2"), "{message}");
    assert!(!message.contains(SECRET), "{message}");
}

// ---------------------------------------------------------------------------------------
// Invalid values
// ---------------------------------------------------------------------------------------

#[test]
fn invalid_value_from_the_environment() {
    let message = Station::new().env("YUBIKEY_RETRIES", "abc").error(&[]);
    assert_eq!(
        message,
        "invalid value \"abc\" for smartcard_retries (from environment variable YUBIKEY_RETRIES): \
         expected an unsigned integer"
    );
}

#[test]
fn invalid_authority_address() {
    let message = Station::new().env("KEYSTATION_AUTHORITY_ADDRESS", "ca.example:443").error(&[]);
    assert_eq!(
        message,
        "invalid value \"ca.example:443\" for authority_address (from environment variable \
         KEYSTATION_AUTHORITY_ADDRESS): expected an IP address and port, like 127.0.0.1:9443 or \
         [::1]:9443"
    );
}

#[test]
fn invalid_value_from_a_dotenv_file() {
    let station = Station::new();
    station.file(".env", "LOG_LEVEL=loud\n");
    assert_eq!(
        station.error(&[]),
        "invalid value \"loud\" for log_level (from .env file ./.env, variable LOG_LEVEL): \
         expected one of error, warn, info, debug, trace"
    );
    station.file(".env.local", "KEYSTATION_SHARE_MODE=sometimes\n");
    let station_with_good_level = station.env("LOG_LEVEL", "info");
    assert_eq!(
        station_with_good_level.error(&[]),
        "invalid value \"sometimes\" for share_mode (from .env file ./.env.local, variable \
         KEYSTATION_SHARE_MODE): expected one of exclusive, shared"
    );
}

#[test]
fn invalid_value_from_the_config_file() {
    let station = Station::new();
    let path = station.file("k.toml", "smartcard_retry_interval = -1\n");
    assert_eq!(
        station.error(&["--config", path.to_str().unwrap()]),
        format!(
            "invalid value -1 for smartcard_retry_interval (from config file {}): expected an \
             unsigned integer",
            path.display()
        )
    );
    let path = station.file("k2.toml", "id = 42\n");
    assert_eq!(
        station.error(&["--config", path.to_str().unwrap()]),
        format!(
            "invalid value 42 for id (from config file {}): expected a non-empty string",
            path.display()
        )
    );
}

#[test]
fn invalid_value_from_the_command_line() {
    let station = Station::new();
    assert_eq!(
        station.error(&["--grpc", "ftp://x"]),
        "invalid value \"ftp://x\" for grpc_url (from command line --grpc): expected an http:// \
         or https:// URL with a host, like http://127.0.0.1:50055"
    );
    assert_eq!(
        station.error(&["--smartcard-retries", "4294967296"]),
        "invalid value \"4294967296\" for smartcard_retries (from command line \
         --smartcard-retries): expected an unsigned integer no larger than 4294967295"
    );
    assert_eq!(
        station.error(&["--gpg-debug-level", "7"]),
        "invalid value \"7\" for gpg_debug_level (from command line --gpg-debug-level): \
         expected one of none, basic, advanced, expert, guru"
    );
    assert_eq!(
        station.error(&["--log-format", "xml"]),
        "invalid value \"xml\" for log_format (from command line --log-format): expected one \
         of text, json"
    );
}

#[test]
fn station_and_profile_values_are_validated() {
    let station = Station::new();
    assert_eq!(
        station.error(&["--grpc-package", "defguard.worker.v2"]),
        "invalid value \"defguard.worker.v2\" for grpc_package (from command line \
         --grpc-package): expected one of defguard.worker.v1, worker"
    );
    let duration = "expected a duration greater than zero and at most 1h, like 500ms, 1s or 2m \
                    (a plain number is seconds)";
    for bad in ["0", "0ms", "1.5s", "fast", "2h"] {
        assert_eq!(
            station.error(&["--poll-interval", bad]),
            format!(
                "invalid value \"{bad}\" for poll_interval (from command line --poll-interval): {duration}"
            )
        );
    }
    let path = station.file("k.toml", "poll_interval = -5\n");
    assert_eq!(
        station.error(&["--config", path.to_str().unwrap()]),
        format!(
            "invalid value -5 for poll_interval (from config file {}): {duration}",
            path.display()
        )
    );
    let station = Station::new().env("KEYSTATION_ALGORITHM", "dsa1024");
    assert_eq!(
        station.error(&[]),
        "invalid value \"dsa1024\" for algorithm (from environment variable KEYSTATION_ALGORITHM): \
         expected one of auto, ed25519, nistp256, nistp384, rsa2048, rsa3072, rsa4096"
    );
    let station = Station::new();
    station.file(".env", "KEYSTATION_KEY_LOCATION=cloud\n");
    assert_eq!(
        station.error(&[]),
        "invalid value \"cloud\" for key_location (from .env file ./.env, variable \
         KEYSTATION_KEY_LOCATION): expected one of card, host"
    );
    let station = Station::new();
    assert_eq!(
        station.error(&["--pin-policy", "factory"]),
        "invalid value \"factory\" for pin_policy (from command line --pin-policy): expected one \
         of auto, unattended, random, set, keep"
    );
    assert_eq!(
        station.error(&["--touch-policy", "always"]),
        "invalid value \"always\" for touch_policy (from command line --touch-policy): expected \
         one of off, on, fixed, cached, cached-fixed"
    );
    assert_eq!(
        station.error(&["--reset", "maybe"]),
        "invalid value \"maybe\" for reset (from command line --reset): expected true or false"
    );
    let path = station.file("r.toml", "reset = \"yes\"\nuser_pin_file = 3\n");
    assert_eq!(
        station.error(&["--config", path.to_str().unwrap()]),
        format!(
            "invalid value 3 for user_pin_file (from config file {}): expected a file path",
            path.display()
        )
    );
}

#[test]
fn station_values_in_every_accepted_form() {
    let table = Station::new()
        .env("KEYSTATION_POLL_INTERVAL", "2")
        .env("KEYSTATION_RESET", "No")
        .show(&["--grpc-package", "WORKER", "--algorithm", "Ed25519"]);
    assert_entry(&table, "poll_interval", "2s", "environment variable KEYSTATION_POLL_INTERVAL");
    assert_entry(&table, "reset", "false", "environment variable KEYSTATION_RESET");
    assert_entry(&table, "grpc_package", "worker", "command line --grpc-package");
    assert_entry(&table, "algorithm", "ed25519", "command line --algorithm");

    let station = Station::new();
    let path = station.file("k.toml", "poll_interval = 3\nreset = false\n");
    let table = station.show(&["--config", path.to_str().unwrap(), "--poll-interval", "1500ms"]);
    assert_entry(&table, "poll_interval", "1500ms", "command line --poll-interval");
    assert_entry(&table, "reset", "false", &format!("config file {}", path.display()));
}

#[test]
fn profile_keys_that_need_each_other() {
    let station = Station::new();
    assert_eq!(
        station.error(&["--backup-file", "/b", "--backup-passphrase-file", "/p"]),
        "invalid value \"/b\" for backup_file (from command line --backup-file): expected no \
         backup file unless key_location is host (keys generated on the card cannot be exported)"
    );
    let station = Station::new().env("KEYSTATION_BACKUP_FILE", "/b");
    assert_eq!(
        station.error(&["--key-location", "host"]),
        "invalid value \"/b\" for backup_file (from environment variable KEYSTATION_BACKUP_FILE): \
         expected a backup_passphrase_file as well (a backup is always encrypted)"
    );
    let table = station.show(&["--key-location", "host", "--backup-passphrase-file", "/p"]);
    assert_entry(&table, "backup_file", "/b", "environment variable KEYSTATION_BACKUP_FILE");

    let station = Station::new();
    assert_eq!(
        station.error(&["--pin-policy", "set", "--user-pin-file", "/u"]),
        "invalid value \"set\" for pin_policy (from command line --pin-policy): expected pin_policy \
         set to come with both user_pin_file and admin_pin_file"
    );
    let table =
        station.show(&["--pin-policy", "set", "--user-pin-file", "/u", "--admin-pin-file", "/a"]);
    assert_entry(&table, "pin_policy", "set", "command line --pin-policy");
    // The PIN files are paths, not secrets: shown, and read only when a job needs them.
    assert_entry(&table, "user_pin_file", "/u", "command line --user-pin-file");
}

#[test]
fn secret_files_are_read_without_the_line_ending() {
    let station = Station::new();
    for (contents, expected) in [
        (&b"123456\n"[..], &b"123456"[..]),
        (b"12345678\r\n", b"12345678"),
        (b"no newline", b"no newline"),
        (b"two\n\n", b"two\n"),
        (b"", b""),
    ] {
        let path = station.path().join("secret");
        std::fs::write(&path, contents).unwrap();
        let secret = config::read_secret_file(&path).unwrap();
        assert_eq!(secret.expose(), expected);
        assert!(!format!("{secret:?}").contains("123456"));
    }
    let missing = config::read_secret_file(&station.path().join("missing")).unwrap_err();
    assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn jail_station_settings_are_typed() {
    figment::Jail::expect_with(|jail| {
        jail.clear_env();
        jail.create_file(
            "k.toml",
            "grpc_package = \"worker\"\npoll_interval = \"250ms\"\nalgorithm = \"nistp384\"\n\
             key_location = \"host\"\nbackup_file = \"b.bin\"\nbackup_passphrase_file = \"p\"\n\
             touch_policy = \"on\"\npin_policy = \"keep\"\nreset = false\n",
        )?;
        let args = parse_args(&["--config", "k.toml"]);
        let s = config::load(&args).expect("load").settings;
        assert_eq!(s.grpc_package, config::GrpcPackage::Worker);
        assert_eq!(s.poll_interval, std::time::Duration::from_millis(250));
        assert_eq!(s.algorithm, config::AlgorithmChoice::NistP384);
        assert_eq!(s.key_location, config::KeyOrigin::Host);
        assert_eq!(s.backup_file.as_deref(), Some(Path::new("b.bin")));
        assert_eq!(s.backup_passphrase_file.as_deref(), Some(Path::new("p")));
        assert_eq!(s.touch_policy, config::TouchPolicy::Always);
        assert_eq!(s.pin_policy, config::PinPlan::Keep);
        assert!(!s.reset);

        let d = config::Settings::default();
        assert_eq!(d.pin_policy, config::PinPlan::Auto);
        let attended = config::Attendance::Attended;
        let unattended = config::Attendance::Unattended;
        assert_eq!(d.pin_policy.for_command(attended), config::PinPlan::Random);
        assert_eq!(d.pin_policy.for_command(unattended), config::PinPlan::Unattended);
        assert_eq!(config::PinPlan::Set.for_command(unattended), config::PinPlan::Set);
        assert!(d.reset);
        assert_eq!(d.poll_interval, std::time::Duration::from_secs(1));
        Ok(())
    });
}

#[test]
fn only_the_winning_value_is_validated() {
    let station = Station::new().env("YUBIKEY_RETRIES", "abc");
    station.file(".env", "LOG_LEVEL=loud\nGRPC_URL=ftp://x\n");
    let table =
        station.show(&["--smartcard-retries", "3", "--log-level", "warn", "--grpc", "http://ok"]);
    assert_entry(&table, "smartcard_retries", "3", "command line --smartcard-retries");
}

#[test]
fn enum_values_ignore_case() {
    let table = Station::new().env("LOG_LEVEL", "DEBUG").show(&["--share-mode", "Shared"]);
    assert_entry(&table, "log_level", "debug", "environment variable LOG_LEVEL");
    assert_entry(&table, "share_mode", "shared", "command line --share-mode");
}

#[test]
fn dotenv_syntax_error_names_the_line_but_not_its_text() {
    let station = Station::new();
    station.file(".env", &format!("WORKER_ID=ok\n# comment\nDEFGUARD_TOKEN='{SECRET}\n"));
    let message = station.error(&[]);
    assert_eq!(message, ".env file ./.env has a syntax error on line 3");
}

// ---------------------------------------------------------------------------------------
// Secrecy
// ---------------------------------------------------------------------------------------

fn assert_no_secret(output: &Output) {
    for stream in [&output.stdout, &output.stderr] {
        let stream = text(stream);
        assert!(!stream.contains(SECRET), "secret leaked:\n{stream}");
        assert!(!stream.contains("s3cr3t"), "part of the secret leaked:\n{stream}");
    }
}

#[test]
fn token_never_appears_in_output() {
    let station = Station::new().env("DEFGUARD_TOKEN", SECRET).env("KEYSTATION_FOO", "1");
    station.file(".env", &format!("DEFGUARD_TOKEN={SECRET}\n"));
    let path = station.file("k.toml", &format!("token = \"{SECRET}\"\n"));
    let config = path.to_str().unwrap();
    for args in [
        &["config", "show"][..],
        &["config", "show", "--format", "json"],
        &["config", "show", "--log-level", "trace"],
        &["config", "show", "--log-level", "trace", "--log-format", "json", "--format", "json"],
        &["config", "show", "--config", config, "--token", SECRET, "--log-level", "trace"],
    ] {
        let output = station.run(args);
        assert!(output.status.success(), "{}", text(&output.stderr));
        assert_no_secret(&output);
        assert!(text(&output.stdout).contains("<redacted>"));
    }
}

#[test]
fn invalid_token_error_does_not_show_it() {
    let spaced = format!("{SECRET} trailing");
    let station = Station::new().env("DEFGUARD_TOKEN", &spaced);
    let output = station.run(&["config", "show"]);
    assert_eq!(output.status.code(), Some(2));
    assert_no_secret(&output);
    assert_eq!(
        text(&output.stderr).trim_end(),
        "error: invalid value for token (from environment variable DEFGUARD_TOKEN): expected a \
         token without spaces or control characters"
    );

    let station = Station::new();
    let path = station.file("k.toml", "token = 12345\n");
    let output = station.run(&["config", "show", "--config", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(!text(&output.stderr).contains("12345"), "{}", text(&output.stderr));
}

#[test]
fn json_output_is_complete_and_redacted() {
    let station = Station::new().env("DEFGUARD_TOKEN", SECRET).env("GRPC_URL", "https://d:1");
    let output = station.run(&["config", "show", "--format", "json"]);
    assert!(output.status.success());
    assert_no_secret(&output);
    let json = text(&output.stdout);
    assert!(json.contains("\"config_file\": null"), "{json}");
    assert!(
        json.contains(
            "\"grpc_url\": {\"value\": \"https://d:1\", \"secret\": false, \"source\": \
             \"environment variable GRPC_URL\", \"origin\": {\"layer\": \"environment\", \
             \"variable\": \"GRPC_URL\"}}"
        ),
        "{json}"
    );
    assert!(json.contains("\"token\": {\"value\": \"<redacted>\", \"secret\": true"), "{json}");
    assert!(json.contains("\"smartcard_retries\": {\"value\": 1,"), "{json}");
    assert!(json.contains("\"reader\": {\"value\": null,"), "{json}");
    assert!(json.trim_end().ends_with('}'));
}

// ---------------------------------------------------------------------------------------
// Warnings
// ---------------------------------------------------------------------------------------

#[test]
fn unknown_keystation_variables_draw_a_warning() {
    let station = Station::new()
        .env("KEYSTATION_GRCP_URL", "http://typo")
        .env("KEYSTATION_TEST_READER", "vpcd")
        .env("UNRELATED", "1");
    station.file(".env", "KEYSTATION_TOKN=x\nOTHER_APP_SETTING=1\n");
    let output = station.run(&["config", "show"]);
    assert!(output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("WARN"), "{stderr}");
    assert!(
        stderr.contains("ignoring unknown environment variable KEYSTATION_GRCP_URL"),
        "{stderr}"
    );
    assert!(
        stderr.contains("ignoring unknown variable KEYSTATION_TOKN in .env file ./.env"),
        "{stderr}"
    );
    assert!(!stderr.contains("KEYSTATION_TEST_READER"), "{stderr}");
    assert!(!stderr.contains("UNRELATED") && !stderr.contains("OTHER_APP"), "{stderr}");
    // Warnings go to stderr only; stdout stays parseable.
    assert!(!text(&output.stdout).contains("KEYSTATION_GRCP_URL"));
}

#[test]
fn json_logs_on_request() {
    let station = Station::new().env("KEYSTATION_GRCP_URL", "http://typo");
    let output = station.run(&["config", "show", "--log-format", "json"]);
    assert!(output.status.success());
    let stderr = text(&output.stderr);
    let line = stderr.lines().next().expect("a log line");
    assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
    assert!(line.contains("\"level\":\"WARN\""), "{line}");
    assert!(line.contains("KEYSTATION_GRCP_URL"), "{line}");
}

#[test]
fn error_level_silences_warnings() {
    let station = Station::new().env("KEYSTATION_GRCP_URL", "x").env("LOG_LEVEL", "error");
    let output = station.run(&["config", "show"]);
    assert!(output.status.success());
    assert!(output.stderr.is_empty(), "{}", text(&output.stderr));
}

// ---------------------------------------------------------------------------------------
// The library API, through figment::Jail
// ---------------------------------------------------------------------------------------

fn parse_args(args: &[&str]) -> config::CommandLine {
    use clap::Parser;
    let mut all = vec!["keystation", "config", "show"];
    all.extend_from_slice(args);
    Cli::try_parse_from(all).expect("parse").command_line().expect("command line")
}

#[test]
fn jail_layers_and_origins() {
    figment::Jail::expect_with(|jail| {
        jail.clear_env();
        jail.create_file("k.toml", "id = \"file\"\nsmartcard_retries = 4\nreader = \"ACS\"\n")?;
        jail.create_file(".env", "LOG_LEVEL=debug\nYUBIKEY_RETRY_INTERVAL=30\nWORKER_ID=dotenv\n")?;
        jail.create_file(".env.local", "LOG_LEVEL=trace\n")?;
        jail.set_env("KEYSTATION_CONFIG", "k.toml");
        jail.set_env("DEFGUARD_TOKEN", SECRET);
        jail.set_env("WORKER_ID", "env");
        let args = parse_args(&["--share-mode", "shared", "--id", "cli"]);

        let loaded = config::load(&args).expect("load");
        let s = &loaded.settings;
        assert_eq!(s.id, "cli");
        assert_eq!(s.log_level, LogLevel::Trace);
        assert_eq!(s.smartcard_retries, 4);
        assert_eq!(s.smartcard_retry_interval, std::time::Duration::from_secs(30));
        assert_eq!(s.reader.as_deref(), Some("ACS"));
        assert_eq!(s.share_mode, ShareMode::Shared);
        assert_eq!(s.grpc_url, "http://127.0.0.1:50055");
        assert_eq!(s.token.as_ref().map(|t| t.expose()), Some(SECRET));

        let file = jail.directory().join("k.toml");
        let dotenv = |file: &str, variable: &str| Origin::DotEnv {
            path: Path::new(".").join(file),
            variable: variable.to_owned(),
        };
        assert_eq!(loaded.origin("id"), Some(&Origin::CommandLine { flag: "--id" }));
        assert_eq!(loaded.origin("log_level"), Some(&dotenv(".env.local", "LOG_LEVEL")));
        assert_eq!(
            loaded.origin("smartcard_retry_interval"),
            Some(&dotenv(".env", "YUBIKEY_RETRY_INTERVAL"))
        );
        assert_eq!(
            loaded.origin("smartcard_retries"),
            Some(&Origin::ConfigFile { path: file.clone() })
        );
        assert_eq!(
            loaded.origin("token"),
            Some(&Origin::Environment { variable: "DEFGUARD_TOKEN".to_owned() })
        );
        assert_eq!(loaded.origin("grpc_url"), Some(&Origin::Default));
        assert_eq!(loaded.entry("token").map(|e| &e.value), Some(&ShownValue::Redacted));
        let named = loaded.config_file.as_ref().expect("config file");
        assert_eq!(named.path, file);
        assert_eq!(
            named.named_by,
            Origin::Environment { variable: "KEYSTATION_CONFIG".to_owned() }
        );
        assert!(loaded.warnings.is_empty());

        // Nothing that can be printed shows the token.
        for shown in [format!("{loaded:?}"), format!("{:#?}", loaded.settings), format!("{args:?}")]
        {
            assert!(!shown.contains(SECRET), "{shown}");
        }
        Ok(())
    });
}

#[test]
fn jail_invalid_value_error_is_typed() {
    figment::Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("YUBIKEY_RETRIES", "abc");
        match config::load(&config::CommandLine::default()) {
            Err(ConfigError::InvalidValue { key, value, origin, expected }) => {
                assert_eq!(key, "smartcard_retries");
                assert_eq!(value.as_deref(), Some("\"abc\""));
                assert_eq!(origin, Origin::Environment { variable: "YUBIKEY_RETRIES".to_owned() });
                assert_eq!(expected, "an unsigned integer");
            }
            other => panic!("unexpected {other:?}"),
        }

        jail.set_env("YUBIKEY_RETRIES", "2");
        jail.set_env("KEYSTATION_TOKEN", format!("{SECRET}\n"));
        match config::load(&config::CommandLine::default()) {
            Err(error @ ConfigError::InvalidValue { key: "token", value: None, .. }) => {
                assert!(!error.to_string().contains(SECRET));
                assert!(!format!("{error:?}").contains(SECRET));
            }
            other => panic!("unexpected {other:?}"),
        }
        Ok(())
    });
}

#[test]
fn jail_warnings_are_returned() {
    figment::Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("KEYSTATION_LOGLEVEL", "debug");
        jail.create_file(".env", "KEYSTATION_RETRIES=3\n")?;
        let loaded = config::load(&config::CommandLine::default()).expect("load");
        let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            warnings,
            [
                "ignoring unknown variable KEYSTATION_RETRIES in .env file ./.env",
                "ignoring unknown environment variable KEYSTATION_LOGLEVEL",
            ]
        );
        Ok(())
    });
}

#[test]
fn load_from_takes_an_explicit_environment() {
    let station = Station::new();
    station.file(".env", "WORKER_ID=dotenv\n");
    let env = [("WORKER_ID".into(), "explicit".into()), ("ID".into(), "ignored".into())];
    let loaded =
        config::load_from(&config::CommandLine::default(), env, station.path()).expect("load");
    assert_eq!(loaded.settings.id, "explicit");
    let loaded =
        config::load_from(&config::CommandLine::default(), [], station.path()).expect("load");
    assert_eq!(loaded.settings.id, "dotenv");
    assert_eq!(
        loaded.origin("id"),
        Some(&Origin::DotEnv {
            path: station.path().join(".env"),
            variable: "WORKER_ID".to_owned()
        })
    );
}

#[cfg(unix)]
#[test]
fn non_utf8_value_is_an_error_naming_the_variable() {
    use std::os::unix::ffi::OsStrExt;
    let station = Station::new();
    let output = Command::new(env!("CARGO_BIN_EXE_keystation"))
        .current_dir(station.path())
        .env_clear()
        .env("YUBIKEY_RETRIES", std::ffi::OsStr::from_bytes(b"1\xff"))
        .args(["config", "show"])
        .output()
        .expect("run keystation");
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        text(&output.stderr).trim_end(),
        "error: invalid value \"1\u{fffd}\" for smartcard_retries (from environment variable \
         YUBIKEY_RETRIES): expected valid UTF-8 text"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_keystation"))
        .current_dir(station.path())
        .env_clear()
        .env("DEFGUARD_TOKEN", std::ffi::OsStr::from_bytes(b"s3cr3t\xff"))
        .args(["config", "show"])
        .output()
        .expect("run keystation");
    assert_eq!(
        text(&output.stderr).trim_end(),
        "error: invalid value for token (from environment variable DEFGUARD_TOKEN): expected \
         valid UTF-8 text"
    );
}

#[test]
fn token_file_is_a_path_and_excludes_token() {
    let station = Station::new().env("KEYSTATION_TOKEN_FILE", "/run/credentials/token");
    let table = station.show(&[]);
    assert_entry(
        &table,
        "token_file",
        "/run/credentials/token",
        "environment variable KEYSTATION_TOKEN_FILE",
    );
    assert_entry(&table, "token", "(unset)", "default");
    let both = Station::new().env("KEYSTATION_TOKEN_FILE", "/t").env("DEFGUARD_TOKEN", SECRET);
    let output = both.run(&["config", "show"]);
    assert_eq!(output.status.code(), Some(2));
    assert_no_secret(&output);
    assert_eq!(
        text(&output.stderr).trim_end(),
        "error: invalid value \"/t\" for token_file (from environment variable \
         KEYSTATION_TOKEN_FILE): expected token or token_file, not both"
    );
}

#[test]
fn config_show_says_what_happens_to_the_pins() {
    let shown = text(&Station::new().run(&["config", "show"]).stdout);
    assert!(
        shown.contains(
            "PINs, station:   user PIN left at the factory value 123456 for the holder to \
             change; admin PIN set to a random value that nobody is told"
        ),
        "{shown}"
    );
    assert!(
        shown.contains("PINs, provision: random user and admin PINs, printed in the result"),
        "{shown}"
    );
    let station = Station::new();
    let pin = station.file("admin.pin", "87654321\n");
    let shown = text(
        &station
            .run(&["config", "show", "--format", "json", "--admin-pin-file", pin.to_str().unwrap()])
            .stdout,
    );
    assert!(
        shown.contains(
            "\"pins\": {\"station\": \"user PIN left at the factory value 123456 for the holder \
             to change; admin PIN set from admin_pin_file\""
        ),
        "{shown}"
    );
    let shown = text(&Station::new().run(&["config", "show", "--pin-policy", "random"]).stdout);
    assert!(
        shown.contains(
            "PINs, station:   random user and admin PINs, shown on the station's console"
        ),
        "{shown}"
    );
}

#[test]
fn config_template_names_every_key_and_loads_uncommented() {
    let station = Station::new();
    let output = station.run(&["config", "template"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let template = text(&output.stdout);
    let shown = station.show(&[]);
    for key in shown.keys() {
        assert!(template.contains(&format!("\n#{key} = ")), "{key} missing:\n{template}");
    }
    // Uncommenting every setting line gives a file that loads and changes nothing, except
    // the keys without a default, whose empty value means "unset" (and token stays unset).
    let uncommented: String = template
        .lines()
        .map(|line| match line.strip_prefix('#') {
            Some(setting) if setting.contains(" = ") && !setting.starts_with(' ') => {
                format!("{setting}\n")
            }
            _ => format!("{line}\n"),
        })
        .collect();
    let path = station.file("station.toml", &uncommented);
    let table = station.show(&["--config", path.to_str().unwrap()]);
    for (key, (value, _)) in &shown {
        assert_eq!(&table[key].0, value, "{key}");
    }
}
