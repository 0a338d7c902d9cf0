//! One client script, two servers: smallstep's own client code (stepca-tool, on the library
//! the `step` CLI uses) gets, renews and revokes X.509 certificates and gets SSH user and
//! host certificates from step-ca 0.19, the baseline, and from `keystation authority
//! serve`, the same way; a real sshd accepts a login with an issued user certificate.
//!
//! ```text
//! eval "$(scripts/stepca-peer --env)"        # KEYSTATION_TEST_STEPCA_DIR
//! cargo test --features test-authority --test authority_stepca
//! ```
//!
//! The checks are the scripts in tests/authority/ (`stepca-client.sh`, `sshd-login.sh`; each
//! prints one line per check, run with `-- --nocapture` to see them). Against keystation
//! they run with `STRICT=1`: where step-ca 0.19 is lax (an SSH token accepted on
//! `/1.0/sign`, a 2 h token, a renew token's wrong audience answered with 500, a refused
//! request's token spent), keystation must refuse, or keep the token.
//!
//! Needs: `KEYSTATION_TEST_STEPCA_DIR` (step-ca and stepca-tool; without it the tests fail
//! and say so), openssl, ssh-keygen, curl, python3, and Debian's openssh-server for
//! `/usr/sbin/sshd`. sshd logs in the user running the tests (root in CI) with principal
//! `alice`; as root it needs /run/sshd, which the script creates.
#![cfg(feature = "test-authority")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

#[path = "support/authority_servers.rs"]
mod authority_servers;

use std::path::Path;

use authority_servers::{Authority, stepca_dir};

/// Runs both scripts against `authority`, each in its own work directory under `dir`.
fn client_scripts(authority: &Authority, dir: &Path, strict: bool) {
    let tool = stepca_dir().join("stepca-tool");
    for script in ["stepca-client.sh", "sshd-login.sh"] {
        let work = dir.join(script.trim_end_matches(".sh"));
        let output = authority.run_script(script, &tool, &work, strict);
        eprintln!("---- {script} against {:?} ----\n{output}", authority.kind());
    }
}

/// The baseline: the scripts' expectations hold for step-ca 0.19 itself.
#[test]
fn step_ca_baseline() {
    let peer = stepca_dir();
    let dir = tempfile::tempdir().unwrap();
    let mut authority = Authority::step_ca(&peer, dir.path());
    client_scripts(&authority, dir.path(), false);
    authority.stop();
}

/// keystation with the same scripts, stricter where step-ca is lax (`STRICT=1`).
#[test]
fn keystation_authority_same_script() {
    // Fails here, saying so, without the peer: the scripts need its stepca-tool.
    stepca_dir();
    let dir = tempfile::tempdir().unwrap();
    let binary = Path::new(env!("CARGO_BIN_EXE_keystation"));
    let mut authority = Authority::keystation(binary, dir.path());
    client_scripts(&authority, dir.path(), true);
    authority.stop();
}
