//! A fake Kubernetes API server for the `certificates.k8s.io/v1` CertificateSigningRequest
//! resource, enough for a client that enrols a key: create a CSR, poll it, approve it
//! through the `approval` subresource, read the issued certificate.
//!
//! It is a real hyper HTTP/1.1 server on loopback TLS (rustls with ring) with the test
//! server certificate, on its own thread with its own tokio runtime, so blocking tests can
//! use it; it stops on drop. Requests must carry the configured bearer token or, if
//! enabled, a client certificate from the test CA (checked during the handshake; a
//! certificate from any other CA fails the handshake); anything else gets 401. A request
//! that sends a bearer token is judged by the token alone.
//!
//! Routes (under `/apis/certificates.k8s.io/v1/certificatesigningrequests`):
//!
//! * `POST` — creates; 201 with the stored object. `spec.signerName` must be
//!   `kubernetes.io/kube-apiserver-client`, `spec.usages` must contain `client auth`,
//!   `spec.request` must be base64 of a PEM "CERTIFICATE REQUEST" whose signature verifies;
//!   otherwise 422 (400 for a body that is not JSON, 409 for a duplicate name), each with a
//!   `Status` object as Kubernetes sends.
//! * `GET` — the list; `GET …/{name}` — one object. Depending on [`Approval`] a GET may
//!   approve it first: the certificate (base64 of PEM, signed by the test CA) is then in
//!   `status.certificate` and `status.conditions` holds `Approved`.
//! * `PUT …/{name}/approval` — sets the conditions from the body: `Denied` if the body's
//!   `status.conditions` has it, otherwise `Approved` (and the certificate is issued).
//!
//! Every request is recorded ([`KubeApi::requests`]) with its method, path, credentials and
//! answer, for assertions.
//!
//! [`Misbehavior`] makes it a broken server instead, for the client's limits: one that
//! never answers, one whose answer never ends, one that stops in the middle of an answer.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};

use super::test_pki::{Pki, TestCa, parse_csr};

/// The collection path of the resource.
pub const CSR_PATH: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
/// The only signer this server accepts.
pub const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client";
/// A timestamp for every object (the fake has no clock worth reporting).
const TIMESTAMP: &str = "2025-01-01T00:00:00Z";

/// When a created CSR gets approved without a PUT to its `approval` subresource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Approval {
    /// The first `pending_gets` GETs of the object show it pending; the next one approves
    /// it (0: the first GET already shows the certificate).
    AfterGets {
        /// How many GETs see it pending.
        pending_gets: usize,
    },
    /// Stays pending until approved by `PUT …/approval` or [`KubeApi::approve`].
    Manual,
    /// The first GET denies it with this message (condition `Denied`).
    Deny(String),
}

/// How the server answers every request (after the TLS handshake and reading the request).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Misbehavior {
    /// As the module documentation says.
    #[default]
    None,
    /// Never answers: the connection stays open and silent.
    NeverAnswer,
    /// 200 with a chunked JSON-looking body that never ends (64 KiB chunks, as fast as the
    /// client reads).
    EndlessBody,
    /// 200 with the headers and the first 100 bytes of a body, then silence.
    StallInBody,
}

/// How clients may authenticate.
#[derive(Clone, Debug)]
pub struct KubeApiConfig {
    /// Accept `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Ask for a client certificate in the handshake and accept one from the test CA.
    pub client_certs: bool,
    /// When CSRs get approved.
    pub approval: Approval,
    /// A broken server instead. Requests are still recorded: status 0 for those never
    /// answered, 200 for answers whose body never ends.
    pub misbehavior: Misbehavior,
}

impl Default for KubeApiConfig {
    fn default() -> Self {
        Self {
            token: Some("keystation-test-token".to_owned()),
            client_certs: true,
            approval: Approval::AfterGets { pending_gets: 1 },
            misbehavior: Misbehavior::None,
        }
    }
}

/// The credentials a request presented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// None.
    Anonymous,
    /// `Authorization: Bearer <token>` (the token as sent, right or wrong).
    Bearer(String),
    /// A verified client certificate, its subject as x509-parser prints it
    /// (e.g. `O=system:masters, CN=system:admin`).
    ClientCert(String),
}

/// One request the server answered.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path with the query string.
    pub path: String,
    /// The credentials it carried.
    pub auth: Auth,
    /// The status code of the answer.
    pub status: u16,
}

enum CsrState {
    Pending,
    Approved { certificate_pem: String },
    Denied { message: String },
}

struct StoredCsr {
    object: Value,
    request_pem: Vec<u8>,
    gets: usize,
    state: CsrState,
}

#[derive(Default)]
struct State {
    csrs: BTreeMap<String, StoredCsr>,
    seen: Vec<SeenRequest>,
    next_uid: u64,
}

struct Shared {
    config: KubeApiConfig,
    ca: TestCa,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running fake API server; stops on drop.
pub struct KubeApi {
    port: u16,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for KubeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeApi").field("port", &self.port).finish_non_exhaustive()
    }
}

fn io_error(context: &str, e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("{context}: {e}"))
}

impl KubeApi {
    /// Starts the server on a free loopback port with `pki`'s server certificate, trusting
    /// `pki.ca` for client certificates and issuing from it. Listening when it returns.
    pub fn start(pki: &Pki, config: KubeApiConfig) -> std::io::Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| io_error("TLS versions", e))?;
        let builder = if config.client_certs {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from(pki.ca.cert_der.clone()))
                .map_err(|e| io_error("test CA", e))?;
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| io_error("client verifier", e))?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.server.key_der.clone()));
        let mut tls = builder
            .with_single_cert(vec![CertificateDer::from(pki.server.cert_der.clone())], key)
            .map_err(|e| io_error("server certificate", e))?;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let shared =
            Arc::new(Shared { config, ca: pki.ca.clone(), state: Mutex::new(State::default()) });
        let stop = Arc::new(AtomicBool::new(false));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let thread = {
            let shared = shared.clone();
            let stop = stop.clone();
            std::thread::Builder::new().name("kube-api".to_owned()).spawn(move || {
                runtime.block_on(accept_loop(listener, acceptor, shared, stop));
                // Dropping the runtime here ends every open connection.
            })?
        };
        Ok(Self { port, shared, stop, thread: Some(thread) })
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Every request answered so far, oldest first.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.shared.lock().seen.clone()
    }

    /// The names of the stored CSRs.
    pub fn csr_names(&self) -> Vec<String> {
        self.shared.lock().csrs.keys().cloned().collect()
    }

    /// The object a GET would return now (without counting as a GET).
    pub fn csr(&self, name: &str) -> Option<Value> {
        let state = self.shared.lock();
        state.csrs.get(name).map(render)
    }

    /// Approves `name` (as `PUT …/approval` would); false if there is no such CSR.
    pub fn approve(&self, name: &str) -> bool {
        let mut state = self.shared.lock();
        state.csrs.get_mut(name).map(|csr| approve(&self.shared.ca, csr)).is_some()
    }

    /// Denies `name` with `message`; false if there is no such CSR.
    pub fn deny(&self, name: &str, message: &str) -> bool {
        let mut state = self.shared.lock();
        let Some(csr) = state.csrs.get_mut(name) else { return false };
        csr.state = CsrState::Denied { message: message.to_owned() };
        true
    }
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
    loop {
        let accepted = listener.accept().await;
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok((tcp, _)) = accepted else { continue };
        let acceptor = acceptor.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            // A failed handshake (no trusted certificate, say) just closes the connection.
            let Ok(tls) = acceptor.accept(tcp).await else { return };
            let peer =
                tls.get_ref().1.peer_certificates().and_then(|chain| chain.first()).and_then(
                    |cert| {
                        x509_parser::parse_x509_certificate(cert)
                            .ok()
                            .map(|(_, cert)| cert.subject().to_string())
                    },
                );
            let service = hyper::service::service_fn(move |request| {
                let shared = shared.clone();
                let peer = peer.clone();
                async move { Ok::<_, Infallible>(misbehave(&shared, peer, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

type Answer = Response<Full<Bytes>>;

/// An answer's body: a whole one, or one of [`Misbehavior`]'s.
enum ReplyBody {
    Full(Full<Bytes>),
    Endless,
    /// Sends `Some` once, then stays pending for ever.
    Stall(Option<Bytes>),
}

impl hyper::body::Body for ReplyBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        use std::task::Poll;
        static CHUNK: [u8; 64 * 1024] = [b' '; 64 * 1024];
        match self.get_mut() {
            Self::Full(full) => std::pin::Pin::new(full).poll_frame(cx),
            Self::Endless => {
                Poll::Ready(Some(Ok(hyper::body::Frame::data(Bytes::from_static(&CHUNK)))))
            }
            Self::Stall(first) => match first.take() {
                Some(data) => Poll::Ready(Some(Ok(hyper::body::Frame::data(data)))),
                // Never woken: the connection stays open with the answer unfinished.
                None => Poll::Pending,
            },
        }
    }
}

/// Who the request says it is: its bearer token, else the client certificate's subject.
fn auth_of(request: &Request<Incoming>, peer: Option<String>) -> Auth {
    let bearer = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::to_owned);
    match (bearer, peer) {
        (Some(token), _) => Auth::Bearer(token),
        (None, Some(subject)) => Auth::ClientCert(subject),
        (None, None) => Auth::Anonymous,
    }
}

/// Answers as configured: [`handle`] or one of the [`Misbehavior`]s (recorded too).
async fn misbehave(
    shared: &Shared,
    peer: Option<String>,
    request: Request<Incoming>,
) -> Response<ReplyBody> {
    let misbehavior = shared.config.misbehavior;
    if misbehavior == Misbehavior::None {
        return handle(shared, peer, request).await.map(ReplyBody::Full);
    }
    let status = if misbehavior == Misbehavior::NeverAnswer { 0 } else { 200 };
    let auth = auth_of(&request, peer);
    shared.lock().seen.push(SeenRequest {
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
        auth,
        status,
    });
    let _ = request.into_body().collect().await;
    let body = match misbehavior {
        Misbehavior::NeverAnswer => return std::future::pending().await,
        Misbehavior::EndlessBody => ReplyBody::Endless,
        _ => ReplyBody::Stall(Some(Bytes::from_static(
            br#"{"kind":"CertificateSigningRequest","apiVersion":"certificates.k8s.io/v1","metadata":{"name":"#,
        ))),
    };
    let mut response = Response::new(body);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn answer(status: StatusCode, body: &Value) -> Answer {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// A `meta/v1` Status for a failure, as the API server sends with 4xx answers.
fn failure(status: StatusCode, reason: &str, message: &str) -> Answer {
    answer(
        status,
        &json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": status.as_u16(),
        }),
    )
}

async fn handle(shared: &Shared, peer: Option<String>, request: Request<Incoming>) -> Answer {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let path_and_query =
        request.uri().path_and_query().map_or_else(|| path.clone(), ToString::to_string);
    let auth = auth_of(&request, peer);
    let body = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let response = route(shared, &auth, &method, &path, &body);
    shared.lock().seen.push(SeenRequest {
        method: method.to_string(),
        path: path_and_query,
        auth,
        status: response.status().as_u16(),
    });
    response
}

fn route(shared: &Shared, auth: &Auth, method: &Method, path: &str, body: &[u8]) -> Answer {
    let user = match auth {
        Auth::Bearer(token) if shared.config.token.as_deref() == Some(token.as_str()) => {
            "system:serviceaccount:kube-system:keystation-test".to_owned()
        }
        Auth::ClientCert(subject) if shared.config.client_certs => subject.clone(),
        _ => return failure(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized"),
    };
    let Some(rest) = path.strip_prefix(CSR_PATH) else {
        return failure(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        );
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    match (method, segments.as_slice()) {
        (&Method::POST, []) => create(shared, &user, body),
        (&Method::GET, []) => {
            let items: Vec<Value> = shared.lock().csrs.values().map(render).collect();
            answer(
                StatusCode::OK,
                &json!({
                    "kind": "CertificateSigningRequestList",
                    "apiVersion": "certificates.k8s.io/v1",
                    "metadata": {"resourceVersion": "1"},
                    "items": items,
                }),
            )
        }
        (&Method::GET, [name]) => {
            let mut state = shared.lock();
            let Some(csr) = state.csrs.get_mut(*name) else { return not_found(name) };
            csr.gets += 1;
            if matches!(csr.state, CsrState::Pending) {
                match &shared.config.approval {
                    Approval::AfterGets { pending_gets } if csr.gets > *pending_gets => {
                        approve(&shared.ca, csr);
                    }
                    Approval::Deny(message) => {
                        csr.state = CsrState::Denied { message: message.clone() };
                    }
                    _ => {}
                }
            }
            answer(StatusCode::OK, &render(csr))
        }
        (&Method::PUT, [name, "approval"]) => {
            let Ok(update) = serde_json::from_slice::<Value>(body) else {
                return failure(StatusCode::BAD_REQUEST, "BadRequest", "the body is not JSON");
            };
            let mut state = shared.lock();
            let Some(csr) = state.csrs.get_mut(*name) else { return not_found(name) };
            let conditions = update["status"]["conditions"].as_array().cloned().unwrap_or_default();
            let denied = conditions.iter().find(|c| c["type"] == "Denied");
            if let Some(denied) = denied {
                let message = denied["message"].as_str().unwrap_or("denied").to_owned();
                csr.state = CsrState::Denied { message };
            } else {
                approve(&shared.ca, csr);
            }
            answer(StatusCode::OK, &render(csr))
        }
        (_, [] | [_] | [_, "approval"]) => failure(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!("{method} is not supported here"),
        ),
        _ => failure(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        ),
    }
}

fn not_found(name: &str) -> Answer {
    failure(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("certificatesigningrequests.certificates.k8s.io \"{name}\" not found"),
    )
}

fn invalid(name: &str, field: &str, detail: &str) -> Answer {
    failure(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid",
        &format!(
            "CertificateSigningRequest.certificates.k8s.io \"{name}\" is invalid: {field}: {detail}"
        ),
    )
}

fn create(shared: &Shared, user: &str, body: &[u8]) -> Answer {
    let Ok(mut object) = serde_json::from_slice::<Value>(body) else {
        return failure(StatusCode::BAD_REQUEST, "BadRequest", "the body is not JSON");
    };
    let mut state = shared.lock();
    let name =
        match (object["metadata"]["name"].as_str(), object["metadata"]["generateName"].as_str()) {
            (Some(name), _) if !name.is_empty() => name.to_owned(),
            (_, Some(prefix)) if !prefix.is_empty() => format!("{prefix}{:05}", state.next_uid),
            _ => return invalid("", "metadata.name", "Required value: name or generateName"),
        };
    let spec = &object["spec"];
    if spec["signerName"].as_str() != Some(CLIENT_SIGNER) {
        return invalid(
            &name,
            "spec.signerName",
            &format!(
                "Unsupported value: {}: supported values: \"{CLIENT_SIGNER}\"",
                spec["signerName"]
            ),
        );
    }
    let usages = spec["usages"].as_array().cloned().unwrap_or_default();
    if !usages.iter().any(|usage| usage == "client auth") {
        return invalid(&name, "spec.usages", "Required value: must include \"client auth\"");
    }
    let Some(request_pem) = spec["request"].as_str().and_then(|b64| BASE64.decode(b64).ok()) else {
        return invalid(&name, "spec.request", "Invalid value: not base64");
    };
    let is_pem = std::str::from_utf8(&request_pem)
        .is_ok_and(|text| text.contains("-----BEGIN CERTIFICATE REQUEST-----"));
    if !is_pem {
        return invalid(
            &name,
            "spec.request",
            "Invalid value: PEM block type must be CERTIFICATE REQUEST",
        );
    }
    if let Err(e) = parse_csr(&request_pem) {
        return invalid(&name, "spec.request", &format!("Invalid value: {e}"));
    }
    if state.csrs.contains_key(&name) {
        return failure(
            StatusCode::CONFLICT,
            "AlreadyExists",
            &format!("certificatesigningrequests.certificates.k8s.io \"{name}\" already exists"),
        );
    }
    state.next_uid += 1;
    object["apiVersion"] = json!("certificates.k8s.io/v1");
    object["kind"] = json!("CertificateSigningRequest");
    object["metadata"]["name"] = json!(name);
    object["metadata"]["uid"] = json!(format!("00000000-0000-4000-8000-{:012}", state.next_uid));
    object["metadata"]["resourceVersion"] = json!(state.next_uid.to_string());
    object["metadata"]["creationTimestamp"] = json!(TIMESTAMP);
    object["spec"]["username"] = json!(user);
    object["status"] = json!({});
    let stored = StoredCsr { object, request_pem, gets: 0, state: CsrState::Pending };
    let rendered = render(&stored);
    state.csrs.insert(name, stored);
    answer(StatusCode::CREATED, &rendered)
}

/// Issues the certificate (or records why not, as condition `Failed`).
fn approve(ca: &TestCa, csr: &mut StoredCsr) {
    if !matches!(csr.state, CsrState::Pending) {
        return;
    }
    csr.state = match ca.sign_csr(&csr.request_pem) {
        Ok(certificate_pem) => CsrState::Approved { certificate_pem },
        Err(e) => CsrState::Denied { message: format!("signing failed: {e}") },
    };
}

fn render(csr: &StoredCsr) -> Value {
    let mut object = csr.object.clone();
    let condition = |kind: &str, reason: &str, message: &str| {
        json!({
            "type": kind,
            "status": "True",
            "reason": reason,
            "message": message,
            "lastUpdateTime": TIMESTAMP,
            "lastTransitionTime": TIMESTAMP,
        })
    };
    object["status"] = match &csr.state {
        CsrState::Pending => json!({}),
        CsrState::Approved { certificate_pem } => json!({
            "conditions": [condition("Approved", "KeystationTestApprove", "approved by the fake API")],
            "certificate": BASE64.encode(certificate_pem),
        }),
        CsrState::Denied { message } => json!({
            "conditions": [condition("Denied", "KeystationTestDeny", message)],
        }),
    };
    object
}
