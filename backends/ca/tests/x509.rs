//! The X.509 CA end to end: `init_ca` as `step ca init`, leaf certificates from CSRs,
//! renewal, rekeying and CRLs, each checked by the `openssl` command-line tool.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{CA_ALGORITHMS, openssl, signer, write};
use keystation_ca::{
    CaInitOptions, CaKey, CaMaterial, CrlTemplate, Error, IntermediateKey, Issuer, KeyUsage,
    LeafTemplate, RevocationReason, RevokedEntry, Serial, SubjectAltName, check_csr, init_ca,
};
use keystation_core::key::{KeyAlgorithm, RsaBits};
use keystation_core::keygen::Signer;
use keystation_x509::{Certificate, CertificateOptions, DistinguishedName, build_csr, pem};

const PASSWORD: &[u8] = b"ca password";
const HOUR: Duration = Duration::from_secs(3600);

fn options(algorithm: KeyAlgorithm) -> CaInitOptions {
    // Fewer PBKDF2 rounds than step-ca's 100 000 keep the unoptimised tests quick;
    // tests/keys.rs checks the default count.
    CaInitOptions {
        algorithm,
        key_file_iterations: 10_000,
        ..CaInitOptions::new("Keystation Test")
    }
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A CSR for a fresh key of `algorithm` naming one SAN of each kind.
fn csr(algorithm: KeyAlgorithm, seed: u64) -> Vec<u8> {
    let mut key = signer(algorithm, seed);
    let options = CertificateOptions {
        subject_alt_names: vec![
            SubjectAltName::Dns("host.example.test".into()),
            SubjectAltName::Ip("192.0.2.10".parse().unwrap()),
            SubjectAltName::Email("ops@example.test".into()),
            SubjectAltName::Uri("spiffe://example.test/host".into()),
        ],
        ..CertificateOptions::default()
    };
    build_csr(&mut key, &DistinguishedName::common_name("host.example.test"), &options).unwrap()
}

fn write_ca(dir: &Path, ca: &CaMaterial) {
    write(dir, "root.pem", ca.root_pem());
    write(dir, "intermediate.pem", ca.intermediate_pem());
}

/// `openssl verify -CAfile root.pem -untrusted intermediate.pem <leaf>` for `purpose`.
fn openssl_verifies(dir: &Path, leaf: &str, purpose: &str) -> (bool, String) {
    let (ok, out) = openssl(
        dir,
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "intermediate.pem",
            "-purpose",
            purpose,
            leaf,
        ],
    );
    (ok && out.contains(&format!("{leaf}: OK")), out)
}

fn text(dir: &Path, file: &str) -> String {
    let (ok, out) = openssl(dir, &["x509", "-in", file, "-noout", "-text"]);
    assert!(ok, "{out}");
    out
}

#[test]
fn init_issue_and_verify_with_openssl_for_every_ca_algorithm() {
    let dir = tempfile::tempdir().unwrap();
    for (i, algorithm) in CA_ALGORITHMS.into_iter().enumerate() {
        let ca = init_ca(&options(algorithm), PASSWORD, IntermediateKey::Generate).unwrap();
        write_ca(dir.path(), &ca);

        // The CA certificates as `step ca init` makes them.
        let root = Certificate::from_der(&ca.root_der).unwrap();
        let intermediate = Certificate::from_der(&ca.intermediate_der).unwrap();
        assert_eq!(root.subject(), "CN=Keystation Test Root CA,O=Keystation Test");
        assert_eq!(root.issuer(), root.subject());
        assert_eq!(intermediate.subject(), "CN=Keystation Test Intermediate CA,O=Keystation Test");
        assert_eq!(intermediate.issuer(), root.subject());
        for cert in [&root, &intermediate] {
            assert_eq!(cert.not_after() - cert.not_before(), 10 * 365 * 86_400);
            assert!(cert.is_ca());
        }
        assert_eq!(ca.root_fingerprint().len(), 64);
        let root_text = text(dir.path(), "root.pem");
        let int_text = text(dir.path(), "intermediate.pem");
        assert!(root_text.contains("CA:TRUE, pathlen:1"), "{root_text}");
        assert!(int_text.contains("CA:TRUE, pathlen:0"), "{int_text}");
        for t in [&root_text, &int_text] {
            assert!(t.contains("Certificate Sign, CRL Sign"), "{t}");
            assert!(t.contains("X509v3 Subject Key Identifier"), "{t}");
        }
        assert!(int_text.contains("X509v3 Authority Key Identifier"), "{int_text}");
        let (ok, out) = openssl(dir.path(), &["verify", "-CAfile", "root.pem", "intermediate.pem"]);
        assert!(ok, "{algorithm}: {out}");

        // The key files open with the password and hold the certificates' keys.
        let root_key = CaKey::from_pem(&ca.root_key_pem, Some(PASSWORD)).unwrap();
        assert_eq!(root_key.public_key(), &root.public_key().unwrap());
        let int_key =
            CaKey::from_pem(ca.intermediate_key_pem.as_deref().unwrap(), Some(PASSWORD)).unwrap();
        assert_eq!(int_key.public_key(), &intermediate.public_key().unwrap());
        assert_eq!(ca.issuer.public_key(), int_key.public_key());

        // A leaf from a CSR of another algorithm.
        let leaf_algorithm = CA_ALGORITHMS[(i + 1) % CA_ALGORITHMS.len()];
        let checked = check_csr(&csr(leaf_algorithm, 100 + i as u64)).unwrap();
        let now = SystemTime::now();
        let template = LeafTemplate::from_csr(&checked, now + 24 * HOUR);
        let issued = ca.issuer.issue_leaf_at(&template, now).unwrap();
        assert_eq!(unix(issued.not_before), unix(now) - 60, "backdated one minute");
        assert_eq!(issued.pem, pem::encode("CERTIFICATE", &issued.der));
        write(dir.path(), "leaf.pem", &issued.pem);
        for purpose in ["sslserver", "sslclient"] {
            let (ok, out) = openssl_verifies(dir.path(), "leaf.pem", purpose);
            assert!(ok, "{algorithm} CA, {leaf_algorithm} leaf, {purpose}: {out}");
        }
        ca.issuer.verify_issued(&issued.der).unwrap();

        let leaf = Certificate::from_der(&issued.der).unwrap();
        assert_eq!(leaf.subject(), "CN=host.example.test");
        assert_eq!(leaf.issuer(), intermediate.subject());
        assert_eq!(leaf.public_key().unwrap(), checked.public_key);
        assert_eq!(Serial::from_bytes(leaf.serial()).unwrap(), issued.serial);
        let leaf_text = text(dir.path(), "leaf.pem");
        for part in [
            "DNS:host.example.test, email:ops@example.test, IP Address:192.0.2.10, URI:spiffe://example.test/host",
            "TLS Web Server Authentication, TLS Web Client Authentication",
            "X509v3 Subject Key Identifier",
            "X509v3 Key Usage: critical",
        ] {
            assert!(leaf_text.contains(part), "{leaf_algorithm}: no {part:?} in {leaf_text}");
        }
        let rsa_leaf = matches!(leaf_algorithm, KeyAlgorithm::Rsa(_));
        assert_eq!(leaf_text.contains("Digital Signature, Key Encipherment"), rsa_leaf);
        assert!(!leaf_text.contains("CA:TRUE"));
        // The leaf's AKI is the intermediate's SKI.
        let ski = intermediate.extension("2.5.29.14").unwrap()[2..].to_vec();
        let aki = leaf.extension("2.5.29.35").unwrap();
        assert!(aki.windows(ski.len()).any(|w| w == ski.as_slice()));
    }
}

/// The intermediate's key held by another signer (the lead passes a PIV slot's): the root
/// certifies its public key and the issuer signs through it. No intermediate key file.
#[test]
fn intermediate_key_on_an_external_signer() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (KeyAlgorithm::NistP256, KeyAlgorithm::NistP256),
        (KeyAlgorithm::NistP256, KeyAlgorithm::Rsa(RsaBits::Rsa2048)),
        (KeyAlgorithm::Rsa(RsaBits::Rsa2048), KeyAlgorithm::Ed25519),
    ];
    for (i, (root_algorithm, card_algorithm)) in cases.into_iter().enumerate() {
        let card = signer(card_algorithm, 200 + i as u64);
        let card_key = card.public_key().clone();
        let ca =
            init_ca(&options(root_algorithm), PASSWORD, IntermediateKey::Signer(Box::new(card)))
                .unwrap();
        assert!(ca.intermediate_key_pem.is_none());
        let intermediate = Certificate::from_der(&ca.intermediate_der).unwrap();
        assert_eq!(intermediate.public_key().unwrap(), card_key);
        write_ca(dir.path(), &ca);
        let checked = check_csr(&csr(KeyAlgorithm::NistP256, 300 + i as u64)).unwrap();
        let issued = ca
            .issuer
            .issue_leaf(&LeafTemplate::from_csr(&checked, SystemTime::now() + HOUR))
            .unwrap();
        write(dir.path(), "leaf.pem", &issued.pem);
        let (ok, out) = openssl_verifies(dir.path(), "leaf.pem", "sslclient");
        assert!(ok, "{root_algorithm} root, {card_algorithm} card: {out}");
    }
}

#[test]
fn renew_and_rekey_keep_names_and_duration() {
    let dir = tempfile::tempdir().unwrap();
    let ca =
        init_ca(&options(KeyAlgorithm::NistP256), PASSWORD, IntermediateKey::Generate).unwrap();
    write_ca(dir.path(), &ca);
    let checked = check_csr(&csr(KeyAlgorithm::Ed25519, 400)).unwrap();
    let issued_at = SystemTime::now() - 2 * HOUR;
    let template = LeafTemplate::from_csr(&checked, issued_at + 3 * HOUR);
    let old = ca.issuer.issue_leaf_at(&template, issued_at).unwrap();
    let old_cert = Certificate::from_der(&old.der).unwrap();
    let length = old_cert.not_after() - old_cert.not_before();

    let now = SystemTime::now();
    let renewed = ca.issuer.renew(&old.der, now).unwrap();
    let new_cert = Certificate::from_der(&renewed.der).unwrap();
    assert_ne!(renewed.serial, old.serial);
    assert_eq!(new_cert.subject(), old_cert.subject());
    assert_eq!(new_cert.subject_alt_names(), old_cert.subject_alt_names());
    assert_eq!(new_cert.spki_der(), old_cert.spki_der());
    assert_eq!(new_cert.extension("2.5.29.14"), old_cert.extension("2.5.29.14"));
    assert_eq!(new_cert.not_before(), unix(now) - 60);
    assert_eq!(new_cert.not_after() - new_cert.not_before(), length);
    write(dir.path(), "renewed.pem", &renewed.pem);
    let (ok, out) = openssl_verifies(dir.path(), "renewed.pem", "sslserver");
    assert!(ok, "{out}");

    let new_key = signer(KeyAlgorithm::NistP384, 401);
    let new_spki = new_key.public_key().to_spki_der();
    let rekeyed = ca.issuer.rekey(&old.der, &new_spki, now).unwrap();
    let rekeyed_cert = Certificate::from_der(&rekeyed.der).unwrap();
    assert_eq!(rekeyed_cert.public_key().unwrap(), *new_key.public_key());
    assert_eq!(rekeyed_cert.subject(), old_cert.subject());
    assert_eq!(rekeyed_cert.subject_alt_names(), old_cert.subject_alt_names());
    assert_ne!(rekeyed_cert.extension("2.5.29.14"), old_cert.extension("2.5.29.14"));
    assert_eq!(rekeyed_cert.not_after() - rekeyed_cert.not_before(), length);
    write(dir.path(), "rekeyed.pem", &rekeyed.pem);
    let (ok, out) = openssl_verifies(dir.path(), "rekeyed.pem", "sslserver");
    assert!(ok, "{out}");
    // A rekey to a key the CA does not certify is refused.
    let small = csr_spki_rsa1024(dir.path());
    assert!(matches!(
        ca.issuer.rekey(&old.der, &small, now),
        Err(Error::RsaKeyTooSmall { bits: 1024 })
    ));
}

/// The SPKI of an RSA-1024 key made by openssl.
fn csr_spki_rsa1024(dir: &Path) -> Vec<u8> {
    let (ok, out) = openssl(
        dir,
        &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", "small.pem"],
    );
    assert!(ok, "{out}");
    let (ok, out) = openssl(
        dir,
        &["pkey", "-in", "small.pem", "-pubout", "-outform", "DER", "-out", "small.der"],
    );
    assert!(ok, "{out}");
    std::fs::read(dir.join("small.der")).unwrap()
}

#[test]
fn crls_verify_in_openssl_and_revoke_leaves() {
    let dir = tempfile::tempdir().unwrap();
    for algorithm in
        [KeyAlgorithm::NistP256, KeyAlgorithm::Rsa(RsaBits::Rsa2048), KeyAlgorithm::Ed25519]
    {
        let ca = init_ca(&options(algorithm), PASSWORD, IntermediateKey::Generate).unwrap();
        write_ca(dir.path(), &ca);
        write(dir.path(), "chain.pem", format!("{}{}", ca.intermediate_pem(), ca.root_pem()));
        let checked = check_csr(&csr(KeyAlgorithm::NistP256, 500)).unwrap();
        let template = LeafTemplate::from_csr(&checked, SystemTime::now() + HOUR);
        let revoked = ca.issuer.issue_leaf(&template).unwrap();
        let kept = ca.issuer.issue_leaf(&template).unwrap();
        write(dir.path(), "revoked.pem", &revoked.pem);
        write(dir.path(), "kept.pem", &kept.pem);

        let now = SystemTime::now();
        let crl = ca
            .issuer
            .issue_crl(&CrlTemplate {
                number: 42,
                this_update: now,
                next_update: now + 24 * HOUR,
                revoked: vec![
                    RevokedEntry {
                        serial: revoked.serial.clone(),
                        revoked_at: now - HOUR,
                        reason: RevocationReason::KeyCompromise,
                    },
                    RevokedEntry {
                        serial: Serial::from_decimal("1234567890123456789").unwrap(),
                        revoked_at: now,
                        reason: RevocationReason::Unspecified,
                    },
                    RevokedEntry {
                        serial: Serial::from_hex("0a0b").unwrap(),
                        revoked_at: now,
                        reason: RevocationReason::Superseded,
                    },
                ],
            })
            .unwrap();
        assert!(crl.pem.starts_with("-----BEGIN X509 CRL-----"));
        write(dir.path(), "crl.pem", &crl.pem);
        let (ok, out) = openssl(
            dir.path(),
            &["crl", "-in", "crl.pem", "-CAfile", "chain.pem", "-verify", "-noout", "-text"],
        );
        assert!(ok && out.contains("verify OK"), "{algorithm}: {out}");
        for part in [
            "Version 2 (0x1)",
            "X509v3 CRL Number: \n                42",
            "X509v3 Authority Key Identifier",
            "Key Compromise",
            "Superseded",
            "Next Update",
            "Issuer: O = Keystation Test, CN = Keystation Test Intermediate CA",
            &format!("Serial Number: {}", revoked.serial.to_hex().to_uppercase()),
            "Serial Number: 112210F47DE98115",
            "Serial Number: 0A0B",
        ] {
            assert!(out.contains(part), "{algorithm}: no {part:?} in {out}");
        }
        // Reason "unspecified" is written as no reason code (RFC 5280 §5.3.1).
        assert_eq!(out.matches("X509v3 CRL Reason Code").count(), 2, "{out}");

        // openssl applies it: the revoked leaf fails, the other passes.
        let check = |leaf: &str| {
            openssl(
                dir.path(),
                &[
                    "verify",
                    "-crl_check",
                    "-CRLfile",
                    "crl.pem",
                    "-CAfile",
                    "root.pem",
                    "-untrusted",
                    "intermediate.pem",
                    leaf,
                ],
            )
        };
        let (ok, out) = check("revoked.pem");
        assert!(!ok && out.contains("certificate revoked"), "{algorithm}: {out}");
        let (ok, out) = check("kept.pem");
        assert!(ok && out.contains("kept.pem: OK"), "{algorithm}: {out}");

        // Another CA's root does not verify it.
        let other = init_ca(&options(algorithm), PASSWORD, IntermediateKey::Generate).unwrap();
        write(dir.path(), "other.pem", format!("{}{}", other.intermediate_pem(), other.root_pem()));
        let (ok, out) = openssl(
            dir.path(),
            &["crl", "-in", "crl.pem", "-CAfile", "other.pem", "-verify", "-noout"],
        );
        assert!(!ok || !out.contains("verify OK"), "{algorithm}: {out}");
    }
}

#[test]
fn the_issuer_serves_many_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Issuer>();
    let ca =
        init_ca(&options(KeyAlgorithm::NistP256), PASSWORD, IntermediateKey::Generate).unwrap();
    let issuer = Arc::new(ca.issuer);
    let checked = check_csr(&csr(KeyAlgorithm::NistP256, 600)).unwrap();
    let template = LeafTemplate::from_csr(&checked, SystemTime::now() + HOUR);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let issuer = Arc::clone(&issuer);
            let template = template.clone();
            std::thread::spawn(move || {
                (0..5).map(|_| issuer.issue_leaf(&template).unwrap()).collect::<Vec<_>>()
            })
        })
        .collect();
    let mut serials = std::collections::HashSet::new();
    for handle in handles {
        for issued in handle.join().unwrap() {
            issuer.verify_issued(&issued.der).unwrap();
            assert!(serials.insert(issued.serial));
        }
    }
    assert_eq!(serials.len(), 20);
}

#[test]
fn templates_and_signers_that_cannot_work_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca =
        init_ca(&options(KeyAlgorithm::NistP256), PASSWORD, IntermediateKey::Generate).unwrap();
    write_ca(dir.path(), &ca);
    let checked = check_csr(&csr(KeyAlgorithm::NistP256, 700)).unwrap();
    let now = SystemTime::now();

    // No name at all.
    let mut template = LeafTemplate::from_csr(&checked, now + HOUR);
    template.common_name = None;
    template.sans.clear();
    assert!(matches!(ca.issuer.issue_leaf(&template), Err(Error::InvalidTemplate(_))));
    // Ends before it starts.
    let template = LeafTemplate::from_csr(&checked, now - HOUR);
    assert!(matches!(ca.issuer.issue_leaf(&template), Err(Error::InvalidTemplate(_))));
    // A key the CA does not certify.
    let template = LeafTemplate::new(csr_spki_rsa1024(dir.path()), now + HOUR);
    assert!(matches!(ca.issuer.issue_leaf(&template), Err(Error::RsaKeyTooSmall { bits: 1024 })));

    // SANs only: an empty subject and a critical SAN extension (RFC 5280 §4.2.1.6).
    let mut template = LeafTemplate::from_csr(&checked, now + HOUR);
    template.common_name = None;
    template.extended_key_usage = vec![keystation_ca::ExtendedKeyUsage::ClientAuth];
    template.key_usage = Some(vec![KeyUsage::DigitalSignature, KeyUsage::KeyAgreement]);
    let issued = ca.issuer.issue_leaf(&template).unwrap();
    write(dir.path(), "nameless.pem", &issued.pem);
    let t = text(dir.path(), "nameless.pem");
    assert!(t.contains("X509v3 Subject Alternative Name: critical"), "{t}");
    assert!(t.contains("Digital Signature, Key Agreement"), "{t}");
    assert!(!t.contains("TLS Web Server Authentication"), "{t}");
    let (ok, out) = openssl_verifies(dir.path(), "nameless.pem", "sslclient");
    assert!(ok, "{out}");

    // The signer must hold the intermediate's key; the first certificate must be a CA.
    let other = Box::new(signer(KeyAlgorithm::NistP256, 701));
    let refused = Issuer::new(vec![ca.intermediate_der.clone()], other);
    assert!(matches!(refused, Err(Error::SignerMismatch(_))), "{refused:?}");
    let int_key =
        CaKey::from_pem(ca.intermediate_key_pem.as_deref().unwrap(), Some(PASSWORD)).unwrap();
    let refused = Issuer::new(vec![issued.der.clone()], Box::new(int_key));
    assert!(matches!(refused, Err(Error::Certificate(_))), "{refused:?}");
    // From PEM, with the root after the intermediate.
    let int_key =
        CaKey::from_pem(ca.intermediate_key_pem.as_deref().unwrap(), Some(PASSWORD)).unwrap();
    let chain = format!("{}{}", ca.intermediate_pem(), ca.root_pem());
    let again = Issuer::from_pem(&chain, Box::new(int_key)).unwrap();
    assert_eq!(again.chain_der().len(), 2);
    assert_eq!(again.chain_pem(), chain);
    again.verify_issued(&issued.der).unwrap();
    // Not issued here.
    let other =
        init_ca(&options(KeyAlgorithm::NistP256), PASSWORD, IntermediateKey::Generate).unwrap();
    assert!(other.issuer.verify_issued(&issued.der).is_err());
}

/// step-ca's provisioner extension rides along in issued and renewed leaves.
#[test]
fn provisioner_extension_in_leaves() {
    use keystation_ca::{CustomExtension, ProvisionerExtension};
    let dir = tempfile::tempdir().unwrap();
    let ca =
        init_ca(&options(KeyAlgorithm::NistP256), PASSWORD, IntermediateKey::Generate).unwrap();
    write_ca(dir.path(), &ca);
    let checked = check_csr(&csr(KeyAlgorithm::NistP256, 800)).unwrap();
    let extension = ProvisionerExtension {
        type_code: 1,
        name: "admin@example.test".into(),
        credential_id: "Nq6N3m1k".into(),
        key_value_pairs: Vec::new(),
    };
    let mut template = LeafTemplate::from_csr(&checked, SystemTime::now() + HOUR);
    template.extra_extensions.push(extension.to_extension().unwrap());
    let issued = ca.issuer.issue_leaf(&template).unwrap();
    assert_eq!(
        ProvisionerExtension::from_certificate(&issued.der).unwrap(),
        Some(extension.clone())
    );
    write(dir.path(), "leaf.pem", &issued.pem);
    let t = text(dir.path(), "leaf.pem");
    assert!(t.contains("1.3.6.1.4.1.37476.9000.64.1:"), "{t}");
    let (ok, out) = openssl_verifies(dir.path(), "leaf.pem", "sslserver");
    assert!(ok, "{out}");
    let renewed = ca.issuer.renew(&issued.der, SystemTime::now()).unwrap();
    assert_eq!(ProvisionerExtension::from_certificate(&renewed.der).unwrap(), Some(extension));
    // An extension the issuer writes itself cannot be given again.
    template.extra_extensions.push(CustomExtension {
        oid: "2.5.29.17".into(),
        critical: false,
        value: vec![0x30, 0x00],
    });
    assert!(matches!(ca.issuer.issue_leaf(&template), Err(Error::InvalidTemplate(_))));
    // Leaves without it.
    let plain = ca.issuer.issue_leaf(&LeafTemplate::from_csr(&checked, SystemTime::now() + HOUR));
    assert_eq!(ProvisionerExtension::from_certificate(&plain.unwrap().der).unwrap(), None);
}

/// A leaf with a permanent identifier (RFC 4043), as ACME's device-attest-01 issues it:
/// openssl decodes the otherName, and keystation reads back the same value.
#[test]
fn permanent_identifier_san_reads_back_and_openssl_decodes_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca =
        init_ca(&options(KeyAlgorithm::NistP256), PASSWORD, IntermediateKey::Generate).unwrap();
    write_ca(dir.path(), &ca);
    let checked = check_csr(&csr(KeyAlgorithm::NistP256, 7)).unwrap();
    let now = SystemTime::now();
    let mut template = LeafTemplate::new(checked.spki_der.clone(), now + HOUR);
    template.sans = vec![keystation_x509::SubjectAltName::PermanentIdentifier("12345678".into())];
    let issued = ca.issuer.issue_leaf_at(&template, now).unwrap();
    let cert = Certificate::from_der(&issued.der).unwrap();
    assert_eq!(
        cert.subject_alt_names(),
        vec![keystation_x509::SubjectAltName::PermanentIdentifier("12345678".into())]
    );
    write(dir.path(), "device.pem", &issued.pem);
    let (ok, out) = openssl(dir.path(), &["x509", "-noout", "-text", "-in", "device.pem"]);
    assert!(ok, "{out}");
    // openssl 3.0 names the otherName but prints its value as "<unsupported>" …
    assert!(out.contains("othername: Permanent Identifier"), "{out}");
    // No subject, so the SAN extension is critical (RFC 5280 §4.2.1.6).
    assert!(out.contains("X509v3 Subject Alternative Name: critical"), "{out}");
    // … so the value is read from openssl's parse of the extension's DER.
    let (ok, der) = openssl(
        dir.path(),
        &["x509", "-in", "device.pem", "-outform", "DER", "-out", "device.der"],
    );
    assert!(ok, "{der}");
    let (ok, tree) =
        openssl(dir.path(), &["asn1parse", "-inform", "DER", "-in", "device.der", "-dump"]);
    assert!(ok, "{tree}");
    // The extension's hex dump shows the UTF8String in its text column.
    let san = tree.lines().skip_while(|l| !l.contains("Subject Alternative Name")).take(5);
    assert!(san.collect::<String>().contains("12345678"), "{tree}");
}
