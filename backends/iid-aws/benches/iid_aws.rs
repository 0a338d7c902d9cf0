//! `authorize` (HMAC, the document's RSA signature, JSON, the claims) against the raw RSA
//! check under it, both with the tests' RSA-1024 certificate (the size of AWS's "RSA
//! format" certificates) configured as `iidRoots`; and the embedded set, where the key
//! is found among AWS's 16 distinct keys by the document's region.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, clippy::print_stdout)]

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use der::Decode as _;
use keystation_core::Provisioner as _;
use keystation_core::provisioner::{Credential, Operation, Request, TrustedKeys};
use keystation_iid_aws::{AwsProvisioner, sign_token};
use keystation_provisioners::ProvisionerContext;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::signature::{SignatureEncoding as _, Signer as _};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

fn material() -> (AwsProvisioner, Vec<u8>, Vec<u8>, String) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let doc = format!(
        "{{\n  \"accountId\" : \"123456789012\",\n  \"architecture\" : \"x86_64\",\n  \"availabilityZone\" : \"eu-west-1a\",\n  \"billingProducts\" : null,\n  \"devpayProductCodes\" : null,\n  \"marketplaceProductCodes\" : null,\n  \"imageId\" : \"ami-0c1bc246476a5572b\",\n  \"instanceId\" : \"i-0a1b2c3d4e5f60718\",\n  \"instanceType\" : \"t3.micro\",\n  \"kernelId\" : null,\n  \"pendingTime\" : \"{}\",\n  \"privateIp\" : \"172.31.20.5\",\n  \"ramdiskId\" : null,\n  \"region\" : \"eu-west-1\",\n  \"version\" : \"2017-09-30\"\n}}",
        keystation_jose::step_time::format_rfc3339(now - 60)
    )
    .into_bytes();
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(
        &std::fs::read_to_string(format!("{DATA}/iid-test-rsa1024.key")).unwrap(),
    )
    .unwrap();
    let sig = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key).sign(&doc).to_vec();
    let b64 = base64::engine::general_purpose::STANDARD;
    let claims = serde_json::json!({
        "iss": "ec2.amazonaws.com", "sub": "i-0a1b2c3d4e5f60718",
        "aud": ["https://ca.example:9000/1.0/sign#aws/aws"],
        "exp": now + 300, "nbf": now, "iat": now, "jti": "x",
        "amazon": { "document": b64.encode(&doc), "signature": b64.encode(&sig) }, "sans": null,
    });
    let token = sign_token(&sig, claims.to_string().as_bytes());
    let roots = std::fs::read_to_string(format!("{DATA}/iid-test-rsa1024.pem")).unwrap();
    let config = serde_json::json!({ "type": "AWS", "name": "aws", "iidRootsPem": roots });
    let p =
        AwsProvisioner::from_json_in(&config.to_string(), &ProvisionerContext::default()).unwrap();
    (p, doc, sig, token)
}

fn per_second(mut f: impl FnMut(), seconds: f64) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        for _ in 0..100 {
            f();
        }
        n += 100;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn bench(c: &mut Criterion) {
    let (p, doc, sig, token) = material();
    let keys = TrustedKeys::default();
    let authorize = || {
        let request = Request {
            credential: Credential::Token(&token),
            operation: Operation::SignX509,
            audience: "https://ca.example:9000/1.0/sign",
            subject_key: None,
        };
        p.authorize(&request, &keys, SystemTime::now()).unwrap()
    };
    assert!(p.verify_document_signature(&doc, &sig));
    // The raw check under authorize: ring's RSA PKCS#1 v1.5 SHA-256 with the certificate's
    // key, nothing else.
    let cert = keystation_x509::Certificate::from_pem(
        &std::fs::read_to_string(format!("{DATA}/iid-test-rsa1024.pem")).unwrap(),
    )
    .unwrap();
    let spki = x509_cert::spki::SubjectPublicKeyInfoRef::from_der(cert.spki_der()).unwrap();
    let rsa_key = spki.subject_public_key.raw_bytes().to_vec();
    let raw_verify = |doc: &[u8], sig: &[u8]| {
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
            &rsa_key,
        )
        .verify(doc, sig)
        .is_ok()
    };
    assert!(raw_verify(&doc, &sig));
    c.bench_function("aws authorize", |b| b.iter(|| black_box(authorize())));
    c.bench_function("aws raw RSA-1024 verify", |b| {
        b.iter(|| black_box(raw_verify(black_box(&doc), black_box(&sig))))
    });
    // Alternating rounds, the best of each kept: a loaded machine slows both alike.
    let (mut full, mut raw) = (0f64, 0f64);
    for _ in 0..6 {
        full = full.max(per_second(|| drop(black_box(authorize())), 0.5));
        raw = raw.max(per_second(|| assert!(raw_verify(black_box(&doc), black_box(&sig))), 0.5));
    }
    println!(
        "aws: authorize {full:.0}/s, raw RSA verify {raw:.0}/s, ratio {:.2} (goal >= 0.8)",
        full / raw
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
