//! keystation-fetch: the authority's outbound HTTP(S) — an OpenID provider's discovery
//! document and JWKS, Google's and Azure's signing keys, a Kubernetes API server's
//! TokenReview — and a host's instance metadata service for `keystation ca token`.
//!
//! One small client on hyper's HTTP/1.1 connections and rustls (ring), made for fetching
//! documents that decide what the authority trusts:
//!
//! * **TLS by default.** `https` is verified against the public web roots (Mozilla's list,
//!   compiled in) and/or roots the operator configured. Plain `http` is refused unless
//!   the [`PlainHttp`] policy allows it: only for loopback (tests, a sidecar), or always
//!   (the metadata services at `169.254.169.254` and `metadata.google.internal` speak
//!   nothing else).
//! * **Bounded.** Every exchange has a timeout and a body limit; no redirect is followed
//!   (a redirect is an answer the caller did not expect, reported as such).
//! * **Cache lifetimes.** [`Response::max_age`] reads `Cache-Control: max-age` (RFC 9111
//!   §5.2.2.1), which step-ca also uses for a JWKS's lifetime.
//!
//! One connection per request: key fetches are rare (cached by the caller), so pooling
//! would buy nothing and keep sockets open.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use serde::de::DeserializeOwned;

/// What went wrong. Every variant names the URL; none carries a request's secret headers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL cannot be fetched as written.
    #[error("{url:?} is not a usable URL: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Plain HTTP where the policy requires TLS.
    #[error(
        "{url} is plain http, which is refused here: use https (plain http is allowed only for loopback hosts, or for instance metadata services)"
    )]
    PlainHttpRefused {
        /// The URL.
        url: String,
    },
    /// The configured roots cannot be read.
    #[error("trusted roots: {0}")]
    BadRoots(String),
    /// No TCP connection.
    #[error("cannot connect to {server}: {source}")]
    Connect {
        /// `host:port`.
        server: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake failed (an untrusted certificate among the reasons).
    #[error("TLS handshake with {server} failed: {source}")]
    Handshake {
        /// `host:port`.
        server: String,
        /// The TLS error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("HTTP exchange with {url} failed: {reason}")]
    Http {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// No answer within the timeout.
    #[error("{url} did not answer within {timeout:?}")]
    Timeout {
        /// The URL.
        url: String,
        /// The limit.
        timeout: Duration,
    },
    /// The answer is larger than the limit.
    #[error("the answer from {url} exceeds {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// The server answered with an error status.
    #[error("{url} answered {status}: {message}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the answer's body.
        message: String,
    },
    /// The answer is not the JSON expected.
    #[error("the answer from {url} is not the JSON expected: {reason}")]
    Json {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
}

/// When plain `http://` URLs may be fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlainHttp {
    /// Never: only `https`.
    Refused,
    /// Only for loopback hosts (`localhost`, `127.0.0.0/8`, `::1`).
    Loopback,
    /// Always (instance metadata services, which speak only plain HTTP on a link-local
    /// address).
    Allowed,
}

/// How a [`Fetcher`] connects.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// PEM certificates trusted as roots for `https`, besides (or instead of) the public
    /// ones.
    pub roots_pem: Option<String>,
    /// Whether the public web roots are trusted.
    pub public_roots: bool,
    /// When plain HTTP is allowed.
    pub plain_http: PlainHttp,
    /// The limit on one whole exchange, connection included.
    pub timeout: Duration,
    /// The largest body accepted.
    pub max_body: usize,
}

impl Default for FetchOptions {
    /// The public roots, `https` only but for loopback, 10 s, 1 MiB.
    fn default() -> Self {
        Self {
            roots_pem: None,
            public_roots: true,
            plain_http: PlainHttp::Loopback,
            timeout: Duration::from_secs(10),
            max_body: 1 << 20,
        }
    }
}

/// A request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `PUT` (AWS's IMDSv2 session token).
    Put,
}

impl Method {
    fn to_hyper(self) -> hyper::Method {
        match self {
            Self::Get => hyper::Method::GET,
            Self::Post => hyper::Method::POST,
            Self::Put => hyper::Method::PUT,
        }
    }
}

/// An answer with a success status.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code (2xx).
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
    /// `Cache-Control: max-age`, when the server gave one.
    pub max_age: Option<Duration>,
    url: String,
}

impl Response {
    /// The body as JSON of type `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::Json { url: self.url.clone(), reason: e.to_string() })
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.body)
            .map_err(|_| Error::Json { url: self.url.clone(), reason: "not UTF-8 text".into() })
    }
}

/// A parsed URL: what the client needs of it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    tls: bool,
    host: String,
    port: u16,
    /// `host[:port]` as the `Host` header writes it.
    authority: String,
    /// Path and query.
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::BadUrl { url: url.to_owned(), reason: reason.into() };
        let (tls, rest) = if let Some(rest) = strip_prefix_ignore_case(url, "https://") {
            (true, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(url, "http://") {
            (false, rest)
        } else {
            return Err(bad("only http:// and https:// URLs are fetched"));
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') { format!("/{path}") } else { path.to_owned() };
        if authority.is_empty() || authority.contains('@') {
            return Err(bad("no host, or a user name in the URL"));
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed [ in the host"))?;
            let port = match after {
                "" => default_port,
                p => p
                    .strip_prefix(':')
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| bad("bad port"))?,
            };
            (host.to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| bad("bad port"))?),
                None => (authority.to_owned(), default_port),
            }
        };
        if host.is_empty() || path.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(bad("empty host, or spaces in the path"));
        }
        Ok(Self { tls, host, port, authority: authority.to_owned(), path })
    }

    fn is_loopback(&self) -> bool {
        if self.host.eq_ignore_ascii_case("localhost") {
            return true;
        }
        self.host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

/// `Cache-Control: max-age=N` (RFC 9111 §5.2.2.1); `no-store`/`no-cache` mean zero.
fn max_age(value: &str) -> Option<Duration> {
    let mut age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(Duration::ZERO);
        }
        if let Some(n) = lower.strip_prefix("max-age=") {
            age = n.trim_matches('"').parse::<u64>().ok().map(Duration::from_secs);
        }
    }
    age
}

/// The client.
#[derive(Clone)]
pub struct Fetcher {
    tls: tokio_rustls::TlsConnector,
    options: FetchOptions,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("public_roots", &self.options.public_roots)
            .field("extra_roots", &self.options.roots_pem.is_some())
            .field("plain_http", &self.options.plain_http)
            .field("timeout", &self.options.timeout)
            .finish()
    }
}

impl Fetcher {
    /// A client connecting as `options` say.
    pub fn new(options: FetchOptions) -> Result<Self, Error> {
        let mut roots = rustls::RootCertStore::empty();
        if options.public_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        if let Some(pem) = &options.roots_pem {
            let blocks = keystation_x509::pem::decode_all(pem)
                .map_err(|e| Error::BadRoots(e.to_string()))?;
            let mut added = 0;
            for block in blocks.iter().filter(|b| b.label == "CERTIFICATE") {
                roots
                    .add(CertificateDer::from(block.der.clone()))
                    .map_err(|e| Error::BadRoots(e.to_string()))?;
                added += 1;
            }
            if added == 0 {
                return Err(Error::BadRoots("no PEM CERTIFICATE block".into()));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::BadRoots(format!("TLS configuration: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self { tls: tokio_rustls::TlsConnector::from(Arc::new(config)), options })
    }

    /// The options it was made with.
    pub fn options(&self) -> &FetchOptions {
        &self.options
    }

    /// `GET url` as JSON of type `T`, with the answer's cache lifetime.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<(T, Option<Duration>), Error> {
        let response = self.send(Method::Get, url, headers, None).await?;
        Ok((response.json()?, response.max_age))
    }

    /// One exchange; an answer whose status is not 2xx is [`Error::Status`].
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Response, Error> {
        let target = Target::parse(url)?;
        if !target.tls {
            let allowed = match self.options.plain_http {
                PlainHttp::Refused => false,
                PlainHttp::Loopback => target.is_loopback(),
                PlainHttp::Allowed => true,
            };
            if !allowed {
                return Err(Error::PlainHttpRefused { url: url.to_owned() });
            }
        }
        let timeout = self.options.timeout;
        match tokio::time::timeout(timeout, self.exchange(method, url, &target, headers, body))
            .await
        {
            Ok(answer) => answer,
            Err(_) => Err(Error::Timeout { url: url.to_owned(), timeout }),
        }
    }

    async fn exchange(
        &self,
        method: Method,
        url: &str,
        target: &Target,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Response, Error> {
        let http = |reason: String| Error::Http { url: url.to_owned(), reason };
        let server = target.server();
        let tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|source| Error::Connect { server: server.clone(), source })?;
        let _ = tcp.set_nodelay(true);
        let mut request = hyper::Request::builder()
            .method(method.to_hyper())
            .uri(&target.path)
            .header(hyper::header::HOST, &target.authority)
            .header(hyper::header::USER_AGENT, concat!("keystation/", env!("CARGO_PKG_VERSION")));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let payload = match body {
            Some((content_type, bytes)) => {
                request = request.header(hyper::header::CONTENT_TYPE, content_type);
                bytes
            }
            None => Vec::new(),
        };
        let request =
            request.body(Full::new(Bytes::from(payload))).map_err(|e| http(e.to_string()))?;
        let response = if target.tls {
            let name = ServerName::try_from(target.host.clone())
                .map_err(|_| Error::BadUrl { url: url.to_owned(), reason: "bad host".into() })?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|source| Error::Handshake { server, source })?;
            send_on(TokioIo::new(tls), request).await.map_err(http)?
        } else {
            send_on(TokioIo::new(tcp), request).await.map_err(http)?
        };
        let status = response.status();
        let max_age = response
            .headers()
            .get(hyper::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        let limit = self.options.max_body;
        let mut incoming = response.into_body();
        let mut bytes = Vec::new();
        while let Some(frame) = incoming.frame().await {
            if let Ok(data) = frame.map_err(|e| http(e.to_string()))?.into_data() {
                if data.len() > limit.saturating_sub(bytes.len()) {
                    return Err(Error::TooLarge { url: url.to_owned(), limit });
                }
                bytes.extend_from_slice(&data);
            }
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes);
            let text = text.trim();
            let message = if text.is_empty() {
                status.canonical_reason().unwrap_or("no message").to_owned()
            } else {
                text.chars().take(300).collect()
            };
            tracing::debug!(url, status = status.as_u16(), "fetch answered with an error status");
            return Err(Error::Status { url: url.to_owned(), status: status.as_u16(), message });
        }
        Ok(Response { status: status.as_u16(), body: bytes, max_age, url: url.to_owned() })
    }
}

async fn send_on<T>(
    io: T,
    request: hyper::Request<Full<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(io).await.map_err(|e| e.to_string())?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let _abort = AbortOnDrop(driver);
    sender.send_request(request).await.map_err(|e| e.to_string())
}

/// Ends the connection's task when the exchange ends (also on timeout).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_parsed_with_default_ports_and_paths() {
        let t =
            Target::parse("https://login.example/tenant/.well-known/openid-configuration").unwrap();
        assert_eq!((t.tls, t.host.as_str(), t.port), (true, "login.example", 443));
        assert_eq!(t.path, "/tenant/.well-known/openid-configuration");
        let t = Target::parse("http://[::1]:8080?x=1").unwrap();
        assert_eq!(
            (t.tls, t.host.as_str(), t.port, t.path.as_str()),
            (false, "::1", 8080, "/?x=1")
        );
        assert!(t.is_loopback());
        assert_eq!(t.server(), "[::1]:8080");
        let t = Target::parse("HTTP://169.254.169.254/latest/api/token").unwrap();
        assert!(!t.is_loopback() && !t.tls && t.port == 80);
        for bad in ["ftp://x/", "https://", "https://user@host/", "https://h:99999/", "x"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cache_control_gives_the_lifetime() {
        assert_eq!(
            max_age("public, max-age=22155, must-revalidate"),
            Some(Duration::from_secs(22155))
        );
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("private"), None);
    }
}
