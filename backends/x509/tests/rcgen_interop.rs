//! A certificate made by an independent generator (rcgen) parses to the fields it was
//! made with, and its signature verifies here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use keystation_core::key::{KeyAlgorithm, PublicKey};
use keystation_x509::{Certificate, SubjectAltName, verify_signed_by};

#[test]
fn rcgen_certificate_fields() {
    let mut params = rcgen::CertificateParams::new(vec!["node.example.test".to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "system:masters");
    params.distinguished_name.push(rcgen::DnType::CommonName, "system:admin");
    params.serial_number = Some(rcgen::SerialNumber::from(vec![0x01, 0x02, 0x03, 0x04]));
    params.not_before = rcgen::date_time_ymd(2024, 3, 1);
    params.not_after = rcgen::date_time_ymd(2034, 3, 1);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let der = cert.der().to_vec();

    let parsed = Certificate::from_der(&der).unwrap();
    assert_eq!(parsed.subject(), "CN=system:admin,O=system:masters");
    assert_eq!(parsed.issuer(), parsed.subject());
    assert_eq!(parsed.subject_common_name(), Some("system:admin"));
    assert_eq!(parsed.serial(), [1, 2, 3, 4]);
    assert_eq!(parsed.serial_hex(), "01020304");
    assert_eq!(parsed.not_before(), 1_709_251_200);
    assert_eq!(keystation_x509::rfc3339(parsed.not_after()), "2034-03-01T00:00:00Z");
    assert_eq!(parsed.subject_alt_names(), [SubjectAltName::Dns("node.example.test".into())]);
    let expected = PublicKey::from_point(KeyAlgorithm::NistP256, key.public_key_raw()).unwrap();
    assert_eq!(parsed.public_key().unwrap(), expected);
    assert_eq!(parsed.signature_algorithm_oid(), "1.2.840.10045.4.3.2");
    verify_signed_by(&der, &der).unwrap();
    let from_pem = Certificate::from_pem(&cert.pem()).unwrap();
    assert_eq!(from_pem.fingerprint_sha256(), parsed.fingerprint_sha256());

    // Ed25519 too.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["ed.test".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let parsed = Certificate::from_der(cert.der()).unwrap();
    let expected = PublicKey::from_point(KeyAlgorithm::Ed25519, key.public_key_raw()).unwrap();
    assert_eq!(parsed.public_key().unwrap(), expected);
    verify_signed_by(cert.der(), cert.der()).unwrap();
}
