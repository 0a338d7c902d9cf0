//! The authority's refusals, against the real `keystation authority serve` on loopback, each
//! on SQLite (the default store) and on PostgreSQL (issue 12, item 8):
//!
//! * the negative suite on `/1.0/sign` with a valid CSR — alg `none`, HS256 keyed with the
//!   provisioner's public key, no `exp`, an overlong lifetime, a future `nbf`, a replayed
//!   token, a wrong `aud` (another host, another port, the revoke path, the SSH path), an SSH
//!   token, an unknown `kid`, a token signed by another key, CSR names the token does not
//!   allow — each refused with the right status and a message naming the check, and none
//!   spends the token's `jti`: after a refusal that came after the signature verified, a
//!   corrected request with the same `jti` succeeds; where the refusal came before (a
//!   forgery), the forger used a victim's `jti` and the victim's token still works. Tokens
//!   made by keystation-jose, PyJWT and jwcrypto are accepted;
//! * the replay race: two replicas sharing the state directory and the store, one token
//!   sent 200 times at once across both — exactly one certificate;
//! * kill -9 and restart under load: every certificate a client received is recorded.
//!
//! ```text
//! scripts/with-postgres cargo test --features test-authority --test authority_negative
//! ```
//!
//! Needs `KEYSTATION_TEST_POSTGRES_URL` (scripts/with-postgres; each test makes a database
//! of its own with `psql` and drops it), `KEYSTATION_TEST_JOSE_PYTHON` (a Python with PyJWT,
//! jwcrypto and cryptography; scripts/test makes target/jose-venv). Either unset fails the
//! tests, saying so.
#![cfg(feature = "test-authority")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keystation_jose::{Header, PrivateJwk, SshCertType, SshClaims, StepClaims, sign_jwt};
use serde_json::{Value, json};

#[path = "support/authority_harness.rs"]
mod harness;
use harness::*;

/// How many times the race sends its one token.
const RACE_REQUESTS: usize = 200;

// --- 1. the negative suite ---------------------------------------------------------------

/// The suite's state: one authority, its admin key, a request for `HOST`.
struct Suite {
    server: Server,
    admin: Admin,
    csr: String,
    engine: Engine,
}

/// The subject and only name of the suite's certificates.
const HOST: &str = "app.negative.test";

impl Suite {
    fn client(&self) -> &Client {
        &self.server.client
    }

    fn audience(&self, path: &str) -> Vec<String> {
        vec![format!("{}{path}", self.client().url())]
    }

    /// A good token for the suite's request with `jti`.
    fn good(&self, jti: &str) -> String {
        self.admin.sign(&claims(&self.audience("/1.0/sign"), HOST, &[HOST], jti))
    }

    /// Asserts a refusal: `status`, and a message containing each of `needles`.
    fn refused(&self, case: &str, answer: &Answer, status: u16, needles: &[&str]) {
        let message = answer.message();
        assert!(
            answer.status == status && needles.iter().all(|n| message.contains(n)),
            "{:?} {case}: expected {status} naming {needles:?}, got {} {}\n---- server log ----\n{}",
            self.engine,
            answer.status,
            answer.text,
            self.server.log_tail()
        );
        eprintln!("{:?} {case}: {} {message}", self.engine, answer.status);
    }

    /// Asserts a certificate for the suite's request.
    fn issued(&self, case: &str, answer: &Answer) -> String {
        assert!(
            answer.status == 201,
            "{:?} {case}: expected 201, got {} {}\n---- server log ----\n{}",
            self.engine,
            answer.status,
            answer.text,
            self.server.log_tail()
        );
        let crt = answer.json()["crt"].as_str().unwrap().to_owned();
        let cert = keystation_x509::Certificate::from_pem(&crt).unwrap();
        assert_eq!(cert.subject_common_name(), Some(HOST), "{case}");
        crt
    }

    /// `bad` is refused with `status` naming the check, then a good token with the same
    /// `jti` — `good`, when given, else a fresh one — still gets its certificate.
    async fn refused_then_jti_unspent(
        &self,
        case: &str,
        bad: &Value,
        status: u16,
        needles: &[&str],
        jti: &str,
        good: Option<String>,
    ) {
        let answer = self.client().call("POST", "/1.0/sign", Some(bad)).await.unwrap();
        self.refused(case, &answer, status, needles);
        let good = good.unwrap_or_else(|| self.good(jti));
        let answer = self.client().sign(&self.csr, &good).await;
        self.issued(&format!("{case}, then the same jti in a good token"), &answer);
    }

    /// A `/1.0/sign` body with the suite's request and `ott`.
    fn body(&self, ott: &str) -> Value {
        json!({ "csr": self.csr, "ott": ott })
    }
}

async fn negative_suite(engine: Engine) {
    let started = Instant::now();
    let port = free_port();
    let authority = Authority::init(engine, port);
    let mut server = authority.serve(port, "serve");
    server.wait_healthy().await;
    let admin = Admin::fetch(&server.client).await;
    let suite = Suite { server, admin, csr: csr(HOST, &[HOST]), engine };
    let sign_aud = suite.audience("/1.0/sign");

    // Accepted: tokens from keystation-jose, PyJWT and jwcrypto.
    let answer = suite.client().sign(&suite.csr, &suite.good(&new_jti())).await;
    let first = suite.issued("keystation-jose ES256", &answer);
    let py_claims = claims(&sign_aud, HOST, &[HOST], &new_jti());
    let jwcrypto_claims = claims(&sign_aud, HOST, &[HOST], &new_jti());
    let peers = python_tokens(
        &suite.admin,
        &[("pyjwt-es256", &py_claims), ("jwcrypto-es256", &jwcrypto_claims)],
    );
    for (name, token) in ["PyJWT ES256", "jwcrypto ES256"].iter().zip(&peers) {
        let answer = suite.client().sign(&suite.csr, token).await;
        suite.issued(name, &answer);
    }

    // Replay: the PyJWT token again.
    let answer = suite.client().sign(&suite.csr, &peers[0]).await;
    suite.refused("replay of a used token", &answer, 401, &["credential already used"]);

    // --- refused before the signature is verified: a forger with a victim's jti --------

    let pre = |what: &'static str| (what, new_jti());

    // alg none, made here and by PyJWT.
    let (case, jti) = pre("alg none");
    let c = claims(&sign_aud, HOST, &[HOST], &jti);
    let none =
        forged(&json!({ "alg": "none", "typ": "JWT", "kid": suite.admin.kid }), &c, |_| Vec::new());
    suite
        .refused_then_jti_unspent(
            case,
            &suite.body(&none),
            401,
            &["signature does not verify"],
            &jti,
            None,
        )
        .await;

    let (case, jti) = pre("alg none (PyJWT)");
    let c = claims(&sign_aud, HOST, &[HOST], &jti);
    let py_none = python_tokens(&suite.admin, &[("pyjwt-none", &c)]).remove(0);
    suite
        .refused_then_jti_unspent(
            case,
            &suite.body(&py_none),
            401,
            &["signature does not verify"],
            &jti,
            None,
        )
        .await;

    // HS256 keyed with the provisioner's public key: its PEM here, its JWK with PyJWT.
    let (case, jti) = pre("HS256 keyed with the public key's PEM");
    let c = claims(&sign_aud, HOST, &[HOST], &jti);
    let pem = suite.admin.public_pem();
    let hs256 =
        forged(&json!({ "alg": "HS256", "typ": "JWT", "kid": suite.admin.kid }), &c, |input| {
            hmac_sha256(pem.as_bytes(), input)
        });
    suite
        .refused_then_jti_unspent(
            case,
            &suite.body(&hs256),
            401,
            &["signature does not verify"],
            &jti,
            None,
        )
        .await;

    let (case, jti) = pre("HS256 keyed with the public key's PEM (PyJWT)");
    let c = claims(&sign_aud, HOST, &[HOST], &jti);
    let py_hs256 = python_tokens(&suite.admin, &[("pyjwt-hs256-public-pem", &c)]).remove(0);
    suite
        .refused_then_jti_unspent(
            case,
            &suite.body(&py_hs256),
            401,
            &["signature does not verify"],
            &jti,
            None,
        )
        .await;

    // ES256 with the provisioner's kid but another key.
    let (case, jti) = pre("ES256 signed by another key under the provisioner's kid");
    let c = claims(&sign_aud, HOST, &[HOST], &jti);
    let other = PrivateJwk::generate(keystation_jose::Algorithm::Es256).unwrap();
    let wrong_key = sign_jwt(&other, &Header::jwt(Some(suite.admin.kid.clone())), &c).unwrap();
    suite
        .refused_then_jti_unspent(
            case,
            &suite.body(&wrong_key),
            401,
            &["signature does not verify"],
            &jti,
            None,
        )
        .await;

    // An unknown kid (a key the authority does not know, its own thumbprint as kid).
    let (case, jti) = pre("unknown kid");
    let c = claims(&sign_aud, HOST, &[HOST], &jti);
    let other = other.with_kid("no-such-key");
    let unknown = sign_jwt(&other, &Header::jwt(Some("no-such-key".into())), &c).unwrap();
    suite
        .refused_then_jti_unspent(
            case,
            &suite.body(&unknown),
            401,
            &["unknown issuer or key id"],
            &jti,
            None,
        )
        .await;

    // --- refused after the signature verified: the same jti, corrected, succeeds --------

    let jti = new_jti();
    let mut c = claims(&sign_aud, HOST, &[HOST], &jti);
    c.exp = None;
    suite
        .refused_then_jti_unspent(
            "no exp",
            &suite.body(&suite.admin.sign(&c)),
            401,
            &["no expiry"],
            &jti,
            None,
        )
        .await;

    let jti = new_jti();
    let mut c = claims(&sign_aud, HOST, &[HOST], &jti);
    c.exp = Some(now() + 3600);
    suite
        .refused_then_jti_unspent(
            "1 h lifetime",
            &suite.body(&suite.admin.sign(&c)),
            401,
            &["lifetime too long"],
            &jti,
            None,
        )
        .await;

    let jti = new_jti();
    let mut c = claims(&sign_aud, HOST, &[HOST], &jti);
    c.nbf = Some(now() + 600);
    c.iat = Some(now() + 600);
    c.exp = Some(now() + 600 + LIFETIME);
    suite
        .refused_then_jti_unspent(
            "nbf 10 min ahead",
            &suite.body(&suite.admin.sign(&c)),
            401,
            &["not yet valid"],
            &jti,
            None,
        )
        .await;

    let wrong_audiences = [
        (
            "aud of another host",
            format!("https://ca.elsewhere.test:{}/1.0/sign", suite.server.port),
        ),
        (
            "aud of another port",
            format!("https://127.0.0.1:{}/1.0/sign", suite.server.port.wrapping_add(1)),
        ),
        ("aud of the revoke path", format!("{}/1.0/revoke", suite.client().url())),
        ("SSH audience on X.509", format!("{}/1.0/ssh/sign", suite.client().url())),
        ("aud over http", format!("http://127.0.0.1:{}/1.0/sign", suite.server.port)),
    ];
    for (case, aud) in &wrong_audiences {
        let jti = new_jti();
        let c = claims(std::slice::from_ref(aud), HOST, &[HOST], &jti);
        suite
            .refused_then_jti_unspent(
                case,
                &suite.body(&suite.admin.sign(&c)),
                401,
                &["wrong audience"],
                &jti,
                None,
            )
            .await;
    }

    // A sign token presented to /1.0/revoke (its audience is /1.0/sign): refused, unspent.
    let jti = new_jti();
    let good = suite.good(&jti);
    let serial = serial_of(&first);
    let revoke = json!({ "serial": format!("0x{serial}"), "ott": good, "reasonCode": 1 });
    let answer = suite.client().call("POST", "/1.0/revoke", Some(&revoke)).await.unwrap();
    suite.refused("a sign token on /1.0/revoke", &answer, 401, &["wrong audience"]);
    let answer = suite.client().sign(&suite.csr, &good).await;
    suite.issued("the sign token refused on /1.0/revoke, then on /1.0/sign", &answer);

    // An SSH token (step.ssh) with the X.509 audience.
    let jti = new_jti();
    let mut c = claims(&sign_aud, HOST, &[HOST], &jti);
    let mut step = StepClaims::default();
    step.ssh = Some(SshClaims::new(SshCertType::User, HOST, vec!["alice".into()]));
    c.step = Some(step);
    suite
        .refused_then_jti_unspent(
            "SSH token (step.ssh) on X.509",
            &suite.body(&suite.admin.sign(&c)),
            403,
            &["violates provisioner policy"],
            &jti,
            None,
        )
        .await;

    // CSR names beyond the token's sans: the very same token then succeeds with the right CSR.
    let jti = new_jti();
    let good = suite.good(&jti);
    let wide = csr(HOST, &[HOST, "evil.negative.test"]);
    let body = json!({ "csr": wide, "ott": good });
    suite
        .refused_then_jti_unspent(
            "CSR SAN not in the token's sans",
            &body,
            403,
            &["evil.negative.test", "does not allow"],
            &jti,
            Some(good.clone()),
        )
        .await;
    let jti = new_jti();
    let good = suite.good(&jti);
    let other_cn = csr("other.negative.test", &[HOST]);
    let body = json!({ "csr": other_cn, "ott": good });
    suite
        .refused_then_jti_unspent(
            "CSR common name not in the token",
            &body,
            403,
            &["other.negative.test"],
            &jti,
            Some(good.clone()),
        )
        .await;
    let jti = new_jti();
    let good = suite.good(&jti);
    let ip = csr(HOST, &[HOST, "10.0.0.1"]);
    let body = json!({ "csr": ip, "ott": good });
    suite
        .refused_then_jti_unspent(
            "CSR IP SAN not in the token",
            &body,
            403,
            &["10.0.0.1"],
            &jti,
            Some(good.clone()),
        )
        .await;

    // Each refusal is a log line with its precise reason (never the token).
    let log = suite.server.log();
    for reason in [
        "alg \\\"none\\\"",
        "symmetric algorithm HS256",
        "the token has no exp",
        "the token lives 3600 s",
        "is after now",
        "does not name",
        "names no known provisioner",
        "CSR names a SAN the token does not allow",
        "token replayed",
    ] {
        assert!(
            log.contains(reason) || log.contains(&reason.replace("\\\"", "\"")),
            "{engine:?}: the server log has no line with {reason:?}:\n{log}"
        );
    }
    assert!(!log.contains(&suite.good(&new_jti())[..40]), "a token leaked into the log");
    eprintln!("{engine:?} negative suite: {:.1} s", started.elapsed().as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn negative_suite_sqlite() {
    negative_suite(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn negative_suite_postgres() {
    negative_suite(Engine::Postgres).await;
}

// --- 2. the replay race ------------------------------------------------------------------

/// Two replicas (one state directory, one store), one token sent [`RACE_REQUESTS`] times at
/// once, half to each: one certificate, every other answer a replay refusal.
async fn replay_race(engine: Engine) {
    let started = Instant::now();
    let ports = [free_port(), free_port()];
    let authority = Authority::init(engine, ports[0]);
    let mut replicas =
        [authority.serve(ports[0], "replica-1"), authority.serve(ports[1], "replica-2")];
    for replica in &mut replicas {
        replica.wait_healthy().await;
    }
    let admin = Admin::fetch(&replicas[0].client).await;
    let jti = new_jti();
    let subject = format!("race-{}.negative.test", &jti[..12]);
    // One token good at both replicas: its audiences name both.
    let audiences: Vec<String> =
        replicas.iter().map(|r| format!("{}/1.0/sign", r.client.url())).collect();
    let token = admin.sign(&claims(&audiences, &subject, &[&subject], &jti));
    let body = json!({ "csr": csr(&subject, &[&subject]), "ott": token });

    // Every connection is open (TLS done) before the first request leaves.
    let mut connections = Vec::with_capacity(RACE_REQUESTS);
    for i in 0..RACE_REQUESTS {
        connections.push((i % 2, replicas[i % 2].client.connect().await.unwrap()));
    }
    let body = Arc::new(body);
    let tasks: Vec<_> = connections
        .into_iter()
        .map(|(replica, mut connection)| {
            let body = body.clone();
            tokio::spawn(async move {
                (replica, connection.send("POST", "/1.0/sign", Some(&*body)).await)
            })
        })
        .collect();
    let mut created = Vec::new();
    let mut replayed = [0usize; 2];
    let mut other = Vec::new();
    for task in tasks {
        let (replica, answer) = task.await.unwrap();
        let answer = answer.unwrap_or_else(|e| panic!("replica {}: {e}", replica + 1));
        match answer.status {
            201 => created.push((replica, answer.json()["crt"].as_str().unwrap().to_owned())),
            401 if answer.message().contains("credential already used") => replayed[replica] += 1,
            _ => other.push((replica, answer)),
        }
    }
    // The replicas' logs but for the (199) replay lines.
    let logs = || {
        let quiet = |log: String| {
            log.lines().filter(|l| !l.contains("token replayed")).collect::<Vec<_>>().join("\n")
        };
        format!(
            "---- replica 1 ----\n{}\n---- replica 2 ----\n{}",
            quiet(replicas[0].log()),
            quiet(replicas[1].log())
        )
    };
    assert!(other.is_empty(), "{engine:?}: unexpected answers: {other:?}\n{}", logs());
    assert_eq!(
        created.len(),
        1,
        "{engine:?}: {} certificates for one token\n{}",
        created.len(),
        logs()
    );
    assert_eq!(replayed[0] + replayed[1], RACE_REQUESTS - 1);
    let winner = created[0].0;
    assert_eq!(replayed[winner] + 1, RACE_REQUESTS / 2, "each replica answered half");

    // The store holds exactly that one certificate for the subject.
    let store = authority.store().await;
    let records = store.certificates_for_subject(&subject).await.unwrap();
    assert_eq!(records.len(), 1, "{engine:?}: {records:?}");
    assert_eq!(records[0].serial, serial_of(&created[0].1).trim_start_matches('0'));
    store.close().await;
    eprintln!(
        "{engine:?} replay race: 1 × 201 from replica {}, {} + {} × 401 (already used), {:.1} s",
        winner + 1,
        replayed[0],
        replayed[1],
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replay_race_two_replicas_sqlite() {
    replay_race(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replay_race_two_replicas_postgres() {
    replay_race(Engine::Postgres).await;
}

// --- 3. kill -9 and restart under load ---------------------------------------------------

/// Sign requests from a few clients in a loop, fresh tokens each; the server is killed
/// with SIGKILL mid-load and restarted; every certificate a client received is in the store.
async fn kill_and_restart(engine: Engine) {
    const WORKERS: usize = 4;
    const BEFORE_KILL: usize = 30;
    const AFTER_RESTART: usize = 30;
    let started = Instant::now();
    let port = free_port();
    let authority = Authority::init(engine, port);
    let mut server = authority.serve(port, "serve-1");
    server.wait_healthy().await;
    let admin = Arc::new(Admin::fetch(&server.client).await);
    let client = server.client.clone();
    let audience = vec![format!("{}/1.0/sign", client.url())];
    let request = Arc::new(csr(HOST, &[HOST]));

    let issued = Arc::new(Mutex::new(Vec::<String>::new()));
    let failures = Arc::new(AtomicUsize::new(0));
    let interrupted = Arc::new(AtomicUsize::new(0));
    let refusals = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (admin, client, audience, request) =
                (admin.clone(), client.clone(), audience.clone(), request.clone());
            let (issued, failures, interrupted, refusals, stop) = (
                issued.clone(),
                failures.clone(),
                interrupted.clone(),
                refusals.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let token = admin.sign(&claims(&audience, HOST, &[HOST], &new_jti()));
                    let body = json!({ "csr": request.as_str(), "ott": token });
                    match client.call("POST", "/1.0/sign", Some(&body)).await {
                        Ok(a) if a.status == 201 => {
                            issued
                                .lock()
                                .unwrap()
                                .push(a.json()["crt"].as_str().unwrap().to_owned());
                        }
                        Ok(a) => refusals.lock().unwrap().push(format!("{} {}", a.status, a.text)),
                        Err(e) => {
                            // The server is down (or died mid-request): try again shortly.
                            failures.fetch_add(1, Ordering::Relaxed);
                            if !e.starts_with("connect:") {
                                interrupted.fetch_add(1, Ordering::Relaxed);
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
            })
        })
        .collect();

    let wait_for = |count: usize| {
        let issued = issued.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(300);
            while issued.lock().unwrap().len() < count {
                assert!(Instant::now() < deadline, "{count} certificates not reached in time");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    wait_for(BEFORE_KILL).await;
    server.kill9();
    let at_kill = issued.lock().unwrap().len();
    let first_log = server.log();
    drop(server);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut server = authority.serve(port, "serve-2");
    server.wait_healthy().await;
    wait_for(at_kill + AFTER_RESTART).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }

    let refusals = refusals.lock().unwrap().clone();
    assert!(refusals.is_empty(), "{engine:?}: good requests refused: {refusals:#?}");
    let failures = failures.load(Ordering::Relaxed);
    let interrupted = interrupted.load(Ordering::Relaxed);
    assert!(
        interrupted > 0,
        "{engine:?}: no request was cut off by the kill (of {failures} failed attempts)"
    );

    // Every certificate a client holds is recorded, with the same PEM.
    let issued = issued.lock().unwrap().clone();
    let store = authority.store().await;
    for crt in &issued {
        let serial = serial_of(crt);
        let record = store.certificate(&serial).await.unwrap().unwrap_or_else(|| {
            panic!(
                "{engine:?}: certificate {serial} was handed out but is not in the store\n\
                 ---- before the kill ----\n{first_log}\n---- after ----\n{}",
                server.log_tail()
            )
        });
        assert_eq!(record.pem.trim(), crt.trim(), "{engine:?}: {serial}");
        assert_eq!(record.provisioner, PROVISIONER);
    }
    store.close().await;
    eprintln!(
        "{engine:?} kill -9 mid-load: {} certificates ({at_kill} before the kill), requests \
         cut off by the kill: {interrupted}, failed attempts in all: {failures}; every \
         certificate recorded; {:.1} s",
        issued.len(),
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_and_restart_mid_load_sqlite() {
    kill_and_restart(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_and_restart_mid_load_postgres() {
    kill_and_restart(Engine::Postgres).await;
}

// --- 4. attestation refusals -------------------------------------------------------------
//
// tests/authority_enroll.rs covers a wrong touch policy end to end with the software card;
// here, hand-made Yubico-style chains cover what a card cannot be made to present: an
// expired device (F9) certificate and firmware below the provisioner's minimum.

/// The card serial of the hand-made attestations.
const CARD_SERIAL: u32 = 7_654_321;

/// Yubico's arc `1.3.6.1.4.1.41482.3.<last>`.
fn yubico_oid(last: u64) -> Vec<u64> {
    vec![1, 3, 6, 1, 4, 1, 41482, 3, last]
}

/// `n` as a DER INTEGER.
fn der_integer(n: u32) -> Vec<u8> {
    let mut bytes = n.to_be_bytes().to_vec();
    while bytes.len() > 1 && bytes[0] == 0 && bytes[1] & 0x80 == 0 {
        bytes.remove(0);
    }
    if bytes[0] & 0x80 != 0 {
        bytes.insert(0, 0);
    }
    let mut der = vec![0x02, bytes.len() as u8];
    der.extend(bytes);
    der
}

fn ca_params(cn: &str) -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, cn);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    params
}

/// An attestation root standing in for Yubico's.
struct AttestationRoot {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    pem: String,
}

impl AttestationRoot {
    fn new() -> Self {
        let params = ca_params("Negative Test PIV Attestation Root");
        let key = rcgen::KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Self { params, key, pem }
    }

    /// A `/1.0/sign-attested` body for `provisioner`: a key "attested" in slot 9a of card
    /// [`CARD_SERIAL`] with `firmware`, PIN once and touch always, its device (F9)
    /// certificate expired when `device_expired`; the CSR signed by that key.
    fn attested(&self, provisioner: &str, firmware: [u8; 3], device_expired: bool) -> Value {
        let root = rcgen::Issuer::from_params(&self.params, &self.key);
        let device_key = rcgen::KeyPair::generate().unwrap();
        let mut device = ca_params("Yubico PIV Attestation");
        if device_expired {
            device.not_before = rcgen::date_time_ymd(2020, 1, 1);
            device.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let device_pem = device.signed_by(&device_key, &root).unwrap().pem();
        let device_issuer = rcgen::Issuer::from_params(&device, &device_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let mut slot = rcgen::CertificateParams::default();
        slot.distinguished_name = rcgen::DistinguishedName::new();
        slot.distinguished_name.push(rcgen::DnType::CommonName, "YubiKey PIV Attestation 9a");
        slot.custom_extensions = vec![
            rcgen::CustomExtension::from_oid_content(&yubico_oid(3), firmware.to_vec()),
            rcgen::CustomExtension::from_oid_content(&yubico_oid(7), der_integer(CARD_SERIAL)),
            // PIN policy once (2), touch policy always (2).
            rcgen::CustomExtension::from_oid_content(&yubico_oid(8), vec![2, 2]),
        ];
        let slot_pem = slot.signed_by(&key, &device_issuer).unwrap().pem();
        let mut request = rcgen::CertificateParams::default();
        request.distinguished_name = rcgen::DistinguishedName::new();
        request.distinguished_name.push(rcgen::DnType::CommonName, CARD_SERIAL.to_string());
        let csr = request.serialize_request(&key).unwrap().pem().unwrap();
        json!({
            "provisioner": provisioner,
            "csr": csr,
            "attestation": { "slotCertificate": slot_pem, "intermediate": device_pem },
        })
    }
}

impl Authority {
    /// `keystation authority provisioner add NAME ARGS…` (before `serve`).
    fn add_provisioner(&self, name: &str, args: &[&str]) {
        let mut command = keystation(self.dir.path());
        command
            .args(["authority", "provisioner", "add", name, "--dir"])
            .arg(&self.state)
            .args(args);
        if let Some(url) = &self.database.url {
            command.args(["--database", url]);
        }
        let output = command.output().expect("run keystation authority provisioner add");
        assert!(
            output.status.success(),
            "provisioner add {name} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

async fn attestation_refusals(engine: Engine) {
    let started = Instant::now();
    let port = free_port();
    let authority = Authority::init(engine, port);
    let root = AttestationRoot::new();
    let root_file = authority.dir.path().join("attestation-root.pem");
    std::fs::write(&root_file, &root.pem).unwrap();
    let root_arg = root_file.to_str().unwrap();
    let kind = ["--type", "yubikey-attestation", "--root", root_arg];
    authority.add_provisioner("yk-any", &kind);
    authority.add_provisioner("yk-fw", &[&kind[..], &["--min-firmware", "5.2.3"]].concat());
    let mut server = authority.serve(port, "serve");
    server.wait_healthy().await;
    let client = server.client.clone();
    let post = |body: Value| {
        let client = client.clone();
        async move { client.call("POST", "/1.0/sign-attested", Some(&body)).await.unwrap() }
    };
    let store = authority.store().await;
    let subject = CARD_SERIAL.to_string();
    let recorded = || async { store.certificates_for_subject(&subject).await.unwrap().len() };

    let refusals = [
        (
            "firmware 5.1.0 below the minimum 5.2.3",
            root.attested("yk-fw", [5, 1, 0], false),
            403,
            "violates provisioner policy",
        ),
        (
            "expired device (F9) certificate",
            root.attested("yk-any", [5, 7, 1], true),
            401,
            "credential expired",
        ),
    ];
    for (case, body, status, needle) in &refusals {
        let answer = post(body.clone()).await;
        assert!(
            answer.status == *status && answer.message().contains(needle),
            "{engine:?} {case}: expected {status} naming {needle:?}, got {} {}\n{}",
            answer.status,
            answer.text,
            server.log_tail()
        );
        eprintln!("{engine:?} attestation, {case}: {} {}", answer.status, answer.message());
    }
    assert_eq!(recorded().await, 0, "{engine:?}: a refused attestation left a certificate");

    // The controls: the same card's chain is good but for what was refused.
    let answer = post(root.attested("yk-any", [5, 1, 0], false)).await;
    assert_eq!(answer.status, 201, "{engine:?} 5.1.0 without a minimum: {}", answer.text);
    let answer = post(root.attested("yk-fw", [5, 7, 1], false)).await;
    assert_eq!(answer.status, 201, "{engine:?} 5.7.1 over the minimum: {}", answer.text);
    assert_eq!(recorded().await, 2, "{engine:?}: the two accepted attestations");
    store.close().await;

    let log = server.log();
    for reason in ["firmware 5.1.0 is below the minimum 5.2.3", "is not valid at"] {
        assert!(log.contains(reason), "{engine:?}: no log line with {reason:?}:\n{log}");
    }
    eprintln!("{engine:?} attestation refusals: {:.1} s", started.elapsed().as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attestation_refusals_sqlite() {
    attestation_refusals(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attestation_refusals_postgres() {
    attestation_refusals(Engine::Postgres).await;
}
