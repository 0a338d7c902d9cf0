//! The peers of the ACME tests (tests/acme_clients.rs): Debian's `pebble` (Let's Encrypt's
//! reference ACME test server, RFC 8555) and `pebble-challtestsrv` (its loopback DNS server,
//! whose records a test sets over HTTP), each on free loopback ports and stopped by PID on
//! drop; the real clients' script, tests/acme/clients.sh, which lego and certbot run against
//! any ACME server, with its records of what was issued and revoked; and the check that
//! every tool the script needs is installed.
//!
//! The script's nginx is its own (tests/acme/clients.sh starts and stops it); the test only
//! checks that the binary is there.
#![allow(dead_code, unreachable_pub)]

use std::fmt;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// How long a peer may take to start answering.
pub const START_WAIT: Duration = Duration::from_secs(30);
/// How long the client script may run (it takes about a minute against pebble).
pub const SCRIPT_WAIT: Duration = Duration::from_secs(900);
/// Debian's certbot.
pub const DEBIAN_CERTBOT: &str = "/usr/bin/certbot";

// --- tools -------------------------------------------------------------------------------

/// The programs the ACME tests run.
#[derive(Debug, Clone)]
pub struct Tools {
    /// Debian's `pebble`.
    pub pebble: PathBuf,
    /// Debian's `pebble-challtestsrv`.
    pub challtestsrv: PathBuf,
    /// The certbots the script runs: Debian's, then PyPI's.
    pub certbots: Vec<PathBuf>,
}

/// Finds every tool the ACME tests need; panics naming each missing one and how to get it
/// (the tests fail rather than skip without them).
pub fn require_tools() -> Tools {
    let mut missing = Vec::new();
    let mut found = |name: &str, how: &str| -> PathBuf {
        match which(name) {
            Some(path) => path,
            None => {
                missing.push(format!("{name} ({how})"));
                PathBuf::from(name)
            }
        }
    };
    let pebble = found("pebble", "Debian: apt-get install pebble");
    let challtestsrv = found("pebble-challtestsrv", "Debian: apt-get install pebble");
    found("lego", "Debian: apt-get install lego");
    found("openssl", "Debian: apt-get install openssl");
    found("curl", "Debian: apt-get install curl");
    found("python3", "Debian: apt-get install python3");
    found("bash", "Debian: apt-get install bash");
    if !Path::new("/usr/sbin/nginx").is_file() {
        missing.push("/usr/sbin/nginx (Debian: apt-get install nginx)".to_owned());
    }
    if !Path::new(DEBIAN_CERTBOT).is_file() {
        missing.push(format!("{DEBIAN_CERTBOT} (Debian: apt-get install certbot)"));
    }
    let pypi = std::env::var_os("KEYSTATION_TEST_CERTBOT_PYPI").map(PathBuf::from);
    match &pypi {
        Some(path) if path.is_file() => {}
        Some(path) => missing.push(format!(
            "KEYSTATION_TEST_CERTBOT_PYPI={} is not a file (scripts/test makes \
             target/certbot-venv: python3 -m venv target/certbot-venv && \
             target/certbot-venv/bin/pip install 'certbot>=2,<6')",
            path.display()
        )),
        None => missing.push(
            "KEYSTATION_TEST_CERTBOT_PYPI, certbot from PyPI (scripts/test sets it: python3 -m \
             venv target/certbot-venv && target/certbot-venv/bin/pip install 'certbot>=2,<6', \
             then KEYSTATION_TEST_CERTBOT_PYPI=$PWD/target/certbot-venv/bin/certbot)"
                .to_owned(),
        ),
    }
    assert!(
        missing.is_empty(),
        "the ACME client tests need tools that are missing:\n  {}\n(scripts/test installs them)",
        missing.join("\n  ")
    );
    let certbots = vec![PathBuf::from(DEBIAN_CERTBOT), pypi.unwrap_or_default()];
    Tools { pebble, challtestsrv, certbots }
}

/// `name` on `PATH`, if there.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| candidate.is_file())
}

// --- ports -------------------------------------------------------------------------------

/// A free TCP port on 127.0.0.1, one the authority's harness (which every test using
/// these peers includes as `harness`) has not handed out before in this process.
pub(crate) use crate::harness::free_port;

/// A port on 127.0.0.1 free for both TCP and UDP (a DNS server binds both).
pub fn free_dns_port() -> u16 {
    for _ in 0..50 {
        let port = free_port();
        if UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("no loopback port free for both TCP and UDP in 50 tries");
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
fn listening(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok()
}

// --- daemons -----------------------------------------------------------------------------

/// A started server whose output goes to a log file; stopped by PID on drop (SIGTERM, then
/// SIGKILL after 5 s).
#[derive(Debug)]
pub struct Daemon {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    /// Starts `command` with stdin closed and stdout and stderr in `log`.
    pub fn start(name: &str, mut command: Command, log: &Path) -> Daemon {
        let out =
            File::create(log).unwrap_or_else(|e| panic!("{name}: create {}: {e}", log.display()));
        let err = out.try_clone().unwrap_or_else(|e| panic!("{name}: clone the log handle: {e}"));
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot start {command:?}: {e}"));
        Daemon { name: name.to_owned(), child: Some(child), log: log.to_owned() }
    }

    /// Its output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `lines` lines of its output, headed by its name.
    pub fn log_tail(&self, lines: usize) -> String {
        format!(
            "---- {} log ({}) ----\n{}",
            self.name,
            self.log.display(),
            tail(&self.log(), lines)
        )
    }

    /// Its exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|child| child.try_wait().ok().flatten())
    }

    /// Polls `ready` every 100 ms until it holds; panics with the log when the process
    /// exits first or [`START_WAIT`] passes.
    pub fn wait_until(&mut self, what: &str, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + START_WAIT;
        loop {
            if let Some(status) = self.exited() {
                panic!("{} exited during startup ({status}):\n{}", self.name, self.log());
            }
            if ready() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: {what} within {START_WAIT:?} did not happen:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops it: SIGTERM to its PID, SIGKILL after 5 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// --- pebble-challtestsrv -----------------------------------------------------------------

/// `pebble-challtestsrv` as the loopback DNS server: every A query answered with 127.0.0.1,
/// no AAAA answers, TXT records set and cleared through its management API
/// (`/set-txt`, `/clear-txt`); its own challenge responders are off.
#[derive(Debug)]
pub struct ChallTestSrv {
    daemon: Daemon,
    /// The DNS port (UDP and TCP) on 127.0.0.1.
    pub dns_port: u16,
    /// The management API's port on 127.0.0.1 (plain HTTP).
    pub management_port: u16,
}

impl ChallTestSrv {
    /// Starts it with its log in `dir`, and waits until its management API listens.
    pub fn start(tools: &Tools, dir: &Path) -> ChallTestSrv {
        let dns_port = free_dns_port();
        let management_port = free_port();
        let mut command = Command::new(&tools.challtestsrv);
        command
            .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
            .args(["-management", &format!("127.0.0.1:{management_port}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""]);
        let mut daemon =
            Daemon::start("pebble-challtestsrv", command, &dir.join("challtestsrv.log"));
        daemon.wait_until("listening on its DNS and management ports", || {
            listening(management_port) && listening(dns_port)
        });
        ChallTestSrv { daemon, dns_port, management_port }
    }

    /// `127.0.0.1:<dns port>`, for an ACME server's resolver and lego's `--dns.resolvers`.
    pub fn dns_server(&self) -> String {
        format!("127.0.0.1:{}", self.dns_port)
    }

    /// `http://127.0.0.1:<management port>`.
    pub fn management_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.management_port)
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        self.daemon.log_tail(40)
    }
}

// --- pebble ------------------------------------------------------------------------------

/// A CA certificate and a TLS server certificate it signed for `localhost` and 127.0.0.1,
/// PEM, made fresh by rcgen (throwaway test keys).
#[derive(Clone)]
pub struct TlsIdentity {
    /// The CA certificate.
    pub ca_pem: String,
    /// The server certificate.
    pub cert_pem: String,
    /// The server key (PKCS #8).
    pub key_pem: String,
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity").field("ca_pem", &self.ca_pem).finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// A CA named `ca_name` and its `localhost` server certificate.
    pub fn new(ca_name: &str) -> TlsIdentity {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::default();
        ca.distinguished_name = DistinguishedName::new();
        ca.distinguished_name.push(DnType::CommonName, ca_name);
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::from_params(&ca, ca_key);
        let key = KeyPair::generate().expect("server key");
        let mut server = CertificateParams::new(vec!["localhost".to_owned()]).expect("server name");
        server.subject_alt_names.push(SanType::IpAddress([127, 0, 0, 1].into()));
        server.distinguished_name = DistinguishedName::new();
        server.distinguished_name.push(DnType::CommonName, "localhost");
        server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = server.signed_by(&key, &issuer).expect("server certificate");
        TlsIdentity { ca_pem: ca_cert.pem(), cert_pem: cert.pem(), key_pem: key.serialize_pem() }
    }
}

/// Debian's pebble with its artificial behaviour off: no random sleeps before validation
/// (`PEBBLE_VA_NOSLEEP=1`), no good nonces rejected (`PEBBLE_WFE_NONCEREJECT=0`), no
/// authorizations reused (`PEBBLE_AUTHZREUSE=0`, so a renewal solves its challenge again).
/// It resolves names with a [`ChallTestSrv`] and validates http-01 and tls-alpn-01 on the
/// ports given.
#[derive(Debug)]
pub struct Pebble {
    daemon: Daemon,
    /// The ACME port on 127.0.0.1.
    pub port: u16,
    /// The management port on 127.0.0.1 (`/roots/0`, `/cert-status-by-serial/<serial>`).
    pub management_port: u16,
    /// PEM: the CA of pebble's TLS certificate and the root of the chains it issues.
    pub ca_bundle: PathBuf,
}

impl Pebble {
    /// Starts pebble with its files in `dir`, waits for its directory, and writes
    /// [`Pebble::ca_bundle`] (its TLS CA, then its issuing root from `/roots/0`).
    pub fn start(
        tools: &Tools,
        dir: &Path,
        dns: &ChallTestSrv,
        http01_port: u16,
        tls_alpn01_port: u16,
    ) -> Pebble {
        Self::start_with_eab(tools, dir, dns, http01_port, tls_alpn01_port, &[])
    }

    /// [`Pebble::start`], requiring an external account binding (RFC 8555 §7.3.4) with
    /// one of `eab_keys` (key ID, base64url HMAC key) when there are any.
    pub fn start_with_eab(
        tools: &Tools,
        dir: &Path,
        dns: &ChallTestSrv,
        http01_port: u16,
        tls_alpn01_port: u16,
        eab_keys: &[(String, String)],
    ) -> Pebble {
        let tls = TlsIdentity::new("Pebble TLS test CA");
        let write = |name: &str, text: &str| -> PathBuf {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
            path
        };
        let tls_ca = write("pebble-tls-ca.pem", &tls.ca_pem);
        let cert = write("pebble-tls.pem", &tls.cert_pem);
        let key = write("pebble-tls.key", &tls.key_pem);
        let port = free_port();
        let management_port = free_port();
        let config = serde_json::json!({
            "pebble": {
                "listenAddress": format!("127.0.0.1:{port}"),
                "managementListenAddress": format!("127.0.0.1:{management_port}"),
                "certificate": cert,
                "privateKey": key,
                "httpPort": http01_port,
                "tlsPort": tls_alpn01_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": !eab_keys.is_empty(),
                "externalAccountMACKeys": eab_keys
                    .iter()
                    .map(|(kid, hmac)| (kid.clone(), serde_json::Value::from(hmac.as_str())))
                    .collect::<serde_json::Map<String, serde_json::Value>>(),
            }
        });
        let config = write("pebble-config.json", &config.to_string());
        let mut command = Command::new(&tools.pebble);
        command
            .arg("-config")
            .arg(&config)
            .args(["-dnsserver", &dns.dns_server()])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .current_dir(dir);
        let mut daemon = Daemon::start("pebble", command, &dir.join("pebble.log"));
        let directory = format!("https://localhost:{port}/dir");
        daemon.wait_until("answering GET /dir", || curl(&tls_ca, &directory).is_ok());
        let root = curl(&tls_ca, &format!("https://localhost:{management_port}/roots/0"))
            .unwrap_or_else(|e| panic!("pebble: GET /roots/0: {e}\n{}", daemon.log()));
        assert!(root.contains("-----BEGIN CERTIFICATE-----"), "pebble: /roots/0 gave {root:?}");
        let ca_bundle = write("pebble-bundle.pem", &format!("{}{root}", tls.ca_pem));
        Pebble { daemon, port, management_port, ca_bundle }
    }

    /// `https://localhost:<port>/dir`.
    pub fn directory_url(&self) -> String {
        format!("https://localhost:{}/dir", self.port)
    }

    /// `https://localhost:<management port>`.
    pub fn management_url(&self) -> String {
        format!("https://localhost:{}", self.management_port)
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        self.daemon.log_tail(60)
    }
}

/// GET `url` with curl, trusting only `ca`: the body, or curl's complaint.
pub fn curl(ca: &Path, url: &str) -> Result<String, String> {
    let output = Command::new("curl")
        .args(["-sS", "-f", "--max-time", "5", "--cacert"])
        .arg(ca)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run curl: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

// --- the client script -------------------------------------------------------------------

/// One run of tests/acme/clients.sh: its environment (the script's header explains each).
#[derive(Debug, Clone)]
pub struct ClientScript {
    /// `ACME_DIRECTORY`.
    pub directory: String,
    /// `ACME_CA_BUNDLE`.
    pub ca_bundle: PathBuf,
    /// `ACME_DNS_SERVER`.
    pub dns_server: String,
    /// `ACME_DNS_MANAGEMENT`.
    pub dns_management: String,
    /// `ACME_HTTP01_PORT`.
    pub http01_port: u16,
    /// `ACME_TLSALPN01_PORT`.
    pub tls_alpn01_port: u16,
    /// `ACME_WORK` (created if missing).
    pub work: PathBuf,
    /// `ACME_CERTBOTS`.
    pub certbots: Vec<PathBuf>,
    /// `ACME_CERT_STATUS_URL`, for pebble.
    pub cert_status_url: Option<String>,
    /// `ACME_EAB_KEYS`: the server requires a binding with one of these keys.
    pub eab_keys: Option<PathBuf>,
    /// `ACME_EAB_SINGLE_USE=1`: the server binds a key to one account only.
    pub eab_single_use: bool,
}

/// A key an account was bound with (a line of `$ACME_WORK/eab`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The external account key's ID.
    pub key_id: String,
    /// `lego`, `certbot1`, `certbot2`, …
    pub client: String,
    /// The DNS name the account ordered.
    pub name: String,
}

/// Writes `keys` (key ID, base64url HMAC key) as `ACME_EAB_KEYS` wants them, to `path`.
pub fn write_eab_keys(path: &Path, keys: &[(String, String)]) {
    let text: String = keys.iter().map(|(kid, hmac)| format!("{kid} {hmac}\n")).collect();
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// A certificate the script obtained (a line of `$ACME_WORK/issued`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// Serial, lowercase hex without leading zeros.
    pub serial: String,
    /// The DNS name it was ordered for.
    pub name: String,
    /// `lego`, `certbot1`, `certbot2`, …
    pub client: String,
}

/// A certificate the script revoked (a line of `$ACME_WORK/revoked`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// Serial, lowercase hex without leading zeros.
    pub serial: String,
    /// The RFC 5280 §5.3.1 reason code the client sent.
    pub reason: u8,
    /// `account` (JWS by the account key) or `certificate-key` (JWS by the certificate's
    /// key, RFC 8555 §7.6).
    pub how: String,
}

/// What a successful run left.
#[derive(Debug, Clone)]
pub struct ScriptRun {
    /// Its output, stdout and stderr interleaved.
    pub output: String,
    /// Every certificate obtained, in order.
    pub issued: Vec<Issued>,
    /// Every revocation, in order.
    pub revoked: Vec<Revoked>,
    /// Every external account key an account was bound with, in order.
    pub bindings: Vec<Binding>,
    /// How long it ran.
    pub elapsed: Duration,
}

/// A failed run: how it ended and its output.
#[derive(Debug, Clone)]
pub struct ScriptFailure {
    /// The exit status, or why there is none.
    pub status: String,
    /// Its output, stdout and stderr interleaved.
    pub output: String,
}

impl fmt::Display for ScriptFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tests/acme/clients.sh failed ({}):\n{}", self.status, self.output)
    }
}

impl ClientScript {
    /// Runs the script (in its own process group, killed whole after [`SCRIPT_WAIT`]) and
    /// reads its records.
    pub fn run(&self) -> Result<ScriptRun, ScriptFailure> {
        std::fs::create_dir_all(&self.work).expect("create the script's work directory");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/acme/clients.sh");
        let log_path = self.work.join("clients.log");
        let log = File::create(&log_path).expect("create the script's log");
        let certbots: Vec<String> =
            self.certbots.iter().map(|path| path.display().to_string()).collect();
        let mut command = Command::new("bash");
        command
            .arg(&script)
            .env("ACME_DIRECTORY", &self.directory)
            .env("ACME_CA_BUNDLE", &self.ca_bundle)
            .env("ACME_DNS_SERVER", &self.dns_server)
            .env("ACME_DNS_MANAGEMENT", &self.dns_management)
            .env("ACME_HTTP01_PORT", self.http01_port.to_string())
            .env("ACME_TLSALPN01_PORT", self.tls_alpn01_port.to_string())
            .env("ACME_WORK", &self.work)
            .env("ACME_CERTBOTS", certbots.join(" "))
            .env_remove("ACME_CERT_STATUS_URL")
            .env_remove("ACME_EAB_KEYS")
            .env("ACME_EAB_SINGLE_USE", if self.eab_single_use { "1" } else { "0" })
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .process_group(0);
        if let Some(url) = &self.cert_status_url {
            command.env("ACME_CERT_STATUS_URL", url);
        }
        if let Some(keys) = &self.eab_keys {
            command.env("ACME_EAB_KEYS", keys);
        }
        let started = Instant::now();
        let mut child =
            command.spawn().unwrap_or_else(|e| panic!("cannot run bash {}: {e}", script.display()));
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for the script") {
                break Ok(status);
            }
            if started.elapsed() > SCRIPT_WAIT {
                // The whole group: bash and the client it is waiting for.
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .stderr(Stdio::null())
                    .status();
                let _ = child.wait();
                break Err(format!("killed after {SCRIPT_WAIT:?}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let elapsed = started.elapsed();
        let output = std::fs::read_to_string(&log_path).unwrap_or_default();
        match status {
            Ok(status) if status.success() => {}
            Ok(status) => return Err(ScriptFailure { status: status.to_string(), output }),
            Err(status) => return Err(ScriptFailure { status, output }),
        }
        // Each record file has three space-separated fields a line.
        let records = |name: &str| -> Vec<[String; 3]> {
            let text = std::fs::read_to_string(self.work.join(name)).unwrap_or_default();
            text.lines()
                .map(|line| {
                    <[&str; 3]>::try_from(line.split(' ').collect::<Vec<_>>())
                        .map(|fields| fields.map(str::to_owned))
                        .unwrap_or_else(|_| {
                            panic!("a malformed line in {}/{name}: {line:?}", self.work.display())
                        })
                })
                .collect()
        };
        let issued = records("issued")
            .into_iter()
            .map(|[serial, name, client]| Issued { serial, name, client })
            .collect();
        let revoked = records("revoked")
            .into_iter()
            .map(|[serial, reason, how]| Revoked {
                reason: reason.parse().unwrap_or_else(|_| panic!("a reason code: {reason:?}")),
                serial,
                how,
            })
            .collect();
        let bindings = records("eab")
            .into_iter()
            .map(|[key_id, client, name]| Binding { key_id, client, name })
            .collect();
        Ok(ScriptRun { output, issued, revoked, bindings, elapsed })
    }
}
