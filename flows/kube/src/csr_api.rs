//! A client for the cluster's `certificates.k8s.io/v1` API: create a
//! CertificateSigningRequest for signer `kubernetes.io/kube-apiserver-client`, approve it
//! (when asked to and allowed), and wait for the issued certificate.
//!
//! It authenticates with the kubeconfig user's existing credentials — a client
//! certificate and key held in memory only, a bearer token, or basic auth — since the
//! new key on the card has no certificate yet.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use keystation_core::SecretBytes;
use keystation_kubeconfig::ResolvedUser;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};

use super::{KubeError, Server};

/// The signer for client certificates the API server accepts (Kubernetes "Certificate
/// Signing Requests", well-known signers).
pub const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client";
const CSR_PATH: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

/// The largest response body read from the API server: 2 MiB.
///
/// The answers this client reads are one CertificateSigningRequest (the CSR, the issued
/// certificate chain, conditions and `managedFields`: typically 3–10 KiB, RSA-4096 and a
/// long chain included) or a `meta/v1` Status (under 1 KiB). No stored Kubernetes object
/// can be much larger than etcd's default request limit of 1.5 MiB
/// (`--max-request-bytes`), so 2 MiB fits anything a real API server can send here with
/// room to spare, while a broken or hostile server that streams without end is cut off
/// before it costs more than that much memory.
pub const MAX_RESPONSE_BYTES: usize = 2 * 1024 * 1024;

/// How long one request may take at most (connect, TLS handshake, request, whole
/// answer), unless the client is given a shorter timeout ([`ApiClient::with_timeout`]).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

enum Credentials {
    /// In the TLS configuration.
    ClientCertificate,
    Bearer(SecretBytes),
    Basic(SecretBytes),
}

/// An authenticated client of the API server.
pub struct ApiClient {
    server: Server,
    tls: tokio_rustls::TlsConnector,
    credentials: Credentials,
    timeout: Duration,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient").field("server", &self.server.host).finish_non_exhaustive()
    }
}

impl ApiClient {
    /// A client with `user`'s credentials (client certificate preferred, then token,
    /// then basic auth).
    pub fn new(server: &Server, user: &ResolvedUser) -> Result<Self, KubeError> {
        user.check_supported()?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(KubeError::TlsConfig)?
            .with_root_certificates(server.roots.clone());
        let no_credentials = || {
            KubeError::Csr(format!(
                "the kubeconfig user {:?} has no client certificate, token or password to create \
                 the request with",
                user.name.clone().unwrap_or_default()
            ))
        };
        let (config, credentials) = match (&user.client_certificate_pem, &user.client_key_pem) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_slice_iter(cert)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| KubeError::Csr(format!("the user's client certificate: {e}")))?;
                let key = PrivateKeyDer::from_pem_slice(key.expose())
                    .map_err(|e| KubeError::Csr(format!("the user's client key: {e}")))?;
                let config =
                    builder.with_client_auth_cert(chain, key).map_err(KubeError::TlsConfig)?;
                (config, Credentials::ClientCertificate)
            }
            _ => {
                let credentials = if let Some(token) = &user.token {
                    Credentials::Bearer(token.clone())
                } else if let Some(basic) = &user.basic {
                    let mut joined = basic.username.as_bytes().to_vec();
                    joined.push(b':');
                    joined.extend_from_slice(basic.password.expose());
                    let joined = SecretBytes::new(joined);
                    Credentials::Basic(SecretBytes::new(
                        keystation_core::base64::encode(joined.expose()).into_bytes(),
                    ))
                } else {
                    return Err(no_credentials());
                };
                (builder.with_no_client_auth(), credentials)
            }
        };
        Ok(Self {
            server: server.clone(),
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            credentials,
            timeout: REQUEST_TIMEOUT,
        })
    }

    /// The same client with every request limited to `timeout` (connect to whole answer)
    /// instead of [`REQUEST_TIMEOUT`].
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// `https://host:port/path`, as errors name it.
    fn url(&self, path: &str) -> String {
        let host = &self.server.host;
        if host.contains(':') {
            format!("https://[{host}]:{}{path}", self.server.port)
        } else {
            format!("https://{host}:{}{path}", self.server.port)
        }
    }

    /// One request with a JSON body (or none), `what` naming it for errors; returns the
    /// status and the JSON answer (`Null` when the body is not JSON). The whole exchange
    /// is limited to the client's timeout and the answer to [`MAX_RESPONSE_BYTES`].
    async fn call(
        &self,
        what: &'static str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), KubeError> {
        match tokio::time::timeout(self.timeout, self.exchange(what, method, path, body)).await {
            Ok(result) => result,
            Err(_) => Err(KubeError::ApiTimeout {
                what,
                url: self.url(path),
                seconds: self.timeout.as_secs_f64(),
            }),
        }
    }

    async fn exchange(
        &self,
        what: &'static str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), KubeError> {
        let server = format!("{}:{}", self.server.host, self.server.port);
        let tcp = tokio::net::TcpStream::connect((&*self.server.host, self.server.port))
            .await
            .map_err(|source| KubeError::UpstreamConnect { server: server.clone(), source })?;
        let tls = self
            .tls
            .connect(self.server.server_name.clone(), tcp)
            .await
            .map_err(|source| KubeError::UpstreamTls { server: server.clone(), source })?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(KubeError::UpstreamHttp)?;
        // Ends the connection's task with this call, also when the call times out.
        let _connection = AbortOnDrop(tokio::spawn(async move {
            let _ = connection.await;
        }));
        let payload = body.map(Value::to_string).unwrap_or_default();
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &server)
            .header(hyper::header::ACCEPT, "application/json")
            .header(hyper::header::USER_AGENT, concat!("keystation/", env!("CARGO_PKG_VERSION")));
        if body.is_some() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        match &self.credentials {
            Credentials::ClientCertificate => {}
            Credentials::Bearer(token) => {
                let mut value = b"Bearer ".to_vec();
                value.extend_from_slice(token.expose());
                let value = SecretBytes::new(value);
                let mut header =
                    hyper::header::HeaderValue::from_bytes(value.expose()).map_err(|_| {
                        KubeError::Csr("the user's token is not a valid header value".into())
                    })?;
                header.set_sensitive(true);
                request = request.header(hyper::header::AUTHORIZATION, header);
            }
            Credentials::Basic(encoded) => {
                let mut value = b"Basic ".to_vec();
                value.extend_from_slice(encoded.expose());
                let value = SecretBytes::new(value);
                let mut header =
                    hyper::header::HeaderValue::from_bytes(value.expose()).map_err(|_| {
                        KubeError::Csr("the user's password is not a valid header value".into())
                    })?;
                header.set_sensitive(true);
                request = request.header(hyper::header::AUTHORIZATION, header);
            }
        }
        let request = request
            .body(Full::new(Bytes::from(payload)))
            .map_err(|e| KubeError::Csr(format!("cannot build the request: {e}")))?;
        let response = sender.send_request(request).await.map_err(KubeError::UpstreamHttp)?;
        let status = response.status();
        let too_large =
            || KubeError::ApiTooLarge { what, url: self.url(path), limit: MAX_RESPONSE_BYTES };
        let announced = response
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if announced.is_some_and(|length| length > MAX_RESPONSE_BYTES as u64) {
            return Err(too_large());
        }
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(KubeError::UpstreamHttp)?;
            if let Ok(data) = frame.into_data() {
                if data.len() > MAX_RESPONSE_BYTES - bytes.len() {
                    return Err(too_large());
                }
                bytes.extend_from_slice(&data);
            }
        }
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }

    /// Creates the request `name` for `csr_pem`; `expiration` asks for a shorter lifetime
    /// (`spec.expirationSeconds`, at least 600).
    pub async fn create(
        &self,
        name: &str,
        csr_pem: &str,
        expiration: Option<Duration>,
    ) -> Result<(), KubeError> {
        let mut spec = json!({
            "request": keystation_core::base64::encode(csr_pem.as_bytes()),
            "signerName": CLIENT_SIGNER,
            "usages": ["digital signature", "client auth"],
        });
        if let Some(expiration) = expiration {
            spec["expirationSeconds"] = json!(expiration.as_secs().max(600));
        }
        let object = json!({
            "apiVersion": "certificates.k8s.io/v1",
            "kind": "CertificateSigningRequest",
            "metadata": {"name": name},
            "spec": spec,
        });
        let what = "creating the CertificateSigningRequest";
        let (status, answer) = self.call(what, Method::POST, CSR_PATH, Some(&object)).await?;
        if status == StatusCode::CREATED || status == StatusCode::OK {
            return Ok(());
        }
        Err(refused(what, status, &answer))
    }

    /// Approves `name` (what `kubectl certificate approve` does): adds an `Approved`
    /// condition through the `approval` subresource.
    pub async fn approve(&self, name: &str) -> Result<(), KubeError> {
        let path = format!("{CSR_PATH}/{name}");
        let (status, mut object) = self.call(READING, Method::GET, &path, None).await?;
        if status != StatusCode::OK {
            return Err(refused(READING, status, &object));
        }
        let condition = json!({
            "type": "Approved",
            "status": "True",
            "reason": "KeystationKubeSetup",
            "message": "approved by keystation kube setup --approve",
        });
        match object.pointer_mut("/status/conditions").and_then(Value::as_array_mut) {
            Some(conditions) => conditions.push(condition),
            None => object["status"] = json!({"conditions": [condition]}),
        }
        let what = "approving the CertificateSigningRequest";
        let (status, answer) =
            self.call(what, Method::PUT, &format!("{path}/approval"), Some(&object)).await?;
        if status == StatusCode::OK {
            return Ok(());
        }
        Err(refused(what, status, &answer))
    }

    /// Polls `name` until the certificate is issued (returns its PEM), the request is
    /// denied or failed, or `timeout` passes. A `timeout` too long for the clock to
    /// represent (`Duration::MAX`) means no deadline.
    pub async fn wait_for_certificate(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<String, KubeError> {
        let path = format!("{CSR_PATH}/{name}");
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let (status, object) = self.call(READING, Method::GET, &path, None).await?;
            if status != StatusCode::OK {
                return Err(refused(READING, status, &object));
            }
            for condition in
                object.pointer("/status/conditions").and_then(Value::as_array).into_iter().flatten()
            {
                let kind = condition.get("type").and_then(Value::as_str).unwrap_or_default();
                if kind == "Denied" || kind == "Failed" {
                    let message = condition
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("no reason given");
                    return Err(KubeError::Csr(format!(
                        "request {name} was {}: {message}",
                        kind.to_lowercase()
                    )));
                }
            }
            if let Some(encoded) = object.pointer("/status/certificate").and_then(Value::as_str)
                && !encoded.is_empty()
            {
                let pem = keystation_core::base64::decode(encoded)
                    .ok_or_else(|| KubeError::Csr("status.certificate is not base64".into()))?;
                return String::from_utf8(pem)
                    .map_err(|_| KubeError::Csr("status.certificate is not PEM".into()));
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return Err(KubeError::Csr(format!(
                    "request {name} was not approved within {}s: approve it with `kubectl certificate \
                     approve {name}` and run setup again, or pass --approve if you may approve it",
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

const READING: &str = "reading the CertificateSigningRequest";

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The API server's refusal, with its `Status` message when it sent one.
fn refused(what: &str, status: StatusCode, answer: &Value) -> KubeError {
    let message = answer.get("message").and_then(Value::as_str).unwrap_or("no message");
    KubeError::Csr(format!("{what}: the API server answered {status}: {message}"))
}
