//! Azure managed-identity token authorization with the tenant's keys served from cache
//! (`AzureProvisioner::authorize` with the `TrustedKeys` the discovery document and JWK set
//! gave) against the raw signature check under it (keystation-jose: parse, RS256 verify with
//! the key, decode the claims) of the same token — issue 13's goal: authorizations ≥ 0.8×
//! raw checks. A JWK set of three keys, as Microsoft publishes.
//!
//! `cargo bench -p keystation-iid-azure --bench iid_azure`; prints the ratio on stderr too.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::print_stderr, missing_docs)]

use std::hint::black_box;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use keystation_core::Provisioner;
use keystation_core::key::PublicKey;
use keystation_core::provisioner::{Credential, Operation, Request, TrustedKeys};
use keystation_iid_azure::{AzureOptions, AzureProvisioner, trusted_keys_from_jwks};
use keystation_jose::{Algorithm, Header, PrivateJwk, parse_compact, sign_compact};
use keystation_provisioners::ProvisionerContext;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const SUB: &str = "0b1f6471-1bf0-4dda-aec3-cb9272f09590";
const OID: &str = "e4d2a3c1-5b6f-4a7e-8c9d-0f1e2d3c4b5a";

fn setup() -> (AzureProvisioner, TrustedKeys, PublicKey, String) {
    let signer = PrivateJwk::generate(Algorithm::Rs256).unwrap().with_kid("current");
    let others = [
        PrivateJwk::generate(Algorithm::Rs256).unwrap().with_kid("old"),
        PrivateJwk::generate(Algorithm::Rs256).unwrap().with_kid("next"),
    ];
    let keys: Vec<serde_json::Value> = others
        .iter()
        .chain([&signer])
        .map(|k| serde_json::from_str(&k.public().to_json()).unwrap())
        .collect();
    let issuer = format!("https://sts.windows.net/{TENANT}/");
    let jwks = serde_json::json!({ "keys": keys }).to_string();
    let trusted = trusted_keys_from_jwks(&issuer, jwks.as_bytes(), "bench").unwrap();
    let options = AzureOptions {
        name: "azure".into(),
        tenant_id: TENANT.into(),
        resource_groups: vec!["prod".into()],
        subscription_ids: vec![SUB.into()],
        object_ids: vec![OID.into()],
        ..AzureOptions::default()
    };
    let p =
        AzureProvisioner::from_json_in(&options.to_json(), &ProvisionerContext::default()).unwrap();
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let claims = serde_json::json!({
        "aud": "https://management.azure.com/",
        "iss": issuer,
        "iat": t, "nbf": t, "exp": t + 86399,
        "aio": "E2ZgYJiXe5mBq3zl",
        "appid": "4e1b7a2c-9d3f-4a5b-8c6d-7e8f9a0b1c2d",
        "appidacr": "2",
        "idp": issuer,
        "idtyp": "app",
        "oid": OID,
        "rh": "0.AXkAv4j5cvGGr0GRqy180BHbR0ZIf3kAutdPukPawfj2MBN5AAA.",
        "sub": OID,
        "tid": TENANT,
        "uti": "fJb4pWbh_0ya2nLCpKpmAA",
        "ver": "1.0",
        "xms_mirid": format!("/subscriptions/{SUB}/resourcegroups/prod/providers/Microsoft.Compute/virtualMachines/web-1"),
        "xms_tcdt": 1_600_000_000
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
        audience: "https://ca.example:9000/1.0/sign",
        subject_key: None,
    }
}

fn ratio(p: &AzureProvisioner, keys: &TrustedKeys, key: &PublicKey, token: &str) {
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
        "azure rs256: raw {:.1} µs, authorize {:.1} µs, ratio {:.2} (authorizations/s ÷ raw checks/s)",
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
    let mut group = c.benchmark_group("iid_azure");
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
