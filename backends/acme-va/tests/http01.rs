//! http-01 (RFC 8555 §8.3) against loopback HTTP servers, names resolved by a loopback DNS
//! server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::*;
use keystation_acme_va::{AddressPolicy, FailureKind, Identifier};

fn challenge_path() -> String {
    format!("/.well-known/acme-challenge/{TOKEN}")
}

fn a_test() -> Identifier {
    Identifier::Dns("a.test".into())
}

#[tokio::test]
async fn the_right_key_authorization_passes() {
    let dns = dns_server(&loopback_zone()).await;
    let server = HttpServer::start(|path| {
        if path == challenge_path() {
            response(200, &[], format!("  {KEY_AUTHORIZATION}\r\n").as_bytes())
        } else {
            response(404, &[], b"")
        }
    })
    .await;
    let va = validator(dns, server.port, 1);
    va.http01(&Identifier::Dns("A.Test.".into()), TOKEN, KEY_AUTHORIZATION).await.unwrap();
    assert_eq!(server.seen(), vec![Seen { path: challenge_path(), host: "a.test".into() }]);
}

#[tokio::test]
async fn an_ip_identifier_is_fetched_at_its_address() {
    let dns = dns_server(&[]).await;
    let server = HttpServer::start(|_| response(200, &[], KEY_AUTHORIZATION.as_bytes())).await;
    let va = validator(dns, server.port, 1);
    va.http01(&Identifier::Ip(localhost()), TOKEN, KEY_AUTHORIZATION).await.unwrap();
    assert_eq!(server.seen()[0].host, "127.0.0.1");
}

#[tokio::test]
async fn a_wrong_body_is_an_incorrect_response_quoted() {
    let dns = dns_server(&loopback_zone()).await;
    let server = HttpServer::start(|_| response(200, &[], b"someone.else\x01")).await;
    let va = validator(dns, server.port, 1);
    let failure = va.http01(&a_test(), TOKEN, KEY_AUTHORIZATION).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::IncorrectResponse, "{failure:?}");
    assert!(failure.detail.contains(r#""someone.else\x01""#), "{}", failure.detail);
    assert!(
        failure.detail.contains("http://a.test/.well-known/acme-challenge/"),
        "{}",
        failure.detail
    );
}

#[tokio::test]
async fn an_oversized_body_fails() {
    let dns = dns_server(&loopback_zone()).await;
    let big = format!("{KEY_AUTHORIZATION}{}", " ".repeat(20_000));
    let server = HttpServer::start(move |_| response(200, &[], big.as_bytes())).await;
    let va = validator(dns, server.port, 1);
    let failure = va.http01(&a_test(), TOKEN, KEY_AUTHORIZATION).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::IncorrectResponse, "{failure:?}");
    assert!(failure.detail.contains("longer than 8192 bytes"), "{}", failure.detail);
}

#[tokio::test]
async fn a_404_is_unauthorized() {
    let dns = dns_server(&loopback_zone()).await;
    let server = HttpServer::start(|_| response(404, &[], b"not here")).await;
    let va = validator(dns, server.port, 1);
    let failure = va.http01(&a_test(), TOKEN, KEY_AUTHORIZATION).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::Unauthorized, "{failure:?}");
    assert!(
        failure.detail.contains("answered 404") && failure.detail.contains("not here"),
        "{}",
        failure.detail
    );
}

#[tokio::test]
async fn a_404_with_an_oversized_body_is_still_unauthorized() {
    let dns = dns_server(&loopback_zone()).await;
    let server = HttpServer::start(|_| response(404, &[], &[b'x'; 20_000])).await;
    let va = validator(dns, server.port, 1);
    let failure = va.http01(&a_test(), TOKEN, KEY_AUTHORIZATION).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::Unauthorized, "{failure:?}");
    assert!(failure.detail.contains("answered 404"), "{}", failure.detail);
}

#[tokio::test]
async fn refused_and_unreachable_addresses_are_skipped_for_the_next() {
    // 10.0.0.1 is refused by the policy; nothing listens on 127.0.0.2; 127.0.0.1 answers.
    let dns = dns_server(&[
        ("multi.test", Rec::A(Ipv4Addr::new(10, 0, 0, 1))),
        ("multi.test", Rec::A(Ipv4Addr::new(127, 0, 0, 2))),
        ("multi.test", Rec::A(Ipv4Addr::LOCALHOST)),
    ])
    .await;
    let server = HttpServer::start(|_| response(200, &[], KEY_AUTHORIZATION.as_bytes())).await;
    let va = validator(dns, server.port, 1);
    va.http01(&Identifier::Dns("multi.test".into()), TOKEN, KEY_AUTHORIZATION).await.unwrap();
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn a_redirect_chain_is_followed_with_each_hop_resolved() {
    let dns = dns_server(&loopback_zone()).await;
    let port = std::sync::Arc::new(std::sync::OnceLock::new());
    let port_in_server = port.clone();
    let server = HttpServer::start(move |path| {
        let port: &u16 = port_in_server.get().unwrap();
        match path {
            "/step1" => {
                response(301, &[("Location", &format!("http://b.test:{port}/step2?x=1"))], b"")
            }
            "/step2?x=1" => response(307, &[("Location", "step3")], b""),
            "/step3" => response(200, &[], KEY_AUTHORIZATION.as_bytes()),
            _ => response(302, &[("Location", "/step1")], b""),
        }
    })
    .await;
    port.set(server.port).unwrap();
    let va = validator(dns, server.port, 1);
    va.http01(&a_test(), TOKEN, KEY_AUTHORIZATION).await.unwrap();
    let hops: Vec<(String, String)> = server.seen().into_iter().map(|s| (s.path, s.host)).collect();
    let b_host = format!("b.test:{}", server.port);
    assert_eq!(
        hops,
        vec![
            (challenge_path(), "a.test".to_owned()),
            ("/step1".to_owned(), "a.test".to_owned()),
            ("/step2?x=1".to_owned(), b_host.clone()),
            ("/step3".to_owned(), b_host),
        ]
    );
}

#[tokio::test]
async fn an_https_redirect_is_followed_without_verifying_the_certificate() {
    let dns = dns_server(&loopback_zone()).await;
    let key = rcgen::KeyPair::generate().unwrap();
    let certificate = rcgen::CertificateParams::new(vec!["someone-else.test".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let body: &'static [u8] = Box::leak(KEY_AUTHORIZATION.as_bytes().to_vec().into_boxed_slice());
    let https = TlsServer::start(
        certificate.der().to_vec(),
        key.serialize_der(),
        &[b"http/1.1"],
        rustls::DEFAULT_VERSIONS,
        Some(body),
    )
    .await;
    let location = format!("https://b.test:{}/elsewhere", https.port);
    let server = HttpServer::start(move |_| response(302, &[("Location", &location)], b"")).await;
    let va = validator(dns, server.port, https.port);
    va.http01(&a_test(), TOKEN, KEY_AUTHORIZATION).await.unwrap();
    assert_eq!(*https.sni.lock().unwrap(), vec![Some("b.test".to_owned())]);
}

#[tokio::test]
async fn a_redirect_loop_stops_after_max_redirects() {
    let dns = dns_server(&loopback_zone()).await;
    let server = HttpServer::start(|_| response(302, &[("Location", "/loop")], b"")).await;
    let va = validator_with(dns, server.port, 1, |c| c.max_redirects = 3);
    let failure = va.http01(&a_test(), TOKEN, KEY_AUTHORIZATION).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::Connection, "{failure:?}");
    assert!(failure.detail.contains("too many redirects"), "{}", failure.detail);
    assert_eq!(server.seen().len(), 4, "the first request and three redirects");
}

#[tokio::test]
async fn redirects_to_refused_addresses_are_not_followed() {
    for target in [
        "http://10.0.0.1/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:10.0.0.1]/",
    ] {
        let dns = dns_server(&loopback_zone()).await;
        let location = target.to_owned();
        let server =
            HttpServer::start(move |_| response(302, &[("Location", &location)], b"")).await;
        // Connecting to 10.0.0.1 or 169.254.169.254 would hang or fail; a rejection is
        // immediate.
        let va = validator_with(dns, server.port, 1, |c| c.timeout = Duration::from_secs(30));
        let started = Instant::now();
        let failure = va.http01(&a_test(), TOKEN, KEY_AUTHORIZATION).await.unwrap_err();
        assert_eq!(failure.kind, FailureKind::RejectedIdentifier, "{target}: {failure:?}");
        let address = target.trim_start_matches("http://").split(['/', ']']).next().unwrap();
        let address = address.trim_start_matches("[::ffff:");
        assert!(failure.detail.contains(address), "{target}: {}", failure.detail);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}

#[tokio::test]
async fn redirects_to_other_ports_and_schemes_are_not_followed() {
    for target in ["http://a.test:8080/", "ftp://a.test/x"] {
        let dns = dns_server(&loopback_zone()).await;
        let location = target.to_owned();
        let server =
            HttpServer::start(move |_| response(302, &[("Location", &location)], b"")).await;
        let va = validator(dns, server.port, 1);
        let failure = va.http01(&a_test(), TOKEN, KEY_AUTHORIZATION).await.unwrap_err();
        assert_eq!(failure.kind, FailureKind::Connection, "{target}: {failure:?}");
        assert_eq!(server.seen().len(), 1, "{target}");
    }
}

#[tokio::test]
async fn the_default_policy_refuses_loopback_before_connecting() {
    let dns = dns_server(&loopback_zone()).await;
    let server = HttpServer::start(|_| response(200, &[], KEY_AUTHORIZATION.as_bytes())).await;
    let va = validator_with(dns, server.port, 1, |c| c.policy = AddressPolicy::default());
    let failure = va.http01(&a_test(), TOKEN, KEY_AUTHORIZATION).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::RejectedIdentifier, "{failure:?}");
    assert!(
        failure.detail.contains("127.0.0.1") && failure.detail.contains("loopback"),
        "{}",
        failure.detail
    );
    let failure =
        va.http01(&Identifier::Ip(localhost()), TOKEN, KEY_AUTHORIZATION).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::RejectedIdentifier, "{failure:?}");
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn a_name_pointing_at_a_private_address_is_rejected() {
    let dns = dns_server(&[("inside.test", Rec::A(Ipv4Addr::new(10, 1, 2, 3)))]).await;
    let va = validator(dns, 80, 1);
    let failure = va
        .http01(&Identifier::Dns("inside.test".into()), TOKEN, KEY_AUTHORIZATION)
        .await
        .unwrap_err();
    assert_eq!(failure.kind, FailureKind::RejectedIdentifier, "{failure:?}");
    assert!(failure.detail.contains("10.1.2.3"), "{}", failure.detail);
}

#[tokio::test]
async fn deny_wins_over_allow() {
    let dns = dns_server(&loopback_zone()).await;
    let server = HttpServer::start(|_| response(200, &[], KEY_AUTHORIZATION.as_bytes())).await;
    let policy = AddressPolicy::parse(&["127.0.0.0/8".into()], &["127.0.0.1/32".into()]).unwrap();
    let va = validator_with(dns, server.port, 1, |c| c.policy = policy);
    let failure = va.http01(&a_test(), TOKEN, KEY_AUTHORIZATION).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::RejectedIdentifier, "{failure:?}");
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn an_unknown_name_is_a_dns_failure() {
    let dns = dns_server(&loopback_zone()).await;
    let va = validator(dns, 80, 1);
    let failure = va
        .http01(&Identifier::Dns("nowhere.test".into()), TOKEN, KEY_AUTHORIZATION)
        .await
        .unwrap_err();
    assert_eq!(failure.kind, FailureKind::Dns, "{failure:?}");
    assert!(failure.detail.contains("nowhere.test"), "{}", failure.detail);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_as_a_connection_failure() {
    let dns = dns_server(&loopback_zone()).await;
    let port = silent_listener().await;
    let va = validator_with(dns, port, 1, |c| c.timeout = Duration::from_secs(1));
    let started = Instant::now();
    let failure = va.http01(&a_test(), TOKEN, KEY_AUTHORIZATION).await.unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(failure.kind, FailureKind::Connection, "{failure:?}");
    assert!(failure.detail.contains("within 1s"), "{}", failure.detail);
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn a_closed_port_is_a_connection_failure() {
    let dns = dns_server(&loopback_zone()).await;
    let port = closed_port().await;
    let va = validator(dns, port, 1);
    let failure = va.http01(&a_test(), TOKEN, KEY_AUTHORIZATION).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::Connection, "{failure:?}");
    assert!(failure.detail.contains(&format!("127.0.0.1:{port}")), "{}", failure.detail);
}

#[tokio::test]
async fn malformed_tokens_and_names_are_refused_without_a_request() {
    let dns = dns_server(&loopback_zone()).await;
    let server = HttpServer::start(|_| response(200, &[], KEY_AUTHORIZATION.as_bytes())).await;
    let va = validator(dns, server.port, 1);
    let failure = va.http01(&a_test(), "../../etc/passwd", KEY_AUTHORIZATION).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::Malformed, "{failure:?}");
    for name in ["*.a.test", "a test", "127.0.0.1"] {
        let failure =
            va.http01(&Identifier::Dns(name.into()), TOKEN, KEY_AUTHORIZATION).await.unwrap_err();
        assert_eq!(failure.kind, FailureKind::Malformed, "{name}: {failure:?}");
    }
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn garbage_instead_of_http_is_a_connection_failure() {
    let dns = dns_server(&loopback_zone()).await;
    let server =
        HttpServer::start(|_| b"\x16\x03\x01\x00\x05hello\x00\xff garbage\r\n\r\n".to_vec()).await;
    let va = validator(dns, server.port, 1);
    let failure = va.http01(&a_test(), TOKEN, KEY_AUTHORIZATION).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::Connection, "{failure:?}");
}
