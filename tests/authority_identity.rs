//! The identity and cloud provisioners through the real `keystation authority serve` on
//! loopback, each test on SQLite (the default store) and on PostgreSQL (issue 13):
//!
//! * **OIDC** against a real OpenID provider — panva's certified `oidc-provider` from npm
//!   (`backends/oidc/tests/oidc`), its ID tokens obtained through its own
//!   authorization-code flow by a login driver: a verified user's token is accepted and
//!   certifies the user's e-mail; a token from a second provider, one whose e-mail is not
//!   verified, one from an e-mail domain not allowed, one for another client, a replayed
//!   one and an expired one are refused, each with a message naming the check.
//! * **AWS** instance identity through `keystation ca token --type aws` reading a loopback
//!   metadata service (IMDSv2) whose documents are signed by the test's own RSA key,
//!   configured as the provisioner's `iidRoots`: the first certificate per instance is
//!   issued, a second is refused (trust on first use); a forged document naming the same
//!   instance, signed by another key, is refused without touching the instance's record;
//!   `keystation authority tofu reset` lets the instance in again.
//!
//! ```text
//! scripts/with-postgres cargo test --features test-authority --test authority_identity
//! ```
//!
//! Needs `KEYSTATION_TEST_POSTGRES_URL` (scripts/with-postgres) and
//! `KEYSTATION_TEST_OIDC_DIR` (the provider's directory with its `node_modules`, which
//! scripts/test installs with `npm ci`); either unset fails the tests, saying so.
#![cfg(all(feature = "test-authority", feature = "oidc", feature = "iid-aws"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "support/authority_harness.rs"]
mod harness;
use harness::*;

// --- the OpenID provider ----------------------------------------------------------------

/// The provider's directory, with `node_modules` installed.
fn oidc_dir() -> PathBuf {
    let dir = std::env::var_os("KEYSTATION_TEST_OIDC_DIR").map(PathBuf::from).unwrap_or_else(
        || panic!("KEYSTATION_TEST_OIDC_DIR is not set: run under scripts/test, which installs the OpenID provider (npm ci in backends/oidc/tests/oidc)"),
    );
    assert!(
        dir.join("node_modules/oidc-provider").is_dir(),
        "{} has no node_modules/oidc-provider: run `npm ci` there",
        dir.display()
    );
    dir
}

/// A running `provider.mjs`, killed on drop.
struct Provider {
    child: Child,
    issuer: String,
}

impl Provider {
    fn start(extra: &[&str]) -> Self {
        let dir = oidc_dir();
        let mut child = Command::new("node")
            .arg(dir.join("provider.mjs"))
            .args(extra)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node (Debian: nodejs): {e}"));
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let started: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("provider.mjs printed {line:?}, not its JSON line: {e}"));
        let issuer = started["issuer"].as_str().unwrap().to_owned();
        Self { child, issuer }
    }

    /// An ID token for `user`, through the provider's own login and consent.
    fn login(&self, user: &str, client: Option<(&str, &str)>) -> String {
        let dir = oidc_dir();
        let mut command = Command::new("node");
        command.arg(dir.join("login.mjs")).args(["--issuer", &self.issuer, "--user", user]);
        if let Some((id, secret)) = client {
            command.args(["--client-id", id, "--client-secret", secret]);
        }
        let output = command.current_dir(&dir).output().unwrap();
        assert!(
            output.status.success(),
            "login.mjs as {user} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- requests ----------------------------------------------------------------------------

/// A PEM certificate request for a fresh P-256 key naming the e-mail `email` and nothing
/// else.
fn email_csr(email: &str) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.subject_alt_names = vec![rcgen::SanType::Rfc822Name(email.try_into().unwrap())];
    params.serialize_request(&key).unwrap().pem().unwrap()
}

fn run_ok(mut command: Command, what: &str) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `keystation authority <args…>` against the authority's state.
fn authority_command(authority: &Authority, args: &[&str]) -> Command {
    let mut command = keystation(authority.dir.path());
    command.arg("authority").args(args).arg("--dir").arg(&authority.state);
    if let Some(url) = &authority.database.url {
        command.args(["--database", url]);
    }
    command
}

fn assert_refused(answer: &Answer, status: u16, needle: &str, what: &str) {
    assert_eq!(answer.status, status, "{what}: {}", answer.text);
    assert!(
        answer.message().to_lowercase().contains(&needle.to_lowercase()),
        "{what}: the message {:?} does not say {needle:?}",
        answer.message()
    );
}

// --- OIDC --------------------------------------------------------------------------------

async fn oidc(engine: Engine) {
    // A provider whose ID tokens live 2 s: its token is the expired one, checked last.
    let short = Provider::start(&["--id-token-ttl", "2"]);
    let provider = Provider::start(&[]);
    let stranger = Provider::start(&[]);

    let port = free_port();
    let authority = Authority::init(engine, port);
    let discovery = |p: &Provider| format!("{}/.well-known/openid-configuration", p.issuer);
    for (name, p) in [("oidc", &provider), ("oidc-short", &short)] {
        let client = "keystation";
        run_ok(
            authority_command(
                &authority,
                &[
                    "provisioner",
                    "add",
                    name,
                    "--type",
                    "OIDC",
                    "--client-id",
                    client,
                    "--client-secret",
                    "keystation-secret",
                    "--configuration-endpoint",
                    &discovery(p),
                    "--domain",
                    "example.com",
                ],
            ),
            "authority provisioner add --type OIDC",
        );
    }
    let expiring = short.login("alice", None);
    let expiring_issued = Instant::now();

    let mut server = authority.serve(port, "oidc");
    server.wait_healthy().await;
    let client = &server.client;

    // A verified user of the configured provider gets a certificate for the e-mail.
    let alice = provider.login("alice", None);
    let answer = client.sign(&email_csr("alice@example.com"), &alice).await;
    assert_eq!(answer.status, 201, "alice's ID token: {}\n{}", answer.text, server.log_tail());
    let leaf = answer.json()["crt"].as_str().unwrap().to_owned();
    let certificate = keystation_x509::Certificate::from_pem(&leaf).unwrap();
    assert!(
        format!("{:?}", certificate.subject_alt_names()).contains("alice@example.com"),
        "the certificate names alice's e-mail"
    );

    // The same ID token again: replay.
    let answer = client.sign(&email_csr("alice@example.com"), &alice).await;
    assert_refused(&answer, 401, "already used", "a replayed ID token");

    // A name the token does not vouch for.
    let alice2 = provider.login("alice", None);
    let answer = client.sign(&email_csr("root@example.com"), &alice2).await;
    assert_refused(&answer, 403, "does not allow", "a CSR for another e-mail");
    // …and the refusal spent nothing: the same token with a correct CSR works.
    let answer = client.sign(&email_csr("alice@example.com"), &alice2).await;
    assert_eq!(answer.status, 201, "alice's second token after a refused CSR: {}", answer.text);

    // bob's e-mail is not verified by the provider.
    let bob = provider.login("bob", None);
    let answer = client.sign(&email_csr("bob@example.com"), &bob).await;
    assert_refused(&answer, 403, "violates provisioner policy", "an unverified e-mail");
    assert!(server.log().contains("email_verified"), "the log names the unverified e-mail");

    // carol is verified, but at a domain the provisioner does not accept.
    let carol = provider.login("carol", None);
    let answer = client.sign(&email_csr("carol@other.example"), &carol).await;
    assert_refused(&answer, 403, "violates provisioner policy", "an e-mail domain not allowed");

    // alice at another provider (same client ID): not this provisioner's issuer or keys.
    let elsewhere = stranger.login("alice", None);
    let answer = client.sign(&email_csr("alice@example.com"), &elsewhere).await;
    assert_refused(&answer, 401, "unauthorized", "a token from a second provider");

    // A token the provider issued to another client.
    let other = provider.login("alice", Some(("other-app", "other-app-secret")));
    let answer = client.sign(&email_csr("alice@example.com"), &other).await;
    assert_refused(&answer, 401, "unauthorized", "a token for another client");

    // The expired token: its exp (2 s) plus the 60 s leeway must have passed.
    let wait = Duration::from_secs(2 + 60 + 2).saturating_sub(expiring_issued.elapsed());
    tokio::time::sleep(wait).await;
    let answer = client.sign(&email_csr("alice@example.com"), &expiring).await;
    assert_refused(&answer, 401, "expired", "an expired ID token");

    // Only alice's two certificates are recorded.
    let store = authority.store().await;
    let issued = store.certificates_for_subject(&certificate_subject(&leaf)).await.unwrap();
    assert_eq!(issued.len(), 2, "alice's two certificates, nothing else");
    drop(server);
}

/// The subject the store records a certificate under (its common name, else its first
/// SAN).
fn certificate_subject(pem: &str) -> String {
    let certificate = keystation_x509::Certificate::from_pem(pem).unwrap();
    certificate.subject_common_name().unwrap_or_default().to_owned()
}

// --- AWS ---------------------------------------------------------------------------------

/// The test's own instance-identity signing pair (RSA-1024, as AWS's per-region keys), made
/// for keystation-iid-aws's tests.
const IID_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/backends/iid-aws/tests/data");

/// An identity document as the metadata service serves it (AWS's fields, order and
/// pretty-printing), pending since two minutes ago.
fn iid_document(instance: &str) -> String {
    let pending = keystation_x509::rfc3339(
        i64::try_from(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
        )
        .unwrap()
            - 120,
    );
    format!(
        r#"{{
  "accountId" : "123456789012",
  "architecture" : "x86_64",
  "availabilityZone" : "eu-west-1a",
  "billingProducts" : null,
  "devpayProductCodes" : null,
  "marketplaceProductCodes" : null,
  "imageId" : "ami-0c1bc246476a5572b",
  "instanceId" : "{instance}",
  "instanceType" : "t3.micro",
  "kernelId" : null,
  "pendingTime" : "{pending}",
  "privateIp" : "10.0.7.21",
  "ramdiskId" : null,
  "region" : "eu-west-1",
  "version" : "2017-09-30"
}}"#
    )
}

/// The document's `/signature`: base64 of RSA PKCS#1 v1.5 SHA-256 with `key`.
fn iid_signature(key: &str, document: &str) -> String {
    use base64::Engine as _;
    use rsa::pkcs8::DecodePrivateKey as _;
    use rsa::signature::{SignatureEncoding as _, Signer as _};
    let pem = std::fs::read_to_string(format!("{IID_DATA}/{key}.key")).unwrap();
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).unwrap();
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key);
    base64::engine::general_purpose::STANDARD.encode(signer.sign(document.as_bytes()).to_vec())
}

/// A loopback IMDSv2: `PUT /latest/api/token` hands out a session token, which the
/// document and signature paths require. What it serves can be swapped between requests.
struct Imds {
    url: String,
    served: std::sync::Arc<std::sync::Mutex<(String, String)>>,
}

impl Imds {
    async fn start(document: String, signature: String) -> Self {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let served = std::sync::Arc::new(std::sync::Mutex::new((document, signature)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = served.clone();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tcp.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&seen).to_ascii_lowercase();
                    let line = head.lines().next().unwrap_or_default().to_owned();
                    let session = head.contains("x-aws-ec2-metadata-token: session-1");
                    let (document, signature) = state.lock().unwrap().clone();
                    let (status, body) = if line.starts_with("put /latest/api/token ")
                        && head.contains("x-aws-ec2-metadata-token-ttl-seconds:")
                    {
                        ("200 OK", "session-1".to_owned())
                    } else if !session {
                        ("401 Unauthorized", String::new())
                    } else if line.starts_with("get /latest/dynamic/instance-identity/document ") {
                        ("200 OK", document)
                    } else if line.starts_with("get /latest/dynamic/instance-identity/signature ") {
                        ("200 OK", signature)
                    } else {
                        ("404 Not Found", String::new())
                    };
                    let response = format!(
                        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tcp.write_all(response.as_bytes()).await;
                    let _ = tcp.shutdown().await;
                });
            }
        });
        Self { url, served }
    }

    fn serve(&self, document: String, signature: String) {
        *self.served.lock().unwrap() = (document, signature);
    }
}

/// `keystation ca token SUBJECT --type aws` against `imds`, as a host runs it.
fn aws_token(authority: &Authority, ca_url: &str, imds: &Imds, subject: &str) -> String {
    let mut command = keystation(authority.dir.path());
    command.args([
        "ca",
        "token",
        subject,
        "--type",
        "aws",
        "--provisioner",
        "aws",
        "--ca-url",
        ca_url,
        "--metadata-url",
        &imds.url,
    ]);
    run_ok(command, "keystation ca token --type aws").trim().to_owned()
}

async fn aws_trust_on_first_use(engine: Engine) {
    let port = free_port();
    let authority = Authority::init(engine, port);
    let roots = format!("{IID_DATA}/iid-test-rsa1024.pem");
    run_ok(
        authority_command(
            &authority,
            &[
                "provisioner",
                "add",
                "aws",
                "--type",
                "AWS",
                "--aws-account",
                "123456789012",
                "--instance-age",
                "1h",
                "--iid-roots",
                &roots,
            ],
        ),
        "authority provisioner add --type AWS",
    );
    let mut server = authority.serve(port, "aws");
    server.wait_healthy().await;
    let client = &server.client;
    let ca_url = format!("https://127.0.0.1:{port}");
    let host_csr = || harness::csr("i-0123456789abcdef0", &[]);

    // The instance's first certificate.
    let document = iid_document("i-0123456789abcdef0");
    let imds = Imds::start(document.clone(), iid_signature("iid-test-rsa1024", &document)).await;
    let first = aws_token(&authority, &ca_url, &imds, "i-0123456789abcdef0");
    let answer = client.sign(&host_csr(), &first).await;
    assert_eq!(
        answer.status,
        201,
        "the instance's first token: {}\n{}",
        answer.text,
        server.log_tail()
    );

    // A second token of the same instance (a second later, so not the same token): its
    // one certificate is spent.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = aws_token(&authority, &ca_url, &imds, "i-0123456789abcdef0");
    assert_ne!(first, second, "each token is new");
    let answer = client.sign(&host_csr(), &second).await;
    assert_refused(&answer, 401, "already used", "the instance's second token");

    // A forged document for a victim instance, signed by another key: refused, and the
    // victim's slot is untouched.
    let victim = iid_document("i-0victim00000000000");
    imds.serve(victim.clone(), iid_signature("iid-attacker-rsa1024", &victim));
    let forged = aws_token(&authority, &ca_url, &imds, "i-0victim00000000000");
    let answer = client.sign(&harness::csr("i-0victim00000000000", &[]), &forged).await;
    assert_refused(&answer, 401, "unauthorized", "a document signed by another key");

    // The victim's genuine first token still works.
    imds.serve(victim.clone(), iid_signature("iid-test-rsa1024", &victim));
    let genuine = aws_token(&authority, &ca_url, &imds, "i-0victim00000000000");
    let answer = client.sign(&harness::csr("i-0victim00000000000", &[]), &genuine).await;
    assert_eq!(answer.status, 201, "the victim's own first token: {}", answer.text);

    // The operator sees both instances and resets the first; it may enrol again.
    let listed = run_ok(authority_command(&authority, &["tofu", "list"]), "authority tofu list");
    assert!(listed.contains("aws\ti-0123456789abcdef0\t"), "{listed}");
    assert!(listed.contains("aws\ti-0victim00000000000\t"), "{listed}");
    imds.serve(document.clone(), iid_signature("iid-test-rsa1024", &document));
    run_ok(
        authority_command(
            &authority,
            &["tofu", "reset", "--provisioner", "aws", "i-0123456789abcdef0"],
        ),
        "authority tofu reset",
    );
    let again = aws_token(&authority, &ca_url, &imds, "i-0123456789abcdef0");
    let answer = client.sign(&host_csr(), &again).await;
    assert_eq!(answer.status, 201, "after the reset: {}", answer.text);
    // Resetting an instance with no record says so.
    let mut unknown =
        authority_command(&authority, &["tofu", "reset", "--provisioner", "aws", "i-0nothing"]);
    let output = unknown.output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("has no record of instance"));
}

// --- ca token for GCP and Azure ------------------------------------------------------------

/// A one-route metadata server: answers `GET <path>…` carrying `header` with `body`, and
/// anything else with 404; records the request lines it saw.
async fn metadata_server(
    path: &'static str,
    header: &'static str,
    body: String,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let (log, body) = (log.clone(), body.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let line = head.lines().next().unwrap_or_default().to_owned();
                log.lock().unwrap().push(line.clone());
                let ok = line.starts_with(&format!("GET {path}"))
                    && head.to_ascii_lowercase().contains(&header.to_ascii_lowercase());
                let (status, body) =
                    if ok { ("200 OK", body) } else { ("404 Not Found", String::new()) };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tcp.write_all(response.as_bytes()).await;
            });
        }
    });
    (url, seen)
}

/// `keystation ca token --type gcp|azure` reads the token from the metadata service as
/// step does (the audience, the metadata headers) and prints it as it came.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_token_reads_gcp_and_azure_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ0ZXN0In0.c2lnbmF0dXJl";
    let (gcp, gcp_seen) = metadata_server(
        "/computeMetadata/v1/instance/service-accounts/default/identity?audience=",
        "metadata-flavor: google",
        jwt.to_owned(),
    )
    .await;
    let mut command = keystation(dir.path());
    command.args([
        "ca",
        "token",
        "--type",
        "gcp",
        "--provisioner",
        "gcp",
        "--ca-url",
        "https://ca.example:9443",
        "--metadata-url",
        &gcp,
    ]);
    let printed = run_ok(command, "keystation ca token --type gcp");
    assert_eq!(printed.trim(), jwt);
    let line = gcp_seen.lock().unwrap()[0].clone();
    assert!(
        line.contains("audience=https%3A%2F%2Fca.example%3A9443%2F1.0%2Fsign%23gcp%2Fgcp")
            && line.contains("format=full"),
        "{line}"
    );

    let (azure, azure_seen) = metadata_server(
        "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=",
        "metadata: true",
        format!(r#"{{"access_token":"{jwt}","token_type":"Bearer","expires_in":"86399"}}"#),
    )
    .await;
    let mut command = keystation(dir.path());
    command.args([
        "ca",
        "token",
        "--type",
        "azure",
        "--provisioner",
        "azure",
        "--ca-url",
        "https://ca.example:9443",
        "--metadata-url",
        &azure,
    ]);
    let printed = run_ok(command, "keystation ca token --type azure");
    assert_eq!(printed.trim(), jwt);
    assert!(
        azure_seen.lock().unwrap()[0].contains("resource=https%3A%2F%2Fmanagement.azure.com%2F")
    );

    // Nothing listening: a clear error naming the metadata service, exit status 1.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let output = keystation(dir.path())
        .args([
            "ca",
            "token",
            "--type",
            "azure",
            "--provisioner",
            "azure",
            "--ca-url",
            "https://ca.example:9443",
        ])
        .args(["--metadata-url", &format!("http://{closed}")])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("metadata service") && stderr.contains(&closed.to_string()),
        "{stderr}"
    );
    // AWS needs the subject, as step does.
    let output = keystation(dir.path())
        .args([
            "ca",
            "token",
            "--type",
            "aws",
            "--provisioner",
            "aws",
            "--ca-url",
            "https://ca.example:9443",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

// --- provisioner add ---------------------------------------------------------------------

/// `authority provisioner add` knows every identity and cloud type with step's flags; each
/// object is checked by its crate before it is stored, and a bad one is refused.
#[test]
fn provisioner_add_knows_every_identity_and_cloud_type() {
    let authority = Authority::init(Engine::Sqlite, free_port());
    let key = authority.dir.path().join("sa.pub");
    let generated = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 | openssl pkey -pubout -out {}",
            key.display()
        ))
        .status()
        .unwrap();
    assert!(generated.success(), "openssl made the service-account key");
    let key = key.display().to_string();
    let adds: [&[&str]; 5] = [
        &[
            "oidc",
            "--type",
            "OIDC",
            "--client-id",
            "keystation",
            "--client-secret",
            "s3cret",
            "--configuration-endpoint",
            "https://accounts.example.com",
            "--admin",
            "ops@example.com",
            "--domain",
            "example.com",
            "--group",
            "ops",
        ],
        &["k8s", "--type", "K8sSA", "--public-key", &key, "--field", "allowLegacyTokens=true"],
        &[
            "aws",
            "--type",
            "AWS",
            "--aws-account",
            "123456789012",
            "--instance-age",
            "1h",
            "--disable-custom-sans",
        ],
        &[
            "gcp",
            "--type",
            "GCP",
            "--gcp-project",
            "my-project",
            "--gcp-service-account",
            "vm@my-project.iam.gserviceaccount.com",
            "--instance-age",
            "24h",
        ],
        &[
            "azure",
            "--type",
            "Azure",
            "--azure-tenant",
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "--azure-resource-group",
            "web",
            "--disable-trust-on-first-use",
        ],
    ];
    for add in adds {
        let mut args = vec!["provisioner", "add"];
        args.extend_from_slice(add);
        run_ok(authority_command(&authority, &args), &format!("provisioner add {}", add[0]));
    }
    let listed =
        run_ok(authority_command(&authority, &["provisioner", "list"]), "provisioner list");
    for (name, kind, field) in [
        ("oidc", "OIDC", r#""clientID":"keystation""#),
        ("k8s", "K8sSA", r#""publicKeys":"#),
        ("aws", "AWS", r#""accounts":["123456789012"]"#),
        ("gcp", "GCP", r#""projectIDs":["my-project"]"#),
        ("azure", "Azure", r#""resourceGroups":["web"]"#),
    ] {
        let line = listed
            .lines()
            .find(|l| l.starts_with(&format!("{name}\t")))
            .unwrap_or_else(|| panic!("{name} is not listed:\n{listed}"));
        assert!(line.contains(&format!("\t{kind}\t")) && line.contains(field), "{line}");
    }
    // Each type's crate checks its object: a GCP provisioner without projects or accounts
    // is fine, but a malformed instance age is not; an unknown type is a usage error.
    let output = authority_command(
        &authority,
        &["provisioner", "add", "gcp2", "--type", "GCP", "--instance-age", "soon"],
    )
    .output()
    .unwrap();
    assert!(!output.status.success(), "a malformed instanceAge is refused");
    assert!(String::from_utf8_lossy(&output.stderr).contains("instanceAge"));
    let output = authority_command(&authority, &["provisioner", "add", "x", "--type", "SCEP"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_trust_on_first_use_sqlite() {
    aws_trust_on_first_use(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_trust_on_first_use_postgres() {
    aws_trust_on_first_use(Engine::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oidc_real_provider_sqlite() {
    oidc(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oidc_real_provider_postgres() {
    oidc(Engine::Postgres).await;
}
