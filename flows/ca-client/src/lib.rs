//! keystation-ca-client: a client of step-ca's HTTPS JSON API — the paths and bodies of
//! smallstep's `certificates` (`api/`): `GET /health`, `GET /roots`, and keystation
//! authority's attested enrollment `POST /1.0/sign-attested` (keystation's own path;
//! step-ca enrolls attested keys only through ACME `device-attest-01`).
//!
//! The client trusts exactly one root given as PEM (a certificate bundle's every
//! `CERTIFICATE`), never the system's: an enrolling card talks to its own authority,
//! whose root the operator hands out (step's `--root`, or the fingerprint of `step ca
//! bootstrap`). TLS is rustls with ring, HTTP/1.1 over hyper, as in keystation-kube.
//!
//! [`CaClient`] is async (tokio); [`BlockingCaClient`] wraps it in a current-thread
//! runtime for synchronous callers such as `keystation piv enroll`. A refusal by the
//! authority is [`Error::Server`], carrying the HTTP status and the `message` of step-ca's
//! error body (`{"status": 403, "message": "…"}`).

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use serde::{Deserialize, Serialize};

/// The largest answer read: 1 MiB. step-ca's answers here are a handful of PEM
/// certificates (a few KiB); a server that sends more is cut off.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// How long one request may take (connect, handshake, request, whole answer) unless
/// [`CaClient::with_timeout`] says otherwise.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What went wrong talking to the authority.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The authority's URL is unusable.
    #[error("authority URL {url:?}: {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The root certificate to trust is unusable.
    #[error("the authority's root certificate: {0}")]
    BadRoot(String),
    /// The TCP connection failed.
    #[error("cannot connect to {server}")]
    Connect {
        /// `host:port`.
        server: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake failed (a server certificate not issued under the root, a name
    /// mismatch, …).
    #[error("TLS handshake with {server} failed")]
    Handshake {
        /// `host:port`.
        server: String,
        /// Why (rustls's error inside).
        #[source]
        source: std::io::Error,
    },
    /// The HTTP exchange broke off.
    #[error("HTTP exchange with {url} failed: {reason}")]
    Http {
        /// The URL requested.
        url: String,
        /// hyper's description.
        reason: String,
    },
    /// No whole answer within the timeout.
    #[error("{url} did not answer within {seconds} s")]
    Timeout {
        /// The URL requested.
        url: String,
        /// The timeout.
        seconds: f64,
    },
    /// The authority refused the request: its HTTP status and the `message` of its error
    /// body (or the body's text when it is not step-ca's JSON).
    #[error("{url}: the authority answered {status}: {message}")]
    Server {
        /// The URL requested.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The authority's message.
        message: String,
    },
    /// A success answer whose body is not what step-ca sends.
    #[error("{url}: unexpected answer: {reason}")]
    BadResponse {
        /// The URL requested.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The blocking client's runtime could not start.
    #[error("cannot start the HTTP client's runtime")]
    Runtime(#[source] std::io::Error),
}

impl Error {
    /// The HTTP status of an [`Error::Server`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Server { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// What `/1.0/sign` and `/1.0/sign-attested` answer (step-ca's `api.SignResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignResponse {
    /// The issued certificate (PEM).
    pub crt: String,
    /// The issuing (intermediate) CA's certificate (PEM).
    pub ca: String,
    /// The issued certificate followed by its intermediates (PEM each).
    #[serde(default)]
    pub cert_chain: Vec<String>,
}

/// `/roots`: `{"crts": [PEM…]}`.
#[derive(Deserialize)]
struct RootsResponse {
    crts: Vec<String>,
}

/// `/health`: `{"status": "ok"}`.
#[derive(Deserialize)]
struct HealthResponse {
    status: String,
}

/// step-ca's error body.
#[derive(Deserialize)]
struct ErrorBody {
    message: String,
}

/// The body of `POST /1.0/sign-attested`.
#[derive(Serialize)]
struct SignAttestedRequest<'a> {
    provisioner: &'a str,
    csr: &'a str,
    attestation: AttestationBody<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AttestationBody<'a> {
    slot_certificate: &'a str,
    intermediate: &'a str,
}

/// An async client of one authority.
#[derive(Clone)]
pub struct CaClient {
    /// `https://host:port`, for messages.
    base: String,
    /// `host:port` (IPv6 in brackets): the `Host` header.
    authority: String,
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    tls: tokio_rustls::TlsConnector,
    timeout: Duration,
}

impl core::fmt::Debug for CaClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CaClient").field("url", &self.base).finish_non_exhaustive()
    }
}

impl CaClient {
    /// A client of the authority at `url` (`https://host[:port]`, port 443 by default; a
    /// trailing `/` is ignored) trusting only the certificates of `root_pem`.
    pub fn new(url: &str, root_pem: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::BadUrl { url: url.to_owned(), reason: reason.to_owned() };
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| bad("must start with https:// (the API is only spoken over TLS)"))?;
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
            return Err(bad("must be https://host[:port] with no path, query or user"));
        }
        let (host, port) = split_host_port(rest).ok_or_else(|| bad("bad host or port"))?;
        let server_name =
            ServerName::try_from(host.clone()).map_err(|_| bad("not a DNS name or IP address"))?;
        let authority =
            if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };

        let blocks = keystation_x509::pem::decode_all(root_pem)
            .map_err(|e| Error::BadRoot(e.to_string()))?;
        let mut roots = rustls::RootCertStore::empty();
        for block in blocks.iter().filter(|b| b.label == "CERTIFICATE") {
            roots
                .add(CertificateDer::from(block.der.clone()))
                .map_err(|e| Error::BadRoot(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(Error::BadRoot("no PEM CERTIFICATE block".into()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::BadRoot(format!("TLS configuration: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            base: format!("https://{authority}"),
            authority,
            host,
            port,
            server_name,
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            timeout: REQUEST_TIMEOUT,
        })
    }

    /// The same client with every request limited to `timeout`.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// `https://host:port`.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// `GET /health`: the authority's status (`ok`).
    pub async fn health(&self) -> Result<String, Error> {
        let answer: HealthResponse = self.call(Method::GET, "/health", None).await?;
        Ok(answer.status)
    }

    /// `GET /roots`: the authority's root certificates (PEM each).
    pub async fn roots(&self) -> Result<Vec<String>, Error> {
        let answer: RootsResponse = self.call(Method::GET, "/roots", None).await?;
        Ok(answer.crts)
    }

    /// `POST /1.0/sign-attested`: a certificate for the key of `csr_pem`, authorized by
    /// `provisioner` (a YubiKey attestation provisioner) with the slot's attestation
    /// certificate and the card's `F9` certificate (PEM each).
    pub async fn sign_attested(
        &self,
        provisioner: &str,
        csr_pem: &str,
        slot_cert_pem: &str,
        intermediate_pem: &str,
    ) -> Result<SignResponse, Error> {
        let body = SignAttestedRequest {
            provisioner,
            csr: csr_pem,
            attestation: AttestationBody {
                slot_certificate: slot_cert_pem,
                intermediate: intermediate_pem,
            },
        };
        let body = serde_json::to_vec(&body).map_err(|e| Error::BadResponse {
            url: self.url_of("/1.0/sign-attested"),
            reason: format!("cannot encode the request: {e}"),
        })?;
        self.call(Method::POST, "/1.0/sign-attested", Some(body)).await
    }

    fn url_of(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// One request, its success answer decoded as `T`; a status of 400 or more is
    /// [`Error::Server`].
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, Error> {
        let url = self.url_of(path);
        let exchange = self.exchange(method, path, body);
        let (status, bytes) = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result?,
            Err(_) => return Err(Error::Timeout { url, seconds: self.timeout.as_secs_f64() }),
        };
        if status.is_client_error() || status.is_server_error() {
            let message = match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(body) => body.message,
                Err(_) => {
                    let text = String::from_utf8_lossy(&bytes);
                    let text = text.trim();
                    if text.is_empty() {
                        status.canonical_reason().unwrap_or("no message").to_owned()
                    } else {
                        text.chars().take(500).collect()
                    }
                }
            };
            return Err(Error::Server { url, status: status.as_u16(), message });
        }
        if !status.is_success() {
            return Err(Error::BadResponse { url, reason: format!("status {status}") });
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::BadResponse { url, reason: format!("not the expected JSON: {e}") })
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Vec<u8>), Error> {
        let url = self.url_of(path);
        let http = |e: hyper::Error| Error::Http { url: url.clone(), reason: e.to_string() };
        let tcp = tokio::net::TcpStream::connect((&*self.host, self.port))
            .await
            .map_err(|source| Error::Connect { server: self.authority.clone(), source })?;
        let _ = tcp.set_nodelay(true);
        let tls = self
            .tls
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|source| Error::Handshake { server: self.authority.clone(), source })?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(http)?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        let _abort = AbortOnDrop(driver);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::ACCEPT, "application/json")
            .header(hyper::header::USER_AGENT, concat!("keystation/", env!("CARGO_PKG_VERSION")));
        if body.is_some() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| Error::Http { url: url.clone(), reason: e.to_string() })?;
        let response = sender.send_request(request).await.map_err(http)?;
        let status = response.status();
        let too_large = || Error::BadResponse {
            url: url.clone(),
            reason: format!("the answer exceeds {MAX_RESPONSE_BYTES} bytes"),
        };
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.map_err(http)?.into_data() {
                if data.len() > MAX_RESPONSE_BYTES - bytes.len() {
                    return Err(too_large());
                }
                bytes.extend_from_slice(&data);
            }
        }
        Ok((status, bytes))
    }
}

/// Aborts the connection's task when the call ends (also on timeout).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `host[:port]` or `[v6][:port]`; 443 by default.
fn split_host_port(authority: &str) -> Option<(String, u16)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(port) => port.parse().ok()?,
            None if after.is_empty() => 443,
            None => return None,
        };
        return Some((host.to_owned(), port));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().ok()?),
        None => (authority, 443),
    };
    if host.is_empty() || host.contains(':') {
        return None;
    }
    Some((host.to_owned(), port))
}

/// [`CaClient`] for synchronous callers: each call runs on the client's own
/// current-thread runtime. Not for use inside an async runtime.
#[derive(Debug)]
pub struct BlockingCaClient {
    client: CaClient,
    runtime: tokio::runtime::Runtime,
}

impl BlockingCaClient {
    /// See [`CaClient::new`].
    pub fn new(url: &str, root_pem: &str) -> Result<Self, Error> {
        Self::from_client(CaClient::new(url, root_pem)?)
    }

    /// Wraps `client`.
    pub fn from_client(client: CaClient) -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(Error::Runtime)?;
        Ok(Self { client, runtime })
    }

    /// The async client.
    pub fn client(&self) -> &CaClient {
        &self.client
    }

    /// See [`CaClient::health`].
    pub fn health(&self) -> Result<String, Error> {
        self.runtime.block_on(self.client.health())
    }

    /// See [`CaClient::roots`].
    pub fn roots(&self) -> Result<Vec<String>, Error> {
        self.runtime.block_on(self.client.roots())
    }

    /// See [`CaClient::sign_attested`].
    pub fn sign_attested(
        &self,
        provisioner: &str,
        csr_pem: &str,
        slot_cert_pem: &str,
        intermediate_pem: &str,
    ) -> Result<SignResponse, Error> {
        self.runtime.block_on(self.client.sign_attested(
            provisioner,
            csr_pem,
            slot_cert_pem,
            intermediate_pem,
        ))
    }
}

#[cfg(test)]
mod tests;
