//! A private nginx (Debian package `nginx`) that plays a Kubernetes API server for
//! kubectl and the kube proxy: TLS on a free loopback port with the test server
//! certificate, client certificates required and checked against the test CA, and a
//! canned, read-only API answered from the configuration (`return 200 '<json>'`):
//!
//! | path | answer |
//! |---|---|
//! | `/version` | a `version.Info` |
//! | `/api` | `APIVersions` with `v1` |
//! | `/apis` | an empty `APIGroupList` |
//! | `/api/v1` | an `APIResourceList` with `pods` and `namespaces` |
//! | `/api/v1/namespaces/default/pods` | a `PodList` with one pod, [`POD_NAME`] |
//! | `/whoami` | `{"subject": "<verified client subject DN, RFC 2253>", ...}` |
//!
//! The instance is its own: prefix, configuration, pid file, error log and temp paths all
//! live in the directory given to [`Nginx::start`]; nginx runs in the foreground
//! (`daemon off`) as a child with one worker, and [`Drop`] stops it by PID (SIGTERM, then
//! SIGKILL for the master and its workers). It is tuned for benchmarks as well: no access
//! log, 100000 requests per keep-alive connection, and no TLS session resumption (no
//! session cache, no tickets), so every new connection is a full handshake in which the
//! client's key signs.
#![allow(dead_code, unreachable_pub)]

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::test_pki::{Pki, PkiFiles};

/// The name of the one pod in the canned `default` namespace.
pub const POD_NAME: &str = "keystation-test";

/// The nginx binary: `KEYSTATION_TEST_NGINX` or Debian's `/usr/sbin/nginx`.
pub fn nginx_binary() -> PathBuf {
    std::env::var_os("KEYSTATION_TEST_NGINX").map_or_else(|| "/usr/sbin/nginx".into(), Into::into)
}

/// How nginx checks client certificates (`ssl_verify_client`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientCerts {
    /// `on`: a certificate from the test CA is required (the handshake or request fails
    /// without one).
    #[default]
    Required,
    /// `optional`: checked if sent; `/whoami` then shows an empty subject without one.
    Optional,
}

/// Options for [`Nginx::start`].
#[derive(Clone, Debug, Default)]
pub struct NginxOptions {
    /// Client certificate checking.
    pub client_certs: ClientCerts,
    /// Extra directives placed inside the `server` block (more locations, say).
    pub extra_server_config: String,
    /// Extra directives at the top of the configuration (`load_module`, say).
    pub main_config: String,
}

/// nginx failed to start; the message carries its error log.
pub struct NginxError(pub String);

impl fmt::Debug for NginxError {
    // Debug shows the text unescaped, so a failed `unwrap()` prints the log readably.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for NginxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NginxError {}

/// A running private nginx; stopped on drop.
#[derive(Debug)]
pub struct Nginx {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    files: PkiFiles,
}

const VERSION_JSON: &str = r#"{"major":"1","minor":"32","gitVersion":"v1.32.0-keystation-test","gitCommit":"0000000000000000000000000000000000000000","gitTreeState":"clean","buildDate":"2025-01-01T00:00:00Z","goVersion":"go1.23.0","compiler":"gc","platform":"linux/amd64"}"#;

const API_VERSIONS_JSON: &str = r#"{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":"127.0.0.1:443"}]}"#;

const API_GROUPS_JSON: &str = r#"{"kind":"APIGroupList","apiVersion":"v1","groups":[]}"#;

const API_V1_JSON: &str = r#"{"kind":"APIResourceList","groupVersion":"v1","resources":[{"name":"namespaces","singularName":"namespace","namespaced":false,"kind":"Namespace","verbs":["create","delete","get","list","patch","update","watch"],"shortNames":["ns"]},{"name":"pods","singularName":"pod","namespaced":true,"kind":"Pod","verbs":["create","delete","deletecollection","get","list","patch","update","watch"],"shortNames":["po"],"categories":["all"]}]}"#;

const POD_LIST_JSON: &str = r#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[{"metadata":{"name":"keystation-test","namespace":"default","uid":"6a1d3c52-4f0e-4b0a-9d59-8f1a2b3c4d5e","resourceVersion":"1","creationTimestamp":"2025-01-01T00:00:00Z"},"spec":{"containers":[{"name":"main","image":"registry.invalid/keystation-test:1"}]},"status":{"phase":"Running"}}]}"#;

const WHOAMI_JSON: &str =
    r#"{"subject":"$ssl_client_s_dn","issuer":"$ssl_client_i_dn","verify":"$ssl_client_verify"}"#;

/// Whether this process runs as root (the `Uid:` line of /proc/self/status, real uid).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .is_some_and(|euid| euid == "0")
    })
}

fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

impl Nginx {
    /// Starts nginx with `dir` (an existing directory the test owns) as its prefix, serving
    /// the canned API with `pki`'s server certificate and client CA. `pki` is written into
    /// `dir` first ([`Pki::write_to`]; see [`Nginx::files`]). Returns once the port accepts
    /// connections.
    pub fn start(dir: &Path, pki: &Pki, options: &NginxOptions) -> Result<Self, NginxError> {
        let binary = nginx_binary();
        if !binary.exists() {
            return Err(NginxError(format!(
                "{} not found: run scripts/test, which installs the Debian package nginx \
                 (or set KEYSTATION_TEST_NGINX)",
                binary.display()
            )));
        }
        let files = pki
            .write_to(dir)
            .map_err(|e| NginxError(format!("writing the PKI to {}: {e}", dir.display())))?;
        std::fs::create_dir_all(dir.join("temp"))
            .map_err(|e| NginxError(format!("creating {}/temp: {e}", dir.display())))?;
        // Another process may take the free port before nginx binds it: try a few.
        let mut last = None;
        for _ in 0..5 {
            let port = free_port().map_err(|e| NginxError(format!("no free port: {e}")))?;
            let conf = config(dir, port, &files, options);
            let conf_path = dir.join("nginx.conf");
            std::fs::write(&conf_path, conf)
                .map_err(|e| NginxError(format!("writing {}: {e}", conf_path.display())))?;
            let _ = std::fs::remove_file(dir.join("error.log"));
            let child = Command::new(&binary)
                .arg("-p")
                .arg(dir)
                .arg("-c")
                .arg(&conf_path)
                .arg("-e")
                .arg(dir.join("error.log"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| NginxError(format!("starting {}: {e}", binary.display())))?;
            let mut nginx =
                Self { child: Some(child), port, dir: dir.to_owned(), files: files.clone() };
            match nginx.wait_ready() {
                Ok(()) => return Ok(nginx),
                Err(e) => {
                    nginx.stop();
                    let in_use = nginx.error_log().contains("Address already in use");
                    last = Some(e);
                    if !in_use {
                        break;
                    }
                }
            }
        }
        Err(last.unwrap_or_else(|| NginxError("nginx did not start".to_owned())))
    }

    fn wait_ready(&mut self) -> Result<(), NginxError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(NginxError(format!(
                    "nginx exited at start ({status}); error log:\n{}",
                    self.error_log()
                )));
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(NginxError(format!(
                    "nginx did not listen on {address} within 10 s; error log:\n{}",
                    self.error_log()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The TLS port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The master's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Where the PEM files of the `Pki` it was started with are (in its directory).
    pub fn files(&self) -> &PkiFiles {
        &self.files
    }

    /// The instance's directory (configuration, logs, PEM files).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// nginx's error log so far (empty if there is none yet).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// Stops nginx: SIGTERM (fast shutdown), then after 5 s SIGKILL for the master and
    /// any worker still there.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let pid = child.id();
        let workers = children_of(pid);
        let _ =
            Command::new("kill").args(["-TERM", &pid.to_string()]).stderr(Stdio::null()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        for worker in workers {
            let _ = Command::new("kill")
                .args(["-KILL", &worker.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The processes whose parent is `pid` (from /proc/<n>/stat).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&candidate| {
            std::fs::read_to_string(format!("/proc/{candidate}/stat")).is_ok_and(|stat| {
                // "pid (comm) state ppid ...": comm may contain spaces, so split after ')'.
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    .is_some_and(|ppid| ppid == pid.to_string())
            })
        })
        .collect()
}

fn config(dir: &Path, port: u16, files: &PkiFiles, options: &NginxOptions) -> String {
    let d = dir.display();
    // As root, nginx would switch the worker to `nobody`, which cannot enter the test's
    // private temporary directory; the worker keeps root's identity instead. As another
    // user the directive is meaningless (nginx cannot switch) and is left out.
    let user = if running_as_root() { "user root root;" } else { "" };
    let verify = match options.client_certs {
        ClientCerts::Required => "on",
        ClientCerts::Optional => "optional",
    };
    let json =
        |path: &str, body: &str| format!("        location = {path} {{ return 200 '{body}'; }}\n");
    let mut locations = String::new();
    locations += &json("/version", VERSION_JSON);
    locations += &json("/api", API_VERSIONS_JSON);
    locations += &json("/apis", API_GROUPS_JSON);
    locations += &json("/api/v1", API_V1_JSON);
    locations += &json("/api/v1/namespaces/default/pods", POD_LIST_JSON);
    locations += &json("/whoami", WHOAMI_JSON);
    format!(
        r#"# Generated by tests/support/nginx.rs for one test.
{main}
{user}
daemon off;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;

events {{
    worker_connections 1024;
}}

http {{
    types {{ }}
    default_type application/json;
    access_log off;
    server_tokens off;
    client_body_temp_path {d}/temp/client_body;
    proxy_temp_path {d}/temp/proxy;
    fastcgi_temp_path {d}/temp/fastcgi;
    uwsgi_temp_path {d}/temp/uwsgi;
    scgi_temp_path {d}/temp/scgi;
    keepalive_requests 100000;
    keepalive_timeout 300s;

    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {server_cert};
        ssl_certificate_key {server_key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_client_certificate {ca};
        ssl_verify_client {verify};
        ssl_verify_depth 1;
        # Every connection is a full handshake: no session cache, no tickets.
        ssl_session_cache off;
        ssl_session_tickets off;

{locations}
        location / {{
            return 404 '{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","code":404}}';
        }}
{extra}
    }}
}}
"#,
        server_cert = files.server_cert.display(),
        server_key = files.server_key.display(),
        ca = files.ca_cert.display(),
        extra = options.extra_server_config,
        main = options.main_config,
    )
}
