//! The station as operators deploy it, with the artifacts they install:
//!
//! - the fully static binary (`scripts/static-build`; its path in
//!   `KEYSTATION_TEST_STATIC_BIN`), run in an empty root that holds only the binary, the
//!   pcscd socket, the CA file and `/etc/hosts` — no libpcsclite, no Rust, no C toolchain,
//!   no libc — against the test defguard core over TLS by name (`https://localhost:…`);
//! - the Debian package (`scripts/package`, installed with dpkg by scripts/test; the unit
//!   file's path in `KEYSTATION_TEST_INSTALLED_UNIT`): the station started with its unit's
//!   command line, environment and user, its default config and no terminal.
//!
//! Both provision the software card (`keystation simulate`, in the private pcscd's vpcd
//! reader) for a job and report it. scripts/test builds and installs the artifacts and sets
//! the variables; a missing one fails the test.
//!
//! ```text
//! scripts/with-pcscd cargo test --features test-vpcd,test-deploy --test deployed_station
//! ```
//!
//! Needs root (a mount namespace, chroot, a system user), like CI has.
#![cfg(all(feature = "test-deploy", feature = "openpgp", feature = "grpc"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

#[path = "support/defguard_core.rs"]
mod defguard_core;
#[path = "support/simulator.rs"]
mod simulator;
#[path = "support/station_process.rs"]
mod station_process;
#[path = "support/test_pki.rs"]
mod test_pki;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use defguard_core::{Core, Done, TOKEN, serve};
use simulator::{SERIAL, Simulator, tool};
use station_process::StationProcess;

/// Upper bound for one provisioning job (keys generated on the software card).
const JOB_TIMEOUT: Duration = Duration::from_secs(120);

/// What the default PIN policy of the station does, as its job log line says it.
const PINS_LINE: &str = "user PIN left at the factory value 123456 for the holder to change; \
                         admin PIN set to a random value that nobody is told";

fn required_path(variable: &str, how: &str) -> PathBuf {
    let path = std::env::var_os(variable).map(PathBuf::from).unwrap_or_else(|| {
        panic!("{variable} is not set: {how} (scripts/test does this)");
    });
    assert!(path.is_file(), "{variable}={} is not a file", path.display());
    path
}

/// The directory and file name of the private pcscd's socket.
fn pcscd_socket() -> (PathBuf, String) {
    let socket = PathBuf::from(
        std::env::var_os("PCSCLITE_CSOCK_NAME")
            .expect("PCSCLITE_CSOCK_NAME is not set: run through scripts/with-pcscd"),
    );
    let dir = socket.parent().unwrap().to_owned();
    let name = socket.file_name().unwrap().to_string_lossy().into_owned();
    (dir, name)
}

/// Checks that the successful report is the software card's and the log says what
/// happened to the PINs.
fn assert_provisioned(done: &Done, log: &str) {
    assert!(done.success, "job failed: {}\n{log}", done.error);
    assert_eq!(done.serial, SERIAL.to_string());
    assert!(done.ssh_key.starts_with("ssh-ed25519 "), "{}", done.ssh_key);
    assert!(done.public_key.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
    assert!(log.contains(PINS_LINE), "{log}");
    assert!(!log.contains(TOKEN), "the token reached the log:\n{log}");
}

/// Whether the ELF file at `path` asks for no program interpreter and no shared library:
/// `readelf` (binutils) reads the program headers and the dynamic section.
fn assert_fully_static(path: &Path) {
    let readelf = tool("readelf");
    let headers = Command::new(&readelf).args(["-lW"]).arg(path).output().unwrap();
    let headers = String::from_utf8_lossy(&headers.stdout);
    assert!(headers.contains("LOAD"), "not an ELF executable:\n{headers}");
    assert!(!headers.contains("INTERP"), "it asks for a program interpreter:\n{headers}");
    let dynamic = Command::new(&readelf).args(["-dW"]).arg(path).output().unwrap();
    let dynamic = String::from_utf8_lossy(&dynamic.stdout);
    assert!(!dynamic.contains("(NEEDED)"), "it needs shared libraries:\n{dynamic}");
    let ldd = Command::new(tool("ldd")).arg(path).output().unwrap();
    let said =
        format!("{}{}", String::from_utf8_lossy(&ldd.stdout), String::from_utf8_lossy(&ldd.stderr));
    // A static executable says the first; a static PIE the second.
    assert!(
        said.contains("not a dynamic executable") || said.contains("statically linked"),
        "ldd: {said}"
    );
    eprintln!("ldd {}: {}", path.display(), said.trim());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_binary_in_an_empty_root_provisions_over_tls_by_name() {
    let binary = required_path(
        "KEYSTATION_TEST_STATIC_BIN",
        "build the static binary with scripts/static-build and name it",
    );
    assert_fully_static(&binary);

    // The root: the binary, the CA file, /etc/hosts, and a mount point for pcscd's socket.
    let ca = test_pki::TestCa::new("keystation deploy test CA").unwrap();
    let server_identity = ca.issue_server().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("run/pcscd")).unwrap();
    std::fs::copy(&binary, root.join("keystation")).unwrap();
    std::fs::write(root.join("ca.pem"), &ca.cert_pem).unwrap();
    std::fs::write(root.join("etc/hosts"), "127.0.0.1 localhost\n::1 localhost\n").unwrap();
    let mut inside: Vec<String> = walk(&root);
    inside.sort();
    assert_eq!(inside, ["ca.pem", "etc", "etc/hosts", "keystation", "run", "run/pcscd"]);

    let core = Core::default();
    let identity =
        tonic::transport::Identity::from_pem(&server_identity.cert_pem, &server_identity.key_pem);
    let server = serve(&core, "127.0.0.1:0".parse().unwrap(), Some(identity)).await.unwrap();
    let url = format!("https://localhost:{}", server.addr.port());
    let simulator = Simulator::start();

    let (socket_dir, socket_name) = pcscd_socket();
    let script = "mount --bind \"$1\" \"$2/run/pcscd\" && root=$2 && shift 2 && \
                  exec chroot \"$root\" \"$@\"";
    let mut command = Command::new(tool("unshare"));
    command
        .env_clear()
        .env("PCSCLITE_CSOCK_NAME", format!("/run/pcscd/{socket_name}"))
        .env("DEFGUARD_TOKEN", TOKEN)
        .args(["--mount", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(&socket_dir)
        .arg(&root)
        .args(["/keystation", "station", "--grpc", &url, "--ca-file", "/ca.pem"])
        .args(["--id", "static-station", "--poll-interval", "100ms"]);
    let mut station = StationProcess::spawn(&mut command, dir.path().join("station.log"));

    let job = core.enqueue("Ada", "Lovelace", "ada@example.com");
    let done = station.report(&core, job, JOB_TIMEOUT).await;
    assert_eq!(done.worker, "static-station");
    assert_provisioned(&done, &station.log());
    assert_eq!(station.terminate().await.code(), Some(0), "{}", station.log());
    server.stop().await;
    drop(simulator);
}

/// The files and directories under `root`, relative to it.
fn walk(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            found.push(path.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            if path.is_dir() {
                pending.push(path);
            }
        }
    }
    found
}

/// The `[Service]` settings of a unit file that the test reproduces.
#[derive(Debug, Default)]
struct Unit {
    exec_start: Vec<String>,
    environment: Vec<(String, String)>,
    user: Option<String>,
    credentials: Vec<(String, PathBuf)>,
    state_directory: Option<String>,
}

/// Reads the lines of `unit` that matter here. ExecStart's words are split on spaces (the
/// station's unit quotes nothing).
fn read_unit(unit: &Path) -> Unit {
    let text = std::fs::read_to_string(unit).unwrap();
    let mut parsed = Unit::default();
    for line in text.lines().map(str::trim) {
        let Some((key, value)) = line.split_once('=') else { continue };
        match key {
            "ExecStart" => {
                parsed.exec_start = value.split_whitespace().map(str::to_owned).collect();
            }
            "Environment" => {
                for assignment in value.split_whitespace() {
                    let (name, value) = assignment.split_once('=').unwrap();
                    parsed.environment.push((name.to_owned(), value.to_owned()));
                }
            }
            "User" => parsed.user = Some(value.to_owned()),
            "LoadCredential" => {
                let (name, path) = value.split_once(':').unwrap();
                parsed.credentials.push((name.to_owned(), PathBuf::from(path)));
            }
            "StateDirectory" => parsed.state_directory = Some(value.to_owned()),
            _ => {}
        }
    }
    parsed
}

/// The installed package, as systemd would start it: the unit's ExecStart with its
/// Environment=, as its User=, with its credentials in a directory of their own (`%d`) and
/// a state directory for that user; in a session with no controlling terminal and stdin
/// from /dev/null; the configuration the package installed, unchanged — so defguard is at
/// its default address, 127.0.0.1:50055, where the test core listens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installed_package_runs_the_station_from_its_unit() {
    let unit_path = required_path(
        "KEYSTATION_TEST_INSTALLED_UNIT",
        "install the Debian package (scripts/package, dpkg -i) and name its station unit",
    );
    let unit = read_unit(&unit_path);
    assert!(!unit.exec_start.is_empty(), "no ExecStart in {}", unit_path.display());
    let user = unit.user.clone().expect("the unit names its user");
    let program = PathBuf::from(&unit.exec_start[0]);
    assert!(program.is_absolute() && program.is_file(), "{program:?} is not installed");

    // What systemd sets up: the credentials (the operator's token file), the state directory.
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials");
    std::fs::create_dir(&credentials).unwrap();
    for (name, source) in &unit.credentials {
        assert!(source.starts_with("/etc/keystation"), "{name} from {source:?}");
        assert_eq!(name, "token", "the station's only credential is its token");
        std::fs::write(credentials.join(name), format!("{TOKEN}\n")).unwrap();
    }
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    assert!(unit.state_directory.is_some(), "no StateDirectory= in the unit");
    let chown = |path: &Path| {
        let owner = format!("{user}:{user}");
        let status = Command::new("chown").args(["-R", &owner]).arg(path).status().unwrap();
        assert!(status.success(), "chown {path:?} to {user}");
    };
    chown(&credentials);
    chown(&state);
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap();
    let expand = |text: &str| text.replace("%d", credentials.to_str().unwrap());

    let core = Core::default();
    let server = serve(&core, "127.0.0.1:50055".parse().unwrap(), None)
        .await
        .expect("the test core needs 127.0.0.1:50055, the station's default defguard address");
    let simulator = Simulator::start();

    let socket = std::env::var("PCSCLITE_CSOCK_NAME").unwrap();
    let mut command = Command::new(tool("setpriv"));
    command
        .env_clear()
        .env("PCSCLITE_CSOCK_NAME", socket)
        .env("CREDENTIALS_DIRECTORY", &credentials)
        .env("STATE_DIRECTORY", &state)
        .envs(unit.environment.iter().map(|(name, value)| (name, expand(value))))
        .args([&format!("--reuid={user}"), &format!("--regid={user}"), "--clear-groups"])
        .arg(tool("setsid"))
        .args(unit.exec_start.iter().map(|word| expand(word)))
        .current_dir("/");
    let mut station = StationProcess::spawn(&mut command, dir.path().join("station.log"));

    let job = core.enqueue("Ada", "Lovelace", "ada@example.com");
    let done = station.report(&core, job, JOB_TIMEOUT).await;
    assert_provisioned(&done, &station.log());
    assert_eq!(station.terminate().await.code(), Some(0), "{}", station.log());
    // The job journal lived in the state directory and is gone with the job.
    assert!(!state.join("running-job").exists());
    server.stop().await;
    drop(simulator);
}
