//! The station (`keystation_station::run`) against the test defguard core on loopback:
//! registration and polling under both packages, jobs and their reports, bad jobs, outages
//! and restarts, retried reports, shutdown during a job, a wrong token, and TLS.
//!
//! The core is a real tonic server in this process (`support/defguard_core.rs`); the
//! station is the library function the binary runs, with short timings. Conditions are
//! polled for with a deadline, never assumed after a sleep.
#![cfg(feature = "grpc")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/defguard_core.rs"]
mod defguard_core;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use defguard_core::{Core, TOKEN, serve};
use keystation_station::{
    AbortSignal, CardSelection, JobError, JobReport, JobRequest, JobRunner, StationError,
    StationSettings, run,
};
use keystation_station::{GrpcPackage, Token};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(15);
const ARMORED: &str =
    "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxjMEZ…\n-----END PGP PUBLIC KEY BLOCK-----\n";
const SSH: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOu3 ada@example.com";
const SERIAL: &str = "12345678";

/// A card selection with `retries` looks `interval` apart.
fn search(retries: u32, interval: Duration) -> CardSelection {
    CardSelection { retries, interval, ..CardSelection::default() }
}

fn settings(url: String, package: GrpcPackage) -> StationSettings {
    let mut settings = StationSettings::new("station-under-test".to_owned(), url);
    settings.token = Some(Token::new(TOKEN.to_owned()));
    settings.package = package;
    settings.poll_interval = Duration::from_millis(50);
    settings.request_timeout = Duration::from_secs(3);
    settings.max_backoff = Duration::from_millis(200);
    settings.shutdown_grace = Duration::from_secs(5);
    settings.card = search(4, Duration::from_millis(7));
    settings.register_interval = Duration::from_secs(60);
    settings
}

fn plain(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// A station running in the background until [`Station::stop`].
struct Station {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), StationError>>,
}

impl Station {
    fn start(settings: StationSettings, provision: Arc<dyn JobRunner>) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async {
            let _ = stopped.await;
        };
        let task = tokio::spawn(run(settings, provision, shutdown));
        Self { stop: Some(stop), task }
    }

    /// Requests shutdown and returns what `run` returned (within [`WAIT`]).
    async fn stop(mut self) -> Result<(), StationError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(WAIT, &mut self.task)
            .await
            .expect("the station stops in time")
            .expect("the station task does not panic")
    }

    /// Waits for `run` to return on its own.
    async fn ended(mut self) -> Result<(), StationError> {
        let result = tokio::time::timeout(WAIT, &mut self.task)
            .await
            .expect("the station ends in time")
            .expect("the station task does not panic");
        drop(self.stop.take());
        result
    }
}

/// Polls `condition` until it holds, or fails the test after [`WAIT`].
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Returns a fixed report and records every job it is given.
#[derive(Default)]
struct Fixed {
    jobs: Mutex<Vec<JobRequest>>,
}

impl Fixed {
    fn calls(&self) -> usize {
        self.jobs.lock().unwrap().len()
    }
}

impl JobRunner for Fixed {
    fn run_job(&self, job: &JobRequest, _abort: &AbortSignal) -> Result<JobReport, JobError> {
        self.jobs.lock().unwrap().push(job.clone());
        Ok(JobReport::new(ARMORED, SSH, SERIAL))
    }
}

/// Runs until aborted; then fails, or (with `finish_anyway`) completes.
#[derive(Default)]
struct UntilAborted {
    started: AtomicBool,
    finish_anyway: bool,
}

impl JobRunner for UntilAborted {
    fn run_job(&self, _job: &JobRequest, abort: &AbortSignal) -> Result<JobReport, JobError> {
        self.started.store(true, Ordering::SeqCst);
        if !abort.wait(Duration::from_secs(60)) {
            return Err(JobError::new("never aborted"));
        }
        if self.finish_anyway {
            Ok(JobReport::new(ARMORED, SSH, SERIAL))
        } else {
            Err(JobError::new("stopped at a safe point"))
        }
    }
}

fn path(package: GrpcPackage, method: &str) -> String {
    match package {
        GrpcPackage::DefguardWorkerV1 => format!("/defguard.worker.v1.WorkerService/{method}"),
        _ => format!("/worker.WorkerService/{method}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_and_polls_under_both_packages() {
    for package in [GrpcPackage::DefguardWorkerV1, GrpcPackage::Worker] {
        let core = Core::default();
        let server = serve(&core, "127.0.0.1:0".parse().unwrap(), None).await.unwrap();
        let station =
            Station::start(settings(plain(server.addr), package), Arc::new(Fixed::default()));

        eventually("several polls", || core.calls(&path(package, "GetJob")) >= 3).await;
        assert!(core.state().workers.contains("station-under-test"), "{package}");
        let paths = core.state().paths.clone();
        assert_eq!(paths[0], path(package, "RegisterWorker"), "registers first");
        assert!(
            paths.iter().all(|p| p.starts_with(&path(package, ""))),
            "only package {package} is spoken: {paths:?}"
        );
        // Polling, not hammering: at 50 ms, far fewer than one call per millisecond.
        station.stop().await.unwrap();
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn already_exists_is_tolerated_and_a_job_is_reported() {
    let core = Core::default();
    core.register("station-under-test".to_owned()).unwrap();
    let server = serve(&core, "127.0.0.1:0".parse().unwrap(), None).await.unwrap();
    let provision = Arc::new(Fixed::default());
    let station = Station::start(
        settings(plain(server.addr), GrpcPackage::DefguardWorkerV1),
        provision.clone(),
    );

    let job = core.enqueue("Ada", "Lovelace", "ada@example.com");
    eventually("the report", || core.done(job).is_some()).await;
    let done = core.done(job).unwrap();
    assert_eq!(
        done,
        defguard_core::Done {
            worker: "station-under-test".into(),
            job_id: job,
            success: true,
            public_key: ARMORED.into(),
            ssh_key: SSH.into(),
            serial: SERIAL.into(),
            error: String::new(),
        }
    );
    assert_eq!(core.calls("/defguard.worker.v1.WorkerService/RegisterWorker"), 1);

    // The provisioning side got the job and the card-search settings.
    let jobs = provision.jobs.lock().unwrap().clone();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].job_id, job);
    assert_eq!(jobs[0].user_id(), "Ada Lovelace <ada@example.com>");
    assert_eq!(jobs[0].card, search(4, Duration::from_millis(7)));
    assert!(core.state().jobs.is_empty());
    station.stop().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_job_fields_fail_without_provisioning() {
    let core = Core::default();
    let server = serve(&core, "127.0.0.1:0".parse().unwrap(), None).await.unwrap();
    let provision = Arc::new(Fixed::default());
    let station =
        Station::start(settings(plain(server.addr), GrpcPackage::Worker), provision.clone());

    let long = "x".repeat(300);
    let cases = [
        ("", "Lovelace", "ada@example.com", "invalid job: the first name is empty"),
        (
            "Ada",
            "Love\nlace",
            "ada@example.com",
            "invalid job: the last name contains control characters",
        ),
        (
            long.as_str(),
            "Lovelace",
            "ada@example.com",
            "invalid job: the first name is 300 bytes long (at most 256)",
        ),
        (
            "Ada",
            "Lovelace <x@y>",
            "ada@example.com",
            "invalid job: the last name contains '<' or '>'",
        ),
        (
            "Ada",
            "Lovelace",
            "ada.example.com",
            "invalid job: the e-mail address is not valid (it needs exactly one '@')",
        ),
        (
            "Ada",
            "Lovelace",
            "ada @example.com",
            "invalid job: the e-mail address is not valid (it contains white space)",
        ),
        (
            "Ada",
            "Lovelace",
            "ada@",
            "invalid job: the e-mail address is not valid (nothing after the '@')",
        ),
    ];
    let ids: Vec<(u32, &str)> =
        cases.iter().map(|(f, l, e, why)| (core.enqueue(f, l, e), *why)).collect();
    let good = core.enqueue("Ada", "Lovelace", "ada@example.com");
    eventually("every report", || core.state().done.len() == ids.len() + 1).await;
    for (id, why) in ids {
        let done = core.done(id).unwrap();
        assert!(!done.success, "job {id}");
        assert_eq!(done.error, why, "job {id}");
        assert!(done.public_key.is_empty() && done.ssh_key.is_empty() && done.serial.is_empty());
    }
    assert!(core.done(good).unwrap().success);
    assert_eq!(provision.calls(), 1, "only the good job reaches the provisioning side");
    station.stop().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_down_at_start_then_up() {
    // A port nobody listens on (yet).
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let provision = Arc::new(Fixed::default());
    let station =
        Station::start(settings(plain(addr), GrpcPackage::DefguardWorkerV1), provision.clone());
    // Let it fail a few times (not an assertion: only so that the core starts later).
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!station.task.is_finished(), "the station keeps trying");

    let core = Core::default();
    let server = serve(&core, addr, None).await.unwrap();
    let job = core.enqueue("Grace", "Hopper", "grace@example.com");
    eventually("the report", || core.done(job).is_some()).await;
    assert!(core.done(job).unwrap().success);
    assert_eq!(core.state().paths[0], "/defguard.worker.v1.WorkerService/RegisterWorker");
    station.stop().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_restart_mid_poll_is_survived() {
    let first = Core::default();
    let server = serve(&first, "127.0.0.1:0".parse().unwrap(), None).await.unwrap();
    let addr = server.addr;
    let provision = Arc::new(Fixed::default());
    let station = Station::start(settings(plain(addr), GrpcPackage::Worker), provision.clone());
    eventually("polls", || first.calls("/worker.WorkerService/GetJob") >= 2).await;

    // The core goes away for a moment (the station's polls fail meanwhile) and comes
    // back on the same port with its memory wiped.
    server.stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = Core::default();
    let server = serve(&second, addr, None).await.unwrap();
    let job = second.enqueue("Alan", "Turing", "alan@example.com");
    eventually("the report to the new core", || second.done(job).is_some()).await;
    assert!(second.done(job).unwrap().success);
    assert!(
        second.state().workers.contains("station-under-test"),
        "the station registered again with the restarted core"
    );
    assert_eq!(provision.calls(), 1);
    station.stop().await.unwrap();
    server.stop().await;
}

/// A core that restarts between two polls is not seen failing; the station registers again
/// every `register_interval` anyway, so the new core learns about it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invisible_core_restart_is_caught_by_periodic_registration() {
    let first = Core::default();
    let server = serve(&first, "127.0.0.1:0".parse().unwrap(), None).await.unwrap();
    let addr = server.addr;
    let mut settings = settings(plain(addr), GrpcPackage::DefguardWorkerV1);
    settings.register_interval = Duration::from_millis(300);
    let station = Station::start(settings, Arc::new(Fixed::default()));
    let register = "/defguard.worker.v1.WorkerService/RegisterWorker";
    eventually("a periodic registration", || first.calls(register) >= 2).await;
    assert_eq!(first.state().workers.len(), 1);

    server.stop().await;
    let second = Core::default();
    let server = serve(&second, addr, None).await.unwrap();
    eventually("registration with the new core", || {
        second.state().workers.contains("station-under-test")
    })
    .await;
    station.stop().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unserved_package_stops_the_station_with_a_hint() {
    let core = Core::default();
    core.state().unserved = Some("defguard.worker.v1.WorkerService");
    let server = serve(&core, "127.0.0.1:0".parse().unwrap(), None).await.unwrap();
    let station = Station::start(
        settings(plain(server.addr), GrpcPackage::DefguardWorkerV1),
        Arc::new(Fixed::default()),
    );
    let error = station.ended().await.unwrap_err();
    assert!(matches!(error, StationError::PackageNotServed { .. }), "{error:?}");
    assert!(error.is_configuration());
    let message = error.to_string();
    assert!(
        message.contains("does not serve package defguard.worker.v1")
            && message
                .ends_with("set grpc_package (--grpc-package, KEYSTATION_GRPC_PACKAGE) to worker"),
        "{message}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_report_is_retried_and_the_job_not_run_again() {
    let core = Core::default();
    core.state().fail_set_job_done = 2;
    let server = serve(&core, "127.0.0.1:0".parse().unwrap(), None).await.unwrap();
    let provision = Arc::new(Fixed::default());
    let station = Station::start(
        settings(plain(server.addr), GrpcPackage::DefguardWorkerV1),
        provision.clone(),
    );
    let job = core.enqueue("Ada", "Lovelace", "ada@example.com");
    eventually("the report", || core.done(job).is_some()).await;
    assert_eq!(core.state().set_job_done_calls, 3, "two refusals, then delivered");
    assert!(core.done(job).unwrap().success);
    // A little more polling happens after delivery; the job is not taken again.
    let polls = core.calls("/defguard.worker.v1.WorkerService/GetJob");
    eventually("more polls", || core.calls("/defguard.worker.v1.WorkerService/GetJob") > polls + 2)
        .await;
    assert_eq!(provision.calls(), 1, "the job ran once");
    assert_eq!(core.state().done.len(), 1);
    station.stop().await.unwrap();
    server.stop().await;
}

/// A core that refuses a report and keeps the job queued offers the same job again; the
/// station sends the result again rather than running the job (resetting a card) twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_report_with_the_job_still_queued_does_not_rerun_it() {
    let core = Core::default();
    core.state().refuse_set_job_done = 2;
    let server = serve(&core, "127.0.0.1:0".parse().unwrap(), None).await.unwrap();
    let provision = Arc::new(Fixed::default());
    let station =
        Station::start(settings(plain(server.addr), GrpcPackage::Worker), provision.clone());
    let job = core.enqueue("Ada", "Lovelace", "ada@example.com");
    eventually("the report", || core.done(job).is_some()).await;
    assert_eq!(core.state().set_job_done_calls, 3);
    assert!(core.done(job).unwrap().success);
    assert_eq!(provision.calls(), 1, "the job ran once");

    // A new job for the same person runs as usual.
    let polls = core.calls("/worker.WorkerService/GetJob");
    eventually("an empty poll", || core.calls("/worker.WorkerService/GetJob") > polls).await;
    let again = core.enqueue("Ada", "Lovelace", "ada@example.com");
    eventually("the second report", || core.done(again).is_some()).await;
    assert_eq!(provision.calls(), 2);
    station.stop().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_during_a_job_aborts_and_reports_it() {
    for finish_anyway in [false, true] {
        let core = Core::default();
        let server = serve(&core, "127.0.0.1:0".parse().unwrap(), None).await.unwrap();
        let provision = Arc::new(UntilAborted { finish_anyway, ..UntilAborted::default() });
        let station = Station::start(
            settings(plain(server.addr), GrpcPackage::DefguardWorkerV1),
            provision.clone(),
        );
        let job = core.enqueue("Ada", "Lovelace", "ada@example.com");
        eventually("the job to start", || provision.started.load(Ordering::SeqCst)).await;

        // While the job runs the station keeps polling, so defguard shows it connected.
        let polls = core.calls("/defguard.worker.v1.WorkerService/GetJob");
        eventually("polls during the job", || {
            core.calls("/defguard.worker.v1.WorkerService/GetJob") >= polls + 3
        })
        .await;
        assert!(core.done(job).is_none());

        station.stop().await.unwrap();
        let done = core.done(job).expect("the job was reported before the station stopped");
        if finish_anyway {
            assert!(done.success, "{done:?}");
            assert_eq!(done.serial, SERIAL);
        } else {
            assert!(!done.success);
            assert_eq!(done.error, "aborted by station shutdown");
        }
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_ignores_abort_is_reported_after_the_grace_period() {
    struct Stubborn(AtomicUsize);
    impl JobRunner for Stubborn {
        fn run_job(&self, _: &JobRequest, _: &AbortSignal) -> Result<JobReport, JobError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_secs(3));
            Err(JobError::new("too late"))
        }
    }
    let core = Core::default();
    let server = serve(&core, "127.0.0.1:0".parse().unwrap(), None).await.unwrap();
    let provision = Arc::new(Stubborn(AtomicUsize::new(0)));
    let mut settings = settings(plain(server.addr), GrpcPackage::DefguardWorkerV1);
    settings.shutdown_grace = Duration::from_millis(300);
    let station = Station::start(settings, provision.clone());
    let job = core.enqueue("Ada", "Lovelace", "ada@example.com");
    eventually("the job to start", || provision.0.load(Ordering::SeqCst) == 1).await;
    let asked = Instant::now();
    station.stop().await.unwrap();
    assert!(asked.elapsed() < Duration::from_secs(10), "bounded by the grace period");
    assert_eq!(core.done(job).unwrap().error, "aborted by station shutdown");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_panic_is_a_failed_job_not_a_crash() {
    struct Panics;
    impl JobRunner for Panics {
        fn run_job(&self, _: &JobRequest, _: &AbortSignal) -> Result<JobReport, JobError> {
            panic!("bug in provisioning");
        }
    }
    let core = Core::default();
    let server = serve(&core, "127.0.0.1:0".parse().unwrap(), None).await.unwrap();
    let station =
        Station::start(settings(plain(server.addr), GrpcPackage::Worker), Arc::new(Panics));
    let first = core.enqueue("Ada", "Lovelace", "ada@example.com");
    let second = core.enqueue("Alan", "Turing", "alan@example.com");
    eventually("both reports", || core.done(second).is_some()).await;
    let done = core.done(first).unwrap();
    assert!(!done.success);
    assert_eq!(done.error, "internal error in the station (provisioning crashed)");
    station.stop().await.unwrap();
    server.stop().await;
}

/// A `string` field that is not UTF-8 cannot be decoded (prost refuses it and tonic answers
/// the call with INTERNAL), so such a job has no usable id and cannot be reported; the
/// station treats the answer like an outage and goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_utf8_job_fields_do_not_bring_the_station_down() {
    let core = Core::default();
    core.state().non_utf8_jobs = 3;
    let server = serve(&core, "127.0.0.1:0".parse().unwrap(), None).await.unwrap();
    let provision = Arc::new(Fixed::default());
    let station = Station::start(
        settings(plain(server.addr), GrpcPackage::DefguardWorkerV1),
        provision.clone(),
    );
    let job = core.enqueue("Ada", "Lovelace", "ada@example.com");
    eventually("the good job's report", || core.done(job).is_some()).await;
    assert_eq!(core.state().non_utf8_jobs, 0, "the broken answers were all sent");
    assert!(core.done(99).is_none(), "nothing reported for the undecodable job");
    let jobs = provision.jobs.lock().unwrap().clone();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].first_name, "Ada");
    station.stop().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_token_stops_the_station_with_a_clear_error() {
    let core = Core::default();
    let server = serve(&core, "127.0.0.1:0".parse().unwrap(), None).await.unwrap();
    let mut wrong = settings(plain(server.addr), GrpcPackage::DefguardWorkerV1);
    wrong.token = Some(Token::new("not-the-token-xyzzy".to_owned()));
    let error = Station::start(wrong, Arc::new(Fixed::default())).ended().await.unwrap_err();
    assert!(matches!(error, StationError::Rejected { .. }), "{error:?}");
    assert!(error.is_configuration());
    let message = error.to_string();
    assert!(
        message.starts_with("defguard rejected the authorization token (Unauthenticated"),
        "{message}"
    );
    assert!(!message.contains("xyzzy"), "{message}");
    assert_eq!(core.calls("/defguard.worker.v1.WorkerService/RegisterWorker"), 1, "no retry loop");

    let mut missing = settings(plain(server.addr), GrpcPackage::DefguardWorkerV1);
    missing.token = None;
    let error = Station::start(missing, Arc::new(Fixed::default())).ended().await.unwrap_err();
    assert!(matches!(error, StationError::NoToken), "{error:?}");
    assert_eq!(core.state().paths.len(), 1, "nothing sent without a token");
    server.stop().await;
}

// ---------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------

/// A throwaway CA and a server certificate for 127.0.0.1 and localhost, signed by it.
struct Pki {
    ca_pem: String,
    server: tonic::transport::Identity,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "keystation test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.subject_alt_names.push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    params.distinguished_name.push(DnType::CommonName, "defguard test core");
    let cert = params.signed_by(&key, &issuer).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        server: tonic::transport::Identity::from_pem(cert.pem(), key.serialize_pem()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_ca_file_and_the_http_upgrade() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();

    let core = Core::default();
    let server = serve(&core, "127.0.0.1:0".parse().unwrap(), Some(pki.server)).await.unwrap();
    // https:// as configured, and http:// upgraded because a CA file is given.
    for url in [format!("https://{}", server.addr), plain(server.addr)] {
        let mut settings = settings(url.clone(), GrpcPackage::DefguardWorkerV1);
        settings.grpc_ca = Some(ca_file.clone());
        let station = Station::start(settings, Arc::new(Fixed::default()));
        let job = core.enqueue("Ada", "Lovelace", "ada@example.com");
        eventually("the report over TLS", || core.done(job).is_some()).await;
        assert!(core.done(job).unwrap().success, "{url}");
        station.stop().await.unwrap();
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_refuses_a_server_the_ca_did_not_sign() {
    let trusted = pki();
    let other = pki();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &trusted.ca_pem).unwrap();

    let core = Core::default();
    let server = serve(&core, "127.0.0.1:0".parse().unwrap(), Some(other.server)).await.unwrap();
    let mut settings = settings(format!("https://{}", server.addr), GrpcPackage::Worker);
    settings.grpc_ca = Some(ca_file);
    let station = Station::start(settings, Arc::new(Fixed::default()));
    core.enqueue("Ada", "Lovelace", "ada@example.com");
    // The handshake fails before any request reaches the core; the station keeps
    // retrying (an outage, not a crash) until told to stop.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(core.state().paths.is_empty(), "{:?}", core.state().paths);
    assert!(core.state().done.is_empty());
    station.stop().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn unusable_ca_file_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.txt");
    std::fs::write(&not_pem, "hello").unwrap();
    for (file, reason) in
        [(dir.path().join("missing.pem"), "No such file"), (not_pem, "no PEM certificate")]
    {
        let mut settings = settings("https://127.0.0.1:1".to_owned(), GrpcPackage::Worker);
        settings.grpc_ca = Some(file.clone());
        let error = Station::start(settings, Arc::new(Fixed::default())).ended().await.unwrap_err();
        assert!(matches!(error, StationError::CaFile { .. }), "{error:?}");
        let message = error.to_string();
        assert!(
            message.contains(&file.display().to_string()) && message.contains(reason),
            "{message}"
        );
    }
}
