//! The software YubiKey 5 in a private pcscd's vpcd reader, for the tests that check it
//! with real tools (`tests/softcard_tools.rs`, `tests/softcard_gpg.rs`): the [`Simulator`]
//! guard that runs `keystation simulate`, and helpers to run tools.
//!
//! Each test file includes this module with `#[path = "support/simulator.rs"] mod
//! simulator;` (not through `support/mod.rs`, which other tests share), and not every file
//! uses every helper.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use keystation_pcsc::PcscContext;

/// Upper bound for anything pcscd has to notice (it polls vpcd every 400 ms).
pub(crate) const TIMEOUT: Duration = Duration::from_secs(20);
/// The reader name `scripts/with-pcscd` configures, if it does not say otherwise.
pub(crate) const DEFAULT_READER: &str = "Yubico YubiKey OTP+FIDO+CCID 00 00";
/// The second vpcd reader's name when `KEYSTATION_TEST_VPCD_READER2` is not set
/// (scripts/with-pcscd sets it): not named like a YubiKey, so that ykman sees one key.
pub(crate) const DEFAULT_SECOND_READER: &str = "Virtual PCD 00 00";
/// The identity the simulated card is given.
pub(crate) const SERIAL: u32 = 12_345_678;
pub(crate) const VERSION: &str = "5.4.3";

/// Serialises the tests of one test binary per vpcd reader: the first reader ("… 00 00",
/// on the vpcd port) and the second ("Virtual PCD 00 00", on port + 1).
static VPCD: [Mutex<()>; 2] = [Mutex::new(()), Mutex::new(())];

/// What runs as the card.
enum CardProgram {
    /// `keystation simulate` (the software YubiKey 5).
    Simulate,
    /// A test-only third-party card adapter from `tests/peers` (opcard-vpcd, piv-vpcd).
    Peer(PathBuf),
}

/// A virtual card in one of the private pcscd's vpcd readers: `keystation simulate`
/// ([`start`](Self::start)) or a third-party card adapter ([`start_peer`](Self::start_peer)).
/// Dropping it stops the program (SIGTERM, by PID) and waits until pcscd sees the card
/// gone.
pub(crate) struct Simulator {
    program: CardProgram,
    /// Which vpcd reader: 0 or 1.
    index: u16,
    child: Option<Child>,
    pub(crate) reader: String,
    context: PcscContext,
    _serial: MutexGuard<'static, ()>,
}

/// The vpcd port of the first reader, set by `scripts/with-pcscd`.
fn vpcd_port() -> u16 {
    let Ok(port) = std::env::var("KEYSTATION_TEST_VPCD_PORT") else {
        panic!(
            "KEYSTATION_TEST_VPCD_PORT is not set. These tests need a private pcscd with the \
             vpcd reader; run them through scripts/with-pcscd:\n    \
             scripts/with-pcscd cargo test --features test-vpcd --test <name>"
        );
    };
    port.parse().expect("KEYSTATION_TEST_VPCD_PORT is a port number")
}

impl Simulator {
    /// Takes the vpcd reader, starts the simulator and waits until the card is present.
    pub(crate) fn start() -> Self {
        Self::start_with(&[])
    }

    /// [`start`](Self::start) with `extra` added to the `keystation simulate` command
    /// line (such as `--remove-after N`).
    pub(crate) fn start_with(extra: &[&str]) -> Self {
        let mut simulator = Self::take_reader(CardProgram::Simulate, 0);
        simulator.restart_with(extra);
        simulator
    }

    /// Starts the third-party card adapter that the environment variable `variable`
    /// names (`KEYSTATION_TEST_OPCARD_VPCD`, `KEYSTATION_TEST_PIV_VPCD`; built by
    /// `scripts/peer-cards`) in the first vpcd reader, or the second with `second_reader`.
    /// A missing adapter fails the test, never skips it.
    pub(crate) fn start_peer(variable: &str, args: &[&str], second_reader: bool) -> Self {
        let Some(adapter) = std::env::var_os(variable).map(PathBuf::from) else {
            panic!(
                "{variable} is not set{}. It must name a card adapter binary of the test-only \
                 peers in tests/peers/; build it and set the variable with\n    \
                 eval \"$(scripts/peer-cards --env)\"\n(scripts/test does this).",
                if std::env::var("CI").is_ok_and(|v| v == "true") { " in CI" } else { "" }
            );
        };
        assert!(
            adapter.is_file(),
            "{variable}={} is not a file; rebuild it with scripts/peer-cards",
            adapter.display()
        );
        let mut peer = Self::take_reader(CardProgram::Peer(adapter), u16::from(second_reader));
        peer.restart_with(args);
        peer
    }

    /// Locks reader `index` for this test and waits until the previous test's card is
    /// gone. A card that stays means another program is connected to this vpcd (a
    /// concurrent run that picked the same port).
    fn take_reader(program: CardProgram, index: u16) -> Self {
        let serial = VPCD[usize::from(index)].lock().unwrap_or_else(PoisonError::into_inner);
        vpcd_port();
        let reader = match index {
            0 => std::env::var("KEYSTATION_TEST_VPCD_READER")
                .unwrap_or_else(|_| DEFAULT_READER.into()),
            _ => std::env::var("KEYSTATION_TEST_VPCD_READER2")
                .unwrap_or_else(|_| DEFAULT_SECOND_READER.into()),
        };
        let context = PcscContext::establish().unwrap_or_else(|e| {
            panic!("no pcscd at PCSCLITE_CSOCK_NAME (run through scripts/with-pcscd): {e}")
        });
        let mut card = Self { program, index, child: None, reader, context, _serial: serial };
        card.wait_for_card(false);
        card
    }

    fn name(&self) -> String {
        match &self.program {
            CardProgram::Simulate => "keystation simulate".into(),
            CardProgram::Peer(path) => path.display().to_string(),
        }
    }

    /// Puts the card back after [`stop`](Self::stop) (a new program; for the simulator,
    /// pass `--state FILE` to both starts to keep the card's keys), keeping the reader.
    pub(crate) fn restart_with(&mut self, extra: &[&str]) {
        let port = vpcd_port() + self.index;
        let mut command = match &self.program {
            CardProgram::Simulate => {
                let mut command = Command::new(env!("CARGO_BIN_EXE_keystation"));
                command
                    .args(["simulate", "--vpcd", &format!("127.0.0.1:{port}"), "--seed", "1"])
                    .args(["--serial", &SERIAL.to_string(), "--version", VERSION])
                    .args(["--log-level", "info"]);
                command
            }
            CardProgram::Peer(adapter) => {
                let mut command = Command::new(adapter);
                command.args(["--port", &port.to_string(), "--wait", "10"]);
                command
            }
        };
        let child = command
            .args(extra)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.name()));
        self.child = Some(child);
        self.wait_for_card(true);
    }

    /// Polls the reader list until the reader's card is present (or absent); fails at once
    /// when the card's program dies meanwhile.
    pub(crate) fn wait_for_card(&mut self, present: bool) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                panic!("{} exited early ({status}); see its log above", self.name());
            }
            let readers = self.context.readers().expect("listing readers");
            let found = readers.iter().find(|r| r.name == self.reader);
            match found {
                Some(info) if info.card_present == present => return,
                _ if Instant::now() > deadline => panic!(
                    "reader {:?} did not report the card {} within {TIMEOUT:?}; readers: {readers:?}",
                    self.reader,
                    if present { "present" } else { "absent" },
                ),
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// A shared PC/SC connection to the card.
    pub(crate) fn connect(&self) -> keystation_pcsc::PcscCard {
        self.context
            .connect(&self.reader, keystation_pcsc::ShareMode::Shared)
            .unwrap_or_else(|e| panic!("connecting to the card of {}: {e}", self.name()))
    }

    /// Stops the card's program with SIGTERM, as an operator would; returns whether it
    /// exited on its own (with status 0) within the timeout.
    pub(crate) fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else { return true };
        let terminated = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        while terminated && Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let clean = self.stop();
        if !std::thread::panicking() {
            assert!(clean, "{} did not stop cleanly on SIGTERM", self.name());
            self.wait_for_card(false);
        }
    }
}

/// Runs a tool and returns its output; panics, with the output, when it cannot be
/// started or fails.
pub(crate) fn run(program: &Path, args: &[&str]) -> String {
    let output = output(program, args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{} {args:?} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        program.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

pub(crate) fn output(program: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
}

/// The ykman of the given major version (see the module documentation).
pub(crate) fn ykman(major: u8) -> PathBuf {
    let variable = format!("KEYSTATION_TEST_YKMAN{major}");
    let path = match std::env::var_os(&variable) {
        Some(path) => PathBuf::from(path),
        None if major == 5 => {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ykman5-venv/bin/ykman")
        }
        None => PathBuf::from("ykman"),
    };
    let version = Command::new(&path).arg("--version").output().unwrap_or_else(|e| {
        panic!(
            "ykman {major} is needed for this test but {} cannot be run ({e}). Install it \
             (scripts/test does: Debian's yubikey-manager for ykman 4, a venv with \
             yubikey-manager 5 from PyPI in target/ykman5-venv for ykman 5) or point \
             {variable} at it.",
            path.display()
        )
    });
    let text = String::from_utf8_lossy(&version.stdout);
    assert!(
        text.contains(&format!("version: {major}.")),
        "{} is not ykman {major}: {text}",
        path.display()
    );
    path
}

/// A Debian tool the test needs; missing is a failure, not a skip.
pub(crate) fn tool(name: &str) -> PathBuf {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    found.unwrap_or_else(|| {
        panic!("{name} is needed for this test; scripts/test installs it (apt-get install)")
    })
}
