#![cfg(feature = "test-vpcd")]
//! The software YubiKey 5's PIV applet through a real pcscd, checked with ykman 4
//! (Debian's `yubikey-manager` 4.0.x) and yubico-piv-tool: `keystation simulate` plugs it
//! into the vpcd reader of a private pcscd that `scripts/with-pcscd` starts.
//!
//! ```text
//! scripts/with-pcscd cargo test --features test-vpcd --test softcard_piv_ykman4
//! ```
//!
//! ykman 4 is `KEYSTATION_TEST_YKMAN4`, else `ykman` on `PATH`, and must report version
//! 4; yubico-piv-tool and openssl come from `PATH`. A missing tool fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/simulator.rs"]
mod simulator;

use simulator::{SERIAL, Simulator, VERSION, output, run, tool, ykman};

/// The factory 3DES management key.
const MGMT: &str = "010203040506070801020304050607080102030405060708";

/// `text` with each run of whitespace collapsed to one space, line by line.
fn squeeze(text: &str) -> Vec<String> {
    text.lines().map(|line| line.split_whitespace().collect::<Vec<_>>().join(" ")).collect()
}

fn assert_lines(text: &str, expected: &[&str]) {
    let lines = squeeze(text);
    for line in expected {
        assert!(lines.iter().any(|l| l == line), "{line:?} missing:\n{text}");
    }
}

/// ykman 4 manages the PIV applet: info, key generation with a self-signed certificate,
/// attestation that chains to the software test root, PIN change and reset; and
/// yubico-piv-tool imports a certificate that openssl issued for the ykman-generated key.
#[test]
fn ykman_4_and_yubico_piv_tool_manage_the_piv_applet() {
    let ykman = ykman(4);
    let (piv_tool, openssl) = (tool("yubico-piv-tool"), tool("openssl"));
    let simulator = Simulator::start();
    let reader = simulator.reader.clone();
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let yk = |args: &[&str]| {
        let mut all = vec!["--reader", reader.as_str()];
        all.extend_from_slice(args);
        run(&ykman, &all)
    };
    let piv = |args: &[&str]| {
        let mut all = vec!["-r", reader.as_str()];
        all.extend_from_slice(args);
        run(&piv_tool, &all)
    };
    let ssl = |args: &[&str]| run(&openssl, args);

    // A factory-fresh PIV applet.
    let info = yk(&["piv", "info"]);
    assert_lines(
        &info,
        &[
            "PIV version: 5.4.3",
            "WARNING: Using default PIN!",
            "PIN tries remaining: 3/3",
            "WARNING: Using default Management key!",
            "Management key algorithm: TDES",
            "CHUID: No data available.",
        ],
    );
    assert!(!info.contains("Slot 9a"), "a fresh card has no certificate in 9a:\n{info}");

    // Key and self-signed certificate in 9a.
    let public = path("9a.pem");
    yk(&["piv", "keys", "generate", "-m", MGMT, "-a", "ECCP256", "9a", &public]);
    let public_text = std::fs::read_to_string(&public).expect("the generated public key");
    assert!(public_text.starts_with("-----BEGIN PUBLIC KEY-----"), "{public_text}");
    let described = ssl(&["pkey", "-pubin", "-in", &public, "-noout", "-text"]);
    assert!(described.contains("prime256v1") || described.contains("P-256"), "{described}");
    yk(&[
        "piv",
        "certificates",
        "generate",
        "-m",
        MGMT,
        "-P",
        "123456",
        "-s",
        "CN=ykman 4 self-signed",
        "9a",
        &public,
    ]);
    let info = yk(&["piv", "info"]);
    assert_lines(
        &info,
        &[
            "Slot 9a:",
            "Algorithm: ECCP256",
            "Subject DN: CN=ykman 4 self-signed",
            "Issuer DN: CN=ykman 4 self-signed",
        ],
    );
    // The self-signed certificate's key is the generated one, and it verifies itself
    // (ykman had the card sign it).
    let self_signed = path("self-signed.pem");
    yk(&["piv", "certificates", "export", "9a", &self_signed]);
    let certified_key = ssl(&["x509", "-in", &self_signed, "-noout", "-pubkey"]);
    assert_eq!(certified_key.trim(), public_text.trim(), "certificate is for another key");
    let verified = ssl(&["verify", "-CAfile", &self_signed, &self_signed]);
    assert!(verified.contains(": OK"), "{verified}");

    // Attestation of 9a chains to the software test root through the F9 certificate.
    let (attestation, f9, root) = (path("attestation.pem"), path("f9.pem"), path("root.pem"));
    yk(&["piv", "keys", "attest", "9a", &attestation]);
    yk(&["piv", "certificates", "export", "f9", &f9]);
    std::fs::write(&root, keystation_softcard::piv::test_attestation_root_pem())
        .expect("writing the test root");
    let verified = ssl(&["verify", "-CAfile", &root, "-untrusted", &f9, &attestation]);
    assert!(verified.contains(": OK"), "{verified}");
    let attested_key = ssl(&["x509", "-in", &attestation, "-noout", "-pubkey"]);
    assert_eq!(attested_key.trim(), public_text.trim(), "attestation is for another key");

    // yubico-piv-tool imports a certificate that openssl issues for the card's key (a
    // throwaway CA signs a request whose key is replaced by the card's), reads it back,
    // and lists it in its status.
    let (ca_key, ca_cert) = (path("ca.key"), path("ca.pem"));
    ssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &ca_key]);
    ssl(&["req", "-new", "-x509", "-key", &ca_key, "-subj", "/CN=openssl test CA", "-days", "1"])
        .pipe_to(&ca_cert);
    let (request_key, request) = (path("request.key"), path("request.csr"));
    ssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &request_key]);
    ssl(&["req", "-new", "-key", &request_key, "-subj", "/CN=imported by yubico-piv-tool"])
        .pipe_to(&request);
    let issued = path("issued.pem");
    ssl(&[
        "x509",
        "-req",
        "-in",
        &request,
        "-force_pubkey",
        &public,
        "-CA",
        &ca_cert,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-days",
        "1",
        "-out",
        &issued,
    ]);
    piv(&[&format!("--key={MGMT}"), "-a", "import-certificate", "-s", "9a", "-i", &issued]);
    let read_back = piv(&["-a", "read-certificate", "-s", "9a"]);
    let issued_pem = std::fs::read_to_string(&issued).expect("the issued certificate");
    assert_eq!(read_back.trim(), issued_pem.trim(), "read-certificate returns another one");
    let status = piv(&["-a", "status"]);
    assert!(status.contains(&format!("Version:\t{VERSION}")), "{status}");
    assert!(status.contains(&format!("Serial Number:\t{SERIAL}")), "{status}");
    assert!(status.contains("Slot 9a:"), "9a not listed:\n{status}");
    assert!(status.contains("CN=imported by yubico-piv-tool"), "subject not listed:\n{status}");
    assert!(status.contains("CN=openssl test CA"), "issuer not listed:\n{status}");
    // ykman sees the imported certificate too.
    let info = yk(&["piv", "info"]);
    assert_lines(
        &info,
        &["Subject DN: CN=imported by yubico-piv-tool", "Issuer DN: CN=openssl test CA"],
    );

    // PIN change: the old PIN is refused, the new one accepted, the warning gone.
    yk(&["piv", "access", "change-pin", "-P", "123456", "-n", "654321"]);
    let refused = output(&piv_tool, &["-r", &reader, "-a", "verify-pin", "-P", "123456"]);
    assert!(!refused.status.success(), "the old PIN still verifies");
    piv(&["-a", "verify-pin", "-P", "654321"]);
    let info = yk(&["piv", "info"]);
    assert!(!info.contains("Using default PIN"), "default-PIN warning after the change:\n{info}");

    // Reset: factory PIN and management key, no certificate.
    yk(&["piv", "reset", "--force"]);
    let info = yk(&["piv", "info"]);
    assert_lines(&info, &["WARNING: Using default PIN!", "PIN tries remaining: 3/3"]);
    assert!(!info.contains("Slot 9a"), "9a certificate survived the reset:\n{info}");
    piv(&["-a", "verify-pin", "-P", "123456"]);
    let gone = output(&piv_tool, &["-r", &reader, "-a", "read-certificate", "-s", "9a"]);
    assert!(
        !gone.status.success() || gone.stdout.is_empty(),
        "9a certificate readable after reset: {}",
        String::from_utf8_lossy(&gone.stdout)
    );
}

/// Writes a tool's standard output to a file.
trait PipeTo {
    fn pipe_to(self, path: &str);
}

impl PipeTo for String {
    fn pipe_to(self, path: &str) {
        std::fs::write(path, self).unwrap_or_else(|e| panic!("writing {path}: {e}"));
    }
}
