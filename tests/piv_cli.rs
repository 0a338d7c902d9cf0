#![cfg(all(feature = "test-vpcd", feature = "piv"))]
//! `keystation piv …` as a user runs it: the real binary against the software YubiKey 5
//! that `keystation simulate` plugs into the private pcscd's vpcd reader, and against
//! Nitrokey's piv-authenticator (a standard PIV card, not a YubiKey) in the second vpcd
//! reader. What keystation writes is read back with tools nobody on this project wrote:
//! ykman 5, yubico-piv-tool and openssl.
//!
//! ```text
//! peers=$(scripts/peer-cards --env) && eval "$peers"   # KEYSTATION_TEST_PIV_VPCD
//! scripts/with-pcscd cargo test --features test-vpcd --test piv_cli
//! ```
//!
//! A missing tool, pcscd or peer binary fails the test that needs it, with a message
//! saying how to provide it; nothing is skipped. The simulator tests share the vpcd
//! reader "… 00 00" and run one at a time (the simulator guard's lock); the peer tests
//! take turns in the second reader, "Virtual PCD 00 00" (vpcd's port + 1).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/simulator.rs"]
mod simulator;

use std::process::{Command, Output, Stdio};

use simulator::{SERIAL, Simulator, VERSION, output, run, tool, ykman};

/// The factory PIN of the simulated YubiKey and of piv-authenticator.
const PIN: &str = "123456";
/// The factory management key (Triple-DES) of both cards.
const DEFAULT_MGMT_KEY: &str = "010203040506070801020304050607080102030405060708";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// PEM (or any text) without whitespace, so that line lengths do not matter.
fn squashed(pem: &str) -> String {
    pem.split_whitespace().collect()
}

/// `text` with runs of whitespace collapsed, lines trimmed (ykman's column layout).
fn squeeze(text: &str) -> Vec<String> {
    text.lines().map(|line| line.split_whitespace().collect::<Vec<_>>().join(" ")).collect()
}

/// Runs `keystation` against one reader, with a private HOME (no user configuration)
/// and a scratch directory for files.
struct Keystation {
    reader: String,
    dir: tempfile::TempDir,
}

impl Keystation {
    fn new(reader: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::create_dir(dir.path().join("home")).unwrap();
        let this = Self { reader: reader.to_owned(), dir };
        this.write("pin", &format!("{PIN}\n"));
        this.write("mgmt", &format!("{DEFAULT_MGMT_KEY}\n"));
        this
    }

    /// A path in the scratch directory.
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    fn write(&self, name: &str, contents: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap()
    }

    /// `keystation --reader READER piv ARGS`; whatever happens.
    fn piv(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_keystation"));
        command
            .args(["--reader", &self.reader, "piv"])
            .args(args)
            .env("HOME", self.dir.path().join("home"))
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("KEYSTATION_READER")
            .stdin(Stdio::null());
        command.output().unwrap_or_else(|e| panic!("running {command:?}: {e}"))
    }

    /// `keystation piv ARGS`, which must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.piv(args);
        assert!(
            output.status.success(),
            "keystation piv {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            output.status,
            text(&output.stdout),
            text(&output.stderr)
        );
        text(&output.stdout)
    }

    /// `keystation piv ARGS`, which must fail with exit status 1; its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let output = self.piv(args);
        assert_eq!(
            output.status.code(),
            Some(1),
            "keystation piv {args:?} should fail with status 1:\nstdout:\n{}\nstderr:\n{}",
            text(&output.stdout),
            text(&output.stderr)
        );
        text(&output.stderr)
    }

    /// Generates a key in `slot` (with `extra` options) and returns its public key PEM,
    /// printed on stdout.
    fn generate(&self, slot: &str, extra: &[&str]) -> String {
        let pin = self.path("pin");
        let mut args = vec!["generate", slot, "--pin-file", &pin];
        args.extend_from_slice(extra);
        let pem = self.ok(&args);
        assert!(
            pem.starts_with("-----BEGIN PUBLIC KEY-----\n")
                && pem.trim_end().ends_with("-----END PUBLIC KEY-----"),
            "generate {slot} printed no public key:\n{pem}"
        );
        pem
    }

    /// A self-signed certificate for the key in `slot`, stored there by keystation.
    fn self_sign(&self, slot: &str, subject: &str) {
        let pin = self.path("pin");
        let said =
            self.ok(&["certificate", "generate", slot, "--subject", subject, "--pin-file", &pin]);
        assert!(said.contains(&format!("written to slot {slot}")), "{said}");
    }

    /// Exports the certificate of `slot` as PEM into the scratch file `name`; its path.
    fn export_pem(&self, slot: &str, name: &str) -> String {
        let pem = self.ok(&["certificate", "export", slot]);
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"), "{pem}");
        self.write(name, &pem)
    }

    /// Exports the certificate of `slot` as DER.
    fn export_der(&self, slot: &str) -> Vec<u8> {
        let path = self.path(&format!("{slot}-export.der"));
        self.ok(&["certificate", "export", slot, "--out", &path, "--der"]);
        std::fs::read(&path).unwrap()
    }
}

/// Checks with openssl that the certificate at `cert` is self-signed with a valid
/// signature, names `subject` (as openssl prints it) and holds `public_pem`.
/// A throwaway P-256 CA made by openssl in the test's directory: (key file, certificate).
fn openssl_test_ca(ks: &Keystation) -> (String, String) {
    let (key, cert) = (ks.path("ca.key"), ks.path("ca.pem"));
    let args = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    let files = ["-keyout", &key, "-out", &cert, "-subj", "/CN=test CA", "-days", "2"];
    run(&tool("openssl"), &[&args[..], &files[..]].concat());
    (key, cert)
}

/// Imports the PEM certificate `file` into `slot` and checks that the slot then holds
/// exactly its DER (as openssl converts it).
fn import_and_read_back(ks: &Keystation, slot: &str, file: &str, access: &[&str]) {
    let said = ks.ok(&[&["certificate", "import", slot, file], access].concat());
    assert!(said.contains(&format!("written to slot {slot}")), "{said}");
    let der = ks.path(&format!("{slot}-import.der"));
    run(&tool("openssl"), &["x509", "-in", file, "-outform", "DER", "-out", &der]);
    assert_eq!(ks.export_der(slot), std::fs::read(&der).unwrap());
}

fn assert_openssl_self_signed(cert: &str, subject: &str, public_pem: &str) {
    let openssl = tool("openssl");
    let shown = run(&openssl, &["x509", "-in", cert, "-noout", "-subject"]);
    assert_eq!(shown.trim_end(), format!("subject={subject}"));
    let key = run(&openssl, &["x509", "-in", cert, "-noout", "-pubkey"]);
    assert_eq!(squashed(&key), squashed(public_pem), "certificate key vs generated key");
    // The certificate as its own trust anchor, with its self-signature checked.
    let verified = output(&openssl, &["verify", "-check_ss_sig", "-CAfile", cert, cert]);
    assert!(
        verified.status.success() && text(&verified.stdout).contains(": OK"),
        "openssl verify -check_ss_sig:\n{}{}",
        text(&verified.stdout),
        text(&verified.stderr)
    );
}

/// The lines of `keystation piv info` (squeezed) under the slot heading `heading`, up
/// to the next slot.
fn slot_block<'a>(lines: &'a [String], heading: &str) -> Vec<&'a String> {
    lines
        .iter()
        .skip_while(|l| *l != heading)
        .skip(1)
        .take_while(|l| !l.starts_with("Slot "))
        .collect()
}

/// A P-256 key in 9a with the self-signed certificate CN=alice, all by keystation; the
/// public key PEM.
fn alice_in_9a(ks: &Keystation) -> String {
    let public = ks.generate("9a", &["--key-algorithm", "p256"]);
    ks.self_sign("9a", "CN=alice");
    public
}

#[test]
fn generated_key_and_certificate_are_read_by_keystation_ykman_and_openssl() {
    let ykman = ykman(5);
    let simulator = Simulator::start();
    let ks = Keystation::new(&simulator.reader);
    let public = alice_in_9a(&ks);

    // keystation's own view: the slot's key (from the metadata) and certificate.
    let info = ks.ok(&["info"]);
    let lines = squeeze(&info);
    for expected in [
        format!("PIV version: {VERSION}"),
        format!("Serial number: {SERIAL}"),
        "PIN tries remaining: 3".to_owned(),
        "Slot 9A (AUTHENTICATION):".to_owned(),
        "Subject DN: CN=alice".to_owned(),
        "Issuer DN: CN=alice".to_owned(),
        "Origin: Generated".to_owned(),
    ] {
        assert!(lines.contains(&expected), "{expected:?} missing:\n{info}");
    }
    let slot_9a = slot_block(&lines, "Slot 9A (AUTHENTICATION):");
    assert!(
        slot_9a
            .iter()
            .any(|l| l.starts_with("Private key type:") && l.to_ascii_uppercase().contains("P256")),
        "no P-256 private key type in 9A's metadata:\n{info}"
    );
    // The slots keystation did not touch stay empty.
    let slot_9c = slot_block(&lines, "Slot 9C (SIGNATURE):");
    assert_eq!(slot_9c, [&"Empty".to_owned()], "{info}");

    // ykman 5 reads the slot and certificate keystation wrote.
    let piv = squeeze(&run(&ykman, &["--reader", &simulator.reader, "piv", "info"]));
    let block: Vec<&String> = piv
        .iter()
        .skip_while(|l| !l.starts_with("Slot 9A"))
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(!block.is_empty(), "ykman shows no slot 9A:\n{piv:#?}");
    for expected in [
        "Private key type: ECCP256",
        "Public key type: ECCP256",
        "Subject DN: CN=alice",
        "Issuer DN: CN=alice",
    ] {
        assert!(block.iter().any(|l| *l == expected), "{expected:?} missing:\n{block:#?}");
    }

    // openssl parses the exported certificate and checks its self-signature.
    let cert = ks.export_pem("9a", "alice.pem");
    assert_openssl_self_signed(&cert, "CN = alice", &public);
    // DER export is the same certificate.
    let der = ks.export_der("9a");
    let openssl = tool("openssl");
    let converted = ks.path("alice-openssl.der");
    run(&openssl, &["x509", "-in", &cert, "-outform", "DER", "-out", &converted]);
    assert_eq!(der, std::fs::read(&converted).unwrap(), "--der export vs openssl's DER");
}

#[test]
fn certificate_request_is_verified_by_openssl() {
    let openssl = tool("openssl");
    let simulator = Simulator::start();
    let ks = Keystation::new(&simulator.reader);
    let public = ks.generate("9a", &[]);
    let pin = ks.path("pin");
    let csr =
        ks.ok(&["certificate", "request", "9a", "--subject", "CN=bob,O=dev", "--pin-file", &pin]);
    assert!(csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----\n"), "{csr}");
    let csr_path = ks.write("bob.csr", &csr);

    let verified = output(&openssl, &["req", "-in", &csr_path, "-verify", "-noout"]);
    let said = format!("{}{}", text(&verified.stdout), text(&verified.stderr));
    assert!(
        verified.status.success() && said.contains("verify OK"),
        "openssl req -verify:\n{said}"
    );

    // "CN=bob,O=dev" is an RFC 4514 string, which lists the RDNs last first: the request
    // holds O=dev then CN=bob (openssl's default display order), and openssl's RFC 2253
    // display gives back the string keystation was given.
    let subject = run(&openssl, &["req", "-in", &csr_path, "-noout", "-subject"]);
    assert_eq!(subject.trim_end(), "subject=O = dev, CN = bob");
    let rfc =
        run(&openssl, &["req", "-in", &csr_path, "-noout", "-subject", "-nameopt", "RFC2253"]);
    assert_eq!(rfc.trim_end(), "subject=CN=bob,O=dev");
    let key = run(&openssl, &["req", "-in", &csr_path, "-noout", "-pubkey"]);
    assert_eq!(squashed(&key), squashed(&public), "request key vs slot key");
    // --out writes the same request to a file.
    let out = ks.path("bob-out.csr");
    ks.ok(&[
        "certificate",
        "request",
        "9a",
        "--subject",
        "CN=bob,O=dev",
        "--pin-file",
        &pin,
        "--out",
        &out,
    ]);
    run(&openssl, &["req", "-in", &out, "-verify", "-noout"]);
}

#[test]
fn attestation_verifies_against_the_software_root_only() {
    let openssl = tool("openssl");
    let simulator = Simulator::start();
    let ks = Keystation::new(&simulator.reader);
    let public = ks.generate("9a", &["--key-pin-policy", "never", "--key-touch-policy", "cached"]);
    let roots = ks.write("root.pem", &keystation_softcard::piv::test_attestation_root_pem());
    let out = ks.path("attestation.pem");

    let said = ks.ok(&["attest", "9a", "--roots", &roots, "--out", &out]);
    let lines = squeeze(&said);
    for expected in [
        "Attestation of slot 9a: verified".to_owned(),
        format!("Serial: {SERIAL}"),
        format!("Firmware: {VERSION}"),
        "PIN policy: Never".to_owned(),
        "Touch policy: Cached".to_owned(),
    ] {
        assert!(lines.contains(&expected), "{expected:?} missing:\n{said}");
    }

    // The default roots are Yubico's: the software card's device certificate does not
    // chain to them, and keystation says which link broke.
    let refused = ks.fails(&["attest", "9a"]);
    assert!(
        refused.contains("does not verify")
            && refused.contains("attestation chain")
            && refused.contains("device (F9) certificate"),
        "{refused}"
    );

    // openssl agrees: attestation ← device certificate ← software root.
    let pem = ks.read("attestation.pem");
    let blocks: Vec<&str> = pem.split_inclusive("-----END CERTIFICATE-----\n").collect();
    assert_eq!(blocks.len(), 2, "attestation and device certificate expected:\n{pem}");
    let attestation = ks.write("attestation-only.pem", blocks[0]);
    let device = ks.write("device.pem", blocks[1]);
    let verified =
        run(&openssl, &["verify", "-CAfile", &roots, "-untrusted", &device, &attestation]);
    assert!(verified.contains(": OK"), "{verified}");
    // Without the device certificate the chain does not reach the root.
    let broken = output(&openssl, &["verify", "-CAfile", &roots, &attestation]);
    assert!(!broken.status.success(), "the attestation verified without its device certificate");
    // The attested key is the generated one.
    let attested = run(&openssl, &["x509", "-in", &attestation, "-noout", "-pubkey"]);
    assert_eq!(squashed(&attested), squashed(&public));
    // And the device certificate is what slot f9 exports.
    let f9 = ks.ok(&["certificate", "export", "f9"]);
    assert_eq!(squashed(&f9), squashed(blocks[1]));
}

#[test]
fn import_checks_the_key_and_compressed_certificates_round_trip() {
    let openssl = tool("openssl");
    let ykman = ykman(5);
    let simulator = Simulator::start();
    let ks = Keystation::new(&simulator.reader);
    alice_in_9a(&ks);
    let alice_der = ks.export_der("9a");
    let alice_path = ks.path("alice.der");
    std::fs::write(&alice_path, &alice_der).unwrap();
    let pin = ks.path("pin");

    // 9c holds a different key: the card's metadata tells, and the import is refused
    // before anything is written.
    ks.generate("9c", &[]);
    let refused = ks.fails(&["certificate", "import", "9c", &alice_path, "--pin-file", &pin]);
    assert!(
        refused.contains("the certificate's public key is not the key in slot 9c"),
        "{refused}"
    );
    let none = ks.fails(&["certificate", "export", "9c"]);
    assert!(none.contains("slot 9c holds no certificate"), "{none}");

    // The right certificate: a CA made by openssl certifies keystation's request for 9c.
    let csr = ks.path("9c.csr");
    ks.ok(&[
        "certificate",
        "request",
        "9c",
        "--subject",
        "CN=carol",
        "--pin-file",
        &pin,
        "--out",
        &csr,
    ]);
    let (ca_key, ca_cert) = openssl_test_ca(&ks);
    let carol = ks.path("carol.pem");
    run(
        &openssl,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_cert,
            "-CAkey",
            &ca_key,
            "-set_serial",
            "7",
            "-days",
            "2",
            "-out",
            &carol,
        ],
    );
    import_and_read_back(&ks, "9c", &carol, &["--pin-file", &pin]);
    let info = squeeze(&ks.ok(&["info"]));
    assert!(info.contains(&"Issuer DN: CN=test CA".to_owned()), "{info:#?}");

    // --compress: the certificate is stored gzip-compressed; export gives back the same
    // DER, and ykman decompresses it too.
    ks.ok(&["certificate", "delete", "9a", "--pin-file", &pin]);
    assert!(ks.fails(&["certificate", "export", "9a"]).contains("slot 9a holds no certificate"));
    ks.ok(&["certificate", "import", "9a", &alice_path, "--compress", "--pin-file", &pin]);
    assert_eq!(ks.export_der("9a"), alice_der, "compressed certificate did not round-trip");
    let piv = squeeze(&run(&ykman, &["--reader", &simulator.reader, "piv", "info"]));
    let block: Vec<&String> = piv
        .iter()
        .skip_while(|l| !l.starts_with("Slot 9A"))
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(block.iter().any(|l| *l == "Subject DN: CN=alice"), "{piv:#?}");
    let keystation_info = squeeze(&ks.ok(&["info"]));
    assert!(keystation_info.contains(&"Subject DN: CN=alice".to_owned()), "{keystation_info:#?}");
}

#[test]
fn rsa_2048_key_with_a_self_signed_certificate() {
    let openssl = tool("openssl");
    let simulator = Simulator::start();
    let ks = Keystation::new(&simulator.reader);
    let public = ks.generate("9d", &["--key-algorithm", "rsa2048"]);
    let pin = ks.path("pin");
    let said = ks.ok(&[
        "certificate",
        "generate",
        "9d",
        "--subject",
        "CN=rsa holder",
        "--days",
        "30",
        "--pin-file",
        &pin,
    ]);
    assert!(said.contains("written to slot 9d"), "{said}");
    let cert = ks.export_pem("9d", "rsa.pem");
    // --days 30: valid for 29 more days, but not for 31.
    let day = 86_400;
    let ends = |seconds: u32| {
        output(&openssl, &["x509", "-in", &cert, "-noout", "-checkend", &seconds.to_string()])
    };
    assert!(ends(29 * day).status.success(), "expires before 29 days");
    assert!(!ends(31 * day).status.success(), "still valid after 31 days");
    assert_openssl_self_signed(&cert, "CN = rsa holder", &public);
    let details = run(&openssl, &["x509", "-in", &cert, "-noout", "-text"]);
    assert!(details.contains("Public-Key: (2048 bit)"), "{details}");
    assert!(details.contains("sha256WithRSAEncryption"), "{details}");
    let info = squeeze(&ks.ok(&["info"]));
    let slot_9d = slot_block(&info, "Slot 9D (KEY_MANAGEMENT):");
    assert!(slot_9d.iter().any(|l| *l == "Subject DN: CN=rsa holder"), "{info:#?}");
    assert!(
        slot_9d.iter().any(|l| l.starts_with("Private key type:") && l.contains("2048")),
        "{info:#?}"
    );
}

#[test]
fn yubico_piv_tool_shows_the_certificate_keystation_wrote() {
    let piv_tool = tool("yubico-piv-tool");
    let simulator = Simulator::start();
    let ks = Keystation::new(&simulator.reader);
    alice_in_9a(&ks);
    let status = run(&piv_tool, &["-r", &simulator.reader, "-a", "status"]);
    let lines = squeeze(&status);
    let block: Vec<&String> = lines
        .iter()
        .skip_while(|l| *l != "Slot 9a:")
        .take_while(|l| !l.starts_with("Slot 9c"))
        .collect();
    assert!(!block.is_empty(), "no slot 9a in:\n{status}");
    for expected in ["Subject DN: CN=alice", "Issuer DN: CN=alice"] {
        assert!(block.iter().any(|l| *l == expected), "{expected:?} missing:\n{status}");
    }
    assert!(block.iter().any(|l| l.starts_with("Algorithm: ECCP256")), "{status}");
}

#[test]
fn reset_needs_force_and_then_clears_the_application() {
    let ykman = ykman(5);
    let simulator = Simulator::start();
    let ks = Keystation::new(&simulator.reader);
    alice_in_9a(&ks);
    // Spend a PIN try so that the reset visibly restores the counter.
    let wrong = ks.write("wrong-pin", "999999\n");
    ks.fails(&["certificate", "request", "9a", "--subject", "CN=x", "--pin-file", &wrong]);
    let before = squeeze(&run(&ykman, &["--reader", &simulator.reader, "piv", "info"]));
    assert!(before.contains(&"PIN tries remaining: 2/3".to_owned()), "{before:#?}");

    let refused = ks.fails(&["reset"]);
    assert!(refused.contains("--force"), "{refused}");
    let still = ks.export_der("9a");
    assert!(!still.is_empty());

    let said = ks.ok(&["reset", "--force"]);
    assert!(said.contains("reset"), "{said}");
    let info = ks.ok(&["info"]);
    let lines = squeeze(&info);
    assert!(!info.contains("Subject DN"), "a certificate survived the reset:\n{info}");
    assert!(lines.contains(&"PIN tries remaining: 3".to_owned()), "{info}");
    let slot_9a = slot_block(&lines, "Slot 9A (AUTHENTICATION):");
    assert_eq!(slot_9a, [&"Empty".to_owned()], "{info}");
    assert!(ks.fails(&["certificate", "export", "9a"]).contains("slot 9a holds no certificate"));

    let after = squeeze(&run(&ykman, &["--reader", &simulator.reader, "piv", "info"]));
    for expected in ["PIN tries remaining: 3/3", "WARNING: Using default PIN!"] {
        assert!(after.iter().any(|l| l == expected), "{expected:?} missing:\n{after:#?}");
    }
    assert!(!after.iter().any(|l| l.contains("CN=alice")), "{after:#?}");
}

#[test]
fn wrong_pin_and_wrong_management_key_are_reported_clearly() {
    let simulator = Simulator::start();
    let ks = Keystation::new(&simulator.reader);
    ks.generate("9a", &[]);

    // A wrong PIN: the tries left are said, the PIN itself is not.
    let wrong = ks.write("wrong-pin", "271828\n");
    let output =
        ks.piv(&["certificate", "request", "9a", "--subject", "CN=x", "--pin-file", &wrong]);
    assert_eq!(output.status.code(), Some(1));
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(stderr.contains("PIN verification failed"), "{stderr}");
    assert!(stderr.contains("wrong PIN: 2 tries left"), "{stderr}");
    assert!(
        !stdout.contains("271828") && !stderr.contains("271828"),
        "the PIN was printed:\n{stdout}{stderr}"
    );
    assert!(stdout.is_empty(), "a failed request printed {stdout:?}");
    let again =
        ks.fails(&["certificate", "request", "9a", "--subject", "CN=x", "--pin-file", &wrong]);
    assert!(
        again.contains("wrong PIN: 1 tries left") || again.contains("wrong PIN: 1 try left"),
        "{again}"
    );
    // The right PIN still works (and resets the counter).
    let pin = ks.path("pin");
    ks.ok(&["certificate", "request", "9a", "--subject", "CN=x", "--pin-file", &pin]);
    assert!(squeeze(&ks.ok(&["info"])).contains(&"PIN tries remaining: 3".to_owned()));

    // A wrong management key is refused by the card, and nothing is generated.
    let bad = ks.write("bad-mgmt", &"0f".repeat(24));
    let refused = ks.fails(&["generate", "9c", "--management-key-file", &bad]);
    assert!(refused.contains("management key authentication failed"), "{refused}");
    assert!(!refused.contains(&"0f".repeat(24)), "{refused}");
    let info = squeeze(&ks.ok(&["info"]));
    let slot_9c = slot_block(&info, "Slot 9C (SIGNATURE):");
    assert_eq!(slot_9c, [&"Empty".to_owned()], "{info:#?}");
    // The same command with the right key file generates.
    let good = ks.path("mgmt");
    ks.generate("9c", &["--management-key-file", &good]);
    // A key file that is not hex is a usage error naming the file, not sent to the card.
    let garbage = ks.write("garbage-mgmt", "not a key\n");
    let usage = ks.fails(&["generate", "9e", "--management-key-file", &garbage]);
    assert!(usage.contains("must be hex"), "{usage}");
}

/// Keys whose PIN policy "always" and touch policy "always" make every signature ask
/// again (the simulator touches at once), a P-384 key in a retired slot, and an algorithm
/// firmware 5.4 lacks.
#[test]
fn strict_policies_retired_slots_and_unsupported_algorithms() {
    let openssl = tool("openssl");
    let ykman = ykman(5);
    let simulator = Simulator::start();
    let ks = Keystation::new(&simulator.reader);
    let pin = ks.path("pin");

    let public = ks.generate("9c", &["--key-pin-policy", "always", "--key-touch-policy", "always"]);
    ks.self_sign("9c", "CN=strict");
    let cert = ks.export_pem("9c", "strict.pem");
    assert_openssl_self_signed(&cert, "CN = strict", &public);
    let csr = ks.path("strict.csr");
    ks.ok(&[
        "certificate",
        "request",
        "9c",
        "--subject",
        "CN=strict",
        "--pin-file",
        &pin,
        "--out",
        &csr,
    ]);
    run(&openssl, &["req", "-in", &csr, "-verify", "-noout"]);
    let info = squeeze(&ks.ok(&["info"]));
    let slot_9c = slot_block(&info, "Slot 9C (SIGNATURE):");
    for expected in ["PIN policy: Always", "Touch policy: Always"] {
        assert!(slot_9c.iter().any(|l| *l == expected), "{expected:?} missing:\n{info:#?}");
    }

    // Retired slot 82 (key reference 82, certificate object 5FC10D).
    let public = ks.generate("82", &["--key-algorithm", "p384"]);
    ks.self_sign("82", "CN=retired");
    let cert = ks.export_pem("82", "retired.pem");
    assert_openssl_self_signed(&cert, "CN = retired", &public);
    let details = run(&openssl, &["x509", "-in", &cert, "-noout", "-text"]);
    assert!(details.contains("NIST CURVE: P-384"), "{details}");
    let info = squeeze(&ks.ok(&["info"]));
    let slot_82 = slot_block(&info, "Slot 82 (RETIRED):");
    assert!(slot_82.iter().any(|l| *l == "Subject DN: CN=retired"), "{info:#?}");
    assert!(
        !info.iter().any(|l| l.starts_with("Slot 83")),
        "unused retired slots are listed:\n{info:#?}"
    );
    let piv = squeeze(&run(&ykman, &["--reader", &simulator.reader, "piv", "info"]));
    let block: Vec<&String> = piv
        .iter()
        .skip_while(|l| !l.starts_with("Slot 82"))
        .take_while(|l| !l.is_empty())
        .collect();
    for expected in ["Private key type: ECCP384", "Subject DN: CN=retired"] {
        assert!(block.iter().any(|l| *l == expected), "{expected:?} missing:\n{piv:#?}");
    }

    // Ed25519 needs firmware 5.7; this card is 5.4.3.
    let refused = ks.fails(&["generate", "9e", "--key-algorithm", "ed25519", "--pin-file", &pin]);
    assert!(refused.to_ascii_lowercase().contains("ed25519"), "{refused}");
    let info = squeeze(&ks.ok(&["info"]));
    let slot_9e = slot_block(&info, "Slot 9E (CARD_AUTH):");
    assert_eq!(slot_9e, [&"Empty".to_owned()], "{info:#?}");
}

/// A slot without a key, on a card that has GET METADATA: the message says the slot holds
/// no key (not that the card lacks metadata, which is false for firmware 5.4.3).
#[test]
fn empty_slot_is_reported_as_holding_no_key() {
    let simulator = Simulator::start();
    let ks = Keystation::new(&simulator.reader);
    let pin = ks.path("pin");
    for args in [
        ["certificate", "generate", "9c", "--subject", "CN=nobody", "--pin-file", &pin],
        ["certificate", "request", "9c", "--subject", "CN=nobody", "--pin-file", &pin],
    ] {
        let refused = ks.fails(&args);
        assert!(refused.contains("slot 9c holds no key"), "{args:?}:\n{refused}");
        assert!(!refused.contains("no metadata"), "{args:?}:\n{refused}");
    }
    assert!(ks.fails(&["attest", "9c"]).contains("9c"));
}

/// ykman's PIN-protected management key (a random key stored in PRINTED, flagged in ADMIN
/// DATA): keystation finds it with the PIN alone, and the factory key no longer works.
#[test]
fn pin_protected_management_key_set_by_ykman_is_used() {
    let ykman = ykman(5);
    let simulator = Simulator::start();
    let ks = Keystation::new(&simulator.reader);
    run(
        &ykman,
        &[
            "--reader",
            &simulator.reader,
            "piv",
            "access",
            "change-management-key",
            "--protect",
            "--generate",
            "--management-key",
            DEFAULT_MGMT_KEY,
            "--pin",
            PIN,
            "--force",
        ],
    );
    let info = squeeze(&ks.ok(&["info"]));
    assert!(
        info.contains(&"Management key is stored on the card, protected by the PIN.".to_owned()),
        "{info:#?}"
    );
    assert!(
        !info.contains(&"WARNING: the default management key is in use".to_owned()),
        "{info:#?}"
    );

    let public = ks.generate("9e", &[]);
    ks.self_sign("9e", "CN=protected");
    let cert = ks.export_pem("9e", "protected.pem");
    assert_openssl_self_signed(&cert, "CN = protected", &public);

    // The factory key, given explicitly, is now refused.
    let mgmt = ks.path("mgmt");
    let refused = ks.fails(&["generate", "9c", "--management-key-file", &mgmt]);
    assert!(refused.contains("management key authentication failed"), "{refused}");
    // A wrong PIN cannot unlock the stored key.
    let wrong = ks.write("wrong-pin", "000000\n");
    let refused = ks.fails(&["generate", "9c", "--pin-file", &wrong]);
    assert!(refused.contains("wrong PIN"), "{refused}");
}

/// `certificate generate 9a --subject CN=peer EXTRA` on the peer card (PIN and management
/// key files from the test directory); openssl then verifies the self-signed certificate
/// for `public`.
fn peer_self_signs(ks: &Keystation, public: &str, extra: &[&str]) {
    let (pin, mgmt) = (ks.path("pin"), ks.path("mgmt"));
    let access = ["--pin-file", &pin, "--management-key-file", &mgmt];
    let said = ks
        .ok(&[&["certificate", "generate", "9a", "--subject", "CN=peer"], extra, &access].concat());
    assert!(said.contains("written to slot 9a"), "{said}");
    let cert = ks.export_pem("9a", "peer.pem");
    assert_openssl_self_signed(&cert, "CN = peer", public);
}

/// piv-authenticator (the `piv-vpcd` peer adapter) in vpcd's second reader, so that these
/// tests do not wait for the simulator's.
fn piv_peer() -> Simulator {
    Simulator::start_peer("KEYSTATION_TEST_PIV_VPCD", &[], true)
}

/// piv-authenticator answers Yubico's GET METADATA with nothing for 9a, so keystation
/// cannot learn a key's public half from the card after `piv generate`: the
/// self-signed certificate and the request for a freshly generated key fail with "the card
/// has no metadata and the slot no certificate". This test states the workflow a user of
/// a standard PIV card needs: the public key `piv generate` printed, given back with
/// `--public-key FILE` (ykman's `piv certificates generate/request` take it as an
/// argument for this reason). It fails until `certificate generate/request` accept it.
#[test]
fn standard_piv_card_generate_then_self_sign() {
    let peer = piv_peer();
    let ks = Keystation::new(&peer.reader);
    let mgmt = ks.path("mgmt");
    let pin = ks.path("pin");
    let public = ks.generate("9a", &["--management-key-file", &mgmt]);
    let info = squeeze(&ks.ok(&["info"]));
    assert!(info.contains(&"Slot 9A (AUTHENTICATION):".to_owned()), "{info:#?}");
    // The public key as `piv generate` printed it, given back as ykman's `certificates
    // generate SLOT PUBLIC-KEY` takes it.
    let public_path = ks.write("peer-public.pem", &public);
    peer_self_signs(&ks, &public, &["--public-key", &public_path]);
    let info = squeeze(&ks.ok(&["info"]));
    assert!(info.contains(&"Subject DN: CN=peer".to_owned()), "{info:#?}");
    // A request for a key nothing on the card describes, likewise.
    let csr = ks.path("peer.csr");
    ks.ok(&[
        "certificate",
        "request",
        "9a",
        "--subject",
        "CN=peer",
        "--public-key",
        &public_path,
        "--pin-file",
        &pin,
        "--out",
        &csr,
    ]);
    run(&tool("openssl"), &["req", "-in", &csr, "-verify", "-noout"]);
    drop(peer);
}

/// The rest of the flow on the standard PIV card, around the missing metadata: a CA made
/// by openssl certifies the public key `piv generate` printed, keystation imports that
/// certificate, then signs a self-signed replacement with the card's key (the slot's
/// certificate tells it the public key), exports it, and lists the slot.
#[test]
fn standard_piv_card_import_sign_export_and_info() {
    let openssl = tool("openssl");
    let peer = piv_peer();
    let ks = Keystation::new(&peer.reader);
    let mgmt = ks.path("mgmt");
    let pin = ks.path("pin");
    let info = ks.ok(&["info"]);
    assert!(squeeze(&info).contains(&"PIN tries remaining: 3".to_owned()), "{info}");
    let public = ks.generate("9a", &["--management-key-file", &mgmt]);
    let public_path = ks.write("peer-public.pem", &public);

    let (ca_key, ca_cert) = openssl_test_ca(&ks);
    let issued = ks.path("issued.pem");
    run(
        &openssl,
        &[
            "x509",
            "-new",
            "-force_pubkey",
            &public_path,
            "-subj",
            "/CN=issued",
            "-CA",
            &ca_cert,
            "-CAkey",
            &ca_key,
            "-set_serial",
            "9",
            "-days",
            "2",
            "-out",
            &issued,
        ],
    );
    import_and_read_back(&ks, "9a", &issued, &["--management-key-file", &mgmt]);

    // The card's key signs a self-signed certificate, which replaces the CA's.
    peer_self_signs(&ks, &public, &[]);

    // A request signed by the card, which openssl verifies.
    let csr = ks.path("peer.csr");
    ks.ok(&[
        "certificate",
        "request",
        "9a",
        "--subject",
        "CN=peer request",
        "--pin-file",
        &pin,
        "--out",
        &csr,
    ]);
    let verified = output(&openssl, &["req", "-in", &csr, "-verify", "-noout"]);
    assert!(verified.status.success(), "{}", text(&verified.stderr));
    let key = run(&openssl, &["req", "-in", &csr, "-noout", "-pubkey"]);
    assert_eq!(squashed(&key), squashed(&public));

    let info = squeeze(&ks.ok(&["info"]));
    let slot_9a = slot_block(&info, "Slot 9A (AUTHENTICATION):");
    assert!(slot_9a.iter().any(|l| *l == "Subject DN: CN=peer"), "{info:#?}");
    assert!(slot_9a.iter().any(|l| *l == "Issuer DN: CN=peer"), "{info:#?}");

    ks.ok(&["certificate", "delete", "9a", "--management-key-file", &mgmt]);
    assert!(ks.fails(&["certificate", "export", "9a"]).contains("slot 9a holds no certificate"));
    drop(peer);
}

/// Two cards present — the software YubiKey in the first reader, piv-authenticator in the
/// second: without a choice `piv` refuses and names both readers; `--card-serial` picks the
/// YubiKey by the serial ykman shows (its PIV GET SERIAL and its OpenPGP AID both carry
/// it); a serial no card has is "no card detected" naming it.
#[test]
fn serial_chooses_among_several_cards() {
    let yubikey = Simulator::start();
    let peer = piv_peer();
    let home = tempfile::tempdir().unwrap();
    let piv = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_keystation"))
            .arg("piv")
            .args(args)
            .env("HOME", home.path())
            .env_remove("KEYSTATION_READER")
            .env_remove("KEYSTATION_CARD_SERIAL")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let both = piv(&["info"]);
    assert_eq!(both.status.code(), Some(1));
    let said = text(&both.stderr);
    assert!(said.contains("several cards present"), "{said}");
    assert!(said.contains(&yubikey.reader) && said.contains(&peer.reader), "{said}");

    let chosen = piv(&["info", "--card-serial", &SERIAL.to_string()]);
    assert!(chosen.status.success(), "{}", text(&chosen.stderr));
    let info = squeeze(&text(&chosen.stdout));
    assert!(info.contains(&format!("Serial number: {SERIAL}")), "{info:#?}");
    // Leading zeros do not matter.
    let padded = piv(&["info", "--card-serial", &format!("00{SERIAL}")]);
    assert!(padded.status.success(), "{}", text(&padded.stderr));

    let nobody = piv(&["info", "--card-serial", "424242"]);
    assert_eq!(nobody.status.code(), Some(1));
    let said = text(&nobody.stderr);
    assert!(said.contains("no card detected with serial number \"424242\""), "{said}");
}
