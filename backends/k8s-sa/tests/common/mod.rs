//! What the tests share: a cluster's service-account signing key, tokens in Kubernetes'
//! exact shapes signed with it, and the request the authority makes.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keystation_core::Provisioner;
use keystation_core::provisioner::{Credential, Denial, Grant, Operation, Request, TrustedKeys};
use keystation_jose::{Algorithm, Header, PrivateJwk, sign_compact};

/// The bound tokens' issuer (kubeadm's default `--service-account-issuer`).
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// The audience the workloads' projected tokens are for.
pub const AUDIENCE: &str = "https://ca.example.test:9000";
/// The service account the tokens are for.
pub const SUB: &str = "system:serviceaccount:ci:builder";
/// The authority endpoint a sign request is made at.
pub const SIGN_URL: &str = "https://ca.example.test:9000/1.0/sign";

/// A service-account signing key (what `--service-account-signing-key-file` holds) and
/// its public half as `sa.pub` holds it (PEM SubjectPublicKeyInfo).
pub struct ClusterKey {
    pub key: PrivateJwk,
    pub pem: String,
}

impl ClusterKey {
    pub fn new(alg: Algorithm) -> Self {
        let key = PrivateJwk::generate(alg).unwrap();
        let pem =
            keystation_x509::pem::encode("PUBLIC KEY", &key.public().public_key().to_spki_der());
        Self { key, pem }
    }

    /// Signs `payload` as the API server does: header with `alg` and a `kid`.
    pub fn sign(&self, payload: &serde_json::Value) -> String {
        let mut header = Header::default();
        header.kid = Some("k8s-kid-1".into());
        sign_compact(&self.key, &header, payload.to_string().as_bytes()).unwrap()
    }

    /// A legacy Secret-based token: no exp, no aud.
    pub fn legacy_token(&self) -> String {
        self.sign(&serde_json::json!({
            "iss": "kubernetes/serviceaccount",
            "kubernetes.io/serviceaccount/namespace": "ci",
            "kubernetes.io/serviceaccount/secret.name": "builder-token-x7k2p",
            "kubernetes.io/serviceaccount/service-account.name": "builder",
            "kubernetes.io/serviceaccount/service-account.uid": "0d0a5e8c-5a61-4d1c-9a55-6a8f3f4f1b11",
            "sub": SUB,
        }))
    }

    /// A bound (projected) token issued at `iat` for `lifetime`, with `jti` if given.
    pub fn bound_token(&self, aud: &[&str], iat: i64, lifetime: i64, jti: Option<&str>) -> String {
        let mut payload = serde_json::json!({
            "aud": aud,
            "exp": iat + lifetime,
            "iat": iat,
            "iss": ISSUER,
            "kubernetes.io": {
                "namespace": "ci",
                "node": { "name": "worker-1", "uid": "9b1e1d62-1c1f-4c4e-8e6a-1f2e3d4c5b6a" },
                "pod": { "name": "builder-5d8f7c9b6-qx2lm", "uid": "3f9c7a10-7e57-4f0e-b3de-2a3c4d5e6f70" },
                "serviceaccount": { "name": "builder", "uid": "0d0a5e8c-5a61-4d1c-9a55-6a8f3f4f1b11" },
                "warnafter": iat + lifetime * 4 / 5
            },
            "nbf": iat,
            "sub": SUB,
        });
        if let Some(jti) = jti {
            payload["jti"] = jti.into();
        }
        self.sign(&payload)
    }
}

pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

pub fn at(unix: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix as u64)
}

/// `authorize` for `operation` with `token`; the denial on refusal.
pub fn authorize(
    p: &dyn Provisioner,
    token: &str,
    operation: Operation,
    keys: &TrustedKeys,
    now: SystemTime,
) -> Result<Grant, Denial> {
    let request = Request {
        credential: Credential::Token(token),
        operation,
        audience: SIGN_URL,
        subject_key: None,
    };
    p.authorize(&request, keys, now).map_err(|e| match e {
        keystation_core::Error::Unauthorized(d) => d,
        other => panic!("not a denial: {other}"),
    })
}
