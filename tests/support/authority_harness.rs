//! What the authority's end-to-end tests share: a `keystation authority` state directory
//! on SQLite or on a fresh PostgreSQL database, its servers (started, waited for, killed),
//! an HTTPS client of its API, JWK tokens made by keystation-jose, PyJWT and jwcrypto, and
//! certificate requests.
#![allow(dead_code)]

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use keystation_jose::{Claims, Header, PrivateJwk, sign_jwt};
use keystation_store::Store;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The provisioner password (and the CA keys').
pub(crate) const PASSWORD: &str = "negative-test-password";
/// The JWK provisioner `init` makes.
pub(crate) const PROVISIONER: &str = "admin";
/// How long the authority may take to answer `/health`.
pub(crate) const START_WAIT: Duration = Duration::from_secs(60);
/// Lifetime of the tokens the tests make: within the authority's 5-minute bound.
pub(crate) const LIFETIME: i64 = 240;

// --- stores ------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engine {
    Sqlite,
    Postgres,
}

/// The store an authority uses: its default SQLite file, or a fresh PostgreSQL database
/// on the server `KEYSTATION_TEST_POSTGRES_URL` names, dropped on drop.
pub(crate) struct Database {
    /// `--database`, for PostgreSQL.
    pub url: Option<String>,
    /// The server's URL and the database's name, to drop it.
    pub postgres: Option<(String, String)>,
}

/// `url` with its database (the path after the host) replaced by `database`.
pub(crate) fn with_database(url: &str, database: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let path_start = base[after_scheme..].find('/').map_or(base.len(), |i| after_scheme + i);
    format!("{}/{database}{query}", &base[..path_start])
}

/// Runs one SQL statement with psql on `server_url`.
pub(crate) fn psql(server_url: &str, sql: &str) -> Result<(), String> {
    let output = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", server_url, "-c", sql])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run psql (Debian: postgresql-client): {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("psql {sql:?}: {}", String::from_utf8_lossy(&output.stderr)))
    }
}

impl Database {
    pub(crate) fn new(engine: Engine) -> Self {
        match engine {
            Engine::Sqlite => Self { url: None, postgres: None },
            Engine::Postgres => {
                let server = std::env::var("KEYSTATION_TEST_POSTGRES_URL").unwrap_or_else(|_| {
                    panic!(
                        "KEYSTATION_TEST_POSTGRES_URL is not set: the PostgreSQL half of the \
                         authority's negative tests needs a server; run them under \
                         scripts/with-postgres, e.g. `scripts/with-postgres cargo test \
                         --features test-authority --test authority_negative`"
                    )
                });
                static NEXT: AtomicU64 = AtomicU64::new(0);
                let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
                let name = format!(
                    "keystation_negative_{}_{}_{nanos}",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed)
                );
                psql(&server, &format!("CREATE DATABASE {name}")).unwrap();
                Self { url: Some(with_database(&server, &name)), postgres: Some((server, name)) }
            }
        }
    }

    /// The store's URL for an authority in `state`.
    pub(crate) fn store_url(&self, state: &Path) -> String {
        self.url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", state.join("db/authority.sqlite").display()))
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some((server, name)) = &self.postgres {
            let dropped = psql(server, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            if let Err(e) = dropped
                && !std::thread::panicking()
            {
                panic!("{e}");
            }
        }
    }
}

// --- the authority and its servers -------------------------------------------------------

/// A free TCP port on 127.0.0.1 (bound and released), never one this process has handed
/// out before: tests run in parallel, and between this call and a server binding the port
/// the kernel could hand the same port to another test's call.
pub(crate) fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    for _ in 0..1000 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        if handed_out.insert(port) {
            return port;
        }
    }
    panic!("no loopback port not handed out before in 1000 tries");
}

pub(crate) fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// `keystation` with an empty environment (but `PATH`) in `dir`.
pub(crate) fn keystation(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keystation"));
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()))
        .stdin(Stdio::null());
    command
}

/// An initialised state directory and its store.
pub(crate) struct Authority {
    pub dir: tempfile::TempDir,
    pub state: PathBuf,
    pub password_file: PathBuf,
    pub database: Database,
    pub root_pem: String,
}

impl Authority {
    /// `keystation authority init` for `127.0.0.1:port` (and `--database` on PostgreSQL).
    pub(crate) fn init(engine: Engine, port: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("authority");
        let password_file = dir.path().join("password");
        std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
        let database = Database::new(engine);
        let mut command = keystation(dir.path());
        command
            .args(["authority", "init", "--dir"])
            .arg(&state)
            .args(["--name", "Negative Test", "--dns", "127.0.0.1", "--dns", "localhost"])
            .args(["--address", &format!("127.0.0.1:{port}")])
            .args(["--provisioner", PROVISIONER, "--password-file"])
            .arg(&password_file);
        if let Some(url) = &database.url {
            command.args(["--database", url]);
        }
        let output = command.output().expect("run keystation authority init");
        assert!(
            output.status.success(),
            "keystation authority init failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let root_pem = std::fs::read_to_string(state.join("certs/root_ca.crt")).unwrap();
        Self { dir, state, password_file, database, root_pem }
    }

    /// `keystation authority serve` on `127.0.0.1:port`; its output goes to `<name>.log`.
    pub(crate) fn serve(&self, port: u16, name: &str) -> Server {
        let log = self.dir.path().join(format!("{name}.log"));
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let err = out.try_clone().unwrap();
        let mut command = keystation(self.dir.path());
        command
            .args(["authority", "serve", "--dir"])
            .arg(&self.state)
            .arg("--password-file")
            .arg(&self.password_file)
            .args(["--address", &format!("127.0.0.1:{port}")]);
        if let Some(url) = &self.database.url {
            command.args(["--database", url]);
        }
        let child = command
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start keystation authority serve: {e}"));
        Server { child: Some(child), port, log, client: Client::new(&self.root_pem, port) }
    }

    pub(crate) async fn store(&self) -> Store {
        let url = self.database.store_url(&self.state);
        Store::open(&url).await.unwrap_or_else(|e| panic!("opening the store {url}: {e}"))
    }
}

/// A running `keystation authority serve`, stopped by PID on drop (SIGTERM, then SIGKILL).
pub(crate) struct Server {
    pub child: Option<Child>,
    pub port: u16,
    pub log: PathBuf,
    pub client: Client,
}

impl Server {
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines of the log, for failure messages.
    pub(crate) fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Polls `/health` until it answers ok; panics with the log if the server exits or
    /// takes longer than [`START_WAIT`].
    pub(crate) async fn wait_healthy(&mut self) {
        let deadline = Instant::now() + START_WAIT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("the authority exited during startup ({status}):\n{}", self.log());
            }
            if let Ok(answer) = self.client.call("GET", "/health", None).await
                && answer.status == 200
                && answer.json()["status"] == "ok"
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the authority did not become healthy within {START_WAIT:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }

    /// `kill -9` by PID, and reaps it.
    pub(crate) fn kill9(&mut self) {
        self.signal("-KILL");
        if let Some(mut child) = self.child.take() {
            let status = child.wait().unwrap();
            eprintln!("authority on port {} killed: {status}", self.port);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.signal("-TERM");
        let Some(mut child) = self.child.take() else { return };
        let deadline = Instant::now() + Duration::from_secs(10);
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

// --- an HTTPS client ---------------------------------------------------------------------

/// An HTTPS/1.1 client of one authority, trusting only its root.
#[derive(Clone)]
pub(crate) struct Client {
    pub tls: tokio_rustls::TlsConnector,
    pub port: u16,
}

/// A status and a body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub text: String,
}

impl Answer {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    /// step-ca's error `message`.
    pub(crate) fn message(&self) -> String {
        self.json()["message"].as_str().unwrap_or_default().to_owned()
    }
}

/// One open connection (TLS handshake done), for requests sent at a chosen moment.
pub(crate) struct Connection {
    pub sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    pub driver: tokio::task::JoinHandle<()>,
    pub host: String,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Connection {
    pub(crate) async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, String> {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host)
            .header("accept", "application/json");
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let request = request.body(Full::new(Bytes::from(bytes))).map_err(|e| e.to_string())?;
        let response = self.sender.send_request(request).await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(Answer { status, text: String::from_utf8_lossy(&body).into_owned() })
    }
}

impl Client {
    pub(crate) fn new(root_pem: &str, port: u16) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        for block in keystation_x509::pem::decode_all(root_pem).unwrap() {
            roots.add(rustls::pki_types::CertificateDer::from(block.der.clone())).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Self { tls: tokio_rustls::TlsConnector::from(Arc::new(config)), port }
    }

    /// `https://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub(crate) async fn connect(&self) -> Result<Connection, String> {
        let tcp = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, self.port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let name = rustls::pki_types::ServerName::from(std::net::IpAddr::from(Ipv4Addr::LOCALHOST));
        let tls = self.tls.connect(name, tcp).await.map_err(|e| format!("TLS: {e}"))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Connection { sender, driver, host: format!("127.0.0.1:{}", self.port) })
    }

    /// One request on a connection of its own.
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, String> {
        let exchange = async {
            let mut connection = self.connect().await?;
            connection.send(method, path, body).await
        };
        tokio::time::timeout(Duration::from_secs(60), exchange)
            .await
            .unwrap_or_else(|_| Err(format!("{method} {path}: no answer within 60 s")))
    }

    pub(crate) async fn sign(&self, csr: &str, ott: &str) -> Answer {
        let body = json!({ "csr": csr, "ott": ott });
        self.call("POST", "/1.0/sign", Some(&body)).await.unwrap()
    }
}

// --- tokens ------------------------------------------------------------------------------

/// The admin provisioner's key, decrypted from the `encryptedKey` that `/provisioners`
/// publishes (as step's client does).
pub(crate) struct Admin {
    pub key: PrivateJwk,
    pub kid: String,
}

impl Admin {
    pub(crate) async fn fetch(client: &Client) -> Self {
        let answer = client.call("GET", "/provisioners", None).await.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.text);
        let listing = answer.json();
        let provisioner = listing["provisioners"]
            .as_array()
            .and_then(|list| list.iter().find(|p| p["name"] == PROVISIONER))
            .unwrap_or_else(|| panic!("no provisioner {PROVISIONER:?} in {listing}"));
        assert_eq!(provisioner["type"], "JWK");
        let kid = provisioner["key"]["kid"].as_str().unwrap().to_owned();
        let encrypted = provisioner["encryptedKey"].as_str().unwrap();
        let key = PrivateJwk::decrypt(encrypted, PASSWORD.as_bytes()).unwrap();
        Self { key, kid }
    }

    pub(crate) fn sign(&self, claims: &Claims) -> String {
        sign_jwt(&self.key, &Header::jwt(Some(self.kid.clone())), claims).unwrap()
    }

    /// The private JWK as JSON, for the Python peers.
    pub(crate) fn private_json(&self) -> Value {
        serde_json::from_str(&self.key.to_json()).unwrap()
    }

    /// The public key as a PEM `PUBLIC KEY` (SPKI): the bytes an algorithm-confusion
    /// attacker uses as an HMAC secret.
    pub(crate) fn public_pem(&self) -> String {
        keystation_x509::pem::encode("PUBLIC KEY", &self.key.public().public_key().to_spki_der())
    }
}

/// A token id no other token in this run has.
pub(crate) fn new_jti() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let seed = format!("{}-{nanos}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    Sha256::digest(seed.as_bytes())[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// step's claims for an X.509 certificate for `subject` with `sans`, valid from now for
/// [`LIFETIME`].
pub(crate) fn claims(audiences: &[String], subject: &str, sans: &[&str], jti: &str) -> Claims {
    let now = now();
    let mut claims = Claims::default();
    claims.iss = Some(PROVISIONER.into());
    claims.sub = Some(subject.into());
    claims.aud = audiences.to_vec();
    claims.iat = Some(now);
    claims.nbf = Some(now);
    claims.exp = Some(now + LIFETIME);
    claims.jti = Some(jti.into());
    claims.sans = sans.iter().map(|s| (*s).to_owned()).collect();
    claims
}

pub(crate) fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// HMAC-SHA-256 (RFC 2104), for the forged HS256 token.
pub(crate) fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().to_vec()
}

/// A compact JWS with `header` and `claims`, its signature made by `sign` over the
/// signing input (empty for `none`).
pub(crate) fn forged(header: &Value, claims: &Claims, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_json().as_bytes())
    );
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64url(&signature))
}

/// The Python that makes the peers' tokens: PyJWT and jwcrypto, from a JSON request on
/// stdin (`jwk`: the private JWK, `kid`, `tokens`: a list of `{mode, claims}`), printing
/// the tokens as a JSON list.
pub(crate) const PYTHON_TOKENS: &str = r#"
import json, sys
import jwt
from jwcrypto import jwk as jwcrypto_jwk, jwt as jwcrypto_jwt

request = json.load(sys.stdin)
private = request["jwk"]
kid = request["kid"]
public = {k: v for k, v in private.items() if k != "d"}
out = []
for item in request["tokens"]:
    mode, claims = item["mode"], item["claims"]
    headers = {"kid": kid, "typ": "JWT"}
    if mode == "pyjwt-es256":
        key = jwt.algorithms.ECAlgorithm.from_jwk(json.dumps(private))
        token = jwt.encode(claims, key, algorithm="ES256", headers=headers)
    elif mode == "jwcrypto-es256":
        key = jwcrypto_jwk.JWK(**private)
        signed = jwcrypto_jwt.JWT(header=dict(headers, alg="ES256"), claims=claims)
        signed.make_signed_token(key)
        token = signed.serialize()
    elif mode == "pyjwt-none":
        token = jwt.encode(claims, None, algorithm="none", headers=headers)
    elif mode == "pyjwt-hs256-public-pem":
        # The algorithm-confusion attack: HS256 keyed with the public key's PEM. PyJWT
        # refuses such a secret, so the attacker's HS256 skips that guard.
        from cryptography.hazmat.primitives import serialization

        class Unguarded(jwt.algorithms.HMACAlgorithm):
            def prepare_key(self, key):
                return key

        pem = jwt.algorithms.ECAlgorithm.from_jwk(json.dumps(public)).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        jws = jwt.PyJWS()
        jws.unregister_algorithm("HS256")
        jws.register_algorithm("HS256", Unguarded(Unguarded.SHA256))
        token = jws.encode(json.dumps(claims).encode(), pem, algorithm="HS256", headers=headers)
    else:
        raise SystemExit("unknown mode " + mode)
    out.append(token if isinstance(token, str) else token.decode())
print(json.dumps(out))
"#;

/// Tokens made by PyJWT or jwcrypto (`KEYSTATION_TEST_JOSE_PYTHON`), one per
/// `(mode, claims)`.
pub(crate) fn python_tokens(admin: &Admin, requests: &[(&str, &Claims)]) -> Vec<String> {
    let python = std::env::var("KEYSTATION_TEST_JOSE_PYTHON").unwrap_or_else(|_| {
        panic!(
            "KEYSTATION_TEST_JOSE_PYTHON is not set: point it at the python of a venv with \
             PyJWT, jwcrypto and cryptography (scripts/test makes target/jose-venv)"
        )
    });
    let tokens: Vec<Value> = requests
        .iter()
        .map(|(mode, claims)| json!({ "mode": mode, "claims": serde_json::from_str::<Value>(&claims.to_json()).unwrap() }))
        .collect();
    let input = json!({ "jwk": admin.private_json(), "kid": admin.kid, "tokens": tokens });
    let mut child = Command::new(&python)
        .args(["-c", PYTHON_TOKENS])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run KEYSTATION_TEST_JOSE_PYTHON ({python}): {e}"));
    {
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{python} (PyJWT/jwcrypto) failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A PEM certificate request for a fresh P-256 key, with common name `cn` and `sans`.
pub(crate) fn csr(cn: &str, sans: &[&str]) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
            .unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, cn);
    params.serialize_request(&key).unwrap().pem().unwrap()
}

/// A certificate's serial as the store keys it (lower-case hex).
pub(crate) fn serial_of(pem: &str) -> String {
    keystation_x509::Certificate::from_pem(pem).unwrap().serial_hex().to_ascii_lowercase()
}
