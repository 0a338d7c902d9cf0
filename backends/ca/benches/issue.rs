//! The CA's per-request work: a leaf certificate from a CSR with a P-256 intermediate
//! (the CSR check and the issuance), and an SSH user certificate.
//!
//! `cargo bench -p keystation-ca --bench issue`; `--no-run` only builds it.

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use keystation_ca::{
    CaInitOptions, CaKey, IntermediateKey, LeafTemplate, SshCa, SshCertTemplate, SshCertType,
    check_csr, init_ca,
};
use keystation_core::key::KeyAlgorithm;
use keystation_x509::{CertificateOptions, DistinguishedName, SubjectAltName, build_csr};

const HOUR: Duration = Duration::from_secs(3600);

fn issuance(c: &mut Criterion) {
    let options = CaInitOptions { key_file_iterations: 10_000, ..CaInitOptions::new("Bench") };
    let Ok(ca) = init_ca(&options, b"bench password", IntermediateKey::Generate) else {
        panic!("init_ca failed")
    };
    let Ok(mut subject) = CaKey::generate(KeyAlgorithm::NistP256) else { panic!("keygen") };
    let csr_options = CertificateOptions {
        subject_alt_names: vec![
            SubjectAltName::Dns("bench.example.test".into()),
            SubjectAltName::Ip([192, 0, 2, 1].into()),
        ],
        ..CertificateOptions::default()
    };
    let Ok(csr) = build_csr(
        &mut subject,
        &DistinguishedName::common_name("bench.example.test"),
        &csr_options,
    ) else {
        panic!("build_csr failed")
    };
    c.bench_function("x509_leaf_from_csr_p256", |b| {
        b.iter(|| {
            let Ok(checked) = check_csr(black_box(&csr)) else { panic!("check_csr failed") };
            let template = LeafTemplate::from_csr(&checked, SystemTime::now() + 24 * HOUR);
            let Ok(issued) = ca.issuer.issue_leaf(&template) else { panic!("issue failed") };
            black_box(issued)
        })
    });

    let Ok(user_ca) = CaKey::generate(KeyAlgorithm::NistP256) else { panic!("keygen") };
    let Ok(ssh) = SshCa::new(Some(Box::new(user_ca)), None) else { panic!("SshCa") };
    let Ok(user_key) = CaKey::generate(KeyAlgorithm::Ed25519) else { panic!("keygen") };
    let Ok(line) = user_key.openssh_public_key() else { panic!("openssh") };
    let now = SystemTime::now();
    let template = SshCertTemplate::new(
        SshCertType::User,
        line,
        "alice@example.test",
        vec!["alice".into()],
        now,
        now + 16 * HOUR,
    );
    c.bench_function("ssh_user_certificate_p256", |b| {
        b.iter(|| {
            let Ok(cert) = ssh.sign(black_box(&template)) else { panic!("sign failed") };
            black_box(cert)
        })
    });
}

criterion_group!(benches, issuance);
criterion_main!(benches);
