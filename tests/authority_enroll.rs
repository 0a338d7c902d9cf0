#![cfg(all(feature = "test-vpcd", feature = "enroll"))]
//! Attested enrollment end to end: `keystation piv enroll` on the software YubiKey 5 that
//! `keystation simulate` serves through the private pcscd, against `keystation authority
//! serve` with YubiKey attestation provisioners that trust the software card's attestation
//! root.
//!
//! ```text
//! scripts/with-pcscd cargo test --features test-vpcd --test authority_enroll
//! ```
//!
//! The issued certificate is checked with openssl (`verify` against the authority's root
//! and intermediate, the subject naming the card's serial), and the authority's refusal —
//! a provisioner requiring touch policy `always` for a key made with `cached` — must say
//! so to the user, leave the slot's certificate as it was, and be logged by the server
//! with its precise reason. Needs pcscd with vpcd (scripts/with-pcscd), curl and openssl;
//! a missing one fails the test.
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
const PASSWORD: &str = "enroll-test-password";
/// How long the authority may take to answer `/health`.
const START_WAIT: Duration = Duration::from_secs(60);

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.local_addr().unwrap().port()
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
    let output: Output = command.output().unwrap_or_else(|e| panic!("running {what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// `keystation authority serve`, stopped by PID (SIGTERM) on drop.
struct Server {
    child: Option<Child>,
    log: PathBuf,
}

impl Server {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
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

/// An initialised authority in `dir/authority` with two YubiKey attestation provisioners
/// trusting the software card's root — `yk` (the card's firmware, serial, slot and the
/// policies the test asks for) and `yk-touch-always` (touch policy `always` only) — served
/// on a free loopback port.
struct Authority {
    dir: PathBuf,
    url: String,
    server: Server,
}

impl Authority {
    fn start(home: &Path) -> Self {
        let dir = home.join("authority");
        let password = home.join("authority-password");
        std::fs::write(&password, format!("{PASSWORD}\n")).unwrap();
        let address = format!("127.0.0.1:{}", free_port());
        let grpc_address = format!("127.0.0.1:{}", free_port());
        let mut init = keystation(home);
        init.args(["authority", "init", "--dir"])
            .arg(&dir)
            .args(["--name", "Enroll Test CA", "--dns", "127.0.0.1", "--dns", "localhost"])
            .args(["--address", &address, "--provisioner", "admin", "--password-file"])
            .arg(&password);
        succeed(init, "keystation authority init");

        // The software card's attestation root: the card's F9 certificate chains to it.
        let attestation_root = home.join("softcard-attestation-root.pem");
        std::fs::write(&attestation_root, keystation_softcard::piv::test_attestation_root_pem())
            .unwrap();
        let add = |name: &str, policy: &[&str]| {
            let mut command = keystation(home);
            command
                .args(["authority", "provisioner", "add", name, "--dir"])
                .arg(&dir)
                .args(["--type", "yubikey-attestation", "--root"])
                .arg(&attestation_root)
                .args(policy);
            succeed(command, &format!("keystation authority provisioner add {name}"));
        };
        let serial = SERIAL.to_string();
        add(
            "yk",
            &[
                "--min-firmware",
                "5.2.3",
                "--pin-policy",
                "once,always",
                "--touch-policy",
                "never,cached",
                "--slot",
                "9a,9c",
                "--serial",
                &serial,
            ],
        );
        add("yk-touch-always", &["--touch-policy", "always"]);

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
        let authority = Self {
            dir,
            url: format!("https://{address}"),
            server: Server { child: Some(child), log },
        };
        authority.wait_healthy();
        authority
    }

    fn root(&self) -> PathBuf {
        self.dir.join("certs/root_ca.crt")
    }

    fn intermediate(&self) -> PathBuf {
        self.dir.join("certs/intermediate_ca.crt")
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
                self.server.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
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

    fn access(&self) -> Vec<String> {
        let path = |name: &str| self.home.join(name).to_string_lossy().into_owned();
        vec!["--pin-file".into(), path("pin"), "--management-key-file".into(), path("mgmt")]
    }

    fn enroll(&self, authority: &Authority, provisioner: &str, touch: &str) -> Output {
        let root = authority.root().to_string_lossy().into_owned();
        let mut args = vec![
            "enroll",
            "--authority",
            &authority.url,
            "--root",
            &root,
            "--provisioner",
            provisioner,
            "--slot",
            "9a",
            "--algorithm",
            "eccp256",
            "--pin-policy",
            "once",
            "--touch-policy",
            touch,
        ];
        let access = self.access();
        args.extend(access.iter().map(String::as_str));
        self.piv(&args)
    }

    /// The DER certificate in 9a.
    fn certificate_9a(&self) -> Vec<u8> {
        let path = self.home.join("9a.der").to_string_lossy().into_owned();
        let output = self.piv(&["certificate", "export", "9a", "--out", &path, "--der"]);
        assert!(output.status.success(), "export 9a: {}", text(&output.stderr));
        std::fs::read(&path).unwrap()
    }
}

#[test]
fn enrolled_slot_holds_a_certificate_of_the_authority_and_a_refusal_changes_nothing() {
    let openssl = tool("openssl");
    let simulator = Simulator::start();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("pin"), format!("{PIN}\n")).unwrap();
    std::fs::write(home.path().join("mgmt"), format!("{DEFAULT_MGMT_KEY}\n")).unwrap();
    let authority = Authority::start(home.path());
    let card = Card { reader: &simulator.reader, home: home.path() };

    // Enrollment: key generated and attested on the card, certified by the authority.
    let enrolled = card.enroll(&authority, "yk", "cached");
    assert!(
        enrolled.status.success(),
        "piv enroll failed ({}):\nstdout:\n{}\nstderr:\n{}\n---- authority log ----\n{}",
        enrolled.status,
        text(&enrolled.stdout),
        text(&enrolled.stderr),
        authority.server.log()
    );
    let said = text(&enrolled.stdout);
    assert!(said.contains("Enrolled slot 9a"), "{said}");
    let issued = card.certificate_9a();
    let pem = home.path().join("enrolled.pem");
    let der = home.path().join("enrolled.der");
    std::fs::write(&der, &issued).unwrap();
    let der_arg = der.to_string_lossy().into_owned();
    let pem_arg = pem.to_string_lossy().into_owned();
    run(&openssl, &["x509", "-inform", "DER", "-in", &der_arg, "-out", &pem_arg]);

    // The certificate chains to the authority's root, through its intermediate.
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
    // Its subject binds the card's serial (the attestation's, which the authority read).
    let subject = run(&openssl, &["x509", "-in", &pem_arg, "-noout", "-subject"]);
    assert!(subject.contains(&SERIAL.to_string()), "subject {subject:?} names no serial");
    // It certifies the key the card attests in 9a now.
    let attested = home.path().join("attested.pem").to_string_lossy().into_owned();
    let attestation_root =
        home.path().join("softcard-attestation-root.pem").to_string_lossy().into_owned();
    let attest = card.piv(&["attest", "9a", "--roots", &attestation_root, "--out", &attested]);
    assert!(attest.status.success(), "piv attest 9a: {}", text(&attest.stderr));
    let squashed = |pem: String| pem.split_whitespace().collect::<String>();
    let issued_key = run(&openssl, &["x509", "-in", &pem_arg, "-noout", "-pubkey"]);
    let attested_key = run(&openssl, &["x509", "-in", &attested, "-noout", "-pubkey"]);
    assert!(issued_key.contains("BEGIN PUBLIC KEY"), "{issued_key}");
    assert_eq!(squashed(issued_key), squashed(attested_key), "issued key vs attested key");

    // A provisioner that requires touch policy `always` refuses a key made with `cached`:
    // the user is told, the slot's certificate stays the enrolled one.
    let refused = card.enroll(&authority, "yk-touch-always", "cached");
    let stderr = text(&refused.stderr);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "the refused enrollment must fail with status 1:\nstdout:\n{}\nstderr:\n{stderr}",
        text(&refused.stdout)
    );
    assert!(stderr.contains("refused to certify slot 9a"), "{stderr}");
    assert!(stderr.contains("yk-touch-always"), "{stderr}");
    assert!(stderr.contains("policy"), "the refusal names no policy: {stderr}");
    assert!(stderr.contains("certificate is unchanged"), "{stderr}");
    assert_eq!(card.certificate_9a(), issued, "the slot's certificate changed");
    // The server logged the precise reason.
    let log = authority.server.log();
    assert!(
        log.contains("touch policy cached of slot 9a is not allowed (allowed: always)"),
        "the authority's log lacks the refusal's reason:\n{log}"
    );
}
