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
    require_tools,
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
    }
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

    let output =
        authority_command(&authority, &["provisioner", "add", PROVISIONER, "--type", "ACME"])
            .output()
            .unwrap();
    assert!(
        output.status.success(),
        "authority provisioner add {PROVISIONER} --type ACME failed ({}):\n{}{}",
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
