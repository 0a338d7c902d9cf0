#![cfg(all(feature = "test-vpcd", feature = "kube"))]
//! The kube proxy end to end, with real parts only: the software YubiKey in the private
//! pcscd's vpcd reader (`keystation simulate`), `keystation kube setup|proxy|shell` and
//! `keystation piv` as the binary, a real nginx checking client certificates against the
//! test CA and serving a canned Kubernetes API, kubectl, and ykman 5.
//!
//! ```text
//! scripts/with-pcscd cargo test --features test-vpcd --test kube_proxy
//! ```
//!
//! The tests share the vpcd reader and run one at a time (the simulator guard's lock).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

#[path = "support/simulator.rs"]
mod simulator;
#[allow(dead_code)]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use simulator::Simulator;
use support::kube_api::{Approval, Auth, KubeApi, KubeApiConfig};
use support::nginx::{Nginx, NginxOptions, POD_NAME};
use support::test_pki::{CLIENT_CN, Identity, Pki};

/// The bound the issue sets for revoking access after the card is pulled.
const REVOCATION_BOUND: Duration = Duration::from_secs(1);
/// How long anything else may take (a proxy to start, in a debug build).
const WAIT: Duration = Duration::from_secs(30);

fn keystation() -> Command {
    Command::new(env!("CARGO_BIN_EXE_keystation"))
}

fn run(command: &mut Command) -> Output {
    command.output().unwrap_or_else(|e| panic!("running {command:?}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs and requires success; returns stdout.
fn ok(command: &mut Command) -> String {
    let output = run(command);
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port()
}

fn b64(data: &[u8]) -> String {
    keystation_core::base64::encode(data)
}

/// A kubeconfig like k3s writes: one cluster with CA data, one user.
fn cluster_kubeconfig(server: &str, ca_pem: &str, user: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {}\n    server: {server}\n  name: test\ncontexts:\n- context:\n    cluster: test\n    user: admin\n    namespace: default\n  name: test\ncurrent-context: test\nusers:\n- name: admin\n  user:\n{user}",
        b64(ca_pem.as_bytes())
    )
}

fn client_cert_user(cert_pem: &str, key_pem: &str) -> String {
    format!(
        "    client-certificate-data: {}\n    client-key-data: {}\n",
        b64(cert_pem.as_bytes()),
        b64(key_pem.as_bytes())
    )
}

/// A plain HTTP/1.1 GET to the proxy; the status (0 when the connection failed) and body.
fn get(port: u16, path: &str) -> (u16, String) {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return (0, String::new());
    };
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = text(&answer);
    let status = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// A running `keystation kube proxy`; SIGTERM on drop.
struct Proxy {
    child: Child,
    port: u16,
    stderr: PathBuf,
}

impl Proxy {
    /// Starts `keystation kube proxy ARGS` and reads the address it announces.
    fn start(home: &Path, args: &[&str]) -> Self {
        Self::start_logging(home, "debug", args)
    }

    /// [`start`](Self::start) with `--log-level LEVEL` (`trace` logs every APDU).
    fn start_logging(home: &Path, level: &str, args: &[&str]) -> Self {
        let log_name = format!("proxy-{}.log", free_port());
        let stderr = home.join(log_name);
        let mut child = keystation()
            .args(["kube", "proxy", "--log-level", level])
            .args(args)
            .env("HOME", home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line
            .split("http://127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "the proxy did not start: {line:?}\n{}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                )
            });
        Self { child, port, stderr }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kubectl(home: &Path, kubeconfig: &Path, args: &[&str]) -> Output {
    let kubectl = simulator::tool("kubectl");
    run(Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(home.join("kube-cache"))
        .args(["--request-timeout", "10s"])
        .args(args)
        .env("HOME", home))
}

fn kubectl_ok(home: &Path, kubeconfig: &Path, args: &[&str]) -> String {
    let output = kubectl(home, kubeconfig, args);
    assert!(
        output.status.success(),
        "kubectl {args:?}: {}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Pulls the card (the simulator closes its vpcd connection) and returns how long it took
/// until a request through the proxy failed, issuing requests back to back.
fn time_to_revocation(simulator: &mut Simulator, proxy: &Proxy) -> Duration {
    let (status, body) = get(proxy.port, "/whoami");
    assert_eq!(status, 200, "before removal: {body}\n{}", proxy.log());
    simulator.stop();
    let pulled = Instant::now();
    loop {
        let (status, body) = get(proxy.port, "/whoami");
        if status != 200 {
            let elapsed = pulled.elapsed();
            assert!(status == 503 || status == 502, "status {status}: {body}");
            assert!(body.contains("keystation kube proxy"), "{body}");
            return elapsed;
        }
        assert!(
            pulled.elapsed() < WAIT,
            "requests still succeed {WAIT:?} after the card was pulled"
        );
    }
}

#[test]
fn setup_imports_the_key_kubectl_works_through_the_proxy_and_removal_revokes_within_a_second() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let state = home.join("card.state");
    let state_arg = state.to_str().unwrap();
    let mut simulator = Simulator::start_with(&["--state", state_arg]);
    let pki = Pki::new().unwrap();
    let nginx = start_nginx(home, &pki);

    // The cluster's kubeconfig, with the client key in it as k3s writes it.
    let kubeconfig = home.join("k3s.yaml");
    std::fs::write(
        &kubeconfig,
        cluster_kubeconfig(
            &nginx.url(),
            &pki.ca.cert_pem,
            &client_cert_user(&pki.client.cert_pem, &pki.client.key_pem),
        ),
    )
    .unwrap();
    let out_dir = home.join("kube");
    let listen = format!("127.0.0.1:{}", free_port());
    let setup = ok(keystation()
        .args(["kube", "setup", "--kubeconfig"])
        .arg(&kubeconfig)
        .arg("--out-dir")
        .arg(&out_dir)
        .args(["--listen", &listen, "--key-pin-policy", "never", "--key-touch-policy", "never"])
        .env("HOME", home));
    assert!(setup.contains("PIV slot 9a"), "{setup}");
    assert!(!setup.contains("PRIVATE KEY"), "{setup}");
    let proxy_yml = std::fs::read_to_string(out_dir.join("proxy.yml")).unwrap();
    let client_yml = std::fs::read_to_string(out_dir.join("client.yml")).unwrap();
    for yaml in [&proxy_yml, &client_yml] {
        assert!(!yaml.contains("client-key"), "credentials written: {yaml}");
        assert!(!yaml.contains("client-certificate"), "credentials written: {yaml}");
    }
    assert!(client_yml.contains(&format!("http://{listen}")), "{client_yml}");
    // No key file anywhere keystation wrote.
    for entry in std::fs::read_dir(&out_dir).unwrap() {
        let content = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!content.contains(&b64(pki.client.key_pem.as_bytes())[..40]));
    }
    // A second setup does not overwrite the files without --force.
    let again = run(keystation()
        .args(["kube", "setup", "--kubeconfig"])
        .arg(&kubeconfig)
        .arg("--out-dir")
        .arg(&out_dir)
        .env("HOME", home));
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("exists"), "{}", text(&again.stderr));

    // ykman 5 reads the slot keystation wrote.
    let ykman = simulator::ykman(5);
    let info = simulator::run(&ykman, &["--reader", &simulator.reader, "piv", "info"]);
    assert!(info.contains("Slot 9A"), "{info}");
    assert!(info.contains(&format!("CN={CLIENT_CN}")), "{info}");
    assert!(info.contains("ECCP256"), "{info}");

    // kubectl → proxy (default mode: a new TLS connection, signed by the card, per request).
    let client = out_dir.join("client.yml");
    let proxy = Proxy::start(home, &["--kubeconfig", out_dir.join("proxy.yml").to_str().unwrap()]);
    assert_eq!(proxy.port.to_string(), listen.rsplit(':').next().unwrap());
    let whoami = kubectl_ok(home, &client, &["get", "--raw", "/whoami"]);
    assert!(whoami.contains(&format!("CN={CLIENT_CN}")), "{whoami}");
    assert!(kubectl_ok(home, &client, &["api-versions"]).lines().any(|l| l == "v1"));
    let pods = kubectl_ok(home, &client, &["get", "pods", "-n", "default"]);
    assert!(pods.contains(POD_NAME), "{pods}");

    // kube shell: a command with KUBECONFIG pointing at its own proxy, which ends with it.
    let script = format!(
        "kubectl --cache-dir {} get --raw /whoami && echo \"kubeconfig=$KUBECONFIG\" && exit 7",
        home.join("shell-cache").display()
    );
    let shell = run(keystation()
        .args(["kube", "shell", "--kubeconfig"])
        .arg(out_dir.join("proxy.yml"))
        .args(["--", "sh", "-c", &script])
        .env("HOME", home));
    let shell_out = text(&shell.stdout);
    assert_eq!(shell.status.code(), Some(7), "{shell_out}{}", text(&shell.stderr));
    assert!(shell_out.contains(&format!("CN={CLIENT_CN}")), "{shell_out}");
    let kubeconfig_line = shell_out.lines().find_map(|l| l.split("kubeconfig=").nth(1)).unwrap();
    assert!(!Path::new(kubeconfig_line).exists(), "the shell's kubeconfig was left behind");

    let default_mode = time_to_revocation(&mut simulator, &proxy);
    eprintln!("default mode: requests failed {default_mode:?} after the card was pulled");
    assert!(default_mode < REVOCATION_BOUND, "took {default_mode:?}");
    let refused = kubectl(home, &client, &["get", "--raw", "/whoami"]);
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("the card is not present"), "{}", text(&refused.stderr));

    // The card comes back: the proxy reconnects by itself.
    simulator.restart_with(&["--state", state_arg]);
    let deadline = Instant::now() + WAIT;
    while get(proxy.port, "/whoami").0 != 200 {
        assert!(Instant::now() < deadline, "no recovery after re-insertion:\n{}", proxy.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(proxy);

    // Presence-watch mode: connections are kept alive, and all dropped on removal.
    let proxy = Proxy::start(
        home,
        &["--kubeconfig", out_dir.join("proxy.yml").to_str().unwrap(), "--keep-alive"],
    );
    for _ in 0..20 {
        assert_eq!(get(proxy.port, "/api").0, 200);
    }
    let kept = time_to_revocation(&mut simulator, &proxy);
    eprintln!("presence-watch mode: requests failed {kept:?} after the card was pulled");
    assert!(kept < REVOCATION_BOUND, "took {kept:?}");
    assert!(proxy.log().contains("the card was removed"), "{}", proxy.log());
    drop(proxy);

    // Without a card the proxy does not start, and says why.
    let failed = run(keystation()
        .args(["kube", "proxy", "--kubeconfig"])
        .arg(out_dir.join("proxy.yml"))
        .env("HOME", home));
    assert_eq!(failed.status.code(), Some(1));
    assert!(text(&failed.stderr).contains("no card detected"), "{}", text(&failed.stderr));
}

#[test]
fn setup_generate_makes_the_key_on_the_card_and_gets_it_certified() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let _simulator = Simulator::start();
    let pki = Pki::new().unwrap();
    let kubeconfig = home.join("config");
    let api = token_api(
        &pki,
        &kubeconfig,
        KubeApiConfig {
            approval: Approval::AfterGets { pending_gets: 1 },
            ..KubeApiConfig::default()
        },
    );
    let out_dir = home.join("out");
    let output = ok(keystation()
        .args(["kube", "setup", "--generate", "--subject", "CN=alice,O=developers", "--kubeconfig"])
        .arg(&kubeconfig)
        .arg("--out-dir")
        .arg(&out_dir)
        .args(["--slot", "9c", "--wait", "20", "--pin-file"])
        .arg(pin_file(home))
        .env("HOME", home));
    assert!(output.contains("Generated a"), "{output}");
    let names = api.csr_names();
    assert_eq!(names.len(), 1, "{names:?}");
    let csr = api.csr(&names[0]).unwrap();
    assert_eq!(csr["spec"]["signerName"], "kubernetes.io/kube-apiserver-client");
    assert!(
        api.requests().iter().all(|r| r.auth == Auth::Bearer("setup-token".into())),
        "{:?}",
        api.requests()
    );

    // The certificate in the slot is the CA's, for the key the card made.
    let pem = ok(keystation().args(["piv", "certificate", "export", "9c"]));
    let certificate = keystation_x509::Certificate::from_pem(&pem).unwrap();
    assert_eq!(certificate.subject(), "CN=alice,O=developers");
    keystation_x509::verify_signed_by(certificate.der(), &pki.ca.cert_der).unwrap();
    let card_key = ok(keystation().args(["piv", "info"]));
    assert!(card_key.contains("Origin:           Generated"), "{card_key}");

    // The generated key authenticates to nginx through the proxy.
    let nginx = start_nginx(home, &pki);
    let proxy_config = home.join("proxy.yml");
    std::fs::write(&proxy_config, cluster_kubeconfig(&nginx.url(), &pki.ca.cert_pem, "    {}\n"))
        .unwrap();
    let proxy = Proxy::start(
        home,
        &[
            "--kubeconfig",
            proxy_config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--slot",
            "9c",
            "--pin-file",
            pin_file(home).to_str().unwrap(),
        ],
    );
    let (status, body) = get(proxy.port, "/whoami");
    assert_eq!(status, 200, "{body}\n{}", proxy.log());
    assert!(body.contains("CN=alice"), "{body}");
    assert!(!proxy.log().contains("123456"), "the PIN was logged");
    drop(proxy);

    // A denied request is an error that says so.
    let _denied = token_api(
        &pki,
        &kubeconfig,
        KubeApiConfig {
            approval: Approval::Deny("not on the list".into()),
            ..KubeApiConfig::default()
        },
    );
    let output = run(keystation()
        .args(["kube", "setup", "--generate", "--subject", "CN=bob", "--force", "--kubeconfig"])
        .arg(&kubeconfig)
        .arg("--out-dir")
        .arg(&out_dir)
        .args(["--wait", "20", "--pin-file"])
        .arg(pin_file(home))
        .env("HOME", home));
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("denied: not on the list"), "{}", text(&output.stderr));
}

fn pin_file(home: &Path) -> PathBuf {
    let path = home.join("pin");
    std::fs::write(&path, "123456\n").unwrap();
    path
}

#[test]
fn bad_kubeconfigs_and_addresses_give_clear_errors() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let write = |name: &str, content: &str| {
        let path = home.join(name);
        std::fs::write(&path, content).unwrap();
        path
    };
    let ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--kubeconfig".into(), home.join("missing.yaml").display().to_string()], "no kubeconfig found"),
        (vec!["--kubeconfig".into(), write("syntax.yaml", "clusters: [\n").display().to_string()], "YAML"),
        (
            vec![
                "--kubeconfig".into(),
                write("nocontext.yaml", "apiVersion: v1\nkind: Config\nclusters: []\n").display().to_string(),
            ],
            "current-context",
        ),
        (
            vec![
                "--kubeconfig".into(),
                write("k.yaml", &cluster_kubeconfig("https://127.0.0.1:1", ca, "    token: t\n")).display().to_string(),
                "--context".into(),
                "prod".into(),
            ],
            "context \"prod\" not found",
        ),
        (
            vec![
                "--kubeconfig".into(),
                write("http.yaml", &cluster_kubeconfig("http://127.0.0.1:1", ca, "    token: t\n")).display().to_string(),
            ],
            "needs an https:// URL",
        ),
        (
            vec![
                "--kubeconfig".into(),
                write(
                    "insecure.yaml",
                    "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true\n  name: c\ncontexts:\n- context:\n    cluster: c\n  name: x\ncurrent-context: x\n",
                )
                .display()
                .to_string(),
            ],
            "insecure-skip-tls-verify",
        ),
        (
            vec![
                "--kubeconfig".into(),
                write("bad64.yaml", &cluster_kubeconfig("https://127.0.0.1:1", ca, "    client-key-data: '!!!'\n    client-certificate-data: '!!!'\n")).display().to_string(),
            ],
            "invalid base64",
        ),
        (
            vec![
                "--kubeconfig".into(),
                write("ok.yaml", &cluster_kubeconfig("https://127.0.0.1:1", &Pki::new().unwrap().ca.cert_pem, "    token: t\n"))
                    .display()
                    .to_string(),
                "--listen".into(),
                "0.0.0.0:8080".into(),
            ],
            "loopback only",
        ),
    ];
    for (args, expected) in cases {
        let output = run(keystation().args(["kube", "proxy"]).args(&args).env("HOME", home));
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: expected {expected:?} in {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // Files are read up to a limit: a kubeconfig (or a file it names) of more than 4 MiB,
    // or a PIN file of more than 64 KiB, is refused without reading it all — /dev/zero
    // included, which has no end.
    let mut big = cluster_kubeconfig("https://127.0.0.1:1", ca, "    token: t\n");
    big.push_str(&format!("# {}\n", "x".repeat(4 * 1024 * 1024)));
    let big = write("big.yaml", &big);
    let zero_key = write(
        "zero-key.yaml",
        &cluster_kubeconfig(
            "https://127.0.0.1:1",
            ca,
            "    client-certificate: /dev/null\n    client-key: /dev/zero\n",
        ),
    );
    let ok_yaml = home.join("ok.yaml");
    let capped: [(Vec<&std::ffi::OsStr>, &[&str]); 3] = [
        (vec![big.as_os_str()], &["big.yaml", "more than the 4194304 accepted"]),
        (vec![zero_key.as_os_str()], &["/dev/zero", "more than the 4194304 accepted"]),
        (
            vec![ok_yaml.as_os_str(), "--pin-file".as_ref(), "/dev/zero".as_ref()],
            &["cannot read the PIN file /dev/zero", "larger than 65536 bytes"],
        ),
    ];
    for (args, expected) in capped {
        let output = run_bounded(
            keystation().args(["kube", "proxy", "--kubeconfig"]).args(&args).env("HOME", home),
            WAIT,
            256,
        );
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        for expected in expected {
            assert!(stderr.contains(expected), "{args:?}: expected {expected:?} in {stderr}");
        }
    }

    // setup refuses an exec-plugin user in import mode before touching any card.
    let exec = write(
        "exec.yaml",
        &cluster_kubeconfig(
            "https://127.0.0.1:1",
            &Pki::new().unwrap().ca.cert_pem,
            "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: aws\n",
        ),
    );
    let output = run(keystation()
        .args(["kube", "setup", "--kubeconfig"])
        .arg(&exec)
        .arg("--out-dir")
        .arg(home)
        .env("HOME", home));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("exec plugin \"aws\"") && stderr.contains("--generate"), "{stderr}");
}

#[test]
fn an_rsa_client_key_signs_the_handshake_on_the_card_with_pss() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let _simulator = Simulator::start();
    let pki = Pki::new().unwrap();
    let nginx = start_nginx(home, &pki);
    let kubeconfig = client_kubeconfig(&home.join("kubeadm.conf"), &nginx, &pki, &pki.client_rsa);
    let out_dir = home.join("kube");
    ok(keystation()
        .args(["kube", "setup", "--slot", "9e", "--listen", "127.0.0.1:0", "--kubeconfig"])
        .arg(&kubeconfig)
        .arg("--out-dir")
        .arg(&out_dir)
        .env("HOME", home));
    let info = ok(keystation().args(["piv", "info"]));
    assert!(info.contains("Slot 9E"), "{info}");
    assert!(info.contains("Private key type: RSA2048"), "{info}");
    // nginx negotiates TLS 1.3, where RSA client keys must sign with PSS (RFC 8446 §4.2.3);
    // the card does the raw RSA operation on our EMSA-PSS encoding.
    let proxy = Proxy::start(
        home,
        &["--kubeconfig", out_dir.join("proxy.yml").to_str().unwrap(), "--listen", "127.0.0.1:0"],
    );
    let (status, body) = get(proxy.port, "/whoami");
    assert_eq!(status, 200, "{body}\n{}", proxy.log());
    assert!(body.contains(&format!("CN={CLIENT_CN}")), "{body}");
    assert!(proxy.log().contains("scheme=RsaPssSha256"), "{}", proxy.log());
}

// --- what a handshake costs on the card ------------------------------------------------

/// The instruction bytes of the APDUs the proxy sent for each TLS handshake, from its
/// trace log (`keystation::apdu` lines "> CLA INS P1 P2 …" after each "the card signs the
/// TLS handshake"); `[0]` is what was sent before the first handshake (finding the key).
fn apdus_per_handshake(log: &str) -> Vec<Vec<String>> {
    let mut handshakes = vec![Vec::new()];
    for line in log.lines() {
        if line.contains("the card signs the TLS handshake") {
            handshakes.push(Vec::new());
        } else if let Some((_, command)) = line.split_once("keystation::apdu: > ") {
            let ins = command.split_whitespace().nth(1).unwrap_or("??").to_owned();
            handshakes.last_mut().unwrap().push(ins);
        }
    }
    handshakes
}

/// One request through the proxy (a new TLS connection, so a handshake the card signs);
/// returns the instruction bytes the card got for that handshake.
fn handshake(proxy: &Proxy) -> Vec<String> {
    let before = apdus_per_handshake(&proxy.log()).len();
    let (status, body) = get(proxy.port, "/whoami");
    assert_eq!(status, 200, "{body}\n{}", proxy.log());
    let after = apdus_per_handshake(&proxy.log());
    assert_eq!(after.len(), before + 1, "one request, one handshake:\n{}", proxy.log());
    after.last().unwrap().clone()
}

/// Selects the PIV application from another PC/SC connection, as another program would
/// (ykman, a browser): that ends the PIN's "verified" state of the proxy's session.
fn select_piv_elsewhere(simulator: &Simulator) {
    use keystation_core::Card as _;
    let mut card = simulator.connect();
    let select =
        [0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00];
    let mut response = [0u8; 258];
    let n = card.transmit(&select, &mut response).unwrap();
    assert_eq!(&response[n - 2..n], [0x90, 0x00]);
}

/// The fake certificates API configured by `config`, taking only the bearer token
/// `setup-token`, and a kubeconfig at `kubeconfig` whose user presents that token.
fn token_api(pki: &Pki, kubeconfig: &Path, config: KubeApiConfig) -> KubeApi {
    let config = KubeApiConfig { token: Some("setup-token".into()), client_certs: false, ..config };
    let api = KubeApi::start(pki, config).unwrap();
    let user = "    token: setup-token\n";
    std::fs::write(kubeconfig, cluster_kubeconfig(&api.url(), &pki.ca.cert_pem, user)).unwrap();
    api
}

/// nginx, the API server stand-in, serving with `pki`'s server certificate from `home/nginx`.
fn start_nginx(home: &Path, pki: &Pki) -> Nginx {
    let dir = home.join("nginx");
    std::fs::create_dir(&dir).unwrap();
    Nginx::start(&dir, pki, &NginxOptions::default()).unwrap()
}

/// Writes a kubeconfig for `nginx` whose user is `identity`'s client certificate and key,
/// as kubeadm and k3s write them; returns `path`.
fn client_kubeconfig(path: &Path, nginx: &Nginx, pki: &Pki, identity: &Identity) -> PathBuf {
    let user = client_cert_user(&identity.cert_pem, &identity.key_pem);
    std::fs::write(path, cluster_kubeconfig(&nginx.url(), &pki.ca.cert_pem, &user)).unwrap();
    path.to_owned()
}

const SIGN: &str = "87"; // GENERAL AUTHENTICATE
const VERIFY: &str = "20";
const SELECT: &str = "A4";

#[test]
fn pin_policy_once_sends_the_pin_once_and_a_handshake_costs_only_the_signature() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let simulator = Simulator::start();
    let pki = Pki::new().unwrap();
    let nginx = start_nginx(home, &pki);
    let kubeconfig = client_kubeconfig(&home.join("k3s.yaml"), &nginx, &pki, &pki.client);
    // The same key twice: 9a with PIN policy once, 9c with always.
    for (slot, policy) in [("9a", "once"), ("9c", "always")] {
        ok(keystation()
            .args(["kube", "setup", "--slot", slot, "--listen", "127.0.0.1:0", "--kubeconfig"])
            .arg(&kubeconfig)
            .arg("--out-dir")
            .arg(home.join(slot))
            .args(["--key-pin-policy", policy, "--key-touch-policy", "never"])
            .env("HOME", home));
    }
    let pin = pin_file(home);
    let proxy_args = |slot: &str| {
        vec![
            "--kubeconfig".to_owned(),
            home.join(slot).join("proxy.yml").display().to_string(),
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--pin-file".to_owned(),
            pin.display().to_string(),
        ]
    };

    let args = proxy_args("9a");
    let proxy =
        Proxy::start_logging(home, "trace", &args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(handshake(&proxy));
    }
    let opening = apdus_per_handshake(&proxy.log())[0].clone();
    eprintln!("policy once: finding the key {opening:?}, then handshakes {seen:?}");
    assert_eq!(opening.iter().filter(|ins| *ins == VERIFY).count(), 1, "{opening:?}");
    for apdus in &seen {
        assert_eq!(apdus, &[SIGN], "a handshake with the PIN verified: {seen:?}");
    }

    // Another program selects PIV (the card forgets the PIN): 6982, VERIFY, sign again.
    select_piv_elsewhere(&simulator);
    let after_select = handshake(&proxy);
    eprintln!("after another program selected PIV: {after_select:?}");
    assert_eq!(after_select, [SIGN, VERIFY, SIGN]);
    assert_eq!(handshake(&proxy), [SIGN]);

    // Another program selects other applets (`card list` ends in another one).
    ok(keystation().args(["card", "list"]));
    let after_list = handshake(&proxy);
    eprintln!("after `keystation card list`: {after_list:?}");
    assert_eq!(after_list.first().map(String::as_str), Some(SIGN), "{after_list:?}");
    assert!(after_list.contains(&SELECT.to_owned()), "{after_list:?}");
    assert_eq!(after_list[after_list.len() - 2..], [VERIFY, SIGN], "{after_list:?}");
    assert_eq!(handshake(&proxy), [SIGN]);

    // Another program resets the card: the transport reports it, the proxy selects again.
    simulator.connect().disconnect(keystation_pcsc::Disposition::Reset).unwrap();
    let after_reset = handshake(&proxy);
    eprintln!("after a reset by another program: {after_reset:?}");
    assert!(after_reset.contains(&SELECT.to_owned()), "{after_reset:?}");
    assert_eq!(after_reset[after_reset.len() - 2..], [VERIFY, SIGN], "{after_reset:?}");
    assert_eq!(handshake(&proxy), [SIGN]);
    assert!(!proxy.log().contains("123456"), "the PIN was logged");
    drop(proxy);

    // PIN policy always: the card wants the PIN before every signature.
    let args = proxy_args("9c");
    let proxy =
        Proxy::start_logging(home, "trace", &args.iter().map(String::as_str).collect::<Vec<_>>());
    let always: Vec<_> = (0..3).map(|_| handshake(&proxy)).collect();
    eprintln!("policy always: handshakes {always:?}");
    for apdus in &always {
        assert_eq!(apdus, &[VERIFY, SIGN], "{always:?}");
    }
}

// --- the certificates API client's limits ----------------------------------------------

/// Runs `command` to its end, failing the test if it takes longer than `limit` or its
/// resident memory grows over `max_rss_mib` (it is killed then): a hang or an unbounded
/// read is a failure, not a stuck test or an exhausted machine.
fn run_bounded(command: &mut Command, limit: Duration, max_rss_mib: u64) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut peak_kib = 0u64;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        let rss = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("VmRSS:"))?.to_owned();
                line.split_whitespace().nth(1)?.parse::<u64>().ok()
            })
            .unwrap_or(0);
        peak_kib = peak_kib.max(rss);
        let why = if peak_kib > max_rss_mib * 1024 {
            Some(format!("its memory grew to {} MiB", peak_kib / 1024))
        } else if started.elapsed() > limit {
            Some(format!("it still ran after {limit:?}"))
        } else {
            None
        };
        if let Some(why) = why {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{command:?} was killed: {why}\nstderr: {}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: std::fs::read(&out).unwrap(), stderr: std::fs::read(&err).unwrap() }
}

#[test]
fn setup_generate_gives_up_on_a_silent_stalled_or_endless_api_server_and_refuses_a_huge_wait() {
    use support::kube_api::Misbehavior;
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let _simulator = Simulator::start();
    let pki = Pki::new().unwrap();
    let kubeconfig = home.join("config");
    let setup = |wait: &str| {
        let mut command = keystation();
        command
            .args(["kube", "setup", "--generate", "--subject", "CN=alice", "--force"])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--out-dir")
            .arg(home.join("out"))
            .args(["--slot", "9c", "--wait", wait, "--pin-file"])
            .arg(pin_file(home))
            .env("HOME", home);
        command
    };
    let create_url = |api: &KubeApi| {
        format!("{}/apis/certificates.k8s.io/v1/certificatesigningrequests", api.url())
    };
    // --wait 1: each request gets the minimum of 5 s.
    for (misbehavior, expected) in [
        (Misbehavior::NeverAnswer, "no complete answer from"),
        (Misbehavior::StallInBody, "no complete answer from"),
        (Misbehavior::EndlessBody, "is larger than 2097152 bytes"),
    ] {
        let api =
            token_api(&pki, &kubeconfig, KubeApiConfig { misbehavior, ..KubeApiConfig::default() });
        let started = Instant::now();
        let output = run_bounded(&mut setup("1"), WAIT, 256);
        let elapsed = started.elapsed();
        let stderr = text(&output.stderr);
        eprintln!("{misbehavior:?}: failed after {elapsed:?}: {stderr}");
        assert_eq!(output.status.code(), Some(1), "{misbehavior:?}: {stderr}");
        assert!(
            stderr.contains("creating the CertificateSigningRequest")
                && stderr.contains(&create_url(&api))
                && stderr.contains(expected),
            "{misbehavior:?}: {stderr}"
        );
        if misbehavior != Misbehavior::EndlessBody {
            assert!(stderr.contains("within 5 s"), "{stderr}");
            assert!(elapsed >= Duration::from_secs(5), "{elapsed:?}");
        }
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(api.requests().len(), 1, "{:?}", api.requests());
    }

    // A --wait no clock can add is refused before anything happens, without a panic.
    let api = token_api(
        &pki,
        &kubeconfig,
        KubeApiConfig { approval: Approval::Manual, ..KubeApiConfig::default() },
    );
    let output = run_bounded(&mut setup("18446744073709551615"), WAIT, 256);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--wait 18446744073709551615 is too long"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(api.requests().is_empty(), "{:?}", api.requests());
}
