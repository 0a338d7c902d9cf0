//! An ES256 ACME request — parse the flattened JWS envelope, check the protected header,
//! verify with the account key, read the JSON payload — against the raw P-256 ECDSA
//! verification of the same signing input and signature with ring, the implementation
//! keystation-jose verifies ES256 with (so the difference is the envelope's overhead on the
//! ACME server's hot path), and with RustCrypto's p256 for comparison.
//!
//! `cargo bench -p keystation-acme --bench acme`; CI builds it with `--no-run`.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use keystation_acme::messages::NewOrder;
use keystation_acme::{parse_request, sign_request};
use keystation_jose::{Algorithm, PrivateJwk};
use p256::ecdsa::signature::Verifier as _;

fn envelope(c: &mut Criterion) {
    let key = PrivateJwk::generate(Algorithm::Es256).expect("P-256 key");
    let account = "https://127.0.0.1:9443/acme/acme/account/6b2c2a6e9f7d4e0f8c3b1a2d";
    let payload = br#"{"identifiers":[{"type":"dns","value":"host.example.test"},{"type":"dns","value":"www.host.example.test"}]}"#;
    let body = sign_request(
        &key,
        Some(account),
        "b2aVXkWhLGTpG1CAmVsQ5AjQ2N3Y5Mjk",
        "https://127.0.0.1:9443/acme/acme/new-order",
        payload,
    )
    .expect("request");
    let jwk = key.public().clone();
    assert!(parse_request(&body).expect("parses").verify(&jwk).is_ok());

    // The raw baseline: the same signing input and signature, already decoded, key parsed.
    let object: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    let message = format!(
        "{}.{}",
        object["protected"].as_str().expect("protected"),
        object["payload"].as_str().expect("payload")
    );
    let signature_bytes =
        URL_SAFE_NO_PAD.decode(object["signature"].as_str().expect("signature")).expect("b64");
    let signature = p256::ecdsa::Signature::from_slice(&signature_bytes).expect("r || s");
    let point = jwk.public_key().point().expect("EC point").to_vec();
    let raw_key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).expect("P-256 point");
    assert!(raw_key.verify(message.as_bytes(), &signature).is_ok());

    let ring_key =
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, point);
    assert!(ring_key.verify(message.as_bytes(), &signature_bytes).is_ok());

    let mut group = c.benchmark_group("acme_es256");
    group.bench_function("raw_ring_verify", |b| {
        b.iter(|| {
            ring_key.verify(black_box(message.as_bytes()), black_box(&signature_bytes)).is_ok()
        })
    });
    group.bench_function("raw_p256_verify", |b| {
        b.iter(|| raw_key.verify(black_box(message.as_bytes()), black_box(&signature)).is_ok())
    });
    group.bench_function("envelope_parse_verify_payload", |b| {
        b.iter(|| {
            let request = parse_request(black_box(&body)).expect("parses");
            let verified = request.verify(&jwk).expect("verifies");
            NewOrder::from_json(verified.payload()).expect("newOrder").identifiers.len()
        })
    });
    group.finish();
}

criterion_group!(benches, envelope);
criterion_main!(benches);
