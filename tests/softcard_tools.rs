#![cfg(all(feature = "test-vpcd", feature = "softcard"))]
//! The software YubiKey 5 through a real pcscd, checked with real tools: `keystation
//! simulate` plugs it into the vpcd reader of a private pcscd (started by
//! `scripts/with-pcscd`), and `keystation card list`, ykman 4 (Debian's `yubikey-manager`)
//! and ykman 5 (PyPI, in a venv that `scripts/test` creates) look at it.
//!
//! ```text
//! scripts/with-pcscd cargo test --features test-vpcd --test softcard_tools
//! ```
//!
//! Tools are found as follows, and a missing one fails its test (never a silent skip):
//!
//! * ykman 4: `KEYSTATION_TEST_YKMAN4`, else `ykman` on `PATH`; must report version 4.
//! * ykman 5: `KEYSTATION_TEST_YKMAN5`, else `target/ykman5-venv/bin/ykman`; must
//!   report version 5. `scripts/test` creates that venv
//!   (`python3 -m venv target/ykman5-venv && target/ykman5-venv/bin/pip install
//!   'yubikey-manager>=5,<6'`).
//!
//! The tests share the one vpcd reader and run one at a time (a static mutex). Each starts
//! its own `keystation simulate` child, which a guard stops (SIGTERM, then SIGKILL) when
//! the test ends, passes or fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/simulator.rs"]
mod simulator;

use std::path::Path;

use simulator::{SERIAL, Simulator, VERSION, output, run, tool, ykman};

/// Checks `ykman info` output (the same for ykman 4 and 5, apart from spacing).
fn assert_ykman_info(output: &str) {
    for expected in [
        "Device type: YubiKey 5 NFC",
        &format!("Serial number: {SERIAL}"),
        &format!("Firmware version: {VERSION}"),
        "Form factor: Keychain (USB-A)",
    ] {
        assert!(output.lines().any(|line| line == expected), "{expected:?} missing:\n{output}");
    }
    let status = |application: &str| -> Vec<String> {
        let line = output
            .lines()
            .find(|line| line.split('\t').next().map(str::trim) == Some(application))
            .unwrap_or_else(|| panic!("no {application:?} row in:\n{output}"));
        line.split('\t').skip(1).map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()
    };
    // Only what the card has applets for is claimed.
    for application in ["OpenPGP", "PIV"] {
        assert_eq!(status(application), ["Enabled", "Enabled"], "{application}:\n{output}");
    }
    for application in ["FIDO2", "FIDO U2F", "OATH", "YubiHSM Auth"] {
        assert_eq!(
            status(application),
            ["Not available", "Not available"],
            "{application}:\n{output}"
        );
    }
}

/// `text` with each run of spaces and tabs collapsed to one space and lines trimmed, so
/// that ykman 4's and 5's column layouts compare alike.
fn squeeze(text: &str) -> Vec<String> {
    text.lines().map(|line| line.split_whitespace().collect::<Vec<_>>().join(" ")).collect()
}

/// Checks plain `ykman openpgp info` and `ykman piv info` (no `--reader`, as a user types
/// them) of a factory-fresh card.
fn assert_ykman_applications(ykman: &Path) {
    let openpgp = squeeze(&run(ykman, &["openpgp", "info"]));
    for expected in [
        "OpenPGP version: 3.4",
        &format!("Application version: {VERSION}"),
        "PIN tries remaining: 3",
        "Admin PIN tries remaining: 3",
    ] {
        assert!(openpgp.iter().any(|line| line == expected), "{expected:?} missing:\n{openpgp:#?}");
    }
    let piv = squeeze(&run(ykman, &["piv", "info"]));
    for expected in ["PIN tries remaining: 3/3", "WARNING: Using default PIN!"] {
        assert!(piv.iter().any(|line| line == expected), "{expected:?} missing:\n{piv:#?}");
    }
}

#[test]
fn card_list_shows_the_applications() {
    let simulator = Simulator::start();
    let output = run(Path::new(env!("CARGO_BIN_EXE_keystation")), &["card", "list"]);
    let block: Vec<&str> = output
        .lines()
        .skip_while(|line| *line != simulator.reader)
        .take_while(|line| !line.is_empty())
        .collect();
    assert!(!block.is_empty(), "reader {:?} missing:\n{output}", simulator.reader);
    assert!(block.contains(&"  card: present"), "{output}");
    assert!(
        block.contains(
            &"  ATR:  3B FD 13 00 00 81 31 FE 15 80 73 C0 21 C0 57 59 75 62 69 4B 65 79 40"
        ),
        "{output}"
    );
    let applications = block
        .iter()
        .find_map(|line| line.strip_prefix("  applications: "))
        .unwrap_or_else(|| panic!("no applications line:\n{output}"));
    for application in ["OpenPGP", "PIV", "management", "OTP"] {
        assert!(applications.contains(application), "{application} missing:\n{output}");
    }
}

/// `ykman list` shows the software card, and only it: one YubiKey, as with one real key
/// (the second vpcd reader is not named like a YubiKey).
fn assert_one_yubikey(ykman: &Path) {
    let list = run(ykman, &["list"]);
    let expected = format!("YubiKey 5 NFC ({VERSION}) [OTP+FIDO+CCID] Serial: {SERIAL}");
    assert_eq!(list.lines().collect::<Vec<_>>(), [expected.as_str()], "{list}");
}

#[test]
fn ykman_4_identifies_the_yubikey() {
    let ykman = ykman(4);
    let _simulator = Simulator::start();
    // As a user types it: no --reader, no --device.
    let info = run(&ykman, &["info"]);
    assert_ykman_info(&info);
    assert_one_yubikey(&ykman);
    assert_ykman_applications(&ykman);
}

#[test]
fn ykman_5_identifies_the_yubikey() {
    let ykman = ykman(5);
    let simulator = Simulator::start();
    // As a user types it: no --reader, no --device.
    let info = run(&ykman, &["info"]);
    assert_ykman_info(&info);
    let info = run(&ykman, &["--reader", &simulator.reader, "info"]);
    assert_ykman_info(&info);
    assert_one_yubikey(&ykman);
    let serial = SERIAL.to_string();
    let by_serial = run(&ykman, &["--device", &serial, "info"]);
    assert_ykman_info(&by_serial);
    // The OTP application over CCID: both slots empty.
    let otp = run(&ykman, &["--reader", &simulator.reader, "otp", "info"]);
    assert_eq!(otp.lines().collect::<Vec<_>>(), ["Slot 1: empty", "Slot 2: empty"], "{otp}");
    assert_ykman_applications(&ykman);
    // WRITE CONFIG: disable OTP over USB; the device information says so afterwards.
    run(&ykman, &["--reader", &simulator.reader, "config", "usb", "--disable", "OTP", "--force"]);
    let info = squeeze(&run(&ykman, &["--reader", &simulator.reader, "info"]));
    assert!(info.iter().any(|line| line == "Yubico OTP Disabled Enabled"), "{info:#?}");
}

#[test]
fn the_card_serves_repeated_connections_and_stops_on_sigterm() {
    // The simulator's Drop asserts a clean SIGTERM stop; here the card is also used
    // twice in a row through fresh PC/SC connections (vpcd powers it off in between).
    let simulator = Simulator::start();
    for _ in 0..2 {
        let output = run(Path::new(env!("CARGO_BIN_EXE_keystation")), &["card", "list"]);
        assert!(output.contains("management, OTP"), "{output}");
    }
    drop(simulator);
}

/// The PIV applet through three independent clients: yubico-piv-tool (status,
/// generate, verify-pin), ykman 5 (generate, self-signed certificate, attestation chaining
/// to the software test root, PIN change) and OpenSC's PKCS#11 module (a signature that
/// openssl verifies).
#[test]
fn piv_applet_is_accepted_by_yubico_piv_tool_ykman_and_opensc() {
    let (piv_tool, pkcs11_tool, openssl) =
        (tool("yubico-piv-tool"), tool("pkcs11-tool"), tool("openssl"));
    let ykman = ykman(5);
    let simulator = Simulator::start();
    let reader = simulator.reader.clone();
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let mgmt = "010203040506070801020304050607080102030405060708";
    let piv = |args: &[&str]| {
        let mut all = vec!["-r", reader.as_str()];
        all.extend_from_slice(args);
        run(&piv_tool, &all)
    };
    let yk = |args: &[&str]| {
        let mut all = vec!["--reader", reader.as_str()];
        all.extend_from_slice(args);
        run(&ykman, &all)
    };

    let status = piv(&["-a", "status"]);
    assert!(status.contains(&format!("Version:\t{VERSION}")), "{status}");
    assert!(status.contains(&SERIAL.to_string()), "{status}");
    piv(&["-a", "verify-pin", "-P", "123456"]);

    // ykman: key, self-signed certificate, attestation that chains to the test root.
    let public_9c = path("9c.pem");
    yk(&["piv", "keys", "generate", "-m", mgmt, "-a", "ECCP256", "9c", &public_9c]);
    yk(&[
        "piv",
        "certificates",
        "generate",
        "-m",
        mgmt,
        "-P",
        "123456",
        "-s",
        "CN=keystation peer test",
        "9c",
        &public_9c,
    ]);
    let attestation = path("attestation.pem");
    yk(&["piv", "keys", "attest", "9c", &attestation]);
    let (f9, root) = (path("f9.pem"), path("root.pem"));
    yk(&["piv", "certificates", "export", "f9", &f9]);
    std::fs::write(&root, keystation_softcard::piv::test_attestation_root_pem())
        .expect("writing the test root");
    let verified = run(&openssl, &["verify", "-CAfile", &root, "-untrusted", &f9, &attestation]);
    assert!(verified.contains(": OK"), "{verified}");

    // OpenSC lists the private key once its slot has a certificate: yubico-piv-tool
    // generates in 9a, ykman certifies it, pkcs11-tool signs, openssl verifies.
    let public_9a = path("9a.pem");
    piv(&["-a", "generate", "-s", "9a", "-A", "ECCP256", "-o", &public_9a]);
    yk(&[
        "piv",
        "certificates",
        "generate",
        "-m",
        mgmt,
        "-P",
        "123456",
        "-s",
        "CN=opensc",
        "9a",
        &public_9a,
    ]);
    let slots = run(&pkcs11_tool, &["-L"]);
    assert!(slots.contains("PIV_II") || slots.contains("piv_II"), "{slots}");
    let (message, signature) = (path("message"), path("signature"));
    std::fs::write(&message, b"signed through OpenSC").expect("writing the message");
    run(
        &pkcs11_tool,
        &[
            "--sign",
            "-m",
            "ECDSA-SHA256",
            "--id",
            "01",
            "-p",
            "123456",
            "-i",
            &message,
            "-o",
            &signature,
            "--signature-format",
            "openssl",
        ],
    );
    let checked = run(
        &openssl,
        &["dgst", "-sha256", "-verify", &public_9a, "-signature", &signature, &message],
    );
    assert!(checked.contains("Verified OK"), "{checked}");

    // PIN change, then the old PIN is refused and the new one accepted.
    yk(&["piv", "access", "change-pin", "-P", "123456", "-n", "654321"]);
    let refused = output(&piv_tool, &["-r", &reader, "-a", "verify-pin", "-P", "123456"]);
    assert!(!refused.status.success(), "the old PIN still verifies");
    piv(&["-a", "verify-pin", "-P", "654321"]);
    yk(&["piv", "reset", "--force"]);
}
