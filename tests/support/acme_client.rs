//! A small ACME (RFC 8555) client for the protocol tests (tests/acme_protocol.rs), written
//! from the RFC rather than from the server it tests, and low-level on purpose: a test can
//! sign any protected header (a foreign `alg`, another `url`, a spent nonce), flip a byte
//! of a signature, send the same body twice, and read every header of the answer.
//!
//! * [`AcmeClient`]: HTTPS to one authority (hyper over rustls, trusting only its root,
//!   through the authority harness's [`Client`]), the directory (§7.1.1), nonces from
//!   `newNonce` (HEAD, §7.2) and from every answer's `Replay-Nonce` (§6.5), POSTs with
//!   `Content-Type: application/jose+json` (§6.2), POST-as-GET (§6.3) and polling (§7.5.1).
//! * [`Signer`]: an account key (ES256, `keystation_jose::PrivateJwk`) named by `jwk` or,
//!   once the account exists, by its URL as `kid` (§6.2).
//! * [`flattened_jws`], [`sign_request`]: the flattened JWS JSON serialization (RFC 7515
//!   §7.2.2) of a protected header and a payload; [`key_change`] (§7.3.5) and
//!   [`external_account_binding`] (§7.3.4, HS256 under the operator's MAC key) on top.
//! * [`key_authorization`] (§8.1) and [`Http01Responder`], the loopback server that
//!   answers `/.well-known/acme-challenge/{token}` (§8.3) and counts what it is asked.
//! * [`LeafKey`]: a certificate key that is both a CSR's key (rcgen) and a JWS signer, for
//!   revocation signed by the certificate's key (§7.6).
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use keystation_jose::{Algorithm, Jwk, PrivateJwk};
use serde_json::{Value, json};

use crate::harness::{Client, hmac_sha256};

/// The media type of every ACME POST body (RFC 8555 §6.2).
pub(crate) const JOSE_JSON: &str = "application/jose+json";
/// The media type of a certificate chain download (RFC 8555 §7.4.2, §9.1).
pub(crate) const PEM_CHAIN: &str = "application/pem-certificate-chain";
/// The media type of problem documents (RFC 7807 §6.1).
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";
/// The prefix of ACME's error types (RFC 8555 §6.7).
pub(crate) const ERROR_PREFIX: &str = "urn:ietf:params:acme:error:";
/// How long one request may take before the test gives up on it.
const REQUEST_WAIT: Duration = Duration::from_secs(60);

/// base64url without padding (RFC 8555 §6.1).
pub(crate) fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The inverse of [`b64url`]; panics on bad input (the test's own data).
pub(crate) fn b64url_decode(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap_or_else(|e| panic!("{text:?} is not base64url: {e}"))
}

// --- answers -----------------------------------------------------------------------------

/// One HTTP answer: status, every header (names lower-case, in order) and the body.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The first value of header `name`.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// `Replay-Nonce` (RFC 8555 §6.5.1).
    pub(crate) fn nonce(&self) -> Option<&str> {
        self.header("replay-nonce")
    }

    /// `Location`.
    pub(crate) fn location(&self) -> Option<&str> {
        self.header("location")
    }

    /// The targets of every `Link` with relation `rel` (RFC 8288: `<url>;rel="…"`, several
    /// per header or several headers).
    pub(crate) fn links(&self, rel: &str) -> Vec<String> {
        let mut found = Vec::new();
        for (_, value) in self.headers.iter().filter(|(n, _)| n == "link") {
            for link in value.split(',') {
                let Some((target, params)) = link.trim().split_once('>') else { continue };
                let target = target.trim().trim_start_matches('<');
                let has_rel = params.split(';').any(|p| {
                    let p = p.trim();
                    p.strip_prefix("rel=").is_some_and(|r| r.trim_matches('"') == rel)
                });
                if has_rel {
                    found.push(target.to_owned());
                }
            }
        }
        found
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (`Null` when it is not).
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// A problem document's `type` (empty when there is none).
    pub(crate) fn problem_type(&self) -> String {
        self.json()["type"].as_str().unwrap_or_default().to_owned()
    }

    /// `status`, for messages.
    pub(crate) fn summary(&self) -> String {
        format!("{} {}", self.status, self.text())
    }
}

// --- signing -----------------------------------------------------------------------------

/// The public JWK with only the key's members (RFC 7517; no `kid`, `alg`, `use`), as the
/// `jwk` header parameter and the thumbprint take it.
pub(crate) fn public_jwk(key: &PrivateJwk) -> Value {
    Jwk::from_public_key(key.public().public_key().clone())
        .expect("a generated key has a JWK")
        .to_json_value()
}

/// A fresh ES256 key (P-256), as the tests' accounts use.
pub(crate) fn new_key() -> PrivateJwk {
    PrivateJwk::generate(Algorithm::Es256).expect("generate a P-256 key")
}

/// A second handle on the same key (`PrivateJwk` is not `Clone`: through its JWK).
pub(crate) fn same_key(key: &PrivateJwk) -> PrivateJwk {
    PrivateJwk::from_json(&key.to_json()).expect("a private JWK reads back")
}

/// The flattened JWS JSON serialization (RFC 7515 §7.2.2) of `protected` and `payload`,
/// its signature made by `sign` over the signing input `BASE64URL(protected) '.'
/// BASE64URL(payload)` (RFC 7515 §5.1).
pub(crate) fn flattened_jws(
    protected: &Value,
    payload: &[u8],
    sign: impl FnOnce(&[u8]) -> Vec<u8>,
) -> Value {
    let protected = b64url(protected.to_string().as_bytes());
    let payload = b64url(payload);
    let signature = sign(format!("{protected}.{payload}").as_bytes());
    json!({ "protected": protected, "payload": payload, "signature": b64url(&signature) })
}

/// The protected header of an ACME request (RFC 8555 §6.2): `alg` from the key, `kid`
/// (the account URL) or the public `jwk`, `nonce` unless `None` (a key change's inner JWS
/// has none, §7.3.5), and `url`.
pub(crate) fn protected_header(
    key: &PrivateJwk,
    kid: Option<&str>,
    nonce: Option<&str>,
    url: &str,
) -> Value {
    let mut header = json!({ "alg": key.algorithm().name(), "url": url });
    match kid {
        Some(kid) => header["kid"] = json!(kid),
        None => header["jwk"] = public_jwk(key),
    }
    if let Some(nonce) = nonce {
        header["nonce"] = json!(nonce);
    }
    header
}

/// A request body signed by `key` (RFC 8555 §6.2).
pub(crate) fn sign_request(
    key: &PrivateJwk,
    kid: Option<&str>,
    nonce: Option<&str>,
    url: &str,
    payload: &[u8],
) -> Value {
    let header = protected_header(key, kid, nonce, url);
    flattened_jws(&header, payload, |input| key.sign(input).expect("ES256 signs"))
}

/// The payload of a key change (RFC 8555 §7.3.5): the inner JWS, signed by `new_key` and
/// carrying it as `jwk`, no nonce, the keyChange `url`, and `{account, oldKey}`.
pub(crate) fn key_change(
    new_key: &PrivateJwk,
    account_url: &str,
    old_key: &PrivateJwk,
    key_change_url: &str,
) -> Value {
    let payload = json!({ "account": account_url, "oldKey": public_jwk(old_key) });
    sign_request(new_key, None, None, key_change_url, payload.to_string().as_bytes())
}

/// An external account binding (RFC 8555 §7.3.4): a flattened JWS over the account's
/// public key, `alg` HS256, `kid` the operator's key ID, `url` the newAccount URL, MACed
/// with the operator's HMAC key.
pub(crate) fn external_account_binding(
    key_id: &str,
    hmac_key: &[u8],
    account_key: &PrivateJwk,
    new_account_url: &str,
) -> Value {
    let header = json!({ "alg": "HS256", "kid": key_id, "url": new_account_url });
    let payload = public_jwk(account_key).to_string();
    flattened_jws(&header, payload.as_bytes(), |input| hmac_sha256(hmac_key, input))
}

/// The key authorization of `token` for the account key (RFC 8555 §8.1): the token, a
/// dot, and the base64url SHA-256 thumbprint of the key (RFC 7638).
pub(crate) fn key_authorization(token: &str, account_key: &PrivateJwk) -> String {
    format!("{token}.{}", b64url(&account_key.public().thumbprint_sha256()))
}

/// Who signs a request: an account key, with the account's URL once the server gave one
/// (then `kid`, else `jwk`).
pub(crate) struct Signer {
    pub key: PrivateJwk,
    pub kid: Option<String>,
}

impl Signer {
    /// A new ES256 key without an account.
    pub(crate) fn generate() -> Self {
        Self { key: new_key(), kid: None }
    }

    /// The account URL, which this signer must have.
    pub(crate) fn account_url(&self) -> &str {
        self.kid.as_deref().expect("the signer has an account URL")
    }
}

/// A certificate's key that is both a CSR's key (rcgen) and a JWS signer (for revocation
/// signed by the certificate key, RFC 8555 §7.6).
pub(crate) struct LeafKey {
    pub rcgen: rcgen::KeyPair,
    pub jwk: PrivateJwk,
}

impl LeafKey {
    /// A fresh P-256 key.
    pub(crate) fn generate() -> Self {
        use p256::elliptic_curve::sec1::ToEncodedPoint as _;
        use p256::pkcs8::DecodePrivateKey as _;
        let rcgen = rcgen::KeyPair::generate().expect("generate a P-256 key");
        let secret = p256::SecretKey::from_pkcs8_der(&rcgen.serialize_der())
            .expect("rcgen's key is PKCS #8 P-256");
        let point = secret.public_key().to_encoded_point(false);
        let d = secret.to_bytes();
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": b64url(point.x().expect("uncompressed point")),
            "y": b64url(point.y().expect("uncompressed point")),
            "d": b64url(&d),
        });
        let jwk = PrivateJwk::from_json(&jwk.to_string()).expect("the JWK of rcgen's key");
        Self { rcgen, jwk }
    }

    /// A CSR (DER) for this key with an empty subject and `ips` and `dns` as subject
    /// alternative names.
    pub(crate) fn csr(&self, ips: &[IpAddr], dns: &[&str]) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.subject_alt_names = ips.iter().map(|ip| rcgen::SanType::IpAddress(*ip)).collect();
        for name in dns {
            let name = rcgen::string::Ia5String::try_from(*name).expect("an IA5 name");
            params.subject_alt_names.push(rcgen::SanType::DnsName(name));
        }
        params.serialize_request(&self.rcgen).expect("rcgen signs a CSR").der().to_vec()
    }
}

// --- the client --------------------------------------------------------------------------

/// An ACME client of one authority: its directory and the nonce it will use next.
pub(crate) struct AcmeClient {
    http: Client,
    /// The directory's URL.
    pub directory_url: String,
    /// The directory object (RFC 8555 §7.1.1), as fetched.
    pub directory: Value,
    /// The last `Replay-Nonce` received and not yet used.
    nonce: Option<String>,
}

impl AcmeClient {
    /// Fetches the directory at `directory_url` (an `https://HOST:PORT/…` URL of the
    /// authority `http` connects to; HOST goes in the `Host` header, so the server builds
    /// its URLs with it).
    pub(crate) async fn new(http: Client, directory_url: &str) -> Self {
        let mut client = Self {
            http,
            directory_url: directory_url.to_owned(),
            directory: Value::Null,
            nonce: None,
        };
        let reply = client.get(directory_url).await;
        assert_eq!(reply.status, 200, "GET {directory_url}: {}", reply.summary());
        client.directory = reply.json();
        client
    }

    /// A URL of the directory (`newNonce`, `newAccount`, …).
    pub(crate) fn url(&self, name: &str) -> String {
        self.directory[name]
            .as_str()
            .unwrap_or_else(|| panic!("the directory has no {name:?}: {}", self.directory))
            .to_owned()
    }

    /// The HTTPS client, for requests sent from other tasks ([`send`]).
    pub(crate) fn http(&self) -> Client {
        self.http.clone()
    }

    /// Sends one request on a connection of its own ([`send`]).
    pub(crate) async fn send(
        &self,
        method: &str,
        url: &str,
        body: Option<Vec<u8>>,
        accept: &str,
    ) -> Reply {
        send(&self.http, method, url, body, accept).await
    }

    /// `GET url`.
    pub(crate) async fn get(&self, url: &str) -> Reply {
        self.send("GET", url, None, "application/json").await
    }

    /// `HEAD newNonce` (RFC 8555 §7.2).
    pub(crate) async fn head_new_nonce(&self) -> Reply {
        self.send("HEAD", &self.url("newNonce"), None, "*/*").await
    }

    /// A nonce nobody used: the one the last answer carried, else a new one from newNonce.
    pub(crate) async fn take_nonce(&mut self) -> String {
        if let Some(nonce) = self.nonce.take() {
            return nonce;
        }
        let reply = self.head_new_nonce().await;
        assert_eq!(reply.status, 200, "HEAD newNonce: {}", reply.summary());
        reply.nonce().unwrap_or_else(|| panic!("HEAD newNonce without Replay-Nonce")).to_owned()
    }

    /// POSTs a body as it is (a test's own JWS) and keeps the answer's nonce.
    pub(crate) async fn post_body(&mut self, url: &str, body: &Value, accept: &str) -> Reply {
        let reply = self.send("POST", url, Some(body.to_string().into_bytes()), accept).await;
        self.nonce = reply.nonce().map(str::to_owned);
        reply
    }

    /// POSTs `payload` to `url`, signed by `signer` with a fresh nonce (RFC 8555 §6.2).
    pub(crate) async fn post(&mut self, signer: &Signer, url: &str, payload: &Value) -> Reply {
        let nonce = self.take_nonce().await;
        let body = sign_request(
            &signer.key,
            signer.kid.as_deref(),
            Some(&nonce),
            url,
            payload.to_string().as_bytes(),
        );
        self.post_body(url, &body, "application/json").await
    }

    /// POST-as-GET (RFC 8555 §6.3): an empty payload, accepting `accept`.
    pub(crate) async fn post_as_get_accepting(
        &mut self,
        signer: &Signer,
        url: &str,
        accept: &str,
    ) -> Reply {
        let nonce = self.take_nonce().await;
        let body = sign_request(&signer.key, signer.kid.as_deref(), Some(&nonce), url, b"");
        self.post_body(url, &body, accept).await
    }

    /// POST-as-GET for a JSON resource.
    pub(crate) async fn post_as_get(&mut self, signer: &Signer, url: &str) -> Reply {
        self.post_as_get_accepting(signer, url, "application/json").await
    }

    /// newAccount (RFC 8555 §7.3) with `payload`, signed with `signer`'s `jwk`; on 200 or
    /// 201 the signer gets the account URL from `Location`.
    pub(crate) async fn new_account(&mut self, signer: &mut Signer, payload: &Value) -> Reply {
        let url = self.url("newAccount");
        let nonce = self.take_nonce().await;
        let body =
            sign_request(&signer.key, None, Some(&nonce), &url, payload.to_string().as_bytes());
        let reply = self.post_body(&url, &body, "application/json").await;
        if matches!(reply.status, 200 | 201) {
            signer.kid = reply.location().map(str::to_owned);
        }
        reply
    }

    /// A new account for a new key, agreeing to the terms (201 expected).
    pub(crate) async fn register(&mut self) -> Signer {
        let mut signer = Signer::generate();
        let reply = self.new_account(&mut signer, &json!({ "termsOfServiceAgreed": true })).await;
        assert_eq!(reply.status, 201, "newAccount: {}", reply.summary());
        signer
    }

    /// newOrder for `identifiers` (201 expected): the order URL and object.
    pub(crate) async fn new_order(
        &mut self,
        signer: &Signer,
        identifiers: &Value,
    ) -> (String, Value) {
        let url = self.url("newOrder");
        let reply = self.post(signer, &url, &json!({ "identifiers": identifiers })).await;
        assert_eq!(reply.status, 201, "newOrder: {}", reply.summary());
        let location = reply.location().expect("newOrder's Location").to_owned();
        (location, reply.json())
    }

    /// POST-as-GET `url` until its `status` is one of `until` (or the deadline passes),
    /// waiting as `Retry-After` says (at most 2 s at a time, at least 100 ms); the last
    /// answer.
    pub(crate) async fn poll(
        &mut self,
        signer: &Signer,
        url: &str,
        until: &[&str],
        wait: Duration,
    ) -> Reply {
        let deadline = Instant::now() + wait;
        loop {
            let reply = self.post_as_get(signer, url).await;
            assert_eq!(reply.status, 200, "POST-as-GET {url}: {}", reply.summary());
            let status = reply.json()["status"].as_str().unwrap_or_default().to_owned();
            if until.contains(&status.as_str()) || Instant::now() >= deadline {
                return reply;
            }
            let after = reply
                .header("retry-after")
                .and_then(|s| s.parse::<u64>().ok())
                .map_or(Duration::from_millis(200), Duration::from_secs);
            tokio::time::sleep(after.clamp(Duration::from_millis(100), Duration::from_secs(2)))
                .await;
        }
    }
}

/// Sends one request to the authority `http` connects to, on a connection of its own;
/// `Host` is the URL's authority, `Content-Type` [`JOSE_JSON`] when there is a body.
pub(crate) async fn send(
    http: &Client,
    method: &str,
    url: &str,
    body: Option<Vec<u8>>,
    accept: &str,
) -> Reply {
    send_as(http, method, url, body, JOSE_JSON, accept).await
}

/// [`send`] with the body's `Content-Type` chosen by the caller.
pub(crate) async fn send_as(
    http: &Client,
    method: &str,
    url: &str,
    body: Option<Vec<u8>>,
    content_type: &str,
    accept: &str,
) -> Reply {
    let rest = url.strip_prefix("https://").unwrap_or_else(|| panic!("{url:?} is not https"));
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let exchange = async {
        let mut connection = http.connect().await?;
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", host)
            .header("accept", accept);
        if body.is_some() {
            request = request.header("content-type", content_type);
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| e.to_string())?;
        let response = connection.sender.send_request(request).await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect();
        let body = response.into_body().collect().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(Reply { status, headers, body: body.to_bytes().to_vec() })
    };
    match tokio::time::timeout(REQUEST_WAIT, exchange).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => panic!("{method} {url}: {e}"),
        Err(_) => panic!("{method} {url}: no answer within {REQUEST_WAIT:?}"),
    }
}

// --- the http-01 responder ---------------------------------------------------------------

/// What an [`Http01Responder`] shares with its connections.
#[derive(Default)]
struct Responses {
    /// Token → body.
    answers: HashMap<String, String>,
    /// Every path asked for, in order.
    requests: Vec<String>,
}

/// The client's side of http-01 (RFC 8555 §8.3): an HTTP/1.1 server on `127.0.0.1:port`
/// answering `GET /.well-known/acme-challenge/{token}` with the body set for the token
/// (404 for others), recording every path asked for. Stops on drop.
pub(crate) struct Http01Responder {
    pub port: u16,
    shared: Arc<Mutex<Responses>>,
    task: tokio::task::JoinHandle<()>,
}

impl Http01Responder {
    /// Listens on a free loopback port.
    pub(crate) async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind a loopback port for http-01");
        let port = listener.local_addr().expect("local address").port();
        let shared = Arc::new(Mutex::new(Responses::default()));
        let accepting = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = Arc::clone(&accepting);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let shared = Arc::clone(&shared);
                        async move { Ok::<_, Infallible>(respond(&shared, &request)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { port, shared, task }
    }

    /// Answers `token` with `body` from now on.
    pub(crate) fn serve(&self, token: &str, body: &str) {
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        shared.answers.insert(token.to_owned(), body.to_owned());
    }

    /// Every path asked for so far.
    pub(crate) fn requests(&self) -> Vec<String> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner).requests.clone()
    }
}

impl Drop for Http01Responder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn respond(
    shared: &Mutex<Responses>,
    request: &hyper::Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
    shared.requests.push(path.clone());
    let answer = path
        .strip_prefix("/.well-known/acme-challenge/")
        .filter(|_| request.method() == hyper::Method::GET)
        .and_then(|token| shared.answers.get(token).cloned());
    let (status, body) = match answer {
        Some(body) => (200, body),
        None => (404, "no such challenge\n".to_owned()),
    };
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/octet-stream")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new())))
}
