//! The OIDC provisioner against a real OpenID provider: panva's OpenID Certified
//! `oidc-provider` from the npm registry (tests/oidc/provider.mjs), started on loopback by
//! this test, and ID tokens obtained through the provider's own authorization-code flow
//! (tests/oidc/login.mjs drives its login and consent pages, PKCE, the token endpoint).
//! The provisioner fetches the provider's discovery document and JWKS itself, through
//! keystation-fetch, and decides.
//!
//! Needs `node` (≥ 20.19) and `npm`: a missing tool fails the test, as every peer does
//! in this project (scripts/test installs them). The npm packages are installed with
//! `npm ci` from tests/oidc/package-lock.json into a scratch directory under the target
//! directory (reused while the lock file is unchanged), or taken from
//! `KEYSTATION_TEST_OIDC_DIR`, a directory where `npm ci` already ran on a copy of
//! tests/oidc (scripts/test prepares it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use keystation_core::Provisioner;
use keystation_core::provisioner::{Credential, Denial, Grant, Operation, Request, TrustedKeys};
use keystation_oidc::{OidcOptions, OidcProvisioner};
use keystation_provisioners::token_checks::LEEWAY;
use keystation_provisioners::{CachedKeys, ProvisionerContext, StepProvisioner};

const SCRIPTS: [&str; 4] = ["package.json", "package-lock.json", "provider.mjs", "login.mjs"];

/// A tool the test needs; missing is a failure, not a skip.
fn tool(name: &str) -> PathBuf {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    found.unwrap_or_else(|| {
        panic!(
            "{name} is needed for the real OpenID provider test (Node.js >= 20.19 with npm); \
             scripts/test installs it"
        )
    })
}

/// The directory with the scripts and their node_modules.
fn provider_dir() -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
    let prepared = std::env::var_os("KEYSTATION_TEST_OIDC_DIR").map(PathBuf::from);
    let dir = prepared
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("keystation-oidc-provider"));
    std::fs::create_dir_all(&dir).unwrap();
    let lock = std::fs::read(source.join("package-lock.json")).unwrap();
    let installed_lock = dir.join("node_modules/.keystation-lock");
    let current = std::fs::read(&installed_lock).ok().as_deref() == Some(lock.as_slice());
    // The scripts are copied next to the packages — unless the prepared directory is the
    // source directory itself (copying a file onto itself would empty it).
    let same = source.canonicalize().ok() == dir.canonicalize().ok();
    for file in SCRIPTS.iter().filter(|_| !same) {
        std::fs::copy(source.join(file), dir.join(file)).unwrap();
    }
    if !current {
        if prepared.is_some() && dir.join("node_modules/oidc-provider").is_dir() {
            // Prepared by scripts/test with `npm ci`: trust it, and remember the lock.
            std::fs::write(&installed_lock, &lock).unwrap();
        } else {
            let npm = tool("npm");
            let out = Command::new(npm)
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "npm ci in {} failed:\n{}\n{}",
                dir.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::write(&installed_lock, &lock).unwrap();
        }
    }
    dir
}

/// A running provider; killed (by its PID) when dropped. Its stdin is a pipe we hold, so
/// it also exits if this process dies.
struct RealProvider {
    child: Child,
    issuer: String,
}

impl Drop for RealProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(node: &Path, dir: &Path, id_token_ttl: u32) -> RealProvider {
    let mut child = Command::new(node)
        .args(["provider.mjs", "--id-token-ttl", &id_token_ttl.to_string()])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let started: serde_json::Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("provider.mjs did not start ({e}): {line:?}"));
    let issuer = started["issuer"].as_str().unwrap().to_owned();
    RealProvider { child, issuer }
}

/// An ID token for `user` through the provider's authorization-code flow.
fn login(node: &Path, dir: &Path, issuer: &str, user: &str, client: &str) -> String {
    let secret = if client == "keystation" { "keystation-secret" } else { "other-app-secret" };
    let out = Command::new(node)
        .args(["login.mjs", "--issuer", issuer, "--user", user])
        .args(["--client-id", client, "--client-secret", secret])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "login.mjs as {user} for {client} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "an ID token: {token}");
    token
}

fn provisioner(issuer: &str, domains: &[&str]) -> OidcProvisioner {
    let options = OidcOptions {
        name: "real-idp".into(),
        client_id: "keystation".into(),
        client_secret: "keystation-secret".into(),
        configuration_endpoint: issuer.into(),
        domains: domains.iter().map(|d| (*d).to_owned()).collect(),
        admins: vec!["alice@example.com".into()],
        ..OidcOptions::default()
    };
    OidcProvisioner::from_json_in(&options.to_json(), &ProvisionerContext::default()).unwrap()
}

fn authorize_at(
    p: &OidcProvisioner,
    keys: &TrustedKeys,
    token: &str,
    operation: Operation,
    now: SystemTime,
) -> Result<Grant, Denial> {
    let request = Request {
        credential: Credential::Token(token),
        operation,
        audience: "https://ca.example:9000/1.0/sign",
        subject_key: None,
    };
    p.authorize(&request, keys, now).map_err(|e| match e {
        keystation_core::Error::Unauthorized(d) => d,
        other => panic!("not a denial: {other}"),
    })
}

#[test]
fn real_provider_tokens_are_accepted_and_foreign_ones_refused() {
    let node = tool("node");
    let dir = provider_dir();
    let idp = start(&node, &dir, 600);
    let second = start(&node, &dir, 600);
    let short = start(&node, &dir, 1);

    let alice = login(&node, &dir, &idp.issuer, "alice", "keystation");
    let bob = login(&node, &dir, &idp.issuer, "bob", "keystation");
    let carol = login(&node, &dir, &idp.issuer, "carol", "keystation");
    let other_client = login(&node, &dir, &idp.issuer, "alice", "other-app");
    let from_second = login(&node, &dir, &second.issuer, "alice", "keystation");
    let expiring = login(&node, &dir, &short.issuer, "alice", "keystation");

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let p = provisioner(&idp.issuer, &[]);
    let cache = CachedKeys::new(p.key_source().unwrap());
    let keys = runtime.block_on(cache.keys_for(&alice)).unwrap();
    assert!(!keys.keys.is_empty(), "the provider's JWKS, fetched through its discovery");
    let now = SystemTime::now();
    let check = |token: &str, op| authorize_at(&p, &keys, token, op, now);

    // alice, through the provider's own flow: accepted with step-ca's names.
    let grant = check(&alice, Operation::SignX509).unwrap();
    assert_eq!(grant.subject, "alice");
    assert_eq!(grant.sans, ["alice@example.com".to_owned(), format!("{}#alice", idp.issuer)]);
    assert!(grant.replay_id.is_some(), "the nonce");
    // alice is an admin here: revoke is hers.
    assert!(check(&alice, Operation::RevokeX509).is_ok());
    // carol's email is verified: accepted, and no admin.
    assert!(check(&carol, Operation::SignX509).is_ok());
    assert_eq!(check(&carol, Operation::RevokeX509), Err(Denial::OperationNotAllowed));

    // bob's email is not verified: refused.
    assert_eq!(check(&bob, Operation::SignX509), Err(Denial::PolicyViolation));
    // A token for another client of the same provider: refused.
    assert_eq!(check(&other_client, Operation::SignX509), Err(Denial::WrongAudience));
    // A second provider's token: its key is unknown here; even if the authority refetched
    // our provider's set, the kid stays unknown.
    assert_eq!(check(&from_second, Operation::SignX509), Err(Denial::UnknownKey));
    let refetched = runtime.block_on(cache.refetch_for_unknown_kid()).unwrap().unwrap();
    assert_eq!(
        authorize_at(&p, &refetched, &from_second, Operation::SignX509, now),
        Err(Denial::UnknownKey)
    );
    // With the second provider's keys but our issuer and client, its token names the
    // wrong issuer.
    let second_keys = {
        let p2 = provisioner(&second.issuer, &[]);
        let mut k = runtime.block_on(p2.key_source().unwrap().fetch()).unwrap();
        k.statements.retain(|s| !s.starts_with(keystation_oidc::ISSUER_STATEMENT));
        k.statements.push(format!("{}{}", keystation_oidc::ISSUER_STATEMENT, idp.issuer));
        k
    };
    assert_eq!(
        authorize_at(&p, &second_keys, &from_second, Operation::SignX509, now),
        Err(Denial::WrongIssuer)
    );

    // The domains filter: carol@other.example is not in example.com.
    let strict = provisioner(&idp.issuer, &["example.com"]);
    let strict_keys = runtime.block_on(strict.key_source().unwrap().fetch()).unwrap();
    assert!(authorize_at(&strict, &strict_keys, &alice, Operation::SignX509, now).is_ok());
    assert_eq!(
        authorize_at(&strict, &strict_keys, &carol, Operation::SignX509, now),
        Err(Denial::PolicyViolation)
    );

    // An expired token: the short provider's 1-second ID token, once its exp and the
    // 60-second leeway are past (the clock is moved by the leeway rather than waited).
    let p_short = provisioner(&short.issuer, &[]);
    let short_keys = runtime.block_on(p_short.key_source().unwrap().fetch()).unwrap();
    assert!(authorize_at(&p_short, &short_keys, &expiring, Operation::SignX509, now).is_ok());
    std::thread::sleep(Duration::from_millis(2100));
    let later = SystemTime::now() + LEEWAY;
    assert_eq!(
        authorize_at(&p_short, &short_keys, &expiring, Operation::SignX509, later),
        Err(Denial::Expired)
    );
}
