#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]
//! Certificates made with host keys are checked by real gpg (2.2): import, fingerprints,
//! self-signatures, ownertrust, the SSH export, a detached signature, and encryption to
//! the ECDH/RSA subkey.

use std::path::Path;
use std::process::{Command, Output};

use keystation_core::key::{KeyAlgorithm, RsaBits};
use keystation_core::keygen::{KeyGen, KeyPurpose, KeyRequest, OpenPgpKeySlot};
use keystation_keygen::{SeededRandom, SoftKeyGen};
use keystation_openpgp_cert::{
    ArmorKind, Certificate, CertificateParams, Subkey, armor, dearmor, parse_packets,
    sign_detached, tag, user_id,
};

const KEY_TIME: u32 = 1_700_000_000;
const SIG_TIME: u32 = 1_700_000_100;

fn gpg(home: &Path, args: &[&str]) -> Output {
    Command::new("gpg")
        .arg("--homedir")
        .arg(home)
        .args(["--batch", "--no-tty", "--no-autostart"])
        .args(args)
        .output()
        .expect("gpg runs (install gnupg)")
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn check_suite(name: &str, sign: KeyAlgorithm, encrypt: KeyAlgorithm, auth: KeyAlgorithm) {
    let mut keygen = SoftKeyGen::new(Box::new(SeededRandom::from_u64(0x5EED)));
    let slot = |s| KeyPurpose::OpenPgp(s);
    let enc_pub = keygen
        .generate(&KeyRequest::new(slot(OpenPgpKeySlot::Decryption), encrypt))
        .unwrap()
        .public;
    let auth_pub = keygen
        .generate(&KeyRequest::new(slot(OpenPgpKeySlot::Authentication), auth))
        .unwrap()
        .public;
    let mut primary =
        keygen.generate(&KeyRequest::new(slot(OpenPgpKeySlot::Signature), sign)).unwrap();
    let uid = user_id("Ada", "Lovelace", "ada@example.org");
    let params = CertificateParams {
        primary_created: KEY_TIME,
        encryption: Subkey { public: enc_pub, created: KEY_TIME + 1 },
        authentication: Subkey { public: auth_pub, created: KEY_TIME + 2 },
        user_id: &uid,
        signed_at: SIG_TIME,
    };
    let cert = Certificate::build(primary.signer.as_mut(), &params).unwrap();

    // Our own reader sees the packet sequence of RFC 4880 §11.1.
    let armored = cert.armored();
    let (kind, bytes) = dearmor(&armored).unwrap();
    assert_eq!(kind, ArmorKind::PublicKey);
    assert_eq!(bytes, cert.to_bytes());
    let tags: Vec<u8> = parse_packets(&bytes).unwrap().iter().map(|p| p.tag).collect();
    assert_eq!(
        tags,
        [
            tag::PUBLIC_KEY,
            tag::USER_ID,
            tag::SIGNATURE,
            tag::PUBLIC_SUBKEY,
            tag::SIGNATURE,
            tag::PUBLIC_SUBKEY,
            tag::SIGNATURE
        ]
    );

    let home = tempfile::tempdir().unwrap();
    let dir = home.path();
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let cert_path = dir.join("cert.asc");
    std::fs::write(&cert_path, &armored).unwrap();
    let import = gpg(dir, &["--import", cert_path.to_str().unwrap()]);
    assert!(
        import.status.success(),
        "{name}: import failed: {}",
        String::from_utf8_lossy(&import.stderr)
    );

    // Fingerprints, in order: primary, encryption subkey, authentication subkey.
    let listing = text(&gpg(dir, &["--with-colons", "--fingerprint", "--list-keys"]));
    let fprs: Vec<&str> = listing
        .lines()
        .filter(|l| l.starts_with("fpr:"))
        .map(|l| l.split(':').nth(9).unwrap_or(""))
        .collect();
    let ours: Vec<String> = [cert.primary(), cert.encryption(), cert.authentication()]
        .iter()
        .map(|k| k.fingerprint.to_string())
        .collect();
    assert_eq!(fprs, ours, "{name}: fingerprints\n{listing}");
    // Capabilities gpg derives from our key flags: field 12.
    let caps: Vec<&str> = listing
        .lines()
        .filter(|l| l.starts_with("pub:") || l.starts_with("sub:"))
        .map(|l| l.split(':').nth(11).unwrap_or(""))
        .collect();
    assert_eq!(caps, ["scESCA", "e", "a"], "{name}\n{listing}");
    // The key ID is the low 64 bits (field 5 of the pub line).
    let pub_line = listing.lines().find(|l| l.starts_with("pub:")).unwrap();
    assert_eq!(
        pub_line.split(':').nth(4),
        Some(cert.primary().fingerprint.key_id().to_string().as_str())
    );

    // Every self-signature checks out: `sig:!`.
    let sigs = text(&gpg(dir, &["--with-colons", "--check-sigs"]));
    let marks: Vec<&str> = sigs
        .lines()
        .filter(|l| l.starts_with("sig:"))
        .map(|l| l.split(':').nth(1).unwrap_or(""))
        .collect();
    assert_eq!(marks, ["!", "!", "!"], "{name}: {sigs}");

    // Ultimate trust makes the User ID valid ("u").
    let trust = dir.join("trust.txt");
    std::fs::write(&trust, format!("{}:6:\n", cert.primary().fingerprint)).unwrap();
    assert!(gpg(dir, &["--import-ownertrust", trust.to_str().unwrap()]).status.success());
    let listing = text(&gpg(dir, &["--with-colons", "--list-keys"]));
    let uid_line = listing.lines().find(|l| l.starts_with("uid:")).unwrap();
    assert_eq!(uid_line.split(':').nth(1), Some("u"), "{name}: {listing}");
    assert_eq!(uid_line.split(':').nth(9), Some(uid.as_str()));

    // gpg's SSH export of the authentication subkey equals ours, comment included.
    let ssh = text(&gpg(dir, &["--export-ssh-key", &cert.primary().fingerprint.to_string()]));
    let ours = cert.ssh_public_key(Some(&cert.gpg_ssh_comment())).unwrap();
    assert_eq!(ssh.trim_end(), ours, "{name}");
    assert!(ours.starts_with(&cert.ssh_public_key(None).unwrap()));

    // A detached binary signature, made through the Signer as a card would, verifies.
    let data = b"signed by keystation\n";
    let data_path = dir.join("data.txt");
    std::fs::write(&data_path, data).unwrap();
    let sig = sign_detached(primary.signer.as_mut(), KEY_TIME, SIG_TIME + 5, data).unwrap();
    let sig_path = dir.join("data.txt.asc");
    std::fs::write(&sig_path, armor(ArmorKind::Signature, &sig)).unwrap();
    let verify = gpg(
        dir,
        &["--status-fd", "1", "--verify", sig_path.to_str().unwrap(), data_path.to_str().unwrap()],
    );
    let status = text(&verify);
    assert!(verify.status.success(), "{name}: {status}{}", String::from_utf8_lossy(&verify.stderr));
    assert!(
        status.contains(&format!("[GNUPG:] VALIDSIG {}", cert.primary().fingerprint)),
        "{name}: {status}"
    );
    // The same signature over other data is BAD.
    std::fs::write(&data_path, b"tampered\n").unwrap();
    let bad = gpg(
        dir,
        &["--status-fd", "1", "--verify", sig_path.to_str().unwrap(), data_path.to_str().unwrap()],
    );
    assert!(!bad.status.success() && text(&bad).contains("[GNUPG:] BADSIG"), "{name}");

    // Encrypting to the certificate uses the encryption subkey.
    let encrypted = dir.join("data.gpg");
    let enc = gpg(
        dir,
        &[
            "--status-fd",
            "1",
            "--recipient",
            &cert.primary().fingerprint.to_string(),
            "--output",
            encrypted.to_str().unwrap(),
            "--encrypt",
            data_path.to_str().unwrap(),
        ],
    );
    assert!(enc.status.success(), "{name}: {}", String::from_utf8_lossy(&enc.stderr));
    assert!(std::fs::metadata(&encrypted).map(|m| m.len() > 0).unwrap_or(false));
    // The PKESK packet names the encryption subkey's key ID (RFC 4880 §5.1).
    let packets = gpg(dir, &["--list-packets", encrypted.to_str().unwrap()]);
    let listed = format!("{}{}", text(&packets), String::from_utf8_lossy(&packets.stderr));
    let enc_id = cert.encryption().fingerprint.key_id().to_string();
    assert!(listed.contains(&format!("keyid {enc_id}")), "{name}: {listed}");
}

#[test]
fn ed25519_cv25519_certificate_is_accepted_by_gpg() {
    check_suite("ed25519", KeyAlgorithm::Ed25519, KeyAlgorithm::X25519, KeyAlgorithm::Ed25519);
}

#[test]
fn p256_certificate_is_accepted_by_gpg() {
    check_suite("p256", KeyAlgorithm::NistP256, KeyAlgorithm::NistP256, KeyAlgorithm::NistP256);
}

#[test]
fn p384_certificate_is_accepted_by_gpg() {
    check_suite("p384", KeyAlgorithm::NistP384, KeyAlgorithm::NistP384, KeyAlgorithm::NistP384);
}

#[test]
fn rsa2048_certificate_is_accepted_by_gpg() {
    let rsa = KeyAlgorithm::Rsa(RsaBits::Rsa2048);
    check_suite("rsa2048", rsa, rsa, rsa);
}
