//! The authority's ACME server (RFC 8555) end to end, against the real `keystation
//! authority serve` on loopback with an ACME provisioner, driven by the in-test client of
//! tests/support/acme_client.rs (issue 14):
//!
//! * the whole protocol over http-01 for an IP identifier (RFC 8738), on SQLite and on
//!   PostgreSQL: directory, nonces, accounts (create, find again, onlyReturnExisting, the
//!   orders list, contact update, key rollover, deactivation), an order through its
//!   authorization and challenge to a certificate whose chain openssl verifies, and
//!   revocation by the account and by the certificate's key;
//! * the refusals, each by its problem type (§6.7) and HTTP status: a bad signature, the
//!   `HS256` and `none` algorithms, a `url` that is not the request's, a replayed nonce
//!   (also on PostgreSQL, also raced), an unknown account, a wrong key authorization, a CSR
//!   for a name not ordered, finalizing too early, another account's resources, an address
//!   the validation policy denies (never contacted);
//! * external account binding (§7.3.4): required, accepted once, refused with a wrong MAC.
//!
//! ```text
//! scripts/with-postgres cargo test --features test-authority --test acme_protocol
//! ```
//!
//! Needs `openssl` (the chain's verification) and, for the PostgreSQL tests,
//! `KEYSTATION_TEST_POSTGRES_URL` (scripts/with-postgres). Either missing fails the tests.
#![cfg(feature = "test-authority")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

#[path = "support/acme_client.rs"]
mod acme_client;
#[path = "support/authority_harness.rs"]
mod harness;

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::Duration;

use acme_client::{
    AcmeClient, ERROR_PREFIX, Http01Responder, LeafKey, PEM_CHAIN, PROBLEM_JSON, Reply, Signer,
    b64url, b64url_decode, external_account_binding, flattened_jws, key_authorization, key_change,
    new_key, protected_header, same_key, sign_request,
};
use harness::{Authority, Engine, Server, free_port, hmac_sha256, keystation};
use serde_json::{Value, json};

/// The ACME provisioner's name: the directory is `/acme/acme/directory`.
const PROVISIONER: &str = "acme";
/// The identifier every order names: loopback, where the test's http-01 responder is.
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// How long a challenge or an order may take to settle.
const SETTLE: Duration = Duration::from_secs(60);
/// `[acme] attempts`: how often the server tries a failing validation.
const ATTEMPTS: usize = 2;

/// The error types of RFC 8555 §6.7 (a server may only answer with these, or others it
/// registers; this one registers none but draft-ietf-acme-device-attest's).
const RFC8555_TYPES: [&str; 24] = [
    "accountDoesNotExist",
    "alreadyRevoked",
    "badCSR",
    "badNonce",
    "badPublicKey",
    "badRevocationReason",
    "badSignatureAlgorithm",
    "caa",
    "compound",
    "connection",
    "dns",
    "externalAccountRequired",
    "incorrectResponse",
    "invalidContact",
    "malformed",
    "orderNotReady",
    "rateLimited",
    "rejectedIdentifier",
    "serverInternal",
    "tls",
    "unauthorized",
    "unsupportedContact",
    "unsupportedIdentifier",
    "userActionRequired",
];

// --- the lab -----------------------------------------------------------------------------

/// How the lab's authority is set up.
#[derive(Clone, Copy)]
struct Options {
    /// `--require-eab` on the provisioner.
    require_eab: bool,
    /// `[acme] allow` loopback; without it the default policy refuses 127.0.0.0/8.
    allow_loopback: bool,
}

const OPEN: Options = Options { require_eab: false, allow_loopback: true };

/// An authority with the ACME provisioner, serving, and the http-01 responder its
/// validations reach.
struct Lab {
    responder: Http01Responder,
    server: Server,
    authority: Authority,
    port: u16,
    engine: Engine,
}

impl Lab {
    async fn start(engine: Engine, options: Options) -> Self {
        let responder = Http01Responder::start().await;
        let port = free_port();
        let authority = Authority::init(engine, port);
        let mut add = vec!["provisioner", "add", PROVISIONER, "--type", "ACME"];
        for challenge in ["http-01", "dns-01", "tls-alpn-01"] {
            add.extend(["--challenge", challenge]);
        }
        if options.require_eab {
            add.push("--require-eab");
        }
        run(command(&authority, &add));

        let config = authority.state.join("config/authority.toml");
        let mut toml = std::fs::read_to_string(&config).unwrap();
        toml.push_str(&format!(
            "\n[acme]\nhttp01_port = {}\ntls_alpn01_port = {}\nattempts = {ATTEMPTS}\n\
             retry_seconds = 1\ntimeout_seconds = 5\n",
            responder.port,
            free_port(),
        ));
        if options.allow_loopback {
            toml.push_str("allow = [\"127.0.0.0/8\", \"::1/128\"]\n");
        }
        std::fs::write(&config, toml).unwrap();

        let mut server = authority.serve(port, "acme");
        server.wait_healthy().await;
        Self { responder, server, authority, port, engine }
    }

    /// The provisioner's URLs start with this (`https://localhost:PORT/acme/acme`).
    fn base(&self) -> String {
        format!("https://localhost:{}/acme/{PROVISIONER}", self.port)
    }

    fn directory_url(&self) -> String {
        format!("{}/directory", self.base())
    }

    async fn client(&self) -> AcmeClient {
        AcmeClient::new(self.server.client.clone(), &self.directory_url()).await
    }

    /// `keystation authority acme eab add acme`: the key ID and the HMAC key.
    fn eab_key(&self) -> (String, Vec<u8>) {
        let output = run(command(&self.authority, &["acme", "eab", "add", PROVISIONER]));
        let field = |name: &str| {
            output
                .lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix('\t'))
                .unwrap_or_else(|| panic!("`acme eab add` printed no {name}:\n{output}"))
                .to_owned()
        };
        (field("keyID"), b64url_decode(&field("hmacKey")))
    }

    /// The authority's log, for failure messages.
    fn log(&self) -> String {
        format!("---- authority log ({:?}) ----\n{}", self.engine, self.server.log_tail())
    }
}

/// `keystation authority ARGS… --dir STATE [--database URL]`.
fn command(authority: &Authority, args: &[&str]) -> Command {
    let mut command = keystation(authority.dir.path());
    command.arg("authority").args(args).arg("--dir").arg(&authority.state);
    if let Some(url) = &authority.database.url {
        command.args(["--database", url]);
    }
    command
}

/// Runs `command`, which must succeed; its standard output.
fn run(mut command: Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `[{"type": "ip", "value": "127.0.0.1"}]`.
fn loopback_identifiers() -> Value {
    json!([{ "type": "ip", "value": LOOPBACK.to_string() }])
}

// --- assertions --------------------------------------------------------------------------

/// `reply` is the problem `name` (RFC 8555 §6.7) with `status`: a problem document with a
/// `detail`, and a fresh nonce for the client's next request (§6.5).
fn assert_problem(reply: &Reply, name: &str, status: u16, what: &str) {
    assert_eq!(
        (reply.status, reply.problem_type()),
        (status, format!("{ERROR_PREFIX}{name}")),
        "{what}: expected {name} ({status}), got {}",
        reply.summary()
    );
    assert_rfc_problem(reply, what);
}

/// `reply` is a problem document (RFC 7807) of an RFC 8555 type, with a 4xx status, a
/// `detail` and a `Replay-Nonce`; its type's name.
fn assert_rfc_problem(reply: &Reply, what: &str) -> String {
    assert!((400..500).contains(&reply.status), "{what}: not a 4xx answer: {}", reply.summary());
    let content_type = reply.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with(PROBLEM_JSON), "{what}: Content-Type {content_type:?}");
    let kind = reply.problem_type();
    let name = kind.strip_prefix(ERROR_PREFIX).unwrap_or_default().to_owned();
    assert!(RFC8555_TYPES.contains(&name.as_str()), "{what}: type {kind:?} is not RFC 8555's");
    let detail = reply.json()["detail"].as_str().unwrap_or_default().to_owned();
    assert!(!detail.is_empty(), "{what}: the problem has no detail: {}", reply.summary());
    assert!(reply.nonce().is_some(), "{what}: a problem without Replay-Nonce: {:?}", reply.headers);
    name
}

/// A nonce (RFC 8555 §6.5.1) is base64url, of a length that can carry 128 bits.
fn assert_nonce(nonce: Option<&str>, what: &str) -> String {
    let nonce = nonce.unwrap_or_else(|| panic!("{what}: no Replay-Nonce"));
    assert!(
        nonce.len() >= 22
            && nonce.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{what}: nonce {nonce:?} is not base64url of at least 128 bits"
    );
    nonce.to_owned()
}

/// The `type` of `object["error"]` without the URN prefix.
fn error_type(object: &Value) -> String {
    object["error"]["type"].as_str().unwrap_or_default().trim_start_matches(ERROR_PREFIX).to_owned()
}

// --- protocol steps ----------------------------------------------------------------------

/// The order's only authorization, its http-01 challenge and that challenge's key
/// authorization for `signer`.
struct Pending {
    authz_url: String,
    challenge: Value,
    key_authorization: String,
}

async fn pending_http01(client: &mut AcmeClient, signer: &Signer, order: &Value) -> Pending {
    let authz_url = order["authorizations"][0].as_str().expect("an authorization").to_owned();
    let reply = client.post_as_get(signer, &authz_url).await;
    assert_eq!(reply.status, 200, "authorization: {}", reply.summary());
    let authz = reply.json();
    let challenge = authz["challenges"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["type"] == "http-01"))
        .unwrap_or_else(|| panic!("no http-01 challenge in {authz}"))
        .clone();
    let token = challenge["token"].as_str().expect("the challenge's token");
    let key_authorization = key_authorization(token, &signer.key);
    Pending { authz_url, challenge, key_authorization }
}

/// Asks the server to validate `challenge` (POST `{}`, RFC 8555 §7.5.1) and polls it until
/// it is valid or invalid; the last challenge object.
async fn respond_and_settle(client: &mut AcmeClient, signer: &Signer, pending: &Pending) -> Value {
    let url = pending.challenge["url"].as_str().expect("the challenge's url").to_owned();
    let reply = client.post(signer, &url, &json!({})).await;
    assert_eq!(reply.status, 200, "challenge POST {{}}: {}", reply.summary());
    assert_eq!(reply.links("up"), vec![pending.authz_url.as_str()], "challenge Link rel=up");
    let shown = reply.json()["status"].as_str().unwrap_or_default().to_owned();
    assert!(
        ["processing", "valid", "invalid"].contains(&shown.as_str()),
        "after POST {{}} the challenge is {shown:?}, not processing"
    );
    client.poll(signer, &url, &["valid", "invalid"], SETTLE).await.json()
}

/// What an issued order left: its URL and the chain, leaf first.
struct Issued {
    order_url: String,
    chain_pem: String,
}

impl Issued {
    fn blocks(&self) -> Vec<keystation_x509::pem::PemBlock> {
        keystation_x509::pem::decode_all(&self.chain_pem).unwrap()
    }

    fn leaf_der(&self) -> Vec<u8> {
        self.blocks()[0].der.clone()
    }

    fn leaf(&self) -> keystation_x509::Certificate {
        keystation_x509::Certificate::from_der(&self.leaf_der()).unwrap()
    }

    /// The leaf's serial as the authority's store keys it.
    fn serial(&self) -> String {
        let hex = self.leaf().serial_hex().to_ascii_lowercase().replace(':', "");
        let trimmed = hex.trim_start_matches('0');
        if trimmed.is_empty() { "0".into() } else { trimmed.to_owned() }
    }
}

/// An order for loopback through validation and finalization to the downloaded chain,
/// for `leaf`'s key, without the step-by-step checks of the main flow.
async fn issue(lab: &Lab, client: &mut AcmeClient, signer: &Signer, leaf: &LeafKey) -> Issued {
    let (order_url, order) = client.new_order(signer, &loopback_identifiers()).await;
    let pending = pending_http01(client, signer, &order).await;
    let token = pending.challenge["token"].as_str().unwrap();
    lab.responder.serve(token, &pending.key_authorization);
    let challenge = respond_and_settle(client, signer, &pending).await;
    assert_eq!(challenge["status"], "valid", "{challenge}\n{}", lab.log());
    let ready = client.poll(signer, &order_url, &["ready", "invalid"], SETTLE).await;
    assert_eq!(ready.json()["status"], "ready", "{}", ready.summary());
    let finalize = order["finalize"].as_str().unwrap();
    let csr = leaf.csr(&[LOOPBACK], &[]);
    let reply = client.post(signer, finalize, &json!({ "csr": b64url(&csr) })).await;
    assert_eq!(reply.status, 200, "finalize: {}\n{}", reply.summary(), lab.log());
    let order = client.poll(signer, &order_url, &["valid", "invalid"], SETTLE).await.json();
    assert_eq!(order["status"], "valid", "{order}");
    let certificate = order["certificate"].as_str().unwrap();
    let chain = client.post_as_get_accepting(signer, certificate, PEM_CHAIN).await;
    assert_eq!(chain.status, 200, "certificate: {}", chain.summary());
    Issued { order_url, chain_pem: chain.text() }
}

/// `openssl verify` of the chain's leaf for a TLS server at 127.0.0.1, against the root,
/// with the chain's intermediate as the only untrusted certificate.
fn openssl_verify(lab: &Lab, issued: &Issued, name: &str) {
    let blocks = issued.blocks();
    let dir = lab.authority.dir.path();
    let write = |file: &str, der: &[u8]| {
        let path = dir.join(format!("{name}-{file}"));
        std::fs::write(&path, keystation_x509::pem::encode("CERTIFICATE", der)).unwrap();
        path
    };
    let leaf = write("leaf.pem", &blocks[0].der);
    let intermediate = write("intermediate.pem", &blocks[1].der);
    let root = lab.authority.state.join("certs/root_ca.crt");
    let output = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(&root)
        .arg("-untrusted")
        .arg(&intermediate)
        .args(["-purpose", "sslserver", "-verify_ip", "127.0.0.1"])
        .arg(&leaf)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl (Debian: apt-get install openssl): {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains(": OK"),
        "openssl verify failed ({}):\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

// --- 1. the whole protocol ---------------------------------------------------------------

async fn full_flow(engine: Engine) {
    let lab = Lab::start(engine, OPEN).await;
    let base = lab.base();
    let mut client = lab.client().await;

    // The directory (§7.1.1): every resource under this provisioner, no EAB needed.
    for name in ["newNonce", "newAccount", "newOrder", "revokeCert", "keyChange"] {
        let url = client.url(name);
        assert!(url.starts_with(&format!("{base}/")), "directory {name}: {url:?}");
    }
    assert_eq!(client.directory["meta"]["externalAccountRequired"], json!(false));

    // newNonce (§7.2): 200 to HEAD, 204 to GET, each with a fresh nonce, not cached.
    let head = client.head_new_nonce().await;
    assert_eq!(head.status, 200, "HEAD newNonce: {head:?}");
    assert_eq!(head.header("cache-control"), Some("no-store"), "HEAD newNonce: {head:?}");
    let first = assert_nonce(head.nonce(), "HEAD newNonce");
    let get = client.get(&client.url("newNonce")).await;
    assert_eq!(get.status, 204, "GET newNonce: {get:?}");
    let second = assert_nonce(get.nonce(), "GET newNonce");
    assert_ne!(first, second, "newNonce gave the same nonce twice");

    // newAccount (§7.3): 201, the account URL, a nonce, the index link.
    let mut account = Signer::generate();
    let payload = json!({ "termsOfServiceAgreed": true, "contact": ["mailto:admin@example.org"] });
    let created = client.new_account(&mut account, &payload).await;
    assert_eq!(created.status, 201, "newAccount: {}\n{}", created.summary(), lab.log());
    let account_url = created.location().expect("newAccount's Location").to_owned();
    assert!(account_url.starts_with(&format!("{base}/account/")), "{account_url:?}");
    assert_nonce(created.nonce(), "newAccount");
    assert_eq!(created.links("index"), [lab.directory_url()], "newAccount Link rel=index");
    let body = created.json();
    assert_eq!(body["status"], "valid", "{body}");
    assert_eq!(body["contact"], json!(["mailto:admin@example.org"]), "{body}");

    // The same key again (§7.3.1): 200 and the same account.
    let mut again = Signer { key: same_key(&account.key), kid: None };
    let found = client.new_account(&mut again, &json!({ "termsOfServiceAgreed": true })).await;
    assert_eq!(found.status, 200, "newAccount with a known key: {}", found.summary());
    assert_eq!(found.location(), Some(account_url.as_str()));

    // onlyReturnExisting with an unknown key (§7.3.1): accountDoesNotExist, no account made.
    let mut stranger = Signer::generate();
    let refused = client.new_account(&mut stranger, &json!({ "onlyReturnExisting": true })).await;
    assert_problem(&refused, "accountDoesNotExist", 400, "onlyReturnExisting, unknown key");
    let refused = client.new_account(&mut stranger, &json!({ "onlyReturnExisting": true })).await;
    assert_problem(&refused, "accountDoesNotExist", 400, "onlyReturnExisting made an account");

    // newOrder (§7.4): 201, pending, one authorization for the identifier.
    let identifiers = loopback_identifiers();
    let reply = client
        .post(&account, &client.url("newOrder"), &json!({ "identifiers": identifiers }))
        .await;
    assert_eq!(reply.status, 201, "newOrder: {}\n{}", reply.summary(), lab.log());
    let order_url = reply.location().expect("newOrder's Location").to_owned();
    assert!(order_url.starts_with(&format!("{base}/order/")), "{order_url:?}");
    let order = reply.json();
    assert_eq!(order["status"], "pending", "{order}");
    assert_eq!(order["identifiers"], identifiers, "{order}");
    assert_eq!(order["authorizations"].as_array().map(Vec::len), Some(1), "{order}");
    assert!(order["expires"].is_string(), "{order}");
    let finalize_url = order["finalize"].as_str().expect("finalize").to_owned();

    // The authorization (§7.5): pending, its challenges; no dns-01 for an IP (RFC 8738 §7).
    let pending = pending_http01(&mut client, &account, &order).await;
    let authz = client.post_as_get(&account, &pending.authz_url).await.json();
    assert_eq!(authz["identifier"], identifiers[0], "{authz}");
    assert_eq!(authz["status"], "pending", "{authz}");
    let kinds: Vec<&str> =
        authz["challenges"].as_array().unwrap().iter().filter_map(|c| c["type"].as_str()).collect();
    assert!(!kinds.contains(&"dns-01"), "dns-01 offered for an IP identifier: {kinds:?}");
    let token = pending.challenge["token"].as_str().unwrap().to_owned();
    assert!(token.len() >= 22, "token {token:?} is shorter than 128 bits");
    assert_eq!(pending.challenge["status"], "pending");

    // The challenge (§7.5.1, §8.3): processing, then valid after one fetch of the token.
    lab.responder.serve(&token, &pending.key_authorization);
    let challenge = respond_and_settle(&mut client, &account, &pending).await;
    assert_eq!(challenge["status"], "valid", "{challenge}\n{}", lab.log());
    assert!(challenge["validated"].is_string(), "{challenge}");
    let fetched = lab.responder.requests();
    assert_eq!(fetched, [format!("/.well-known/acme-challenge/{token}")], "http-01 fetches");
    let authz = client.post_as_get(&account, &pending.authz_url).await.json();
    assert_eq!(authz["status"], "valid", "{authz}");
    let ready = client.poll(&account, &order_url, &["ready", "invalid"], SETTLE).await.json();
    assert_eq!(ready["status"], "ready", "{ready}");

    // finalize (§7.4): the order is valid and names its certificate.
    let leaf_key = LeafKey::generate();
    let csr = leaf_key.csr(&[LOOPBACK], &[]);
    let reply = client.post(&account, &finalize_url, &json!({ "csr": b64url(&csr) })).await;
    assert_eq!(reply.status, 200, "finalize: {}\n{}", reply.summary(), lab.log());
    let order = client.poll(&account, &order_url, &["valid", "invalid"], SETTLE).await.json();
    assert_eq!(order["status"], "valid", "{order}");
    let certificate_url = order["certificate"].as_str().expect("the certificate URL").to_owned();

    // The certificate (§7.4.2): a PEM chain of two, leaf first, for the identifier and the
    // CSR's key, verifying to the root.
    let chain = client.post_as_get_accepting(&account, &certificate_url, PEM_CHAIN).await;
    assert_eq!(chain.status, 200, "certificate: {}", chain.summary());
    let content_type = chain.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with(PEM_CHAIN), "certificate Content-Type {content_type:?}");
    let issued = Issued { order_url: order_url.clone(), chain_pem: chain.text() };
    let blocks = issued.blocks();
    assert_eq!(blocks.len(), 2, "the chain:\n{}", issued.chain_pem);
    assert!(blocks.iter().all(|b| b.label == "CERTIFICATE"), "{}", issued.chain_pem);
    let leaf = issued.leaf();
    assert_eq!(
        leaf.subject_alt_names(),
        [keystation_x509::SubjectAltName::Ip(LOOPBACK)],
        "the leaf's names"
    );
    assert_eq!(&leaf.public_key().unwrap(), leaf_key.jwk.public().public_key(), "the leaf's key");
    openssl_verify(&lab, &issued, "first");

    // The account's orders (§7.1.2.1).
    let orders_url = body["orders"].as_str().expect("the account's orders URL").to_owned();
    let orders = client.post_as_get(&account, &orders_url).await;
    assert_eq!(orders.status, 200, "orders: {}", orders.summary());
    assert_eq!(orders.json()["orders"], json!([order_url]), "{}", orders.summary());

    // Contact update (§7.3.2).
    let update = json!({ "contact": ["mailto:ops@example.org"] });
    let updated = client.post(&account, &account_url, &update).await;
    assert_eq!(updated.status, 200, "contact update: {}", updated.summary());
    let read = client.post_as_get(&account, &account_url).await.json();
    assert_eq!(read["contact"], json!(["mailto:ops@example.org"]), "{read}");

    // Key rollover (§7.3.5): the inner JWS signed by the new key; then the old key is
    // refused and the new one is the account's.
    let new_account_key = new_key();
    let key_change_url = client.url("keyChange");
    let inner = key_change(&new_account_key, &account_url, &account.key, &key_change_url);
    let rolled = client.post(&account, &key_change_url, &inner).await;
    assert_eq!(rolled.status, 200, "keyChange: {}\n{}", rolled.summary(), lab.log());
    let old = Signer { key: same_key(&account.key), kid: Some(account_url.clone()) };
    let refused = client.post_as_get(&old, &account_url).await;
    let kind = assert_rfc_problem(&refused, "the old key after keyChange");
    assert!(["malformed", "unauthorized"].contains(&kind.as_str()), "{}", refused.summary());
    let mut old_jwk = Signer { key: same_key(&account.key), kid: None };
    let gone = client.new_account(&mut old_jwk, &json!({ "onlyReturnExisting": true })).await;
    assert_problem(&gone, "accountDoesNotExist", 400, "onlyReturnExisting with the old key");
    account = Signer { key: new_account_key, kid: Some(account_url.clone()) };
    let read = client.post_as_get(&account, &account_url).await;
    assert_eq!(read.status, 200, "the new key: {}", read.summary());
    let mut new_jwk = Signer { key: same_key(&account.key), kid: None };
    let found = client.new_account(&mut new_jwk, &json!({ "onlyReturnExisting": true })).await;
    assert_eq!(found.status, 200, "onlyReturnExisting with the new key: {}", found.summary());
    assert_eq!(found.location(), Some(account_url.as_str()));

    // Revocation by the account (§7.6), reason keyCompromise; then alreadyRevoked.
    let revoke_url = client.url("revokeCert");
    let revoke = json!({ "certificate": b64url(&issued.leaf_der()), "reason": 1 });
    let reply = client.post(&account, &revoke_url, &revoke).await;
    assert_eq!(reply.status, 200, "revokeCert by the account: {}\n{}", reply.summary(), lab.log());
    let reply = client.post(&account, &revoke_url, &revoke).await;
    assert_problem(&reply, "alreadyRevoked", 400, "revoking twice");
    let store = lab.authority.store().await;
    let details = store
        .revocation(&issued.serial())
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{} is not revoked in the store", issued.serial()));
    assert_eq!(details.reason_code, 1, "{details:?}");
    assert_eq!(details.provisioner, PROVISIONER, "{details:?}");

    // Revocation by the certificate's key (§7.6) of another certificate: an unrelated key
    // is refused, the certificate's own `jwk` is accepted.
    let second_key = LeafKey::generate();
    let second = issue(&lab, &mut client, &account, &second_key).await;
    openssl_verify(&lab, &second, "second");
    assert!(!store.is_revoked(&second.serial()).await.unwrap(), "revoked before asked");
    let revoke = json!({ "certificate": b64url(&second.leaf_der()) });
    let intruder = Signer::generate();
    let reply = client.post(&intruder, &revoke_url, &revoke).await;
    assert_problem(&reply, "unauthorized", 403, "revokeCert signed by an unrelated jwk");
    assert!(!store.is_revoked(&second.serial()).await.unwrap(), "revoked by an intruder");
    let by_key = Signer { key: second_key.jwk, kid: None };
    let reply = client.post(&by_key, &revoke_url, &revoke).await;
    assert_eq!(
        reply.status,
        200,
        "revokeCert by the certificate key: {}\n{}",
        reply.summary(),
        lab.log()
    );
    assert!(store.is_revoked(&second.serial()).await.unwrap(), "not revoked in the store");
    // The list's order is the server's (§7.1.2.1 sets none).
    let orders = client.post_as_get(&account, &orders_url).await.json();
    let mut listed: Vec<&str> =
        orders["orders"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    listed.sort_unstable();
    let mut expected = vec![order_url.as_str(), second.order_url.as_str()];
    expected.sort_unstable();
    assert_eq!(listed, expected, "{orders}");

    // Deactivation (§7.3.6): the account answers deactivated, then refuses everything.
    let reply = client.post(&account, &account_url, &json!({ "status": "deactivated" })).await;
    assert_eq!(reply.status, 200, "deactivation: {}", reply.summary());
    assert_eq!(reply.json()["status"], "deactivated", "{}", reply.summary());
    let refused = client
        .post(&account, &client.url("newOrder"), &json!({ "identifiers": identifiers }))
        .await;
    assert_problem(&refused, "unauthorized", 403, "newOrder by a deactivated account");
    let refused = client.post_as_get(&account, &account_url).await;
    assert_problem(&refused, "unauthorized", 403, "reading a deactivated account");
    store.close().await;
}

/// The whole protocol on SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_protocol_over_http01() {
    full_flow(Engine::Sqlite).await;
}

/// The whole protocol on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_protocol_over_http01_on_postgres() {
    full_flow(Engine::Postgres).await;
}

// --- 2. refusals -------------------------------------------------------------------------

/// The JWS envelope (§6.2–§6.4): a signature that does not verify, the HS256 and `none`
/// algorithms, a `url` other than the request's, an account that does not exist. A forged
/// request does not spend the nonce it carries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_envelope_is_checked() {
    let lab = Lab::start(Engine::Sqlite, OPEN).await;
    let mut client = lab.client().await;
    let account = client.register().await;
    let account_url = account.account_url().to_owned();

    // A flipped bit in the signature.
    let nonce = client.take_nonce().await;
    let mut body = sign_request(&account.key, Some(&account_url), Some(&nonce), &account_url, b"");
    let mut signature = b64url_decode(body["signature"].as_str().unwrap());
    signature[0] ^= 0x01;
    body["signature"] = json!(b64url(&signature));
    let reply = client.post_body(&account_url, &body, "application/json").await;
    let kind = assert_rfc_problem(&reply, "a bad signature");
    assert!(["malformed", "unauthorized"].contains(&kind.as_str()), "{}", reply.summary());
    eprintln!("a bad signature is {kind} ({})", reply.status);
    // … and the nonce it carried is still good for the real request.
    let body = sign_request(&account.key, Some(&account_url), Some(&nonce), &account_url, b"");
    let reply = client.post_body(&account_url, &body, "application/json").await;
    assert_eq!(reply.status, 200, "the nonce of a forged request was spent: {}", reply.summary());

    // HS256 (keyed with anything) and `none`: badSignatureAlgorithm, listing what is
    // accepted (§6.2).
    let nonce = client.take_nonce().await;
    let header = json!({ "alg": "HS256", "kid": account_url, "nonce": nonce, "url": account_url });
    let body = flattened_jws(&header, b"", |input| hmac_sha256(b"a guessed secret", input));
    let reply = client.post_body(&account_url, &body, "application/json").await;
    assert_problem(&reply, "badSignatureAlgorithm", 400, "alg HS256");
    let algorithms = reply.json()["algorithms"].clone();
    assert!(
        algorithms.as_array().is_some_and(|a| a.contains(&json!("ES256"))),
        "badSignatureAlgorithm without the accepted algorithms: {}",
        reply.summary()
    );
    let nonce = client.take_nonce().await;
    let header = json!({ "alg": "none", "kid": account_url, "nonce": nonce, "url": account_url });
    let body = flattened_jws(&header, b"", |_| Vec::new());
    let reply = client.post_body(&account_url, &body, "application/json").await;
    assert_problem(&reply, "badSignatureAlgorithm", 400, "alg none");

    // The protected `url` is another resource's, or the same path on another host.
    let nonce = client.take_nonce().await;
    let elsewhere = client.url("newOrder");
    let body = sign_request(&account.key, Some(&account_url), Some(&nonce), &elsewhere, b"");
    let reply = client.post_body(&account_url, &body, "application/json").await;
    assert_problem(&reply, "unauthorized", 403, "url of another resource");
    let nonce = client.take_nonce().await;
    let other_host = account_url.replace("https://localhost:", "https://127.0.0.1:");
    let body = sign_request(&account.key, Some(&account_url), Some(&nonce), &other_host, b"");
    let reply = client.post_body(&account_url, &body, "application/json").await;
    assert_problem(&reply, "unauthorized", 403, "url on another host");

    // A `kid` that names no account.
    let unknown =
        Signer { key: new_key(), kid: Some(format!("{}/account/no-such-account", lab.base())) };
    let new_order = client.url("newOrder");
    let reply =
        client.post(&unknown, &new_order, &json!({ "identifiers": loopback_identifiers() })).await;
    assert_problem(&reply, "accountDoesNotExist", 400, "an unknown kid");

    // The protected header of a valid request, but with its `jwk` and `kid` both: refused.
    let nonce = client.take_nonce().await;
    let mut header = protected_header(&account.key, Some(&account_url), Some(&nonce), &account_url);
    header["jwk"] = acme_client::public_jwk(&account.key);
    let body = flattened_jws(&header, b"", |input| account.key.sign(input).unwrap());
    let reply = client.post_body(&account_url, &body, "application/json").await;
    assert_problem(&reply, "malformed", 400, "both jwk and kid");

    let reply = client.post_as_get(&account, &account_url).await;
    assert_eq!(reply.status, 200, "the account after the refusals: {}", reply.summary());
}

/// A POST whose `Content-Type` is not `application/jose+json` is refused with 415 (RFC
/// 8555 §6.2: "MUST return a response with status code 415") before anything else, so
/// its nonce stays unspent and the same body sent properly is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_that_is_not_jose_json_is_415() {
    let lab = Lab::start(Engine::Sqlite, OPEN).await;
    let mut client = lab.client().await;
    let account = client.register().await;
    let account_url = account.account_url().to_owned();
    let nonce = client.take_nonce().await;
    let body = sign_request(&account.key, Some(&account_url), Some(&nonce), &account_url, b"");
    let bytes = body.to_string().into_bytes();
    for content_type in ["application/json", "text/plain"] {
        let reply = acme_client::send_as(
            &client.http(),
            "POST",
            &account_url,
            Some(bytes.clone()),
            content_type,
            "application/json",
        )
        .await;
        assert_eq!(reply.status, 415, "Content-Type {content_type}: {}", reply.summary());
    }
    let reply = client.post_body(&account_url, &body, "application/json").await;
    assert_eq!(reply.status, 200, "the same body as jose+json: {}", reply.summary());
}

/// A key change to a key another account already has (RFC 8555 §7.3.5): 409 Conflict with
/// that account's URL in `Location`, and neither account changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_change_to_another_accounts_key_is_409() {
    let lab = Lab::start(Engine::Sqlite, OPEN).await;
    let mut client = lab.client().await;
    let mine = client.register().await;
    let theirs = client.register().await;
    let key_change_url = client.url("keyChange");
    let inner = key_change(&theirs.key, mine.account_url(), &mine.key, &key_change_url);
    let reply = client.post(&mine, &key_change_url, &inner).await;
    assert_eq!(reply.status, 409, "keyChange to a key in use: {}", reply.summary());
    assert_eq!(
        reply.location(),
        Some(theirs.account_url()),
        "409 without the other account's Location: {:?}",
        reply.headers
    );
    let read = client.post_as_get(&mine, mine.account_url()).await;
    assert_eq!(read.status, 200, "my old key after the refused change: {}", read.summary());
    let read = client.post_as_get(&theirs, theirs.account_url()).await;
    assert_eq!(read.status, 200, "their key after the refused change: {}", read.summary());
}

/// A replayed request (§6.5): the second copy is badNonce with a fresh nonce, which works,
/// and has no effect; raced copies make exactly one order.
async fn replayed_nonce(engine: Engine) {
    let lab = Lab::start(engine, OPEN).await;
    let mut client = lab.client().await;
    let account = client.register().await;
    let account_url = account.account_url().to_owned();
    let new_order = client.url("newOrder");
    let payload = json!({ "identifiers": loopback_identifiers() }).to_string();
    let orders_url = format!("{account_url}/orders");
    let order_count = |reply: Reply| reply.json()["orders"].as_array().map_or(usize::MAX, Vec::len);

    let nonce = client.take_nonce().await;
    let body = sign_request(
        &account.key,
        Some(&account_url),
        Some(&nonce),
        &new_order,
        payload.as_bytes(),
    );
    let first = client.post_body(&new_order, &body, "application/json").await;
    assert_eq!(first.status, 201, "newOrder: {}\n{}", first.summary(), lab.log());
    let replay = client.post_body(&new_order, &body, "application/json").await;
    assert_problem(&replay, "badNonce", 400, "the same body again");
    let fresh = assert_nonce(replay.nonce(), "the badNonce answer");
    assert_ne!(fresh, nonce);
    assert_ne!(Some(fresh.as_str()), first.nonce());

    // The badNonce answer's nonce is good for the retry; the replay itself made nothing.
    let body = sign_request(
        &account.key,
        Some(&account_url),
        Some(&fresh),
        &new_order,
        payload.as_bytes(),
    );
    let retry = client.post_body(&new_order, &body, "application/json").await;
    assert_eq!(retry.status, 201, "the retry with the fresh nonce: {}", retry.summary());
    let count = order_count(client.post_as_get(&account, &orders_url).await);
    assert_eq!(count, 2, "orders after one order, its replay and a retry");

    // Eight copies at once: one order.
    let nonce = client.take_nonce().await;
    let body = sign_request(
        &account.key,
        Some(&account_url),
        Some(&nonce),
        &new_order,
        payload.as_bytes(),
    );
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (http, url, body) =
                (client.http(), new_order.clone(), body.to_string().into_bytes());
            tokio::spawn(async move {
                acme_client::send(&http, "POST", &url, Some(body), "application/json").await
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        let reply = task.await.unwrap();
        if reply.status != 201 {
            assert_problem(&reply, "badNonce", 400, "a raced copy");
        }
        statuses.push(reply.status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "raced copies: {statuses:?}");
    assert_eq!(
        order_count(client.post_as_get(&account, &orders_url).await),
        3,
        "orders after the race"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_nonce_is_bad_nonce() {
    replayed_nonce(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_nonce_is_bad_nonce_on_postgres() {
    replayed_nonce(Engine::Postgres).await;
}

/// The responder serves another key's key authorization: after every attempt the
/// challenge, its authorization and the order are invalid (§7.1.6, §8.2), and asking
/// again does not validate again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_authorization_invalidates_the_order() {
    let lab = Lab::start(Engine::Sqlite, OPEN).await;
    let mut client = lab.client().await;
    let account = client.register().await;
    let (order_url, order) = client.new_order(&account, &loopback_identifiers()).await;
    let pending = pending_http01(&mut client, &account, &order).await;
    let token = pending.challenge["token"].as_str().unwrap().to_owned();
    lab.responder.serve(&token, &key_authorization(&token, &new_key()));

    let challenge = respond_and_settle(&mut client, &account, &pending).await;
    assert_eq!(challenge["status"], "invalid", "{challenge}\n{}", lab.log());
    let kind = error_type(&challenge);
    assert!(["incorrectResponse", "unauthorized"].contains(&kind.as_str()), "{challenge}");
    let path = format!("/.well-known/acme-challenge/{token}");
    assert_eq!(lab.responder.requests(), vec![path.clone(); ATTEMPTS], "one fetch per attempt");

    let authz = client.post_as_get(&account, &pending.authz_url).await.json();
    assert_eq!(authz["status"], "invalid", "{authz}");
    let order = client.post_as_get(&account, &order_url).await.json();
    assert_eq!(order["status"], "invalid", "{order}");
    assert!(!error_type(&order).is_empty(), "an invalid order without an error: {order}");

    // Fixing the answer and asking again does not revive it.
    lab.responder.serve(&token, &pending.key_authorization);
    let url = pending.challenge["url"].as_str().unwrap();
    let again = client.post(&account, url, &json!({})).await;
    assert!(again.status == 200 || again.status >= 400, "{}", again.summary());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let challenge = client.post_as_get(&account, url).await.json();
    assert_eq!(challenge["status"], "invalid", "{challenge}");
    assert_eq!(lab.responder.requests().len(), ATTEMPTS, "an invalid challenge was fetched again");

    let finalize = order["finalize"].as_str().unwrap();
    let csr = LeafKey::generate().csr(&[LOOPBACK], &[]);
    let reply = client.post(&account, finalize, &json!({ "csr": b64url(&csr) })).await;
    assert_problem(&reply, "orderNotReady", 403, "finalizing an invalid order");
}

/// finalize (§7.4): before the order is ready, orderNotReady; with a CSR naming something
/// not ordered, badCSR and the order stays ready, so the right CSR then succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalize_refusals() {
    let lab = Lab::start(Engine::Sqlite, OPEN).await;
    let mut client = lab.client().await;
    let account = client.register().await;
    let (order_url, order) = client.new_order(&account, &loopback_identifiers()).await;
    let finalize = order["finalize"].as_str().unwrap().to_owned();
    let leaf = LeafKey::generate();
    let good = json!({ "csr": b64url(&leaf.csr(&[LOOPBACK], &[])) });

    let reply = client.post(&account, &finalize, &good).await;
    assert_problem(&reply, "orderNotReady", 403, "finalize while pending");
    let order = client.post_as_get(&account, &order_url).await.json();
    assert_eq!(order["status"], "pending", "{order}");

    let pending = pending_http01(&mut client, &account, &order).await;
    lab.responder.serve(pending.challenge["token"].as_str().unwrap(), &pending.key_authorization);
    let challenge = respond_and_settle(&mut client, &account, &pending).await;
    assert_eq!(challenge["status"], "valid", "{challenge}\n{}", lab.log());
    let ready = client.poll(&account, &order_url, &["ready", "invalid"], SETTLE).await.json();
    assert_eq!(ready["status"], "ready", "{ready}");

    let extra_name = json!({ "csr": b64url(&leaf.csr(&[LOOPBACK], &["not-ordered.example"])) });
    let reply = client.post(&account, &finalize, &extra_name).await;
    assert_problem(&reply, "badCSR", 400, "a CSR with a name not in the order");
    let other_ip =
        json!({ "csr": b64url(&leaf.csr(&[IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))], &[])) });
    let reply = client.post(&account, &finalize, &other_ip).await;
    assert_problem(&reply, "badCSR", 400, "a CSR for another address");
    let garbage = json!({ "csr": b64url(b"not a certification request") });
    let reply = client.post(&account, &finalize, &garbage).await;
    let kind = assert_rfc_problem(&reply, "a CSR that is not DER");
    assert!(["badCSR", "malformed"].contains(&kind.as_str()), "{}", reply.summary());
    let order = client.post_as_get(&account, &order_url).await.json();
    assert_eq!(order["status"], "ready", "after refused CSRs: {order}");

    let reply = client.post(&account, &finalize, &good).await;
    assert_eq!(reply.status, 200, "finalize: {}\n{}", reply.summary(), lab.log());
    let order = client.poll(&account, &order_url, &["valid", "invalid"], SETTLE).await.json();
    assert_eq!(order["status"], "valid", "{order}");
    let reply = client.post(&account, &finalize, &good).await;
    assert_problem(&reply, "orderNotReady", 403, "finalizing a valid order again");
}

/// Another account cannot read, validate, finalize, download or revoke what an account
/// owns: each is refused as if it did not exist (404) or as unauthorized (403), without
/// showing it, and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_account_cannot_touch_my_order() {
    let lab = Lab::start(Engine::Sqlite, OPEN).await;
    let mut client = lab.client().await;
    let mine = client.register().await;
    let theirs = client.register().await;
    let (order_url, order) = client.new_order(&mine, &loopback_identifiers()).await;
    let pending = pending_http01(&mut client, &mine, &order).await;
    let challenge_url = pending.challenge["url"].as_str().unwrap().to_owned();
    let finalize = order["finalize"].as_str().unwrap().to_owned();
    lab.responder.serve(pending.challenge["token"].as_str().unwrap(), &pending.key_authorization);

    let refused = |reply: &Reply, what: &str| {
        let kind = assert_rfc_problem(reply, what);
        assert!(
            (reply.status, kind.as_str()) == (404, "malformed")
                || (reply.status, kind.as_str()) == (403, "unauthorized"),
            "{what}: {}",
            reply.summary()
        );
        assert!(
            reply.json().get("identifiers").is_none() && reply.json().get("challenges").is_none()
        );
    };
    refused(&client.post_as_get(&theirs, &order_url).await, "reading another's order");
    refused(
        &client.post_as_get(&theirs, &pending.authz_url).await,
        "reading another's authorization",
    );
    refused(
        &client.post(&theirs, &challenge_url, &json!({})).await,
        "answering another's challenge",
    );
    let csr = json!({ "csr": b64url(&LeafKey::generate().csr(&[LOOPBACK], &[])) });
    refused(&client.post(&theirs, &finalize, &csr).await, "finalizing another's order");
    refused(&client.post_as_get(&theirs, mine.account_url()).await, "reading another's account");
    let orders = format!("{}/orders", mine.account_url());
    refused(&client.post_as_get(&theirs, &orders).await, "listing another's orders");
    let deactivate = json!({ "status": "deactivated" });
    refused(
        &client.post(&theirs, mine.account_url(), &deactivate).await,
        "deactivating another's account",
    );

    assert!(lab.responder.requests().is_empty(), "another's POST {{}} started a validation");
    let challenge = client.post_as_get(&mine, &challenge_url).await.json();
    assert_eq!(challenge["status"], "pending", "{challenge}");
    let account = client.post_as_get(&mine, mine.account_url()).await.json();
    assert_eq!(account["status"], "valid", "{account}");

    // Issued, the certificate is not theirs to download or revoke.
    let challenge = respond_and_settle(&mut client, &mine, &pending).await;
    assert_eq!(challenge["status"], "valid", "{challenge}\n{}", lab.log());
    client.poll(&mine, &order_url, &["ready"], SETTLE).await;
    let reply = client.post(&mine, &finalize, &csr).await;
    assert_eq!(reply.status, 200, "finalize: {}", reply.summary());
    let order = client.poll(&mine, &order_url, &["valid", "invalid"], SETTLE).await.json();
    let certificate_url = order["certificate"].as_str().expect("the certificate URL").to_owned();
    let reply = client.post_as_get_accepting(&theirs, &certificate_url, PEM_CHAIN).await;
    refused(&reply, "downloading another's certificate");
    assert!(!reply.text().contains("BEGIN CERTIFICATE"), "{}", reply.summary());
    let chain = client.post_as_get_accepting(&mine, &certificate_url, PEM_CHAIN).await;
    let issued = Issued { order_url, chain_pem: chain.text() };
    let revoke = json!({ "certificate": b64url(&issued.leaf_der()) });
    let reply = client.post(&theirs, &client.url("revokeCert"), &revoke).await;
    assert_problem(&reply, "unauthorized", 403, "revoking another's certificate");
    let store = lab.authority.store().await;
    assert!(!store.is_revoked(&issued.serial()).await.unwrap(), "revoked by another account");
    store.close().await;
}

/// Without `[acme] allow`, loopback is refused by the validation policy: the challenge is
/// invalid (rejectedIdentifier or connection) and the responder is never contacted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_address_is_never_contacted() {
    let lab =
        Lab::start(Engine::Sqlite, Options { require_eab: false, allow_loopback: false }).await;
    let mut client = lab.client().await;
    let account = client.register().await;
    let (order_url, order) = client.new_order(&account, &loopback_identifiers()).await;
    let pending = pending_http01(&mut client, &account, &order).await;
    lab.responder.serve(pending.challenge["token"].as_str().unwrap(), &pending.key_authorization);

    let challenge = respond_and_settle(&mut client, &account, &pending).await;
    assert_eq!(challenge["status"], "invalid", "{challenge}\n{}", lab.log());
    let kind = error_type(&challenge);
    assert!(["rejectedIdentifier", "connection"].contains(&kind.as_str()), "{challenge}");
    assert_eq!(lab.responder.requests(), Vec::<String>::new(), "a denied address was contacted");
    let order = client.post_as_get(&account, &order_url).await.json();
    assert_eq!(order["status"], "invalid", "{order}");
}

// --- 3. external account binding ---------------------------------------------------------

/// `--require-eab` (§7.3.4): the directory says so; no binding is externalAccountRequired;
/// a wrong MAC or an unknown key ID is refused and leaves the key unbound; a good binding
/// makes the account; the same key cannot bind a second account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_account_binding_is_required_and_single_use() {
    let lab = Lab::start(Engine::Sqlite, Options { require_eab: true, allow_loopback: true }).await;
    let mut client = lab.client().await;
    assert_eq!(
        client.directory["meta"]["externalAccountRequired"],
        json!(true),
        "{}",
        client.directory
    );
    let new_account = client.url("newAccount");

    let mut signer = Signer::generate();
    let reply = client.new_account(&mut signer, &json!({ "termsOfServiceAgreed": true })).await;
    assert_problem(&reply, "externalAccountRequired", 400, "newAccount without a binding");

    let (key_id, hmac_key) = lab.eab_key();
    let binding = |key_id: &str, hmac: &[u8], signer: &Signer| {
        json!({
            "termsOfServiceAgreed": true,
            "externalAccountBinding": external_account_binding(key_id, hmac, &signer.key, &new_account),
        })
    };

    let wrong_mac = binding(&key_id, b"not the operator's HMAC key, 32b", &signer);
    let reply = client.new_account(&mut signer, &wrong_mac).await;
    let kind = assert_rfc_problem(&reply, "a binding with a wrong MAC");
    assert!(["unauthorized", "malformed"].contains(&kind.as_str()), "{}", reply.summary());
    let unknown = binding("no-such-key-id", &hmac_key, &signer);
    let reply = client.new_account(&mut signer, &unknown).await;
    let kind = assert_rfc_problem(&reply, "a binding with an unknown key ID");
    assert!(["unauthorized", "malformed"].contains(&kind.as_str()), "{}", reply.summary());
    assert_eq!(signer.kid, None);

    let good = binding(&key_id, &hmac_key, &signer);
    let reply = client.new_account(&mut signer, &good).await;
    assert_eq!(reply.status, 201, "newAccount with a binding: {}\n{}", reply.summary(), lab.log());
    assert!(signer.kid.is_some());

    let mut second = Signer::generate();
    let reused = binding(&key_id, &hmac_key, &second);
    let reply = client.new_account(&mut second, &reused).await;
    assert_problem(&reply, "unauthorized", 403, "a second account with the same EAB key");
    assert_eq!(second.kid, None);

    // The bound account works; a binding for another key cannot be replayed by a second
    // account key (the payload is the first key).
    let read = client.post_as_get(&signer, signer.account_url()).await;
    assert_eq!(read.status, 200, "the bound account: {}", read.summary());
    let (other_id, other_hmac) = lab.eab_key();
    let mut third = Signer::generate();
    let stolen = binding(&other_id, &other_hmac, &signer);
    let reply = client.new_account(&mut third, &stolen).await;
    let kind = assert_rfc_problem(&reply, "a binding over another account key");
    assert!(["unauthorized", "malformed"].contains(&kind.as_str()), "{}", reply.summary());
    let mine = binding(&other_id, &other_hmac, &third);
    let reply = client.new_account(&mut third, &mine).await;
    assert_eq!(
        reply.status,
        201,
        "the key refused for a stolen binding is still unbound: {}",
        reply.summary()
    );
}
