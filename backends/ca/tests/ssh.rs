//! SSH certificates signed here, read by `ssh-keygen -L` (which checks the CA signature
//! as it parses), and read back here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{signer, ssh_keygen, write};
use keystation_ca::{
    CaKey, DEFAULT_USER_EXTENSIONS, Error, SshCa, SshCertTemplate, SshCertType, SshCertificate,
    init_ssh_ca, init_ssh_ca_with,
};
use keystation_core::key::KeyAlgorithm;
use keystation_core::keygen::Signer;

const HOUR: Duration = Duration::from_secs(3600);

/// A new key made by ssh-keygen (`-t type`, extra args); returns its public key line.
fn ssh_key(dir: &Path, name: &str, args: &[&str]) -> String {
    let mut all = vec!["-q", "-N", "", "-f", name];
    all.extend(args);
    let (ok, out) = ssh_keygen(dir, &all);
    assert!(ok, "{out}");
    std::fs::read_to_string(dir.join(format!("{name}.pub"))).unwrap()
}

/// `ssh-keygen -L -f` on a certificate line.
fn list(dir: &Path, name: &str, line: &str) -> (bool, String) {
    write(dir, name, format!("{line}\n"));
    ssh_keygen(dir, &["-L", "-f", name])
}

/// `ssh-keygen -l -f` (the SHA-256 fingerprint) of a public key line.
fn fingerprint(dir: &Path, line: &str) -> String {
    write(dir, "fp.pub", format!("{line}\n"));
    let (ok, out) = ssh_keygen(dir, &["-l", "-E", "sha256", "-f", "fp.pub"]);
    assert!(ok, "{out}");
    out.split_whitespace().nth(1).unwrap().to_owned()
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// ssh-keygen's local-time rendering of validity, as `-L` prints it.
fn local(t: SystemTime) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("date")
        .args(["-d", &format!("@{}", unix(t)), "+%Y-%m-%dT%H:%M:%S"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn user_and_host_certificates_read_by_ssh_keygen() {
    let dir = tempfile::tempdir().unwrap();
    for algorithm in [KeyAlgorithm::NistP256, KeyAlgorithm::Ed25519, KeyAlgorithm::NistP384] {
        let material = init_ssh_ca_with(algorithm, b"ssh password", 10_000).unwrap();
        let ca = &material.ca;
        assert_eq!(ca.user_public_key(), Some(material.user_public_key.as_str()));
        assert_ne!(material.user_public_key, material.host_public_key);
        // The key files are the CA keys.
        let user_key = CaKey::from_pem(&material.user_key_pem, Some(b"ssh password")).unwrap();
        assert_eq!(user_key.openssh_public_key().unwrap(), material.user_public_key);

        for (kind, args) in [
            ("ed25519", &["-t", "ed25519"][..]),
            ("ecdsa", &["-t", "ecdsa", "-b", "256"][..]),
            ("rsa", &["-t", "rsa", "-b", "2048"][..]),
        ] {
            let name = format!("{algorithm}-{kind}");
            let subject = ssh_key(dir.path(), &name, args);
            let now = SystemTime::now();
            let after = now - Duration::from_secs(60);
            let before = now + 16 * HOUR;
            let template = SshCertTemplate::new(
                SshCertType::User,
                subject.clone(),
                "alice@example.test",
                vec!["alice".into(), "admin".into()],
                after,
                before,
            );
            let cert = ca.sign(&template).unwrap();
            assert!(cert.line.contains("-cert-v01@openssh.com "), "{}", cert.line);
            let (ok, out) = list(dir.path(), &format!("{name}-cert.pub"), &cert.line);
            assert!(ok, "{name}: {out}");
            assert!(out.contains("user certificate"), "{out}");
            assert!(out.contains("Key ID: \"alice@example.test\""), "{out}");
            assert!(out.contains(&format!("Serial: {}", cert.serial)), "{out}");
            assert!(
                out.contains(&format!("Valid: from {} to {}", local(after), local(before))),
                "{out}"
            );
            let ca_fp = fingerprint(dir.path(), &material.user_public_key);
            let signing_ca =
                out.lines().find(|l| l.trim_start().starts_with("Signing CA:")).unwrap();
            assert!(signing_ca.contains(&ca_fp), "{ca_fp}: {out}");
            let principals = out.split("Principals:").nth(1).unwrap();
            assert!(principals.contains("alice") && principals.contains("admin"), "{out}");
            for extension in DEFAULT_USER_EXTENSIONS {
                assert!(out.contains(extension), "{extension}: {out}");
            }
            assert!(out.contains("Critical Options: (none)"), "{out}");
            // The certified key is the subject's.
            let subject_fp = fingerprint(dir.path(), &subject);
            assert!(out.contains(&subject_fp), "{out}");

            // Read back.
            let parsed = SshCertificate::parse(&cert.line).unwrap();
            assert_eq!(parsed, cert);
            assert_eq!(parsed.cert_type, SshCertType::User);
            assert_eq!(parsed.key_id, "alice@example.test");
            assert_eq!(parsed.principals, ["alice", "admin"]);
            assert_eq!(unix(parsed.valid_after), unix(after));
            assert_eq!(unix(parsed.valid_before), unix(before));
            assert_eq!(parsed.signature_key, material.user_public_key);
            let subject_fields: Vec<&str> = subject.split_whitespace().take(2).collect();
            assert_eq!(parsed.public_key, subject_fields.join(" "));
            assert_eq!(parsed.extensions.len(), 5);
            assert!(parsed.serial != 0);
            ca.verify_at(&cert.line, now).unwrap();
        }

        // A host certificate: no extensions by default; critical options as given.
        let host = ssh_key(dir.path(), &format!("{algorithm}-host"), &["-t", "ed25519"]);
        let now = SystemTime::now();
        let mut template = SshCertTemplate::new(
            SshCertType::Host,
            host,
            "web01",
            vec!["web01.example.test".into()],
            now,
            now + 30 * 24 * HOUR,
        );
        template.serial = Some(4242);
        let cert = ca.sign(&template).unwrap();
        let (ok, out) = list(dir.path(), "host-cert.pub", &cert.line);
        assert!(ok, "{out}");
        assert!(out.contains("host certificate"), "{out}");
        assert!(out.contains("Serial: 4242"), "{out}");
        assert!(out.contains("Extensions: (none)"), "{out}");
        let host_fp = fingerprint(dir.path(), &material.host_public_key);
        assert!(out.contains(&host_fp), "signed by the host CA key: {out}");
    }
}

#[test]
fn options_and_extensions_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let ca = SshCa::new(Some(Box::new(signer(KeyAlgorithm::NistP256, 1))), None).unwrap();
    let subject = ssh_key(dir.path(), "k", &["-t", "ed25519"]);
    let now = SystemTime::now();
    let mut template = SshCertTemplate::new(
        SshCertType::User,
        subject,
        "bob",
        vec!["bob".into()],
        now,
        now + HOUR,
    );
    template.critical_options = BTreeMap::from([
        ("force-command".to_owned(), "/usr/bin/true".to_owned()),
        ("source-address".to_owned(), "192.0.2.0/24".to_owned()),
    ]);
    template.extensions = Some(BTreeMap::from([("permit-pty".to_owned(), String::new())]));
    let cert = ca.sign(&template).unwrap();
    let (ok, out) = list(dir.path(), "k-cert.pub", &cert.line);
    assert!(ok, "{out}");
    assert!(out.contains("force-command /usr/bin/true"), "{out}");
    assert!(out.contains("source-address 192.0.2.0/24"), "{out}");
    assert!(out.contains("permit-pty") && !out.contains("permit-X11-forwarding"), "{out}");
    let parsed = SshCertificate::parse(&cert.line).unwrap();
    assert_eq!(parsed.critical_options, template.critical_options);
    assert_eq!(Some(parsed.extensions), template.extensions);
    // No host CA configured.
    template.cert_type = SshCertType::Host;
    assert!(matches!(ca.sign(&template), Err(Error::NoSshCa("host"))));
}

#[test]
fn verification_renewal_and_rekey() {
    let dir = tempfile::tempdir().unwrap();
    let ca = SshCa::new(
        Some(Box::new(signer(KeyAlgorithm::Ed25519, 2))),
        Some(Box::new(signer(KeyAlgorithm::NistP256, 3))),
    )
    .unwrap();
    let other = SshCa::new(
        Some(Box::new(signer(KeyAlgorithm::Ed25519, 4))),
        Some(Box::new(signer(KeyAlgorithm::NistP256, 5))),
    )
    .unwrap();
    let subject = ssh_key(dir.path(), "k", &["-t", "ecdsa"]);
    let start = SystemTime::now() - 2 * HOUR;
    let template = SshCertTemplate::new(
        SshCertType::Host,
        subject.clone(),
        "h1",
        vec!["h1.example.test".into()],
        start,
        start + 3 * HOUR,
    );
    let cert = ca.sign(&template).unwrap();
    let now = SystemTime::now();
    ca.verify_at(&cert.line, now).unwrap();
    ca.verify_issued(&cert.line).unwrap();
    let expired = ca.verify_at(&cert.line, start + 4 * HOUR);
    assert!(
        matches!(&expired, Err(Error::SshCertificateRejected(m)) if m == "expired"),
        "{expired:?}"
    );
    let early = ca.verify_at(&cert.line, start - HOUR);
    assert!(matches!(&early, Err(Error::SshCertificateRejected(m)) if m == "not valid yet"));
    let foreign = other.verify_at(&cert.line, now);
    assert!(matches!(&foreign, Err(Error::SshCertificateRejected(m)) if m.contains("host key")));
    // A changed certificate (the key ID, inside the signed part) fails.
    let mut blob =
        keystation_core::base64::decode(cert.line.split_whitespace().nth(1).unwrap()).unwrap();
    let at = blob.windows(2).position(|w| w == b"h1").unwrap();
    blob[at] = b'H';
    let forged = format!(
        "{} {}",
        cert.line.split_whitespace().next().unwrap(),
        keystation_core::base64::encode(&blob)
    );
    let refused = ca.verify_issued(&forged);
    assert!(
        matches!(&refused, Err(Error::SshCertificateRejected(m)) if m.contains("signature")),
        "{refused:?}"
    );
    let (ok, out) = list(dir.path(), "forged-cert.pub", &forged);
    assert!(!ok, "ssh-keygen accepted a forged certificate: {out}");

    // Renewal: same key, names, options and length; new serial; starts a minute ago.
    let renewed = ca.renew(&cert.line, now).unwrap();
    assert_ne!(renewed.serial, cert.serial);
    assert_eq!(renewed.public_key, cert.public_key);
    assert_eq!(renewed.key_id, cert.key_id);
    assert_eq!(renewed.principals, cert.principals);
    assert_eq!(renewed.cert_type, SshCertType::Host);
    assert_eq!(unix(renewed.valid_after), unix(now) - 60);
    assert_eq!(
        unix(renewed.valid_before) - unix(renewed.valid_after),
        unix(cert.valid_before) - unix(cert.valid_after)
    );
    let (ok, out) = list(dir.path(), "renewed-cert.pub", &renewed.line);
    assert!(ok, "{out}");
    // Rekey to another key.
    let new_key = ssh_key(dir.path(), "k2", &["-t", "ed25519"]);
    let rekeyed = ca.rekey(&cert.line, &new_key, now).unwrap();
    assert_ne!(rekeyed.public_key, cert.public_key);
    assert!(new_key.starts_with(&rekeyed.public_key));
    assert_eq!(rekeyed.principals, cert.principals);
    // Only certificates this CA signed.
    assert!(other.renew(&cert.line, now).is_err());
}

#[test]
fn refusals() {
    let dir = tempfile::tempdir().unwrap();
    let ca = SshCa::new(Some(Box::new(signer(KeyAlgorithm::NistP256, 6))), None).unwrap();
    let now = SystemTime::now();
    let good = ssh_key(dir.path(), "k", &["-t", "ed25519"]);
    let template = |key: &str| {
        SshCertTemplate::new(SshCertType::User, key, "id", vec!["u".into()], now, now + HOUR)
    };
    let small = ssh_key(dir.path(), "small", &["-t", "rsa", "-b", "1024"]);
    assert!(matches!(ca.sign(&template(&small)), Err(Error::RsaKeyTooSmall { bits: 1024 })));
    assert!(matches!(ca.sign(&template("ssh-ed25519 AAAA")), Err(Error::Ssh(_))));
    let mut t = template(&good);
    t.principals.clear();
    assert!(matches!(ca.sign(&t), Err(Error::InvalidTemplate(_))));
    let mut t = template(&good);
    t.key_id.clear();
    assert!(matches!(ca.sign(&t), Err(Error::InvalidTemplate(_))));
    let mut t = template(&good);
    t.valid_before = t.valid_after;
    assert!(matches!(ca.sign(&t), Err(Error::InvalidTemplate(_))));
    let mut t = template(&good);
    t.serial = Some(0);
    assert!(matches!(ca.sign(&t), Err(Error::InvalidTemplate(_))));
    assert!(matches!(SshCertificate::parse(&good), Err(Error::Ssh(_))), "a key is no certificate");
    assert!(matches!(
        SshCa::new(Some(Box::new(signer(KeyAlgorithm::X25519, 7))), None),
        Err(Error::UnsupportedCaKey(_))
    ));
}

#[test]
fn the_ssh_ca_serves_many_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<SshCa>();
    let dir = tempfile::tempdir().unwrap();
    let ca = Arc::new(SshCa::new(Some(Box::new(signer(KeyAlgorithm::Ed25519, 8))), None).unwrap());
    let key = ssh_key(dir.path(), "k", &["-t", "ed25519"]);
    let now = SystemTime::now();
    let template =
        SshCertTemplate::new(SshCertType::User, key, "id", vec!["u".into()], now, now + HOUR);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (ca, template) = (Arc::clone(&ca), template.clone());
            std::thread::spawn(move || {
                (0..5).map(|_| ca.sign(&template).unwrap()).collect::<Vec<_>>()
            })
        })
        .collect();
    let mut serials = std::collections::HashSet::new();
    for handle in handles {
        for cert in handle.join().unwrap() {
            ca.verify_at(&cert.line, now).unwrap();
            assert!(serials.insert(cert.serial));
        }
    }
}

/// `init_ssh_ca` with step-ca's key-file defaults; the P-256 key file opens in OpenSSH too.
#[test]
fn ssh_ca_key_files_open_in_ssh_keygen() {
    let dir = tempfile::tempdir().unwrap();
    let material = init_ssh_ca(KeyAlgorithm::NistP256, b"ssh password").unwrap();
    write(dir.path(), "ssh_user_ca_key", &material.user_key_pem);
    std::fs::set_permissions(
        dir.path().join("ssh_user_ca_key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let (ok, out) = ssh_keygen(dir.path(), &["-y", "-P", "ssh password", "-f", "ssh_user_ca_key"]);
    assert!(ok, "{out}");
    assert_eq!(out.trim(), material.user_public_key);
    assert!(matches!(
        init_ssh_ca(KeyAlgorithm::X25519, b"pw"),
        Err(Error::UnsupportedCaKey(KeyAlgorithm::X25519))
    ));
    // The CA key as a plain signer still gives the same public line.
    let key = CaKey::from_pem(&material.host_key_pem, Some(b"ssh password")).unwrap();
    assert_eq!(key.public_key().to_openssh(None).unwrap(), material.host_public_key);
}

/// An RSA CA key (a card's, say) signs as `rsa-sha2-256`, as step-ca does.
#[test]
fn rsa_ca_keys_sign_with_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let rsa = signer(KeyAlgorithm::Rsa(keystation_core::key::RsaBits::Rsa2048), 9);
    let ca_line = rsa.public_key().to_openssh(None).unwrap();
    let ca = SshCa::new(None, Some(Box::new(rsa))).unwrap();
    let key = ssh_key(dir.path(), "k", &["-t", "ecdsa"]);
    let now = SystemTime::now();
    let template = SshCertTemplate::new(
        SshCertType::Host,
        key,
        "h",
        vec!["h.example.test".into()],
        now,
        now + HOUR,
    );
    let cert = ca.sign(&template).unwrap();
    let (ok, out) = list(dir.path(), "k-cert.pub", &cert.line);
    assert!(ok, "{out}");
    let signing_ca = out.lines().find(|l| l.trim_start().starts_with("Signing CA:")).unwrap();
    assert!(signing_ca.contains("RSA") && signing_ca.contains("rsa-sha2-256"), "{out}");
    assert!(signing_ca.contains(&fingerprint(dir.path(), &ca_line)), "{out}");
    ca.verify_at(&cert.line, now).unwrap();
}
