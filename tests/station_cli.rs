//! `keystation station`, the real binary, against the test defguard core on loopback: it
//! registers, takes a job (which fails: there is no pcscd to find a card through), reports the failure,
//! logs each step without the token, and exits 0 on SIGTERM or SIGINT; a wrong or missing
//! token is a configuration error (status 2).
#![cfg(all(feature = "grpc", unix))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/defguard_core.rs"]
mod defguard_core;

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use defguard_core::{Core, TOKEN, serve};

const WAIT: Duration = Duration::from_secs(15);

/// How the job fails: without pcscd (with the OpenPGP backend), or without a backend.
#[cfg(feature = "openpgp")]
const JOB_ERROR: &str = "the smart-card service (pcscd) is not available";
#[cfg(not(feature = "openpgp"))]
const JOB_ERROR: &str = "this keystation station has no provisioning backend configured";

struct Run {
    child: Child,
    stderr: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// Starts `keystation station` with `args` and `env` in an empty directory and a cleared
/// environment; stderr goes to a file.
fn station(args: &[&str], env: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let stderr = dir.path().join("stderr.log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_keystation"));
    command
        .current_dir(dir.path())
        .env_clear()
        .arg("station")
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap());
    Run { child: command.spawn().unwrap(), stderr, _dir: dir }
}

impl Run {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit (fails the test after [`WAIT`]).
    async fn exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("keystation did not exit; log:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn eventually(what: &str, run: &Run, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}; log:\n{}", run.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takes_a_job_logs_each_step_and_stops_on_sigterm() {
    let core = Core::default();
    let server = serve(&core, "127.0.0.1:0".parse().unwrap(), None).await.unwrap();
    let url = format!("http://{}", server.addr);
    let mut run = station(
        &[
            "--grpc",
            &url,
            "--grpc-package",
            "worker",
            "--poll-interval",
            "50ms",
            // Everything keystation logs, yet never the token.
            "--log-level",
            "trace",
            // No PIN hand-over needed, and no card search (the job fails at once).
            "--pin-policy",
            "keep",
            "--smartcard-retries",
            "0",
        ],
        &[
            ("DEFGUARD_TOKEN", TOKEN),
            ("WORKER_ID", "bin-station"),
            // No pcscd there: the job fails in a way that does not depend on the machine.
            ("PCSCLITE_CSOCK_NAME", "/nonexistent/pcscd.comm"),
        ],
    );
    let job = core.enqueue("Ada", "Lovelace", "ada@example.com");
    eventually("the report", &run, || core.done(job).is_some()).await;
    let done = core.done(job).unwrap();
    assert_eq!(done.worker, "bin-station");
    assert!(!done.success);
    // The cause (the PC/SC call that failed) follows the message.
    assert!(done.error.starts_with(JOB_ERROR), "{}", done.error);
    assert!(core.state().paths.iter().all(|p| p.starts_with("/worker.WorkerService/")));
    eventually("the report's log line", &run, || run.log().contains("reported")).await;

    run.signal("TERM");
    let status = run.exit().await;
    let log = run.log();
    assert_eq!(status.code(), Some(0), "{log}");
    for step in [
        "registered with defguard as bin-station",
        &format!("job {job} received"),
        &format!("job {job} failed: {JOB_ERROR}"),
        &format!("job {job} reported to defguard (failure)"),
        "SIGTERM received: stopping",
        "station stopped",
    ] {
        assert!(log.contains(step), "missing {step:?} in\n{log}");
    }
    assert!(!log.contains(TOKEN), "the token leaked:\n{log}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_while_idle_exits_zero_even_with_defguard_down() {
    // Nobody listens on this port: the station is in its retry loop when interrupted.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut run = station(
        &["--grpc", &format!("http://{addr}"), "--log-level", "debug"],
        &[("KEYSTATION_TOKEN", TOKEN), ("KEYSTATION_POLL_INTERVAL", "100ms")],
    );
    eventually("the outage warning", &run, || run.log().contains("no usable answer")).await;
    eventually("a retry", &run, || run.log().contains("still unreachable")).await;
    run.signal("INT");
    let status = run.exit().await;
    let log = run.log();
    assert_eq!(status.code(), Some(0), "{log}");
    assert_eq!(log.matches(" WARN ").count(), 1, "one warning per outage:\n{log}");
    assert!(log.contains("SIGINT received"), "{log}");
    assert!(!log.contains(TOKEN), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_token_exits_2_with_a_clear_message() {
    let core = Core::default();
    let server = serve(&core, "127.0.0.1:0".parse().unwrap(), None).await.unwrap();
    let url = format!("http://{}", server.addr);

    let mut run = station(&["--grpc", &url], &[("DEFGUARD_TOKEN", "wrong-token-xyzzy")]);
    let status = run.exit().await;
    let log = run.log();
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(
        log.contains(
            "error: defguard rejected the authorization token (Unauthenticated: missing or \
             invalid worker token): check DEFGUARD_TOKEN"
        ),
        "{log}"
    );
    assert!(!log.contains("xyzzy"), "{log}");

    let mut run = station(&["--grpc", &url], &[]);
    let status = run.exit().await;
    let log = run.log();
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(log.contains("error: no authorization token: set DEFGUARD_TOKEN"), "{log}");
    server.stop().await;
}

#[test]
fn station_help_names_its_options() {
    let output = Command::new(env!("CARGO_BIN_EXE_keystation"))
        .args(["station", "--help"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in ["--grpc", "--ca-file", "--token", "--id", "--grpc-package", "--poll-interval"] {
        assert!(help.contains(flag), "{flag} missing from\n{help}");
    }
}
