//! One ACME client script, two servers (issue 14, item 4): lego and certbot (Debian's and
//! PyPI's) obtain, renew and revoke certificates through http-01, dns-01 and tls-alpn-01
//! (lego only: certbot has no tls-alpn-01 authenticator), the chains verify with openssl,
//! and nginx serves one of them — against Debian's pebble, the reference ACME test server,
//! and against `keystation authority serve` with an ACME provisioner, on SQLite and on
//! PostgreSQL. Both run tests/acme/clients.sh unchanged; only its environment differs.
//!
//! ```text
//! scripts/with-postgres cargo test --features test-authority --test acme_clients -- --nocapture
//! ```
//!
//! Each server resolves names with pebble-challtestsrv on loopback (every name is
//! 127.0.0.1; the clients set the dns-01 TXT records there) and validates http-01 and
//! tls-alpn-01 on loopback ports the test picks, where the clients' standalone responders
//! listen. Against keystation the test then reads the authority's store: every issued
//! certificate is recorded under the ACME provisioner, every revoked one is revoked with the
//! reason the client sent, and none other is.
//!
//! With an external account binding required (RFC 8555 §7.3.4), the script runs again on
//! each server: every account it makes binds a key of its own (lego's `--eab`, certbot's
//! `--eab-kid`/`--eab-hmac-key`), a wrong HMAC key is refused, and on keystation (whose
//! keys come from `keystation authority acme eab add`) a used key binds no second account.
//!
//! Needs Debian's pebble, lego, certbot, nginx, openssl, curl and python3, and certbot from
//! PyPI in `KEYSTATION_TEST_CERTBOT_PYPI` (scripts/test installs them all and makes
//! target/certbot-venv); the PostgreSQL test needs `KEYSTATION_TEST_POSTGRES_URL`
//! (scripts/with-postgres). Anything missing fails the tests, saying how to get it.
#![cfg(feature = "test-authority")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

#[path = "support/acme_peers.rs"]
mod acme_peers;
#[path = "support/authority_harness.rs"]
mod harness;

use std::collections::BTreeSet;
use std::path::Path;

use acme_peers::{
    ChallTestSrv, ClientScript, Pebble, ScriptRun, TlsIdentity, Tools, curl, free_port,
    require_tools, write_eab_keys,
};
use harness::{Authority, Engine, keystation};

/// The ACME provisioner's name, hence the directory `/acme/acme/directory`.
const PROVISIONER: &str = "acme";

/// The script's outcome must be complete whatever the server: per certbot, two
/// certificates and one revocation for each of http-01 and dns-01; for lego, two and one
/// for each of http-01, dns-01 and tls-alpn-01; revocations signed by account keys and by
/// certificate keys; all serials distinct, every revoked one among the issued.
fn assert_complete(run: &ScriptRun, certbots: usize) {
    assert_eq!(run.issued.len(), 6 + 4 * certbots, "issued: {:?}", run.issued);
    assert_eq!(run.revoked.len(), 3 + 2 * certbots, "revoked: {:?}", run.revoked);
    let serials: BTreeSet<&str> = run.issued.iter().map(|i| i.serial.as_str()).collect();
    assert_eq!(serials.len(), run.issued.len(), "a serial was issued twice: {:?}", run.issued);
    for revoked in &run.revoked {
        assert!(serials.contains(revoked.serial.as_str()), "{revoked:?} was not issued");
    }
    let ways: BTreeSet<&str> = run.revoked.iter().map(|r| r.how.as_str()).collect();
    assert_eq!(ways, BTreeSet::from(["account", "certificate-key"]), "{:?}", run.revoked);
}

/// The serials issued but not revoked.
fn unrevoked(run: &ScriptRun) -> Vec<&str> {
    let revoked: BTreeSet<&str> = run.revoked.iter().map(|r| r.serial.as_str()).collect();
    run.issued.iter().map(|i| i.serial.as_str()).filter(|s| !revoked.contains(s)).collect()
}

/// The script's environment for a server at `directory`, trusting `ca_bundle`, with the
/// validation ports `ports` (http-01, tls-alpn-01), working in `dir/clients`.
fn script(
    tools: &Tools,
    dns: &ChallTestSrv,
    directory: String,
    ca_bundle: &Path,
    ports: (u16, u16),
    dir: &Path,
) -> ClientScript {
    ClientScript {
        directory,
        ca_bundle: ca_bundle.to_owned(),
        dns_server: dns.dns_server(),
        dns_management: dns.management_url(),
        http01_port: ports.0,
        tls_alpn01_port: ports.1,
        work: dir.join("clients"),
        certbots: tools.certbots.clone(),
        cert_status_url: None,
        eab_keys: None,
        eab_single_use: false,
    }
}

/// External account keys the script needs: one for its refused binding, one for each
/// account it makes (three lego, two per certbot).
fn eab_keys_needed(tools: &Tools) -> usize {
    1 + 3 + 2 * tools.certbots.len()
}

/// Every account of the run was bound with a key of its own, the keys handed out in order
/// after the one the refused binding used, and one account per client case.
fn assert_bound_in_order(run: &ScriptRun, keys: &[(String, String)], certbots: usize) {
    assert_eq!(run.bindings.len(), 3 + 2 * certbots, "bindings: {:?}", run.bindings);
    let used: Vec<&str> = run.bindings.iter().map(|b| b.key_id.as_str()).collect();
    let expected: Vec<&str> =
        keys[1..=run.bindings.len()].iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(used, expected, "the accounts were not bound with the keys in order");
    let names: BTreeSet<&str> = run.bindings.iter().map(|b| b.name.as_str()).collect();
    let issued: BTreeSet<&str> = run.issued.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, issued, "every name was ordered by a bound account");
}

// --- pebble ------------------------------------------------------------------------------

/// The reference: the script passes against pebble, which also confirms each revocation
/// (its `/cert-status-by-serial`), and the certificates the script did not revoke are
/// still valid there.
#[test]
fn pebble_passes_the_client_script() {
    let tools = require_tools();
    let dir = tempfile::tempdir().unwrap();
    let dns = ChallTestSrv::start(&tools, dir.path());
    let ports = (free_port(), free_port());
    let pebble = Pebble::start(&tools, dir.path(), &dns, ports.0, ports.1);
    let mut client =
        script(&tools, &dns, pebble.directory_url(), &pebble.ca_bundle, ports, dir.path());
    client.cert_status_url = Some(pebble.management_url());
    let run = client
        .run()
        .unwrap_or_else(|failure| panic!("{failure}\n{}\n{}", pebble.log_tail(), dns.log_tail()));
    eprintln!("{}\n---- pebble: the script took {:.1?} ----", run.output, run.elapsed);
    assert_complete(&run, tools.certbots.len());
    for serial in unrevoked(&run) {
        let url = format!("{}/cert-status-by-serial/{serial}", pebble.management_url());
        let status: serde_json::Value =
            serde_json::from_str(&curl(&pebble.ca_bundle, &url).unwrap()).unwrap();
        assert_eq!(status["Status"], "Valid", "{serial} (not revoked by the script): {status}");
    }
}

/// The script's checks can fail: with a bundle whose chain root is not the server's
/// (pebble's TLS CA, so the clients connect, and an unrelated root), the first issuance
/// fails openssl's verification, the script exits non-zero and records nothing.
#[test]
fn the_script_fails_on_a_chain_to_another_root() {
    let tools = require_tools();
    let dir = tempfile::tempdir().unwrap();
    let dns = ChallTestSrv::start(&tools, dir.path());
    let ports = (free_port(), free_port());
    let pebble = Pebble::start(&tools, dir.path(), &dns, ports.0, ports.1);
    let tls_ca = std::fs::read_to_string(dir.path().join("pebble-tls-ca.pem")).unwrap();
    let stranger = TlsIdentity::new("Unrelated root");
    let bundle = dir.path().join("wrong-bundle.pem");
    std::fs::write(&bundle, format!("{tls_ca}{}", stranger.ca_pem)).unwrap();
    let client = script(&tools, &dns, pebble.directory_url(), &bundle, ports, dir.path());
    let failure = client.run().expect_err("the script passed with a bundle lacking the root");
    assert!(
        failure.output.contains("FAIL lego http-01: issued: openssl verify"),
        "the script failed, but not at the chain's verification:\n{failure}"
    );
    let issued = std::fs::read_to_string(client.work.join("issued")).unwrap();
    assert_eq!(issued, "", "a certificate that did not verify was recorded");
}

/// pebble requiring an external account binding, with keys of the test's own making: the
/// script's refusals hold and every client binds its account.
#[test]
fn pebble_passes_the_client_script_with_eab() {
    use base64::Engine as _;
    use rand_core::RngCore as _;
    let tools = require_tools();
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<(String, String)> = (0..eab_keys_needed(&tools))
        .map(|i| {
            let mut hmac = [0u8; 32];
            rand_core::OsRng.fill_bytes(&mut hmac);
            if i == 4 {
                // The first certbot's first account: a key whose base64url begins with '-'
                // (certbot must be given it as --eab-hmac-key=…).
                hmac[0] = 0xf8;
            }
            (format!("kid-{i}"), base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hmac))
        })
        .collect();
    let dns = ChallTestSrv::start(&tools, dir.path());
    let ports = (free_port(), free_port());
    let pebble = Pebble::start_with_eab(&tools, dir.path(), &dns, ports.0, ports.1, &keys);
    let mut client =
        script(&tools, &dns, pebble.directory_url(), &pebble.ca_bundle, ports, dir.path());
    let keys_file = dir.path().join("eab-keys");
    write_eab_keys(&keys_file, &keys);
    client.eab_keys = Some(keys_file);
    let run = client
        .run()
        .unwrap_or_else(|failure| panic!("{failure}\n{}\n{}", pebble.log_tail(), dns.log_tail()));
    eprintln!("{}\n---- pebble with EAB: the script took {:.1?} ----", run.output, run.elapsed);
    assert_complete(&run, tools.certbots.len());
    assert_bound_in_order(&run, &keys, tools.certbots.len());
}

// --- keystation --------------------------------------------------------------------------

/// `keystation authority <args…>` against `authority`'s state and store.
fn authority_command(authority: &Authority, args: &[&str]) -> std::process::Command {
    let mut command = keystation(authority.dir.path());
    command.arg("authority").args(args).arg("--dir").arg(&authority.state);
    if let Some(url) = &authority.database.url {
        command.args(["--database", url]);
    }
    command
}

/// Adds the ACME provisioner (`provisioner add … --type ACME`, then `extra` flags) and an
/// `[acme]` table: resolve with `dns`, validate on `ports` (http-01, tls-alpn-01), loopback
/// allowed.
fn add_acme_provisioner(
    authority: &Authority,
    dns: &ChallTestSrv,
    ports: (u16, u16),
    extra: &[&str],
) {
    let mut args = vec!["provisioner", "add", PROVISIONER, "--type", "ACME"];
    args.extend_from_slice(extra);
    let output = authority_command(authority, &args).output().unwrap();
    assert!(
        output.status.success(),
        "authority {} failed ({}):\n{}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let config = authority.state.join("config/authority.toml");
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push_str(&format!(
        "\n[acme]\nresolver = \"{}\"\nhttp01_port = {}\ntls_alpn01_port = {}\n\
         allow = [\"127.0.0.0/8\", \"::1/128\"]\n",
        dns.dns_server(),
        ports.0,
        ports.1
    ));
    std::fs::write(&config, toml).unwrap();
}

/// The script against `keystation authority serve` with an ACME provisioner on `engine`,
/// then the store: each issued certificate recorded under the provisioner, each revoked
/// one revoked with the client's reason, the others not revoked.
async fn keystation_passes(engine: Engine) {
    let tools = require_tools();
    let port = free_port();
    let authority = Authority::init(engine, port);
    let dir = authority.dir.path();
    let dns = ChallTestSrv::start(&tools, dir);
    let ports = (free_port(), free_port());
    add_acme_provisioner(&authority, &dns, ports, &[]);

    let mut server = authority.serve(port, "acme");
    server.wait_healthy().await;
    let root = authority.state.join("certs/root_ca.crt");
    let directory = format!("https://localhost:{port}/acme/{PROVISIONER}/directory");
    let client = script(&tools, &dns, directory, &root, ports, dir);
    let run = tokio::task::spawn_blocking(move || client.run()).await.unwrap().unwrap_or_else(
        |failure| {
            panic!("{failure}\n---- authority log ----\n{}\n{}", server.log_tail(), dns.log_tail())
        },
    );
    eprintln!(
        "{}\n---- keystation ({engine:?}): the script took {:.1?} ----",
        run.output, run.elapsed
    );
    assert_complete(&run, tools.certbots.len());

    let store = authority.store().await;
    for issued in &run.issued {
        let record = store
            .certificate(&issued.serial)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{issued:?} is not in the store"));
        assert_eq!(record.provisioner, PROVISIONER, "{issued:?}: {record:?}");
        assert!(
            record.sans.iter().any(|san| san.trim_start_matches("DNS:") == issued.name),
            "{issued:?}: the store has names {:?}",
            record.sans
        );
    }
    for revoked in &run.revoked {
        let details = store
            .revocation(&revoked.serial)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{revoked:?} is not revoked in the store"));
        assert_eq!(details.reason_code, revoked.reason, "{revoked:?}: {details:?}");
        assert!(!details.mtls, "{revoked:?}: recorded as revoked over mutual TLS");
    }
    for serial in unrevoked(&run) {
        assert!(!store.is_revoked(serial).await.unwrap(), "{serial} was not revoked by the script");
    }
}

/// keystation with an ACME provisioner that requires an external account binding, its keys
/// made with `keystation authority acme eab add`: the script passes (a wrong HMAC key and
/// a used key refused), and `eab list` shows each key bound to the account that used it,
/// the refused binding's key to none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keystation_passes_the_client_script_with_eab() {
    let tools = require_tools();
    let port = free_port();
    let authority = Authority::init(Engine::Sqlite, port);
    let dir = authority.dir.path();
    let dns = ChallTestSrv::start(&tools, dir);
    let ports = (free_port(), free_port());
    add_acme_provisioner(&authority, &dns, ports, &["--require-eab"]);

    let keys: Vec<(String, String)> = (0..eab_keys_needed(&tools))
        .map(|i| {
            let output = authority_command(
                &authority,
                &["acme", "eab", "add", PROVISIONER, &format!("client-{i}")],
            )
            .output()
            .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success(),
                "acme eab add: {stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            );
            let field = |name: &str| {
                stdout
                    .lines()
                    .find_map(|line| line.strip_prefix(name)?.strip_prefix('\t'))
                    .unwrap_or_else(|| panic!("acme eab add printed no {name}: {stdout}"))
                    .to_owned()
            };
            (field("keyID"), field("hmacKey"))
        })
        .collect();
    let keys_file = dir.join("eab-keys");
    write_eab_keys(&keys_file, &keys);

    let mut server = authority.serve(port, "acme-eab");
    server.wait_healthy().await;
    let root = authority.state.join("certs/root_ca.crt");
    let directory = format!("https://localhost:{port}/acme/{PROVISIONER}/directory");
    let mut client = script(&tools, &dns, directory, &root, ports, dir);
    client.eab_keys = Some(keys_file);
    client.eab_single_use = true;
    let run = tokio::task::spawn_blocking(move || client.run()).await.unwrap().unwrap_or_else(
        |failure| {
            panic!("{failure}\n---- authority log ----\n{}\n{}", server.log_tail(), dns.log_tail())
        },
    );
    eprintln!("{}\n---- keystation with EAB: the script took {:.1?} ----", run.output, run.elapsed);
    assert_complete(&run, tools.certbots.len());
    assert_bound_in_order(&run, &keys, tools.certbots.len());

    // `eab list`: key ID, reference, bound account (or -), created.
    let output =
        authority_command(&authority, &["acme", "eab", "list", PROVISIONER]).output().unwrap();
    assert!(output.status.success(), "acme eab list: {}", String::from_utf8_lossy(&output.stderr));
    let listed = String::from_utf8_lossy(&output.stdout).into_owned();
    let bound_to = |key_id: &str| -> String {
        listed
            .lines()
            .find(|line| line.split('\t').next() == Some(key_id))
            .and_then(|line| line.split('\t').nth(2))
            .unwrap_or_else(|| panic!("eab list does not show {key_id}:\n{listed}"))
            .to_owned()
    };
    assert_eq!(bound_to(&keys[0].0), "-", "the refused binding's key was spent:\n{listed}");
    let store = authority.store().await;
    let mut accounts = BTreeSet::new();
    for binding in &run.bindings {
        let account = bound_to(&binding.key_id);
        let record =
            store.acme_account(PROVISIONER, &account).await.unwrap().unwrap_or_else(|| {
                panic!("{binding:?}: bound to {account}, which is not an account")
            });
        assert_eq!(record.eab_key_id.as_deref(), Some(binding.key_id.as_str()), "{record:?}");
        accounts.insert(account);
    }
    assert_eq!(accounts.len(), run.bindings.len(), "two clients share an account: {listed}");
}

/// keystation with its default store, SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keystation_passes_the_client_script() {
    keystation_passes(Engine::Sqlite).await;
}

/// keystation on PostgreSQL (`KEYSTATION_TEST_POSTGRES_URL`, scripts/with-postgres).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keystation_passes_the_client_script_on_postgres() {
    keystation_passes(Engine::Postgres).await;
}
