#![cfg(all(feature = "test-vpcd", feature = "enroll", feature = "acme"))]
//! ACME device-attest-01 end to end: `keystation piv enroll --acme` on the software
//! YubiKey 5 that `keystation simulate` serves through the private pcscd, against
//! `keystation authority serve` with ACME provisioners offering device-attest-01.
//!
//! ```text
//! scripts/with-pcscd env CARGO_TARGET_DIR=… cargo test --features test-vpcd,test-authority \
//!     --test acme_device_attest
//! ```
//!
//! `attest` trusts the software card's attestation root: the enrollment must succeed,
//! and the certificate in 9a must verify with openssl against the authority's root and
//! intermediate, certify the key the card attests in 9a, and carry the card's serial as
//! its permanent identifier (otherName `1.3.6.1.5.5.7.8.3`, RFC 4043). `attest-other`
//! trusts another root (the authority's own): the enrollment must fail with a message
//! naming the attestation and the server's problem, and 9a must keep its certificate.
//! Needs pcscd with vpcd (scripts/with-pcscd), curl and openssl; a missing one fails the
//! test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/simulator.rs"]
mod simulator;

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use simulator::{SERIAL, Simulator, output, run, tool};

/// The simulated card's factory PIN and management key.
const PIN: &str = "123456";
const DEFAULT_MGMT_KEY: &str = "010203040506070801020304050607080102030405060708";
/// The authority's admin provisioner password.
const PASSWORD: &str = "acme-device-attest-password";
/// How long the authority may take to answer `/health`.
const START_WAIT: Duration = Duration::from_secs(60);
/// `id-on-permanentIdentifier` (RFC 4043 §2), DER-encoded OID.
const PERMANENT_IDENTIFIER_OID: [u8; 10] =
    [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x03];

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port()
}

/// `keystation` with a private HOME and no configuration from the caller's environment
/// (pcscd's socket variable is kept: `piv enroll` needs it).
fn keystation(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keystation"));
    command
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("KEYSTATION_CONFIG")
        .env_remove("KEYSTATION_READER")
        .env_remove("KEYSTATION_CARD_SERIAL")
        .env_remove("KEYSTATION_AUTHORITY_DIR")
        .current_dir(home)
        .stdin(Stdio::null());
    command
}

fn succeed(mut command: Command, what: &str) -> String {
    let result = command.output().unwrap_or_else(|e| panic!("running {what}: {e}"));
    assert!(
        result.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        result.status,
        text(&result.stdout),
        text(&result.stderr)
    );
    text(&result.stdout)
}

/// `keystation authority serve` with two ACME provisioners, stopped by PID (SIGTERM) on
/// drop.
struct Authority {
    dir: PathBuf,
    /// `https://localhost:PORT`.
    url: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Authority {
    fn start(home: &Path) -> Self {
        let dir = home.join("authority");
        let password = home.join("authority-password");
        std::fs::write(&password, format!("{PASSWORD}\n")).unwrap();
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let grpc_address = format!("127.0.0.1:{}", free_port());
        let mut init = keystation(home);
        init.args(["authority", "init", "--dir"])
            .arg(&dir)
            .args(["--name", "ACME Attest Test CA", "--dns", "localhost", "--dns", "127.0.0.1"])
            .args(["--address", &address, "--provisioner", "admin", "--password-file"])
            .arg(&password);
        succeed(init, "keystation authority init");

        // `attest` trusts the software card's attestation root (its F9 certificate chains
        // to it); `attest-other` trusts only the authority's own root, which did not.
        let card_root = home.join("softcard-attestation-root.pem");
        std::fs::write(&card_root, keystation_softcard::piv::test_attestation_root_pem()).unwrap();
        let add = |name: &str, roots: &Path| {
            let mut command = keystation(home);
            command
                .args(["authority", "provisioner", "add", name, "--dir"])
                .arg(&dir)
                .args(["--type", "ACME", "--challenge", "device-attest-01", "--attestation-roots"])
                .arg(roots);
            succeed(command, &format!("keystation authority provisioner add {name}"));
        };
        add("attest", &card_root);
        add("attest-other", &dir.join("certs/root_ca.crt"));

        let log = home.join("authority.log");
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let mut serve = keystation(home);
        serve
            .args(["authority", "serve", "--dir"])
            .arg(&dir)
            .arg("--password-file")
            .arg(&password)
            .args(["--address", &address, "--grpc-address", &grpc_address])
            .stdout(out)
            .stderr(err);
        let child = serve.spawn().unwrap_or_else(|e| panic!("cannot start the authority: {e}"));
        let authority =
            Self { dir, url: format!("https://localhost:{port}"), child: Some(child), log };
        authority.wait_healthy();
        authority
    }

    fn root(&self) -> PathBuf {
        self.dir.join("certs/root_ca.crt")
    }

    fn intermediate(&self) -> PathBuf {
        self.dir.join("certs/intermediate_ca.crt")
    }

    fn directory(&self, provisioner: &str) -> String {
        format!("{}/acme/{provisioner}/directory", self.url)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `GET /health` with curl, trusting the authority's root only.
    fn wait_healthy(&self) {
        let curl = tool("curl");
        let url = format!("{}/health", self.url);
        let deadline = Instant::now() + START_WAIT;
        loop {
            let answer = Command::new(&curl)
                .args(["-sf", "--max-time", "2", "--cacert"])
                .arg(self.root())
                .arg(&url)
                .stderr(Stdio::null())
                .output()
                .unwrap();
            let body = text(&answer.stdout).replace(char::is_whitespace, "");
            if answer.status.success() && body == r#"{"status":"ok"}"# {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the authority did not answer {url} within {START_WAIT:?}; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Authority {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// `keystation --reader READER piv ARGS` with the scratch PIN and management key files.
struct Card<'a> {
    reader: &'a str,
    home: &'a Path,
}

impl Card<'_> {
    fn piv(&self, args: &[&str]) -> Output {
        let mut command = keystation(self.home);
        command.args(["--reader", self.reader, "piv"]).args(args);
        command.output().unwrap_or_else(|e| panic!("running piv {args:?}: {e}"))
    }

    fn enroll(&self, authority: &Authority, provisioner: &str) -> Output {
        let directory = authority.directory(provisioner);
        let root = authority.root().to_string_lossy().into_owned();
        let pin = self.home.join("pin").to_string_lossy().into_owned();
        let mgmt = self.home.join("mgmt").to_string_lossy().into_owned();
        self.piv(&[
            "enroll",
            "--acme",
            &directory,
            "--root",
            &root,
            "--slot",
            "9a",
            "--algorithm",
            "eccp256",
            "--pin-policy",
            "once",
            "--touch-policy",
            "never",
            "--pin-file",
            &pin,
            "--management-key-file",
            &mgmt,
        ])
    }

    /// The DER certificate in 9a.
    fn certificate_9a(&self) -> Vec<u8> {
        let path = self.home.join("9a.der").to_string_lossy().into_owned();
        let exported = self.piv(&["certificate", "export", "9a", "--out", &path, "--der"]);
        assert!(exported.status.success(), "export 9a: {}", text(&exported.stderr));
        std::fs::read(&path).unwrap()
    }
}

/// The DER value of the certificate's subjectAltName extension (`2.5.29.17`).
fn subject_alt_name(der: &[u8]) -> Vec<u8> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    cert.extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == "2.5.29.17")
        .map(|e| e.value.to_vec())
        .expect("the certificate has a subjectAltName")
}

#[test]
fn device_attest_01_enrolls_the_card_and_an_untrusted_attestation_changes_nothing() {
    let openssl = tool("openssl");
    let simulator = Simulator::start();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("pin"), format!("{PIN}\n")).unwrap();
    std::fs::write(home.path().join("mgmt"), format!("{DEFAULT_MGMT_KEY}\n")).unwrap();
    let authority = Authority::start(home.path());
    let card = Card { reader: &simulator.reader, home: home.path() };

    // The whole order: account, order for the serial, the card's attestation and
    // signature over the key authorization, the CSR signed by the card, the chain.
    let enrolled = card.enroll(&authority, "attest");
    assert!(
        enrolled.status.success(),
        "piv enroll --acme failed ({}):\nstdout:\n{}\nstderr:\n{}\n---- authority log ----\n{}",
        enrolled.status,
        text(&enrolled.stdout),
        text(&enrolled.stderr),
        authority.log()
    );
    let said = text(&enrolled.stdout);
    let expected = format!(
        "Enrolled slot 9a with {} (ACME device-attest-01, permanent identifier {SERIAL})",
        authority.directory("attest")
    );
    assert!(said.contains(&expected), "{said}");

    let issued = card.certificate_9a();
    let der = home.path().join("enrolled.der");
    std::fs::write(&der, &issued).unwrap();
    let der_arg = der.to_string_lossy().into_owned();
    let pem_arg = home.path().join("enrolled.pem").to_string_lossy().into_owned();
    run(&openssl, &["x509", "-inform", "DER", "-in", &der_arg, "-out", &pem_arg]);

    // It chains to the authority's root through its intermediate.
    let root = authority.root().to_string_lossy().into_owned();
    let intermediate = authority.intermediate().to_string_lossy().into_owned();
    let verified =
        output(&openssl, &["verify", "-CAfile", &root, "-untrusted", &intermediate, &pem_arg]);
    assert!(
        verified.status.success() && text(&verified.stdout).contains(": OK"),
        "openssl verify:\n{}{}",
        text(&verified.stdout),
        text(&verified.stderr)
    );
    // It names the card by its permanent identifier: openssl 3.0 shows the otherName's
    // type; its value, a UTF8String, is the serial in decimal.
    let shown = run(&openssl, &["x509", "-in", &pem_arg, "-noout", "-text"]);
    assert!(shown.contains("Permanent Identifier"), "{shown}");
    let san = subject_alt_name(&issued);
    let serial = SERIAL.to_string();
    let mut utf8 = vec![0x0c, serial.len() as u8];
    utf8.extend_from_slice(serial.as_bytes());
    let oid_at =
        san.windows(PERMANENT_IDENTIFIER_OID.len()).position(|w| w == PERMANENT_IDENTIFIER_OID);
    let value_at = san.windows(utf8.len()).position(|w| w == utf8.as_slice());
    assert!(
        matches!((oid_at, value_at), (Some(o), Some(v)) if o < v),
        "no permanentIdentifier {serial} in the subjectAltName {san:02x?}"
    );
    // It certifies the key the card attests in 9a now.
    let attested = home.path().join("attested.pem").to_string_lossy().into_owned();
    let card_root =
        home.path().join("softcard-attestation-root.pem").to_string_lossy().into_owned();
    let attest = card.piv(&["attest", "9a", "--roots", &card_root, "--out", &attested]);
    assert!(attest.status.success(), "piv attest 9a: {}", text(&attest.stderr));
    let squashed = |pem: String| pem.split_whitespace().collect::<String>();
    let issued_key = run(&openssl, &["x509", "-in", &pem_arg, "-noout", "-pubkey"]);
    let attested_key = run(&openssl, &["x509", "-in", &attested, "-noout", "-pubkey"]);
    assert!(issued_key.contains("BEGIN PUBLIC KEY"), "{issued_key}");
    assert_eq!(squashed(issued_key), squashed(attested_key), "issued key vs attested key");

    // A provisioner whose attestation roots did not issue the card's chain refuses the
    // attestation: the user is told, with the server's problem, and 9a keeps its
    // certificate.
    let refused = card.enroll(&authority, "attest-other");
    let stderr = text(&refused.stderr);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "the refused enrollment must fail with status 1:\nstdout:\n{}\nstderr:\n{stderr}",
        text(&refused.stdout)
    );
    assert!(stderr.contains("did not accept the attestation of slot 9a"), "{stderr}");
    assert!(stderr.contains("certificate is unchanged"), "{stderr}");
    assert!(stderr.contains("badAttestationStatement"), "no problem type in: {stderr}");
    assert_eq!(card.certificate_9a(), issued, "the slot's certificate changed");
}
