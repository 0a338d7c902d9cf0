//! Throwaway certificate authorities for the step-ca compatibility tests
//! (tests/authority_stepca.rs): step-ca 0.19 (the reference peer `scripts/stepca-peer`
//! builds) and `keystation authority serve`, each initialised in a directory the test owns
//! with the same CA name, DNS names, provisioner ("admin", a JWK provisioner whose key is
//! stored as `encryptedKey` under [`PASSWORD`]) and SSH CA keys, listening on a free
//! loopback port, and stopped by PID on drop (SIGTERM, then SIGKILL after 10 s).
//!
//! Both leave a state directory laid out as step's `$STEPPATH`: `config/defaults.json`
//! (`ca-url`, `root`, `fingerprint`), `certs/root_ca.crt`, `certs/intermediate_ca.crt`,
//! `certs/ssh_{user,host}_ca_key.pub`; the client scripts in tests/authority/ need nothing
//! else.
#![allow(dead_code, unreachable_pub)]

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The provisioner's (and step-ca's CA keys') password.
pub const PASSWORD: &str = "test-password";
/// The JWK provisioner's name.
pub const PROVISIONER: &str = "admin";
/// The CA's name (root and intermediate subjects).
pub const CA_NAME: &str = "Test CA";

/// How long a CA may take to answer `/health` after it was started.
const START_WAIT: Duration = Duration::from_secs(60);

/// The reference peer's directory: `KEYSTATION_TEST_STEPCA_DIR`, holding `step-ca` and
/// `stepca-tool`. Panics, saying how to build it, when it is unset or incomplete.
pub fn stepca_dir() -> PathBuf {
    let Some(dir) = std::env::var_os("KEYSTATION_TEST_STEPCA_DIR") else {
        panic!(
            "KEYSTATION_TEST_STEPCA_DIR is not set: it names the directory with step-ca and \
             stepca-tool, which scripts/stepca-peer builds (eval \"$(scripts/stepca-peer --env)\"; \
             scripts/test does this)"
        );
    };
    let dir = PathBuf::from(dir);
    for binary in ["step-ca", "stepca-tool"] {
        let path = dir.join(binary);
        assert!(
            path.is_file(),
            "KEYSTATION_TEST_STEPCA_DIR={}: {binary} is missing (run scripts/stepca-peer)",
            dir.display()
        );
    }
    dir
}

/// A free TCP port on 127.0.0.1 (bound and released; another process could take it in
/// between, which on a test machine does not happen in practice).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

/// Which server runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// step-ca 0.19, the reference.
    StepCa,
    /// `keystation authority serve`.
    Keystation,
}

/// A running CA; stopped on drop.
#[derive(Debug)]
pub struct Authority {
    kind: Kind,
    child: Option<Child>,
    state: PathBuf,
    password_file: PathBuf,
    log: PathBuf,
    port: u16,
}

impl Authority {
    /// step-ca: `stepca-tool init --ssh` (as `step ca init --ssh`) into `dir/step`, then
    /// `step-ca dir/step/config/ca.json --password-file …`.
    pub fn step_ca(peer: &Path, dir: &Path) -> Authority {
        let state = dir.join("step");
        let password_file = write_password(dir);
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let init_log = dir.join("init.log");
        run_logged(
            Command::new(peer.join("stepca-tool"))
                .env("STEPPATH", &state)
                .current_dir(dir)
                .args(["init", "--name", CA_NAME, "--dns", "127.0.0.1", "--dns", "localhost"])
                .args(["--address", &address, "--provisioner", PROVISIONER, "--ssh"])
                .arg("--password-file")
                .arg(&password_file),
            &init_log,
            "stepca-tool init",
        );
        let log = dir.join("step-ca.log");
        let mut command = Command::new(peer.join("step-ca"));
        // Flags after ca.json: the peer's main passes the raw arguments to step-ca's start
        // command.
        command
            .env("STEPPATH", &state)
            .current_dir(dir)
            .arg(state.join("config/ca.json"))
            .arg("--password-file")
            .arg(&password_file);
        Authority::start(Kind::StepCa, command, state, password_file, log, port)
    }

    /// keystation: `keystation authority init --dir dir/authority … --ssh`, then
    /// `keystation authority serve --dir … --password-file … --address … --grpc-address …`,
    /// both in `dir` with an empty environment (but `PATH`), so that no configuration from
    /// the caller's environment or working directory leaks in.
    pub fn keystation(binary: &Path, dir: &Path) -> Authority {
        let state = dir.join("authority");
        let password_file = write_password(dir);
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let grpc_address = format!("127.0.0.1:{}", free_port());
        let init_log = dir.join("init.log");
        run_logged(
            keystation_command(binary, dir)
                .args(["authority", "init", "--dir"])
                .arg(&state)
                .args(["--name", CA_NAME, "--dns", "127.0.0.1", "--dns", "localhost"])
                .args(["--address", &address, "--provisioner", PROVISIONER, "--ssh"])
                .arg("--password-file")
                .arg(&password_file),
            &init_log,
            "keystation authority init",
        );
        let log = dir.join("keystation-authority.log");
        let mut command = keystation_command(binary, dir);
        command
            .args(["authority", "serve", "--dir"])
            .arg(&state)
            .arg("--password-file")
            .arg(&password_file)
            .args(["--address", &address, "--grpc-address", &grpc_address]);
        Authority::start(Kind::Keystation, command, state, password_file, log, port)
    }

    fn start(
        kind: Kind,
        mut command: Command,
        state: PathBuf,
        password_file: PathBuf,
        log: PathBuf,
        port: u16,
    ) -> Authority {
        let out = std::fs::File::create(&log).expect("create the server log");
        let err = out.try_clone().expect("clone the log file handle");
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("{kind:?}: cannot start {command:?}: {e}"));
        let mut authority = Authority { kind, child: Some(child), state, password_file, log, port };
        authority.wait_healthy();
        authority
    }

    /// Polls `GET /health` with curl (trusting the CA's root) until it answers
    /// `{"status":"ok"}`; panics with the server's log when it exits or times out.
    fn wait_healthy(&mut self) {
        let root = self.state.join("certs/root_ca.crt");
        let url = format!("{}/health", self.url());
        let deadline = Instant::now() + START_WAIT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "{:?} exited during startup ({status}); its log:\n{}",
                    self.kind,
                    self.log()
                );
            }
            let answer = Command::new("curl")
                .args(["-sf", "--max-time", "2", "--cacert"])
                .arg(&root)
                .arg(&url)
                .stderr(Stdio::null())
                .output()
                .expect("curl is required (Debian: curl)");
            let body = String::from_utf8_lossy(&answer.stdout).replace(char::is_whitespace, "");
            if answer.status.success() && body == r#"{"status":"ok"}"# {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{:?}: GET {url} did not answer {{\"status\":\"ok\"}} within {START_WAIT:?} \
                 (last answer: {body:?}); its log:\n{}",
                self.kind,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Which server this is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The state directory (step's `$STEPPATH`).
    pub fn state(&self) -> &Path {
        &self.state
    }

    /// The provisioner password's file.
    pub fn password_file(&self) -> &Path {
        &self.password_file
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the server: SIGTERM to its PID, then SIGKILL after 10 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stderr(Stdio::null())
            .status();
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

    /// Runs one of the client scripts in tests/authority/ against this CA with `tool`
    /// (stepca-tool) in a fresh `work` directory; `strict` sets `STRICT=1` (keystation's
    /// stricter checks). Returns the script's output; panics with it, and with the server's
    /// log, when the script fails.
    pub fn run_script(&self, script: &str, tool: &Path, work: &Path, strict: bool) -> String {
        std::fs::create_dir_all(work).expect("create the script's work directory");
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/authority").join(script);
        let output = Command::new("bash")
            .arg(&path)
            .env("STEPPATH", &self.state)
            .env("STEPCA_TOOL", tool)
            .env("STEPCA_PASSWORD_FILE", &self.password_file)
            .env("STEPCA_WORK", work)
            .env("STEPCA_PROVISIONER", PROVISIONER)
            .env("STRICT", if strict { "1" } else { "0" })
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run bash {}: {e}", path.display()));
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{script} against {:?} failed ({}):\n{stdout}{stderr}\n---- {:?} log ----\n{}",
            self.kind,
            output.status,
            self.kind,
            tail(&self.log(), 60)
        );
        format!("{stdout}{stderr}")
    }
}

impl Drop for Authority {
    fn drop(&mut self) {
        self.stop();
    }
}

fn write_password(dir: &Path) -> PathBuf {
    let path = dir.join("password");
    std::fs::write(&path, format!("{PASSWORD}\n")).expect("write the password file");
    path
}

fn keystation_command(binary: &Path, dir: &Path) -> Command {
    let mut command = Command::new(binary);
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()));
    command
}

/// Runs `command` to completion with its output in `log`; panics with the log on failure.
fn run_logged(command: &mut Command, log: &Path, what: &str) {
    let out = std::fs::File::create(log).expect("create a log file");
    let err = out.try_clone().expect("clone the log file handle");
    let status = command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        status.success(),
        "{what} failed ({status}):\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
