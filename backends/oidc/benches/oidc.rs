//! OIDC ID token authorization with the provider's keys served from cache
//! (`OidcProvisioner::authorize` with the `TrustedKeys` a JWKS gave) against the raw
//! signature check under it (keystation-jose: parse, verify with the parsed JWK, decode
//! the claims) of the same token — issue 13's goal: authorizations ≥ 0.8× raw checks.
//! RS256 (the ID token default) and ES256, a JWKS of three keys as providers publish.
//!
//! `cargo bench -p keystation-oidc --bench oidc`; prints the ratios on stderr too.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::print_stderr, missing_docs)]

use std::hint::black_box;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use keystation_core::Provisioner;
use keystation_core::provisioner::{Credential, Operation, Request, TrustedKeys};
use keystation_jose::{Algorithm, Header, Jwk, PrivateJwk, parse_compact, sign_compact};
use keystation_oidc::{OidcOptions, OidcProvisioner, trusted_keys_from_jwks};
use keystation_provisioners::ProvisionerContext;

const ISSUER: &str = "https://accounts.example.com";

fn setup(alg: Algorithm) -> (OidcProvisioner, TrustedKeys, Jwk, String) {
    let signer = PrivateJwk::generate(alg).unwrap().with_kid("signer");
    let others = [
        PrivateJwk::generate(Algorithm::Rs256).unwrap().with_kid("old"),
        PrivateJwk::generate(Algorithm::Es256).unwrap().with_kid("next"),
    ];
    let keys: Vec<serde_json::Value> = others
        .iter()
        .chain([&signer])
        .map(|k| {
            let mut v: serde_json::Value = serde_json::from_str(&k.public().to_json()).unwrap();
            v["alg"] = k.algorithm().name().into();
            v["use"] = "sig".into();
            v
        })
        .collect();
    let jwks = serde_json::json!({ "keys": keys }).to_string();
    let trusted = trusted_keys_from_jwks(ISSUER, jwks.as_bytes(), "bench").unwrap();
    let options = OidcOptions {
        name: "sso".into(),
        client_id: "1087160488420.apps.googleusercontent.com".into(),
        configuration_endpoint: ISSUER.into(),
        domains: vec!["example.com".into()],
        groups: vec!["ops".into()],
        ..OidcOptions::default()
    };
    let p =
        OidcProvisioner::from_json_in(&options.to_json(), &ProvisionerContext::default()).unwrap();
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    // A Google-sized ID token.
    let claims = serde_json::json!({
        "iss": ISSUER,
        "azp": options.client_id,
        "aud": options.client_id,
        "sub": "110169484474386276334",
        "hd": "example.com",
        "email": "alice@example.com",
        "email_verified": true,
        "groups": ["ops", "dev"],
        "at_hash": "HK6E_P6Dh8Y93mRNtsDB1Q",
        "nonce": "0394852-3190485-2490358",
        "name": "Alice Example",
        "iat": t,
        "exp": t + 3600,
    });
    let token =
        sign_compact(&signer, &Header::jwt(Some("signer".into())), claims.to_string().as_bytes())
            .unwrap();
    (p, trusted, signer.public().clone(), token)
}

fn ratio(name: &str, p: &OidcProvisioner, keys: &TrustedKeys, jwk: &Jwk, token: &str) {
    let request = Request {
        credential: Credential::Token(token),
        operation: Operation::SignX509,
        audience: "https://ca.example:9000/1.0/sign",
        subject_key: None,
    };
    // Alternating rounds, the best of each: the machine may be shared.
    let n = 200;
    let now = SystemTime::now();
    let (mut raw, mut full) = (std::time::Duration::MAX, std::time::Duration::MAX);
    for _ in 0..7 {
        let start = Instant::now();
        for _ in 0..n {
            let _ = black_box(parse_compact(token).unwrap().verify(jwk).unwrap().claims().unwrap());
        }
        raw = raw.min(start.elapsed());
        let start = Instant::now();
        for _ in 0..n {
            black_box(p.authorize(&request, keys, now).unwrap());
        }
        full = full.min(start.elapsed());
    }
    eprintln!(
        "{name}: raw {:.1} µs, authorize {:.1} µs, ratio {:.2} (authorizations/s ÷ raw checks/s)",
        raw.as_secs_f64() * 1e6 / f64::from(n),
        full.as_secs_f64() * 1e6 / f64::from(n),
        raw.as_secs_f64() / full.as_secs_f64()
    );
}

fn authorization(c: &mut Criterion) {
    for (name, alg) in [("rs256", Algorithm::Rs256), ("es256", Algorithm::Es256)] {
        let (p, keys, jwk, token) = setup(alg);
        let request = Request {
            credential: Credential::Token(&token),
            operation: Operation::SignX509,
            audience: "https://ca.example:9000/1.0/sign",
            subject_key: None,
        };
        let now = SystemTime::now();
        assert!(p.authorize(&request, &keys, now).is_ok());
        ratio(name, &p, &keys, &jwk, &token);
        let mut group = c.benchmark_group(format!("oidc_{name}"));
        group.bench_function("raw_jose_verify", |b| {
            b.iter(|| {
                let jws = parse_compact(black_box(&token)).unwrap();
                jws.verify(black_box(&jwk)).unwrap().claims().unwrap().exp
            })
        });
        group.bench_function("authorize_cached_keys", |b| {
            b.iter(|| p.authorize(black_box(&request), black_box(&keys), now).unwrap())
        });
        group.finish();
    }
}

criterion_group!(benches, authorization);
criterion_main!(benches);
