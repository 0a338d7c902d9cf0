//! defguard's `WorkerService` served from the store, under both protobuf packages
//! (`defguard.worker.v1` and the older `worker`), so keystation stations and defguard's own
//! provisioner both connect.
//!
//! Behaviour as defguard core has it (the `.proto` files' header lists it): the token in
//! the `authorization` metadata, checked by the authority's static-token provisioners
//! (operation `TakeJobs`), else UNAUTHENTICATED; `RegisterWorker` answers ALREADY_EXISTS for
//! a known id; `GetJob` answers NOT_FOUND when no job is queued and keeps returning a job
//! until `SetJobDone` reports it.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use keystation_station::proto::{defguard_worker_v1 as v1, worker as legacy};
use keystation_store::{JobOutcome, Registration};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

use crate::authority::Authority;
use crate::error::Error;

/// The worker service's shared state.
#[derive(Clone)]
pub struct Workers {
    authority: Arc<Authority>,
}

impl Workers {
    async fn register(&self, id: String) -> Result<(), Status> {
        check_worker_id(&id)?;
        match self.authority.store().register_worker(&id).await {
            Ok(Registration::Registered) => {
                tracing::info!(worker = %id, "station registered");
                Ok(())
            }
            Ok(Registration::AlreadyExists) => {
                Err(Status::already_exists(format!("worker {id} is already registered")))
            }
            Err(error) => Err(internal(&error)),
        }
    }

    async fn next_job(&self, id: String) -> Result<keystation_store::Job, Status> {
        check_worker_id(&id)?;
        let store = self.authority.store();
        // A station that polls without registering first is registered by its poll.
        match store.touch_worker(&id).await {
            Ok(()) => {}
            Err(keystation_store::Error::NotFound { .. }) => {
                store.register_worker(&id).await.map_err(|e| internal(&e))?;
            }
            Err(error) => return Err(internal(&error)),
        }
        match store.next_job_for(&id).await {
            Ok(Some(job)) => Ok(job),
            Ok(None) => Err(Status::not_found("no job queued")),
            Err(error) => Err(internal(&error)),
        }
    }

    async fn finish(&self, worker: String, job_id: u32, outcome: JobOutcome) -> Result<(), Status> {
        check_worker_id(&worker)?;
        let success = matches!(outcome, JobOutcome::Success { .. });
        match self.authority.store().finish_job(&worker, job_id, &outcome).await {
            Ok(()) => {
                tracing::info!(%worker, job = job_id, success, "job reported");
                Ok(())
            }
            Err(
                error @ (keystation_store::Error::JobNotQueued { .. }
                | keystation_store::Error::JobOfAnotherWorker { .. }
                | keystation_store::Error::NotFound { .. }),
            ) => Err(Status::failed_precondition(error.to_string())),
            Err(error) => Err(internal(&error)),
        }
    }
}

fn check_worker_id(id: &str) -> Result<(), Status> {
    if id.is_empty() || id.len() > 256 || id.chars().any(char::is_control) {
        return Err(Status::invalid_argument("worker id must be 1 to 256 printable characters"));
    }
    Ok(())
}

fn internal(error: &dyn std::fmt::Display) -> Status {
    tracing::error!(%error, "worker service: store failed");
    Status::internal("the authority's store failed; see its log")
}

macro_rules! worker_service {
    ($package:ident) => {
        #[tonic::async_trait]
        impl $package::worker_service_server::WorkerService for Workers {
            async fn register_worker(
                &self,
                request: Request<$package::Worker>,
            ) -> Result<Response<()>, Status> {
                self.register(request.into_inner().id).await.map(Response::new)
            }

            async fn get_job(
                &self,
                request: Request<$package::Worker>,
            ) -> Result<Response<$package::GetJobResponse>, Status> {
                let job = self.next_job(request.into_inner().id).await?;
                Ok(Response::new($package::GetJobResponse {
                    first_name: job.first_name,
                    last_name: job.last_name,
                    email: job.email,
                    job_id: job.id,
                }))
            }

            async fn set_job_done(
                &self,
                request: Request<$package::JobStatus>,
            ) -> Result<Response<()>, Status> {
                let status = request.into_inner();
                let outcome = if status.success {
                    JobOutcome::Success {
                        public_key: status.public_key,
                        ssh_key: status.ssh_key,
                        yubikey_serial: status.yubikey_serial,
                    }
                } else {
                    JobOutcome::Failure { error: status.error }
                };
                self.finish(status.id, status.job_id, outcome).await.map(Response::new)
            }
        }
    };
}

worker_service!(v1);
worker_service!(legacy);

/// Checks the station's token, then hands the call to the service of its package.
#[derive(Clone)]
struct Dispatch {
    authority: Arc<Authority>,
    v1: v1::worker_service_server::WorkerServiceServer<Workers>,
    legacy: legacy::worker_service_server::WorkerServiceServer<Workers>,
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

impl tower::Service<http::Request<Body>> for Dispatch {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let token = request.headers().get("authorization").and_then(|v| v.to_str().ok());
        let path = request.uri().path().to_owned();
        if let Err(denial) = self.authority.authorize_station(token) {
            tracing::warn!(%path, reason = %denial, "worker service: token refused");
            let status = Status::unauthenticated("missing or invalid worker token");
            return Box::pin(async move { Ok(status.into_http()) });
        }
        let service = path.trim_start_matches('/').split('/').next().unwrap_or_default();
        if service == v1::worker_service_server::SERVICE_NAME {
            let mut inner = self.v1.clone();
            Box::pin(async move { tower::Service::call(&mut inner, request).await })
        } else if service == legacy::worker_service_server::SERVICE_NAME {
            let mut inner = self.legacy.clone();
            Box::pin(async move { tower::Service::call(&mut inner, request).await })
        } else {
            let status = Status::unimplemented(format!("no service {service}"));
            Box::pin(async move { Ok(status.into_http()) })
        }
    }
}

impl NamedService for Dispatch {
    const NAME: &'static str = "defguard.worker.v1.WorkerService";
}

/// Serves the worker service over TLS (the API's certificate) on `address`.
pub(crate) async fn serve(
    authority: Arc<Authority>,
    address: SocketAddr,
    mut stopped: watch::Receiver<bool>,
) -> Result<(SocketAddr, JoinHandle<()>), Error> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| Error::Bind { address, source })?;
    let bound = listener.local_addr().map_err(|source| Error::Bind { address, source })?;
    let (chain_pem, key_pem) = authority.tls_identity_pem();
    let identity = tonic::transport::Identity::from_pem(chain_pem, key_pem.as_bytes());
    let builder = tonic::transport::Server::builder()
        .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
        .map_err(|e| Error::Tls(format!("worker service: {e}")))?;
    let workers = Workers { authority: authority.clone() };
    let dispatch = Dispatch {
        authority,
        v1: v1::worker_service_server::WorkerServiceServer::new(workers.clone()),
        legacy: legacy::worker_service_server::WorkerServiceServer::new(workers),
    };
    let incoming = tonic::transport::server::TcpIncoming::from(listener);

    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.changed().await;
        };
        if let Err(error) = builder.serve_with_incoming_shutdown(dispatch, incoming, shutdown).await
        {
            tracing::error!(%error, "worker service stopped");
        }
    });
    Ok((bound, task))
}
