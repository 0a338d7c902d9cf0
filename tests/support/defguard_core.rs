//! A stand-in for defguard core's worker service: a real tonic server on loopback that
//! hosts `WorkerService` under both protobuf packages (`defguard.worker.v1` and the older
//! `worker`) over one tiny job queue with defguard's semantics:
//!
//! - every call needs the worker token in the `authorization` metadata, else
//!   UNAUTHENTICATED;
//! - RegisterWorker answers ALREADY_EXISTS for a known id;
//! - GetJob answers NOT_FOUND when the queue is empty, otherwise the oldest job, which
//!   stays queued until SetJobDone.
//!
//! Tests include it with `#[path = "support/defguard_core.rs"] mod defguard_core;`. It can
//! serve plain HTTP/2 or TLS, be stopped and started again on the same port (a core
//! restart), and fail SetJobDone on request.
#![allow(dead_code, unreachable_pub)]

use std::{
    collections::{BTreeSet, VecDeque},
    convert::Infallible,
    error::Error,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    task::{Context, Poll},
    time::Duration,
};

use keystation_station::proto::{defguard_worker_v1 as v1, worker as legacy};
use tonic::{
    Request,
    Response,
    Status,
    body::Body,
    // tonic's generated code reaches `http` and tower's `Service` through this module; the
    // test does the same instead of depending on those crates directly.
    codegen::{BoxFuture, Service, http},
    transport::{Identity, Server, ServerTlsConfig, server::TcpIncoming},
};

/// The token the test core accepts.
pub const TOKEN: &str = "station-secret-token";

/// A provisioning job as the core queues it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: u32,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
}

/// A SetJobDone report as the core received it, whichever package it came through.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Done {
    pub worker: String,
    pub job_id: u32,
    pub success: bool,
    pub public_key: String,
    pub ssh_key: String,
    pub serial: String,
    pub error: String,
}

#[derive(Debug, Default)]
pub struct CoreState {
    pub workers: BTreeSet<String>,
    pub jobs: VecDeque<Job>,
    pub next_job_id: u32,
    pub done: Vec<Done>,
    /// The HTTP/2 `:path` of every request that reached the server, authorized or not.
    pub paths: Vec<String>,
    /// How many of the next SetJobDone calls to answer with UNAVAILABLE (without taking
    /// the report).
    pub fail_set_job_done: u32,
    /// How many of the next SetJobDone calls to answer with FAILED_PRECONDITION, keeping
    /// the job queued (a core that refuses a report for good).
    pub refuse_set_job_done: u32,
    /// Every SetJobDone that arrived, including the failed ones.
    pub set_job_done_calls: u32,
    /// How many of the next GetJob calls to answer with job 99 whose first name is not
    /// UTF-8 (which a `string` field cannot carry; see [`RawGetJobResponse`]).
    pub non_utf8_jobs: u32,
    /// A service name (`defguard.worker.v1.WorkerService`) this core does not serve, as an
    /// older or newer core would not.
    pub unserved: Option<&'static str>,
}

/// `GetJobResponse` with `bytes` where the schema has `string`: the same wire format, but
/// nothing stops the bytes from being invalid UTF-8, as a broken or hostile server could
/// send them.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RawGetJobResponse {
    #[prost(bytes = "vec", tag = "1")]
    pub first_name: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub last_name: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub email: Vec<u8>,
    #[prost(uint32, tag = "4")]
    pub job_id: u32,
}

/// Answers GetJob with a fixed [`RawGetJobResponse`].
struct RawGetJob(RawGetJobResponse);

impl tonic::server::UnaryService<v1::Worker> for RawGetJob {
    type Response = RawGetJobResponse;
    type Future = BoxFuture<Response<RawGetJobResponse>, Status>;

    fn call(&mut self, _request: Request<v1::Worker>) -> Self::Future {
        let response = self.0.clone();
        Box::pin(async move { Ok(Response::new(response)) })
    }
}

/// The core's state, shared by both packages' services.
#[derive(Clone, Debug, Default)]
pub struct Core(Arc<Mutex<CoreState>>);

impl Core {
    pub fn state(&self) -> MutexGuard<'_, CoreState> {
        // A panicking test thread cannot leave the plain data here half-updated.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a job for any worker and returns its id.
    pub fn enqueue(&self, first_name: &str, last_name: &str, email: &str) -> u32 {
        let mut state = self.state();
        state.next_job_id += 1;
        let id = state.next_job_id;
        state.jobs.push_back(Job {
            id,
            first_name: first_name.into(),
            last_name: last_name.into(),
            email: email.into(),
        });
        id
    }

    /// The report for `job_id`, if one arrived.
    pub fn done(&self, job_id: u32) -> Option<Done> {
        self.state().done.iter().find(|d| d.job_id == job_id).cloned()
    }

    /// How many requests reached the server on `path` (`/worker.WorkerService/GetJob`).
    pub fn calls(&self, path: &str) -> usize {
        self.state().paths.iter().filter(|p| *p == path).count()
    }

    pub fn register(&self, id: String) -> Result<(), Status> {
        if self.state().workers.insert(id) {
            Ok(())
        } else {
            Err(Status::already_exists("Worker already registered"))
        }
    }

    /// The oldest job; it stays queued.
    pub fn oldest_job(&self) -> Result<Job, Status> {
        self.state().jobs.front().cloned().ok_or_else(|| Status::not_found("No more jobs"))
    }

    pub fn finish(&self, done: Done) -> Result<(), Status> {
        let mut state = self.state();
        state.set_job_done_calls += 1;
        if state.fail_set_job_done > 0 {
            state.fail_set_job_done -= 1;
            return Err(Status::unavailable("core is busy, try again"));
        }
        if state.refuse_set_job_done > 0 {
            state.refuse_set_job_done -= 1;
            return Err(Status::failed_precondition("job is not assigned to this worker"));
        }
        state.jobs.retain(|job| job.id != done.job_id);
        state.done.push(done);
        Ok(())
    }
}

/// Implements one package's generated `WorkerService` trait for [`Core`].
macro_rules! worker_service {
    ($package:ident) => {
        #[tonic::async_trait]
        impl $package::worker_service_server::WorkerService for Core {
            async fn register_worker(
                &self,
                request: Request<$package::Worker>,
            ) -> Result<Response<()>, Status> {
                self.register(request.into_inner().id).map(Response::new)
            }

            async fn get_job(
                &self,
                _request: Request<$package::Worker>,
            ) -> Result<Response<$package::GetJobResponse>, Status> {
                let job = self.oldest_job()?;
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
                self.finish(Done {
                    worker: status.id,
                    job_id: status.job_id,
                    success: status.success,
                    public_key: status.public_key,
                    ssh_key: status.ssh_key,
                    serial: status.yubikey_serial,
                    error: status.error,
                })
                .map(Response::new)
            }
        }
    };
}

worker_service!(v1);
worker_service!(legacy);

/// Routes requests to either package's generated server, after checking the token (as
/// defguard does with an interceptor in front of its services).
///
/// tonic's own multi-service router needs its `router` feature (axum); matching the
/// service-name prefix here keeps that out of the build.
#[derive(Clone)]
pub struct Dispatch {
    core: Core,
    v1: v1::worker_service_server::WorkerServiceServer<Core>,
    legacy: legacy::worker_service_server::WorkerServiceServer<Core>,
}

impl Dispatch {
    pub fn new(core: &Core) -> Self {
        Self {
            core: core.clone(),
            v1: v1::worker_service_server::WorkerServiceServer::new(core.clone()),
            legacy: legacy::worker_service_server::WorkerServiceServer::new(core.clone()),
        }
    }
}

impl Service<http::Request<Body>> for Dispatch {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let path = request.uri().path().to_owned();
        self.core.state().paths.push(path.clone());
        let token = request.headers().get("authorization").and_then(|v| v.to_str().ok());
        if token != Some(TOKEN) {
            let status = Status::unauthenticated("missing or invalid worker token");
            return Box::pin(async move { Ok(status.into_http()) });
        }
        if path.ends_with("/GetJob") {
            let mut state = self.core.state();
            if state.non_utf8_jobs > 0 {
                state.non_utf8_jobs -= 1;
                let raw = RawGetJobResponse {
                    first_name: b"Ad\xffa".to_vec(),
                    last_name: b"Lovelace".to_vec(),
                    email: b"ada@example.com".to_vec(),
                    job_id: 99,
                };
                return Box::pin(async move {
                    let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
                    Ok(grpc.unary(RawGetJob(raw), request).await)
                });
            }
        }
        let service = path.trim_start_matches('/').split('/').next().unwrap_or_default();
        if self.core.state().unserved == Some(service) {
            let status = Status::unimplemented(format!("no service {service}"));
            return Box::pin(async move { Ok(status.into_http()) });
        }
        if service == v1::worker_service_server::SERVICE_NAME {
            self.v1.call(request)
        } else if service == legacy::worker_service_server::SERVICE_NAME {
            self.legacy.call(request)
        } else {
            let status = Status::unimplemented(format!("no service {service}"));
            Box::pin(async move { Ok(status.into_http()) })
        }
    }
}

/// A running server; [`Running::stop`] shuts it down and frees the port.
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops accepting, closes the connections (HTTP/2 GOAWAY) and waits, at most 10 s,
    /// until the server is gone.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(Duration::from_secs(10), &mut self.task).await.is_err() {
            self.task.abort();
        }
    }
}

/// Serves `core` on `addr` (port 0 for an ephemeral port), with TLS if `identity` is given.
pub async fn serve(
    core: &Core,
    addr: SocketAddr,
    identity: Option<Identity>,
) -> Result<Running, Box<dyn Error>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let incoming = TcpIncoming::from(listener);
    let mut builder = Server::builder();
    if let Some(identity) = identity {
        builder = builder.tls_config(ServerTlsConfig::new().identity(identity))?;
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let dispatch = Dispatch::new(core);
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        let _ = builder.serve_with_incoming_shutdown(dispatch, incoming, shutdown).await;
    });
    Ok(Running { addr, stop: Some(stop), task })
}

/// Starts a plain server on an ephemeral port; it runs until the test's runtime shuts down.
pub async fn start_core() -> Result<(Core, SocketAddr), Box<dyn Error>> {
    let core = Core::default();
    let running = serve(&core, "127.0.0.1:0".parse()?, None).await?;
    let addr = running.addr;
    // Keep it running: dropping `Running` drops only the stop handle's sender, which
    // would stop the server; leak it into a task that waits forever instead.
    tokio::spawn(async move {
        let _keep = running;
        std::future::pending::<()>().await;
    });
    Ok((core, addr))
}
