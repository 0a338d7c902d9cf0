//! Private-key files written by OpenSSL parse to the right `SecretKey`, whose public key
//! is the one OpenSSL derives; encrypted files are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::openssl;
use keystation_core::SecretKey;
use keystation_core::keygen::Signer;
use keystation_keygen::HostSigner;
use keystation_x509::{Error, pem, private_key};

/// Generates a key with `args` (writing `key.pem`), parses it, and checks the public key
/// against `openssl pkey -pubout`.
fn generate_and_parse(args: &[&str], kind: &str) -> SecretKey {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = openssl(dir.path(), args);
    assert!(ok, "{args:?}: {out}");
    let text = std::fs::read_to_string(dir.path().join("key.pem")).unwrap();
    let secret = private_key::parse_pem(&text).unwrap_or_else(|e| panic!("{kind}: {e}"));
    let shown = format!("{secret:?}");
    assert_eq!(shown, format!("SecretKey::{kind}([redacted])"));

    let (ok, out) = openssl(
        dir.path(),
        &["pkey", "-in", "key.pem", "-pubout", "-outform", "DER", "-out", "pub.der"],
    );
    assert!(ok, "{out}");
    let spki = std::fs::read(dir.path().join("pub.der")).unwrap();
    if kind == "X25519" {
        // No signer for X25519; the point is checked through core's SPKI instead.
        return secret;
    }
    let signer = HostSigner::new(&secret).unwrap();
    assert_eq!(
        signer.public_key().to_spki_der(),
        spki,
        "{kind}: public key differs from OpenSSL's"
    );
    secret
}

#[test]
fn pkcs8_keys_of_every_algorithm() {
    generate_and_parse(
        &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "key.pem"],
        "Rsa",
    );
    generate_and_parse(
        &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "key.pem"],
        "NistP256",
    );
    generate_and_parse(
        &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", "key.pem"],
        "NistP384",
    );
    generate_and_parse(&["genpkey", "-algorithm", "ed25519", "-out", "key.pem"], "Ed25519");
    generate_and_parse(&["genpkey", "-algorithm", "x25519", "-out", "key.pem"], "X25519");
}

#[test]
fn sec1_ec_private_keys_with_parameters_block() {
    for (curve, kind) in [("prime256v1", "NistP256"), ("secp384r1", "NistP384")] {
        let secret =
            generate_and_parse(&["ecparam", "-name", curve, "-genkey", "-out", "key.pem"], kind);
        let len = match &secret {
            SecretKey::NistP256(s) | SecretKey::NistP384(s) => s.len(),
            _ => 0,
        };
        assert_eq!(len, if kind == "NistP256" { 32 } else { 48 });
    }
}

#[test]
fn pkcs1_rsa_private_key() {
    let secret = generate_and_parse(&["genrsa", "-traditional", "-out", "key.pem", "2048"], "Rsa");
    let SecretKey::Rsa { e, p, q, .. } = secret else { panic!("not RSA") };
    assert_eq!(e, [1, 0, 1]);
    assert_eq!((p.len(), q.len()), (128, 128));
}

#[test]
fn encrypted_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (i, args) in [
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-aes-128-cbc",
            "-pass",
            "pass:secret",
            "-out",
        ][..],
        &["genrsa", "-traditional", "-aes128", "-passout", "pass:secret", "-out"][..],
    ]
    .into_iter()
    .enumerate()
    {
        let file = format!("enc{i}.pem");
        let mut args = args.to_vec();
        args.push(&file);
        if i == 1 {
            args.push("2048");
        }
        let (ok, out) = openssl(dir.path(), &args);
        assert!(ok, "{out}");
        let text = std::fs::read_to_string(dir.path().join(&file)).unwrap();
        let err = private_key::parse_pem(&text).unwrap_err();
        assert!(matches!(err, Error::EncryptedPrivateKey), "{err:?}");
        assert_eq!(err.to_string(), "encrypted private keys are not supported");
    }
}

#[test]
fn broken_and_foreign_keys_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    // P-521 is a curve keystation does not handle.
    let (ok, out) = openssl(
        dir.path(),
        &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521", "-out", "key.pem"],
    );
    assert!(ok, "{out}");
    let text = std::fs::read_to_string(dir.path().join("key.pem")).unwrap();
    let err = private_key::parse_pem(&text).unwrap_err();
    assert!(matches!(err, Error::UnsupportedKeyAlgorithm(_)), "{err:?}");
    assert!(err.to_string().contains("1.3.132.0.35"), "{err}");

    assert!(matches!(private_key::parse_pem("nothing here"), Err(Error::Pem(_))));
    let junk = pem::encode("PRIVATE KEY", &[0x30, 0x03, 0x02, 0x01, 0x00]);
    assert!(matches!(private_key::parse_pem(&junk), Err(Error::Malformed { .. })));
    // A SEC1 key whose scalar is zero.
    let mut zero = vec![0x30, 0x31, 0x02, 0x01, 0x01, 0x04, 0x20];
    zero.extend([0u8; 32]);
    zero.extend([0xA0, 0x0A, 0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]);
    zero[1] = (zero.len() - 2) as u8;
    let err = private_key::parse_sec1_der(&zero).unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
}
