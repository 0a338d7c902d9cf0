//! The K8sSA provisioner asking a Kubernetes API server: a test API server on loopback
//! with real TLS (a throwaway cluster CA, rustls) implements
//! `POST /apis/authentication.k8s.io/v1/tokenreviews` as kube-apiserver does — it checks
//! the caller's bearer token, authenticates the bound tokens it issued (signed with its
//! own service-account key) for the audiences asked, and answers `authenticated: false`
//! otherwise.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::SystemTime;

use common::*;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use keystation_core::provisioner::{Denial, Operation, TrustedKeys};
use keystation_jose::{Algorithm, Jwk, parse_compact};
use keystation_k8s_sa::{K8sSaProvisioner, sha256_hex};
use keystation_provisioners::{ProvisionerContext, StepProvisioner};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The authority's own token, which the API server expects as the caller's bearer token.
const AUTHORITY_BEARER: &str = "authority-sa-token-6c1f";

/// The API server's state.
struct ApiServer {
    /// The service-account key whose tokens it authenticates.
    signing_key: Jwk,
    /// Reviews asked for.
    reviews: AtomicUsize,
    /// Behave as an audience-unaware authenticator (answer with no `status.audiences`).
    ignore_audiences: AtomicBool,
}

fn json_response(status: u16, body: serde_json::Value) -> hyper::Response<Full<Bytes>> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn status_failure(code: u16, reason: &str, message: &str) -> hyper::Response<Full<Bytes>> {
    json_response(
        code,
        serde_json::json!({ "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "reason": reason, "code": code }),
    )
}

impl ApiServer {
    /// What kube-apiserver's TokenReview handler does, for bound service-account tokens.
    async fn handle(
        self: Arc<Self>,
        request: hyper::Request<Incoming>,
    ) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
        if request.method() != hyper::Method::POST
            || request.uri().path() != "/apis/authentication.k8s.io/v1/tokenreviews"
        {
            return Ok(status_failure(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ));
        }
        let bearer = request.headers().get("authorization").and_then(|v| v.to_str().ok());
        if bearer != Some(&format!("Bearer {AUTHORITY_BEARER}")) {
            return Ok(status_failure(401, "Unauthorized", "Unauthorized"));
        }
        let body = request.into_body().collect().await.unwrap().to_bytes();
        let Ok(review) = serde_json::from_slice::<serde_json::Value>(&body) else {
            return Ok(status_failure(400, "BadRequest", "not JSON"));
        };
        if review["apiVersion"] != "authentication.k8s.io/v1" || review["kind"] != "TokenReview" {
            return Ok(status_failure(400, "BadRequest", "not a TokenReview"));
        }
        self.reviews.fetch_add(1, Ordering::SeqCst);
        let token = review["spec"]["token"].as_str().unwrap_or_default();
        let wanted: Vec<String> = review["spec"]["audiences"]
            .as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let api_audiences = vec![ISSUER.to_owned()];
        let wanted = if wanted.is_empty() { api_audiences } else { wanted };

        let verdict = (|| {
            let claims = parse_compact(token)
                .ok()
                .and_then(|jws| jws.verify(&self.signing_key).ok())
                .and_then(|v| v.claims().ok())
                .ok_or(
                    "[invalid bearer token, square/go-jose: error in cryptographic primitive]",
                )?;
            if claims.iss.as_deref() != Some(ISSUER) {
                return Err("[invalid bearer token, issuer mismatch]");
            }
            if claims.exp.is_none_or(|exp| exp < unix_now()) {
                return Err("[invalid bearer token, service account token has expired]");
            }
            let common: Vec<String> =
                claims.aud.iter().filter(|a| wanted.contains(a)).cloned().collect();
            if common.is_empty() {
                return Err(
                    "[invalid bearer token, token audiences is invalid for the target audiences]",
                );
            }
            Ok((claims.sub.unwrap_or_default(), common))
        })();
        let mut answer = review.clone();
        answer["metadata"] = serde_json::json!({ "creationTimestamp": null });
        answer["status"] = match verdict {
            Ok((username, audiences)) => {
                let namespace = username.split(':').nth(2).unwrap_or_default().to_owned();
                let audiences = if self.ignore_audiences.load(Ordering::SeqCst) {
                    serde_json::Value::Null
                } else {
                    audiences.into()
                };
                serde_json::json!({
                    "authenticated": true,
                    "user": {
                        "username": username,
                        "uid": "0d0a5e8c-5a61-4d1c-9a55-6a8f3f4f1b11",
                        "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{namespace}"), "system:authenticated"],
                        "extra": {
                            "authentication.kubernetes.io/pod-name": ["builder-5d8f7c9b6-qx2lm"],
                            "authentication.kubernetes.io/pod-uid": ["3f9c7a10-7e57-4f0e-b3de-2a3c4d5e6f70"]
                        }
                    },
                    "audiences": audiences
                })
            }
            Err(error) => serde_json::json!({ "user": {}, "error": error }),
        };
        Ok(json_response(201, answer))
    }
}

/// The cluster: its CA, its API server on loopback and its service-account key.
struct Cluster {
    url: String,
    ca_pem: String,
    key: ClusterKey,
    server: Arc<ApiServer>,
}

/// A CA and a serving certificate for `localhost` and 127.0.0.1 under it.
fn serving_identity() -> (String, rustls::ServerConfig) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.distinguished_name.push(DnType::CommonName, "kubernetes");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let root = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "kubernetes.default.svc".to_owned()])
            .unwrap();
    params.distinguished_name.push(DnType::CommonName, "kube-apiserver");
    params.subject_alt_names.push(SanType::IpAddress([127, 0, 0, 1].into()));
    let cert = params.signed_by(&key, &issuer).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    (root.pem(), config)
}

async fn start_cluster() -> Cluster {
    let key = ClusterKey::new(Algorithm::Rs256);
    let server = Arc::new(ApiServer {
        signing_key: key.key.public().clone(),
        reviews: AtomicUsize::new(0),
        ignore_audiences: AtomicBool::new(false),
    });
    let (ca_pem, config) = serving_identity();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let state = server.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let state = state.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = hyper::service::service_fn(move |r| state.clone().handle(r));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Cluster { url: format!("https://localhost:{port}"), ca_pem, key, server }
}

/// The authority's K8sSA provisioner asking `url` with `ca_pem`, its bearer token in a
/// file that lives as long as the returned guard.
fn provisioner(url: &str, ca_pem: &str, bearer: &str) -> (K8sSaProvisioner, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{bearer}\n")).unwrap();
    let config = serde_json::json!({
        "type": "K8sSA",
        "name": "cluster-a",
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "tokenReview": {
            "url": url,
            "caCert": ca_pem,
            "bearerTokenFile": token_file.display().to_string(),
        },
    });
    let p = K8sSaProvisioner::from_json_in(&config.to_string(), &ProvisionerContext::default())
        .unwrap();
    (p, dir)
}

/// What the authority does: ask the key source about the token, then authorize.
async fn sign(
    p: &K8sSaProvisioner,
    token: &str,
) -> Result<keystation_core::provisioner::Grant, Denial> {
    let source = p.key_source().unwrap();
    assert!(source.per_credential());
    let keys = source.fetch_for(token).await.unwrap();
    authorize(p, token, Operation::SignX509, &keys, SystemTime::now())
}

#[tokio::test]
async fn bound_tokens_the_api_server_vouches_for_are_accepted() {
    let cluster = start_cluster().await;
    let (p, _guard) = provisioner(&cluster.url, &cluster.ca_pem, AUTHORITY_BEARER);
    let now = unix_now();

    let token = cluster.key.bound_token(&[AUDIENCE], now - 30, 3600, Some("7c0e-jti"));
    let grant = sign(&p, &token).await.unwrap();
    assert_eq!(grant.subject, SUB);
    assert_eq!(grant.sans, [SUB]);
    assert_eq!(grant.provisioner, "cluster-a");
    assert_eq!(grant.replay_id.as_deref(), Some("7c0e-jti"));
    assert_eq!(cluster.server.reviews.load(Ordering::SeqCst), 1);

    // Replay: the authority refuses a second use of the same id. The id is stable for a
    // token and differs between tokens.
    let plain = cluster.key.bound_token(&[AUDIENCE], now - 30, 3600, None);
    let first = sign(&p, &plain).await.unwrap().replay_id.unwrap();
    let second = sign(&p, &plain).await.unwrap().replay_id.unwrap();
    assert_eq!(first, second);
    assert_eq!(first, sha256_hex(&plain));
    let another = cluster.key.bound_token(&[AUDIENCE], now - 29, 3600, None);
    assert_ne!(sign(&p, &another).await.unwrap().replay_id.unwrap(), first);
}

#[tokio::test]
async fn wrong_audience_unknown_tokens_and_mismatched_answers_are_refused() {
    let cluster = start_cluster().await;
    let (p, _guard) = provisioner(&cluster.url, &cluster.ca_pem, AUTHORITY_BEARER);
    let now = unix_now();

    // For another audience (the API server's own): refused before any review.
    let api_token = cluster.key.bound_token(&[ISSUER], now, 3600, None);
    assert_eq!(sign(&p, &api_token).await, Err(Denial::WrongAudience));
    assert_eq!(cluster.server.reviews.load(Ordering::SeqCst), 0, "not worth a review");

    // Signed by someone else's key: the API server does not authenticate it.
    let stranger = ClusterKey::new(Algorithm::Rs256);
    let forged = stranger.bound_token(&[AUDIENCE], now, 3600, None);
    assert_eq!(sign(&p, &forged).await, Err(Denial::BadSignature));
    assert_eq!(cluster.server.reviews.load(Ordering::SeqCst), 1);

    // Expired: not sent; refused for its exp.
    let expired = cluster.key.bound_token(&[AUDIENCE], now - 7200, 3600, None);
    assert_eq!(sign(&p, &expired).await, Err(Denial::Expired));
    assert_eq!(cluster.server.reviews.load(Ordering::SeqCst), 1);

    // An answer about another token never vouches for this one.
    let good = cluster.key.bound_token(&[AUDIENCE], now, 3600, None);
    let source = p.key_source().unwrap();
    let other_keys =
        source.fetch_for(&cluster.key.bound_token(&[AUDIENCE], now - 1, 3600, None)).await.unwrap();
    assert_eq!(
        authorize(&p, &good, Operation::SignX509, &other_keys, SystemTime::now()),
        Err(Denial::UnknownKey)
    );
    assert_eq!(
        authorize(&p, &good, Operation::SignX509, &TrustedKeys::default(), SystemTime::now()),
        Err(Denial::UnknownKey)
    );

    // An audience-unaware server (empty status.audiences: "valid for the API server").
    cluster.server.ignore_audiences.store(true, Ordering::SeqCst);
    assert_eq!(sign(&p, &good).await, Err(Denial::WrongAudience));
    cluster.server.ignore_audiences.store(false, Ordering::SeqCst);
    assert!(sign(&p, &good).await.is_ok());

    // Legacy tokens are never reviewed: they do not expire.
    assert_eq!(sign(&p, &cluster.key.legacy_token()).await, Err(Denial::PolicyViolation));
}

#[tokio::test]
async fn an_api_server_that_cannot_be_asked_is_a_clear_key_fetch_error() {
    let cluster = start_cluster().await;
    let now = unix_now();
    let token = cluster.key.bound_token(&[AUDIENCE], now, 3600, None);
    let error_text = |e: keystation_provisioners::Error| {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        (matches!(e, keystation_provisioners::Error::KeyFetch { .. }), text)
    };

    // The authority's bearer token is not accepted: 401 from the API server.
    let (p, _g1) = provisioner(&cluster.url, &cluster.ca_pem, "not-the-authority");
    let e = p.key_source().unwrap().fetch_for(&token).await.unwrap_err();
    let (is_fetch, text) = error_text(e);
    assert!(is_fetch, "{text}");
    assert!(text.contains("tokenreviews") && text.contains("401"), "{text}");

    // The API server is down.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let (p, _g2) =
        provisioner(&format!("https://localhost:{closed}"), &cluster.ca_pem, AUTHORITY_BEARER);
    let (is_fetch, text) = error_text(p.key_source().unwrap().fetch_for(&token).await.unwrap_err());
    assert!(is_fetch, "{text}");
    assert!(text.contains(&format!("localhost:{closed}")) && text.contains("connect"), "{text}");

    // A server whose certificate the configured cluster CA did not issue.
    let (other_ca, _) = serving_identity();
    let (p, _g3) = provisioner(&cluster.url, &other_ca, AUTHORITY_BEARER);
    let (is_fetch, text) = error_text(p.key_source().unwrap().fetch_for(&token).await.unwrap_err());
    assert!(is_fetch, "{text}");
    assert!(text.contains("TLS handshake"), "{text}");

    // The bearer token file is missing.
    let (p, guard) = provisioner(&cluster.url, &cluster.ca_pem, AUTHORITY_BEARER);
    drop(guard);
    let (is_fetch, text) = error_text(p.key_source().unwrap().fetch_for(&token).await.unwrap_err());
    assert!(is_fetch, "{text}");
    assert!(text.contains("bearer token file"), "{text}");
    assert_eq!(cluster.server.reviews.load(Ordering::SeqCst), 0);
}
