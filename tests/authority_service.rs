//! `keystation authority serve` as a service, with real binaries only: a `keystation
//! station` pointed at the authority's worker service (defguard's protocol, both packages,
//! over TLS with the API's certificate) provisions the software YubiKey that `keystation
//! simulate` serves through the private pcscd; the admin API is used with curl and an admin
//! certificate or an admin token; and the intermediate CA key lives in a PIV slot of the
//! software card and signs every certificate there, checked with `openssl verify`.
//!
//! ```text
//! scripts/with-pcscd scripts/with-postgres \
//!     cargo test --features test-vpcd,test-authority --test authority_service
//! ```
//!
//! The station test keeps the authority's store on PostgreSQL (a database of its own on
//! the server `scripts/with-postgres` starts, `KEYSTATION_TEST_POSTGRES_URL`, made with
//! psql); the admin API runs on SQLite and on PostgreSQL. Certificates are asked for as
//! step's client does: a JWK one-time token signed with the provisioner key decrypted
//! from its `encryptedKey` (keystation-jose) and a CSR made by openssl, posted with curl to
//! `/1.0/sign`; with `KEYSTATION_TEST_STEPCA_DIR` set (scripts/stepca-peer), smallstep's
//! own client (stepca-tool) gets the certificate of the PIV-key test.
//!
//! Needs curl, openssl and psql (Debian's postgresql-client, installed with postgresql);
//! the card tests need pcscd with vpcd (scripts/with-pcscd). A missing one fails the test.
#![cfg(feature = "test-authority")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

#[cfg(feature = "test-vpcd")]
#[path = "support/simulator.rs"]
mod simulator;

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use keystation_jose::{Claims, Header, PrivateJwk, sign_jwt};
use serde_json::Value;

/// The CA keys' and the JWK provisioner's password.
const PASSWORD: &str = "service-test-password";
/// The first (JWK) provisioner, which `authority init` makes.
const PROVISIONER: &str = "admin";
/// How long the authority may take to answer `/health`.
const START_WAIT: Duration = Duration::from_secs(60);
/// Upper bound for anything else to happen (an exit, a log line).
const WAIT: Duration = Duration::from_secs(30);

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.local_addr().unwrap().port()
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A tool the test needs; missing is a failure, not a skip.
fn tool(name: &str) -> PathBuf {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(text(&o.stdout).trim()));
    found.unwrap_or_else(|| {
        panic!("{name} is needed for this test; scripts/test installs it (apt-get install)")
    })
}

/// Runs `command`; panics with its output unless it succeeds. Returns stdout.
fn succeed(command: &mut Command, what: &str) -> String {
    let output: Output = command.output().unwrap_or_else(|e| panic!("running {what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// `keystation` in `home` with an empty environment but `PATH`, `HOME` and the private
/// pcscd's socket, so no configuration from the caller leaks in.
fn keystation(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keystation"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .current_dir(home)
        .stdin(Stdio::null());
    if let Some(socket) = std::env::var_os("PCSCLITE_CSOCK_NAME") {
        command.env("PCSCLITE_CSOCK_NAME", socket);
    }
    command
}

/// Sends SIGTERM to `child` by PID and waits (10 s, then SIGKILL); returns whether it
/// exited with status 0 on its own.
fn terminate(child: &mut Child) -> bool {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// A fresh database on the PostgreSQL server of `scripts/with-postgres`, made with psql;
/// returns its URL. Fails the test when no server is configured.
fn postgres_database() -> String {
    let Ok(server) = std::env::var("KEYSTATION_TEST_POSTGRES_URL") else {
        panic!(
            "KEYSTATION_TEST_POSTGRES_URL is not set: this test keeps the authority's store on \
             PostgreSQL; run it under scripts/with-postgres (scripts/test does)"
        );
    };
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "keystation_service_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos()
    );
    succeed(
        Command::new(tool("psql"))
            .args(["-v", "ON_ERROR_STOP=1", "-q", &server, "-c"])
            .arg(format!("CREATE DATABASE {name}"))
            .stdin(Stdio::null()),
        "psql CREATE DATABASE",
    );
    // The server's URL with its database (the path after the host) replaced.
    let after_scheme = server.find("://").map_or(0, |i| i + 3);
    let (base, query) = match server.find('?') {
        Some(q) => (&server[..q], &server[q..]),
        None => (server.as_str(), ""),
    };
    let path_start = base[after_scheme..].find('/').map_or(base.len(), |i| after_scheme + i);
    format!("{}/{name}{query}", &base[..path_start])
}

/// An authority initialised in `home/authority`, served (once [`serve`](Self::serve)d) on
/// free loopback ports, stopped by PID on drop.
struct Authority {
    home: PathBuf,
    dir: PathBuf,
    password: PathBuf,
    address: String,
    grpc_address: String,
    server: Option<Child>,
    log: PathBuf,
}

impl Authority {
    /// `keystation authority init` with the test's name, names and password, and `extra`.
    fn init(home: &Path, extra: &[&str]) -> Self {
        let dir = home.join("authority");
        let password = home.join("authority-password");
        std::fs::write(&password, format!("{PASSWORD}\n")).unwrap();
        let address = format!("127.0.0.1:{}", free_port());
        let grpc_address = format!("127.0.0.1:{}", free_port());
        let said = succeed(
            keystation(home)
                .args(["authority", "init", "--dir"])
                .arg(&dir)
                .args(["--name", "Service Test", "--dns", "127.0.0.1", "--dns", "localhost"])
                .args(["--address", &address, "--provisioner", PROVISIONER])
                .arg("--password-file")
                .arg(&password)
                .args(extra),
            "keystation authority init",
        );
        assert!(said.contains(&format!("url:         https://{address}")), "{said}");
        Self {
            home: home.to_owned(),
            dir,
            password,
            address,
            grpc_address,
            server: None,
            log: home.join("authority.log"),
        }
    }

    /// `keystation authority ARGS --dir D`: the management commands on the store.
    fn cli(&self, args: &[&str]) -> String {
        succeed(
            keystation(&self.home).arg("authority").args(args).arg("--dir").arg(&self.dir),
            &format!("keystation authority {args:?}"),
        )
    }

    /// `keystation authority serve` with `--grpc-address` and `extra`; returns once
    /// `/health` answers.
    fn serve(&mut self, extra: &[&str]) {
        let out = std::fs::File::create(&self.log).unwrap();
        let err = out.try_clone().unwrap();
        let child = keystation(&self.home)
            .args(["authority", "serve", "--dir"])
            .arg(&self.dir)
            .arg("--password-file")
            .arg(&self.password)
            .args(["--grpc-address", &self.grpc_address])
            .args(extra)
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the authority: {e}"));
        self.server = Some(child);
        self.wait_healthy();
    }

    fn url(&self) -> String {
        format!("https://{}", self.address)
    }

    fn root(&self) -> PathBuf {
        self.dir.join("certs/root_ca.crt")
    }

    fn intermediate(&self) -> PathBuf {
        self.dir.join("certs/intermediate_ca.crt")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `GET /health` with curl, trusting the authority's root only.
    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + START_WAIT;
        loop {
            let answer = self.call("GET", "/health", &Cred::None, None);
            if answer.status == 200 && answer.json()["status"] == "ok" {
                return;
            }
            if let Some(child) = self.server.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("the authority exited ({status}); its log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "the authority did not answer /health within {START_WAIT:?}; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// An HTTPS request with curl (the authority's root as the only trust anchor); a body
    /// is sent as JSON.
    fn call(&self, method: &str, path: &str, cred: &Cred<'_>, body: Option<&Value>) -> Answer {
        let mut command = Command::new(tool("curl"));
        command
            .args(["-sS", "--max-time", "30", "-X", method, "-w", "\n%{http_code}", "--cacert"])
            .arg(self.root())
            .stdin(Stdio::null());
        match cred {
            Cred::None => {}
            Cred::Cert(cert, key) => {
                command.arg("--cert").arg(cert).arg("--key").arg(key);
            }
            Cred::Bearer(token) => {
                command.args(["-H", &format!("Authorization: Bearer {token}")]);
            }
        }
        if let Some(body) = body {
            command
                .args(["-H", "Content-Type: application/json", "--data-binary"])
                .arg(body.to_string());
        }
        let output = command.arg(format!("{}{path}", self.url())).output().unwrap();
        let out = text(&output.stdout);
        let (body, status) = out.rsplit_once('\n').unwrap_or(("", out.as_str()));
        Answer {
            curl_ok: output.status.success(),
            curl_error: text(&output.stderr),
            status: status.trim().parse().unwrap_or(0),
            body: body.to_owned(),
        }
    }

    /// `authority job show ID`, parsed.
    fn job_show(&self, id: u32) -> Value {
        let json = self.cli(&["job", "show", &id.to_string()]);
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("job show: {e}: {json}"))
    }
}

impl Drop for Authority {
    fn drop(&mut self) {
        if let Some(mut child) = self.server.take() {
            let clean = terminate(&mut child);
            if !std::thread::panicking() {
                assert!(clean, "the authority did not stop cleanly on SIGTERM:\n{}", self.log());
            }
        }
    }
}

/// How a request authenticates.
enum Cred<'a> {
    None,
    /// A client certificate (leaf and intermediate, PEM) and its key.
    Cert(&'a Path, &'a Path),
    Bearer(&'a str),
}

/// What curl got.
#[derive(Debug)]
struct Answer {
    curl_ok: bool,
    curl_error: String,
    status: u16,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// Asserts the status; returns the JSON body.
    fn expect(&self, status: u16, what: &str) -> Value {
        assert_eq!(self.status, status, "{what}: {self:#?}");
        self.json()
    }
}

/// The JWK provisioner's key, decrypted from its `encryptedKey` with the password, as
/// step's client does to sign its one-time tokens.
struct JwkSigner {
    key: PrivateJwk,
    kid: String,
    fingerprint: String,
}

impl JwkSigner {
    fn of(authority: &Authority) -> Self {
        let listing = authority.cli(&["provisioner", "list"]);
        let line = listing
            .lines()
            .find(|l| l.starts_with(&format!("{PROVISIONER}\t")))
            .unwrap_or_else(|| panic!("no provisioner {PROVISIONER} in\n{listing}"));
        let config: Value = serde_json::from_str(line.splitn(3, '\t').nth(2).unwrap()).unwrap();
        let kid = config["key"]["kid"].as_str().unwrap().to_owned();
        let encrypted = config["encryptedKey"].as_str().unwrap();
        let key = PrivateJwk::decrypt(encrypted, PASSWORD.as_bytes()).unwrap();
        let defaults: Value = serde_json::from_str(
            &std::fs::read_to_string(authority.dir.join("config/defaults.json")).unwrap(),
        )
        .unwrap();
        let fingerprint = defaults["fingerprint"].as_str().unwrap().to_owned();
        Self { key, kid, fingerprint }
    }

    /// A step one-time token for `audience` with subject `sub` and `sans`, valid 5 min.
    fn token(&self, audience: &str, sub: &str, sans: &[&str]) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let now = unix_now();
        let mut claims = Claims::default();
        claims.iss = Some(PROVISIONER.into());
        claims.sub = Some(sub.into());
        claims.aud = vec![audience.into()];
        claims.iat = Some(now);
        claims.nbf = Some(now);
        claims.exp = Some(now + 300);
        claims.jti = Some(format!(
            "{}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
        ));
        claims.sans = sans.iter().map(|s| (*s).to_owned()).collect();
        claims.sha = Some(self.fingerprint.clone());
        sign_jwt(&self.key, &Header::jwt(Some(self.kid.clone())), &claims).unwrap()
    }
}

/// A P-256 key and CSR for `cn` made by openssl, certified over `/1.0/sign` with a JWK
/// token; returns `(chain file, key file)`: the leaf and the intermediate, PEM.
fn issue(authority: &Authority, signer: &JwkSigner, cn: &str) -> (PathBuf, PathBuf) {
    let work = authority.home.join(format!("issued-{cn}"));
    std::fs::create_dir_all(&work).unwrap();
    let (key, csr, chain) = (work.join("key.pem"), work.join("csr.pem"), work.join("chain.pem"));
    succeed(
        Command::new(tool("openssl"))
            .args(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"])
            .args(["-nodes", "-subj", &format!("/CN={cn}"), "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&csr)
            .stdin(Stdio::null()),
        "openssl req",
    );
    let token = signer.token(&format!("{}/1.0/sign", authority.url()), cn, &[cn]);
    let body = serde_json::json!({ "csr": std::fs::read_to_string(&csr).unwrap(), "ott": token });
    let issued = authority.call("POST", "/1.0/sign", &Cred::None, Some(&body));
    let answer =
        issued.expect(201, &format!("/1.0/sign for {cn}; authority log:\n{}", authority.log()));
    let pems: Vec<&str> =
        answer["certChain"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert_eq!(pems.len(), 2, "{answer}");
    assert_eq!(pems[0], answer["crt"].as_str().unwrap());
    std::fs::write(&chain, pems.concat()).unwrap();
    (chain, key)
}

/// `openssl verify` of the leaf in `chain` against the authority's root, through its
/// intermediate; returns the leaf's subject line.
fn verify_with_openssl(authority: &Authority, chain: &Path) -> String {
    let openssl = tool("openssl");
    let leaf = chain.with_extension("leaf.pem");
    succeed(
        Command::new(&openssl).arg("x509").arg("-in").arg(chain).arg("-out").arg(&leaf),
        "openssl x509",
    );
    let verified = succeed(
        Command::new(&openssl)
            .arg("verify")
            .arg("-CAfile")
            .arg(authority.root())
            .arg("-untrusted")
            .arg(authority.intermediate())
            .arg(&leaf),
        "openssl verify",
    );
    assert!(verified.trim_end().ends_with(": OK"), "{verified}");
    succeed(
        Command::new(&openssl).arg("x509").arg("-in").arg(&leaf).args(["-noout", "-subject"]),
        "subject",
    )
}

/// The admin API on the store `database` (`None`: the state directory's SQLite file).
fn admin_api(database: Option<&str>) {
    let home = tempfile::tempdir().unwrap();
    let extra: Vec<&str> = database.map(|d| vec!["--database", d]).unwrap_or_default();
    let mut authority = Authority::init(home.path(), &extra);
    authority.serve(&[]);
    let signer = JwkSigner::of(&authority);

    // An admin's certificate: issued through the JWK provisioner, its CN made an admin of
    // that provisioner; and a certificate of the same CA whose CN is no admin.
    let (admin_cert, admin_key) = issue(&authority, &signer, "ops-admin");
    let said = authority.cli(&["admin", "add", "ops-admin", "--provisioner", PROVISIONER]);
    assert!(said.contains("added admin ops-admin"), "{said}");
    let listed = authority.cli(&["admin", "list"]);
    assert!(
        listed.lines().any(|l| l.starts_with(&format!("ops-admin\t{PROVISIONER}\t"))),
        "{listed}"
    );
    let (other_cert, other_key) = issue(&authority, &signer, "someone-else");
    let admin = Cred::Cert(&admin_cert, &admin_key);

    // Listing the provisioners: the JWK provisioner as ca.json has it.
    let listing = authority.call("GET", "/admin/provisioners", &admin, None).expect(200, "list");
    let provisioners = listing["provisioners"].as_array().unwrap();
    assert!(
        provisioners.iter().any(|p| p["name"] == PROVISIONER && p["type"] == "JWK"),
        "{listing}"
    );
    let admins = authority.call("GET", "/1.0/admin/admins", &admin, None).expect(200, "admins");
    assert!(
        admins["admins"].as_array().unwrap().iter().any(|a| a["subject"] == "ops-admin"),
        "{admins}"
    );

    // A job over the API; the CLI sees it, and the API shows it.
    let new_job = serde_json::json!({
        "firstName": "Grace", "lastName": "Hopper", "email": "grace@example.com",
        "worker": "station-7",
    });
    let job = authority.call("POST", "/admin/jobs", &admin, Some(&new_job)).expect(201, "add job");
    let id = u32::try_from(job["id"].as_u64().unwrap()).unwrap();
    assert_eq!(job["status"], "queued", "{job}");
    assert_eq!(job["email"], "grace@example.com");
    assert_eq!(job["worker"], "station-7");
    let shown = authority.job_show(id);
    assert_eq!(shown, job, "job show and the API's answer differ");
    let listed = authority.cli(&["job", "list"]);
    assert!(
        listed.lines().any(|l| l.starts_with(&format!("{id}\tqueued\tstation-7\tGrace Hopper"))),
        "{listed}"
    );
    let jobs = authority.call("GET", "/admin/jobs", &admin, None).expect(200, "list jobs");
    assert!(jobs["jobs"].as_array().unwrap().iter().any(|j| j["id"] == id), "{jobs}");
    let one = authority.call("GET", &format!("/admin/jobs/{id}"), &admin, None).expect(200, "job");
    assert_eq!(one, job);
    authority.call("GET", "/admin/jobs/999999", &admin, None).expect(404, "unknown job");
    let bad = serde_json::json!({ "firstName": "A", "lastName": "B", "email": "nowhere" });
    authority.call("POST", "/admin/jobs", &admin, Some(&bad)).expect(400, "a job without e-mail");

    // Refusals: a certificate whose CN is no admin (403), no credential (401), a
    // self-signed certificate claiming the admin's name (the handshake fails).
    let other = Cred::Cert(&other_cert, &other_key);
    for (method, path) in [("GET", "/admin/provisioners"), ("GET", "/admin/jobs")] {
        let refused = authority.call(method, path, &other, None).expect(403, "not an admin");
        assert_eq!(refused["status"], 403, "{refused}");
        assert!(refused["message"].as_str().unwrap().contains("someone-else"), "{refused}");
        let refused = authority.call(method, path, &Cred::None, None).expect(401, "nobody");
        assert_eq!(refused["status"], 401, "{refused}");
    }
    authority.call("POST", "/admin/jobs", &other, Some(&new_job)).expect(403, "add as non-admin");
    authority.call("POST", "/admin/jobs", &Cred::None, Some(&new_job)).expect(401, "add as nobody");
    let forged_dir = home.path().join("forged");
    std::fs::create_dir_all(&forged_dir).unwrap();
    let (forged_cert, forged_key) = (forged_dir.join("cert.pem"), forged_dir.join("key.pem"));
    succeed(
        Command::new(tool("openssl"))
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"])
            .args(["-nodes", "-days", "1", "-subj", "/CN=ops-admin", "-keyout"])
            .arg(&forged_key)
            .arg("-out")
            .arg(&forged_cert)
            .stdin(Stdio::null()),
        "openssl req -x509",
    );
    let forged = authority.call("GET", "/admin/jobs", &Cred::Cert(&forged_cert, &forged_key), None);
    assert!(
        !forged.curl_ok && forged.status != 200,
        "a self-signed certificate was let in: {forged:#?}"
    );
    eprintln!("self-signed admin certificate refused: {}", forged.curl_error.trim());

    // An admin token: a JWT of the admin's provisioner for the admin API, with the admin
    // as its subject. Once only; another subject is refused.
    let audience = format!("{}/1.0/admin", authority.url());
    let token = signer.token(&audience, "ops-admin", &[]);
    let bearer = Cred::Bearer(&token);
    let jobs = authority.call("GET", "/admin/jobs", &bearer, None).expect(200, "admin token");
    assert!(jobs["jobs"].as_array().unwrap().iter().any(|j| j["id"] == id), "{jobs}");
    authority.call("GET", "/admin/jobs", &bearer, None).expect(401, "admin token replayed");
    let token = signer.token(&audience, "someone-else", &[]);
    authority
        .call("GET", "/admin/jobs", &Cred::Bearer(&token), None)
        .expect(403, "non-admin token");
    // A token for another endpoint is no admin token.
    let token = signer.token(&format!("{}/1.0/sign", authority.url()), "ops-admin", &[]);
    authority.call("GET", "/admin/jobs", &Cred::Bearer(&token), None).expect(401, "a sign token");

    let log = authority.log();
    assert!(!log.contains(PASSWORD), "the password reached the log:\n{log}");
}

#[test]
fn admin_api_with_an_admin_certificate_or_token_on_sqlite() {
    admin_api(None);
}

#[test]
fn admin_api_with_an_admin_certificate_or_token_on_postgres() {
    let database = postgres_database();
    admin_api(Some(&database));
}

#[cfg(feature = "test-vpcd")]
mod card {
    //! The tests that need the software card in the private pcscd's vpcd reader.

    use super::simulator::{SERIAL, Simulator};
    use super::*;

    /// The software card's factory PIN and management key.
    const PIN: &str = "123456";
    const DEFAULT_MGMT_KEY: &str = "010203040506070801020304050607080102030405060708";
    /// The stations' static token.
    const STATION_TOKEN: &str = "kst-station-token-7d2f41c9a0e8";
    /// Upper bound for one provisioning job (keys generated on the card, debug build).
    const JOB_TIMEOUT: Duration = Duration::from_secs(180);

    /// A running `keystation station`; stderr goes to `log`; killed on drop.
    struct Station {
        child: Child,
        log: PathBuf,
    }

    impl Station {
        /// `keystation station` against the authority's worker service over TLS (the
        /// authority's root as the CA file), with `token_file`, id `id` and `extra`.
        fn start(
            authority: &Authority,
            reader: &str,
            token_file: &Path,
            id: &str,
            extra: &[&str],
        ) -> Self {
            let log = authority.home.join(format!("station-{id}.log"));
            let grpc = format!("https://{}", authority.grpc_address);
            let child = keystation(&authority.home)
                .arg("station")
                .args(["--grpc", &grpc, "--ca-file"])
                .arg(authority.root())
                .arg("--token-file")
                .arg(token_file)
                .args(["--id", id, "--poll-interval", "100ms", "--card", "pcsc"])
                .args(["--reader", reader, "--pin-policy", "keep", "--smartcard-retries", "5"])
                .args(extra)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .expect("starting keystation station");
            Self { child, log }
        }

        fn log(&self) -> String {
            std::fs::read_to_string(&self.log).unwrap_or_default()
        }

        /// Waits for the station to exit on its own (at most [`WAIT`]).
        fn exit_code(&mut self) -> Option<i32> {
            let deadline = Instant::now() + WAIT;
            loop {
                if let Some(status) = self.child.try_wait().unwrap() {
                    return status.code();
                }
                assert!(Instant::now() < deadline, "the station did not exit:\n{}", self.log());
                std::thread::sleep(Duration::from_millis(50));
            }
        }

        /// Polls `job show` until the job is no longer queued; fails if the station exits.
        fn wait_for(&mut self, authority: &Authority, job: u32) -> Value {
            let deadline = Instant::now() + JOB_TIMEOUT;
            loop {
                let shown = authority.job_show(job);
                if shown["status"] != "queued" {
                    return shown;
                }
                if let Some(status) = self.child.try_wait().unwrap() {
                    panic!(
                        "the station exited ({status}) before job {job} was reported:\n{}\n\
                         ---- authority log ----\n{}",
                        self.log(),
                        authority.log()
                    );
                }
                assert!(
                    Instant::now() < deadline,
                    "job {job} not reported within {JOB_TIMEOUT:?}; station log:\n{}\n\
                     ---- authority log ----\n{}",
                    self.log(),
                    authority.log()
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }

        /// SIGTERM; the station must exit 0.
        fn stop(mut self) {
            let clean = terminate(&mut self.child);
            assert!(clean, "the station did not exit 0 on SIGTERM:\n{}", self.log());
        }
    }

    impl Drop for Station {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// What a provisioned job must show: done, the OpenPGP certificate, the card's SSH
    /// key and its serial, and no error.
    fn check_done(job: &Value, worker: &str) {
        assert_eq!(job["status"], "done", "{job:#}");
        assert_eq!(job["finishedBy"], worker, "{job:#}");
        assert_eq!(job["yubikeySerial"], SERIAL.to_string(), "{job:#}");
        let public_key = job["publicKey"].as_str().unwrap();
        assert!(
            public_key.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----")
                && public_key.trim_end().ends_with("-----END PGP PUBLIC KEY BLOCK-----"),
            "{job:#}"
        );
        let ssh_key = job["sshKey"].as_str().unwrap();
        assert!(ssh_key.starts_with("ssh-ed25519 "), "{job:#}");
        assert!(job["error"].is_null() || job["error"] == "", "{job:#}");
        // Times in RFC 3339, as step-ca's JSON has them.
        for time in [&job["createdAt"], &job["finishedAt"]] {
            let time = time.as_str().unwrap_or_else(|| panic!("{job:#}"));
            assert!(
                time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
                "{job:#}"
            );
        }
    }

    /// `ssh-keygen -l` accepts the reported SSH key.
    fn check_ssh_key(dir: &Path, key: &str) {
        let file = dir.join("reported-ssh-key.pub");
        std::fs::write(&file, format!("{}\n", key.trim())).unwrap();
        let line = succeed(
            Command::new(tool("ssh-keygen")).arg("-l").arg("-f").arg(&file),
            "ssh-keygen -l",
        );
        assert!(line.contains("SHA256:") && line.trim_end().ends_with("(ED25519)"), "{line}");
    }

    #[test]
    fn a_station_pointed_at_the_authority_provisions_the_software_card() {
        let simulator = Simulator::start();
        let home = tempfile::tempdir().unwrap();
        let database = postgres_database();
        let mut authority = Authority::init(home.path(), &["--database", &database]);
        let tokens = home.path().join("station-token");
        std::fs::write(&tokens, format!("{STATION_TOKEN}\n")).unwrap();
        let said = authority.cli(&[
            "provisioner",
            "add",
            "stations",
            "--type",
            "token",
            "--token-file",
            tokens.to_str().unwrap(),
            "--operation",
            "takeJobs",
        ]);
        assert!(said.contains("added provisioner stations"), "{said}");
        let listed = authority.cli(&["provisioner", "list"]);
        assert!(!listed.contains(STATION_TOKEN), "the token itself was stored:\n{listed}");
        authority.serve(&[]);
        assert!(
            authority.log().contains(&authority.grpc_address),
            "the log names no worker service address:\n{}",
            authority.log()
        );

        // An admin, to read the jobs over the API.
        let signer = JwkSigner::of(&authority);
        let (admin_cert, admin_key) = issue(&authority, &signer, "ops-admin");
        authority.cli(&["admin", "add", "ops-admin", "--provisioner", PROVISIONER]);
        let admin = Cred::Cert(&admin_cert, &admin_key);

        let id = |out: String| -> u32 {
            out.trim().parse().unwrap_or_else(|_| panic!("job add printed {out:?}"))
        };
        let job = id(authority.cli(&[
            "job",
            "add",
            "--first-name",
            "Ada",
            "--last-name",
            "Lovelace",
            "--email",
            "ada@example.com",
        ]));
        assert_eq!(authority.job_show(job)["status"], "queued");

        // A wrong token: the worker service answers UNAUTHENTICATED, the station says so
        // and stops (status 2, a configuration error); the job stays queued.
        let wrong = home.path().join("wrong-token");
        std::fs::write(&wrong, "kst-not-the-station-token\n").unwrap();
        let mut refused = Station::start(&authority, &simulator.reader, &wrong, "intruder", &[]);
        assert_eq!(refused.exit_code(), Some(2), "{}", refused.log());
        let log = refused.log();
        assert!(
            log.contains(
                "rejected the authorization token (Unauthenticated: missing or invalid worker token)"
            ),
            "{log}"
        );
        assert!(!log.contains("kst-not-the-station-token"), "the token reached the log:\n{log}");
        assert!(authority.log().contains("worker service: token refused"), "{}", authority.log());
        assert_eq!(authority.job_show(job)["status"], "queued");
        drop(refused);

        // The station provisions the card and reports the job.
        let mut station =
            Station::start(&authority, &simulator.reader, &tokens, "e2e-station", &[]);
        let done = station.wait_for(&authority, job);
        check_done(&done, "e2e-station");
        assert!(done["worker"].is_null(), "queued for any station: {done:#}");
        check_ssh_key(home.path(), done["sshKey"].as_str().unwrap());
        let log = station.log();
        assert!(log.contains(&format!("job {job} received")), "{log}");
        assert!(!log.contains(STATION_TOKEN), "the token reached the log:\n{log}");
        station.stop();
        // The API says the same as the command line.
        let api = authority
            .call("GET", &format!("/admin/jobs/{job}"), &admin, None)
            .expect(200, "the job over the API");
        assert_eq!(api, done, "the API and `job show` differ");
        let listed = authority.cli(&["job", "list"]);
        assert!(
            listed.lines().any(|l| l.starts_with(&format!("{job}\tdone\t*\tAda Lovelace"))),
            "{listed}"
        );

        // defguard's legacy package (`worker.WorkerService`), for a job bound to that
        // station; added over the API.
        let new_job = serde_json::json!({
            "firstName": "Charles", "lastName": "Babbage", "email": "charles@example.com",
            "worker": "legacy-station",
        });
        let added = authority.call("POST", "/admin/jobs", &admin, Some(&new_job));
        let legacy_job =
            u32::try_from(added.expect(201, "add job")["id"].as_u64().unwrap()).unwrap();
        let mut legacy = Station::start(
            &authority,
            &simulator.reader,
            &tokens,
            "legacy-station",
            &["--grpc-package", "worker"],
        );
        let done = legacy.wait_for(&authority, legacy_job);
        check_done(&done, "legacy-station");
        assert_eq!(done["worker"], "legacy-station", "{done:#}");
        assert_eq!(done["email"], "charles@example.com");
        let log = legacy.log();
        assert!(log.contains(&format!("job {legacy_job} received")), "{log}");
        legacy.stop();

        let log = authority.log();
        assert!(log.contains("station registered"), "{log}");
        assert!(log.contains("job reported"), "{log}");
        assert!(!log.contains(STATION_TOKEN), "the token reached the authority's log:\n{log}");
        drop(authority);
        drop(simulator);
    }

    #[test]
    fn the_intermediate_key_in_a_piv_slot_of_the_software_card_signs_certificates() {
        let simulator = Simulator::start();
        let home = tempfile::tempdir().unwrap();
        let (pin, mgmt) = (home.path().join("pin"), home.path().join("mgmt"));
        std::fs::write(&pin, format!("{PIN}\n")).unwrap();
        std::fs::write(&mgmt, format!("{DEFAULT_MGMT_KEY}\n")).unwrap();
        let mut authority = Authority::init(
            home.path(),
            &[
                "--reader",
                &simulator.reader,
                "--intermediate-key-slot",
                "9c",
                "--pin-file",
                pin.to_str().unwrap(),
                "--management-key-file",
                mgmt.to_str().unwrap(),
            ],
        );
        // No key file: the key is on the card.
        assert!(!authority.dir.join("secrets/intermediate_ca_key").exists());
        assert!(authority.dir.join("secrets/root_ca_key").exists());
        let settings =
            std::fs::read_to_string(authority.dir.join("config/authority.toml")).unwrap();
        assert!(settings.contains("piv-slot") && settings.contains("9c"), "{settings}");

        // The card attests that the key in 9c was generated on it, and it is the
        // intermediate certificate's key.
        let openssl = tool("openssl");
        let attestation_root = home.path().join("softcard-attestation-root.pem");
        std::fs::write(&attestation_root, keystation_softcard::piv::test_attestation_root_pem())
            .unwrap();
        let attested = home.path().join("attested-9c.pem");
        succeed(
            keystation(home.path())
                .args(["--reader", &simulator.reader, "piv", "attest", "9c", "--roots"])
                .arg(&attestation_root)
                .arg("--out")
                .arg(&attested),
            "keystation piv attest 9c",
        );
        let public_key = |cert: &Path| {
            succeed(
                Command::new(&openssl).arg("x509").arg("-in").arg(cert).args(["-noout", "-pubkey"]),
                "openssl x509 -pubkey",
            )
        };
        assert_eq!(public_key(&attested), public_key(&authority.intermediate()));

        let pin_arg = pin.to_str().unwrap().to_owned();
        authority.serve(&["--pin-file", &pin_arg]);

        // Certificates issued through the card: by smallstep's client when the reference
        // peer is there, and with a JWK token made here.
        let mut chains = Vec::new();
        if let Some(peer) = std::env::var_os("KEYSTATION_TEST_STEPCA_DIR") {
            let work = home.path().join("stepca");
            std::fs::create_dir_all(&work).unwrap();
            succeed(
                Command::new(PathBuf::from(peer).join("stepca-tool"))
                    .env("STEPPATH", &authority.dir)
                    .current_dir(&work)
                    .args(["certificate", "--password-file"])
                    .arg(&authority.password)
                    .args(["--san", "localhost", "localhost", "leaf.crt", "leaf.key"])
                    .stdin(Stdio::null()),
                "stepca-tool certificate",
            );
            chains.push(work.join("leaf.crt"));
        } else {
            eprintln!(
                "KEYSTATION_TEST_STEPCA_DIR is not set: stepca-tool's part is left out \
                 (scripts/stepca-peer builds it)"
            );
        }
        let signer = JwkSigner::of(&authority);
        for cn in ["card-signed-1", "card-signed-2"] {
            chains.push(issue(&authority, &signer, cn).0);
        }
        for chain in &chains {
            let subject = verify_with_openssl(&authority, chain);
            assert!(subject.contains("CN"), "{subject}");
        }
        let log = authority.log();
        assert_eq!(log.matches("certificate issued").count(), chains.len(), "{log}");
        drop(authority);
        drop(simulator);
    }
}
