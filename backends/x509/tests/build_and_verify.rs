//! CSRs and certificates made through a `Signer`, checked by this crate and by the
//! `openssl` command-line tool.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{SIGNING, openssl, signer};
use keystation_core::key::KeyAlgorithm;
use keystation_core::keygen::Signer;
use keystation_x509::{
    Certificate, CertificateOptions, CertificateRequest, DistinguishedName, Error,
    ExtendedKeyUsage, SubjectAltName, Validity, build_csr, issue_certificate, pem,
    self_signed_certificate, verify_csr, verify_signed_by,
};

const NOT_BEFORE: u64 = 1_704_067_200; // 2024-01-01T00:00:00Z
const NOT_AFTER: u64 = 4_102_444_799; // 2099-12-31T23:59:59Z (GeneralizedTime)

fn options() -> CertificateOptions {
    CertificateOptions {
        extended_key_usage: vec![ExtendedKeyUsage::ClientAuth, ExtendedKeyUsage::ServerAuth],
        subject_alt_names: vec![
            SubjectAltName::Dns("card.example.test".into()),
            SubjectAltName::Email("admin@example.test".into()),
            SubjectAltName::Uri("spiffe://example.test/admin".into()),
            SubjectAltName::Ip("192.0.2.7".parse().unwrap()),
            SubjectAltName::Ip("2001:db8::7".parse().unwrap()),
        ],
        ..CertificateOptions::default()
    }
}

fn flip_last_byte(der: &[u8]) -> Vec<u8> {
    let mut bad = der.to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    bad
}

#[test]
fn csrs_verify_here_and_in_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let subject = DistinguishedName::parse("CN=system:admin,O=system:masters").unwrap();
    for (i, algorithm) in SIGNING.into_iter().enumerate() {
        let mut signer = signer(algorithm, 10 + i as u64);
        let der = build_csr(&mut signer, &subject, &options()).unwrap();
        verify_csr(&der).unwrap_or_else(|e| panic!("{algorithm}: {e}"));

        let request = CertificateRequest::from_der(&der).unwrap();
        assert_eq!(request.subject(), "CN=system:admin,O=system:masters");
        assert_eq!(&request.public_key().unwrap(), signer.public_key());
        assert_eq!(request.subject_alt_names(), options().subject_alt_names);
        let from_pem = CertificateRequest::from_pem(&request.to_pem()).unwrap();
        assert_eq!(from_pem.to_der(), der);

        let file = dir.path().join(format!("req{i}.pem"));
        std::fs::write(&file, pem::encode("CERTIFICATE REQUEST", &der)).unwrap();
        let (ok, out) = openssl(
            dir.path(),
            &["req", "-in", file.to_str().unwrap(), "-verify", "-noout", "-text"],
        );
        assert!(ok, "{algorithm}: openssl req -verify failed: {out}");
        assert!(
            out.contains("verify OK")
                || out.contains("Certificate request self-signature verify OK"),
            "{out}"
        );
        assert!(out.contains("DNS:card.example.test"), "{out}");
        assert!(out.contains("IP Address:192.0.2.7"), "{out}");
        assert!(out.contains("IP Address:2001:DB8:0:0:0:0:0:7"), "{out}");
        assert!(out.contains("TLS Web Client Authentication"), "{out}");

        // A changed signature fails both here and in OpenSSL.
        let bad = flip_last_byte(&der);
        assert!(verify_csr(&bad).is_err(), "{algorithm}");
        let file = dir.path().join(format!("bad{i}.pem"));
        std::fs::write(&file, pem::encode("CERTIFICATE REQUEST", &bad)).unwrap();
        let (ok, out) =
            openssl(dir.path(), &["req", "-in", file.to_str().unwrap(), "-verify", "-noout"]);
        assert!(
            !ok || !out.contains("verify OK"),
            "{algorithm}: openssl accepted a bad CSR: {out}"
        );
    }
}

#[test]
fn self_signed_certificates_round_trip_and_openssl_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let subject = DistinguishedName::parse("CN=keystation test,OU=ops,O=example,C=DE").unwrap();
    let validity = Validity { not_before: NOT_BEFORE, not_after: NOT_AFTER };
    for (i, algorithm) in SIGNING.into_iter().enumerate() {
        let mut signer = signer(algorithm, 20 + i as u64);
        let serial = [0x80, 0x01, 0x02, i as u8];
        let der = self_signed_certificate(&mut signer, &subject, &serial, validity, &options())
            .unwrap_or_else(|e| panic!("{algorithm}: {e}"));
        let cert = Certificate::from_der(&der).unwrap();
        assert_eq!(cert.subject(), "CN=keystation test,OU=ops,O=example,C=DE");
        assert_eq!(cert.issuer(), cert.subject());
        assert_eq!(cert.subject_der(), subject.to_der().unwrap());
        assert_eq!(cert.serial(), [0x00, 0x80, 0x01, 0x02, i as u8]);
        assert_eq!(cert.serial_hex(), format!("00800102{i:02x}"));
        assert_eq!(cert.not_before(), NOT_BEFORE as i64);
        assert_eq!(cert.not_after(), NOT_AFTER as i64);
        assert_eq!(&cert.public_key().unwrap(), signer.public_key());
        assert_eq!(cert.subject_alt_names(), options().subject_alt_names);
        assert!(!cert.is_ca());
        assert_eq!(cert.to_der(), der);
        verify_signed_by(&der, &der).unwrap_or_else(|e| panic!("{algorithm}: {e}"));
        assert!(matches!(
            verify_signed_by(&flip_last_byte(&der), &der),
            Err(Error::BadSignature) | Err(Error::Malformed { .. })
        ));

        let file = dir.path().join(format!("cert{i}.pem"));
        std::fs::write(&file, cert.to_pem()).unwrap();
        let path = file.to_str().unwrap();
        let (ok, out) = openssl(
            dir.path(),
            &["x509", "-in", path, "-noout", "-text", "-fingerprint", "-sha256"],
        );
        assert!(ok, "{algorithm}: {out}");
        assert!(out.contains("CN = keystation test"), "{out}");
        assert!(out.contains("Not After : Dec 31 23:59:59 2099 GMT"), "{out}");
        assert!(out.contains("TLS Web Server Authentication"), "{out}");
        assert!(out.contains("email:admin@example.test"), "{out}");
        assert!(out.contains("URI:spiffe://example.test/admin"), "{out}");
        let expected_fp = cert
            .fingerprint_sha256()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        assert!(out.contains(&expected_fp), "{algorithm}: fingerprint {expected_fp} not in {out}");
        let usage = if matches!(algorithm, KeyAlgorithm::Rsa(_)) {
            "Digital Signature, Key Encipherment"
        } else {
            "Digital Signature"
        };
        assert!(out.contains(usage), "{out}");
        // openssl checks the self-signature of a trusted self-signed certificate only when
        // asked to: -check_ss_sig.
        let (ok, out) = openssl(
            dir.path(),
            &["verify", "-check_ss_sig", "-CAfile", path, "-purpose", "any", path],
        );
        assert!(ok && out.contains(": OK"), "{algorithm}: {out}");
    }
}

#[test]
fn issued_certificates_chain_to_their_ca() {
    let dir = tempfile::tempdir().unwrap();
    let validity = Validity { not_before: NOT_BEFORE, not_after: NOT_AFTER };
    for (i, algorithm) in SIGNING.into_iter().enumerate() {
        let mut ca = signer(algorithm, 30 + i as u64);
        let ca_name = DistinguishedName::parse("CN=test CA,O=keystation").unwrap();
        let ca_options = CertificateOptions { ca: true, ..CertificateOptions::default() };
        let ca_der =
            self_signed_certificate(&mut ca, &ca_name, &[1], validity, &ca_options).unwrap();
        assert!(Certificate::from_der(&ca_der).unwrap().is_ca());

        // The leaf key is of another algorithm than the CA's.
        let leaf_alg = SIGNING[(i + 1) % SIGNING.len()];
        let leaf = signer(leaf_alg, 40 + i as u64);
        let leaf_name = DistinguishedName::parse("CN=system:admin,O=system:masters").unwrap();
        let leaf_der = issue_certificate(
            &mut ca,
            &ca_der,
            leaf.public_key(),
            &leaf_name,
            &[0x42; 16],
            validity,
            &options(),
        )
        .unwrap();
        let cert = Certificate::from_der(&leaf_der).unwrap();
        assert_eq!(cert.issuer(), "CN=test CA,O=keystation");
        assert_eq!(cert.subject(), "CN=system:admin,O=system:masters");
        assert_eq!(&cert.public_key().unwrap(), leaf.public_key());
        verify_signed_by(&leaf_der, &ca_der).unwrap();
        // Signed by the CA, not by itself.
        assert!(verify_signed_by(&leaf_der, &leaf_der).is_err());

        std::fs::write(dir.path().join("ca.pem"), pem::encode("CERTIFICATE", &ca_der)).unwrap();
        std::fs::write(dir.path().join("leaf.pem"), pem::encode("CERTIFICATE", &leaf_der)).unwrap();
        let (ok, out) = openssl(
            dir.path(),
            &["verify", "-CAfile", "ca.pem", "-purpose", "sslclient", "leaf.pem"],
        );
        assert!(ok && out.contains("leaf.pem: OK"), "{algorithm} CA, {leaf_alg} leaf: {out}");

        // The issuer signer must hold the issuer certificate's key.
        let mut other = signer(algorithm, 99);
        let refused = issue_certificate(
            &mut other,
            &ca_der,
            leaf.public_key(),
            &leaf_name,
            &[2],
            validity,
            &options(),
        );
        assert!(matches!(refused, Err(Error::InvalidInput(_))), "{refused:?}");
    }
}

#[test]
fn bad_inputs_to_the_builders_are_errors() {
    let mut signer = signer(KeyAlgorithm::NistP256, 5);
    let name = DistinguishedName::common_name("x");
    let validity = Validity { not_before: NOT_BEFORE, not_after: NOT_AFTER };
    let zero = self_signed_certificate(&mut signer, &name, &[0, 0], validity, &options());
    assert!(matches!(zero, Err(Error::InvalidInput(_))));
    let long = self_signed_certificate(&mut signer, &name, &[0x7F; 21], validity, &options());
    assert!(matches!(long, Err(Error::InvalidInput(_))));
    let backwards = Validity { not_before: NOT_AFTER, not_after: NOT_BEFORE };
    assert!(self_signed_certificate(&mut signer, &name, &[1], backwards, &options()).is_err());
    let non_ascii = CertificateOptions {
        subject_alt_names: vec![SubjectAltName::Dns("bücher.test".into())],
        ..CertificateOptions::default()
    };
    assert!(build_csr(&mut signer, &name, &non_ascii).is_err());
    let mut x25519 = common::signer(KeyAlgorithm::X25519, 6);
    assert!(matches!(
        build_csr(&mut x25519, &name, &options()),
        Err(Error::UnsupportedKeyAlgorithm(_))
    ));
}

/// `signature_algorithm_der` and `sign_tbs` are the scheme the builders use: a
/// certificate's TBS re-signed through them, under the algorithm identifier they name,
/// still verifies.
#[test]
fn external_tbs_signing_matches_the_builders() {
    use x509_cert::der::{Decode, Encode};
    let validity = Validity { not_before: NOT_BEFORE, not_after: NOT_AFTER };
    for (i, algorithm) in SIGNING.into_iter().enumerate() {
        let mut ca = signer(algorithm, 60 + i as u64);
        let name = DistinguishedName::common_name("tbs");
        let der = self_signed_certificate(&mut ca, &name, &[7], validity, &options()).unwrap();
        let mut cert = x509_cert::Certificate::from_der(&der).unwrap();
        let alg = keystation_x509::signature_algorithm_der(ca.public_key()).unwrap();
        assert_eq!(cert.signature_algorithm.to_der().unwrap(), alg, "{algorithm}");
        let tbs = cert.tbs_certificate.to_der().unwrap();
        let signature = keystation_x509::sign_tbs(&mut ca, &tbs).unwrap();
        cert.signature = x509_cert::der::asn1::BitString::from_bytes(&signature).unwrap();
        let resigned = cert.to_der().unwrap();
        verify_signed_by(&resigned, &resigned).unwrap_or_else(|e| panic!("{algorithm}: {e}"));
        // A signature over other bytes does not verify.
        let wrong = keystation_x509::sign_tbs(&mut ca, b"other bytes").unwrap();
        cert.signature = x509_cert::der::asn1::BitString::from_bytes(&wrong).unwrap();
        let forged = cert.to_der().unwrap();
        assert!(matches!(verify_signed_by(&forged, &forged), Err(Error::BadSignature)));
    }
    let x25519 = signer(KeyAlgorithm::X25519, 1);
    assert!(keystation_x509::signature_algorithm_der(x25519.public_key()).is_err());
}
