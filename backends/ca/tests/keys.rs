//! CA key files: written here, read by `openssl pkey`; written by openssl, read here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{CA_ALGORITHMS, openssl, write};
use keystation_ca::{CaKey, Error};
use keystation_core::key::{KeyAlgorithm, RsaBits};
use keystation_core::keygen::Signer;
use keystation_x509::pem;

const PASSWORD: &[u8] = b"correct horse battery staple";

#[test]
fn encrypted_key_files_open_in_openssl_and_here() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "password", PASSWORD);
    let mut algorithms = CA_ALGORITHMS.to_vec();
    algorithms.push(KeyAlgorithm::Rsa(RsaBits::Rsa3072));
    for (i, algorithm) in algorithms.into_iter().enumerate() {
        let key = CaKey::generate(algorithm).unwrap();
        assert_eq!(key.algorithm(), algorithm);
        // step-ca's count for the first key; fewer rounds keep the rest quick unoptimised.
        let file = if i == 0 {
            key.to_encrypted_pem(PASSWORD).unwrap()
        } else {
            key.to_encrypted_pem_with(PASSWORD, 10_000).unwrap()
        };
        assert!(file.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"), "{file}");
        let name = format!("key{i}.pem");
        write(dir.path(), &name, &file);

        // openssl opens it with the password and finds the same public key.
        let (ok, out) =
            openssl(dir.path(), &["pkey", "-in", &name, "-passin", "file:password", "-pubout"]);
        assert!(ok, "{algorithm}: {out}");
        let expected = pem::encode("PUBLIC KEY", &key.public_key().to_spki_der());
        assert_eq!(out, expected, "{algorithm}");
        // … and not without it.
        write(dir.path(), "wrong", "not the password");
        let (ok, _) =
            openssl(dir.path(), &["pkey", "-in", &name, "-passin", "file:wrong", "-noout"]);
        assert!(!ok, "{algorithm}: openssl opened it with a wrong password");

        // The scheme is step-ca's: PBES2, PBKDF2 with HMAC-SHA256, AES-256-CBC.
        let (ok, out) = openssl(dir.path(), &["asn1parse", "-in", &name]);
        assert!(ok, "{out}");
        for part in ["PBES2", "PBKDF2", "hmacWithSHA256", "aes-256-cbc"] {
            assert!(out.contains(part), "{algorithm}: no {part} in {out}");
        }
        let iterations = if i == 0 { ":0186A0" } else { ":2710" };
        assert!(out.contains(iterations), "{algorithm}: iteration count: {out}");

        // Read back here.
        let again = CaKey::from_pem(&file, Some(PASSWORD)).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        assert_eq!(format!("{again:?}"), format!("CaKey({algorithm}, [redacted])"));
        let wrong = CaKey::from_pem(&file, Some(b"not the password"));
        assert!(matches!(wrong, Err(Error::WrongPassword)), "{algorithm}: {wrong:?}");
        assert!(
            wrong.unwrap_err().to_string().contains("wrong password"),
            "the message says what is wrong"
        );
        assert!(matches!(CaKey::from_pem(&file, None), Err(Error::KeyFile(_))));
    }
}

#[test]
fn keys_openssl_encrypted_are_read() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "password", PASSWORD);
    let cases: [(&str, &[&str]); 4] = [
        ("p256", &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
        ("p384", &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]),
        ("ed25519", &["genpkey", "-algorithm", "ED25519"]),
        ("rsa", &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
    ];
    for (name, generate) in cases {
        // OpenSSL 3's default for PKCS #8: PBES2, PBKDF2-SHA256, AES-256-CBC.
        let plain = format!("{name}.pem");
        let mut args = generate.to_vec();
        args.extend(["-out", &plain]);
        let (ok, out) = openssl(dir.path(), &args);
        assert!(ok, "{out}");
        let pbkdf2 = format!("{name}-pbkdf2.pem");
        let (ok, out) = openssl(
            dir.path(),
            &[
                "pkcs8",
                "-topk8",
                "-in",
                &plain,
                "-v2",
                "aes-256-cbc",
                "-passout",
                "file:password",
                "-out",
                &pbkdf2,
            ],
        );
        assert!(ok, "{out}");
        // scrypt (RFC 7914) as the KDF.
        let scrypt = format!("{name}-scrypt.pem");
        let (ok, out) = openssl(
            dir.path(),
            &[
                "pkcs8",
                "-topk8",
                "-in",
                &plain,
                "-scrypt",
                "-passout",
                "file:password",
                "-out",
                &scrypt,
            ],
        );
        assert!(ok, "{out}");
        let (ok, spki) = openssl(dir.path(), &["pkey", "-in", &plain, "-pubout"]);
        assert!(ok, "{spki}");
        let unencrypted =
            CaKey::from_pem(&std::fs::read_to_string(dir.path().join(&plain)).unwrap(), None)
                .unwrap();
        assert_eq!(pem::encode("PUBLIC KEY", &unencrypted.public_key().to_spki_der()), spki);
        for file in [&pbkdf2, &scrypt] {
            let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
            let key =
                CaKey::from_pem(&text, Some(PASSWORD)).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(key.public_key(), unencrypted.public_key(), "{file}");
            assert!(matches!(CaKey::from_pem(&text, Some(b"nope")), Err(Error::WrongPassword)));
        }
    }
}

#[test]
fn unusable_inputs_are_clear_errors() {
    assert!(matches!(CaKey::generate(KeyAlgorithm::X25519), Err(Error::UnsupportedCaKey(_))));
    let key = CaKey::generate(KeyAlgorithm::NistP256).unwrap();
    assert!(matches!(key.to_encrypted_pem(b""), Err(Error::KeyFile(_))));
    assert!(matches!(key.to_encrypted_pem_with(b"pw", 1000), Err(Error::KeyFile(_))));
    // A password for a file that has no encrypted key.
    let plain = pem::encode("PRIVATE KEY", &key.to_pkcs8_der().unwrap());
    assert!(matches!(CaKey::from_pem(&plain, Some(b"pw")), Err(Error::KeyFile(_))));
    assert_eq!(CaKey::from_pem(&plain, None).unwrap().public_key(), key.public_key());
    // A damaged ciphertext reads as a wrong password, not a panic.
    let file = key.to_encrypted_pem_with(b"pw", 10_000).unwrap();
    let blocks = pem::decode_all(&file).unwrap();
    let mut der = blocks[0].der.clone();
    let last = der.len() - 20;
    der[last] ^= 0xFF;
    let damaged = pem::encode("ENCRYPTED PRIVATE KEY", &der);
    assert!(matches!(CaKey::from_pem(&damaged, Some(b"pw")), Err(Error::WrongPassword)));
    assert!(matches!(CaKey::from_pem("garbage", Some(b"pw")), Err(Error::KeyFile(_))));
}

/// A file asking for absurd scrypt work is refused before any is done.
#[test]
fn kdf_bounds_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "password", PASSWORD);
    let (ok, out) = openssl(dir.path(), &["genpkey", "-algorithm", "ED25519", "-out", "k.pem"]);
    assert!(ok, "{out}");
    // scrypt with OpenSSL's N = 16384, r = 8, p = 1 …
    let (ok, out) = openssl(
        dir.path(),
        &[
            "pkcs8",
            "-topk8",
            "-in",
            "k.pem",
            "-scrypt",
            "-passout",
            "file:password",
            "-out",
            "scrypt.pem",
        ],
    );
    assert!(ok, "{out}");
    let text = std::fs::read_to_string(dir.path().join("scrypt.pem")).unwrap();
    assert!(CaKey::from_pem(&text, Some(PASSWORD)).is_ok());
    // … patched to p = 127: 128 · N · r · p is 2 GiB.
    let mut der = pem::decode_all(&text).unwrap().remove(0).der.clone();
    let at = der.windows(6).position(|w| w == [2, 1, 8, 2, 1, 1]).expect("r and p in the DER");
    der[at + 5] = 0x7F;
    let greedy = pem::encode("ENCRYPTED PRIVATE KEY", &der);
    let refused = CaKey::from_pem(&greedy, Some(PASSWORD));
    assert!(matches!(&refused, Err(Error::KeyFile(m)) if m.contains("1 GiB")), "{refused:?}");
}
