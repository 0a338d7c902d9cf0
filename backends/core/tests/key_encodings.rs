//! Our SPKI and OpenSSH encodings, checked against independent implementations: the
//! RustCrypto crates, and the `openssl` and `ssh-keygen` command-line tools.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Write as _;
use std::process::{Command, Stdio};

use keystation_core::key::{KeyAlgorithm, PublicKey};

fn p256_key() -> (PublicKey, Vec<u8>) {
    use p256::pkcs8::EncodePublicKey as _;
    let secret = p256::SecretKey::from_slice(&[0x17; 32]).unwrap();
    let public = secret.public_key();
    let point = p256::EncodedPoint::from(public);
    let ours = PublicKey::from_point(KeyAlgorithm::NistP256, point.as_bytes()).unwrap();
    (ours, public.to_public_key_der().unwrap().as_bytes().to_vec())
}

fn ed25519_key() -> (PublicKey, Vec<u8>) {
    use ed25519_dalek::pkcs8::EncodePublicKey as _;
    let signing = ed25519_dalek::SigningKey::from_bytes(&[0x42; 32]);
    let verifying = signing.verifying_key();
    let ours = PublicKey::from_point(KeyAlgorithm::Ed25519, verifying.as_bytes()).unwrap();
    (ours, verifying.to_public_key_der().unwrap().as_bytes().to_vec())
}

fn rsa_key() -> (PublicKey, Vec<u8>) {
    use rsa::pkcs8::EncodePublicKey as _;
    // Any odd 2048-bit number with its top bit set serves for an encoding test.
    let mut n = vec![0xC5u8; 256];
    n[255] |= 1;
    let theirs =
        rsa::RsaPublicKey::new(rsa::BigUint::from_bytes_be(&n), rsa::BigUint::from(65_537u32))
            .unwrap();
    let ours = PublicKey::rsa(&n, &[1, 0, 1]).unwrap();
    (ours, theirs.to_public_key_der().unwrap().as_bytes().to_vec())
}

#[test]
fn spki_matches_rustcrypto_byte_for_byte() {
    for (ours, theirs) in [p256_key(), ed25519_key(), rsa_key()] {
        assert_eq!(ours.to_spki_der(), theirs, "{ours:?}");
    }
}

fn run(tool: &str, args: &[&str], stdin: &[u8]) -> String {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{tool} is required for this test (scripts/test installs it): {e}")
        });
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn openssl_reads_every_spki_we_write() {
    let p384 = PublicKey::from_point(KeyAlgorithm::NistP384, &{
        // The P-384 generator point, a valid public key.
        let mut g = vec![0x04];
        g.extend_from_slice(&hex("aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7"));
        g.extend_from_slice(&hex("3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f"));
        g
    })
    .unwrap();
    let x25519 = PublicKey::from_point(KeyAlgorithm::X25519, &[9; 32]).unwrap();
    for (key, expect) in [
        (p256_key().0, "NIST CURVE: P-256"),
        (p384, "NIST CURVE: P-384"),
        (ed25519_key().0, "ED25519 Public-Key"),
        (x25519, "X25519 Public-Key"),
        (rsa_key().0, "Public-Key: (2048 bit)"),
    ] {
        let text = run(
            "openssl",
            &["pkey", "-pubin", "-inform", "DER", "-noout", "-text"],
            &key.to_spki_der(),
        );
        assert!(text.contains(expect), "{key:?}: openssl printed\n{text}");
    }
}

#[test]
fn ssh_keygen_accepts_our_openssh_lines() {
    let dir = std::env::temp_dir().join(format!("keystation-ssh-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (key, kind) in
        [(p256_key().0, "(ECDSA)"), (ed25519_key().0, "(ED25519)"), (rsa_key().0, "(RSA)")]
    {
        let line = key.to_openssh(Some("keystation test")).unwrap();
        let path = dir.join("key.pub");
        std::fs::write(&path, format!("{line}\n")).unwrap();
        let listed = run("ssh-keygen", &["-l", "-f", path.to_str().unwrap()], b"");
        assert!(listed.contains(kind) && listed.contains("keystation test"), "{listed}");
        // ssh-keygen converts it to PKCS#8 PEM: the same key as our SPKI. (OpenSSH 9.2
        // cannot export Ed25519 this way; the listing above is its check.)
        if kind == "(ED25519)" {
            continue;
        }
        let pem = run("ssh-keygen", &["-e", "-m", "PKCS8", "-f", path.to_str().unwrap()], b"");
        let theirs = run("openssl", &["pkey", "-pubin", "-noout", "-text"], pem.as_bytes());
        let ours = run(
            "openssl",
            &["pkey", "-pubin", "-inform", "DER", "-noout", "-text"],
            &key.to_spki_der(),
        );
        assert_eq!(theirs, ours);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}
