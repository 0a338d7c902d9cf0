//! `check_csr` on requests made by openssl and by keystation: what passes, and the precise
//! error for each thing that does not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{CA_ALGORITHMS, openssl, signer};
use keystation_ca::{Error, SubjectAltName, check_csr};
use keystation_core::keygen::Signer;
use keystation_x509::{CertificateOptions, DistinguishedName, build_csr, pem};

/// An openssl CSR for a new key made with `genpkey` arguments `key`, subject `subject`,
/// extra `req` arguments `extra`; returns the PEM.
fn openssl_csr(dir: &Path, name: &str, key: &[&str], subject: &str, extra: &[&str]) -> String {
    let key_file = format!("{name}.key");
    let mut args = vec!["genpkey"];
    args.extend(key);
    args.extend(["-out", &key_file]);
    let (ok, out) = openssl(dir, &args);
    assert!(ok, "{out}");
    let csr_file = format!("{name}.csr");
    let mut args = vec!["req", "-new", "-key", &key_file, "-subj", subject, "-out", &csr_file];
    args.extend(extra);
    let (ok, out) = openssl(dir, &args);
    assert!(ok, "{out}");
    std::fs::read_to_string(dir.join(csr_file)).unwrap()
}

#[test]
fn openssl_requests_pass_with_their_names_in_step_order() {
    let dir = tempfile::tempdir().unwrap();
    let keys: [(&str, &[&str]); 4] = [
        ("p256", &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
        ("p384", &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]),
        ("ed25519", &["-algorithm", "ED25519"]),
        ("rsa3072", &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"]),
    ];
    for (name, key) in keys {
        let text = openssl_csr(
            dir.path(),
            name,
            key,
            "/O=Example/CN=first/CN=web.example.test",
            &[
                "-addext",
                "subjectAltName=URI:spiffe://example.test/w,email:w@example.test,IP:2001:db8::5,DNS:web.example.test,IP:192.0.2.5",
            ],
        );
        let checked = check_csr(text.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Go reads the last CN.
        assert_eq!(checked.common_name.as_deref(), Some("web.example.test"));
        assert_eq!(
            checked.sans,
            [
                "web.example.test",
                "2001:db8::5",
                "192.0.2.5",
                "w@example.test",
                "spiffe://example.test/w"
            ],
            "{name}"
        );
        assert_eq!(checked.typed_sans[1], SubjectAltName::Ip("2001:db8::5".parse().unwrap()));
        // The same request as DER.
        let der = pem::decode_all(&text).unwrap().remove(0).der.clone();
        let again = check_csr(&der).unwrap();
        assert_eq!(again, checked);
        assert_eq!(checked.der, der);
        let (ok, spki) = openssl(dir.path(), &["pkey", "-in", &format!("{name}.key"), "-pubout"]);
        assert!(ok);
        assert_eq!(pem::encode("PUBLIC KEY", &checked.spki_der), spki);
        assert_eq!(checked.public_key.to_spki_der(), checked.spki_der);
    }
}

#[test]
fn keystation_requests_pass() {
    for (i, algorithm) in CA_ALGORITHMS.into_iter().enumerate() {
        let mut key = signer(algorithm, 10 + i as u64);
        let der = build_csr(
            &mut key,
            &DistinguishedName::new(),
            &CertificateOptions {
                subject_alt_names: vec![SubjectAltName::Dns("only.example.test".into())],
                ..CertificateOptions::default()
            },
        )
        .unwrap();
        let checked = check_csr(&der).unwrap();
        assert_eq!(checked.common_name, None);
        assert_eq!(checked.sans, ["only.example.test"]);
        assert_eq!(&checked.public_key, key.public_key());
    }
}

#[test]
fn each_refusal_has_its_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let rsa1024 = openssl_csr(
        dir.path(),
        "rsa1024",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
        "/CN=small",
        &[],
    );
    let refused = check_csr(rsa1024.as_bytes());
    assert!(matches!(refused, Err(Error::RsaKeyTooSmall { bits: 1024 })), "{refused:?}");
    assert_eq!(
        refused.unwrap_err().to_string(),
        "RSA key of 1024 bits: at least 2048 bits are required"
    );

    let rsa2056 = openssl_csr(
        dir.path(),
        "rsa2056",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2056"],
        "/CN=odd",
        &[],
    );
    let refused = check_csr(rsa2056.as_bytes());
    assert!(matches!(&refused, Err(Error::UnsupportedKey(m)) if m.contains("2056")), "{refused:?}");

    let p521 = openssl_csr(
        dir.path(),
        "p521",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"],
        "/CN=p521",
        &[],
    );
    let refused = check_csr(p521.as_bytes());
    assert!(
        matches!(&refused, Err(Error::UnsupportedKey(m)) if m.contains("P-521")),
        "{refused:?}"
    );

    let k256 = openssl_csr(
        dir.path(),
        "k256",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp256k1"],
        "/CN=k256",
        &[],
    );
    let refused = check_csr(k256.as_bytes());
    assert!(
        matches!(&refused, Err(Error::UnsupportedKey(m)) if m.contains("1.3.132.0.10")),
        "{refused:?}"
    );

    let ed448 = openssl_csr(dir.path(), "ed448", &["-algorithm", "ED448"], "/CN=ed448", &[]);
    let refused = check_csr(ed448.as_bytes());
    assert!(
        matches!(&refused, Err(Error::UnsupportedKey(m)) if m.contains("1.3.101.113")),
        "{refused:?}"
    );

    // A changed signature: the key is fine, the proof of possession is not.
    let good = openssl_csr(
        dir.path(),
        "tampered",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "/CN=tampered",
        &[],
    );
    let mut der = pem::decode_all(&good).unwrap().remove(0).der.clone();
    // The last byte is inside the signature's S value.
    let last = der.len() - 1;
    der[last] ^= 0x01;
    let refused = check_csr(&der);
    assert!(matches!(refused, Err(Error::CsrSignature(_))), "{refused:?}");
    // A changed subject (inside the signed part).
    let mut der = pem::decode_all(&good).unwrap().remove(0).der.clone();
    let at = der.windows(8).position(|w| w == b"tampered").unwrap();
    der[at] = b'T';
    assert!(matches!(check_csr(&der), Err(Error::CsrSignature(_))));

    for garbage in
        [&b""[..], b"\x30\x03\x02\x01\x00", b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"]
    {
        let refused = check_csr(garbage);
        assert!(matches!(refused, Err(Error::MalformedCsr(_))), "{refused:?}");
    }
}
