//! The proxy's side towards the API server: HTTP/1.1 over TLS connections that
//! authenticate with the card's key, one per request or (presence-watch mode) kept alive
//! in a pool.
//!
//! Every connection watches the card's [`CardPresence`]: when the card is removed, the
//! connection's task ends, which closes the socket — pooled connections and streams in
//! flight alike (a `kubectl get -w` stops at once). Connections are tagged with the
//! removal count they were made under, so none made before a removal is used after it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http_body_util::BodyExt as _;
use http_body_util::combinators::BoxBody;
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::KubeError;
use super::presence::CardPresence;

/// How long a TCP connect to the API server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How many kept-alive connections the pool holds at most, busy ones included (a
/// connection goes back as soon as its response head is in, while the body may still
/// stream, as a `kubectl get -w` does for minutes).
const MAX_POOLED: usize = 256;

/// The body type of what the proxy sends back to its clients.
pub type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// Where and how to reach the API server.
pub struct Upstream {
    /// `host:port`, for messages.
    authority: String,
    /// The same, as the `Host` header of every request.
    host_header: hyper::header::HeaderValue,
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    connector: tokio_rustls::TlsConnector,
    reuse: bool,
    idle: Mutex<Vec<Idle>>,
    presence: watch::Receiver<CardPresence>,
}

/// A kept-alive connection, with the removal count it was made under.
struct Idle {
    sender: http1::SendRequest<Incoming>,
    removals: u64,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("authority", &self.authority)
            .field("reuse", &self.reuse)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// An upstream at `host:port`, verified as `server_name`, authenticating with the
    /// client identity inside `tls`. With `reuse`, connections are kept alive.
    pub fn new(
        host: String,
        port: u16,
        server_name: ServerName<'static>,
        tls: Arc<rustls::ClientConfig>,
        reuse: bool,
        presence: watch::Receiver<CardPresence>,
    ) -> Result<Self, KubeError> {
        let authority = match host.parse::<std::net::Ipv6Addr>() {
            Ok(_) => format!("[{host}]:{port}"),
            Err(_) => format!("{host}:{port}"),
        };
        let host_header = hyper::header::HeaderValue::from_str(&authority)
            .map_err(|_| KubeError::BadServer(authority.clone()))?;
        Ok(Self {
            authority,
            host_header,
            host,
            port,
            server_name,
            connector: tokio_rustls::TlsConnector::from(tls),
            reuse,
            idle: Mutex::new(Vec::new()),
            presence,
        })
    }

    /// The card's presence, as the proxy watches it.
    pub fn presence(&self) -> watch::Receiver<CardPresence> {
        self.presence.clone()
    }

    /// Whether connections are kept alive (presence-watch mode).
    pub fn reuses_connections(&self) -> bool {
        self.reuse
    }

    /// The removal count if the card is present now, else [`KubeError::CardAbsent`].
    pub fn card_generation(&self) -> Result<u64, KubeError> {
        let presence = *self.presence.borrow();
        if presence.present { Ok(presence.removals) } else { Err(KubeError::CardAbsent) }
    }

    /// Sends `request` (already rewritten for the API server) and returns the answer,
    /// whose body streams from the API server.
    pub async fn send(
        &self,
        mut request: Request<Incoming>,
    ) -> Result<Response<Incoming>, KubeError> {
        let removals = self.card_generation()?;
        request.headers_mut().insert(hyper::header::HOST, self.host_header.clone());
        let mut sender = match self.take_idle(removals) {
            Some(sender) => sender,
            None => self.connect(removals).await?,
        };
        let upgrade = request.headers().contains_key(hyper::header::UPGRADE);
        let response = sender.send_request(request).await.map_err(KubeError::UpstreamHttp)?;
        if self.reuse && !upgrade {
            self.put_idle(sender, removals);
        }
        Ok(response)
    }

    /// A ready pooled connection made under `removals`; drops closed and stale ones and
    /// keeps busy ones (a response body still streaming) for later.
    fn take_idle(&self, removals: u64) -> Option<http1::SendRequest<Incoming>> {
        if !self.reuse {
            return None;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.retain(|i| i.removals == removals && !i.sender.is_closed());
        let ready = idle.iter().position(|i| i.sender.is_ready())?;
        Some(idle.swap_remove(ready).sender)
    }

    fn put_idle(&self, sender: http1::SendRequest<Incoming>, removals: u64) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.retain(|i| i.removals == removals && !i.sender.is_closed());
        if idle.len() < MAX_POOLED {
            idle.push(Idle { sender, removals });
        }
    }

    /// A new TLS connection (the card signs in the handshake) with its HTTP/1.1 driver
    /// task, which ends — closing the socket — when the card is removed.
    async fn connect(&self, removals: u64) -> Result<http1::SendRequest<Incoming>, KubeError> {
        let tcp =
            tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((&*self.host, self.port)))
                .await
                .map_err(|_| KubeError::UpstreamConnect {
                    server: self.authority.clone(),
                    source: std::io::ErrorKind::TimedOut.into(),
                })?
                .map_err(|source| KubeError::UpstreamConnect {
                    server: self.authority.clone(),
                    source,
                })?;
        // Requests are small and interactive; do not wait to fill segments.
        let _ = tcp.set_nodelay(true);
        let tls =
            self.connector.connect(self.server_name.clone(), tcp).await.map_err(|source| {
                KubeError::UpstreamTls { server: self.authority.clone(), source }
            })?;
        let (sender, connection) =
            http1::handshake(TokioIo::new(tls)).await.map_err(KubeError::UpstreamHttp)?;
        let mut presence = self.presence.clone();
        tokio::spawn(async move {
            tokio::select! {
                result = connection.with_upgrades() => {
                    if let Err(error) = result {
                        tracing::debug!("upstream connection ended: {error}");
                    }
                }
                () = removed_since(&mut presence, removals) => {
                    tracing::debug!("upstream connection closed: the card was removed");
                }
            }
        });
        Ok(sender)
    }
}

/// Completes when the card is out, or was removed since `removals` was current.
pub async fn removed_since(presence: &mut watch::Receiver<CardPresence>, removals: u64) {
    loop {
        let now = *presence.borrow_and_update();
        if !now.present || now.removals != removals {
            return;
        }
        if presence.changed().await.is_err() {
            // Nobody watches the card any more (the proxy is ending): keep the connection.
            std::future::pending::<()>().await;
        }
    }
}

/// Boxes a body of the API server's answer for the proxy's response.
pub fn boxed(body: Incoming) -> ProxyBody {
    body.boxed()
}
