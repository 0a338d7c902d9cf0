//! Targets for `keystation-k8s-sa`: the K8sSA provisioner's `authorize` on arbitrary
//! service-account tokens (configured keys), and the TokenReview answer parser with the
//! review-mode `authorize` that trusts what it parsed.

use std::time::{Duration, UNIX_EPOCH};

use keystation_core::Provisioner;
use keystation_core::provisioner::{Credential, Operation, Request, TrustedKeys};
use keystation_k8s_sa::{
    K8sSaProvisioner, LEGACY_ISSUER, Statement, parse_token_review, service_account, sha256_hex,
};
use keystation_provisioners::ProvisionerContext;

/// The P-256 service-account key the `k8s_sa_token` seeds are signed with (its private
/// half is not kept), as `sa.pub` holds it.
const CLUSTER_KEY: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE1XC0I0smWS6Epmwx50EIhvfzJeOs
Sppttj/2ThLci57A2tUO0PDJ0S1OgXw2J2fmIWv7Ki7qWQrTapTWmVMVpA==
-----END PUBLIC KEY-----
";

/// A cluster CA (the review-mode provisioner must be given one; nothing connects).
const CLUSTER_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBdzCCAR2gAwIBAgIUF4En62VnzCx+wuZwmFqIg3D6wbwwCgYIKoZIzj0EAwIw
FTETMBEGA1UEAwwKa3ViZXJuZXRlczAgFw03NTAxMDEwMDAwMDBaGA80MDk2MDEw
MTAwMDAwMFowFTETMBEGA1UEAwwKa3ViZXJuZXRlczBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABPgw4d7H3D7ZGiNjqUZbA7QOVHa6CYX4EWBjvYcaOxXGpyyeediv
CPLgZF0Kf+ZtSRnZ9mXm3vLsd5Qg+L8Uo/KjSTBHMBUGA1UdEQQOMAyCCmt1YmVy
bmV0ZXMwHQYDVR0OBBYEFOngBRRyH72RES+kjYHwwF9tN1I4MA8GA1UdEwEB/wQF
MAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIgUzzh5B8fOtsjerfc25kGMn5XFRj70FHj
9ZGfJZ5IT6oCIQCwhYBFtvo4tf3vVrVouFZ4VIaFD8lbGhM2hnYvowBZWw==
-----END CERTIFICATE-----
";

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
const AUDIENCE: &str = "https://ca.example.test:9000";
const SUB: &str = "system:serviceaccount:ci:builder";

/// The seeds' "now" (their bound tokens were issued 100 s before).
const NOW: u64 = 1_760_000_000;

/// A bound token for `SUB` and `AUDIENCE`, valid at `NOW`, jti `0e2f7c1a-review`, whose
/// signature only the (absent) API server could check: the review-mode provisioner reads
/// its payload and trusts the review for the rest.
const REVIEWED_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6Ims4cy1raWQtMSJ9.eyJhdWQiOlsiaHR0cHM6Ly9jYS5leGFtcGxlLnRlc3Q6OTAwMCJdLCJleHAiOjE3NjAwMDM1MDAsImlhdCI6MTc1OTk5OTkwMCwiaXNzIjoiaHR0cHM6Ly9rdWJlcm5ldGVzLmRlZmF1bHQuc3ZjLmNsdXN0ZXIubG9jYWwiLCJqdGkiOiIwZTJmN2MxYS1yZXZpZXciLCJrdWJlcm5ldGVzLmlvIjp7Im5hbWVzcGFjZSI6ImNpIiwic2VydmljZWFjY291bnQiOnsibmFtZSI6ImJ1aWxkZXIiLCJ1aWQiOiIwZDBhNWU4Yy01YTYxLTRkMWMtOWE1NS02YThmM2Y0ZjFiMTEifX0sIm5iZiI6MTc1OTk5OTkwMCwic3ViIjoic3lzdGVtOnNlcnZpY2VhY2NvdW50OmNpOmJ1aWxkZXIifQ.c2lnbmF0dXJlLWNoZWNrZWQtYnktdGhlLWFwaS1zZXJ2ZXI";

fn request(token: &str, operation: Operation) -> Request<'_> {
    Request {
        credential: Credential::Token(token),
        operation,
        audience: "https://ca.example.test:9000/1.0/sign",
        subject_key: None,
    }
}

/// [`K8sSaProvisioner`]'s `authorize` (configured keys) on an arbitrary token.
///
/// Input layout: byte 0 — bits 0–1 pick the operation (X.509 sign, SSH user sign, X.509
/// revoke, X.509 rekey); bit 2 builds the provisioner with `allowLegacyTokens` (else it
/// takes bound tokens of `ISSUER` for `AUDIENCE` only); bit 3 turns `enableSSHCA` on. The
/// rest is the token.
///
/// Whatever the input: nothing panics, and a grant is only for a token that verifies
/// with the cluster key, whose `sub` is a well-formed service account (the grant's
/// subject and only name), for an allowed operation, with a replay id that is the `jti`,
/// the token's SHA-256, or — for a token without `exp`, which only a legacy token may be
/// and only when allowed — a permanent record of that digest; a bound token's `aud` names
/// `AUDIENCE` and its `exp` is present.
pub fn k8s_sa_token(data: &[u8]) {
    let Some((&flags, token)) = data.split_first() else { return };
    let Ok(token) = core::str::from_utf8(token) else { return };
    let operation =
        [Operation::SignX509, Operation::SignSshUser, Operation::RevokeX509, Operation::RekeyX509]
            [usize::from(flags & 3)];
    let legacy = flags & 4 != 0;
    let mut config = serde_json::json!({
        "type": "K8sSA",
        "name": "k8sSA-default",
        "publicKeys": CLUSTER_KEY,
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "allowLegacyTokens": legacy,
    });
    if flags & 8 != 0 {
        config["claims"] = serde_json::json!({ "enableSSHCA": true });
    }
    let provisioner =
        K8sSaProvisioner::from_json_in(&config.to_string(), &ProvisionerContext::default())
            .expect("the fuzz configuration is valid");
    let now = UNIX_EPOCH + Duration::from_secs(NOW);
    let Ok(grant) = provisioner.authorize(&request(token, operation), &TrustedKeys::default(), now)
    else {
        return;
    };

    assert!(operation != Operation::RekeyX509, "rekey is never granted");
    let jws = keystation_jose::parse_compact(token).expect("a granted token parses");
    let claims = jws.unverified_claims().expect("a granted token has claims");
    let key = keystation_x509::pem::decode_all(CLUSTER_KEY)
        .ok()
        .and_then(|b| keystation_x509::public_key_from_spki(&b[0].der).ok())
        .and_then(|k| keystation_jose::Jwk::from_public_key(k).ok())
        .expect("the cluster key parses");
    assert!(jws.verify(&key).is_ok(), "a granted token verifies with the cluster key");
    let sub = claims.sub.as_deref().unwrap_or_default();
    assert!(service_account(sub).is_some(), "granted for {sub:?}");
    assert_eq!(grant.subject, sub);
    if operation == Operation::RevokeX509 {
        assert!(grant.sans.is_empty());
    } else {
        assert_eq!(grant.sans, [sub]);
    }
    let replay_id = grant.replay_id.as_deref().expect("every grant has a replay id");
    let digest = sha256_hex(token);
    match (claims.jti.as_deref().filter(|j| !j.is_empty()), claims.exp) {
        (Some(jti), _) => assert_eq!(replay_id, jti),
        (None, Some(_)) => assert_eq!(replay_id, digest),
        (None, None) => {
            assert!(legacy, "a token without exp needs allowLegacyTokens");
            assert!(keystation_provisioners::is_tofu_id(replay_id) && replay_id.ends_with(&digest));
        }
    }
    if claims.iss.as_deref() == Some(LEGACY_ISSUER) {
        assert!(legacy, "a legacy token needs allowLegacyTokens");
    } else {
        assert_eq!(claims.iss.as_deref(), Some(ISSUER));
        assert!(claims.aud.iter().any(|a| a == AUDIENCE), "aud {:?}", claims.aud);
        assert!(claims.exp.is_some(), "a bound token needs exp");
    }
}

/// [`parse_token_review`] on an arbitrary API server answer, then the review-mode
/// provisioner's `authorize` of a fixed bound token with what was parsed as the review.
///
/// Whatever the input: nothing panics; a parsed status survives its trip through a
/// [`Statement`] unchanged and is found only for the token it is about; and the token is
/// granted only when the answer says `authenticated` for exactly its service account
/// with `AUDIENCE` among `status.audiences` — with the token's `jti` as replay id.
pub fn token_review_status(data: &[u8]) {
    let Ok(status) = parse_token_review(data) else { return };
    let statement = Statement::new(REVIEWED_TOKEN, status.clone());
    let statements = vec![statement.to_json()];
    let found = Statement::find_for(&statements, REVIEWED_TOKEN).expect("its own token");
    assert_eq!(found.status, status, "statement round trip");
    assert!(Statement::find_for(&statements, "another.token.here").is_none());

    let config = serde_json::json!({
        "type": "K8sSA",
        "name": "cluster-review",
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "tokenReview": {
            "url": "https://127.0.0.1:6443",
            "caCert": CLUSTER_CA,
            "bearerTokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token",
        },
    });
    let provisioner =
        K8sSaProvisioner::from_json_in(&config.to_string(), &ProvisionerContext::default())
            .expect("the fuzz configuration is valid");
    let keys = TrustedKeys { statements, ..TrustedKeys::default() };
    let now = UNIX_EPOCH + Duration::from_secs(NOW);
    let granted = provisioner.authorize(&request(REVIEWED_TOKEN, Operation::SignX509), &keys, now);
    let should = status.authenticated
        && status.username.as_deref() == Some(SUB)
        && status.audiences.iter().any(|a| a == AUDIENCE);
    assert_eq!(granted.is_ok(), should, "{status:?}");
    if let Ok(grant) = granted {
        assert_eq!(grant.subject, SUB);
        assert_eq!(grant.replay_id.as_deref(), Some("0e2f7c1a-review"));
    }
}
