//! The client against real servers on loopback: plain HTTP and HTTPS with a CA of the
//! test's own, JSON, cache lifetimes, error statuses, limits, timeouts and the plain-HTTP
//! policy.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use keystation_fetch::{Error, FetchOptions, Fetcher, Method, PlainHttp};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// What the server answers: the raw HTTP/1.1 response after reading one request; the
/// request head it read is echoed into `{request}` in the body.
#[derive(Clone)]
struct Canned(&'static str);

async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut io: S,
    canned: Canned,
) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match io.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&seen).replace("\r\n", " | ").replace('"', "'");
    let body = canned.0.replace("{request}", &head);
    let response = format!(
        "{}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
        body.split_once("\n\n").map_or("HTTP/1.1 200 OK", |(h, _)| h),
        body.split_once("\n\n").map_or(body.as_str(), |(_, b)| b).len(),
        body.split_once("\n\n").map_or(body.as_str(), |(_, b)| b),
    );
    let _ = io.write_all(response.as_bytes()).await;
    let _ = io.shutdown().await;
}

async fn plain_server(canned: Canned) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(answer(tcp, canned.clone()));
        }
    });
    format!("http://{addr}")
}

/// An HTTPS server with a certificate for `localhost` under a fresh CA; returns its URL
/// and the CA's PEM.
async fn tls_server(canned: Canned) -> (String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.distinguished_name.push(DnType::CommonName, "fetch test root");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let root = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
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
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let canned = canned.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    answer(tls, canned).await;
                }
            });
        }
    });
    (format!("https://localhost:{}", addr.port()), root.pem())
}

fn fetcher(roots_pem: Option<String>, plain_http: PlainHttp) -> Fetcher {
    Fetcher::new(FetchOptions {
        roots_pem,
        public_roots: false,
        plain_http,
        timeout: Duration::from_secs(2),
        max_body: 4096,
    })
    .unwrap()
}

#[tokio::test]
async fn https_json_with_configured_roots_and_cache_lifetime() {
    let (url, root) = tls_server(Canned(
        "HTTP/1.1 200 OK\r\ncache-control: public, max-age=600\r\ncontent-type: application/json\n\n{\"keys\":[],\"seen\":\"{request}\"}",
    ))
    .await;
    let client = fetcher(Some(root), PlainHttp::Refused);
    let (doc, max_age): (serde_json::Value, _) = client
        .get_json(&format!("{url}/certs?x=1"), &[("Metadata-Flavor", "Google")])
        .await
        .unwrap();
    assert_eq!(doc["keys"], serde_json::json!([]));
    let seen = doc["seen"].as_str().unwrap();
    assert!(seen.starts_with("GET /certs?x=1 HTTP/1.1"), "{seen}");
    assert!(seen.to_ascii_lowercase().contains("metadata-flavor: google"), "{seen}");
    assert_eq!(max_age, Some(Duration::from_secs(600)));

    // The same server is refused by a client that does not trust its root.
    let stranger =
        fetcher(Some(tls_server(Canned("HTTP/1.1 200 OK\n\n{}")).await.1), PlainHttp::Refused);
    let error = stranger.get_json::<serde_json::Value>(&url, &[]).await.unwrap_err();
    assert!(matches!(error, Error::Handshake { .. }), "{error}");
}

#[tokio::test]
async fn plain_http_only_where_the_policy_allows() {
    let url = plain_server(Canned("HTTP/1.1 200 OK\n\nsession-token")).await;
    let loopback = fetcher(None, PlainHttp::Loopback);
    let answer =
        loopback.send(Method::Put, &format!("{url}/latest/api/token"), &[], None).await.unwrap();
    assert_eq!(answer.text().unwrap(), "session-token");
    let refused = fetcher(None, PlainHttp::Refused);
    let error = refused.send(Method::Get, &url, &[], None).await.unwrap_err();
    assert!(matches!(error, Error::PlainHttpRefused { .. }), "{error}");
    let error = loopback.send(Method::Get, "http://192.0.2.1/x", &[], None).await.unwrap_err();
    assert!(matches!(error, Error::PlainHttpRefused { .. }), "{error}");
}

#[tokio::test]
async fn errors_name_the_status_the_limit_and_the_timeout() {
    let url = plain_server(Canned("HTTP/1.1 403 Forbidden\n\nno such service account")).await;
    let client = fetcher(None, PlainHttp::Loopback);
    let error = client
        .send(Method::Post, &url, &[], Some(("application/json", b"{}".to_vec())))
        .await
        .unwrap_err();
    match &error {
        Error::Status { status, message, .. } => {
            assert_eq!((*status, message.as_str()), (403, "no such service account"));
        }
        other => panic!("{other}"),
    }

    let big: &'static str =
        Box::leak(format!("HTTP/1.1 200 OK\n\n{}", "x".repeat(10_000)).into_boxed_str());
    let url = plain_server(Canned(big)).await;
    let error = client.send(Method::Get, &url, &[], None).await.unwrap_err();
    assert!(matches!(error, Error::TooLarge { limit: 4096, .. }), "{error}");

    let url = plain_server(Canned("HTTP/1.1 200 OK\n\nnot json")).await;
    let error = client.get_json::<serde_json::Value>(&url, &[]).await.unwrap_err();
    assert!(matches!(error, Error::Json { .. }), "{error}");

    // A server that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = silent.accept().await {
            held.push(tcp);
        }
    });
    let error = client.send(Method::Get, &format!("http://{addr}/"), &[], None).await.unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error}");

    // Nobody listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let error =
        client.send(Method::Get, &format!("http://{closed}/"), &[], None).await.unwrap_err();
    assert!(matches!(error, Error::Connect { .. }), "{error}");
}
