//! Helpers shared by the integration tests: the openssl and ssh-keygen peers, and keys.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use keystation_core::key::{KeyAlgorithm, RsaBits};
use keystation_keygen::{HostSigner, SeededRandom, SoftKeyGen};

/// The CA key algorithms the issue names.
pub(crate) const CA_ALGORITHMS: [KeyAlgorithm; 4] = [
    KeyAlgorithm::NistP256,
    KeyAlgorithm::NistP384,
    KeyAlgorithm::Rsa(RsaBits::Rsa2048),
    KeyAlgorithm::Ed25519,
];

/// A host signer for `algorithm`, deterministic in `seed` (a stand-in for a card's key).
pub(crate) fn signer(algorithm: KeyAlgorithm, seed: u64) -> HostSigner {
    let mut keygen = SoftKeyGen::new(Box::new(SeededRandom::from_u64(seed)));
    HostSigner::new(&keygen.generate_secret(algorithm).unwrap()).unwrap()
}

/// Runs `program` with `args` in `dir`; returns (success, stdout + stderr). A missing
/// program fails the test loudly.
pub(crate) fn run(program: &str, dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("the {program} command-line tool must be installed: {e}"));
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// `openssl …` in `dir`.
pub(crate) fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    run("openssl", dir, args)
}

/// `ssh-keygen …` in `dir`.
pub(crate) fn ssh_keygen(dir: &Path, args: &[&str]) -> (bool, String) {
    run("ssh-keygen", dir, args)
}

/// Writes `contents` to `name` in `dir`.
pub(crate) fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) {
    std::fs::write(dir.join(name), contents).unwrap();
}
