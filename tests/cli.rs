//! The command line as a user meets it: help, version, and mistakes.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

fn keystation(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    run_in(dir.path(), args)
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keystation"));
    command.current_dir(dir).env_clear().args(args);
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    command.output().expect("run keystation")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_lists_commands_and_options() {
    let output = keystation(&["--help"]);
    assert!(output.status.success());
    let help = text(&output.stdout);
    assert!(help.contains("Usage: keystation"), "{help}");
    assert!(help.contains("config"), "{help}");
    #[cfg(feature = "pcsc")]
    assert!(help.contains("card"), "{help}");
    // The flags every command takes.
    for flag in ["--config", "--log-level", "--log-format", "--reader", "--card-serial"] {
        assert!(help.contains(flag), "{flag} missing from\n{help}");
    }
    // The station's and the OpenPGP profile's flags live on the commands that use them.
    for flag in ["--grpc", "--token", "--share-mode", "--algorithm", "--pin-policy"] {
        assert!(!help.contains(&format!("{flag} <")), "{flag} in the top-level help\n{help}");
    }
}

/// The station's long help names its flags, their environment variables and defaults.
#[cfg(feature = "grpc")]
#[test]
fn station_help_lists_its_configuration() {
    let output = keystation(&["station", "--help"]);
    assert!(output.status.success());
    let help = text(&output.stdout);
    for flag in [
        "--config",
        "--id",
        "--log-level",
        "--log-format",
        "--grpc",
        "--ca-file",
        "--token",
        "--smartcard-retries",
        "--smartcard-retry-interval",
        "--gpg-debug-level",
        "--reader",
        "--share-mode",
    ] {
        assert!(help.contains(flag), "{flag} missing from\n{help}");
    }
    assert!(help.contains("WORKER_ID"), "{help}");
    assert!(help.contains("DEFGUARD_TOKEN"), "{help}");
    assert!(help.contains("[default: http://127.0.0.1:50055]"), "{help}");
}

/// `piv` and `kube` take no OpenPGP profile or station flag: neither shows one, and
/// neither accepts one.
#[cfg(feature = "kube")]
#[test]
fn piv_and_kube_help_show_no_openpgp_or_station_options() {
    for command in
        [&["piv", "generate", "--help"][..], &["piv", "--help"], &["kube", "setup", "--help"]]
    {
        let output = keystation(command);
        assert!(output.status.success(), "{command:?}");
        let help = text(&output.stdout);
        for flag in
            ["--algorithm", "--pin-policy", "--touch-policy", "--key-location", "--grpc", "--token"]
        {
            assert!(!help.contains(&format!("{flag} <")), "{command:?} shows {flag}\n{help}");
        }
    }
    let output = keystation(&["piv", "info", "--pin-policy", "random"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("--pin-policy"), "{}", text(&output.stderr));
}

#[test]
fn subcommand_help() {
    let output = keystation(&["config", "show", "--help"]);
    assert!(output.status.success());
    let help = text(&output.stdout);
    assert!(help.contains("--format"), "{help}");
    assert!(help.contains("json"), "{help}");
}

#[cfg(feature = "pcsc")]
#[test]
fn card_help() {
    let output = keystation(&["card", "--help"]);
    assert!(output.status.success());
    assert!(text(&output.stdout).contains("list"));
}

#[test]
fn version() {
    let output = keystation(&["--version"]);
    assert!(output.status.success());
    assert_eq!(text(&output.stdout).trim(), format!("keystation {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let output = keystation(&["--bogus", "config", "show"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("unexpected argument '--bogus'"), "{stderr}");
    assert!(stderr.contains("Usage:"), "{stderr}");
}

#[test]
fn misspelt_flag_gets_a_suggestion() {
    let output = keystation(&["config", "show", "--grcp", "http://x"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("'--grcp'"), "{stderr}");
    assert!(stderr.contains("--grpc"), "{stderr}");
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let output = keystation(&["frobnicate"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("unrecognized subcommand 'frobnicate'"));
}

#[test]
fn no_subcommand_shows_help_and_fails() {
    let output = keystation(&[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("Usage: keystation"));
}

#[test]
fn bad_show_format_lists_the_choices() {
    let output = keystation(&["config", "show", "--format", "yaml"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("'yaml'"), "{stderr}");
    assert!(stderr.contains("text") && stderr.contains("json"), "{stderr}");
}

#[test]
fn flag_without_value() {
    let output = keystation(&["config", "show", "--token"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("--token"));
}

#[test]
fn options_go_before_or_after_the_subcommand() {
    let dir = tempfile::tempdir().expect("temp dir");
    let before = run_in(dir.path(), &["--reader", "early", "config", "show"]);
    let after = run_in(dir.path(), &["config", "show", "--reader", "early"]);
    assert!(before.status.success() && after.status.success());
    assert_eq!(before.stdout, after.stdout);
    assert!(text(&before.stdout).contains("command line --reader"));
}

/// `simulate --state` with a file that is not a saved card fails at once, naming the
/// file, instead of starting a factory-fresh card over it.
#[cfg(feature = "softcard")]
#[test]
fn simulate_refuses_a_corrupt_state_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("card.state"), b"garbage").expect("write");
    let output =
        run_in(dir.path(), &["simulate", "--vpcd", "127.0.0.1:9", "--state", "card.state"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("card.state") && stderr.contains("magic"), "{stderr}");
    assert_eq!(std::fs::read(dir.path().join("card.state")).expect("read"), b"garbage");
}

/// `keystation provision` on the built-in software card: the result names the card, the
/// three fingerprints, new random PINs, the SSH key and the certificate; the log on stderr
/// never shows the PINs.
#[cfg(all(feature = "openpgp", feature = "softcard"))]
#[test]
fn provision_prints_the_result_and_keeps_pins_out_of_the_log() {
    let output = keystation(&[
        "provision",
        "--card",
        "software",
        "--name",
        "Ada Lovelace",
        "--email",
        "ada@example.com",
        "--log-level",
        "trace",
    ]);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout
            .starts_with("Provisioned OpenPGP card 10000001 (Yubico): ed25519 / cv25519 / ed25519"),
        "{stdout}"
    );
    for label in ["Signature key:", "Encryption key:", "Authentication key:"] {
        let line = stdout.lines().find(|l| l.starts_with(label)).expect(label);
        let hex = line.rsplit(' ').next().unwrap();
        assert!(hex.len() == 40 && hex.chars().all(|c| c.is_ascii_hexdigit()), "{line}");
    }
    let pin = |label: &str| -> String {
        let line = stdout.lines().find(|l| l.starts_with(label)).expect(label);
        line.rsplit(' ').next().unwrap().to_owned()
    };
    let (user, admin) = (pin("User PIN:"), pin("Admin PIN:"));
    assert_eq!((user.len(), admin.len()), (6, 8));
    assert!(
        !stderr.contains(&user) && !stderr.contains(&admin),
        "a PIN reached the log:\n{stderr}"
    );
    assert!(stderr.contains("redacted"), "the trace shows APDUs, redacted:\n{stderr}");
    assert!(stdout.contains("\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5"), "{stdout}");
    assert!(stdout.trim_end().ends_with("-----END PGP PUBLIC KEY BLOCK-----"), "{stdout}");
}

#[cfg(feature = "openpgp")]
#[test]
fn provision_refuses_bad_holders_with_a_clear_message() {
    for (args, message) in [
        (&["--name", "Ada"][..], "invalid --name: give a first and a last name"),
        (
            &["--name", "Ada Lovelace", "--email", "ada.example.com"][..],
            "invalid email: it has no '@'",
        ),
        (
            &["--first-name", "Ada", "--last-name", "<Lovelace>"][..],
            "invalid last name: it contains '<' or '>'",
        ),
    ] {
        let mut all = vec!["provision", "--card", "software"];
        all.extend_from_slice(args);
        if !args.contains(&"--email") {
            all.extend_from_slice(&["--email", "ada@example.com"]);
        }
        let output = keystation(&all);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}
