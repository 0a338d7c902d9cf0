//! A loopback ACME server for tests (hyper over rustls, a throwaway CA from rcgen): the
//! directory, nonces, one account per key, orders with one authorization whose only
//! challenge is device-attest-01, finalize and the certificate download.
//!
//! It is strict where the client's correctness is at stake — every POST must be
//! `application/jose+json`, a flattened JWS that keystation-jose verifies with the
//! account's key, carrying an unused nonce this server issued and the exact URL requested,
//! `jwk` only on newAccount and `kid` (a known account) everywhere else, POST-as-GET with
//! an empty payload — and scripted where the test decides: how a challenge is validated
//! and a certificate issued (closures), how many polls stay `pending`/`processing`, which
//! `Retry-After` is sent, one `badNonce` refusal.
//!
//! Shared by keystation-acme-client's tests and keystation-piv-ops' (`#[path]`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use keystation_jose::Jwk;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};

/// A problem the test's closures answer with: ACME error name (`badAttestationStatement`)
/// and detail.
pub(crate) type Refusal = (String, String);

/// A refusal as the server answers it: status and problem document.
type Answered = (StatusCode, Value);

/// What a challenge response is checked with: the challenge's identifier value, the
/// payload (JSON) and the expected key authorization.
pub(crate) type Validate = Box<dyn Fn(&str, &Value, &str) -> Result<(), Refusal> + Send + Sync>;

/// What issues for a finalized order: the identifier value and the CSR's DER; the answer
/// is the PEM chain.
pub(crate) type Issue = Box<dyn Fn(&str, &[u8]) -> Result<String, Refusal> + Send + Sync>;

/// How the server behaves.
pub(crate) struct Script {
    /// Validates device-attest-01 responses.
    pub validate: Validate,
    /// Issues the certificate.
    pub issue: Issue,
    /// Polls of the authorization answered `pending` after the challenge was accepted.
    pub authz_pending_polls: u32,
    /// Polls of the order answered `processing` after finalize.
    pub order_processing_polls: u32,
    /// `Retry-After` sent with `pending`/`processing` answers.
    pub retry_after: Option<String>,
    /// The path whose first request is refused with `badNonce` (e.g. `/new-order`).
    pub bad_nonce_once_on: Option<String>,
    /// The directory says `externalAccountRequired`.
    pub external_account_required: bool,
    /// Identifier values newOrder refuses with `rejectedIdentifier`.
    pub rejected_identifiers: Vec<String>,
}

impl Script {
    /// Accepts every response, issues a fixed chain, answers at once.
    pub(crate) fn new(validate: Validate, issue: Issue) -> Self {
        Self {
            validate,
            issue,
            authz_pending_polls: 0,
            order_processing_polls: 0,
            retry_after: None,
            bad_nonce_once_on: None,
            external_account_required: false,
            rejected_identifiers: Vec::new(),
        }
    }
}

/// A request the server saw: its path and how it was signed.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    /// The path under the server's root.
    pub path: String,
    /// The method.
    pub method: String,
    /// The nonce used (POSTs).
    pub nonce: Option<String>,
    /// When.
    pub at: Instant,
}

#[derive(Default)]
struct State {
    issued_nonces: HashSet<String>,
    next_nonce: u64,
    accounts: Vec<Jwk>,
    orders: HashMap<usize, OrderState>,
    seen: Vec<Seen>,
    bad_nonce_sent: bool,
    bad_nonce_refusals: u32,
}

struct OrderState {
    account: usize,
    identifier: Value,
    token: String,
    challenge: &'static str,
    challenge_error: Option<Value>,
    authz_polls_left: u32,
    order_polls_left: u32,
    finalized: bool,
    chain: Option<String>,
}

struct Shared {
    base: String,
    script: Script,
    state: Mutex<State>,
}

/// The running server; stopped on drop.
pub(crate) struct MockAcme {
    pub(crate) addr: SocketAddr,
    /// The root of the server's TLS certificate.
    pub(crate) root_pem: String,
    /// `https://127.0.0.1:PORT/acme/mock/directory`.
    pub(crate) directory_url: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const ROOT: &str = "/acme/mock";

fn problem(status: StatusCode, name: &str, detail: &str) -> Answered {
    (
        status,
        json!({"type": format!("urn:ietf:params:acme:error:{name}"), "detail": detail,
               "status": status.as_u16()}),
    )
}

impl Shared {
    fn url(&self, path: &str) -> String {
        format!("{}{ROOT}{path}", self.base)
    }

    fn nonce(&self) -> String {
        let mut state = self.state.lock().unwrap();
        state.next_nonce += 1;
        let nonce = URL_SAFE_NO_PAD.encode(format!("nonce-{}", state.next_nonce));
        state.issued_nonces.insert(nonce.clone());
        nonce
    }

    /// Checks the JWS of a POST to `path`: the account index (`None` for newAccount's
    /// `jwk`) and the payload.
    fn verify(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<(Option<usize>, Vec<u8>, Jwk), Answered> {
        let malformed = |detail: &str| problem(StatusCode::BAD_REQUEST, "malformed", detail);
        if content_type != Some("application/jose+json") {
            return Err(problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "malformed",
                "Content-Type must be application/jose+json",
            ));
        }
        let jws: Value = serde_json::from_slice(body).map_err(|_| malformed("not JSON"))?;
        let part = |name: &str| {
            jws.get(name).and_then(Value::as_str).map(str::to_owned).ok_or_else(|| malformed(name))
        };
        let (protected, payload, signature) =
            (part("protected")?, part("payload")?, part("signature")?);
        if jws.as_object().map(|o| o.len()) != Some(3) {
            return Err(malformed("a flattened JWS has exactly three members"));
        }
        let header: Value = URL_SAFE_NO_PAD
            .decode(&protected)
            .ok()
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or_else(|| malformed("protected header"))?;
        let nonce = header["nonce"].as_str().ok_or_else(|| malformed("no nonce"))?.to_owned();
        {
            let mut state = self.state.lock().unwrap();
            state.seen.push(Seen {
                path: path.to_owned(),
                method: "POST".into(),
                nonce: Some(nonce.clone()),
                at: Instant::now(),
            });
            if !state.issued_nonces.remove(&nonce) {
                state.bad_nonce_refusals += 1;
                return Err(problem(StatusCode::BAD_REQUEST, "badNonce", "unknown or used nonce"));
            }
            let once = self.script.bad_nonce_once_on.as_deref() == Some(path);
            if once && !state.bad_nonce_sent {
                state.bad_nonce_sent = true;
                state.bad_nonce_refusals += 1;
                return Err(problem(StatusCode::BAD_REQUEST, "badNonce", "scripted refusal"));
            }
        }
        if header["url"].as_str() != Some(self.url(path).as_str()) {
            return Err(problem(StatusCode::UNAUTHORIZED, "unauthorized", "url mismatch"));
        }
        let (account, key) = match (header.get("jwk"), header.get("kid")) {
            (Some(jwk), None) if path == "/new-account" => {
                (None, Jwk::from_json_value(jwk).map_err(|_| malformed("jwk"))?)
            }
            (None, Some(kid)) if path != "/new-account" => {
                let kid = kid.as_str().unwrap_or_default();
                let index = kid
                    .strip_prefix(&self.url("/acct/"))
                    .and_then(|i| i.parse::<usize>().ok())
                    .ok_or_else(|| {
                        problem(StatusCode::BAD_REQUEST, "accountDoesNotExist", "unknown kid")
                    })?;
                let key =
                    self.state.lock().unwrap().accounts.get(index).cloned().ok_or_else(|| {
                        problem(StatusCode::BAD_REQUEST, "accountDoesNotExist", "unknown kid")
                    })?;
                (Some(index), key)
            }
            _ => return Err(malformed("jwk on newAccount only, kid everywhere else, not both")),
        };
        let compact = format!("{protected}.{payload}.{signature}");
        let verified = keystation_jose::parse_compact(&compact)
            .and_then(|jws| jws.verify(&key))
            .map_err(|e| problem(StatusCode::BAD_REQUEST, "malformed", &e.to_string()))?;
        Ok((account, verified.payload().to_vec(), key))
    }

    fn order_json(&self, id: usize, order: &OrderState) -> Value {
        let authz_valid = order.challenge == "valid" && order.authz_polls_left == 0;
        let status = if order.challenge == "invalid" {
            "invalid"
        } else if order.chain.is_some() && order.order_polls_left == 0 {
            "valid"
        } else if order.finalized {
            "processing"
        } else if authz_valid {
            "ready"
        } else {
            "pending"
        };
        let mut body = json!({
            "status": status,
            "identifiers": [order.identifier],
            "authorizations": [self.url(&format!("/authz/{id}"))],
            "finalize": self.url(&format!("/order/{id}/finalize")),
        });
        if status == "valid" {
            body["certificate"] = json!(self.url(&format!("/cert/{id}")));
        }
        if status == "invalid" {
            body["error"] = order.challenge_error.clone().unwrap_or(Value::Null);
        }
        body
    }

    fn challenge_json(&self, id: usize, order: &OrderState) -> Value {
        let mut challenge = json!({
            "type": "device-attest-01",
            "url": self.url(&format!("/chall/{id}")),
            "status": order.challenge,
            "token": order.token,
        });
        if let Some(error) = &order.challenge_error {
            challenge["error"] = error.clone();
        }
        challenge
    }

    /// Answers a POST to `path`: status, Location, body (JSON, or the PEM chain).
    fn post(
        &self,
        path: &str,
        content_type: Option<&str>,
        accept: Option<&str>,
        body: &[u8],
    ) -> Result<(StatusCode, Option<String>, Value), Answered> {
        let (account, payload, key) = self.verify(path, content_type, body)?;
        let payload_json = || {
            serde_json::from_slice::<Value>(&payload)
                .map_err(|_| problem(StatusCode::BAD_REQUEST, "malformed", "payload"))
        };
        let post_as_get = || {
            if payload.is_empty() {
                Ok(())
            } else {
                Err(problem(StatusCode::BAD_REQUEST, "malformed", "POST-as-GET has no payload"))
            }
        };
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let id = |i: usize| -> Result<usize, Answered> {
            segments
                .get(i)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| problem(StatusCode::NOT_FOUND, "malformed", "no such resource"))
        };
        let mut state = self.state.lock().unwrap();
        let owned = |state: &State, id: usize| {
            state.orders.get(&id).is_some_and(|o| Some(o.account) == account)
        };
        match segments.as_slice() {
            ["new-account"] => {
                let body = payload_json()?;
                if body["termsOfServiceAgreed"] != json!(true) {
                    return Err(problem(StatusCode::FORBIDDEN, "userActionRequired", "agree"));
                }
                let thumbprint = key.thumbprint();
                let index = match state.accounts.iter().position(|k| k.thumbprint() == thumbprint) {
                    Some(index) => index,
                    None => {
                        state.accounts.push(key);
                        state.accounts.len() - 1
                    }
                };
                Ok((
                    StatusCode::CREATED,
                    Some(self.url(&format!("/acct/{index}"))),
                    json!({"status": "valid", "contact": body["contact"],
                           "orders": self.url(&format!("/acct/{index}/orders"))}),
                ))
            }
            ["new-order"] => {
                let body = payload_json()?;
                let identifier = body["identifiers"][0].clone();
                let value = identifier["value"].as_str().unwrap_or_default().to_owned();
                if self.script.rejected_identifiers.contains(&value) {
                    return Err(problem(
                        StatusCode::FORBIDDEN,
                        "rejectedIdentifier",
                        &format!("will not issue for {value}"),
                    ));
                }
                let id = state.orders.len() + 1;
                let token = format!("token-{id}-{}", state.next_nonce);
                state.orders.insert(
                    id,
                    OrderState {
                        account: account.unwrap_or_default(),
                        identifier,
                        token,
                        challenge: "pending",
                        challenge_error: None,
                        authz_polls_left: self.script.authz_pending_polls,
                        order_polls_left: self.script.order_processing_polls,
                        finalized: false,
                        chain: None,
                    },
                );
                let order = self.order_json(id, &state.orders[&id]);
                Ok((StatusCode::CREATED, Some(self.url(&format!("/order/{id}"))), order))
            }
            ["authz", _] => {
                post_as_get()?;
                let id = id(1)?;
                if !owned(&state, id) {
                    return Err(problem(StatusCode::NOT_FOUND, "malformed", "no such authz"));
                }
                let order = state.orders.get_mut(&id).unwrap();
                let status = match order.challenge {
                    "valid" if order.authz_polls_left > 0 => {
                        order.authz_polls_left -= 1;
                        "pending"
                    }
                    "valid" => "valid",
                    "invalid" => "invalid",
                    _ => "pending",
                };
                let order = &state.orders[&id];
                let body = json!({
                    "status": status,
                    "identifier": order.identifier,
                    "challenges": [self.challenge_json(id, order)],
                });
                Ok((StatusCode::OK, None, body))
            }
            ["chall", _] => {
                let id = id(1)?;
                if !owned(&state, id) {
                    return Err(problem(StatusCode::NOT_FOUND, "malformed", "no such challenge"));
                }
                let body = payload_json()?;
                let order = state.orders.get_mut(&id).unwrap();
                let value = order.identifier["value"].as_str().unwrap_or_default().to_owned();
                let key_authorization = format!("{}.{}", order.token, key.thumbprint());
                match (self.script.validate)(&value, &body, &key_authorization) {
                    Ok(()) => order.challenge = "valid",
                    Err((name, detail)) => {
                        order.challenge = "invalid";
                        order.challenge_error = Some(json!({
                            "type": format!("urn:ietf:params:acme:error:{name}"),
                            "detail": detail,
                        }));
                    }
                }
                let order = &state.orders[&id];
                Ok((StatusCode::OK, None, self.challenge_json(id, order)))
            }
            ["order", _] => {
                post_as_get()?;
                let id = id(1)?;
                if !owned(&state, id) {
                    return Err(problem(StatusCode::NOT_FOUND, "malformed", "no such order"));
                }
                let order = state.orders.get_mut(&id).unwrap();
                if order.finalized && order.order_polls_left > 0 {
                    let body = self.order_json(id, order);
                    order.order_polls_left -= 1;
                    return Ok((StatusCode::OK, None, body));
                }
                Ok((StatusCode::OK, None, self.order_json(id, order)))
            }
            ["order", _, "finalize"] => {
                let id = id(1)?;
                if !owned(&state, id) {
                    return Err(problem(StatusCode::NOT_FOUND, "malformed", "no such order"));
                }
                let body = payload_json()?;
                let order = state.orders.get_mut(&id).unwrap();
                if self.order_json(id, order)["status"] != "ready" {
                    return Err(problem(StatusCode::FORBIDDEN, "orderNotReady", "not ready"));
                }
                let csr = body["csr"]
                    .as_str()
                    .and_then(|c| URL_SAFE_NO_PAD.decode(c).ok())
                    .ok_or_else(|| problem(StatusCode::BAD_REQUEST, "badCSR", "csr"))?;
                let value = order.identifier["value"].as_str().unwrap_or_default().to_owned();
                let chain = (self.script.issue)(&value, &csr)
                    .map_err(|(name, detail)| problem(StatusCode::FORBIDDEN, &name, &detail))?;
                order.finalized = true;
                order.chain = Some(chain);
                let body = self.order_json(id, order);
                Ok((StatusCode::OK, Some(self.url(&format!("/order/{id}"))), body))
            }
            ["cert", _] => {
                post_as_get()?;
                let id = id(1)?;
                if !owned(&state, id) {
                    return Err(problem(StatusCode::NOT_FOUND, "malformed", "no such cert"));
                }
                if accept != Some("application/pem-certificate-chain") {
                    return Err(problem(StatusCode::NOT_ACCEPTABLE, "malformed", "Accept"));
                }
                let chain = state.orders[&id].chain.clone().unwrap_or_default();
                Ok((StatusCode::OK, None, Value::String(chain)))
            }
            _ => Err(problem(StatusCode::NOT_FOUND, "malformed", "no such resource")),
        }
    }
}

fn respond(
    shared: &Shared,
    status: StatusCode,
    location: Option<String>,
    body: Value,
    retry: bool,
) -> Response<Full<Bytes>> {
    let (content_type, bytes) = match body {
        Value::String(pem) => ("application/pem-certificate-chain", pem.into_bytes()),
        Value::Null => ("application/json", Vec::new()),
        other => {
            let problem = other.get("type").is_some();
            let kind = if problem { "application/problem+json" } else { "application/json" };
            (kind, other.to_string().into_bytes())
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert("content-type", content_type.parse().unwrap());
    headers.insert("replay-nonce", shared.nonce().parse().unwrap());
    headers.insert("cache-control", "no-store".parse().unwrap());
    if let Some(location) = location {
        headers.insert("location", location.parse().unwrap());
    }
    if retry && let Some(value) = &shared.script.retry_after {
        headers.insert("retry-after", value.parse().unwrap());
    }
    response
}

async fn answer(
    request: hyper::Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let header =
        |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let content_type = header("content-type");
    let accept = header("accept");
    let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let Some(path) = path.strip_prefix(ROOT).map(str::to_owned) else {
        return Ok(respond(&shared, StatusCode::NOT_FOUND, None, Value::Null, false));
    };
    if method != hyper::Method::POST {
        shared.state.lock().unwrap().seen.push(Seen {
            path: path.clone(),
            method: method.to_string(),
            nonce: None,
            at: Instant::now(),
        });
    }
    Ok(match (method, path.as_str()) {
        (hyper::Method::GET, "/directory") => {
            let directory = json!({
                "newNonce": shared.url("/new-nonce"),
                "newAccount": shared.url("/new-account"),
                "newOrder": shared.url("/new-order"),
                "revokeCert": shared.url("/revoke-cert"),
                "keyChange": shared.url("/key-change"),
                "meta": {"externalAccountRequired": shared.script.external_account_required},
            });
            // No nonce with the directory: the client's first request takes one from
            // newNonce (RFC 8555 §7.2).
            let mut response = respond(&shared, StatusCode::OK, None, directory, false);
            response.headers_mut().remove("replay-nonce");
            response
        }
        (hyper::Method::HEAD, "/new-nonce") => {
            respond(&shared, StatusCode::OK, None, Value::Null, false)
        }
        (hyper::Method::POST, _) => {
            match shared.post(&path, content_type.as_deref(), accept.as_deref(), &body) {
                Ok((status, location, body)) => {
                    let waiting = matches!(
                        body.get("status").and_then(Value::as_str),
                        Some("pending" | "processing")
                    );
                    respond(&shared, status, location, body, waiting)
                }
                Err((status, body)) => respond(&shared, status, None, body, false),
            }
        }
        _ => respond(&shared, StatusCode::METHOD_NOT_ALLOWED, None, Value::Null, false),
    })
}

impl MockAcme {
    /// Starts the server on a free loopback port, on its own thread and runtime.
    pub(crate) fn start(script: Script) -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::default();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let root = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::from_params(&ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names.push(SanType::IpAddress([127, 0, 0, 1].into()));
        let cert = params.signed_by(&key, &issuer).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("https://127.0.0.1:{}", addr.port());
        let shared =
            Arc::new(Shared { base: base.clone(), script, state: Mutex::new(State::default()) });
        let served = shared.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let serve = async {
                    loop {
                        let Ok((tcp, _)) = listener.accept().await else { continue };
                        let acceptor = acceptor.clone();
                        let shared = served.clone();
                        tokio::spawn(async move {
                            let Ok(tls) = acceptor.accept(tcp).await else { return };
                            let service = hyper::service::service_fn(move |request| {
                                answer(request, shared.clone())
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
        Self {
            addr,
            root_pem: root.pem(),
            directory_url: format!("{base}{ROOT}/directory"),
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The requests seen so far.
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.shared.state.lock().unwrap().seen.clone()
    }

    /// How many requests were refused with `badNonce`.
    pub(crate) fn bad_nonce_refusals(&self) -> u32 {
        self.shared.state.lock().unwrap().bad_nonce_refusals
    }

    /// The URL of `path` under the server's root.
    pub(crate) fn url(&self, path: &str) -> String {
        self.shared.url(path)
    }
}

impl Drop for MockAcme {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
