//! The generated worker-protocol code against a real tonic server on `127.0.0.1:0`.
//!
//! The server is the test core in `support/defguard_core.rs`: `WorkerService` under both
//! protobuf packages (`defguard.worker.v1` and the older `worker`) over one tiny job queue
//! that behaves as defguard core does (ALREADY_EXISTS for a known id, NOT_FOUND for an
//! empty queue, a job queued until SetJobDone, the token in `authorization`). The
//! generated clients drive it through both package names.
//!
//! Every call is bounded by the client endpoint's connect and request timeouts.
#![cfg(feature = "grpc")]

#[path = "support/defguard_core.rs"]
mod defguard_core;

use std::{
    error::Error,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use defguard_core::{Core, Done, Job, TOKEN, start_core};
use keystation_station::proto::{defguard_worker_v1 as v1, worker as legacy};
use tonic::{
    Code, GrpcMethod, Request, Status,
    metadata::MetadataValue,
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Channel, Endpoint},
};

type TestResult = Result<(), Box<dyn Error>>;

/// Upper bound for connecting and for each call.
const TIMEOUT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------
// The station side: generated clients behind an interceptor.
// ---------------------------------------------------------------------------------------

/// Adds the `authorization` token (if any) and records the method each call names.
#[derive(Clone, Debug, Default)]
struct Station {
    token: Option<&'static str>,
    /// `/{service}/{method}` as the generated client labels each call.
    methods: Arc<Mutex<Vec<String>>>,
}

impl Interceptor for Station {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(method) = request.extensions().get::<GrpcMethod<'static>>() {
            let label = format!("/{}/{}", method.service(), method.method());
            self.methods.lock().unwrap_or_else(PoisonError::into_inner).push(label);
        }
        if let Some(token) = self.token {
            request.metadata_mut().insert("authorization", MetadataValue::from_static(token));
        }
        Ok(request)
    }
}

async fn channel(addr: SocketAddr) -> Result<Channel, Box<dyn Error>> {
    let endpoint =
        Endpoint::from_shared(format!("http://{addr}"))?.connect_timeout(TIMEOUT).timeout(TIMEOUT);
    Ok(endpoint.connect().await?)
}

/// What the scenarios need from a generated client, whichever package it speaks.
/// (Named apart from the generated methods, which these call.)
trait WorkerClient {
    async fn register(&mut self, id: &str) -> Result<(), Status>;
    async fn fetch_job(&mut self, id: &str) -> Result<Job, Status>;
    async fn report_done(&mut self, done: Done) -> Result<(), Status>;
}

/// Implements [`WorkerClient`] for one package's generated client.
macro_rules! worker_client {
    ($package:ident) => {
        impl WorkerClient
            for $package::worker_service_client::WorkerServiceClient<
                InterceptedService<Channel, Station>,
            >
        {
            async fn register(&mut self, id: &str) -> Result<(), Status> {
                self.register_worker($package::Worker { id: id.into() }).await.map(|_| ())
            }

            async fn fetch_job(&mut self, id: &str) -> Result<Job, Status> {
                let job = self.get_job($package::Worker { id: id.into() }).await?.into_inner();
                Ok(Job {
                    id: job.job_id,
                    first_name: job.first_name,
                    last_name: job.last_name,
                    email: job.email,
                })
            }

            async fn report_done(&mut self, done: Done) -> Result<(), Status> {
                let status = $package::JobStatus {
                    id: done.worker,
                    job_id: done.job_id,
                    success: done.success,
                    public_key: done.public_key,
                    ssh_key: done.ssh_key,
                    yubikey_serial: done.serial,
                    error: done.error,
                };
                self.set_job_done(status).await.map(|_| ())
            }
        }
    };
}

worker_client!(v1);
worker_client!(legacy);

fn v1_client(
    channel: &Channel,
    station: &Station,
) -> v1::worker_service_client::WorkerServiceClient<InterceptedService<Channel, Station>> {
    v1::worker_service_client::WorkerServiceClient::with_interceptor(
        channel.clone(),
        station.clone(),
    )
}

fn legacy_client(
    channel: &Channel,
    station: &Station,
) -> legacy::worker_service_client::WorkerServiceClient<InterceptedService<Channel, Station>> {
    legacy::worker_service_client::WorkerServiceClient::with_interceptor(
        channel.clone(),
        station.clone(),
    )
}

fn authorized() -> Station {
    Station { token: Some(TOKEN), ..Station::default() }
}

fn code<T>(result: Result<T, Status>) -> Code {
    result.err().map_or(Code::Ok, |status| status.code())
}

// ---------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------

/// The defguard behaviour, through one package. Leaves the queue empty.
async fn job_lifecycle(client: &mut impl WorkerClient, core: &Core, worker: &str) -> TestResult {
    client.register(worker).await?;
    assert_eq!(code(client.register(worker).await), Code::AlreadyExists, "{worker}");

    assert_eq!(code(client.fetch_job(worker).await), Code::NotFound, "{worker}");

    let first = core.enqueue("Ada", "Lovelace", "ada@example.com");
    let second = core.enqueue("Alan", "Turing", "alan@example.com");
    let job = client.fetch_job(worker).await?;
    assert_eq!(
        job,
        Job {
            id: first,
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            email: "ada@example.com".into(),
        }
    );
    // Not done yet, so the same job again.
    assert_eq!(client.fetch_job(worker).await?.id, first);

    let done = Done {
        worker: worker.into(),
        job_id: first,
        success: true,
        public_key: "-----BEGIN PGP PUBLIC KEY BLOCK-----".into(),
        ssh_key: "ssh-ed25519 AAAA".into(),
        serial: "12345678".into(),
        error: String::new(),
    };
    client.report_done(done.clone()).await?;
    assert_eq!(core.state().done.last(), Some(&done), "every JobStatus field arrives");

    assert_eq!(client.fetch_job(worker).await?.id, second);
    let failed = Done {
        worker: worker.into(),
        job_id: second,
        error: "no card detected".into(),
        ..Done::default()
    };
    client.report_done(failed.clone()).await?;
    assert_eq!(core.state().done.last(), Some(&failed));

    assert_eq!(code(client.fetch_job(worker).await), Code::NotFound, "{worker}");
    Ok(())
}

#[tokio::test]
async fn both_packages_behave_like_defguard_core() -> TestResult {
    let (core, addr) = start_core().await?;
    let channel = channel(addr).await?;
    let station = authorized();

    job_lifecycle(&mut v1_client(&channel, &station), &core, "station-v1").await?;
    job_lifecycle(&mut legacy_client(&channel, &station), &core, "station-legacy").await?;

    // One core behind both packages: a worker registered through one is known to the other.
    assert_eq!(
        code(legacy_client(&channel, &station).register("station-v1").await),
        Code::AlreadyExists
    );
    Ok(())
}

#[tokio::test]
async fn wire_paths_carry_the_package_name() -> TestResult {
    assert_eq!(v1::worker_service_server::SERVICE_NAME, "defguard.worker.v1.WorkerService");
    assert_eq!(legacy::worker_service_server::SERVICE_NAME, "worker.WorkerService");

    let (core, addr) = start_core().await?;
    let channel = channel(addr).await?;
    let station = authorized();
    core.enqueue("Grace", "Hopper", "grace@example.com");

    v1_client(&channel, &station).fetch_job("station").await?;
    legacy_client(&channel, &station).fetch_job("station").await?;
    v1_client(&channel, &station).register("station").await?;
    legacy_client(&channel, &station).report_done(Done::default()).await?;

    let expected = [
        "/defguard.worker.v1.WorkerService/GetJob",
        "/worker.WorkerService/GetJob",
        "/defguard.worker.v1.WorkerService/RegisterWorker",
        "/worker.WorkerService/SetJobDone",
    ];
    // What the server saw on the wire...
    assert_eq!(core.state().paths, expected);
    // ...and what the generated clients say they call.
    let methods = station.methods.lock().unwrap_or_else(PoisonError::into_inner).clone();
    assert_eq!(methods, expected);
    Ok(())
}

#[tokio::test]
async fn missing_or_wrong_token_is_unauthenticated() -> TestResult {
    let (core, addr) = start_core().await?;
    let channel = channel(addr).await?;
    core.enqueue("Ada", "Lovelace", "ada@example.com");

    let no_token = Station::default();
    let wrong_token = Station { token: Some("not-the-token"), ..Station::default() };
    for station in [&no_token, &wrong_token] {
        let mut v1 = v1_client(&channel, station);
        let mut legacy = legacy_client(&channel, station);
        assert_eq!(code(v1.register("intruder").await), Code::Unauthenticated);
        assert_eq!(code(legacy.register("intruder").await), Code::Unauthenticated);
        assert_eq!(code(v1.fetch_job("intruder").await), Code::Unauthenticated);
        assert_eq!(code(legacy.fetch_job("intruder").await), Code::Unauthenticated);
        assert_eq!(code(v1.report_done(Done::default()).await), Code::Unauthenticated);
        assert_eq!(code(legacy.report_done(Done::default()).await), Code::Unauthenticated);
    }

    // Nothing got through: the id is still free and the job still queued.
    let station = authorized();
    v1_client(&channel, &station).register("intruder").await?;
    assert_eq!(core.state().jobs.len(), 1);
    assert!(core.state().done.is_empty());
    assert_eq!(core.state().paths.len(), 13);
    Ok(())
}
