//! http-01 (RFC 8555 §8.3): the key authorization served at
//! `/.well-known/acme-challenge/<token>` over plain HTTP, redirects followed within limits.

use std::net::IpAddr;

use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;

use crate::net::{connect, permitted_addresses};
use crate::{FailureKind, Identifier, Inner, ValidationFailure, normalize_name, quote};

/// One URL the validation fetches: the first, or a redirect's target.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hop {
    https: bool,
    /// A DNS name (normalized) or an address.
    host: Identifier,
    port: u16,
    /// The `Host` header: the authority as the URL wrote it.
    authority: String,
    /// Path and query, starting with `/`.
    path: String,
}

impl Hop {
    fn url(&self) -> String {
        format!("{}://{}{}", if self.https { "https" } else { "http" }, self.authority, self.path)
    }
}

/// An IP address as a URL's host writes it (IPv6 in brackets, RFC 3986 §3.2.2).
fn host_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// Whether `token` is base64url (RFC 8555 §8.1: the token's characters), so it can stand
/// in a path without escaping.
fn token_is_valid(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 256
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The target of a redirect from `from` to `location` (RFC 9110 §10.2.2, references
/// resolved as RFC 3986 §5.2 does for the forms servers send), or why it is not followed.
fn redirect_target(
    from: &Hop,
    location: &str,
    http_port: u16,
    https_port: u16,
) -> Result<Hop, String> {
    let location = location.trim();
    if location.is_empty()
        || location.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(format!("the redirect's Location {} is not a URL", quote(location.as_bytes())));
    }
    let location = location.split('#').next().unwrap_or_default();
    let scheme_end = location.find(':').filter(|&i| {
        let scheme = &location[..i];
        !scheme.is_empty()
            && !scheme.contains(['/', '?'])
            && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    });
    let (https, rest) = match scheme_end {
        Some(i) => {
            let scheme = location[..i].to_ascii_lowercase();
            let https = match scheme.as_str() {
                "http" => false,
                "https" => true,
                _ => {
                    return Err(format!(
                        "the redirect to {} is not to an http or https URL",
                        quote(location.as_bytes())
                    ));
                }
            };
            match location[i + 1..].strip_prefix("//") {
                Some(rest) => (https, rest),
                None => {
                    return Err(format!(
                        "the redirect to {} has no host",
                        quote(location.as_bytes())
                    ));
                }
            }
        }
        None => match location.strip_prefix("//") {
            Some(rest) => (from.https, rest),
            None => {
                // Same scheme and authority: an absolute path, a query, or a relative path.
                let path = if location.starts_with('/') {
                    location.to_owned()
                } else if location.starts_with('?') {
                    let base = from.path.split('?').next().unwrap_or("/");
                    format!("{base}{location}")
                } else {
                    let base = from.path.split('?').next().unwrap_or("/");
                    let dir = base.rfind('/').map_or("/", |i| &base[..=i]);
                    format!("{dir}{location}")
                };
                return Ok(Hop { path, ..from.clone() });
            }
        },
    };
    let bad = |why: &str| format!("the redirect to {}: {why}", quote(location.as_bytes()));
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') { format!("/{path}") } else { path.to_owned() };
    if authority.contains('@') {
        return Err(bad("a user name in the URL"));
    }
    let default_port = if https { 443 } else { 80 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed [ in the host"))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after the host"))?),
        };
        let ip: IpAddr = host.parse().map_err(|_| bad("not an IPv6 address in [ ]"))?;
        (Identifier::Ip(ip), port)
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        let host = match host.parse::<IpAddr>() {
            Ok(ip) => Identifier::Ip(ip),
            Err(_) => Identifier::Dns(normalize_name(host).ok_or_else(|| bad("not a host name"))?),
        };
        (host, port)
    };
    let port = match port {
        None | Some("") => default_port,
        Some(p) => p.parse::<u16>().map_err(|_| bad("the port is not a number"))?,
    };
    let permitted = if https { [443, https_port] } else { [80, http_port] };
    if !permitted.contains(&port) {
        return Err(bad(&format!(
            "port {port} is not one a redirect may lead to ({})",
            if https {
                format!("https: 443 or {https_port}")
            } else {
                format!("http: 80 or {http_port}")
            }
        )));
    }
    Ok(Hop { https, host, port, authority: authority.to_owned(), path })
}

pub(crate) async fn validate(
    inner: &Inner,
    identifier: &Identifier,
    token: &str,
    key_authorization: &str,
) -> Result<(), ValidationFailure> {
    let config = &inner.config;
    if !token_is_valid(token) {
        return Err(ValidationFailure::new(
            FailureKind::Malformed,
            format!("the token {} is not base64url", quote(token.as_bytes())),
        ));
    }
    let (host, authority) = match identifier {
        Identifier::Dns(name) => {
            let name = normalize_name(name).ok_or_else(|| {
                ValidationFailure::new(
                    FailureKind::Malformed,
                    format!(
                        "{} is not a DNS name that http-01 can validate",
                        quote(name.as_bytes())
                    ),
                )
            })?;
            (Identifier::Dns(name.clone()), name)
        }
        Identifier::Ip(ip) => (Identifier::Ip(*ip), host_text(*ip)),
    };
    let mut hop = Hop {
        https: false,
        host,
        port: config.http01_port,
        authority,
        path: format!("/.well-known/acme-challenge/{token}"),
    };
    let mut redirects = 0;
    loop {
        let url = hop.url();
        let (status, location, body) = fetch(inner, &hop, &url).await.map_err(|f| {
            if redirects == 0 {
                f
            } else {
                let first = format!("/.well-known/acme-challenge/{token}");
                ValidationFailure::new(
                    f.kind,
                    format!("{} (after {redirects} redirect(s) from {first})", f.detail),
                )
            }
        })?;
        if matches!(status, 301 | 302 | 303 | 307 | 308) {
            let Some(location) = location else {
                return Err(ValidationFailure::new(
                    FailureKind::Connection,
                    format!("{url} answered {status} without a usable Location header"),
                ));
            };
            if redirects == config.max_redirects {
                return Err(ValidationFailure::new(
                    FailureKind::Connection,
                    format!(
                        "too many redirects: {url} redirects again after {redirects} (at most {} are followed)",
                        config.max_redirects
                    ),
                ));
            }
            redirects += 1;
            hop = redirect_target(&hop, &location, config.http01_port, config.tls_alpn01_port)
                .map_err(|why| {
                    ValidationFailure::new(FailureKind::Connection, format!("{url}: {why}"))
                })?;
            tracing::debug!(from = %url, to = %hop.url(), "http-01 redirect");
            continue;
        }
        if status != 200 {
            let start = match &body {
                Ok(body) => quote(body),
                Err(_) => "(a body longer than the limit)".to_owned(),
            };
            return Err(ValidationFailure::new(
                FailureKind::Unauthorized,
                format!("{url} answered {status} (200 expected): {start}"),
            ));
        }
        let body = body?;
        if body.trim_ascii() == key_authorization.as_bytes() {
            tracing::debug!(%url, "http-01 key authorization found");
            return Ok(());
        }
        return Err(ValidationFailure::new(
            FailureKind::IncorrectResponse,
            format!(
                "the key authorization at {url} is {}, not the one for this challenge",
                quote(body.trim_ascii())
            ),
        ));
    }
}

/// One GET: the status, the `Location` header, and the body (capped, or the failure to
/// read it).
async fn fetch(
    inner: &Inner,
    hop: &Hop,
    url: &str,
) -> Result<(u16, Option<String>, Result<Vec<u8>, ValidationFailure>), ValidationFailure> {
    let config = &inner.config;
    let addresses = permitted_addresses(&inner.resolver, &config.policy, &hop.host)
        .await
        .map_err(|f| ValidationFailure::new(f.kind, format!("{url}: {}", f.detail)))?;
    let (tcp, address) = connect(&addresses, hop.port, url, config.timeout / 2).await?;
    tracing::debug!(%url, %address, "http-01 request");
    let where_ = format!("{url} ({address})");
    let request = hyper::Request::get(&hop.path)
        .header(hyper::header::HOST, &hop.authority)
        .header(
            hyper::header::USER_AGENT,
            concat!("keystation-acme-va/", env!("CARGO_PKG_VERSION")),
        )
        .header(hyper::header::ACCEPT, "*/*")
        .body(Empty::<Bytes>::new())
        .map_err(|e| {
            ValidationFailure::new(
                FailureKind::Connection,
                format!("{where_}: cannot make the request: {e}"),
            )
        })?;
    let exchange = |e: String| {
        ValidationFailure::new(
            FailureKind::Connection,
            format!("{where_}: the HTTP exchange failed: {e}"),
        )
    };
    let (response, driver) = if hop.https {
        let name = match &hop.host {
            Identifier::Dns(name) => ServerName::try_from(name.clone()).map_err(|_| {
                ValidationFailure::new(
                    FailureKind::Connection,
                    format!("{url}: not a TLS server name"),
                )
            })?,
            Identifier::Ip(ip) => ServerName::IpAddress((*ip).into()),
        };
        let tls = inner.tls_https.connect(name, tcp).await.map_err(|e| {
            ValidationFailure::new(
                FailureKind::Tls,
                format!("{where_}: the TLS handshake failed: {e}"),
            )
        })?;
        send(TokioIo::new(tls), request).await.map_err(exchange)?
    } else {
        send(TokioIo::new(tcp), request).await.map_err(exchange)?
    };
    let _driver = driver;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(hyper::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = read_body(response.into_body(), config.max_body, &where_).await;
    Ok((status, location, body))
}

/// The body, at most `limit` bytes of it.
async fn read_body(
    mut incoming: hyper::body::Incoming,
    limit: usize,
    where_: &str,
) -> Result<Vec<u8>, ValidationFailure> {
    let mut body = Vec::new();
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|e| {
            ValidationFailure::new(
                FailureKind::Connection,
                format!("{where_}: reading the answer failed: {e}"),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            if data.len() > limit.saturating_sub(body.len()) {
                return Err(ValidationFailure::new(
                    FailureKind::IncorrectResponse,
                    format!("the answer from {where_} is longer than {limit} bytes"),
                ));
            }
            body.extend_from_slice(&data);
        }
    }
    Ok(body)
}

/// Sends `request` on a new HTTP/1.1 connection; the connection's task ends when the
/// returned guard is dropped.
async fn send<T>(
    io: T,
    request: hyper::Request<Empty<Bytes>>,
) -> Result<(hyper::Response<hyper::body::Incoming>, AbortOnDrop), String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(io).await.map_err(|e| e.to_string())?;
    let driver = AbortOnDrop(tokio::spawn(async move {
        let _ = connection.await;
    }));
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    Ok((response, driver))
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
    use super::*;

    fn start() -> Hop {
        Hop {
            https: false,
            host: Identifier::Dns("a.test".into()),
            port: 5002,
            authority: "a.test".into(),
            path: "/.well-known/acme-challenge/tok?x=1".into(),
        }
    }

    fn follow(location: &str) -> Result<Hop, String> {
        redirect_target(&start(), location, 5002, 5001)
    }

    #[test]
    fn redirects_resolve_against_the_current_url() {
        let hop = follow("/other").unwrap();
        assert_eq!((hop.url(), hop.port), ("http://a.test/other".into(), 5002));
        let hop = follow("next").unwrap();
        assert_eq!(hop.url(), "http://a.test/.well-known/acme-challenge/next");
        let hop = follow("?y=2").unwrap();
        assert_eq!(hop.url(), "http://a.test/.well-known/acme-challenge/tok?y=2");
        let hop = follow("HTTPS://B.Test/p#frag").unwrap();
        assert_eq!((hop.https, hop.port, hop.url()), (true, 443, "https://B.Test/p".into()));
        assert_eq!(hop.host, Identifier::Dns("b.test".into()));
        let hop = follow("//c.test:5002").unwrap();
        assert_eq!((hop.https, hop.port, hop.path.as_str()), (false, 5002, "/"));
        let hop = follow("http://[::1]:80?q").unwrap();
        assert_eq!(
            (hop.host, hop.port, hop.path),
            (Identifier::Ip("::1".parse().unwrap()), 80, "/?q".into())
        );
        let hop = follow("https://10.0.0.1:5001/x").unwrap();
        assert_eq!((hop.host, hop.port), (Identifier::Ip("10.0.0.1".parse().unwrap()), 5001));
    }

    #[test]
    fn redirects_to_other_schemes_and_ports_are_refused() {
        for (location, why) in [
            ("ftp://a.test/x", "not to an http or https URL"),
            ("javascript:alert(1)", "not to an http or https URL"),
            ("http://a.test:8080/", "port 8080"),
            ("https://a.test:80/", "port 80"),
            ("http:/x", "no host"),
            ("http://user@a.test/", "user name"),
            ("http://[::1/", "unclosed"),
            ("http://a_b.test/", "not a host name"),
            ("http://a.test:x/", "not a number"),
            ("http://a.test/a b", "not a URL"),
            ("", "not a URL"),
        ] {
            let err = follow(location).unwrap_err();
            assert!(err.contains(why), "{location}: {err}");
        }
    }

    #[test]
    fn tokens_must_be_base64url() {
        assert!(token_is_valid("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"));
        for bad in ["", "../x", "a/b", "a b", "a%2f", "tok?", &"a".repeat(257)] {
            assert!(!token_is_valid(bad), "{bad}");
        }
    }
}
