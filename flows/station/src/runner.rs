//! The station's loop: register, poll, run a job, report; reconnect and shut down.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tonic::{Code, Status};

use super::backoff::Backoff;
use super::client::{self, Outcome, RawJob, Registered, WorkerClient};
use super::job::{self, AbortSignal, JobRequest, JobRunner};
use super::journal;
use super::{StationError, StationSettings};
use crate::GrpcPackage;

/// The message a job gets when the station stops while it runs.
const ABORTED: &str = "aborted by station shutdown";

/// How defguard's answer to a call is handled.
enum Trouble {
    /// Stop the station: the configuration is wrong.
    Fatal(StationError),
    /// defguard is unreachable or misbehaving: back off and retry.
    Outage(String),
}

/// Runs the station until `shutdown` completes, then finishes (or aborts) the running job,
/// reports it, and returns `Ok(())`. Returns an error only for what retrying cannot fix
/// (see [`StationError`]). Needs a tokio runtime with time and I/O enabled.
pub async fn run<F>(
    settings: StationSettings,
    jobs: Arc<dyn JobRunner>,
    shutdown: F,
) -> Result<(), StationError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let url = client::effective_url(&settings);
    if url != settings.grpc_url {
        tracing::info!(
            "a CA file is configured: connecting to {url} with TLS instead of {}",
            settings.grpc_url
        );
    }
    let client = client::connect(&settings, &url)?;
    let journal = match &settings.state_dir {
        Some(dir) => Some(journal::Journal::open(dir).map_err(|error| StationError::StateDir {
            path: dir.clone(),
            reason: error.to_string(),
        })?),
        None => {
            tracing::info!(
                "no state_dir (nor systemd's STATE_DIRECTORY): a job during which the station \
                 dies will be offered and run again without limit"
            );
            None
        }
    };
    let (notify, stop) = watch::channel(false);
    let watcher = tokio::spawn(async move {
        shutdown.await;
        let _ = notify.send(true);
    });
    tracing::info!(
        "station {} starting: defguard at {url}, package {}, polling every {:?}",
        settings.id,
        settings.package,
        settings.poll_interval
    );
    if settings.poll_interval > Duration::from_secs(2) {
        tracing::warn!(
            "poll_interval {:?} is longer than 2 s: defguard shows this station as \
             disconnected between polls",
            settings.poll_interval
        );
    }
    let mut station = Station {
        backoff: Backoff::new(settings.max_backoff),
        settings,
        url,
        client,
        jobs,
        stop: Stop(stop),
        registered: false,
        registered_at: None,
        outage: None,
        shutdown_deadline: None,
        last_job: None,
        journal,
    };
    let result = station.serve().await;
    watcher.abort();
    if result.is_ok() {
        tracing::info!("station stopped");
    }
    result
}

/// [`run`] on its own single-threaded runtime until SIGTERM or SIGINT (Ctrl-C).
pub fn run_until_signalled(
    settings: StationSettings,
    jobs: Arc<dyn JobRunner>,
) -> Result<(), StationError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(StationError::Runtime)?;
    let result = runtime.block_on(async {
        let signals = signals().map_err(StationError::Runtime)?;
        run(settings, jobs, signals).await
    });
    // A job that ignored its abort signal past the grace period may still hold a blocking
    // thread; the process exits without waiting for it.
    runtime.shutdown_background();
    result
}

/// A future that completes at the first SIGTERM or SIGINT. The handlers are installed
/// before it returns, so no signal is missed while the station starts.
#[cfg(unix)]
fn signals() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::info!("{name} received: stopping");
    })
}

#[cfg(not(unix))]
fn signals() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("Ctrl-C received: stopping");
    })
}

/// The shutdown request, as a flag that can be awaited any number of times.
struct Stop(watch::Receiver<bool>);

impl Stop {
    fn requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes once shutdown is requested (at once if it already was).
    async fn wait(&mut self) {
        if self.0.wait_for(|stop| *stop).await.is_err() {
            // The sender is gone without a request: never complete.
            std::future::pending::<()>().await;
        }
    }
}

/// A continuing outage: when it began and how many attempts failed.
struct Outage {
    since: Instant,
    failures: u32,
}

struct Station {
    settings: StationSettings,
    url: String,
    client: WorkerClient,
    jobs: Arc<dyn JobRunner>,
    stop: Stop,
    backoff: Backoff,
    /// Whether `RegisterWorker` succeeded since the last outage.
    registered: bool,
    /// When `RegisterWorker` last succeeded.
    registered_at: Option<Instant>,
    outage: Option<Outage>,
    /// Set when shutdown is first seen with a job or report in flight.
    shutdown_deadline: Option<Instant>,
    /// The last job run and its outcome, until defguard's queue is seen empty: a job that
    /// comes back identical is reported again, not run again.
    last_job: Option<(RawJob, Outcome)>,
    /// The note of the running job, when there is a state directory.
    journal: Option<journal::Journal>,
}

impl Station {
    async fn serve(&mut self) -> Result<(), StationError> {
        loop {
            if self.stop.requested() {
                return Ok(());
            }
            let every = self.settings.register_interval;
            let due = self.registered_at.is_none_or(|at| at.elapsed() >= every);
            if (!self.registered || due) && !self.register().await? {
                continue;
            }
            let id = self.settings.id.clone();
            let answer = tokio::select! {
                answer = self.client.get_job(&id) => answer,
                () = self.stop.wait() => return Ok(()),
            };
            match answer {
                Ok(Some(job)) => {
                    self.reachable();
                    if let Some((_, outcome)) = self.last_job.as_ref().filter(|(j, _)| *j == job) {
                        // defguard kept the job although the station reported it (it refused
                        // the report, or lost it): report again, never run it twice.
                        let outcome = outcome.clone();
                        tracing::warn!(
                            "defguard offers job {} again after its result was sent; sending \
                             the result again instead of running the job twice",
                            job.job_id
                        );
                        self.deliver(outcome).await?;
                        self.pause_after_failure().await;
                        continue;
                    }
                    let outcome = self.run_job(job.clone()).await;
                    self.last_job = Some((job, outcome.clone()));
                    self.deliver(outcome).await?;
                    if let Some(Err(error)) = self.journal.as_ref().map(journal::Journal::finish) {
                        tracing::warn!("cannot clear the note of the finished job: {error}");
                    }
                    // Ask again at once: defguard may have queued more.
                    continue;
                }
                Ok(None) => {
                    self.reachable();
                    self.last_job = None;
                    tracing::trace!("no job");
                }
                Err(status) => {
                    self.trouble("GetJob", &status)?;
                    self.pause_after_failure().await;
                    continue;
                }
            }
            tokio::select! {
                () = tokio::time::sleep(self.settings.poll_interval) => {}
                () = self.stop.wait() => return Ok(()),
            }
        }
    }

    /// `RegisterWorker`; `Ok(false)` after a failure that is worth retrying (the pause is
    /// already taken) or when shutdown was requested meanwhile.
    async fn register(&mut self) -> Result<bool, StationError> {
        let id = self.settings.id.clone();
        let answer = tokio::select! {
            answer = self.client.register(&id) => answer,
            () = self.stop.wait() => return Ok(false),
        };
        match answer {
            Ok(registered) => {
                self.reachable();
                let first = self.registered_at.is_none();
                let again = self.registered;
                self.registered = true;
                self.registered_at = Some(Instant::now());
                match registered {
                    Registered::New if again => tracing::info!(
                        "registered with defguard as {id} again (the core had forgotten it)"
                    ),
                    Registered::New => tracing::info!("registered with defguard as {id}"),
                    Registered::Known if first || !again => {
                        tracing::info!("registered with defguard as {id} (id already known)");
                    }
                    Registered::Known => tracing::debug!("still registered as {id}"),
                }
                Ok(true)
            }
            Err(status) => {
                self.trouble("RegisterWorker", &status)?;
                self.pause_after_failure().await;
                Ok(false)
            }
        }
    }

    /// Classifies a failed call: returns the fatal error, or records the outage (warning
    /// once) and marks the station for re-registration.
    fn trouble(&mut self, call: &str, status: &Status) -> Result<(), StationError> {
        match classify(status, &self.url, self.settings.package) {
            Trouble::Fatal(error) => {
                tracing::error!("{call}: {error}");
                Err(error)
            }
            Trouble::Outage(detail) => {
                self.registered = false;
                match &mut self.outage {
                    None => {
                        tracing::warn!(
                            "no usable answer from defguard at {} ({call}: {detail}); \
                             retrying with backoff",
                            self.url
                        );
                        self.outage = Some(Outage { since: Instant::now(), failures: 1 });
                    }
                    Some(outage) => {
                        outage.failures += 1;
                        tracing::debug!(
                            "defguard still unreachable (attempt {}; {call}: {detail})",
                            outage.failures
                        );
                    }
                }
                Ok(())
            }
        }
    }

    /// A call succeeded: end the outage, if any.
    fn reachable(&mut self) {
        self.backoff.reset();
        if let Some(outage) = self.outage.take() {
            tracing::info!(
                "defguard reachable again after {:.1} s ({} failed attempts)",
                outage.since.elapsed().as_secs_f64(),
                outage.failures
            );
        }
    }

    /// Waits out the next backoff delay, or until shutdown.
    async fn pause_after_failure(&mut self) {
        let delay = self.backoff.next_delay();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = self.stop.wait() => {}
        }
    }

    /// Checks and runs one job; never fails (a failed job is an outcome to report).
    async fn run_job(&mut self, raw: RawJob) -> Outcome {
        let job_id = raw.job_id;
        tracing::info!("job {job_id} received for {}", raw.email.escape_debug());
        let request = JobRequest::new(
            job_id,
            raw.first_name,
            raw.last_name,
            raw.email,
            self.settings.card.clone(),
        );
        if let Err(error) = job::validate(&request) {
            tracing::warn!("job {job_id} refused: {error}");
            return failed(job_id, error.message());
        }

        if let Some(journal) = &self.journal {
            match journal.start(job_id) {
                Ok(journal::Start::Run(1)) => {}
                Ok(journal::Start::Run(n)) => tracing::warn!(
                    "job {job_id} was started {} time(s) before and the station stopped during \
                     it; running it again (attempt {n} of {})",
                    n - 1,
                    journal::MAX_STARTS
                ),
                Ok(journal::Start::GiveUp) => {
                    tracing::error!(
                        "job {job_id}: the station stopped during each of its {} attempts; \
                         reporting it as failed instead of running it again",
                        journal::MAX_STARTS
                    );
                    return failed(
                        job_id,
                        &format!(
                            "the station stopped during each of {} attempts at this job (a \
                             crash, the out-of-memory killer or a power cut); it is not run \
                             again: see the station's log",
                            journal::MAX_STARTS
                        ),
                    );
                }
                Err(error) => tracing::warn!("cannot note job {job_id}: {error}; running it"),
            }
        }
        let abort = AbortSignal::new();
        let mut work = {
            let jobs = Arc::clone(&self.jobs);
            let abort = abort.clone();
            tokio::task::spawn_blocking(move || jobs.run_job(&request, &abort))
        };
        let heartbeat = self.heartbeat();
        let mut aborting = false;
        let finished = loop {
            let deadline = self.shutdown_deadline.unwrap_or_else(Instant::now);
            tokio::select! {
                finished = &mut work => break Some(finished),
                () = self.stop.wait(), if !aborting => {
                    tracing::info!("stopping: aborting job {job_id}");
                    abort.abort();
                    aborting = true;
                    self.shutdown_deadline =
                        Some(Instant::now() + self.settings.shutdown_grace);
                }
                () = tokio::time::sleep_until(deadline.into()), if aborting => break None,
            }
        };
        heartbeat.abort();
        match finished {
            Some(Ok(Ok(report))) => {
                match report.pins {
                    Some(pins) => tracing::info!(
                        "job {job_id} done: card serial {}; {pins}",
                        report.serial.escape_debug()
                    ),
                    None => tracing::info!(
                        "job {job_id} done: card serial {}",
                        report.serial.escape_debug()
                    ),
                }
                Outcome {
                    job_id,
                    success: true,
                    public_key: report.public_key,
                    ssh_key: report.ssh_key,
                    serial: report.serial,
                    error: String::new(),
                }
            }
            Some(Ok(Err(error))) if aborting => {
                tracing::warn!("job {job_id} aborted: {error}");
                failed(job_id, ABORTED)
            }
            Some(Ok(Err(error))) => {
                tracing::warn!("job {job_id} failed: {error}");
                failed(job_id, error.message())
            }
            // Only in builds that unwind (tests): the release build aborts on a panic, and
            // the journal bounds how often the restarted station takes the job again.
            Some(Err(join_error)) => {
                tracing::error!("job {job_id}: provisioning crashed: {join_error}");
                failed(job_id, "internal error in the station (provisioning crashed)")
            }
            None => {
                tracing::error!(
                    "job {job_id} did not stop within {:?} of the shutdown request",
                    self.settings.shutdown_grace
                );
                failed(job_id, ABORTED)
            }
        }
    }

    /// Keeps polling `GetJob` while a job runs, so that defguard goes on showing the station
    /// as connected; the answers (the job itself, still queued) are ignored.
    fn heartbeat(&self) -> tokio::task::JoinHandle<()> {
        let mut client = self.client.clone();
        let id = self.settings.id.clone();
        let interval = self.settings.poll_interval;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                if let Err(status) = client.get_job(&id).await {
                    tracing::debug!("poll during a job failed: {}", client::describe(&status));
                }
            }
        })
    }

    /// Sends `outcome` until defguard takes it (or refuses it for good, or shutdown's grace
    /// runs out).
    async fn deliver(&mut self, outcome: Outcome) -> Result<(), StationError> {
        let job_id = outcome.job_id;
        if self.stop.requested() {
            // The job used up its own grace period; the report gets a fresh one.
            self.shutdown_deadline = Some(Instant::now() + self.settings.shutdown_grace);
        }
        loop {
            if self.stop.requested() {
                let deadline = *self
                    .shutdown_deadline
                    .get_or_insert_with(|| Instant::now() + self.settings.shutdown_grace);
                if Instant::now() >= deadline {
                    tracing::error!(
                        "stopping: the result of job {job_id} could not be delivered to defguard"
                    );
                    return Ok(());
                }
            }
            if !self.registered && !self.register_for_report().await? {
                continue;
            }
            let id = self.settings.id.clone();
            let grace = self.settings.shutdown_grace;
            let answer = tokio::select! {
                answer = self.client.set_job_done(&id, &outcome) => answer,
                () = past_deadline(&mut self.stop, &mut self.shutdown_deadline, grace) => continue,
            };
            match answer {
                Ok(()) => {
                    self.reachable();
                    tracing::info!(
                        "job {job_id} reported to defguard ({})",
                        if outcome.success { "success" } else { "failure" }
                    );
                    return Ok(());
                }
                Err(status) if is_definitive(&status) => {
                    self.reachable();
                    tracing::error!(
                        "defguard refused the result of job {job_id} ({}); dropping it",
                        client::describe(&status)
                    );
                    return Ok(());
                }
                Err(status) => {
                    self.trouble("SetJobDone", &status)?;
                    self.pause_for_report().await;
                }
            }
        }
    }

    /// Registers again before a retried report (after an outage the core may have
    /// restarted); like [`Self::register`] but not cut short by shutdown.
    async fn register_for_report(&mut self) -> Result<bool, StationError> {
        let id = self.settings.id.clone();
        let grace = self.settings.shutdown_grace;
        let answer = tokio::select! {
            answer = self.client.register(&id) => answer,
            () = past_deadline(&mut self.stop, &mut self.shutdown_deadline, grace) => {
                return Ok(false);
            }
        };
        match answer {
            Ok(_) => {
                self.reachable();
                self.registered = true;
                self.registered_at = Some(Instant::now());
                tracing::info!("registered with defguard as {id}");
                Ok(true)
            }
            Err(status) => {
                self.trouble("RegisterWorker", &status)?;
                self.pause_for_report().await;
                Ok(false)
            }
        }
    }

    /// The backoff pause while a report waits; bounded by the shutdown deadline.
    async fn pause_for_report(&mut self) {
        let delay = self.backoff.next_delay();
        let grace = self.settings.shutdown_grace;
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = past_deadline(&mut self.stop, &mut self.shutdown_deadline, grace) => {}
        }
    }
}

/// Completes when shutdown was requested and its grace period (from the first time anyone
/// noticed the request) is over; never before.
async fn past_deadline(stop: &mut Stop, deadline: &mut Option<Instant>, grace: Duration) {
    stop.wait().await;
    let deadline = *deadline.get_or_insert_with(|| Instant::now() + grace);
    tokio::time::sleep_until(deadline.into()).await;
}

fn failed(job_id: u32, error: &str) -> Outcome {
    Outcome {
        job_id,
        success: false,
        public_key: String::new(),
        ssh_key: String::new(),
        serial: String::new(),
        error: error.to_owned(),
    }
}

/// What to do about a failed call.
fn classify(status: &Status, url: &str, package: GrpcPackage) -> Trouble {
    let detail = client::describe(status);
    match status.code() {
        Code::Unauthenticated | Code::PermissionDenied => {
            Trouble::Fatal(StationError::Rejected { detail })
        }
        Code::Unimplemented => Trouble::Fatal(StationError::PackageNotServed {
            url: url.to_owned(),
            package,
            other: match package {
                GrpcPackage::DefguardWorkerV1 => GrpcPackage::Worker,
                GrpcPackage::Worker => GrpcPackage::DefguardWorkerV1,
            },
            detail,
        }),
        _ => Trouble::Outage(detail),
    }
}

/// Whether defguard answered a `SetJobDone` with a decision (the job is unknown, the report
/// malformed) rather than failing to answer: retrying would not change it.
fn is_definitive(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::NotFound
            | Code::InvalidArgument
            | Code::FailedPrecondition
            | Code::OutOfRange
            | Code::AlreadyExists
    )
}
