//! The real parts the kube proxy tests stand on, checked against independent clients:
//!
//! * `support/test_pki.rs`: the test PKI, checked with `openssl` (chains, key forms);
//! * `support/nginx.rs`: a private nginx serving a canned Kubernetes API over mutual TLS,
//!   checked with `curl` and with `kubectl` pointed straight at it;
//! * `support/kube_api.rs`: the fake certificates.k8s.io CSR API, driven with `curl`.
//!
//! nginx, curl, openssl and kubectl come from Debian packages that `scripts/test` installs;
//! a missing tool fails the test and says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// Only the kube modules are used here; the other support modules are for other tests.
#[allow(dead_code)]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use support::kube_api::{
    Approval, Auth, CLIENT_SIGNER, CSR_PATH, KubeApi, KubeApiConfig, Misbehavior,
};
use support::nginx::{ClientCerts, Nginx, NginxOptions, POD_NAME};
use support::test_pki::{CLIENT_CN, KeyKind, Pki, PkiFiles, generate_key, parse_csr};

/// The absolute path of `name` on PATH, or a failure that says how to get it.
fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not on PATH: run scripts/test, which installs it (Debian packages)")
        })
}

fn run(command: &mut Command) -> Output {
    command.output().unwrap_or_else(|e| panic!("running {command:?}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// One curl request: (HTTP status, or 0 if no HTTP answer; body; curl's exit code).
struct Curl {
    status: u16,
    body: String,
    content_type: String,
    exit: i32,
    stderr: String,
}

fn curl(ca: &Path, url: &str, extra: &[&str]) -> Curl {
    let output = run(Command::new(tool("curl"))
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(ca)
        .args(["-w", "\n%{http_code} %{content_type}"])
        .args(extra)
        .arg(url));
    let stdout = text(&output.stdout);
    let (body, trailer) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    let (status, content_type) = trailer.split_once(' ').unwrap_or((trailer, ""));
    Curl {
        status: status.trim().parse().unwrap_or(0),
        body: body.to_owned(),
        content_type: content_type.trim().to_owned(),
        exit: output.status.code().unwrap_or(-1),
        stderr: text(&output.stderr),
    }
}

fn with_cert<'a>(cert: &'a Path, key: &'a Path) -> [&'a str; 4] {
    ["--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap()]
}

struct Setup {
    _dir: tempfile::TempDir,
    files: PkiFiles,
    pki: Pki,
    nginx: Nginx,
}

fn start_nginx() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new().unwrap();
    let files = pki.write_to(dir.path()).unwrap();
    let prefix = dir.path().join("nginx");
    std::fs::create_dir(&prefix).unwrap();
    let nginx = Nginx::start(&prefix, &pki, &NginxOptions::default()).unwrap();
    Setup { _dir: dir, files, pki, nginx }
}

#[test]
fn test_pki_certificates_chain_and_key_forms_agree_with_openssl() {
    let openssl = tool("openssl");
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new().unwrap();
    let f = pki.write_to(dir.path()).unwrap();

    for cert in [&f.server_cert, &f.client_cert, &f.client_rsa_cert] {
        let out =
            run(Command::new(&openssl).arg("verify").arg("-CAfile").arg(&f.ca_cert).arg(cert));
        assert!(out.status.success(), "{}: {}", cert.display(), text(&out.stderr));
    }
    let out = run(Command::new(&openssl)
        .arg("verify")
        .arg("-CAfile")
        .arg(&f.ca_cert)
        .arg(&f.other_client_cert));
    assert!(!out.status.success(), "the unrelated CA's client must not chain to the test CA");

    // The server certificate names localhost and 127.0.0.1.
    let out = run(Command::new(&openssl)
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(&f.server_cert));
    let sans = text(&out.stdout);
    assert!(sans.contains("DNS:localhost") && sans.contains("IP Address:127.0.0.1"), "{sans}");

    // The client subject is what Kubernetes reads as user and group.
    let out = run(Command::new(&openssl)
        .args(["x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in"])
        .arg(&f.client_cert));
    assert_eq!(text(&out.stdout).trim(), "subject=CN=system:admin,O=system:masters");

    // PKCS #8 and SEC 1 forms hold the same key as the certificate.
    let public_of = |args: &[&str], file: &Path| {
        let out = run(Command::new(&openssl).args(args).arg(file).arg("-pubout"));
        assert!(out.status.success(), "{args:?} {}: {}", file.display(), text(&out.stderr));
        text(&out.stdout)
    };
    let from_cert = text(
        &run(Command::new(&openssl).args(["x509", "-noout", "-pubkey", "-in"]).arg(&f.client_cert))
            .stdout,
    );
    assert_eq!(public_of(&["pkey", "-in"], &f.client_key), from_cert);
    assert_eq!(public_of(&["ec", "-in"], &f.client_key_sec1), from_cert);
    let sec1 = std::fs::read_to_string(&f.client_key_sec1).unwrap();
    assert!(sec1.starts_with("-----BEGIN EC PRIVATE KEY-----"), "{sec1}");
    let rsa = text(
        &run(Command::new(&openssl)
            .args(["pkey", "-noout", "-text", "-in"])
            .arg(&f.client_rsa_key))
        .stdout,
    );
    assert!(rsa.contains("2048 bit"), "{rsa}");
}

#[test]
fn nginx_refuses_requests_without_a_client_certificate_from_the_test_ca() {
    let s = start_nginx();
    let url = format!("{}/whoami", s.nginx.url());

    let none = curl(&s.files.ca_cert, &url, &[]);
    assert_eq!(none.status, 400, "no client certificate: {} {}", none.body, none.stderr);
    assert!(none.body.contains("No required SSL certificate"), "{}", none.body);

    let other = curl(
        &s.files.ca_cert,
        &url,
        &with_cert(&s.files.other_client_cert, &s.files.other_client_key),
    );
    assert_eq!(other.status, 400, "unrelated CA: {} {}", other.body, other.stderr);
    assert!(!other.body.contains("system:admin"), "{}", other.body);

    // The same server certificate is not trusted without the test CA.
    let untrusted =
        curl(&s.files.other_ca_cert, &url, &with_cert(&s.files.client_cert, &s.files.client_key));
    assert_eq!(untrusted.status, 0, "curl must refuse the server: {}", untrusted.body);
    assert_ne!(untrusted.exit, 0);
}

#[test]
fn nginx_accepts_the_test_client_and_reports_its_subject() {
    let s = start_nginx();
    let url = format!("{}/whoami", s.nginx.url());
    for (cert, key) in [
        (&s.files.client_cert, &s.files.client_key),
        (&s.files.client_cert, &s.files.client_key_sec1),
        (&s.files.client_rsa_cert, &s.files.client_rsa_key),
    ] {
        let ok = curl(&s.files.ca_cert, &url, &with_cert(cert, key));
        assert_eq!(ok.status, 200, "{}: {} {}", key.display(), ok.body, ok.stderr);
        assert_eq!(ok.content_type, "application/json");
        let whoami: Value = serde_json::from_str(&ok.body).unwrap();
        assert_eq!(whoami["subject"], "CN=system:admin,O=system:masters", "{whoami}");
        assert_eq!(whoami["verify"], "SUCCESS", "{whoami}");
    }

    // Every canned document is JSON with the right kind.
    let cert = with_cert(&s.files.client_cert, &s.files.client_key);
    for (path, kind) in [
        ("/api", "APIVersions"),
        ("/apis", "APIGroupList"),
        ("/api/v1", "APIResourceList"),
        ("/api/v1/namespaces/default/pods", "PodList"),
    ] {
        let r = curl(&s.files.ca_cert, &format!("{}{path}", s.nginx.url()), &cert);
        assert_eq!((r.status, r.content_type.as_str()), (200, "application/json"), "{path}");
        let doc: Value = serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(doc["kind"], kind, "{path}");
    }
    let missing = curl(&s.files.ca_cert, &format!("{}/api/v1/secrets", s.nginx.url()), &cert);
    assert_eq!(missing.status, 404);
    assert_eq!(serde_json::from_str::<Value>(&missing.body).unwrap()["reason"], "NotFound");
}

/// `openssl s_client` to `port` with the test client; `stdin` is sent, then EOF is ignored
/// until the server closes.
fn s_client(s: &Setup, args: &[&str], stdin: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(tool("openssl"))
        .args(["s_client", "-connect", &format!("127.0.0.1:{}", s.nginx.port()), "-CAfile"])
        .arg(&s.files.ca_cert)
        .arg("-cert")
        .arg(&s.files.client_cert)
        .arg("-key")
        .arg(&s.files.client_key)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    text(&child.wait_with_output().unwrap().stdout)
}

#[test]
fn nginx_never_resumes_tls_sessions() {
    let s = start_nginx();
    // TLS 1.2: s_client connects six times with the first session and prints "New," or
    // "Reused," for each (against a server with a session cache, five are "Reused,").
    let out = s_client(&s, &["-reconnect", "-tls1_2"], "");
    assert_eq!(out.matches("New, ").count(), 6, "{out}");
    assert!(!out.contains("Reused, "), "a TLS 1.2 session was resumed:\n{out}");

    // TLS 1.3: tickets arrive after the handshake, so a request is made and the session
    // saved; a second connection offers it.
    let dir = tempfile::tempdir().unwrap();
    let session = dir.path().join("session");
    let session_arg = session.to_str().unwrap();
    let request = "GET /version HTTP/1.0\r\nHost: localhost\r\n\r\n";
    let first = s_client(&s, &["-tls1_3", "-ign_eof", "-sess_out", session_arg], request);
    assert!(first.contains("v1.32.0-keystation-test"), "{first}");
    if session.exists() {
        let second = s_client(&s, &["-tls1_3", "-ign_eof", "-sess_in", session_arg], request);
        assert!(second.contains("New, TLSv1.3"), "{second}");
        assert!(!second.contains("Reused, "), "a TLS 1.3 session was resumed:\n{second}");
    }
}

#[test]
fn nginx_stops_on_drop_and_reports_a_bad_start() {
    let s = start_nginx();
    let port = s.nginx.port();
    let pid = s.nginx.pid().unwrap();
    drop(s.nginx);
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "nginx {pid} still runs");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "port {port} still open");

    // A broken configuration: the error names the problem from nginx's log.
    let dir = tempfile::tempdir().unwrap();
    let options = NginxOptions {
        extra_server_config: "no_such_directive on;".to_owned(),
        ..NginxOptions::default()
    };
    let err = Nginx::start(dir.path(), &s.pki, &options).unwrap_err();
    assert!(err.0.contains("no_such_directive"), "{err}");
}

/// A kubeconfig (JSON is YAML) for `server` with the CA and the client's cert and key inline.
fn kubeconfig(dir: &Path, server: &str, pki: &Pki, cert_pem: &str, key_pem: &str) -> PathBuf {
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {
            "server": server,
            "certificate-authority-data": BASE64.encode(&pki.ca.cert_pem),
        }}],
        "users": [{"name": "admin", "user": {
            "client-certificate-data": BASE64.encode(cert_pem),
            "client-key-data": BASE64.encode(key_pem),
        }}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}],
        "current-context": "test",
    });
    let path = dir.join("kubeconfig");
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

fn kubectl(dir: &Path, kubeconfig: &Path, args: &[&str]) -> Output {
    run(Command::new(tool("kubectl"))
        .env("HOME", dir)
        .env_remove("KUBECONFIG")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(dir.join("kube-cache"))
        .args(["--request-timeout", "20s"])
        .args(args))
}

#[test]
fn kubectl_talks_to_nginx_with_the_client_certificate() {
    let s = start_nginx();
    let dir = tempfile::tempdir().unwrap();
    let config = kubeconfig(
        dir.path(),
        &s.nginx.url(),
        &s.pki,
        &s.pki.client.cert_pem,
        &s.pki.client.key_pem,
    );

    let out = kubectl(dir.path(), &config, &["get", "--raw", "/version"]);
    assert!(out.status.success(), "get --raw /version: {}", text(&out.stderr));
    let version: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(version["gitVersion"], "v1.32.0-keystation-test");

    let out = kubectl(dir.path(), &config, &["api-versions"]);
    assert!(out.status.success(), "api-versions: {}", text(&out.stderr));
    assert!(text(&out.stdout).lines().any(|line| line.trim() == "v1"), "{}", text(&out.stdout));

    let out = kubectl(dir.path(), &config, &["get", "pods", "-n", "default"]);
    assert!(out.status.success(), "get pods: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains(POD_NAME), "{}", text(&out.stdout));

    // kubectl with the SEC 1 key form too.
    let sec1 = s.pki.client.key_sec1_pem.clone().unwrap();
    let config = kubeconfig(dir.path(), &s.nginx.url(), &s.pki, &s.pki.client.cert_pem, &sec1);
    let out = kubectl(dir.path(), &config, &["get", "--raw", "/whoami"]);
    assert!(out.status.success(), "SEC 1 key: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("CN=system:admin"), "{}", text(&out.stdout));
}

#[test]
fn kubectl_with_the_unrelated_ca_client_is_refused() {
    let s = start_nginx();
    let dir = tempfile::tempdir().unwrap();
    let config = kubeconfig(
        dir.path(),
        &s.nginx.url(),
        &s.pki,
        &s.pki.other_client.cert_pem,
        &s.pki.other_client.key_pem,
    );
    let out = kubectl(dir.path(), &config, &["get", "--raw", "/whoami"]);
    assert!(!out.status.success(), "accepted: {}", text(&out.stdout));
    assert!(!text(&out.stdout).contains("system:admin"));
}

// --- the fake certificates.k8s.io API ------------------------------------------------

const TOKEN: &str = "keystation-test-token";

/// A fresh P-256 key and a PEM CSR for `CN=<cn>`; returns (CSR PEM, its SPKI DER).
fn make_csr(cn: &str) -> (String, Vec<u8>) {
    make_csr_with(cn, KeyKind::P256)
}

fn make_csr_with(cn: &str, kind: KeyKind) -> (String, Vec<u8>) {
    use rcgen::PublicKeyData;
    let key = generate_key(kind).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "system:masters");
    params.distinguished_name.push(rcgen::DnType::CommonName, cn);
    let csr = params.serialize_request(&key).unwrap();
    (csr.pem().unwrap(), key.subject_public_key_info())
}

fn csr_object(name: &str, csr_pem: &str, signer: &str, usages: &[&str]) -> String {
    json!({
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {
            "request": BASE64.encode(csr_pem),
            "signerName": signer,
            "usages": usages,
            "expirationSeconds": 86400,
        },
    })
    .to_string()
}

struct Api {
    dir: tempfile::TempDir,
    files: PkiFiles,
    pki: Pki,
    api: KubeApi,
}

fn start_api(approval: Approval) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new().unwrap();
    let files = pki.write_to(dir.path()).unwrap();
    let api = KubeApi::start(&pki, KubeApiConfig { approval, ..KubeApiConfig::default() }).unwrap();
    Api { dir, files, pki, api }
}

impl Api {
    fn call(&self, method: &str, path: &str, body: Option<&str>, auth: &[&str]) -> (u16, Value) {
        let mut args = vec!["-X", method];
        let bearer = format!("Authorization: Bearer {TOKEN}");
        if auth.is_empty() {
            args.extend(["-H", &bearer]);
        } else if auth != ["none"] {
            args.extend_from_slice(auth);
        }
        if let Some(body) = body {
            args.extend(["-H", "Content-Type: application/json", "--data-binary", body]);
        }
        let r = curl(&self.files.ca_cert, &format!("{}{path}", self.api.url()), &args);
        assert_ne!(r.status, 0, "{method} {path}: no answer: {}", r.stderr);
        assert_eq!(r.content_type, "application/json", "{method} {path}");
        (r.status, serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body)))
    }
}

/// The certificate in `status.certificate`, with its public key (SPKI DER) and subject.
fn issued(object: &Value) -> (String, Vec<u8>, String) {
    let b64 = object["status"]["certificate"].as_str().unwrap_or_else(|| panic!("{object}"));
    let pem = text(&BASE64.decode(b64).unwrap());
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    assert_eq!(block.label, "CERTIFICATE");
    let cert = block.parse_x509().unwrap();
    (pem.clone(), cert.public_key().raw.to_vec(), cert.subject().to_string())
}

#[test]
fn csr_is_created_polled_approved_and_issued_for_the_requested_key() {
    let a = start_api(Approval::AfterGets { pending_gets: 2 });
    let (csr_pem, spki) = make_csr("kube-proxy-test");
    let body =
        csr_object("proxy-1", &csr_pem, CLIENT_SIGNER, &["digital signature", "client auth"]);

    let (status, created) = a.call("POST", CSR_PATH, Some(&body), &[]);
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["metadata"]["name"], "proxy-1");
    assert_eq!(created["spec"]["signerName"], CLIENT_SIGNER);
    assert!(created["status"]["certificate"].is_null());

    let path = format!("{CSR_PATH}/proxy-1");
    for _ in 0..2 {
        let (status, pending) = a.call("GET", &path, None, &[]);
        assert_eq!(status, 200);
        assert!(pending["status"]["certificate"].is_null(), "approved too early: {pending}");
    }
    let (status, done) = a.call("GET", &path, None, &[]);
    assert_eq!(status, 200);
    assert_eq!(done["status"]["conditions"][0]["type"], "Approved", "{done}");
    let (pem, cert_spki, subject) = issued(&done);
    assert_eq!(cert_spki, spki, "the certificate must carry the CSR's key");
    assert_eq!(parse_csr(csr_pem.as_bytes()).unwrap().spki_der, spki);
    assert!(subject.contains("CN=kube-proxy-test"), "{subject}");

    // Signed by the test CA, as a client certificate (openssl checks both).
    let cert_file = a.dir.path().join("issued.pem");
    std::fs::write(&cert_file, &pem).unwrap();
    let out = run(Command::new(tool("openssl"))
        .args(["verify", "-purpose", "sslclient", "-CAfile"])
        .arg(&a.files.ca_cert)
        .arg(&cert_file));
    assert!(out.status.success(), "{}", text(&out.stderr));

    let seen = a.api.requests();
    let methods: Vec<&str> = seen.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(methods, ["POST", "GET", "GET", "GET"]);
    assert!(seen.iter().all(|r| r.auth == Auth::Bearer(TOKEN.to_owned())));
    assert_eq!(seen[0].status, 201);
    assert_eq!(seen[3].path, path);
}

#[test]
fn csr_approval_subresource_and_manual_and_denied_modes() {
    let a = start_api(Approval::Manual);
    let (csr_pem, spki) = make_csr("manual");
    let body = csr_object("manual", &csr_pem, CLIENT_SIGNER, &["client auth"]);
    assert_eq!(a.call("POST", CSR_PATH, Some(&body), &[]).0, 201);
    let path = format!("{CSR_PATH}/manual");
    for _ in 0..5 {
        let (_, pending) = a.call("GET", &path, None, &[]);
        assert!(pending["status"]["conditions"].is_null(), "{pending}");
    }
    let approval = json!({
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": "manual"},
        "status": {"conditions": [{"type": "Approved", "status": "True", "reason": "Test"}]},
    })
    .to_string();
    let (status, approved) = a.call("PUT", &format!("{path}/approval"), Some(&approval), &[]);
    assert_eq!(status, 200, "{approved}");
    let (_, done) = a.call("GET", &path, None, &[]);
    assert_eq!(done["status"]["conditions"][0]["type"], "Approved");
    assert_eq!(issued(&done).1, spki);

    // An RSA-2048 request, approved through the subresource too.
    let (rsa_pem, rsa_spki) = make_csr_with("rsa", KeyKind::Rsa2048);
    let body = csr_object("rsa", &rsa_pem, CLIENT_SIGNER, &["client auth"]);
    assert_eq!(a.call("POST", CSR_PATH, Some(&body), &[]).0, 201);
    let rsa_path = format!("{CSR_PATH}/rsa");
    assert_eq!(a.call("PUT", &format!("{rsa_path}/approval"), Some(&approval), &[]).0, 200);
    let (_, done) = a.call("GET", &rsa_path, None, &[]);
    let (_, cert_spki, subject) = issued(&done);
    assert_eq!(cert_spki, rsa_spki);
    assert!(subject.contains("CN=rsa"), "{subject}");

    let (status, missing) = a.call("GET", &format!("{CSR_PATH}/nope"), None, &[]);
    assert_eq!((status, missing["reason"].as_str()), (404, Some("NotFound")));

    let d = start_api(Approval::Deny("no keys for you".to_owned()));
    let body = csr_object("denied", &make_csr("denied").0, CLIENT_SIGNER, &["client auth"]);
    assert_eq!(d.call("POST", CSR_PATH, Some(&body), &[]).0, 201);
    let (_, denied) = d.call("GET", &format!("{CSR_PATH}/denied"), None, &[]);
    assert_eq!(denied["status"]["conditions"][0]["type"], "Denied", "{denied}");
    assert_eq!(denied["status"]["conditions"][0]["message"], "no keys for you");
    assert!(denied["status"]["certificate"].is_null());
}

#[test]
fn csr_api_rejects_bad_requests_with_a_status() {
    let a = start_api(Approval::AfterGets { pending_gets: 0 });
    let (csr_pem, _) = make_csr("bad");

    let cases = [
        csr_object("signer", &csr_pem, "kubernetes.io/kubelet-serving", &["client auth"]),
        csr_object("usages", &csr_pem, CLIENT_SIGNER, &["server auth"]),
        csr_object(
            "garbage",
            "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
            CLIENT_SIGNER,
            &["client auth"],
        ),
        csr_object("not-pem", &BASE64.encode(b"DER?"), CLIENT_SIGNER, &["client auth"]),
    ];
    for body in &cases {
        let (status, reply) = a.call("POST", CSR_PATH, Some(body), &[]);
        assert_eq!(status, 422, "{body} -> {reply}");
        assert_eq!(reply["kind"], "Status");
        assert_eq!(reply["reason"], "Invalid");
        assert_eq!(reply["code"], 422);
    }
    let (status, reply) = a.call("POST", CSR_PATH, Some("{not json"), &[]);
    assert_eq!((status, reply["reason"].as_str()), (400, Some("BadRequest")));
    assert!(a.api.csr_names().is_empty(), "nothing may be stored: {:?}", a.api.csr_names());

    let good = csr_object("twice", &csr_pem, CLIENT_SIGNER, &["client auth"]);
    assert_eq!(a.call("POST", CSR_PATH, Some(&good), &[]).0, 201);
    let (status, reply) = a.call("POST", CSR_PATH, Some(&good), &[]);
    assert_eq!((status, reply["reason"].as_str()), (409, Some("AlreadyExists")));
}

#[test]
fn csr_api_requires_a_token_or_a_test_ca_client_certificate() {
    let a = start_api(Approval::AfterGets { pending_gets: 0 });
    let (csr_pem, _) = make_csr("auth");
    let body = csr_object("auth", &csr_pem, CLIENT_SIGNER, &["client auth"]);

    let (status, reply) = a.call("POST", CSR_PATH, Some(&body), &["none"]);
    assert_eq!((status, reply["reason"].as_str()), (401, Some("Unauthorized")));
    let (status, _) = a.call("POST", CSR_PATH, Some(&body), &["-H", "Authorization: Bearer wrong"]);
    assert_eq!(status, 401);
    assert!(a.api.csr_names().is_empty());

    // The test client certificate authenticates on its own.
    let cert = with_cert(&a.files.client_cert, &a.files.client_key);
    let (status, created) = a.call("POST", CSR_PATH, Some(&body), &cert);
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["spec"]["username"], "O=system:masters, CN=system:admin");

    // A certificate from the unrelated CA fails the handshake: no HTTP answer at all.
    let other = with_cert(&a.files.other_client_cert, &a.files.other_client_key);
    let r = curl(&a.files.ca_cert, &format!("{}{CSR_PATH}", a.api.url()), &other);
    assert_eq!(r.status, 0, "answered: {}", r.body);
    assert_ne!(r.exit, 0);

    let seen = a.api.requests();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[0].auth, Auth::Anonymous);
    assert_eq!(seen[1].auth, Auth::Bearer("wrong".to_owned()));
    match &seen[2].auth {
        Auth::ClientCert(subject) => assert!(subject.contains(&format!("CN={CLIENT_CN}"))),
        other => panic!("expected a client certificate, got {other:?}"),
    }

    // Client certificates can be switched off: then only the token counts.
    let pki = &a.pki;
    let token_only =
        KubeApi::start(pki, KubeApiConfig { client_certs: false, ..KubeApiConfig::default() })
            .unwrap();
    let r = curl(&a.files.ca_cert, &format!("{}{CSR_PATH}", token_only.url()), &cert);
    assert_eq!(r.status, 401, "{}", r.body);
}

#[test]
fn nginx_with_optional_client_certificates_answers_anonymous_requests() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new().unwrap();
    let options = NginxOptions { client_certs: ClientCerts::Optional, ..NginxOptions::default() };
    let nginx = Nginx::start(dir.path(), &pki, &options).unwrap();
    let ca = dir.path().join("ca.pem");
    let url = format!("{}/whoami", nginx.url());

    let anonymous = curl(&ca, &url, &[]);
    assert_eq!(anonymous.status, 200, "{}", anonymous.stderr);
    let whoami: Value = serde_json::from_str(&anonymous.body).unwrap();
    assert_eq!((whoami["subject"].as_str(), whoami["verify"].as_str()), (Some(""), Some("NONE")));

    let (client, key) = (dir.path().join("client.pem"), dir.path().join("client-key.pem"));
    let cert = with_cert(&client, &key);
    let admin = curl(&ca, &url, &cert);
    let whoami: Value = serde_json::from_str(&admin.body).unwrap();
    assert_eq!(whoami["subject"], "CN=system:admin,O=system:masters");
}

#[test]
fn csr_api_misbehaves_as_configured_never_answering_stalling_or_streaming_without_end() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new().unwrap();
    let files = pki.write_to(dir.path()).unwrap();
    let start = |misbehavior| {
        KubeApi::start(&pki, KubeApiConfig { misbehavior, ..KubeApiConfig::default() }).unwrap()
    };
    let bearer = format!("Authorization: Bearer {TOKEN}");
    // (HTTP status, bytes of body received, curl's exit code) within a 2 s limit.
    let fetch = |api: &KubeApi| {
        let output = run(Command::new(tool("curl"))
            .args(["-sS", "--max-time", "2", "-o", "/dev/null", "--cacert"])
            .arg(&files.ca_cert)
            .args(["-H", &bearer, "-w", "%{http_code} %{size_download}"])
            .arg(format!("{}{CSR_PATH}", api.url())));
        let stdout = text(&output.stdout);
        let (status, size) = stdout.split_once(' ').unwrap_or(("0", "0"));
        (status.parse::<u16>().unwrap(), size.parse::<u64>().unwrap(), output.status.code())
    };

    // curl's exit code 28: "operation timed out".
    let silent = start(Misbehavior::NeverAnswer);
    assert_eq!(fetch(&silent), (0, 0, Some(28)));
    assert_eq!(silent.requests().len(), 1, "the request arrived: {:?}", silent.requests());
    assert_eq!(silent.requests()[0].status, 0);

    let (status, size, exit) = fetch(&start(Misbehavior::StallInBody));
    assert_eq!((status, exit), (200, Some(28)));
    assert!((1..1000).contains(&size), "{size} bytes");

    let (status, size, exit) = fetch(&start(Misbehavior::EndlessBody));
    assert_eq!((status, exit), (200, Some(28)));
    assert!(size > 16 * 1024 * 1024, "only {size} bytes in 2 s");
}
