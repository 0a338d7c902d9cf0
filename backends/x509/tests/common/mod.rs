//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use keystation_core::key::{KeyAlgorithm, RsaBits};
use keystation_keygen::{HostSigner, SeededRandom, SoftKeyGen};

/// The four signing algorithms the builders support.
pub(crate) const SIGNING: [KeyAlgorithm; 4] = [
    KeyAlgorithm::NistP256,
    KeyAlgorithm::NistP384,
    KeyAlgorithm::Rsa(RsaBits::Rsa2048),
    KeyAlgorithm::Ed25519,
];

/// A host signer for `algorithm`, deterministic in `seed`.
pub(crate) fn signer(algorithm: KeyAlgorithm, seed: u64) -> HostSigner {
    let mut keygen = SoftKeyGen::new(Box::new(SeededRandom::from_u64(seed)));
    let secret = keygen.generate_secret(algorithm).unwrap();
    HostSigner::new(&secret).unwrap()
}

/// Runs `openssl` with `args` in `dir`; returns (success, stdout + stderr).
pub(crate) fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command-line tool must be installed");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}
