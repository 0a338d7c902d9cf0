//! A `keystation station` process that a test started: its stderr goes to a file, the test
//! waits for its report to the test defguard core ([`super::defguard_core`]) and stops it
//! with SIGTERM; dropping it kills it.
//!
//! Tests include it after `defguard_core`, with
//! `#[path = "support/station_process.rs"] mod station_process;`.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::defguard_core::{Core, Done};

/// How long a station may take to exit after SIGTERM.
const EXIT_WAIT: Duration = Duration::from_secs(30);

/// A running station.
pub struct StationProcess {
    pub child: Child,
    log: PathBuf,
}

impl StationProcess {
    /// Spawns `command` with stdin from /dev/null, stdout discarded and stderr into `log`.
    pub fn spawn(command: &mut Command, log: PathBuf) -> Self {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting keystation station");
        Self { child, log }
    }

    /// What the station logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (at most `timeout`) for defguard's report of `job`; fails the test if the
    /// station exits first.
    pub async fn report(&mut self, core: &Core, job: u32, timeout: Duration) -> Done {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(done) = core.done(job) {
                return done;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the station exited ({status}) before reporting job {job}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "no report of job {job} within {timeout:?}; station log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM and returns the exit status (fails the test after 30 s).
    pub async fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let deadline = Instant::now() + EXIT_WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for StationProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
