#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The fingerprints written to a card's C7/C8/C9 must be the ones gpg computes when *it*
//! builds the key packets (for example from the card's public keys). gpg generates keys
//! of each curve here; we rebuild each key's fingerprint from only its public key,
//! creation time and role, and compare. This pins the ECDH KDF parameters (part of the
//! fingerprint) to gpg's defaults per curve.

use std::path::Path;
use std::process::{Command, Output};

use keystation_core::key::{KeyAlgorithm, PublicKey};
use keystation_openpgp_cert::{KeyRole, fingerprint, parse_packets, tag};

/// A temporary GNUPGHOME whose gpg-agent is stopped when the test ends, pass or fail.
struct Home(tempfile::TempDir);

impl Drop for Home {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.0.path())
            .args(["--kill", "gpg-agent"])
            .status();
    }
}

fn gpg(home: &Path, args: &[&str]) -> Output {
    Command::new("gpg")
        .arg("--homedir")
        .arg(home)
        .args(["--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", ""])
        .args(args)
        .output()
        .expect("gpg runs (install gnupg)")
}

/// The public key and creation time in a v4 key packet body gpg wrote.
fn read_key(body: &[u8]) -> (PublicKey, u32, u8) {
    assert_eq!(body[0], 4);
    let created = u32::from_be_bytes(body[1..5].try_into().unwrap());
    let algo = body[5];
    let oid_len = usize::from(body[6]);
    let oid = &body[7..7 + oid_len];
    let at = 7 + oid_len;
    let bits = usize::from(u16::from_be_bytes([body[at], body[at + 1]]));
    let point = &body[at + 2..at + 2 + bits.div_ceil(8)];
    let algorithm = match oid {
        [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07] => KeyAlgorithm::NistP256,
        [0x2B, 0x81, 0x04, 0x00, 0x22] => KeyAlgorithm::NistP384,
        [0x2B, 0x06, 0x01, 0x04, 0x01, 0xDA, 0x47, 0x0F, 0x01] => KeyAlgorithm::Ed25519,
        [0x2B, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01] => KeyAlgorithm::X25519,
        other => panic!("unexpected curve {other:02X?}"),
    };
    let point = if point[0] == 0x40 { &point[1..] } else { point };
    (PublicKey::from_point(algorithm, point).unwrap(), created, algo)
}

fn compare(primary: &str, subkeys: &[(&str, &str)]) {
    let home = Home(tempfile::tempdir().unwrap());
    let dir = home.0.path();
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let made = gpg(dir, &["--quick-gen-key", "Fp Test <fp@example.org>", primary, "sign", "never"]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let listing =
        String::from_utf8_lossy(&gpg(dir, &["--with-colons", "--list-keys"]).stdout).into_owned();
    let primary_fpr =
        listing.lines().find(|l| l.starts_with("fpr:")).unwrap().split(':').nth(9).unwrap();
    for (algo, usage) in subkeys {
        let added = gpg(dir, &["--quick-add-key", primary_fpr, algo, usage, "never"]);
        assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    }
    let listing = String::from_utf8_lossy(
        &gpg(dir, &["--with-colons", "--fingerprint", "--fingerprint", "--list-keys"]).stdout,
    )
    .into_owned();
    let theirs: Vec<String> = listing
        .lines()
        .filter(|l| l.starts_with("fpr:"))
        .map(|l| l.split(':').nth(9).unwrap().to_owned())
        .collect();
    let export = gpg(dir, &["--export"]).stdout;
    let ours: Vec<String> = parse_packets(&export)
        .unwrap()
        .iter()
        .filter(|p| p.tag == tag::PUBLIC_KEY || p.tag == tag::PUBLIC_SUBKEY)
        .map(|p| {
            let (public, created, algo) = read_key(p.body);
            let role = match (p.tag, algo) {
                (tag::PUBLIC_KEY, _) => KeyRole::Primary,
                (_, 18) => KeyRole::Encryption,
                _ => KeyRole::Authentication,
            };
            fingerprint(&public, created, role).unwrap().to_string()
        })
        .collect();
    assert_eq!(ours.len(), 1 + subkeys.len());
    assert_eq!(ours, theirs, "{primary}");
}

#[test]
fn curve25519_fingerprints_match_gpg() {
    compare("ed25519", &[("cv25519", "encr"), ("ed25519", "auth")]);
}

#[test]
fn p256_fingerprints_match_gpg() {
    compare("nistp256", &[("nistp256", "encr"), ("nistp256/ecdsa", "auth")]);
}

#[test]
fn p384_fingerprints_match_gpg() {
    compare("nistp384", &[("nistp384", "encr"), ("nistp384/ecdsa", "auth")]);
}
