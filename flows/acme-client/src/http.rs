//! The transport: one HTTP/1.1 exchange per request over TLS (rustls with ring) trusting
//! only the roots the client was given, bounded in time and size.
//!
//! ACME is spoken only over HTTPS (RFC 8555 §6.1), so `http://` URLs are refused. The
//! headers ACME needs from an answer — `Replay-Nonce` (§6.5.1), `Location` (§7.3, §7.4),
//! and `Retry-After` (§8.2, RFC 9110 §10.2.3) — are kept; the rest are not.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::header::{HeaderMap, HeaderName};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::Error;

/// The largest answer read: 1 MiB. ACME's objects and a certificate chain are a few KiB.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// `application/jose+json`: the type of every POST body (RFC 8555 §6.2).
pub(crate) const JOSE_JSON: &str = "application/jose+json";

/// An HTTPS URL split into what a connection needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) host: String,
    pub(crate) port: u16,
    /// `host[:port]`, as the `Host` header writes it.
    pub(crate) authority: String,
    /// Path and query (`/` at least).
    pub(crate) path: String,
}

impl Target {
    /// Parses `https://host[:port][/path][?query]`; a fragment is dropped.
    pub(crate) fn parse(url: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::BadUrl { url: url.to_owned(), reason: reason.to_owned() };
        let rest = url
            .get(..8)
            .filter(|scheme| scheme.eq_ignore_ascii_case("https://"))
            .map(|_| &url[8..])
            .ok_or_else(|| bad("must start with https:// (ACME is only spoken over TLS)"))?;
        let rest = rest.split('#').next().unwrap_or_default();
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') { format!("/{path}") } else { path.to_owned() };
        if authority.is_empty() || authority.contains('@') {
            return Err(bad("no host, or a user name in the URL"));
        }
        if path.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
            return Err(bad("spaces or control characters in the path"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed [ in the host"))?;
            let port = match after {
                "" => 443,
                p => p
                    .strip_prefix(':')
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| bad("bad port"))?,
            };
            (host.to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| bad("bad port"))?),
                None => (authority.to_owned(), 443),
            }
        };
        if host.is_empty() || (host.contains(':') && !authority.starts_with('[')) {
            return Err(bad("bad host"));
        }
        Ok(Self { host, port, authority: authority.to_owned(), path })
    }

    /// `host:port` (IPv6 in brackets), for messages.
    pub(crate) fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A request method ACME uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    /// The directory (§7.1.1).
    Get,
    /// A nonce (§7.2).
    Head,
    /// Everything else, JWS-signed (§6.2, §6.3).
    Post,
}

/// An answer, whatever its status.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) replay_nonce: Option<String>,
    pub(crate) location: Option<String>,
    pub(crate) retry_after: Option<String>,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

fn header(headers: &HeaderMap, name: &'static str) -> Option<String> {
    headers
        .get(HeaderName::from_static(name))
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The connector: TLS configuration and limits.
#[derive(Clone)]
pub(crate) struct Transport {
    tls: tokio_rustls::TlsConnector,
    pub(crate) timeout: Duration,
}

impl Transport {
    /// A transport trusting exactly the `CERTIFICATE` blocks of `root_pem`.
    pub(crate) fn new(root_pem: &str, timeout: Duration) -> Result<Self, Error> {
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
        Ok(Self { tls: tokio_rustls::TlsConnector::from(Arc::new(config)), timeout })
    }

    /// One exchange with `url`, limited to the transport's timeout. `body` is sent as
    /// `application/jose+json`.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &str,
        accept: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, Error> {
        let target = Target::parse(url)?;
        match tokio::time::timeout(self.timeout, self.exchange(method, url, &target, accept, body))
            .await
        {
            Ok(answer) => answer,
            Err(_) => {
                Err(Error::Timeout { url: url.to_owned(), seconds: self.timeout.as_secs_f64() })
            }
        }
    }

    async fn exchange(
        &self,
        method: Method,
        url: &str,
        target: &Target,
        accept: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, Error> {
        let http = |reason: String| Error::Http { url: url.to_owned(), reason };
        let server = target.server();
        let name = ServerName::try_from(target.host.clone())
            .map_err(|_| Error::BadUrl { url: url.to_owned(), reason: "bad host".into() })?;
        let tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|source| Error::Connect { server: server.clone(), source })?;
        let _ = tcp.set_nodelay(true);
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|source| Error::Handshake { server, source })?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| http(e.to_string()))?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        let _abort = AbortOnDrop(driver);

        let method = match method {
            Method::Get => hyper::Method::GET,
            Method::Head => hyper::Method::HEAD,
            Method::Post => hyper::Method::POST,
        };
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(&target.path)
            .header(hyper::header::HOST, &target.authority)
            .header(hyper::header::ACCEPT, accept)
            .header(hyper::header::USER_AGENT, concat!("keystation/", env!("CARGO_PKG_VERSION")));
        if body.is_some() {
            request = request.header(hyper::header::CONTENT_TYPE, JOSE_JSON);
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| http(e.to_string()))?;
        let response = sender.send_request(request).await.map_err(|e| http(e.to_string()))?;
        let status = response.status().as_u16();
        let headers = response.headers();
        let replay_nonce = header(headers, "replay-nonce");
        let location = header(headers, "location");
        let retry_after = header(headers, "retry-after");
        let mut incoming = response.into_body();
        let mut bytes = Vec::new();
        while let Some(frame) = incoming.frame().await {
            if let Ok(data) = frame.map_err(|e| http(e.to_string()))?.into_data() {
                if data.len() > MAX_RESPONSE_BYTES.saturating_sub(bytes.len()) {
                    return Err(Error::TooLarge { url: url.to_owned(), limit: MAX_RESPONSE_BYTES });
                }
                bytes.extend_from_slice(&data);
            }
        }
        Ok(Answer { status, replay_nonce, location, retry_after, body: bytes })
    }
}

/// Ends the connection's task when the exchange ends (also on timeout).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn https_urls_split_into_host_port_and_path() {
        let t = Target::parse("https://ca.example:9443/acme/attest/directory").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("ca.example", 9443));
        assert_eq!(t.path, "/acme/attest/directory");
        assert_eq!(t.authority, "ca.example:9443");
        let t = Target::parse("HTTPS://[::1]?x=1#frag").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.path.as_str()), ("::1", 443, "/?x=1"));
        assert_eq!(t.server(), "[::1]:443");
        let t = Target::parse("https://127.0.0.1").unwrap();
        assert_eq!((t.port, t.path.as_str()), (443, "/"));
    }

    #[test]
    fn plain_http_and_malformed_urls_are_refused() {
        for bad in [
            "http://ca.example/acme/x/directory",
            "https://",
            "https://user@host/",
            "https://h:99999/",
            "https://h:x/",
            "https://[::1/",
            "https://h/a b",
            "https://::1/",
            "ca.example",
            "",
        ] {
            let err = Target::parse(bad).unwrap_err();
            assert!(matches!(err, Error::BadUrl { .. }), "{bad}: {err:?}");
        }
        assert!(Target::parse("http://x/").unwrap_err().to_string().contains("https://"));
    }
}
