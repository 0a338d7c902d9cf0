#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A passphrase-protected secret-key backup of host keys is accepted by `gpg --import`
//! with the passphrase, and the imported keys sign and decrypt.

use std::path::Path;
use std::process::{Command, Output};

use keystation_core::SecretKey;
use keystation_core::key::{KeyAlgorithm, RsaBits};
use keystation_core::keygen::{KeyGen, KeyLocation, KeyPurpose, KeyRequest, OpenPgpKeySlot};
use keystation_keygen::{SeededRandom, SoftKeyGen};
use keystation_openpgp_cert::{
    ArmorKind, Certificate, CertificateParams, S2kCount, SecretKeys, Subkey, dearmor,
    parse_packets, tag,
};

const PASSPHRASE: &str = "correct horse battery staple";

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

fn gpg(home: &Path, passphrase: &str, args: &[&str]) -> Output {
    Command::new("gpg")
        .arg("--homedir")
        .arg(home)
        .args(["--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", passphrase])
        .args(args)
        .output()
        .expect("gpg runs (install gnupg)")
}

fn host_key(
    keygen: &mut SoftKeyGen,
    slot: OpenPgpKeySlot,
    algorithm: KeyAlgorithm,
) -> (Subkey, SecretKey) {
    let generated =
        keygen.generate(&KeyRequest::new(KeyPurpose::OpenPgp(slot), algorithm)).unwrap();
    let KeyLocation::Host(secret) = generated.location else { panic!("host key") };
    (Subkey { public: generated.public, created: 1_700_000_000 }, secret)
}

fn check_backup(name: &str, sign: KeyAlgorithm, encrypt: KeyAlgorithm) {
    let mut keygen = SoftKeyGen::new(Box::new(SeededRandom::from_u64(0xBAC)));
    let (primary, primary_secret) = host_key(&mut keygen, OpenPgpKeySlot::Signature, sign);
    let (encryption, enc_secret) = host_key(&mut keygen, OpenPgpKeySlot::Decryption, encrypt);
    let (authentication, auth_secret) = host_key(&mut keygen, OpenPgpKeySlot::Authentication, sign);
    let mut signer = keystation_keygen::HostSigner::new(&primary_secret).unwrap();
    let params = CertificateParams {
        primary_created: primary.created,
        encryption,
        authentication,
        user_id: "Backup Test <backup@example.org>",
        signed_at: 1_700_000_100,
    };
    let cert = Certificate::build(&mut signer, &params).unwrap();
    let secrets = SecretKeys {
        primary: &primary_secret,
        encryption: &enc_secret,
        authentication: &auth_secret,
    };
    let mut rng = SeededRandom::from_u64(1);
    // A low S2K count keeps the unoptimised test build quick; the format is the same.
    let backup =
        cert.secret_backup(&secrets, PASSPHRASE.as_bytes(), S2kCount(0x60), &mut rng).unwrap();
    let (kind, bytes) = dearmor(&backup).unwrap();
    assert_eq!(kind, ArmorKind::PrivateKey);
    let tags: Vec<u8> = parse_packets(&bytes).unwrap().iter().map(|p| p.tag).collect();
    assert_eq!(tags, [tag::SECRET_KEY, 13, 2, tag::SECRET_SUBKEY, 2, tag::SECRET_SUBKEY, 2]);
    assert!(!backup.contains(PASSPHRASE));

    let home = Home(tempfile::tempdir().unwrap());
    let dir = home.0.path();
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let path = dir.join("backup.asc");
    std::fs::write(&path, backup.as_bytes()).unwrap();

    // gpg 2.2 keeps the key in its OpenPGP protection until first use, so importing
    // does not check the passphrase; using the key does (below).
    let import = gpg(dir, PASSPHRASE, &["--import", path.to_str().unwrap()]);
    assert!(import.status.success(), "{name}: {}", String::from_utf8_lossy(&import.stderr));
    let listed = String::from_utf8_lossy(
        &gpg(dir, "", &["--with-colons", "--with-keygrip", "--list-secret-keys"]).stdout,
    )
    .into_owned();
    let fprs: Vec<&str> = listed
        .lines()
        .filter(|l| l.starts_with("fpr:"))
        .map(|l| l.split(':').nth(9).unwrap())
        .collect();
    let ours: Vec<String> = [cert.primary(), cert.encryption(), cert.authentication()]
        .iter()
        .map(|k| k.fingerprint.to_string())
        .collect();
    assert_eq!(fprs, ours, "{name}: {listed}");
    // "sec"/"ssb" with field 15 "+" (secret present), not "#" (stub).
    let secret_marks: Vec<&str> = listed
        .lines()
        .filter(|l| l.starts_with("sec:") || l.starts_with("ssb:"))
        .map(|l| l.split(':').nth(14).unwrap_or(""))
        .collect();
    assert_eq!(secret_marks, ["+", "+", "+"], "{name}: {listed}");

    // The imported keys work: encrypt-decrypt round trip and a signature.
    let fpr = cert.primary().fingerprint.to_string();
    let data = dir.join("plain.txt");
    std::fs::write(&data, b"backup works\n").unwrap();
    let sealed = dir.join("sealed.gpg");
    let trust = ["--trust-model", "always"];
    let enc = gpg(
        dir,
        "",
        &[&trust[..], &["-r", &fpr, "-o", sealed.to_str().unwrap(), "-e", data.to_str().unwrap()]]
            .concat(),
    );
    assert!(enc.status.success(), "{name}: {}", String::from_utf8_lossy(&enc.stderr));
    let wrong = gpg(dir, "wrong passphrase", &["-d", sealed.to_str().unwrap()]);
    assert!(!wrong.status.success(), "{name}: decrypted with the wrong passphrase");
    assert_ne!(wrong.stdout, b"backup works\n");
    let dec = gpg(dir, PASSPHRASE, &["-d", sealed.to_str().unwrap()]);
    assert!(dec.status.success(), "{name}: {}", String::from_utf8_lossy(&dec.stderr));
    assert_eq!(dec.stdout, b"backup works\n");
    let sig = dir.join("plain.sig");
    let signed = gpg(
        dir,
        PASSPHRASE,
        &["-u", &fpr, "-o", sig.to_str().unwrap(), "--detach-sign", data.to_str().unwrap()],
    );
    assert!(signed.status.success(), "{name}: {}", String::from_utf8_lossy(&signed.stderr));
    let verify = gpg(dir, "", &["--verify", sig.to_str().unwrap(), data.to_str().unwrap()]);
    assert!(verify.status.success(), "{name}");
}

#[test]
fn ed25519_cv25519_backup_imports_into_gpg() {
    check_backup("ed25519", KeyAlgorithm::Ed25519, KeyAlgorithm::X25519);
}

#[test]
fn p256_backup_imports_into_gpg() {
    check_backup("p256", KeyAlgorithm::NistP256, KeyAlgorithm::NistP256);
}

#[test]
fn p384_backup_imports_into_gpg() {
    check_backup("p384", KeyAlgorithm::NistP384, KeyAlgorithm::NistP384);
}

#[test]
fn rsa2048_backup_imports_into_gpg() {
    let rsa = KeyAlgorithm::Rsa(RsaBits::Rsa2048);
    check_backup("rsa2048", rsa, rsa);
}
