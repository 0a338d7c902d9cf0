#![cfg(all(feature = "test-vpcd", feature = "openpgp", feature = "grpc"))]
//! Provisioning end to end, with real binaries only: `keystation station` takes jobs from
//! the test defguard core (a real tonic server on loopback) and provisions the card in the
//! private pcscd's vpcd reader — the software YubiKey 5 of `keystation simulate`, or
//! Nitrokey's opcard — and then gpg (with scdaemon on the same reader) and ssh-keygen use
//! what it made: the certificate defguard got, the keys on the card, the new PINs.
//!
//! ```text
//! eval "$(scripts/peer-cards --env)"      # KEYSTATION_TEST_OPCARD_VPCD, for the opcard part
//! scripts/with-pcscd cargo test --features test-vpcd --test provision_e2e
//! ```
//!
//! Tools: gpg, gpgconf and scdaemon (Debian's `gnupg`, `scdaemon`) and ssh-keygen
//! (`openssh-client`); a missing one fails its test. The tests share the vpcd reader and
//! run one at a time (the simulator guard's lock).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

#[path = "support/defguard_core.rs"]
mod defguard_core;
#[path = "support/gnupg.rs"]
mod gnupg;
#[path = "support/simulator.rs"]
mod simulator;
#[path = "support/station_process.rs"]
mod station_process;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use defguard_core::{Core, TOKEN, serve};
use gnupg::{Gnupg, field, spaced_fingerprint};
use keystation_pcsc::PcscContext;
use simulator::{SERIAL, Simulator, run, tool};
use station_process::StationProcess;

/// Upper bound for one provisioning job (keys generated on the card, debug build).
const JOB_TIMEOUT: Duration = Duration::from_secs(120);
/// Upper bound for anything else to happen (a report, an exit, a card to appear).
const WAIT: Duration = Duration::from_secs(30);

/// The PINs the station sets (`--pin-policy set`).
const NEW_PW1: &str = "424242";
const NEW_PW3: &str = "87654321";

/// The OpenPGP AID of the simulated card: RID, application 01, version 3.4, Yubico
/// (0006), the serial in BCD, RFU (OpenPGP card 3.4 §4.2.1).
fn simulated_aid() -> String {
    format!("D2760001240103040006{SERIAL}0000")
}

/// A running `keystation station` with its working directory (PIN files, token file,
/// state directory, log); dropping it kills it.
struct Station {
    process: StationProcess,
    dir: tempfile::TempDir,
}

impl std::ops::Deref for Station {
    type Target = StationProcess;
    fn deref(&self) -> &StationProcess {
        &self.process
    }
}

impl std::ops::DerefMut for Station {
    fn deref_mut(&mut self) -> &mut StationProcess {
        &mut self.process
    }
}

impl Station {
    /// Starts the station against `core_url` on `reader` with `args` added, PIN files
    /// holding [`NEW_PW1`] and [`NEW_PW3`], and a cleared environment but for the
    /// token and the private pcscd's socket.
    fn start(core_url: &str, reader: &str, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (user, admin) = (dir.path().join("user.pin"), dir.path().join("admin.pin"));
        std::fs::write(&user, NEW_PW1).unwrap();
        std::fs::write(&admin, NEW_PW3).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_keystation"));
        command
            .env_clear()
            .env("DEFGUARD_TOKEN", TOKEN)
            .arg("station")
            .args(["--grpc", core_url, "--id", "e2e-station", "--poll-interval", "100ms"])
            .args(["--card", "pcsc", "--reader", reader, "--pin-policy", "set"])
            .args(["--user-pin-file", user.to_str().unwrap()])
            .args(["--admin-pin-file", admin.to_str().unwrap()])
            .args(args);
        Self::spawn(command, dir)
    }

    /// Starts the station as its systemd unit runs it: `setsid` puts it in a session of
    /// its own with no controlling terminal, stdin is /dev/null, the PIN options are the
    /// defaults, the token comes from a file (as from `LoadCredential=`) and there is a
    /// state directory (`StateDirectory=`). `args` are added.
    fn start_headless(core_url: &str, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
        let mut command = Command::new(tool("setsid"));
        command
            .env_clear()
            .env("KEYSTATION_TOKEN_FILE", &token)
            .env("STATE_DIRECTORY", dir.path().join("state"))
            .arg(env!("CARGO_BIN_EXE_keystation"))
            .arg("station")
            .args(["--grpc", core_url, "--id", "e2e-station", "--poll-interval", "100ms"])
            .args(args);
        Self::spawn(command, dir)
    }

    /// Spawns `command` (whose environment it cleared) in `dir`, adding the private pcscd's
    /// socket to the environment; stderr goes to `dir/station.log`.
    fn spawn(mut command: Command, dir: tempfile::TempDir) -> Self {
        let socket = std::env::var("PCSCLITE_CSOCK_NAME")
            .expect("PCSCLITE_CSOCK_NAME is not set: run through scripts/with-pcscd");
        command.current_dir(dir.path()).env("PCSCLITE_CSOCK_NAME", socket);
        let process = StationProcess::spawn(&mut command, dir.path().join("station.log"));
        Self { process, dir }
    }
}

/// The fingerprints of the imported key by usage: `[signature, encryption,
/// authentication]`, from `gpg --with-colons --fingerprint` (capabilities in field 12 of
/// `pub`/`sub` lines, the fingerprint in field 10 of the `fpr` line after each).
fn key_fingerprints(gnupg: &Gnupg, who: &str) -> [String; 3] {
    let (listing, _) = gnupg.run(&["--with-colons", "--fingerprint", who], "");
    let mut found: [Option<String>; 3] = [None, None, None];
    let mut usage = "";
    for line in listing.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        match fields[0] {
            "pub" | "sub" => usage = fields[11],
            "fpr" => {
                let fingerprint = fields[9].to_owned();
                let slot = if usage.contains('s') {
                    0
                } else if usage.contains('e') {
                    1
                } else if usage.contains('a') {
                    2
                } else {
                    panic!("a key without usage {usage:?}:\n{listing}")
                };
                assert!(found[slot].is_none(), "two keys for one slot:\n{listing}");
                found[slot] = Some(fingerprint);
            }
            _ => {}
        }
    }
    found.map(|f| f.unwrap_or_else(|| panic!("a key is missing:\n{listing}")))
}

/// Imports `certificate` and checks that `gpg --card-status` shows the holder, the new
/// key's three fingerprints in their slots, and, once scdaemon has seen the card, the
/// secret keys as card stubs (`sec>`, `ssb>`). Returns the fingerprints.
fn import_and_check_card(gnupg: &Gnupg, certificate: &str, holder: &str) -> [String; 3] {
    let file = gnupg.path("certificate.asc");
    std::fs::write(&file, certificate).unwrap();
    let (_, imported) = gnupg.run(&["--batch", "--import", &file], "");
    assert!(imported.contains("imported: 1"), "{imported}");
    let fingerprints = key_fingerprints(gnupg, "ada@example.com");
    for fingerprint in &fingerprints {
        assert!(is_fingerprint(fingerprint), "{fingerprint:?}");
    }

    let status = gnupg.card_status();
    assert_eq!(field(&status, "Name of cardholder"), holder, "{status:#?}");
    for (label, fingerprint) in
        ["Signature key", "Encryption key", "Authentication key"].iter().zip(&fingerprints)
    {
        assert_eq!(field(&status, label), spaced_fingerprint(fingerprint), "{status:#?}");
    }
    // The first --card-status made gpg-agent learn the card's keys: now they are linked.
    let status = gnupg.card_status();
    assert_eq!(status.iter().filter(|line| line.starts_with("sec>")).count(), 1, "{status:#?}");
    assert_eq!(status.iter().filter(|line| line.starts_with("ssb>")).count(), 2, "{status:#?}");
    fingerprints
}

/// Signs on the card through gpg and verifies; encrypts to the key and, when `decrypt`,
/// decrypts on the card.
fn sign_and_decrypt(gnupg: &Gnupg, primary: &str, decrypt: bool) {
    let (message, signed) = (gnupg.path("message"), gnupg.path("message.gpg"));
    std::fs::write(&message, b"provisioned by keystation, used by gpg\n").unwrap();
    gnupg.run(&["--batch", "--yes", "-u", primary, "-o", &signed, "--sign", &message], "");
    let (verified, _) = gnupg.run(&["--batch", "--status-fd", "1", "--verify", &signed], "");
    assert!(verified.contains("[GNUPG:] GOODSIG"), "{verified}");
    assert!(verified.contains(&format!("[GNUPG:] VALIDSIG {primary}")), "{verified}");
    if !decrypt {
        return;
    }
    let (encrypted, decrypted) = (gnupg.path("message.enc"), gnupg.path("message.dec"));
    gnupg.run(
        &[
            "--batch",
            "--yes",
            "--trust-model",
            "always",
            "-r",
            "ada@example.com",
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
}

/// `ssh-keygen -l -f` of `key`: `(bits, SHA256 fingerprint, type)`.
fn ssh_fingerprint(dir: &Path, name: &str, key: &str) -> (String, String, String) {
    let file = dir.join(name);
    std::fs::write(&file, format!("{}\n", key.trim())).unwrap();
    let line = run(&tool("ssh-keygen"), &["-l", "-f", file.to_str().unwrap()]);
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert!(fields.len() >= 3 && fields[1].starts_with("SHA256:"), "{line}");
    (fields[0].to_owned(), fields[1].to_owned(), fields[fields.len() - 1].to_owned())
}

fn is_fingerprint(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The raw JSON value after `"key": ` in `json` (the first occurrence): a string with its
/// quotes, `null`, a number, or the start of an array/object.
fn json_raw<'a>(json: &'a str, key: &str) -> &'a str {
    let needle = format!("\"{key}\": ");
    let start = json.find(&needle).unwrap_or_else(|| panic!("no {key:?} in {json}")) + needle.len();
    let rest = &json[start..];
    if rest.starts_with('"') {
        let mut escaped = false;
        for (i, c) in rest.char_indices().skip(1) {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => return &rest[..=i],
                _ => {}
            }
        }
        panic!("unterminated string for {key:?}");
    }
    let end = rest.find([',', '\n', '}']).unwrap_or(rest.len());
    &rest[..end]
}

/// The JSON string value of `key`, unescaped (RFC 8259 §7).
fn json_string(json: &str, key: &str) -> String {
    let raw = json_raw(json, key);
    let inner = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or_else(|| panic!("{key:?} is not a string: {raw}"));
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
            }
            Some(other) => out.push(other),
            None => panic!("dangling escape in {raw}"),
        }
    }
    out
}

/// The strings of a JSON array of strings (no commas or escapes inside them).
fn json_strings(json: &str, key: &str) -> Vec<String> {
    let needle = format!("\"{key}\": [");
    let start = json.find(&needle).unwrap_or_else(|| panic!("no {key:?} in {json}")) + needle.len();
    let end = start + json[start..].find(']').unwrap();
    json[start..end].split(',').map(|s| s.trim().trim_matches('"').to_owned()).collect()
}

/// The SSH key type an OpenPGP card algorithm name (as the JSON gives it) makes.
fn ssh_type_for(algorithm: &str) -> &'static str {
    let lower = algorithm.to_ascii_lowercase();
    if lower.contains("25519") {
        "ssh-ed25519"
    } else if lower.contains("256") && !lower.contains("rsa") {
        "ecdsa-sha2-nistp256"
    } else if lower.contains("384") {
        "ecdsa-sha2-nistp384"
    } else if lower.contains("rsa") {
        "ssh-rsa"
    } else {
        panic!("unknown algorithm {algorithm:?}")
    }
}

/// Starts the defguard core on loopback; returns it, the server and its URL.
async fn start_core() -> (Core, defguard_core::Running, String) {
    let core = Core::default();
    let server = serve(&core, "127.0.0.1:0".parse().unwrap(), None).await.unwrap();
    let url = format!("http://{}", server.addr);
    (core, server, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn station_provisions_the_software_card_and_gpg_uses_it() {
    let started = Instant::now();
    let (core, server, url) = start_core().await;
    let simulator = Simulator::start();
    let mut station = Station::start(&url, &simulator.reader, &[]);

    let job = core.enqueue("Ada", "Lovelace", "ada@example.com");
    let done = station.report(&core, job, JOB_TIMEOUT).await;
    let log = station.log();
    assert!(done.success, "job failed: {}\n{log}", done.error);
    assert_eq!(done.worker, "e2e-station");
    assert_eq!(done.serial, SERIAL.to_string());
    assert!(done.error.is_empty(), "{}", done.error);
    assert!(done.ssh_key.starts_with("ssh-ed25519 "), "{}", done.ssh_key);
    assert!(
        done.public_key.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----")
            && done.public_key.trim_end().ends_with("-----END PGP PUBLIC KEY BLOCK-----"),
        "{}",
        done.public_key
    );
    for secret in [NEW_PW1, NEW_PW3] {
        assert!(!log.contains(secret), "a PIN reached the log:\n{log}");
    }
    eprintln!("provisioned through the station in {:?}", started.elapsed());

    // gpg, with the PINs the station set.
    let gnupg = Gnupg::with_pins(&simulator.reader, NEW_PW1, NEW_PW3);
    let [sig, _, aut] = import_and_check_card(&gnupg, &done.public_key, "Ada Lovelace");
    let status = gnupg.card_status();
    assert_eq!(field(&status, "Serial number"), SERIAL.to_string());
    assert_eq!(field(&status, "Key attributes"), "ed25519 cv25519 ed25519");
    assert_eq!(field(&status, "PIN retry counter"), "3 0 3");
    let (secret, _) = gnupg.run(&["--with-colons", "--list-secret-keys", "ada@example.com"], "");
    let on_card = secret
        .lines()
        .filter(|l| l.starts_with("sec:") || l.starts_with("ssb:"))
        .filter(|l| l.split(':').nth(14) == Some(simulated_aid().as_str()))
        .count();
    assert_eq!(on_card, 3, "not all secret keys are on the card:\n{secret}");
    sign_and_decrypt(&gnupg, &sig, true);
    // The signature above proves PW1 is the new PIN (the pinentry knows no other); the
    // retry counters show no PIN was mistyped on the way.
    assert_eq!(field(&gnupg.card_status(), "PIN retry counter"), "3 0 3");

    // SSH: the key defguard got is the card's authentication key.
    let dir = station.dir.path().to_owned();
    let reported = ssh_fingerprint(&dir, "reported.pub", &done.ssh_key);
    assert_eq!((reported.0.as_str(), reported.2.as_str()), ("256", "(ED25519)"), "{reported:?}");
    let (exported, _) = gnupg.run(&["--export-ssh-key", &aut], "");
    assert!(exported.starts_with("ssh-ed25519 "), "{exported}");
    assert_eq!(ssh_fingerprint(&dir, "gpg.pub", &exported).1, reported.1);
    let (by_email, _) = gnupg.run(&["--export-ssh-key", "ada@example.com"], "");
    assert_eq!(ssh_fingerprint(&dir, "gpg-email.pub", &by_email).1, reported.1);
    drop(gnupg);

    let status = station.terminate().await;
    assert_eq!(status.code(), Some(0), "{}", station.log());
    server.stop().await;
    drop(simulator);
    eprintln!("whole test: {:?}", started.elapsed());
}

/// The station as systemd runs it — no controlling terminal, stdin from /dev/null, default
/// PIN options, the token from a file — provisions the software card; the user PIN is the
/// factory one (gpg signs with 123456) and the admin PIN is not: gpg's admin command with
/// 12345678 is refused by the card.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_station_with_default_pins_leaves_no_factory_admin_pin() {
    let (core, server, url) = start_core().await;
    let simulator = Simulator::start();
    let mut station = Station::start_headless(&url, &["--reader", &simulator.reader]);

    let job = core.enqueue("Ada", "Lovelace", "ada@example.com");
    let done = station.report(&core, job, JOB_TIMEOUT).await;
    let log = station.log();
    assert!(done.success, "job failed: {}\n{log}", done.error);
    assert_eq!(done.serial, SERIAL.to_string());
    assert!(
        log.contains(&format!(
            "job {job} done: card serial {SERIAL}; user PIN left at the factory value 123456 for \
             the holder to change; admin PIN set to a random value that nobody is told"
        )),
        "{log}"
    );
    assert!(!log.contains(TOKEN), "the token reached the log:\n{log}");

    // gpg with the factory PINs: the user PIN signs, the admin PIN is refused.
    let gnupg = Gnupg::new(&simulator.reader);
    let [sig, _, _] = import_and_check_card(&gnupg, &done.public_key, "Ada Lovelace");
    sign_and_decrypt(&gnupg, &sig, false);
    assert_eq!(field(&gnupg.card_status(), "PIN retry counter"), "3 0 3");
    let output = gnupg.output(
        &["--no-tty", "--command-fd", "0", "--status-fd", "2", "--card-edit"],
        "admin\nname\nMallory\nFactory\nquit\n",
    );
    let session = String::from_utf8_lossy(&output.stderr);
    assert!(!session.contains("[GNUPG:] SC_OP_SUCCESS"), "{session}");
    assert!(session.contains("[GNUPG:] SC_OP_FAILURE"), "{session}");
    // One wrong admin PIN is counted; the name was not changed.
    let status = gnupg.card_status();
    assert_eq!(field(&status, "PIN retry counter"), "3 0 2", "{status:#?}");
    assert_eq!(field(&status, "Name of cardholder"), "Ada Lovelace");
    drop(gnupg);

    let status = station.terminate().await;
    assert_eq!(status.code(), Some(0), "{}", station.log());
    server.stop().await;
}

/// A station that dies during a job (the release build aborts on a panic; here SIGKILL)
/// is offered the job again when it restarts, and runs it again — at most three starts in
/// all; the fourth start reports the job failed without running it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_the_station_keeps_dying_in_is_failed_after_three_starts() {
    let (core, server, url) = start_core().await;
    // A reader filter nothing matches: the job waits for a card (100 looks, 1 s apart)
    // until the station is killed, whatever other tests plug into vpcd meanwhile.
    let reader = "keystation test: no such reader";
    let job = core.enqueue("Ada", "Lovelace", "ada@example.com");
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().to_str().unwrap();
    let args = ["--reader", reader, "--smartcard-retries", "100", "--state-dir", state_dir];
    for start in 1..=3 {
        let mut station = Station::start_headless(&url, &args);
        let deadline = Instant::now() + WAIT;
        // The job is noted before it looks for a card: once it looks, a kill is mid-job.
        while !station.log().contains("no card detected; looking again") {
            assert!(Instant::now() < deadline, "start {start}: no job:\n{}", station.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if start > 1 {
            let again = format!(
                "job {job} was started {} time(s) before and the station stopped during it; \
                 running it again (attempt {start} of 3)",
                start - 1
            );
            assert!(station.log().contains(&again), "{}", station.log());
        }
        station.child.kill().unwrap();
        station.child.wait().unwrap();
        assert!(core.done(job).is_none(), "a killed station reported job {job}");
    }
    let mut station = Station::start_headless(&url, &args);
    let done = station.report(&core, job, WAIT).await;
    assert!(!done.success);
    assert!(done.error.starts_with("the station stopped during each of 3 attempts"), "{done:?}");
    // The note is gone once the outcome is delivered; the station goes on serving.
    let deadline = Instant::now() + WAIT;
    while state.path().join("running-job").exists() {
        assert!(Instant::now() < deadline, "the job's note stayed:\n{}", station.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(station.terminate().await.code(), Some(0), "{}", station.log());
    server.stop().await;
}

/// The token never goes over plain http:// to a host other than loopback unless the
/// operator says so. (0.0.0.0 reaches this machine, so nothing leaves it either way.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_a_host_that_is_not_loopback_is_refused() {
    let mut station = Station::start_headless("http://0.0.0.0:9", &[]);
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = station.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running:\n{}", station.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(2), "{}", station.log());
    assert!(
        station.log().contains(
            "error: refusing to send the authorization token over plain http:// to 0.0.0.0, \
             which is not this machine"
        ),
        "{}",
        station.log()
    );
    // Allowed explicitly: it starts (and warns).
    let mut station =
        Station::start_headless("http://0.0.0.0:9", &["--grpc-allow-plaintext", "true"]);
    let deadline = Instant::now() + WAIT;
    while !station.log().contains("sending the authorization token over plain http:// to 0.0.0.0") {
        assert!(station.child.try_wait().unwrap().is_none(), "exited:\n{}", station.log());
        assert!(Instant::now() < deadline, "no warning:\n{}", station.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(station.terminate().await.code(), Some(0), "{}", station.log());
}

/// `keystation provision --json` on the card in `reader`; returns the JSON.
fn provision_json(reader: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_keystation"))
        .args(["provision", "--card", "pcsc", "--reader", reader, "--json", "--pin-policy", "keep"])
        .args(["--name", "Ada Lovelace", "--email", "ada@example.com"])
        .stdin(Stdio::null())
        .output()
        .expect("running keystation provision");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "keystation provision on {reader:?} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The checks every `--json` result must pass; returns `(algorithms, fingerprints)`.
fn check_json(json: &str) -> (Vec<String>, [String; 3]) {
    let trimmed = json.trim();
    assert!(trimmed.starts_with('{') && trimmed.ends_with('}'), "{json}");
    assert_eq!(json_raw(json, "pins"), "null", "{json}");
    let apdus: u32 = json_raw(json, "apdus").trim().parse().unwrap();
    assert!((1..=40).contains(&apdus), "{apdus} APDUs: {json}");
    let fingerprints = ["signature", "encryption", "authentication"].map(|k| json_string(json, k));
    for fingerprint in &fingerprints {
        assert!(is_fingerprint(fingerprint), "{fingerprint:?} in {json}");
    }
    let algorithms = json_strings(json, "algorithms");
    assert_eq!(algorithms.len(), 3, "{json}");
    let ssh_key = json_string(json, "ssh_key");
    assert!(ssh_key.starts_with(&format!("{} ", ssh_type_for(&algorithms[2]))), "{json}");
    let certificate = json_string(json, "certificate");
    assert!(certificate.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----\n"), "{json}");
    (algorithms, fingerprints)
}

/// opcard-vpcd (`KEYSTATION_TEST_OPCARD_VPCD`) in vpcd's second reader, port
/// `KEYSTATION_TEST_VPCD_PORT + 1`; dropping it stops it and waits for the card to go.
struct Opcard {
    child: Option<Child>,
    reader: String,
    context: PcscContext,
}

impl Opcard {
    fn start() -> Self {
        let binary = std::env::var_os("KEYSTATION_TEST_OPCARD_VPCD")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                panic!(
                    "KEYSTATION_TEST_OPCARD_VPCD is not set; build the opcard adapter with \
                     eval \"$(scripts/peer-cards --env)\""
                )
            });
        assert!(binary.is_file(), "KEYSTATION_TEST_OPCARD_VPCD={} is not a file", binary.display());
        let port: u16 = std::env::var("KEYSTATION_TEST_VPCD_PORT").unwrap().parse().unwrap();
        let reader = std::env::var("KEYSTATION_TEST_VPCD_READER2")
            .unwrap_or_else(|_| simulator::DEFAULT_SECOND_READER.into());
        let context = PcscContext::establish().unwrap();
        let mut opcard = Self { child: None, reader, context };
        opcard.wait_for_card(false);
        let child = Command::new(&binary)
            .args(["--port", &(port + 1).to_string(), "--wait", "10"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        opcard.child = Some(child);
        opcard.wait_for_card(true);
        opcard
    }

    fn wait_for_card(&mut self, present: bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                panic!("opcard-vpcd exited early ({status})");
            }
            let readers = self.context.readers().expect("listing readers");
            match readers.iter().find(|r| r.name == self.reader) {
                Some(info) if info.card_present == present => return,
                _ if Instant::now() > deadline => panic!(
                    "reader {:?} did not report the card {} in time; readers: {readers:?}",
                    self.reader,
                    if present { "present" } else { "absent" }
                ),
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

impl Drop for Opcard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if !std::thread::panicking() {
            self.wait_for_card(false);
        }
    }
}

#[test]
fn one_shot_provision_json_on_the_software_card_and_on_opcard() {
    let started = Instant::now();
    // The simulator's lock also keeps the other tests off vpcd while opcard runs.
    let simulator = Simulator::start();
    let json = provision_json(&simulator.reader);
    let (algorithms, fingerprints) = check_json(&json);
    assert_eq!(json_string(&json, "serial"), SERIAL.to_string(), "{json}");
    assert_eq!(json_string(&json, "manufacturer"), "Yubico", "{json}");
    assert_eq!(algorithms, ["ed25519", "cv25519", "ed25519"], "{json}");
    // gpg with the factory PINs (--pin-policy keep) agrees about the card.
    let gnupg = Gnupg::new(&simulator.reader);
    let imported =
        import_and_check_card(&gnupg, &json_string(&json, "certificate"), "Ada Lovelace");
    assert_eq!(imported, fingerprints);
    drop(gnupg);
    eprintln!("software card done after {:?}", started.elapsed());

    let opcard = Opcard::start();
    let json = provision_json(&opcard.reader);
    let (algorithms, fingerprints) = check_json(&json);
    eprintln!("opcard: {json}");
    let gnupg = Gnupg::new(&opcard.reader);
    let status = gnupg.card_status();
    // gpg 2.2 does not know Nitrokey's manufacturer ID (000F); keystation does.
    assert_eq!(json_string(&json, "manufacturer"), "Nitrokey", "{json}");
    assert!(field(&status, "Application ID").starts_with("D276000124010304000F"), "{status:#?}");
    assert_eq!(json_string(&json, "serial"), field(&status, "Serial number"), "{json}");
    // gpg names the algorithms as the JSON does (rsa2048, ed25519, cv25519, nistp256…).
    assert_eq!(field(&status, "Key attributes"), algorithms.join(" "), "{status:#?}");
    let imported =
        import_and_check_card(&gnupg, &json_string(&json, "certificate"), "Ada Lovelace");
    assert_eq!(imported, fingerprints);
    sign_and_decrypt(&gnupg, &fingerprints[0], true);
    drop(gnupg);
    drop(opcard);
    drop(simulator);
    eprintln!("whole test: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn card_removed_mid_job_fails_the_job_and_the_next_succeeds() {
    let started = Instant::now();
    let (core, server, url) = start_core().await;
    let simulator = Simulator::start_with(&["--remove-after", "20"]);
    let mut station = Station::start(
        &url,
        &simulator.reader,
        &["--smartcard-retries", "5", "--smartcard-retry-interval", "1"],
    );
    let first = core.enqueue("Ada", "Lovelace", "ada@example.com");
    let done = station.report(&core, first, JOB_TIMEOUT).await;
    assert!(!done.success, "the job survived the card's removal: {done:?}");
    assert!(done.public_key.is_empty() && done.ssh_key.is_empty(), "{done:?}");
    let first_error = done.error;
    eprintln!("job 1 failed with {first_error:?}");
    // The next job comes at once, while the card is out — pcscd may even still list it
    // for a moment (it polls vpcd every 400 ms), so that the first SELECT fails: the
    // station takes that as "no card yet", looks again (5 looks, 1 s apart), finds the
    // card when it is back, power-cycled, and provisions it from scratch.
    let second = core.enqueue("Ada", "Lovelace", "ada@example.com");
    let done = station.report(&core, second, JOB_TIMEOUT).await;
    assert!(done.success, "job 2 failed: {}\n{}", done.error, station.log());
    assert_eq!(done.serial, SERIAL.to_string());
    assert!(done.ssh_key.starts_with("ssh-ed25519 "), "{}", done.ssh_key);
    let gnupg = Gnupg::with_pins(&simulator.reader, NEW_PW1, NEW_PW3);
    import_and_check_card(&gnupg, &done.public_key, "Ada Lovelace");
    drop(gnupg);
    // Job 1's report must tell the operator what happened.
    assert!(
        first_error.contains("the card was removed"),
        "job 1's error does not say the card was removed: {first_error:?}\n{}",
        station.log()
    );
    let status = station.terminate().await;
    assert_eq!(status.code(), Some(0), "{}", station.log());
    server.stop().await;
    drop(simulator);
    eprintln!("whole test: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_job_fields_are_job_errors_through_the_binary() {
    let started = Instant::now();
    let (core, server, url) = start_core().await;
    let simulator = Simulator::start();
    // Mark the card: a job that touched it would reset the OpenPGP application (and the
    // name with it).
    let gnupg = Gnupg::new(&simulator.reader);
    let session = gnupg.card_edit("admin\nname\nMark\nBefore\nquit\n");
    assert!(session.contains("[GNUPG:] SC_OP_SUCCESS"), "{session}");
    drop(gnupg);

    let mut station = Station::start(&url, &simulator.reader, &[]);
    let long = "x".repeat(300);
    let bad = [
        (("", "Lovelace", "ada@example.com"), "invalid job: the first name is empty"),
        (
            (long.as_str(), "Lovelace", "ada@example.com"),
            "invalid job: the first name is 300 bytes long (at most 256)",
        ),
        (("Ada", "Love<lace", "ada@example.com"), "invalid job: the last name contains '<' or '>'"),
        (
            ("Ada", "Lovelace", "ada.example.com"),
            "invalid job: the e-mail address is not valid (it needs exactly one '@')",
        ),
        (
            ("Ada", "Lovelace", "ada@"),
            "invalid job: the e-mail address is not valid (nothing after the '@')",
        ),
    ];
    for ((first, last, email), expected) in bad {
        let job = core.enqueue(first, last, email);
        let done = station.report(&core, job, WAIT).await;
        assert!(!done.success, "{first:?} {last:?} {email:?} was accepted");
        assert!(
            done.error == expected,
            "{first:?} {last:?} {email:?}: error {:?}, expected {expected:?}",
            done.error
        );
        assert!(done.public_key.is_empty() && done.ssh_key.is_empty(), "{done:?}");
    }
    let log = station.log();
    let gnupg = Gnupg::new(&simulator.reader);
    let status = gnupg.card_status();
    assert_eq!(field(&status, "Name of cardholder"), "Before Mark", "the card was touched");
    assert_eq!(field(&status, "Signature key"), "[none]");
    drop(gnupg);

    let job = core.enqueue("Ada", "Lovelace", "ada@example.com");
    let done = station.report(&core, job, JOB_TIMEOUT).await;
    assert!(done.success, "the good job failed: {}\n{log}", done.error);
    let gnupg = Gnupg::with_pins(&simulator.reader, NEW_PW1, NEW_PW3);
    assert_eq!(field(&gnupg.card_status(), "Name of cardholder"), "Ada Lovelace");
    drop(gnupg);
    let status = station.terminate().await;
    assert_eq!(status.code(), Some(0), "{}", station.log());
    server.stop().await;
    drop(simulator);
    eprintln!("whole test: {:?}", started.elapsed());
}

/// Touch policies through pcscd: with `--touch-policy on` the card's own certificate
/// signatures need a touch. A simulated user who touches (`simulate --touch auto`) lets
/// the job finish; one who never touches (`--touch never`) fails it with the card's
/// answer, before any PIN changes.
#[test]
fn touch_policy_on_needs_a_touch_for_the_cards_own_signatures() {
    let provision = |reader: &str| {
        Command::new(env!("CARGO_BIN_EXE_keystation"))
            .args(["provision", "--card", "pcsc", "--reader", reader, "--json"])
            .args(["--pin-policy", "random", "--touch-policy", "on"])
            .args(["--name", "Ada Lovelace", "--email", "ada@example.com"])
            .stdin(Stdio::null())
            .output()
            .expect("running keystation provision")
    };
    {
        let simulator = Simulator::start();
        let output = provision(&simulator.reader);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        assert_ne!(json_raw(&stdout, "pins"), "null", "{stdout}");
    }
    let simulator = Simulator::start_with(&["--touch", "never"]);
    let output = provision(&simulator.reader);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(output.stdout.is_empty(), "no result without a certificate");
    assert!(stderr.contains("error: make the OpenPGP certificate: "), "{stderr}");
    // The PINs were not changed: the factory admin PIN still works.
    let gnupg = Gnupg::new(&simulator.reader);
    let status = gnupg.card_status();
    assert!(field(&status, "PIN retry counter").starts_with("3 0 3"), "{status:?}");
    let session = gnupg.card_edit("admin\nname\nStill\nFactory\nquit\n");
    assert!(session.contains("[GNUPG:] SC_OP_SUCCESS"), "{session}");
}
