//! keystation-station: the headless station (`keystation station`), which takes
//! provisioning jobs from defguard over its worker protocol, runs each through a
//! [`JobRunner`] and reports the results.
//!
//! Without the `client` feature the crate is the station's vocabulary only — the job types,
//! [`JobRunner`], [`Token`], [`GrpcPackage`], [`StationSettings`] — which configuration reads
//! in every build; `client` adds the gRPC client (tonic, prost) and the runner.
//!
//! # Protocol
//!
//! defguard core serves `WorkerService` under `defguard.worker.v1` and, for older cores,
//! `worker` ([`crate::proto`]); `grpc_package` picks one. Every call carries the token in the
//! `authorization` metadata. The station:
//!
//! 1. calls `RegisterWorker` with its id (ALREADY_EXISTS is fine: the core remembers ids);
//! 2. calls `GetJob` every `poll_interval` (defguard shows a station as connected only if
//!    it polled within the last 2 s); NOT_FOUND means no job;
//! 3. checks the job's fields ([`job::validate`]) and runs it through the [`JobRunner`]
//!    implementation on a blocking thread, still polling `GetJob` meanwhile so that
//!    defguard keeps showing the station as connected (the answer, the same queued job, is
//!    ignored);
//! 4. reports the outcome with `SetJobDone` and goes back to 2.
//!
//! # Failures
//!
//! - **defguard unreachable** (at start, or restarted): one warning per outage, then
//!   retries with exponential backoff and jitter (first retry within 200 ms, at most
//!   `max_backoff`, 30 s by default); `RegisterWorker` again once it answers; an info line
//!   when it is back.
//! - **A result that cannot be delivered** stays in memory and is sent again until defguard
//!   takes it; the station asks for no new job meanwhile, so a job is never run twice. If
//!   defguard answers the report with an error other than an outage (e.g. the job is gone
//!   after a core restart), the report is dropped with an error line; should defguard then
//!   offer the very same job again, the station sends the stored result again instead of
//!   running the job a second time (until it sees the queue empty).
//! - **A core restart the station does not notice** (between two polls) is covered by
//!   registering again every `register_interval` (30 s).
//! - **UNAUTHENTICATED / PERMISSION_DENIED** (wrong token) and **UNIMPLEMENTED** (wrong
//!   `grpc_package`) are configuration errors: the station says so and exits with status 2
//!   instead of retrying forever. A supervisor (systemd `Restart=on-failure`) brings it back
//!   once the configuration is fixed.
//! - A job whose fields are unusable is reported as failed without calling [`JobRunner`]. A
//!   `GetJob` answer that cannot be decoded at all (a `string` field that is not UTF-8:
//!   prost refuses it, and tonic turns that into INTERNAL) carries no usable job id, so it
//!   cannot be reported; it is handled like an outage (warned once, retried with backoff).
//!
//! # Shutdown
//!
//! SIGTERM or SIGINT stops polling. A running job gets its [`AbortSignal`] and up to
//! `shutdown_grace` to finish; its outcome (success, or "aborted by station shutdown") is
//! reported within the same bound, and the station exits with status 0.
//!
//! # The station dying mid-job
//!
//! The release build aborts on a panic (`panic = "abort"`), and a station can also be
//! killed or lose power. The job then stays queued in defguard and is offered again when
//! systemd restarts the station; it is run again, at most [`journal::MAX_STARTS`] times in
//! all, and then reported as failed (see [`journal`]; needs `state_dir`, which the systemd
//! unit provides as `StateDirectory=`).
//!
//! # Secrets
//!
//! The token is only ever put into the request metadata, marked sensitive; it is never
//! logged (the transport crates' own logs are capped at `info` by the binary's logging setup).

pub mod job;
#[cfg(feature = "client")]
pub mod proto;
mod token;

#[cfg(feature = "client")]
mod backoff;
#[cfg(feature = "client")]
mod client;
#[cfg(feature = "client")]
mod journal;
#[cfg(feature = "client")]
mod runner;

use std::path::PathBuf;
use std::time::Duration;

pub use keystation_cards::CardSelection;

pub use self::job::{AbortSignal, JobError, JobReport, JobRequest, JobRunner, RefuseJobs};
#[cfg(feature = "client")]
pub use self::runner::{run, run_until_signalled};
pub use self::token::{REDACTED, Token};

/// What the station needs to know; the timing fields have defaults suited to production
/// and can be shortened for tests.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StationSettings {
    /// The id the station registers with.
    pub id: String,
    /// defguard's gRPC URL.
    pub grpc_url: String,
    /// CA certificate (PEM) to verify defguard with; also turns `http://` into `https://`.
    pub grpc_ca: Option<PathBuf>,
    /// The authorization token.
    pub token: Option<Token>,
    /// File to read the token from when [`token`](Self::token) is `None` (a systemd
    /// credential, say); read once, when the station starts.
    pub token_file: Option<PathBuf>,
    /// Whether the token may go over plain `http://` to a host that is not loopback.
    pub allow_plaintext: bool,
    /// Where the station notes the job it runs ([`journal`]); `None`: no notes.
    pub state_dir: Option<PathBuf>,
    /// The protobuf package to speak.
    pub package: GrpcPackage,
    /// Time between two `GetJob` calls.
    pub poll_interval: Duration,
    /// The card each job is for; passed to the [`JobRunner`] in each [`JobRequest`].
    pub card: CardSelection,
    /// Deadline of each call to defguard.
    pub request_timeout: Duration,
    /// Longest wait between two attempts to reach defguard.
    pub max_backoff: Duration,
    /// How long a shutdown waits for a running job, and then for its report.
    pub shutdown_grace: Duration,
    /// How often the station registers again although no call failed: a core that
    /// restarted between two polls has forgotten the station without the station noticing.
    /// `RegisterWorker` is idempotent (ALREADY_EXISTS), so this costs one small call.
    pub register_interval: Duration,
}

/// Default for [`StationSettings::request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default for [`StationSettings::max_backoff`].
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Default for [`StationSettings::register_interval`].
pub const DEFAULT_REGISTER_INTERVAL: Duration = Duration::from_secs(30);
/// Default for [`StationSettings::shutdown_grace`]: enough for a card to finish generating
/// a key, short of systemd's 90 s stop timeout.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(60);

impl StationSettings {
    /// Settings for the station `id` at `grpc_url`, with the default timings and nothing
    /// else configured; the binary fills the rest from its configuration.
    pub fn new(id: String, grpc_url: String) -> Self {
        Self {
            id,
            grpc_url,
            grpc_ca: None,
            token: None,
            token_file: None,
            allow_plaintext: false,
            state_dir: None,
            package: GrpcPackage::default(),
            poll_interval: DEFAULT_POLL_INTERVAL,
            card: CardSelection::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_backoff: DEFAULT_MAX_BACKOFF,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            register_interval: DEFAULT_REGISTER_INTERVAL,
        }
    }
}

/// The protobuf package of defguard's worker service (`--grpc-package`): the same
/// `WorkerService` is served under two names (see the `proto` module).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum GrpcPackage {
    /// `defguard.worker.v1`, current defguard core.
    #[default]
    DefguardWorkerV1,
    /// `worker`, older cores.
    Worker,
}

impl GrpcPackage {
    /// Both packages.
    pub const ALL: [Self; 2] = [Self::DefguardWorkerV1, Self::Worker];

    /// The package name, as configured: `defguard.worker.v1` or `worker`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::DefguardWorkerV1 => "defguard.worker.v1",
            Self::Worker => "worker",
        }
    }
}

impl core::fmt::Display for GrpcPackage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// How often the station polls defguard for a job unless configured otherwise. defguard
/// shows a station as connected only if it polled within the last 2 s.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Why the station stopped with an error. None of them is retried: each needs an operator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StationError {
    /// No token is configured.
    #[error(
        "no authorization token: set DEFGUARD_TOKEN (or KEYSTATION_TOKEN, or token in the \
         config file) to the token on defguard's Provisioners page"
    )]
    NoToken,
    /// The token cannot travel in gRPC metadata.
    #[error("the authorization token must be printable ASCII")]
    TokenNotAscii,
    /// The token file cannot be read.
    #[error("cannot read the token file {} (token_file): {reason}", path.display())]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The token would cross the network unencrypted.
    #[error(
        "refusing to send the authorization token over plain http:// to {host}, which is not \
         this machine: use https:// (with --ca-file for a private CA), or set \
         grpc_allow_plaintext = true (--grpc-allow-plaintext true) if the network between \
         them is trusted"
    )]
    Plaintext {
        /// The host in the URL.
        host: String,
    },
    /// The state directory cannot hold the station's notes.
    #[error("cannot use the state directory {} (state_dir): {reason}", path.display())]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// defguard refused the token.
    #[error(
        "defguard rejected the authorization token ({detail}): check DEFGUARD_TOKEN against \
         the token on defguard's Provisioners page"
    )]
    Rejected {
        /// The gRPC code and defguard's message.
        detail: String,
    },
    /// defguard does not serve the configured package.
    #[error(
        "defguard at {url} does not serve package {package} ({detail}): set grpc_package \
         (--grpc-package, KEYSTATION_GRPC_PACKAGE) to {other}"
    )]
    PackageNotServed {
        /// The URL the station used.
        url: String,
        /// The configured package.
        package: GrpcPackage,
        /// The other package, which is probably right.
        other: GrpcPackage,
        /// The gRPC code and message.
        detail: String,
    },
    /// The gRPC URL cannot be used.
    #[error("cannot use gRPC URL {url}: {detail}")]
    Endpoint {
        /// The URL.
        url: String,
        /// Why.
        detail: String,
    },
    /// The CA file cannot be used.
    #[error("cannot use the gRPC CA file {} (grpc_ca): {reason}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// TLS cannot be set up with the given CA.
    #[error("cannot set up TLS for defguard: {detail}")]
    Tls {
        /// Why.
        detail: String,
    },
    /// The async runtime or the signal handlers could not be started.
    #[error("cannot start the station: {0}")]
    Runtime(#[source] std::io::Error),
}

impl StationError {
    /// Whether the error is a configuration problem (exit status 2) rather than a failure
    /// of the station itself (status 1).
    pub fn is_configuration(&self) -> bool {
        !matches!(self, Self::Runtime(_))
    }
}
