//! GCP instance identity token authorization with Google's keys served from cache
//! (`GcpProvisioner::authorize` with the `TrustedKeys` Google's JWK set gave) against the raw
//! signature check under it (keystation-jose: parse, RS256 verify with the key, decode the
//! claims) of the same token — issue 13's goal: authorizations ≥ 0.8× raw checks. A JWK set
//! of two keys, as Google publishes.
//!
//! `cargo bench -p keystation-iid-gcp --bench iid_gcp`; prints the ratio on stderr too.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::print_stderr, missing_docs)]

use std::hint::black_box;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use keystation_core::Provisioner;
use keystation_core::key::PublicKey;
use keystation_core::provisioner::{Credential, Operation, Request, TrustedKeys};
use keystation_iid_gcp::{GcpOptions, GcpProvisioner, trusted_keys_from_jwks};
use keystation_jose::{Algorithm, Header, PrivateJwk, parse_compact, sign_compact};
use keystation_provisioners::ProvisionerContext;

const SIGN: &str = "https://ca.example:9000/1.0/sign";

fn setup() -> (GcpProvisioner, TrustedKeys, PublicKey, String) {
    let signer = PrivateJwk::generate(Algorithm::Rs256).unwrap().with_kid("current");
    let other = PrivateJwk::generate(Algorithm::Rs256).unwrap().with_kid("previous");
    let keys: Vec<serde_json::Value> = [&other, &signer]
        .iter()
        .map(|k| serde_json::from_str(&k.public().to_json()).unwrap())
        .collect();
    let jwks = serde_json::json!({ "keys": keys }).to_string();
    let trusted = trusted_keys_from_jwks(jwks.as_bytes(), "bench").unwrap();
    let options = GcpOptions {
        name: "google".into(),
        project_ids: vec!["acme-prod".into()],
        service_accounts: vec!["123456789-compute@developer.gserviceaccount.com".into()],
        instance_age: Some(std::time::Duration::from_secs(3600)),
        ..GcpOptions::default()
    };
    let p =
        GcpProvisioner::from_json_in(&options.to_json(), &ProvisionerContext::default()).unwrap();
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let claims = serde_json::json!({
        "aud": format!("{SIGN}#gcp/google"),
        "azp": "112233445566778899000",
        "email": "123456789-compute@developer.gserviceaccount.com",
        "email_verified": true,
        "exp": t + 3600,
        "google": {"compute_engine": {
            "instance_creation_timestamp": t - 60,
            "instance_id": "5105478374537282466",
            "instance_name": "web-1",
            "license_id": ["1000010"],
            "project_id": "acme-prod",
            "project_number": 123456789,
            "zone": "europe-west1-b"
        }},
        "iat": t,
        "iss": "https://accounts.google.com",
        "sub": "112233445566778899000"
    });
    let token =
        sign_compact(&signer, &Header::jwt(Some("current".into())), claims.to_string().as_bytes())
            .unwrap();
    (p, trusted, signer.public().public_key().clone(), token)
}

fn request(token: &str) -> Request<'_> {
    Request {
        credential: Credential::Token(token),
        operation: Operation::SignX509,
        audience: SIGN,
        subject_key: None,
    }
}

fn ratio(p: &GcpProvisioner, keys: &TrustedKeys, key: &PublicKey, token: &str) {
    let n = 300;
    let now = SystemTime::now();
    let start = Instant::now();
    for _ in 0..n {
        let _ = black_box(
            parse_compact(token)
                .unwrap()
                .verify_with(key, Algorithm::Rs256)
                .unwrap()
                .claims()
                .unwrap(),
        );
    }
    let raw = start.elapsed();
    let start = Instant::now();
    for _ in 0..n {
        black_box(p.authorize(&request(token), keys, now).unwrap());
    }
    let full = start.elapsed();
    eprintln!(
        "gcp rs256: raw {:.1} µs, authorize {:.1} µs, ratio {:.2} (authorizations/s ÷ raw checks/s)",
        raw.as_secs_f64() * 1e6 / f64::from(n),
        full.as_secs_f64() * 1e6 / f64::from(n),
        raw.as_secs_f64() / full.as_secs_f64()
    );
}

fn authorization(c: &mut Criterion) {
    let (p, keys, key, token) = setup();
    let now = SystemTime::now();
    assert!(p.authorize(&request(&token), &keys, now).is_ok());
    ratio(&p, &keys, &key, &token);
    let mut group = c.benchmark_group("iid_gcp");
    group.bench_function("raw_rs256_verify", |b| {
        b.iter(|| {
            let jws = parse_compact(black_box(&token)).unwrap();
            jws.verify_with(black_box(&key), Algorithm::Rs256).unwrap().claims().unwrap().exp
        })
    });
    group.bench_function("authorize_cached_keys", |b| {
        b.iter(|| p.authorize(black_box(&request(&token)), black_box(&keys), now).unwrap())
    });
    group.finish();
}

criterion_group!(benches, authorization);
criterion_main!(benches);
