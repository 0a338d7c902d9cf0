//! The K8sSA provisioner with configured public keys: legacy and bound tokens in
//! Kubernetes' shapes, signed by a cluster key of the test's own; what step-ca would let
//! through (no audience, no expiry, replays) refused; the configuration as ca.json
//! writes it.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::*;
use keystation_core::provisioner::{Denial, Operation, TrustedKeys};
use keystation_jose::Algorithm;
use keystation_k8s_sa::{FACTORY, K8sSaOptions, K8sSaProvisioner, LEGACY_ISSUER, sha256_hex};
use keystation_provisioners::{ProvisionerContext, StepProvisioner, TokenPeek};

const NOW: i64 = 1_760_000_000;

fn config(cluster: &ClusterKey, extra: serde_json::Value) -> String {
    let mut object = serde_json::json!({
        "type": "K8sSA",
        "name": "k8sSA-default",
        "publicKeys": base64::engine::general_purpose::STANDARD.encode(&cluster.pem),
    });
    for (k, v) in extra.as_object().unwrap() {
        object[k] = v.clone();
    }
    object.to_string()
}

fn provisioner(cluster: &ClusterKey, extra: serde_json::Value) -> K8sSaProvisioner {
    K8sSaProvisioner::from_json_in(&config(cluster, extra), &ProvisionerContext::default()).unwrap()
}

fn bound_config() -> serde_json::Value {
    serde_json::json!({ "issuer": ISSUER, "audiences": [AUDIENCE] })
}

fn sign(p: &K8sSaProvisioner, token: &str) -> Result<keystation_core::provisioner::Grant, Denial> {
    authorize(p, token, Operation::SignX509, &TrustedKeys::default(), at(NOW))
}

#[test]
fn legacy_tokens_are_refused_unless_allowed() {
    let cluster = ClusterKey::new(Algorithm::Rs256);
    let token = cluster.legacy_token();

    let strict = provisioner(&cluster, bound_config());
    assert_eq!(sign(&strict, &token), Err(Denial::PolicyViolation));

    let legacy = provisioner(&cluster, serde_json::json!({ "allowLegacyTokens": true }));
    let grant = sign(&legacy, &token).unwrap();
    assert_eq!(grant.subject, SUB);
    assert_eq!(grant.sans, [SUB]);
    assert_eq!(grant.provisioner, "k8sSA-default");
    // It never expires, so its single use is recorded for good.
    let id = grant.replay_id.unwrap();
    assert!(keystation_provisioners::is_tofu_id(&id), "{id}");
    assert!(id.ends_with(&sha256_hex(&token)));
    assert_eq!(sign(&legacy, &token).unwrap().replay_id.unwrap(), id, "stable per token");
    // TLS validity is the claims' default (24 h).
    assert_eq!(
        grant.not_after.duration_since(grant.not_before).unwrap(),
        Duration::from_secs(86_400)
    );
}

#[test]
fn bound_tokens_need_the_issuer_an_audience_and_a_bounded_life() {
    let cluster = ClusterKey::new(Algorithm::Es256);
    let p = provisioner(&cluster, bound_config());

    let token = cluster.bound_token(&[AUDIENCE], NOW - 100, 3600, Some("5f1c-jti"));
    let grant = sign(&p, &token).unwrap();
    assert_eq!(grant.subject, SUB);
    assert_eq!(grant.replay_id.as_deref(), Some("5f1c-jti"));

    // Without jti (before Kubernetes 1.29): the token's digest, stable and per token.
    let plain = cluster.bound_token(&[AUDIENCE], NOW - 100, 3600, None);
    let other = cluster.bound_token(&[AUDIENCE], NOW - 99, 3600, None);
    let id = sign(&p, &plain).unwrap().replay_id.unwrap();
    assert_eq!(id, sha256_hex(&plain));
    assert_eq!(sign(&p, &plain).unwrap().replay_id.unwrap(), id);
    assert_ne!(sign(&p, &other).unwrap().replay_id.unwrap(), id);

    // The API server's own audience (a kube-api-access token) is not ours.
    let api =
        cluster.bound_token(&["https://kubernetes.default.svc.cluster.local"], NOW, 3600, None);
    assert_eq!(sign(&p, &api), Err(Denial::WrongAudience));
    // Expired (beyond the minute of leeway), not yet valid, living too long.
    let expired = cluster.bound_token(&[AUDIENCE], NOW - 3661 - 60, 3600, None);
    assert_eq!(sign(&p, &expired), Err(Denial::Expired));
    let early = cluster.bound_token(&[AUDIENCE], NOW + 120, 3600, None);
    assert_eq!(sign(&p, &early), Err(Denial::NotYetValid));
    let long = cluster.bound_token(&[AUDIENCE], NOW, 3601, None);
    assert_eq!(sign(&p, &long), Err(Denial::LifetimeTooLong));
    // …unless maxTokenLifetime says so.
    let mut extra = bound_config();
    extra["maxTokenLifetime"] = "2h".into();
    assert!(sign(&provisioner(&cluster, extra), &long).is_ok());

    // Another issuer, and a subject that is not a service account.
    let foreign = cluster.sign(&serde_json::json!({
        "iss": "https://other.cluster", "aud": [AUDIENCE], "sub": SUB, "iat": NOW, "exp": NOW + 600,
    }));
    assert_eq!(sign(&p, &foreign), Err(Denial::WrongIssuer));
    let node = cluster.sign(&serde_json::json!({
        "iss": ISSUER, "aud": [AUDIENCE], "sub": "system:node:worker-1", "iat": NOW, "exp": NOW + 600,
    }));
    assert_eq!(sign(&p, &node), Err(Denial::Malformed));
    let no_exp = cluster.sign(&serde_json::json!({
        "iss": ISSUER, "aud": [AUDIENCE], "sub": SUB, "iat": NOW,
    }));
    assert_eq!(sign(&p, &no_exp), Err(Denial::MissingExpiry));
}

#[test]
fn only_the_configured_keys_verify() {
    let cluster = ClusterKey::new(Algorithm::Rs256);
    let p = provisioner(&cluster, bound_config());
    // Another cluster's key of the same type: the signature does not verify.
    let stranger = ClusterKey::new(Algorithm::Rs256);
    let token = stranger.bound_token(&[AUDIENCE], NOW, 600, None);
    assert_eq!(sign(&p, &token), Err(Denial::BadSignature));
    // A key of a type none of the configured keys has.
    let ec = ClusterKey::new(Algorithm::Es256);
    assert_eq!(sign(&p, &ec.bound_token(&[AUDIENCE], NOW, 600, None)), Err(Denial::UnknownKey));
    // A bundle of both verifies both.
    let both = format!("{}\n{}", cluster.pem, ec.pem);
    let mut extra = bound_config();
    extra["publicKeys"] = both.into();
    let p2 = provisioner(&cluster, extra);
    assert!(sign(&p2, &cluster.bound_token(&[AUDIENCE], NOW, 600, None)).is_ok());
    assert!(sign(&p2, &ec.bound_token(&[AUDIENCE], NOW, 600, None)).is_ok());
    // A tampered payload.
    let good = cluster.bound_token(&[AUDIENCE], NOW, 600, None);
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let forged = cluster.bound_token(&[AUDIENCE], NOW, 600, Some("forged"));
    parts[1] = forged.split('.').nth(1).unwrap().to_owned();
    assert_eq!(sign(&p, &parts.join(".")), Err(Denial::BadSignature));
    assert_eq!(sign(&p, "not-a-token"), Err(Denial::Malformed));
}

#[test]
fn operations_follow_step_ca() {
    let cluster = ClusterKey::new(Algorithm::Es256);
    let p = provisioner(&cluster, bound_config());
    let token = cluster.bound_token(&[AUDIENCE], NOW, 600, None);
    let keys = TrustedKeys::default();
    for op in
        [Operation::RekeyX509, Operation::RevokeSsh, Operation::RenewSsh, Operation::Administer]
    {
        assert_eq!(authorize(&p, &token, op, &keys, at(NOW)), Err(Denial::OperationNotAllowed));
    }
    assert!(authorize(&p, &token, Operation::RenewX509, &keys, at(NOW)).is_ok());
    let revoke = authorize(&p, &token, Operation::RevokeX509, &keys, at(NOW)).unwrap();
    assert!(revoke.sans.is_empty());
    // SSH only with enableSSHCA; then the service account is the sole principal.
    assert_eq!(
        authorize(&p, &token, Operation::SignSshUser, &keys, at(NOW)),
        Err(Denial::OperationNotAllowed)
    );
    let mut extra = bound_config();
    extra["claims"] = serde_json::json!({ "enableSSHCA": true, "disableRenewal": true });
    let ssh = provisioner(&cluster, extra);
    let grant = authorize(&ssh, &token, Operation::SignSshHost, &keys, at(NOW)).unwrap();
    assert_eq!(grant.sans, [SUB]);
    assert_eq!(
        grant.not_after.duration_since(grant.not_before).unwrap(),
        Duration::from_secs(720 * 3600)
    );
    assert_eq!(
        authorize(&ssh, &token, Operation::RenewX509, &keys, at(NOW)),
        Err(Denial::OperationNotAllowed)
    );
}

#[test]
fn routing_by_issuer() {
    let cluster = ClusterKey::new(Algorithm::Es256);
    let p = provisioner(&cluster, bound_config());
    let peek = |t: &str| TokenPeek::of(t).unwrap();
    assert!(p.routes(&peek(&cluster.legacy_token())));
    assert!(p.routes(&peek(&cluster.bound_token(&[AUDIENCE], NOW, 600, None))));
    let other = cluster.sign(&serde_json::json!({ "iss": "https://elsewhere", "sub": SUB }));
    assert!(!p.routes(&peek(&other)));
    assert!(p.key_source().is_none(), "keys mode fetches nothing");
    assert_eq!(LEGACY_ISSUER, "kubernetes/serviceaccount");
}

#[test]
fn configuration_round_trips_and_bad_ones_are_refused() {
    let cluster = ClusterKey::new(Algorithm::Rs256);
    let context = ProvisionerContext::default();
    // step-ca's object (base64 PEM) and the builder's agree.
    let options = K8sSaOptions {
        public_keys_pem: Some(cluster.pem.clone()),
        issuer: Some(ISSUER.into()),
        audiences: vec![AUDIENCE.into()],
        max_token_lifetime: Some(Duration::from_secs(7200)),
        claims_json: Some(r#"{"maxTLSCertDuration":"48h"}"#.into()),
        ..K8sSaOptions::default()
    };
    let built = (FACTORY.build)(&options.to_json(), &context).unwrap();
    assert_eq!(built.name(), "k8sSA-default");
    let listed: serde_json::Value = serde_json::from_str(&built.to_json()).unwrap();
    assert_eq!(listed["type"], "K8sSA");
    assert_eq!(listed["issuer"], ISSUER);
    assert_eq!(listed["maxTokenLifetime"], "2h0m0s");
    assert_eq!(listed["claims"]["maxTLSCertDuration"], "48h0m0s");
    let pem = base64::engine::general_purpose::STANDARD
        .decode(listed["publicKeys"].as_str().unwrap())
        .unwrap();
    assert_eq!(String::from_utf8(pem).unwrap().trim(), cluster.pem.trim());
    let again = K8sSaProvisioner::from_json_in(&built.to_json(), &context).unwrap();
    assert_eq!(again.to_json(), built.to_json());
    assert!(
        keystation_provisioners::provisioner_from_json_with(
            &options.to_json(),
            &context,
            &[FACTORY]
        )
        .is_ok()
    );

    let b64 = base64::engine::general_purpose::STANDARD.encode(&cluster.pem);
    let rsa_pkcs1 = "-----BEGIN RSA PUBLIC KEY-----\nMAA=\n-----END RSA PUBLIC KEY-----\n";
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = rcgen::CertificateParams::new(vec!["kubernetes".to_owned()]).unwrap();
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let review = serde_json::json!({ "url": "https://10.96.0.1:443", "caCert": ca_pem, "bearerTokenFile": "/t" });
    for (bad, why) in [
        (
            serde_json::json!({ "type": "K8sSA", "name": "k", "issuer": ISSUER, "audiences": [AUDIENCE] }),
            "no keys, no review",
        ),
        (serde_json::json!({ "type": "K8sSA", "name": "k", "publicKeys": b64 }), "accepts nothing"),
        (
            serde_json::json!({ "type": "K8sSA", "name": "k", "publicKeys": b64, "issuer": ISSUER }),
            "no audiences",
        ),
        (
            serde_json::json!({ "type": "K8sSA", "name": "k", "publicKeys": b64, "issuer": ISSUER, "audiences": [AUDIENCE], "tokenReview": review }),
            "both modes",
        ),
        (
            serde_json::json!({ "type": "K8sSA", "name": "k", "publicKeys": b64, "issuer": ISSUER, "audiences": [AUDIENCE], "maxTokenLifetime": "25h" }),
            "too long",
        ),
        (
            serde_json::json!({ "type": "K8sSA", "name": "k", "publicKeys": "bm90IHBlbQ==", "allowLegacyTokens": true }),
            "not PEM",
        ),
        (
            serde_json::json!({ "type": "K8sSA", "name": "k", "publicKeys": rsa_pkcs1, "allowLegacyTokens": true }),
            "PKCS#1",
        ),
        (
            serde_json::json!({ "type": "K8sSA", "name": "k", "issuer": ISSUER, "audiences": [AUDIENCE], "tokenReview": { "url": "http://10.96.0.1", "caCert": ca_pem, "bearerTokenFile": "/t" } }),
            "plain http",
        ),
        (
            serde_json::json!({ "type": "K8sSA", "name": "k", "issuer": ISSUER, "audiences": [AUDIENCE], "tokenReview": { "url": "https://10.96.0.1", "caCert": cluster.pem, "bearerTokenFile": "/t" } }),
            "caCert not a certificate",
        ),
        (
            serde_json::json!({ "type": "K8sSA", "name": "k", "audiences": [AUDIENCE], "tokenReview": review }),
            "review without issuer",
        ),
        (
            serde_json::json!({ "type": "K8sSA", "name": "k", "issuer": ISSUER, "tokenReview": review }),
            "review without audiences",
        ),
        (
            serde_json::json!({ "type": "K8sSA", "name": "k", "issuer": ISSUER, "audiences": [AUDIENCE], "allowLegacyTokens": true, "tokenReview": review }),
            "legacy with review",
        ),
        (
            serde_json::json!({ "type": "K8sSA", "name": "k", "allowLegacyTokens": true, "publicKeys": b64, "options": { "x509": { "templateFile": "t.tpl" } } }),
            "templates",
        ),
        (
            serde_json::json!({ "type": "K8sSA", "name": "k", "allowLegacyTokens": true, "publicKeys": b64, "audience": AUDIENCE }),
            "typo",
        ),
        (
            serde_json::json!({ "type": "JWK", "name": "k", "allowLegacyTokens": true, "publicKeys": b64 }),
            "type",
        ),
    ] {
        let r = K8sSaProvisioner::from_json_in(&bad.to_string(), &context);
        assert!(r.is_err(), "{why}: accepted");
    }
    // A valid review configuration builds without touching the network or the file.
    let ok = serde_json::json!({ "type": "K8sSA", "name": "k", "issuer": ISSUER, "audiences": [AUDIENCE], "tokenReview": review });
    let p = K8sSaProvisioner::from_json_in(&ok.to_string(), &context).unwrap();
    assert!(p.uses_token_review() && p.key_source().is_some());
    let listed = p.to_json();
    assert!(!listed.contains("tokenReview") && !listed.contains("10.96.0.1"), "{listed}");
    let full = p.to_config_json();
    assert!(K8sSaProvisioner::from_json_in(&full, &context).is_ok(), "{full}");
}
