//! What the kube proxy costs: GET /api against the same nginx (client certificates
//! required, canned Kubernetes API, one worker, no TLS session resumption) three ways —
//!
//! - `direct`: an in-process hyper + rustls client holding the test client key in memory,
//!   connections kept alive;
//! - `presence_watch`: plain HTTP to `keystation kube proxy --keep-alive`, whose upstream
//!   connections are pooled and signed by the card once each;
//! - `default_mode`: plain HTTP to `keystation kube proxy`, where every request is a new
//!   upstream TLS handshake signed by the card;
//!
//! as throughput with [`CONNECTIONS`] concurrent client connections (requests/s), and as
//! latency with one client sending one request at a time (the difference to `direct` is
//! what the proxy adds per request).
//!
//! The card is the software YubiKey served on the private pcscd's vpcd reader by
//! `keystation simulate`'s bridge in this process; `keystation kube setup` imports the
//! test client key into PIV slot 9a, and the proxy runs in this process on its own
//! runtime (`keystation_kube::{prepare, serve_until}`), exactly as the binary runs it.
//! It needs the private pcscd and nginx:
//!
//! ```sh
//! scripts/with-pcscd cargo bench --features test-vpcd --bench kube_proxy
//! ```
//!
//! Without the private pcscd it stops at once with that hint. `KEYSTATION_BENCH_CONNECTIONS`
//! changes the throughput cases' concurrency; `KEYSTATION_BENCH_SERVICE_MS=N` has nginx
//! wait N ms before each answer (see [`service_time`]). After each throughput case it prints how
//! many TLS connections nginx accepted for how many requests (nginx's `stub_status`),
//! which shows whether the proxy reuses its upstream connections, and the CPU time per
//! request of the client, the proxy and nginx's worker (from /proc), which shows where
//! the time goes when the cores are saturated.
#![allow(clippy::print_stderr, clippy::expect_used, clippy::unwrap_used)]

// nginx.rs finds the PKI as `super::test_pki`: both sit at the crate root here.
// Only `wait_for_card` is used here.
#[allow(dead_code)]
mod common;
#[path = "../tests/support/nginx.rs"]
mod nginx;
#[path = "../tests/support/test_pki.rs"]
mod test_pki;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group};
use criterion::{criterion_main, measurement::WallTime};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use keystation_kube as kube;
use keystation_softcard::bridge as simulate;
use nginx::{Nginx, NginxOptions};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use test_pki::Pki;
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio_rustls::TlsConnector;

/// Concurrent client connections in the throughput cases, unless
/// `KEYSTATION_BENCH_CONNECTIONS` says otherwise.
const CONNECTIONS: usize = 8;
/// Requests per iteration in the throughput cases over kept-alive upstream connections.
const BATCH: usize = 200;
/// Requests per iteration in default mode, where each is a card signature.
const BATCH_DEFAULT_MODE: usize = 40;
/// The path every request asks for, and how its answer starts.
const PATH: &str = "/api";
/// The same answer after `KEYSTATION_BENCH_SERVICE_MS` of server time (see
/// [`service_time`]).
const SLOW_PATH: &str = "/api-after-service-time";

/// `KEYSTATION_BENCH_SERVICE_MS=N` makes every benchmarked request wait N ms in nginx
/// before the answer (`echo_sleep` of Debian's `libnginx-mod-http-echo`), as an API
/// server that does real work (or sits across a network) would: the proxy's cost is then
/// set against a realistic request time instead of nginx's 10 µs canned answer.
fn service_time() -> Option<f64> {
    std::env::var("KEYSTATION_BENCH_SERVICE_MS").ok().map(|ms| {
        ms.parse().unwrap_or_else(|_| panic!("KEYSTATION_BENCH_SERVICE_MS={ms:?} is not a number"))
    })
}

/// The path the benchmarked requests ask for.
fn bench_path() -> &'static str {
    if service_time().is_some() { SLOW_PATH } else { PATH }
}
const ANSWER_START: &[u8] = br#"{"kind":"APIVersions""#;
/// nginx's connection counters (`stub_status`), reachable with the client certificate.
const STATUS_PATH: &str = "/keystation-bench-status";
const HINT: &str = "run under the private pcscd: \
                    scripts/with-pcscd cargo bench --features test-vpcd --bench kube_proxy";

/// Requests answered 200 so far, over all cases.
static REQUESTS: AtomicU64 = AtomicU64::new(0);

/// The bridge serving a software card on the vpcd reader, stopped when dropped.
struct Bridge {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Bridge {
    fn start(port: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let options = simulate::Options {
            vpcd: format!("127.0.0.1:{port}"),
            seed: Some(7),
            ..simulate::Options::default()
        };
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut card = simulate::card(&options);
                simulate::serve_until(&options.vpcd, &mut card, None, &stop);
            })
        };
        Self { stop, thread: Some(thread) }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `keystation kube setup`: imports the test client key into slot 9a (no PIN, no touch)
/// and writes `proxy.yml` into `out_dir`; returns its path.
fn setup(home: &Path, nginx: &Nginx, pki: &Pki, reader: &str) -> PathBuf {
    let b64 = keystation_core::base64::encode;
    let kubeconfig = home.join("k3s.yaml");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: {server}\n  name: bench\ncontexts:\n- context:\n    cluster: bench\n    user: admin\n  name: bench\ncurrent-context: bench\nusers:\n- name: admin\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\n",
            ca = b64(pki.ca.cert_pem.as_bytes()),
            server = nginx.url(),
            cert = b64(pki.client.cert_pem.as_bytes()),
            key = b64(pki.client.key_pem.as_bytes()),
        ),
    )
    .unwrap();
    let out_dir = home.join("kube");
    let options = kube::setup::SetupOptions {
        kubeconfig: Some(kubeconfig),
        context: None,
        slot: keystation_core::keygen::PivSlot::Authentication,
        generate: false,
        algorithm: keystation_core::key::KeyAlgorithm::NistP256,
        subject: None,
        approve: false,
        wait: Duration::from_secs(10),
        expiration: None,
        out_dir: Some(out_dir.clone()),
        listen: "127.0.0.1:0".to_owned(),
        pin_policy: keystation_core::keygen::PinPolicy::Never,
        touch_policy: keystation_core::keygen::TouchPolicy::Never,
        access: keystation_piv_ops::Access::default(),
        card: keystation_cards::CardSelection::pcsc(Some(reader)),
        force: true,
    };
    let mut out = Vec::new();
    kube::setup::run(&options, &mut out).unwrap_or_else(|e| panic!("kube setup: {e}"));
    assert!(String::from_utf8_lossy(&out).contains("PIV slot 9a"));
    out_dir.join("proxy.yml")
}

/// A proxy serving on its own thread and runtime, as `keystation kube proxy` does;
/// stopped when dropped.
struct Proxy {
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    fn start(proxy_yml: &Path, reader: &str, keep_alive: bool) -> Self {
        let options = kube::ProxyOptions {
            kubeconfig: Some(proxy_yml.to_owned()),
            listen: Some("127.0.0.1:0".to_owned()),
            keep_alive,
            card: keystation_cards::CardSelection::pcsc(Some(reader)),
            ..kube::ProxyOptions::default()
        };
        // The previous proxy's card thread may still hold the card for a moment.
        let deadline = Instant::now() + Duration::from_secs(10);
        let prepared = loop {
            match kube::prepare(&options) {
                Ok(prepared) => break prepared,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("kube proxy not ready yet ({e}); retrying");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("kube proxy: {e}"),
            }
        };
        let port = prepared.address.port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(e) = kube::serve_until(prepared, shutdown) {
                panic!("kube proxy: {e}");
            }
        });
        Self { port, stop: Some(stop), thread: Some(thread) }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Where the client sends its requests.
#[derive(Clone)]
enum Target {
    /// nginx itself, over mutual TLS with the key in memory.
    Direct { port: u16, tls: TlsConnector },
    /// The proxy, plain HTTP on loopback.
    Proxy { port: u16 },
}

impl Target {
    fn port(&self) -> u16 {
        match self {
            Self::Direct { port, .. } | Self::Proxy { port } => *port,
        }
    }

    /// A new kept-alive HTTP/1.1 connection.
    async fn connect(&self) -> SendRequest<Empty<Bytes>> {
        let tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port())).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        match self {
            Self::Direct { tls, .. } => {
                let name = ServerName::IpAddress(Ipv4Addr::LOCALHOST.into());
                let stream = tls.connect(name, tcp).await.unwrap();
                handshake(TokioIo::new(stream)).await
            }
            Self::Proxy { .. } => handshake(TokioIo::new(tcp)).await,
        }
    }
}

async fn handshake<I>(io: I) -> SendRequest<Empty<Bytes>>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(io).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    sender
}

/// The direct client's TLS: the test CA as the only root, the client key in memory,
/// no session resumption (like the proxy's).
fn direct_tls(pki: &Pki) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(pki.ca.cert_der.clone())).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.client.key_der.clone()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![CertificateDer::from(pki.client.cert_der.clone())], key)
        .unwrap();
    config.resumption = rustls::client::Resumption::disabled();
    TlsConnector::from(Arc::new(config))
}

/// GET `path` on `sender`'s connection; the whole body.
async fn get(sender: &mut SendRequest<Empty<Bytes>>, path: &str) -> (StatusCode, Bytes) {
    sender.ready().await.unwrap();
    let request =
        Request::get(path).header(hyper::header::HOST, "127.0.0.1").body(Empty::new()).unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, body)
}

/// A kept-alive client connection that is opened again when the server closes it (nginx
/// does after `keepalive_requests`, 100000).
struct Client {
    target: Target,
    sender: SendRequest<Empty<Bytes>>,
}

impl Client {
    async fn new(target: &Target) -> Self {
        Self { target: target.clone(), sender: target.connect().await }
    }

    /// One benchmarked request: GET /api, which must succeed.
    async fn get_api(&mut self) {
        if self.sender.ready().await.is_err() {
            self.sender = self.target.connect().await;
        }
        get_api(&mut self.sender).await;
    }
}

/// GET /api on `sender`'s connection, which must succeed.
async fn get_api(sender: &mut SendRequest<Empty<Bytes>>) {
    let (status, body) = get(sender, bench_path()).await;
    assert!(
        status == StatusCode::OK && body.starts_with(ANSWER_START),
        "{status}: {}",
        String::from_utf8_lossy(&body)
    );
    REQUESTS.fetch_add(1, Ordering::Relaxed);
}

/// `requests` requests spread over the connections in `senders`, all at once.
async fn batch(senders: &mut Vec<Client>, requests: usize) {
    let each = requests / senders.len();
    let tasks: Vec<_> = senders
        .drain(..)
        .map(|mut sender| {
            tokio::spawn(async move {
                for _ in 0..each {
                    sender.get_api().await;
                }
                sender
            })
        })
        .collect();
    for task in tasks {
        senders.push(task.await.unwrap());
    }
}

/// Connections nginx has accepted so far (`stub_status`'s "accepts"), asked over a new
/// direct connection (which it counts too).
fn nginx_accepts(runtime: &Runtime, direct: &Target) -> u64 {
    runtime.block_on(async {
        let mut sender = direct.connect().await;
        let (status, body) = get(&mut sender, STATUS_PATH).await;
        assert_eq!(status, StatusCode::OK);
        // "Active connections: 1 \nserver accepts handled requests\n 5 5 9 \n..."
        let text = String::from_utf8_lossy(&body).into_owned();
        text.lines().nth(2).and_then(|l| l.split_whitespace().next()?.parse().ok()).unwrap()
    })
}

/// Client connections for the throughput cases.
fn connections() -> usize {
    std::env::var("KEYSTATION_BENCH_CONNECTIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(CONNECTIONS)
}

/// CPU time (user + system, clock ticks) of this process's threads whose name starts
/// with `prefix`, from /proc/self/task/*/stat.
fn thread_ticks(prefix: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("stat")).ok())
        .filter(|stat| stat.split_once('(').is_some_and(|(_, rest)| rest.starts_with(prefix)))
        .map(|stat| process_ticks(&stat))
        .sum()
}

/// utime + stime of a /proc stat line ("pid (comm) state ppid …", fields 14 and 15).
fn process_ticks(stat: &str) -> u64 {
    let Some((_, rest)) = stat.rsplit_once(')') else { return 0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields.get(11..13).map_or(0, |times| times.iter().filter_map(|t| t.parse::<u64>().ok()).sum())
}

/// CPU ticks of nginx's workers (the children of its master).
fn nginx_ticks(nginx: &Nginx) -> u64 {
    let Some(master) = nginx.pid() else { return 0 };
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .is_some_and(|ppid| ppid == master.to_string())
        })
        .map(|stat| process_ticks(&stat))
        .sum()
}

/// Where the CPU time goes: the client's runtime, the proxy's runtime, nginx's worker.
#[derive(Clone, Copy)]
struct Cpu {
    client: u64,
    proxy: u64,
    nginx: u64,
    at: Instant,
}

impl Cpu {
    fn now(nginx: &Nginx) -> Self {
        Self {
            // tokio names its workers "tokio-runtime-worker" or (newer) "tokio-rt-worker".
            client: thread_ticks("tokio-r"),
            proxy: thread_ticks("kube-proxy"),
            nginx: nginx_ticks(nginx),
            at: Instant::now(),
        }
    }

    /// CPU microseconds per request of each part since `before` (100 ticks a second, as
    /// on Linux on x86 and arm), and the wall-clock time per request.
    fn report(&self, before: &Self, requests: u64) -> String {
        let per = |after: u64, before: u64| (after - before) as f64 * 10_000.0 / requests as f64;
        let (client, proxy, nginx) = (
            per(self.client, before.client),
            per(self.proxy, before.proxy),
            per(self.nginx, before.nginx),
        );
        let wall = self.at.duration_since(before.at).as_secs_f64() * 1e6 / requests as f64;
        format!(
            "CPU per request: client {client:.1} µs, proxy {proxy:.1} µs, nginx {nginx:.1} µs, \
             sum {:.1} µs; wall {wall:.1} µs per request",
            client + proxy + nginx
        )
    }
}

/// Benchmarks `requests` GETs per iteration over [`connections`] connections to `target`,
/// and prints how many new TLS connections nginx saw meanwhile and where the CPU went.
fn throughput(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    runtime: &Runtime,
    (target, direct, nginx): (&Target, &Target, &Nginx),
    requests: usize,
) {
    let connections = connections();
    let requests = (requests / connections).max(1) * connections;
    let mut senders = runtime.block_on(connect_all(target, connections));
    let accepts_before = nginx_accepts(runtime, direct);
    let requests_before = REQUESTS.load(Ordering::Relaxed);
    let cpu_before = Cpu::now(nginx);
    group.throughput(Throughput::Elements(requests as u64));
    group.bench_function(name, |b| {
        b.iter_custom(|iterations| {
            runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iterations {
                    batch(&mut senders, requests).await;
                }
                start.elapsed()
            })
        })
    });
    let cpu_after = Cpu::now(nginx);
    // Minus the one connection the status request itself makes.
    let upstream = nginx_accepts(runtime, direct) - accepts_before - 1;
    let answered = REQUESTS.load(Ordering::Relaxed) - requests_before;
    if answered == 0 {
        // Filtered out on the command line.
        return;
    }
    eprintln!(
        "{name}: {answered} requests over {connections} client connections made nginx accept \
         {upstream} TLS connections ({:.1} requests per TLS connection)\n{name}: {}",
        answered as f64 / upstream.max(1) as f64,
        cpu_after.report(&cpu_before, answered),
    );
}

async fn connect_all(target: &Target, count: usize) -> Vec<Client> {
    let mut senders = Vec::with_capacity(count);
    for _ in 0..count {
        senders.push(Client::new(target).await);
    }
    senders
}

/// Benchmarks one request at a time on one kept-alive client connection.
fn latency(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    runtime: &Runtime,
    target: &Target,
) {
    let mut client = runtime.block_on(Client::new(target));
    group.throughput(Throughput::Elements(1));
    group.bench_function(name, |b| {
        b.iter_custom(|iterations| {
            runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iterations {
                    client.get_api().await;
                }
                start.elapsed()
            })
        })
    });
}

fn kube_proxy(c: &mut Criterion) {
    let port = std::env::var("KEYSTATION_TEST_VPCD_PORT").unwrap_or_else(|_| panic!("{HINT}"));
    let reader = std::env::var("KEYSTATION_TEST_VPCD_READER").unwrap_or_else(|_| panic!("{HINT}"));
    let home = tempfile::tempdir().unwrap();
    let context =
        keystation_pcsc::PcscContext::establish().unwrap_or_else(|e| panic!("pcscd: {e}; {HINT}"));
    // Another benchmark's card may still be leaving the reader.
    common::wait_for_card(&context, &reader, false);
    let _bridge = Bridge::start(&port);
    common::wait_for_card(&context, &reader, true);

    let pki = Pki::new().unwrap();
    let nginx_dir = home.path().join("nginx");
    std::fs::create_dir(&nginx_dir).unwrap();
    let mut nginx_options = NginxOptions {
        extra_server_config: format!("        location = {STATUS_PATH} {{ stub_status; }}\n"),
        ..NginxOptions::default()
    };
    if let Some(ms) = service_time() {
        let module = "/usr/lib/nginx/modules/ngx_http_echo_module.so";
        assert!(
            Path::new(module).exists(),
            "KEYSTATION_BENCH_SERVICE_MS needs nginx's echo module: apt-get install libnginx-mod-http-echo"
        );
        nginx_options.main_config = format!("load_module {module};");
        let answer = String::from_utf8_lossy(ANSWER_START);
        nginx_options.extra_server_config += &format!(
            "        location = {SLOW_PATH} {{ default_type application/json; echo_sleep {}; echo '{answer}}}'; }}\n",
            ms / 1000.0
        );
    }
    let nginx = Nginx::start(&nginx_dir, &pki, &nginx_options).unwrap();
    let proxy_yml = setup(home.path(), &nginx, &pki, &reader);

    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let direct = Target::Direct { port: nginx.port(), tls: direct_tls(&pki) };

    let mut group = c.benchmark_group("kube_proxy/throughput");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    throughput(&mut group, "direct", &runtime, (&direct, &direct, &nginx), BATCH);
    {
        let proxy = Proxy::start(&proxy_yml, &reader, true);
        let target = Target::Proxy { port: proxy.port };
        check_identity(&runtime, &target);
        throughput(&mut group, "presence_watch", &runtime, (&target, &direct, &nginx), BATCH);
    }
    {
        let proxy = Proxy::start(&proxy_yml, &reader, false);
        let target = Target::Proxy { port: proxy.port };
        check_identity(&runtime, &target);
        let parts = (&target, &direct, &nginx);
        throughput(&mut group, "default_mode", &runtime, parts, BATCH_DEFAULT_MODE);
    }
    group.finish();

    let mut group = c.benchmark_group("kube_proxy/latency");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    latency(&mut group, "direct", &runtime, &direct);
    {
        let proxy = Proxy::start(&proxy_yml, &reader, true);
        latency(&mut group, "presence_watch", &runtime, &Target::Proxy { port: proxy.port });
    }
    {
        let proxy = Proxy::start(&proxy_yml, &reader, false);
        latency(&mut group, "default_mode", &runtime, &Target::Proxy { port: proxy.port });
    }
    group.finish();
}

/// The proxy really authenticates with the card's key: nginx saw the test client's
/// certificate.
fn check_identity(runtime: &Runtime, target: &Target) {
    runtime.block_on(async {
        let mut sender = target.connect().await;
        let (status, body) = get(&mut sender, "/whoami").await;
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.contains(test_pki::CLIENT_CN), "{body}");
    });
}

criterion_group!(benches, kube_proxy);
criterion_main!(benches);
