//! The client against a loopback HTTPS server (hyper and rustls, as the authority serves)
//! that answers step-ca's bodies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};

use super::*;

/// How the test server answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// As step-ca (with keystation's attested path).
    Normal,
    /// Every request: 500 with a plain-text body.
    TextErrors,
    /// Every request: 200 with a body that is not JSON.
    Garbage,
    /// Never answers.
    Silent,
}

/// A CA and the server's certificate under it.
struct Pki {
    root_pem: String,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: Vec<u8>,
}

fn pki(name: &str) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.distinguished_name.push(DnType::CommonName, name);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let root = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut server = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    server.subject_alt_names.push(SanType::IpAddress([127, 0, 0, 1].into()));
    let cert = server.signed_by(&key, &issuer).unwrap();
    Pki {
        root_pem: root.pem(),
        server_chain: vec![cert.der().clone()],
        server_key: key.serialize_der(),
    }
}

/// What the server saw: method, path, Host header, JSON body.
type Seen = Arc<Mutex<Vec<(String, String, String, Value)>>>;

struct TestServer {
    addr: SocketAddr,
    root_pem: String,
    seen: Seen,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    fn start(mode: Mode) -> Self {
        let pki = pki("test authority root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.server_key.clone()));
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(pki.server_chain.clone(), key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Seen = Arc::default();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let seen_by_server = seen.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let serve = async {
                    loop {
                        let Ok((tcp, _)) = listener.accept().await else { continue };
                        let acceptor = acceptor.clone();
                        let seen = seen_by_server.clone();
                        tokio::spawn(async move {
                            let Ok(tls) = acceptor.accept(tcp).await else { return };
                            let service = hyper::service::service_fn(move |request| {
                                answer(request, mode, seen.clone())
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(tls), service)
                                .await;
                        });
                    }
                };
                tokio::select! {
                    () = serve => {}
                    _ = stopped => {}
                }
            });
        });
        Self { addr, root_pem: pki.root_pem, seen, stop: Some(stop), thread: Some(thread) }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    fn seen(&self) -> Vec<(String, String, String, Value)> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, "application/json".parse().unwrap());
    response
}

async fn answer(
    request: hyper::Request<Incoming>,
    mode: Mode,
    seen: Seen,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let host = request
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    seen.lock().unwrap().push((method.clone(), path.clone(), host, body.clone()));
    let error = |status: StatusCode, message: &str| {
        json_response(status, &json!({"status": status.as_u16(), "message": message}))
    };
    Ok(match mode {
        Mode::Silent => std::future::pending().await,
        Mode::TextErrors => {
            let mut response = Response::new(Full::new(Bytes::from("internal failure\n")));
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response
        }
        Mode::Garbage => Response::new(Full::new(Bytes::from("<html>hello</html>"))),
        Mode::Normal => match (method.as_str(), path.as_str()) {
            ("GET", "/health") => json_response(StatusCode::OK, &json!({"status": "ok"})),
            ("GET", "/roots") => json_response(
                StatusCode::OK,
                &json!({"crts": ["-----BEGIN CERTIFICATE-----\nroot\n-----END CERTIFICATE-----\n"]}),
            ),
            ("POST", "/1.0/sign-attested") => {
                let field = |pointer: &str| body.pointer(pointer).and_then(Value::as_str);
                match (
                    field("/provisioner"),
                    field("/csr"),
                    field("/attestation/slotCertificate"),
                    field("/attestation/intermediate"),
                ) {
                    (Some("strict"), ..) => error(
                        StatusCode::FORBIDDEN,
                        "request violates provisioner policy: touch policy never of slot 9a is \
                         not allowed (allowed: always)",
                    ),
                    (Some(_), Some(csr), Some(_), Some(_)) => json_response(
                        StatusCode::CREATED,
                        &json!({
                            "crt": format!("leaf for {csr}"),
                            "ca": "intermediate",
                            "certChain": [format!("leaf for {csr}"), "intermediate"],
                        }),
                    ),
                    _ => error(StatusCode::BAD_REQUEST, "missing field"),
                }
            }
            _ => error(StatusCode::NOT_FOUND, "not found"),
        },
    })
}

#[tokio::test]
async fn health_roots_and_attested_signing_speak_step_ca_json() {
    let server = TestServer::start(Mode::Normal);
    let client = CaClient::new(&format!("{}/", server.url()), &server.root_pem).unwrap();
    assert_eq!(client.url(), server.url());
    assert_eq!(client.health().await.unwrap(), "ok");
    let roots = client.roots().await.unwrap();
    assert_eq!(roots.len(), 1);
    assert!(roots[0].contains("BEGIN CERTIFICATE"));

    let signed = client.sign_attested("yk", "CSR-PEM", "SLOT-PEM", "F9-PEM").await.unwrap();
    assert_eq!(
        signed,
        SignResponse {
            crt: "leaf for CSR-PEM".into(),
            ca: "intermediate".into(),
            cert_chain: vec!["leaf for CSR-PEM".into(), "intermediate".into()],
        }
    );
    let seen = server.seen();
    let (method, path, host, body) = seen.last().unwrap();
    assert_eq!((method.as_str(), path.as_str()), ("POST", "/1.0/sign-attested"));
    assert_eq!(host, &format!("127.0.0.1:{}", server.addr.port()));
    assert_eq!(
        body,
        &json!({"provisioner": "yk", "csr": "CSR-PEM",
                "attestation": {"slotCertificate": "SLOT-PEM", "intermediate": "F9-PEM"}})
    );
}

#[tokio::test]
async fn refusals_carry_the_status_and_the_servers_message() {
    let server = TestServer::start(Mode::Normal);
    let client = CaClient::new(&server.url(), &server.root_pem).unwrap();
    let err = client.sign_attested("strict", "CSR", "SLOT", "F9").await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    let Error::Server { message, .. } = &err else { panic!("{err:?}") };
    assert!(message.contains("touch policy never of slot 9a is not allowed"), "{message}");
    assert!(err.to_string().contains("answered 403"), "{err}");

    let text = TestServer::start(Mode::TextErrors);
    let client = CaClient::new(&text.url(), &text.root_pem).unwrap();
    let err = client.health().await.unwrap_err();
    assert!(
        matches!(&err, Error::Server { status: 500, message, .. } if message == "internal failure"),
        "{err:?}"
    );

    let garbage = TestServer::start(Mode::Garbage);
    let client = CaClient::new(&garbage.url(), &garbage.root_pem).unwrap();
    let err = client.roots().await.unwrap_err();
    assert!(matches!(err, Error::BadResponse { .. }), "{err:?}");
}

#[tokio::test]
async fn only_the_given_root_is_trusted() {
    let server = TestServer::start(Mode::Normal);
    let stranger = pki("another root");
    let client = CaClient::new(&server.url(), &stranger.root_pem).unwrap();
    let err = client.health().await.unwrap_err();
    assert!(matches!(err, Error::Handshake { .. }), "{err:?}");
    assert!(server.seen().is_empty(), "no request may reach an untrusted server");

    // The server's certificate names 127.0.0.1 and localhost, not another IP.
    let client = CaClient::new(&format!("https://[::1]:{}", server.addr.port()), &server.root_pem);
    if let Ok(client) = client {
        let err = client.health().await.unwrap_err();
        assert!(matches!(err, Error::Connect { .. } | Error::Handshake { .. }), "{err:?}");
    }
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let server = TestServer::start(Mode::Silent);
    let client = CaClient::new(&server.url(), &server.root_pem)
        .unwrap()
        .with_timeout(Duration::from_millis(300));
    let err = client.health().await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
}

#[test]
fn urls_and_roots_are_checked() {
    let root = pki("r").root_pem;
    for (url, words) in [
        ("http://127.0.0.1:9443", "https://"),
        ("https://", "https://host"),
        ("https://ca.example/1.0", "no path"),
        ("https://user@ca.example", "no path"),
        ("https://ca.example:port", "bad host or port"),
        ("https://ca.example:70000", "bad host or port"),
    ] {
        let err = CaClient::new(url, &root).unwrap_err();
        assert!(
            matches!(err, Error::BadUrl { .. }) && err.to_string().contains(words),
            "{url}: {err}"
        );
    }
    assert_eq!(CaClient::new("https://ca.example", &root).unwrap().url(), "https://ca.example:443");
    assert_eq!(CaClient::new("https://[::1]:9443", &root).unwrap().url(), "https://[::1]:9443");
    let err = CaClient::new("https://ca.example", "no pem here").unwrap_err();
    assert!(matches!(err, Error::BadRoot(_)), "{err:?}");
}

#[test]
fn the_blocking_client_runs_its_own_runtime() {
    let server = TestServer::start(Mode::Normal);
    let client = BlockingCaClient::new(&server.url(), &server.root_pem).unwrap();
    assert_eq!(client.health().unwrap(), "ok");
    let signed = client.sign_attested("yk", "C", "S", "I").unwrap();
    assert_eq!(signed.crt, "leaf for C");
    let err = client.sign_attested("strict", "C", "S", "I").unwrap_err();
    assert_eq!(err.status(), Some(403));
}
