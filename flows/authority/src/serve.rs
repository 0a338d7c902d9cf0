//! Running the authority: the HTTPS API and, when configured, defguard's worker service,
//! on one tokio runtime, until stopped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{self, ClientCertificates};
use crate::authority::Authority;
use crate::error::Error;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A running authority; [`Running::stop`] shuts it down.
#[derive(Debug)]
pub struct Running {
    /// The API's address (useful when the configured port was 0).
    pub address: SocketAddr,
    /// The worker service's address, when it is served.
    pub grpc_address: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting connections and waits (at most 10 s) for the servers to end.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

/// Starts the API on the configured address (and the worker service on its own) and
/// returns once both are listening.
pub async fn serve(authority: Arc<Authority>) -> Result<Running, Error> {
    let config = authority.config();
    let listener = TcpListener::bind(config.address)
        .await
        .map_err(|source| Error::Bind { address: config.address, source })?;
    let address =
        listener.local_addr().map_err(|source| Error::Bind { address: config.address, source })?;
    let (stop, stopped) = watch::channel(false);
    let tls = tokio_rustls::TlsAcceptor::from(authority.tls_config(&[b"h2", b"http/1.1"])?);
    let router = api::router(authority.clone());
    let mut tasks = vec![tokio::spawn(accept_https(listener, tls, router, stopped.clone()))];
    // Replicas sharing PostgreSQL see each other's provisioner changes within seconds.
    tasks.push(tokio::spawn(refresh_registry(authority.clone(), stopped.clone())));
    let mut grpc_address = None;
    if let Some(grpc) = config.grpc_address {
        let (bound, task) = crate::worker::serve(authority.clone(), grpc, stopped).await?;
        grpc_address = Some(bound);
        tasks.push(task);
    }
    tracing::info!(%address, grpc = ?grpc_address, "authority serving");
    Ok(Running { address, grpc_address, stop, tasks })
}

async fn refresh_registry(authority: Arc<Authority>, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(crate::authority::REGISTRY_REFRESH) => {}
            _ = stopped.changed() => return,
        }
        if let Err(error) = authority.reload_provisioners().await {
            tracing::warn!(%error, "reloading the provisioners failed; keeping the previous ones");
        }
        let purge = authority.store().purge_spent_tokens(std::time::SystemTime::now()).await;
        if let Err(error) = purge {
            tracing::warn!(%error, "purging expired token ids failed");
        }
        #[cfg(feature = "acme")]
        if let Err(error) = authority.store().acme_purge_nonces(std::time::SystemTime::now()).await
        {
            tracing::warn!(%error, "purging expired ACME nonces failed");
        }
    }
}

async fn accept_https(
    listener: TcpListener,
    tls: tokio_rustls::TlsAcceptor,
    router: axum::Router,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.changed() => return,
        };
        let tls = tls.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let certificates: Vec<Vec<u8>> = stream
                .get_ref()
                .1
                .peer_certificates()
                .map(|chain| chain.iter().map(|c| c.to_vec()).collect())
                .unwrap_or_default();
            let service = router.layer(axum::Extension(ClientCertificates(Arc::new(certificates))));
            let service = TowerToHyperService::new(service);
            if let Err(error) = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
}

/// Runs the authority until SIGTERM or SIGINT, on the runtime that loaded it: the store's
/// connections belong to the runtime they were opened on (a PostgreSQL connection opened
/// on another, since dropped, runtime fails its first query).
pub async fn serve_until_signalled(authority: Authority) -> Result<(), Error> {
    let running = serve(Arc::new(authority)).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Error::Serve(format!("SIGTERM handler: {e}")))?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
    }
    running.stop().await;
    Ok(())
}
