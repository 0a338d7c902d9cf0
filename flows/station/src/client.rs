//! The station's side of defguard's worker protocol: one client for whichever protobuf
//! package is configured, with the token on every call and TLS when the URL is https.

use std::path::Path;
use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

use super::{StationError, StationSettings};
use crate::proto::{defguard_worker_v1 as v1, worker as legacy};
use crate::{GrpcPackage, Token};

/// How long to wait for a TCP (and TLS) connection to defguard.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A job as `GetJob` returned it, before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawJob {
    pub(crate) job_id: u32,
    pub(crate) first_name: String,
    pub(crate) last_name: String,
    pub(crate) email: String,
}

/// The outcome of a job as `SetJobDone` sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) job_id: u32,
    pub(crate) success: bool,
    pub(crate) public_key: String,
    pub(crate) ssh_key: String,
    pub(crate) serial: String,
    pub(crate) error: String,
}

/// Puts the token into the `authorization` metadata of every request, marked sensitive so
/// that the HTTP/2 layer neither logs nor indexes it (RFC 7541 §7.1.3).
#[derive(Clone)]
pub(crate) struct Authorization(MetadataValue<Ascii>);

impl Interceptor for Authorization {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Transport = InterceptedService<Channel, Authorization>;

/// A `WorkerService` client for one of the two package names.
#[derive(Clone)]
pub(crate) enum WorkerClient {
    V1(v1::worker_service_client::WorkerServiceClient<Transport>),
    Legacy(legacy::worker_service_client::WorkerServiceClient<Transport>),
}

/// Runs `$body` with `$client` bound to the generated client and `$p` to its package's
/// module, for either package.
macro_rules! per_package {
    ($self:expr, |$client:ident, $p:ident| $body:expr) => {
        match $self {
            WorkerClient::V1($client) => {
                use v1 as $p;
                $body
            }
            WorkerClient::Legacy($client) => {
                use legacy as $p;
                $body
            }
        }
    };
}

impl WorkerClient {
    /// `RegisterWorker`. ALREADY_EXISTS counts as success.
    pub(crate) async fn register(&mut self, id: &str) -> Result<Registered, Status> {
        let result = per_package!(self, |client, p| {
            client.register_worker(p::Worker { id: id.to_owned() }).await.map(drop)
        });
        match result {
            Ok(()) => Ok(Registered::New),
            Err(status) if status.code() == Code::AlreadyExists => Ok(Registered::Known),
            Err(status) => Err(status),
        }
    }

    /// `GetJob`: the oldest queued job, or `None` (NOT_FOUND) when there is none.
    pub(crate) async fn get_job(&mut self, id: &str) -> Result<Option<RawJob>, Status> {
        let result = per_package!(self, |client, p| {
            client.get_job(p::Worker { id: id.to_owned() }).await.map(|response| {
                let job = response.into_inner();
                RawJob {
                    job_id: job.job_id,
                    first_name: job.first_name,
                    last_name: job.last_name,
                    email: job.email,
                }
            })
        });
        match result {
            Ok(job) => Ok(Some(job)),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(status),
        }
    }

    /// `SetJobDone` for `outcome`, from worker `id`.
    pub(crate) async fn set_job_done(&mut self, id: &str, outcome: &Outcome) -> Result<(), Status> {
        per_package!(self, |client, p| {
            let status = p::JobStatus {
                id: id.to_owned(),
                job_id: outcome.job_id,
                success: outcome.success,
                public_key: outcome.public_key.clone(),
                ssh_key: outcome.ssh_key.clone(),
                yubikey_serial: outcome.serial.clone(),
                error: outcome.error.clone(),
            };
            client.set_job_done(status).await.map(drop)
        })
    }
}

/// What `RegisterWorker` answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Registered {
    /// The core did not know the id before.
    New,
    /// ALREADY_EXISTS: the core knew the id (e.g. the station restarted).
    Known,
}

/// The URL the station connects to: `grpc_url`, upgraded from `http://` to `https://` when a
/// CA file is configured (as defguard's provisioner does: "you don't need to change http in
/// endpoint if [the CA file] is present").
pub(crate) fn effective_url(settings: &StationSettings) -> String {
    let url = &settings.grpc_url;
    match (&settings.grpc_ca, url.get(..7)) {
        (Some(_), Some(scheme)) if scheme.eq_ignore_ascii_case("http://") => {
            format!("https://{}", &url[7..])
        }
        _ => url.clone(),
    }
}

/// Builds the client. Nothing is sent yet: the channel connects on the first call and
/// reconnects by itself after the connection drops.
pub(crate) fn connect(settings: &StationSettings, url: &str) -> Result<WorkerClient, StationError> {
    refuse_plaintext(url, settings.allow_plaintext)?;
    let token = match (&settings.token, &settings.token_file) {
        (Some(token), _) => token.clone(),
        (None, Some(path)) => read_token_file(path)?,
        (None, None) => return Err(StationError::NoToken),
    };
    let mut value =
        MetadataValue::try_from(token.expose()).map_err(|_| StationError::TokenNotAscii)?;
    value.set_sensitive(true);
    let authorization = Authorization(value);

    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|error| StationError::Endpoint { url: url.to_owned(), detail: error.to_string() })?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(settings.request_timeout)
        .tcp_nodelay(true);
    let endpoint = if url.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://")) {
        let tls = match &settings.grpc_ca {
            Some(path) => ClientTlsConfig::new().ca_certificate(read_ca(path)?),
            None => ClientTlsConfig::new().with_webpki_roots(),
        };
        endpoint.tls_config(tls).map_err(|error| StationError::Tls { detail: chain(&error) })?
    } else {
        endpoint
    };
    let channel = endpoint.connect_lazy();
    Ok(match settings.package {
        GrpcPackage::DefguardWorkerV1 => {
            WorkerClient::V1(v1::worker_service_client::WorkerServiceClient::with_interceptor(
                channel,
                authorization,
            ))
        }
        GrpcPackage::Worker => WorkerClient::Legacy(
            legacy::worker_service_client::WorkerServiceClient::with_interceptor(
                channel,
                authorization,
            ),
        ),
    })
}

/// The largest token file read: far above any real token, small enough that a wrong path
/// (a disk image, `/dev/zero`) fails at once.
const MAX_TOKEN_FILE_BYTES: u64 = 64 * 1024;

/// The token in `path` (one line; surrounding whitespace ignored), as systemd's
/// `LoadCredential=` or a secrets mount provides it.
fn read_token_file(path: &Path) -> Result<Token, StationError> {
    let fail = |reason: String| StationError::TokenFile { path: path.to_owned(), reason };
    let bytes = std::fs::File::open(path)
        .and_then(|file| keystation_core::secret::read_capped(file, MAX_TOKEN_FILE_BYTES))
        .map_err(|error| fail(error.to_string()))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| fail("not UTF-8 text".to_owned()))?.trim();
    if text.is_empty() {
        return Err(fail("the file is empty".to_owned()));
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(fail("more than one line, or control characters".to_owned()));
    }
    Ok(Token::new(text.to_owned()))
}

/// Refuses `http://` to a host other than loopback unless `allowed`: the token would cross
/// the network readable by anyone on the path.
fn refuse_plaintext(url: &str, allowed: bool) -> Result<(), StationError> {
    let Some(rest) = url.get(..7).filter(|s| s.eq_ignore_ascii_case("http://")).map(|_| &url[7..])
    else {
        return Ok(());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(host, _)| host),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback {
        return Ok(());
    }
    if allowed {
        tracing::warn!(
            "sending the authorization token over plain http:// to {host} \
             (grpc_allow_plaintext = true)"
        );
        return Ok(());
    }
    Err(StationError::Plaintext { host: host.to_owned() })
}

/// The CA file: readable, and PEM with at least one certificate (rustls would otherwise
/// skip what it cannot parse and fail only at the first handshake).
fn read_ca(path: &Path) -> Result<Certificate, StationError> {
    let pem = std::fs::File::open(path)
        .and_then(|file| keystation_core::secret::read_capped(file, 1024 * 1024))
        .map_err(|error| StationError::CaFile {
            path: path.to_owned(),
            reason: error.to_string(),
        })?;
    let marker: &[u8] = b"-----BEGIN CERTIFICATE-----";
    if !pem.windows(marker.len()).any(|w| w == marker) {
        return Err(StationError::CaFile {
            path: path.to_owned(),
            reason: "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".to_owned(),
        });
    }
    Ok(Certificate::from_pem(pem.as_slice()))
}

/// An error and its sources, `: `-separated, without repeating a part already said (tonic's
/// transport errors say little at the top: "transport error").
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = String::new();
    append_sources(&mut text, Some(error));
    text
}

/// A status for a log line: code, message and, for transport failures, the cause.
pub(crate) fn describe(status: &Status) -> String {
    let mut text = format!("{:?}", status.code());
    append(&mut text, status.message());
    append_sources(&mut text, std::error::Error::source(status));
    text
}

fn append_sources(text: &mut String, mut source: Option<&dyn std::error::Error>) {
    while let Some(cause) = source {
        append(text, &cause.to_string());
        source = cause.source();
    }
}

fn append(text: &mut String, part: &str) {
    if !part.is_empty() && !text.contains(part) {
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(part);
    }
}
