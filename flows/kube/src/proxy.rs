//! The loopback HTTP server kubectl talks to: every request is forwarded to the API
//! server through [`Upstream`], with hop-by-hop headers removed and upgrades (`kubectl
//! exec`, `port-forward`) spliced through.
//!
//! The proxy itself has no authentication: only local processes reach it (the seed's
//! security model), which is why [`check_loopback`] refuses any other address.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderMap, HeaderName};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::KubeError;
use super::upstream::{ProxyBody, Upstream, boxed, removed_since};

/// Refuses a listen address that other hosts could reach.
pub fn check_loopback(address: SocketAddr) -> Result<SocketAddr, KubeError> {
    if address.ip().is_loopback() { Ok(address) } else { Err(KubeError::NotLoopback(address)) }
}

/// Parses `HOST:PORT` (or a bare port, meaning 127.0.0.1) for `--listen`; `localhost`
/// means 127.0.0.1. Anything not on loopback is refused.
pub fn parse_listen(text: &str) -> Result<SocketAddr, KubeError> {
    let text = text.trim();
    let address = if let Ok(port) = text.parse::<u16>() {
        SocketAddr::from(([127, 0, 0, 1], port))
    } else if let Some(port) = text.strip_prefix("localhost:") {
        let port = port.parse::<u16>().map_err(|_| KubeError::BadListen(text.to_owned()))?;
        SocketAddr::from(([127, 0, 0, 1], port))
    } else {
        text.parse::<SocketAddr>().map_err(|_| KubeError::BadListen(text.to_owned()))?
    };
    check_loopback(address)
}

/// Serves until `shutdown` completes: accepts connections on `listener` and forwards
/// their requests. Connections in progress are dropped at shutdown.
pub async fn serve(
    listener: TcpListener,
    upstream: Arc<Upstream>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), KubeError> {
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // EMFILE and friends: back off a little rather than spin.
                    tracing::warn!("accept failed: {error}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if !peer.ip().is_loopback() {
            // Only reachable if the listener was bound elsewhere; refuse anyway.
            continue;
        }
        let _ = stream.set_nodelay(true);
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let upstream = upstream.clone();
                async move { Ok::<_, Infallible>(handle(&upstream, request).await) }
            });
            let connection = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(error) = connection.await {
                tracing::debug!("client connection ended: {error}");
            }
        });
    }
}

/// Forwards one request; failures become a Kubernetes `Status` answer that kubectl
/// prints ("Error from server (ServiceUnavailable): …").
async fn handle(upstream: &Upstream, mut request: Request<Incoming>) -> Response<ProxyBody> {
    let method = request.method().clone();
    let uri = request.uri().clone();
    let wants_upgrade = is_upgrade(request.headers());
    let client_upgrade = wants_upgrade.then(|| hyper::upgrade::on(&mut request));
    // kubectl sends origin-form targets (`/api?timeout=32s`); an absolute-form one
    // (`http://127.0.0.1:8080/api`) is cut down to its path for the API server.
    if uri.scheme().is_some() || uri.authority().is_some() {
        let origin = uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| hyper::http::uri::PathAndQuery::from_static("/"));
        *request.uri_mut() = hyper::Uri::from(origin);
    }
    strip_hop_by_hop(request.headers_mut(), wants_upgrade);
    let mut response = match upstream.send(request).await {
        Ok(response) => response,
        Err(error) => {
            let (code, reason) = match error {
                KubeError::CardAbsent => (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
                _ => (StatusCode::BAD_GATEWAY, "BadGateway"),
            };
            let message =
                format!("keystation kube proxy: {}", keystation_core::describe_chain(&error));
            tracing::warn!(%method, path = uri.path(), "{message}");
            return status(code, reason, &message);
        }
    };
    tracing::debug!(%method, path = uri.path(), status = response.status().as_u16(), "forwarded");
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_upgrade) = client_upgrade {
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            let removals = upstream.card_generation().unwrap_or(u64::MAX);
            let mut presence = upstream.presence();
            tokio::spawn(async move {
                let (client, server) = match tokio::try_join!(client_upgrade, upstream_upgrade) {
                    Ok(both) => both,
                    Err(error) => {
                        tracing::debug!("upgrade failed: {error}");
                        return;
                    }
                };
                let mut client = TokioIo::new(client);
                let mut server = TokioIo::new(server);
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    () = removed_since(&mut presence, removals) => {
                        tracing::debug!("upgraded stream closed: the card was removed");
                    }
                }
            });
        }
        let (parts, body) = response.into_parts();
        return Response::from_parts(parts, boxed(body));
    }
    strip_hop_by_hop(response.headers_mut(), false);
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, boxed(body))
}

/// Whether the request asks for a protocol switch (`Connection: upgrade` + `Upgrade`).
fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(hyper::header::UPGRADE)
        && headers.get_all(hyper::header::CONNECTION).iter().any(|v| {
            v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
        })
}

/// Removes the hop-by-hop headers of RFC 9110 §7.6.1 (and those `Connection` names); an
/// upgrade keeps `Connection: upgrade` and `Upgrade`, which it needs end to end.
fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .filter(|name| !(keep_upgrade && name == hyper::header::UPGRADE))
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
    ] {
        headers.remove(name);
    }
    if keep_upgrade {
        headers
            .insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(hyper::header::CONNECTION);
        headers.remove(hyper::header::UPGRADE);
    }
}

/// A Kubernetes `Status` object (what the API server itself answers with on errors).
fn status(code: StatusCode, reason: &str, message: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    })
    .to_string();
    let mut response =
        Response::new(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed());
    *response.status_mut() = code;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn listen_addresses_must_be_loopback() {
        assert_eq!(parse_listen("8080").unwrap(), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(parse_listen("localhost:9000").unwrap(), "127.0.0.1:9000".parse().unwrap());
        assert_eq!(parse_listen("[::1]:8080").unwrap(), "[::1]:8080".parse().unwrap());
        assert_eq!(parse_listen("127.0.0.2:1").unwrap(), "127.0.0.2:1".parse().unwrap());
        for refused in ["0.0.0.0:8080", "[::]:8080", "192.168.1.4:80"] {
            let error = parse_listen(refused).unwrap_err();
            assert!(matches!(error, KubeError::NotLoopback(_)), "{refused}: {error}");
            assert!(error.to_string().contains("loopback"), "{error}");
        }
        assert!(matches!(parse_listen("example.com:80"), Err(KubeError::BadListen(_))));
        assert!(matches!(parse_listen("localhost:x"), Err(KubeError::BadListen(_))));
    }

    #[test]
    fn hop_by_hop_headers_go_and_upgrades_keep_theirs() {
        let mut headers = HeaderMap::new();
        headers.insert("connection", "keep-alive, x-private".parse().unwrap());
        headers.insert("x-private", "1".parse().unwrap());
        headers.insert("keep-alive", "timeout=5".parse().unwrap());
        headers.insert("accept", "application/json".parse().unwrap());
        strip_hop_by_hop(&mut headers, false);
        assert_eq!(headers.len(), 1, "{headers:?}");
        assert!(headers.contains_key("accept"));

        let mut headers = HeaderMap::new();
        headers.insert("connection", "Upgrade".parse().unwrap());
        headers.insert("upgrade", "SPDY/3.1".parse().unwrap());
        assert!(is_upgrade(&headers));
        strip_hop_by_hop(&mut headers, true);
        assert_eq!(headers.get("upgrade").unwrap(), "SPDY/3.1");
        assert_eq!(headers.get("connection").unwrap(), "upgrade");
    }
}
