#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr, missing_docs)]
//! Behaviour of the kubeconfig reader, resolver and writers.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use keystation_core::base64;
use keystation_kubeconfig::{
    AuthPlugin, Error, Kubeconfig, ProxyConfig, ProxyExtension, config_paths, write_client_config,
    write_proxy_config,
};

const CA_PEM: &str = "-----BEGIN CERTIFICATE-----\nQ0EgY2VydA==\n-----END CERTIFICATE-----\n";
const CERT_PEM: &str = "-----BEGIN CERTIFICATE-----\nY2xpZW50\n-----END CERTIFICATE-----\n";
const KEY_PEM: &str =
    "-----BEGIN EC PRIVATE KEY-----\nc2VjcmV0LWtleQ==\n-----END EC PRIVATE KEY-----\n";

fn origin() -> &'static Path {
    Path::new("/etc/rancher/k3s/k3s.yaml")
}

/// The kubeconfig k3s writes to /etc/rancher/k3s/k3s.yaml.
fn k3s() -> String {
    format!(
        "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: {ca}
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {{}}
users:
- name: default
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
",
        ca = base64::encode(CA_PEM.as_bytes()),
        cert = base64::encode(CERT_PEM.as_bytes()),
        key = base64::encode(KEY_PEM.as_bytes()),
    )
}

fn parse(text: &str) -> Kubeconfig {
    Kubeconfig::parse(text, origin()).unwrap()
}

fn parse_err(text: &str) -> String {
    Kubeconfig::parse(text, origin()).unwrap_err().to_string()
}

fn resolve_err(text: &str, context: Option<&str>) -> String {
    parse(text).resolve(context).unwrap_err().to_string()
}

/// A minimal valid config with one context `c` → cluster `k` → user `u`, `user` being the
/// body of the user entry (indented under `user:`).
fn with_user(user: &str) -> String {
    format!(
        "clusters:\n- name: k\n  cluster:\n    server: https://k.example:6443\n\
         contexts:\n- name: c\n  context:\n    cluster: k\n    user: u\n\
         current-context: c\nusers:\n- name: u\n  user:\n{user}"
    )
}

#[test]
fn k3s_example_resolves_default_context() {
    let config = parse(&k3s());
    assert_eq!(config.current_context(), Some("default"));
    let ctx = config.resolve(None).unwrap();
    assert_eq!(ctx.name, "default");
    assert_eq!(ctx.cluster.name, "default");
    assert_eq!(ctx.cluster.server, "https://127.0.0.1:6443");
    assert_eq!(ctx.cluster.ca_pem.as_deref(), Some(CA_PEM.as_bytes()));
    assert!(!ctx.cluster.insecure_skip_tls_verify);
    assert_eq!(ctx.user.name.as_deref(), Some("default"));
    assert_eq!(ctx.user.client_certificate_pem.as_deref(), Some(CERT_PEM.as_bytes()));
    assert_eq!(ctx.user.client_key_pem.as_ref().unwrap().expose(), KEY_PEM.as_bytes());
    assert!(ctx.user.token.is_none() && ctx.user.basic.is_none() && ctx.user.plugin.is_none());
    assert_eq!(ctx.namespace, None);
    ctx.user.check_supported().unwrap();
    // Explicit context name gives the same answer.
    assert_eq!(config.resolve(Some("default")).unwrap().cluster, ctx.cluster);
}

#[test]
fn debug_output_never_shows_key_token_or_password() {
    let config = parse(&k3s());
    let key_b64 = base64::encode(KEY_PEM.as_bytes());
    let ctx = config.resolve(None).unwrap();
    for shown in [format!("{config:?}"), format!("{ctx:?}"), format!("{:?}", ctx.user)] {
        assert!(!shown.contains("c2VjcmV0LWtleQ"), "{shown}");
        assert!(!shown.contains(&key_b64[..20]), "{shown}");
        assert!(!shown.contains("PRIVATE"), "{shown}");
    }
    let text = with_user("    token: tok-SECRET-123\n");
    let ctx = parse(&text).resolve(None).unwrap();
    assert_eq!(ctx.user.token.as_ref().unwrap().expose(), b"tok-SECRET-123");
    assert!(!format!("{ctx:?}").contains("tok-SECRET"));
    let text = with_user("    username: admin\n    password: pw-SECRET-456\n");
    let ctx = parse(&text).resolve(None).unwrap();
    let basic = ctx.user.basic.as_ref().unwrap();
    assert_eq!(
        (basic.username.as_str(), basic.password.expose()),
        ("admin", &b"pw-SECRET-456"[..])
    );
    let shown = format!("{ctx:?}");
    assert!(shown.contains("admin") && !shown.contains("pw-SECRET"), "{shown}");
}

#[test]
fn kubeadm_style_relative_files_resolve_against_the_config_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("pki")).unwrap();
    std::fs::write(dir.path().join("pki/ca.crt"), CA_PEM).unwrap();
    std::fs::write(dir.path().join("pki/admin.crt"), CERT_PEM).unwrap();
    std::fs::write(dir.path().join("pki/admin.key"), KEY_PEM).unwrap();
    let text = "apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority: pki/ca.crt
    server: https://10.0.0.1:6443
    tls-server-name: kubernetes.default.svc
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: kubernetes-admin
    namespace: kube-system
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
users:
- name: kubernetes-admin
  user:
    client-certificate: pki/admin.crt
    client-key: pki/admin.key
";
    let path = dir.path().join("admin.conf");
    std::fs::write(&path, text).unwrap();
    let config = Kubeconfig::load(&[&path]).unwrap();
    // Files are read when resolving, not when parsing.
    std::fs::write(dir.path().join("pki/ca.crt"), format!("{CA_PEM}{CA_PEM}")).unwrap();
    let ctx = config.resolve(None).unwrap();
    assert_eq!(ctx.name, "kubernetes-admin@kubernetes");
    assert_eq!(ctx.cluster.server, "https://10.0.0.1:6443");
    assert_eq!(ctx.cluster.tls_server_name.as_deref(), Some("kubernetes.default.svc"));
    assert_eq!(ctx.cluster.ca_pem.unwrap(), format!("{CA_PEM}{CA_PEM}").as_bytes());
    assert_eq!(ctx.user.client_certificate_pem.as_deref(), Some(CERT_PEM.as_bytes()));
    assert_eq!(ctx.user.client_key_pem.unwrap().expose(), KEY_PEM.as_bytes());
    assert_eq!(ctx.namespace.as_deref(), Some("kube-system"));

    // An unreadable referenced file: the error names the field, the path and the OS reason.
    std::fs::remove_file(dir.path().join("pki/admin.key")).unwrap();
    let err = config.resolve(None).unwrap_err().to_string();
    let missing = dir.path().join("pki/admin.key");
    assert!(err.starts_with(&format!("cannot read client-key {}: ", missing.display())), "{err}");
    assert!(err.contains("No such file"), "{err}");
}

#[test]
fn token_file_is_read_and_token_wins_over_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "from-file\n").unwrap();
    let origin = dir.path().join("config");
    let text = with_user("    tokenFile: token\n");
    let ctx = Kubeconfig::parse(&text, &origin).unwrap().resolve(None).unwrap();
    assert_eq!(ctx.user.token.unwrap().expose(), b"from-file");
    let text = with_user("    tokenFile: token\n    token: inline\n");
    let ctx = Kubeconfig::parse(&text, &origin).unwrap().resolve(None).unwrap();
    assert_eq!(ctx.user.token.unwrap().expose(), b"inline");
}

#[test]
fn kubeconfig_list_merges_with_first_file_winning() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first");
    let second = dir.path().join("second");
    // The first file sets no current-context; both define cluster "shared" and context "dup".
    std::fs::write(
        &first,
        "clusters:
- name: shared
  cluster: {server: 'https://first.example'}
contexts:
- name: one
  context: {cluster: shared, namespace: first-ns}
- name: dup
  context: {cluster: shared, namespace: from-first}
",
    )
    .unwrap();
    std::fs::write(
        &second,
        "current-context: dup
clusters:
- name: shared
  cluster: {server: 'https://second.example'}
- name: only-second
  cluster: {server: 'https://only-second.example'}
contexts:
- name: dup
  context: {cluster: only-second, namespace: from-second}
- name: two
  context: {cluster: only-second}
",
    )
    .unwrap();
    let missing = dir.path().join("missing");
    let config = Kubeconfig::load(&[&first, &missing, &second]).unwrap();
    assert_eq!(config.current_context(), Some("dup"));
    assert_eq!(config.context_names(), ["one", "dup", "two"]);
    assert_eq!(config.cluster_names(), ["shared", "only-second"]);
    let dup = config.resolve(None).unwrap();
    assert_eq!(dup.namespace.as_deref(), Some("from-first"));
    assert_eq!(dup.cluster.server, "https://first.example");
    assert_eq!(config.resolve(Some("two")).unwrap().cluster.server, "https://only-second.example");

    // Reversed order: the second file's entries and current-context win.
    let config = Kubeconfig::load(&[&second, &first]).unwrap();
    let dup = config.resolve(None).unwrap();
    assert_eq!(
        (dup.namespace.as_deref(), dup.cluster.server.as_str()),
        (Some("from-second"), "https://only-second.example")
    );
    assert_eq!(config.resolve(Some("one")).unwrap().cluster.server, "https://second.example");

    // A current-context in a later file does not replace the first one's.
    let third = dir.path().join("third");
    std::fs::write(&third, "current-context: one\n").unwrap();
    assert_eq!(Kubeconfig::load(&[&third, &second]).unwrap().current_context(), Some("one"));

    // All missing is an error naming them.
    let err = Kubeconfig::load(&[&missing, &dir.path().join("gone")]).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "no kubeconfig found (tried {}, {})",
            missing.display(),
            dir.path().join("gone").display()
        )
    );
}

#[test]
fn config_paths_follow_kubeconfig_then_home() {
    let home = Path::new("/home/ops");
    let list = config_paths(Some(OsStr::new("/a/one::/b/two:/a/one")), Some(home)).unwrap();
    assert_eq!(list, [PathBuf::from("/a/one"), PathBuf::from("/b/two")]);
    assert_eq!(config_paths(None, Some(home)).unwrap(), [PathBuf::from("/home/ops/.kube/config")]);
    assert_eq!(
        config_paths(Some(OsStr::new("")), Some(home)).unwrap(),
        [home.join(".kube/config")]
    );
    assert!(matches!(config_paths(None, None), Err(Error::NoHome)));
}

#[test]
fn context_errors_are_precise() {
    let base = k3s();
    let no_current = base.replace("current-context: default\n", "");
    assert_eq!(
        resolve_err(&no_current, None),
        "no context given and the kubeconfig sets no current-context"
    );
    assert_eq!(
        resolve_err(&base, Some("prod")),
        "context \"prod\" not found (known contexts: \"default\")"
    );
    let missing_cluster = base.replace("    cluster: default", "    cluster: gone");
    assert_eq!(
        resolve_err(&missing_cluster, None),
        "context \"default\" refers to cluster \"gone\", which does not exist"
    );
    let missing_user = base.replace("    user: default", "    user: nobody");
    assert_eq!(
        resolve_err(&missing_user, None),
        "context \"default\" refers to user \"nobody\", which does not exist"
    );
    let no_cluster = base.replace("    cluster: default\n", "");
    assert_eq!(resolve_err(&no_cluster, None), "context \"default\" names no cluster");
    let no_server = base.replace("    server: https://127.0.0.1:6443\n", "");
    assert_eq!(
        resolve_err(&no_server, None),
        "/etc/rancher/k3s/k3s.yaml: cluster \"default\": no server set"
    );
    for bad in ["ftp://127.0.0.1", "127.0.0.1:6443", "https://", "https:///path"] {
        let text = base.replace("https://127.0.0.1:6443", bad);
        assert_eq!(
            resolve_err(&text, None),
            format!(
                "/etc/rancher/k3s/k3s.yaml: cluster \"default\": server \"{bad}\" is not an http(s) URL"
            )
        );
    }
    assert!(parse(&base.replace("https://127.0.0.1", "http://127.0.0.1")).resolve(None).is_ok());
}

#[test]
fn field_errors_name_the_path_and_file() {
    let base = k3s();
    let bad_key = base.replace("    client-key-data: ", "    client-key-data: x.y");
    assert_eq!(
        parse_err(&bad_key),
        "/etc/rancher/k3s/k3s.yaml: users[0].user.client-key-data: invalid base64"
    );
    let bad_ca = base.replace("certificate-authority-data: ", "certificate-authority-data: x");
    assert_eq!(
        parse_err(&bad_ca),
        "/etc/rancher/k3s/k3s.yaml: clusters[0].cluster.certificate-authority-data: invalid base64"
    );
    // The secret's text never reaches the message.
    assert!(!parse_err(&bad_key).contains("LS0t"));
    assert_eq!(
        parse_err("kind: Pod\n"),
        "/etc/rancher/k3s/k3s.yaml: kind: expected \"Config\", found \"Pod\""
    );
    assert_eq!(
        parse_err("apiVersion: v2\nkind: Config\n"),
        "/etc/rancher/k3s/k3s.yaml: apiVersion: expected \"v1\", found \"v2\""
    );
    assert_eq!(
        parse_err("clusters: {a: 1}\n"),
        "/etc/rancher/k3s/k3s.yaml: clusters: expected a sequence, found a mapping at line 1 column 11"
    );
    assert_eq!(
        parse_err("users:\n- name: a\n- name: a\n"),
        "/etc/rancher/k3s/k3s.yaml: users[1].name: duplicate name \"a\""
    );
    assert_eq!(
        parse_err("clusters:\n- cluster: {server: 'https://x'}\n"),
        "/etc/rancher/k3s/k3s.yaml: clusters[0].name: missing or empty"
    );
    let insecure = base.replace("    server:", "    insecure-skip-tls-verify: maybe\n    server:");
    assert!(
        parse_err(&insecure).starts_with(
            "/etc/rancher/k3s/k3s.yaml: clusters[0].cluster.insecure-skip-tls-verify: expected true or false"
        ),
        "{}",
        parse_err(&insecure)
    );
    let insecure = base.replace("    server:", "    insecure-skip-tls-verify: true\n    server:");
    assert!(parse(&insecure).resolve(None).unwrap().cluster.insecure_skip_tls_verify);
}

#[test]
fn yaml_syntax_errors_give_line_and_column() {
    let err =
        Kubeconfig::parse("clusters:\n- name: a\n  cluster: {server: x\n", origin()).unwrap_err();
    let Error::Syntax { line, column, ref message, .. } = err else { panic!("{err:?}") };
    assert!(line >= 3 && column >= 1, "{line}:{column} {message}");
    assert!(
        err.to_string().starts_with(&format!(
            "/etc/rancher/k3s/k3s.yaml:{line}:{column}: YAML syntax error: "
        ))
    );
    let err = Kubeconfig::parse("a: b\n  c: d\n", origin()).unwrap_err();
    assert!(matches!(err, Error::Syntax { line: 2, .. }), "{err:?}");
}

#[test]
fn conflicting_and_incomplete_credentials_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("k"), KEY_PEM).unwrap();
    let origin = dir.path().join("config");
    let both = with_user(&format!(
        "    client-certificate-data: {c}\n    client-key-data: {k}\n    client-key: k\n",
        c = base64::encode(CERT_PEM.as_bytes()),
        k = base64::encode(KEY_PEM.as_bytes())
    ));
    let err = Kubeconfig::parse(&both, &origin).unwrap().resolve(None).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("{}: users[0].user: both client-key-data and client-key are set", origin.display())
    );
    let no_key = with_user(&format!(
        "    client-certificate-data: {}\n",
        base64::encode(CERT_PEM.as_bytes())
    ));
    let err = Kubeconfig::parse(&no_key, &origin).unwrap().resolve(None).unwrap_err().to_string();
    assert!(err.ends_with("users[0].user: a client certificate needs a client key and a client key needs a certificate"), "{err}");
    let two = with_user("    token: t\n    username: u\n    password: p\n");
    let err = Kubeconfig::parse(&two, &origin).unwrap().resolve(None).unwrap_err().to_string();
    assert!(err.contains("more than one authentication method"), "{err}");
}

#[test]
fn json_kubeconfig_parses() {
    let json = format!(
        r#"{{"kind": "Config", "apiVersion": "v1",
  "clusters": [{{"name": "k", "cluster": {{"server": "https://json.example:443",
      "certificate-authority-data": "{ca}", "insecure-skip-tls-verify": false}}}}],
  "contexts": [{{"name": "c", "context": {{"cluster": "k", "user": "u", "namespace": "apps"}}}}],
  "users": [{{"name": "u", "user": {{"token": "abc.def"}}}}],
  "current-context": "c", "preferences": {{}}}}"#,
        ca = base64::encode(CA_PEM.as_bytes())
    );
    let ctx = parse(&json).resolve(None).unwrap();
    // Tab-indented JSON too (tabs are JSON whitespace).
    assert_eq!(parse(&json.replace("\n  ", "\n\t")).resolve(None).unwrap().name, "c");
    assert_eq!(ctx.cluster.server, "https://json.example:443");
    assert_eq!(ctx.cluster.ca_pem.as_deref(), Some(CA_PEM.as_bytes()));
    assert_eq!(ctx.namespace.as_deref(), Some("apps"));
    assert_eq!(ctx.user.token.unwrap().expose(), b"abc.def");
}

#[test]
fn exec_and_auth_provider_users_are_reported_unsupported() {
    let exec = with_user(
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: aws\n      args: [eks, get-token]\n",
    );
    let ctx = parse(&exec).resolve(None).unwrap();
    assert_eq!(ctx.user.plugin, Some(AuthPlugin::Exec { command: String::from("aws") }));
    assert_eq!(
        ctx.user.check_supported().unwrap_err().to_string(),
        "user \"u\" authenticates with exec plugin \"aws\", which keystation does not support"
    );
    let provider = with_user(
        "    auth-provider:\n      name: oidc\n      config: {idp-issuer-url: 'https://x'}\n",
    );
    let ctx = parse(&provider).resolve(None).unwrap();
    assert_eq!(
        ctx.user.check_supported().unwrap_err().to_string(),
        "user \"u\" authenticates with auth-provider \"oidc\", which keystation does not support"
    );
}

fn proxy_config() -> ProxyConfig {
    ProxyConfig {
        context: String::from("prod \"eu\""),
        server: String::from("https://api.prod.example:6443"),
        ca_pem: Some(CA_PEM.as_bytes().to_vec()),
        tls_server_name: Some(String::from("kubernetes")),
        slot: String::from("9a"),
        listen: String::from("127.0.0.1:8080"),
    }
}

#[test]
fn proxy_config_round_trips() {
    let config = proxy_config();
    let text = write_proxy_config(&config).unwrap();
    assert!(!text.contains("users:\n-"), "no credentials:\n{text}");
    let parsed = Kubeconfig::parse(&text, Path::new("proxy.yml")).unwrap();
    assert_eq!(parsed.proxy_config(None).unwrap(), config);
    let ctx = parsed.resolve(None).unwrap();
    assert_eq!(
        ctx.keystation,
        Some(ProxyExtension { slot: "9a".into(), listen: "127.0.0.1:8080".into() })
    );
    assert!(
        ctx.user.name.is_none() && ctx.user.client_key_pem.is_none() && ctx.user.token.is_none()
    );
    // Without a CA or server name too.
    let bare = ProxyConfig { ca_pem: None, tls_server_name: None, ..proxy_config() };
    let parsed = Kubeconfig::parse(&write_proxy_config(&bare).unwrap(), Path::new("p")).unwrap();
    assert_eq!(parsed.proxy_config(Some("prod \"eu\"")).unwrap(), bare);
    // A kubeconfig without the extension says so.
    let err = parse(&k3s()).proxy_config(None).unwrap_err().to_string();
    assert_eq!(err, "context \"default\" has no keystation extension");
    // Writers refuse what could not be read back.
    assert!(
        write_proxy_config(&ProxyConfig { server: "api:6443".into(), ..proxy_config() }).is_err()
    );
    assert!(write_proxy_config(&ProxyConfig { slot: String::new(), ..proxy_config() }).is_err());
}

#[test]
fn client_config_round_trips() {
    let text =
        write_client_config("http://127.0.0.1:8080", "via-keystation", Some("apps")).unwrap();
    let ctx = Kubeconfig::parse(&text, Path::new("client.yml")).unwrap().resolve(None).unwrap();
    assert_eq!(ctx.name, "via-keystation");
    assert_eq!(ctx.cluster.server, "http://127.0.0.1:8080");
    assert_eq!(ctx.cluster.ca_pem, None);
    assert_eq!(ctx.namespace.as_deref(), Some("apps"));
    assert!(ctx.user.name.is_none() && ctx.keystation.is_none());
    let text = write_client_config("http://127.0.0.1:9", "x", None).unwrap();
    assert_eq!(
        Kubeconfig::parse(&text, Path::new("c")).unwrap().resolve(None).unwrap().namespace,
        None
    );
    assert!(write_client_config("127.0.0.1:8080", "x", None).is_err());
}

/// kubectl itself must read what the writers produce.
#[test]
fn kubectl_reads_written_configs() {
    let have_kubectl =
        std::process::Command::new("kubectl").arg("version").arg("--client").output().is_ok();
    if !have_kubectl {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "kubectl must be installed in CI");
        eprintln!("kubectl not on PATH; skipping its check");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let view = |path: &Path, jsonpath: &str| -> String {
        let out = std::process::Command::new("kubectl")
            .args(["config", "view", "--kubeconfig"])
            .arg(path)
            .arg("-o")
            .arg(format!("jsonpath={jsonpath}"))
            .output()
            .unwrap();
        assert!(out.status.success(), "kubectl failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let client = dir.path().join("client.yml");
    std::fs::write(
        &client,
        write_client_config("http://127.0.0.1:18080", "ks", Some("apps")).unwrap(),
    )
    .unwrap();
    assert_eq!(view(&client, "{.clusters[0].cluster.server}"), "http://127.0.0.1:18080");
    assert_eq!(view(&client, "{.current-context}"), "ks");
    assert_eq!(view(&client, "{.contexts[0].context.namespace}"), "apps");

    let proxy = dir.path().join("proxy.yml");
    std::fs::write(&proxy, write_proxy_config(&proxy_config()).unwrap()).unwrap();
    assert_eq!(view(&proxy, "{.clusters[0].cluster.server}"), "https://api.prod.example:6443");
    assert_eq!(view(&proxy, "{.contexts[0].name}"), "prod \"eu\"");
    assert_eq!(view(&proxy, "{.clusters[0].cluster.tls-server-name}"), "kubernetes");
    assert_eq!(view(&proxy, "{.contexts[0].context.extensions[0].extension.slot}"), "9a");
    // What kubectl writes back (its own YAML style) reads back to the same settings.
    let out = std::process::Command::new("kubectl")
        .args(["config", "view", "--raw", "--kubeconfig"])
        .arg(&proxy)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rewritten = Kubeconfig::parse(std::str::from_utf8(&out.stdout).unwrap(), &proxy).unwrap();
    assert_eq!(rewritten.proxy_config(None).unwrap(), proxy_config());
}

#[test]
fn alias_bombs_are_refused() {
    // "Billion laughs": nine levels of nine aliases each would expand to 9^9 nodes.
    let mut text = String::from("a: &a [\"lol\"]\n");
    let names = ["b", "c", "d", "e", "f", "g", "h", "i", "j"];
    let mut previous = "a";
    for name in names {
        text.push_str(&format!(
            "{name}: &{name} [{}]\n",
            vec![format!("*{previous}"); 9].join(", ")
        ));
        previous = name;
    }
    let started = std::time::Instant::now();
    let err = Kubeconfig::parse(&text, origin()).unwrap_err();
    assert!(err.to_string().contains("too large after alias expansion"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // Small, legitimate aliases still work.
    let ok =
        "clusters:\n- name: k\n  cluster: &c {server: 'https://a'}\n- name: k2\n  cluster: *c\n";
    assert_eq!(parse(ok).cluster_names(), ["k", "k2"]);
}

#[test]
fn oversized_and_deeply_nested_inputs_are_refused() {
    let big = format!("# {}\n", "x".repeat(keystation_kubeconfig::MAX_CONFIG_BYTES));
    assert!(matches!(Kubeconfig::parse(&big, origin()), Err(Error::TooLarge { .. })));
    // Flow nesting stops at the scanner's limit (255 levels), block nesting at ours (128).
    let deep = format!("a: {}", "[".repeat(100_000));
    let err = Kubeconfig::parse(&deep, origin()).unwrap_err().to_string();
    assert!(err.contains("YAML syntax error: recursion limit exceeded"), "{err}");
    let deep: String = (0..1000).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
    let err = Kubeconfig::parse(&deep, origin()).unwrap_err().to_string();
    assert!(err.contains("YAML syntax error: nesting deeper than 128 levels"), "{err}");
    let deep: String = (0..1000).map(|i| format!("{}-\n", " ".repeat(i))).collect();
    assert!(Kubeconfig::parse(&deep, origin()).is_err());
    let deep = format!("a: {}", "{a: ".repeat(100_000));
    assert!(Kubeconfig::parse(&deep, origin()).is_err());
    // Empty and null documents are empty configs, as in kubectl.
    for empty in ["", "---\n", "null\n", "# nothing\n"] {
        assert!(parse(empty).context_names().is_empty());
    }
}

#[test]
fn large_lists_and_mappings_parse_in_linear_time() {
    let started = std::time::Instant::now();
    let mut users = String::from("users:\n");
    for i in 0..100_000 {
        users.push_str(&format!("- name: u{i}\n"));
    }
    assert!(users.len() < keystation_kubeconfig::MAX_CONFIG_BYTES);
    assert_eq!(parse(&users).user_names().len(), 100_000);
    users.push_str("- name: u7\n");
    assert_eq!(
        parse_err(&users),
        "/etc/rancher/k3s/k3s.yaml: users[100000].name: duplicate name \"u7\""
    );
    // Unknown top-level keys are ignored, but still checked for duplicates.
    let mut keys = String::new();
    for i in 0..100_000 {
        keys.push_str(&format!("k{i}: v\n"));
    }
    assert!(parse(&keys).context_names().is_empty());
    keys.push_str("k5: again\n");
    assert_eq!(
        parse_err(&keys),
        "/etc/rancher/k3s/k3s.yaml: k5: duplicate key at line 100001 column 1"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
}

/// Cheap deterministic fuzzing: truncations and byte mutations of real configs must give
/// `Ok` or `Err`, never a panic or a hang.
#[test]
fn parse_is_total_on_mutated_inputs() {
    // KUBECONFIG_FUZZ_ITERATIONS raises the count for a longer local run.
    let iterations: usize = std::env::var("KUBECONFIG_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    let seeds = [k3s(), with_user("    token: t\n"), write_proxy_config(&proxy_config()).unwrap()];
    let alphabet = b"{}[]:,-&*!|>'\"#%@`? \n\t\\ax0";
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for seed in &seeds {
        for cut in (0..seed.len()).step_by(7) {
            let _ = Kubeconfig::parse(&seed[..cut], origin());
        }
        for _ in 0..iterations {
            let mut bytes = seed.clone().into_bytes();
            for _ in 0..(next() % 4 + 1) {
                let at = (next() as usize) % bytes.len();
                bytes[at] = alphabet[(next() as usize) % alphabet.len()];
            }
            let text = String::from_utf8_lossy(&bytes);
            if let Ok(config) = Kubeconfig::parse(&text, origin()) {
                let _ = config.resolve(None);
            }
        }
    }
}
