//! The client against a loopback ACME server (tests/support/acme_mock.rs) that verifies
//! every JWS and nonce: a whole device-attest-01 order with polls and `Retry-After`, the
//! `badNonce` retry, refusals and failures with their problem documents, bounded polls,
//! and the things refused before anything is sent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/acme_mock.rs"]
mod acme_mock;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use acme_mock::{MockAcme, Refusal, Script};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ciborium::Value as Cbor;
use keystation_acme_client::{
    AcmeClient, BlockingAcmeClient, Challenge, ClientOptions, CoseAlgorithm, Error, Identifier,
    Status,
};
use serde_json::Value;

const SERIAL: &str = "12345678";
/// What the test client sends as its CSR; the mock's issuer checks it arrived whole.
const CSR: &[u8] = b"\x30\x03\x02\x01\x00 not really a CSR";

fn map_get<'a>(map: &'a Cbor, key: &str) -> Option<&'a Cbor> {
    map.as_map()?.iter().find(|(k, _)| k.as_text() == Some(key)).map(|(_, v)| v)
}

/// Checks step's attestation object the way step-ca reads it: `fmt` `step`, `alg` -7,
/// `sig` a CBOR byte string inside a byte string — here the key authorization itself,
/// which proves the client computed the one the server expects — and the `x5c` sent.
fn check_attestation(
    _value: &str,
    payload: &Value,
    key_authorization: &str,
) -> Result<(), Refusal> {
    let refuse = |detail: &str| Err(("badAttestationStatement".to_owned(), detail.to_owned()));
    let Some(object) = payload["attObj"].as_str().and_then(|a| URL_SAFE_NO_PAD.decode(a).ok())
    else {
        return refuse("attObj is not base64url");
    };
    let Ok(object) = ciborium::from_reader::<Cbor, _>(object.as_slice()) else {
        return refuse("attObj is not CBOR");
    };
    if map_get(&object, "fmt").and_then(Cbor::as_text) != Some("step") {
        return refuse("fmt is not step");
    }
    let Some(statement) = map_get(&object, "attStmt") else { return refuse("no attStmt") };
    let alg = map_get(statement, "alg").and_then(Cbor::as_integer).map(i128::from);
    if alg != Some(-7) {
        return refuse("alg is not -7");
    }
    let sig = map_get(statement, "sig").and_then(Cbor::as_bytes);
    let inner = sig.and_then(|s| ciborium::from_reader::<Cbor, _>(s.as_slice()).ok());
    if inner.as_ref().and_then(Cbor::as_bytes).map(Vec::as_slice)
        != Some(key_authorization.as_bytes())
    {
        return refuse("failed to validate signature");
    }
    let x5c: Option<Vec<&[u8]>> = map_get(statement, "x5c")
        .and_then(Cbor::as_array)
        .and_then(|a| a.iter().map(|c| c.as_bytes().map(Vec::as_slice)).collect());
    if x5c != Some(vec![b"slot certificate".as_slice(), b"f9 certificate".as_slice()]) {
        return refuse("x5c is not valid");
    }
    Ok(())
}

/// Two PEM certificates from rcgen: the "issued" one and its issuer.
fn chain_pem() -> String {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::default();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec![]).unwrap().signed_by(&key, &issuer).unwrap();
    format!("{}{}", leaf.pem(), ca_cert.pem())
}

fn script() -> Script {
    let chain = chain_pem();
    Script::new(
        Box::new(check_attestation),
        Box::new(move |value, csr| {
            assert_eq!(value, SERIAL);
            if csr != CSR {
                return Err(("badCSR".into(), "not the CSR sent".into()));
            }
            Ok(chain.clone())
        }),
    )
}

fn fast() -> ClientOptions {
    ClientOptions::default().with_polling(Duration::from_millis(10), Duration::from_secs(20))
}

/// The device-attest-01 response whose "signature" is the key authorization itself.
async fn respond(client: &AcmeClient, challenge: &Challenge) -> Challenge {
    let key_authorization = client.key_authorization(challenge.token.as_deref().unwrap()).unwrap();
    client
        .respond_device_attest(
            &challenge.url,
            CoseAlgorithm::Es256,
            key_authorization.as_bytes(),
            &[b"slot certificate".to_vec(), b"f9 certificate".to_vec()],
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_order_honours_retry_after_and_never_reuses_a_nonce() {
    let mut script = script();
    script.authz_pending_polls = 1;
    script.order_processing_polls = 1;
    script.retry_after = Some("1".into());
    let server = MockAcme::start(script);
    let mut client =
        AcmeClient::connect_with(&server.directory_url, &server.root_pem, fast()).await.unwrap();
    assert_eq!(client.directory().new_order, server.url("/new-order"));

    let account = client.new_account(&["mailto:ops@example.org".into()], true).await.unwrap();
    assert_eq!(account.url, server.url("/acct/0"));
    assert_eq!(account.status, Status::Valid);
    assert_eq!(account.contact, ["mailto:ops@example.org"]);

    let order = client.new_order(&[Identifier::permanent_identifier(SERIAL)]).await.unwrap();
    assert_eq!(order.url, server.url("/order/1"));
    assert_eq!(order.status, Status::Pending);
    let authorization = client.authorization(&order.authorizations[0]).await.unwrap();
    assert_eq!(authorization.identifier, Identifier::permanent_identifier(SERIAL));
    let challenge = authorization.challenge(Challenge::DEVICE_ATTEST_01).unwrap().clone();
    let answered = respond(&client, &challenge).await;
    assert_eq!(answered.status, Status::Valid, "{answered:?}");

    let authorization = client.poll_authorization(&authorization.url).await.unwrap();
    assert_eq!(authorization.status, Status::Valid);
    let order = client.poll_order(&order.url).await.unwrap();
    assert_eq!(order.status, Status::Ready);
    let chain = client.finalize_and_download(&order, CSR).await.unwrap();
    assert_eq!(chain.certificates.len(), 2);
    assert_eq!(chain.leaf(), chain.certificates[0]);
    assert!(chain.pem.starts_with("-----BEGIN CERTIFICATE-----"), "{}", chain.pem);

    let seen = server.seen();
    // One newNonce: every later request used the nonce of the answer before.
    assert_eq!(seen.iter().filter(|s| s.method == "HEAD").count(), 1, "{seen:#?}");
    let nonces: Vec<&str> = seen.iter().filter_map(|s| s.nonce.as_deref()).collect();
    assert_eq!(nonces.iter().collect::<HashSet<_>>().len(), nonces.len(), "a nonce was reused");
    assert_eq!(server.bad_nonce_refusals(), 0);
    // Retry-After: 1 was honoured between polls (the client's own interval is 10 ms).
    for path in ["/authz/1", "/order/1"] {
        let polls: Vec<Instant> = seen.iter().filter(|s| s.path == path).map(|s| s.at).collect();
        assert!(polls.len() >= 2, "{path}: {polls:?}");
        let gap = polls[polls.len() - 1] - polls[polls.len() - 2];
        assert!(gap >= Duration::from_millis(900), "{path} polled again after {gap:?}");
    }
}

#[test]
fn a_bad_nonce_is_retried_once_with_a_fresh_nonce_by_the_blocking_client() {
    let mut script = script();
    script.bad_nonce_once_on = Some("/new-order".into());
    let server = MockAcme::start(script);
    let mut client =
        BlockingAcmeClient::connect_with(&server.directory_url, &server.root_pem, fast()).unwrap();
    client.new_account(&[], true).unwrap();
    let order = client.new_order(&[Identifier::permanent_identifier(SERIAL)]).unwrap();
    assert_eq!(server.bad_nonce_refusals(), 1);
    let tries: Vec<_> = server.seen().into_iter().filter(|s| s.path == "/new-order").collect();
    assert_eq!(tries.len(), 2);
    assert_ne!(tries[0].nonce, tries[1].nonce);

    let authorization = client.authorization(&order.authorizations[0]).unwrap();
    let challenge = authorization.challenge(Challenge::DEVICE_ATTEST_01).unwrap();
    let key_authorization = client.key_authorization(challenge.token.as_deref().unwrap()).unwrap();
    client
        .respond_device_attest(
            &challenge.url,
            CoseAlgorithm::Es256,
            key_authorization.as_bytes(),
            &[b"slot certificate".to_vec(), b"f9 certificate".to_vec()],
        )
        .unwrap();
    client.poll_authorization(&authorization.url).unwrap();
    let order = client.poll_order(&order.url).unwrap();
    let chain = client.finalize_and_download(&order, CSR).unwrap();
    assert_eq!(chain.certificates.len(), 2);
}

#[tokio::test]
async fn a_refusal_carries_the_servers_problem_document() {
    let mut script = script();
    script.rejected_identifiers = vec!["666".into()];
    let server = MockAcme::start(script);
    let mut client =
        AcmeClient::connect_with(&server.directory_url, &server.root_pem, fast()).await.unwrap();
    client.new_account(&[], true).await.unwrap();
    let err = client.new_order(&[Identifier::permanent_identifier("666")]).await.unwrap_err();
    assert_eq!(err.status(), Some(403), "{err:?}");
    let problem = err.problem().unwrap();
    assert_eq!(problem.acme_error(), Some("rejectedIdentifier"));
    assert_eq!(problem.detail.as_deref(), Some("will not issue for 666"));
    let text = err.to_string();
    assert!(text.contains("answered 403: will not issue for 666"), "{text}");
    assert!(text.contains("urn:ietf:params:acme:error:rejectedIdentifier"), "{text}");
}

#[tokio::test]
async fn a_failed_challenge_fails_the_authorization_with_its_problem() {
    let mut script = script();
    script.validate = Box::new(|_, _, _| {
        Err(("badAttestationStatement".into(), "x5c is not valid: unknown authority".into()))
    });
    let server = MockAcme::start(script);
    let mut client =
        AcmeClient::connect_with(&server.directory_url, &server.root_pem, fast()).await.unwrap();
    client.new_account(&[], true).await.unwrap();
    let order = client.new_order(&[Identifier::permanent_identifier(SERIAL)]).await.unwrap();
    let authorization = client.authorization(&order.authorizations[0]).await.unwrap();
    let challenge = authorization.challenge(Challenge::DEVICE_ATTEST_01).unwrap();
    let answered = respond(&client, challenge).await;
    assert_eq!(answered.status, Status::Invalid);
    let err = client.poll_authorization(&authorization.url).await.unwrap_err();
    let Error::Failed { what, status, problem: Some(problem), .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!((*what, *status), ("authorization", Status::Invalid));
    assert_eq!(problem.acme_error(), Some("badAttestationStatement"));
    let text = err.to_string();
    assert!(text.contains("is invalid: x5c is not valid: unknown authority"), "{text}");
    // The order is invalid too, with the same problem.
    let err = client.poll_order(&order.url).await.unwrap_err();
    assert!(
        matches!(&err, Error::Failed { what: "order", status: Status::Invalid, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn polls_stop_at_their_limit_and_never_busy_loop() {
    let mut script = script();
    script.authz_pending_polls = u32::MAX;
    script.retry_after = Some("0".into());
    let server = MockAcme::start(script);
    let options = ClientOptions::default().with_polling(Duration::ZERO, Duration::from_millis(500));
    let mut client =
        AcmeClient::connect_with(&server.directory_url, &server.root_pem, options).await.unwrap();
    client.new_account(&[], true).await.unwrap();
    let order = client.new_order(&[Identifier::permanent_identifier(SERIAL)]).await.unwrap();
    let authorization = client.authorization(&order.authorizations[0]).await.unwrap();
    respond(&client, authorization.challenge(Challenge::DEVICE_ATTEST_01).unwrap()).await;
    let started = Instant::now();
    let err = client.poll_authorization(&authorization.url).await.unwrap_err();
    let elapsed = started.elapsed();
    let Error::PollTimeout { status, .. } = &err else { panic!("{err:?}") };
    assert_eq!(*status, Status::Pending);
    assert!(
        elapsed >= Duration::from_millis(500) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    // Retry-After 0 and a zero interval still wait MIN_POLL_INTERVAL (100 ms) between
    // polls: 500 ms allow about six, the first authorization read included.
    let polls = server.seen().iter().filter(|s| s.path == "/authz/1").count();
    assert!((3..=9).contains(&polls), "{polls} polls in {elapsed:?}");
}

#[tokio::test]
async fn what_cannot_work_is_refused_before_any_request() {
    let mut script = script();
    script.external_account_required = true;
    let server = MockAcme::start(script);
    let mut client =
        AcmeClient::connect_with(&server.directory_url, &server.root_pem, fast()).await.unwrap();
    // No account yet.
    let err = client.new_order(&[Identifier::permanent_identifier(SERIAL)]).await.unwrap_err();
    assert!(matches!(err, Error::NoAccount), "{err:?}");
    assert!(matches!(client.key_authorization("t"), Err(Error::NoAccount)));
    // External account binding is required and not supported.
    let err = client.new_account(&[], true).await.unwrap_err();
    assert!(matches!(err, Error::ExternalAccountRequired { .. }), "{err:?}");
    assert!(server.seen().iter().all(|s| s.method == "GET"), "{:#?}", server.seen());

    // A root that did not issue the server's certificate.
    let other = rcgen::CertificateParams::default()
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap()
        .pem();
    let err = AcmeClient::connect(&server.directory_url, &other).await.unwrap_err();
    assert!(matches!(err, Error::Handshake { .. }), "{err:?}");
    // No root at all, and plain HTTP.
    let err = AcmeClient::connect(&server.directory_url, "no PEM here").await.unwrap_err();
    assert!(matches!(err, Error::BadRoot(_)), "{err:?}");
    let plain = server.directory_url.replace("https://", "http://");
    let err = AcmeClient::connect(&plain, &server.root_pem).await.unwrap_err();
    assert!(matches!(err, Error::BadUrl { .. }), "{err:?}");
    // A directory URL that is not one: the status, and its reason for an empty body.
    let err = AcmeClient::connect(&server.url("/nothing"), &server.root_pem).await.unwrap_err();
    assert_eq!(err.status(), Some(405), "{err:?}");
    assert_eq!(err.problem().unwrap().detail.as_deref(), Some("Method Not Allowed"));
}
