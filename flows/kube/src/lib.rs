//! keystation-kube: `keystation kube`, kubectl authenticated by a client key that never leaves the card's
//! PIV slot (DESIGN §5, seed 003).
//!
//! * [`setup`] reads a kubeconfig context and puts its client credential into a PIV slot —
//!   importing the existing key and certificate, or generating the key on the card and
//!   getting it certified through the cluster's `certificates.k8s.io/v1` API — then writes
//!   `proxy.yml` (server and CA, for the proxy) and `client.yml` (kubectl → the proxy).
//! * [`run_proxy`] listens on loopback and forwards to the API server over mutual TLS,
//!   the TLS signature made by the card ([`signer`]). By default every request opens a new
//!   connection, so every request needs the card; `--keep-alive` (presence-watch mode)
//!   keeps connections and closes them all when PC/SC reports the card removed.
//! * [`shell`] runs a shell (or a command) with `KUBECONFIG` pointing at a proxy that
//!   lives as long as the shell.

pub mod card;
pub mod csr_api;
pub mod presence;
pub mod proxy;
pub mod setup;
pub mod shell;
pub mod signer;
pub mod upstream;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use keystation_core::keygen::PivSlot;
use rustls::pki_types::ServerName;

pub use presence::{CardPresence, PresenceSender};

/// Where the proxy listens unless told otherwise (the seed's address).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// What went wrong in a `kube` command.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KubeError {
    /// `--listen` names an address other hosts could reach.
    #[error(
        "refusing to listen on {0}: the proxy has no authentication of its own, so it listens \
         on loopback only (127.0.0.0/8 or [::1])"
    )]
    NotLoopback(SocketAddr),
    /// `--listen` is not `HOST:PORT`.
    #[error(
        "bad listen address {0:?}: expected 127.0.0.1:PORT, [::1]:PORT, localhost:PORT or PORT"
    )]
    BadListen(String),
    /// The kubeconfig could not be read or resolved.
    #[error(transparent)]
    Kubeconfig(#[from] keystation_kubeconfig::Error),
    /// Writing output failed.
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
    /// No card, several cards, or PC/SC failed.
    #[error(transparent)]
    Card(#[from] keystation_cards::Error),
    /// A card, certificate or PIV command step (card search, management key, slot name)
    /// failed; the same errors `keystation piv` reports.
    #[error(transparent)]
    PivCmd(#[from] keystation_piv_ops::Error),
    /// The kubeconfig's server is unusable for the proxy.
    #[error("bad API server address {0:?}: the proxy needs an https:// URL")]
    BadServer(String),
    /// `insecure-skip-tls-verify` is set.
    #[error(
        "cluster {0:?} sets insecure-skip-tls-verify: the proxy always verifies the API server; \
         give certificate-authority-data"
    )]
    InsecureCluster(String),
    /// The CA data is not a PEM certificate.
    #[error("the cluster's certificate authority is not a usable PEM certificate: {0}")]
    BadCa(String),
    /// No card in any reader.
    #[error("no card detected: insert the card that holds the key for slot {slot}")]
    NoCard {
        /// The slot the proxy needs.
        slot: String,
        /// What PC/SC said.
        #[source]
        source: keystation_cards::Error,
    },
    /// The slot has no certificate.
    #[error("PIV slot {0} holds no certificate: run `keystation kube setup` first")]
    NoCertificate(String),
    /// The slot's certificate cannot be used for TLS.
    #[error("the certificate in PIV slot {slot} cannot be used: {reason}")]
    BadCertificate {
        /// The slot.
        slot: String,
        /// Why.
        reason: String,
    },
    /// The card is out of its reader.
    #[error("the card is not present")]
    CardAbsent,
    /// The PIN is needed and there is no way to ask for it.
    #[error("{0}")]
    Pin(String),
    /// The card's worker thread ended.
    #[error("the card's worker thread has stopped")]
    CardThreadGone,
    /// A thread could not be started.
    #[error("cannot start a thread")]
    Thread(#[source] std::io::Error),
    /// TCP to the API server failed.
    #[error("cannot connect to the API server {server}")]
    UpstreamConnect {
        /// `host:port`.
        server: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake with the API server failed (which includes the card's signature).
    #[error("TLS handshake with the API server {server} failed")]
    UpstreamTls {
        /// `host:port`.
        server: String,
        /// rustls's error (carrying the card's, when the signature failed).
        #[source]
        source: std::io::Error,
    },
    /// HTTP with the API server failed.
    #[error("HTTP exchange with the API server failed")]
    UpstreamHttp(#[source] hyper::Error),
    /// rustls refused the configuration.
    #[error("TLS configuration")]
    TlsConfig(#[source] rustls::Error),
    /// The certificates API answered with an error or something unexpected.
    #[error("certificate signing request: {0}")]
    Csr(String),
    /// An API server request did not complete (connect to the end of the answer) in time.
    #[error("{what}: no complete answer from {url} within {seconds} s")]
    ApiTimeout {
        /// The operation ("creating the CertificateSigningRequest").
        what: &'static str,
        /// The request's URL.
        url: String,
        /// The time allowed.
        seconds: f64,
    },
    /// An API server answer was larger than the client reads.
    #[error("{what}: the answer from {url} is larger than {limit} bytes; it was not read")]
    ApiTooLarge {
        /// The operation.
        what: &'static str,
        /// The request's URL.
        url: String,
        /// The limit in bytes.
        limit: usize,
    },
    /// A file could not be read or written.
    #[error("{what} {}", .path.display())]
    File {
        /// What was being done ("cannot write").
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Other I/O (binding the listener, starting the runtime, the shell).
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A bad command-line value.
    #[error("{0}")]
    Usage(String),
}

impl KubeError {
    /// Whether the card (or the link to it) failed, so the next use must connect again.
    pub fn card_failed(&self) -> bool {
        match self {
            Self::PivCmd(keystation_piv_ops::Error::Piv { source, .. }) => {
                matches!(source, keystation_piv::Error::Transport { .. })
            }
            Self::CardAbsent | Self::NoCard { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn piv(what: impl Into<String>) -> impl FnOnce(keystation_piv::Error) -> Self {
        let what = what.into();
        move |source| Self::PivCmd(keystation_piv_ops::Error::Piv { what, source })
    }

    pub(crate) fn x509(what: impl Into<String>) -> impl FnOnce(keystation_x509::Error) -> Self {
        let what = what.into();
        move |source| Self::PivCmd(keystation_piv_ops::Error::X509 { what, source })
    }
}

pub use keystation_piv_ops::{parse_slot_name as parse_slot, slot_name};

/// The API server as the proxy reaches it.
#[derive(Debug, Clone)]
pub struct Server {
    /// Host name or IP literal (without brackets).
    pub host: String,
    /// Port (443 by default).
    pub port: u16,
    /// The name the server certificate must carry.
    pub server_name: ServerName<'static>,
    /// The trust anchors.
    pub roots: Arc<rustls::RootCertStore>,
}

impl Server {
    /// From a resolved cluster: an `https://` server, the CA (or Mozilla's roots when the
    /// kubeconfig has none, as kubectl uses the system's), `tls-server-name`.
    pub fn from_cluster(
        cluster: &keystation_kubeconfig::ResolvedCluster,
    ) -> Result<Self, KubeError> {
        if cluster.insecure_skip_tls_verify {
            return Err(KubeError::InsecureCluster(cluster.name.clone()));
        }
        let bad = || KubeError::BadServer(cluster.server.clone());
        let rest = cluster.server.strip_prefix("https://").ok_or_else(bad)?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.is_empty() || authority.contains('@') {
            return Err(bad());
        }
        let (host, port) = split_host_port(authority).ok_or_else(bad)?;
        let name = cluster.tls_server_name.clone().unwrap_or_else(|| host.clone());
        let server_name = ServerName::try_from(name).map_err(|_| bad())?;
        let mut roots = rustls::RootCertStore::empty();
        match &cluster.ca_pem {
            Some(pem) => {
                let blocks = keystation_x509::pem::decode_all(&String::from_utf8_lossy(pem))
                    .map_err(|e| KubeError::BadCa(keystation_core::describe_chain(&e)))?;
                for block in blocks.iter().filter(|b| b.label == "CERTIFICATE") {
                    roots
                        .add(rustls::pki_types::CertificateDer::from(block.der.clone()))
                        .map_err(|e| KubeError::BadCa(e.to_string()))?;
                }
                if roots.is_empty() {
                    return Err(KubeError::BadCa("no CERTIFICATE block".into()));
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        Ok(Self { host, port, server_name, roots: Arc::new(roots) })
    }
}

/// `host[:port]` or `[v6][:port]`; port 443 by default.
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
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_owned(), port.parse().ok()?)),
        None => Some((authority.to_owned(), 443)),
    }
}

/// How to run the proxy.
#[derive(Debug, Clone, Default)]
pub struct ProxyOptions {
    /// The proxy's kubeconfig (`proxy.yml`); default `~/.kube/proxy.yml`.
    pub kubeconfig: Option<PathBuf>,
    /// The context; default its current-context.
    pub context: Option<String>,
    /// Listen address; default the kubeconfig's keystation extension, else
    /// [`DEFAULT_LISTEN`].
    pub listen: Option<String>,
    /// Slot; default the kubeconfig's keystation extension, else 9a.
    pub slot: Option<PivSlot>,
    /// Presence-watch mode: keep upstream connections alive.
    pub keep_alive: bool,
    /// Read the PIN from this file (else prompt on the terminal when the key needs it).
    pub pin_file: Option<PathBuf>,
    /// The card holding the key (a card in a PC/SC reader: the proxy watches the reader
    /// for the card's removal). The proxy opens it shared, so that other applications
    /// can use the card meanwhile.
    pub card: keystation_cards::CardSelection,
}

/// The default proxy kubeconfig, `~/.kube/proxy.yml`.
pub fn default_proxy_kubeconfig() -> Result<PathBuf, KubeError> {
    let home = std::env::var_os("HOME")
        .ok_or_else(|| KubeError::Usage("HOME is not set: give --kubeconfig".into()))?;
    Ok(PathBuf::from(home).join(".kube").join("proxy.yml"))
}

/// A proxy ready to serve: card found, key checked, listener bound.
pub struct Prepared {
    listener: std::net::TcpListener,
    upstream: Arc<upstream::Upstream>,
    stop_watch: Arc<AtomicBool>,
    /// The address kubectl should use.
    pub address: SocketAddr,
    /// The reader holding the card.
    pub reader: String,
    /// The slot.
    pub slot: PivSlot,
    /// The API server, `host:port`.
    pub server: String,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("address", &self.address)
            .field("reader", &self.reader)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        self.stop_watch.store(true, Ordering::Relaxed);
    }
}

/// Finds the card, opens the key in its slot, checks its certificate, and binds the
/// listener. Fails with a clear message when no card is present.
pub fn prepare(options: &ProxyOptions) -> Result<Prepared, KubeError> {
    let path = match &options.kubeconfig {
        Some(path) => path.clone(),
        None => default_proxy_kubeconfig()?,
    };
    let kubeconfig = keystation_kubeconfig::Kubeconfig::load(&[&path])?;
    let context = kubeconfig.resolve(options.context.as_deref())?;
    let server = Server::from_cluster(&context.cluster)?;
    let extension = context.keystation.as_ref();
    let slot = match (options.slot, extension) {
        (Some(slot), _) => slot,
        (None, Some(extension)) => parse_slot(&extension.slot)?,
        (None, None) => PivSlot::Authentication,
    };
    let listen = options
        .listen
        .clone()
        .or_else(|| extension.map(|e| e.listen.clone()))
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let listen = proxy::parse_listen(&listen)?;

    let key = card::open(&options.card, slot, options.pin_file.as_deref())?;
    let reader = key.reader.clone();
    let (sender, presence) = PresenceSender::new();
    let stop_watch = Arc::new(AtomicBool::new(false));
    presence::watch_reader(reader.clone(), sender, stop_watch.clone())
        .map_err(KubeError::Thread)?;
    let tls = signer::client_config((*server.roots).clone(), key.certificate, key.key)?;
    let upstream = Arc::new(upstream::Upstream::new(
        server.host.clone(),
        server.port,
        server.server_name.clone(),
        tls,
        options.keep_alive,
        presence,
    )?);
    let listener = std::net::TcpListener::bind(listen)
        .map_err(|source| KubeError::Io { what: format!("cannot listen on {listen}"), source })?;
    listener.set_nonblocking(true).map_err(|source| KubeError::Io {
        what: "cannot set the listener non-blocking".into(),
        source,
    })?;
    let address = listener.local_addr().map_err(|source| KubeError::Io {
        what: "cannot read the listener's address".into(),
        source,
    })?;
    Ok(Prepared {
        listener,
        upstream,
        stop_watch,
        address,
        reader,
        slot,
        server: format!("{}:{}", server.host, server.port),
    })
}

/// Serves `prepared` on a new multi-threaded runtime until `shutdown` completes.
pub fn serve_until(
    prepared: Prepared,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), KubeError> {
    // One worker: a request's tasks (client connection, upstream connection) then run on
    // one thread without cross-thread wake-ups, which measured 7% more requests per second
    // than two workers (benches/kube_proxy.rs). It is still the multi-threaded runtime,
    // which the card signer's `block_in_place` needs: while the card signs, another
    // thread takes over the runtime's other tasks.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .thread_name("kube-proxy")
        .build()
        .map_err(|source| KubeError::Io {
            what: "cannot start the async runtime".into(),
            source,
        })?;
    runtime.block_on(async {
        let listener =
            tokio::net::TcpListener::from_std(prepared.listener.try_clone().map_err(|source| {
                KubeError::Io { what: "cannot use the listener".into(), source }
            })?)
            .map_err(|source| KubeError::Io { what: "cannot use the listener".into(), source })?;
        proxy::serve(listener, prepared.upstream.clone(), shutdown).await
    })
}

/// `keystation kube proxy`: prepares, prints where it listens, serves until SIGINT or
/// SIGTERM.
pub fn run_proxy(options: &ProxyOptions, out: &mut dyn std::io::Write) -> Result<(), KubeError> {
    let prepared = prepare(options)?;
    writeln!(
        out,
        "keystation kube proxy: http://{} -> https://{} (PIV slot {}, card in {:?}, connection reuse {})",
        prepared.address,
        prepared.server,
        slot_name(prepared.slot),
        prepared.reader,
        if options.keep_alive { "on, closed on card removal" } else { "off" },
    )?;
    out.flush()?;
    tracing::info!(address = %prepared.address, server = %prepared.server, "proxy listening");
    serve_until(prepared, shutdown_signal())?;
    tracing::info!("proxy stopped");
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
        (Ok(mut interrupt), Ok(mut terminate)) => {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn slots_parse_as_ykman_names_them() {
        assert_eq!(parse_slot("9a").unwrap(), PivSlot::Authentication);
        assert_eq!(parse_slot("9C").unwrap(), PivSlot::Signature);
        assert_eq!(parse_slot("key-management").unwrap(), PivSlot::KeyManagement);
        assert_eq!(slot_name(parse_slot("0x9e").unwrap()), "9e");
        assert_eq!(slot_name(parse_slot("82").unwrap()), "82");
        for bad in ["f9", "9b", "zz", ""] {
            assert!(parse_slot(bad).unwrap_err().to_string().contains("unknown PIV slot"), "{bad}");
        }
    }

    #[test]
    fn host_and_port_split_like_urls() {
        assert_eq!(split_host_port("k8s.example:6443"), Some(("k8s.example".into(), 6443)));
        assert_eq!(split_host_port("k8s.example"), Some(("k8s.example".into(), 443)));
        assert_eq!(split_host_port("[::1]:6443"), Some(("::1".into(), 6443)));
        assert_eq!(split_host_port("[::1]"), Some(("::1".into(), 443)));
        assert_eq!(split_host_port("host:port"), None);
    }
}
