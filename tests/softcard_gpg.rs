#![cfg(all(feature = "test-vpcd", feature = "softcard"))]
//! The software YubiKey 5's OpenPGP application through a real pcscd, checked with real
//! OpenPGP clients: gpg 2.2 with scdaemon (card status, on-card key generation through
//! `--card-edit`, signing, decryption), OpenSC (`openpgp-tool`, `pkcs11-tool`) and ykman 4
//! and 5 (`openpgp info`, `reset`, `set-retries`, `keys set-touch`).
//!
//! ```text
//! scripts/with-pcscd cargo test --features test-vpcd --test softcard_gpg
//! ```
//!
//! A missing tool fails its test (never a silent skip): gpg, gpgconf and scdaemon come
//! from Debian's `gnupg` and `scdaemon`, `openpgp-tool` and `pkcs11-tool` from `opensc`,
//! ykman as `tests/softcard_tools.rs` describes; `scripts/test` installs them all.
//!
//! Every gpg test runs in its own temporary `GNUPGHOME` whose `scdaemon.conf` points
//! scdaemon at the vpcd reader through PC/SC (`disable-ccid`, `pcsc-shared`,
//! `reader-port`). gpg-agent and scdaemon inherit `PCSCLITE_CSOCK_NAME` from gpg, so they
//! use the private pcscd of `scripts/with-pcscd`; a guard runs `gpgconf --kill all` for
//! that home when the test ends. PINs come from a scripted pinentry written into the home
//! (Admin PIN prompts get `12345678`, others `123456`): `--card-edit` refuses `--batch`,
//! so it runs with `--no-tty --command-fd 0`. The gpg helpers live in
//! `tests/support/gnupg.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/gnupg.rs"]
mod gnupg;
#[path = "support/simulator.rs"]
mod simulator;

use std::path::Path;
use std::process::{Command, Stdio};

use gnupg::{FACTORY_PW1 as PW1, FACTORY_PW3 as PW3, Gnupg, field, spaced_fingerprint};
use simulator::{SERIAL, Simulator, VERSION, output, run, tool, ykman};

/// The OpenSC PKCS#11 module on Debian (amd64).
const OPENSC_PKCS11: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";

/// Runs `pkcs11-tool` with OpenSC's module and its OpenPGP driver forced (see the OpenSC
/// test for why); returns the squeezed standard output, panics when it fails.
fn pkcs11_openpgp(args: &[&str]) -> Vec<String> {
    let output = Command::new(tool("pkcs11-tool"))
        .env("OPENSC_DRIVER", "openpgp")
        .args(["--module", OPENSC_PKCS11])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running pkcs11-tool");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "pkcs11-tool {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    squeeze(&stdout)
}

/// `text` with each run of whitespace collapsed to one space and lines trimmed.
fn squeeze(text: &str) -> Vec<String> {
    text.lines().map(|line| line.split_whitespace().collect::<Vec<_>>().join(" ")).collect()
}

fn assert_lines(lines: &[String], expected: &[&str]) {
    for expected in expected {
        assert!(lines.iter().any(|line| line == expected), "{expected:?} missing:\n{lines:#?}");
    }
}

#[test]
fn gpg_card_status_shows_a_factory_fresh_yubikey() {
    let simulator = Simulator::start();
    let gnupg = Gnupg::new(&simulator.reader);
    let status = gnupg.card_status();
    assert_eq!(field(&status, "Reader"), simulator.reader.replace('+', " "), "{status:#?}");
    // gpg prints the BCD serial of the AID as hex digits: the number on the key.
    assert_eq!(field(&status, "Serial number"), SERIAL.to_string());
    assert_eq!(field(&status, "Application ID"), format!("D2760001240103040006{SERIAL}0000"));
    assert_eq!(field(&status, "Version"), "3.4");
    assert_eq!(field(&status, "Manufacturer"), "Yubico");
    assert_eq!(field(&status, "Key attributes"), "rsa2048 rsa2048 rsa2048");
    assert_eq!(field(&status, "PIN retry counter"), "3 0 3");
    assert_eq!(field(&status, "Signature PIN"), "not forced");
    assert_eq!(field(&status, "Signature counter"), "0");
    assert_eq!(field(&status, "KDF setting"), "off");
    for key in ["Signature key", "Encryption key", "Authentication key"] {
        assert_eq!(field(&status, key), "[none]");
    }
    // The same again, now with scdaemon warm.
    assert_eq!(gnupg.card_status(), status);
}

/// Generates the three keys on the card with `--card-edit`, then signs, verifies, encrypts
/// and decrypts with them; returns the primary key's fingerprint.
fn generate_and_use(gnupg: &Gnupg, algorithms: [&str; 3]) -> String {
    let session =
        gnupg.card_edit("admin\ngenerate\nn\n0\nCard Holder\nholder@example.org\n\nquit\n");
    let fingerprint = session
        .lines()
        .find_map(|line| line.strip_prefix("[GNUPG:] KEY_CREATED B "))
        .unwrap_or_else(|| panic!("no KEY_CREATED status:\n{session}"))
        .trim()
        .to_owned();

    // The card holds the secret keys: gpg lists stubs with the card's serial.
    let (keys, _) = gnupg.run(&["--with-colons", "--list-secret-keys", &fingerprint], "");
    let card_keys = keys
        .lines()
        .filter(|line| line.starts_with("sec:") || line.starts_with("ssb:"))
        .filter(|line| {
            line.split(':').nth(14) == Some(&format!("D2760001240103040006{SERIAL}0000"))
        })
        .count();
    assert_eq!(card_keys, 3, "not all keys are on the card:\n{keys}");

    let status = gnupg.card_status();
    assert_eq!(field(&status, "Key attributes"), algorithms.join(" "));
    assert_eq!(field(&status, "Signature key"), spaced_fingerprint(&fingerprint));
    for key in ["Encryption key", "Authentication key"] {
        let value = field(&status, key);
        assert_eq!(value.len(), 50, "{key}: {value:?}");
    }
    let signatures: u32 = field(&status, "Signature counter").parse().unwrap();
    assert!(signatures > 0, "the self-signatures were made on the card: {status:#?}");

    // Sign on the card, verify with the public key.
    let (message, signed) = (gnupg.path("message"), gnupg.path("message.gpg"));
    std::fs::write(&message, b"signed and decrypted by the software card\n").unwrap();
    gnupg.run(&["--batch", "--yes", "-u", &fingerprint, "-o", &signed, "--sign", &message], "");
    let (verified, _) = gnupg.run(&["--batch", "--status-fd", "1", "--verify", &signed], "");
    assert!(verified.contains("[GNUPG:] GOODSIG"), "{verified}");
    assert!(verified.contains(&format!("[GNUPG:] VALIDSIG {fingerprint}")), "{verified}");
    let after: u32 = field(&gnupg.card_status(), "Signature counter").parse().unwrap();
    assert_eq!(after, signatures + 1, "the signature counter counts the signature");

    // Encrypt to the card's encryption key, decrypt on the card.
    let (encrypted, decrypted) = (gnupg.path("message.enc"), gnupg.path("message.dec"));
    gnupg.run(
        &[
            "--batch",
            "--yes",
            "--trust-model",
            "always",
            "-r",
            &fingerprint,
            "-o",
            &encrypted,
            "--encrypt",
            &message,
        ],
        "",
    );
    let (decryption, _) = gnupg.run(
        &["--batch", "--yes", "--status-fd", "1", "-o", &decrypted, "--decrypt", &encrypted],
        "",
    );
    assert!(decryption.contains("[GNUPG:] DECRYPTION_OKAY"), "{decryption}");
    assert_eq!(std::fs::read(&decrypted).unwrap(), std::fs::read(&message).unwrap());
    fingerprint
}

#[test]
fn gpg_generates_25519_keys_on_the_card_and_uses_them() {
    let simulator = Simulator::start();
    let gnupg = Gnupg::new(&simulator.reader);
    // key-attr: for each key ECC (2), Curve 25519 (1); gpg asks for the Admin PIN.
    let session = gnupg.card_edit("admin\nkey-attr\n2\n1\n2\n1\n2\n1\nquit\n");
    assert!(session.contains("[GNUPG:] GET_LINE keygen.curve"), "{session}");
    let status = gnupg.card_status();
    assert_eq!(field(&status, "Key attributes"), "ed25519 cv25519 ed25519");
    let fingerprint = generate_and_use(&gnupg, ["ed25519", "cv25519", "ed25519"]);

    // OpenSC's OpenPGP driver sees the 25519 keys and makes an EdDSA signature with the
    // signature key (slot index 1, "User PIN (sig)"), which openssl verifies.
    gnupg.kill_scdaemon();
    let objects = pkcs11_openpgp(&["-O"]);
    assert_lines(
        &objects,
        &[
            "Public Key Object; EC_EDWARDS EC_POINT 255 bits",
            "Public Key Object; EC_MONTGOMERY EC_POINT 255 bits",
            "label: Authentication key",
            "label: Encryption key",
        ],
    );
    let signing = pkcs11_openpgp(&["--slot-index", "1", "-O"]);
    let point = signing
        .iter()
        .find_map(|line| line.strip_prefix("EC_POINT: 0420"))
        .unwrap_or_else(|| panic!("no Ed25519 point:\n{signing:#?}"));
    let public = (0..point.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&point[i..i + 2], 16).unwrap())
        .collect::<Vec<u8>>();
    assert_eq!(public.len(), 32, "{point}");
    // SubjectPublicKeyInfo for Ed25519 (RFC 8410) around the point.
    let mut spki = vec![0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x03, 0x21, 0x00];
    spki.extend_from_slice(&public);
    let (public, message, signature) =
        (gnupg.path("ed25519.der"), gnupg.path("p11-message"), gnupg.path("p11-signature"));
    std::fs::write(&public, spki).unwrap();
    std::fs::write(&message, b"EdDSA through OpenSC's OpenPGP driver").unwrap();
    pkcs11_openpgp(&[
        "--slot-index",
        "1",
        "--sign",
        "-m",
        "EDDSA",
        "--id",
        "01",
        "-p",
        PW1,
        "-i",
        &message,
        "-o",
        &signature,
    ]);
    let verified = run(
        &tool("openssl"),
        &[
            "pkeyutl", "-verify", "-pubin", "-inkey", &public, "-keyform", "DER", "-rawin", "-in",
            &message, "-sigfile", &signature,
        ],
    );
    assert!(verified.contains("Signature Verified Successfully"), "{verified}");

    // ykman 5 sees the generated keys and their touch policies; set-touch and reset
    // change them.
    let ykman = ykman(5);
    let reader = simulator.reader.as_str();
    let keys_info = |ykman: &Path| {
        squeeze(&run(ykman, &["--reader", reader, "openpgp", "keys", "info", "sig"]))
    };
    let info = keys_info(&ykman);
    assert_lines(
        &info,
        &[
            "Key slot: Signature key",
            &format!("Fingerprint: {}", spaced_fingerprint(&fingerprint).replace("  ", " ")),
            "Algorithm: Ed25519",
            "Origin: GENERATED",
            "Touch policy: Off",
        ],
    );
    run(
        &ykman,
        &[
            "--reader",
            reader,
            "openpgp",
            "keys",
            "set-touch",
            "sig",
            "on",
            "--admin-pin",
            PW3,
            "--force",
        ],
    );
    assert_lines(&keys_info(&ykman), &["Touch policy: On"]);
    let info = squeeze(&run(&ykman, &["--reader", reader, "openpgp", "info"]));
    assert_lines(&info, &["Signature key:", "Touch policy: On"]);

    // Reset: keys, fingerprints and touch policies are gone.
    run(&ykman, &["--reader", reader, "openpgp", "reset", "--force"]);
    let info = run(&ykman, &["--reader", reader, "openpgp", "info"]);
    assert!(!info.contains("Signature key"), "{info}");
    let missing = output(&ykman, &["--reader", reader, "openpgp", "keys", "info", "sig"]);
    assert!(!missing.status.success(), "the signature key survived the reset");
    assert!(String::from_utf8_lossy(&missing.stderr).contains("No key stored in slot SIG"));
    let status = gnupg.card_status();
    assert_eq!(field(&status, "Key attributes"), "rsa2048 rsa2048 rsa2048");
    assert_eq!(field(&status, "Signature key"), "[none]");
    assert_eq!(field(&status, "Signature counter"), "0");
}

#[test]
fn gpg_generates_rsa_2048_keys_on_the_card_and_uses_them() {
    let simulator = Simulator::start();
    let gnupg = Gnupg::new(&simulator.reader);
    generate_and_use(&gnupg, ["rsa2048", "rsa2048", "rsa2048"]);

    // OpenSC with its OpenPGP driver (see the OpenSC test for why it is forced) sees the
    // keys gpg generated and signs with the signature key, which openssl verifies. Slot
    // index 1 is the "User PIN (sig)" token, which holds the signature key (PW1 81).
    gnupg.kill_scdaemon();
    let openssl = tool("openssl");
    let objects = pkcs11_openpgp(&["-O"]);
    assert_lines(
        &objects,
        &["Public Key Object; RSA 2048 bits", "label: Encryption key", "label: Authentication key"],
    );
    let (public, message, signature) =
        (gnupg.path("sig.der"), gnupg.path("p11-message"), gnupg.path("p11-signature"));
    std::fs::write(&message, b"signed through OpenSC's OpenPGP driver").unwrap();
    pkcs11_openpgp(&[
        "--slot-index",
        "1",
        "--read-object",
        "--type",
        "pubkey",
        "--id",
        "01",
        "-o",
        &public,
    ]);
    pkcs11_openpgp(&[
        "--slot-index",
        "1",
        "--sign",
        "-m",
        "SHA256-RSA-PKCS",
        "--id",
        "01",
        "-p",
        PW1,
        "-i",
        &message,
        "-o",
        &signature,
    ]);
    let verified = run(
        &openssl,
        &[
            "dgst",
            "-sha256",
            "-verify",
            &public,
            "-keyform",
            "DER",
            "-signature",
            &signature,
            &message,
        ],
    );
    assert!(verified.contains("Verified OK"), "{verified}");
}

/// OpenSC: `openpgp-tool` reads the OpenPGP application. `pkcs11-tool -L` shows the PIV
/// token by default, because OpenSC's card drivers are tried in order and `PIV-II` comes
/// before `openpgp` — a real YubiKey 5 with both applications looks the same. With the
/// driver forced (`OPENSC_DRIVER=openpgp`) the OpenPGP token appears.
#[test]
fn opensc_reads_the_openpgp_application() {
    let (openpgp_tool, pkcs11_tool) = (tool("openpgp-tool"), tool("pkcs11-tool"));
    assert!(Path::new(OPENSC_PKCS11).exists(), "{OPENSC_PKCS11} is missing (install opensc)");
    let simulator = Simulator::start();
    let reader = simulator.reader.as_str();
    let info = squeeze(&run(&openpgp_tool, &["-r", reader, "-C"]));
    assert_lines(
        &info,
        &[
            &format!("AID: d2:76:00:01:24:01:03:04:00:06:{}:00:00", {
                let serial = SERIAL.to_string();
                (0..4).map(|i| &serial[2 * i..2 * i + 2]).collect::<Vec<_>>().join(":")
            }),
            "Version: 3.4",
            "Manufacturer: Yubico",
            &format!("Serial number: {SERIAL}"),
        ],
    );

    let slots = squeeze(&run(&pkcs11_tool, &["--module", OPENSC_PKCS11, "-L"]));
    assert_lines(&slots, &["token label : PIV_II"]);

    let forced = Command::new(&pkcs11_tool)
        .env("OPENSC_DRIVER", "openpgp")
        .args(["--module", OPENSC_PKCS11, "-L"])
        .stdin(Stdio::null())
        .output()
        .expect("running pkcs11-tool");
    let text = String::from_utf8_lossy(&forced.stdout);
    assert!(forced.status.success(), "{text}\n{}", String::from_utf8_lossy(&forced.stderr));
    assert_lines(
        &squeeze(&text),
        &[
            "token label : OpenPGP card (User PIN)",
            "token manufacturer : Yubico",
            "hardware version : 3.4",
            &format!("serial num : 0006{SERIAL}"),
            "pin min/max : 6/127",
        ],
    );
}

/// ykman 4 and 5: `openpgp access set-retries`, `openpgp reset` and `openpgp keys
/// set-touch` on a card without keys (ykman 5 shows touch policies only for slots that
/// hold a key; the gpg 25519 test covers that).
#[test]
fn ykman_resets_the_openpgp_application_and_sets_touch_policies() {
    let simulator = Simulator::start();
    let reader = simulator.reader.as_str();
    for major in [5, 4] {
        let ykman = ykman(major);
        let yk = |args: &[&str]| {
            let mut all = vec!["--reader", reader, "openpgp"];
            all.extend_from_slice(args);
            squeeze(&run(&ykman, &all))
        };
        let set = ["access", "set-retries", "5", "6", "7", "--admin-pin", PW3, "--force"];
        yk(&set);
        let info = yk(&["info"]);
        assert_lines(
            &info,
            &[
                &format!("Application version: {VERSION}"),
                "PIN tries remaining: 5",
                "Admin PIN tries remaining: 7",
            ],
        );
        // A wrong Admin PIN costs a try (ykman verifies it before SET PIN RETRIES).
        let wrong = output(
            &ykman,
            &[
                "--reader",
                reader,
                "openpgp",
                "access",
                "set-retries",
                "4",
                "4",
                "4",
                "--admin-pin",
                "87654321",
                "--force",
            ],
        );
        assert!(!wrong.status.success(), "a wrong Admin PIN was accepted");
        assert_lines(&yk(&["info"]), &["Admin PIN tries remaining: 6"]);

        yk(&["reset", "--force"]);
        assert_lines(
            &yk(&["info"]),
            &[
                "PIN tries remaining: 3",
                "Reset code tries remaining: 0",
                "Admin PIN tries remaining: 3",
            ],
        );
        yk(&["keys", "set-touch", "sig", "on", "--admin-pin", PW3, "--force"]);
        if major == 4 {
            // ykman 4 lists the touch policy of every slot.
            let info = yk(&["info"]);
            assert_lines(
                &info,
                &["Signature key On", "Encryption key Off", "Authentication key Off"],
            );
            yk(&["reset", "--force"]);
            assert_lines(&yk(&["info"]), &["Signature key Off"]);
        } else {
            assert_lines(&yk(&["info"]), &["Require PIN for signature: Once"]);
            yk(&["reset", "--force"]);
        }
    }
}

/// `--card-edit` personalisation (PUT DATA of name, language, salutation, URL, login data
/// and the PW1 status byte), `passwd` (CHANGE REFERENCE DATA for PW1 and PW3) and
/// `factory-reset`, which blocks both PINs with wrong VERIFYs and then sends TERMINATE DF
/// and ACTIVATE FILE: the card is back in its factory state afterwards.
#[test]
fn gpg_personalises_changes_pins_and_factory_resets_the_card() {
    let simulator = Simulator::start();
    let gnupg = Gnupg::new(&simulator.reader);
    let session = gnupg.card_edit(
        "admin\nname\nHolder\nCard\nlang\nde\nurl\nhttps://example.org/key.asc\nlogin\ncardholder\n\
         forcesig\nsalutation\nf\nquit\n",
    );
    assert_eq!(session.matches("[GNUPG:] SC_OP_SUCCESS").count(), 6, "{session}");
    let status = gnupg.card_status();
    assert_eq!(field(&status, "Name of cardholder"), "Card Holder");
    assert_eq!(field(&status, "Language prefs"), "de");
    assert_eq!(field(&status, "Salutation"), "Ms.");
    assert_eq!(field(&status, "URL of public key"), "https://example.org/key.asc");
    assert_eq!(field(&status, "Login data"), "cardholder");
    assert_eq!(field(&status, "Signature PIN"), "forced");

    // Change PIN, then Admin PIN (the scripted pinentry gives the same PINs again).
    let session = gnupg.card_edit("admin\npasswd\n1\n3\nq\nquit\n");
    assert_eq!(session.matches("[GNUPG:] SC_OP_SUCCESS").count(), 2, "{session}");
    assert!(!session.contains("SC_OP_FAILURE"), "{session}");
    assert_eq!(field(&gnupg.card_status(), "PIN retry counter"), "3 0 3");

    let session = gnupg.card_edit("admin\nfactory-reset\ny\nyes\nquit\n");
    assert!(session.contains("[GNUPG:] GET_LINE cardedit.factory-reset.really"), "{session}");
    let status = gnupg.card_status();
    assert_eq!(field(&status, "Name of cardholder"), "[not set]");
    assert_eq!(field(&status, "Language prefs"), "[not set]");
    assert_eq!(field(&status, "URL of public key"), "[not set]");
    assert_eq!(field(&status, "Login data"), "[not set]");
    assert_eq!(field(&status, "Signature PIN"), "not forced");
    assert_eq!(field(&status, "PIN retry counter"), "3 0 3");
    assert_eq!(field(&status, "Key attributes"), "rsa2048 rsa2048 rsa2048");
}
