//! gpg against a card in the private pcscd's vpcd reader: a temporary `GNUPGHOME` whose
//! `scdaemon.conf` points scdaemon at that reader through PC/SC, and a scripted pinentry
//! that answers the PINs the test gives it.
//!
//! Tests include it after the simulator helpers, whose `run` and `tool` it uses:
//!
//! ```text
//! #[path = "support/simulator.rs"] mod simulator;
//! #[path = "support/gnupg.rs"] mod gnupg;
//! ```
//!
//! scdaemon runs with `disable-ccid`, `pcsc-shared` and `reader-port`; gpg-agent and
//! scdaemon inherit `PCSCLITE_CSOCK_NAME` from gpg, so they use the private pcscd of
//! `scripts/with-pcscd`. Dropping a [`Gnupg`] runs `gpgconf --kill all` for its home.
//! `--card-edit` refuses `--batch`, so [`Gnupg::card_edit`] runs it with `--no-tty
//! --command-fd 0`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::simulator::{run, tool};

/// The OpenPGP card's factory PINs: PW1 (user) and PW3 (admin).
pub(crate) const FACTORY_PW1: &str = "123456";
pub(crate) const FACTORY_PW3: &str = "12345678";

/// A pinentry that speaks just enough Assuan for gpg-agent: the Admin PIN for prompts
/// that mention it, the user PIN otherwise.
const PINENTRY: &str = r#"#!/bin/sh
echo "OK Pleased to meet you"
prompt=""
while IFS= read -r line; do
    case "$line" in
        SETDESC*|SETPROMPT*) prompt="$prompt $line"; echo OK ;;
        GETPIN)
            case "$prompt" in
                *Admin*) echo "D @PW3@" ;;
                *) echo "D @PW1@" ;;
            esac
            prompt=""
            echo OK ;;
        BYE) echo OK; exit 0 ;;
        *) echo OK ;;
    esac
done
"#;

/// A temporary `GNUPGHOME` set up for a vpcd reader; dropping it stops the gpg-agent
/// and scdaemon that ran there.
pub(crate) struct Gnupg {
    home: tempfile::TempDir,
    gpg: PathBuf,
    gpgconf: PathBuf,
}

impl Gnupg {
    /// A home for `reader` whose pinentry answers the factory PINs.
    pub(crate) fn new(reader: &str) -> Self {
        Self::with_pins(reader, FACTORY_PW1, FACTORY_PW3)
    }

    /// A home for `reader` whose pinentry answers `user_pin` (PW1), or `admin_pin` (PW3)
    /// when the prompt asks for the Admin PIN. The PINs must be plain ASCII without
    /// spaces or `%` (they go into an Assuan data line unescaped).
    pub(crate) fn with_pins(reader: &str, user_pin: &str, admin_pin: &str) -> Self {
        for pin in [user_pin, admin_pin] {
            assert!(
                pin.bytes().all(|b| b.is_ascii_graphic() && b != b'%' && b != b'\''),
                "the scripted pinentry cannot answer {pin:?}"
            );
        }
        let (gpg, gpgconf) = (tool("gpg"), tool("gpgconf"));
        // scdaemon is not on PATH; gpgconf knows where gpg-agent will look for it.
        let components = run(&gpgconf, &["--list-components"]);
        let scdaemon = components
            .lines()
            .find_map(|line| line.strip_prefix("scdaemon:"))
            .and_then(|rest| rest.rsplit(':').next())
            .unwrap_or_else(|| {
                panic!("gpgconf lists no scdaemon (install Debian's scdaemon):\n{components}")
            });
        assert!(
            Path::new(scdaemon).exists(),
            "{scdaemon} is missing; install Debian's scdaemon (scripts/test does)"
        );
        let home = tempfile::Builder::new().prefix("gpg").tempdir().expect("temporary GNUPGHOME");
        let path = home.path();
        set_mode(path, 0o700);
        std::fs::write(
            path.join("scdaemon.conf"),
            format!("disable-ccid\npcsc-shared\nreader-port {reader}\n"),
        )
        .unwrap();
        let pinentry = path.join("pinentry.sh");
        std::fs::write(&pinentry, PINENTRY.replace("@PW1@", user_pin).replace("@PW3@", admin_pin))
            .unwrap();
        set_mode(&pinentry, 0o755);
        std::fs::write(
            path.join("gpg-agent.conf"),
            format!("pinentry-program {}\n", pinentry.display()),
        )
        .unwrap();
        Self { home, gpg, gpgconf }
    }

    /// A file name inside the home (for messages, signatures and the like).
    pub(crate) fn path(&self, name: &str) -> String {
        self.home.path().join(name).to_string_lossy().into_owned()
    }

    /// Runs gpg in this home with `stdin` as its standard input.
    ///
    /// ykman kills scdaemon when it wants the card for itself; gpg-agent then still holds
    /// the dead scdaemon's pipe and the next card command fails with "Broken pipe". That is
    /// gpg-agent's state, not the card's: restart scdaemon and run the command again (twice
    /// at most).
    pub(crate) fn output(&self, args: &[&str], stdin: &str) -> Output {
        let mut output = self.output_once(args, stdin);
        for _ in 0..2 {
            if output.status.success()
                || !String::from_utf8_lossy(&output.stderr).contains("Broken pipe")
            {
                break;
            }
            self.kill_scdaemon();
            output = self.output_once(args, stdin);
        }
        output
    }

    fn output_once(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(&self.gpg)
            .env("GNUPGHOME", self.home.path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting gpg");
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).expect("writing to gpg");
        child.wait_with_output().expect("waiting for gpg")
    }

    /// Runs gpg and returns stdout and stderr; panics with both when it fails.
    pub(crate) fn run(&self, args: &[&str], stdin: &str) -> (String, String) {
        let output = self.output(args, stdin);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            output.status.success(),
            "gpg {args:?} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
            output.status
        );
        (stdout, stderr)
    }

    /// `gpg --card-edit` driven through the command fd; returns the status lines and
    /// messages (stderr) after the run (stdout too, appended).
    pub(crate) fn card_edit(&self, script: &str) -> String {
        let (stdout, stderr) =
            self.run(&["--no-tty", "--command-fd", "0", "--status-fd", "2", "--card-edit"], script);
        format!("{stderr}\n{stdout}")
    }

    /// `gpg --card-status`, line by line.
    pub(crate) fn card_status(&self) -> Vec<String> {
        let (stdout, _) = self.run(&["--card-status"], "");
        stdout.lines().map(str::to_owned).collect()
    }

    /// Stops scdaemon so that another client gets the card to itself.
    pub(crate) fn kill_scdaemon(&self) {
        let status = Command::new(&self.gpgconf)
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "scdaemon"])
            .status()
            .expect("running gpgconf");
        assert!(status.success(), "gpgconf --kill scdaemon failed");
        // gpg-agent notices scdaemon's exit asynchronously; a gpg command sent at once can
        // still reach the dead scdaemon ("OpenPGP card not available: Broken pipe").
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

impl Drop for Gnupg {
    fn drop(&mut self) {
        let _ = Command::new(&self.gpgconf)
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "all"])
            .stdin(Stdio::null())
            .status();
    }
}

fn set_mode(path: &Path, mode: u32) {
    let mut permissions = std::fs::metadata(path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, mode);
    std::fs::set_permissions(path, permissions).unwrap();
}

/// The value of the `gpg --card-status` line whose label starts with `label`.
pub(crate) fn field<'a>(status: &'a [String], label: &str) -> &'a str {
    status
        .iter()
        .find(|line| line.starts_with(label))
        .and_then(|line| line.split_once(": "))
        .map_or_else(|| panic!("no {label:?} line in:\n{status:#?}"), |(_, value)| value.trim())
}

/// A fingerprint as `gpg --card-status` prints it: groups of four hex digits, two spaces
/// in the middle.
pub(crate) fn spaced_fingerprint(hex: &str) -> String {
    let groups: Vec<&str> =
        (0..hex.len()).step_by(4).map(|i| &hex[i..(i + 4).min(hex.len())]).collect();
    format!("{}  {}", groups[..5].join(" "), groups[5..].join(" "))
}
